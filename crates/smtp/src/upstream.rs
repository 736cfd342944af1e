//! The proxy's SMTP client towards the upstream MTA.
//!
//! One [`UpstreamSession`] mirrors one client session at a time: it is opened
//! or taken from the [`UpstreamPool`](crate::pool::UpstreamPool) at the
//! client's first RCPT, carries each MAIL and RCPT with the parameters the
//! upstream announced, and sends the message once the gateway decided to
//! deliver it. Replies are read with a cap on their size, because the
//! upstream is trusted to relay mail, not to hold the proxy's memory.

use std::net::IpAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::delivery::{DeliveryError, dot_stuff};
use crate::limits::UpstreamTimeouts;
use crate::reply::Reply;

/// Maximum size of one upstream reply, all its lines together.
const MAX_REPLY_BYTES: usize = 64 * 1024;

/// Messages up to this size go out with their BDAT command in one write,
/// which saves a system call and a TCP segment of a few bytes for the price
/// of a copy.
const ONE_WRITE_BYTES: usize = 64 * 1024;

/// Maximum wait for the reply to QUIT. Nothing depends on it, because the
/// transaction is over.
pub const QUIT_TIMEOUT: Duration = Duration::from_secs(5);

/// The EHLO keywords of the upstream MTA that change what the proxy sends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    pub esmtp: bool,
    pub pipelining: bool,
    pub size: Option<usize>,
    pub eight_bit_mime: bool,
    pub smtputf8: bool,
    pub chunking: bool,
    pub dsn: bool,
    /// The attributes the upstream accepts in XCLIENT, when it offers XCLIENT.
    pub xclient: Option<Vec<String>>,
    /// The attributes the upstream accepts in XFORWARD, when it offers XFORWARD.
    pub xforward: Option<Vec<String>>,
}

impl Capabilities {
    /// Parses the lines of a positive EHLO reply; the first line is the greeting.
    pub fn from_ehlo(lines: &[String]) -> Capabilities {
        let mut capabilities = Capabilities {
            esmtp: true,
            ..Capabilities::default()
        };
        for line in lines.iter().skip(1) {
            let mut words = line.split_ascii_whitespace();
            let Some(keyword) = words.next() else {
                continue;
            };
            let arguments = || words.clone().map(str::to_ascii_uppercase).collect();
            match keyword.to_ascii_uppercase().as_str() {
                "PIPELINING" => capabilities.pipelining = true,
                "SIZE" => {
                    capabilities.size =
                        Some(words.next().and_then(|n| n.parse().ok()).unwrap_or(0));
                }
                "8BITMIME" => capabilities.eight_bit_mime = true,
                "SMTPUTF8" => capabilities.smtputf8 = true,
                "CHUNKING" => capabilities.chunking = true,
                "DSN" => capabilities.dsn = true,
                "XCLIENT" => capabilities.xclient = Some(arguments()),
                "XFORWARD" => capabilities.xforward = Some(arguments()),
                _ => {}
            }
        }
        capabilities
    }
}

/// Who the real client is, for XCLIENT and XFORWARD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    pub ip: IpAddr,
    /// The EHLO or HELO argument, already cleaned of spaces and control characters.
    pub helo: Option<String>,
    /// `ESMTP` or `SMTP`.
    pub protocol: &'static str,
}

/// The BODY parameter of MAIL (RFC 6152).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    SevenBit,
    EightBitMime,
}

/// DSN's RET parameter of MAIL (RFC 3461 §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ret {
    Full,
    Headers,
}

/// The MAIL parameters the proxy passes on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailParams {
    /// The size the client declared, or the real size for a release.
    pub size: Option<usize>,
    pub body: Option<Body>,
    pub smtputf8: bool,
    pub ret: Option<Ret>,
    /// DSN's ENVID, decoded from xtext to the bytes the client encoded.
    pub envid: Option<Vec<u8>>,
}

