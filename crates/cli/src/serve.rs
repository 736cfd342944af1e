//! `gatehouse serve`: the SMTP proxy, the milter front or both, until SIGINT or SIGTERM.

use std::sync::Arc;

use gatehouse_smtp::Delivery;

use crate::config::Config;
use crate::setup::GraphAccess;
use crate::{fronts, integrations, operations, setup};

pub(crate) fn run(config: &Config) -> anyhow::Result<()> {
    let runtime = setup::runtime()?;
    let integrations = integrations::build(config, &setup::policy(config)?, runtime.handle())?;
    let engine = integrations.attach(setup::engine(config, GraphAccess::Write)?);
    let quarantine = setup::quarantine(config)?;
    sweep(&quarantine);
    let delivery = setup::delivery(config);
    match &delivery {
        Delivery::Upstream(upstream) => {
            tracing::info!(upstream = %upstream.address, "relaying to the upstream MTA")
        }
        Delivery::Maildir(maildir) => {
            tracing::info!(maildir = %maildir.path.display(), "no upstream configured; delivering into the Maildir")
        }
    }
    let gateway = Arc::new(operations::gateway(config, engine, quarantine, delivery)?);

    let attach = integrations.attacher();
    let running = integrations.start(runtime.handle());
    let served = runtime.block_on(async {
        operations::start(config, &gateway, attach).await?;
        fronts::serve(config, Arc::clone(&gateway), shutdown_signal()).await
    });
    runtime.block_on(running.stop());
    served
}

/// Minimum age of a leftover that the start-up sweep tidies. A younger one
/// may belong to another gateway that shares the folder and is still
/// writing. A hold takes milliseconds, so ten minutes leaves a wide margin.
const SWEEP_MIN_AGE: std::time::Duration = std::time::Duration::from_secs(600);

fn sweep(quarantine: &gatehouse_quarantine::Quarantine) {
    match quarantine.sweep(SWEEP_MIN_AGE) {
        Ok(sweep) if sweep == gatehouse_quarantine::Sweep::default() => {}
        Ok(sweep) => tracing::warn!(
            temporary_removed = sweep.temporary_removed,
            moves_finished = sweep.moves_finished,
            unfinished_moved = sweep.unfinished_moved,
            folder = %quarantine.root().join(gatehouse_quarantine::UNFINISHED).display(),
            "tidied the quarantine after a crash"
        ),
        Err(err) => tracing::warn!(error = %err, "cannot tidy the quarantine"),
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for SIGTERM; stop with SIGINT");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = interrupt => tracing::info!("SIGINT received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}
