//! QR codes that are not plain images, through `Engine::analyse`: real
//! phishing from the corpus, and generated fixtures for each technique
//! with golden outputs (`NAME.eml` beside `NAME.json` in `tests/data/hidden_qr/`).

#![allow(clippy::print_stderr)]

mod hidden_qr {
    pub(crate) mod fixtures;
}

use std::path::{Path, PathBuf};
use std::sync::Arc;

use gatehouse_engine::{Engine, Envelope, Limits, Verdict, When};
use gatehouse_graph::RedbGraph;
use gatehouse_policy::Policy;
use time::OffsetDateTime;

fn corpus() -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
    if path.is_dir() {
        Some(path)
    } else {
        eprintln!("skipping: no corpus at {}", path.display());
        None
    }
}

fn engine(dir: &Path) -> Engine {
    let graph = Arc::new(RedbGraph::open(&dir.join("graph.redb")).expect("open graph"));
    Engine::new(
        Arc::new(Policy::embedded_default()),
        graph,
        Limits::default(),
        vec!["example.com".to_owned()],
    )
}

fn analyse(engine: &Engine, raw: &[u8]) -> Verdict {
    let when = When::FromMessage {
        fallback: OffsetDateTime::UNIX_EPOCH,
    };
    engine.analyse(&Envelope::default(), raw, when).verdict
}

/// Five phishing messages of the corpus with QR codes, and their payloads
/// as zxing-cpp 3.1.1 decoded them when the corpus was collected: one inline
/// image and four PDFs, three of them with the code drawn as vector paths.
const CORPUS_CODES: [(&str, &str, &str); 5] = [
    (
        "sample-1977.eml",
        "00020126890014BR.GOV.BCB.PIX0116pix@srcex.adv.br0247DONIZETTI APARECIDO GREGORIO JUNIOR 507540038845204000053039865406288.985802BR5913EXTRAJUDICIAL6008BRASILIA6216051258924155250563047D83",
        "payment",
    ),
    ("sample-2151.eml", "https://mylinx.us/ndp5i", "url"),
    (
        "sample-3551.eml",
        "https://www.youtube.com/channel/UCHHRJPmY2_SFB2C4ULAB0hw?view_as=subscriber",
        "url",
    ),
    (
        "sample-4091.eml",
        "https://pederneiras.obaratec.com.br/ords/pmp/f?p=1816:36:::NO:36:P36_COTR_NUM_INSCRICAO,P36_LIVR_VERIFICACAO,P36_ID:010030203,2569783UTJ,396887",
        "url",
    ),
    (
        "sample-4580.eml",
        "https://pederneiras.obaratec.com.br/ords/pmp/f?p=1816:36:::NO:36:P36_COTR_NUM_INSCRICAO,P36_LIVR_VERIFICACAO,P36_ID:010030203,2761491YKL,396887",
        "url",
    ),
];

#[test]
fn corpus_phishing_codes_are_found() {
    let Some(corpus) = corpus() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let engine = engine(dir.path());
    for (file, payload, kind) in CORPUS_CODES {
        let raw = std::fs::read(corpus.join("phishing_pot/email").join(file))
            .expect("corpus file is readable");
        let verdict = analyse(&engine, &raw);
        let found = verdict.qr_codes.iter().find(|code| code.payload == payload);
        assert!(
            found.is_some(),
            "{file}: payload not found; qr_codes {:?}",
            verdict.qr_codes
        );
        assert_eq!(
            found.map(|code| code.kind.as_str()),
            Some(kind),
            "{file}: kind"
        );
        let as_link = verdict.links.iter().any(|link| link.url == payload);
        assert_eq!(as_link, kind == "url", "{file}: payload as a link");
    }
}

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/hidden_qr")
}

