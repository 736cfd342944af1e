//! Codes drawn in bodies and HTML documents without one image of their own:
//! inline SVG, tables and CSS grids, block characters, and neighbouring
//! images that only form a code together.
//!
//! Each check starts with a scan for the markers such a drawing needs
//! (`<svg`, many `<td`, a CSS grid, block characters, two images), so a
//! message without them costs a few memory scans.

use gatehouse_message::{Body, BodyKind, Message};
use gatehouse_qr::ImageMosaic;

use super::codes::{Decoding, Technique};
use super::{Content, collect_artifact};
use crate::engine::Limits;

/// Looks for drawn codes in one body.
pub(super) fn body(
    body: &Body,
    message: &Message,
    limits: &Limits,
    decoding: &mut Decoding,
    content: &mut Content,
) {
    match body.kind {
        BodyKind::Plain => {
            if gatehouse_qr::has_block_characters(&body.text) {
                for grid in gatehouse_qr::block_grids(body.text.lines(), false) {
                    let codes = grid.decode(&limits.qr);
                    decoding.record(&codes, &body.location, Technique::BlockCharacters, content);
                }
            }
        }
        BodyKind::Html => {
            inline_svgs(&body.text, &body.location, limits, decoding, content);
            html(
                &body.text,
                &body.location,
                Some(message),
                limits,
                decoding,
                content,
            );
        }
    }
}

/// Unpacks each `<svg>` written inline in an HTML body, for its images and drawn squares.
fn inline_svgs(
    html: &str,
    location: &str,
    limits: &Limits,
    decoding: &mut Decoding,
    content: &mut Content,
) {
    let bytes = html.as_bytes();
    if memchr::memmem::find(bytes, b"<svg").is_none()
        && memchr::memmem::find(bytes, b"<SVG").is_none()
    {
        return;
    }
    for (index, svg) in gatehouse_unpack::inline_svgs(html).into_iter().enumerate() {
        let svg_location = format!("{location} › svg #{}", index + 1);
        let artifact = gatehouse_unpack::unpack(&svg_location, svg.as_bytes(), &limits.unpack);
        for nested in artifact.walk() {
            collect_artifact(nested, limits, decoding, content);
        }
    }
}

/// Looks for codes drawn by HTML: grids of cells, block characters, and
/// image mosaics. `message` resolves `cid:` images; without it (an HTML
/// attachment) only `data:` images can be joined.
pub(super) fn html(
    html: &str,
    location: &str,
    message: Option<&Message>,
    limits: &Limits,
    decoding: &mut Decoding,
    content: &mut Content,
) {
    if !gatehouse_qr::may_draw_code(html) {
        return;
    }
    let drawings = gatehouse_qr::drawings(html);
    for grid in &drawings.grids {
        let codes = grid.decode(&limits.qr);
        decoding.record(&codes, location, Technique::HtmlGrid, content);
    }
    for grid in &drawings.block_grids {
        let codes = grid.decode(&limits.qr);
        decoding.record(&codes, location, Technique::BlockCharacters, content);
    }
    for mosaic in &drawings.mosaics {
        mosaic_codes(mosaic, location, message, limits, decoding, content);
    }
}

/// Joins the images of a mosaic and decodes them, when every piece is
/// available and no piece contains a code of its own.
fn mosaic_codes(
    mosaic: &ImageMosaic,
    location: &str,
    message: Option<&Message>,
    limits: &Limits,
    decoding: &mut Decoding,
    content: &mut Content,
) {
    let mut rows: Vec<Vec<Vec<u8>>> = Vec::with_capacity(mosaic.rows.len());
    for row in &mosaic.rows {
        let mut pieces = Vec::with_capacity(row.len());
        for source in row {
            // An image from the network is never fetched, so the mosaic is incomplete.
            let Some(bytes) = image_bytes(source, message) else {
                return;
            };
            pieces.push(bytes);
        }
        rows.push(pieces);
    }
    let alone = rows
        .iter()
        .flatten()
        .any(|piece| gatehouse_qr::decode(piece, &limits.qr).is_ok_and(|codes| !codes.is_empty()));
    if alone {
        return;
    }
    let borrowed: Vec<Vec<&[u8]>> = rows
        .iter()
        .map(|row| row.iter().map(Vec::as_slice).collect())
        .collect();
    let count: usize = borrowed.iter().map(Vec::len).sum();
    let mosaic_location = format!("{location} › {count} joined images");
    if let Ok(decoded) = gatehouse_qr::decode_stitched(&borrowed, &limits.qr) {
        decoding.record(
            &decoded.codes,
            &mosaic_location,
            Technique::SplitImages,
            content,
        );
    }
}

/// Returns the bytes of an image source: a `data:` URI, or a `cid:` part of the message.
fn image_bytes(source: &str, message: Option<&Message>) -> Option<Vec<u8>> {
    let source = source.trim();
    if source.len() > 5 && source[..5].eq_ignore_ascii_case("data:") {
        return gatehouse_unpack::data_uri_bytes(source);
    }
    let content_id = source
        .get(..4)
        .filter(|scheme| scheme.eq_ignore_ascii_case("cid:"))
        .map(|_| &source[4..])?;
    let content_id = content_id.trim_matches(|c| c == '<' || c == '>');
    message?
        .parts
        .iter()
        .find(|part| {
            part.content_id
                .as_deref()
                .is_some_and(|id| id.eq_ignore_ascii_case(content_id))
        })
        .map(|part| part.data.clone())
}
