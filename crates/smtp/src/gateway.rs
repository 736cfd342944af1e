//! The handling of a message after its final dot: analyse, act, learn.

use std::sync::Arc;

use gatehouse_engine::{Action, Analysis, Engine, Envelope, Outcome, Verdict, When};
use gatehouse_quarantine::{HeldMessage, Quarantine, QuarantineError, QuarantineId};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;
use tokio::sync::Semaphore;

use crate::Limits;
use crate::delivery::{Delivery, DeliveryError};
use crate::reply::Reply;
use crate::session::Transaction;

/// The engine, quarantine and delivery that every SMTP session shares.
pub struct Gateway {
    engine: Arc<Engine>,
    quarantine: Quarantine,
    delivery: Delivery,
    hostname: String,
    limits: Limits,
    analyses: Semaphore,
}

/// A held message could not be released.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error(transparent)]
    Quarantine(#[from] QuarantineError),
    #[error("delivery of {id} failed, the message stays held: {source}")]
    Delivery {
        id: QuarantineId,
        source: DeliveryError,
    },
    #[error("upstream refused {id}, the message stays held: {reply}")]
    Refused { id: QuarantineId, reply: String },
}

impl Gateway {
    pub fn new(
        engine: Arc<Engine>,
        quarantine: Quarantine,
        delivery: Delivery,
        hostname: &str,
        limits: Limits,
    ) -> Gateway {
        let analyses = Semaphore::new(limits.max_concurrent_analyses.max(1));
        Gateway {
            engine,
            quarantine,
            delivery,
            hostname: hostname.to_owned(),
            limits,
            analyses,
        }
    }

    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn delivery(&self) -> &Delivery {
        &self.delivery
    }

    pub fn quarantine(&self) -> &Quarantine {
        &self.quarantine
    }

    /// Decides on one received message and returns the reply to its final dot.
    ///
    /// The reply is positive only once the upstream MTA accepted the message
    /// or the quarantine write is durable. Any failure in between replies 4xx,
    /// so the client keeps the message and retries.
    pub async fn accept(&self, transaction: Transaction, message: Vec<u8>) -> Reply {
        let now = OffsetDateTime::now_utc();
        let envelope = Envelope {
            mail_from: transaction.mail_from.clone(),
            rcpt_to: transaction.rcpt_to.clone(),
            client_ip: Some(transaction.client_ip),
            helo: transaction.helo.clone(),
        };

        let received = received_header(&self.hostname, &transaction, now);
        let mut raw = Vec::with_capacity(received.len() + message.len());
        raw.extend_from_slice(received.as_bytes());
        raw.extend_from_slice(&message);
        drop(message);

        let Some((analysis, raw)) = self.analyse(envelope.clone(), raw, now).await else {
            return Reply::local_error();
        };
        let verdict = &analysis.verdict;
        let (reply, outcome, result) = match verdict.action {
            Action::Deliver => self.deliver(&envelope, &raw).await,
            Action::Tag => {
                let tagged = with_tag_headers(&raw, received.len(), verdict);
                self.deliver(&envelope, &tagged).await
            }
            Action::Hold => self.hold(&analysis, raw).await,
            Action::Reject => (
                Reply::new(550, [5, 7, 1], "Message rejected by policy"),
                None,
                "rejected".to_owned(),
            ),
        };
        if let Some(outcome) = outcome {
            self.learn(analysis.clone(), outcome).await;
        }
        log_decision(verdict, &result);
        reply
    }

    /// Teaches the graph every release it has not learned yet, then marks each as learned.
    ///
    /// `gatehouse quarantine release` cannot open the graph store while the
    /// server holds it, so the server picks up those releases here.
    pub async fn learn_releases(&self) {
        let quarantine = self.quarantine.clone();
        let pending =
            match tokio::task::spawn_blocking(move || quarantine.unlearned_releases()).await {
                Ok(Ok(pending)) => pending,
                Ok(Err(err)) => {
                    tracing::warn!(error = %err, "cannot list released mail to learn");
                    return;
                }
                Err(err) => {
                    tracing::warn!(error = %err, "cannot list released mail to learn");
                    return;
                }
            };
        // NOTE: a release whose learning keeps failing is retried, and warned
        // about, on every poll; there is no back-off yet.
        for message in pending {
            let now = OffsetDateTime::now_utc();
            let Some((analysis, _)) = self
                .analyse(message.verdict.envelope.clone(), message.raw, now)
                .await
            else {
                continue;
            };
            let engine = Arc::clone(&self.engine);
            let learned =
                tokio::task::spawn_blocking(move || engine.learn(&analysis, Outcome::Released))
                    .await;
            match learned {
                Ok(Ok(())) => {}
                Ok(Err(err)) => {
                    tracing::warn!(verdict_id = %message.id, error = %err, "graph update for a release failed");
                    continue;
                }
                Err(err) => {
                    tracing::warn!(verdict_id = %message.id, error = %err, "graph update for a release failed");
                    continue;
                }
            }
            let quarantine = self.quarantine.clone();
            let id = message.id;
            match tokio::task::spawn_blocking(move || quarantine.mark_release_learned(id)).await {
                Ok(Ok(())) => tracing::info!(verdict_id = %id, "learned release"),
                Ok(Err(err)) => {
                    tracing::warn!(verdict_id = %id, error = %err, "cannot mark release as learned")
                }
                Err(err) => {
                    tracing::warn!(verdict_id = %id, error = %err, "cannot mark release as learned")
                }
            }
        }
    }

