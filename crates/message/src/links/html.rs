//! URL candidates in HTML, streamed through lol_html.
//!
//! lol_html tokenises without building a tree, so deeply nested or huge HTML
//! costs time linear in its size and bounded memory.

use std::cell::RefCell;
use std::rc::Rc;

use lol_html::html_content::{Element, TextType};
use lol_html::{HtmlRewriter, LocalHandlerTypes, MemorySettings, Settings, doc_text, element};
use url::Url;

use super::{entities, host, urls_in_text};
use crate::Limits;

/// Memory lol_html may use for buffering, beyond the input itself.
const MAX_REWRITER_MEMORY: usize = 16 * 1024 * 1024;

/// Maximum bytes of an anchor's text kept to compare its host with the target.
const MAX_ANCHOR_TEXT: usize = 512;

/// Attributes whose value is one URL that a click follows or a client loads.
const URL_ATTRIBUTES: [&str; 9] = [
    "href",
    "src",
    "action",
    "formaction",
    "background",
    "poster",
    "data",
    "longdesc",
    "dynsrc",
];

/// A URL found in HTML, before normalisation.
pub(crate) struct Candidate {
    pub(crate) url: String,
    /// Set for anchors whose text shows a host of another registrable domain.
    pub(crate) shown_host: Option<String>,
}

#[derive(Default)]
struct State {
    base: Option<Url>,
    /// Raw URL strings, resolved against the base that was in force where they stood.
    candidates: Vec<(String, Option<usize>)>,
    /// Text of each anchor with an `href`, in document order.
    anchor_texts: Vec<String>,
    open_anchor: Option<usize>,
    /// Visible text, script and style content, for URLs written as text.
    text: String,
    text_limit: usize,
}

impl State {
    fn push_url(&mut self, raw: &str, anchor: Option<usize>) {
        let decoded = entities::decode(raw);
        let trimmed = decoded.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            return;
        }
        let resolved = self.resolve(trimmed);
        if let Some(url) = resolved {
            self.candidates.push((url, anchor));
        }
    }

    /// Resolves a URL against `<base href>`; relative URLs without a base have no host.
    fn resolve(&self, url: &str) -> Option<String> {
        // A scheme other than the web ones (data:, cid:, javascript:, mailto:)
        // carries no host. Such URLs are rejected before any parsing, because
        // a `data:` URI can be megabytes long.
        if let Some((scheme, _)) = url.split_once(':') {
            let is_scheme = !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
            if is_scheme {
                let scheme = scheme.to_ascii_lowercase();
                if !host::SCHEMES.contains(&scheme.as_str()) {
                    return None;
                }
                return host::parse_url(url).map(|_| url.to_owned());
            }
        }
        if host::parse_url(url).is_some() {
            return Some(url.to_owned());
        }
        let base = self.base.as_ref()?;
        base.join(url).ok().map(String::from)
    }

    fn push_text(&mut self, text: &str) {
        if self.text.len() >= self.text_limit {
            return;
        }
        let decoded = entities::decode(text);
        if let Some(index) = self.open_anchor
            && let Some(anchor_text) = self.anchor_texts.get_mut(index)
            && anchor_text.len() < MAX_ANCHOR_TEXT
        {
            anchor_text.push_str(&decoded);
        }
        self.text.push_str(&decoded);
    }
}

/// Scans HTML for URL candidates in document order: attributes first as they
/// stream past, then URLs written in the text.
pub(crate) fn scan(html: &str, limits: &Limits) -> Vec<Candidate> {
    let state = Rc::new(RefCell::new(State {
        text_limit: limits.max_body_bytes,
        ..State::default()
    }));

    let element_state = Rc::clone(&state);
    let text_state = Rc::clone(&state);
    // Non-strict: hostile HTML that leaves the parser in an ambiguous state
    // must still be read, not rejected.
    let settings = Settings::new()
        .append_element_content_handler(element!("*", move |element| {
            read_element(element, &element_state);
            Ok(())
        }))
        .append_document_content_handler(doc_text!(move |chunk| {
            let mut state = text_state.borrow_mut();
            match chunk.text_type() {
                TextType::Data | TextType::RCData => state.push_text(chunk.as_str()),
                TextType::RawText | TextType::ScriptData | TextType::PlainText => {
                    let text = chunk.as_str().to_owned();
                    for url in css_urls(&text) {
                        state.push_url(&url, None);
                    }
                    if state.text.len() < state.text_limit {
                        state.text.push_str(&text);
                    }
                }
                _ => {}
            }
            if chunk.last_in_text_node() {
                state.text.push(' ');
            }
            Ok(())
        }))
        .with_memory_settings(
            MemorySettings::new().with_max_allowed_memory_usage(MAX_REWRITER_MEMORY),
        )
        .with_strict(false);

    let mut rewriter = HtmlRewriter::new(settings, |_: &[u8]| {});
    // A memory limit or a handler error stops the scan; what was read so far is kept.
    if rewriter.write(html.as_bytes()).is_ok() {
        let _ = rewriter.end();
    }

    let state = state.take();
    collect(state)
}

