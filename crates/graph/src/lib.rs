//! The correspondence graph: who writes to whom, from where, with what.
//!
//! - [`GraphStore`] is the interface the engine uses: [`GraphStore::observe`]
//!   records one message that taught the graph (delivered, outbound, released,
//!   imported, or held for campaign windows only) and [`GraphStore::lookup`]
//!   returns how familiar the parts of a new message are, as [`Fact`]s with
//!   first seen, last seen and counts per [`Direction`].
//! - [`RedbGraph`] implements it on one redb file; a networked store such as
//!   Redis can implement the same trait.
//! - [`keys`] normalises addresses, domains, display names and networks, so
//!   that the engine and every store spell each entity the same way.
//!
//! Which facts fire which signals, and with what weight, is left to
//! `gatehouse-engine` and `gatehouse-policy`.

pub mod keys;

mod model;
mod redb_store;
mod store;

pub use model::{
    AddressReport, AttachmentKey, Direction, Escalation, Fact, Familiarity, Known, Learning,
    Lookup, NetworkFamiliarity, Observation, Response, ScriptFamiliarity, Stats, TypeFamiliarity,
    WindowEvent, WindowSummary,
};
pub use redb_store::RedbGraph;
pub use store::{GraphError, GraphStore, Limits};
