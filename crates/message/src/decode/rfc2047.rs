//! RFC 2047 encoded-words in unstructured header text.
//!
//! Adjacent encoded-words of one charset are decoded as one run. Each word's
//! B or Q encoding is undone on its own, because base64 padding ends a word
//! and must not land in the middle of joined text. Then the bytes of the run
//! are joined and decoded in the charset once. This keeps characters that
//! a mailer split across words intact: a UTF-8 or GBK character cut in two,
//! and ISO-2022-JP text whose escape sequences and character pairs straddle
//! words.

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use crate::charset::{self, LabelProblem};

/// Maximum length of an encoded-word's text. RFC 2047 allows 75 bytes for a whole word, but real mail has longer ones.
const MAX_WORD_LEN: usize = 4096;

/// Base64 as encoded-words use it, forgiving missing padding and stray trailing bits.
pub(crate) const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Header text decoded to Unicode, with any charset label that lied.
#[derive(Debug, Default)]
pub(crate) struct DecodedText {
    pub(crate) text: String,
    pub(crate) problems: Vec<LabelProblem>,
}

enum Segment<'a> {
    Plain(&'a [u8]),
    Word { charset: &'a str, bytes: Vec<u8> },
}

/// Decodes unstructured header bytes: unfolds them, decodes encoded-words and
/// reads raw 8-bit bytes as UTF-8 when valid, by guess otherwise.
///
/// Encoded-words are decoded wherever they stand, also inside a word or a
/// quoted string, because mail clients display them decoded there too.
pub(crate) fn decode_text(raw: &[u8]) -> DecodedText {
    let unfolded = unfold(raw);
    let segments = split_words(&unfolded);
    let plain_charset = plain_charset(&segments);

    let mut decoded = DecodedText::default();
    let mut index = 0;
    while index < segments.len() {
        match &segments[index] {
            Segment::Plain(bytes) => {
                decoded.text.push_str(&decode_plain(bytes, plain_charset));
                index += 1;
            }
            Segment::Word { charset, .. } => {
                // Join the bytes of this word and the following words of the same charset.
                let mut run = Vec::new();
                while let Some(Segment::Word {
                    charset: next,
                    bytes,
                }) = segments.get(index)
                {
                    if !next.eq_ignore_ascii_case(charset) {
                        break;
                    }
                    run.extend_from_slice(bytes);
                    index += 1;
                }
                let word = charset::decode_declared(Some(charset), &run);
                decoded.text.push_str(&word.text);
                decoded.problems.extend(word.problem);
            }
        }
    }
    decoded
}

/// Removes the line breaks of folded header lines; the folding whitespace stays.
pub(crate) fn unfold(raw: &[u8]) -> Vec<u8> {
    raw.iter()
        .copied()
        .filter(|&byte| byte != b'\r' && byte != b'\n')
        .collect()
}

fn split_words(raw: &[u8]) -> Vec<Segment<'_>> {
    let mut segments = Vec::new();
    let mut plain_start = 0;
    let mut search = 0;
    while let Some(found) = memchr::memmem::find(&raw[search..], b"=?") {
        let start = search + found;
        let Some((end, charset, bytes)) = parse_word(raw, start) else {
            search = start + 2;
            continue;
        };
        let between = &raw[plain_start..start];
        let after_word = matches!(segments.last(), Some(Segment::Word { .. }));
        // Whitespace between two encoded-words is not part of the text.
        let only_space_between_words = after_word && between.iter().all(u8::is_ascii_whitespace);
        if !between.is_empty() && !only_space_between_words {
            segments.push(Segment::Plain(between));
        }
        segments.push(Segment::Word { charset, bytes });
        plain_start = end;
        search = end;
    }
    if plain_start < raw.len() {
        segments.push(Segment::Plain(&raw[plain_start..]));
    }
    segments
}

