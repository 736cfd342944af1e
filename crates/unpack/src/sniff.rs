//! File types found by content: magic bytes, and for ZIP the names and
//! content types of the entries.

use std::io::{Cursor, Read};

use serde::Serialize;

/// A file type recognised by its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    /// A ZIP archive that is not an Office package.
    Zip,
    Docx,
    /// A Word document with macros enabled.
    Docm,
    /// A Word template.
    Dotx,
    Xlsx,
    /// An Excel workbook with macros enabled.
    Xlsm,
    Pptx,
    /// A PowerPoint presentation with macros enabled.
    Pptm,
    /// An OLE2 compound file: legacy Office, or an encrypted OOXML package.
    Cfb,
    Pdf,
    Png,
    Jpeg,
    Gif,
    Bmp,
    Webp,
    Tiff,
    Svg,
    Html,
    Eml,
    Text,
    Unknown,
}

impl FileKind {
    /// Whether the QR stage should decode this file.
    pub fn is_image(self) -> bool {
        matches!(
            self,
            FileKind::Png
                | FileKind::Jpeg
                | FileKind::Gif
                | FileKind::Bmp
                | FileKind::Webp
                | FileKind::Tiff
        )
    }

    /// Returns whether this is an Office Open XML package (a ZIP with `[Content_Types].xml`).
    pub fn is_ooxml(self) -> bool {
        matches!(
            self,
            FileKind::Docx
                | FileKind::Docm
                | FileKind::Dotx
                | FileKind::Xlsx
                | FileKind::Xlsm
                | FileKind::Pptx
                | FileKind::Pptm
        )
    }

    /// Returns whether this is a ZIP archive of any kind, Office packages included.
    pub fn is_zip(self) -> bool {
        self == FileKind::Zip || self.is_ooxml()
    }

    /// Returns the kinds whose content a file name with this extension may
    /// hold, or `None` when the extension implies no type.
    pub fn expected_for_extension(extension: &str) -> Option<&'static [FileKind]> {
        use FileKind::*;
        let kinds: &'static [FileKind] = match extension.to_ascii_lowercase().as_str() {
            "zip" => &[Zip],
            // An encrypted OOXML package is a compound file whatever its extension.
            // Word opens documents and templates under either extension.
            "docx" => &[Docx, Dotx, Cfb],
            "docm" => &[Docm, Docx, Cfb],
            "dotx" => &[Dotx, Docx, Cfb],
            "xlsx" => &[Xlsx, Cfb],
            "xlsm" => &[Xlsm, Xlsx, Cfb],
            "pptx" | "ppsx" => &[Pptx, Cfb],
            "pptm" | "ppsm" => &[Pptm, Pptx, Cfb],
            "doc" | "xls" | "ppt" | "msg" => &[Cfb],
            "pdf" => &[Pdf],
            "png" => &[Png],
            "jpg" | "jpeg" | "jpe" | "jfif" => &[Jpeg],
            "gif" => &[Gif],
            "bmp" | "dib" => &[Bmp],
            "webp" => &[Webp],
            "tif" | "tiff" => &[Tiff],
            "svg" => &[Svg],
            "htm" | "html" => &[Html],
            "eml" => &[Eml],
            _ => return None,
        };
        Some(kinds)
    }
}

/// Finds a file's type from its first bytes (and, for ZIP, its entry names).
pub fn sniff(data: &[u8]) -> FileKind {
    if data.starts_with(b"PK\x03\x04")
        || data.starts_with(b"PK\x05\x06")
        || data.starts_with(b"PK\x07\x08")
    {
        return sniff_zip(data);
    }
    if data.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) {
        return FileKind::Cfb;
    }
    if let Some(kind) = sniff_image(data) {
        return kind;
    }
    if has_zip_end_record(data) {
        return sniff_zip(data);
    }
    // PDF readers accept the header anywhere in the first kilobyte.
    if memchr::memmem::find(&data[..data.len().min(1024)], b"%PDF-").is_some() {
        return FileKind::Pdf;
    }
    sniff_text(data)
}

/// Checks whether an end of central directory record sits where it belongs,
/// in the last 64 KiB + 22 bytes, for archives with bytes before the first entry
/// (self-extracting programs, prepended junk).
fn has_zip_end_record(data: &[u8]) -> bool {
    const EOCD_SEARCH_BYTES: usize = 65_535 + 22;
    let tail = &data[data.len().saturating_sub(EOCD_SEARCH_BYTES)..];
    memchr::memmem::rfind(tail, b"PK\x05\x06").is_some()
        && zip::ZipArchive::new(Cursor::new(data)).is_ok()
}

fn sniff_image(data: &[u8]) -> Option<FileKind> {
    if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(FileKind::Png)
    } else if data.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(FileKind::Jpeg)
    } else if data.starts_with(b"GIF87a") || data.starts_with(b"GIF89a") {
        Some(FileKind::Gif)
    } else if data.len() >= 12 && data.starts_with(b"RIFF") && &data[8..12] == b"WEBP" {
        Some(FileKind::Webp)
    } else if data.starts_with(b"II*\0") || data.starts_with(b"MM\0*") {
        Some(FileKind::Tiff)
    } else if is_bmp(data) {
        Some(FileKind::Bmp)
    } else {
        None
    }
}

/// `BM` alone starts too many text files, so a known DIB header size is required as well.
fn is_bmp(data: &[u8]) -> bool {
    if data.len() < 18 || !data.starts_with(b"BM") {
        return false;
    }
    let header_size = u32::from_le_bytes([data[14], data[15], data[16], data[17]]);
    matches!(header_size, 12 | 40 | 52 | 56 | 64 | 108 | 124)
}

