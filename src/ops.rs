//! The use cases. The CLI (`src/main.rs`) and the desktop shell (`src-tauri`)
//! are thin callers of these functions and of nothing else in the core.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::demo::{self, DemoSize};
use crate::error::{Error, Result};
use crate::store::load::LoadCounts;
use crate::store::{Location, Store};
use crate::views::{IdentityDetail, InventoryFacets, InventoryPage, InventoryQuery, OrgSummary};

// The default location lives in `crate::paths` (below `ops` and `logging`,
// which both use it); re-exported for the CLI and the desktop shell.
pub use crate::paths::{default_db_path, default_location, DB_ENV};

/// Copies the whole store at `from` into the empty store at `to` (created
/// when it is a new cache file). The source must exist; the audit chain
/// must verify at the target with the source's head.
pub fn copy_store(from: &Location, to: &Location) -> Result<crate::store::copy::CopyReport> {
    if let Location::File(p) = from {
        if !p.exists() {
            return Err(Error::not_found(format!(
                "there is no cache at {}",
                p.display()
            )));
        }
    }
    if from == to {
        return Err(Error::invalid("--from and --to are the same store"));
    }
    let source = Store::open_location(from)?;
    let mut target = Store::open_location(to)?;
    let report = crate::store::copy::copy(&source, &mut target)?;
    tracing::info!(from = %report.from, to = %report.to, rows = report.rows, "store copied");
    Ok(report)
}

/// What a store is: its engine, where it is (no password), its schema.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StoreInfo {
    pub engine: crate::store::Engine,
    pub location: String,
    pub schema_version: i64,
}

pub fn store_info(location: &Location) -> Result<StoreInfo> {
    let store = Store::open_location(location)?;
    Ok(StoreInfo {
        engine: store.engine(),
        location: store.location().to_string(),
        schema_version: store.schema_version()?,
    })
}

/// Opens the store at `location`; when it holds nothing (no source has been
/// configured or synced yet), loads the S demo organisation so a newcomer
/// sees a populated console. A store that holds governance history (see
/// [`load_demo`]) is opened as it is.
pub fn open_or_demo(location: &Location, now: DateTime<Utc>) -> Result<Store> {
    open_or_demo_with_key(location, KeySource::Default, now)
}

/// [`open_or_demo`] with the cache key from `source`: a passphrase given at
/// run time (the app's unlock window) creates a new cache keyed by it, or
/// opens an existing one; a wrong one is `database_unreadable` and the file
/// is left untouched. See [`crate::store::key`] for the marker and the
/// `keyring` error of a passphrase-keyed cache opened without one.
pub fn open_or_demo_with_key(
    location: &Location,
    source: KeySource,
    now: DateTime<Utc>,
) -> Result<Store> {
    let open = || -> Result<Store> {
        let mut store = Store::open_location(location)?;
        // A team workspace never gets the demo organisation.
        if !store.is_workspace()? && store.is_empty()? && store.history_beyond_demo()?.is_empty() {
            load_demo(&mut store, DemoSize::S, demo::DEFAULT_SEED, now)?;
        }
        Ok(store)
    };
    match crate::store::key::opening_key(location, &source)? {
        None => open(),
        Some(key) => {
            let store = crate::store::key::with_key(&key, open)?;
            crate::store::key::opened_with(location, &key);
            Ok(store)
        }
    }
}

pub use crate::store::key::{CacheKey, KeySource, MIN_PASSPHRASE_CHARS};

/// Opens the store at `location`, as [`open_or_demo`] does;
/// when that is an unreachable team workspace (`network`) and an offline
/// snapshot of it exists, opens the snapshot read-only instead. Any other
/// failure, or no usable snapshot, is the workspace's own error.
pub fn open_or_snapshot(location: &Location, now: DateTime<Utc>) -> Result<Store> {
    open_or_snapshot_in(&crate::paths::data_dir()?, location, now)
}

/// [`open_or_snapshot`] under the data directory `dir`.
pub fn open_or_snapshot_in(dir: &Path, location: &Location, now: DateTime<Utc>) -> Result<Store> {
    let e = match open_or_demo(location, now) {
        Ok(s) => return Ok(s),
        Err(e) => e,
    };
    if e.code != crate::error::ErrorCode::Network {
        return Err(e);
    }
    let Some(path) = crate::connection::snapshot_path_in(dir, location)? else {
        return Err(e);
    };
    if !path.exists() {
        return Err(e);
    }
    match Store::open_snapshot(&path) {
        Ok(s) => {
            tracing::warn!(error = %e, snapshot = %path.display(), "the workspace is unreachable: showing its offline snapshot, read-only");
            Ok(s)
        }
        Err(se) => {
            tracing::warn!(error = %se, "the offline snapshot cannot be opened");
            Err(e)
        }
    }
}

/// Removes the demo organisation without loading another (see
/// [`Store::clear_demo`]): history made on it only with `discard_history`.
pub fn clear_demo(store: &mut Store, discard_history: bool, now: DateTime<Utc>) -> Result<()> {
    store.clear_demo(discard_history, now)
}

/// Replaces the cache content with a generated demo organisation. Refused
/// when the store holds governance history beyond the demo's own
/// (campaigns, decisions, offboarding cases, registrations, tasks, audit
/// entries): see [`load_demo_replacing`].
pub fn load_demo(
    store: &mut Store,
    size: DemoSize,
    seed: u64,
    now: DateTime<Utc>,
) -> Result<LoadCounts> {
    load_demo_replacing(store, size, seed, now, false)
}

/// [`load_demo`]; with `replace_history` it replaces a store that holds
/// governance history too, and records that in the audit log in the load's
/// transaction (the audit log itself is kept).
pub fn load_demo_replacing(
    store: &mut Store,
    size: DemoSize,
    seed: u64,
    now: DateTime<Utc>,
    replace_history: bool,
) -> Result<LoadCounts> {
    let history = store.history_beyond_demo()?;
    if !history.is_empty() && !replace_history {
        return Err(Error::invalid(format!(
            "this store holds governance history ({}); loading the demo would remove it. \
             Pass --replace-history to replace it anyway (the replacement is audited)",
            history.describe()
        )));
    }
    let org = demo::generate(size, seed, now);
    let dataset = format!("demo-{}", size.as_str());
    let derive = |s: &Store| -> Result<()> {
        // A history for the trend charts, reconstructed from the demo's
        // dates, and the figures and blast radii as loaded.
        crate::posture::record_history(s, 12, now)?;
        crate::posture::record(s, "load", now).map(|_| ())
    };
    let counts = store.replace_org_and(&org, now, derive, |tx| {
        if !history.is_empty() {
            crate::store::audit::append(
                tx,
                now.timestamp(),
                "operator",
                "demo.replace_history",
                &format!("store {dataset}"),
                &serde_json::json!({"replaced": history, "size": size.as_str(), "seed": seed}),
            )?;
        }
        crate::store::audit::record_demo_baseline(tx)
    })?;
    store.set_meta("dataset", &dataset)?;
    Ok(counts)
}

