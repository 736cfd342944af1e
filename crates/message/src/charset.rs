//! Charset labels as mail writes them, decoding over encoding_rs, and the check
//! that a declared charset matches the bytes.
//!
//! encoding_rs implements the WHATWG Encoding Standard, which already maps most
//! labels mail uses (`ks_c_5601-1987` to EUC-KR, `iso-8859-1` to windows-1252).
//! Mail adds labels the standard lacks, GB2312 text that uses GBK-only
//! characters, and UTF-7, which encoding_rs does not implement.

use std::borrow::Cow;

use chardetng::{EncodingDetector, Iso2022JpDetection, Utf8Detection};
use encoding_rs::{BIG5, EUC_KR, Encoding, GB18030, UTF_8, UTF_16BE, UTF_16LE};

use crate::utf7;

/// Maximum number of bytes fed to the charset detector, counted from the first
/// non-ASCII byte. Its guess settles within a few kilobytes of text, and the
/// detector costs about as much per byte as the rest of the parse together.
const MAX_SNIFF_BYTES: usize = 8 * 1024;

/// Minimum number of non-ASCII bytes before a declared single-byte charset is
/// second-guessed: a few accented letters are too little evidence.
// NOTE: this and the two percentages below were chosen by reading the
// findings on the 1,691 messages of the shared corpus, not measured against
// a labelled set, so some mislabelled bodies still pass unreported.
const MIN_HIGH_BYTES_FOR_MISMATCH: usize = 8;

/// Minimum share of non-ASCII bytes, in percent of the non-space bytes, before
/// one single-byte charset is taken for another. English text with a few stray
/// bytes gives the detector too little to tell windows-1252 from windows-1251.
const MIN_HIGH_BYTE_PERCENT_SINGLE_BYTE: usize = 20;

/// Minimum share of non-ASCII bytes that stand next to another one, in
/// percent, before the detector second-guesses a single-byte label.
const MIN_PAIRED_HIGH_BYTE_PERCENT: usize = 50;

/// A charset that Gatehouse can decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Charset {
    Encoding(&'static Encoding),
    Utf7,
}

impl Charset {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Charset::Encoding(encoding) => encoding.name(),
            Charset::Utf7 => "UTF-7",
        }
    }

    /// Decodes bytes, replacing malformed sequences with U+FFFD. The flag is set when any were replaced.
    pub(crate) fn decode(self, bytes: &[u8]) -> (Cow<'_, str>, bool) {
        match self {
            Charset::Encoding(encoding) if encoding == encoding_rs::ISO_2022_JP => {
                let collapsed = collapse_iso_2022_jp_escapes(bytes);
                let (text, malformed) = encoding.decode_without_bom_handling(&collapsed);
                (Cow::Owned(text.into_owned()), malformed)
            }
            Charset::Encoding(encoding) => encoding.decode_without_bom_handling(bytes),
            Charset::Utf7 => {
                let (text, malformed) = utf7::decode(bytes);
                (Cow::Owned(text), malformed)
            }
        }
    }

    /// Returns whether ASCII bytes mean ASCII characters in this charset, so
    /// that all-ASCII input cannot be mislabelled.
    fn is_ascii_compatible(self) -> bool {
        match self {
            Charset::Encoding(encoding) => {
                encoding.is_ascii_compatible() && encoding != encoding_rs::ISO_2022_JP
            }
            Charset::Utf7 => false,
        }
    }

    fn is_single_byte(self) -> bool {
        match self {
            Charset::Encoding(encoding) => encoding.is_single_byte(),
            Charset::Utf7 => false,
        }
    }
}

