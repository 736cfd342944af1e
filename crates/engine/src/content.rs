//! The unpack, QR and link stages: everything a message carries, with where it was found.
//!
//! QR codes come from every place a code can be drawn. Images (attached,
//! inline, inside documents and archives) and renders of PDF pages and SVG
//! drawings are decoded here. HTML tables and CSS grids, block characters
//! and neighbouring images joined back into one code are found by `drawn`.
//! `codes` classifies each payload, and only URLs become links. Their
//! redirectors are unwrapped, short-link and dynamic-QR services are named,
//! and a recipient's address inside them is recorded.

mod codes;
mod drawn;

use gatehouse_message::{Link, LinkSource, Message};
use gatehouse_unpack::{Artifact, FileKind, FindingKind, RenderScope};

use crate::engine::Limits;
use crate::verdict::{AttachmentRecord, FindingRecord, LinkRecord, QrRecord};

use codes::{Decoding, Technique};

/// Everything found in a message's bodies and parts.
#[derive(Debug, Default)]
pub(crate) struct Content {
    pub(crate) links: Vec<LinkRecord>,
    pub(crate) attachments: Vec<AttachmentRecord>,
    pub(crate) qr_codes: Vec<QrRecord>,
    pub(crate) findings: Vec<FindingRecord>,
    /// The unpacked attachments, for signals that look inside them.
    pub(crate) artifacts: Vec<Artifact>,
}

/// Passes run on a whole rendered page: it is sharp, so the original is
/// enough, and each further pass over a page costs tens of milliseconds.
const PAGE_PASSES: [gatehouse_qr::Pass; 1] = [gatehouse_qr::Pass::Original];
/// Passes run on an enlarged region of a page or an SVG drawing.
const REGION_PASSES: [gatehouse_qr::Pass; 3] = [
    gatehouse_qr::Pass::Original,
    gatehouse_qr::Pass::Padded,
    gatehouse_qr::Pass::Inverted,
];

pub(crate) fn collect(message: &Message, limits: &Limits) -> Content {
    let mut content = Content::default();
    let mut decoding = Decoding::new(message, limits);

    // Links in the bodies, and codes drawn in them without an image.
    for body in &message.bodies {
        let links = match body.kind {
            gatehouse_message::BodyKind::Plain => {
                gatehouse_message::links::extract_text(&body.text, &body.location)
            }
            gatehouse_message::BodyKind::Html => {
                gatehouse_message::links::extract_html(&body.text, &body.location)
            }
        };
        content.links.extend(links.into_iter().map(record));
        drawn::body(body, message, limits, &mut decoding, &mut content);
    }

    // Unpack every part; QR-decode every image and render in it; take the URLs of its documents.
    for part in &message.parts {
        let name = part.name.clone().unwrap_or_else(|| part.location.clone());
        let artifact = gatehouse_unpack::unpack(&name, &part.data, &limits.unpack);
        content.attachments.push(AttachmentRecord {
            name,
            kind: kind_name(&artifact),
            size: artifact.size,
            sha256: artifact.sha256.clone(),
        });
        for nested in artifact.walk() {
            collect_artifact(nested, limits, &mut decoding, &mut content);
        }
        content.artifacts.push(artifact);
    }

    for finding in &message.findings {
        content.findings.push(FindingRecord {
            id: format!("{:?}", finding.kind),
            location: finding.location.clone(),
            detail: finding.detail.clone(),
        });
    }
    content
}

/// Records what QR decoding of one image or render gave: its codes, or
/// `attachment.unscannable` when the image could not be read or its time
/// limit stopped the passes early.
fn record_decoded(
    decoded: Result<gatehouse_qr::Decoded, gatehouse_qr::QrError>,
    location: &str,
    technique: Technique,
    limits: &Limits,
    decoding: &mut Decoding,
    content: &mut Content,
) {
    let unscannable = |detail: String| FindingRecord {
        id: "attachment.unscannable".to_owned(),
        location: location.to_owned(),
        detail,
    };
    let decoded = match decoded {
        Ok(decoded) => decoded,
        Err(err) => {
            content.findings.push(unscannable(err.to_string()));
            return;
        }
    };
    if let Some(spent) = decoded.stopped_after_millis {
        let attempts = decoded.attempts.len();
        content.findings.push(unscannable(format!(
            "QR decoding took {spent} ms, more than max_image_millis ({} ms), and stopped after {attempts} {}",
            limits.qr.max_image_millis,
            if attempts == 1 { "attempt" } else { "attempts" }
        )));
    }
    decoding.record(&decoded.codes, location, technique, content);
}

/// Collects the URLs, QR codes and findings of one artifact (not of its children).
pub(crate) fn collect_artifact(
    artifact: &Artifact,
    limits: &Limits,
    decoding: &mut Decoding,
    content: &mut Content,
) {
    for found in &artifact.urls {
        if let Some(link) = Link::new(&found.url, LinkSource::Attachment, &found.location) {
            content.links.push(record(link));
        }
    }
    if !artifact.image_data.is_empty() {
        let decoded = gatehouse_qr::decode_with_report(&artifact.image_data, &limits.qr);
        record_decoded(
            decoded,
            &artifact.location,
            Technique::Image,
            limits,
            decoding,
            content,
        );
    }

    let technique = if artifact.kind == FileKind::Svg {
        Technique::Svg
    } else {
        Technique::Pdf
    };
    for render in &artifact.renders {
        let passes: &[gatehouse_qr::Pass] = match render.scope {
            RenderScope::Page => &PAGE_PASSES,
            RenderScope::Region => &REGION_PASSES,
        };
        let decoded = gatehouse_qr::decode_luma_with(
            &render.luma,
            render.width,
            render.height,
            &limits.qr,
            passes,
        );
        record_decoded(
            decoded,
            &render.location,
            technique,
            limits,
            decoding,
            content,
        );
    }

    if !artifact.markup.is_empty() {
        let links = gatehouse_message::links::extract_html(&artifact.markup, &artifact.location);
        content.links.extend(links.into_iter().map(|mut link| {
            link.source = LinkSource::Attachment;
            record(link)
        }));
        drawn::html(
            &artifact.markup,
            &artifact.location,
            None,
            limits,
            decoding,
            content,
        );
    }

    for finding in &artifact.findings {
        let id = match finding.kind {
            FindingKind::Unscannable => "attachment.unscannable",
            FindingKind::ActiveContent => "attachment.active_content",
            FindingKind::NameMismatch => "attachment.name_mismatch",
            FindingKind::Encrypted => "attachment.encrypted",
        };
        content.findings.push(FindingRecord {
            id: id.to_owned(),
            location: finding.location.clone(),
            detail: finding.detail.clone(),
        });
    }
}

pub(crate) fn record(link: Link) -> LinkRecord {
    LinkRecord {
        url: link.url,
        domain: link.domain,
        source: link.source,
        location: link.location,
        host: Some(link.host),
        shown_host: link.shown_host,
        unwrapped_from: link.unwrapped_from,
    }
}

fn kind_name(artifact: &Artifact) -> String {
    serde_json::to_value(artifact.kind)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}
