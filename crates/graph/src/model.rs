use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

/// Which way a message travelled, seen from the organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// From outside to a local recipient.
    Inbound,
    /// From a local sender to outside: the strongest evidence of a trusted correspondent.
    Outbound,
    /// From a local sender to local recipients only.
    Internal,
}

/// What a recorded message may teach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Learning {
    /// Delivered, released or imported mail: makes its parts familiar and
    /// counts toward campaign windows.
    Familiar,
    /// Held mail: counts toward campaign windows only, so that a campaign is
    /// seen whole, but never makes a sender, domain or link familiar.
    WindowOnly,
}

/// What the graph knows about one entity or edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fact {
    /// When it was first seen, in Unix seconds.
    pub first_seen: i64,
    /// When it was last seen, in Unix seconds.
    pub last_seen: i64,
    /// Messages that came in from outside.
    pub inbound: u64,
    /// Messages the organisation sent out.
    pub outbound: u64,
    /// Messages between local users.
    pub internal: u64,
}

impl Fact {
    /// The encoded size in the store.
    pub(crate) const ENCODED_LEN: usize = 40;

    /// A fact for one message seen at `time` in `direction`.
    pub fn new(time: OffsetDateTime, direction: Direction) -> Fact {
        let seconds = time.unix_timestamp();
        let mut fact = Fact {
            first_seen: seconds,
            last_seen: seconds,
            inbound: 0,
            outbound: 0,
            internal: 0,
        };
        fact.count(direction);
        fact
    }

    /// All messages in every direction.
    pub fn total(&self) -> u64 {
        self.inbound
            .saturating_add(self.outbound)
            .saturating_add(self.internal)
    }

    /// Adds one message seen at `time` in `direction`.
    pub fn record(&mut self, time: OffsetDateTime, direction: Direction) {
        let seconds = time.unix_timestamp();
        self.first_seen = self.first_seen.min(seconds);
        self.last_seen = self.last_seen.max(seconds);
        self.count(direction);
    }

    fn count(&mut self, direction: Direction) {
        let counter = match direction {
            Direction::Inbound => &mut self.inbound,
            Direction::Outbound => &mut self.outbound,
            Direction::Internal => &mut self.internal,
        };
        *counter = counter.saturating_add(1);
    }

    /// When it was first seen.
    pub fn first_seen_time(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(self.first_seen).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// When it was last seen.
    pub fn last_seen_time(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(self.last_seen).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    pub(crate) fn encode(&self) -> [u8; Fact::ENCODED_LEN] {
        let mut bytes = [0u8; Fact::ENCODED_LEN];
        bytes[0..8].copy_from_slice(&self.first_seen.to_be_bytes());
        bytes[8..16].copy_from_slice(&self.last_seen.to_be_bytes());
        bytes[16..24].copy_from_slice(&self.inbound.to_be_bytes());
        bytes[24..32].copy_from_slice(&self.outbound.to_be_bytes());
        bytes[32..40].copy_from_slice(&self.internal.to_be_bytes());
        bytes
    }

    /// Decodes a stored fact, or `None` when the bytes are not one.
    pub(crate) fn decode(bytes: &[u8]) -> Option<Fact> {
        let field = |index: usize| -> Option<[u8; 8]> {
            bytes.get(index * 8..index * 8 + 8)?.try_into().ok()
        };
        if bytes.len() != Fact::ENCODED_LEN {
            return None;
        }
        Some(Fact {
            first_seen: i64::from_be_bytes(field(0)?),
            last_seen: i64::from_be_bytes(field(1)?),
            inbound: u64::from_be_bytes(field(2)?),
            outbound: u64::from_be_bytes(field(3)?),
            internal: u64::from_be_bytes(field(4)?),
        })
    }
}

/// One attachment as the graph sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentKey {
    /// The type found by content, such as `docx` or `png`.
    pub kind: String,
    /// Lower-case hex SHA-256 of the bytes.
    pub sha256: String,
}

/// A campaign response to open when the message is recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Escalation {
    /// The cluster key, such as `sender:brand.example|9{5}`.
    pub cluster: String,
    /// Why the cluster crossed its threshold, as a sentence fragment.
    pub reason: String,
    /// How long every matching message is held.
    pub duration: Duration,
}

