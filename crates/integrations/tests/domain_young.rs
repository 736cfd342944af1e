//! `link.domain_young` through the engine, with registration dates from a
//! local server on 127.0.0.1 that behaves like an RDAP server.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use gatehouse_engine::{Analysis, Engine, Envelope, Limits, Outcome, When};
use gatehouse_graph::RedbGraph;
use gatehouse_integrations::clock::SystemClock;
use gatehouse_integrations::enrich::GatehouseEnrichment;
use gatehouse_integrations::rdap::{DomainAgeChecker, RdapConfig};
use gatehouse_policy::Policy;
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::datetime;

/// When the test messages arrive.
const NOW: OffsetDateTime = datetime!(2026-11-02 08:00 UTC);

/// Every path requested from the mock, with its `Host` header.
type RequestLog = Arc<Mutex<Vec<(String, String)>>>;

struct Registry {
    /// Registration dates by domain.
    registered: HashMap<String, OffsetDateTime>,
    /// Domains whose response takes this long.
    slow: HashMap<String, Duration>,
}

async fn record(State(log): State<RequestLog>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get("host")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    log.lock()
        .expect("request log")
        .push((host, request.uri().to_string()));
    next.run(request).await
}

async fn domain(State(registry): State<Arc<Registry>>, Path(name): Path<String>) -> Response {
    if let Some(delay) = registry.slow.get(&name) {
        tokio::time::sleep(*delay).await;
    }
    match registry.registered.get(&name) {
        Some(date) => axum::Json(json!({
            "objectClassName": "domain",
            "ldhName": name,
            "events": [{
                "eventAction": "registration",
                "eventDate": date.format(&Rfc3339).expect("RFC 3339 date"),
            }],
        }))
        .into_response(),
        None => axum::http::StatusCode::NOT_FOUND.into_response(),
    }
}