pub fn inventory(store: &Store, q: &InventoryQuery, now: DateTime<Utc>) -> Result<InventoryPage> {
    store.inventory(q, now)
}

pub fn inventory_facets(store: &Store) -> Result<InventoryFacets> {
    store.inventory_facets()
}

/// One identity by id, external id or exact name.
pub fn show(store: &Store, reference: &str, now: DateTime<Utc>) -> Result<IdentityDetail> {
    let id = store.resolve_identity(reference)?;
    store.identity_detail(id, now)
}

pub fn identity(store: &Store, id: i64, now: DateTime<Utc>) -> Result<IdentityDetail> {
    store.identity_detail(crate::model::IdentityId(id), now)
}

pub fn summary(store: &Store) -> Result<OrgSummary> {
    store.summary()
}

// ---------------------------------------------------------------- sources ---

use crate::model::SourceId;
use crate::store::sync::{LifecycleEventView, RunId, SourceView, SyncRunView};
use crate::sync::http::{Cancel, HttpPolicy};
use crate::sync::secrets::SecretStore;
use crate::sync::{ProgressFn, SyncOutcome, SyncProgress};

/// Configures a new source. Its secret, if any, goes to `secrets` (the OS
/// keyring in the app), never to the cache.
pub fn add_source(
    store: &mut Store,
    secrets: &dyn SecretStore,
    kind: &str,
    name: &str,
    settings: serde_json::Value,
    secret: Option<&str>,
    now: DateTime<Utc>,
) -> Result<SourceView> {
    crate::sync::settings::kind(kind)?;
    let obj = settings
        .as_object()
        .ok_or_else(|| Error::invalid("source settings must be a JSON object"))?;
    // Settings are kept in the cache and the audit log in clear: a secret
    // never belongs there (see `crate::sanitize::is_secret_key`).
    for (key, value) in obj {
        if crate::sanitize::is_secret_key(key) {
            return Err(Error::invalid(format!(
                "the setting '{key}' looks like a secret; settings are stored in the cache and the audit log in clear, \
                 so pass the secret with --secret-stdin instead (it goes to the OS keyring)"
            )));
        }
        if value
            .as_str()
            .is_some_and(crate::sanitize::url_query_has_secret)
        {
            return Err(Error::invalid(format!(
                "the setting '{key}' is a URL whose query looks like it carries a secret; \
                 remove it from the URL and pass the secret with --secret-stdin instead"
            )));
        }
    }
    // Known keys only, typed (`read_tokens=false` is JSON false), required
    // ones present, URLs http(s), and the transport rules (HTTPS for a kind
    // with a secret, TLS for LDAP): all in the kinds' table.
    let settings = crate::sync::settings::validate(kind, &settings)?;
    // All or nothing: the secret is stored before the source is committed;
    // if the keyring refuses it, no source is left behind.
    let secret = secret.filter(|s| !s.is_empty());
    let id = store.add_source_then(kind, name, &settings, now, |id| match secret {
        Some(s) => secrets.set(id, s).map_err(|e| {
            Error::new(
                e.code,
                format!(
                    "the source was not added: its secret could not be stored ({})",
                    e.message
                ),
            )
        }),
        None => Ok(()),
    })?;
    store.source(id)
}

/// The kinds of source this build knows, with each one's settings (label,
/// type, required, default, help, secret) and write-back abilities: what the
/// UI's Sources form is built from.
pub fn source_kinds() -> Vec<crate::views::SourceKindView> {
    crate::sync::settings::views()
}

/// The configured sources, with settings redacted for display
/// (`crate::sanitize::redact_settings`: secret-named keys, URL queries).
pub fn sources(store: &Store) -> Result<Vec<SourceView>> {
    let mut list = store.sources()?;
    for s in &mut list {
        s.settings = crate::sanitize::redact_settings(&s.settings);
    }
    Ok(list)
}

/// Finds a source by id or name.
pub fn resolve_source(store: &Store, reference: &str) -> Result<SourceId> {
    let all = store.sources()?;
    let r = reference.trim();
    all.iter()
        .find(|s| s.id.to_string() == r || s.name.eq_ignore_ascii_case(r))
        .map(|s| SourceId(s.id))
        .ok_or_else(|| {
            Error::not_found(format!(
                "no source named or numbered '{r}' (see `custodian source list`)"
            ))
        })
}

/// Syncs one source, blocking (CLI, tests), with the default HTTP policy:
/// [`run_sync`] on a runtime of its own.
pub fn sync_source(
    store: &mut Store,
    source: SourceId,
    secrets: &dyn SecretStore,
    progress: ProgressFn,
    cancel: Cancel,
) -> Result<SyncOutcome> {
    sync_blocking(
        store,
        source,
        secrets,
        progress,
        cancel,
        HttpPolicy::default(),
    )
}

/// [`run_sync`] for hosts that may block (the CLI, tests, benchmarks): on a
/// current-thread runtime of its own, over the caller's exclusive store.
/// Not for use inside an async runtime (call [`run_sync`] there).
pub fn sync_blocking(
    store: &mut Store,
    source: SourceId,
    secrets: &dyn SecretStore,
    progress: ProgressFn,
    cancel: Cancel,
    policy: HttpPolicy,
) -> Result<SyncOutcome> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::internal(format!("cannot start the async runtime: {e}")))?;
    let shared = std::sync::Mutex::new(store);
    rt.block_on(run_sync(&shared, source, secrets, progress, cancel, policy))
}

pub fn sync_runs(store: &Store, source: Option<SourceId>, limit: u32) -> Result<Vec<SyncRunView>> {
    store.sync_runs(source, limit)
}

