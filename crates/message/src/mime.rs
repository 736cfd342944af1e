//! The walk over mail-parser's part tree that fills [`Message::bodies`] and
//! [`Message::parts`], with locations through nested messages and the depth
//! and part limits.

use mail_parser::{MessagePart, PartType};

use crate::charset;
use crate::decode::params::{self, ContentValue};
use crate::headers::{self, RawField};
use crate::transfer;
use crate::{Body, BodyKind, Finding, FindingKind, Limits, Message, Part};

/// The separator between the steps of a location, as in `forwarded.eml › invoice.docx`.
pub(crate) const LOCATION_SEPARATOR: &str = " › ";

/// Joins a location prefix and a step.
pub(crate) fn join_location(prefix: &str, step: &str) -> String {
    if prefix.is_empty() {
        step.to_owned()
    } else {
        format!("{prefix}{LOCATION_SEPARATOR}{step}")
    }
}

/// The content type, disposition, id, filename and transfer encoding that one part declares.
struct PartInfo {
    content_type: ContentValue,
    disposition: Option<ContentValue>,
    content_id: Option<String>,
    filename: Option<String>,
    /// The Content-Transfer-Encoding, lower-cased; empty when absent.
    transfer_encoding: String,
}

impl PartInfo {
    fn read(fields: &[RawField<'_>], location: &str, findings: &mut Vec<Finding>) -> PartInfo {
        let mut content_type = None;
        let mut disposition = None;
        let mut content_id = None;
        let mut transfer_encoding = String::new();
        for field in fields {
            if field.is("content-type") && content_type.is_none() {
                let (value, problems) = params::parse(field.value);
                for problem in problems {
                    findings.push(headers::label_finding(location, problem));
                }
                content_type = Some(value);
            } else if field.is("content-disposition") && disposition.is_none() {
                let (value, problems) = params::parse(field.value);
                for problem in problems {
                    findings.push(headers::label_finding(location, problem));
                }
                disposition = Some(value);
            } else if field.is("content-transfer-encoding") && transfer_encoding.is_empty() {
                transfer_encoding = String::from_utf8_lossy(field.value)
                    .trim()
                    .to_ascii_lowercase();
            } else if field.is("content-id") && content_id.is_none() {
                content_id = crate::decode::fields::message_ids(field.value)
                    .into_iter()
                    .next();
            }
        }
        let content_type = content_type.unwrap_or_default();
        let filename = disposition
            .as_ref()
            .and_then(|value| value.param("filename"))
            .or_else(|| content_type.param("name"))
            .or_else(|| content_type.param("filename"))
            .map(|name| name.trim().to_owned())
            .filter(|name| !name.is_empty());
        PartInfo {
            content_type,
            disposition,
            content_id,
            filename,
            transfer_encoding,
        }
    }

    fn mime_type(&self) -> &str {
        &self.content_type.value
    }

    fn is_attachment(&self) -> bool {
        self.filename.is_some()
            || self
                .disposition
                .as_ref()
                .is_some_and(|value| value.value == "attachment")
    }

    fn is_inline(&self) -> bool {
        self.disposition
            .as_ref()
            .is_some_and(|value| value.value == "inline")
    }
}

/// Walks parsed messages into a [`Message`], counting parts against the limits.
pub(crate) struct Walker<'l> {
    limits: &'l Limits,
    pub(crate) message: Message,
    parts_seen: usize,
    part_limit_reported: bool,
    nested_messages: usize,
    /// `--boundary` of every enclosing multipart, innermost last.
    delimiters: Vec<Vec<u8>>,
}

