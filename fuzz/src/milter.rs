//! A driver for the milter front's sans-I/O core: the packet decoder and the session.

use gatehouse_milter::protocol::CHUNK_SIZE;
use gatehouse_milter::{Decision, Decoded, Limits, Session, Step, decode};
use time::OffsetDateTime;

/// Message size cap of the fuzzed sessions. It is far below the default so
/// that inputs of a few KiB reach the `oversized` path.
const MAX_MESSAGE_BYTES: usize = 4096;

/// Plays the front's read loop over `stream` as the bytes an MTA sent.
///
/// `selector` picks how many bytes each read delivers and which decision
/// ends each message. The loop stops at the first protocol error, as the
/// front closes the connection there.
pub fn run(selector: u8, stream: &[u8]) {
    let max_packet = Limits::default().max_packet_bytes;
    let read_size = [1, 3, 17, 4096][usize::from(selector & 3)];
    let mut session = Session::new(MAX_MESSAGE_BYTES);
    let mut input: Vec<u8> = Vec::new();
    let mut messages = 0u32;

    for read in stream.chunks(read_size) {
        input.extend_from_slice(read);
        loop {
            let (command, consumed) = match decode(&input, max_packet) {
                Ok(Decoded::Packet { command, consumed }) => (command, consumed),
                Ok(Decoded::Incomplete) => break,
                Err(_) => return,
            };
            assert!(
                consumed <= input.len(),
                "decoder consumed {consumed} of {} bytes",
                input.len()
            );
            input.drain(..consumed);
            match session.handle(command) {
                Ok(Step::Reply(responses)) => {
                    for response in responses {
                        check_packet(&response.to_bytes());
                    }
                }
                Ok(Step::Judge(message)) => {
                    assert!(
                        message.content.len() <= MAX_MESSAGE_BYTES,
                        "rebuilt message of {} bytes exceeds the cap of {MAX_MESSAGE_BYTES}",
                        message.content.len()
                    );
                    let rebuilt = gatehouse_milter::front::rebuild(
                        &message,
                        "mx.example.com",
                        OffsetDateTime::UNIX_EPOCH,
                    );
                    check_trace_field(&rebuilt[..rebuilt.len() - message.content.len()]);
                    let decision = decision(selector >> 2, messages, &message.content);
                    for response in session.finish(decision) {
                        check_packet(&response.to_bytes());
                    }
                    messages += 1;
                }
                Ok(Step::Close) => return,
                Err(_) => return,
            }
        }
    }
}

/// Chooses the decision for the `index`th message of a session.
fn decision(choice: u8, index: u32, content: &[u8]) -> Decision {
    let headers = vec![
        ("X-Gatehouse-Verdict".to_owned(), "tag".to_owned()),
        ("X-Gatehouse-Score".to_owned(), "7.5".to_owned()),
    ];
    match (u32::from(choice) + index) % 6 {
        0 => Decision::Accept { headers },
        1 => Decision::AcceptWithBody {
            headers,
            body: content.repeat(20),
        },
        2 => Decision::Discard,
        3 => Decision::Quarantine {
            reason: "held by Gatehouse".to_owned(),
        },
        4 => Decision::Reject {
            reply: "550 5.7.1 Message rejected by policy".to_owned(),
        },
        _ => Decision::Tempfail {
            reply: "451 4.3.0 Try again later".to_owned(),
        },
    }
}

/// Checks that the Received field the front adds is one field: every line
/// break in it is CRLF followed by a tab, except the CRLF that ends it, so
/// no value the MTA passed (HELO, client name, queue id) can add a field.
fn check_trace_field(field: &[u8]) {
    assert!(
        field.ends_with(b"\r\n"),
        "Received field does not end with CRLF"
    );
    let inner = &field[..field.len() - 2];
    for (index, &byte) in inner.iter().enumerate() {
        match byte {
            b'\r' => assert!(
                inner.get(index + 1..index + 3) == Some(b"\n\t"),
                "CR not followed by LF and a tab at {index} in {:?}",
                String::from_utf8_lossy(field)
            ),
            b'\n' => assert!(
                index > 0 && inner[index - 1] == b'\r',
                "bare LF at {index} in {:?}",
                String::from_utf8_lossy(field)
            ),
            _ => {}
        }
    }
}

/// Checks the framing of one encoded response: the length prefix counts the
/// command byte and the data, and a body chunk is at most [`CHUNK_SIZE`] bytes.
fn check_packet(packet: &[u8]) {
    assert!(
        packet.len() >= 5,
        "response packet of {} bytes",
        packet.len()
    );
    let declared = u32::from_be_bytes([packet[0], packet[1], packet[2], packet[3]]) as usize;
    assert_eq!(declared, packet.len() - 4, "length prefix of a response");
    if packet[4] == gatehouse_milter::protocol::response::REPLACE_BODY {
        assert!(
            declared - 1 <= CHUNK_SIZE,
            "body chunk of {} bytes exceeds {CHUNK_SIZE}",
            declared - 1
        );
    }
}
