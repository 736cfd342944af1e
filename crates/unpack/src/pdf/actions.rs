//! Actions, links and embedded files, from every object of a PDF.
//!
//! Every object is read, not only those the page tree reaches, because an
//! action can hang from the catalog (`/OpenAction`, `/AA`), a name tree
//! (`/JavaScript`), an annotation, a form field or an outline item, and
//! attackers put them where a reader finds them and a scanner does not.

use std::borrow::Cow;

use hayro::hayro_syntax::Pdf;
use hayro::hayro_syntax::object::{Array, Dict, MaybeRef, Object, Stream};

use crate::UrlKind;

/// Nesting of direct dictionaries and arrays followed inside one object.
const MAX_NESTING: usize = 16;
/// Direct dictionaries and arrays visited for each object read, on average.
const NODES_PER_OBJECT: usize = 32;
/// Characters of one JavaScript action kept for finding URLs.
const MAX_SCRIPT_CHARS: usize = 100_000;

/// Everything the objects of one PDF hold that the verdict needs.
#[derive(Debug, Default)]
pub(crate) struct Actions {
    pub(crate) urls: Vec<(String, UrlKind)>,
    /// Active content, with a description of the first of each kind and how many there were.
    pub(crate) active: Vec<(String, usize)>,
    /// Script text, for the URLs it names.
    pub(crate) scripts: String,
    /// Embedded files: name and stream, decoded later against the budget.
    pub(crate) embedded: Vec<(String, Vec<u8>)>,
    /// Whether `max_objects` stopped the walk before the last object.
    pub(crate) truncated: bool,
}

impl Actions {
    fn flag(&mut self, description: String) {
        let kind = description.split(':').next().unwrap_or("").to_owned();
        match self
            .active
            .iter_mut()
            .find(|(known, _)| known.split(':').next() == Some(kind.as_str()))
        {
            Some((_, count)) => *count += 1,
            None => self.active.push((description, 1)),
        }
    }
}

/// Reads up to `max_objects` objects, keeping embedded files while their
/// decoded size fits in `max_embedded_bytes`.
pub(crate) fn scan(pdf: &Pdf, max_objects: usize, max_embedded_bytes: u64) -> Actions {
    let mut walk = Walk {
        actions: Actions::default(),
        nodes_left: max_objects.saturating_mul(NODES_PER_OBJECT),
        embedded_bytes_left: max_embedded_bytes,
    };
    for (index, object) in pdf.objects().into_iter().enumerate() {
        if index >= max_objects || walk.nodes_left == 0 {
            walk.actions.truncated = true;
            break;
        }
        walk.object(&object, 0);
    }
    walk.actions
}

struct Walk {
    actions: Actions,
    nodes_left: usize,
    embedded_bytes_left: u64,
}

impl Walk {
    fn object(&mut self, object: &Object<'_>, depth: usize) {
        if depth > MAX_NESTING || self.nodes_left == 0 {
            return;
        }
        match object {
            Object::Dict(dict) => self.dict(dict, depth),
            Object::Stream(stream) => self.dict(stream.dict(), depth),
            Object::Array(array) => self.array(array, depth),
            _ => {}
        }
    }

    fn array(&mut self, array: &Array<'_>, depth: usize) {
        self.nodes_left = self.nodes_left.saturating_sub(1);
        for item in array.raw_iter() {
            // References are read where they are defined, as objects of their own.
            if let MaybeRef::NotRef(object) = item {
                self.object(&object, depth + 1);
            }
        }
    }

    fn dict(&mut self, dict: &Dict<'_>, depth: usize) {
        self.nodes_left = self.nodes_left.saturating_sub(1);
        self.action(dict);
        self.file_spec(dict);
        for (_, value) in dict.entries() {
            if let MaybeRef::NotRef(object) = value {
                self.object(&object, depth + 1);
            }
        }
    }

    /// Reads an action dictionary (`/S` names its type) and a `/JS` entry anywhere.
    fn action(&mut self, dict: &Dict<'_>) {
        let kind = dict
            .get::<hayro::hayro_syntax::object::Name<'_>>(b"S")
            .map(|name| name.as_str().to_owned());
        match kind.as_deref() {
            Some("URI") => {
                if let Some(uri) = text_entry(dict, b"URI") {
                    self.actions.urls.push((uri, UrlKind::Hyperlink));
                }
            }
            Some("Launch") => {
                let target = file_target(dict)
                    .or_else(|| {
                        dict.get::<Dict<'_>>(b"Win")
                            .and_then(|win| text_entry(&win, b"F"))
                    })
                    .unwrap_or_default();
                self.actions
                    .flag(format!("Launch action: opens or runs {target:?}"));
            }
            Some("SubmitForm") => {
                if let Some(target) = file_target(dict) {
                    self.actions.urls.push((target, UrlKind::Hyperlink));
                }
            }
            Some("GoToR" | "GoToE" | "ImportData") => {
                if let Some(target) = file_target(dict) {
                    self.actions.urls.push((target, UrlKind::ExternalResource));
                }
            }
            _ => {}
        }
        if dict.contains_key(b"JS") {
            let script = dict
                .get::<Stream<'_>>(b"JS")
                .and_then(|stream| stream.decoded().ok().map(|data| pdf_text(&data)))
                .or_else(|| text_entry(dict, b"JS"))
                .unwrap_or_default();
            let preview: String = script.chars().take(80).collect();
            self.actions
                .flag(format!("JavaScript action: {:?}", preview.trim()));
            if self.actions.scripts.len() < MAX_SCRIPT_CHARS {
                self.actions
                    .scripts
                    .extend(script.chars().take(MAX_SCRIPT_CHARS));
                self.actions.scripts.push('\n');
            }
        }
    }

