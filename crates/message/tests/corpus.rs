//! Parsing real third-party mail from the shared corpus: every message parses
//! without a panic, and specific messages decode to known values.

mod common;

use common::{corpus_dir, corpus_file, files_under, links_of, parse};
use gatehouse_message::{BodyKind, FindingKind, Limits};

/// Corpus folders that hold RFC 5322 messages.
const MAIL_FOLDERS: [&str; 9] = [
    "phishing_pot",
    "spamassassin-publiccorpus",
    "spamassassin-tdata",
    "rspamd",
    "stalwart-mail-parser",
    "mikel-mail-ruby",
    "mimekit",
    "cpython-test_email",
    "nodemailer-mailparser",
];

#[test]
fn every_corpus_message_parses() {
    let Some(corpus) = corpus_dir() else {
        return;
    };
    let limits = Limits::default();
    let mut count = 0;
    for folder in MAIL_FOLDERS {
        for path in files_under(&corpus.join(folder), &[".eml", ".txt"]) {
            let Ok(raw) = std::fs::read(&path) else {
                continue;
            };
            let message = parse(&raw);
            let links = links_of(&message);
            let bodies = message.bodies.len().max(1);
            assert!(
                links.len() <= limits.max_links * bodies,
                "{}: {} links",
                path.display(),
                links.len()
            );
            assert_decoded(&message, &raw, &path.display().to_string());
            count += 1;
        }
    }
    eprintln!("parsed {count} corpus messages");
    assert!(count > 1_000, "only {count} messages found in the corpus");
}

/// Asserts that the subject, sender name and filenames carry no encoded-word
/// left undecoded and no U+FFFD, unless the raw message contains U+FFFD itself.
fn assert_decoded(message: &gatehouse_message::Message, raw: &[u8], file: &str) {
    let raw_has_replacement = raw.windows(3).any(|w| w == "\u{FFFD}".as_bytes());
    let mut texts: Vec<(&str, &str)> = Vec::new();
    if let Some(subject) = &message.headers.subject {
        texts.push(("subject", subject));
    }
    if let Some(name) = message
        .headers
        .from
        .as_ref()
        .and_then(|f| f.display_name.as_deref())
    {
        texts.push(("sender name", name));
    }
    for part in &message.parts {
        if let Some(name) = &part.name {
            texts.push(("filename", name));
        }
    }
    for (what, text) in texts {
        let encoded_word = text
            .find("=?")
            .is_some_and(|start| text[start..].contains("?="));
        assert!(!encoded_word, "{file}: {what} not decoded: {text:?}");
        if !raw_has_replacement {
            assert!(
                !text.contains('\u{FFFD}'),
                "{file}: {what} garbled: {text:?}"
            );
        }
    }
}

#[test]
fn encoded_word_in_quoted_filename() {
    // `name="=?UTF-8?B?bzUzMTRwMjVUSjZxTi5wcHR4?="`: an RFC 2047 word inside a quoted parameter.
    let Some(raw) = corpus_file("phishing_pot/email/sample-591.eml") else {
        return;
    };
    let message = parse(&raw);
    let names: Vec<Option<&str>> = message.parts.iter().map(|p| p.name.as_deref()).collect();
    assert_eq!(names, [Some("o5314p25TJ6qN.pptx")]);
    assert_eq!(message.parts[0].data.len(), 85_868);
}

#[test]
fn cjk_subjects_and_names() {
    let cases = [
        (
            "spamassassin-tdata/nice/cjk/gb2312.1.eml",
            "全新原装进口，送货上门，货到付款－台湾鑫龙商贸集团公司向您拜年!",
            Some("台湾鑫龙商贸集团公司"),
        ),
        (
            "spamassassin-tdata/nice/cjk/gb2312.2.eml",
            "RE: 装硬碟问题",
            Some("Jason Lee"),
        ),
        (
            "spamassassin-tdata/nice/cjk/big5-base64.1.eml",
            "[SLAT-talk] 鉅靡6月17日新片又到.如有重複寄發.敬請原諒!．．．．．．鉅靡6月17日新片又到.如有重複寄發.敬請原諒!．．．",
            None,
        ),
    ];
    for (file, subject, display_name) in cases {
        let Some(raw) = corpus_file(file) else {
            return;
        };
        let message = parse(&raw);
        assert_eq!(message.headers.subject.as_deref(), Some(subject), "{file}");
        let name = message
            .headers
            .from
            .as_ref()
            .and_then(|from| from.display_name.as_deref());
        assert_eq!(name, display_name, "{file}");
    }
}

