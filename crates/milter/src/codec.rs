//! Sans-I/O framing of milter packets: bytes in, [`Command`]s out, and
//! [`Response`]s to bytes.
//!
//! A packet is a 4-byte big-endian length, one command byte and the data;
//! the length counts the command byte and the data. Strings in the data end
//! with a NUL byte. The length is checked against a cap before any of the
//! data is buffered, so a peer cannot make the front allocate what it
//! declares.

use crate::protocol::{command, response};

/// One packet from the MTA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Option negotiation: the version, actions and protocol flags the MTA offers.
    Negotiate(Options),
    /// Macros for the command `stage` (the command byte that follows them).
    Macro {
        stage: u8,
        macros: Vec<(String, String)>,
    },
    Connect(Connect),
    Helo(String),
    /// MAIL FROM: the address in angle brackets, then ESMTP parameters.
    Mail(Vec<String>),
    /// RCPT TO: the address in angle brackets, then ESMTP parameters.
    Rcpt(Vec<String>),
    Data,
    /// One header field. Folded values contain `\n` before each continuation line.
    Header {
        name: Vec<u8>,
        value: Vec<u8>,
    },
    EndOfHeaders,
    /// One chunk of the body, with CRLF line endings.
    Body(Vec<u8>),
    /// The end of the message, with a last body chunk that Sendmail may send here.
    EndOfMessage(Vec<u8>),
    /// The MTA dropped the current message; the connection goes on.
    Abort,
    Quit,
    /// Quit this connection's context; a new SMTP connection follows on the same socket.
    QuitNewConnection,
    /// An SMTP command the MTA did not recognise.
    Unknown(String),
}

/// The three numbers of option negotiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    pub version: u32,
    /// `SMFIF_*` modifications.
    pub actions: u32,
    /// `SMFIP_*` events not sent, replies not expected and extensions.
    pub protocol: u32,
}

/// The SMTP client as the CONNECT packet describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    /// The client's host name, or `[address]` when it has none.
    pub hostname: String,
    pub family: Family,
    pub port: u16,
    /// The IP address as text (Sendmail prefixes IPv6 with `IPv6:`), or a socket path.
    pub address: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Inet,
    Inet6,
    Unix,
    Unknown,
}

/// A packet this front sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// The options this front accepts, then the macro names it requests at
    /// each stage (`stage` numbers from [`crate::protocol::stage`]).
    Negotiate {
        options: Options,
        macro_lists: Vec<(u32, String)>,
    },
    Accept,
    Continue,
    Discard,
    Reject,
    Tempfail,
    /// A full SMTP reply such as `550 5.7.1 Message rejected by policy`.
    ReplyCode(String),
    /// Append a header field at the end of the header.
    AddHeader {
        name: String,
        value: String,
    },
    /// Insert a header field before the `index`th one (0 is the top).
    InsertHeader {
        index: u32,
        name: String,
        value: String,
    },
    /// Replace the `index`th field named `name` (1 is the first); an empty value deletes it.
    ChangeHeader {
        index: u32,
        name: String,
        value: String,
    },
    /// One chunk of a new body, at most [`crate::protocol::CHUNK_SIZE`] bytes.
    ReplaceBody(Vec<u8>),
    /// Put the message on the MTA's hold queue, with a reason.
    Quarantine(String),
    /// Ask the MTA to keep waiting: analysis is still running.
    Progress,
}

/// The peer broke the protocol. The connection cannot continue after one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error(
        "milter packet of {length} bytes exceeds the maximum of {max}; raise milter.max_packet_bytes if the MTA is right"
    )]
    PacketTooLarge { length: usize, max: usize },
    #[error("milter packet with length 0 has no command byte")]
    EmptyPacket,
    #[error("unknown milter command {:?} (0x{command:02x})", char::from(*command))]
    UnknownCommand { command: u8 },
    #[error("malformed milter {command} packet: {problem}")]
    Malformed {
        command: &'static str,
        problem: &'static str,
    },
    #[error("milter {command} packet is not valid in state {state}")]
    OutOfSequence {
        command: &'static str,
        state: &'static str,
    },
}

