//! Crash consistency: client sessions send the scenario mix while the
//! driver kills `gatehouse serve` with SIGKILL at random moments and starts
//! it again. Clients retry what was not acknowledged, as an MTA would.
//!
//! While the process is down the driver checks that no quarantine entry is
//! half-written, that no graph count dropped below what an earlier check
//! saw, and that the graph still has a sender it learned before its last
//! durable commit (a witness). At the end every message that got 250 must
//! be upstream or held.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::client::{Client, Sent};
use crate::gateway::{self, Gateway, SmtpSettings};
use crate::load::{self, message_id};
use crate::mix::{self, Template};
use crate::report::{Latencies, Report};
use crate::sink::Sink;
use crate::{Param, SplitMix64};

/// Time the driver waits after a witness's 250 before the message that
/// makes it durable. The graph store commits durably once per second by
/// default, so the first commit after this wait is durable.
const DURABLE_WAIT: Duration = Duration::from_millis(1200);

/// Kill cycles per witness: the others kill after a random gap alone.
const WITNESS_EVERY: usize = 3;

#[derive(Debug, Clone)]
pub struct CrashParams {
    pub binary: PathBuf,
    pub messages: usize,
    pub sessions: usize,
    pub per_session: usize,
    /// Maximum time between a witness turning durable and the next kill.
    pub max_gap: Duration,
    /// Maximum time the process stays down after a kill.
    pub max_downtime: Duration,
    pub max_duration: Duration,
    pub seed: u64,
}

impl CrashParams {
    pub fn from_env(defaults: CrashParams) -> CrashParams {
        CrashParams {
            binary: defaults.binary,
            messages: Param::usize("RELIABILITY_CRASH_MESSAGES", defaults.messages),
            sessions: Param::usize("RELIABILITY_CRASH_SESSIONS", defaults.sessions),
            per_session: Param::usize("RELIABILITY_PER_SESSION", defaults.per_session),
            max_gap: Duration::from_millis(Param::u64(
                "RELIABILITY_CRASH_MAX_GAP_MS",
                defaults.max_gap.as_millis() as u64,
            )),
            max_downtime: Duration::from_millis(Param::u64(
                "RELIABILITY_CRASH_MAX_DOWNTIME_MS",
                defaults.max_downtime.as_millis() as u64,
            )),
            max_duration: Duration::from_secs(Param::u64(
                "RELIABILITY_MAX_SECS",
                defaults.max_duration.as_secs(),
            )),
            seed: Param::u64("RELIABILITY_SEED", defaults.seed),
        }
    }
}

/// The messages still to send and what the clients saw.
#[derive(Default)]
struct Ledger {
    queue: Mutex<VecDeque<usize>>,
    /// Messages without a final outcome (250 or 5xx) yet.
    unresolved: AtomicUsize,
    acked: Mutex<HashSet<String>>,
    latencies: Mutex<Vec<Duration>>,
    transactions: AtomicU64,
    deferred: AtomicU64,
    rejected: AtomicU64,
    broken: AtomicU64,
    failed_connections: AtomicU64,
    /// Count of each refusing reply, by its text.
    replies: Mutex<BTreeMap<String, u64>>,
}

/// A sender the graph learned, and whether a durable commit followed.
struct Witness {
    address: String,
    message_id: String,
}