pub fn run_events(store: &Store, run: i64) -> Result<Vec<LifecycleEventView>> {
    store.sync_run(RunId(run))?;
    store.lifecycle_events(RunId(run))
}

/// A cache shared between threads (the desktop app keeps it behind a mutex).
pub trait SharedStore: Sync {
    /// Runs `f` with exclusive access to the cache.
    fn with_store<T>(&self, f: impl FnOnce(&mut Store) -> Result<T>) -> Result<T>;
}

fn poisoned() -> Error {
    Error::internal("an earlier operation failed while using the cache; restart Custodian")
}

impl SharedStore for std::sync::Mutex<Store> {
    fn with_store<T>(&self, f: impl FnOnce(&mut Store) -> Result<T>) -> Result<T> {
        let mut guard = self.lock().map_err(|_| poisoned())?;
        f(&mut guard)
    }
}

/// A store one caller holds alone (the blocking CLI path), seen as shared.
impl SharedStore for std::sync::Mutex<&mut Store> {
    fn with_store<T>(&self, f: impl FnOnce(&mut Store) -> Result<T>) -> Result<T> {
        let mut guard = self.lock().map_err(|_| poisoned())?;
        f(&mut guard)
    }
}

/// The sync runner: every host syncs through it (the CLI and tests through
/// [`sync_blocking`], the desktop through [`sync_source_shared`], headless
/// schedules directly). It locks the cache only to record the run
/// ([`crate::sync::prepare`]) and to apply it, never while the source is
/// fetched. Progress goes `connecting`, the source's own phases, `applying`,
/// `done`; a failed or cancelled fetch or apply is recorded on the run
/// ([`crate::sync::record_failure`]) and returned. Everything it logs is
/// inside the `sync_run` span (source, run, kind).
pub async fn run_sync(
    store: &impl SharedStore,
    source: SourceId,
    secrets: &dyn SecretStore,
    progress: ProgressFn,
    cancel: Cancel,
    policy: HttpPolicy,
) -> Result<SyncOutcome> {
    use tracing::Instrument as _;
    let prepared = store.with_store(|s| crate::sync::prepare(s, source, Utc::now()))?;
    let span = tracing::info_span!("sync_run", source = %source, run = prepared.run.0, kind = %prepared.source.kind);
    async move {
        let fetched = prepared
            .fetch(secrets, progress.clone(), cancel, policy)
            .await;
        let result = match fetched {
            Ok(fetch) => {
                progress(&SyncProgress {
                    source_id: source.0,
                    phase: "applying".into(),
                    pages: 0,
                    items: fetch.fetched.item_count() as u64,
                    total: None,
                });
                // `Fetch::apply` records the failure of an apply itself.
                store.with_store(|s| fetch.apply(s, Utc::now()))
            }
            Err((run, e)) => {
                if let Err(rec) = store.with_store(|s| {
                    crate::sync::record_failure(s, run, &e, Utc::now());
                    Ok(())
                }) {
                    tracing::error!(error = %rec, "could not record the failed run");
                }
                Err(e)
            }
        };
        match &result {
            Ok(out) => {
                progress(&SyncProgress {
                    source_id: source.0,
                    phase: "done".into(),
                    pages: 0,
                    items: out.report.items as u64,
                    total: None,
                });
                tracing::info!(
                    items = out.report.items,
                    joiners = out.report.joiners,
                    movers = out.report.movers,
                    leavers = out.report.leavers,
                    unchanged = out.report.unchanged,
                    full = out.full,
                    "sync run applied"
                );
            }
            Err(e) => tracing::warn!(code = e.code.as_str(), error = %e, "sync run did not apply"),
        }
        result
    }
    .instrument(span)
    .await
}

/// Syncs one source for a host that shares the cache between threads (the
/// desktop app): [`run_sync`], then the run as recorded.
pub async fn sync_source_shared(
    store: &impl SharedStore,
    source: SourceId,
    secrets: &dyn SecretStore,
    progress: ProgressFn,
    cancel: Cancel,
) -> Result<SyncRunView> {
    let outcome = run_sync(
        store,
        source,
        secrets,
        progress,
        cancel,
        HttpPolicy::default(),
    )
    .await?;
    store.with_store(|s| s.sync_run(outcome.run))
}

/// One source's run in a scheduled sync (`custodian sync --all`, `worker`).
#[derive(Debug)]
pub struct ScheduledRun {
    pub source: SourceId,
    pub name: String,
    /// The run as recorded, or why it did not apply.
    pub result: Result<SyncRunView>,
}

/// Syncs every configured source that is not the demo organisation's, one
/// after another through [`run_sync`]: one source failing does not stop the
/// others (each failure is recorded on its run). A cancel stops after the
/// run under way (recorded `cancelled`). Fails only when the list of
/// sources cannot be read.
pub async fn sync_all(
    store: &impl SharedStore,
    secrets: &dyn SecretStore,
    cancel: Cancel,
    policy: HttpPolicy,
) -> Result<Vec<ScheduledRun>> {
    let sources = store.with_store(|s| s.scheduled_sources())?;
    let mut out = Vec::with_capacity(sources.len());
    for (source, name) in sources {
        if cancel.is_cancelled() {
            break;
        }
        let quiet: ProgressFn = std::sync::Arc::new(|_: &SyncProgress| {});
        let result = match run_sync(
            store,
            source,
            secrets,
            quiet,
            cancel.clone(),
            policy.clone(),
        )
        .await
        {
            Ok(outcome) => store.with_store(|s| s.sync_run(outcome.run)),
            Err(e) => Err(e),
        };
        out.push(ScheduledRun {
            source,
            name,
            result,
        });
    }
    Ok(out)
}

