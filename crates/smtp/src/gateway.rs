//! The handling of a message after its final dot: analyse, act, learn.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use gatehouse_engine::tagging::{self, TagOptions};
use gatehouse_engine::{
    Action, Analysis, Engine, Envelope, Outcome, TrustedNetworks, Verdict, When,
};
use gatehouse_quarantine::{HeldMessage, Quarantine, QuarantineError, QuarantineId};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use crate::Limits;
use crate::delivery::{Delivery, DeliveryError, Upstream};
use crate::learner::Learning;
use crate::limits::FailureAction;
use crate::metrics::{AnalysisFailure, Metrics, action_name};
use crate::pool::UpstreamPool;
use crate::reply::Reply;
use crate::session::Transaction;
use crate::upstream::UpstreamSession;

/// Header field added to mail delivered without a verdict, saying why.
pub const UNSCANNED_HEADER: &str = "X-Gatehouse-Unscanned";

/// First wait before learning a release again after it failed; doubled per failure.
const RELEASE_RETRY_FIRST: Duration = Duration::from_secs(5);
/// Maximum wait between attempts to learn a release.
const RELEASE_RETRY_MAX: Duration = Duration::from_secs(3600);

/// The engine, quarantine and delivery that every SMTP session shares.
pub struct Gateway {
    /// Replaced whole when the policy is reloaded; a session in the middle
    /// of an analysis keeps the engine it started with.
    engine: RwLock<Arc<Engine>>,
    quarantine: Quarantine,
    delivery: Delivery,
    hostname: String,
    limits: Limits,
    analyses: Arc<Semaphore>,
    metrics: Arc<Metrics>,
    tls: Option<TlsAcceptor>,
    tagging: TagOptions,
    /// MTAs whose XFORWARD commands name the real client.
    xforward_hosts: TrustedNetworks,
    /// Clients that may send mail to domains other than the local ones.
    relay_networks: TrustedNetworks,
    /// Upstream connections kept open between client sessions.
    upstream_pool: UpstreamPool,
    /// Releases whose learning failed: failures so far and the next attempt.
    release_retries: Mutex<HashMap<QuarantineId, (u32, Instant)>>,
    /// Extra time each analysis takes, for tests of the time budget.
    analysis_delay: Duration,
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

/// Why a message has no verdict, with how long the analysis ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoVerdict {
    pub failure: AnalysisFailure,
    pub elapsed: Duration,
}

impl Gateway {
    pub fn new(
        engine: Arc<Engine>,
        quarantine: Quarantine,
        delivery: Delivery,
        hostname: &str,
        limits: Limits,
    ) -> Gateway {
        let analyses = Arc::new(Semaphore::new(limits.max_concurrent_analyses.max(1)));
        let metrics = Arc::new(Metrics::new());
        metrics.watch_quarantine(quarantine.clone());
        Gateway {
            engine: RwLock::new(engine),
            quarantine,
            delivery,
            hostname: hostname.to_owned(),
            limits,
            analyses,
            metrics,
            tls: None,
            tagging: TagOptions::default(),
            xforward_hosts: TrustedNetworks::default(),
            relay_networks: TrustedNetworks::loopback(),
            upstream_pool: UpstreamPool::default(),
            release_retries: Mutex::new(HashMap::new()),
            analysis_delay: Duration::ZERO,
        }
    }

    /// Makes every analysis take `delay` longer. Only tests of the analysis
    /// time budget use this.
    #[doc(hidden)]
    pub fn with_analysis_delay(mut self, delay: Duration) -> Gateway {
        self.analysis_delay = delay;
        self
    }

    /// Offers STARTTLS with this acceptor's certificate.
    pub fn with_tls(mut self, acceptor: TlsAcceptor) -> Gateway {
        self.tls = Some(acceptor);
        self
    }