pub async fn run(params: CrashParams, templates: Arc<Vec<Template>>) -> Report {
    let (_temporary, folder) = gateway::work_folder("crash");
    let sink = Sink::start().await;
    let smtp = SmtpSettings {
        max_connections: params.sessions + 16,
        command_timeout_secs: 60,
        session_timeout_secs: 600,
    };
    let mut gateway = Gateway::new(&params.binary, &folder, sink.address, &smtp);
    let mut report = Report::new("crash", params.seed);
    report.param("messages", params.messages);
    report.param("sessions", params.sessions);
    report.param("messages_per_connection", params.per_session);
    report.param("max_gap_ms", params.max_gap.as_millis());
    report.param("max_downtime_ms", params.max_downtime.as_millis());

    load::learn_history(&gateway, &mut report);
    let mut last_stats = gateway.graph_stats().expect("graph stats after learning");
    report.value("graph_after_history", &last_stats);

    gateway.start();
    let stop_monitor = Arc::new(AtomicBool::new(false));
    let (peaks, monitor) = gateway::monitor(
        gateway.pid(),
        Duration::from_millis(250),
        Arc::clone(&stop_monitor),
    );
    report.value("load_average_at_start", gateway::load_average());

    let started = Instant::now();
    let deadline = started + params.max_duration;
    let ledger = Arc::new(Ledger::default());
    ledger
        .queue
        .lock()
        .expect("queue")
        .extend(0..params.messages);
    ledger.unresolved.store(params.messages, Ordering::SeqCst);
    let mut workers = Vec::new();
    for _ in 0..params.sessions {
        let worker = Worker {
            address: gateway.address,
            templates: Arc::clone(&templates),
            ledger: Arc::clone(&ledger),
            params: params.clone(),
            deadline,
        };
        workers.push(tokio::spawn(worker.run()));
    }

    // Kill, check and restart until every message has its outcome.
    let mut rng = SplitMix64::new(params.seed);
    let mut witnesses: Vec<Witness> = Vec::new();
    let mut kills = 0u32;
    let mut cycle = 0usize;
    let mut restart_times = Vec::new();
    let mut acked_at_kill = Vec::new();
    while ledger.unresolved.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        // Every few cycles a witness, so that the kills between them come quicker.
        if cycle % WITNESS_EVERY == WITNESS_EVERY - 1 {
            let number = witnesses.len();
            match make_witness(gateway.address, params.seed, number, deadline, &ledger).await {
                Some(witness) => witnesses.push(witness),
                None => report.fail(format!("witness {number} was never acknowledged")),
            }
        }
        cycle += 1;

        let gap = Duration::from_millis(rng.below(params.max_gap.as_millis() as usize + 1) as u64);
        let wake = Instant::now() + gap;
        while Instant::now() < wake && ledger.unresolved.load(Ordering::SeqCst) > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if ledger.unresolved.load(Ordering::SeqCst) == 0 {
            break;
        }

        gateway.kill();
        kills += 1;
        acked_at_kill.push(ledger.acked.lock().expect("acked").len());
        tokio::task::block_in_place(|| {
            check_while_down(&gateway, &mut last_stats, witnesses.last(), &mut report);
        });
        let downtime = rng.below(params.max_downtime.as_millis() as usize + 1) as u64;
        tokio::time::sleep(Duration::from_millis(downtime)).await;
        restart_times.push(tokio::task::block_in_place(|| gateway.start()));
    }
    for worker in workers {
        let _ = worker.await;
    }
    let sending = started.elapsed();
    report.value("load_average_at_end", gateway::load_average());
    gateway::sample(gateway.pid().load(Ordering::SeqCst), &peaks);
    stop_monitor.store(true, Ordering::SeqCst);
    let _ = monitor.join();
    report.value("stopped_cleanly", gateway.stop());

    // The final checks, on the stopped gateway.
    report.value("kills", kills);
    report.value("acknowledged_at_each_kill", &acked_at_kill);
    let restart_ms: Vec<u128> = restart_times.iter().map(Duration::as_millis).collect();
    report.value(
        "restart_ms_max",
        restart_ms.iter().max().copied().unwrap_or(0),
    );
    report.value("sending_secs", sending.as_secs_f64());
    report.value("transactions", ledger.transactions.load(Ordering::SeqCst));
    report.value(
        "acknowledged_250",
        ledger.acked.lock().expect("acked").len(),
    );
    report.value("deferred_4xx", ledger.deferred.load(Ordering::SeqCst));
    report.value("rejected_5xx", ledger.rejected.load(Ordering::SeqCst));
    report.value("broken_transactions", ledger.broken.load(Ordering::SeqCst));
    report.value(
        "connections_failed",
        ledger.failed_connections.load(Ordering::SeqCst),
    );
    report.value(
        "refusing_replies",
        &*ledger.replies.lock().expect("replies"),
    );
    report.value(
        "unresolved_messages",
        ledger.unresolved.load(Ordering::SeqCst),
    );
    let latencies = Latencies::of(&ledger.latencies.lock().expect("latencies"));
    report.latencies("latency_mail_to_final_reply", &latencies);
    load::record_peaks(&mut report, &peaks);

    tokio::task::block_in_place(|| check_while_down(&gateway, &mut last_stats, None, &mut report));
    report.value("graph_at_end", &last_stats);
    check_witnesses(&gateway, &witnesses, &sink, &mut report);

    let acked = ledger.acked.lock().expect("acked").clone();
    report.reconcile(&acked, &sink.received(), &gateway.quarantine());
    report
}

/// Sends a message from a new sender, waits, and sends one more so that
/// the graph's commit of the first is durable. Returns the first sender.
async fn make_witness(
    address: SocketAddr,
    seed: u64,
    cycle: usize,
    deadline: Instant,
    ledger: &Ledger,
) -> Option<Witness> {
    let witness = Witness {
        address: format!("witness{cycle}@witness{cycle}-{seed}.test"),
        message_id: format!("<witness.{seed}.{cycle}@reliability.test>"),
    };
    send_until_accepted(address, &witness.address, &witness.message_id, deadline).await?;
    ledger
        .acked
        .lock()
        .expect("acked")
        .insert(witness.message_id.clone());
    tokio::time::sleep(DURABLE_WAIT).await;
    let durable_sender = format!("durable{cycle}@witness{cycle}-{seed}.test");
    let durable_id = format!("<durable.{seed}.{cycle}@reliability.test>");
    send_until_accepted(address, &durable_sender, &durable_id, deadline).await?;
    ledger.acked.lock().expect("acked").insert(durable_id);
    Some(witness)
}

