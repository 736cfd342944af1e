//! The renderings of one image that the QR readers are run on, in order.

use std::time::Instant;

use image::DynamicImage;
use serde::Serialize;

use crate::mask;
use crate::reader::{Symbol, read_symbols};
use crate::{Decoded, Limits, QrCode};

/// One rendering of an image passed to the QR readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Pass {
    /// The image's luma as decoded.
    Original,
    /// Luma stretched so that the 1st and 99th percentiles become black and white.
    ContrastStretch,
    /// Luma scaled up 2x with bilinear interpolation, for modules of 1.5-2 px.
    Upscale,
    /// Luma inverted, for light-on-dark codes.
    Inverted,
    /// The colour channel (red, green, blue or the darkest of them) with the
    /// widest spread of values, for tinted codes with little luma contrast.
    Channel,
    /// Luma scaled down 2x with a box filter, for large photos with noise.
    Downscale,
    /// Luma inside a white border, for codes cut off or touching the image edge.
    Padded,
}

/// The pixels of one decoded image.
pub(crate) struct Pixels {
    luma: Vec<u8>,
    /// The colour channel with more contrast than luma, for colour images that have one.
    channel: Option<Vec<u8>>,
    width: u32,
    height: u32,
}

impl Pixels {
    pub(crate) fn from_image(image: DynamicImage) -> Pixels {
        let width = image.width();
        let height = image.height();
        let luma = image.to_luma8().into_raw();
        let channel = if image.color().has_color() {
            match image.as_rgb8() {
                Some(rgb) => best_channel(rgb, &luma),
                None => best_channel(&image.to_rgb8(), &luma),
            }
        } else {
            None
        };
        Pixels {
            luma,
            channel,
            width,
            height,
        }
    }

    /// Wraps a greyscale buffer whose length the caller checked against the dimensions.
    pub(crate) fn from_luma(luma: Vec<u8>, width: u32, height: u32) -> Pixels {
        Pixels {
            luma,
            channel: None,
            width,
            height,
        }
    }
}

/// Smallest width and height, in pixels, of an image that can hold a QR code.
const MIN_SIDE: u32 = 21;

pub(crate) const ORDER: [Pass; 7] = [
    Pass::Original,
    Pass::ContrastStretch,
    Pass::Upscale,
    Pass::Inverted,
    Pass::Channel,
    Pass::Padded,
    Pass::Downscale,
];

/// Runs the passes in order until one finds a symbol or the attempts run out.
///
/// A pass that cannot change the image (a stretch of an image that already
/// spans black to white, a channel of a grey image) is skipped and not counted.
pub(crate) fn run(pixels: &Pixels, limits: &Limits) -> Decoded {
    run_passes(pixels, limits, &ORDER)
}

/// Runs the given passes in order until one finds a symbol or the attempts run out.
///
/// The pass that finds symbols is read again with the finder patterns of
/// each symbol found so far painted white, up to `max_mask_rounds` times, so
/// that a code nested in another or standing beside it is found as well.
pub(crate) fn run_passes(pixels: &Pixels, limits: &Limits, passes: &[Pass]) -> Decoded {
    let mut decoded = Decoded {
        width: pixels.width,
        height: pixels.height,
        ..Decoded::default()
    };
    // A version 1 symbol is 21 modules wide, so a smaller image (a tracking
    // pixel, an icon) cannot hold a code at one pixel a module.
    if pixels.width < MIN_SIDE || pixels.height < MIN_SIDE || pixels.luma.is_empty() {
        return decoded;
    }
    let started = Instant::now();
    for &pass in passes {
        if decoded.attempts.len() as u64 >= u64::from(limits.max_attempts) {
            break;
        }
        if out_of_time(&mut decoded, started, limits) {
            break;
        }
        let Some((luma, width, height)) = render(pixels, pass, limits) else {
            continue;
        };
        let mut symbols = read_symbols(luma.clone(), width, height);
        let mut new_symbols = add_symbols(&mut decoded, &mut symbols, pass, false, limits);
        decoded.attempts.push((pass, new_symbols));
        if decoded.codes.is_empty() {
            continue;
        }

        let mut masked = luma;
        let mut found = symbols;
        for _ in 0..limits.max_mask_rounds {
            let painted = found.iter().fold(false, |painted, symbol| {
                mask::mask_finders(&mut masked, width, height, &symbol.points) | painted
            });
            if !painted || decoded.codes.len() >= limits.max_symbols {
                break;
            }
            if out_of_time(&mut decoded, started, limits) {
                break;
            }
            found = read_symbols(masked.clone(), width, height);
            new_symbols = add_symbols(&mut decoded, &mut found, pass, true, limits);
            decoded.attempts.push((pass, new_symbols));
            if new_symbols == 0 {
                break;
            }
        }
        // NOTE: the passes stop at the first that finds a symbol, so a second
        // code that only another rendering reveals (one dark-on-light code
        // beside a light-on-dark one) is missed.
        break;
    }
    decoded
}