/// Checks that a source answers and its secret works, without changing the
/// cache: a full fetch whose result is dropped.
pub async fn test_source(
    store: &impl SharedStore,
    source: SourceId,
    secrets: &dyn SecretStore,
    cancel: Cancel,
) -> Result<String> {
    let view = store.with_store(|s| s.source(source))?;
    let secret = if crate::sync::source_needs_secret(&view.kind, &view.settings) {
        secrets.get_source(source, &view.name)?
    } else {
        None
    };
    let http = crate::sync::http::HttpClient::new(
        HttpPolicy {
            max_attempts: 2,
            ..HttpPolicy::default()
        },
        cancel,
    )?;
    let ctx = crate::sync::SyncContext {
        source: view,
        http,
        secret,
        progress: std::sync::Arc::new(|_: &crate::sync::SyncProgress| {}),
        cursor: None,
    };
    let fetched = crate::sync::fetch_kind(&ctx).await?;
    Ok(format!(
        "connected: {} people, {} identities, {} resources, {} grants",
        fetched.people.len(),
        fetched.identities.len(),
        fetched.resources.len(),
        fetched.grants.len()
    ))
}

/// Replaces a source's secret in the keyring.
pub fn set_source_secret(
    store: &Store,
    secrets: &dyn SecretStore,
    source: SourceId,
    secret: &str,
) -> Result<()> {
    store.source(source)?;
    secrets.set(source, secret)
}

// ---------------------------------------------------------------- sign-in ---

pub use crate::sync::entra::auth::{DeviceCodePrompt, DeviceSignIn};

/// Begins the sign-in of an administrator for a source that reads as one
/// (Entra with `delegated`): asks Entra for a device code. Show
/// [`DeviceSignIn::prompt`] (the code and where to enter it), then call
/// [`finish_sign_in`]. The CLI's `source sign-in` and the desktop both use
/// these two steps.
pub async fn begin_sign_in(
    source: &SourceView,
    policy: HttpPolicy,
    cancel: Cancel,
) -> Result<DeviceSignIn> {
    if !crate::sync::settings::signs_in_with_device_code(&source.kind, &source.settings) {
        return Err(Error::invalid(format!(
            "source '{}' ({}) has no sign-in of its own: only an Entra source with delegated=true signs in as an administrator (with a device code)",
            source.name, source.kind
        )));
    }
    let http = crate::sync::http::HttpClient::new(policy, cancel)?;
    DeviceSignIn::start(&source.name, &source.settings, http).await
}

/// Waits until the administrator has signed in (or declined, or the code
/// expired), then keeps the refresh token as the source's secret in
/// `secrets` (the OS keyring; never the cache): later syncs sign in with it.
/// Returns who signed in, as Entra names them.
pub async fn finish_sign_in(
    source: &SourceView,
    sign_in: DeviceSignIn,
    secrets: &dyn SecretStore,
) -> Result<Option<String>> {
    let done = sign_in.finish().await?;
    secrets.set(SourceId(source.id), &done.refresh_token)?;
    tracing::info!(source = source.id, "administrator signed in (device code)");
    Ok(done.user)
}

/// The device-code sign-ins under way in one process (the desktop's), by
/// source: [`DeviceSignIns::begin`] asks for the code to show,
/// [`DeviceSignIns::finish`] waits for the administrator and keeps the
/// refresh token, [`DeviceSignIns::cancel`] stops the wait. Beginning again
/// for a source cancels the earlier wait (its code is no longer shown).
#[derive(Default)]
pub struct DeviceSignIns {
    pending: std::sync::Mutex<std::collections::HashMap<i64, PendingSignIn>>,
    tickets: std::sync::atomic::AtomicU64,
    /// How long one second of the protocol lasts (tests shorten it).
    unit: Option<std::time::Duration>,
}

struct PendingSignIn {
    ticket: u64,
    cancel: Cancel,
    /// Taken by `finish` while it waits.
    sign_in: Option<DeviceSignIn>,
}

impl DeviceSignIns {
    /// A registry whose sign-ins count one protocol second as `unit` (tests).
    pub fn with_unit(unit: std::time::Duration) -> DeviceSignIns {
        DeviceSignIns {
            unit: Some(unit),
            ..DeviceSignIns::default()
        }
    }

    fn lock(
        &self,
    ) -> Result<std::sync::MutexGuard<'_, std::collections::HashMap<i64, PendingSignIn>>> {
        self.pending
            .lock()
            .map_err(|_| Error::internal("sign-in registry poisoned; restart Custodian"))
    }

    /// Asks the source for a device code (see [`begin_sign_in`]) and keeps
    /// the sign-in until [`DeviceSignIns::finish`]; returns what to show.
    pub async fn begin(&self, source: &SourceView, policy: HttpPolicy) -> Result<DeviceCodePrompt> {
        let cancel = Cancel::new();
        let mut sign_in = begin_sign_in(source, policy, cancel.clone()).await?;
        if let Some(unit) = self.unit {
            sign_in = sign_in.with_unit(unit);
        }
        let prompt = sign_in.prompt().clone();
        let ticket = self
            .tickets
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let earlier = self.lock()?.insert(
            source.id,
            PendingSignIn {
                ticket,
                cancel,
                sign_in: Some(sign_in),
            },
        );
        if let Some(e) = earlier {
            e.cancel.cancel();
        }
        Ok(prompt)
    }

    /// Waits for the sign-in begun for `source` (see [`finish_sign_in`]);
    /// `cancelled` when [`DeviceSignIns::cancel`] (or a new `begin`)
    /// stopped it, `invalid_input` when none was begun.
    pub async fn finish(
        &self,
        source: &SourceView,
        secrets: &dyn SecretStore,
    ) -> Result<Option<String>> {
        let (ticket, sign_in) = {
            let mut pending = self.lock()?;
            let p = pending.get_mut(&source.id);
            match p.and_then(|p| p.sign_in.take().map(|s| (p.ticket, s))) {
                Some(found) => found,
                None => {
                    return Err(Error::invalid(format!(
                        "no sign-in is waiting for source '{}' (or one is already being waited for): start it again",
                        source.name
                    )))
                }
            }
        };
        let done = finish_sign_in(source, sign_in, secrets).await;
        let mut pending = self.lock()?;
        if pending.get(&source.id).is_some_and(|p| p.ticket == ticket) {
            pending.remove(&source.id);
        }
        done
    }

    /// Stops the sign-in waiting for `source`; false when none waits.
    pub fn cancel(&self, source: SourceId) -> Result<bool> {
        Ok(match self.lock()?.remove(&source.0) {
            Some(p) => {
                p.cancel.cancel();
                true
            }
            None => false,
        })
    }
}

// ---------------------------------------------------------------- reviews ---

