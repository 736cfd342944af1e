//! Load, soak and crash consistency of `gatehouse serve` as an SMTP proxy
//! in front of an upstream MTA on loopback.
//!
//! Two small runs (`load_smoke`, `crash_smoke`) run with the other tests.
//! The long runs (`load_soak`, `crash_consistency`) are ignored by default.
//! `scripts/reliability` runs them against the release binary. Every size
//! is a `RELIABILITY_*` environment variable, read in `load.rs` and
//! `crash.rs`:
//!
//! | variable | meaning |
//! |---|---|
//! | `GATEHOUSE_BIN` | the `gatehouse` binary (default: the one Cargo built for this test) |
//! | `RELIABILITY_MESSAGES`, `RELIABILITY_SESSIONS` | load: messages and concurrent sessions |
//! | `RELIABILITY_LORIS`, `RELIABILITY_LORIS_INTERVAL_MS` | load: slow-loris clients, time between their bytes |
//! | `RELIABILITY_MAX_CONNECTIONS`, `RELIABILITY_COMMAND_TIMEOUT_SECS`, `RELIABILITY_SESSION_TIMEOUT_SECS` | load: the proxy's `[smtp]` limits |
//! | `RELIABILITY_CRASH_MESSAGES`, `RELIABILITY_CRASH_SESSIONS` | crash: messages and concurrent sessions |
//! | `RELIABILITY_CRASH_MAX_GAP_MS`, `RELIABILITY_CRASH_MAX_DOWNTIME_MS` | crash: maximum time before a kill and after it |
//! | `RELIABILITY_PER_SESSION` | messages per connection |
//! | `RELIABILITY_MAX_SECS` | time after which a run stops sending |
//! | `RELIABILITY_SEED` | seed of the message mix and of the kill schedule |
//! | `RELIABILITY_REPORT` | file the report is appended to, one JSON object per run |
//! | `RELIABILITY_WORK_DIR` | folder kept for the gateway's files (default: a temporary one) |

#![allow(unreachable_pub)]

mod client;
#[path = "../common/mod.rs"]
mod common;
mod crash;
mod gateway;
mod load;
mod mix;
mod report;
mod sink;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crash::CrashParams;
use gateway::SmtpSettings;
use load::LoadParams;
use report::Report;

/// Reads a `RELIABILITY_*` parameter from the environment.
struct Param;

impl Param {
    fn u64(name: &str, default: u64) -> u64 {
        match std::env::var(name) {
            Ok(value) => value
                .parse()
                .unwrap_or_else(|_| panic!("{name}={value:?} is not a whole number")),
            Err(_) => default,
        }
    }

    fn usize(name: &str, default: usize) -> usize {
        Param::u64(name, default as u64) as usize
    }
}

/// SplitMix64 (Steele, Lea and Flood, 2014): a small seeded generator, so
/// that a printed seed repeats the same mix and the same kill schedule.
struct SplitMix64(u64);

impl SplitMix64 {
    fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Returns a number below `bound` (0 when `bound` is 0).
    fn below(&mut self, bound: usize) -> usize {
        if bound == 0 {
            return 0;
        }
        (self.next() % bound as u64) as usize
    }
}

fn scenario() -> PathBuf {
    common::repo().join("fixtures/scenario")
}

fn binary() -> PathBuf {
    std::env::var_os("GATEHOUSE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_gatehouse")))
}

fn templates() -> Arc<Vec<mix::Template>> {
    Arc::new(mix::load_scenario(&scenario()))
}

fn assert_consistent(report: &Report) {
    assert_eq!(report.lost, 0, "messages acknowledged with 250 were lost");
    assert!(
        report.half_written.is_empty(),
        "half-written quarantine entries: {:?}",
        report.half_written
    );
}

fn load_defaults(messages: usize, sessions: usize, loris: usize) -> LoadParams {
    LoadParams {
        binary: binary(),
        messages,
        sessions,
        per_session: 5,
        loris,
        loris_interval: Duration::from_secs(1),
        smtp: SmtpSettings {
            max_connections: sessions.max(loris),
            command_timeout_secs: 2,
            session_timeout_secs: 6,
        },
        max_duration: Duration::from_secs(300),
        seed: 7,
    }
}

fn crash_defaults(messages: usize, sessions: usize) -> CrashParams {
    CrashParams {
        binary: binary(),
        messages,
        sessions,
        per_session: 5,
        max_gap: Duration::from_millis(1500),
        max_downtime: Duration::from_millis(300),
        max_duration: Duration::from_secs(300),
        seed: 7,
    }
}

/// A slow-loris client takes each connection slot before the sessions start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_smoke() {
    let params = load_defaults(100, 10, 10);
    let mut report = load::run(params.clone(), templates()).await;
    report.publish();

    assert_consistent(&report);
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(
        report
            .count("acknowledged_250")
            .saturating_add(report.count("rejected_5xx")),
        params.messages as u64,
        "every message got 250 or 5xx"
    );
    assert_eq!(
        report.count("slow_loris_idle_still_open_at_give_up"),
        0,
        "an idle slow-loris client outlasted the command timeout"
    );
    assert_eq!(
        report.count("slow_loris_trickle_still_open_at_give_up"),
        0,
        "a trickling slow-loris client outlasted the session timeout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_smoke() {
    let mut params = crash_defaults(1_500, 4);
    params.max_gap = Duration::from_millis(300);
    let mut report = crash::run(params, templates()).await;
    report.publish();

    assert_consistent(&report);
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert!(report.count("kills") >= 1, "the gateway was never killed");
    assert_eq!(report.count("unresolved_messages"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long run; scripts/reliability runs it with the release binary"]
async fn load_soak() {
    let params = LoadParams::from_env(load_defaults(5_000, 200, 200));
    let mut report = load::run(params.clone(), templates()).await;
    report.publish();

    assert_consistent(&report);
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(
        report
            .count("acknowledged_250")
            .saturating_add(report.count("rejected_5xx")),
        params.messages as u64,
        "every message got 250 or 5xx"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long run; scripts/reliability runs it with the release binary"]
async fn crash_consistency() {
    let mut defaults = crash_defaults(3_000, 16);
    defaults.max_gap = Duration::from_millis(200);
    let params = CrashParams::from_env(defaults);
    let mut report = crash::run(params, templates()).await;
    report.publish();

    assert_consistent(&report);
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.count("unresolved_messages"), 0);
}
