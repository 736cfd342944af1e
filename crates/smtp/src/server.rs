//! The tokio side of the proxy: accept connections, read and write sockets,
//! talk to the upstream MTA, start TLS, time out, shut down.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::Instrument;

use crate::data::{ChunkReader, DataError, DataEvent, DataReader};
use crate::delivery::Delivery;
use crate::gateway::Gateway;
use crate::learner::{LearnQueue, Learner};
use crate::line::LineReader;
use crate::reply::Reply;
use crate::session::{Action, Features, MailRequest, RcptRequest, Session};
use crate::upstream::{ClientInfo, UpstreamSession};

/// Interval at which the server looks for releases it has not learned and
/// closes upstream connections idle for too long.
const HOUSEKEEPING: Duration = Duration::from_secs(5);

/// Bytes read from the socket at once.
const READ_CHUNK: usize = 64 * 1024;

/// Runs the proxy on a bound listener until `shutdown` completes.
///
/// After shutdown the listener stops accepting and sessions waiting for a
/// command get 421. Sessions in the middle of a message have
/// `shutdown_grace` to finish, and whatever is left then is cut off. Its
/// client never got a positive reply, so it still owns the message.
pub async fn serve(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let limits = gateway.limits().clone();
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let (closing_sender, closing) = watch::channel(false);
    let mut sessions = JoinSet::new();
    tracing::info!(listen = %listener.local_addr()?, "SMTP proxy started");
    let housekeeping = tokio::spawn(housekeeping(Arc::clone(&gateway), closing.clone()));
    let learner = Learner::start(Arc::clone(&gateway));

    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
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
                let gateway = Arc::clone(&gateway);
                match Arc::clone(&connections).try_acquire_owned() {
                    Ok(permit) => {
                        let closing = closing.clone();
                        let learn_queue = learner.queue();
                        sessions.spawn(async move {
                            handle(stream, peer, gateway, learn_queue, closing).await;
                            drop(permit);
                        });
                    }
                    Err(_) => {
                        tracing::warn!(%peer, max_connections = limits.max_connections, "connection refused: too many connections");
                        gateway.metrics().connection_refused();
                        sessions.spawn(async move {
                            let mut stream = stream;
                            let reply = Reply::too_many_connections(gateway.hostname());
                            let _ = stream.write_all(&reply.to_wire()).await;
                        });
                    }
                }
            }
        }
    }

    drop(listener);
    tracing::info!(open_sessions = sessions.len(), "SMTP proxy stopping");
    let _ = closing_sender.send(true);
    let _ = housekeeping.await;
    let drained = tokio::time::timeout(limits.shutdown_grace, async {
        while sessions.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            cut_off = sessions.len(),
            "sessions still open after the shutdown grace period"
        );
        sessions.shutdown().await;
    }
    learner.finish().await;
    let mut quits: JoinSet<()> = gateway
        .upstream_pool()
        .drain()
        .into_iter()
        .map(UpstreamSession::quit)
        .collect();
    while quits.join_next().await.is_some() {}
    tracing::info!("SMTP proxy stopped");
    Ok(())
}

/// Learns releases made by `gatehouse quarantine release` while the server
/// has the graph store open, and closes upstream connections idle for too
/// long, at start and then every [`HOUSEKEEPING`].
async fn housekeeping(gateway: Arc<Gateway>, mut closing: watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(HOUSEKEEPING);
    loop {
        tokio::select! {
            _ = interval.tick() => {
                for upstream in gateway.upstream_pool().expired() {
                    tokio::spawn(upstream.quit());
                }
                gateway.learn_releases().await;
            }
            _ = closing.changed() => return,
        }
    }
}

async fn handle(
    stream: TcpStream,
    peer: SocketAddr,
    gateway: Arc<Gateway>,
    learn_queue: LearnQueue,
    closing: watch::Receiver<bool>,
) {
    let span = tracing::info_span!("session", id = %uuid::Uuid::now_v7().simple(), %peer);
    async move {
        tracing::debug!("connected");
        // Every write is a whole reply or a batch of them, so Nagle's
        // algorithm could only hold a reply back.
        let _ = stream.set_nodelay(true);
        gateway.metrics().connection_opened();
        let metrics = Arc::clone(gateway.metrics());
        match Connection::new(stream, peer, gateway, learn_queue, closing)
            .run()
            .await
        {
            Ok(()) => tracing::debug!("disconnected"),
            Err(err) => tracing::debug!(error = %err, "connection ended with an error"),
        }
        metrics.connection_closed();
    }
    .instrument(span)
    .await;
}

