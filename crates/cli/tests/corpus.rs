//! `gatehouse scan` over every `.eml` of the shared third-party corpus: no
//! panic, no hang, one verdict per readable message.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{gatehouse, text};

/// Files per `gatehouse scan` run, so a crash points at a small batch.
const BATCH: usize = 100;
/// Time one batch may take before the test calls it a hang. An estimate for
/// debug builds on two cores; a batch normally takes a few seconds.
const BATCH_TIMEOUT: Duration = Duration::from_secs(600);

fn emls(folder: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            emls(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "eml") {
            found.push(path);
        }
    }
}

#[test]
fn scan_whole_corpus_without_panic() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
    if !corpus.is_dir() {
        eprintln!("skipped: no corpus at {}", corpus.display());
        return;
    }
    let mut files = Vec::new();
    emls(&corpus, &mut files);
    assert!(
        !files.is_empty(),
        "no .eml files under {}",
        corpus.display()
    );
    let folder = tempfile::tempdir().expect("temporary folder");

    let mut scanned = BTreeSet::new();
    for batch in files.chunks(BATCH) {
        let child = gatehouse()
            .args(["scan", "--format", "json"])
            .args(batch)
            .current_dir(folder.path())
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("gatehouse scan starts");
        let pid = child.id().to_string();
        // The output is collected on another thread so a full pipe never blocks the scan.
        let (done, finished) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = done.send(child.wait_with_output());
        });
        let output = match finished.recv_timeout(BATCH_TIMEOUT) {
            Ok(output) => output.expect("scan output"),
            Err(_) => {
                let _ = Command::new("kill").args(["-KILL", &pid]).status();
                panic!("scan hung on the batch starting at {}", batch[0].display());
            }
        };
        let status = output.status;
        let stderr = text(&output.stderr);
        assert!(
            status.success(),
            "scan failed on the batch starting at {}: {stderr}",
            batch[0].display()
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        for line in text(&output.stdout).lines() {
            let verdict: serde_json::Value = serde_json::from_str(line).expect("verdict JSON");
            let file = verdict["file"].as_str().unwrap_or("");
            // An mbox names its messages `file#N`.
            let file = match file.rsplit_once('#') {
                Some((path, number)) if number.bytes().all(|byte| byte.is_ascii_digit()) => path,
                _ => file,
            };
            scanned.insert(PathBuf::from(file));
        }
    }
    let missing: Vec<&PathBuf> = files
        .iter()
        .filter(|file| !scanned.contains(*file))
        .collect();
    assert!(missing.is_empty(), "no verdict for {missing:?}");
}
