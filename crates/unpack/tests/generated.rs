//! Office files and archives built by the test itself, each hiding a link
//! or a QR code where attackers put them, or breaking a limit.

mod support;

use std::io::{Cursor, Write};

use gatehouse_unpack::{Artifact, FileKind, FindingKind, Limits, UrlKind, unpack};

use support::{QR_URL, W, docx_content_types, docx_with_header_qr, xlsx_with_drawing_qr, zip};

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
        ("www.helpdesk.example/ask", UrlKind::Text),
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
    assert!(urls(&artifact).contains(&("https://formula.example/open".to_owned(), UrlKind::Text)));
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
fn entry_hidden_from_central_directory_found() {
    // The local header and data of a DOCX, followed by a whole archive whose
    // central directory lists only a text file.
    let hidden = zip(&[("hidden.docx", &docx_with_header_qr())]);
    let local_part = hidden
        .windows(4)
        .position(|window| window == b"PK\x01\x02")
        .expect("has a central directory");
    let mut data = hidden[..local_part].to_vec();
    data.extend_from_slice(&zip(&[("visible.txt", b"nothing to see")]));
    let artifact = unpack("mixed.zip", &data, &Limits::default());
    assert!(
        has_finding(&artifact, FindingKind::Unscannable, "hidden.docx"),
        "{:?}",
        artifact.findings
    );
    let names: Vec<&str> = artifact
        .children
        .iter()
        .map(|child| child.location.as_str())
        .collect();
    assert_eq!(
        names,
        ["mixed.zip › visible.txt", "mixed.zip › hidden.docx"]
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
fn text_limit_kept() {
    let limits = Limits {
        max_text_chars: 30,
        ..Limits::default()
    };
    let artifact = unpack("invoice.docx", &docx_with_header_qr(), &limits);
    assert!(artifact.text.chars().count() <= 30, "{:?}", artifact.text);
    assert!(
        artifact.text.starts_with("Your invoice"),
        "{:?}",
        artifact.text
    );
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

/// A xorshift generator, so that the mutations are the same on every run.
struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound.max(1) as u64) as usize
    }
}

/// Flips, overwrites and cuts bytes of valid archives and Office files;
/// every variant must unpack without a panic and within the limits.
#[test]
fn mutated_files_never_panic() {
    let originals = [
        docx_with_header_qr(),
        xlsx_with_drawing_qr(),
        zip(&[
            ("a/invoice.docx", &docx_with_header_qr()),
            ("b.txt", b"text"),
        ]),
    ];
    let limits = Limits::default();
    let mut random = Xorshift(0x9E37_79B9_7F4A_7C15);
    for round in 0..3000 {
        let mut data = originals[round % originals.len()].clone();
        for _ in 0..1 + random.below(8) {
            let at = random.below(data.len());
            match random.below(4) {
                0 => data[at] ^= 1 << random.below(8),
                1 => data[at] = 0xFF,
                2 => data[at] = 0,
                _ => data.truncate(at.max(1)),
            }
        }
        let artifact = unpack("mutated.docx", &data, &limits);
        let expanded: u64 = artifact.walk().skip(1).map(|nested| nested.size).sum();
        assert!(
            expanded <= limits.max_total_bytes * 2,
            "round {round}: {expanded} bytes"
        );
    }
}
