//! Milter dialogs against the real front on a loopback port, with a real
//! engine, graph and quarantine.
//!
//! A script has one packet per line. `>` lines are what the MTA sends:
//!
//! ```text
//! > negotiate VERSION ACTIONS PROTOCOL     numbers, decimal or 0x hex
//! > macro STAGE NAME=VALUE...              STAGE is the command letter, such as C or M
//! > connect HOSTNAME FAMILY PORT ADDRESS   FAMILY is 4, 6, L or U (U takes no port or address)
//! > helo NAME | mail ARG... | rcpt ARG... | data | eoh | eom | abort | quit | quit-nc
//! > header NAME:VALUE                      VALUE as sent, with its leading space
//! > body TEXT                              \r and \n escapes
//! > body-of SIZE BYTE                      SIZE copies of BYTE, split into 65,535-byte packets
//! > unknown LINE
//! > raw HEX                                bytes as they are, for malformed packets
//! ```
//!
//! `<` lines are the packets the front must send, in order: `negotiate
//! VERSION ACTIONS PROTOCOL`, `continue`, `accept`, `discard`, `reply TEXT`,
//! `add NAME:VALUE`, `change INDEX NAME:VALUE`, or `closed` for the end of
//! the connection. A trailing `*` matches any rest of the line. Progress
//! packets are skipped, because their number depends on the machine's speed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use gatehouse_engine::{Engine, Limits as EngineLimits};
use gatehouse_graph::RedbGraph;
use gatehouse_milter::Limits;
use gatehouse_policy::Policy;
use gatehouse_quarantine::Quarantine;
use gatehouse_smtp::{Delivery, Gateway, Limits as SmtpLimits, Maildir};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// Thresholds that deliver every message, whatever the signals.
const DELIVER_ALL: &str = "[thresholds]\ntag = 1000.0\nhold = 2000.0\n[weights]\n";
/// A policy under which every message from a sender never seen before is held.
const HOLD_ALL: &str = "may_hold_alone = [\"sender.first_contact\"]\n\
    [thresholds]\ntag = 0.5\nhold = 1.0\n\
    [weights]\n\"sender.first_contact\" = 5.0\n\
    [first_contact]\nplain_max_action = \"hold\"\n";
/// A policy under which a first-contact message is rejected.
const REJECT_FIRST_CONTACT: &str = "may_hold_alone = [\"sender.first_contact\"]\n\
    [thresholds]\ntag = 0.5\nhold = 1.0\nreject = 2.0\n\
    [weights]\n\"sender.first_contact\" = 5.0\n\
    [first_contact]\nplain_max_action = \"reject\"\n";

/// What Postfix 3.7 offers: protocol version 6, every action and every event flag.
const POSTFIX_OFFER: &str = "> negotiate 6 0x1ff 0x1fffff";
/// The front's reply to that offer: add and change headers, replace the
/// body, quarantine, set macro lists; no reply to any command before the
/// end of the message; header values with their leading space.
const FRONT_ANSWER: &str = "< negotiate 6 0x133 0x1ff080";

/// The envelope of a message from a partner to a local user, as Postfix sends it.
const ENVELOPE: &str = r"
> macro C j=mx.example.com {daemon_name}=smtpd
> connect mail.partner.test 4 40000 192.0.2.7
> helo mail.partner.test
> macro M i=4Q1 {mail_addr}=partner@partner.test
> mail <partner@partner.test> SIZE=120
> macro R {rcpt_addr}=alice@example.com
> rcpt <alice@example.com>
> data
> header From: Partner <partner@partner.test>
> header To: alice@example.com
> header Subject: hello
> eoh
";

