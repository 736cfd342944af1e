//! Content-Transfer-Encoding decoders that return what they can read from
//! damaged base64 and quoted-printable instead of an error, because a scanner
//! that gives up on a damaged body is what an attacker wants.

/// Decodes a base64 MIME body line by line. The data ends at padding or at
/// the first line with a character outside the alphabet, such as a footer
/// that a mailing list appended after the encoded data.
pub(crate) fn base64_body(input: &[u8]) -> Vec<u8> {
    let mut end = input.len();
    let mut seen_data = false;
    let mut position = 0;
    while position < input.len() {
        let line_end = memchr::memchr(b'\n', &input[position..])
            .map_or(input.len(), |offset| position + offset + 1);
        let line = input[position..line_end].trim_ascii();
        let clean = line
            .iter()
            .all(|&byte| byte.is_ascii_alphanumeric() || matches!(byte, b'+' | b'/' | b'='));
        if !line.is_empty() {
            if !clean && seen_data {
                end = position;
                break;
            }
            seen_data |= clean;
        }
        position = line_end;
    }
    base64(&input[..end])
}

/// Decodes base64 in either alphabet, skipping every byte outside them and stopping at padding.
pub(crate) fn base64(input: &[u8]) -> Vec<u8> {
    let mut output = Vec::with_capacity(input.len() / 4 * 3 + 3);
    let mut chunk: u32 = 0;
    let mut count = 0;
    for &byte in input {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' if count >= 2 => break,
            _ => continue,
        };
        chunk = chunk << 6 | u32::from(value);
        count += 1;
        if count == 4 {
            output.extend_from_slice(&[(chunk >> 16) as u8, (chunk >> 8) as u8, chunk as u8]);
            chunk = 0;
            count = 0;
        }
    }
    match count {
        2 => output.push((chunk >> 4) as u8),
        3 => output.extend_from_slice(&[(chunk >> 10) as u8, (chunk >> 2) as u8]),
        _ => {}
    }
    output
}

/// Decodes quoted-printable; an `=` that starts no escape or soft line break is kept.
pub(crate) fn quoted_printable(input: &[u8]) -> Vec<u8> {
    let mut output = Vec::with_capacity(input.len());
    let mut index = 0;
    while index < input.len() {
        let byte = input[index];
        if byte != b'=' {
            output.push(byte);
            index += 1;
            continue;
        }
        let rest = &input[index + 1..];
        if let [high, low, ..] = rest
            && let (Some(high), Some(low)) = (hex(*high), hex(*low))
        {
            output.push(high << 4 | low);
            index += 3;
            continue;
        }
        // A soft line break: `=`, optional trailing whitespace, then the line end.
        let spaces = rest
            .iter()
            .take_while(|&&b| b == b' ' || b == b'\t')
            .count();
        match &rest[spaces..] {
            [b'\r', b'\n', ..] => index += 1 + spaces + 2,
            [b'\n', ..] => index += 1 + spaces + 1,
            [] => index += 1 + spaces,
            _ => {
                output.push(b'=');
                index += 1;
            }
        }
    }
    output
}

fn hex(byte: u8) -> Option<u8> {
    crate::decode::rfc2047::hex_value(byte)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_skips_line_breaks_and_junk() {
        assert_eq!(base64(b"aGVs\r\nbG8g\r\nd29y*bGQ="), b"hello world");
        assert_eq!(base64(b"aGk"), b"hi");
    }

    #[test]
    fn base64_body_stops_at_appended_footer() {
        let body = b"aGVsbG8gd29y\r\nbGQh\r\n\r\n___\r\nSLAT-talk mailing list\r\n";
        assert_eq!(base64_body(body), b"hello world!");
    }

    #[test]
    fn quoted_printable_soft_breaks_and_bad_escapes() {
        assert_eq!(
            quoted_printable(b"caf=C3=A9 =\r\nau lait"),
            "café au lait".as_bytes()
        );
        assert_eq!(quoted_printable(b"a=ZZb=\nc"), b"a=ZZbc");
        assert_eq!(quoted_printable(b"end="), b"end");
    }
}
