//! Office files and archives built by the test itself, each hiding a link
//! or a QR code where attackers put them, or breaking a limit.

use std::io::{Cursor, Write};

use gatehouse_unpack::{Artifact, FileKind, FindingKind, Limits, UrlKind, unpack};
use image::{DynamicImage, ImageFormat, Luma};
use zip::write::SimpleFileOptions;

const QR_URL: &str = "https://pay.example-invoice.bond/a7";

fn qr_png(text: &str) -> Vec<u8> {
    let code = qrcode::QrCode::new(text.as_bytes()).expect("text fits in a QR code");
    let width = code.width();
    let dark: Vec<bool> = code
        .to_colors()
        .into_iter()
        .map(|color| color == qrcode::Color::Dark)
        .collect();
    let (module, quiet) = (4u32, 4u32);
    let side = (width as u32 + 2 * quiet) * module;
    let image = image::GrayImage::from_fn(side, side, |x, y| {
        let (mx, my) = (
            (x / module) as i64 - quiet as i64,
            (y / module) as i64 - quiet as i64,
        );
        let inside = (0..width as i64).contains(&mx) && (0..width as i64).contains(&my);
        Luma([if inside && dark[my as usize * width + mx as usize] {
            0
        } else {
            255
        }])
    });
    let mut out = Cursor::new(Vec::new());
    DynamicImage::ImageLuma8(image)
        .write_to(&mut out, ImageFormat::Png)
        .expect("PNG encodes");
    out.into_inner()
}

fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, data) in entries {
        writer
            .start_file(*name, SimpleFileOptions::default())
            .expect("entry starts");
        writer.write_all(data).expect("entry is written");
    }
    writer.finish().expect("archive finishes").into_inner()
}

const RELS_NS: &str = "http://schemas.openxmlformats.org/package/2006/relationships";
const REL: &str = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";

fn relationships(items: &[(&str, &str, &str, bool)]) -> String {
    let mut xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="{RELS_NS}">"#
    );
    for (id, kind, target, external) in items {
        let mode = if *external {
            r#" TargetMode="External""#
        } else {
            ""
        };
        xml.push_str(&format!(
            r#"<Relationship Id="{id}" Type="{REL}/{kind}" Target="{target}"{mode}/>"#
        ));
    }
    xml.push_str("</Relationships>");
    xml
}

fn docx_content_types() -> String {
    r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Default Extension="png" ContentType="image/png"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#.to_owned()
}

const W: &str = r#"xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships" xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main""#;

