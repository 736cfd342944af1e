//! Settings of the Defender client, read from `[integrations.defender]`.

use std::time::Duration;

use serde::Deserialize;
use url::Url;

use crate::baseline::BaselineLimits;
use crate::correlate::IndexLimits;
use crate::delivered::DeliveredLimits;
use crate::http::RetryPolicy;
use crate::secret::SecretSource;

/// The largest `$top` that Gatehouse requests from `alerts_v2`.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// The largest `$skip` that Gatehouse sends.
pub const MAX_SKIP: u32 = 500;

/// Settings of the Graph Security API client.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefenderConfig {
    /// The Entra ID tenant (directory) id or a verified domain of the tenant.
    pub tenant_id: String,
    /// The application (client) id of the app registration.
    pub client_id: String,
    /// The source of the client secret: `{ file = "…" }` or `{ env = "…" }`.
    pub client_secret: SecretSource,
    /// The Entra ID authority. Sovereign clouds use their own, for example
    /// `https://login.microsoftonline.us`.
    #[serde(default = "default_login_base")]
    pub login_base: Url,
    /// The Graph endpoint, for example `https://graph.microsoft.us` in GCC High.
    #[serde(default = "default_graph_base")]
    pub graph_base: Url,
    /// The OAuth scope; by default `{graph_base}/.default`.
    #[serde(default)]
    pub scope: Option<String>,
    /// Seconds between two polls.
    #[serde(default = "default_poll_interval_secs")]
    pub poll_interval_secs: u64,
    /// How far back the first poll reads, in hours.
    #[serde(default = "default_initial_lookback_hours")]
    pub initial_lookback_hours: u64,
    /// Each poll re-reads this many seconds before the newest update it saw, so an
    /// alert that Graph indexes late is still found. Duplicates are dropped.
    #[serde(default = "default_overlap_secs")]
    pub overlap_secs: u64,
    /// A token is renewed this many seconds before it expires.
    #[serde(default = "default_token_refresh_margin_secs")]
    pub token_refresh_margin_secs: u64,
    /// Active alerts not updated for this many days leave the index, such as
    /// alerts that nobody resolves.
    #[serde(default = "default_max_alert_age_days")]
    pub max_alert_age_days: u32,
    #[serde(default)]
    pub limits: DefenderLimits,
    #[serde(default)]
    pub retry: RetryPolicy,
    /// Limits of the index of active alerts.
    #[serde(default)]
    pub index: IndexLimits,
    /// Limits of the history of alerts per user and device.
    #[serde(default)]
    pub baseline: BaselineLimits,
    /// Limits of the record of delivered messages, which links an alert
    /// naming a message to its verdict.
    #[serde(default)]
    pub delivered: DeliveredLimits,
}

/// Limits of the Defender client.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DefenderLimits {
    /// `$top` of each request, at most [`MAX_PAGE_SIZE`].
    pub page_size: u32,
    /// Pages read in one poll before it stops and leaves the rest to the next.
    pub max_pages_per_poll: u32,
    /// The largest response body accepted, in bytes. A page of 1,000 alerts with
    /// their evidence is a few MiB.
    pub max_response_bytes: usize,
    /// Timeout of one HTTP request, connection included, in seconds.
    pub request_timeout_secs: u64,
}

impl Default for DefenderLimits {
    fn default() -> Self {
        Self {
            page_size: MAX_PAGE_SIZE,
            max_pages_per_poll: 1_000,
            max_response_bytes: 64 * 1024 * 1024,
            request_timeout_secs: 30,
        }
    }
}

fn default_login_base() -> Url {
    Url::parse("https://login.microsoftonline.com").unwrap_or_else(|_| unreachable!())
}

fn default_graph_base() -> Url {
    Url::parse("https://graph.microsoft.com").unwrap_or_else(|_| unreachable!())
}

fn default_poll_interval_secs() -> u64 {
    60
}

fn default_initial_lookback_hours() -> u64 {
    24
}

fn default_overlap_secs() -> u64 {
    120
}

fn default_token_refresh_margin_secs() -> u64 {
    300
}

fn default_max_alert_age_days() -> u32 {
    30
}