#[test]
fn big5_body_with_footer_after_base64() {
    // A mailing list appended its footer after the base64 data; the data still decodes.
    let Some(raw) = corpus_file("spamassassin-tdata/nice/cjk/big5-base64.1.eml") else {
        return;
    };
    let message = parse(&raw);
    assert_eq!(message.bodies.len(), 1);
    assert_eq!(message.bodies[0].kind, BodyKind::Html);
    assert!(
        message.bodies[0].text.contains("<html>"),
        "{}",
        &message.bodies[0].text[..80]
    );
    assert!(message.findings.is_empty(), "{:?}", message.findings);
}

#[test]
fn shift_jis_attachment_is_decoded() {
    let Some(raw) = corpus_file("spamassassin-tdata/nice/cjk/iso-2022-jp.1.eml") else {
        return;
    };
    let message = parse(&raw);
    let names: Vec<Option<&str>> = message.parts.iter().map(|p| p.name.as_deref()).collect();
    assert_eq!(names, [Some("test-sjis.txt"), Some("test-archive.txt")]);
    let sjis = message
        .bodies
        .iter()
        .find(|body| body.location == "test-sjis.txt")
        .map(|body| body.text.as_str())
        .unwrap_or_default();
    assert!(sjis.starts_with("このファイルの形式は"), "{sjis:.40}");
}

#[test]
fn euc_jp_bytes_labelled_iso_2022_jp() {
    let Some(raw) = corpus_file("spamassassin-tdata/nice/cjk/iso-2022-jp.2.eml") else {
        return;
    };
    let message = parse(&raw);
    assert!(
        message.bodies[0]
            .text
            .contains("ああ、心当たりがあります。")
    );
    let kinds: Vec<FindingKind> = message.findings.iter().map(|f| f.kind).collect();
    assert_eq!(kinds, [FindingKind::CharsetMismatch]);
    assert!(
        message.findings[0].detail.contains("EUC-JP"),
        "{}",
        message.findings[0].detail
    );
}

#[test]
fn nested_messages_give_locations() {
    // message/rfc822 inside message/rfc822 inside multipart/mixed.
    let Some(raw) = corpus_file("spamassassin-tdata/nice/mime9.eml") else {
        return;
    };
    let message = parse(&raw);
    let locations: Vec<&str> = message.parts.iter().map(|p| p.location.as_str()).collect();
    assert_eq!(
        locations,
        ["message #1 › message #2 › NeverlandUniversity.jpg"]
    );
    let body_locations: Vec<&str> = message.bodies.iter().map(|b| b.location.as_str()).collect();
    assert_eq!(
        body_locations,
        [
            "body",
            "message #1 › message #2 › body",
            "message #1 › message #2 › body"
        ]
    );
}

#[test]
fn empty_docx_part_is_kept() {
    // The part declares `size=18345` but contains no bytes.
    let Some(raw) = corpus_file("phishing_pot/email/sample-6388.eml") else {
        return;
    };
    let message = parse(&raw);
    let docx = message
        .parts
        .iter()
        .find(|p| p.name.as_deref() == Some("REACTIE OP ABAB - 03-12-2024.docx"));
    assert_eq!(docx.map(|p| p.data.len()), Some(0));
}

#[test]
fn data_uri_image_becomes_part() {
    // The only QR code among the phishing_pot inline images sits in a data: URI.
    let Some(raw) = corpus_file("phishing_pot/email/sample-2151.eml") else {
        return;
    };
    let message = parse(&raw);
    let images: Vec<(&str, &str, usize)> = message
        .parts
        .iter()
        .map(|p| (p.location.as_str(), p.content_type.as_str(), p.data.len()))
        .collect();
    assert_eq!(images, [("body › data:image/png #1", "image/png", 8_370)]);
    assert!(message.parts[0].data.starts_with(b"\x89PNG"));
}

