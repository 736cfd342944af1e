//! Secrets such as the Graph client secret: loaded from a file or an environment
//! variable, and never printed.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A secret value. `Debug` and `Display` print `***`, so a secret that reaches a
/// log line or an error message shows nothing.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// Returns the value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where a secret is read from. In a config file this is either
/// `{ file = "path" }` or `{ env = "NAME" }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum SecretSource {
    /// A file whose content is the secret; one trailing line ending is removed.
    File(PathBuf),
    /// An environment variable.
    Env(String),
}

/// A secret that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("failed to read the secret file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the secret file {path} is empty; write the secret into it")]
    EmptyFile { path: PathBuf },
    #[error("the environment variable {name} is not set or empty; set it to the secret")]
    MissingEnv { name: String },
}

impl SecretSource {
    /// Reads the secret.
    ///
    /// # Errors
    ///
    /// Fails when the file cannot be read or is empty, or when the variable is
    /// unset, empty or not valid Unicode.
    pub fn load(&self) -> Result<Secret, SecretError> {
        match self {
            Self::File(path) => load_file(path),
            Self::Env(name) => match std::env::var(name) {
                Ok(value) if !value.is_empty() => Ok(Secret(value)),
                _ => Err(SecretError::MissingEnv { name: name.clone() }),
            },
        }
    }

    /// Resolves a relative file path against `base`, the folder of the config
    /// file that named it.
    pub fn relative_to(self, base: &Path) -> Self {
        match self {
            Self::File(path) if path.is_relative() => Self::File(base.join(path)),
            other => other,
        }
    }
}

fn load_file(path: &Path) -> Result<Secret, SecretError> {
    let text = std::fs::read_to_string(path).map_err(|source| SecretError::Read {
        path: path.to_owned(),
        source,
    })?;
    warn_if_readable_by_others(path);

    let value = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text);
    if value.is_empty() {
        return Err(SecretError::EmptyFile {
            path: path.to_owned(),
        });
    }
    Ok(Secret(value.to_owned()))
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;

    if let Ok(metadata) = std::fs::metadata(path) {
        let mode = metadata.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                mode = format_args!("{:o}", mode & 0o777),
                "the secret file is readable by group or others; chmod 600 it"
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_debug_and_display_hide_value() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "***");
        assert_eq!(format!("{secret}"), "***");
    }

    #[test]
    fn secret_file_loses_one_line_ending() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("secret");
        std::fs::write(&path, "s3cret\n").expect("write secret");
        let secret = SecretSource::File(path).load().expect("load secret");
        assert_eq!(secret.expose(), "s3cret");
    }

    #[test]
    fn empty_secret_file_is_rejected() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("secret");
        std::fs::write(&path, "\n").expect("write secret");
        let error = SecretSource::File(path).load().expect_err("empty file");
        assert!(matches!(error, SecretError::EmptyFile { .. }), "{error}");
    }

    #[test]
    fn missing_env_names_variable() {
        let error = SecretSource::Env("GATEHOUSE_TEST_UNSET_VARIABLE".into())
            .load()
            .expect_err("unset variable");
        assert!(error.to_string().contains("GATEHOUSE_TEST_UNSET_VARIABLE"));
    }
}
