//! Commands that show and steer what the graph learned:
//! `graph explain ADDRESS`, `graph responses [--lift ID]`,
//! `quarantine list --campaign` and `learn --dry-run`.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use gatehouse_engine::{Envelope, Outcome, When, group_by_campaign};
use gatehouse_graph::{AddressReport, Fact, GraphStore, RedbGraph, Response, Stats};
use gatehouse_quarantine::Quarantine;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::UsageError;
use crate::cli::Format;
use crate::config::Config;
use crate::setup::GraphAccess;
use crate::{input, setup};

fn open_graph(config: &Config, access: GraphAccess) -> anyhow::Result<RedbGraph> {
    let path = config.graph_path();
    if !path.exists() {
        anyhow::bail!(
            "no graph store at {}; run `gatehouse learn PATH` or `gatehouse serve` first",
            path.display()
        );
    }
    setup::open_graph(&path, access)
}

fn date(seconds: i64) -> String {
    OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|time| time.format(&Rfc3339).ok())
        .unwrap_or_else(|| seconds.to_string())
}

fn describe_fact(fact: &Fact) -> String {
    format!(
        "{} in, {} out, {} internal; first {}, last {}",
        fact.inbound,
        fact.outbound,
        fact.internal,
        date(fact.first_seen),
        date(fact.last_seen)
    )
}

/// Prints everything the graph learned about one address (`gatehouse graph explain ADDRESS`).
pub(crate) fn explain(config: &Config, address: &str, format: Format) -> anyhow::Result<()> {
    let graph = open_graph(config, GraphAccess::Read)?;
    let report = graph.explain(address)?;
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => writeln!(out, "{}", serde_json::to_string(&report)?)?,
        Format::Text => write_report(&mut out, &report)?,
    }
    Ok(())
}

fn write_report(out: &mut impl Write, report: &AddressReport) -> std::io::Result<()> {
    writeln!(out, "{} (domain {})", report.address, report.domain)?;
    let single = [
        ("as a correspondent", &report.correspondent),
        ("its domain", &report.domain_fact),
        ("as a local recipient", &report.recipient_profile),
    ];
    for (label, fact) in single {
        match fact {
            Some(fact) => writeln!(out, "  {label}: {}", describe_fact(fact))?,
            None => writeln!(out, "  {label}: never seen")?,
        }
    }
    let lists = [
        ("exchanged mail with", &report.edges),
        ("display names", &report.display_names),
        ("attachment types sent", &report.attachment_types),
        ("scripts received", &report.scripts),
        ("origin networks of the domain", &report.origin_networks),
        ("client networks of the domain", &report.client_networks),
        ("local-part shapes of the domain", &report.domain_shapes),
    ];
    for (label, entries) in lists {
        if entries.is_empty() {
            continue;
        }
        writeln!(out, "  {label}:")?;
        for (name, fact) in entries {
            writeln!(out, "    {name}: {}", describe_fact(fact))?;
        }
    }
    Ok(())
}

/// `gatehouse graph responses [--lift ID]`: campaign responses with reason and expiry.
pub(crate) fn responses(config: &Config, lift: Option<&str>, format: Format) -> anyhow::Result<()> {
    // Lifting a response writes to the store; listing only reads.
    let access = if lift.is_some() {
        GraphAccess::Write
    } else {
        GraphAccess::Read
    };
    let graph = open_graph(config, access)?;
    let now = OffsetDateTime::now_utc();
    let mut out = std::io::stdout().lock();
    if let Some(id) = lift {
        let Some(response) = graph.lift_response(id, now)? else {
            return Err(UsageError(format!(
                "no campaign response has the id {id}; `gatehouse graph responses` lists them"
            ))
            .into());
        };
        writeln!(out, "lifted {} ({})", response.id, response.cluster)?;
        return Ok(());
    }
    for response in graph.responses()? {
        match format {
            Format::Json => writeln!(out, "{}", serde_json::to_string(&response)?)?,
            Format::Text => write_response(&mut out, &response, now)?,
        }
    }
    Ok(())
}

