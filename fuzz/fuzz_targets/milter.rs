//! The milter front's packet decoder and session, driven as the front's read loop drives them.
//!
//! The first byte picks the size of each read and the decision on each
//! message; the rest is what the MTA sends.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (selector, stream) = gatehouse_fuzz::split_selector(data);
    gatehouse_fuzz::milter::run(selector, stream);
});
