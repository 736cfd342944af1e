//! Parse plus link extraction, per message.
//!
//! `cargo bench -p gatehouse-message --bench parse` prints the time per
//! message for the in-repository fixtures and, when the shared corpus sits
//! beside the repository, for a typical plain ham message, a typical HTML
//! phishing message and the whole phishing_pot sample (per message).

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gatehouse_message::links::{self, Link};
use gatehouse_message::{BodyKind, Limits, parse};

fn parse_and_extract(raw: &[u8], limits: &Limits) -> Vec<Link> {
    let message = parse(raw, limits);
    let mut found = Vec::new();
    for body in &message.bodies {
        found.extend(match body.kind {
            BodyKind::Plain => links::extract_text_with(&body.text, &body.location, limits),
            BodyKind::Html => links::extract_html_with(&body.text, &body.location, limits),
        });
    }
    found
}

fn read(path: &Path) -> Option<Vec<u8>> {
    std::fs::read(path).ok()
}

fn corpus() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
    dir.is_dir().then_some(dir)
}

fn bench(c: &mut Criterion) {
    let limits = Limits::default();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut group = c.benchmark_group("parse_and_links");
    group.throughput(Throughput::Elements(1));

    let mut cases: Vec<(&str, Option<Vec<u8>>)> = vec![
        ("fixture_plain_forwarded", read(&data.join("forwarded.eml"))),
        ("fixture_html_links", read(&data.join("html_links.eml"))),
    ];
    if let Some(corpus) = corpus() {
        // A median-sized ham message (3.3 KB) and a median-sized HTML phish (61 KB).
        cases.push((
            "corpus_plain_ham_3kb",
            read(&corpus.join(
                "spamassassin-publiccorpus/easy-ham-1/00751.1e509bcc1e777532f90081474defea62.eml",
            )),
        ));
        cases.push((
            "corpus_html_phish_61kb",
            read(&corpus.join("phishing_pot/email/sample-2571.eml")),
        ));
    }
    for (name, raw) in cases {
        let Some(raw) = raw else {
            continue;
        };
        group.bench_function(name, |b| {
            b.iter(|| parse_and_extract(black_box(&raw), &limits))
        });
    }

    if let Some(corpus) = corpus() {
        let mut messages = Vec::new();
        if let Ok(entries) = std::fs::read_dir(corpus.join("phishing_pot/email")) {
            for entry in entries.flatten() {
                if let Some(raw) = read(&entry.path()) {
                    messages.push(raw);
                }
            }
        }
        if !messages.is_empty() {
            group.throughput(Throughput::Elements(messages.len() as u64));
            group.sample_size(10);
            group.bench_function("corpus_phishing_pot_all", |b| {
                b.iter(|| {
                    for raw in &messages {
                        black_box(parse_and_extract(raw, &limits));
                    }
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
