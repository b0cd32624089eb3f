//! Source commands: configure, test, sync (with progress and cancel),
//! history, and an administrator's device-code sign-in (Entra `delegated`).
//!
//! Secrets go from the UI straight to the OS keyring and never come back.
//! A sync locks the cache only to record and to apply the run; progress is
//! kept here and polled by the UI (`sync_progress`), which needs no extra
//! Tauri permission.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use custodian::model::SourceId;
use custodian::ops::{DeviceCodePrompt, SharedStore};
use custodian::store::sync::{LifecycleEventView, SourceView, SyncRunView};
use custodian::store::Store;
use custodian::sync::http::{Cancel, HttpPolicy};
use custodian::sync::secrets::KeyringSecrets;
use custodian::sync::{ProgressFn, SyncProgress};
use custodian::{Error, ErrorCode, Result};
use tauri::State;

use crate::AppState;

/// A sync under way.
pub struct RunningSync {
    cancel: Cancel,
    progress: Option<SyncProgress>,
}

/// The syncs under way, by source id. Shared with the progress callbacks.
pub type Registry = Arc<Mutex<HashMap<i64, RunningSync>>>;

impl SharedStore for AppState {
    fn with_store<T>(&self, f: impl FnOnce(&mut Store) -> Result<T>) -> Result<T> {
        self.with_mut(f)
    }
}

fn lock(registry: &Registry) -> Result<MutexGuard<'_, HashMap<i64, RunningSync>>> {
    registry
        .lock()
        .map_err(|_| Error::internal("sync registry poisoned; restart Custodian"))
}

#[tauri::command(async)]
#[tracing::instrument(skip_all, err(Debug))]
pub fn sources(state: State<'_, AppState>) -> Result<Vec<SourceView>> {
    state.with(custodian::ops::sources)
}

#[tauri::command(async)]
#[tracing::instrument(skip(state, secret), err(Debug))]
pub fn add_source(
    state: State<'_, AppState>,
    kind: String,
    name: String,
    settings: serde_json::Value,
    secret: Option<String>,
) -> Result<SourceView> {
    state.with_mut(|s| {
        custodian::ops::add_source(
            s,
            &KeyringSecrets::default(),
            &kind,
            &name,
            settings,
            secret.as_deref(),
            chrono::Utc::now(),
        )
    })
}

#[tauri::command(async)]
#[tracing::instrument(skip(state, secret), err(Debug))]
pub fn set_source_secret(state: State<'_, AppState>, id: i64, secret: String) -> Result<()> {
    state.with(|s| {
        custodian::ops::set_source_secret(s, &KeyringSecrets::default(), SourceId(id), &secret)
    })
}

/// Lets Custodian carry out remediation tasks in the source, or stops it.
#[tauri::command(async)]
#[tracing::instrument(skip(state), err(Debug))]
pub fn set_source_write_back(state: State<'_, AppState>, id: i64, on: bool) -> Result<SourceView> {
    state.with_mut(|s| {
        let who = custodian::ops::actor(s, None)?;
        custodian::ops::set_write_back(s, who, &id.to_string(), on, chrono::Utc::now())
    })
}

/// Removes the generated demo organisation without loading another
/// (audited); history made on it only with `discard_history`.
#[tauri::command(async)]
#[tracing::instrument(skip(state), err(Debug))]
pub fn clear_demo(state: State<'_, AppState>, discard_history: bool) -> Result<()> {
    state.with_mut(|s| custodian::ops::clear_demo(s, discard_history, chrono::Utc::now()))
}

#[tauri::command]
#[tracing::instrument(skip(state), err(Debug))]
pub async fn test_source(state: State<'_, AppState>, id: i64) -> Result<String> {
    custodian::ops::test_source(
        &*state,
        SourceId(id),
        &KeyringSecrets::default(),
        Cancel::new(),
    )
    .await
}

