//! [`GraphStore`] on one redb file.
//!
//! Tables:
//! - `facts`: one [`Fact`] per entity or edge, under a string key made of a
//!   one-letter kind and normalised names separated by U+001F (see [`kind`]).
//! - `learned`: the idempotency keys of messages already learned as familiar.
//! - `windows`: campaign window events under `cluster 0x00 time message-key`,
//!   so that one range read returns a cluster's window in time order.
//! - `window_index`: `message-key 0x00 cluster` to the window key, so that a
//!   held message that is released later updates its event in place.
//! - `responses`: the latest campaign response per cluster.
//!
//! redb lets one write transaction run at a time, so the store has one writer
//! whichever thread calls it; reads run beside it on snapshots.

use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::keys;
use crate::model::{
    AddressReport, Direction, Fact, Familiarity, Known, Learning, Lookup, NetworkFamiliarity,
    Observation, Response, ScriptFamiliarity, Stats, TypeFamiliarity, WindowEvent, WindowSummary,
};
use crate::store::{GraphError, GraphStore, Limits};

const FACTS: TableDefinition<&str, &[u8]> = TableDefinition::new("facts");
const LEARNED: TableDefinition<&str, i64> = TableDefinition::new("learned");
const WINDOWS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("windows");
const WINDOW_INDEX: TableDefinition<&[u8], &[u8]> = TableDefinition::new("window_index");
const RESPONSES: TableDefinition<&str, &[u8]> = TableDefinition::new("responses");

/// Separates the parts of a fact key. No normalised address, domain or name contains it.
const SEP: char = '\u{1f}';

/// The one-letter kinds of fact keys.
mod kind {
    /// An external correspondent address.
    pub(super) const ADDRESS: char = 'a';
    /// A correspondent's registrable domain.
    pub(super) const DOMAIN: char = 'd';
    /// External address, then local address.
    pub(super) const PAIR: char = 'p';
    /// Local address, then external address (the same edge, read from the other side).
    pub(super) const PAIR_REVERSE: char = 'P';
    /// A local recipient: everything it received.
    pub(super) const RECIPIENT: char = 'r';
    /// Address, then folded display name.
    pub(super) const DISPLAY_NAME: char = 'n';
    /// Skeleton of a display name a local sender used.
    pub(super) const INTERNAL_NAME: char = 'i';
    /// Registrable domain of a link.
    pub(super) const LINK_DOMAIN: char = 'l';
    /// Sender address, then attachment type.
    pub(super) const SENDER_TYPE: char = 't';
    /// Attachment type received by the organisation.
    pub(super) const ORG_TYPE: char = 'T';
    /// Attachment SHA-256.
    pub(super) const ATTACHMENT_HASH: char = 'h';
    /// Local recipient, then script name.
    pub(super) const RECIPIENT_SCRIPT: char = 's';
    /// Script received by the organisation.
    pub(super) const ORG_SCRIPT: char = 'S';
    /// Sender domain, then origin network.
    pub(super) const ORIGIN: char = 'o';
    /// Sender domain, then client network.
    pub(super) const CLIENT: char = 'c';
    /// Domain, then local-part shape of a familiar address.
    pub(super) const SHAPE: char = 'x';
    /// A Message-ID the organisation sent.
    pub(super) const SENT_ID: char = 'm';
    /// The organisation as a whole.
    pub(super) const ORGANISATION: char = 'O';
}

fn fact_key(kind: char, parts: &[&str]) -> String {
    let mut key = String::with_capacity(2 + parts.iter().map(|part| part.len() + 1).sum::<usize>());
    key.push(kind);
    for part in parts {
        key.push(SEP);
        key.extend(part.chars().map(|c| if c == SEP { ' ' } else { c }));
    }
    key
}

/// The range of keys that start with `prefix` followed by a separator.
fn prefix_range(kind: char, parts: &[&str]) -> (String, String) {
    let mut start = fact_key(kind, parts);
    start.push(SEP);
    let mut end = start.clone();
    end.pop();
    end.push(char::from(SEP as u8 + 1));
    (start, end)
}

