//! Drivers for the SMTP proxy's sans-I/O core: command framing, the session
//! state machine, the DATA reader and the BDAT chunk reader.

use std::net::{IpAddr, Ipv4Addr};

use gatehouse_smtp::Limits;
use gatehouse_smtp::Reply;
use gatehouse_smtp::data::{ChunkReader, DataError, DataEvent, DataReader};
use gatehouse_smtp::line::LineReader;
use gatehouse_smtp::session::{Action, Features, Session};

/// Limits of the fuzzed sessions: the defaults, with caps low enough that
/// inputs of a few KiB reach them.
pub fn session_limits() -> Limits {
    Limits {
        max_command_line: 512,
        max_message_bytes: 4096,
        max_recipients: 3,
        max_errors: 20,
        ..Limits::default()
    }
}

/// How the simulated upstream MTA answers MAIL and RCPT.
#[derive(Debug, Clone, Copy)]
enum Upstream {
    /// Accepts every command.
    Accepting,
    /// Refuses every second recipient with 550.
    RefusingSomeRecipients,
    /// Answers the first MAIL with 451, then accepts.
    TempfailingFirstMail,
    /// Fails at the first RCPT; the proxy drops the transaction and answers 451.
    Failing,
}

/// A BDAT chunk being read.
enum Chunk {
    Keep { left: usize, last: bool },
    Drop { left: usize, reply: Reply },
}

/// Plays the proxy's connection loop over `stream` as the bytes a client sent.
///
/// `selector` picks how many bytes each socket read delivers (so a command,
/// a chunk or the final dot can arrive split at any point), how the upstream
/// MTA answers, and whether STARTTLS and XFORWARD are offered. A STARTTLS
/// handshake always succeeds here.
pub fn run_session(selector: u8, stream: &[u8]) {
    let limits = session_limits();
    let read_size = [1, 2, 3, 7, 64, 512, 4096, 1 << 20][usize::from(selector & 7)];
    let upstream = match (selector >> 3) & 3 {
        0 => Upstream::Accepting,
        1 => Upstream::RefusingSomeRecipients,
        2 => Upstream::TempfailingFirstMail,
        _ => Upstream::Failing,
    };
    let features = Features {
        starttls: selector & 0x20 != 0,
        xforward: selector & 0x40 != 0,
    };
    let client = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9));
    let mut session = Session::new("mx.example.com", client, limits.clone(), features);
    let mut lines = LineReader::new(limits.max_command_line);
    let mut data: Option<DataReader> = None;
    let mut bdat: Option<ChunkReader> = None;
    let mut chunk: Option<Chunk> = None;
    let mut input: Vec<u8> = Vec::new();
    let mut mails = 0u32;
    let mut recipients = 0u32;

    check_reply(&session.greeting());
    for read in stream.chunks(read_size) {
        input.extend_from_slice(read);
        loop {
            // A BDAT chunk: its bytes are never commands, whatever they hold.
            if let Some(current) = chunk.as_mut() {
                let left = match current {
                    Chunk::Keep { left, .. } | Chunk::Drop { left, .. } => left,
                };
                let take = (*left).min(input.len());
                *left -= take;
                let done = *left == 0;
                if let (Chunk::Keep { .. }, Some(reader)) = (&*current, bdat.as_mut()) {
                    reader.feed(&input[..take]);
                }
                input.drain(..take);
                if !done {
                    break;
                }
                match chunk.take() {
                    Some(Chunk::Drop { reply, .. }) => check_reply(&reply),
                    Some(Chunk::Keep { last: true, .. }) => {
                        let result = bdat.take().map_or(Ok(Vec::new()), ChunkReader::finish);
                        finish_message(&mut session, &limits, result);
                    }
                    Some(Chunk::Keep { last: false, .. }) => {
                        if bdat.as_ref().and_then(ChunkReader::error).is_some() {
                            bdat = None;
                            session.abort_transaction();
                        }
                    }
                    None => {}
                }
                continue;
            }

            // Message text after 354, up to the final dot.
            if let Some(reader) = data.as_mut() {
                let (consumed, result) = match reader.feed(&input) {
                    DataEvent::NeedMore => {
                        input.clear();
                        break;
                    }
                    DataEvent::Done { consumed, result } => (consumed, result),
                };
                assert!(consumed <= input.len(), "DATA consumed past its input");
                input.drain(..consumed);
                data = None;
                finish_message(&mut session, &limits, result);
                continue;
            }

            let Some(line) = lines.next_line(&mut input) else {
                assert!(
                    input.len() <= limits.max_command_line,
                    "{} bytes of an unfinished command line are buffered",
                    input.len()
                );
                break;
            };
            match session.command(line) {
                Action::Reply(reply) => check_reply(&reply),
                Action::Mail(request) => {
                    // ENVID and ORCPT are decoded from xtext (RFC 3461 §4), so
                    // `+00` is a NUL and is legal. The upstream client encodes
                    // them again, writing every byte outside 33..=126 as `+XX`,
                    // so only the address reaches a command as it is.
                    check_envelope_value("MAIL address", &request.from);
                    mails += 1;
                    let reply = match upstream {
                        Upstream::TempfailingFirstMail if mails == 1 => {
                            Reply::new(451, [4, 3, 0], "Try again later")
                        }
                        _ => Reply::new(250, [2, 1, 0], "Ok"),
                    };
                    check_reply(&session.mail_replied(reply));
                }
                Action::Rcpt(request) => {
                    check_envelope_value("RCPT address", &request.to);
                    recipients += 1;
                    let reply = match upstream {
                        Upstream::RefusingSomeRecipients if recipients % 2 == 0 => {
                            Reply::new(550, [5, 1, 1], "User unknown")
                        }
                        Upstream::Failing => {
                            session.abort_transaction();
                            Reply::new(451, [4, 4, 1], "Upstream unavailable")
                        }
                        _ => Reply::new(250, [2, 1, 5], "Ok"),
                    };
                    check_reply(&session.rcpt_replied(reply));
                }
                Action::StartData(reply) => {
                    check_reply(&reply);
                    assert_eq!(reply.code, 354, "reply that starts DATA");
                    data = Some(DataReader::new(limits.max_message_bytes));
                }
                Action::Chunk { size, last } => {
                    if bdat.is_none() {
                        bdat = Some(ChunkReader::new(limits.max_message_bytes));
                    }
                    chunk = Some(Chunk::Keep { left: size, last });
                }
                Action::DiscardChunk { size, reply } => {
                    chunk = Some(Chunk::Drop { left: size, reply });
                }
                Action::StartTls(reply) => {
                    check_reply(&reply);
                    // Bytes pipelined after STARTTLS came in plain text and are dropped.
                    input.clear();
                    session.tls_started();
                }
                Action::Close(reply) => {
                    check_reply(&reply);
                    return;
                }
            }
        }
    }
}

