//! Image decoding with the pixel count checked before any pixel is decoded.

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, ImageReader};

use crate::{Limits, QrError};

/// The formats mail carries images in. Others (AVIF, ICO, TGA, …) are not compiled in.
const ALLOWED: [ImageFormat; 6] = [
    ImageFormat::Png,
    ImageFormat::Jpeg,
    ImageFormat::Gif,
    ImageFormat::Bmp,
    ImageFormat::WebP,
    ImageFormat::Tiff,
];

/// Decodes one image after checking its size, format and declared dimensions.
pub(crate) fn load(data: &[u8], limits: &Limits) -> Result<DynamicImage, QrError> {
    if data.len() > limits.max_bytes {
        return Err(QrError::TooLarge {
            size: data.len(),
            max_bytes: limits.max_bytes,
        });
    }
    let format = image::guess_format(data).map_err(|_| QrError::UnsupportedFormat)?;
    if !ALLOWED.contains(&format) {
        return Err(QrError::UnsupportedFormat);
    }

    // The header alone gives the dimensions; reject before a buffer exists.
    let (width, height) = ImageReader::with_format(Cursor::new(data), format).into_dimensions()?;
    if u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(QrError::TooManyPixels {
            width,
            height,
            max_pixels: limits.max_pixels,
        });
    }

    let mut reader = ImageReader::with_format(Cursor::new(data), format);
    let mut decoder_limits = image::Limits::default();
    decoder_limits.max_image_width = Some(width);
    decoder_limits.max_image_height = Some(height);
    decoder_limits.max_alloc = Some(limits.max_alloc_bytes);
    reader.limits(decoder_limits);
    Ok(reader.decode()?)
}
