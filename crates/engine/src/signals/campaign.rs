//! `campaign.sender_pattern`, `campaign.burst` and time-boxed responses.
//!
//! Messages from new senders join sliding windows (the policy's
//! `campaign.window_hours`) keyed by cluster:
//! - `sender:DOMAIN|SHAPE`: new addresses of one domain with one local-part shape;
//! - `domain:DOMAIN`: all new senders of one domain;
//! - `hash:SHA256`: one attachment;
//! - `link:DOMAIN`: one link domain never seen before;
//! - `subject:TEMPLATE`: one subject with its digits removed.
//!
//! Held mail joins the windows too, so a campaign that is being held is still
//! seen whole. When a cluster crosses its threshold the message carries an
//! escalation, and once it is recorded every later message of that cluster
//! (sender shape, attachment hash or link domain) is held until the response
//! expires or a person lifts it.

use std::collections::BTreeSet;

use gatehouse_graph::{Escalation, Familiarity, Response, WindowSummary, keys};
use gatehouse_policy::Policy;
use serde::{Deserialize, Serialize};

use super::Fired;
use super::features::Features;

/// Senders named in one piece of evidence; the rest are counted.
const MAX_NAMED_SENDERS: usize = 5;
/// Senders and earlier members listed on a verdict's campaign record.
const MAX_LISTED: usize = 50;

/// The campaign a verdict belongs to, for grouping held mail and recalling delivered members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignRecord {
    /// The cluster key, such as `sender:brand.example|9{5}`.
    pub cluster: String,
    /// The signal (or `campaign.response`) that tied the message to the cluster.
    pub reason: String,
    /// Distinct senders in the window, this message included (at most 50 listed).
    pub senders: Vec<String>,
    /// Distinct recipients in the window, this message included.
    pub recipients: usize,
    /// Messages in the window, this message included.
    pub messages: usize,
    /// Whether the window held more messages than were read, so that the counts are lower bounds.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// Earlier members that were delivered, so that an operator can recall them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delivered_earlier: Vec<EarlierMember>,
    /// The id of the response in force that held this message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<String>,
}

/// An earlier message of a campaign that reached its recipients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EarlierMember {
    pub message_id: Option<String>,
    pub sender: String,
    pub recipients: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClusterKind {
    SenderShape,
    Domain,
    Hash,
    LinkDomain,
    Subject,
}

/// One window a message may belong to.
#[derive(Debug, Clone)]
pub(crate) struct Cluster {
    pub(crate) key: String,
    pub(crate) kind: ClusterKind,
    /// The attachment name or link domain, for evidence.
    pub(crate) label: String,
}

/// Lists every cluster a message could belong to. Which ones it joins depends
/// on what the graph has learned (see [`assess`]).
pub(crate) fn candidates(
    features: &Features,
    policy: &Policy,
    attachment_names: &[(String, String)],
) -> Vec<Cluster> {
    let mut clusters = Vec::new();
    let shared = policy
        .campaign
        .shared_domains
        .contains(&features.sender_domain);
    if !shared && !features.sender_domain.is_empty() {
        clusters.push(Cluster {
            key: format!(
                "sender:{}|{}",
                features.sender_domain, features.sender_shape
            ),
            kind: ClusterKind::SenderShape,
            label: keys::describe_shape(&features.sender_shape),
        });
        clusters.push(Cluster {
            key: format!("domain:{}", features.sender_domain),
            kind: ClusterKind::Domain,
            label: features.sender_domain.clone(),
        });
    }
    for attachment in &features.attachments {
        let name = attachment_names
            .iter()
            .find(|(_, sha256)| *sha256 == attachment.sha256)
            .map(|(name, _)| name.clone())
            .unwrap_or_else(|| attachment.kind.clone());
        clusters.push(Cluster {
            key: format!("hash:{}", attachment.sha256),
            kind: ClusterKind::Hash,
            label: name,
        });
    }
    for domain in &features.link_domains {
        clusters.push(Cluster {
            key: format!("link:{domain}"),
            kind: ClusterKind::LinkDomain,
            label: domain.clone(),
        });
    }
    if let Some(template) = &features.subject_template {
        let template: String = template.chars().take(120).collect();
        clusters.push(Cluster {
            key: format!("subject:{template}"),
            kind: ClusterKind::Subject,
            label: template,
        });
    }
    clusters
}

