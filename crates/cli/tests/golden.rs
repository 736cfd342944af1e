//! Golden tests of `gatehouse scan --format json`: each input's verdict,
//! without its random id, must equal `tests/golden/NAME.json`.
//!
//! The inputs are the repository's own fixtures and messages of the shared
//! third-party corpus, which is read in place and never copied here. Each
//! scan starts on an empty graph, so a verdict depends only on the message,
//! the embedded policy and `local_domains = ["example.com"]`. Set
//! `UPDATE_GOLDEN=1` to rewrite the JSON files after a deliberate change,
//! then review the diff.

mod common;

use std::path::{Path, PathBuf};

use common::{gatehouse, repo, text};

/// The inputs, by golden file name and path from the repository root.
const OWN: &[(&str, &str)] = &[
    ("bench-plain", "fixtures/bench/plain.eml"),
    ("bench-html", "fixtures/bench/html.eml"),
    ("bench-docx-qr", "fixtures/bench/docx-qr.eml"),
    ("cli-plain", "crates/cli/tests/data/plain.eml"),
];

/// Corpus messages: a PIX payment code in a PDF and a QR link drawn as
/// vector paths in a PDF. Two messages come from example.com, which is local
/// here, so they are learned rather than judged: one with a non-ASCII
/// filename, one with a broken PDF. The rest are mail in Japanese
/// (ISO-2022-JP) and Russian, and a UTF-7 body.
const CORPUS: &[(&str, &str)] = &[
    (
        "phishing-1977-pdf-pix-code",
        "../shared/corpus/phishing_pot/email/sample-1977.eml",
    ),
    (
        "phishing-4091-pdf-vector-qr",
        "../shared/corpus/phishing_pot/email/sample-4091.eml",
    ),
    (
        "mail-ruby-nonascii-filename",
        "../shared/corpus/mikel-mail-ruby/emails/attachment_emails/attachment_nonascii_filename.eml",
    ),
    (
        "mail-ruby-forwarded-message",
        "../shared/corpus/mikel-mail-ruby/emails/attachment_emails/attachment_message_rfc822.eml",
    ),
    (
        "mail-ruby-japanese-iso-2022",
        "../shared/corpus/mikel-mail-ruby/emails/multi_charset/japanese_iso_2022.eml",
    ),
    (
        "spamassassin-spam-koi8",
        "../shared/corpus/spamassassin-publiccorpus/spam-1/00089.7e7baae6ef4a8fb945d7b3fe551329fe.eml",
    ),
    (
        "stalwart-legacy-utf7",
        "../shared/corpus/stalwart-mail-parser/eml/legacy/001.eml",
    ),
];

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Scans one message with a fresh config and graph, and returns its verdict
/// without the id, which is new on every run.
fn scan(input: &str) -> serde_json::Value {
    let folder = tempfile::tempdir().expect("temporary folder");
    let config = folder.path().join("gatehouse.toml");
    std::fs::write(
        &config,
        "[gateway]\nlocal_domains = [\"example.com\"]\ndata_dir = \"data\"\n",
    )
    .expect("write config");
    let output = gatehouse()
        .args(["--config"])
        .arg(&config)
        .args(["scan", "--format", "json", input])
        .current_dir(repo())
        .env_remove("RUST_LOG")
        .output()
        .expect("gatehouse runs");
    assert!(
        output.status.success(),
        "scan {input} failed: {}",
        text(&output.stderr)
    );
    let mut verdict: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("scan prints one JSON verdict");
    if let Some(fields) = verdict.as_object_mut() {
        fields.remove("id");
    }
    verdict
}

/// Compares each input's verdict with its golden file, or rewrites the file.
fn check(inputs: &[(&str, &str)]) {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    for (name, input) in inputs {
        let verdict = scan(input);
        let golden = golden_dir().join(format!("{name}.json"));
        if update {
            let text = serde_json::to_string_pretty(&verdict).expect("serialise") + "\n";
            std::fs::write(&golden, text).expect("write golden file");
            continue;
        }
        let expected = std::fs::read_to_string(&golden).unwrap_or_else(|err| {
            panic!(
                "cannot read {}: {err}; run with UPDATE_GOLDEN=1",
                golden.display()
            )
        });
        let expected: serde_json::Value =
            serde_json::from_str(&expected).expect("golden file is JSON");
        assert_eq!(
            verdict,
            expected,
            "the verdict on {input} differs from {}",
            golden.display()
        );
    }
}

#[test]
fn own_fixtures_match_golden_verdicts() {
    check(OWN);
}

#[test]
fn corpus_messages_match_golden_verdicts() {
    if !repo().join("../shared/corpus").is_dir() {
        eprintln!("skipped: ../shared/corpus is absent");
        return;
    }
    check(CORPUS);
}

#[test]
fn golden_files_are_all_checked() {
    let mut names: Vec<String> = std::fs::read_dir(golden_dir())
        .expect("golden folder")
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".json").map(str::to_owned)
        })
        .collect();
    names.sort();
    let mut listed: Vec<String> = OWN
        .iter()
        .chain(CORPUS)
        .map(|(name, _)| (*name).to_owned())
        .collect();
    listed.sort();
    assert_eq!(names, listed);
}
