//! Postfix with `gatehouse serve` as its milter, end to end. A private
//! Postfix instance from Debian's package delivers to `virtual` Maildirs.
//! Held mail stays in the quarantine, delivered mail carries the verdict
//! fields, and a released message reaches its mailbox through Postfix.
//!
//! Postfix and Gatehouse read the deployment's own files under `docker/`;
//! the test changes only directories, loopback ports and the mailbox owner.
//! Starting Postfix needs root. Without Postfix or root the test is skipped,
//! unless GATEHOUSE_REQUIRE_POSTFIX=1 makes that a failure.

mod common;

use std::fs;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Server, repo, run, text};

const POSTFIX: &str = "/usr/sbin/postfix";
const POSTCONF: &str = "/usr/sbin/postconf";

/// Holds every message from a sender nobody here has corresponded with.
const POLICY: &str = "may_hold_alone = [\"sender.first_contact\"]\n\
    [thresholds]\ntag = 0.5\nhold = 1.0\n\
    [weights]\n\"sender.first_contact\" = 5.0\n\
    [first_contact]\nplain_max_action = \"hold\"\n";

/// A private Postfix instance, stopped when dropped.
struct Postfix {
    config: PathBuf,
    log: PathBuf,
    smtp: SocketAddr,
}

impl Postfix {
    /// Configures and starts Postfix in `folder` with Gatehouse at `milter`.
    fn start(folder: &Path, milter: SocketAddr, reinject: SocketAddr) -> Postfix {
        let config = folder.join("postfix");
        let queue = folder.join("queue");
        let data = folder.join("postfix-data");
        let mail = folder.join("mail");
        for path in [&config, &queue, &data, &mail] {
            fs::create_dir_all(path).expect("Postfix folder");
        }
        let source = repo().join("docker/postfix");
        for name in ["main.cf", "master.cf", "virtual_mailboxes"] {
            fs::copy(source.join(name), config.join(name)).expect("copy Postfix config");
        }

        // Loopback ports instead of 25, 10025 and 10026 (the port behind the
        // SMTP proxy, unused here).
        let smtp = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let behind_proxy = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let master = fs::read_to_string(config.join("master.cf")).expect("master.cf");
        let master = master
            .replacen("\nsmtp      inet", &format!("\n{smtp} inet"), 1)
            .replacen("\n10025     inet", &format!("\n{reinject} inet"), 1)
            .replacen("\n10026     inet", &format!("\n{behind_proxy} inet"), 1);
        fs::write(config.join("master.cf"), master).expect("write master.cf");

        // Private directories, loopback only, mailboxes owned by nobody, no DNS.
        let log = folder.join("maillog");
        let settings = [
            format!("queue_directory={}", queue.display()),
            format!("data_directory={}", data.display()),
            "inet_interfaces=127.0.0.1".to_owned(),
            format!("smtpd_milters=inet:{milter}"),
            format!("virtual_mailbox_base={}", mail.display()),
            "virtual_uid_maps=static:65534".to_owned(),
            "virtual_gid_maps=static:65534".to_owned(),
            format!("maillog_file_prefixes={}", folder.display()),
            format!("maillog_file={}", log.display()),
            // Bounces and anything not for example.com fail here instead
            // of looking up and reaching other hosts.
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

        let postfix = Postfix { config, log, smtp };
        let output = postfix.command("start");
        assert!(
            output.status.success(),
            "postfix start failed: {}{}\n{}",
            text(&output.stdout),
            text(&output.stderr),
            postfix.log()
        );
        wait_for("Postfix to listen", &postfix.log, || {
            std::net::TcpStream::connect(smtp).is_ok()
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

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = self.command("stop");
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

/// Polls `done` until it holds; on time-out, fails with `what` and the Postfix log in `log`.
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

/// Returns whether Postfix can be started here, or why not.
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

/// Returns the messages in a Maildir's `new/` folder.
fn mailbox(folder: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(folder.join("new")) else {
        return Vec::new();
    };
    entries
        .map(|entry| text(&fs::read(entry.expect("entry").path()).expect("message")))
        .collect()
}

fn message(from: &str, subject: &str, id: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: alice@example.com\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\nDate: Mon, 02 Nov 2026 12:00:00 +0000\r\n\r\n{subject}, see you.\r\n"
    )
    .into_bytes()
}

/// Writes the Gatehouse config: docker/gatehouse/milter.toml with the test's
/// paths and loopback addresses.
fn gatehouse_config(folder: &Path, reinject: SocketAddr) -> PathBuf {
    let source = fs::read_to_string(repo().join("docker/gatehouse/milter.toml"))
        .expect("docker/gatehouse/milter.toml");
    let mut config: toml::Table = source.parse().expect("valid TOML");
    let section = |config: &mut toml::Table, name: &str| -> toml::Table {
        config
            .get(name)
            .and_then(|value| value.as_table())
            .cloned()
            .unwrap_or_default()
    };

    let mut gateway = section(&mut config, "gateway");
    gateway.insert("data_dir".into(), "data".into());
    gateway.insert("quarantine_dir".into(), "quarantine".into());
    gateway.insert("policy".into(), "policy.toml".into());
    config.insert("gateway".into(), gateway.into());
    let mut milter = section(&mut config, "milter");
    milter.insert("listen".into(), "127.0.0.1:0".into());
    config.insert("milter".into(), milter.into());
    let mut smtp = section(&mut config, "smtp");
    smtp.insert("upstream".into(), reinject.to_string().into());
    config.insert("smtp".into(), smtp.into());

    fs::write(folder.join("policy.toml"), POLICY).expect("write policy");
    let path = folder.join("gatehouse.toml");
    fs::write(&path, config.to_string()).expect("write config");
    path
}

#[test]
fn postfix_milter_holds_delivers_releases() {
    if let Some(reason) = postfix_unavailable() {
        assert!(
            std::env::var("GATEHOUSE_REQUIRE_POSTFIX").as_deref() != Ok("1"),
            "GATEHOUSE_REQUIRE_POSTFIX=1 but {reason}"
        );
        eprintln!("skipped: {reason}");
        return;
    }
    let folder = tempfile::tempdir().expect("temporary folder");
    let root = folder.path();
    // Postfix's daemons run as postfix and nobody and must reach their folders.
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(root, fs::Permissions::from_mode(0o755)).expect("chmod");

    // Partner and alice have written to each other before.
    let reinject = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let config = gatehouse_config(root, reinject);
    let config_arg = config.display().to_string();
    let history = repo().join("crates/cli/tests/data/history.mbox");
    let learned = run(
        root,
        &[
            "learn",
            "--config",
            &config_arg,
            &history.display().to_string(),
        ],
    );
    assert!(learned.status.success(), "{}", text(&learned.stderr));

    let server = Server::start(&config);
    let postfix = Postfix::start(root, server.address, reinject);
    let alice = root.join("mail/example.com/alice");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let rcpt = vec!["alice@example.com".to_owned()];

    // A stranger's message is held; the client still gets 250.
    let held = message("stranger@phish.test", "Invoice overdue", "h1@phish.test");
    let reply = runtime.block_on(common::send(
        postfix.smtp,
        "stranger@phish.test",
        &rcpt,
        &held,
    ));
    assert_eq!(reply.code, 250, "{reply:?}\n{}", postfix.log());

    // The partner's message is delivered with the verdict fields.
    let known = message("partner@partner.test", "Lunch on Friday", "d1@partner.test");
    let reply = runtime.block_on(common::send(
        postfix.smtp,
        "partner@partner.test",
        &rcpt,
        &known,
    ));
    assert_eq!(reply.code, 250, "{reply:?}\n{}", postfix.log());

    wait_for("the delivered message", &postfix.log, || {
        mailbox(&alice)
            .iter()
            .any(|mail| mail.contains("Lunch on Friday"))
    });
    let delivered = mailbox(&alice);
    let lunch = delivered
        .iter()
        .find(|mail| mail.contains("Lunch on Friday"))
        .expect("delivered message");
    assert!(lunch.contains("\nX-Gatehouse-Action: deliver\n"), "{lunch}");
    assert!(lunch.contains("\nX-Gatehouse-Score: 0.0\n"), "{lunch}");
    assert!(lunch.contains("\nX-Gatehouse-Signals: "), "{lunch}");
    assert!(lunch.contains("\nX-Gatehouse-Id: "), "{lunch}");

    // The held message is in the quarantine and not in the mailbox.
    let held_folder = root.join("quarantine/held");
    let held_files: Vec<PathBuf> = fs::read_dir(&held_folder)
        .expect("held folder")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
        .collect();
    assert_eq!(held_files.len(), 1, "{held_files:?}");
    let held_text = text(&fs::read(&held_files[0]).expect("held message"));
    assert!(
        held_text.contains("Subject: Invoice overdue"),
        "{held_text}"
    );
    assert!(held_text.contains("(Gatehouse milter)"), "{held_text}");
    assert!(
        !delivered
            .iter()
            .any(|mail| mail.contains("Invoice overdue")),
        "held message was delivered"
    );
    assert!(
        postfix.log().contains("milter-discard"),
        "{}",
        postfix.log()
    );
    let decisions = server.log();
    assert!(decisions.contains("action=\"hold\""), "{decisions}");
    assert!(decisions.contains("action=\"deliver\""), "{decisions}");

    // Release re-injects it through Postfix's port without the milter.
    let id = held_files[0]
        .file_stem()
        .and_then(|stem| stem.to_str())
        .expect("held id")
        .to_owned();
    let released = run(
        root,
        &["quarantine", "release", &id, "--config", &config_arg],
    );
    assert!(
        released.status.success(),
        "{}{}",
        text(&released.stdout),
        text(&released.stderr)
    );
    assert!(
        text(&released.stdout).contains(&format!("released {id}: 250")),
        "{}",
        text(&released.stdout)
    );
    wait_for("the released message", &postfix.log, || {
        mailbox(&alice)
            .iter()
            .any(|mail| mail.contains("Invoice overdue"))
    });
    assert!(root.join(format!("quarantine/released/{id}.eml")).exists());

    drop(postfix);
    let status = server.stop();
    assert!(status.success(), "gatehouse serve exited with {status}");
}
