//! HTML character references in attribute values and text.
//!
//! lol_html hands over attribute values and text as written, with references
//! undecoded. Phishing mail writes URLs as `&#104;ttps&#58;//…` to slip past
//! filters that match the raw bytes, so they are decoded before parsing.

use std::borrow::Cow;

/// Named references that appear in URLs and link text; HTML defines over
/// two thousand, which rarely matter for a URL.
const NAMED: [(&str, char); 18] = [
    ("amp", '&'),
    ("lt", '<'),
    ("gt", '>'),
    ("quot", '"'),
    ("apos", '\''),
    ("nbsp", '\u{A0}'),
    ("colon", ':'),
    ("sol", '/'),
    ("period", '.'),
    ("commat", '@'),
    ("num", '#'),
    ("percnt", '%'),
    ("quest", '?'),
    ("equals", '='),
    ("lowbar", '_'),
    ("hyphen", '-'),
    ("dash", '-'),
    ("Tab", '\t'),
];

/// Decodes numeric (`&#58;`, `&#x3A;`) and common named references; others are kept.
pub(crate) fn decode(text: &str) -> Cow<'_, str> {
    if !text.contains('&') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(position) = rest.find('&') {
        out.push_str(&rest[..position]);
        rest = &rest[position..];
        match reference(rest) {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Reads one reference at the start of `text` (which starts with `&`):
/// the character and the bytes consumed. The `;` is optional, as browsers allow.
fn reference(text: &str) -> Option<(char, usize)> {
    let body = &text[1..];
    if let Some(numeric) = body.strip_prefix('#') {
        let (digits, radix, prefix_len) = match numeric.strip_prefix(['x', 'X']) {
            Some(hex) => (hex, 16, 2),
            None => (numeric, 10, 1),
        };
        let len = digits
            .bytes()
            .take_while(|byte| byte.is_ascii_alphanumeric() && (*byte as char).is_digit(radix))
            .count();
        if len == 0 || len > 8 {
            return None;
        }
        let value = u32::from_str_radix(&digits[..len], radix).ok()?;
        let c = char::from_u32(value).unwrap_or(char::REPLACEMENT_CHARACTER);
        let semicolon = usize::from(digits[len..].starts_with(';'));
        return Some((c, 1 + prefix_len + len + semicolon));
    }
    let name_len = body.bytes().take_while(u8::is_ascii_alphanumeric).count();
    let name = &body[..name_len];
    let (_, c) = NAMED.iter().find(|(known, _)| *known == name)?;
    let semicolon = usize::from(body[name_len..].starts_with(';'));
    Some((*c, 1 + name_len + semicolon))
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn decodes_references() {
        let cases = [
            (
                "&#104;ttps&#58;//a.example/?x=1&amp;y=2",
                "https://a.example/?x=1&y=2",
            ),
            ("&#x68;&#X74;tp", "http"),
            ("a &unknown; b & c", "a &unknown; b & c"),
            ("&lt;b&gt", "<b>"),
        ];
        for (input, expected) in cases {
            assert_eq!(decode(input), expected, "input {input}");
        }
    }
}
