//! A line scan over the raw message before mail-parser reads it.
//!
//! It follows the MIME structure far enough to enforce the depth and part
//! limits (mail-parser 0.11.9 has neither for multiparts and unencoded nested
//! messages), to report multiparts that never close or whose boundary never
//! appears, and to repair one break that makes parsers drop content: a part
//! whose header block is not followed by a blank line. mail-parser then reads
//! every body line as a broken header line and loses the body, so the scan
//! inserts the blank line where the headers evidently end.

use std::borrow::Cow;

use crate::decode::params;
use crate::{Finding, FindingKind, Limits};

/// How many lines after a line that is not a header field are searched for a
/// further header field, which would show the line is a stray inside the headers.
const LOOKAHEAD_LINES: usize = 32;

/// The message as mail-parser should read it, with what the scan found.
pub(crate) struct Prepared<'a> {
    pub(crate) raw: Cow<'a, [u8]>,
    pub(crate) findings: Vec<Finding>,
}

struct Frame {
    /// `None` for a nested message, which ends where its parent's part ends.
    boundary: Option<Vec<u8>>,
    digest: bool,
    delimiter_seen: bool,
    closed: bool,
}

struct Scan<'a, 'l> {
    raw: &'a [u8],
    limits: &'l Limits,
    /// The repaired copy, made at the first repair; `None` while the input is unchanged.
    output: Option<Vec<u8>>,
    copied_up_to: usize,
    stack: Vec<Frame>,
    in_headers: bool,
    block_start: usize,
    /// Whether the header block being read is that of a nested message.
    block_is_message: bool,
    parts: usize,
    findings: Vec<Finding>,
}

/// Scans `raw`, enforcing [`Limits::max_mime_depth`] and [`Limits::max_parts`]
/// by cutting the message where they are exceeded, and repairing missing blank lines.
pub(crate) fn prepare<'a>(raw: &'a [u8], limits: &Limits) -> Prepared<'a> {
    let mut scan = Scan {
        raw,
        limits,
        output: None,
        copied_up_to: 0,
        stack: Vec::new(),
        in_headers: true,
        block_start: 0,
        block_is_message: false,
        parts: 0,
        findings: Vec::new(),
    };
    let end = scan.run();
    scan.finish(end)
}

