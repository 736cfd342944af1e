//! The alert index and the alert baseline, fed with alerts as Graph returns
//! them.

use gatehouse_integrations::baseline::{AlertBaseline, BaselineLimits, NoveltyWeights};
use gatehouse_integrations::correlate::{
    AlertIndex, CorrelationQuery, EvidenceField, IndexLimits, MessagePart,
};
use gatehouse_integrations::defender::Alert;
use serde_json::{Value, json};
use time::macros::datetime;

fn alert(id: &str, updated: &str, evidence: Value) -> Value {
    json!({
        "id": id,
        "status": "new",
        "severity": "medium",
        "serviceSource": "microsoftDefenderForEndpoint",
        "detectorId": "detector-1",
        "title": format!("Alert {id}"),
        "category": "Malware",
        "createdDateTime": updated,
        "lastUpdateDateTime": updated,
        "evidence": evidence,
    })
}

fn parse(value: Value) -> Alert {
    serde_json::from_value(value).expect("valid alert")
}

fn index() -> AlertIndex {
    AlertIndex::new(AlertBaseline::default(), IndexLimits::default())
}

fn recipient(address: &str) -> CorrelationQuery {
    CorrelationQuery {
        recipients: vec![address.to_owned()],
        ..CorrelationQuery::default()
    }
}

fn user_evidence(upn: &str) -> Value {
    json!([{
        "@odata.type": "#microsoft.graph.security.userEvidence",
        "verdict": "suspicious",
        "userAccount": {"accountName": "x", "userPrincipalName": upn},
    }])
}

fn matched_ids(index: &AlertIndex, query: &CorrelationQuery) -> Vec<String> {
    index
        .query(query)
        .into_iter()
        .map(|found| found.alert_id)
        .collect()
}

#[test]
fn user_principal_name_matches_recipient() {
    let mut index = index();
    index.ingest([parse(alert(
        "a1",
        "2024-03-03T10:00:00Z",
        user_evidence("Ana.Silva@Example.com"),
    ))]);

    let matches = index.query(&recipient("<ana.silva@example.com>"));

    assert_eq!(matches.len(), 1);
    assert_eq!(
        matches[0].matched[0].field,
        EvidenceField::UserPrincipalName
    );
    assert_eq!(matches[0].matched[0].value, "ana.silva@example.com");
}

#[test]
fn mailbox_sender_and_message_id_match() {
    let mut index = index();
    let evidence = json!([
        {"@odata.type": "#microsoft.graph.security.mailboxEvidence", "primaryAddress": "ops@example.com"},
        {
            "@odata.type": "#microsoft.graph.security.analyzedMessageEvidence",
            "verdict": "suspicious",
            "recipientEmailAddress": "kim@example.com",
            "internetMessageId": "<AbC.123@mailer.example.net>",
            "p1Sender": {"emailAddress": "billing@mailer.example.net"},
            "urls": ["https://Pay-Now.example.net/login"],
        },
    ]);
    index.ingest([parse(alert("a1", "2024-03-03T10:00:00Z", evidence))]);

    let cases = [
        (
            recipient("ops@example.com"),
            MessagePart::Recipient,
            EvidenceField::MailboxAddress,
        ),
        (
            CorrelationQuery {
                sender: Some("billing@mailer.example.net".into()),
                ..CorrelationQuery::default()
            },
            MessagePart::Sender,
            EvidenceField::MessageSender,
        ),
        (
            CorrelationQuery {
                message_id: Some("AbC.123@mailer.example.net".into()),
                ..CorrelationQuery::default()
            },
            MessagePart::MessageId,
            EvidenceField::InternetMessageId,
        ),
        (
            CorrelationQuery {
                link_hosts: vec!["pay-now.example.net.".into()],
                ..CorrelationQuery::default()
            },
            MessagePart::LinkHost,
            EvidenceField::UrlHost,
        ),
    ];
    for (query, part, field) in cases {
        let matches = index.query(&query);
        assert_eq!(matches.len(), 1, "{query:?}");
        assert_eq!(matches[0].matched[0].part, part, "{query:?}");
        assert_eq!(matches[0].matched[0].field, field, "{query:?}");
    }
}

