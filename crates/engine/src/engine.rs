use std::sync::Arc;

use gatehouse_graph::{Direction, GraphError, GraphStore, Learning, Observation};
use gatehouse_message::Message;
use gatehouse_policy::Policy;
use time::OffsetDateTime;

use crate::content;
use crate::signals::{self, Enrichment, GeoIp, TrustedNetworks};
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

/// Receives the verdicts an engine makes, such as an export to a SIEM.
///
/// Both methods run on the thread that called the engine, so an
/// implementation must return quickly and must not wait on the network.
pub trait VerdictObserver: Send + Sync {
    /// Called with every verdict [`Engine::analyse`] and
    /// [`Engine::analyse_submission`] return.
    fn analysed(&self, verdict: &Verdict);

    /// Called after [`Engine::learn`] taught the graph a message whose
    /// action is durable: delivered, released or held.
    fn learned(&self, verdict: &Verdict, outcome: Outcome);
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
    roles: signals::RoleNames,
    graph: Arc<dyn GraphStore>,
    limits: Limits,
    local_domains: Vec<String>,
    geoip: Option<Arc<GeoIp>>,
    trusted_relays: TrustedNetworks,
    local_networks: TrustedNetworks,
    enrichment: Option<Arc<dyn Enrichment>>,
    observer: Option<Arc<dyn VerdictObserver>>,
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
            roles: signals::RoleNames::new(&policy),
            policy,
            graph,
            limits,
            local_domains,
            geoip: None,
            trusted_relays: TrustedNetworks::default(),
            local_networks: TrustedNetworks::loopback(),
            enrichment: None,
            observer: None,
        }
    }

    /// Adds endpoint alerts and domain registration dates, for
    /// `endpoint.alert` and `link.domain_young`.
    pub fn with_enrichment(mut self, enrichment: Arc<dyn Enrichment>) -> Engine {
        self.enrichment = Some(enrichment);
        self
    }

    /// Shows every verdict and every learned message to `observer`.
    pub fn with_observer(mut self, observer: Arc<dyn VerdictObserver>) -> Engine {
        self.observer = Some(observer);
        self
    }

    /// Adds ASN and country to origin and client networks.
    pub fn with_geoip(mut self, geoip: Arc<GeoIp>) -> Engine {
        self.geoip = Some(geoip);
        self
    }

    /// Names the organisation's own relays with public addresses, whose
    /// Received hops are skipped when looking for a message's origin.
    /// Private, loopback and link-local hops are skipped without being named.
    pub fn with_trusted_relays(mut self, relays: TrustedNetworks) -> Engine {
        self.trusted_relays = relays;
        self
    }

    /// Names the networks whose clients may send as a local address without
    /// authenticating, as Postfix's `mynetworks` does. The default is
    /// loopback only: a client elsewhere that uses a local sender address is
    /// judged as inbound mail, never learned as the organisation's own.
    pub fn with_local_networks(mut self, networks: TrustedNetworks) -> Engine {
        self.local_networks = networks;
        self
    }

    /// The graph this engine reads and teaches.
    pub fn graph(&self) -> &Arc<dyn GraphStore> {
        &self.graph
    }

    /// The policy this engine applies.
    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    /// Analyses one message. Never fails: a stage that cannot finish leaves a finding.
    pub fn analyse(&self, envelope: &Envelope, raw: &[u8], when: When) -> Analysis {
        self.analyse_as(envelope, raw, when, false)
    }

    /// Analyses a message that a local user submitted after authenticating
    /// (SMTP AUTH), so its sender counts as local whatever the domain. Such
    /// mail is outbound or internal: it is learned, not judged.
    pub fn analyse_submission(&self, envelope: &Envelope, raw: &[u8], when: When) -> Analysis {
        self.analyse_as(envelope, raw, when, true)
    }

    fn analyse_as(
        &self,
        envelope: &Envelope,
        raw: &[u8],
        when: When,
        authenticated: bool,
    ) -> Analysis {
        // Parse the MIME structure and decode headers and bodies.
        let message = gatehouse_message::parse(raw, &self.limits.message);
        let envelope = complete_envelope(envelope, &message);
        let time = message_time(&message, when);

        // Unpack attachments, decode QR codes and collect every link with its provenance.
        let content = content::collect(&message, &self.limits);

        // Consult the graph, fire signals and weigh them with the policy.
        let direction = self.direction(&envelope, authenticated);
        let features = signals::Features::extract(
            &envelope,
            &message,
            &content,
            direction,
            raw,
            &signals::features::Context {
                geoip: self.geoip.as_deref(),
                trusted: &self.trusted_relays,
            },
        );
        let judgement = signals::judge(&signals::Input {
            envelope: &envelope,
            message: &message,
            content: &content,
            features: &features,
            time,
            graph: self.graph.as_ref(),
            policy: &self.policy,
            roles: &self.roles,
            local_domains: &self.local_domains,
            enrichment: self.enrichment.as_deref(),
        });

        let observation = observation(&features, &judgement, time);
        let verdict = Verdict {
            id: uuid::Uuid::now_v7().to_string(),
            action: judgement.action,
            score: judgement.score,
            signals: judgement.signals,
            envelope,
            message: summary(&message),
            links: content.links,
            attachments: content.attachments,
            qr_codes: content.qr_codes,
            findings: content.findings,
            campaign: judgement.campaign,
            endpoint_alerts: judgement.endpoint_alerts,
            file: None,
        };
        if let Some(observer) = &self.observer {
            observer.analysed(&verdict);
        }
        Analysis {
            verdict,
            observation,
        }
    }

    /// Teaches the graph a message whose delivery or release is durable.
    ///
    /// Delivered and released mail makes its parts familiar; held mail only
    /// joins campaign windows. Learning a message twice counts once.
    pub fn learn(&self, analysis: &Analysis, outcome: Outcome) -> Result<(), EngineError> {
        self.graph
            .observe(&analysis.observation, learning_for(analysis, outcome))?;
        if let Some(observer) = &self.observer {
            observer.learned(&analysis.verdict, outcome);
        }
        Ok(())
    }

    /// Teaches the graph several messages in one transaction, for imports:
    /// a commit per message costs more than the learning itself. Messages in
    /// one batch were judged without seeing each other, so a batch should
    /// hold history, not live mail whose verdicts depend on the one before.
    /// The observer is not called, because imported history was never
    /// delivered by this gateway.
    pub fn learn_batch(&self, batch: &[(&Analysis, Outcome)]) -> Result<usize, EngineError> {
        let observations: Vec<_> = batch
            .iter()
            .map(|(analysis, outcome)| {
                let learning = learning_for(analysis, *outcome);
                (analysis.observation.clone(), learning)
            })
            .collect();
        Ok(self.graph.observe_batch(&observations)?)
    }

    /// Teaches the graph, in one transaction, messages this gateway acted
    /// on, and shows each to the observer as [`Engine::learn`] does. Each
    /// message already has its verdict, so learning them together changes
    /// none.
    pub fn learn_decided(&self, batch: &[(&Analysis, Outcome)]) -> Result<(), EngineError> {
        self.learn_batch(batch)?;
        if let Some(observer) = &self.observer {
            for (analysis, outcome) in batch {
                observer.learned(&analysis.verdict, *outcome);
            }
        }
        Ok(())
    }

    /// Returns whether an unauthenticated client may use a local sender
    /// address. It may when it connected from a local network, or when there
    /// is no client because the message was read from a file.
    fn client_may_send_as_local(&self, envelope: &Envelope) -> bool {
        envelope
            .client_ip
            .is_none_or(|ip| self.local_networks.contains(ip))
    }

    /// Returns whether an address is in one of the local domains.
    pub fn is_local(&self, address: &str) -> bool {
        signals::is_local_address(address, &self.local_domains)
    }

    fn direction(&self, envelope: &Envelope, authenticated: bool) -> Direction {
        let local_sender = authenticated
            || (self.is_local(&envelope.mail_from) && self.client_may_send_as_local(envelope));
        if !local_sender {
            Direction::Inbound
        } else if envelope.rcpt_to.iter().all(|rcpt| self.is_local(rcpt)) {
            Direction::Internal
        } else {
            Direction::Outbound
        }
    }
}

