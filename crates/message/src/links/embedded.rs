//! Email addresses carried inside URLs.
//!
//! Phishing kits put the recipient's address into the link so that the fake
//! login page greets the victim by name, often encoded to hide it from
//! filters: percent-encoded, base64 or unpadded base64url, alone or inside a
//! longer encoded value such as `email=victim@example.com&id=7`.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};

/// Shortest base64 text searched for; shorter pieces match too much by chance.
const MIN_ENCODED_LEN: usize = 8;

/// The encoding of an email address inside a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AddressEncoding {
    /// As written, `…?u=victim@example.com`.
    Plain,
    /// Percent-encoded, `victim%40example.com` (also encoded twice).
    PercentEncoded,
    /// Base64 with the standard alphabet, with or without padding.
    Base64,
    /// Base64 with the URL-safe alphabet (`-` and `_`), usually unpadded. Reported
    /// when the encoded address or the base64 text around it uses `-` or `_`.
    Base64Url,
}

/// Checks whether `url` carries `address`, and returns how it was encoded.
///
/// The address is compared without regard to case when it appears as text.
/// For base64 the address is searched at each of the three byte alignments
/// it can have inside a longer encoded value, in its given and lower-case spelling.
pub fn find_embedded_address(url: &str, address: &str) -> Option<AddressEncoding> {
    let address = address.trim();
    if address.is_empty() {
        return None;
    }
    let lower_url = url.to_lowercase();
    let lower_address = address.to_lowercase();
    if lower_url.contains(&lower_address) {
        return Some(AddressEncoding::Plain);
    }

    let once = percent_decode(url);
    let twice = percent_decode(&once);
    if once.to_lowercase().contains(&lower_address) || twice.to_lowercase().contains(&lower_address)
    {
        return Some(AddressEncoding::PercentEncoded);
    }

    let spellings = if address == lower_address {
        vec![address.to_owned()]
    } else {
        vec![address.to_owned(), lower_address]
    };
    let haystacks = [url, once.as_str(), twice.as_str()];
    for spelling in &spellings {
        for (needle_standard, needle_url_safe) in aligned_encodings(spelling.as_bytes()) {
            for haystack in haystacks {
                if let Some(position) = haystack.find(&needle_url_safe) {
                    // Most addresses encode to text that is the same in both
                    // alphabets, so the surrounding run shows which one was used.
                    let url_safe = needle_url_safe != needle_standard
                        || run_around(haystack, position).contains(['-', '_']);
                    return Some(if url_safe {
                        AddressEncoding::Base64Url
                    } else {
                        AddressEncoding::Base64
                    });
                }
                if haystack.contains(&needle_standard) {
                    return Some(AddressEncoding::Base64);
                }
            }
        }
    }
    None
}

/// Returns the run of base64 characters (either alphabet) around a byte position.
fn run_around(text: &str, position: usize) -> &str {
    let is_base64 = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '-' | '_' | '=');
    let start = text[..position]
        .rfind(|c: char| !is_base64(c))
        .map_or(0, |found| found + 1);
    let end = text[position..]
        .find(|c: char| !is_base64(c))
        .map_or(text.len(), |found| position + found);
    &text[start..end]
}

/// Returns the base64 text that encodes `bytes` whatever precedes them in a
/// longer value: for each alignment, the whole 3-byte groups inside `bytes`.
fn aligned_encodings(bytes: &[u8]) -> Vec<(String, String)> {
    let mut encodings = Vec::new();
    for skip in 0..3 {
        let Some(rest) = bytes.get(skip..) else {
            break;
        };
        let whole = rest.len() / 3 * 3;
        if whole == 0 {
            continue;
        }
        let standard = STANDARD.encode(&rest[..whole]);
        if standard.len() < MIN_ENCODED_LEN {
            continue;
        }
        let url_safe = URL_SAFE_NO_PAD.encode(&rest[..whole]);
        encodings.push((standard, url_safe));
    }
    encodings
}

fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADDRESS: &str = "victim@example.com";

    #[test]
    fn finds_each_encoding() {
        let standard = STANDARD.encode(format!("id=7&email={ADDRESS}"));
        let url_safe = URL_SAFE_NO_PAD.encode(format!("\u{3fb}{ADDRESS}?"));
        let cases = [
            (
                format!("https://x.example/?u={ADDRESS}"),
                AddressEncoding::Plain,
            ),
            (
                "https://x.example/#VICTIM@Example.com".to_owned(),
                AddressEncoding::Plain,
            ),
            (
                "https://x.example/?u=victim%40example.com".to_owned(),
                AddressEncoding::PercentEncoded,
            ),
            (
                "https://x.example/?u=victim%2540example.com".to_owned(),
                AddressEncoding::PercentEncoded,
            ),
            (
                format!("https://x.example/?t={standard}"),
                AddressEncoding::Base64,
            ),
            (
                format!("https://x.example/p/{url_safe}"),
                AddressEncoding::Base64Url,
            ),
        ];
        for (url, expected) in cases {
            assert_eq!(
                find_embedded_address(&url, ADDRESS),
                Some(expected),
                "url {url}"
            );
        }
    }

    #[test]
    fn url_safe_alphabet_in_the_address_itself() {
        let address = "victim~1@example.com";
        let encoded = URL_SAFE_NO_PAD.encode(format!("xy{address}"));
        let url = format!("https://x.example/?t={encoded}");
        assert_eq!(
            find_embedded_address(&url, address),
            Some(AddressEncoding::Base64Url)
        );
    }

    #[test]
    fn absent_address_is_none() {
        let url = "https://x.example/?u=someone@example.com&t=dGVzdA";
        assert_eq!(find_embedded_address(url, ADDRESS), None);
    }
}
