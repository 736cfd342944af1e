//! Microsoft Defender alerts through the Microsoft Graph Security API.

mod alert;
mod client;
mod config;
mod error;
mod poll;
mod token;

pub use alert::{
    Alert, AlertClassification, AlertDetermination, AlertSeverity, AlertStatus,
    AnalyzedMessageEvidence, DetectionSource, DeviceEvidence, EmailSender, Evidence,
    EvidenceCommon, EvidenceVerdict, LoggedOnUser, MailboxEvidence, ServiceSource, UrlEvidence,
    UserAccount, UserEvidence,
};
pub use client::GraphClient;
pub use config::{DefenderConfig, DefenderLimits, MAX_PAGE_SIZE, MAX_SKIP};
pub use error::DefenderError;
pub use poll::{AlertPoller, PollCursor, PollReport};
