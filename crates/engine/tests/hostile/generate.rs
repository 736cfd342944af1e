//! A deterministic generator of hostile messages.
//!
//! Every function returns the raw bytes of one message, built from fixed
//! text and counters only, so the same source always gives the same bytes.
//! The large cases (a 10 MiB line, 10,000 parts, 10,000 images) are built
//! here at test time and never committed.

use std::io::{Cursor, Write};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

/// Every fixture, by file name, in a fixed order.
pub(crate) fn all() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("deep-multipart.eml", deep_multipart(DEEP_LEVELS)),
        ("deep-rfc822.eml", deep_rfc822(DEEP_LEVELS)),
        ("many-parts.eml", many_parts(MANY_PARTS)),
        ("huge-header.eml", huge_header(HUGE_HEADER_BYTES)),
        ("long-line.eml", long_line(LONG_LINE_BYTES)),
        ("missing-boundary.eml", missing_boundary()),
        ("duplicated-boundary.eml", duplicated_boundary()),
        ("unclosed-boundary.eml", unclosed_boundary()),
        ("boundary-dash.eml", boundary_dash()),
        ("base64-garbage.eml", base64_garbage()),
        ("zip-overlap.eml", zip_overlap()),
        ("zip-recursive.eml", zip_recursive(ZIP_NESTING)),
        ("docx-entities.eml", docx_entities()),
        ("png-huge-dimensions.eml", png_huge_dimensions()),
        ("docx-many-images.eml", docx_many_images(DOCX_IMAGES)),
        ("qr-slowest.eml", qr_slowest()),
        ("many-links.eml", many_links(MANY_LINKS_BYTES)),
    ]
}

/// Nesting of the deep multipart and `message/rfc822` cases.
pub(crate) const DEEP_LEVELS: usize = 1_000;
/// Parts of the many-parts case.
pub(crate) const MANY_PARTS: usize = 10_000;
/// Size of the one header field of the huge-header case.
pub(crate) const HUGE_HEADER_BYTES: usize = 1024 * 1024;
/// Size of the one body line of the long-line case.
pub(crate) const LONG_LINE_BYTES: usize = 10 * 1024 * 1024;
/// Zip files inside one another in the recursive case.
pub(crate) const ZIP_NESTING: usize = 12;
/// Central directory entries that all point at one compressed entry in the overlap case.
pub(crate) const OVERLAP_ENTRIES: usize = 2_000;
/// Uncompressed size of the one entry the overlap case points at.
pub(crate) const OVERLAP_ENTRY_BYTES: usize = 10 * 1024 * 1024;
/// Images in the DOCX of the many-images case.
pub(crate) const DOCX_IMAGES: usize = 10_000;
/// Width and height that the PNG of the huge-dimensions case declares.
pub(crate) const PNG_SIDE: u32 = 60_000;
/// Size of the body of the many-links case.
pub(crate) const MANY_LINKS_BYTES: usize = 4 * 1024 * 1024;

/// The link every case hides where a scanner could miss it.
pub(crate) const HIDDEN_LINK: &str = "https://hidden.example/landing";

/// Returns the header block shared by every case, ending with the MIME version.
fn head(subject: &str) -> String {
    format!(
        "From: Sender <sender@example.net>\r\n\
         To: user@example.com\r\n\
         Subject: {subject}\r\n\
         Date: Mon, 02 Nov 2026 08:00:00 +0000\r\n\
         Message-ID: <{}@example.net>\r\n\
         MIME-Version: 1.0\r\n",
        subject.replace(' ', "-")
    )
}

/// Returns `data` base64-encoded in lines of 76 characters (RFC 2045 §6.8).
fn base64_lines(data: &[u8]) -> String {
    let encoded = BASE64.encode(data);
    let mut out = String::with_capacity(encoded.len() + encoded.len() / 38);
    for line in encoded.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push_str("\r\n");
    }
    out
}