/// One message that teaches the graph. Every string is already normalised
/// with the functions of [`crate::keys`].
#[derive(Debug, Clone)]
pub struct Observation {
    pub time: OffsetDateTime,
    pub direction: Direction,
    /// What makes learning idempotent: `mid:` and the Message-ID, or `sha256:`
    /// and the hash of the raw message when it has none.
    pub key: String,
    pub message_id: Option<String>,
    pub sender: String,
    /// The display name as written; stored folded with [`crate::keys::display_name`].
    pub sender_display_name: Option<String>,
    pub recipients: Vec<String>,
    /// Registrable domains of the links in the message.
    pub link_domains: Vec<String>,
    pub attachments: Vec<AttachmentKey>,
    /// Unicode script names (`Latin`, `Han`) dominant in the subject, a body or a filename.
    pub scripts: Vec<String>,
    /// The networks of the first untrusted Received hop: the /24 or /48 prefix,
    /// and `AS64500` and `country:CN` when a GeoIP database is configured.
    pub origin_networks: Vec<String>,
    /// The networks of the submitting client (X-Originating-IP and similar).
    pub client_networks: Vec<String>,
    /// Campaign clusters the message belongs to; empty unless its sender was new.
    pub clusters: Vec<String>,
    /// Responses to open because this message pushed a cluster over its threshold.
    pub escalations: Vec<Escalation>,
}

impl Observation {
    /// An observation with only the envelope filled in.
    pub fn new(
        time: OffsetDateTime,
        direction: Direction,
        key: String,
        sender: String,
        recipients: Vec<String>,
    ) -> Observation {
        Observation {
            time,
            direction,
            key,
            message_id: None,
            sender,
            sender_display_name: None,
            recipients,
            link_domains: Vec::new(),
            attachments: Vec::new(),
            scripts: Vec::new(),
            origin_networks: Vec::new(),
            client_networks: Vec::new(),
            clusters: Vec::new(),
            escalations: Vec::new(),
        }
    }
}

/// The parts of a message to look up, normalised like an [`Observation`].
#[derive(Debug, Clone)]
pub struct Lookup {
    /// The time the message is judged at: windows end and responses are checked here.
    pub time: OffsetDateTime,
    /// This message's idempotency key, so that judging it again does not count it twice.
    pub key: String,
    pub sender: String,
    pub display_name: Option<String>,
    pub recipients: Vec<String>,
    pub link_domains: Vec<String>,
    pub attachments: Vec<AttachmentKey>,
    pub scripts: Vec<String>,
    pub origin_networks: Vec<String>,
    pub client_networks: Vec<String>,
    /// In-Reply-To and References ids.
    pub reply_to_ids: Vec<String>,
    /// Campaign clusters whose windows and responses to read.
    pub clusters: Vec<String>,
    /// How far back campaign windows reach.
    pub window: Duration,
}

impl Lookup {
    /// A lookup of the sender and recipients only.
    pub fn new(time: OffsetDateTime, sender: String, recipients: Vec<String>) -> Lookup {
        Lookup {
            time,
            key: String::new(),
            sender,
            display_name: None,
            recipients,
            link_domains: Vec::new(),
            attachments: Vec::new(),
            scripts: Vec::new(),
            origin_networks: Vec::new(),
            client_networks: Vec::new(),
            reply_to_ids: Vec::new(),
            clusters: Vec::new(),
            window: Duration::hours(72),
        }
    }
}

/// A fact looked up under one name, `None` when it was never seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    pub name: String,
    pub fact: Option<Fact>,
}

/// How familiar an attachment type is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeFamiliarity {
    pub kind: String,
    /// This sender sending this type.
    pub from_sender: Option<Fact>,
    /// The organisation receiving this type from anyone.
    pub organisation: Option<Fact>,
}

/// How familiar a Unicode script is, per recipient and for the organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptFamiliarity {
    pub script: String,
    /// Per recipient, in the order of [`Lookup::recipients`].
    pub recipients: Vec<Option<Fact>>,
    pub organisation: Option<Fact>,
}

/// How familiar the networks of a message are for the sender's domain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkFamiliarity {
    /// Each network of the message, as looked up.
    pub networks: Vec<Known>,
    /// Networks known for the domain, at most [`crate::Limits::max_listed`].
    pub known: Vec<Known>,
}

/// How familiar the parts of a message are.
#[derive(Debug, Clone, Default)]
pub struct Familiarity {
    /// The sender as a correspondent of anyone here.
    pub sender: Option<Fact>,
    /// The sender's registrable domain.
    pub sender_domain: Option<Fact>,
    /// Sender and each recipient as a pair, in the order of [`Lookup::recipients`].
    pub pairs: Vec<Known>,
    /// What each recipient has received, in the order of [`Lookup::recipients`].
    pub recipient_profiles: Vec<Known>,
    /// Every message the organisation learned.
    pub organisation: Option<Fact>,
    /// This sender with this display name.
    pub display_name: Option<Fact>,
    /// Display names this sender used before, at most [`crate::Limits::max_listed`].
    pub sender_display_names: Vec<Known>,
    /// This display name used by a local sender (compared by confusable skeleton).
    pub internal_display_name: Option<Fact>,
    pub link_domains: Vec<Known>,
    pub attachment_types: Vec<TypeFamiliarity>,
    pub scripts: Vec<ScriptFamiliarity>,
    pub origin: NetworkFamiliarity,
    pub client: NetworkFamiliarity,
    /// Local-part shapes of the sender domain's familiar addresses, at most [`crate::Limits::max_listed`].
    pub domain_shapes: Vec<Known>,
    /// The id of a message the organisation sent that this one answers.
    pub known_reply_to: Option<String>,
    /// Campaign windows, in the order of [`Lookup::clusters`].
    pub windows: Vec<WindowSummary>,
    /// Responses in force for any of the message's clusters.
    pub responses: Vec<Response>,
}

