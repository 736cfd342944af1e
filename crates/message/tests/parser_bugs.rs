//! Inputs that broke other mail parsers and scanners, rebuilt from their bug
//! reports. Each test names the input; the reports are listed in the corpus
//! manifest beside the shared test data.

mod common;

use common::{crlf, links_of, parse};
use gatehouse_message::{BodyKind, FindingKind, Limits};

fn part_names(message: &gatehouse_message::Message) -> Vec<Option<&str>> {
    message.parts.iter().map(|p| p.name.as_deref()).collect()
}

fn finding_kinds(message: &gatehouse_message::Message) -> Vec<FindingKind> {
    message.findings.iter().map(|f| f.kind).collect()
}

#[test]
fn rfc822_part_that_is_not_a_message() {
    // mail-parser panicked in attachment_name() on this input.
    let raw = crlf(
        b"From: a@example.com
Subject: report
Content-Type: multipart/mixed; boundary=\"b\"

--b
Content-Type: text/plain

see attached
--b
Content-Type: message/rfc822; name=\"report.eml\"
Content-Disposition: attachment; filename=\"report.eml\"

this attachment is not a valid eml
--b--
",
    );
    let message = parse(&raw);
    assert_eq!(part_names(&message), [Some("report.eml")]);
    assert!(finding_kinds(&message).contains(&FindingKind::MalformedMime));
    let texts: Vec<&str> = message.bodies.iter().map(|b| b.text.trim()).collect();
    assert!(
        texts.contains(&"this attachment is not a valid eml"),
        "{texts:?}"
    );
}

#[test]
fn empty_disposition_type_with_folded_filename() {
    let raw = crlf(
        b"From: a@example.com
Content-Type: multipart/related; boundary=\"b\"

--b
Content-Type: text/html

<img src=\"cid:image001.png@01D1\">
--b
Content-Type: image/png; name=\"image001.png\"
Content-Disposition: ;
\tfilename=\"image001.png\"
Content-ID: <image001.png@01D1>
Content-Transfer-Encoding: base64

iVBORw0KGgo=
--b--
",
    );
    let message = parse(&raw);
    assert_eq!(part_names(&message), [Some("image001.png")]);
    assert_eq!(message.parts[0].data, b"\x89PNG\r\n\x1a\n");
    assert_eq!(message.parts[0].referenced_from.as_deref(), Some("body"));
}

#[test]
fn multipart_without_starting_boundary() {
    let raw = crlf(
        b"From: a@example.com
Content-Type: multipart/mixed; boundary=\"b\"

Visit https://no-start.example/login now
--b--
",
    );
    let message = parse(&raw);
    let urls: Vec<String> = links_of(&message).into_iter().map(|l| l.url).collect();
    assert!(
        urls.contains(&"https://no-start.example/login".to_owned()),
        "{urls:?}"
    );
}

#[test]
fn parameter_with_line_breaks() {
    let raw = b"From: a@example.com\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: application/pdf; name=\"\r\n \r\n\"\r\nContent-Disposition: attachment; filename=\"\r\n\t\"\r\n\r\nJVBERi0=\r\n--b--\r\n";
    let message = parse(raw);
    assert_eq!(message.parts.len(), 1);
    assert_eq!(message.parts[0].content_type, "application/pdf");
}

#[test]
fn pdf_without_closing_boundary() {
    let raw = crlf(
        b"From: a@example.com
Content-Type: multipart/mixed; boundary=\"b\"

--b
Content-Type: text/plain

invoice attached
--b
Content-Type: application/pdf; name=\"invoice.pdf\"
Content-Transfer-Encoding: base64

JVBERi0xLjQK
",
    );
    let message = parse(&raw);
    assert_eq!(part_names(&message), [Some("invoice.pdf")]);
    assert_eq!(message.parts[0].data, b"%PDF-1.4\n");
    let unclosed = message
        .findings
        .iter()
        .any(|f| f.kind == FindingKind::MalformedMime && f.detail.contains("never closed"));
    assert!(unclosed, "{:?}", message.findings);
}

