//! Word field instructions: the URLs they fetch or link to.

/// Target of a field instruction, by what the field does with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FieldTarget {
    /// `HYPERLINK "url"`: a link the reader clicks.
    Hyperlink(String),
    /// `INCLUDEPICTURE`, `INCLUDETEXT`, `LINK`, `IMPORT`: content fetched when the document opens.
    Fetch(String),
    /// `DDE` and `DDEAUTO`: runs a command through Dynamic Data Exchange.
    Dde(String),
}

/// Splits an instruction into words, keeping the spaces inside a quoted word.
fn words(instruction: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut chars = instruction.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' || c == '\u{201c}' || c == '\u{201d}' {
            chars.next();
            let word: String = chars
                .by_ref()
                .take_while(|&c| c != '"' && c != '\u{201c}' && c != '\u{201d}')
                .collect();
            words.push(word);
        } else {
            let mut word = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() || c == '"' {
                    break;
                }
                word.push(c);
                chars.next();
            }
            words.push(word);
        }
    }
    words
}

/// Finds the target of a field instruction, if it names one.
pub(crate) fn target(instruction: &str) -> Option<FieldTarget> {
    let words = words(instruction);
    let keyword = words.first()?.to_ascii_uppercase();
    // Switches start with a backslash; `\l` alone means a bookmark in this document.
    let argument = words
        .iter()
        .skip(1)
        .find(|word| !word.starts_with('\\'))?
        .clone();
    match keyword.as_str() {
        "HYPERLINK" => {
            let only_bookmark = words
                .get(1)
                .is_some_and(|word| word.eq_ignore_ascii_case("\\l"));
            (!only_bookmark && !argument.is_empty()).then_some(FieldTarget::Hyperlink(argument))
        }
        "INCLUDEPICTURE" | "INCLUDETEXT" | "LINK" | "IMPORT" => {
            let argument = if keyword == "LINK" {
                // LINK takes the application first, then the file.
                words
                    .iter()
                    .skip(2)
                    .find(|word| !word.starts_with('\\'))?
                    .clone()
            } else {
                argument
            };
            (!argument.is_empty()).then_some(FieldTarget::Fetch(argument))
        }
        "DDE" | "DDEAUTO" => Some(FieldTarget::Dde(words[1..].join(" "))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hyperlink_with_quotes() {
        assert_eq!(
            target(" HYPERLINK \"https://example.com/a b\" \\o \"tip\" "),
            Some(FieldTarget::Hyperlink("https://example.com/a b".to_owned()))
        );
    }

    #[test]
    fn hyperlink_bare() {
        assert_eq!(
            target("HYPERLINK https://example.com"),
            Some(FieldTarget::Hyperlink("https://example.com".to_owned()))
        );
    }

    #[test]
    fn hyperlink_bookmark_only() {
        assert_eq!(target("HYPERLINK \\l \"_Toc1\""), None);
    }

    #[test]
    fn includepicture_fetches() {
        assert_eq!(
            target("INCLUDEPICTURE \"http://host.example/p.png\" \\* MERGEFORMATINET"),
            Some(FieldTarget::Fetch("http://host.example/p.png".to_owned()))
        );
    }

    #[test]
    fn ddeauto_is_dde() {
        assert_eq!(
            target("DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe \"/k calc.exe\""),
            Some(FieldTarget::Dde(
                "c:\\\\windows\\\\system32\\\\cmd.exe /k calc.exe".to_owned()
            ))
        );
    }

    #[test]
    fn page_field_has_no_target() {
        assert_eq!(target("PAGE \\* MERGEFORMAT"), None);
    }
}
