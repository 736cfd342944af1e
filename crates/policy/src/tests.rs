use super::*;

fn load(text: &str) -> Result<Policy, PolicyError> {
    Policy::from_toml(text, "test.toml")
}

const MINIMAL: &str = "[thresholds]\ntag = 4.0\nhold = 9.0\n";

#[test]
fn embedded_default_is_valid() {
    let policy = Policy::from_toml(DEFAULT_POLICY, "default");
    assert!(policy.is_ok(), "{:?}", policy.err());
}

#[test]
fn default_weighs_every_signal_it_can_fire() {
    let policy = Policy::embedded_default();
    let unweighed: Vec<_> = SIGNAL_IDS
        .iter()
        .filter(|id| !policy.scoring.weights.contains_key(**id))
        .collect();
    assert!(unweighed.is_empty(), "{unweighed:?}");
}

#[test]
fn policy_without_weights_lists_every_signal() {
    let policy = load(MINIMAL).expect("valid policy");
    assert_eq!(policy.unweighted_signals(), SIGNAL_IDS.to_vec());
    assert!(Policy::embedded_default().unweighted_signals().is_empty());
}

#[test]
fn attachment_weight_counts_as_a_weight() {
    let text = format!("{MINIMAL}[attachment_weights]\n\"link.in_qr\" = 4.5\n");
    let policy = load(&text).expect("valid policy");
    assert!(!policy.unweighted_signals().contains(&"link.in_qr"));
    assert!(policy.unweighted_signals().contains(&"link.in_attachment"));
}

#[test]
fn default_signal_alone_never_holds() {
    let policy = Policy::embedded_default();
    for id in SIGNAL_IDS {
        let mut alone = policy
            .scoring
            .weight(id)
            .max(policy.scoring.weight_in_attachment(id));
        if *id == "endpoint.alert" {
            alone *= policy.endpoint_alert.max_factor();
        }
        assert!(
            policy.action_for(alone) < Action::Hold,
            "{id} alone weighs {alone} and holds"
        );
    }
}

#[test]
fn default_endpoint_alert_keys() {
    let policy = Policy::embedded_default();
    assert_eq!(policy.endpoint_alert, EndpointAlertPolicy::default());
    assert_eq!(policy.domain_young, time::Duration::days(30));
}

#[test]
fn endpoint_alert_factor_cases() {
    let policy = EndpointAlertPolicy::default();
    // (routine, first seen category, severity above usual, factor)
    let cases = [
        (false, false, false, 1.0),
        (true, false, false, 0.25),
        (false, true, false, 2.0),
        (false, false, true, 1.5),
        (false, true, true, 3.0),
        (true, true, false, 2.0),
        (true, false, true, 1.5),
    ];
    for (routine, first_seen, above, expected) in cases {
        assert_eq!(
            policy.factor(routine, first_seen, above),
            expected,
            "routine {routine}, first seen {first_seen}, above usual {above}"
        );
    }
    assert_eq!(policy.max_factor(), 3.0);
}

#[test]
fn endpoint_alert_may_hold_alone_when_listed() {
    let text = format!(
        "may_hold_alone = [\"endpoint.alert\"]\n{MINIMAL}[weights]\n\"endpoint.alert\" = 4.0\n"
    );
    let policy = load(&text).expect("valid");
    assert_eq!(policy.weight("endpoint.alert"), 4.0);
}

#[test]
fn default_has_roles_in_ten_languages() {
    let policy = Policy::embedded_default();
    for language in ["en", "zh", "ja", "ko", "ru", "es", "pt", "de", "fr", "ar"] {
        assert!(
            policy
                .roles
                .get(language)
                .is_some_and(|names| !names.is_empty()),
            "no role names for {language}"
        );
    }
}

#[test]
fn minimal_policy_gets_defaults() {
    let policy = load(MINIMAL).expect("valid");
    assert_eq!(policy.scoring.mode, Mode::Enforce);
    assert_eq!(policy.campaign.min_senders, 3);
    assert_eq!(policy.plain_first_contact_max, Action::Tag);
}

#[test]
fn learn_mode_never_holds() {
    let policy = load(&format!("mode = \"learn\"\n{MINIMAL}")).expect("valid");
    assert_eq!(policy.action_for(100.0), Action::Tag);
}

