//! The graph and signal stages: what about this message is new or odd, with
//! evidence, and the action the policy takes on it.
//!
//! [`judge`] runs them in order. It extracts [`Features`] and looks them up
//! in the graph in one query. Each family of signals then fires from its own
//! module, and signals that fired more than once are merged. The policy
//! weighs them per recipient domain. Last come the rules that override the
//! score: mode, the plain first-contact cap, campaign responses, and the
//! allow and block lists.

mod attachments;
mod auth;
pub(crate) mod campaign;
pub(crate) mod enrichment;
mod explain;
pub(crate) mod features;
mod impersonation;
mod links;
pub(crate) mod origin;
mod script;
mod sender;

use gatehouse_graph::{Direction, Escalation, Familiarity, GraphStore, Lookup};
use gatehouse_message::Message;
use gatehouse_policy::{Action, ListMatch, Policy, Scoring};
use time::OffsetDateTime;

use crate::content::Content;
use crate::verdict::{Envelope, SignalRecord};

pub use campaign::{CampaignGroup, CampaignRecord, EarlierMember, group_by_campaign};
pub use enrichment::{
    AlertMatchKey, AlertQuery, DomainRegistration, EndpointAlert, EndpointAlertRecord, Enrichment,
};
pub use explain::{explain, render_text};
pub(crate) use features::Features;
pub(crate) use impersonation::LOCAL_UNAUTHENTICATED;
pub use origin::{GeoIp, GeoIpError, TrustedNetworkError, TrustedNetworks};
pub(crate) use sender::RoleNames;

/// A signal that fired, before the policy weighs it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Fired {
    pub(crate) id: &'static str,
    pub(crate) evidence: String,
    /// Whether the evidence sits inside an attachment, where some signals weigh more.
    pub(crate) in_attachment: bool,
    /// Multiplies the policy's weight, such as an endpoint alert's novelty factor.
    pub(crate) factor: f64,
}

impl Fired {
    pub(crate) fn new(id: &'static str, evidence: String) -> Fired {
        Fired {
            id,
            evidence,
            in_attachment: false,
            factor: 1.0,
        }
    }

    pub(crate) fn scaled(mut self, factor: f64) -> Fired {
        self.factor = factor;
        self
    }

    pub(crate) fn in_attachment(mut self, in_attachment: bool) -> Fired {
        self.in_attachment = in_attachment;
        self
    }
}

/// Everything the signal stage reads.
pub(crate) struct Input<'a> {
    pub(crate) envelope: &'a Envelope,
    pub(crate) message: &'a Message,
    pub(crate) content: &'a Content,
    pub(crate) features: &'a Features,
    pub(crate) time: OffsetDateTime,
    pub(crate) graph: &'a dyn GraphStore,
    pub(crate) policy: &'a Policy,
    pub(crate) roles: &'a RoleNames,
    pub(crate) local_domains: &'a [String],
    pub(crate) enrichment: Option<&'a dyn enrichment::Enrichment>,
}

/// The signal stage's result: the verdict's signals, score and action, and
/// what the graph should record about campaigns.
#[derive(Debug)]
pub(crate) struct Judgement {
    pub(crate) signals: Vec<SignalRecord>,
    pub(crate) score: f64,
    pub(crate) action: Action,
    pub(crate) campaign: Option<CampaignRecord>,
    pub(crate) clusters: Vec<String>,
    pub(crate) escalations: Vec<Escalation>,
    pub(crate) endpoint_alerts: Vec<enrichment::EndpointAlertRecord>,
}

impl Default for Judgement {
    fn default() -> Self {
        Judgement {
            signals: Vec::new(),
            score: 0.0,
            action: Action::Deliver,
            campaign: None,
            clusters: Vec::new(),
            escalations: Vec::new(),
            endpoint_alerts: Vec::new(),
        }
    }
}

/// Returns whether an address (with or without angle brackets) is in one of the local domains.
pub(crate) fn is_local_address(address: &str, local_domains: &[String]) -> bool {
    let domain = address
        .rsplit_once('@')
        .map_or("", |(_, domain)| domain)
        .trim_end_matches('>');
    local_domains
        .iter()
        .any(|local| local.eq_ignore_ascii_case(domain))
}

