//! SVG images: scripts, links, embedded raster images and codes drawn as squares.
//!
//! An SVG is a document that a browser runs: `<script>` and `on…` event
//! attributes are active content. `<image>` elements carry raster images as
//! `data:` URIs, which become child artifacts for the QR stage. A code drawn
//! as vector squares (`<rect>` elements, or a path of square subpaths or of
//! stroked one-module lines, as QR generators write them) is rasterised here.

use base64::Engine;
use hayro::kurbo::Rect;
use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use crate::squares::square_clusters;
use crate::walker::Walker;
use crate::{Artifact, FindingKind, FoundUrl, Render, RenderScope, UrlKind};

/// Most filled squares collected from one SVG.
const MAX_SQUARES: usize = 200_000;
/// Most path data read from one `d` attribute, in bytes.
const MAX_PATH_BYTES: usize = 4 * 1024 * 1024;

/// An axis-aligned transform: `x' = scale_x × x + translate_x`.
#[derive(Debug, Clone, Copy)]
struct Transform {
    scale_x: f64,
    scale_y: f64,
    translate_x: f64,
    translate_y: f64,
}

impl Transform {
    const IDENTITY: Transform = Transform {
        scale_x: 1.0,
        scale_y: 1.0,
        translate_x: 0.0,
        translate_y: 0.0,
    };

    /// Applies `inner` first, then `self`.
    fn then(self, inner: Transform) -> Transform {
        Transform {
            scale_x: self.scale_x * inner.scale_x,
            scale_y: self.scale_y * inner.scale_y,
            translate_x: self.scale_x * inner.translate_x + self.translate_x,
            translate_y: self.scale_y * inner.translate_y + self.translate_y,
        }
    }

    fn rect(self, rect: Rect) -> Rect {
        Rect::new(
            rect.x0 * self.scale_x + self.translate_x,
            rect.y0 * self.scale_y + self.translate_y,
            rect.x1 * self.scale_x + self.translate_x,
            rect.y1 * self.scale_y + self.translate_y,
        )
        .abs()
    }
}

/// Paint inherited from enclosing groups.
#[derive(Debug, Clone, Copy)]
struct Paint {
    /// Whether the fill is dark; SVG fills black by default.
    fill_dark: bool,
    /// Whether a dark stroke is set.
    stroke_dark: bool,
    stroke_width: f64,
    transform: Transform,
}

