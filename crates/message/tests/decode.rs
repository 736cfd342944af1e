//! Header decoding tables: encoded-words, RFC 2231 parameters, address lists
//! and message ids, including each class of input that mail-parser 0.11.9
//! decodes wrongly.

use gatehouse_message::decode::{address_list, content_value, header_text, message_ids};

#[test]
fn encoded_words() {
    let cases: [(&[u8], &str); 14] = [
        (b"=?UTF-8?B?5L2g5aW9?=", "你好"),
        (b"=?utf-8?q?caf=C3=A9_au_lait?=", "café au lait"),
        (b"=?ISO-8859-1?Q?Andr=E9?= Pirard", "André Pirard"),
        (b"=?UTF-8?Q?a?==?UTF-8?Q?b?=", "ab"),
        (b"Re: =?UTF-8?Q?Rechnung?=", "Re: Rechnung"),
        (b"foo=?UTF-8?Q?bar?=", "foobar"),
        (b"=?UTF-8?Q?a?=\r\n =?ISO-8859-1?Q?=E9?=", "aé"),
        // UTF-8 split inside a character, across a fold.
        (b"=?UTF-8?B?4oI=?=\r\n =?UTF-8?B?rA==?=", "€"),
        // GBK split inside a character.
        (b"=?GBK?Q?=B7?= =?GBK?Q?=A2=C6=B1?=", "发票"),
        // Several UTF-7 words with folding whitespace between them.
        (b"=?UTF-7?Q?+AGEAYg-?= =?UTF-7?Q?+AGM-?=", "abc"),
        // A UTF-7 shifted run that continues into the next word.
        (b"=?UTF-7?Q?+AGEA?= =?UTF-7?Q?Yg-?=", "ab"),
        (b"=?unknown-8bit?Q?caf=C3=A9?=", "café"),
        (b"caf\xc3\xa9 raw UTF-8", "café raw UTF-8"),
        (b"Gr\xfc\xdfe aus M\xfcnchen", "Grüße aus München"),
    ];
    for (raw, expected) in cases {
        assert_eq!(
            header_text(raw),
            expected,
            "raw {:?}",
            String::from_utf8_lossy(raw)
        );
    }
}

#[test]
fn legacy_cjk_and_cyrillic_charsets() {
    let cases: [(&[u8], &str); 6] = [
        (
            b"=?ks_c_5601-1987?B?vsiz58fPvLy/5CDDu7G4vK0=?=",
            "안녕하세요 청구서",
        ),
        (
            b"=?EUC-KR?B?vsiz58fPvLy/5CDDu7G4vK0=?=",
            "안녕하세요 청구서",
        ),
        (b"=?Big5?B?vdCoRK7R?=", "請求書"),
        (b"=?Shift_JIS?B?kL+LgY+R?=", "請求書"),
        (b"=?EUC-JP?B?wMG14b3x?=", "請求書"),
        (b"=?KOI8-R?B?896j1A==?=", "Счёт"),
    ];
    for (raw, expected) in cases {
        assert_eq!(
            header_text(raw),
            expected,
            "raw {:?}",
            String::from_utf8_lossy(raw)
        );
    }
}

#[test]
fn iso_2022_jp_words() {
    let cases: [(&[u8], &str); 2] = [
        // Each word opens and closes its own escape sequences.
        (
            b"=?ISO-2022-JP?B?GyRCRnxLXDhsJEhGfEtcOGwkSEZ8S1w4bCROJUElJyVDGyhC?=\r\n =?ISO-2022-JP?B?GyRCJS8bKEI=?=",
            "日本語と日本語と日本語のチェック",
        ),
        // The escape sequence and a character pair split across Q words.
        (
            b"=?iso-2022-jp?Q?=1B=24B0F7o=3EpJs=1B=28B=5B200611=2D01_=1B=24?= =?iso-2022-jp?Q?BBg=3Cj=1B=28B?=",
            "案件情報[200611-01 大手",
        ),
    ];
    for (raw, expected) in cases {
        assert_eq!(
            header_text(raw),
            expected,
            "raw {:?}",
            String::from_utf8_lossy(raw)
        );
    }
}

