//! PDF documents: links, actions, embedded files, page text and page renders.
//!
//! The steps, each bounded by [`Limits`](crate::Limits):
//! 1. `guard` bounds what the streams decode to from the raw bytes, before
//!    hayro reads anything, because hayro decodes streams without a limit.
//! 2. hayro-syntax opens the document; one that needs a password is
//!    unscannable, one encrypted with an empty user password is read and flagged.
//! 3. `actions` reads every object: URI, SubmitForm and remote GoTo targets,
//!    Launch and JavaScript actions (active content) and embedded files,
//!    which are unpacked as children.
//! 4. For each page up to `max_pdf_pages`, `layout` collects the text (for
//!    URLs written on the page) and the regions that look like a code. Then
//!    `render` rasterises the page at `render_scale`, and each region at the
//!    scale that shows its modules `min_module_pixels` wide. The renders go
//!    to the QR stage through [`Artifact::renders`].

mod actions;
mod guard;
mod layout;
mod render;

use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Instant;

use hayro::RenderCache;
use hayro::hayro_interpret::util::TransformExt;
use hayro::hayro_interpret::{Context, InterpreterCache, InterpreterSettings, interpret_page};
use hayro::hayro_syntax::page::Page;
use hayro::hayro_syntax::{LoadPdfError, Pdf};
use hayro::kurbo::Rect;

use crate::ooxml::urls_in_text;
use crate::walker::Walker;
use crate::{Artifact, FindingKind, FoundUrl, Render, RenderScope, UrlKind};

/// A region is rendered on its own only when it needs this many times the page's scale.
const REGION_GAIN: f64 = 1.25;

/// Unpacks one PDF into `artifact`.
pub(crate) fn unpack(walker: &mut Walker<'_>, artifact: &mut Artifact, data: &[u8], depth: usize) {
    let started = Instant::now();
    let limits = walker.limits;

    let survey = guard::survey(data, limits.max_pdf_decoded_bytes);
    if survey.decoded_bound > limits.max_pdf_decoded_bytes {
        let detail = format!(
            "PDF streams decode to more than {} bytes (max_pdf_decoded_bytes); the document was not opened, only its raw /URI strings were read",
            limits.max_pdf_decoded_bytes
        );
        walker.finding(artifact, FindingKind::Unscannable, "", detail);
        push_raw_uris(walker, artifact, data);
        return;
    }

    let opened = panic::catch_unwind(|| Pdf::new(Arc::new(data.to_vec())));
    let pdf = match opened {
        Ok(Ok(pdf)) => pdf,
        Ok(Err(LoadPdfError::Decryption(error))) => {
            let detail = format!(
                "PDF is encrypted and cannot be read without a password ({error:?}); its pages and links were not read"
            );
            walker.finding(artifact, FindingKind::Unscannable, "", detail);
            return;
        }
        Ok(Err(LoadPdfError::Invalid)) => {
            let detail = "PDF could not be parsed; only its raw /URI strings were read".to_owned();
            walker.finding(artifact, FindingKind::Unscannable, "", detail);
            push_raw_uris(walker, artifact, data);
            return;
        }
        Err(payload) => {
            let detail = format!(
                "PDF reader panicked ({}); only raw /URI strings were read",
                panic_text(payload.as_ref())
            );
            walker.finding(artifact, FindingKind::Unscannable, "", detail);
            push_raw_uris(walker, artifact, data);
            return;
        }
    };

    if survey.encrypted {
        if survey.opaque_streams > 0 {
            let bound = guarded(|| guard::decrypted_bound(&pdf, limits.max_pdf_decoded_bytes));
            if bound.is_none_or(|bound| bound > limits.max_pdf_decoded_bytes) {
                let detail = format!(
                    "encrypted PDF streams decode to more than {} bytes (max_pdf_decoded_bytes); the document was not read",
                    limits.max_pdf_decoded_bytes
                );
                walker.finding(artifact, FindingKind::Unscannable, "", detail);
                return;
            }
        }
        walker.finding(
            artifact,
            FindingKind::Encrypted,
            "",
            "PDF is encrypted with an empty user password, so it opens without one; it was read"
                .to_owned(),
        );
    }

    read_actions(walker, artifact, &pdf, depth);
    if survey.max_image_pixels > limits.max_pdf_image_pixels {
        let detail = format!(
            "an image declares {} pixels, more than {} (max_pdf_image_pixels); pages were not rendered",
            survey.max_image_pixels, limits.max_pdf_image_pixels
        );
        walker.finding(artifact, FindingKind::Unscannable, "", detail);
        return;
    }
    read_pages(walker, artifact, &pdf, started);
}