fn read_element(element: &mut Element<'_, '_, LocalHandlerTypes>, state: &Rc<RefCell<State>>) {
    let tag = element.tag_name();
    let mut state_ref = state.borrow_mut();

    if tag == "base" {
        if let Some(href) = element.get_attribute("href")
            && state_ref.base.is_none()
        {
            state_ref.base = host::parse_url(&entities::decode(&href));
        }
        return;
    }

    let is_anchor = tag == "a" || tag == "area";
    let mut anchor_index = None;
    if is_anchor && element.has_attribute("href") {
        let index = state_ref.anchor_texts.len();
        state_ref.anchor_texts.push(String::new());
        anchor_index = Some(index);
    }

    for attribute in element.attributes() {
        let name = attribute.name();
        let value = attribute.value();
        if URL_ATTRIBUTES.contains(&name.as_str()) {
            let anchor = if name == "href" { anchor_index } else { None };
            state_ref.push_url(&value, anchor);
        } else if name == "srcset" {
            for candidate in value.split(',') {
                if let Some(url) = candidate.split_whitespace().next() {
                    state_ref.push_url(url, None);
                }
            }
        } else if name == "style" {
            for url in css_urls(&entities::decode(&value)) {
                state_ref.push_url(&url, None);
            }
        } else if name == "content" && tag == "meta" {
            // `<meta http-equiv="refresh" content="0; url=https://…">`
            if let Some(url) = refresh_url(&entities::decode(&value)) {
                state_ref.push_url(&url, None);
            }
        }
    }

    if let Some(index) = anchor_index {
        state_ref.open_anchor = Some(index);
        drop(state_ref);
        let end_state = Rc::clone(state);
        // Void or self-closing anchors have no end tag; the next anchor replaces them.
        let _ = element.on_end_tag(Box::new(move |_end| {
            end_state.borrow_mut().open_anchor = None;
            Ok(())
        }));
    }
}

/// Reads the targets of CSS `url(…)` functions.
fn css_urls(css: &str) -> Vec<String> {
    let lower = css.to_ascii_lowercase();
    let mut urls = Vec::new();
    let mut search = 0;
    while let Some(offset) = lower[search..].find("url(") {
        let start = search + offset + 4;
        let end = css[start..]
            .find(')')
            .map_or(css.len(), |position| start + position);
        let url = css[start..end]
            .trim()
            .trim_matches(|c| c == '"' || c == '\'')
            .trim();
        if !url.is_empty() {
            urls.push(url.to_owned());
        }
        search = end;
    }
    urls
}

/// Reads the URL of a meta refresh value such as `0; url=https://example.com/`.
fn refresh_url(content: &str) -> Option<String> {
    let lower = content.to_ascii_lowercase();
    let position = lower.find("url")?;
    let rest = content[position + 3..].trim_start();
    let rest = rest.strip_prefix('=')?.trim();
    let url = rest.trim_matches(|c| c == '"' || c == '\'');
    (!url.is_empty()).then(|| url.to_owned())
}

fn collect(state: State) -> Vec<Candidate> {
    let mut found: Vec<Candidate> = state
        .candidates
        .iter()
        .map(|(url, anchor)| Candidate {
            url: url.clone(),
            shown_host: anchor
                .and_then(|index| shown_host_mismatch(state.anchor_texts.get(index)?, url)),
        })
        .collect();
    for url in urls_in_text(&state.text) {
        found.push(Candidate {
            url: url.to_owned(),
            shown_host: None,
        });
    }
    found
}

/// Returns the host an anchor's text shows when its registrable domain differs from the target's.
fn shown_host_mismatch(text: &str, target: &str) -> Option<String> {
    let target_host = host::parse_url(target).and_then(|url| host::normalised_host(&url))?;
    let shown = shown_host(text)?;
    let differs = super::registrable_domain(&shown) != super::registrable_domain(&target_host);
    differs.then_some(shown)
}

/// Finds a host that text shows: a URL, or a bare name with a known public suffix.
fn shown_host(text: &str) -> Option<String> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if let Some(url) = urls_in_text(text).next() {
        return host::parse_url(url).and_then(|url| host::normalised_host(&url));
    }
    // A bare domain such as `paypal.com` or `secure.paypal.com/login`.
    let word = text.split_whitespace().find(|word| word.contains('.'))?;
    let word = word.trim_matches(|c: char| !c.is_alphanumeric());
    if !word.contains('.') || word.contains('@') {
        return None;
    }
    let url = host::parse_url(&format!("http://{word}"))?;
    let host = host::normalised_host(&url)?;
    let known_suffix = psl::suffix(host.as_bytes()).is_some_and(|suffix| suffix.is_known());
    known_suffix.then_some(host)
}
