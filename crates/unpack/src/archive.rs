//! ZIP archives read into memory entry by entry, every read bounded.
//!
//! Nothing is written to disk. The central directory is used when it can be
//! parsed. When it cannot, or when it hides entries behind duplicate names,
//! the entries are recovered by scanning for local file headers. Entries
//! whose data overlap (the `zbsm.zip` family of bombs, where every entry
//! inflates the same compressed block) are reported and not read.

use std::io::{Cursor, Read};

use zip::read::ZipReadOptions;
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
                    "entries overlap each other or the central directory, as in a zip bomb; none of the {} entries was read",
                    zip.len()
                ),
            );
            return;
        }
        Err(error) => {
            archive.problem(
                FindingKind::Unscannable,
                "",
                format!(
                    "entry offsets in the central directory are invalid ({error}); entries were read from local headers"
                ),
            );
            read_local_headers(data, limits, budget, archive, &[]);
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
    read_bounded(
        &mut file, name, declared, compressed, limits, budget, archive,
    )
}

/// Reads one entry's expanded bytes from `reader`, capped by the ratio and
/// the bytes left in the budget. Returns false when the archive's remaining
/// entries must not be read.
fn read_bounded(
    reader: &mut impl Read,
    name: String,
    declared: u64,
    compressed: u64,
    limits: &Limits,
    budget: &mut Budget,
    archive: &mut Archive,
) -> bool {
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
    let result = reader.take(cap.saturating_add(1)).read_to_end(&mut data);
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
        let Some(header) = LocalHeader::parse(data, start) else {
            archive.problem(
                FindingKind::Unscannable,
                "",
                format!("local header at offset {start} is truncated"),
            );
            return;
        };
        let Some(consumed) = read_local_entry(data, &header, limits, budget, archive) else {
            return;
        };
        offset = consumed.max(start + LOCAL_HEADER.len());
        if offset >= data.len() {
            return;
        }
    }
}

/// Compression methods this reader expands, from the ZIP specification.
const METHOD_STORED: u16 = 0;
const METHOD_DEFLATE: u16 = 8;
/// General-purpose flag bit 0: the entry is encrypted.
const FLAG_ENCRYPTED: u16 = 1;
/// General-purpose flag bit 3: sizes and CRC follow the data, in a data descriptor.
const FLAG_DATA_DESCRIPTOR: u16 = 1 << 3;
/// Signatures that can follow an entry's data.
const NEXT_RECORDS: [&[u8]; 3] = [b"PK\x07\x08", b"PK\x03\x04", b"PK\x01\x02"];

/// One local file header, read without the central directory.
struct LocalHeader {
    flags: u16,
    method: u16,
    /// Compressed size, or `None` when it is stored in a data descriptor after the data.
    compressed: Option<u64>,
    size: u64,
    name: String,
    data_start: usize,
}

impl LocalHeader {
    fn parse(data: &[u8], start: usize) -> Option<LocalHeader> {
        let header = data.get(start..start.checked_add(30)?)?;
        let u16_at = |at: usize| u16::from_le_bytes([header[at], header[at + 1]]);
        let u32_at = |at: usize| {
            u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
        };
        let flags = u16_at(6);
        let name_end = start + 30 + usize::from(u16_at(26));
        let extra_end = name_end + usize::from(u16_at(28));
        let raw_name = data.get(start + 30..name_end)?;
        let extra = data.get(name_end..extra_end)?;

        let mut compressed = u64::from(u32_at(18));
        let mut size = u64::from(u32_at(22));
        // ZIP64: both sizes move to the extra field with ID 0x0001.
        if (compressed == 0xFFFF_FFFF || size == 0xFFFF_FFFF)
            && let Some(zip64) = extra_field(extra, 0x0001)
            && zip64.len() >= 16
        {
            size = u64::from_le_bytes(zip64[..8].try_into().ok()?);
            compressed = u64::from_le_bytes(zip64[8..16].try_into().ok()?);
        }
        let deferred = flags & FLAG_DATA_DESCRIPTOR != 0 && compressed == 0;
        Some(LocalHeader {
            flags,
            method: u16_at(8),
            compressed: (!deferred).then_some(compressed),
            size,
            name: decode_name(raw_name, flags),
            data_start: extra_end,
        })
    }
}

