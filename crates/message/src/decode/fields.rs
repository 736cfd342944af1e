//! Structured header fields: message ids, `Received`, `Authentication-Results`
//! (RFC 8601), originating-client headers and dates.

use std::net::IpAddr;

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

use crate::decode::rfc2047::unfold;
use crate::{AuthResult, ReceivedHop};

/// Maximum number of ids read from one `References` or `In-Reply-To` header.
const MAX_IDS: usize = 500;

/// Headers that carry the IP address of the client that submitted the message,
/// as webmail and submission servers write them.
pub(crate) const ORIGINATING_IP_HEADERS: [&str; 6] = [
    "x-originating-ip",
    "x-sender-ip",
    "x-client-ip",
    "x-source-ip",
    "x-ms-exchange-organization-originalclientipaddress",
    "x-aol-ip",
];

/// Parses message ids, with or without angle brackets, returning them without brackets.
pub(crate) fn message_ids(raw: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(&unfold(raw)).into_owned();
    let text = strip_comments(&text);
    let mut ids = Vec::new();
    if text.contains('<') {
        for piece in text.split('<').skip(1) {
            let id = piece.split('>').next().unwrap_or("").trim();
            let id: String = id.chars().filter(|c| !c.is_whitespace()).collect();
            if !id.is_empty() {
                ids.push(id);
            }
        }
    } else {
        ids.extend(
            text.split(|c: char| c.is_whitespace() || c == ',')
                .filter(|id| !id.is_empty())
                .map(str::to_owned),
        );
    }
    ids.truncate(MAX_IDS);
    ids
}

/// Removes `( … )` comments, which may nest, from header text.
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut depth = 0usize;
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' if depth == 0 => {
                quoted = !quoted;
                out.push(c);
            }
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth > 0 => depth -= 1,
            _ if depth > 0 => {}
            _ => out.push(c),
        }
    }
    out
}

/// Parses one `Authentication-Results` header into its method results.
///
/// `authserv-id [version]; method=result reason="…" ptype.property=value; …`.
/// A header that says `none` has no results.
pub(crate) fn authentication_results(raw: &[u8]) -> Vec<AuthResult> {
    let text = String::from_utf8_lossy(&unfold(raw)).into_owned();
    let text = strip_comments(&text);
    let mut statements = split_outside_quotes(&text, ';').into_iter();

    let first = statements.next().unwrap_or_default();
    let first_token = first.split_whitespace().next().unwrap_or_default();
    // Microsoft 365 omits the authserv-id and starts with a result (`spf=pass …`).
    let (authserv_id, first_result) = if first_token.contains('=') {
        (String::new(), Some(first))
    } else {
        (first_token.to_owned(), None)
    };

    let mut results = Vec::new();
    for statement in first_result.into_iter().chain(statements) {
        let statement = statement.trim();
        let Some((method, rest)) = statement.split_once('=') else {
            continue;
        };
        let method = method.trim();
        // `dkim/1=pass` carries a method version after the slash.
        let method = method.split('/').next().unwrap_or(method).trim();
        let rest = rest.trim_start();
        let result_end = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len());
        let result = &rest[..result_end];
        if method.is_empty() || result.is_empty() || method.contains(char::is_whitespace) {
            continue;
        }
        let properties = rest[result_end..]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        results.push(AuthResult {
            authserv_id: authserv_id.clone(),
            method: method.to_ascii_lowercase(),
            result: result.to_ascii_lowercase(),
            properties,
        });
    }
    results
}

fn split_outside_quotes(text: &str, separator: char) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    for (position, c) in text.char_indices() {
        if c == '"' {
            quoted = !quoted;
        } else if c == separator && !quoted {
            pieces.push(&text[start..position]);
            start = position + 1;
        }
    }
    pieces.push(&text[start..]);
    pieces
}

/// Finds the first IP address in a header value such as `[203.0.113.7]`.
pub(crate) fn first_ip(raw: &[u8]) -> Option<IpAddr> {
    let text = String::from_utf8_lossy(raw)
        .replace("IPv6:", "")
        .replace("ipv6:", "");
    text.split(|c: char| !(c.is_ascii_hexdigit() || c == '.' || c == ':'))
        .filter(|token| token.len() >= 2)
        .find_map(|token| {
            let token = token.trim_matches(|c| c == ':' || c == '.');
            token.parse::<IpAddr>().ok()
        })
}

/// Converts mail-parser's date into a time value, rejecting impossible dates.
///
/// A zone must be within ±23:59, the most RFC 3339 can write. The time crate
/// takes offsets up to ±25:59:59, and a date with a larger one would make
/// the parsed message fail to serialise.
pub(crate) fn to_offset_date_time(date: &mail_parser::DateTime) -> Option<OffsetDateTime> {
    let month = Month::try_from(date.month).ok()?;
    let day = Date::from_calendar_date(i32::from(date.year), month, date.day).ok()?;
    let time = Time::from_hms(date.hour, date.minute, date.second).ok()?;
    let sign: i8 = if date.tz_before_gmt { -1 } else { 1 };
    let hours = i8::try_from(date.tz_hour)
        .ok()
        .filter(|hours| *hours < 24)?;
    let minutes = i8::try_from(date.tz_minute).ok()?;
    let offset = UtcOffset::from_hms(sign * hours, sign * minutes, 0).ok()?;
    Some(PrimitiveDateTime::new(day, time).assume_offset(offset))
}

