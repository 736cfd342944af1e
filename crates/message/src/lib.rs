//! Parsing of one email message into the values Gatehouse decides on.
//!
//! The crate owns four things:
//! - [`parse`]: raw RFC 5322 bytes to a [`Message`] with decoded headers, text
//!   and HTML bodies, and attachment parts, in any charset. mail-parser finds
//!   the MIME structure; the strings a decision rests on (subject, display
//!   names, filenames) are decoded here from the raw header bytes. Images in
//!   HTML `data:` URIs become parts, and a charset label that lies, a limit
//!   that trips or a broken structure becomes a [`Finding`].
//! - [`decode`]: the header decoders on their own (RFC 2047 encoded-words,
//!   RFC 2231 parameters, address lists, message ids), for other crates that
//!   meet headers, such as nested messages inside archives.
//! - [`links`]: URLs found in text and HTML, each a [`Link`] with its
//!   registrable domain, its source and its location in the message, with
//!   redirectors unwrapped and anchor text that shows another host recorded.
//! - [`Limits`]: the bounds on nesting and size that hostile input meets.
//!
//! Inside [`parse`], `prepare` first scans the raw lines for limits, missing
//! blank lines and unclosed multiparts. Then `mime` walks mail-parser's part
//! tree, and `headers` and `decode` turn raw header bytes into text. `charset`
//! decodes bodies over encoding_rs, with chardetng to judge lying labels.
//!
//! Unpacking attachments (archives, Office files, images) is left to
//! `gatehouse-unpack`, and QR decoding to `gatehouse-qr`.

pub mod decode;
pub mod links;

mod charset;
mod headers;
mod inline_images;
mod limits;
mod mime;
mod model;
mod parse;
mod prepare;
mod transfer;
mod utf7;

pub use limits::Limits;
pub use links::{Link, LinkSource};
pub use model::{
    AuthResult, Body, BodyKind, Finding, FindingKind, Headers, Mailbox, Message, Part, ReceivedHop,
};
pub use parse::parse;
