//! Address lists (`From`, `To`, `Cc`, `Reply-To`) parsed from raw header bytes.
//!
//! The raw bytes are split into mailboxes first and decoded afterwards, so a
//! `,`, `<` or `"` that an encoded-word decodes to cannot split or merge
//! mailboxes. Display names are decoded with encoded-words wherever they stand,
//! inside quoted strings too, as mail clients show them.

use crate::Mailbox;
use crate::charset::LabelProblem;
use crate::decode::rfc2047;

/// Maximum number of mailboxes read from one header.
const MAX_MAILBOXES: usize = 1_000;

#[derive(Debug, PartialEq)]
enum Token {
    /// An atom or any run of bytes that is not a structural character.
    Word(Vec<u8>),
    Quoted(Vec<u8>),
    Comment(Vec<u8>),
    Angle(Vec<u8>),
    Comma,
    Colon,
    Semicolon,
}

/// Parses an address list. Groups are flattened into their members.
pub(crate) fn parse_list(raw: &[u8]) -> (Vec<Mailbox>, Vec<LabelProblem>) {
    let unfolded = rfc2047::unfold(raw);
    let tokens = tokenize(&unfolded);

    let mut mailboxes = Vec::new();
    let mut problems = Vec::new();
    let mut current: Vec<Token> = Vec::new();
    for token in tokens {
        match token {
            Token::Comma | Token::Semicolon => {
                finish(&mut current, &mut mailboxes, &mut problems);
            }
            // A colon before any angle address ends a group name, which is dropped.
            Token::Colon if !current.iter().any(|t| matches!(t, Token::Angle(_))) => {
                current.clear();
            }
            Token::Colon => current.push(Token::Word(b":".to_vec())),
            other => current.push(other),
        }
        if mailboxes.len() >= MAX_MAILBOXES {
            break;
        }
    }
    finish(&mut current, &mut mailboxes, &mut problems);
    (mailboxes, problems)
}

fn finish(tokens: &mut Vec<Token>, mailboxes: &mut Vec<Mailbox>, problems: &mut Vec<LabelProblem>) {
    if tokens.is_empty() {
        return;
    }
    let taken = std::mem::take(tokens);
    if let Some((mailbox, found)) = mailbox_from(&taken) {
        mailboxes.push(mailbox);
        problems.extend(found);
    }
}

fn mailbox_from(tokens: &[Token]) -> Option<(Mailbox, Vec<LabelProblem>)> {
    let angle = tokens.iter().position(|t| matches!(t, Token::Angle(_)));
    let (address, phrase): (String, Vec<&Token>) = match angle {
        Some(position) => {
            let Token::Angle(inner) = &tokens[position] else {
                return None;
            };
            let phrase = tokens[..position].iter().collect();
            (clean_address(inner), phrase)
        }
        None => {
            // No angle brackets: the word with an `@` is the address, the rest a name.
            let at = tokens
                .iter()
                .rposition(|t| matches!(t, Token::Word(word) if word.contains(&b'@')));
            match at {
                Some(position) => {
                    let Token::Word(word) = &tokens[position] else {
                        return None;
                    };
                    let phrase = tokens
                        .iter()
                        .enumerate()
                        .filter(|(index, _)| *index != position)
                        .map(|(_, token)| token)
                        .collect();
                    (clean_address(word), phrase)
                }
                // Neither brackets nor an `@`: a name without an address,
                // as in `From: Whomever`.
                None => (String::new(), tokens.iter().collect()),
            }
        }
    };

    // Without a phrase, an old-style `address (Name)` comment is the display name.
    let mut name_bytes = join_phrase(&phrase, false);
    if name_bytes.iter().all(u8::is_ascii_whitespace) {
        name_bytes = join_phrase(&phrase, true);
    }
    let decoded = rfc2047::decode_text(&name_bytes);
    let name = decoded.text.trim().to_owned();
    if address.is_empty() && name.is_empty() {
        return None;
    }
    let mailbox = Mailbox {
        address,
        display_name: (!name.is_empty()).then_some(name),
    };
    Some((mailbox, decoded.problems))
}

/// Joins phrase tokens with single spaces; comments only when asked.
fn join_phrase(tokens: &[&Token], comments: bool) -> Vec<u8> {
    let mut joined = Vec::new();
    for token in tokens {
        let bytes = match token {
            Token::Word(bytes) | Token::Quoted(bytes) => bytes,
            Token::Comment(bytes) if comments => bytes,
            _ => continue,
        };
        if !joined.is_empty() {
            joined.push(b' ');
        }
        joined.extend_from_slice(bytes);
    }
    joined
}

/// Removes whitespace, comments and stray quotes from an address, and a source route.
fn clean_address(raw: &[u8]) -> String {
    let text = rfc2047::decode_text(raw).text;
    let mut address = String::with_capacity(text.len());
    let mut depth = 0usize;
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ if depth > 0 => {}
            '"' | '<' | '>' => {}
            c if c.is_whitespace() => {}
            c => address.push(c),
        }
    }
    // `@relay1,@relay2:user@example.com` (RFC 5322 obs-route) names the user after the colon.
    match address.rsplit_once(':') {
        Some((route, user)) if route.starts_with('@') => user.to_owned(),
        _ => address,
    }
}

