//! Domain age against a local RDAP server.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use gatehouse_integrations::clock::ManualClock;
use gatehouse_integrations::rdap::{DomainAge, DomainAgeChecker, RdapConfig, RdapError};
use serde_json::json;
use time::macros::datetime;
use url::Url;

#[derive(Default)]
struct Registry {
    /// Domains requested, in order.
    requests: Mutex<Vec<String>>,
}

async fn domain(State(registry): State<Arc<Registry>>, Path(name): Path<String>) -> Response {
    registry
        .requests
        .lock()
        .expect("requests")
        .push(name.clone());
    match name.as_str() {
        "fresh-login.example" => rdap_domain("2024-02-20T09:00:00Z"),
        "old-bank.example" => rdap_domain("1997-09-15T04:00:00Z"),
        "no-events.example" => {
            axum::Json(json!({"objectClassName": "domain", "events": []})).into_response()
        }
        "moved.example" => (
            StatusCode::FOUND,
            [("location", "http://127.0.0.2:9/domain/moved.example")],
        )
            .into_response(),
        "slow.example" => {
            tokio::time::sleep(Duration::from_millis(1_500)).await;
            rdap_domain("2024-02-20T09:00:00Z")
        }
        "busy.example" => (StatusCode::SERVICE_UNAVAILABLE, "busy").into_response(),
        _ => (StatusCode::NOT_FOUND, "{\"errorCode\":404}").into_response(),
    }
}

fn rdap_domain(registered: &str) -> Response {
    let body = json!({
        "objectClassName": "domain",
        "ldhName": "EXAMPLE",
        "events": [
            {"eventAction": "expiration", "eventDate": "2030-01-01T00:00:00Z"},
            {"eventAction": "registration", "eventDate": registered},
        ],
    });
    (
        [("content-type", "application/rdap+json")],
        body.to_string(),
    )
        .into_response()
}

async fn start() -> (Arc<Registry>, Url) {
    let registry = Arc::new(Registry::default());
    let app = Router::new()
        .route("/rdap/domain/{name}", get(domain))
        .with_state(Arc::clone(&registry));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (
        registry,
        Url::parse(&format!("http://{address}/rdap/")).expect("url"),
    )
}

fn checker(base: Url, clock: &ManualClock) -> DomainAgeChecker {
    let mut config = RdapConfig {
        enabled: true,
        tld_bases: BTreeMap::from([("example".to_owned(), base)]),
        ..RdapConfig::default()
    };
    config.limits.timeout_ms = 300;
    DomainAgeChecker::with_memory_cache(config, Arc::new(clock.clone())).expect("checker")
}

const THIRTY_DAYS: Duration = Duration::from_secs(30 * 86_400);

fn requests(registry: &Registry) -> Vec<String> {
    registry.requests.lock().expect("requests").clone()
}

#[tokio::test]
async fn young_domain_is_young() {
    let (registry, base) = start().await;
    let clock = ManualClock::new(datetime!(2024-03-03 12:00 UTC));
    let checker = checker(base, &clock);

    let age = checker
        .check("https-login.fresh-login.example", THIRTY_DAYS)
        .await
        .expect("look-up");

    let DomainAge::Young { registered, age } = age else {
        panic!("expected young, got {age:?}");
    };
    assert_eq!(registered, datetime!(2024-02-20 09:00 UTC));
    assert_eq!(age.whole_days(), 12);
    assert_eq!(requests(&registry), ["fresh-login.example"]);
}

#[tokio::test]
async fn old_domain_is_established_and_cached() {
    let (registry, base) = start().await;
    let clock = ManualClock::new(datetime!(2024-03-03 12:00 UTC));
    let checker = checker(base, &clock);

    for host in [
        "old-bank.example",
        "www.old-bank.example",
        "OLD-BANK.example.",
    ] {
        let age = checker.check(host, THIRTY_DAYS).await.expect("look-up");
        assert_eq!(
            age,
            DomainAge::Established {
                registered: datetime!(1997-09-15 04:00 UTC)
            },
            "host {host}"
        );
    }
    assert_eq!(
        requests(&registry),
        ["old-bank.example"],
        "one request for three hosts"
    );

    // After the cache period the domain is looked up again.
    clock.advance(Duration::from_secs(31 * 86_400));
    checker
        .check("old-bank.example", THIRTY_DAYS)
        .await
        .expect("look-up");
    assert_eq!(requests(&registry).len(), 2);
}