/// The RCPT parameters the proxy passes on (RFC 3461 §4.1 and §4.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RcptParams {
    /// NOTIFY values in upper case, such as `SUCCESS` or `NEVER`.
    pub notify: Vec<&'static str>,
    /// The original recipient (`ORCPT=rfc822;...`), decoded from xtext to
    /// the bytes the client encoded.
    pub orcpt: Option<Vec<u8>>,
}

/// An open connection to the upstream MTA that has greeted and accepted EHLO.
#[derive(Debug)]
pub struct UpstreamSession {
    stream: TcpStream,
    address: String,
    buffer: Vec<u8>,
    capabilities: Capabilities,
    timeouts: UpstreamTimeouts,
    client: Option<ClientInfo>,
    /// Whether MAIL was accepted and the transaction is not finished yet.
    in_transaction: bool,
}

impl UpstreamSession {
    /// Connects, reads the greeting, sends EHLO (HELO when EHLO is refused),
    /// and passes the real client on with XCLIENT when the upstream offers it.
    pub async fn open(
        address: &str,
        hostname: &str,
        timeouts: &UpstreamTimeouts,
        client: Option<ClientInfo>,
    ) -> Result<UpstreamSession, DeliveryError> {
        let stream = tokio::time::timeout(timeouts.greeting, TcpStream::connect(address))
            .await
            .map_err(|_| DeliveryError::Timeout {
                address: address.to_owned(),
                timeout: timeouts.greeting,
            })?
            .map_err(|source| DeliveryError::Connect {
                address: address.to_owned(),
                source,
            })?;
        let _ = stream.set_nodelay(true);
        let mut session = UpstreamSession {
            stream,
            address: address.to_owned(),
            buffer: Vec::new(),
            capabilities: Capabilities::default(),
            timeouts: timeouts.clone(),
            client,
            in_transaction: false,
        };

        let greeting = session.read_reply("greeting", timeouts.greeting).await?;
        if greeting.code != 220 {
            return Err(session.protocol("greeting", &greeting));
        }
        session.hello(hostname).await?;
        session.send_xclient(hostname).await?;
        Ok(session)
    }

    /// Makes a connection that served an earlier client carry the
    /// transactions of `client`: XCLIENT and EHLO again when the upstream
    /// offers XCLIENT, which Postfix accepts at any time outside a
    /// transaction. With XFORWARD the new client goes with the next MAIL.
    /// When the earlier client had the same address, HELO name and protocol,
    /// the upstream already has them and nothing is sent.
    pub async fn switch_client(
        &mut self,
        hostname: &str,
        client: ClientInfo,
    ) -> Result<(), DeliveryError> {
        if self.in_transaction {
            self.reset().await?;
        }
        if self.client.as_ref() == Some(&client) {
            return Ok(());
        }
        self.client = Some(client);
        self.send_xclient(hostname).await
    }

    /// Returns whether no transaction is open, so that another client's
    /// session may use the connection.
    pub fn is_idle(&self) -> bool {
        !self.in_transaction
    }

    /// Returns whether a kept connection can carry a new transaction: the
    /// upstream has neither closed it nor sent anything unasked, such as the
    /// 421 an MTA sends before it closes an idle session. Reads nothing
    /// when the connection is usable.
    pub fn is_usable(&self) -> bool {
        if !self.buffer.is_empty() {
            return false;
        }
        let mut byte = [0u8; 1];
        matches!(
            self.stream.try_read(&mut byte),
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock
        )
    }

