use mail_parser::MessageParser;

use crate::{Body, BodyKind, Finding, FindingKind, Limits, Message};
use crate::{charset, headers, inline_images, mime, prepare};

/// Parses raw message bytes. Any input gives a [`Message`]: what cannot be read becomes a [`crate::Finding`].
///
/// The steps: a line scan enforces the depth and part limits and repairs a
/// missing blank line after headers; mail-parser finds the MIME structure;
/// the header fields, filenames and bodies are decoded here from the raw
/// bytes; `data:` images in HTML become parts and `cid:` references mark theirs.
pub fn parse(raw: &[u8], limits: &Limits) -> Message {
    let prepared = prepare::prepare(raw, limits);
    let mut message = Message {
        findings: prepared.findings,
        ..Message::default()
    };

    let Some(parsed) = MessageParser::default().parse(prepared.raw.as_ref()) else {
        return without_headers(raw, limits, message);
    };

    if let Some(root) = parsed.parts.first() {
        let fields = headers::raw_fields(&parsed.raw_message, root, limits);
        message.headers = headers::read(&fields, &mut message.findings);
    }

    let mut walker = mime::Walker::new(limits, message);
    walker.walk_message(&parsed, "", 0);
    let mut message = walker.message;

    inline_images::extract(&mut message, limits);
    message
}

/// Input in which no header field was found is read as one plain-text body.
fn without_headers(raw: &[u8], limits: &Limits, mut message: Message) -> Message {
    message.findings.push(Finding {
        kind: FindingKind::MalformedMime,
        location: "message".to_owned(),
        detail: "no header fields; the whole input is read as a text body".to_owned(),
    });
    let scanned = &raw[..raw.len().min(limits.max_body_bytes)];
    message.bodies.push(Body {
        kind: BodyKind::Plain,
        text: charset::decode_unlabelled(scanned),
        location: "body".to_owned(),
    });
    message
}
