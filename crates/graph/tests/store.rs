//! The redb store through the `GraphStore` trait: learning, idempotency,
//! held mail, campaign windows, responses and reports.

use gatehouse_graph::{
    AttachmentKey, Direction, Escalation, GraphStore, Learning, Lookup, Observation, RedbGraph,
};
use time::{Duration, OffsetDateTime, macros::datetime};

const T0: OffsetDateTime = datetime!(2026-11-02 08:00 UTC);

fn open() -> (tempfile::TempDir, RedbGraph) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let graph = RedbGraph::open(&dir.path().join("graph.redb")).expect("open graph");
    (dir, graph)
}

fn inbound(key: &str, sender: &str, recipient: &str, time: OffsetDateTime) -> Observation {
    Observation::new(
        time,
        Direction::Inbound,
        key.to_owned(),
        sender.to_owned(),
        vec![recipient.to_owned()],
    )
}

fn lookup_of(sender: &str, recipient: &str, time: OffsetDateTime) -> Lookup {
    Lookup::new(time, sender.to_owned(), vec![recipient.to_owned()])
}

#[test]
fn unknown_sender_has_no_fact() {
    let (_dir, graph) = open();
    let familiarity = graph
        .lookup(&lookup_of("a@partner.example", "bob@example.com", T0))
        .expect("lookup");
    assert!(familiarity.sender.is_none());
}

#[test]
fn delivered_mail_makes_sender_known() {
    let (_dir, graph) = open();
    let observation = inbound("mid:1", "a@partner.example", "bob@example.com", T0);
    graph
        .observe(&observation, Learning::Familiar)
        .expect("observe");
    let familiarity = graph
        .lookup(&lookup_of("a@partner.example", "bob@example.com", T0))
        .expect("lookup");
    assert_eq!(familiarity.sender.map(|fact| fact.inbound), Some(1));
    assert_eq!(familiarity.sender_domain.map(|fact| fact.inbound), Some(1));
    assert!(familiarity.pairs[0].fact.is_some());
}

#[test]
fn same_message_learned_twice_counts_once() {
    let (_dir, graph) = open();
    let observation = inbound("mid:1", "a@partner.example", "bob@example.com", T0);
    let first = graph
        .observe(&observation, Learning::Familiar)
        .expect("observe");
    let second = graph
        .observe(&observation, Learning::Familiar)
        .expect("observe");
    let familiarity = graph
        .lookup(&lookup_of("a@partner.example", "bob@example.com", T0))
        .expect("lookup");
    assert!(first);
    assert!(!second);
    assert_eq!(familiarity.sender.map(|fact| fact.inbound), Some(1));
    assert_eq!(graph.stats().expect("stats").messages, 1);
}

#[test]
fn held_mail_never_makes_sender_known() {
    let (_dir, graph) = open();
    let mut observation = inbound("mid:1", "38117@brand.example", "bob@example.com", T0);
    observation.clusters = vec!["sender:brand.example|9{5}".to_owned()];
    graph
        .observe(&observation, Learning::WindowOnly)
        .expect("observe");
    let mut lookup = lookup_of(
        "38240@brand.example",
        "eve@example.com",
        T0 + Duration::hours(1),
    );
    lookup.clusters = observation.clusters.clone();
    let familiarity = graph.lookup(&lookup).expect("lookup");
    assert!(familiarity.sender_domain.is_none());
    assert_eq!(familiarity.windows[0].events.len(), 1);
    assert!(familiarity.windows[0].events[0].held);
}

#[test]
fn outbound_mail_makes_recipient_a_correspondent() {
    let (_dir, graph) = open();
    let mut observation = Observation::new(
        T0,
        Direction::Outbound,
        "mid:out-1".to_owned(),
        "bob@example.com".to_owned(),
        vec!["carol@partner.example".to_owned()],
    );
    observation.message_id = Some("out-1@example.com".to_owned());
    observation.sender_display_name = Some("Bob Jones".to_owned());
    graph
        .observe(&observation, Learning::Familiar)
        .expect("observe");

    let mut lookup = lookup_of(
        "carol@partner.example",
        "bob@example.com",
        T0 + Duration::days(1),
    );
    lookup.reply_to_ids = vec!["out-1@example.com".to_owned()];
    lookup.display_name = Some("BOB  JONES".to_owned());
    let familiarity = graph.lookup(&lookup).expect("lookup");
    assert_eq!(familiarity.sender.map(|fact| fact.outbound), Some(1));
    assert!(familiarity.pairs[0].fact.is_some());
    assert_eq!(
        familiarity.known_reply_to.as_deref(),
        Some("out-1@example.com")
    );
    assert!(familiarity.internal_display_name.is_some());
}

