//! The `[integrations.*]` config sections, their start in `gatehouse serve`,
//! and `gatehouse integrations check`.
//!
//! - `[integrations.defender]`: Microsoft Defender alerts from the Graph
//!   Security API, polled by a task that keeps the alert index of
//!   `endpoint.alert` current. Its state is kept in `data_dir/defender/`.
//! - `[integrations.siem]`: every verdict as one JSON line to a file and,
//!   through a spool on disk, to Splunk HEC or a webhook.
//! - `[integrations.rdap]`: registration dates of new domains for
//!   `link.domain_young`, off unless `enabled = true`.
//!
//! Each section is read with unknown keys rejected; an error names the key.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use gatehouse_engine::Engine;
use gatehouse_integrations::baseline::NoveltyWeights;
use gatehouse_integrations::clock::{Clock, SystemClock};
use gatehouse_integrations::defender::{Alert, DefenderConfig, GraphClient};
use gatehouse_integrations::delivered::{DeliveredMessage, DeliveredMessages};
use gatehouse_integrations::enrich::GatehouseEnrichment;
use gatehouse_integrations::rdap::{DomainAgeChecker, RdapConfig};
use gatehouse_integrations::service::{DefenderService, GatehouseObserver, Recall, RecallLog};
use gatehouse_integrations::siem::{HttpForwarder, SiemConfig, SiemExporter};
use gatehouse_policy::Policy;
use gatehouse_quarantine::{Quarantine, QuarantineId};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use toml::Value;

use crate::config::{Config, ConfigError};
use crate::setup;

/// The subsections of `[integrations]`.
const SECTIONS: &[&str] = &["defender", "siem", "rdap"];

/// The settings of every configured integration.
#[derive(Debug, Clone, Default)]
pub(crate) struct IntegrationsConfig {
    pub(crate) defender: Option<DefenderConfig>,
    pub(crate) siem: Option<SiemConfig>,
    pub(crate) rdap: Option<RdapConfig>,
}

impl IntegrationsConfig {
    fn is_empty(&self) -> bool {
        self.defender.is_none() && self.siem.is_none() && self.rdap.is_none()
    }
}

/// Reads `[integrations]` from the config file at `path`; relative paths are
/// resolved against `base`, the file's folder.
pub(crate) fn parse(
    value: Option<&Value>,
    base: &Path,
    path: &Path,
) -> Result<IntegrationsConfig, ConfigError> {
    let invalid = |key: &str, problem: String, fix: &str| ConfigError::Invalid {
        path: path.to_owned(),
        key: key.to_owned(),
        problem,
        fix: fix.to_owned(),
    };
    let mut config = IntegrationsConfig::default();
    let Some(value) = value else {
        return Ok(config);
    };
    let Value::Table(table) = value else {
        return Err(invalid(
            "integrations",
            "is not a section".to_owned(),
            "write it as [integrations.defender], [integrations.siem] or [integrations.rdap]",
        ));
    };
    for name in table.keys() {
        if !SECTIONS.contains(&name.as_str()) {
            return Err(ConfigError::UnknownKey {
                path: path.to_owned(),
                key: format!("integrations.{name}"),
                fix:
                    "valid sections are integrations.defender, integrations.siem, integrations.rdap"
                        .to_owned(),
            });
        }
    }

    if let Some(section) = table.get("defender") {
        let defender: DefenderConfig = section_value(section, "integrations.defender", path)?;
        defender.validate().map_err(|problem| {
            invalid(
                "integrations.defender",
                problem,
                "see the Integrations section of the README",
            )
        })?;
        let mut defender = defender;
        defender.client_secret = defender.client_secret.relative_to(base);
        config.defender = Some(defender);
    }
    if let Some(section) = table.get("siem") {
        let siem: SiemConfig = section_value(section, "integrations.siem", path)?;
        siem.validate().map_err(|problem| {
            invalid(
                "integrations.siem",
                problem,
                "see the Integrations section of the README",
            )
        })?;
        config.siem = Some(siem.relative_to(base));
    }
    if let Some(section) = table.get("rdap") {
        let rdap: RdapConfig = section_value(section, "integrations.rdap", path)?;
        rdap.validate().map_err(|problem| {
            invalid(
                "integrations.rdap",
                problem,
                "see the Integrations section of the README",
            )
        })?;
        config.rdap = Some(rdap);
    }
    Ok(config)
}

/// Deserialises one section, naming the full key of the first error.
fn section_value<T: DeserializeOwned>(
    value: &Value,
    section: &str,
    path: &Path,
) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(value.clone()).map_err(|error| {
        let inner = error.path().to_string();
        let key = if inner == "." || inner.is_empty() {
            section.to_owned()
        } else {
            format!("{section}.{inner}")
        };
        ConfigError::Invalid {
            path: path.to_owned(),
            key,
            problem: error.inner().to_string(),
            fix: "check the key against the Integrations section of the README".to_owned(),
        }
    })
}