struct Front {
    address: SocketAddr,
    folder: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Front {
    async fn start(policy: &str, limits: Limits) -> Front {
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
        let delivery = Delivery::Maildir(Maildir {
            path: folder.path().join("delivered"),
            hostname: "mx.test".to_owned(),
        });
        let gateway = Gateway::new(
            Arc::new(engine),
            quarantine,
            delivery,
            "mx.test",
            SmtpLimits::default(),
        );

        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("local address");
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(gatehouse_milter::serve(
            listener,
            Arc::new(gateway),
            limits,
            false,
            async {
                let _ = stopped.await;
            },
        ));
        Front {
            address,
            folder,
            stop: Some(stop),
            task,
        }
    }

    fn held(&self) -> Vec<PathBuf> {
        files_in(&self.folder.path().join("quarantine/held"))
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let stopped = tokio::time::timeout(Duration::from_secs(10), &mut self.task).await;
        assert!(stopped.is_ok(), "milter front did not stop");
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

fn held_message(front: &Front) -> Vec<u8> {
    let eml = front
        .held()
        .into_iter()
        .find(|path| path.extension().is_some_and(|ext| ext == "eml"))
        .expect("a held message");
    std::fs::read(eml).expect("held message readable")
}

fn held_verdict(front: &Front) -> serde_json::Value {
    let json = front
        .held()
        .into_iter()
        .find(|path| path.extension().is_some_and(|ext| ext == "json"))
        .expect("a held verdict");
    serde_json::from_slice(&std::fs::read(json).expect("verdict readable")).expect("verdict JSON")
}

fn packet(code: u8, data: &[u8]) -> Vec<u8> {
    let mut out = u32::try_from(data.len() + 1)
        .expect("packet length")
        .to_be_bytes()
        .to_vec();
    out.push(code);
    out.extend_from_slice(data);
    out
}

fn number(text: &str) -> u32 {
    match text.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16).expect("hex number"),
        None => text.parse().expect("number"),
    }
}

fn unescape(text: &str) -> Vec<u8> {
    text.replace("\\r", "\r").replace("\\n", "\n").into_bytes()
}

fn strings(parts: &[&str]) -> Vec<u8> {
    let mut data = Vec::new();
    for part in parts {
        data.extend_from_slice(part.as_bytes());
        data.push(0);
    }
    data
}

/// Encodes one `>` line as the packets the MTA sends.
fn mta_packets(line: &str) -> Vec<Vec<u8>> {
    let (verb, rest) = line.split_once(' ').unwrap_or((line, ""));
    let words: Vec<&str> = rest.split_whitespace().collect();
    let one = |code: u8, data: Vec<u8>| vec![packet(code, &data)];
    match verb {
        "negotiate" => {
            let mut data = Vec::new();
            for word in &words {
                data.extend_from_slice(&number(word).to_be_bytes());
            }
            one(b'O', data)
        }
        "macro" => {
            let mut data = vec![words[0].as_bytes()[0]];
            for pair in &words[1..] {
                let (name, value) = pair.split_once('=').expect("NAME=VALUE");
                data.extend_from_slice(&strings(&[name, value]));
            }
            one(b'D', data)
        }
        "connect" => {
            let mut data = strings(&[words[0]]);
            data.push(words[1].as_bytes()[0]);
            if words[1] != "U" {
                let port: u16 = words[2].parse().expect("port");
                data.extend_from_slice(&port.to_be_bytes());
                data.extend_from_slice(&strings(&[words[3]]));
            }
            one(b'C', data)
        }
        "helo" => one(b'H', strings(&words)),
        "mail" => one(b'M', strings(&words)),
        "rcpt" => one(b'R', strings(&words)),
        "header" => {
            let (name, value) = rest.split_once(':').expect("NAME:VALUE");
            one(b'L', strings(&[name, value]))
        }
        "body" => one(b'B', unescape(rest)),
        "body-of" => {
            let size: usize = words[0].parse().expect("size");
            let body = vec![words[1].as_bytes()[0]; size];
            body.chunks(65_535)
                .map(|chunk| packet(b'B', chunk))
                .collect()
        }
        "unknown" => one(b'U', strings(&[rest])),
        "data" => one(b'T', Vec::new()),
        "eoh" => one(b'N', Vec::new()),
        "eom" => one(b'E', Vec::new()),
        "abort" => one(b'A', Vec::new()),
        "quit" => one(b'Q', Vec::new()),
        "quit-nc" => one(b'K', Vec::new()),
        "raw" => {
            let bytes = (0..rest.len())
                .step_by(2)
                .map(|at| u8::from_str_radix(&rest[at..at + 2], 16).expect("hex byte"))
                .collect();
            vec![bytes]
        }
        other => panic!("unknown script verb {other:?}"),
    }
}

/// Renders a packet from the front in the script's `<` notation.
fn describe(code: u8, data: &[u8]) -> String {
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    let fields = |bytes: &[u8]| -> Vec<String> {
        bytes
            .strip_suffix(b"\0")
            .unwrap_or(bytes)
            .split(|&byte| byte == 0)
            .map(text)
            .collect()
    };
    let word = |at: usize| u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]);
    match code {
        b'O' => format!("negotiate {} 0x{:x} 0x{:x}", word(0), word(4), word(8)),
        b'c' => "continue".to_owned(),
        b'a' => "accept".to_owned(),
        b'd' => "discard".to_owned(),
        b't' => "tempfail".to_owned(),
        b'r' => "reject".to_owned(),
        b'y' => format!("reply {}", fields(data).join("")),
        b'h' => {
            let fields = fields(data);
            format!("add {}:{}", fields[0], fields[1])
        }
        b'm' => {
            let fields = fields(&data[4..]);
            format!("change {} {}:{}", word(0), fields[0], fields[1])
        }
        other => format!("packet {:?} {}", char::from(other), text(data)),
    }
}

