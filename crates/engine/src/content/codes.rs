//! Decoded QR payloads turned into records: classified, unwrapped, named, and linked.

use std::collections::HashSet;

use gatehouse_message::links::{
    AddressEncoding, ServiceKind, find_embedded_address, link_service, unwrap_all_redirects,
};
use gatehouse_message::{Link, LinkSource, Message};
use gatehouse_qr::{PayloadKind, QrCode, classify};

use super::{Content, record};
use crate::engine::Limits;
use crate::verdict::{EmbeddedAddress, FindingRecord, QrRecord, QrService};

/// The technique a code was drawn with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Technique {
    Image,
    Pdf,
    Svg,
    HtmlGrid,
    BlockCharacters,
    SplitImages,
}

impl Technique {
    fn name(self) -> &'static str {
        match self {
            Technique::Image => "image",
            Technique::Pdf => "pdf",
            Technique::Svg => "svg",
            Technique::HtmlGrid => "html_grid",
            Technique::BlockCharacters => "block_characters",
            Technique::SplitImages => "split_images",
        }
    }
}

/// State shared by every QR code of one message.
pub(crate) struct Decoding {
    /// The addresses of the recipients named in To and Cc, lower-cased.
    recipients: Vec<String>,
    /// Payloads already recorded at a location, so that a page render and
    /// a region of it do not report one code twice.
    seen: HashSet<(String, String)>,
    message_limits: gatehouse_message::Limits,
}

impl Decoding {
    pub(crate) fn new(message: &Message, limits: &Limits) -> Decoding {
        // NOTE: the envelope's recipients are not passed to this stage, so an
        // address only in RCPT TO (Bcc) is not looked for in payloads.
        let recipients = message
            .headers
            .to
            .iter()
            .chain(&message.headers.cc)
            .map(|mailbox| mailbox.address.trim().to_lowercase())
            .filter(|address| address.contains('@'))
            .collect();
        Decoding {
            recipients,
            seen: HashSet::new(),
            message_limits: limits.message.clone(),
        }
    }

    /// Records the codes found in one drawing at `location`.
    ///
    /// Codes of one drawing that lead to different registrable domains are a
    /// finding: one legitimate code per picture is the norm, and a second,
    /// hidden code (nested, or beside a decoy) is how a scanner is shown one
    /// target and a phone another.
    pub(crate) fn record(
        &mut self,
        codes: &[QrCode],
        location: &str,
        technique: Technique,
        content: &mut Content,
    ) {
        let mut domains: Vec<String> = Vec::new();
        for code in codes {
            if let Some(domain) = self.record_one(code, location, technique, content)
                && !domains.contains(&domain)
            {
                domains.push(domain);
            }
        }
        if domains.len() > 1 {
            content.findings.push(FindingRecord {
                id: "qr.different_hosts".to_owned(),
                location: location.to_owned(),
                detail: format!(
                    "one drawing carries QR codes for different domains: {}",
                    domains.join(", ")
                ),
            });
        }
    }

    /// Records one code and returns the registrable domain it leads to, for a URL.
    fn record_one(
        &mut self,
        code: &QrCode,
        location: &str,
        technique: Technique,
        content: &mut Content,
    ) -> Option<String> {
        let kind = classify(&code.payload);
        let first_time = self
            .seen
            .insert((code.payload.clone(), location.to_owned()));
        let mut qr = QrRecord {
            payload: code.payload.clone(),
            location: location.to_owned(),
            kind: kind_name(kind).to_owned(),
            technique: technique.name().to_owned(),
            nested: code.masked,
            target: None,
            service: None,
            recipient_address: None,
        };
        let link = if kind == PayloadKind::Url {
            Link::new(code.payload.trim(), LinkSource::Qr, location)
        } else {
            None
        };
        let Some(link) = link else {
            if first_time {
                content.qr_codes.push(qr);
            }
            return None;
        };

        let inner = unwrap_all_redirects(&link, &self.message_limits);
        let chain: Vec<&Link> = std::iter::once(&link).chain(&inner).collect();
        qr.target = inner.last().map(|last| last.url.clone());
        qr.service = chain.iter().find_map(|step| {
            link_service(&step.host).map(|service| QrService {
                kind: match service.kind {
                    ServiceKind::ShortLink => "short_link",
                    ServiceKind::DynamicQr => "dynamic_qr",
                }
                .to_owned(),
                domain: service.domain.to_owned(),
            })
        });
        qr.recipient_address = chain.iter().find_map(|step| {
            self.recipients.iter().find_map(|address| {
                find_embedded_address(&step.url, address).map(|encoding| EmbeddedAddress {
                    address: address.clone(),
                    encoding: encoding_name(encoding).to_owned(),
                })
            })
        });
        let domain = inner.last().unwrap_or(&link).domain.clone();

        if first_time {
            content.qr_codes.push(qr);
            content.links.push(record(link));
            content.links.extend(inner.into_iter().map(record));
        }
        Some(domain)
    }
}

fn kind_name(kind: PayloadKind) -> &'static str {
    match kind {
        PayloadKind::Url => "url",
        PayloadKind::Otpauth => "otpauth",
        PayloadKind::Wifi => "wifi",
        PayloadKind::Payment => "payment",
        PayloadKind::Email => "email",
        PayloadKind::Phone => "phone",
        PayloadKind::Sms => "sms",
        PayloadKind::Geo => "geo",
        PayloadKind::Contact => "contact",
        PayloadKind::OtherUri => "other_uri",
        PayloadKind::Text => "text",
    }
}

fn encoding_name(encoding: AddressEncoding) -> &'static str {
    match encoding {
        AddressEncoding::Plain => "plain",
        AddressEncoding::PercentEncoded => "percent_encoded",
        AddressEncoding::Base64 => "base64",
        AddressEncoding::Base64Url => "base64_url",
    }
}