/// The client's socket, before and after STARTTLS.
enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    /// The socket was handed to the TLS handshake, which failed.
    Closed,
}

fn not_connected() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::NotConnected, "connection closed")
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
            Stream::Tls(stream) => Pin::new(stream.as_mut()).poll_read(cx, buf),
            Stream::Closed => Poll::Ready(Err(not_connected())),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(stream) => Pin::new(stream).poll_write(cx, buf),
            Stream::Tls(stream) => Pin::new(stream.as_mut()).poll_write(cx, buf),
            Stream::Closed => Poll::Ready(Err(not_connected())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(stream) => Pin::new(stream).poll_flush(cx),
            Stream::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(cx),
            Stream::Closed => Poll::Ready(Err(not_connected())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(stream) => Pin::new(stream).poll_shutdown(cx),
            Stream::Tls(stream) => Pin::new(stream.as_mut()).poll_shutdown(cx),
            Stream::Closed => Poll::Ready(Ok(())),
        }
    }
}

/// The BDAT chunk being read.
enum Chunk {
    /// Bytes still to read into the message, of `size`; `last` ends the message.
    Keep {
        size: usize,
        left: usize,
        last: bool,
    },
    /// Bytes still to read and drop, then the reply to send.
    Drop { left: usize, reply: Reply },
}

/// What one pass over the buffered input achieved.
enum Step {
    /// Something was handled; look at the buffer again.
    Progress,
    /// The buffer contains no complete unit, so read from the socket.
    NeedInput,
    /// The session ended.
    Closed,
}

/// One client connection: the sans-I/O session with its socket and its upstream.
struct Connection {
    stream: Stream,
    /// The address the connection comes from, whatever XFORWARD names.
    peer: IpAddr,
    gateway: Arc<Gateway>,
    learn_queue: LearnQueue,
    closing: watch::Receiver<bool>,
    session: Session,
    lines: LineReader,
    data: Option<DataReader>,
    bdat: Option<ChunkReader>,
    chunk: Option<Chunk>,
    /// The mirrored session with the upstream MTA, opened at the first RCPT.
    upstream: Option<UpstreamSession>,
    /// The client's MAIL, accepted here and not yet sent upstream. It goes
    /// with the first RCPT, so one round trip to the upstream serves both.
    deferred_mail: Option<MailRequest>,
    /// The upstream connection failed during this transaction. Recipients
    /// it accepted are gone with it, so the rest of the transaction gets
    /// 451 without a new connection: RCPT at once, the message at its end.
    upstream_lost: bool,
    input: Vec<u8>,
    output: Vec<u8>,
    /// The buffer each socket read fills before its bytes join `input`.
    read_buffer: Box<[u8]>,
    deadline: Instant,
    /// When the session last made progress: a command handled or message
    /// text taken. Outside DATA and BDAT chunks the next command must be
    /// complete within `command_timeout` of it.
    last_progress: Instant,
}

impl Connection {
    fn new(
        stream: TcpStream,
        peer: SocketAddr,
        gateway: Arc<Gateway>,
        learn_queue: LearnQueue,
        closing: watch::Receiver<bool>,
    ) -> Connection {
        let limits = gateway.limits().clone();
        let features = Features {
            starttls: gateway.tls().is_some(),
            xforward: gateway.xforward_hosts().contains(peer.ip()),
        };
        let session = Session::new(gateway.hostname(), peer.ip(), limits.clone(), features);
        Connection {
            stream: Stream::Plain(stream),
            peer: peer.ip(),
            learn_queue,
            closing,
            session,
            lines: LineReader::new(limits.max_command_line),
            data: None,
            bdat: None,
            chunk: None,
            upstream: None,
            deferred_mail: None,
            upstream_lost: false,
            input: Vec::with_capacity(4096),
            output: Vec::new(),
            read_buffer: vec![0u8; READ_CHUNK].into_boxed_slice(),
            deadline: Instant::now() + limits.session_timeout,
            last_progress: Instant::now(),
            gateway,
        }
    }