#[test]
fn duplicate_from_is_reported() {
    let Some(raw) = corpus_file("rspamd/phish_sender.eml") else {
        return;
    };
    let message = parse(&raw);
    let from = message.headers.from.as_ref().map(|f| f.address.as_str());
    assert_eq!(from, Some("any@attack.com"));
    let details: Vec<&str> = message
        .findings
        .iter()
        .filter(|f| f.location == "header From")
        .map(|f| f.detail.as_str())
        .collect();
    assert_eq!(
        details,
        ["2 sender addresses in From: any@attack.com, admin@legitimate.com"]
    );
}

#[test]
fn authentication_results_without_authserv_id() {
    let Some(raw) = corpus_file("phishing_pot/email/sample-591.eml") else {
        return;
    };
    let message = parse(&raw);
    let results: Vec<(&str, &str)> = message
        .headers
        .authentication_results
        .iter()
        .map(|r| (r.method.as_str(), r.result.as_str()))
        .collect();
    assert_eq!(
        results,
        [
            ("spf", "pass"),
            ("dkim", "fail"),
            ("dmarc", "pass"),
            ("compauth", "pass")
        ]
    );
    assert_eq!(
        message
            .headers
            .originating_ip
            .map(|ip| ip.to_string())
            .as_deref(),
        Some("17.58.63.176")
    );
    assert_eq!(message.headers.received.len(), 5);
    assert_eq!(
        message.headers.received[4]
            .from_ip
            .map(|ip| ip.to_string())
            .as_deref(),
        Some("17.42.251.41")
    );
}

/// The stalwart-mail-parser corpus files where Gatehouse's decoding is right
/// and the expected parse, written by mail-parser, is not.
const STALWART_KNOWN_BETTER: [(&str, &str); 8] = [
    (
        "legacy/010.eml",
        "raw Latin-1 ö in the Subject; the expected parse has U+FFFD",
    ),
    ("legacy/016.eml", "raw Latin-1 ö in the filename"),
    ("legacy/020.eml", "raw Latin-1 ö in the Subject"),
    ("legacy/022.eml", "raw Latin-1 ö in the Subject"),
    ("legacy/023.eml", "raw Latin-1 ö in the filename"),
    ("legacy/026.eml", "raw Latin-1 ö in the filename"),
    ("legacy/027.eml", "raw Latin-1 ö in the Subject"),
    ("legacy/052.eml", "raw Latin-1 ö in the Subject"),
];

#[test]
fn stalwart_expected_subjects_and_senders() {
    let Some(corpus) = corpus_dir() else {
        return;
    };
    let root = corpus.join("stalwart-mail-parser/eml");
    let mut compared = 0;
    for path in files_under(&root, &[".eml"]) {
        let relative = path
            .strip_prefix(&root)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        if STALWART_KNOWN_BETTER
            .iter()
            .any(|(file, _)| *file == relative)
        {
            continue;
        }
        let Ok(expected) = std::fs::read(path.with_extension("json")) else {
            continue;
        };
        let Ok(expected): Result<serde_json::Value, _> = serde_json::from_slice(&expected) else {
            continue;
        };
        let Ok(raw) = std::fs::read(&path) else {
            continue;
        };
        let message = parse(&raw);
        let headers = &expected["parts"][0]["headers"];
        let field = |name: &str| {
            headers
                .as_array()
                .and_then(|list| list.iter().find(|h| h["name"] == name))
                .map(|h| h["value"].clone())
        };

        if let Some(subject) = field("subject").and_then(|v| v["Text"].as_str().map(str::to_owned))
        {
            assert_eq!(
                message.headers.subject.as_deref().map(str::trim),
                Some(subject.trim()),
                "subject of {relative}"
            );
        }
        if let Some(first) = field("from").map(|v| v["Address"]["List"][0].clone())
            && !first.is_null()
        {
            let from = message.headers.from.clone().unwrap_or_default();
            assert_eq!(
                from.address,
                first["address"].as_str().unwrap_or(""),
                "from address of {relative}"
            );
            assert_eq!(
                from.display_name.as_deref().unwrap_or(""),
                first["name"].as_str().unwrap_or(""),
                "from name of {relative}"
            );
        }
        compared += 1;
    }
    assert!(compared > 90, "only {compared} expected parses compared");
}