    /// Names the real client with XCLIENT, then sends EHLO again, when the
    /// upstream offers XCLIENT and a client is known.
    ///
    /// The second EHLO carries the client's own HELO name, as in the
    /// example of Postfix's XCLIENT_README: Postfix 3.7 takes the name of
    /// that EHLO for its logs, its Received field and its HELO checks, over
    /// the HELO attribute of XCLIENT.
    async fn send_xclient(&mut self, hostname: &str) -> Result<(), DeliveryError> {
        let (Some(attributes), Some(client)) = (&self.capabilities.xclient, &self.client) else {
            return Ok(());
        };
        let command = xclient_command(attributes, client);
        let helo = client.helo.clone().unwrap_or_else(|| hostname.to_owned());
        let reply = self
            .command("XCLIENT", &command, self.timeouts.mail)
            .await?;
        // Postfix's smtpd replies to XCLIENT with a new 220 greeting and
        // resets its EHLO state, while its smtp-sink replies 250. Either way EHLO again.
        if !reply.is_positive() {
            return Err(self.protocol("XCLIENT", &reply));
        }
        self.hello(&helo).await
    }

    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    /// Sends MAIL, after RSET when an earlier transaction is still open and
    /// after XFORWARD when the upstream offers it and not XCLIENT.
    ///
    /// A parameter the upstream cannot take is dropped, except SMTPUTF8:
    /// an internationalised message to an upstream without it gets a 553
    /// from the proxy without being sent (RFC 6531 §3.2).
    pub async fn mail(&mut self, from: &str, params: &MailParams) -> Result<Reply, DeliveryError> {
        if let Some(rejection) = self.prepare_mail(params).await? {
            return Ok(rejection);
        }
        let command = self.mail_command(from, params);
        let reply = self.command("MAIL", &command, self.timeouts.mail).await?;
        self.in_transaction = reply.is_positive();
        Ok(reply)
    }

    /// Sends MAIL and the first RCPT of a transaction, as [`mail`](Self::mail)
    /// and [`rcpt`](Self::rcpt) do, in one write when the upstream offers
    /// PIPELINING (RFC 2920). Returns MAIL's reply, and RCPT's when MAIL was
    /// accepted. The upstream's reply to a RCPT behind a rejected MAIL is
    /// read and dropped.
    pub async fn mail_and_rcpt(
        &mut self,
        mail: (&str, &MailParams),
        rcpt: (&str, &RcptParams),
    ) -> Result<(Reply, Option<Reply>), DeliveryError> {
        if !self.capabilities.pipelining {
            let reply = self.mail(mail.0, mail.1).await?;
            if !reply.is_positive() {
                return Ok((reply, None));
            }
            let accepted = self.rcpt(rcpt.0, rcpt.1).await?;
            return Ok((reply, Some(accepted)));
        }
        if let Some(rejection) = self.prepare_mail(mail.1).await? {
            return Ok((rejection, None));
        }
        let mut commands = self.mail_command(mail.0, mail.1);
        commands.push_str(&self.rcpt_command(rcpt.0, rcpt.1));
        self.write("MAIL", commands.as_bytes(), self.timeouts.mail)
            .await?;
        let reply = self.read_reply("MAIL", self.timeouts.mail).await?;
        self.in_transaction = reply.is_positive();
        // An upstream that rejects MAIL still replies to the RCPT behind it,
        // usually with 503. One that does not is failing, and the error
        // drops the connection.
        let accepted = self.read_reply("RCPT", self.timeouts.rcpt).await?;
        Ok(if reply.is_positive() {
            (reply, Some(accepted))
        } else {
            (reply, None)
        })
    }

    /// Sends RCPT and returns the upstream's reply as it is.
    pub async fn rcpt(&mut self, to: &str, params: &RcptParams) -> Result<Reply, DeliveryError> {
        let command = self.rcpt_command(to, params);
        self.command("RCPT", &command, self.timeouts.rcpt).await
    }

    /// Does what must come before MAIL: rejects SMTPUTF8 the upstream lacks,
    /// ends an open transaction and sends XFORWARD. Returns the rejection
    /// for the client, if any.
    async fn prepare_mail(&mut self, params: &MailParams) -> Result<Option<Reply>, DeliveryError> {
        if params.smtputf8 && !self.capabilities.smtputf8 {
            return Ok(Some(Reply::new(
                553,
                [5, 6, 7],
                "The server behind this gateway does not support SMTPUTF8",
            )));
        }
        if self.in_transaction {
            self.reset().await?;
        }
        if let (Some(attributes), None, Some(client)) = (
            self.capabilities.xforward.clone(),
            self.capabilities.xclient.as_ref(),
            self.client.clone(),
        ) {
            let command = xforward_command(&attributes, &client);
            let reply = self
                .command("XFORWARD", &command, self.timeouts.mail)
                .await?;
            if !reply.is_positive() {
                return Err(self.protocol("XFORWARD", &reply));
            }
        }
        Ok(None)
    }