/// A DOCX whose page header shows a QR image, with links in a footnote, a
/// split HYPERLINK field, an INCLUDEPICTURE field, a text box and a remote template.
fn docx_with_header_qr() -> Vec<u8> {
    let document = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><w:document {W}><w:body>
<w:p><w:r><w:t>Your invoice is attached.</w:t></w:r></w:p>
<w:p><w:r><w:fldChar w:fldCharType="begin"/></w:r><w:r><w:instrText xml:space="preserve"> HYPERLINK "https://field.exa</w:instrText></w:r><w:r><w:instrText>mple/pay" \o "Pay"</w:instrText></w:r><w:r><w:fldChar w:fldCharType="separate"/></w:r><w:r><w:t>Pay here</w:t></w:r><w:r><w:fldChar w:fldCharType="end"/></w:r></w:p>
<w:p><w:fldSimple w:instr=" INCLUDEPICTURE &quot;http://track.example/p.png&quot; \d "><w:r><w:t>pic</w:t></w:r></w:fldSimple></w:p>
<w:p><w:r><w:pict><w:txbxContent><w:p><w:r><w:t>Words in a text box</w:t></w:r></w:p></w:txbxContent></w:pict></w:r></w:p>
<w:sectPr><w:headerReference w:type="default" r:id="rIdHeader"/></w:sectPr></w:body></w:document>"#
    );
    let header = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><w:hdr {W}><w:p><w:r><w:t>Scan to verify your account</w:t></w:r><w:r><w:drawing><a:graphic><a:graphicData><a:blip r:embed="rIdQr"/></a:graphicData></a:graphic></w:drawing></w:r></w:p></w:hdr>"#
    );
    let footnotes = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><w:footnotes {W}><w:footnote w:id="1"><w:p><w:hyperlink r:id="rIdFoot"><w:r><w:t>See the terms</w:t></w:r></w:hyperlink></w:p></w:footnote></w:footnotes>"#
    );
    let settings = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><w:settings {W}><w:attachedTemplate r:id="rIdTemplate"/></w:settings>"#
    );
    let document_rels = relationships(&[
        ("rIdHeader", "header", "header1.xml", false),
        ("rIdFootnotes", "footnotes", "footnotes.xml", false),
        ("rIdSettings", "settings", "settings.xml", false),
        (
            "rIdBody",
            "hyperlink",
            "https://body.example/link?a=1&amp;b=2",
            true,
        ),
    ]);
    let qr = qr_png(QR_URL);
    zip(&[
        ("[Content_Types].xml", docx_content_types().as_bytes()),
        (
            "_rels/.rels",
            relationships(&[("rId1", "officeDocument", "word/document.xml", false)]).as_bytes(),
        ),
        ("word/document.xml", document.as_bytes()),
        ("word/_rels/document.xml.rels", document_rels.as_bytes()),
        ("word/header1.xml", header.as_bytes()),
        (
            "word/_rels/header1.xml.rels",
            relationships(&[("rIdQr", "image", "media/image1.png", false)]).as_bytes(),
        ),
        ("word/footnotes.xml", footnotes.as_bytes()),
        (
            "word/_rels/footnotes.xml.rels",
            relationships(&[(
                "rIdFoot",
                "hyperlink",
                "https://footnote.example/terms",
                true,
            )])
            .as_bytes(),
        ),
        ("word/settings.xml", settings.as_bytes()),
        (
            "word/_rels/settings.xml.rels",
            relationships(&[(
                "rIdTemplate",
                "attachedTemplate",
                "http://templates.example/t.dotm",
                true,
            )])
            .as_bytes(),
        ),
        ("word/media/image1.png", &qr),
    ])
}

/// An XLSX whose sheet drawing shows a QR image.
fn xlsx_with_drawing_qr() -> Vec<u8> {
    let content_types = r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Default Extension="png" ContentType="image/png"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/></Types>"#;
    let workbook = r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Q3" sheetId="1" r:id="rId1"/></sheets></workbook>"#;
    let sheet = r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheetData><row r="1"><c r="A1" t="s"><v>0</v></c></row></sheetData><hyperlinks><hyperlink ref="A1" r:id="rIdLink"/></hyperlinks><drawing r:id="rIdDrawing"/></worksheet>"#;
    let drawing = r#"<?xml version="1.0" encoding="UTF-8"?><xdr:wsDr xmlns:xdr="http://schemas.openxmlformats.org/drawingml/2006/spreadsheetDrawing" xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><xdr:twoCellAnchor><xdr:pic><xdr:blipFill><a:blip r:embed="rIdImage"/></xdr:blipFill></xdr:pic></xdr:twoCellAnchor></xdr:wsDr>"#;
    let shared = r#"<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="1" uniqueCount="1"><si><t>Quarterly figures</t></si></sst>"#;
    let qr = qr_png(QR_URL);
    zip(&[
        ("[Content_Types].xml", content_types.as_bytes()),
        (
            "_rels/.rels",
            relationships(&[("rId1", "officeDocument", "xl/workbook.xml", false)]).as_bytes(),
        ),
        ("xl/workbook.xml", workbook.as_bytes()),
        (
            "xl/_rels/workbook.xml.rels",
            relationships(&[
                ("rId1", "worksheet", "worksheets/sheet1.xml", false),
                ("rId2", "sharedStrings", "sharedStrings.xml", false),
            ])
            .as_bytes(),
        ),
        ("xl/sharedStrings.xml", shared.as_bytes()),
        ("xl/worksheets/sheet1.xml", sheet.as_bytes()),
        (
            "xl/worksheets/_rels/sheet1.xml.rels",
            relationships(&[
                ("rIdDrawing", "drawing", "../drawings/drawing1.xml", false),
                ("rIdLink", "hyperlink", "https://sheet.example/q3", true),
            ])
            .as_bytes(),
        ),
        ("xl/drawings/drawing1.xml", drawing.as_bytes()),
        (
            "xl/drawings/_rels/drawing1.xml.rels",
            relationships(&[("rIdImage", "image", "../media/image1.png", false)]).as_bytes(),
        ),
        ("xl/media/image1.png", &qr),
    ])
}

