//! Load and soak: many concurrent SMTP sessions send the scenario mix
//! through `gatehouse serve` while slow-loris clients try to hold every
//! connection slot, then every message that got 250 is looked up upstream
//! and in the quarantine.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::client::{self, Client, LorisKind, LorisOutcome, Sent, Unavailable};
use crate::gateway::{self, Gateway, SmtpSettings};
use crate::mix::{self, Template};
use crate::report::{Latencies, Report};
use crate::sink::Sink;
use crate::{Param, SplitMix64};

/// Attempts per message before the driver gives it up; 4xx replies and
/// broken connections count, refused connections do not.
const MAX_ATTEMPTS: u32 = 20;

#[derive(Debug, Clone)]
pub struct LoadParams {
    pub binary: PathBuf,
    pub messages: usize,
    /// Concurrent client sessions, each sending messages one after another.
    pub sessions: usize,
    /// Messages sent on one connection before QUIT and a new connection.
    pub per_session: usize,
    /// Slow-loris connections, opened before the sessions start.
    pub loris: usize,
    /// Time between two bytes of a trickling slow-loris client.
    pub loris_interval: Duration,
    pub smtp: SmtpSettings,
    /// The driver stops sending after this time, whatever is left.
    pub max_duration: Duration,
    pub seed: u64,
}

impl LoadParams {
    /// Reads the parameters from `RELIABILITY_*` variables, with `defaults` for those unset.
    pub fn from_env(defaults: LoadParams) -> LoadParams {
        LoadParams {
            binary: defaults.binary,
            messages: Param::usize("RELIABILITY_MESSAGES", defaults.messages),
            sessions: Param::usize("RELIABILITY_SESSIONS", defaults.sessions),
            per_session: Param::usize("RELIABILITY_PER_SESSION", defaults.per_session),
            loris: Param::usize("RELIABILITY_LORIS", defaults.loris),
            loris_interval: Duration::from_millis(Param::u64(
                "RELIABILITY_LORIS_INTERVAL_MS",
                defaults.loris_interval.as_millis() as u64,
            )),
            smtp: SmtpSettings {
                max_connections: Param::usize(
                    "RELIABILITY_MAX_CONNECTIONS",
                    defaults.smtp.max_connections,
                ),
                command_timeout_secs: Param::u64(
                    "RELIABILITY_COMMAND_TIMEOUT_SECS",
                    defaults.smtp.command_timeout_secs,
                ),
                session_timeout_secs: Param::u64(
                    "RELIABILITY_SESSION_TIMEOUT_SECS",
                    defaults.smtp.session_timeout_secs,
                ),
            },
            max_duration: Duration::from_secs(Param::u64(
                "RELIABILITY_MAX_SECS",
                defaults.max_duration.as_secs(),
            )),
            seed: Param::u64("RELIABILITY_SEED", defaults.seed),
        }
    }
}

/// Counts kept by the client sessions.
#[derive(Default)]
struct Ledger {
    next: AtomicUsize,
    acked: Mutex<HashSet<String>>,
    latencies: Mutex<Vec<Duration>>,
    transactions: AtomicU64,
    deferred: AtomicU64,
    rejected: AtomicU64,
    broken: AtomicU64,
    abandoned: AtomicU64,
    connections: AtomicU64,
    refused_connections: AtomicU64,
    failed_connections: AtomicU64,
    /// Count of each refusing reply, by its text.
    replies: Mutex<BTreeMap<String, u64>>,
    /// Milliseconds from the start until the first 250, plus one; 0 until then.
    first_accept_ms: AtomicU64,
}

/// Picks the scenario message that message number `n` sends a copy of.
pub fn pick(templates: &[Template], seed: u64, n: usize) -> &Template {
    let index = SplitMix64::new(seed ^ (n as u64).wrapping_mul(0x9e37_79b9)).below(templates.len());
    &templates[index]
}

