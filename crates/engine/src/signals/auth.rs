//! `auth.fail`: SPF, DKIM or DMARC failed, as a trusted host recorded it.
//!
//! Any host on the way can add an Authentication-Results header, so only
//! results written by the organisation's own hosts count: an authserv-id that
//! is a local domain or under one, or one the policy names. A pass is not a
//! signal at all, so it never lowers the score.

use gatehouse_message::Message;
use gatehouse_policy::Policy;

use super::Fired;

const METHODS: &[&str] = &["spf", "dkim", "dmarc"];
const FAILURES: &[&str] = &["fail", "softfail", "permerror"];

pub(crate) fn fire(
    message: &Message,
    policy: &Policy,
    local_domains: &[String],
    fired: &mut Vec<Fired>,
) {
    let failures: Vec<String> = message
        .headers
        .authentication_results
        .iter()
        .filter(|result| trusted(&result.authserv_id, policy, local_domains))
        .filter(|result| {
            METHODS.contains(&result.method.as_str()) && FAILURES.contains(&result.result.as_str())
        })
        .map(|result| {
            let detail = result.properties.trim();
            if detail.is_empty() {
                format!(
                    "{}={} (recorded by {})",
                    result.method, result.result, result.authserv_id
                )
            } else {
                format!(
                    "{}={} {detail} (recorded by {})",
                    result.method, result.result, result.authserv_id
                )
            }
        })
        .collect();
    if !failures.is_empty() {
        fired.push(Fired::new(
            "auth.fail",
            format!("authentication failed: {}", failures.join("; ")),
        ));
    }
}

pub(super) fn trusted(authserv_id: &str, policy: &Policy, local_domains: &[String]) -> bool {
    let id = authserv_id
        .trim()
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let under = |domain: &str| id == domain || id.ends_with(&format!(".{domain}"));
    local_domains.iter().any(|domain| under(domain))
        || policy
            .trusted_authserv_ids
            .iter()
            .any(|trusted| under(trusted))
}
