//! The upstream MTA on loopback: it accepts every transaction and records
//! the Message-ID of each message it received whole, before it replies 250
//! to the final dot. It lives in the driver's process, so it keeps its
//! record while `gatehouse serve` is killed and restarted.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::mix;

/// Time the sink waits for the next line before it drops the connection.
const IDLE_TIMEOUT: Duration = Duration::from_secs(600);
/// Maximum line length the sink reads, CRLF included; longer lines end the connection.
const MAX_LINE: usize = 1024 * 1024;

/// What the sink received, shared with its connection tasks.
#[derive(Default)]
struct Record {
    /// Copies received per Message-ID; messages without one count under `""`.
    messages: Mutex<HashMap<String, u32>>,
    open: AtomicUsize,
    peak_open: AtomicUsize,
}

/// A running sink; it stops with the runtime that started it.
pub struct Sink {
    pub address: SocketAddr,
    record: Arc<Record>,
}

impl Sink {
    pub async fn start() -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("sink binds a loopback port");
        let address = listener.local_addr().expect("sink address");
        let record = Arc::new(Record::default());
        let shared = Arc::clone(&record);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    // Out of file descriptors: wait for connections to close.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let record = Arc::clone(&shared);
                tokio::spawn(async move {
                    let open = record.open.fetch_add(1, Ordering::SeqCst) + 1;
                    record.peak_open.fetch_max(open, Ordering::SeqCst);
                    let _ = serve(stream, &record).await;
                    record.open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Sink { address, record }
    }

    /// Returns the copies received per Message-ID.
    pub fn received(&self) -> HashMap<String, u32> {
        self.record.messages.lock().expect("sink record").clone()
    }

    /// Returns the maximum number of connections that were open at once.
    pub fn peak_connections(&self) -> usize {
        self.record.peak_open.load(Ordering::SeqCst)
    }
}

async fn serve(stream: TcpStream, record: &Record) -> std::io::Result<()> {
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    writer.write_all(b"220 sink.test ESMTP\r\n").await?;
    let mut line = Vec::new();
    loop {
        if !read_line(&mut reader, &mut line).await? {
            return Ok(());
        }
        let verb = line
            .get(..4)
            .map(|verb| verb.to_ascii_uppercase())
            .unwrap_or_default();
        let reply: &[u8] = match verb.as_slice() {
            b"EHLO" => b"250-sink.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 104857600\r\n",
            b"HELO" => b"250 sink.test\r\n",
            b"MAIL" | b"RCPT" | b"RSET" | b"NOOP" => b"250 2.0.0 Ok\r\n",
            b"DATA" => {
                writer.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n").await?;
                let Some(message) = read_message(&mut reader, &mut line).await? else {
                    return Ok(());
                };
                let id = mix::message_id(&message).unwrap_or_default();
                *record
                    .messages
                    .lock()
                    .expect("sink record")
                    .entry(id)
                    .or_insert(0) += 1;
                b"250 2.0.0 Ok: queued\r\n"
            }
            b"QUIT" => {
                writer.write_all(b"221 2.0.0 Bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 5.5.2 Command not recognized\r\n",
        };
        writer.write_all(reply).await?;
    }
}

/// Reads one line into `line`; returns false when the connection ended or idled out.
async fn read_line(
    reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    line: &mut Vec<u8>,
) -> std::io::Result<bool> {
    line.clear();
    let read = tokio::time::timeout(IDLE_TIMEOUT, reader.read_until(b'\n', line)).await;
    match read {
        Ok(Ok(0)) | Err(_) => Ok(false),
        Ok(Ok(_)) if line.len() > MAX_LINE => Ok(false),
        Ok(Ok(_)) => Ok(true),
        Ok(Err(err)) => Err(err),
    }
}

/// Reads message text up to the final dot and removes the dot-stuffing.
async fn read_message(
    reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    line: &mut Vec<u8>,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut message = Vec::new();
    loop {
        if !read_line(reader, line).await? {
            return Ok(None);
        }
        if line.as_slice() == b".\r\n" {
            return Ok(Some(message));
        }
        let text = line.strip_prefix(b".").unwrap_or(line);
        message.extend_from_slice(text);
    }
}
