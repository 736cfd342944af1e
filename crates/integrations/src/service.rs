//! The integrations of a running gateway: the Defender poll task that keeps
//! the [`AlertIndex`] current, and the [`VerdictObserver`] that exports every
//! verdict to the SIEM and remembers the messages Gatehouse delivered.
//!
//! When an alert names a delivered message by its Internet Message-ID, the
//! pair goes to a [`RecallLog`] once, whichever came first: the alert (found
//! by the poll) or the delivery (found by the observer).
//!
//! The poll cursor and the index, with its baseline, are stored in one JSON
//! file after each poll that changed them (temporary file, fsync, rename), so
//! a restart neither reads old alerts again nor drops active ones.

use std::collections::{HashSet, VecDeque};
use std::fs::File;
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use gatehouse_engine::{Outcome, Verdict, VerdictObserver};
use serde::{Deserialize, Serialize};

use crate::baseline::NoveltyWeights;
use crate::clock::Clock;
use crate::correlate::{AlertIndex, IndexSnapshot, IngestSummary};
use crate::defender::{Alert, AlertPoller, DefenderConfig, DefenderError, GraphClient, PollCursor};
use crate::delivered::{DeliveredMessage, DeliveredMessages};
use crate::siem::SiemExporter;

/// Alert and message pairs remembered as reported, so that each is reported
/// once; the oldest is forgotten first.
const MAX_REPORTED_PAIRS: usize = 100_000;

/// A log of alerts that name delivered messages, such as the quarantine
/// audit log.
pub trait RecallLog: Send + Sync {
    /// Records that `alert` names `message`, which was delivered.
    ///
    /// # Errors
    ///
    /// Returns why the record could not be written; the pair is then tried
    /// again at the next poll.
    fn record(&self, alert: &Alert, message: &DeliveredMessage) -> Result<(), String>;
}

/// The delivered messages and the log where alerts naming them are reported.
pub struct Recall {
    pub delivered: Arc<Mutex<DeliveredMessages>>,
    pub log: Arc<dyn RecallLog>,
}

/// The file contents stored between runs.
#[derive(Debug, Default, Serialize, Deserialize)]
struct StoredState {
    cursor: PollCursor,
    index: IndexSnapshot,
    /// `alert id` and `Message-ID` pairs already reported, oldest first.
    #[serde(default)]
    reported: VecDeque<(String, String)>,
}

/// Alert and message pairs already reported, bounded.
#[derive(Debug, Default)]
struct Reported {
    order: VecDeque<(String, String)>,
    set: HashSet<(String, String)>,
}

impl Reported {
    fn from_order(order: VecDeque<(String, String)>) -> Self {
        let set = order.iter().cloned().collect();
        Self { order, set }
    }

    fn contains(&self, pair: &(String, String)) -> bool {
        self.set.contains(pair)
    }

    fn insert(&mut self, pair: (String, String)) {
        if self.set.insert(pair.clone()) {
            self.order.push_back(pair);
        }
        while self.order.len() > MAX_REPORTED_PAIRS {
            if let Some(oldest) = self.order.pop_front() {
                self.set.remove(&oldest);
            }
        }
    }
}

/// State shared by the poll task and the observer.
struct Shared {
    index: Arc<RwLock<AlertIndex>>,
    delivered: Option<Arc<Mutex<DeliveredMessages>>>,
    recall: Option<Arc<dyn RecallLog>>,
    reported: Mutex<Reported>,
}

impl Shared {
    /// Reports each delivered message that `alert` names, once per pair.
    fn report_alert(&self, alert: &Alert) {
        let (Some(delivered), Some(recall)) = (&self.delivered, &self.recall) else {
            return;
        };
        let messages: Vec<DeliveredMessage> = {
            let delivered = delivered.lock().unwrap_or_else(PoisonError::into_inner);
            alert
                .internet_message_ids()
                .filter_map(|id| delivered.get(id).cloned())
                .collect()
        };
        for message in messages {
            self.report(recall.as_ref(), alert, &message);
        }
    }

    fn report(&self, recall: &dyn RecallLog, alert: &Alert, message: &DeliveredMessage) {
        let pair = (alert.id.clone(), message.message_id.clone());
        if self
            .reported
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&pair)
        {
            return;
        }
        match recall.record(alert, message) {
            Ok(()) => {
                tracing::warn!(
                    alert_id = %alert.id,
                    message_id = %message.message_id,
                    verdict_id = %message.verdict_id,
                    recipients = %message.recipients.join(","),
                    "an endpoint alert names a message that was delivered; recall it"
                );
                self.reported
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(pair);
            }
            Err(error) => tracing::error!(
                alert_id = %alert.id,
                verdict_id = %message.verdict_id,
                error = %error,
                "failed to record that an endpoint alert names a delivered message"
            ),
        }
    }
}

