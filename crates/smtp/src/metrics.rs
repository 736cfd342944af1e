//! Prometheus metrics of the gateway, in the text exposition format 0.0.4.
//!
//! [`Metrics`] counts with atomics, so sessions never wait on each other to
//! record. [`serve_metrics`] answers `GET /metrics` on a listener of its own
//! with a minimal HTTP/1.1 exchange. It is meant for a loopback address that
//! only the local Prometheus scrapes.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use gatehouse_engine::Action;
use gatehouse_quarantine::Quarantine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Upper bounds of the analysis latency histogram, in seconds.
const LATENCY_BUCKETS: [f64; 13] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Maximum bytes of an HTTP request the metrics listener reads.
const MAX_REQUEST_BYTES: usize = 8192;

/// Time a scraper has to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Counters and gauges shared by every session.
#[derive(Debug, Default)]
pub struct Metrics {
    connections: AtomicU64,
    connections_open: AtomicI64,
    connections_refused: AtomicU64,
    /// Messages by action: deliver, tag, hold, reject.
    messages: [AtomicU64; 4],
    /// Messages not analysed in time or at all, by reason.
    analysis_failures: [AtomicU64; 2],
    /// Messages refused before analysis: bare line endings, size, loops.
    messages_refused: AtomicU64,
    upstream_errors: AtomicU64,
    signals: Mutex<BTreeMap<String, u64>>,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
    reloads: AtomicU64,
    quarantine: Mutex<Option<Quarantine>>,
}

/// Why a message had no verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnalysisFailure {
    Timeout,
    Failed,
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// Sets the quarantine whose held messages are counted at each scrape.
    pub fn watch_quarantine(&self, quarantine: Quarantine) {
        if let Ok(mut slot) = self.quarantine.lock() {
            *slot = Some(quarantine);
        }
    }

    pub fn connection_opened(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
        self.connections_open.fetch_add(1, Ordering::Relaxed);
    }

    pub fn connection_closed(&self) {
        self.connections_open.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn connection_refused(&self) {
        self.connections_refused.fetch_add(1, Ordering::Relaxed);
    }

    pub fn upstream_error(&self) {
        self.upstream_errors.fetch_add(1, Ordering::Relaxed);
    }

    pub fn message_refused(&self) {
        self.messages_refused.fetch_add(1, Ordering::Relaxed);
    }

    pub fn policy_reloaded(&self) {
        self.reloads.fetch_add(1, Ordering::Relaxed);
    }

    pub fn analysis_failed(&self, failure: AnalysisFailure) {
        let index = match failure {
            AnalysisFailure::Timeout => 0,
            AnalysisFailure::Failed => 1,
        };
        self.analysis_failures[index].fetch_add(1, Ordering::Relaxed);
    }

    /// Records one decision: its action, the signals that fired and the analysis time.
    pub fn decided<'a>(
        &self,
        action: Action,
        signals: impl IntoIterator<Item = &'a str>,
        latency: Duration,
    ) {
        self.messages[action_index(action)].fetch_add(1, Ordering::Relaxed);
        if let Ok(mut counts) = self.signals.lock() {
            for signal in signals {
                *counts.entry(signal.to_owned()).or_insert(0) += 1;
            }
        }
        let seconds = latency.as_secs_f64();
        for (bucket, bound) in self.latency_buckets.iter().zip(LATENCY_BUCKETS) {
            if seconds <= bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency_sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// Renders every metric in the Prometheus text format.
    ///
    /// Counting held messages lists the quarantine folder, so call this on a
    /// blocking thread.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str, value: u64| {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n"
            ));
        };
        counter(
            &mut out,
            "gatehouse_connections_total",
            "SMTP connections accepted.",
            self.connections.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "gatehouse_connections_refused_total",
            "SMTP connections refused with 421 because max_connections were open.",
            self.connections_refused.load(Ordering::Relaxed),
        );
        out.push_str(&format!(
            "# HELP gatehouse_connections_open SMTP connections open now.\n# TYPE gatehouse_connections_open gauge\ngatehouse_connections_open {}\n",
            self.connections_open.load(Ordering::Relaxed)
        ));

        out.push_str("# HELP gatehouse_messages_total Messages decided, by action.\n# TYPE gatehouse_messages_total counter\n");
        for action in [Action::Deliver, Action::Tag, Action::Hold, Action::Reject] {
            out.push_str(&format!(
                "gatehouse_messages_total{{action=\"{}\"}} {}\n",
                action_name(action),
                self.messages[action_index(action)].load(Ordering::Relaxed)
            ));
        }
        counter(
            &mut out,
            "gatehouse_messages_refused_total",
            "Messages refused before analysis: bare CR or LF, over the size limit, or a mail loop.",
            self.messages_refused.load(Ordering::Relaxed),
        );
        out.push_str("# HELP gatehouse_analysis_failures_total Messages without a verdict, by reason.\n# TYPE gatehouse_analysis_failures_total counter\n");
        for (reason, count) in ["timeout", "failed"].iter().zip(&self.analysis_failures) {
            out.push_str(&format!(
                "gatehouse_analysis_failures_total{{reason=\"{reason}\"}} {}\n",
                count.load(Ordering::Relaxed)
            ));
        }

        out.push_str("# HELP gatehouse_signals_total Signals fired, by signal id.\n# TYPE gatehouse_signals_total counter\n");
        if let Ok(counts) = self.signals.lock() {
            for (signal, count) in counts.iter() {
                out.push_str(&format!(
                    "gatehouse_signals_total{{signal=\"{}\"}} {count}\n",
                    escape_label(signal)
                ));
            }
        }

        out.push_str("# HELP gatehouse_analysis_seconds Time from the final dot to the verdict.\n# TYPE gatehouse_analysis_seconds histogram\n");
        for (bucket, bound) in self.latency_buckets.iter().zip(LATENCY_BUCKETS) {
            out.push_str(&format!(
                "gatehouse_analysis_seconds_bucket{{le=\"{bound}\"}} {}\n",
                bucket.load(Ordering::Relaxed)
            ));
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        out.push_str(&format!(
            "gatehouse_analysis_seconds_bucket{{le=\"+Inf\"}} {count}\n"
        ));
        let sum = self.latency_sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        out.push_str(&format!("gatehouse_analysis_seconds_sum {sum}\n"));
        out.push_str(&format!("gatehouse_analysis_seconds_count {count}\n"));

        counter(
            &mut out,
            "gatehouse_upstream_errors_total",
            "Failures to reach or talk to the upstream MTA.",
            self.upstream_errors.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "gatehouse_policy_reloads_total",
            "Policy reloads after SIGHUP that succeeded.",
            self.reloads.load(Ordering::Relaxed),
        );

        let quarantine = self.quarantine.lock().ok().and_then(|slot| slot.clone());
        if let Some(quarantine) = quarantine {
            match quarantine.held_count() {
                Ok(held) => out.push_str(&format!(
                    "# HELP gatehouse_quarantine_messages Messages held in the quarantine now.\n# TYPE gatehouse_quarantine_messages gauge\ngatehouse_quarantine_messages {held}\n"
                )),
                Err(err) => tracing::warn!(error = %err, "cannot count held messages for metrics"),
            }
        }
        out
    }
}

