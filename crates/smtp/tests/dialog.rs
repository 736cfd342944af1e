//! SMTP dialogs against the real proxy on a loopback port.
//!
//! Each script is what a client sends (`C:` a line, CRLF added; `R:` raw
//! bytes with `\r` and `\n` escapes) and the reply the proxy must send (`S:`, a
//! whole reply line; a trailing `*` matches any rest of the line).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gatehouse_engine::{Engine, Limits as EngineLimits};
use gatehouse_graph::RedbGraph;
use gatehouse_policy::Policy;
use gatehouse_quarantine::{Quarantine, QuarantineId};
use gatehouse_smtp::{Delivery, Gateway, Limits, Maildir, Upstream};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// Thresholds that deliver every message, whatever the signals.
const DELIVER_ALL: &str = "[thresholds]\ntag = 1000.0\nhold = 2000.0\n[weights]\n";
/// A policy under which every message from a sender never seen before is held.
const HOLD_ALL: &str = "may_hold_alone = [\"sender.first_contact\"]\n\
    [thresholds]\ntag = 0.5\nhold = 1.0\n\
    [weights]\n\"sender.first_contact\" = 5.0\n\
    [first_contact]\nplain_max_action = \"hold\"\n";

/// A policy under which a first-contact message is tagged.
const TAG_FIRST_CONTACT: &str = "[thresholds]\ntag = 0.5\nhold = 100.0\n\
    [weights]\n\"sender.first_contact\" = 5.0\n";
/// A policy under which a first-contact message is rejected.
const REJECT_FIRST_CONTACT: &str = "may_hold_alone = [\"sender.first_contact\"]\n\
    [thresholds]\ntag = 0.5\nhold = 1.0\nreject = 2.0\n\
    [weights]\n\"sender.first_contact\" = 5.0\n\
    [first_contact]\nplain_max_action = \"reject\"\n";

const MESSAGE: &str = "From: Partner <partner@partner.test>\r\nTo: alice@example.com\r\nSubject: hello\r\n\r\nSee you tomorrow.\r\n";

