//! SIEM export: every verdict as one JSON line, to a rotating file and through
//! a disk spool to an HTTP endpoint (Splunk HEC or a JSON-lines webhook).
//!
//! [`SiemExporter::export`] writes the line to the file and appends it to the
//! spool. An [`HttpForwarder`] task sends the spool in order and removes the
//! lines that the endpoint accepted. When the endpoint is down the lines wait on disk,
//! across restarts, and go out in order when it is back.

mod file;
mod http;
mod spool;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use self::file::RotatingFile;
pub use self::http::{FlushReport, HttpExportConfig, HttpFormat, HttpForwarder, check_endpoint};
pub use self::spool::{Spool, SpoolBatch, SpoolLimits, SpoolPosition};
use crate::clock::Clock;
use crate::secret::SecretError;

/// Settings of the SIEM export, read from `[integrations.siem]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiemConfig {
    /// The JSON-lines file; no file is written when unset.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// Size at which the file rotates, in bytes.
    #[serde(default = "default_file_max_bytes")]
    pub file_max_bytes: u64,
    /// Rotated files kept besides the current one.
    #[serde(default = "default_file_keep")]
    pub file_keep: u32,
    /// The spool folder of the HTTP export.
    #[serde(default = "default_spool_dir")]
    pub spool_dir: PathBuf,
    #[serde(default)]
    pub spool: SpoolLimits,
    /// The HTTP endpoint; no HTTP export when unset.
    #[serde(default)]
    pub http: Option<HttpExportConfig>,
}

fn default_file_max_bytes() -> u64 {
    100 * 1024 * 1024
}

fn default_file_keep() -> u32 {
    10
}

fn default_spool_dir() -> PathBuf {
    PathBuf::from("siem-spool")
}

impl Default for SiemConfig {
    fn default() -> Self {
        Self {
            file: None,
            file_max_bytes: default_file_max_bytes(),
            file_keep: default_file_keep(),
            spool_dir: default_spool_dir(),
            spool: SpoolLimits::default(),
            http: None,
        }
    }
}

impl SiemConfig {
    /// Checks the values that would otherwise fail only at the first export.
    ///
    /// # Errors
    ///
    /// Returns a message naming the key and the fix.
    pub fn validate(&self) -> Result<(), String> {
        if self.file.is_none() && self.http.is_none() {
            return Err(
                "neither file nor http is set, so nothing would be exported; set one".into(),
            );
        }
        if self.file_max_bytes == 0 {
            return Err("file_max_bytes must be at least 1".into());
        }
        if self.spool.segment_bytes == 0 {
            return Err("spool.segment_bytes must be at least 1".into());
        }
        if let Some(http) = &self.http {
            if !matches!(http.url.scheme(), "https" | "http") || http.url.host().is_none() {
                return Err(format!(
                    "http.url {} is not an http(s) URL with a host",
                    http.url
                ));
            }
            for (key, value) in [
                ("http.batch_max_lines", http.batch_max_lines as u64),
                ("http.batch_max_bytes", http.batch_max_bytes as u64),
                ("http.flush_interval_ms", http.flush_interval_ms),
                ("http.request_timeout_secs", http.request_timeout_secs),
            ] {
                if value == 0 {
                    return Err(format!("{key} must be at least 1"));
                }
            }
        }
        Ok(())
    }

    /// Resolves relative paths against `base`, the folder of the config file.
    pub fn relative_to(mut self, base: &Path) -> Self {
        if let Some(file) = self.file.take() {
            self.file = Some(base.join(file));
        }
        self.spool_dir = base.join(&self.spool_dir);
        if let Some(http) = self.http.as_mut() {
            http.token = http.token.take().map(|token| token.relative_to(base));
        }
        self
    }
}

/// A failure of the SIEM export.
#[derive(Debug, thiserror::Error)]
pub enum SiemError {
    #[error("failed to serialise the verdict: {0}")]
    Serialize(#[from] serde_json::Error),
    #[error("SIEM export I/O failed: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("failed to build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    #[error("request to {url} failed: {source}")]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url} answered HTTP {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
        retry_after: Option<Duration>,
    },
    #[error("the SIEM endpoint rejected a single verdict as too large (HTTP 413)")]
    PayloadTooLarge,
}

impl SiemError {
    /// Returns whether the same export may succeed later without a change of
    /// configuration. Lines stay in the spool either way.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Transport { .. } | Self::Io(_) => true,
            Self::Status { status, .. } => *status == 408 || *status == 429 || *status >= 500,
            Self::Serialize(_) | Self::Secret(_) | Self::Client(_) | Self::PayloadTooLarge => false,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Writes each verdict to the file and to the spool of the HTTP export.
pub struct SiemExporter {
    file: Option<Mutex<RotatingFile>>,
    spool: Option<Arc<Mutex<Spool>>>,
}

impl SiemExporter {
    /// Opens the file and the spool. Returns the forwarder to run when HTTP
    /// export is configured.
    ///
    /// # Errors
    ///
    /// Fails when the file or spool cannot be opened or the token not loaded.
    pub fn open(
        config: &SiemConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<(Self, Option<HttpForwarder>), SiemError> {
        let file = config
            .file
            .as_deref()
            .map(|path| RotatingFile::open(path, config.file_max_bytes, config.file_keep))
            .transpose()?
            .map(Mutex::new);
        let (spool, forwarder) = match &config.http {
            Some(http) => {
                let spool = Arc::new(Mutex::new(Spool::open(
                    &config.spool_dir,
                    config.spool.clone(),
                )?));
                let forwarder = HttpForwarder::new(http.clone(), Arc::clone(&spool), clock)?;
                (Some(spool), Some(forwarder))
            }
            None => (None, None),
        };
        Ok((Self { file, spool }, forwarder))
    }

    /// Exports one verdict as one JSON line.
    ///
    /// # Errors
    ///
    /// Fails when the verdict cannot be serialised or the line not written. The
    /// file is written before the spool; a failure of one does not stop the other.
    pub fn export<T: Serialize + ?Sized>(&self, verdict: &T) -> Result<(), SiemError> {
        let line = serde_json::to_string(verdict)?;
        let mut first_error = None;
        if let Some(file) = &self.file {
            let result = file
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .write_line(&line);
            if let Err(error) = result {
                tracing::error!(error = %error, "failed to write the verdict to the SIEM file");
                first_error = Some(SiemError::Io(error));
            }
        }
        if let Some(spool) = &self.spool {
            let result = spool
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .append(&line);
            if let Err(error) = result {
                tracing::error!(error = %error, "failed to append the verdict to the SIEM spool");
                first_error.get_or_insert(SiemError::Io(error));
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}