    /// Keeps the file of a file specification with an `/EF` (embedded file) entry.
    fn file_spec(&mut self, dict: &Dict<'_>) {
        let Some(embedded) = dict.get::<Dict<'_>>(b"EF") else {
            return;
        };
        let Some(stream) = embedded
            .get::<Stream<'_>>(b"UF")
            .or_else(|| embedded.get::<Stream<'_>>(b"F"))
        else {
            return;
        };
        let name = text_entry(dict, b"UF")
            .or_else(|| text_entry(dict, b"F"))
            .unwrap_or_else(|| "embedded file".to_owned());
        let Ok(data) = stream.decoded() else {
            return;
        };
        let size = data.len() as u64;
        if size > self.embedded_bytes_left {
            self.actions.flag(format!(
                "Embedded file: {name:?} of {size} bytes was not read (max_total_bytes spent)"
            ));
            return;
        }
        self.embedded_bytes_left -= size;
        self.actions.embedded.push((name, data.into_owned()));
    }
}

/// Returns the target of an action's `/F`: a string, or a file specification's `/UF` or `/F`.
fn file_target(dict: &Dict<'_>) -> Option<String> {
    text_entry(dict, b"F").or_else(|| {
        let spec = dict.get::<Dict<'_>>(b"F")?;
        text_entry(&spec, b"UF").or_else(|| text_entry(&spec, b"F"))
    })
}

fn text_entry(dict: &Dict<'_>, key: &[u8]) -> Option<String> {
    let string = dict.get::<hayro::hayro_syntax::object::String<'_>>(key)?;
    let text = pdf_text(string.as_bytes());
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// Decodes a PDF text string: UTF-16BE after a byte order mark, UTF-8 after
/// its mark, else PDFDocEncoding (Latin-1 for the characters URLs use).
pub(crate) fn pdf_text(bytes: &[u8]) -> String {
    if let Some(utf16) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        let units: Vec<u16> = utf16
            .chunks_exact(2)
            .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
            .collect();
        return String::from_utf16_lossy(&units);
    }
    if let Some(utf8) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        return String::from_utf8_lossy(utf8).into_owned();
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => bytes.iter().map(|&byte| char::from(byte)).collect(),
    }
}

/// Finds `/URI (…)` strings in raw bytes, for a PDF the reader cannot open.
pub(crate) fn raw_uris(data: &[u8], max: usize) -> Vec<String> {
    let finder = memchr::memmem::Finder::new(b"/URI");
    let mut found = Vec::new();
    for start in finder.find_iter(data) {
        if found.len() >= max {
            break;
        }
        let rest = &data[start + 4..data.len().min(start + 4 + 4096)];
        let Some(open) = rest.iter().position(|&byte| !byte.is_ascii_whitespace()) else {
            continue;
        };
        if rest[open] != b'(' {
            continue;
        }
        let Some(close) = literal_end(&rest[open + 1..]) else {
            continue;
        };
        let literal = unescape(&rest[open + 1..open + 1 + close]);
        let text = pdf_text(&literal);
        let text = text.trim();
        if !text.is_empty() {
            found.push(text.to_owned());
        }
    }
    found
}

/// Returns the length of a literal string's body: up to its unbalanced `)`.
fn literal_end(body: &[u8]) -> Option<usize> {
    let mut nesting = 0usize;
    let mut escaped = false;
    for (index, &byte) in body.iter().enumerate() {
        match byte {
            _ if escaped => escaped = false,
            b'\\' => escaped = true,
            b'(' => nesting += 1,
            b')' if nesting == 0 => return Some(index),
            b')' => nesting -= 1,
            _ => {}
        }
    }
    None
}

/// Resolves the backslash escapes of a literal string (octal codes are kept as written).
fn unescape(body: &[u8]) -> Cow<'_, [u8]> {
    if !body.contains(&b'\\') {
        return Cow::Borrowed(body);
    }
    let mut out = Vec::with_capacity(body.len());
    let mut bytes = body.iter().copied();
    while let Some(byte) = bytes.next() {
        if byte != b'\\' {
            out.push(byte);
            continue;
        }
        match bytes.next() {
            Some(b'n') => out.push(b'\n'),
            Some(b'r') => out.push(b'\r'),
            Some(b't') => out.push(b'\t'),
            Some(b'\r' | b'\n') | None => {}
            Some(other) => out.push(other),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_uris_reads_literal_strings() {
        let data = b"<< /S /URI /URI (https://a.example/x\\)y) >> << /URI(http://b.example/) >>";
        assert_eq!(
            raw_uris(data, 10),
            vec!["https://a.example/x)y", "http://b.example/"]
        );
    }

    #[test]
    fn pdf_text_decodes_utf16() {
        assert_eq!(pdf_text(&[0xFE, 0xFF, 0, b'h', 0, b'i']), "hi");
    }
}
