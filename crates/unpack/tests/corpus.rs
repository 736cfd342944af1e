//! Unpacking third-party Office files and archives: links, QR codes,
//! bombs, crash reproducers and fuzz inputs.
//!
//! The files live in the shared corpus beside the repository; each test
//! prints a message and passes when it is absent.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use gatehouse_unpack::{Artifact, FileKind, FindingKind, Limits, unpack};

fn corpus() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
    if root.is_dir() {
        Some(root)
    } else {
        eprintln!("skipped: corpus not found at {}", root.display());
        None
    }
}

fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(next) = stack.pop() {
        let Ok(entries) = fs::read_dir(&next) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

fn unpack_file(path: &Path) -> Artifact {
    let data = fs::read(path).expect("corpus file is readable");
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    unpack(&name, &data, &Limits::default())
}

fn qr_payloads(artifact: &Artifact) -> Vec<String> {
    artifact
        .walk()
        .filter(|nested| !nested.image_data.is_empty())
        .filter_map(|nested| {
            gatehouse_qr::decode(&nested.image_data, &gatehouse_qr::Limits::default()).ok()
        })
        .flatten()
        .map(|code| code.payload)
        .collect()
}

fn all_findings(artifact: &Artifact) -> Vec<(FindingKind, String)> {
    artifact
        .walk()
        .flat_map(|nested| {
            nested
                .findings
                .iter()
                .map(|finding| (finding.kind, finding.detail.clone()))
        })
        .collect()
}

#[test]
fn poi_stress004_qr_url() {
    let Some(root) = corpus() else { return };
    let artifact = unpack_file(&root.join("apache-poi/integration/stress004.docx"));
    assert_eq!(artifact.kind, FileKind::Docx);
    let payloads = qr_payloads(&artifact);
    assert!(
        payloads.contains(&"http://www.aqeedeh.com/".to_owned()),
        "{payloads:?}"
    );
}

#[test]
fn poi_stress011_qr_url_in_footer_image() {
    let Some(root) = corpus() else { return };
    let artifact = unpack_file(&root.join("apache-poi/integration/stress011.docx"));
    let payloads = qr_payloads(&artifact);
    assert!(
        payloads.contains(&"http://undocs.org/ar/CRC/C/GC/20".to_owned()),
        "{payloads:?}"
    );
}

/// Every `TargetMode="External"` target listed in `OFFICE_INVENTORY.tsv`
/// is among the artifact's URLs, file by file.
#[test]
fn office_inventory_external_targets() {
    let Some(root) = corpus() else { return };
    let inventory =
        fs::read_to_string(root.join("OFFICE_INVENTORY.tsv")).expect("inventory is readable");
    let mut files_checked = 0;
    let mut missing_by_file = Vec::new();
    for line in inventory
        .lines()
        .filter(|line| !line.starts_with('#'))
        .skip(1)
    {
        let columns: Vec<&str> = line.split('\t').collect();
        let (Some(file), Some(targets)) = (columns.first(), columns.get(8)) else {
            continue;
        };
        if targets.is_empty() {
            continue;
        }
        // The inventory lists targets as written in the XML, escaped, and
        // separated by spaces (so a target with a space reads as two).
        let mut expected: Vec<String> = targets.split(' ').map(unescape_xml).collect();
        // The inventory cuts this column at 1,500 characters, mid-URL.
        if targets.len() >= 1500 {
            expected.pop();
        }
        let artifact = unpack_file(&root.join(file));
        let found: HashSet<String> = artifact
            .walk()
            .flat_map(|nested| nested.urls.iter().map(|url| url.url.clone()))
            .collect();
        let missing: Vec<String> = expected
            .into_iter()
            .filter(|target| {
                !found.contains(target)
                    && !found.iter().any(|url| {
                        url.contains(&format!("{target} ")) || url.contains(&format!(" {target}"))
                    })
            })
            .collect();
        if !missing.is_empty() {
            missing_by_file.push(format!("{file}: {missing:?}"));
        }
        files_checked += 1;
    }
    eprintln!("{files_checked} files with external targets checked");
    assert!(
        files_checked >= 65,
        "only {files_checked} files with external targets in the inventory"
    );
    assert!(
        missing_by_file.is_empty(),
        "targets not found:\n{}",
        missing_by_file.join("\n")
    );
}

fn unescape_xml(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[test]
fn zbsm_overlapping_entries_detected() {
    let Some(root) = corpus() else { return };
    let artifact = unpack_file(&root.join("zip-bombs/zbsm.zip"));
    let findings = all_findings(&artifact);
    assert!(
        findings
            .iter()
            .any(|(kind, detail)| *kind == FindingKind::Unscannable && detail.contains("overlap")),
        "{findings:?}"
    );
    assert!(
        artifact.children.is_empty(),
        "no entry of an overlapping archive is read"
    );
}

#[test]
fn recursive_zip_stops_at_depth_limit() {
    let Some(root) = corpus() else { return };
    let artifact = unpack_file(&root.join("zip-bombs/Challenge9-recursive.zip"));
    let findings = all_findings(&artifact);
    assert!(
        findings.iter().any(|(kind, detail)| *kind == FindingKind::Unscannable && detail.contains("max_depth")),
        "{findings:?}"
    );
    let deepest = artifact
        .walk()
        .map(|nested| nested.location.matches(" › ").count())
        .max();
    assert!(deepest <= Some(Limits::default().max_depth));
}

/// POI's ClusterFuzz and crash reproducers and its truncated file are
/// damaged. Each one must yield a finding, and none may panic.
#[test]
fn poi_crash_reproducers_yield_findings() {
    let Some(root) = corpus() else { return };
    let mut checked = 0;
    let mut silent = Vec::new();
    for path in all_files(&root.join("apache-poi")) {
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !(name.starts_with("clusterfuzz-")
            || name.starts_with("crash-")
            || name.starts_with("truncated"))
        {
            continue;
        }
        let artifact = unpack_file(&path);
        if all_findings(&artifact).is_empty() {
            silent.push(name);
        }
        checked += 1;
    }
    eprintln!("{checked} crash reproducers checked");
    assert!(
        checked >= 33,
        "expected at least 33 reproducers, found {checked}"
    );
    assert!(silent.is_empty(), "no finding for: {silent:?}");
}

#[test]
fn encrypted_ooxml_is_unscannable() {
    let Some(root) = corpus() else { return };
    for file in [
        "apache-poi/document/bug53475-password-is-pass.docx",
        "apache-poi/poifs/protected_agile.docx",
    ] {
        let artifact = unpack_file(&root.join(file));
        assert_eq!(artifact.kind, FileKind::Cfb, "{file}");
        assert!(
            artifact
                .findings
                .iter()
                .any(|finding| finding.kind == FindingKind::Unscannable
                    && finding.detail.contains("encrypted")),
            "{file}: {:?}",
            artifact.findings
        );
    }
}

#[test]
fn macros_are_active_content() {
    let Some(root) = corpus() else { return };
    for file in [
        "apache-poi/document/SimpleMacro.docm",
        "apache-poi/spreadsheet/SimpleMacro.xlsm",
        "apache-poi/slideshow/SimpleMacro.pptm",
        "apache-poi/spreadsheet/xlmmacro.xlsm",
    ] {
        let artifact = unpack_file(&root.join(file));
        let findings = all_findings(&artifact);
        assert!(
            findings
                .iter()
                .any(|(kind, _)| *kind == FindingKind::ActiveContent),
            "{file}: {findings:?}"
        );
    }
}

#[test]
fn macro_enabled_kinds_sniffed() {
    let Some(root) = corpus() else { return };
    let cases = [
        ("apache-poi/document/SimpleMacro.docm", FileKind::Docm),
        ("apache-poi/spreadsheet/SimpleMacro.xlsm", FileKind::Xlsm),
        ("apache-poi/slideshow/SimpleMacro.pptm", FileKind::Pptm),
        ("apache-poi/document/60316b.dotx", FileKind::Dotx),
        ("apache-poi/slideshow/shapes.pptx", FileKind::Pptx),
        ("apache-poi/spreadsheet/52716.xlsx", FileKind::Xlsx),
    ];
    for (file, kind) in cases {
        let data = fs::read(root.join(file)).expect("corpus file is readable");
        assert_eq!(gatehouse_unpack::sniff(&data), kind, "{file}");
    }
}

#[test]
fn embedded_objects_are_children() {
    let Some(root) = corpus() else { return };
    for file in [
        "apache-poi/document/WordWithAttachments.docx",
        "apache-poi/slideshow/PPTWithAttachments.pptm",
        "apache-poi/spreadsheet/ExcelWithAttachments.xlsm",
    ] {
        let artifact = unpack_file(&root.join(file));
        let embedded: Vec<&Artifact> = artifact
            .walk()
            .filter(|nested| nested.location.contains("embeddings/"))
            .collect();
        assert!(!embedded.is_empty(), "{file}: no embedded objects");
        let opened = embedded
            .iter()
            .filter(|nested| !nested.children.is_empty() || !nested.text.is_empty())
            .count();
        eprintln!("{file}: {} embedded, {opened} with content", embedded.len());
    }
}

#[test]
fn zip_names_in_legacy_encodings() {
    let Some(root) = corpus() else { return };
    let chinese = unpack_file(&root.join("zip2/chinese.zip"));
    let names: Vec<&str> = chinese
        .children
        .iter()
        .map(|child| child.location.as_str())
        .collect();
    assert!(
        names
            .iter()
            .any(|name| name.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))),
        "{names:?}"
    );
    let non_utf8 = unpack_file(&root.join("zip2/non_utf8.zip"));
    assert!(!non_utf8.children.is_empty());
}