/// The outcome of one [`decode`] call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// A whole packet: the command and the number of input bytes it used.
    Packet { command: Command, consumed: usize },
    /// The input ends inside a packet: read more bytes and call again.
    Incomplete,
}

/// Decodes the first packet of `input`, whose length may be at most
/// `max_packet` bytes (command byte and data).
pub fn decode(input: &[u8], max_packet: usize) -> Result<Decoded, ProtocolError> {
    let Some(header) = input.get(..4) else {
        return Ok(Decoded::Incomplete);
    };
    let length = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
    if length == 0 {
        return Err(ProtocolError::EmptyPacket);
    }
    if length > max_packet {
        return Err(ProtocolError::PacketTooLarge {
            length,
            max: max_packet,
        });
    }
    let Some(packet) = input.get(4..4 + length) else {
        return Ok(Decoded::Incomplete);
    };
    let command = parse(packet[0], &packet[1..])?;
    Ok(Decoded::Packet {
        command,
        consumed: 4 + length,
    })
}

/// Returns the command byte's name, for errors and logs.
pub fn command_name(code: u8) -> &'static str {
    match code {
        command::ABORT => "abort",
        command::BODY => "body",
        command::CONNECT => "connect",
        command::MACRO => "macro",
        command::END_OF_MESSAGE => "end-of-message",
        command::HELO => "helo",
        command::QUIT_NEW_CONNECTION => "quit-nc",
        command::HEADER => "header",
        command::MAIL => "mail",
        command::END_OF_HEADERS => "end-of-headers",
        command::NEGOTIATE => "negotiate",
        command::QUIT => "quit",
        command::RCPT => "rcpt",
        command::DATA => "data",
        command::UNKNOWN => "unknown",
        _ => "invalid",
    }
}

fn parse(code: u8, data: &[u8]) -> Result<Command, ProtocolError> {
    let name = command_name(code);
    let malformed = |problem| ProtocolError::Malformed {
        command: name,
        problem,
    };
    let command = match code {
        command::NEGOTIATE => {
            let numbers = data
                .get(..12)
                .ok_or_else(|| malformed("shorter than 12 bytes"))?;
            let number = |at: usize| {
                u32::from_be_bytes([
                    numbers[at],
                    numbers[at + 1],
                    numbers[at + 2],
                    numbers[at + 3],
                ])
            };
            Command::Negotiate(Options {
                version: number(0),
                actions: number(4),
                protocol: number(8),
            })
        }
        command::MACRO => {
            let (&stage, rest) = data
                .split_first()
                .ok_or_else(|| malformed("no command byte"))?;
            let strings = strings(rest).ok_or_else(|| malformed("a string lacks its NUL"))?;
            if strings.len() % 2 != 0 {
                return Err(malformed("a macro name has no value"));
            }
            let macros = strings
                .chunks_exact(2)
                .map(|pair| (text(pair[0]), text(pair[1])))
                .collect();
            Command::Macro { stage, macros }
        }
        command::CONNECT => parse_connect(data).ok_or_else(|| malformed("truncated"))?,
        command::HELO => {
            let helo = strings(data)
                .and_then(|strings| strings.first().map(|helo| text(helo)))
                .ok_or_else(|| malformed("the HELO name lacks its NUL"))?;
            Command::Helo(helo)
        }
        command::MAIL | command::RCPT => {
            let arguments: Vec<String> = strings(data)
                .ok_or_else(|| malformed("an argument lacks its NUL"))?
                .into_iter()
                .map(text)
                .collect();
            if arguments.is_empty() {
                return Err(malformed("no address"));
            }
            if code == command::MAIL {
                Command::Mail(arguments)
            } else {
                Command::Rcpt(arguments)
            }
        }
        command::HEADER => {
            let fields = strings(data).ok_or_else(|| malformed("a string lacks its NUL"))?;
            let [name, value] = fields.as_slice() else {
                return Err(malformed("not a name and a value"));
            };
            Command::Header {
                name: name.to_vec(),
                value: value.to_vec(),
            }
        }
        command::BODY => Command::Body(data.to_vec()),
        command::END_OF_MESSAGE => Command::EndOfMessage(data.to_vec()),
        command::UNKNOWN => {
            let line = data.strip_suffix(b"\0").unwrap_or(data);
            Command::Unknown(text(line))
        }
        command::DATA => Command::Data,
        command::END_OF_HEADERS => Command::EndOfHeaders,
        command::ABORT => Command::Abort,
        command::QUIT => Command::Quit,
        command::QUIT_NEW_CONNECTION => Command::QuitNewConnection,
        other => return Err(ProtocolError::UnknownCommand { command: other }),
    };
    Ok(command)
}

