//! The normal alert history of each user and device: the categories and
//! detectors seen before and the highest severity. A detector that fires on the
//! same laptop every week weighs little. A first credential-theft alert for a
//! person weighs more.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::defender::{Alert, Evidence};

/// Multipliers that novelty applies to the `endpoint.alert` weight. The policy's
/// weight for the signal is multiplied by the factor that
/// [`AlertBaseline::assess`] returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NoveltyWeights {
    /// Earlier alerts of the same detector (or category, when the alert names no
    /// detector) for the same subject from which an alert counts as routine.
    pub routine_min_count: u32,
    /// The factor of a routine alert.
    pub routine_factor: f64,
    /// The factor of an alert whose category the subject never had before.
    pub first_seen_category_factor: f64,
    /// Multiplies the factor when the severity is above the highest the subject
    /// had before.
    pub severity_above_usual_factor: f64,
}

impl Default for NoveltyWeights {
    fn default() -> Self {
        Self {
            routine_min_count: 3,
            routine_factor: 0.25,
            first_seen_category_factor: 2.0,
            severity_above_usual_factor: 1.5,
        }
    }
}

/// Limits of the alert baseline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BaselineLimits {
    /// Users and devices remembered; the one seen longest ago is dropped first.
    pub max_subjects: usize,
    /// Categories and detectors remembered per subject; the rarest is dropped
    /// first.
    pub max_keys_per_subject: usize,
}

impl Default for BaselineLimits {
    fn default() -> Self {
        Self {
            max_subjects: 100_000,
            max_keys_per_subject: 256,
        }
    }
}

/// The comparison of an alert with the earlier alerts of its users and devices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertNovelty {
    /// The multiplier for the `endpoint.alert` weight.
    pub factor: f64,
    /// No subject of the alert had its category before.
    pub first_seen_category: bool,
    /// No subject of the alert had its detector before.
    pub first_seen_detector: bool,
    /// The severity is above the highest that any subject of the alert had.
    pub severity_above_usual: bool,
    /// The alert counts as routine for at least one subject and is novel for none.
    pub routine: bool,
    /// The maximum count of earlier alerts of this detector for one subject.
    pub prior_count: u32,
}

impl AlertNovelty {
    /// Returns the novelty of an alert assessed without history, a factor of 1.
    pub fn neutral() -> Self {
        Self {
            factor: 1.0,
            first_seen_category: false,
            first_seen_detector: false,
            severity_above_usual: false,
            routine: false,
            prior_count: 0,
        }
    }
}

/// The alert history of one user or device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct SubjectHistory {
    alerts: u32,
    categories: HashMap<String, u32>,
    detectors: HashMap<String, u32>,
    /// The highest severity rank seen (see `AlertSeverity::rank`), 0 for none.
    max_severity_rank: u8,
    #[serde(with = "time::serde::rfc3339")]
    last_seen: OffsetDateTime,
}

/// The alert history of every user and device. It serialises, so it can be
/// stored beside the correspondence graph.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AlertBaseline {
    subjects: HashMap<String, SubjectHistory>,
    #[serde(skip)]
    weights: NoveltyWeights,
    #[serde(skip)]
    limits: BaselineLimits,
}

impl AlertBaseline {
    /// Creates an empty baseline.
    pub fn new(weights: NoveltyWeights, limits: BaselineLimits) -> Self {
        Self {
            subjects: HashMap::new(),
            weights,
            limits,
        }
    }

    /// Replaces the weights and limits, for a baseline read back from storage.
    pub fn configure(&mut self, weights: NoveltyWeights, limits: BaselineLimits) {
        self.weights = weights;
        self.limits = limits;
    }

    /// Returns the number of users and devices with a history.
    pub fn subject_count(&self) -> usize {
        self.subjects.len()
    }

