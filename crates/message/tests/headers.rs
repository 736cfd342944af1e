//! Header fields of whole messages: recipients, ids, hops and client addresses.

mod common;

use common::{crlf, parse};

#[test]
fn recipient_name_without_address_is_dropped() {
    let raw = crlf(
        b"From: Whomever\nTo: Someone, real@example.com\nCc: undisclosed-recipients:;\n\nbody\n",
    );
    let message = parse(&raw);
    let to: Vec<&str> = message
        .headers
        .to
        .iter()
        .map(|m| m.address.as_str())
        .collect();
    assert_eq!(to, ["real@example.com"]);
    assert!(message.headers.cc.is_empty());
    let from = message
        .headers
        .from
        .as_ref()
        .map(|f| (f.address.as_str(), f.display_name.as_deref()));
    assert_eq!(from, Some(("", Some("Whomever"))));
}

#[test]
fn ids_without_brackets() {
    let raw = crlf(b"From: a@example.com\nMessage-ID: abc123@example.com\nIn-Reply-To: parent@example.com (comment)\nReferences: root@example.com\n parent@example.com\n\nbody\n");
    let message = parse(&raw);
    assert_eq!(
        message.headers.message_id.as_deref(),
        Some("abc123@example.com")
    );
    assert_eq!(message.headers.in_reply_to, ["parent@example.com"]);
    assert_eq!(
        message.headers.references,
        ["root@example.com", "parent@example.com"]
    );
}

#[test]
fn received_hops_topmost_first() {
    let raw = crlf(b"Received: from mail.sender.example (mail.sender.example [198.51.100.20])\n\tby mx.example.com (Postfix) with ESMTPS id 1; Tue, 5 Mar 2024 10:00:02 +0000\nReceived: from [10.0.0.5] (helo=laptop)\n\tby mail.sender.example with esmtpsa; Tue, 5 Mar 2024 10:00:00 +0000\nX-Originating-IP: [203.0.113.99]\nFrom: a@sender.example\n\nbody\n");
    let message = parse(&raw);
    let hops: Vec<(Option<String>, Option<String>)> = message
        .headers
        .received
        .iter()
        .map(|hop| (hop.from_ip.map(|ip| ip.to_string()), hop.by_host.clone()))
        .collect();
    assert_eq!(
        hops,
        [
            (
                Some("198.51.100.20".to_owned()),
                Some("mx.example.com".to_owned())
            ),
            (
                Some("10.0.0.5".to_owned()),
                Some("mail.sender.example".to_owned())
            ),
        ]
    );
    let dates: Vec<Option<i64>> = message
        .headers
        .received
        .iter()
        .map(|hop| hop.date.map(|d| d.unix_timestamp()))
        .collect();
    assert_eq!(dates, [Some(1_709_632_802), Some(1_709_632_800)]);
    assert_eq!(
        message
            .headers
            .originating_ip
            .map(|ip| ip.to_string())
            .as_deref(),
        Some("203.0.113.99")
    );
}

#[test]
fn several_authentication_results_headers() {
    let raw = crlf(b"Authentication-Results: mx.example.com; dkim=pass header.d=sender.example\nAuthentication-Results: mx.example.com; spf=softfail smtp.mailfrom=sender.example; dmarc=fail\nFrom: a@sender.example\n\nbody\n");
    let message = parse(&raw);
    let results: Vec<(&str, &str)> = message
        .headers
        .authentication_results
        .iter()
        .map(|r| (r.method.as_str(), r.result.as_str()))
        .collect();
    assert_eq!(
        results,
        [("dkim", "pass"), ("spf", "softfail"), ("dmarc", "fail")]
    );
}
