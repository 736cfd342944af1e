//! Streaming reads of OOXML parts with quick-xml.
//!
//! Document type declarations are skipped and entity references other than
//! the five predefined ones and character references are dropped, never
//! expanded, so entity bombs cost nothing. Callers bound the part size.

use std::borrow::Cow;

use quick_xml::Reader;
use quick_xml::XmlVersion;
use quick_xml::events::attributes::Attribute;
use quick_xml::events::{BytesStart, Event};

/// One relationship from a `.rels` part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Relationship {
    pub(crate) kind: String,
    pub(crate) target: String,
    pub(crate) external: bool,
}

/// Text and field instructions of one content part.
#[derive(Debug, Default)]
pub(crate) struct PartContent {
    pub(crate) text: String,
    /// Field codes (`HYPERLINK "…"`, `INCLUDEPICTURE "…"`, `DDEAUTO …`), one per field.
    pub(crate) fields: Vec<String>,
    /// Spreadsheet formulas, such as `HYPERLINK("https://…","Open")`.
    pub(crate) formulas: Vec<String>,
    /// Set when the part was not well-formed; what was read before the error is kept.
    pub(crate) error: Option<String>,
}

/// Converts a part to UTF-8: OOXML allows UTF-16 parts with a byte order mark.
pub(crate) fn to_utf8(data: &[u8]) -> Cow<'_, str> {
    if data.starts_with(&[0xFF, 0xFE]) {
        let (text, _) = encoding_rs::UTF_16LE.decode_without_bom_handling(&data[2..]);
        Cow::Owned(text.into_owned())
    } else if data.starts_with(&[0xFE, 0xFF]) {
        let (text, _) = encoding_rs::UTF_16BE.decode_without_bom_handling(&data[2..]);
        Cow::Owned(text.into_owned())
    } else {
        let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
        String::from_utf8_lossy(data)
    }
}

fn attribute_value(attribute: &Attribute<'_>) -> String {
    match attribute.normalized_value(XmlVersion::Implicit1_0) {
        Ok(value) => value.into_owned(),
        // An undeclared or custom entity: keep the raw text rather than expand it.
        Err(_) => attribute.value.clone().into_owned(),
    }
}

fn attribute(element: &BytesStart<'_>, local_name: &str) -> Option<String> {
    element
        .attributes()
        .with_checks(false)
        .flatten()
        .find(|attribute| attribute.key.local_name().as_ref() == local_name)
        .map(|attribute| attribute_value(&attribute))
}

/// Returns the text a general reference stands for, if it is predefined or a character reference.
fn reference_text(name: &str) -> Option<String> {
    let text = match name {
        "amp" => "&",
        "lt" => "<",
        "gt" => ">",
        "quot" => "\"",
        "apos" => "'",
        _ => {
            let number = name.strip_prefix('#')?;
            let code = match number.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => number.parse().ok()?,
            };
            return char::from_u32(code).map(String::from);
        }
    };
    Some(text.to_owned())
}

/// Reads the relationships of a `.rels` part.
pub(crate) fn relationships(data: &[u8]) -> (Vec<Relationship>, Option<String>) {
    let text = to_utf8(data);
    let mut reader = Reader::from_str(&text);
    let mut found = Vec::new();
    loop {
        match reader.read_event() {
            Ok(Event::Start(element) | Event::Empty(element))
                if element.local_name().as_ref() == "Relationship" =>
            {
                let Some(target) = attribute(&element, "Target") else {
                    continue;
                };
                found.push(Relationship {
                    kind: attribute(&element, "Type").unwrap_or_default(),
                    target,
                    external: attribute(&element, "TargetMode")
                        .is_some_and(|mode| mode.eq_ignore_ascii_case("External")),
                });
            }
            Ok(Event::Eof) => return (found, None),
            Ok(_) => {}
            Err(error) => return (found, Some(error.to_string())),
        }
    }
}

/// Kind of element whose text is being collected.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Inside {
    Nothing,
    /// A text run: `w:t`, `a:t`, `w:delText`, or `t` in shared strings.
    Text,
    /// A field instruction: `w:instrText`.
    Instruction,
    /// A spreadsheet cell formula: `f`.
    Formula,
}

/// Collects the text and field codes of a content part, up to `max_chars` characters of text.
pub(crate) fn part_content(data: &[u8], max_chars: usize) -> PartContent {
    let source = to_utf8(data);
    let mut reader = Reader::from_str(&source);
    let mut content = PartContent::default();
    let mut inside = Inside::Nothing;
    let mut chars = 0usize;
    // Complex fields nest: `begin` opens one, `end` closes the innermost.
    let mut open_fields: Vec<String> = Vec::new();

    let mut push_text =
        |content: &mut PartContent, open_fields: &mut Vec<String>, inside, text: &str| match inside
        {
            Inside::Text if chars < max_chars => {
                let take: String = text.chars().take(max_chars - chars).collect();
                chars += take.chars().count();
                content.text.push_str(&take);
            }
            Inside::Formula => match content.formulas.last_mut() {
                Some(formula) => formula.push_str(text),
                None => content.formulas.push(text.to_owned()),
            },
            Inside::Instruction => {
                if let Some(field) = open_fields.last_mut() {
                    field.push_str(text);
                } else {
                    content.fields.push(text.to_owned());
                }
            }
            _ => {}
        };

    loop {
        match reader.read_event() {
            Ok(Event::Start(element)) => {
                inside = match element.local_name().as_ref() {
                    "t" | "delText" => Inside::Text,
                    "instrText" | "delInstrText" => Inside::Instruction,
                    "f" => {
                        content.formulas.push(String::new());
                        Inside::Formula
                    }
                    _ => inside,
                };
                if element.local_name().as_ref() == "fldSimple"
                    && let Some(instruction) = attribute(&element, "instr")
                {
                    content.fields.push(instruction);
                }
            }
            Ok(Event::Empty(element)) => match element.local_name().as_ref() {
                "fldSimple" => {
                    if let Some(instruction) = attribute(&element, "instr") {
                        content.fields.push(instruction);
                    }
                }
                "fldChar" => match attribute(&element, "fldCharType").as_deref() {
                    Some("begin") => open_fields.push(String::new()),
                    Some("end") => {
                        if let Some(field) = open_fields.pop()
                            && !field.trim().is_empty()
                        {
                            content.fields.push(field);
                        }
                    }
                    _ => {}
                },
                // Paragraph, tab and line breaks keep words apart.
                "tab" | "br" | "cr" => push_text(&mut content, &mut open_fields, Inside::Text, " "),
                _ => {}
            },
            Ok(Event::End(element)) => match element.local_name().as_ref() {
                "t" | "delText" | "instrText" | "delInstrText" | "f" => inside = Inside::Nothing,
                "p" | "si" | "tc" | "row" => {
                    push_text(&mut content, &mut open_fields, Inside::Text, "\n")
                }
                _ => {}
            },
            Ok(Event::Text(text)) => push_text(
                &mut content,
                &mut open_fields,
                inside,
                &text.xml10_content(),
            ),
            Ok(Event::CData(data)) => push_text(
                &mut content,
                &mut open_fields,
                inside,
                &data.xml10_content(),
            ),
            Ok(Event::GeneralRef(reference)) => {
                if let Some(text) = reference_text(&reference.xml10_content()) {
                    push_text(&mut content, &mut open_fields, inside, &text);
                }
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(error) => {
                content.error = Some(error.to_string());
                break;
            }
        }
    }
    // Fields left open by a truncated part still carry their instruction.
    content.fields.extend(
        open_fields
            .into_iter()
            .filter(|field| !field.trim().is_empty()),
    );
    content
}