/// The integrations of one `gatehouse serve`, built and not yet running.
pub(crate) struct Integrations {
    enrichment: Option<Arc<GatehouseEnrichment>>,
    observer: Option<Arc<GatehouseObserver>>,
    defender: Option<DefenderService>,
    forwarder: Option<HttpForwarder>,
}

/// Writes alerts that name delivered messages to the quarantine audit log.
struct QuarantineRecall {
    quarantine: Quarantine,
}

impl RecallLog for QuarantineRecall {
    fn record(&self, alert: &Alert, message: &DeliveredMessage) -> Result<(), String> {
        let id = QuarantineId::parse(&message.verdict_id).map_err(|error| error.to_string())?;
        self.quarantine
            .audit_endpoint_alert(id, &alert.id, &message.message_id)
            .map_err(|error| error.to_string())
    }
}

/// Builds the configured integrations: opens the SIEM file and spool, reads
/// the Defender state from `data_dir/defender/`, and creates the RDAP
/// checker whose requests run on `runtime`.
pub(crate) fn build(
    config: &Config,
    policy: &Policy,
    runtime: &tokio::runtime::Handle,
) -> anyhow::Result<Integrations> {
    let settings = &config.integrations;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut integrations = Integrations {
        enrichment: None,
        observer: None,
        defender: None,
        forwarder: None,
    };
    if settings.is_empty() {
        return Ok(integrations);
    }

    let mut enrichment = GatehouseEnrichment::new();
    let mut observer = GatehouseObserver::new();
    if let Some(siem) = &settings.siem {
        let (exporter, forwarder) = SiemExporter::open(siem, Arc::clone(&clock))
            .context("cannot start the SIEM export of [integrations.siem]")?;
        observer = observer.with_siem(exporter);
        integrations.forwarder = forwarder;
    }
    if let Some(defender) = &settings.defender {
        let state_dir = config.data_dir.join("defender");
        let delivered = DeliveredMessages::open(
            &state_dir.join("delivered.jsonl"),
            defender.delivered.clone(),
            clock.now(),
        )
        .with_context(|| {
            format!(
                "cannot open the record of delivered messages in {}",
                state_dir.display()
            )
        })?;
        let delivered = Arc::new(Mutex::new(delivered));
        let recall = Recall {
            delivered: Arc::clone(&delivered),
            log: Arc::new(QuarantineRecall {
                quarantine: setup::quarantine(config)?,
            }),
        };
        let service = DefenderService::open(
            defender,
            novelty_weights(policy),
            &state_dir,
            Some(recall),
            Arc::clone(&clock),
        )
        .context("cannot start the Defender integration of [integrations.defender]")?;
        enrichment = enrichment.with_alerts(service.index());
        observer = observer.with_delivered(delivered, Some(service.delivery_reporter()));
        integrations.defender = Some(service);
    }
    if let Some(rdap) = settings.rdap.as_ref().filter(|rdap| rdap.enabled) {
        // NOTE: the registration dates are cached in memory only, so after a
        // restart each new domain is looked up again.
        let checker = DomainAgeChecker::with_memory_cache(rdap.clone(), Arc::clone(&clock))
            .context("cannot start the RDAP look-ups of [integrations.rdap]")?;
        enrichment = enrichment.with_rdap(Arc::new(checker), runtime.clone(), &rdap.limits);
    }
    integrations.enrichment = Some(Arc::new(enrichment));
    integrations.observer = Some(Arc::new(observer));
    Ok(integrations)
}

/// Returns the policy's `[endpoint_alert]` values, which the alert baseline
/// applies when it first reads an alert.
fn novelty_weights(policy: &Policy) -> NoveltyWeights {
    let novelty = &policy.endpoint_alert;
    NoveltyWeights {
        routine_min_count: novelty.routine_min_count,
        routine_factor: novelty.routine_factor,
        first_seen_category_factor: novelty.first_seen_category_factor,
        severity_above_usual_factor: novelty.severity_above_usual_factor,
    }
}

impl Integrations {
    /// Gives the engine the enrichment and the observer.
    pub(crate) fn attach(&self, mut engine: Engine) -> Engine {
        if let Some(enrichment) = &self.enrichment {
            engine = engine.with_enrichment(Arc::clone(enrichment) as _);
        }
        if let Some(observer) = &self.observer {
            engine = engine.with_observer(Arc::clone(observer) as _);
        }
        engine
    }

