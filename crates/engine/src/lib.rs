//! The analysis pipeline: one function from (envelope, raw bytes, time) to a [`Verdict`].
//!
//! [`Engine::analyse`] runs the stages in order, each in its own module:
//! parse (`gatehouse-message`), unpack attachments (`gatehouse-unpack`),
//! decode QR codes (`gatehouse-qr`), collect links, look the message up in the
//! graph (`gatehouse-graph`), fire signals, and score them with the policy
//! (`gatehouse-policy`). The result is an [`Analysis`]: the verdict to act on
//! and the observation to learn once the action is durable
//! ([`Engine::learn`]). Every front (SMTP proxy, milter, CLI) calls the same
//! engine and holds no policy of its own.

mod content;
mod engine;
mod signals;
pub mod tagging;
mod verdict;

pub use engine::{Analysis, Engine, EngineError, Limits, Outcome, VerdictObserver, When};
pub use gatehouse_policy::Action;
pub use signals::{
    AlertMatchKey, AlertQuery, CampaignGroup, CampaignRecord, DomainRegistration, EarlierMember,
    EndpointAlert, EndpointAlertRecord, Enrichment, GeoIp, GeoIpError, TrustedNetworkError,
    TrustedNetworks, explain, group_by_campaign, render_text,
};
pub use verdict::{
    AttachmentRecord, EmbeddedAddress, Envelope, FindingRecord, LinkRecord, MessageSummary,
    QrRecord, QrService, SignalRecord, Verdict,
};
