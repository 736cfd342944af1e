//! Normalised keys: the one spelling under which each entity is stored.
//!
//! Every address, domain, display name and network that reaches the store goes
//! through these functions first, so that `Bob@Bücher.Example`,
//! `bob@bücher.example.` and `bob@xn--bcher-kva.example` all meet the same
//! fact. The engine uses the same functions to build lookups.

use std::net::IpAddr;

use unicode_normalization::UnicodeNormalization;

/// Lower-cases an address and converts its domain to ASCII (IDNA), without angle brackets.
///
/// The local part is lower-cased too. RFC 5321 lets a server treat it as
/// case-sensitive, but a sender that varies its case must not look like a new
/// correspondent. Returns the input lower-cased when it has no `@`, and keeps
/// a domain that is not a valid IDNA name lower-cased as written.
pub fn address(raw: &str) -> String {
    let trimmed = raw
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    match trimmed.rsplit_once('@') {
        Some((local, domain)) => format!("{}@{}", local.to_lowercase(), host(domain)),
        None => trimmed.to_lowercase(),
    }
}

/// Lower-cases a host name, drops a trailing dot and converts it to ASCII (IDNA).
///
/// An IP literal (`[192.0.2.1]` or a bare address) is returned in its
/// canonical text form without brackets.
pub fn host(raw: &str) -> String {
    let trimmed = raw.trim().trim_end_matches('.');
    let unbracketed = trimmed
        .strip_prefix('[')
        .and_then(|inner| inner.strip_suffix(']'))
        .unwrap_or(trimmed);
    let literal = unbracketed
        .strip_prefix("IPv6:")
        .or_else(|| unbracketed.strip_prefix("ipv6:"))
        .unwrap_or(unbracketed);
    if let Ok(ip) = literal.parse::<IpAddr>() {
        return ip.to_string();
    }
    match idna::domain_to_ascii(trimmed) {
        Ok(ascii) if !ascii.is_empty() => ascii,
        _ => trimmed.to_lowercase(),
    }
}

/// The domain part of a normalised address, or the empty string when there is none.
pub fn address_domain(address: &str) -> &str {
    address
        .rsplit_once('@')
        .map(|(_, domain)| domain)
        .unwrap_or("")
}

/// The registrable domain of a host: `mail.partner.co.uk` becomes `partner.co.uk`.
///
/// The host is normalised first because the `psl` crate matches case-sensitively
/// and would treat an IP address as a domain. An IP literal is returned as it
/// is, and a name that is itself a public suffix is returned whole.
pub fn registrable_domain(raw_host: &str) -> String {
    let host = host(raw_host);
    if host.parse::<IpAddr>().is_ok() {
        return host;
    }
    match psl::domain_str(&host) {
        Some(domain) => domain.to_owned(),
        None => host,
    }
}

/// The shape of a local part: each run of digits or letters replaced by its
/// class and length, other characters kept.
///
/// `38117` becomes `9{5}`, `john.smith` becomes `a{4}.a{5}` and `sales2024`
/// becomes `a{5}9{4}`. Senders of a bulk campaign often share one shape while
/// their addresses differ.
pub fn local_part_shape(address: &str) -> String {
    let local = address
        .rsplit_once('@')
        .map(|(local, _)| local)
        .unwrap_or(address);
    let mut shape = String::new();
    let mut run: Option<(char, usize)> = None;
    for character in local.chars() {
        let class = if character.is_numeric() {
            Some('9')
        } else if character.is_alphabetic() {
            Some('a')
        } else {
            None
        };
        match (class, run) {
            (Some(class), Some((current, length))) if class == current => {
                run = Some((current, length + 1));
            }
            (Some(class), _) => {
                flush_run(&mut shape, run);
                run = Some((class, 1));
            }
            (None, _) => {
                flush_run(&mut shape, run);
                run = None;
                shape.push(character);
            }
        }
    }
    flush_run(&mut shape, run);
    shape
}

fn flush_run(shape: &mut String, run: Option<(char, usize)>) {
    if let Some((class, length)) = run {
        shape.push(class);
        shape.push('{');
        shape.push_str(&length.to_string());
        shape.push('}');
    }
}

/// Describes a local-part shape in words for evidence: `9{5}` is "five-digit".
pub fn describe_shape(shape: &str) -> String {
    if let Some(count) = shape
        .strip_prefix("9{")
        .and_then(|rest| rest.strip_suffix('}'))
        .and_then(|count| count.parse::<usize>().ok())
    {
        return format!("{}-digit", number_word(count));
    }
    if let Some(count) = shape
        .strip_prefix("a{")
        .and_then(|rest| rest.strip_suffix('}'))
        .and_then(|count| count.parse::<usize>().ok())
    {
        return format!("{}-letter", number_word(count));
    }
    format!("shape {shape}")
}

fn number_word(count: usize) -> String {
    const WORDS: [&str; 13] = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
        "eleven", "twelve",
    ];
    WORDS
        .get(count)
        .map(|word| (*word).to_owned())
        .unwrap_or_else(|| count.to_string())
}

