//! The Defender client against a local server that behaves like the Microsoft
//! identity platform token endpoint and Graph's `alerts_v2`.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use gatehouse_integrations::baseline::AlertBaseline;
use gatehouse_integrations::clock::ManualClock;
use gatehouse_integrations::correlate::{
    AlertIndex, CorrelationQuery, EvidenceField, IndexLimits, MessagePart,
};
use gatehouse_integrations::defender::{
    AlertPoller, AlertSeverity, AlertStatus, DefenderConfig, DefenderError, Evidence, GraphClient,
    PollCursor, ServiceSource,
};
use gatehouse_integrations::secret::SecretSource;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::datetime;
use url::Url;

const GOOD_SECRET: &str = "correct-horse";
const START: OffsetDateTime = datetime!(2024-03-03 12:00 UTC);

/// A response the mock sends instead of the normal one.
#[derive(Clone)]
struct Scripted {
    status: u16,
    retry_after: Option<&'static str>,
}

#[derive(Default)]
struct MockState {
    /// Alerts as Graph would store them.
    alerts: Vec<Value>,
    /// Whether full pages carry `@odata.nextLink`.
    next_links: bool,
    /// A next link to send once, whatever it points to.
    forced_next_link: Option<String>,
    /// Responses for the next Graph requests, before normal handling.
    scripted: VecDeque<Scripted>,
    token_expires_in: u64,
    tokens_issued: u32,
    /// Tokens that Graph now rejects with 401, as if they had expired early.
    revoked: Vec<String>,
    token_requests: u32,
    graph_requests: u32,
    graph_401s: u32,
    /// Query strings of the Graph requests, `$filter` decoded.
    queries: Vec<HashMap<String, String>>,
    missing_prefer: u32,
    token_scopes: Vec<String>,
    /// Revokes `token-1` after this many successful Graph responses.
    revoke_first_token_after: Option<u32>,
    graph_successes: u32,
}

type Shared = Arc<Mutex<MockState>>;

struct Mock {
    state: Shared,
    base: Url,
    _secret_dir: tempfile::TempDir,
    secret_path: PathBuf,
}

impl Mock {
    async fn start() -> Self {
        let state: Shared = Arc::new(Mutex::new(MockState {
            next_links: true,
            token_expires_in: 3_600,
            ..MockState::default()
        }));
        let app = Router::new()
            .route("/{tenant}/oauth2/v2.0/token", post(token))
            .route("/v1.0/security/alerts_v2", get(alerts))
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, app).await });

        let secret_dir = tempfile::tempdir().expect("temporary directory");
        let secret_path = secret_dir.path().join("client-secret");
        std::fs::write(&secret_path, format!("{GOOD_SECRET}\n")).expect("write secret");
        Self {
            state,
            base: Url::parse(&format!("http://{address}/")).expect("base URL"),
            _secret_dir: secret_dir,
            secret_path,
        }
    }

    fn config(&self, page_size: u32) -> DefenderConfig {
        let mut config = DefenderConfig::new(
            "tenant-1",
            "client-1",
            SecretSource::File(self.secret_path.clone()),
        );
        config.login_base = self.base.clone();
        config.graph_base = self.base.clone();
        config.overlap_secs = 0;
        config.limits.page_size = page_size;
        config
    }

    fn poller(&self, page_size: u32, clock: &ManualClock) -> AlertPoller {
        let config = self.config(page_size);
        let client = GraphClient::new(&config, Arc::new(clock.clone())).expect("client");
        AlertPoller::new(client, &config, PollCursor::default())
    }

    fn with<T>(&self, f: impl FnOnce(&mut MockState) -> T) -> T {
        f(&mut self.state.lock().expect("mock state"))
    }
}

