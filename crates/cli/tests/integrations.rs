//! The integrations through the built binary, against local servers on
//! 127.0.0.1 that behave like the token endpoint, Graph's `alerts_v2` and a
//! SIEM webhook. The tests cover `gatehouse integrations check`, the SIEM
//! spool across restarts of `gatehouse serve`, and the audit record of a
//! delivered message that a Defender alert names.

mod common;

use std::fs;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use common::{Server, run, text};
use serde_json::{Value, json};

const GOOD_SECRET: &str = "correct-horse";

/// Every request a mock received: method, `Host` header, path, body.
#[derive(Debug, Clone)]
struct Logged {
    method: String,
    host: String,
    path: String,
    body: String,
}

#[derive(Default)]
struct MockState {
    requests: Vec<Logged>,
    /// Alerts that `alerts_v2` returns.
    alerts: Vec<Value>,
}

type Shared = Arc<Mutex<MockState>>;

/// A local server with the token endpoint, `alerts_v2` and a webhook.
struct Mock {
    state: Shared,
    address: SocketAddr,
    runtime: tokio::runtime::Runtime,
}

impl Mock {
    /// Starts the mock on `address`, or on a free port.
    fn start(address: Option<SocketAddr>) -> Mock {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let state: Shared = Arc::default();
        let app = Router::new()
            .route("/{tenant}/oauth2/v2.0/token", post(token))
            .route("/v1.0/security/alerts_v2", get(alerts))
            .route("/siem", post(webhook))
            .with_state(Arc::clone(&state))
            .layer(middleware::from_fn_with_state(Arc::clone(&state), record));
        let bind = address.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(bind))
            .expect("bind the mock");
        let address = listener.local_addr().expect("mock address");
        runtime.spawn(async move { axum::serve(listener, app).await });
        Mock {
            state,
            address,
            runtime,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    fn requests(&self) -> Vec<Logged> {
        self.state.lock().expect("mock state").requests.clone()
    }

    /// Asserts that every request went to this mock's address.
    fn assert_only_local(&self) {
        let expected = self.address.to_string();
        for request in self.requests() {
            assert_eq!(request.host, expected, "{request:?}");
        }
    }

    fn stop(self) {
        self.runtime.shutdown_background();
    }
}

async fn record(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 16 * 1024 * 1024)
        .await
        .unwrap_or_default();
    state.lock().expect("mock state").requests.push(Logged {
        method: parts.method.to_string(),
        host: parts
            .headers
            .get("host")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        path: parts.uri.path().to_owned(),
        body: String::from_utf8_lossy(&bytes).into_owned(),
    });
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}

async fn token(body: String) -> Response {
    // The secret has no characters that form encoding changes.
    let valid = body
        .split('&')
        .any(|pair| pair == format!("client_secret={GOOD_SECRET}"));
    if !valid {
        let error = json!({
            "error": "invalid_client",
            "error_description": "AADSTS7000215: Invalid client secret provided.\r\nTrace ID: 1",
        });
        return (StatusCode::UNAUTHORIZED, axum::Json(error)).into_response();
    }
    axum::Json(json!({"token_type": "Bearer", "expires_in": 3600, "access_token": "token-1"}))
        .into_response()
}

async fn alerts(State(state): State<Shared>) -> Response {
    let alerts = state.lock().expect("mock state").alerts.clone();
    axum::Json(json!({ "value": alerts })).into_response()
}

async fn webhook() -> Response {
    StatusCode::OK.into_response()
}

fn free_address() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
}

fn write_secret(folder: &Path, secret: &str) {
    let path = folder.join("client-secret");
    fs::write(&path, format!("{secret}\n")).expect("write secret");
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod secret");
}

fn defender_section(base: &str) -> String {
    format!(
        "[integrations.defender]\ntenant_id = \"tenant-1\"\nclient_id = \"client-1\"\nclient_secret = {{ file = \"client-secret\" }}\nlogin_base = \"{base}\"\ngraph_base = \"{base}\"\npoll_interval_secs = 1\n"
    )
}

