//! The SMTP clients of the driver: one that sends messages and classifies
//! each reply to the final dot, and the slow-loris client that occupies a
//! connection slot while sending as little as it can.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// Time the client waits for each reply. The proxy replies to the final dot
/// within its analysis timeout plus the upstream's reply time, so this is longer.
const REPLY_TIMEOUT: Duration = Duration::from_secs(180);

/// One SMTP reply: the code and the text of its last line.
#[derive(Debug, Clone)]
pub struct Reply {
    pub code: u16,
    pub text: String,
}

/// How a transaction ended, from the client's side.
#[derive(Debug, Clone)]
pub enum Sent {
    /// 250 to the final dot: the proxy took responsibility for the message.
    Accepted { latency: Duration },
    /// A 4xx reply at any step: the client keeps the message and retries.
    Deferred(Reply),
    /// A 5xx reply at any step: the message is refused for good.
    Rejected(Reply),
    /// The connection failed or ended before the reply to the final dot.
    Broken,
}

/// A connection to the proxy after its greeting and EHLO.
pub struct Client {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

/// Why no session could be opened.
#[derive(Debug)]
pub enum Unavailable {
    /// The proxy greeted with a 4xx reply, such as 421 for too many connections.
    Refused(Reply),
    /// Connecting, the greeting or EHLO failed.
    Failed,
}

impl Client {
    /// Connects, reads the greeting and sends EHLO.
    pub async fn open(address: SocketAddr) -> Result<Client, Unavailable> {
        let stream = tokio::time::timeout(REPLY_TIMEOUT, TcpStream::connect(address))
            .await
            .map_err(|_| Unavailable::Failed)?
            .map_err(|_| Unavailable::Failed)?;
        let (reader, writer) = stream.into_split();
        let mut client = Client {
            reader: BufReader::new(reader),
            writer,
        };
        let greeting = client.reply().await.ok_or(Unavailable::Failed)?;
        if greeting.code != 220 {
            return Err(Unavailable::Refused(greeting));
        }
        match client.command("EHLO client.reliability.test").await {
            Some(reply) if reply.code == 250 => Ok(client),
            Some(reply) => Err(Unavailable::Refused(reply)),
            None => Err(Unavailable::Failed),
        }
    }

    /// Runs one transaction: MAIL, every RCPT, DATA, the message, the final dot.
    ///
    /// `stuffed` is the dot-stuffed message with its final dot. The latency
    /// counts from MAIL to the reply to the final dot.
    pub async fn send(&mut self, mail_from: &str, rcpt_to: &[String], stuffed: &[u8]) -> Sent {
        let started = Instant::now();
        let mail = format!("MAIL FROM:<{mail_from}> BODY=8BITMIME");
        if let Some(failed) = self.expect(&mail, 250).await {
            return failed;
        }
        for rcpt in rcpt_to {
            if let Some(failed) = self.expect(&format!("RCPT TO:<{rcpt}>"), 250).await {
                return failed;
            }
        }
        if let Some(failed) = self.expect("DATA", 354).await {
            return failed;
        }
        if self.writer.write_all(stuffed).await.is_err() {
            return Sent::Broken;
        }
        match self.reply().await {
            Some(reply) if reply.code == 250 => Sent::Accepted {
                latency: started.elapsed(),
            },
            Some(reply) => classify(reply),
            None => Sent::Broken,
        }
    }

    /// Resets the transaction after a refused step, so the next one starts clean.
    pub async fn reset(&mut self) -> bool {
        matches!(self.command("RSET").await, Some(reply) if reply.code == 250)
    }

    pub async fn quit(mut self) {
        let _ = self.command("QUIT").await;
    }

    /// Sends `line` and returns `None` when the reply is `code`, else how the transaction ended.
    async fn expect(&mut self, line: &str, code: u16) -> Option<Sent> {
        match self.command(line).await {
            Some(reply) if reply.code == code => None,
            Some(reply) => Some(classify(reply)),
            None => Some(Sent::Broken),
        }
    }

