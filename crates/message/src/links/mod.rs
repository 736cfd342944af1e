//! URLs in text and HTML, with their registrable domain and provenance.
//!
//! - [`Link::new`] normalises one URL by the WHATWG URL rules, as browsers
//!   apply them. The host is lower-cased and converted to IDNA ASCII, IP
//!   literals in decimal, octal or hex notation become dotted quads, and a
//!   trailing dot is dropped. Then the public-suffix list names the
//!   registrable domain.
//! - [`extract_text`] finds URLs with a scheme and `www.` hosts in plain text.
//! - [`extract_html`] streams HTML through lol_html and reads every attribute
//!   that loads or links a URL, CSS `url()`, `<base href>`, meta refresh and
//!   the visible text, and records when an anchor's text shows another host.
//! - Redirectors (Google, Bing, Microsoft Safe Links, Proofpoint URL Defense)
//!   are unwrapped, and each target becomes a link of its own.
//! - [`unwrap_all_redirects`] also unwraps any parameter that holds an
//!   encoded URL (percent, base64, base64url), for QR payloads.
//! - [`link_service`] names short-link and dynamic-QR services by host.
//! - [`find_embedded_address`] checks whether a URL carries an email address.

mod embedded;
mod entities;
mod host;
mod html;
mod redirect;
mod services;

use serde::{Deserialize, Serialize};

pub use embedded::{AddressEncoding, find_embedded_address};
pub use host::registrable_domain;
pub use services::{LinkService, ServiceKind, link_service};

use crate::Limits;

/// The kind of content in which a link was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkSource {
    /// A plain-text body.
    Text,
    /// An HTML body or HTML attachment.
    Html,
    /// A document inside an attachment, such as an Office relationship part.
    Attachment,
    /// A QR code decoded from an image.
    Qr,
}

/// One URL found in a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// The URL as parsed and serialised by the WHATWG rules, with an ASCII host.
    pub url: String,
    /// The registrable domain of the host (public-suffix aware), or the IP literal.
    pub domain: String,
    pub source: LinkSource,
    /// The path to the link inside the message, such as `body`, `通知文件.docx › word/_rels/document.xml.rels`.
    pub location: String,
    /// The normalised host: lower case, IDNA ASCII, no trailing dot, IP addresses in canonical form.
    pub host: String,
    /// The host that an HTML anchor's text shows, when its registrable domain
    /// differs from the target's (`<a href="https://evil.example">paypal.com</a>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shown_host: Option<String>,
    /// The redirector URL this link was unwrapped from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unwrapped_from: Option<String>,
}

impl Link {
    /// Builds a link from a URL string, or `None` when it has no host to judge.
    ///
    /// Accepts `http`, `https`, `ftp`, `ws` and `wss` URLs, scheme-relative
    /// `//host/…` URLs and `www.` hosts without a scheme.
    pub fn new(url: &str, source: LinkSource, location: &str) -> Option<Link> {
        let parsed = host::parse_url(url)?;
        let host = host::normalised_host(&parsed)?;
        let domain = registrable_domain(&host);
        Some(Link {
            url: parsed.to_string(),
            domain,
            source,
            location: location.to_owned(),
            host,
            shown_host: None,
            unwrapped_from: None,
        })
    }

    /// Returns whether the host is an IP address rather than a name.
    pub fn host_is_ip(&self) -> bool {
        self.host.parse::<std::net::IpAddr>().is_ok()
    }
}

/// Finds URLs with a scheme and `www.` hosts in plain text, within the default [`Limits`].
pub fn extract_text(text: &str, location: &str) -> Vec<Link> {
    extract_text_with(text, location, &Limits::default())
}

/// Finds URLs in HTML attributes, CSS and text, within the default [`Limits`].
pub fn extract_html(html: &str, location: &str) -> Vec<Link> {
    extract_html_with(html, location, &Limits::default())
}

/// Finds URLs with a scheme and `www.` hosts in plain text.
///
/// Text is cut to [`Limits::max_body_bytes`] and at most [`Limits::max_links`]
/// links are returned, each redirector followed by the links it wraps.
pub fn extract_text_with(text: &str, location: &str, limits: &Limits) -> Vec<Link> {
    let mut collector = Collector::new(location, LinkSource::Text, limits);
    for url in urls_in_text(truncate(text, limits.max_body_bytes)) {
        collector.add(url, None);
    }
    collector.links
}

