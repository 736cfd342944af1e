//! The index of active alerts, and the query that finds those concerning a
//! message: the evidence of `endpoint.alert`.
//!
//! An alert is indexed under every user principal name, mailbox address,
//! `analyzedMessageEvidence` recipient, sender and Internet Message-ID, device
//! logged-on account and suspicious URL host it names. A newer version of an
//! alert replaces the old one, and a resolved alert leaves the index.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::baseline::{AlertBaseline, AlertNovelty};
use crate::defender::{Alert, AlertSeverity, Evidence, EvidenceVerdict, ServiceSource};

/// Limits of the alert index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IndexLimits {
    /// Active alerts kept; the one updated longest ago is dropped first.
    pub max_alerts: usize,
    /// Keys indexed per alert. An alert about a mail campaign can name thousands
    /// of recipients; the keys beyond this are not indexed.
    pub max_keys_per_alert: usize,
}

impl Default for IndexLimits {
    fn default() -> Self {
        Self {
            max_alerts: 100_000,
            max_keys_per_alert: 10_000,
        }
    }
}

/// The part of a message that matched an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessagePart {
    Recipient,
    Sender,
    LinkHost,
    MessageId,
}

/// The evidence field of an alert that matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceField {
    UserPrincipalName,
    MailboxAddress,
    MessageRecipient,
    MessageSender,
    InternetMessageId,
    /// A Windows account logged on to an alerting device, compared with the local
    /// part of an address.
    DeviceLoggedOnUser,
    UrlHost,
}

impl MessagePart {
    /// Returns the name used in verdicts, such as `link_host`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Recipient => "recipient",
            Self::Sender => "sender",
            Self::LinkHost => "link_host",
            Self::MessageId => "message_id",
        }
    }
}

impl EvidenceField {
    /// Returns the name used in verdicts, such as `message_recipient`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UserPrincipalName => "user_principal_name",
            Self::MailboxAddress => "mailbox_address",
            Self::MessageRecipient => "message_recipient",
            Self::MessageSender => "message_sender",
            Self::InternetMessageId => "internet_message_id",
            Self::DeviceLoggedOnUser => "device_logged_on_user",
            Self::UrlHost => "url_host",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Key {
    Address(String),
    Account(String),
    MessageId(String),
    Host(String),
}

/// One key of a message that matched one alert.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MatchedKey {
    pub part: MessagePart,
    /// The normalised value that matched, such as `bob@example.com`.
    pub value: String,
    pub field: EvidenceField,
}

/// An active alert that concerns a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertMatch {
    pub alert_id: String,
    pub title: String,
    pub severity: AlertSeverity,
    pub category: Option<String>,
    pub service_source: ServiceSource,
    #[serde(with = "time::serde::rfc3339")]
    pub last_update: OffsetDateTime,
    /// The comparison with the subjects' history made when the alert was first read.
    pub novelty: AlertNovelty,
    pub matched: Vec<MatchedKey>,
}

impl AlertMatch {
    /// Returns a one-line description for the signal's evidence, such as
    /// `alert da63… "Phish delivered" (high, InitialAccess, microsoftDefenderForOffice365) recipient bob@example.com`.
    pub fn evidence(&self) -> String {
        let keys: Vec<String> = self
            .matched
            .iter()
            .map(|key| format!("{} {}", part_name(key.part), key.value))
            .collect();
        format!(
            "alert {} {:?} ({}, {}, {}) {}",
            self.alert_id,
            self.title,
            self.severity,
            self.category.as_deref().unwrap_or("no category"),
            self.service_source,
            keys.join(", ")
        )
    }
}

fn part_name(part: MessagePart) -> &'static str {
    match part {
        MessagePart::Recipient => "recipient",
        MessagePart::Sender => "sender",
        MessagePart::LinkHost => "link host",
        MessagePart::MessageId => "message-id",
    }
}

/// The keys of one message to look up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorrelationQuery {
    /// Envelope or header recipients.
    pub recipients: Vec<String>,
    /// The envelope or `From` sender.
    pub sender: Option<String>,
    /// Hosts of the links found in the message.
    pub link_hosts: Vec<String>,
    /// The `Message-ID`, with or without angle brackets.
    pub message_id: Option<String>,
}

