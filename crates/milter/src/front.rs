//! The tokio side of the milter front: accept MTA connections, read and
//! write packets, judge each message with the shared [`Gateway`], and act.
//!
//! Per message, after the MTA's end-of-message packet:
//!
//! 1. the message is rebuilt with a Received field naming this front on top;
//! 2. the engine analyses it on a blocking thread, behind the gateway's
//!    bound on concurrent analyses, while progress packets keep the MTA waiting;
//! 3. the verdict becomes a [`Decision`]: accept with `X-Gatehouse-*`
//!    fields, discard once the quarantine write is durable, reject with
//!    550 5.7.1, or fail temporarily when analysis or the quarantine fails;
//! 4. the reply goes to the MTA, and then a background task teaches the
//!    graph the outcome, batching messages into one transaction.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use gatehouse_engine::{Action, Envelope, Outcome, Verdict, When};
use gatehouse_smtp::gateway::log_decision;
use gatehouse_smtp::{Gateway, LearnQueue, Learner, Learning};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::Limits;
use crate::codec::{self, Decoded, Response};
use crate::session::{Decision, Message, Session, State, Step};

/// Bytes reserved for each socket read.
const READ_CHUNK: usize = 64 * 1024;

/// Interval at which a milter-only server looks for releases it has not learned.
const RELEASE_POLL: Duration = Duration::from_secs(5);

/// How long a connection that looks between messages may stay silent after
/// shutdown before it is closed. Postfix sends the events of a message that
/// need no reply in bursts, so a message in progress can look like none
/// until its next burst. A connection that sends within this time keeps
/// the grace period.
const SHUTDOWN_QUIET: Duration = Duration::from_secs(5);

/// The reply when the verdict is reject.
pub const REJECT_REPLY: &str = "550 5.7.1 Message rejected by policy";
/// The reply when analysis or the quarantine write failed.
pub const TEMPFAIL_REPLY: &str = "451 4.3.0 Message could not be checked, try again later";
/// The reply when the message is larger than `max_message_bytes`.
pub const TOO_BIG_REPLY: &str = "552 5.3.4 Message too big for content checks";

/// Runs the milter front on a bound listener until `shutdown` completes.
///
/// After shutdown the listener stops accepting. Connections between
/// messages close once silent for 5 s, and those inside a message have
/// `shutdown_grace` to finish it. Connections still open then are cut off,
/// and the MTA applies its `milter_default_action` to their messages. With
/// `learn_releases` set, the front also teaches the graph the releases made
/// by `gatehouse quarantine release`; set it only when no SMTP proxy on the
/// same gateway does so.
pub async fn serve(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    limits: Limits,
    learn_releases: bool,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let limits = Arc::new(limits);
    let connections = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut tasks = JoinSet::new();
    tracing::info!(listen = %listener.local_addr()?, "milter front started");
    let learner = Learner::start(Arc::clone(&gateway));
    let releases = learn_releases.then(|| {
        let gateway = Arc::clone(&gateway);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(RELEASE_POLL);
            loop {
                interval.tick().await;
                gateway.learn_releases().await;
            }
        })
    });

    // Tells each connection that the front is stopping, so that one
    // between messages closes once silent.
    let (closing, closing_seen) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        // Running out of file descriptors is the usual cause; wait instead of spinning.
                        tracing::warn!(error = %err, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let Ok(permit) = Arc::clone(&connections).try_acquire_owned() else {
                    tracing::warn!(%peer, max_connections = limits.max_connections, "milter connection closed: too many connections");
                    continue;
                };
                let gateway = Arc::clone(&gateway);
                let limits = Arc::clone(&limits);
                let learn_queue = learner.queue();
                let closing = closing_seen.clone();
                tasks.spawn(async move {
                    handle(stream, peer, &gateway, &learn_queue, &limits, closing).await;
                    drop(permit);
                });
            }
        }
    }

    drop(listener);
    let _ = closing.send(true);
    if let Some(releases) = releases {
        releases.abort();
    }
    tracing::info!(open_connections = tasks.len(), "milter front stopping");
    let drained = tokio::time::timeout(limits.shutdown_grace, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            cut_off = tasks.len(),
            "milter connections still open after the shutdown grace period"
        );
        tasks.shutdown().await;
    }
    learner.finish().await;
    tracing::info!("milter front stopped");
    Ok(())
}

