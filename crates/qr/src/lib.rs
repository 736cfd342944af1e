//! QR codes in images, decoded within hard limits.
//!
//! [`decode`] takes encoded image bytes (PNG, JPEG, GIF, BMP, WebP, TIFF),
//! checks the declared dimensions against [`Limits`] before any pixel buffer
//! is allocated, converts the image to greyscale and runs rxing's QR readers
//! (several symbols per image). When a pass finds nothing, the next [`Pass`]
//! renders the same pixels another way: a contrast stretch, a 2x upscale
//! for modules of 1.5-2 px, and an inversion for light-on-dark codes. Then
//! come the colour channel with the most contrast for tinted codes, a white
//! border for codes cut off at the edge, and a 2x downscale.
//! Every symbol found is returned, URL or not, with the pass that found it.
//!
//! Codes drawn without an image are rebuilt as a [`CellGrid`] and rendered:
//! HTML tables and CSS grids of dark and light cells and block characters
//! in HTML ([`drawings`]), and block characters in plain text
//! ([`block_grids`]). Neighbouring images that together form one code are
//! joined by [`decode_stitched`]. A symbol found is read again with its
//! finder patterns masked, so that a code nested in another is found too.
//! [`classify`] names a payload's kind (URL, otpauth, WIFI, payment, …).
//!
//! The crate knows nothing about messages or attachments: `gatehouse-unpack`
//! finds the images and `gatehouse-engine` turns payloads into links.

mod blocks;
mod grid;
mod html;
mod load;
mod mask;
mod passes;
mod payload;
mod reader;
mod stitch;

use std::panic::{self, AssertUnwindSafe};

use serde::Serialize;

pub use blocks::{block_grids, has_block_characters};
pub use grid::{CellGrid, MAX_GRID_SIDE};
pub use html::{HtmlDrawings, ImageMosaic, drawings, may_draw_code};
pub use passes::Pass;
pub use payload::{PayloadKind, classify};
pub use stitch::decode_stitched;

/// Bounds on the work one image may cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Maximum width × height of an image that is decoded at all, checked
    /// against the header before pixels are decoded.
    pub max_pixels: u64,
    /// Maximum size of the encoded image, in bytes.
    pub max_bytes: usize,
    /// Maximum bytes the image decoder may allocate for one image.
    pub max_alloc_bytes: u64,
    /// Maximum decoding passes (original, contrast stretch, upscale, …) per image.
    pub max_attempts: u32,
    /// Maximum QR symbols returned for one image.
    pub max_symbols: usize,
    /// Maximum width × height of an image that the upscale pass enlarges.
    pub max_upscale_pixels: u64,
    /// Minimum shorter side, in pixels, of an image that the downscale pass shrinks.
    pub min_downscale_side: u32,
    /// Maximum times an image is read again with the symbols found so far
    /// masked out, to find a code nested in another or beside it.
    pub max_mask_rounds: u32,
    /// Time after which no further pass or mask round of one image starts,
    /// in milliseconds. The pass under way runs to its end, so one image
    /// can take longer by the time of one pass.
    pub max_image_millis: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_pixels: 25_000_000,
            max_bytes: 32 * 1024 * 1024,
            max_alloc_bytes: 256 * 1024 * 1024,
            max_attempts: 8,
            max_symbols: 32,
            max_upscale_pixels: 4_000_000,
            min_downscale_side: 800,
            max_mask_rounds: 2,
            max_image_millis: 2_000,
        }
    }
}

/// One decoded QR symbol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QrCode {
    /// The decoded text.
    pub payload: String,
    /// The rendering of the image in which the symbol was found.
    pub pass: Pass,
    /// Whether the symbol was found only after the symbols found before it
    /// were masked out: a code nested in another, or hidden beside it.
    pub masked: bool,
}

/// Everything one image gave, with the work it took.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decoded {
    pub codes: Vec<QrCode>,
    /// The passes run, in order, with the number of new symbols each found.
    pub attempts: Vec<(Pass, usize)>,
    /// Milliseconds spent when [`Limits::max_image_millis`] stopped the
    /// passes early, or `None` when they ended by themselves.
    pub stopped_after_millis: Option<u64>,
    pub width: u32,
    pub height: u32,
}

