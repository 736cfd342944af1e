use std::sync::Arc;

use gatehouse_graph::{Direction, GraphError, GraphStore, Learning, Observation};
use gatehouse_message::Message;
use gatehouse_policy::Policy;
use time::OffsetDateTime;

use crate::content::{self, Content};
use crate::signals;
use crate::verdict::{Envelope, MessageSummary, Verdict};

/// The limits of every stage, gathered so that one config section sets them.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    pub message: gatehouse_message::Limits,
    pub unpack: gatehouse_unpack::Limits,
    pub qr: gatehouse_qr::Limits,
}

/// Which clock a message is judged at.
#[derive(Debug, Clone, Copy)]
pub enum When {
    /// The time it arrived, for live traffic.
    At(OffsetDateTime),
    /// The time of its first Received header, else its Date header, else the fallback;
    /// so that replaying history gives the same result as living through it.
    FromMessage { fallback: OffsetDateTime },
}

/// What happened to a message, which decides what the graph learns from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Delivered to its recipients (or imported history).
    Delivered,
    /// Released from quarantine by a person.
    Released,
    /// Held in quarantine: counts toward campaign windows but never makes a sender familiar.
    Held,
}

/// The engine could not learn. Analysis itself never fails: its problems are findings.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Graph(#[from] GraphError),
}

/// A verdict with what the graph would learn from the message.
#[derive(Debug, Clone)]
pub struct Analysis {
    pub verdict: Verdict,
    pub observation: Observation,
}

/// The pipeline with its policy, graph and limits.
pub struct Engine {
    policy: Arc<Policy>,
    graph: Arc<dyn GraphStore>,
    limits: Limits,
    local_domains: Vec<String>,
}

impl Engine {
    pub fn new(
        policy: Arc<Policy>,
        graph: Arc<dyn GraphStore>,
        limits: Limits,
        local_domains: Vec<String>,
    ) -> Engine {
        let local_domains = local_domains
            .into_iter()
            .map(|domain| domain.to_ascii_lowercase())
            .collect();
        Engine {
            policy,
            graph,
            limits,
            local_domains,
        }
    }

    /// Analyses one message. Never fails: a stage that cannot finish leaves a finding.
    pub fn analyse(&self, envelope: &Envelope, raw: &[u8], when: When) -> Analysis {
        // Parse the MIME structure and decode headers and bodies.
        let message = gatehouse_message::parse(raw, &self.limits.message);
        let envelope = complete_envelope(envelope, &message);
        let time = message_time(&message, when);

        // Unpack attachments, decode QR codes and collect every link with its provenance.
        let content = content::collect(&message, &self.limits);

        // Consult the graph and fire signals.
        let direction = self.direction(&envelope);
        let fired = signals::fire(&signals::Input {
            envelope: &envelope,
            message: &message,
            content: &content,
            direction,
            graph: self.graph.as_ref(),
        });

        // Score.
        let signals: Vec<_> = fired
            .into_iter()
            .map(|signal| signal.weighed(&self.policy))
            .collect();
        let score = signals.iter().map(|signal| signal.weight).sum::<f64>();
        let action = self.policy.action_for(score);

        let observation = observation(&envelope, &message, &content, direction, time);
        let verdict = Verdict {
            id: uuid::Uuid::now_v7().to_string(),
            action,
            score,
            signals,
            envelope,
            message: summary(&message),
            links: content.links,
            attachments: content.attachments,
            qr_codes: content.qr_codes,
            findings: content.findings,
            file: None,
        };
        Analysis {
            verdict,
            observation,
        }
    }

    /// Teaches the graph a message whose delivery or release is durable.
    pub fn learn(&self, analysis: &Analysis, outcome: Outcome) -> Result<(), EngineError> {
        let learning = match outcome {
            Outcome::Delivered | Outcome::Released => Learning::Familiar,
            Outcome::Held => Learning::WindowOnly,
        };
        self.graph.observe(&analysis.observation, learning)?;
        Ok(())
    }

    fn is_local(&self, address: &str) -> bool {
        let domain = address
            .rsplit_once('@')
            .map(|(_, domain)| domain)
            .unwrap_or("");
        self.local_domains
            .iter()
            .any(|local| local.eq_ignore_ascii_case(domain))
    }

    fn direction(&self, envelope: &Envelope) -> Direction {
        if !self.is_local(&envelope.mail_from) {
            Direction::Inbound
        } else if envelope.rcpt_to.iter().all(|rcpt| self.is_local(rcpt)) {
            Direction::Internal
        } else {
            Direction::Outbound
        }
    }
}

/// Fills what a message read from a file lacks: the sender from From, the recipients from To and Cc.
fn complete_envelope(envelope: &Envelope, message: &Message) -> Envelope {
    let mut envelope = envelope.clone();
    if envelope.mail_from.is_empty() {
        if let Some(from) = &message.headers.from {
            envelope.mail_from = from.address.clone();
        }
    }
    if envelope.rcpt_to.is_empty() {
        envelope.rcpt_to = message
            .headers
            .to
            .iter()
            .chain(&message.headers.cc)
            .map(|mailbox| mailbox.address.clone())
            .collect();
    }
    envelope
}

fn message_time(message: &Message, when: When) -> OffsetDateTime {
    match when {
        When::At(time) => time,
        When::FromMessage { fallback } => message
            .headers
            .received
            .iter()
            .find_map(|hop| hop.date)
            .or(message.headers.date)
            .unwrap_or(fallback),
    }
}

fn summary(message: &Message) -> MessageSummary {
    let headers = &message.headers;
    MessageSummary {
        message_id: headers.message_id.clone(),
        from: headers.from.as_ref().map(|from| from.address.clone()),
        display_name: headers
            .from
            .as_ref()
            .and_then(|from| from.display_name.clone()),
        subject: headers.subject.clone(),
        date: headers.date.and_then(|date| {
            date.format(&time::format_description::well_known::Rfc3339)
                .ok()
        }),
    }
}

fn observation(
    envelope: &Envelope,
    message: &Message,
    content: &Content,
    direction: Direction,
    time: OffsetDateTime,
) -> Observation {
    let mut link_domains: Vec<String> = content
        .links
        .iter()
        .map(|link| link.domain.clone())
        .collect();
    link_domains.sort();
    link_domains.dedup();
    let key = match &message.headers.message_id {
        Some(id) => format!("mid:{id}"),
        None => String::new(),
    };
    let mut observation = Observation::new(
        time,
        direction,
        key,
        envelope.mail_from.to_lowercase(),
        envelope
            .rcpt_to
            .iter()
            .map(|rcpt| rcpt.to_lowercase())
            .collect(),
    );
    observation.message_id = message.headers.message_id.clone();
    observation.sender_display_name = message
        .headers
        .from
        .as_ref()
        .and_then(|from| from.display_name.clone());
    observation.link_domains = link_domains;
    observation
}
