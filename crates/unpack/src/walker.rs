//! The recursive walk over one attachment and everything nested in it.

use std::collections::HashSet;

use crate::{
    Artifact, FileKind, Finding, FindingKind, Limits, archive, html, ole, ooxml, pdf, sniff, svg,
};

/// Separates the steps of a location: `invoice.zip › word/media/image1.png`.
pub(crate) const LOCATION_SEPARATOR: &str = " › ";

/// The bytes that may still be expanded from archives and compound files.
#[derive(Debug)]
pub(crate) struct Budget {
    remaining: u64,
}

impl Budget {
    pub(crate) fn remaining(&self) -> u64 {
        self.remaining
    }

    pub(crate) fn spend(&mut self, bytes: u64) {
        self.remaining = self.remaining.saturating_sub(bytes);
    }
}

/// State shared by every level of one `unpack` call.
pub(crate) struct Walker<'a> {
    pub(crate) limits: &'a Limits,
    pub(crate) budget: Budget,
    /// SHA-256 of each container from the root down to the current file.
    ancestors: Vec<String>,
    /// SHA-256 of every container opened so far. A copy is listed but not
    /// opened again, because its content is already in the tree.
    opened: HashSet<String>,
}

impl<'a> Walker<'a> {
    pub(crate) fn new(limits: &'a Limits) -> Walker<'a> {
        Walker {
            limits,
            budget: Budget {
                remaining: limits.max_total_bytes,
            },
            ancestors: Vec::new(),
            opened: HashSet::new(),
        }
    }

    pub(crate) fn join(&self, parent: &str, child: &str) -> String {
        format!("{parent}{LOCATION_SEPARATOR}{child}")
    }

    /// Records a finding on `artifact`, at `part` inside it when `part` is not empty.
    pub(crate) fn finding(
        &self,
        artifact: &mut Artifact,
        kind: FindingKind,
        part: &str,
        detail: String,
    ) {
        let location = if part.is_empty() {
            artifact.location.clone()
        } else {
            self.join(&artifact.location, part)
        };
        artifact.findings.push(Finding {
            kind,
            location,
            detail,
        });
    }

    /// Unpacks one file found at `location`. `check_name` compares the
    /// extension of `name` with the content, for names a person chose.
    pub(crate) fn file(
        &mut self,
        location: &str,
        name: &str,
        data: &[u8],
        depth: usize,
        check_name: bool,
    ) -> Artifact {
        let kind = sniff(data);
        let mut artifact = Artifact::leaf(location, kind, data);
        if check_name {
            self.check_name(&mut artifact, name);
        }
        if !(kind.is_zip()
            || matches!(
                kind,
                FileKind::Cfb | FileKind::Pdf | FileKind::Svg | FileKind::Html
            ))
        {
            return artifact;
        }
        if depth >= self.limits.max_depth {
            self.finding(
                &mut artifact,
                FindingKind::Unscannable,
                "",
                format!(
                    "nested {kind:?} at depth {depth} was not opened: the limit is {} (max_depth)",
                    self.limits.max_depth
                ),
            );
            return artifact;
        }
        if self.ancestors.contains(&artifact.sha256) {
            self.finding(
                &mut artifact,
                FindingKind::Unscannable,
                "",
                "archive contains a copy of itself (a recursive archive); not opened again"
                    .to_owned(),
            );
            return artifact;
        }

        if !self.opened.insert(artifact.sha256.clone()) {
            return artifact;
        }
        if self.budget.remaining() == 0 {
            self.finding(
                &mut artifact,
                FindingKind::Unscannable,
                "",
                format!(
                    "{kind:?} not opened: max_total_bytes ({}) already spent on this attachment",
                    self.limits.max_total_bytes
                ),
            );
            return artifact;
        }

        self.ancestors.push(artifact.sha256.clone());
        if kind.is_ooxml() {
            ooxml::unpack(self, &mut artifact, data, depth);
        } else if kind == FileKind::Pdf {
            pdf::unpack(self, &mut artifact, data, depth);
        } else if kind == FileKind::Svg {
            svg::unpack(self, &mut artifact, data, depth);
        } else if kind == FileKind::Html {
            html::unpack(self, &mut artifact, data, depth);
        } else if kind == FileKind::Zip {
            self.zip(&mut artifact, data, depth);
        } else {
            ole::unpack(self, &mut artifact, data, depth);
        }
        self.ancestors.pop();
        artifact
    }

    /// Unpacks every entry of a plain ZIP archive as a child.
    fn zip(&mut self, artifact: &mut Artifact, data: &[u8], depth: usize) {
        let archive = archive::read(data, self.limits, &mut self.budget);
        self.record_problems(artifact, &archive);
        for entry in archive.entries {
            let location = self.join(&artifact.location, &entry.name);
            let child = self.file(&location, &entry.name, &entry.data, depth + 1, true);
            artifact.children.push(child);
        }
    }

    pub(crate) fn record_problems(&self, artifact: &mut Artifact, archive: &archive::Archive) {
        for (kind, entry, detail) in &archive.problems {
            self.finding(artifact, *kind, entry, detail.clone());
        }
    }

    fn check_name(&self, artifact: &mut Artifact, name: &str) {
        let file_name = name.rsplit(['/', '\\']).next().unwrap_or(name);
        let Some((_, extension)) = file_name.rsplit_once('.') else {
            return;
        };
        let Some(expected) = FileKind::expected_for_extension(extension) else {
            return;
        };
        // Content that sniffing cannot place proves nothing either way.
        if matches!(artifact.kind, FileKind::Unknown | FileKind::Text)
            || expected.contains(&artifact.kind)
        {
            return;
        }
        let detail = format!(
            "the name {file_name:?} says .{extension} but the content is {:?}",
            artifact.kind
        );
        self.finding(artifact, FindingKind::NameMismatch, "", detail);
    }
}