/// Encodes a Unix time so that byte order is time order.
fn time_bytes(seconds: i64) -> [u8; 8] {
    ((seconds as u64) ^ (1 << 63)).to_be_bytes()
}

fn window_prefix(cluster: &str) -> Vec<u8> {
    let mut key: Vec<u8> = cluster
        .bytes()
        .map(|b| if b == 0 { b' ' } else { b })
        .collect();
    key.push(0);
    key
}

fn window_key(cluster: &str, seconds: i64, message_key: &str) -> Vec<u8> {
    let mut key = window_prefix(cluster);
    key.extend_from_slice(&time_bytes(seconds));
    key.extend_from_slice(message_key.as_bytes());
    key
}

fn index_key(message_key: &str, cluster: &str) -> Vec<u8> {
    let mut key: Vec<u8> = message_key
        .bytes()
        .map(|b| if b == 0 { b' ' } else { b })
        .collect();
    key.push(0);
    key.extend_from_slice(cluster.as_bytes());
    key
}

fn response_id(cluster: &str, opened: i64) -> String {
    let mut hasher = Sha256::new();
    hasher.update(cluster.as_bytes());
    hasher.update(opened.to_be_bytes());
    hex::encode(&hasher.finalize()[..6])
}

/// The graph in one redb file.
///
/// Every [`GraphStore::observe`] is one write transaction.
/// NOTE: a commit costs more than the learning in it, about 2,100 messages/s
/// one by one against 5,100/s in batches of 100 (`benches/learn.rs` on a
/// loaded 2-core machine), so imports should use [`GraphStore::observe_batch`].
pub struct RedbGraph {
    db: Database,
    limits: Limits,
    last_durable: Mutex<Instant>,
}

impl RedbGraph {
    /// Opens the store at `path` with default limits, creating it when absent.
    pub fn open(path: &Path) -> Result<RedbGraph, GraphError> {
        RedbGraph::open_with(path, Limits::default())
    }

    /// Opens the store at `path`, creating it when absent.
    pub fn open_with(path: &Path, limits: Limits) -> Result<RedbGraph, GraphError> {
        let db = Database::create(path).map_err(|source| match source {
            redb::DatabaseError::DatabaseAlreadyOpen => GraphError::InUse {
                path: path.display().to_string(),
            },
            source => GraphError::Open {
                path: path.display().to_string(),
                source,
            },
        })?;
        let graph = RedbGraph {
            db,
            limits,
            last_durable: Mutex::new(Instant::now()),
        };
        graph.create_tables()?;
        Ok(graph)
    }

    /// The limits this store applies.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    fn create_tables(&self) -> Result<(), GraphError> {
        let txn = self.db.begin_write().map_err(redb::Error::from)?;
        txn.open_table(FACTS).map_err(redb::Error::from)?;
        txn.open_table(LEARNED).map_err(redb::Error::from)?;
        txn.open_table(WINDOWS).map_err(redb::Error::from)?;
        txn.open_table(WINDOW_INDEX).map_err(redb::Error::from)?;
        txn.open_table(RESPONSES).map_err(redb::Error::from)?;
        txn.commit().map_err(redb::Error::from)?;
        Ok(())
    }

    /// Chooses the durability of the next commit: durable once per
    /// [`Limits::durable_interval`], deferred in between.
    fn next_durability(&self) -> Durability {
        let mut last = match self.last_durable.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if last.elapsed() >= self.limits.durable_interval {
            *last = Instant::now();
            Durability::Immediate
        } else {
            Durability::None
        }
    }
}

impl Drop for RedbGraph {
    fn drop(&mut self) {
        if let Err(err) = self.flush() {
            tracing::warn!(error = %err, "graph store: final durable commit failed");
        }
    }
}

/// Adds one message to the fact under `key`.
fn bump(
    facts: &mut redb::Table<'_, &str, &[u8]>,
    key: &str,
    time: OffsetDateTime,
    direction: Direction,
) -> Result<(), GraphError> {
    let existing = facts
        .get(key)
        .map_err(redb::Error::from)?
        .map(|guard| Fact::decode(guard.value()));
    let fact = match existing {
        None => Fact::new(time, direction),
        Some(Some(mut fact)) => {
            fact.record(time, direction);
            fact
        }
        Some(None) => {
            return Err(GraphError::Corrupt {
                what: "fact",
                key: key.to_owned(),
            });
        }
    };
    facts
        .insert(key, fact.encode().as_slice())
        .map_err(redb::Error::from)?;
    Ok(())
}

