//! ZIP archives read into memory entry by entry, every read bounded.
//!
//! Nothing is written to disk. The central directory is used when it can be
//! parsed. When it cannot, or when it hides entries behind duplicate names,
//! the entries are recovered by scanning for local file headers. Entries
//! whose data overlap (the `zbsm.zip` family of bombs, where every entry
//! inflates the same compressed block) are reported and not read.

use std::io::{Cursor, Read};

use zip::read::{ZipReadOptions, read_zipfile_from_stream};
use zip::result::ZipError;

use crate::walker::Budget;
use crate::{FindingKind, Limits};

/// One file read out of an archive.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) name: String,
    /// The expanded bytes; partial when reading failed part way.
    pub(crate) data: Vec<u8>,
}

/// The readable entries of an archive, and what went wrong on the way.
#[derive(Debug, Default)]
pub(crate) struct Archive {
    pub(crate) entries: Vec<Entry>,
    /// Findings with the entry they concern (empty for the whole archive).
    pub(crate) problems: Vec<(FindingKind, String, String)>,
}

impl Archive {
    fn problem(&mut self, kind: FindingKind, entry: &str, detail: String) {
        self.problems.push((kind, entry.to_owned(), detail));
    }
}

const LOCAL_HEADER: &[u8] = b"PK\x03\x04";
/// General-purpose flag bit 11: the name and comment are UTF-8.
const FLAG_UTF8: u16 = 1 << 11;

/// Reads every entry of a ZIP archive within `limits` and `budget`.
pub(crate) fn read(data: &[u8], limits: &Limits, budget: &mut Budget) -> Archive {
    let mut archive = Archive::default();
    match zip::ZipArchive::new(Cursor::new(data)) {
        Ok(zip) if zip.has_duplicate_names() => {
            archive.problem(
                FindingKind::Unscannable,
                "",
                "duplicate entry names in the central directory: readers disagree on which \
                 entry counts, so every local header was read"
                    .to_owned(),
            );
            read_local_headers(data, limits, budget, &mut archive, &[]);
        }
        Ok(zip) => read_central_directory(zip, data, limits, budget, &mut archive),
        Err(error) => {
            let before = archive.problems.len();
            read_local_headers(data, limits, budget, &mut archive, &[]);
            if archive.entries.is_empty() && archive.problems.len() == before {
                archive.problem(
                    FindingKind::Unscannable,
                    "",
                    format!("damaged ZIP archive, no entry could be recovered: {error}"),
                );
            } else {
                archive.problem(
                    FindingKind::Unscannable,
                    "",
                    format!(
                        "damaged ZIP central directory ({error}); {} entries recovered from local headers",
                        archive.entries.len()
                    ),
                );
            }
        }
    }
    archive
}

fn read_central_directory(
    mut zip: zip::ZipArchive<Cursor<&[u8]>>,
    data: &[u8],
    limits: &Limits,
    budget: &mut Budget,
    archive: &mut Archive,
) {
    match zip.has_overlapping_files() {
        Ok(false) => {}
        Ok(true) => {
            archive.problem(
                FindingKind::Unscannable,
                "",
                format!(
                    "overlapping entries: {} entries share compressed data (a zip bomb), none was read",
                    zip.len()
                ),
            );
            return;
        }
        Err(error) => {
            archive.problem(
                FindingKind::Unscannable,
                "",
                format!("entry offsets could not be checked for overlap: {error}"),
            );
            return;
        }
    }
    if zip.len() > limits.max_entries {
        archive.problem(
            FindingKind::Unscannable,
            "",
            format!(
                "archive has {} entries, over the limit of {} (max_entries); the rest were skipped",
                zip.len(),
                limits.max_entries
            ),
        );
    }

    let hidden = has_unlisted_local_headers(&mut zip);

    for index in 0..zip.len().min(limits.max_entries) {
        let name = entry_name_at(&zip, index);
        if zip
            .by_index_data(index)
            .is_ok_and(|entry| entry.encrypted())
        {
            archive.problem(
                FindingKind::Unscannable,
                &name,
                format!("entry {name} is encrypted"),
            );
            continue;
        }
        // A local header that disagrees with the central directory shows
        // different names or sizes to different readers. Record that, then
        // read the entry as the central directory describes it.
        let consistent = ZipReadOptions::new().enforce_header_consistency(true);
        let consistency = zip.by_index_with_options(index, consistent).map(|_| ());
        match consistency {
            Ok(()) => {}
            Err(ZipError::UnsupportedArchive(reason)) => {
                archive.problem(
                    FindingKind::Unscannable,
                    &name,
                    format!("entry {name} could not be read: {reason}"),
                );
                continue;
            }
            Err(error) => archive.problem(
                FindingKind::Unscannable,
                &name,
                format!(
                    "local header of entry {name} disagrees with the central directory: {error}"
                ),
            ),
        }
        match zip.by_index(index) {
            Ok(file) => {
                if !read_entry(file, name, limits, budget, archive) {
                    return;
                }
            }
            Err(error) => archive.problem(
                FindingKind::Unscannable,
                &name,
                format!("entry {name} could not be read: {error}"),
            ),
        }
    }
    if hidden {
        read_unlisted_entries(&zip, data, limits, budget, archive);
    }
}

