//! Prints the parse of each message file given, with its links, as JSON.
//!
//! `cargo run -p gatehouse-message --example dump -- FILE.eml...`

#![allow(clippy::print_stdout, clippy::print_stderr)]

use gatehouse_message::links::{self, Link};
use gatehouse_message::{BodyKind, Limits, parse};

fn main() {
    let limits = Limits::default();
    for path in std::env::args().skip(1) {
        let raw = match std::fs::read(&path) {
            Ok(raw) => raw,
            Err(err) => {
                eprintln!("cannot read {path}: {err}");
                continue;
            }
        };
        let message = parse(&raw, &limits);
        let mut found: Vec<Link> = Vec::new();
        for body in &message.bodies {
            found.extend(match body.kind {
                BodyKind::Plain => links::extract_text_with(&body.text, &body.location, &limits),
                BodyKind::Html => links::extract_html_with(&body.text, &body.location, &limits),
            });
        }
        let output = serde_json::json!({
            "file": path,
            "message": message,
            "links": found,
        });
        match serde_json::to_string_pretty(&output) {
            Ok(text) => println!("{text}"),
            Err(err) => eprintln!("cannot render {path}: {err}"),
        }
    }
}