/// The changes made by one ingest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestSummary {
    /// Alert ids indexed for the first time.
    pub added: Vec<String>,
    /// Alert ids whose newer version replaced the indexed one.
    pub updated: Vec<String>,
    /// Alert ids that were resolved and left the index.
    pub removed: Vec<String>,
    /// Versions older than or equal to the indexed one, ignored.
    pub stale: usize,
    /// Alert ids dropped because the index was full.
    pub evicted: Vec<String>,
}

struct IndexedAlert {
    alert: Alert,
    novelty: AlertNovelty,
    keys: Vec<(Key, EvidenceField)>,
}

/// The state of an [`AlertIndex`] to store between runs: the active alerts
/// with their first assessment, the resolved versions and the baseline.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IndexSnapshot {
    pub alerts: Vec<StoredAlert>,
    pub resolved: HashMap<String, OffsetDateTime>,
    pub baseline: AlertBaseline,
}

/// An active alert in an [`IndexSnapshot`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredAlert {
    pub alert: Alert,
    pub novelty: AlertNovelty,
}

/// Active alerts by the users, devices, messages and hosts they name.
pub struct AlertIndex {
    alerts: HashMap<String, IndexedAlert>,
    by_key: HashMap<Key, BTreeSet<(String, EvidenceField)>>,
    /// The version last read of each resolved alert, so that an older active
    /// version read later does not bring it back.
    resolved: HashMap<String, OffsetDateTime>,
    baseline: AlertBaseline,
    limits: IndexLimits,
}

impl AlertIndex {
    /// Creates an empty index that assesses new alerts against `baseline`.
    pub fn new(baseline: AlertBaseline, limits: IndexLimits) -> Self {
        Self {
            alerts: HashMap::new(),
            by_key: HashMap::new(),
            resolved: HashMap::new(),
            baseline,
            limits,
        }
    }

    /// Rebuilds an index from a snapshot without assessing or recording the
    /// alerts again, so that a restart neither changes their novelty nor
    /// counts them twice in the baseline. `weights` and `baseline_limits`
    /// replace the stored ones.
    pub fn from_snapshot(
        snapshot: IndexSnapshot,
        weights: crate::baseline::NoveltyWeights,
        baseline_limits: crate::baseline::BaselineLimits,
        limits: IndexLimits,
    ) -> Self {
        let mut baseline = snapshot.baseline;
        baseline.configure(weights, baseline_limits);
        let mut index = Self::new(baseline, limits);
        index.resolved = snapshot.resolved;
        for StoredAlert { alert, novelty } in snapshot.alerts {
            let id = alert.id.clone();
            let keys = alert_keys(&alert, index.limits.max_keys_per_alert);
            for (key, field) in &keys {
                index
                    .by_key
                    .entry(key.clone())
                    .or_default()
                    .insert((id.clone(), *field));
            }
            index.alerts.insert(
                id,
                IndexedAlert {
                    alert,
                    novelty,
                    keys,
                },
            );
        }
        index.evict();
        index
    }

    /// Returns the state to store, the alerts in id order.
    pub fn snapshot(&self) -> IndexSnapshot {
        let mut alerts: Vec<StoredAlert> = self
            .alerts
            .values()
            .map(|indexed| StoredAlert {
                alert: indexed.alert.clone(),
                novelty: indexed.novelty.clone(),
            })
            .collect();
        alerts.sort_by(|a, b| a.alert.id.cmp(&b.alert.id));
        IndexSnapshot {
            alerts,
            resolved: self.resolved.clone(),
            baseline: self.baseline.clone(),
        }
    }

    /// Returns the number of active alerts.
    pub fn len(&self) -> usize {
        self.alerts.len()
    }

    /// Returns whether no alert is active.
    pub fn is_empty(&self) -> bool {
        self.alerts.is_empty()
    }