/// Checks whether local file headers sit outside every entry the central
/// directory lists. Readers that stream local headers (Java's
/// `ZipInputStream`, `unzip` on a damaged archive) see those entries, and
/// readers of the central directory do not.
fn has_unlisted_local_headers(zip: &mut zip::ZipArchive<Cursor<&[u8]>>) -> bool {
    // NOTE: zip 9 reports this case only as an error message among other
    // consistency errors, so the message text is matched here.
    zip.validate_header_consistency()
        .is_err_and(|error| error.to_string().contains("missing from central directory"))
}

/// Reads the entries whose local headers the central directory does not list.
fn read_unlisted_entries(
    zip: &zip::ZipArchive<Cursor<&[u8]>>,
    data: &[u8],
    limits: &Limits,
    budget: &mut Budget,
    archive: &mut Archive,
) {
    let listed: Vec<(u64, u64)> = (0..zip.len())
        .filter_map(|index| zip.by_index_data(index).ok())
        .map(|entry| (entry.header_start(), entry.compressed_size()))
        .collect();
    let before = archive.entries.len();
    read_local_headers(data, limits, budget, archive, &listed);
    let hidden: Vec<String> = archive.entries[before..]
        .iter()
        .map(|entry| entry.name.clone())
        .collect();
    archive.problem(
        FindingKind::Unscannable,
        "",
        format!(
            "local file headers not listed in the central directory: {} hidden entries read from their local headers ({})",
            hidden.len(),
            hidden.join(", ")
        ),
    );
}

fn entry_name_at(zip: &zip::ZipArchive<Cursor<&[u8]>>, index: usize) -> String {
    zip.by_index_data(index)
        .map(|entry| decode_name(entry.name_raw(), entry.flags().as_u16()))
        .unwrap_or_else(|_| format!("#{index}"))
}

/// Reads one entry within the limits. Returns false when the archive's
/// remaining entries must not be read (the expansion budget is spent).
fn read_entry<R: Read>(
    mut file: zip::read::ZipFile<'_, R>,
    name: String,
    limits: &Limits,
    budget: &mut Budget,
    archive: &mut Archive,
) -> bool {
    if file.is_dir() {
        return true;
    }
    if file.encrypted() {
        archive.problem(
            FindingKind::Unscannable,
            &name,
            format!("entry {name} is encrypted"),
        );
        return true;
    }
    let declared = file.size();
    let compressed = file.compressed_size();
    let remaining = budget.remaining();
    if declared > remaining {
        archive.problem(
            FindingKind::Unscannable,
            &name,
            format!(
                "entry {name} declares {declared} bytes, over the {remaining} bytes left of max_total_bytes ({}); \
                 the archive's remaining entries were not read",
                limits.max_total_bytes
            ),
        );
        return false;
    }
    let ratio_cap = compressed
        .saturating_mul(limits.max_ratio)
        .max(limits.min_ratio_check_bytes);
    if declared > ratio_cap {
        archive.problem(
            FindingKind::Unscannable,
            &name,
            format!(
                "entry {name} expands {compressed} bytes to {declared}, over the ratio limit of {} (max_ratio)",
                limits.max_ratio
            ),
        );
        return true;
    }

    // Declared sizes can lie, so the read itself is capped as well.
    let cap = ratio_cap.min(remaining);
    let mut data = Vec::with_capacity(declared.min(cap).min(1 << 20) as usize);
    let result = (&mut file)
        .take(cap.saturating_add(1))
        .read_to_end(&mut data);
    if data.len() as u64 > cap {
        data.truncate(cap as usize);
        let detail = if cap == remaining {
            format!(
                "entry {name} expands past the {remaining} bytes left of max_total_bytes ({}), read stopped",
                limits.max_total_bytes
            )
        } else {
            format!(
                "entry {name} expands past {cap} bytes, the ratio limit of {} (max_ratio), read stopped",
                limits.max_ratio
            )
        };
        archive.problem(FindingKind::Unscannable, &name, detail);
    } else if let Err(error) = result {
        archive.problem(
            FindingKind::Unscannable,
            &name,
            format!(
                "entry {name} could not be read completely ({} bytes read): {error}",
                data.len()
            ),
        );
    }
    budget.spend(data.len() as u64);
    archive.entries.push(Entry { name, data });
    budget.remaining() > 0
}