/// QR payloads of every image in the tree, with the image's location.
fn qr_codes(artifact: &Artifact) -> Vec<(String, String)> {
    artifact
        .walk()
        .filter(|nested| !nested.image_data.is_empty())
        .flat_map(|nested| {
            gatehouse_qr::decode(&nested.image_data, &gatehouse_qr::Limits::default())
                .unwrap_or_default()
                .into_iter()
                .map(|code| (code.payload, nested.location.clone()))
        })
        .collect()
}

fn urls(artifact: &Artifact) -> Vec<(String, UrlKind)> {
    artifact
        .walk()
        .flat_map(|nested| nested.urls.iter().map(|url| (url.url.clone(), url.kind)))
        .collect()
}

fn has_finding(artifact: &Artifact, kind: FindingKind, needle: &str) -> bool {
    artifact
        .walk()
        .flat_map(|nested| &nested.findings)
        .any(|finding| finding.kind == kind && finding.detail.contains(needle))
}

#[test]
fn docx_header_qr_found() {
    let artifact = unpack("invoice.docx", &docx_with_header_qr(), &Limits::default());
    assert_eq!(artifact.kind, FileKind::Docx);
    assert_eq!(
        qr_codes(&artifact),
        [(
            QR_URL.to_owned(),
            "invoice.docx › word/media/image1.png".to_owned()
        )]
    );
}

#[test]
fn docx_text_of_every_part() {
    let artifact = unpack("invoice.docx", &docx_with_header_qr(), &Limits::default());
    for words in [
        "Your invoice is attached.",
        "Words in a text box",
        "Scan to verify your account",
        "See the terms",
    ] {
        assert!(
            artifact.text.contains(words),
            "{words:?} missing from {:?}",
            artifact.text
        );
    }
}

#[test]
fn docx_links_of_every_kind() {
    let artifact = unpack("invoice.docx", &docx_with_header_qr(), &Limits::default());
    let found = urls(&artifact);
    for expected in [
        ("https://body.example/link?a=1&b=2", UrlKind::Hyperlink),
        ("https://footnote.example/terms", UrlKind::Hyperlink),
        ("https://field.example/pay", UrlKind::Text),
        ("http://track.example/p.png", UrlKind::ExternalResource),
        ("http://templates.example/t.dotm", UrlKind::ExternalResource),
    ] {
        assert!(
            found.contains(&(expected.0.to_owned(), expected.1)),
            "{expected:?} not in {found:?}"
        );
    }
}

#[test]
fn docx_remote_template_is_active_content() {
    let artifact = unpack("invoice.docx", &docx_with_header_qr(), &Limits::default());
    assert!(has_finding(
        &artifact,
        FindingKind::ActiveContent,
        "http://templates.example/t.dotm"
    ));
}

