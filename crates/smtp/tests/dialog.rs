//! SMTP dialogs against the real proxy on a loopback port.
//!
//! Each script is what a client sends (`C:` a line, CRLF added; `R:` raw
//! bytes with `\r` and `\n` escapes) and the reply the proxy must send (`S:`, a
//! whole reply line; a trailing `*` matches any rest of the line).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gatehouse_engine::tagging::TagOptions;
use gatehouse_engine::{Engine, Limits as EngineLimits, TrustedNetworks};
use gatehouse_graph::RedbGraph;
use gatehouse_policy::Policy;
use gatehouse_quarantine::{Quarantine, QuarantineId};
use gatehouse_smtp::{
    Delivery, FailureAction, Gateway, Limits, Maildir, Upstream, UpstreamTimeouts,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
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
        Proxy::start_with(policy, upstream, limits, |gateway| gateway).await
    }

    /// Starts the proxy with a gateway that `configure` may change first.
    async fn start_with(
        policy: &str,
        upstream: Option<String>,
        limits: Limits,
        configure: impl FnOnce(Gateway) -> Gateway,
    ) -> Proxy {
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
                timeouts: UpstreamTimeouts::default().capped(Duration::from_secs(5)),
            }),
            None => Delivery::Maildir(Maildir {
                path: folder.path().join("delivered"),
                hostname: "mx.test".to_owned(),
            }),
        };
        let gateway = configure(Gateway::new(
            Arc::new(engine),
            quarantine,
            delivery,
            "mx.test",
            limits,
        ));

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

    async fn stop(self) {
        self.stop_returning_folder().await;
    }

    /// Stops the proxy and returns its folder for checks after the stop.
    async fn stop_returning_folder(mut self) -> tempfile::TempDir {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let stopped = tokio::time::timeout(Duration::from_secs(10), &mut self.task).await;
        assert!(stopped.is_ok(), "proxy did not stop");
        self.folder
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
         S: 250-SMTPUTF8
         S: 250-ENHANCEDSTATUSCODES
         S: 250-CHUNKING
         S: 250 DSN
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
         S: 250-*
         S: 250-*
         S: 250-*
         S: 250 DSN
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
             S: 250-*
             S: 250-*
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
async fn upstream_unreachable_defers_at_rcpt() {
    // A port that was just free: nothing listens on it.
    let closed = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = closed.local_addr().expect("address").to_string();
    drop(closed);
    let proxy = Proxy::start(DELIVER_ALL, Some(address), Limits::default()).await;

    dialog(
        proxy.address,
        "S: 220 *
         C: HELO client.test
         S: 250 *
         C: MAIL FROM:<a@partner.test>
         S: 250 2.1.0 Ok
         C: RCPT TO:<b@example.com>
         S: 451 4.4.1 Upstream unavailable, try again later
         C: RCPT TO:<c@example.com>
         S: 451 4.4.1 Upstream unavailable, try again later
         C: DATA
         S: 503 5.5.1 No valid recipients
         C: QUIT
         S: 221 *",
    )
    .await;

    assert!(files_in(&proxy.path("quarantine/held")).is_empty());
    proxy.stop().await;
}

#[tokio::test]
async fn upstream_lost_mid_transaction_defers_the_rest() {
    let (upstream, log) = mock_upstream(PLAIN_EHLO).await;
    let proxy = Proxy::start(DELIVER_ALL, Some(upstream), Limits::default()).await;

    dialog(
        proxy.address,
        &format!(
            "S: 220 *
             C: HELO client.test
             S: 250 *
             C: MAIL FROM:<partner@partner.test>
             S: 250 2.1.0 Ok
             C: RCPT TO:<alice@example.com>
             S: 250 2.0.0 Ok
             C: RCPT TO:<hangup@example.com>
             S: 451 4.4.1 Upstream unavailable, try again later
             C: RCPT TO:<bob@example.com>
             S: 451 4.4.1 Upstream unavailable, try again later
             C: DATA
             S: 354 *
             R: {}.\\r\\n
             S: 451 4.4.1 Upstream unavailable, try again later
             C: QUIT
             S: 221 *",
            MESSAGE.replace("\r\n", "\\r\\n")
        ),
    )
    .await;
    assert!(files_in(&proxy.path("quarantine/held")).is_empty());
    proxy.stop().await;

    // Alice's acceptance went with the lost connection: the message must not
    // go out on a new one for Bob alone.
    let received = log.lock().expect("log lock").clone();
    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0].commands.last().map(String::as_str),
        Some("RCPT TO:<hangup@example.com>")
    );
    assert!(received[0].message.is_empty());
}

#[tokio::test]
async fn upstream_timeout_before_message_is_replayed() {
    let (upstream, log) = mock_upstream(DSN_EHLO).await;
    let proxy = Proxy::start(DELIVER_ALL, Some(upstream), Limits::default()).await;

    dialog(
        proxy.address,
        &format!(
            "S: 220 *
             C: EHLO client.test
             S: 250-*
             S: 250-*
             S: 250-*
             S: 250-*
             S: 250-*
             S: 250-*
             S: 250-*
             S: 250 *
             C: MAIL FROM:<partner@partner.test> RET=HDRS
             S: 250 2.1.0 Ok
             C: RCPT TO:<slow@example.com>
             S: 250 2.1.5 Ok
             C: RCPT TO:<alice@example.com> NOTIFY=NEVER
             S: 250 2.0.0 Ok
             C: DATA
             S: 354 *
             R: {}.\\r\\n
             S: 250 2.0.0 Ok: queued as UPSTREAM1
             C: QUIT
             S: 221 *",
            MESSAGE.replace("\r\n", "\\r\\n")
        ),
    )
    .await;
    proxy.stop().await;

    // The first connection got the 421 at DATA; the second carried the
    // same envelope and the message.
    let received = log.lock().expect("log lock").clone();
    assert_eq!(received.len(), 2, "{received:?}");
    assert!(received[0].message.is_empty());
    let commands = &received[1].commands;
    assert_eq!(commands[1], "MAIL FROM:<partner@partner.test> RET=HDRS");
    assert_eq!(commands[2], "RCPT TO:<slow@example.com>");
    assert_eq!(commands[3], "RCPT TO:<alice@example.com> NOTIFY=NEVER");
    let message = String::from_utf8(received[1].message.clone()).expect("utf-8");
    assert!(message.ends_with(MESSAGE), "{message}");
}

