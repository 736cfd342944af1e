//! PDF and SVG attachments: links, actions, embedded files, renders and the
//! limits that make a document unscannable. Every PDF is generated here.

use std::io::Write;

use gatehouse_unpack::{Artifact, FileKind, FindingKind, Limits, RenderScope, UrlKind, unpack};

/// Builds a PDF from numbered object bodies (object 1 is the catalog),
/// with a cross-reference table at the right offsets and `trailer_extra`
/// added to the trailer dictionary.
fn raw_pdf(objects: &[Vec<u8>], trailer_extra: &str) -> Vec<u8> {
    let mut out = b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n".to_vec();
    let mut offsets = Vec::new();
    for (index, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", index + 1).as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for offset in offsets {
        out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R {trailer_extra} >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

fn stream(dict: &str, data: &[u8]) -> Vec<u8> {
    let mut body = format!("<< {dict} /Length {} >>\nstream\n", data.len()).into_bytes();
    body.extend_from_slice(data);
    body.extend_from_slice(b"\nendstream");
    body
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data).expect("compress in memory");
    encoder.finish().expect("compress in memory")
}

/// Builds a document of `pages` pages that each show `content`, with extra objects after them.
fn document(
    pages: usize,
    content: &[u8],
    extra: Vec<Vec<u8>>,
    catalog_extra: &str,
    page_extra: &str,
) -> Vec<u8> {
    // Objects: 1 catalog, 2 page tree, 3 font, 4 content, 5.. pages, then extra.
    let first_page = 5;
    let kids: Vec<String> = (0..pages)
        .map(|index| format!("{} 0 R", first_page + index))
        .collect();
    let mut objects = vec![
        format!("<< /Type /Catalog /Pages 2 0 R {catalog_extra} >>").into_bytes(),
        format!(
            "<< /Type /Pages /Kids [{}] /Count {pages} >>",
            kids.join(" ")
        )
        .into_bytes(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_vec(),
        stream("", content),
    ];
    for _ in 0..pages {
        objects.push(
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 3 0 R >> >> {page_extra} >>"
            )
            .into_bytes(),
        );
    }
    objects.extend(extra);
    raw_pdf(&objects, "")
}

const TEXT: &[u8] = b"BT /F1 12 Tf 72 770 Td (Pay at https://text-link.example/pay today) Tj ET";

fn has_finding(artifact: &Artifact, kind: FindingKind, detail: &str) -> bool {
    artifact
        .walk()
        .flat_map(|artifact| &artifact.findings)
        .any(|finding| finding.kind == kind && finding.detail.contains(detail))
}

fn urls(artifact: &Artifact) -> Vec<(String, UrlKind)> {
    artifact
        .walk()
        .flat_map(|artifact| &artifact.urls)
        .map(|found| (found.url.clone(), found.kind))
        .collect()
}

#[test]
fn pdf_links_text_and_actions() {
    // Page 1 has a link annotation and an annotation that launches a
    // program, and the catalog opens with JavaScript.
    let annotations = "/Annots [6 0 R 7 0 R]";
    let extra = vec![
        b"<< /Type /Annot /Subtype /Link /Rect [72 700 300 714] /A << /S /URI /URI (https://annotated.example/open) >> >>".to_vec(),
        b"<< /Type /Annot /Subtype /Link /Rect [72 680 300 694] /A << /S /Launch /F (cmd.exe) >> >>".to_vec(),
        b"<< /S /JavaScript /JS (app.launchURL\\('https://script.example/run'\\);) >>".to_vec(),
    ];
    let pdf = document(1, TEXT, extra, "/OpenAction 8 0 R", annotations);
    let artifact = unpack("notice.pdf", &pdf, &Limits::default());

    assert_eq!(artifact.kind, FileKind::Pdf);
    let found = urls(&artifact);
    assert!(
        found.contains(&(
            "https://annotated.example/open".to_owned(),
            UrlKind::Hyperlink
        )),
        "{found:?}"
    );
    assert!(
        found.contains(&("https://text-link.example/pay".to_owned(), UrlKind::Text)),
        "{found:?}"
    );
    assert!(
        found.contains(&("https://script.example/run".to_owned(), UrlKind::Text)),
        "{found:?}"
    );
    assert!(has_finding(
        &artifact,
        FindingKind::ActiveContent,
        "Launch action"
    ));
    assert!(has_finding(
        &artifact,
        FindingKind::ActiveContent,
        "JavaScript action"
    ));
    assert!(
        artifact
            .text
            .contains("Pay at https://text-link.example/pay today"),
        "{:?}",
        artifact.text
    );
    assert_eq!(artifact.renders.len(), 1);
    assert_eq!(artifact.renders[0].scope, RenderScope::Page);
    assert_eq!(artifact.renders[0].location, "notice.pdf › page 1");
}

#[test]
fn pdf_page_limit_is_unscannable() {
    let pdf = document(3, TEXT, Vec::new(), "", "");
    let limits = Limits {
        max_pdf_pages: 2,
        ..Limits::default()
    };
    let artifact = unpack("long.pdf", &pdf, &limits);
    assert!(has_finding(
        &artifact,
        FindingKind::Unscannable,
        "max_pdf_pages"
    ));
    assert_eq!(artifact.renders.len(), 2);
}

#[test]
fn pdf_time_limit_is_unscannable() {
    let pdf = document(5, TEXT, Vec::new(), "", "");
    let limits = Limits {
        max_pdf_millis: 0,
        ..Limits::default()
    };
    // The clock is checked before each page and each render. Rendering an
    // A4 page takes well over a millisecond, so the limit trips before the last page.
    let artifact = unpack("slow.pdf", &pdf, &limits);
    assert!(has_finding(
        &artifact,
        FindingKind::Unscannable,
        "max_pdf_millis"
    ));
    assert!(
        artifact.renders.len() < 5,
        "renders {}",
        artifact.renders.len()
    );
}

#[test]
fn pdf_flate_bomb_is_not_opened() {
    let bomb = zlib(&vec![b' '; 20_000_000]);
    let extra = vec![stream("/Filter /FlateDecode", &bomb)];
    let pdf = document(1, TEXT, extra, "", "");
    let limits = Limits {
        max_pdf_decoded_bytes: 1_000_000,
        ..Limits::default()
    };
    let artifact = unpack("bomb.pdf", &pdf, &limits);
    assert!(has_finding(
        &artifact,
        FindingKind::Unscannable,
        "max_pdf_decoded_bytes"
    ));
    assert!(artifact.renders.is_empty());
}

#[test]
fn pdf_huge_image_is_not_rendered() {
    let extra = vec![stream(
        "/Type /XObject /Subtype /Image /Width 40000 /Height 30000 /ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /DCTDecode",
        b"\xFF\xD8\xFF\xD9",
    )];
    let pdf = document(1, TEXT, extra, "", "");
    let artifact = unpack("huge.pdf", &pdf, &Limits::default());
    // A JPEG of 1.2 billion pixels may decode to 4.8 GB, so the bound on
    // decoded bytes trips as well as the one on image pixels.
    let over_a_limit = has_finding(&artifact, FindingKind::Unscannable, "max_pdf_image_pixels")
        || has_finding(&artifact, FindingKind::Unscannable, "max_pdf_decoded_bytes");
    assert!(over_a_limit, "{:?}", artifact.findings);
    assert!(artifact.renders.is_empty());
}

#[test]
fn pdf_image_pixel_limit() {
    let pixels = zlib(&vec![128u8; 200 * 200]);
    let extra = vec![stream(
        "/Type /XObject /Subtype /Image /Width 200 /Height 200 /ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /FlateDecode",
        &pixels,
    )];
    let pdf = document(1, TEXT, extra, "", "");
    let limits = Limits {
        max_pdf_image_pixels: 10_000,
        ..Limits::default()
    };
    let artifact = unpack("image.pdf", &pdf, &limits);
    assert!(has_finding(
        &artifact,
        FindingKind::Unscannable,
        "max_pdf_image_pixels"
    ));
    assert!(artifact.renders.is_empty());
}

#[test]
fn pdf_with_user_password_is_unscannable() {
    // A standard security handler whose empty user password does not
    // match the /U entry: the document needs a password to open.
    let encrypt = format!(
        "<< /Filter /Standard /V 2 /R 3 /Length 128 /P -3904 /O <{}> /U <{}> >>",
        "11".repeat(32),
        "22".repeat(32)
    );
    let mut objects = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>".to_vec(),
    ];
    objects.push(encrypt.into_bytes());
    let pdf = raw_pdf(
        &objects,
        "/Encrypt 4 0 R /ID [<00112233445566778899aabbccddeeff> <00112233445566778899aabbccddeeff>]",
    );
    let artifact = unpack("locked.pdf", &pdf, &Limits::default());
    assert!(
        has_finding(&artifact, FindingKind::Unscannable, "encrypted"),
        "{:?}",
        artifact.findings
    );
    assert!(artifact.renders.is_empty());
}