/// The campaign stage's result.
#[derive(Debug, Default)]
pub(crate) struct Assessment {
    pub(crate) fired: Vec<Fired>,
    /// Clusters the message joins when it is recorded.
    pub(crate) clusters: Vec<String>,
    pub(crate) escalations: Vec<Escalation>,
    pub(crate) record: Option<CampaignRecord>,
    /// A response in force for one of the message's clusters.
    pub(crate) response: Option<Response>,
}

/// The window of one cluster with this message added.
struct Counted<'a> {
    cluster: &'a Cluster,
    window: &'a WindowSummary,
    senders: BTreeSet<String>,
    recipients: BTreeSet<String>,
    messages: usize,
}

impl<'a> Counted<'a> {
    fn new(cluster: &'a Cluster, window: &'a WindowSummary, features: &Features) -> Counted<'a> {
        let mut senders: BTreeSet<String> =
            window.senders().into_iter().map(str::to_owned).collect();
        senders.insert(features.sender.clone());
        let mut recipients: BTreeSet<String> =
            window.recipients().into_iter().map(str::to_owned).collect();
        recipients.extend(features.recipients.iter().cloned());
        Counted {
            cluster,
            window,
            senders,
            recipients,
            messages: window.events.len() + 1,
        }
    }

    /// Returns "at least " when the window had more events than were read, so that counts are lower bounds.
    fn at_least(&self) -> &'static str {
        if self.window.truncated {
            "at least "
        } else {
            ""
        }
    }

    fn record(&self, reason: &str) -> CampaignRecord {
        let delivered_earlier = self
            .window
            .events
            .iter()
            .filter(|event| !event.held)
            .take(MAX_LISTED)
            .map(|event| EarlierMember {
                message_id: event.message_id.clone(),
                sender: event.sender.clone(),
                recipients: event.recipients.clone(),
            })
            .collect();
        CampaignRecord {
            cluster: self.cluster.key.clone(),
            reason: reason.to_owned(),
            senders: self.senders.iter().take(MAX_LISTED).cloned().collect(),
            recipients: self.recipients.len(),
            messages: self.messages,
            truncated: self.window.truncated,
            delivered_earlier,
            response: None,
        }
    }
}

fn hours(policy: &Policy) -> String {
    let hours = policy.campaign.window.whole_minutes() as f64 / 60.0;
    if hours.fract() == 0.0 {
        format!("{hours:.0} h")
    } else {
        format!("{hours:.1} h")
    }
}

fn named_senders(senders: &BTreeSet<String>) -> String {
    let locals: Vec<&str> = senders
        .iter()
        .take(MAX_NAMED_SENDERS)
        .map(|sender| {
            sender
                .rsplit_once('@')
                .map(|(local, _)| local)
                .unwrap_or(sender)
        })
        .collect();
    if senders.len() > MAX_NAMED_SENDERS {
        format!("{}, …", locals.join(", "))
    } else {
        locals.join(", ")
    }
}

/// Returns the longest prefix all local parts share, for numeric series such as 38117, 38240.
fn common_prefix(senders: &BTreeSet<String>) -> String {
    let mut locals = senders.iter().map(|sender| {
        sender
            .rsplit_once('@')
            .map(|(local, _)| local)
            .unwrap_or(sender)
    });
    let Some(first) = locals.next() else {
        return String::new();
    };
    let mut prefix: &str = first;
    for local in locals {
        let shared = prefix
            .char_indices()
            .zip(local.chars())
            .take_while(|((_, a), b)| a == b)
            .last()
            .map(|((index, character), _)| index + character.len_utf8())
            .unwrap_or(0);
        prefix = &prefix[..shared];
    }
    prefix.to_owned()
}

