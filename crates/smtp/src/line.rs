//! Command-line framing, sans I/O: bytes in, whole lines out.

/// The line [`LineReader::next_line`] took from the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// A complete command line, with its line ending.
    Complete(Vec<u8>),
    /// A line longer than the limit; it was drained to its end and discarded.
    TooLong,
}

/// Splits client input into command lines of bounded length.
///
/// A line ends at LF; CRLF is the standard ending, and a bare LF is accepted
/// in commands as Postfix does, because only inside DATA can a bare LF smuggle
/// a second message. A line over the limit is not kept: the reader discards
/// its bytes until the LF and then reports [`Line::TooLong`], so the session
/// stays in step with the client and memory stays bounded.
#[derive(Debug, Clone)]
pub struct LineReader {
    max_len: usize,
    discarding: bool,
}

impl LineReader {
    pub fn new(max_len: usize) -> LineReader {
        LineReader {
            max_len,
            discarding: false,
        }
    }

    /// Takes the next line from the front of `input`, or `None` when more bytes are needed.
    ///
    /// Bytes of an over-long line are removed from `input` as they arrive, so
    /// `input` never contains more than the limit of an unfinished line.
    pub fn next_line(&mut self, input: &mut Vec<u8>) -> Option<Line> {
        let newline = input.iter().position(|&byte| byte == b'\n');
        match newline {
            Some(end) => {
                let line: Vec<u8> = input.drain(..=end).collect();
                if self.discarding || line.len() > self.max_len {
                    self.discarding = false;
                    Some(Line::TooLong)
                } else {
                    Some(Line::Complete(line))
                }
            }
            None => {
                if self.discarding || input.len() > self.max_len {
                    self.discarding = true;
                    input.clear();
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_pipelined_lines() {
        let mut reader = LineReader::new(512);
        let mut input = b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDA".to_vec();

        assert_eq!(
            reader.next_line(&mut input),
            Some(Line::Complete(b"MAIL FROM:<a@b>\r\n".to_vec()))
        );
        assert_eq!(
            reader.next_line(&mut input),
            Some(Line::Complete(b"RCPT TO:<c@d>\r\n".to_vec()))
        );
        assert_eq!(reader.next_line(&mut input), None);
        assert_eq!(input, b"DA");
    }

    #[test]
    fn drains_over_long_line_across_reads() {
        let mut reader = LineReader::new(16);
        let mut input = vec![b'A'; 20];

        assert_eq!(reader.next_line(&mut input), None);
        assert!(input.is_empty());

        input.extend_from_slice(b"AAAA\r\nNOOP\r\n");
        assert_eq!(reader.next_line(&mut input), Some(Line::TooLong));
        assert_eq!(
            reader.next_line(&mut input),
            Some(Line::Complete(b"NOOP\r\n".to_vec()))
        );
    }

    #[test]
    fn line_at_limit_is_complete() {
        let mut reader = LineReader::new(6);
        let mut input = b"NOOP\r\n".to_vec();

        assert_eq!(
            reader.next_line(&mut input),
            Some(Line::Complete(b"NOOP\r\n".to_vec()))
        );
    }
}
