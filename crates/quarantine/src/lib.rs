//! Held messages on disk: `held/<id>.eml` beside `held/<id>.json`.
//!
//! Owned here: durable writes (temporary file, fsync, rename, fsync of the
//! folder), listing, moving to `released/` or `deleted/`, id validation before
//! any path is built, and the append-only `audit.log`. The central types are
//! [`Quarantine`] (one quarantine directory) and [`QuarantineId`] (a validated
//! UUIDv7). Re-injecting a released message upstream is left to the caller,
//! which delivers it first and then calls [`Quarantine::release`].
//!
//! Layout, relative to the quarantine directory:
//!
//! ```text
//! held/<id>.eml       the message exactly as received, with the Received line Gatehouse added
//! held/<id>.json      the verdict, with the envelope
//! released/<id>.*     moved here by `release`; `<id>.learned` once the graph learned it
//! deleted/<id>.*      moved here by `delete`
//! audit.log           one line per release or delete: time, user, command, id, uid
//! ```
//!
//! Folders are created with mode 0700 and files with mode 0600, because held
//! mail is often the most sensitive mail an organisation receives.

mod durable;
mod id;
mod store;

pub use id::QuarantineId;
pub use store::{
    Folder, HeldLock, HeldMessage, Quarantine, QuarantineError, Sweep, UNFINISHED, UnlearnedRelease,
};
