//! What `gatehouse serve` runs beside the fronts: STARTTLS and tagging
//! settings on the gateway, the Prometheus metrics listener, and policy
//! reload on SIGHUP. Also `gatehouse check-config`.

use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use gatehouse_engine::Engine;
use gatehouse_smtp::{Delivery, Gateway};
use tokio::net::TcpListener;

use crate::UsageError;
use crate::config::Config;
use crate::setup;

/// Builds the gateway every front shares, with the STARTTLS certificate and
/// the tagging options of the config.
pub(crate) fn gateway(
    config: &Config,
    engine: Engine,
    quarantine: gatehouse_quarantine::Quarantine,
    delivery: Delivery,
) -> anyhow::Result<Gateway> {
    let mut gateway = Gateway::new(
        Arc::new(engine),
        quarantine,
        delivery,
        &config.smtp.hostname,
        config.smtp.limits.clone(),
    )
    .with_tagging(config.tagging.clone())
    .with_xforward_hosts(config.smtp.xforward_hosts.clone())
    .with_relay_networks(config.local_networks.clone());
    if let Some(acceptor) = tls_acceptor(config)? {
        gateway = gateway.with_tls(acceptor);
    }
    Ok(gateway)
}

/// Loads the STARTTLS certificate, with an error that names the config keys.
fn tls_acceptor(config: &Config) -> anyhow::Result<Option<tokio_rustls::TlsAcceptor>> {
    let Some(files) = &config.smtp.tls else {
        return Ok(None);
    };
    gatehouse_smtp::tls::acceptor(&files.certificate, &files.key)
        .map(Some)
        .map_err(|err| {
            UsageError(format!(
                "invalid config {}: `smtp.tls_certificate` and `smtp.tls_key`: {err}",
                config.origin()
            ))
            .into()
        })
}

/// Starts the metrics listener, when configured, and the SIGHUP handler on the current runtime.
///
/// Both run until the runtime stops. A bind failure is returned, so a
/// metrics address in use stops `serve` at start rather than going unnoticed.
///
/// `attach` gives each engine a reload builds what the first engine got
/// beside its policy (the integrations' enrichment and observer).
pub(crate) async fn start(
    config: &Config,
    gateway: &Arc<Gateway>,
    attach: impl Fn(Engine) -> Engine + Send + Sync + 'static,
) -> anyhow::Result<()> {
    if let Some(address) = config.metrics_listen {
        if !address.ip().is_loopback() {
            tracing::warn!(
                metrics_listen = %address,
                "the metrics listener is not on a loopback address; anyone who reaches it can read the counters"
            );
        }
        let listener = TcpListener::bind(address)
            .await
            .with_context(|| format!("cannot listen on {address} (`gateway.metrics_listen`)"))?;
        let metrics = Arc::clone(gateway.metrics());
        tokio::spawn(gatehouse_smtp::serve_metrics(
            listener,
            metrics,
            std::future::pending(),
        ));
    }
    tokio::spawn(reload_on_sighup(
        config.clone(),
        Arc::clone(gateway),
        Arc::new(attach),
    ));
    Ok(())
}

/// Reloads the policy file on every SIGHUP and swaps the engine.
///
/// Sessions stay open: analyses already running finish with the old policy,
/// and the next message gets the new one. A policy that fails validation is
/// logged and the old one stays in force. Only the policy is reloaded; other
/// config changes need a restart.
async fn reload_on_sighup(
    config: Config,
    gateway: Arc<Gateway>,
    attach: Arc<dyn Fn(Engine) -> Engine + Send + Sync>,
) {
    use tokio::signal::unix::{SignalKind, signal};

    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(hangups) => hangups,
        Err(err) => {
            tracing::warn!(error = %err, "cannot listen for SIGHUP; policy reload is off");
            return;
        }
    };
    while hangups.recv().await.is_some() {
        let policy_file = config
            .policy
            .as_ref()
            .map_or_else(|| "embedded".to_owned(), |path| path.display().to_string());
        let config = config.clone();
        let graph = Arc::clone(gateway.engine().graph());
        let attach = Arc::clone(&attach);
        let rebuilt = tokio::task::spawn_blocking(move || {
            let policy = setup::policy(&config)?;
            anyhow::Ok(attach(setup::engine_with(&config, policy, graph)?))
        })
        .await;
        match rebuilt {
            Ok(Ok(engine)) => {
                gateway.replace_engine(Arc::new(engine));
                tracing::info!(policy = %policy_file, "policy reloaded");
            }
            Ok(Err(err)) => {
                tracing::error!(policy = %policy_file, error = format!("{err:#}"), "policy reload failed; the previous policy stays in force");
            }
            Err(err) => {
                tracing::error!(policy = %policy_file, error = %err, "policy reload failed; the previous policy stays in force");
            }
        }
    }
}

/// `gatehouse check-config`: validates the config, the policy and the STARTTLS files, then prints a summary.
pub(crate) fn check_config(config: &Config) -> anyhow::Result<()> {
    let policy = setup::policy_quietly(config)?;
    tls_acceptor(config)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "config {} is valid", config.origin())?;
    let policy_name = config.policy.as_ref().map_or_else(
        || "embedded default".to_owned(),
        |path| path.display().to_string(),
    );
    writeln!(
        out,
        "policy: {policy_name} (tag at {}, hold at {})",
        policy.scoring.thresholds.tag, policy.scoring.thresholds.hold
    )?;
    let unweighted = policy.unweighted_signals();
    if !unweighted.is_empty() {
        writeln!(
            out,
            "warning: {} of {} signals have no weight and never add to the score: {}",
            unweighted.len(),
            gatehouse_policy::SIGNAL_IDS.len(),
            unweighted.join(", ")
        )?;
    }
    if config.smtp_enabled {
        let upstream = config
            .smtp
            .upstream
            .clone()
            .unwrap_or_else(|| format!("Maildir {}", config.delivered_path().display()));
        let tls = if config.smtp.tls.is_some() {
            "with STARTTLS"
        } else {
            "without STARTTLS"
        };
        writeln!(
            out,
            "smtp: listen {} {tls}, deliver to {upstream}",
            config.smtp.listen
        )?;
    }
    if let Some(listen) = config.milter_listen {
        writeln!(out, "milter: listen {listen}")?;
    }
    if let Some(listen) = config.metrics_listen {
        writeln!(out, "metrics: http://{listen}/metrics")?;
    }
    Ok(())
}