/// Returns a message with a short text body and one base64 attachment.
pub(crate) fn with_attachment(
    subject: &str,
    name: &str,
    content_type: &str,
    data: &[u8],
) -> Vec<u8> {
    let mut raw = head(subject);
    raw.push_str("Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n");
    raw.push_str("--outer\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n");
    raw.push_str("Please see the attached file.\r\n");
    raw.push_str(&format!(
        "--outer\r\nContent-Type: {content_type}; name=\"{name}\"\r\n\
         Content-Disposition: attachment; filename=\"{name}\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n"
    ));
    raw.push_str(&base64_lines(data));
    raw.push_str("--outer--\r\n");
    raw.into_bytes()
}

/// Multiparts nested `levels` deep, with the hidden link in the innermost text part.
pub(crate) fn deep_multipart(levels: usize) -> Vec<u8> {
    let mut raw = head("deep multipart");
    for level in 0..levels {
        raw.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"level{level}\"\r\n\r\n--level{level}\r\n"
        ));
    }
    raw.push_str(&format!(
        "Content-Type: text/plain\r\n\r\nInnermost part: {HIDDEN_LINK}\r\n"
    ));
    for level in (0..levels).rev() {
        raw.push_str(&format!("--level{level}--\r\n"));
    }
    raw.into_bytes()
}

/// `message/rfc822` parts nested `levels` deep, with the hidden link in the innermost message.
pub(crate) fn deep_rfc822(levels: usize) -> Vec<u8> {
    let mut raw = head("deep rfc822");
    raw.push_str("Content-Type: message/rfc822\r\n\r\n");
    for level in 0..levels {
        raw.push_str(&format!(
            "From: level{level}@example.org\r\nSubject: forwarded {level}\r\n\
             MIME-Version: 1.0\r\nContent-Type: message/rfc822\r\n\r\n"
        ));
    }
    raw.push_str(&format!(
        "From: inner@example.org\r\nSubject: innermost\r\n\r\nInnermost message: {HIDDEN_LINK}\r\n"
    ));
    raw.into_bytes()
}

/// One multipart with `count` tiny text parts; the last carries the hidden link.
pub(crate) fn many_parts(count: usize) -> Vec<u8> {
    let mut raw = head("many parts");
    raw.push_str("Content-Type: multipart/mixed; boundary=\"p\"\r\n\r\n");
    for index in 0..count {
        raw.push_str("--p\r\nContent-Type: text/plain\r\n\r\n");
        if index + 1 == count {
            raw.push_str(HIDDEN_LINK);
        } else {
            raw.push('x');
        }
        raw.push_str("\r\n");
    }
    raw.push_str("--p--\r\n");
    raw.into_bytes()
}

/// A Subject of `bytes` bytes made of folded UTF-8 encoded-words, the most
/// work per byte for a header decoder; the body carries the hidden link.
pub(crate) fn huge_header(bytes: usize) -> Vec<u8> {
    // "Grüße " as one encoded-word, folded onto its own line.
    let word = "=?UTF-8?B?R3LDvMOfZSA=?=\r\n ";
    let mut subject = String::with_capacity(bytes + word.len());
    while subject.len() < bytes {
        subject.push_str(word);
    }
    subject.push_str("end");
    let mut raw = head("huge header").replacen(
        "Subject: huge header\r\n",
        &format!("Subject: {subject}\r\n"),
        1,
    );
    raw.push_str(&format!(
        "Content-Type: text/plain\r\n\r\nAfter the header: {HIDDEN_LINK}\r\n"
    ));
    raw.into_bytes()
}

/// A text body of one line of `bytes` bytes with the hidden link at its start.
pub(crate) fn long_line(bytes: usize) -> Vec<u8> {
    let mut raw = head("long line");
    raw.push_str("Content-Type: text/plain\r\n\r\n");
    raw.push_str(HIDDEN_LINK);
    raw.push(' ');
    let filler = bytes.saturating_sub(HIDDEN_LINK.len() + 1);
    raw.extend(std::iter::repeat_n('a', filler));
    raw.push_str("\r\n");
    raw.into_bytes()
}

