//! Marks on delivered mail that a person or a mail filter reads: the
//! `X-Gatehouse-*` header fields, a subject prefix and a first-contact banner.
//!
//! Every front tags the same way. The proxy rewrites the message with
//! [`tag`]. The milter front takes the parts of a [`Tagging`] from [`plan`]
//! and sends them as milter modifications (add header, change Subject,
//! replace body).
//!
//! The banner goes into the first text/plain and the first text/html body
//! part, never into attachments or nested messages. Each part keeps its
//! transfer encoding (base64 stays base64, quoted-printable stays
//! quoted-printable) and its charset when the banner can be written in it.
//! Otherwise a text part is converted to UTF-8, and an HTML part gets the
//! banner's other characters as numeric character references.
//!
//! Changing the Subject or a body breaks DKIM signatures over them, so a
//! server behind the gateway that verifies DKIM must do so before tagging
//! or not at all.

use std::borrow::Cow;

use base64::Engine as _;
use encoding_rs::{Encoding, UTF_8};
use mail_parser::{Encoding as TransferEncoding, MessageParser, MimeHeaders, PartType};

use crate::verdict::Verdict;

/// Prefix of every header field name Gatehouse writes.
pub const HEADER_PREFIX: &str = "X-Gatehouse-";

/// The signal that makes a tagged message get the banner.
const FIRST_CONTACT: &str = "sender.first_contact";

/// Maximum characters per encoded line, RFC 2045 §6.7 and §6.8.
const ENCODED_LINE: usize = 76;

/// How tagged mail is marked, beyond the header fields it always gets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagOptions {
    /// Text put before the Subject of tagged mail, such as `[External]`.
    pub subject_prefix: Option<String>,
    /// Plain text put on top of the text body of tagged first-contact mail.
    pub banner_text: Option<String>,
    /// HTML put at the start of the `<body>` of tagged first-contact mail.
    pub banner_html: Option<String>,
}

/// The changes that tag one message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tagging {
    /// Header fields to add at the top, as name and value.
    pub headers: Vec<(String, String)>,
    /// The new value of the Subject field, ready for the wire (RFC 2047 words
    /// where needed), when a prefix was added.
    pub subject: Option<String>,
    /// The new body (everything after the blank line that ends the header
    /// section), when a banner was added. Header fields of the top-level
    /// part that must change with it are in `body_headers`.
    pub body: Option<Vec<u8>>,
    /// `Content-Type` and `Content-Transfer-Encoding` values of the
    /// top-level part that the banner changed, as name and value.
    pub body_headers: Vec<(String, String)>,
}

/// Returns the `X-Gatehouse-*` header fields that describe a verdict.
pub fn verdict_headers(verdict: &Verdict) -> Vec<(String, String)> {
    let signals: Vec<&str> = verdict
        .signals
        .iter()
        .map(|signal| signal.id.as_str())
        .collect();
    let action = serde_json::to_value(verdict.action)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default();
    vec![
        (format!("{HEADER_PREFIX}Action"), action),
        (
            format!("{HEADER_PREFIX}Score"),
            format!("{:.1}", verdict.score),
        ),
        (format!("{HEADER_PREFIX}Signals"), signals.join(", ")),
        (format!("{HEADER_PREFIX}Id"), verdict.id.clone()),
    ]
}

/// Removes every `X-Gatehouse-*` field from the header section, so that a
/// sender cannot forge a verdict that a filter behind the gateway trusts.
pub fn strip_verdict_headers(message: &[u8]) -> Cow<'_, [u8]> {
    let fields = header_fields(message);
    if !fields.iter().any(|field| is_ours(field.name)) {
        return Cow::Borrowed(message);
    }
    let mut out = Vec::with_capacity(message.len());
    let mut position = 0;
    for field in fields.iter().filter(|field| is_ours(field.name)) {
        out.extend_from_slice(&message[position..field.start]);
        position = field.end;
    }
    out.extend_from_slice(&message[position..]);
    Cow::Owned(out)
}

