//! URL parsing and host normalisation before the registrable domain is taken.
//!
//! The psl crate compares bytes case-sensitively and treats an IP address as
//! a domain name, so every host goes through the `url` crate first. For the
//! special schemes that crate lower-cases the host and applies IDNA (UTS #46).
//! It also rewrites IPv4 addresses written in decimal, octal or hex
//! (`http://0x7f.1/`, `http://2130706433/`) to dotted quads, as browsers do.

use url::{Host, Url};

/// Schemes whose URLs have a host that browsers resolve.
pub(crate) const SCHEMES: [&str; 5] = ["http", "https", "ftp", "ws", "wss"];

/// Parses a URL as written in mail, or `None` when it is not a URL with a host.
pub(crate) fn parse_url(text: &str) -> Option<Url> {
    // Mailers and HTML editors leave line breaks and tabs inside long URLs.
    // Browsers drop them (WHATWG URL) and so does `Url::parse`, but quotes
    // and angle brackets around the URL must go first. `Url::parse` also
    // strips C0 controls at either end, so they are trimmed in the same pass.
    // Otherwise a quote behind a NUL would stay in the URL and go only when
    // the URL is normalised a second time.
    let text = text.trim_matches(|c: char| {
        c.is_whitespace() || c.is_ascii_control() || matches!(c, '<' | '>' | '"' | '\'')
    });
    if text.is_empty() {
        return None;
    }

    let with_scheme;
    let text = if let Some(rest) = text.strip_prefix("//") {
        with_scheme = format!("https://{rest}");
        &with_scheme
    } else if text
        .get(..4)
        .is_some_and(|head| head.eq_ignore_ascii_case("www."))
    {
        with_scheme = format!("http://{text}");
        &with_scheme
    } else {
        text
    };

    let url = Url::parse(text).ok()?;
    if !SCHEMES.contains(&url.scheme()) {
        return None;
    }
    url.host()?;
    Some(url)
}

/// Returns the host of a parsed URL in normal form, or `None` when it is empty.
pub(crate) fn normalised_host(url: &Url) -> Option<String> {
    let host = match url.host()? {
        Host::Domain(domain) => domain.trim_end_matches('.').to_ascii_lowercase(),
        Host::Ipv4(address) => address.to_string(),
        Host::Ipv6(address) => address.to_string(),
    };
    (!host.is_empty()).then_some(host)
}

/// Returns the registrable domain of a normalised host (`mail.example.co.uk`
/// gives `example.co.uk`), the address itself for an IP literal, and the host
/// itself when the public-suffix list names none (`localhost`).
pub fn registrable_domain(host: &str) -> String {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.parse::<std::net::IpAddr>().is_ok() {
        return bare.to_owned();
    }
    match psl::domain_str(&host) {
        Some(domain) => domain.to_owned(),
        None => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host_of(url: &str) -> Option<String> {
        parse_url(url).and_then(|url| normalised_host(&url))
    }

    #[test]
    fn hosts_are_normalised() {
        let cases = [
            ("HTTP://WWW.Example.COM./x", "www.example.com"),
            ("http://0x7f.0.0.1/", "127.0.0.1"),
            ("http://2130706433/", "127.0.0.1"),
            ("http://0177.0.0.01/", "127.0.0.1"),
            ("http://0x7f.1/", "127.0.0.1"),
            ("https://bücher.example/", "xn--bcher-kva.example"),
            ("https://[2001:DB8::1]/", "2001:db8::1"),
            ("www.example.org/path", "www.example.org"),
            ("//cdn.example.net/a.js", "cdn.example.net"),
        ];
        for (url, expected) in cases {
            assert_eq!(host_of(url).as_deref(), Some(expected), "url {url}");
        }
    }

    #[test]
    fn quotes_behind_control_characters_are_trimmed() {
        // Found by the links fuzz target: a CSS `url('//host/x.png'` followed
        // by NUL bytes kept its closing quote, so normalising was not stable.
        let url = parse_url("'//css.example/x.png'\0\0 \u{1}").map(String::from);
        assert_eq!(url.as_deref(), Some("https://css.example/x.png"));
    }

    #[test]
    fn non_web_schemes_have_no_host() {
        for url in [
            "mailto:a@example.com",
            "javascript:alert(1)",
            "data:text/html,x",
            "cid:abc",
            "tel:+1555",
        ] {
            assert_eq!(host_of(url), None, "url {url}");
        }
    }

    #[test]
    fn registrable_domains() {
        let cases = [
            ("mail.example.co.uk", "example.co.uk"),
            ("a.b.example.com", "example.com"),
            ("127.0.0.1", "127.0.0.1"),
            ("localhost", "localhost"),
            ("x.github.io", "x.github.io"),
            ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ];
        for (host, expected) in cases {
            assert_eq!(registrable_domain(host), expected, "host {host}");
        }
    }
}
