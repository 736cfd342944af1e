//! The correspondence graph: who writes to whom, from where, with what.
//!
//! [`GraphStore`] is the interface the engine uses: [`GraphStore::observe`]
//! records one message that taught the graph (delivered, outbound, released or
//! imported) and [`GraphStore::lookup`] returns how familiar the parts of a
//! new message are. [`RedbGraph`] implements it on one redb file; a networked
//! store can implement the same trait later.

mod model;
mod store;

pub use model::{Direction, Familiarity, Lookup, Observation, Stats};
pub use store::{GraphError, GraphStore, RedbGraph};
