//! The `gatehouse` binary as a user runs it: arguments, config, exit status, output.

mod common;

use std::fs;
use std::path::Path;

use common::{Server, run, text};

fn data(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
        .display()
        .to_string()
}

fn write_config(folder: &Path, text: &str) -> String {
    let path = folder.join("gatehouse.toml");
    fs::write(&path, text).expect("config written");
    path.display().to_string()
}

#[test]
fn bad_configs_exit_2_naming_key() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let cases = [
        (
            "unknown key",
            "[gateway]\nlocal_domain = [\"example.com\"]\n",
            "unknown key `gateway.local_domain`; did you mean `local_domains`?",
        ),
        (
            "unknown section",
            "[proxy]\nlisten = \"127.0.0.1:25\"\n",
            "unknown key `proxy`",
        ),
        (
            "bad listen",
            "[smtp]\nlisten = \"127.0.0.1\"\n",
            "`smtp.listen` is \"127.0.0.1\", not an IP address and port",
        ),
        (
            "bad limit",
            "[limits.message]\nmax_parts = -1\n",
            "`limits.message.max_parts` is -1",
        ),
        ("syntax", "[smtp\n", "invalid config file"),
        (
            "missing policy",
            "[gateway]\npolicy = \"nowhere.toml\"\n",
            "nowhere.toml",
        ),
    ];
    for (case, config, expected) in cases {
        let path = write_config(folder.path(), config);

        let output = run(folder.path(), &["graph", "stats", "--config", &path]);
        let scan = run(
            folder.path(),
            &["--config", &path, "scan", &data("plain.eml")],
        );

        let stderr = text(&output.stderr);
        if case != "missing policy" {
            assert_eq!(output.status.code(), Some(2), "{case}: {stderr}");
            assert!(stderr.contains(expected), "{case}: {stderr}");
            assert!(stderr.contains(&path), "{case}: {stderr}");
        }
        let stderr = text(&scan.stderr);
        assert_eq!(scan.status.code(), Some(2), "{case}, scan: {stderr}");
        assert!(stderr.contains(expected), "{case}, scan: {stderr}");
    }
}

#[test]
fn missing_config_file_exits_2() {
    let folder = tempfile::tempdir().expect("temporary folder");

    let output = run(
        folder.path(),
        &["--config", "absent.toml", "quarantine", "list"],
    );

    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("config file absent.toml not found"));
}

#[test]
fn unknown_command_exits_2() {
    let folder = tempfile::tempdir().expect("temporary folder");

    let output = run(folder.path(), &["frobnicate"]);

    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn scan_json_prints_one_verdict_per_line() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let plain = data("plain.eml");

    let output = run(folder.path(), &["scan", "--format", "json", &plain, &plain]);

    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    let verdict: serde_json::Value = serde_json::from_str(lines[0]).expect("verdict JSON");
    assert_eq!(verdict["file"], plain.as_str());
    for field in [
        "id",
        "action",
        "score",
        "signals",
        "envelope",
        "message",
        "links",
        "attachments",
        "qr_codes",
    ] {
        assert!(verdict.get(field).is_some(), "missing {field}: {stdout}");
    }
}

#[test]
fn scan_does_not_learn_without_flag() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let plain = data("plain.eml");

    let first = run(folder.path(), &["scan", "--format", "json", &plain]);
    let second = run(folder.path(), &["scan", "--format", "json", &plain]);

    let signals = |output: &std::process::Output| {
        let verdict: serde_json::Value =
            serde_json::from_str(text(&output.stdout).trim()).expect("verdict JSON");
        verdict["signals"].to_string()
    };
    assert_eq!(signals(&first), signals(&second));
}

#[test]
fn scan_text_names_file_and_action() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let plain = data("plain.eml");

    let output = run(folder.path(), &["scan", &plain]);

    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(stdout.starts_with(&format!("{plain}: ")), "{stdout}");
    assert!(stdout.contains("(score "), "{stdout}");
}

#[test]
fn scan_reads_mbox_messages() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let mbox = data("history.mbox");

    let output = run(folder.path(), &["scan", "--format", "json", &mbox]);

    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let files: Vec<String> = text(&output.stdout)
        .lines()
        .map(|line| {
            let verdict: serde_json::Value = serde_json::from_str(line).expect("verdict JSON");
            verdict["file"].as_str().unwrap_or("").to_owned()
        })
        .collect();
    assert_eq!(files, vec![format!("{mbox}#1"), format!("{mbox}#2")]);
}

