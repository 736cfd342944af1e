//! The reference scenario through the whole gateway: `gatehouse learn` the
//! history, then every live and campaign message in manifest order through
//! `gatehouse serve` in front of Postfix's `smtp-sink`, then a release.
//!
//! `smtp-sink -d` dumps each transaction it accepts to a file: its own
//! `X-Client-Addr`, `X-Mail-Args`, `X-Rcpt-Args` and `Received` lines, then
//! the message with LF line endings, then an empty line.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Server, repo, run, strip_added_headers, text};
use serde::Deserialize;

const SMTP_SINK: &str = "/usr/sbin/smtp-sink";

#[derive(Debug, Deserialize)]
struct Entry {
    file: String,
    phase: String,
    mail_from: String,
    rcpt_to: Vec<String>,
}

/// One transaction that smtp-sink accepted.
#[derive(Debug)]
struct Dump {
    mail_from: String,
    rcpt_to: Vec<String>,
    /// The message as received, with LF line endings.
    message: Vec<u8>,
}

struct Sink {
    child: Child,
    address: String,
    folder: PathBuf,
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free loopback port")
}

fn start_sink(folder: &Path) -> Sink {
    use std::os::unix::fs::PermissionsExt;

    let dumps = folder.join("sink");
    fs::create_dir_all(&dumps).expect("dump folder");
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let mut command = Command::new(SMTP_SINK);
    // smtp-sink refuses to run as root without -u; the user it switches to
    // must be able to write the dumps.
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|output| text(&output.stdout).trim() == "0")
        .unwrap_or(false);
    if is_root {
        fs::set_permissions(folder, fs::Permissions::from_mode(0o755)).expect("chmod");
        fs::set_permissions(&dumps, fs::Permissions::from_mode(0o777)).expect("chmod");
        command.args(["-u", "nobody"]);
    }
    let template = format!("{}/%Y%m%d%H%M%S.", dumps.display());
    let child = command
        .args(["-d", &template, &address, "100"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("smtp-sink starts");

    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(&address).is_err() {
        assert!(
            Instant::now() < deadline,
            "smtp-sink does not listen on {address}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Sink {
        child,
        address,
        folder: dumps,
    }
}

fn read_dumps(folder: &Path) -> Vec<Dump> {
    let mut paths: Vec<PathBuf> = fs::read_dir(folder)
        .expect("dump folder")
        .map(|entry| entry.expect("entry").path())
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|path| parse_dump(&fs::read(path).expect("dump")))
        .collect()
}

fn parse_dump(bytes: &[u8]) -> Dump {
    let mut mail_from = String::new();
    let mut rcpt_to = Vec::new();
    let mut rest = bytes;
    // smtp-sink's own lines end with its three-line Received header.
    let mut in_received = false;
    loop {
        let end = rest
            .iter()
            .position(|&byte| byte == b'\n')
            .expect("dump line")
            + 1;
        let line = text(&rest[..end - 1]);
        if in_received && !line.starts_with('\t') {
            break;
        }
        if let Some(args) = line.strip_prefix("X-Mail-Args: ") {
            mail_from = address_in(args);
        } else if let Some(args) = line.strip_prefix("X-Rcpt-Args: ") {
            rcpt_to.push(address_in(args));
        } else if line.starts_with("Received: ") {
            in_received = true;
        }
        rest = &rest[end..];
    }
    let message = rest.strip_suffix(b"\n").unwrap_or(rest).to_vec();
    Dump {
        mail_from,
        rcpt_to,
        message,
    }
}

fn address_in(args: &str) -> String {
    args.split('>')
        .next()
        .unwrap_or("")
        .trim_start_matches('<')
        .to_owned()
}

fn lf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut iter = bytes.iter().peekable();
    while let Some(&byte) = iter.next() {
        if byte == b'\r' && iter.peek() == Some(&&b'\n') {
            continue;
        }
        out.push(byte);
    }
    out
}

