/// Bounds on the work one attachment may cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Maximum nesting of archives and embedded packages. The attachment is
    /// depth 0, and a container at this depth is listed but not opened.
    pub max_depth: usize,
    /// Maximum entries read from one archive.
    pub max_entries: usize,
    /// Maximum bytes expanded from all archives and compound files of one attachment.
    pub max_total_bytes: u64,
    /// Maximum ratio of expanded to compressed size for one entry.
    pub max_ratio: u64,
    /// Entries that expand to at most this many bytes are exempt from
    /// `max_ratio`, because small, repetitive XML parts legitimately compress
    /// more than 100:1.
    pub min_ratio_check_bytes: u64,
    /// Maximum size of one XML part that is parsed, in bytes.
    pub max_xml_bytes: u64,
    /// Maximum characters of text kept per artifact.
    pub max_text_chars: usize,
    /// Maximum URLs kept per artifact.
    pub max_urls: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 5,
            max_entries: 10_000,
            max_total_bytes: 100 * 1024 * 1024,
            max_ratio: 100,
            min_ratio_check_bytes: 1024 * 1024,
            max_xml_bytes: 20 * 1024 * 1024,
            max_text_chars: 1_000_000,
            max_urls: 10_000,
        }
    }
}
