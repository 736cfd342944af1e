//! `learn --dry-run`, `graph explain`, `graph responses` and
//! `quarantine list --campaign`, run as a user runs them.

use std::path::Path;
use std::process::{Command, Output};

const MESSAGE: &str = "Received: from mail.partner.example (mail.partner.example [203.0.113.5])\r\n\tby mx.example.com; Mon, 02 Nov 2026 08:00:00 +0000\r\nDate: Mon, 02 Nov 2026 08:00:00 +0000\r\nFrom: Wu Gang <wu.gang@partner.example>\r\nTo: bob@example.com\r\nSubject: Schedule\r\nMessage-ID: <m1@partner.example>\r\n\r\nHello Bob.\r\n";

const CONFIG: &str = "[gateway]\nlocal_domains = [\"example.com\"]\ndata_dir = \"data\"\nquarantine_dir = \"quarantine\"\n";

fn run(folder: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(args)
        .current_dir(folder)
        .output()
        .expect("gatehouse runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn setup() -> tempfile::TempDir {
    let folder = tempfile::tempdir().expect("temporary folder");
    std::fs::write(folder.path().join("gatehouse.toml"), CONFIG).expect("write config");
    std::fs::write(folder.path().join("m1.eml"), MESSAGE).expect("write message");
    folder
}

#[test]
fn dry_run_reports_without_writing() {
    let folder = setup();
    let output = run(folder.path(), &["learn", "--dry-run", "m1.eml"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).contains("messages: 0 -> 1 (+1)"),
        "{}",
        text(&output.stdout)
    );
    assert!(!folder.path().join("data/graph.redb").exists());
}

#[test]
fn explain_shows_learned_correspondent() {
    let folder = setup();
    let learned = run(folder.path(), &["learn", "m1.eml"]);
    let output = run(
        folder.path(),
        &["graph", "explain", "Wu.Gang@Partner.Example"],
    );
    assert_eq!(learned.status.code(), Some(0), "{}", text(&learned.stderr));
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("as a correspondent: 1 in, 0 out"),
        "{stdout}"
    );
    assert!(stdout.contains("bob@example.com"), "{stdout}");
}

#[test]
fn explain_json_is_one_object() {
    let folder = setup();
    run(folder.path(), &["learn", "m1.eml"]);
    let output = run(
        folder.path(),
        &["graph", "explain", "bob@example.com", "--format", "json"],
    );
    let report: serde_json::Value =
        serde_json::from_str(text(&output.stdout).trim()).expect("JSON report");
    assert_eq!(report["address"], "bob@example.com");
}

#[test]
fn lifting_unknown_response_exits_2() {
    let folder = setup();
    run(folder.path(), &["learn", "m1.eml"]);
    let output = run(
        folder.path(),
        &["graph", "responses", "--lift", "000000000000"],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("no campaign response has the id 000000000000"));
}

#[test]
fn responses_without_store_exits_1() {
    let folder = setup();
    let output = run(folder.path(), &["graph", "responses"]);
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn campaign_list_of_empty_quarantine_is_empty() {
    let folder = setup();
    let output = run(folder.path(), &["quarantine", "list", "--campaign"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(output.stdout.is_empty());
}