async fn token(State(state): State<Shared>, body: String) -> Response {
    let mut state = state.lock().expect("mock state");
    state.token_requests += 1;
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    state
        .token_scopes
        .push(form.get("scope").cloned().unwrap_or_default());
    let valid = form.get("grant_type").map(String::as_str) == Some("client_credentials")
        && form.get("client_id").map(String::as_str) == Some("client-1")
        && form.get("client_secret").map(String::as_str) == Some(GOOD_SECRET);
    if !valid {
        let body = json!({
            "error": "invalid_client",
            "error_description": "AADSTS7000215: Invalid client secret provided.\r\nTrace ID: 0000\r\nCorrelation ID: 1111",
            "error_codes": [7000215],
        });
        return (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
    }
    state.tokens_issued += 1;
    let body = json!({
        "token_type": "Bearer",
        "expires_in": state.token_expires_in,
        "access_token": format!("token-{}", state.tokens_issued),
    });
    axum::Json(body).into_response()
}

async fn alerts(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let mut state = state.lock().expect("mock state");
    state.graph_requests += 1;
    state.queries.push(query.clone());
    if headers.get("prefer").and_then(|value| value.to_str().ok())
        != Some("include-unknown-enum-members")
    {
        state.missing_prefer += 1;
    }

    let bearer = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_owned();
    let issued = bearer
        .strip_prefix("token-")
        .and_then(|n| n.parse::<u32>().ok())
        .is_some_and(|n| n >= 1 && n <= state.tokens_issued);
    if !issued || state.revoked.contains(&bearer) {
        state.graph_401s += 1;
        return (
            StatusCode::UNAUTHORIZED,
            "{\"error\":{\"code\":\"InvalidAuthenticationToken\"}}",
        )
            .into_response();
    }

    if let Some(scripted) = state.scripted.pop_front() {
        let mut response = (
            StatusCode::from_u16(scripted.status).expect("status"),
            "busy",
        )
            .into_response();
        if let Some(retry_after) = scripted.retry_after {
            response
                .headers_mut()
                .insert("retry-after", retry_after.parse().expect("header"));
        }
        return response;
    }

    let (lower, upper) = parse_filter(query.get("$filter").map(String::as_str).unwrap_or_default());
    let top: usize = query
        .get("$top")
        .and_then(|top| top.parse().ok())
        .unwrap_or(100);
    let skip: usize = query
        .get("$skip")
        .or(query.get("$skiptoken"))
        .and_then(|skip| skip.parse().ok())
        .unwrap_or(0);

    // Graph lists the most recent alerts first; ties keep a stable order.
    let mut matching: Vec<&Value> = state
        .alerts
        .iter()
        .filter(|alert| {
            let Some(updated) = updated_at(alert) else {
                return true;
            };
            lower.is_none_or(|lower| updated >= lower) && upper.is_none_or(|upper| updated <= upper)
        })
        .collect();
    matching.sort_by(|a, b| {
        updated_at(b)
            .cmp(&updated_at(a))
            .then_with(|| a["id"].as_str().cmp(&b["id"].as_str()))
    });
    let page: Vec<Value> = matching
        .iter()
        .skip(skip)
        .take(top)
        .map(|alert| (*alert).clone())
        .collect();
    let total = matching.len();

    let mut body = json!({ "value": page });
    if let Some(link) = state.forced_next_link.take() {
        body["@odata.nextLink"] = json!(link);
    } else if state.next_links && skip + top < total {
        let mut link = Url::parse("http://placeholder/v1.0/security/alerts_v2").expect("url");
        link.set_host(
            headers
                .get("host")
                .and_then(|h| h.to_str().ok())
                .and_then(|h| h.split(':').next()),
        )
        .expect("host");
        let port = headers
            .get("host")
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.rsplit(':').next())
            .and_then(|p| p.parse().ok());
        link.set_port(port).expect("port");
        link.query_pairs_mut()
            .append_pair(
                "$filter",
                query.get("$filter").map(String::as_str).unwrap_or_default(),
            )
            .append_pair("$top", &top.to_string())
            .append_pair("$skiptoken", &(skip + top).to_string());
        body["@odata.nextLink"] = json!(link.as_str());
    }
    state.graph_successes += 1;
    if state.revoke_first_token_after == Some(state.graph_successes) {
        state.revoked.push("token-1".into());
    }
    axum::Json(body).into_response()
}

/// Returns an alert's `lastUpdateDateTime`; `None` for a malformed test item.
fn updated_at(alert: &Value) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(alert["lastUpdateDateTime"].as_str()?, &Rfc3339).ok()
}

