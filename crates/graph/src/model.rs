use serde::Serialize;
use time::OffsetDateTime;

/// Which way a message travelled, seen from the organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// From outside to a local recipient.
    Inbound,
    /// From a local sender to outside: the strongest evidence of a trusted correspondent.
    Outbound,
    /// From a local sender to local recipients only.
    Internal,
}

/// One message that teaches the graph. Addresses and domains are already normalised.
#[derive(Debug, Clone)]
pub struct Observation {
    pub time: OffsetDateTime,
    pub direction: Direction,
    pub message_id: Option<String>,
    pub sender: String,
    pub sender_display_name: Option<String>,
    pub recipients: Vec<String>,
    /// Registrable domains of the links in the message.
    pub link_domains: Vec<String>,
}

/// The parts of a message to look up.
#[derive(Debug, Clone, Default)]
pub struct Lookup {
    pub sender: String,
    pub recipients: Vec<String>,
    pub link_domains: Vec<String>,
    /// In-Reply-To and References ids.
    pub reply_to_ids: Vec<String>,
}

/// How familiar the parts of a message are.
#[derive(Debug, Clone, Default)]
pub struct Familiarity {
    pub sender_known: bool,
    pub sender_domain_known: bool,
    /// Recipients that never exchanged mail with the sender.
    pub new_recipients: Vec<String>,
    /// Link domains never seen in any mail.
    pub new_link_domains: Vec<String>,
    /// The id of a message the organisation sent that this one answers.
    pub known_reply_to: Option<String>,
}

/// Counts for `gatehouse graph stats`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    pub messages: u64,
    pub addresses: u64,
    pub domains: u64,
    pub edges: u64,
    pub link_domains: u64,
    pub sent_message_ids: u64,
}
