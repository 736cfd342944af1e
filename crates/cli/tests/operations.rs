//! Running the gateway: `check-config`, JSON logs, the metrics listener and
//! policy reload on SIGHUP, against the built `gatehouse` binary.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use common::{Server, run, text};

/// Thresholds that deliver every message, whatever the signals.
const DELIVER_ALL: &str = "[thresholds]\ntag = 1000.0\nhold = 2000.0\n[weights]\n";
/// Holds every message from a sender nobody here has corresponded with.
const HOLD_FIRST_CONTACT: &str = "may_hold_alone = [\"sender.first_contact\"]\n\
    [thresholds]\ntag = 0.5\nhold = 1.0\n\
    [weights]\n\"sender.first_contact\" = 5.0\n\
    [first_contact]\nplain_max_action = \"hold\"\n";

const MESSAGE: &[u8] = b"From: Partner <partner@partner.test>\r\nTo: alice@example.com\r\nSubject: hello\r\n\r\nSee you tomorrow.\r\n";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free loopback port")
}

fn write(folder: &Path, name: &str, contents: &str) -> String {
    let path = folder.join(name);
    fs::write(&path, contents).expect("file written");
    path.display().to_string()
}

fn send(server: &Server, sender: &str) -> common::FinalReply {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(common::send(
        server.address,
        sender,
        &["alice@example.com".to_owned()],
        MESSAGE,
    ))
}

/// Fetches a path from the metrics listener with a plain HTTP/1.1 request.
fn http_get(port: u16, path: &str) -> String {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
        .expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    response
}

#[test]
fn check_config_prints_summary() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let config = write(
        folder.path(),
        "gatehouse.toml",
        "[gateway]\nlocal_domains = [\"example.com\"]\nmetrics_listen = \"127.0.0.1:9425\"\n[smtp]\nupstream = \"127.0.0.1:10026\"\n",
    );

    let output = run(folder.path(), &["check-config", "--config", &config]);

    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(stdout.contains("gatehouse.toml is valid"), "{stdout}");
    assert!(
        stdout.contains("smtp: listen 127.0.0.1:2525 without STARTTLS, deliver to 127.0.0.1:10026"),
        "{stdout}"
    );
    assert!(
        stdout.contains("metrics: http://127.0.0.1:9425/metrics"),
        "{stdout}"
    );
}

#[test]
fn check_config_names_bad_tls_files() {
    let folder = tempfile::tempdir().expect("temporary folder");
    write(folder.path(), "cert.pem", "not a certificate\n");
    let config = write(
        folder.path(),
        "gatehouse.toml",
        "[smtp]\ntls_certificate = \"cert.pem\"\ntls_key = \"key.pem\"\n",
    );

    let output = run(folder.path(), &["check-config", "--config", &config]);

    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("`smtp.tls_certificate`"), "{stderr}");
    assert!(stderr.contains("holds no PEM certificate"), "{stderr}");
}

#[test]
fn check_config_warns_of_policy_without_weights() {
    let folder = tempfile::tempdir().expect("temporary folder");
    write(
        folder.path(),
        "policy.toml",
        "[thresholds]\ntag = 4.0\nhold = 9.0\n",
    );
    let config = write(
        folder.path(),
        "gatehouse.toml",
        "[gateway]\npolicy = \"policy.toml\"\n",
    );

    let output = run(folder.path(), &["check-config", "--config", &config]);

    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("warning: 22 of 22 signals have no weight and never add"),
        "{stdout}"
    );
    assert!(stdout.contains("sender.first_contact"), "{stdout}");
    // Printed once, not also as a log line.
    let stderr = text(&output.stderr);
    assert!(!stderr.contains("never add to the score"), "{stderr}");
}