#[test]
fn rfc822_in_related_with_bad_closing_boundary() {
    // A cPanel notification: the closing delimiter lacks its trailing `--`.
    let raw = crlf(
        b"From: cpanel@example.com
Subject: notice
Content-Type: multipart/related; boundary=\"outer\"

--outer
Content-Type: text/plain

The message below was rejected.
--outer
Content-Type: message/rfc822

From: someone@example.org
Subject: original
Content-Type: text/plain

original text with https://inner.example/x
--outer
",
    );
    let message = parse(&raw);
    let locations: Vec<&str> = message.bodies.iter().map(|b| b.location.as_str()).collect();
    assert_eq!(locations, ["body", "message #1 › body"]);
    let urls: Vec<String> = links_of(&message).into_iter().map(|l| l.url).collect();
    assert_eq!(urls, ["https://inner.example/x"]);
}

#[test]
fn unclosed_alternative_keeps_last_html_part() {
    // multipart/related → alternative whose parts never close; scanners that
    // drop the last part miss the link, which is why attackers send this.
    let raw = crlf(
        b"From: a@example.com
Content-Type: multipart/related; boundary=\"rel\"

--rel
Content-Type: multipart/alternative; boundary=\"alt\"

--alt
Content-Type: text/plain

plain version
--alt
Content-Type: text/html

<a href=\"https://hidden.example/pay\">pay</a>
--rel--
",
    );
    let message = parse(&raw);
    let html: Vec<&str> = message
        .bodies
        .iter()
        .filter(|b| b.kind == BodyKind::Html)
        .map(|b| b.text.trim())
        .collect();
    assert_eq!(html, ["<a href=\"https://hidden.example/pay\">pay</a>"]);
    let urls: Vec<String> = links_of(&message).into_iter().map(|l| l.url).collect();
    assert_eq!(urls, ["https://hidden.example/pay"]);
}

#[test]
fn unclosed_multipart_at_end_of_message() {
    // The alternative is never closed and the message simply ends.
    let raw = crlf(
        b"From: a@example.com
Content-Type: multipart/alternative; boundary=\"alt\"

--alt
Content-Type: text/plain

plain version
--alt
Content-Type: text/html

<a href=\"https://last.example/\">x</a>
",
    );
    let message = parse(&raw);
    let kinds: Vec<BodyKind> = message.bodies.iter().map(|b| b.kind).collect();
    assert_eq!(kinds, [BodyKind::Plain, BodyKind::Html]);
    let urls: Vec<String> = links_of(&message).into_iter().map(|l| l.url).collect();
    assert_eq!(urls, ["https://last.example/"]);
}

#[test]
fn unencoded_rfc822_keeps_inner_boundaries_inside() {
    // An Office 365 phish report: the inner message's parts belong to it, not to the outer message.
    let raw = crlf(
        b"From: report@example.com
Content-Type: multipart/mixed; boundary=\"outer\"

--outer
Content-Type: text/plain

Reported message attached.
--outer
Content-Type: message/rfc822; name=\"phish.eml\"
Content-Disposition: attachment; filename=\"phish.eml\"

From: attacker@evil.example
Subject: pay now
Content-Type: multipart/mixed; boundary=\"inner\"

--inner
Content-Type: text/plain

pay at https://evil.example/pay
--inner
Content-Type: application/pdf; name=\"invoice.pdf\"
Content-Transfer-Encoding: base64

JVBERi0=
--inner--

--outer--
",
    );
    let message = parse(&raw);
    let locations: Vec<&str> = message.parts.iter().map(|p| p.location.as_str()).collect();
    assert_eq!(locations, ["phish.eml › invoice.pdf"]);
    let body_locations: Vec<&str> = message.bodies.iter().map(|b| b.location.as_str()).collect();
    assert_eq!(body_locations, ["body", "phish.eml › body"]);
}

#[test]
fn boundary_dash_that_never_appears() {
    let raw = crlf(
        b"From: a@example.com
Content-Type: multipart/mixed; boundary=\"-\"

Your account is locked: https://unlock.example/now
",
    );
    let message = parse(&raw);
    let urls: Vec<String> = links_of(&message).into_iter().map(|l| l.url).collect();
    assert_eq!(urls, ["https://unlock.example/now"]);
    assert!(
        finding_kinds(&message).contains(&FindingKind::MalformedMime),
        "{:?}",
        message.findings
    );
}

