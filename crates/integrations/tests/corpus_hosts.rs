//! Registrable domains of the link hosts in real phishing mail. Nothing here
//! contacts a host: the URLs are only read as text.

use std::collections::BTreeSet;
use std::path::Path;

use gatehouse_integrations::rdap::registrable_domain;

/// Returns the hosts of the `http://` and `https://` URLs in raw message bytes.
/// Encoded bodies hide some URLs, which is fine for a robustness test.
fn url_hosts(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    let mut hosts = Vec::new();
    for scheme in ["http://", "https://"] {
        for (start, _) in text.match_indices(scheme) {
            let rest = &text[start + scheme.len()..];
            let end = rest
                .find(|c: char| {
                    matches!(
                        c,
                        '/' | '?'
                            | '#'
                            | '"'
                            | '\''
                            | '<'
                            | '>'
                            | ')'
                            | '\\'
                            | '='
                            | ','
                            | '&'
                            | '+'
                    ) || c.is_whitespace()
                })
                .unwrap_or(rest.len());
            let authority = &rest[..end];
            let host = authority.rsplit('@').next().unwrap_or(authority);
            let host = match host.rsplit_once(':') {
                Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
                _ => host,
            };
            if !host.is_empty() {
                hosts.push(host.to_owned());
            }
        }
    }
    hosts
}

#[test]
fn phishing_link_hosts_reduce_to_valid_domains() {
    let corpus =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/phishing_pot/email");
    let Ok(entries) = std::fs::read_dir(&corpus) else {
        eprintln!(
            "skipped: the corpus folder {} is not present",
            corpus.display()
        );
        return;
    };

    let mut hosts = BTreeSet::new();
    for entry in entries {
        let path = entry.expect("directory entry").path();
        let bytes = std::fs::read(&path).expect("read message");
        hosts.extend(url_hosts(&bytes));
    }
    assert!(hosts.len() > 100, "only {} hosts found", hosts.len());

    // Every host that reads as a DNS name of two labels or more must give a
    // domain. The rest are IP addresses (some in hexadecimal) and fragments of
    // quoted-printable bodies, which must give none.
    let mut domains = BTreeSet::new();
    let mut without_domain = Vec::new();
    for host in &hosts {
        let Some(domain) = registrable_domain(host) else {
            without_domain.push(host.as_str());
            continue;
        };
        let valid = domain.bytes().all(|byte| {
            byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-' || byte == b'.'
        });
        assert!(valid, "{host} gave {domain}");
        assert!(domain.contains('.'), "{host} gave {domain}");
        domains.insert(domain);
    }
    eprintln!(
        "{} distinct hosts, {} registrable domains, {} hosts without one",
        hosts.len(),
        domains.len(),
        without_domain.len()
    );
    for host in without_domain {
        let name = host.trim_end_matches('.');
        let dns_name = name.split('.').count() >= 2
            && name.split('.').all(|label| !label.is_empty())
            && name.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'.')
            // WHATWG URL parsing reads a host whose last label is a number as IPv4.
            && !name.rsplit('.').next().is_some_and(|label| label.bytes().all(|byte| byte.is_ascii_digit()));
        assert!(!dns_name, "{host} looks like a domain name but gave none");
    }
}
