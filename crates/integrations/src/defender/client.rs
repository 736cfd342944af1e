//! The Graph Security API client: authenticated GET requests with retries.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use url::Url;

use super::config::DefenderConfig;
use super::error::{DefenderError, status_fix};
use super::token::TokenSource;
use crate::clock::Clock;
use crate::http::{BodyError, RetryPolicy, excerpt, read_body, retry_after};

/// Asks Graph to send enum members added after v1.0 was published as
/// themselves instead of `unknownFutureValue`.
const PREFER_UNKNOWN_ENUMS: &str = "include-unknown-enum-members";

/// An authenticated client of one tenant's Graph endpoint.
pub struct GraphClient {
    http: reqwest::Client,
    tokens: TokenSource,
    graph_base: Url,
    alerts_url: Url,
    retry: RetryPolicy,
    max_response_bytes: usize,
    clock: Arc<dyn Clock>,
    requests_sent: AtomicU64,
}

impl GraphClient {
    /// Creates a client and loads the client secret.
    ///
    /// # Errors
    ///
    /// Fails when the configuration is invalid or the secret cannot be loaded.
    pub fn new(config: &DefenderConfig, clock: Arc<dyn Clock>) -> Result<Self, DefenderError> {
        config.validate().map_err(DefenderError::Config)?;
        let secret = config.client_secret.load()?;
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout())
            .connect_timeout(config.request_timeout())
            // Graph does not redirect API calls; a redirect would carry the token
            // to a host that was not configured.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("gatehouse/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| {
                DefenderError::Config(format!("failed to build the HTTP client: {error}"))
            })?;
        let tokens = TokenSource::new(
            http.clone(),
            config.token_url(),
            config.client_id.clone(),
            secret,
            config.scope(),
            Duration::from_secs(config.token_refresh_margin_secs),
            config.retry.clone(),
            Arc::clone(&clock),
        );
        Ok(Self {
            http,
            tokens,
            graph_base: config.graph_base.clone(),
            alerts_url: config.alerts_url(),
            retry: config.retry.clone(),
            max_response_bytes: config.limits.max_response_bytes,
            clock,
            requests_sent: AtomicU64::new(0),
        })
    }

    /// Returns the number of Graph API requests sent so far, retries included and
    /// token requests excluded.
    pub fn requests_sent(&self) -> u64 {
        self.requests_sent.load(Ordering::Relaxed)
    }

    /// Fetches a token, to check the credentials without reading alerts.
    ///
    /// # Errors
    ///
    /// Returns the token endpoint's error.
    pub async fn check_credentials(&self) -> Result<(), DefenderError> {
        self.tokens.token().await.map(drop)
    }

    /// Reads one alert, to check the credentials, the permission and that
    /// Graph is reachable.
    ///
    /// # Errors
    ///
    /// Returns the failed request. The error for a 403 names the permission to
    /// grant.
    pub async fn check_alerts_access(&self) -> Result<(), DefenderError> {
        let mut url = self.alerts_url.clone();
        url.query_pairs_mut().append_pair("$top", "1");
        self.get_json(&url).await.map(drop)
    }

    pub(crate) fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Returns whether `link` may be requested with the access token, which needs
    /// the scheme, host and port of the configured Graph endpoint.
    pub(crate) fn is_graph_url(&self, link: &Url) -> bool {
        link.origin() == self.graph_base.origin()
    }

    pub(crate) fn graph_base(&self) -> &Url {
        &self.graph_base
    }

    /// Sends a GET request and returns the JSON body.
    ///
    /// A 401 drops the token and retries once with a new one. 429 and 5xx are
    /// retried after `Retry-After` when the server sent it, otherwise after a
    /// capped exponential backoff with jitter. Other statuses fail at once.
    pub(crate) async fn get_json(&self, url: &Url) -> Result<serde_json::Value, DefenderError> {
        let url_text = url.to_string();
        let mut attempt = 1;
        let mut renewed_token = false;
        loop {
            let token = self.tokens.token().await?;
            self.requests_sent.fetch_add(1, Ordering::Relaxed);
            let sent = self
                .http
                .get(url.clone())
                .bearer_auth(token.expose())
                .header("Prefer", PREFER_UNKNOWN_ENUMS)
                .header(reqwest::header::ACCEPT, "application/json")
                .send()
                .await;

            let response = match sent {
                Ok(response) => response,
                Err(source) if attempt < self.retry.max_attempts => {
                    let delay = self.retry.delay(attempt, None);
                    tracing::warn!(url = %url_text, attempt, error = %source, delay_ms = delay.as_millis() as u64, "Graph request failed; retrying");
                    self.clock.sleep(delay).await;
                    attempt += 1;
                    continue;
                }
                Err(source) => {
                    return Err(DefenderError::Transport {
                        url: url_text,
                        source,
                    });
                }
            };

            let status = response.status().as_u16();
            if status == 401 && !renewed_token {
                tracing::info!(url = %url_text, "Graph rejected the access token; fetching a new one");
                self.tokens.invalidate(&token).await;
                renewed_token = true;
                continue;
            }
            let wait = retry_after(&response, self.clock.now());
            let bytes = match read_body(response, self.max_response_bytes).await {
                Ok(bytes) => bytes,
                Err(BodyError::TooLarge { limit }) => {
                    return Err(DefenderError::ResponseTooLarge {
                        url: url_text,
                        limit,
                    });
                }
                Err(BodyError::Read(source)) => {
                    return Err(DefenderError::Transport {
                        url: url_text,
                        source,
                    });
                }
            };

            match status {
                200 => {
                    return serde_json::from_slice(&bytes).map_err(|error| {
                        DefenderError::InvalidResponse {
                            url: url_text,
                            detail: error.to_string(),
                        }
                    });
                }
                401 => {
                    return Err(DefenderError::Unauthorized {
                        url: url_text,
                        scope: self.tokens.scope().to_owned(),
                    });
                }
                429 | 500 | 502 | 503 | 504 => {
                    if attempt >= self.retry.max_attempts {
                        return Err(DefenderError::RetriesExhausted {
                            url: url_text,
                            status,
                            attempts: attempt,
                            body: excerpt(&bytes, 300),
                        });
                    }
                    let delay = self.retry.delay(attempt, wait);
                    tracing::warn!(
                        url = %url_text,
                        status,
                        attempt,
                        retry_after_secs = wait.map(|wait| wait.as_secs()),
                        delay_ms = delay.as_millis() as u64,
                        "Graph throttled or unavailable; retrying"
                    );
                    self.clock.sleep(delay).await;
                    attempt += 1;
                }
                _ => {
                    return Err(DefenderError::Status {
                        url: url_text,
                        status,
                        body: excerpt(&bytes, 300),
                        fix: status_fix(status),
                    });
                }
            }
        }
    }
}