/// A multipart whose boundary never occurs in the body.
pub(crate) fn missing_boundary() -> Vec<u8> {
    let mut raw = head("missing boundary");
    raw.push_str("Content-Type: multipart/mixed; boundary=\"never-used\"\r\n\r\n");
    raw.push_str("Content-Type: text/html\r\n\r\n");
    raw.push_str(&format!(
        "<p><a href=\"{HIDDEN_LINK}\">Open the invoice</a></p>\r\n"
    ));
    raw.into_bytes()
}

/// A multipart/alternative inside a multipart/mixed with the same boundary.
pub(crate) fn duplicated_boundary() -> Vec<u8> {
    let mut raw = head("duplicated boundary");
    raw.push_str("Content-Type: multipart/mixed; boundary=\"dup\"\r\n\r\n");
    raw.push_str("--dup\r\nContent-Type: multipart/alternative; boundary=\"dup\"\r\n\r\n");
    raw.push_str("--dup\r\nContent-Type: text/plain\r\n\r\nPlain text without links.\r\n");
    raw.push_str("--dup\r\nContent-Type: text/html\r\n\r\n");
    raw.push_str(&format!("<a href=\"{HIDDEN_LINK}\">Pay now</a>\r\n"));
    raw.push_str("--dup--\r\n");
    raw.push_str("--dup\r\nContent-Type: text/plain\r\n\r\nA last part.\r\n");
    raw.push_str("--dup--\r\n");
    raw.into_bytes()
}

/// multipart/related around multipart/alternative, neither ever closed, with
/// the hidden link in the last HTML part.
pub(crate) fn unclosed_boundary() -> Vec<u8> {
    let mut raw = head("unclosed boundary");
    raw.push_str("Content-Type: multipart/related; boundary=\"rel\"\r\n\r\n");
    raw.push_str("--rel\r\nContent-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n");
    raw.push_str("--alt\r\nContent-Type: text/plain\r\n\r\nNothing to see here.\r\n");
    raw.push_str("--alt\r\nContent-Type: text/html\r\n\r\n");
    raw.push_str(&format!(
        "<a href=\"{HIDDEN_LINK}\">Verify your account</a>\r\n"
    ));
    raw.into_bytes()
}

/// A multipart whose boundary is `-`, so delimiter lines are `---` and the
/// close delimiter is `-----`; the hidden link is in the second part.
pub(crate) fn boundary_dash() -> Vec<u8> {
    let mut raw = head("boundary dash");
    raw.push_str("Content-Type: multipart/mixed; boundary=\"-\"\r\n\r\n");
    raw.push_str("---\r\nContent-Type: text/plain\r\n\r\nFirst part.\r\n-- \r\nA signature.\r\n");
    raw.push_str(&format!(
        "---\r\nContent-Type: text/plain\r\n\r\nSecond part: {HIDDEN_LINK}\r\n"
    ));
    raw.push_str("-----\r\n");
    raw.into_bytes()
}

/// An HTML part in base64 with characters outside the base64 alphabet
/// between the valid ones, as broken senders and evasive ones write it.
pub(crate) fn base64_garbage() -> Vec<u8> {
    let html = format!("<html><body><a href=\"{HIDDEN_LINK}\">Track parcel</a></body></html>");
    let encoded = BASE64.encode(html.as_bytes());
    let mut garbled = String::new();
    for (index, character) in encoded.chars().enumerate() {
        garbled.push(character);
        if index % 7 == 6 {
            garbled.push_str("!*");
        }
        if index % 40 == 39 {
            garbled.push_str("\r\n");
        }
    }
    let mut raw = head("base64 garbage");
    raw.push_str(
        "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n",
    );
    raw.push_str(&garbled);
    raw.push_str("\r\n");
    raw.into_bytes()
}

