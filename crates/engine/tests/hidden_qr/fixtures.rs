//! The generator of the hidden-QR fixtures: one message per technique.
//!
//! Every payload uses a reserved `.example` domain. The PDFs are written
//! with pdf-writer and the images with the qrcode and image crates, so the
//! bytes depend on the locked versions of those encoders; the checked-in
//! `.eml` files are the reference, and this generator rewrites them only
//! when asked (see `regenerate_fixtures` in `hidden_qr.rs`).

use std::io::Write;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use image::{GrayImage, ImageFormat, Luma};
use pdf_writer::types::{ActionType, AnnotationType};
use pdf_writer::{Content, Filter, Finish, Name, Pdf, Rect, Ref, Str, TextStr};

pub(crate) const RECIPIENT: &str = "alice@example.com";
const EXTERNAL_SENDER: &str = "billing@invoices.example.net";

/// One fixture: its file stem and its message.
pub(crate) struct Fixture {
    pub(crate) name: &'static str,
    pub(crate) eml: Vec<u8>,
}

/// Returns every fixture, in a fixed order.
pub(crate) fn all() -> Vec<Fixture> {
    vec![
        Fixture {
            name: "table_code",
            eml: table_code(),
        },
        Fixture {
            name: "css_grid_code",
            eml: css_grid_code(),
        },
        Fixture {
            name: "block_text_code",
            eml: block_text_code(),
        },
        Fixture {
            name: "block_entity_code",
            eml: block_entity_code(),
        },
        Fixture {
            name: "split_code",
            eml: split_code(),
        },
        Fixture {
            name: "nested_code",
            eml: nested_code(),
        },
        Fixture {
            name: "pdf_image_code",
            eml: pdf_image_code(),
        },
        Fixture {
            name: "pdf_vector_code",
            eml: pdf_vector_code(),
        },
        Fixture {
            name: "svg_code",
            eml: svg_code(),
        },
        Fixture {
            name: "wrapped_payload",
            eml: wrapped_payload(),
        },
        Fixture {
            name: "newsletter_block_art",
            eml: newsletter_block_art(),
        },
        Fixture {
            name: "otpauth_enrolment",
            eml: otpauth_enrolment(),
        },
    ]
}

/// A MIME part of a generated message.
enum Part {
    Text(String),
    Html(String),
    /// An inline image shown by `cid:`.
    Inline {
        content_id: &'static str,
        png: Vec<u8>,
    },
    Attachment {
        name: &'static str,
        content_type: &'static str,
        data: Vec<u8>,
    },
}

