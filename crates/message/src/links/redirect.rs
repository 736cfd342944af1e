//! Redirector and link-rewriting URLs, and the targets they wrap.
//!
//! Attackers wrap a phishing URL in a redirector of a trusted domain, so that
//! the visible domain is google.com or outlook.com. Security gateways wrap
//! links too (Safe Links, Proofpoint), which hides the target from the next
//! scanner. Each form here is decoded from its documented or observed syntax.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use url::Url;

use super::host::registrable_domain;

/// Returns the URL that a redirector URL sends its visitor to, if it is one.
// TODO: in bodies, other open redirectors (YouTube `/redirect?q=`, LinkedIn
// `/slink`, `?url=` parameters on any host) are not unwrapped yet. Only
// `unwrap_all_redirects`, which QR payloads go through, applies `encoded_target`.
pub(crate) fn target(url: &Url) -> Option<String> {
    let host = url.host_str()?.trim_end_matches('.').to_ascii_lowercase();
    let domain = registrable_domain(&host);
    let path = url.path();

    if domain.starts_with("google.") {
        return google(url, path);
    }
    if domain == "bing.com" && path == "/ck/a" {
        return bing(url);
    }
    if host.ends_with(".safelinks.protection.outlook.com") {
        return query_param(url, "url");
    }
    if host == "urldefense.proofpoint.com" {
        return proofpoint_v1_v2(url, path);
    }
    if host == "urldefense.com" && path.starts_with("/v3/__") {
        return proofpoint_v3(url.as_str());
    }
    None
}