    /// Builds the MAIL command line with the parameters the upstream takes.
    fn mail_command(&self, from: &str, params: &MailParams) -> String {
        let mut command = format!("MAIL FROM:<{from}>");
        if let (Some(size), Some(_)) = (params.size, self.capabilities.size) {
            command.push_str(&format!(" SIZE={size}"));
        }
        // NOTE: an 8-bit message to an upstream without 8BITMIME is sent
        // unchanged, not converted to 7 bits as RFC 6152 §3 asks. Every MTA
        // in current use accepts 8-bit text.
        if params.body == Some(Body::EightBitMime) && self.capabilities.eight_bit_mime {
            command.push_str(" BODY=8BITMIME");
        }
        if params.smtputf8 {
            command.push_str(" SMTPUTF8");
        }
        // NOTE: DSN parameters are dropped when the upstream lacks DSN, and
        // the proxy sends no "relayed" notice for NOTIFY=SUCCESS in their
        // place (RFC 3461 §4.4).
        if self.capabilities.dsn {
            match params.ret {
                Some(Ret::Full) => command.push_str(" RET=FULL"),
                Some(Ret::Headers) => command.push_str(" RET=HDRS"),
                None => {}
            }
            if let Some(envid) = &params.envid {
                command.push_str(&format!(" ENVID={}", xtext(envid)));
            }
        }
        command.push_str("\r\n");
        command
    }

    /// Builds the RCPT command line with the DSN parameters the upstream takes.
    fn rcpt_command(&self, to: &str, params: &RcptParams) -> String {
        let mut command = format!("RCPT TO:<{to}>");
        if self.capabilities.dsn {
            if !params.notify.is_empty() {
                command.push_str(&format!(" NOTIFY={}", params.notify.join(",")));
            }
            if let Some(orcpt) = &params.orcpt {
                command.push_str(&format!(" ORCPT=rfc822;{}", xtext(orcpt)));
            }
        }
        command.push_str("\r\n");
        command
    }

    /// Sends the message of the open transaction and returns the final reply.
    ///
    /// Uses `BDAT LAST` when the upstream offers CHUNKING, else DATA with
    /// dot-stuffing. Either way the transaction is over afterwards.
    pub async fn send_message(&mut self, message: &[u8]) -> Result<Reply, DeliveryError> {
        self.in_transaction = false;
        if self.capabilities.chunking {
            let command = format!("BDAT {} LAST\r\n", message.len());
            if message.len() <= ONE_WRITE_BYTES {
                let mut chunk = Vec::with_capacity(command.len() + message.len());
                chunk.extend_from_slice(command.as_bytes());
                chunk.extend_from_slice(message);
                self.write("BDAT", &chunk, self.timeouts.data_block).await?;
            } else {
                self.write("BDAT", command.as_bytes(), self.timeouts.data_block)
                    .await?;
                self.write("message", message, self.timeouts.data_block)
                    .await?;
            }
            return self.read_reply("final BDAT", self.timeouts.data_end).await;
        }

        let reply = self
            .command("DATA", "DATA\r\n", self.timeouts.data_start)
            .await?;
        if reply.code != 354 {
            return Ok(reply);
        }
        let stuffed = dot_stuff(message);
        self.write("message", &stuffed, self.timeouts.data_block)
            .await?;
        self.read_reply("final dot", self.timeouts.data_end).await
    }

    /// Abandons the open transaction, if any.
    pub async fn reset(&mut self) -> Result<(), DeliveryError> {
        if !self.in_transaction {
            return Ok(());
        }
        self.in_transaction = false;
        let reply = self.command("RSET", "RSET\r\n", self.timeouts.mail).await?;
        if !reply.is_positive() {
            return Err(self.protocol("RSET", &reply));
        }
        Ok(())
    }