#[test]
fn xlsx_drawing_qr_found() {
    let artifact = unpack("q3.xlsx", &xlsx_with_drawing_qr(), &Limits::default());
    assert_eq!(artifact.kind, FileKind::Xlsx);
    assert_eq!(
        qr_codes(&artifact),
        [(
            QR_URL.to_owned(),
            "q3.xlsx › xl/media/image1.png".to_owned()
        )]
    );
    assert!(artifact.text.contains("Quarterly figures"));
    assert!(urls(&artifact).contains(&("https://sheet.example/q3".to_owned(), UrlKind::Hyperlink)));
}

#[test]
fn docx_inside_zip_found() {
    let archive = zip(&[
        ("scans/invoice.docx", &docx_with_header_qr()),
        ("readme.txt", b"see attached"),
    ]);
    let artifact = unpack("documents.zip", &archive, &Limits::default());
    assert_eq!(artifact.kind, FileKind::Zip);
    assert_eq!(
        qr_codes(&artifact),
        [(
            QR_URL.to_owned(),
            "documents.zip › scans/invoice.docx › word/media/image1.png".to_owned()
        )]
    );
}

#[test]
fn extension_disagreeing_with_content() {
    let artifact = unpack("statement.pdf", &docx_with_header_qr(), &Limits::default());
    assert_eq!(artifact.kind, FileKind::Docx);
    assert!(has_finding(&artifact, FindingKind::NameMismatch, ".pdf"));
}

#[test]
fn matching_extension_no_mismatch() {
    let artifact = unpack("invoice.DOCX", &docx_with_header_qr(), &Limits::default());
    assert!(!has_finding(&artifact, FindingKind::NameMismatch, ""));
}

#[test]
fn dde_field_is_active_content() {
    let document = format!(
        r#"<w:document {W}><w:body><w:p><w:r><w:fldChar w:fldCharType="begin"/></w:r><w:r><w:instrText>DDEAUTO c:\\windows\\system32\\cmd.exe "/k calc.exe"</w:instrText></w:r><w:r><w:fldChar w:fldCharType="end"/></w:r></w:p></w:body></w:document>"#
    );
    let docx = zip(&[
        ("[Content_Types].xml", docx_content_types().as_bytes()),
        ("word/document.xml", document.as_bytes()),
    ]);
    let artifact = unpack("dde.docx", &docx, &Limits::default());
    assert!(has_finding(&artifact, FindingKind::ActiveContent, "DDE"));
}

