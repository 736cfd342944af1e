//! SIEM export through the spool to a local HTTP endpoint that can be taken
//! down and brought back.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use gatehouse_integrations::clock::{ManualClock, SystemClock};
use gatehouse_integrations::secret::SecretSource;
use gatehouse_integrations::siem::{
    HttpExportConfig, HttpFormat, SiemConfig, SiemError, SiemExporter,
};
use serde_json::{Value, json};
use time::macros::datetime;
use url::Url;

#[derive(Default)]
struct Endpoint {
    up: AtomicBool,
    /// Requests received, accepted or not.
    requests: Mutex<u32>,
    /// Bodies of the accepted requests.
    accepted: Mutex<Vec<String>>,
    authorization: Mutex<Vec<String>>,
    content_types: Mutex<Vec<String>>,
}

async fn collect(
    State(endpoint): State<Arc<Endpoint>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    *endpoint.requests.lock().expect("requests") += 1;
    if !endpoint.up.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "down").into_response();
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    endpoint
        .authorization
        .lock()
        .expect("authorization")
        .push(header("authorization"));
    endpoint
        .content_types
        .lock()
        .expect("content types")
        .push(header("content-type"));
    endpoint.accepted.lock().expect("accepted").push(body);
    (StatusCode::OK, "{\"text\":\"Success\",\"code\":0}").into_response()
}

async fn start_endpoint() -> (Arc<Endpoint>, Url) {
    let endpoint = Arc::new(Endpoint::default());
    let app = Router::new()
        .route("/services/collector/event", post(collect))
        .route("/hook", post(collect))
        .with_state(Arc::clone(&endpoint));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (
        endpoint,
        Url::parse(&format!("http://{address}/")).expect("url"),
    )
}

fn config(dir: &std::path::Path, url: Url, format: HttpFormat) -> SiemConfig {
    let mut http = HttpExportConfig::new(url, format);
    http.batch_max_lines = 2;
    let mut config = SiemConfig {
        file: Some(dir.join("verdicts.jsonl")),
        spool_dir: dir.join("spool"),
        http: Some(http),
        ..SiemConfig::default()
    };
    config.spool.fsync_each_line = false;
    config
}

fn verdict(index: u32) -> Value {
    json!({"id": format!("v{index}"), "action": "deliver", "score": 0.5, "signals": []})
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(datetime!(2024-03-03 12:00 UTC)))
}

/// Returns the verdict ids of accepted JSON-lines bodies, in arrival order.
fn accepted_ids(endpoint: &Endpoint) -> Vec<String> {
    endpoint
        .accepted
        .lock()
        .expect("accepted")
        .iter()
        .flat_map(|body| body.lines().map(str::to_owned).collect::<Vec<_>>())
        .map(|line| {
            let value: Value = serde_json::from_str(&line).expect("JSON line");
            value["id"].as_str().expect("id").to_owned()
        })
        .collect()
}

#[tokio::test]
async fn spool_survives_restart_with_endpoint_down() {
    let (endpoint, base) = start_endpoint().await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = config(
        dir.path(),
        base.join("hook").expect("url"),
        HttpFormat::JsonLines,
    );

    // First run: the endpoint is down, so every verdict stays in the spool.
    {
        let (exporter, forwarder) = SiemExporter::open(&config, clock()).expect("open");
        let mut forwarder = forwarder.expect("HTTP export configured");
        for index in 0..5 {
            exporter.export(&verdict(index)).expect("export");
        }
        let error = forwarder.flush().await.expect_err("endpoint down");
        assert!(
            matches!(error, SiemError::Status { status: 503, .. }),
            "{error}"
        );
        assert!(error.is_transient());
    }
    assert_eq!(*endpoint.requests.lock().expect("requests"), 1);
    assert!(accepted_ids(&endpoint).is_empty());

    // Second run after a restart: the endpoint is back.
    endpoint.up.store(true, Ordering::SeqCst);
    let (exporter, forwarder) = SiemExporter::open(&config, clock()).expect("reopen");
    let mut forwarder = forwarder.expect("HTTP export configured");
    exporter.export(&verdict(5)).expect("export");
    let report = forwarder.flush().await.expect("flush");

    assert_eq!(report.lines_sent, 6);
    assert_eq!(report.requests, 3, "batches of two lines");
    assert_eq!(
        accepted_ids(&endpoint),
        ["v0", "v1", "v2", "v3", "v4", "v5"]
    );

    // A third run sends nothing again.
    drop((exporter, forwarder));
    let (_exporter, forwarder) = SiemExporter::open(&config, clock()).expect("reopen");
    let report = forwarder
        .expect("HTTP export configured")
        .flush()
        .await
        .expect("flush");
    assert_eq!(report.lines_sent, 0);
    assert_eq!(report.requests, 0);
    assert_eq!(accepted_ids(&endpoint).len(), 6);

    // The file has every verdict once, from both runs.
    let file = std::fs::read_to_string(dir.path().join("verdicts.jsonl")).expect("file");
    assert_eq!(file.lines().count(), 6);
}