/// Returns a ZIP file of `entries`, each deflated.
pub(crate) fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in entries {
        writer
            .start_file(*name, options)
            .expect("start a zip entry");
        writer.write_all(data).expect("write a zip entry");
    }
    writer.finish().expect("finish a zip file").into_inner()
}

/// Returns a ZIP file of `entries`, each stored uncompressed.
fn zip_stored(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, data) in entries {
        writer
            .start_file(name.as_str(), options)
            .expect("start a zip entry");
        writer.write_all(data).expect("write a zip entry");
    }
    writer.finish().expect("finish a zip file").into_inner()
}

fn u16_at(data: &[u8], offset: usize) -> usize {
    usize::from(u16::from_le_bytes([data[offset], data[offset + 1]]))
}

fn u32_at(data: &[u8], offset: usize) -> usize {
    u32::from_le_bytes([
        data[offset],
        data[offset + 1],
        data[offset + 2],
        data[offset + 3],
    ]) as usize
}

/// A ZIP file whose central directory lists [`OVERLAP_ENTRIES`] entries that
/// all point at the same deflated local entry of [`OVERLAP_ENTRY_BYTES`]
/// zeros, the simplest overlapping-entry bomb: about 20 GiB declared in a
/// file of about 100 KiB.
pub(crate) fn zip_overlap_file() -> Vec<u8> {
    let zeros = vec![0u8; OVERLAP_ENTRY_BYTES];
    let single = zip_of(&[("00000.txt", &zeros)]);

    // The end of central directory record is the last 22 bytes (no comment).
    let eocd = single.len() - 22;
    let directory_offset = u32_at(&single, eocd + 16);
    let record_len = 46
        + u16_at(&single, directory_offset + 28)
        + u16_at(&single, directory_offset + 30)
        + u16_at(&single, directory_offset + 32);
    let record = &single[directory_offset..directory_offset + record_len];
    let name_len = u16_at(record, 28);

    let mut out = single[..directory_offset].to_vec();
    let mut directory = Vec::new();
    for index in 0..OVERLAP_ENTRIES {
        let mut copy = record.to_vec();
        let name = format!("{index:05}.txt");
        assert_eq!(
            name.len(),
            name_len,
            "entry names keep the length of the first"
        );
        copy[46..46 + name_len].copy_from_slice(name.as_bytes());
        directory.extend_from_slice(&copy);
    }
    let count = u16::try_from(OVERLAP_ENTRIES).expect("entry count fits a ZIP16 field");
    let mut end = single[eocd..].to_vec();
    end[8..10].copy_from_slice(&count.to_le_bytes());
    end[10..12].copy_from_slice(&count.to_le_bytes());
    end[12..16].copy_from_slice(&(directory.len() as u32).to_le_bytes());
    end[16..20].copy_from_slice(&(out.len() as u32).to_le_bytes());
    out.extend_from_slice(&directory);
    out.extend_from_slice(&end);
    out
}

/// The overlapping-entry bomb as an attachment.
pub(crate) fn zip_overlap() -> Vec<u8> {
    with_attachment(
        "zip overlap",
        "archive.zip",
        "application/zip",
        &zip_overlap_file(),
    )
}

/// ZIP files nested `levels` deep; the innermost holds a text file with the hidden link.
pub(crate) fn zip_recursive_file(levels: usize) -> Vec<u8> {
    let text = format!("Open {HIDDEN_LINK}\r\n");
    let mut data = zip_of(&[("link.txt", text.as_bytes())]);
    for level in (0..levels).rev() {
        let name = format!("level{level}.zip");
        data = zip_of(&[(name.as_str(), &data)]);
    }
    data
}

/// The nested ZIP files as an attachment.
pub(crate) fn zip_recursive(levels: usize) -> Vec<u8> {
    with_attachment(
        "zip recursive",
        "nested.zip",
        "application/zip",
        &zip_recursive_file(levels),
    )
}

