//! Delivery of accepted mail: relayed to the upstream MTA, or written into a local Maildir.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;
use std::time::Duration;

use gatehouse_engine::Envelope;
use mail_send::SmtpClient;
use smtp_proto::{EXT_8BIT_MIME, EXT_SIZE, Response};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::reply::Reply;

/// The destination of accepted mail.
#[derive(Debug, Clone)]
pub enum Delivery {
    /// Relay over SMTP to the MTA behind the gateway, with the original envelope.
    Upstream(Upstream),
    /// Write into a Maildir, for a gateway with no MTA behind it.
    Maildir(Maildir),
}

/// The MTA that accepted mail is relayed to.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// `host:port`.
    pub address: String,
    /// The name the proxy gives in its EHLO.
    pub hostname: String,
    /// Time to wait for the connection and for each reply.
    pub timeout: Duration,
}

/// A Maildir (`tmp/`, `new/`, `cur/`) that accepted mail is written into.
#[derive(Debug, Clone)]
pub struct Maildir {
    pub path: PathBuf,
    /// The host name in each file name, as Maildir readers expect.
    pub hostname: String,
}

/// The message could not be handed on. The proxy treats every variant as
/// transient and replies 451, so the client keeps the message and retries.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("cannot connect to upstream {address}: {source}")]
    Connect { address: String, source: io::Error },
    #[error("upstream {address} did not answer within {timeout:?}")]
    Timeout { address: String, timeout: Duration },
    #[error("upstream {address} failed during {stage}: {detail}")]
    Protocol {
        address: String,
        stage: &'static str,
        detail: String,
    },
    #[error("cannot write to Maildir {path}: {source}")]
    Maildir { path: PathBuf, source: io::Error },
}

impl DeliveryError {
    /// Returns whether a later attempt may succeed, which is true for every variant.
    pub fn is_transient(&self) -> bool {
        true
    }
}

impl Delivery {
    /// Hands a message on with its envelope.
    ///
    /// Returns the final reply of the receiving side: the upstream MTA's own
    /// reply (which may be a rejection, passed on to the client as it is), or
    /// 250 once the Maildir file is durable. An `Err` means the message could
    /// not be handed on at all.
    pub async fn deliver(
        &self,
        envelope: &Envelope,
        message: &[u8],
    ) -> Result<Reply, DeliveryError> {
        match self {
            Delivery::Upstream(upstream) => upstream.relay(envelope, message).await,
            Delivery::Maildir(maildir) => {
                let maildir = maildir.clone();
                let envelope = envelope.clone();
                let message = message.to_vec();
                let path = maildir.path.clone();
                tokio::task::spawn_blocking(move || maildir.write(&envelope, &message))
                    .await
                    .map_err(|err| DeliveryError::Maildir {
                        path,
                        source: io::Error::other(err),
                    })?
            }
        }
    }
}

impl Upstream {
    async fn relay(&self, envelope: &Envelope, message: &[u8]) -> Result<Reply, DeliveryError> {
        let stream = tokio::time::timeout(self.timeout, TcpStream::connect(&self.address))
            .await
            .map_err(|_| self.timed_out())?
            .map_err(|source| DeliveryError::Connect {
                address: self.address.clone(),
                source,
            })?;
        let mut client = SmtpClient {
            stream,
            timeout: self.timeout,
        };

        let greeting = self.reply("greeting", client.read()).await?;
        if greeting.code != 220 {
            return Err(self.protocol("greeting", format!("{}", relayed(&greeting))));
        }
        let capabilities = match client.ehlo(&self.hostname).await {
            Ok(ehlo) => ehlo.capabilities,
            Err(_) => {
                let helo = self
                    .reply("HELO", client.cmd(format!("HELO {}\r\n", self.hostname)))
                    .await?;
                if !helo.is_positive_completion() {
                    return Err(self.protocol("HELO", relayed(&helo).to_string()));
                }
                0
            }
        };

        // MAIL with the parameters the upstream understands.
        let mut mail = format!("MAIL FROM:<{}>", envelope.mail_from);
        if capabilities & EXT_8BIT_MIME != 0 && message.iter().any(|byte| !byte.is_ascii()) {
            mail.push_str(" BODY=8BITMIME");
        }
        if capabilities & EXT_SIZE != 0 {
            mail.push_str(&format!(" SIZE={}", message.len()));
        }
        mail.push_str("\r\n");
        let reply = self.reply("MAIL", client.cmd(mail)).await?;
        if !reply.is_positive_completion() {
            return Ok(self.abandon(client, &reply).await);
        }

        // NOTE: one refused recipient refuses the whole message with the
        // upstream's reply, because the client already got 250 for every
        // RCPT; mirroring each RCPT to the upstream during the session would
        // let the others through.
        for recipient in &envelope.rcpt_to {
            let reply = self
                .reply("RCPT", client.cmd(format!("RCPT TO:<{recipient}>\r\n")))
                .await?;
            if !reply.is_positive_completion() {
                return Ok(self.abandon(client, &reply).await);
            }
        }

        let reply = self.reply("DATA", client.cmd(b"DATA\r\n")).await?;
        if reply.code != 354 {
            return Ok(self.abandon(client, &reply).await);
        }
        let stuffed = dot_stuff(message);
        tokio::time::timeout(self.timeout, async {
            client.stream.write_all(&stuffed).await?;
            client.stream.flush().await
        })
        .await
        .map_err(|_| self.timed_out())?
        .map_err(|source| self.protocol("message", source.to_string()))?;
        let reply = self.reply("final dot", client.read()).await?;

        // The message is settled; a failed QUIT changes nothing.
        let _ = tokio::time::timeout(self.timeout, client.quit()).await;
        Ok(relayed(&reply))
    }