#[tokio::test]
async fn upstream_421_at_rcpt_becomes_451() {
    let (upstream, _log) = mock_upstream(PLAIN_EHLO).await;
    let proxy = Proxy::start(DELIVER_ALL, Some(upstream), Limits::default()).await;

    dialog(
        proxy.address,
        "S: 220 *
         C: HELO client.test
         S: 250 *
         C: MAIL FROM:<partner@partner.test>
         S: 250 2.1.0 Ok
         C: RCPT TO:<busy@example.com>
         S: 451 4.4.1 Upstream unavailable, try again later
         C: RCPT TO:<alice@example.com>
         S: 451 4.4.1 Upstream unavailable, try again later
         C: QUIT
         S: 221 *",
    )
    .await;
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

/// Connects to the proxy and returns a line reader and a writer for the socket.
async fn connect_split(
    address: std::net::SocketAddr,
) -> (
    BufReader<tokio::net::tcp::OwnedReadHalf>,
    tokio::net::tcp::OwnedWriteHalf,
) {
    let stream = TcpStream::connect(address).await.expect("connect");
    let (reader, writer) = stream.into_split();
    (BufReader::new(reader), writer)
}

/// The EHLO reply of a plain upstream MTA.
const PLAIN_EHLO: &[u8] = b"250-upstream.test\r\n250-8BITMIME\r\n250 SIZE 100000000\r\n";

/// An upstream that takes DSN parameters (RFC 3461).
const DSN_EHLO: &[u8] = b"250-upstream.test\r\n250-DSN\r\n250 8BITMIME\r\n";

/// An upstream that takes pipelined commands (RFC 2920).
const PIPELINING_EHLO: &[u8] = b"250-upstream.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n";

/// Starts a minimal upstream MTA that replies to EHLO with `ehlo`. It rejects
/// `MAIL FROM:<refused@...>` with 553, RCPT without an accepted MAIL with
/// 503 and `RCPT TO:<nobody@...>` with 550, closes the connection without a
/// reply at `RCPT TO:<hangup@...>` and with 421 at `RCPT TO:<busy@...>`.
/// After `RCPT TO:<slow@...>`, the first message of the mock's life gets
/// 421 as for an idle timeout, and the connection closes. It accepts the
/// rest, takes the message with
/// DATA or BDAT, answers XCLIENT with a new greeting, and records the
/// commands and the message text of each transaction.
async fn mock_upstream(ehlo: &'static [u8]) -> (String, Arc<Mutex<Vec<Received>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    let log = Arc::new(Mutex::new(Vec::new()));
    let shared = Arc::clone(&log);
    let timed_out = Arc::new(AtomicBool::new(false));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let log = Arc::clone(&shared);
            let timed_out = Arc::clone(&timed_out);
            tokio::spawn(async move {
                let (reader, mut writer) = stream.into_split();
                let mut reader = BufReader::new(reader);
                let mut current = Received::default();
                let mut mail_open = false;
                let mut slow = false;
                let _ = writer.write_all(b"220 upstream.test ESMTP\r\n").await;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                        break;
                    }
                    current.commands.push(line.trim_end().to_owned());
                    let reply: &[u8] = if line.starts_with("EHLO") {
                        ehlo
                    } else if line.starts_with("XCLIENT") {
                        b"220 upstream.test ESMTP\r\n"
                    } else if line.starts_with("MAIL FROM:<refused@") {
                        mail_open = false;
                        b"553 5.7.1 <refused@partner.test>: Sender address rejected\r\n"
                    } else if line.starts_with("MAIL") {
                        mail_open = true;
                        slow = false;
                        b"250 2.0.0 Ok\r\n"
                    } else if line.starts_with("RCPT") && !mail_open {
                        b"503 5.5.1 Error: need MAIL command\r\n"
                    } else if line.starts_with("RCPT TO:<hangup@") {
                        break;
                    } else if line.starts_with("RCPT TO:<busy@") {
                        let _ = writer
                            .write_all(b"421 4.3.2 upstream.test Service shutting down\r\n")
                            .await;
                        break;
                    } else if (line.starts_with("DATA") || line.starts_with("BDAT"))
                        && slow
                        && !timed_out.swap(true, Ordering::SeqCst)
                    {
                        let _ = writer
                            .write_all(b"421 4.4.2 upstream.test Error: timeout exceeded\r\n")
                            .await;
                        break;
                    } else if line.starts_with("RCPT TO:<slow@") {
                        slow = true;
                        b"250 2.1.5 Ok\r\n"
                    } else if line.starts_with("RCPT TO:<nobody@") {
                        b"550 5.1.1 <nobody@example.com>: Recipient address rejected\r\n"
                    } else if line.starts_with("DATA") {
                        mail_open = false;
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
                    } else if let Some(size) = line.strip_prefix("BDAT ") {
                        let size: usize = size
                            .split_whitespace()
                            .next()
                            .and_then(|n| n.parse().ok())
                            .unwrap_or(0);
                        let mut chunk = vec![0u8; size];
                        if reader.read_exact(&mut chunk).await.is_err() {
                            return;
                        }
                        current.message.extend_from_slice(&chunk);
                        mail_open = false;
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
    let (upstream, log) = mock_upstream(PLAIN_EHLO).await;
    let proxy = Proxy::start(DELIVER_ALL, Some(upstream), Limits::default()).await;

    dialog(
        proxy.address,
        "S: 220 *
         C: EHLO client.test
         S: 250-*
         S: 250-*
         S: 250-*
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
    assert_eq!(commands[1], "MAIL FROM:<partner@partner.test>");
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
async fn refused_recipient_gets_upstream_reply_others_delivered() {
    let (upstream, log) = mock_upstream(PLAIN_EHLO).await;
    let proxy = Proxy::start(DELIVER_ALL, Some(upstream), Limits::default()).await;

    dialog(
        proxy.address,
        &format!(
            "S: 220 *
             C: HELO client.test
             S: 250 *
             C: MAIL FROM:<partner@partner.test>
             S: 250 2.1.0 Ok
             C: RCPT TO:<nobody@example.com>
             S: 550 5.1.1 <nobody@example.com>: Recipient address rejected
             C: RCPT TO:<alice@example.com>
             S: 250 2.0.0 Ok
             C: DATA
             S: 354 *
             R: {}.\\r\\n
             S: 250 2.0.0 Ok: queued as UPSTREAM1
             C: QUIT
             S: 221 *",
            MESSAGE.replace("\r\n", "\\r\\n")
        ),
    )
    .await;
    proxy.stop().await;

    let received = log.lock().expect("log lock").clone();
    assert_eq!(received.len(), 1);
    let commands = &received[0].commands;
    assert_eq!(commands[2], "RCPT TO:<nobody@example.com>");
    assert_eq!(commands[3], "RCPT TO:<alice@example.com>");
    assert_eq!(commands[4], "DATA");
    let message = String::from_utf8(received[0].message.clone()).expect("utf-8");
    assert!(message.ends_with(MESSAGE), "{message}");
}

#[tokio::test]
async fn sender_rejected_upstream_at_each_rcpt() {
    let (upstream, log) = mock_upstream(PIPELINING_EHLO).await;
    let proxy = Proxy::start(DELIVER_ALL, Some(upstream), Limits::default()).await;

    dialog(
        proxy.address,
        &format!(
            "S: 220 *
             C: HELO client.test
             S: 250 *
             C: MAIL FROM:<refused@partner.test>
             S: 250 2.1.0 Ok
             C: RCPT TO:<alice@example.com>
             S: 553 5.7.1 <refused@partner.test>: Sender address rejected
             C: RCPT TO:<bob@example.com>
             S: 553 5.7.1 <refused@partner.test>: Sender address rejected
             C: DATA
             S: 503 5.5.1 No valid recipients
             C: RSET
             S: 250 *
             C: MAIL FROM:<partner@partner.test>
             S: 250 2.1.0 Ok
             C: RCPT TO:<alice@example.com>
             S: 250 2.0.0 Ok
             C: DATA
             S: 354 *
             R: {}.\\r\\n
             S: 250 2.0.0 Ok: queued as UPSTREAM1
             C: QUIT
             S: 221 *",
            MESSAGE.replace("\r\n", "\\r\\n")
        ),
    )
    .await;
    proxy.stop().await;

    let received = log.lock().expect("log lock").clone();
    assert_eq!(received.len(), 1);
    // MAIL goes again with each RCPT until the upstream accepts it. The
    // upstream replies to the RCPT pipelined behind a refused MAIL with 503.
    assert_eq!(
        received[0].commands[1..8],
        [
            "MAIL FROM:<refused@partner.test>",
            "RCPT TO:<alice@example.com>",
            "MAIL FROM:<refused@partner.test>",
            "RCPT TO:<bob@example.com>",
            "MAIL FROM:<partner@partner.test>",
            "RCPT TO:<alice@example.com>",
            "DATA",
        ]
    );
    let message = String::from_utf8(received[0].message.clone()).expect("utf-8");
    assert!(message.ends_with(MESSAGE), "{message}");
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

/// Escapes CR and LF for an `R:` script line.
fn raw(text: &str) -> String {
    text.replace('\r', "\\r").replace('\n', "\\n")
}

#[tokio::test]
async fn bdat_chunks_are_delivered_whole() {
    let proxy = Proxy::start(DELIVER_ALL, None, Limits::default()).await;
    let first = "Subject: chunks\r\n\r\n";
    let second = "RSET\r\nMAIL FROM:<evil@example.com>\r\n";

    // The second chunk holds command text: inside BDAT it is message text.
    dialog(
        proxy.address,
        &format!(
            "S: 220 *
             R: EHLO client.test\\r\\nMAIL FROM:<a@partner.test>\\r\\nRCPT TO:<b@example.com>\\r\\n
             S: 250-*
             S: 250-*
             S: 250-*
             S: 250-*
             S: 250-*
             S: 250-*
             S: 250-*
             S: 250 DSN
             S: 250 2.1.0 Ok
             S: 250 2.1.5 Ok
             R: BDAT {} \\r\\n{}BDAT {} LAST\\r\\n{}
             S: 250 2.0.0 {} octets received
             S: 250 2.0.0 Ok: delivered as *
             C: NOOP
             S: 250 2.0.0 Ok",
            first.len(),
            raw(first),
            second.len(),
            raw(second),
            first.len()
        ),
    )
    .await;

    let delivered = files_in(&proxy.path("delivered/new"));
    assert_eq!(delivered.len(), 1);
    let text = std::fs::read_to_string(&delivered[0]).expect("delivered file");
    assert!(text.ends_with(&format!("{first}{second}")), "{text}");
    proxy.stop().await;
}

#[tokio::test]
async fn bdat_bare_lf_is_rejected() {
    let proxy = Proxy::start(DELIVER_ALL, None, Limits::default()).await;
    let chunk = "Subject: x\r\n\r\nhi\n.\nMAIL FROM:<admin@example.com>\r\n";

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
             R: BDAT {} LAST\\r\\n{}
             S: 550 5.6.0 Message contains a bare CR or LF; lines must end with CRLF
             C: NOOP
             S: 250 2.0.0 Ok",
            chunk.len(),
            raw(chunk)
        ),
    )
    .await;

    assert!(files_in(&proxy.path("delivered/new")).is_empty());
    proxy.stop().await;
}

#[tokio::test]
async fn bdat_over_size_is_refused_and_drained() {
    let limits = Limits {
        max_message_bytes: 10,
        ..Limits::default()
    };
    let proxy = Proxy::start(DELIVER_ALL, None, limits).await;
    let big = "x".repeat(20);

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
             R: BDAT 20\\r\\n{big}BDAT 4 LAST\\r\\nNOOP
             S: 552 5.3.4 Message exceeds the maximum size of 10 bytes
             S: 503 5.5.1 Need MAIL and RCPT commands
             C: NOOP
             S: 250 2.0.0 Ok"
        ),
    )
    .await;

    assert!(files_in(&proxy.path("delivered/new")).is_empty());
    proxy.stop().await;
}

#[tokio::test]
async fn bdat_before_mail_is_drained() {
    let proxy = Proxy::start(DELIVER_ALL, None, Limits::default()).await;

    // The 4 bytes `QUIT` are the chunk, not a command.
    dialog(
        proxy.address,
        "S: 220 *
         C: HELO client.test
         S: 250 *
         R: BDAT 4 LAST\\r\\nQUIT
         S: 503 5.5.1 Need MAIL and RCPT commands
         C: NOOP
         S: 250 2.0.0 Ok",
    )
    .await;
    proxy.stop().await;
}

#[tokio::test]
async fn upstream_with_chunking_gets_bdat() {
    let (upstream, log) =
        mock_upstream(b"250-upstream.test\r\n250-CHUNKING\r\n250-SMTPUTF8\r\n250 8BITMIME\r\n")
            .await;
    let proxy = Proxy::start(DELIVER_ALL, Some(upstream), Limits::default()).await;

    dialog(
        proxy.address,
        &format!(
            "S: 220 *
             C: EHLO client.test
             S: 250-*
             S: 250-*
             S: 250-*
             S: 250-*
             S: 250-*
             S: 250-*
             S: 250-*
             S: 250 *
             C: MAIL FROM:<josé@partner.test> SMTPUTF8
             S: 250 *
             C: RCPT TO:<alice@example.com>
             S: 250 *
             C: DATA
             S: 354 *
             R: {}.\\r\\n
             S: 250 2.0.0 Ok: queued as UPSTREAM1",
            raw(MESSAGE)
        ),
    )
    .await;
    proxy.stop().await;

    let received = log.lock().expect("log lock").clone();
    let commands = &received[0].commands;
    assert_eq!(commands[1], "MAIL FROM:<josé@partner.test> SMTPUTF8");
    assert!(commands[3].starts_with("BDAT "), "{commands:?}");
    assert!(commands[3].ends_with(" LAST"), "{commands:?}");
    let message = String::from_utf8(received[0].message.clone()).expect("utf-8");
    assert!(message.contains(" with UTF8SMTP id "), "{message}");
    assert!(message.ends_with(MESSAGE), "{message}");
}

#[tokio::test]
async fn smtputf8_without_upstream_support_is_refused() {
    let (upstream, _log) = mock_upstream(PLAIN_EHLO).await;
    let proxy = Proxy::start(DELIVER_ALL, Some(upstream), Limits::default()).await;

    dialog(
        proxy.address,
        "S: 220 *
         C: EHLO client.test
         S: 250-*
         S: 250-*
         S: 250-*
         S: 250-*
         S: 250-*
         S: 250-*
         S: 250-*
         S: 250 *
         C: MAIL FROM:<josé@partner.test>
         S: 553 5.6.7 Non-ASCII address without SMTPUTF8 in MAIL
         C: MAIL FROM:<josé@partner.test> SMTPUTF8
         S: 250 2.1.0 Ok
         C: RCPT TO:<alice@example.com>
         S: 553 5.6.7 The server behind this gateway does not support SMTPUTF8",
    )
    .await;
    proxy.stop().await;
}

#[tokio::test]
async fn xclient_names_real_client() {
    let (upstream, log) =
        mock_upstream(b"250-upstream.test\r\n250-XCLIENT NAME ADDR PROTO HELO\r\n250 8BITMIME\r\n")
            .await;
    let proxy = Proxy::start(DELIVER_ALL, Some(upstream), Limits::default()).await;

    dialog(
        proxy.address,
        &transaction_script("250 2.0.0 Ok: queued as UPSTREAM1"),
    )
    .await;
    proxy.stop().await;

    let received = log.lock().expect("log lock").clone();
    let commands = &received[0].commands;
    assert_eq!(commands[0], "EHLO mx.test");
    assert_eq!(
        commands[1],
        "XCLIENT NAME=[UNAVAILABLE] ADDR=127.0.0.1 PROTO=SMTP HELO=client.test"
    );
    assert_eq!(commands[2], "EHLO client.test");
    assert_eq!(commands[3], "MAIL FROM:<partner@partner.test>");
}

#[tokio::test]
async fn kept_upstream_connection_names_next_client() {
    let (upstream, log) =
        mock_upstream(b"250-upstream.test\r\n250-XCLIENT NAME ADDR PROTO HELO\r\n250 8BITMIME\r\n")
            .await;
    let proxy = Proxy::start(DELIVER_ALL, Some(upstream), Limits::default()).await;

    let first = transaction_script("250 2.0.0 Ok: queued as UPSTREAM1");
    dialog(proxy.address, &first).await;
    let second = first.replace("HELO client.test", "HELO second.test");
    dialog(proxy.address, &second).await;
    dialog(proxy.address, &second).await;
    proxy.stop().await;

    // All sessions went over one upstream connection, each under its own
    // client. The third had the second's client, so it needed no XCLIENT.
    let received = log.lock().expect("log lock").clone();
    assert_eq!(received.len(), 1, "upstream connections: {received:?}");
    let xclients: Vec<&String> = received[0]
        .commands
        .iter()
        .filter(|command| command.starts_with("XCLIENT"))
        .collect();
    assert_eq!(
        xclients,
        [
            "XCLIENT NAME=[UNAVAILABLE] ADDR=127.0.0.1 PROTO=SMTP HELO=client.test",
            "XCLIENT NAME=[UNAVAILABLE] ADDR=127.0.0.1 PROTO=SMTP HELO=second.test",
        ]
    );
    let mails = received[0]
        .commands
        .iter()
        .filter(|command| command.starts_with("MAIL FROM"))
        .count();
    assert_eq!(mails, 3);
    assert_eq!(
        received[0].commands.last().map(String::as_str),
        Some("QUIT")
    );
}

/// Sends one message in each of two client sessions, `pause` apart, through
/// a proxy in front of an upstream that closes connections as `closing`
/// specifies. Both must be delivered; returns the upstream connections opened.
async fn upstream_connections_for_two_sessions(closing: Closing, pause: Duration) -> usize {
    let (upstream, connections) = closing_upstream(closing).await;
    let proxy = Proxy::start(DELIVER_ALL, Some(upstream), Limits::default()).await;
    let script = transaction_script("250 2.0.0 Ok: queued");

    dialog(proxy.address, &script).await;
    tokio::time::sleep(pause).await;
    dialog(proxy.address, &script).await;
    proxy.stop().await;

    *connections.lock().expect("lock")
}

#[tokio::test]
async fn kept_connection_failing_at_mail_is_replaced() {
    // The second session takes the kept connection, whose MAIL fails.
    let connections =
        upstream_connections_for_two_sessions(Closing::AtSecondMail, Duration::from_millis(100))
            .await;

    assert_eq!(connections, 2);
}

#[tokio::test]
async fn closed_kept_connection_is_not_reused() {
    // The upstream sends its 421 and closes while the connection is kept.
    let farewell: &[u8] = b"421 4.4.2 upstream.test Error: timeout exceeded\r\n";
    let connections = upstream_connections_for_two_sessions(
        Closing::AfterMessage(Some(farewell)),
        Duration::from_millis(200),
    )
    .await;

    assert_eq!(connections, 2);
}

#[tokio::test]
async fn relay_to_other_domain_is_denied() {
    let (upstream, log) = mock_upstream(PLAIN_EHLO).await;
    // No network may relay, so the loopback client counts as a stranger.
    let proxy = Proxy::start_with(DELIVER_ALL, Some(upstream), Limits::default(), |gateway| {
        gateway.with_relay_networks(TrustedNetworks::default())
    })
    .await;

    dialog(
        proxy.address,
        "S: 220 *
         C: HELO client.test
         S: 250 *
         C: MAIL FROM:<partner@partner.test>
         S: 250 *
         C: RCPT TO:<victim@elsewhere.test>
         S: 554 5.7.1 <victim@elsewhere.test>: Relay access denied
         C: RCPT TO:<alice@example.com>
         S: 250 *
         C: QUIT
         S: 221 *",
    )
    .await;
    proxy.stop().await;

    let received = log.lock().expect("log lock").clone();
    let commands = &received[0].commands;
    assert!(
        !commands
            .iter()
            .any(|command| command.contains("elsewhere.test")),
        "{commands:?}"
    );
    assert!(commands.contains(&"RCPT TO:<alice@example.com>".to_owned()));
}

#[tokio::test]
async fn xforward_precedes_each_mail() {
    let (upstream, log) = mock_upstream(
        b"250-upstream.test\r\n250-XFORWARD NAME ADDR PROTO HELO SOURCE\r\n250 8BITMIME\r\n",
    )
    .await;
    let proxy = Proxy::start(DELIVER_ALL, Some(upstream), Limits::default()).await;

    dialog(
        proxy.address,
        &transaction_script("250 2.0.0 Ok: queued as UPSTREAM1"),
    )
    .await;
    proxy.stop().await;

    let received = log.lock().expect("log lock").clone();
    let commands = &received[0].commands;
    assert_eq!(
        commands[1],
        "XFORWARD NAME=[UNAVAILABLE] ADDR=127.0.0.1 PROTO=SMTP HELO=client.test"
    );
    assert_eq!(commands[2], "MAIL FROM:<partner@partner.test>");
}

#[tokio::test]
async fn dsn_parameters_reach_upstream() {
    let (upstream, log) =
        mock_upstream(b"250-upstream.test\r\n250-DSN\r\n250 SIZE 1000000\r\n").await;
    let proxy = Proxy::start(DELIVER_ALL, Some(upstream), Limits::default()).await;

    dialog(
        proxy.address,
        "S: 220 *
         C: EHLO client.test
         S: 250-*
         S: 250-*
         S: 250-*
         S: 250-*
         S: 250-*
         S: 250-*
         S: 250-*
         S: 250 *
         C: MAIL FROM:<a@partner.test> SIZE=300 RET=HDRS ENVID=abc+2Bdef
         S: 250 *
         C: RCPT TO:<b@example.com> NOTIFY=FAILURE,DELAY ORCPT=rfc822;b@example.com
         S: 250 *
         C: QUIT
         S: 221 *",
    )
    .await;
    proxy.stop().await;

    let received = log.lock().expect("log lock").clone();
    let commands = &received[0].commands;
    assert_eq!(
        commands[1],
        "MAIL FROM:<a@partner.test> SIZE=300 RET=HDRS ENVID=abc+2Bdef"
    );
    assert_eq!(
        commands[2],
        "RCPT TO:<b@example.com> NOTIFY=FAILURE,DELAY ORCPT=rfc822;b@example.com"
    );
}

#[tokio::test]
async fn mail_loop_is_rejected() {
    let limits = Limits {
        max_received_headers: 3,
        ..Limits::default()
    };
    let proxy = Proxy::start(DELIVER_ALL, None, limits).await;
    let looped = format!(
        "{}{MESSAGE}",
        "Received: from a by b; Thu, 1 Jan 2026 00:00:00 +0000\r\n".repeat(3)
    );

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
             S: 554 5.4.6 Too many hops (3 Received header fields), mail loop suspected",
            raw(&looped)
        ),
    )
    .await;

    assert!(files_in(&proxy.path("delivered/new")).is_empty());
    proxy.stop().await;
}