fn message(from: &str, subject: &str, parts: Vec<Part>) -> Vec<u8> {
    let boundary = "=_gatehouse_fixture_boundary";
    let mut out = format!(
        "From: <{from}>\r\nTo: <{RECIPIENT}>\r\nSubject: {subject}\r\n\
         Date: Mon, 02 Dec 2024 09:00:00 +0000\r\nMessage-ID: <{}@fixtures.example>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n",
        subject.to_ascii_lowercase().replace(' ', "-")
    );
    for part in parts {
        out.push_str(&format!("--{boundary}\r\n"));
        match part {
            Part::Text(text) => {
                out.push_str("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n");
                out.push_str(&wrapped_base64(text.as_bytes()));
            }
            Part::Html(html) => {
                out.push_str("Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n");
                out.push_str(&wrapped_base64(html.as_bytes()));
            }
            Part::Inline { content_id, png } => {
                out.push_str(&format!(
                    "Content-Type: image/png\r\nContent-ID: <{content_id}>\r\nContent-Disposition: inline\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                ));
                out.push_str(&wrapped_base64(&png));
            }
            Part::Attachment {
                name,
                content_type,
                data,
            } => {
                out.push_str(&format!(
                    "Content-Type: {content_type}; name=\"{name}\"\r\nContent-Disposition: attachment; filename=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                ));
                out.push_str(&wrapped_base64(&data));
            }
        }
    }
    out.push_str(&format!("--{boundary}--\r\n"));
    out.into_bytes()
}

fn wrapped_base64(data: &[u8]) -> String {
    let encoded = STANDARD.encode(data);
    let mut out = String::with_capacity(encoded.len() + encoded.len() / 76 * 2 + 2);
    for line in encoded.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push_str("\r\n");
    }
    out
}

/// The modules of a code, row by row: `true` for dark.
fn modules(payload: &str, level: qrcode::EcLevel) -> (usize, Vec<bool>) {
    let code = qrcode::QrCode::with_error_correction_level(payload.as_bytes(), level)
        .expect("payload fits a QR code");
    let dark = code
        .to_colors()
        .into_iter()
        .map(|color| color == qrcode::Color::Dark)
        .collect();
    (code.width(), dark)
}

/// Draws a code at `scale` pixels a module inside a 4-module quiet zone.
fn code_image(payload: &str, level: qrcode::EcLevel, scale: u32) -> GrayImage {
    let (width, dark) = modules(payload, level);
    let side = (width as u32 + 8) * scale;
    GrayImage::from_fn(side, side, |x, y| {
        let (column, row) = ((x / scale) as i64 - 4, (y / scale) as i64 - 4);
        let inside = (0..width as i64).contains(&column) && (0..width as i64).contains(&row);
        let is_dark = inside && dark[row as usize * width + column as usize];
        Luma([if is_dark { 0 } else { 255 }])
    })
}

fn png(image: &GrayImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut out, ImageFormat::Png)
        .expect("PNG encodes in memory");
    out.into_inner()
}

fn table_code() -> Vec<u8> {
    let (width, dark) = modules("https://table-login.example/verify", qrcode::EcLevel::M);
    let mut html = String::from(
        "<html><body><p>Your mailbox needs to be verified. Scan the code below with your phone.</p>\n\
         <table cellspacing=\"0\" cellpadding=\"0\" border=\"0\" bgcolor=\"#ffffff\">\n",
    );
    for row in dark.chunks(width) {
        html.push_str("<tr>");
        // Runs of one colour become one cell with a colspan, as generators write them.
        let mut column = 0;
        while column < row.len() {
            let run = row[column..]
                .iter()
                .take_while(|&&cell| cell == row[column])
                .count();
            let colour = if row[column] { "#000000" } else { "#ffffff" };
            html.push_str(&format!(
                "<td colspan=\"{run}\" bgcolor=\"{colour}\" width=\"{}\" height=\"5\"></td>",
                run * 5
            ));
            column += run;
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</table></body></html>\n");
    message(
        EXTERNAL_SENDER,
        "Mailbox verification",
        vec![Part::Html(html)],
    )
}

fn css_grid_code() -> Vec<u8> {
    let (width, dark) = modules("https://grid.example/a", qrcode::EcLevel::M);
    let mut html = format!(
        "<html><head><style>.d {{ background-color: #1a1a1a; }} .l {{ background: #fdfdfd; }}</style></head><body>\n\
         <p>Scan to sign the document.</p>\n\
         <div style=\"display:grid; grid-template-columns: repeat({width}, 4px); grid-auto-rows: 4px\">"
    );
    for cell in dark {
        html.push_str(if cell {
            "<div class=\"d\"></div>"
        } else {
            "<div class=\"l\"></div>"
        });
    }
    html.push_str("</div></body></html>\n");
    message(EXTERNAL_SENDER, "Sign the document", vec![Part::Html(html)])
}

/// Draws a code with half blocks, two module rows a line, inside a
/// 2-module quiet zone of spaces.
fn half_block_lines(payload: &str) -> Vec<String> {
    let (width, dark) = modules(payload, qrcode::EcLevel::M);
    let padded = width + 4;
    let is_dark = |x: usize, y: usize| {
        (2..width + 2).contains(&x) && (2..width + 2).contains(&y) && dark[(y - 2) * width + x - 2]
    };
    (0..padded)
        .step_by(2)
        .map(|y| {
            (0..padded)
                .map(|x| match (is_dark(x, y), is_dark(x, y + 1)) {
                    (true, true) => '█',
                    (true, false) => '▀',
                    (false, true) => '▄',
                    (false, false) => ' ',
                })
                .collect()
        })
        .collect()
}

fn block_text_code() -> Vec<u8> {
    let mut text =
        String::from("Hello,\r\n\r\nYour payment is overdue. Scan this code to pay now:\r\n\r\n");
    for line in half_block_lines("https://blocks.example/pay") {
        text.push_str(&line);
        text.push_str("\r\n");
    }
    text.push_str("\r\nAccounts team\r\n");
    message(EXTERNAL_SENDER, "Payment overdue", vec![Part::Text(text)])
}

fn block_entity_code() -> Vec<u8> {
    let mut html = String::from(
        "<html><body><p>Single sign-on expires today. Scan to renew:</p>\n\
         <div style=\"font-family:monospace;line-height:1\">\n",
    );
    for line in half_block_lines("https://entities.example/sso") {
        for c in line.chars() {
            match c {
                '█' => html.push_str("&#9608;"),
                '▀' => html.push_str("&#x2580;"),
                '▄' => html.push_str("&lhblk;"),
                _ => html.push_str("&nbsp;"),
            }
        }
        html.push_str("<br>\n");
    }
    html.push_str("</div></body></html>\n");
    message(EXTERNAL_SENDER, "SSO renewal", vec![Part::Html(html)])
}

fn split_code() -> Vec<u8> {
    let image = code_image("https://split.example/doc", qrcode::EcLevel::M, 6);
    let half = image.width() / 2;
    let left = image::imageops::crop_imm(&image, 0, 0, half, image.height()).to_image();
    let right =
        image::imageops::crop_imm(&image, half, 0, image.width() - half, image.height()).to_image();
    let html = "<html><body><p>Scan to open the shared document:</p>\
                <img src=\"cid:left-half\" alt=\"\"><img src=\"cid:right-half\" alt=\"\"></body></html>\n"
        .to_owned();
    message(
        EXTERNAL_SENDER,
        "Shared document",
        vec![
            Part::Html(html),
            Part::Inline {
                content_id: "left-half",
                png: png(&left),
            },
            Part::Inline {
                content_id: "right-half",
                png: png(&right),
            },
        ],
    )
}

fn nested_code() -> Vec<u8> {
    let mut outer = code_image(
        "https://outer.example/invoice/2024-12",
        qrcode::EcLevel::H,
        8,
    );
    let inner = code_image("https://inner-evil.example/login", qrcode::EcLevel::M, 2);
    let x = (outer.width() - inner.width()) / 2;
    let y = (outer.height() - inner.height()) / 2;
    image::imageops::replace(&mut outer, &inner, i64::from(x), i64::from(y));
    let html = "<html><body><p>Your invoice is attached as a code.</p><img src=\"cid:invoice-code\"></body></html>\n"
        .to_owned();
    message(
        EXTERNAL_SENDER,
        "Invoice code",
        vec![
            Part::Html(html),
            Part::Inline {
                content_id: "invoice-code",
                png: png(&outer),
            },
        ],
    )
}

/// A one-page A4 PDF with a line of text, drawing `content` after it.
fn pdf(
    draw: impl FnOnce(&mut Pdf, &mut Content, &mut Vec<(Name<'static>, Ref)>),
    annotations: &[(&str, Ref)],
    script: Option<&str>,
) -> Vec<u8> {
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let page = Ref::new(3);
    let content_ref = Ref::new(4);
    let font = Ref::new(5);
    let open_action = Ref::new(6);

    let mut pdf = Pdf::new();
    let mut catalog_writer = pdf.catalog(catalog);
    catalog_writer.pages(tree);
    if script.is_some() {
        catalog_writer.pair(Name(b"OpenAction"), open_action);
    }
    catalog_writer.finish();
    pdf.pages(tree).kids([page]).count(1);

    let mut content = Content::new();
    content.begin_text();
    content.set_font(Name(b"F1"), 14.0);
    content.next_line(72.0, 770.0);
    content.show(Str(
        b"Scan the code to view your statement at https://statement.example/view",
    ));
    content.end_text();
    let mut x_objects = Vec::new();
    draw(&mut pdf, &mut content, &mut x_objects);

    let mut page_writer = pdf.page(page);
    page_writer.media_box(Rect::new(0.0, 0.0, 595.0, 842.0));
    page_writer.parent(tree);
    page_writer.contents(content_ref);
    if !annotations.is_empty() {
        page_writer.annotations(annotations.iter().map(|(_, id)| *id));
    }
    let mut resources = page_writer.resources();
    resources.fonts().pair(Name(b"F1"), font);
    if !x_objects.is_empty() {
        let mut objects = resources.x_objects();
        for (name, id) in &x_objects {
            objects.pair(*name, *id);
        }
    }
    resources.finish();
    page_writer.finish();

    pdf.stream(content_ref, &content.finish());
    pdf.type1_font(font).base_font(Name(b"Helvetica"));
    for (index, (uri, id)) in annotations.iter().enumerate() {
        let top = 700.0 - index as f32 * 20.0;
        let mut annotation = pdf.annotation(*id);
        annotation.subtype(AnnotationType::Link);
        annotation.rect(Rect::new(72.0, top, 300.0, top + 14.0));
        annotation
            .action()
            .action_type(ActionType::Uri)
            .uri(Str(uri.as_bytes()));
    }
    if let Some(script) = script {
        pdf.indirect(open_action)
            .start::<pdf_writer::writers::Action>()
            .action_type(ActionType::JavaScript)
            .js_string(TextStr(script));
    }
    pdf.finish()
}

fn pdf_image_code() -> Vec<u8> {
    let image = code_image("https://pdf-image.example/scan", qrcode::EcLevel::M, 4);
    let (width, height) = (image.width(), image.height());
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    encoder
        .write_all(image.as_raw())
        .expect("compress in memory");
    let compressed = encoder.finish().expect("compress in memory");
    let document = pdf(
        |pdf, content, x_objects| {
            let id = Ref::new(20);
            let mut xobject = pdf.image_xobject(id, &compressed);
            xobject.filter(Filter::FlateDecode);
            xobject.width(width as i32);
            xobject.height(height as i32);
            xobject.color_space().device_gray();
            xobject.bits_per_component(8);
            xobject.finish();
            x_objects.push((Name(b"Im1"), id));
            // Shown 40 points wide, 1.2 points a module: the page render at
            // a scale of 2 gives modules of 2.4 pixels, and a render of the
            // image's region at its own resolution gives 4.
            content.save_state();
            content.transform([40.0, 0.0, 0.0, 40.0, 72.0, 640.0]);
            content.x_object(Name(b"Im1"));
            content.restore_state();
        },
        &[],
        None,
    );
    let html = "<html><body><p>Your statement is attached.</p></body></html>\n".to_owned();
    message(
        EXTERNAL_SENDER,
        "Statement",
        vec![
            Part::Html(html),
            Part::Attachment {
                name: "statement.pdf",
                content_type: "application/pdf",
                data: document,
            },
        ],
    )
}

fn pdf_vector_code() -> Vec<u8> {
    let (width, dark) = modules("https://pdf-vector.example/scan", qrcode::EcLevel::M);
    let document = pdf(
        |_, content, _| {
            // Each dark module is a 1-point square: the page render at a
            // scale of 2 gives modules of 2 pixels, too few to read, so the
            // code is read from a render of its region at 3 pixels a module.
            let module = 1.0f32;
            content.set_fill_gray(0.0);
            for (index, _) in dark.iter().enumerate().filter(|(_, dark)| **dark) {
                let (row, column) = (index / width, index % width);
                let x = 72.0 + column as f32 * module;
                let y = 600.0 - row as f32 * module;
                content.rect(x, y, module, module);
            }
            content.fill_nonzero();
        },
        &[("https://annotated.example/open", Ref::new(30))],
        Some("app.launchURL('https://script.example/run', true);"),
    );
    let html = "<html><body><p>Please review the attached notice.</p></body></html>\n".to_owned();
    message(
        EXTERNAL_SENDER,
        "Notice",
        vec![
            Part::Html(html),
            Part::Attachment {
                name: "notice.pdf",
                content_type: "application/pdf",
                data: document,
            },
        ],
    )
}

fn svg_code() -> Vec<u8> {
    let image = png(&code_image("https://svg.example/x", qrcode::EcLevel::M, 4));
    let svg = format!(
        "<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" xmlns:xlink=\"http://www.w3.org/1999/xlink\" width=\"200\" height=\"200\">\n\
         <image x=\"0\" y=\"0\" width=\"200\" height=\"200\" xlink:href=\"data:image/png;base64,{}\"/>\n\
         <script>window.location = 'https://svg-script.example/';</script>\n</svg>\n",
        STANDARD.encode(image)
    );
    let html = "<html><body><p>Voice message received. Open the attachment.</p></body></html>\n"
        .to_owned();
    message(
        EXTERNAL_SENDER,
        "Voice message",
        vec![
            Part::Html(html),
            Part::Attachment {
                name: "voicemail.svg",
                content_type: "image/svg+xml",
                data: svg.into_bytes(),
            },
        ],
    )
}

/// A Bing click-tracking URL around a dynamic-QR redirect that carries the
/// recipient's address as unpadded base64url.
fn wrapped_payload() -> Vec<u8> {
    let inner = format!(
        "https://qrco.de/bdX7?e={}",
        URL_SAFE_NO_PAD.encode(RECIPIENT)
    );
    let payload = format!(
        "https://www.bing.com/ck/a?!&&p=0a1b2c&u=a1{}&ntb=1",
        URL_SAFE_NO_PAD.encode(inner)
    );
    let image = png(&code_image(&payload, qrcode::EcLevel::L, 4));
    let html = "<html><body><p>Scan to keep your password.</p><img src=\"cid:keep-password\"></body></html>\n".to_owned();
    message(
        EXTERNAL_SENDER,
        "Password expiry",
        vec![
            Part::Html(html),
            Part::Inline {
                content_id: "keep-password",
                png: image,
            },
        ],
    )
}

fn newsletter_block_art() -> Vec<u8> {
    let banner = [
        "▄▄▄▄▄▄▄▄▄▄▄▄▄▄▄▄▄▄▄▄▄▄▄▄▄▄▄▄▄▄▄▄▄▄",
        "█                                █",
        "█  ▄▀▀▀▄ ▄▀▀▀▄ █▀▀▀▄ █ █▄  █ ▄▀▀▀▄ █",
        "█  ▀▄▄▄  █▄▄▄▀ █▄▄▄▀ █ █ ▀▄█ █  ▄▄ █",
        "█      █ █     █  ▀▄ █ █   █ █   █ █",
        "█  ▀▄▄▄▀ █     █   █ █ █   █ ▀▄▄▄▀ █",
        "█                                █",
        "█  ░░ NEW SEASON ░░ NEW COLOURS ░░ █",
        "█  ▄▀▄ ▄▀▄ ▄▀▄ ▄▀▄ ▄▀▄ ▄▀▄ ▄▀▄ ▄▀▄  █",
        "█  ▀▄▀ ▀▄▀ ▀▄▀ ▀▄▀ ▀▄▀ ▀▄▀ ▀▄▀ ▀▄▀  █",
        "█  ▄▀▄ ▄▀▄ ▄▀▄ ▄▀▄ ▄▀▄ ▄▀▄ ▄▀▄ ▄▀▄  █",
        "█  ▀▄▀ ▀▄▀ ▀▄▀ ▀▄▀ ▀▄▀ ▀▄▀ ▀▄▀ ▀▄▀  █",
        "█  ▄▀▄ ▄▀▄ ▄▀▄ ▄▀▄ ▄▀▄ ▄▀▄ ▄▀▄ ▄▀▄  █",
        "█  ▀▄▀ ▀▄▀ ▀▄▀ ▀▄▀ ▀▄▀ ▀▄▀ ▀▄▀ ▀▄▀  █",
        "█▄▄▄▄▄▄▄▄▄▄▄▄▄▄▄▄▄▄▄▄▄▄▄▄▄▄▄▄▄▄▄▄█",
    ];
    let mut text = String::from("Garden Club newsletter, December\r\n\r\n");
    for line in banner {
        text.push_str(line);
        text.push_str("\r\n");
    }
    text.push_str("\r\nBulbs for spring are in. See you at the next meeting.\r\n");
    let html = format!(
        "<html><body><pre>{}</pre><p>Bulbs for spring are in.</p></body></html>\n",
        banner.join("\n")
    );
    message(
        "news@gardenclub.example.org",
        "Garden Club newsletter",
        vec![Part::Text(text), Part::Html(html)],
    )
}

fn otpauth_enrolment() -> Vec<u8> {
    let payload =
        format!("otpauth://totp/Example:{RECIPIENT}?secret=JBSWY3DPEHPK3PXP&issuer=Example");
    let image = png(&code_image(&payload, qrcode::EcLevel::M, 4));
    let html = "<html><body><p>Hi Alice, scan this code with your authenticator app to finish enrolment.</p>\
                <img src=\"cid:enrol\"><p>IT service desk</p></body></html>\n"
        .to_owned();
    message(
        "it-desk@example.com",
        "Authenticator enrolment",
        vec![
            Part::Html(html),
            Part::Inline {
                content_id: "enrol",
                png: image,
            },
        ],
    )
}
