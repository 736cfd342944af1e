//! The unpack, QR and link stages: everything a message carries, with where it was found.

use gatehouse_message::{Link, LinkSource, Message};
use gatehouse_unpack::{Artifact, FindingKind};

use crate::engine::Limits;
use crate::verdict::{AttachmentRecord, FindingRecord, LinkRecord, QrRecord};

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

pub(crate) fn collect(message: &Message, limits: &Limits) -> Content {
    let mut content = Content::default();

    // Links in the bodies.
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
    }

    // Unpack every part; QR-decode every image in it; take the URLs of its documents.
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
            collect_artifact(nested, limits, &mut content);
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

fn collect_artifact(artifact: &Artifact, limits: &Limits, content: &mut Content) {
    for found in &artifact.urls {
        if let Some(link) = Link::new(&found.url, LinkSource::Attachment, &found.location) {
            content.links.push(record(link));
        }
    }
    if !artifact.image_data.is_empty() {
        match gatehouse_qr::decode(&artifact.image_data, &limits.qr) {
            Ok(codes) => {
                for code in codes {
                    if let Some(link) = Link::new(&code.payload, LinkSource::Qr, &artifact.location)
                    {
                        content.links.push(record(link));
                    }
                    content.qr_codes.push(QrRecord {
                        payload: code.payload,
                        location: artifact.location.clone(),
                    });
                }
            }
            Err(err) => content.findings.push(FindingRecord {
                id: "attachment.unscannable".to_owned(),
                location: artifact.location.clone(),
                detail: err.to_string(),
            }),
        }
    }
    for finding in &artifact.findings {
        let id = match finding.kind {
            FindingKind::Unscannable => "attachment.unscannable",
            FindingKind::ActiveContent => "attachment.active_content",
            FindingKind::NameMismatch => "attachment.name_mismatch",
        };
        content.findings.push(FindingRecord {
            id: id.to_owned(),
            location: finding.location.clone(),
            detail: finding.detail.clone(),
        });
    }
}

fn record(link: Link) -> LinkRecord {
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