/// Recovers entries by reading each local file header in turn.
fn read_local_headers(
    data: &[u8],
    limits: &Limits,
    budget: &mut Budget,
    archive: &mut Archive,
    listed: &[(u64, u64)],
) {
    let mut offset = 0usize;
    let mut count = 0usize;
    while let Some(found) = memchr::memmem::find(&data[offset..], LOCAL_HEADER) {
        let start = offset + found;
        // Entries the central directory lists were read already: skip their
        // header and data, so that archives stored inside them stay nested.
        if let Some((_, compressed)) = listed.iter().find(|(header, _)| *header == start as u64) {
            offset = start
                .saturating_add(local_header_len(&data[start..]))
                .saturating_add(*compressed as usize)
                .max(start + LOCAL_HEADER.len());
            if offset >= data.len() {
                return;
            }
            continue;
        }
        if count >= limits.max_entries {
            archive.problem(
                FindingKind::Unscannable,
                "",
                format!(
                    "more than {} local headers, the limit (max_entries); the rest were skipped",
                    limits.max_entries
                ),
            );
            return;
        }
        count += 1;
        let mut cursor = Cursor::new(&data[start..]);
        let read = match read_zipfile_from_stream(&mut cursor) {
            Ok(Some(file)) => {
                let name = decode_name(file.name_raw(), file.flags().as_u16());
                Ok(Some(read_entry(file, name, limits, budget, archive)))
            }
            Ok(None) => Ok(None),
            Err(error) => Err(error),
        };
        let consumed = match read {
            Ok(Some(true)) => cursor.position() as usize,
            Ok(Some(false)) | Ok(None) => return,
            Err(error) => {
                let name = local_header_name(&data[start..]).unwrap_or_default();
                archive.problem(
                    FindingKind::Unscannable,
                    &name,
                    format!("entry {name} at offset {start} could not be read: {error}"),
                );
                LOCAL_HEADER.len()
            }
        };
        offset = start + consumed.max(LOCAL_HEADER.len());
        if offset >= data.len() {
            return;
        }
    }
}

/// Returns the length of the local file header at the start of `data`, name and extra field included.
fn local_header_len(data: &[u8]) -> usize {
    let Some(header) = data.get(..30) else {
        return LOCAL_HEADER.len();
    };
    let name_len = usize::from(u16::from_le_bytes([header[26], header[27]]));
    let extra_len = usize::from(u16::from_le_bytes([header[28], header[29]]));
    30 + name_len + extra_len
}

/// Reads the name in the local file header at the start of `data`.
fn local_header_name(data: &[u8]) -> Option<String> {
    let header = data.get(..30)?;
    let flags = u16::from_le_bytes([header[6], header[7]]);
    let name_len = usize::from(u16::from_le_bytes([header[26], header[27]]));
    let raw = data.get(30..30 + name_len)?;
    Some(decode_name(raw, flags))
}

/// Names of the first `max` local file headers, without decompressing anything.
pub(crate) fn local_header_names(data: &[u8], max: usize) -> Vec<String> {
    memchr::memmem::find_iter(data, LOCAL_HEADER)
        .filter_map(|offset| local_header_name(&data[offset..]))
        .take(max)
        .collect()
}