#[test]
fn thresholds_pick_actions() {
    let policy = load(&format!("{MINIMAL}reject = 20.0\n")).expect("valid");
    let actions: Vec<_> = [0.0, 4.0, 9.0, 20.0]
        .iter()
        .map(|score| policy.action_for(*score))
        .collect();
    assert_eq!(
        actions,
        vec![Action::Deliver, Action::Tag, Action::Hold, Action::Reject]
    );
}

#[test]
fn override_applies_to_subdomain() {
    let text = format!("{MINIMAL}[overrides.\"lab.example.com\"]\nmode = \"learn\"\n");
    let policy = load(&text).expect("valid");
    assert_eq!(policy.scoring_for("x.lab.example.com").mode, Mode::Learn);
    assert_eq!(policy.scoring_for("example.com").mode, Mode::Enforce);
}

#[test]
fn override_merges_weights() {
    let text = format!(
        "{MINIMAL}[weights]\n\"auth.fail\" = 3.0\n\"link.in_qr\" = 3.0\n[overrides.\"lab.example.com\"]\nweights = {{ \"auth.fail\" = 1.0 }}\n"
    );
    let policy = load(&text).expect("valid");
    let scoring = policy.scoring_for("lab.example.com");
    assert_eq!(scoring.weight("auth.fail"), 1.0);
    assert_eq!(scoring.weight("link.in_qr"), 3.0);
}

#[test]
fn block_wins_over_allow() {
    let text = format!(
        "{MINIMAL}[lists]\nallow = [\"partner.example\"]\nblock = [\"bad@partner.example\"]\n"
    );
    let policy = load(&text).expect("valid");
    assert_eq!(
        policy.list_match("bad@partner.example"),
        Some(ListMatch::Block("bad@partner.example".to_owned()))
    );
    assert_eq!(
        policy.list_match("good@mail.partner.example"),
        Some(ListMatch::Allow("partner.example".to_owned()))
    );
    assert_eq!(policy.list_match("good@otherpartner.example"), None);
}

