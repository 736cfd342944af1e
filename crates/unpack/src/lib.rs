//! Bounded unpacking of one attachment into everything it carries.
//!
//! [`unpack`] takes a file's name and bytes and returns an [`Artifact`] tree.
//! Each artifact has its type found by content (not by name), its text, the
//! URLs in its relationships, field codes and text, and the images to pass
//! to the QR stage. Its children are the files nested inside it: ZIP
//! entries, media and embedded packages of Office files, OLE objects. Every read is bounded by [`Limits`]; a limit
//! that trips becomes a [`Finding`] and the walk goes on with what it has.
//!
//! Modules: `sniff` (types by content), `archive` (ZIP reading and
//! recovery), `ooxml` and `xml` (Office packages), `fields` (Word field
//! codes), `ole` (compound files), `walker` (the recursion and its budget).
//! Documents that can draw a code have their own: `pdf` (links, actions,
//! embedded files, page text and renders), `svg` (scripts, embedded images,
//! codes drawn as squares), `html` (markup and embedded images of HTML
//! attachments) and `squares` (clusters of squares that may draw a code).
//!
//! Drawings that may hold a QR code leave the crate as pixels:
//! [`Artifact::image_data`] for raster images and [`Artifact::renders`] for
//! rendered PDF pages and SVG squares. HTML attachments keep their source in
//! [`Artifact::markup`] for the link stage and for codes drawn in HTML.
//!
//! Decoding images and QR codes is left to `gatehouse-qr`, and MIME parsing
//! (including nested `message/rfc822`) to `gatehouse-message`.

mod archive;
mod artifact;
mod fields;
mod html;
mod limits;
mod ole;
mod ooxml;
mod pdf;
mod sniff;
mod squares;
mod svg;
mod walker;
mod xml;

pub use artifact::{Artifact, Finding, FindingKind, FoundUrl, Render, RenderScope, UrlKind};
pub use html::inline_svgs;
pub use limits::Limits;
pub use sniff::{FileKind, sniff};
pub use svg::data_uri_bytes;

/// Unpacks one file. Never fails: what cannot be read becomes a finding on the artifact.
pub fn unpack(name: &str, data: &[u8], limits: &Limits) -> Artifact {
    walker::Walker::new(limits).file(name, name, data, 0, true)
}