#[test]
fn clean_url_evidence_is_not_indexed() {
    let mut index = index();
    let evidence = json!([
        {"@odata.type": "#microsoft.graph.security.urlEvidence", "verdict": "noThreatsFound", "url": "https://www.example.org/"},
        {"@odata.type": "#microsoft.graph.security.urlEvidence", "verdict": "malicious", "url": "https://bad.example.net/x"},
    ]);
    index.ingest([parse(alert("a1", "2024-03-03T10:00:00Z", evidence))]);

    let clean = CorrelationQuery {
        link_hosts: vec!["www.example.org".into()],
        ..CorrelationQuery::default()
    };
    let bad = CorrelationQuery {
        link_hosts: vec!["bad.example.net".into()],
        ..CorrelationQuery::default()
    };
    assert!(index.query(&clean).is_empty());
    assert_eq!(matched_ids(&index, &bad), ["a1"]);
}

#[test]
fn device_logged_on_user_matches_recipient_only() {
    let mut index = index();
    let evidence = json!([{
        "@odata.type": "#microsoft.graph.security.deviceEvidence",
        "mdeDeviceId": "73e7e2de709dff64ef64b1d0c30e67fab63279db",
        "loggedOnUsers": [{"accountName": "JDoe", "domainName": "CONTOSO"}],
    }]);
    index.ingest([parse(alert("a1", "2024-03-03T10:00:00Z", evidence))]);

    let matches = index.query(&recipient("jdoe@example.com"));
    assert_eq!(matches.len(), 1);
    assert_eq!(
        matches[0].matched[0].field,
        EvidenceField::DeviceLoggedOnUser
    );

    let external_sender = CorrelationQuery {
        sender: Some("jdoe@elsewhere.example".into()),
        ..CorrelationQuery::default()
    };
    assert!(index.query(&external_sender).is_empty());
}

#[test]
fn update_replaces_and_resolution_removes() {
    let mut index = index();
    index.ingest([parse(alert(
        "a1",
        "2024-03-03T10:00:00Z",
        user_evidence("ana@example.com"),
    ))]);

    // A newer version names another user; the old key must no longer match.
    let mut updated = alert(
        "a1",
        "2024-03-03T11:00:00Z",
        user_evidence("bo@example.com"),
    );
    updated["severity"] = json!("high");
    let summary = index.ingest([parse(updated)]);
    assert_eq!(summary.updated, ["a1"]);
    assert!(index.query(&recipient("ana@example.com")).is_empty());
    let matches = index.query(&recipient("bo@example.com"));
    assert_eq!(matches.len(), 1);
    assert_eq!(matches[0].severity.as_str(), "high");

    // An older version read late is ignored.
    let summary = index.ingest([parse(alert(
        "a1",
        "2024-03-03T10:30:00Z",
        user_evidence("ana@example.com"),
    ))]);
    assert_eq!(summary.stale, 1);
    assert!(index.query(&recipient("ana@example.com")).is_empty());

    let mut resolved = alert(
        "a1",
        "2024-03-03T12:00:00Z",
        user_evidence("bo@example.com"),
    );
    resolved["status"] = json!("resolved");
    let summary = index.ingest([parse(resolved)]);
    assert_eq!(summary.removed, ["a1"]);
    assert!(index.is_empty());
    assert!(index.query(&recipient("bo@example.com")).is_empty());

    // An active version older than the resolution does not bring it back.
    let summary = index.ingest([parse(alert(
        "a1",
        "2024-03-03T11:30:00Z",
        user_evidence("bo@example.com"),
    ))]);
    assert_eq!(summary.stale, 1);
    assert!(index.is_empty());
}

#[test]
fn full_index_drops_oldest_alert() {
    let limits = IndexLimits {
        max_alerts: 2,
        ..IndexLimits::default()
    };
    let mut index = AlertIndex::new(AlertBaseline::default(), limits);
    let summary = index.ingest([
        parse(alert(
            "a2",
            "2024-03-03T10:02:00Z",
            user_evidence("two@example.com"),
        )),
        parse(alert(
            "a1",
            "2024-03-03T10:01:00Z",
            user_evidence("one@example.com"),
        )),
        parse(alert(
            "a3",
            "2024-03-03T10:03:00Z",
            user_evidence("three@example.com"),
        )),
    ]);

    assert_eq!(summary.evicted, ["a1"]);
    assert_eq!(index.len(), 2);
    assert!(index.query(&recipient("one@example.com")).is_empty());
}

#[test]
fn expired_alerts_leave_index() {
    let mut index = index();
    index.ingest([
        parse(alert(
            "old",
            "2024-01-01T10:00:00Z",
            user_evidence("ana@example.com"),
        )),
        parse(alert(
            "new",
            "2024-03-03T10:00:00Z",
            user_evidence("ana@example.com"),
        )),
    ]);

    let expired = index.expire_before(datetime!(2024-02-01 00:00 UTC));

    assert_eq!(expired, ["old"]);
    assert_eq!(matched_ids(&index, &recipient("ana@example.com")), ["new"]);
}