/// Runs the load and returns its report; the caller asserts on it.
pub async fn run(params: LoadParams, templates: Arc<Vec<Template>>) -> Report {
    let (_temporary, folder) = gateway::work_folder("load");
    let sink = Sink::start().await;
    let mut gateway = Gateway::new(&params.binary, &folder, sink.address, &params.smtp);
    let mut report = Report::new("load", params.seed);
    report.param("messages", params.messages);
    report.param("sessions", params.sessions);
    report.param("messages_per_connection", params.per_session);
    report.param("slow_loris_clients", params.loris);
    report.param(
        "slow_loris_byte_interval_ms",
        params.loris_interval.as_millis(),
    );
    report.param("max_connections", params.smtp.max_connections);
    report.param("command_timeout_secs", params.smtp.command_timeout_secs);
    report.param("session_timeout_secs", params.smtp.session_timeout_secs);
    report.param("open_file_limit", gateway::open_file_limit().unwrap_or(0));

    learn_history(&gateway, &mut report);
    gateway.start();
    let stop_monitor = Arc::new(AtomicBool::new(false));
    let (peaks, monitor) = gateway::monitor(
        gateway.pid(),
        Duration::from_millis(250),
        Arc::clone(&stop_monitor),
    );
    report.value("load_average_at_start", gateway::load_average());

    // The slow-loris clients go first, so that they take the slots.
    let started = Instant::now();
    let deadline = started + params.max_duration;
    let loris_give_up = (started
        + Duration::from_secs(
            params.smtp.session_timeout_secs + params.smtp.command_timeout_secs + 15,
        ))
    .min(deadline);
    let answered = Arc::new(AtomicUsize::new(0));
    let mut loris = Vec::with_capacity(params.loris);
    for index in 0..params.loris {
        let kind = if index % 2 == 0 {
            LorisKind::Idle
        } else {
            LorisKind::Trickle
        };
        loris.push(tokio::spawn(client::slow_loris(
            gateway.address,
            kind,
            params.loris_interval,
            loris_give_up,
            Arc::clone(&answered),
        )));
    }
    // The sessions start once every slow-loris client has its greeting, or after 10 s.
    let greeted_by = Instant::now() + Duration::from_secs(10);
    while answered.load(Ordering::SeqCst) < params.loris && Instant::now() < greeted_by {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let ledger = Arc::new(Ledger::default());
    let mut sessions = Vec::with_capacity(params.sessions);
    for _ in 0..params.sessions {
        let job = Session {
            address: gateway.address,
            templates: Arc::clone(&templates),
            ledger: Arc::clone(&ledger),
            params: params.clone(),
            started,
            deadline,
        };
        sessions.push(tokio::spawn(job.run()));
    }
    for session in sessions {
        let _ = session.await;
    }
    let sending = started.elapsed();
    let mut loris_outcomes = Vec::with_capacity(loris.len());
    for task in loris {
        if let Ok(outcome) = task.await {
            loris_outcomes.push(outcome);
        }
    }
    report.value("load_average_at_end", gateway::load_average());

    // The last sample, then a clean stop.
    gateway::sample(gateway.pid().load(Ordering::SeqCst), &peaks);
    stop_monitor.store(true, Ordering::SeqCst);
    let _ = monitor.join();
    report.value("stopped_cleanly", gateway.stop());

    record_sessions(&mut report, &ledger, &params, sending);
    record_loris(&mut report, &loris_outcomes);
    record_peaks(&mut report, &peaks);
    report.value(
        "timed_out_sessions_logged",
        gateway.log_lines("session timed out").len(),
    );
    report.value("sink_peak_connections", sink.peak_connections());

    let acked = ledger.acked.lock().expect("acked").clone();
    report.reconcile(&acked, &sink.received(), &gateway.quarantine());
    report
}

/// Teaches the graph the scenario's history, as a deployment would before going live.
pub fn learn_history(gateway: &Gateway, report: &mut Report) {
    let history = crate::scenario().join("history");
    let started = Instant::now();
    let output = gateway.run(&["learn", &history.display().to_string()]);
    assert!(
        output.status.success(),
        "gatehouse learn failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    report.value("history_learn_secs", started.elapsed().as_secs_f64());
}

fn record_sessions(report: &mut Report, ledger: &Ledger, params: &LoadParams, sending: Duration) {
    let acked = ledger.acked.lock().expect("acked").len();
    report.value("sending_secs", sending.as_secs_f64());
    report.value("transactions", ledger.transactions.load(Ordering::SeqCst));
    report.value("acknowledged_250", acked);
    report.value(
        "acknowledged_per_sec",
        acked as f64 / sending.as_secs_f64().max(0.001),
    );

    report.value("deferred_4xx", ledger.deferred.load(Ordering::SeqCst));
    report.value("rejected_5xx", ledger.rejected.load(Ordering::SeqCst));
    report.value("broken_transactions", ledger.broken.load(Ordering::SeqCst));
    report.value(
        "abandoned_messages",
        ledger.abandoned.load(Ordering::SeqCst),
    );
    report.value(
        "unsent_messages",
        params
            .messages
            .saturating_sub(ledger.next.load(Ordering::SeqCst).min(params.messages)),
    );

    report.value("connections", ledger.connections.load(Ordering::SeqCst));
    report.value(
        "connections_refused_4xx_greeting",
        ledger.refused_connections.load(Ordering::SeqCst),
    );
    report.value(
        "connections_failed",
        ledger.failed_connections.load(Ordering::SeqCst),
    );
    report.value(
        "refusing_replies",
        &*ledger.replies.lock().expect("replies"),
    );

    let first = ledger.first_accept_ms.load(Ordering::SeqCst);
    report.value(
        "first_250_after_ms",
        if first == 0 { None } else { Some(first - 1) },
    );
    let latencies = Latencies::of(&ledger.latencies.lock().expect("latencies"));
    report.latencies("latency_mail_to_final_reply", &latencies);
}

fn record_loris(report: &mut Report, outcomes: &[LorisOutcome]) {
    for kind in [LorisKind::Idle, LorisKind::Trickle] {
        let name = match kind {
            LorisKind::Idle => "slow_loris_idle",
            LorisKind::Trickle => "slow_loris_trickle",
        };
        let mine: Vec<&LorisOutcome> = outcomes.iter().filter(|o| o.kind == kind).collect();
        let slotted: Vec<&&LorisOutcome> = mine.iter().filter(|o| o.got_slot).collect();
        let held: Vec<Duration> = slotted.iter().map(|o| o.held).collect();
        report.value(&format!("{name}_clients"), mine.len());
        report.value(&format!("{name}_got_slot"), slotted.len());
        report.value(
            &format!("{name}_closed_by_proxy"),
            slotted.iter().filter(|o| o.closed_by_proxy).count(),
        );
        report.value(
            &format!("{name}_still_open_at_give_up"),
            slotted.iter().filter(|o| !o.closed_by_proxy).count(),
        );
        let longest = held.iter().max().copied().unwrap_or_default();
        report.value(&format!("{name}_longest_hold_secs"), longest.as_secs_f64());
        let last = slotted.iter().find_map(|o| o.last_reply.clone());
        report.value(&format!("{name}_last_reply_example"), last);
    }
}

pub fn record_peaks(report: &mut Report, peaks: &gateway::Peaks) {
    report.value(
        "gatehouse_peak_rss_mib",
        peaks.peak_rss_kib.load(Ordering::SeqCst) as f64 / 1024.0,
    );
    report.value(
        "gatehouse_peak_open_fds",
        peaks.peak_fds.load(Ordering::SeqCst),
    );
    report.value(
        "peak_load_average_1min",
        peaks.peak_load_centi.load(Ordering::SeqCst) as f64 / 100.0,
    );
    report.value("monitor_samples", peaks.samples.load(Ordering::SeqCst));
}

/// One client session loop: it takes the next message number, sends it,
/// and retries deferred messages on a new connection.
struct Session {
    address: SocketAddr,
    templates: Arc<Vec<Template>>,
    ledger: Arc<Ledger>,
    params: LoadParams,
    started: Instant,
    deadline: Instant,
}

impl Session {
    async fn run(self) {
        let ledger = &self.ledger;
        let mut retry: Option<(usize, u32)> = None;
        let mut backoff = Duration::from_millis(100);
        while Instant::now() < self.deadline {
            let Some(first) = retry.take().or_else(|| self.next_message()) else {
                return;
            };
            let mut client = match Client::open(self.address).await {
                Ok(client) => client,
                Err(unavailable) => {
                    match unavailable {
                        Unavailable::Refused(reply) => {
                            ledger.refused_connections.fetch_add(1, Ordering::SeqCst);
                            count_reply(&ledger.replies, &reply);
                        }
                        Unavailable::Failed => {
                            ledger.failed_connections.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    retry = Some(first);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    continue;
                }
            };
            ledger.connections.fetch_add(1, Ordering::SeqCst);
            backoff = Duration::from_millis(100);

            let mut current = Some(first);
            let mut sent_here = 0;
            let mut usable = true;
            while let Some((n, attempts)) = current.take() {
                match self.send(&mut client, n).await {
                    Sent::Accepted { latency } => self.accepted(n, latency),
                    Sent::Rejected(reply) => {
                        ledger.rejected.fetch_add(1, Ordering::SeqCst);
                        count_reply(&ledger.replies, &reply);
                        usable = client.reset().await;
                    }
                    Sent::Deferred(reply) => {
                        ledger.deferred.fetch_add(1, Ordering::SeqCst);
                        count_reply(&ledger.replies, &reply);
                        retry = self.again(n, attempts);
                        usable = client.reset().await;
                        break;
                    }
                    Sent::Broken => {
                        ledger.broken.fetch_add(1, Ordering::SeqCst);
                        retry = self.again(n, attempts);
                        usable = false;
                        break;
                    }
                }
                sent_here += 1;
                if !usable
                    || sent_here >= self.params.per_session
                    || Instant::now() >= self.deadline
                {
                    break;
                }
                current = self.next_message();
            }
            if usable {
                client.quit().await;
            }
        }
    }

    fn next_message(&self) -> Option<(usize, u32)> {
        let n = self.ledger.next.fetch_add(1, Ordering::SeqCst);
        (n < self.params.messages).then_some((n, 0))
    }

    /// Returns the message to retry, or `None` after the last attempt.
    fn again(&self, n: usize, attempts: u32) -> Option<(usize, u32)> {
        if attempts + 1 >= MAX_ATTEMPTS {
            self.ledger.abandoned.fetch_add(1, Ordering::SeqCst);
            None
        } else {
            Some((n, attempts + 1))
        }
    }

    async fn send(&self, client: &mut Client, n: usize) -> Sent {
        let template = pick(&self.templates, self.params.seed, n);
        let message = template.with_message_id(&message_id("load", self.params.seed, n));
        self.ledger.transactions.fetch_add(1, Ordering::SeqCst);
        client
            .send(
                &template.mail_from,
                &template.rcpt_to,
                &mix::dot_stuffed(&message),
            )
            .await
    }

    fn accepted(&self, n: usize, latency: Duration) {
        let ledger = &self.ledger;
        ledger
            .acked
            .lock()
            .expect("acked")
            .insert(message_id("load", self.params.seed, n));
        ledger.latencies.lock().expect("latencies").push(latency);
        let since_start = self.started.elapsed().as_millis() as u64 + 1;
        let _ = ledger.first_accept_ms.compare_exchange(
            0,
            since_start,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
    }
}

/// Counts a refusing reply under its text, cut to 60 characters.
pub fn count_reply(replies: &Mutex<BTreeMap<String, u64>>, reply: &client::Reply) {
    let text: String = reply.text.chars().take(60).collect();
    *replies.lock().expect("replies").entry(text).or_insert(0) += 1;
}

/// Builds the Message-ID of message number `n` of a run.
pub fn message_id(run: &str, seed: u64, n: usize) -> String {
    format!("<{run}.{seed}.{n}@reliability.test>")
}
