//! The configuration file, loaded in a fixed order: embedded defaults, the
//! file, validation. The result is an immutable [`Config`].
//!
//! Every key the file may hold is listed in [`SECTIONS`]; any other key is
//! rejected with the file, the key and the valid keys of its section, so a
//! typo never silently leaves a default in place.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use gatehouse_engine::Limits as EngineLimits;
use gatehouse_engine::TrustedNetworks;
use gatehouse_engine::tagging::TagOptions;
use gatehouse_milter::Limits as MilterLimits;
use gatehouse_smtp::{FailureAction, Limits as SmtpLimits};
use toml::{Table, Value};

/// File names tried, in order, when `--config` is not given.
pub(crate) const DEFAULT_LOCATIONS: &[&str] = &["gatehouse.toml", "/etc/gatehouse/gatehouse.toml"];

/// The sections and keys a config file may hold.
const SECTIONS: &[(&str, &[&str])] = &[
    (
        "gateway",
        &[
            "local_domains",
            "local_networks",
            "trusted_relays",
            "geoip_asn_database",
            "geoip_country_database",
            "data_dir",
            "quarantine_dir",
            "policy",
            "log_format",
            "metrics_listen",
            "tag_subject_prefix",
            "tag_banner_text",
            "tag_banner_html",
        ],
    ),
    (
        "smtp",
        &[
            "listen",
            "upstream",
            "hostname",
            "max_message_bytes",
            "max_recipients",
            "max_connections",
            "max_errors",
            "max_concurrent_analyses",
            "command_timeout_secs",
            "upstream_timeout_secs",
            "session_timeout_secs",
            "shutdown_grace_secs",
            "analysis_timeout_secs",
            "on_analysis_failure",
            "max_received_headers",
            "tls_certificate",
            "tls_key",
            "xforward_hosts",
        ],
    ),
    (
        "milter",
        &[
            "listen",
            "max_packet_bytes",
            "max_message_bytes",
            "max_connections",
            "command_timeout_secs",
            "analysis_timeout_secs",
        ],
    ),
    ("limits.message", MESSAGE_LIMITS),
    ("limits.unpack", UNPACK_LIMITS),
    ("limits.qr", QR_LIMITS),
];

const MESSAGE_LIMITS: &[&str] = &[
    "max_mime_depth",
    "max_parts",
    "max_body_bytes",
    "max_links",
    "max_header_bytes",
    "max_redirect_depth",
    "max_data_uri_bytes",
    "max_data_uris",
];
const UNPACK_LIMITS: &[&str] = &[
    "max_depth",
    "max_entries",
    "max_total_bytes",
    "max_ratio",
    "min_ratio_check_bytes",
    "max_xml_bytes",
    "max_text_chars",
    "max_urls",
    "max_pdf_pages",
    "max_pdf_decoded_bytes",
    "max_pdf_image_pixels",
    "max_pdf_objects",
    "max_pdf_millis",
    "max_render_pixels",
    "max_total_render_pixels",
];
const QR_LIMITS: &[&str] = &[
    "max_pixels",
    "max_bytes",
    "max_alloc_bytes",
    "max_attempts",
    "max_symbols",
    "max_upscale_pixels",
    "min_downscale_side",
    "max_image_millis",
];

/// The validated configuration of one `gatehouse` run.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// The file it was read from; `None` for the embedded defaults alone.
    pub(crate) file: Option<PathBuf>,
    /// Domains whose mail is internal or outbound, lower-cased.
    pub(crate) local_domains: Vec<String>,
    /// Networks whose clients may send as a local address without
    /// authenticating, as Postfix's `mynetworks`; loopback by default.
    pub(crate) local_networks: TrustedNetworks,
    /// Relays whose Received hops are skipped when finding the origin network.
    pub(crate) trusted_relays: TrustedNetworks,
    /// MaxMind-format ASN and country databases, when configured.
    pub(crate) geoip_asn: Option<PathBuf>,
    pub(crate) geoip_country: Option<PathBuf>,
    /// Folder of the graph store and, with no upstream, of the `delivered` Maildir.
    pub(crate) data_dir: PathBuf,
    pub(crate) quarantine_dir: PathBuf,
    /// Policy file; `None` means the policy embedded in the binary.
    pub(crate) policy: Option<PathBuf>,
    pub(crate) smtp: SmtpConfig,
    /// Address of the milter front, when configured.
    pub(crate) milter_listen: Option<SocketAddr>,
    pub(crate) milter_limits: MilterLimits,
    /// Whether `serve` runs the SMTP proxy: always, unless the file sets
    /// `[milter] listen` and leaves out `[smtp] listen`.
    pub(crate) smtp_enabled: bool,
    pub(crate) limits: EngineLimits,
    pub(crate) integrations: crate::integrations::IntegrationsConfig,
    /// Format of the log lines on stderr.
    pub(crate) log_format: LogFormat,
    /// Address of the Prometheus metrics listener, when configured.
    pub(crate) metrics_listen: Option<SocketAddr>,
    /// How tagged mail is marked beyond its `X-Gatehouse-*` fields.
    pub(crate) tagging: TagOptions,
}

