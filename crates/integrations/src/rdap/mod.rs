//! Domain age from RDAP (RFC 9083): the `registration` event of
//! `{base}/domain/{name}`, for the `link.domain_young` signal.
//!
//! Only the configured RDAP servers are contacted, with the registrable domain
//! of a host as the only thing sent; URLs found in mail are never fetched, and
//! redirects are not followed. Results are cached, failures too (for a shorter
//! time), so one domain costs at most one request per cache period.

mod cache;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use time::OffsetDateTime;
use url::Url;

pub use self::cache::{CachedRegistration, DomainAgeCache, LruDomainAgeCache};
use crate::clock::Clock;
use crate::http::{BodyError, read_body};

/// Settings of the RDAP look-ups, read from `[integrations.rdap]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RdapConfig {
    /// Whether look-ups are made at all. Off by default, because each new
    /// domain is then sent to a registry.
    #[serde(default)]
    pub enabled: bool,
    /// The RDAP server for TLDs without an entry in `tld_bases`, such as
    /// `https://rdap.verisign.com/com/v1/`.
    #[serde(default)]
    pub base: Option<Url>,
    /// RDAP servers by TLD (`com = "https://rdap.verisign.com/com/v1/"`), as the
    /// IANA bootstrap registry lists them.
    #[serde(default)]
    pub tld_bases: BTreeMap<String, Url>,
    #[serde(default)]
    pub limits: RdapLimits,
}

impl RdapConfig {
    /// Checks the values that would otherwise fail only at the first look-up.
    ///
    /// # Errors
    ///
    /// Returns a message naming the key and the fix.
    pub fn validate(&self) -> Result<(), String> {
        if self.enabled && self.base.is_none() && self.tld_bases.is_empty() {
            return Err(
                "enabled is true but no server is configured; set base or tld_bases".into(),
            );
        }
        let servers = self.base.iter().map(|url| ("base".to_owned(), url)).chain(
            self.tld_bases
                .iter()
                .map(|(tld, url)| (format!("tld_bases.{tld}"), url)),
        );
        for (key, url) in servers {
            if !matches!(url.scheme(), "https" | "http") || url.host().is_none() {
                return Err(format!("{key} {url} is not an http(s) URL with a host"));
            }
        }
        if self.limits.timeout_ms == 0 {
            return Err("limits.timeout_ms must be at least 1".into());
        }
        if self.limits.max_domains_per_message == 0 {
            return Err("limits.max_domains_per_message must be at least 1".into());
        }
        Ok(())
    }
}

/// Limits of the RDAP look-ups.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RdapLimits {
    /// Timeout of one look-up, connection included, in milliseconds. A message
    /// waits for it, so it is short.
    pub timeout_ms: u64,
    /// Domains kept in the in-memory cache.
    pub cache_capacity: usize,
    /// How long a found registration date is kept, in hours.
    pub cache_hours: u64,
    /// How long a failed or empty look-up is kept before it is tried again, in
    /// minutes.
    pub negative_cache_minutes: u64,
    /// The largest RDAP response accepted, in bytes.
    pub max_response_bytes: usize,
    /// New domains of one message that are looked up; the rest count as
    /// unknown for that message.
    pub max_domains_per_message: usize,
}

impl Default for RdapLimits {
    fn default() -> Self {
        Self {
            timeout_ms: 2_000,
            cache_capacity: 50_000,
            cache_hours: 24 * 30,
            negative_cache_minutes: 60,
            max_response_bytes: 256 * 1024,
            max_domains_per_message: 10,
        }
    }
}

/// A look-up that failed.
#[derive(Debug, thiserror::Error)]
pub enum RdapError {
    #[error("{host:?} is not a domain name with a registrable part")]
    NotADomain { host: String },
    #[error("no RDAP server is configured for .{tld}; add it to tld_bases or set base")]
    NoServer { tld: String },
    #[error("RDAP look-up of {domain} timed out")]
    Timeout { domain: String },
    #[error("RDAP look-up of {domain} failed: {source}")]
    Transport {
        domain: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("RDAP server answered HTTP {status} for {domain}")]
    Status { domain: String, status: u16 },
    #[error(
        "RDAP server redirected the look-up of {domain} to {location}; configure that server in tld_bases"
    )]
    Redirect { domain: String, location: String },
    #[error("RDAP response for {domain} is not valid: {detail}")]
    InvalidResponse { domain: String, detail: String },
    #[error("failed to build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    #[error("RDAP server {url} is not reachable: {detail}")]
    Unreachable { url: String, detail: String },
}

impl RdapError {
    /// Returns whether the same look-up may succeed later without a change of
    /// configuration.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Timeout { .. } | Self::Transport { .. } | Self::Unreachable { .. } => true,
            Self::Status { status, .. } => *status == 429 || *status >= 500,
            Self::NotADomain { .. }
            | Self::NoServer { .. }
            | Self::Redirect { .. }
            | Self::InvalidResponse { .. }
            | Self::Client(_) => false,
        }
    }
}