/// Parses `lastUpdateDateTime ge X[ and lastUpdateDateTime le Y]`.
fn parse_filter(filter: &str) -> (Option<OffsetDateTime>, Option<OffsetDateTime>) {
    let mut lower = None;
    let mut upper = None;
    for clause in filter.split(" and ") {
        let parts: Vec<&str> = clause.split_whitespace().collect();
        if let [field, operator, value] = parts[..] {
            assert_eq!(field, "lastUpdateDateTime", "filter {filter}");
            let value = OffsetDateTime::parse(value, &Rfc3339).expect("filter time");
            match operator {
                "ge" => lower = Some(value),
                "le" => upper = Some(value),
                other => panic!("unexpected operator {other} in {filter}"),
            }
        }
    }
    (lower, upper)
}

fn alert(id: &str, updated: &str) -> Value {
    json!({
        "@odata.type": "#microsoft.graph.security.alert",
        "id": id,
        "status": "new",
        "severity": "medium",
        "serviceSource": "microsoftDefenderForEndpoint",
        "detectionSource": "antivirus",
        "detectorId": "detector-1",
        "title": format!("Alert {id}"),
        "category": "Malware",
        "createdDateTime": "2024-03-03T09:00:00Z",
        "lastUpdateDateTime": updated,
        "evidence": [],
    })
}

fn ids(poll: &gatehouse_integrations::defender::PollReport) -> Vec<&str> {
    poll.alerts.iter().map(|alert| alert.id.as_str()).collect()
}

#[tokio::test]
async fn next_link_pages_are_followed() {
    let mock = Mock::start().await;
    mock.with(|state| {
        for (index, minute) in [10, 11, 12, 13, 14].into_iter().enumerate() {
            state.alerts.push(alert(
                &format!("a{index}"),
                &format!("2024-03-03T10:{minute}:00Z"),
            ));
        }
    });
    let clock = ManualClock::new(START);
    let mut poller = mock.poller(2, &clock);

    let report = poller.poll().await.expect("poll");

    assert_eq!(ids(&report), ["a4", "a3", "a2", "a1", "a0"]);
    assert_eq!(report.requests, 3);
    assert!(report.complete);
    mock.with(|state| {
        assert_eq!(state.graph_requests, 3);
        assert_eq!(state.token_requests, 1);
        assert_eq!(state.missing_prefer, 0);
        assert!(
            state.queries[1].contains_key("$skiptoken"),
            "second request follows the next link"
        );
    });
    assert_eq!(
        poller.cursor().watermark,
        Some(datetime!(2024-03-03 10:14 UTC))
    );
}

#[tokio::test]
async fn shared_boundary_timestamp_loses_and_repeats_nothing() {
    let mock = Mock::start().await;
    mock.with(|state| {
        state.next_links = false;
        state
            .alerts
            .push(alert("a1", "2024-03-03T10:05:00.1234567Z"));
        state.alerts.push(alert("a2", "2024-03-03T10:04:00Z"));
        for id in ["a3", "a4", "a5"] {
            state.alerts.push(alert(id, "2024-03-03T10:03:00Z"));
        }
        state.alerts.push(alert("a6", "2024-03-03T10:02:00Z"));
        state.alerts.push(alert("a7", "2024-03-03T10:01:00Z"));
    });
    let clock = ManualClock::new(START);
    let mut poller = mock.poller(3, &clock);

    let report = poller.poll().await.expect("poll");

    assert_eq!(ids(&report), ["a1", "a2", "a3", "a4", "a5", "a6", "a7"]);
    assert_eq!(report.duplicates, 0);
    assert_eq!(report.requests, 3);
    mock.with(|state| {
        let skips: Vec<Option<&str>> = state
            .queries
            .iter()
            .map(|q| q.get("$skip").map(String::as_str))
            .collect();
        assert_eq!(skips, [None, Some("1"), Some("1")]);
        assert!(
            state.queries[1]["$filter"].ends_with("le 2024-03-03T10:03:00Z"),
            "{}",
            state.queries[1]["$filter"]
        );
        assert!(state.queries.iter().all(|q| q["$top"] == "3"));
    });
}

