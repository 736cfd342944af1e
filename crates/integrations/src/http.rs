//! HTTP pieces shared by the Graph, SIEM and RDAP clients: bounded body reads,
//! `Retry-After` parsing and capped exponential backoff with jitter.

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Deserialize;
use time::OffsetDateTime;
use time::macros::format_description;

/// How often and how long a client retries a transient failure.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts per request, the first one included.
    pub max_attempts: u32,
    /// Backoff before the first retry when the server gave no `Retry-After`, in
    /// milliseconds. It doubles with each retry.
    pub base_delay_ms: u64,
    /// The largest backoff between two attempts, in milliseconds.
    pub max_delay_ms: u64,
    /// The longest `Retry-After` that is honoured, in seconds. A longer one is cut
    /// to this, so a wrong header cannot stall the client for hours.
    pub max_retry_after_secs: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay_ms: 1_000,
            max_delay_ms: 60_000,
            max_retry_after_secs: 300,
        }
    }
}

impl RetryPolicy {
    /// Returns the delay before retry number `retry` (1 for the first retry).
    /// That is the server's `Retry-After` when it sent one, capped. Otherwise it
    /// is `base * 2^(retry-1)`, capped at the maximum, with its upper half
    /// jittered so that many clients do not retry in step.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(wait) = retry_after {
            return wait.min(Duration::from_secs(self.max_retry_after_secs));
        }
        let exponent = retry.saturating_sub(1).min(30);
        let ceiling = self
            .base_delay_ms
            .saturating_mul(1_u64 << exponent)
            .min(self.max_delay_ms);
        let half = ceiling / 2;
        let jitter = (random_fraction() * (ceiling - half) as f64) as u64;
        Duration::from_millis(half + jitter)
    }
}

/// Returns a pseudo-random number in `[0, 1)`. Jitter needs spread, not
/// unpredictability, so std's randomly keyed hasher over a counter is enough.
fn random_fraction() -> f64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let bits = RandomState::new().hash_one(COUNTER.fetch_add(1, Ordering::Relaxed));
    (bits >> 11) as f64 / (1_u64 << 53) as f64
}

/// Parses a `Retry-After` value: delay-seconds or an HTTP-date
/// (RFC 9110, section 10.2.3). A date in the past means no wait.
pub fn parse_retry_after(value: &str, now: OffsetDateTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let format = format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let date = time::PrimitiveDateTime::parse(value, &format)
        .ok()?
        .assume_utc();
    let wait = date - now;
    Some(wait.try_into().unwrap_or(Duration::ZERO))
}

/// Returns the `Retry-After` of a response, if it has a valid one.
pub fn retry_after(response: &reqwest::Response, now: OffsetDateTime) -> Option<Duration> {
    let value = response.headers().get(reqwest::header::RETRY_AFTER)?;
    parse_retry_after(value.to_str().ok()?, now)
}

/// A body that could not be read whole.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the response body is larger than the limit of {limit} bytes")]
    TooLarge { limit: usize },
    #[error("failed to read the response body: {0}")]
    Read(#[from] reqwest::Error),
}

/// Reads a response body of at most `limit` bytes. The declared length is checked
/// first, and the chunks as they arrive, so a lying server cannot make the
/// client allocate more than the limit.
pub async fn read_body(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, BodyError> {
    if response
        .content_length()
        .is_some_and(|length| length > limit as u64)
    {
        return Err(BodyError::TooLarge { limit });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Returns at most `max_chars` characters of a body for an error message, with
/// control characters replaced, so a hostile server cannot forge log lines.
pub fn excerpt(body: &[u8], max_chars: usize) -> String {
    String::from_utf8_lossy(body)
        .chars()
        .take(max_chars)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn retry_after_seconds() {
        let now = datetime!(2024-03-03 08:00 UTC);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
    }

    #[test]
    fn retry_after_http_date() {
        let now = datetime!(2024-03-03 08:00 UTC);
        let wait = parse_retry_after("Sun, 03 Mar 2024 08:00:30 GMT", now);
        assert_eq!(wait, Some(Duration::from_secs(30)));
    }

    #[test]
    fn retry_after_past_date_is_zero() {
        let now = datetime!(2024-03-03 08:00 UTC);
        let wait = parse_retry_after("Sun, 03 Mar 2024 07:00:00 GMT", now);
        assert_eq!(wait, Some(Duration::ZERO));
    }

    #[test]
    fn retry_after_garbage_is_none() {
        let now = datetime!(2024-03-03 08:00 UTC);
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn backoff_doubles_within_jitter_and_cap() {
        let policy = RetryPolicy {
            max_attempts: 10,
            base_delay_ms: 1_000,
            max_delay_ms: 8_000,
            max_retry_after_secs: 60,
        };
        for (retry, ceiling_ms) in [(1, 1_000), (2, 2_000), (3, 4_000), (4, 8_000), (9, 8_000)] {
            let delay = policy.delay(retry, None);
            assert!(
                delay >= Duration::from_millis(ceiling_ms / 2),
                "retry {retry}: {delay:?}"
            );
            assert!(
                delay <= Duration::from_millis(ceiling_ms),
                "retry {retry}: {delay:?}"
            );
        }
    }

    #[test]
    fn long_retry_after_is_capped() {
        let policy = RetryPolicy::default();
        let delay = policy.delay(1, Some(Duration::from_secs(86_400)));
        assert_eq!(delay, Duration::from_secs(policy.max_retry_after_secs));
    }
}
