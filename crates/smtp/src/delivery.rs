//! Delivery of accepted mail: relayed to the upstream MTA, or written into a local Maildir.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;
use std::time::Duration;

use gatehouse_engine::Envelope;

use crate::limits::UpstreamTimeouts;
use crate::reply::Reply;
use crate::session::Transaction;
use crate::upstream::{Body, ClientInfo, MailParams, RcptParams, UpstreamSession};

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
    pub timeouts: UpstreamTimeouts,
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
    /// Sends a client's transaction again on a new connection, after the
    /// upstream dropped the first one before the message. The upstream side
    /// is idle while the client sends the message and the gateway analyses
    /// it, and Postfix closes a session idle for `smtpd_timeout` (300 s, or
    /// 10 s under load).
    ///
    /// The client already got 250 for every recipient, so unless the
    /// upstream accepts all of them again this returns `None`, and the
    /// caller replies 451 for the whole message. Otherwise returns the reply to the message
    /// and the connection, which stays usable for later transactions.
    pub(crate) async fn replay(
        &self,
        transaction: &Transaction,
        message: &[u8],
    ) -> Result<Option<(Reply, UpstreamSession)>, DeliveryError> {
        let client = ClientInfo {
            ip: transaction.client_ip,
            helo: transaction.helo.clone(),
            protocol: if transaction.esmtp { "ESMTP" } else { "SMTP" },
        };
        let mut session =
            UpstreamSession::open(&self.address, &self.hostname, &self.timeouts, Some(client))
                .await?;
        let mail = (transaction.mail_from.as_str(), &transaction.mail_params);
        let recipients = transaction.rcpt_to.iter().zip(&transaction.rcpt_params);
        for (index, (to, params)) in recipients.enumerate() {
            let reply = if index == 0 {
                match session.mail_and_rcpt(mail, (to, params)).await? {
                    (_, Some(rcpt_reply)) => rcpt_reply,
                    (mail_reply, None) => mail_reply,
                }
            } else {
                session.rcpt(to, params).await?
            };
            if !reply.is_positive() {
                tracing::warn!(
                    recipient = %to,
                    code = reply.code,
                    "upstream refused again a recipient it had accepted; deferring the message"
                );
                session.quit().await;
                return Ok(None);
            }
        }
        let reply = session.send_message(message).await?;
        Ok(Some((reply, session)))
    }

    /// Relays one whole transaction on a connection of its own, for releases.
    ///
    /// The first recipient the upstream refuses ends the transaction with its
    /// reply, so a release reaches all of its recipients or none.
    async fn relay(&self, envelope: &Envelope, message: &[u8]) -> Result<Reply, DeliveryError> {
        let mut session =
            UpstreamSession::open(&self.address, &self.hostname, &self.timeouts, None).await?;
        let params = MailParams {
            size: Some(message.len()),
            body: (!message.is_ascii()).then_some(Body::EightBitMime),
            smtputf8: !envelope.mail_from.is_ascii()
                || envelope.rcpt_to.iter().any(|rcpt| !rcpt.is_ascii()),
            ..MailParams::default()
        };
        let reply = session.mail(&envelope.mail_from, &params).await?;
        if !reply.is_positive() {
            session.quit().await;
            return Ok(reply);
        }
        for recipient in &envelope.rcpt_to {
            let reply = session.rcpt(recipient, &RcptParams::default()).await?;
            if !reply.is_positive() {
                session.quit().await;
                return Ok(reply);
            }
        }
        let reply = session.send_message(message).await?;
        // The message is settled; a failed QUIT changes nothing.
        session.quit().await;
        Ok(reply)
    }
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