/// Unpacks one SVG into `artifact`.
pub(crate) fn unpack(walker: &mut Walker<'_>, artifact: &mut Artifact, data: &[u8], depth: usize) {
    if data.len() as u64 > walker.limits.max_xml_bytes {
        let detail = format!(
            "SVG of {} bytes was not parsed: the limit is {} bytes (max_xml_bytes)",
            data.len(),
            walker.limits.max_xml_bytes
        );
        walker.finding(artifact, FindingKind::Unscannable, "", detail);
        return;
    }
    let mut reader = Reader::from_reader(data);
    reader.config_mut().check_end_names = false;
    let mut buffer = Vec::new();
    let mut stack: Vec<Paint> = vec![Paint {
        fill_dark: true,
        stroke_dark: false,
        stroke_width: 1.0,
        transform: Transform::IDENTITY,
    }];
    let mut squares: Vec<Rect> = Vec::new();
    let mut scripts = 0usize;
    let mut handlers = 0usize;
    let mut images: Vec<Vec<u8>> = Vec::new();

    loop {
        let event = match reader.read_event_into(&mut buffer) {
            Ok(event) => event,
            Err(error) => {
                let detail =
                    format!("SVG is not well-formed XML ({error}); what came before was kept");
                walker.finding(artifact, FindingKind::Unscannable, "", detail);
                break;
            }
        };
        let (element, is_empty) = match &event {
            Event::Start(element) => (element, false),
            Event::Empty(element) => (element, true),
            Event::End(_) => {
                if stack.len() > 1 {
                    stack.pop();
                }
                buffer.clear();
                continue;
            }
            Event::Eof => break,
            _ => {
                buffer.clear();
                continue;
            }
        };

        let parent = *stack.last().unwrap_or(&Paint {
            fill_dark: true,
            stroke_dark: false,
            stroke_width: 1.0,
            transform: Transform::IDENTITY,
        });
        let paint = paint_of(element, parent);
        let name = element.local_name().as_ref().to_ascii_lowercase();
        handlers += element
            .attributes()
            .with_checks(false)
            .flatten()
            .filter(|attribute| {
                attribute
                    .key
                    .local_name()
                    .as_ref()
                    .to_ascii_lowercase()
                    .starts_with("on")
            })
            .count();
        match name.as_str() {
            "script" => scripts += 1,
            "a" => {
                if let Some(href) = href(element) {
                    push_url(walker, artifact, href, UrlKind::Hyperlink);
                }
            }
            "image" | "feimage" => {
                if let Some(href) = href(element) {
                    match data_uri_bytes(&href) {
                        Some(bytes) => images.push(bytes),
                        None if href.starts_with("http") => {
                            push_url(walker, artifact, href, UrlKind::ExternalResource)
                        }
                        None => {}
                    }
                }
            }
            "rect" if paint.fill_dark => {
                let number = |name: &str| attribute(element, name).and_then(|value| length(&value));
                if let (Some(width), Some(height)) = (number("width"), number("height")) {
                    let x = number("x").unwrap_or(0.0);
                    let y = number("y").unwrap_or(0.0);
                    let rect = paint.transform.rect(Rect::new(x, y, x + width, y + height));
                    if squares.len() < MAX_SQUARES {
                        squares.push(rect);
                    }
                }
            }
            "path" => {
                if let Some(d) = attribute(element, "d") {
                    path_squares(&d, paint, &mut squares);
                }
            }
            _ => {}
        }
        if !is_empty {
            stack.push(paint);
        }
        buffer.clear();
    }

    if scripts > 0 || handlers > 0 {
        let detail = format!(
            "SVG runs script: {scripts} <script> elements and {handlers} event-handler attributes"
        );
        walker.finding(artifact, FindingKind::ActiveContent, "", detail);
    }
    for (index, bytes) in images.into_iter().enumerate() {
        let part = format!("image {}", index + 1);
        let location = walker.join(&artifact.location, &part);
        let child = walker.file(&location, &part, &bytes, depth + 1, false);
        artifact.children.push(child);
    }
    render_squares(walker, artifact, &squares);
}

/// Rasterises each cluster of dark squares that looks like a code.
fn render_squares(walker: &Walker<'_>, artifact: &mut Artifact, squares: &[Rect]) {
    let limits = walker.limits;
    let mut pixels_left = limits.max_total_render_pixels;
    for region in square_clusters(squares, f64::from(limits.min_module_pixels)) {
        let scale = region.scale.min(f64::from(limits.max_render_scale));
        let area = region.rect;
        let width = (area.width() * scale).ceil() as usize;
        let height = (area.height() * scale).ceil() as usize;
        let pixels = (width * height) as u64;
        if width == 0 || height == 0 || pixels > limits.max_render_pixels || pixels > pixels_left {
            let detail = format!(
                "a drawn code of {width}x{height} pixels was not rendered (max_render_pixels {})",
                limits.max_render_pixels
            );
            walker.finding(artifact, FindingKind::Unscannable, "", detail);
            continue;
        }
        pixels_left -= pixels;
        let mut luma = vec![255u8; width * height];
        for square in squares {
            let inside = square.intersect(area);
            if inside.area() <= 0.0 {
                continue;
            }
            let x0 = ((inside.x0 - area.x0) * scale).round().max(0.0) as usize;
            let x1 = (((inside.x1 - area.x0) * scale).round() as usize).min(width);
            let y0 = ((inside.y0 - area.y0) * scale).round().max(0.0) as usize;
            let y1 = (((inside.y1 - area.y0) * scale).round() as usize).min(height);
            for y in y0..y1 {
                luma[y * width + x0.min(x1)..y * width + x1].fill(0);
            }
        }
        artifact.renders.push(Render {
            location: artifact.location.clone(),
            width: width as u32,
            height: height as u32,
            luma,
            scope: RenderScope::Region,
        });
    }
}