    /// Offers XFORWARD to clients in these networks and believes the client
    /// address and HELO they forward, as Postfix's
    /// `smtpd_authorized_xforward_hosts` does. No host by default.
    pub fn with_xforward_hosts(mut self, hosts: TrustedNetworks) -> Gateway {
        self.xforward_hosts = hosts;
        self
    }

    /// Returns the MTAs whose XFORWARD commands are believed.
    pub fn xforward_hosts(&self) -> &TrustedNetworks {
        &self.xforward_hosts
    }

    /// Lets clients in these networks send mail to any domain, as Postfix's
    /// `permit_mynetworks` does. Loopback by default. Other clients may
    /// only send to the local domains, because the proxy offers no SMTP AUTH.
    pub fn with_relay_networks(mut self, networks: TrustedNetworks) -> Gateway {
        self.relay_networks = networks;
        self
    }

    /// Returns whether the client connected from `peer` may send to
    /// `recipient`: any client to a local domain; to other domains, clients
    /// in the relay networks and MTAs trusted for XFORWARD, which made
    /// that decision themselves. The proxy decides this before the upstream
    /// receives the recipient, so an upstream that trusts the gateway's own
    /// address cannot become an open relay through it.
    pub fn may_relay(&self, peer: IpAddr, recipient: &str) -> bool {
        self.engine().is_local(recipient)
            || self.relay_networks.contains(peer)
            || self.xforward_hosts.contains(peer)
    }