/// Drops an ISO-2022-JP escape sequence that another one follows at once.
///
/// Joining encoded-words or RFC 2231 sections puts one word's closing
/// `ESC ( B` right before the next word's `ESC $ B`. The WHATWG decoder that
/// encoding_rs implements treats such back-to-back escapes as an error,
/// although the text is unambiguous and mail clients display it.
fn collapse_iso_2022_jp_escapes(bytes: &[u8]) -> Cow<'_, [u8]> {
    const ESC: u8 = 0x1B;
    const ESCAPE_LEN: usize = 3;
    if !bytes
        .windows(ESCAPE_LEN + 1)
        .any(|w| w[0] == ESC && w[ESCAPE_LEN] == ESC)
    {
        return Cow::Borrowed(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let redundant = bytes[index] == ESC && bytes.get(index + ESCAPE_LEN) == Some(&ESC);
        if redundant {
            index += ESCAPE_LEN;
            continue;
        }
        out.push(bytes[index]);
        index += 1;
    }
    Cow::Owned(out)
}

/// Looks up a charset label as found in MIME headers and encoded-words.
///
/// Returns `None` for labels that name no charset (`default`, `unknown-8bit`)
/// or one that cannot be decoded (`iso-2022-kr`, which the WHATWG standard maps
/// to its replacement decoder).
pub(crate) fn lookup(label: &str) -> Option<Charset> {
    // Broken mailers leave junk around the label (`=utf-8`, `utf-8 <div …`).
    let label = label
        .trim()
        .trim_start_matches(['"', '\'', '='])
        .split(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ';' | '<' | ','))
        .next()
        .unwrap_or_default();
    let lower = label.to_ascii_lowercase();
    let lower = lower.as_str();

    // GB2312 labels are decoded as GB18030, a superset: real GB2312 mail uses
    // GBK-only characters, and a strict GB2312 decoder garbles them.
    match lower {
        "gb2312" | "gb_2312-80" | "gb_2312" | "csgb2312" | "euc-cn" | "x-euc-cn" | "gbk"
        | "x-gbk" | "cp936" | "ms936" | "windows-936" | "chinese" | "gb2312_charset"
        | "gb18030" | "iso-ir-58" => return Some(Charset::Encoding(GB18030)),
        "utf-7" | "utf7" | "unicode-1-1-utf-7" | "csunicode11utf7" | "x-unicode20utf7" => {
            return Some(Charset::Utf7);
        }
        "chinesebig5" | "big5-hkscs" | "cp950" | "x-x-big5" | "ms950" => {
            return Some(Charset::Encoding(BIG5));
        }
        "ks_c_5601-1987" | "ks_c_5601" | "ks_c_5601-1989" | "cp949" | "uhc" | "ms949" => {
            return Some(Charset::Encoding(EUC_KR));
        }
        "unicode" | "ucs-2" | "utf-16" => return Some(Charset::Encoding(UTF_16LE)),
        "utf8" | "utf-8" | "unicode-1-1-utf-8" => return Some(Charset::Encoding(UTF_8)),
        "ansi-x3.4-1968" | "ansi_x3.4-1968" | "ascii" | "us-ascii" | "iso646-us" | "646" => {
            return Some(Charset::Encoding(encoding_rs::WINDOWS_1252));
        }
        _ => {}
    }

    if let Some(found) = standard_label(lower) {
        return Some(found);
    }

    // Labels mailers write that differ from a standard one by a prefix or a
    // separator: `x-cp1251`, `cp-1251`, `win-1251`, `iso8859_5`.
    let stripped = lower
        .strip_prefix("x-")
        .or_else(|| lower.strip_suffix("_charset"))
        .unwrap_or(lower);
    let respelled = stripped
        .replace("win-", "windows-")
        .replace("cp-", "cp")
        .replace('_', "-");
    if respelled != lower
        && let Some(found) = standard_label(&respelled)
    {
        return Some(found);
    }
    if let Some(number) = respelled.strip_prefix("iso8859-") {
        return standard_label(&format!("iso-8859-{number}"));
    }
    None
}

fn standard_label(label: &str) -> Option<Charset> {
    let encoding = Encoding::for_label_no_replacement(label.as_bytes())?;
    // The WHATWG standard reads every GBK label with the GB18030 decoder anyway.
    if encoding == encoding_rs::GBK {
        return Some(Charset::Encoding(GB18030));
    }
    Some(Charset::Encoding(encoding))
}

