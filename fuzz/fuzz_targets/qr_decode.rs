//! `gatehouse_qr::decode_with_report` on encoded image bytes, within the default limits.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: gatehouse_fuzz::tolerate_caught_panics(),
    |data: &[u8]| {
        let limits = gatehouse_qr::Limits::default();
        if let Ok(decoded) = gatehouse_qr::decode_with_report(data, &limits) {
            assert!(
                u64::from(decoded.width) * u64::from(decoded.height) <= limits.max_pixels,
                "decoded an image of {}x{} pixels, over the limit of {}",
                decoded.width,
                decoded.height,
                limits.max_pixels
            );
            assert!(
                decoded.attempts.len() <= limits.max_attempts as usize,
                "{} passes run, over the limit of {}",
                decoded.attempts.len(),
                limits.max_attempts
            );
            assert!(
                decoded.codes.len() <= limits.max_symbols,
                "{} symbols returned, over the limit of {}",
                decoded.codes.len(),
                limits.max_symbols
            );
        }
    }
);