    /// Returns the indexed version of an alert.
    pub fn get(&self, id: &str) -> Option<&Alert> {
        self.alerts.get(id).map(|indexed| &indexed.alert)
    }

    /// Returns the history of alerts per user and device, to store it.
    pub fn baseline(&self) -> &AlertBaseline {
        &self.baseline
    }

    /// Adds new alerts, replaces older versions and removes resolved ones. An
    /// alert is assessed against the baseline, and recorded in it, when its id is
    /// first seen.
    pub fn ingest(&mut self, alerts: impl IntoIterator<Item = Alert>) -> IngestSummary {
        let mut summary = IngestSummary::default();
        for alert in alerts {
            self.ingest_one(alert, &mut summary);
        }
        summary.evicted = self.evict();
        summary
    }

    fn ingest_one(&mut self, alert: Alert, summary: &mut IngestSummary) {
        let id = alert.id.clone();
        let version = alert.last_update_date_time;
        let known_version = self
            .alerts
            .get(&id)
            .map(|indexed| indexed.alert.last_update_date_time)
            .or_else(|| self.resolved.get(&id).copied());
        if known_version.is_some_and(|known| known >= version) {
            summary.stale += 1;
            return;
        }

        let previous = self.remove(&id);
        if !alert.status.is_active() {
            self.resolved.insert(id.clone(), version);
            if previous.is_some() {
                tracing::info!(alert_id = %id, "endpoint alert resolved; removed from the index");
                summary.removed.push(id);
            }
            return;
        }
        self.resolved.remove(&id);

        let novelty = match previous {
            Some(previous) => reassess_update(&previous, &alert, &self.baseline),
            None if known_version.is_none() => {
                let novelty = self.baseline.assess(&alert);
                self.baseline.observe(&alert);
                novelty
            }
            // Resolved before and active again: assessed as an update would be.
            None => self.baseline.assess(&alert),
        };
        let keys = alert_keys(&alert, self.limits.max_keys_per_alert);
        for (key, field) in &keys {
            self.by_key
                .entry(key.clone())
                .or_default()
                .insert((id.clone(), *field));
        }
        tracing::debug!(alert_id = %id, keys = keys.len(), factor = novelty.factor, "indexed endpoint alert");
        if known_version.is_some() {
            summary.updated.push(id.clone());
        } else {
            summary.added.push(id.clone());
        }
        self.alerts.insert(
            id,
            IndexedAlert {
                alert,
                novelty,
                keys,
            },
        );
    }

    fn remove(&mut self, id: &str) -> Option<IndexedAlert> {
        let indexed = self.alerts.remove(id)?;
        for (key, field) in &indexed.keys {
            if let Some(ids) = self.by_key.get_mut(key) {
                ids.remove(&(id.to_owned(), *field));
                if ids.is_empty() {
                    self.by_key.remove(key);
                }
            }
        }
        Some(indexed)
    }

    fn evict(&mut self) -> Vec<String> {
        let mut evicted = Vec::new();
        if self.alerts.len() <= self.limits.max_alerts {
            return evicted;
        }
        let mut by_age: Vec<(OffsetDateTime, String)> = self
            .alerts
            .values()
            .map(|indexed| {
                (
                    indexed.alert.last_update_date_time,
                    indexed.alert.id.clone(),
                )
            })
            .collect();
        by_age.sort();
        let excess = self.alerts.len() - self.limits.max_alerts;
        for (_, id) in by_age.into_iter().take(excess) {
            self.remove(&id);
            tracing::warn!(alert_id = %id, max_alerts = self.limits.max_alerts, "the alert index is full; dropped the alert updated longest ago");
            evicted.push(id);
        }
        evicted
    }

    /// Removes active alerts last updated before `cutoff`, such as alerts left
    /// open for weeks, and returns their ids.
    pub fn expire_before(&mut self, cutoff: OffsetDateTime) -> Vec<String> {
        let expired: Vec<String> = self
            .alerts
            .values()
            .filter(|indexed| indexed.alert.last_update_date_time < cutoff)
            .map(|indexed| indexed.alert.id.clone())
            .collect();
        for id in &expired {
            self.remove(id);
        }
        self.resolved.retain(|_, version| *version >= cutoff);
        expired
    }