    async fn run(mut self) -> std::io::Result<()> {
        self.output
            .extend_from_slice(&self.session.greeting().to_wire());
        let result = self.run_steps().await;
        // An upstream connection outside a transaction serves a later session.
        if let Some(upstream) = self.upstream.take()
            && let Some(upstream) = self.gateway.upstream_pool().put(upstream)
        {
            upstream.quit().await;
        }
        result
    }

    async fn run_steps(&mut self) -> std::io::Result<()> {
        loop {
            // Handle everything already buffered; pipelined commands get their
            // replies batched into one write.
            match self.step().await? {
                Step::Progress => {
                    self.last_progress = Instant::now();
                    continue;
                }
                Step::Closed => return Ok(()),
                Step::NeedInput => {}
            }
            self.flush().await?;
            if !self.read().await? {
                return Ok(());
            }
        }
    }

    async fn step(&mut self) -> std::io::Result<Step> {
        if self.chunk.is_some() {
            return Ok(self.step_chunk().await);
        }
        if self.data.is_some() {
            return Ok(self.step_data().await);
        }
        let Some(line) = self.lines.next_line(&mut self.input) else {
            return Ok(Step::NeedInput);
        };
        match self.session.command(line) {
            Action::Reply(reply) => self.output.extend_from_slice(&reply.to_wire()),
            Action::Mail(request) => {
                let reply = self.mail(&request);
                let reply = self.session.mail_replied(reply);
                self.output.extend_from_slice(&reply.to_wire());
            }
            Action::Rcpt(request) => {
                let reply = self.rcpt(&request).await;
                let reply = self.session.rcpt_replied(reply);
                self.output.extend_from_slice(&reply.to_wire());
            }
            Action::StartData(reply) => {
                self.output.extend_from_slice(&reply.to_wire());
                self.data = Some(DataReader::new(self.gateway.limits().max_message_bytes));
            }
            Action::Chunk { size, last } => {
                if self.bdat.is_none() {
                    self.bdat = Some(ChunkReader::new(self.gateway.limits().max_message_bytes));
                }
                self.chunk = Some(Chunk::Keep {
                    size,
                    left: size,
                    last,
                });
            }
            Action::DiscardChunk { size, reply } => {
                self.chunk = Some(Chunk::Drop { left: size, reply });
            }
            Action::StartTls(reply) => {
                self.output.extend_from_slice(&reply.to_wire());
                self.flush().await?;
                self.start_tls().await?;
            }
            Action::Close(reply) => {
                self.close(reply).await?;
                return Ok(Step::Closed);
            }
        }
        Ok(Step::Progress)
    }

