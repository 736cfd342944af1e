//! `gatehouse graph stats`.

use std::io::Write;

use anyhow::Context;
use gatehouse_graph::{GraphStore, RedbGraph};

use crate::cli::{Format, GraphCommand};
use crate::config::Config;

pub(crate) fn run(config: &Config, command: GraphCommand) -> anyhow::Result<()> {
    let format = match command {
        GraphCommand::Stats { format } => format,
        GraphCommand::Explain { address, format } => {
            return crate::learned::explain(config, &address, format);
        }
        GraphCommand::Responses { lift, format } => {
            return crate::learned::responses(config, lift.as_deref(), format);
        }
    };
    let path = config.graph_path();
    if !path.exists() {
        anyhow::bail!(
            "no graph store at {}; run `gatehouse learn PATH` or `gatehouse serve` first",
            path.display()
        );
    }
    let graph = RedbGraph::open(&path).with_context(|| {
        format!(
            "cannot open the graph store {}; a running `gatehouse serve` keeps it open",
            path.display()
        )
    })?;
    let stats = graph.stats()?;
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => writeln!(out, "{}", serde_json::to_string(&stats)?)?,
        Format::Text => {
            // The field names of the stats, in their declared order.
            let value = serde_json::to_value(&stats)?;
            if let Some(fields) = value.as_object() {
                for (name, count) in fields {
                    writeln!(out, "{name}: {count}")?;
                }
            }
        }
    }
    Ok(())
}