/// Picks the verdict fields that show what was found: every QR record, the links
/// taken from QR payloads, the findings of the unpack and QR stages, and
/// whether `link.in_qr` fired.
fn relevant(verdict: &Verdict) -> serde_json::Value {
    let qr_links: Vec<serde_json::Value> = verdict
        .links
        .iter()
        .filter(|link| link.source == gatehouse_message::LinkSource::Qr)
        .map(|link| {
            serde_json::json!({
                "url": link.url,
                "domain": link.domain,
                "unwrapped_from": link.unwrapped_from,
            })
        })
        .collect();
    let findings: Vec<serde_json::Value> = verdict
        .findings
        .iter()
        .filter(|finding| finding.id.starts_with("attachment.") || finding.id.starts_with("qr."))
        .map(|finding| serde_json::json!({"id": finding.id, "location": finding.location}))
        .collect();
    serde_json::json!({
        "qr_codes": verdict.qr_codes,
        "qr_links": qr_links,
        "findings": findings,
        "link_in_qr": verdict.signals.iter().any(|signal| signal.id == "link.in_qr"),
    })
}

/// Rewrites the fixtures and their golden outputs. Run with
/// `GATEHOUSE_REGENERATE_FIXTURES=1 cargo test -p gatehouse-engine --test hidden_qr regenerate`.
#[test]
fn regenerate_fixtures() {
    if std::env::var_os("GATEHOUSE_REGENERATE_FIXTURES").is_none() {
        return;
    }
    let dir = fixture_dir();
    std::fs::create_dir_all(&dir).expect("create fixture folder");
    let state = tempfile::tempdir().expect("temporary directory");
    let engine = engine(state.path());
    for fixture in hidden_qr::fixtures::all() {
        std::fs::write(dir.join(format!("{}.eml", fixture.name)), &fixture.eml).expect("write eml");
        let golden = relevant(&analyse(&engine, &fixture.eml));
        let text = serde_json::to_string_pretty(&golden).expect("serialise") + "\n";
        std::fs::write(dir.join(format!("{}.json", fixture.name)), text).expect("write json");
    }
}

#[test]
fn fixtures_match_golden_outputs() {
    let dir = fixture_dir();
    let state = tempfile::tempdir().expect("temporary directory");
    let engine = engine(state.path());
    let mut checked = 0;
    for fixture in hidden_qr::fixtures::all() {
        let eml = dir.join(format!("{}.eml", fixture.name));
        let raw = std::fs::read(&eml).unwrap_or_else(|err| panic!("{}: {err}", eml.display()));
        let expected: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.join(format!("{}.json", fixture.name))).expect("golden json"),
        )
        .expect("golden json parses");
        let actual = relevant(&analyse(&engine, &raw));
        assert_eq!(
            actual, expected,
            "{}: verdict differs from the golden output",
            fixture.name
        );
        checked += 1;
    }
    assert_eq!(checked, 12);
}

/// Checks that each technique yields its payload, with one assert for each value that matters.
#[test]
fn each_technique_yields_its_payload() {
    let dir = fixture_dir();
    let state = tempfile::tempdir().expect("temporary directory");
    let engine = engine(state.path());
    let cases = [
        (
            "table_code",
            "https://table-login.example/verify",
            "html_grid",
        ),
        ("css_grid_code", "https://grid.example/a", "html_grid"),
        (
            "block_text_code",
            "https://blocks.example/pay",
            "block_characters",
        ),
        (
            "block_entity_code",
            "https://entities.example/sso",
            "block_characters",
        ),
        ("split_code", "https://split.example/doc", "split_images"),
        ("nested_code", "https://inner-evil.example/login", "image"),
        ("pdf_image_code", "https://pdf-image.example/scan", "pdf"),
        ("pdf_vector_code", "https://pdf-vector.example/scan", "pdf"),
        ("svg_code", "https://svg.example/x", "image"),
    ];
    for (name, payload, technique) in cases {
        let raw = std::fs::read(dir.join(format!("{name}.eml"))).expect("fixture");
        let verdict = analyse(&engine, &raw);
        let code = verdict.qr_codes.iter().find(|code| code.payload == payload);
        assert!(
            code.is_some(),
            "{name}: {payload} not in {:?}",
            verdict.qr_codes
        );
        assert_eq!(
            code.map(|code| code.technique.as_str()),
            Some(technique),
            "{name}: technique"
        );
        assert!(
            verdict
                .signals
                .iter()
                .any(|signal| signal.id == "link.in_qr"),
            "{name}: link.in_qr did not fire"
        );
    }
}

