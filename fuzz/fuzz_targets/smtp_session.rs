//! The SMTP proxy's command framing, session state machine and DATA reader,
//! driven as the proxy's connection loop drives them.
//!
//! The first byte picks the size of each socket read; the rest is what the client sends.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (selector, stream) = gatehouse_fuzz::split_selector(data);
    gatehouse_fuzz::smtp::run_session(selector, stream);
});
