//! The policy: how much each signal weighs, where the thresholds lie, and the
//! lists and parameters the signals read.
//!
//! A [`Policy`] is read from a TOML file (`policies/default.toml` is embedded
//! as the default), validated at load, and then immutable. Its central parts:
//! - [`Scoring`]: weights, thresholds and [`Mode`], once for the whole
//!   organisation and once per recipient domain that has an override;
//! - [`CampaignPolicy`] and [`Baseline`]: the windows and thresholds that
//!   decide when something is a campaign or rare;
//! - the allow and block lists ([`Policy::list_match`]) and the role names
//!   that internal senders use ([`Policy::role_names`]).
//!
//! The signal ids a policy may weigh are [`SIGNAL_IDS`]; an unknown id is an
//! error at load, so a typo never silently weighs 0.

mod file;
mod validate;

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use validate::PolicyError;

/// The policy every build carries, used when the configuration names none.
pub const DEFAULT_POLICY: &str = include_str!("../../../policies/default.toml");

/// Every signal id the engine can fire and a policy can weigh.
pub const SIGNAL_IDS: &[&str] = &[
    "sender.first_contact",
    "sender.domain_new",
    "recipient.first_contact",
    "sender.display_name_internal",
    "sender.display_name_new",
    "sender.local_unauthenticated",
    "campaign.sender_pattern",
    "campaign.burst",
    "link.domain_new",
    "link.in_qr",
    "link.in_attachment",
    "link.obfuscated",
    "link.domain_young",
    "attachment.type_new",
    "attachment.active_content",
    "attachment.unscannable",
    "content.script_unusual",
    "origin.network_new",
    "origin.client_mismatch",
    "auth.fail",
    "thread.known_reply",
    "endpoint.alert",
];

/// Signals whose weight may be negative: evidence that lowers the score.
pub const LOWERING_SIGNAL_IDS: &[&str] = &["thread.known_reply"];

/// The action taken on a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Deliver,
    Tag,
    Hold,
    Reject,
}

/// Whether the policy may hold and reject, or only tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Tag at most, for a new deployment that is still learning what is
    /// normal. Only the block list still rejects or holds.
    Learn,
    /// Act on the thresholds.
    #[default]
    Enforce,
}

/// Scores at or above which a message is tagged, held or rejected.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    pub tag: f64,
    pub hold: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reject: Option<f64>,
}

/// Weights, thresholds and mode: everything that turns signals into an action.
#[derive(Debug, Clone, PartialEq)]
pub struct Scoring {
    pub mode: Mode,
    pub thresholds: Thresholds,
    /// Weight per signal id; a signal without a weight counts 0.
    pub weights: BTreeMap<String, f64>,
    /// Weights used instead when the signal's evidence sits inside an
    /// attachment (a QR code in a document weighs more than one in the body).
    pub attachment_weights: BTreeMap<String, f64>,
}

impl Scoring {
    /// The weight of a signal id, 0 when the policy does not list it.
    pub fn weight(&self, signal_id: &str) -> f64 {
        self.weights.get(signal_id).copied().unwrap_or(0.0)
    }

    /// The weight of a signal whose evidence sits inside an attachment.
    pub fn weight_in_attachment(&self, signal_id: &str) -> f64 {
        self.attachment_weights
            .get(signal_id)
            .copied()
            .unwrap_or_else(|| self.weight(signal_id))
    }

    /// The action for a score, before the mode caps it.
    pub fn threshold_action(&self, score: f64) -> Action {
        if self.thresholds.reject.is_some_and(|reject| score >= reject) {
            Action::Reject
        } else if score >= self.thresholds.hold {
            Action::Hold
        } else if score >= self.thresholds.tag {
            Action::Tag
        } else {
            Action::Deliver
        }
    }

    /// The action for a score: the thresholds, then the mode, which in
    /// `learn` allows nothing stronger than tag.
    pub fn action_for(&self, score: f64) -> Action {
        let action = self.threshold_action(score);
        match self.mode {
            Mode::Learn => action.min(Action::Tag),
            Mode::Enforce => action,
        }
    }
}

