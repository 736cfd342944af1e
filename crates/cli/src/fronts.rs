//! Wiring of the fronts into `gatehouse serve`: the SMTP proxy, the milter front, or both.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use gatehouse_smtp::Gateway;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Config;

/// Runs the SMTP proxy, the milter front, or both, on one shared gateway
/// until `shutdown` completes. Both stop on the same signal.
pub(crate) async fn serve(
    config: &Config,
    gateway: Arc<Gateway>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    tracing::info!(
        config = %config.origin(),
        smtp_proxy = config.smtp_enabled,
        milter = config.milter_listen.is_some(),
        "starting"
    );
    let (stop, stopped) = watch::channel(false);
    let signal = async move {
        shutdown.await;
        let _ = stop.send(true);
    };
    let when_stopped = |mut stopped: watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };

    let smtp = async {
        if !config.smtp_enabled {
            return Ok(());
        }
        let listener = bind(config.smtp.listen).await?;
        gatehouse_smtp::serve(
            listener,
            Arc::clone(&gateway),
            when_stopped(stopped.clone()),
        )
        .await
        .context("SMTP proxy failed")
    };
    let milter = async {
        let Some(listen) = config.milter_listen else {
            return Ok(());
        };
        let listener = bind(listen).await?;
        // The SMTP proxy learns releases itself; alone, the milter front does.
        let learn_releases = !config.smtp_enabled;
        gatehouse_milter::serve(
            listener,
            Arc::clone(&gateway),
            config.milter_limits.clone(),
            learn_releases,
            when_stopped(stopped.clone()),
        )
        .await
        .context("milter front failed")
    };

    let fronts = async { tokio::try_join!(smtp, milter).map(|_| ()) };
    tokio::pin!(fronts);
    tokio::select! {
        result = &mut fronts => result,
        () = signal => fronts.await,
    }
}

async fn bind(address: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))
}
