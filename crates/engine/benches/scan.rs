//! Messages per second of [`Engine::analyse`] on the benchmark messages in
//! `fixtures/bench/`, with an empty graph in a temporary folder.
//!
//! `cargo bench -p gatehouse-engine --bench scan` prints, for each message,
//! the time per call and the throughput in messages per second ("elem/s").
//! The messages are copies of scenario messages: `plain.eml` (a partner's
//! text/plain answer), `html.eml` (a newsletter with text and HTML and links to its own domain)
//! and `docx-qr.eml` (a campaign message whose DOCX shows a QR code). The
//! envelope is taken from the headers, as `gatehouse scan` does for files.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gatehouse_engine::{Engine, Envelope, Limits, When};
use gatehouse_graph::RedbGraph;
use gatehouse_policy::Policy;
use time::macros::datetime;

const MESSAGES: [&str; 3] = ["plain", "html", "docx-qr"];

fn bench_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/bench")
}

fn scan(criterion: &mut Criterion) {
    let store = tempfile::tempdir().expect("a temporary folder for the graph can be created");
    let graph = RedbGraph::open(&store.path().join("graph.redb"))
        .expect("an empty graph store can be created");
    let engine = Engine::new(
        Arc::new(Policy::embedded_default()),
        Arc::new(graph),
        Limits::default(),
        vec!["example.com".to_owned()],
    );
    let envelope = Envelope::default();
    let when = When::FromMessage {
        fallback: datetime!(2026-11-02 00:00 UTC),
    };

    let mut group = criterion.benchmark_group("scan");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(10));
    for name in MESSAGES {
        let path = bench_dir().join(format!("{name}.eml"));
        let raw = std::fs::read(&path).unwrap_or_else(|error| {
            panic!(
                "failed to read {}: {error}. Generate it with `cargo run -p gatehouse-fixtures -- fixtures`.",
                path.display()
            )
        });

        // Show what the measured call finds, so that a figure for a stage that
        // did nothing is not mistaken for a fast stage.
        let verdict = engine.analyse(&envelope, &raw, when).verdict;
        eprintln!(
            "{name}.eml: {} bytes, action {:?}, {} signals, {} links, {} attachments, {} QR codes",
            raw.len(),
            verdict.action,
            verdict.signals.len(),
            verdict.links.len(),
            verdict.attachments.len(),
            verdict.qr_codes.len()
        );

        group.bench_function(name, |bencher| {
            bencher.iter(|| engine.analyse(black_box(&envelope), black_box(&raw), when))
        });
    }
    group.finish();
}

criterion_group!(benches, scan);
criterion_main!(benches);