/// Serves one MTA connection until it quits, breaks the protocol or times out.
async fn handle(
    mut stream: TcpStream,
    peer: SocketAddr,
    gateway: &Gateway,
    learn_queue: &LearnQueue,
    limits: &Limits,
    closing: watch::Receiver<bool>,
) {
    let span = tracing::info_span!("milter", id = %uuid::Uuid::now_v7().simple(), %peer);
    async move {
        // Replies go out at once, and each write carries every reply due.
        let _ = stream.set_nodelay(true);
        match converse(&mut stream, gateway, learn_queue, limits, closing).await {
            Ok(()) => tracing::debug!("milter connection closed"),
            Err(err) => tracing::warn!(error = %err, "milter connection ended"),
        }
    }
    .instrument(span)
    .await
}

/// The error that ended a connection early.
#[derive(Debug, thiserror::Error)]
enum ConnectionError {
    #[error(transparent)]
    Protocol(#[from] codec::ProtocolError),
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
    #[error("no packet from the MTA for {0:?}")]
    TimedOut(Duration),
    #[error("the MTA closed the connection inside a packet")]
    Truncated,
}

async fn converse(
    stream: &mut TcpStream,
    gateway: &Gateway,
    learn_queue: &LearnQueue,
    limits: &Limits,
    mut closing: watch::Receiver<bool>,
) -> Result<(), ConnectionError> {
    let mut session = Session::new(limits.max_message_bytes);
    let mut input: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let mut output: Vec<u8> = Vec::new();
    loop {
        // Handle every whole packet already read.
        let mut start = 0;
        loop {
            let command = match codec::decode(&input[start..], limits.max_packet_bytes)? {
                Decoded::Incomplete => break,
                Decoded::Packet { command, consumed } => {
                    start += consumed;
                    command
                }
            };
            match session.handle(command)? {
                Step::Reply(responses) => {
                    for response in responses {
                        response.encode(&mut output);
                    }
                }
                Step::Judge(message) => {
                    stream.write_all(&output).await?;
                    output.clear();
                    let (decision, learning) = judge(stream, gateway, limits, *message).await?;
                    for response in session.finish(decision) {
                        response.encode(&mut output);
                    }
                    stream.write_all(&output).await?;
                    output.clear();
                    if let Some(learning) = learning {
                        learn_queue.push(learning).await;
                    }
                }
                Step::Close => {
                    stream.write_all(&output).await?;
                    return Ok(());
                }
            }
        }
        input.drain(..start);
        if !output.is_empty() {
            stream.write_all(&output).await?;
            output.clear();
        }

        // Read more; a packet is never longer than max_packet_bytes, so the
        // buffer stays below that plus one read.
        input.reserve(READ_CHUNK);
        // At shutdown, a connection that looks between messages closes once
        // the MTA has sent nothing for SHUTDOWN_QUIET. The MTA applies its
        // milter_default_action to a later message of that SMTP session.
        let between_messages = input.is_empty()
            && matches!(
                session.state(),
                State::Negotiating | State::Ready | State::Connection
            );
        let quiet = between_messages && *closing.borrow();
        let wait = if quiet {
            SHUTDOWN_QUIET.min(limits.command_timeout)
        } else {
            limits.command_timeout
        };
        let read = tokio::select! {
            read = tokio::time::timeout(wait, stream.read_buf(&mut input)) => read,
            // Wait again, for SHUTDOWN_QUIET.
            _ = closing.wait_for(|closing| *closing), if between_messages && !quiet => continue,
        };
        let read = match read {
            Ok(read) => read?,
            Err(_) if quiet => {
                tracing::debug!("milter connection closed between messages at shutdown");
                return Ok(());
            }
            Err(_) => return Err(ConnectionError::TimedOut(limits.command_timeout)),
        };
        if read == 0 {
            return if input.is_empty() {
                Ok(())
            } else {
                Err(ConnectionError::Truncated)
            };
        }
        acknowledge_at_once(stream);
    }
}

/// Makes the kernel acknowledge the MTA's packets as they arrive instead of
/// delaying the acknowledgement.
///
/// Postfix 3.7 buffers the packets that get no reply (macros, and with the
/// "no reply" flags negotiated here, every command before end-of-message)
/// and writes them in bursts, with Nagle's algorithm on. A burst then waits
/// until the previous one is acknowledged, and Linux delays an
/// acknowledgement that has no reply to carry it by at least 40 ms. With
/// one such wait or more per message, one session relayed about 15 messages
/// per second. `TCP_QUICKACK` is not sticky, so it is set again after every
/// read. Setting it also sends an acknowledgement that is still pending
/// (Linux `net/ipv4/tcp.c`).
#[cfg(target_os = "linux")]
fn acknowledge_at_once(stream: &TcpStream) {
    let _ = socket2::SockRef::from(stream).set_tcp_quickack(true);
}

// NOTE: other systems keep delayed acknowledgements, so one session there
// may stall as described above; only Linux has been measured.
#[cfg(not(target_os = "linux"))]
fn acknowledge_at_once(_stream: &TcpStream) {}

/// Analyses and acts on one message, sending progress packets meanwhile.
async fn judge(
    stream: &mut TcpStream,
    gateway: &Gateway,
    limits: &Limits,
    message: Message,
) -> Result<(Decision, Option<Learning>), ConnectionError> {
    let queue_id = message.queue_id.clone().unwrap_or_default();
    if message.oversized {
        tracing::warn!(
            queue_id,
            sender = %message.mail_from,
            max_message_bytes = limits.max_message_bytes,
            "message over the size limit rejected"
        );
        return Ok((
            Decision::Reject {
                reply: TOO_BIG_REPLY.to_owned(),
            },
            None,
        ));
    }

    // Analyse, with progress packets and a deadline.
    let now = OffsetDateTime::now_utc();
    let envelope = Envelope {
        mail_from: message.mail_from.clone(),
        rcpt_to: message.rcpt_to.clone(),
        client_ip: message.client_ip,
        helo: message.helo.clone(),
    };
    let submission = message.authenticated_user.is_some();
    let raw = rebuild(&message, gateway.hostname(), now);
    let job_envelope = envelope.clone();
    let analysis = gateway.run_analysis(move |engine| {
        let analysis = if submission {
            engine.analyse_submission(&job_envelope, &raw, When::At(now))
        } else {
            engine.analyse(&job_envelope, &raw, When::At(now))
        };
        (analysis, raw)
    });
    let analysed = tokio::time::timeout(
        limits.analysis_timeout,
        with_progress(stream, limits.progress_interval, analysis),
    )
    .await;
    let (analysis, raw) = match analysed {
        Ok(result) => match result? {
            Some(done) => done,
            None => return Ok((tempfail(), None)),
        },
        Err(_) => {
            // NOTE: the blocking thread cannot be cancelled; it finishes in
            // the background while the MTA already has its reply.
            tracing::error!(
                queue_id,
                sender = %envelope.mail_from,
                timeout = ?limits.analysis_timeout,
                "analysis timed out, replying 451"
            );
            return Ok((tempfail(), None));
        }
    };

    // Act on the verdict.
    let verdict = &analysis.verdict;
    let (decision, outcome, result) = match verdict.action {
        Action::Deliver | Action::Tag => {
            let headers = if submission {
                Vec::new()
            } else {
                verdict_headers(verdict)
            };
            (
                Decision::Accept { headers },
                Some(Outcome::Delivered),
                "accepted".to_owned(),
            )
        }
        Action::Hold => {
            let held = with_progress(
                stream,
                limits.progress_interval,
                hold(gateway, verdict, raw),
            );
            match held.await? {
                Some(id) => (
                    Decision::Discard,
                    Some(Outcome::Held),
                    format!("held as {id}"),
                ),
                None => (tempfail(), None, "deferred".to_owned()),
            }
        }
        Action::Reject => (
            Decision::Reject {
                reply: REJECT_REPLY.to_owned(),
            },
            None,
            "rejected".to_owned(),
        ),
    };
    log_decision(verdict, &result);
    // NOTE: accepted mail is learned once the reply is sent, but the MTA
    // queues it only afterwards; a queue failure there leaves it learned.
    let learning = outcome.map(|outcome| (analysis, outcome));
    Ok((decision, learning))
}

/// Awaits `work`, sending a progress packet every `interval` meanwhile.
async fn with_progress<T>(
    stream: &mut TcpStream,
    interval: Duration,
    work: impl Future<Output = T>,
) -> Result<T, ConnectionError> {
    tokio::pin!(work);
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    loop {
        tokio::select! {
            done = &mut work => return Ok(done),
            _ = ticks.tick() => {
                stream.write_all(&Response::Progress.to_bytes()).await?;
            }
        }
    }
}

/// Writes a held message to the quarantine and returns its id once the write is durable.
async fn hold(
    gateway: &Gateway,
    verdict: &Verdict,
    raw: Vec<u8>,
) -> Option<gatehouse_quarantine::QuarantineId> {
    let quarantine = gateway.quarantine().clone();
    let verdict = verdict.clone();
    match tokio::task::spawn_blocking(move || quarantine.hold(&verdict, &raw)).await {
        Ok(Ok(id)) => Some(id),
        Ok(Err(err)) => {
            tracing::error!(error = %err, "quarantine write failed, replying 451");
            None
        }
        Err(err) => {
            tracing::error!(error = %err, "quarantine write failed, replying 451");
            None
        }
    }
}

fn tempfail() -> Decision {
    Decision::Tempfail {
        reply: TEMPFAIL_REPLY.to_owned(),
    }
}

/// Returns the `X-Gatehouse-*` fields added to accepted mail.
pub fn verdict_headers(verdict: &Verdict) -> Vec<(String, String)> {
    let action = match verdict.action {
        Action::Deliver => "deliver",
        Action::Tag => "tag",
        Action::Hold => "hold",
        Action::Reject => "reject",
    };
    let signals: Vec<&str> = verdict
        .signals
        .iter()
        .map(|signal| signal.id.as_str())
        .collect();
    let signals = if signals.is_empty() {
        "none".to_owned()
    } else {
        signals.join(", ")
    };
    // A sum of weights can be -0.0, which would print as "-0.0".
    let score = if verdict.score == 0.0 {
        0.0
    } else {
        verdict.score
    };
    vec![
        ("X-Gatehouse-Action".to_owned(), action.to_owned()),
        ("X-Gatehouse-Score".to_owned(), format!("{score:.1}")),
        ("X-Gatehouse-Signals".to_owned(), signals),
        ("X-Gatehouse-Id".to_owned(), verdict.id.clone()),
    ]
}

/// Puts a Received field for this front on top of the message, as the SMTP
/// proxy does, so held mail keeps its trace (RFC 5321 §4.4). The MTA's own
/// Received field is never passed to milters.
pub fn rebuild(message: &Message, hostname: &str, now: OffsetDateTime) -> Vec<u8> {
    let helo = message.helo.as_deref().unwrap_or("unknown");
    let client_name = clean(&message.client_name);
    let client = match message.client_ip {
        Some(ip) if client_name.is_empty() || client_name.starts_with('[') => format!("[{ip}]"),
        Some(ip) => format!("{client_name} [{ip}]"),
        None => "unknown".to_owned(),
    };
    let by = message.mta_hostname.as_deref().unwrap_or(hostname);
    let id = message
        .queue_id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::now_v7().simple().to_string());
    let date = now
        .format(&Rfc2822)
        .unwrap_or_else(|_| "Thu, 01 Jan 1970 00:00:00 +0000".to_owned());
    let mut header = format!(
        "Received: from {} ({})\r\n\tby {} (Gatehouse milter) id {}",
        clean(helo),
        client,
        clean(by),
        clean(&id)
    );
    if let [recipient] = message.rcpt_to.as_slice() {
        header.push_str(&format!("\r\n\tfor <{}>", clean(recipient)));
    }
    header.push_str(&format!("; {date}\r\n"));

    let mut raw = Vec::with_capacity(header.len() + message.content.len());
    raw.extend_from_slice(header.as_bytes());
    raw.extend_from_slice(&message.content);
    raw
}

/// Keeps printable ASCII other than parentheses, so a client's HELO cannot
/// break the Received field or open a comment.
fn clean(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_graphic() && !matches!(c, '(' | ')'))
        .take(255)
        .collect()
}