/// The poll task: reads new alert versions, indexes them, reports delivered
/// messages they name and stores its state.
pub struct DefenderService {
    poller: AlertPoller,
    shared: Arc<Shared>,
    state_path: PathBuf,
    interval: Duration,
    max_alert_age: time::Duration,
    clock: Arc<dyn Clock>,
}

/// The counts of one poll, for the log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollSummary {
    pub requests: u64,
    pub ingest: IngestSummary,
    pub expired: usize,
    pub active: usize,
}

impl DefenderService {
    /// Creates the client and reads the stored state from `state_dir`. When
    /// `recall` is given, each delivered message that an alert names is
    /// recorded in its log. A
    /// state file that cannot be read is renamed aside with a warning, and
    /// polling starts over from `initial_lookback_hours`.
    ///
    /// # Errors
    ///
    /// Fails when the configuration is invalid, the secret cannot be loaded,
    /// or the state folder cannot be created.
    pub fn open(
        config: &DefenderConfig,
        weights: NoveltyWeights,
        state_dir: &Path,
        recall: Option<Recall>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, DefenderError> {
        let client = GraphClient::new(config, Arc::clone(&clock))?;
        std::fs::create_dir_all(state_dir).map_err(|error| {
            DefenderError::Config(format!(
                "failed to create the Defender state folder {}: {error}",
                state_dir.display()
            ))
        })?;
        let state_path = state_dir.join("state.json");
        let state = read_state(&state_path);
        let index = AlertIndex::from_snapshot(
            state.index,
            weights,
            config.baseline.clone(),
            config.index.clone(),
        );
        tracing::info!(
            active_alerts = index.len(),
            subjects = index.baseline().subject_count(),
            watermark = ?state.cursor.watermark,
            "read the stored Defender state"
        );
        let (delivered, recall) = match recall {
            Some(Recall { delivered, log }) => (Some(delivered), Some(log)),
            None => (None, None),
        };
        let shared = Arc::new(Shared {
            index: Arc::new(RwLock::new(index)),
            delivered,
            recall,
            reported: Mutex::new(Reported::from_order(state.reported)),
        });
        Ok(Self {
            poller: AlertPoller::new(client, config, state.cursor),
            shared,
            state_path,
            interval: config.poll_interval(),
            max_alert_age: time::Duration::days(i64::from(config.max_alert_age_days)),
            clock,
        })
    }

    /// Returns the index that the engine's enrichment reads.
    pub fn index(&self) -> Arc<RwLock<AlertIndex>> {
        Arc::clone(&self.shared.index)
    }

    /// Polls once: reads new alert versions, indexes them, expires alerts not
    /// updated for `max_alert_age_days`, reports delivered messages they name
    /// and stores the state.
    ///
    /// # Errors
    ///
    /// Returns the failed request; the cursor and index are then unchanged.
    pub async fn poll_once(&mut self) -> Result<PollSummary, DefenderError> {
        let report = self.poller.poll().await?;
        let cutoff = self.clock.now() - self.max_alert_age;
        let (ingest, expired, active) = {
            let mut index = self
                .shared
                .index
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            let ingest = index.ingest(report.alerts.iter().cloned());
            let expired = index.expire_before(cutoff);
            (ingest, expired.len(), index.len())
        };
        for alert in report
            .alerts
            .iter()
            .filter(|alert| alert.status.is_active())
        {
            self.shared.report_alert(alert);
        }
        if let Err(error) = self.store_state() {
            tracing::error!(path = %self.state_path.display(), error = %error, "failed to store the Defender state; a restart reads these alerts again");
        }
        Ok(PollSummary {
            requests: report.requests,
            ingest,
            expired,
            active,
        })
    }

    /// Polls every `poll_interval_secs` until `shutdown` completes. A failed
    /// poll is logged and tried again at the next interval.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        tracing::info!(
            interval_secs = self.interval.as_secs(),
            "Defender alert polling started"
        );
        loop {
            let polled = tokio::select! {
                () = &mut shutdown => break,
                polled = self.poll_once() => polled,
            };
            match polled {
                Ok(summary) => tracing::info!(
                    requests = summary.requests,
                    added = summary.ingest.added.len(),
                    updated = summary.ingest.updated.len(),
                    resolved = summary.ingest.removed.len(),
                    expired = summary.expired,
                    active = summary.active,
                    "polled Defender alerts"
                ),
                Err(error) => tracing::error!(
                    error = %error,
                    transient = error.is_transient(),
                    retry_in_secs = self.interval.as_secs(),
                    "Defender alert poll failed"
                ),
            }
            tokio::select! {
                () = &mut shutdown => break,
                () = self.clock.sleep(self.interval) => {}
            }
        }
        tracing::info!("Defender alert polling stopped");
    }

    /// Returns what the observer needs to report deliveries that active
    /// alerts already name.
    pub fn delivery_reporter(&self) -> DeliveryReporter {
        DeliveryReporter {
            shared: Arc::clone(&self.shared),
        }
    }

    fn store_state(&self) -> std::io::Result<()> {
        let state = StoredState {
            cursor: self.poller.cursor().clone(),
            index: self
                .shared
                .index
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .snapshot(),
            reported: self
                .shared
                .reported
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .order
                .clone(),
        };
        let bytes = serde_json::to_vec(&state).map_err(std::io::Error::other)?;
        write_atomically(&self.state_path, &bytes)
    }
}

