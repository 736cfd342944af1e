//! Sends spooled verdict lines to a SIEM over HTTP in batches, in spool order.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use super::SiemError;
use super::spool::Spool;
use crate::clock::Clock;
use crate::http::{RetryPolicy, excerpt, read_body, retry_after};
use crate::secret::{Secret, SecretSource};

/// The largest response body read from the endpoint, in bytes.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// The body format of the endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HttpFormat {
    /// Splunk HTTP Event Collector (`/services/collector/event`): one JSON
    /// object per verdict with the verdict under `event`, and the header
    /// `Authorization: Splunk {token}`.
    SplunkHec,
    /// A generic webhook: the verdict lines themselves
    /// (`application/x-ndjson`), with `Authorization: Bearer {token}` when a
    /// token is set.
    JsonLines,
}

/// Settings of the HTTP export, read from `[integrations.siem.http]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpExportConfig {
    pub url: Url,
    pub format: HttpFormat,
    /// The HEC token or the webhook's bearer token: `{ file = "…" }` or
    /// `{ env = "…" }`.
    #[serde(default)]
    pub token: Option<SecretSource>,
    /// Lines per request.
    #[serde(default = "default_batch_max_lines")]
    pub batch_max_lines: usize,
    /// Bytes of verdict lines per request; a single larger line is sent alone.
    #[serde(default = "default_batch_max_bytes")]
    pub batch_max_bytes: usize,
    /// Time between two sends while the endpoint accepts verdicts, in
    /// milliseconds. Lines spooled in between go out together.
    #[serde(default = "default_flush_interval_ms")]
    pub flush_interval_ms: u64,
    /// Timeout of one request, in seconds.
    #[serde(default = "default_request_timeout_secs")]
    pub request_timeout_secs: u64,
    /// Splunk `sourcetype`; ignored by the webhook format.
    #[serde(default = "default_sourcetype")]
    pub sourcetype: String,
    /// Splunk `source`, if set.
    #[serde(default)]
    pub source: Option<String>,
    /// Splunk `index`, if set; otherwise the token's default index.
    #[serde(default)]
    pub index: Option<String>,
    /// Backoff between failed attempts. `max_attempts` is not used: the spool
    /// keeps every line until the endpoint accepts it.
    #[serde(default)]
    pub retry: RetryPolicy,
}

fn default_batch_max_lines() -> usize {
    500
}

fn default_batch_max_bytes() -> usize {
    1024 * 1024
}

fn default_flush_interval_ms() -> u64 {
    1_000
}

fn default_request_timeout_secs() -> u64 {
    10
}

fn default_sourcetype() -> String {
    "gatehouse:verdict".into()
}

impl HttpExportConfig {
    /// Creates a config with every optional setting at its default.
    pub fn new(url: Url, format: HttpFormat) -> Self {
        Self {
            url,
            format,
            token: None,
            batch_max_lines: default_batch_max_lines(),
            batch_max_bytes: default_batch_max_bytes(),
            flush_interval_ms: default_flush_interval_ms(),
            request_timeout_secs: default_request_timeout_secs(),
            sourcetype: default_sourcetype(),
            source: None,
            index: None,
            retry: RetryPolicy::default(),
        }
    }
}

/// The outcome of one call to [`HttpForwarder::flush`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlushReport {
    pub lines_sent: usize,
    pub requests: usize,
}

/// Moves lines from the spool to the endpoint. Run [`HttpForwarder::run`] as a
/// task, or call [`HttpForwarder::flush`].
pub struct HttpForwarder {
    http: reqwest::Client,
    config: HttpExportConfig,
    token: Option<Secret>,
    spool: Arc<Mutex<Spool>>,
    clock: Arc<dyn Clock>,
    /// Lines per request, halved after a 413 and restored after a success.
    batch_lines: usize,
}

impl HttpForwarder {
    pub(crate) fn new(
        config: HttpExportConfig,
        spool: Arc<Mutex<Spool>>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, SiemError> {
        let token = config.token.as_ref().map(SecretSource::load).transpose()?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.request_timeout_secs))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("gatehouse/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(SiemError::Client)?;
        let batch_lines = config.batch_max_lines.max(1);
        Ok(Self {
            http,
            config,
            token,
            spool,
            clock,
            batch_lines,
        })
    }