const CONTENT_TYPES: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
<Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">\
<Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-package.relationships+xml\"/>\
<Default Extension=\"xml\" ContentType=\"application/xml\"/>\
<Default Extension=\"png\" ContentType=\"image/png\"/>\
<Override PartName=\"/word/document.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml\"/>\
</Types>";

const PACKAGE_RELS: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">\
<Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument\" Target=\"word/document.xml\"/>\
</Relationships>";

/// A DOCX whose `word/document.xml` declares the "billion laughs" entities
/// (ten levels of ten references each, 10^9 copies of "lol" if expanded)
/// and uses the outermost one; the hidden link is a plain hyperlink
/// relationship next to it.
pub(crate) fn docx_entities_file() -> Vec<u8> {
    let mut dtd = String::from("<!DOCTYPE w:document [\n<!ENTITY lol0 \"lol\">\n");
    for level in 1..=9 {
        let references: String = (0..10).map(|_| format!("&lol{};", level - 1)).collect();
        dtd.push_str(&format!("<!ENTITY lol{level} \"{references}\">\n"));
    }
    dtd.push_str("]>\n");
    let document = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{dtd}\
         <w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\" \
         xmlns:r=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships\">\
         <w:body><w:p><w:r><w:t>&lol9;</w:t></w:r></w:p>\
         <w:p><w:hyperlink r:id=\"rId9\"><w:r><w:t>Open</w:t></w:r></w:hyperlink></w:p>\
         </w:body></w:document>"
    );
    let document_rels = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">\
         <Relationship Id=\"rId9\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/hyperlink\" \
         Target=\"{HIDDEN_LINK}\" TargetMode=\"External\"/></Relationships>"
    );
    zip_of(&[
        ("[Content_Types].xml", CONTENT_TYPES.as_bytes()),
        ("_rels/.rels", PACKAGE_RELS.as_bytes()),
        ("word/document.xml", document.as_bytes()),
        ("word/_rels/document.xml.rels", document_rels.as_bytes()),
    ])
}

const DOCX_TYPE: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";

/// The entity-expansion DOCX as an attachment.
pub(crate) fn docx_entities() -> Vec<u8> {
    with_attachment(
        "docx entities",
        "entities.docx",
        DOCX_TYPE,
        &docx_entities_file(),
    )
}

/// Returns the CRC-32 (ISO 3309, as PNG uses it) of `bytes`.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// A PNG of 86 bytes whose header declares [`PNG_SIDE`] × [`PNG_SIDE`]
/// 8-bit greyscale pixels (3.6 gigapixels) and whose data is a few zero bytes.
pub(crate) fn png_huge_dimensions_file() -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = Vec::new();
    header.extend_from_slice(&PNG_SIDE.to_be_bytes());
    header.extend_from_slice(&PNG_SIDE.to_be_bytes());
    header.extend_from_slice(&[8, 0, 0, 0, 0]);
    png_chunk(&mut png, b"IHDR", &header);
    // A zlib stream of one empty stored block.
    png_chunk(
        &mut png,
        b"IDAT",
        &[
            0x78, 0x01, 0x01, 0x00, 0x00, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x01,
        ],
    );
    png_chunk(&mut png, b"IEND", &[]);
    png
}

/// The huge-dimensions PNG as an attachment.
pub(crate) fn png_huge_dimensions() -> Vec<u8> {
    with_attachment(
        "png huge dimensions",
        "scan.png",
        "image/png",
        &png_huge_dimensions_file(),
    )
}

/// Returns a valid greyscale PNG of `width` × `height` pixels drawn by `pixel`.
pub(crate) fn png_of(width: u32, height: u32, pixel: impl Fn(u32, u32) -> u8) -> Vec<u8> {
    let image = image::GrayImage::from_fn(width, height, |x, y| image::Luma([pixel(x, y)]));
    let mut png = Cursor::new(Vec::new());
    image
        .write_to(&mut png, image::ImageFormat::Png)
        .expect("encode a PNG");
    png.into_inner()
}

