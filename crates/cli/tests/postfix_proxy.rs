//! A client, `gatehouse serve` as the before-queue SMTP proxy, and a private
//! Postfix instance from Debian's package behind it, end to end.
//!
//! Postfix reads `docker/postfix/main.cf` and `master.cf` and Gatehouse
//! `docker/gatehouse/proxy.toml`, the files of the Docker proxy profile. The
//! test changes directories, loopback ports and the mailbox owner, turns the
//! milter off, and drops the catch-all mailbox so that Postfix rejects
//! unknown recipients. Starting Postfix needs root. Without Postfix or root
//! the test is skipped, unless GATEHOUSE_REQUIRE_POSTFIX=1 makes that a
//! failure.

mod common;

use std::fs;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Server, repo, text};
use mail_send::SmtpClient;
use tokio::io::AsyncWriteExt;

const POSTFIX: &str = "/usr/sbin/postfix";
const POSTCONF: &str = "/usr/sbin/postconf";

/// Tags every message from a sender nobody here has corresponded with.
const POLICY: &str = "[thresholds]\ntag = 0.5\nhold = 100.0\n\
    [weights]\n\"sender.first_contact\" = 5.0\n";

/// A private Postfix instance, stopped when dropped.
struct Postfix {
    config: PathBuf,
    log: PathBuf,
    /// The smtpd without milters that the proxy relays to.
    behind_proxy: SocketAddr,
    running: bool,
}

impl Postfix {
    fn start(folder: &Path) -> Postfix {
        let config = folder.join("postfix");
        let queue = folder.join("queue");
        let data = folder.join("postfix-data");
        let mail = folder.join("mail");
        for path in [&config, &queue, &data, &mail] {
            fs::create_dir_all(path).expect("Postfix folder");
        }
        let source = repo().join("docker/postfix");
        for name in ["main.cf", "master.cf"] {
            fs::copy(source.join(name), config.join(name)).expect("copy Postfix config");
        }
        // Known mailboxes only: Postfix rejects every other recipient.
        fs::write(
            config.join("virtual_mailboxes"),
            "alice@example.com example.com/alice/\nbob@example.com example.com/bob/\n",
        )
        .expect("virtual_mailboxes");

        // Loopback ports instead of 25, 10025 and 10026.
        let front = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let reinject = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let behind_proxy = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let master = fs::read_to_string(config.join("master.cf")).expect("master.cf");
        let master = master
            .replacen("\nsmtp      inet", &format!("\n{front} inet"), 1)
            .replacen("\n10025     inet", &format!("\n{reinject} inet"), 1)
            .replacen("\n10026     inet", &format!("\n{behind_proxy} inet"), 1);
        fs::write(config.join("master.cf"), master).expect("write master.cf");

        let log = folder.join("maillog");
        let settings = [
            format!("queue_directory={}", queue.display()),
            format!("data_directory={}", data.display()),
            "inet_interfaces=127.0.0.1".to_owned(),
            "smtpd_milters=".to_owned(),
            "non_smtpd_milters=".to_owned(),
            // Postfix's own networks leave out the test client (127.0.0.1),
            // so only XCLIENT's client address decides: a client restriction
            // to mynetworks behind the proxy would reject it.
            "mynetworks=127.0.0.2/32".to_owned(),
            format!("virtual_mailbox_base={}", mail.display()),
            "virtual_uid_maps=static:65534".to_owned(),
            "virtual_gid_maps=static:65534".to_owned(),
            format!("maillog_file_prefixes={}", folder.display()),
            format!("maillog_file={}", log.display()),
            "default_transport=error:no mail leaves this test".to_owned(),
            "relay_transport=error:no mail leaves this test".to_owned(),
            "smtpd_peername_lookup=no".to_owned(),
        ];
        let status = Command::new(POSTCONF)
            .arg("-c")
            .arg(&config)
            .arg("-e")
            .args(&settings)
            .status()
            .expect("postconf runs");
        assert!(status.success(), "postconf -e failed");
        chown(&data, "postfix");
        chown(&mail, "nobody");

        let mut postfix = Postfix {
            config,
            log,
            behind_proxy,
            running: false,
        };
        let output = postfix.command("start");
        assert!(
            output.status.success(),
            "postfix start failed: {}{}\n{}",
            text(&output.stdout),
            text(&output.stderr),
            postfix.log()
        );
        postfix.running = true;
        wait_for("Postfix to listen", &postfix.log, || {
            std::net::TcpStream::connect(behind_proxy).is_ok()
        });
        postfix
    }

    fn command(&self, action: &str) -> std::process::Output {
        Command::new(POSTFIX)
            .arg("-c")
            .arg(&self.config)
            .arg(action)
            .output()
            .expect("postfix runs")
    }