use crate::campaigns::{
    CampaignId, CampaignProgress, CampaignView, CaseId, CloseReport, DecisionInput, NewCampaign,
    QueueQuery, ReviewItemId, ReviewQueue, TaskId, TaskStatus, TaskView, UndecidedPolicy,
};
use crate::store::audit::AuditVerification;
use crate::views::PersonRef;

/// The person using Custodian: the one chosen in settings (the app) or
/// named with `--as` (the CLI).
pub fn acting_person(store: &Store) -> Result<Option<PersonRef>> {
    if acts_as_member(store)? {
        return store.person_ref(workspace_actor(store, None)?);
    }
    match store.acting_person()? {
        Some(id) => store.person_ref(id),
        None => Ok(None),
    }
}

/// Chooses who is using Custodian (by id, email or name).
pub fn set_acting_person(
    store: &mut Store,
    reference: &str,
    now: DateTime<Utc>,
) -> Result<PersonRef> {
    if acts_as_member(store)? {
        workspace_actor(store, Some(reference))?;
    }
    let id = store.resolve_person(reference)?;
    store.set_acting_person(id, now)?;
    store
        .person_ref(id)?
        .ok_or_else(|| Error::not_found(format!("no person with id {id}")))
}

/// The acting person's id: `reference` when given (CLI `--as`), else the one
/// chosen in settings.
pub fn actor(store: &Store, reference: Option<&str>) -> Result<i64> {
    if acts_as_member(store)? {
        return workspace_actor(store, reference);
    }
    match reference {
        Some(r) => store.resolve_person(r),
        None => store.acting_person()?.ok_or_else(|| {
            Error::invalid("who is acting? choose yourself in Settings (the app) or pass --as <email> (the CLI)")
        }),
    }
}

/// People matching a search (name or email), for pickers.
pub fn find_people(store: &Store, search: &str, limit: i64) -> Result<Vec<PersonRef>> {
    store.find_people(search, limit)
}

/// Creates (and, when it starts now, launches) a campaign.
pub fn create_campaign(
    store: &mut Store,
    actor: i64,
    c: &NewCampaign,
    now: DateTime<Utc>,
    progress: crate::store::campaigns::LaunchProgress<'_>,
) -> Result<CampaignView> {
    let id = store.create_campaign_with_progress(actor, c, now, progress)?;
    store.campaign(id, now)
}

/// The history of one review item.
pub fn item_history(
    store: &Store,
    item: ReviewItemId,
) -> Result<Vec<crate::store::campaigns::CampaignEvent>> {
    store.item_history(item)
}

/// Where evidence exports go by default: `Documents/Custodian` (or the
/// platform data directory's `exports`).
pub fn default_export_dir() -> Result<PathBuf> {
    if let Some(d) =
        directories::UserDirs::new().and_then(|u| u.document_dir().map(|d| d.join("Custodian")))
    {
        return Ok(d);
    }
    Ok(default_db_path()?
        .parent()
        .map(|p| p.join("exports"))
        .unwrap_or_else(|| PathBuf::from("exports")))
}

/// Every campaign, launching the scheduled ones whose start date has come.
pub fn campaigns(store: &mut Store, now: DateTime<Utc>) -> Result<Vec<CampaignView>> {
    store.launch_due_campaigns(now)?;
    store.campaigns(now)
}

pub fn campaign_progress(
    store: &Store,
    id: CampaignId,
    now: DateTime<Utc>,
) -> Result<CampaignProgress> {
    store.campaign_progress(id, now)
}

pub fn review_queue(store: &Store, actor: i64, q: &QueueQuery) -> Result<ReviewQueue> {
    store.review_queue(actor, q)
}

pub fn campaign_items(store: &Store, campaign: CampaignId, q: &QueueQuery) -> Result<ReviewQueue> {
    store.campaign_items(campaign, q)
}

pub fn decide(
    store: &mut Store,
    actor: i64,
    input: &DecisionInput,
    now: DateTime<Utc>,
) -> Result<usize> {
    crate::store::db::with_retry(|| store.decide(actor, input, now))
}

pub fn reassign_reviewer(
    store: &mut Store,
    actor: i64,
    items: &[ReviewItemId],
    to: i64,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<usize> {
    store.reassign_reviewer(actor, items, to, reason, now)
}

pub fn escalate(
    store: &mut Store,
    actor: i64,
    campaign: CampaignId,
    reviewer: Option<i64>,
    now: DateTime<Utc>,
) -> Result<usize> {
    store.escalate(actor, campaign, reviewer, now)
}

/// Moves a reviewer's undecided items in a campaign to another person.
pub fn delegate_reviewer(
    store: &mut Store,
    actor: i64,
    campaign: CampaignId,
    from: i64,
    to: i64,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<usize> {
    store.delegate(actor, campaign, from, to, reason, now)
}

pub fn remind(
    store: &mut Store,
    actor: i64,
    campaign: CampaignId,
    reviewer: i64,
    now: DateTime<Utc>,
) -> Result<()> {
    store.record_reminder(actor, campaign, reviewer, now)
}

pub fn close_campaign(
    store: &mut Store,
    actor: i64,
    campaign: CampaignId,
    policy: UndecidedPolicy,
    now: DateTime<Utc>,
) -> Result<CloseReport> {
    crate::store::db::with_retry(|| store.close_campaign(actor, campaign, policy, now))
}

pub fn tasks(
    store: &Store,
    campaign: Option<CampaignId>,
    status: Option<TaskStatus>,
) -> Result<Vec<TaskView>> {
    store.tasks(campaign, status)
}

pub fn set_task_status(
    store: &mut Store,
    actor: i64,
    task: TaskId,
    status: TaskStatus,
    note: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    store.set_task_status(actor, task, status, note, now)
}

/// What a write-back did.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct WriteBackReport {
    pub task_id: TaskId,
    pub status: TaskStatus,
    /// What was done, or why it failed.
    pub note: String,
}

/// Carries out an open (or failed) remediation task in its source when the
/// source can and is opted in (`write_back`), and records the outcome on the
/// task and in the audit log. A refusal before any call (not supported, not
/// opted in, already done) changes nothing; a failed call marks the task
/// failed with the source's answer and returns the error.
///
/// The three steps are public so a caller that shares the cache (the desktop
/// app) can release it while the source answers: [`write_back_prepare`]
/// (reads the cache), [`WriteBackJob::run`] (the source only),
/// [`write_back_record`] (writes the cache).
pub fn write_back_task(
    store: &mut Store,
    secrets: &dyn SecretStore,
    actor: i64,
    task: TaskId,
    policy: HttpPolicy,
    now: DateTime<Utc>,
) -> Result<WriteBackReport> {
    let job = write_back_prepare(store, secrets, task, policy)?;
    let outcome = job.run();
    write_back_record(store, actor, task, outcome, now)
}

/// A write-back ready to run: the task's target and the source's client.
pub struct WriteBackJob {
    ctx: crate::sync::SyncContext,
    target: crate::writeback::Target,
}

impl WriteBackJob {
    /// Calls the source (blocking, on a runtime of its own); touches no cache.
    pub fn run(&self) -> Result<String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::internal(format!("cannot start the async runtime: {e}")))?;
        let outcome = rt.block_on(crate::sync::writeback::perform(&self.ctx, &self.target));
        tracing::info!(task = self.target.task.0, source = %self.ctx.source.name, ok = outcome.is_ok(), "write-back");
        outcome
    }
}

