//! Link extraction from plain text and HTML, and URL normalisation.
//!
//! The first byte picks the entry point; the rest is the text.

#![no_main]

use gatehouse_message::links::{self, Link};
use gatehouse_message::{Limits, LinkSource};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (selector, rest) = gatehouse_fuzz::split_selector(data);
    let text = String::from_utf8_lossy(rest);
    let limits = Limits {
        max_links: 50,
        ..Limits::default()
    };

    let found = match selector % 3 {
        0 => links::extract_text_with(&text, "body", &limits),
        1 => links::extract_html_with(&text, "body", &limits),
        _ => match Link::new(&text, LinkSource::Text, "body") {
            Some(link) => {
                let mut all = links::unwrap_redirects(&link, &limits);
                assert!(
                    all.len() <= limits.max_redirect_depth,
                    "{} redirectors unwrapped, over the limit of {}",
                    all.len(),
                    limits.max_redirect_depth
                );
                all.push(link);
                all
            }
            None => Vec::new(),
        },
    };

    assert!(
        found.len() <= limits.max_links,
        "{} links kept, over the limit of {}",
        found.len(),
        limits.max_links
    );
    for link in &found {
        assert!(!link.host.is_empty(), "link {} has an empty host", link.url);
        assert!(
            !link.domain.is_empty(),
            "link {} has an empty domain",
            link.url
        );
        let again = Link::new(&link.url, link.source, &link.location);
        assert_eq!(
            again.as_ref().map(|link| (&link.url, &link.host)),
            Some((&link.url, &link.host)),
            "normalising {} again changes it",
            link.url
        );
    }
});
