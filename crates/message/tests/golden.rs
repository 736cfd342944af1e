//! Golden tests: each `tests/data/NAME.eml` parses to the JSON in `NAME.json`.
//!
//! The JSON contains the parsed message (each part's bytes given as their size)
//! and the links of every body. Set `UPDATE_GOLDEN=1` to rewrite the JSON
//! files after a deliberate change, then review the diff.

mod common;

use std::path::Path;

use common::{crlf, files_under, links_of, parse};

fn render(raw: &[u8]) -> serde_json::Value {
    let message = parse(raw);
    let links = links_of(&message);
    serde_json::json!({ "message": message, "links": links })
}

#[test]
fn fixtures_match_golden_json() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let fixtures = files_under(&dir, &[".eml"]);
    assert!(!fixtures.is_empty(), "no fixtures in {}", dir.display());

    for eml in fixtures {
        let raw = std::fs::read(&eml).unwrap_or_default();
        let rendered = render(&raw);
        let golden = eml.with_extension("json");
        let text = serde_json::to_string_pretty(&rendered).unwrap_or_default() + "\n";
        if update {
            std::fs::write(&golden, &text)
                .unwrap_or_else(|err| panic!("cannot write {}: {err}", golden.display()));
            continue;
        }
        let expected = std::fs::read_to_string(&golden).unwrap_or_else(|err| {
            panic!(
                "cannot read {}: {err}; run with UPDATE_GOLDEN=1",
                golden.display()
            )
        });
        let expected: serde_json::Value = serde_json::from_str(&expected)
            .unwrap_or_else(|err| panic!("invalid JSON in {}: {err}", golden.display()));
        assert_eq!(
            rendered,
            expected,
            "{} differs from {}",
            eml.display(),
            golden.display()
        );
    }
}

#[test]
fn line_endings_do_not_change_headers_or_links() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    for eml in files_under(&dir, &[".eml"]) {
        let raw = std::fs::read(&eml).unwrap_or_default();
        let lf: Vec<u8> = raw.iter().copied().filter(|&byte| byte != b'\r').collect();
        let with_lf = render(&lf);
        let with_crlf = render(&crlf(&lf));
        assert_eq!(
            with_lf["message"]["headers"],
            with_crlf["message"]["headers"],
            "headers of {}",
            eml.display()
        );
        assert_eq!(
            with_lf["links"],
            with_crlf["links"],
            "links of {}",
            eml.display()
        );
        assert_eq!(
            with_lf["message"]["findings"],
            with_crlf["message"]["findings"],
            "findings of {}",
            eml.display()
        );
    }
}