/// Works out how to tag `message` for `verdict`: header fields always, the
/// subject prefix and the first-contact banner when configured.
pub fn plan(message: &[u8], verdict: &Verdict, options: &TagOptions) -> Tagging {
    let mut tagging = Tagging {
        headers: verdict_headers(verdict),
        ..Tagging::default()
    };
    if let Some(prefix) = options.subject_prefix.as_deref().filter(|p| !p.is_empty()) {
        let current = header_fields(message)
            .into_iter()
            .find(|field| field.name.eq_ignore_ascii_case(b"Subject"))
            .map(|field| field_value(&message[field.start..field.end]));
        let decoded = verdict.message.subject.as_deref().unwrap_or("");
        if !decoded.starts_with(prefix) {
            tagging.subject = Some(prefixed_subject(prefix, current.as_deref()));
        }
    }
    let first_contact = verdict
        .signals
        .iter()
        .any(|signal| signal.id == FIRST_CONTACT);
    if first_contact && (options.banner_text.is_some() || options.banner_html.is_some()) {
        add_banner(message, options, &mut tagging);
    }
    tagging
}

/// Applies a [`Tagging`] to the message and returns the tagged message.
pub fn apply(message: &[u8], tagging: &Tagging) -> Vec<u8> {
    let header_end = header_end(message);
    let mut out = Vec::with_capacity(message.len() + 512);
    for (name, value) in &tagging.headers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }

    // Rewrite the header section field by field.
    let mut replaced: Vec<(String, String)> = Vec::new();
    if let Some(subject) = &tagging.subject {
        replaced.push(("Subject".to_owned(), subject.clone()));
    }
    replaced.extend(tagging.body_headers.iter().cloned());
    let mut written = vec![false; replaced.len()];
    let mut position = 0;
    for field in header_fields(message) {
        let replacement = replaced
            .iter()
            .position(|(name, _)| field.name.eq_ignore_ascii_case(name.as_bytes()));
        if let Some(index) = replacement {
            out.extend_from_slice(&message[position..field.start]);
            if !written[index] {
                let (name, value) = &replaced[index];
                out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
                written[index] = true;
            }
            position = field.end;
        }
    }
    out.extend_from_slice(&message[position..header_end.fields_end]);
    for ((name, value), done) in replaced.iter().zip(&written) {
        if !done {
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
    }

    match &tagging.body {
        Some(body) => {
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(body);
        }
        None => out.extend_from_slice(&message[header_end.fields_end..]),
    }
    out
}

/// Plans and applies the tagging of one message.
pub fn tag(message: &[u8], verdict: &Verdict, options: &TagOptions) -> Vec<u8> {
    apply(message, &plan(message, verdict, options))
}

fn is_ours(name: &[u8]) -> bool {
    name.len() >= HEADER_PREFIX.len()
        && name[..HEADER_PREFIX.len()].eq_ignore_ascii_case(HEADER_PREFIX.as_bytes())
}

/// One header field: its name and its byte range, continuation lines and line ending included.
struct Field<'a> {
    name: &'a [u8],
    start: usize,
    end: usize,
}

/// Where the header section ends.
struct HeaderEnd {
    /// The end of the last field, where the blank line starts.
    fields_end: usize,
}

fn header_end(message: &[u8]) -> HeaderEnd {
    let mut position = 0;
    while position < message.len() {
        let line_end = message[position..]
            .iter()
            .position(|&byte| byte == b'\n')
            .map_or(message.len(), |end| position + end + 1);
        let line = &message[position..line_end];
        if line == b"\r\n" || line == b"\n" {
            return HeaderEnd {
                fields_end: position,
            };
        }
        position = line_end;
    }
    HeaderEnd {
        fields_end: message.len(),
    }
}