/// Reports a delivered message that active alerts already name.
#[derive(Clone)]
pub struct DeliveryReporter {
    shared: Arc<Shared>,
}

impl DeliveryReporter {
    fn report_delivery(&self, message: &DeliveredMessage) {
        let Some(recall) = &self.shared.recall else {
            return;
        };
        let alerts: Vec<Alert> = self
            .shared
            .index
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .alerts_naming_message(&message.message_id)
            .into_iter()
            .cloned()
            .collect();
        for alert in &alerts {
            self.shared.report(recall.as_ref(), alert, message);
        }
    }
}

/// Reads the stored state, or starts empty.
fn read_state(path: &Path) -> StoredState {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return StoredState::default();
        }
        Err(error) => {
            tracing::error!(path = %path.display(), error = %error, "failed to read the Defender state; starting without it");
            return StoredState::default();
        }
    };
    match serde_json::from_slice(&bytes) {
        Ok(state) => state,
        Err(error) => {
            let aside = path.with_extension("json.invalid");
            let _ = std::fs::rename(path, &aside);
            tracing::error!(path = %path.display(), moved_to = %aside.display(), error = %error, "the Defender state is not valid; moved it aside and starting without it");
            StoredState::default()
        }
    }
}

/// Replaces `path` with `bytes`: temporary file, fsync, rename, fsync of the
/// folder.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temporary = path.with_extension("tmp");
    let mut file = File::create(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)?;
    if let Some(parent) = path.parent() {
        File::open(parent)?.sync_all()?;
    }
    Ok(())
}

/// The gateway's [`VerdictObserver`]: exports every verdict to the SIEM and
/// remembers delivered and released messages.
#[derive(Default)]
pub struct GatehouseObserver {
    siem: Option<SiemExporter>,
    delivered: Option<Arc<Mutex<DeliveredMessages>>>,
    reporter: Option<DeliveryReporter>,
}

impl GatehouseObserver {
    /// Creates an observer that does nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Exports every verdict through `siem`.
    pub fn with_siem(mut self, siem: SiemExporter) -> Self {
        self.siem = Some(siem);
        self
    }

    /// Records delivered and released messages in `delivered`, and reports
    /// those that active alerts name through `reporter`.
    pub fn with_delivered(
        mut self,
        delivered: Arc<Mutex<DeliveredMessages>>,
        reporter: Option<DeliveryReporter>,
    ) -> Self {
        self.delivered = Some(delivered);
        self.reporter = reporter;
        self
    }
}

impl VerdictObserver for GatehouseObserver {
    // NOTE: the gateway analyses a released message again to learn it, so a
    // release exports a second verdict with a new id for the same Message-ID.
    fn analysed(&self, verdict: &Verdict) {
        if let Some(siem) = &self.siem
            && let Err(error) = siem.export(verdict)
        {
            // The exporter logged the failed part, and the verdict is unchanged.
            tracing::debug!(verdict_id = %verdict.id, error = %error, "SIEM export failed");
        }
    }

    fn learned(&self, verdict: &Verdict, outcome: Outcome) {
        if !matches!(outcome, Outcome::Delivered | Outcome::Released) {
            return;
        }
        let Some(delivered) = &self.delivered else {
            return;
        };
        let Some(message_id) = verdict.message.message_id.clone() else {
            return;
        };
        // A released message is recorded under the verdict of its new
        // analysis; its quarantine id is the verdict id it was held under.
        let message = DeliveredMessage {
            message_id,
            verdict_id: verdict.id.clone(),
            recipients: verdict.envelope.rcpt_to.clone(),
            delivered_at: time::OffsetDateTime::now_utc(),
        };
        let recorded = delivered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record(message.clone());
        if let Err(error) = recorded {
            tracing::error!(verdict_id = %verdict.id, error = %error, "failed to record a delivered message; an alert naming it will not find its verdict");
        }
        if let Some(reporter) = &self.reporter {
            reporter.report_delivery(&message);
        }
    }
}
