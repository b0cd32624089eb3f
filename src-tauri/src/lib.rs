//! Custodian desktop shell (Tauri 2).
//!
//! API boundary: this crate knows Tauri; the core (`custodian`) does not. Each
//! command is one call into [`custodian::ops`]; errors cross the IPC boundary
//! as the core's `{code, message}` ([`custodian::Error`]), so the UI acts on
//! `code` and shows `message`.
//!
//! If the cache cannot be opened (unreadable, written by a newer Custodian),
//! the window still opens and every command returns that error, so the UI
//! shows it; the file is left untouched, and each command tries again
//! (except when a team workspace is unreachable: that waits for the UI's
//! Retry, the `reconnect` command, so no command waits out a timeout).

use std::process::ExitCode;
use std::sync::Mutex;

use custodian::store::Store;
use custodian::views::{
    IdentityDetail, InventoryFacets, InventoryPage, InventoryQuery, OrgSummary,
};
use custodian::{Error, Result};
use tauri::State;

/// Environment variable holding the log filter (`tracing` `EnvFilter` syntax).
pub const LOG_ENV: &str = "CUSTODIAN_LOG";

mod catalogue;
mod connection;
mod offboarding;
mod posture;
mod reviews;
mod snapshot;
mod sources;
mod unlock;

/// What the commands share: the open cache, or why it could not be opened,
/// and the syncs under way (their progress and a way to cancel them).
pub struct AppState {
    store: Mutex<Result<Store>>,
    syncs: sources::Registry,
    /// Administrators' device-code sign-ins waiting for their code.
    sign_ins: custodian::ops::DeviceSignIns,
    launch: reviews::LaunchState,
}

impl AppState {
    /// Opens the cache (see [`open_store`]); a failure is kept, not raised.
    pub fn open() -> Self {
        AppState {
            store: Mutex::new(open_store()),
            syncs: sources::Registry::default(),
            sign_ins: custodian::ops::DeviceSignIns::default(),
            launch: reviews::LaunchState::default(),
        }
    }

    /// Drops the open store (or its open error) and opens the store again
    /// (after the connection settings changed); the new error, if any, is
    /// kept and returned.
    fn reopen(&self) -> Result<()> {
        let mut guard = self.store.lock().map_err(|_| {
            Error::internal("an earlier command failed while using the database; restart Custodian")
        })?;
        // Close the old connection before opening the new one.
        *guard = Err(Error::internal("reconnecting"));
        *guard = open_store();
        match &*guard {
            Ok(_) => Ok(()),
            Err(e) => Err(e.clone()),
        }
    }

    /// Like [`AppState::with`], with write access.
    fn with_mut<T>(&self, f: impl FnOnce(&mut Store) -> Result<T>) -> Result<T> {
        let mut guard = self.store.lock().map_err(|_| {
            Error::internal("an earlier command failed while using the database; restart Custodian")
        })?;
        if retry_open(&guard) {
            *guard = open_store();
        }
        match &mut *guard {
            Ok(store) => {
                let done = f(store);
                if done.is_ok() {
                    snapshot::after_change(store);
                }
                done
            }
            Err(e) => Err(e.clone()),
        }
    }

    /// Runs `f` on the store. While the cache is not open, each call tries
    /// again first (so the UI's "Retry" works once the user has fixed the
    /// file or freed the disk; an unreachable workspace waits for
    /// `reconnect`, see [`retry_open`]), then returns the open error with
    /// its code.
    /// A poisoned lock is an `internal` error, not a panic.
    fn with<T>(&self, f: impl FnOnce(&Store) -> Result<T>) -> Result<T> {
        let mut guard = self.store.lock().map_err(|_| {
            Error::internal("an earlier command failed while using the database; restart Custodian")
        })?;
        if retry_open(&guard) {
            *guard = open_store();
        }
        match &*guard {
            Ok(store) => f(store),
            Err(e) => Err(e.clone()),
        }
    }
}

/// Whether a command should try to open the store again first: after any
/// open error but an unreachable workspace (`network`), which waits for the
/// UI's Retry (`reconnect`) instead of making every command wait for the
/// connect timeout.
fn retry_open(state: &Result<Store>) -> bool {
    matches!(state, Err(e) if e.code != custodian::ErrorCode::Network)
}

/// Opens the store at `custodian::ops::app_location()` (`$CUSTODIAN_DB`,
/// else the team workspace saved in Settings, else the cache in the
/// platform data directory) and loads the demo organisation into an empty
/// cache; an unreachable workspace opens its offline snapshot, read-only
/// (see [`snapshot`]). The core refuses, without writing to it, a file it cannot read
/// or one written by a newer Custodian.
fn open_store() -> Result<Store> {
    let opened = custodian::ops::app_location().and_then(|location| {
        tracing::info!(location = %location.display(), "opening the store");
        snapshot::open(&location)
    });
    if let Err(e) = &opened {
        tracing::error!(code = e.code.as_str(), "cannot open the cache: {e}");
    }
    opened
}