    /// Runs the engine on a blocking thread, at most `max_concurrent_analyses` at once.
    async fn analyse(
        &self,
        envelope: Envelope,
        raw: Vec<u8>,
        now: OffsetDateTime,
    ) -> Option<(Analysis, Vec<u8>)> {
        self.run_analysis(move |engine| {
            let analysis = engine.analyse(&envelope, &raw, When::At(now));
            (analysis, raw)
        })
        .await
    }

    /// Runs `job` with the engine on a blocking thread, at most
    /// `max_concurrent_analyses` jobs at once, so that every front shares one
    /// bound. Returns `None`, after logging the error, when the job panicked.
    pub async fn run_analysis<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Engine) -> T + Send + 'static,
    ) -> Option<T> {
        let _permit = self.analyses.acquire().await.ok()?;
        let engine = Arc::clone(&self.engine);
        let analysed = tokio::task::spawn_blocking(move || job(&engine)).await;
        match analysed {
            Ok(analysed) => Some(analysed),
            Err(err) => {
                tracing::error!(error = %err, "analysis failed");
                None
            }
        }
    }

    async fn deliver(
        &self,
        envelope: &Envelope,
        message: &[u8],
    ) -> (Reply, Option<Outcome>, String) {
        match self.delivery.deliver(envelope, message).await {
            Ok(reply) if reply.is_positive() => {
                let result = format!("delivered {}", reply.code);
                (reply, Some(Outcome::Delivered), result)
            }
            Ok(reply) => {
                let result = format!("refused upstream {}", reply.code);
                (reply, None, result)
            }
            Err(err) => {
                tracing::warn!(error = %err, "delivery failed, replying 451");
                (
                    Reply::new(451, [4, 4, 1], "Upstream unavailable, try again later"),
                    None,
                    "deferred".to_owned(),
                )
            }
        }
    }

    async fn hold(&self, analysis: &Analysis, raw: Vec<u8>) -> (Reply, Option<Outcome>, String) {
        let quarantine = self.quarantine.clone();
        let verdict = analysis.verdict.clone();
        let stored = tokio::task::spawn_blocking(move || quarantine.hold(&verdict, &raw)).await;
        match stored {
            Ok(Ok(id)) => (
                Reply::new(250, [2, 0, 0], format!("Ok: queued as {id}")),
                Some(Outcome::Held),
                "held".to_owned(),
            ),
            Ok(Err(err)) => {
                tracing::error!(error = %err, "quarantine write failed, replying 451");
                (Reply::local_error(), None, "deferred".to_owned())
            }
            Err(err) => {
                tracing::error!(error = %err, "quarantine write failed, replying 451");
                (Reply::local_error(), None, "deferred".to_owned())
            }
        }
    }

    /// Teaches the graph a message on a blocking thread, after its outcome is
    /// durable. A failure is logged and not returned, because the message
    /// has already been acted on.
    pub async fn learn(&self, analysis: Analysis, outcome: Outcome) {
        let engine = Arc::clone(&self.engine);
        let learned = tokio::task::spawn_blocking(move || engine.learn(&analysis, outcome)).await;
        match learned {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::warn!(error = %err, ?outcome, "graph update failed"),
            Err(err) => tracing::warn!(error = %err, ?outcome, "graph update failed"),
        }
    }
}

/// A held message that was delivered and moved to `released/`.
#[derive(Debug)]
pub struct Released {
    /// The final reply of the upstream MTA or the Maildir.
    pub reply: Reply,
    pub message: HeldMessage,
}

/// Delivers a held message with its original envelope, then moves it to `released/`.
///
/// The move comes after the delivery, so a failure or a crash in between
/// leaves the message held and it can be released again. Teaching the graph
/// (`Outcome::Released`) is left to the caller, which may not hold the graph
/// store open while `gatehouse serve` runs.
pub async fn release(
    quarantine: &Quarantine,
    delivery: &Delivery,
    id: QuarantineId,
    user: &str,
) -> Result<Released, ReleaseError> {
    let message = quarantine.load(id)?;
    let reply = delivery
        .deliver(&message.verdict.envelope, &message.raw)
        .await
        .map_err(|source| ReleaseError::Delivery { id, source })?;
    if !reply.is_positive() {
        return Err(ReleaseError::Refused {
            id,
            reply: reply.to_string().trim_end().to_owned(),
        });
    }
    quarantine.release(id, user)?;
    tracing::info!(
        verdict_id = %id,
        sender = %message.verdict.envelope.mail_from,
        recipients = %message.verdict.envelope.rcpt_to.join(","),
        user,
        "released"
    );
    Ok(Released { reply, message })
}

