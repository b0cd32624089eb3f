//! The team workspace's offline snapshot (see `custodian::store::snapshot`):
//! opening the store falls back to it when the workspace does not answer,
//! and while the workspace answers it is refreshed in the background, on
//! its own connection: once when the store opens, then every
//! [`EVERY`], and after a change made in the app (at most once per
//! [`AFTER_CHANGE`], so a reviewer's own decisions are in the snapshot they
//! see offline). One refresh at a time; a failed one leaves the last good
//! snapshot.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use custodian::store::{Location, Store};
use custodian::{ops, Result};

/// How often the snapshot is read again while the app runs.
pub const EVERY: Duration = Duration::from_secs(15 * 60);

/// The shortest gap between two refreshes started by changes
/// (`CUSTODIAN_SNAPSHOT_AFTER_CHANGE_SECS` overrides it, for tests).
pub const AFTER_CHANGE: Duration = Duration::from_secs(60);

static REFRESHING: Mutex<()> = Mutex::new(());
/// A change was made since the running refresh started.
static DIRTY: AtomicBool = AtomicBool::new(false);

fn after_change_gap() -> Duration {
    std::env::var("CUSTODIAN_SNAPSHOT_AFTER_CHANGE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(AFTER_CHANGE)
}

/// Opens the store at `location`, or the workspace's offline snapshot when
/// the workspace cannot be reached; a live workspace gets its snapshot
/// refreshed in the background.
pub fn open(location: &Location) -> Result<Store> {
    let store = ops::open_or_snapshot(location, chrono::Utc::now())?;
    if store.snapshot().is_none() && matches!(location, Location::Postgres(_)) {
        refresh_in_background(location.clone());
    }
    Ok(store)
}

/// Called after the app changed something in a live workspace: the
/// snapshot is read again in the background, at most once per
/// [`AFTER_CHANGE`] (a refresh under way runs once more when it is done).
pub fn after_change(store: &Store) {
    if store.snapshot().is_some() || store.engine() != custodian::store::Engine::Postgres {
        return;
    }
    DIRTY.store(true, Ordering::SeqCst);
    if REFRESHING.try_lock().is_err() {
        return; // the running refresh sees DIRTY
    }
    match ops::app_location() {
        Ok(location @ Location::Postgres(_)) => refresh_in_background(location),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "no store location for the offline snapshot"),
    }
}

fn refresh_in_background(location: Location) {
    let spawned = std::thread::Builder::new()
        .name("snapshot".into())
        .spawn(move || refresh(&location));
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the offline snapshot refresh");
    }
}

fn refresh(location: &Location) {
    // Another refresh is writing: it reads the same workspace, and runs
    // again if something changed meanwhile.
    let Ok(_one) = REFRESHING.try_lock() else {
        return;
    };
    loop {
        DIRTY.store(false, Ordering::SeqCst);
        let started = std::time::Instant::now();
        match ops::refresh_snapshot(location, chrono::Utc::now()) {
            Ok(info) => tracing::info!(
                rows = info.rows,
                ms = started.elapsed().as_millis() as u64,
                "offline snapshot of the workspace refreshed"
            ),
            Err(e) => {
                tracing::warn!(
                    code = e.code.as_str(),
                    "offline snapshot not refreshed (the last one is kept): {e}"
                );
                return;
            }
        }
        if !DIRTY.load(Ordering::SeqCst) {
            return;
        }
        std::thread::sleep(after_change_gap().saturating_sub(started.elapsed()));
    }
}

/// Refreshes the snapshot every [`EVERY`] while the app runs, when the
/// app's store is a team workspace.
pub fn start_timer() {
    let spawned = std::thread::Builder::new()
        .name("snapshot-timer".into())
        .spawn(|| loop {
            std::thread::sleep(EVERY);
            match ops::app_location() {
                Ok(location @ Location::Postgres(_)) => refresh(&location),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "no store location for the offline snapshot"),
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the offline snapshot timer");
    }
}