/// Splits the header section into fields.
fn header_fields(message: &[u8]) -> Vec<Field<'_>> {
    let end = header_end(message).fields_end;
    let mut fields: Vec<Field<'_>> = Vec::new();
    let mut position = 0;
    while position < end {
        let line_end = message[position..end]
            .iter()
            .position(|&byte| byte == b'\n')
            .map_or(end, |offset| position + offset + 1);
        let line = &message[position..line_end];
        if matches!(line.first(), Some(b' ' | b'\t')) {
            if let Some(field) = fields.last_mut() {
                field.end = line_end;
            }
        } else {
            let name_end = line.iter().position(|&byte| byte == b':').unwrap_or(0);
            fields.push(Field {
                name: trim_ascii(&line[..name_end]),
                start: position,
                end: line_end,
            });
        }
        position = line_end;
    }
    fields
}

fn trim_ascii(bytes: &[u8]) -> &[u8] {
    bytes.trim_ascii()
}

/// Returns a field's value as written, without the name, the leading space and the line ending.
fn field_value(field: &[u8]) -> String {
    let value = field
        .iter()
        .position(|&byte| byte == b':')
        .map_or(&field[..0], |colon| &field[colon + 1..]);
    let value = value
        .strip_suffix(b"\r\n")
        .or(value.strip_suffix(b"\n"))
        .unwrap_or(value);
    let value = value.strip_prefix(b" ").unwrap_or(value);
    String::from_utf8_lossy(value).into_owned()
}

/// Builds the new Subject value. A prefix with non-ASCII characters becomes
/// one RFC 2047 word with the space after it inside, because decoders drop
/// the whitespace between two encoded words.
fn prefixed_subject(prefix: &str, current: Option<&str>) -> String {
    let current = current.unwrap_or("");
    if prefix.is_ascii() {
        return if current.is_empty() {
            prefix.to_owned()
        } else {
            format!("{prefix} {current}")
        };
    }
    let word = base64::engine::general_purpose::STANDARD.encode(format!("{prefix} "));
    format!("=?UTF-8?B?{word}?= {current}")
        .trim_end()
        .to_owned()
}

/// One change to the raw message: bytes in `start..end` become `bytes`.
struct Edit {
    start: usize,
    end: usize,
    bytes: Vec<u8>,
}

/// Puts the banner into the first text/plain and text/html body parts.
fn add_banner(message: &[u8], options: &TagOptions, tagging: &mut Tagging) {
    let Some(parsed) = MessageParser::default().parse(message) else {
        return;
    };
    let mut edits: Vec<Edit> = Vec::new();
    let mut top_level_headers: Vec<(String, String)> = Vec::new();

    let text_part = parsed.text_body.iter().map(|&id| id as usize).find(|&id| {
        parsed
            .parts
            .get(id)
            .is_some_and(|part| matches!(part.body, PartType::Text(_)) && !is_attachment(part))
    });
    let html_part = parsed.html_body.iter().map(|&id| id as usize).find(|&id| {
        parsed
            .parts
            .get(id)
            .is_some_and(|part| matches!(part.body, PartType::Html(_)) && !is_attachment(part))
    });
    let targets = [
        (text_part, options.banner_text.as_deref(), false),
        (html_part, options.banner_html.as_deref(), true),
    ];
    for (part_id, banner, html) in targets {
        let (Some(part_id), Some(banner)) = (part_id, banner) else {
            continue;
        };
        let Some(part) = parsed.parts.get(part_id) else {
            continue;
        };
        let header_start = part.offset_header as usize;
        let body_start = part.offset_body as usize;
        let body_end = (part.offset_end as usize).min(message.len());
        if header_start > body_start || body_start > body_end {
            continue;
        }
        let charset = part
            .content_type()
            .and_then(|content_type| content_type.attribute("charset"))
            .unwrap_or("us-ascii");
        let Some(rewritten) = rewrite_part(
            &message[body_start..body_end],
            part.encoding,
            charset,
            declared_transfer_encoding(&message[header_start..body_start]),
            banner,
            html,
        ) else {
            continue;
        };

        edits.push(Edit {
            start: body_start,
            end: body_end,
            bytes: rewritten.body,
        });
        let mut changed = Vec::new();
        if let Some(charset) = rewritten.charset {
            let content_type = part.content_type().map_or_else(
                || format!("text/plain; charset={charset}"),
                |content_type| {
                    format!(
                        "{}/{}; charset={charset}",
                        content_type.ctype(),
                        content_type.subtype().unwrap_or("plain")
                    )
                },
            );
            changed.push(("Content-Type".to_owned(), content_type));
        }
        if let Some(encoding) = rewritten.transfer_encoding {
            changed.push(("Content-Transfer-Encoding".to_owned(), encoding.to_owned()));
        }
        if changed.is_empty() {
            continue;
        }
        if part_id == 0 {
            top_level_headers = changed;
        } else {
            let header_block = &message[header_start..body_start];
            edits.push(Edit {
                start: header_start,
                end: body_start,
                bytes: rewrite_fields(header_block, &changed),
            });
        }
    }
    if edits.is_empty() {
        return;
    }

    // The top-level header section stays apart: `apply` writes it.
    let body_start = header_end(message).fields_end;
    let body_start = body_start
        + if message[body_start..].starts_with(b"\r\n") {
            2
        } else if message[body_start..].starts_with(b"\n") {
            1
        } else {
            0
        };
    edits.sort_by_key(|edit| edit.start);
    let mut body = Vec::with_capacity(message.len() - body_start + 1024);
    let mut position = body_start;
    for edit in edits {
        if edit.start < position {
            // Overlapping edits mean a structure this code does not expect; keep the message.
            return;
        }
        body.extend_from_slice(&message[position..edit.start]);
        body.extend_from_slice(&edit.bytes);
        position = edit.end;
    }
    body.extend_from_slice(&message[position..]);
    tagging.body = Some(body);
    tagging.body_headers = top_level_headers;
}