/// Ends a message read with DATA or BDAT and checks its envelope and text.
fn finish_message(session: &mut Session, limits: &Limits, result: Result<Vec<u8>, DataError>) {
    let Some(transaction) = session.finish_data() else {
        return;
    };
    assert!(
        !transaction.rcpt_to.is_empty(),
        "message accepted without recipients"
    );
    assert!(
        transaction.rcpt_to.len() <= limits.max_recipients,
        "{} recipients over the limit of {}",
        transaction.rcpt_to.len(),
        limits.max_recipients
    );
    if let Some(helo) = &transaction.helo {
        assert!(
            helo.len() <= 255 && helo.bytes().all(|byte| byte.is_ascii_graphic()),
            "HELO name {helo:?} is not cleaned for the Received field"
        );
    }
    if let Ok(message) = result {
        check_message_text(&message, limits.max_message_bytes);
    }
}

/// Checks a value the proxy writes into a command to the upstream MTA: a CR,
/// LF or NUL in it would end or split that command.
fn check_envelope_value(what: &str, value: &str) {
    assert!(
        !value.contains(['\r', '\n', '\0']),
        "{what} {value:?} contains a line break or NUL"
    );
}

/// Checks that a reply encodes as RFC 5321 §4.2 lines: each starts with the
/// code, ends with CRLF and carries no other CR or LF.
pub fn check_reply(reply: &Reply) {
    assert!(
        (200..600).contains(&reply.code),
        "reply code {} out of range",
        reply.code
    );
    let wire = reply.to_wire();
    assert!(wire.ends_with(b"\r\n"), "reply does not end with CRLF");
    let code = reply.code.to_string();
    for line in wire[..wire.len() - 2].split(|&byte| byte == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        assert!(
            line.starts_with(code.as_bytes()),
            "reply line {:?} does not start with {code}",
            String::from_utf8_lossy(line)
        );
        assert!(
            !line.contains(&b'\r'),
            "reply line {:?} contains a CR",
            String::from_utf8_lossy(line)
        );
    }
}

/// Checks a message the DATA reader accepted: within the size limit and with CRLF line ends only.
fn check_message_text(message: &[u8], max_bytes: usize) {
    assert!(
        message.len() <= max_bytes,
        "message of {} bytes over the limit of {max_bytes}",
        message.len()
    );
    assert_eq!(
        bare_line_ending(message),
        None,
        "accepted message has a bare CR or LF"
    );
}

