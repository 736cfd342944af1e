//! Pages and regions of pages rasterised with hayro into greyscale buffers.

use hayro::hayro_interpret::InterpreterSettings;
use hayro::hayro_interpret::util::TransformExt;
use hayro::hayro_syntax::page::Page;
use hayro::kurbo::{Affine, Rect};
use hayro::vello_cpu::color::palette::css::WHITE;
use hayro::vello_cpu::{Pixmap, RasterizerSettings, RenderContext, Resources, TargetInit};
use hayro::{RenderCache, RenderSettings};

/// Largest side of a render: hayro's pixmaps count pixels in `u16`.
const MAX_SIDE: f64 = 65_535.0;

/// A greyscale raster.
pub(crate) struct Raster {
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) luma: Vec<u8>,
}

/// Renders `area` of a page (in points from its top-left corner) at `scale`
/// pixels per point, on white.
pub(crate) fn render<'a>(
    page: &'a Page<'a>,
    cache: &RenderCache<'a>,
    settings: &InterpreterSettings,
    area: Rect,
    scale: f64,
) -> Option<Raster> {
    let width = (area.width() * scale).round();
    let height = (area.height() * scale).round();
    if !(1.0..=MAX_SIDE).contains(&width) || !(1.0..=MAX_SIDE).contains(&height) {
        return None;
    }
    let mut context = RenderContext::new(width as u16, height as u16);
    let transform = Affine::scale(scale)
        * Affine::translate((-area.x0, -area.y0))
        * page.initial_transform(true).to_kurbo();
    hayro::render_into(
        page,
        cache,
        settings,
        &RenderSettings::default(),
        &mut context,
        transform,
    );
    context.flush();
    let mut pixmap = Pixmap::new(context.width(), context.height());
    context.render_with(
        &mut pixmap,
        &mut Resources::default(),
        RasterizerSettings {
            target_init: TargetInit::Clear(WHITE),
            ..Default::default()
        },
    );
    Some(Raster {
        width: u32::from(pixmap.width()),
        height: u32::from(pixmap.height()),
        luma: luma(pixmap.data_as_u8_slice()),
    })
}

/// Converts opaque RGBA to luma with the ITU-R BT.601 weights.
fn luma(rgba: &[u8]) -> Vec<u8> {
    rgba.chunks_exact(4)
        .map(|pixel| {
            let sum =
                299 * u32::from(pixel[0]) + 587 * u32::from(pixel[1]) + 114 * u32::from(pixel[2]);
            (sum / 1000) as u8
        })
        .collect()
}