struct Proxy {
    address: std::net::SocketAddr,
    folder: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Proxy {
    async fn start(policy: &str, upstream: Option<String>, limits: Limits) -> Proxy {
        let folder = tempfile::tempdir().expect("temporary folder");
        let policy = Policy::from_toml(policy, "test policy").expect("valid policy");
        let graph = RedbGraph::open(&folder.path().join("graph.redb")).expect("graph opens");
        let engine = Engine::new(
            Arc::new(policy),
            Arc::new(graph),
            EngineLimits::default(),
            vec!["example.com".to_owned()],
        );
        let quarantine =
            Quarantine::open(&folder.path().join("quarantine")).expect("quarantine opens");
        let delivery = match upstream {
            Some(address) => Delivery::Upstream(Upstream {
                address,
                hostname: "mx.test".to_owned(),
                timeout: Duration::from_secs(5),
            }),
            None => Delivery::Maildir(Maildir {
                path: folder.path().join("delivered"),
                hostname: "mx.test".to_owned(),
            }),
        };
        let gateway = Gateway::new(Arc::new(engine), quarantine, delivery, "mx.test", limits);

        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("local address");
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(gatehouse_smtp::serve(listener, Arc::new(gateway), async {
            let _ = stopped.await;
        }));
        Proxy {
            address,
            folder,
            stop: Some(stop),
            task,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.folder.path().join(name)
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let stopped = tokio::time::timeout(Duration::from_secs(10), &mut self.task).await;
        assert!(stopped.is_ok(), "proxy did not stop");
    }
}

fn files_in(folder: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("folder entry").path())
        .collect();
    files.sort();
    files
}

fn unescape(text: &str) -> Vec<u8> {
    text.replace("\\r", "\r").replace("\\n", "\n").into_bytes()
}

/// Plays a script; returns the server lines read, for further checks.
async fn dialog(address: std::net::SocketAddr, script: &str) -> Vec<String> {
    let stream = TcpStream::connect(address).await.expect("connect");
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    let mut seen = Vec::new();
    for (number, line) in script.lines().map(str::trim_start).enumerate() {
        if line.is_empty() {
            continue;
        }
        let (kind, text) = line.split_at(3);
        match kind {
            "C: " => {
                writer
                    .write_all(format!("{text}\r\n").as_bytes())
                    .await
                    .expect("write");
            }
            "R: " => writer.write_all(&unescape(text)).await.expect("write"),
            "S: " => {
                let mut reply = String::new();
                let read =
                    tokio::time::timeout(Duration::from_secs(20), reader.read_line(&mut reply))
                        .await;
                assert!(
                    read.is_ok(),
                    "script line {}: no reply to expect {text:?}",
                    number + 1
                );
                let reply = reply.trim_end_matches("\r\n").to_owned();
                let matches = match text.strip_suffix('*') {
                    Some(prefix) => reply.starts_with(prefix),
                    None => reply == text,
                };
                assert!(
                    matches,
                    "script line {}: expected {text:?}, got {reply:?}",
                    number + 1
                );
                seen.push(reply);
            }
            other => panic!("script line {}: unknown kind {other:?}", number + 1),
        }
    }
    seen
}

#[tokio::test]
async fn ehlo_lists_extensions() {
    let proxy = Proxy::start(DELIVER_ALL, None, Limits::default()).await;

    dialog(
        proxy.address,
        "S: 220 mx.test ESMTP Gatehouse
         C: EHLO client.test
         S: 250-mx.test greets 127.0.0.1
         S: 250-PIPELINING
         S: 250-SIZE 52428800
         S: 250-8BITMIME
         S: 250 ENHANCEDSTATUSCODES
         C: QUIT
         S: 221 2.0.0 mx.test closing connection",
    )
    .await;
    proxy.stop().await;
}

#[tokio::test]
async fn delivered_message_lands_in_maildir() {
    let proxy = Proxy::start(DELIVER_ALL, None, Limits::default()).await;

    dialog(
        proxy.address,
        "S: 220 *
         C: EHLO client.test
         S: 250-*
         S: 250-*
         S: 250-*
         S: 250-*
         S: 250 *
         C: MAIL FROM:<partner@partner.test>
         S: 250 2.1.0 Ok
         C: RCPT TO:<alice@example.com>
         S: 250 2.1.5 Ok
         C: DATA
         S: 354 End data with <CR><LF>.<CR><LF>
         R: From: Partner <partner@partner.test>\\r\\nSubject: dots\\r\\n\\r\\n..leading dot\\r\\n.\\r\\n
         S: 250 2.0.0 Ok: delivered as *
         C: QUIT
         S: 221 *",
    )
    .await;

    let delivered = files_in(&proxy.path("delivered/new"));
    assert_eq!(delivered.len(), 1);
    let text = std::fs::read_to_string(&delivered[0]).expect("delivered file");
    assert!(text.starts_with("Return-Path: <partner@partner.test>\r\nDelivered-To: alice@example.com\r\nReceived: from client.test ([127.0.0.1])\r\n"), "{text}");
    assert!(
        text.ends_with("\r\nSubject: dots\r\n\r\n.leading dot\r\n"),
        "{text}"
    );
    proxy.stop().await;
}

#[tokio::test]
async fn held_message_lands_in_quarantine() {
    let proxy = Proxy::start(HOLD_ALL, None, Limits::default()).await;

    let replies = dialog(
        proxy.address,
        &format!(
            "S: 220 *
             C: HELO client.test
             S: 250 mx.test greets 127.0.0.1
             C: MAIL FROM:<38117@brand.example>
             S: 250 *
             C: RCPT TO:<alice@example.com>
             S: 250 *
             C: DATA
             S: 354 *
             R: {}.\\r\\n
             S: 250 2.0.0 Ok: queued as *",
            MESSAGE.replace("\r\n", "\\r\\n")
        ),
    )
    .await;

    let id = replies[replies.len() - 1]
        .rsplit(' ')
        .next()
        .expect("id")
        .to_owned();
    let held = proxy.path("quarantine/held");
    let eml = std::fs::read_to_string(held.join(format!("{id}.eml"))).expect("held message");
    assert!(
        eml.starts_with(
            "Received: from client.test ([127.0.0.1])\r\n\tby mx.test (Gatehouse) with SMTP id "
        ),
        "{eml}"
    );
    assert!(eml.ends_with(MESSAGE), "{eml}");
    let json = std::fs::read_to_string(held.join(format!("{id}.json"))).expect("held verdict");
    let verdict: serde_json::Value = serde_json::from_str(&json).expect("verdict json");
    assert_eq!(verdict["action"], "hold");
    assert_eq!(verdict["envelope"]["mail_from"], "38117@brand.example");
    assert_eq!(verdict["envelope"]["rcpt_to"][0], "alice@example.com");
    assert!(files_in(&proxy.path("delivered/new")).is_empty());
    proxy.stop().await;
}

#[tokio::test]
async fn pipelined_commands_get_replies_in_order() {
    let proxy = Proxy::start(DELIVER_ALL, None, Limits::default()).await;

    dialog(
        proxy.address,
        "S: 220 *
         R: EHLO client.test\\r\\nMAIL FROM:<a@partner.test>\\r\\nRCPT TO:<b@example.com>\\r\\nRCPT TO:<c@example.com>\\r\\nDATA\\r\\n
         S: 250-*
         S: 250-*
         S: 250-*
         S: 250-*
         S: 250 ENHANCEDSTATUSCODES
         S: 250 2.1.0 Ok
         S: 250 2.1.5 Ok
         S: 250 2.1.5 Ok
         S: 354 *
         R: Subject: two\\r\\n\\r\\nbody\\r\\n.\\r\\nNOOP\\r\\nQUIT\\r\\n
         S: 250 2.0.0 Ok: delivered as *
         S: 250 2.0.0 Ok
         S: 221 *",
    )
    .await;

    assert_eq!(files_in(&proxy.path("delivered/new")).len(), 1);
    proxy.stop().await;
}

#[tokio::test]
async fn bare_lf_smuggling_is_rejected() {
    let proxy = Proxy::start(DELIVER_ALL, None, Limits::default()).await;

    // The `\n.\r\n` ends the message only for a lenient server, which would
    // then take the second MAIL as a new transaction.
    dialog(
        proxy.address,
        "S: 220 *
         C: HELO client.test
         S: 250 *
         C: MAIL FROM:<a@partner.test>
         S: 250 *
         C: RCPT TO:<b@example.com>
         S: 250 *
         C: DATA
         S: 354 *
         R: Subject: x\\r\\n\\r\\nhi\\n.\\r\\nMAIL FROM:<admin@example.com>\\r\\nRCPT TO:<b@example.com>\\r\\nDATA\\r\\nSubject: smuggled\\r\\n\\r\\nx\\r\\n.\\r\\n
         S: 550 5.6.0 Message contains a bare CR or LF; lines must end with CRLF
         C: NOOP
         S: 250 2.0.0 Ok",
    )
    .await;

    assert!(files_in(&proxy.path("delivered/new")).is_empty());
    proxy.stop().await;
}

#[tokio::test]
async fn bare_cr_is_rejected() {
    let proxy = Proxy::start(DELIVER_ALL, None, Limits::default()).await;

    dialog(
        proxy.address,
        "S: 220 *
         C: HELO client.test
         S: 250 *
         C: MAIL FROM:<a@partner.test>
         S: 250 *
         C: RCPT TO:<b@example.com>
         S: 250 *
         C: DATA
         S: 354 *
         R: Subject: x\\r\\n\\r\\nhi\\r.\\rmore\\r\\n.\\r\\n
         S: 550 5.6.0 *",
    )
    .await;

    assert!(files_in(&proxy.path("delivered/new")).is_empty());
    proxy.stop().await;
}

#[tokio::test]
async fn oversized_message_is_refused_and_session_continues() {
    let limits = Limits {
        max_message_bytes: 100,
        ..Limits::default()
    };
    let proxy = Proxy::start(DELIVER_ALL, None, limits).await;
    let big_line = "x".repeat(300);

    dialog(
        proxy.address,
        &format!(
            "S: 220 *
             C: EHLO client.test
             S: 250-*
             S: 250-*
             S: 250-SIZE 100
             S: 250-*
             S: 250 *
             C: MAIL FROM:<a@partner.test> SIZE=500
             S: 552 5.3.4 Message size exceeds the maximum of 100 bytes
             C: MAIL FROM:<a@partner.test>
             S: 250 *
             C: RCPT TO:<b@example.com>
             S: 250 *
             C: DATA
             S: 354 *
             C: {big_line}
             C: .
             S: 552 5.3.4 Message exceeds the maximum size of 100 bytes
             C: MAIL FROM:<a@partner.test>
             S: 250 2.1.0 Ok"
        ),
    )
    .await;

    assert!(files_in(&proxy.path("delivered/new")).is_empty());
    proxy.stop().await;
}

#[tokio::test]
async fn long_command_line_is_drained() {
    let proxy = Proxy::start(DELIVER_ALL, None, Limits::default()).await;
    let long = "x".repeat(5000);

    dialog(
        proxy.address,
        &format!(
            "S: 220 *
             C: NOOP {long}
             S: 500 5.5.2 Line too long, the limit is 2048 bytes
             C: NOOP
             S: 250 2.0.0 Ok"
        ),
    )
    .await;
    proxy.stop().await;
}

#[tokio::test]
async fn sequence_errors_then_421() {
    let proxy = Proxy::start(DELIVER_ALL, None, Limits::default()).await;

    dialog(
        proxy.address,
        "S: 220 *
         C: MAIL FROM:<a@partner.test>
         S: 503 5.5.1 Send EHLO or HELO first
         C: HELO client.test
         S: 250 *
         C: DATA
         S: 503 5.5.1 Need MAIL and RCPT commands
         C: WHATEVER
         S: 421 4.7.0 mx.test closing connection after too many errors",
    )
    .await;
    proxy.stop().await;
}

#[tokio::test]
async fn upstream_unreachable_defers_and_keeps_nothing() {
    // A port that was just free: nothing listens on it.
    let closed = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = closed.local_addr().expect("address").to_string();
    drop(closed);
    let proxy = Proxy::start(DELIVER_ALL, Some(address), Limits::default()).await;

    dialog(
        proxy.address,
        &format!(
            "S: 220 *
             C: HELO client.test
             S: 250 *
             C: MAIL FROM:<a@partner.test>
             S: 250 *
             C: RCPT TO:<b@example.com>
             S: 250 *
             C: DATA
             S: 354 *
             R: {}.\\r\\n
             S: 451 4.4.1 Upstream unavailable, try again later",
            MESSAGE.replace("\r\n", "\\r\\n")
        ),
    )
    .await;

    assert!(files_in(&proxy.path("quarantine/held")).is_empty());
    proxy.stop().await;
}

#[tokio::test]
async fn idle_session_gets_421_at_shutdown() {
    let proxy = Proxy::start(DELIVER_ALL, None, Limits::default()).await;
    let stream = TcpStream::connect(proxy.address).await.expect("connect");
    let mut reader = BufReader::new(stream);
    let mut greeting = String::new();
    reader.read_line(&mut greeting).await.expect("greeting");

    proxy.stop().await;

    let mut line = String::new();
    reader.read_line(&mut line).await.expect("reply");
    assert_eq!(line, "421 4.3.2 mx.test shutting down, try again later\r\n");
}

/// What the mock upstream received in one transaction.
#[derive(Debug, Default, Clone)]
struct Received {
    commands: Vec<String>,
    message: Vec<u8>,
}

/// Starts a minimal upstream MTA. It rejects `RCPT TO:<nobody@...>` with
/// 550, accepts the rest, and records the commands and the message text.
async fn mock_upstream() -> (String, Arc<Mutex<Vec<Received>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    let log = Arc::new(Mutex::new(Vec::new()));
    let shared = Arc::clone(&log);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let log = Arc::clone(&shared);
            tokio::spawn(async move {
                let (reader, mut writer) = stream.into_split();
                let mut reader = BufReader::new(reader);
                let mut current = Received::default();
                let _ = writer.write_all(b"220 upstream.test ESMTP\r\n").await;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                        break;
                    }
                    current.commands.push(line.trim_end().to_owned());
                    let reply: &[u8] = if line.starts_with("EHLO") {
                        b"250-upstream.test\r\n250-8BITMIME\r\n250 SIZE 100000000\r\n"
                    } else if line.starts_with("RCPT TO:<nobody@") {
                        b"550 5.1.1 <nobody@example.com>: Recipient address rejected\r\n"
                    } else if line.starts_with("DATA") {
                        let _ = writer.write_all(b"354 go ahead\r\n").await;
                        loop {
                            let mut data_line = Vec::new();
                            if reader.read_until(b'\n', &mut data_line).await.unwrap_or(0) == 0 {
                                return;
                            }
                            if data_line == b".\r\n" {
                                break;
                            }
                            current.message.extend_from_slice(&data_line);
                        }
                        b"250 2.0.0 Ok: queued as UPSTREAM1\r\n"
                    } else if line.starts_with("QUIT") {
                        let _ = writer.write_all(b"221 2.0.0 Bye\r\n").await;
                        break;
                    } else {
                        b"250 2.0.0 Ok\r\n"
                    };
                    let _ = writer.write_all(reply).await;
                }
                log.lock().expect("log lock").push(current);
            });
        }
    });
    (address, log)
}