fn parse_connect(data: &[u8]) -> Option<Command> {
    let end = data.iter().position(|&byte| byte == 0)?;
    let hostname = text(&data[..end]);
    let rest = &data[end + 1..];
    let (&family, rest) = rest.split_first()?;
    let family = match family {
        b'4' => Family::Inet,
        b'6' => Family::Inet6,
        b'L' => Family::Unix,
        _ => Family::Unknown,
    };
    let (port, address) = if family == Family::Unknown {
        (0, String::new())
    } else {
        let port = u16::from_be_bytes([*rest.first()?, *rest.get(1)?]);
        let address = rest.get(2..)?;
        let address = address.strip_suffix(b"\0").unwrap_or(address);
        (port, text(address))
    };
    Some(Command::Connect(Connect {
        hostname,
        family,
        port,
        address,
    }))
}

/// Splits NUL-terminated strings; `None` when the last one lacks its NUL.
fn strings(data: &[u8]) -> Option<Vec<&[u8]>> {
    if data.is_empty() {
        return Some(Vec::new());
    }
    let body = data.strip_suffix(b"\0")?;
    Some(body.split(|&byte| byte == 0).collect())
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

impl Response {
    /// Appends the packet to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0; 4]);
        match self {
            Response::Negotiate {
                options,
                macro_lists,
            } => {
                out.push(command::NEGOTIATE);
                out.extend_from_slice(&options.version.to_be_bytes());
                out.extend_from_slice(&options.actions.to_be_bytes());
                out.extend_from_slice(&options.protocol.to_be_bytes());
                for (stage, names) in macro_lists {
                    out.extend_from_slice(&stage.to_be_bytes());
                    push_string(out, names);
                }
            }
            Response::Accept => out.push(response::ACCEPT),
            Response::Continue => out.push(response::CONTINUE),
            Response::Discard => out.push(response::DISCARD),
            Response::Reject => out.push(response::REJECT),
            Response::Tempfail => out.push(response::TEMPFAIL),
            Response::Progress => out.push(response::PROGRESS),
            Response::ReplyCode(reply) => {
                out.push(response::REPLY_CODE);
                push_string(out, &single_line(reply));
            }
            Response::AddHeader { name, value } => {
                out.push(response::ADD_HEADER);
                push_string(out, name);
                push_string(out, value);
            }
            Response::InsertHeader { index, name, value } => {
                out.push(response::INSERT_HEADER);
                out.extend_from_slice(&index.to_be_bytes());
                push_string(out, name);
                push_string(out, value);
            }
            Response::ChangeHeader { index, name, value } => {
                out.push(response::CHANGE_HEADER);
                out.extend_from_slice(&index.to_be_bytes());
                push_string(out, name);
                push_string(out, value);
            }
            Response::ReplaceBody(chunk) => {
                out.push(response::REPLACE_BODY);
                out.extend_from_slice(chunk);
            }
            Response::Quarantine(reason) => {
                out.push(response::QUARANTINE);
                push_string(out, &single_line(reason));
            }
        }
        let length = u32::try_from(out.len() - start - 4).unwrap_or(u32::MAX);
        out[start..start + 4].copy_from_slice(&length.to_be_bytes());
    }

    /// Returns the packet as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Splits a new body into [`Response::ReplaceBody`] chunks the MTA accepts.
    pub fn replace_body(body: &[u8]) -> Vec<Response> {
        body.chunks(crate::protocol::CHUNK_SIZE)
            .map(|chunk| Response::ReplaceBody(chunk.to_vec()))
            .collect()
    }
}

