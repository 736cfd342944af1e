//! `Content-Type` and `Content-Disposition` values with their parameters,
//! including RFC 2231 continuations, charsets and percent-encoding.
//!
//! The sections of one parameter are joined as bytes before the charset is
//! applied, so that a character split across sections (a UTF-8 sequence, an
//! ISO-2022-JP escape) decodes whole. Every section marked with `*` is
//! percent-decoded, not only the first. RFC 2047 encoded-words inside quoted
//! values, which RFC 2047 forbids but many mailers write, are decoded after the
//! sections are joined, so a word split across sections also decodes.

use crate::charset::{self, LabelProblem};
use crate::decode::rfc2047::{self, hex_value};

/// Maximum number of sections of one parameter; more are ignored.
const MAX_SECTIONS: usize = 256;

/// A parsed `Content-Type` or `Content-Disposition` value.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ContentValue {
    /// The type (`text/html`) or disposition (`attachment`), lower-cased; empty when absent.
    pub value: String,
    /// Parameters in order of first appearance, names lower-cased, values decoded.
    pub params: Vec<(String, String)>,
}

impl ContentValue {
    /// Returns the decoded value of a parameter, by lower-case name.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// One `name[*N][*]=value` as written.
struct Section {
    name: String,
    number: Option<u32>,
    extended: bool,
    value: Vec<u8>,
}

/// Parses a raw header value such as `attachment; filename*0*=UTF-8''%E2%82; filename*1*=%AC.pdf`.
pub(crate) fn parse(raw: &[u8]) -> (ContentValue, Vec<LabelProblem>) {
    let unfolded = rfc2047::unfold(raw);
    let mut cursor = Cursor {
        bytes: &unfolded,
        index: 0,
    };

    let value = cursor.take_value();
    let mut sections = Vec::new();
    while let Some(section) = cursor.next_section() {
        sections.push(section);
    }

    let mut problems = Vec::new();
    let mut params: Vec<(String, String)> = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    for section in &sections {
        if !names.contains(&section.name.as_str()) {
            names.push(&section.name);
        }
    }
    for name in names {
        let of_name: Vec<&Section> = sections.iter().filter(|s| s.name == name).collect();
        let (decoded, problem) = assemble(&of_name);
        problems.extend(problem);
        params.push((name.to_owned(), decoded));
    }

    let content = ContentValue {
        value: value.to_ascii_lowercase(),
        params,
    };
    (content, problems)
}

/// Joins the sections of one parameter and decodes them.
fn assemble(sections: &[&Section]) -> (String, Vec<LabelProblem>) {
    // RFC 2231 forms win over a plain `name=` that a mailer adds for old clients.
    let rfc2231: Vec<&Section> = sections
        .iter()
        .copied()
        .filter(|section| section.number.is_some() || section.extended)
        .collect();
    let mut chosen = if rfc2231.is_empty() {
        vec![sections[0]]
    } else {
        rfc2231
    };
    chosen.sort_by_key(|section| section.number.unwrap_or(0));
    chosen.dedup_by_key(|section| section.number.unwrap_or(0));
    chosen.truncate(MAX_SECTIONS);

    if !chosen.iter().any(|section| section.extended) {
        let joined: Vec<u8> = chosen
            .iter()
            .flat_map(|section| section.value.iter().copied())
            .collect();
        let decoded = rfc2047::decode_text(&joined);
        return (decoded.text, decoded.problems);
    }

    // The charset and language lead the first section when it is extended.
    let mut label = None;
    let mut bytes = Vec::new();
    for (position, section) in chosen.iter().enumerate() {
        let mut value = section.value.as_slice();
        if position == 0
            && section.extended
            && let Some((charset, rest)) = split_charset(value)
        {
            label = Some(charset);
            value = rest;
        }
        if section.extended {
            percent_decode_into(value, &mut bytes);
        } else {
            bytes.extend_from_slice(value);
        }
    }

    let label = label.filter(|label| !label.is_empty());
    let decoded = charset::decode_declared(label.as_deref(), &bytes);
    let mut problems: Vec<LabelProblem> = decoded.problem.into_iter().collect();
    if decoded.text.contains("=?") {
        let inner = rfc2047::decode_text(decoded.text.as_bytes());
        problems.extend(inner.problems);
        return (inner.text, problems);
    }
    (decoded.text, problems)
}

/// Splits `charset'language'value`; `None` when the two apostrophes are missing.
fn split_charset(value: &[u8]) -> Option<(String, &[u8])> {
    let first = value.iter().position(|&byte| byte == b'\'')?;
    let second = first + 1 + value[first + 1..].iter().position(|&byte| byte == b'\'')?;
    let charset = String::from_utf8_lossy(&value[..first]).trim().to_owned();
    Some((charset, &value[second + 1..]))
}

fn percent_decode_into(value: &[u8], out: &mut Vec<u8>) {
    let mut index = 0;
    while index < value.len() {
        if value[index] == b'%' {
            let high = value.get(index + 1).and_then(|&byte| hex_value(byte));
            let low = value.get(index + 2).and_then(|&byte| hex_value(byte));
            if let (Some(high), Some(low)) = (high, low) {
                out.push(high << 4 | low);
                index += 3;
                continue;
            }
        }
        out.push(value[index]);
        index += 1;
    }
}

struct Cursor<'a> {
    bytes: &'a [u8],
    index: usize,
}