/// Whether a domain is younger than a threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainAge {
    /// Registered less than the threshold ago.
    Young {
        registered: OffsetDateTime,
        age: time::Duration,
    },
    /// Registered at least the threshold ago.
    Established { registered: OffsetDateTime },
    /// The server returned no registration date for the domain, or did not
    /// find the domain.
    Unknown,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RdapDomain {
    #[serde(default)]
    events: Vec<RdapEvent>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RdapEvent {
    #[serde(default)]
    event_action: String,
    #[serde(default)]
    event_date: Option<String>,
}

/// Looks up registration dates, with a cache.
pub struct DomainAgeChecker {
    http: reqwest::Client,
    config: RdapConfig,
    cache: Arc<dyn DomainAgeCache>,
    clock: Arc<dyn Clock>,
}

impl DomainAgeChecker {
    /// Creates a checker with the given cache.
    ///
    /// # Errors
    ///
    /// Fails when the HTTP client cannot be built.
    pub fn new(
        config: RdapConfig,
        cache: Arc<dyn DomainAgeCache>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, RdapError> {
        let timeout = Duration::from_millis(config.limits.timeout_ms);
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("gatehouse/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(RdapError::Client)?;
        Ok(Self {
            http,
            config,
            cache,
            clock,
        })
    }

    /// Creates a checker with an in-memory LRU cache of `limits.cache_capacity`.
    ///
    /// # Errors
    ///
    /// Fails when the HTTP client cannot be built.
    pub fn with_memory_cache(config: RdapConfig, clock: Arc<dyn Clock>) -> Result<Self, RdapError> {
        let cache = Arc::new(LruDomainAgeCache::new(config.limits.cache_capacity));
        Self::new(config, cache, clock)
    }

    /// Returns whether look-ups are enabled.
    pub fn is_enabled(&self) -> bool {
        self.config.enabled
    }

    /// Compares a host's registration date with `threshold`. When look-ups are
    /// disabled this returns `Unknown` without contacting anything.
    ///
    /// # Errors
    ///
    /// Fails when the host has no registrable domain, no server is configured
    /// for its TLD, or the look-up failed.
    pub async fn check(&self, host: &str, threshold: Duration) -> Result<DomainAge, RdapError> {
        if !self.config.enabled {
            return Ok(DomainAge::Unknown);
        }
        let Some(registered) = self.registration_date(host).await? else {
            return Ok(DomainAge::Unknown);
        };
        let age = self.clock.now() - registered;
        if age < threshold {
            Ok(DomainAge::Young { registered, age })
        } else {
            Ok(DomainAge::Established { registered })
        }
    }

    /// Returns the registration date of a host's registrable domain, from the
    /// cache when it is fresh.
    ///
    /// # Errors
    ///
    /// As [`DomainAgeChecker::check`]. After a transient failure the domain is
    /// cached without a date for the negative cache period, so it reads as
    /// unknown until then without another request.
    pub async fn registration_date(&self, host: &str) -> Result<Option<OffsetDateTime>, RdapError> {
        let domain = registrable_domain(host).ok_or_else(|| RdapError::NotADomain {
            host: host.to_owned(),
        })?;
        let now = self.clock.now();
        if let Some(cached) = self.cache.get(&domain) {
            let lifetime = match cached.registered {
                Some(_) => Duration::from_secs(self.config.limits.cache_hours * 3_600),
                None => Duration::from_secs(self.config.limits.negative_cache_minutes * 60),
            };
            if now - cached.fetched_at < lifetime {
                return Ok(cached.registered);
            }
        }

        // NOTE: concurrent look-ups of one uncached domain each send a request;
        // they are not merged.
        let result = self.fetch(&domain).await;
        let entry = |registered| CachedRegistration {
            registered,
            fetched_at: now,
        };
        match result {
            Ok(registered) => {
                self.cache.put(&domain, entry(registered));
                Ok(registered)
            }
            Err(error) => {
                tracing::warn!(domain = %domain, error = %error, "RDAP look-up failed");
                if error.is_transient() {
                    self.cache.put(&domain, entry(None));
                }
                Err(error)
            }
        }
    }

    /// Requests `{base}/help` (RFC 9082, section 3.1.6) of every configured
    /// server, to check that each is reachable without sending any domain.
    /// Returns each server with the outcome.
    pub async fn check_servers(&self) -> Vec<(Url, Result<(), RdapError>)> {
        let mut servers: Vec<&Url> = self.config.tld_bases.values().collect();
        servers.extend(self.config.base.as_ref());
        servers.sort();
        servers.dedup();
        let mut results = Vec::with_capacity(servers.len());
        for base in servers {
            let mut url = base.clone();
            if let Ok(mut segments) = url.path_segments_mut() {
                segments.pop_if_empty().push("help");
            }
            let unreachable = |detail: String| RdapError::Unreachable {
                url: url.to_string(),
                detail,
            };
            let result = match self
                .http
                .get(url.clone())
                .header(
                    reqwest::header::ACCEPT,
                    "application/rdap+json, application/json",
                )
                .send()
                .await
            {
                Ok(response) if response.status().is_success() => Ok(()),
                Ok(response) => Err(unreachable(format!("HTTP {}", response.status().as_u16()))),
                Err(error) if error.is_timeout() => Err(unreachable(format!(
                    "timed out after limits.timeout_ms = {}",
                    self.config.limits.timeout_ms
                ))),
                Err(error) => Err(unreachable(error.to_string())),
            };
            results.push((base.clone(), result));
        }
        results
    }

    fn base_for(&self, domain: &str) -> Result<&Url, RdapError> {
        let tld = domain.rsplit('.').next().unwrap_or(domain);
        self.config
            .tld_bases
            .get(tld)
            .or(self.config.base.as_ref())
            .ok_or_else(|| RdapError::NoServer {
                tld: tld.to_owned(),
            })
    }

    async fn fetch(&self, domain: &str) -> Result<Option<OffsetDateTime>, RdapError> {
        let mut url = self.base_for(domain)?.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend(["domain", domain]);
        }
        let transport = |source: reqwest::Error| {
            if source.is_timeout() {
                RdapError::Timeout {
                    domain: domain.to_owned(),
                }
            } else {
                RdapError::Transport {
                    domain: domain.to_owned(),
                    source,
                }
            }
        };
        let response = self
            .http
            .get(url)
            .header(
                reqwest::header::ACCEPT,
                "application/rdap+json, application/json",
            )
            .send()
            .await
            .map_err(transport)?;

        let status = response.status().as_u16();
        match status {
            200 => {}
            404 => return Ok(None),
            300..=399 => {
                let location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or("(none)")
                    .to_owned();
                return Err(RdapError::Redirect {
                    domain: domain.to_owned(),
                    location,
                });
            }
            _ => {
                return Err(RdapError::Status {
                    domain: domain.to_owned(),
                    status,
                });
            }
        }

        let body = read_body(response, self.config.limits.max_response_bytes)
            .await
            .map_err(|error| match error {
                BodyError::Read(source) => transport(source),
                BodyError::TooLarge { .. } => RdapError::InvalidResponse {
                    domain: domain.to_owned(),
                    detail: error.to_string(),
                },
            })?;
        parse_registration(&body).map_err(|detail| RdapError::InvalidResponse {
            domain: domain.to_owned(),
            detail,
        })
    }
}

/// Returns the `registration` event date of an RDAP domain object.
fn parse_registration(body: &[u8]) -> Result<Option<OffsetDateTime>, String> {
    let domain: RdapDomain = serde_json::from_slice(body).map_err(|error| error.to_string())?;
    let date = domain
        .events
        .iter()
        .find(|event| event.event_action.eq_ignore_ascii_case("registration"))
        .and_then(|event| event.event_date.as_deref());
    match date {
        None => Ok(None),
        Some(date) => OffsetDateTime::parse(date, &time::format_description::well_known::Rfc3339)
            .map(Some)
            .map_err(|error| format!("eventDate {date:?}: {error}")),
    }
}

/// Returns the registrable domain of a host as lowercase A-labels, or `None` for
/// an IP address, a public suffix or a name that is not a valid domain.
///
/// The host is parsed as a URL host first (WHATWG rules), so IPv4 addresses in
/// hexadecimal, octal or dotless decimal form, as phishing links use them, are
/// recognised as addresses and never sent to an RDAP server.
pub fn registrable_domain(host: &str) -> Option<String> {
    let host = host.trim().trim_end_matches('.');
    let url::Host::Domain(ascii) = url::Host::parse(host).ok()? else {
        return None;
    };
    if ascii.is_empty()
        || !ascii
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'.')
    {
        return None;
    }
    let domain = psl::domain_str(&ascii)?;
    // psl treats an unknown TLD as a public suffix; a name of one label has
    // no registrable part.
    domain.contains('.').then(|| domain.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registrable_domain_cases() {
        let cases = [
            ("login.Example.COM", Some("example.com")),
            ("a.b.example.co.uk.", Some("example.co.uk")),
            ("bücher.example", Some("xn--bcher-kva.example")),
            ("192.0.2.1", None),
            ("0x33c3770d", None),
            ("0x7f.1", None),
            ("3479123902", None),
            ("[2001:db8::1]", None),
            ("co.uk", None),
            ("localhost", None),
            ("bad host.example", None),
        ];
        for (host, expected) in cases {
            assert_eq!(registrable_domain(host).as_deref(), expected, "host {host}");
        }
    }

    #[test]
    fn registration_event_is_read() {
        let body = br#"{"objectClassName":"domain","events":[
            {"eventAction":"last changed","eventDate":"2024-01-01T00:00:00Z"},
            {"eventAction":"registration","eventDate":"1997-09-15T04:00:00Z"}]}"#;
        let date = parse_registration(body).expect("valid").expect("date");
        assert_eq!(date, time::macros::datetime!(1997-09-15 04:00 UTC));
    }

    #[test]
    fn missing_registration_event_is_none() {
        let body =
            br#"{"events":[{"eventAction":"expiration","eventDate":"2030-01-01T00:00:00Z"}]}"#;
        assert_eq!(parse_registration(body), Ok(None));
    }
}