/// Appends `value` and its NUL; a NUL inside would end the string early, so it is dropped.
fn push_string(out: &mut Vec<u8>, value: &str) {
    out.extend(value.bytes().filter(|&byte| byte != 0));
    out.push(0);
}

/// Replaces line breaks, which would split an SMTP reply or a log line.
fn single_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(code: u8, data: &[u8]) -> Vec<u8> {
        let mut out = u32::try_from(data.len() + 1)
            .expect("small packet")
            .to_be_bytes()
            .to_vec();
        out.push(code);
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn header_needs_more_data() {
        let decoded = decode(&[0, 0], 100).expect("no error");

        assert_eq!(decoded, Decoded::Incomplete);
    }

    #[test]
    fn partial_packet_needs_more_data() {
        let bytes = packet(b'H', b"client.test\0");

        let decoded = decode(&bytes[..8], 100).expect("no error");

        assert_eq!(decoded, Decoded::Incomplete);
    }

    #[test]
    fn oversized_length_fails_before_data() {
        let error = decode(&[0x7f, 0xff, 0xff, 0xff], 1024).expect_err("too large");

        assert_eq!(
            error,
            ProtocolError::PacketTooLarge {
                length: 0x7fff_ffff,
                max: 1024
            }
        );
    }

    #[test]
    fn connect_ipv4_is_decoded() {
        let mut data = b"mx.client.test\0".to_vec();
        data.push(b'4');
        data.extend_from_slice(&2525u16.to_be_bytes());
        data.extend_from_slice(b"192.0.2.7\0");
        let bytes = packet(b'C', &data);

        let decoded = decode(&bytes, 100).expect("valid packet");

        let expected = Command::Connect(Connect {
            hostname: "mx.client.test".to_owned(),
            family: Family::Inet,
            port: 2525,
            address: "192.0.2.7".to_owned(),
        });
        assert_eq!(
            decoded,
            Decoded::Packet {
                command: expected,
                consumed: bytes.len()
            }
        );
    }

    #[test]
    fn macro_without_value_is_malformed() {
        let bytes = packet(b'D', b"M{mail_addr}\0");

        let error = decode(&bytes, 100).expect_err("odd strings");

        assert_eq!(
            error,
            ProtocolError::Malformed {
                command: "macro",
                problem: "a macro name has no value"
            }
        );
    }

    #[test]
    fn header_keeps_raw_bytes() {
        let bytes = packet(b'L', b"Subject\0 caf\xe9\n\tsuite\0");

        let decoded = decode(&bytes, 100).expect("valid packet");

        let Decoded::Packet { command, .. } = decoded else {
            panic!("incomplete");
        };
        assert_eq!(
            command,
            Command::Header {
                name: b"Subject".to_vec(),
                value: b" caf\xe9\n\tsuite".to_vec()
            }
        );
    }

    #[test]
    fn reply_code_is_one_line() {
        let bytes = Response::ReplyCode("550 5.7.1 no\r\nmore".to_owned()).to_bytes();

        assert_eq!(bytes, packet(b'y', b"550 5.7.1 no  more\0"));
    }

    #[test]
    fn replace_body_is_chunked() {
        let body = vec![b'x'; 70_000];

        let chunks = Response::replace_body(&body);

        assert_eq!(chunks.len(), 2);
    }
}
