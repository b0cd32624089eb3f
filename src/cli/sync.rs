//! `custodian sync --all [--every 1h]` and `custodian worker`: headless
//! syncs for cron or systemd. Every configured (non-demo) source is synced
//! in turn through `ops::sync_all`; one failing does not stop the others.
//! A single pass exits 1 if any source failed; a schedule (`--every`, or
//! `worker`) runs a pass, sleeps until the next is due and stops cleanly on
//! SIGTERM or Ctrl-C (the run under way is cancelled and recorded
//! `cancelled`), exiting 0. Each pass prints one line per source (names
//! made terminal-safe) and is logged.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use custodian::ops::{self, ScheduledRun};
use custodian::store::Location;
use custodian::sync::http::{Cancel, HttpPolicy};
use custodian::sync::secrets::SecretsFrom;
use custodian::{Error, Result};

/// The shortest schedule accepted: sources are not to be polled harder.
pub const MIN_EVERY: Duration = Duration::from_secs(60);

/// `90s`, `15m`, `1h`, `2d` (a bare number is seconds); at least a minute.
pub fn parse_every(s: &str) -> Result<Duration> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| Error::invalid(format!("'{s}' is not an interval: use e.g. 30m, 1h or 1d")))?;
    let secs = match unit.trim() {
        "" | "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        "d" => n.checked_mul(86_400),
        _ => None,
    }
    .ok_or_else(|| Error::invalid(format!("'{s}' is not an interval: use e.g. 30m, 1h or 1d")))?;
    let every = Duration::from_secs(secs);
    if every < MIN_EVERY {
        return Err(Error::invalid(format!(
            "'{s}' is too often: syncs run at most once a minute"
        )));
    }
    Ok(every)
}

/// Runs one pass, or passes on a schedule until SIGTERM / Ctrl-C.
pub fn run(
    location: &Location,
    secrets_from: &SecretsFrom,
    every: Option<Duration>,
    json: bool,
    out: &mut impl Write,
) -> Result<ExitCode> {
    let secrets = secrets_from.open()?;
    let store = ops::open_or_demo(location, chrono::Utc::now())?;
    let shared = std::sync::Mutex::new(store);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::internal(format!("cannot start the async runtime: {e}")))?;
    rt.block_on(async {
        let cancel = Cancel::new();
        let stopped = Arc::new(tokio::sync::Notify::new());
        // Listening starts here, before the first pass: a SIGTERM that
        // comes while it runs is a clean stop, not the default kill.
        let signals = Signals::listen();
        {
            let (cancel, stopped) = (cancel.clone(), stopped.clone());
            tokio::spawn(async move {
                let which = signals.recv().await;
                tracing::info!(signal = which, "stopping: the run under way is cancelled");
                cancel.cancel();
                stopped.notify_one();
            });
        }
        if let Some(e) = every {
            tracing::info!(every_secs = e.as_secs(), "scheduled syncs started");
        }
        loop {
            let started = tokio::time::Instant::now();
            let runs =
                ops::sync_all(&shared, &*secrets, cancel.clone(), HttpPolicy::default()).await?;
            let failed = report(&runs, json, out)?;
            tracing::info!(sources = runs.len(), failed, "sync pass finished");
            let Some(every) = every else {
                return Ok(if failed > 0 {
                    ExitCode::FAILURE
                } else {
                    ExitCode::SUCCESS
                });
            };
            if cancel.is_cancelled() {
                break;
            }
            tokio::select! {
                () = tokio::time::sleep_until(started + every) => {}
                () = stopped.notified() => break,
            }
        }
        tracing::info!("scheduled syncs stopped");
        Ok(ExitCode::SUCCESS)
    })
}

/// SIGTERM (systemd stop) and Ctrl-C, registered when made.
struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn listen() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let open = |kind: SignalKind, name: &str| match signal(kind) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for {name}");
                    None
                }
            };
            Signals {
                term: open(SignalKind::terminate(), "SIGTERM"),
                int: open(SignalKind::interrupt(), "SIGINT"),
            }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    /// Waits for the first; which one, for the log.
    async fn recv(self) -> &'static str {
        #[cfg(unix)]
        {
            async fn next(s: Option<tokio::signal::unix::Signal>) {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            }
            tokio::select! {
                () = next(self.term) => "SIGTERM",
                () = next(self.int) => "SIGINT",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}

/// Prints a pass: a line per source (or one JSON line), then a total.
/// Returns how many failed.
fn report(runs: &[ScheduledRun], json: bool, out: &mut impl Write) -> Result<usize> {
    let failed = runs.iter().filter(|r| r.result.is_err()).count();
    if json {
        let list: Vec<serde_json::Value> = runs
            .iter()
            .map(|r| match &r.result {
                Ok(run) => serde_json::json!({
                    "source_id": r.source.0, "source": r.name, "ok": true, "run": run,
                }),
                Err(e) => serde_json::json!({
                    "source_id": r.source.0, "source": r.name, "ok": false,
                    "error": {"code": e.code.as_str(), "message": e.message},
                }),
            })
            .collect();
        let pass = serde_json::json!({"sources": runs.len(), "failed": failed, "runs": list});
        writeln!(out, "{}", serde_json::to_string(&pass)?)?;
    } else {
        if runs.is_empty() {
            writeln!(
                out,
                "no sources to sync (add one with `custodian source add`)"
            )?;
        }
        for r in runs {
            let name = custodian::sanitize::terminal(&r.name);
            match &r.result {
                Ok(run) => writeln!(
                    out,
                    "ok      #{} {name}: run #{} {} ({}): {} items, {} joiners, {} movers, {} leavers{}",
                    r.source.0,
                    run.id,
                    run.status,
                    run.mode.as_deref().unwrap_or("-"),
                    run.items,
                    run.joiners,
                    run.movers,
                    run.leavers,
                    if run.warnings.is_empty() {
                        String::new()
                    } else {
                        format!(", {} warning(s) (see `custodian runs`)", run.warnings.len())
                    }
                )?,
                Err(e) => writeln!(
                    out,
                    "FAILED  #{} {name}: error[{}]: {}",
                    r.source.0,
                    e.code.as_str(),
                    custodian::sanitize::terminal(&e.message)
                )?,
            }
        }
        writeln!(
            out,
            "{} source(s): {} synced, {failed} failed",
            runs.len(),
            runs.len() - failed
        )?;
    }
    out.flush()?;
    Ok(failed)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn intervals_parse_with_units_and_a_floor() {
        assert_eq!(parse_every("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_every(" 15m ").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_every("2d").unwrap(), Duration::from_secs(172_800));
        assert_eq!(parse_every("120").unwrap(), Duration::from_secs(120));
        assert!(parse_every("30s")
            .unwrap_err()
            .message
            .contains("too often"));
        assert!(parse_every("1w").is_err());
        assert!(parse_every("h").is_err());
        assert!(parse_every("99999999999999999999d").is_err());
    }
}