// Commands run on the async runtime's worker threads (`async`), not on the
// main thread, so a slow query never freezes the window.

#[tauri::command(async)]
#[tracing::instrument(skip_all, err(Debug))]
fn summary(state: State<'_, AppState>) -> Result<OrgSummary> {
    state.with(custodian::ops::summary)
}

/// When [`run`] began: the first inventory page is logged against it, so a
/// cold start can be measured from outside (`custodian-bench --app`).
static STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
static FIRST_PAGE: std::sync::Once = std::sync::Once::new();

/// The log line `custodian-bench --app` waits for.
pub const FIRST_PAGE_EVENT: &str = "first inventory page served";

#[tauri::command(async)]
#[tracing::instrument(skip(state), err(Debug))]
fn inventory(state: State<'_, AppState>, query: InventoryQuery) -> Result<InventoryPage> {
    let page = state.with(|s| custodian::ops::inventory(s, &query, chrono::Utc::now()))?;
    if !page.rows.is_empty() {
        FIRST_PAGE.call_once(|| {
            let ms = STARTED.get().map_or(0, |t| t.elapsed().as_millis());
            tracing::info!(
                since_start_ms = ms as u64,
                rows = page.rows.len(),
                "{FIRST_PAGE_EVENT}"
            );
        });
    }
    Ok(page)
}

#[tauri::command(async)]
#[tracing::instrument(skip_all, err(Debug))]
fn inventory_facets(state: State<'_, AppState>) -> Result<InventoryFacets> {
    state.with(custodian::ops::inventory_facets)
}

#[tauri::command(async)]
#[tracing::instrument(skip(state), err(Debug))]
fn identity(state: State<'_, AppState>, id: i64) -> Result<IdentityDetail> {
    state.with(|s| custodian::ops::identity(s, id, chrono::Utc::now()))
}

/// Runs the desktop app until its window is closed.
pub fn run() -> ExitCode {
    STARTED.get_or_init(std::time::Instant::now);
    // Standard error and daily-rotated files (see custodian::logging).
    let _logs = custodian::logging::init("info", None);
    let result = tauri::Builder::default()
        .setup(|app| {
            use tauri::Manager as _;
            app.manage(AppState::open());
            snapshot::start_timer();
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            summary,
            inventory,
            inventory_facets,
            identity,
            catalogue::source_kinds,
            sources::sources,
            sources::add_source,
            sources::set_source_secret,
            sources::set_source_write_back,
            sources::clear_demo,
            sources::test_source,
            sources::sync_source,
            sources::sync_progress,
            sources::cancel_sync,
            sources::sync_runs,
            sources::run_events,
            sources::begin_source_sign_in,
            sources::finish_source_sign_in,
            sources::cancel_source_sign_in,
            reviews::acting_person,
            reviews::set_acting_person,
            reviews::find_people,
            reviews::campaigns,
            reviews::create_campaign,
            reviews::campaign_launch_progress,
            reviews::campaign_progress,
            reviews::campaign_items,
            reviews::review_queue,
            reviews::item_history,
            reviews::decide,
            reviews::reassign_reviewer,
            reviews::escalate,
            reviews::delegate_reviewer,
            reviews::remind,
            reviews::close_campaign,
            reviews::export_campaign,
            reviews::tasks,
            reviews::set_task_status,
            reviews::write_back_task,
            reviews::verify_audit,
            offboarding::offboarding_cases,
            offboarding::offboarding_case,
            offboarding::mark_departing,
            offboarding::plan_offboarding,
            offboarding::apply_offboarding,
            offboarding::my_team,
            offboarding::register_identity,
            offboarding::retire_identity,
            offboarding::confirm_access_change,
            offboarding::identity_timeline,
            offboarding::export_tasks,
            posture::posture,
            posture::finding_checks,
            posture::blast_radius,
            posture::blast_document,
            posture::blast_rank,
            posture::who_can_reach,
            posture::paths_to_admin,
            posture::link_identities,
            posture::authorization,
            connection::who_am_i,
            connection::connection_settings,
            connection::save_connection_settings,
            connection::test_connection,
            connection::reconnect,
            connection::sign_in_target,
            connection::sign_in,
            unlock::unlock_state,
            unlock::unlock
        ])
        .run(tauri::generate_context!());
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Custodian could not start: {e}");
            ExitCode::FAILURE
        }
    }
}