#[tokio::test]
async fn relay_passes_message_and_upstream_reply() {
    let (upstream, log) = mock_upstream().await;
    let proxy = Proxy::start(DELIVER_ALL, Some(upstream), Limits::default()).await;

    dialog(
        proxy.address,
        "S: 220 *
         C: EHLO client.test
         S: 250-*
         S: 250-*
         S: 250-*
         S: 250-*
         S: 250 *
         C: MAIL FROM:<partner@partner.test>
         S: 250 *
         C: RCPT TO:<alice@example.com>
         S: 250 *
         C: RCPT TO:<bob@example.com>
         S: 250 *
         C: DATA
         S: 354 *
         R: Subject: caf\u{e9}\\r\\n\\r\\n..dot\\r\\n.\\r\\n
         S: 250 2.0.0 Ok: queued as UPSTREAM1
         C: QUIT
         S: 221 *",
    )
    .await;
    proxy.stop().await;

    let received = log.lock().expect("log lock").clone();
    assert_eq!(received.len(), 1);
    let commands = &received[0].commands;
    assert_eq!(commands[0], "EHLO mx.test");
    assert!(
        commands[1].starts_with("MAIL FROM:<partner@partner.test> BODY=8BITMIME SIZE="),
        "{commands:?}"
    );
    assert_eq!(commands[2], "RCPT TO:<alice@example.com>");
    assert_eq!(commands[3], "RCPT TO:<bob@example.com>");
    let message = String::from_utf8(received[0].message.clone()).expect("utf-8");
    assert!(
        message.starts_with("Received: from client.test ([127.0.0.1])\r\n"),
        "{message}"
    );
    assert!(
        message.ends_with("\r\nSubject: caf\u{e9}\r\n\r\n..dot\r\n"),
        "{message}"
    );
}