#[test]
fn scan_reads_maildir_and_its_subfolders_without_tmp() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let maildir = folder.path().join("Maildir");
    for sub in ["cur", "new", "tmp"] {
        fs::create_dir_all(maildir.join(sub)).expect("maildir folder");
    }
    let message = fs::read(data("plain.eml")).expect("fixture");
    fs::write(maildir.join("cur/1.host:2,S"), &message).expect("write");
    fs::write(maildir.join("new/2.host"), &message).expect("write");
    fs::write(maildir.join("tmp/3.host"), b"half written").expect("write");
    // A Maildir++ subfolder is read; another dot folder is not.
    for sub in [".Sent/cur", ".Sent/new", ".index/cur"] {
        fs::create_dir_all(maildir.join(sub)).expect("maildir folder");
    }
    fs::write(maildir.join(".Sent/cur/4.host:2,S"), &message).expect("write");
    fs::write(maildir.join(".index/cur/5.host"), &message).expect("write");

    let output = run(folder.path(), &["scan", "--format", "json", "Maildir"]);

    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
    assert!(stdout.contains(".Sent/cur/4.host"), "{stdout}");
    assert!(!stdout.contains(".index"), "{stdout}");
    assert!(!stdout.contains("tmp/3.host"), "{stdout}");
}

#[test]
fn learn_then_graph_stats() {
    let folder = tempfile::tempdir().expect("temporary folder");

    let learned = run(folder.path(), &["learn", &data("history.mbox")]);
    let stats = run(folder.path(), &["graph", "stats", "--format", "json"]);

    assert_eq!(learned.status.code(), Some(0), "{}", text(&learned.stderr));
    assert!(text(&learned.stderr).contains("learned 2 messages from 1 files"));
    assert_eq!(stats.status.code(), Some(0), "{}", text(&stats.stderr));
    let stats: serde_json::Value =
        serde_json::from_str(text(&stats.stdout).trim()).expect("stats JSON");
    assert!(stats.is_object(), "{stats}");
}

#[test]
fn graph_readers_use_copy_while_serving() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let config = write_config(
        folder.path(),
        "[gateway]\nlocal_domains = [\"example.com\"]\n[smtp]\nlisten = \"127.0.0.1:0\"\n",
    );
    let learned = run(folder.path(), &["learn", &data("history.mbox")]);
    assert_eq!(learned.status.code(), Some(0), "{}", text(&learned.stderr));
    let server = Server::start(Path::new(&config));

    let stats = run(folder.path(), &["graph", "stats", "--format", "json"]);
    let scanned = run(folder.path(), &["scan", &data("plain.eml")]);
    let learned_again = run(folder.path(), &["learn", &data("plain.eml")]);
    server.stop();

    assert_eq!(stats.status.code(), Some(0), "{}", text(&stats.stderr));
    assert!(text(&stats.stderr).contains("reading a copy taken now"));
    let stats: serde_json::Value =
        serde_json::from_str(text(&stats.stdout).trim()).expect("stats JSON");
    assert_eq!(stats["messages"], 2, "{stats}");
    assert_eq!(scanned.status.code(), Some(0), "{}", text(&scanned.stderr));
    assert_eq!(learned_again.status.code(), Some(1));
    assert!(
        text(&learned_again.stderr).contains("is open in another process"),
        "{}",
        text(&learned_again.stderr)
    );
}

#[test]
fn graph_stats_without_store_exits_1() {
    let folder = tempfile::tempdir().expect("temporary folder");

    let output = run(folder.path(), &["graph", "stats"]);

    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).contains("no graph store at"));
}

#[test]
fn quarantine_rejects_invalid_ids() {
    let folder = tempfile::tempdir().expect("temporary folder");
    for command in ["show", "release", "delete"] {
        let output = run(folder.path(), &["quarantine", command, "../../etc/passwd"]);

        assert_eq!(output.status.code(), Some(2), "{command}");
        assert!(
            text(&output.stderr).contains("invalid quarantine id"),
            "{command}"
        );
    }
}

#[test]
fn quarantine_list_empty() {
    let folder = tempfile::tempdir().expect("temporary folder");

    let output = run(folder.path(), &["quarantine", "list"]);

    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(output.stdout.is_empty());
    assert!(folder.path().join("quarantine/held").is_dir());
}

/// Writes a held verdict with id `id` (the scan verdict of plain.eml) into
/// the quarantine under `folder`, and returns the held folder.
fn write_held_verdict(folder: &Path, id: &str) -> std::path::PathBuf {
    let scanned = run(folder, &["scan", "--format", "json", &data("plain.eml")]);
    assert_eq!(scanned.status.code(), Some(0), "{}", text(&scanned.stderr));
    let mut verdict: serde_json::Value =
        serde_json::from_str(text(&scanned.stdout).trim()).expect("verdict JSON");
    verdict["id"] = id.into();
    let held = folder.join("quarantine/held");
    fs::create_dir_all(&held).expect("held folder");
    fs::write(held.join(format!("{id}.json")), verdict.to_string()).expect("write");
    held
}

