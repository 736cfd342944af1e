//! The cost the graph adds to scanning one message: `Engine::analyse` on the
//! same messages with an empty in-memory graph that returns at once, and
//! with a redb store of 100,000 learned messages. The difference is the
//! cost of the look-ups and of the signals that read them.
//!
//! Run with `cargo bench -p gatehouse-engine --bench graph_cost`.

use std::path::Path;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use gatehouse_engine::{Engine, Envelope, Limits, When};
use gatehouse_graph::{
    AddressReport, Direction, Familiarity, GraphError, GraphStore, Learning, Lookup, Observation,
    RedbGraph, Response, Stats,
};
use gatehouse_policy::Policy;
use time::{Duration, OffsetDateTime, macros::datetime};

/// A graph that has learned nothing and returns without any I/O.
struct EmptyGraph;

impl GraphStore for EmptyGraph {
    fn observe_batch(&self, _batch: &[(Observation, Learning)]) -> Result<usize, GraphError> {
        Ok(0)
    }
    fn lookup(&self, lookup: &Lookup) -> Result<Familiarity, GraphError> {
        // The signals expect one entry per recipient and per cluster, as a store returns them.
        let mut familiarity = Familiarity::default();
        for recipient in &lookup.recipients {
            familiarity.pairs.push(gatehouse_graph::Known {
                name: recipient.clone(),
                fact: None,
            });
            familiarity.recipient_profiles.push(gatehouse_graph::Known {
                name: recipient.clone(),
                fact: None,
            });
        }
        for cluster in &lookup.clusters {
            familiarity.windows.push(gatehouse_graph::WindowSummary {
                cluster: cluster.clone(),
                ..Default::default()
            });
        }
        Ok(familiarity)
    }
    fn stats(&self) -> Result<Stats, GraphError> {
        Ok(Stats::default())
    }
    fn explain(&self, _address: &str) -> Result<AddressReport, GraphError> {
        Ok(AddressReport::default())
    }
    fn responses(&self) -> Result<Vec<Response>, GraphError> {
        Ok(Vec::new())
    }
    fn lift_response(
        &self,
        _id: &str,
        _time: OffsetDateTime,
    ) -> Result<Option<Response>, GraphError> {
        Ok(None)
    }
    fn flush(&self) -> Result<(), GraphError> {
        Ok(())
    }
}

const START: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);

/// Learns 100,000 synthetic messages: 2,000 correspondents over 400 domains
/// writing to 300 local users, with the fixture senders among them.
fn populate(graph: &RedbGraph) {
    let mut state = 0x1234_5678_u64;
    let mut next = move |bound: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % bound
    };
    for chunk in 0..100u64 {
        let batch: Vec<_> = (0..1_000u64)
            .map(|index| {
                let serial = chunk * 1_000 + index;
                let person = next(2_000);
                let sender = format!("person{person}@company{}.example", person % 400);
                let recipient = format!("user{}@example.com", next(300));
                let mut observation = Observation::new(
                    START + Duration::seconds(serial as i64 * 30),
                    Direction::Inbound,
                    format!("mid:{serial}@bench"),
                    sender,
                    vec![recipient],
                );
                observation.link_domains = vec![format!("company{}.example", person % 400)];
                observation.scripts = vec!["Latin".to_owned()];
                observation.origin_networks = vec![format!("203.0.{}.0/24", person % 200)];
                (observation, Learning::Familiar)
            })
            .collect();
        graph.observe_batch(&batch).expect("learn");
    }
    graph.flush().expect("flush");
}

fn bench(c: &mut Criterion) {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/bench");
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = Arc::new(RedbGraph::open(&dir.path().join("graph.redb")).expect("open graph"));
    populate(&store);
    let policy = Arc::new(Policy::embedded_default());
    let local = vec!["example.com".to_owned()];
    let empty = Engine::new(
        policy.clone(),
        Arc::new(EmptyGraph),
        Limits::default(),
        local.clone(),
    );
    let learned = Engine::new(policy, store, Limits::default(), local);
    let when = When::At(START + Duration::days(40));

    for name in ["plain.eml", "html.eml", "docx-qr.eml"] {
        let Ok(raw) = std::fs::read(fixtures.join(name)) else {
            continue;
        };
        let mut group = c.benchmark_group(format!("graph cost/{name}"));
        group.bench_function("empty in-memory graph", |b| {
            b.iter(|| empty.analyse(&Envelope::default(), &raw, when))
        });
        group.bench_function("redb store with 100k messages", |b| {
            b.iter(|| learned.analyse(&Envelope::default(), &raw, when))
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
