use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use gatehouse_engine::Verdict;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::durable;
use crate::id::{InvalidId, QuarantineId};

/// Suffix of the marker that the graph learned a release.
const LEARNED_SUFFIX: &str = ".learned";

/// Folder of the messages whose hold a crash cut short, beside `held/`.
pub const UNFINISHED: &str = "unfinished";

/// The counts of what [`Quarantine::sweep`] tidied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sweep {
    /// Temporary files of interrupted writes, removed.
    pub temporary_removed: usize,
    /// Messages whose release or delete was interrupted, moved beside their verdicts.
    pub moves_finished: usize,
    /// Messages whose verdict was never written, moved to `unfinished/`.
    pub unfinished_moved: usize,
}

/// The folders a held message moves through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Folder {
    Held,
    Released,
    Deleted,
}

impl Folder {
    pub fn name(self) -> &'static str {
        match self {
            Folder::Held => "held",
            Folder::Released => "released",
            Folder::Deleted => "deleted",
        }
    }
}

/// A held message with its verdict.
#[derive(Debug, Clone)]
pub struct HeldMessage {
    pub id: QuarantineId,
    pub verdict: Verdict,
    /// The message exactly as received, with the Received line Gatehouse added.
    pub raw: Vec<u8>,
}

/// The quarantine could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum QuarantineError {
    #[error(transparent)]
    InvalidId(#[from] InvalidId),
    #[error(
        "no held message with id {id} in {folder}: it may have been released or deleted already"
    )]
    NotFound { id: QuarantineId, folder: PathBuf },
    #[error(
        "held message {id} is being released by another process; wait for it to finish and list the quarantine again"
    )]
    Busy { id: QuarantineId },
    #[error(
        "held message {id} has a verdict but no message file {path}, so it cannot be released; delete it to remove the verdict"
    )]
    MessageMissing { id: QuarantineId, path: PathBuf },
    #[error("quarantine file {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("quarantine verdict {path} is not valid verdict JSON: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
}

