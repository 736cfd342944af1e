//! Hostile input through `Engine::analyse`. Each case is a message built to
//! crash, hang, exhaust or evade a scanner. Each must give a verdict with the
//! finding that names the limit that tripped, and still show what it hid
//! wherever the limits let it be read.
//!
//! The messages come from the deterministic generator in `generate.rs`. Time
//! and peak memory are not asserted here: `scripts/fuzz-hostile` writes the
//! same messages to files and measures `gatehouse scan` on each.
//!
//! Regression inputs that fuzzing found live in `fuzz/regressions/<target>/`
//! and run here through the entry point of their target, so `cargo test`
//! replays them without a nightly toolchain.

#![allow(clippy::print_stderr)]

mod generate;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use gatehouse_engine::{Engine, Envelope, Limits, Verdict, When};
use gatehouse_graph::RedbGraph;
use gatehouse_policy::Policy;
use time::macros::datetime;

use generate::HIDDEN_LINK;

/// Analyses one message on an empty graph with the default policy and limits.
fn analyse(raw: &[u8]) -> Verdict {
    let dir = tempfile::tempdir().expect("temporary directory");
    let graph = RedbGraph::open(&dir.path().join("graph.redb")).expect("open graph");
    let engine = Engine::new(
        Arc::new(Policy::embedded_default()),
        Arc::new(graph),
        Limits::default(),
        vec!["example.com".to_owned()],
    );
    let envelope = Envelope {
        mail_from: "sender@example.net".to_owned(),
        rcpt_to: vec!["user@example.com".to_owned()],
        client_ip: Some([203, 0, 113, 9].into()),
        helo: Some("mail.example.net".to_owned()),
    };
    let when = When::At(datetime!(2026-11-02 08:00 UTC));
    engine.analyse(&envelope, raw, when).verdict
}

/// Returns whether the verdict carries the signal.
fn fires(verdict: &Verdict, signal: &str) -> bool {
    verdict.signals.iter().any(|fired| fired.id == signal)
}