impl<'a> Scan<'a, '_> {
    /// Walks the lines; returns where the message is cut, or its length.
    fn run(&mut self) -> usize {
        let mut position = 0;
        while position < self.raw.len() {
            let line_end = next_line(self.raw, position);
            let line = trim_eol(&self.raw[position..line_end]);

            if self.in_headers {
                match self.classify_header_line(line, position, line_end) {
                    HeaderLine::Field => {
                        if position - self.block_start > self.limits.max_header_bytes {
                            self.findings.push(Finding {
                                kind: FindingKind::LimitReached,
                                location: "message".to_owned(),
                                detail: format!(
                                    "a header block is longer than {} bytes; the rest is read as body",
                                    self.limits.max_header_bytes
                                ),
                            });
                            self.insert_blank_line(position);
                        } else {
                            position = line_end;
                            continue;
                        }
                    }
                    HeaderLine::End => {
                        if let Some(cut) = self.end_of_headers(position) {
                            return cut;
                        }
                        // A nested message's headers start on the next line.
                        self.block_start = line_end;
                        self.block_is_message = self.in_headers;
                        position = line_end;
                        continue;
                    }
                    // A message/rfc822 part that starts with no header field at
                    // all contains no message; mail-parser reports it as text, which
                    // the walk turns into a finding, so it is left as it is.
                    HeaderLine::BodyStarts
                        if self.block_is_message && position == self.block_start =>
                    {
                        self.in_headers = false;
                        self.block_is_message = false;
                    }
                    HeaderLine::BodyStarts => {
                        self.findings.push(Finding {
                            kind: FindingKind::MalformedMime,
                            location: "message".to_owned(),
                            detail: format!(
                                "no blank line after a header block; the body is taken to start at {:?}",
                                preview(line)
                            ),
                        });
                        self.insert_blank_line(position);
                    }
                }
                // The headers ended without a blank line: close the block, then
                // read this line as body, also when the part is a nested message.
                if self.in_headers {
                    if let Some(cut) = self.end_of_headers(position) {
                        return cut;
                    }
                    self.in_headers = false;
                    self.block_is_message = false;
                }
            }

            if line.starts_with(b"--") {
                self.delimiter(line);
                if self.in_headers {
                    self.block_start = line_end;
                    self.block_is_message = false;
                }
            }
            position = line_end;
        }
        self.raw.len()
    }

    fn classify_header_line(&self, line: &[u8], position: usize, line_end: usize) -> HeaderLine {
        if line.is_empty() {
            return HeaderLine::End;
        }
        let first_in_block = position == self.block_start;
        if matches!(line[0], b' ' | b'\t') || is_field_line(line) {
            return HeaderLine::Field;
        }
        // An mbox separator may open the file.
        if position == 0 && line.starts_with(b"From ") {
            return HeaderLine::Field;
        }
        if self.matching_frame(line).is_some() && !first_in_block {
            return HeaderLine::BodyStarts;
        }
        // A stray line is part of the headers when a header field follows it
        // before the next blank line; otherwise the body has begun.
        let mut next = line_end;
        for _ in 0..LOOKAHEAD_LINES {
            if next >= self.raw.len() {
                break;
            }
            let after = next_line(self.raw, next);
            let candidate = trim_eol(&self.raw[next..after]);
            if candidate.is_empty() || self.matching_frame(candidate).is_some() {
                break;
            }
            if is_field_line(candidate) {
                return HeaderLine::Field;
            }
            next = after;
        }
        HeaderLine::BodyStarts
    }

    /// Handles the end of the header block that ends at `position` (at the
    /// blank line, or at the first body line when the blank line is missing).
    /// Returns a cut position when a limit stops the scan.
    fn end_of_headers(&mut self, position: usize) -> Option<usize> {
        let block = &self.raw[self.block_start..position];
        let header = header_values(block);
        self.parts += 1;
        if self.parts > self.limits.max_parts {
            self.findings.push(Finding {
                kind: FindingKind::LimitReached,
                location: "message".to_owned(),
                detail: format!(
                    "more than {} MIME parts; the rest of the message is not read",
                    self.limits.max_parts
                ),
            });
            return Some(self.block_start);
        }

        let content_type = header
            .content_type
            .as_deref()
            .map(|raw| params::parse(raw).0);
        let mime_type = content_type
            .as_ref()
            .map(|value| value.value.as_str())
            .unwrap_or("");
        let in_digest = self.stack.last().is_some_and(|frame| frame.digest);
        let encoded = header.transfer_encoding.as_deref().is_some_and(|encoding| {
            let encoding = String::from_utf8_lossy(encoding)
                .trim()
                .to_ascii_lowercase();
            encoding == "base64" || encoding == "quoted-printable"
        });

        let boundary = content_type
            .as_ref()
            .filter(|_| mime_type.starts_with("multipart/"))
            .and_then(|value| value.param("boundary"))
            .filter(|boundary| !boundary.is_empty());
        let nested_message = !encoded
            && (mime_type == "message/rfc822"
                || mime_type == "message/global"
                || (mime_type.is_empty() && in_digest));

        if boundary.is_some() || nested_message {
            if self.stack.len() + 1 > self.limits.max_mime_depth {
                self.findings.push(Finding {
                    kind: FindingKind::LimitReached,
                    location: "message".to_owned(),
                    detail: format!(
                        "MIME nesting deeper than {} levels; the rest of the message is not read",
                        self.limits.max_mime_depth
                    ),
                });
                return Some(self.block_start);
            }
            self.stack.push(Frame {
                boundary: boundary.map(|boundary| boundary.as_bytes().to_vec()),
                digest: mime_type == "multipart/digest",
                delimiter_seen: false,
                closed: false,
            });
        }

        // The body of a nested message starts with the nested message's headers.
        self.in_headers = nested_message;
        None
    }

    /// Returns the index of the innermost open multipart whose boundary `line` delimits.
    fn matching_frame(&self, line: &[u8]) -> Option<usize> {
        let rest = line.strip_prefix(b"--")?;
        self.stack.iter().rposition(|frame| {
            frame
                .boundary
                .as_deref()
                .is_some_and(|boundary| !frame.closed && rest.starts_with(boundary))
        })
    }

    fn delimiter(&mut self, line: &[u8]) {
        let Some(index) = self.matching_frame(line) else {
            return;
        };
        // Frames opened inside this part end with it; multiparts among them never closed.
        while self.stack.len() > index + 1 {
            if let Some(frame) = self.stack.pop() {
                self.report_unclosed(&frame);
            }
        }
        let Some(frame) = self.stack.last_mut() else {
            return;
        };
        let boundary_len = frame.boundary.as_ref().map_or(0, Vec::len);
        frame.delimiter_seen = true;
        let after = &line[2 + boundary_len..];
        if after.starts_with(b"--") {
            frame.closed = true;
            self.stack.pop();
        } else {
            self.in_headers = true;
        }
    }

    fn report_unclosed(&mut self, frame: &Frame) {
        let Some(boundary) = &frame.boundary else {
            return;
        };
        if frame.closed {
            return;
        }
        let boundary = String::from_utf8_lossy(boundary);
        let detail = if frame.delimiter_seen {
            format!(
                "multipart boundary {boundary:?} is never closed; its last part runs to the end of its parent"
            )
        } else {
            format!("multipart boundary {boundary:?} never appears; the body is read as text")
        };
        self.findings.push(Finding {
            kind: FindingKind::MalformedMime,
            location: "message".to_owned(),
            detail,
        });
    }

    fn insert_blank_line(&mut self, position: usize) {
        let crlf = position >= 2 && self.raw[..position].ends_with(b"\r\n");
        let output = self
            .output
            .get_or_insert_with(|| Vec::with_capacity(self.raw.len() + 64));
        output.extend_from_slice(&self.raw[self.copied_up_to..position]);
        output.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
        self.copied_up_to = position;
    }

    fn finish(mut self, end: usize) -> Prepared<'a> {
        if end == self.raw.len() {
            while let Some(frame) = self.stack.pop() {
                self.report_unclosed(&frame);
            }
        }
        let raw = match self.output.take() {
            Some(mut output) => {
                output.extend_from_slice(&self.raw[self.copied_up_to..end]);
                Cow::Owned(output)
            }
            None => Cow::Borrowed(&self.raw[..end]),
        };
        Prepared {
            raw,
            findings: self.findings,
        }
    }
}