    /// Sets how tagged mail is marked beyond its header fields.
    pub fn with_tagging(mut self, options: TagOptions) -> Gateway {
        self.tagging = options;
        self
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

    pub fn upstream_pool(&self) -> &UpstreamPool {
        &self.upstream_pool
    }

    pub fn quarantine(&self) -> &Quarantine {
        &self.quarantine
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn tls(&self) -> Option<&TlsAcceptor> {
        self.tls.as_ref()
    }

    pub fn tag_options(&self) -> &TagOptions {
        &self.tagging
    }

    /// Returns the engine new analyses use.
    pub fn engine(&self) -> Arc<Engine> {
        match self.engine.read() {
            Ok(engine) => Arc::clone(&engine),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Replaces the engine, after a policy reload. Analyses already running
    /// finish with the old one; open sessions are not touched.
    pub fn replace_engine(&self, engine: Arc<Engine>) {
        match self.engine.write() {
            Ok(mut slot) => *slot = engine,
            Err(poisoned) => *poisoned.into_inner() = engine,
        }
        self.metrics.policy_reloaded();
    }

    /// Decides on one received message and returns the reply to its final
    /// dot, with what the graph should learn once that reply is sent.
    ///
    /// `upstream` is the mirrored session whose transaction already contains
    /// the accepted recipients. It is `None` when mail goes to the Maildir, or
    /// after it failed. The reply is positive only once the upstream MTA
    /// accepted the message or the quarantine write is durable. Any failure
    /// in between replies 4xx, so the client keeps the message and retries.
    pub async fn accept(
        &self,
        transaction: Transaction,
        message: Vec<u8>,
        upstream: &mut Option<UpstreamSession>,
    ) -> (Reply, Option<Learning>) {
        // Loops: a message that went round too often is refused before any work.
        let hops = count_received(&message);
        if hops >= self.limits.max_received_headers {
            tracing::info!(hops, sender = %transaction.mail_from, "message rejected: mail loop");
            self.metrics.message_refused();
            reset(upstream).await;
            let reply = Reply::new(
                554,
                [5, 4, 6],
                format!("Too many hops ({hops} Received header fields), mail loop suspected"),
            );
            return (reply, None);
        }

        let now = OffsetDateTime::now_utc();
        let envelope = envelope_of(&transaction);
        // A sender's own X-Gatehouse-* fields would pass for a verdict.
        let message = match tagging::strip_verdict_headers(&message) {
            std::borrow::Cow::Borrowed(_) => message,
            std::borrow::Cow::Owned(stripped) => stripped,
        };
        let received = received_header(&self.hostname, &transaction, now);
        let mut raw = Vec::with_capacity(received.len() + message.len());
        raw.extend_from_slice(received.as_bytes());
        raw.extend_from_slice(&message);
        drop(message);
        let raw = Arc::new(raw);

        let analysis = match self.analyse(envelope.clone(), Arc::clone(&raw), now).await {
            Ok(analysis) => analysis,
            Err(no_verdict) => {
                let reply = self
                    .act_without_verdict(&transaction, &raw, received.len(), no_verdict, upstream)
                    .await;
                return (reply, None);
            }
        };
        let verdict = &analysis.verdict;
        let (reply, outcome, result) = match verdict.action {
            Action::Deliver => self.deliver(&transaction, &raw, upstream).await,
            Action::Tag => {
                let tagged = tagging::tag(&raw[received.len()..], verdict, &self.tagging);
                let mut message = Vec::with_capacity(received.len() + tagged.len());
                message.extend_from_slice(received.as_bytes());
                message.extend_from_slice(&tagged);
                self.deliver(&transaction, &message, upstream).await
            }
            Action::Hold => {
                reset(upstream).await;
                self.hold(&analysis, &raw).await
            }
            Action::Reject => {
                reset(upstream).await;
                (
                    Reply::new(550, [5, 7, 1], "Message rejected by policy"),
                    None,
                    "rejected".to_owned(),
                )
            }
        };
        log_decision(verdict, &result);
        (reply, outcome.map(|outcome| (analysis, outcome)))
    }

    /// Analyses a message within [`Limits::analysis_timeout`], at most
    /// `max_concurrent_analyses` at once, each on a blocking thread.
    ///
    /// The time counts from the call, so waiting for a free slot uses the
    /// budget too. An analysis that runs out of time cannot be stopped: its
    /// thread finishes in the background and keeps its slot until then, so
    /// slow messages cannot pile up more threads than the limit.
    pub async fn analyse(
        &self,
        envelope: Envelope,
        raw: Arc<Vec<u8>>,
        now: OffsetDateTime,
    ) -> Result<Analysis, NoVerdict> {
        let started = Instant::now();
        let delay = self.analysis_delay;
        let work = self.run_analysis(move |engine| {
            if !delay.is_zero() {
                std::thread::sleep(delay);
            }
            engine.analyse(&envelope, &raw, When::At(now))
        });
        let result = tokio::time::timeout(self.limits.analysis_timeout, work).await;
        let elapsed = started.elapsed();
        let failure = match result {
            Ok(Some(analysis)) => {
                let signals = analysis
                    .verdict
                    .signals
                    .iter()
                    .map(|signal| signal.id.as_str());
                self.metrics
                    .decided(analysis.verdict.action, signals, elapsed);
                return Ok(analysis);
            }
            Ok(None) => {
                tracing::error!(elapsed_ms = elapsed.as_millis(), "analysis failed");
                AnalysisFailure::Failed
            }
            Err(_) => {
                tracing::warn!(
                    budget_secs = self.limits.analysis_timeout.as_secs_f64(),
                    "analysis ran out of time"
                );
                AnalysisFailure::Timeout
            }
        };
        self.metrics.analysis_failed(failure);
        Err(NoVerdict { failure, elapsed })
    }

    /// Runs `job` with the engine on a blocking thread, at most
    /// `max_concurrent_analyses` jobs at once, so that every front shares one
    /// bound. Returns `None`, after logging the error, when the job panicked.
    ///
    /// The slot is held by the job itself, so a caller that stops waiting
    /// (a timeout) does not free it before the thread is done.
    pub async fn run_analysis<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Engine) -> T + Send + 'static,
    ) -> Option<T> {
        let permit = Arc::clone(&self.analyses).acquire_owned().await.ok()?;
        let engine = self.engine();
        let analysed = tokio::task::spawn_blocking(move || {
            let result = job(&engine);
            drop(permit);
            result
        })
        .await;
        match analysed {
            Ok(analysed) => Some(analysed),
            Err(err) => {
                tracing::error!(error = %err, "analysis failed");
                None
            }
        }
    }

    /// Acts on a message without a verdict as [`Limits::on_analysis_failure`] sets.
    async fn act_without_verdict(
        &self,
        transaction: &Transaction,
        raw: &[u8],
        received_len: usize,
        no_verdict: NoVerdict,
        upstream: &mut Option<UpstreamSession>,
    ) -> Reply {
        let reason = match no_verdict.failure {
            AnalysisFailure::Timeout => format!(
                "analysis timed out after {:.1} s",
                self.limits.analysis_timeout.as_secs_f64()
            ),
            AnalysisFailure::Failed => "analysis failed".to_owned(),
        };
        let (reply, result) = match self.limits.on_analysis_failure {
            FailureAction::Tempfail => {
                reset(upstream).await;
                (
                    Reply::new(
                        451,
                        [4, 3, 0],
                        "Message could not be scanned, try again later",
                    ),
                    "deferred unscanned".to_owned(),
                )
            }
            FailureAction::Deliver => {
                let header = format!("{UNSCANNED_HEADER}: {reason}\r\n");
                let split = received_len.min(raw.len());
                let mut message = Vec::with_capacity(raw.len() + header.len());
                message.extend_from_slice(&raw[..split]);
                message.extend_from_slice(header.as_bytes());
                message.extend_from_slice(&raw[split..]);
                let (reply, _, result) = self.deliver(transaction, &message, upstream).await;
                (reply, format!("{result} unscanned"))
            }
        };
        tracing::info!(
            client_ip = %transaction.client_ip,
            sender = %transaction.mail_from,
            recipients = %transaction.rcpt_to.join(","),
            action = "none",
            reason,
            result,
            "decision"
        );
        reply
    }

    /// Teaches the graph every release it has not learned yet, then marks each as learned.
    ///
    /// `gatehouse quarantine release` cannot open the graph store while the
    /// server holds it, so the server picks up those releases here. A release
    /// whose learning fails is tried again after 5 s, then after twice the
    /// previous wait, up to one hour.
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
        for release in pending {
            let id = release.id;
            if !self.release_due(id) {
                continue;
            }
            let learned = match release.message {
                Ok(message) => self.learn_release(message).await,
                Err(err) => Err(err.to_string()),
            };
            match learned {
                Ok(()) => {
                    if let Ok(mut retries) = self.release_retries.lock() {
                        retries.remove(&id);
                    }
                    tracing::info!(verdict_id = %id, "learned release");
                }
                Err(err) => {
                    let (failures, wait) = self.release_failed(id);
                    tracing::warn!(
                        verdict_id = %id,
                        error = %err,
                        failures,
                        retry_in_secs = wait.as_secs(),
                        "learning a release failed"
                    );
                }
            }
        }
    }

    async fn learn_release(&self, message: HeldMessage) -> Result<(), String> {
        let now = OffsetDateTime::now_utc();
        let analysis = self
            .analyse(message.verdict.envelope.clone(), Arc::new(message.raw), now)
            .await
            .map_err(|no_verdict| format!("{:?}", no_verdict.failure))?;
        let engine = self.engine();
        tokio::task::spawn_blocking(move || engine.learn(&analysis, Outcome::Released))
            .await
            .map_err(|err| err.to_string())?
            .map_err(|err| err.to_string())?;
        let quarantine = self.quarantine.clone();
        let id = message.id;
        tokio::task::spawn_blocking(move || quarantine.mark_release_learned(id))
            .await
            .map_err(|err| err.to_string())?
            .map_err(|err| err.to_string())
    }

    fn release_due(&self, id: QuarantineId) -> bool {
        let Ok(retries) = self.release_retries.lock() else {
            return true;
        };
        retries
            .get(&id)
            .is_none_or(|(_, next)| Instant::now() >= *next)
    }

    /// Records a failure and returns the failures so far and the wait before the next try.
    fn release_failed(&self, id: QuarantineId) -> (u32, Duration) {
        let Ok(mut retries) = self.release_retries.lock() else {
            return (1, RELEASE_RETRY_FIRST);
        };
        let entry = retries.entry(id).or_insert((0, Instant::now()));
        entry.0 += 1;
        let wait = RELEASE_RETRY_FIRST
            .saturating_mul(1u32 << (entry.0 - 1).min(16))
            .min(RELEASE_RETRY_MAX);
        entry.1 = Instant::now() + wait;
        (entry.0, wait)
    }

    async fn deliver(
        &self,
        transaction: &Transaction,
        message: &[u8],
        upstream: &mut Option<UpstreamSession>,
    ) -> (Reply, Option<Outcome>, String) {
        let delivered = match (&self.delivery, upstream.as_mut()) {
            (Delivery::Upstream(target), Some(session)) => {
                let sent = session.send_message(message).await;
                match sent {
                    Ok(reply) if reply.code != 421 => Ok(reply),
                    dropped => {
                        self.replay(target, transaction, message, dropped, upstream)
                            .await
                    }
                }
            }
            (Delivery::Upstream(_), None) => {
                return (Reply::upstream_unavailable(), None, "deferred".to_owned());
            }
            (Delivery::Maildir(_), _) => {
                let envelope = envelope_of(transaction);
                self.delivery.deliver(&envelope, message).await
            }
        };
        match delivered {
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
                self.metrics.upstream_error();
                *upstream = None;
                (Reply::upstream_unavailable(), None, "deferred".to_owned())
            }
        }
    }