/// Guesses the charset of bytes that carry no usable label.
pub(crate) fn sniff(bytes: &[u8]) -> &'static Encoding {
    if std::str::from_utf8(bytes).is_ok() {
        return UTF_8;
    }
    if let Some(encoding) = utf16_by_bom(bytes) {
        return encoding;
    }
    let mut detector = EncodingDetector::new(Iso2022JpDetection::Allow);
    // ASCII before the first non-ASCII byte gives the detector no evidence.
    let first_high = bytes.iter().position(|&byte| byte >= 0x80).unwrap_or(0);
    let start = first_high.saturating_sub(64);
    let sample = &bytes[start..bytes.len().min(start + MAX_SNIFF_BYTES)];
    detector.feed(sample, true);
    let guess = detector.guess(None, Utf8Detection::Allow);
    if guess == encoding_rs::GBK {
        GB18030
    } else {
        guess
    }
}

fn utf16_by_bom(bytes: &[u8]) -> Option<&'static Encoding> {
    match bytes {
        [0xFF, 0xFE, ..] => Some(UTF_16LE),
        [0xFE, 0xFF, ..] => Some(UTF_16BE),
        _ => None,
    }
}

/// Decodes bytes of unknown charset: UTF-8 when valid, otherwise the detector's guess.
pub(crate) fn decode_unlabelled(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => sniff(bytes)
            .decode_without_bom_handling(bytes)
            .0
            .into_owned(),
    }
}