/// Records links, active content and embedded files from the document's objects.
fn read_actions(walker: &mut Walker<'_>, artifact: &mut Artifact, pdf: &Pdf, depth: usize) {
    let limits = walker.limits;
    let budget = walker.budget.remaining();
    let Some(actions) = guarded(|| actions::scan(pdf, limits.max_pdf_objects, budget)) else {
        let detail = "PDF reader panicked while reading objects; actions and links may be missing"
            .to_owned();
        walker.finding(artifact, FindingKind::Unscannable, "", detail);
        return;
    };

    let location = artifact.location.clone();
    for (url, kind) in actions.urls {
        push_url(walker, artifact, url, kind, location.clone());
    }
    for url in urls_in_text(&actions.scripts) {
        push_url(
            walker,
            artifact,
            url.to_owned(),
            UrlKind::Text,
            location.clone(),
        );
    }
    for (description, count) in actions.active {
        let detail = if count > 1 {
            format!("{description} and {} more of this kind", count - 1)
        } else {
            description
        };
        walker.finding(artifact, FindingKind::ActiveContent, "", detail);
    }
    if actions.truncated {
        let detail = format!(
            "PDF has more objects than {} (max_pdf_objects); the rest were not read for actions and links",
            limits.max_pdf_objects
        );
        walker.finding(artifact, FindingKind::Unscannable, "", detail);
    }
    for (name, data) in actions.embedded {
        walker.budget.spend(data.len() as u64);
        let child_location = walker.join(&artifact.location, &name);
        let child = walker.file(&child_location, &name, &data, depth + 1, true);
        artifact.children.push(child);
    }
}

/// Reads the text of each page and renders it, within the page, time and pixel limits.
fn read_pages(walker: &mut Walker<'_>, artifact: &mut Artifact, pdf: &Pdf, started: Instant) {
    let limits = walker.limits;
    let pages = pdf.pages();
    if pages.len() > limits.max_pdf_pages {
        let detail = format!(
            "PDF has {} pages; only the first {} were read and rendered (max_pdf_pages)",
            pages.len(),
            limits.max_pdf_pages
        );
        walker.finding(artifact, FindingKind::Unscannable, "", detail);
    }

    let settings = InterpreterSettings::default();
    let cache = RenderCache::new();
    let mut pixels_left = limits.max_total_render_pixels;
    for (index, page) in pages.iter().take(limits.max_pdf_pages).enumerate() {
        let part = format!("page {}", index + 1);
        if out_of_time(walker, artifact, started, &part) {
            return;
        }
        let Some(layout) = guarded(|| page_layout(page, &settings)) else {
            let detail = "PDF reader panicked while reading the page".to_owned();
            walker.finding(artifact, FindingKind::Unscannable, &part, detail);
            continue;
        };
        let location = walker.join(&artifact.location, &part);
        push_page_text(walker, artifact, &layout.text, &location);

        let (width, height) = page.render_dimensions();
        let page_area = Rect::new(0.0, 0.0, f64::from(width), f64::from(height));
        let page_scale = fitted_scale(
            page_area,
            f64::from(limits.render_scale),
            limits.max_render_pixels,
        );
        let mut plans = vec![(page_area, page_scale, RenderScope::Page)];
        for region in layout.regions(f64::from(limits.min_module_pixels)) {
            let area = region.rect.intersect(page_area);
            let requested = region.scale.min(f64::from(limits.max_render_scale));
            let scale = fitted_scale(area, requested, limits.max_render_pixels);
            if area.area() > 0.0 && scale > page_scale * REGION_GAIN {
                plans.push((area, scale, RenderScope::Region));
            }
        }

        for (area, scale, scope) in plans {
            if out_of_time(walker, artifact, started, &part) {
                return;
            }
            let pixels = (area.width() * scale * area.height() * scale) as u64;
            if pixels > pixels_left {
                let detail = format!(
                    "renders of this PDF passed {} pixels (max_total_render_pixels); the rest were not rendered",
                    limits.max_total_render_pixels
                );
                walker.finding(artifact, FindingKind::Unscannable, &part, detail);
                return;
            }
            pixels_left -= pixels;
            let raster = guarded(|| render::render(page, &cache, &settings, area, scale));
            match raster {
                Some(Some(raster)) => artifact.renders.push(Render {
                    location: location.clone(),
                    width: raster.width,
                    height: raster.height,
                    luma: raster.luma,
                    scope,
                }),
                Some(None) => {}
                None => {
                    let detail = "PDF renderer panicked on the page".to_owned();
                    walker.finding(artifact, FindingKind::Unscannable, &part, detail);
                }
            }
        }
    }
}