/// Returns a URL that any query or fragment parameter of `url` carries
/// encoded: percent-encoded (once or twice), base64 or base64url, padded or
/// not, or after Bing's `a1` prefix. Only an absolute `http` or `https` URL
/// counts, so ordinary values (ids, tokens, search terms) are left alone.
///
/// Open redirects on arbitrary hosts use this form (`/redirect?url=…`,
/// `/out?to=BASE64`), and phishing kits wrap the target in them.
pub(crate) fn encoded_target(url: &Url) -> Option<String> {
    let fragment_pairs = url
        .fragment()
        .map(|fragment| {
            url::form_urlencoded::parse(fragment.trim_start_matches(['!', '/', '?']).as_bytes())
                .map(|(key, value)| (key.into_owned(), value.into_owned()))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    url.query_pairs()
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .chain(fragment_pairs)
        .find_map(|(_, value)| decoded_url(&value))
}

/// Decodes a parameter value that contains an absolute web URL.
fn decoded_url(value: &str) -> Option<String> {
    let value = value.trim();
    let is_web_url = |text: &str| {
        let lower = text.get(..8).unwrap_or(text).to_ascii_lowercase();
        (lower.starts_with("http://") || lower.starts_with("https://"))
            && Url::parse(text).is_ok_and(|parsed| parsed.host_str().is_some())
    };
    if is_web_url(value) {
        return Some(value.to_owned());
    }
    // Query pairs are percent-decoded once already; a value encoded twice needs another pass.
    let once = percent_encoding::percent_decode_str(value)
        .decode_utf8()
        .ok()?
        .into_owned();
    if once != value && is_web_url(&once) {
        return Some(once);
    }
    let encoded = value
        .strip_prefix("a1")
        .filter(|rest| rest.len() >= 12)
        .unwrap_or(value);
    if encoded.len() < 12 {
        return None;
    }
    let text = encoded.trim_end_matches('=');
    let bytes = URL_SAFE_NO_PAD
        .decode(text)
        .or_else(|_| STANDARD_NO_PAD.decode(text))
        .ok()?;
    let decoded = String::from_utf8(bytes).ok()?;
    is_web_url(decoded.trim()).then(|| decoded.trim().to_owned())
}

fn query_param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
        .filter(|value| !value.is_empty())
}

/// `https://www.google.com/url?q=TARGET` and `https://www.google.com/amp/s/HOST/PATH`.
fn google(url: &Url, path: &str) -> Option<String> {
    if path == "/url" || path == "/imgres" {
        return query_param(url, "q")
            .or_else(|| query_param(url, "url"))
            .or_else(|| query_param(url, "imgrefurl"));
    }
    // AMP viewer URLs carry the target host and path after `/amp/s/` (https) or `/amp/` (http).
    let (scheme, rest) = if let Some(rest) = path.strip_prefix("/amp/s/") {
        ("https", rest)
    } else if let Some(rest) = path.strip_prefix("/amp/") {
        ("http", rest)
    } else {
        return None;
    };
    if rest.is_empty() {
        return None;
    }
    let mut target = format!("{scheme}://{rest}");
    if let Some(query) = url.query() {
        target.push('?');
        target.push_str(query);
    }
    Some(target)
}

/// `https://www.bing.com/ck/a?…&u=a1BASE64URL&ntb=1`: the target is base64url after `a1`.
fn bing(url: &Url) -> Option<String> {
    let value = query_param(url, "u")?;
    let encoded = value.strip_prefix("a1").unwrap_or(&value);
    let encoded = encoded.trim_end_matches('=');
    let bytes = URL_SAFE_NO_PAD.decode(encoded).ok()?;
    let target = String::from_utf8(bytes).ok()?;
    Some(target)
}

/// Proofpoint URL Defense v1 (`/v1/url?u=PERCENT-ENCODED`) and v2
/// (`/v2/url?u=https-3A__host_path&d=…`, where `-` stands for `%` and `_` for `/`).
fn proofpoint_v1_v2(url: &Url, path: &str) -> Option<String> {
    let value = query_param(url, "u")?;
    if path.starts_with("/v1/") {
        return Some(value);
    }
    if !path.starts_with("/v2/") {
        return None;
    }
    let translated: String = value
        .chars()
        .map(|c| match c {
            '-' => '%',
            '_' => '/',
            other => other,
        })
        .collect();
    let decoded = percent_encoding::percent_decode_str(&translated)
        .decode_utf8()
        .ok()?
        .into_owned();
    Some(decoded)
}

/// Proofpoint URL Defense v3: `https://urldefense.com/v3/__TARGET__;TOKEN!!…`.
///
/// Characters of the target that Proofpoint replaced are written `*`, and
/// their values are the base64url-decoded TOKEN, taken in order. `**X` takes
/// a run of several characters, its length given by X (`A` is 2, `B` 3, …).
fn proofpoint_v3(url: &str) -> Option<String> {
    let start = url.find("/v3/__")? + "/v3/__".len();
    let rest = &url[start..];
    let end = rest.find("__;").or_else(|| rest.rfind("__"))?;
    let embedded = &rest[..end];
    let after = rest.get(end + 3..).unwrap_or("");
    let token = after.split('!').next().unwrap_or("");

    let replacements: Vec<char> = if token.is_empty() {
        Vec::new()
    } else {
        let bytes = URL_SAFE_NO_PAD.decode(token.trim_end_matches('=')).ok()?;
        String::from_utf8(bytes).ok()?.chars().collect()
    };

    const RUN_LENGTHS: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut next = replacements.into_iter();
    let mut target = String::with_capacity(embedded.len());
    let mut chars = embedded.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '*' {
            target.push(c);
            continue;
        }
        if chars.peek() == Some(&'*') {
            chars.next();
            let length = chars
                .next()
                .and_then(|code| RUN_LENGTHS.find(code))
                .map_or(0, |index| index + 2);
            target.extend(next.by_ref().take(length));
        } else if let Some(replacement) = next.next() {
            target.push(replacement);
        }
    }
    Some(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unwrap(url: &str) -> Option<String> {
        target(&Url::parse(url).ok()?)
    }

    #[test]
    fn unwraps_known_redirectors() {
        let cases = [
            (
                "https://www.google.com/url?sa=t&q=https%3A%2F%2Fevil.example%2Flogin&usg=x",
                "https://evil.example/login",
            ),
            (
                "https://www.google.co.uk/url?url=https://evil.example/",
                "https://evil.example/",
            ),
            (
                "https://www.google.com/amp/s/evil.example/path",
                "https://evil.example/path",
            ),
            (
                "https://www.bing.com/ck/a?!&&p=abc&u=a1aHR0cHM6Ly9ldmlsLmV4YW1wbGUvbG9naW4&ntb=1",
                "https://evil.example/login",
            ),
            (
                "https://nam12.safelinks.protection.outlook.com/?url=https%3A%2F%2Fevil.example%2F&data=05",
                "https://evil.example/",
            ),
            (
                "https://urldefense.proofpoint.com/v2/url?u=https-3A__evil.example_login-3Fa-3D1&d=DwMF&c=x",
                "https://evil.example/login?a=1",
            ),
            (
                "https://urldefense.com/v3/__https://evil.example/login?a=1*b__;Jg!!abc",
                "https://evil.example/login?a=1&b",
            ),
        ];
        for (wrapped, expected) in cases {
            assert_eq!(unwrap(wrapped).as_deref(), Some(expected), "url {wrapped}");
        }
    }

    #[test]
    fn encoded_targets_on_any_host() {
        let base64 = "aHR0cHM6Ly9ldmlsLmV4YW1wbGUvbG9naW4/YT0x";
        let cases = [
            (
                "https://t.example/r?url=https%3A%2F%2Fevil.example%2Flogin",
                "https://evil.example/login",
            ),
            (
                "https://t.example/r?u=https%253A%252F%252Fevil.example%252F",
                "https://evil.example/",
            ),
            (
                &format!("https://t.example/out?to={base64}") as &str,
                "https://evil.example/login?a=1",
            ),
            (
                "https://t.example/out?to=aHR0cHM6Ly9ldmlsLmV4YW1wbGUvbG9naW4_YT0x",
                "https://evil.example/login?a=1",
            ),
            (
                "https://t.example/#!/go?next=https://evil.example/",
                "https://evil.example/",
            ),
        ];
        for (wrapped, expected) in cases {
            let parsed = Url::parse(wrapped).expect("valid URL");
            assert_eq!(
                encoded_target(&parsed).as_deref(),
                Some(expected),
                "url {wrapped}"
            );
        }
    }

    #[test]
    fn plain_parameters_are_not_targets() {
        for url in [
            "https://shop.example/item?id=12345&q=shoes",
            "https://shop.example/?token=dGhpcyBpcyBub3QgYSB1cmw",
            "https://shop.example/?ref=mail.example.com",
        ] {
            let parsed = Url::parse(url).expect("valid URL");
            assert_eq!(encoded_target(&parsed), None, "url {url}");
        }
    }

    #[test]
    fn ordinary_urls_are_not_redirectors() {
        for url in [
            "https://www.google.com/search?q=x",
            "https://example.com/url?q=https://a.example",
        ] {
            assert_eq!(unwrap(url), None, "url {url}");
        }
    }
}