fn push_url(walker: &Walker<'_>, artifact: &mut Artifact, url: String, kind: UrlKind) {
    if artifact.urls.len() >= walker.limits.max_urls
        || artifact.urls.iter().any(|known| known.url == url)
    {
        return;
    }
    artifact.urls.push(FoundUrl {
        url,
        kind,
        location: artifact.location.clone(),
    });
}

fn attribute(element: &BytesStart<'_>, local_name: &str) -> Option<String> {
    element
        .attributes()
        .with_checks(false)
        .flatten()
        .find(|attribute| {
            attribute
                .key
                .local_name()
                .as_ref()
                .eq_ignore_ascii_case(local_name)
        })
        .map(|attribute| attribute.value.clone().into_owned())
}

/// `href` (SVG 2) or `xlink:href` (SVG 1.1): both have the local name `href`.
fn href(element: &BytesStart<'_>) -> Option<String> {
    attribute(element, "href")
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

/// Decodes a `data:…;base64,` URI; padding may be missing and whitespace may break the data.
pub fn data_uri_bytes(uri: &str) -> Option<Vec<u8>> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

    let rest = uri.trim().strip_prefix("data:")?;
    let (header, data) = rest.split_once(',')?;
    if !header.to_ascii_lowercase().ends_with(";base64") {
        return None;
    }
    let cleaned: String = data.chars().filter(|c| !c.is_whitespace()).collect();
    let engine = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    engine.decode(cleaned).ok()
}

/// Reads an SVG length in user units (`12`, `12.5px`); other units are not converted.
fn length(value: &str) -> Option<f64> {
    let value = value.trim().trim_end_matches("px");
    value
        .parse::<f64>()
        .ok()
        .filter(|number| number.is_finite())
}

/// Returns the paint of an element from its attributes and `style`, over its parent's.
fn paint_of(element: &BytesStart<'_>, parent: Paint) -> Paint {
    let mut paint = parent;
    let style = attribute(element, "style").unwrap_or_default();
    let property = |name: &str| {
        style
            .split(';')
            .filter_map(|item| item.split_once(':'))
            .find(|(key, _)| key.trim().eq_ignore_ascii_case(name))
            .map(|(_, value)| value.trim().to_owned())
            .or_else(|| attribute(element, name))
    };
    if let Some(fill) = property("fill") {
        paint.fill_dark = is_dark(&fill);
    }
    if let Some(stroke) = property("stroke") {
        paint.stroke_dark = is_dark(&stroke);
    }
    if let Some(width) = property("stroke-width").and_then(|value| length(&value)) {
        paint.stroke_width = width;
    }
    if let Some(transform) =
        attribute(element, "transform").and_then(|value| parse_transform(&value))
    {
        paint.transform = parent.transform.then(transform);
    }
    paint
}

/// Returns whether a paint value is a dark colour (`none`, light colours and unknown values are not).
fn is_dark(value: &str) -> bool {
    let value = value.trim().to_ascii_lowercase();
    let (red, green, blue) = if let Some(hex) = value.strip_prefix('#') {
        let digits: Option<Vec<u32>> = hex.chars().map(|c| c.to_digit(16)).collect();
        match digits.as_deref() {
            Some([r, g, b]) | Some([r, g, b, _]) => (r * 17, g * 17, b * 17),
            Some([r1, r2, g1, g2, b1, b2, ..]) => (r1 * 16 + r2, g1 * 16 + g2, b1 * 16 + b2),
            _ => return false,
        }
    } else if let Some(arguments) = value.strip_prefix("rgb(") {
        let parts: Vec<u32> = arguments
            .trim_end_matches(')')
            .split(',')
            .filter_map(|part| {
                part.trim()
                    .parse::<f32>()
                    .ok()
                    .map(|number| number.clamp(0.0, 255.0) as u32)
            })
            .collect();
        match parts.as_slice() {
            [r, g, b, ..] => (*r, *g, *b),
            _ => return false,
        }
    } else {
        return matches!(
            value.as_str(),
            "black" | "currentcolor" | "navy" | "darkblue" | "darkgreen" | "maroon" | "purple"
        );
    };
    (299 * red + 587 * green + 114 * blue) / 1000 < 128
}