    fn stop(&mut self) {
        if self.running {
            let _ = self.command("stop");
            self.running = false;
        }
        wait_for("Postfix to stop", &self.log, || {
            std::net::TcpStream::connect(self.behind_proxy).is_err()
        });
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        if self.running {
            let _ = self.command("stop");
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free loopback port")
}

fn chown(path: &Path, user: &str) {
    let status = Command::new("chown")
        .arg(user)
        .arg(path)
        .status()
        .expect("chown runs");
    assert!(status.success(), "chown {user} {} failed", path.display());
}

/// Polls `done` until it is true; on time-out, fails with `what` and the Postfix log.
fn wait_for(what: &str, log: &Path, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; Postfix log:\n{}",
            fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Returns why Postfix cannot be started here, or `None` when it can.
fn postfix_unavailable() -> Option<&'static str> {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|output| text(&output.stdout).trim() == "0")
        .unwrap_or(false);
    if !Path::new(POSTFIX).exists() {
        Some("Postfix is not installed (apt-get install postfix)")
    } else if !is_root {
        Some("starting Postfix needs root")
    } else {
        None
    }
}

fn mailbox(folder: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(folder.join("new")) else {
        return Vec::new();
    };
    entries
        .map(|entry| text(&fs::read(entry.expect("entry").path()).expect("message")))
        .collect()
}

/// Writes docker/gatehouse/proxy.toml with the test's paths and addresses.
fn gatehouse_config(folder: &Path, upstream: SocketAddr) -> PathBuf {
    let source = fs::read_to_string(repo().join("docker/gatehouse/proxy.toml"))
        .expect("docker/gatehouse/proxy.toml");
    let mut config: toml::Table = source.parse().expect("valid TOML");
    let mut section = |name: &str, values: &[(&str, toml::Value)]| {
        let mut table = config
            .get(name)
            .and_then(|value| value.as_table())
            .cloned()
            .unwrap_or_default();
        for (key, value) in values {
            table.insert((*key).to_owned(), value.clone());
        }
        config.insert(name.to_owned(), toml::Value::Table(table));
    };
    let path = |name: &str| toml::Value::String(folder.join(name).display().to_string());
    section(
        "gateway",
        &[
            ("data_dir", path("data")),
            ("quarantine_dir", path("quarantine")),
            ("policy", path("policy.toml")),
            (
                "tag_subject_prefix",
                toml::Value::String("[External]".to_owned()),
            ),
        ],
    );
    section(
        "smtp",
        &[
            ("listen", toml::Value::String("127.0.0.1:0".to_owned())),
            ("upstream", toml::Value::String(upstream.to_string())),
        ],
    );
    fs::write(folder.join("policy.toml"), POLICY).expect("policy written");
    let file = folder.join("gatehouse.toml");
    fs::write(&file, toml::to_string(&config).expect("TOML")).expect("config written");
    file
}

/// Replies of one SMTP transaction, with the final reply when DATA got that far.
#[derive(Debug)]
struct Transaction {
    mail: u16,
    rcpt: Vec<(u16, String)>,
    data: Option<(u16, String)>,
}

/// Sends one message, going on past refused recipients as a real client does.
async fn transaction(
    proxy: SocketAddr,
    from: &str,
    recipients: &[&str],
    message: &[u8],
) -> Transaction {
    transaction_from("client.test", proxy, from, recipients, message).await
}

/// Sends one message as a client that introduces itself as `helo`.
async fn transaction_from(
    helo: &str,
    proxy: SocketAddr,
    from: &str,
    recipients: &[&str],
    message: &[u8],
) -> Transaction {
    let mut client = SmtpClient::connect(proxy, Duration::from_secs(60))
        .await
        .expect("connect to the proxy");
    client.read().await.expect("greeting");
    client.ehlo(helo).await.expect("EHLO accepted");
    let mail = client
        .cmd(format!("MAIL FROM:<{from}>\r\n"))
        .await
        .expect("MAIL reply");
    let mut result = Transaction {
        mail: mail.code,
        rcpt: Vec::new(),
        data: None,
    };
    if mail.code != 250 {
        return result;
    }
    for recipient in recipients {
        let reply = client
            .cmd(format!("RCPT TO:<{recipient}>\r\n"))
            .await
            .expect("RCPT reply");
        result.rcpt.push((
            reply.code,
            format!(
                "{} {}",
                reply.esc.map(|n| n.to_string()).join("."),
                reply.message
            ),
        ));
    }
    let reply = client.cmd(b"DATA\r\n").await.expect("DATA reply");
    if reply.code != 354 {
        return result;
    }
    let stuffed = gatehouse_smtp::delivery::dot_stuff(message);
    client.stream.write_all(&stuffed).await.expect("message");
    client.stream.flush().await.expect("flush");
    let reply = client.read().await.expect("final reply");
    result.data = Some((reply.code, reply.message));
    let _ = client.quit().await;
    result
}

#[test]
fn client_proxy_postfix_mirrors_recipients() {
    if let Some(reason) = postfix_unavailable() {
        assert!(
            std::env::var("GATEHOUSE_REQUIRE_POSTFIX").as_deref() != Ok("1"),
            "GATEHOUSE_REQUIRE_POSTFIX=1 but {reason}"
        );
        eprintln!("skipped: {reason}");
        return;
    }
    let folder = tempfile::tempdir().expect("temporary folder");
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(folder.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
    let mut postfix = Postfix::start(folder.path());
    let config = gatehouse_config(folder.path(), postfix.behind_proxy);
    let server = Server::start(&config);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let message = b"From: Partner <partner@partner.test>\r\nTo: alice@example.com, bob@example.com\r\nSubject: quarterly figures\r\nMessage-ID: <q1@partner.test>\r\n\r\nThe figures are attached.\r\n";

    // Postfix rejects the unknown recipient; the other two get the message.
    let sent = runtime.block_on(transaction(
        server.address,
        "partner@partner.test",
        &["alice@example.com", "nobody@example.com", "bob@example.com"],
        message,
    ));
    assert_eq!(sent.mail, 250, "{sent:?}");
    assert_eq!(sent.rcpt[0].0, 250, "{sent:?}");
    assert_eq!(sent.rcpt[1].0, 550, "{sent:?}");
    assert!(
        sent.rcpt[1].1.contains("5.1.1 <nobody@example.com>: Recipient address rejected: User unknown in virtual mailbox table"),
        "{sent:?}"
    );
    assert_eq!(sent.rcpt[2].0, 250, "{sent:?}");
    let (code, text_reply) = sent.data.clone().expect("DATA reached");
    assert_eq!(code, 250, "{sent:?}");
    assert!(text_reply.contains("queued as"), "{sent:?}");

    let alice = folder.path().join("mail/example.com/alice");
    let bob = folder.path().join("mail/example.com/bob");
    wait_for("delivery to alice and bob", &postfix.log, || {
        mailbox(&alice).len() == 1 && mailbox(&bob).len() == 1
    });
    let delivered = &mailbox(&alice)[0];
    assert!(
        delivered.contains("\nX-Gatehouse-Action: tag\n"),
        "{delivered}"
    );
    assert!(
        delivered.contains("\nSubject: [External] quarterly figures\n"),
        "{delivered}"
    );
    // XCLIENT and the EHLO after it made Postfix record the client's own
    // HELO name, not the proxy's.
    assert!(
        delivered.contains(
            "Received: from client.test (unknown [127.0.0.1])\n\tby mx.example.com (Postfix)"
        ),
        "{delivered}"
    );
    assert!(
        delivered.contains("(Gatehouse) with ESMTP id"),
        "{delivered}"
    );
    assert!(
        delivered.ends_with("The figures are attached.\n"),
        "{delivered}"
    );

    // The next client session goes over the upstream connection the first
    // one left open, after a pause in which that session hands it back.
    // Postfix takes the second XCLIENT and records the new HELO.
    std::thread::sleep(Duration::from_millis(200));
    let second = runtime.block_on(transaction_from(
        "second.test",
        server.address,
        "partner@partner.test",
        &["alice@example.com"],
        message,
    ));
    assert_eq!(
        second.data.as_ref().map(|(code, _)| *code),
        Some(250),
        "{second:?}"
    );
    wait_for("the second delivery to alice", &postfix.log, || {
        mailbox(&alice).len() == 2
    });
    assert!(
        mailbox(&alice).iter().any(|delivered| delivered.contains(
            "Received: from second.test (unknown [127.0.0.1])\n\tby mx.example.com (Postfix)"
        )),
        "{:?}",
        mailbox(&alice)
    );
    // One connection came from the readiness probe and one from the proxy:
    // the second session opened none.
    let connects = postfix.log().matches(": connect from ").count();
    assert_eq!(connects, 2, "{}", postfix.log());

    // With Postfix down the client gets 451 and keeps the message. MAIL
    // waits for the first RCPT to go upstream, so RCPT gets the 451, and
    // so does every later RCPT: a 5xx there would bounce the recipient.
    postfix.stop();
    let deferred = runtime.block_on(transaction(
        server.address,
        "partner@partner.test",
        &["alice@example.com", "bob@example.com"],
        message,
    ));
    assert_eq!(deferred.mail, 250, "{deferred:?}");
    assert_eq!(deferred.rcpt[0].0, 451, "{deferred:?}");
    assert_eq!(deferred.rcpt[1].0, 451, "{deferred:?}");
    assert!(deferred.data.is_none(), "{deferred:?}");
    let held: Vec<_> = fs::read_dir(folder.path().join("quarantine/held"))
        .expect("held folder")
        .collect();
    assert!(held.is_empty(), "a deferred message was held");
    assert_eq!(mailbox(&alice).len(), 2);

    let status = server.stop();
    assert!(status.success(), "gatehouse serve exit status {status:?}");
}
