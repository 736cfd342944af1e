//! A JSON-lines file with size-based rotation: `verdicts.jsonl` is renamed to
//! `verdicts.jsonl.1` when the next line would make it larger than the limit,
//! older files move up by one, and the oldest beyond the kept count is deleted.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// An append-only file that rotates by size.
#[derive(Debug)]
pub struct RotatingFile {
    path: PathBuf,
    file: File,
    size: u64,
    max_bytes: u64,
    keep: u32,
}

impl RotatingFile {
    /// Opens `path` for appending, creating it and its folder when missing.
    /// `keep` is the number of rotated files kept besides the current one.
    ///
    /// # Errors
    ///
    /// Fails when the folder cannot be created or the file cannot be opened.
    pub fn open(path: &Path, max_bytes: u64, keep: u32) -> std::io::Result<Self> {
        if let Some(parent) = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            path: path.to_owned(),
            file,
            size,
            max_bytes: max_bytes.max(1),
            keep,
        })
    }

    /// Appends one line. A line larger than the limit is still written, alone in
    /// its file.
    ///
    /// # Errors
    ///
    /// Fails when `line` contains a line break, or when rotating or writing
    /// fails.
    pub fn write_line(&mut self, line: &str) -> std::io::Result<()> {
        super::spool::reject_line_break(line)?;
        let length = line.len() as u64 + 1;
        if self.size > 0 && self.size + length > self.max_bytes {
            self.rotate()?;
        }
        let mut buffer = Vec::with_capacity(line.len() + 1);
        buffer.extend_from_slice(line.as_bytes());
        buffer.push(b'\n');
        self.file.write_all(&buffer)?;
        self.size += length;
        Ok(())
    }

    /// Flushes written lines to the operating system.
    ///
    /// # Errors
    ///
    /// Returns the error of `fsync`.
    pub fn sync(&mut self) -> std::io::Result<()> {
        self.file.sync_data()
    }

    fn rotated_path(&self, index: u32) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(format!(".{index}"));
        PathBuf::from(name)
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        if self.keep == 0 {
            self.file.set_len(0)?;
            self.size = 0;
            return Ok(());
        }
        let oldest = self.rotated_path(self.keep);
        match std::fs::remove_file(&oldest) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
        for index in (1..self.keep).rev() {
            let from = self.rotated_path(index);
            if from.exists() {
                std::fs::rename(&from, self.rotated_path(index + 1))?;
            }
        }
        std::fs::rename(&self.path, self.rotated_path(1))?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = 0;
        tracing::info!(path = %self.path.display(), keep = self.keep, "rotated the SIEM export file");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_newest_files() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("verdicts.jsonl");
        // Each line takes 10 bytes with its line ending, so each file contains two.
        let mut file = RotatingFile::open(&path, 20, 2).expect("open");
        for index in 0..7 {
            file.write_line(&format!("{{\"n\":{index:03}}}"))
                .expect("write");
        }
        let read = |path: &Path| std::fs::read_to_string(path).expect("read");
        assert_eq!(read(&path), "{\"n\":006}\n");
        assert_eq!(
            read(&dir.path().join("verdicts.jsonl.1")),
            "{\"n\":004}\n{\"n\":005}\n"
        );
        assert_eq!(
            read(&dir.path().join("verdicts.jsonl.2")),
            "{\"n\":002}\n{\"n\":003}\n"
        );
        assert!(!dir.path().join("verdicts.jsonl.3").exists());
    }

    #[test]
    fn reopen_appends_and_counts_size() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("verdicts.jsonl");
        RotatingFile::open(&path, 20, 1)
            .expect("open")
            .write_line("{\"n\":001}")
            .expect("write");
        let mut file = RotatingFile::open(&path, 20, 1).expect("reopen");
        file.write_line("{\"n\":002}").expect("write");
        file.write_line("{\"n\":003}").expect("write");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "{\"n\":003}\n"
        );
    }
}