/// Returns whether [`Limits::max_image_millis`] has passed since `started`,
/// and records the time spent in `decoded` when it has. The first pass
/// always runs.
fn out_of_time(decoded: &mut Decoded, started: Instant, limits: &Limits) -> bool {
    if decoded.attempts.is_empty() {
        return false;
    }
    let spent = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    if spent < limits.max_image_millis {
        return false;
    }
    decoded.stopped_after_millis = Some(spent);
    true
}

/// Adds the symbols whose text is new, and returns how many there were.
/// `symbols` keeps only those new ones, for the next mask round.
fn add_symbols(
    decoded: &mut Decoded,
    symbols: &mut Vec<Symbol>,
    pass: Pass,
    masked: bool,
    limits: &Limits,
) -> usize {
    symbols.retain(|symbol| decoded.codes.iter().all(|code| code.payload != symbol.text));
    symbols.truncate(limits.max_symbols.saturating_sub(decoded.codes.len()));
    for symbol in symbols.iter() {
        decoded.codes.push(QrCode {
            payload: symbol.text.clone(),
            pass,
            masked,
        });
    }
    symbols.len()
}

fn render(pixels: &Pixels, pass: Pass, limits: &Limits) -> Option<(Vec<u8>, u32, u32)> {
    let (width, height) = (pixels.width, pixels.height);
    match pass {
        Pass::Original => Some((pixels.luma.clone(), width, height)),
        Pass::ContrastStretch => stretch(&pixels.luma).map(|luma| (luma, width, height)),
        Pass::Upscale => {
            let pixel_count = u64::from(width) * u64::from(height);
            if pixel_count * 4 > limits.max_pixels || pixel_count > limits.max_upscale_pixels {
                return None;
            }
            Some(upscale(&pixels.luma, width, height))
        }
        Pass::Inverted => Some((
            pixels.luma.iter().map(|value| 255 - value).collect(),
            width,
            height,
        )),
        Pass::Channel => pixels
            .channel
            .as_ref()
            .map(|channel| (channel.clone(), width, height)),
        Pass::Padded => Some(pad(&pixels.luma, width, height)),
        Pass::Downscale => {
            if width.min(height) < limits.min_downscale_side {
                return None;
            }
            Some(downscale(&pixels.luma, width, height))
        }
    }
}

/// Returns the values at the 1st and 99th percentiles.
fn percentiles(values: &[u8]) -> (u8, u8) {
    let mut histogram = [0u64; 256];
    for &value in values {
        histogram[usize::from(value)] += 1;
    }
    histogram_percentiles(&histogram, values.len() as u64)
}

/// Returns the values at the 1st and 99th percentiles of a histogram of `total` values.
fn histogram_percentiles(histogram: &[u64; 256], total: u64) -> (u8, u8) {
    let cut = total / 100;
    let mut low = 0u8;
    let mut seen = 0u64;
    for (value, count) in histogram.iter().enumerate() {
        seen += count;
        if seen > cut {
            low = value as u8;
            break;
        }
    }
    let mut high = 255u8;
    seen = 0;
    for (value, count) in histogram.iter().enumerate().rev() {
        seen += count;
        if seen > cut {
            high = value as u8;
            break;
        }
    }
    (low, high)
}

fn stretch(luma: &[u8]) -> Option<Vec<u8>> {
    let (low, high) = percentiles(luma);
    if high <= low || (low <= 8 && high >= 247) {
        return None;
    }
    let range = u32::from(high - low);
    let table: Vec<u8> = (0..=255u32)
        .map(|value| {
            let clamped = value.clamp(u32::from(low), u32::from(high)) - u32::from(low);
            (clamped * 255 / range) as u8
        })
        .collect();
    Some(
        luma.iter()
            .map(|&value| table[usize::from(value)])
            .collect(),
    )
}

