//! Clusters of small filled squares that may draw a code, from a PDF page or an SVG.
//!
//! A QR code drawn as vector graphics is hundreds of squares and runs whose
//! shorter side is one module. Squares of one size that lie together in a
//! roughly square area are taken as a code, and the module size gives the
//! scale at which a render shows each module a few pixels wide.

use hayro::kurbo::Rect;

/// Fewest squares of one size that can draw a version 1 code (21 × 21
/// modules, about 40 runs even when whole rows are merged).
const MIN_CLUSTER_SQUARES: usize = 30;
/// Widest code, in modules: version 40 is 177 modules plus a quiet zone.
const MAX_CODE_MODULES: f64 = 200.0;

/// An area, in the drawing's units, to render enlarged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Region {
    pub(crate) rect: Rect,
    /// Pixels per unit that show its modules (or its image pixels) in full.
    pub(crate) scale: f64,
}

/// Groups squares of one module size that lie together, and returns a
/// region for each group that has the size and shape of a code.
pub(crate) fn square_clusters(squares: &[Rect], min_module_pixels: f64) -> Vec<Region> {
    // The module size is the shorter side, counted in hundredths of a point.
    let mut sizes: Vec<i64> = squares
        .iter()
        .map(|rect| (rect.width().min(rect.height()) * 100.0).round() as i64)
        .collect();
    sizes.sort_unstable();
    let mut counted: Vec<(i64, usize)> = Vec::new();
    for size in sizes {
        match counted.last_mut() {
            Some((last, count)) if *last == size => *count += 1,
            _ => counted.push((size, 1)),
        }
    }
    counted.retain(|(_, count)| *count >= MIN_CLUSTER_SQUARES);
    counted.sort_by_key(|(_, count)| std::cmp::Reverse(*count));

    let mut regions = Vec::new();
    for (size, _) in counted.into_iter().take(3) {
        let module = size as f64 / 100.0;
        let members: Vec<Rect> = squares
            .iter()
            .filter(|rect| {
                let side = rect.width().min(rect.height());
                (side - module).abs() <= module * 0.03 + 0.005
                    && rect.width().max(rect.height()) <= module * MAX_CODE_MODULES
            })
            .copied()
            .collect();
        for (cluster, count) in clusters(&members, module * 2.0) {
            let (width, height) = (cluster.width(), cluster.height());
            let is_code_shaped = count >= MIN_CLUSTER_SQUARES
                && width.min(height) >= module * 20.0
                && width.max(height) <= module * MAX_CODE_MODULES
                && width / height > 0.7
                && width / height < 1.4;
            if is_code_shaped {
                let quiet_zone = module * 4.0;
                regions.push(Region {
                    rect: cluster.inflate(quiet_zone, quiet_zone),
                    scale: min_module_pixels / module,
                });
            }
        }
    }
    regions
}

/// Joins rectangles that lie within `gap` of each other; returns each group's bounds and size.
fn clusters(rects: &[Rect], gap: f64) -> Vec<(Rect, usize)> {
    let mut groups: Vec<(Rect, usize)> = Vec::new();
    for rect in rects {
        let grown = rect.inflate(gap, gap);
        match groups
            .iter_mut()
            .find(|(bounds, _)| bounds.intersect(grown).area() > 0.0)
        {
            Some((bounds, count)) => {
                *bounds = bounds.union(*rect);
                *count += 1;
            }
            None => groups.push((*rect, 1)),
        }
    }
    // Groups started apart can grow into each other; merge those.
    let mut merged: Vec<(Rect, usize)> = Vec::new();
    for (bounds, count) in groups {
        let grown = bounds.inflate(gap, gap);
        match merged
            .iter_mut()
            .find(|(other, _)| other.intersect(grown).area() > 0.0)
        {
            Some((other, total)) => {
                *other = other.union(bounds);
                *total += count;
            }
            None => merged.push((bounds, count)),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use hayro::kurbo::Point;

    #[test]
    fn squares_of_one_size_make_a_region() {
        // A 25 × 25 checkerboard of 2 pt modules at (100, 100).
        let squares: Vec<Rect> = (0..25)
            .flat_map(|row| (0..25).map(move |column| (row, column)))
            .filter(|(row, column)| (row + column) % 2 == 0)
            .map(|(row, column)| {
                let x = 100.0 + f64::from(column) * 2.0;
                let y = 100.0 + f64::from(row) * 2.0;
                Rect::new(x, y, x + 2.0, y + 2.0)
            })
            .collect();
        let regions = square_clusters(&squares, 3.0);
        assert_eq!(regions.len(), 1);
        assert!((regions[0].scale - 1.5).abs() < 1e-9, "{regions:?}");
        assert!(regions[0].rect.contains(Point::new(150.0, 150.0)));
    }

    #[test]
    fn table_rules_make_no_region() {
        // Long thin rules of one width, as a table draws them.
        let squares: Vec<Rect> = (0..60)
            .map(|row| {
                let y = f64::from(row) * 12.0;
                Rect::new(50.0, y, 550.0, y + 0.5)
            })
            .collect();
        assert!(square_clusters(&squares, 3.0).is_empty());
    }
}
