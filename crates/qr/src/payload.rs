//! What a QR payload is, before anything treats it as a link.
//!
//! Phones act on a payload by its form: a URL opens a browser, `WIFI:` joins
//! a network, `otpauth://` adds a one-time-password account, an EMV string
//! starts a payment. Only URLs are links to judge. The other kinds are kept
//! and named, so that a payment code or an enrolment code is not scored as
//! a phishing link.

use serde::Serialize;

/// The kind of a QR payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PayloadKind {
    /// An `http`, `https` or `ftp` URL, or a `www.` host.
    Url,
    /// `otpauth://` or `otpauth-migration://`: a one-time-password secret to enrol.
    Otpauth,
    /// `WIFI:T:WPA;S:…;P:…;;`: network credentials.
    Wifi,
    /// A payment request: EMV merchant-presented code (PIX, and other
    /// national schemes), EPC (SEPA) transfer, Swiss QR bill, UPI or a
    /// cryptocurrency URI.
    Payment,
    /// `mailto:` or `MATMSG:`.
    Email,
    /// `tel:`.
    Phone,
    /// `sms:` or `smsto:`.
    Sms,
    /// `geo:`.
    Geo,
    /// A vCard, MeCard or vEvent.
    Contact,
    /// Another URI scheme, such as `intent:`, `data:` or `file:`.
    OtherUri,
    /// Anything else.
    Text,
}

/// Classifies a payload by its form.
pub fn classify(payload: &str) -> PayloadKind {
    let trimmed = payload.trim_start();
    let lower: String = trimmed
        .chars()
        .take(32)
        .collect::<String>()
        .to_ascii_lowercase();
    let starts = |prefix: &str| lower.starts_with(prefix);

    if starts("http://") || starts("https://") || starts("ftp://") || starts("www.") {
        return PayloadKind::Url;
    }
    if starts("otpauth://") || starts("otpauth-migration://") {
        return PayloadKind::Otpauth;
    }
    if starts("wifi:") {
        return PayloadKind::Wifi;
    }
    if is_emv(trimmed)
        || starts("bcd\n")
        || starts("bcd\r\n")
        || starts("spc\n")
        || starts("spc\r\n")
        || starts("upi://")
        || starts("bitcoin:")
        || starts("ethereum:")
        || starts("litecoin:")
        || starts("monero:")
    {
        return PayloadKind::Payment;
    }
    if starts("mailto:") || starts("matmsg:") {
        return PayloadKind::Email;
    }
    if starts("tel:") {
        return PayloadKind::Phone;
    }
    if starts("sms:") || starts("smsto:") {
        return PayloadKind::Sms;
    }
    if starts("geo:") {
        return PayloadKind::Geo;
    }
    if starts("begin:vcard") || starts("mecard:") || starts("begin:vevent") {
        return PayloadKind::Contact;
    }
    if has_uri_scheme(trimmed) {
        return PayloadKind::OtherUri;
    }
    PayloadKind::Text
}

/// Checks for an EMV merchant-presented payload (EMVCo QRCPS): TLV fields
/// that open with the format indicator `000201` and end with the CRC field
/// `63` `04` and four hex digits.
fn is_emv(payload: &str) -> bool {
    let payload = payload.trim_end();
    if !payload.starts_with("000201") || payload.len() < 14 {
        return false;
    }
    let Some(crc) = payload.get(payload.len() - 8..) else {
        return false;
    };
    crc.starts_with("6304") && crc[4..].chars().all(|c| c.is_ascii_hexdigit())
}

/// Checks whether text starts with `scheme:` (RFC 3986: a letter, then
/// letters, digits, `+`, `-` or `.`) and has no spaces.
fn has_uri_scheme(text: &str) -> bool {
    let Some((scheme, rest)) = text.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    let valid_scheme = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && scheme.len() <= 32;
    valid_scheme && !rest.is_empty() && !text.contains(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_kinds() {
        let pix = "00020126890014BR.GOV.BCB.PIX0116pix@srcex.adv.br0247DONIZETTI APARECIDO GREGORIO JUNIOR 507540038845204000053039865406288.985802BR5913EXTRAJUDICIAL6008BRASILIA6216051258924155250563047D83";
        let cases = [
            ("https://a.example/x", PayloadKind::Url),
            ("HTTP://A.EXAMPLE", PayloadKind::Url),
            ("www.a.example", PayloadKind::Url),
            (
                "otpauth://totp/Acme:alice?secret=JBSWY3DPEHPK3PXP&issuer=Acme",
                PayloadKind::Otpauth,
            ),
            ("WIFI:T:WPA;S:office;P:secret;;", PayloadKind::Wifi),
            (pix, PayloadKind::Payment),
            ("BCD\n002\n1\nSCT\nBIC\nName\nDE00", PayloadKind::Payment),
            ("bitcoin:bc1qxyz?amount=1", PayloadKind::Payment),
            ("mailto:a@b.example", PayloadKind::Email),
            ("tel:+15550100", PayloadKind::Phone),
            ("SMSTO:+15550100:hi", PayloadKind::Sms),
            ("BEGIN:VCARD\nVERSION:3.0", PayloadKind::Contact),
            (
                "intent://scan/#Intent;scheme=zxing;end",
                PayloadKind::OtherUri,
            ),
            ("Meeting room 4, second floor", PayloadKind::Text),
            ("000201 but not EMV", PayloadKind::Text),
        ];
        for (payload, expected) in cases {
            assert_eq!(classify(payload), expected, "payload {payload:?}");
        }
    }
}
