//! The SMTP session state machine, sans I/O: command lines in, replies and actions out.

use std::borrow::Cow;
use std::net::IpAddr;

use smtp_proto::{Error as ParseError, Request};

use crate::Limits;
use crate::line::Line;
use crate::reply::Reply;

/// The protocol state of a session. Every command checks its precondition against this
/// before it acts, and every change goes through [`Session::enter`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Connected and greeted with 220; no EHLO or HELO yet.
    Connected,
    /// EHLO or HELO accepted; no transaction open.
    Ready,
    /// MAIL accepted.
    Mail { from: String },
    /// MAIL and at least one RCPT accepted.
    Rcpt { from: String, to: Vec<String> },
    /// 354 sent; the message text is being read.
    Data { from: String, to: Vec<String> },
    /// 221 or 421 sent; the connection closes.
    Closed,
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            State::Connected => "connected",
            State::Ready => "ready",
            State::Mail { .. } => "mail",
            State::Rcpt { .. } => "rcpt",
            State::Data { .. } => "data",
            State::Closed => "closed",
        }
    }
}

/// The step the I/O loop takes after a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send the reply and read the next command.
    Reply(Reply),
    /// Send the reply (354) and read the message text with a `DataReader`.
    StartData(Reply),
    /// Send the reply and close the connection.
    Close(Reply),
}

/// One message's envelope, complete once the final dot has been read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub helo: Option<String>,
    pub client_ip: IpAddr,
    /// Whether the client greeted with EHLO rather than HELO.
    pub esmtp: bool,
}

/// The protocol state of one client connection.
#[derive(Debug)]
pub struct Session {
    state: State,
    hostname: String,
    client_ip: IpAddr,
    helo: Option<String>,
    esmtp: bool,
    errors: u32,
    limits: Limits,
}

impl Session {
    pub fn new(hostname: &str, client_ip: IpAddr, limits: Limits) -> Session {
        Session {
            state: State::Connected,
            hostname: hostname.to_owned(),
            client_ip,
            helo: None,
            esmtp: false,
            errors: 0,
            limits,
        }
    }

    pub fn state(&self) -> &State {
        &self.state
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
        match Request::parse(&mut bytes.iter()) {
            Ok(request) => self.request(request),
            Err(err) => self.parse_error(err),
        }
    }

    /// Ends the DATA phase: returns the envelope and opens the session for the next transaction.
    ///
    /// Returns `None` when no message was being read.
    pub fn finish_data(&mut self) -> Option<Transaction> {
        let State::Data { from, to } = &self.state else {
            return None;
        };
        let transaction = Transaction {
            mail_from: from.clone(),
            rcpt_to: to.clone(),
            helo: self.helo.clone(),
            client_ip: self.client_ip,
            esmtp: self.esmtp,
        };
        self.enter(State::Ready);
        Some(transaction)
    }

    /// Marks the session closed after the I/O loop replied to a timeout or shutdown.
    pub fn close(&mut self) {
        self.enter(State::Closed);
    }

    fn request(&mut self, request: Request<Cow<'_, str>>) -> Action {
        match request {
            Request::Ehlo { host } => self.hello(&host, true),
            Request::Helo { host } => self.hello(&host, false),
            Request::Mail { from } => self.mail(&from.address, from.size),
            Request::Rcpt { to } => self.rcpt(&to.address),
            Request::Data => self.data(),
            Request::Rset => {
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
                "Commands: EHLO HELO MAIL RCPT DATA RSET NOOP VRFY HELP QUIT",
            )),
            Request::Bdat { .. } => self.error(Reply::new(
                502,
                [5, 5, 1],
                "BDAT is not supported; CHUNKING is not offered",
            )),
            Request::Lhlo { .. }
            | Request::StartTls
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
        if matches!(self.state, State::Data { .. } | State::Closed) {
            return self.bad_sequence("Unexpected greeting");
        }
        self.helo = Some(clean_helo(host));
        self.esmtp = esmtp;
        // A greeting resets any open transaction (RFC 5321 §4.1.4).
        self.enter(State::Ready);
        let greeting = format!("{} greets {}", self.hostname, self.client_ip);
        if !esmtp {
            return Action::Reply(Reply {
                code: 250,
                status: None,
                lines: vec![greeting],
            });
        }
        Action::Reply(Reply {
            code: 250,
            status: None,
            lines: vec![
                greeting,
                "PIPELINING".to_owned(),
                format!("SIZE {}", self.limits.max_message_bytes),
                "8BITMIME".to_owned(),
                "ENHANCEDSTATUSCODES".to_owned(),
            ],
        })
    }

