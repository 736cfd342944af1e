//! Gatehouse's links to the systems around it.
//!
//! * [`defender`]: Microsoft Defender alerts read from the Microsoft Graph
//!   Security API (`/v1.0/security/alerts_v2`) with OAuth 2.0 client credentials,
//!   polled incrementally by [`defender::AlertPoller`].
//! * [`correlate`]: the [`correlate::AlertIndex`] of active alerts by user,
//!   mailbox, message, device account and URL host, queried per message for the
//!   `endpoint.alert` signal.
//! * [`baseline`]: what is normal for the alerts of each user and device, as a
//!   factor that scales the signal's weight.
//! * [`siem`]: every verdict as one JSON line to a rotating file and, through a
//!   disk spool, to Splunk HEC or a JSON-lines webhook.
//! * [`rdap`]: domain registration dates from RDAP with a bounded cache, for
//!   `link.domain_young`.
//!
//! Time comes from a [`clock::Clock`], so tests run backoff and token expiry
//! without waiting. The crate never fetches a URL found in mail: it contacts
//! only the configured Graph, token, SIEM and RDAP endpoints. The engine, the
//! policy and the CLI wire these pieces together.

pub mod baseline;
pub mod clock;
pub mod correlate;
pub mod defender;
pub mod http;
pub mod rdap;
pub mod secret;
pub mod siem;
