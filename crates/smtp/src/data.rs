//! The DATA reader, sans I/O: dot-unstuffing, the end-of-data marker, bare CR and LF, size.

/// The reason a message sent with DATA was rejected. The reader always reads to
/// the final `CRLF.CRLF`, so the session stays in step with the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DataError {
    /// A CR not followed by LF, or an LF not preceded by CR. Other servers end
    /// the message at `LF.LF` or `CR.CR` and would see a second, smuggled
    /// message after it (SMTP smuggling), so the whole message is rejected.
    #[error("message contains a bare CR or LF")]
    BareLineEnding,
    /// The message is larger than the limit.
    #[error("message exceeds the maximum size of {max_bytes} bytes")]
    TooLarge { max_bytes: usize },
}

/// The result of feeding bytes to the reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataEvent {
    /// All bytes were consumed and the final dot has not come yet.
    NeedMore,
    /// The final dot came after `consumed` bytes; the rest of the input is the next command.
    Done {
        consumed: usize,
        result: Result<Vec<u8>, DataError>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a line.
    LineStart,
    /// A `.` at the start of a line.
    Dot,
    /// `.` CR at the start of a line: the final dot if LF follows.
    DotCr,
    /// Inside a line.
    Text,
    /// A CR inside a line.
    Cr,
}

/// Reads one message after `354`, RFC 5321 §4.5.2 and §4.1.1.4.
///
/// The message is the text between the `354` reply and the line holding only
/// a dot, with the leading dot removed from every line that starts with one
/// (dot-unstuffing). Only `CRLF.CRLF` ends a message. The size is limited but
/// line length inside the message is not, because real mail often exceeds the
/// 1000-octet line of RFC 5321 §4.5.3.1.6 and MTAs such as Postfix accept it.
#[derive(Debug, Clone)]
pub struct DataReader {
    state: State,
    max_bytes: usize,
    body: Vec<u8>,
    error: Option<DataError>,
}

impl DataReader {
    pub fn new(max_bytes: usize) -> DataReader {
        DataReader {
            state: State::LineStart,
            max_bytes,
            body: Vec::new(),
            error: None,
        }
    }

    /// Consumes bytes until the final dot or the end of `input`.
    pub fn feed(&mut self, input: &[u8]) -> DataEvent {
        for (index, &byte) in input.iter().enumerate() {
            if self.step(byte) {
                let result = match self.error {
                    Some(error) => Err(error),
                    None => Ok(std::mem::take(&mut self.body)),
                };
                return DataEvent::Done {
                    consumed: index + 1,
                    result,
                };
            }
        }
        DataEvent::NeedMore
    }

    /// Advances by one byte; returns true at the end of the final-dot line.
    fn step(&mut self, byte: u8) -> bool {
        match (self.state, byte) {
            (State::LineStart, b'.') => self.state = State::Dot,
            (State::Dot, b'\r') => self.state = State::DotCr,
            (State::DotCr, b'\n') => return true,
            (State::DotCr, _) => {
                // `.` CR followed by anything but LF: the dot was stuffing and the CR is bare.
                self.fail(DataError::BareLineEnding);
                self.push(b'\r');
                self.text(byte);
            }
            // A stuffed dot: drop it and read the rest of the line.
            (State::Dot, _) => self.text(byte),
            (State::LineStart | State::Text | State::Cr, _) => self.text(byte),
        }
        false
    }

    /// Handles one byte of line text after any leading dot was removed.
    fn text(&mut self, byte: u8) {
        match (self.state, byte) {
            (State::Cr, b'\n') => {
                self.push(b'\n');
                self.state = State::LineStart;
            }
            (State::Cr, b'\r') => {
                self.fail(DataError::BareLineEnding);
                self.push(b'\r');
            }
            (State::Cr, _) => {
                self.fail(DataError::BareLineEnding);
                self.push(byte);
                self.state = State::Text;
            }
            (_, b'\r') => {
                self.push(b'\r');
                self.state = State::Cr;
            }
            (_, b'\n') => {
                // A bare LF; what follows is the start of a line for no one
                // but a lenient server, so stay inside the line.
                self.fail(DataError::BareLineEnding);
                self.push(b'\n');
                self.state = State::Text;
            }
            (_, _) => {
                self.push(byte);
                self.state = State::Text;
            }
        }
    }