fn gateway_section() -> String {
    "[gateway]\nlocal_domains = [\"example.com\"]\n[smtp]\nlisten = \"127.0.0.1:0\"\nhostname = \"gatehouse.test\"\n".to_owned()
}

fn plain_message(message_id: &str) -> Vec<u8> {
    format!(
        "From: Anna <anna@partner.example>\r\nTo: bob@example.com\r\nSubject: minutes\r\nMessage-ID: <{message_id}>\r\nDate: Mon, 02 Nov 2026 08:00:00 +0000\r\n\r\nThe minutes are attached in the usual place.\r\n"
    )
    .into_bytes()
}

fn send(server: &Server, message: &[u8]) -> u16 {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let reply = runtime.block_on(common::send(
        server.address,
        "anna@partner.example",
        &["bob@example.com".to_owned()],
        message,
    ));
    reply.code
}

/// Reads the verdict ids of the SIEM file, in order.
fn file_verdict_ids(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| {
            let verdict: Value = serde_json::from_str(line).expect("SIEM line is JSON");
            verdict["id"].as_str().expect("verdict id").to_owned()
        })
        .collect()
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn check_reports_invalid_client() {
    let mock = Mock::start(None);
    let folder = tempfile::tempdir().expect("temporary folder");
    write_secret(folder.path(), "wrong-secret");
    fs::write(
        folder.path().join("gatehouse.toml"),
        defender_section(&mock.url()),
    )
    .expect("write config");

    let output = run(folder.path(), &["integrations", "check"]);

    let stdout = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{stdout}{}",
        text(&output.stderr)
    );
    assert!(stdout.contains("FAILED  defender token"), "{stdout}");
    assert!(stdout.contains("invalid_client"), "{stdout}");
    assert!(!stdout.contains("wrong-secret"), "{stdout}");
    let paths: Vec<String> = mock.requests().iter().map(|r| r.path.clone()).collect();
    // A rejected secret is not retried, and Graph is not asked.
    assert_eq!(paths, vec!["/tenant-1/oauth2/v2.0/token"]);
    mock.assert_only_local();
    mock.stop();
}

#[test]
fn check_passes_with_valid_secret() {
    let mock = Mock::start(None);
    let folder = tempfile::tempdir().expect("temporary folder");
    write_secret(folder.path(), GOOD_SECRET);
    let config = format!(
        "{}[integrations.siem]\nfile = \"verdicts.jsonl\"\n[integrations.siem.http]\nurl = \"{}/siem\"\nformat = \"json_lines\"\n",
        defender_section(&mock.url()),
        mock.url()
    );
    fs::write(folder.path().join("gatehouse.toml"), config).expect("write config");

    let output = run(folder.path(), &["integrations", "check"]);

    let stdout = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        text(&output.stderr)
    );
    assert!(!stdout.contains("FAILED"), "{stdout}");
    let paths: Vec<String> = mock.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        paths,
        vec![
            "/tenant-1/oauth2/v2.0/token",
            "/v1.0/security/alerts_v2",
            "/siem"
        ]
    );
    mock.assert_only_local();
    mock.stop();
}

#[test]
fn unknown_integration_key_is_named() {
    let folder = tempfile::tempdir().expect("temporary folder");
    fs::write(
        folder.path().join("gatehouse.toml"),
        "[integrations.siem]\nfile = \"v.jsonl\"\n[integrations.siem.http]\nurl = \"http://127.0.0.1:9/\"\nformat = \"json_lines\"\nbatch_lines = 5\n",
    )
    .expect("write config");

    let output = run(folder.path(), &["integrations", "check"]);

    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("`integrations.siem.http.batch_lines`"),
        "{stderr}"
    );
}