/// Parses `=?charset[*language]?B|Q?text?=` at `start`, returning its end and its decoded bytes.
fn parse_word(raw: &[u8], start: usize) -> Option<(usize, &str, Vec<u8>)> {
    let rest = raw.get(start + 2..)?;
    let charset_end = rest.iter().take(80).position(|&byte| byte == b'?')?;
    let charset_field = std::str::from_utf8(&rest[..charset_end]).ok()?;
    if charset_field.is_empty() || charset_field.contains(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    // RFC 2231 section 5 lets a language follow the charset after `*`.
    let charset = charset_field.split('*').next().unwrap_or(charset_field);

    let encoding = rest.get(charset_end + 1)?.to_ascii_uppercase();
    if rest.get(charset_end + 2) != Some(&b'?') || !matches!(encoding, b'B' | b'Q') {
        return None;
    }
    let text_start = charset_end + 3;
    let window = &rest[text_start..rest.len().min(text_start + MAX_WORD_LEN)];
    let text_len = memchr::memmem::find(window, b"?=")?;
    let text = &window[..text_len];
    // Base64 words never contain spaces; Q words should not either, but some
    // mailers leave them in, and clients still decode such words.
    if encoding == b'B' && text.iter().any(u8::is_ascii_whitespace) {
        return None;
    }
    let bytes = if encoding == b'B' {
        decode_b(text)?
    } else {
        decode_q(text)
    };
    let end = start + 2 + text_start + text_len + 2;
    Some((end, charset, bytes))
}

fn decode_b(text: &[u8]) -> Option<Vec<u8>> {
    // Padding in the middle ends the data; some encoders emit it before a trailing `=`.
    let end = text
        .iter()
        .position(|&byte| byte == b'=')
        .unwrap_or(text.len());
    LENIENT_BASE64.decode(&text[..end]).ok()
}

fn decode_q(text: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut index = 0;
    while index < text.len() {
        match text[index] {
            b'_' => bytes.push(b' '),
            b'=' => {
                let high = text.get(index + 1).and_then(|&byte| hex_value(byte));
                let low = text.get(index + 2).and_then(|&byte| hex_value(byte));
                if let (Some(high), Some(low)) = (high, low) {
                    bytes.push(high << 4 | low);
                    index += 3;
                    continue;
                }
                bytes.push(b'=');
            }
            byte => bytes.push(byte),
        }
        index += 1;
    }
    bytes
}

pub(crate) fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Picks one charset for all raw 8-bit text of a header, so that its pieces agree.
fn plain_charset(segments: &[Segment<'_>]) -> Option<&'static encoding_rs::Encoding> {
    let mut plain = Vec::new();
    for segment in segments {
        if let Segment::Plain(bytes) = segment {
            plain.extend_from_slice(bytes);
        }
    }
    if plain.is_ascii() {
        None
    } else {
        Some(charset::sniff(&plain))
    }
}

fn decode_plain(bytes: &[u8], charset: Option<&'static encoding_rs::Encoding>) -> String {
    match charset {
        None => bytes.iter().map(|&byte| char::from(byte)).collect(),
        Some(encoding) => encoding.decode_without_bom_handling(bytes).0.into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::decode_text;

    #[test]
    fn decodes_single_words() {
        let cases: [(&str, &str); 6] = [
            ("=?UTF-8?B?5L2g5aW9?=", "你好"),
            ("=?iso-8859-1?q?caf=E9_cr=E8me?=", "café crème"),
            ("plain text", "plain text"),
            ("=?utf-8?Q?a?= =?utf-8?Q?b?=", "ab"),
            ("=?utf-8?Q?a?= b =?utf-8?Q?c?=", "a b c"),
            ("=?utf-8*en?Q?hello?=", "hello"),
        ];
        for (raw, expected) in cases {
            assert_eq!(decode_text(raw.as_bytes()).text, expected, "raw {raw}");
        }
    }

    #[test]
    fn utf8_character_split_across_words() {
        // "€" is E2 82 AC; the words split it after the first byte.
        let raw = "=?UTF-8?Q?=E2?= =?UTF-8?Q?=82=ACx?=";
        assert_eq!(decode_text(raw.as_bytes()).text, "€x");
    }

    #[test]
    fn malformed_word_stays_literal() {
        let raw = "=?utf-8?B?not base64?= tail";
        assert_eq!(decode_text(raw.as_bytes()).text, raw);
    }
}
