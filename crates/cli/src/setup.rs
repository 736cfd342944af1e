//! Builds the library components from the config: logging, engine, delivery, quarantine.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use gatehouse_engine::{Engine, GeoIp};
use gatehouse_graph::{GraphError, RedbGraph};
use gatehouse_policy::Policy;
use gatehouse_quarantine::Quarantine;
use gatehouse_smtp::{Delivery, Maildir, Upstream};
use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogFormat};

/// Logs to stderr, as text or one JSON object per line. `RUST_LOG`
/// overrides the level: `info` for `serve`, where each decision is one line,
/// and `warn` for the other commands, whose output is on stdout.
pub(crate) fn logging(serving: bool, format: LogFormat) {
    let default = if serving { "info" } else { "warn" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().with_current_span(true).init(),
    }
}

pub(crate) fn policy(config: &Config) -> anyhow::Result<Policy> {
    let policy = policy_quietly(config)?;
    let unweighted = policy.unweighted_signals();
    if let Some(path) = &config.policy
        && !unweighted.is_empty()
    {
        tracing::warn!(
            policy = %path.display(),
            signals = %unweighted.join(","),
            "signals without a weight never add to the score"
        );
    }
    Ok(policy)
}

/// Loads the policy like [`policy`], without logging its warnings, for
/// `check-config`, which prints them.
pub(crate) fn policy_quietly(config: &Config) -> anyhow::Result<Policy> {
    match &config.policy {
        Some(path) => Ok(Policy::load(path)?),
        None => Ok(Policy::embedded_default()),
    }
}

/// Whether a command only reads the graph store or also teaches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GraphAccess {
    Read,
    Write,
}

/// Opens the graph store and builds the engine.
pub(crate) fn engine(config: &Config, access: GraphAccess) -> anyhow::Result<Engine> {
    let policy = policy(config)?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data_dir {}", config.data_dir.display()))?;
    let graph = open_graph(&config.graph_path(), access)?;
    engine_with(config, policy, Arc::new(graph))
}

/// Opens the graph store at `path`, creating it when absent.
///
/// redb lets one process at a time open a store, and a running
/// `gatehouse serve` keeps its store open. A command that only reads then
/// reads a copy taken now, which redb recovers to the last durable commit,
/// so it may lack the last few seconds of learning. For a command that
/// teaches the graph, [`GraphError::InUse`] is the error.
pub(crate) fn open_graph(path: &Path, access: GraphAccess) -> anyhow::Result<RedbGraph> {
    match RedbGraph::open(path) {
        Ok(graph) => Ok(graph),
        Err(GraphError::InUse { .. }) if access == GraphAccess::Read => {
            eprintln!(
                "note: another process (a running `gatehouse serve`?) has the graph store {} open; reading a copy taken now",
                path.display()
            );
            open_copy(path)
        }
        Err(err) => Err(err.into()),
    }
}

/// Copies the store at `path` into a temporary folder and opens the copy,
/// or opens an empty store there when `path` does not exist. Writes go to
/// the copy only.
///
/// The folder is removed once the copy is open. On Unix an open file stays
/// readable and writable after its name is gone, so a command killed after
/// that leaves no copy behind.
pub(crate) fn open_copy(path: &Path) -> anyhow::Result<RedbGraph> {
    let scratch = tempfile::tempdir()
        .context("cannot create a temporary folder for a copy of the graph store")?;
    let copy = scratch.path().join("graph.redb");
    // NOTE: a store that `gatehouse serve` is writing is copied as it is on
    // disk at that moment. redb then recovers the copy to its last durable commit.
    if path.exists() {
        std::fs::copy(path, &copy)
            .with_context(|| format!("cannot copy the graph store {}", path.display()))?;
    }
    let graph = RedbGraph::open(&copy)
        .with_context(|| format!("cannot open a copy of the graph store {}", path.display()))?;
    drop(scratch);
    Ok(graph)
}

/// Builds the engine on a graph store that is already open, as a policy
/// reload does. The GeoIP databases are opened again each time, so a reload
/// picks up updated files.
pub(crate) fn engine_with(
    config: &Config,
    policy: Policy,
    graph: Arc<dyn gatehouse_graph::GraphStore>,
) -> anyhow::Result<Engine> {
    let mut engine = Engine::new(
        Arc::new(policy),
        graph,
        config.limits.clone(),
        config.local_domains.clone(),
    )
    .with_local_networks(config.local_networks.clone())
    .with_trusted_relays(config.trusted_relays.clone());
    if config.geoip_asn.is_some() || config.geoip_country.is_some() {
        let geoip = GeoIp::open(config.geoip_asn.as_deref(), config.geoip_country.as_deref())?;
        engine = engine.with_geoip(Arc::new(geoip));
    }
    Ok(engine)
}

pub(crate) fn quarantine(config: &Config) -> anyhow::Result<Quarantine> {
    Ok(Quarantine::open(&config.quarantine_dir)?)
}

/// Builds delivery to the upstream MTA when configured, else to the Maildir `data_dir/delivered`.
pub(crate) fn delivery(config: &Config) -> Delivery {
    match &config.smtp.upstream {
        Some(address) => Delivery::Upstream(Upstream {
            address: address.clone(),
            hostname: config.smtp.hostname.clone(),
            timeouts: config.smtp.limits.upstream.clone(),
        }),
        None => Delivery::Maildir(Maildir {
            path: config.delivered_path(),
            hostname: config.smtp.hostname.clone(),
        }),
    }
}

/// The name written to the quarantine audit log: the login name from the
/// environment (the invoking user under sudo), else `uid:N`.
pub(crate) fn current_user() -> String {
    use std::os::unix::fs::MetadataExt;

    ["SUDO_USER", "USER", "LOGNAME"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|value| !value.is_empty()))
        .or_else(|| {
            std::fs::metadata("/proc/self")
                .ok()
                .map(|metadata| format!("uid:{}", metadata.uid()))
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
