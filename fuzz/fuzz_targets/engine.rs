//! `Engine::analyse`: the whole pipeline from raw message bytes to a verdict,
//! on an empty graph with the default policy and limits.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: gatehouse_fuzz::tolerate_caught_panics(),
    |data: &[u8]| {
        let engine = gatehouse_fuzz::engine::engine();
        let envelope = gatehouse_fuzz::engine::envelope();
        let analysis = engine.analyse(&envelope, data, gatehouse_fuzz::engine::when());
        gatehouse_fuzz::engine::check_verdict(&analysis.verdict);
    }
);
