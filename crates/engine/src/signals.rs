//! The graph and signal stages: what about this message is new or odd, with evidence.

use gatehouse_graph::{Direction, GraphStore, Lookup};
use gatehouse_message::{LinkSource, Message};
use gatehouse_policy::Policy;

use crate::content::Content;
use crate::verdict::{Envelope, SignalRecord};

pub(crate) struct Input<'a> {
    pub(crate) envelope: &'a Envelope,
    pub(crate) message: &'a Message,
    pub(crate) content: &'a Content,
    pub(crate) direction: Direction,
    pub(crate) graph: &'a dyn GraphStore,
}

/// A signal that fired, before the policy weighs it.
pub(crate) struct Fired {
    pub(crate) id: &'static str,
    pub(crate) evidence: String,
}

impl Fired {
    pub(crate) fn weighed(self, policy: &Policy) -> SignalRecord {
        SignalRecord {
            id: self.id.to_owned(),
            weight: policy.weight(self.id),
            evidence: self.evidence,
        }
    }
}

pub(crate) fn fire(input: &Input<'_>) -> Vec<Fired> {
    let mut fired = Vec::new();
    if input.direction != Direction::Inbound {
        return fired;
    }
    let mut lookup = Lookup::new(
        time::OffsetDateTime::now_utc(),
        input.envelope.mail_from.to_lowercase(),
        input
            .envelope
            .rcpt_to
            .iter()
            .map(|rcpt| rcpt.to_lowercase())
            .collect(),
    );
    lookup.link_domains = input
        .content
        .links
        .iter()
        .map(|link| link.domain.clone())
        .collect();
    lookup.reply_to_ids = input
        .message
        .headers
        .in_reply_to
        .iter()
        .chain(&input.message.headers.references)
        .cloned()
        .collect();
    let familiarity = match input.graph.lookup(&lookup) {
        Ok(familiarity) => familiarity,
        Err(err) => {
            tracing::warn!(error = %err, "graph lookup failed; judging the message without history");
            return fired;
        }
    };
    if familiarity.sender.is_none() {
        fired.push(Fired {
            id: "sender.first_contact",
            evidence: format!("first mail from {}", lookup.sender),
        });
    }
    if familiarity.sender_domain.is_none() {
        fired.push(Fired {
            id: "sender.domain_new",
            evidence: format!("domain of {} never seen", lookup.sender),
        });
    }
    for pair in familiarity.pairs.iter().filter(|pair| pair.fact.is_none()) {
        fired.push(Fired {
            id: "recipient.first_contact",
            evidence: format!("{} never exchanged mail with {}", pair.name, lookup.sender),
        });
    }
    for domain in familiarity.link_domains.iter().filter(|known| known.fact.is_none()) {
        fired.push(Fired {
            id: "link.domain_new",
            evidence: format!("{} never seen in any mail", domain.name),
        });
    }
    for link in &input.content.links {
        match link.source {
            LinkSource::Qr => fired.push(Fired {
                id: "link.in_qr",
                evidence: format!("{} in {}", link.url, link.location),
            }),
            LinkSource::Attachment => fired.push(Fired {
                id: "link.in_attachment",
                evidence: format!("{} in {}", link.url, link.location),
            }),
            LinkSource::Text | LinkSource::Html => {}
        }
    }
    if let Some(id) = familiarity.known_reply_to {
        fired.push(Fired {
            id: "thread.known_reply",
            evidence: format!("answers <{id}>, sent from here"),
        });
    }
    fired
}
