//! The figures of one run, printed as `name: value` lines and appended as
//! one JSON object to the file `RELIABILITY_REPORT` names.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use crate::gateway::{self, QuarantineCheck};

/// Maximum Message-IDs listed for each kind of discrepancy.
const LISTED: usize = 20;

pub struct Report {
    name: String,
    fields: Vec<(String, Value)>,
    /// Acknowledged messages that are neither upstream nor held.
    pub lost: usize,
    /// Quarantine entries that are not whole, and what is wrong with each.
    pub half_written: Vec<String>,
    /// Problems the run found besides losses and half-written entries.
    pub failures: Vec<String>,
}

/// Percentiles of a latency sample, in milliseconds.
pub struct Latencies {
    pub count: usize,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Latencies {
    pub fn of(sample: &[Duration]) -> Latencies {
        let mut sorted: Vec<Duration> = sample.to_vec();
        sorted.sort();
        let at = |quantile: f64| -> f64 {
            if sorted.is_empty() {
                return 0.0;
            }
            // Nearest rank: the smallest value with at least `quantile` of the sample at or below it.
            let rank = (quantile * sorted.len() as f64).ceil() as usize;
            sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1000.0
        };
        Latencies {
            count: sorted.len(),
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
            max: at(1.0),
        }
    }
}

impl Report {
    pub fn new(name: &str, seed: u64) -> Report {
        let mut report = Report {
            name: name.to_owned(),
            fields: Vec::new(),
            lost: 0,
            half_written: Vec::new(),
            failures: Vec::new(),
        };
        report.value("seed", seed);
        report.value(
            "cores",
            std::thread::available_parallelism().map_or(0, usize::from),
        );
        report
    }

    pub fn param(&mut self, name: &str, value: impl serde::Serialize) {
        self.value(&format!("param_{name}"), value);
    }

    pub fn value(&mut self, name: &str, value: impl serde::Serialize) {
        let value = serde_json::to_value(value).unwrap_or(Value::Null);
        self.fields.push((name.to_owned(), value));
    }

    pub fn latencies(&mut self, name: &str, latencies: &Latencies) {
        self.value(
            name,
            json!({
                "count": latencies.count,
                "p50_ms": round(latencies.p50),
                "p95_ms": round(latencies.p95),
                "p99_ms": round(latencies.p99),
                "max_ms": round(latencies.max),
            }),
        );
    }

    /// Returns a whole-number field, or `u64::MAX` when it is missing or not one.
    pub fn count(&self, name: &str) -> u64 {
        self.fields
            .iter()
            .find(|(field, _)| field == name)
            .and_then(|(_, value)| value.as_u64())
            .unwrap_or(u64::MAX)
    }

    /// Records a problem once, however often a check finds it again.
    pub fn fail(&mut self, failure: String) {
        if !self.failures.contains(&failure) {
            self.failures.push(failure);
        }
    }

    /// Looks up every acknowledged message upstream and in the quarantine.
    pub fn reconcile(
        &mut self,
        acked: &HashSet<String>,
        upstream: &HashMap<String, u32>,
        quarantine: &QuarantineCheck,
    ) {
        let held = &quarantine.message_ids;
        let lost: Vec<&String> = acked
            .iter()
            .filter(|id| !upstream.contains_key(*id) && !held.contains(*id))
            .collect();
        let both = acked
            .iter()
            .filter(|id| upstream.contains_key(*id) && held.contains(*id))
            .count();
        let upstream_copies: u64 = upstream.values().map(|&copies| u64::from(copies)).sum();
        let upstream_duplicates = upstream.values().filter(|&&copies| copies > 1).count();
        let unacked_upstream = upstream.keys().filter(|id| !acked.contains(*id)).count();
        let unacked_held = held.iter().filter(|id| !acked.contains(*id)).count();

        self.value("delivered_upstream_unique", upstream.len());
        self.value("delivered_upstream_copies", upstream_copies);
        self.value("delivered_upstream_more_than_once", upstream_duplicates);
        self.value("held_in_quarantine", quarantine.entries);
        self.value("acknowledged_upstream_and_held", both);
        self.value("upstream_without_250", unacked_upstream);
        self.value("held_without_250", unacked_held);
        self.value("lost", lost.len());
        self.value(
            "lost_examples",
            lost.iter().take(LISTED).collect::<Vec<_>>(),
        );
        self.value("half_written_entries", quarantine.half_written.len());
        self.value(
            "half_written_examples",
            quarantine
                .half_written
                .iter()
                .take(LISTED)
                .collect::<Vec<_>>(),
        );
        self.value(
            "orphaned_messages_without_verdict",
            quarantine.orphaned_messages.len(),
        );
        self.value("temporary_files_left", quarantine.temporary_files.len());
        self.lost = lost.len();
        self.half_written = quarantine.half_written.clone();
    }

    /// Prints the report to stderr and appends it to `RELIABILITY_REPORT`.
    pub fn publish(&mut self) {
        self.value("failures", self.failures.clone());
        // The test harness may have printed "test NAME ... " without a line end.
        let mut text = format!("\n== reliability: {} ==\n", self.name);
        for (name, value) in &self.fields {
            text.push_str(&format!("{name}: {value}\n"));
        }
        eprint!("{text}");
        if let Some(path) = std::env::var_os("RELIABILITY_REPORT").map(PathBuf::from) {
            let object: serde_json::Map<String, Value> =
                std::iter::once(("run".to_owned(), Value::String(self.name.clone())))
                    .chain(self.fields.iter().cloned())
                    .collect();
            gateway::append(&path, &format!("{}\n", Value::Object(object)));
        }
    }
}

fn round(milliseconds: f64) -> f64 {
    (milliseconds * 10.0).round() / 10.0
}
