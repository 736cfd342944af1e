//! The sans-I/O milter session: commands in, responses out, and the
//! rebuilt message handed to the caller at its end.
//!
//! One [`Session`] serves one MTA connection. [`Session::handle`] takes each
//! decoded [`Command`] and returns a [`Step`]: responses to send, a finished
//! message to judge, or the end of the connection. Commands that negotiation
//! marked "no reply" get no response. The caller judges the message and passes
//! the [`Decision`] to [`Session::finish`], which returns the end-of-message
//! responses.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::codec::{Command, Family, Options, ProtocolError, Response};
use crate::protocol::{self, action, flag, stage};

/// The session's position in the milter dialog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Waiting for option negotiation, the first packet of a connection.
    Negotiating,
    /// Negotiated; waiting for the SMTP client's CONNECT.
    Ready,
    /// Connected; HELO, MAIL or an unknown command may follow.
    Connection,
    /// After MAIL: recipients, DATA or the first header.
    Envelope,
    /// Receiving header fields.
    Headers,
    /// After the end of the headers: receiving body chunks.
    Body,
    /// The message is complete and waits for [`Session::finish`].
    Deciding,
    /// The MTA sent QUIT.
    Closed,
}

impl State {
    fn name(self) -> &'static str {
        match self {
            State::Negotiating => "negotiating",
            State::Ready => "ready",
            State::Connection => "connection",
            State::Envelope => "envelope",
            State::Headers => "headers",
            State::Body => "body",
            State::Deciding => "deciding",
            State::Closed => "closed",
        }
    }
}

/// The caller's next action after one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send these responses; empty when the MTA expects no reply.
    Reply(Vec<Response>),
    /// The message is complete: judge it and call [`Session::finish`].
    Judge(Box<Message>),
    /// The MTA ended the connection.
    Close,
}

/// A message as the MTA passed it, rebuilt for analysis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The envelope sender without angle brackets; empty for the null sender.
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub helo: Option<String>,
    /// From the CONNECT packet, else the `{client_addr}` macro.
    pub client_ip: Option<IpAddr>,
    /// The client's host name as the MTA resolved it, or `[address]`.
    pub client_name: String,
    /// The SASL login (`{auth_authen}`), when the client authenticated.
    pub authenticated_user: Option<String>,
    /// The MTA's queue id (`i`).
    pub queue_id: Option<String>,
    /// The MTA's host name (`j`).
    pub mta_hostname: Option<String>,
    /// The MTA's listener that took the connection (`{daemon_name}`).
    pub daemon_name: Option<String>,
    /// Header fields and body with CRLF line endings, without the MTA's own
    /// Received field, which milters never see.
    pub content: Vec<u8>,
    /// The message grew past `max_message_bytes`, so `content` contains only its start.
    pub oversized: bool,
}

/// The caller's decision on a message, which [`Session::finish`] turns into responses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Let the message through with these header fields appended. Fields of
    /// the same names already in the message are deleted first, so a sender
    /// cannot forge them.
    Accept { headers: Vec<(String, String)> },
    /// Let the message through with a new body (for a banner) and header fields.
    AcceptWithBody {
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Tell the MTA to drop the message while the client sees success.
    Discard,
    /// Put the message on the MTA's hold queue with a reason.
    Quarantine { reason: String },
    /// Reject with a permanent SMTP reply such as `550 5.7.1 ...`.
    Reject { reply: String },
    /// Fail temporarily with an SMTP reply such as `451 4.3.0 ...`, so the client retries.
    Tempfail { reply: String },
}

/// Macros as the MTA sent them, keyed by name without braces.
#[derive(Debug, Clone, Default)]
struct Macros(HashMap<u8, Vec<(String, String)>>);

impl Macros {
    fn set(&mut self, stage: u8, macros: Vec<(String, String)>) {
        self.0.insert(stage, macros);
    }

