/// Bounds on the work one message may cause while it is parsed and its links extracted.
///
/// A limit that trips never fails the parse: it becomes a [`crate::Finding`]
/// of kind [`crate::FindingKind::LimitReached`] and the rest is skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Maximum nesting of multiparts and `message/rfc822` parts. Deeper
    /// structure is cut off. Legitimate mail rarely nests more than 5 levels;
    /// mail-parser itself bounds only base64-encoded nested messages (3 levels).
    pub max_mime_depth: usize,
    /// Maximum number of MIME parts read; the message is cut before the next one.
    /// Each part can cost as little as a few bytes, so this bounds the work that
    /// a message of many tiny parts causes.
    pub max_parts: usize,
    /// Maximum decoded size of one text or HTML body that is kept and scanned
    /// for links, in bytes. A longer body is truncated.
    pub max_body_bytes: usize,
    /// Maximum number of links kept from one body, one attachment or one call.
    pub max_links: usize,
    /// Maximum size of one header block, in bytes. A longer block is taken to
    /// end there, and each header value decoded is cut to this size.
    pub max_header_bytes: usize,
    /// Maximum number of redirectors unwrapped inside one another from one link.
    pub max_redirect_depth: usize,
    /// Maximum decoded size of one `data:image/…` URI in HTML that becomes a part, in bytes.
    pub max_data_uri_bytes: usize,
    /// Maximum number of `data:image/…` URIs taken from one message.
    pub max_data_uris: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_mime_depth: 20,
            max_parts: 1_000,
            max_body_bytes: 4 * 1024 * 1024,
            max_links: 1_000,
            max_header_bytes: 256 * 1024,
            max_redirect_depth: 5,
            max_data_uri_bytes: 2 * 1024 * 1024,
            max_data_uris: 64,
        }
    }
}