#[test]
fn pdf_that_does_not_parse_keeps_raw_uris() {
    let data = b"%PDF-1.4\nthis is not a PDF body << /S /URI /URI (https://raw-uri.example/x) >>";
    let artifact = unpack("broken.pdf", data, &Limits::default());
    assert!(
        has_finding(&artifact, FindingKind::Unscannable, "could not be parsed"),
        "{:?}",
        artifact.findings
    );
    assert_eq!(
        urls(&artifact),
        vec![("https://raw-uri.example/x".to_owned(), UrlKind::Hyperlink)]
    );
}

#[test]
fn pdf_embedded_file_is_unpacked() {
    let html = b"<html><body><a href=\"https://embedded.example/login\">Sign in</a></body></html>";
    let extra = vec![
        stream("/Type /EmbeddedFile", html),
        b"<< /Type /Filespec /F (login.html) /UF (login.html) /EF << /F 6 0 R >> >>".to_vec(),
        b"<< /Names [(login.html) 7 0 R] >>".to_vec(),
    ];
    let pdf = document(1, TEXT, extra, "/Names << /EmbeddedFiles 8 0 R >>", "");
    let artifact = unpack("carrier.pdf", &pdf, &Limits::default());
    let child = artifact
        .children
        .iter()
        .find(|child| child.location == "carrier.pdf › login.html");
    assert!(
        child.is_some(),
        "{:?}",
        artifact
            .children
            .iter()
            .map(|c| &c.location)
            .collect::<Vec<_>>()
    );
    assert_eq!(child.map(|child| child.kind), Some(FileKind::Html));
    assert!(child.is_some_and(|child| child.markup.contains("https://embedded.example/login")));
}

