//! The reference scenario: an organisation's history, then a week of live
//! mail with a 55-message phishing campaign interleaved.
//!
//! History is learned first. Live and campaign messages are then judged in
//! manifest order at their own time. As in the gateway, delivered ones are
//! learned and held ones recorded.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use gatehouse_engine::{Action, Engine, Envelope, Limits, Outcome, When};
use gatehouse_graph::RedbGraph;
use gatehouse_policy::Policy;
use serde::Deserialize;
use time::OffsetDateTime;

#[derive(Debug, Deserialize)]
struct Entry {
    file: String,
    phase: String,
    mail_from: String,
    rcpt_to: Vec<String>,
    expect: Option<String>,
    /// RFC 3339, the time the message arrives.
    time: String,
}

/// Which clock judges live and campaign mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Clock {
    /// The time in the message's own headers, as `gatehouse scan` and `learn` use.
    FromMessage,
    /// The arrival time from the manifest, as the gateway uses.
    Arrival,
}

/// One judged message: what the scenario asserts on.
#[derive(Debug, Clone, PartialEq)]
struct Judged {
    file: String,
    phase: String,
    sender: String,
    action: Action,
    signals: Vec<(String, String)>,
}

fn scenario_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/scenario")
}

fn manifest() -> Option<Vec<Entry>> {
    let path = scenario_dir().join("manifest.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!("skipping: no scenario manifest at {}", path.display());
        return None;
    };
    Some(serde_json::from_str(&text).expect("manifest.json is a JSON array of entries"))
}

/// Learns the history, then judges live and campaign mail in order.
fn run(entries: &[Entry], clock: Clock) -> Vec<Judged> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let graph = Arc::new(RedbGraph::open(&dir.path().join("graph.redb")).expect("open graph"));
    let engine = Engine::new(
        Arc::new(Policy::embedded_default()),
        graph,
        Limits::default(),
        vec!["example.com".to_owned()],
    );
    let when = When::FromMessage {
        fallback: OffsetDateTime::UNIX_EPOCH,
    };
    let mut judged = Vec::new();
    for entry in entries {
        let raw = std::fs::read(scenario_dir().join(&entry.file)).expect("scenario message exists");
        let envelope = Envelope {
            mail_from: entry.mail_from.clone(),
            rcpt_to: entry.rcpt_to.clone(),
            ..Envelope::default()
        };
        let arrival =
            OffsetDateTime::parse(&entry.time, &time::format_description::well_known::Rfc3339)
                .expect("manifest times are RFC 3339");
        let judged_at = match (clock, entry.phase.as_str()) {
            (Clock::Arrival, "live" | "campaign") => When::At(arrival),
            _ => when,
        };
        let analysis = engine.analyse(&envelope, &raw, judged_at);
        if entry.phase == "history" {
            engine
                .learn(&analysis, Outcome::Delivered)
                .expect("learn history");
            continue;
        }
        let outcome = match analysis.verdict.action {
            Action::Hold | Action::Reject => Outcome::Held,
            Action::Deliver | Action::Tag => Outcome::Delivered,
        };
        engine.learn(&analysis, outcome).expect("learn live mail");
        judged.push(Judged {
            file: entry.file.clone(),
            phase: entry.phase.clone(),
            sender: entry.mail_from.clone(),
            action: analysis.verdict.action,
            signals: analysis
                .verdict
                .signals
                .iter()
                .map(|signal| (signal.id.clone(), signal.evidence.clone()))
                .collect(),
        });
    }
    judged
}

fn describe(judged: &Judged) -> String {
    let ids: Vec<&str> = judged.signals.iter().map(|(id, _)| id.as_str()).collect();
    format!("{} {:?} {}", judged.file, judged.action, ids.join(" "))
}

fn has(judged: &Judged, id: &str) -> bool {
    judged.signals.iter().any(|(signal, _)| signal == id)
}

#[test]
fn scenario_holds_campaign_and_delivers_live() {
    let Some(entries) = manifest() else {
        return;
    };
    let judged = run(&entries, Clock::FromMessage);
    for entry in &entries {
        if let Some(expect) = &entry.expect {
            assert!(
                (entry.phase == "campaign") == (expect == "hold"),
                "{}: manifest expects {expect}",
                entry.file
            );
        }
    }

    let campaign: Vec<&Judged> = judged
        .iter()
        .filter(|judged| judged.phase == "campaign")
        .collect();
    assert_eq!(campaign.len(), 55, "campaign messages in the manifest");
    let not_held: Vec<String> = campaign
        .iter()
        .filter(|judged| judged.action != Action::Hold)
        .map(|judged| describe(judged))
        .collect();
    assert!(
        not_held.is_empty(),
        "campaign messages not held:\n{}",
        not_held.join("\n")
    );

    let live_held: Vec<String> = judged
        .iter()
        .filter(|judged| judged.phase == "live" && judged.action >= Action::Hold)
        .map(describe)
        .collect();
    assert!(
        live_held.is_empty(),
        "live messages held:\n{}",
        live_held.join("\n")
    );
}

#[test]
fn scenario_sender_pattern_from_third_sender() {
    let Some(entries) = manifest() else {
        return;
    };
    let judged = run(&entries, Clock::FromMessage);
    let mut senders = BTreeSet::new();
    let mut wrong = Vec::new();
    for judged in judged.iter().filter(|judged| judged.phase == "campaign") {
        senders.insert(judged.sender.clone());
        let expected = senders.len() >= 3;
        if has(judged, "campaign.sender_pattern") != expected {
            wrong.push(format!(
                "{} (sender {} of {}): expected firing {expected}",
                describe(judged),
                senders.len(),
                judged.sender
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn scenario_live_cases_are_delivered() {
    let Some(entries) = manifest() else {
        return;
    };
    let judged = run(&entries, Clock::FromMessage);
    let find = |prefix: &str| -> Vec<&Judged> {
        judged
            .iter()
            .filter(|judged| judged.phase == "live" && judged.file.contains(prefix))
            .collect()
    };
    for kind in [
        "first-contact",
        "partner-reply",
        "finance-note",
        "finance-notice",
        "partner-docx",
        "internal-zh",
    ] {
        let cases = find(kind);
        assert!(!cases.is_empty(), "no live {kind} message in the scenario");
        for case in cases {
            assert!(case.action <= Action::Tag, "{}", describe(case));
        }
    }
    for case in find("partner-reply") {
        assert!(has(case, "thread.known_reply"), "{}", describe(case));
    }
}

#[test]
fn scenario_replay_gives_same_verdicts() {
    let Some(entries) = manifest() else {
        return;
    };
    let replayed = run(&entries, Clock::FromMessage);
    let lived = run(&entries, Clock::Arrival);
    let replayed_again = run(&entries, Clock::FromMessage);
    assert_eq!(replayed, lived);
    assert_eq!(replayed, replayed_again);
}
