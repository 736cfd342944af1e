//! `gatehouse_message::parse` on raw message bytes, within the default limits.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = gatehouse_message::Limits::default();
    let message = gatehouse_message::parse(data, &limits);

    assert!(
        message.parts.len() <= limits.max_parts + limits.max_data_uris,
        "{} parts over the limits of {} parts and {} data URIs",
        message.parts.len(),
        limits.max_parts,
        limits.max_data_uris
    );
    serde_json::to_string(&message).expect("a parsed message serialises to JSON");
});