fn is_attachment(part: &mail_parser::MessagePart<'_>) -> bool {
    part.content_disposition()
        .is_some_and(|disposition| disposition.is_attachment())
}

/// Returns the Content-Transfer-Encoding a part's header block declares, in lower case.
fn declared_transfer_encoding(header_block: &[u8]) -> Option<String> {
    header_fields(header_block)
        .into_iter()
        .find(|field| {
            field
                .name
                .eq_ignore_ascii_case(b"Content-Transfer-Encoding")
        })
        .map(|field| {
            field_value(&header_block[field.start..field.end])
                .trim()
                .to_ascii_lowercase()
        })
}

/// Replaces fields in a part's header block, adding those it lacks.
fn rewrite_fields(header_block: &[u8], changed: &[(String, String)]) -> Vec<u8> {
    let fields = header_fields(header_block);
    let mut out = Vec::with_capacity(header_block.len() + 128);
    let mut position = 0;
    let mut written = vec![false; changed.len()];
    for field in &fields {
        let Some(index) = changed
            .iter()
            .position(|(name, _)| field.name.eq_ignore_ascii_case(name.as_bytes()))
        else {
            continue;
        };
        out.extend_from_slice(&header_block[position..field.start]);
        if !written[index] {
            let (name, value) = &changed[index];
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
            written[index] = true;
        }
        position = field.end;
    }
    let fields_end = header_end(header_block).fields_end;
    out.extend_from_slice(&header_block[position..fields_end]);
    for ((name, value), done) in changed.iter().zip(&written) {
        if !done {
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
    }
    out.extend_from_slice(&header_block[fields_end..]);
    out
}

/// A body part with the banner in it.
struct Rewritten {
    body: Vec<u8>,
    /// The new charset, when the part had to change to UTF-8.
    charset: Option<&'static str>,
    /// The new Content-Transfer-Encoding, when 7-bit text gained 8-bit bytes.
    transfer_encoding: Option<&'static str>,
}

/// Decodes a part's body, inserts the banner and encodes it back.
///
/// Returns `None` when the part's charset is one the banner cannot be
/// inserted into safely (UTF-16, or a label encoding_rs does not know).
fn rewrite_part(
    raw: &[u8],
    encoding: TransferEncoding,
    charset: &str,
    declared: Option<String>,
    banner: &str,
    html: bool,
) -> Option<Rewritten> {
    let label_encoding = Encoding::for_label(charset.trim().as_bytes())?;
    if label_encoding.output_encoding() != label_encoding {
        return None;
    }
    let decoded: Vec<u8> = match encoding {
        TransferEncoding::None => raw.to_vec(),
        TransferEncoding::QuotedPrintable => decode_quoted_printable(raw),
        TransferEncoding::Base64 => decode_base64(raw)?,
    };

    // The banner in the part's own charset, or the whole part in UTF-8.
    let mut charset_change = None;
    let (content, banner_bytes): (Cow<'_, [u8]>, Vec<u8>) = if html {
        (Cow::Borrowed(&decoded), html_ascii(banner).into_bytes())
    } else if banner.is_ascii() {
        (Cow::Borrowed(&decoded), crlf(banner).into_bytes())
    } else {
        let banner = crlf(banner);
        let (bytes, _, unmappable) = label_encoding.encode(&banner);
        if !unmappable && label_encoding.is_ascii_compatible() {
            (Cow::Borrowed(&decoded), bytes.into_owned())
        } else {
            let (text, _) = label_encoding.decode_without_bom_handling(&decoded);
            charset_change = (label_encoding != UTF_8).then_some("utf-8");
            (
                Cow::Owned(text.into_owned().into_bytes()),
                banner.into_bytes(),
            )
        }
    };

    let insert_at = if html { after_body_tag(&content) } else { 0 };
    let mut with_banner = Vec::with_capacity(content.len() + banner_bytes.len() + 8);
    with_banner.extend_from_slice(&content[..insert_at]);
    with_banner.extend_from_slice(&banner_bytes);
    if !html {
        with_banner.extend_from_slice(b"\r\n\r\n");
    }
    with_banner.extend_from_slice(&content[insert_at..]);

    let mut transfer_encoding = None;
    let body = match encoding {
        TransferEncoding::QuotedPrintable => encode_quoted_printable(&with_banner),
        TransferEncoding::Base64 => encode_base64(&with_banner),
        TransferEncoding::None => {
            let seven_bit = !matches!(declared.as_deref(), Some("8bit" | "binary"));
            if seven_bit && !with_banner.is_ascii() {
                transfer_encoding = Some("quoted-printable");
                encode_quoted_printable(&with_banner)
            } else {
                with_banner
            }
        }
    };
    Some(Rewritten {
        body,
        charset: charset_change,
        transfer_encoding,
    })
}

/// Returns the offset just after the `<body ...>` start tag, or 0 without one.
fn after_body_tag(html: &[u8]) -> usize {
    let lower: Vec<u8> = html.iter().map(u8::to_ascii_lowercase).collect();
    let mut from = 0;
    while let Some(found) = find(&lower[from..], b"<body") {
        let start = from + found;
        let next = lower.get(start + 5).copied();
        if matches!(next, Some(b'>' | b' ' | b'\t' | b'\r' | b'\n' | b'/')) {
            return find(&lower[start..], b">").map_or(0, |end| start + end + 1);
        }
        from = start + 5;
    }
    0
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Writes every non-ASCII character as a numeric character reference, so the
/// banner fits a part of any ASCII-compatible charset.
fn html_ascii(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            out.push_str(&format!("&#{};", u32::from(c)));
        }
    }
    out
}