    fn mail(&mut self, from: &str, declared_size: usize) -> Action {
        match self.state {
            State::Ready => {}
            State::Connected => return self.bad_sequence("Send EHLO or HELO first"),
            _ => return self.bad_sequence("Nested MAIL command"),
        }
        if declared_size > self.limits.max_message_bytes {
            return Action::Reply(Reply::new(
                552,
                [5, 3, 4],
                format!(
                    "Message size exceeds the maximum of {} bytes",
                    self.limits.max_message_bytes
                ),
            ));
        }
        self.enter(State::Mail {
            from: from.to_owned(),
        });
        Action::Reply(Reply::new(250, [2, 1, 0], "Ok"))
    }

    fn rcpt(&mut self, to: &str) -> Action {
        if to.is_empty() {
            return self.error(Reply::new(501, [5, 1, 3], "Empty recipient address"));
        }
        let (from, mut recipients) = match &self.state {
            State::Mail { from } => (from.clone(), Vec::new()),
            State::Rcpt { from, to } => (from.clone(), to.clone()),
            _ => return self.bad_sequence("Need MAIL command"),
        };
        if recipients.len() >= self.limits.max_recipients {
            return Action::Reply(Reply::new(
                452,
                [4, 5, 3],
                format!(
                    "Too many recipients, the limit is {}",
                    self.limits.max_recipients
                ),
            ));
        }
        recipients.push(to.to_owned());
        self.enter(State::Rcpt {
            from,
            to: recipients,
        });
        Action::Reply(Reply::new(250, [2, 1, 5], "Ok"))
    }

    fn data(&mut self) -> Action {
        let (from, to) = match &self.state {
            State::Rcpt { from, to } => (from.clone(), to.clone()),
            State::Mail { .. } => {
                return self.bad_sequence("No valid recipients");
            }
            _ => return self.bad_sequence("Need MAIL and RCPT commands"),
        };
        self.enter(State::Data { from, to });
        Action::StartData(Reply {
            code: 354,
            status: None,
            lines: vec!["End data with <CR><LF>.<CR><LF>".to_owned()],
        })
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
                format!("Unsupported parameter {}", clean_helo(&param)),
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

/// Cleans the EHLO or HELO argument for a Received header: printable ASCII
/// without spaces, at most 255 characters (the maximum domain length).
fn clean_helo(host: &str) -> String {
    host.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(255)
        .collect()
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
        )
    }

    fn say(session: &mut Session, line: &str) -> Action {
        session.command(Line::Complete(line.as_bytes().to_vec()))
    }

    fn code(action: &Action) -> u16 {
        match action {
            Action::Reply(reply) | Action::StartData(reply) | Action::Close(reply) => reply.code,
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
        assert_eq!(session.state(), &State::Ready);
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
        assert_eq!(session.state(), &State::Closed);
    }

    #[test]
    fn declared_size_over_limit_is_rejected() {
        let mut session = session();
        say(&mut session, "EHLO client.test\r\n");

        let action = say(&mut session, "MAIL FROM:<a@b.test> SIZE=999999999999\r\n");

        assert_eq!(code(&action), 552);
    }

    #[test]
    fn helo_is_cleaned_for_headers() {
        assert_eq!(clean_helo("evil\r\nX-Injected: 1"), "evilX-Injected:1");
    }
}