/// Reads the next packet other than progress, or `closed`.
async fn next_packet(stream: &mut TcpStream) -> String {
    loop {
        let mut length = [0u8; 4];
        let read = tokio::time::timeout(Duration::from_secs(60), stream.read_exact(&mut length))
            .await
            .expect("a packet within 60 s");
        if read.is_err() {
            return "closed".to_owned();
        }
        let mut packet = vec![0u8; u32::from_be_bytes(length) as usize];
        stream.read_exact(&mut packet).await.expect("packet data");
        if packet[0] == b'p' {
            continue;
        }
        return describe(packet[0], &packet[1..]);
    }
}

/// Plays a script against the front and returns the packets it sent.
async fn dialog(address: SocketAddr, script: &str) -> Vec<String> {
    let mut stream = TcpStream::connect(address).await.expect("connect");
    let mut seen = Vec::new();
    for (number, line) in script.lines().map(str::trim).enumerate() {
        if let Some(command) = line.strip_prefix("> ") {
            for bytes in mta_packets(command) {
                // The front may have closed the connection already, which the next `<` line expects.
                let _ = stream.write_all(&bytes).await;
            }
        } else if let Some(expected) = line.strip_prefix("< ") {
            let got = next_packet(&mut stream).await;
            let matches = match expected.strip_suffix('*') {
                Some(prefix) => got.starts_with(prefix),
                None => got == expected,
            };
            assert!(
                matches,
                "script line {}: expected {expected:?}, got {got:?}; earlier packets: {seen:?}",
                number + 1
            );
            seen.push(got);
        }
    }
    seen
}

fn script(parts: &[&str]) -> String {
    parts.join("\n")
}

#[tokio::test]
async fn deliver_adds_verdict_headers() {
    let front = Front::start(DELIVER_ALL, Limits::default()).await;

    dialog(
        front.address,
        &script(&[
            POSTFIX_OFFER,
            FRONT_ANSWER,
            ENVELOPE,
            "> body See you tomorrow.\\r\\n",
            "> eom",
            "< add X-Gatehouse-Action: deliver",
            "< add X-Gatehouse-Score: *",
            "< add X-Gatehouse-Signals: *",
            "< add X-Gatehouse-Id: *",
            "< accept",
            "> quit",
            "< closed",
        ]),
    )
    .await;

    assert!(front.held().is_empty());
    front.stop().await;
}