/// Draws a code as one filled path of 1-point squares, too small for the page render.
fn vector_code_pdf(payload: &str) -> Vec<u8> {
    let code = qrcode::QrCode::new(payload.as_bytes()).expect("encodable");
    let width = code.width();
    let mut content = String::from("0 g\n");
    for (index, color) in code.to_colors().into_iter().enumerate() {
        if color == qrcode::Color::Dark {
            let (row, column) = (index / width, index % width);
            content.push_str(&format!("{} {} 1 1 re\n", 100 + column, 600 - row));
        }
    }
    content.push_str("f\n");
    document(1, content.as_bytes(), Vec::new(), "", "")
}

#[test]
fn pdf_vector_code_gets_a_region_render() {
    let artifact = unpack(
        "vector.pdf",
        &vector_code_pdf("https://vector.example/q"),
        &Limits::default(),
    );
    let region = artifact
        .renders
        .iter()
        .find(|render| render.scope == RenderScope::Region);
    assert!(region.is_some(), "no region render");
    let Some(region) = region else {
        return;
    };
    let decoded = gatehouse_qr::decode_luma(
        &region.luma,
        region.width,
        region.height,
        &gatehouse_qr::Limits::default(),
    )
    .expect("region decodes");
    let payloads: Vec<&str> = decoded
        .codes
        .iter()
        .map(|code| code.payload.as_str())
        .collect();
    assert_eq!(payloads, vec!["https://vector.example/q"]);
}