    /// Ends a transaction the upstream refused and returns its reply for the client.
    async fn abandon(&self, client: SmtpClient<TcpStream>, reply: &Response<String>) -> Reply {
        let _ = tokio::time::timeout(self.timeout, client.quit()).await;
        relayed(reply)
    }

    async fn reply(
        &self,
        stage: &'static str,
        read: impl Future<Output = mail_send::Result<Response<String>>>,
    ) -> Result<Response<String>, DeliveryError> {
        match tokio::time::timeout(self.timeout, read).await {
            Err(_) | Ok(Err(mail_send::Error::Timeout)) => Err(self.timed_out()),
            Ok(Err(err)) => Err(self.protocol(stage, format!("{err:?}"))),
            Ok(Ok(reply)) => Ok(reply),
        }
    }

    fn timed_out(&self) -> DeliveryError {
        DeliveryError::Timeout {
            address: self.address.clone(),
            timeout: self.timeout,
        }
    }

    fn protocol(&self, stage: &'static str, detail: String) -> DeliveryError {
        DeliveryError::Protocol {
            address: self.address.clone(),
            stage,
            detail,
        }
    }
}

fn relayed(reply: &Response<String>) -> Reply {
    Reply::relayed(reply.code, reply.esc, &reply.message)
}

/// Applies the SMTP transparency procedure (RFC 5321 §4.5.2) and appends the final dot.
///
/// A message that does not end in CRLF gets one before the dot, so the last
/// line is never merged with the terminator.
pub fn dot_stuff(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 64 + 5);
    let mut line_start = true;
    for &byte in message {
        if line_start && byte == b'.' {
            out.push(b'.');
        }
        out.push(byte);
        line_start = byte == b'\n';
    }
    if !message.is_empty() && !message.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

impl Maildir {
    /// Writes the message into `new/` durably: `tmp/`, fsync, rename, fsync of `new/`.
    fn write(&self, envelope: &Envelope, message: &[u8]) -> Result<Reply, DeliveryError> {
        let error = |source| DeliveryError::Maildir {
            path: self.path.clone(),
            source,
        };
        for folder in ["tmp", "new", "cur"] {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(self.path.join(folder))
                .map_err(error)?;
        }

        // A unique file name: seconds, a UUIDv7 and the host name, with `/`
        // and `:` replaced because Maildir readers give them meaning.
        let seconds = time::OffsetDateTime::now_utc().unix_timestamp();
        let host: String = self
            .hostname
            .chars()
            .map(|c| if c == '/' || c == ':' { '_' } else { c })
            .collect();
        let name = format!("{seconds}.{}.{host}", uuid::Uuid::now_v7().simple());

        let mut headers = format!("Return-Path: <{}>\r\n", envelope.mail_from);
        for recipient in &envelope.rcpt_to {
            headers.push_str(&format!("Delivered-To: {recipient}\r\n"));
        }

        let temp = self.path.join("tmp").join(&name);
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
            .map_err(error)?;
        file.write_all(headers.as_bytes()).map_err(error)?;
        file.write_all(message).map_err(error)?;
        file.sync_all().map_err(error)?;
        drop(file);

        let new = self.path.join("new");
        fs::rename(&temp, new.join(&name)).map_err(error)?;
        fs::File::open(&new)
            .and_then(|folder| folder.sync_all())
            .map_err(error)?;
        Ok(Reply::new(
            250,
            [2, 0, 0],
            format!("Ok: delivered as {name}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_stuff_table() {
        let cases: &[(&str, &[u8], &[u8])] = &[
            ("crlf ending", b"a\r\n", b"a\r\n.\r\n"),
            ("no ending", b"a", b"a\r\n.\r\n"),
            ("empty", b"", b".\r\n"),
            ("leading dot", b".a\r\n", b"..a\r\n.\r\n"),
            ("dot line", b"a\r\n.\r\nb\r\n", b"a\r\n..\r\nb\r\n.\r\n"),
            ("dot inside", b"a.b\r\n", b"a.b\r\n.\r\n"),
        ];
        for (case, input, expected) in cases {
            assert_eq!(dot_stuff(input), *expected, "{case}");
        }
    }
}