/// Checks that the task can be written back and prepares the call.
pub fn write_back_prepare(
    store: &Store,
    secrets: &dyn SecretStore,
    task: TaskId,
    policy: HttpPolicy,
) -> Result<WriteBackJob> {
    let (target, status, source_id) = store.writeback_target(task)?;
    if status == TaskStatus::Done {
        return Err(Error::invalid(format!("task {task} is already done")));
    }
    let source = store.source(source_id)?;
    if !crate::writeback::supports(&source.kind, target.kind) {
        return Err(Error::invalid(format!(
            "{} ({} source) cannot carry out '{}' tasks; do it by hand and mark the task done, or export it as a ticket (tasks --export)",
            source.name,
            source.kind,
            target.kind.as_str()
        )));
    }
    if !crate::writeback::enabled(&source.settings) {
        return Err(Error::invalid(format!(
            "write-back is off for {}: switch it on first (`custodian source write-back \"{}\" on`), \
             with a secret allowed to change identities there",
            source.name, source.name
        )));
    }
    let secret = secrets.get_source(source_id, &source.name)?;
    let ctx = crate::sync::SyncContext {
        source,
        http: crate::sync::http::HttpClient::new(policy, Cancel::new())?,
        secret,
        progress: std::sync::Arc::new(|_: &SyncProgress| {}),
        cursor: None,
    };
    Ok(WriteBackJob { ctx, target })
}

/// Records what the source answered: done with what was done, or failed
/// with why (and the error is returned).
pub fn write_back_record(
    store: &mut Store,
    actor: i64,
    task: TaskId,
    outcome: Result<String>,
    now: DateTime<Utc>,
) -> Result<WriteBackReport> {
    match outcome {
        Ok(done) => {
            let status = store.record_writeback(actor, task, Ok(&done), now)?;
            Ok(WriteBackReport {
                task_id: task,
                status,
                note: done,
            })
        }
        Err(e) => {
            store.record_writeback(actor, task, Err(&e.message), now)?;
            Err(e)
        }
    }
}

/// Switches write-back on or off for a source.
pub fn set_write_back(
    store: &mut Store,
    actor: i64,
    source: &str,
    on: bool,
    now: DateTime<Utc>,
) -> Result<SourceView> {
    let id = resolve_source(store, source)?;
    let view = store.source(id)?;
    if on && !crate::writeback::SOURCE_KINDS.contains(&view.kind.as_str()) {
        return Err(Error::invalid(format!(
            "{} sources cannot carry out tasks; write-back works for: {}",
            view.kind,
            crate::writeback::SOURCE_KINDS.join(", ")
        )));
    }
    store.set_write_back(actor, id, on, now)?;
    store.source(id)
}

/// Writes a campaign's evidence as `campaign-<id>-evidence.{csv,json,html}`
/// into `dir` (streamed: any size); returns the files written.
pub fn export_campaign(
    store: &Store,
    campaign: CampaignId,
    dir: &Path,
    now: DateTime<Utc>,
) -> Result<Vec<PathBuf>> {
    export_campaign_with_progress(store, campaign, dir, now, &|_, _| {})
}

pub fn export_campaign_with_progress(
    store: &Store,
    campaign: CampaignId,
    dir: &Path,
    now: DateTime<Utc>,
    progress: &dyn Fn(u64, u64),
) -> Result<Vec<PathBuf>> {
    crate::evidence::write_all(store, campaign, dir, now, progress)
}

pub fn verify_audit(store: &Store) -> Result<AuditVerification> {
    store.verify_audit()
}

// ------------------------------------------------------------ offboarding ---

use crate::offboarding::{
    ApplyReport as OffboardApplyReport, OffboardPlan, OffboardingCase, OffboardingCaseSummary,
    Registration, TeamView, TimelineEntry,
};

/// Marks a person departing on a date; returns their case when one opened.
pub fn mark_departing(
    store: &mut Store,
    actor: i64,
    person: &str,
    on: &str,
    note: &str,
    now: DateTime<Utc>,
) -> Result<Option<CaseId>> {
    let person = store.resolve_person(person)?;
    store.mark_departing(actor, person, on, note, now)
}

pub fn offboarding_cases(
    store: &Store,
    status: Option<&str>,
    manager: Option<i64>,
) -> Result<Vec<OffboardingCaseSummary>> {
    store.offboarding_cases(status, manager)
}

pub fn offboarding_case(store: &Store, case: CaseId) -> Result<OffboardingCase> {
    store.offboarding_case(case)
}

/// The offboarding case of a person (id, email or name), opening it when
/// they are departing and none is open yet.
pub fn offboard_person(
    store: &mut Store,
    person: &str,
    now: DateTime<Utc>,
) -> Result<OffboardingCase> {
    let id = store.resolve_person(person)?;
    if let Some(c) = store.case_of(id)? {
        return store.offboarding_case(c);
    }
    store.refresh_offboarding_of(id, now)?;
    match store.case_of(id)? {
        Some(c) => store.offboarding_case(c),
        None => {
            let p = store
                .person_ref(id)?
                .ok_or_else(|| Error::not_found(format!("no person with id {id}")))?;
            if p.status == crate::model::PersonStatus::Active {
                Err(Error::invalid(format!(
                    "{} is active in every source; mark them departing first (`custodian depart \"{}\" --on YYYY-MM-DD`)",
                    p.display_name, p.email
                )))
            } else {
                Err(Error::not_found(format!(
                    "{} owns and built nothing and has no review items: there is nothing to hand over",
                    p.display_name
                )))
            }
        }
    }
}