/// Text decoded under a declared charset, with what was wrong with the label.
#[derive(Debug)]
pub(crate) struct Decoded {
    pub(crate) text: String,
    /// Set when the label was unknown or did not match the bytes.
    pub(crate) problem: Option<LabelProblem>,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum LabelProblem {
    /// The label names no charset that Gatehouse can decode, so the bytes were decoded by guess.
    Unknown { label: String, used: &'static str },
    /// The bytes are not valid in the declared charset, or are far more likely another one.
    Mismatch { detail: String },
}

/// Decodes bytes under a declared charset label and checks that the label matches the bytes.
///
/// A body or header with no label is read as UTF-8 when valid and by guess
/// otherwise. A label that lies is reported, and the text is decoded with the
/// charset the bytes are in, because that is what the recipient's client shows.
pub(crate) fn decode_declared(label: Option<&str>, bytes: &[u8]) -> Decoded {
    let Some(label) = label.filter(|label| !label.trim().is_empty()) else {
        return Decoded {
            text: decode_unlabelled(bytes),
            problem: None,
        };
    };
    let Some(charset) = lookup(label) else {
        let used = if bytes.is_ascii() {
            UTF_8
        } else {
            sniff(bytes)
        };
        return Decoded {
            text: used.decode_without_bom_handling(bytes).0.into_owned(),
            problem: Some(LabelProblem::Unknown {
                label: label.trim().to_owned(),
                used: used.name(),
            }),
        };
    };

    if charset.is_ascii_compatible() && bytes.is_ascii() {
        return Decoded {
            text: ascii_to_string(bytes),
            problem: None,
        };
    }

    let (text, malformed) = charset.decode(bytes);
    if malformed {
        return decode_malformed(charset, bytes, text.into_owned());
    }
    if charset.is_single_byte()
        && let Some(decoded) = second_guess_single_byte(charset, bytes)
    {
        return decoded;
    }
    Decoded {
        text: text.into_owned(),
        problem: None,
    }
}

fn ascii_to_string(bytes: &[u8]) -> String {
    bytes.iter().map(|&byte| char::from(byte)).collect()
}

/// Handles bytes that are invalid in the declared charset: the text comes from
/// the charset they do decode in, when one is found.
fn decode_malformed(charset: Charset, bytes: &[u8], lossy: String) -> Decoded {
    let invalid = lossy.chars().filter(|&c| c == '\u{FFFD}').count();
    let guess = sniff(bytes);
    let (guessed_text, guess_malformed) = guess.decode_without_bom_handling(bytes);
    if !guess_malformed && Charset::Encoding(guess) != charset {
        return Decoded {
            text: guessed_text.into_owned(),
            problem: Some(LabelProblem::Mismatch {
                detail: format!(
                    "declared {}, but {invalid} byte sequences are invalid in it; the bytes decode as {}",
                    charset.name(),
                    guess.name()
                ),
            }),
        };
    }
    Decoded {
        text: lossy,
        problem: Some(LabelProblem::Mismatch {
            detail: format!(
                "declared {}, but {invalid} byte sequences are invalid in it",
                charset.name()
            ),
        }),
    }
}

/// Checks bytes declared in a single-byte charset, which decode without error
/// whatever they are, against the detector's guess. A multi-byte or UTF-8 guess
/// that decodes cleanly, or a guess for another script, means the label lies
/// (GBK text labelled ISO-8859-1 is a common way to slip past filters).
fn second_guess_single_byte(declared: Charset, bytes: &[u8]) -> Option<Decoded> {
    let high_bytes = bytes.iter().filter(|&&byte| byte >= 0x80).count();
    if high_bytes < MIN_HIGH_BYTES_FOR_MISMATCH {
        return None;
    }

    if std::str::from_utf8(bytes).is_ok() {
        return Some(Decoded {
            text: String::from_utf8_lossy(bytes).into_owned(),
            problem: Some(LabelProblem::Mismatch {
                detail: format!("declared {}, but the bytes are UTF-8", declared.name()),
            }),
        });
    }

    // Text in a Latin script has its non-ASCII letters mostly alone between
    // ASCII ones, while CJK, Cyrillic, Greek or Arabic text has them in runs.
    // Only runs can mean another script, and the detector is too slow to run
    // on every accented Latin text.
    if paired_high_bytes(bytes) * 100 < high_bytes * MIN_PAIRED_HIGH_BYTE_PERCENT {
        return None;
    }

    let guess = sniff(bytes);
    if Charset::Encoding(guess) == declared {
        return None;
    }
    let differs = if guess.is_single_byte() {
        let non_space = bytes
            .iter()
            .filter(|byte| !byte.is_ascii_whitespace())
            .count();
        let share = high_bytes * 100 / non_space.max(1);
        share >= MIN_HIGH_BYTE_PERCENT_SINGLE_BYTE
            && script_family(guess) != script_family_of(declared)
    } else {
        true
    };
    if !differs {
        return None;
    }

    let (text, malformed) = guess.decode_without_bom_handling(bytes);
    if malformed {
        return None;
    }
    Some(Decoded {
        text: text.into_owned(),
        problem: Some(LabelProblem::Mismatch {
            detail: format!(
                "declared {}, but the bytes are {}",
                declared.name(),
                guess.name()
            ),
        }),
    })
}

/// Counts the non-ASCII bytes that stand next to a different non-ASCII byte.
///
/// Runs of one repeated byte do not count: padding with soft hyphens (0xAD in
/// Latin-1), which spam uses to break up words, is no sign of another script.
fn paired_high_bytes(bytes: &[u8]) -> usize {
    let pairs_with = |index: usize, other: Option<usize>| {
        other
            .and_then(|other| bytes.get(other))
            .is_some_and(|&byte| byte >= 0x80 && byte != bytes[index])
    };
    (0..bytes.len())
        .filter(|&index| {
            bytes[index] >= 0x80
                && (pairs_with(index, index.checked_add(1))
                    || pairs_with(index, index.checked_sub(1)))
        })
        .count()
}

/// Returns a coarse group of single-byte charsets by the script they write, so
/// that windows-1252 against ISO-8859-15 is no mismatch but windows-1252
/// against windows-1251 is.
fn script_family(encoding: &'static Encoding) -> &'static str {
    match encoding.name() {
        "windows-1251" | "KOI8-R" | "KOI8-U" | "ISO-8859-5" | "IBM866" | "x-mac-cyrillic" => {
            "cyrillic"
        }
        "windows-1253" | "ISO-8859-7" => "greek",
        "windows-1255" | "ISO-8859-8" | "ISO-8859-8-I" => "hebrew",
        "windows-1256" | "ISO-8859-6" => "arabic",
        "windows-874" => "thai",
        _ => "latin",
    }
}

fn script_family_of(charset: Charset) -> &'static str {
    match charset {
        Charset::Encoding(encoding) => script_family(encoding),
        Charset::Utf7 => "unicode",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use encoding_rs::WINDOWS_1252;

    #[test]
    fn lookup_maps_mail_labels() {
        let cases = [
            ("gb2312", "gb18030"),
            ("GB2312", "gb18030"),
            ("gbk", "gb18030"),
            ("ks_c_5601-1987", "EUC-KR"),
            ("utf-7", "UTF-7"),
            ("iso-8859-1", "windows-1252"),
            ("x-cp1251", "windows-1251"),
            ("cp-1251", "windows-1251"),
            ("win-1251", "windows-1251"),
            ("iso8859_5", "ISO-8859-5"),
            ("chinesebig5", "Big5"),
            ("gb2312_charset", "gb18030"),
            ("\"koi8-r\"", "KOI8-R"),
            ("shift_jis", "Shift_JIS"),
            ("iso-2022-jp", "ISO-2022-JP"),
            ("ansi-x3.4-1968", "windows-1252"),
            ("=utf-8", "UTF-8"),
            ("utf-8 <div style=", "UTF-8"),
        ];
        for (label, expected) in cases {
            let found = lookup(label).map(Charset::name);
            assert_eq!(found, Some(expected), "label {label}");
        }
    }

    #[test]
    fn lookup_rejects_non_charsets() {
        for label in ["default", "unknown-8bit", "iso-2022-kr", ""] {
            assert_eq!(lookup(label), None, "label {label}");
        }
    }

    #[test]
    fn latin1_label_on_gbk_bytes_is_mismatch() {
        let (bytes, _, _) = GB18030.encode("您好，这是发票通知，请查收附件中的文件。谢谢合作。");
        let decoded = decode_declared(Some("iso-8859-1"), &bytes);
        assert!(decoded.text.contains("发票"), "text {}", decoded.text);
        assert!(
            matches!(decoded.problem, Some(LabelProblem::Mismatch { .. })),
            "problem {:?}",
            decoded.problem
        );
    }

    #[test]
    fn utf8_label_on_invalid_bytes_is_mismatch() {
        let decoded = decode_declared(Some("utf-8"), b"caf\xe9 cr\xe8me br\xfbl\xe9e");
        assert_eq!(decoded.text, "café crème brûlée");
        assert!(matches!(
            decoded.problem,
            Some(LabelProblem::Mismatch { .. })
        ));
    }

    #[test]
    fn latin1_label_on_latin1_bytes_is_clean() {
        let decoded = decode_declared(
            Some("iso-8859-1"),
            "Grüße aus München, schöne Überraschung für Sie: Größe".as_bytes(),
        );
        // The bytes above are UTF-8, so they are a mismatch; the Latin-1 encoding is clean.
        assert!(decoded.problem.is_some());
        let (latin, _, _) =
            WINDOWS_1252.encode("Grüße aus München, schöne Überraschung für Sie: Größe");
        let decoded = decode_declared(Some("iso-8859-1"), &latin);
        assert_eq!(decoded.problem, None);
        assert_eq!(
            decoded.text,
            "Grüße aus München, schöne Überraschung für Sie: Größe"
        );
    }

    #[test]
    fn unknown_label_is_still_decoded() {
        let decoded = decode_declared(Some("x-unknown"), "Привет".as_bytes());
        assert_eq!(decoded.text, "Привет");
        assert!(matches!(
            decoded.problem,
            Some(LabelProblem::Unknown { .. })
        ));
    }
}
