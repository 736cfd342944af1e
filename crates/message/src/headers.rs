//! The top-level header fields of a message, decoded from their raw bytes.

use mail_parser::{HeaderName, MessagePart};

use crate::charset::LabelProblem;
use crate::decode::{address, fields, rfc2047};
use crate::{Finding, FindingKind, Headers, Limits};

/// One header field of a part: its name and its raw value bytes.
pub(crate) struct RawField<'a> {
    pub(crate) header: &'a mail_parser::Header<'a>,
    pub(crate) value: &'a [u8],
}

impl RawField<'_> {
    /// Returns whether the field has this name, ignoring case.
    pub(crate) fn is(&self, lower_name: &str) -> bool {
        match &self.header.name {
            HeaderName::Other(name) => name.eq_ignore_ascii_case(lower_name),
            name => name.as_static_str().eq_ignore_ascii_case(lower_name),
        }
    }
}

/// Lists the fields of a part with their raw values from `raw`, the buffer
/// mail-parser's offsets point into, within [`Limits::max_header_bytes`].
pub(crate) fn raw_fields<'a>(
    raw: &'a [u8],
    part: &'a MessagePart<'a>,
    limits: &Limits,
) -> Vec<RawField<'a>> {
    let block_start = part.offset_header as usize;
    part.headers
        .iter()
        .filter(|header| {
            (header.offset_start as usize).saturating_sub(block_start) <= limits.max_header_bytes
        })
        .filter_map(|header| {
            let start = header.offset_start as usize;
            let end = (header.offset_end as usize).min(start + limits.max_header_bytes);
            let value = raw.get(start..end)?;
            Some(RawField { header, value })
        })
        .collect()
}

/// Decodes the header fields Gatehouse uses; label problems become findings.
pub(crate) fn read(fields_of_part: &[RawField<'_>], findings: &mut Vec<Finding>) -> Headers {
    let mut headers = Headers::default();
    let mut problems: Vec<(&str, LabelProblem)> = Vec::new();
    let mut senders: Vec<String> = Vec::new();

    for field in fields_of_part {
        if field.is("from") {
            let (list, found) = address::parse_list(field.value);
            senders.extend(list.iter().map(|mailbox| mailbox.address.clone()));
            if headers.from.is_none() {
                headers.from = list.into_iter().next();
                problems.extend(found.into_iter().map(|problem| ("From", problem)));
            }
        } else if field.is("reply-to") && headers.reply_to.is_none() {
            let (list, found) = address::parse_list(field.value);
            headers.reply_to = list.into_iter().next();
            problems.extend(found.into_iter().map(|problem| ("Reply-To", problem)));
        } else if field.is("to") {
            // A name without an address (`To: Whomever`) names no recipient.
            let (list, found) = address::parse_list(field.value);
            headers
                .to
                .extend(list.into_iter().filter(|m| !m.address.is_empty()));
            problems.extend(found.into_iter().map(|problem| ("To", problem)));
        } else if field.is("cc") {
            let (list, found) = address::parse_list(field.value);
            headers
                .cc
                .extend(list.into_iter().filter(|m| !m.address.is_empty()));
            problems.extend(found.into_iter().map(|problem| ("Cc", problem)));
        } else if field.is("subject") && headers.subject.is_none() {
            let decoded = rfc2047::decode_text(field.value);
            headers.subject = Some(decoded.text.trim().to_owned());
            problems.extend(
                decoded
                    .problems
                    .into_iter()
                    .map(|problem| ("Subject", problem)),
            );
        } else if field.is("message-id") && headers.message_id.is_none() {
            headers.message_id = fields::message_ids(field.value).into_iter().next();
        } else if field.is("in-reply-to") && headers.in_reply_to.is_empty() {
            headers.in_reply_to = fields::message_ids(field.value);
        } else if field.is("references") && headers.references.is_empty() {
            headers.references = fields::message_ids(field.value);
        } else if field.is("date") && headers.date.is_none() {
            headers.date = field
                .header
                .value
                .as_datetime()
                .and_then(fields::to_offset_date_time)
                .or_else(|| fields::parse_date(field.value));
        } else if field.is("received") {
            let hop = match field.header.value.as_received() {
                Some(received) => fields::hop_from_parsed(received),
                None => fields::hop_fallback(field.value),
            };
            headers.received.push(hop);
        } else if field.is("authentication-results") {
            headers
                .authentication_results
                .extend(fields::authentication_results(field.value));
        } else if headers.originating_ip.is_none()
            && fields::ORIGINATING_IP_HEADERS
                .iter()
                .any(|name| field.is(name))
        {
            headers.originating_ip = fields::first_ip(field.value);
        }
    }

    // Clients differ in which of several senders they show, so the verdict must see them all.
    if senders.len() > 1 {
        findings.push(Finding {
            kind: FindingKind::MalformedMime,
            location: "header From".to_owned(),
            detail: format!(
                "{} sender addresses in From: {}",
                senders.len(),
                senders.join(", ")
            ),
        });
    }
    for (name, problem) in problems {
        findings.push(label_finding(&format!("header {name}"), problem));
    }
    headers
}

/// Turns a charset label problem into a finding at `location`.
pub(crate) fn label_finding(location: &str, problem: LabelProblem) -> Finding {
    match problem {
        LabelProblem::Unknown { label, used } => Finding {
            kind: FindingKind::CharsetUnknown,
            location: location.to_owned(),
            detail: format!("unknown charset {label:?}; decoded as {used}"),
        },
        LabelProblem::Mismatch { detail } => Finding {
            kind: FindingKind::CharsetMismatch,
            location: location.to_owned(),
            detail,
        },
    }
}
