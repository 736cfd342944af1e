//! Validation at load: every error names the file, the key and the fix.

use std::collections::BTreeMap;

use crate::file::{EndpointAlertFile, OverrideFile, PolicyFile};
use crate::{
    Baseline, CampaignPolicy, EndpointAlertPolicy, LOWERING_SIGNAL_IDS, Policy, SIGNAL_IDS,
    Scoring, Thresholds,
};

const ENDPOINT_ALERT: &str = "endpoint.alert";

/// The longest `domain_young_days` accepted: ten years.
const MAX_DOMAIN_YOUNG_DAYS: u32 = 3_650;

/// The policy file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read policy file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid policy {origin}{}: {message}; check the spelling of the key against policies/default.toml", line.map(|line| format!(" line {line}")).unwrap_or_default())]
    Syntax {
        origin: String,
        message: String,
        line: Option<usize>,
    },
    #[error("invalid policy {origin}: {key}: {problem}; {fix}")]
    Invalid {
        origin: String,
        key: String,
        problem: String,
        fix: String,
    },
}

impl PolicyError {
    /// The key the error is about, when it is about one.
    pub fn key(&self) -> Option<&str> {
        match self {
            PolicyError::Invalid { key, .. } => Some(key),
            PolicyError::Read { .. } | PolicyError::Syntax { .. } => None,
        }
    }
}

struct Checker<'a> {
    origin: &'a str,
}

