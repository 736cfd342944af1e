//! QR decoding of typical mail images: a code as phishing mail embeds it,
//! and a picture with no code, which runs every retry pass.

use std::hint::black_box;
use std::io::Cursor;

use criterion::{Criterion, criterion_group, criterion_main};
use image::{DynamicImage, ImageFormat, Luma, Rgb, RgbImage};

const URL: &str = "https://login.example-bank.bond/verify?id=7731";

fn encode(image: DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format).expect("image encodes");
    out.into_inner()
}

/// Draws a 4 px-module code with its quiet zone, as a PNG of about 300 × 300 pixels.
fn qr_png() -> Vec<u8> {
    let code = qrcode::QrCode::new(URL.as_bytes()).expect("text fits in a QR code");
    let width = code.width() as u32;
    let dark: Vec<bool> = code
        .to_colors()
        .into_iter()
        .map(|color| color == qrcode::Color::Dark)
        .collect();
    let side = (width + 8) * 4;
    let image = image::GrayImage::from_fn(side, side, |x, y| {
        let (mx, my) = (x / 4, y / 4);
        let inside = (4..width + 4).contains(&mx) && (4..width + 4).contains(&my);
        let is_dark = inside && dark[((my - 4) * width + (mx - 4)) as usize];
        Luma([if is_dark { 0 } else { 255 }])
    });
    encode(DynamicImage::ImageLuma8(image), ImageFormat::Png)
}

/// Draws a JPEG with smooth colour and no code.
fn picture_jpeg(width: u32, height: u32) -> Vec<u8> {
    let image = RgbImage::from_fn(width, height, |x, y| {
        let value = ((x * 7 + y * 3) % 200) as u8 + 30;
        Rgb([value, value / 2 + 60, 255 - value])
    });
    encode(DynamicImage::ImageRgb8(image), ImageFormat::Jpeg)
}

fn decode(c: &mut Criterion) {
    let limits = gatehouse_qr::Limits::default();
    let code = qr_png();
    let picture = picture_jpeg(800, 600);
    let photo = picture_jpeg(4000, 3000);

    c.bench_function("decode_qr_png_300px", |b| {
        b.iter(|| {
            let codes = gatehouse_qr::decode(black_box(&code), &limits).expect("decodes");
            assert_eq!(codes.len(), 1);
            codes
        })
    });
    c.bench_function("decode_picture_without_code_800x600", |b| {
        b.iter(|| gatehouse_qr::decode(black_box(&picture), &limits).expect("decodes"))
    });

    // A 12-megapixel photo without a code: the slowest case under the default limits.
    let mut slow = c.benchmark_group("large");
    slow.sample_size(10);
    slow.bench_function("decode_photo_without_code_4000x3000", |b| {
        b.iter(|| gatehouse_qr::decode(black_box(&photo), &limits).expect("decodes"))
    });
    slow.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