/// A display name as stored per address: NFKC, lower-cased, with runs of
/// white space collapsed, so that only a real change of name counts as new.
pub fn display_name(raw: &str) -> String {
    let folded: String = raw.nfkc().collect::<String>().to_lowercase();
    folded
        .split(|c: char| c.is_whitespace() || c == '"')
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The confusable skeleton of a display name (Unicode TS #39), after
/// [`display_name`]: `Аccounts` with a Cyrillic `А` and `Accounts` share one
/// skeleton. Used to compare names, never shown.
pub fn name_skeleton(raw: &str) -> String {
    let folded = display_name(raw);
    unicode_security::skeleton(&folded)
        .collect::<String>()
        .to_lowercase()
}

/// A Message-ID without angle brackets or surrounding white space.
pub fn message_id(raw: &str) -> String {
    raw.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
        .to_owned()
}

/// The network an IP address belongs to for learning: IPv4 /24, IPv6 /48.
pub fn network_prefix(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        IpAddr::V6(v6) => {
            let segments = v6.segments();
            format!("{:x}:{:x}:{:x}::/48", segments[0], segments[1], segments[2])
        }
    }
}

/// A wider network for submitting clients, whose addresses move more than
/// servers do: IPv4 /16, IPv6 /32.
pub fn client_network_prefix(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, _, _] = v4.octets();
            format!("{a}.{b}.0.0/16")
        }
        IpAddr::V6(v6) => {
            let segments = v6.segments();
            format!("{:x}:{:x}::/32", segments[0], segments[1])
        }
    }
}

/// Whether an address can be the origin of mail on the public Internet.
///
/// Private (RFC 1918), shared (RFC 6598), loopback, link-local, unspecified,
/// unique-local (RFC 4193) and multicast addresses are not public. The
/// documentation ranges (RFC 5737, RFC 3849) count as public, so that test
/// fixtures can use them.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, _, _] = v4.octets();
            let shared = a == 100 && (64..128).contains(&b);
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || shared
                || a == 0)
        }
        IpAddr::V6(v6) => {
            if let Some(mapped) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(mapped));
            }
            let first = v6.segments()[0];
            let unique_local = (first & 0xfe00) == 0xfc00;
            let link_local = (first & 0xffc0) == 0xfe80;
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || unique_local
                || link_local)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_lower_cases_and_strips_brackets() {
        assert_eq!(address(" <Alice@Example.COM> "), "alice@example.com");
    }

    #[test]
    fn address_forms_share_one_key() {
        for form in [
            "Bob@Bücher.Example",
            "bob@bücher.example.",
            "bob@xn--bcher-kva.example",
        ] {
            assert_eq!(address(form), "bob@xn--bcher-kva.example", "{form}");
        }
    }

    #[test]
    fn address_converts_unicode_domain_to_ascii() {
        assert_eq!(address("bob@bücher.example"), "bob@xn--bcher-kva.example");
    }

    #[test]
    fn host_drops_trailing_dot() {
        assert_eq!(host("Mail.Example.com."), "mail.example.com");
    }

    #[test]
    fn host_canonicalises_ip_literal() {
        assert_eq!(host("[IPv6:2001:DB8::1]"), "2001:db8::1");
    }

    #[test]
    fn registrable_domain_respects_public_suffix() {
        assert_eq!(registrable_domain("mail.partner.co.uk"), "partner.co.uk");
    }

    #[test]
    fn registrable_domain_is_case_insensitive() {
        assert_eq!(registrable_domain("WWW.Brand.Example"), "brand.example");
    }

    #[test]
    fn registrable_domain_keeps_ip() {
        assert_eq!(registrable_domain("192.0.2.7"), "192.0.2.7");
    }

    #[test]
    fn registrable_domain_of_unicode_host() {
        assert_eq!(registrable_domain("shop.bücher.de"), "xn--bcher-kva.de");
    }

    #[test]
    fn shape_of_numeric_local_part() {
        assert_eq!(local_part_shape("38117@brand.example"), "9{5}");
    }

    #[test]
    fn shape_of_dotted_name() {
        assert_eq!(local_part_shape("john.smith@x.example"), "a{4}.a{5}");
    }

    #[test]
    fn shape_of_mixed_local_part() {
        assert_eq!(local_part_shape("sales2024"), "a{5}9{4}");
    }

    #[test]
    fn shape_described_in_words() {
        assert_eq!(describe_shape("9{5}"), "five-digit");
    }

    #[test]
    fn display_name_folds_width_and_case() {
        assert_eq!(display_name("  ＡＣＭＥ   Billing "), "acme billing");
    }

    #[test]
    fn skeleton_matches_cyrillic_lookalike() {
        assert_eq!(name_skeleton("Аccounts"), name_skeleton("Accounts"));
    }

    #[test]
    fn skeleton_keeps_different_names_apart() {
        assert_ne!(name_skeleton("Accounts"), name_skeleton("Payroll"));
    }

    #[test]
    fn ipv4_network_is_slash_24() {
        let ip: IpAddr = "198.51.100.77".parse().expect("valid address");
        assert_eq!(network_prefix(ip), "198.51.100.0/24");
    }

    #[test]
    fn ipv6_network_is_slash_48() {
        let ip: IpAddr = "2001:db8:abcd:12::1".parse().expect("valid address");
        assert_eq!(network_prefix(ip), "2001:db8:abcd::/48");
    }

    #[test]
    fn private_addresses_are_not_public() {
        for text in [
            "10.1.2.3",
            "192.168.0.1",
            "127.0.0.1",
            "100.64.0.1",
            "fd00::1",
            "fe80::1",
        ] {
            let ip: IpAddr = text.parse().expect("valid address");
            assert!(!is_public(ip), "{text} counted as public");
        }
    }

    #[test]
    fn documentation_addresses_are_public() {
        let ip: IpAddr = "203.0.113.9".parse().expect("valid address");
        assert!(is_public(ip));
    }
}