#[test]
fn siem_spool_survives_restarts_while_endpoint_down() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let endpoint = free_address();
    let config = folder.path().join("gatehouse.toml");
    fs::write(
        &config,
        format!(
            "{}[integrations.siem]\nfile = \"verdicts.jsonl\"\n[integrations.siem.http]\nurl = \"http://{endpoint}/siem\"\nformat = \"json_lines\"\nflush_interval_ms = 100\nretry = {{ base_delay_ms = 100, max_delay_ms = 200 }}\n",
            gateway_section()
        ),
    )
    .expect("write config");

    // Two runs while nothing listens at the endpoint, one message each.
    for index in 0..2 {
        let server = Server::start(&config);
        let code = send(
            &server,
            &plain_message(&format!("spool-{index}@partner.example")),
        );
        assert_eq!(code, 250, "message {index}");
        let status = server.stop();
        assert!(status.success(), "serve exit {status:?}");
    }
    let exported = file_verdict_ids(&folder.path().join("verdicts.jsonl"));
    assert_eq!(exported.len(), 2, "verdicts in the SIEM file");

    // The endpoint is back: the next run sends the spool.
    let mock = Mock::start(Some(endpoint));
    let server = Server::start(&config);
    let received = || -> Vec<String> {
        mock.requests()
            .iter()
            .filter(|request| request.path == "/siem")
            .flat_map(|request| {
                request
                    .body
                    .lines()
                    .map(|line| {
                        let verdict: Value = serde_json::from_str(line).expect("JSON line");
                        verdict["id"].as_str().expect("verdict id").to_owned()
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    wait_for("the spooled verdicts", Duration::from_secs(30), || {
        received().len() >= 2
    });
    // Give a duplicate time to show up before stopping.
    std::thread::sleep(Duration::from_millis(500));
    let status = server.stop();
    assert!(status.success(), "serve exit {status:?}");

    assert_eq!(received(), exported, "every spooled line, once, in order");
    for request in mock.requests() {
        assert_eq!(request.method, "POST", "{request:?}");
    }
    mock.assert_only_local();
    mock.stop();
}

#[test]
fn alert_naming_delivered_message_is_audited() {
    let mock = Mock::start(None);
    let folder = tempfile::tempdir().expect("temporary folder");
    write_secret(folder.path(), GOOD_SECRET);
    let config = folder.path().join("gatehouse.toml");
    fs::write(
        &config,
        format!(
            "{}{}[integrations.siem]\nfile = \"verdicts.jsonl\"\n",
            gateway_section(),
            defender_section(&mock.url())
        ),
    )
    .expect("write config");

    let server = Server::start(&config);
    let code = send(&server, &plain_message("recall-me@partner.example"));
    assert_eq!(code, 250, "delivery");
    let verdicts = file_verdict_ids(&folder.path().join("verdicts.jsonl"));
    assert_eq!(verdicts.len(), 1, "verdicts exported");

    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("time");
    mock.state.lock().expect("mock state").alerts.push(json!({
        "id": "alert-recall-1",
        "status": "new",
        "severity": "medium",
        "serviceSource": "microsoftDefenderForOffice365",
        "title": "User-reported phishing",
        "category": "InitialAccess",
        "lastUpdateDateTime": now,
        "evidence": [{
            "@odata.type": "#microsoft.graph.security.analyzedMessageEvidence",
            "verdict": "suspicious",
            "recipientEmailAddress": "bob@example.com",
            "internetMessageId": "<recall-me@partner.example>"
        }]
    }));
    let audit_path = folder.path().join("quarantine/audit.log");
    wait_for("the audit record", Duration::from_secs(30), || {
        fs::read_to_string(&audit_path).is_ok_and(|audit| audit.contains("alert-recall-1"))
    });
    // Later polls read the alert again; it is recorded once.
    std::thread::sleep(Duration::from_millis(2_500));
    let status = server.stop();
    assert!(status.success(), "serve exit {status:?}");

    let audit = fs::read_to_string(&audit_path).expect("audit log");
    let lines: Vec<&str> = audit.lines().collect();
    assert_eq!(lines.len(), 1, "{audit}");
    assert!(
        lines[0].ends_with(&format!(
            " user=gatehouse command=endpoint-alert id={} alert=alert-recall-1 message_id=recall-me@partner.example",
            verdicts[0]
        )),
        "{audit}"
    );
    mock.assert_only_local();
    mock.stop();
}