/// Parses `translate`, `scale` and axis-aligned `matrix` transforms; others give `None`.
fn parse_transform(value: &str) -> Option<Transform> {
    let mut result = Transform::IDENTITY;
    for item in value.split(')') {
        let Some((name, arguments)) = item.split_once('(') else {
            continue;
        };
        let numbers: Vec<f64> = arguments
            .split([',', ' '])
            .filter(|part| !part.is_empty())
            .filter_map(|part| part.trim().parse().ok())
            .collect();
        let step = match (name.trim(), numbers.as_slice()) {
            ("translate", [x]) => Transform {
                translate_x: *x,
                ..Transform::IDENTITY
            },
            ("translate", [x, y]) => Transform {
                translate_x: *x,
                translate_y: *y,
                ..Transform::IDENTITY
            },
            ("scale", [factor]) => Transform {
                scale_x: *factor,
                scale_y: *factor,
                ..Transform::IDENTITY
            },
            ("scale", [x, y]) => Transform {
                scale_x: *x,
                scale_y: *y,
                ..Transform::IDENTITY
            },
            ("matrix", [a, 0.0, 0.0, d, e, f]) => Transform {
                scale_x: *a,
                scale_y: *d,
                translate_x: *e,
                translate_y: *f,
            },
            // NOTE: rotations and skews are not followed; a code drawn under one is not found.
            _ => return None,
        };
        result = result.then(step);
    }
    Some(result)
}

/// Collects the squares a path draws: closed axis-aligned subpaths when it
/// is filled dark, and axis-aligned segments widened to the stroke width
/// when it is stroked dark.
fn path_squares(d: &str, paint: Paint, squares: &mut Vec<Rect>) {
    if d.len() > MAX_PATH_BYTES {
        return;
    }
    let mut tokens = PathTokens {
        text: d,
        position: 0,
    };
    let (mut x, mut y) = (0.0f64, 0.0f64);
    let mut subpath: Vec<(f64, f64)> = Vec::new();
    let mut straight = true;
    let mut command = 'M';
    let flush = |points: &mut Vec<(f64, f64)>, straight: bool, squares: &mut Vec<Rect>| {
        if straight && paint.fill_dark && (4..=5).contains(&points.len()) {
            let axis_aligned = points.windows(2).all(|pair| {
                (pair[0].0 - pair[1].0).abs() < 1e-6 || (pair[0].1 - pair[1].1).abs() < 1e-6
            });
            if axis_aligned && squares.len() < MAX_SQUARES {
                let mut rect = Rect::new(points[0].0, points[0].1, points[0].0, points[0].1);
                for point in &points[1..] {
                    rect = rect.union_pt(hayro::kurbo::Point::new(point.0, point.1));
                }
                squares.push(paint.transform.rect(rect));
            }
        }
        points.clear();
    };
    while let Some(token) = tokens.next() {
        let (letter, number) = match token {
            PathToken::Command(letter) => {
                command = letter;
                if letter == 'Z' || letter == 'z' {
                    flush(&mut subpath, straight, squares);
                    straight = true;
                }
                continue;
            }
            PathToken::Number(number) => (command, number),
        };
        let (before_x, before_y) = (x, y);
        match letter {
            'M' | 'm' => {
                flush(&mut subpath, straight, squares);
                straight = true;
                let Some(second) = tokens.number() else { break };
                if letter == 'm' {
                    x += number;
                    y += second;
                } else {
                    x = number;
                    y = second;
                }
                subpath.push((x, y));
                // Further pairs after a move are lines.
                command = if letter == 'm' { 'l' } else { 'L' };
                continue;
            }
            'L' | 'l' => {
                let Some(second) = tokens.number() else { break };
                if letter == 'l' {
                    x += number;
                    y += second;
                } else {
                    x = number;
                    y = second;
                }
            }
            'H' => x = number,
            'h' => x += number,
            'V' => y = number,
            'v' => y += number,
            _ => {
                // Curves and arcs: the subpath is not a square.
                straight = false;
                continue;
            }
        }
        subpath.push((x, y));
        if paint.stroke_dark && squares.len() < MAX_SQUARES {
            let half = paint.stroke_width / 2.0;
            let segment = Rect::new(before_x, before_y, x, y).abs();
            if (before_y - y).abs() < 1e-6 && (before_x - x).abs() > 1e-6 {
                squares.push(paint.transform.rect(segment.inflate(0.0, half)));
            } else if (before_x - x).abs() < 1e-6 && (before_y - y).abs() > 1e-6 {
                squares.push(paint.transform.rect(segment.inflate(half, 0.0)));
            }
        }
    }
    flush(&mut subpath, straight, squares);
}