#[tokio::test]
async fn upstream_rejection_is_passed_on() {
    let (upstream, log) = mock_upstream().await;
    let proxy = Proxy::start(DELIVER_ALL, Some(upstream), Limits::default()).await;

    dialog(
        proxy.address,
        &format!(
            "S: 220 *
             C: HELO client.test
             S: 250 *
             C: MAIL FROM:<partner@partner.test>
             S: 250 *
             C: RCPT TO:<nobody@example.com>
             S: 250 *
             C: DATA
             S: 354 *
             R: {}.\\r\\n
             S: 550 5.1.1 <nobody@example.com>: Recipient address rejected",
            MESSAGE.replace("\r\n", "\\r\\n")
        ),
    )
    .await;
    proxy.stop().await;

    let received = log.lock().expect("log lock").clone();
    assert!(
        received
            .iter()
            .all(|transaction| transaction.message.is_empty())
    );
}

/// Builds the script of one transaction of MESSAGE that expects `final_reply` after the dot.
fn transaction_script(final_reply: &str) -> String {
    format!(
        "S: 220 *
         C: HELO client.test
         S: 250 *
         C: MAIL FROM:<partner@partner.test>
         S: 250 *
         C: RCPT TO:<alice@example.com>
         S: 250 *
         C: DATA
         S: 354 *
         R: {}.\\r\\n
         S: {final_reply}",
        MESSAGE.replace("\r\n", "\\r\\n")
    )
}

