//! The engine's [`Enrichment`]: endpoint alerts from the [`AlertIndex`] and
//! registration dates from RDAP, both returned on the analysis thread.
//!
//! The alert index is read under a read lock that the poll task holds only
//! while it ingests a page. RDAP look-ups run on a tokio runtime; the analysis
//! thread waits for them at most [`RdapLimits::timeout_ms`] in all, and a
//! look-up still running then goes on in the background and fills the cache
//! for later messages.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use gatehouse_engine::{AlertMatchKey, AlertQuery, DomainRegistration, EndpointAlert, Enrichment};

use crate::correlate::{AlertIndex, AlertMatch, CorrelationQuery};
use crate::rdap::{DomainAgeChecker, RdapLimits};

/// Endpoint alerts kept per message, most severe and most novel first. The
/// verdict lists each, so a message naming thousands of alerted people does
/// not make it grow without bound.
pub const MAX_ALERTS_PER_MESSAGE: usize = 20;

/// Alerts and domain ages for the engine. Either part may be absent.
#[derive(Default)]
pub struct GatehouseEnrichment {
    alerts: Option<Arc<RwLock<AlertIndex>>>,
    rdap: Option<RdapLookups>,
}

/// RDAP look-ups driven from a synchronous caller.
struct RdapLookups {
    checker: Arc<DomainAgeChecker>,
    runtime: tokio::runtime::Handle,
    budget: Duration,
    max_domains: usize,
}

impl GatehouseEnrichment {
    /// Creates an enrichment that returns nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns endpoint alerts from `index`, which a poll task keeps current.
    pub fn with_alerts(mut self, index: Arc<RwLock<AlertIndex>>) -> Self {
        self.alerts = Some(index);
        self
    }

    /// Returns registration dates from `checker`, whose requests run on
    /// `runtime`. The runtime must have worker threads of its own (a
    /// multi-thread runtime), because the analysis thread only waits.
    pub fn with_rdap(
        mut self,
        checker: Arc<DomainAgeChecker>,
        runtime: tokio::runtime::Handle,
        limits: &RdapLimits,
    ) -> Self {
        self.rdap = Some(RdapLookups {
            checker,
            runtime,
            budget: Duration::from_millis(limits.timeout_ms),
            max_domains: limits.max_domains_per_message,
        });
        self
    }
}

impl Enrichment for GatehouseEnrichment {
    fn endpoint_alerts(&self, query: &AlertQuery<'_>) -> Vec<EndpointAlert> {
        let Some(index) = &self.alerts else {
            return Vec::new();
        };
        let query = CorrelationQuery {
            recipients: query.recipients.to_vec(),
            sender: (!query.sender.is_empty()).then(|| query.sender.to_owned()),
            link_hosts: query.link_hosts.to_vec(),
            message_id: query.message_id.map(str::to_owned),
        };
        let matches = index
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .query(&query);
        matches
            .into_iter()
            .take(MAX_ALERTS_PER_MESSAGE)
            .map(endpoint_alert)
            .collect()
    }

    fn registration_dates(&self, domains: &[String]) -> Vec<DomainRegistration> {
        match &self.rdap {
            Some(rdap) => rdap.look_up(domains),
            None => Vec::new(),
        }
    }
}

impl RdapLookups {
    /// Starts one look-up per domain at once and collects the results that
    /// arrive within the budget.
    fn look_up(&self, domains: &[String]) -> Vec<DomainRegistration> {
        if domains.len() > self.max_domains {
            tracing::debug!(
                domains = domains.len(),
                max_domains = self.max_domains,
                "more new domains than limits.max_domains_per_message; the rest are not looked up"
            );
        }
        let (sender, receiver) = mpsc::channel();
        let mut started = 0;
        for domain in domains.iter().take(self.max_domains) {
            let checker = Arc::clone(&self.checker);
            let sender = sender.clone();
            let domain = domain.clone();
            self.runtime.spawn(async move {
                let result = checker.registration_date(&domain).await;
                // The receiver is gone when the analysis stopped waiting.
                let _ = sender.send((domain, result));
            });
            started += 1;
        }
        drop(sender);

        let deadline = Instant::now() + self.budget;
        let mut registrations = Vec::with_capacity(started);
        while registrations.len() < started {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match receiver.recv_timeout(remaining) {
                // Failures were logged by the checker; the domain stays unknown.
                Ok((domain, result)) => registrations.push(DomainRegistration {
                    domain,
                    registered: result.ok().flatten(),
                }),
                Err(RecvTimeoutError::Timeout) => {
                    tracing::warn!(
                        waiting = started - registrations.len(),
                        budget_ms = self.budget.as_millis() as u64,
                        "RDAP look-ups did not finish within limits.timeout_ms; their domains count as unknown for this message"
                    );
                    break;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        registrations
    }
}

fn endpoint_alert(found: AlertMatch) -> EndpointAlert {
    EndpointAlert {
        alert_id: found.alert_id,
        title: found.title,
        severity: found.severity.to_string(),
        category: found.category,
        service_source: found.service_source.to_string(),
        matched: found
            .matched
            .into_iter()
            .map(|key| AlertMatchKey {
                part: key.part.as_str().to_owned(),
                value: key.value,
                field: key.field.as_str().to_owned(),
            })
            .collect(),
        routine: found.novelty.routine,
        first_seen_category: found.novelty.first_seen_category,
        severity_above_usual: found.novelty.severity_above_usual,
    }
}
