use time::{Duration, OffsetDateTime};

use crate::{AddressReport, Familiarity, Learning, Lookup, Observation, Response, Stats};

/// Could not read or write the graph. A lookup that finds nothing is not an error.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error(
        "cannot open graph store {path}: {source}; check that the data directory exists and no other process has the file open"
    )]
    Open {
        path: String,
        source: redb::DatabaseError,
    },
    #[error(
        "graph store {path} is open in another process, such as a running `gatehouse serve`; stop that process first"
    )]
    InUse { path: String },
    #[error("graph store failed: {0}")]
    Storage(#[from] redb::Error),
    #[error(
        "graph store holds an invalid {what} under {key}: the file is damaged or from another version"
    )]
    Corrupt { what: &'static str, key: String },
}

impl GraphError {
    /// Whether trying again later may succeed (a busy or full disk), as opposed
    /// to a damaged store or a wrong path.
    pub fn is_transient(&self) -> bool {
        matches!(self, GraphError::Storage(redb::Error::Io(_)))
    }
}

/// Bounds on the work and storage one message or one query may cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Maximum events read from one campaign window per lookup. A window with
    /// more events is reported as truncated, and its counts are lower bounds.
    pub max_window_events: usize,
    /// Maximum entries listed where a lookup or report lists what is known
    /// (display names, networks, shapes of a domain).
    pub max_listed: usize,
    /// Maximum recipients of one message that are learned; the rest are skipped.
    pub max_recipients: usize,
    /// Maximum recipients of one message kept in a campaign window event, so
    /// that reading a window stays cheap. Burst counts are then lower bounds.
    pub max_event_recipients: usize,
    /// Maximum link domains, attachments, scripts, networks or clusters
    /// learned or looked up per message.
    pub max_items: usize,
    /// How long campaign window events are kept; must be at least the longest window a policy uses.
    pub window_retention: Duration,
    /// Maximum time between two durable commits. Commits in between are not
    /// flushed to disk, so a crash loses at most this much learning.
    pub durable_interval: std::time::Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_window_events: 1_000,
            max_listed: 20,
            max_recipients: 1_000,
            max_event_recipients: 100,
            max_items: 200,
            window_retention: Duration::days(14),
            durable_interval: std::time::Duration::from_secs(1),
        }
    }
}

/// The learned graph, as the engine uses it. An implementation may be local
/// (redb) or networked, and callers assume neither.
pub trait GraphStore: Send + Sync {
    /// Records one message. Learning the same message twice counts once; held
    /// mail ([`Learning::WindowOnly`]) only joins campaign windows. Returns
    /// whether the message taught familiarity for the first time.
    fn observe(&self, observation: &Observation, learning: Learning) -> Result<bool, GraphError> {
        let learned = self.observe_batch(&[(observation.clone(), learning)])?;
        Ok(learned > 0)
    }

    /// Records several messages in one transaction; returns how many taught
    /// familiarity for the first time.
    fn observe_batch(&self, batch: &[(Observation, Learning)]) -> Result<usize, GraphError>;

    /// Returns how familiar the parts of a message are.
    fn lookup(&self, lookup: &Lookup) -> Result<Familiarity, GraphError>;

    fn stats(&self) -> Result<Stats, GraphError>;

    /// Returns everything known about one address, local or external.
    fn explain(&self, address: &str) -> Result<AddressReport, GraphError>;

    /// Lists every campaign response, active or not, newest first.
    fn responses(&self) -> Result<Vec<Response>, GraphError>;

    /// Lifts a response early; returns it, or `None` when no response has that id.
    fn lift_response(&self, id: &str, time: OffsetDateTime)
    -> Result<Option<Response>, GraphError>;

    /// Makes every recorded message durable.
    fn flush(&self) -> Result<(), GraphError>;
}