    /// Says QUIT and closes; errors are ignored because nothing is pending.
    /// The reply is awaited for at most [`QUIT_TIMEOUT`], so an upstream
    /// that hangs cannot hold up a shutdown.
    pub async fn quit(mut self) {
        let timeout = self.timeouts.mail.min(QUIT_TIMEOUT);
        let _ = self.command("QUIT", "QUIT\r\n", timeout).await;
    }

    async fn hello(&mut self, hostname: &str) -> Result<(), DeliveryError> {
        let ehlo = self
            .command("EHLO", &format!("EHLO {hostname}\r\n"), self.timeouts.mail)
            .await?;
        if ehlo.code == 250 {
            self.capabilities = Capabilities::from_ehlo(&ehlo.lines);
            return Ok(());
        }
        let helo = self
            .command("HELO", &format!("HELO {hostname}\r\n"), self.timeouts.mail)
            .await?;
        if helo.code != 250 {
            return Err(self.protocol("HELO", &helo));
        }
        self.capabilities = Capabilities::default();
        Ok(())
    }

    async fn command(
        &mut self,
        stage: &'static str,
        command: &str,
        timeout: Duration,
    ) -> Result<Reply, DeliveryError> {
        self.write(stage, command.as_bytes(), timeout).await?;
        self.read_reply(stage, timeout).await
    }

    async fn write(
        &mut self,
        stage: &'static str,
        bytes: &[u8],
        timeout: Duration,
    ) -> Result<(), DeliveryError> {
        match tokio::time::timeout(timeout, self.stream.write_all(bytes)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(DeliveryError::Protocol {
                address: self.address.clone(),
                stage,
                detail: err.to_string(),
            }),
            Err(_) => Err(self.timed_out(timeout)),
        }
    }

    /// Reads one whole reply, multi-line or not.
    async fn read_reply(
        &mut self,
        stage: &'static str,
        timeout: Duration,
    ) -> Result<Reply, DeliveryError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match parse_reply(&self.buffer) {
                ParsedReply::Complete { reply, consumed } => {
                    self.buffer.drain(..consumed);
                    return Ok(reply);
                }
                ParsedReply::Invalid(detail) => {
                    return Err(DeliveryError::Protocol {
                        address: self.address.clone(),
                        stage,
                        detail,
                    });
                }
                ParsedReply::Incomplete if self.buffer.len() > MAX_REPLY_BYTES => {
                    return Err(DeliveryError::Protocol {
                        address: self.address.clone(),
                        stage,
                        detail: format!("reply longer than {MAX_REPLY_BYTES} bytes"),
                    });
                }
                ParsedReply::Incomplete => {}
            }
            let mut chunk = [0u8; 4096];
            let read = tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await;
            match read {
                Err(_) => return Err(self.timed_out(timeout)),
                Ok(Ok(0)) => {
                    return Err(DeliveryError::Protocol {
                        address: self.address.clone(),
                        stage,
                        detail: "connection closed".to_owned(),
                    });
                }
                Ok(Ok(count)) => self.buffer.extend_from_slice(&chunk[..count]),
                Ok(Err(err)) => {
                    return Err(DeliveryError::Protocol {
                        address: self.address.clone(),
                        stage,
                        detail: err.to_string(),
                    });
                }
            }
        }
    }

    fn timed_out(&self, timeout: Duration) -> DeliveryError {
        DeliveryError::Timeout {
            address: self.address.clone(),
            timeout,
        }
    }

    fn protocol(&self, stage: &'static str, reply: &Reply) -> DeliveryError {
        DeliveryError::Protocol {
            address: self.address.clone(),
            stage,
            detail: reply.to_string().trim_end().to_owned(),
        }
    }
}

enum ParsedReply {
    Complete { reply: Reply, consumed: usize },
    Incomplete,
    Invalid(String),
}

