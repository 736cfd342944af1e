//! The `gatehouse` binary's config loader (`crates/cli/src/config.rs`) on config file text.
//!
//! The module is compiled here from its source, because the CLI is a binary
//! crate with no library to link.

#![no_main]

#[allow(dead_code, unreachable_pub)]
#[path = "../../crates/cli/src/config.rs"]
mod config;

/// Stands in for the CLI's `integrations` module, which needs most of the
/// binary. The `[integrations]` table is accepted unread, so this target
/// covers every other section of the file.
mod integrations {
    use std::path::Path;

    #[derive(Debug, Clone, Default)]
    pub(crate) struct IntegrationsConfig;

    pub(crate) fn parse(
        _value: Option<&toml::Value>,
        _base: &Path,
        _path: &Path,
    ) -> Result<IntegrationsConfig, crate::config::ConfigError> {
        Ok(IntegrationsConfig)
    }
}

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match config::from_toml(text, Path::new("/etc/gatehouse/gatehouse.toml")) {
        Ok(config) => {
            assert!(
                config.smtp.limits.max_recipients >= 100,
                "max_recipients {} below the RFC 5321 minimum",
                config.smtp.limits.max_recipients
            );
            assert!(
                config.data_dir.is_absolute(),
                "data_dir {} is not anchored at the config folder",
                config.data_dir.display()
            );
        }
        Err(err) => {
            let message = err.to_string();
            assert!(
                message.contains("/etc/gatehouse/gatehouse.toml"),
                "error does not name the file: {message}"
            );
        }
    }
});