/// Decodes an entry name: UTF-8 when flagged or valid, GBK when the bytes
/// look like GB2312-range Chinese, else code page 437, the encoding ZIP
/// names had before the UTF-8 flag existed.
pub(crate) fn decode_name(raw: &[u8], flags: u16) -> String {
    if flags & FLAG_UTF8 != 0 {
        return String::from_utf8_lossy(raw).into_owned();
    }
    if let Ok(text) = std::str::from_utf8(raw) {
        return text.to_owned();
    }
    if looks_like_gb2312(raw) {
        let (gbk, had_errors) = encoding_rs::GBK.decode_without_bom_handling(raw);
        if !had_errors && gbk.chars().any(is_cjk) {
            return gbk.into_owned();
        }
    }
    raw.iter().map(|&byte| cp437(byte)).collect()
}

/// Checks whether every byte above ASCII is part of a pair with both bytes in
/// 0xA1..=0xFE, the GB2312 rows that Chinese names use. Names in code page
/// 437 with accents (`M\x81ller`) put an ASCII byte after the high one.
fn looks_like_gb2312(raw: &[u8]) -> bool {
    let mut bytes = raw.iter();
    while let Some(&byte) = bytes.next() {
        if byte < 0x80 {
            continue;
        }
        let Some(&trail) = bytes.next() else {
            return false;
        };
        if !(0xA1..=0xFE).contains(&byte) || !(0xA1..=0xFE).contains(&trail) {
            return false;
        }
    }
    true
}

fn is_cjk(c: char) -> bool {
    matches!(u32::from(c), 0x3000..=0x303F | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xFF00..=0xFFEF)
}

/// Code page 437, the ZIP specification's encoding for unflagged names.
fn cp437(byte: u8) -> char {
    const HIGH: [char; 128] = [
        'Ç', 'ü', 'é', 'â', 'ä', 'à', 'å', 'ç', 'ê', 'ë', 'è', 'ï', 'î', 'ì', 'Ä', 'Å', 'É', 'æ',
        'Æ', 'ô', 'ö', 'ò', 'û', 'ù', 'ÿ', 'Ö', 'Ü', '¢', '£', '¥', '₧', 'ƒ', 'á', 'í', 'ó', 'ú',
        'ñ', 'Ñ', 'ª', 'º', '¿', '⌐', '¬', '½', '¼', '¡', '«', '»', '░', '▒', '▓', '│', '┤', '╡',
        '╢', '╖', '╕', '╣', '║', '╗', '╝', '╜', '╛', '┐', '└', '┴', '┬', '├', '─', '┼', '╞', '╟',
        '╚', '╔', '╩', '╦', '╠', '═', '╬', '╧', '╨', '╤', '╥', '╙', '╘', '╒', '╓', '╫', '╪', '┘',
        '┌', '█', '▄', '▌', '▐', '▀', 'α', 'ß', 'Γ', 'π', 'Σ', 'σ', 'µ', 'τ', 'Φ', 'Θ', 'Ω', 'δ',
        '∞', 'φ', 'ε', '∩', '≡', '±', '≥', '≤', '⌠', '⌡', '÷', '≈', '°', '∙', '·', '√', 'ⁿ', '²',
        '■', '\u{a0}',
    ];
    if byte < 0x80 {
        char::from(byte)
    } else {
        HIGH[usize::from(byte - 0x80)]
    }
}

#[cfg(test)]
mod tests {
    use super::decode_name;

    #[test]
    fn name_flagged_utf8() {
        assert_eq!(decode_name("通知.txt".as_bytes(), 1 << 11), "通知.txt");
    }

    #[test]
    fn name_gbk_unflagged() {
        // "通知文件.docx" in GBK.
        let raw = b"\xcd\xa8\xd6\xaa\xce\xc4\xbc\xfe.docx";
        assert_eq!(decode_name(raw, 0), "通知文件.docx");
    }

    #[test]
    fn name_cp437_unflagged() {
        assert_eq!(decode_name(b"M\x81ller.txt", 0), "Müller.txt");
    }

    #[test]
    fn name_cp437_box_drawing() {
        assert_eq!(decode_name(b"\xc9\xcd\xbb", 0), "╔═╗");
    }
}