enum HeaderLine {
    Field,
    End,
    BodyStarts,
}

/// Returns whether a line looks like `Name: value`, with a printable name and
/// perhaps spaces before the colon (RFC 5322 obsolete syntax).
fn is_field_line(line: &[u8]) -> bool {
    let Some(colon) = memchr::memchr(b':', line) else {
        return false;
    };
    let name = &line[..colon];
    !name.is_empty()
        && name.len() <= 128
        && !matches!(name[0], b' ' | b'\t')
        && name
            .iter()
            .all(|&byte| byte.is_ascii_graphic() || byte == b' ' || byte == b'\t')
}

#[derive(Default)]
struct BlockHeaders {
    content_type: Option<Vec<u8>>,
    transfer_encoding: Option<Vec<u8>>,
}

/// Picks `Content-Type` and `Content-Transfer-Encoding` out of a header block.
fn header_values(block: &[u8]) -> BlockHeaders {
    let mut found = BlockHeaders::default();
    let mut current: Option<&mut Option<Vec<u8>>> = None;
    let mut position = 0;
    while position < block.len() {
        let end = next_line(block, position);
        let line = &block[position..end];
        position = end;
        if matches!(line.first(), Some(b' ' | b'\t')) {
            if let Some(Some(value)) = current.as_mut().map(|slot| slot.as_mut()) {
                value.extend_from_slice(line);
            }
            continue;
        }
        current = None;
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        let name = String::from_utf8_lossy(&line[..colon])
            .trim()
            .to_ascii_lowercase();
        let slot = match name.as_str() {
            "content-type" => &mut found.content_type,
            "content-transfer-encoding" => &mut found.transfer_encoding,
            _ => continue,
        };
        // The first occurrence counts, as in mail-parser.
        if slot.is_none() {
            *slot = Some(line[colon + 1..].to_vec());
            current = Some(slot);
        }
    }
    found
}

fn next_line(raw: &[u8], position: usize) -> usize {
    memchr::memchr(b'\n', &raw[position..]).map_or(raw.len(), |offset| position + offset + 1)
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn preview(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(&line[..line.len().min(40)]);
    text.into_owned()
}
