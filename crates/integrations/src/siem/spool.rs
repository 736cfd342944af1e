//! A durable, ordered queue of JSON lines on disk, between the verdicts and the
//! SIEM endpoint.
//!
//! Lines are appended to numbered segment files (`00000000000000000001.jsonl`,
//! …). The file `ack` stores the position of the first line that the endpoint
//! has not yet accepted. After each accepted batch it is replaced atomically:
//! write, fsync, rename, fsync of the folder. A restart therefore resumes at the first
//! unsent line, in order. A line that the endpoint accepted just before a crash
//! that came before the `ack` write is sent again; no other line is.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Limits of the spool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpoolLimits {
    /// Size at which a new segment file starts, in bytes.
    pub segment_bytes: u64,
    /// The maximum size of the spool, in bytes, checked when a segment starts,
    /// so the spool can exceed it by up to one segment. Past it the oldest
    /// segment is deleted and its lines are lost. Each such loss is logged and
    /// counted.
    pub max_bytes: u64,
    /// Whether each appended line is fsynced, which costs one disk flush per
    /// verdict. Without it a process restart loses nothing, but an
    /// operating-system crash can lose the lines that the kernel had not yet
    /// written.
    pub fsync_each_line: bool,
}

impl Default for SpoolLimits {
    fn default() -> Self {
        Self {
            segment_bytes: 8 * 1024 * 1024,
            max_bytes: 1024 * 1024 * 1024,
            fsync_each_line: false,
        }
    }
}

/// A place in the spool: a segment and a byte offset in it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SpoolPosition {
    pub segment: u64,
    pub offset: u64,
}

/// Lines read from the spool and the position after the last one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolBatch {
    pub lines: Vec<String>,
    pub end: SpoolPosition,
}

/// The on-disk queue.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    limits: SpoolLimits,
    /// Segment numbers on disk, oldest first.
    segments: Vec<u64>,
    writer: File,
    writer_size: u64,
    ack: SpoolPosition,
    /// Lines deleted unsent because the spool was full.
    dropped_lines: u64,
}

const ACK_FILE: &str = "ack";

impl Spool {
    /// Opens the spool in `dir`, creating it when missing. A last line cut short
    /// by a crash is removed.
    ///
    /// # Errors
    ///
    /// Fails when the folder or its files cannot be read or written.
    pub fn open(dir: &Path, limits: SpoolLimits) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut segments = list_segments(dir)?;
        let ack = read_ack(dir)?.unwrap_or(SpoolPosition {
            segment: segments.first().copied().unwrap_or(1),
            offset: 0,
        });

        // Segments before the acknowledged one were sent before a crash that
        // came between the ack write and their deletion.
        for &segment in segments.iter().filter(|&&segment| segment < ack.segment) {
            std::fs::remove_file(segment_path(dir, segment))?;
        }
        segments.retain(|&segment| segment >= ack.segment);
        if segments.is_empty() {
            segments.push(ack.segment);
        }