impl QuarantineError {
    /// Returns true when the caller passed an invalid id, false for storage failures.
    pub fn is_invalid_input(&self) -> bool {
        matches!(self, QuarantineError::InvalidId(_))
    }
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> QuarantineError + '_ {
    move |source| QuarantineError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The exclusive right to act on one held message, from [`Quarantine::lock`].
#[derive(Debug)]
pub struct HeldLock {
    _file: fs::File,
}

/// A released message the graph has not learned yet, or why its files
/// could not be read.
#[derive(Debug)]
pub struct UnlearnedRelease {
    pub id: QuarantineId,
    pub message: Result<HeldMessage, QuarantineError>,
}

/// One quarantine directory.
#[derive(Debug, Clone)]
pub struct Quarantine {
    root: PathBuf,
}

impl Quarantine {
    /// Opens the quarantine at `root`, creating it and its folders (mode 0700) when absent.
    pub fn open(root: &Path) -> Result<Quarantine, QuarantineError> {
        durable::create_folder(root).map_err(io_error(root))?;
        for folder in [Folder::Held, Folder::Released, Folder::Deleted] {
            let path = root.join(folder.name());
            durable::create_folder(&path).map_err(io_error(&path))?;
        }
        Ok(Quarantine {
            root: root.to_owned(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Returns the path of a message's `.eml` file in `folder`.
    pub fn message_path(&self, folder: Folder, id: QuarantineId) -> PathBuf {
        self.root.join(folder.name()).join(format!("{id}.eml"))
    }

    /// Returns the path of a message's verdict in `folder`.
    pub fn verdict_path(&self, folder: Folder, id: QuarantineId) -> PathBuf {
        self.root.join(folder.name()).join(format!("{id}.json"))
    }

    /// Stores a message and its verdict durably; the id is the verdict's.
    ///
    /// The `.eml` is written before the `.json`, and listing reads the `.json`
    /// files, so a message appears in the list only once both are on disk.
    /// When this returns `Ok`, both files and their folder entries are fsynced.
    pub fn hold(&self, verdict: &Verdict, raw: &[u8]) -> Result<QuarantineId, QuarantineError> {
        let id = QuarantineId::parse(&verdict.id)?;
        let folder = self.root.join(Folder::Held.name());
        let json = serde_json::to_vec_pretty(verdict).map_err(|source| QuarantineError::Json {
            path: self.verdict_path(Folder::Held, id),
            source,
        })?;

        durable::write_atomic(&folder, &format!("{id}.eml"), raw)
            .map_err(io_error(&self.message_path(Folder::Held, id)))?;
        durable::write_atomic(&folder, &format!("{id}.json"), &json)
            .map_err(io_error(&self.verdict_path(Folder::Held, id)))?;
        Ok(id)
    }

    /// Tidies what a crash left in `held/`, and returns the counts.
    ///
    /// A process killed inside [`Quarantine::hold`] leaves a temporary file
    /// or an `.eml` without its verdict. The client never got a 250 for it,
    /// so it was not lost, but nothing lists it. A process killed inside a
    /// release or delete leaves the `.eml` behind a verdict that already
    /// moved. Temporary files older than `min_age` are removed. A verdict-less
    /// `.eml` whose verdict is in `released/` or `deleted/` follows it there,
    /// which finishes the move. Any other verdict-less `.eml` older than
    /// `min_age` moves to `unfinished/`, where a person can still read it.
    /// A message locked by a release in progress is left alone, and so is
    /// anything younger than `min_age`, which another gateway sharing the
    /// folder may still be writing.
    pub fn sweep(&self, min_age: std::time::Duration) -> Result<Sweep, QuarantineError> {
        let held = self.root.join(Folder::Held.name());
        let mut sweep = Sweep::default();
        let old_enough = |path: &Path| {
            fs::metadata(path)
                .and_then(|metadata| metadata.modified())
                .ok()
                .and_then(|modified| modified.elapsed().ok())
                .is_some_and(|age| age >= min_age)
        };
        let mut names: Vec<String> = fs::read_dir(&held)
            .map_err(io_error(&held))?
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .collect();
        names.sort();
        for name in names {
            let path = held.join(&name);
            if name.starts_with(durable::TEMP_PREFIX) {
                if old_enough(&path) {
                    fs::remove_file(&path).map_err(io_error(&path))?;
                    sweep.temporary_removed += 1;
                }
                continue;
            }
            let Some(id) = name
                .strip_suffix(".eml")
                .and_then(|stem| QuarantineId::parse(stem).ok())
            else {
                continue;
            };
            if self.verdict_path(Folder::Held, id).exists() {
                continue;
            }
            let Ok(file) = fs::File::open(&path) else {
                continue;
            };
            if file.try_lock().is_err() || self.verdict_path(Folder::Held, id).exists() {
                continue;
            }
            let finished = [Folder::Released, Folder::Deleted]
                .into_iter()
                .find(|folder| self.verdict_path(*folder, id).exists());
            let target = match finished {
                Some(folder) => {
                    sweep.moves_finished += 1;
                    self.message_path(folder, id)
                }
                None if old_enough(&path) => {
                    let unfinished = self.root.join(UNFINISHED);
                    durable::create_folder(&unfinished).map_err(io_error(&unfinished))?;
                    sweep.unfinished_moved += 1;
                    unfinished.join(&name)
                }
                None => continue,
            };
            durable::move_durably(&path, &target).map_err(io_error(&path))?;
            // A leftover is held mail, so only the service user may read it.
            durable::make_private(&target).map_err(io_error(&target))?;
        }
        Ok(sweep)
    }

    /// Counts the held messages, by their verdict files.
    pub fn held_count(&self) -> Result<usize, QuarantineError> {
        Ok(self.ids_in(Folder::Held, ".json")?.len())
    }

    /// Takes the exclusive right to release or delete `id` until the lock is dropped.
    ///
    /// The lock is an advisory `flock` on `held/<id>.eml`, so a second
    /// `gatehouse quarantine release` of the same id, in this process or
    /// another, gets [`QuarantineError::Busy`] instead of delivering the
    /// message twice. The kernel drops the lock when its holder dies, so a
    /// crash leaves nothing stale behind. A verdict whose message file is
    /// missing is locked through `held/<id>.json`, so that it can be deleted.
    pub fn lock(&self, id: QuarantineId) -> Result<HeldLock, QuarantineError> {
        let mut path = self.message_path(Folder::Held, id);
        let file = match fs::File::open(&path) {
            Ok(file) => file,
            Err(source) if source.kind() == io::ErrorKind::NotFound => {
                path = self.verdict_path(Folder::Held, id);
                fs::File::open(&path).map_err(|source| self.not_found_or_io(id, &path, source))?
            }
            Err(source) => return Err(self.not_found_or_io(id, &path, source)),
        };
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(QuarantineError::Busy { id }),
            Err(fs::TryLockError::Error(source)) => {
                return Err(QuarantineError::Io { path, source });
            }
        }
        // Another process may have released the message between the open and
        // the lock; it moves the verdict first, so a missing verdict means gone.
        let verdict = self.verdict_path(Folder::Held, id);
        if !verdict.exists() {
            return Err(QuarantineError::NotFound {
                id,
                folder: self.root.join(Folder::Held.name()),
            });
        }
        Ok(HeldLock { _file: file })
    }

    /// Lists the verdicts of held messages, oldest first (UUIDv7 order).
    ///
    /// Returns an error in place of each verdict that cannot be read, so one
    /// damaged file does not hide the others. The outer error is for the
    /// folder itself.
    pub fn list(&self) -> Result<Vec<Result<Verdict, QuarantineError>>, QuarantineError> {
        let ids = self.ids_in(Folder::Held, ".json")?;
        Ok(ids.into_iter().map(|id| self.verdict(id)).collect())
    }

    /// Lists released messages whose release the graph has not learned yet, oldest first.
    ///
    /// The process that has the graph store open learns a release: the
    /// `release` command when it can open the store, else the running
    /// `gatehouse serve`.
    /// [`Quarantine::mark_release_learned`] records it as done.
    ///
    /// Returns an error with its id in place of each release whose files
    /// cannot be read, so one damaged release does not stop the others.
    pub fn unlearned_releases(&self) -> Result<Vec<UnlearnedRelease>, QuarantineError> {
        let learned = self.ids_in(Folder::Released, LEARNED_SUFFIX)?;
        let mut releases = Vec::new();
        for id in self.ids_in(Folder::Released, ".json")? {
            if learned.binary_search(&id).is_ok() {
                continue;
            }
            releases.push(UnlearnedRelease {
                id,
                message: self.load_release(id),
            });
        }
        Ok(releases)
    }

    fn load_release(&self, id: QuarantineId) -> Result<HeldMessage, QuarantineError> {
        let verdict_path = self.verdict_path(Folder::Released, id);
        let bytes = fs::read(&verdict_path).map_err(io_error(&verdict_path))?;
        let verdict = serde_json::from_slice(&bytes).map_err(|source| QuarantineError::Json {
            path: verdict_path,
            source,
        })?;
        let message_path = self.message_path(Folder::Released, id);
        let raw = fs::read(&message_path).map_err(io_error(&message_path))?;
        Ok(HeldMessage { id, verdict, raw })
    }

    /// Records that the graph learned the release of `id`, as the empty file `released/<id>.learned`.
    pub fn mark_release_learned(&self, id: QuarantineId) -> Result<(), QuarantineError> {
        let folder = self.root.join(Folder::Released.name());
        let name = format!("{id}{LEARNED_SUFFIX}");
        durable::write_atomic(&folder, &name, b"").map_err(io_error(&folder.join(&name)))
    }

    /// Returns the sorted ids of the files in `folder` whose names end in `suffix`.
    fn ids_in(&self, folder: Folder, suffix: &str) -> Result<Vec<QuarantineId>, QuarantineError> {
        let path = self.root.join(folder.name());
        let mut ids = Vec::new();
        for entry in fs::read_dir(&path).map_err(io_error(&path))? {
            let entry = entry.map_err(io_error(&path))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            // Temporary files of an interrupted write and foreign files are skipped.
            let Some(stem) = name.strip_suffix(suffix) else {
                continue;
            };
            if let Ok(id) = QuarantineId::parse(stem) {
                ids.push(id);
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// Reads the verdict of a held message.
    pub fn verdict(&self, id: QuarantineId) -> Result<Verdict, QuarantineError> {
        let path = self.verdict_path(Folder::Held, id);
        let bytes = fs::read(&path).map_err(|source| self.not_found_or_io(id, &path, source))?;
        serde_json::from_slice(&bytes).map_err(|source| QuarantineError::Json { path, source })
    }

    /// Reads a held message and its verdict.
    pub fn load(&self, id: QuarantineId) -> Result<HeldMessage, QuarantineError> {
        let verdict = self.verdict(id)?;
        let path = self.message_path(Folder::Held, id);
        let raw = fs::read(&path).map_err(|source| {
            if source.kind() == io::ErrorKind::NotFound {
                QuarantineError::MessageMissing {
                    id,
                    path: path.clone(),
                }
            } else {
                QuarantineError::Io {
                    path: path.clone(),
                    source,
                }
            }
        })?;
        Ok(HeldMessage { id, verdict, raw })
    }

    /// Moves a held message to `released/` and records it in the audit log.
    ///
    /// Call this after the message was delivered: a crash in between leaves it
    /// held, so it can be released again, rather than lost.
    pub fn release(&self, id: QuarantineId, user: &str) -> Result<(), QuarantineError> {
        self.move_to(id, Folder::Released)?;
        self.audit(user, "release", id)
    }

    /// Moves a held message to `deleted/` and records it in the audit log.
    /// A verdict whose message file is missing is deleted too.
    pub fn delete(&self, id: QuarantineId, user: &str) -> Result<(), QuarantineError> {
        self.move_to(id, Folder::Deleted)?;
        self.audit(user, "delete", id)
    }

    fn move_to(&self, id: QuarantineId, folder: Folder) -> Result<(), QuarantineError> {
        // The verdict goes first, so the message leaves the list before its
        // `.eml` leaves the folder.
        let verdict = self.verdict_path(Folder::Held, id);
        durable::move_durably(&verdict, &self.verdict_path(folder, id))
            .map_err(|source| self.not_found_or_io(id, &verdict, source))?;
        let message = self.message_path(Folder::Held, id);
        match durable::move_durably(&message, &self.message_path(folder, id)) {
            Ok(()) => Ok(()),
            Err(source)
                if source.kind() == io::ErrorKind::NotFound && folder == Folder::Deleted =>
            {
                Ok(())
            }
            Err(source) => Err(self.not_found_or_io(id, &message, source)),
        }
    }

    fn audit(&self, user: &str, command: &str, id: QuarantineId) -> Result<(), QuarantineError> {
        let time = OffsetDateTime::now_utc()
            .format(&Rfc3339)
            .unwrap_or_else(|_| "unknown-time".to_owned());
        // The user name comes from the caller's environment, so it may claim
        // anyone. The uid is the process's own, which the caller cannot choose.
        let user: String = audit_value(user).chars().take(64).collect();
        let uid = process_uid().map_or_else(|| "unknown".to_owned(), |uid| uid.to_string());
        let line = format!("{time} user={user} command={command} id={id} uid={uid}\n");
        let path = self.root.join("audit.log");
        durable::append_line(&path, &line).map_err(io_error(&path))
    }

    /// Records in the audit log that an endpoint alert names a message that
    /// Gatehouse delivered, with the id of its verdict, so that a person can
    /// find the message and recall it. `id` is that verdict id; the message
    /// itself was never held.
    pub fn audit_endpoint_alert(
        &self,
        id: QuarantineId,
        alert_id: &str,
        message_id: &str,
    ) -> Result<(), QuarantineError> {
        let time = OffsetDateTime::now_utc()
            .format(&Rfc3339)
            .unwrap_or_else(|_| "unknown-time".to_owned());
        let line = format!(
            "{time} user=gatehouse command=endpoint-alert id={id} alert={} message_id={}\n",
            audit_value(alert_id),
            audit_value(message_id)
        );
        let path = self.root.join("audit.log");
        durable::append_line(&path, &line).map_err(io_error(&path))
    }

    fn not_found_or_io(&self, id: QuarantineId, path: &Path, source: io::Error) -> QuarantineError {
        if source.kind() == io::ErrorKind::NotFound {
            QuarantineError::NotFound {
                id,
                folder: self.root.join(Folder::Held.name()),
            }
        } else {
            QuarantineError::Io {
                path: path.to_owned(),
                source,
            }
        }
    }
}

/// Returns the effective user id of this process: the owner of `/proc/self`
/// on Linux, `None` where that folder does not exist.
fn process_uid() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;

    fs::metadata("/proc/self")
        .ok()
        .map(|metadata| metadata.uid())
}

/// Makes a value from outside safe for one `key=value` field of the audit
/// log: whitespace, control characters and `=` become `_`, and at most 256
/// characters are kept.
fn audit_value(value: &str) -> String {
    value
        .chars()
        .map(|c| {
            if c.is_whitespace() || c.is_control() || c == '=' {
                '_'
            } else {
                c
            }
        })
        .take(256)
        .collect()
}