#[tokio::test]
async fn tagged_message_gets_gatehouse_headers() {
    let proxy = Proxy::start(TAG_FIRST_CONTACT, None, Limits::default()).await;

    dialog(
        proxy.address,
        &transaction_script("250 2.0.0 Ok: delivered as *"),
    )
    .await;

    let delivered = files_in(&proxy.path("delivered/new"));
    assert_eq!(delivered.len(), 1);
    let text = std::fs::read_to_string(&delivered[0]).expect("delivered file");
    let headers_end = text.find(MESSAGE).expect("original message kept whole");
    let added = &text[..headers_end];
    assert!(added.contains("\r\nX-Gatehouse-Action: tag\r\n"), "{added}");
    assert!(added.contains("\r\nX-Gatehouse-Score: "), "{added}");
    assert!(
        added.contains("\r\nX-Gatehouse-Signals: sender.first_contact"),
        "{added}"
    );
    proxy.stop().await;
}

#[tokio::test]
async fn rejected_message_gets_550() {
    let proxy = Proxy::start(REJECT_FIRST_CONTACT, None, Limits::default()).await;

    dialog(
        proxy.address,
        &transaction_script("550 5.7.1 Message rejected by policy"),
    )
    .await;

    assert!(files_in(&proxy.path("delivered/new")).is_empty());
    assert!(files_in(&proxy.path("quarantine/held")).is_empty());
    proxy.stop().await;
}