    /// Returns the value of `name` (`i`, `{auth_authen}` or `auth_authen`)
    /// from the latest of `stages` that defines it.
    fn get(&self, stages: &[u8], name: &str) -> Option<&str> {
        let wanted = bare(name);
        stages.iter().rev().find_map(|stage| {
            self.0.get(stage).and_then(|macros| {
                macros
                    .iter()
                    .find(|(key, _)| bare(key) == wanted)
                    .map(|(_, value)| value.as_str())
            })
        })
    }

    fn clear_message_stages(&mut self) {
        self.0.retain(|stage, _| CONNECTION_STAGES.contains(stage));
    }
}

fn bare(name: &str) -> &str {
    name.strip_prefix('{')
        .and_then(|name| name.strip_suffix('}'))
        .unwrap_or(name)
}

/// Macro stages that belong to the connection, kept across messages.
const CONNECTION_STAGES: [u8; 2] = [b'C', b'H'];
/// Every stage, in the order the MTA sends them.
const ALL_STAGES: [u8; 9] = [b'C', b'H', b'M', b'R', b'T', b'L', b'N', b'B', b'E'];

/// The macros this front requests from the MTA at each stage, when the MTA lets
/// the filter choose (version 6 and `SMFIF_SETSYMLIST`). Each list replaces
/// the MTA's configured list for that stage.
const MACRO_LISTS: [(u32, &str); 4] = [
    (
        stage::CONNECT,
        "j {daemon_name} {client_addr} {client_name}",
    ),
    (stage::MAIL, "i {auth_authen} {auth_type} {mail_addr}"),
    (stage::RCPT, "i {rcpt_addr}"),
    (stage::END_OF_MESSAGE, "i"),
];

/// The modifications this front may request.
const WANTED_ACTIONS: u32 = action::ADD_HEADERS
    | action::CHANGE_HEADERS
    | action::CHANGE_BODY
    | action::QUARANTINE
    | action::SET_MACRO_LIST;

/// The protocol extensions this front requests. Packets that get no reply
/// stall Postfix's next write unless the front acknowledges them at once,
/// which the tokio side does with `TCP_QUICKACK` on Linux.
const WANTED_PROTOCOL: u32 = flag::NO_REPLY_ALL | flag::HEADER_LEADING_SPACE;

/// The oldest protocol version with every command this front needs.
const MIN_VERSION: u32 = 2;

/// The message being received.
#[derive(Debug, Default)]
struct Transaction {
    mail_from: String,
    rcpt_to: Vec<String>,
    content: Vec<u8>,
    oversized: bool,
    /// Header fields named `X-Gatehouse-*` that arrived with the message:
    /// the name as sent and how many times it occurred.
    forged: Vec<(String, u32)>,
    /// The blank line after the header was written.
    header_closed: bool,
}

/// One MTA connection's milter dialog.
#[derive(Debug)]
pub struct Session {
    state: State,
    max_message_bytes: usize,
    options: Options,
    client_ip: Option<IpAddr>,
    client_name: String,
    helo: Option<String>,
    macros: Macros,
    transaction: Transaction,
}