#[tokio::test]
async fn forged_verdict_headers_are_deleted() {
    let front = Front::start(DELIVER_ALL, Limits::default()).await;

    dialog(
        front.address,
        &script(&[
            POSTFIX_OFFER,
            FRONT_ANSWER,
            "> macro C j=mx.example.com",
            "> connect mail.partner.test 4 40000 192.0.2.7",
            "> mail <partner@partner.test>",
            "> rcpt <alice@example.com>",
            "> header X-Gatehouse-Action: deliver",
            "> header x-gatehouse-action: deliver",
            "> header Subject: trust me",
            "> eoh",
            "> body hi\\r\\n",
            "> eom",
            "< change 2 X-Gatehouse-Action:",
            "< change 1 X-Gatehouse-Action:",
            "< add X-Gatehouse-Action: deliver",
            "< add X-Gatehouse-Score: *",
            "< add X-Gatehouse-Signals: *",
            "< add X-Gatehouse-Id: *",
            "< accept",
        ]),
    )
    .await;

    front.stop().await;
}

#[tokio::test]
async fn hold_discards_after_quarantine_write() {
    let front = Front::start(HOLD_ALL, Limits::default()).await;

    dialog(
        front.address,
        &script(&[
            POSTFIX_OFFER,
            FRONT_ANSWER,
            ENVELOPE,
            "> body See you tomorrow.\\r\\n",
            "> eom",
            "< discard",
        ]),
    )
    .await;

    let held = held_message(&front);
    let text = String::from_utf8_lossy(&held);
    assert!(
        text.starts_with("Received: from mail.partner.test (mail.partner.test [192.0.2.7])\r\n\tby mx.example.com (Gatehouse milter) id 4Q1\r\n\tfor <alice@example.com>; "),
        "{text}"
    );
    assert!(
        text.contains("\r\nFrom: Partner <partner@partner.test>\r\nTo: alice@example.com\r\nSubject: hello\r\n\r\nSee you tomorrow.\r\n"),
        "{text}"
    );
    let verdict = held_verdict(&front);
    assert_eq!(verdict["action"], "hold");
    assert_eq!(verdict["envelope"]["mail_from"], "partner@partner.test");
    assert_eq!(verdict["envelope"]["rcpt_to"][0], "alice@example.com");
    assert_eq!(verdict["envelope"]["client_ip"], "192.0.2.7");
    assert_eq!(verdict["envelope"]["helo"], "mail.partner.test");
    front.stop().await;
}

#[tokio::test]
async fn reject_replies_550() {
    let front = Front::start(REJECT_FIRST_CONTACT, Limits::default()).await;

    dialog(
        front.address,
        &script(&[
            POSTFIX_OFFER,
            FRONT_ANSWER,
            ENVELOPE,
            "> body buy now\\r\\n",
            "> eom",
            "< reply 550 5.7.1 Message rejected by policy",
        ]),
    )
    .await;

    assert!(front.held().is_empty());
    front.stop().await;
}

#[tokio::test]
async fn chunked_body_is_joined() {
    let front = Front::start(HOLD_ALL, Limits::default()).await;

    // 150,000 bytes arrive as chunks of 65,535, 65,535 and 18,930 bytes.
    dialog(
        front.address,
        &script(&[
            POSTFIX_OFFER,
            FRONT_ANSWER,
            ENVELOPE,
            "> body-of 150000 x",
            "> body \\r\\n",
            "> eom",
            "< discard",
        ]),
    )
    .await;

    let held = held_message(&front);
    let body_start = held
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .expect("end of header")
        + 4;
    let body = &held[body_start..];
    assert_eq!(body.len(), 150_002);
    assert!(body[..150_000].iter().all(|&byte| byte == b'x'));
    front.stop().await;
}

#[tokio::test]
async fn abort_drops_message_in_progress() {
    let front = Front::start(HOLD_ALL, Limits::default()).await;

    dialog(
        front.address,
        &script(&[
            POSTFIX_OFFER,
            FRONT_ANSWER,
            ENVELOPE,
            "> body first message, aborted\\r\\n",
            "> abort",
            "> macro M i=4Q2",
            "> mail <partner@partner.test>",
            "> rcpt <alice@example.com>",
            "> header Subject: second",
            "> eoh",
            "> body second message\\r\\n",
            "> eom",
            "< discard",
            "> quit",
            "< closed",
        ]),
    )
    .await;

    let held = front.held();
    assert_eq!(held.len(), 2, "one message, as .eml and .json: {held:?}");
    let text = String::from_utf8_lossy(&held_message(&front)).into_owned();
    assert!(!text.contains("aborted"), "{text}");
    assert!(!text.contains("Subject: hello"), "{text}");
    assert!(text.contains(" id 4Q2"), "{text}");
    front.stop().await;
}

