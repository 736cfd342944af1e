//! One minimal pair per signal through `Engine::analyse` on raw messages: a
//! message that fires it and the nearest message that does not. Each test
//! builds its own graph and teaches it only the history the pair needs.

use std::io::{Cursor, Write};
use std::sync::Arc;

use gatehouse_engine::{Action, Engine, Envelope, Limits, Outcome, Verdict, When};
use gatehouse_graph::{GraphStore, RedbGraph};
use gatehouse_policy::Policy;
use time::format_description::well_known::Rfc2822;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const T0: OffsetDateTime = datetime!(2026-11-02 08:00 UTC);

/// A message to render as raw RFC 5322 bytes with CRLF line endings.
#[derive(Clone)]
struct Mail {
    from: String,
    display_name: Option<String>,
    to: Vec<String>,
    subject: String,
    text: String,
    html: Option<String>,
    headers: Vec<String>,
    attachments: Vec<(String, String, Vec<u8>)>,
    time: OffsetDateTime,
    origin_ip: String,
    message_id: String,
}

impl Mail {
    fn new(from: &str, to: &str) -> Mail {
        Mail {
            from: from.to_owned(),
            display_name: None,
            to: vec![to.to_owned()],
            subject: "Shipping schedule".to_owned(),
            text: "Hello, the schedule is unchanged.".to_owned(),
            html: None,
            headers: Vec::new(),
            attachments: Vec::new(),
            time: T0,
            origin_ip: "203.0.113.25".to_owned(),
            message_id: String::new(),
        }
    }

    fn named(mut self, name: &str) -> Mail {
        self.display_name = Some(name.to_owned());
        self
    }

    fn at(mut self, time: OffsetDateTime) -> Mail {
        self.time = time;
        self
    }

    fn subject(mut self, subject: &str) -> Mail {
        self.subject = subject.to_owned();
        self
    }

    fn text(mut self, text: &str) -> Mail {
        self.text = text.to_owned();
        self
    }

    fn html(mut self, html: &str) -> Mail {
        self.html = Some(html.to_owned());
        self
    }

    fn header(mut self, header: &str) -> Mail {
        self.headers.push(header.to_owned());
        self
    }

    fn via_ip(mut self, ip: &str) -> Mail {
        self.origin_ip = ip.to_owned();
        self
    }

    fn attach(mut self, name: &str, content_type: &str, data: Vec<u8>) -> Mail {
        self.attachments
            .push((name.to_owned(), content_type.to_owned(), data));
        self
    }

    fn id(mut self, id: &str) -> Mail {
        self.message_id = id.to_owned();
        self
    }

    fn render(&self, serial: usize) -> Vec<u8> {
        let date = self.time.format(&Rfc2822).expect("formattable date");
        let id = if self.message_id.is_empty() {
            format!(
                "m{serial}@{}",
                self.from.rsplit_once('@').map(|(_, d)| d).unwrap_or("x")
            )
        } else {
            self.message_id.clone()
        };
        let from = match &self.display_name {
            Some(name) => format!("=?UTF-8?B?{}?= <{}>", base64(name.as_bytes()), self.from),
            None => self.from.clone(),
        };
        let mut out = String::new();
        out.push_str(&format!(
            "Received: from mail.sender.example (mail.sender.example [{}])\r\n\tby mx.example.com (Postfix) with ESMTPS id X{serial}\r\n\tfor <{}>; {date}\r\n",
            self.origin_ip, self.to[0]
        ));
        for header in &self.headers {
            out.push_str(header);
            out.push_str("\r\n");
        }
        out.push_str(&format!(
            "Date: {date}\r\nFrom: {from}\r\nTo: {}\r\n",
            self.to.join(", ")
        ));
        out.push_str(&format!(
            "Subject: =?UTF-8?B?{}?=\r\nMessage-ID: <{id}>\r\nMIME-Version: 1.0\r\n",
            base64(self.subject.as_bytes())
        ));
        let boundary = "----=_boundary_0001";
        out.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n"
        ));
        out.push_str(&format!("--{boundary}\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n", wrapped_base64(self.text.as_bytes())));
        if let Some(html) = &self.html {
            out.push_str(&format!("--{boundary}\r\nContent-Type: text/html; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n", wrapped_base64(html.as_bytes())));
        }
        for (name, content_type, data) in &self.attachments {
            out.push_str(&format!(
                "--{boundary}\r\nContent-Type: {content_type}; name=\"{name}\"\r\nContent-Disposition: attachment; filename=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n",
                wrapped_base64(data)
            ));
        }
        out.push_str(&format!("--{boundary}--\r\n"));
        out.into_bytes()
    }
}

fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let bytes = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(bytes[0]) << 16) | (u32::from(bytes[1]) << 8) | u32::from(bytes[2]);
        for index in 0..4 {
            if index <= chunk.len() {
                out.push(char::from(
                    ALPHABET[((n >> (18 - 6 * index)) & 63) as usize],
                ));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn wrapped_base64(data: &[u8]) -> String {
    let encoded = base64(data);
    encoded
        .as_bytes()
        .chunks(76)
        .map(|line| String::from_utf8_lossy(line).into_owned())
        .collect::<Vec<_>>()
        .join("\r\n")
}

/// A graph, an engine and a message counter.
struct World {
    _dir: tempfile::TempDir,
    graph: Arc<RedbGraph>,
    engine: Engine,
    serial: std::cell::Cell<usize>,
}

impl World {
    fn new() -> World {
        World::with_policy(Policy::embedded_default())
    }

    fn with_policy(policy: Policy) -> World {
        let dir = tempfile::tempdir().expect("temporary directory");
        let graph = Arc::new(RedbGraph::open(&dir.path().join("graph.redb")).expect("open graph"));
        let engine = Engine::new(
            Arc::new(policy),
            graph.clone(),
            Limits::default(),
            vec!["example.com".to_owned()],
        );
        World {
            _dir: dir,
            graph,
            engine,
            serial: std::cell::Cell::new(0),
        }
    }

    fn analyse(&self, mail: &Mail) -> gatehouse_engine::Analysis {
        self.serial.set(self.serial.get() + 1);
        let raw = mail.render(self.serial.get());
        let envelope = Envelope {
            mail_from: mail.from.clone(),
            rcpt_to: mail.to.clone(),
            ..Envelope::default()
        };
        self.engine.analyse(&envelope, &raw, When::At(mail.time))
    }

    /// Judges a message as live traffic from a client at `client_ip`.
    fn judge_from_client(&self, mail: Mail, client_ip: &str) -> Verdict {
        self.analyse_from_client(mail, client_ip).verdict
    }

    /// Analyses a message as live traffic from a client at `client_ip`.
    fn analyse_from_client(&self, mail: Mail, client_ip: &str) -> gatehouse_engine::Analysis {
        let mail_from = mail.from.clone();
        self.analyse_with_envelope(mail, &mail_from, client_ip)
    }

    /// Judges live traffic whose envelope sender differs from its From header.
    fn judge_with_envelope(&self, mail: Mail, mail_from: &str, client_ip: &str) -> Verdict {
        self.analyse_with_envelope(mail, mail_from, client_ip)
            .verdict
    }

    fn analyse_with_envelope(
        &self,
        mail: Mail,
        mail_from: &str,
        client_ip: &str,
    ) -> gatehouse_engine::Analysis {
        self.serial.set(self.serial.get() + 1);
        let raw = mail.render(self.serial.get());
        let envelope = Envelope {
            mail_from: mail_from.to_owned(),
            rcpt_to: mail.to.clone(),
            client_ip: Some(client_ip.parse().expect("client address")),
            ..Envelope::default()
        };
        self.engine.analyse(&envelope, &raw, When::At(mail.time))
    }

    fn learn(&self, mail: Mail) -> Verdict {
        let analysis = self.analyse(&mail);
        self.engine
            .learn(&analysis, Outcome::Delivered)
            .expect("learn");
        analysis.verdict
    }

    fn hold(&self, mail: Mail) -> Verdict {
        let analysis = self.analyse(&mail);
        self.engine
            .learn(&analysis, Outcome::Held)
            .expect("record held mail");
        analysis.verdict
    }

    fn judge(&self, mail: Mail) -> Verdict {
        self.analyse(&mail).verdict
    }
}

fn fires(verdict: &Verdict, id: &str) -> bool {
    verdict.signals.iter().any(|signal| signal.id == id)
}

fn evidence<'v>(verdict: &'v Verdict, id: &str) -> &'v str {
    verdict
        .signals
        .iter()
        .find(|signal| signal.id == id)
        .map(|signal| signal.evidence.as_str())
        .unwrap_or("")
}

fn ids(verdict: &Verdict) -> Vec<&str> {
    verdict
        .signals
        .iter()
        .map(|signal| signal.id.as_str())
        .collect()
}

fn qr_png(payload: &str) -> Vec<u8> {
    let code = qrcode::QrCode::new(payload.as_bytes()).expect("payload fits a QR code");
    let width = code.width();
    let colors = code.to_colors();
    let scale = 8;
    let quiet = 4;
    let size = ((width + 2 * quiet) * scale) as u32;
    let image = image::GrayImage::from_fn(size, size, |x, y| {
        let (module_x, module_y) = (
            (x as usize / scale).wrapping_sub(quiet),
            (y as usize / scale).wrapping_sub(quiet),
        );
        let dark = module_x < width
            && module_y < width
            && colors[module_y * width + module_x] == qrcode::Color::Dark;
        image::Luma([if dark { 0 } else { 255 }])
    });
    let mut png = Cursor::new(Vec::new());
    image
        .write_to(&mut png, image::ImageFormat::Png)
        .expect("PNG encodes");
    png.into_inner()
}

fn blank_png() -> Vec<u8> {
    let image = image::GrayImage::from_pixel(64, 64, image::Luma([255]));
    let mut png = Cursor::new(Vec::new());
    image
        .write_to(&mut png, image::ImageFormat::Png)
        .expect("PNG encodes");
    png.into_inner()
}

fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in entries {
        writer.start_file(*name, options).expect("zip entry");
        writer.write_all(data).expect("zip data");
    }
    writer.finish().expect("zip finishes").into_inner()
}

const PARTNER: &str = "wu.gang@partner.example";
const BOB: &str = "bob@example.com";

/// Teaches the graph `count` messages from a partner to Bob, sent from 203.0.113.0/24.
fn partner_history(world: &World, count: usize) {
    for day in 0..count {
        world.learn(
            Mail::new(PARTNER, BOB)
                .named("Wu Gang")
                .at(T0 - Duration::days(30 - day as i64)),
        );
    }
}

#[test]
fn sender_first_contact_pair() {
    let world = World::new();
    partner_history(&world, 1);
    assert!(fires(
        &world.judge(Mail::new("new@partner.example", BOB)),
        "sender.first_contact"
    ));
    assert!(!fires(
        &world.judge(Mail::new(PARTNER, BOB)),
        "sender.first_contact"
    ));
}

#[test]
fn sender_known_through_outbound_mail() {
    let world = World::new();
    world.learn(Mail::new(BOB, "carol@supplier.example").at(T0 - Duration::days(1)));
    let verdict = world.judge(Mail::new("carol@supplier.example", BOB));
    assert!(
        !fires(&verdict, "sender.first_contact"),
        "{:?}",
        ids(&verdict)
    );
    assert!(
        !fires(&verdict, "recipient.first_contact"),
        "{:?}",
        ids(&verdict)
    );
}

