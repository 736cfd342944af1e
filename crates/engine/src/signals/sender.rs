//! Signals about who writes: first contact, new domain, new pair, display
//! names borrowed from internal senders or roles, and replies to our own mail.

use gatehouse_graph::{Familiarity, keys};
use gatehouse_policy::Policy;
use unicode_script::{Script, UnicodeScript};

use super::Fired;
use super::features::Features;

pub(crate) fn fire(
    features: &Features,
    familiarity: &Familiarity,
    roles: &RoleNames,
    fired: &mut Vec<Fired>,
) {
    let sender = features.sender.as_str();

    if familiarity.sender.is_none() {
        fired.push(Fired::new(
            "sender.first_contact",
            format!("first mail from {sender} to anyone here"),
        ));
    }
    if familiarity.sender_domain.is_none() {
        fired.push(Fired::new(
            "sender.domain_new",
            format!(
                "nobody here has exchanged mail with the domain {}",
                features.sender_domain
            ),
        ));
    }

    let new_pairs: Vec<&str> = familiarity
        .pairs
        .iter()
        .filter(|pair| pair.fact.is_none())
        .map(|pair| pair.name.as_str())
        .collect();
    if !new_pairs.is_empty() {
        fired.push(Fired::new(
            "recipient.first_contact",
            format!(
                "{sender} never exchanged mail with {} before",
                list(&new_pairs)
            ),
        ));
    }

    if let Some(name) = &features.display_name {
        display_names(features, familiarity, roles, name, fired);
    }

    if let Some(id) = &familiarity.known_reply_to {
        fired.push(Fired::new(
            "thread.known_reply",
            format!("answers <{id}>, which was sent from here"),
        ));
    }
}

fn display_names(
    features: &Features,
    familiarity: &Familiarity,
    roles: &RoleNames,
    name: &str,
    fired: &mut Vec<Fired>,
) {
    let used_before = familiarity.display_name.is_some();

    // A borrowed name matters until the address has earned it in delivered mail.
    if !used_before {
        if familiarity.internal_display_name.is_some() {
            fired.push(Fired::new(
                "sender.display_name_internal",
                format!("the external sender {} uses the display name “{name}”, which senders inside the organisation use", features.sender),
            ));
        } else if let Some((language, role)) = roles.matching(name) {
            fired.push(Fired::new(
                "sender.display_name_internal",
                format!("the external sender {} uses the display name “{name}”, the role name “{role}” ({language})", features.sender),
            ));
        }
    }

    // A known address under a new name; for a first contact every name is new.
    if familiarity.sender.is_some() && !used_before && !familiarity.sender_display_names.is_empty()
    {
        let earlier: Vec<&str> = familiarity
            .sender_display_names
            .iter()
            .map(|known| known.name.as_str())
            .collect();
        fired.push(Fired::new(
            "sender.display_name_new",
            format!(
                "{} writes as “{name}” for the first time; before it wrote as {}",
                features.sender,
                quoted(&earlier)
            ),
        ));
    }
}

/// The policy's role names with their confusable skeletons, computed once
/// per policy. Computing them for every message took two thirds of the
/// analysis of a first-contact message with a display name.
pub(crate) struct RoleNames {
    roles: Vec<Role>,
}

struct Role {
    language: String,
    name: String,
    skeleton: String,
    matched_as: Match,
}

/// The comparison that finds a role's skeleton in a display name's skeleton.
enum Match {
    Substring,
    Words(Vec<String>),
}

impl RoleNames {
    pub(crate) fn new(policy: &Policy) -> RoleNames {
        let roles = policy
            .role_names()
            .map(|(language, name)| {
                let skeleton = keys::name_skeleton(name);
                let matched_as = if written_without_spaces(name) {
                    Match::Substring
                } else {
                    Match::Words(words(&skeleton).into_iter().map(str::to_owned).collect())
                };
                Role {
                    language: language.to_owned(),
                    name: name.to_owned(),
                    skeleton,
                    matched_as,
                }
            })
            .filter(|role| match &role.matched_as {
                Match::Substring => !role.skeleton.is_empty(),
                Match::Words(words) => !words.is_empty(),
            })
            .collect();
        RoleNames { roles }
    }

    /// Finds a role name in a display name, compared after NFKC and a
    /// confusable skeleton, and returns its language tag and the name. Roles
    /// in scripts written without spaces (Han, Kana, Hangul, Thai) match as
    /// substrings. Other roles match whole words, so the role "it" matches
    /// "IT Support" but not "Smith".
    pub(crate) fn matching(&self, name: &str) -> Option<(&str, &str)> {
        let name_skeleton = keys::name_skeleton(name);
        let name_words = words(&name_skeleton);
        self.roles
            .iter()
            .find(|role| match &role.matched_as {
                Match::Substring => name_skeleton.contains(&role.skeleton),
                Match::Words(role_words) => name_words
                    .windows(role_words.len())
                    .any(|window| window == role_words.as_slice()),
            })
            .map(|role| (role.language.as_str(), role.name.as_str()))
    }
}

fn words(text: &str) -> Vec<&str> {
    text.split(|c: char| !c.is_alphanumeric() && c != '-')
        .filter(|word| !word.is_empty())
        .collect()
}

fn written_without_spaces(text: &str) -> bool {
    text.chars().any(|c| {
        matches!(
            c.script(),
            Script::Han | Script::Hiragana | Script::Katakana | Script::Hangul | Script::Thai
        )
    })
}

fn list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [first, second] => format!("{first} and {second}"),
        [first, second, rest @ ..] if rest.len() > 3 => {
            format!("{first}, {second} and {} other recipients", rest.len())
        }
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn quoted(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|item| format!("“{item}”")).collect();
    let refs: Vec<&str> = quoted.iter().map(String::as_str).collect();
    list(&refs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matching_role(name: &str) -> Option<(String, String)> {
        RoleNames::new(&Policy::embedded_default())
            .matching(name)
            .map(|(language, role)| (language.to_owned(), role.to_owned()))
    }

    #[test]
    fn chinese_role_matches_as_substring() {
        assert!(matching_role("财务部").is_some());
    }

    #[test]
    fn role_matches_whole_words_only() {
        assert!(matching_role("IT Support").is_some());
        assert!(matching_role("Edith Smith").is_none());
    }

    #[test]
    fn role_matches_through_confusables() {
        assert!(
            matching_role("Раyroll Team").is_some(),
            "Cyrillic Р in Payroll"
        );
    }

    #[test]
    fn role_matches_fullwidth_letters() {
        assert!(matching_role("ＣＥＯ Office").is_some());
    }

    #[test]
    fn russian_role_matches() {
        assert!(matching_role("Бухгалтерия ООО Ромашка").is_some());
    }

    #[test]
    fn arabic_role_matches() {
        assert!(matching_role("قسم المالية").is_some());
    }

    #[test]
    fn person_name_matches_no_role() {
        assert!(matching_role("Wu Gang 吴刚").is_none());
    }

    #[test]
    fn long_recipient_lists_are_shortened() {
        assert_eq!(
            list(&["a", "b", "c", "d", "e", "f"]),
            "a, b and 4 other recipients"
        );
    }
}