fn sniff_text(data: &[u8]) -> FileKind {
    let head = &data[..data.len().min(4096)];
    if head.is_empty() || head.contains(&0) {
        return FileKind::Unknown;
    }
    let text = String::from_utf8_lossy(head);
    let text = text.trim_start_matches('\u{feff}').trim_start();
    let lower = text.to_ascii_lowercase();

    let xml_prolog = lower.starts_with("<?xml") || lower.starts_with("<!--");
    if lower.starts_with("<svg")
        || lower.starts_with("<!doctype svg")
        || (xml_prolog && lower.contains("<svg"))
    {
        return FileKind::Svg;
    }

    // An HTML attachment may skip `<html>` and open with a script or a form.
    const HTML_STARTS: [&str; 9] = [
        "<!doctype html",
        "<html",
        "<head",
        "<body",
        "<script",
        "<meta",
        "<iframe",
        "<form",
        "<title",
    ];
    if HTML_STARTS.iter().any(|tag| lower.starts_with(tag))
        || (lower.starts_with("<!--") && (lower.contains("<html") || lower.contains("<script")))
    {
        return FileKind::Html;
    }

    if looks_like_message(&lower) {
        return FileKind::Eml;
    }
    if std::str::from_utf8(head).is_ok()
        || head
            .iter()
            .all(|b| !b.is_ascii_control() || b.is_ascii_whitespace())
    {
        return FileKind::Text;
    }
    FileKind::Unknown
}

/// Checks whether text starts with RFC 5322 header fields and carries at least two common ones.
fn looks_like_message(lower: &str) -> bool {
    let Some(first_line) = lower.lines().next() else {
        return false;
    };
    let is_field = |line: &str| {
        line.split_once(':').is_some_and(|(name, _)| {
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
    };
    if !is_field(first_line) {
        return false;
    }
    let known = [
        "\nfrom:",
        "\nto:",
        "\nsubject:",
        "\ndate:",
        "\nmessage-id:",
        "\nmime-version:",
        "\nreceived:",
    ];
    let with_newline = format!("\n{lower}");
    known
        .iter()
        .filter(|field| with_newline.contains(*field))
        .count()
        >= 2
}

const CONTENT_TYPES: &str = "[Content_Types].xml";

/// How far into `[Content_Types].xml` the main content type is looked for.
const CONTENT_TYPES_SNIFF_BYTES: u64 = 256 * 1024;

fn sniff_zip(data: &[u8]) -> FileKind {
    let Ok(mut archive) = zip::ZipArchive::new(Cursor::new(data)) else {
        return sniff_zip_local_names(data);
    };
    let names: Vec<String> = archive
        .file_names()
        .filter_map(Result::ok)
        .map(|name| name.into_owned())
        .collect();
    let mut content_types = String::new();
    if let Some(index) = names
        .iter()
        .position(|name| name.eq_ignore_ascii_case(CONTENT_TYPES))
        && let Ok(entry) = archive.by_index(index)
        && !entry.encrypted()
    {
        let _ = entry
            .take(CONTENT_TYPES_SNIFF_BYTES)
            .read_to_string(&mut content_types);
    }
    kind_from_package(&content_types, names.iter().map(String::as_str))
}

/// Reads names from local file headers, for archives whose central directory is damaged.
fn sniff_zip_local_names(data: &[u8]) -> FileKind {
    let names: Vec<String> = crate::archive::local_header_names(data, 4096);
    kind_from_package("", names.iter().map(String::as_str))
}

/// Returns the Office kind of a package from its main content type, else from its part names.
pub(crate) fn kind_from_package<'a>(
    content_types: &str,
    names: impl Iterator<Item = &'a str>,
) -> FileKind {
    const BY_CONTENT_TYPE: [(&str, FileKind); 12] = [
        ("wordprocessingml.document.main+xml", FileKind::Docx),
        ("ms-word.document.macroenabled.main+xml", FileKind::Docm),
        ("wordprocessingml.template.main+xml", FileKind::Dotx),
        (
            "ms-word.template.macroenabledtemplate.main+xml",
            FileKind::Docm,
        ),
        ("spreadsheetml.sheet.main+xml", FileKind::Xlsx),
        ("spreadsheetml.template.main+xml", FileKind::Xlsx),
        ("ms-excel.sheet.macroenabled.main+xml", FileKind::Xlsm),
        ("ms-excel.template.macroenabled.main+xml", FileKind::Xlsm),
        ("presentationml.presentation.main+xml", FileKind::Pptx),
        ("presentationml.slideshow.main+xml", FileKind::Pptx),
        (
            "ms-powerpoint.presentation.macroenabled.main+xml",
            FileKind::Pptm,
        ),
        (
            "ms-powerpoint.slideshow.macroenabled.main+xml",
            FileKind::Pptm,
        ),
    ];
    let lower = content_types.to_ascii_lowercase();
    if let Some((_, kind)) = BY_CONTENT_TYPE
        .iter()
        .find(|(content_type, _)| lower.contains(content_type))
    {
        return *kind;
    }

    let mut has_vba = false;
    let mut main = None;
    for name in names {
        let name = name.to_ascii_lowercase();
        match name.as_str() {
            "word/document.xml" => main = Some(FileKind::Docx),
            "xl/workbook.xml" => main = Some(FileKind::Xlsx),
            "ppt/presentation.xml" => main = Some(FileKind::Pptx),
            _ if name.ends_with("vbaproject.bin") => has_vba = true,
            _ => {}
        }
    }
    match (main, has_vba) {
        (Some(FileKind::Docx), true) => FileKind::Docm,
        (Some(FileKind::Xlsx), true) => FileKind::Xlsm,
        (Some(FileKind::Pptx), true) => FileKind::Pptm,
        (Some(kind), _) => kind,
        (None, _) => FileKind::Zip,
    }
}