impl Checker<'_> {
    fn fail(
        &self,
        key: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> PolicyError {
        PolicyError::Invalid {
            origin: self.origin.to_owned(),
            key: key.into(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    fn signal_id(&self, key: &str, id: &str) -> Result<(), PolicyError> {
        if SIGNAL_IDS.contains(&id) {
            return Ok(());
        }
        let suggestion = closest_signal(id)
            .map(|known| format!("did you mean `{known}`? "))
            .unwrap_or_default();
        Err(self.fail(
            key,
            format!("unknown signal id `{id}`"),
            format!("{suggestion}the known ids are {}", SIGNAL_IDS.join(", ")),
        ))
    }

    fn thresholds(&self, prefix: &str, thresholds: &Thresholds) -> Result<(), PolicyError> {
        for (name, value) in [
            ("tag", Some(thresholds.tag)),
            ("hold", Some(thresholds.hold)),
            ("reject", thresholds.reject),
        ] {
            if let Some(value) = value
                && !value.is_finite()
            {
                return Err(self.fail(
                    format!("{prefix}.{name}"),
                    format!("{value} is not a finite number"),
                    "write a number such as 4.0",
                ));
            }
        }
        if thresholds.tag <= 0.0 {
            return Err(self.fail(
                format!("{prefix}.tag"),
                format!("{} would tag every message", thresholds.tag),
                "set it above 0",
            ));
        }
        if thresholds.hold <= thresholds.tag {
            return Err(self.fail(
                format!("{prefix}.hold"),
                format!(
                    "hold {} is not above tag {}",
                    thresholds.hold, thresholds.tag
                ),
                "thresholds must rise: tag < hold < reject",
            ));
        }
        if let Some(reject) = thresholds.reject
            && reject <= thresholds.hold
        {
            return Err(self.fail(
                format!("{prefix}.reject"),
                format!("reject {reject} is not above hold {}", thresholds.hold),
                "thresholds must rise: tag < hold < reject; remove reject to never reject on score",
            ));
        }
        Ok(())
    }

    fn weights(&self, table: &str, weights: &BTreeMap<String, f64>) -> Result<(), PolicyError> {
        for (id, weight) in weights {
            let key = format!("{table}.\"{id}\"");
            self.signal_id(&key, id)?;
            if !weight.is_finite() {
                return Err(self.fail(
                    key,
                    format!("{weight} is not a finite number"),
                    "write a number such as 1.5",
                ));
            }
            let lowering = LOWERING_SIGNAL_IDS.contains(&id.as_str());
            if lowering && *weight > 0.0 {
                return Err(self.fail(
                    key,
                    format!("{id} is evidence of a known thread and must not raise the score"),
                    "set it to 0 or below",
                ));
            }
            if !lowering && *weight < 0.0 {
                return Err(self.fail(
                    key,
                    format!(
                        "{id} may only raise the score; only {} may lower it",
                        LOWERING_SIGNAL_IDS.join(", ")
                    ),
                    "set it to 0 or above",
                ));
            }
        }
        Ok(())
    }

    /// A signal that fires alone must stay below hold unless `may_hold_alone`
    /// lists it. `endpoint.alert` is checked at its weight times the largest
    /// novelty factor, because that is the most it can add.
    fn alone(
        &self,
        table: &str,
        scoring: &Scoring,
        may_hold_alone: &[String],
        endpoint_alert: &EndpointAlertPolicy,
    ) -> Result<(), PolicyError> {
        let hold = scoring.thresholds.hold;
        for (weights, name) in [
            (&scoring.weights, "weights"),
            (&scoring.attachment_weights, "attachment_weights"),
        ] {
            for (id, weight) in weights {
                if may_hold_alone.iter().any(|allowed| allowed == id) {
                    continue;
                }
                let key = format!("{table}{name}.\"{id}\"");
                if id == ENDPOINT_ALERT {
                    let factor = endpoint_alert.max_factor();
                    if weight * factor >= hold {
                        return Err(self.fail(
                            key,
                            format!("{id} weighs {weight}, and {} at the largest novelty factor {factor} (endpoint_alert.first_seen_category_factor times severity_above_usual_factor), which would hold mail on its own (hold threshold {hold})", weight * factor),
                            format!("lower the weight below {}, lower the factors, or add \"{id}\" to may_hold_alone if one alert should hold", hold / factor),
                        ));
                    }
                } else if *weight >= hold {
                    return Err(self.fail(
                        key,
                        format!("{id} weighs {weight} and would hold mail on its own (hold threshold {hold})"),
                        format!("lower it below {hold}, or add \"{id}\" to may_hold_alone if one signal should hold"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn endpoint_alert(&self, file: &EndpointAlertFile) -> Result<EndpointAlertPolicy, PolicyError> {
        let factors = [
            (
                "routine_factor",
                file.routine_factor,
                0.0,
                1.0,
                "write a number from 0 to 1, such as 0.25",
            ),
            (
                "first_seen_category_factor",
                file.first_seen_category_factor,
                1.0,
                100.0,
                "write a number from 1 to 100, such as 2.0",
            ),
            (
                "severity_above_usual_factor",
                file.severity_above_usual_factor,
                1.0,
                100.0,
                "write a number from 1 to 100, such as 1.5",
            ),
        ];
        for (name, value, min, max, fix) in factors {
            if !value.is_finite() || value < min || value > max {
                return Err(self.fail(
                    format!("endpoint_alert.{name}"),
                    format!("{value} is out of range"),
                    fix,
                ));
            }
        }
        if file.routine_min_count == 0 {
            return Err(self.fail(
                "endpoint_alert.routine_min_count",
                "0 would call every alert routine, even the first",
                "set it to 1 or more",
            ));
        }
        Ok(EndpointAlertPolicy {
            routine_min_count: file.routine_min_count,
            routine_factor: file.routine_factor,
            first_seen_category_factor: file.first_seen_category_factor,
            severity_above_usual_factor: file.severity_above_usual_factor,
        })
    }

    fn list(&self, key: &str, entries: &[String]) -> Result<Vec<String>, PolicyError> {
        entries
            .iter()
            .enumerate()
            .map(|(index, entry)| {
                let normalised = entry.trim().trim_end_matches('.').to_lowercase();
                let valid = !normalised.is_empty()
                    && !normalised.chars().any(char::is_whitespace)
                    && !normalised.starts_with('@')
                    && !normalised.ends_with('@')
                    && normalised.matches('@').count() <= 1
                    && !normalised.contains('*');
                if valid {
                    Ok(normalised)
                } else {
                    Err(self.fail(
                        format!("{key}[{index}]"),
                        format!("`{entry}` is neither an address nor a domain"),
                        "write an address such as ceo@partner.example or a domain such as partner.example (it covers its subdomains)",
                    ))
                }
            })
            .collect()
    }
}

/// Levenshtein distance, for suggesting a known signal id.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

fn closest_signal(id: &str) -> Option<&'static str> {
    SIGNAL_IDS
        .iter()
        .map(|known| (distance(id, known), *known))
        .filter(|(distance, _)| *distance <= 3)
        .min()
        .map(|(_, known)| known)
}

fn hours(
    checker: &Checker<'_>,
    key: &str,
    value: f64,
    min: f64,
) -> Result<time::Duration, PolicyError> {
    if !value.is_finite() || value < min || value > 24.0 * 366.0 {
        return Err(checker.fail(
            key,
            format!("{value} hours is out of range"),
            format!("write a number of hours from {min} to 8784"),
        ));
    }
    Ok(time::Duration::seconds_f64(value * 3600.0))
}

fn merged_scoring(base: &Scoring, file: &OverrideFile) -> Scoring {
    let mut scoring = base.clone();
    if let Some(mode) = file.mode {
        scoring.mode = mode;
    }
    if let Some(thresholds) = file.thresholds {
        scoring.thresholds = thresholds;
    }
    scoring.weights.extend(
        file.weights
            .iter()
            .map(|(id, weight)| (id.clone(), *weight)),
    );
    scoring.attachment_weights.extend(
        file.attachment_weights
            .iter()
            .map(|(id, weight)| (id.clone(), *weight)),
    );
    scoring
}

pub(crate) fn build(file: PolicyFile, origin: &str) -> Result<Policy, PolicyError> {
    let checker = Checker { origin };

    // Scoring for the whole organisation.
    checker.thresholds("thresholds", &file.thresholds)?;
    checker.weights("weights", &file.weights)?;
    checker.weights("attachment_weights", &file.attachment_weights)?;
    for (index, id) in file.may_hold_alone.iter().enumerate() {
        checker.signal_id(&format!("may_hold_alone[{index}]"), id)?;
    }
    let scoring = Scoring {
        mode: file.mode,
        thresholds: file.thresholds,
        weights: file.weights,
        attachment_weights: file.attachment_weights,
    };
    let endpoint_alert = checker.endpoint_alert(&file.endpoint_alert)?;
    checker.alone("", &scoring, &file.may_hold_alone, &endpoint_alert)?;

    // Scoring per recipient domain.
    let mut overrides = BTreeMap::new();
    for (domain, override_file) in &file.overrides {
        let table = format!("overrides.\"{domain}\"");
        let normalised = domain.trim().trim_end_matches('.').to_lowercase();
        if normalised.is_empty()
            || normalised.contains('@')
            || normalised.chars().any(char::is_whitespace)
        {
            return Err(checker.fail(
                table,
                format!("`{domain}` is not a domain"),
                "name a recipient domain such as sales.example.com",
            ));
        }
        if let Some(thresholds) = &override_file.thresholds {
            checker.thresholds(&format!("{table}.thresholds"), thresholds)?;
        }
        checker.weights(&format!("{table}.weights"), &override_file.weights)?;
        checker.weights(
            &format!("{table}.attachment_weights"),
            &override_file.attachment_weights,
        )?;
        let merged = merged_scoring(&scoring, override_file);
        checker.alone(
            &format!("{table}."),
            &merged,
            &file.may_hold_alone,
            &endpoint_alert,
        )?;
        overrides.insert(normalised, merged);
    }

    // Campaign windows and baselines.
    let campaign_file = &file.campaign;
    if campaign_file.min_senders < 2 {
        return Err(checker.fail(
            "campaign.min_senders",
            format!("{} cannot make a pattern", campaign_file.min_senders),
            "set it to 2 or more",
        ));
    }
    if campaign_file.min_recipients < 2 {
        return Err(checker.fail(
            "campaign.min_recipients",
            format!("{} cannot make a burst", campaign_file.min_recipients),
            "set it to 2 or more",
        ));
    }
    let campaign = CampaignPolicy {
        window: hours(
            &checker,
            "campaign.window_hours",
            campaign_file.window_hours,
            1.0,
        )?,
        min_senders: campaign_file.min_senders,
        min_recipients: campaign_file.min_recipients,
        response: hours(
            &checker,
            "campaign.response_hours",
            campaign_file.response_hours,
            0.0,
        )?,
        shared_domains: checker.list("campaign.shared_domains", &campaign_file.shared_domains)?,
    };
    let baseline_file = &file.baseline;
    if !(0.0..=1.0).contains(&baseline_file.rare_share) {
        return Err(checker.fail(
            "baseline.rare_share",
            format!("{} is not a share", baseline_file.rare_share),
            "write a fraction from 0 to 1, such as 0.01 for one percent",
        ));
    }
    if baseline_file.min_messages == 0 {
        return Err(checker.fail(
            "baseline.min_messages",
            "0 judges rarity with no history",
            "set it to 1 or more",
        ));
    }
    let baseline = Baseline {
        min_messages: baseline_file.min_messages,
        rare_share: baseline_file.rare_share,
        rare_attachment_count: baseline_file.rare_attachment_count,
        min_network_messages: baseline_file.min_network_messages.max(1),
    };

    // Domain age.
    if !(1..=MAX_DOMAIN_YOUNG_DAYS).contains(&file.domain_young_days) {
        return Err(checker.fail(
            "domain_young_days",
            format!("{} days is out of range", file.domain_young_days),
            format!("write a whole number of days from 1 to {MAX_DOMAIN_YOUNG_DAYS}, such as 30"),
        ));
    }
    let domain_young = time::Duration::days(i64::from(file.domain_young_days));

    // Lists and role names.
    let allow = checker.list("lists.allow", &file.lists.allow)?;
    let block = checker.list("lists.block", &file.lists.block)?;
    let trusted_authserv_ids = checker.list(
        "authentication.trusted_authserv_ids",
        &file.authentication.trusted_authserv_ids,
    )?;
    for (language, names) in &file.roles {
        for (index, name) in names.iter().enumerate() {
            if name.trim().is_empty() {
                return Err(checker.fail(
                    format!("roles.{language}[{index}]"),
                    "the name is empty",
                    "remove it or write the role name",
                ));
            }
        }
    }

    Ok(Policy {
        scoring,
        overrides,
        may_hold_alone: file.may_hold_alone,
        plain_first_contact_max: file.first_contact.plain_max_action,
        campaign,
        baseline,
        allow,
        block,
        block_action: file.lists.block_action,
        roles: file.roles,
        trusted_authserv_ids,
        endpoint_alert,
        domain_young,
    })
}