/// Format of the log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogFormat {
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Debug, Clone)]
pub(crate) struct SmtpConfig {
    pub(crate) listen: SocketAddr,
    /// `host:port` of the MTA behind the proxy; `None` delivers into `data_dir/delivered`.
    pub(crate) upstream: Option<String>,
    /// The name in the greeting, the Received header and the upstream EHLO.
    pub(crate) hostname: String,
    pub(crate) limits: SmtpLimits,
    /// PEM certificate chain and key for STARTTLS; `None` offers no STARTTLS.
    pub(crate) tls: Option<TlsFiles>,
    /// MTAs in front of the proxy whose XFORWARD commands are believed.
    pub(crate) xforward_hosts: TrustedNetworks,
}

/// The PEM files of the STARTTLS certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsFiles {
    pub(crate) certificate: PathBuf,
    pub(crate) key: PathBuf,
}

impl Config {
    /// Returns the file of the graph store.
    pub(crate) fn graph_path(&self) -> PathBuf {
        self.data_dir.join("graph.redb")
    }

    /// Returns the Maildir that mail goes to when no upstream is configured.
    pub(crate) fn delivered_path(&self) -> PathBuf {
        self.data_dir.join("delivered")
    }

    /// Returns the config file's path, or "embedded defaults", for messages.
    pub(crate) fn origin(&self) -> String {
        match &self.file {
            Some(path) => path.display().to_string(),
            None => "embedded defaults".to_owned(),
        }
    }
}

/// The configuration could not be loaded. Each error names the file and the
/// key, and the fix.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    #[error("config file {path} not found; create it or leave out --config to use {}", DEFAULT_LOCATIONS.join(" or "))]
    Missing { path: PathBuf },
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("invalid config file {path}: unknown key `{key}`; {fix}")]
    UnknownKey {
        path: PathBuf,
        key: String,
        fix: String,
    },
    #[error("invalid config file {path}: `{key}` {problem}; {fix}")]
    Invalid {
        path: PathBuf,
        key: String,
        problem: String,
        fix: String,
    },
}

/// Loads the configuration: `explicit` when given, else the first of
/// [`DEFAULT_LOCATIONS`] that exists, else the embedded defaults with paths
/// relative to the working directory.
pub(crate) fn load(explicit: Option<&Path>) -> Result<Config, ConfigError> {
    let path = match explicit {
        Some(path) if !path.exists() => {
            return Err(ConfigError::Missing {
                path: path.to_owned(),
            });
        }
        Some(path) => Some(path.to_owned()),
        None => DEFAULT_LOCATIONS
            .iter()
            .map(PathBuf::from)
            .find(|path| path.exists()),
    };
    match path {
        Some(path) => {
            let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
            from_toml(&text, &path)
        }
        None => Ok(defaults(Path::new("."), None)),
    }
}

/// Parses config text; `path` names the file in errors and anchors relative paths.
pub(crate) fn from_toml(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let table: Table = text
        .parse()
        .map_err(|err: toml::de::Error| ConfigError::Syntax {
            path: path.to_owned(),
            message: err.to_string().trim_end().replace('\n', " "),
        })?;
    let base = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let reader = Reader {
        path: path.to_owned(),
    };
    reader.check_keys(&table)?;
    reader.apply(&table, defaults(base, Some(path.to_owned())), base)
}

/// Returns the embedded defaults, with relative paths anchored at `base`.
fn defaults(base: &Path, file: Option<PathBuf>) -> Config {
    Config {
        file,
        local_domains: Vec::new(),
        local_networks: TrustedNetworks::loopback(),
        trusted_relays: TrustedNetworks::default(),
        geoip_asn: None,
        geoip_country: None,
        data_dir: base.join("data"),
        quarantine_dir: base.join("quarantine"),
        policy: None,
        smtp: SmtpConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 2525)),
            upstream: None,
            hostname: system_hostname(),
            limits: SmtpLimits::default(),
            tls: None,
            xforward_hosts: TrustedNetworks::default(),
        },
        milter_listen: None,
        milter_limits: MilterLimits::default(),
        smtp_enabled: true,
        limits: EngineLimits::default(),
        integrations: Default::default(),
        log_format: LogFormat::Text,
        metrics_listen: None,
        tagging: TagOptions::default(),
    }
}

fn system_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Reads typed values out of the parsed file, with errors that name the key.
struct Reader {
    path: PathBuf,
}

