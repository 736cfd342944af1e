//! The normalised parts of one message that the graph looks up and learns.
//!
//! Signals and learning read the same [`Features`], so what a verdict judged
//! new is exactly what the graph learns afterwards.

use std::net::IpAddr;

use gatehouse_graph::{AttachmentKey, Direction, keys};
use gatehouse_message::Message;
use sha2::{Digest, Sha256};
use unicode_normalization::UnicodeNormalization;

use super::origin::{self, GeoIp, TrustedNetworks};
use super::script;
use crate::content::Content;
use crate::verdict::Envelope;

/// Everything about a message the graph keys on.
#[derive(Debug, Clone)]
pub(crate) struct Features {
    pub(crate) direction: Direction,
    /// `mid:` and the Message-ID, or `sha256:` and the hash of the raw bytes.
    pub(crate) key: String,
    pub(crate) message_id: Option<String>,
    pub(crate) sender: String,
    pub(crate) sender_domain: String,
    pub(crate) sender_shape: String,
    pub(crate) display_name: Option<String>,
    pub(crate) recipients: Vec<String>,
    /// Registrable domains of every link, sorted and without duplicates.
    pub(crate) link_domains: Vec<String>,
    pub(crate) attachments: Vec<AttachmentKey>,
    /// Dominant scripts of the subject, each body and each filename, without duplicates.
    pub(crate) scripts: Vec<ScriptSource>,
    pub(crate) origin: Option<origin::Located>,
    pub(crate) client: Option<origin::Located>,
    /// Message-IDs from In-Reply-To and References.
    pub(crate) reply_to_ids: Vec<String>,
    /// The subject with digits removed, for the subject-template cluster.
    pub(crate) subject_template: Option<String>,
}

/// A dominant script and where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScriptSource {
    pub(crate) script: String,
    /// `subject`, `body` or the filename.
    pub(crate) place: String,
}

/// Settings the feature extraction needs from the engine.
pub(crate) struct Context<'a> {
    pub(crate) geoip: Option<&'a GeoIp>,
    pub(crate) trusted: &'a TrustedNetworks,
}

impl Features {
    pub(crate) fn extract(
        envelope: &Envelope,
        message: &Message,
        content: &Content,
        direction: Direction,
        raw: &[u8],
        context: &Context<'_>,
    ) -> Features {
        let sender = keys::address(&envelope.mail_from);
        let sender_domain = keys::registrable_domain(keys::address_domain(&sender));
        let message_id = message
            .headers
            .message_id
            .as_deref()
            .map(keys::message_id)
            .filter(|id| !id.is_empty());
        let key = match &message_id {
            Some(id) => format!("mid:{id}"),
            None => format!("sha256:{}", hex::encode(Sha256::digest(raw))),
        };

        let mut recipients: Vec<String> = envelope
            .rcpt_to
            .iter()
            .map(|rcpt| keys::address(rcpt))
            .collect();
        recipients.sort();
        recipients.dedup();

        let mut link_domains: Vec<String> = content
            .links
            .iter()
            .map(|link| keys::registrable_domain(&link.domain))
            .collect();
        link_domains.sort();
        link_domains.dedup();

        let mut attachments: Vec<AttachmentKey> = content
            .attachments
            .iter()
            .map(|attachment| AttachmentKey {
                kind: attachment.kind.clone(),
                sha256: attachment.sha256.clone(),
            })
            .collect();
        attachments.sort_by(|a, b| (&a.kind, &a.sha256).cmp(&(&b.kind, &b.sha256)));
        attachments.dedup();

        let reply_to_ids = message
            .headers
            .in_reply_to
            .iter()
            .chain(&message.headers.references)
            .map(|id| keys::message_id(id))
            .filter(|id| !id.is_empty())
            .collect();

        Features {
            direction,
            key,
            message_id,
            sender_shape: keys::local_part_shape(&sender),
            sender,
            sender_domain,
            display_name: message
                .headers
                .from
                .as_ref()
                .and_then(|from| from.display_name.clone())
                .filter(|name| !name.trim().is_empty()),
            recipients,
            link_domains,
            attachments,
            scripts: scripts(message, content),
            origin: origin_ip(envelope, message, context.trusted)
                .map(|ip| origin::locate(ip, context.geoip, false)),
            client: message
                .headers
                .originating_ip
                .filter(|ip| keys::is_public(*ip))
                .map(|ip| origin::locate(ip, context.geoip, true)),
            reply_to_ids,
            subject_template: message
                .headers
                .subject
                .as_deref()
                .and_then(subject_template),
        }
    }

    /// Script names without duplicates, for the graph.
    pub(crate) fn script_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .scripts
            .iter()
            .map(|source| source.script.clone())
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

/// Finds the first untrusted hop: the SMTP client when it is public, else the
/// newest Received hop whose sending address is public and not a trusted relay.
fn origin_ip(envelope: &Envelope, message: &Message, trusted: &TrustedNetworks) -> Option<IpAddr> {
    if let Some(ip) = envelope.client_ip
        && keys::is_public(ip)
        && !trusted.contains(ip)
    {
        return Some(ip);
    }
    message
        .headers
        .received
        .iter()
        .filter_map(|hop| hop.from_ip)
        .find(|ip| keys::is_public(*ip) && !trusted.contains(*ip))
}

fn scripts(message: &Message, content: &Content) -> Vec<ScriptSource> {
    let mut sources = Vec::new();
    let mut add = |text: &str, place: &str| {
        if let Some(script) = script::dominant(text) {
            let source = ScriptSource {
                script: script.to_owned(),
                place: place.to_owned(),
            };
            if !sources
                .iter()
                .any(|known: &ScriptSource| known.script == source.script)
            {
                sources.push(source);
            }
        }
    };
    if let Some(subject) = &message.headers.subject {
        add(subject, "subject");
    }
    for body in &message.bodies {
        add(&body.text, &body.location);
    }
    for attachment in &content.attachments {
        let stem = attachment
            .name
            .rsplit_once('.')
            .map(|(stem, _)| stem)
            .unwrap_or(&attachment.name);
        add(stem, &attachment.name);
    }
    sources
}

/// A subject with digits removed and case, width and spacing folded, so
/// that `通知-3154` and `通知-8802` are one template. `None` when too little is left to mean anything.
fn subject_template(subject: &str) -> Option<String> {
    let folded: String = subject.nfkc().collect::<String>().to_lowercase();
    let without_digits: String = folded.chars().filter(|c| !c.is_numeric()).collect();
    let template = without_digits
        .trim_start_matches(|c: char| c.is_whitespace())
        .trim_start_matches("re:")
        .trim_start_matches("fwd:")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let meaningful = template.chars().filter(|c| c.is_alphabetic()).count();
    (meaningful >= 4).then_some(template)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_template_strips_digits() {
        assert_eq!(
            subject_template("2026年度个税退税通知-3154"),
            subject_template("2025年度个税退税通知-8802")
        );
    }

    #[test]
    fn short_subject_has_no_template() {
        assert_eq!(subject_template("Re: 12"), None);
    }
}
