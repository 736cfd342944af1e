//! Signals about links: never-seen domains, links hidden in QR codes and
//! attachments, and hosts or anchors built to mislead.

use std::net::IpAddr;

use gatehouse_graph::{Familiarity, keys};
use gatehouse_message::LinkSource;
use unicode_script::{Script, UnicodeScript};

use super::Fired;
use super::features::Features;
use crate::content::Content;
use crate::verdict::LinkRecord;

/// Link domains named in one piece of evidence; the rest are counted.
const MAX_NAMED: usize = 5;

pub(crate) fn fire(
    features: &Features,
    familiarity: &Familiarity,
    content: &Content,
    fired: &mut Vec<Fired>,
) {
    domain_new(features, familiarity, content, fired);

    for link in &content.links {
        let in_attachment = link.location.contains(" › ") || link.source == LinkSource::Attachment;
        match link.source {
            LinkSource::Qr => fired.push(
                Fired::new(
                    "link.in_qr",
                    format!("a QR code in {} links to {}", link.location, link.url),
                )
                .in_attachment(in_attachment),
            ),
            LinkSource::Attachment => fired.push(Fired::new(
                "link.in_attachment",
                format!("{} links to {}", link.location, link.url),
            )),
            LinkSource::Text | LinkSource::Html => {}
        }
        if let Some(reason) = obfuscation(link) {
            fired.push(Fired::new(
                "link.obfuscated",
                format!("{} {reason}", link.url),
            ));
        }
    }
}

/// `link.domain_new`: a link domain never seen in any mail. A link to the
/// sender's own domain counts as seen once that domain is familiar, because
/// a known partner linking to its own site is normal.
fn domain_new(
    features: &Features,
    familiarity: &Familiarity,
    content: &Content,
    fired: &mut Vec<Fired>,
) {
    let sender_domain_known = familiarity.sender_domain.is_some();
    let new: Vec<&str> = familiarity
        .link_domains
        .iter()
        .filter(|known| known.fact.is_none())
        .map(|known| known.name.as_str())
        .filter(|domain| !(sender_domain_known && *domain == features.sender_domain))
        .collect();
    if new.is_empty() {
        return;
    }
    let mut described: Vec<String> = new
        .iter()
        .take(MAX_NAMED)
        .map(|domain| match first_link_to(content, domain) {
            Some(link) if link.source == LinkSource::Qr => {
                format!("{domain} (in a QR code in {})", link.location)
            }
            Some(link) if link.source == LinkSource::Attachment => {
                format!("{domain} (in {})", link.location)
            }
            _ => (*domain).to_owned(),
        })
        .collect();
    if new.len() > MAX_NAMED {
        described.push(format!("{} more", new.len() - MAX_NAMED));
    }
    fired.push(Fired::new(
        "link.domain_new",
        format!(
            "links to {}, never seen in any mail here",
            described.join(", ")
        ),
    ));
}

fn first_link_to<'c>(content: &'c Content, domain: &str) -> Option<&'c LinkRecord> {
    content
        .links
        .iter()
        .find(|link| keys::registrable_domain(&link.domain) == domain)
}

/// Explains why a link's host or anchor looks built to mislead, or returns `None`.
pub(crate) fn obfuscation(link: &LinkRecord) -> Option<String> {
    let host = link_host(link);
    if host.parse::<IpAddr>().is_ok() {
        return Some(format!("points to the IP address {host} instead of a name"));
    }
    if let Some(shown) = &link.shown_host {
        return Some(format!("is shown as {shown} but leads to {host}"));
    }
    if let Some(wrapper) = &link.unwrapped_from {
        return Some(format!("is wrapped in the redirector {wrapper}"));
    }
    if host.split('.').any(|label| label.starts_with("xn--")) {
        let (unicode, _) = idna::domain_to_unicode(&host);
        if mixed_script(&unicode) {
            return Some(format!(
                "uses the host {unicode} ({host}), which mixes scripts"
            ));
        }
        return Some(format!("uses the punycode host {host} ({unicode})"));
    }
    None
}

fn link_host(link: &LinkRecord) -> String {
    if let Some(host) = &link.host {
        return host.clone();
    }
    url::Url::parse(&link.url)
        .ok()
        .and_then(|url| url.host_str().map(keys::host))
        .unwrap_or_else(|| link.domain.clone())
}

/// Checks whether one label of a host mixes letters of different scripts, as
/// in `pаypal` with a Cyrillic `а`. Han with Kana or Hangul is normal in one label.
fn mixed_script(host: &str) -> bool {
    host.split('.').any(|label| {
        let mut seen: Option<Script> = None;
        for character in label.chars() {
            let script = match character.script() {
                Script::Common | Script::Inherited | Script::Unknown => continue,
                Script::Hiragana | Script::Katakana | Script::Hangul => Script::Han,
                other => other,
            };
            match seen {
                None => seen = Some(script),
                Some(previous) if previous != script => return true,
                Some(_) => {}
            }
        }
        false
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(url: &str) -> LinkRecord {
        let parsed = url::Url::parse(url).expect("valid URL");
        let host = keys::host(parsed.host_str().unwrap_or(""));
        LinkRecord {
            url: url.to_owned(),
            domain: keys::registrable_domain(&host),
            source: LinkSource::Html,
            location: "body".to_owned(),
            host: Some(host),
            shown_host: None,
            unwrapped_from: None,
        }
    }

    #[test]
    fn ip_host_is_obfuscated() {
        assert!(obfuscation(&link("http://192.0.2.7/login")).is_some());
    }

    #[test]
    fn mixed_script_punycode_is_obfuscated() {
        let reason = obfuscation(&link("https://xn--pypal-4ve.com/")).unwrap_or_default();
        assert!(reason.contains("mixes scripts"), "{reason}");
    }

    #[test]
    fn anchor_showing_other_host_is_obfuscated() {
        let mut record = link("https://evil.example/");
        record.shown_host = Some("paypal.com".to_owned());
        assert!(obfuscation(&record).is_some());
    }

    #[test]
    fn plain_link_is_not_obfuscated() {
        assert_eq!(obfuscation(&link("https://www.partner.example/docs")), None);
    }
}