impl Reader {
    fn check_keys(&self, table: &Table) -> Result<(), ConfigError> {
        let top = ["gateway", "smtp", "milter", "limits", "integrations"];
        for (name, value) in table {
            if !top.contains(&name.as_str()) {
                return Err(self.unknown(name, &top, "valid sections are"));
            }
            let Value::Table(section) = value else {
                return Err(self.invalid(
                    name,
                    "is not a section",
                    &format!("write it as [{name}]"),
                ));
            };
            if name == "limits" {
                let parts = ["message", "unpack", "qr"];
                for (part, value) in section {
                    let key = format!("limits.{part}");
                    if !parts.contains(&part.as_str()) {
                        return Err(self.unknown(
                            &key,
                            &["limits.message", "limits.unpack", "limits.qr"],
                            "valid sections are",
                        ));
                    }
                    let Value::Table(inner) = value else {
                        return Err(self.invalid(
                            &key,
                            "is not a section",
                            &format!("write it as [{key}]"),
                        ));
                    };
                    self.check_section(&key, inner)?;
                }
            } else if name != "integrations" {
                // `integrations::parse` checks the keys of [integrations.*].
                self.check_section(name, section)?;
            }
        }
        Ok(())
    }

    fn check_section(&self, name: &str, section: &Table) -> Result<(), ConfigError> {
        let valid = SECTIONS
            .iter()
            .find(|(section, _)| *section == name)
            .map(|(_, keys)| *keys)
            .unwrap_or(&[]);
        for key in section.keys() {
            if !valid.contains(&key.as_str()) {
                let full = format!("{name}.{key}");
                return Err(self.unknown(&full, valid, &format!("valid keys in [{name}] are")));
            }
        }
        Ok(())
    }

    fn unknown(&self, key: &str, valid: &[&str], lead: &str) -> ConfigError {
        let last = key.rsplit('.').next().unwrap_or(key);
        let suggestion = valid
            .iter()
            .map(|candidate| {
                (
                    edit_distance(last, candidate.rsplit('.').next().unwrap_or(candidate)),
                    candidate,
                )
            })
            .filter(|(distance, _)| *distance <= 2)
            .min_by_key(|(distance, _)| *distance)
            .map(|(_, candidate)| format!("did you mean `{candidate}`? "))
            .unwrap_or_default();
        ConfigError::UnknownKey {
            path: self.path.clone(),
            key: key.to_owned(),
            fix: format!("{suggestion}{lead} {}", valid.join(", ")),
        }
    }