fn upscale(luma: &[u8], width: u32, height: u32) -> (Vec<u8>, u32, u32) {
    let (w, h) = (width as usize, height as usize);
    let (out_w, out_h) = (w * 2, h * 2);
    let mut out = vec![0u8; out_w * out_h];
    for y in 0..out_h {
        // Sample at the centre of each output pixel, in source coordinates.
        let sy = ((y as f32 + 0.5) / 2.0 - 0.5).max(0.0);
        let y0 = (sy as usize).min(h - 1);
        let y1 = (y0 + 1).min(h - 1);
        let fy = sy - y0 as f32;
        for x in 0..out_w {
            let sx = ((x as f32 + 0.5) / 2.0 - 0.5).max(0.0);
            let x0 = (sx as usize).min(w - 1);
            let x1 = (x0 + 1).min(w - 1);
            let fx = sx - x0 as f32;
            let top = f32::from(luma[y0 * w + x0]) * (1.0 - fx) + f32::from(luma[y0 * w + x1]) * fx;
            let bottom =
                f32::from(luma[y1 * w + x0]) * (1.0 - fx) + f32::from(luma[y1 * w + x1]) * fx;
            out[y * out_w + x] = (top * (1.0 - fy) + bottom * fy).round() as u8;
        }
    }
    (out, out_w as u32, out_h as u32)
}

/// Surrounds the image with a white border an eighth of its shorter side wide (at least 8 px).
fn pad(luma: &[u8], width: u32, height: u32) -> (Vec<u8>, u32, u32) {
    let border = (width.min(height) / 8).max(8) as usize;
    let (w, h) = (width as usize, height as usize);
    let out_w = w + 2 * border;
    let out_h = h + 2 * border;
    let mut out = vec![255u8; out_w * out_h];
    for (y, row) in luma.chunks_exact(w).enumerate() {
        let start = (y + border) * out_w + border;
        out[start..start + w].copy_from_slice(row);
    }
    (out, out_w as u32, out_h as u32)
}

fn downscale(luma: &[u8], width: u32, height: u32) -> (Vec<u8>, u32, u32) {
    let (w, out_w, out_h) = (width as usize, width as usize / 2, height as usize / 2);
    let mut out = Vec::with_capacity(out_w * out_h);
    for y in 0..out_h {
        for x in 0..out_w {
            let sum = u32::from(luma[2 * y * w + 2 * x])
                + u32::from(luma[2 * y * w + 2 * x + 1])
                + u32::from(luma[(2 * y + 1) * w + 2 * x])
                + u32::from(luma[(2 * y + 1) * w + 2 * x + 1]);
            out.push((sum / 4) as u8);
        }
    }
    (out, out_w as u32, out_h as u32)
}

/// Picks the channel (red, green, blue or the darkest of the three) with
/// the widest percentile spread, when it is wider than luma's. The spreads
/// come from histograms, so only the chosen channel is ever materialised.
fn best_channel(rgb: &image::RgbImage, luma: &[u8]) -> Option<Vec<u8>> {
    const PICKS: [fn(&[u8]) -> u8; 4] = [
        |pixel| pixel[0],
        |pixel| pixel[1],
        |pixel| pixel[2],
        |pixel| pixel[0].min(pixel[1]).min(pixel[2]),
    ];
    let mut histograms = [[0u64; 256]; 4];
    for pixel in rgb.as_raw().chunks_exact(3) {
        for (histogram, pick) in histograms.iter_mut().zip(PICKS) {
            histogram[usize::from(pick(pixel))] += 1;
        }
    }
    let total = luma.len() as u64;
    let spread = |histogram: &[u64; 256]| {
        let (low, high) = histogram_percentiles(histogram, total);
        high.saturating_sub(low)
    };
    let luma_spread = {
        let (low, high) = percentiles(luma);
        high.saturating_sub(low)
    };
    let (best, best_spread) = histograms
        .iter()
        .map(spread)
        .enumerate()
        .max_by_key(|(_, candidate_spread)| *candidate_spread)?;
    if best_spread <= luma_spread {
        return None;
    }
    Some(rgb.as_raw().chunks_exact(3).map(PICKS[best]).collect())
}