    /// Sends batches until the spool is empty.
    ///
    /// # Errors
    ///
    /// Returns the first failed request; the lines stay in the spool.
    pub async fn flush(&mut self) -> Result<FlushReport, SiemError> {
        let mut report = FlushReport::default();
        loop {
            let batch = {
                let spool = self.spool.lock().unwrap_or_else(PoisonError::into_inner);
                spool.read_batch(self.batch_lines, self.config.batch_max_bytes)?
            };
            if batch.lines.is_empty() {
                return Ok(report);
            }
            report.requests += 1;
            match self.send(&batch.lines).await {
                Ok(()) => {
                    self.spool
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .commit(batch.end)?;
                    report.lines_sent += batch.lines.len();
                    self.batch_lines = self.config.batch_max_lines.max(1);
                }
                Err(SiemError::PayloadTooLarge) if self.batch_lines > 1 => {
                    self.batch_lines = (self.batch_lines / 2).max(1);
                    tracing::warn!(
                        batch_lines = self.batch_lines,
                        "the SIEM endpoint rejected the batch as too large; sending smaller batches"
                    );
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Forwards lines until `shutdown` completes. It sends the spooled lines every
    /// `flush_interval_ms` and backs off while the endpoint fails.
    pub async fn run(mut self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let interval = Duration::from_millis(self.config.flush_interval_ms);
        let mut failures = 0_u32;
        loop {
            let wait = match self.flush().await {
                Ok(report) => {
                    if failures > 0 {
                        tracing::info!(
                            lines = report.lines_sent,
                            "the SIEM endpoint accepts verdicts again"
                        );
                    }
                    failures = 0;
                    interval
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    let delay = self.config.retry.delay(failures, error.retry_after());
                    tracing::warn!(error = %error, failures, delay_ms = delay.as_millis() as u64, "failed to send verdicts to the SIEM; they stay in the spool");
                    delay
                }
            };
            tokio::select! {
                () = &mut shutdown => return,
                () = self.clock.sleep(wait) => {}
            }
        }
    }

    async fn send(&self, lines: &[String]) -> Result<(), SiemError> {
        let (body, content_type) = match self.config.format {
            HttpFormat::SplunkHec => (self.hec_body(lines), "application/json"),
            HttpFormat::JsonLines => (json_lines_body(lines), "application/x-ndjson"),
        };
        let mut request = self
            .http
            .post(self.config.url.clone())
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        if let Some(token) = &self.token {
            request = request.header(
                reqwest::header::AUTHORIZATION,
                authorization(&self.config.format, token),
            );
        }

        let url = self.config.url.to_string();
        let response = request
            .send()
            .await
            .map_err(|source| SiemError::Transport {
                url: url.clone(),
                source,
            })?;
        let status = response.status().as_u16();
        let wait = retry_after(&response, self.clock.now());
        let body = read_body(response, MAX_RESPONSE_BYTES)
            .await
            .unwrap_or_default();
        match status {
            200..=299 => Ok(()),
            413 => Err(SiemError::PayloadTooLarge),
            _ => Err(SiemError::Status {
                url,
                status,
                body: excerpt(&body, 300),
                retry_after: wait,
            }),
        }
    }

    /// Builds a HEC body: one event object per line, one per text line. The
    /// verdict line is valid JSON already and is embedded as it is.
    // NOTE: events carry no `time` field, so Splunk stamps them with the time
    // it receives them. Verdicts sent from the spool after an outage get the
    // time of delivery, not the time of the decision.
    fn hec_body(&self, lines: &[String]) -> String {
        let mut metadata = serde_json::Map::new();
        metadata.insert("sourcetype".into(), self.config.sourcetype.clone().into());
        if let Some(source) = &self.config.source {
            metadata.insert("source".into(), source.clone().into());
        }
        if let Some(index) = &self.config.index {
            metadata.insert("index".into(), index.clone().into());
        }
        let metadata = serde_json::Value::Object(metadata).to_string();
        // `metadata` is `{…}`; the event is appended before its closing brace.
        let head = &metadata[..metadata.len() - 1];
        let mut body = String::new();
        for line in lines {
            body.push_str(head);
            body.push_str(",\"event\":");
            body.push_str(line);
            body.push_str("}\n");
        }
        body
    }
}

/// Checks that the endpoint is reachable and accepts the token by sending an
/// empty batch, which carries no verdict. Splunk HEC returns HTTP 400 with
/// code 5 ("No data") for an empty batch once the token is valid, which
/// counts as success. A webhook must return 2xx.
///
/// # Errors
///
/// Fails when the token cannot be loaded, the request fails, or the endpoint
/// answers another status.
pub async fn check_endpoint(config: &HttpExportConfig) -> Result<u16, SiemError> {
    let token = config.token.as_ref().map(SecretSource::load).transpose()?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(config.request_timeout_secs))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("gatehouse/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(SiemError::Client)?;
    let content_type = match config.format {
        HttpFormat::SplunkHec => "application/json",
        HttpFormat::JsonLines => "application/x-ndjson",
    };
    let mut request = http
        .post(config.url.clone())
        .header(reqwest::header::CONTENT_TYPE, content_type)
        .body("");
    if let Some(token) = &token {
        request = request.header(
            reqwest::header::AUTHORIZATION,
            authorization(&config.format, token),
        );
    }

    let url = config.url.to_string();
    let response = request
        .send()
        .await
        .map_err(|source| SiemError::Transport {
            url: url.clone(),
            source,
        })?;
    let status = response.status().as_u16();
    let body = read_body(response, MAX_RESPONSE_BYTES)
        .await
        .unwrap_or_default();

    let hec_no_data = config.format == HttpFormat::SplunkHec
        && status == 400
        && serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|value| value.get("code").and_then(serde_json::Value::as_u64))
            == Some(5);
    if (200..300).contains(&status) || hec_no_data {
        return Ok(status);
    }
    Err(SiemError::Status {
        url,
        status,
        body: excerpt(&body, 300),
        retry_after: None,
    })
}

/// Returns the `Authorization` value for the format.
fn authorization(format: &HttpFormat, token: &Secret) -> String {
    match format {
        HttpFormat::SplunkHec => format!("Splunk {}", token.expose()),
        HttpFormat::JsonLines => format!("Bearer {}", token.expose()),
    }
}

fn json_lines_body(lines: &[String]) -> String {
    let mut body = String::with_capacity(lines.iter().map(|line| line.len() + 1).sum());
    for line in lines {
        body.push_str(line);
        body.push('\n');
    }
    body
}