fn learn_familiar(
    facts: &mut redb::Table<'_, &str, &[u8]>,
    observation: &Observation,
    limits: &Limits,
) -> Result<(), GraphError> {
    let time = observation.time;
    let direction = observation.direction;
    let sender = observation.sender.as_str();
    let sender_domain = keys::registrable_domain(keys::address_domain(sender));
    let recipients = observation.recipients.iter().take(limits.max_recipients);
    let items = limits.max_items;

    bump(facts, &fact_key(kind::ORGANISATION, &[]), time, direction)?;
    for domain in observation.link_domains.iter().take(items) {
        bump(
            facts,
            &fact_key(kind::LINK_DOMAIN, &[domain]),
            time,
            direction,
        )?;
    }

    match direction {
        Direction::Inbound => {
            bump(facts, &fact_key(kind::ADDRESS, &[sender]), time, direction)?;
            bump(
                facts,
                &fact_key(kind::DOMAIN, &[&sender_domain]),
                time,
                direction,
            )?;
            let shape = keys::local_part_shape(sender);
            bump(
                facts,
                &fact_key(kind::SHAPE, &[&sender_domain, &shape]),
                time,
                direction,
            )?;
            if let Some(name) = &observation.sender_display_name {
                let folded = keys::display_name(name);
                if !folded.is_empty() {
                    bump(
                        facts,
                        &fact_key(kind::DISPLAY_NAME, &[sender, &folded]),
                        time,
                        direction,
                    )?;
                }
            }
            for recipient in recipients {
                bump(
                    facts,
                    &fact_key(kind::PAIR, &[sender, recipient]),
                    time,
                    direction,
                )?;
                bump(
                    facts,
                    &fact_key(kind::PAIR_REVERSE, &[recipient, sender]),
                    time,
                    direction,
                )?;
                bump(
                    facts,
                    &fact_key(kind::RECIPIENT, &[recipient]),
                    time,
                    direction,
                )?;
                for script in observation.scripts.iter().take(items) {
                    bump(
                        facts,
                        &fact_key(kind::RECIPIENT_SCRIPT, &[recipient, script]),
                        time,
                        direction,
                    )?;
                }
            }
            for script in observation.scripts.iter().take(items) {
                bump(
                    facts,
                    &fact_key(kind::ORG_SCRIPT, &[script]),
                    time,
                    direction,
                )?;
            }
            for attachment in observation.attachments.iter().take(items) {
                bump(
                    facts,
                    &fact_key(kind::SENDER_TYPE, &[sender, &attachment.kind]),
                    time,
                    direction,
                )?;
                bump(
                    facts,
                    &fact_key(kind::ORG_TYPE, &[&attachment.kind]),
                    time,
                    direction,
                )?;
                bump(
                    facts,
                    &fact_key(kind::ATTACHMENT_HASH, &[&attachment.sha256]),
                    time,
                    direction,
                )?;
            }
            for network in observation.origin_networks.iter().take(items) {
                bump(
                    facts,
                    &fact_key(kind::ORIGIN, &[&sender_domain, network]),
                    time,
                    direction,
                )?;
            }
            for network in observation.client_networks.iter().take(items) {
                bump(
                    facts,
                    &fact_key(kind::CLIENT, &[&sender_domain, network]),
                    time,
                    direction,
                )?;
            }
        }
        Direction::Outbound | Direction::Internal => {
            if let Some(name) = &observation.sender_display_name {
                let skeleton = keys::name_skeleton(name);
                if !skeleton.is_empty() {
                    bump(
                        facts,
                        &fact_key(kind::INTERNAL_NAME, &[&skeleton]),
                        time,
                        direction,
                    )?;
                }
            }
            if let Some(id) = &observation.message_id {
                bump(facts, &fact_key(kind::SENT_ID, &[id]), time, direction)?;
            }
            for attachment in observation.attachments.iter().take(items) {
                bump(
                    facts,
                    &fact_key(kind::ATTACHMENT_HASH, &[&attachment.sha256]),
                    time,
                    direction,
                )?;
            }
            for recipient in recipients {
                if direction == Direction::Outbound {
                    // A local user writing out makes the recipient a trusted correspondent.
                    let domain = keys::registrable_domain(keys::address_domain(recipient));
                    let shape = keys::local_part_shape(recipient);
                    bump(
                        facts,
                        &fact_key(kind::ADDRESS, &[recipient]),
                        time,
                        direction,
                    )?;
                    bump(facts, &fact_key(kind::DOMAIN, &[&domain]), time, direction)?;
                    bump(
                        facts,
                        &fact_key(kind::SHAPE, &[&domain, &shape]),
                        time,
                        direction,
                    )?;
                    bump(
                        facts,
                        &fact_key(kind::PAIR, &[recipient, sender]),
                        time,
                        direction,
                    )?;
                    bump(
                        facts,
                        &fact_key(kind::PAIR_REVERSE, &[sender, recipient]),
                        time,
                        direction,
                    )?;
                } else {
                    bump(
                        facts,
                        &fact_key(kind::RECIPIENT, &[recipient]),
                        time,
                        direction,
                    )?;
                    for script in observation.scripts.iter().take(items) {
                        bump(
                            facts,
                            &fact_key(kind::RECIPIENT_SCRIPT, &[recipient, script]),
                            time,
                            direction,
                        )?;
                    }
                }
            }
            if direction == Direction::Internal {
                for script in observation.scripts.iter().take(items) {
                    bump(
                        facts,
                        &fact_key(kind::ORG_SCRIPT, &[script]),
                        time,
                        direction,
                    )?;
                }
            }
        }
    }
    Ok(())
}