/// Returns the evidence of every `attachment.unscannable` signal, joined, for asserts and messages.
fn unscannable_evidence(verdict: &Verdict) -> String {
    verdict
        .signals
        .iter()
        .filter(|fired| fired.id == "attachment.unscannable")
        .map(|fired| fired.evidence.as_str())
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Returns whether any finding has the id and a detail or location containing `text`.
fn has_finding(verdict: &Verdict, id: &str, text: &str) -> bool {
    verdict.findings.iter().any(|finding| {
        finding.id == id && (finding.detail.contains(text) || finding.location.contains(text))
    })
}

fn finding_list(verdict: &Verdict) -> String {
    verdict
        .findings
        .iter()
        .map(|finding| format!("{} at {}: {}", finding.id, finding.location, finding.detail))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Returns whether the verdict lists the hidden link.
fn finds_hidden_link(verdict: &Verdict) -> bool {
    verdict.links.iter().any(|link| link.url == HIDDEN_LINK)
}

/// Returns the evidence the parse stage gives when `max_mime_depth` trips.
///
/// The parser words it as nesting ("MIME nesting deeper than 20 levels"), so
/// the tests look for that wording rather than for "depth".
fn nesting_evidence() -> String {
    format!(
        "nesting deeper than {} levels",
        Limits::default().message.max_mime_depth
    )
}

#[test]
fn deep_multipart_is_cut_at_depth_limit() {
    let verdict = analyse(&generate::deep_multipart(generate::DEEP_LEVELS));

    assert!(
        fires(&verdict, "attachment.unscannable"),
        "findings:\n{}",
        finding_list(&verdict)
    );
    assert!(
        unscannable_evidence(&verdict).contains(&nesting_evidence()),
        "{}",
        unscannable_evidence(&verdict)
    );
}

#[test]
fn deep_rfc822_is_cut_at_depth_limit() {
    let verdict = analyse(&generate::deep_rfc822(generate::DEEP_LEVELS));

    assert!(
        fires(&verdict, "attachment.unscannable"),
        "findings:\n{}",
        finding_list(&verdict)
    );
    assert!(
        unscannable_evidence(&verdict).contains(&nesting_evidence()),
        "{}",
        unscannable_evidence(&verdict)
    );
}

#[test]
fn many_parts_are_cut_at_part_limit() {
    let verdict = analyse(&generate::many_parts(generate::MANY_PARTS));

    assert!(
        fires(&verdict, "attachment.unscannable"),
        "findings:\n{}",
        finding_list(&verdict)
    );
    assert!(
        unscannable_evidence(&verdict).contains("parts"),
        "{}",
        unscannable_evidence(&verdict)
    );
}

#[test]
fn huge_header_is_cut_and_body_still_read() {
    let verdict = analyse(&generate::huge_header(generate::HUGE_HEADER_BYTES));

    assert!(
        fires(&verdict, "attachment.unscannable"),
        "findings:\n{}",
        finding_list(&verdict)
    );
    let subject_len = verdict.message.subject.as_deref().map_or(0, str::len);
    assert!(
        subject_len <= Limits::default().message.max_header_bytes,
        "subject of {subject_len} bytes kept"
    );
    assert!(finds_hidden_link(&verdict), "links: {:?}", verdict.links);
}

#[test]
fn long_line_is_truncated_and_its_link_found() {
    let verdict = analyse(&generate::long_line(generate::LONG_LINE_BYTES));

    assert!(finds_hidden_link(&verdict), "links: {:?}", verdict.links);
    assert!(
        fires(&verdict, "attachment.unscannable"),
        "findings:\n{}",
        finding_list(&verdict)
    );
}

#[test]
fn missing_boundary_still_shows_link() {
    let verdict = analyse(&generate::missing_boundary());

    assert!(finds_hidden_link(&verdict), "links: {:?}", verdict.links);
    assert!(
        has_finding(&verdict, "MalformedMime", "boundary"),
        "findings:\n{}",
        finding_list(&verdict)
    );
}

#[test]
fn duplicated_boundary_still_shows_link() {
    let verdict = analyse(&generate::duplicated_boundary());

    assert!(finds_hidden_link(&verdict), "links: {:?}", verdict.links);
}

#[test]
fn unclosed_boundary_still_shows_link() {
    let verdict = analyse(&generate::unclosed_boundary());

    assert!(finds_hidden_link(&verdict), "links: {:?}", verdict.links);
    assert!(
        has_finding(&verdict, "MalformedMime", ""),
        "findings:\n{}",
        finding_list(&verdict)
    );
}

#[test]
fn boundary_dash_still_shows_link() {
    let verdict = analyse(&generate::boundary_dash());

    assert!(finds_hidden_link(&verdict), "links: {:?}", verdict.links);
}

#[test]
fn base64_garbage_still_shows_link() {
    let verdict = analyse(&generate::base64_garbage());

    assert!(finds_hidden_link(&verdict), "links: {:?}", verdict.links);
}

#[test]
fn zip_overlap_is_unscannable() {
    let verdict = analyse(&generate::zip_overlap());

    assert!(
        fires(&verdict, "attachment.unscannable"),
        "findings:\n{}",
        finding_list(&verdict)
    );
}

#[test]
fn zip_recursive_is_cut_at_depth_limit() {
    let verdict = analyse(&generate::zip_recursive(generate::ZIP_NESTING));

    assert!(
        fires(&verdict, "attachment.unscannable"),
        "findings:\n{}",
        finding_list(&verdict)
    );
    assert!(
        unscannable_evidence(&verdict).contains("depth"),
        "{}",
        unscannable_evidence(&verdict)
    );
}

/// The unpacker skips the document type declaration and never expands a
/// custom entity, so the bomb costs nothing and no limit trips: the document
/// is read whole, and `attachment.unscannable` would be a false claim.
#[test]
fn docx_entities_are_not_expanded() {
    let verdict = analyse(&generate::docx_entities());

    assert!(finds_hidden_link(&verdict), "links: {:?}", verdict.links);
    assert!(
        !fires(&verdict, "attachment.unscannable"),
        "{}",
        unscannable_evidence(&verdict)
    );
    assert_eq!(
        verdict
            .attachments
            .iter()
            .map(|attachment| attachment.kind.as_str())
            .collect::<Vec<_>>(),
        ["docx"],
        "attachment types"
    );
}

#[test]
fn png_huge_dimensions_is_unscannable() {
    let verdict = analyse(&generate::png_huge_dimensions());

    assert!(
        fires(&verdict, "attachment.unscannable"),
        "findings:\n{}",
        finding_list(&verdict)
    );
    assert!(
        unscannable_evidence(&verdict).contains("60000x60000"),
        "{}",
        unscannable_evidence(&verdict)
    );
}

#[test]
fn docx_many_images_is_cut_at_entry_limit() {
    let verdict = analyse(&generate::docx_many_images(generate::DOCX_IMAGES));

    assert!(
        fires(&verdict, "attachment.unscannable"),
        "findings:\n{}",
        finding_list(&verdict)
    );
    assert!(
        unscannable_evidence(&verdict).contains("entries"),
        "{}",
        unscannable_evidence(&verdict)
    );
}

/// An image tiled with 2,500 QR finder patterns once ran for over 7 minutes
/// and past 3 GiB in the ZXing Java port's search, which tried every triple
/// of candidates. That reader is no longer used.
// NOTE: the first pass alone still takes seconds on this image, because no
// limit bounds the time of one pass. `max_image_millis` stops the ones after.
#[test]
fn qr_slowest_gives_verdict_without_codes() {
    let started = std::time::Instant::now();
    let verdict = analyse(&generate::qr_slowest());
    eprintln!("qr-slowest analysed in {:?}", started.elapsed());

    assert_eq!(verdict.qr_codes, Vec::new());
    assert!(
        has_finding(&verdict, "attachment.unscannable", "max_image_millis"),
        "findings:\n{}",
        finding_list(&verdict)
    );
    let evidence = unscannable_evidence(&verdict);
    assert!(
        evidence.contains("could not be scanned: QR decoding took "),
        "{evidence}"
    );
}

#[test]
fn many_links_are_capped() {
    let verdict = analyse(&generate::many_links(generate::MANY_LINKS_BYTES));

    let max_links = Limits::default().message.max_links;
    assert!(
        verdict.links.len() <= max_links,
        "{} links kept, over the limit of {max_links}",
        verdict.links.len()
    );
    assert!(
        verdict
            .links
            .iter()
            .any(|link| link.url == "https://host0.example/path?id=0"),
        "first link missing"
    );
}

fn corpus() -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
    if path.is_dir() {
        Some(path)
    } else {
        eprintln!("skipping: no corpus at {}", path.display());
        None
    }
}

const XLSX_TYPE: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// Attaches each corpus file to a message and returns the file and its
/// verdict; a file missing from the corpus is skipped with a message.
fn analyse_corpus_files(corpus: &Path, cases: &[(&str, &str)]) -> Vec<(String, Verdict)> {
    let mut verdicts = Vec::new();
    for &(file, content_type) in cases {
        let path = corpus.join(file);
        let Ok(data) = std::fs::read(&path) else {
            eprintln!("skipping {}: not in the corpus", path.display());
            continue;
        };
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or("bomb");
        let raw = generate::with_attachment(file, name, content_type, &data);
        verdicts.push((file.to_owned(), analyse(&raw)));
    }
    verdicts
}

/// Real ZIP bombs from the corpus (overlapping entries, nested archives):
/// each trips an unpack limit, which the verdict reports.
#[test]
fn corpus_zip_bombs_are_unscannable() {
    let Some(corpus) = corpus() else {
        return;
    };
    let cases = [
        ("zip-bombs/zbsm.zip", "application/zip"),
        ("zip-bombs/Challenge9-recursive.zip", "application/zip"),
    ];
    for (file, verdict) in analyse_corpus_files(&corpus, &cases) {
        assert!(
            fires(&verdict, "attachment.unscannable"),
            "{file}: findings:\n{}",
            finding_list(&verdict)
        );
    }
}

/// Real XML entity bombs in spreadsheets from the corpus. The unpacker never
/// expands a custom entity, so no limit trips and the verdict must not call
/// them unscannable, and each spreadsheet is still recognised as one.
#[test]
fn corpus_xml_bombs_are_read_without_expansion() {
    let Some(corpus) = corpus() else {
        return;
    };
    let cases = [
        ("apache-poi/spreadsheet/poc-xmlbomb.xlsx", XLSX_TYPE),
        ("apache-poi/spreadsheet/poc-xmlbomb-empty.xlsx", XLSX_TYPE),
        ("apache-poi/spreadsheet/poc-shared-strings.xlsx", XLSX_TYPE),
        ("apache-poi/spreadsheet/54764.xlsx", XLSX_TYPE),
        ("apache-poi/spreadsheet/54764-2.xlsx", XLSX_TYPE),
    ];
    for (file, verdict) in analyse_corpus_files(&corpus, &cases) {
        assert!(
            !fires(&verdict, "attachment.unscannable"),
            "{file}: {}",
            unscannable_evidence(&verdict)
        );
        assert_eq!(
            verdict
                .attachments
                .iter()
                .map(|attachment| attachment.kind.as_str())
                .collect::<Vec<_>>(),
            ["xlsx"],
            "{file}: attachment types"
        );
    }
}

/// Returns the files under `fuzz/regressions/<target>/`, sorted.
fn regressions(target: &str) -> Vec<PathBuf> {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/regressions")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                .collect()
        })
        .unwrap_or_default();
    files.retain(|path| path.is_file());
    files.sort();
    files
}

