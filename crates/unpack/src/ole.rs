//! OLE2 compound files (cfb): legacy Office documents, OLE objects embedded
//! in Office packages, VBA projects and encrypted OOXML packages.

use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use crate::walker::Walker;
use crate::{Artifact, FindingKind};

/// Streams whose content is a whole file worth unpacking on its own.
const EMBEDDED_FILE_STREAMS: [&str; 3] = ["Package", "CONTENTS", "\u{1}Ole10Native"];

/// Storages that hold VBA code: `VBA` in Office packages' `vbaProject.bin`,
/// `Macros` in Word 97-2003, `_VBA_PROJECT_CUR` in Excel 97-2003.
const VBA_STORAGES: [&str; 3] = ["VBA", "Macros", "_VBA_PROJECT_CUR"];

/// Lists the compound file's streams, flags encryption and macros, and
/// unpacks the files embedded in it as children.
///
/// NOTE: the text and hyperlinks of legacy Word, Excel and PowerPoint
/// documents (the `WordDocument`, `Workbook` and `PowerPoint Document`
/// streams) are not extracted.
pub(crate) fn unpack(walker: &mut Walker<'_>, artifact: &mut Artifact, data: &[u8], depth: usize) {
    let compound = cfb::CompoundFile::open(Cursor::new(data));
    let mut compound = match compound {
        Ok(compound) => compound,
        Err(error) => {
            walker.finding(
                artifact,
                FindingKind::Unscannable,
                "",
                format!("damaged OLE2 compound file: {error}"),
            );
            return;
        }
    };

    let mut streams: Vec<(PathBuf, u64)> = Vec::new();
    let mut storages: Vec<String> = Vec::new();
    for entry in compound.walk() {
        if entry.is_stream() {
            streams.push((entry.path().to_path_buf(), entry.len()));
        } else if entry.is_storage() {
            storages.push(entry.name().to_owned());
        }
    }
    let root_has = |name: &str| {
        streams
            .iter()
            .any(|(path, _)| path == Path::new("/").join(name).as_path())
    };

    // An encrypted OOXML package is a compound file holding the encrypted ZIP.
    if root_has("EncryptionInfo") && root_has("EncryptedPackage") {
        walker.finding(
            artifact,
            FindingKind::Unscannable,
            "",
            "encrypted Office document (EncryptionInfo and EncryptedPackage): content not readable without the password".to_owned(),
        );
        return;
    }
    if let Some(storage) = storages
        .iter()
        .find(|name| VBA_STORAGES.contains(&name.as_str()))
    {
        walker.finding(
            artifact,
            FindingKind::ActiveContent,
            "",
            format!("VBA macro project (storage {storage})"),
        );
    }

    for (path, size) in streams {
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !EMBEDDED_FILE_STREAMS.contains(&name.as_str()) {
            continue;
        }
        let display_path = path
            .to_string_lossy()
            .trim_start_matches('/')
            .replace('\u{1}', "\\x01");
        let Some(bytes) = read_stream(walker, artifact, &mut compound, &path, &display_path, size)
        else {
            continue;
        };
        if name == "\u{1}Ole10Native" {
            match ole10_native(&bytes) {
                Some(native) if !native.is_package => {
                    // Another class (Paintbrush, for one) stores its own data after the size.
                    let location = walker.join(&artifact.location, &display_path);
                    let child =
                        walker.file(&location, &native.label, native.data, depth + 1, false);
                    artifact.children.push(child);
                }
                Some(package) => {
                    walker.finding(
                        artifact,
                        FindingKind::ActiveContent,
                        &display_path,
                        format!(
                            "OLE package embeds the file {:?} ({} bytes)",
                            package.label,
                            package.data.len()
                        ),
                    );
                    let location = walker.join(&artifact.location, &package.label);
                    let child =
                        walker.file(&location, &package.label, package.data, depth + 1, true);
                    artifact.children.push(child);
                }
                None => walker.finding(
                    artifact,
                    FindingKind::Unscannable,
                    &display_path,
                    "OLE package stream is malformed".to_owned(),
                ),
            }
        } else {
            let location = walker.join(&artifact.location, &display_path);
            let child = walker.file(&location, &name, &bytes, depth + 1, false);
            artifact.children.push(child);
        }
    }
}

