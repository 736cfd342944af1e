//! The message mix: every message of the reference scenario with its
//! envelope. Each copy sent gets a Message-ID of its own, which is how the
//! driver finds it again upstream or in the quarantine.

use std::fs;
use std::path::Path;

/// One scenario message, ready to be sent under any Message-ID.
pub struct Template {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The header section without its Message-ID field, CRLF line ends.
    header: Vec<u8>,
    /// The empty line and the body.
    body: Vec<u8>,
}

#[derive(serde::Deserialize)]
struct Entry {
    file: String,
    mail_from: String,
    rcpt_to: Vec<String>,
}

/// Reads every message listed in `scenario/manifest.json`, in manifest order.
pub fn load_scenario(scenario: &Path) -> Vec<Template> {
    let manifest = fs::read(scenario.join("manifest.json")).expect("scenario manifest readable");
    let entries: Vec<Entry> = serde_json::from_slice(&manifest).expect("scenario manifest JSON");
    entries
        .into_iter()
        .map(|entry| {
            let raw = fs::read(scenario.join(&entry.file)).expect("scenario message readable");
            let (header, body) = split_header(&raw);
            Template {
                mail_from: entry.mail_from,
                rcpt_to: entry.rcpt_to,
                header: without_field(header, b"message-id"),
                body: body.to_vec(),
            }
        })
        .collect()
}

/// Builds a plain text message from `mail_from`, for the witnesses of what the graph learned.
pub fn plain(mail_from: &str, rcpt_to: &str, subject: &str) -> Template {
    let header = format!(
        "From: Witness <{mail_from}>\r\nTo: <{rcpt_to}>\r\nSubject: {subject}\r\n\
         Date: Sat, 05 Dec 2026 01:00:00 +0000\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n"
    );
    Template {
        mail_from: mail_from.to_owned(),
        rcpt_to: vec![rcpt_to.to_owned()],
        header: header.into_bytes(),
        body: b"\r\nHello,\r\n\r\nthe schedule for next week is unchanged.\r\n\r\nRegards\r\n"
            .to_vec(),
    }
}

impl Template {
    /// Returns the message with `message_id` (with its angle brackets) as its Message-ID.
    pub fn with_message_id(&self, message_id: &str) -> Vec<u8> {
        let mut message = Vec::with_capacity(self.header.len() + self.body.len() + 64);
        message.extend_from_slice(&self.header);
        message.extend_from_slice(format!("Message-ID: {message_id}\r\n").as_bytes());
        message.extend_from_slice(&self.body);
        if !message.ends_with(b"\r\n") {
            message.extend_from_slice(b"\r\n");
        }
        message
    }
}

/// Splits a message before the empty line that ends its header section.
fn split_header(raw: &[u8]) -> (&[u8], &[u8]) {
    let end = raw
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .map_or(raw.len(), |at| at + 2);
    raw.split_at(end)
}

/// Returns the header section without the fields named `name` (lowercase).
fn without_field(header: &[u8], name: &[u8]) -> Vec<u8> {
    let mut kept = Vec::with_capacity(header.len());
    let mut skipping = false;
    for line in header.split_inclusive(|&byte| byte == b'\n') {
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        if !continuation {
            skipping = field_name_is(line, name);
        }
        if !skipping {
            kept.extend_from_slice(line);
        }
    }
    kept
}

fn field_name_is(line: &[u8], name: &[u8]) -> bool {
    line.len() > name.len()
        && line[..name.len()].eq_ignore_ascii_case(name)
        && line[name.len()] == b':'
}

/// Returns the Message-ID of a raw message (unfolded and trimmed), if its header has one.
pub fn message_id(raw: &[u8]) -> Option<String> {
    let (header, _) = split_header(raw);
    let mut value: Option<Vec<u8>> = None;
    for line in header.split_inclusive(|&byte| byte == b'\n') {
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        match &mut value {
            Some(found) if continuation => found.extend_from_slice(line),
            Some(_) => break,
            None if field_name_is(line, b"message-id") => {
                value = Some(line[b"message-id:".len()..].to_vec());
            }
            None => {}
        }
    }
    let value = String::from_utf8_lossy(&value?).into_owned();
    let unfolded: String = value.split_whitespace().collect();
    (!unfolded.is_empty()).then_some(unfolded)
}

/// Applies SMTP dot-stuffing (RFC 5321 §4.5.2) and appends the final dot.
pub fn dot_stuffed(message: &[u8]) -> Vec<u8> {
    let mut stuffed = Vec::with_capacity(message.len() + 16);
    for line in message.split_inclusive(|&byte| byte == b'\n') {
        if line.first() == Some(&b'.') {
            stuffed.push(b'.');
        }
        stuffed.extend_from_slice(line);
    }
    stuffed.extend_from_slice(b".\r\n");
    stuffed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_id_replaced_and_found() {
        let (header, body) =
            split_header(b"Subject: a\r\nMessage-ID:\r\n <old@x>\r\nTo: b\r\n\r\nbody\r\n");
        let template = Template {
            mail_from: String::new(),
            rcpt_to: Vec::new(),
            header: without_field(header, b"message-id"),
            body: body.to_vec(),
        };

        let message = template.with_message_id("<new@y>");

        assert_eq!(message_id(&message).as_deref(), Some("<new@y>"));
        assert_eq!(
            message,
            b"Subject: a\r\nTo: b\r\nMessage-ID: <new@y>\r\n\r\nbody\r\n".to_vec()
        );
    }
}
