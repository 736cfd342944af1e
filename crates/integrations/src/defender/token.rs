//! OAuth 2.0 client credentials grant against the Microsoft identity platform
//! (`{login_base}/{tenant}/oauth2/v2.0/token`), with a cached token that is
//! renewed before it expires.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use time::OffsetDateTime;
use tokio::sync::Mutex;
use url::Url;

use super::error::{DefenderError, credentials_fix};
use crate::clock::Clock;
use crate::http::{RetryPolicy, excerpt, read_body, retry_after};
use crate::secret::Secret;

/// The largest token response accepted, in bytes. Real ones are under 4 KiB.
const MAX_TOKEN_RESPONSE_BYTES: usize = 64 * 1024;

/// An access token and when it expires.
#[derive(Clone)]
struct AccessToken {
    value: Secret,
    expires_at: OffsetDateTime,
}

/// Fetches and caches access tokens. Callers that need a token at the same time
/// wait for one request.
pub(crate) struct TokenSource {
    http: reqwest::Client,
    token_url: Url,
    client_id: String,
    client_secret: Secret,
    scope: String,
    refresh_margin: Duration,
    retry: RetryPolicy,
    clock: Arc<dyn Clock>,
    cached: Mutex<Option<AccessToken>>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    /// Seconds; the v1 endpoint sends it as a string, v2 as a number.
    expires_in: ExpiresIn,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ExpiresIn {
    Number(u64),
    Text(String),
}

#[derive(Deserialize)]
struct TokenErrorResponse {
    error: String,
    #[serde(default)]
    error_description: String,
}

impl TokenSource {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        http: reqwest::Client,
        token_url: Url,
        client_id: String,
        client_secret: Secret,
        scope: String,
        refresh_margin: Duration,
        retry: RetryPolicy,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            http,
            token_url,
            client_id,
            client_secret,
            scope,
            refresh_margin,
            retry,
            clock,
            cached: Mutex::new(None),
        }
    }

    pub(crate) fn scope(&self) -> &str {
        &self.scope
    }

    /// Returns a token that is valid for at least the refresh margin, fetching a
    /// new one when the cached token is missing or about to expire.
    pub(crate) async fn token(&self) -> Result<Secret, DefenderError> {
        let mut cached = self.cached.lock().await;
        let now = self.clock.now();
        if let Some(token) = cached.as_ref()
            && now + self.refresh_margin < token.expires_at
        {
            return Ok(token.value.clone());
        }

        let token = self.fetch().await?;
        let value = token.value.clone();
        *cached = Some(token);
        Ok(value)
    }

    /// Drops the cached token if it is still `rejected`, so that the next call
    /// fetches a new one. A token that another caller already replaced is kept.
    pub(crate) async fn invalidate(&self, rejected: &Secret) {
        let mut cached = self.cached.lock().await;
        if cached
            .as_ref()
            .is_some_and(|token| token.value == *rejected)
        {
            *cached = None;
        }
    }

    async fn fetch(&self) -> Result<AccessToken, DefenderError> {
        let url = self.token_url.to_string();
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.client_secret.expose()),
            ("scope", self.scope.as_str()),
        ];
        let body = form_urlencode(&form);

        let mut attempt = 1;
        loop {
            let sent = self
                .http
                .post(self.token_url.clone())
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(body.clone())
                .send()
                .await;
            let response = match sent {
                Ok(response) => response,
                Err(source) if attempt < self.retry.max_attempts => {
                    tracing::warn!(url = %url, attempt, error = %source, "token request failed; retrying");
                    self.clock.sleep(self.retry.delay(attempt, None)).await;
                    attempt += 1;
                    continue;
                }
                Err(source) => return Err(DefenderError::Transport { url, source }),
            };

            let status = response.status().as_u16();
            let wait = retry_after(&response, self.clock.now());
            let bytes = read_body(response, MAX_TOKEN_RESPONSE_BYTES)
                .await
                .map_err(|error| DefenderError::InvalidResponse {
                    url: url.clone(),
                    detail: error.to_string(),
                })?;

            if status == 200 {
                return self.parse_token(&url, &bytes);
            }
            if (400..500).contains(&status) && status != 408 && status != 429 {
                return Err(credentials_error(status, &bytes));
            }
            if attempt >= self.retry.max_attempts {
                return Err(DefenderError::RetriesExhausted {
                    url,
                    status,
                    attempts: attempt,
                    body: excerpt(&bytes, 300),
                });
            }
            let delay = self.retry.delay(attempt, wait);
            tracing::warn!(url = %url, status, attempt, delay_ms = delay.as_millis() as u64, "token endpoint busy; retrying");
            self.clock.sleep(delay).await;
            attempt += 1;
        }
    }

    fn parse_token(&self, url: &str, bytes: &[u8]) -> Result<AccessToken, DefenderError> {
        let invalid = |detail: String| DefenderError::InvalidResponse {
            url: url.to_owned(),
            detail,
        };
        let response: TokenResponse =
            serde_json::from_slice(bytes).map_err(|error| invalid(error.to_string()))?;
        let expires_in = match response.expires_in {
            ExpiresIn::Number(seconds) => seconds,
            ExpiresIn::Text(text) => text
                .parse()
                .map_err(|_| invalid(format!("expires_in {text:?} is not a number")))?,
        };
        let expires_at = self.clock.now() + Duration::from_secs(expires_in);
        tracing::debug!(expires_in, "fetched a Graph access token");
        Ok(AccessToken {
            value: Secret::new(response.access_token),
            expires_at,
        })
    }
}

/// Builds the permanent error for a 400-class token response. The body is an
/// OAuth error (`error`, `error_description`); the description names the
/// AADSTS code but never the secret.
fn credentials_error(status: u16, bytes: &[u8]) -> DefenderError {
    match serde_json::from_slice::<TokenErrorResponse>(bytes) {
        Ok(error) => DefenderError::Credentials {
            status,
            fix: credentials_fix(&error.error),
            code: error.error,
            description: first_line(&error.error_description),
        },
        Err(_) => DefenderError::Credentials {
            status,
            code: "unknown".into(),
            description: excerpt(bytes, 300),
            fix: credentials_fix(""),
        },
    }
}

/// Returns the first line of an AADSTS description; the rest are trace and
/// correlation ids.
fn first_line(text: &str) -> String {
    excerpt(text.lines().next().unwrap_or_default().as_bytes(), 300)
}

fn form_urlencode(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}
