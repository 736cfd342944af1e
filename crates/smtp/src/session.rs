//! The SMTP session state machine, sans I/O: command lines in, replies and actions out.
//!
//! The session does not reply to MAIL and RCPT itself. It checks them and returns
//! [`Action::Mail`] or [`Action::Rcpt`], the I/O loop asks the upstream MTA
//! (or accepts locally when there is none), and [`Session::mail_replied`] or
//! [`Session::rcpt_replied`] moves the state on with the real reply.

use std::borrow::Cow;
use std::net::IpAddr;

use smtp_proto::{
    Error as ParseError, MAIL_BODY_7BIT, MAIL_BODY_8BITMIME, MAIL_BODY_BINARYMIME, MAIL_BY_NOTIFY,
    MAIL_BY_RETURN, MAIL_BY_TRACE, MAIL_CONPERM, MAIL_REQUIRETLS, MAIL_RET_FULL, MAIL_RET_HDRS,
    MAIL_SMTPUTF8, MailFrom, RCPT_CONNEG, RCPT_NOTIFY_DELAY, RCPT_NOTIFY_FAILURE,
    RCPT_NOTIFY_NEVER, RCPT_NOTIFY_SUCCESS, RCPT_RRVS_CONTINUE, RCPT_RRVS_REJECT, RcptTo, Request,
};

use crate::Limits;
use crate::line::Line;
use crate::reply::Reply;
use crate::upstream::{Body, MailParams, RcptParams, Ret};

/// The protocol state of a session. Every command checks its precondition against this
/// before it acts, and every change goes through [`Session::enter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Connected and greeted with 220, or TLS just started; no EHLO or HELO yet.
    Connected,
    /// EHLO or HELO accepted; no transaction open.
    Ready,
    /// MAIL accepted; no recipient accepted yet.
    Mail,
    /// MAIL and at least one RCPT accepted.
    Rcpt,
    /// 354 sent; the message text is being read.
    Data,
    /// At least one BDAT chunk received; the last one has not come yet.
    Bdat,
    /// 221 or 421 sent; the connection closes.
    Closed,
}

impl State {
    fn name(self) -> &'static str {
        match self {
            State::Connected => "connected",
            State::Ready => "ready",
            State::Mail => "mail",
            State::Rcpt => "rcpt",
            State::Data => "data",
            State::Bdat => "bdat",
            State::Closed => "closed",
        }
    }
}

/// The step the I/O loop takes after a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send the reply and read the next command.
    Reply(Reply),
    /// Ask the upstream MTA (or accept locally), then pass the reply to
    /// [`Session::mail_replied`] and send what it returns.
    Mail(MailRequest),
    /// Ask the upstream MTA (or accept locally), then pass the reply to
    /// [`Session::rcpt_replied`] and send what it returns.
    Rcpt(RcptRequest),
    /// Send the reply (354) and read the message text with a `DataReader`.
    StartData(Reply),
    /// Read the next `size` bytes as a BDAT chunk of the message; `last` ends it.
    Chunk { size: usize, last: bool },
    /// Read the next `size` bytes and drop them, then send the reply. A BDAT
    /// chunk is always read whole, even when it is refused, so that its bytes
    /// are never taken for commands (RFC 3030 §2).
    DiscardChunk { size: usize, reply: Reply },
    /// Send the reply (220), drop any input buffered after the command, and
    /// start the TLS handshake (RFC 3207 §4.2).
    StartTls(Reply),
    /// Send the reply and close the connection.
    Close(Reply),
}

/// A MAIL command that passed the session's checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailRequest {
    pub from: String,
    pub params: MailParams,
}

/// A RCPT command that passed the session's checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RcptRequest {
    pub to: String,
    pub params: RcptParams,
}

/// What the proxy offers a client beyond the fixed extensions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Features {
    /// Offer STARTTLS: a certificate is configured.
    pub starttls: bool,
    /// Offer XFORWARD and believe it: the client is an MTA in
    /// `[smtp] xforward_hosts`, such as Postfix handing its connections to
    /// the proxy with `smtpd_proxy_filter`.
    pub xforward: bool,
}

/// The client attributes that an MTA in front of the proxy sent with
/// XFORWARD, kept for the next transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Forwarded {
    ip: Option<IpAddr>,
    /// `Some(None)` when XFORWARD named the HELO as unknown: the original
    /// client's name is unknown then, not the forwarding MTA's.
    helo: Option<Option<String>>,
}

/// One message's envelope, complete once the final dot has been read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    pub mail_from: String,
    /// The recipients the upstream MTA (or the local Maildir) accepted.
    pub rcpt_to: Vec<String>,
    /// The DSN parameters of each recipient in `rcpt_to`, in the same order.
    pub rcpt_params: Vec<RcptParams>,
    pub helo: Option<String>,
    pub client_ip: IpAddr,
    /// Whether the client greeted with EHLO rather than HELO.
    pub esmtp: bool,
    /// Whether the session runs over TLS.
    pub tls: bool,
    pub mail_params: MailParams,
}

/// The transaction being built from MAIL and RCPT.
#[derive(Debug, Clone)]
struct Pending {
    from: String,
    params: MailParams,
    recipients: Vec<RcptRequest>,
    /// A recipient got a 4xx reply, which the upstream or the proxy's link to
    /// it may have caused rather than the client.
    deferred: bool,
}

