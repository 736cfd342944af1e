//! The tokio side of the proxy: accept connections, read and write sockets, time out, shut down.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::Instrument;

use crate::data::{DataError, DataEvent, DataReader};
use crate::gateway::Gateway;
use crate::line::LineReader;
use crate::reply::Reply;
use crate::session::{Action, Session};

/// Interval at which the server looks for releases it has not learned.
const RELEASE_POLL: Duration = Duration::from_secs(5);

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
    let releases = tokio::spawn(learn_releases(Arc::clone(&gateway), closing.clone()));

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
                        sessions.spawn(async move {
                            handle(stream, peer, gateway, closing).await;
                            drop(permit);
                        });
                    }
                    Err(_) => {
                        tracing::warn!(%peer, max_connections = limits.max_connections, "connection refused: too many connections");
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
    let _ = releases.await;
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
    tracing::info!("SMTP proxy stopped");
    Ok(())
}

/// Learns releases made by `gatehouse quarantine release` while the server
/// has the graph store open, at start and then every [`RELEASE_POLL`].
async fn learn_releases(gateway: Arc<Gateway>, mut closing: watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(RELEASE_POLL);
    loop {
        tokio::select! {
            _ = interval.tick() => gateway.learn_releases().await,
            _ = closing.changed() => return,
        }
    }
}

async fn handle(
    stream: TcpStream,
    peer: SocketAddr,
    gateway: Arc<Gateway>,
    closing: watch::Receiver<bool>,
) {
    let span = tracing::info_span!("session", id = %uuid::Uuid::now_v7().simple(), %peer);
    async move {
        tracing::debug!("connected");
        match Connection::new(stream, peer, gateway, closing).run().await {
            Ok(()) => tracing::debug!("disconnected"),
            Err(err) => tracing::debug!(error = %err, "connection ended with an error"),
        }
    }
    .instrument(span)
    .await;
}

/// One client connection: the sans-I/O session with its socket.
struct Connection {
    stream: TcpStream,
    gateway: Arc<Gateway>,
    closing: watch::Receiver<bool>,
    session: Session,
    lines: LineReader,
    data: Option<DataReader>,
    input: Vec<u8>,
    output: Vec<u8>,
    /// The buffer each socket read fills before its bytes join `input`.
    chunk: Box<[u8]>,
    deadline: Instant,
}

impl Connection {
    fn new(
        stream: TcpStream,
        peer: SocketAddr,
        gateway: Arc<Gateway>,
        closing: watch::Receiver<bool>,
    ) -> Connection {
        let limits = gateway.limits().clone();
        let session = Session::new(gateway.hostname(), peer.ip(), limits.clone());
        Connection {
            stream,
            closing,
            session,
            lines: LineReader::new(limits.max_command_line),
            data: None,
            input: Vec::with_capacity(4096),
            output: Vec::new(),
            chunk: vec![0u8; READ_CHUNK].into_boxed_slice(),
            deadline: Instant::now() + limits.session_timeout,
            gateway,
        }
    }

    async fn run(mut self) -> std::io::Result<()> {
        self.output
            .extend_from_slice(&self.session.greeting().to_wire());
        loop {
            // Handle everything already buffered; pipelined commands get their
            // replies batched into one write.
            if self.data.is_some() {
                if self.step_data().await {
                    continue;
                }
            } else if let Some(line) = self.lines.next_line(&mut self.input) {
                match self.session.command(line) {
                    Action::Reply(reply) => self.output.extend_from_slice(&reply.to_wire()),
                    Action::StartData(reply) => {
                        self.output.extend_from_slice(&reply.to_wire());
                        self.data = Some(DataReader::new(self.gateway.limits().max_message_bytes));
                    }
                    Action::Close(reply) => return self.close(reply).await,
                }
                continue;
            }

            self.flush().await?;
            if !self.read().await? {
                return Ok(());
            }
        }
    }

    /// Feeds buffered input to the DATA reader; returns true when the message ended.
    async fn step_data(&mut self) -> bool {
        let Some(reader) = self.data.as_mut() else {
            return false;
        };
        let (consumed, result) = match reader.feed(&self.input) {
            DataEvent::NeedMore => {
                self.input.clear();
                return false;
            }
            DataEvent::Done { consumed, result } => (consumed, result),
        };
        self.input.drain(..consumed);
        self.data = None;
        let Some(transaction) = self.session.finish_data() else {
            return true;
        };

        let reply = match result {
            Ok(message) => {
                // Replies to earlier pipelined commands go out before the analysis wait.
                if self.flush().await.is_err() {
                    return true;
                }
                self.gateway.accept(transaction, message).await
            }
            Err(err) => {
                tracing::info!(error = %err, sender = %transaction.mail_from, "message rejected");
                data_error_reply(err)
            }
        };
        self.output.extend_from_slice(&reply.to_wire());
        true
    }

    /// Reads more input; returns false when the connection should end.
    async fn read(&mut self) -> std::io::Result<bool> {
        let limits = self.gateway.limits();
        let wait_until = self.deadline.min(Instant::now() + limits.command_timeout);
        // At shutdown a session between commands replies 421, while one inside
        // DATA gets the grace period to finish its message.
        let may_close = self.data.is_none();
        let read = tokio::select! {
            read = tokio::time::timeout_at(wait_until, self.stream.read(&mut self.chunk)) => read,
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
                self.input.extend_from_slice(&self.chunk[..count]);
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
        let written = tokio::time::timeout(timeout, self.stream.write_all(&self.output)).await;
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