#[test]
fn check_config_rejects_bad_policy() {
    let folder = tempfile::tempdir().expect("temporary folder");
    write(
        folder.path(),
        "policy.toml",
        "[thresholds]\ntag = \"high\"\n",
    );
    let config = write(
        folder.path(),
        "gatehouse.toml",
        "[gateway]\npolicy = \"policy.toml\"\n",
    );

    let output = run(folder.path(), &["check-config", "--config", &config]);

    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
    assert!(
        text(&output.stderr).contains("policy.toml"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn json_logs_and_metrics() {
    let folder = tempfile::tempdir().expect("temporary folder");
    write(folder.path(), "policy.toml", DELIVER_ALL);
    let metrics_port = free_port();
    let config = write(
        folder.path(),
        "gatehouse.toml",
        &format!(
            "[gateway]\nlocal_domains = [\"example.com\"]\npolicy = \"policy.toml\"\nlog_format = \"json\"\nmetrics_listen = \"127.0.0.1:{metrics_port}\"\n[smtp]\nlisten = \"127.0.0.1:0\"\n"
        ),
    );
    let server = Server::start(Path::new(&config));

    let reply = send(&server, "partner@partner.test");
    let decision = server.wait_for_log("\"decision\"");
    let metrics = http_get(metrics_port, "/metrics");
    let missing = http_get(metrics_port, "/other");
    let status = server.stop();

    assert_eq!(reply.code, 250, "{reply:?}");
    let line: serde_json::Value = serde_json::from_str(&decision).expect("a JSON log line");
    assert_eq!(line["fields"]["action"], "deliver", "{decision}");
    assert_eq!(
        line["fields"]["sender"], "partner@partner.test",
        "{decision}"
    );
    assert_eq!(line["fields"]["client_ip"], "127.0.0.1", "{decision}");
    assert!(metrics.starts_with("HTTP/1.1 200 OK\r\n"), "{metrics}");
    assert!(
        metrics.contains("\ngatehouse_messages_total{action=\"deliver\"} 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("\ngatehouse_connections_total 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("\ngatehouse_quarantine_messages 0\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("\ngatehouse_analysis_seconds_count 1\n"),
        "{metrics}"
    );
    assert!(missing.starts_with("HTTP/1.1 404 "), "{missing}");
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn sighup_reloads_policy_keeping_sessions() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let policy = write(folder.path(), "policy.toml", DELIVER_ALL);
    let config = write(
        folder.path(),
        "gatehouse.toml",
        "[gateway]\nlocal_domains = [\"example.com\"]\npolicy = \"policy.toml\"\n[smtp]\nlisten = \"127.0.0.1:0\"\n",
    );
    let server = Server::start(Path::new(&config));
    let first = send(&server, "partner@partner.test");

    // A session stays open across the reload.
    let idle = std::net::TcpStream::connect(server.address).expect("connect");
    idle.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut idle_reader = std::io::BufReader::new(idle.try_clone().expect("clone"));
    let mut line = String::new();
    std::io::BufRead::read_line(&mut idle_reader, &mut line).expect("greeting");

    // A policy that does not validate is refused and the old one stays.
    fs::write(&policy, "[thresholds]\ntag = \"high\"\n").expect("policy written");
    server.signal("HUP");
    server.wait_for_log("policy reload failed");
    let second = send(&server, "partner@partner.test");

    fs::write(&policy, HOLD_FIRST_CONTACT).expect("policy written");
    server.signal("HUP");
    server.wait_for_log("policy reloaded");
    // Delivered mail made the partner familiar, so a new sender shows the hold.
    let third = send(&server, "stranger@elsewhere.test");

    (&idle).write_all(b"NOOP\r\n").expect("write");
    line.clear();
    std::io::BufRead::read_line(&mut idle_reader, &mut line).expect("NOOP reply");
    let status = server.stop();

    assert!(first.text.contains("delivered as"), "{first:?}");
    assert!(second.text.contains("delivered as"), "{second:?}");
    assert!(third.text.contains("queued as"), "{third:?}");
    assert_eq!(line, "250 2.0.0 Ok\r\n");
    assert!(status.success(), "exit status {status:?}");
}
