//! Damaged input: every fixture truncated at many points and with bytes
//! overwritten must still parse, and its links extract, without a panic.

mod common;

use std::path::Path;

use common::{files_under, links_of, parse};

/// Bytes that steer a MIME parser: line ends, delimiters, quotes, encoded-word marks.
const STRUCTURAL: &[u8] = b"\r\n-=?\";:<>\\\x1b\xff\x00";

/// A small deterministic generator, so that a failure can be reproduced.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

fn fixtures() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    files_under(&dir, &[".eml"])
        .into_iter()
        .filter_map(|path| std::fs::read(path).ok())
        .collect()
}

#[test]
fn truncated_fixtures_parse() {
    for raw in fixtures() {
        for step in 0..=64 {
            let end = raw.len() * step / 64;
            let message = parse(&raw[..end]);
            let _ = links_of(&message);
        }
    }
}

#[test]
fn mutated_fixtures_parse() {
    let mut random = Lcg(0x5eed);
    for raw in fixtures() {
        for _ in 0..300 {
            let mut mutated = raw.clone();
            for _ in 0..8 {
                let position = random.next() as usize % mutated.len().max(1);
                let byte = STRUCTURAL[random.next() as usize % STRUCTURAL.len()];
                if let Some(slot) = mutated.get_mut(position) {
                    *slot = byte;
                }
            }
            let message = parse(&mutated);
            let _ = links_of(&message);
        }
    }
}