#[tokio::test]
async fn client_addr_macro_fills_unknown_family() {
    let front = Front::start(HOLD_ALL, Limits::default()).await;

    dialog(
        front.address,
        &script(&[
            POSTFIX_OFFER,
            FRONT_ANSWER,
            "> macro C {client_addr}=198.51.100.4 j=mx.example.com",
            "> connect unknown U",
            "> mail <partner@partner.test>",
            "> rcpt <alice@example.com>",
            "> header Subject: hello",
            "> eoh",
            "> body hi\\r\\n",
            "> eom",
            "< discard",
        ]),
    )
    .await;

    let verdict = held_verdict(&front);
    assert_eq!(verdict["envelope"]["client_ip"], "198.51.100.4");
    front.stop().await;
}

#[tokio::test]
async fn authenticated_submission_is_not_judged() {
    // Under this policy any inbound first contact is held; an authenticated
    // local user's message is learned, so it is accepted without headers.
    let front = Front::start(HOLD_ALL, Limits::default()).await;

    dialog(
        front.address,
        &script(&[
            POSTFIX_OFFER,
            FRONT_ANSWER,
            "> macro C j=mx.example.com {daemon_name}=submission",
            "> connect laptop.example.com 4 40000 203.0.113.9",
            "> macro M {auth_authen}=alice {auth_type}=PLAIN",
            "> mail <alice@personal.test>",
            "> rcpt <partner@partner.test>",
            "> header Message-ID: <m1@example.com>",
            "> header Subject: contract",
            "> eoh",
            "> body see attached\\r\\n",
            "> eom",
            "< accept",
        ]),
    )
    .await;

    assert!(front.held().is_empty());
    front.stop().await;
}

#[tokio::test]
async fn mta_without_no_reply_flags_gets_continue() {
    let front = Front::start(DELIVER_ALL, Limits::default()).await;

    // Protocol version 2 has no "no reply" flags, so every command gets a
    // reply, and the MTA adds the space after the colon of an added field.
    dialog(
        front.address,
        &script(&[
            "> negotiate 2 0x3f 0x7f",
            "< negotiate 2 0x33 0x0",
            "> connect mail.partner.test 4 40000 192.0.2.7",
            "< continue",
            "> helo mail.partner.test",
            "< continue",
            "> mail <partner@partner.test>",
            "< continue",
            "> rcpt <alice@example.com>",
            "< continue",
            "> header Subject: hello",
            "< continue",
            "> eoh",
            "< continue",
            "> body hi\\r\\n",
            "< continue",
            "> eom",
            "< add X-Gatehouse-Action:deliver",
            "< add X-Gatehouse-Score:*",
            "< add X-Gatehouse-Signals:*",
            "< add X-Gatehouse-Id:*",
            "< accept",
        ]),
    )
    .await;

    front.stop().await;
}

#[tokio::test]
async fn quit_nc_starts_new_connection() {
    let front = Front::start(HOLD_ALL, Limits::default()).await;

    dialog(
        front.address,
        &script(&[
            POSTFIX_OFFER,
            FRONT_ANSWER,
            "> connect first.test 4 40000 192.0.2.7",
            "> quit-nc",
            "> connect second.test 4 40001 192.0.2.8",
            "> mail <partner@partner.test>",
            "> rcpt <alice@example.com>",
            "> eoh",
            "> body hi\\r\\n",
            "> eom",
            "< discard",
        ]),
    )
    .await;

    let verdict = held_verdict(&front);
    assert_eq!(verdict["envelope"]["client_ip"], "192.0.2.8");
    front.stop().await;
}

#[tokio::test]
async fn oversized_message_is_rejected() {
    let limits = Limits {
        max_message_bytes: 1_000,
        ..Limits::default()
    };
    let front = Front::start(DELIVER_ALL, limits).await;

    dialog(
        front.address,
        &script(&[
            POSTFIX_OFFER,
            FRONT_ANSWER,
            ENVELOPE,
            "> body-of 5000 y",
            "> eom",
            "< reply 552 5.3.4 Message too big for content checks",
        ]),
    )
    .await;

    front.stop().await;
}