    async fn command(&mut self, line: &str) -> Option<Reply> {
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .ok()?;
        self.reply().await
    }

    /// Reads one reply, all its lines; `None` when the connection failed or timed out.
    async fn reply(&mut self) -> Option<Reply> {
        let mut line = String::new();
        loop {
            line.clear();
            let read = tokio::time::timeout(REPLY_TIMEOUT, self.reader.read_line(&mut line))
                .await
                .ok()?
                .ok()?;
            if read == 0 || line.len() < 4 {
                return None;
            }
            let code = line.get(..3)?.parse().ok()?;
            if line.as_bytes()[3] != b'-' {
                return Some(Reply {
                    code,
                    text: line.trim_end().to_owned(),
                });
            }
        }
    }
}

fn classify(reply: Reply) -> Sent {
    if (400..500).contains(&reply.code) {
        Sent::Deferred(reply)
    } else {
        Sent::Rejected(reply)
    }
}

/// How a slow-loris client behaves once greeted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LorisKind {
    /// Sends nothing at all.
    Idle,
    /// Sends one byte of a command line that never ends, every interval.
    Trickle,
}

/// What happened to one slow-loris connection.
#[derive(Debug, Clone)]
pub struct LorisOutcome {
    pub kind: LorisKind,
    /// The proxy greeted with 220, so the connection took a slot.
    pub got_slot: bool,
    /// The proxy closed the connection before the driver gave up on it.
    pub closed_by_proxy: bool,
    /// Time from connecting until the connection ended.
    pub held: Duration,
    /// The proxy's last reply line, such as 421 for a timeout.
    pub last_reply: Option<String>,
}

/// Connects and keeps the connection open with as little traffic as `kind`
/// allows, until the proxy closes it or `give_up` passes.
pub async fn slow_loris(
    address: SocketAddr,
    kind: LorisKind,
    interval: Duration,
    give_up: Instant,
    answered: Arc<AtomicUsize>,
) -> LorisOutcome {
    let started = Instant::now();
    let mut outcome = LorisOutcome {
        kind,
        got_slot: false,
        closed_by_proxy: false,
        held: Duration::ZERO,
        last_reply: None,
    };
    let Ok(mut stream) = TcpStream::connect(address).await else {
        answered.fetch_add(1, Ordering::SeqCst);
        return outcome;
    };
    let mut received = Vec::new();
    let mut buffer = [0u8; 512];
    let mut next_byte = Instant::now() + interval;
    let mut sent = 0usize;
    loop {
        let now = Instant::now();
        if now >= give_up {
            break;
        }
        let wake = next_byte.min(give_up);
        let read = tokio::time::timeout(wake - now, stream.read(&mut buffer)).await;
        match read {
            Ok(Ok(0)) | Ok(Err(_)) => {
                outcome.closed_by_proxy = true;
                break;
            }
            Ok(Ok(count)) => {
                if received.is_empty() {
                    answered.fetch_add(1, Ordering::SeqCst);
                }
                received.extend_from_slice(&buffer[..count]);
                if !outcome.got_slot && received.starts_with(b"220") {
                    outcome.got_slot = true;
                }
            }
            Err(_) if kind == LorisKind::Trickle && Instant::now() >= next_byte => {
                // "EHLO " and then letters: a line that never reaches its end.
                let byte = b"EHLO ".get(sent).copied().unwrap_or(b'a');
                if stream.write_all(&[byte]).await.is_err() {
                    outcome.closed_by_proxy = true;
                    break;
                }
                sent += 1;
                next_byte = Instant::now() + interval;
            }
            Err(_) => next_byte = Instant::now() + interval,
        }
    }
    outcome.held = started.elapsed();
    outcome.last_reply = String::from_utf8_lossy(&received)
        .lines()
        .last()
        .map(str::to_owned);
    outcome
}