struct Setup {
    engine: Engine,
    log: RequestLog,
    port: u16,
    _runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

fn setup(timeout_ms: u64) -> Setup {
    let registry = Registry {
        registered: HashMap::from([
            ("young.example".to_owned(), NOW - time::Duration::days(5)),
            (
                "newsender.example".to_owned(),
                datetime!(2010-05-01 00:00 UTC),
            ),
            (
                "partner.example".to_owned(),
                datetime!(2001-01-01 00:00 UTC),
            ),
            ("slow.example".to_owned(), NOW - time::Duration::days(1)),
        ]),
        slow: HashMap::from([("slow.example".to_owned(), Duration::from_secs(5))]),
    };
    let log: RequestLog = Arc::default();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let app = Router::new()
        .route("/rdap/domain/{name}", get(domain))
        .with_state(Arc::new(registry))
        .layer(middleware::from_fn_with_state(Arc::clone(&log), record));
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind the mock");
    let port = listener.local_addr().expect("mock address").port();
    runtime.spawn(async move { axum::serve(listener, app).await });

    let mut config = RdapConfig {
        enabled: true,
        base: Some(url::Url::parse(&format!("http://127.0.0.1:{port}/rdap/")).expect("URL")),
        ..RdapConfig::default()
    };
    config.limits.timeout_ms = timeout_ms;
    let checker = DomainAgeChecker::with_memory_cache(config.clone(), Arc::new(SystemClock))
        .expect("checker");
    let enrichment = GatehouseEnrichment::new().with_rdap(
        Arc::new(checker),
        runtime.handle().clone(),
        &config.limits,
    );

    let dir = tempfile::tempdir().expect("temporary directory");
    let graph = Arc::new(RedbGraph::open(&dir.path().join("graph.redb")).expect("open graph"));
    let engine = Engine::new(
        Arc::new(Policy::embedded_default()),
        graph,
        Limits::default(),
        vec!["example.com".to_owned()],
    )
    .with_enrichment(Arc::new(enrichment));

    // History: the partner and its links are known.
    let history = message(
        "anna@partner.example",
        "<h1@partner.example>",
        "https://docs.partner.example/agenda",
    );
    let analysis = analyse(
        &engine,
        "anna@partner.example",
        &history,
        NOW - time::Duration::days(60),
    );
    engine
        .learn(&analysis, Outcome::Delivered)
        .expect("learn history");
    log.lock().expect("request log").clear();
    Setup {
        engine,
        log,
        port,
        _runtime: runtime,
        _dir: dir,
    }
}

fn message(from: &str, message_id: &str, link: &str) -> Vec<u8> {
    format!(
        "From: <{from}>\r\nTo: <bob@example.com>\r\nSubject: documents\r\nMessage-ID: {message_id}\r\nDate: Mon, 02 Nov 2026 08:00:00 +0000\r\n\r\nPlease see {link} today.\r\n"
    )
    .into_bytes()
}

fn analyse(engine: &Engine, from: &str, raw: &[u8], at: OffsetDateTime) -> Analysis {
    let envelope = Envelope {
        mail_from: from.to_owned(),
        rcpt_to: vec!["bob@example.com".to_owned()],
        ..Envelope::default()
    };
    engine.analyse(&envelope, raw, When::At(at))
}

fn young_evidence(analysis: &Analysis) -> Option<&str> {
    analysis
        .verdict
        .signals
        .iter()
        .find(|signal| signal.id == "link.domain_young")
        .map(|signal| signal.evidence.as_str())
}

fn requested(setup: &Setup) -> Vec<String> {
    setup
        .log
        .lock()
        .expect("request log")
        .iter()
        .map(|(_, path)| path.clone())
        .collect()
}

#[test]
fn young_link_domain_fires() {
    let setup = setup(2_000);
    let raw = message(
        "mallory@newsender.example",
        "<m1@newsender.example>",
        "https://login.young.example/reset?user=bob&token=s3cret",
    );

    let analysis = analyse(&setup.engine, "mallory@newsender.example", &raw, NOW);

    let evidence = young_evidence(&analysis).expect("link.domain_young fired");
    assert!(evidence.contains("young.example"), "{evidence}");
    assert!(evidence.contains("5 days before"), "{evidence}");
    assert!(!evidence.contains("newsender.example"), "{evidence}");
    let mut paths = requested(&setup);
    paths.sort();
    assert_eq!(
        paths,
        vec![
            "/rdap/domain/newsender.example",
            "/rdap/domain/young.example"
        ]
    );
}

#[test]
fn known_domain_is_never_looked_up() {
    let setup = setup(2_000);
    let raw = message(
        "anna@partner.example",
        "<m2@partner.example>",
        "https://docs.partner.example/minutes?id=7",
    );

    let analysis = analyse(&setup.engine, "anna@partner.example", &raw, NOW);

    assert_eq!(young_evidence(&analysis), None);
    assert!(requested(&setup).is_empty(), "{:?}", requested(&setup));
}

#[test]
fn ip_link_is_never_looked_up() {
    let setup = setup(2_000);
    let raw = message(
        "anna@partner.example",
        "<m3@partner.example>",
        "http://192.0.2.44/login.php",
    );

    let analysis = analyse(&setup.engine, "anna@partner.example", &raw, NOW);

    assert_eq!(young_evidence(&analysis), None);
    assert!(requested(&setup).is_empty(), "{:?}", requested(&setup));
}

#[test]
fn young_domain_is_looked_up_once() {
    let setup = setup(2_000);
    for index in 0..3 {
        let raw = message(
            "mallory@newsender.example",
            &format!("<r{index}@newsender.example>"),
            "https://login.young.example/reset",
        );
        let analysis = analyse(&setup.engine, "mallory@newsender.example", &raw, NOW);
        assert!(young_evidence(&analysis).is_some(), "message {index}");
    }

    let young = requested(&setup)
        .iter()
        .filter(|path| path.ends_with("/young.example"))
        .count();
    assert_eq!(young, 1, "look-ups of young.example");
}

#[test]
fn slow_server_does_not_hold_analysis() {
    let setup = setup(300);
    let raw = message(
        "mallory@newsender.example",
        "<s1@newsender.example>",
        "https://slow.example/x",
    );

    let started = Instant::now();
    let analysis = analyse(&setup.engine, "mallory@newsender.example", &raw, NOW);
    let elapsed = started.elapsed();

    assert_eq!(young_evidence(&analysis), None);
    // The budget is 300 ms, and the mock responds after 5 s.
    assert!(
        elapsed < Duration::from_secs(3),
        "analysis took {elapsed:?}"
    );
}

#[test]
fn requests_go_only_to_mock() {
    let setup = setup(2_000);
    let raw = message(
        "mallory@newsender.example",
        "<h2@newsender.example>",
        "https://login.young.example/reset https://docs.partner.example/a http://192.0.2.44/x",
    );

    analyse(&setup.engine, "mallory@newsender.example", &raw, NOW);

    let expected_host = format!("127.0.0.1:{}", setup.port);
    let log = setup.log.lock().expect("request log").clone();
    assert!(!log.is_empty(), "no request was sent");
    for (host, path) in &log {
        assert_eq!(host, &expected_host, "{path}");
        assert!(path.starts_with("/rdap/domain/"), "{path}");
        assert!(!path.contains('?'), "{path}");
        assert!(!path.contains("reset"), "{path}");
    }
}
