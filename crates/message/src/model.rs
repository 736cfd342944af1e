use std::net::IpAddr;

use serde::Serialize;
use time::OffsetDateTime;

/// One parsed message: decoded headers, bodies and non-body parts.
///
/// It serialises to JSON for tests and tools, with each part's bytes given as their size.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Message {
    pub headers: Headers,
    /// Text and HTML bodies in MIME order, including those of nested messages.
    pub bodies: Vec<Body>,
    /// Parts that are not bodies: attachments and inline images, with their decoded bytes.
    pub parts: Vec<Part>,
    /// What was odd or could not be read (limits hit, charset labels that lie).
    pub findings: Vec<Finding>,
}

/// The header fields Gatehouse uses, decoded to Unicode.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Headers {
    pub from: Option<Mailbox>,
    pub reply_to: Option<Mailbox>,
    /// Recipients with an address; a display name alone is left out.
    pub to: Vec<Mailbox>,
    /// Recipients with an address; a display name alone is left out.
    pub cc: Vec<Mailbox>,
    pub subject: Option<String>,
    /// Message-ID without angle brackets.
    pub message_id: Option<String>,
    /// In-Reply-To ids without angle brackets.
    pub in_reply_to: Vec<String>,
    /// References ids without angle brackets.
    pub references: Vec<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub date: Option<OffsetDateTime>,
    /// Received hops, topmost (newest) first.
    pub received: Vec<ReceivedHop>,
    pub authentication_results: Vec<AuthResult>,
    /// The address in X-Originating-IP or a similar header, when present.
    pub originating_ip: Option<IpAddr>,
}

/// An address with its optional display name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Mailbox {
    /// The address as written, trimmed; not lower-cased.
    pub address: String,
    pub display_name: Option<String>,
}

/// One `Received` header.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReceivedHop {
    /// The name the sending host gave (HELO) or that was looked up.
    pub from_host: Option<String>,
    /// The sending host's IP address.
    pub from_ip: Option<IpAddr>,
    /// The receiving host.
    pub by_host: Option<String>,
    /// The time after the last `;`.
    #[serde(with = "time::serde::rfc3339::option")]
    pub date: Option<OffsetDateTime>,
}

/// One method result from an `Authentication-Results` header, such as `spf=pass`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuthResult {
    /// The host that wrote the header (the authserv-id).
    pub authserv_id: String,
    /// `spf`, `dkim`, `dmarc`, `arc` or another method, lower-cased.
    pub method: String,
    /// `pass`, `fail`, `softfail`, `none`, `neutral`, `temperror`, `permerror`, lower-cased.
    pub result: String,
    /// The rest of the result, such as `smtp.mailfrom=example.com`.
    pub properties: String,
}

/// Whether a body is plain text or HTML.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BodyKind {
    Plain,
    Html,
}

/// A text or HTML body decoded to Unicode.
#[derive(Debug, Clone, Serialize)]
pub struct Body {
    pub kind: BodyKind,
    pub text: String,
    /// Where the body sits, for evidence: `body`, or `forwarded.eml › body` inside a nested message.
    pub location: String,
}

/// A non-body MIME part.
#[derive(Debug, Clone, Serialize)]
pub struct Part {
    /// The decoded filename (RFC 2047 and RFC 2231), when the part has one.
    pub name: Option<String>,
    /// The declared `type/subtype`, lower-cased.
    pub content_type: String,
    /// Content-ID without angle brackets, for `cid:` references from HTML.
    pub content_id: Option<String>,
    /// Whether the part is marked `Content-Disposition: inline`.
    pub inline: bool,
    /// The location of the HTML body that shows this part through a `cid:` reference.
    pub referenced_from: Option<String>,
    /// The transfer-decoded bytes.
    #[serde(rename = "size", serialize_with = "serialize_len")]
    pub data: Vec<u8>,
    /// Where the part sits: its filename, or a path through nested messages.
    pub location: String,
}

/// Something found while parsing that the verdict should mention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub location: String,
    /// The values behind the finding, for the verdict's evidence.
    pub detail: String,
}

/// What kind of problem a [`Finding`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum FindingKind {
    /// A limit of [`crate::Limits`] stopped the parse before the end.
    LimitReached,
    /// The bytes do not match the declared charset.
    CharsetMismatch,
    /// The declared charset is unknown; the text was decoded by guess.
    CharsetUnknown,
    /// The MIME structure is broken in a way that could hide content.
    MalformedMime,
}

fn serialize_len<S: serde::Serializer>(data: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(data.len() as u64)
}