    /// Returns a function that gives another engine the same enrichment and
    /// observer, for the engine a policy reload builds.
    pub(crate) fn attacher(&self) -> impl Fn(Engine) -> Engine + Send + Sync + 'static {
        let enrichment = self.enrichment.clone();
        let observer = self.observer.clone();
        move |mut engine| {
            if let Some(enrichment) = &enrichment {
                engine = engine.with_enrichment(Arc::clone(enrichment) as _);
            }
            if let Some(observer) = &observer {
                engine = engine.with_observer(Arc::clone(observer) as _);
            }
            engine
        }
    }

    /// Starts the Defender poll task and the SIEM forwarder on `runtime`.
    pub(crate) fn start(self, runtime: &tokio::runtime::Handle) -> Running {
        let (stop, stopped) = watch::channel(false);
        let when_stopped = |mut stopped: watch::Receiver<bool>| async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        let mut tasks = Vec::new();
        if let Some(service) = self.defender {
            tasks.push(runtime.spawn(service.run(when_stopped(stopped.clone()))));
        }
        if let Some(forwarder) = self.forwarder {
            tracing::info!("SIEM forwarding started");
            tasks.push(runtime.spawn(forwarder.run(when_stopped(stopped.clone()))));
        }
        Running { stop, tasks }
    }
}

/// The running integration tasks.
pub(crate) struct Running {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Stops the tasks and waits for them. Verdicts not yet sent stay in the
    /// SIEM spool for the next start.
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            if let Err(error) = task.await {
                tracing::warn!(error = %error, "an integration task failed while stopping");
            }
        }
    }
}

/// `gatehouse integrations check`: tests the credentials and reachability of
/// each configured integration and prints one line per check.
///
/// # Errors
///
/// Fails when any check failed, after printing them all.
pub(crate) fn check(config: &Config) -> anyhow::Result<()> {
    let settings = &config.integrations;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if settings.is_empty() {
        writeln!(
            out,
            "no integration is configured in {}; add [integrations.defender], [integrations.siem] or [integrations.rdap]",
            config.origin()
        )?;
        return Ok(());
    }
    let results = setup::runtime()?.block_on(run_checks(settings));
    let mut failed = 0;
    for check in &results {
        match &check.outcome {
            Ok(detail) => writeln!(out, "ok      {}: {detail}", check.name)?,
            Err(error) => {
                failed += 1;
                writeln!(out, "FAILED  {}: {error}", check.name)?;
            }
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} of {} integration checks failed", results.len());
    }
    Ok(())
}

/// One check and its outcome: what it found, or why it failed.
struct CheckResult {
    name: String,
    outcome: Result<String, String>,
}

async fn run_checks(settings: &IntegrationsConfig) -> Vec<CheckResult> {
    let mut results = Vec::new();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    if let Some(defender) = &settings.defender {
        check_defender(defender, &clock, &mut results).await;
    }
    if let Some(siem) = &settings.siem {
        check_siem(siem, &clock, &mut results).await;
    }
    if let Some(rdap) = &settings.rdap {
        check_rdap(rdap, &clock, &mut results).await;
    }
    results
}

async fn check_defender(
    config: &DefenderConfig,
    clock: &Arc<dyn Clock>,
    results: &mut Vec<CheckResult>,
) {
    let token_name = format!("defender token from {}", config.token_url());
    let client = match GraphClient::new(config, Arc::clone(clock)) {
        Ok(client) => client,
        Err(error) => {
            results.push(CheckResult {
                name: token_name,
                outcome: Err(error.to_string()),
            });
            return;
        }
    };
    let token = client
        .check_credentials()
        .await
        .map_err(|error| error.to_string());
    let token_ok = token.is_ok();
    results.push(CheckResult {
        name: token_name,
        outcome: token.map(|()| "the client credentials are valid".to_owned()),
    });
    if !token_ok {
        return;
    }
    results.push(CheckResult {
        name: format!("defender alerts at {}", config.alerts_url()),
        outcome: client
            .check_alerts_access()
            .await
            .map(|()| "read one alert page".to_owned())
            .map_err(|error| error.to_string()),
    });
}

async fn check_siem(config: &SiemConfig, clock: &Arc<dyn Clock>, results: &mut Vec<CheckResult>) {
    if let Some(file) = &config.file {
        let outcome = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(file)
            .map(|_| "can append".to_owned())
            .map_err(|error| format!("cannot open for appending: {error}"));
        results.push(CheckResult {
            name: format!("siem file {}", file.display()),
            outcome,
        });
    }
    let Some(http) = &config.http else {
        return;
    };
    let spool = SiemExporter::open(config, Arc::clone(clock))
        .map(|_| "can write".to_owned())
        .map_err(|error| error.to_string());
    results.push(CheckResult {
        name: format!("siem spool {}", config.spool_dir.display()),
        outcome: spool,
    });
    results.push(CheckResult {
        name: format!("siem endpoint {}", http.url),
        outcome: gatehouse_integrations::siem::check_endpoint(http)
            .await
            .map(|status| format!("accepted the token (HTTP {status} to an empty batch)"))
            .map_err(|error| error.to_string()),
    });
}

