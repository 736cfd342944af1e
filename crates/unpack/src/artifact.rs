use sha2::{Digest, Sha256};

use crate::FileKind;

/// One file and everything found in it, with the files nested inside it.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// The path from the attachment down: `通知文件.docx › word/media/image1.png`.
    pub location: String,
    pub kind: FileKind,
    pub size: u64,
    /// Lower-case hex SHA-256 of the bytes.
    pub sha256: String,
    /// Text extracted from the file (document body, headers, footers, notes), bounded.
    pub text: String,
    /// URLs in relationships, field codes and other structured places.
    pub urls: Vec<FoundUrl>,
    /// Nested files: archive entries, media, embedded packages.
    pub children: Vec<Artifact>,
    /// Image bytes kept for the QR stage; empty for other kinds.
    pub image_data: Vec<u8>,
    /// Greyscale renderings of PDF pages, regions of pages and SVG drawings, for the QR stage.
    pub renders: Vec<Render>,
    /// The source of an HTML attachment, bounded by `max_text_chars`, for the
    /// link stage and for codes drawn with tables or block characters.
    pub markup: String,
    pub findings: Vec<Finding>,
}

impl Artifact {
    /// An artifact with no content looked at yet.
    pub fn leaf(location: &str, kind: FileKind, data: &[u8]) -> Artifact {
        Artifact {
            location: location.to_owned(),
            kind,
            size: data.len() as u64,
            sha256: hex::encode(Sha256::digest(data)),
            text: String::new(),
            urls: Vec::new(),
            children: Vec::new(),
            image_data: if kind.is_image() {
                data.to_vec()
            } else {
                Vec::new()
            },
            renders: Vec::new(),
            markup: String::new(),
            findings: Vec::new(),
        }
    }

    /// Visits this artifact and every nested one, depth first.
    pub fn walk(&self) -> impl Iterator<Item = &Artifact> {
        let mut stack = vec![self];
        std::iter::from_fn(move || {
            let next = stack.pop()?;
            stack.extend(next.children.iter().rev());
            Some(next)
        })
    }
}

/// A greyscale rendering of something drawn, one byte a pixel, row by row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Render {
    /// Where the drawing is: `invoice.pdf › page 2`.
    pub location: String,
    pub width: u32,
    pub height: u32,
    pub luma: Vec<u8>,
    pub scope: RenderScope,
}

/// What part of a drawing a [`Render`] shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenderScope {
    /// A whole page or drawing at the base scale.
    Page,
    /// A region that looks like a code (a cluster of small squares, or an
    /// image), enlarged so that its modules are at least a few pixels wide.
    Region,
}

/// A URL found in a structured place of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundUrl {
    pub url: String,
    pub kind: UrlKind,
    /// The part the URL was found in: `通知文件.docx › word/_rels/document.xml.rels`.
    pub location: String,
}

/// What kind of reference a URL is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlKind {
    Hyperlink,
    /// A remote template, linked image or other `TargetMode="External"` relationship.
    ExternalResource,
    /// A URL in a HYPERLINK field code or in the document text.
    Text,
}

/// Something the verdict should mention about a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: FindingKind,
    pub location: String,
    /// The values behind the finding, for the verdict's evidence.
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindingKind {
    /// Encrypted, damaged beyond reading, or over a limit: content was not looked at.
    Unscannable,
    /// Macros, embedded executables or OLE packages.
    ActiveContent,
    /// The file's name says one type and its content another.
    NameMismatch,
    /// Encrypted, but readable without a password (a PDF with an empty
    /// user password): the content was looked at.
    Encrypted,
}