enum PathToken {
    Command(char),
    Number(f64),
}

/// Splits SVG path data into command letters and numbers (`-`, `.` and
/// exponents start or continue numbers as the SVG grammar allows).
struct PathTokens<'a> {
    text: &'a str,
    position: usize,
}

impl PathTokens<'_> {
    fn next(&mut self) -> Option<PathToken> {
        let bytes = self.text.as_bytes();
        while self.position < bytes.len()
            && (bytes[self.position].is_ascii_whitespace() || bytes[self.position] == b',')
        {
            self.position += 1;
        }
        let &first = bytes.get(self.position)?;
        if first.is_ascii_alphabetic() && first != b'e' && first != b'E' {
            self.position += 1;
            return Some(PathToken::Command(char::from(first)));
        }
        let start = self.position;
        let mut seen_dot = false;
        let mut seen_exponent = false;
        let mut end = start;
        while end < bytes.len() {
            let byte = bytes[end];
            let sign_allowed = end == start || matches!(bytes[end - 1], b'e' | b'E');
            match byte {
                b'0'..=b'9' => {}
                b'+' | b'-' if sign_allowed => {}
                b'.' if !seen_dot && !seen_exponent => seen_dot = true,
                b'e' | b'E' if !seen_exponent && end > start => seen_exponent = true,
                _ => break,
            }
            end += 1;
        }
        if end == start {
            // An unknown character: skip it.
            self.position += 1;
            return self.next();
        }
        self.position = end;
        Some(
            self.text[start..end]
                .parse::<f64>()
                .map_or(PathToken::Command('?'), PathToken::Number),
        )
    }

    fn number(&mut self) -> Option<f64> {
        match self.next()? {
            PathToken::Number(number) => Some(number),
            PathToken::Command(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn squares_of(d: &str, stroke: bool) -> Vec<Rect> {
        let paint = Paint {
            fill_dark: !stroke,
            stroke_dark: stroke,
            stroke_width: 1.0,
            transform: Transform::IDENTITY,
        };
        let mut squares = Vec::new();
        path_squares(d, paint, &mut squares);
        squares
    }

    #[test]
    fn filled_path_of_squares() {
        let squares = squares_of("M4 4h1v1H4V4zM6 4h2v1h-2z", false);
        assert_eq!(
            squares,
            vec![Rect::new(4.0, 4.0, 5.0, 5.0), Rect::new(6.0, 4.0, 8.0, 5.0)]
        );
    }

    #[test]
    fn stroked_lines_become_runs() {
        let squares = squares_of("M4 4.5h7m4 0h1", true);
        assert_eq!(
            squares,
            vec![
                Rect::new(4.0, 4.0, 11.0, 5.0),
                Rect::new(15.0, 4.0, 16.0, 5.0)
            ]
        );
    }

    #[test]
    fn transforms_compose() {
        let transform = parse_transform("translate(10,20) scale(2)").expect("axis-aligned");
        assert_eq!(
            transform.rect(Rect::new(1.0, 1.0, 2.0, 2.0)),
            Rect::new(12.0, 22.0, 14.0, 24.0)
        );
    }

    #[test]
    fn dark_colours() {
        assert!(is_dark("#000"));
        assert!(is_dark("rgb(10, 10, 10)"));
        assert!(!is_dark("#fff"));
        assert!(!is_dark("none"));
    }
}