async fn check_rdap(config: &RdapConfig, clock: &Arc<dyn Clock>, results: &mut Vec<CheckResult>) {
    if !config.enabled {
        results.push(CheckResult {
            name: "rdap".to_owned(),
            outcome: Ok("disabled (enabled = false); nothing to check".to_owned()),
        });
        return;
    }
    let checker = match DomainAgeChecker::with_memory_cache(config.clone(), Arc::clone(clock)) {
        Ok(checker) => checker,
        Err(error) => {
            results.push(CheckResult {
                name: "rdap".to_owned(),
                outcome: Err(error.to_string()),
            });
            return;
        }
    };
    for (server, outcome) in checker.check_servers().await {
        results.push(CheckResult {
            name: format!("rdap server {server}"),
            outcome: outcome
                .map(|()| "answered the help query".to_owned())
                .map_err(|error| error.to_string()),
        });
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use gatehouse_integrations::secret::SecretSource;
    use gatehouse_integrations::siem::HttpFormat;

    use crate::config::{ConfigError, from_toml};

    fn parse(text: &str) -> Result<crate::config::Config, ConfigError> {
        from_toml(text, Path::new("/etc/gh/gatehouse.toml"))
    }

    use super::*;

    #[test]
    fn sections_are_read_with_relative_paths() {
        let config = parse(
            r#"
            [integrations.defender]
            tenant_id = "contoso.onmicrosoft.com"
            client_id = "app"
            client_secret = { file = "secret" }
            poll_interval_secs = 30
            [integrations.siem]
            file = "verdicts.jsonl"
            [integrations.siem.http]
            url = "https://siem.example/services/collector/event"
            format = "splunk_hec"
            [integrations.rdap]
            enabled = true
            base = "https://rdap.example/v1/"
            "#,
        )
        .expect("valid config");

        let defender = config.integrations.defender.expect("defender section");
        assert_eq!(
            defender.client_secret,
            SecretSource::File(PathBuf::from("/etc/gh/secret"))
        );
        assert_eq!(defender.poll_interval_secs, 30);
        let siem = config.integrations.siem.expect("siem section");
        assert_eq!(siem.file, Some(PathBuf::from("/etc/gh/verdicts.jsonl")));
        assert_eq!(siem.spool_dir, PathBuf::from("/etc/gh/siem-spool"));
        assert_eq!(
            siem.http.map(|http| http.format),
            Some(HttpFormat::SplunkHec)
        );
        assert!(config.integrations.rdap.is_some_and(|rdap| rdap.enabled));
    }

    #[test]
    fn bad_integration_configs_name_the_key() {
        let cases = [
            (
                "unknown section",
                "[integrations.splunk]\nurl = \"x\"",
                "unknown key `integrations.splunk`",
            ),
            (
                "unknown defender key",
                "[integrations.defender]\ntenant_id = \"t\"\nclient_id = \"c\"\nclient_secret = { env = \"S\" }\npoll_secs = 5",
                "`integrations.defender.poll_secs`",
            ),
            (
                "nested limit of the wrong type",
                "[integrations.defender]\ntenant_id = \"t\"\nclient_id = \"c\"\nclient_secret = { env = \"S\" }\nlimits = { page_size = \"many\" }",
                "`integrations.defender.limits.page_size`",
            ),
            (
                "page size above the Graph maximum",
                "[integrations.defender]\ntenant_id = \"t\"\nclient_id = \"c\"\nclient_secret = { env = \"S\" }\nlimits = { page_size = 5000 }",
                "limits.page_size is 5000",
            ),
            (
                "missing client id",
                "[integrations.defender]\ntenant_id = \"t\"\nclient_secret = { env = \"S\" }",
                "missing field `client_id`",
            ),
            (
                "siem with nothing to export",
                "[integrations.siem]\nspool_dir = \"spool\"",
                "neither file nor http is set",
            ),
            (
                "unknown siem format",
                "[integrations.siem.http]\nurl = \"https://siem.example/\"\nformat = \"syslog\"",
                "`integrations.siem.http.format`",
            ),
            (
                "rdap without a server",
                "[integrations.rdap]\nenabled = true",
                "no server is configured",
            ),
        ];
        for (case, text, expected) in cases {
            let message = match parse(text) {
                Ok(_) => panic!("{case}: config was accepted"),
                Err(err) => err.to_string(),
            };
            assert!(message.contains(expected), "{case}: {message}");
            assert!(
                message.contains("/etc/gh/gatehouse.toml"),
                "{case}: {message}"
            );
        }
    }
}