/// When new senders, hashes, link domains or subjects add up to a campaign.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignPolicy {
    /// How far back the sliding window reaches.
    pub window: time::Duration,
    /// `campaign.sender_pattern` fires when this many distinct new addresses
    /// of one domain share a local-part shape within the window, the current one included.
    pub min_senders: usize,
    /// `campaign.burst` fires when messages of one cluster reached this many distinct recipients.
    pub min_recipients: usize,
    /// How long matching mail is held after a cluster crosses its threshold.
    pub response: time::Duration,
    /// Shared mail domains (freemail) where unrelated people share a domain:
    /// no sender-pattern or domain cluster is formed for them.
    pub shared_domains: Vec<String>,
}

/// How much history a signal needs before it judges rarity.
#[derive(Debug, Clone, PartialEq)]
pub struct Baseline {
    /// Messages a recipient (else the organisation) must have received before
    /// `content.script_unusual` judges a script rare for it.
    pub min_messages: u64,
    /// A script or type is rare below this share of received messages.
    pub rare_share: f64,
    /// The organisation rarely receives an attachment type when it received fewer than this many.
    pub rare_attachment_count: u64,
    /// Messages from a domain before `origin.network_new` and `origin.client_mismatch` judge it.
    pub min_network_messages: u64,
}

/// The scaling of the `endpoint.alert` weight by an alert's novelty.
///
/// The integration compares each alert with the earlier alerts of its users
/// and devices when it first reads the alert. The engine multiplies the
/// signal's weight by [`EndpointAlertPolicy::factor`] of that comparison.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EndpointAlertPolicy {
    /// Earlier alerts of the same detector for the same user or device from
    /// which an alert counts as routine.
    pub routine_min_count: u32,
    /// The factor of a routine alert, from 0 to 1.
    pub routine_factor: f64,
    /// The factor of an alert whose category its users and devices never had
    /// before, 1 or more.
    pub first_seen_category_factor: f64,
    /// Multiplies the factor when the severity is above the highest its users
    /// and devices had before, 1 or more.
    pub severity_above_usual_factor: f64,
}

impl EndpointAlertPolicy {
    /// Returns the factor for an alert's novelty. A routine alert is never
    /// first-seen or above the usual severity, so when the flags disagree the
    /// more novel reading wins.
    pub fn factor(
        &self,
        routine: bool,
        first_seen_category: bool,
        severity_above_usual: bool,
    ) -> f64 {
        let mut factor = if first_seen_category {
            self.first_seen_category_factor
        } else if routine && !severity_above_usual {
            self.routine_factor
        } else {
            1.0
        };
        if severity_above_usual {
            factor *= self.severity_above_usual_factor;
        }
        factor
    }

    /// Returns the largest factor any alert can get: a first-seen category
    /// with a severity above the usual.
    pub fn max_factor(&self) -> f64 {
        self.factor(false, true, true).max(1.0)
    }
}

impl Default for EndpointAlertPolicy {
    fn default() -> Self {
        EndpointAlertPolicy {
            routine_min_count: 3,
            routine_factor: 0.25,
            first_seen_category_factor: 2.0,
            severity_above_usual_factor: 1.5,
        }
    }
}

/// Which list a sender matched, and the entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListMatch {
    Allow(String),
    Block(String),
}

/// A validated policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Scoring for every recipient domain without an override.
    pub scoring: Scoring,
    /// Scoring per recipient domain (lower-case, ASCII), overrides merged over the default.
    pub overrides: BTreeMap<String, Scoring>,
    /// Signal ids that may reach the hold threshold on their own.
    pub may_hold_alone: Vec<String>,
    /// The maximum action for a message from a first-contact sender with no
    /// links and no attachments, whatever its score.
    pub plain_first_contact_max: Action,
    pub campaign: CampaignPolicy,
    pub baseline: Baseline,
    /// Allowed senders: addresses or domains (a domain covers its subdomains).
    pub allow: Vec<String>,
    /// Blocked senders, matched like `allow`; block wins over allow.
    pub block: Vec<String>,
    /// The action for a blocked sender's mail.
    pub block_action: Action,
    /// Role names per language tag, as written in the file.
    pub roles: BTreeMap<String, Vec<String>>,
    /// Authentication-Results from these hosts (and from subdomains of the
    /// local domains) are trusted; any other host could have written them.
    pub trusted_authserv_ids: Vec<String>,
    /// Novelty factors that scale `endpoint.alert`.
    pub endpoint_alert: EndpointAlertPolicy,
    /// `link.domain_young` fires for a domain registered less than this long
    /// before the message arrived.
    pub domain_young: time::Duration,
}

