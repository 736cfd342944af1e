//! URLs in text and HTML, with their registrable domain and provenance.

use serde::{Deserialize, Serialize};

/// Where a link was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkSource {
    Text,
    Html,
    Attachment,
    Qr,
}

/// One URL found in a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub url: String,
    /// The registrable domain of the host (public-suffix aware), or the IP literal.
    pub domain: String,
    pub source: LinkSource,
    /// Where the link sits, such as `body`, `通知文件.docx › word/_rels/document.xml.rels`.
    pub location: String,
}

impl Link {
    /// Builds a link from a URL string, or `None` when it has no host to judge.
    pub fn new(url: &str, source: LinkSource, location: &str) -> Option<Link> {
        let _ = (url, source, location);
        None
    }
}

/// Finds URLs in plain text.
pub fn extract_text(text: &str, location: &str) -> Vec<Link> {
    let _ = (text, location);
    Vec::new()
}

/// Finds URLs in HTML attributes and text.
pub fn extract_html(html: &str, location: &str) -> Vec<Link> {
    let _ = (html, location);
    Vec::new()
}