#[test]
fn sender_domain_new_pair() {
    let world = World::new();
    partner_history(&world, 1);
    assert!(fires(
        &world.judge(Mail::new("a@elsewhere.example", BOB)),
        "sender.domain_new"
    ));
    assert!(!fires(
        &world.judge(Mail::new("new@mail.partner.example", BOB)),
        "sender.domain_new"
    ));
}

#[test]
fn recipient_first_contact_pair() {
    let world = World::new();
    partner_history(&world, 1);
    assert!(fires(
        &world.judge(Mail::new(PARTNER, "eve@example.com")),
        "recipient.first_contact"
    ));
    assert!(!fires(
        &world.judge(Mail::new(PARTNER, BOB)),
        "recipient.first_contact"
    ));
}

#[test]
fn display_name_internal_role_pair() {
    let world = World::new();
    let role = world.judge(Mail::new("38117@brand.example", BOB).named("财务部"));
    let person = world.judge(Mail::new("38117@brand.example", BOB).named("Li Wei"));
    assert!(fires(&role, "sender.display_name_internal"));
    assert!(!fires(&person, "sender.display_name_internal"));
}

#[test]
fn display_name_internal_learned_pair() {
    let world = World::new();
    world.learn(
        Mail::new("jane.roe@example.com", BOB)
            .named("Jane Roe")
            .at(T0 - Duration::days(3)),
    );
    let borrowed = world.judge(Mail::new("jane.roe@freemail.example", BOB).named("Jane  ROE"));
    let other = world.judge(Mail::new("jane.roe@freemail.example", BOB).named("Jane Rowe"));
    assert!(
        fires(&borrowed, "sender.display_name_internal"),
        "{}",
        evidence(&borrowed, "sender.display_name_internal")
    );
    assert!(!fires(&other, "sender.display_name_internal"));
}

#[test]
fn display_name_internal_confusable_pair() {
    let world = World::new();
    world.learn(
        Mail::new("jane.roe@example.com", BOB)
            .named("Jane Roe")
            .at(T0 - Duration::days(3)),
    );
    // Cyrillic о and е in place of the Latin letters.
    let lookalike = world.judge(Mail::new("x@freemail.example", BOB).named("Jаne Rое"));
    assert!(fires(&lookalike, "sender.display_name_internal"));
}

#[test]
fn display_name_new_pair() {
    let world = World::new();
    partner_history(&world, 2);
    let renamed = world.judge(Mail::new(PARTNER, BOB).named("Accounts Team"));
    let same = world.judge(Mail::new(PARTNER, BOB).named("Wu Gang"));
    assert!(
        fires(&renamed, "sender.display_name_new"),
        "{:?}",
        ids(&renamed)
    );
    assert!(!fires(&same, "sender.display_name_new"));
}

#[test]
fn sender_pattern_pair() {
    let world = World::new();
    world.hold(Mail::new("38117@brand.example", "a1@example.com").at(T0));
    world.hold(Mail::new("38240@brand.example", "a2@example.com").at(T0 + Duration::hours(1)));
    let third =
        world.judge(Mail::new("38302@brand.example", "a3@example.com").at(T0 + Duration::hours(2)));
    let other_shape =
        world.judge(Mail::new("info@brand.example", "a3@example.com").at(T0 + Duration::hours(2)));
    assert!(fires(&third, "campaign.sender_pattern"));
    assert!(
        evidence(&third, "campaign.sender_pattern")
            .contains("3 new senders from brand.example in 72 h"),
        "{}",
        evidence(&third, "campaign.sender_pattern")
    );
    assert!(!fires(&other_shape, "campaign.sender_pattern"));
}

#[test]
fn sender_pattern_needs_window() {
    let world = World::new();
    world.hold(Mail::new("38117@brand.example", "a1@example.com").at(T0));
    world.hold(Mail::new("38240@brand.example", "a2@example.com").at(T0 + Duration::hours(1)));
    let late = world
        .judge(Mail::new("38302@brand.example", "a3@example.com").at(T0 + Duration::hours(80)));
    assert!(!fires(&late, "campaign.sender_pattern"));
}

#[test]
fn sender_pattern_ignores_shared_domains() {
    let world = World::new();
    world.hold(Mail::new("11111@gmail.com", "a1@example.com").at(T0));
    world.hold(Mail::new("22222@gmail.com", "a2@example.com").at(T0));
    let third = world.judge(Mail::new("33333@gmail.com", "a3@example.com").at(T0));
    assert!(!fires(&third, "campaign.sender_pattern"));
}

#[test]
fn burst_pair() {
    let world = World::new();
    for index in 0..9 {
        world.learn(
            Mail::new(
                &format!("sender{index}@burst.example"),
                &format!("user{index}@example.com"),
            )
            .subject(&format!("Notice {index}"))
            .at(T0 + Duration::minutes(index)),
        );
    }
    let tenth = world
        .judge(Mail::new("sender9@burst.example", "user9@example.com").at(T0 + Duration::hours(1)));
    let ninth_again = world
        .judge(Mail::new("sender9@burst.example", "user0@example.com").at(T0 + Duration::hours(1)));
    assert!(fires(&tenth, "campaign.burst"), "{:?}", ids(&tenth));
    assert!(!fires(&ninth_again, "campaign.burst"));
}