#[test]
fn entity_bomb_not_expanded() {
    let mut dtd =
        String::from(r#"<!DOCTYPE w:document [<!ENTITY a0 "lollollollollollollollollollol">"#);
    for level in 1..10 {
        let previous = format!("&a{};", level - 1);
        dtd.push_str(&format!(r#"<!ENTITY a{level} "{}">"#, previous.repeat(10)));
    }
    dtd.push(']');
    dtd.push('>');
    let document = format!(
        r#"<?xml version="1.0"?>{dtd}<w:document {W}><w:body><w:p><w:r><w:t>before &a9; after</w:t></w:r></w:p></w:body></w:document>"#
    );
    let docx = zip(&[
        ("[Content_Types].xml", docx_content_types().as_bytes()),
        ("word/document.xml", document.as_bytes()),
    ]);
    let artifact = unpack("bomb.docx", &docx, &Limits::default());
    assert!(artifact.text.contains("before"), "{:?}", artifact.text);
    assert!(!artifact.text.contains("lol"), "entity was expanded");
}

#[test]
fn utf16_part_read() {
    let mut document = vec![0xFF, 0xFE];
    let xml = format!(
        r#"<?xml version="1.0" encoding="UTF-16"?><w:document {W}><w:body><w:p><w:r><w:t>UTF-16 words</w:t></w:r></w:p></w:body></w:document>"#
    );
    for unit in xml.encode_utf16() {
        document.extend_from_slice(&unit.to_le_bytes());
    }
    let docx = zip(&[
        ("[Content_Types].xml", docx_content_types().as_bytes()),
        ("word/document.xml", &document),
    ]);
    let artifact = unpack("utf16.docx", &docx, &Limits::default());
    assert!(
        artifact.text.contains("UTF-16 words"),
        "{:?}",
        artifact.text
    );
}

#[test]
fn damaged_central_directory_recovered() {
    let archive = zip(&[
        ("a.txt", b"first entry"),
        ("b.docx", &docx_with_header_qr()),
    ]);
    // Cut the archive inside its central directory.
    let central_directory = archive
        .windows(4)
        .rposition(|window| window == b"PK\x01\x02")
        .expect("has a central directory");
    let damaged = &archive[..central_directory + 10];
    let artifact = unpack("damaged.zip", damaged, &Limits::default());
    assert_eq!(artifact.kind, FileKind::Zip);
    assert!(
        has_finding(
            &artifact,
            FindingKind::Unscannable,
            "recovered from local headers"
        ),
        "{:?}",
        artifact.findings
    );
    assert_eq!(qr_codes(&artifact).len(), 1);
}

#[test]
fn gbk_entry_name_decoded() {
    // Written under an ASCII placeholder, then patched to GBK bytes without the UTF-8 flag.
    let mut archive = zip(&[("abcdefgh.txt", b"hello")]);
    let gbk = b"\xcd\xa8\xd6\xaa\xce\xc4\xbc\xfe.txt";
    while let Some(at) = archive
        .windows(12)
        .position(|window| window == b"abcdefgh.txt")
    {
        archive[at..at + 12].copy_from_slice(gbk);
    }
    let artifact = unpack("names.zip", &archive, &Limits::default());
    assert_eq!(artifact.children[0].location, "names.zip › 通知文件.txt");
}

#[test]
fn ratio_limit_stops_entry() {
    let zeros = vec![0u8; 8 * 1024 * 1024];
    let archive = zip(&[("zeros.bin", &zeros)]);
    let artifact = unpack("zeros.zip", &archive, &Limits::default());
    assert!(
        has_finding(&artifact, FindingKind::Unscannable, "max_ratio"),
        "{:?}",
        artifact.findings
    );
    assert!(artifact.children.is_empty());
}

#[test]
fn total_bytes_limit_stops_archive() {
    let block: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let archive = zip(&[("1.bin", &block), ("2.bin", &block), ("3.bin", &block)]);
    let limits = Limits {
        max_total_bytes: 300_000,
        ..Limits::default()
    };
    let artifact = unpack("big.zip", &archive, &limits);
    assert!(
        has_finding(&artifact, FindingKind::Unscannable, "max_total_bytes"),
        "{:?}",
        artifact.findings
    );
    let expanded: u64 = artifact.children.iter().map(|child| child.size).sum();
    assert!(expanded <= 300_000, "{expanded} bytes expanded");
}

#[test]
fn entry_count_limit() {
    let names: Vec<String> = (0..20).map(|i| format!("{i}.txt")).collect();
    let entries: Vec<(&str, &[u8])> = names
        .iter()
        .map(|name| (name.as_str(), b"x".as_slice()))
        .collect();
    let limits = Limits {
        max_entries: 5,
        ..Limits::default()
    };
    let artifact = unpack("many.zip", &zip(&entries), &limits);
    assert_eq!(artifact.children.len(), 5);
    assert!(has_finding(
        &artifact,
        FindingKind::Unscannable,
        "max_entries"
    ));
}

#[test]
fn xml_size_limit() {
    let limits = Limits {
        max_xml_bytes: 100,
        ..Limits::default()
    };
    let artifact = unpack("invoice.docx", &docx_with_header_qr(), &limits);
    assert!(has_finding(
        &artifact,
        FindingKind::Unscannable,
        "max_xml_bytes"
    ));
}

#[test]
fn deep_nesting_stops_at_depth_limit() {
    let mut data = zip(&[("leaf.txt", b"leaf")]);
    for level in 0..8 {
        data = zip(&[(&format!("level{level}.zip"), &data)]);
    }
    let artifact = unpack("deep.zip", &data, &Limits::default());
    assert!(has_finding(
        &artifact,
        FindingKind::Unscannable,
        "max_depth"
    ));
}

fn compound_file(streams: &[(&str, &[u8])], storages: &[&str]) -> Vec<u8> {
    let mut compound =
        cfb::CompoundFile::create(Cursor::new(Vec::new())).expect("compound file is created");
    for storage in storages {
        compound
            .create_storage(storage)
            .expect("storage is created");
    }
    for (path, data) in streams {
        let mut stream = compound.create_stream(path).expect("stream is created");
        stream.write_all(data).expect("stream is written");
    }
    compound.flush().expect("compound file is flushed");
    compound.into_inner().into_inner()
}

#[test]
fn encrypted_ooxml_generated() {
    let data = compound_file(
        &[
            ("/EncryptionInfo", b"\x04\x00\x04\x00"),
            ("/EncryptedPackage", b"\x00\x01\x02"),
        ],
        &[],
    );
    let artifact = unpack("secret.docx", &data, &Limits::default());
    assert_eq!(artifact.kind, FileKind::Cfb);
    assert!(has_finding(
        &artifact,
        FindingKind::Unscannable,
        "encrypted"
    ));
    assert!(!has_finding(&artifact, FindingKind::NameMismatch, ""));
}

#[test]
fn ole_package_in_docx_extracted() {
    let mut native = vec![0u8; 4];
    native.extend_from_slice(&2u16.to_le_bytes());
    native.extend_from_slice(b"invoice.zip\0C:\\invoice.zip\0");
    native.extend_from_slice(&[0, 0, 3, 0]);
    let temp = b"C:\\Temp\\invoice.zip\0";
    native.extend_from_slice(&(temp.len() as u32).to_le_bytes());
    native.extend_from_slice(temp);
    let inner = zip(&[("inner/invoice.docx", &docx_with_header_qr())]);
    native.extend_from_slice(&(inner.len() as u32).to_le_bytes());
    native.extend_from_slice(&inner);
    let ole = compound_file(&[("/\u{1}Ole10Native", &native)], &[]);
    let docx = zip(&[
        ("[Content_Types].xml", docx_content_types().as_bytes()),
        ("word/embeddings/oleObject1.bin", &ole),
    ]);

    let artifact = unpack("letter.docx", &docx, &Limits::default());
    assert!(has_finding(
        &artifact,
        FindingKind::ActiveContent,
        "invoice.zip"
    ));
    assert_eq!(
        qr_codes(&artifact),
        [(
            QR_URL.to_owned(),
            "letter.docx › word/embeddings/oleObject1.bin › invoice.zip › inner/invoice.docx › word/media/image1.png".to_owned()
        )]
    );
}

#[test]
fn vba_project_is_active_content() {
    let vba = compound_file(
        &[("/VBA/dir", b"\x01"), ("/PROJECT", b"ID=\"{}\"")],
        &["/VBA"],
    );
    let docm = zip(&[
        (
            "[Content_Types].xml",
            docx_content_types()
                .replace(
                    "wordprocessingml.document.main",
                    "ms-word.document.macroEnabled.main",
                )
                .as_bytes(),
        ),
        ("word/vbaProject.bin", &vba),
    ]);
    let artifact = unpack("macro.docm", &docm, &Limits::default());
    assert_eq!(artifact.kind, FileKind::Docm);
    assert!(has_finding(&artifact, FindingKind::ActiveContent, "VBA"));
}

#[test]
fn empty_and_garbage_inputs() {
    for data in [
        &b""[..],
        b"PK",
        b"PK\x03\x04",
        b"PK\x05\x06",
        &[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1],
    ] {
        let artifact = unpack("x.bin", data, &Limits::default());
        assert_eq!(artifact.size, data.len() as u64);
    }
}
