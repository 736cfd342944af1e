//! Helpers shared by the tests that run the built `gatehouse` binary.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mail_send::SmtpClient;
use tokio::io::AsyncWriteExt;

pub fn gatehouse() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gatehouse"))
}

/// Runs `gatehouse ARGS` in `folder` and returns its output.
pub fn run(folder: &Path, args: &[&str]) -> Output {
    gatehouse()
        .args(args)
        .current_dir(folder)
        .env_remove("RUST_LOG")
        .output()
        .expect("gatehouse runs")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Returns the repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A running `gatehouse serve`, stopped when dropped.
pub struct Server {
    child: Child,
    pub address: SocketAddr,
    pub log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `gatehouse serve` with `config` and waits until it listens.
    ///
    /// The config should listen on port 0; the port is read from the
    /// "SMTP proxy started" log line.
    pub fn start(config: &Path) -> Server {
        let mut child = gatehouse()
            .args(["serve", "--config"])
            .arg(config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("gatehouse serve starts");
        let stderr = child.stderr.take().expect("stderr piped");
        let log = Arc::new(Mutex::new(String::new()));
        let (found, address) = std::sync::mpsc::channel();
        let shared = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                // Text logs write `listen=ADDRESS`, JSON logs `"listen":"ADDRESS"`.
                if let Some(rest) = line.split("listen=").nth(1) {
                    let address = rest.split_whitespace().next().unwrap_or("").to_owned();
                    let _ = found.send(address);
                } else if let Some(rest) = line.split("\"listen\":\"").nth(1) {
                    let address = rest.split('"').next().unwrap_or("").to_owned();
                    let _ = found.send(address);
                }
                let mut log = shared.lock().expect("log lock");
                log.push_str(&line);
                log.push('\n');
            }
        });
        let address = match address.recv_timeout(Duration::from_secs(60)) {
            Ok(address) => address.parse().expect("listen address"),
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "gatehouse serve did not start; its log:\n{}",
                    log.lock().expect("log lock")
                );
            }
        };
        Server {
            child,
            address,
            log,
        }
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("gatehouse serve did not stop after SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().expect("log lock").clone()
    }

    /// Waits until the log has a line containing `needle` and returns that line.
    pub fn wait_for_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let found = self
                .log()
                .lines()
                .find(|line| line.contains(needle))
                .map(str::to_owned);
            if let Some(line) = found {
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "no log line with {needle:?}; the log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends a signal such as `HUP` to the server.
    pub fn signal(&self, name: &str) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name} {pid} failed");
    }

    /// Kills the server with SIGKILL, as a crash would, and waits for it to end.
    pub fn crash(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The reply to the final dot.
#[derive(Debug)]
pub struct FinalReply {
    pub code: u16,
    pub text: String,
}

/// Sends one message over SMTP with mail-send's client and returns the
/// reply to the final dot. Every command before it must be accepted.
pub async fn send(
    address: SocketAddr,
    mail_from: &str,
    rcpt_to: &[String],
    message: &[u8],
) -> FinalReply {
    let timeout = Duration::from_secs(120);
    let mut client = SmtpClient::connect(address, timeout)
        .await
        .expect("connect to the proxy");
    let greeting = client.read().await.expect("greeting");
    assert_eq!(greeting.code, 220, "greeting {greeting:?}");
    client.ehlo("client.test").await.expect("EHLO accepted");

    let reply = client
        .cmd(format!("MAIL FROM:<{mail_from}>\r\n"))
        .await
        .expect("MAIL reply");
    assert_eq!(reply.code, 250, "MAIL {mail_from}: {reply:?}");
    for rcpt in rcpt_to {
        let reply = client
            .cmd(format!("RCPT TO:<{rcpt}>\r\n"))
            .await
            .expect("RCPT reply");
        assert_eq!(reply.code, 250, "RCPT {rcpt}: {reply:?}");
    }

    let reply = client.cmd(b"DATA\r\n").await.expect("DATA reply");
    assert_eq!(reply.code, 354, "DATA: {reply:?}");
    let stuffed = gatehouse_smtp::delivery::dot_stuff(message);
    client
        .stream
        .write_all(&stuffed)
        .await
        .expect("write message");
    client.stream.flush().await.expect("flush message");

    let reply = client.read().await.expect("final reply");
    let _ = client.quit().await;
    FinalReply {
        code: reply.code,
        text: reply.message,
    }
}

/// Removes the header fields the proxy adds from the top of a message: its
/// Received field (the first field, naming "(Gatehouse)") and, for tagged
/// mail, the `X-Gatehouse-*` fields after it. Returns the rest unchanged.
pub fn strip_added_headers(message: &[u8]) -> Option<&[u8]> {
    let (first, mut rest) = next_field(message)?;
    let is_ours = first.starts_with(b"Received: ")
        && first
            .windows(b"(Gatehouse)".len())
            .any(|window| window == b"(Gatehouse)");
    if !is_ours {
        return None;
    }
    while rest.starts_with(b"X-Gatehouse-") {
        let (_, after) = next_field(rest)?;
        rest = after;
    }
    Some(rest)
}

/// Splits off the first header field, with its continuation lines.
fn next_field(text: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut end = 0;
    loop {
        let line_end = text[end..].iter().position(|&byte| byte == b'\n')? + end + 1;
        end = line_end;
        if !matches!(text.get(end), Some(b' ' | b'\t')) {
            return Some((&text[..end], &text[end..]));
        }
    }
}