    /// Returns the active alerts that concern a message, most severe and most
    /// novel first.
    pub fn query(&self, query: &CorrelationQuery) -> Vec<AlertMatch> {
        let mut matched: HashMap<&str, BTreeSet<MatchedKey>> = HashMap::new();
        let mut look_up = |part: MessagePart, key: Key, value: String| {
            if let Some(ids) = self.by_key.get(&key) {
                for (id, field) in ids {
                    matched.entry(id.as_str()).or_default().insert(MatchedKey {
                        part,
                        value: value.clone(),
                        field: *field,
                    });
                }
            }
        };

        let addresses = query
            .recipients
            .iter()
            .map(|recipient| (MessagePart::Recipient, recipient))
            .chain(
                query
                    .sender
                    .iter()
                    .map(|sender| (MessagePart::Sender, sender)),
            );
        for (part, address) in addresses {
            let Some(address) = normalize_address(address) else {
                continue;
            };
            // NOTE: a logged-on Windows account name is compared with the local
            // part of recipients only, because an external sender's local part
            // does not identify a local account. Where account names differ
            // from mail local parts, device alerts match through user evidence
            // alone.
            if part == MessagePart::Recipient
                && let Some((local, _)) = address.split_once('@')
            {
                look_up(part, Key::Account(local.to_owned()), address.clone());
            }
            look_up(part, Key::Address(address.clone()), address);
        }
        for host in &query.link_hosts {
            if let Some(host) = normalize_host(host) {
                look_up(MessagePart::LinkHost, Key::Host(host.clone()), host);
            }
        }
        if let Some(message_id) = query.message_id.as_deref().and_then(normalize_message_id) {
            look_up(
                MessagePart::MessageId,
                Key::MessageId(message_id.clone()),
                message_id,
            );
        }

        let mut results: Vec<AlertMatch> = matched
            .into_iter()
            .filter_map(|(id, keys)| {
                let indexed = self.alerts.get(id)?;
                let alert = &indexed.alert;
                Some(AlertMatch {
                    alert_id: alert.id.clone(),
                    title: alert.title.clone().unwrap_or_default(),
                    severity: alert.severity.clone(),
                    category: alert.category.clone(),
                    service_source: alert.service_source.clone(),
                    last_update: alert.last_update_date_time,
                    novelty: indexed.novelty.clone(),
                    matched: keys.into_iter().collect(),
                })
            })
            .collect();
        results.sort_by(|a, b| {
            let rank = |m: &AlertMatch| m.severity.rank().unwrap_or(0);
            rank(b)
                .cmp(&rank(a))
                .then(b.novelty.factor.total_cmp(&a.novelty.factor))
                .then_with(|| a.alert_id.cmp(&b.alert_id))
        });
        results
    }

    /// Returns the active alerts whose `analyzedMessageEvidence` names this
    /// Internet Message-ID, such as a message that Gatehouse delivered and that
    /// may need to be recalled.
    pub fn alerts_naming_message(&self, message_id: &str) -> Vec<&Alert> {
        let Some(message_id) = normalize_message_id(message_id) else {
            return Vec::new();
        };
        self.by_key
            .get(&Key::MessageId(message_id))
            .into_iter()
            .flatten()
            .filter_map(|(id, _)| self.get(id))
            .collect()
    }
}

/// Keeps the first assessment of an alert, unless its severity rose above it.
fn reassess_update(
    previous: &IndexedAlert,
    alert: &Alert,
    baseline: &AlertBaseline,
) -> AlertNovelty {
    let old_rank = previous.alert.severity.rank().unwrap_or(0);
    let new_rank = alert.severity.rank().unwrap_or(0);
    if new_rank > old_rank {
        let fresh = baseline.assess(alert);
        if fresh.factor > previous.novelty.factor {
            return fresh;
        }
    }
    previous.novelty.clone()
}