/// Returns what a message may teach. Delivered mail that claims a local
/// sender from outside the local networks only joins campaign windows: made
/// familiar, it would let the next forgery of that address pass as known.
/// A person who releases such mail vouches for it, so a release teaches.
fn learning_for(analysis: &Analysis, outcome: Outcome) -> Learning {
    let forged_local = analysis
        .verdict
        .signals
        .iter()
        .any(|signal| signal.id == signals::LOCAL_UNAUTHENTICATED);
    match outcome {
        Outcome::Released => Learning::Familiar,
        Outcome::Delivered if !forged_local => Learning::Familiar,
        Outcome::Delivered | Outcome::Held => Learning::WindowOnly,
    }
}

/// Fills what a message read from a file lacks: the sender from From, the recipients from To and Cc.
fn complete_envelope(envelope: &Envelope, message: &Message) -> Envelope {
    let mut envelope = envelope.clone();
    if envelope.mail_from.is_empty()
        && let Some(from) = &message.headers.from
    {
        envelope.mail_from = from.address.clone();
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

/// What the graph learns from a message: the features the signals judged,
/// and the campaign clusters and escalations they found.
fn observation(
    features: &signals::Features,
    judgement: &signals::Judgement,
    time: OffsetDateTime,
) -> Observation {
    let mut observation = Observation::new(
        time,
        features.direction,
        features.key.clone(),
        features.sender.clone(),
        features.recipients.clone(),
    );
    observation.message_id = features.message_id.clone();
    observation.sender_display_name = features.display_name.clone();
    observation.link_domains = features.link_domains.clone();
    observation.attachments = features.attachments.clone();
    observation.scripts = features.script_names();
    observation.origin_networks = features
        .origin
        .as_ref()
        .map(|origin| origin.keys())
        .unwrap_or_default();
    observation.client_networks = features
        .client
        .as_ref()
        .map(|client| client.keys())
        .unwrap_or_default();
    observation.clusters = judgement.clusters.clone();
    observation.escalations = judgement.escalations.clone();
    observation
}
