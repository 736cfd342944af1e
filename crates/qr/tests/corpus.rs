//! QR accuracy and robustness on third-party images with known contents.
//!
//! The images live in the shared corpus beside the repository; each test
//! prints a message and passes when it is absent.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use gatehouse_qr::{Limits, decode, decode_with_report};

fn corpus() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
    if root.is_dir() {
        Some(root)
    } else {
        eprintln!("skipped: corpus not found at {}", root.display());
        None
    }
}

fn files_with_extension(dir: &Path, extensions: &[&str]) -> Vec<PathBuf> {
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
            } else if path
                .extension()
                .and_then(|ext| ext.to_str())
                .is_some_and(|ext| extensions.contains(&ext.to_ascii_lowercase().as_str()))
            {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// Decodes `qrcode-1` to `qrcode-6` of ZXing's Java test set and compares
/// each result with the text beside the image, exactly.
#[test]
fn zxing_blackbox_accuracy() {
    let Some(root) = corpus() else { return };
    let limits = Limits::default();
    let mut correct = 0;
    let mut total = 0;
    let mut by_pass: BTreeMap<String, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for set in 1..=6 {
        let dir = root.join(format!("zxing-java-blackbox/qrcode-{set}"));
        let mut set_correct = 0;
        let mut set_total = 0;
        for image in files_with_extension(&dir, &["png", "jpg", "jpeg", "gif"]) {
            let Ok(expected) = fs::read_to_string(image.with_extension("txt")) else {
                continue;
            };
            set_total += 1;
            let data = fs::read(&image).expect("corpus image is readable");
            let decoded = decode_with_report(&data, &limits);
            let hit = decoded
                .as_ref()
                .ok()
                .and_then(|decoded| decoded.codes.iter().find(|code| code.payload == expected));
            match hit {
                Some(code) => {
                    set_correct += 1;
                    *by_pass.entry(format!("{:?}", code.pass)).or_default() += 1;
                }
                None => failures.push(format!("qrcode-{set}/{}", file_name(&image))),
            }
        }
        eprintln!("qrcode-{set}: {set_correct}/{set_total}");
        correct += set_correct;
        total += set_total;
    }
    eprintln!("total: {correct}/{total}; recovered by pass: {by_pass:?}");
    eprintln!("failed: {failures:?}");
    assert_eq!(total, 179, "expected 179 images with text in qrcode-1..6");
    assert!(
        correct >= 165,
        "{correct}/{total} decoded correctly, expected at least 165"
    );
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[test]
fn zxing_multi_qrcode_yields_four() {
    let Some(root) = corpus() else { return };
    let dir = root.join("zxing-java-blackbox/multi-qrcode-1");
    let data = fs::read(dir.join("1.png")).expect("1.png is readable");
    let expected = expected_lines(&dir.join("1.expected.txt"));
    let codes = decode(&data, &Limits::default()).expect("1.png decodes");
    let mut payloads: Vec<String> = codes.into_iter().map(|code| code.payload).collect();
    payloads.sort();
    let mut expected_sorted = expected.clone();
    expected_sorted.sort();
    assert_eq!(payloads, expected_sorted);
}

#[test]
fn zxing_false_positives_yield_none() {
    let Some(root) = corpus() else { return };
    let dir = root.join("zxing-java-blackbox/falsepositives-2");
    let images = files_with_extension(&dir, &["png", "jpg", "jpeg", "gif"]);
    assert!(!images.is_empty(), "no images in {}", dir.display());
    for image in images {
        let data = fs::read(&image).expect("corpus image is readable");
        let codes = decode(&data, &Limits::default()).unwrap_or_default();
        assert!(codes.is_empty(), "{} yielded {:?}", image.display(), codes);
    }
}

/// Returns the non-comment lines of an expectation file, one payload each.
fn expected_lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Checks every `X.expected.txt` of the rqrr images: each payload line must
/// be decoded, and images that rqrr's tests expect to fail (bad error
/// correction, an invalid version) must yield nothing.
#[test]
fn rqrr_expectations() {
    let Some(root) = corpus() else { return };
    let dir = root.join("rqrr");
    let expectations = files_with_extension(&dir, &["txt"]);
    assert!(
        !expectations.is_empty(),
        "no expectations in {}",
        dir.display()
    );
    let mut checked = 0;
    for expectation in expectations {
        let stem = file_name(&expectation)
            .trim_end_matches(".expected.txt")
            .to_owned();
        let image = ["png", "jpg", "gif"]
            .iter()
            .map(|ext| expectation.with_file_name(format!("{stem}.{ext}")))
            .find(|path| path.exists())
            .expect("every expectation has an image beside it");
        let text = fs::read_to_string(&expectation).expect("expectation is readable");
        let data = fs::read(&image).expect("image is readable");
        let payloads: Vec<String> = decode(&data, &Limits::default())
            .unwrap_or_default()
            .into_iter()
            .map(|code| code.payload)
            .collect();
        for line in expected_lines(&expectation) {
            assert!(
                payloads.contains(&line),
                "{}: {line:?} not among {payloads:?}",
                image.display()
            );
        }
        if text.contains("EXPECT ERROR") || text.contains("0 grids") {
            assert!(
                payloads.is_empty(),
                "{}: yielded {payloads:?}",
                image.display()
            );
        }
        checked += 1;
    }
    eprintln!("{checked} rqrr expectations checked");
}

/// Every image in the corpus goes through `decode` without a panic.
#[test]
fn corpus_images_never_panic() {
    let Some(root) = corpus() else { return };
    let images = files_with_extension(
        &root,
        &["png", "jpg", "jpeg", "gif", "bmp", "webp", "tif", "tiff"],
    );
    let mut decoded = 0;
    for image in &images {
        let data = fs::read(image).expect("corpus image is readable");
        if decode(&data, &Limits::default()).is_ok() {
            decoded += 1;
        }
    }
    eprintln!("{decoded} of {} images decoded without error", images.len());
    assert!(!images.is_empty());
}
