//! Short-link and dynamic-QR services, known by host.
//!
//! A QR code that points at a short link or at a dynamic-QR service hides
//! its real target behind a redirect that the service can change after the
//! mail was scanned. The link is not bad by itself, but the target is not
//! visible without fetching it, which Gatehouse never does.

use serde::Serialize;

use super::host::registrable_domain;

/// The kind of service behind a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceKind {
    /// A URL shortener: the path is a code that redirects elsewhere.
    ShortLink,
    /// A QR generator whose codes point at its own redirect, editable later.
    DynamicQr,
}

/// A named service a link goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LinkService {
    pub kind: ServiceKind,
    /// The registrable domain the service is known by.
    pub domain: &'static str,
}

/// Registrable domains of public URL shorteners.
const SHORT_LINKS: [&str; 24] = [
    "bit.ly",
    "bitly.com",
    "tinyurl.com",
    "t.co",
    "goo.gl",
    "ow.ly",
    "is.gd",
    "v.gd",
    "buff.ly",
    "rebrand.ly",
    "cutt.ly",
    "shorturl.at",
    "rb.gy",
    "t.ly",
    "tiny.cc",
    "s.id",
    "lnkd.in",
    "bit.do",
    "soo.gd",
    "shorte.st",
    "adf.ly",
    "bl.ink",
    "tiny.one",
    "urlz.fr",
];

/// Registrable domains whose links are the redirects of dynamic QR codes.
const DYNAMIC_QR: [&str; 9] = [
    "qrco.de",
    "qr-code-generator.com",
    "l.ead.me",
    "qr1.be",
    "me-qr.com",
    "uqr.me",
    "qr.codes",
    "qrfy.io",
    "qrcodechimp.com",
];

/// Returns the short-link or dynamic-QR service a normalised host belongs to.
///
/// NOTE: the lists name widely used services only; a service on another
/// domain, or a customer's own domain on such a service, is not recognised.
pub fn link_service(host: &str) -> Option<LinkService> {
    let domain = registrable_domain(host);
    let matches =
        |known: &str| domain == known || host == known || host.ends_with(&format!(".{known}"));
    if let Some(known) = DYNAMIC_QR.into_iter().find(|known| matches(known)) {
        return Some(LinkService {
            kind: ServiceKind::DynamicQr,
            domain: known,
        });
    }
    SHORT_LINKS
        .into_iter()
        .find(|known| matches(known))
        .map(|known| LinkService {
            kind: ServiceKind::ShortLink,
            domain: known,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_by_host() {
        assert_eq!(
            link_service("bit.ly").map(|service| service.kind),
            Some(ServiceKind::ShortLink)
        );
        assert_eq!(
            link_service("qrco.de").map(|service| service.kind),
            Some(ServiceKind::DynamicQr)
        );
        assert_eq!(
            link_service("l.ead.me").map(|service| service.domain),
            Some("l.ead.me")
        );
        assert_eq!(link_service("www.example.com"), None);
    }
}