#[test]
fn burst_names_earlier_delivered_members() {
    let world = World::new();
    for index in 0..9 {
        world.learn(
            Mail::new(
                &format!("sender{index}@burst.example"),
                &format!("user{index}@example.com"),
            )
            .at(T0 + Duration::minutes(index)),
        );
    }
    let tenth = world
        .judge(Mail::new("sender9@burst.example", "user9@example.com").at(T0 + Duration::hours(1)));
    let campaign = tenth
        .campaign
        .clone()
        .unwrap_or_else(|| panic!("no campaign on {:?}", ids(&tenth)));
    assert_eq!(campaign.delivered_earlier.len(), 9);
    assert_eq!(campaign.recipients, 10);
}

#[test]
fn response_holds_matching_mail_until_lifted() {
    let world = World::new();
    world.hold(Mail::new("38117@brand.example", "a1@example.com").at(T0));
    world.hold(Mail::new("38240@brand.example", "a2@example.com").at(T0));
    world.hold(Mail::new("38302@brand.example", "a3@example.com").at(T0));
    let responses = world.graph.responses().expect("responses");
    assert_eq!(responses.len(), 1);

    // A plain message from a fourth sender would only be tagged on its score.
    let during = world
        .judge(Mail::new("38456@brand.example", "a4@example.com").at(T0 + Duration::minutes(30)));
    assert_eq!(during.action, Action::Hold, "{:?}", ids(&during));
    assert!(fires(&during, "campaign.response"));

    world
        .graph
        .lift_response(&responses[0].id, T0 + Duration::minutes(40))
        .expect("lift");
    let lifted = world
        .judge(Mail::new("38456@brand.example", "a4@example.com").at(T0 + Duration::minutes(50)));
    assert!(!fires(&lifted, "campaign.response"));
}

#[test]
fn response_expires() {
    let world = World::new();
    for (index, local) in ["38117", "38240", "38302"].iter().enumerate() {
        world.hold(
            Mail::new(
                &format!("{local}@brand.example"),
                &format!("a{index}@example.com"),
            )
            .at(T0),
        );
    }
    let later =
        world.judge(Mail::new("38456@brand.example", "a4@example.com").at(T0 + Duration::hours(3)));
    assert!(!fires(&later, "campaign.response"));
}

#[test]
fn link_domain_new_pair() {
    let world = World::new();
    world.learn(
        Mail::new(PARTNER, BOB)
            .text("See https://docs.known.example/a")
            .at(T0 - Duration::days(1)),
    );
    let new = world.judge(Mail::new(PARTNER, BOB).text("See https://fresh.example/login"));
    let known = world.judge(Mail::new(PARTNER, BOB).text("See https://www.known.example/b"));
    assert!(fires(&new, "link.domain_new"), "{:?}", ids(&new));
    assert!(!fires(&known, "link.domain_new"));
}

#[test]
fn link_to_sender_domain_is_known() {
    let world = World::new();
    partner_history(&world, 1);
    let own = world.judge(Mail::new(PARTNER, BOB).text("See https://portal.partner.example/x"));
    assert!(!fires(&own, "link.domain_new"));
}

#[test]
fn link_in_qr_pair() {
    let world = World::new();
    let with_code = world.judge(Mail::new(PARTNER, BOB).attach(
        "scan.png",
        "image/png",
        qr_png("https://x.bond/verify"),
    ));
    let without = world.judge(Mail::new(PARTNER, BOB).attach("scan.png", "image/png", blank_png()));
    assert!(
        fires(&with_code, "link.in_qr"),
        "{:?} {:?}",
        ids(&with_code),
        with_code.findings
    );
    assert!(!fires(&without, "link.in_qr"));
}

