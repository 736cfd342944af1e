//! Verdicts as sentences, for the text format of `scan` and `quarantine show`.

use std::fmt::Write;

use crate::Verdict;

/// One sentence per signal, strongest first: the evidence with its first
/// letter capitalised, then the signal id and weight in brackets.
pub fn explain(verdict: &Verdict) -> Vec<String> {
    let mut signals: Vec<_> = verdict.signals.iter().collect();
    signals.sort_by(|a, b| {
        b.weight
            .abs()
            .total_cmp(&a.weight.abs())
            .then_with(|| a.id.cmp(&b.id))
    });
    signals
        .into_iter()
        .map(|signal| {
            let weight = if signal.weight == 0.0 {
                String::new()
            } else {
                format!(" {:+.1}", signal.weight)
            };
            format!("{}. [{}{weight}]", sentence(&signal.evidence), signal.id)
        })
        .collect()
}

/// A verdict as a short report: the action and score, who wrote to whom,
/// one line per signal, and the campaign it belongs to.
pub fn render_text(verdict: &Verdict) -> String {
    let mut text = String::new();
    let action = serde_json::to_value(verdict.action)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default();
    let _ = writeln!(text, "{action} (score {:.1}) {}", verdict.score, verdict.id);
    let _ = writeln!(
        text,
        "  from {} to {}",
        if verdict.envelope.mail_from.is_empty() {
            "<>"
        } else {
            &verdict.envelope.mail_from
        },
        verdict.envelope.rcpt_to.join(", ")
    );
    if let Some(subject) = &verdict.message.subject {
        let _ = writeln!(text, "  subject: {subject}");
    }
    if let Some(file) = &verdict.file {
        let _ = writeln!(text, "  file: {file}");
    }
    for line in explain(verdict) {
        let _ = writeln!(text, "  - {line}");
    }
    if let Some(campaign) = &verdict.campaign {
        let _ = writeln!(
            text,
            "  campaign {}: {} messages from {} senders to {} recipients in the window",
            campaign.cluster,
            campaign.messages,
            campaign.senders.len(),
            campaign.recipients
        );
        for member in &campaign.delivered_earlier {
            let _ = writeln!(
                text,
                "    delivered earlier: {} from {} to {}",
                member
                    .message_id
                    .as_deref()
                    .map(|id| format!("<{id}>"))
                    .unwrap_or_else(|| "(no Message-ID)".to_owned()),
                member.sender,
                member.recipients.join(", ")
            );
        }
    }
    text
}

/// The evidence as a sentence: capitalised, unless it starts with an address,
/// domain or URL, whose case must stay as written.
fn sentence(evidence: &str) -> String {
    let evidence = evidence.trim_end_matches('.');
    let first_word = evidence.split_whitespace().next().unwrap_or("");
    if first_word.contains(['@', '.', ':', '/']) {
        return evidence.to_owned();
    }
    let mut characters = evidence.chars();
    match characters.next() {
        Some(first) => first.to_uppercase().chain(characters).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentence_keeps_leading_address() {
        assert_eq!(
            sentence("bob@example.com never wrote here"),
            "bob@example.com never wrote here"
        );
    }

    #[test]
    fn sentence_capitalises_and_ends_once() {
        assert_eq!(
            sentence("first mail from a@b.example to anyone here."),
            "First mail from a@b.example to anyone here"
        );
    }
}
