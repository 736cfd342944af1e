//! Signals on real third-party mail: SpamAssassin ham as history, then more
//! ham and real phishing judged against it. Every verdict must explain each
//! signal it carries; the hold rates are printed for the benchmark notes.

#![allow(clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use gatehouse_engine::{Action, Engine, Envelope, Limits, Outcome, Verdict, When};
use gatehouse_graph::RedbGraph;
use gatehouse_policy::{Policy, SIGNAL_IDS};
use time::OffsetDateTime;

/// Signal ids the engine adds for rules that override the score.
const RULE_IDS: &[&str] = &[
    "policy.plain_first_contact",
    "policy.allow",
    "policy.block",
    "campaign.response",
];

fn corpus() -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
    if path.is_dir() {
        Some(path)
    } else {
        eprintln!("skipping: no corpus at {}", path.display());
        None
    }
}

fn messages(folder: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(folder)
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                .collect()
        })
        .unwrap_or_default();
    files.retain(|path| path.extension().is_some_and(|extension| extension == "eml"));
    files.sort();
    files
}

fn judge(engine: &Engine, path: &Path) -> Verdict {
    let raw = std::fs::read(path).expect("corpus file is readable");
    let when = When::FromMessage {
        fallback: OffsetDateTime::UNIX_EPOCH,
    };
    engine.analyse(&Envelope::default(), &raw, when).verdict
}

fn check_explained(verdict: &Verdict, path: &Path) {
    for signal in &verdict.signals {
        assert!(
            SIGNAL_IDS.contains(&signal.id.as_str()) || RULE_IDS.contains(&signal.id.as_str()),
            "{}: unknown signal id {}",
            path.display(),
            signal.id
        );
        assert!(
            !signal.evidence.trim().is_empty(),
            "{}: {} without evidence",
            path.display(),
            signal.id
        );
    }
}

#[test]
fn corpus_ham_history_then_phishing() {
    let Some(corpus) = corpus() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let graph = Arc::new(RedbGraph::open(&dir.path().join("graph.redb")).expect("open graph"));
    let engine = Engine::new(
        Arc::new(Policy::embedded_default()),
        graph,
        Limits::default(),
        Vec::new(),
    );

    // Half of the ham is history; the other half and the phishing are judged.
    let ham: Vec<PathBuf> = ["easy-ham-1", "easy-ham-2", "hard-ham-1"]
        .iter()
        .flat_map(|folder| messages(&corpus.join("spamassassin-publiccorpus").join(folder)))
        .collect();
    let (history, later_ham) = ham.split_at(ham.len() / 2);
    for path in history {
        let raw = std::fs::read(path).expect("corpus file is readable");
        let when = When::FromMessage {
            fallback: OffsetDateTime::UNIX_EPOCH,
        };
        let analysis = engine.analyse(&Envelope::default(), &raw, when);
        engine
            .learn(&analysis, Outcome::Delivered)
            .expect("learn ham");
    }

    let mut ham_held = 0;
    for path in later_ham {
        let verdict = judge(&engine, path);
        check_explained(&verdict, path);
        if verdict.action >= Action::Hold {
            ham_held += 1;
        }
    }
    let phishing = messages(&corpus.join("phishing_pot/email"));
    let mut phishing_held = 0;
    let mut phishing_tagged = 0;
    for path in &phishing {
        let verdict = judge(&engine, path);
        check_explained(&verdict, path);
        match verdict.action {
            Action::Hold | Action::Reject => phishing_held += 1,
            Action::Tag => phishing_tagged += 1,
            Action::Deliver => {}
        }
    }
    eprintln!(
        "history {} ham; held {ham_held} of {} later ham; held {phishing_held} and tagged {phishing_tagged} of {} phishing",
        history.len(),
        later_ham.len(),
        phishing.len()
    );
    assert!(
        !phishing.is_empty(),
        "no phishing messages found under {}",
        corpus.display()
    );
}
