//! `gatehouse serve` as a process the driver starts, kills with SIGKILL,
//! restarts and stops, with what the driver reads about it: memory and
//! file descriptors from /proc, the graph through `gatehouse graph`, and
//! the quarantine folder.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::mix;

/// Settings written into the `[smtp]` section of the test config.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub max_connections: usize,
    pub command_timeout_secs: u64,
    pub session_timeout_secs: u64,
}

/// A gateway folder: config, graph, quarantine and log, and the running process.
pub struct Gateway {
    binary: PathBuf,
    pub folder: PathBuf,
    pub config: PathBuf,
    pub address: SocketAddr,
    log: PathBuf,
    child: Option<Child>,
    /// The running process's id for the monitor, 0 while none runs.
    pid: Arc<AtomicU32>,
}

impl Gateway {
    /// Writes the config for a proxy in front of `upstream` in `folder`.
    ///
    /// The proxy listens on a fixed loopback port, so that a restarted
    /// process takes the place of the killed one at the same address.
    pub fn new(binary: &Path, folder: &Path, upstream: SocketAddr, smtp: &SmtpSettings) -> Gateway {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free loopback port")
            .port();
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let config = folder.join("gatehouse.toml");
        let text = format!(
            "[gateway]\nlocal_domains = [\"example.com\"]\n\
             [smtp]\nlisten = \"{address}\"\nupstream = \"{upstream}\"\nhostname = \"gatehouse.test\"\n\
             max_connections = {}\ncommand_timeout_secs = {}\nsession_timeout_secs = {}\n",
            smtp.max_connections, smtp.command_timeout_secs, smtp.session_timeout_secs
        );
        fs::write(&config, text).expect("config written");
        Gateway {
            binary: binary.to_owned(),
            folder: folder.to_owned(),
            config,
            address,
            log: folder.join("serve.log"),
            child: None,
            pid: Arc::new(AtomicU32::new(0)),
        }
    }