#[tokio::test]
async fn page_of_one_timestamp_grows_skip() {
    let mock = Mock::start().await;
    mock.with(|state| {
        state.next_links = false;
        state.alerts.push(alert("a1", "2024-03-03T10:05:00Z"));
        for id in ["a2", "a3", "a4", "a5"] {
            state.alerts.push(alert(id, "2024-03-03T10:03:00Z"));
        }
        state.alerts.push(alert("a6", "2024-03-03T10:01:00Z"));
    });
    let clock = ManualClock::new(START);
    let mut poller = mock.poller(2, &clock);

    let report = poller.poll().await.expect("poll");

    assert_eq!(ids(&report), ["a1", "a2", "a3", "a4", "a5", "a6"]);
    assert_eq!(report.requests, 4);
    mock.with(|state| {
        let skips: Vec<Option<&str>> = state
            .queries
            .iter()
            .map(|q| q.get("$skip").map(String::as_str))
            .collect();
        assert_eq!(skips, [None, Some("1"), Some("3"), Some("1")]);
    });
}

#[tokio::test]
async fn second_poll_reads_only_changes() {
    let mock = Mock::start().await;
    mock.with(|state| {
        state.alerts.push(alert("a1", "2024-03-03T10:01:00Z"));
        state.alerts.push(alert("a2", "2024-03-03T10:02:00Z"));
    });
    let clock = ManualClock::new(START);
    let mut poller = mock.poller(10, &clock);
    let first = poller.poll().await.expect("first poll");
    assert_eq!(ids(&first), ["a2", "a1"]);

    // a1 is updated after it was first read; a3 is new.
    mock.with(|state| {
        state.alerts[0]["lastUpdateDateTime"] = json!("2024-03-03T10:30:00Z");
        state.alerts[0]["severity"] = json!("high");
        state.alerts.push(alert("a3", "2024-03-03T10:20:00Z"));
    });
    let second = poller.poll().await.expect("second poll");

    assert_eq!(ids(&second), ["a1", "a3"]);
    assert_eq!(second.alerts[0].severity, AlertSeverity::High);
    assert_eq!(second.requests, 1);
    assert_eq!(
        second.duplicates, 1,
        "a2 sits on the watermark and is read again"
    );
    mock.with(|state| {
        assert_eq!(
            state.queries[1]["$filter"],
            "lastUpdateDateTime ge 2024-03-03T10:02:00Z"
        );
    });

    // Nothing changed: the boundary alert comes back and is dropped.
    let third = poller.poll().await.expect("third poll");
    assert!(third.alerts.is_empty(), "{:?}", ids(&third));
    assert_eq!(third.duplicates, 1);
    assert_eq!(third.requests, 1);
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let mock = Mock::start().await;
    mock.with(|state| {
        state.alerts.push(alert("a1", "2024-03-03T10:01:00Z"));
        state.scripted.push_back(Scripted {
            status: 429,
            retry_after: Some("7"),
        });
        state.scripted.push_back(Scripted {
            status: 503,
            retry_after: Some("Sun, 03 Mar 2024 12:00:37 GMT"),
        });
    });
    let clock = ManualClock::new(START);
    let mut poller = mock.poller(10, &clock);

    let report = poller.poll().await.expect("poll");

    assert_eq!(ids(&report), ["a1"]);
    assert_eq!(report.requests, 3);
    // The HTTP date is 37 s after the start and 7 s have passed: 30 s remain.
    assert_eq!(
        clock.sleeps(),
        [Duration::from_secs(7), Duration::from_secs(30)]
    );
    mock.with(|state| assert_eq!(state.graph_requests, 3));
}