#[tokio::test]
async fn endpoint_failing_mid_flush_resumes_in_order() {
    let (endpoint, base) = start_endpoint().await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = config(
        dir.path(),
        base.join("hook").expect("url"),
        HttpFormat::JsonLines,
    );
    endpoint.up.store(true, Ordering::SeqCst);

    let (exporter, forwarder) = SiemExporter::open(&config, clock()).expect("open");
    let mut forwarder = forwarder.expect("HTTP export configured");
    for index in 0..3 {
        exporter.export(&verdict(index)).expect("export");
    }
    forwarder.flush().await.expect("flush");
    endpoint.up.store(false, Ordering::SeqCst);
    for index in 3..6 {
        exporter.export(&verdict(index)).expect("export");
    }
    forwarder.flush().await.expect_err("endpoint down");
    endpoint.up.store(true, Ordering::SeqCst);
    let report = forwarder.flush().await.expect("flush");

    assert_eq!(report.lines_sent, 3);
    assert_eq!(
        accepted_ids(&endpoint),
        ["v0", "v1", "v2", "v3", "v4", "v5"]
    );
}

#[tokio::test]
async fn unreachable_endpoint_keeps_lines() {
    // Bind and drop a listener to get a port where nothing listens.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    drop(listener);
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = Url::parse(&format!("http://{address}/hook")).expect("url");
    let config = config(dir.path(), url, HttpFormat::JsonLines);

    let (exporter, forwarder) = SiemExporter::open(&config, clock()).expect("open");
    exporter.export(&verdict(0)).expect("export");
    let error = forwarder
        .expect("HTTP export configured")
        .flush()
        .await
        .expect_err("refused");

    assert!(matches!(error, SiemError::Transport { .. }), "{error}");
    assert!(error.is_transient());
}

#[tokio::test]
async fn splunk_hec_body_and_token() {
    let (endpoint, base) = start_endpoint().await;
    endpoint.up.store(true, Ordering::SeqCst);
    let dir = tempfile::tempdir().expect("temporary directory");
    let token_path = dir.path().join("hec-token");
    std::fs::write(&token_path, "11111111-2222-3333-4444-555555555555\n").expect("token");
    let mut config = config(
        dir.path(),
        base.join("services/collector/event").expect("url"),
        HttpFormat::SplunkHec,
    );
    if let Some(http) = config.http.as_mut() {
        http.token = Some(SecretSource::File(token_path));
        http.index = Some("mail".into());
        http.batch_max_lines = 10;
    }

    let (exporter, forwarder) = SiemExporter::open(&config, clock()).expect("open");
    exporter.export(&verdict(1)).expect("export");
    exporter.export(&verdict(2)).expect("export");
    forwarder
        .expect("HTTP export configured")
        .flush()
        .await
        .expect("flush");

    let bodies = endpoint.accepted.lock().expect("accepted").clone();
    assert_eq!(bodies.len(), 1);
    let events: Vec<Value> = bodies[0]
        .lines()
        .map(|line| serde_json::from_str(line).expect("HEC event"))
        .collect();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["sourcetype"], "gatehouse:verdict");
    assert_eq!(events[0]["index"], "mail");
    assert_eq!(events[0]["event"], verdict(1));
    assert_eq!(events[1]["event"], verdict(2));
    let authorization = endpoint
        .authorization
        .lock()
        .expect("authorization")
        .clone();
    assert_eq!(
        authorization,
        ["Splunk 11111111-2222-3333-4444-555555555555"]
    );
}

#[tokio::test]
async fn webhook_sends_ndjson() {
    let (endpoint, base) = start_endpoint().await;
    endpoint.up.store(true, Ordering::SeqCst);
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = config(
        dir.path(),
        base.join("hook").expect("url"),
        HttpFormat::JsonLines,
    );

    let (exporter, forwarder) = SiemExporter::open(&config, clock()).expect("open");
    exporter.export(&verdict(1)).expect("export");
    forwarder
        .expect("HTTP export configured")
        .flush()
        .await
        .expect("flush");

    let bodies = endpoint.accepted.lock().expect("accepted").clone();
    assert_eq!(bodies, [format!("{}\n", verdict(1))]);
    let content_types = endpoint
        .content_types
        .lock()
        .expect("content types")
        .clone();
    assert_eq!(content_types, ["application/x-ndjson"]);
    let authorization = endpoint
        .authorization
        .lock()
        .expect("authorization")
        .clone();
    assert_eq!(authorization, [""], "no token configured");
}

#[tokio::test]
async fn forwarder_task_sends_and_stops() {
    let (endpoint, base) = start_endpoint().await;
    endpoint.up.store(true, Ordering::SeqCst);
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut config = config(
        dir.path(),
        base.join("hook").expect("url"),
        HttpFormat::JsonLines,
    );
    if let Some(http) = config.http.as_mut() {
        http.flush_interval_ms = 10;
    }

    let (exporter, forwarder) = SiemExporter::open(&config, Arc::new(SystemClock)).expect("open");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(forwarder.expect("HTTP export configured").run(async {
        stopped.await.ok();
    }));
    for index in 0..3 {
        exporter.export(&verdict(index)).expect("export");
    }

    // Wait at most two seconds for the task to deliver the lines.
    for _ in 0..200 {
        if accepted_ids(&endpoint).len() == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(accepted_ids(&endpoint), ["v0", "v1", "v2"]);
    stop.send(()).expect("task running");
    task.await.expect("task ends");
}