/// Builds a minimal DOCX whose document links to `url` through a hyperlink relationship, or links nowhere.
fn docx(url: Option<&str>) -> Vec<u8> {
    let content_types = br#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#;
    let package_rels = br#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>"#;
    let document = br#"<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><w:body><w:p><w:hyperlink r:id="rId5"><w:r><w:t>Open the schedule</w:t></w:r></w:hyperlink></w:p></w:body></w:document>"#;
    let document_rels = match url {
        Some(url) => format!(r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId5" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/hyperlink" Target="{url}" TargetMode="External"/></Relationships>"#),
        None => r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"></Relationships>"#.to_owned(),
    };
    zip_of(&[
        ("[Content_Types].xml", content_types),
        ("_rels/.rels", package_rels),
        ("word/document.xml", document),
        ("word/_rels/document.xml.rels", document_rels.as_bytes()),
    ])
}

const DOCX_TYPE: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";

#[test]
fn link_in_attachment_pair() {
    let world = World::new();
    let linked = world.judge(Mail::new(PARTNER, BOB).attach(
        "schedule.docx",
        DOCX_TYPE,
        docx(Some("https://files.example/doc")),
    ));
    let unlinked =
        world.judge(Mail::new(PARTNER, BOB).attach("schedule.docx", DOCX_TYPE, docx(None)));
    assert!(
        fires(&linked, "link.in_attachment"),
        "{:?} {:?}",
        ids(&linked),
        linked.links
    );
    assert!(!fires(&unlinked, "link.in_attachment"));
}

#[test]
fn link_obfuscated_pair() {
    let world = World::new();
    let disguised = world.judge(
        Mail::new(PARTNER, BOB)
            .html("<a href=\"https://evil.example/login\">https://www.paypal.com</a>"),
    );
    let honest = world.judge(
        Mail::new(PARTNER, BOB)
            .html("<a href=\"https://www.paypal.com/\">https://www.paypal.com</a>"),
    );
    let ip = world.judge(Mail::new(PARTNER, BOB).text("Log in at http://192.0.2.7/login"));
    assert!(
        fires(&disguised, "link.obfuscated"),
        "{:?} {:?}",
        ids(&disguised),
        disguised.links
    );
    assert!(!fires(&honest, "link.obfuscated"));
    assert!(fires(&ip, "link.obfuscated"));
}

#[test]
fn attachment_type_new_pair() {
    let world = World::new();
    let pdf = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n".to_vec();
    for day in 0..4 {
        world.learn(
            Mail::new(PARTNER, BOB)
                .attach("a.pdf", "application/pdf", pdf.clone())
                .at(T0 - Duration::days(10 - day)),
        );
    }
    let zip = zip_of(&[("notes.txt", b"hello")]);
    let new_type = world.judge(Mail::new(PARTNER, BOB).attach("b.zip", "application/zip", zip));
    let known_type = world.judge(Mail::new(PARTNER, BOB).attach("c.pdf", "application/pdf", pdf));
    assert!(
        fires(&new_type, "attachment.type_new"),
        "{:?} {:?}",
        ids(&new_type),
        new_type.attachments
    );
    assert!(
        !fires(&known_type, "attachment.type_new"),
        "{}",
        evidence(&known_type, "attachment.type_new")
    );
}

#[test]
fn attachment_active_content_pair() {
    let world = World::new();
    let content_types = br#"<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Override PartName="/xl/workbook.xml" ContentType="application/vnd.ms-excel.sheet.macroEnabled.main+xml"/></Types>"#;
    let workbook = br#"<?xml version="1.0"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"/>"#;
    let macro_sheet = br#"<?xml version="1.0"?><xm:macrosheet xmlns:xm="http://schemas.microsoft.com/office/excel/2006/main"/>"#;
    let with_macros = zip_of(&[
        ("[Content_Types].xml", content_types),
        ("xl/workbook.xml", workbook),
        ("xl/macrosheets/sheet1.xml", macro_sheet),
    ]);
    let without = zip_of(&[
        ("[Content_Types].xml", content_types),
        ("xl/workbook.xml", workbook),
    ]);
    let active = world.judge(Mail::new(PARTNER, BOB).attach(
        "book.xlsm",
        "application/vnd.ms-excel",
        with_macros,
    ));
    let clean = world.judge(Mail::new(PARTNER, BOB).attach(
        "book.xlsx",
        "application/vnd.ms-excel",
        without,
    ));
    assert!(
        fires(&active, "attachment.active_content"),
        "{:?} {:?}",
        ids(&active),
        active.findings
    );
    assert!(!fires(&clean, "attachment.active_content"));
}

#[test]
fn attachment_unscannable_pair() {
    let world = World::new();
    let zeros = vec![0u8; 8 * 1024 * 1024];
    let bomb = world.judge(Mail::new(PARTNER, BOB).attach(
        "big.zip",
        "application/zip",
        zip_of(&[("zeros.bin", &zeros)]),
    ));
    let small = world.judge(Mail::new(PARTNER, BOB).attach(
        "small.zip",
        "application/zip",
        zip_of(&[("a.txt", b"hello")]),
    ));
    assert!(
        fires(&bomb, "attachment.unscannable"),
        "{:?} {:?}",
        ids(&bomb),
        bomb.findings
    );
    assert!(!fires(&small, "attachment.unscannable"));
}

#[test]
fn script_unusual_pair() {
    let world = World::new();
    for index in 0..25 {
        world.learn(
            Mail::new(PARTNER, BOB)
                .subject("Weekly shipping report")
                .text("All containers left on time.")
                .at(T0 - Duration::hours(100 - index)),
        );
    }
    let cyrillic = world.judge(
        Mail::new(PARTNER, BOB)
            .subject("Счёт на оплату")
            .text("Оплатите счёт сегодня."),
    );
    let latin = world.judge(
        Mail::new(PARTNER, BOB)
            .subject("Monthly report")
            .text("Numbers attached."),
    );
    assert!(
        fires(&cyrillic, "content.script_unusual"),
        "{:?}",
        ids(&cyrillic)
    );
    assert!(!fires(&latin, "content.script_unusual"));
}

#[test]
fn script_unusual_needs_history() {
    let world = World::new();
    partner_history(&world, 3);
    let cyrillic = world.judge(
        Mail::new(PARTNER, BOB)
            .subject("Счёт на оплату")
            .text("Оплатите счёт сегодня."),
    );
    assert!(!fires(&cyrillic, "content.script_unusual"));
}

#[test]
fn origin_network_new_pair() {
    let world = World::new();
    partner_history(&world, 3);
    let moved = world.judge(Mail::new(PARTNER, BOB).via_ip("198.51.100.40"));
    let usual = world.judge(Mail::new(PARTNER, BOB).via_ip("203.0.113.99"));
    assert!(fires(&moved, "origin.network_new"), "{:?}", ids(&moved));
    assert!(evidence(&moved, "origin.network_new").contains("203.0.113.0/24"));
    assert!(!fires(&usual, "origin.network_new"));
}

#[test]
fn origin_skips_private_hops() {
    let world = World::new();
    partner_history(&world, 3);
    let internal_relay = world.judge(Mail::new(PARTNER, BOB).via_ip("10.0.0.5"));
    assert!(!fires(&internal_relay, "origin.network_new"));
}

#[test]
fn client_mismatch_pair() {
    let world = World::new();
    for day in 0..3 {
        world.learn(
            Mail::new(PARTNER, BOB)
                .header("X-Originating-IP: [192.0.2.10]")
                .at(T0 - Duration::days(5 - day)),
        );
    }
    let elsewhere = world.judge(Mail::new(PARTNER, BOB).header("X-Originating-IP: [198.51.100.7]"));
    let usual = world.judge(Mail::new(PARTNER, BOB).header("X-Originating-IP: [192.0.2.77]"));
    assert!(
        fires(&elsewhere, "origin.client_mismatch"),
        "{:?}",
        ids(&elsewhere)
    );
    assert!(!fires(&usual, "origin.client_mismatch"));
}

#[test]
fn auth_fail_pair() {
    let world = World::new();
    let failed =
        world.judge(Mail::new(PARTNER, BOB).header(
            "Authentication-Results: mx.example.com; spf=fail smtp.mailfrom=partner.example",
        ));
    let passed =
        world.judge(Mail::new(PARTNER, BOB).header(
            "Authentication-Results: mx.example.com; spf=pass smtp.mailfrom=partner.example",
        ));
    assert!(fires(&failed, "auth.fail"), "{:?}", ids(&failed));
    assert!(!fires(&passed, "auth.fail"));
}

#[test]
fn local_unauthenticated_pair() {
    let world = World::new();
    world.learn(Mail::new("ceo@example.com", PARTNER).named("Chief Executive"));
    let forged = world.judge_from_client(Mail::new("ceo@example.com", BOB), "203.0.113.9");
    let internal = world.judge_from_client(Mail::new("ceo@example.com", BOB), "127.0.0.1");
    assert!(
        fires(&forged, "sender.local_unauthenticated"),
        "{:?}",
        ids(&forged)
    );
    assert!(evidence(&forged, "sender.local_unauthenticated").contains("203.0.113.9"));
    assert!(!fires(&internal, "sender.local_unauthenticated"));
    assert!(internal.signals.is_empty(), "{:?}", ids(&internal));
}

#[test]
fn forged_local_sender_not_learned() {
    let world = World::new();
    let first = world.analyse_from_client(Mail::new("ceo@example.com", BOB), "203.0.113.9");
    world
        .engine
        .learn(&first, Outcome::Delivered)
        .expect("learn");
    let again = world.judge_from_client(Mail::new("ceo@example.com", BOB), "203.0.113.9");

    assert!(
        fires(&first.verdict, "sender.local_unauthenticated"),
        "{:?}",
        ids(&first.verdict)
    );
    // Still a stranger: the delivered forgery taught the graph nothing.
    assert_eq!(ids(&again), ids(&first.verdict));
}

#[test]
fn local_unauthenticated_header_from() {
    let world = World::new();
    let forged = world.judge_with_envelope(
        Mail::new("ceo@example.com", BOB),
        "bounce@mailer.example",
        "203.0.113.9",
    );
    let outsider = world.judge_with_envelope(
        Mail::new(PARTNER, BOB),
        "bounce@mailer.example",
        "203.0.113.9",
    );
    assert!(
        fires(&forged, "sender.local_unauthenticated"),
        "{:?}",
        ids(&forged)
    );
    assert!(!fires(&outsider, "sender.local_unauthenticated"));
}

#[test]
fn local_unauthenticated_passes_for_services() {
    let world = World::new();
    let service = world.judge_from_client(
        Mail::new("payroll@example.com", BOB).header(
            "Authentication-Results: mx.example.com; dkim=pass header.d=example.com; spf=pass smtp.mailfrom=example.com",
        ),
        "198.51.100.20",
    );
    let foreign_pass = world.judge_from_client(
        Mail::new("payroll@example.com", BOB).header(
            "Authentication-Results: mx.example.com; spf=pass smtp.mailfrom=attacker.example",
        ),
        "198.51.100.20",
    );
    assert!(!fires(&service, "sender.local_unauthenticated"));
    assert!(fires(&foreign_pass, "sender.local_unauthenticated"));
}

#[test]
fn auth_results_from_foreign_host_are_ignored() {
    let world = World::new();
    let forged = world.judge(
        Mail::new(PARTNER, BOB).header("Authentication-Results: mx.attacker.example; dkim=fail"),
    );
    assert!(!fires(&forged, "auth.fail"));
}

#[test]
fn auth_pass_never_lowers_score() {
    let world = World::new();
    let plain = world.judge(Mail::new("a@new.example", BOB));
    let passed = world.judge(
        Mail::new("a@new.example", BOB)
            .header("Authentication-Results: mx.example.com; spf=pass; dkim=pass; dmarc=pass"),
    );
    assert_eq!(plain.score, passed.score);
}

#[test]
fn known_reply_pair() {
    let world = World::new();
    world.learn(
        Mail::new(BOB, PARTNER)
            .id("out-1@example.com")
            .at(T0 - Duration::days(1)),
    );
    let reply = world
        .judge(Mail::new("other@partner.example", BOB).header("In-Reply-To: <out-1@example.com>"));
    let unrelated = world.judge(
        Mail::new("other@partner.example", BOB).header("In-Reply-To: <someone-else@x.example>"),
    );
    assert!(fires(&reply, "thread.known_reply"), "{:?}", ids(&reply));
    assert!(!fires(&unrelated, "thread.known_reply"));
}

#[test]
fn plain_first_contact_is_never_held() {
    let world = World::new();
    let verdict = world.judge(
        Mail::new("38117@brand.example", BOB)
            .named("Finance Department")
            .header("Authentication-Results: mx.example.com; spf=fail; dkim=fail"),
    );
    assert!(
        verdict.score >= 9.0,
        "score {} does not test the cap",
        verdict.score
    );
    assert_eq!(verdict.action, Action::Tag);
}

#[test]
fn held_mail_never_makes_sender_familiar() {
    let world = World::new();
    world.hold(Mail::new("x@held.example", BOB).at(T0));
    let again = world.judge(Mail::new("x@held.example", BOB).at(T0 + Duration::hours(1)));
    assert!(fires(&again, "sender.first_contact"));
}

#[test]
fn released_mail_makes_sender_familiar() {
    let world = World::new();
    let mail = Mail::new("x@held.example", BOB).at(T0);
    let analysis = world.analyse(&mail);
    world.engine.learn(&analysis, Outcome::Held).expect("hold");
    world
        .engine
        .learn(&analysis, Outcome::Released)
        .expect("release");
    let again = world.judge(Mail::new("x@held.example", BOB).at(T0 + Duration::hours(1)));
    assert!(!fires(&again, "sender.first_contact"));
}

#[test]
fn learning_twice_counts_once() {
    let world = World::new();
    let mail = Mail::new(PARTNER, BOB).id("same@partner.example");
    let analysis = world.analyse(&mail);
    world
        .engine
        .learn(&analysis, Outcome::Delivered)
        .expect("learn");
    world
        .engine
        .learn(&analysis, Outcome::Delivered)
        .expect("learn again");
    assert_eq!(world.graph.stats().expect("stats").messages, 1);
}

#[test]
fn learn_mode_only_tags() {
    let text = gatehouse_policy::DEFAULT_POLICY.replace("mode = \"enforce\"", "mode = \"learn\"");
    let world = World::with_policy(Policy::from_toml(&text, "learn.toml").expect("valid policy"));
    let verdict = world.judge(Mail::new("a@new.example", BOB).named("财务部").attach(
        "scan.png",
        "image/png",
        qr_png("https://x.bond/v"),
    ));
    assert!(verdict.score >= 9.0, "score {}", verdict.score);
    assert_eq!(verdict.action, Action::Tag);
}

#[test]
fn allow_and_block_lists_decide() {
    let text = gatehouse_policy::DEFAULT_POLICY
        .replace("allow = []", "allow = [\"partner.example\"]")
        .replace("block = []", "block = [\"bad.example\"]");
    let world = World::with_policy(Policy::from_toml(&text, "lists.toml").expect("valid policy"));
    let allowed = world.judge(
        Mail::new("new@partner.example", BOB)
            .attach("scan.png", "image/png", qr_png("https://x.bond/v"))
            .named("财务部"),
    );
    let blocked = world.judge(Mail::new("a@bad.example", BOB));
    assert_eq!(allowed.action, Action::Deliver);
    assert_eq!(blocked.action, Action::Reject);
}

#[test]
fn override_applies_to_recipient_domain() {
    let text = format!(
        "{}\n[overrides.\"lab.example.com\"]\nmode = \"learn\"\n",
        gatehouse_policy::DEFAULT_POLICY
    );
    let world =
        World::with_policy(Policy::from_toml(&text, "override.toml").expect("valid policy"));
    let mail = |to: &str| {
        Mail::new("a@new.example", to).named("财务部").attach(
            "scan.png",
            "image/png",
            qr_png("https://x.bond/v"),
        )
    };
    assert_eq!(world.judge(mail("bob@lab.example.com")).action, Action::Tag);
    assert_eq!(world.judge(mail(BOB)).action, Action::Hold);
}

#[test]
fn internal_mail_fires_nothing() {
    let world = World::new();
    let verdict = world.judge(Mail::new("finance@example.com", BOB).named("财务部"));
    assert!(verdict.signals.is_empty(), "{:?}", ids(&verdict));
}

#[test]
fn text_explanation_reads_as_sentences() {
    let world = World::new();
    let verdict = world.judge(
        Mail::new("38117@brand.example", BOB)
            .named("财务部")
            .attach("scan.png", "image/png", qr_png("https://x.bond/v")),
    );
    let text = gatehouse_engine::render_text(&verdict);
    assert!(
        text.contains(
            "First mail from 38117@brand.example to anyone here. [sender.first_contact +2.0]"
        ),
        "{text}"
    );
    assert!(
        text.contains("A QR code in scan.png links to https://x.bond/v"),
        "{text}"
    );
}

#[test]
fn held_verdicts_group_by_campaign() {
    let world = World::new();
    let mut held = Vec::new();
    for (index, local) in ["38117", "38240", "38302", "38456"].iter().enumerate() {
        held.push(
            world.hold(
                Mail::new(
                    &format!("{local}@brand.example"),
                    &format!("a{index}@example.com"),
                )
                .at(T0 + Duration::minutes(index as i64)),
            ),
        );
    }
    held.push(world.hold(Mail::new("other@else.example", BOB).at(T0)));
    let groups = gatehouse_engine::group_by_campaign(&held);
    assert_eq!(
        groups[0].cluster.as_deref(),
        Some("sender:brand.example|9{5}")
    );
    assert_eq!(groups[0].verdicts.len(), 2);
    assert_eq!(
        groups.last().map(|group| group.cluster.is_none()),
        Some(true)
    );
}

/// A MaxMind DB (format 2.0, IPv4, 24-bit records) built in memory, so that
/// the GeoIP path runs without shipping a real database.
mod mmdb {
    /// One value of the MaxMind DB data format.
    pub(super) enum Value {
        String(&'static str),
        Uint16(u16),
        Uint32(u32),
        Uint64(u64),
        Map(Vec<(&'static str, Value)>),
        Array(Vec<Value>),
    }

    /// Writes a control byte, the extended type byte for types above 7, and
    /// the size byte for sizes from 29 to 284.
    fn control(out: &mut Vec<u8>, kind: u8, size: usize) {
        assert!(size < 285, "test values stay short");
        let inline = if size < 29 { size as u8 } else { 29 };
        if kind <= 7 {
            out.push((kind << 5) | inline);
        } else {
            out.push(inline);
            out.push(kind - 7);
        }
        if size >= 29 {
            out.push((size - 29) as u8);
        }
    }

    fn unsigned(out: &mut Vec<u8>, kind: u8, value: u64, width: usize) {
        let bytes = value.to_be_bytes();
        let significant: Vec<u8> = bytes[8 - width..]
            .iter()
            .copied()
            .skip_while(|byte| *byte == 0)
            .collect();
        control(out, kind, significant.len());
        out.extend(significant);
    }

    pub(super) fn encode(value: &Value, out: &mut Vec<u8>) {
        match value {
            Value::String(text) => {
                control(out, 2, text.len());
                out.extend_from_slice(text.as_bytes());
            }
            Value::Uint16(number) => unsigned(out, 5, u64::from(*number), 2),
            Value::Uint32(number) => unsigned(out, 6, u64::from(*number), 4),
            Value::Uint64(number) => unsigned(out, 9, *number, 8),
            Value::Map(entries) => {
                control(out, 7, entries.len());
                for (key, value) in entries {
                    encode(&Value::String(key), out);
                    encode(value, out);
                }
            }
            Value::Array(items) => {
                control(out, 11, items.len());
                for item in items {
                    encode(item, out);
                }
            }
        }
    }

    #[derive(Clone, Copy)]
    enum Record {
        Empty,
        Node(usize),
        Data(usize),
    }

    /// Builds a database mapping each IPv4 network (address, prefix length) to a record.
    pub(super) fn build(networks: &[([u8; 4], u8, Value)]) -> Vec<u8> {
        let mut data = Vec::new();
        let mut nodes: Vec<[Record; 2]> = vec![[Record::Empty; 2]];
        for (address, length, value) in networks {
            let offset = data.len();
            encode(value, &mut data);
            let bits = u32::from_be_bytes(*address);
            let mut node = 0;
            for depth in 0..*length {
                let bit = ((bits >> (31 - depth)) & 1) as usize;
                if depth + 1 == *length {
                    nodes[node][bit] = Record::Data(offset);
                } else if let Record::Node(next) = nodes[node][bit] {
                    node = next;
                } else {
                    nodes.push([Record::Empty; 2]);
                    let next = nodes.len() - 1;
                    nodes[node][bit] = Record::Node(next);
                    node = next;
                }
            }
        }
        let count = nodes.len();
        let mut out = Vec::new();
        for node in &nodes {
            for record in node {
                let value = match record {
                    Record::Empty => count,
                    Record::Node(next) => *next,
                    Record::Data(offset) => count + 16 + offset,
                };
                out.extend_from_slice(&(value as u32).to_be_bytes()[1..]);
            }
        }
        out.extend_from_slice(&[0u8; 16]);
        out.extend(data);
        out.extend_from_slice(b"\xAB\xCD\xEFMaxMind.com");
        let metadata = Value::Map(vec![
            ("binary_format_major_version", Value::Uint16(2)),
            ("binary_format_minor_version", Value::Uint16(0)),
            ("build_epoch", Value::Uint64(1_767_225_600)),
            ("database_type", Value::String("Gatehouse-Test")),
            (
                "description",
                Value::Map(vec![("en", Value::String("test"))]),
            ),
            ("ip_version", Value::Uint16(4)),
            ("languages", Value::Array(vec![Value::String("en")])),
            ("node_count", Value::Uint32(count as u32)),
            ("record_size", Value::Uint16(24)),
        ]);
        encode(&metadata, &mut out);
        out
    }
}

fn asn(number: u32) -> mmdb::Value {
    mmdb::Value::Map(vec![
        ("autonomous_system_number", mmdb::Value::Uint32(number)),
        (
            "autonomous_system_organization",
            mmdb::Value::String("Example Networks"),
        ),
    ])
}

fn country(code: &'static str) -> mmdb::Value {
    mmdb::Value::Map(vec![(
        "country",
        mmdb::Value::Map(vec![("iso_code", mmdb::Value::String(code))]),
    )])
}

fn geoip_world() -> World {
    let asn_db = mmdb::build(&[
        ([198, 51, 100, 0], 24, asn(64500)),
        ([198, 51, 101, 0], 24, asn(64500)),
        ([203, 0, 113, 0], 24, asn(64501)),
    ]);
    let country_db = mmdb::build(&[
        ([198, 51, 100, 0], 23, country("DE")),
        ([203, 0, 113, 0], 24, country("CN")),
    ]);
    let geoip = gatehouse_engine::GeoIp::from_bytes(Some(asn_db), Some(country_db))
        .expect("test databases open");
    let mut world = World::new();
    let engine = Engine::new(
        Arc::new(Policy::embedded_default()),
        world.graph.clone(),
        Limits::default(),
        vec!["example.com".to_owned()],
    );
    world.engine = engine.with_geoip(Arc::new(geoip));
    world
}

#[test]
fn origin_network_new_by_country() {
    let world = geoip_world();
    for day in 0..3 {
        world.learn(
            Mail::new(PARTNER, BOB)
                .via_ip("198.51.100.5")
                .at(T0 - Duration::days(5 - day)),
        );
    }
    // Another /24 of the same network and country is not new; another country is.
    let same_country = world.judge(Mail::new(PARTNER, BOB).via_ip("198.51.101.7"));
    let other_country = world.judge(Mail::new(PARTNER, BOB).via_ip("203.0.113.5"));
    assert!(
        !fires(&same_country, "origin.network_new"),
        "{}",
        evidence(&same_country, "origin.network_new")
    );
    assert!(fires(&other_country, "origin.network_new"));
    assert!(
        evidence(&other_country, "origin.network_new").contains("AS64501, country:CN"),
        "{}",
        evidence(&other_country, "origin.network_new")
    );
}

#[test]
fn evidence_is_capped_per_signal() {
    let world = World::new();
    let links: Vec<String> = (0..12)
        .map(|index| format!("http://192.0.2.{index}/x"))
        .collect();
    let verdict = world.judge(Mail::new(PARTNER, BOB).text(&links.join("\n")));
    let text = evidence(&verdict, "link.obfuscated");
    assert!(text.ends_with("; and 7 more"), "{text}");
    assert_eq!(
        verdict
            .signals
            .iter()
            .filter(|signal| signal.id == "link.obfuscated")
            .count(),
        1
    );
}