impl DefenderConfig {
    /// Creates a config with every optional setting at its default.
    pub fn new(
        tenant_id: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: SecretSource,
    ) -> Self {
        Self {
            tenant_id: tenant_id.into(),
            client_id: client_id.into(),
            client_secret,
            login_base: default_login_base(),
            graph_base: default_graph_base(),
            scope: None,
            poll_interval_secs: default_poll_interval_secs(),
            initial_lookback_hours: default_initial_lookback_hours(),
            overlap_secs: default_overlap_secs(),
            token_refresh_margin_secs: default_token_refresh_margin_secs(),
            max_alert_age_days: default_max_alert_age_days(),
            limits: DefenderLimits::default(),
            retry: RetryPolicy::default(),
            index: IndexLimits::default(),
            baseline: BaselineLimits::default(),
            delivered: DeliveredLimits::default(),
        }
    }

    /// Checks the values that would otherwise fail only at the first poll.
    ///
    /// # Errors
    ///
    /// Returns a message naming the key and the fix.
    pub fn validate(&self) -> Result<(), String> {
        if self.tenant_id.trim().is_empty() {
            return Err("tenant_id is empty; set it to the directory (tenant) id".into());
        }
        if self.tenant_id.contains(['/', '?', '#']) {
            return Err(format!(
                "tenant_id {:?} is not a tenant id or domain",
                self.tenant_id
            ));
        }
        if self.client_id.trim().is_empty() {
            return Err("client_id is empty; set it to the application (client) id".into());
        }
        if !(1..=MAX_PAGE_SIZE).contains(&self.limits.page_size) {
            return Err(format!(
                "limits.page_size is {}; it must be between 1 and {MAX_PAGE_SIZE}",
                self.limits.page_size
            ));
        }
        if self.limits.max_pages_per_poll == 0 {
            return Err("limits.max_pages_per_poll must be at least 1".into());
        }
        if self.poll_interval_secs == 0 {
            return Err("poll_interval_secs must be at least 1".into());
        }
        if self.max_alert_age_days == 0 {
            return Err("max_alert_age_days must be at least 1".into());
        }
        if self.retry.max_attempts == 0 {
            return Err("retry.max_attempts must be at least 1".into());
        }
        for (key, url) in [
            ("login_base", &self.login_base),
            ("graph_base", &self.graph_base),
        ] {
            if !matches!(url.scheme(), "https" | "http") || url.host().is_none() {
                return Err(format!("{key} {url} is not an http(s) URL with a host"));
            }
        }
        Ok(())
    }

    /// Returns the token endpoint `{login_base}/{tenant}/oauth2/v2.0/token`.
    pub fn token_url(&self) -> Url {
        join_path(
            &self.login_base,
            &[&self.tenant_id, "oauth2", "v2.0", "token"],
        )
    }

    /// Returns the alerts collection `{graph_base}/v1.0/security/alerts_v2`.
    pub fn alerts_url(&self) -> Url {
        join_path(&self.graph_base, &["v1.0", "security", "alerts_v2"])
    }

    /// Returns the OAuth scope: the configured one, else the Graph origin with
    /// `/.default`.
    pub fn scope(&self) -> String {
        match &self.scope {
            Some(scope) => scope.clone(),
            None => format!(
                "{}/.default",
                self.graph_base.origin().ascii_serialization()
            ),
        }
    }

    /// Returns the time between two polls.
    pub fn poll_interval(&self) -> Duration {
        Duration::from_secs(self.poll_interval_secs)
    }

    pub(crate) fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.limits.request_timeout_secs)
    }
}

/// Appends path segments to a base URL, percent-encoding each one.
fn join_path(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> DefenderConfig {
        DefenderConfig::new(
            "contoso.onmicrosoft.com",
            "app",
            SecretSource::Env("X".into()),
        )
    }

    #[test]
    fn default_urls_and_scope() {
        let config = config();
        assert_eq!(
            config.token_url().as_str(),
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
        assert_eq!(
            config.alerts_url().as_str(),
            "https://graph.microsoft.com/v1.0/security/alerts_v2"
        );
        assert_eq!(config.scope(), "https://graph.microsoft.com/.default");
    }

    #[test]
    fn sovereign_cloud_scope_follows_graph_base() {
        let mut config = config();
        config.graph_base = Url::parse("https://graph.microsoft.us/").expect("url");
        assert_eq!(config.scope(), "https://graph.microsoft.us/.default");
    }

    #[test]
    fn page_size_above_maximum_is_rejected() {
        let mut config = config();
        config.limits.page_size = 2_000;
        let error = config.validate().expect_err("page size 2000");
        assert!(error.contains("page_size"), "{error}");
    }
}
