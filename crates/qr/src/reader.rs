//! The calls into rxing: one greyscale rendering in, the texts of its QR symbols out.

use std::collections::HashSet;

use rxing::common::HybridBinarizer;
use rxing::multi::MultipleBarcodeReader;
use rxing::qrcode::cpp_port::QrReader;
use rxing::{BarcodeFormat, BinaryBitmap, DecodeHints, Luma8LuminanceSource};

/// One symbol as the reader found it.
pub(crate) struct Symbol {
    pub(crate) text: String,
    /// The symbol's four corners: top-left, top-right, bottom-left, bottom-right.
    pub(crate) points: Vec<(f32, f32)>,
}

/// Reads every QR symbol in a greyscale buffer of `width` × `height` bytes,
/// with rxing's port of the zxing-cpp reader.
///
/// The port of ZXing Java's multi-symbol reader is not used. Its search
/// tries every triple of finder-pattern candidates, so an image tiled with
/// finder patterns costs time and memory that grow with the cube of their
/// number. Measured here: 400 patterns on an 800-pixel square took 17 s, and
/// 2,500 on a 2,000-pixel square over 7 minutes and 3 GiB. As a fallback it
/// added no code on the ZXing and rqrr test images, 168 of 179 either way.
pub(crate) fn read_symbols(luma: Vec<u8>, width: u32, height: u32) -> Vec<Symbol> {
    if width == 0 || height == 0 {
        return Vec::new();
    }
    let Ok(source) = Luma8LuminanceSource::new(luma, width, height) else {
        return Vec::new();
    };
    let mut bitmap = BinaryBitmap::new(HybridBinarizer::new(source));
    QrReader
        .decode_multiple_with_hints(&mut bitmap, &hints())
        .unwrap_or_default()
        .into_iter()
        .filter(|result| *result.getBarcodeFormat() == BarcodeFormat::QR_CODE)
        .map(|result| Symbol {
            text: result.getText().to_owned(),
            points: result
                .getPoints()
                .iter()
                .map(|point| (point.x, point.y))
                .collect(),
        })
        .collect()
}

fn hints() -> DecodeHints {
    DecodeHints {
        TryHarder: Some(true),
        // Only full QR symbols: Micro QR and rMQR hold too few characters
        // for a phishing URL, and every extra symbology is one more chance
        // of a false positive.
        PossibleFormats: Some(HashSet::from([BarcodeFormat::QR_CODE])),
        ..DecodeHints::default()
    }
}