/// Every regression input of the message, unpack, QR and engine targets
/// gives a verdict with a finite score, and the verdict serialises to JSON
/// as the quarantine writes it.
#[test]
fn fuzz_regressions_give_verdicts() {
    for target in ["mime_parse", "unpack", "qr_decode", "engine"] {
        for path in regressions(target) {
            let data = std::fs::read(&path).expect("regression input is readable");
            let raw = match target {
                "unpack" => generate::with_attachment(
                    "regression",
                    "input.bin",
                    "application/octet-stream",
                    &data,
                ),
                "qr_decode" => {
                    generate::with_attachment("regression", "input.png", "image/png", &data)
                }
                _ => data,
            };
            if target == "mime_parse" {
                let message = gatehouse_message::parse(&raw, &gatehouse_message::Limits::default());
                if let Err(err) = serde_json::to_string(&message) {
                    panic!("{}: the message does not serialise: {err}", path.display());
                }
            }
            let verdict = analyse(&raw);
            assert!(
                verdict.score.is_finite(),
                "{}: score {}",
                path.display(),
                verdict.score
            );
            if let Err(err) = serde_json::to_string(&verdict) {
                panic!("{}: the verdict does not serialise: {err}", path.display());
            }
        }
    }
}

/// Writes every generated message to the folder named by
/// `GATEHOUSE_HOSTILE_DIR`, for `scripts/fuzz-hostile` to measure.
#[test]
#[ignore = "writes files; run by scripts/fuzz-hostile"]
fn write_fixtures() {
    let dir = std::env::var_os("GATEHOUSE_HOSTILE_DIR").expect("GATEHOUSE_HOSTILE_DIR is set");
    let dir = PathBuf::from(dir);
    std::fs::create_dir_all(&dir).expect("create the fixture folder");
    for (name, raw) in generate::all() {
        std::fs::write(dir.join(name), raw).expect("write a fixture");
    }
}