/// Each bad policy and the key its error must name.
const BAD_POLICIES: &[(&str, &str, &str)] = &[
    (
        "unknown top-level key",
        "[thresholds]\ntag = 4.0\nhold = 9.0\n[wieghts]\n",
        "unknown field `wieghts`",
    ),
    (
        "unknown threshold key",
        "[thresholds]\ntag = 4.0\nhold = 9.0\nhould = 3\n",
        "unknown field `hould`",
    ),
    (
        "missing thresholds",
        "mode = \"enforce\"\n",
        "missing field `thresholds`",
    ),
    (
        "unknown mode",
        "mode = \"strict\"\n[thresholds]\ntag = 4.0\nhold = 9.0\n",
        "unknown variant `strict`",
    ),
    (
        "unknown signal id",
        "[thresholds]\ntag = 4.0\nhold = 9.0\n[weights]\n\"sender.frist_contact\" = 1.0\n",
        "weights.\"sender.frist_contact\"",
    ),
    (
        "hold below tag",
        "[thresholds]\ntag = 9.0\nhold = 4.0\n",
        "thresholds.hold",
    ),
    (
        "reject below hold",
        "[thresholds]\ntag = 4.0\nhold = 9.0\nreject = 8.0\n",
        "thresholds.reject",
    ),
    (
        "tag at zero",
        "[thresholds]\ntag = 0.0\nhold = 9.0\n",
        "thresholds.tag",
    ),
    (
        "signal holds alone",
        "[thresholds]\ntag = 4.0\nhold = 9.0\n[weights]\n\"link.in_qr\" = 9.5\n",
        "weights.\"link.in_qr\"",
    ),
    (
        "attachment weight holds alone",
        "[thresholds]\ntag = 4.0\nhold = 9.0\n[attachment_weights]\n\"link.in_qr\" = 10.0\n",
        "attachment_weights.\"link.in_qr\"",
    ),
    (
        "negative raising weight",
        "[thresholds]\ntag = 4.0\nhold = 9.0\n[weights]\n\"auth.fail\" = -1.0\n",
        "weights.\"auth.fail\"",
    ),
    (
        "positive known reply",
        "[thresholds]\ntag = 4.0\nhold = 9.0\n[weights]\n\"thread.known_reply\" = 1.0\n",
        "weights.\"thread.known_reply\"",
    ),
    (
        "unknown id in may_hold_alone",
        "may_hold_alone = [\"link.qr\"]\n[thresholds]\ntag = 4.0\nhold = 9.0\n",
        "may_hold_alone[0]",
    ),
    (
        "zero window",
        "[thresholds]\ntag = 4.0\nhold = 9.0\n[campaign]\nwindow_hours = 0\n",
        "campaign.window_hours",
    ),
    (
        "pattern of one",
        "[thresholds]\ntag = 4.0\nhold = 9.0\n[campaign]\nmin_senders = 1\n",
        "campaign.min_senders",
    ),
    (
        "share above one",
        "[thresholds]\ntag = 4.0\nhold = 9.0\n[baseline]\nrare_share = 5.0\n",
        "baseline.rare_share",
    ),
    (
        "wildcard in allow list",
        "[thresholds]\ntag = 4.0\nhold = 9.0\n[lists]\nallow = [\"*.partner.example\"]\n",
        "lists.allow[0]",
    ),
    (
        "override holds alone",
        "[thresholds]\ntag = 4.0\nhold = 9.0\n[overrides.\"lab.example.com\"]\nthresholds = { tag = 1.0, hold = 2.0 }\nweights = { \"auth.fail\" = 3.0 }\n",
        "overrides.\"lab.example.com\".weights.\"auth.fail\"",
    ),
    (
        "override key is an address",
        "[thresholds]\ntag = 4.0\nhold = 9.0\n[overrides.\"a@b.example\"]\nmode = \"learn\"\n",
        "overrides.\"a@b.example\"",
    ),
    (
        "endpoint alert holds at the largest factor",
        "[thresholds]\ntag = 4.0\nhold = 9.0\n[weights]\n\"endpoint.alert\" = 3.0\n",
        "weights.\"endpoint.alert\"",
    ),
    (
        "endpoint alert holds in an override",
        "[thresholds]\ntag = 4.0\nhold = 9.0\n[weights]\n\"endpoint.alert\" = 2.0\n[overrides.\"lab.example.com\"]\nthresholds = { tag = 2.0, hold = 5.0 }\n",
        "overrides.\"lab.example.com\".weights.\"endpoint.alert\"",
    ),
    (
        "routine factor above one",
        "[thresholds]\ntag = 4.0\nhold = 9.0\n[endpoint_alert]\nroutine_factor = 2.0\n",
        "endpoint_alert.routine_factor",
    ),
    (
        "first-seen factor below one",
        "[thresholds]\ntag = 4.0\nhold = 9.0\n[endpoint_alert]\nfirst_seen_category_factor = 0.5\n",
        "endpoint_alert.first_seen_category_factor",
    ),
    (
        "severity factor not finite",
        "[thresholds]\ntag = 4.0\nhold = 9.0\n[endpoint_alert]\nseverity_above_usual_factor = nan\n",
        "endpoint_alert.severity_above_usual_factor",
    ),
    (
        "routine from zero alerts",
        "[thresholds]\ntag = 4.0\nhold = 9.0\n[endpoint_alert]\nroutine_min_count = 0\n",
        "endpoint_alert.routine_min_count",
    ),
    (
        "unknown endpoint alert key",
        "[thresholds]\ntag = 4.0\nhold = 9.0\n[endpoint_alert]\nroutine_count = 3\n",
        "unknown field `routine_count`",
    ),
    (
        "young domains of zero days",
        "domain_young_days = 0\n[thresholds]\ntag = 4.0\nhold = 9.0\n",
        "domain_young_days",
    ),
    (
        "empty role name",
        "[thresholds]\ntag = 4.0\nhold = 9.0\n[roles]\nen = [\" \"]\n",
        "roles.en[0]",
    ),
];

#[test]
fn bad_policies_are_rejected_with_key() {
    for (case, text, expected) in BAD_POLICIES {
        let message = match load(text) {
            Ok(_) => panic!("{case}: accepted"),
            Err(err) => err.to_string(),
        };
        assert!(message.contains(expected), "{case}: {message}");
        assert!(
            message.contains("test.toml"),
            "{case}: no file name in {message}"
        );
    }
}

#[test]
fn unknown_signal_error_suggests_the_id() {
    let text = "[thresholds]\ntag = 4.0\nhold = 9.0\n[weights]\n\"sender.frist_contact\" = 1.0\n";
    let message = load(text)
        .err()
        .map(|err| err.to_string())
        .unwrap_or_default();
    assert!(
        message.contains("did you mean `sender.first_contact`"),
        "{message}"
    );
}

#[test]
fn syntax_error_names_the_line() {
    let message = load("[thresholds]\ntag = 4.0\nhold = 9.0\nbogus = 1\n")
        .err()
        .map(|err| err.to_string())
        .unwrap_or_default();
    assert!(message.contains("line 4"), "{message}");
}