/// Finds URLs in HTML: every URL-bearing attribute, CSS `url()`, meta refresh
/// and the visible text, resolving relative URLs against `<base href>`.
pub fn extract_html_with(html: &str, location: &str, limits: &Limits) -> Vec<Link> {
    let found = html::scan(truncate(html, limits.max_body_bytes), limits);
    let mut collector = Collector::new(location, LinkSource::Html, limits);
    for candidate in found {
        collector.add(&candidate.url, candidate.shown_host);
    }
    collector.links
}

/// Unwraps a redirector URL into the URLs it wraps, innermost last, within
/// [`Limits::max_redirect_depth`].
pub fn unwrap_redirects(link: &Link, limits: &Limits) -> Vec<Link> {
    let mut unwrapped = Vec::new();
    let mut current = link.url.clone();
    for _ in 0..limits.max_redirect_depth {
        let Some(parsed) = host::parse_url(&current) else {
            break;
        };
        let Some(target) = redirect::target(&parsed) else {
            break;
        };
        let Some(mut inner) = Link::new(&target, link.source, &link.location) else {
            break;
        };
        inner.unwrapped_from = Some(current.clone());
        current = inner.url.clone();
        unwrapped.push(inner);
    }
    unwrapped
}

/// Unwraps a URL through known redirectors and through any parameter that
/// carries an encoded absolute URL ([`unwrap_redirects`] takes only the
/// known ones). Each step is a link with `unwrapped_from` set, innermost
/// last, within [`Limits::max_redirect_depth`].
///
/// Meant for URLs that are not shown to the reader, such as QR payloads,
/// where any wrapping hides the target on purpose. In bodies, newsletter
/// click trackers carry their target the same way.
pub fn unwrap_all_redirects(link: &Link, limits: &Limits) -> Vec<Link> {
    let mut unwrapped: Vec<Link> = Vec::new();
    let mut current = link.url.clone();
    for _ in 0..limits.max_redirect_depth {
        let Some(parsed) = host::parse_url(&current) else {
            break;
        };
        let Some(target) = redirect::target(&parsed).or_else(|| redirect::encoded_target(&parsed))
        else {
            break;
        };
        let Some(mut inner) = Link::new(&target, link.source, &link.location) else {
            break;
        };
        if inner.url == current || unwrapped.iter().any(|known| known.url == inner.url) {
            break;
        }
        inner.unwrapped_from = Some(current.clone());
        current = inner.url.clone();
        unwrapped.push(inner);
    }
    unwrapped
}

/// Gathers the links of one call: normalised, unwrapped, deduplicated and capped.
struct Collector<'a> {
    location: &'a str,
    source: LinkSource,
    limits: &'a Limits,
    links: Vec<Link>,
}

impl<'a> Collector<'a> {
    fn new(location: &'a str, source: LinkSource, limits: &'a Limits) -> Collector<'a> {
        Collector {
            location,
            source,
            limits,
            links: Vec::new(),
        }
    }

    fn add(&mut self, url: &str, shown_host: Option<String>) {
        let Some(mut link) = Link::new(url, self.source, self.location) else {
            return;
        };
        if let Some(existing) = self.links.iter_mut().find(|known| known.url == link.url) {
            // The same target behind several anchors: keep the first mismatch seen.
            if existing.shown_host.is_none() {
                existing.shown_host = shown_host;
            }
            return;
        }
        link.shown_host = shown_host;
        let inner = unwrap_redirects(&link, self.limits);
        self.push(link);
        for link in inner {
            if !self.links.iter().any(|known| known.url == link.url) {
                self.push(link);
            }
        }
    }

    fn push(&mut self, link: Link) {
        if self.links.len() < self.limits.max_links {
            self.links.push(link);
        }
    }
}

/// URLs with a scheme, and `www.` hosts, in text.
fn urls_in_text(text: &str) -> impl Iterator<Item = &str> {
    let mut finder = linkify::LinkFinder::new();
    finder.kinds(&[linkify::LinkKind::Url]);
    finder.url_must_have_scheme(false);
    finder
        .links(text)
        .map(|link| link.as_str())
        .filter(|url| {
            url.contains("://")
                || url
                    .get(..4)
                    .is_some_and(|head| head.eq_ignore_ascii_case("www."))
        })
        .collect::<Vec<_>>()
        .into_iter()
}

/// Cuts text to at most `max` bytes, at a character boundary.
fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