#[test]
fn quarantine_list_skips_damaged_verdict() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let good = "0190a7c2-0000-7000-8000-000000000001";
    let damaged = "0190a7c2-0000-7000-8000-000000000002";
    let held = write_held_verdict(folder.path(), good);
    fs::write(held.join(format!("{good}.eml")), b"Subject: x\r\n\r\nx\r\n").expect("write");
    fs::write(held.join(format!("{damaged}.json")), b"{\"id\":").expect("write");
    fs::write(
        held.join(format!("{damaged}.eml")),
        b"Subject: y\r\n\r\ny\r\n",
    )
    .expect("write");

    let output = run(folder.path(), &["quarantine", "list"]);

    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).contains(good),
        "{}",
        text(&output.stdout)
    );
    assert!(
        text(&output.stderr).contains(damaged),
        "{}",
        text(&output.stderr)
    );
    assert!(
        text(&output.stderr).contains("1 held verdict(s) could not be read"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn verdict_without_message_deletes() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let id = "0190a7c2-0000-7000-8000-000000000003";
    write_held_verdict(folder.path(), id);

    let released = run(folder.path(), &["quarantine", "release", id]);
    let deleted = run(folder.path(), &["quarantine", "delete", id]);
    let listed = run(folder.path(), &["quarantine", "list"]);

    assert_eq!(released.status.code(), Some(1));
    assert!(
        text(&released.stderr).contains("has a verdict but no message file"),
        "{}",
        text(&released.stderr)
    );
    assert_eq!(deleted.status.code(), Some(0), "{}", text(&deleted.stderr));
    assert_eq!(listed.status.code(), Some(0), "{}", text(&listed.stderr));
    assert!(listed.stdout.is_empty(), "{}", text(&listed.stdout));
}

#[test]
fn release_tries_every_id() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let missing = "0190a7c2-0000-7000-8000-000000000004";
    let good = "0190a7c2-0000-7000-8000-000000000005";
    let held = write_held_verdict(folder.path(), good);
    fs::write(held.join(format!("{good}.eml")), b"Subject: x\r\n\r\nx\r\n").expect("write");

    let output = run(folder.path(), &["quarantine", "release", missing, good]);

    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains(&format!("released {good}")));
    assert!(
        text(&output.stderr).contains(&format!("cannot release {missing}")),
        "{}",
        text(&output.stderr)
    );
    assert!(
        text(&output.stderr).contains("1 of 2 held messages could not be released"),
        "{}",
        text(&output.stderr)
    );
    assert!(!held.join(format!("{good}.json")).exists());
}

#[test]
fn serve_without_upstream_delivers_to_maildir() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let config = write_config(
        folder.path(),
        "[gateway]\nlocal_domains = [\"example.com\"]\n[smtp]\nlisten = \"127.0.0.1:0\"\nhostname = \"gatehouse.test\"\n",
    );
    let server = Server::start(Path::new(&config));
    let message = fs::read(data("plain.eml")).expect("fixture");

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let reply = runtime.block_on(common::send(
        server.address,
        "partner@partner.test",
        &["alice@example.com".to_owned()],
        &message,
    ));
    // The decision line may reach the log reader after the reply.
    server.wait_for_log("decision");
    let log = server.log();
    let status = server.stop();

    assert_eq!(reply.code, 250, "{reply:?}\n{log}");
    assert!(status.success(), "exit status {status:?}");
    let delivered: Vec<_> = fs::read_dir(folder.path().join("data/delivered/new"))
        .expect("Maildir new/")
        .collect();
    assert_eq!(delivered.len(), 1);
    let log = log
        .lines()
        .filter(|line| line.contains("decision"))
        .collect::<Vec<_>>();
    assert_eq!(log.len(), 1, "{log:?}");
    for field in [
        "message_id=",
        "client_ip=127.0.0.1",
        "sender=partner@partner.test",
        "recipients=alice@example.com",
        "action=",
        "score=",
        "signals=",
    ] {
        assert!(log[0].contains(field), "{field} missing in {}", log[0]);
    }
}

#[test]
fn serve_rejects_bad_milter_listen() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let config = write_config(folder.path(), "[milter]\nlisten = \"localhost\"\n");

    let output = run(folder.path(), &["serve", "--config", &config]);

    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("milter.listen"));
}

#[test]
fn scan_missing_path_exits_2() {
    let folder = tempfile::tempdir().expect("temporary folder");

    let output = run(folder.path(), &["scan", "no-such.eml"]);

    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("no-such.eml"),
        "{}",
        text(&output.stderr)
    );
}
