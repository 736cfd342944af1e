//! One pass over a page's drawing operations, without rasterising: the text
//! it shows, and the regions that may hold a code.
//!
//! A QR code in a PDF is either an image or hundreds of filled squares and
//! runs whose shorter side is one module. The squares give the module size,
//! and so the scale at which a render shows each module at least
//! `min_module_pixels` wide. An image gives its own resolution.

use hayro::hayro_interpret::font::{Glyph, GlyphRun};
use hayro::hayro_interpret::hayro_cmap::BfString;
use hayro::hayro_interpret::{
    BlendMode, ClipPath, Device, DrawMode, DrawProps, Image, ImageDrawProps, SoftMask,
};
use hayro::kurbo::{Affine, BezPath, PathEl, Point, Rect};

use crate::squares::{Region, square_clusters};

/// Filled squares and runs recorded per page; a page with more is not a code page.
const MAX_SQUARES: usize = 200_000;
/// Characters of text kept per page.
const MAX_PAGE_TEXT: usize = 200_000;
/// Smallest module side, in points, taken for a module (0.2 pt is 0.07 mm).
const MIN_MODULE_POINTS: f64 = 0.2;
/// Largest module side, in points, taken for a module.
const MAX_MODULE_POINTS: f64 = 30.0;
/// Smallest side, in image pixels, of an image that can hold a code.
const MIN_IMAGE_SIDE: u32 = 21;

/// The text and drawings of one page.
#[derive(Default)]
pub(crate) struct Layout {
    pub(crate) text: String,
    squares: Vec<Rect>,
    images: Vec<(Rect, u32, u32)>,
    last_glyph: Option<LastGlyph>,
}

impl Layout {
    /// Returns the regions that may hold a code, at the scale each needs.
    pub(crate) fn regions(&self, min_module_pixels: f64) -> Vec<Region> {
        let mut regions = square_clusters(&self.squares, min_module_pixels);
        for (rect, width, height) in &self.images {
            if *width < MIN_IMAGE_SIDE || *height < MIN_IMAGE_SIDE || rect.width() < 1.0 {
                continue;
            }
            let scale = f64::from(*width) / rect.width();
            let margin = rect.width().max(rect.height()) * 0.05;
            regions.push(Region {
                rect: rect.inflate(margin, margin),
                scale,
            });
        }
        regions
    }

    fn record_fill(&mut self, path: &BezPath, transform: Affine) {
        let mut points: Vec<Point> = Vec::with_capacity(5);
        let mut only_lines = true;
        for element in path.elements() {
            match *element {
                PathEl::MoveTo(point) => {
                    self.record_subpath(&points, only_lines);
                    points.clear();
                    only_lines = true;
                    points.push(transform * point);
                }
                PathEl::LineTo(point) => points.push(transform * point),
                PathEl::QuadTo(_, point) | PathEl::CurveTo(_, _, point) => {
                    only_lines = false;
                    points.push(transform * point);
                }
                PathEl::ClosePath => {}
            }
        }
        self.record_subpath(&points, only_lines);
    }

    /// Records a subpath that is an axis-aligned rectangle of module size.
    fn record_subpath(&mut self, points: &[Point], only_lines: bool) {
        if !only_lines || !(4..=5).contains(&points.len()) || self.squares.len() >= MAX_SQUARES {
            return;
        }
        let axis_aligned = points.windows(2).all(|pair| {
            (pair[0].x - pair[1].x).abs() < 1e-3 || (pair[0].y - pair[1].y).abs() < 1e-3
        });
        if !axis_aligned {
            return;
        }
        let mut rect = Rect::from_points(points[0], points[0]);
        for point in &points[1..] {
            rect = rect.union_pt(*point);
        }
        let side = rect.width().min(rect.height());
        if (MIN_MODULE_POINTS..=MAX_MODULE_POINTS).contains(&side) {
            self.squares.push(rect);
        }
    }

    fn record_glyphs(&mut self, run: &GlyphRun<'_, '_>, transform: Affine) {
        for glyph in run.glyphs() {
            if self.text.len() >= MAX_PAGE_TEXT {
                return;
            }
            // Glyph space has 1,000 units to the em.
            let placed = transform * glyph.transform();
            let origin = placed * Point::ORIGIN;
            let em = placed.determinant().abs().sqrt() * 1000.0;
            // A glyph off the last one's line starts a line. A gap of more
            // than a sixth of an em after the last glyph's advance, or a
            // step back, separates words.
            if let Some(last) = self.last_glyph {
                let line_height = last.em.max(em);
                if (origin.y - last.end.y).abs() > line_height * 0.5 {
                    self.text.push('\n');
                } else if origin.x < last.end.x - line_height * 0.5
                    || origin.x - last.end.x > line_height / 6.0
                {
                    self.text.push(' ');
                }
            }
            let advance = match &**glyph {
                Glyph::Outline(outline) => outline.advance_width(),
                Glyph::Type3(type3) => type3.advance_width(),
            }
            .map_or(500.0, f64::from);
            self.last_glyph = Some(LastGlyph {
                end: placed * Point::new(advance, 0.0),
                em,
            });
            match glyph.as_unicode() {
                Some(BfString::Char(c)) => self.text.push(c),
                Some(BfString::String(text)) => self.text.push_str(&text),
                None => {}
            }
        }
    }
}

/// The end point and size of the last glyph shown.
#[derive(Clone, Copy)]
struct LastGlyph {
    end: Point,
    em: f64,
}

impl<'a> Device<'a> for Layout {
    fn draw_path(&mut self, path: &BezPath, props: DrawProps<'a>, draw_mode: &DrawMode) {
        if matches!(draw_mode, DrawMode::Fill(_) | DrawMode::FillAndStroke(..)) {
            self.record_fill(path, props.transform);
        }
    }

    fn draw_rect(&mut self, rect: &Rect, props: DrawProps<'a>, draw_mode: &DrawMode) {
        if matches!(draw_mode, DrawMode::Fill(_) | DrawMode::FillAndStroke(..)) {
            let corners = [
                Point::new(rect.x0, rect.y0),
                Point::new(rect.x1, rect.y0),
                Point::new(rect.x1, rect.y1),
                Point::new(rect.x0, rect.y1),
            ]
            .map(|corner| props.transform * corner);
            self.record_subpath(&corners, true);
        }
    }

    fn push_clip_path(&mut self, _: &ClipPath) {}

    fn push_transparency_group(&mut self, _: f32, _: Option<SoftMask<'a>>, _: BlendMode) {}

    fn draw_glyph_run(
        &mut self,
        glyph_run: &GlyphRun<'_, 'a>,
        props: DrawProps<'a>,
        _draw_mode: &DrawMode,
    ) {
        self.record_glyphs(glyph_run, props.transform);
    }

    fn draw_image(&mut self, image: Image<'a, '_>, props: ImageDrawProps<'a>) {
        let bounds = props
            .transform
            .transform_rect_bbox(Rect::new(0.0, 0.0, 1.0, 1.0));
        self.images.push((bounds, image.width(), image.height()));
    }

    fn pop_clip(&mut self) {}

    fn pop_transparency_group(&mut self) {}
}