impl<'l> Walker<'l> {
    pub(crate) fn new(limits: &'l Limits, message: Message) -> Walker<'l> {
        Walker {
            limits,
            message,
            parts_seen: 0,
            part_limit_reported: false,
            nested_messages: 0,
            delimiters: Vec::new(),
        }
    }

    /// Walks one message, top-level or nested, from its root part.
    pub(crate) fn walk_message(
        &mut self,
        parsed: &mail_parser::Message<'_>,
        prefix: &str,
        depth: usize,
    ) {
        if parsed.parts.is_empty() {
            return;
        }
        self.walk_part(parsed, 0, prefix, depth);
    }

    fn walk_part(
        &mut self,
        parsed: &mail_parser::Message<'_>,
        id: usize,
        prefix: &str,
        depth: usize,
    ) {
        if depth > self.limits.max_mime_depth {
            self.message.findings.push(Finding {
                kind: FindingKind::LimitReached,
                location: join_location(prefix, "part"),
                detail: format!(
                    "MIME nesting deeper than {} levels is not read",
                    self.limits.max_mime_depth
                ),
            });
            return;
        }
        self.parts_seen += 1;
        if self.parts_seen > self.limits.max_parts {
            if !self.part_limit_reported {
                self.part_limit_reported = true;
                self.message.findings.push(Finding {
                    kind: FindingKind::LimitReached,
                    location: join_location(prefix, "part"),
                    detail: format!(
                        "more than {} MIME parts; the rest is not read",
                        self.limits.max_parts
                    ),
                });
            }
            return;
        }
        let Some(part) = parsed.parts.get(id) else {
            return;
        };
        let index = self.parts_seen;
        let fields = headers::raw_fields(&parsed.raw_message, part, self.limits);
        let provisional = join_location(prefix, &format!("part #{index}"));
        let info = PartInfo::read(&fields, &provisional, &mut self.message.findings);
        let step = info
            .filename
            .clone()
            .unwrap_or_else(|| format!("part #{index}"));
        let location = join_location(prefix, &step);

        match &part.body {
            PartType::Multipart(children) => {
                let delimiter = info
                    .content_type
                    .param("boundary")
                    .map(|boundary| format!("--{boundary}").into_bytes());
                if children.is_empty() {
                    self.childless_multipart(parsed, part, delimiter.as_deref(), prefix);
                }
                let pushed = delimiter.is_some();
                if let Some(delimiter) = delimiter {
                    self.delimiters.push(delimiter);
                }
                for &child in children {
                    // Children follow their parent in mail-parser's flat list; anything else would loop.
                    let child = child as usize;
                    if child > id {
                        self.walk_part(parsed, child, prefix, depth + 1);
                    }
                }
                if pushed {
                    self.delimiters.pop();
                }
            }
            PartType::Message(nested) if !nested.parts.is_empty() => {
                // NOTE: only the bodies and parts of a nested message are kept;
                // its own From, Subject and Received fields are not exposed.
                self.nested_messages += 1;
                let name = info
                    .filename
                    .clone()
                    .unwrap_or_else(|| format!("message #{}", self.nested_messages));
                let nested_prefix = join_location(prefix, &name);
                self.walk_message(nested, &nested_prefix, depth + 1);
            }
            PartType::Message(_) => {
                self.not_a_message(&location, &info, part, parsed);
            }
            PartType::Text(_)
            | PartType::Html(_)
            | PartType::Binary(_)
            | PartType::InlineBinary(_) => {
                self.leaf_part(parsed, part, &info, prefix, &location);
            }
        }
    }

    /// Reads a multipart without a single part, as when the opening delimiter
    /// is missing. The text before its closing delimiter becomes a body.
    fn childless_multipart(
        &mut self,
        parsed: &mail_parser::Message<'_>,
        part: &MessagePart<'_>,
        delimiter: Option<&[u8]>,
        prefix: &str,
    ) {
        let start = (part.offset_body as usize).min(parsed.raw_message.len());
        let mut raw = &parsed.raw_message[start..];
        if let Some(delimiter) = delimiter {
            raw = cut_at_delimiters(raw, &[delimiter.to_vec()]);
        }
        if raw.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        let location = join_location(prefix, "body");
        self.message.findings.push(Finding {
            kind: FindingKind::MalformedMime,
            location: location.clone(),
            detail:
                "multipart without an opening delimiter; the text before its end is read as a body"
                    .to_owned(),
        });
        let scanned = &raw[..raw.len().min(self.limits.max_body_bytes)];
        let text = charset::decode_unlabelled(scanned);
        self.push_body(BodyKind::Plain, text, location);
    }

    /// Keeps a part that claims to be a message but contains none as an
    /// attachment, and scans its bytes as text.
    fn not_a_message(
        &mut self,
        location: &str,
        info: &PartInfo,
        part: &MessagePart<'_>,
        parsed: &mail_parser::Message<'_>,
    ) {
        self.message.findings.push(Finding {
            kind: FindingKind::MalformedMime,
            location: location.to_owned(),
            detail: format!("a {} part does not contain a message", info.mime_type()),
        });
        let data = body_bytes(parsed, part, info, &self.delimiters);
        let text = charset::decode_unlabelled(&data);
        self.push_body(BodyKind::Plain, text, location.to_owned());
        self.push_part(info, data, location.to_owned());
    }

    /// Adds a part without children: as a body when it is text, as an attachment otherwise.
    ///
    /// Its bytes are transfer-decoded here from the raw message rather than
    /// taken from mail-parser, whose decoders give up on damaged base64 (a
    /// mailing-list footer after the data is enough) and then hand over the
    /// encoded text.
    fn leaf_part(
        &mut self,
        parsed: &mail_parser::Message<'_>,
        part: &MessagePart<'_>,
        info: &PartInfo,
        prefix: &str,
        location: &str,
    ) {
        let mime_type = info.mime_type();
        let textual = mime_type.is_empty() || mime_type.starts_with("text/");
        if is_message_type(mime_type) {
            self.not_a_message(location, info, part, parsed);
            return;
        }
        if !textual && !mime_type.starts_with("multipart/") {
            // mail-parser's bytes are right unless it reported an encoding
            // problem; decoding again would double the cost of large attachments.
            let data = match &part.body {
                PartType::Binary(data) | PartType::InlineBinary(data)
                    if !part.is_encoding_problem =>
                {
                    data.to_vec()
                }
                _ => body_bytes(parsed, part, info, &self.delimiters),
            };
            self.push_part(info, data, location.to_owned());
            return;
        }
        if mime_type.starts_with("multipart/") {
            self.message.findings.push(Finding {
                kind: FindingKind::MalformedMime,
                location: location.to_owned(),
                detail: format!(
                    "{mime_type} without a usable boundary (boundary {:?}); its body is read as text",
                    info.content_type.param("boundary").unwrap_or("")
                ),
            });
        }

        let data = body_bytes(parsed, part, info, &self.delimiters);
        let body_location = if info.is_attachment() {
            location.to_owned()
        } else {
            join_location(prefix, "body")
        };

        let mut scanned: &[u8] = &data;
        if scanned.len() > self.limits.max_body_bytes {
            self.message.findings.push(Finding {
                kind: FindingKind::LimitReached,
                location: body_location.clone(),
                detail: format!(
                    "body of {} bytes; only the first {} are scanned",
                    data.len(),
                    self.limits.max_body_bytes
                ),
            });
            scanned = &scanned[..self.limits.max_body_bytes];
        }
        let decoded = charset::decode_declared(info.content_type.param("charset"), scanned);
        if let Some(problem) = decoded.problem {
            self.message
                .findings
                .push(headers::label_finding(&body_location, problem));
        }

        let kind = if mime_type == "text/html" {
            BodyKind::Html
        } else {
            BodyKind::Plain
        };
        self.push_body(kind, decoded.text, body_location);
        if info.is_attachment() {
            self.push_part(info, data, location.to_owned());
        }
    }

    fn push_body(&mut self, kind: BodyKind, text: String, location: String) {
        self.message.bodies.push(Body {
            kind,
            text,
            location,
        });
    }

    fn push_part(&mut self, info: &PartInfo, data: Vec<u8>, location: String) {
        let content_type = if info.mime_type().is_empty() {
            "application/octet-stream".to_owned()
        } else {
            info.mime_type().to_owned()
        };
        self.message.parts.push(Part {
            name: info.filename.clone(),
            content_type,
            content_id: info.content_id.clone(),
            inline: info.is_inline(),
            referenced_from: None,
            data,
            location,
        });
    }
}

fn is_message_type(mime_type: &str) -> bool {
    mime_type == "message/rfc822" || mime_type == "message/global"
}

/// The transfer-decoded bytes of a part, read from the raw message by its
/// declared Content-Transfer-Encoding.
///
/// In mail-parser's offsets, a part of a multipart that never closed runs to
/// the end of its parent. It is cut at the first delimiter of any enclosing multipart.
fn body_bytes(
    parsed: &mail_parser::Message<'_>,
    part: &MessagePart<'_>,
    info: &PartInfo,
    delimiters: &[Vec<u8>],
) -> Vec<u8> {
    let start = part.offset_body as usize;
    let end = (part.offset_end as usize).clamp(start, parsed.raw_message.len().max(start));
    let raw = parsed.raw_message.get(start..end).unwrap_or_default();
    let raw = cut_at_delimiters(raw, delimiters);
    match info.transfer_encoding.as_str() {
        "base64" => transfer::base64_body(raw),
        "quoted-printable" => transfer::quoted_printable(raw),
        _ => raw.to_vec(),
    }
}

/// Cuts `raw` before the first line that starts with one of `delimiters`,
/// together with the line break before that line.
fn cut_at_delimiters<'a>(raw: &'a [u8], delimiters: &[Vec<u8>]) -> &'a [u8] {
    if delimiters.is_empty() {
        return raw;
    }
    let mut line_start = 0;
    while line_start < raw.len() {
        let line = &raw[line_start..];
        if delimiters
            .iter()
            .any(|delimiter| line.starts_with(delimiter))
        {
            let before = &raw[..line_start];
            let before = before.strip_suffix(b"\n").unwrap_or(before);
            return before.strip_suffix(b"\r").unwrap_or(before);
        }
        match memchr::memchr(b'\n', line) {
            Some(offset) => line_start += offset + 1,
            None => break,
        }
    }
    raw
}
