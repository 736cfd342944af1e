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
//! * [`enrich`]: the engine's `Enrichment`, which answers `endpoint.alert` from
//!   the index and `link.domain_young` from RDAP within a timeout.
//! * [`delivered`] and [`service`]: in a running gateway, the poll task, the
//!   record of delivered messages, and the observer that exports every
//!   verdict and reports delivered messages that an alert names.
//!
//! Time comes from a [`clock::Clock`], so tests run backoff and token expiry
//! without waiting. The crate never fetches a URL found in mail: it contacts
//! only the configured Graph, token, SIEM and RDAP endpoints. The CLI reads
//! the configuration and starts these pieces in `gatehouse serve`.

pub mod baseline;
pub mod clock;
pub mod correlate;
pub mod defender;
pub mod delivered;
pub mod enrich;
pub mod http;
pub mod rdap;
pub mod secret;
pub mod service;
pub mod siem;