    fn push(&mut self, byte: u8) {
        if self.error.is_some() {
            return;
        }
        if self.body.len() >= self.max_bytes {
            self.fail(DataError::TooLarge {
                max_bytes: self.max_bytes,
            });
            return;
        }
        self.body.push(byte);
    }

    fn fail(&mut self, error: DataError) {
        if self.error.is_none() {
            self.error = Some(error);
            self.body = Vec::new();
        }
    }
}

/// Collects the chunks of a message sent with BDAT (RFC 3030), sans I/O.
///
/// BDAT text needs no dot-unstuffing, but the proxy relays it to servers
/// that may use DATA, so bare CR and LF are rejected here as in DATA, across
/// chunk boundaries too. The size counts every chunk. After an error the
/// reader keeps counting nothing and stores nothing, so the caller can read
/// the rest of the chunk and reply.
#[derive(Debug, Clone)]
pub struct ChunkReader {
    max_bytes: usize,
    body: Vec<u8>,
    error: Option<DataError>,
    /// The previous byte was a CR, so the next must be LF.
    after_cr: bool,
}

impl ChunkReader {
    pub fn new(max_bytes: usize) -> ChunkReader {
        ChunkReader {
            max_bytes,
            body: Vec::new(),
            error: None,
            after_cr: false,
        }
    }