/// A DOCX with `count` media images (16 × 16 pixels, each different), all
/// shown by `word/document.xml`, stored without compression. Small images
/// keep the message under the size limits of `gatehouse scan` and of the
/// fronts, so every image reaches the unpacker.
pub(crate) fn docx_many_images_file(count: usize) -> Vec<u8> {
    let mut entries: Vec<(String, Vec<u8>)> = vec![
        (
            "[Content_Types].xml".to_owned(),
            CONTENT_TYPES.as_bytes().to_vec(),
        ),
        ("_rels/.rels".to_owned(), PACKAGE_RELS.as_bytes().to_vec()),
    ];
    let mut document = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\" \
         xmlns:r=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships\" \
         xmlns:a=\"http://schemas.openxmlformats.org/drawingml/2006/main\"><w:body>",
    );
    let mut rels = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">",
    );
    for index in 0..count {
        document.push_str(&format!(
            "<w:p><w:r><w:drawing><a:blip r:embed=\"rImg{index}\"/></w:drawing></w:r></w:p>"
        ));
        rels.push_str(&format!(
            "<Relationship Id=\"rImg{index}\" \
             Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/image\" \
             Target=\"media/image{index}.png\"/>"
        ));
    }
    document.push_str("</w:body></w:document>");
    rels.push_str("</Relationships>");
    entries.push(("word/document.xml".to_owned(), document.into_bytes()));
    entries.push(("word/_rels/document.xml.rels".to_owned(), rels.into_bytes()));
    for index in 0..count {
        let shade = (index % 251) as u8;
        let png = png_of(
            16,
            16,
            |x, y| if (x + y) % 2 == 0 { shade } else { 255 - shade },
        );
        entries.push((format!("word/media/image{index}.png"), png));
    }
    zip_stored(&entries)
}

/// The many-images DOCX as an attachment.
pub(crate) fn docx_many_images(count: usize) -> Vec<u8> {
    with_attachment(
        "docx many images",
        "catalogue.docx",
        DOCX_TYPE,
        &docx_many_images_file(count),
    )
}

/// Side of the square image in the slowest-QR case.
pub(crate) const QR_SLOWEST_SIDE: u32 = 2_000;
/// Pitch, in pixels, of the grid of QR finder patterns in the slowest-QR case.
pub(crate) const QR_SLOWEST_PITCH: u32 = 40;

/// An image tiled with QR finder patterns (the 1:1:3:1:1 dark-light ring of
/// a QR corner) and no decodable code. Each pattern is a candidate corner,
/// so the QR detectors try many combinations of three, on every pass.
pub(crate) fn qr_slowest_file() -> Vec<u8> {
    let module = 4;
    png_of(QR_SLOWEST_SIDE, QR_SLOWEST_SIDE, |x, y| {
        let (cell_x, cell_y) = (x % QR_SLOWEST_PITCH, y % QR_SLOWEST_PITCH);
        let size = 7 * module;
        if cell_x >= size || cell_y >= size {
            return 255;
        }
        let (mx, my) = (cell_x / module, cell_y / module);
        let ring = mx.min(my).min(6 - mx).min(6 - my);
        if ring == 1 { 255 } else { 0 }
    })
}

/// The finder-pattern image as an attachment.
pub(crate) fn qr_slowest() -> Vec<u8> {
    with_attachment("qr slowest", "scan.png", "image/png", &qr_slowest_file())
}

/// A text body of `bytes` bytes of distinct URLs, one per line.
pub(crate) fn many_links(bytes: usize) -> Vec<u8> {
    let mut raw = head("many links");
    raw.push_str("Content-Type: text/plain\r\n\r\n");
    let start = raw.len();
    let mut index = 0usize;
    while raw.len() - start < bytes {
        raw.push_str(&format!("https://host{index}.example/path?id={index}\r\n"));
        index += 1;
    }
    raw.into_bytes()
}