#[tokio::test]
async fn malformed_packets_close_connection() {
    let limits = Limits {
        max_packet_bytes: 1_000,
        ..Limits::default()
    };
    let front = Front::start(DELIVER_ALL, limits).await;
    let cases = [
        ("length over the cap", "> raw 7fffffff4f"),
        ("length zero", "> raw 00000000"),
        ("unknown command", "> raw 000000015a"),
        ("negotiate too short", "> raw 000000034f0006"),
        ("header without value", "> raw 000000084c5375626a656374"),
    ];

    for (case, packet) in cases {
        let seen = dialog(
            front.address,
            &script(&[POSTFIX_OFFER, FRONT_ANSWER, packet, "< closed"]),
        )
        .await;

        assert_eq!(seen.last().map(String::as_str), Some("closed"), "{case}");
    }
    front.stop().await;
}

#[tokio::test]
async fn out_of_sequence_command_closes_connection() {
    let front = Front::start(DELIVER_ALL, Limits::default()).await;

    dialog(
        front.address,
        &script(&[
            POSTFIX_OFFER,
            FRONT_ANSWER,
            "> connect mail.partner.test 4 40000 192.0.2.7",
            "> rcpt <alice@example.com>",
            "< closed",
        ]),
    )
    .await;

    front.stop().await;
}

#[tokio::test]
async fn unknown_smtp_command_needs_no_reply() {
    let front = Front::start(DELIVER_ALL, Limits::default()).await;

    dialog(
        front.address,
        &script(&[
            POSTFIX_OFFER,
            FRONT_ANSWER,
            "> connect mail.partner.test 4 40000 192.0.2.7",
            "> unknown XYZZY",
            "> mail <partner@partner.test>",
            "> rcpt <alice@example.com>",
            "> eoh",
            "> eom",
            "< add X-Gatehouse-Action: deliver",
            "< add X-Gatehouse-Score: *",
            "< add X-Gatehouse-Signals: *",
            "< add X-Gatehouse-Id: *",
            "< accept",
        ]),
    )
    .await;

    front.stop().await;
}

/// Connects as Postfix does and leaves the connection between messages.
async fn connected_between_messages(front: &Front) -> TcpStream {
    let mut stream = TcpStream::connect(front.address).await.expect("connect");
    for line in [
        "negotiate 6 0x1ff 0x1fffff",
        "connect mail.partner.test 4 40000 192.0.2.7",
        "helo mail.partner.test",
    ] {
        for bytes in mta_packets(line) {
            stream.write_all(&bytes).await.expect("write");
        }
    }
    assert_eq!(next_packet(&mut stream).await, "negotiate 6 0x133 0x1ff080");
    stream
}

#[tokio::test]
async fn shutdown_closes_silent_connection() {
    let front = Front::start(DELIVER_ALL, Limits::default()).await;
    let mut stream = connected_between_messages(&front).await;

    // The connection stays silent, so it closes after 5 s, long before the
    // 30 s grace period. Stop fails the test when the front takes 10 s.
    front.stop().await;
    assert_eq!(next_packet(&mut stream).await, "closed");
}

#[tokio::test]
async fn shutdown_lets_later_message_finish() {
    let mut front = Front::start(DELIVER_ALL, Limits::default()).await;
    let mut stream = connected_between_messages(&front).await;
    let stop = front.stop.take().expect("stop sender");
    let _ = stop.send(());

    // Postfix sends a message's first events in one burst after a pause.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let envelope = ENVELOPE
        .lines()
        .filter_map(|line| line.trim().strip_prefix("> "))
        .filter(|line| !line.starts_with("connect") && !line.starts_with("helo"));
    for line in envelope.chain(["body See you tomorrow.\\r\\n", "eom"]) {
        for bytes in mta_packets(line) {
            stream.write_all(&bytes).await.expect("write");
        }
    }
    assert_eq!(
        next_packet(&mut stream).await,
        "add X-Gatehouse-Action: deliver"
    );
    front.stop().await;
}
