//! The policy file as written: every key optional where a default exists, unknown keys rejected.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::{Action, Mode, Thresholds};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PolicyFile {
    #[serde(default)]
    pub(crate) mode: Mode,
    pub(crate) thresholds: Thresholds,
    #[serde(default)]
    pub(crate) weights: BTreeMap<String, f64>,
    #[serde(default)]
    pub(crate) attachment_weights: BTreeMap<String, f64>,
    #[serde(default)]
    pub(crate) may_hold_alone: Vec<String>,
    #[serde(default)]
    pub(crate) first_contact: FirstContactFile,
    #[serde(default)]
    pub(crate) campaign: CampaignFile,
    #[serde(default)]
    pub(crate) baseline: BaselineFile,
    #[serde(default)]
    pub(crate) lists: ListsFile,
    #[serde(default)]
    pub(crate) authentication: AuthenticationFile,
    #[serde(default)]
    pub(crate) roles: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub(crate) overrides: BTreeMap<String, OverrideFile>,
    #[serde(default)]
    pub(crate) endpoint_alert: EndpointAlertFile,
    #[serde(default = "default_domain_young_days")]
    pub(crate) domain_young_days: u32,
}

fn default_domain_young_days() -> u32 {
    30
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EndpointAlertFile {
    #[serde(default = "default_routine_min_count")]
    pub(crate) routine_min_count: u32,
    #[serde(default = "default_routine_factor")]
    pub(crate) routine_factor: f64,
    #[serde(default = "default_first_seen_category_factor")]
    pub(crate) first_seen_category_factor: f64,
    #[serde(default = "default_severity_above_usual_factor")]
    pub(crate) severity_above_usual_factor: f64,
}

impl Default for EndpointAlertFile {
    fn default() -> Self {
        EndpointAlertFile {
            routine_min_count: default_routine_min_count(),
            routine_factor: default_routine_factor(),
            first_seen_category_factor: default_first_seen_category_factor(),
            severity_above_usual_factor: default_severity_above_usual_factor(),
        }
    }
}

fn default_routine_min_count() -> u32 {
    3
}
fn default_routine_factor() -> f64 {
    0.25
}
fn default_first_seen_category_factor() -> f64 {
    2.0
}
fn default_severity_above_usual_factor() -> f64 {
    1.5
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FirstContactFile {
    #[serde(default = "default_plain_max")]
    pub(crate) plain_max_action: Action,
}

impl Default for FirstContactFile {
    fn default() -> Self {
        FirstContactFile {
            plain_max_action: default_plain_max(),
        }
    }
}

fn default_plain_max() -> Action {
    Action::Tag
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CampaignFile {
    #[serde(default = "default_window_hours")]
    pub(crate) window_hours: f64,
    #[serde(default = "default_min_senders")]
    pub(crate) min_senders: usize,
    #[serde(default = "default_min_recipients")]
    pub(crate) min_recipients: usize,
    #[serde(default = "default_response_hours")]
    pub(crate) response_hours: f64,
    #[serde(default)]
    pub(crate) shared_domains: Vec<String>,
}

impl Default for CampaignFile {
    fn default() -> Self {
        CampaignFile {
            window_hours: default_window_hours(),
            min_senders: default_min_senders(),
            min_recipients: default_min_recipients(),
            response_hours: default_response_hours(),
            shared_domains: Vec::new(),
        }
    }
}

fn default_window_hours() -> f64 {
    72.0
}
fn default_min_senders() -> usize {
    3
}
fn default_min_recipients() -> usize {
    10
}
fn default_response_hours() -> f64 {
    2.0
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BaselineFile {
    #[serde(default = "default_min_messages")]
    pub(crate) min_messages: u64,
    #[serde(default = "default_rare_share")]
    pub(crate) rare_share: f64,
    #[serde(default = "default_rare_attachment_count")]
    pub(crate) rare_attachment_count: u64,
    #[serde(default = "default_min_network_messages")]
    pub(crate) min_network_messages: u64,
}

impl Default for BaselineFile {
    fn default() -> Self {
        BaselineFile {
            min_messages: default_min_messages(),
            rare_share: default_rare_share(),
            rare_attachment_count: default_rare_attachment_count(),
            min_network_messages: default_min_network_messages(),
        }
    }
}

fn default_min_messages() -> u64 {
    20
}
fn default_rare_share() -> f64 {
    0.01
}
fn default_rare_attachment_count() -> u64 {
    3
}
fn default_min_network_messages() -> u64 {
    3
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListsFile {
    #[serde(default)]
    pub(crate) allow: Vec<String>,
    #[serde(default)]
    pub(crate) block: Vec<String>,
    #[serde(default = "default_block_action")]
    pub(crate) block_action: Action,
}

impl Default for ListsFile {
    fn default() -> Self {
        ListsFile {
            allow: Vec::new(),
            block: Vec::new(),
            block_action: default_block_action(),
        }
    }
}

fn default_block_action() -> Action {
    Action::Reject
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuthenticationFile {
    #[serde(default)]
    pub(crate) trusted_authserv_ids: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OverrideFile {
    pub(crate) mode: Option<Mode>,
    pub(crate) thresholds: Option<Thresholds>,
    #[serde(default)]
    pub(crate) weights: BTreeMap<String, f64>,
    #[serde(default)]
    pub(crate) attachment_weights: BTreeMap<String, f64>,
}