#[test]
fn window_excludes_events_older_than_window() {
    let (_dir, graph) = open();
    let cluster = "sender:brand.example|9{5}".to_owned();
    for (index, hours) in [0i64, 10, 80].iter().enumerate() {
        let mut observation = inbound(
            &format!("mid:{index}"),
            &format!("3811{index}@brand.example"),
            &format!("user{index}@example.com"),
            T0 + Duration::hours(*hours),
        );
        observation.clusters = vec![cluster.clone()];
        graph
            .observe(&observation, Learning::WindowOnly)
            .expect("observe");
    }
    let mut lookup = lookup_of(
        "38999@brand.example",
        "x@example.com",
        T0 + Duration::hours(81),
    );
    lookup.clusters = vec![cluster];
    let familiarity = graph.lookup(&lookup).expect("lookup");
    let senders: Vec<_> = familiarity.windows[0].senders().into_iter().collect();
    assert_eq!(senders, vec!["38111@brand.example", "38112@brand.example"]);
}

#[test]
fn window_excludes_the_message_itself() {
    let (_dir, graph) = open();
    let cluster = "hash:abc".to_owned();
    let mut observation = inbound("mid:self", "a@x.example", "b@example.com", T0);
    observation.clusters = vec![cluster.clone()];
    graph
        .observe(&observation, Learning::WindowOnly)
        .expect("observe");
    let mut lookup = lookup_of("a@x.example", "b@example.com", T0);
    lookup.key = "mid:self".to_owned();
    lookup.clusters = vec![cluster];
    let familiarity = graph.lookup(&lookup).expect("lookup");
    assert!(familiarity.windows[0].events.is_empty());
}

#[test]
fn release_clears_held_mark() {
    let (_dir, graph) = open();
    let cluster = "link:x.bond".to_owned();
    let mut observation = inbound("mid:1", "a@x.example", "b@example.com", T0);
    observation.clusters = vec![cluster.clone()];
    graph
        .observe(&observation, Learning::WindowOnly)
        .expect("hold");
    observation.time = T0 + Duration::hours(2);
    graph
        .observe(&observation, Learning::Familiar)
        .expect("release");
    let mut lookup = lookup_of("c@x.example", "d@example.com", T0 + Duration::hours(3));
    lookup.clusters = vec![cluster];
    let familiarity = graph.lookup(&lookup).expect("lookup");
    assert_eq!(familiarity.windows[0].events.len(), 1);
    assert!(!familiarity.windows[0].events[0].held);
    assert!(familiarity.sender_domain.is_some());
}

#[test]
fn window_events_expire_after_retention() {
    let (_dir, graph) = open();
    let cluster = "subject:notice".to_owned();
    let mut old = inbound("mid:old", "a@x.example", "b@example.com", T0);
    old.clusters = vec![cluster.clone()];
    graph.observe(&old, Learning::WindowOnly).expect("observe");
    let mut new = inbound(
        "mid:new",
        "c@x.example",
        "d@example.com",
        T0 + Duration::days(30),
    );
    new.clusters = vec![cluster];
    graph.observe(&new, Learning::WindowOnly).expect("observe");
    assert_eq!(graph.stats().expect("stats").window_events, 1);
}

#[test]
fn escalation_opens_response_that_expires() {
    let (_dir, graph) = open();
    let cluster = "sender:brand.example|9{5}".to_owned();
    let mut observation = inbound("mid:1", "38117@brand.example", "b@example.com", T0);
    observation.clusters = vec![cluster.clone()];
    observation.escalations = vec![Escalation {
        cluster: cluster.clone(),
        reason: "3 new senders".to_owned(),
        duration: Duration::hours(2),
    }];
    graph
        .observe(&observation, Learning::WindowOnly)
        .expect("observe");

    let mut during = lookup_of(
        "38555@brand.example",
        "c@example.com",
        T0 + Duration::hours(1),
    );
    during.clusters = vec![cluster.clone()];
    let mut after = during.clone();
    after.time = T0 + Duration::hours(3);
    assert_eq!(graph.lookup(&during).expect("lookup").responses.len(), 1);
    assert!(graph.lookup(&after).expect("lookup").responses.is_empty());
}

#[test]
fn lifted_response_stops_holding() {
    let (_dir, graph) = open();
    let cluster = "hash:abc".to_owned();
    let mut observation = inbound("mid:1", "a@x.example", "b@example.com", T0);
    observation.escalations = vec![Escalation {
        cluster: cluster.clone(),
        reason: "burst".to_owned(),
        duration: Duration::hours(2),
    }];
    graph
        .observe(&observation, Learning::WindowOnly)
        .expect("observe");
    let listed = graph.responses().expect("responses");
    let lifted = graph
        .lift_response(&listed[0].id, T0 + Duration::minutes(10))
        .expect("lift");
    let mut lookup = lookup_of("c@x.example", "d@example.com", T0 + Duration::minutes(20));
    lookup.clusters = vec![cluster];
    assert!(lifted.is_some());
    assert!(graph.lookup(&lookup).expect("lookup").responses.is_empty());
}