/// Returns the data of the extra field with `id`.
fn extra_field(mut extra: &[u8], id: u16) -> Option<&[u8]> {
    while extra.len() >= 4 {
        let field_id = u16::from_le_bytes([extra[0], extra[1]]);
        let len = usize::from(u16::from_le_bytes([extra[2], extra[3]]));
        let field = extra.get(4..4 + len)?;
        if field_id == id {
            return Some(field);
        }
        extra = &extra[4 + len..];
    }
    None
}

/// Reads the entry after one local header, stored or deflated. The size
/// comes from the header, or when a data descriptor carries it, from the
/// end of the deflate stream or the next record's signature. Returns the offset
/// where the entry ends, or `None` when the archive's remaining entries must
/// not be read.
fn read_local_entry(
    data: &[u8],
    header: &LocalHeader,
    limits: &Limits,
    budget: &mut Budget,
    archive: &mut Archive,
) -> Option<usize> {
    let name = header.name.clone();
    let available = &data[header.data_start.min(data.len())..];
    let compressed_data = match header.compressed {
        Some(compressed) => &available[..available.len().min(compressed as usize)],
        None => available,
    };
    let end_of = |consumed: usize| header.data_start.saturating_add(consumed);

    if name.ends_with('/') && header.size == 0 {
        return Some(end_of(compressed_data.len()));
    }
    if header.flags & FLAG_ENCRYPTED != 0 {
        archive.problem(
            FindingKind::Unscannable,
            &name,
            format!("entry {name} is encrypted"),
        );
        return Some(end_of(compressed_data.len()));
    }
    if header
        .compressed
        .is_some_and(|compressed| compressed > available.len() as u64)
    {
        archive.problem(
            FindingKind::Unscannable,
            &name,
            format!(
                "entry {name} is truncated: {} of {} compressed bytes present",
                available.len(),
                header.compressed.unwrap_or_default()
            ),
        );
    }
    match header.method {
        METHOD_STORED => {
            let stored = match header.compressed {
                Some(_) => compressed_data,
                None => {
                    let end = NEXT_RECORDS
                        .iter()
                        .filter_map(|signature| memchr::memmem::find(available, signature))
                        .min()
                        .unwrap_or(available.len());
                    &available[..end]
                }
            };
            let mut reader = stored;
            let keep_going = read_bounded(
                &mut reader,
                name,
                header.size.max(stored.len() as u64),
                stored.len() as u64,
                limits,
                budget,
                archive,
            );
            keep_going.then_some(end_of(stored.len()))
        }
        METHOD_DEFLATE => {
            let mut decoder = flate2::read::DeflateDecoder::new(compressed_data);
            let keep_going = read_bounded(
                &mut decoder,
                name,
                header.size,
                compressed_data.len() as u64,
                limits,
                budget,
                archive,
            );
            keep_going.then_some(end_of(decoder.total_in() as usize))
        }
        method => {
            archive.problem(
                FindingKind::Unscannable,
                &name,
                format!("entry {name} uses compression method {method}, which is not supported"),
            );
            Some(end_of(compressed_data.len()))
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
/// names had before the UTF-8 flag existed. Control characters are escaped.
pub(crate) fn decode_name(raw: &[u8], flags: u16) -> String {
    let name = if flags & FLAG_UTF8 != 0 {
        String::from_utf8_lossy(raw).into_owned()
    } else if let Ok(text) = std::str::from_utf8(raw) {
        text.to_owned()
    } else if let Some(gbk) = decode_gbk(raw) {
        gbk
    } else {
        raw.iter().map(|&byte| cp437(byte)).collect()
    };
    escape_controls(name)
}

fn decode_gbk(raw: &[u8]) -> Option<String> {
    if !looks_like_gb2312(raw) {
        return None;
    }
    let (gbk, had_errors) = encoding_rs::GBK.decode_without_bom_handling(raw);
    (!had_errors && gbk.chars().any(is_cjk)).then(|| gbk.into_owned())
}

/// Escapes control characters (`\u{1}`), which would garble locations in logs and verdicts.
fn escape_controls(name: String) -> String {
    if !name.chars().any(char::is_control) {
        return name;
    }
    name.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
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
    fn name_control_characters_escaped() {
        assert_eq!(decode_name(b"a\nb\x01.txt", 0), "a\\u{a}b\\u{1}.txt");
    }

    #[test]
    fn name_cp437_box_drawing() {
        assert_eq!(decode_name(b"\xc9\xcd\xbb", 0), "╔═╗");
    }
}
