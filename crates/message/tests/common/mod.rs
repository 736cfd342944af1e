//! Helpers shared by the integration tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use gatehouse_message::links::{self, Link};
use gatehouse_message::{BodyKind, Limits, Message};

/// Returns the third-party corpus beside the repository, or `None` (with a
/// printed notice) when it is absent.
pub(crate) fn corpus_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "skipped: corpus not found at {}; it is kept outside the repository",
            dir.display()
        );
        None
    }
}

/// Reads one corpus file, or `None` (with a printed notice) when the corpus or the file is absent.
pub(crate) fn corpus_file(relative: &str) -> Option<Vec<u8>> {
    let path = corpus_dir()?.join(relative);
    match std::fs::read(&path) {
        Ok(raw) => Some(raw),
        Err(err) => {
            eprintln!("skipped: cannot read {}: {err}", path.display());
            None
        }
    }
}

/// Lists every file under `dir` whose name ends with one of `extensions`, sorted.
pub(crate) fn files_under(dir: &Path, extensions: &[&str]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&current) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path
                .file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| extensions.iter().any(|ext| name.ends_with(ext)))
            {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// Parses a message with the default limits.
pub(crate) fn parse(raw: &[u8]) -> Message {
    gatehouse_message::parse(raw, &Limits::default())
}

/// Extracts the links of every body, as the engine does.
pub(crate) fn links_of(message: &Message) -> Vec<Link> {
    let mut found = Vec::new();
    for body in &message.bodies {
        found.extend(match body.kind {
            BodyKind::Plain => links::extract_text(&body.text, &body.location),
            BodyKind::Html => links::extract_html(&body.text, &body.location),
        });
    }
    found
}

/// Converts LF line ends to CRLF, leaving existing CRLF alone.
pub(crate) fn crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 20);
    let mut previous = 0u8;
    for &byte in raw {
        if byte == b'\n' && previous != b'\r' {
            out.push(b'\r');
        }
        out.push(byte);
        previous = byte;
    }
    out
}