/// The protocol state of one client connection.
#[derive(Debug)]
pub struct Session {
    state: State,
    hostname: String,
    client_ip: IpAddr,
    helo: Option<String>,
    esmtp: bool,
    tls: bool,
    features: Features,
    errors: u32,
    limits: Limits,
    pending: Option<Pending>,
    /// The MAIL or RCPT waiting for its reply from the I/O loop.
    awaiting: Option<Awaiting>,
    /// XFORWARD attributes, kept until the transaction ends.
    forwarded: Forwarded,
}

#[derive(Debug, Clone)]
enum Awaiting {
    Mail(MailRequest),
    Rcpt(RcptRequest),
}

impl Session {
    pub fn new(hostname: &str, client_ip: IpAddr, limits: Limits, features: Features) -> Session {
        Session {
            state: State::Connected,
            hostname: hostname.to_owned(),
            client_ip,
            helo: None,
            esmtp: false,
            tls: false,
            features,
            errors: 0,
            limits,
            pending: None,
            awaiting: None,
            forwarded: Forwarded::default(),
        }
    }

    /// Returns the client of the current transaction: the one an authorised
    /// MTA named with XFORWARD, else the peer of the connection.
    pub fn client_ip(&self) -> IpAddr {
        self.forwarded.ip.unwrap_or(self.client_ip)
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// Returns whether a transaction is open, from an accepted MAIL to its final dot.
    pub fn in_transaction(&self) -> bool {
        self.pending.is_some()
    }

    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The client's greeting, or the one an authorised MTA forwarded.
    pub fn helo(&self) -> Option<&str> {
        match &self.forwarded.helo {
            Some(forwarded) => forwarded.as_deref(),
            None => self.helo.as_deref(),
        }
    }

    pub fn is_esmtp(&self) -> bool {
        self.esmtp
    }

    pub fn greeting(&self) -> Reply {
        Reply::service_ready(&self.hostname)
    }

    /// Handles one command line.
    pub fn command(&mut self, line: Line) -> Action {
        let bytes = match line {
            Line::Complete(bytes) => bytes,
            Line::TooLong => {
                return self.error(Reply::new(
                    500,
                    [5, 5, 2],
                    format!(
                        "Line too long, the limit is {} bytes",
                        self.limits.max_command_line
                    ),
                ));
            }
        };
        if self.features.xforward && starts_with_word(&bytes, b"XFORWARD") {
            return self.xforward(&bytes);
        }
        if (starts_with_word(&bytes, b"MAIL") || starts_with_word(&bytes, b"RCPT"))
            && let Some(param) = raw_non_ascii_xtext(&bytes)
        {
            return self.parse_error(ParseError::InvalidParameter { param });
        }
        match Request::parse(&mut bytes.iter()) {
            Ok(request) => self.request(request),
            Err(err) => self.parse_error(err),
        }
    }

    /// Moves the state on after MAIL with the upstream's reply, and returns the reply for the client.
    pub fn mail_replied(&mut self, reply: Reply) -> Reply {
        let Some(Awaiting::Mail(request)) = self.awaiting.take() else {
            return Reply::local_error();
        };
        if reply.is_positive() {
            self.pending = Some(Pending {
                from: request.from,
                params: request.params,
                recipients: Vec::new(),
                deferred: false,
            });
            self.enter(State::Mail);
        }
        reply
    }

    /// Moves the state on after RCPT with the upstream's reply, and returns the reply for the client.
    pub fn rcpt_replied(&mut self, reply: Reply) -> Reply {
        let Some(Awaiting::Rcpt(request)) = self.awaiting.take() else {
            return Reply::local_error();
        };
        if reply.code / 100 == 4
            && let Some(pending) = self.pending.as_mut()
        {
            pending.deferred = true;
        }
        if reply.is_positive()
            && let Some(pending) = self.pending.as_mut()
        {
            pending.recipients.push(request);
            self.enter(State::Rcpt);
        }
        reply
    }

    /// Resets the session after the TLS handshake: the client must greet again (RFC 3207 §4.2).
    pub fn tls_started(&mut self) {
        self.tls = true;
        self.helo = None;
        self.esmtp = false;
        self.pending = None;
        self.enter(State::Connected);
    }

    /// Ends the message text: returns the envelope and opens the session for the next transaction.
    ///
    /// Returns `None` when no message was being read.
    pub fn finish_data(&mut self) -> Option<Transaction> {
        if !matches!(self.state, State::Data | State::Bdat | State::Rcpt) {
            return None;
        }
        let pending = self.pending.take()?;
        let (rcpt_to, rcpt_params) = pending
            .recipients
            .into_iter()
            .map(|request| (request.to, request.params))
            .unzip();
        let transaction = Transaction {
            mail_from: pending.from,
            rcpt_to,
            rcpt_params,
            helo: self.helo().map(str::to_owned),
            client_ip: self.client_ip(),
            esmtp: self.esmtp,
            tls: self.tls,
            mail_params: pending.params,
        };
        self.forwarded = Forwarded::default();
        self.enter(State::Ready);
        Some(transaction)
    }

    /// Abandons the open transaction after a BDAT chunk was refused.
    pub fn abort_transaction(&mut self) {
        self.pending = None;
        self.forwarded = Forwarded::default();
        if self.state != State::Closed {
            self.enter(State::Ready);
        }
    }

    /// Marks the session closed after the I/O loop replied to a timeout or shutdown.
    pub fn close(&mut self) {
        self.enter(State::Closed);
    }

    fn request(&mut self, request: Request<Cow<'_, str>>) -> Action {
        if self.state == State::Bdat && !matches!(request, Request::Bdat { .. }) {
            // RFC 3030 §2: between chunks only BDAT, RSET and QUIT make sense.
            if !matches!(
                request,
                Request::Rset | Request::Quit | Request::Noop { .. }
            ) {
                return self.bad_sequence("BDAT transfer in progress, send BDAT or RSET");
            }
        }
        match request {
            Request::Ehlo { host } => self.hello(&host, true),
            Request::Helo { host } => self.hello(&host, false),
            Request::Mail { from } => self.mail(from),
            Request::Rcpt { to } => self.rcpt(to),
            Request::Data => self.data(),
            Request::Bdat {
                chunk_size,
                is_last,
            } => self.bdat(chunk_size, is_last),
            Request::StartTls => self.starttls(),
            Request::Rset => {
                self.pending = None;
                self.forwarded = Forwarded::default();
                if self.state != State::Connected {
                    self.enter(State::Ready);
                }
                Action::Reply(Reply::ok())
            }
            Request::Noop { .. } => Action::Reply(Reply::ok()),
            Request::Quit => {
                self.enter(State::Closed);
                Action::Close(Reply::closing(&self.hostname))
            }
            Request::Vrfy { .. } => Action::Reply(Reply::new(
                252,
                [2, 5, 0],
                "Cannot VRFY user, but will accept message and attempt delivery",
            )),
            Request::Help { .. } => Action::Reply(Reply::new(
                214,
                [2, 0, 0],
                "Commands: EHLO HELO STARTTLS MAIL RCPT DATA BDAT RSET NOOP VRFY HELP QUIT",
            )),
            Request::Lhlo { .. }
            | Request::Auth { .. }
            | Request::Expn { .. }
            | Request::Etrn { .. }
            | Request::Atrn { .. }
            | Request::Burl { .. } => Action::Reply(Reply::new(
                502,
                [5, 5, 1],
                format!("{} is not implemented", request.name()),
            )),
        }
    }

    fn hello(&mut self, host: &str, esmtp: bool) -> Action {
        if matches!(self.state, State::Data | State::Closed) {
            return self.bad_sequence("Unexpected greeting");
        }
        self.helo = clean_helo(host);
        self.esmtp = esmtp;
        // A greeting resets any open transaction (RFC 5321 §4.1.4).
        self.pending = None;
        self.enter(State::Ready);
        let greeting = format!("{} greets {}", self.hostname, self.client_ip);
        if !esmtp {
            return Action::Reply(Reply {
                code: 250,
                status: None,
                lines: vec![greeting],
            });
        }
        let mut lines = vec![
            greeting,
            "PIPELINING".to_owned(),
            format!("SIZE {}", self.limits.max_message_bytes),
            "8BITMIME".to_owned(),
            "SMTPUTF8".to_owned(),
            "ENHANCEDSTATUSCODES".to_owned(),
            "CHUNKING".to_owned(),
            "DSN".to_owned(),
        ];
        if self.features.starttls && !self.tls {
            lines.push("STARTTLS".to_owned());
        }
        if self.features.xforward {
            lines.push("XFORWARD NAME ADDR PROTO HELO SOURCE".to_owned());
        }
        Action::Reply(Reply {
            code: 250,
            status: None,
            lines,
        })
    }

    /// Records the client attributes that the MTA in front sends in Postfix's
    /// XFORWARD syntax: `NAME=value` pairs whose values are xtext, with
    /// `[UNAVAILABLE]` for an unknown value. Only ADDR and HELO matter to the
    /// analysis, so the other attributes are accepted and ignored.
    fn xforward(&mut self, line: &[u8]) -> Action {
        if self.state != State::Ready || self.pending.is_some() {
            return self.bad_sequence("XFORWARD only before MAIL");
        }
        let text = String::from_utf8_lossy(line);
        let attributes: Vec<&str> = text.split_ascii_whitespace().skip(1).collect();
        if attributes.is_empty() {
            return self.error(Reply::new(
                501,
                [5, 5, 4],
                "Syntax: XFORWARD attribute=value",
            ));
        }
        for attribute in attributes {
            let Some((name, value)) = attribute.split_once('=') else {
                return self.error(Reply::new(
                    501,
                    [5, 5, 4],
                    format!("Bad XFORWARD attribute {attribute}"),
                ));
            };
            let value = xtext_decode(value);
            let unknown = value.eq_ignore_ascii_case("[UNAVAILABLE]")
                || value.eq_ignore_ascii_case("[TEMPUNAVAIL]");
            match name.to_ascii_uppercase().as_str() {
                "ADDR" if unknown => self.forwarded.ip = None,
                "ADDR" => {
                    let address = value
                        .strip_prefix("IPV6:")
                        .or_else(|| value.strip_prefix("ipv6:"))
                        .unwrap_or(&value);
                    match address.parse::<IpAddr>() {
                        Ok(ip) => self.forwarded.ip = Some(ip),
                        Err(_) => {
                            return self.error(Reply::new(
                                501,
                                [5, 5, 4],
                                format!("Bad XFORWARD address {value}"),
                            ));
                        }
                    }
                }
                "HELO" if unknown => self.forwarded.helo = Some(None),
                "HELO" => self.forwarded.helo = Some(clean_helo(&value)),
                "NAME" | "PROTO" | "SOURCE" | "IDENT" | "PORT" => {}
                _ => {
                    return self.error(Reply::new(
                        501,
                        [5, 5, 4],
                        format!("Bad XFORWARD attribute name {name}"),
                    ));
                }
            }
        }
        Action::Reply(Reply::ok())
    }

    fn starttls(&mut self) -> Action {
        if !self.features.starttls {
            return Action::Reply(Reply::new(502, [5, 5, 1], "STARTTLS is not offered"));
        }
        if self.tls {
            return self.bad_sequence("TLS is already active");
        }
        if !matches!(self.state, State::Connected | State::Ready) {
            return self.bad_sequence("STARTTLS is not allowed inside a transaction");
        }
        Action::StartTls(Reply::new(220, [2, 0, 0], "Ready to start TLS"))
    }

    fn mail(&mut self, from: MailFrom<Cow<'_, str>>) -> Action {
        match self.state {
            State::Ready => {}
            State::Connected => return self.bad_sequence("Send EHLO or HELO first"),
            _ => return self.bad_sequence("Nested MAIL command"),
        }
        if from.size > self.limits.max_message_bytes {
            return Action::Reply(Reply::new(
                552,
                [5, 3, 4],
                format!(
                    "Message size exceeds the maximum of {} bytes",
                    self.limits.max_message_bytes
                ),
            ));
        }
        if let Some(parameter) = unoffered_mail_parameter(&from) {
            return self.error(Reply::new(
                555,
                [5, 5, 4],
                format!("Unsupported parameter {parameter}"),
            ));
        }
        // smtp-proto keeps any byte of a quoted local part, but RFC 5321
        // §4.1.2 allows only printable characters there, and a CR, LF or NUL
        // would split the command the proxy sends upstream.
        if has_control(&from.address) {
            return self.error(Reply::new(501, [5, 1, 7], "Invalid sender address syntax"));
        }
        let smtputf8 = from.flags & MAIL_SMTPUTF8 != 0;
        if !self.esmtp && from.flags != 0 {
            return self.error(Reply::new(555, [5, 5, 4], "MAIL parameters need EHLO"));
        }
        if !smtputf8 && !from.address.is_ascii() {
            return Action::Reply(needs_smtputf8());
        }
        let body = if from.flags & MAIL_BODY_8BITMIME != 0 {
            Some(Body::EightBitMime)
        } else if from.flags & MAIL_BODY_7BIT != 0 {
            Some(Body::SevenBit)
        } else {
            None
        };
        let ret = if from.flags & MAIL_RET_FULL != 0 {
            Some(Ret::Full)
        } else if from.flags & MAIL_RET_HDRS != 0 {
            Some(Ret::Headers)
        } else {
            None
        };
        let request = MailRequest {
            from: from.address.into_owned(),
            params: MailParams {
                size: (from.size > 0).then_some(from.size),
                body,
                smtputf8,
                ret,
                envid: from.env_id.as_deref().map(xtext_bytes),
            },
        };
        self.awaiting = Some(Awaiting::Mail(request.clone()));
        Action::Mail(request)
    }

    fn rcpt(&mut self, to: RcptTo<Cow<'_, str>>) -> Action {
        if to.address.is_empty() {
            return self.error(Reply::new(501, [5, 1, 3], "Empty recipient address"));
        }
        if has_control(&to.address) {
            return self.error(Reply::new(
                501,
                [5, 1, 3],
                "Invalid recipient address syntax",
            ));
        }
        let Some(pending) = &self.pending else {
            return self.bad_sequence("Need MAIL command");
        };
        if !matches!(self.state, State::Mail | State::Rcpt) {
            return self.bad_sequence("Need MAIL command");
        }
        if pending.recipients.len() >= self.limits.max_recipients {
            return Action::Reply(Reply::new(
                452,
                [4, 5, 3],
                format!(
                    "Too many recipients, the limit is {}",
                    self.limits.max_recipients
                ),
            ));
        }
        if to.flags & (RCPT_CONNEG | RCPT_RRVS_REJECT | RCPT_RRVS_CONTINUE) != 0 || to.rrvs != 0 {
            return self.error(Reply::new(555, [5, 5, 4], "Unsupported RCPT parameter"));
        }
        if !pending.params.smtputf8 && !to.address.is_ascii() {
            return Action::Reply(needs_smtputf8());
        }
        let notify = [
            (RCPT_NOTIFY_NEVER, "NEVER"),
            (RCPT_NOTIFY_SUCCESS, "SUCCESS"),
            (RCPT_NOTIFY_FAILURE, "FAILURE"),
            (RCPT_NOTIFY_DELAY, "DELAY"),
        ]
        .into_iter()
        .filter(|(flag, _)| to.flags & flag != 0)
        .map(|(_, name)| name)
        .collect();
        let request = RcptRequest {
            to: to.address.into_owned(),
            params: RcptParams {
                notify,
                // NOTE: smtp-proto rejects ORCPT types other than rfc822, such
                // as RFC 6533's utf-8, with 501 before this point.
                orcpt: to.orcpt.as_deref().map(xtext_bytes),
            },
        };
        self.awaiting = Some(Awaiting::Rcpt(request.clone()));
        Action::Rcpt(request)
    }

    fn data(&mut self) -> Action {
        match self.state {
            State::Rcpt => {}
            State::Mail => return self.no_valid_recipients(),
            _ => return self.bad_sequence("Need MAIL and RCPT commands"),
        }
        self.enter(State::Data);
        Action::StartData(Reply {
            code: 354,
            status: None,
            lines: vec!["End data with <CR><LF>.<CR><LF>".to_owned()],
        })
    }

    fn bdat(&mut self, size: usize, last: bool) -> Action {
        match self.state {
            State::Rcpt | State::Bdat => {}
            State::Mail => return discarding(size, self.no_valid_recipients()),
            _ => {
                return self.discard(
                    size,
                    Reply::new(503, [5, 5, 1], "Need MAIL and RCPT commands"),
                );
            }
        }
        self.enter(State::Bdat);
        Action::Chunk { size, last }
    }

    /// Replies 503 to DATA or BDAT without an accepted recipient. After
    /// recipients that only got 4xx replies, this is a pipelining client's
    /// normal sequence, so it counts toward `max_errors` only otherwise.
    fn no_valid_recipients(&mut self) -> Action {
        let reply = Reply::new(503, [5, 5, 1], "No valid recipients");
        if self
            .pending
            .as_ref()
            .is_some_and(|pending| pending.deferred)
        {
            Action::Reply(reply)
        } else {
            self.error(reply)
        }
    }

    /// Rejects a BDAT chunk, which must still be read whole.
    fn discard(&mut self, size: usize, reply: Reply) -> Action {
        let action = self.error(reply);
        discarding(size, action)
    }

    fn parse_error(&mut self, err: ParseError) -> Action {
        let reply = match err {
            ParseError::UnknownCommand => Reply::new(500, [5, 5, 2], "Command not recognized"),
            ParseError::InvalidSenderAddress => {
                Reply::new(501, [5, 1, 7], "Invalid sender address syntax")
            }
            ParseError::InvalidRecipientAddress => {
                Reply::new(501, [5, 1, 3], "Invalid recipient address syntax")
            }
            ParseError::SyntaxError { syntax } => {
                Reply::new(501, [5, 5, 4], format!("Syntax: {syntax}"))
            }
            ParseError::InvalidParameter { param } => {
                Reply::new(501, [5, 5, 4], format!("Invalid parameter {param}"))
            }
            ParseError::UnsupportedParameter { param } => Reply::new(
                555,
                [5, 5, 4],
                format!(
                    "Unsupported parameter {}",
                    clean_helo(&param).unwrap_or_default()
                ),
            ),
            ParseError::NeedsMoreData { .. }
            | ParseError::ResponseTooLong
            | ParseError::InvalidResponse { .. } => {
                Reply::new(500, [5, 5, 2], "Command not recognized")
            }
        };
        self.error(reply)
    }

    fn bad_sequence(&mut self, text: &str) -> Action {
        self.error(Reply::new(503, [5, 5, 1], text))
    }

    /// Counts a client error; at the limit the session ends with 421.
    fn error(&mut self, reply: Reply) -> Action {
        self.errors += 1;
        if self.errors >= self.limits.max_errors {
            self.enter(State::Closed);
            return Action::Close(Reply::new(
                421,
                [4, 7, 0],
                format!("{} closing connection after too many errors", self.hostname),
            ));
        }
        Action::Reply(reply)
    }

    fn enter(&mut self, next: State) {
        tracing::trace!(from = self.state.name(), to = next.name(), "session state");
        self.state = next;
    }
}

/// Returns whether a command line starts with `word`, in any case, followed by a space or the line end.
fn starts_with_word(line: &[u8], word: &[u8]) -> bool {
    line.len() >= word.len()
        && line[..word.len()].eq_ignore_ascii_case(word)
        && matches!(line.get(word.len()), None | Some(b' ' | b'\r' | b'\n'))
}

/// Decodes xtext (RFC 3461 §4): `+XX` is the byte with hex value XX.
fn xtext_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|pair| std::str::from_utf8(pair).ok())
            .and_then(|pair| u8::from_str_radix(pair, 16).ok());
        match (bytes[i], hex) {
            (b'+', Some(byte)) => {
                decoded.push(byte);
                i += 3;
            }
            (byte, _) => {
                decoded.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

/// Returns whether an address contains a control character, which no mailbox may contain.
fn has_control(address: &str) -> bool {
    address.chars().any(char::is_control)
}

fn needs_smtputf8() -> Reply {
    Reply::new(553, [5, 6, 7], "Non-ASCII address without SMTPUTF8 in MAIL")
}

/// Returns the name of a MAIL parameter whose extension the proxy does not
/// offer. smtp-proto parses them all, but RFC 5321 §4.1.1.11 has a server
/// reject parameters it did not announce.
fn unoffered_mail_parameter(from: &MailFrom<Cow<'_, str>>) -> Option<&'static str> {
    if from.flags & MAIL_BODY_BINARYMIME != 0 {
        return Some("BODY=BINARYMIME");
    }
    if from.flags & MAIL_REQUIRETLS != 0 {
        return Some("REQUIRETLS");
    }
    if from.flags & MAIL_CONPERM != 0 {
        return Some("CONPERM");
    }
    if from.flags & (MAIL_BY_NOTIFY | MAIL_BY_RETURN | MAIL_BY_TRACE) != 0 || from.by != 0 {
        return Some("BY");
    }
    if from.auth.is_some() {
        return Some("AUTH");
    }
    if from.hold_for != 0 || from.hold_until != 0 {
        return Some("HOLDFOR");
    }
    if from.mt_priority != 0 {
        return Some("MT-PRIORITY");
    }
    if from.mtrk.is_some() {
        return Some("MTRK");
    }
    if from.solicit.is_some() {
        return Some("SOLICIT");
    }
    if from.trans_id.is_some() {
        return Some("TRANSID");
    }
    None
}

/// Turns the reply to a rejected BDAT command into one that discards its
/// chunk of `size` bytes.
fn discarding(size: usize, action: Action) -> Action {
    match action {
        Action::Reply(reply) => Action::DiscardChunk { size, reply },
        other => other,
    }
}

/// Names the DSN parameter (ENVID, ORCPT) of a MAIL or RCPT line that
/// contains a byte outside ASCII. xtext has none (RFC 3461 §4), and smtp-proto
/// would read such bytes as characters, so the value would change on its
/// way upstream.
fn raw_non_ascii_xtext(line: &[u8]) -> Option<&'static str> {
    line.split(|byte| *byte == b' ').find_map(|word| {
        ["ENVID", "ORCPT"].into_iter().find(|name| {
            word.len() > name.len()
                && word[..name.len()].eq_ignore_ascii_case(name.as_bytes())
                && word[name.len()] == b'='
                && !word.is_ascii()
        })
    })
}

/// The bytes of an xtext value as smtp-proto decodes it: one `char` per
/// byte, so `+C3+A9` arrives as `Ã©` and must not be encoded again as UTF-8.
fn xtext_bytes(decoded: &str) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(decoded.len());
    for c in decoded.chars() {
        match u8::try_from(c) {
            Ok(byte) => bytes.push(byte),
            Err(_) => bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    bytes
}

/// Cleans the EHLO or HELO argument for a Received header: printable ASCII
/// without spaces, at most 255 characters (the maximum domain length). An
/// internationalised name (RFC 6531 allows U-labels in EHLO) is written
/// with A-labels, so `bücher.example` stays readable as
/// `xn--bcher-kva.example` rather than losing its letters. Returns `None`
/// when nothing printable is left. XCLIENT then says `HELO=[UNAVAILABLE]`,
/// because Postfix rejects an empty value.
fn clean_helo(host: &str) -> Option<String> {
    let ascii = if host.is_ascii() {
        None
    } else {
        idna::domain_to_ascii(host).ok()
    };
    let cleaned: String = ascii
        .as_deref()
        .unwrap_or(host)
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(255)
        .collect();
    (!cleaned.is_empty()).then_some(cleaned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        Session::new(
            "mx.test",
            IpAddr::from([192, 0, 2, 1]),
            Limits {
                max_recipients: 2,
                ..Limits::default()
            },
            Features::default(),
        )
    }

    fn say(session: &mut Session, line: &str) -> Action {
        let action = session.command(Line::Complete(line.as_bytes().to_vec()));
        // Accept MAIL and RCPT locally, as the proxy does without an upstream.
        match action {
            Action::Mail(_) => {
                Action::Reply(session.mail_replied(Reply::new(250, [2, 1, 0], "Ok")))
            }
            Action::Rcpt(_) => {
                Action::Reply(session.rcpt_replied(Reply::new(250, [2, 1, 5], "Ok")))
            }
            other => other,
        }
    }

    fn code(action: &Action) -> u16 {
        match action {
            Action::Reply(reply)
            | Action::StartData(reply)
            | Action::StartTls(reply)
            | Action::DiscardChunk { reply, .. }
            | Action::Close(reply) => reply.code,
            Action::Mail(_) | Action::Rcpt(_) | Action::Chunk { .. } => 0,
        }
    }

    #[test]
    fn full_transaction_reaches_data() {
        let mut session = session();

        assert_eq!(code(&say(&mut session, "EHLO client.test\r\n")), 250);
        assert_eq!(code(&say(&mut session, "MAIL FROM:<a@b.test>\r\n")), 250);
        assert_eq!(code(&say(&mut session, "RCPT TO:<c@d.test>\r\n")), 250);
        assert!(matches!(
            say(&mut session, "DATA\r\n"),
            Action::StartData(_)
        ));

        let transaction = session.finish_data();
        assert_eq!(
            transaction.map(|t| (t.mail_from, t.rcpt_to)),
            Some(("a@b.test".to_owned(), vec!["c@d.test".to_owned()]))
        );
        assert_eq!(session.state(), State::Ready);
    }

    /// Builds a session with an MTA on loopback that may send XFORWARD.
    fn forwarding_session() -> Session {
        Session::new(
            "mx.test",
            IpAddr::from([127, 0, 0, 1]),
            Limits::default(),
            Features {
                xforward: true,
                ..Features::default()
            },
        )
    }

    /// Runs one transaction and returns its client address and HELO.
    fn transaction_client(session: &mut Session) -> (IpAddr, Option<String>) {
        say(session, "MAIL FROM:<a@b.test>\r\n");
        say(session, "RCPT TO:<c@d.test>\r\n");
        say(session, "DATA\r\n");
        let transaction = session.finish_data().expect("transaction");
        (transaction.client_ip, transaction.helo)
    }

    #[test]
    fn xforward_names_the_client_of_one_transaction() {
        let mut session = forwarding_session();
        let Action::Reply(ehlo) = say(&mut session, "EHLO postfix.test\r\n") else {
            panic!("EHLO gave no reply");
        };
        assert!(ehlo.lines.iter().any(|line| line.starts_with("XFORWARD ")));

        let forwarded = say(
            &mut session,
            "XFORWARD NAME=spam.test ADDR=IPV6:2001:db8::7 HELO=mail+2Bx.test PROTO=ESMTP\r\n",
        );
        assert_eq!(code(&forwarded), 250);
        let (ip, helo) = transaction_client(&mut session);
        assert_eq!(ip, "2001:db8::7".parse::<IpAddr>().expect("address"));
        assert_eq!(helo.as_deref(), Some("mail+x.test"));

        // The next transaction is Postfix's own until it forwards again.
        let (ip, helo) = transaction_client(&mut session);
        assert_eq!(ip, IpAddr::from([127, 0, 0, 1]));
        assert_eq!(helo.as_deref(), Some("postfix.test"));
    }

    #[test]
    fn xforward_unknown_helo_stays_unknown() {
        let mut session = forwarding_session();
        say(&mut session, "EHLO postfix.test\r\n");

        let forwarded = say(
            &mut session,
            "XFORWARD ADDR=192.0.2.8 HELO=[UNAVAILABLE]\r\n",
        );
        assert_eq!(code(&forwarded), 250);
        let (_, helo) = transaction_client(&mut session);
        assert_eq!(helo, None);
    }

    #[test]
    fn xforward_from_an_unauthorised_client_is_unknown() {
        let mut session = session();
        let Action::Reply(ehlo) = say(&mut session, "EHLO client.test\r\n") else {
            panic!("EHLO gave no reply");
        };
        assert!(!ehlo.lines.iter().any(|line| line.starts_with("XFORWARD")));

        let forwarded = say(&mut session, "XFORWARD ADDR=127.0.0.1\r\n");
        assert_eq!(code(&forwarded), 500);
        let (ip, _) = transaction_client(&mut session);
        assert_eq!(ip, IpAddr::from([192, 0, 2, 1]));
    }

    #[test]
    fn xforward_inside_a_transaction_is_bad_sequence() {
        let mut session = forwarding_session();
        say(&mut session, "EHLO postfix.test\r\n");
        say(&mut session, "MAIL FROM:<a@b.test>\r\n");
        assert_eq!(code(&say(&mut session, "XFORWARD ADDR=192.0.2.9\r\n")), 503);
        assert_eq!(code(&say(&mut session, "RSET\r\n")), 250);
        assert_eq!(code(&say(&mut session, "XFORWARD ADDR=bogus\r\n")), 501);
    }

    #[test]
    fn refused_recipient_is_left_out() {
        let mut session = session();
        say(&mut session, "EHLO client.test\r\n");
        say(&mut session, "MAIL FROM:<a@b.test>\r\n");
        say(&mut session, "RCPT TO:<c@d.test>\r\n");

        let action = session.command(Line::Complete(b"RCPT TO:<nobody@d.test>\r\n".to_vec()));
        assert!(matches!(action, Action::Rcpt(_)), "{action:?}");
        let reply = session.rcpt_replied(Reply::new(550, [5, 1, 1], "no such user"));
        assert_eq!(reply.code, 550);
        say(&mut session, "DATA\r\n");

        let transaction = session.finish_data().expect("transaction");
        assert_eq!(transaction.rcpt_to, vec!["c@d.test".to_owned()]);
    }

    #[test]
    fn refused_mail_opens_no_transaction() {
        let mut session = session();
        say(&mut session, "EHLO client.test\r\n");
        session.command(Line::Complete(b"MAIL FROM:<a@b.test>\r\n".to_vec()));

        session.mail_replied(Reply::new(451, [4, 4, 1], "later"));

        assert_eq!(session.state(), State::Ready);
        assert_eq!(code(&say(&mut session, "RCPT TO:<c@d.test>\r\n")), 503);
    }

    #[test]
    fn mail_before_greeting_is_bad_sequence() {
        let mut session = session();

        assert_eq!(code(&say(&mut session, "MAIL FROM:<a@b.test>\r\n")), 503);
    }

    #[test]
    fn recipients_over_limit_are_deferred() {
        let mut session = session();
        say(&mut session, "EHLO client.test\r\n");
        say(&mut session, "MAIL FROM:<a@b.test>\r\n");
        say(&mut session, "RCPT TO:<1@d.test>\r\n");
        say(&mut session, "RCPT TO:<2@d.test>\r\n");

        assert_eq!(code(&say(&mut session, "RCPT TO:<3@d.test>\r\n")), 452);
    }

    #[test]
    fn third_error_closes_session() {
        let mut session = session();

        assert_eq!(code(&say(&mut session, "BOGUS\r\n")), 500);
        assert_eq!(code(&say(&mut session, "BOGUS\r\n")), 500);
        let third = say(&mut session, "BOGUS\r\n");

        assert!(
            matches!(third, Action::Close(ref reply) if reply.code == 421),
            "{third:?}"
        );
        assert_eq!(session.state(), State::Closed);
    }

    #[test]
    fn declared_size_over_limit_is_rejected() {
        let mut session = session();
        say(&mut session, "EHLO client.test\r\n");

        let action = say(&mut session, "MAIL FROM:<a@b.test> SIZE=999999999999\r\n");

        assert_eq!(code(&action), 552);
    }

    #[test]
    fn unoffered_parameters_are_refused() {
        let cases = [
            ("binarymime", "MAIL FROM:<a@b.test> BODY=BINARYMIME\r\n"),
            ("requiretls", "MAIL FROM:<a@b.test> REQUIRETLS\r\n"),
            ("auth", "MAIL FROM:<a@b.test> AUTH=<>\r\n"),
        ];
        for (case, line) in cases {
            let mut session = session();
            say(&mut session, "EHLO client.test\r\n");

            assert_eq!(code(&say(&mut session, line)), 555, "{case}");
        }
    }

    #[test]
    fn address_with_control_character_rejected() {
        let mut session = session();
        say(&mut session, "EHLO client.test\r\n");
        let action = say(&mut session, "MAIL FROM:<\"a\0\"@c.test>\r\n");
        assert_eq!(code(&action), 501);
        let action = say(&mut session, "MAIL FROM:<a@c.test>\r\n");
        assert_eq!(code(&action), 250);
        let action = say(&mut session, "RCPT TO:<\"x\\\u{1b}\"@y.test>\r\n");
        assert_eq!(code(&action), 501);
    }

    #[test]
    fn utf8_address_needs_smtputf8() {
        let mut session = session();
        say(&mut session, "EHLO client.test\r\n");

        assert_eq!(code(&say(&mut session, "MAIL FROM:<josé@b.test>\r\n")), 553);
        let accepted = say(&mut session, "MAIL FROM:<josé@b.test> SMTPUTF8\r\n");
        assert_eq!(code(&accepted), 250);
    }

    #[test]
    fn dsn_parameters_are_kept() {
        let mut session = session();
        say(&mut session, "EHLO client.test\r\n");

        let action = session.command(Line::Complete(
            b"MAIL FROM:<a@b.test> RET=HDRS ENVID=QQ+2B1\r\n".to_vec(),
        ));
        let Action::Mail(request) = action else {
            panic!("{action:?}");
        };
        assert_eq!(request.params.ret, Some(Ret::Headers));
        assert_eq!(request.params.envid.as_deref(), Some(b"QQ+1".as_slice()));
        session.mail_replied(Reply::ok());

        let action = session.command(Line::Complete(
            b"RCPT TO:<c@d.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;c@d.test\r\n".to_vec(),
        ));
        let Action::Rcpt(request) = action else {
            panic!("{action:?}");
        };
        assert_eq!(request.params.notify, vec!["SUCCESS", "FAILURE"]);
        assert_eq!(
            request.params.orcpt.as_deref(),
            Some(b"c@d.test".as_slice())
        );
    }

    #[test]
    fn dsn_xtext_keeps_utf8_bytes() {
        let mut session = session();
        say(&mut session, "EHLO client.test\r\n");

        let action = session.command(Line::Complete(
            b"MAIL FROM:<a@b.test> ENVID=caf+C3+A9\r\n".to_vec(),
        ));
        let Action::Mail(request) = action else {
            panic!("{action:?}");
        };
        assert_eq!(request.params.envid.as_deref(), Some("café".as_bytes()));
        session.mail_replied(Reply::ok());

        let action = session.command(Line::Complete(
            b"RCPT TO:<c@d.test> ORCPT=rfc822;j+C3+B6rg@d.test\r\n".to_vec(),
        ));
        let Action::Rcpt(request) = action else {
            panic!("{action:?}");
        };
        assert_eq!(
            request.params.orcpt.as_deref(),
            Some("jörg@d.test".as_bytes())
        );
    }

    #[test]
    fn bdat_without_recipients_is_discarded() {
        let mut session = session();
        say(&mut session, "EHLO client.test\r\n");

        let action = say(&mut session, "BDAT 10 LAST\r\n");

        assert!(
            matches!(action, Action::DiscardChunk { size: 10, ref reply } if reply.code == 503),
            "{action:?}"
        );
    }

    #[test]
    fn data_inside_bdat_is_bad_sequence() {
        let mut session = session();
        say(&mut session, "EHLO client.test\r\n");
        say(&mut session, "MAIL FROM:<a@b.test>\r\n");
        say(&mut session, "RCPT TO:<c@d.test>\r\n");
        assert_eq!(
            say(&mut session, "BDAT 4\r\n"),
            Action::Chunk {
                size: 4,
                last: false
            }
        );

        assert_eq!(code(&say(&mut session, "DATA\r\n")), 503);
    }

    #[test]
    fn starttls_resets_greeting() {
        let mut session = Session::new(
            "mx.test",
            IpAddr::from([192, 0, 2, 1]),
            Limits::default(),
            Features {
                starttls: true,
                ..Features::default()
            },
        );
        say(&mut session, "EHLO client.test\r\n");

        assert!(matches!(
            say(&mut session, "STARTTLS\r\n"),
            Action::StartTls(_)
        ));
        session.tls_started();

        assert_eq!(session.state(), State::Connected);
        assert_eq!(code(&say(&mut session, "MAIL FROM:<a@b.test>\r\n")), 503);
        assert_eq!(code(&say(&mut session, "STARTTLS\r\n")), 503);
    }

    #[test]
    fn helo_is_cleaned_for_headers() {
        let cleaned = |host| clean_helo(host).unwrap_or_default();
        assert_eq!(cleaned("evil\r\nX-Injected: 1"), "evilX-Injected:1");
        assert_eq!(cleaned("bücher.example"), "xn--bcher-kva.example");
        assert_eq!(cleaned("MX.Bücher.example"), "mx.xn--bcher-kva.example");
        // Not a domain name: non-ASCII letters go, as before.
        assert_eq!(cleaned("bü cher\u{202e}"), "bcher");
    }

    #[test]
    fn data_after_deferred_recipients_is_no_error() {
        let mut session = session();
        say(&mut session, "EHLO client.test\r\n");
        for _ in 0..4 {
            say(&mut session, "MAIL FROM:<a@b.test>\r\n");
            let action = session.command(Line::Complete(b"RCPT TO:<c@d.test>\r\n".to_vec()));
            assert!(matches!(action, Action::Rcpt(_)), "{action:?}");
            session.rcpt_replied(Reply::new(451, [4, 4, 1], "Upstream unavailable"));
            assert_eq!(code(&say(&mut session, "DATA\r\n")), 503);
            say(&mut session, "RSET\r\n");
        }
        assert_ne!(session.state(), State::Closed);
    }

    #[test]
    fn raw_utf8_in_xtext_is_invalid() {
        let mut session = session();
        say(&mut session, "EHLO client.test\r\n");
        assert_eq!(
            code(&say(&mut session, "MAIL FROM:<a@b.test> ENVID=café\r\n")),
            501
        );
        say(&mut session, "MAIL FROM:<a@b.test>\r\n");
        assert_eq!(
            code(&say(
                &mut session,
                "RCPT TO:<c@d.test> ORCPT=rfc822;jörg@d.test\r\n"
            )),
            501
        );
    }

    #[test]
    fn invisible_helo_counts_as_none() {
        let mut session = session();
        assert_eq!(code(&say(&mut session, "EHLO \u{202e}\u{200b}\r\n")), 250);
        assert_eq!(session.helo(), None);
    }
}
