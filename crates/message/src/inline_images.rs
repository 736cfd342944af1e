//! Images that HTML bodies show without attaching them: `data:image/…;base64,`
//! URIs in attributes and CSS become parts of their own, so that the engine
//! decodes QR codes in them, and `cid:` references mark the parts they show.

use memchr::memmem;

use crate::mime::join_location;
use crate::transfer;
use crate::{BodyKind, Finding, FindingKind, Limits, Message, Part};

/// Adds a part for every `data:image/…;base64,` URI in the HTML bodies, and
/// marks the parts that HTML bodies reference by `cid:`.
pub(crate) fn extract(message: &mut Message, limits: &Limits) {
    let mut new_parts = Vec::new();
    let mut findings = Vec::new();
    let mut references: Vec<(String, String)> = Vec::new();

    for body in message
        .bodies
        .iter()
        .filter(|body| body.kind == BodyKind::Html)
    {
        let html = body.text.as_bytes();
        let mut number = 0;
        for uri in data_uris(html) {
            number += 1;
            let label = format!("data:{} #{number}", uri.media_type);
            let location = join_location(&body.location, &label);
            if new_parts.len() >= limits.max_data_uris {
                findings.push(Finding {
                    kind: FindingKind::LimitReached,
                    location,
                    detail: format!(
                        "more than {} data: images; the rest are not read",
                        limits.max_data_uris
                    ),
                });
                break;
            }
            // Base64 carries 3 bytes in 4 characters.
            if uri.data.len() / 4 * 3 > limits.max_data_uri_bytes {
                findings.push(Finding {
                    kind: FindingKind::LimitReached,
                    location,
                    detail: format!(
                        "data: image of about {} bytes is larger than {} bytes and is not read",
                        uri.data.len() / 4 * 3,
                        limits.max_data_uri_bytes
                    ),
                });
                continue;
            }
            new_parts.push(Part {
                name: None,
                content_type: uri.media_type,
                content_id: None,
                inline: true,
                referenced_from: Some(body.location.clone()),
                data: transfer::base64(uri.data),
                location,
            });
        }
        for content_id in cid_references(&body.text) {
            references.push((content_id, body.location.clone()));
        }
    }

    for (content_id, location) in references {
        for part in &mut message.parts {
            let matches = part
                .content_id
                .as_deref()
                .is_some_and(|id| id.eq_ignore_ascii_case(&content_id));
            if matches && part.referenced_from.is_none() {
                part.referenced_from = Some(location.clone());
            }
        }
    }
    message.parts.extend(new_parts);
    message.findings.extend(findings);
}

struct DataUri<'a> {
    /// `image/png`, lower-cased.
    media_type: String,
    /// The base64 text, which may contain whitespace and entity-encoded line breaks.
    data: &'a [u8],
}

/// Finds `data:image/TYPE[;params];base64,DATA` anywhere in HTML: attributes, CSS and text.
fn data_uris(html: &[u8]) -> Vec<DataUri<'_>> {
    let mut found = Vec::new();
    let finder = memmem::Finder::new(b"data:image/");
    let lower = html.to_ascii_lowercase();
    let mut search = 0;
    while let Some(offset) = finder.find(&lower[search..]) {
        let start = search + offset;
        search = start + 11;
        let header_end = match lower[start..]
            .iter()
            .take(200)
            .position(|&byte| byte == b',')
        {
            Some(position) => start + position,
            None => continue,
        };
        let header = &lower[start + 5..header_end];
        if !header.ends_with(b";base64") {
            continue;
        }
        let media_type = header
            .split(|&byte| byte == b';')
            .next()
            .unwrap_or_default();
        let media_type = String::from_utf8_lossy(media_type).trim().to_owned();
        let data_start = header_end + 1;
        let data_len = html[data_start..]
            .iter()
            .position(|&byte| !is_base64_text(byte))
            .unwrap_or(html.len() - data_start);
        let data = &html[data_start..data_start + data_len];
        search = data_start + data_len;
        if data.is_empty() {
            continue;
        }
        found.push(DataUri { media_type, data });
    }
    found
}

fn is_base64_text(byte: u8) -> bool {
    byte.is_ascii_alphanumeric()
        || matches!(byte, b'+' | b'/' | b'=' | b'\r' | b'\n' | b' ' | b'\t')
}

/// Lists the content ids that HTML references with `cid:`.
fn cid_references(html: &str) -> Vec<String> {
    let lower = html.to_ascii_lowercase();
    let mut ids = Vec::new();
    let mut search = 0;
    while let Some(offset) = lower[search..].find("cid:") {
        let start = search + offset + 4;
        let end = html[start..]
            .find(['"', '\'', ')', '>', ' ', '\t', '\r', '\n'])
            .map_or(html.len(), |position| start + position);
        let id = percent_encoding::percent_decode_str(&html[start..end])
            .decode_utf8_lossy()
            .trim_matches(|c| c == '<' || c == '>')
            .to_owned();
        if !id.is_empty() && !ids.contains(&id) {
            ids.push(id);
        }
        search = end.max(start);
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_data_uris_in_attributes_and_css() {
        let html = br#"<img src="data:image/png;base64,iVBO
Rw0K"><div style="background:url(data:image/gif;base64,R0lGOD)">"#;
        let uris = data_uris(html);
        let types: Vec<&str> = uris.iter().map(|uri| uri.media_type.as_str()).collect();
        assert_eq!(types, ["image/png", "image/gif"]);
        assert_eq!(uris[0].data, b"iVBO\nRw0K");
    }

    #[test]
    fn finds_cid_references() {
        let html = r#"<img src="cid:image001.png@01D9"><td background='CID:logo'>"#;
        assert_eq!(cid_references(html), ["image001.png@01D9", "logo"]);
    }
}