#[tokio::test]
async fn throttling_without_retry_after_backs_off() {
    let mock = Mock::start().await;
    mock.with(|state| {
        state.alerts.push(alert("a1", "2024-03-03T10:01:00Z"));
        for _ in 0..3 {
            state.scripted.push_back(Scripted {
                status: 429,
                retry_after: None,
            });
        }
    });
    let clock = ManualClock::new(START);
    let mut poller = mock.poller(10, &clock);

    let report = poller.poll().await.expect("poll");

    assert_eq!(ids(&report), ["a1"]);
    assert_eq!(report.requests, 4);
    let sleeps = clock.sleeps();
    assert_eq!(sleeps.len(), 3);
    // Default base 1 s doubling, each delay jittered within its upper half.
    for (sleep, ceiling_ms) in sleeps.iter().zip([1_000, 2_000, 4_000]) {
        assert!(
            *sleep >= Duration::from_millis(ceiling_ms / 2),
            "{sleeps:?}"
        );
        assert!(*sleep <= Duration::from_millis(ceiling_ms), "{sleeps:?}");
    }
}

#[tokio::test]
async fn unavailable_graph_gives_up_after_max_attempts() {
    let mock = Mock::start().await;
    mock.with(|state| {
        for _ in 0..10 {
            state.scripted.push_back(Scripted {
                status: 503,
                retry_after: Some("1"),
            });
        }
    });
    let clock = ManualClock::new(START);
    let mut poller = mock.poller(10, &clock);

    let error = poller.poll().await.expect_err("Graph stays unavailable");

    assert!(
        matches!(
            error,
            DefenderError::RetriesExhausted {
                status: 503,
                attempts: 5,
                ..
            }
        ),
        "{error}"
    );
    assert!(error.is_transient());
    mock.with(|state| assert_eq!(state.graph_requests, 5));
    assert_eq!(
        poller.cursor().watermark,
        None,
        "a failed poll leaves the cursor"
    );
}

#[tokio::test]
async fn bad_secret_is_not_retried() {
    let mock = Mock::start().await;
    std::fs::write(&mock.secret_path, "wrong-secret").expect("write secret");
    let clock = ManualClock::new(START);
    let mut poller = mock.poller(10, &clock);

    let error = poller.poll().await.expect_err("invalid_client");

    assert!(
        matches!(&error, DefenderError::Credentials { status: 401, code, .. } if code == "invalid_client"),
        "{error}"
    );
    assert!(!error.is_transient());
    let message = error.to_string();
    assert!(message.contains("AADSTS7000215"), "{message}");
    assert!(message.contains("client secret"), "{message}");
    assert!(!message.contains("Trace ID"), "{message}");
    assert!(!message.contains("wrong-secret"), "{message}");
    mock.with(|state| {
        assert_eq!(state.token_requests, 1);
        assert_eq!(state.graph_requests, 0);
    });
    assert!(clock.sleeps().is_empty());
}

#[tokio::test]
async fn token_renewed_before_expiry() {
    let mock = Mock::start().await;
    mock.with(|state| state.alerts.push(alert("a1", "2024-03-03T10:01:00Z")));
    let clock = ManualClock::new(START);
    let mut poller = mock.poller(10, &clock);
    poller.poll().await.expect("first poll");

    // 3,400 s into a 3,600 s token is inside the 300 s refresh margin.
    clock.advance(Duration::from_secs(3_400));
    poller.poll().await.expect("second poll");

    mock.with(|state| {
        assert_eq!(state.token_requests, 2);
        assert_eq!(state.graph_401s, 0);
        assert_eq!(state.graph_requests, 2);
        assert!(state.token_scopes.iter().all(
            |scope| scope == &format!("{}/.default", mock.base.origin().ascii_serialization())
        ));
    });
}

#[tokio::test]
async fn token_kept_while_valid() {
    let mock = Mock::start().await;
    let clock = ManualClock::new(START);
    let mut poller = mock.poller(10, &clock);
    poller.poll().await.expect("first poll");
    clock.advance(Duration::from_secs(3_000));
    poller.poll().await.expect("second poll");
    mock.with(|state| assert_eq!(state.token_requests, 1));
}