/// Normalises line endings to CRLF.
fn crlf(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\n', "\r\n")
}

fn decode_base64(raw: &[u8]) -> Option<Vec<u8>> {
    let clean: Vec<u8> = raw
        .iter()
        .copied()
        .filter(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'+' | b'/'))
        .collect();
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(&clean)
        .ok()
}

fn encode_base64(bytes: &[u8]) -> Vec<u8> {
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut out = Vec::with_capacity(encoded.len() + encoded.len() / ENCODED_LINE * 2 + 2);
    for line in encoded.as_bytes().chunks(ENCODED_LINE) {
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn decode_quoted_printable(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut index = 0;
    while index < raw.len() {
        let byte = raw[index];
        if byte != b'=' {
            out.push(byte);
            index += 1;
            continue;
        }
        let rest = &raw[index + 1..];
        if rest.starts_with(b"\r\n") {
            index += 3;
        } else if rest.starts_with(b"\n") {
            index += 2;
        } else if let Some(value) = rest
            .get(..2)
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(value);
            index += 3;
        } else {
            out.push(b'=');
            index += 1;
        }
    }
    out
}

/// Encodes text as quoted-printable (RFC 2045 §6.7), keeping CRLF as line breaks.
fn encode_quoted_printable(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 8);
    let mut line_length = 0;
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        if byte == b'\r' && bytes.get(index + 1) == Some(&b'\n') {
            out.extend_from_slice(b"\r\n");
            line_length = 0;
            index += 2;
            continue;
        }
        let at_line_end = matches!(bytes.get(index + 1), None | Some(b'\r'));
        let literal =
            matches!(byte, 33..=60 | 62..=126) || (matches!(byte, b' ' | b'\t') && !at_line_end);
        let piece = if literal {
            vec![byte]
        } else {
            format!("={byte:02X}").into_bytes()
        };
        if line_length + piece.len() > ENCODED_LINE - 1 {
            out.extend_from_slice(b"=\r\n");
            line_length = 0;
        }
        out.extend_from_slice(&piece);
        line_length += piece.len();
        index += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_printable_round_trip() {
        let text = "Grüße aus Köln = \r\nline two\t\r\n".repeat(10);

        let encoded = encode_quoted_printable(text.as_bytes());

        assert!(encoded.is_ascii());
        assert!(
            encoded.split(|&b| b == b'\n').all(|line| line.len() <= 77),
            "{}",
            String::from_utf8_lossy(&encoded)
        );
        assert_eq!(decode_quoted_printable(&encoded), text.as_bytes());
    }

    #[test]
    fn body_tag_is_found() {
        assert_eq!(after_body_tag(b"<html><BODY class=x>hi"), 20);
        assert_eq!(after_body_tag(b"<p>no body tag</p>"), 0);
        assert_eq!(after_body_tag(b"<bodyguard><body>x"), 17);
    }

    #[test]
    fn forged_headers_are_removed() {
        let message = b"X-Gatehouse-Action: deliver\r\nSubject: hi\r\nx-gatehouse-score: 0\r\n  folded\r\n\r\nX-Gatehouse-Action: body\r\n";

        let stripped = strip_verdict_headers(message);

        assert_eq!(
            &stripped[..],
            b"Subject: hi\r\n\r\nX-Gatehouse-Action: body\r\n"
        );
    }

    #[test]
    fn non_ascii_prefix_is_one_encoded_word() {
        assert_eq!(
            prefixed_subject("[Extern✉]", Some("hello")),
            "=?UTF-8?B?W0V4dGVybuKciV0g?= hello"
        );
        assert_eq!(prefixed_subject("[External]", None), "[External]");
    }

    /// Builds a tag verdict from JSON, so fields added to `Verdict` later take their defaults.
    fn verdict(signals: &[&str]) -> Verdict {
        let signals: Vec<serde_json::Value> = signals
            .iter()
            .map(|id| serde_json::json!({"id": id, "weight": 1.0, "evidence": ""}))
            .collect();
        let value = serde_json::json!({
            "id": "0193a4b2-7c1e-7d3a-9b1f-2c4d5e6f7a8b",
            "action": "tag",
            "score": 6.25,
            "signals": signals,
            "envelope": {"mail_from": "a@b.test", "rcpt_to": ["c@example.com"]},
            "message": {},
            "links": [],
            "attachments": [],
            "qr_codes": [],
        });
        serde_json::from_value(value).expect("valid verdict JSON")
    }

    fn options() -> TagOptions {
        TagOptions {
            subject_prefix: Some("[External]".to_owned()),
            banner_text: Some("\u{26a0} First message from this sender".to_owned()),
            banner_html: Some("<p>\u{26a0} First message from this sender</p>".to_owned()),
        }
    }

    /// Returns the decoded body of the first part whose header block contains `marker`.
    fn part_text(message: &[u8], content_type: &str) -> String {
        let parsed = MessageParser::default()
            .parse(message)
            .expect("tagged message parses");
        parsed
            .parts
            .iter()
            .find(|part| {
                part.content_type().is_some_and(|ct| {
                    format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or("")) == content_type
                })
            })
            .and_then(|part| part.text_contents())
            .expect("part found")
            .to_owned()
    }

    const ALTERNATIVE: &str = "From: a@b.test\r\nSubject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\nMIME-Version: 1.0\r\n\
        Content-Type: multipart/mixed; boundary=outer\r\n\r\n\
        --outer\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n\
        --inner\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
        Gr=FC=DFe aus K=F6ln\r\n\
        --inner\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n\
        PGh0bWw+PGJvZHk+R3LDvMOfZTwvYm9keT48L2h0bWw+\r\n\
        --inner--\r\n\
        --outer\r\nContent-Type: text/plain; charset=us-ascii\r\nContent-Disposition: attachment; filename=notes.txt\r\n\r\n\
        attached notes\r\n\
        --outer--\r\n";

    #[test]
    fn banner_goes_into_text_and_html_parts() {
        let tagged = tag(
            ALTERNATIVE.as_bytes(),
            &verdict(&["sender.first_contact"]),
            &options(),
        );

        let text = part_text(&tagged, "text/plain");
        assert_eq!(
            text,
            "\u{26a0} First message from this sender\r\n\r\nGr\u{fc}\u{df}e aus K\u{f6}ln"
        );
        let html = part_text(&tagged, "text/html");
        assert_eq!(
            html,
            "<html><body><p>&#9888; First message from this sender</p>Gr\u{fc}\u{df}e</body></html>"
        );
    }

    #[test]
    fn banner_changes_charset_it_cannot_use() {
        let tagged = tag(
            ALTERNATIVE.as_bytes(),
            &verdict(&["sender.first_contact"]),
            &options(),
        );
        let tagged = String::from_utf8_lossy(&tagged);

        assert!(
            tagged.contains("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n"),
            "{tagged}"
        );
        assert!(tagged.contains("attached notes\r\n"), "{tagged}");
        assert!(
            tagged.contains("Content-Transfer-Encoding: base64\r\n"),
            "{tagged}"
        );
    }

    #[test]
    fn headers_and_prefix_without_banner() {
        let tagged = tag(
            ALTERNATIVE.as_bytes(),
            &verdict(&["link.in_qr"]),
            &options(),
        );
        let tagged = String::from_utf8_lossy(&tagged);

        assert!(
            tagged.starts_with("X-Gatehouse-Action: tag\r\nX-Gatehouse-Score: 6.2\r\nX-Gatehouse-Signals: link.in_qr\r\nX-Gatehouse-Id: 0193a4b2-7c1e-7d3a-9b1f-2c4d5e6f7a8b\r\nFrom: a@b.test\r\n"),
            "{tagged}"
        );
        assert!(
            tagged.contains("\r\nSubject: [External] =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\n"),
            "{tagged}"
        );
        assert!(tagged.ends_with(&ALTERNATIVE[ALTERNATIVE.find("\r\n\r\n").unwrap_or(0)..]));
    }

    #[test]
    fn plain_seven_bit_message_gets_quoted_printable() {
        let message = b"From: a@b.test\r\nSubject: hi\r\n\r\nplain text\r\n";

        let tagged = tag(message, &verdict(&["sender.first_contact"]), &options());
        let tagged = String::from_utf8_lossy(&tagged);

        assert!(
            tagged.contains("\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=E2=9A=A0 First message from this sender\r\n\r\nplain text\r\n"),
            "{tagged}"
        );
    }
}