/// Collects the filenames in mail-parser's expected parse, skipping nested
/// messages, whose names Gatehouse uses as location prefixes instead.
fn expected_filenames(parts: &serde_json::Value, names: &mut Vec<String>) {
    for part in parts.as_array().into_iter().flatten() {
        let mut is_message = false;
        let mut found = None;
        for header in part["headers"].as_array().into_iter().flatten() {
            let content = &header["value"]["ContentType"];
            if content.is_null() {
                continue;
            }
            let nested = content["c_subtype"] == "rfc822" || content["c_subtype"] == "global";
            if header["name"] == "content_type" && content["c_type"] == "message" && nested {
                is_message = true;
            }
            for attribute in content["attributes"].as_array().into_iter().flatten() {
                let name = attribute["name"].as_str();
                if matches!(name, Some("name" | "filename")) && found.is_none() {
                    found = attribute["value"].as_str().map(str::to_owned);
                }
            }
        }
        if let Some(name) = found.filter(|_| !is_message) {
            names.push(name);
        }
        expected_filenames(&part["body"]["Message"]["parts"], names);
    }
}

/// Expected parses whose filenames differ for a known reason.
const STALWART_FILENAMES_KNOWN_BETTER: [(&str, &str); 5] = [
    (
        "legacy/016.eml",
        "raw Latin-1 ö in the filename; the expected parse has U+FFFD",
    ),
    ("legacy/023.eml", "raw Latin-1 ö in the filename"),
    ("legacy/026.eml", "raw Latin-1 ö in the filename"),
    (
        "malformed/017.eml",
        "filename after an empty Content-Disposition type, which mail-parser loses",
    ),
    (
        "malformed/022.eml",
        "a message/rfc822 part without a message is kept as an attachment",
    ),
];

#[test]
fn stalwart_expected_filenames() {
    let Some(corpus) = corpus_dir() else {
        return;
    };
    let root = corpus.join("stalwart-mail-parser/eml");
    let mut compared = 0;
    for path in files_under(&root, &[".eml"]) {
        let relative = path
            .strip_prefix(&root)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        if STALWART_FILENAMES_KNOWN_BETTER
            .iter()
            .any(|(file, _)| *file == relative)
        {
            continue;
        }
        let Ok(expected) = std::fs::read(path.with_extension("json")) else {
            continue;
        };
        let Ok(expected): Result<serde_json::Value, _> = serde_json::from_slice(&expected) else {
            continue;
        };
        let Ok(raw) = std::fs::read(&path) else {
            continue;
        };
        let mut expected_names = Vec::new();
        expected_filenames(&expected["parts"], &mut expected_names);
        expected_names.sort();
        expected_names.dedup();
        let message = parse(&raw);
        let mut names: Vec<String> = message
            .parts
            .iter()
            .filter_map(|p| p.name.clone())
            .collect();
        names.sort();
        names.dedup();
        assert_eq!(names, expected_names, "filenames of {relative}");
        compared += 1;
    }
    assert!(compared > 90, "only {compared} expected parses compared");
}

#[test]
fn stalwart_latin1_subject_is_decoded() {
    let Some(raw) = corpus_file("stalwart-mail-parser/eml/legacy/010.eml") else {
        return;
    };
    let message = parse(&raw);
    assert_eq!(
        message.headers.subject.as_deref(),
        Some("Die Hasen und die Frösche")
    );
}

#[test]
fn stalwart_folded_filename_after_empty_disposition() {
    // `Content-Disposition: ;` then a folded `filename=`; mail-parser loses the name.
    let Some(raw) = corpus_file("stalwart-mail-parser/eml/malformed/017.eml") else {
        return;
    };
    let message = parse(&raw);
    let names: Vec<Option<&str>> = message.parts.iter().map(|p| p.name.as_deref()).collect();
    assert!(names.contains(&Some("image001.png")), "{names:?}");
}