/// Runs the layout pass over one page, in points from its top-left corner.
fn page_layout(page: &Page<'_>, settings: &InterpreterSettings) -> layout::Layout {
    let cache = InterpreterCache::new();
    let (width, height) = page.render_dimensions();
    let bounds = Rect::new(0.0, 0.0, f64::from(width), f64::from(height));
    let mut context = Context::new(
        page.initial_transform(true).to_kurbo(),
        bounds,
        &cache,
        page.xref(),
        settings.clone(),
    );
    let mut layout = layout::Layout::default();
    interpret_page(page, &mut context, &mut layout);
    layout
}

/// Lowers `scale` until a render of `area` fits in `max_pixels`.
fn fitted_scale(area: Rect, scale: f64, max_pixels: u64) -> f64 {
    let pixels = area.area() * scale * scale;
    if pixels <= max_pixels as f64 || pixels <= 0.0 {
        return scale;
    }
    scale * (max_pixels as f64 / pixels).sqrt()
}

fn out_of_time(walker: &Walker<'_>, artifact: &mut Artifact, started: Instant, part: &str) -> bool {
    let limit = walker.limits.max_pdf_millis;
    if started.elapsed().as_millis() <= u128::from(limit) {
        return false;
    }
    let detail = format!(
        "PDF took more than {limit} ms (max_pdf_millis); it was read up to {part}, and the rest was not"
    );
    walker.finding(artifact, FindingKind::Unscannable, "", detail);
    true
}

fn push_page_text(walker: &Walker<'_>, artifact: &mut Artifact, text: &str, location: &str) {
    let text = text.trim();
    if text.is_empty() {
        return;
    }
    for url in urls_in_text(text) {
        push_url(
            walker,
            artifact,
            url.to_owned(),
            UrlKind::Text,
            location.to_owned(),
        );
    }
    let room = walker
        .limits
        .max_text_chars
        .saturating_sub(artifact.text.chars().count());
    if room > 1 {
        if !artifact.text.is_empty() {
            artifact.text.push('\n');
        }
        artifact.text.extend(text.chars().take(room - 1));
    }
}

fn push_raw_uris(walker: &Walker<'_>, artifact: &mut Artifact, data: &[u8]) {
    let location = artifact.location.clone();
    for url in actions::raw_uris(data, walker.limits.max_urls) {
        push_url(walker, artifact, url, UrlKind::Hyperlink, location.clone());
    }
}

fn push_url(
    walker: &Walker<'_>,
    artifact: &mut Artifact,
    url: String,
    kind: UrlKind,
    location: String,
) {
    if artifact.urls.len() >= walker.limits.max_urls
        || artifact.urls.iter().any(|known| known.url == url)
    {
        return;
    }
    artifact.urls.push(FoundUrl {
        url,
        kind,
        location,
    });
}

/// Runs PDF reading or rendering, returning `None` when hayro panicked.
///
/// NOTE: hayro 0.9 is young and reads hostile input. A panic in it must not
/// take the engine down, so each call into it is caught here.
fn guarded<T>(work: impl FnOnce() -> T) -> Option<T> {
    panic::catch_unwind(AssertUnwindSafe(work)).ok()
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "panic with a non-text payload".to_owned()
    }
}