pub fn plan_offboarding(
    store: &mut Store,
    actor: i64,
    case: CaseId,
    plan: &OffboardPlan,
    now: DateTime<Utc>,
) -> Result<usize> {
    store.plan_offboarding(actor, case, plan, now)
}

pub fn apply_offboarding(
    store: &mut Store,
    actor: i64,
    case: CaseId,
    now: DateTime<Utc>,
) -> Result<OffboardApplyReport> {
    crate::store::db::with_retry(|| store.apply_offboarding(actor, case, now))
}

pub fn register_identity(
    store: &mut Store,
    actor: i64,
    identity: &str,
    reg: &Registration,
    now: DateTime<Utc>,
) -> Result<()> {
    let id = store.resolve_identity(identity)?;
    store.register_identity(actor, id.0, reg, now)
}

pub fn retire_identity(
    store: &mut Store,
    actor: i64,
    identity: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<usize> {
    let id = store.resolve_identity(identity)?;
    store.retire_identity(actor, id.0, reason, now)
}

pub fn clear_review_flag(
    store: &mut Store,
    actor: i64,
    identity: i64,
    note: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    store.clear_review_flag(actor, identity, note, now)
}

pub fn identity_timeline(store: &Store, identity: i64) -> Result<Vec<TimelineEntry>> {
    store.identity_timeline(identity)
}

pub fn team(store: &Store, manager: i64) -> Result<TeamView> {
    store.team(manager)
}

/// Remediation tasks as a ticket list for another system: CSV or JSON.
pub fn tasks_export(store: &Store, status: Option<TaskStatus>, format: &str) -> Result<String> {
    let tasks = store.tasks(None, status)?;
    match format {
        "json" => Ok(serde_json::to_string_pretty(&tasks)?),
        "csv" => {
            let mut w = csv::Writer::from_writer(vec![]);
            let fail = |e: csv::Error| Error::internal(format!("writing CSV: {e}"));
            w.write_record([
                "id",
                "origin",
                "campaign",
                "case",
                "kind",
                "identity",
                "target",
                "new_owner",
                "status",
                "created_at",
                "updated_at",
                "updated_by",
                "note",
            ])
            .map_err(fail)?;
            for t in tasks {
                w.write_record(crate::sanitize::csv_record([
                    t.id.to_string(),
                    t.origin,
                    t.campaign_id.map(|c| c.to_string()).unwrap_or_default(),
                    t.case_id.map(|c| c.to_string()).unwrap_or_default(),
                    t.kind.as_str().into(),
                    t.identity,
                    t.target,
                    t.new_owner.unwrap_or_default(),
                    t.status.as_str().into(),
                    t.created_at,
                    t.updated_at,
                    t.updated_by,
                    t.note,
                ]))
                .map_err(fail)?;
            }
            let bytes = w
                .into_inner()
                .map_err(|e| Error::internal(format!("writing CSV: {e}")))?;
            String::from_utf8(bytes).map_err(|e| Error::internal(format!("writing CSV: {e}")))
        }
        other => Err(Error::invalid(format!(
            "'{other}' is not an export format: csv or json"
        ))),
    }
}

// ---------------------------------------------------------------- posture ---

use crate::blast::{AdminPath, BlastRadius, BlastRank, Graph, Reacher};
use crate::posture::{FindingCount, PostureView};

pub fn posture(store: &Store, now: DateTime<Utc>) -> Result<PostureView> {
    crate::posture::view(store, now)
}

pub fn finding_counts(store: &Store) -> Result<Vec<FindingCount>> {
    crate::posture::finding_counts(store)
}

/// Every posture check (id, OWASP category, severity, title, fix) and the
/// OWASP NHI categories: the catalogue the UI shows.
pub fn finding_checks() -> crate::views::FindingCatalogue {
    crate::findings::catalogue()
}

/// The blast radius of one identity (by id, external id or exact name).
pub fn blast(store: &Store, identity: &str) -> Result<BlastRadius> {
    let id = store.resolve_identity(identity)?;
    Graph::load_from(store, id.0)?.blast(id.0)
}

pub fn blast_by_id(store: &Store, identity: i64) -> Result<BlastRadius> {
    Graph::load_from(store, identity)?.blast(identity)
}

pub fn blast_rank(store: &Store, limit: usize) -> Result<Vec<BlastRank>> {
    Ok(Graph::load(store)?.rank(limit))
}

/// A resource by id, external id or exact name.
pub fn resolve_resource(store: &Store, reference: &str) -> Result<i64> {
    store.resolve_resource(reference)
}

pub fn who_can_reach(store: &Store, resource: &str) -> Result<Vec<Reacher>> {
    let id = resolve_resource(store, resource)?;
    Graph::load(store)?.who_can_reach(id)
}

pub fn paths_to_admin(store: &Store, limit: usize) -> Result<Vec<AdminPath>> {
    Ok(Graph::load(store)?.paths_to_admin(limit))
}

/// Documents an edge no source knows (e.g. a GitHub app whose secret deploys
/// to an AWS role): `from` can act through `to`.
pub fn link_identities(
    store: &mut Store,
    actor: i64,
    from: &str,
    to: &str,
    kind: crate::model::DelegationKind,
    note: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let (f, t) = (store.resolve_identity(from)?, store.resolve_identity(to)?);
    store.link_identities(actor, f.0, t.0, kind, note, now)?;
    // The link widens blast radii: the posture page's are kept up to date.
    crate::posture::refresh_blast(store)
}

/// Authorised by whom, under which policy, via which chain.
pub fn authorization(store: &Store, identity: &str) -> Result<crate::blast::AuthorizationReport> {
    let id = store.resolve_identity(identity)?;
    let g = Graph::load(store)?;
    crate::blast::authorization(store, &g, id.0)
}

// ------------------------------------------------------------ diagnostics ---

/// A support bundle (JSON): versions, schema, counts, sources (settings with
/// secret-looking values redacted; secrets themselves are only in the
/// keyring), recent sync runs and their errors, the audit check, and the
/// newest log lines, redacted.
pub fn diagnostics(store: &Store, log_dir: Option<&Path>) -> Result<serde_json::Value> {
    let redact_settings = crate::sanitize::redact_settings;
    let sources: Vec<serde_json::Value> = store
        .sources()?
        .into_iter()
        .map(|s| serde_json::json!({"id": s.id, "kind": s.kind, "name": s.name, "settings": redact_settings(&s.settings)}))
        .collect();
    let mut log_lines: Vec<String> = vec![];
    if let Some(dir) = log_dir {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.is_file())
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        if let Some(newest) = files.last() {
            let text = std::fs::read_to_string(newest).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            log_lines = lines[lines.len().saturating_sub(300)..]
                .iter()
                .map(|l| crate::logging::redact_line(l))
                .collect();
        }
    }
    Ok(serde_json::json!({
        "custodian": env!("CARGO_PKG_VERSION"),
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
        "schema_version": store.schema_version()?,
        "summary": store.summary()?,
        "sources": sources,
        "recent_runs": store.sync_runs(None, 30)?,
        "audit": store.verify_audit()?,
        "log_lines": log_lines,
    }))
}

