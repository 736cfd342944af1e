//! `gatehouse quarantine list|show|release|delete`.

use std::io::Write;

use gatehouse_engine::{Outcome, Verdict, When};
use gatehouse_graph::GraphError;
use gatehouse_quarantine::{HeldMessage, Quarantine, QuarantineId};
use time::OffsetDateTime;

use crate::UsageError;
use crate::cli::{Format, QuarantineCommand};
use crate::config::Config;
use crate::setup::{self, GraphAccess};

pub(crate) fn run(config: &Config, command: QuarantineCommand) -> anyhow::Result<()> {
    let quarantine = setup::quarantine(config)?;
    match command {
        QuarantineCommand::List {
            format,
            campaign: true,
        } => crate::learned::list_by_campaign(&quarantine, format),
        QuarantineCommand::List {
            format,
            campaign: false,
        } => list(&quarantine, format),
        QuarantineCommand::Show { id, format } => {
            let id = parse_id(&id)?;
            let verdict = quarantine.verdict(id)?;
            let mut out = std::io::stdout().lock();
            match format {
                Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&verdict)?)?,
                Format::Text => write!(out, "{}", gatehouse_engine::render_text(&verdict))?,
            }
            Ok(())
        }
        QuarantineCommand::Release { ids } => {
            let ids = parse_ids(&ids)?;
            release(config, &quarantine, &ids)
        }
        QuarantineCommand::Delete { ids } => {
            let ids = parse_ids(&ids)?;
            let user = setup::current_user();
            let mut out = std::io::stdout().lock();
            for id in ids {
                // The lock keeps a release of the same id from running at the same time.
                let lock = quarantine.lock(id)?;
                quarantine.delete(id, &user)?;
                drop(lock);
                writeln!(out, "deleted {id}")?;
            }
            Ok(())
        }
    }
}

fn parse_id(value: &str) -> anyhow::Result<QuarantineId> {
    QuarantineId::parse(value).map_err(|err| UsageError(err.to_string()).into())
}

/// Validates every id before any is acted on, so a typo in the third id does
/// not leave the first two released.
fn parse_ids(values: &[String]) -> anyhow::Result<Vec<QuarantineId>> {
    values.iter().map(|value| parse_id(value)).collect()
}

fn list(quarantine: &Quarantine, format: Format) -> anyhow::Result<()> {
    let (verdicts, unreadable) = readable_verdicts(quarantine)?;
    let mut out = std::io::stdout().lock();
    for verdict in &verdicts {
        match format {
            Format::Json => writeln!(out, "{}", serde_json::to_string(verdict)?)?,
            Format::Text => {
                let signals: Vec<&str> = verdict
                    .signals
                    .iter()
                    .map(|signal| signal.id.as_str())
                    .collect();
                let recipients: Vec<String> = verdict
                    .envelope
                    .rcpt_to
                    .iter()
                    .map(|recipient| terminal_safe(recipient))
                    .collect();
                writeln!(
                    out,
                    "{}  {:>5.1}  {} -> {}  {:?}  [{}]",
                    verdict.id,
                    verdict.score,
                    terminal_safe(&verdict.envelope.mail_from),
                    recipients.join(","),
                    verdict.message.subject.as_deref().unwrap_or(""),
                    signals.join(", ")
                )?;
            }
        }
    }
    out.flush()?;
    fail_if_unreadable(unreadable)
}

/// Escapes the characters of an envelope address that would change how a
/// terminal shows the line: controls, and the bidirectional formatting
/// characters that can make `evil@x.test` read as another address.
/// SMTPUTF8 lets a sender use any of the latter.
fn terminal_safe(text: &str) -> String {
    text.chars()
        .map(|character| {
            let bidi = matches!(
                character,
                '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
            );
            if bidi || character.is_control() {
                character.escape_unicode().to_string()
            } else {
                character.to_string()
            }
        })
        .collect()
}