/// Reason an image could not be examined. Finding no code is not an error.
#[derive(Debug, thiserror::Error)]
pub enum QrError {
    #[error("image of {width}x{height} pixels exceeds the limit of {max_pixels} pixels")]
    TooManyPixels {
        width: u32,
        height: u32,
        max_pixels: u64,
    },
    #[error("image of {size} bytes exceeds the limit of {max_bytes} bytes")]
    TooLarge { size: usize, max_bytes: usize },
    #[error("image format is not one of PNG, JPEG, GIF, BMP, WebP or TIFF")]
    UnsupportedFormat,
    #[error("image could not be decoded: {0}")]
    Image(#[from] image::ImageError),
    #[error("greyscale buffer of {len} bytes does not match {width}x{height} pixels")]
    BufferSize { width: u32, height: u32, len: usize },
    #[error("image decoder or QR reader panicked: {0}")]
    DecoderPanic(String),
}

/// Decodes every QR code in one encoded image.
pub fn decode(data: &[u8], limits: &Limits) -> Result<Vec<QrCode>, QrError> {
    decode_with_report(data, limits).map(|decoded| decoded.codes)
}

/// Decodes every QR code in one encoded image and reports the passes it ran.
pub fn decode_with_report(data: &[u8], limits: &Limits) -> Result<Decoded, QrError> {
    guarded(|| {
        let image = load::load(data, limits)?;
        let pixels = passes::Pixels::from_image(image);
        Ok(passes::run(&pixels, limits))
    })
}

/// Decodes every QR code in an image that is already greyscale (one byte a pixel, row by row).
pub fn decode_luma(
    luma: &[u8],
    width: u32,
    height: u32,
    limits: &Limits,
) -> Result<Decoded, QrError> {
    check_luma(luma, width, height, limits)?;
    guarded(|| {
        let pixels = passes::Pixels::from_luma(luma.to_vec(), width, height);
        Ok(passes::run(&pixels, limits))
    })
}

/// Decodes every QR code in a greyscale image with only the given passes, in
/// order: for renders of drawings, where the original and a few cheap
/// variants are all that can help.
pub fn decode_luma_with(
    luma: &[u8],
    width: u32,
    height: u32,
    limits: &Limits,
    passes: &[Pass],
) -> Result<Decoded, QrError> {
    check_luma(luma, width, height, limits)?;
    guarded(|| {
        let pixels = passes::Pixels::from_luma(luma.to_vec(), width, height);
        Ok(passes::run_passes(&pixels, limits, passes))
    })
}

fn check_luma(luma: &[u8], width: u32, height: u32, limits: &Limits) -> Result<(), QrError> {
    let expected = u64::from(width) * u64::from(height);
    if expected > limits.max_pixels {
        return Err(QrError::TooManyPixels {
            width,
            height,
            max_pixels: limits.max_pixels,
        });
    }
    if luma.len() as u64 != expected {
        return Err(QrError::BufferSize {
            width,
            height,
            len: luma.len(),
        });
    }
    Ok(())
}

/// Runs image decoding and QR reading, turning a panic into an error.
///
/// NOTE: image 0.25.9 panics on some valid PNGs (an assertion on the buffer
/// size in its PNG codec, <https://github.com/image-rs/image/issues/2803>,
/// open when 0.25.10 was current), and rxing indexes its bit matrices with
/// coordinates computed from the pixels. A panic in either cannot be ruled
/// out on hostile input, so this is the one place where a panic is caught.
/// The decoders and readers are created per call, so no state is left
/// half-updated after an unwind.
fn guarded(work: impl FnOnce() -> Result<Decoded, QrError>) -> Result<Decoded, QrError> {
    match panic::catch_unwind(AssertUnwindSafe(work)) {
        Ok(result) => result,
        Err(payload) => Err(QrError::DecoderPanic(panic_message(payload.as_ref()))),
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "panic with a non-text payload".to_owned()
    }
}
