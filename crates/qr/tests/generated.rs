//! QR codes drawn by the test itself: inverted, tinted, tiny, embedded in a
//! larger picture, and images that must be rejected before decoding.

use std::io::Cursor;

use gatehouse_qr::{Limits, Pass, QrError, decode, decode_with_report};
use image::{DynamicImage, GrayImage, ImageFormat, Rgb, RgbImage};

const URL: &str = "https://login.example-bank.bond/verify?id=7731";

/// Returns the modules of a QR code for `text` with a 4-module quiet zone, true for dark.
fn modules(text: &str) -> (Vec<bool>, usize) {
    let code = qrcode::QrCode::new(text.as_bytes()).expect("text fits in a QR code");
    let width = code.width();
    let quiet = 4;
    let size = width + 2 * quiet;
    let dark: Vec<bool> = code
        .to_colors()
        .into_iter()
        .map(|color| color == qrcode::Color::Dark)
        .collect();
    let mut out = vec![false; size * size];
    for y in 0..width {
        for x in 0..width {
            out[(y + quiet) * size + x + quiet] = dark[y * width + x];
        }
    }
    (out, size)
}

/// Draws the code at `module_px` pixels a module (fractional sizes give
/// uneven modules, as a scaled screenshot does), dark and light as given.
fn draw(text: &str, module_px: f32, dark: [u8; 3], light: [u8; 3]) -> RgbImage {
    let (modules, size) = modules(text);
    let side = (size as f32 * module_px).round() as u32;
    RgbImage::from_fn(side, side, |x, y| {
        let mx = ((x as f32 / module_px) as usize).min(size - 1);
        let my = ((y as f32 / module_px) as usize).min(size - 1);
        Rgb(if modules[my * size + mx] { dark } else { light })
    })
}

fn png(image: DynamicImage) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image
        .write_to(&mut out, ImageFormat::Png)
        .expect("PNG encodes");
    out.into_inner()
}

fn payloads(data: &[u8]) -> Vec<String> {
    decode(data, &Limits::default())
        .expect("image decodes")
        .into_iter()
        .map(|code| code.payload)
        .collect()
}

#[test]
fn plain_code_decodes_on_first_pass() {
    let image = draw(URL, 4.0, [0, 0, 0], [255, 255, 255]);
    let decoded = decode_with_report(&png(DynamicImage::ImageRgb8(image)), &Limits::default())
        .expect("decodes");
    assert_eq!(decoded.codes.len(), 1);
    assert_eq!(decoded.codes[0].payload, URL);
    assert_eq!(decoded.codes[0].pass, Pass::Original);
}

#[test]
fn inverted_code_decodes() {
    let image = draw(URL, 4.0, [255, 255, 255], [0, 0, 0]);
    let decoded = decode_with_report(&png(DynamicImage::ImageRgb8(image)), &Limits::default())
        .expect("decodes");
    eprintln!("inverted: {:?}", decoded.attempts);
    assert_eq!(
        decoded
            .codes
            .iter()
            .map(|code| code.payload.as_str())
            .collect::<Vec<_>>(),
        [URL]
    );
}

#[test]
fn time_limit_stops_passes_after_first() {
    // The inverted code needs a later pass. With no time left after the
    // first pass, none runs, and the report records the stop.
    let image = draw(URL, 4.0, [255, 255, 255], [0, 0, 0]);
    let limits = Limits {
        max_image_millis: 0,
        ..Limits::default()
    };
    let decoded =
        decode_with_report(&png(DynamicImage::ImageRgb8(image)), &limits).expect("decodes");
    assert!(decoded.codes.is_empty(), "{:?}", decoded.codes);
    assert_eq!(decoded.attempts, [(Pass::Original, 0)]);
    assert!(decoded.stopped_after_millis.is_some());
}

#[test]
fn passes_within_time_limit_report_no_stop() {
    let image = draw(URL, 4.0, [255, 255, 255], [0, 0, 0]);
    let decoded = decode_with_report(&png(DynamicImage::ImageRgb8(image)), &Limits::default())
        .expect("decodes");
    assert_eq!(decoded.stopped_after_millis, None);
}

