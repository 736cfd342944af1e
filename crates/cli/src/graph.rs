//! `gatehouse graph stats`.

use std::io::Write;

use gatehouse_graph::GraphStore;

use crate::cli::{Format, GraphCommand};
use crate::config::Config;
use crate::setup::{self, GraphAccess};

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
    let graph = setup::open_graph(&path, GraphAccess::Read)?;
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
