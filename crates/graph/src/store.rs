use std::path::Path;

use crate::{Familiarity, Lookup, Observation, Stats};

/// Could not read or write the graph. A lookup that finds nothing is not an error.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("graph store at {path}: {source}")]
    Open {
        path: String,
        source: redb::DatabaseError,
    },
    #[error("graph store: {0}")]
    Storage(String),
}

/// The learned graph, as the engine sees it.
pub trait GraphStore: Send + Sync {
    /// Records one message. Learning the same message twice counts once.
    fn observe(&self, observation: &Observation) -> Result<(), GraphError>;
    /// Returns how familiar the parts of a message are.
    fn lookup(&self, lookup: &Lookup) -> Result<Familiarity, GraphError>;
    fn stats(&self) -> Result<Stats, GraphError>;
}

/// The graph in one redb file.
pub struct RedbGraph {
    db: redb::Database,
}

impl RedbGraph {
    /// Opens the store at `path`, creating it when absent.
    pub fn open(path: &Path) -> Result<RedbGraph, GraphError> {
        let db = redb::Database::create(path).map_err(|source| GraphError::Open {
            path: path.display().to_string(),
            source,
        })?;
        Ok(RedbGraph { db })
    }
}

impl GraphStore for RedbGraph {
    fn observe(&self, observation: &Observation) -> Result<(), GraphError> {
        let _ = (&self.db, observation);
        Ok(())
    }

    fn lookup(&self, lookup: &Lookup) -> Result<Familiarity, GraphError> {
        let _ = lookup;
        Ok(Familiarity::default())
    }

    fn stats(&self) -> Result<Stats, GraphError> {
        Ok(Stats::default())
    }
}