#[test]
fn rfc2231_parameters() {
    let cases: [(&[u8], &str, &str); 9] = [
        (b"attachment; filename=\"plain.pdf\"", "filename", "plain.pdf"),
        (b"attachment; filename*=UTF-8''%E2%82%AC%20rate.pdf", "filename", "€ rate.pdf"),
        // A UTF-8 character split across sections.
        (b"application/x-stuff; name*0*=UTF-8''%E2%98; name*1*=%83.txt", "name", "☃.txt"),
        // The charset of section 0 applies to every section.
        (b"application/x-stuff; name*0*=ISO-8859-1''%E9; name*1*=%E8.txt", "name", "éè.txt"),
        // Mixed encoded and plain sections, out of order.
        (
            b"attachment; title*2=\"isn't it!\"; title*1*=%2A%2A%2Afun%2A%2A%2A%20; title*0*=us-ascii'en'This%20is%20even%20more%20",
            "title",
            "This is even more ***fun*** isn't it!",
        ),
        // An empty charset and language.
        (b"attachment; filename*0*=\"''attached%2E\"; filename*1*=\"%62\"; filename*2=at", "filename", "attached.bat"),
        // RFC 2047 words inside a quoted value.
        (b"application/vnd.openxmlformats; name=\"=?UTF-8?B?bzUzMTRwMjVUSjZxTi5wcHR4?=\"", "name", "o5314p25TJ6qN.pptx"),
        // RFC 2047 words split across RFC 2231 sections.
        (b"attachment; filename*0=\"=?UTF-8?Q?=E2=82?=\"; filename*1=\"=?UTF-8?Q?=AC.pdf?=\"", "filename", "€.pdf"),
        // A `;` inside a quoted value.
        (b"application/pdf; name=\"ABCD; EFG.pdf\"", "name", "ABCD; EFG.pdf"),
    ];
    for (raw, name, expected) in cases {
        let value = content_value(raw);
        assert_eq!(
            value.param(name),
            Some(expected),
            "raw {:?}",
            String::from_utf8_lossy(raw)
        );
    }
}

#[test]
fn rfc2231_wins_over_plain_parameter() {
    let value =
        content_value(b"attachment; filename=\"fallback.txt\"; filename*=UTF-8''%C3%A9t%C3%A9.txt");
    assert_eq!(value.param("filename"), Some("été.txt"));
}

#[test]
fn empty_disposition_type_with_folded_parameter() {
    let value = content_value(b" ;\r\n\tfilename=\"image001.png\"");
    assert_eq!(value.value, "");
    assert_eq!(value.param("filename"), Some("image001.png"));
}

#[test]
fn content_type_value_is_lower_cased() {
    let value = content_value(b" Multipart/Mixed (comment); BOUNDARY=\"AbC\"");
    assert_eq!(value.value, "multipart/mixed");
    assert_eq!(value.param("boundary"), Some("AbC"));
}

/// An address and its display name, as expected from a parsed list.
type Expected<'a> = &'a [(&'a str, Option<&'a str>)];

#[test]
fn address_lists() {
    let cases: [(&[u8], Expected<'_>); 6] = [
        (
            b"=?UTF-8?B?6LSi5Yqh6YOo?= <caiwu@example.cn>",
            &[("caiwu@example.cn", Some("财务部"))],
        ),
        (
            b"=?GB18030?B?ssbO8bK/?= <caiwu@example.cn>",
            &[("caiwu@example.cn", Some("财务部"))],
        ),
        (
            b"\"Doe, Jane\" <jane@example.com>, bob@example.com",
            &[
                ("jane@example.com", Some("Doe, Jane")),
                ("bob@example.com", None),
            ],
        ),
        (b"undisclosed-recipients:;", &[]),
        (
            b"\"support@paypal.com\" <x@evil.example>",
            &[("x@evil.example", Some("support@paypal.com"))],
        ),
        (
            b"<@relay.example:user@example.com>",
            &[("user@example.com", None)],
        ),
    ];
    for (raw, expected) in cases {
        let list = address_list(raw);
        let found: Vec<(&str, Option<&str>)> = list
            .iter()
            .map(|m| (m.address.as_str(), m.display_name.as_deref()))
            .collect();
        assert_eq!(found, expected, "raw {:?}", String::from_utf8_lossy(raw));
    }
}

#[test]
fn message_id_lists() {
    assert_eq!(
        message_ids(b" <a@example.com>\r\n <b@example.com>"),
        ["a@example.com", "b@example.com"]
    );
    assert_eq!(
        message_ids(b" bare-id@example.com"),
        ["bare-id@example.com"]
    );
}
