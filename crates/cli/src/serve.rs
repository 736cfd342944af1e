//! `gatehouse serve`: the SMTP proxy until SIGINT or SIGTERM.

use std::sync::Arc;

use anyhow::Context;
use gatehouse_smtp::{Delivery, Gateway};
use tokio::net::TcpListener;

use crate::UsageError;
use crate::config::Config;
use crate::setup;

pub(crate) fn run(config: &Config) -> anyhow::Result<()> {
    // TODO: the milter front is not built yet. Until it is, a config that
    // sets it is rejected rather than silently ignored.
    if let Some(listen) = config.milter_listen {
        return Err(UsageError(format!(
            "invalid config {}: `milter.listen` = \"{listen}\" asks for the milter front, which this build does not have; remove [milter] and use the SMTP proxy",
            config.origin()
        ))
        .into());
    }

    let engine = setup::engine(config)?;
    let quarantine = setup::quarantine(config)?;
    let delivery = setup::delivery(config);
    match &delivery {
        Delivery::Upstream(upstream) => {
            tracing::info!(upstream = %upstream.address, "relaying to the upstream MTA")
        }
        Delivery::Maildir(maildir) => {
            tracing::info!(maildir = %maildir.path.display(), "no upstream configured; delivering into the Maildir")
        }
    }
    let gateway = Gateway::new(
        Arc::new(engine),
        quarantine,
        delivery,
        &config.smtp.hostname,
        config.smtp.limits.clone(),
    );

    setup::runtime()?.block_on(async {
        let listener = TcpListener::bind(config.smtp.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.smtp.listen))?;
        gatehouse_smtp::serve(listener, Arc::new(gateway), shutdown_signal()).await?;
        Ok(())
    })
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