        let last = *segments.last().unwrap_or(&ack.segment);
        let last_path = segment_path(dir, last);
        let writer = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&last_path)?;
        let writer_size = truncate_partial_line(&writer)?;
        Ok(Self {
            dir: dir.to_owned(),
            limits,
            segments,
            writer,
            writer_size,
            ack,
            dropped_lines: 0,
        })
    }

    /// Returns the number of lines deleted unsent because the spool was full.
    pub fn dropped_lines(&self) -> u64 {
        self.dropped_lines
    }

    /// Returns the bytes waiting to be sent.
    pub fn pending_bytes(&self) -> std::io::Result<u64> {
        let mut total = 0;
        for &segment in &self.segments {
            let size = std::fs::metadata(segment_path(&self.dir, segment))?.len();
            total += if segment == self.ack.segment {
                size.saturating_sub(self.ack.offset)
            } else {
                size
            };
        }
        Ok(total)
    }

    /// Appends one line.
    ///
    /// # Errors
    ///
    /// Fails when `line` contains a line break, or when the segment cannot be
    /// written or a new one created.
    pub fn append(&mut self, line: &str) -> std::io::Result<()> {
        reject_line_break(line)?;
        if self.writer_size > 0
            && self.writer_size + line.len() as u64 + 1 > self.limits.segment_bytes
        {
            self.start_segment()?;
        }
        let mut buffer = Vec::with_capacity(line.len() + 1);
        buffer.extend_from_slice(line.as_bytes());
        buffer.push(b'\n');
        self.writer.write_all(&buffer)?;
        if self.limits.fsync_each_line {
            self.writer.sync_data()?;
        }
        self.writer_size += buffer.len() as u64;
        Ok(())
    }

    /// Reads up to `max_lines` lines and about `max_bytes` bytes from the first
    /// unsent line on; at least one line when any is waiting.
    ///
    /// # Errors
    ///
    /// Fails when a segment cannot be read.
    pub fn read_batch(&self, max_lines: usize, max_bytes: usize) -> std::io::Result<SpoolBatch> {
        let mut lines = Vec::new();
        let mut bytes = 0;
        let mut end = self.ack;
        for &segment in self
            .segments
            .iter()
            .filter(|&&segment| segment >= self.ack.segment)
        {
            let offset = if segment == self.ack.segment {
                self.ack.offset
            } else {
                0
            };
            let mut file = File::open(segment_path(&self.dir, segment))?;
            file.seek(SeekFrom::Start(offset))?;
            let mut reader = BufReader::new(file);
            let mut position = offset;
            end = SpoolPosition { segment, offset };
            loop {
                if lines.len() >= max_lines || (bytes >= max_bytes && !lines.is_empty()) {
                    return Ok(SpoolBatch { lines, end });
                }
                let mut line = String::new();
                let read = reader.read_line(&mut line)?;
                // A line without its ending is still being written.
                if read == 0 || !line.ends_with('\n') {
                    break;
                }
                position += read as u64;
                bytes += read;
                line.pop();
                lines.push(line);
                end = SpoolPosition {
                    segment,
                    offset: position,
                };
            }
        }
        Ok(SpoolBatch { lines, end })
    }

    /// Marks every line before `end` as sent: stores the position durably and
    /// deletes the segments it has passed.
    ///
    /// # Errors
    ///
    /// Fails when the ack file cannot be written.
    pub fn commit(&mut self, end: SpoolPosition) -> std::io::Result<()> {
        if end <= self.ack {
            return Ok(());
        }
        let last = *self.segments.last().unwrap_or(&end.segment);
        // A fully sent segment that is not being written is passed at once.
        let end = match segment_size(&self.dir, end.segment) {
            Ok(size) if end.offset >= size && end.segment < last => SpoolPosition {
                segment: self.next_segment_after(end.segment),
                offset: 0,
            },
            _ => end,
        };
        write_ack(&self.dir, end)?;
        self.ack = end;
        self.delete_before(end.segment)
    }

    fn next_segment_after(&self, segment: u64) -> u64 {
        self.segments
            .iter()
            .copied()
            .find(|&candidate| candidate > segment)
            .unwrap_or(segment)
    }

    fn delete_before(&mut self, segment: u64) -> std::io::Result<()> {
        while let Some(&first) = self.segments.first() {
            if first >= segment {
                break;
            }
            std::fs::remove_file(segment_path(&self.dir, first))?;
            self.segments.remove(0);
        }
        Ok(())
    }

    fn start_segment(&mut self) -> std::io::Result<()> {
        let next = self.segments.last().map_or(1, |last| last + 1);
        self.writer.sync_data()?;
        self.writer = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(segment_path(&self.dir, next))?;
        sync_dir(&self.dir)?;
        self.segments.push(next);
        self.writer_size = 0;
        self.enforce_max_bytes()
    }

    /// Deletes the oldest segments while the spool is over its limit, never the
    /// one being written.
    fn enforce_max_bytes(&mut self) -> std::io::Result<()> {
        while self.segments.len() > 1 && self.pending_bytes()? > self.limits.max_bytes {
            let oldest = self.segments[0];
            let path = segment_path(&self.dir, oldest);
            let offset = if oldest == self.ack.segment {
                self.ack.offset
            } else {
                0
            };
            let lost = count_lines_from(&path, offset)?;
            self.dropped_lines += lost;
            tracing::error!(
                segment = oldest,
                lines = lost,
                max_bytes = self.limits.max_bytes,
                "the SIEM spool is full; deleted its oldest segment unsent"
            );
            let next = self.segments[1];
            self.commit(SpoolPosition {
                segment: next,
                offset: 0,
            })?;
        }
        Ok(())
    }
}

/// Rejects a line that would break the one-line-per-record framing.
pub(crate) fn reject_line_break(line: &str) -> std::io::Result<()> {
    if line.contains(['\n', '\r']) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "a SIEM line contains a line break; serialise verdicts as single-line JSON",
        ));
    }
    Ok(())
}

fn segment_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join(format!("{segment:020}.jsonl"))
}

fn segment_size(dir: &Path, segment: u64) -> std::io::Result<u64> {
    Ok(std::fs::metadata(segment_path(dir, segment))?.len())
}

fn list_segments(dir: &Path) -> std::io::Result<Vec<u64>> {
    let mut segments = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(number) = name
            .strip_suffix(".jsonl")
            .and_then(|stem| stem.parse::<u64>().ok())
        {
            segments.push(number);
        }
    }
    segments.sort_unstable();
    Ok(segments)
}

fn read_ack(dir: &Path) -> std::io::Result<Option<SpoolPosition>> {
    match std::fs::read(dir.join(ACK_FILE)) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|error| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "the spool ack file in {} is not valid: {error}",
                    dir.display()
                ),
            )
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error),
    }
}