/// Returns the held verdicts that can be read and the number that cannot,
/// printing a warning naming each of those, so one damaged file does not
/// hide the others.
pub(crate) fn readable_verdicts(quarantine: &Quarantine) -> anyhow::Result<(Vec<Verdict>, usize)> {
    let mut verdicts = Vec::new();
    let mut unreadable = 0;
    for verdict in quarantine.list()? {
        match verdict {
            Ok(verdict) => verdicts.push(verdict),
            Err(err) => {
                eprintln!("warning: skipped an unreadable held verdict: {err}");
                unreadable += 1;
            }
        }
    }
    Ok((verdicts, unreadable))
}

/// Fails when some held verdicts could not be read, once the listing has
/// printed the others, so that scripts notice.
pub(crate) fn fail_if_unreadable(unreadable: usize) -> anyhow::Result<()> {
    if unreadable > 0 {
        anyhow::bail!(
            "{unreadable} held verdict(s) could not be read; repair or move the files named above"
        );
    }
    Ok(())
}

fn release(config: &Config, quarantine: &Quarantine, ids: &[QuarantineId]) -> anyhow::Result<()> {
    let delivery = setup::delivery(config);
    let user = setup::current_user();
    let runtime = setup::runtime()?;
    // Every id is tried, as postsuper does, so one failure does not leave
    // the rest held. The failures are listed and make the exit status 1.
    let mut released = Vec::new();
    let mut failures = Vec::new();
    for &id in ids {
        match runtime.block_on(gatehouse_smtp::release(quarantine, &delivery, id, &user)) {
            Ok(done) => {
                writeln!(
                    std::io::stdout().lock(),
                    "released {id}: {}",
                    done.reply.to_string().trim_end()
                )?;
                released.push(done.message);
            }
            Err(err) => {
                failures.push(anyhow::Error::new(err).context(format!("cannot release {id}")))
            }
        }
    }
    if !released.is_empty() {
        learn_releases(config, quarantine, released)?;
    }

    if failures.len() == 1 && ids.len() == 1 {
        return Err(failures.remove(0));
    }
    for failure in &failures {
        crate::print_error(failure);
    }
    if !failures.is_empty() {
        anyhow::bail!(
            "{} of {} held messages could not be released; the others were",
            failures.len(),
            ids.len()
        );
    }
    Ok(())
}

/// Teaches the graph that the released mail was wanted. A running
/// `gatehouse serve` keeps the graph store open; it then learns the
/// releases itself within seconds.
fn learn_releases(
    config: &Config,
    quarantine: &Quarantine,
    released: Vec<HeldMessage>,
) -> anyhow::Result<()> {
    let engine = match setup::engine(config, GraphAccess::Write) {
        Ok(engine) => engine,
        Err(err) if matches!(err.downcast_ref(), Some(GraphError::InUse { .. })) => {
            eprintln!(
                "note: another process has the graph store open; a running `gatehouse serve` learns the release within 5 s"
            );
            return Ok(());
        }
        Err(err) => {
            eprintln!("warning: released, but the graph could not learn the release: {err:#}");
            return Ok(());
        }
    };
    for message in released {
        let when = When::At(OffsetDateTime::now_utc());
        let analysis = engine.analyse(&message.verdict.envelope, &message.raw, when);
        match engine.learn(&analysis, Outcome::Released) {
            Ok(()) => quarantine.mark_release_learned(message.id)?,
            Err(err) => eprintln!("warning: released {} was not learned: {err}", message.id),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_safe_escapes_bidi_and_controls() {
        assert_eq!(terminal_safe("\u{202e}moc.evil@x"), "\\u{202e}moc.evil@x");
        assert_eq!(terminal_safe("a\u{2066}b\u{7}c"), "a\\u{2066}b\\u{7}c");
        assert_eq!(terminal_safe("jun.ma@例え.jp"), "jun.ma@例え.jp");
    }
}
