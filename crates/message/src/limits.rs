/// Bounds on the work one message may cause while it is parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Maximum nesting of multiparts and `message/rfc822` parts.
    pub max_mime_depth: usize,
    /// Maximum number of MIME parts looked at; later parts are skipped with a finding.
    pub max_parts: usize,
    /// Maximum decoded size of one text or HTML body that is scanned for links, in bytes.
    pub max_body_bytes: usize,
    /// Maximum number of links kept per message.
    pub max_links: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_mime_depth: 20,
            max_parts: 1_000,
            max_body_bytes: 4 * 1024 * 1024,
            max_links: 1_000,
        }
    }
}