/// One message counted in a campaign window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowEvent {
    /// Unix seconds.
    pub time: i64,
    pub key: String,
    pub message_id: Option<String>,
    pub sender: String,
    pub recipients: Vec<String>,
    /// Whether the message was held (and not released since).
    pub held: bool,
}

/// The messages of one cluster within the window, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WindowSummary {
    pub cluster: String,
    pub events: Vec<WindowEvent>,
    /// Whether more events exist than [`crate::Limits::max_window_events`] allowed to read.
    pub truncated: bool,
}

impl WindowSummary {
    /// Distinct senders in the window.
    pub fn senders(&self) -> std::collections::BTreeSet<&str> {
        self.events
            .iter()
            .map(|event| event.sender.as_str())
            .collect()
    }

    /// Distinct recipients in the window.
    pub fn recipients(&self) -> std::collections::BTreeSet<&str> {
        self.events
            .iter()
            .flat_map(|event| event.recipients.iter().map(String::as_str))
            .collect()
    }
}

/// A time-boxed campaign response: every new message of the cluster is held until it expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// Twelve hex digits, stable for the cluster and opening time.
    pub id: String,
    pub cluster: String,
    pub reason: String,
    /// Unix seconds.
    pub opened: i64,
    /// Unix seconds.
    pub expires: i64,
    /// Unix seconds, when a person lifted it early.
    pub lifted: Option<i64>,
}

impl Response {
    /// Whether the response holds matching mail at `time`.
    pub fn is_active(&self, time: OffsetDateTime) -> bool {
        let now = time.unix_timestamp();
        self.lifted.is_none() && self.opened <= now && now < self.expires
    }
}

/// What the graph knows about one address, for `gatehouse graph explain`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AddressReport {
    pub address: String,
    pub domain: String,
    /// The address as a correspondent of the organisation.
    pub correspondent: Option<Fact>,
    pub domain_fact: Option<Fact>,
    /// As a recipient here: every message it received.
    pub recipient_profile: Option<Fact>,
    /// The other side of each edge: local recipients for an external address, correspondents for a local one.
    pub edges: Vec<(String, Fact)>,
    pub display_names: Vec<(String, Fact)>,
    pub attachment_types: Vec<(String, Fact)>,
    /// Scripts received, for a local address.
    pub scripts: Vec<(String, Fact)>,
    /// Origin networks of the address's domain.
    pub origin_networks: Vec<(String, Fact)>,
    pub client_networks: Vec<(String, Fact)>,
    /// Local-part shapes of the address's domain.
    pub domain_shapes: Vec<(String, Fact)>,
}

/// Counts for `gatehouse graph stats`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    /// Messages learned as familiar (each counted once).
    pub messages: u64,
    pub addresses: u64,
    pub domains: u64,
    pub edges: u64,
    pub display_names: u64,
    pub link_domains: u64,
    pub attachment_hashes: u64,
    pub networks: u64,
    pub sent_message_ids: u64,
    /// Messages counted in campaign windows.
    pub window_events: u64,
    pub responses: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fact_round_trips_through_bytes() {
        let mut fact = Fact::new(OffsetDateTime::UNIX_EPOCH, Direction::Inbound);
        fact.record(
            OffsetDateTime::UNIX_EPOCH + Duration::days(3),
            Direction::Outbound,
        );
        assert_eq!(Fact::decode(&fact.encode()), Some(fact));
    }

    #[test]
    fn fact_keeps_earliest_and_latest() {
        let later = OffsetDateTime::UNIX_EPOCH + Duration::days(3);
        let mut fact = Fact::new(later, Direction::Inbound);
        fact.record(OffsetDateTime::UNIX_EPOCH, Direction::Inbound);
        assert_eq!(
            (fact.first_seen, fact.last_seen),
            (0, later.unix_timestamp())
        );
    }

    #[test]
    fn fact_rejects_short_bytes() {
        assert_eq!(Fact::decode(&[0u8; 12]), None);
    }
}