#[test]
fn campaign_alert_with_many_recipients_is_capped() {
    let limits = IndexLimits {
        max_keys_per_alert: 3,
        ..IndexLimits::default()
    };
    let mut index = AlertIndex::new(AlertBaseline::default(), limits);
    let evidence: Vec<Value> = (0..10)
        .map(|n| {
            json!({
                "@odata.type": "#microsoft.graph.security.analyzedMessageEvidence",
                "recipientEmailAddress": format!("user{n}@example.com"),
            })
        })
        .collect();
    index.ingest([parse(alert(
        "a1",
        "2024-03-03T10:00:00Z",
        Value::Array(evidence),
    ))]);

    let indexed = (0..10)
        .filter(|n| {
            !index
                .query(&recipient(&format!("user{n}@example.com")))
                .is_empty()
        })
        .count();
    assert_eq!(indexed, 3);
}

/// Feeds alerts for one user, one per day and one detector per category, and
/// returns the novelty of each as it was ingested.
fn novelty_series(severities: &[&str], categories: &[&str]) -> Vec<(f64, bool)> {
    let mut index = index();
    severities
        .iter()
        .zip(categories)
        .enumerate()
        .map(|(day, (severity, category))| {
            let id = format!("a{day}");
            let mut value = alert(
                &id,
                &format!("2024-03-{:02}T10:00:00Z", day + 1),
                user_evidence("ana@example.com"),
            );
            value["severity"] = json!(severity);
            value["category"] = json!(category);
            value["detectorId"] = json!(format!("detector-{category}"));
            index.ingest([parse(value)]);
            let found = index.query(&recipient("ana@example.com"));
            let this = found
                .into_iter()
                .find(|m| m.alert_id == id)
                .expect("indexed");
            (this.novelty.factor, this.novelty.routine)
        })
        .collect()
}

#[test]
fn recurring_alert_becomes_routine() {
    let series = novelty_series(&["low"; 5], &["Malware"; 5]);

    // First ever: new category (2.0) and above the usual severity of none (1.5).
    assert_eq!(series[0], (3.0, false));
    assert_eq!(series[1], (1.0, false));
    assert_eq!(series[2], (1.0, false));
    // From the fourth, three earlier alerts of the detector make it routine.
    assert_eq!(series[3], (0.25, true));
    assert_eq!(series[4], (0.25, true));
}

#[test]
fn first_seen_category_weighs_more() {
    let series = novelty_series(
        &["low", "low", "low", "low", "low"],
        &[
            "Malware",
            "Malware",
            "Malware",
            "Malware",
            "CredentialAccess",
        ],
    );
    assert_eq!(series[3], (0.25, true));
    assert_eq!(series[4], (2.0, false));
}

#[test]
fn severity_above_usual_weighs_more() {
    let series = novelty_series(&["low", "low", "low", "low", "high"], &["Malware"; 5]);
    assert_eq!(series[3], (0.25, true));
    assert_eq!(
        series[4],
        (1.5, false),
        "not routine because the severity rose"
    );
}

#[test]
fn novelty_weights_are_configurable() {
    let weights = NoveltyWeights {
        routine_min_count: 1,
        routine_factor: 0.1,
        ..NoveltyWeights::default()
    };
    let mut index = AlertIndex::new(
        AlertBaseline::new(weights, BaselineLimits::default()),
        IndexLimits::default(),
    );
    index.ingest([parse(alert(
        "a1",
        "2024-03-01T10:00:00Z",
        user_evidence("ana@example.com"),
    ))]);
    index.ingest([parse(alert(
        "a2",
        "2024-03-02T10:00:00Z",
        user_evidence("ana@example.com"),
    ))]);

    let found = index.query(&recipient("ana@example.com"));
    let second = found
        .iter()
        .find(|m| m.alert_id == "a2")
        .expect("a2 indexed");
    assert_eq!(second.novelty.factor, 0.1);
}

#[test]
fn baseline_round_trips_through_json() {
    let mut index = index();
    index.ingest([parse(alert(
        "a1",
        "2024-03-01T10:00:00Z",
        user_evidence("ana@example.com"),
    ))]);
    let stored = serde_json::to_string(index.baseline()).expect("serialise");
    let mut restored: AlertBaseline = serde_json::from_str(&stored).expect("deserialise");
    restored.configure(NoveltyWeights::default(), BaselineLimits::default());
    assert_eq!(restored.subject_count(), 1);

    let next = parse(alert(
        "a2",
        "2024-03-02T10:00:00Z",
        user_evidence("ana@example.com"),
    ));
    assert!(!restored.assess(&next).first_seen_category);
}