#[test]
fn long_iso_2022_jp_subject_from_and_filename() {
    // Every word opens and closes its own escape sequence.
    let raw = crlf(
        b"From: =?ISO-2022-JP?B?GyRCRnxLXDhsJEhGfEtcOGwkSEZ8S1w4bCROJUElJyVDGyhC?=
 =?ISO-2022-JP?B?GyRCJS8bKEI=?= <jp@example.jp>
Subject: =?ISO-2022-JP?B?GyRCRnxLXDhsJEhGfEtcOGwkSEZ8S1w4bCROJUElJyVDGyhC?=
 =?ISO-2022-JP?B?GyRCJS8bKEI=?=
Content-Type: multipart/mixed; boundary=b

--b
Content-Type: application/octet-stream;
 name=\"=?ISO-2022-JP?B?GyRCRnxLXDhsJEhGfEtcOGwkSEZ8S1w4bCROJUElJyVDGyhC?=
 =?ISO-2022-JP?B?GyRCJS8bKEI=?=\"

x
--b--
",
    );
    let message = parse(&raw);
    let expected = "日本語と日本語と日本語のチェック";
    assert_eq!(message.headers.subject.as_deref(), Some(expected));
    let name = message
        .headers
        .from
        .as_ref()
        .and_then(|f| f.display_name.as_deref());
    assert_eq!(name, Some(expected));
    assert_eq!(part_names(&message), [Some(expected)]);
}

#[test]
fn iso_2022_jp_q_words_joined_before_decoding() {
    let raw = crlf(
        b"From: a@example.jp
Subject: =?iso-2022-jp?Q?=1B=24B0F7o=3EpJs=1B=28B=5B200611=2D01_=1B=24?=
 =?iso-2022-jp?Q?BBg=3Cj=3Bq=3B=3A1=3FMQ2q=3CR=1B=28B_=2D_=1B=24B=3B?=
 =?iso-2022-jp?Q?q=3B=3A1=3FMQ=24K=24=2B=24=2B=24k=1B=28BDWH=1B=24B=24?=
 =?iso-2022-jp?Q?NFs=3C=213=2BH=2F6HL3=1B=28B=5D?=

body
",
    );
    let message = parse(&raw);
    assert_eq!(
        message.headers.subject.as_deref(),
        Some("案件情報[200611-01 大手資産運用会社 - 資産運用にかかるDWHの二次開発業務]")
    );
}

#[test]
fn iso_2022_jp_b_word_padding() {
    // Joining the base64 text first would leave `=` padding mid-string.
    let raw = crlf(
        b"From: a@example.jp
Subject: =?ISO-2022-JP?B?UGFzc3dvcmQ6GyRCIVYbKEJSRTogGyRCRUUbKEI=?=
        =?ISO-2022-JP?B?GyRCO1IlYSE8JWs+cEpzTzMxTEJQOnYlNyU5JUYlYCVGGyhC?=
        =?ISO-2022-JP?B?GyRCJTklSCVhITwlayRHJDkhIyFXGyhC?=

body
",
    );
    let message = parse(&raw);
    assert_eq!(
        message.headers.subject.as_deref(),
        Some("Password:「RE: 電子メール情報漏洩対策システムテストメールです。」")
    );
}

#[test]
fn rfc2231_iso_2022_jp_split_inside_escape() {
    let raw = crlf(
        b"From: a@example.jp
Content-Type: multipart/mixed; boundary=b

--b
Content-Type: image/png;
 name*0*=ISO-2022-JP''%1B%24B%24%22%24%24%24%26%24%28%24*%24%22%24%24%24%26;
 name*1*=%24%28%24*%24%22%24%24%24%26%24%28%24*%24%22%24%24%24%26%24%28;
 name*2*=%24*%1B%28B.png
Content-Transfer-Encoding: base64
Content-Disposition: inline;
 filename*0*=ISO-2022-JP''%1B%24B%24%22%24%24%24%26%24%28%24*%24%22%24%24;
 filename*1*=%24%26%24%28%24*%24%22%24%24%24%26%24%28%24*%24%22%24%24%24;
 filename*2*=%26%24%28%24*%1B%28B.png

iVBORw0KGgo=
--b--
",
    );
    let message = parse(&raw);
    assert_eq!(
        part_names(&message),
        [Some("あいうえおあいうえおあいうえおあいうえお.png")]
    );
    assert!(message.parts[0].inline);
}

