//! Office Open XML packages: DOCX, XLSX, PPTX and their macro and template forms.
//!
//! Every part is read, whatever its name, because a package's
//! relationships (not its part names) point to the document part, and
//! attackers rename parts. XML parts give text and field codes, `.rels`
//! parts give every external target, and every other part (media,
//! embedded packages, OLE objects, VBA projects) becomes a child artifact.

use std::collections::HashSet;

use crate::archive::{self, Entry};
use crate::fields::{self, FieldTarget};
use crate::walker::Walker;
use crate::xml;
use crate::{Artifact, FindingKind, FoundUrl, UrlKind};

/// Relationship type of a remote template, loaded (with its macros) when the document opens.
const ATTACHED_TEMPLATE: &str = "/attachedTemplate";

/// Running totals for one package, so that limits and de-duplication
/// cost no rescans of what was collected.
#[derive(Default)]
struct Totals {
    text_chars: usize,
    urls: HashSet<String>,
}

/// Unpacks an Office package into `artifact`.
pub(crate) fn unpack(walker: &mut Walker<'_>, artifact: &mut Artifact, data: &[u8], depth: usize) {
    let archive = archive::read(data, walker.limits, &mut walker.budget);
    walker.record_problems(artifact, &archive);

    let mut totals = Totals::default();
    for entry in &archive.entries {
        let lower = entry.name.to_ascii_lowercase();
        if lower.ends_with(".rels") {
            relationships(walker, artifact, entry, &mut totals);
        } else if lower == "[content_types].xml" {
            continue;
        } else if lower.ends_with(".xml") {
            content_part(walker, artifact, entry, &mut totals);
        } else if lower.ends_with(".vml") {
            // Legacy drawings reference their images and objects through relationships.
            continue;
        } else {
            flag_active_part(walker, artifact, &entry.name, &lower);
            let location = walker.join(&artifact.location, &entry.name);
            let child = walker.file(&location, &entry.name, &entry.data, depth + 1, false);
            artifact.children.push(child);
        }
    }
    if archive.entries.iter().any(|entry| {
        entry
            .name
            .to_ascii_lowercase()
            .starts_with("xl/macrosheets/")
    }) {
        walker.finding(
            artifact,
            FindingKind::ActiveContent,
            "xl/macrosheets",
            "Excel 4.0 (XLM) macro sheet".to_owned(),
        );
    }
}

/// Flags parts that run code by themselves: ActiveX controls.
fn flag_active_part(walker: &Walker<'_>, artifact: &mut Artifact, name: &str, lower: &str) {
    if lower.contains("/activex/") && lower.ends_with(".bin") {
        walker.finding(
            artifact,
            FindingKind::ActiveContent,
            name,
            "ActiveX control".to_owned(),
        );
    }
}

fn push_url(
    walker: &Walker<'_>,
    artifact: &mut Artifact,
    totals: &mut Totals,
    url: String,
    kind: UrlKind,
    part: &str,
) {
    if artifact.urls.len() == walker.limits.max_urls {
        walker.finding(
            artifact,
            FindingKind::Unscannable,
            part,
            format!(
                "more than {} URLs (max_urls); the rest were dropped",
                walker.limits.max_urls
            ),
        );
    }
    if artifact.urls.len() >= walker.limits.max_urls {
        return;
    }
    let location = walker.join(&artifact.location, part);
    totals.urls.insert(url.clone());
    artifact.urls.push(FoundUrl {
        url,
        kind,
        location,
    });
}

fn relationships(
    walker: &mut Walker<'_>,
    artifact: &mut Artifact,
    entry: &Entry,
    totals: &mut Totals,
) {
    if !fits(walker, artifact, entry) {
        return;
    }
    let (found, error) = xml::relationships(&entry.data);
    for relationship in found
        .into_iter()
        .filter(|relationship| relationship.external)
    {
        if relationship.kind.ends_with(ATTACHED_TEMPLATE) && is_remote(&relationship.target) {
            walker.finding(
                artifact,
                FindingKind::ActiveContent,
                &entry.name,
                format!(
                    "remote template {} is loaded when the document opens",
                    relationship.target
                ),
            );
        }
        let kind = if relationship.kind.ends_with("/hyperlink") {
            UrlKind::Hyperlink
        } else {
            UrlKind::ExternalResource
        };
        push_url(
            walker,
            artifact,
            totals,
            relationship.target,
            kind,
            &entry.name,
        );
    }
    if let Some(error) = error {
        walker.finding(
            artifact,
            FindingKind::Unscannable,
            &entry.name,
            format!("relationships part is not well-formed XML ({error}); the relationships before the error were kept"),
        );
    }
}