#[test]
fn nested_code_is_found_and_flagged() {
    let raw = std::fs::read(fixture_dir().join("nested_code.eml")).expect("fixture");
    let state = tempfile::tempdir().expect("temporary directory");
    let verdict = analyse(&engine(state.path()), &raw);
    let payloads: Vec<&str> = verdict
        .qr_codes
        .iter()
        .map(|code| code.payload.as_str())
        .collect();
    assert!(
        payloads.contains(&"https://outer.example/invoice/2024-12"),
        "{payloads:?}"
    );
    assert!(
        payloads.contains(&"https://inner-evil.example/login"),
        "{payloads:?}"
    );
    assert!(
        verdict
            .findings
            .iter()
            .any(|finding| finding.id == "qr.different_hosts"),
        "no qr.different_hosts finding: {:?}",
        verdict.findings
    );
}

#[test]
fn pdf_actions_and_svg_script_are_active_content() {
    let state = tempfile::tempdir().expect("temporary directory");
    let engine = engine(state.path());
    for name in ["pdf_vector_code", "svg_code"] {
        let raw = std::fs::read(fixture_dir().join(format!("{name}.eml"))).expect("fixture");
        let verdict = analyse(&engine, &raw);
        assert!(
            verdict
                .findings
                .iter()
                .any(|finding| finding.id == "attachment.active_content"),
            "{name}: {:?}",
            verdict.findings
        );
    }
}

#[test]
fn wrapped_payload_is_unwrapped_and_named() {
    let raw = std::fs::read(fixture_dir().join("wrapped_payload.eml")).expect("fixture");
    let state = tempfile::tempdir().expect("temporary directory");
    let verdict = analyse(&engine(state.path()), &raw);
    let code = verdict.qr_codes.first().expect("one code");
    let target = code.target.as_deref().unwrap_or("");
    assert!(
        target.starts_with("https://qrco.de/bdX7?e="),
        "target {target}"
    );
    assert_eq!(
        code.service.as_ref().map(|service| service.kind.as_str()),
        Some("dynamic_qr")
    );
    let address = code.recipient_address.as_ref();
    assert_eq!(
        address.map(|found| found.address.as_str()),
        Some(hidden_qr::fixtures::RECIPIENT)
    );
    // The address encodes to the same text in both base64 alphabets, so
    // either name is right.
    let encoding = address.map(|found| found.encoding.as_str());
    assert!(
        matches!(encoding, Some("base64" | "base64_url")),
        "encoding {encoding:?}"
    );
}

#[test]
fn block_art_and_otpauth_give_no_qr_link() {
    let state = tempfile::tempdir().expect("temporary directory");
    let engine = engine(state.path());
    let newsletter = analyse(
        &engine,
        &std::fs::read(fixture_dir().join("newsletter_block_art.eml")).expect("fixture"),
    );
    assert!(newsletter.qr_codes.is_empty(), "{:?}", newsletter.qr_codes);
    assert!(
        !newsletter
            .signals
            .iter()
            .any(|signal| signal.id == "link.in_qr")
    );

    let enrolment = analyse(
        &engine,
        &std::fs::read(fixture_dir().join("otpauth_enrolment.eml")).expect("fixture"),
    );
    let kinds: Vec<&str> = enrolment
        .qr_codes
        .iter()
        .map(|code| code.kind.as_str())
        .collect();
    assert_eq!(kinds, vec!["otpauth"]);
    assert!(
        !enrolment
            .links
            .iter()
            .any(|link| link.source == gatehouse_message::LinkSource::Qr)
    );
    assert!(
        !enrolment
            .signals
            .iter()
            .any(|signal| signal.id == "link.in_qr")
    );
}