#[tokio::test]
async fn connection_over_limit_gets_421() {
    let limits = Limits {
        max_connections: 1,
        ..Limits::default()
    };
    let proxy = Proxy::start(DELIVER_ALL, None, limits).await;
    let first = TcpStream::connect(proxy.address).await.expect("connect");
    let mut first = BufReader::new(first);
    let mut greeting = String::new();
    first.read_line(&mut greeting).await.expect("greeting");

    dialog(
        proxy.address,
        "S: 421 4.7.0 mx.test has too many connections, try again later",
    )
    .await;

    assert!(greeting.starts_with("220 "), "{greeting}");
    drop(first);
    proxy.stop().await;
}

#[tokio::test]
async fn server_learns_release_made_elsewhere() {
    let proxy = Proxy::start(HOLD_ALL, None, Limits::default()).await;
    let replies = dialog(
        proxy.address,
        &transaction_script("250 2.0.0 Ok: queued as *"),
    )
    .await;
    let id = replies[replies.len() - 1].rsplit(' ').next().expect("id");
    let id = QuarantineId::parse(id).expect("quarantine id");

    // What `gatehouse quarantine release` does while the server holds the graph store.
    let quarantine = Quarantine::open(&proxy.path("quarantine")).expect("quarantine opens");
    let delivery = Delivery::Maildir(Maildir {
        path: proxy.path("delivered"),
        hostname: "mx.test".to_owned(),
    });
    let released = gatehouse_smtp::release(&quarantine, &delivery, id, "tester").await;
    assert!(released.is_ok(), "{released:?}");

    let marker = proxy.path(&format!("quarantine/released/{id}.learned"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !marker.exists() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        marker.exists(),
        "the server did not learn the release of {id}"
    );
    assert_eq!(files_in(&proxy.path("delivered/new")).len(), 1);
    proxy.stop().await;
}

#[tokio::test]
async fn disconnect_inside_data_keeps_nothing() {
    let proxy = Proxy::start(DELIVER_ALL, None, Limits::default()).await;

    dialog(
        proxy.address,
        "S: 220 *
         C: HELO client.test
         S: 250 *
         C: MAIL FROM:<a@partner.test>
         S: 250 *
         C: RCPT TO:<b@example.com>
         S: 250 *
         C: DATA
         S: 354 *
         R: Subject: cut short\\r\\n\\r\\nhalf a mess",
    )
    .await;
    // The script's connection is closed here, before the final dot.
    tokio::time::sleep(Duration::from_millis(200)).await;

    assert!(files_in(&proxy.path("delivered/new")).is_empty());
    assert!(files_in(&proxy.path("delivered/tmp")).is_empty());
    proxy.stop().await;
}