/// Runs a sync to the end; poll `sync_progress` meanwhile.
#[tauri::command]
#[tracing::instrument(skip(state), err(Debug))]
pub async fn sync_source(state: State<'_, AppState>, id: i64) -> Result<SyncRunView> {
    let cancel = Cancel::new();
    {
        let mut running = lock(&state.syncs)?;
        if running.contains_key(&id) {
            return Err(Error::new(
                ErrorCode::InvalidInput,
                "this source is already syncing",
            ));
        }
        running.insert(
            id,
            RunningSync {
                cancel: cancel.clone(),
                progress: None,
            },
        );
    }
    let registry = state.syncs.clone();
    let progress: ProgressFn = Arc::new(move |p: &SyncProgress| {
        if let Ok(mut map) = registry.lock() {
            if let Some(r) = map.get_mut(&p.source_id) {
                r.progress = Some(p.clone());
            }
        }
    });
    let app: &AppState = &state;
    let result = custodian::ops::sync_source_shared(
        app,
        SourceId(id),
        &KeyringSecrets::default(),
        progress,
        cancel,
    )
    .await;
    lock(&state.syncs)?.remove(&id);
    result
}

/// The latest progress of a running sync, or `null` when none runs.
#[tauri::command(async)]
pub fn sync_progress(state: State<'_, AppState>, id: i64) -> Result<Option<SyncProgress>> {
    Ok(lock(&state.syncs)?.get(&id).map(|r| {
        r.progress.clone().unwrap_or(SyncProgress {
            source_id: id,
            phase: "starting".into(),
            pages: 0,
            items: 0,
            total: None,
        })
    }))
}

/// Asks a running sync to stop; the previous snapshot is kept.
#[tauri::command(async)]
#[tracing::instrument(skip(state), err(Debug))]
pub fn cancel_sync(state: State<'_, AppState>, id: i64) -> Result<bool> {
    Ok(lock(&state.syncs)?
        .get(&id)
        .map(|r| r.cancel.cancel())
        .is_some())
}

#[tauri::command(async)]
#[tracing::instrument(skip(state), err(Debug))]
pub fn sync_runs(
    state: State<'_, AppState>,
    source: Option<i64>,
    limit: Option<u32>,
) -> Result<Vec<SyncRunView>> {
    state.with(|s| custodian::ops::sync_runs(s, source.map(SourceId), limit.unwrap_or(50).min(500)))
}

#[tauri::command(async)]
#[tracing::instrument(skip(state), err(Debug))]
pub fn run_events(state: State<'_, AppState>, run: i64) -> Result<Vec<LifecycleEventView>> {
    state.with(|s| custodian::ops::run_events(s, run))
}

/// Begins an administrator's device-code sign-in for the source: returns
/// the code to show and where to enter it; then `finish_source_sign_in`.
#[tauri::command]
#[tracing::instrument(skip(state), err(Debug))]
pub async fn begin_source_sign_in(state: State<'_, AppState>, id: i64) -> Result<DeviceCodePrompt> {
    let view = state.with(|s| s.source(SourceId(id)))?;
    state.sign_ins.begin(&view, HttpPolicy::default()).await
}

/// Waits until the administrator has signed in (the refresh token goes to
/// the OS keyring), declined, or the code expired; returns who signed in.
#[tauri::command]
#[tracing::instrument(skip(state), err(Debug))]
pub async fn finish_source_sign_in(state: State<'_, AppState>, id: i64) -> Result<Option<String>> {
    let view = state.with(|s| s.source(SourceId(id)))?;
    state
        .sign_ins
        .finish(&view, &KeyringSecrets::default())
        .await
}

/// Stops waiting for a sign-in; false when none waits.
#[tauri::command(async)]
#[tracing::instrument(skip(state), err(Debug))]
pub fn cancel_source_sign_in(state: State<'_, AppState>, id: i64) -> Result<bool> {
    state.sign_ins.cancel(SourceId(id))
}