/// Returns the offset of the first CR not followed by LF or LF not preceded by CR.
fn bare_line_ending(text: &[u8]) -> Option<usize> {
    text.iter()
        .enumerate()
        .position(|(index, &byte)| match byte {
            b'\r' => text.get(index + 1) != Some(&b'\n'),
            b'\n' => index == 0 || text[index - 1] != b'\r',
            _ => false,
        })
}

/// Reads `stream` with a DATA reader in one piece and again in pieces of
/// `piece` bytes, and returns the bytes consumed and the result.
fn read_data(
    stream: &[u8],
    max_bytes: usize,
    piece: usize,
) -> Option<(usize, Result<Vec<u8>, DataError>)> {
    let mut reader = DataReader::new(max_bytes);
    let mut offset = 0;
    for chunk in stream.chunks(piece) {
        if let DataEvent::Done { consumed, result } = reader.feed(chunk) {
            assert!(
                consumed >= 1,
                "consumed nothing of a {}-byte read",
                chunk.len()
            );
            assert!(
                consumed <= chunk.len(),
                "consumed {consumed} of a {}-byte read",
                chunk.len()
            );
            return Some((offset + consumed, result));
        }
        offset += chunk.len();
    }
    None
}

/// Checks the DATA reader's documented behaviour on `stream`.
///
/// - Splitting the input into reads never changes where the message ends or what it is.
/// - An accepted message is within the limit and has CRLF line ends only.
/// - Dot-stuffing the accepted message again and reading it gives it back.
/// - Any text with CRLF line ends, dot-stuffed and ended with `.` CRLF, reads
///   back as itself, or as `TooLarge` when over the limit.
/// - The BDAT chunk reader accepts the input unchanged exactly when it is
///   within the limit and has no bare CR or LF, however it is chunked.
pub fn check_data(selector: u8, stream: &[u8]) {
    let max_bytes = [16, 256, 4096, 1 << 20][usize::from(selector & 3)];
    let piece = [1, 2, 5, 64][usize::from((selector >> 2) & 3)];

    let whole = read_data(stream, max_bytes, stream.len().max(1));
    let split = read_data(stream, max_bytes, piece);
    assert_eq!(whole, split, "result depends on how the input was split");

    if let Some((_, Ok(message))) = &whole {
        check_message_text(message, max_bytes);
        let again = read_data(&dot_stuff(message), max_bytes, piece);
        assert_eq!(
            again.map(|(_, result)| result),
            Some(Ok(message.clone())),
            "re-stuffed message does not read back"
        );
    }

    // The same bytes as BDAT chunks: accepted exactly when within the limit
    // and free of bare CR and LF, and then unchanged.
    let mut chunks = ChunkReader::new(max_bytes);
    for piece_bytes in stream.chunks(piece) {
        chunks.feed(piece_bytes);
    }
    let clean = stream.len() <= max_bytes && bare_line_ending(stream).is_none();
    match chunks.finish() {
        Ok(message) => {
            assert!(
                clean,
                "BDAT accepted a message over the limit or with a bare CR or LF"
            );
            assert_eq!(message, stream, "BDAT changed the message");
        }
        Err(err) => assert!(!clean, "BDAT rejected a clean message: {err}"),
    }

    let text = crlf_lines(stream);
    let stuffed = dot_stuff(&text);
    let expected = if text.len() <= max_bytes {
        Ok(text)
    } else {
        Err(DataError::TooLarge { max_bytes })
    };
    assert_eq!(
        read_data(&stuffed, max_bytes, piece),
        Some((stuffed.len(), expected)),
        "dot-stuffed text does not read back"
    );
}

/// Returns `input` as lines ended by CRLF: each LF ends a line, CRs are
/// dropped, and a last line without LF gets one.
fn crlf_lines(input: &[u8]) -> Vec<u8> {
    let mut text = Vec::with_capacity(input.len() + 2);
    let mut lines = input.split(|&byte| byte == b'\n').peekable();
    while let Some(line) = lines.next() {
        let is_last = lines.peek().is_none();
        if is_last && line.is_empty() {
            break;
        }
        text.extend(line.iter().copied().filter(|&byte| byte != b'\r'));
        text.extend_from_slice(b"\r\n");
    }
    text
}

/// Dot-stuffs text with CRLF line ends and appends the final `.` CRLF (RFC 5321 §4.5.2).
/// Written apart from `gatehouse_smtp::delivery::dot_stuff`, so that the
/// check of the DATA reader does not rely on the proxy's own writer.
fn dot_stuff(text: &[u8]) -> Vec<u8> {
    let mut stuffed = Vec::with_capacity(text.len() + 8);
    let mut line_start = true;
    for &byte in text {
        if line_start && byte == b'.' {
            stuffed.push(b'.');
        }
        stuffed.push(byte);
        line_start = byte == b'\n';
    }
    stuffed.extend_from_slice(b".\r\n");
    stuffed
}