// ---------------------------------------------------------------------------
// Team workspace (PostgreSQL): the acting person is the authenticated member.

/// A team workspace, or its offline snapshot: the actor is the member
/// behind the login, never a claim.
fn acts_as_member(store: &Store) -> Result<bool> {
    Ok(store.snapshot().is_some() || store.is_workspace()?)
}

/// In a workspace the actor is the member behind the login; `--as` and
/// `whoami --set` are refused. In its offline snapshot, the member the
/// login was when the snapshot was taken.
pub fn workspace_actor(store: &Store, reference: Option<&str>) -> Result<i64> {
    if reference.is_some() {
        return Err(Error::new(
            crate::error::ErrorCode::Forbidden,
            "in a team workspace you act as the member behind your database login: --as and whoami --set are not available",
        ));
    }
    if let Some(snap) = store.snapshot() {
        return snap.person_id.ok_or_else(|| {
            Error::new(
                crate::error::ErrorCode::Forbidden,
                "this login was not an active workspace member when the offline snapshot was taken",
            )
        });
    }
    store.workspace_current_person()?.ok_or_else(|| {
        Error::new(
            crate::error::ErrorCode::Forbidden,
            "this database login is not an active workspace member (removed, departed, or never added): ask a workspace admin",
        )
    })
}

/// What `workspace init` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WorkspaceInit {
    pub installed: bool,
    pub role_prefix: String,
    pub admin_login: String,
    pub admin_person: i64,
}

/// Creates a team workspace in the PostgreSQL database at `location`:
/// migrations, then the workspace layer, with `admin` (a person of the
/// inventory: email or id) as first admin behind `admin_login` (default:
/// the login running init). The inventory must hold that person: load it
/// first (`db copy` from a solo cache, or a sync), since a workspace never
/// invents people.
pub fn workspace_init(
    location: &Location,
    admin: &str,
    admin_login: Option<&str>,
) -> Result<WorkspaceInit> {
    let Location::Postgres(target) = location else {
        return Err(Error::invalid(
            "a team workspace lives on PostgreSQL: pass --db postgres://…",
        ));
    };
    let store = Store::open_postgres(target)?;
    let db = target
        .dbname
        .clone()
        .or_else(|| target.user.clone())
        .ok_or_else(|| Error::invalid("the URL names no database"))?;
    let prefix = crate::workspace::role_prefix(&db)?;
    let person = store.resolve_person(admin)?;
    let login = match admin_login {
        Some(l) => l.to_string(),
        None => store.workspace_session_login()?,
    };
    let installed = store.workspace_init(&prefix, &login, person)?;
    Ok(WorkspaceInit {
        installed,
        role_prefix: prefix,
        admin_login: login,
        admin_person: person,
    })
}

/// Adds a member (admin only: the database checks).
pub fn workspace_member_add(
    store: &Store,
    person: &str,
    login: &str,
    roles: &[crate::workspace::Role],
) -> Result<()> {
    let person = store.resolve_person(person)?;
    store.workspace_member_add(login, person, roles)
}

// ---------------------------------------------------------------------------
// The app's connection (see `connection`): settings, who am I, a test.

pub use crate::connection::{refresh_snapshot, ConnectionSettings, ConnectionSettingsView, WhoAmI};
pub use crate::store::snapshot::SnapshotInfo;

/// Who is acting in `store`, with which login and roles.
pub fn who_am_i(store: &Store) -> Result<WhoAmI> {
    crate::connection::who_am_i(store)
}

/// The saved connection settings, and whether `$CUSTODIAN_DB` overrides them.
pub fn connection_settings() -> Result<ConnectionSettingsView> {
    crate::connection::view_at(&crate::connection::settings_file()?)
}

/// Validates and saves the connection settings; `password` (workspace
/// only) goes to the OS keyring, never to the file.
pub fn save_connection_settings(
    settings: &ConnectionSettings,
    password: Option<&str>,
) -> Result<ConnectionSettingsView> {
    let file = crate::connection::settings_file()?;
    crate::connection::save_with(&file, settings, password, &crate::store::pg::store_password)?;
    crate::connection::view_at(&file)
}

/// Opens the workspace in `settings` once and says who that login is.
pub fn test_connection(settings: &ConnectionSettings, password: Option<&str>) -> Result<WhoAmI> {
    crate::connection::test_connection(settings, password)
}

pub use crate::connection::SignInTarget;

/// Where the app signs in to a team workspace (the login and server of
/// [`app_location`]); `None` for a local cache.
pub fn workspace_sign_in_target() -> Result<Option<SignInTarget>> {
    Ok(crate::connection::sign_in_target_of(&app_location()?))
}

/// Signs in to the workspace the app opens with a typed password, checked
/// by connecting first; kept in the OS keyring when `remember`, else for
/// this process only. Reopen the store afterwards.
pub fn workspace_sign_in(password: &str, remember: bool) -> Result<WhoAmI> {
    crate::connection::sign_in(&app_location()?, password, remember)
}

/// Where the desktop app opens its store: `$CUSTODIAN_DB`, else the saved
/// settings, else the local cache.
pub fn app_location() -> Result<Location> {
    crate::connection::app_location()
}
