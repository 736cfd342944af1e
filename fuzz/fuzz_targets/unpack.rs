//! `gatehouse_unpack::unpack` on one attachment, within the default limits.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = gatehouse_unpack::Limits::default();
    let artifact = gatehouse_unpack::unpack("attachment", data, &limits);

    let mut depth_ok = true;
    let mut stack = vec![(&artifact, 0usize)];
    while let Some((node, depth)) = stack.pop() {
        depth_ok &= depth <= limits.max_depth + 1;
        assert!(
            node.urls.len() <= limits.max_urls,
            "{} URLs kept, over the limit of {}",
            node.urls.len(),
            limits.max_urls
        );
        assert!(
            node.text.chars().count() <= limits.max_text_chars,
            "text of {} characters kept, over the limit of {}",
            node.text.chars().count(),
            limits.max_text_chars
        );
        stack.extend(node.children.iter().map(|child| (child, depth + 1)));
    }
    assert!(depth_ok, "artifact tree deeper than max_depth + 1");
    assert_eq!(artifact.size, data.len() as u64, "size of the top artifact");
});