impl Policy {
    /// Reads and validates a policy file.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Policy::from_toml(&text, &path.display().to_string())
    }

    /// Parses and validates policy text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Policy, PolicyError> {
        let file: file::PolicyFile = toml::from_str(text).map_err(|err| PolicyError::Syntax {
            origin: origin.to_owned(),
            message: err.message().to_owned(),
            line: err.span().map(|span| {
                text.as_bytes()[..span.start.min(text.len())]
                    .iter()
                    .filter(|byte| **byte == b'\n')
                    .count()
                    + 1
            }),
        })?;
        validate::build(file, origin)
    }

    /// The embedded default policy.
    pub fn embedded_default() -> Policy {
        match Policy::from_toml(DEFAULT_POLICY, "policies/default.toml (embedded)") {
            Ok(policy) => policy,
            // A unit test loads the embedded policy, so this is unreachable in a tested build.
            Err(err) => panic!("the embedded default policy is invalid: {err}"),
        }
    }

    /// The scoring for a recipient domain: its override, the override of its
    /// nearest parent domain, else the default.
    pub fn scoring_for(&self, recipient_domain: &str) -> &Scoring {
        let domain = recipient_domain.trim_end_matches('.').to_ascii_lowercase();
        let mut candidate = domain.as_str();
        loop {
            if let Some(scoring) = self.overrides.get(candidate) {
                return scoring;
            }
            match candidate.split_once('.') {
                Some((_, parent)) if !parent.is_empty() => candidate = parent,
                _ => return &self.scoring,
            }
        }
    }

    /// The weight of a signal id under the default scoring, 0 when the policy does not list it.
    pub fn weight(&self, signal_id: &str) -> f64 {
        self.scoring.weight(signal_id)
    }

    /// Lists the signals that no weight table names: not `[weights]`,
    /// `[attachment_weights]` nor an override, so they never add to a
    /// score. A weight of 0 that the file sets is a choice and is not listed.
    pub fn unweighted_signals(&self) -> Vec<&'static str> {
        let names = |scoring: &Scoring, id: &str| {
            scoring.weights.contains_key(id) || scoring.attachment_weights.contains_key(id)
        };
        SIGNAL_IDS
            .iter()
            .copied()
            .filter(|id| {
                !names(&self.scoring, id)
                    && !self.overrides.values().any(|scoring| names(scoring, id))
            })
            .collect()
    }

    /// The action for a score under the default scoring and mode.
    pub fn action_for(&self, score: f64) -> Action {
        self.scoring.action_for(score)
    }

    /// Matches a normalised sender address against the block list, then the allow list.
    pub fn list_match(&self, sender: &str) -> Option<ListMatch> {
        let find = |list: &[String]| {
            list.iter()
                .find(|entry| entry_matches(entry, sender))
                .cloned()
        };
        if let Some(entry) = find(&self.block) {
            return Some(ListMatch::Block(entry));
        }
        find(&self.allow).map(ListMatch::Allow)
    }

    /// Every role name with its language tag.
    pub fn role_names(&self) -> impl Iterator<Item = (&str, &str)> {
        self.roles.iter().flat_map(|(language, names)| {
            names
                .iter()
                .map(move |name| (language.as_str(), name.as_str()))
        })
    }
}

/// Whether a list entry covers an address: the same address, the same
/// domain, or a parent of the address's domain.
fn entry_matches(entry: &str, address: &str) -> bool {
    if entry.contains('@') {
        return entry.eq_ignore_ascii_case(address);
    }
    let domain = address
        .rsplit_once('@')
        .map(|(_, domain)| domain)
        .unwrap_or(address);
    let domain = domain.to_ascii_lowercase();
    domain == *entry || domain.ends_with(&format!(".{entry}"))
}

#[cfg(test)]
mod tests;