/// Parses one reply from the front of `buffer` (RFC 5321 §4.2).
fn parse_reply(buffer: &[u8]) -> ParsedReply {
    let mut lines = Vec::new();
    let mut code = None;
    let mut start = 0;
    while let Some(end) = buffer[start..].iter().position(|&byte| byte == b'\n') {
        let line = &buffer[start..start + end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        start += end + 1;
        let text = String::from_utf8_lossy(line);
        let (Some(digits), separator) = (text.get(..3), text.as_bytes().get(3).copied()) else {
            return ParsedReply::Invalid(format!("malformed reply line {text:?}"));
        };
        let Ok(line_code) = digits.parse::<u16>() else {
            return ParsedReply::Invalid(format!("malformed reply line {text:?}"));
        };
        if *code.get_or_insert(line_code) != line_code {
            return ParsedReply::Invalid(format!("reply codes differ in {text:?}"));
        }
        lines.push(text.get(4..).unwrap_or("").to_owned());
        match separator {
            Some(b'-') => continue,
            None | Some(b' ') => {
                return ParsedReply::Complete {
                    reply: reply_from_lines(line_code, lines),
                    consumed: start,
                };
            }
            Some(_) => return ParsedReply::Invalid(format!("malformed reply line {text:?}")),
        }
    }
    ParsedReply::Incomplete
}

/// Splits the enhanced status code (RFC 3463) off the text and cleans the lines.
fn reply_from_lines(code: u16, lines: Vec<String>) -> Reply {
    let status = lines
        .last()
        .and_then(|line| line.split(' ').next())
        .and_then(parse_status)
        .filter(|status| u16::from(status[0]) == code / 100);
    let lines = match status {
        Some(_) => lines
            .into_iter()
            .map(
                |line| match parse_status(line.split(' ').next().unwrap_or("")) {
                    Some(_) => line
                        .split_once(' ')
                        .map(|(_, rest)| rest.to_owned())
                        .unwrap_or_default(),
                    None => line,
                },
            )
            .collect(),
        None => lines,
    };
    Reply::relayed(code, status.unwrap_or([0, 0, 0]), &lines.join("\n"))
}

fn parse_status(text: &str) -> Option<[u8; 3]> {
    let mut parts = text.split('.');
    let class = parts.next()?.parse::<u8>().ok()?;
    let subject = parts.next()?.parse::<u16>().ok()?;
    let detail = parts.next()?.parse::<u16>().ok()?;
    if parts.next().is_some() || !(2..=5).contains(&class) {
        return None;
    }
    Some([
        class,
        u8::try_from(subject).ok()?,
        u8::try_from(detail).ok()?,
    ])
}

/// Encodes a value as xtext (RFC 3461 §4): `+`, `=`, controls, space and
/// non-ASCII bytes become `+HH`.
pub(crate) fn xtext(value: &[u8]) -> String {
    let mut out = String::with_capacity(value.len());
    for &byte in value {
        if (33..=126).contains(&byte) && byte != b'+' && byte != b'=' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("+{byte:02X}"));
        }
    }
    out
}

/// Builds the XCLIENT command with the attributes the upstream accepts.
fn xclient_command(attributes: &[String], client: &ClientInfo) -> String {
    let mut command = "XCLIENT".to_owned();
    for (name, value) in client_attributes(client) {
        if attributes.iter().any(|attribute| attribute == name) {
            command.push_str(&format!(" {name}={}", xtext(value.as_bytes())));
        }
    }
    command.push_str("\r\n");
    command
}

/// Builds the XFORWARD command with the attributes the upstream accepts.
fn xforward_command(attributes: &[String], client: &ClientInfo) -> String {
    xclient_command(attributes, client).replacen("XCLIENT", "XFORWARD", 1)
}

