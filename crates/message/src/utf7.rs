//! UTF-7 (RFC 2152), which encoding_rs does not implement and old Outlook
//! versions and some spam tools still write.

/// Decodes UTF-7 bytes. The flag is set when malformed input was replaced with U+FFFD.
pub(crate) fn decode(bytes: &[u8]) -> (String, bool) {
    let mut text = String::with_capacity(bytes.len());
    let mut malformed = false;
    let mut index = 0;

    while index < bytes.len() {
        let byte = bytes[index];
        if byte != b'+' {
            if byte.is_ascii() {
                text.push(char::from(byte));
            } else {
                text.push(char::REPLACEMENT_CHARACTER);
                malformed = true;
            }
            index += 1;
            continue;
        }

        // `+-` is a literal plus sign.
        index += 1;
        if bytes.get(index) == Some(&b'-') {
            text.push('+');
            index += 1;
            continue;
        }

        // A shifted run: modified base64 of UTF-16BE code units, without padding,
        // ending at the first byte outside the alphabet; a `-` there is absorbed.
        let mut units = Vec::new();
        let mut bits: u32 = 0;
        let mut bit_count = 0;
        while let Some(value) = bytes.get(index).and_then(|&byte| base64_value(byte)) {
            bits = (bits << 6) | u32::from(value);
            bit_count += 6;
            if bit_count >= 16 {
                bit_count -= 16;
                units.push(((bits >> bit_count) & 0xFFFF) as u16);
            }
            index += 1;
        }
        // Leftover bits must be fewer than six and all zero.
        if bit_count >= 6 || bits & ((1 << bit_count) - 1) != 0 {
            malformed = true;
        }
        if bytes.get(index) == Some(&b'-') {
            index += 1;
        }
        for decoded in char::decode_utf16(units.iter().copied()) {
            match decoded {
                Ok(c) => text.push(c),
                Err(_) => {
                    text.push(char::REPLACEMENT_CHARACTER);
                    malformed = true;
                }
            }
        }
    }
    (text, malformed)
}

fn base64_value(byte: u8) -> Option<u8> {
    match byte {
        b'A'..=b'Z' => Some(byte - b'A'),
        b'a'..=b'z' => Some(byte - b'a' + 26),
        b'0'..=b'9' => Some(byte - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn rfc2152_examples() {
        let cases: [(&[u8], &str); 5] = [
            (b"A+ImIDkQ.", "A\u{2262}\u{391}."),
            (b"Hi Mom -+Jjo--!", "Hi Mom -\u{263A}-!"),
            (b"+ZeVnLIqe-", "日本語"),
            (b"1 +- 1 = 2", "1 + 1 = 2"),
            (b"+2D3eAA-", "\u{1F600}"),
        ];
        for (input, expected) in cases {
            let (text, malformed) = decode(input);
            assert_eq!(text, expected, "input {:?}", String::from_utf8_lossy(input));
            assert!(!malformed, "input {:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn lone_surrogate_is_malformed() {
        let (text, malformed) = decode(b"+2D0-");
        assert_eq!(text, "\u{FFFD}");
        assert!(malformed);
    }
}
