//! QR codes in images, decoded within hard limits.
//!
//! [`decode`] takes encoded image bytes (PNG, JPEG, GIF, BMP, WebP, TIFF),
//! checks the declared dimensions against [`Limits`] before any pixel buffer
//! is allocated, converts the image to greyscale and runs rxing's QR readers
//! (several symbols per image). When a pass finds nothing, it retries with
//! other renderings of the same pixels, one [`Pass`] each: a contrast
//! stretch, a 2x upscale for codes with modules of 1.5-2 px, an inversion for
//! light-on-dark codes, and the colour channel with the most contrast for
//! tinted codes. Every symbol found is returned, URL or not, with the pass
//! that recovered it.
//!
//! The crate knows nothing about messages or attachments: `gatehouse-unpack`
//! finds the images and `gatehouse-engine` turns payloads into links.

mod load;
mod passes;
mod reader;

use std::panic::{self, AssertUnwindSafe};

use serde::Serialize;

pub use passes::Pass;

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
}

/// Everything one image gave, with the work it took.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decoded {
    pub codes: Vec<QrCode>,
    /// The passes run, in order, with the number of new symbols each found.
    pub attempts: Vec<(Pass, usize)>,
    pub width: u32,
    pub height: u32,
}

/// Why an image could not be looked at. Finding no code is not an error.
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
    #[error("image decoder failed unexpectedly: {0}")]
    DecoderPanic(String),
}

/// Decodes every QR code in one encoded image.
pub fn decode(data: &[u8], limits: &Limits) -> Result<Vec<QrCode>, QrError> {
    decode_with_report(data, limits).map(|decoded| decoded.codes)
}

/// Decodes every QR code in one encoded image and reports the passes it ran.
pub fn decode_with_report(data: &[u8], limits: &Limits) -> Result<Decoded, QrError> {
    // NOTE: image 0.25.9 panics on some valid PNGs (an assertion on the
    // buffer size in its PNG codec), and rxing indexes arrays on the strength
    // of what it detected. Neither can be ruled out on hostile input from the
    // outside, so this is the one place where a panic is caught and turned
    // into an error. Both libraries keep no state across calls, so nothing is
    // left half-updated after an unwind.
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| decode_unguarded(data, limits)));
    match outcome {
        Ok(result) => result,
        Err(payload) => Err(QrError::DecoderPanic(panic_message(payload.as_ref()))),
    }
}

/// Decodes every QR code in an image that is already greyscale (one byte a pixel, row by row).
pub fn decode_luma(luma: &[u8], width: u32, height: u32, limits: &Limits) -> Decoded {
    let image = passes::Pixels::from_luma(luma.to_vec(), width, height);
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| passes::run(&image, limits)));
    outcome.unwrap_or_default()
}

fn decode_unguarded(data: &[u8], limits: &Limits) -> Result<Decoded, QrError> {
    let image = load::load(data, limits)?;
    let pixels = passes::Pixels::from_image(image);
    Ok(passes::run(&pixels, limits))
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
