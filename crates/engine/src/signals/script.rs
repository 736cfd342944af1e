//! `content.script_unusual`: a dominant script the recipient (or the organisation) rarely receives.

use gatehouse_graph::Familiarity;
use gatehouse_policy::Baseline;
use unicode_script::{Script, UnicodeScript};

use super::Fired;
use super::features::Features;

/// Characters of a text looked at to find its dominant script.
const MAX_SCRIPT_CHARS: usize = 20_000;

/// Returns the script most letters of a text are written in, ignoring Common
/// and Inherited characters (digits, punctuation, combining marks), or `None`
/// when the text has no letters. Each script counts apart, so Japanese text
/// is Han, Hiragana or Katakana by whichever has the most characters.
pub(crate) fn dominant(text: &str) -> Option<&'static str> {
    let mut counts: Vec<(Script, usize)> = Vec::new();
    for character in text.chars().take(MAX_SCRIPT_CHARS) {
        // Most mail is mostly ASCII, where the lookup table search is the
        // whole cost: ASCII letters are Latin and the rest is Common.
        let script = if character.is_ascii_alphabetic() {
            Script::Latin
        } else if character.is_ascii() {
            continue;
        } else {
            character.script()
        };
        if matches!(script, Script::Common | Script::Inherited | Script::Unknown) {
            continue;
        }
        match counts.iter_mut().find(|(known, _)| *known == script) {
            Some((_, count)) => *count += 1,
            None => counts.push((script, 1)),
        }
    }
    counts
        .into_iter()
        .max_by(|a, b| {
            a.1.cmp(&b.1)
                .then_with(|| b.0.full_name().cmp(a.0.full_name()))
        })
        .map(|(script, _)| script.full_name())
}

fn share(count: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        count as f64 / total as f64
    }
}

/// Fires when a dominant script is rare for a recipient with enough history,
/// or, for recipients without, rare for the organisation.
pub(crate) fn fire(
    features: &Features,
    familiarity: &Familiarity,
    baseline: &Baseline,
    fired: &mut Vec<Fired>,
) {
    let organisation_total = familiarity
        .organisation
        .map(|fact| fact.inbound + fact.internal)
        .unwrap_or(0);
    for (script_index, source) in features.scripts.iter().enumerate() {
        let Some(script) = familiarity.scripts.get(script_index) else {
            continue;
        };
        let organisation_count = script
            .organisation
            .map(|fact| fact.inbound + fact.internal)
            .unwrap_or(0);
        let mut rare_for = Vec::new();
        for (recipient_index, profile) in familiarity.recipient_profiles.iter().enumerate() {
            let received = profile.fact.map(|fact| fact.total()).unwrap_or(0);
            let count = script
                .recipients
                .get(recipient_index)
                .copied()
                .flatten()
                .map(|fact| fact.total())
                .unwrap_or(0);
            let rare = if received >= baseline.min_messages {
                share(count, received) < baseline.rare_share
            } else {
                organisation_total >= baseline.min_messages
                    && share(organisation_count, organisation_total) < baseline.rare_share
            };
            if rare {
                rare_for.push((profile.name.as_str(), count, received));
            }
        }
        if rare_for.is_empty() {
            continue;
        }
        let who = match rare_for.as_slice() {
            [(name, count, received)] => {
                format!("{name}, who received {count} such of {received} messages")
            }
            many => format!("{} recipients", many.len()),
        };
        fired.push(Fired::new(
            "content.script_unusual",
            format!(
                "{} text in the {} is rare for {who}; the organisation received {organisation_count} such of {organisation_total}",
                script_name(&source.script),
                source.place
            ),
        ));
    }
}

/// Names a script in English for evidence: `Han` reads as "Chinese (Han)".
fn script_name(script: &str) -> String {
    match script {
        "Han" => "Chinese (Han)".to_owned(),
        "Hangul" => "Korean (Hangul)".to_owned(),
        "Hiragana" | "Katakana" => format!("Japanese ({script})"),
        other => other.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dominant_script_of_chinese_subject() {
        assert_eq!(dominant("2026年度个税退税通知-3154"), Some("Han"));
    }

    #[test]
    fn dominant_script_ignores_digits_and_punctuation() {
        assert_eq!(dominant("Счёт 2024-117: договор no"), Some("Cyrillic"));
    }

    #[test]
    fn ascii_shortcut_agrees_with_the_script_table() {
        for byte in 0u8..=0x7f {
            let character = char::from(byte);
            let expected = if character.is_ascii_alphabetic() {
                Script::Latin
            } else {
                Script::Common
            };
            assert_eq!(character.script(), expected, "character {byte:#04x}");
        }
    }

    #[test]
    fn no_script_without_letters() {
        assert_eq!(dominant("2024-11-02 !!"), None);
    }
}