    /// Starts TLS after the 220 went out.
    ///
    /// Bytes the client pipelined after STARTTLS arrived in plain text, where
    /// anyone on the path could have inserted them, so they are dropped
    /// (RFC 3207 §4.2, CVE-2011-0411).
    async fn start_tls(&mut self) -> std::io::Result<()> {
        self.input.clear();
        let Some(acceptor) = self.gateway.tls().cloned() else {
            return Err(not_connected());
        };
        let Stream::Plain(tcp) = std::mem::replace(&mut self.stream, Stream::Closed) else {
            return Err(not_connected());
        };
        let timeout = self.gateway.limits().command_timeout;
        match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
            Ok(Ok(tls)) => {
                self.stream = Stream::Tls(Box::new(tls));
                self.session.tls_started();
                tracing::debug!("TLS started");
                Ok(())
            }
            Ok(Err(err)) => {
                tracing::info!(error = %err, "TLS handshake failed");
                Err(err)
            }
            Err(_) => {
                tracing::info!("TLS handshake timed out");
                Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "TLS handshake timed out",
                ))
            }
        }
    }

    /// Accepts MAIL and keeps it for the first RCPT, which carries it to
    /// the upstream MTA. Without an upstream, MAIL is accepted here.
    ///
    /// A rejection of MAIL by the upstream reaches the client as the reply
    /// to RCPT, as Postfix reports its sender restrictions by default
    /// (`smtpd_delay_reject`).
    fn mail(&mut self, request: &MailRequest) -> Reply {
        self.upstream_lost = false;
        if matches!(self.gateway.delivery(), Delivery::Upstream(_)) {
            self.deferred_mail = Some(request.clone());
        }
        Reply::new(250, [2, 1, 0], "Ok")
    }

    /// Sends the deferred MAIL with the first RCPT, opening the upstream
    /// connection first when none is open, and returns the reply for the
    /// client's RCPT. When the upstream rejects MAIL, that rejection is the
    /// reply, and MAIL is sent again with the next RCPT.
    ///
    /// A connection kept from an earlier transaction or client session may
    /// have been closed by the upstream in between (Postfix's smtpd_timeout
    /// is 300 s), so a failure on it is retried once on a new connection.
    async fn mail_and_rcpt(&mut self, mail: MailRequest, rcpt: &RcptRequest) -> Reply {
        if self
            .upstream
            .as_ref()
            .is_some_and(|session| !session.is_usable())
        {
            tracing::debug!("kept upstream connection closed by the upstream; reconnecting");
            self.upstream = None;
        }
        let mut use_pool = true;
        loop {
            let reused = if self.upstream.is_some() {
                true
            } else {
                match self.open_upstream(use_pool).await {
                    Ok(from_pool) => from_pool,
                    Err(err) => return self.upstream_failed(&err),
                }
            };
            let Some(session) = self.upstream.as_mut() else {
                return Reply::local_error();
            };
            let sent = session
                .mail_and_rcpt((&mail.from, &mail.params), (&rcpt.to, &rcpt.params))
                .await;
            match sent {
                // After a 421 the upstream closes the connection. A kept
                // connection may have been about to close, so try a new one.
                Ok((_, Some(reply)) | (reply, None)) if reply.code == 421 && reused => {
                    tracing::debug!(
                        code = reply.code,
                        "kept upstream connection closed by the upstream; reconnecting"
                    );
                    self.upstream = None;
                    use_pool = false;
                }
                Ok((_, Some(reply)) | (reply, None)) if reply.code == 421 => {
                    return self.upstream_closed(&reply);
                }
                Ok((_, Some(accepted))) => return accepted,
                Ok((rejected, None)) => {
                    self.deferred_mail = Some(mail);
                    return rejected;
                }
                Err(err) if reused => {
                    tracing::debug!(error = %err, "kept upstream connection failed; reconnecting");
                    self.upstream = None;
                    use_pool = false;
                }
                Err(err) => return self.upstream_failed(&err),
            }
        }
    }

    /// Takes a kept upstream connection and names this client on it, or
    /// opens a new connection when none is kept, the kept ones fail, or
    /// `use_pool` is false. Returns whether the connection was kept.
    async fn open_upstream(
        &mut self,
        use_pool: bool,
    ) -> Result<bool, crate::delivery::DeliveryError> {
        let Delivery::Upstream(upstream) = self.gateway.delivery() else {
            return Ok(false);
        };
        let client = ClientInfo {
            ip: self.session.client_ip(),
            helo: self.session.helo().map(str::to_owned),
            protocol: if self.session.is_esmtp() {
                "ESMTP"
            } else {
                "SMTP"
            },
        };
        while use_pool && let Some(mut session) = self.gateway.upstream_pool().take() {
            match session
                .switch_client(&upstream.hostname, client.clone())
                .await
            {
                Ok(()) => {
                    self.upstream = Some(session);
                    return Ok(true);
                }
                // The upstream may have closed it meanwhile; drop it and try the next.
                Err(err) => tracing::debug!(error = %err, "kept upstream connection failed"),
            }
        }
        let session = UpstreamSession::open(
            &upstream.address,
            &upstream.hostname,
            &upstream.timeouts,
            Some(client),
        )
        .await?;
        self.upstream = Some(session);
        Ok(false)
    }

    /// Asks the upstream MTA to accept one recipient; without an upstream it
    /// is accepted here. A recipient this client may not relay to is
    /// rejected first.
    async fn rcpt(&mut self, request: &RcptRequest) -> Reply {
        if !self.gateway.may_relay(self.peer, &request.to) {
            tracing::info!(
                client = %self.session.client_ip(),
                recipient = %request.to,
                "recipient rejected: not in a local domain, and the client may not relay"
            );
            return Reply::new(
                554,
                [5, 7, 1],
                format!("<{}>: Relay access denied", request.to),
            );
        }
        if !matches!(self.gateway.delivery(), Delivery::Upstream(_)) {
            return Reply::new(250, [2, 1, 5], "Ok");
        }
        if self.upstream_lost {
            return Reply::upstream_unavailable();
        }
        if let Some(mail) = self.deferred_mail.take() {
            return self.mail_and_rcpt(mail, request).await;
        }
        let Some(session) = self.upstream.as_mut() else {
            return Reply::local_error();
        };
        match session.rcpt(&request.to, &request.params).await {
            Ok(reply) if reply.code == 421 => self.upstream_closed(&reply),
            Ok(reply) => reply,
            Err(err) => self.upstream_failed(&err),
        }
    }

    /// Handles the upstream's 421, after which it closes the connection, as
    /// a failed connection. Passed on, the 421 would tell the client that
    /// the proxy closes the session.
    fn upstream_closed(&mut self, reply: &Reply) -> Reply {
        tracing::warn!(code = reply.code, reply = %reply.lines.join(" "), "upstream closed the session, replying 451");
        self.lose_upstream()
    }

    /// Drops the upstream connection after an error and returns the 451 for the client.
    fn upstream_failed(&mut self, err: &crate::delivery::DeliveryError) -> Reply {
        tracing::warn!(error = %err, "upstream failed, replying 451");
        self.lose_upstream()
    }

    /// Drops the upstream connection and returns the 451 for the client.
    /// The client's transaction stays open, so every later RCPT gets 451
    /// too, and so does the message of recipients accepted before. A 503
    /// there would make the client bounce them.
    fn lose_upstream(&mut self) -> Reply {
        self.gateway.metrics().upstream_error();
        self.upstream = None;
        self.upstream_lost = true;
        Reply::upstream_unavailable()
    }

    /// Feeds buffered input to the DATA reader.
    async fn step_data(&mut self) -> Step {
        let Some(reader) = self.data.as_mut() else {
            return Step::Progress;
        };
        let (consumed, result) = match reader.feed(&self.input) {
            DataEvent::NeedMore => {
                self.input.clear();
                return Step::NeedInput;
            }
            DataEvent::Done { consumed, result } => (consumed, result),
        };
        self.input.drain(..consumed);
        self.data = None;
        self.finish_message(result).await;
        Step::Progress
    }

    /// Feeds buffered input to the current BDAT chunk.
    async fn step_chunk(&mut self) -> Step {
        let Some(chunk) = self.chunk.as_mut() else {
            return Step::Progress;
        };
        let left = match chunk {
            Chunk::Keep { left, .. } | Chunk::Drop { left, .. } => left,
        };
        let take = (*left).min(self.input.len());
        *left -= take;
        let done = *left == 0;
        if let (Chunk::Keep { .. }, Some(reader)) = (&*chunk, self.bdat.as_mut()) {
            reader.feed(&self.input[..take]);
        }
        self.input.drain(..take);
        if !done {
            return Step::NeedInput;
        }

        match self.chunk.take() {
            Some(Chunk::Drop { reply, .. }) => {
                self.output.extend_from_slice(&reply.to_wire());
            }
            Some(Chunk::Keep { last: true, .. }) => {
                let result = match self.bdat.take() {
                    Some(reader) => reader.finish(),
                    None => Ok(Vec::new()),
                };
                self.finish_message(result).await;
            }
            Some(Chunk::Keep {
                last: false, size, ..
            }) => {
                let error = self.bdat.as_ref().and_then(ChunkReader::error);
                match error {
                    Some(err) => {
                        // The transaction ends here; later chunks are refused with 503.
                        self.bdat = None;
                        self.session.abort_transaction();
                        self.refused(err);
                    }
                    None => {
                        let reply = Reply::new(250, [2, 0, 0], format!("{size} octets received"));
                        self.output.extend_from_slice(&reply.to_wire());
                    }
                }
            }
            None => {}
        }
        Step::Progress
    }

    /// Replies to a complete message: analysed and acted on, or refused.
    async fn finish_message(&mut self, result: Result<Vec<u8>, DataError>) {
        let Some(transaction) = self.session.finish_data() else {
            return;
        };
        match result {
            Ok(message) => {
                // Replies to earlier pipelined commands go out before the analysis wait.
                if self.flush().await.is_err() {
                    return;
                }
                let (reply, learning) = self
                    .gateway
                    .accept(transaction, message, &mut self.upstream)
                    .await;
                self.output.extend_from_slice(&reply.to_wire());
                // The graph learns in the background, after the reply goes out.
                if let Some(learning) = learning {
                    self.learn_queue.push(learning).await;
                }
            }
            Err(err) => {
                tracing::info!(error = %err, sender = %transaction.mail_from, "message rejected");
                if let Some(upstream) = self.upstream.as_mut()
                    && upstream.reset().await.is_err()
                {
                    self.upstream = None;
                }
                self.refused(err);
            }
        }
    }

    fn refused(&mut self, err: DataError) {
        self.gateway.metrics().message_refused();
        self.output
            .extend_from_slice(&data_error_reply(err).to_wire());
    }

    /// Reads more input; returns false when the connection should end.
    async fn read(&mut self) -> std::io::Result<bool> {
        let limits = self.gateway.limits();
        // Message text only has to keep arriving, but a command line must
        // arrive whole: a client that sends one byte per read timeout would
        // otherwise hold its connection slot until the session deadline.
        let in_message = self.data.is_some() || self.chunk.is_some();
        let timeout_from = if in_message {
            Instant::now()
        } else {
            self.last_progress
        };
        let wait_until = self.deadline.min(timeout_from + limits.command_timeout);
        // At shutdown a session between commands replies 421, while one inside
        // a message gets the grace period to finish it.
        let may_close = self.data.is_none() && self.chunk.is_none() && self.bdat.is_none();
        let read = tokio::select! {
            read = tokio::time::timeout_at(wait_until, self.stream.read(&mut self.read_buffer)) => read,
            _ = self.closing.changed(), if may_close => {
                let reply = Reply::shutting_down(self.gateway.hostname());
                self.close(reply).await?;
                return Ok(false);
            }
        };
        match read {
            Err(_) => {
                tracing::info!("session timed out");
                let reply = Reply::timed_out(self.gateway.hostname());
                self.close(reply).await?;
                Ok(false)
            }
            Ok(Ok(0)) => Ok(false),
            Ok(Ok(count)) => {
                self.input.extend_from_slice(&self.read_buffer[..count]);
                Ok(true)
            }
            Ok(Err(err)) => Err(err),
        }
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        if self.output.is_empty() {
            return Ok(());
        }
        let timeout = self.gateway.limits().command_timeout;
        let written = tokio::time::timeout(timeout, async {
            self.stream.write_all(&self.output).await?;
            self.stream.flush().await
        })
        .await;
        self.output.clear();
        match written {
            Ok(result) => result,
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "client did not read the reply",
            )),
        }
    }

    async fn close(&mut self, reply: Reply) -> std::io::Result<()> {
        self.session.close();
        self.output.extend_from_slice(&reply.to_wire());
        self.flush().await?;
        self.stream.shutdown().await
    }
}

fn data_error_reply(err: DataError) -> Reply {
    match err {
        DataError::BareLineEnding => Reply::new(
            550,
            [5, 6, 0],
            "Message contains a bare CR or LF; lines must end with CRLF",
        ),
        DataError::TooLarge { max_bytes } => Reply::new(
            552,
            [5, 3, 4],
            format!("Message exceeds the maximum size of {max_bytes} bytes"),
        ),
    }
}
