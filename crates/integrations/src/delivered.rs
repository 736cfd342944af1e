//! The messages Gatehouse delivered, by Internet Message-ID, so that an
//! endpoint alert naming one of them leads to its verdict id and the message
//! can be recalled.
//!
//! The record is a JSON-lines file that is appended to on each delivery and
//! rewritten without expired or surplus entries when it is opened and when it
//! grows to twice its limit. Memory and disk both stay bounded by
//! [`DeliveredLimits`].

use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Limits of the delivered-message record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveredLimits {
    /// Messages remembered; the oldest is forgotten first.
    pub max_messages: usize,
    /// How long a delivered message is remembered, in days. An alert about a
    /// message older than this is not matched to its verdict.
    pub retention_days: u32,
}

impl Default for DeliveredLimits {
    fn default() -> Self {
        Self {
            max_messages: 200_000,
            retention_days: 30,
        }
    }
}

/// One delivered message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveredMessage {
    /// The Internet Message-ID without angle brackets.
    pub message_id: String,
    /// The id of the verdict under which it was delivered.
    pub verdict_id: String,
    pub recipients: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub delivered_at: OffsetDateTime,
}

/// The delivered messages, in memory and in their file.
#[derive(Debug)]
pub struct DeliveredMessages {
    path: PathBuf,
    file: File,
    limits: DeliveredLimits,
    by_id: HashMap<String, DeliveredMessage>,
    /// Message-IDs in delivery order, oldest first. An id delivered again
    /// appears twice; the older entry is skipped when it is evicted.
    order: VecDeque<(OffsetDateTime, String)>,
    lines_in_file: usize,
}

impl DeliveredMessages {
    /// Opens the record at `path`, creating it and its folder when missing,
    /// and drops the entries that are older than the retention at `now` or
    /// beyond the limit. A line that is not valid is skipped with a warning.
    ///
    /// # Errors
    ///
    /// Fails when the file cannot be read, rewritten or opened for appending.
    pub fn open(
        path: &Path,
        limits: DeliveredLimits,
        now: OffsetDateTime,
    ) -> std::io::Result<Self> {
        if let Some(parent) = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent)?;
        }
        let mut loaded = Vec::new();
        match File::open(path) {
            Ok(file) => {
                for (number, line) in BufReader::new(file).lines().enumerate() {
                    let line = line?;
                    match serde_json::from_str::<DeliveredMessage>(&line) {
                        Ok(message) => loaded.push(message),
                        Err(error) => tracing::warn!(
                            path = %path.display(),
                            line = number + 1,
                            error = %error,
                            "skipped a line of the delivered-message record that is not valid"
                        ),
                    }
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }

        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let mut record = Self {
            path: path.to_owned(),
            file,
            limits,
            by_id: HashMap::new(),
            order: VecDeque::new(),
            lines_in_file: 0,
        };
        for message in loaded {
            record.insert(message);
        }
        record.expire(now);
        record.rewrite()?;
        Ok(record)
    }

    /// Returns the number of messages remembered.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Returns whether no message is remembered.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Returns the delivered message with this Message-ID, with or without
    /// angle brackets.
    pub fn get(&self, message_id: &str) -> Option<&DeliveredMessage> {
        self.by_id.get(normalize_message_id(message_id)?.as_str())
    }

    /// Records a delivered message. A message without a Message-ID cannot be
    /// named by an alert and is not recorded.
    ///
    /// # Errors
    ///
    /// Fails when the line cannot be appended or the file not compacted.
    pub fn record(&mut self, mut message: DeliveredMessage) -> std::io::Result<()> {
        let Some(message_id) = normalize_message_id(&message.message_id) else {
            return Ok(());
        };
        message.message_id = message_id;
        let mut line = serde_json::to_string(&message).map_err(std::io::Error::other)?;
        line.push('\n');
        self.file.write_all(line.as_bytes())?;
        self.lines_in_file += 1;
        self.insert(message);
        if self.lines_in_file > self.limits.max_messages.saturating_mul(2).max(16) {
            self.rewrite()?;
        }
        Ok(())
    }

    /// Forgets the messages delivered longer ago than the retention.
    pub fn expire(&mut self, now: OffsetDateTime) {
        let cutoff = now - time::Duration::days(i64::from(self.limits.retention_days));
        while let Some((delivered_at, _)) = self.order.front() {
            if *delivered_at >= cutoff {
                break;
            }
            if let Some((delivered_at, id)) = self.order.pop_front() {
                self.forget(&id, delivered_at);
            }
        }
    }

    fn insert(&mut self, message: DeliveredMessage) {
        self.order
            .push_back((message.delivered_at, message.message_id.clone()));
        self.by_id.insert(message.message_id.clone(), message);
        // A Message-ID delivered again leaves its older entry in `order`;
        // the bound on `order` keeps such repeats from growing it.
        let max_order = self.limits.max_messages.max(1).saturating_mul(2);
        while self.by_id.len() > self.limits.max_messages.max(1) || self.order.len() > max_order {
            let Some((delivered_at, id)) = self.order.pop_front() else {
                break;
            };
            self.forget(&id, delivered_at);
        }
    }

    /// Removes `id` unless it was delivered again after `delivered_at`.
    fn forget(&mut self, id: &str, delivered_at: OffsetDateTime) {
        if self
            .by_id
            .get(id)
            .is_some_and(|message| message.delivered_at <= delivered_at)
        {
            self.by_id.remove(id);
        }
    }

    /// Replaces the file with the remembered messages: temporary file, fsync,
    /// rename.
    fn rewrite(&mut self) -> std::io::Result<()> {
        let mut messages: Vec<&DeliveredMessage> = self.by_id.values().collect();
        messages.sort_by(|a, b| {
            a.delivered_at
                .cmp(&b.delivered_at)
                .then_with(|| a.message_id.cmp(&b.message_id))
        });
        let mut text = String::new();
        for message in &messages {
            text.push_str(&serde_json::to_string(message).map_err(std::io::Error::other)?);
            text.push('\n');
        }
        let temporary = self.path.with_extension("tmp");
        let mut file = File::create(&temporary)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temporary, &self.path)?;
        self.file = OpenOptions::new().append(true).open(&self.path)?;
        self.lines_in_file = messages.len();
        Ok(())
    }
}

