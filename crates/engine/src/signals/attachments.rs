//! Signals about attachments: a type new for the sender or rare for the
//! organisation, and the unpack stage's findings (active content, unscannable).

use gatehouse_graph::Familiarity;
use gatehouse_message::{FindingKind, Message};
use gatehouse_policy::Baseline;

use super::Fired;
use super::features::Features;
use crate::content::Content;

pub(crate) fn fire(
    features: &Features,
    familiarity: &Familiarity,
    baseline: &Baseline,
    fired: &mut Vec<Fired>,
) {
    let mut seen_kinds: Vec<&str> = Vec::new();
    for familiar in &familiarity.attachment_types {
        if seen_kinds.contains(&familiar.kind.as_str()) {
            continue;
        }
        seen_kinds.push(&familiar.kind);
        let received = familiar.organisation.map(|fact| fact.inbound).unwrap_or(0);
        let rare = received < baseline.rare_attachment_count;
        let new_for_sender = familiarity.sender.is_some() && familiar.from_sender.is_none();
        let evidence = match (new_for_sender, rare) {
            (true, true) => format!(
                "{} never sent a {} file before, and the organisation received {received} before",
                features.sender, familiar.kind
            ),
            (true, false) => format!(
                "{} never sent a {} file before",
                features.sender, familiar.kind
            ),
            (false, true) => format!(
                "the organisation rarely receives {} files: {received} before this one",
                familiar.kind
            ),
            (false, false) => continue,
        };
        fired.push(Fired::new("attachment.type_new", evidence));
    }
}

/// Maps the findings of the parse and unpack stages to their signals.
pub(crate) fn findings(message: &Message, content: &Content, fired: &mut Vec<Fired>) {
    for finding in &content.findings {
        let (id, what) = match finding.id.as_str() {
            "attachment.active_content" => ("attachment.active_content", "carries active content"),
            "attachment.unscannable" => ("attachment.unscannable", "could not be scanned"),
            _ => continue,
        };
        // The detail gives the reason, so it follows what happened to the part.
        let evidence = if finding.detail.is_empty() {
            format!("{} {what}", finding.location)
        } else {
            format!("{} {what}: {}", finding.location, finding.detail)
        };
        fired.push(Fired::new(id, evidence));
    }
    for finding in &message.findings {
        if finding.kind == FindingKind::LimitReached {
            fired.push(Fired::new(
                "attachment.unscannable",
                format!(
                    "{}: {} (parse limit reached)",
                    finding.location, finding.detail
                ),
            ));
        }
    }
}
