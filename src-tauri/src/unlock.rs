//! Unlocking the cache with a passphrase, where no Secret Service runs.
//!
//! The cache's key normally lives in the OS keyring. Without one (no
//! gnome-keyring or other Secret Service on the session bus), opening the
//! store fails with `keyring`; so does a cache marked passphrase-keyed
//! (`<cache>.key-mode`) while no passphrase is known. The UI answers that
//! code with its unlock view, which asks [`unlock_state`] whether to have a
//! passphrase chosen (no cache yet) or entered, and sends it to [`unlock`].
//!
//! The passphrase crosses IPC only inbound and is never logged: every
//! `instrument` here skips all arguments, and no error message carries it.

use custodian::ops::{self, CacheKey, KeySource};
use custodian::store::Location;
use custodian::{Error, ErrorCode, Result};
use tauri::State;

use crate::AppState;

/// What the unlock view asks for.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UnlockState {
    /// The store is open: nothing to unlock.
    pub unlocked: bool,
    /// No cache exists yet: a passphrase is chosen (typed twice) and keys
    /// the new cache. Otherwise the cache's passphrase is entered.
    pub new_cache: bool,
    /// The shortest passphrase that may be chosen.
    pub min_length: usize,
    /// The cache file (shown, so the user knows what the passphrase opens).
    pub location: String,
}

fn cache_file() -> Result<std::path::PathBuf> {
    match ops::app_location()? {
        Location::File(p) => Ok(p),
        Location::Postgres(_) => Err(Error::invalid(
            "a team workspace is not encrypted with a cache passphrase; its login's password is in Settings",
        )),
    }
}

/// A file that does not exist yet or holds nothing is a new cache.
fn is_new(path: &std::path::Path) -> bool {
    std::fs::metadata(path)
        .map(|m| m.len() == 0)
        .unwrap_or(true)
}

#[tauri::command(async)]
#[tracing::instrument(skip_all, err(Debug))]
pub fn unlock_state(state: State<'_, AppState>) -> Result<UnlockState> {
    let path = cache_file()?;
    let unlocked = state.store.lock().map(|s| s.is_ok()).unwrap_or(false);
    Ok(UnlockState {
        unlocked,
        new_cache: is_new(&path),
        min_length: ops::MIN_PASSPHRASE_CHARS,
        location: path.display().to_string(),
    })
}

/// Opens the cache with `passphrase` and puts it in the app's state in
/// place of the open error. For a new cache the passphrase is chosen:
/// `confirm` must repeat it, and it must be long enough; the new cache is
/// keyed by it and gets the demo organisation. For an existing cache a
/// wrong passphrase is `database_unreadable` (the file is left untouched)
/// and the state keeps its error, so the user can try again.
#[tauri::command(async)]
#[tracing::instrument(skip_all, err(Debug))]
pub fn unlock(
    state: State<'_, AppState>,
    passphrase: String,
    confirm: Option<String>,
) -> Result<()> {
    let path = cache_file()?;
    let key = if is_new(&path) {
        CacheKey::chosen(&passphrase, confirm.as_deref().unwrap_or_default())?
    } else {
        CacheKey::entered(&passphrase)?
    };
    drop(passphrase);
    drop(confirm);
    let mut guard = state.store.lock().map_err(|_| {
        Error::internal("an earlier command failed while using the database; restart Custodian")
    })?;
    if guard.is_ok() {
        return Err(Error::invalid("the cache is already open"));
    }
    let started = std::time::Instant::now();
    let opened = ops::open_or_demo_with_key(
        &Location::File(path),
        KeySource::Passphrase(key),
        chrono::Utc::now(),
    );
    let ms = started.elapsed().as_millis() as u64;
    match opened {
        Ok(store) => {
            tracing::info!(ms, "unlocked the cache with its passphrase");
            *guard = Ok(store);
            Ok(())
        }
        Err(e) => {
            tracing::warn!(
                ms,
                code = e.code.as_str(),
                "the passphrase did not unlock the cache"
            );
            if e.code == ErrorCode::DatabaseUnreadable {
                return Err(Error::new(
                    ErrorCode::DatabaseUnreadable,
                    format!(
                        "that passphrase does not open this cache; check it and try again ({})",
                        e.message
                    ),
                ));
            }
            Err(e)
        }
    }
}