#[tokio::test]
async fn analysis_timeout_tempfails() {
    let limits = Limits {
        analysis_timeout: Duration::from_millis(100),
        ..Limits::default()
    };
    let proxy = Proxy::start_with(DELIVER_ALL, None, limits, |gateway| {
        gateway.with_analysis_delay(Duration::from_secs(2))
    })
    .await;

    dialog(
        proxy.address,
        &transaction_script("451 4.3.0 Message could not be scanned, try again later"),
    )
    .await;

    assert!(files_in(&proxy.path("delivered/new")).is_empty());
    proxy.stop().await;
}

#[tokio::test]
async fn analysis_timeout_may_deliver_with_header() {
    let limits = Limits {
        analysis_timeout: Duration::from_millis(100),
        on_analysis_failure: FailureAction::Deliver,
        ..Limits::default()
    };
    let proxy = Proxy::start_with(HOLD_ALL, None, limits, |gateway| {
        gateway.with_analysis_delay(Duration::from_secs(2))
    })
    .await;

    dialog(
        proxy.address,
        &transaction_script("250 2.0.0 Ok: delivered as *"),
    )
    .await;

    let delivered = files_in(&proxy.path("delivered/new"));
    assert_eq!(delivered.len(), 1);
    let text = std::fs::read_to_string(&delivered[0]).expect("delivered file");
    assert!(
        text.contains("\r\nX-Gatehouse-Unscanned: analysis timed out after 0.1 s\r\n"),
        "{text}"
    );
    assert!(text.ends_with(MESSAGE), "{text}");
    proxy.stop().await;
}

