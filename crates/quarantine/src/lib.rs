//! Held messages on disk: `held/<id>.eml` beside `held/<id>.json`.
//!
//! Owned here: durable writes (temporary file, fsync, rename, fsync of the
//! folder), listing, moving to `released/` or `deleted/`, id validation before
//! any path is built, and the append-only `audit.log`. Re-injecting a
//! released message upstream is left to the caller.