fn tokenize(bytes: &[u8]) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        match byte {
            b' ' | b'\t' => index += 1,
            b',' => {
                tokens.push(Token::Comma);
                index += 1;
            }
            b':' => {
                tokens.push(Token::Colon);
                index += 1;
            }
            b';' => {
                tokens.push(Token::Semicolon);
                index += 1;
            }
            b'"' => {
                let (content, next) = read_quoted(bytes, index + 1);
                tokens.push(Token::Quoted(content));
                index = next;
            }
            b'(' => {
                let (content, next) = read_comment(bytes, index + 1);
                tokens.push(Token::Comment(content));
                index = next;
            }
            b'<' => {
                let end = bytes[index + 1..]
                    .iter()
                    .position(|&b| b == b'>')
                    .map_or(bytes.len(), |position| index + 1 + position);
                tokens.push(Token::Angle(bytes[index + 1..end].to_vec()));
                index = (end + 1).min(bytes.len());
            }
            _ => {
                let start = index;
                while index < bytes.len()
                    && !matches!(
                        bytes[index],
                        b' ' | b'\t' | b',' | b':' | b';' | b'"' | b'(' | b'<'
                    )
                {
                    index += 1;
                }
                // An encoded-word may hold a `:` or `;` that is not structural.
                extend_encoded_word(bytes, start, &mut index);
                tokens.push(Token::Word(bytes[start..index].to_vec()));
            }
        }
    }
    tokens
}

/// Stretches a word that starts an encoded-word to the word's closing `?=`.
fn extend_encoded_word(bytes: &[u8], start: usize, index: &mut usize) {
    if !bytes[start..].starts_with(b"=?") {
        return;
    }
    // `=?charset?Q?` has two more `?` before the encoded text starts.
    let Some(text_start) = bytes[start + 2..]
        .iter()
        .enumerate()
        .filter(|&(_, &byte)| byte == b'?')
        .nth(1)
        .map(|(position, _)| start + 2 + position + 1)
    else {
        return;
    };
    let Some(text_len) = memchr::memmem::find(&bytes[text_start..], b"?=") else {
        return;
    };
    let end = text_start + text_len + 2;
    if end <= *index || bytes[*index..end].iter().any(u8::is_ascii_whitespace) {
        return;
    }
    *index = end;
    while *index < bytes.len()
        && !matches!(
            bytes[*index],
            b' ' | b'\t' | b',' | b':' | b';' | b'"' | b'(' | b'<'
        )
    {
        *index += 1;
    }
}

fn read_quoted(bytes: &[u8], mut index: usize) -> (Vec<u8>, usize) {
    let mut content = Vec::new();
    while index < bytes.len() {
        match bytes[index] {
            b'"' => return (content, index + 1),
            b'\\' if index + 1 < bytes.len() => {
                content.push(bytes[index + 1]);
                index += 2;
            }
            byte => {
                content.push(byte);
                index += 1;
            }
        }
    }
    (content, index)
}

fn read_comment(bytes: &[u8], mut index: usize) -> (Vec<u8>, usize) {
    let mut content = Vec::new();
    let mut depth = 1usize;
    while index < bytes.len() {
        match bytes[index] {
            b'\\' if index + 1 < bytes.len() => {
                content.push(bytes[index + 1]);
                index += 2;
                continue;
            }
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return (content, index + 1);
                }
            }
            _ => {}
        }
        content.push(bytes[index]);
        index += 1;
    }
    (content, index)
}

#[cfg(test)]
mod tests {
    use super::parse_list;

    fn first(raw: &str) -> (String, Option<String>) {
        let (list, _) = parse_list(raw.as_bytes());
        let mailbox = list.into_iter().next().unwrap_or_default();
        (mailbox.address, mailbox.display_name)
    }

    #[test]
    fn parses_common_forms() {
        let cases: [(&str, &str, Option<&str>); 8] = [
            ("a@example.com", "a@example.com", None),
            ("Whomever", "", Some("Whomever")),
            ("<a@example.com>", "a@example.com", None),
            ("Alice <a@example.com>", "a@example.com", Some("Alice")),
            (
                "\"Smith, Alice\" <a@example.com>",
                "a@example.com",
                Some("Smith, Alice"),
            ),
            ("a@example.com (Alice)", "a@example.com", Some("Alice")),
            (
                "=?UTF-8?B?6LSi5Yqh6YOo?= <a@example.com>",
                "a@example.com",
                Some("财务部"),
            ),
            (
                "\"=?utf-8?Q?PayPal=2C_Inc=2E?=\" <x@evil.example>",
                "x@evil.example",
                Some("PayPal, Inc."),
            ),
        ];
        for (raw, address, name) in cases {
            let (found_address, found_name) = first(raw);
            assert_eq!(found_address, address, "raw {raw}");
            assert_eq!(found_name.as_deref(), name, "raw {raw}");
        }
    }

    #[test]
    fn encoded_comma_does_not_split() {
        let (list, _) = parse_list(b"=?utf-8?Q?Doe=2C_John?= <j@example.com>, b@example.com");
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].display_name.as_deref(), Some("Doe, John"));
        assert_eq!(list[1].address, "b@example.com");
    }

    #[test]
    fn groups_are_flattened() {
        let (list, _) = parse_list(b"Team: a@example.com, B <b@example.com>;, c@example.com");
        let addresses: Vec<&str> = list.iter().map(|m| m.address.as_str()).collect();
        assert_eq!(
            addresses,
            ["a@example.com", "b@example.com", "c@example.com"]
        );
    }
}
