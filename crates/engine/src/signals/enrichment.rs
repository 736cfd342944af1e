//! Facts from systems outside the message: endpoint alerts about its people
//! (`endpoint.alert`) and the registration dates of its new domains
//! (`link.domain_young`).
//!
//! The engine reads them through the [`Enrichment`] trait and performs no
//! network I/O itself. An implementation (Gatehouse's is in
//! `gatehouse-integrations`) keeps its alert index current from a task of its
//! own and bounds every look-up by a timeout, because the analysis waits for
//! it on a blocking thread.

use gatehouse_graph::{Familiarity, keys};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::features::Features;
use super::{Fired, Input};

/// Sources of facts about a message that the message does not carry.
///
/// Both methods are called on the analysis thread and must return within a
/// bounded time. Returning nothing is always correct: the signals then do
/// not fire.
pub trait Enrichment: Send + Sync {
    /// Returns the active endpoint alerts that name a recipient, the sender,
    /// a link host or the Message-ID of the message.
    fn endpoint_alerts(&self, query: &AlertQuery<'_>) -> Vec<EndpointAlert>;

    /// Returns the registration date of each domain that could be found
    /// within the implementation's timeout. A domain left out, or without a
    /// date, is unknown.
    fn registration_dates(&self, domains: &[String]) -> Vec<DomainRegistration>;
}

/// The parts of a message that an endpoint alert can name, normalised as the
/// graph spells them (lower-case addresses and hosts).
#[derive(Debug, Clone, Copy)]
pub struct AlertQuery<'a> {
    pub recipients: &'a [String],
    pub sender: &'a str,
    /// Hosts of every link, without duplicates.
    pub link_hosts: &'a [String],
    /// The Message-ID without angle brackets.
    pub message_id: Option<&'a str>,
}

/// An active endpoint alert that concerns a message, as the enrichment
/// found it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointAlert {
    pub alert_id: String,
    pub title: String,
    /// As the alert source spells it, such as `high`.
    pub severity: String,
    pub category: Option<String>,
    /// The product that raised it, such as `microsoftDefenderForEndpoint`.
    pub service_source: String,
    /// The parts of the message that matched fields of the alert's evidence.
    pub matched: Vec<AlertMatchKey>,
    /// The alert recurs for its users and devices.
    pub routine: bool,
    /// None of its users and devices had an alert of its category before.
    pub first_seen_category: bool,
    /// Its severity is above the highest its users and devices had.
    pub severity_above_usual: bool,
}

/// One part of a message that matched one evidence field of an alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertMatchKey {
    /// `recipient`, `sender`, `link_host` or `message_id`.
    pub part: String,
    /// The normalised value that matched, such as `bob@example.com`.
    pub value: String,
    /// The evidence field, such as `message_recipient` or `user_principal_name`.
    pub field: String,
}

/// An endpoint alert in the verdict, with the factor by which the policy's
/// `[endpoint_alert]` scaled the `endpoint.alert` weight for its novelty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointAlertRecord {
    #[serde(flatten)]
    pub alert: EndpointAlert,
    pub factor: f64,
}

/// The registration date of a registrable domain, or `None` when the
/// registry had none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainRegistration {
    pub domain: String,
    pub registered: Option<OffsetDateTime>,
}

/// Fires `endpoint.alert` with one weight factor per alert, and returns the
/// alerts for the verdict.
pub(crate) fn endpoint_alerts(
    source: &dyn Enrichment,
    input: &Input<'_>,
    fired: &mut Vec<Fired>,
) -> Vec<EndpointAlertRecord> {
    let features = input.features;
    let mut link_hosts: Vec<String> = input
        .content
        .links
        .iter()
        .filter_map(|link| link.host.clone())
        .collect();
    link_hosts.sort_unstable();
    link_hosts.dedup();
    let query = AlertQuery {
        recipients: &features.recipients,
        sender: &features.sender,
        link_hosts: &link_hosts,
        message_id: features.message_id.as_deref(),
    };
    let alerts = source.endpoint_alerts(&query);

    let novelty = &input.policy.endpoint_alert;
    let mut records = Vec::with_capacity(alerts.len());
    for alert in alerts {
        let factor = novelty.factor(
            alert.routine,
            alert.first_seen_category,
            alert.severity_above_usual,
        );
        fired.push(Fired::new("endpoint.alert", alert_evidence(&alert, factor)).scaled(factor));
        records.push(EndpointAlertRecord { alert, factor });
    }
    records
}

