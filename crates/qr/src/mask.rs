//! Masking the finder patterns of a decoded symbol, so that the reader can
//! find the next one.
//!
//! rxing's readers already return several symbols per image, a code nested
//! in a larger one included when it keeps a light border. Masking is the
//! second chance for a code the first read missed: painting over each found
//! symbol's three finder patterns hides it from the detector but leaves the
//! rest of the image, an inner code included, untouched.
//!
//! NOTE: an inner code drawn with no light border at all is not found,
//! because its finder patterns merge with the modules around them.

/// Paints the finder patterns of the symbol at `points` white, in place.
///
/// `points` are the four corners that the zxing-cpp port returns, or the
/// three finder-pattern centres that the ZXing Java port returns. Returns
/// whether anything was painted.
pub(crate) fn mask_finders(
    luma: &mut [u8],
    width: u32,
    height: u32,
    points: &[(f32, f32)],
) -> bool {
    let threshold = mean(luma);
    let finders: Vec<((f32, f32), f32)> = match points.len() {
        // Corners: top-left, top-right, bottom-left, bottom-right. A finder
        // pattern's outer edge starts at the corner and its top row is 7
        // dark modules, so the dark run from the corner toward the next
        // corner is its width.
        4 => {
            let (top_left, top_right, bottom_left) = (points[0], points[1], points[2]);
            let side = dark_run(luma, width, height, threshold, top_left, top_right);
            if side < 3.0 {
                return false;
            }
            let inward = |corner: (f32, f32), toward_x: (f32, f32), toward_y: (f32, f32)| {
                let unit_x = unit(corner, toward_x);
                let unit_y = unit(corner, toward_y);
                (
                    (
                        corner.0 + (unit_x.0 + unit_y.0) * side / 2.0,
                        corner.1 + (unit_x.1 + unit_y.1) * side / 2.0,
                    ),
                    side,
                )
            };
            vec![
                inward(top_left, top_right, bottom_left),
                inward(top_right, top_left, points[3]),
                inward(bottom_left, points[3], top_left),
            ]
        }
        // Finder centres: the centre is dark for 1.5 modules, then come a
        // light and a dark ring of one module each, 3.5 modules in all.
        3 => points
            .iter()
            .filter_map(|&centre| {
                let edge = outer_ring_distance(luma, width, height, threshold, centre)?;
                Some((centre, edge * 2.0))
            })
            .collect(),
        _ => return false,
    };
    let mut painted = false;
    for (centre, side) in finders {
        // The white separator around a finder pattern is one more module on each side.
        let half = side / 2.0 * 9.0 / 7.0 * std::f32::consts::SQRT_2;
        painted |= fill_white(luma, width, height, centre, half);
    }
    painted
}

fn mean(luma: &[u8]) -> u8 {
    if luma.is_empty() {
        return 128;
    }
    let sum: u64 = luma.iter().map(|&value| u64::from(value)).sum();
    (sum / luma.len() as u64) as u8
}

fn unit(from: (f32, f32), to: (f32, f32)) -> (f32, f32) {
    let (dx, dy) = (to.0 - from.0, to.1 - from.1);
    let length = (dx * dx + dy * dy).sqrt().max(1e-3);
    (dx / length, dy / length)
}

fn is_dark(luma: &[u8], width: u32, height: u32, threshold: u8, x: f32, y: f32) -> Option<bool> {
    if x < 0.0 || y < 0.0 || x >= width as f32 || y >= height as f32 {
        return None;
    }
    let index = y as usize * width as usize + x as usize;
    luma.get(index).map(|&value| value < threshold)
}

/// Returns the length of the dark run that starts half a pixel inside `from`, toward `to`.
fn dark_run(
    luma: &[u8],
    width: u32,
    height: u32,
    threshold: u8,
    from: (f32, f32),
    to: (f32, f32),
) -> f32 {
    let direction = unit(from, to);
    let across = unit(from, (from.0 - direction.1, from.1 + direction.0));
    // Start one pixel inside the symbol along both of its axes.
    let start = (
        from.0 + direction.0 + across.0,
        from.1 + direction.1 + across.1,
    );
    let total = {
        let (dx, dy) = (to.0 - from.0, to.1 - from.1);
        (dx * dx + dy * dy).sqrt()
    };
    let mut step = 0.0;
    while step < total {
        let (x, y) = (start.0 + direction.0 * step, start.1 + direction.1 * step);
        if is_dark(luma, width, height, threshold, x, y) != Some(true) {
            break;
        }
        step += 1.0;
    }
    step + 1.0
}

/// Returns the distance from a finder centre to the outer edge of its dark ring, to the right.
fn outer_ring_distance(
    luma: &[u8],
    width: u32,
    height: u32,
    threshold: u8,
    centre: (f32, f32),
) -> Option<f32> {
    let mut changes = 0;
    let mut last = is_dark(luma, width, height, threshold, centre.0, centre.1)?;
    let mut step = 1.0;
    while changes < 3 {
        let dark = is_dark(luma, width, height, threshold, centre.0 + step, centre.1)?;
        if dark != last {
            changes += 1;
            last = dark;
        }
        step += 1.0;
    }
    Some(step - 1.0)
}

/// Paints an axis-aligned square of half-side `half` around `centre` white.
fn fill_white(luma: &mut [u8], width: u32, height: u32, centre: (f32, f32), half: f32) -> bool {
    let x0 = (centre.0 - half).floor().max(0.0) as usize;
    let y0 = (centre.1 - half).floor().max(0.0) as usize;
    let x1 = ((centre.0 + half).ceil().max(0.0) as usize).min(width as usize);
    let y1 = ((centre.1 + half).ceil().max(0.0) as usize).min(height as usize);
    if x0 >= x1 || y0 >= y1 {
        return false;
    }
    for y in y0..y1 {
        let row = y * width as usize;
        luma[row + x0..row + x1].fill(255);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reader::read_symbols;

    fn code_luma(payload: &str, scale: usize) -> (Vec<u8>, u32) {
        let code = qrcode::QrCode::new(payload.as_bytes()).expect("encodable");
        let width = code.width();
        let side = (width + 8) * scale;
        let mut luma = vec![255u8; side * side];
        for (index, color) in code.to_colors().into_iter().enumerate() {
            if color != qrcode::Color::Dark {
                continue;
            }
            let (row, column) = (index / width + 4, index % width + 4);
            for y in row * scale..(row + 1) * scale {
                luma[y * side + column * scale..y * side + (column + 1) * scale].fill(0);
            }
        }
        (luma, side as u32)
    }

    #[test]
    fn masked_code_is_no_longer_read() {
        let (mut luma, side) = code_luma("https://masked.example/", 5);
        let symbols = read_symbols(luma.clone(), side, side);
        assert_eq!(symbols.len(), 1);
        assert!(mask_finders(&mut luma, side, side, &symbols[0].points));
        assert!(read_symbols(luma, side, side).is_empty());
    }
}