    /// Sends the transaction again on a new connection when the upstream
    /// closed it without accepting the message, with a 421 or by closing the
    /// connection. The replay's own failure, or a 421 again, gives the
    /// client 451.
    async fn replay(
        &self,
        target: &Upstream,
        transaction: &Transaction,
        message: &[u8],
        dropped: Result<Reply, DeliveryError>,
        upstream: &mut Option<UpstreamSession>,
    ) -> Result<Reply, DeliveryError> {
        match &dropped {
            Ok(reply) => tracing::warn!(
                code = reply.code,
                "upstream closed the transaction without accepting the message; sending it again"
            ),
            Err(err) => tracing::warn!(
                error = %err,
                "upstream connection failed before accepting the message; sending it again"
            ),
        }
        self.metrics.upstream_error();
        *upstream = None;
        match target.replay(transaction, message).await? {
            Some((reply, session)) if reply.code != 421 => {
                *upstream = Some(session);
                Ok(reply)
            }
            Some((reply, _)) => {
                tracing::warn!(
                    code = reply.code,
                    "upstream dropped the replayed transaction too"
                );
                Ok(Reply::upstream_unavailable())
            }
            None => Ok(Reply::upstream_unavailable()),
        }
    }

    /// Stores a held message durably and returns the reply, the outcome and the result for the log.
    pub async fn hold(
        &self,
        analysis: &Analysis,
        raw: &Arc<Vec<u8>>,
    ) -> (Reply, Option<Outcome>, String) {
        let quarantine = self.quarantine.clone();
        let verdict = analysis.verdict.clone();
        let raw = Arc::clone(raw);
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
}

/// Builds the verdict's envelope of a client's transaction.
fn envelope_of(transaction: &Transaction) -> Envelope {
    Envelope {
        mail_from: transaction.mail_from.clone(),
        rcpt_to: transaction.rcpt_to.clone(),
        client_ip: Some(transaction.client_ip),
        helo: transaction.helo.clone(),
    }
}

/// Abandons the upstream transaction of a message that is not delivered.
async fn reset(upstream: &mut Option<UpstreamSession>) {
    if let Some(session) = upstream.as_mut()
        && let Err(err) = session.reset().await
    {
        tracing::debug!(error = %err, "upstream RSET failed; closing the upstream connection");
        *upstream = None;
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
/// The message is locked for the whole release, so a second release of the
/// same id at the same time fails with [`QuarantineError::Busy`] instead of
/// delivering it twice. The move comes after the delivery, so a failure or a
/// crash in between leaves the message held and it can be released again.
/// Teaching the graph (`Outcome::Released`) is left to the caller, which may
/// not hold the graph store open while `gatehouse serve` runs.
pub async fn release(
    quarantine: &Quarantine,
    delivery: &Delivery,
    id: QuarantineId,
    user: &str,
) -> Result<Released, ReleaseError> {
    let lock = quarantine.lock(id)?;
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
    drop(lock);
    tracing::info!(
        verdict_id = %id,
        sender = %message.verdict.envelope.mail_from,
        recipients = %message.verdict.envelope.rcpt_to.join(","),
        user,
        "released"
    );
    Ok(Released { reply, message })
}

/// Counts the `Received` fields in the header section, for loop detection.
fn count_received(message: &[u8]) -> usize {
    let mut count = 0;
    for line in message.split(|&byte| byte == b'\n') {
        if line == b"\r" || line.is_empty() {
            break;
        }
        if line.len() >= 9 && line[..9].eq_ignore_ascii_case(b"received:") {
            count += 1;
        }
    }
    count
}

/// Builds the trace header the proxy adds on top of every message (RFC 5321 §4.4).
///
/// The protocol is `ESMTPS` over TLS (RFC 3848) and `UTF8SMTP` or
/// `UTF8SMTPS` for SMTPUTF8 transactions (RFC 6531 §3.7.3). `for` names the
/// recipient only when there is one, so a copy never reveals the others.
fn received_header(hostname: &str, transaction: &Transaction, now: OffsetDateTime) -> String {
    let helo = transaction.helo.as_deref().unwrap_or("unknown");
    let protocol = match (
        transaction.mail_params.smtputf8,
        transaction.esmtp,
        transaction.tls,
    ) {
        (true, _, false) => "UTF8SMTP",
        (true, _, true) => "UTF8SMTPS",
        (false, true, false) => "ESMTP",
        (false, true, true) => "ESMTPS",
        (false, false, _) => "SMTP",
    };
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

/// Logs the one `info` event per decision, with fixed fields.
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
    use crate::upstream::{MailParams, RcptParams};

    fn transaction(recipients: &[&str]) -> Transaction {
        Transaction {
            mail_from: "a@b.test".to_owned(),
            rcpt_to: recipients.iter().map(|r| (*r).to_owned()).collect(),
            rcpt_params: vec![RcptParams::default(); recipients.len()],
            helo: Some("client.test".to_owned()),
            client_ip: [192, 0, 2, 7].into(),
            esmtp: true,
            tls: false,
            mail_params: MailParams::default(),
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

    #[test]
    fn received_names_tls_and_smtputf8() {
        let mut tls = transaction(&["c@d.test"]);
        tls.tls = true;
        let mut utf8 = tls.clone();
        utf8.mail_params.smtputf8 = true;

        let tls_header = received_header("mx.test", &tls, OffsetDateTime::UNIX_EPOCH);
        let utf8_header = received_header("mx.test", &utf8, OffsetDateTime::UNIX_EPOCH);

        assert!(tls_header.contains(" with ESMTPS id "), "{tls_header}");
        assert!(utf8_header.contains(" with UTF8SMTPS id "), "{utf8_header}");
    }

    #[test]
    fn received_fields_are_counted_in_headers_only() {
        let message =
            b"Received: a\r\nreceived: b\r\n\tfolded\r\nSubject: x\r\n\r\nReceived: in body\r\n";

        assert_eq!(count_received(message), 2);
    }
}