fn alert_evidence(alert: &EndpointAlert, factor: f64) -> String {
    let matched: Vec<String> = alert
        .matched
        .iter()
        .map(|key| format!("{} {}", key.part.replace('_', " "), key.value))
        .collect();
    let novelty = if alert.first_seen_category {
        "first alert of its category"
    } else if alert.routine && !alert.severity_above_usual {
        "routine"
    } else {
        "seen before"
    };
    let above = if alert.severity_above_usual {
        ", above the usual severity"
    } else {
        ""
    };
    format!(
        "alert {} {:?} ({} severity, {}, from {}) names {}: {novelty}{above}, factor {factor}",
        alert.alert_id,
        alert.title,
        alert.severity,
        alert.category.as_deref().unwrap_or("no category"),
        alert.service_source,
        matched.join(", ")
    )
}

/// Fires `link.domain_young` for the new link domains and the new sender
/// domain that were registered less than the policy's `domain_young_days`
/// before the message. Domains in the graph are never looked up.
pub(crate) fn domain_young(
    source: &dyn Enrichment,
    input: &Input<'_>,
    familiarity: &Familiarity,
    fired: &mut Vec<Fired>,
) {
    let domains = new_domains(input.features, familiarity, input.local_domains);
    if domains.is_empty() {
        return;
    }
    for registration in source.registration_dates(&domains) {
        // Only the domains asked about count, whatever the source returned.
        if !domains.contains(&registration.domain) {
            continue;
        }
        let Some(registered) = registration.registered else {
            continue;
        };
        let age = input.time - registered;
        // A registration after the message belongs to a later owner of the name.
        if age.is_negative() || age >= input.policy.domain_young {
            continue;
        }
        let domain = registration.domain;
        let role = if input
            .content
            .links
            .iter()
            .any(|link| keys::registrable_domain(&link.domain) == domain)
        {
            "links to"
        } else {
            "the sender uses"
        };
        let date = registered
            .format(&Rfc3339)
            .unwrap_or_else(|_| registered.unix_timestamp().to_string());
        fired.push(Fired::new(
            "link.domain_young",
            format!(
                "{role} {domain}, registered {date}, {} days before the message",
                age.whole_days()
            ),
        ));
    }
}

/// Returns the domains never seen here: new link domains and the sender's
/// domain when it is new, without local domains or duplicates. As for
/// `link.domain_new`, a link to a familiar sender's own domain is not new.
fn new_domains(
    features: &Features,
    familiarity: &Familiarity,
    local_domains: &[String],
) -> Vec<String> {
    let sender_domain_known = familiarity.sender_domain.is_some();
    let mut domains: Vec<String> = familiarity
        .link_domains
        .iter()
        .filter(|known| known.fact.is_none())
        .filter(|known| !(sender_domain_known && known.name == features.sender_domain))
        .map(|known| known.name.clone())
        .collect();
    if familiarity.sender_domain.is_none() && !features.sender_domain.is_empty() {
        domains.push(features.sender_domain.clone());
    }
    let is_local = |domain: &str| {
        local_domains
            .iter()
            .any(|local| domain == local || domain.ends_with(&format!(".{local}")))
    };
    domains.retain(|domain| !domain.is_empty() && !is_local(domain));
    domains.sort_unstable();
    domains.dedup();
    domains
}