impl Cursor<'_> {
    /// Reads the type or disposition: everything before the first `;`, without comments.
    fn take_value(&mut self) -> String {
        let start = self.index;
        while self.index < self.bytes.len() && self.bytes[self.index] != b';' {
            self.index += 1;
        }
        let raw = String::from_utf8_lossy(&self.bytes[start..self.index]);
        let without_comment = match raw.find('(') {
            Some(position) => &raw[..position],
            None => &raw,
        };
        without_comment.trim().trim_matches('"').trim().to_owned()
    }

    fn skip_separators(&mut self) {
        while self.index < self.bytes.len()
            && (self.bytes[self.index] == b';' || self.bytes[self.index].is_ascii_whitespace())
        {
            self.index += 1;
        }
    }

    fn next_section(&mut self) -> Option<Section> {
        loop {
            self.skip_separators();
            if self.index >= self.bytes.len() {
                return None;
            }

            // The name runs to `=`; a `;` first means a parameter without a value.
            let name_start = self.index;
            while self.index < self.bytes.len() && !matches!(self.bytes[self.index], b'=' | b';') {
                self.index += 1;
            }
            if self.bytes.get(self.index) != Some(&b'=') {
                continue;
            }
            let name = String::from_utf8_lossy(&self.bytes[name_start..self.index])
                .trim()
                .to_ascii_lowercase();
            self.index += 1;
            let value = self.take_param_value();
            if name.is_empty() {
                continue;
            }
            return Some(section_from(name, value));
        }
    }

    fn take_param_value(&mut self) -> Vec<u8> {
        while self.index < self.bytes.len() && matches!(self.bytes[self.index], b' ' | b'\t') {
            self.index += 1;
        }
        if self.bytes.get(self.index) != Some(&b'"') {
            let start = self.index;
            while self.index < self.bytes.len() && self.bytes[self.index] != b';' {
                self.index += 1;
            }
            return trim_ascii(&self.bytes[start..self.index]).to_vec();
        }

        // A quoted string; an unterminated one runs to the end of the header.
        self.index += 1;
        let mut value = Vec::new();
        while self.index < self.bytes.len() {
            let byte = self.bytes[self.index];
            self.index += 1;
            match byte {
                b'"' => break,
                b'\\' if self.index < self.bytes.len() => {
                    value.push(self.bytes[self.index]);
                    self.index += 1;
                }
                _ => value.push(byte),
            }
        }
        // Skip anything between the closing quote and the next `;`.
        while self.index < self.bytes.len() && self.bytes[self.index] != b';' {
            self.index += 1;
        }
        value
    }
}

fn section_from(name: String, value: Vec<u8>) -> Section {
    let (name, extended) = match name.strip_suffix('*') {
        Some(base) => (base.to_owned(), true),
        None => (name, false),
    };
    if let Some((base, number)) = name.rsplit_once('*')
        && let Ok(number) = number.parse::<u32>()
    {
        return Section {
            name: base.to_owned(),
            number: Some(number),
            extended,
            value,
        };
    }
    Section {
        name,
        number: None,
        extended,
        value,
    }
}

fn trim_ascii(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|byte| !byte.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|byte| !byte.is_ascii_whitespace())
        .map_or(start, |position| position + 1);
    &bytes[start..end]
}