fn record_windows(
    txn: &redb::WriteTransaction,
    observation: &Observation,
    learning: Learning,
    limits: &Limits,
) -> Result<(), GraphError> {
    let mut windows = txn.open_table(WINDOWS).map_err(redb::Error::from)?;
    let mut index = txn.open_table(WINDOW_INDEX).map_err(redb::Error::from)?;
    let held = learning == Learning::WindowOnly;
    let seconds = observation.time.unix_timestamp();
    let cutoff = seconds.saturating_sub(limits.window_retention.whole_seconds());

    for cluster in observation.clusters.iter().take(limits.max_items) {
        let index_entry = index_key(&observation.key, cluster);
        let existing_key = index
            .get(index_entry.as_slice())
            .map_err(redb::Error::from)?
            .map(|guard| guard.value().to_vec());
        let key = match existing_key {
            Some(key) => {
                // Seen before: a release clears the held mark, a second hold changes nothing.
                let previous = windows
                    .get(key.as_slice())
                    .map_err(redb::Error::from)?
                    .map(|guard| serde_json::from_slice::<WindowEvent>(guard.value()));
                match previous {
                    Some(Ok(mut event)) if event.held && !held => {
                        event.held = false;
                        let value = serde_json::to_vec(&event).unwrap_or_default();
                        windows
                            .insert(key.as_slice(), value.as_slice())
                            .map_err(redb::Error::from)?;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => {
                        index
                            .remove(index_entry.as_slice())
                            .map_err(redb::Error::from)?;
                    }
                }
                continue;
            }
            None => window_key(cluster, seconds, &observation.key),
        };
        let event = WindowEvent {
            time: seconds,
            key: observation.key.clone(),
            message_id: observation.message_id.clone(),
            sender: observation.sender.clone(),
            recipients: observation
                .recipients
                .iter()
                .take(limits.max_event_recipients)
                .cloned()
                .collect(),
            held,
        };
        let value = serde_json::to_vec(&event).unwrap_or_default();
        windows
            .insert(key.as_slice(), value.as_slice())
            .map_err(redb::Error::from)?;
        index
            .insert(index_entry.as_slice(), key.as_slice())
            .map_err(redb::Error::from)?;

        // Drop the cluster's events that fell out of the retention period.
        let start = window_prefix(cluster);
        let mut end = window_prefix(cluster);
        end.extend_from_slice(&time_bytes(cutoff));
        let mut expired = Vec::new();
        for entry in windows
            .range(start.as_slice()..end.as_slice())
            .map_err(redb::Error::from)?
            .take(limits.max_window_events)
        {
            let (key, _) = entry.map_err(redb::Error::from)?;
            expired.push(key.value().to_vec());
        }
        for key in expired {
            windows.remove(key.as_slice()).map_err(redb::Error::from)?;
            if let Some(message_key) = key.get(start.len() + 8..) {
                let message_key = String::from_utf8_lossy(message_key);
                index
                    .remove(index_key(&message_key, cluster).as_slice())
                    .map_err(redb::Error::from)?;
            }
        }
    }
    Ok(())
}

fn open_responses(
    txn: &redb::WriteTransaction,
    observation: &Observation,
) -> Result<(), GraphError> {
    if observation.escalations.is_empty() {
        return Ok(());
    }
    let mut responses = txn.open_table(RESPONSES).map_err(redb::Error::from)?;
    for escalation in &observation.escalations {
        let current = responses
            .get(escalation.cluster.as_str())
            .map_err(redb::Error::from)?
            .and_then(|guard| serde_json::from_slice::<Response>(guard.value()).ok());
        if current.is_some_and(|response| response.is_active(observation.time)) {
            continue;
        }
        // NOTE: one response is kept per cluster, so a response opened after
        // the last one expired replaces it in `responses()`.
        let opened = observation.time.unix_timestamp();
        let response = Response {
            id: response_id(&escalation.cluster, opened),
            cluster: escalation.cluster.clone(),
            reason: escalation.reason.clone(),
            opened,
            expires: opened.saturating_add(escalation.duration.whole_seconds()),
            lifted: None,
        };
        let value = serde_json::to_vec(&response).unwrap_or_default();
        responses
            .insert(escalation.cluster.as_str(), value.as_slice())
            .map_err(redb::Error::from)?;
        tracing::info!(
            response = %response.id,
            cluster = %response.cluster,
            expires = response.expires,
            "campaign response opened"
        );
    }
    Ok(())
}

/// Read helpers over one read transaction.
struct Reader {
    facts: redb::ReadOnlyTable<&'static str, &'static [u8]>,
}

impl Reader {
    fn fact(&self, key: &str) -> Result<Option<Fact>, GraphError> {
        match self.facts.get(key).map_err(redb::Error::from)? {
            None => Ok(None),
            Some(guard) => {
                Fact::decode(guard.value())
                    .map(Some)
                    .ok_or_else(|| GraphError::Corrupt {
                        what: "fact",
                        key: key.to_owned(),
                    })
            }
        }
    }

    fn known(&self, name: &str, key: &str) -> Result<Known, GraphError> {
        Ok(Known {
            name: name.to_owned(),
            fact: self.fact(key)?,
        })
    }

    /// Lists up to `max` facts under a key prefix, by the last part of their key.
    fn list(
        &self,
        kind: char,
        parts: &[&str],
        max: usize,
    ) -> Result<Vec<(String, Fact)>, GraphError> {
        let (start, end) = prefix_range(kind, parts);
        let mut listed = Vec::new();
        for entry in self
            .facts
            .range(start.as_str()..end.as_str())
            .map_err(redb::Error::from)?
            .take(max)
        {
            let (key, value) = entry.map_err(redb::Error::from)?;
            let name = key.value().get(start.len()..).unwrap_or("").to_owned();
            let fact = Fact::decode(value.value()).ok_or_else(|| GraphError::Corrupt {
                what: "fact",
                key: key.value().to_owned(),
            })?;
            listed.push((name, fact));
        }
        Ok(listed)
    }

    fn count(&self, kind: char) -> Result<u64, GraphError> {
        let (start, end) = prefix_range(kind, &[]);
        let mut count = 0;
        for entry in self
            .facts
            .range(start.as_str()..end.as_str())
            .map_err(redb::Error::from)?
        {
            entry.map_err(redb::Error::from)?;
            count += 1;
        }
        Ok(count)
    }
}

fn as_known(listed: Vec<(String, Fact)>) -> Vec<Known> {
    listed
        .into_iter()
        .map(|(name, fact)| Known {
            name,
            fact: Some(fact),
        })
        .collect()
}

impl GraphStore for RedbGraph {
    fn observe_batch(&self, batch: &[(Observation, Learning)]) -> Result<usize, GraphError> {
        let mut txn = self.db.begin_write().map_err(redb::Error::from)?;
        txn.set_durability(self.next_durability())
            .map_err(redb::Error::from)?;
        let mut learned_count = 0;
        {
            let mut facts = txn.open_table(FACTS).map_err(redb::Error::from)?;
            let mut learned = txn.open_table(LEARNED).map_err(redb::Error::from)?;
            for (observation, learning) in batch {
                if *learning != Learning::Familiar {
                    continue;
                }
                let seen = learned
                    .get(observation.key.as_str())
                    .map_err(redb::Error::from)?
                    .is_some();
                if seen {
                    continue;
                }
                learn_familiar(&mut facts, observation, &self.limits)?;
                learned
                    .insert(observation.key.as_str(), observation.time.unix_timestamp())
                    .map_err(redb::Error::from)?;
                learned_count += 1;
            }
        }
        for (observation, learning) in batch {
            record_windows(&txn, observation, *learning, &self.limits)?;
            open_responses(&txn, observation)?;
        }
        txn.commit().map_err(redb::Error::from)?;
        Ok(learned_count)
    }

    fn lookup(&self, lookup: &Lookup) -> Result<Familiarity, GraphError> {
        let txn = self.db.begin_read().map_err(redb::Error::from)?;
        let reader = Reader {
            facts: txn.open_table(FACTS).map_err(redb::Error::from)?,
        };
        let max_listed = self.limits.max_listed;
        let sender = lookup.sender.as_str();
        let sender_domain = keys::registrable_domain(keys::address_domain(sender));
        let mut familiarity = Familiarity {
            sender: reader.fact(&fact_key(kind::ADDRESS, &[sender]))?,
            sender_domain: reader.fact(&fact_key(kind::DOMAIN, &[&sender_domain]))?,
            organisation: reader.fact(&fact_key(kind::ORGANISATION, &[]))?,
            ..Familiarity::default()
        };

        for recipient in lookup.recipients.iter().take(self.limits.max_recipients) {
            familiarity
                .pairs
                .push(reader.known(recipient, &fact_key(kind::PAIR, &[sender, recipient]))?);
            familiarity
                .recipient_profiles
                .push(reader.known(recipient, &fact_key(kind::RECIPIENT, &[recipient]))?);
        }

        if let Some(name) = &lookup.display_name {
            let folded = keys::display_name(name);
            familiarity.display_name =
                reader.fact(&fact_key(kind::DISPLAY_NAME, &[sender, &folded]))?;
            let skeleton = keys::name_skeleton(name);
            familiarity.internal_display_name =
                reader.fact(&fact_key(kind::INTERNAL_NAME, &[&skeleton]))?;
        }
        familiarity.sender_display_names =
            as_known(reader.list(kind::DISPLAY_NAME, &[sender], max_listed)?);
        familiarity.domain_shapes =
            as_known(reader.list(kind::SHAPE, &[&sender_domain], max_listed)?);

        let items = self.limits.max_items;
        for domain in lookup.link_domains.iter().take(items) {
            familiarity
                .link_domains
                .push(reader.known(domain, &fact_key(kind::LINK_DOMAIN, &[domain]))?);
        }
        for attachment in lookup.attachments.iter().take(items) {
            familiarity.attachment_types.push(TypeFamiliarity {
                kind: attachment.kind.clone(),
                from_sender: reader
                    .fact(&fact_key(kind::SENDER_TYPE, &[sender, &attachment.kind]))?,
                organisation: reader.fact(&fact_key(kind::ORG_TYPE, &[&attachment.kind]))?,
            });
        }
        for script in lookup.scripts.iter().take(items) {
            let mut per_recipient = Vec::new();
            for recipient in lookup.recipients.iter().take(self.limits.max_recipients) {
                per_recipient
                    .push(reader.fact(&fact_key(kind::RECIPIENT_SCRIPT, &[recipient, script]))?);
            }
            familiarity.scripts.push(ScriptFamiliarity {
                script: script.clone(),
                recipients: per_recipient,
                organisation: reader.fact(&fact_key(kind::ORG_SCRIPT, &[script]))?,
            });
        }

        familiarity.origin = network_familiarity(
            &reader,
            kind::ORIGIN,
            &sender_domain,
            &lookup.origin_networks,
            max_listed,
        )?;
        familiarity.client = network_familiarity(
            &reader,
            kind::CLIENT,
            &sender_domain,
            &lookup.client_networks,
            max_listed,
        )?;

        for id in lookup.reply_to_ids.iter().take(items) {
            if reader.fact(&fact_key(kind::SENT_ID, &[id]))?.is_some() {
                familiarity.known_reply_to = Some(id.clone());
                break;
            }
        }

        // Campaign windows: the events of each cluster from `time - window` up to `time`.
        let windows = txn.open_table(WINDOWS).map_err(redb::Error::from)?;
        let responses = txn.open_table(RESPONSES).map_err(redb::Error::from)?;
        let now = lookup.time.unix_timestamp();
        let since = now.saturating_sub(lookup.window.whole_seconds());
        for cluster in lookup.clusters.iter().take(items) {
            let mut start = window_prefix(cluster);
            start.extend_from_slice(&time_bytes(since));
            let mut end = window_prefix(cluster);
            end.extend_from_slice(&time_bytes(now.saturating_add(1)));
            let mut summary = WindowSummary {
                cluster: cluster.clone(),
                ..WindowSummary::default()
            };
            for entry in windows
                .range(start.as_slice()..end.as_slice())
                .map_err(redb::Error::from)?
            {
                if summary.events.len() >= self.limits.max_window_events {
                    summary.truncated = true;
                    break;
                }
                let (key, value) = entry.map_err(redb::Error::from)?;
                let event: WindowEvent =
                    serde_json::from_slice(value.value()).map_err(|_| GraphError::Corrupt {
                        what: "window event",
                        key: String::from_utf8_lossy(key.value()).into_owned(),
                    })?;
                if event.key != lookup.key {
                    summary.events.push(event);
                }
            }
            familiarity.windows.push(summary);

            if let Some(guard) = responses.get(cluster.as_str()).map_err(redb::Error::from)? {
                let response: Response =
                    serde_json::from_slice(guard.value()).map_err(|_| GraphError::Corrupt {
                        what: "response",
                        key: cluster.clone(),
                    })?;
                if response.is_active(lookup.time) {
                    familiarity.responses.push(response);
                }
            }
        }
        Ok(familiarity)
    }

    fn stats(&self) -> Result<Stats, GraphError> {
        let txn = self.db.begin_read().map_err(redb::Error::from)?;
        let reader = Reader {
            facts: txn.open_table(FACTS).map_err(redb::Error::from)?,
        };
        Ok(Stats {
            messages: txn
                .open_table(LEARNED)
                .map_err(redb::Error::from)?
                .len()
                .map_err(redb::Error::from)?,
            addresses: reader.count(kind::ADDRESS)?,
            domains: reader.count(kind::DOMAIN)?,
            edges: reader.count(kind::PAIR)?,
            display_names: reader.count(kind::DISPLAY_NAME)?,
            link_domains: reader.count(kind::LINK_DOMAIN)?,
            attachment_hashes: reader.count(kind::ATTACHMENT_HASH)?,
            networks: reader.count(kind::ORIGIN)?,
            sent_message_ids: reader.count(kind::SENT_ID)?,
            window_events: txn
                .open_table(WINDOWS)
                .map_err(redb::Error::from)?
                .len()
                .map_err(redb::Error::from)?,
            responses: txn
                .open_table(RESPONSES)
                .map_err(redb::Error::from)?
                .len()
                .map_err(redb::Error::from)?,
        })
    }

    fn explain(&self, address: &str) -> Result<AddressReport, GraphError> {
        let address = keys::address(address);
        let domain = keys::registrable_domain(keys::address_domain(&address));
        let txn = self.db.begin_read().map_err(redb::Error::from)?;
        let reader = Reader {
            facts: txn.open_table(FACTS).map_err(redb::Error::from)?,
        };
        let max = self.limits.max_listed;
        let mut edges = reader.list(kind::PAIR, &[&address], max)?;
        edges.extend(reader.list(kind::PAIR_REVERSE, &[&address], max)?);
        Ok(AddressReport {
            correspondent: reader.fact(&fact_key(kind::ADDRESS, &[&address]))?,
            domain_fact: reader.fact(&fact_key(kind::DOMAIN, &[&domain]))?,
            recipient_profile: reader.fact(&fact_key(kind::RECIPIENT, &[&address]))?,
            edges,
            display_names: reader.list(kind::DISPLAY_NAME, &[&address], max)?,
            attachment_types: reader.list(kind::SENDER_TYPE, &[&address], max)?,
            scripts: reader.list(kind::RECIPIENT_SCRIPT, &[&address], max)?,
            origin_networks: reader.list(kind::ORIGIN, &[&domain], max)?,
            client_networks: reader.list(kind::CLIENT, &[&domain], max)?,
            domain_shapes: reader.list(kind::SHAPE, &[&domain], max)?,
            address,
            domain,
        })
    }

    fn responses(&self) -> Result<Vec<Response>, GraphError> {
        let txn = self.db.begin_read().map_err(redb::Error::from)?;
        let table = txn.open_table(RESPONSES).map_err(redb::Error::from)?;
        let mut responses = Vec::new();
        for entry in table.iter().map_err(redb::Error::from)? {
            let (key, value) = entry.map_err(redb::Error::from)?;
            let response: Response =
                serde_json::from_slice(value.value()).map_err(|_| GraphError::Corrupt {
                    what: "response",
                    key: key.value().to_owned(),
                })?;
            responses.push(response);
        }
        responses.sort_by(|a, b| b.opened.cmp(&a.opened).then_with(|| a.id.cmp(&b.id)));
        Ok(responses)
    }

    fn lift_response(
        &self,
        id: &str,
        time: OffsetDateTime,
    ) -> Result<Option<Response>, GraphError> {
        let Some(mut response) = self
            .responses()?
            .into_iter()
            .find(|response| response.id == id)
        else {
            return Ok(None);
        };
        response.lifted = Some(time.unix_timestamp());
        let txn = self.db.begin_write().map_err(redb::Error::from)?;
        {
            let mut table = txn.open_table(RESPONSES).map_err(redb::Error::from)?;
            let value = serde_json::to_vec(&response).unwrap_or_default();
            table
                .insert(response.cluster.as_str(), value.as_slice())
                .map_err(redb::Error::from)?;
        }
        txn.commit().map_err(redb::Error::from)?;
        tracing::info!(response = %response.id, cluster = %response.cluster, "campaign response lifted");
        Ok(Some(response))
    }

    fn flush(&self) -> Result<(), GraphError> {
        let mut txn = self.db.begin_write().map_err(redb::Error::from)?;
        txn.set_durability(Durability::Immediate)
            .map_err(redb::Error::from)?;
        txn.commit().map_err(redb::Error::from)?;
        if let Ok(mut last) = self.last_durable.lock() {
            *last = Instant::now();
        }
        Ok(())
    }
}

fn network_familiarity(
    reader: &Reader,
    kind: char,
    domain: &str,
    networks: &[String],
    max_listed: usize,
) -> Result<NetworkFamiliarity, GraphError> {
    let mut familiarity = NetworkFamiliarity::default();
    for network in networks {
        familiarity
            .networks
            .push(reader.known(network, &fact_key(kind, &[domain, network]))?);
    }
    familiarity.known = as_known(reader.list(kind, &[domain], max_listed)?);
    Ok(familiarity)
}
