//! The verdict: the value every front acts on and every held message stores as `<id>.json`.

use std::net::IpAddr;

use gatehouse_message::LinkSource;
use gatehouse_policy::Action;

use crate::signals::{CampaignRecord, EndpointAlertRecord};
use serde::{Deserialize, Serialize};

/// The decision on one message and everything that explains it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Verdict {
    /// A UUIDv7, also the quarantine id when the message is held.
    pub id: String,
    pub action: Action,
    pub score: f64,
    pub signals: Vec<SignalRecord>,
    pub envelope: Envelope,
    pub message: MessageSummary,
    pub links: Vec<LinkRecord>,
    pub attachments: Vec<AttachmentRecord>,
    pub qr_codes: Vec<QrRecord>,
    /// Findings from parsing and unpacking that are not signals of their own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<FindingRecord>,
    /// The campaign cluster the message belongs to, with earlier members delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<CampaignRecord>,
    /// Active endpoint alerts that name the message's recipients, sender,
    /// link hosts or Message-ID.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoint_alerts: Vec<EndpointAlertRecord>,
    /// The scanned file, when the message came from a file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

/// One fired signal with the values that made it fire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalRecord {
    pub id: String,
    pub weight: f64,
    pub evidence: String,
}

/// The SMTP envelope, or the one derived from headers for a message read from a file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helo: Option<String>,
}

/// The headers a person reads first.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MessageSummary {
    pub message_id: Option<String>,
    pub from: Option<String>,
    pub display_name: Option<String>,
    pub subject: Option<String>,
    /// RFC 3339.
    pub date: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkRecord {
    pub url: String,
    pub domain: String,
    pub source: LinkSource,
    pub location: String,
    /// The normalised host, when the link stage reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The host an HTML anchor's text shows, when it differs from the target's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shown_host: Option<String>,
    /// The redirector URL this link was unwrapped from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unwrapped_from: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttachmentRecord {
    pub name: String,
    /// The type found by content, such as `docx` or `png`.
    #[serde(rename = "type")]
    pub kind: String,
    pub size: u64,
    pub sha256: String,
}

/// One decoded QR payload, URL or not, with how it was drawn and what it hides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QrRecord {
    pub payload: String,
    pub location: String,
    /// The payload's kind: `url`, `otpauth`, `wifi`, `payment`, `email`,
    /// `phone`, `sms`, `geo`, `contact`, `other_uri` or `text`. Only `url`
    /// payloads become links.
    #[serde(default)]
    pub kind: String,
    /// The drawing technique: `image`, `pdf`, `svg`, `html_grid` (table
    /// cells or a CSS grid), `block_characters` or `split_images`.
    #[serde(default)]
    pub technique: String,
    /// Set when the code was found only after the codes found before it in
    /// the same drawing were masked out: a code nested in another.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub nested: bool,
    /// The URL a redirector in the payload leads to, innermost, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The short-link or dynamic-QR service the payload or its target goes through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<QrService>,
    /// A recipient's address carried inside the payload or its target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_address: Option<EmbeddedAddress>,
}

/// A short-link or dynamic-QR service behind a QR payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QrService {
    /// `short_link` or `dynamic_qr`.
    pub kind: String,
    /// The registrable domain the service is known by.
    pub domain: String,
}

/// A recipient's address found inside a URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbeddedAddress {
    pub address: String,
    /// `plain`, `percent_encoded`, `base64` or `base64_url`.
    pub encoding: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingRecord {
    pub id: String,
    pub location: String,
    pub detail: String,
}
