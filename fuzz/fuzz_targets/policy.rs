//! `gatehouse_policy::Policy::from_toml` on policy file text, and the
//! look-ups the engine makes on a policy that loaded.

#![no_main]

use gatehouse_policy::{Policy, SIGNAL_IDS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(policy) = Policy::from_toml(text, "fuzz.toml") else {
        return;
    };
    for id in SIGNAL_IDS {
        let weight = policy.weight(id);
        assert!(weight.is_finite(), "weight of {id} is {weight}");
    }
    let mut last = policy.action_for(f64::NEG_INFINITY);
    for score in [
        -1e9,
        -1.0,
        0.0,
        0.5,
        1.0,
        5.0,
        10.0,
        100.0,
        1e9,
        f64::INFINITY,
    ] {
        let action = policy.action_for(score);
        assert!(
            action >= last,
            "action {action:?} at score {score} is milder than {last:?} at a lower score"
        );
        last = action;
    }
    for domain in ["example.com", "sub.example.com", "", "."] {
        let _ = policy.scoring_for(domain);
    }
    for sender in ["a@example.com", "", "@", "a@b@c", "A@EXAMPLE.COM"] {
        let _ = policy.list_match(sender);
    }
});