    fn invalid(&self, key: &str, problem: &str, fix: &str) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.clone(),
            key: key.to_owned(),
            problem: problem.to_owned(),
            fix: fix.to_owned(),
        }
    }

    fn apply(&self, table: &Table, mut config: Config, base: &Path) -> Result<Config, ConfigError> {
        let empty = Table::new();
        let section = |name: &str| match table.get(name) {
            Some(Value::Table(section)) => section,
            _ => &empty,
        };

        let gateway = section("gateway");
        if let Some(domains) = gateway.get("local_domains") {
            config.local_domains = self.domains(domains)?;
        }
        if let Some(path) = self.path_value(gateway, "gateway", "data_dir", base)? {
            config.data_dir = path;
        }
        if let Some(path) = self.path_value(gateway, "gateway", "quarantine_dir", base)? {
            config.quarantine_dir = path;
        }
        config.policy = self.path_value(gateway, "gateway", "policy", base)?;
        if let Some(networks) = gateway.get("local_networks") {
            config.local_networks = self.networks("gateway.local_networks", networks)?;
        }
        if let Some(networks) = gateway.get("trusted_relays") {
            config.trusted_relays = self.networks("gateway.trusted_relays", networks)?;
        }
        config.geoip_asn = self.path_value(gateway, "gateway", "geoip_asn_database", base)?;
        config.geoip_country =
            self.path_value(gateway, "gateway", "geoip_country_database", base)?;
        for (key, path) in [
            ("gateway.geoip_asn_database", &config.geoip_asn),
            ("gateway.geoip_country_database", &config.geoip_country),
        ] {
            if let Some(path) = path
                && !path.is_file()
            {
                return Err(self.invalid(
                    key,
                    &format!("names {}, which is not a file", path.display()),
                    "give the path of a MaxMind-format .mmdb database, or remove the key",
                ));
            }
        }
        self.operations(gateway, &mut config)?;

        let smtp = section("smtp");
        if let Some(listen) = self.string(smtp, "smtp", "listen")? {
            config.smtp.listen = listen.parse().map_err(|_| {
                self.invalid(
                    "smtp.listen",
                    &format!("is {listen:?}, not an IP address and port"),
                    "write it as \"127.0.0.1:2525\" or \"[::1]:2525\"",
                )
            })?;
        }
        if let Some(hosts) = smtp.get("xforward_hosts") {
            config.smtp.xforward_hosts = self.networks("smtp.xforward_hosts", hosts)?;
        }
        if let Some(upstream) = self.string(smtp, "smtp", "upstream")? {
            config.smtp.upstream = Some(self.host_port("smtp.upstream", &upstream)?);
        }
        if let Some(hostname) = self.string(smtp, "smtp", "hostname")? {
            if hostname.is_empty()
                || !hostname
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
            {
                return Err(self.invalid(
                    "smtp.hostname",
                    &format!("is {hostname:?}, not a host name"),
                    "use letters, digits, dots and hyphens, such as \"mx.example.com\"",
                ));
            }
            config.smtp.hostname = hostname;
        }
        let limits = &mut config.smtp.limits;
        self.number(
            &mut limits.max_message_bytes,
            smtp,
            "smtp",
            "max_message_bytes",
        )?;
        self.number(&mut limits.max_recipients, smtp, "smtp", "max_recipients")?;
        self.number(&mut limits.max_connections, smtp, "smtp", "max_connections")?;
        self.number(
            &mut limits.max_concurrent_analyses,
            smtp,
            "smtp",
            "max_concurrent_analyses",
        )?;
        self.number(&mut limits.max_errors, smtp, "smtp", "max_errors")?;
        if let Some(seconds) = self.count(smtp, "smtp", "command_timeout_secs")? {
            limits.command_timeout = Duration::from_secs(seconds as u64);
        }
        if let Some(seconds) = self.count(smtp, "smtp", "upstream_timeout_secs")? {
            limits.upstream = limits.upstream.capped(Duration::from_secs(seconds as u64));
        }
        if let Some(seconds) = self.count(smtp, "smtp", "session_timeout_secs")? {
            limits.session_timeout = Duration::from_secs(seconds as u64);
        }
        if let Some(seconds) = self.count(smtp, "smtp", "shutdown_grace_secs")? {
            limits.shutdown_grace = Duration::from_secs(seconds as u64);
        }
        if let Some(seconds) = self.count(smtp, "smtp", "analysis_timeout_secs")? {
            limits.analysis_timeout = Duration::from_secs(seconds as u64);
        }
        self.number(
            &mut limits.max_received_headers,
            smtp,
            "smtp",
            "max_received_headers",
        )?;
        if let Some(action) = self.string(smtp, "smtp", "on_analysis_failure")? {
            limits.on_analysis_failure = match action.as_str() {
                "tempfail" => FailureAction::Tempfail,
                "deliver" => FailureAction::Deliver,
                _ => {
                    return Err(self.invalid(
                        "smtp.on_analysis_failure",
                        &format!("is {action:?}"),
                        "use \"tempfail\" (reply 451) or \"deliver\" (deliver with an X-Gatehouse-Unscanned header)",
                    ));
                }
            };
        }
        let certificate = self.path_value(smtp, "smtp", "tls_certificate", base)?;
        let key = self.path_value(smtp, "smtp", "tls_key", base)?;
        config.smtp.tls = match (certificate, key) {
            (Some(certificate), Some(key)) => Some(TlsFiles { certificate, key }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(self.invalid(
                    "smtp.tls_key",
                    "is missing while smtp.tls_certificate is set",
                    "give the PEM private key of the certificate, or remove both keys to offer no STARTTLS",
                ));
            }
            (None, Some(_)) => {
                return Err(self.invalid(
                    "smtp.tls_certificate",
                    "is missing while smtp.tls_key is set",
                    "give the PEM certificate chain, or remove both keys to offer no STARTTLS",
                ));
            }
        };
        let limits = &mut config.smtp.limits;
        if limits.max_recipients < 100 {
            return Err(self.invalid(
                "smtp.max_recipients",
                &format!(
                    "is {}, below the 100 that RFC 5321 requires a server to accept",
                    limits.max_recipients
                ),
                "set it to 100 or more",
            ));
        }

        let milter = section("milter");
        if let Some(listen) = self.string(milter, "milter", "listen")? {
            config.milter_listen = Some(listen.parse().map_err(|_| {
                self.invalid(
                    "milter.listen",
                    &format!("is {listen:?}, not an IP address and port"),
                    "write it as \"127.0.0.1:8891\"",
                )
            })?);
            config.smtp_enabled = smtp.contains_key("listen");
        }
        let limits = &mut config.milter_limits;
        self.number(
            &mut limits.max_packet_bytes,
            milter,
            "milter",
            "max_packet_bytes",
        )?;
        self.number(
            &mut limits.max_message_bytes,
            milter,
            "milter",
            "max_message_bytes",
        )?;
        self.number(
            &mut limits.max_connections,
            milter,
            "milter",
            "max_connections",
        )?;
        if let Some(seconds) = self.count(milter, "milter", "command_timeout_secs")? {
            limits.command_timeout = Duration::from_secs(seconds as u64);
        }
        if let Some(seconds) = self.count(milter, "milter", "analysis_timeout_secs")? {
            limits.analysis_timeout = Duration::from_secs(seconds as u64);
        }

        self.engine_limits(table, &mut config.limits)?;
        config.integrations =
            crate::integrations::parse(table.get("integrations"), base, &self.path)?;
        Ok(config)
    }

    /// Reads the logging, metrics and tagging keys of `[gateway]`.
    fn operations(&self, gateway: &Table, config: &mut Config) -> Result<(), ConfigError> {
        if let Some(format) = self.string(gateway, "gateway", "log_format")? {
            config.log_format = match format.as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                _ => {
                    return Err(self.invalid(
                        "gateway.log_format",
                        &format!("is {format:?}"),
                        "use \"text\" or \"json\"",
                    ));
                }
            };
        }
        if let Some(listen) = self.string(gateway, "gateway", "metrics_listen")? {
            config.metrics_listen = Some(listen.parse().map_err(|_| {
                self.invalid(
                    "gateway.metrics_listen",
                    &format!("is {listen:?}, not an IP address and port"),
                    "write it as \"127.0.0.1:9425\"",
                )
            })?);
        }
        let text = |key: &str| -> Result<Option<String>, ConfigError> {
            let value = self.string(gateway, "gateway", key)?;
            match value {
                Some(value) if value.trim().is_empty() => Err(self.invalid(
                    &format!("gateway.{key}"),
                    "is empty",
                    "give the text, or remove the key",
                )),
                other => Ok(other),
            }
        };
        config.tagging.subject_prefix = text("tag_subject_prefix")?;
        if let Some(prefix) = &config.tagging.subject_prefix
            && prefix.chars().any(char::is_control)
        {
            return Err(self.invalid(
                "gateway.tag_subject_prefix",
                "contains a control character",
                "use one line of text, such as \"[External]\"",
            ));
        }
        config.tagging.banner_text = text("tag_banner_text")?;
        config.tagging.banner_html = text("tag_banner_html")?;
        Ok(())
    }

    fn engine_limits(&self, table: &Table, limits: &mut EngineLimits) -> Result<(), ConfigError> {
        let empty = Table::new();
        let part = |name: &str| match table.get("limits").and_then(|limits| limits.get(name)) {
            Some(Value::Table(section)) => section,
            _ => &empty,
        };

        let message = part("message");
        let name = "limits.message";
        let limits_message = &mut limits.message;
        self.number(
            &mut limits_message.max_mime_depth,
            message,
            name,
            "max_mime_depth",
        )?;
        self.number(&mut limits_message.max_parts, message, name, "max_parts")?;
        self.number(
            &mut limits_message.max_body_bytes,
            message,
            name,
            "max_body_bytes",
        )?;
        self.number(&mut limits_message.max_links, message, name, "max_links")?;
        self.number(
            &mut limits_message.max_header_bytes,
            message,
            name,
            "max_header_bytes",
        )?;
        self.number(
            &mut limits_message.max_redirect_depth,
            message,
            name,
            "max_redirect_depth",
        )?;
        self.number(
            &mut limits_message.max_data_uri_bytes,
            message,
            name,
            "max_data_uri_bytes",
        )?;
        self.number(
            &mut limits_message.max_data_uris,
            message,
            name,
            "max_data_uris",
        )?;

        let unpack = part("unpack");
        let name = "limits.unpack";
        let limits_unpack = &mut limits.unpack;
        self.number(&mut limits_unpack.max_depth, unpack, name, "max_depth")?;
        self.number(&mut limits_unpack.max_entries, unpack, name, "max_entries")?;
        self.number(
            &mut limits_unpack.max_total_bytes,
            unpack,
            name,
            "max_total_bytes",
        )?;
        self.number(&mut limits_unpack.max_ratio, unpack, name, "max_ratio")?;
        self.number(
            &mut limits_unpack.min_ratio_check_bytes,
            unpack,
            name,
            "min_ratio_check_bytes",
        )?;
        self.number(
            &mut limits_unpack.max_xml_bytes,
            unpack,
            name,
            "max_xml_bytes",
        )?;
        self.number(
            &mut limits_unpack.max_text_chars,
            unpack,
            name,
            "max_text_chars",
        )?;
        self.number(&mut limits_unpack.max_urls, unpack, name, "max_urls")?;
        for (field, key) in [
            (
                &mut limits_unpack.max_pdf_decoded_bytes,
                "max_pdf_decoded_bytes",
            ),
            (
                &mut limits_unpack.max_pdf_image_pixels,
                "max_pdf_image_pixels",
            ),
            (&mut limits_unpack.max_pdf_millis, "max_pdf_millis"),
            (&mut limits_unpack.max_render_pixels, "max_render_pixels"),
            (
                &mut limits_unpack.max_total_render_pixels,
                "max_total_render_pixels",
            ),
        ] {
            self.number(field, unpack, name, key)?;
        }
        self.number(
            &mut limits_unpack.max_pdf_pages,
            unpack,
            name,
            "max_pdf_pages",
        )?;
        self.number(
            &mut limits_unpack.max_pdf_objects,
            unpack,
            name,
            "max_pdf_objects",
        )?;

        let qr = part("qr");
        let name = "limits.qr";
        let limits_qr = &mut limits.qr;
        self.number(&mut limits_qr.max_pixels, qr, name, "max_pixels")?;
        self.number(&mut limits_qr.max_bytes, qr, name, "max_bytes")?;
        self.number(&mut limits_qr.max_alloc_bytes, qr, name, "max_alloc_bytes")?;
        self.number(&mut limits_qr.max_attempts, qr, name, "max_attempts")?;
        self.number(&mut limits_qr.max_symbols, qr, name, "max_symbols")?;
        self.number(
            &mut limits_qr.max_upscale_pixels,
            qr,
            name,
            "max_upscale_pixels",
        )?;
        self.number(
            &mut limits_qr.min_downscale_side,
            qr,
            name,
            "min_downscale_side",
        )?;
        self.number(
            &mut limits_qr.max_image_millis,
            qr,
            name,
            "max_image_millis",
        )?;
        Ok(())
    }

    /// Sets `field` from a whole number above 0, when the key is present.
    fn number<T: TryFrom<usize>>(
        &self,
        field: &mut T,
        section: &Table,
        name: &str,
        key: &str,
    ) -> Result<(), ConfigError> {
        if let Some(value) = self.count(section, name, key)? {
            *field = T::try_from(value).map_err(|_| {
                self.invalid(
                    &format!("{name}.{key}"),
                    &format!("is {value}, too large for this limit"),
                    "use a smaller number",
                )
            })?;
        }
        Ok(())
    }

    fn string(
        &self,
        section: &Table,
        name: &str,
        key: &str,
    ) -> Result<Option<String>, ConfigError> {
        match section.get(key) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(other) => Err(self.invalid(
                &format!("{name}.{key}"),
                &format!("is {}, not a string", kind(other)),
                "put the value in double quotes",
            )),
        }
    }

    /// Reads a whole number above 0.
    fn count(&self, section: &Table, name: &str, key: &str) -> Result<Option<usize>, ConfigError> {
        let full = format!("{name}.{key}");
        match section.get(key) {
            None => Ok(None),
            Some(Value::Integer(number)) if *number > 0 => {
                Ok(Some(usize::try_from(*number).unwrap_or(usize::MAX)))
            }
            Some(Value::Integer(number)) => {
                Err(self.invalid(&full, &format!("is {number}"), "use a whole number above 0"))
            }
            Some(other) => Err(self.invalid(
                &full,
                &format!("is {}, not a whole number", kind(other)),
                "write a number without quotes, such as 100",
            )),
        }
    }

    fn path_value(
        &self,
        section: &Table,
        name: &str,
        key: &str,
        base: &Path,
    ) -> Result<Option<PathBuf>, ConfigError> {
        let Some(text) = self.string(section, name, key)? else {
            return Ok(None);
        };
        if text.is_empty() {
            return Err(self.invalid(
                &format!("{name}.{key}"),
                "is empty",
                "give a path, relative to the config file's folder or absolute",
            ));
        }
        Ok(Some(base.join(text)))
    }

    fn domains(&self, value: &Value) -> Result<Vec<String>, ConfigError> {
        let key = "gateway.local_domains";
        let Value::Array(items) = value else {
            return Err(self.invalid(
                key,
                &format!("is {}, not a list", kind(value)),
                "write it as [\"example.com\"]",
            ));
        };
        let mut domains = Vec::new();
        for item in items {
            let Value::String(domain) = item else {
                return Err(self.invalid(
                    key,
                    &format!("holds {}", kind(item)),
                    "write each domain in double quotes",
                ));
            };
            let valid = !domain.is_empty()
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && domain
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '.' || c == '-');
            if !valid {
                return Err(self.invalid(
                    key,
                    &format!("holds {domain:?}, which is not a domain"),
                    "list domains such as \"example.com\", without @ or spaces",
                ));
            }
            domains.push(domain.to_lowercase());
        }
        Ok(domains)
    }

    /// Reads a list of networks in CIDR notation; a bare address is one host.
    fn networks(&self, key: &str, value: &Value) -> Result<TrustedNetworks, ConfigError> {
        let Value::Array(items) = value else {
            return Err(self.invalid(
                key,
                &format!("is {}, not a list", kind(value)),
                "write it as [\"192.0.2.0/24\", \"2001:db8::/32\"]",
            ));
        };
        let mut texts = Vec::new();
        for item in items {
            let Value::String(text) = item else {
                return Err(self.invalid(
                    key,
                    &format!("holds {}", kind(item)),
                    "write each network in double quotes",
                ));
            };
            texts.push(text.as_str());
        }
        TrustedNetworks::parse(&texts).map_err(|err| {
            self.invalid(
                key,
                &format!("holds {err}"),
                "list networks such as \"192.0.2.0/24\" or single addresses",
            )
        })
    }

    fn host_port(&self, key: &str, value: &str) -> Result<String, ConfigError> {
        let port = value.rsplit_once(':').and_then(|(host, port)| {
            let host_ok = !host.is_empty();
            port.parse::<u16>().ok().filter(|port| host_ok && *port > 0)
        });
        match port {
            Some(_) => Ok(value.to_owned()),
            None => Err(self.invalid(
                key,
                &format!("is {value:?}, not a host and port"),
                "write it as \"127.0.0.1:10026\" or \"mail.example.com:25\"",
            )),
        }
    }
}