    /// Runs `gatehouse ARGS --config CONFIG` to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(&self.binary)
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .current_dir(&self.folder)
            .env_remove("RUST_LOG")
            .output()
            .expect("gatehouse runs")
    }

    /// Starts `gatehouse serve` and waits until it logs that it listens.
    pub fn start(&mut self) -> Duration {
        let started = Instant::now();
        let log_start = fs::metadata(&self.log).map_or(0, |metadata| metadata.len());
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("serve log opens");
        let child = Command::new(&self.binary)
            .args(["serve", "--config"])
            .arg(&self.config)
            .current_dir(&self.folder)
            .env("RUST_LOG", "warn,gatehouse_smtp::server=info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("gatehouse serve starts");
        self.pid.store(child.id(), Ordering::SeqCst);
        self.child = Some(child);

        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let text = fs::read(&self.log).unwrap_or_default();
            let new = String::from_utf8_lossy(text.get(log_start as usize..).unwrap_or_default());
            if new.contains("SMTP proxy started") {
                return started.elapsed();
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|child| child.try_wait().ok().flatten());
            assert!(exited.is_none(), "gatehouse serve exited at start:\n{new}");
            assert!(
                Instant::now() < deadline,
                "gatehouse serve did not start within 120 s:\n{new}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the process with SIGKILL, as a crash or the OOM killer would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.pid.store(0, Ordering::SeqCst);
    }

    /// Stops the process with SIGTERM and returns whether it exited with status 0.
    pub fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return false;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Ok(Some(status)) = child.try_wait() {
                break Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        self.pid.store(0, Ordering::SeqCst);
        status.is_some_and(|status| status.success())
    }

    pub fn pid(&self) -> Arc<AtomicU32> {
        Arc::clone(&self.pid)
    }

    /// Returns the serve log's lines that contain `needle`.
    pub fn log_lines(&self, needle: &str) -> Vec<String> {
        fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|line| line.contains(needle))
            .map(str::to_owned)
            .collect()
    }

    /// Returns the counts of `gatehouse graph stats`; the process must be stopped.
    pub fn graph_stats(&self) -> Result<BTreeMap<String, u64>, String> {
        let output = self.run(&["graph", "stats", "--format", "json"]);
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).into_owned());
        }
        serde_json::from_slice(&output.stdout).map_err(|err| err.to_string())
    }

    /// Returns whether the graph has `address` as a correspondent; the process must be stopped.
    pub fn graph_has_correspondent(&self, address: &str) -> Result<bool, String> {
        let output = self.run(&["graph", "explain", address, "--format", "json"]);
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).into_owned());
        }
        let report: serde_json::Value =
            serde_json::from_slice(&output.stdout).map_err(|err| err.to_string())?;
        Ok(!report["correspondent"].is_null())
    }

    pub fn quarantine(&self) -> QuarantineCheck {
        QuarantineCheck::read(&self.folder.join("quarantine/held"))
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Lists the graph counts that dropped from `before` to `after`. Campaign
/// window events are left out, because old events are pruned by design.
pub fn shrunk_counts(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> Vec<String> {
    before
        .iter()
        .filter(|(name, _)| name.as_str() != "window_events")
        .filter_map(|(name, &count)| {
            let now = after.get(name).copied().unwrap_or(0);
            (now < count).then(|| format!("{name} {count} -> {now}"))
        })
        .collect()
}

/// What the `held/` folder of the quarantine contains.
#[derive(Debug, Default)]
pub struct QuarantineCheck {
    /// Complete entries: an `.eml` and its verdict `.json`, both readable.
    pub entries: usize,
    /// The Message-IDs of the complete entries.
    pub message_ids: HashSet<String>,
    /// Entries that are not whole: a verdict without its message, or a file
    /// that does not parse.
    pub half_written: Vec<String>,
    /// Messages without their verdict: a hold that a kill cut off between its
    /// two writes. The client never got 250 for these, and listing skips
    /// them, but nothing removes them either.
    pub orphaned_messages: Vec<String>,
    /// Temporary files of a write that a kill interrupted.
    pub temporary_files: Vec<String>,
}

impl QuarantineCheck {
    fn read(held: &Path) -> QuarantineCheck {
        let mut check = QuarantineCheck::default();
        let Ok(listing) = fs::read_dir(held) else {
            return check;
        };
        let names: HashSet<String> = listing
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .collect();
        for name in &names {
            if name.starts_with(".tmp-") {
                check.temporary_files.push(name.clone());
            } else if let Some(stem) = name.strip_suffix(".json") {
                match read_entry(held, stem, names.contains(&format!("{stem}.eml"))) {
                    Ok(message_id) => {
                        check.entries += 1;
                        check.message_ids.insert(message_id);
                    }
                    Err(problem) => check.half_written.push(format!("{stem}: {problem}")),
                }
            } else if let Some(stem) = name.strip_suffix(".eml")
                && !names.contains(&format!("{stem}.json"))
            {
                // NOTE: `Quarantine::hold` renames the `.eml` into place before
                // it writes the `.json`, and no start-up step sweeps what a kill
                // leaves in between, so these stay until removed by hand.
                check.orphaned_messages.push(stem.to_owned());
            }
        }
        check.half_written.sort();
        check.orphaned_messages.sort();
        check
    }
}

/// Reads one entry and returns its Message-ID, or what is wrong with it.
fn read_entry(held: &Path, stem: &str, has_message: bool) -> Result<String, String> {
    if !has_message {
        return Err("verdict without its message".to_owned());
    }
    let json = fs::read(held.join(format!("{stem}.json"))).map_err(|err| err.to_string())?;
    let verdict: gatehouse_engine::Verdict =
        serde_json::from_slice(&json).map_err(|err| format!("verdict JSON invalid: {err}"))?;
    if verdict.id != stem {
        return Err(format!(
            "verdict id {} differs from the file name",
            verdict.id
        ));
    }
    let raw = fs::read(held.join(format!("{stem}.eml"))).map_err(|err| err.to_string())?;
    if !raw.starts_with(b"Received: ") || !raw.windows(4).any(|w| w == b"\r\n\r\n") {
        return Err("message has no Received field or no end of header".to_owned());
    }
    let message_id = mix::message_id(&raw).ok_or("message has no Message-ID")?;
    // The verdict stores the Message-ID without its angle brackets.
    let bare = message_id.trim_start_matches('<').trim_end_matches('>');
    if verdict.message.message_id.as_deref() != Some(bare) {
        return Err(format!(
            "verdict Message-ID {:?} differs from the message's {message_id}",
            verdict.message.message_id
        ));
    }
    Ok(message_id)
}

/// Peaks of the gateway process and of the machine, sampled while it runs.
#[derive(Debug, Default)]
pub struct Peaks {
    /// VmHWM in KiB: the peak resident set of any process the monitor saw.
    pub peak_rss_kib: AtomicU64,
    /// Maximum count of entries in /proc/PID/fd.
    pub peak_fds: AtomicU64,
    /// Maximum 1-minute load average, times 100.
    pub peak_load_centi: AtomicU64,
    pub samples: AtomicU64,
}

/// Samples the process `pid` names every `every` until `stop` is set.
pub fn monitor(
    pid: Arc<AtomicU32>,
    every: Duration,
    stop: Arc<AtomicBool>,
) -> (Arc<Peaks>, std::thread::JoinHandle<()>) {
    let peaks = Arc::new(Peaks::default());
    let shared = Arc::clone(&peaks);
    let handle = std::thread::spawn(move || {
        while !stop.load(Ordering::SeqCst) {
            sample(pid.load(Ordering::SeqCst), &shared);
            std::thread::sleep(every);
        }
    });
    (peaks, handle)
}

/// Reads the process's VmHWM and fd count and the load average once.
pub fn sample(pid: u32, peaks: &Peaks) {
    if pid != 0 {
        if let Some(kib) = status_kib(pid, "VmHWM:") {
            peaks.peak_rss_kib.fetch_max(kib, Ordering::SeqCst);
        }
        if let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) {
            peaks
                .peak_fds
                .fetch_max(fds.count() as u64, Ordering::SeqCst);
        }
    }
    if let Some(load) = load_average().first() {
        peaks
            .peak_load_centi
            .fetch_max((load * 100.0) as u64, Ordering::SeqCst);
    }
    peaks.samples.fetch_add(1, Ordering::SeqCst);
}

fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with(field))?;
    line[field.len()..].split_whitespace().next()?.parse().ok()
}

/// Returns the 1, 5 and 15 minute load averages.
pub fn load_average() -> Vec<f64> {
    fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .filter_map(|field| field.parse().ok())
        .collect()
}

/// Returns the file-descriptor limit of this process (RLIMIT_NOFILE), which
/// `gatehouse serve` inherits.
pub fn open_file_limit() -> Option<u64> {
    let limits = fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Creates a folder for a run, under `RELIABILITY_WORK_DIR` when set, else a temporary one.
pub fn work_folder(name: &str) -> (Option<tempfile::TempDir>, PathBuf) {
    match std::env::var_os("RELIABILITY_WORK_DIR") {
        Some(root) => {
            let path = PathBuf::from(root).join(name);
            let _ = fs::remove_dir_all(&path);
            fs::create_dir_all(&path).expect("work folder");
            (None, path)
        }
        None => {
            let folder = tempfile::tempdir().expect("temporary folder");
            let path = folder.path().to_owned();
            (Some(folder), path)
        }
    }
}

/// Appends `text` to the file, for the report the script prints.
pub fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut file = File::options()
        .create(true)
        .append(true)
        .open(path)
        .expect("report file opens");
    file.write_all(text.as_bytes()).expect("report written");
}