fn write_ack(dir: &Path, position: SpoolPosition) -> std::io::Result<()> {
    let temporary = dir.join("ack.tmp");
    let bytes = serde_json::to_vec(&position).map_err(std::io::Error::other)?;
    let mut file = File::create(&temporary)?;
    file.write_all(&bytes)?;
    file.sync_all()?;
    std::fs::rename(&temporary, dir.join(ACK_FILE))?;
    sync_dir(dir)
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Cuts a segment back to its last complete line and returns its new size.
fn truncate_partial_line(file: &File) -> std::io::Result<u64> {
    let size = file.metadata()?.len();
    if size == 0 {
        return Ok(0);
    }
    let mut reader = file;
    let mut content = Vec::new();
    reader.seek(SeekFrom::Start(0))?;
    reader.read_to_end(&mut content)?;
    let complete = content
        .iter()
        .rposition(|&byte| byte == b'\n')
        .map_or(0, |index| index + 1) as u64;
    if complete < size {
        tracing::warn!(
            cut_bytes = size - complete,
            "removed a partial line from the SIEM spool"
        );
        file.set_len(complete)?;
    }
    Ok(complete)
}

fn count_lines_from(path: &Path, offset: u64) -> std::io::Result<u64> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut count = 0;
    let mut buffer = [0_u8; 64 * 1024];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            return Ok(count);
        }
        count += buffer[..read].iter().filter(|&&byte| byte == b'\n').count() as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small_segments() -> SpoolLimits {
        SpoolLimits {
            segment_bytes: 32,
            max_bytes: 1024,
            fsync_each_line: false,
        }
    }

    #[test]
    fn batches_follow_append_order_across_segments() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut spool = Spool::open(dir.path(), small_segments()).expect("open");
        for index in 0..10 {
            spool.append(&format!("{{\"n\":{index}}}")).expect("append");
        }
        let batch = spool.read_batch(4, usize::MAX).expect("read");
        assert_eq!(
            batch.lines,
            ["{\"n\":0}", "{\"n\":1}", "{\"n\":2}", "{\"n\":3}"]
        );
        spool.commit(batch.end).expect("commit");
        let rest = spool.read_batch(100, usize::MAX).expect("read");
        let expected: Vec<String> = (4..10).map(|index| format!("{{\"n\":{index}}}")).collect();
        assert_eq!(rest.lines, expected);
    }

    #[test]
    fn reopen_resumes_after_commit() {
        let dir = tempfile::tempdir().expect("temporary directory");
        {
            let mut spool = Spool::open(dir.path(), small_segments()).expect("open");
            for index in 0..6 {
                spool.append(&format!("{{\"n\":{index}}}")).expect("append");
            }
            let batch = spool.read_batch(5, usize::MAX).expect("read");
            spool.commit(batch.end).expect("commit");
        }
        let spool = Spool::open(dir.path(), small_segments()).expect("reopen");
        let batch = spool.read_batch(100, usize::MAX).expect("read");
        assert_eq!(batch.lines, ["{\"n\":5}"]);
    }

    #[test]
    fn sent_segments_are_deleted() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut spool = Spool::open(dir.path(), small_segments()).expect("open");
        for index in 0..10 {
            spool.append(&format!("{{\"n\":{index}}}")).expect("append");
        }
        let batch = spool.read_batch(100, usize::MAX).expect("read");
        spool.commit(batch.end).expect("commit");
        let segments = list_segments(dir.path()).expect("list");
        assert_eq!(segments.len(), 1, "{segments:?}");
        assert_eq!(spool.pending_bytes().expect("pending"), 0);
    }

    #[test]
    fn line_break_is_rejected() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut spool = Spool::open(dir.path(), SpoolLimits::default()).expect("open");
        let error = spool.append("{\"a\":1}\n{\"b\":2}").expect_err("two lines");
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
        let batch = spool.read_batch(100, usize::MAX).expect("read");
        assert!(batch.lines.is_empty());
    }

    #[test]
    fn partial_last_line_is_cut_on_open() {
        let dir = tempfile::tempdir().expect("temporary directory");
        {
            let mut spool = Spool::open(dir.path(), SpoolLimits::default()).expect("open");
            spool.append("{\"n\":1}").expect("append");
        }
        let segment = segment_path(dir.path(), 1);
        let mut file = OpenOptions::new()
            .append(true)
            .open(&segment)
            .expect("segment");
        file.write_all(b"{\"n\":2").expect("write partial line");
        let mut spool = Spool::open(dir.path(), SpoolLimits::default()).expect("reopen");
        spool.append("{\"n\":3}").expect("append");
        let batch = spool.read_batch(100, usize::MAX).expect("read");
        assert_eq!(batch.lines, ["{\"n\":1}", "{\"n\":3}"]);
    }

    #[test]
    fn full_spool_drops_oldest_segment() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let limits = SpoolLimits {
            segment_bytes: 16,
            max_bytes: 40,
            fsync_each_line: false,
        };
        let mut spool = Spool::open(dir.path(), limits).expect("open");
        // Each line is 8 bytes with its ending, so a segment contains two. The
        // limit is checked when a segment starts: lines 6 and 8 start one.
        for index in 0..9 {
            spool.append(&format!("{{\"n\":{index}}}")).expect("append");
        }
        let batch = spool.read_batch(100, usize::MAX).expect("read");
        assert_eq!(
            batch.lines,
            [
                "{\"n\":4}",
                "{\"n\":5}",
                "{\"n\":6}",
                "{\"n\":7}",
                "{\"n\":8}"
            ]
        );
        assert_eq!(spool.dropped_lines(), 4);
    }
}
