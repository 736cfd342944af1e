//! The `gatehouse` command: the SMTP proxy, file scanning, history import,
//! quarantine management and graph statistics.
//!
//! `cli` parses the arguments as given and `config` turns the config file
//! into settings. Each command has its own module, which wires the library
//! crates together. Exit status: 0 success, 1 a runtime error, 2 invalid
//! usage or configuration.

mod cli;
mod config;
mod fronts;
mod graph;
mod input;
mod integrations;
mod learned;
mod operations;
mod quarantine;
mod scan;
mod serve;
mod setup;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command, IntegrationsCommand};

/// An error in what the user gave (arguments, ids, config): exit status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct UsageError(pub(crate) String);

fn main() -> ExitCode {
    let cli = Cli::parse();

    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // Output piped into a command that stopped reading (`| head`) is not an error.
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", describe(&err));
            if is_usage_error(&err) {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let config = config::load(cli.config.as_deref())?;
    setup::logging(matches!(cli.command, Command::Serve), config.log_format);
    match cli.command {
        Command::Serve => serve::run(&config),
        Command::CheckConfig => operations::check_config(&config),
        Command::Scan {
            learn,
            format,
            paths,
        } => scan::scan(&config, &paths, learn, format),
        Command::Learn {
            dry_run: true,
            paths,
        } => learned::learn_dry_run(&config, &paths),
        Command::Learn {
            dry_run: false,
            paths,
        } => scan::learn(&config, &paths),
        Command::Quarantine(command) => quarantine::run(&config, command),
        Command::Graph(command) => graph::run(&config, command),
        Command::Integrations(IntegrationsCommand::Check) => integrations::check(&config),
    }
}

/// Joins an error and its causes with ": ", as `{:#}` does, but leaves out
/// a cause whose text the message before it already contains: the
/// libraries' errors name their source in their own message too.
fn describe(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let message = cause.to_string();
        if text.contains(&message) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&message);
    }
    text
}

/// Prints an error that does not end the command, such as one of several
/// releases, with the same wording as a final error.
pub(crate) fn print_error(err: &anyhow::Error) {
    eprintln!("error: {}", describe(err));
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn is_usage_error(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause.is::<UsageError>()
            || cause.is::<config::ConfigError>()
            || cause.is::<gatehouse_policy::PolicyError>()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error that names its source in its own message, as the libraries' errors do.
    #[derive(Debug, thiserror::Error)]
    #[error("cannot read verdict: {source}")]
    struct Wrapped {
        source: std::io::Error,
    }

    #[test]
    fn describe_skips_repeated_cause() {
        let io = std::io::Error::other("disk on fire");
        let err = anyhow::Error::new(Wrapped { source: io }).context("cannot show 42");

        assert_eq!(
            describe(&err),
            "cannot show 42: cannot read verdict: disk on fire"
        );
    }
}
