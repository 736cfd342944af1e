//! The reference scenario with one Defender alert, read from a local server
//! on 127.0.0.1 that behaves like the token endpoint and Graph's `alerts_v2`.
//!
//! The alert carries `analyzedMessageEvidence` naming a campaign recipient.
//! The scenario is judged twice in manifest order, without and with the
//! alert index, and the two runs are compared message by message.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use gatehouse_engine::{Action, Engine, Enrichment, Envelope, Limits, Outcome, Verdict, When};
use gatehouse_graph::RedbGraph;
use gatehouse_integrations::baseline::{AlertBaseline, BaselineLimits, NoveltyWeights};
use gatehouse_integrations::clock::SystemClock;
use gatehouse_integrations::correlate::{AlertIndex, IndexLimits};
use gatehouse_integrations::defender::{AlertPoller, DefenderConfig, GraphClient, PollCursor};
use gatehouse_integrations::enrich::GatehouseEnrichment;
use gatehouse_integrations::secret::SecretSource;
use gatehouse_policy::Policy;
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

/// The campaign recipient the alert names. The scenario sends this person
/// one campaign message and three inbound live messages.
const ALERTED: &str = "yong.zhang@example.com";
const ALERT_ID: &str = "da638612345678901234_-1234567890";

#[derive(Debug, Deserialize)]
struct Entry {
    file: String,
    phase: String,
    mail_from: String,
    rcpt_to: Vec<String>,
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

/// Every request the mock received: method, `Host` header and path.
type RequestLog = Arc<Mutex<Vec<(String, String, String)>>>;

async fn record(State(log): State<RequestLog>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get("host")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    log.lock().expect("request log").push((
        request.method().to_string(),
        host,
        request.uri().path().to_owned(),
    ));
    next.run(request).await
}

async fn token() -> Response {
    axum::Json(json!({"token_type": "Bearer", "expires_in": 3600, "access_token": "token-1"}))
        .into_response()
}

async fn alerts(State(alerts): State<Arc<Value>>) -> Response {
    axum::Json(json!({"value": [alerts.as_ref()]})).into_response()
}

/// Returns one alert as Graph sends it: a phishing mail reported for the
/// recipient.
fn alert(message_id: &str) -> Value {
    json!({
        "id": ALERT_ID,
        "providerAlertId": "provider-1",
        "status": "new",
        "severity": "high",
        "classification": null,
        "determination": null,
        "serviceSource": "microsoftDefenderForOffice365",
        "detectionSource": "microsoftDefenderForOffice365",
        "detectorId": "phish-zap",
        "title": "Email messages containing malicious URL removed after delivery",
        "category": "InitialAccess",
        "createdDateTime": "2026-11-02T03:00:00Z",
        "lastUpdateDateTime": "2026-11-02T03:05:00Z",
        "evidence": [{
            "@odata.type": "#microsoft.graph.security.analyzedMessageEvidence",
            "verdict": "malicious",
            "roles": [],
            "recipientEmailAddress": ALERTED,
            "internetMessageId": message_id,
            "subject": "tax refund",
            "p1Sender": {"emailAddress": "38155@brand.example"}
        }]
    })
}

/// Starts the mock on 127.0.0.1 and returns its base URL and request log.
async fn start_mock(alert: Value) -> (url::Url, RequestLog) {
    let log: RequestLog = Arc::default();
    let app = Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .route(
            "/v1.0/security/alerts_v2",
            get(alerts).with_state(Arc::new(alert)),
        )
        .layer(middleware::from_fn_with_state(Arc::clone(&log), record));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the mock");
    let address = listener.local_addr().expect("mock address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    let base = url::Url::parse(&format!("http://{address}/")).expect("mock URL");
    (base, log)
}

/// Reads the alerts from the mock into a new index, as the gateway's poll
/// task does.
fn poll_alerts(base: &url::Url, secret_dir: &Path) -> AlertIndex {
    let secret = secret_dir.join("client-secret");
    std::fs::write(&secret, "secret\n").expect("write secret");
    let mut config = DefenderConfig::new("tenant-1", "client-1", SecretSource::File(secret));
    config.login_base = base.clone();
    config.graph_base = base.clone();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let clock = Arc::new(SystemClock);
    let client = GraphClient::new(&config, clock).expect("client");
    let mut poller = AlertPoller::new(client, &config, PollCursor::default());
    let report = runtime.block_on(poller.poll()).expect("poll succeeds");
    let mut index = AlertIndex::new(
        AlertBaseline::new(NoveltyWeights::default(), BaselineLimits::default()),
        IndexLimits::default(),
    );
    index.ingest(report.alerts);
    index
}

/// Judges the scenario in manifest order and returns each live and campaign
/// verdict by file.
fn judge(entries: &[Entry], enrichment: Option<Arc<dyn Enrichment>>) -> BTreeMap<String, Verdict> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let graph = Arc::new(RedbGraph::open(&dir.path().join("graph.redb")).expect("open graph"));
    let mut engine = Engine::new(
        Arc::new(Policy::embedded_default()),
        graph,
        Limits::default(),
        vec!["example.com".to_owned()],
    );
    if let Some(enrichment) = enrichment {
        engine = engine.with_enrichment(enrichment);
    }
    let when = When::FromMessage {
        fallback: OffsetDateTime::UNIX_EPOCH,
    };
    let mut verdicts = BTreeMap::new();
    for entry in entries {
        let raw = std::fs::read(scenario_dir().join(&entry.file)).expect("scenario message");
        let envelope = Envelope {
            mail_from: entry.mail_from.clone(),
            rcpt_to: entry.rcpt_to.clone(),
            ..Envelope::default()
        };
        let analysis = engine.analyse(&envelope, &raw, when);
        let outcome = match (entry.phase.as_str(), analysis.verdict.action) {
            ("history", _) | (_, Action::Deliver | Action::Tag) => Outcome::Delivered,
            (_, Action::Hold | Action::Reject) => Outcome::Held,
        };
        engine.learn(&analysis, outcome).expect("learn");
        if entry.phase != "history" {
            verdicts.insert(entry.file.clone(), analysis.verdict);
        }
    }
    verdicts
}

fn names_alerted(verdict: &Verdict) -> bool {
    verdict.envelope.rcpt_to.iter().any(|rcpt| rcpt == ALERTED)
}

#[test]
fn scenario_alert_raises_recipient_messages() {
    let Some(entries) = manifest() else {
        return;
    };
    let campaign = entries
        .iter()
        .find(|entry| entry.phase == "campaign" && entry.rcpt_to.iter().any(|r| r == ALERTED))
        .expect("the scenario has a campaign message to the alerted recipient");
    let raw = std::fs::read(scenario_dir().join(&campaign.file)).expect("campaign message");
    let message_id = String::from_utf8_lossy(&raw)
        .lines()
        .find_map(|line| line.strip_prefix("Message-ID: "))
        .expect("the campaign message has a Message-ID")
        .trim()
        .to_owned();

    let mock_runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (base, log) = mock_runtime.block_on(start_mock(alert(&message_id)));
    let secret_dir = tempfile::tempdir().expect("temporary directory");
    let index = poll_alerts(&base, secret_dir.path());
    assert_eq!(index.len(), 1, "alerts indexed");

    let enrichment = GatehouseEnrichment::new().with_alerts(Arc::new(RwLock::new(index)));
    let without = judge(&entries, None);
    let with = judge(&entries, Some(Arc::new(enrichment)));

    // The alert is first of its category and above the usual severity for
    // the recipient: factor 2.0 * 1.5 on the default weight 2.5.
    let policy = Policy::embedded_default();
    let expected_raise = policy.weight("endpoint.alert") * 3.0;
    let mut alerted = 0;
    for (file, verdict) in &with {
        let before = &without[file];
        let judged = !verdict.signals.is_empty() || !before.signals.is_empty();
        if names_alerted(verdict) && judged {
            alerted += 1;
            let recorded: Vec<&str> = verdict
                .endpoint_alerts
                .iter()
                .map(|record| record.alert.alert_id.as_str())
                .collect();
            assert_eq!(recorded, vec![ALERT_ID], "{file}: endpoint_alerts");
            assert_eq!(verdict.endpoint_alerts[0].factor, 3.0, "{file}: factor");
            assert!(
                verdict
                    .signals
                    .iter()
                    .any(|signal| signal.id == "endpoint.alert"
                        && signal.evidence.contains(ALERT_ID)
                        && signal.evidence.contains(ALERTED)),
                "{file}: endpoint.alert evidence in {:?}",
                verdict.signals
            );
            let raise = verdict.score - before.score;
            assert!(
                (raise - expected_raise).abs() < 1e-9,
                "{file}: score {} without the alert, {} with it",
                before.score,
                verdict.score
            );
        } else {
            assert!(
                verdict.endpoint_alerts.is_empty(),
                "{file}: endpoint_alerts"
            );
            assert_eq!(verdict.score, before.score, "{file}: score");
        }
    }
    // The campaign message and the two inbound partner replies and the first
    // contact; internal mail is not judged.
    assert_eq!(alerted, 4, "judged messages to {ALERTED}");

    let campaign_verdict = &with[&campaign.file];
    let parts: Vec<&str> = campaign_verdict.endpoint_alerts[0]
        .alert
        .matched
        .iter()
        .map(|key| key.part.as_str())
        .collect();
    assert_eq!(
        parts,
        vec!["recipient", "message_id"],
        "campaign message matches"
    );

    let requests = log.lock().expect("request log").clone();
    let expected_host = format!(
        "127.0.0.1:{}",
        base.port().expect("the mock URL has a port")
    );
    for (_, host, _) in &requests {
        assert_eq!(host, &expected_host, "requests: {requests:?}");
    }
    let paths: Vec<(&str, &str)> = requests
        .iter()
        .map(|(method, _, path)| (method.as_str(), path.as_str()))
        .collect();
    assert_eq!(
        paths,
        vec![
            ("POST", "/tenant-1/oauth2/v2.0/token"),
            ("GET", "/v1.0/security/alerts_v2"),
        ]
    );
}