fn write_response(
    out: &mut impl Write,
    response: &Response,
    now: OffsetDateTime,
) -> std::io::Result<()> {
    let state = if let Some(lifted) = response.lifted {
        format!("lifted {}", date(lifted))
    } else if response.is_active(now) {
        format!("active until {}", date(response.expires))
    } else {
        format!("expired {}", date(response.expires))
    };
    writeln!(out, "{}  {}  {state}", response.id, response.cluster)?;
    writeln!(
        out,
        "  opened {}: {}",
        date(response.opened),
        response.reason
    )
}

/// `gatehouse quarantine list --campaign`: held mail grouped by campaign cluster.
pub(crate) fn list_by_campaign(quarantine: &Quarantine, format: Format) -> anyhow::Result<()> {
    let (verdicts, unreadable) = crate::quarantine::readable_verdicts(quarantine)?;
    let groups = group_by_campaign(&verdicts);
    let mut out = std::io::stdout().lock();
    for group in &groups {
        match format {
            Format::Json => writeln!(out, "{}", serde_json::to_string(group)?)?,
            Format::Text => {
                let cluster = group.cluster.as_deref().unwrap_or("(no campaign)");
                writeln!(
                    out,
                    "{cluster}: {} held, {} senders, {} recipients",
                    group.verdicts.len(),
                    group.senders.len(),
                    group.recipients.len()
                )?;
                for id in &group.verdicts {
                    writeln!(out, "  {id}")?;
                }
            }
        }
    }
    out.flush()?;
    crate::quarantine::fail_if_unreadable(unreadable)
}

/// `gatehouse learn --dry-run`: learns into a copy of the graph and reports
/// what would change, leaving the real store untouched.
pub(crate) fn learn_dry_run(config: &Config, paths: &[PathBuf]) -> anyhow::Result<()> {
    let original = config.graph_path();
    let graph = Arc::new(setup::open_copy(&original)?);
    let before = graph.stats()?;
    let engine = setup::engine_with(config, setup::policy(config)?, graph.clone())?;

    let files = input::collect_files(paths).map_err(|err| UsageError(err.to_string()))?;
    let max_bytes = config.smtp.limits.max_message_bytes;
    let mut read = 0u64;
    let mut unreadable = 0u64;
    let mut failed = 0u64;
    for file in &files {
        input::read_messages(file, max_bytes, &mut |item| {
            let raw = match item.raw {
                Ok(raw) => raw,
                Err(err) => {
                    eprintln!("warning: {}: {err}", item.name);
                    unreadable += 1;
                    return;
                }
            };
            read += 1;
            let when = When::FromMessage {
                fallback: OffsetDateTime::now_utc(),
            };
            let analysis = engine.analyse(&Envelope::default(), &raw, when);
            if let Err(err) = engine.learn(&analysis, Outcome::Delivered) {
                eprintln!("warning: {}: not learned: {err}", item.name);
                failed += 1;
            }
        });
    }
    let after = graph.stats()?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "dry run: read {read} messages from {} files; nothing was written to {}",
        files.len(),
        original.display()
    )?;
    write_changes(&mut out, &before, &after)?;
    if unreadable > 0 || failed > 0 {
        writeln!(
            out,
            "{unreadable} messages could not be read, {failed} could not be learned"
        )?;
    }
    Ok(())
}

fn write_changes(out: &mut impl Write, before: &Stats, after: &Stats) -> anyhow::Result<()> {
    let before = serde_json::to_value(before)?;
    let after = serde_json::to_value(after)?;
    let (Some(before), Some(after)) = (before.as_object(), after.as_object()) else {
        return Ok(());
    };
    for (name, value) in after {
        let now = value.as_u64().unwrap_or(0);
        let was = before
            .get(name)
            .and_then(|value| value.as_u64())
            .unwrap_or(0);
        writeln!(
            out,
            "  {name}: {was} -> {now} (+{})",
            now.saturating_sub(was)
        )?;
    }
    Ok(())
}
