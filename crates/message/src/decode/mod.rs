//! Header decoding from raw bytes: RFC 2047 encoded-words, RFC 2231
//! parameters, address lists and structured fields.
//!
//! mail-parser finds the MIME structure, but the strings a verdict rests on
//! are decoded here, from the raw header bytes: mail-parser 0.11.9 garbles
//! encoded-words and RFC 2231 sections split inside a multi-byte character or
//! an ISO-2022-JP escape sequence, and loses encoded-words inside parameters.

pub(crate) mod address;
pub(crate) mod fields;
pub(crate) mod params;
pub(crate) mod rfc2047;

pub use params::ContentValue;

use crate::Mailbox;

/// Decodes unstructured header text such as a `Subject` value: unfolds it,
/// decodes encoded-words (joining adjacent words of one charset) and reads raw
/// 8-bit bytes as UTF-8 when valid, by guess otherwise. The result is not trimmed.
pub fn header_text(raw: &[u8]) -> String {
    rfc2047::decode_text(raw).text
}

/// Parses an address list such as a `To` value; groups are flattened.
pub fn address_list(raw: &[u8]) -> Vec<Mailbox> {
    address::parse_list(raw).0
}

/// Parses a `Content-Type` or `Content-Disposition` value with its parameters,
/// assembling RFC 2231 continuations and decoding charsets and encoded-words.
pub fn content_value(raw: &[u8]) -> ContentValue {
    params::parse(raw).0
}

/// Parses message ids such as a `References` value, with or without angle
/// brackets, and returns them without brackets.
pub fn message_ids(raw: &[u8]) -> Vec<String> {
    fields::message_ids(raw)
}