    /// Compares an alert with the history of its subjects, without recording it.
    /// An alert without subjects is neutral.
    pub fn assess(&self, alert: &Alert) -> AlertNovelty {
        let subjects = alert_subjects(alert);
        if subjects.is_empty() {
            return AlertNovelty::neutral();
        }
        let category = alert_category(alert);
        let detector = alert_detector(alert);
        let severity_rank = alert.severity.rank().unwrap_or(0);

        let mut novelty = AlertNovelty {
            factor: 0.0,
            first_seen_category: true,
            first_seen_detector: true,
            severity_above_usual: severity_rank > 0,
            routine: false,
            prior_count: 0,
        };
        let mut any_routine = false;
        for subject in &subjects {
            let history = self.subjects.get(subject);
            let category_count = history
                .and_then(|h| h.categories.get(&category))
                .copied()
                .unwrap_or(0);
            let detector_count = history
                .and_then(|h| h.detectors.get(&detector))
                .copied()
                .unwrap_or(0);
            let usual_rank = history.map_or(0, |h| h.max_severity_rank);

            novelty.first_seen_category &= category_count == 0;
            novelty.first_seen_detector &= detector_count == 0;
            novelty.severity_above_usual &= severity_rank > usual_rank;
            novelty.prior_count = novelty.prior_count.max(detector_count);
            any_routine |=
                detector_count >= self.weights.routine_min_count && severity_rank <= usual_rank;
        }

        // The most novel reading wins: an alert that is new for one subject is not
        // routine because another subject has it every week.
        novelty.routine =
            any_routine && !novelty.first_seen_category && !novelty.severity_above_usual;
        let mut factor = if novelty.routine {
            self.weights.routine_factor
        } else if novelty.first_seen_category {
            self.weights.first_seen_category_factor
        } else {
            1.0
        };
        if novelty.severity_above_usual {
            factor *= self.weights.severity_above_usual_factor;
        }
        novelty.factor = factor;
        novelty
    }

    /// Records an alert in the history of each of its subjects. Call it once per
    /// alert id, after [`AlertBaseline::assess`].
    pub fn observe(&mut self, alert: &Alert) {
        let category = alert_category(alert);
        let detector = alert_detector(alert);
        let severity_rank = alert.severity.rank().unwrap_or(0);
        let seen = alert
            .created_date_time
            .unwrap_or(alert.last_update_date_time);
        let max_keys = self.limits.max_keys_per_subject.max(1);

        for subject in alert_subjects(alert) {
            let history = self
                .subjects
                .entry(subject)
                .or_insert_with(|| SubjectHistory {
                    alerts: 0,
                    categories: HashMap::new(),
                    detectors: HashMap::new(),
                    max_severity_rank: 0,
                    last_seen: seen,
                });
            history.alerts = history.alerts.saturating_add(1);
            count_key(&mut history.categories, &category, max_keys);
            count_key(&mut history.detectors, &detector, max_keys);
            history.max_severity_rank = history.max_severity_rank.max(severity_rank);
            history.last_seen = history.last_seen.max(seen);
        }
        self.evict_subjects();
    }

    fn evict_subjects(&mut self) {
        let max = self.limits.max_subjects.max(1);
        while self.subjects.len() > max {
            let oldest = self
                .subjects
                .iter()
                .min_by_key(|(_, history)| history.last_seen)
                .map(|(subject, _)| subject.clone());
            match oldest {
                Some(subject) => self.subjects.remove(&subject),
                None => break,
            };
        }
    }
}

/// Adds one to a key's count, dropping the rarest key when the map is full.
fn count_key(counts: &mut HashMap<String, u32>, key: &str, max_keys: usize) {
    if !counts.contains_key(key) && counts.len() >= max_keys {
        let rarest = counts
            .iter()
            .min_by_key(|(_, count)| **count)
            .map(|(key, _)| key.clone());
        if let Some(rarest) = rarest {
            counts.remove(&rarest);
        }
    }
    let count = counts.entry(key.to_owned()).or_insert(0);
    *count = count.saturating_add(1);
}

fn alert_category(alert: &Alert) -> String {
    alert.category.clone().unwrap_or_else(|| "(none)".into())
}

/// Returns the detector id, or the title when Graph sent none, so that the
/// same recurring alert is still recognised.
fn alert_detector(alert: &Alert) -> String {
    alert
        .detector_id
        .clone()
        .or_else(|| alert.title.clone())
        .unwrap_or_else(|| alert_category(alert))
}

/// Returns the users (`user:` and an address) and devices (`device:` and an id)
/// that an alert concerns, sorted and without duplicates.
pub(crate) fn alert_subjects(alert: &Alert) -> Vec<String> {
    let mut subjects = Vec::new();
    let mut add_user = |address: Option<&str>| {
        if let Some(address) = address.and_then(crate::correlate::normalize_address) {
            subjects.push(format!("user:{address}"));
        }
    };
    for evidence in &alert.evidence {
        match evidence {
            Evidence::User(user) => {
                add_user(
                    user.user_account
                        .as_ref()
                        .and_then(|a| a.user_principal_name.as_deref()),
                );
            }
            Evidence::Mailbox(mailbox) => add_user(mailbox.primary_address.as_deref()),
            Evidence::AnalyzedMessage(message) => {
                add_user(message.recipient_email_address.as_deref())
            }
            Evidence::Device(_) | Evidence::Url(_) | Evidence::Other { .. } => {}
        }
    }
    for evidence in &alert.evidence {
        if let Evidence::Device(device) = evidence
            && let Some(key) = device.device_key()
        {
            subjects.push(format!("device:{}", key.to_lowercase()));
        }
    }
    subjects.sort();
    subjects.dedup();
    subjects
}