#[test]
fn tinted_code_decodes() {
    // Yellow modules on pink: luma differs by 14 levels, the blue channel by 255.
    let image = draw(URL, 4.0, [255, 255, 0], [255, 230, 255]);
    let decoded = decode_with_report(&png(DynamicImage::ImageRgb8(image)), &Limits::default())
        .expect("decodes");
    eprintln!("tinted: {:?}", decoded.attempts);
    assert_eq!(
        decoded
            .codes
            .iter()
            .map(|code| code.payload.as_str())
            .collect::<Vec<_>>(),
        [URL]
    );
}

#[test]
fn low_contrast_code_decodes() {
    let image = draw(URL, 4.0, [150, 150, 150], [175, 175, 175]);
    let decoded = decode_with_report(&png(DynamicImage::ImageRgb8(image)), &Limits::default())
        .expect("decodes");
    eprintln!("low contrast: {:?}", decoded.attempts);
    assert_eq!(
        decoded
            .codes
            .iter()
            .map(|code| code.payload.as_str())
            .collect::<Vec<_>>(),
        [URL]
    );
}

#[test]
fn tiny_modules_decode() {
    for module_px in [1.5f32, 2.0] {
        let image =
            DynamicImage::ImageRgb8(draw(URL, module_px, [0, 0, 0], [255, 255, 255])).to_luma8();
        let decoded = decode_with_report(&png(DynamicImage::ImageLuma8(image)), &Limits::default())
            .expect("decodes");
        eprintln!("{module_px} px modules: {:?}", decoded.attempts);
        assert_eq!(
            decoded
                .codes
                .iter()
                .map(|code| code.payload.as_str())
                .collect::<Vec<_>>(),
            [URL],
            "{module_px} px modules"
        );
    }
}

#[test]
fn code_inside_larger_picture() {
    let code = draw(URL, 3.0, [20, 20, 40], [250, 250, 250]);
    // A gradient photo-like background with the code pasted off-centre.
    let mut picture = RgbImage::from_fn(1400, 1000, |x, y| {
        let value = ((x * 7 + y * 3) % 200) as u8 + 30;
        Rgb([value, value / 2 + 60, 255 - value])
    });
    image::imageops::overlay(&mut picture, &code, 900, 550);
    let data = encode(DynamicImage::ImageRgb8(picture), ImageFormat::Jpeg);
    assert_eq!(payloads(&data), [URL]);
}

#[test]
fn several_codes_in_one_image() {
    let texts = [
        "https://one.example/a",
        "WIFI:T:WPA;S:guest;P:secret;;",
        "otpauth://totp/Example:alice?secret=JBSWY3DPEHPK3PXP",
    ];
    let mut canvas = RgbImage::from_pixel(1000, 400, Rgb([255, 255, 255]));
    for (index, text) in texts.iter().enumerate() {
        let code = draw(text, 4.0, [0, 0, 0], [255, 255, 255]);
        image::imageops::overlay(&mut canvas, &code, index as i64 * 330, 20);
    }
    let mut found = payloads(&png(DynamicImage::ImageRgb8(canvas)));
    found.sort();
    let mut expected: Vec<String> = texts.iter().map(|text| (*text).to_owned()).collect();
    expected.sort();
    assert_eq!(found, expected);
}

fn encode(image: DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format).expect("image encodes");
    out.into_inner()
}

#[test]
fn every_allowed_format_decodes() {
    let image = DynamicImage::ImageRgb8(draw(URL, 4.0, [0, 0, 0], [255, 255, 255]));
    for format in [
        ImageFormat::Png,
        ImageFormat::Jpeg,
        ImageFormat::Gif,
        ImageFormat::Bmp,
        ImageFormat::WebP,
        ImageFormat::Tiff,
    ] {
        let data = encode(image.clone(), format);
        assert_eq!(payloads(&data), [URL], "{format:?}");
    }
}

#[test]
fn blank_image_has_no_code() {
    let image = GrayImage::from_pixel(300, 300, image::Luma([255]));
    let decoded = decode_with_report(&png(DynamicImage::ImageLuma8(image)), &Limits::default())
        .expect("decodes");
    assert!(decoded.codes.is_empty());
}

