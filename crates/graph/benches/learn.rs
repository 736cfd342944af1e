//! Learning throughput, lookup latency and store size of the redb graph.
//!
//! The observations are synthetic but shaped like an organisation's mail:
//! 2,000 correspondents over 400 domains writing to 300 local users, a fifth
//! of the traffic outbound, links, attachments, scripts, origin networks and
//! campaign clusters on new senders. Run with
//! `cargo bench -p gatehouse-graph --bench learn`; besides criterion's
//! figures it prints the store size after 100,000 learned messages.

#![allow(clippy::print_stderr)]

use std::time::Instant;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use gatehouse_graph::{
    AttachmentKey, Direction, GraphStore, Learning, Lookup, Observation, RedbGraph,
};
use time::{Duration, OffsetDateTime, macros::datetime};

const START: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);
const CORRESPONDENTS: u64 = 2_000;
const DOMAINS: u64 = 400;
const LOCAL_USERS: u64 = 300;

/// A small deterministic generator (SplitMix64), so every run learns the same mail.
struct Sequence(u64);

impl Sequence {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

fn correspondent(index: u64) -> String {
    format!("person{index}@company{}.example", index % DOMAINS)
}

fn local(index: u64) -> String {
    format!("user{index}@example.com")
}

fn observation(serial: u64, sequence: &mut Sequence) -> Observation {
    let time = START + Duration::seconds(serial as i64 * 30);
    let external = correspondent(sequence.below(CORRESPONDENTS));
    let user = local(sequence.below(LOCAL_USERS));
    let outbound = sequence.below(5) == 0;
    let (direction, sender, recipients) = if outbound {
        (Direction::Outbound, user, vec![external.clone()])
    } else {
        let mut recipients = vec![user];
        if sequence.below(4) == 0 {
            recipients.push(local(sequence.below(LOCAL_USERS)));
        }
        (Direction::Inbound, external.clone(), recipients)
    };
    let domain = external
        .rsplit_once('@')
        .map(|(_, domain)| domain.to_owned())
        .unwrap_or_default();
    let mut observation = Observation::new(
        time,
        direction,
        format!("mid:{serial}@bench"),
        sender,
        recipients,
    );
    observation.message_id = Some(format!("{serial}@bench"));
    observation.sender_display_name = Some(format!("Person {}", sequence.below(CORRESPONDENTS)));
    observation.link_domains = vec![domain.clone(), format!("cdn{}.example", sequence.below(50))];
    if sequence.below(3) == 0 {
        observation.attachments = vec![AttachmentKey {
            kind: ["pdf", "docx", "xlsx", "png"][sequence.below(4) as usize].to_owned(),
            sha256: format!("{:064x}", sequence.next()),
        }];
    }
    observation.scripts = vec![
        if sequence.below(10) == 0 {
            "Han"
        } else {
            "Latin"
        }
        .to_owned(),
    ];
    observation.origin_networks = vec![format!("203.0.{}.0/24", sequence.below(200))];
    if sequence.below(10) == 0 {
        observation.clusters = vec![
            format!("sender:{domain}|a{{6}}9{{3}}"),
            format!("domain:{domain}"),
        ];
    }
    observation
}

fn observations(count: u64, seed: u64) -> Vec<(Observation, Learning)> {
    let mut sequence = Sequence(seed);
    (0..count)
        .map(|serial| {
            (
                observation(seed * 1_000 + serial, &mut sequence),
                Learning::Familiar,
            )
        })
        .collect()
}

fn populated(count: u64) -> (tempfile::TempDir, RedbGraph) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let graph = RedbGraph::open(&dir.path().join("graph.redb")).expect("open graph");
    let batch = 1_000;
    for start in (0..count).step_by(batch as usize) {
        let mut sequence = Sequence(start + 1);
        let chunk: Vec<_> = (start..(start + batch).min(count))
            .map(|serial| (observation(serial, &mut sequence), Learning::Familiar))
            .collect();
        graph.observe_batch(&chunk).expect("learn");
    }
    graph.flush().expect("flush");
    (dir, graph)
}

fn typical_lookup() -> Lookup {
    let mut lookup = Lookup::new(
        START + Duration::days(40),
        correspondent(17),
        vec![local(3), local(4)],
    );
    lookup.key = "mid:lookup@bench".to_owned();
    lookup.display_name = Some("Person 17".to_owned());
    lookup.link_domains = vec![
        "company17.example".to_owned(),
        "new-domain.example".to_owned(),
    ];
    lookup.attachments = vec![AttachmentKey {
        kind: "docx".to_owned(),
        sha256: "ab".repeat(32),
    }];
    lookup.scripts = vec!["Latin".to_owned()];
    lookup.origin_networks = vec!["203.0.17.0/24".to_owned()];
    lookup.reply_to_ids = vec!["123@bench".to_owned()];
    lookup.clusters = vec![
        "sender:company17.example|a{6}9{2}".to_owned(),
        "domain:company17.example".to_owned(),
        format!("hash:{}", "ab".repeat(32)),
        "link:new-domain.example".to_owned(),
        "subject:invoice".to_owned(),
    ];
    lookup
}

/// Prints the store size and learning rate for 100,000 messages learned in batches of 1,000.
fn report_store_size() {
    let count = 100_000;
    let started = Instant::now();
    let (dir, graph) = populated(count);
    let elapsed = started.elapsed();
    let stats = graph.stats().expect("stats");
    drop(graph);
    let size = std::fs::metadata(dir.path().join("graph.redb"))
        .map(|meta| meta.len())
        .unwrap_or(0);
    eprintln!(
        "store after {count} messages: {:.1} MiB ({} bytes per message); learned in {:.2} s ({:.0} messages/s, batches of 1,000); {} addresses, {} edges",
        size as f64 / (1024.0 * 1024.0),
        size / count,
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64(),
        stats.addresses,
        stats.edges
    );
}

fn bench(c: &mut Criterion) {
    report_store_size();

    let mut learn = c.benchmark_group("learn");
    learn.throughput(Throughput::Elements(100));
    learn.sample_size(20);
    let (_dir, graph) = populated(20_000);
    let mut seed = 1_000;
    learn.bench_function("batch of 100 into 20k store", |b| {
        b.iter_batched(
            || {
                seed += 1;
                observations(100, seed)
            },
            |batch| graph.observe_batch(&batch).expect("learn"),
            BatchSize::SmallInput,
        )
    });
    learn.bench_function("100 single transactions into 20k store", |b| {
        b.iter_batched(
            || {
                seed += 1;
                observations(100, seed)
            },
            |batch| {
                for (observation, learning) in &batch {
                    graph.observe(observation, *learning).expect("learn");
                }
            },
            BatchSize::SmallInput,
        )
    });
    learn.finish();

    let (_dir, graph) = populated(100_000);
    let lookup = typical_lookup();
    let mut group = c.benchmark_group("lookup");
    group.throughput(Throughput::Elements(1));
    group.bench_function("typical message in 100k store", |b| {
        b.iter(|| graph.lookup(&lookup).expect("lookup"))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
