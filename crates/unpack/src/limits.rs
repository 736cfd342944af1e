/// Bounds on the work one attachment may cause.
#[derive(Debug, Clone, PartialEq)]
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
    /// Maximum pages of one PDF that are rendered and read for text.
    pub max_pdf_pages: usize,
    /// Maximum bytes that the streams of one PDF may decode to, bounded before
    /// any stream is decoded (Flate streams are inflated without keeping the
    /// output; other filters count at their maximum expansion ratio). A PDF
    /// over it is neither parsed nor rendered, because the PDF reader decodes
    /// streams without a size limit of its own.
    pub max_pdf_decoded_bytes: u64,
    /// Maximum width × height declared by one image in a PDF.
    pub max_pdf_image_pixels: u64,
    /// Maximum objects of one PDF read for actions, links and embedded files.
    pub max_pdf_objects: usize,
    /// Wall-clock time one PDF may spend in parsing, text extraction and
    /// rendering, in milliseconds, checked between pages and renders.
    pub max_pdf_millis: u64,
    /// Pixels per PDF point of a whole-page render (2.0 is 144 dpi).
    pub render_scale: f32,
    /// Smallest width, in pixels, that a render gives one module of a code drawn
    /// as squares, when the scale that needs stays within `max_render_scale`.
    pub min_module_pixels: f32,
    /// Maximum pixels per PDF point of a render of one region.
    pub max_render_scale: f32,
    /// Maximum width × height of one render; a larger page is rendered at a smaller scale.
    pub max_render_pixels: u64,
    /// Maximum width × height of all renders of one attachment together.
    pub max_total_render_pixels: u64,
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
            max_pdf_pages: 10,
            max_pdf_decoded_bytes: 256 * 1024 * 1024,
            max_pdf_image_pixels: 25_000_000,
            max_pdf_objects: 100_000,
            max_pdf_millis: 3_000,
            render_scale: 2.0,
            min_module_pixels: 3.0,
            max_render_scale: 8.0,
            max_render_pixels: 6_000_000,
            max_total_render_pixels: 40_000_000,
        }
    }
}