#[test]
fn tracking_pixel_skipped() {
    let image = GrayImage::from_pixel(1, 1, image::Luma([255]));
    let decoded = decode_with_report(&png(DynamicImage::ImageLuma8(image)), &Limits::default())
        .expect("decodes");
    assert!(decoded.attempts.is_empty(), "{:?}", decoded.attempts);
}

#[test]
fn attempts_limit_is_kept() {
    let image = GrayImage::from_fn(300, 300, |x, y| image::Luma([((x ^ y) & 0xff) as u8]));
    let limits = Limits {
        max_attempts: 2,
        ..Limits::default()
    };
    let decoded =
        decode_with_report(&png(DynamicImage::ImageLuma8(image)), &limits).expect("decodes");
    assert!(decoded.attempts.len() <= 2, "{:?}", decoded.attempts);
}

/// A PNG whose header declares 100,000 × 100,000 pixels is rejected from
/// the header, before any pixel buffer exists.
#[test]
fn huge_dimensions_rejected_before_decoding() {
    let small = png(DynamicImage::ImageLuma8(GrayImage::new(10, 10)));
    let mut forged = small.clone();
    // IHDR starts at byte 8: length (4), "IHDR" (4), width (4), height (4).
    forged[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    forged[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let crc = crc32(&forged[12..29]);
    forged[29..33].copy_from_slice(&crc.to_be_bytes());
    assert!(matches!(
        decode(&forged, &Limits::default()),
        Err(QrError::TooManyPixels {
            width: 100_000,
            height: 100_000,
            ..
        })
    ));
}

/// CRC-32 (IEEE), as PNG chunks carry it.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn pixel_limit_rejects_real_image() {
    let image = GrayImage::new(2000, 2000);
    let limits = Limits {
        max_pixels: 1_000_000,
        ..Limits::default()
    };
    assert!(matches!(
        decode(&png(DynamicImage::ImageLuma8(image)), &limits),
        Err(QrError::TooManyPixels {
            width: 2000,
            height: 2000,
            max_pixels: 1_000_000
        })
    ));
}

#[test]
fn byte_limit_rejects() {
    let limits = Limits {
        max_bytes: 10,
        ..Limits::default()
    };
    assert!(matches!(
        decode(&[0u8; 11], &limits),
        Err(QrError::TooLarge {
            size: 11,
            max_bytes: 10
        })
    ));
}

#[test]
fn non_image_is_unsupported() {
    assert!(matches!(
        decode(b"%PDF-1.7 not an image", &Limits::default()),
        Err(QrError::UnsupportedFormat)
    ));
}

#[test]
fn truncated_png_is_an_error() {
    let data = png(DynamicImage::ImageRgb8(draw(
        URL,
        4.0,
        [0, 0, 0],
        [255, 255, 255],
    )));
    let result = decode(&data[..data.len() / 2], &Limits::default());
    assert!(matches!(result, Err(QrError::Image(_))), "{result:?}");
}

/// Flips, overwrites and cuts bytes of valid images in every format. The
/// guard in `decode` would catch a decoder panic, but none should occur.
#[test]
fn mutated_images_decode_without_panics() {
    let image = DynamicImage::ImageRgb8(draw(URL, 3.0, [0, 0, 0], [255, 255, 255]));
    let formats = [
        ImageFormat::Png,
        ImageFormat::Jpeg,
        ImageFormat::Gif,
        ImageFormat::Bmp,
        ImageFormat::WebP,
        ImageFormat::Tiff,
    ];
    let originals: Vec<Vec<u8>> = formats
        .iter()
        .map(|format| encode(image.clone(), *format))
        .collect();
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut random = |bound: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % bound.max(1) as u64) as usize
    };
    let mut caught = 0;
    for round in 0..600 {
        let mut data = originals[round % originals.len()].clone();
        for _ in 0..1 + random(6) {
            let at = random(data.len());
            match random(4) {
                0 => data[at] ^= 1 << random(8),
                1 => data[at] = 0xFF,
                2 => data[at] = 0,
                _ => data.truncate(at.max(1)),
            }
        }
        if let Err(QrError::DecoderPanic(message)) = decode(&data, &Limits::default()) {
            eprintln!("round {round}: panic caught: {message}");
            caught += 1;
        }
    }
    assert_eq!(caught, 0, "mutated images made a decoder panic");
}