pub(crate) fn assess(
    features: &Features,
    familiarity: &Familiarity,
    policy: &Policy,
    clusters: &[Cluster],
) -> Assessment {
    let mut assessment = Assessment {
        response: familiarity.responses.first().cloned(),
        ..Assessment::default()
    };
    let sender_new = familiarity.sender.is_none();
    let window_text = hours(policy);

    // Which clusters this message joins: all of them for a new sender, links only when the domain is new.
    let new_link_domains: BTreeSet<&str> = familiarity
        .link_domains
        .iter()
        .filter(|known| known.fact.is_none())
        .map(|known| known.name.as_str())
        .collect();
    let mut counted = Vec::new();
    for (cluster, window) in clusters.iter().zip(&familiarity.windows) {
        let joins = sender_new
            && match cluster.kind {
                ClusterKind::LinkDomain => new_link_domains.contains(cluster.label.as_str()),
                _ => true,
            };
        if joins {
            assessment.clusters.push(cluster.key.clone());
            counted.push(Counted::new(cluster, window, features));
        }
    }

    // campaign.sender_pattern: several new addresses of one domain share a local-part shape.
    let shape = counted
        .iter()
        .find(|count| count.cluster.kind == ClusterKind::SenderShape);
    let domain = counted
        .iter()
        .find(|count| count.cluster.kind == ClusterKind::Domain);
    if let Some(shape) = shape
        && shape.senders.len() >= policy.campaign.min_senders
    {
        let described = &shape.cluster.label;
        let prefix = common_prefix(&shape.senders);
        let series = if features.sender_shape.starts_with("9{") && !prefix.is_empty() {
            format!(" sharing the prefix {prefix}")
        } else {
            String::new()
        };
        let all_senders = domain
            .map(|domain| domain.senders.len())
            .unwrap_or(shape.senders.len());
        let all_prefix = domain.map(Counted::at_least).unwrap_or_default();
        let evidence = if all_senders > shape.senders.len() {
            format!(
                "{all_prefix}{all_senders} new senders from {} in {window_text}, {}{} with {described} local parts{series} ({})",
                features.sender_domain,
                shape.at_least(),
                shape.senders.len(),
                named_senders(&shape.senders)
            )
        } else {
            format!(
                "{}{} new senders from {} in {window_text}, all with {described} local parts{series} ({})",
                shape.at_least(),
                shape.senders.len(),
                features.sender_domain,
                named_senders(&shape.senders)
            )
        };
        assessment
            .fired
            .push(Fired::new("campaign.sender_pattern", evidence.clone()));
        assessment.record = Some(shape.record("campaign.sender_pattern"));
        push_escalation(
            &mut assessment.escalations,
            &shape.cluster.key,
            evidence,
            policy,
        );
    }

    // campaign.burst: one cluster reached many recipients within the window.
    let mut bursts: Vec<&Counted<'_>> = counted
        .iter()
        .filter(|count| count.recipients.len() >= policy.campaign.min_recipients)
        .filter(|count| count.cluster.kind != ClusterKind::SenderShape)
        .collect();
    bursts.sort_by(|a, b| {
        b.recipients
            .len()
            .cmp(&a.recipients.len())
            .then_with(|| a.cluster.key.cmp(&b.cluster.key))
    });
    if let Some(strongest) = bursts.first() {
        let sentences: Vec<String> = bursts
            .iter()
            .take(3)
            .map(|count| burst_sentence(count, &window_text))
            .collect();
        let evidence = sentences.join("; ");
        assessment
            .fired
            .push(Fired::new("campaign.burst", evidence));
        if assessment.record.is_none() {
            assessment.record = Some(strongest.record("campaign.burst"));
        }
        for count in &bursts {
            let (key, reason) = match count.cluster.kind {
                ClusterKind::Domain => match shape {
                    Some(shape) => (
                        shape.cluster.key.clone(),
                        burst_sentence(count, &window_text),
                    ),
                    None => continue,
                },
                ClusterKind::Hash | ClusterKind::LinkDomain => (
                    count.cluster.key.clone(),
                    burst_sentence(count, &window_text),
                ),
                ClusterKind::Subject | ClusterKind::SenderShape => continue,
            };
            push_escalation(&mut assessment.escalations, &key, reason, policy);
        }
    }

    // A response in force ties the message to its cluster even when nothing else fired.
    if let Some(response) = &assessment.response {
        match &mut assessment.record {
            Some(record) => record.response = Some(response.id.clone()),
            None => {
                let cluster = clusters
                    .iter()
                    .find(|cluster| cluster.key == response.cluster);
                let window = familiarity
                    .windows
                    .iter()
                    .zip(clusters)
                    .find(|(_, candidate)| candidate.key == response.cluster)
                    .map(|(window, _)| window);
                if let (Some(cluster), Some(window)) = (cluster, window) {
                    let mut record =
                        Counted::new(cluster, window, features).record("campaign.response");
                    record.response = Some(response.id.clone());
                    assessment.record = Some(record);
                }
            }
        }
    }
    assessment
}

