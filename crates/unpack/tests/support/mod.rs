//! Builders for the Office files and archives that the tests and the
//! benchmark unpack.

// Each test or bench target uses a different subset of the builders.
#![allow(dead_code)]

use std::io::{Cursor, Write};

use image::{DynamicImage, ImageFormat, Luma};
use zip::write::SimpleFileOptions;

pub(crate) const QR_URL: &str = "https://pay.example-invoice.bond/a7";

pub(crate) fn qr_png(text: &str) -> Vec<u8> {
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

pub(crate) fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, data) in entries {
        writer
            .start_file(*name, SimpleFileOptions::default())
            .expect("entry starts");
        writer.write_all(data).expect("entry is written");
    }
    writer.finish().expect("archive finishes").into_inner()
}

pub(crate) const RELS_NS: &str = "http://schemas.openxmlformats.org/package/2006/relationships";
pub(crate) const REL: &str = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";

pub(crate) fn relationships(items: &[(&str, &str, &str, bool)]) -> String {
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

pub(crate) fn docx_content_types() -> String {
    r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Default Extension="png" ContentType="image/png"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#.to_owned()
}

pub(crate) const W: &str = r#"xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships" xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main""#;

/// Builds a DOCX whose page header shows a QR image, with links in a footnote, a
/// split HYPERLINK field, an INCLUDEPICTURE field, a text box and a remote template.
pub(crate) fn docx_with_header_qr() -> Vec<u8> {
    let document = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><w:document {W}><w:body>
<w:p><w:r><w:t>Your invoice is attached. Questions: www.helpdesk.example/ask</w:t></w:r></w:p>
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

/// Builds an XLSX whose sheet drawing shows a QR image.
pub(crate) fn xlsx_with_drawing_qr() -> Vec<u8> {
    let content_types = r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Default Extension="png" ContentType="image/png"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/></Types>"#;
    let workbook = r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Q3" sheetId="1" r:id="rId1"/></sheets></workbook>"#;
    let sheet = r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheetData><row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="str"><f>HYPERLINK("https://formula.example/open","Open")</f><v>Open</v></c></row></sheetData><hyperlinks><hyperlink ref="A1" r:id="rIdLink"/></hyperlinks><drawing r:id="rIdDrawing"/></worksheet>"#;
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