#[tokio::test]
async fn token_rejected_mid_run_is_renewed_once() {
    let mock = Mock::start().await;
    mock.with(|state| {
        state.next_links = true;
        for index in 0..4 {
            state.alerts.push(alert(
                &format!("a{index}"),
                &format!("2024-03-03T10:0{index}:00Z"),
            ));
        }
    });
    let clock = ManualClock::new(START);
    let mut poller = mock.poller(2, &clock);
    // The first token expires on Graph's side after the first page.
    mock.with(|state| state.revoke_first_token_after = Some(1));

    let report = poller.poll().await.expect("poll");

    assert_eq!(ids(&report), ["a3", "a2", "a1", "a0"]);
    mock.with(|state| {
        assert_eq!(state.token_requests, 2);
        assert_eq!(state.graph_401s, 1);
        assert_eq!(state.graph_requests, 3);
    });
}

#[tokio::test]
async fn persistent_401_fails_after_one_renewal() {
    let mock = Mock::start().await;
    mock.with(|state| {
        state.revoked = (1..=5).map(|n| format!("token-{n}")).collect();
    });
    let clock = ManualClock::new(START);
    let mut poller = mock.poller(10, &clock);

    let error = poller.poll().await.expect_err("401 twice");

    assert!(
        matches!(error, DefenderError::Unauthorized { .. }),
        "{error}"
    );
    assert!(!error.is_transient());
    mock.with(|state| {
        assert_eq!(state.token_requests, 2);
        assert_eq!(state.graph_requests, 2);
    });
}

#[tokio::test]
async fn unknown_enum_values_are_kept() {
    let mock = Mock::start().await;
    mock.with(|state| {
        let mut odd = alert("a1", "2024-03-03T10:01:00Z");
        odd["status"] = json!("awaitingCustomer");
        odd["severity"] = json!("critical");
        odd["serviceSource"] = json!("microsoftDefenderForSomethingNew");
        odd["classification"] = json!(null);
        odd["evidence"] = json!([
            {"@odata.type": "#microsoft.graph.security.quantumEvidence", "verdict": "entangled", "roles": ["observer"]},
            {"@odata.type": "#microsoft.graph.security.urlEvidence", "verdict": "malicious", "url": "https://evil.example/x"},
        ]);
        state.alerts.push(odd);
        state.alerts.push(json!({"id": "broken", "severity": "high"}));
    });
    let clock = ManualClock::new(START);
    let mut poller = mock.poller(10, &clock);

    let report = poller.poll().await;

    let report = report.expect("poll");
    assert_eq!(ids(&report), ["a1"]);
    assert_eq!(report.malformed, 1, "the item without lastUpdateDateTime");
    let odd = &report.alerts[0];
    assert_eq!(odd.status, AlertStatus::Other("awaitingCustomer".into()));
    assert!(odd.status.is_active());
    assert_eq!(odd.severity, AlertSeverity::Other("critical".into()));
    assert_eq!(odd.severity.rank(), None);
    assert_eq!(
        odd.service_source,
        ServiceSource::Other("microsoftDefenderForSomethingNew".into())
    );
    assert_eq!(
        odd.service_source.to_string(),
        "microsoftDefenderForSomethingNew"
    );
    assert!(
        matches!(&odd.evidence[0], Evidence::Other { odata_type, .. } if odata_type.ends_with("quantumEvidence"))
    );
    assert!(
        matches!(&odd.evidence[1], Evidence::Url(url) if url.url.as_deref() == Some("https://evil.example/x"))
    );
}

#[tokio::test]
async fn foreign_next_link_is_not_followed() {
    let mock = Mock::start().await;
    mock.with(|state| {
        state.alerts.push(alert("a1", "2024-03-03T10:01:00Z"));
        state.forced_next_link =
            Some("http://127.0.0.2:9/v1.0/security/alerts_v2?$skiptoken=1".into());
    });
    let clock = ManualClock::new(START);
    let mut poller = mock.poller(10, &clock);

    let error = poller.poll().await.expect_err("foreign link");

    assert!(
        matches!(error, DefenderError::ForeignNextLink { .. }),
        "{error}"
    );
    mock.with(|state| assert_eq!(state.graph_requests, 1));
}