#[test]
fn rfc2231_every_extended_section_percent_decoded() {
    let raw = crlf(
        b"From: a@example.com
Content-Type: multipart/mixed; boundary=b

--b
Content-Type: application/octet-stream
Content-Disposition: attachment; filename*0*=UTF-8''%e2%82%ac; filename*1*=%e2%82%ac

x
--b--
",
    );
    let message = parse(&raw);
    assert_eq!(part_names(&message), [Some("€€")]);
}

#[test]
fn rfc2231_sections_holding_encoded_words() {
    // Thunderbird decodes this mix; each section contains encoded-words and the
    // euro sign's UTF-8 bytes are split between two of them.
    let raw = crlf(
        b"From: a@example.com
Content-Type: multipart/mixed; boundary=b

--b
Content-Type: application/pdf
Content-Disposition: attachment;
 filename*0=\"=?UTF-8?Q?Rechnung_=E2=82?=\";
 filename*1=\"=?UTF-8?Q?=AC_100.pdf?=\"

x
--b--
",
    );
    let message = parse(&raw);
    assert_eq!(part_names(&message), [Some("Rechnung € 100.pdf")]);
}

#[test]
fn gb2312_subject_with_gbk_only_characters() {
    // 镕 is in GBK but not in GB2312; a strict GB2312 decoder fails on it.
    let raw = crlf(
        b"From: a@example.cn
Subject: =?GB2312?B?6Ua7+beixrE=?=

body
",
    );
    let message = parse(&raw);
    assert_eq!(message.headers.subject.as_deref(), Some("镕基发票"));
    assert!(message.findings.is_empty(), "{:?}", message.findings);
}

#[test]
fn many_tiny_parts_hit_part_limit() {
    let mut raw =
        b"From: a@example.com\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n".to_vec();
    for _ in 0..50_000 {
        raw.extend_from_slice(b"--b\r\n\r\nx\r\n");
    }
    raw.extend_from_slice(b"--b--\r\n");
    let limits = Limits::default();
    let message = gatehouse_message::parse(&raw, &limits);
    assert!(
        message.bodies.len() <= limits.max_parts,
        "{} bodies",
        message.bodies.len()
    );
    assert!(
        finding_kinds(&message).contains(&FindingKind::LimitReached),
        "{:?}",
        message.findings
    );
}

#[test]
fn deep_nesting_hits_depth_limit() {
    let limits = Limits::default();
    let depth = limits.max_mime_depth * 5;
    let mut raw = b"From: a@example.com\r\n".to_vec();
    for level in 0..depth {
        raw.extend_from_slice(
            format!("Content-Type: multipart/mixed; boundary=b{level}\r\n\r\n--b{level}\r\n")
                .as_bytes(),
        );
    }
    raw.extend_from_slice(b"Content-Type: text/plain\r\n\r\ndeep\r\n");
    let message = gatehouse_message::parse(&raw, &limits);
    assert!(
        finding_kinds(&message).contains(&FindingKind::LimitReached),
        "{:?}",
        message.findings
    );
}

#[test]
fn attachment_without_blank_line_after_headers() {
    // Without the blank line every base64 line reads as a broken header, the
    // attachment is lost, and some parsers take minutes on a large one.
    let mut raw = b"From: a@example.com\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n--b\r\nContent-Type: application/zip; name=\"big.zip\"\r\nContent-Transfer-Encoding: base64\r\n".to_vec();
    let line = b"UEsDBBQAAAAIAAAAIQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n";
    for _ in 0..30_000 {
        raw.extend_from_slice(line);
    }
    raw.extend_from_slice(b"--b--\r\n");
    let message = parse(&raw);
    assert_eq!(part_names(&message), [Some("big.zip")]);
    assert_eq!(message.parts[0].data.len(), 30_000 * 57);
    assert!(message.parts[0].data.starts_with(b"PK\x03\x04"));
    let missing_blank = message
        .findings
        .iter()
        .any(|f| f.kind == FindingKind::MalformedMime && f.detail.contains("no blank line"));
    assert!(missing_blank, "{:?}", message.findings);
}