/// Parses a date as mail writes it, with mail-parser's lenient RFC 5322 parser;
/// a date without a zone, which mail-parser rejects, is taken as UTC.
pub(crate) fn parse_date(raw: &[u8]) -> Option<OffsetDateTime> {
    let text = String::from_utf8_lossy(&unfold(raw)).trim().to_owned();
    if text.is_empty() {
        return None;
    }
    let parse = |value: &str| {
        let header = format!("Date: {value}\r\n\r\n");
        mail_parser::MessageParser::default()
            .parse_headers(header.as_bytes())
            .and_then(|message| message.date().and_then(to_offset_date_time))
    };
    parse(&text).or_else(|| parse(&format!("{text} +0000")))
}

/// Builds a hop from mail-parser's parse of a `Received` header.
pub(crate) fn hop_from_parsed(received: &mail_parser::Received<'_>) -> ReceivedHop {
    let host_name = |host: &mail_parser::Host<'_>| match host {
        mail_parser::Host::Name(name) => Some(name.to_string()),
        mail_parser::Host::IpAddr(ip) => Some(ip.to_string()),
    };
    let from_ip = received.from_ip.or(match &received.from {
        Some(mail_parser::Host::IpAddr(ip)) => Some(*ip),
        _ => None,
    });
    ReceivedHop {
        from_host: received
            .from
            .as_ref()
            .and_then(host_name)
            .or_else(|| received.helo.as_ref().and_then(host_name))
            .or_else(|| received.from_iprev.as_ref().map(|name| name.to_string())),
        from_ip,
        by_host: received.by.as_ref().and_then(host_name),
        date: received.date.as_ref().and_then(to_offset_date_time),
    }
}

/// Reads a `Received` header that mail-parser could not parse: the word after
/// `from`, the first bracketed IP address, the word after `by`, and the date after the last `;`.
pub(crate) fn hop_fallback(raw: &[u8]) -> ReceivedHop {
    let text = String::from_utf8_lossy(&unfold(raw)).into_owned();
    let words: Vec<&str> = text.split_whitespace().collect();
    let after = |keyword: &str| {
        words
            .iter()
            .position(|word| word.eq_ignore_ascii_case(keyword))
            .and_then(|position| words.get(position + 1))
            .map(|word| {
                word.trim_matches(|c| c == '(' || c == ')' || c == ';')
                    .to_owned()
            })
            .filter(|word| !word.is_empty())
    };
    let from_ip = text
        .split('[')
        .skip(1)
        .find_map(|piece| first_ip(piece.split(']').next().unwrap_or("").as_bytes()));
    let date = text
        .rsplit_once(';')
        .and_then(|(_, date)| parse_date(date.as_bytes()));
    ReceivedHop {
        from_host: after("from"),
        from_ip,
        by_host: after("by"),
        date,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_with_and_without_brackets() {
        assert_eq!(message_ids(b" <a@b> <c@d>"), ["a@b", "c@d"]);
        assert_eq!(message_ids(b" a@b c@d"), ["a@b", "c@d"]);
        assert_eq!(message_ids(b" <a@b> (comment <x@y>)"), ["a@b"]);
    }

    #[test]
    fn authentication_results_several_methods() {
        let raw = b" mx.example.com;\r\n spf=pass smtp.mailfrom=sender.example;\r\n dkim=fail (bad signature) header.d=sender.example;\r\n dmarc=FAIL header.from=sender.example";
        let results = authentication_results(raw);
        let methods: Vec<(&str, &str)> = results
            .iter()
            .map(|r| (r.method.as_str(), r.result.as_str()))
            .collect();
        assert_eq!(
            methods,
            [("spf", "pass"), ("dkim", "fail"), ("dmarc", "fail")]
        );
        assert_eq!(results[0].authserv_id, "mx.example.com");
        assert_eq!(results[1].properties, "header.d=sender.example");
    }

    #[test]
    fn authentication_results_without_authserv_id() {
        let raw = b" spf=pass (sender IP is 17.58.63.176)\r\n smtp.mailfrom=icloud.com; dkim=fail (signature did not verify)\r\n header.d=icloud.com;dmarc=pass action=none";
        let results = authentication_results(raw);
        let methods: Vec<(&str, &str, &str)> = results
            .iter()
            .map(|r| (r.authserv_id.as_str(), r.method.as_str(), r.result.as_str()))
            .collect();
        assert_eq!(
            methods,
            [
                ("", "spf", "pass"),
                ("", "dkim", "fail"),
                ("", "dmarc", "pass")
            ]
        );
    }

    #[test]
    fn date_without_zone_is_utc() {
        let date = parse_date(b" Fri, 14 Apr 2023 22:56:55");
        assert_eq!(date.map(|d| d.unix_timestamp()), Some(1_681_513_015));
    }

    #[test]
    fn zone_beyond_23_hours_is_no_date() {
        // Found by the mime_parse fuzz target: "-2500" in a Received field
        // made a date that RFC 3339 cannot write, and the parsed message
        // failed to serialise.
        let date = |tz_hour| mail_parser::DateTime {
            year: 2004,
            month: 12,
            day: 2,
            hour: 10,
            minute: 55,
            second: 50,
            tz_before_gmt: true,
            tz_hour,
            tz_minute: 59,
        };
        assert_eq!(to_offset_date_time(&date(25)), None);
        assert_eq!(to_offset_date_time(&date(24)), None);
        let latest = to_offset_date_time(&date(23));
        assert_eq!(latest.map(|d| d.offset().whole_minutes()), Some(-1439));
    }

    #[test]
    fn authentication_results_none() {
        assert!(authentication_results(b" mx.example.com 1; none").is_empty());
    }

    #[test]
    fn originating_ip_in_brackets() {
        assert_eq!(
            first_ip(b" [203.0.113.7]"),
            Some("203.0.113.7".parse().unwrap_or(IpAddr::from([0, 0, 0, 0])))
        );
        assert_eq!(
            first_ip(b" 2001:db8::1"),
            Some("2001:db8::1".parse().unwrap_or(IpAddr::from([0, 0, 0, 0])))
        );
    }
}