fn action_index(action: Action) -> usize {
    match action {
        Action::Deliver => 0,
        Action::Tag => 1,
        Action::Hold => 2,
        Action::Reject => 3,
    }
}

/// Returns the action as the verdict JSON spells it.
pub(crate) fn action_name(action: Action) -> &'static str {
    match action {
        Action::Deliver => "deliver",
        Action::Tag => "tag",
        Action::Hold => "hold",
        Action::Reject => "reject",
    }
}

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Serves `GET /metrics` on `listener` until `shutdown` completes.
pub async fn serve_metrics(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) {
    if let Ok(address) = listener.local_addr() {
        tracing::info!(metrics_listen = %address, "metrics listener started");
    }
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => return,
            accepted = listener.accept() => accepted,
        };
        let (mut stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                tracing::warn!(error = %err, "metrics accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            let request = tokio::time::timeout(REQUEST_TIMEOUT, read_request(&mut stream)).await;
            let response = match request {
                Ok(Some(path)) if path == "/metrics" => {
                    match tokio::task::spawn_blocking(move || metrics.render()).await {
                        Ok(body) => http_response("200 OK", &body),
                        Err(_) => http_response("500 Internal Server Error", "render failed\n"),
                    }
                }
                Ok(Some(_)) => http_response("404 Not Found", "try /metrics\n"),
                Ok(None) | Err(_) => http_response("400 Bad Request", "bad request\n"),
            };
            if let Err(err) = stream.write_all(response.as_bytes()).await {
                tracing::debug!(%peer, error = %err, "metrics reply failed");
            }
            let _ = stream.shutdown().await;
        });
    }
}

/// Reads the request head and returns the path of a GET request.
async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") {
        if head.len() > MAX_REQUEST_BYTES {
            return None;
        }
        let count = stream.read(&mut chunk).await.ok()?;
        if count == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..count]);
    }
    let line = head.split(|&byte| byte == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim_end();
    let mut words = line.split(' ');
    if words.next()? != "GET" {
        return None;
    }
    let target = words.next()?;
    Some(target.split('?').next().unwrap_or(target).to_owned())
}

fn http_response(status: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_counts_decisions() {
        let metrics = Metrics::new();
        metrics.decided(
            Action::Hold,
            ["link.in_qr", "sender.first_contact"],
            Duration::from_millis(30),
        );
        metrics.decided(Action::Deliver, [], Duration::from_millis(3));

        let text = metrics.render();

        assert!(
            text.contains("gatehouse_messages_total{action=\"hold\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("gatehouse_messages_total{action=\"deliver\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("gatehouse_signals_total{signal=\"link.in_qr\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("gatehouse_analysis_seconds_bucket{le=\"0.005\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("gatehouse_analysis_seconds_bucket{le=\"0.05\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("gatehouse_analysis_seconds_count 2\n"),
            "{text}"
        );
    }
}