fn read_stream(
    walker: &mut Walker<'_>,
    artifact: &mut Artifact,
    compound: &mut cfb::CompoundFile<Cursor<&[u8]>>,
    path: &Path,
    display_path: &str,
    size: u64,
) -> Option<Vec<u8>> {
    let remaining = walker.budget.remaining();
    if size > remaining {
        walker.finding(
            artifact,
            FindingKind::Unscannable,
            display_path,
            format!("stream of {size} bytes is over the {remaining} bytes left of max_total_bytes"),
        );
        return None;
    }
    let mut bytes = Vec::new();
    let read = compound
        .open_stream(path)
        .and_then(|stream| stream.take(size).read_to_end(&mut bytes));
    walker.budget.spend(bytes.len() as u64);
    if let Err(error) = read {
        walker.finding(
            artifact,
            FindingKind::Unscannable,
            display_path,
            format!("stream could not be read: {error}"),
        );
        return None;
    }
    Some(bytes)
}

/// The file inside an `\x01Ole10Native` stream.
#[derive(Debug)]
struct Ole10Native<'a> {
    label: String,
    data: &'a [u8],
    /// Set for an OLE Package object, which wraps any file with its name.
    is_package: bool,
}

/// Parses an Ole10Native stream. It starts with the size of what follows
/// (u32). For an OLE Package that is: type (u16, 2), label, original path
/// (both NUL-terminated ANSI), reserved (u32), the temporary path (u32
/// length then bytes), the data size (u32) and the data. For other classes
/// the class's own data follows the size directly.
fn ole10_native(stream: &[u8]) -> Option<Ole10Native<'_>> {
    package(stream).or_else(|| {
        let size = u32::from_le_bytes(stream.get(..4)?.try_into().ok()?) as usize;
        let data = stream
            .get(4..4usize.checked_add(size)?)
            .filter(|data| !data.is_empty())?;
        Some(Ole10Native {
            label: "ole10native.bin".to_owned(),
            data,
            is_package: false,
        })
    })
}

fn package(stream: &[u8]) -> Option<Ole10Native<'_>> {
    if stream.get(4..6)? != [2, 0] {
        return None;
    }

    let mut position = 6usize;
    let cstring = |position: &mut usize| -> Option<String> {
        let rest = stream.get(*position..)?;
        let end = memchr::memchr(0, rest)?;
        let (text, _, _) = encoding_rs::WINDOWS_1252.decode(&rest[..end]);
        *position += end + 1;
        Some(text.into_owned())
    };
    let u32_at = |position: usize| -> Option<u32> {
        let bytes = stream.get(position..position + 4)?;
        Some(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    };

    let label = cstring(&mut position)?;
    let _original_path = cstring(&mut position)?;
    position += 4;
    let temp_path_len = u32_at(position)? as usize;
    position = position.checked_add(4)?.checked_add(temp_path_len)?;
    let data_len = u32_at(position)? as usize;
    position += 4;
    let data = stream.get(position..position.checked_add(data_len)?)?;

    let label = if label.is_empty() {
        "ole-package".to_owned()
    } else {
        label
    };
    Some(Ole10Native {
        label,
        data,
        is_package: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ole10_native_extracts_file() {
        let mut stream = vec![0u8; 4];
        stream.extend_from_slice(&2u16.to_le_bytes());
        stream.extend_from_slice(b"run.bat\0C:\\run.bat\0");
        stream.extend_from_slice(&[0, 0, 3, 0]);
        let temp = b"C:\\Temp\\run.bat\0";
        stream.extend_from_slice(&(temp.len() as u32).to_le_bytes());
        stream.extend_from_slice(temp);
        stream.extend_from_slice(&4u32.to_le_bytes());
        stream.extend_from_slice(b"calc");
        let package = ole10_native(&stream).expect("valid package");
        assert_eq!(package.label, "run.bat");
        assert_eq!(package.data, b"calc");
    }

    #[test]
    fn ole10_native_truncated() {
        assert!(ole10_native(b"\0\0\0\0\x02\0run").is_none());
    }

    #[test]
    fn ole10_native_other_class_data() {
        let stream = b"\x04\0\0\0BM\x01\x02trailing";
        let native = ole10_native(stream).expect("size fits");
        assert!(!native.is_package);
        assert_eq!(native.data, b"BM\x01\x02");
    }
}