fn burst_sentence(count: &Counted<'_>, window_text: &str) -> String {
    let recipients = format!("{}{}", count.at_least(), count.recipients.len());
    let senders = count.senders.len();
    let from = if senders == 1 && !count.window.truncated {
        "1 new sender".to_owned()
    } else {
        format!("{}{senders} new senders", count.at_least())
    };
    match count.cluster.kind {
        ClusterKind::Domain => format!(
            "{recipients} recipients got mail from {from} of {} in {window_text}",
            count.cluster.label
        ),
        ClusterKind::Hash => format!(
            "{recipients} recipients got the same attachment {} from {from} in {window_text}",
            count.cluster.label
        ),
        ClusterKind::LinkDomain => format!(
            "{recipients} recipients got links to {}, never seen before, from {from} in {window_text}",
            count.cluster.label
        ),
        ClusterKind::Subject => format!(
            "{recipients} recipients got the subject “{}” from {from} in {window_text}",
            count.cluster.label
        ),
        ClusterKind::SenderShape => {
            format!("{recipients} recipients got mail from {from} in {window_text}")
        }
    }
}

fn push_escalation(
    escalations: &mut Vec<Escalation>,
    cluster: &str,
    reason: String,
    policy: &Policy,
) {
    if policy.campaign.response.is_zero()
        || escalations
            .iter()
            .any(|escalation| escalation.cluster == cluster)
    {
        return;
    }
    escalations.push(Escalation {
        cluster: cluster.to_owned(),
        reason,
        duration: policy.campaign.response,
    });
}

/// Held verdicts grouped by campaign cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CampaignGroup {
    /// The cluster key, or `None` for verdicts without a campaign.
    pub cluster: Option<String>,
    /// Verdict (quarantine) ids, in the order given.
    pub verdicts: Vec<String>,
    /// Distinct senders over the group.
    pub senders: Vec<String>,
    /// Distinct recipients over the group.
    pub recipients: Vec<String>,
}

/// Groups verdicts by their campaign cluster, largest group first; verdicts
/// without a campaign form one group with `cluster: None`, listed last.
pub fn group_by_campaign(verdicts: &[crate::Verdict]) -> Vec<CampaignGroup> {
    let mut groups: Vec<CampaignGroup> = Vec::new();
    for verdict in verdicts {
        let cluster = verdict
            .campaign
            .as_ref()
            .map(|campaign| campaign.cluster.clone());
        let index = match groups.iter().position(|group| group.cluster == cluster) {
            Some(index) => index,
            None => {
                groups.push(CampaignGroup {
                    cluster,
                    verdicts: Vec::new(),
                    senders: Vec::new(),
                    recipients: Vec::new(),
                });
                groups.len() - 1
            }
        };
        let group = &mut groups[index];
        group.verdicts.push(verdict.id.clone());
        let sender = keys::address(&verdict.envelope.mail_from);
        if !group.senders.contains(&sender) {
            group.senders.push(sender);
        }
        for recipient in &verdict.envelope.rcpt_to {
            let recipient = keys::address(recipient);
            if !group.recipients.contains(&recipient) {
                group.recipients.push(recipient);
            }
        }
    }
    groups.sort_by(|a, b| {
        a.cluster
            .is_none()
            .cmp(&b.cluster.is_none())
            .then_with(|| b.verdicts.len().cmp(&a.verdicts.len()))
    });
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_series_prefix() {
        let senders: BTreeSet<String> = ["38117@b.example", "38240@b.example", "38302@b.example"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        assert_eq!(common_prefix(&senders), "38");
    }

    #[test]
    fn no_prefix_for_unrelated_senders() {
        let senders: BTreeSet<String> = ["12345@b.example", "98765@b.example"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        assert_eq!(common_prefix(&senders), "");
    }
}