#[tokio::test]
async fn unknown_and_dateless_domains_are_unknown() {
    let (registry, base) = start().await;
    let clock = ManualClock::new(datetime!(2024-03-03 12:00 UTC));
    let checker = checker(base, &clock);

    assert_eq!(
        checker
            .check("never-registered.example", THIRTY_DAYS)
            .await
            .expect("404"),
        DomainAge::Unknown
    );
    assert_eq!(
        checker
            .check("no-events.example", THIRTY_DAYS)
            .await
            .expect("no events"),
        DomainAge::Unknown
    );
    // Both results are cached for the negative period.
    checker
        .check("never-registered.example", THIRTY_DAYS)
        .await
        .expect("cached");
    assert_eq!(requests(&registry).len(), 2);
}

#[tokio::test]
async fn redirect_is_not_followed() {
    let (registry, base) = start().await;
    let clock = ManualClock::new(datetime!(2024-03-03 12:00 UTC));
    let checker = checker(base, &clock);

    let error = checker
        .check("moved.example", THIRTY_DAYS)
        .await
        .expect_err("redirect");

    assert!(
        matches!(&error, RdapError::Redirect { location, .. } if location.contains("127.0.0.2")),
        "{error}"
    );
    assert_eq!(requests(&registry), ["moved.example"]);
}

#[tokio::test]
async fn slow_server_times_out() {
    let (_registry, base) = start().await;
    let clock = ManualClock::new(datetime!(2024-03-03 12:00 UTC));
    let checker = checker(base, &clock);

    let started = std::time::Instant::now();
    let error = checker
        .check("slow.example", THIRTY_DAYS)
        .await
        .expect_err("timeout");

    assert!(matches!(error, RdapError::Timeout { .. }), "{error}");
    assert!(
        started.elapsed() < Duration::from_millis(1_200),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn failed_lookup_is_not_repeated_at_once() {
    let (registry, base) = start().await;
    let clock = ManualClock::new(datetime!(2024-03-03 12:00 UTC));
    let checker = checker(base, &clock);

    let error = checker
        .check("busy.example", THIRTY_DAYS)
        .await
        .expect_err("503");
    assert!(error.is_transient(), "{error}");
    let again = checker
        .check("busy.example", THIRTY_DAYS)
        .await
        .expect("negative cache");
    assert_eq!(again, DomainAge::Unknown);
    assert_eq!(requests(&registry).len(), 1);

    clock.advance(Duration::from_secs(61 * 60));
    checker
        .check("busy.example", THIRTY_DAYS)
        .await
        .expect_err("503 again");
    assert_eq!(requests(&registry).len(), 2);
}

#[tokio::test]
async fn hosts_without_domain_are_never_sent() {
    let (registry, base) = start().await;
    let clock = ManualClock::new(datetime!(2024-03-03 12:00 UTC));
    let checker = checker(base, &clock);

    for host in ["192.0.2.7", "[2001:db8::1]", "example", "a b.example"] {
        let error = checker
            .check(host, THIRTY_DAYS)
            .await
            .expect_err("not a domain");
        assert!(
            matches!(error, RdapError::NotADomain { .. }),
            "{host}: {error}"
        );
    }
    let error = checker
        .check("phish.top", THIRTY_DAYS)
        .await
        .expect_err("no server for .top");
    assert!(matches!(error, RdapError::NoServer { .. }), "{error}");
    assert!(requests(&registry).is_empty());
}

#[tokio::test]
async fn disabled_checker_contacts_nothing() {
    let (registry, base) = start().await;
    let clock = ManualClock::new(datetime!(2024-03-03 12:00 UTC));
    let config = RdapConfig {
        enabled: false,
        base: Some(base),
        ..RdapConfig::default()
    };
    let checker = DomainAgeChecker::with_memory_cache(config, Arc::new(clock)).expect("checker");

    let age = checker
        .check("fresh-login.example", THIRTY_DAYS)
        .await
        .expect("disabled");

    assert_eq!(age, DomainAge::Unknown);
    assert!(requests(&registry).is_empty());
}