async fn send_until_accepted(
    address: SocketAddr,
    sender: &str,
    id: &str,
    deadline: Instant,
) -> Option<()> {
    let template = mix::plain(sender, "alice@example.com", "Schedule");
    let stuffed = mix::dot_stuffed(&template.with_message_id(id));
    while Instant::now() < deadline {
        if let Ok(mut client) = Client::open(address).await {
            let sent = client.send(sender, &template.rcpt_to, &stuffed).await;
            client.quit().await;
            if matches!(sent, Sent::Accepted { .. }) {
                return Some(());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// Checks the quarantine and the graph of a stopped gateway.
fn check_while_down(
    gateway: &Gateway,
    last_stats: &mut BTreeMap<String, u64>,
    witness: Option<&Witness>,
    report: &mut Report,
) {
    let quarantine = gateway.quarantine();
    for problem in &quarantine.half_written {
        report.fail(format!(
            "half-written quarantine entry after a kill: {problem}"
        ));
    }
    match gateway.graph_stats() {
        Ok(stats) => {
            for shrunk in gateway::shrunk_counts(last_stats, &stats) {
                report.fail(format!("graph count dropped after a kill: {shrunk}"));
            }
            *last_stats = stats;
        }
        Err(err) => report.fail(format!("graph stats failed after a kill: {err}")),
    }
    if let Some(witness) = witness {
        match gateway.graph_has_correspondent(&witness.address) {
            Ok(true) => {}
            Ok(false) => report.fail(format!(
                "the graph forgot {} after a kill, though a durable commit followed",
                witness.address
            )),
            Err(err) => report.fail(format!("graph explain failed after a kill: {err}")),
        }
    }
}

/// Checks at the end that the graph has every witness that was delivered.
fn check_witnesses(gateway: &Gateway, witnesses: &[Witness], sink: &Sink, report: &mut Report) {
    let received = sink.received();
    let mut known = 0;
    let mut not_delivered = 0;
    for witness in witnesses {
        // A held message never makes its sender familiar, so only delivered witnesses count.
        if !received.contains_key(&witness.message_id) {
            not_delivered += 1;
            continue;
        }
        match gateway.graph_has_correspondent(&witness.address) {
            Ok(true) => known += 1,
            Ok(false) => report.fail(format!("the graph forgot {} by the end", witness.address)),
            Err(err) => report.fail(format!("graph explain failed: {err}")),
        }
    }
    report.value("witnesses", witnesses.len());
    report.value("witnesses_known_at_end", known);
    report.value("witnesses_not_delivered", not_delivered);
}

/// One client session loop that takes messages from the queue and puts
/// back whatever was not acknowledged.
struct Worker {
    address: SocketAddr,
    templates: Arc<Vec<Template>>,
    ledger: Arc<Ledger>,
    params: CrashParams,
    deadline: Instant,
}

impl Worker {
    async fn run(self) {
        let ledger = &self.ledger;
        while ledger.unresolved.load(Ordering::SeqCst) > 0 && Instant::now() < self.deadline {
            let Some(first) = self.take() else {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            };
            let Ok(mut client) = Client::open(self.address).await else {
                ledger.failed_connections.fetch_add(1, Ordering::SeqCst);
                self.put_back(first);
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let mut current = Some(first);
            let mut sent_here = 0;
            let mut usable = true;
            while let Some(n) = current.take() {
                let template = load::pick(&self.templates, self.params.seed, n);
                let id = message_id("crash", self.params.seed, n);
                let stuffed = mix::dot_stuffed(&template.with_message_id(&id));
                ledger.transactions.fetch_add(1, Ordering::SeqCst);
                match client
                    .send(&template.mail_from, &template.rcpt_to, &stuffed)
                    .await
                {
                    Sent::Accepted { latency } => {
                        ledger.acked.lock().expect("acked").insert(id);
                        ledger.latencies.lock().expect("latencies").push(latency);
                        ledger.unresolved.fetch_sub(1, Ordering::SeqCst);
                    }
                    Sent::Rejected(reply) => {
                        ledger.rejected.fetch_add(1, Ordering::SeqCst);
                        load::count_reply(&ledger.replies, &reply);
                        ledger.unresolved.fetch_sub(1, Ordering::SeqCst);
                        usable = client.reset().await;
                    }
                    Sent::Deferred(reply) => {
                        ledger.deferred.fetch_add(1, Ordering::SeqCst);
                        load::count_reply(&ledger.replies, &reply);
                        self.put_back(n);
                        usable = client.reset().await;
                    }
                    Sent::Broken => {
                        ledger.broken.fetch_add(1, Ordering::SeqCst);
                        self.put_back(n);
                        usable = false;
                    }
                }
                sent_here += 1;
                if !usable || sent_here >= self.params.per_session {
                    break;
                }
                current = self.take();
            }
            if usable {
                client.quit().await;
            }
        }
    }

    fn take(&self) -> Option<usize> {
        self.ledger.queue.lock().expect("queue").pop_front()
    }

    fn put_back(&self, n: usize) {
        self.ledger.queue.lock().expect("queue").push_back(n);
    }
}