#[tokio::test]
async fn idle_client_times_out_with_421() {
    let limits = Limits {
        command_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let proxy = Proxy::start(DELIVER_ALL, None, limits).await;

    dialog(
        proxy.address,
        "S: 220 *
         C: HELO client.test
         S: 250 *
         S: 421 4.4.2 mx.test timed out waiting for input, closing connection",
    )
    .await;
    proxy.stop().await;
}

#[tokio::test]
async fn trickled_command_times_out_with_421() {
    let limits = Limits {
        command_timeout: Duration::from_millis(500),
        ..Limits::default()
    };
    let proxy = Proxy::start(DELIVER_ALL, None, limits).await;
    let (mut reader, mut writer) = connect_split(proxy.address).await;
    let mut greeting = String::new();
    reader.read_line(&mut greeting).await.expect("greeting");
    let started = std::time::Instant::now();

    // One byte every 100 ms of a line that never ends: every read comes in
    // time, but the command as a whole does not.
    let trickle = async {
        for byte in b"EHLO ".iter().chain(std::iter::repeat(&b'a')).take(30) {
            if writer.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let mut reply = String::new();
    let read = async {
        let _ = reader.read_line(&mut reply).await;
        started.elapsed()
    };
    let ((), replied_after) = tokio::join!(trickle, read);

    assert_eq!(
        reply,
        "421 4.4.2 mx.test timed out waiting for input, closing connection\r\n"
    );
    assert!(
        replied_after < Duration::from_millis(2000),
        "the trickled line held the session for {replied_after:?}"
    );
    proxy.stop().await;
}

#[tokio::test]
async fn session_deadline_ends_busy_session() {
    let limits = Limits {
        session_timeout: Duration::from_millis(500),
        ..Limits::default()
    };
    let proxy = Proxy::start(DELIVER_ALL, None, limits).await;
    let (mut reader, mut writer) = connect_split(proxy.address).await;
    let mut lines = Vec::new();

    // NOOP every 100 ms never lets the command timeout trip, only the deadline.
    for _ in 0..20 {
        let _ = writer.write_all(b"NOOP\r\n").await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    loop {
        let mut line = String::new();
        match tokio::time::timeout(Duration::from_secs(5), reader.read_line(&mut line)).await {
            Ok(Ok(0)) | Err(_) | Ok(Err(_)) => break,
            Ok(Ok(_)) => lines.push(line),
        }
    }

    assert_eq!(
        lines.last().map(String::as_str),
        Some("421 4.4.2 mx.test timed out waiting for input, closing connection\r\n")
    );
    assert!(lines.len() < 12, "{lines:?}");
    proxy.stop().await;
}

#[tokio::test]
async fn session_inside_data_finishes_at_shutdown() {
    let proxy = Proxy::start(DELIVER_ALL, None, Limits::default()).await;
    let (mut reader, mut writer) = connect_split(proxy.address).await;
    let mut line = String::new();
    reader.read_line(&mut line).await.expect("greeting");
    writer
        .write_all(b"HELO client.test\r\nMAIL FROM:<a@partner.test>\r\nRCPT TO:<b@example.com>\r\nDATA\r\nSubject: half\r\n")
        .await
        .expect("write");
    for _ in 0..4 {
        line.clear();
        reader.read_line(&mut line).await.expect("reply");
    }
    assert!(line.starts_with("354 "), "{line}");

    let stopping = tokio::spawn(proxy.stop_returning_folder());
    tokio::time::sleep(Duration::from_millis(200)).await;
    writer.write_all(b"\r\nrest\r\n.\r\n").await.expect("write");
    line.clear();
    reader.read_line(&mut line).await.expect("final reply");

    assert!(line.starts_with("250 2.0.0 Ok: delivered as "), "{line}");
    let folder = stopping.await.expect("proxy stopped");
    assert_eq!(files_in(&folder.path().join("delivered/new")).len(), 1);
}

#[tokio::test]
async fn tagging_adds_prefix_and_banner() {
    let options = TagOptions {
        subject_prefix: Some("[External]".to_owned()),
        banner_text: Some("First message from this sender.".to_owned()),
        banner_html: None,
    };
    let proxy = Proxy::start_with(TAG_FIRST_CONTACT, None, Limits::default(), |gateway| {
        gateway.with_tagging(options)
    })
    .await;

    dialog(
        proxy.address,
        &transaction_script("250 2.0.0 Ok: delivered as *"),
    )
    .await;

    let delivered = files_in(&proxy.path("delivered/new"));
    let text = std::fs::read_to_string(&delivered[0]).expect("delivered file");
    assert!(text.contains("\r\nSubject: [External] hello\r\n"), "{text}");
    assert!(
        text.ends_with("\r\n\r\nFirst message from this sender.\r\n\r\nSee you tomorrow.\r\n"),
        "{text}"
    );
    proxy.stop().await;
}

#[tokio::test]
async fn forged_verdict_headers_are_removed() {
    let proxy = Proxy::start(DELIVER_ALL, None, Limits::default()).await;
    let forged = format!("X-Gatehouse-Action: deliver\r\nX-Gatehouse-Score: 0.0\r\n{MESSAGE}");

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
             S: 250 2.0.0 Ok: delivered as *",
            raw(&forged)
        ),
    )
    .await;

    let delivered = files_in(&proxy.path("delivered/new"));
    let text = std::fs::read_to_string(&delivered[0]).expect("delivered file");
    assert!(!text.contains("X-Gatehouse-"), "{text}");
    proxy.stop().await;
}

#[tokio::test]
async fn concurrent_releases_deliver_once() {
    let proxy = Proxy::start(HOLD_ALL, None, Limits::default()).await;
    let replies = dialog(
        proxy.address,
        &transaction_script("250 2.0.0 Ok: queued as *"),
    )
    .await;
    let id = replies[replies.len() - 1].rsplit(' ').next().expect("id");
    let id = QuarantineId::parse(id).expect("quarantine id");
    let quarantine = Quarantine::open(&proxy.path("quarantine")).expect("quarantine opens");

    // Hold the lock as a first release in progress would.
    let lock = quarantine.lock(id).expect("first lock");
    let delivery = Delivery::Maildir(Maildir {
        path: proxy.path("released-mail"),
        hostname: "mx.test".to_owned(),
    });
    let second = gatehouse_smtp::release(&quarantine, &delivery, id, "second").await;
    drop(lock);

    assert!(
        matches!(
            second,
            Err(gatehouse_smtp::ReleaseError::Quarantine(
                gatehouse_quarantine::QuarantineError::Busy { .. }
            ))
        ),
        "{second:?}"
    );
    assert!(files_in(&proxy.path("released-mail/new")).is_empty());
    let third = gatehouse_smtp::release(&quarantine, &delivery, id, "third").await;
    assert!(third.is_ok(), "{third:?}");
    assert_eq!(files_in(&proxy.path("released-mail/new")).len(), 1);
    proxy.stop().await;
}

/// Makes a self-signed certificate for `mx.test` and returns its acceptor and a client config that trusts it.
fn test_tls(folder: &Path) -> (tokio_rustls::TlsAcceptor, tokio_rustls::TlsConnector) {
    use tokio_rustls::rustls;

    let certified =
        rcgen::generate_simple_self_signed(vec!["mx.test".to_owned()]).expect("test certificate");
    let certificate = folder.join("cert.pem");
    let key = folder.join("key.pem");
    std::fs::write(&certificate, certified.cert.pem()).expect("certificate written");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("key written");
    let acceptor = gatehouse_smtp::tls::acceptor(&certificate, &key).expect("acceptor");

    let mut roots = rustls::RootCertStore::empty();
    roots.add(certified.cert.der().clone()).expect("root added");
    #[allow(deprecated)]
    let provider = rustls::crypto::ring::default_provider();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    (acceptor, tokio_rustls::TlsConnector::from(Arc::new(config)))
}

#[tokio::test]
async fn starttls_drops_pipelined_plaintext() {
    let certificates = tempfile::tempdir().expect("temporary folder");
    let (acceptor, connector) = test_tls(certificates.path());
    let proxy = Proxy::start_with(DELIVER_ALL, None, Limits::default(), |gateway| {
        gateway.with_tls(acceptor)
    })
    .await;
    let stream = TcpStream::connect(proxy.address).await.expect("connect");
    let mut stream = BufReader::new(stream);
    let mut line = String::new();
    stream.read_line(&mut line).await.expect("greeting");
    stream
        .get_mut()
        .write_all(b"EHLO client.test\r\n")
        .await
        .expect("write");
    let mut offered = Vec::new();
    loop {
        line.clear();
        stream.read_line(&mut line).await.expect("EHLO reply");
        offered.push(line.clone());
        if line.starts_with("250 ") {
            break;
        }
    }
    assert!(
        offered.iter().any(|line| line == "250 STARTTLS\r\n"),
        "{offered:?}"
    );

    // A command injected after STARTTLS in the same packet (CVE-2011-0411).
    stream
        .get_mut()
        .write_all(b"STARTTLS\r\nRSET\r\n")
        .await
        .expect("write");
    line.clear();
    stream.read_line(&mut line).await.expect("STARTTLS reply");
    assert_eq!(line, "220 2.0.0 Ready to start TLS\r\n");
    let server_name =
        tokio_rustls::rustls::pki_types::ServerName::try_from("mx.test").expect("server name");
    let tls = connector
        .connect(server_name, stream.into_inner())
        .await
        .expect("TLS handshake");
    let mut tls = BufReader::new(tls);

    tls.get_mut().write_all(b"NOOP\r\n").await.expect("write");
    line.clear();
    tls.read_line(&mut line).await.expect("NOOP reply");
    assert_eq!(line, "250 2.0.0 Ok\r\n", "the injected RSET was answered");

    tls.get_mut()
        .write_all(b"EHLO client.test\r\nMAIL FROM:<a@partner.test>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n")
        .await
        .expect("write");
    let mut replies = Vec::new();
    while replies.len() < 11 {
        line.clear();
        tls.read_line(&mut line).await.expect("reply");
        replies.push(line.clone());
    }
    assert!(
        !replies.iter().any(|line| line.contains("STARTTLS")),
        "{replies:?}"
    );
    assert!(replies[10].starts_with("354 "), "{replies:?}");
    tls.get_mut()
        .write_all(format!("{MESSAGE}.\r\n").as_bytes())
        .await
        .expect("write");
    line.clear();
    tls.read_line(&mut line).await.expect("final reply");
    assert!(line.starts_with("250 2.0.0 Ok: delivered as "), "{line}");

    let delivered = files_in(&proxy.path("delivered/new"));
    let text = std::fs::read_to_string(&delivered[0]).expect("delivered file");
    assert!(text.contains(" with ESMTPS id "), "{text}");
    proxy.stop().await;
}

/// When the upstream MTA of [`closing_upstream`] closes a connection.
#[derive(Clone, Copy)]
enum Closing {
    /// Right after the first message, as when its idle timeout ran out,
    /// after sending this reply, if any, 50 ms later, as an MTA sends 421
    /// before it closes an idle session.
    AfterMessage(Option<&'static [u8]>),
    /// At the MAIL of a second message, without a reply.
    AtSecondMail,
}

/// Starts an upstream MTA that closes each connection as `closing` specifies.
/// Returns its address and the number of connections it accepted.
async fn closing_upstream(closing: Closing) -> (String, Arc<Mutex<usize>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    let connections = Arc::new(Mutex::new(0));
    let shared = Arc::clone(&connections);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            *shared.lock().expect("lock") += 1;
            tokio::spawn(async move {
                let (reader, mut writer) = stream.into_split();
                let mut reader = BufReader::new(reader);
                let _ = writer.write_all(b"220 upstream.test ESMTP\r\n").await;
                let mut messages = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    if line.starts_with("EHLO") {
                        let _ = writer.write_all(PLAIN_EHLO).await;
                    } else if line.starts_with("MAIL") && messages > 0 {
                        return;
                    } else if line.starts_with("DATA") {
                        let _ = writer.write_all(b"354 go ahead\r\n").await;
                        let mut data_line = Vec::new();
                        while data_line != b".\r\n" {
                            data_line.clear();
                            if reader.read_until(b'\n', &mut data_line).await.unwrap_or(0) == 0 {
                                return;
                            }
                        }
                        let _ = writer.write_all(b"250 2.0.0 Ok: queued\r\n").await;
                        messages += 1;
                        if let Closing::AfterMessage(farewell) = closing {
                            if let Some(farewell) = farewell {
                                tokio::time::sleep(Duration::from_millis(50)).await;
                                let _ = writer.write_all(farewell).await;
                            }
                            return;
                        }
                    } else {
                        let _ = writer.write_all(b"250 2.0.0 Ok\r\n").await;
                    }
                }
            });
        }
    });
    (address, connections)
}

#[tokio::test]
async fn closed_upstream_connection_is_reopened() {
    let (upstream, connections) = closing_upstream(Closing::AfterMessage(None)).await;
    let proxy = Proxy::start(DELIVER_ALL, Some(upstream), Limits::default()).await;

    dialog(
        proxy.address,
        &format!(
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
             S: 250 2.0.0 Ok: queued
             C: MAIL FROM:<partner@partner.test>
             S: 250 2.1.0 Ok
             C: RCPT TO:<bob@example.com>
             S: 250 2.0.0 Ok
             C: DATA
             S: 354 *
             R: {}.\\r\\n
             S: 250 2.0.0 Ok: queued",
            raw(MESSAGE),
            raw(MESSAGE)
        ),
    )
    .await;
    proxy.stop().await;

    assert_eq!(*connections.lock().expect("lock"), 2);
}
