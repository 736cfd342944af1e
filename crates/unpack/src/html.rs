//! HTML attachments: the markup for the link and drawn-code stages, and the
//! images and SVG drawings embedded in it.

use crate::svg::data_uri_bytes;
use crate::walker::Walker;
use crate::{Artifact, FindingKind};

/// Most embedded images and inline SVG drawings taken from one document.
const MAX_EMBEDDED: usize = 64;

/// Keeps the markup of an HTML attachment and unpacks its `data:` images
/// and inline `<svg>` drawings as children.
pub(crate) fn unpack(walker: &mut Walker<'_>, artifact: &mut Artifact, data: &[u8], depth: usize) {
    let text = String::from_utf8_lossy(data);
    artifact.markup = text.chars().take(walker.limits.max_text_chars).collect();

    let mut embedded = 0;
    for (index, uri) in data_image_uris(&text).into_iter().enumerate() {
        embedded += 1;
        if embedded > MAX_EMBEDDED {
            break;
        }
        let Some(bytes) = data_uri_bytes(uri) else {
            continue;
        };
        walker.budget.spend(bytes.len() as u64);
        let part = format!("data:image #{}", index + 1);
        let location = walker.join(&artifact.location, &part);
        let child = walker.file(&location, &part, &bytes, depth + 1, false);
        artifact.children.push(child);
    }
    for (index, svg) in inline_svgs(&text).into_iter().enumerate() {
        embedded += 1;
        if embedded > MAX_EMBEDDED {
            break;
        }
        let part = format!("svg #{}", index + 1);
        let location = walker.join(&artifact.location, &part);
        let child = walker.file(&location, &part, svg.as_bytes(), depth + 1, false);
        artifact.children.push(child);
    }
    if embedded > MAX_EMBEDDED {
        let detail = format!(
            "more than {MAX_EMBEDDED} embedded images and drawings; the rest were not read"
        );
        walker.finding(artifact, FindingKind::Unscannable, "", detail);
    }
}

/// Returns the `data:image/…;base64,…` URIs in HTML, in attributes, CSS or text.
fn data_image_uris(html: &str) -> Vec<&str> {
    let mut found = Vec::new();
    for start in memchr::memmem::find_iter(html.as_bytes(), b"data:image/") {
        let rest = &html[start..];
        let end = rest.find(['"', '\'', ')', '>', '<']).unwrap_or(rest.len());
        found.push(&rest[..end]);
    }
    found
}

/// Returns each `<svg …>…</svg>` drawing written inline in HTML.
pub fn inline_svgs(html: &str) -> Vec<&str> {
    let lower = html.to_ascii_lowercase();
    let mut found = Vec::new();
    let mut position = 0;
    while let Some(offset) = lower[position..].find("<svg") {
        let start = position + offset;
        let Some(end) = lower[start..].find("</svg>") else {
            break;
        };
        let end = start + end + "</svg>".len();
        found.push(&html[start..end]);
        position = end;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_inline_svgs_and_data_images() {
        let html = "<p><SVG width=1><rect/></svg><img src=\"data:image/png;base64,iVBO\"></p>";
        assert_eq!(inline_svgs(html), vec!["<SVG width=1><rect/></svg>"]);
        assert_eq!(data_image_uris(html), vec!["data:image/png;base64,iVBO"]);
    }
}