fn content_part(
    walker: &mut Walker<'_>,
    artifact: &mut Artifact,
    entry: &Entry,
    totals: &mut Totals,
) {
    if !fits(walker, artifact, entry) {
        return;
    }
    let room = walker
        .limits
        .max_text_chars
        .saturating_sub(totals.text_chars);
    let content = xml::part_content(&entry.data, room);
    let part_text = content.text.trim_end();
    if !part_text.trim_start().is_empty() {
        // The newline between parts counts against the limit as well.
        let part_chars = part_text.chars().count();
        if !artifact.text.is_empty()
            && totals.text_chars + part_chars < walker.limits.max_text_chars
        {
            artifact.text.push('\n');
            totals.text_chars += 1;
        }
        artifact.text.push_str(part_text);
        totals.text_chars += part_chars;
    }
    let formula_urls = content
        .formulas
        .iter()
        .flat_map(|formula| urls_in_text(formula));
    for url in urls_in_text(&content.text).into_iter().chain(formula_urls) {
        if !totals.urls.contains(url) {
            push_url(
                walker,
                artifact,
                totals,
                url.to_owned(),
                UrlKind::Text,
                &entry.name,
            );
        }
    }
    for instruction in &content.fields {
        match fields::target(instruction) {
            Some(FieldTarget::Hyperlink(url)) => {
                push_url(walker, artifact, totals, url, UrlKind::Text, &entry.name)
            }
            Some(FieldTarget::Fetch(url)) => push_url(
                walker,
                artifact,
                totals,
                url,
                UrlKind::ExternalResource,
                &entry.name,
            ),
            Some(FieldTarget::Dde(command)) => walker.finding(
                artifact,
                FindingKind::ActiveContent,
                &entry.name,
                format!("DDE field runs {command:?}"),
            ),
            None => {}
        }
    }
    if let Some(error) = content.error {
        walker.finding(
            artifact,
            FindingKind::Unscannable,
            &entry.name,
            format!("part is not well-formed XML ({error}); the text before the error was kept"),
        );
    }
}

/// URLs with a scheme, and `www.` hosts, written as plain text in a part.
pub(crate) fn urls_in_text(text: &str) -> Vec<&str> {
    let mut finder = linkify::LinkFinder::new();
    finder.kinds(&[linkify::LinkKind::Url]);
    finder.url_must_have_scheme(false);
    finder
        .links(text)
        .map(|link| link.as_str())
        .filter(|url| {
            url.contains("://")
                || url
                    .get(..4)
                    .is_some_and(|head| head.eq_ignore_ascii_case("www."))
        })
        .collect()
}

/// Checks whether a part is small enough to parse, and records a finding when it is not.
fn fits(walker: &Walker<'_>, artifact: &mut Artifact, entry: &Entry) -> bool {
    let size = entry.data.len() as u64;
    if size <= walker.limits.max_xml_bytes {
        return true;
    }
    walker.finding(
        artifact,
        FindingKind::Unscannable,
        &entry.name,
        format!(
            "XML part of {size} bytes was not parsed: the limit is {} bytes (max_xml_bytes)",
            walker.limits.max_xml_bytes
        ),
    );
    false
}

/// Returns whether a template path is fetched over the network (HTTP, WebDAV or SMB),
/// not a local path Word recorded when the document was made.
fn is_remote(target: &str) -> bool {
    let lower = target.trim().to_ascii_lowercase();
    lower.starts_with("http://")
        || lower.starts_with("https://")
        || lower.starts_with("\\\\")
        || lower.starts_with("//")
        || lower.starts_with("file://\\\\")
        || (lower.starts_with("file://") && !lower.starts_with("file:///"))
}