/// Collects the keys of an alert, at most `max_keys`.
fn alert_keys(alert: &Alert, max_keys: usize) -> Vec<(Key, EvidenceField)> {
    let mut keys = BTreeSet::new();
    let mut add = |key: Option<Key>, field: EvidenceField| {
        if let Some(key) = key {
            keys.insert((key, field));
        }
    };
    let address = |text: Option<&str>| text.and_then(normalize_address).map(Key::Address);

    for evidence in &alert.evidence {
        match evidence {
            Evidence::User(user) => {
                let upn = user
                    .user_account
                    .as_ref()
                    .and_then(|a| a.user_principal_name.as_deref());
                add(address(upn), EvidenceField::UserPrincipalName);
            }
            Evidence::Mailbox(mailbox) => {
                add(
                    address(mailbox.primary_address.as_deref()),
                    EvidenceField::MailboxAddress,
                );
                let upn = mailbox
                    .user_account
                    .as_ref()
                    .and_then(|a| a.user_principal_name.as_deref());
                add(address(upn), EvidenceField::UserPrincipalName);
            }
            Evidence::AnalyzedMessage(message) => {
                add(
                    address(message.recipient_email_address.as_deref()),
                    EvidenceField::MessageRecipient,
                );
                for sender in [&message.p1_sender, &message.p2_sender]
                    .into_iter()
                    .flatten()
                {
                    add(
                        address(sender.email_address.as_deref()),
                        EvidenceField::MessageSender,
                    );
                }
                let message_id = message
                    .internet_message_id
                    .as_deref()
                    .and_then(normalize_message_id);
                add(
                    message_id.map(Key::MessageId),
                    EvidenceField::InternetMessageId,
                );
                if is_suspicious(&message.common.verdict) {
                    for url in &message.urls {
                        add(url_host(url).map(Key::Host), EvidenceField::UrlHost);
                    }
                }
            }
            Evidence::Device(device) => {
                for user in &device.logged_on_users {
                    let account = user
                        .account_name
                        .as_deref()
                        .map(str::trim)
                        .filter(|name| !name.is_empty())
                        .map(str::to_lowercase);
                    add(account.map(Key::Account), EvidenceField::DeviceLoggedOnUser);
                }
            }
            Evidence::Url(url) => {
                if url.common.verdict != EvidenceVerdict::NoThreatsFound {
                    add(
                        url.url.as_deref().and_then(url_host).map(Key::Host),
                        EvidenceField::UrlHost,
                    );
                }
            }
            Evidence::Other { .. } => {}
        }
    }
    if keys.len() > max_keys {
        tracing::warn!(alert_id = %alert.id, keys = keys.len(), max_keys, "the alert names more keys than limits.max_keys_per_alert; the rest are not indexed");
    }
    keys.into_iter().take(max_keys).collect()
}

/// Whether a message's links should be indexed: Defender found it malicious or
/// suspicious.
fn is_suspicious(verdict: &EvidenceVerdict) -> bool {
    matches!(
        verdict,
        EvidenceVerdict::Malicious | EvidenceVerdict::Suspicious
    )
}

/// Lowercases an address and removes angle brackets and whitespace. Returns
/// `None` for a value without `@`.
pub(crate) fn normalize_address(text: &str) -> Option<String> {
    let text = text
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    let (local, domain) = text.rsplit_once('@')?;
    if local.is_empty() || domain.is_empty() {
        return None;
    }
    Some(format!(
        "{}@{}",
        local.to_lowercase(),
        domain.trim_end_matches('.').to_lowercase()
    ))
}

/// Removes angle brackets and whitespace from a Message-ID; the rest is kept as
/// it is, because the left part is case-sensitive.
fn normalize_message_id(text: &str) -> Option<String> {
    let text = text
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    (!text.is_empty()).then(|| text.to_owned())
}

fn normalize_host(text: &str) -> Option<String> {
    let host = text.trim().trim_end_matches('.').to_lowercase();
    (!host.is_empty()).then_some(host)
}

fn url_host(text: &str) -> Option<String> {
    let url = url::Url::parse(text.trim()).ok()?;
    normalize_host(url.host_str()?)
}