pub(crate) fn judge(input: &Input<'_>) -> Judgement {
    let features = input.features;
    if features.direction != Direction::Inbound {
        // Mail from local senders is learned, not judged.
        return Judgement::default();
    }

    // One graph query for every part of the message.
    let attachment_names: Vec<(String, String)> = input
        .content
        .attachments
        .iter()
        .map(|attachment| (attachment.name.clone(), attachment.sha256.clone()))
        .collect();
    let clusters = campaign::candidates(features, input.policy, &attachment_names);
    let lookup = lookup(features, input.time, input.policy, &clusters);
    let familiarity = match input.graph.lookup(&lookup) {
        Ok(familiarity) => familiarity,
        Err(err) => {
            tracing::warn!(error = %err, sender = %features.sender, "graph lookup failed; judging the message without history");
            Familiarity::default()
        }
    };

    // Fire every family of signals.
    let mut fired = Vec::new();
    sender::fire(features, &familiarity, input.roles, &mut fired);
    let campaign = campaign::assess(features, &familiarity, input.policy, &clusters);
    fired.extend(campaign.fired.iter().cloned());
    links::fire(features, &familiarity, input.content, &mut fired);
    attachments::fire(features, &familiarity, &input.policy.baseline, &mut fired);
    attachments::findings(input.message, input.content, &mut fired);
    script::fire(features, &familiarity, &input.policy.baseline, &mut fired);
    origin::fire(features, &familiarity, &input.policy.baseline, &mut fired);
    auth::fire(input.message, input.policy, input.local_domains, &mut fired);
    impersonation::fire(
        input.envelope,
        input.message,
        input.policy,
        input.local_domains,
        &mut fired,
    );
    let mut endpoint_alerts = Vec::new();
    if let Some(source) = input.enrichment {
        endpoint_alerts = enrichment::endpoint_alerts(source, input, &mut fired);
        enrichment::domain_young(source, input, &familiarity, &mut fired);
    }

    // Weigh per recipient domain and keep the most severe outcome.
    let (scoring, mut signals, score) = weigh_strictest(&fired, input.policy, &features.recipients);
    let mut action = scoring.action_for(score);

    // Rules that override the score.
    let first_contact = familiarity.sender.is_none();
    let plain = input.content.links.is_empty() && input.content.attachments.is_empty();
    if first_contact && plain && action > input.policy.plain_first_contact_max {
        action = input.policy.plain_first_contact_max;
        signals.push(rule(
            "policy.plain_first_contact",
            format!(
                "a first message without links or attachments gets at most {}",
                action_name(action)
            ),
        ));
    }
    if let Some(response) = &campaign.response {
        let held = scoring.action_for(f64::INFINITY).min(Action::Hold);
        if action < held {
            action = held;
        }
        let until = OffsetDateTime::from_unix_timestamp(response.expires)
            .ok()
            .and_then(|time| {
                time.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_else(|| response.expires.to_string());
        signals.push(rule(
            "campaign.response",
            format!(
                "matches campaign response {}, in force until {until}, opened because {}",
                response.id, response.reason
            ),
        ));
    }
    match input.policy.list_match(&features.sender) {
        Some(ListMatch::Allow(entry)) => {
            action = Action::Deliver;
            signals.push(rule(
                "policy.allow",
                format!("{} is on the allow list as {entry}", features.sender),
            ));
        }
        Some(ListMatch::Block(entry)) => {
            action = input.policy.block_action;
            signals.push(rule(
                "policy.block",
                format!("{} is on the block list as {entry}", features.sender),
            ));
        }
        None => {}
    }

    Judgement {
        signals,
        score,
        action,
        campaign: campaign.record,
        clusters: campaign.clusters,
        escalations: campaign.escalations,
        endpoint_alerts,
    }
}

fn lookup(
    features: &Features,
    time: OffsetDateTime,
    policy: &Policy,
    clusters: &[campaign::Cluster],
) -> Lookup {
    let mut lookup = Lookup::new(time, features.sender.clone(), features.recipients.clone());
    lookup.key = features.key.clone();
    lookup.display_name = features.display_name.clone();
    lookup.link_domains = features.link_domains.clone();
    lookup.attachments = features.attachments.clone();
    lookup.scripts = features
        .scripts
        .iter()
        .map(|source| source.script.clone())
        .collect();
    lookup.origin_networks = features
        .origin
        .as_ref()
        .map(|origin| origin.keys())
        .unwrap_or_default();
    lookup.client_networks = features
        .client
        .as_ref()
        .map(|client| client.keys())
        .unwrap_or_default();
    lookup.reply_to_ids = features.reply_to_ids.clone();
    lookup.clusters = clusters.iter().map(|cluster| cluster.key.clone()).collect();
    lookup.window = policy.campaign.window;
    lookup
}

/// Evidence clauses kept per signal; the rest are counted.
const MAX_EVIDENCE_PARTS: usize = 5;

/// Merges signals that fired more than once into one record per id (the
/// evidence joined, at most [`MAX_EVIDENCE_PARTS`] clauses), so that each id
/// adds its weight once.
fn merge(fired: &[Fired], scoring: &Scoring) -> Vec<SignalRecord> {
    // Each record with the clauses it joined and the number it left out.
    let mut merged: Vec<(SignalRecord, Vec<&str>, usize)> = Vec::new();
    for signal in fired {
        let weight = if signal.in_attachment {
            scoring.weight_in_attachment(signal.id)
        } else {
            scoring.weight(signal.id)
        } * signal.factor;
        let Some((record, parts, omitted)) = merged
            .iter_mut()
            .find(|(record, _, _)| record.id == signal.id)
        else {
            merged.push((
                SignalRecord {
                    id: signal.id.to_owned(),
                    weight,
                    evidence: String::new(),
                },
                vec![signal.evidence.as_str()],
                0,
            ));
            continue;
        };
        if weight.abs() > record.weight.abs() {
            record.weight = weight;
        }
        if parts.contains(&signal.evidence.as_str()) {
            continue;
        }
        if parts.len() < MAX_EVIDENCE_PARTS {
            parts.push(&signal.evidence);
        } else {
            *omitted += 1;
        }
    }
    merged
        .into_iter()
        .map(|(mut record, parts, omitted)| {
            record.evidence = parts.join("; ");
            if omitted > 0 {
                record.evidence.push_str(&format!("; and {omitted} more"));
            }
            record
        })
        .collect()
}

/// Scores under each recipient domain's scoring and returns the strictest.
fn weigh_strictest<'p>(
    fired: &[Fired],
    policy: &'p Policy,
    recipients: &[String],
) -> (&'p Scoring, Vec<SignalRecord>, f64) {
    let mut domains: Vec<&str> = recipients
        .iter()
        .map(|recipient| gatehouse_graph::keys::address_domain(recipient))
        .collect();
    domains.sort_unstable();
    domains.dedup();
    let mut best: Option<(&Scoring, Vec<SignalRecord>, f64)> = None;
    let scorings = domains
        .iter()
        .map(|domain| policy.scoring_for(domain))
        .chain(std::iter::once(&policy.scoring).filter(|_| domains.is_empty()));
    for scoring in scorings {
        let records = merge(fired, scoring);
        let score = total(&records);
        let stricter = match &best {
            None => true,
            Some((current, _, current_score)) => {
                let action = scoring.action_for(score);
                let current_action = current.action_for(*current_score);
                action > current_action || (action == current_action && score > *current_score)
            }
        };
        if stricter {
            best = Some((scoring, records, score));
        }
    }
    best.unwrap_or_else(|| {
        let records = merge(fired, &policy.scoring);
        let score = total(&records);
        (&policy.scoring, records, score)
    })
}

/// Adds the weights up from 0.0. `Iterator::sum` of no floats is -0.0,
/// which verdicts and `quarantine list` would print as "-0.0".
fn total(records: &[SignalRecord]) -> f64 {
    records.iter().fold(0.0, |sum, record| sum + record.weight)
}

fn rule(id: &str, evidence: String) -> SignalRecord {
    SignalRecord {
        id: id.to_owned(),
        weight: 0.0,
        evidence,
    }
}

fn action_name(action: Action) -> &'static str {
    match action {
        Action::Deliver => "deliver",
        Action::Tag => "tag",
        Action::Hold => "hold",
        Action::Reject => "reject",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_signals_score_positive_zero() {
        let score = total(&[]);
        assert_eq!(score.to_bits(), 0.0_f64.to_bits(), "{score:?}");
    }
}
