//! Shared harness code for the fuzz targets in `fuzz_targets/`.
//!
//! Each target feeds libFuzzer's bytes to one entry point that reads hostile
//! input and then checks the properties that entry point documents, so a
//! target fails on a wrong answer as well as on a panic, a timeout or an
//! allocation over libFuzzer's `-rss_limit_mb`. The drivers for the
//! protocol cores (`smtp`, `milter`) play the I/O loop of the real front
//! around the sans-I/O session, because a session alone never sees the
//! byte stream a client sends.

pub mod engine;
pub mod milter;
pub mod smtp;

use std::sync::Once;

/// Installs a panic hook that prints the panic and returns instead of
/// aborting the process.
///
/// libfuzzer-sys installs a hook that aborts on every panic, even one that the
/// code under test catches. `gatehouse_qr` catches panics of the image decoders
/// and of rxing on purpose and reports them as `QrError::DecoderPanic`, which
/// the engine turns into an `attachment.unscannable` finding, so the targets
/// that reach it use this hook. A panic that escapes the entry point still
/// fails the run: libfuzzer-sys aborts after `catch_unwind` around the target.
pub fn tolerate_caught_panics() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            eprintln!("panic (caught unless the run aborts next): {info}");
        }));
    });
}

/// Splits fuzz input into a selector byte and the rest.
pub fn split_selector(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((&selector, rest)) => (selector, rest),
        None => (0, data),
    }
}
