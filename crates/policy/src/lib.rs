//! The policy: how much each signal weighs and where the thresholds lie.
//!
//! A [`Policy`] is read from a TOML file (`policies/default.toml` is embedded
//! as the default), validated at load, and then immutable. It turns a list of
//! fired signal ids into a score and the score into an [`Action`].

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The policy every build carries, used when the configuration names none.
pub const DEFAULT_POLICY: &str = include_str!("../../../policies/default.toml");

/// What happens to a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Deliver,
    Tag,
    Hold,
    Reject,
}

/// A validated policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub thresholds: Thresholds,
    /// Weight per signal id; a signal without a weight counts 0.
    pub weights: BTreeMap<String, f64>,
}

/// Scores at or above which a message is tagged, held or rejected.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    pub tag: f64,
    pub hold: f64,
    pub reject: Option<f64>,
}

/// The policy file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read policy file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid policy {origin}: {message}")]
    Invalid { origin: String, message: String },
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
        toml::from_str(text).map_err(|err| PolicyError::Invalid {
            origin: origin.to_owned(),
            message: err.to_string(),
        })
    }

    /// The embedded default policy.
    pub fn embedded_default() -> Policy {
        Policy::from_toml(DEFAULT_POLICY, "policies/default.toml (embedded)")
            .expect("the embedded default policy is valid; a test checks it")
    }

    /// The weight of a signal id, 0 when the policy does not list it.
    pub fn weight(&self, signal_id: &str) -> f64 {
        self.weights.get(signal_id).copied().unwrap_or(0.0)
    }

    /// The action for a score.
    pub fn action_for(&self, score: f64) -> Action {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_is_valid() {
        let policy = Policy::from_toml(DEFAULT_POLICY, "default");
        assert!(policy.is_ok(), "{:?}", policy.err());
    }
}
