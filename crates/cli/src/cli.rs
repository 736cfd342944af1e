//! The command line as given.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "gatehouse",
    version,
    about = "An email security gateway that learns what normal mail looks like"
)]
pub(crate) struct Cli {
    /// Configuration file [default: gatehouse.toml in the working directory,
    /// then /etc/gatehouse/gatehouse.toml, then the embedded defaults]
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the SMTP proxy from the config
    Serve,
    /// Validate the config, the policy and the STARTTLS files, then print a summary
    CheckConfig,
    /// Analyse messages in files and print a verdict for each
    Scan {
        /// Teach the graph from the scanned messages, as if they had been received
        #[arg(long)]
        learn: bool,
        /// Output format: readable text, or one verdict JSON object per line
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// .eml files, mbox files, or folders (Maildir or any tree), read recursively
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// Import history into the graph: .eml files, mbox files, folders
    Learn {
        /// Report what would be learned without changing the graph
        #[arg(long)]
        dry_run: bool,
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// List, show, release or delete held messages
    #[command(subcommand)]
    Quarantine(QuarantineCommand),
    /// Inspect the learned graph
    #[command(subcommand)]
    Graph(GraphCommand),
    /// Check the Defender, SIEM and RDAP integrations of the config
    #[command(subcommand)]
    Integrations(IntegrationsCommand),
}

#[derive(Debug, Subcommand)]
pub(crate) enum IntegrationsCommand {
    /// Test the credentials and reachability of each configured integration;
    /// exit status 1 when any check fails
    Check,
}

#[derive(Debug, Subcommand)]
pub(crate) enum QuarantineCommand {
    /// List held messages, oldest first
    List {
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Group held messages by campaign cluster
        #[arg(long)]
        campaign: bool,
    },
    /// Print the verdict of a held message as JSON
    Show {
        #[arg(value_name = "ID")]
        id: String,
        /// Output format: the verdict as JSON, or as sentences
        #[arg(long, value_enum, default_value_t = Format::Json)]
        format: Format,
    },
    /// Re-inject held messages upstream with their original envelope
    Release {
        #[arg(required = true, value_name = "ID")]
        ids: Vec<String>,
    },
    /// Move held messages to deleted/
    Delete {
        #[arg(required = true, value_name = "ID")]
        ids: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum GraphCommand {
    /// Print counts of what the graph has learned
    Stats {
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Print everything the graph knows about one address
    Explain {
        #[arg(value_name = "ADDRESS")]
        address: String,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// List campaign responses with their reason and expiry, or lift one early
    Responses {
        /// Lift the response with this id now
        #[arg(long, value_name = "ID")]
        lift: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    Text,
    Json,
}
