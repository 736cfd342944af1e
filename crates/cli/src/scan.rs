//! `gatehouse scan` and `gatehouse learn`: messages from files through the engine.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Context;
use gatehouse_engine::{Action, Analysis, Engine, Envelope, Outcome, Verdict, When};
use indicatif::{ProgressBar, ProgressStyle};
use time::OffsetDateTime;

use crate::UsageError;
use crate::cli::Format;
use crate::config::Config;
use crate::input::{self, Item};
use crate::setup::{self, GraphAccess};

/// Counts for the closing summary.
#[derive(Debug, Default)]
struct Tally {
    messages: u64,
    unreadable: u64,
    learned: u64,
    not_learned: u64,
}

pub(crate) fn scan(
    config: &Config,
    paths: &[PathBuf],
    learn: bool,
    format: Format,
) -> anyhow::Result<()> {
    let access = if learn {
        GraphAccess::Write
    } else {
        GraphAccess::Read
    };
    let engine = setup::engine(config, access)?;
    let files = input::collect_files(paths).map_err(|err| UsageError(err.to_string()))?;
    let max_bytes = config.smtp.limits.max_message_bytes;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut tally = Tally::default();
    let mut write_error = None;

    for file in &files {
        input::read_messages(file, max_bytes, &mut |item| {
            let Some(analysis) = analyse(&engine, item, &mut tally) else {
                return;
            };
            if learn {
                teach(
                    &engine,
                    &analysis,
                    outcome_of(&analysis.verdict),
                    &mut tally,
                );
            }
            let written = match format {
                Format::Json => serde_json::to_string(&analysis.verdict)
                    .map_err(std::io::Error::other)
                    .and_then(|json| writeln!(out, "{json}")),
                Format::Text => write_text(&mut out, &analysis.verdict),
            };
            if let Err(err) = written {
                write_error.get_or_insert(err);
            }
        });
        if let Some(err) = write_error.take() {
            // A closed pipe (`gatehouse scan … | head`) ends the scan quietly.
            if err.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(());
            }
            return Err(err).context("cannot write the scan output");
        }
    }
    out.flush().context("cannot write the scan output")?;
    finish(&tally, learn)
}

pub(crate) fn learn(config: &Config, paths: &[PathBuf]) -> anyhow::Result<()> {
    let engine = setup::engine(config, GraphAccess::Write)?;
    let files = input::collect_files(paths).map_err(|err| UsageError(err.to_string()))?;
    let max_bytes = config.smtp.limits.max_message_bytes;
    let progress = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(files.len() as u64);
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} files, {msg} [{elapsed}]")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut tally = Tally::default();

    // One transaction per batch: a commit per message would cap learning at
    // about 2,100 messages/s. The observations of history do not depend on
    // each other's verdicts, so batching changes nothing that is learned.
    let mut batch: Vec<Analysis> = Vec::with_capacity(LEARN_BATCH);
    for file in &files {
        input::read_messages(file, max_bytes, &mut |item| {
            if let Some(analysis) = analyse(&engine, item, &mut tally) {
                batch.push(analysis);
                if batch.len() == LEARN_BATCH {
                    teach_batch(&engine, &mut batch, &mut tally);
                }
            }
        });
        progress.set_message(format!("{} messages", tally.messages));
        progress.inc(1);
    }
    teach_batch(&engine, &mut batch, &mut tally);
    progress.finish_and_clear();
    eprintln!(
        "learned {} messages from {} files",
        tally.learned,
        files.len()
    );
    finish(&tally, true)
}

fn analyse(engine: &Engine, item: Item, tally: &mut Tally) -> Option<Analysis> {
    let raw = match item.raw {
        Ok(raw) => raw,
        Err(err) => {
            eprintln!("warning: {}: {err}", item.name);
            tally.unreadable += 1;
            return None;
        }
    };
    tally.messages += 1;
    let when = When::FromMessage {
        fallback: OffsetDateTime::now_utc(),
    };
    let mut analysis = engine.analyse(&Envelope::default(), &raw, when);
    analysis.verdict.file = Some(item.name);
    Some(analysis)
}

/// Messages learned per graph transaction by `gatehouse learn`.
const LEARN_BATCH: usize = 500;

/// Teaches the graph a batch of history, all of it delivered mail whatever
/// today's verdict on it, and empties the batch.
fn teach_batch(engine: &Engine, batch: &mut Vec<Analysis>, tally: &mut Tally) {
    if batch.is_empty() {
        return;
    }
    let pairs: Vec<(&Analysis, Outcome)> = batch
        .iter()
        .map(|analysis| (analysis, Outcome::Delivered))
        .collect();
    match engine.learn_batch(&pairs) {
        Ok(_) => tally.learned += batch.len() as u64,
        Err(err) => {
            let first = batch[0].verdict.file.as_deref().unwrap_or("");
            eprintln!(
                "warning: {} messages from {first} on were not learned: {err}",
                batch.len()
            );
            tally.not_learned += batch.len() as u64;
        }
    }
    batch.clear();
}

fn teach(engine: &Engine, analysis: &Analysis, outcome: Outcome, tally: &mut Tally) {
    match engine.learn(analysis, outcome) {
        Ok(()) => tally.learned += 1,
        Err(err) => {
            let file = analysis.verdict.file.as_deref().unwrap_or("");
            eprintln!("warning: {file}: not learned: {err}");
            tally.not_learned += 1;
        }
    }
}

/// Returns what `scan --learn` teaches. Held mail only counts toward campaign windows.
fn outcome_of(verdict: &Verdict) -> Outcome {
    match verdict.action {
        Action::Hold | Action::Reject => Outcome::Held,
        Action::Deliver | Action::Tag => Outcome::Delivered,
    }
}

fn finish(tally: &Tally, learn: bool) -> anyhow::Result<()> {
    if tally.unreadable > 0 {
        eprintln!("warning: {} messages could not be read", tally.unreadable);
    }
    if learn && tally.not_learned > 0 {
        anyhow::bail!(
            "{} of {} messages were not learned",
            tally.not_learned,
            tally.messages
        );
    }
    Ok(())
}

fn write_text(out: &mut impl Write, verdict: &Verdict) -> std::io::Result<()> {
    let file = verdict.file.as_deref().unwrap_or("-");
    let action = serde_json::to_value(verdict.action)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default();
    writeln!(out, "{file}: {action} (score {:.1})", verdict.score)?;
    let subject = verdict.message.subject.as_deref().unwrap_or("");
    let from = verdict
        .message
        .from
        .as_deref()
        .unwrap_or(&verdict.envelope.mail_from);
    writeln!(out, "  from {from}: {subject}")?;
    for sentence in gatehouse_engine::explain(verdict) {
        writeln!(out, "  - {sentence}")?;
    }
    if let Some(campaign) = &verdict.campaign {
        writeln!(
            out,
            "  campaign {}: {} messages, {} senders, {} recipients",
            campaign.cluster,
            campaign.messages,
            campaign.senders.len(),
            campaign.recipients
        )?;
    }
    for code in &verdict.qr_codes {
        writeln!(out, "  qr {} in {}", code.payload, code.location)?;
    }
    for finding in &verdict.findings {
        writeln!(
            out,
            "  finding {} in {}: {}",
            finding.id, finding.location, finding.detail
        )?;
    }
    Ok(())
}