/// Names a TOML value's type with its article: "a string", "an integer".
fn kind(value: &Value) -> String {
    let name = value.type_str();
    let article = if name.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {name}")
}

/// Levenshtein distance, for "did you mean" hints on short key names.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            current.push(
                (previous[j] + cost)
                    .min(previous[j + 1] + 1)
                    .min(current[j] + 1),
            );
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        from_toml(text, Path::new("/etc/gh/gatehouse.toml"))
    }

    #[test]
    fn full_config_is_read() {
        let config = parse(
            r#"
            [gateway]
            local_domains = ["Example.com"]
            data_dir = "state"
            quarantine_dir = "/var/spool/gatehouse"
            policy = "policy.toml"
            [smtp]
            listen = "0.0.0.0:25"
            upstream = "127.0.0.1:10026"
            max_message_bytes = 1000
            [limits.qr]
            max_pixels = 1000
            max_alloc_bytes = 2000
            max_image_millis = 750
            [limits.unpack]
            max_urls = 30
            max_pdf_pages = 3
            max_pdf_millis = 500
            [limits.message]
            max_data_uris = 4
            "#,
        )
        .expect("valid config");

        assert_eq!(config.local_domains, vec!["example.com"]);
        assert_eq!(config.data_dir, PathBuf::from("/etc/gh/state"));
        assert_eq!(config.quarantine_dir, PathBuf::from("/var/spool/gatehouse"));
        assert_eq!(config.policy, Some(PathBuf::from("/etc/gh/policy.toml")));
        assert_eq!(config.smtp.listen, SocketAddr::from(([0, 0, 0, 0], 25)));
        assert_eq!(config.smtp.upstream.as_deref(), Some("127.0.0.1:10026"));
        assert_eq!(config.smtp.limits.max_message_bytes, 1000);
        assert_eq!(config.limits.qr.max_pixels, 1000);
        assert_eq!(config.limits.qr.max_alloc_bytes, 2000);
        assert_eq!(config.limits.qr.max_image_millis, 750);
        assert_eq!(config.limits.unpack.max_urls, 30);
        assert_eq!(config.limits.unpack.max_pdf_pages, 3);
        assert_eq!(config.limits.unpack.max_pdf_millis, 500);
        assert_eq!(config.limits.message.max_data_uris, 4);
    }

    #[test]
    fn networks_are_read() {
        let config = parse(
            r#"
            [gateway]
            local_networks = ["192.0.2.0/24", "2001:db8::1"]
            trusted_relays = ["198.51.100.7"]
            "#,
        )
        .expect("valid config");

        let local = &config.local_networks;
        assert!(local.contains([192, 0, 2, 200].into()));
        assert!(!local.contains([127, 0, 0, 1].into()));
        assert!(local.contains("2001:db8::1".parse().expect("address")));
        assert!(config.trusted_relays.contains([198, 51, 100, 7].into()));
    }

    #[test]
    fn local_networks_default_to_loopback() {
        let config = parse("").expect("valid config");
        assert!(config.local_networks.contains([127, 0, 0, 1].into()));
        assert!(!config.local_networks.contains([192, 0, 2, 1].into()));
    }

    #[test]
    fn operations_keys_are_read() {
        let config = parse(
            r#"
            [gateway]
            log_format = "json"
            metrics_listen = "127.0.0.1:9425"
            tag_subject_prefix = "[External]"
            tag_banner_text = "First message from this sender."
            [smtp]
            tls_certificate = "cert.pem"
            tls_key = "/etc/ssl/key.pem"
            analysis_timeout_secs = 20
            on_analysis_failure = "deliver"
            max_received_headers = 50
            upstream_timeout_secs = 60
            "#,
        )
        .expect("valid config");

        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(
            config.metrics_listen,
            Some(SocketAddr::from(([127, 0, 0, 1], 9425)))
        );
        assert_eq!(config.tagging.subject_prefix.as_deref(), Some("[External]"));
        assert_eq!(
            config.smtp.tls,
            Some(TlsFiles {
                certificate: PathBuf::from("/etc/gh/cert.pem"),
                key: PathBuf::from("/etc/ssl/key.pem"),
            })
        );
        let limits = &config.smtp.limits;
        assert_eq!(limits.analysis_timeout, Duration::from_secs(20));
        assert_eq!(limits.on_analysis_failure, FailureAction::Deliver);
        assert_eq!(limits.max_received_headers, 50);
        assert_eq!(limits.upstream.data_end, Duration::from_secs(60));
        assert_eq!(limits.upstream.data_start, Duration::from_secs(60));
    }

    #[test]
    fn empty_file_gives_defaults() {
        let config = parse("").expect("valid config");

        assert_eq!(config.smtp.listen, SocketAddr::from(([127, 0, 0, 1], 2525)));
        assert_eq!(config.smtp.upstream, None);
        assert_eq!(config.policy, None);
        assert_eq!(
            config.delivered_path(),
            PathBuf::from("/etc/gh/data/delivered")
        );
    }

    #[test]
    fn milter_alone_turns_smtp_off() {
        let config = parse(
            r#"
            [milter]
            listen = "127.0.0.1:8891"
            max_message_bytes = 1000
            analysis_timeout_secs = 60
            "#,
        )
        .expect("valid config");

        assert_eq!(
            config.milter_listen,
            Some(SocketAddr::from(([127, 0, 0, 1], 8891)))
        );
        assert!(!config.smtp_enabled);
        assert_eq!(config.milter_limits.max_message_bytes, 1000);
        assert_eq!(
            config.milter_limits.analysis_timeout,
            Duration::from_secs(60)
        );
    }

    #[test]
    fn milter_beside_smtp_keeps_smtp() {
        let config =
            parse("[smtp]\nlisten = \"127.0.0.1:2525\"\n[milter]\nlisten = \"127.0.0.1:8891\"")
                .expect("valid config");

        assert!(config.smtp_enabled);
    }

    #[test]
    fn bad_configs_name_key_and_fix() {
        let cases = [
            (
                "unknown section",
                "[smpt]\nlisten = \"127.0.0.1:25\"",
                "unknown key `smpt`; did you mean `smtp`?",
            ),
            (
                "unknown key",
                "[smtp]\nlisen = \"127.0.0.1:25\"",
                "unknown key `smtp.lisen`; did you mean `listen`? valid keys in [smtp] are listen, upstream",
            ),
            (
                "unknown limit",
                "[limits.qr]\nmax_pixel = 5",
                "unknown key `limits.qr.max_pixel`; did you mean `max_pixels`?",
            ),
            (
                "unknown limits part",
                "[limits.zip]\nmax_depth = 5",
                "unknown key `limits.zip`",
            ),
            (
                "bad listen",
                "[smtp]\nlisten = \"localhost\"",
                "`smtp.listen` is \"localhost\", not an IP address and port",
            ),
            (
                "bad upstream",
                "[smtp]\nupstream = \"mail.example.com\"",
                "`smtp.upstream` is \"mail.example.com\", not a host and port",
            ),
            (
                "number as string",
                "[smtp]\nmax_recipients = \"500\"",
                "`smtp.max_recipients` is a string, not a whole number",
            ),
            (
                "zero limit",
                "[limits.unpack]\nmax_depth = 0",
                "`limits.unpack.max_depth` is 0; use a whole number above 0",
            ),
            (
                "number too large",
                "[smtp]\nmax_errors = 99999999999",
                "`smtp.max_errors` is 99999999999, too large for this limit",
            ),
            (
                "too few recipients",
                "[smtp]\nmax_recipients = 10",
                "below the 100 that RFC 5321 requires",
            ),
            (
                "domain with at",
                "[gateway]\nlocal_domains = [\"@example.com\"]",
                "`gateway.local_domains` holds \"@example.com\", which is not a domain",
            ),
            (
                "domains not a list",
                "[gateway]\nlocal_domains = \"example.com\"",
                "`gateway.local_domains` is a string, not a list",
            ),
            (
                "network without length",
                "[gateway]\nlocal_networks = [\"10.0.0.0/33\"]",
                "`gateway.local_networks` holds invalid trusted network `10.0.0.0/33`",
            ),
            (
                "missing GeoIP database",
                "[gateway]\ngeoip_asn_database = \"missing.mmdb\"",
                "`gateway.geoip_asn_database` names /etc/gh/missing.mmdb, which is not a file",
            ),
            (
                "integer in a list",
                "[gateway]\ntrusted_relays = [42]",
                "`gateway.trusted_relays` holds an integer",
            ),
            (
                "relays not a list",
                "[gateway]\ntrusted_relays = \"192.0.2.1\"",
                "`gateway.trusted_relays` is a string, not a list",
            ),
            (
                "section as value",
                "gateway = 5",
                "`gateway` is not a section",
            ),
            (
                "empty path",
                "[gateway]\ndata_dir = \"\"",
                "`gateway.data_dir` is empty",
            ),
            (
                "tls key without certificate",
                "[smtp]\ntls_key = \"key.pem\"",
                "`smtp.tls_certificate` is missing while smtp.tls_key is set",
            ),
            (
                "bad failure action",
                "[smtp]\non_analysis_failure = \"accept\"",
                "`smtp.on_analysis_failure` is \"accept\"; use \"tempfail\"",
            ),
            (
                "bad log format",
                "[gateway]\nlog_format = \"xml\"",
                "`gateway.log_format` is \"xml\"",
            ),
            (
                "bad metrics address",
                "[gateway]\nmetrics_listen = \"localhost\"",
                "`gateway.metrics_listen` is \"localhost\", not an IP address and port",
            ),
            (
                "empty subject prefix",
                "[gateway]\ntag_subject_prefix = \" \"",
                "`gateway.tag_subject_prefix` is empty",
            ),
            (
                "syntax",
                "[gateway\n",
                "invalid config file /etc/gh/gatehouse.toml: ",
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