#[test]
fn lifting_unknown_response_returns_none() {
    let (_dir, graph) = open();
    assert!(
        graph
            .lift_response("000000000000", T0)
            .expect("lift")
            .is_none()
    );
}

#[test]
fn attachment_types_and_scripts_per_recipient() {
    let (_dir, graph) = open();
    let mut observation = inbound("mid:1", "a@partner.example", "bob@example.com", T0);
    observation.attachments = vec![AttachmentKey {
        kind: "pdf".to_owned(),
        sha256: "00".repeat(32),
    }];
    observation.scripts = vec!["Latin".to_owned()];
    graph
        .observe(&observation, Learning::Familiar)
        .expect("observe");

    let mut lookup = lookup_of("a@partner.example", "bob@example.com", T0);
    lookup.attachments = vec![
        AttachmentKey {
            kind: "pdf".to_owned(),
            sha256: String::new(),
        },
        AttachmentKey {
            kind: "docx".to_owned(),
            sha256: String::new(),
        },
    ];
    lookup.scripts = vec!["Latin".to_owned(), "Han".to_owned()];
    let familiarity = graph.lookup(&lookup).expect("lookup");
    assert!(familiarity.attachment_types[0].from_sender.is_some());
    assert!(familiarity.attachment_types[1].organisation.is_none());
    assert!(familiarity.scripts[0].recipients[0].is_some());
    assert!(familiarity.scripts[1].recipients[0].is_none());
}

#[test]
fn origin_networks_are_per_sender_domain() {
    let (_dir, graph) = open();
    let mut observation = inbound("mid:1", "a@partner.example", "bob@example.com", T0);
    observation.origin_networks = vec!["203.0.113.0/24".to_owned()];
    graph
        .observe(&observation, Learning::Familiar)
        .expect("observe");

    let mut same_domain = lookup_of("z@partner.example", "bob@example.com", T0);
    same_domain.origin_networks = vec!["198.51.100.0/24".to_owned()];
    let familiarity = graph.lookup(&same_domain).expect("lookup");
    assert!(familiarity.origin.networks[0].fact.is_none());
    assert_eq!(familiarity.origin.known[0].name, "203.0.113.0/24");
}

#[test]
fn explain_lists_edges_both_ways() {
    let (_dir, graph) = open();
    graph
        .observe(
            &inbound("mid:1", "a@partner.example", "bob@example.com", T0),
            Learning::Familiar,
        )
        .expect("observe");
    let external = graph.explain("A@Partner.Example").expect("explain");
    let local = graph.explain("bob@example.com").expect("explain");
    assert_eq!(external.edges[0].0, "bob@example.com");
    assert_eq!(local.edges[0].0, "a@partner.example");
    assert!(local.recipient_profile.is_some());
}

#[test]
fn store_survives_reopen() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("graph.redb");
    {
        let graph = RedbGraph::open(&path).expect("open");
        graph
            .observe(
                &inbound("mid:1", "a@partner.example", "bob@example.com", T0),
                Learning::Familiar,
            )
            .expect("observe");
    }
    let graph = RedbGraph::open(&path).expect("reopen");
    let familiarity = graph
        .lookup(&lookup_of("a@partner.example", "bob@example.com", T0))
        .expect("lookup");
    assert!(familiarity.sender.is_some());
}

#[test]
fn batch_counts_each_message_once() {
    let (_dir, graph) = open();
    let first = inbound("mid:1", "a@partner.example", "bob@example.com", T0);
    let batch = vec![
        (first.clone(), Learning::Familiar),
        (first, Learning::Familiar),
        (
            inbound("mid:2", "b@partner.example", "bob@example.com", T0),
            Learning::Familiar,
        ),
    ];
    assert_eq!(graph.observe_batch(&batch).expect("batch"), 2);
}

#[test]
fn window_read_stops_at_limit() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let limits = gatehouse_graph::Limits {
        max_window_events: 2,
        ..gatehouse_graph::Limits::default()
    };
    let graph = RedbGraph::open_with(&dir.path().join("graph.redb"), limits).expect("open graph");
    let cluster = "domain:burst.example".to_owned();
    for index in 0..3 {
        let mut observation = inbound(
            &format!("mid:{index}"),
            &format!("s{index}@burst.example"),
            &format!("u{index}@example.com"),
            T0 + Duration::minutes(index),
        );
        observation.clusters = vec![cluster.clone()];
        graph
            .observe(&observation, Learning::WindowOnly)
            .expect("observe");
    }
    let mut lookup = lookup_of(
        "s9@burst.example",
        "u9@example.com",
        T0 + Duration::hours(1),
    );
    lookup.clusters = vec![cluster];
    let familiarity = graph.lookup(&lookup).expect("lookup");
    assert_eq!(familiarity.windows[0].events.len(), 2);
    assert!(familiarity.windows[0].truncated);
}