#[test]
fn zip64_entries_read() {
    let Some(root) = corpus() else { return };
    let artifact = unpack_file(&root.join("zip2/zip64_demo.zip"));
    assert!(!artifact.children.is_empty(), "{:?}", artifact.findings);
}

#[test]
fn aes_encrypted_entry_flagged() {
    let Some(root) = corpus() else { return };
    let artifact = unpack_file(&root.join("zip2/aes_archive.zip"));
    assert!(
        artifact
            .findings
            .iter()
            .any(|finding| finding.kind == FindingKind::Unscannable
                && finding.detail.contains("encrypted")),
        "{:?}",
        artifact.findings
    );
}

/// Every file under the office, archive and image folders goes through
/// `unpack`, and every image it yields through `decode`, without a panic.
#[test]
fn corpus_files_never_panic() {
    let Some(root) = corpus() else { return };
    let mut files = 0;
    let mut images = 0;
    for folder in [
        "apache-poi",
        "docx4j",
        "python-docx",
        "mammoth",
        "zip2",
        "zip-bombs",
        "zxing-java-blackbox",
        "rqrr",
    ] {
        for path in all_files(&root.join(folder)) {
            let artifact = unpack_file(&path);
            for nested in artifact
                .walk()
                .filter(|nested| !nested.image_data.is_empty())
            {
                let _ = gatehouse_qr::decode(&nested.image_data, &gatehouse_qr::Limits::default());
                images += 1;
            }
            files += 1;
        }
    }
    eprintln!("{files} files unpacked, {images} images decoded");
    assert!(files > 1500, "only {files} files found");
}