/// Removes angle brackets and whitespace; the rest is case-sensitive.
fn normalize_message_id(text: &str) -> Option<String> {
    let text = text
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    (!text.is_empty()).then(|| text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn message(id: &str, verdict: &str, at: OffsetDateTime) -> DeliveredMessage {
        DeliveredMessage {
            message_id: id.to_owned(),
            verdict_id: verdict.to_owned(),
            recipients: vec!["bob@example.com".to_owned()],
            delivered_at: at,
        }
    }

    #[test]
    fn record_survives_reopen() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("delivered.jsonl");
        let now = datetime!(2026-11-02 08:00 UTC);
        let mut record =
            DeliveredMessages::open(&path, DeliveredLimits::default(), now).expect("open");
        record
            .record(message("<a@x.example>", "v1", now))
            .expect("record");
        drop(record);

        let record =
            DeliveredMessages::open(&path, DeliveredLimits::default(), now).expect("reopen");
        let found = record.get("a@x.example").map(|m| m.verdict_id.as_str());
        assert_eq!(found, Some("v1"));
    }

    #[test]
    fn oldest_beyond_limit_is_forgotten() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let limits = DeliveredLimits {
            max_messages: 2,
            retention_days: 30,
        };
        let now = datetime!(2026-11-02 08:00 UTC);
        let mut record =
            DeliveredMessages::open(&dir.path().join("d.jsonl"), limits, now).expect("open");
        for (index, id) in ["a@x", "b@x", "c@x"].iter().enumerate() {
            let at = now + time::Duration::minutes(index as i64);
            record.record(message(id, id, at)).expect("record");
        }
        assert_eq!(record.len(), 2);
        assert!(record.get("a@x").is_none());
        assert!(record.get("c@x").is_some());
    }

    #[test]
    fn expired_messages_are_dropped_at_open() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("d.jsonl");
        let then = datetime!(2026-09-01 08:00 UTC);
        let mut record =
            DeliveredMessages::open(&path, DeliveredLimits::default(), then).expect("open");
        record.record(message("old@x", "v1", then)).expect("record");
        drop(record);

        let later = datetime!(2026-11-02 08:00 UTC);
        let record =
            DeliveredMessages::open(&path, DeliveredLimits::default(), later).expect("reopen");
        assert!(record.is_empty());
    }

    #[test]
    fn redelivered_id_keeps_newest_verdict() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let limits = DeliveredLimits {
            max_messages: 2,
            retention_days: 30,
        };
        let now = datetime!(2026-11-02 08:00 UTC);
        let mut record =
            DeliveredMessages::open(&dir.path().join("d.jsonl"), limits, now).expect("open");
        record.record(message("a@x", "v1", now)).expect("record");
        let later = now + time::Duration::minutes(1);
        record.record(message("a@x", "v2", later)).expect("record");
        record
            .record(message("b@x", "v3", later + time::Duration::minutes(1)))
            .expect("record");
        let found = record.get("a@x").map(|m| m.verdict_id.as_str());
        assert_eq!(found, Some("v2"));
    }

    #[test]
    fn message_without_id_is_not_recorded() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let now = datetime!(2026-11-02 08:00 UTC);
        let mut record =
            DeliveredMessages::open(&dir.path().join("d.jsonl"), DeliveredLimits::default(), now)
                .expect("open");
        record.record(message("<>", "v1", now)).expect("record");
        assert!(record.is_empty());
    }
}