/// Builds the trace header the proxy adds on top of every message (RFC 5321 §4.4).
///
/// `for` names the recipient only when there is one, so a copy never reveals
/// the other recipients.
fn received_header(hostname: &str, transaction: &Transaction, now: OffsetDateTime) -> String {
    let helo = transaction.helo.as_deref().unwrap_or("unknown");
    let protocol = if transaction.esmtp { "ESMTP" } else { "SMTP" };
    let id = uuid::Uuid::now_v7().simple();
    let date = now
        .format(&Rfc2822)
        .unwrap_or_else(|_| "Thu, 01 Jan 1970 00:00:00 +0000".to_owned());
    let mut header = format!(
        "Received: from {helo} ([{}])\r\n\tby {hostname} (Gatehouse) with {protocol} id {id}",
        transaction.client_ip
    );
    if let [recipient] = transaction.rcpt_to.as_slice() {
        header.push_str(&format!("\r\n\tfor <{recipient}>"));
    }
    header.push_str(&format!("; {date}\r\n"));
    header
}

/// Inserts `X-Gatehouse-*` headers after the proxy's Received header.
fn with_tag_headers(raw: &[u8], received_len: usize, verdict: &Verdict) -> Vec<u8> {
    let signals: Vec<&str> = verdict
        .signals
        .iter()
        .map(|signal| signal.id.as_str())
        .collect();
    let headers = format!(
        "X-Gatehouse-Action: tag\r\nX-Gatehouse-Score: {:.1}\r\nX-Gatehouse-Signals: {}\r\nX-Gatehouse-Id: {}\r\n",
        verdict.score,
        signals.join(", "),
        verdict.id
    );
    let split = received_len.min(raw.len());
    let mut tagged = Vec::with_capacity(raw.len() + headers.len());
    tagged.extend_from_slice(&raw[..split]);
    tagged.extend_from_slice(headers.as_bytes());
    tagged.extend_from_slice(&raw[split..]);
    tagged
}

/// Returns the action as the verdict JSON spells it.
fn action_name(action: Action) -> &'static str {
    match action {
        Action::Deliver => "deliver",
        Action::Tag => "tag",
        Action::Hold => "hold",
        Action::Reject => "reject",
    }
}

/// Logs the one `info` event per decision, with fixed fields. `result` says
/// what was done, such as "delivered 250" or "held".
pub fn log_decision(verdict: &Verdict, result: &str) {
    let signals: Vec<&str> = verdict
        .signals
        .iter()
        .map(|signal| signal.id.as_str())
        .collect();
    let client_ip = verdict
        .envelope
        .client_ip
        .map(|ip| ip.to_string())
        .unwrap_or_default();
    tracing::info!(
        verdict_id = %verdict.id,
        message_id = verdict.message.message_id.as_deref().unwrap_or(""),
        client_ip = %client_ip,
        sender = %verdict.envelope.mail_from,
        recipients = %verdict.envelope.rcpt_to.join(","),
        action = action_name(verdict.action),
        score = verdict.score,
        signals = %signals.join(","),
        result,
        "decision"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transaction(recipients: &[&str]) -> Transaction {
        Transaction {
            mail_from: "a@b.test".to_owned(),
            rcpt_to: recipients.iter().map(|r| (*r).to_owned()).collect(),
            helo: Some("client.test".to_owned()),
            client_ip: [192, 0, 2, 7].into(),
            esmtp: true,
        }
    }

    #[test]
    fn received_names_single_recipient() {
        let header = received_header(
            "mx.test",
            &transaction(&["c@d.test"]),
            OffsetDateTime::UNIX_EPOCH,
        );

        assert!(header.starts_with("Received: from client.test ([192.0.2.7])\r\n\tby mx.test (Gatehouse) with ESMTP id "), "{header}");
        assert!(
            header.ends_with("\r\n\tfor <c@d.test>; Thu, 01 Jan 1970 00:00:00 +0000\r\n"),
            "{header}"
        );
    }

    #[test]
    fn received_hides_several_recipients() {
        let header = received_header(
            "mx.test",
            &transaction(&["c@d.test", "e@d.test"]),
            OffsetDateTime::UNIX_EPOCH,
        );

        assert!(!header.contains("for <"), "{header}");
    }
}