impl Session {
    pub fn new(max_message_bytes: usize) -> Session {
        Session {
            state: State::Negotiating,
            max_message_bytes,
            options: Options {
                version: 0,
                actions: 0,
                protocol: 0,
            },
            client_ip: None,
            client_name: String::new(),
            helo: None,
            macros: Macros::default(),
            transaction: Transaction::default(),
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// Returns the options both sides agreed on, all zero before negotiation.
    pub fn options(&self) -> Options {
        self.options
    }

    /// Handles one command from the MTA.
    pub fn handle(&mut self, command: Command) -> Result<Step, ProtocolError> {
        match command {
            Command::Negotiate(offered) => self.negotiate(offered),
            Command::Macro { stage, macros } => {
                self.expect(&[State::Negotiating, State::Closed], false, "macro")?;
                self.macros.set(stage, macros);
                Ok(Step::Reply(Vec::new()))
            }
            Command::Connect(connect) => {
                self.expect(&[State::Ready], true, "connect")?;
                self.client_name = connect.hostname;
                self.client_ip = match connect.family {
                    Family::Inet | Family::Inet6 => parse_ip(&connect.address),
                    Family::Unix | Family::Unknown => None,
                };
                if self.client_ip.is_none() {
                    self.client_ip = self.macro_value("client_addr").and_then(parse_ip);
                }
                self.state = State::Connection;
                Ok(self.reply_unless(flag::NO_REPLY_CONNECT))
            }
            Command::Helo(helo) => {
                self.expect(&[State::Connection, State::Envelope], true, "helo")?;
                self.helo = Some(helo);
                Ok(self.reply_unless(flag::NO_REPLY_HELO))
            }
            Command::Mail(arguments) => {
                self.expect(&[State::Connection, State::Envelope], true, "mail")?;
                self.transaction = Transaction {
                    mail_from: address(&arguments)
                        .or_else(|| self.macro_value("mail_addr").map(str::to_owned))
                        .unwrap_or_default(),
                    ..Transaction::default()
                };
                self.state = State::Envelope;
                Ok(self.reply_unless(flag::NO_REPLY_MAIL))
            }
            Command::Rcpt(arguments) => {
                self.expect(&[State::Envelope], true, "rcpt")?;
                let recipient = address(&arguments)
                    .or_else(|| self.macro_value("rcpt_addr").map(str::to_owned))
                    .unwrap_or_default();
                if !recipient.is_empty() {
                    self.transaction.rcpt_to.push(recipient);
                }
                Ok(self.reply_unless(flag::NO_REPLY_RCPT))
            }
            Command::Data => {
                self.expect(&[State::Envelope], true, "data")?;
                Ok(self.reply_unless(flag::NO_REPLY_DATA))
            }
            Command::Header { name, value } => {
                self.expect(&[State::Envelope, State::Headers], true, "header")?;
                self.add_header(&name, &value);
                self.state = State::Headers;
                Ok(self.reply_unless(flag::NO_REPLY_HEADER))
            }
            Command::EndOfHeaders => {
                self.expect(&[State::Envelope, State::Headers], true, "end-of-headers")?;
                self.close_header();
                self.state = State::Body;
                Ok(self.reply_unless(flag::NO_REPLY_END_OF_HEADERS))
            }
            Command::Body(chunk) => {
                self.expect(
                    &[State::Envelope, State::Headers, State::Body],
                    true,
                    "body",
                )?;
                self.close_header();
                self.append(&chunk);
                self.state = State::Body;
                Ok(self.reply_unless(flag::NO_REPLY_BODY))
            }
            Command::EndOfMessage(chunk) => {
                self.expect(
                    &[State::Envelope, State::Headers, State::Body],
                    true,
                    "end-of-message",
                )?;
                self.close_header();
                self.append(&chunk);
                self.state = State::Deciding;
                Ok(Step::Judge(Box::new(self.message())))
            }
            Command::Abort => {
                self.expect(&[State::Negotiating, State::Closed], false, "abort")?;
                if self.state != State::Ready {
                    self.reset_message();
                    self.state = State::Connection;
                }
                Ok(Step::Reply(Vec::new()))
            }
            Command::Quit => {
                self.state = State::Closed;
                Ok(Step::Close)
            }
            Command::QuitNewConnection => {
                self.expect(&[State::Negotiating, State::Closed], false, "quit-nc")?;
                self.reset_message();
                self.macros = Macros::default();
                self.client_ip = None;
                self.client_name.clear();
                self.helo = None;
                self.state = State::Ready;
                Ok(Step::Reply(Vec::new()))
            }
            Command::Unknown(_) => {
                self.expect(&[State::Connection, State::Envelope], true, "unknown")?;
                Ok(self.reply_unless(flag::NO_REPLY_UNKNOWN))
            }
        }
    }

    /// Returns the end-of-message responses for `decision` and makes the
    /// session ready for the next message.
    pub fn finish(&mut self, decision: Decision) -> Vec<Response> {
        let mut responses = Vec::new();
        match decision {
            Decision::Accept { headers } => {
                self.edit_headers(&headers, &mut responses);
                responses.push(Response::Accept);
            }
            Decision::AcceptWithBody { headers, body } => {
                self.edit_headers(&headers, &mut responses);
                if self.options.actions & action::CHANGE_BODY != 0 {
                    responses.extend(Response::replace_body(&body));
                }
                responses.push(Response::Accept);
            }
            Decision::Discard => responses.push(Response::Discard),
            Decision::Quarantine { reason } => {
                responses.push(Response::Quarantine(reason));
                responses.push(Response::Accept);
            }
            Decision::Reject { reply } | Decision::Tempfail { reply } => {
                responses.push(Response::ReplyCode(reply));
            }
        }
        self.reset_message();
        self.state = State::Connection;
        responses
    }

    fn negotiate(&mut self, offered: Options) -> Result<Step, ProtocolError> {
        self.expect(&[State::Negotiating, State::Ready], true, "negotiate")?;
        if offered.version < MIN_VERSION {
            return Err(ProtocolError::Malformed {
                command: "negotiate",
                problem: "the MTA offers a protocol version older than 2",
            });
        }
        let version = offered.version.min(protocol::VERSION);
        self.options = Options {
            version,
            actions: offered.actions & WANTED_ACTIONS,
            protocol: if version >= 6 {
                offered.protocol & WANTED_PROTOCOL
            } else {
                0
            },
        };
        let macro_lists = if version >= 6 && self.options.actions & action::SET_MACRO_LIST != 0 {
            MACRO_LISTS
                .iter()
                .map(|(stage, names)| (*stage, (*names).to_owned()))
                .collect()
        } else {
            Vec::new()
        };
        self.state = State::Ready;
        Ok(Step::Reply(vec![Response::Negotiate {
            options: self.options,
            macro_lists,
        }]))
    }

    /// Fails unless the session is in one of `states` (`allowed` true) or
    /// in none of them (`allowed` false).
    fn expect(
        &self,
        states: &[State],
        allowed: bool,
        command: &'static str,
    ) -> Result<(), ProtocolError> {
        if states.contains(&self.state) == allowed {
            Ok(())
        } else {
            Err(ProtocolError::OutOfSequence {
                command,
                state: self.state.name(),
            })
        }
    }

    fn reply_unless(&self, no_reply: u32) -> Step {
        if self.options.protocol & no_reply != 0 {
            Step::Reply(Vec::new())
        } else {
            Step::Reply(vec![Response::Continue])
        }
    }

    fn macro_value(&self, name: &str) -> Option<&str> {
        self.macros
            .get(&ALL_STAGES, name)
            .filter(|value| !value.is_empty())
    }

    fn leading_space(&self) -> bool {
        self.options.protocol & flag::HEADER_LEADING_SPACE != 0
    }

    /// Appends one header field. Folded values arrive with bare `\n`, which
    /// become CRLF; without the leading-space extension the MTA removed one
    /// space after the colon, which is put back.
    fn add_header(&mut self, name: &[u8], value: &[u8]) {
        if name.len() > 12 && name[..12].eq_ignore_ascii_case(b"x-gatehouse-") {
            let name = String::from_utf8_lossy(name).into_owned();
            match self
                .transaction
                .forged
                .iter_mut()
                .find(|(known, _)| known.eq_ignore_ascii_case(&name))
            {
                Some((_, count)) => *count += 1,
                None => self.transaction.forged.push((name, 1)),
            }
        }
        let mut field = Vec::with_capacity(name.len() + value.len() + 4);
        field.extend_from_slice(name);
        field.push(b':');
        if !self.leading_space() {
            field.push(b' ');
        }
        let mut previous = 0u8;
        for &byte in value {
            if byte == b'\n' && previous != b'\r' {
                field.push(b'\r');
            }
            field.push(byte);
            previous = byte;
        }
        field.extend_from_slice(b"\r\n");
        self.append(&field);
    }

    fn close_header(&mut self) {
        if !self.transaction.header_closed {
            self.transaction.header_closed = true;
            self.append(b"\r\n");
        }
    }

    /// Appends to the message unless that would pass `max_message_bytes`.
    fn append(&mut self, bytes: &[u8]) {
        let transaction = &mut self.transaction;
        if transaction.oversized {
            return;
        }
        if transaction.content.len() + bytes.len() > self.max_message_bytes {
            transaction.oversized = true;
            return;
        }
        transaction.content.extend_from_slice(bytes);
    }

    fn message(&mut self) -> Message {
        let transaction = &mut self.transaction;
        let message_stages = [b'M', b'R', b'T', b'L', b'N', b'B', b'E'];
        let value = |stages: &[u8], name: &str| {
            self.macros
                .get(stages, name)
                .filter(|value| !value.is_empty())
                .map(str::to_owned)
        };
        Message {
            mail_from: transaction.mail_from.clone(),
            rcpt_to: transaction.rcpt_to.clone(),
            helo: self.helo.clone(),
            client_ip: self.client_ip,
            client_name: self.client_name.clone(),
            authenticated_user: value(&message_stages, "auth_authen"),
            queue_id: value(&ALL_STAGES, "i"),
            mta_hostname: value(&ALL_STAGES, "j"),
            daemon_name: value(&ALL_STAGES, "daemon_name"),
            content: std::mem::take(&mut transaction.content),
            oversized: transaction.oversized,
        }
    }

    /// Deletes forged copies of the fields about to be added, then adds them.
    fn edit_headers(&self, headers: &[(String, String)], responses: &mut Vec<Response>) {
        if self.options.actions & action::CHANGE_HEADERS != 0 {
            for (name, count) in &self.transaction.forged {
                // Deleting the last copy first keeps the indices of the others valid.
                for index in (1..=*count).rev() {
                    responses.push(Response::ChangeHeader {
                        index,
                        name: name.clone(),
                        value: String::new(),
                    });
                }
            }
        }
        if self.options.actions & action::ADD_HEADERS != 0 {
            let space = if self.leading_space() { " " } else { "" };
            for (name, value) in headers {
                responses.push(Response::AddHeader {
                    name: name.clone(),
                    value: format!("{space}{value}"),
                });
            }
        }
    }

    fn reset_message(&mut self) {
        self.transaction = Transaction::default();
        self.macros.clear_message_stages();
    }
}

/// Returns the address of a MAIL or RCPT argument list without its angle
/// brackets, or `None` when the first argument is missing.
fn address(arguments: &[String]) -> Option<String> {
    let first = arguments.first()?.trim();
    let inner = first
        .strip_prefix('<')
        .and_then(|rest| rest.strip_suffix('>'))
        .unwrap_or(first);
    Some(inner.to_owned())
}

/// Parses an IP address as MTAs write it: plain, in brackets, or with
/// Sendmail's `IPv6:` prefix.
fn parse_ip(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    let text = text
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap_or(text);
    let text = text
        .strip_prefix("IPv6:")
        .or_else(|| text.strip_prefix("ipv6:"))
        .unwrap_or(text);
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_strips_brackets() {
        let arguments = vec!["<a@b.test>".to_owned(), "SIZE=10".to_owned()];

        assert_eq!(address(&arguments).as_deref(), Some("a@b.test"));
    }

    #[test]
    fn null_sender_is_empty() {
        assert_eq!(address(&["<>".to_owned()]).as_deref(), Some(""));
    }

    #[test]
    fn sendmail_ipv6_prefix_is_parsed() {
        let ip = parse_ip("IPv6:2001:db8::1");

        assert_eq!(ip, "2001:db8::1".parse().ok());
    }

    #[test]
    fn macro_names_match_with_or_without_braces() {
        let mut macros = Macros::default();
        macros.set(b'M', vec![("{auth_authen}".to_owned(), "alice".to_owned())]);

        assert_eq!(macros.get(&ALL_STAGES, "auth_authen"), Some("alice"));
    }
}