#[test]
fn scenario_through_proxy_and_smtp_sink() {
    let scenario = repo().join("fixtures/scenario");
    let manifest_path = scenario.join("manifest.json");
    if !manifest_path.exists() {
        eprintln!(
            "skipped: no reference scenario at {}",
            manifest_path.display()
        );
        return;
    }
    if !Path::new(SMTP_SINK).exists() {
        assert!(
            std::env::var("GATEHOUSE_REQUIRE_POSTFIX").as_deref() != Ok("1"),
            "GATEHOUSE_REQUIRE_POSTFIX=1 but {SMTP_SINK} is missing; install Debian's postfix package"
        );
        eprintln!(
            "skipped: {SMTP_SINK} not found; install Debian's postfix package to run this test"
        );
        return;
    }
    let manifest: Vec<Entry> = serde_json::from_slice(&fs::read(&manifest_path).expect("manifest"))
        .expect("manifest JSON");

    let folder = tempfile::tempdir().expect("temporary folder");
    let sink = start_sink(folder.path());
    let config = folder.path().join("gatehouse.toml");
    fs::write(
        &config,
        format!(
            "[gateway]\nlocal_domains = [\"example.com\"]\n[smtp]\nlisten = \"127.0.0.1:0\"\nupstream = \"{}\"\nhostname = \"gatehouse.test\"\n",
            sink.address
        ),
    )
    .expect("config written");
    let config_arg = config.display().to_string();

    // Learn the organisation's history before the gateway starts.
    let history = scenario.join("history").display().to_string();
    let learned = run(folder.path(), &["learn", "--config", &config_arg, &history]);
    assert!(
        learned.status.success(),
        "learn failed: {}",
        text(&learned.stderr)
    );

    // Send every live and campaign message in manifest order.
    let server = Server::start(&config);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let sent: Vec<(&Entry, Vec<u8>)> = manifest
        .iter()
        .filter(|entry| entry.phase == "live" || entry.phase == "campaign")
        .map(|entry| {
            (
                entry,
                fs::read(scenario.join(&entry.file)).expect("scenario message"),
            )
        })
        .collect();
    for (entry, message) in &sent {
        let reply = runtime.block_on(common::send(
            server.address,
            &entry.mail_from,
            &entry.rcpt_to,
            message,
        ));
        assert_eq!(
            reply.code,
            250,
            "{}: {reply:?}\n{}",
            entry.file,
            server.log()
        );
    }

    // Where each message ended up: smtp-sink's dumps or the quarantine.
    let dumps = read_dumps(&sink.folder);
    let held_folder = folder.path().join("quarantine/held");
    let mut held: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for entry in fs::read_dir(&held_folder).expect("held folder") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|ext| ext == "eml") {
            let id = path
                .file_stem()
                .and_then(|stem| stem.to_str())
                .unwrap_or("")
                .to_owned();
            held.insert(id, fs::read(&path).expect("held message"));
        }
    }
    let is_delivered = |message: &[u8]| {
        dumps.iter().any(|dump| {
            strip_added_headers(&dump.message).is_some_and(|original| original == lf(message))
        })
    };
    let held_id = |message: &[u8]| {
        held.iter()
            .find(|(_, raw)| strip_added_headers(raw).is_some_and(|original| original == message))
            .map(|(id, _)| id.clone())
    };

    let mut campaign_held = 0;
    let mut wrongly_delivered = Vec::new();
    let mut wrongly_held = Vec::new();
    let mut lost = Vec::new();
    let mut first_held = None;
    for (entry, message) in &sent {
        let delivered = is_delivered(message);
        let id = held_id(message);
        match (entry.phase.as_str(), delivered, &id) {
            (_, false, None) => lost.push(entry.file.clone()),
            ("campaign", false, Some(id)) => {
                campaign_held += 1;
                first_held.get_or_insert_with(|| {
                    ((entry.mail_from.clone(), entry.rcpt_to.clone()), id.clone())
                });
            }
            ("campaign", true, _) => wrongly_delivered.push(entry.file.clone()),
            (_, true, None) => {}
            (_, _, Some(_)) => wrongly_held.push(entry.file.clone()),
        }
    }
    assert!(
        lost.is_empty(),
        "messages neither upstream nor held: {lost:?}"
    );
    assert!(
        wrongly_held.is_empty(),
        "live messages held: {wrongly_held:?}"
    );
    assert!(
        wrongly_delivered.is_empty(),
        "campaign messages delivered: {wrongly_delivered:?}"
    );
    assert_eq!(campaign_held, 55);
    assert_eq!(dumps.len(), sent.len() - 55, "upstream transactions");

    // Release one held message and find it upstream with its original envelope.
    let ((mail_from, rcpt_to), id) = first_held.expect("a held campaign message");
    let released = run(
        folder.path(),
        &["quarantine", "release", &id, "--config", &config_arg],
    );
    assert!(
        released.status.success(),
        "release failed: {}",
        text(&released.stderr)
    );
    let dumps = read_dumps(&sink.folder);
    let found = dumps
        .iter()
        .any(|dump| dump.mail_from == mail_from && dump.rcpt_to == rcpt_to);
    assert!(
        found,
        "released {id} is not upstream with <{mail_from}> to {rcpt_to:?}"
    );
    assert!(
        folder
            .path()
            .join(format!("quarantine/released/{id}.eml"))
            .exists()
    );

    // The server holds the graph store, so it learns the release itself.
    let marker = folder
        .path()
        .join(format!("quarantine/released/{id}.learned"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !marker.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        marker.exists(),
        "gatehouse serve did not learn the release of {id}"
    );

    let status = server.stop();
    assert!(status.success(), "gatehouse serve exit status {status:?}");
}