/// One Defender alert whose `analyzedMessageEvidence` names a campaign
/// recipient: messages to that recipient find it, with its id, title,
/// severity and service source.
#[tokio::test]
async fn reference_scenario_alert_raises_recipient() {
    let mock = Mock::start().await;
    mock.with(|state| {
        state.alerts.push(json!({
            "id": "da638000000000000000_1",
            "status": "new",
            "severity": "high",
            "serviceSource": "microsoftDefenderForOffice365",
            "detectionSource": "microsoftDefenderForOffice365",
            "detectorId": "phish-zap",
            "title": "Email messages containing malicious URL removed after delivery",
            "category": "InitialAccess",
            "createdDateTime": "2024-03-03T10:00:00Z",
            "lastUpdateDateTime": "2024-03-03T10:00:05Z",
            "evidence": [{
                "@odata.type": "#microsoft.graph.security.analyzedMessageEvidence",
                "verdict": "malicious",
                "roles": [],
                "recipientEmailAddress": "Chen.Wei@example.com",
                "internetMessageId": "<20240303.campaign@mailer.example.net>",
                "p1Sender": {"emailAddress": "payroll@mailer.example.net", "displayName": "Payroll", "domainName": "mailer.example.net"},
                "urls": ["https://login-example.top/verify"],
                "deliveryAction": "delivered",
            }],
        }));
    });
    let clock = ManualClock::new(START);
    let mut poller = mock.poller(100, &clock);
    let report = poller.poll().await.expect("poll");
    let mut index = AlertIndex::new(AlertBaseline::default(), IndexLimits::default());
    let summary = index.ingest(report.alerts);
    assert_eq!(summary.added, ["da638000000000000000_1"]);

    let query = CorrelationQuery {
        recipients: vec!["chen.wei@example.com".into()],
        sender: Some("someone@partner.example".into()),
        link_hosts: vec![],
        message_id: Some("<other@partner.example>".into()),
    };
    let matches = index.query(&query);

    assert_eq!(matches.len(), 1);
    let found = &matches[0];
    assert_eq!(found.alert_id, "da638000000000000000_1");
    assert_eq!(
        found.title,
        "Email messages containing malicious URL removed after delivery"
    );
    assert_eq!(found.severity, AlertSeverity::High);
    assert_eq!(
        found.service_source,
        ServiceSource::MicrosoftDefenderForOffice365
    );
    assert_eq!(found.matched.len(), 1);
    assert_eq!(found.matched[0].part, MessagePart::Recipient);
    assert_eq!(found.matched[0].field, EvidenceField::MessageRecipient);
    assert!(found.novelty.first_seen_category);
    assert!(
        found.evidence().contains("recipient chen.wei@example.com"),
        "{}",
        found.evidence()
    );

    let unrelated = CorrelationQuery {
        recipients: vec!["li.na@example.com".into()],
        ..CorrelationQuery::default()
    };
    assert!(index.query(&unrelated).is_empty());
    assert_eq!(
        index
            .alerts_naming_message("20240303.campaign@mailer.example.net")
            .len(),
        1
    );
}

#[tokio::test]
async fn access_check_reads_one_alert() {
    let mock = Mock::start().await;
    mock.with(|state| state.alerts.push(alert("a1", "2024-03-03T10:01:00Z")));
    let clock = ManualClock::new(START);
    let poller = mock.poller(10, &clock);

    poller.client().check_alerts_access().await.expect("access");

    mock.with(|state| {
        assert_eq!(state.graph_requests, 1);
        assert_eq!(state.queries[0].get("$top").map(String::as_str), Some("1"));
    });
}

#[tokio::test]
async fn forbidden_names_permission() {
    let mock = Mock::start().await;
    mock.with(|state| {
        state.scripted.push_back(Scripted {
            status: 403,
            retry_after: None,
        })
    });
    let clock = ManualClock::new(START);
    let poller = mock.poller(10, &clock);

    let error = poller
        .client()
        .check_alerts_access()
        .await
        .expect_err("403");

    assert!(
        matches!(error, DefenderError::Status { status: 403, .. }),
        "{error}"
    );
    assert!(
        error.to_string().contains("SecurityAlert.Read.All"),
        "{error}"
    );
    assert!(!error.is_transient());
    mock.with(|state| assert_eq!(state.graph_requests, 1));
}
