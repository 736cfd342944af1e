//! The SMTP DATA reader: dot-unstuffing, the final dot, bare CR and LF, size.
//!
//! The first byte picks the size limit and how the input is split into reads.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (selector, stream) = gatehouse_fuzz::split_selector(data);
    gatehouse_fuzz::smtp::check_data(selector, stream);
});