#[test]
fn pdf_inside_zip_is_opened() {
    let mut zip_bytes = std::io::Cursor::new(Vec::new());
    {
        let mut writer = zip::ZipWriter::new(&mut zip_bytes);
        writer
            .start_file("scan/notice.pdf", zip::write::SimpleFileOptions::default())
            .expect("zip entry");
        writer
            .write_all(&vector_code_pdf("https://zipped.example/"))
            .expect("zip data");
        writer.finish().expect("zip finish");
    }
    let artifact = unpack("scan.zip", zip_bytes.get_ref(), &Limits::default());
    let pdf = artifact.walk().find(|nested| nested.kind == FileKind::Pdf);
    assert!(pdf.is_some_and(|pdf| !pdf.renders.is_empty()));
}

#[test]
fn svg_script_link_and_image() {
    let png = {
        let code = qrcode::QrCode::new(b"https://svg-image.example/").expect("encodable");
        let width = code.width() as u32;
        let colors = code.to_colors();
        let image = image::GrayImage::from_fn((width + 8) * 4, (width + 8) * 4, |x, y| {
            let (column, row) = (x / 4, y / 4);
            let inside = (4..width + 4).contains(&column) && (4..width + 4).contains(&row);
            let dark =
                inside && colors[((row - 4) * width + column - 4) as usize] == qrcode::Color::Dark;
            image::Luma([if dark { 0 } else { 255 }])
        });
        let mut out = std::io::Cursor::new(Vec::new());
        image
            .write_to(&mut out, image::ImageFormat::Png)
            .expect("PNG encodes");
        out.into_inner()
    };
    use base64::Engine;
    let svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" xmlns:xlink=\"http://www.w3.org/1999/xlink\" onload=\"go()\">\
         <a xlink:href=\"https://svg-link.example/\"><text>Open</text></a>\
         <image href=\"data:image/png;base64,{}\"/><script>function go() {{}}</script></svg>",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(&png)
    );
    let artifact = unpack("voicemail.svg", svg.as_bytes(), &Limits::default());
    assert_eq!(artifact.kind, FileKind::Svg);
    assert!(has_finding(
        &artifact,
        FindingKind::ActiveContent,
        "1 <script> elements and 1 event-handler"
    ));
    assert_eq!(
        urls(&artifact),
        vec![("https://svg-link.example/".to_owned(), UrlKind::Hyperlink)]
    );
    let image = artifact.children.first();
    assert_eq!(image.map(|child| child.kind), Some(FileKind::Png));
    let codes = gatehouse_qr::decode(
        &image
            .map(|child| child.image_data.clone())
            .unwrap_or_default(),
        &gatehouse_qr::Limits::default(),
    )
    .expect("image decodes");
    assert_eq!(
        codes.first().map(|code| code.payload.as_str()),
        Some("https://svg-image.example/")
    );
}

#[test]
fn svg_vector_code_is_rendered() {
    // As segno writes it: one stroked path of one-module lines under a scale transform.
    let code = qrcode::QrCode::new(b"https://svg-vector.example/").expect("encodable");
    let width = code.width();
    let colors = code.to_colors();
    let mut d = String::new();
    for row in 0..width {
        let mut column = 0;
        while column < width {
            if colors[row * width + column] == qrcode::Color::Dark {
                let run = colors[row * width + column..(row + 1) * width]
                    .iter()
                    .take_while(|color| **color == qrcode::Color::Dark)
                    .count();
                d.push_str(&format!("M{} {}.5h{run}", column + 4, row + 4));
                column += run;
            } else {
                column += 1;
            }
        }
    }
    let svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{0}\"><path transform=\"scale(5)\" stroke=\"#000\" d=\"{d}\"/></svg>",
        (width + 8) * 5
    );
    let artifact = unpack("code.svg", svg.as_bytes(), &Limits::default());
    let render = artifact.renders.first();
    assert!(render.is_some(), "no render");
    let Some(render) = render else {
        return;
    };
    let decoded = gatehouse_qr::decode_luma(
        &render.luma,
        render.width,
        render.height,
        &gatehouse_qr::Limits::default(),
    )
    .expect("render decodes");
    assert_eq!(
        decoded.codes.first().map(|code| code.payload.as_str()),
        Some("https://svg-vector.example/")
    );
}