    /// Adds bytes of the current chunk.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.error.is_some() {
            return;
        }
        if self.body.len() + bytes.len() > self.max_bytes {
            self.fail(DataError::TooLarge {
                max_bytes: self.max_bytes,
            });
            return;
        }
        for &byte in bytes {
            let bare = match byte {
                b'\n' => !self.after_cr,
                _ => self.after_cr,
            };
            if bare {
                self.fail(DataError::BareLineEnding);
                return;
            }
            self.after_cr = byte == b'\r';
        }
        self.body.extend_from_slice(bytes);
    }

    /// Returns the first error met so far.
    pub fn error(&self) -> Option<DataError> {
        self.error
    }

    /// Ends the message after its last chunk.
    pub fn finish(mut self) -> Result<Vec<u8>, DataError> {
        if self.after_cr {
            self.fail(DataError::BareLineEnding);
        }
        match self.error {
            Some(error) => Err(error),
            None => Ok(self.body),
        }
    }

    fn fail(&mut self, error: DataError) {
        if self.error.is_none() {
            self.error = Some(error);
            self.body = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(input: &[u8], max_bytes: usize) -> (usize, Result<Vec<u8>, DataError>) {
        match DataReader::new(max_bytes).feed(input) {
            DataEvent::Done { consumed, result } => (consumed, result),
            DataEvent::NeedMore => panic!("no final dot found in {input:?}"),
        }
    }

    #[test]
    fn table_of_messages() {
        type Case = (
            &'static str,
            &'static [u8],
            Result<&'static [u8], DataError>,
        );
        let cases: &[Case] = &[
            (
                "plain",
                b"A: b\r\n\r\nhi\r\n.\r\n",
                Ok(b"A: b\r\n\r\nhi\r\n"),
            ),
            ("empty", b".\r\n", Ok(b"")),
            ("stuffed dot", b"..\r\n.\r\n", Ok(b".\r\n")),
            ("stuffed text", b"..hidden\r\n.\r\n", Ok(b".hidden\r\n")),
            ("dot inside line", b"a.b\r\n.\r\n", Ok(b"a.b\r\n")),
            ("bare lf", b"a\nb\r\n.\r\n", Err(DataError::BareLineEnding)),
            ("bare cr", b"a\rb\r\n.\r\n", Err(DataError::BareLineEnding)),
            ("cr cr lf", b"a\r\r\n.\r\n", Err(DataError::BareLineEnding)),
            (
                "dot cr without lf",
                b".\rX\r\n.\r\n",
                Err(DataError::BareLineEnding),
            ),
        ];
        for (case, input, expected) in cases {
            let (consumed, result) = read_all(input, 64);
            assert_eq!(consumed, input.len(), "{case}: consumed");
            assert_eq!(result.as_deref(), expected.as_deref(), "{case}: result");
        }
    }

    #[test]
    fn message_over_limit_is_too_large() {
        let (consumed, result) = read_all(b"0123456789\r\n.\r\n", 8);

        assert_eq!(consumed, 15);
        assert_eq!(result, Err(DataError::TooLarge { max_bytes: 8 }));
    }

    #[test]
    fn message_at_limit_is_accepted() {
        let (_, result) = read_all(b"012345\r\n.\r\n", 8);

        assert_eq!(result, Ok(b"012345\r\n".to_vec()));
    }

    #[test]
    fn smuggled_lf_dot_lf_does_not_end_message() {
        // `\n.\n` and `\n.\r\n` end a message only for lenient servers; the
        // command after them must stay inside this (rejected) message.
        let input = b"Subject: x\r\n\r\nhi\n.\r\nMAIL FROM:<evil@example>\r\n.\r\nNOOP\r\n";

        let (consumed, result) = read_all(input, 1024);

        assert_eq!(result, Err(DataError::BareLineEnding));
        assert_eq!(&input[consumed..], b"NOOP\r\n");
    }

    #[test]
    fn final_dot_split_across_reads() {
        let mut reader = DataReader::new(1024);

        assert_eq!(reader.feed(b"hi\r\n"), DataEvent::NeedMore);
        assert_eq!(reader.feed(b"."), DataEvent::NeedMore);
        assert_eq!(reader.feed(b"\r"), DataEvent::NeedMore);
        assert_eq!(
            reader.feed(b"\nQUIT\r\n"),
            DataEvent::Done {
                consumed: 1,
                result: Ok(b"hi\r\n".to_vec())
            }
        );
    }

    #[test]
    fn oversized_message_is_drained_to_final_dot() {
        let mut reader = DataReader::new(4);

        assert_eq!(reader.feed(b"0123456789\r\n"), DataEvent::NeedMore);
        assert_eq!(
            reader.feed(b"more\r\n.\r\nQUIT\r\n"),
            DataEvent::Done {
                consumed: 9,
                result: Err(DataError::TooLarge { max_bytes: 4 })
            }
        );
    }

    #[test]
    fn chunks_join_across_crlf() {
        let mut reader = ChunkReader::new(64);
        reader.feed(b"a\r");
        reader.feed(b"\nb\r\n");

        assert_eq!(reader.finish(), Ok(b"a\r\nb\r\n".to_vec()));
    }

    #[test]
    fn chunk_table_of_errors() {
        let cases: &[(&str, &[&[u8]], DataError)] = &[
            ("bare lf", &[b"a\nb"], DataError::BareLineEnding),
            ("bare cr", &[b"a\rb"], DataError::BareLineEnding),
            ("cr at end", &[b"a\r"], DataError::BareLineEnding),
            ("lf opens chunk", &[b"a", b"\nb"], DataError::BareLineEnding),
            (
                "too large",
                &[b"0123", b"45678"],
                DataError::TooLarge { max_bytes: 8 },
            ),
        ];
        for (case, chunks, expected) in cases {
            let mut reader = ChunkReader::new(8);
            for chunk in *chunks {
                reader.feed(chunk);
            }
            assert_eq!(reader.finish(), Err(*expected), "{case}");
        }
    }
}
