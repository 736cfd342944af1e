//! `gatehouse serve` killed with SIGKILL at the worst moments: in the middle
//! of DATA, and after the final dot but before the reply. Whatever happens,
//! the client must never have a 250 for a message that is neither upstream
//! nor in the quarantine.
//!
//! The upstream is a mock MTA that records each complete message and then
//! waits before it replies to the final dot, which gives the moment between
//! the dot and the proxy's reply.

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Server;

/// Thresholds that deliver every message, whatever the signals.
const DELIVER_ALL: &str = "[thresholds]\ntag = 1000.0\nhold = 2000.0\n[weights]\n";
/// Holds every message from a sender nobody here has corresponded with.
const HOLD_ALL: &str = "may_hold_alone = [\"sender.first_contact\"]\n\
    [thresholds]\ntag = 0.5\nhold = 1.0\n\
    [weights]\n\"sender.first_contact\" = 5.0\n\
    [first_contact]\nplain_max_action = \"hold\"\n";

const BODY: &str = "From: Partner <partner@partner.test>\r\nTo: alice@example.com\r\nSubject: crash\r\n\r\nline one\r\nline two\r\n";

/// Messages the mock upstream received whole, each with the final dot.
type Upstream = Arc<Mutex<Vec<String>>>;

/// Starts an upstream MTA that records every complete message and never
/// replies to the final dot within the test.
fn slow_upstream() -> (SocketAddr, Upstream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    let received: Upstream = Arc::new(Mutex::new(Vec::new()));
    let shared = Arc::clone(&received);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let received = Arc::clone(&shared);
            std::thread::spawn(move || serve_slowly(stream, &received));
        }
    });
    (address, received)
}

fn serve_slowly(stream: TcpStream, received: &Upstream) {
    let mut writer = stream.try_clone().expect("clone");
    let mut reader = BufReader::new(stream);
    let _ = writer.write_all(b"220 upstream.test ESMTP\r\n");
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let reply: &[u8] = if line.starts_with("DATA") {
            let _ = writer.write_all(b"354 go ahead\r\n");
            let mut message = String::new();
            loop {
                let mut data_line = String::new();
                if reader.read_line(&mut data_line).unwrap_or(0) == 0 {
                    return;
                }
                if data_line == ".\r\n" {
                    break;
                }
                message.push_str(&data_line);
            }
            received.lock().expect("lock").push(message);
            // Hold the reply back until the test is over.
            std::thread::sleep(Duration::from_secs(60));
            b"250 2.0.0 Ok: queued late\r\n"
        } else if line.starts_with("QUIT") {
            return;
        } else {
            b"250 Ok\r\n"
        };
        let _ = writer.write_all(reply);
    }
}

/// A client that writes raw SMTP and reads replies, noting every 250 to the final dot.
struct Client {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Client {
    fn connect(address: SocketAddr) -> Client {
        let stream = TcpStream::connect(address).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut client = Client { stream, reader };
        assert!(client.reply().starts_with("220 "));
        client
    }

    fn say(&mut self, line: &str) -> String {
        self.stream
            .write_all(format!("{line}\r\n").as_bytes())
            .expect("write");
        self.reply()
    }

    /// Reads one reply line; an empty string means the connection ended.
    fn reply(&mut self) -> String {
        let mut line = String::new();
        let _ = self.reader.read_line(&mut line);
        line
    }

    /// Opens a transaction and returns once the 354 came.
    fn start_data(&mut self) {
        assert!(self.say("HELO client.test").starts_with("250 "));
        assert!(
            self.say("MAIL FROM:<partner@partner.test>")
                .starts_with("250 ")
        );
        assert!(self.say("RCPT TO:<alice@example.com>").starts_with("250 "));
        assert!(self.say("DATA").starts_with("354 "));
    }

    /// Reads whatever the proxy still sends until the connection ends.
    fn rest(&mut self) -> String {
        let mut rest = String::new();
        let _ = self.reader.read_to_string(&mut rest);
        rest
    }
}

fn start_gateway(folder: &Path, policy: &str, upstream: SocketAddr) -> Server {
    fs::write(folder.join("policy.toml"), policy).expect("policy written");
    let config = folder.join("gatehouse.toml");
    fs::write(
        &config,
        format!(
            "[gateway]\nlocal_domains = [\"example.com\"]\npolicy = \"policy.toml\"\n[smtp]\nlisten = \"127.0.0.1:0\"\nupstream = \"{upstream}\"\n"
        ),
    )
    .expect("config written");
    Server::start(&config)
}

fn held_messages(folder: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(folder.join("quarantine/held")) else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let is_eml = path.extension().is_some_and(|ext| ext == "eml");
            is_eml.then(|| fs::read_to_string(path).unwrap_or_default())
        })
        .collect()
}

/// The invariant: a 250 for the message means it is upstream or held.
fn assert_not_lost(replies: &str, upstream: &Upstream, folder: &Path) {
    let accepted = replies.lines().any(|line| line.starts_with("250 "));
    let upstream_has = upstream
        .lock()
        .expect("lock")
        .iter()
        .any(|message| message.ends_with(BODY));
    let held = held_messages(folder).iter().any(|raw| raw.ends_with(BODY));
    assert!(
        !accepted || upstream_has || held,
        "the client got 250 for a message that is neither upstream nor held: {replies:?}"
    );
}

#[test]
fn kill_inside_data_leaves_client_owning_message() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let (upstream_address, upstream) = slow_upstream();
    let server = start_gateway(folder.path(), DELIVER_ALL, upstream_address);
    let mut client = Client::connect(server.address);
    client.start_data();
    client
        .stream
        .write_all(&BODY.as_bytes()[..BODY.len() / 2])
        .expect("write half");
    std::thread::sleep(Duration::from_millis(300));

    server.crash();
    let rest = client.rest();

    assert_eq!(rest, "", "the proxy replied after it was killed");
    assert!(upstream.lock().expect("lock").is_empty());
    assert!(held_messages(folder.path()).is_empty());
    assert_not_lost(&rest, &upstream, folder.path());
}

#[test]
fn kill_after_final_dot_before_reply() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let (upstream_address, upstream) = slow_upstream();
    let server = start_gateway(folder.path(), DELIVER_ALL, upstream_address);
    let mut client = Client::connect(server.address);
    client.start_data();
    client
        .stream
        .write_all(format!("{BODY}.\r\n").as_bytes())
        .expect("write message");

    // The moment: the upstream has the whole message and has not replied.
    let deadline = Instant::now() + Duration::from_secs(30);
    while upstream.lock().expect("lock").is_empty() {
        assert!(
            Instant::now() < deadline,
            "the message never reached the upstream"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    server.crash();
    let rest = client.rest();

    assert_eq!(rest, "", "the client got a reply from a killed proxy");
    assert_not_lost(&rest, &upstream, folder.path());
}

#[test]
fn kill_right_after_dot_of_held_message() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let (upstream_address, upstream) = slow_upstream();
    let server = start_gateway(folder.path(), HOLD_ALL, upstream_address);
    let mut client = Client::connect(server.address);
    client.start_data();
    client
        .stream
        .write_all(format!("{BODY}.\r\n").as_bytes())
        .expect("write message");

    // Whether the kill lands before or after the quarantine write, a 250
    // must mean the message is held.
    std::thread::sleep(Duration::from_millis(5));
    server.crash();
    let rest = client.rest();

    assert!(upstream.lock().expect("lock").is_empty());
    assert_not_lost(&rest, &upstream, folder.path());
}
