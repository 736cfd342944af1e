//! One engine for the whole fuzzing process, on an empty graph.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, OnceLock};

use gatehouse_engine::{Engine, Envelope, Limits, Verdict, When};
use gatehouse_graph::RedbGraph;
use gatehouse_policy::Policy;
use time::OffsetDateTime;

/// Returns the process's engine: the embedded default policy, default limits,
/// `example.com` as the local domain, and an empty graph.
///
/// The graph's redb file is unlinked as soon as it is open, so a fuzzing run
/// leaves nothing in the temporary directory however it ends. Analysis only
/// reads the graph, so every input meets the same empty graph.
pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("create a temporary directory for the graph");
        let graph = RedbGraph::open(&dir.path().join("graph.redb")).expect("open an empty graph");
        drop(dir);
        Engine::new(
            Arc::new(Policy::embedded_default()),
            Arc::new(graph),
            Limits::default(),
            vec!["example.com".to_owned()],
        )
    })
}

/// Returns the envelope every fuzzed message arrives with: an external sender
/// writing to one local recipient from a public address.
pub fn envelope() -> Envelope {
    Envelope {
        mail_from: "sender@example.net".to_owned(),
        rcpt_to: vec!["user@example.com".to_owned()],
        client_ip: Some(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9))),
        helo: Some("mail.example.net".to_owned()),
    }
}

/// Returns the fixed arrival time, 2026-11-02T08:00:00Z, used when a message carries no date.
pub fn when() -> When {
    When::FromMessage {
        fallback: OffsetDateTime::from_unix_timestamp(1_793_606_400)
            .expect("a fixed timestamp in range"),
    }
}

/// Checks what every verdict promises whatever the input: a finite score,
/// evidence on every signal, and a JSON form (the verdict contract).
pub fn check_verdict(verdict: &Verdict) {
    assert!(
        verdict.score.is_finite(),
        "score {} is not finite",
        verdict.score
    );
    for signal in &verdict.signals {
        assert!(
            signal.weight.is_finite(),
            "signal {} has weight {}",
            signal.id,
            signal.weight
        );
        assert!(
            !signal.evidence.trim().is_empty(),
            "signal {} has no evidence",
            signal.id
        );
    }
    let json = serde_json::to_string(verdict).expect("a verdict serialises to JSON");
    let back: Verdict = serde_json::from_str(&json).expect("the verdict JSON reads back");
    assert_eq!(
        back.action, verdict.action,
        "action after a JSON round trip"
    );
}
