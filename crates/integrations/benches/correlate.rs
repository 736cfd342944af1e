//! The per-message costs of the integrations: an alert-index query, as the
//! engine runs it for every message, and a verdict appended to the SIEM spool.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use gatehouse_integrations::baseline::AlertBaseline;
use gatehouse_integrations::correlate::{AlertIndex, CorrelationQuery, IndexLimits};
use gatehouse_integrations::defender::Alert;
use gatehouse_integrations::siem::{Spool, SpoolLimits};
use serde_json::json;

const ALERTS: usize = 10_000;

/// Builds an index of 10,000 alerts, each naming a user, a message recipient,
/// a Message-ID and a malicious URL.
fn index() -> AlertIndex {
    let mut index = AlertIndex::new(AlertBaseline::default(), IndexLimits::default());
    let alerts = (0..ALERTS).map(|n| {
        let severity = ["low", "medium", "high"][n % 3];
        let category = ["InitialAccess", "Malware", "CredentialAccess"][n % 3];
        let value = json!({
            "id": format!("alert-{n}"),
            "status": "new",
            "severity": severity,
            "serviceSource": "microsoftDefenderForOffice365",
            "detectorId": format!("detector-{}", n % 40),
            "title": "Email messages containing malicious URL removed after delivery",
            "category": category,
            "lastUpdateDateTime": format!("2024-03-03T10:{:02}:{:02}Z", (n / 60) % 60, n % 60),
            "evidence": [
                {"@odata.type": "#microsoft.graph.security.userEvidence",
                 "userAccount": {"userPrincipalName": format!("user{}@example.com", n % 2_000)}},
                {"@odata.type": "#microsoft.graph.security.analyzedMessageEvidence",
                 "verdict": "malicious",
                 "recipientEmailAddress": format!("user{}@example.com", (n * 7) % 2_000),
                 "internetMessageId": format!("<{n}@mailer.example.net>"),
                 "urls": [format!("https://host{n}.example.net/login")]},
            ],
        });
        serde_json::from_value::<Alert>(value).expect("valid alert")
    });
    index.ingest(alerts);
    index
}

fn query(c: &mut Criterion) {
    let index = index();
    let miss = CorrelationQuery {
        recipients: vec!["nobody@example.com".into(), "other@example.com".into()],
        sender: Some("partner@example.org".into()),
        link_hosts: vec!["www.example.org".into(), "cdn.example.org".into()],
        message_id: Some("<unrelated@example.org>".into()),
    };
    let hit = CorrelationQuery {
        recipients: vec!["user17@example.com".into()],
        sender: Some("partner@example.org".into()),
        link_hosts: vec!["host42.example.net".into()],
        message_id: Some("<42@mailer.example.net>".into()),
    };
    c.bench_function("index query, no match (10,000 alerts)", |b| {
        b.iter(|| index.query(black_box(&miss)))
    });
    c.bench_function("index query, 12 matches (10,000 alerts)", |b| {
        b.iter(|| index.query(black_box(&hit)))
    });
}

fn spool_append(c: &mut Criterion) {
    let line = json!({
        "id": "0193a4b2-7c1e-7d3a-9b1f-2c4d5e6f7a8b", "action": "hold", "score": 17.5,
        "signals": [{"id": "link.in_qr", "weight": 4.0, "evidence": "https://host.example/x in a.docx"}],
        "envelope": {"mail_from": "a@b.example", "rcpt_to": ["c@d.example"], "client_ip": "192.0.2.1"},
    })
    .to_string();
    for fsync in [false, true] {
        let dir = tempfile::tempdir().expect("temporary directory");
        let limits = SpoolLimits {
            fsync_each_line: fsync,
            ..SpoolLimits::default()
        };
        let mut spool = Spool::open(dir.path(), limits).expect("spool");
        let name = if fsync {
            "spool append, fsync each line"
        } else {
            "spool append, no fsync"
        };
        c.bench_function(name, |b| {
            b.iter(|| spool.append(black_box(&line)).expect("append"))
        });
    }
}

criterion_group!(benches, query, spool_append);
criterion_main!(benches);
