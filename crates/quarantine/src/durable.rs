//! File operations that survive a crash: a reader sees the old state or the new one, never half.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of every folder the quarantine creates: only the gateway's user may list held mail.
pub(crate) const FOLDER_MODE: u32 = 0o700;
/// Mode of every file the quarantine writes.
pub(crate) const FILE_MODE: u32 = 0o600;

/// Prefix of temporary files; listing skips them, so a write cut short by a crash stays invisible.
pub(crate) const TEMP_PREFIX: &str = ".tmp-";

/// Creates `path` with mode 0700 when absent, and tightens an existing folder to 0700.
pub(crate) fn create_folder(path: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(FOLDER_MODE)
        .create(path)?;
    fs::set_permissions(path, fs::Permissions::from_mode(FOLDER_MODE))
}

/// Writes `contents` to `folder/name` atomically and durably.
///
/// The bytes go to a temporary file in the same folder, which is fsynced and
/// renamed over the final name. Then the folder is fsynced, so the rename
/// itself survives a power loss.
pub(crate) fn write_atomic(folder: &Path, name: &str, contents: &[u8]) -> io::Result<()> {
    let temp_path = folder.join(format!("{TEMP_PREFIX}{name}"));
    let final_path = folder.join(name);

    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(&temp_path)?;
    let written = file.write_all(contents).and_then(|()| file.sync_all());
    if let Err(err) = written {
        let _ = fs::remove_file(&temp_path);
        return Err(err);
    }
    drop(file);

    fs::rename(&temp_path, &final_path)?;
    sync_folder(folder)
}

/// Moves `from` to `to` (same file system) and makes both folder entries durable.
pub(crate) fn move_durably(from: &Path, to: &Path) -> io::Result<()> {
    fs::rename(from, to)?;
    if let Some(parent) = to.parent() {
        sync_folder(parent)?;
    }
    if let Some(parent) = from.parent() {
        sync_folder(parent)?;
    }
    Ok(())
}

/// Appends one line to `path`, creating it with mode 0600, and syncs the data.
pub(crate) fn append_line(path: &Path, line: &str) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(FILE_MODE)
        .open(path)?;
    file.write_all(line.as_bytes())?;
    file.sync_data()
}

/// Sets a file's mode to 0600.
pub(crate) fn make_private(path: &Path) -> io::Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(FILE_MODE))
}

pub(crate) fn sync_folder(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()
}
