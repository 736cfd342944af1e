//! Messages read from files: `.eml` files, mbox files and folders (Maildir or any tree).

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// One message read from a file, or why it could not be read.
pub(crate) struct Item {
    /// The file, with `#N` (1-based) for the Nth message of an mbox.
    pub(crate) name: String,
    pub(crate) raw: Result<Vec<u8>, String>,
}

/// Expands the given paths into message files, in a stable order.
///
/// A folder is read recursively in name order. Names that start with a dot
/// and the `tmp/` folder of a Maildir (messages still being written) are
/// skipped, except the subfolders of a Maildir++ (`.Sent`, `.Archive.2025`),
/// which are Maildirs themselves.
pub(crate) fn collect_files(paths: &[PathBuf]) -> io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        let metadata = std::fs::metadata(path)
            .map_err(|err| io::Error::new(err.kind(), format!("{}: {err}", path.display())))?;
        if metadata.is_dir() {
            walk(path, &mut files)?;
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

fn walk(folder: &Path, files: &mut Vec<PathBuf>) -> io::Result<()> {
    let is_maildir = folder.join("cur").is_dir() && folder.join("new").is_dir();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(folder)
        .map_err(|err| io::Error::new(err.kind(), format!("{}: {err}", folder.display())))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .collect();
    entries.sort();
    for entry in entries {
        let name = entry
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or("");
        let maildir_plus_folder =
            is_maildir && entry.join("cur").is_dir() && entry.join("new").is_dir();
        if (name.starts_with('.') && !maildir_plus_folder) || (is_maildir && name == "tmp") {
            continue;
        }
        // symlink_metadata: a link loop must not send the walk in circles.
        let Ok(metadata) = std::fs::symlink_metadata(&entry) else {
            continue;
        };
        if metadata.is_dir() {
            walk(&entry, files)?;
        } else if metadata.is_file() {
            files.push(entry);
        }
    }
    Ok(())
}

/// Reads every message in one file and passes each to `each`.
///
/// A file whose first line starts with `From ` is an mbox; anything else is
/// one message. A message over `max_bytes` is reported as an error item and
/// skipped, so one huge message cannot exhaust memory.
pub(crate) fn read_messages(path: &Path, max_bytes: usize, each: &mut dyn FnMut(Item)) {
    let name = path.display().to_string();
    let file = match File::open(path) {
        Ok(file) => file,
        Err(err) => {
            each(Item {
                name,
                raw: Err(err.to_string()),
            });
            return;
        }
    };
    let mut reader = BufReader::new(file);
    let is_mbox = match reader.fill_buf() {
        Ok(start) => start.starts_with(b"From "),
        Err(err) => {
            each(Item {
                name,
                raw: Err(err.to_string()),
            });
            return;
        }
    };
    if is_mbox {
        read_mbox(reader, &name, max_bytes, each);
    } else {
        let mut raw = Vec::new();
        let limit = u64::try_from(max_bytes)
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let raw = match reader.take(limit).read_to_end(&mut raw) {
            Ok(_) if raw.len() > max_bytes => Err(too_large(max_bytes)),
            Ok(_) => Ok(raw),
            Err(err) => Err(err.to_string()),
        };
        each(Item { name, raw });
    }
}

fn too_large(max_bytes: usize) -> String {
    format!("message larger than {max_bytes} bytes, skipped")
}

/// Splits an mbox at its `From ` lines and undoes `>From ` quoting.
///
/// Both mboxo (`From ` quoted as `>From `) and mboxrd (every `>*From `
/// quoted with one more `>`) are read by removing one `>` from lines that
/// match `^>+From `. For mboxo this also unquotes lines that were `>From `
/// in the original, because no reader can tell them apart. The blank line that
/// separates messages is removed from the end of each message.
fn read_mbox(mut reader: impl BufRead, name: &str, max_bytes: usize, each: &mut dyn FnMut(Item)) {
    let mut number = 0;
    let mut current: Option<Vec<u8>> = None;
    let mut oversized = false;
    let mut line = Vec::new();
    let mut emit = |number: usize, message: Option<Vec<u8>>, oversized: bool| {
        let Some(mut message) = message else { return };
        let raw = if oversized {
            Err(too_large(max_bytes))
        } else {
            if message.ends_with(b"\r\n\r\n") {
                message.truncate(message.len() - 2);
            } else if message.ends_with(b"\n\n") {
                message.truncate(message.len() - 1);
            }
            Ok(message)
        };
        each(Item {
            name: format!("{name}#{number}"),
            raw,
        });
    };
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(err) => {
                each(Item {
                    name: format!("{name}#{}", number + 1),
                    raw: Err(err.to_string()),
                });
                return;
            }
        }
        if line.starts_with(b"From ") {
            emit(number, current.take(), oversized);
            number += 1;
            current = Some(Vec::new());
            oversized = false;
            continue;
        }
        let Some(message) = current.as_mut() else {
            continue;
        };
        if oversized {
            continue;
        }
        let quoted = line.iter().take_while(|&&byte| byte == b'>').count();
        let unquoted = if quoted > 0 && line[quoted..].starts_with(b"From ") {
            &line[1..]
        } else {
            &line[..]
        };
        if message.len() + unquoted.len() > max_bytes {
            oversized = true;
            *message = Vec::new();
            continue;
        }
        message.extend_from_slice(unquoted);
    }
    emit(number, current, oversized);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mbox(text: &str, max_bytes: usize) -> Vec<(String, Result<String, String>)> {
        let mut items = Vec::new();
        read_mbox(text.as_bytes(), "box", max_bytes, &mut |item| {
            items.push((
                item.name,
                item.raw.map(|raw| String::from_utf8(raw).expect("utf-8")),
            ));
        });
        items
    }

    #[test]
    fn mbox_splits_and_unquotes() {
        let text = "From a@b Mon Jan  1 00:00:00 2024\nSubject: one\n\n>From here\n>>From there\n> From not\n\nFrom c@d Mon Jan  1 00:00:00 2024\nSubject: two\n\nbody\n";

        let items = mbox(text, 1000);

        assert_eq!(items.len(), 2);
        assert_eq!(items[0].0, "box#1");
        assert_eq!(
            items[0].1,
            Ok("Subject: one\n\nFrom here\n>From there\n> From not\n".to_owned())
        );
        assert_eq!(items[1].0, "box#2");
        assert_eq!(items[1].1, Ok("Subject: two\n\nbody\n".to_owned()));
    }

    #[test]
    fn mbox_skips_oversized_message() {
        let text = format!(
            "From a@b x\nSubject: big\n\n{}\n\nFrom c@d x\nSubject: small\n\n",
            "x".repeat(100)
        );

        let items = mbox(&text, 50);

        assert_eq!(items.len(), 2);
        assert!(items[0].1.is_err());
        assert_eq!(items[1].1, Ok("Subject: small\n".to_owned()));
    }
}
