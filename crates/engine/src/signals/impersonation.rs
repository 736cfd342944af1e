//! `sender.local_unauthenticated`: inbound mail that claims a local sender.
//!
//! A message from outside the organisation's networks can claim a local
//! envelope sender or From address. Either a service sends in the
//! organisation's name, and then passes SPF, DKIM or DMARC for that domain,
//! or someone impersonates a colleague. Such a sender is usually
//! familiar to the graph, so without this signal the forgery would borrow
//! the trust of the address it copies.

use gatehouse_message::Message;
use gatehouse_policy::Policy;

use super::{Fired, auth, is_local_address};
use crate::verdict::Envelope;

/// The id of the signal this module fires.
pub(crate) const LOCAL_UNAUTHENTICATED: &str = "sender.local_unauthenticated";

const METHODS: &[&str] = &["spf", "dkim", "dmarc"];

pub(crate) fn fire(
    envelope: &Envelope,
    message: &Message,
    policy: &Policy,
    local_domains: &[String],
    fired: &mut Vec<Fired>,
) {
    let header_from = message
        .headers
        .from
        .as_ref()
        .map(|from| from.address.as_str());
    let Some(claimed) = [Some(envelope.mail_from.as_str()), header_from]
        .into_iter()
        .flatten()
        .find(|address| is_local_address(address, local_domains))
    else {
        return;
    };
    if local_pass_recorded(message, policy, local_domains) {
        return;
    }

    let client = envelope
        .client_ip
        .map(|ip| format!("client {ip}"))
        .unwrap_or_else(|| "a client".to_owned());
    fired.push(Fired::new(
        LOCAL_UNAUTHENTICATED,
        format!(
            "{claimed} is an address of this organisation, but {client} outside its networks sent it without authenticating, and no trusted host recorded an SPF, DKIM or DMARC pass for a local domain"
        ),
    ));
}

/// Returns whether a trusted host recorded a pass that names a local domain,
/// as a service sending in the organisation's name would earn.
fn local_pass_recorded(message: &Message, policy: &Policy, local_domains: &[String]) -> bool {
    message
        .headers
        .authentication_results
        .iter()
        .filter(|result| auth::trusted(&result.authserv_id, policy, local_domains))
        .filter(|result| METHODS.contains(&result.method.as_str()) && result.result == "pass")
        .any(|result| {
            let properties = result.properties.to_ascii_lowercase();
            local_domains.iter().any(|domain| {
                properties
                    .split(|c: char| c.is_whitespace() || c == ';')
                    .filter_map(|property| property.split_once('='))
                    .any(|(_, value)| {
                        let value = value.rsplit_once('@').map_or(value, |(_, domain)| domain);
                        value.trim_matches('"') == domain.as_str()
                    })
            })
        })
}
