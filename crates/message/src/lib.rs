//! Parsing of one email message into the values Gatehouse decides on.
//!
//! The crate owns three things:
//! - [`parse`]: raw RFC 5322 bytes to a [`Message`] with decoded headers, text
//!   and HTML bodies, and attachment parts, in any charset. mail-parser finds
//!   the MIME structure; the strings a decision rests on (subject, display
//!   names, filenames) are decoded here from the raw header bytes.
//! - [`links`]: URLs found in text and HTML, each a [`Link`] with its
//!   registrable domain, its source and its location in the message.
//! - [`Limits`]: the bounds on nesting and size that hostile input meets.
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