/// Returns the attributes Postfix defines for XCLIENT and XFORWARD. No reverse DNS
/// lookup is made, so NAME is `[UNAVAILABLE]`, the value Postfix defines for
/// a name it does not know. HELO is always sent, `[UNAVAILABLE]` when the
/// client gave none, because Postfix keeps an attribute of an earlier
/// XCLIENT on the same connection until a new value replaces it (Postfix
/// XCLIENT_README, "XCLIENT Server response").
fn client_attributes(client: &ClientInfo) -> Vec<(&'static str, String)> {
    let address = match client.ip {
        IpAddr::V4(ip) => ip.to_string(),
        IpAddr::V6(ip) => format!("IPV6:{ip}"),
    };
    let helo = client
        .helo
        .clone()
        .unwrap_or_else(|| "[UNAVAILABLE]".to_owned());
    vec![
        ("NAME", "[UNAVAILABLE]".to_owned()),
        ("ADDR", address),
        ("PROTO", client.protocol.to_owned()),
        ("HELO", helo),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(input: &[u8]) -> (Reply, usize) {
        match parse_reply(input) {
            ParsedReply::Complete { reply, consumed } => (reply, consumed),
            ParsedReply::Incomplete => panic!("incomplete: {input:?}"),
            ParsedReply::Invalid(detail) => panic!("invalid: {detail}"),
        }
    }

    #[test]
    fn multiline_reply_with_status() {
        let (reply, consumed) =
            complete(b"550-5.1.1 first\r\n550 5.1.1 <x@y>: Recipient address rejected\r\nNEXT");

        assert_eq!(consumed, 62);
        assert_eq!(reply.code, 550);
        assert_eq!(reply.status, Some([5, 1, 1]));
        assert_eq!(
            reply.lines,
            vec!["first", "<x@y>: Recipient address rejected"]
        );
    }

    #[test]
    fn reply_without_status() {
        let (reply, _) = complete(b"354 End data with <CR><LF>.<CR><LF>\r\n");

        assert_eq!(reply.status, None);
        assert_eq!(reply.lines, vec!["End data with <CR><LF>.<CR><LF>"]);
    }

    #[test]
    fn partial_reply_is_incomplete() {
        assert!(matches!(
            parse_reply(b"250-first\r\n250 sec"),
            ParsedReply::Incomplete
        ));
    }

    #[test]
    fn garbage_reply_is_invalid() {
        assert!(matches!(parse_reply(b"hello\r\n"), ParsedReply::Invalid(_)));
    }

    #[test]
    fn ehlo_keywords_are_read() {
        let lines: Vec<String> = [
            "postfix.test",
            "PIPELINING",
            "SIZE 10240000",
            "8BITMIME",
            "DSN",
            "SMTPUTF8",
            "CHUNKING",
            "XCLIENT NAME ADDR PROTO HELO REVERSE_NAME",
        ]
        .iter()
        .map(|line| (*line).to_owned())
        .collect();

        let capabilities = Capabilities::from_ehlo(&lines);

        assert_eq!(capabilities.size, Some(10_240_000));
        assert!(capabilities.smtputf8);
        assert!(capabilities.chunking);
        assert!(capabilities.dsn);
        assert_eq!(
            capabilities.xclient.as_deref(),
            Some(&["NAME", "ADDR", "PROTO", "HELO", "REVERSE_NAME"].map(str::to_owned)[..])
        );
        assert_eq!(capabilities.xforward, None);
    }

    #[test]
    fn xclient_sends_only_offered_attributes() {
        let client = ClientInfo {
            ip: "2001:db8::1".parse().expect("address"),
            helo: Some("client+1.test".to_owned()),
            protocol: "ESMTP",
        };

        let command = xclient_command(&["ADDR".to_owned(), "HELO".to_owned()], &client);

        assert_eq!(
            command,
            "XCLIENT ADDR=IPV6:2001:db8::1 HELO=client+2B1.test\r\n"
        );
    }

    #[test]
    fn xtext_escapes_plus_equals_and_space() {
        assert_eq!(xtext(b"a+b=c d"), "a+2Bb+3Dc+20d");
        assert_eq!(xtext("café".as_bytes()), "caf+C3+A9");
    }
}
