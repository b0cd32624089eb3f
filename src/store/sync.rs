//! Sources, sync runs, and applying a fetch: diff against what the cache
//! holds, record lifecycle events, swap in atomically.
//!
//! Invariants:
//! - A fetch is applied in one transaction together with its run record and
//!   the recomputed findings: a failure leaves the last good snapshot intact.
//! - Local ids are stable across syncs: rows are matched on
//!   `(source_id, external_id)` and updated in place.
//! - Nothing that disappears from a source is erased: identities become
//!   `deleted`, people `departed`, so decisions and history keep their subject.

use std::collections::{HashMap, HashSet};

use crate::store::db::{params, Db, OptionalExtension, Value, BULK_ROWS};
use crate::values;
use chrono::{DateTime, Utc};

use super::load::refresh_derived;
use super::{from_ts, to_ts, to_ts_opt, Store};
use crate::error::{Context, Error, ErrorCode, Result};
use crate::lifecycle::{self, Event, EventKind, IdentityFacts, PersonFacts, Subject};
use crate::model::{IdentityStatus, PersonStatus, SourceId};
use crate::records::{FetchMode, Fetched, PersonKey};

/// A sync run's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct RunId(pub i64);

/// A configured source (never any secret).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SourceView {
    pub id: i64,
    pub kind: String,
    pub name: String,
    pub settings: serde_json::Value,
    pub has_cursor: bool,
    pub last_run: Option<SyncRunView>,
    /// The identity Custodian signs in as, as the last sync that could tell
    /// found it (`Fetched::signed_in_as`); `None`: not known yet.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub signed_in_as: Option<SignedInAs>,
}

/// The identity a source's sign-in is: its external id in the source, and
/// the inventory entry when one matches (the sync imported it).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SignedInAs {
    pub external_id: String,
    pub identity_id: Option<i64>,
    pub name: Option<String>,
}

/// One sync run as recorded.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SyncRunView {
    pub id: i64,
    pub source_id: i64,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// running | succeeded | succeeded_with_warnings | failed | cancelled | interrupted
    pub status: String,
    pub mode: Option<String>,
    pub items: i64,
    pub joiners: i64,
    pub movers: i64,
    pub leavers: i64,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    /// What the run skipped or doubts, each naming the object and why
    /// (always sent; optional in TypeScript so older callers still type-check).
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(as = "Option<Vec<String>>", optional))]
    pub warnings: Vec<String>,
}

/// A lifecycle event computed by a sync.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct LifecycleEventView {
    pub at: String,
    /// joiner | mover | leaver
    pub kind: String,
    /// person | identity | credential
    pub subject: String,
    pub subject_id: i64,
    pub name: String,
    pub detail: String,
}

/// What applying a fetch changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyReport {
    pub items: usize,
    pub joiners: usize,
    pub movers: usize,
    pub leavers: usize,
    /// Identities whose credentials, grants and delegations were as the
    /// last applied fetch had them: the apply neither read nor wrote those.
    pub unchanged: usize,
    /// The apply wrote something the access graph is made of (what the
    /// graph holds of an identity, a grant, a delegation, a resource), or
    /// removed the demo: blast radii must be ranked again. False (owners,
    /// last use, credentials, people at most): the stored ones stand.
    pub graph_changed: bool,
}

/// One kind of write of an apply, batched on PostgreSQL.
///
/// SQLite runs `sqlite` (one row, `?1..?n` in `columns` order; an update
/// names only the parameters it sets) at once: a cached statement per row
/// is its fastest path, and its behaviour stays as it was. PostgreSQL
/// collects the rows and sends them as one `INSERT INTO table (columns)
/// SELECT * FROM unnest(…) suffix` a batch ([`Db::insert_rows_with`]), an updating
/// batch as `ON CONFLICT (id) DO UPDATE` over rows that all exist, so an
/// apply costs a round trip per [`BULK_ROWS`] rows instead of one per row.
/// Rows a later write depends on (a foreign key, a read) are flushed
/// before it, at the end of each phase; all of it stays in the apply's
/// one transaction.
struct Batch {
    table: &'static str,
    columns: &'static [&'static str],
    suffix: &'static str,
    sqlite: &'static str,
    rows: Vec<Vec<Value>>,
}

impl Batch {
    fn new(
        table: &'static str,
        columns: &'static [&'static str],
        suffix: &'static str,
        sqlite: &'static str,
    ) -> Batch {
        Batch {
            table,
            columns,
            suffix,
            sqlite,
            rows: Vec::new(),
        }
    }

    fn push(&mut self, tx: &Db, row: Vec<Value>) -> Result<()> {
        if !tx.is_postgres() {
            tx.prepare_cached(self.sqlite)?.execute(row)?;
            return Ok(());
        }
        self.rows.push(row);
        if self.rows.len() >= BULK_ROWS {
            self.flush(tx)?;
        }
        Ok(())
    }

    fn flush(&mut self, tx: &Db) -> Result<()> {
        if !self.rows.is_empty() {
            let rows = std::mem::take(&mut self.rows);
            tx.insert_rows_with(self.table, self.columns, self.suffix, rows)?;
        }
        Ok(())
    }
}

/// Logs (at debug) how long each named step of a sync's `phase` took,
/// from the previous call or from the start.
fn steps(phase: &'static str) -> impl FnMut(&str) {
    let mut step = std::time::Instant::now();
    move |name: &str| {
        tracing::debug!(
            phase,
            step = name,
            ms = step.elapsed().as_millis() as u64,
            "sync step"
        );
        step = std::time::Instant::now();
    }
}

/// The next of the ids [`Db::reserve_ids`] handed out.
fn next_id(ids: &mut std::vec::IntoIter<i64>, table: &str) -> Result<i64> {
    ids.next()
        .ok_or_else(|| Error::internal(format!("more new {table} than ids reserved for them")))
}

/// The meta key of the last evaluation of every identity's findings
/// ([`crate::findings::full_evaluation_stamp`]).
const FULL_EVALUATION_KEY: &str = "findings_evaluated_all";

/// Identities an apply must write, and a tenth of the source at least,
/// before PostgreSQL's statistics are taken again in the sync.
const BULK_ANALYZE_MIN: usize = 1_000;

const EVENT_COLUMNS: &[&str] = &[
    "run_id",
    "source_id",
    "at",
    "kind",
    "subject",
    "subject_id",
    "name",
    "detail",
];

struct Events<'a> {
    tx: &'a Db,
    run: RunId,
    source: SourceId,
    at: i64,
    report: ApplyReport,
    rows: Batch,
}

impl<'a> Events<'a> {
    fn new(tx: &'a Db, run: RunId, source: SourceId, at: i64) -> Events<'a> {
        Events {
            tx,
            run,
            source,
            at,
            report: ApplyReport::default(),
            rows: Batch::new(
                "lifecycle_events",
                EVENT_COLUMNS,
                "",
                "INSERT INTO lifecycle_events(run_id, source_id, at, kind, subject, subject_id, name, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            ),
        }
    }

    /// Records `event` (if the rule gave one) about `subject` `subject_id`.
    fn record(
        &mut self,
        subject: Subject,
        subject_id: i64,
        name: &str,
        event: Option<Event>,
    ) -> Result<()> {
        let Some(event) = event else {
            return Ok(());
        };
        self.rows.push(
            self.tx,
            values![
                self.run.0,
                self.source,
                self.at,
                event.kind.as_str(),
                subject.as_str(),
                subject_id,
                name,
                event.detail
            ],
        )?;
        match event.kind {
            EventKind::Joiner => self.report.joiners += 1,
            EventKind::Mover => self.report.movers += 1,
            EventKind::Leaver => self.report.leavers += 1,
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.rows.flush(self.tx)
    }
}

fn run_view(r: &crate::store::db::Row<'_>) -> Result<SyncRunView> {
    let rfc = |t: i64| from_ts(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    Ok(SyncRunView {
        id: r.get(0)?,
        source_id: r.get(1)?,
        started_at: rfc(r.get(2)?),
        finished_at: r.get::<Option<i64>>(3)?.map(rfc),
        status: r.get(4)?,
        mode: r.get(5)?,
        items: r.get(6)?,
        joiners: r.get(7)?,
        movers: r.get(8)?,
        leavers: r.get(9)?,
        error_code: r.get(10)?,
        error_message: r.get(11)?,
        warnings: r
            .get::<Option<String>>(12)?
            .and_then(|w| serde_json::from_str(&w).ok())
            .unwrap_or_default(),
    })
}

/// The first real source replaces the demo organisation, in the
/// transaction that applies its first successful fetch (a failed first sync
/// leaves the demo as it was). Demo sources are the ones a load wrote
/// (`created_at` 0); what was done on the demo is named in the audit log.
/// True when there was a demo to replace.
fn replace_demo(tx: &Db, source: SourceId, now: DateTime<Utc>) -> Result<bool> {
    if demo_dataset(tx)?.is_none() {
        return Ok(false);
    }
    // Campaigns, decisions, cases, registrations or tasks someone made on
    // the demo organisation go with it: never without being asked.
    let mut beyond = super::audit::history_beyond_demo_in(tx)?;
    beyond.audit_entries = 0; // the audit log is kept either way
    if !beyond.is_empty() {
        return Err(Error::invalid(format!(
            "the first real source replaces the demo organisation, but this cache holds {} made on it; \
             nothing was changed. To keep them, sync the source into another cache (set CUSTODIAN_DB to a new file); \
             to discard them with the demo, run `custodian demo --clear --replace-history` (audited), then sync again",
            beyond.describe()
        )));
    }
    wipe_demo(tx, "demo.replace", &format!("source {source}"), now)?;
    tracing::info!("first real source synced: demo organisation removed");
    Ok(true)
}

fn demo_dataset(tx: &Db) -> Result<Option<String>> {
    Ok(super::meta_in(tx, "dataset")?.filter(|d| d.starts_with("demo-")))
}

/// Removes the demo organisation and what was made on it (the audit log is
/// kept), recording `action` with the counts in the same transaction.
fn wipe_demo(tx: &Db, action: &str, subject: &str, now: DateTime<Utc>) -> Result<()> {
    let dataset = demo_dataset(tx)?.unwrap_or_default();
    let history: (i64, i64, i64) = tx.query_row(
        "SELECT (SELECT count(*) FROM campaigns), (SELECT count(*) FROM campaign_events), (SELECT count(*) FROM tasks)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    tx.execute_batch(super::campaigns::WIPE_REVIEWS)?;
    tx.execute_batch(
        "DELETE FROM findings; DELETE FROM delegations; DELETE FROM grants; DELETE FROM credentials;
         DELETE FROM identities; DELETE FROM resources; DELETE FROM people; DELETE FROM lifecycle_events;
         DELETE FROM sync_runs WHERE source_id IN (SELECT id FROM sources WHERE created_at = 0);
         DELETE FROM sources WHERE created_at = 0; DELETE FROM meta WHERE key IN ('dataset', 'demo_history');",
    )?;
    super::audit::append(
        tx,
        to_ts(now),
        "custodian",
        action,
        subject,
        &serde_json::json!({"dataset": dataset, "campaigns": history.0, "decisions": history.1, "tasks": history.2}),
    )?;
    Ok(())
}

impl Store {
    /// Removes the demo organisation now, without loading another (the
    /// next sync of a real source then imports into an empty cache).
    /// History made on the demo (campaigns, decisions, cases,
    /// registrations, tasks) is refused unless `discard_history`; either
    /// way the removal is audited (`demo.clear`, with what went) and the
    /// audit log is kept. A cache that holds no demo is left as it is.
    pub fn clear_demo(&mut self, discard_history: bool, now: DateTime<Utc>) -> Result<()> {
        let tx = self.db.transaction()?;
        if demo_dataset(&tx)?.is_none() {
            return Err(Error::invalid(
                "this cache holds no demo organisation: nothing was removed",
            ));
        }
        let mut beyond = super::audit::history_beyond_demo_in(&tx)?;
        beyond.audit_entries = 0;
        if !beyond.is_empty() && !discard_history {
            return Err(Error::invalid(format!(
                "the demo organisation carries {} made on it; nothing was removed. Confirm that they go too (on the command line: --replace-history); it is audited",
                beyond.describe()
            )));
        }
        wipe_demo(&tx, "demo.clear", "demo organisation", now)?;
        tx.commit()
    }
}

const RUN_COLUMNS: &str =
    "id, source_id, started_at, finished_at, status, mode, items, joiners, movers, leavers, error_code, error_message, warnings";

impl Store {
    /// Adds a source. The first real source replaces the demo organisation.
    pub fn add_source(
        &mut self,
        kind: &str,
        name: &str,
        settings: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<SourceId> {
        self.add_source_then(kind, name, settings, now, |_| Ok(()))
    }

    /// Adds a source and runs `then` (storing its secret) before committing:
    /// when `then` fails nothing is left behind (no source, no audit entry,
    /// the demo organisation still there), so a retry does not find the name
    /// taken.
    pub fn add_source_then(
        &mut self,
        kind: &str,
        name: &str,
        settings: &serde_json::Value,
        now: DateTime<Utc>,
        then: impl FnOnce(SourceId) -> Result<()>,
    ) -> Result<SourceId> {
        let name = name.trim();
        if name.is_empty() {
            return Err(Error::invalid("a source needs a name"));
        }
        let tx = self.db.transaction()?;
        // The demo organisation stays until this source's first sync
        // succeeds (`apply_fetch`).
        let exists: Option<i64> = tx
            .query_row("SELECT id FROM sources WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?;
        if exists.is_some() {
            return Err(Error::invalid(format!(
                "a source named '{name}' already exists"
            )));
        }
        tx.execute(
            "INSERT INTO sources(kind, name, settings, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![kind, name, settings.to_string(), to_ts(now)],
        )?;
        let id = SourceId(tx.last_insert_rowid()?);
        // Settings hold no secrets (those go to the keyring), so they are audited whole.
        super::audit::append(
            &tx,
            to_ts(now),
            "settings",
            "source.add",
            &format!("source {id} {name}"),
            &serde_json::json!({"kind": kind, "settings": settings}),
        )?;
        then(id)?;
        tx.commit()?;
        Ok(id)
    }

    /// Replaces a source's (non-secret) settings.
    pub fn update_source_settings(
        &mut self,
        source: SourceId,
        settings: &serde_json::Value,
    ) -> Result<()> {
        let n = self.db.execute(
            "UPDATE sources SET settings = ?2 WHERE id = ?1",
            params![source, settings.to_string()],
        )?;
        if n == 0 {
            return Err(Error::not_found(format!("no source with id {source}")));
        }
        Ok(())
    }

    /// Forgets the incremental cursor, so the next sync is a full resync.
    pub fn reset_cursor(&mut self, source: SourceId) -> Result<()> {
        self.db
            .execute("UPDATE sources SET cursor = NULL WHERE id = ?1", [source])?;
        Ok(())
    }

    pub fn source_cursor(&self, source: SourceId) -> Result<Option<String>> {
        Ok(self
            .db
            .query_row("SELECT cursor FROM sources WHERE id = ?1", [source], |r| {
                r.get(0)
            })
            .optional()?
            .flatten())
    }

    pub fn source(&self, source: SourceId) -> Result<SourceView> {
        self.sources()?
            .into_iter()
            .find(|s| s.id == source.0)
            .ok_or_else(|| Error::not_found(format!("no source with id {source}")))
    }

    /// Every configured source with its last run.
    pub fn sources(&self) -> Result<Vec<SourceView>> {
        let mut st = self.db.prepare_cached(
            "SELECT s.id, s.kind, s.name, s.settings, s.cursor IS NOT NULL, s.signed_in_as, i.id, i.name
             FROM sources s
             LEFT JOIN identities i ON i.source_id = s.id AND i.external_id = s.signed_in_as
             ORDER BY s.name",
        )?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    (
                        r.get::<i64>(0)?,
                        r.get::<String>(1)?,
                        r.get::<String>(2)?,
                        r.get::<String>(3)?,
                        r.get(4)?,
                    ),
                    (
                        r.get::<Option<String>>(5)?,
                        r.get::<Option<i64>>(6)?,
                        r.get::<Option<String>>(7)?,
                    ),
                ))
            })?
            .collect::<Result<Vec<_>>>()?;
        let mut out = Vec::with_capacity(rows.len());
        for ((id, kind, name, settings, has_cursor), (as_ext, as_id, as_name)) in rows {
            let last_run = self.sync_runs(Some(SourceId(id)), 1)?.into_iter().next();
            out.push(SourceView {
                id,
                kind,
                name,
                settings: serde_json::from_str(&settings).unwrap_or(serde_json::Value::Null),
                has_cursor,
                last_run,
                signed_in_as: as_ext.map(|external_id| SignedInAs {
                    external_id,
                    identity_id: as_id,
                    name: as_name,
                }),
            });
        }
        Ok(out)
    }

    /// Recent runs, newest first.
    pub fn sync_runs(&self, source: Option<SourceId>, limit: u32) -> Result<Vec<SyncRunView>> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM sync_runs WHERE (source_id = ?1 OR ?1 IS NULL) ORDER BY id DESC LIMIT ?2"
        );
        let mut st = self.db.prepare_cached(&sql)?;
        let v = st
            .query_map(params![source, limit], run_view)?
            .collect::<Result<Vec<_>>>()?;
        Ok(v)
    }

    pub fn sync_run(&self, run: RunId) -> Result<SyncRunView> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM sync_runs WHERE id = ?1");
        self.db
            .query_row(&sql, [run.0], run_view)
            .optional()?
            .ok_or_else(|| Error::not_found(format!("no sync run {}", run.0)))
    }

    /// Lifecycle events of a run, in the order they were recorded.
    pub fn lifecycle_events(&self, run: RunId) -> Result<Vec<LifecycleEventView>> {
        let mut st = self.db.prepare_cached(
            "SELECT at, kind, subject, subject_id, name, detail FROM lifecycle_events WHERE run_id = ?1 ORDER BY id",
        )?;
        let v = st
            .query_map([run.0], |r| {
                Ok(LifecycleEventView {
                    at: from_ts(r.get(0)?).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    kind: r.get(1)?,
                    subject: r.get(2)?,
                    subject_id: r.get(3)?,
                    name: r.get(4)?,
                    detail: r.get(5)?,
                })
            })?
            .collect::<Result<Vec<_>>>()?;
        Ok(v)
    }

    /// Records the start of a run (committed at once, so a crash leaves a trace).
    pub fn begin_sync_run(&mut self, source: SourceId, now: DateTime<Utc>) -> Result<RunId> {
        self.db.execute(
            "INSERT INTO sync_runs(source_id, started_at, status) VALUES (?1, ?2, 'running')",
            params![source, to_ts(now)],
        )?;
        Ok(RunId(self.db.last_insert_rowid()?))
    }

    /// Records that a run ended without applying anything.
    pub fn end_sync_run_unapplied(
        &mut self,
        run: RunId,
        status: &str,
        error: &Error,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let tx = self.db.transaction()?;
        tx.execute(
            "UPDATE sync_runs SET status = ?2, finished_at = ?3, error_code = ?4, error_message = ?5 WHERE id = ?1",
            params![run.0, status, to_ts(now), error.code.as_str(), error.message],
        )?;
        let source: Option<(i64, String)> = tx
            .query_row(
                "SELECT s.id, s.name FROM sync_runs r JOIN sources s ON s.id = r.source_id WHERE r.id = ?1",
                [run.0],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if let Some((id, name)) = source {
            super::audit::append(
                &tx,
                to_ts(now),
                "sync",
                "sync.run",
                &format!("source {id} {name}"),
                &serde_json::json!({"run": run.0, "status": status, "error_code": error.code.as_str(), "error": error.message}),
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Runs left `running` by a process that died are marked `interrupted`.
    pub(super) fn mark_interrupted_runs(&self) -> Result<usize> {
        Ok(self.db.execute(
            "UPDATE sync_runs SET status = 'interrupted', error_code = 'interrupted',
                 error_message = 'the sync stopped before it finished (the app or the machine stopped); the previous snapshot was kept'
             WHERE status = 'running'",
            [],
        )?)
    }

    /// Applies a fetch of `source` in one transaction: upserts, removals,
    /// lifecycle events, the run record, the cursor, findings and roll-ups.
    pub fn apply_fetch(
        &mut self,
        source: SourceId,
        run: RunId,
        f: &Fetched,
        now: DateTime<Utc>,
    ) -> Result<ApplyReport> {
        let tx = self.db.transaction()?;
        let exists: Option<i64> = tx
            .query_row("SELECT id FROM sources WHERE id = ?1", [source], |r| {
                r.get(0)
            })
            .optional()?;
        if exists.is_none() {
            return Err(Error::not_found(format!("no source with id {source}")));
        }
        let demo_replaced = replace_demo(&tx, source, now)?;
        let started = std::time::Instant::now();
        let mut changed = Changed::default();
        let report = {
            let mut ev = Events::new(&tx, run, source, to_ts(now));
            apply(&tx, source, f, now, &mut ev, &mut changed)
                .context(|| "applying the sync".to_string())?;
            ev.report
        };
        let report = ApplyReport {
            items: f.item_count(),
            graph_changed: demo_replaced || changed.graph || !changed.resources.is_empty(),
            ..report
        };
        let applied = started.elapsed();
        // A first sync, or one that rewrote much of the source, leaves
        // PostgreSQL planning the derive steps (and the next sync) on
        // statistics of tables that were empty or a tenth the size, until
        // autovacuum comes by.
        let bulk = tx.is_postgres()
            && changed.identities.len() >= BULK_ANALYZE_MIN
            && changed.identities.len() * 10 >= f.identities.len();
        if bulk {
            super::load::analyze_written(&tx)?;
        }
        let mut timed = steps("derive");
        flag_movers(&tx, run)?;
        timed("flag_movers");
        // Every identity, when the clock may have made findings of unchanged
        // ones (see full_evaluation_due); else what this apply wrote.
        let stamp = super::meta_in(&tx, FULL_EVALUATION_KEY)?;
        if crate::findings::full_evaluation_due(stamp.as_deref(), to_ts(now)) {
            track_drift(&tx, source, run, now, false)?;
            timed("track_drift");
            refresh_derived(&tx, now)?;
            super::set_meta_in(
                &tx,
                FULL_EVALUATION_KEY,
                &crate::findings::full_evaluation_stamp(to_ts(now)),
            )?;
            timed("refresh_derived");
        } else {
            let sorted = |set: &HashSet<i64>| {
                let mut v: Vec<i64> = set.iter().copied().collect();
                v.sort_unstable();
                v
            };
            let n = super::load::set_change_scope(
                &tx,
                &sorted(&changed.identities),
                &sorted(&changed.people),
                &sorted(&changed.resources),
            )?;
            timed("change_scope");
            track_drift(&tx, source, run, now, true)?;
            timed("track_drift");
            super::load::refresh_derived_in_scope(&tx, now)?;
            tracing::debug!(
                identities = n,
                "findings evaluated for what the sync changed"
            );
            timed("refresh_derived_in_scope");
        }
        if bulk {
            tx.analyze("findings")?;
        }
        super::campaigns::mark_vanished(&tx, now)?;
        timed("mark_vanished");
        super::offboarding::open_cases(&tx, now)?;
        timed("open_cases");
        tracing::info!(
            source = %source,
            apply_ms = applied.as_millis() as u64,
            derive_ms = (started.elapsed() - applied).as_millis() as u64,
            "sync applied"
        );
        // A run that cannot tell whom it signed in as keeps what an earlier one found.
        tx.execute(
            "UPDATE sources SET cursor = ?2, signed_in_as = coalesce(?3, signed_in_as) WHERE id = ?1",
            params![source, f.cursor, f.signed_in_as],
        )?;
        let warnings = f.warnings_for_record();
        let status = if warnings.is_empty() {
            "succeeded"
        } else {
            "succeeded_with_warnings"
        };
        let warnings_json = (!warnings.is_empty())
            .then(|| serde_json::to_string(&warnings))
            .transpose()?;
        tx.execute(
            "UPDATE sync_runs SET status = ?8, finished_at = ?2, mode = ?3, items = ?4, joiners = ?5,
                 movers = ?6, leavers = ?7, error_code = NULL, error_message = NULL, warnings = ?9 WHERE id = ?1",
            params![
                run.0,
                to_ts(now),
                f.mode.as_str(),
                report.items as i64,
                report.joiners as i64,
                report.movers as i64,
                report.leavers as i64,
                status,
                warnings_json
            ],
        )?;
        let source_name: String =
            tx.query_row("SELECT name FROM sources WHERE id = ?1", [source], |r| {
                r.get(0)
            })?;
        super::audit::append(
            &tx,
            to_ts(now),
            "sync",
            "sync.run",
            &format!("source {source} {source_name}"),
            &serde_json::json!({"run": run.0, "status": status, "warnings": warnings.len(), "mode": f.mode.as_str(), "items": report.items,
                                "joiners": report.joiners, "movers": report.movers, "leavers": report.leavers}),
        )?;
        let committing = std::time::Instant::now();
        tx.commit()?;
        tracing::debug!(
            ms = committing.elapsed().as_millis() as u64,
            "sync committed"
        );
        Ok(report)
    }
}

struct ExistingPerson {
    id: i64,
    status: PersonStatus,
    department: String,
    manager: Option<i64>,
    name: String,
    email: String,
    title: String,
    left_at: Option<i64>,
}

struct ExistingIdentity {
    id: i64,
    status: IdentityStatus,
    owner: Option<i64>,
    registered: bool,
    name: String,
    kind: crate::model::IdentityKind,
    builder: Option<i64>,
    team: String,
    environment: String,
    last_used: Option<i64>,
    class: Option<crate::model::AgentClass>,
    purpose: String,
    intended: String,
    interval: Option<i64>,
    /// What the last applied fetch had it hold (`children_digest`).
    digest: Option<String>,
}

const PERSON_COLUMNS: &[&str] = &[
    "id",
    "source_id",
    "external_id",
    "display_name",
    "email",
    "department",
    "title",
    "status",
    "left_at",
];
const PERSON_MANAGER_COLUMNS: &[&str] = &[
    "id",
    "source_id",
    "external_id",
    "display_name",
    "email",
    "department",
    "title",
    "status",
    "left_at",
    "manager_id",
];
const RESOURCE_COLUMNS: &[&str] = &[
    "id",
    "source_id",
    "external_id",
    "name",
    "kind",
    "sensitivity",
    "environment",
];
const IDENTITY_COLUMNS: &[&str] = &[
    "id",
    "source_id",
    "external_id",
    "name",
    "kind",
    "agent_class",
    "status",
    "purpose",
    "builder_id",
    "owner_id",
    "team",
    "environment",
    "registered",
    "intended_blast_radius",
    "review_interval_days",
    "created_at",
    "last_used_at",
    "children_digest",
];
const CREDENTIAL_COLUMNS: &[&str] = &[
    "id",
    "identity_id",
    "external_id",
    "kind",
    "display_name",
    "created_at",
    "expires_at",
    "last_rotated_at",
    "last_used_at",
];
const GRANT_COLUMNS: &[&str] = &[
    "identity_id",
    "resource_id",
    "permission",
    "privilege",
    "high_consequence",
    "last_used_at",
    "condition",
    "excluded",
];
const GRANT_UPDATE_COLUMNS: &[&str] = &[
    "id",
    "identity_id",
    "resource_id",
    "permission",
    "privilege",
    "high_consequence",
    "last_used_at",
    "condition",
    "excluded",
];

fn person_facts<'a>(status: PersonStatus, department: &'a str) -> PersonFacts<'a> {
    PersonFacts { status, department }
}

fn apply(
    tx: &Db,
    source: SourceId,
    f: &Fetched,
    now: DateTime<Utc>,
    ev: &mut Events<'_>,
    changed: &mut Changed,
) -> Result<()> {
    let now_ts = to_ts(now);
    let mut timed = steps("apply");

    // People, first without managers (they may point at each other).
    let mut people: HashMap<String, ExistingPerson> = HashMap::new();
    {
        let mut st = tx.prepare(
            "SELECT external_id, id, status, department, manager_id, display_name, email, title, left_at
             FROM people WHERE source_id = ?1",
        )?;
        let rows = st.query_map([source], |r| {
            Ok((
                r.get::<String>(0)?,
                ExistingPerson {
                    id: r.get(1)?,
                    status: r.get(2)?,
                    department: r.get(3)?,
                    manager: r.get(4)?,
                    name: r.get(5)?,
                    email: r.get(6)?,
                    title: r.get(7)?,
                    left_at: r.get(8)?,
                },
            ))
        })?;
        for row in rows {
            let (k, v) = row?;
            people.insert(k, v);
        }
    }
    let mut seen_people: HashSet<&str> = HashSet::with_capacity(f.people.len());
    let mut person_ids: HashMap<&str, i64> = HashMap::with_capacity(f.people.len());
    let new_people = f
        .people
        .iter()
        .filter(|p| !people.contains_key(&p.external_id))
        .count();
    let mut ids = tx.reserve_ids("people", new_people)?.into_iter();
    let mut update = Batch::new(
        "people",
        PERSON_COLUMNS,
        "ON CONFLICT (id) DO UPDATE SET display_name = excluded.display_name, email = excluded.email,
             department = excluded.department, title = excluded.title, status = excluded.status, left_at = excluded.left_at",
        "UPDATE people SET display_name = ?4, email = ?5, department = ?6, title = ?7, status = ?8,
             left_at = ?9 WHERE id = ?1",
    );
    let mut insert = Batch::new(
        "people",
        PERSON_COLUMNS,
        "",
        "INSERT INTO people(id, source_id, external_id, display_name, email, department, title, status, left_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    );
    for p in &f.people {
        seen_people.insert(p.external_id.as_str());
        let id = match people.get(&p.external_id) {
            Some(old)
                if old.name == p.display_name
                    && old.email == p.email
                    && old.department == p.department
                    && old.title == p.title
                    && old.status == p.status
                    && old.left_at == to_ts_opt(p.left_at) =>
            {
                old.id
            }
            Some(old) => {
                update.push(
                    tx,
                    values![
                        old.id,
                        source,
                        p.external_id,
                        p.display_name,
                        p.email,
                        p.department,
                        p.title,
                        p.status,
                        to_ts_opt(p.left_at)
                    ],
                )?;
                let event = lifecycle::person_changed(
                    person_facts(old.status, &old.department),
                    person_facts(p.status, &p.department),
                );
                ev.record(Subject::Person, old.id, &p.display_name, event)?;
                changed.people.insert(old.id);
                old.id
            }
            None => {
                let id = next_id(&mut ids, "people")?;
                insert.push(
                    tx,
                    values![
                        id,
                        source,
                        p.external_id,
                        p.display_name,
                        p.email,
                        p.department,
                        p.title,
                        p.status,
                        to_ts_opt(p.left_at)
                    ],
                )?;
                ev.record(
                    Subject::Person,
                    id,
                    &p.display_name,
                    Some(lifecycle::person_new()),
                )?;
                changed.people.insert(id);
                id
            }
        };
        person_ids.insert(p.external_id.as_str(), id);
    }
    // Managers and owners resolve by email too, so these rows must be readable.
    update.flush(tx)?;
    insert.flush(tx)?;
    let mut resolver = PersonResolver {
        source,
        local: &person_ids,
        by_email: HashMap::new(),
    };
    let mut managers = Batch::new(
        "people",
        PERSON_MANAGER_COLUMNS,
        "ON CONFLICT (id) DO UPDATE SET manager_id = excluded.manager_id",
        "UPDATE people SET manager_id = ?10 WHERE id = ?1",
    );
    for p in &f.people {
        let Some(&id) = person_ids.get(p.external_id.as_str()) else {
            continue;
        };
        let manager = match &p.manager {
            Some(k) => resolver.resolve(tx, k)?,
            None => None,
        };
        if let Some(old) = people.get(&p.external_id) {
            if old.manager == manager {
                continue;
            }
            let event = lifecycle::person_manager_changed(
                person_facts(old.status, &old.department),
                person_facts(p.status, &p.department),
            );
            ev.record(Subject::Person, id, &p.display_name, event)?;
        }
        managers.push(
            tx,
            values![
                id,
                source,
                p.external_id,
                p.display_name,
                p.email,
                p.department,
                p.title,
                p.status,
                to_ts_opt(p.left_at),
                manager
            ],
        )?;
    }
    managers.flush(tx)?;
    timed("people");
    // People no longer in the source have left it.
    let gone: Vec<&ExistingPerson> = match f.mode {
        FetchMode::Full => people
            .iter()
            .filter(|(k, _)| !seen_people.contains(k.as_str()))
            .map(|(_, v)| v)
            .collect(),
        FetchMode::Incremental => f
            .removed_people
            .iter()
            .filter_map(|k| people.get(k))
            .collect(),
    };
    for p in gone {
        if let Some(event) = lifecycle::person_removed(p.status) {
            tx.prepare_cached("UPDATE people SET status = 'departed', left_at = coalesce(left_at, ?2) WHERE id = ?1")?
                .execute(params![p.id, now_ts])?;
            ev.record(Subject::Person, p.id, &p.name, Some(event))?;
            changed.people.insert(p.id);
        }
    }

    // Resources.
    let mut resources: HashMap<String, i64> = HashMap::new();
    // (name, kind, sensitivity, environment) as stored: an unchanged resource is not written.
    let mut stored: HashMap<i64, (String, String, crate::model::Sensitivity, String)> =
        HashMap::new();
    {
        let mut st = tx.prepare(
            "SELECT external_id, id, name, kind, sensitivity, environment FROM resources WHERE source_id = ?1",
        )?;
        let rows = st.query_map([source], |r| {
            Ok((
                r.get::<String>(0)?,
                r.get::<i64>(1)?,
                (r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?),
            ))
        })?;
        for row in rows {
            let (k, id, v) = row?;
            resources.insert(k, id);
            stored.insert(id, v);
        }
    }
    let mut seen_resources: HashSet<&str> = HashSet::new();
    let new_resources = f
        .resources
        .iter()
        .filter(|r| !resources.contains_key(&r.external_id))
        .count();
    let mut ids = tx.reserve_ids("resources", new_resources)?.into_iter();
    let mut update = Batch::new(
        "resources",
        RESOURCE_COLUMNS,
        "ON CONFLICT (id) DO UPDATE SET name = excluded.name, kind = excluded.kind,
             sensitivity = excluded.sensitivity, environment = excluded.environment",
        "UPDATE resources SET name = ?4, kind = ?5, sensitivity = ?6, environment = ?7 WHERE id = ?1",
    );
    let mut insert = Batch::new(
        "resources",
        RESOURCE_COLUMNS,
        "",
        "INSERT INTO resources(id, source_id, external_id, name, kind, sensitivity, environment)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    );
    for r in &f.resources {
        seen_resources.insert(r.external_id.as_str());
        let (batch, id) = match resources.get(&r.external_id) {
            Some(&id)
                if stored
                    .get(&id)
                    .is_some_and(|(name, kind, sensitivity, environment)| {
                        (name, kind, *sensitivity, environment)
                            == (&r.name, &r.kind, r.sensitivity, &r.environment)
                    }) =>
            {
                continue;
            }
            Some(&id) => (&mut update, id),
            None => {
                let id = next_id(&mut ids, "resources")?;
                resources.insert(r.external_id.clone(), id);
                (&mut insert, id)
            }
        };
        changed.resources.insert(id);
        batch.push(
            tx,
            values![
                id,
                source,
                r.external_id,
                r.name,
                r.kind,
                r.sensitivity,
                r.environment
            ],
        )?;
    }
    update.flush(tx)?;
    insert.flush(tx)?;
    // Resources the source no longer returns go only after the grants are
    // applied, so the grants on them are counted and named as lost (a
    // cascade would drop them unsaid); no incoming grant may refer to them.
    let mut stale_resources: Vec<i64> = Vec::new();
    if f.mode == FetchMode::Full {
        resources.retain(|k, v| {
            let seen = seen_resources.contains(k.as_str());
            if !seen {
                stale_resources.push(*v);
            }
            seen
        });
    }

    timed("resources");
    // Identities.
    let mut identities: HashMap<String, ExistingIdentity> = HashMap::new();
    {
        let mut st = tx.prepare(
            "SELECT external_id, id, status, owner_id, registered, name, kind, builder_id, team, environment,
                    last_used_at, agent_class, purpose, intended_blast_radius, review_interval_days, children_digest
             FROM identities WHERE source_id = ?1",
        )?;
        let rows = st.query_map([source], |r| {
            Ok((
                r.get::<String>(0)?,
                ExistingIdentity {
                    id: r.get(1)?,
                    status: r.get(2)?,
                    owner: r.get(3)?,
                    registered: r.get(4)?,
                    name: r.get(5)?,
                    kind: r.get(6)?,
                    builder: r.get(7)?,
                    team: r.get(8)?,
                    environment: r.get(9)?,
                    last_used: r.get(10)?,
                    class: r.get(11)?,
                    purpose: r.get(12)?,
                    intended: r.get(13)?,
                    interval: r.get(14)?,
                    digest: r.get(15)?,
                },
            ))
        })?;
        for row in rows {
            let (k, v) = row?;
            identities.insert(k, v);
        }
    }
    // Owners decided in Custodian (transfers, temporary owners, registrations)
    // win over the source's until the source reports the same owner.
    let overrides: HashMap<i64, i64> = {
        let mut st = tx.prepare(
            "SELECT o.identity_id, o.owner_id FROM owner_overrides o JOIN identities i ON i.id = o.identity_id
             WHERE i.source_id = ?1",
        )?;
        let v = st
            .query_map([source], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<HashMap<_, _>>>()?;
        v
    };
    timed("identities read");
    let new_identities = f
        .identities
        .iter()
        .filter(|i| !identities.contains_key(&i.external_id))
        .count();
    let mut ids = tx.reserve_ids("identities", new_identities)?.into_iter();
    let mut update = Batch::new(
        "identities",
        IDENTITY_COLUMNS,
        "ON CONFLICT (id) DO UPDATE SET name = excluded.name, kind = excluded.kind, agent_class = excluded.agent_class,
             status = excluded.status, purpose = excluded.purpose, builder_id = excluded.builder_id,
             owner_id = excluded.owner_id, team = excluded.team, environment = excluded.environment,
             registered = excluded.registered, intended_blast_radius = excluded.intended_blast_radius,
             review_interval_days = excluded.review_interval_days, last_used_at = excluded.last_used_at,
             children_digest = excluded.children_digest",
        "UPDATE identities SET name = ?4, kind = ?5, agent_class = ?6, status = ?7, purpose = ?8, builder_id = ?9,
             owner_id = ?10, team = ?11, environment = ?12, registered = ?13, intended_blast_radius = ?14,
             review_interval_days = ?15, last_used_at = ?17, children_digest = ?18
         WHERE id = ?1",
    );
    let mut insert = Batch::new(
        "identities",
        IDENTITY_COLUMNS,
        "",
        "INSERT INTO identities(id, source_id, external_id, name, kind, agent_class, status, purpose, builder_id,
             owner_id, team, environment, registered, intended_blast_radius, review_interval_days, created_at,
             last_used_at, children_digest)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
    );
    // An identity whose row is as stored but whose children are not: the
    // new digest alone (the whole row for PostgreSQL's INSERT, which checks
    // NOT NULL before the conflict).
    let mut digest_only = Batch::new(
        "identities",
        IDENTITY_COLUMNS,
        "ON CONFLICT (id) DO UPDATE SET children_digest = excluded.children_digest",
        "UPDATE identities SET children_digest = ?18 WHERE id = ?1",
    );
    // What each identity holds in this fetch; an identity whose digest is
    // as stored is `clean`: its children's apply skips it (applying the
    // same records again would change nothing), whatever its row does.
    let digests = f.children_digests();
    timed("digests");
    let mut clean: HashSet<i64> = HashSet::new();
    // Identities whose children (credentials, grants, delegations) this fetch replaces.
    let mut touched: Touched<'_> = HashMap::with_capacity(f.identities.len());
    for i in &f.identities {
        let source_owner = match &i.owner {
            Some(k) => resolver.resolve(tx, k)?,
            None => None,
        };
        let held = identities
            .get(&i.external_id)
            .and_then(|old| overrides.get(&old.id).map(|o| (old.id, *o)));
        let owner = match held {
            Some((id, o)) if source_owner == Some(o) => {
                // The source caught up: its owner is the truth again.
                tx.prepare_cached("DELETE FROM owner_overrides WHERE identity_id = ?1")?
                    .execute([id])?;
                changed.identities.insert(id);
                source_owner
            }
            Some((_, o)) => Some(o),
            None => source_owner,
        };
        let builder = match &i.builder {
            Some(k) => resolver.resolve(tx, k)?,
            None => None,
        };
        let created = to_ts(i.created_at.unwrap_or(now));
        let digest = digests
            .get(i.external_id.as_str())
            .copied()
            .unwrap_or_default()
            .to_hex();
        let existing = identities.get(&i.external_id);
        if let Some(old) = existing.filter(|old| old.digest.as_deref() == Some(digest.as_str())) {
            clean.insert(old.id);
        }
        match existing {
            Some(old) if identity_unchanged(old, i, owner, builder) => {
                if !clean.contains(&old.id) {
                    let row = identity_row(Some(old), i, owner, builder);
                    digest_only.push(tx, row.values(old.id, source, i, created, &digest))?;
                }
                touched.insert(i.external_id.as_str(), (old.id, false, i.name.as_str()));
            }
            Some(old) => {
                let row = identity_row(Some(old), i, owner, builder);
                update.push(tx, row.values(old.id, source, i, created, &digest))?;
                let events = lifecycle::identity_changed(
                    IdentityFacts {
                        status: old.status,
                        owner: old.owner,
                        last_used: old.last_used,
                    },
                    IdentityFacts {
                        status: i.status,
                        owner,
                        last_used: to_ts_opt(i.last_used_at),
                    },
                );
                for event in events {
                    ev.record(Subject::Identity, old.id, &i.name, Some(event))?;
                }
                // What the access graph holds of an identity (blast::GraphIdentity).
                changed.graph |= old.name != i.name
                    || old.kind != i.kind
                    || old.status != i.status
                    || old.intended != row.intended;
                changed.identities.insert(old.id);
                touched.insert(i.external_id.as_str(), (old.id, false, i.name.as_str()));
            }
            None => {
                let id = next_id(&mut ids, "identities")?;
                let row = identity_row(None, i, owner, builder);
                insert.push(tx, row.values(id, source, i, created, &digest))?;
                let event = lifecycle::identity_new(i.kind.as_str());
                ev.record(Subject::Identity, id, &i.name, Some(event))?;
                changed.identities.insert(id);
                changed.graph = true;
                touched.insert(i.external_id.as_str(), (id, true, i.name.as_str()));
            }
        }
    }
    // Credentials, grants and delegations point at these rows.
    update.flush(tx)?;
    insert.flush(tx)?;
    digest_only.flush(tx)?;
    let removed: Vec<(&String, &ExistingIdentity)> = match f.mode {
        FetchMode::Full => identities
            .iter()
            .filter(|(k, _)| !touched.contains_key(k.as_str()))
            .collect(),
        FetchMode::Incremental => f
            .removed_identities
            .iter()
            .filter_map(|k| identities.get_key_value(k))
            .collect(),
    };
    for (_, old) in removed {
        changed.identities.insert(old.id);
        changed.graph = true;
        if let Some(event) = lifecycle::identity_removed(old.status) {
            tx.prepare_cached("UPDATE identities SET status = 'deleted' WHERE id = ?1")?
                .execute([old.id])?;
            // Not written by this apply: the name is the stored one.
            ev.record(Subject::Identity, old.id, &old.name, Some(event))?;
        }
        for sql in [
            "DELETE FROM credentials WHERE identity_id = ?1",
            "DELETE FROM grants WHERE identity_id = ?1",
            "DELETE FROM delegations WHERE from_id = ?1",
            // It holds nothing now: should it return, compare everything.
            "UPDATE identities SET children_digest = NULL WHERE id = ?1",
        ] {
            tx.prepare_cached(sql)?.execute([old.id])?;
        }
    }

    let held = Held::new(tx, source, &touched, &clean)?;
    ev.report.unchanged = clean.len();
    tracing::debug!(
        identities = touched.len(),
        unchanged = clean.len(),
        "identities whose children are as stored"
    );
    timed("identities");
    apply_credentials(tx, f, &touched, &held, now_ts, ev, changed)?;
    timed("credentials");
    apply_grants(tx, f, &touched, &resources, &held, ev, changed)?;
    timed("grants");
    apply_delegations(tx, f, &touched, &identities, &held, ev, changed)?;
    timed("delegations");
    for id in stale_resources {
        tx.prepare_cached("DELETE FROM resources WHERE id = ?1")?
            .execute([id])?;
        // A wildcard grant's cover is every resource of its account.
        changed.resources.insert(id);
    }
    ev.flush()
}

/// True when applying `i` would not change the stored row (no write, so no
/// FTS churn and no WAL growth on a resync).
fn identity_unchanged(
    old: &ExistingIdentity,
    i: &crate::records::IdentityRecord,
    owner: Option<i64>,
    builder: Option<i64>,
) -> bool {
    let registration_same = match &i.registration {
        Some(reg) => {
            old.registered
                && old.purpose == reg.purpose
                && old.intended == reg.intended_blast_radius
                && old.interval == reg.review_interval_days
                && reg.agent_class.is_none_or(|c| old.class == Some(c))
        }
        None => old.registered || old.purpose == i.description,
    };
    registration_same
        && old.name == i.name
        && old.kind == i.kind
        && old.status == i.status
        && old.owner == owner
        && builder.or(old.builder) == old.builder
        && old.team == i.team
        && old.environment == i.environment
        && to_ts_opt(i.last_used_at).or(old.last_used) == old.last_used
        && i.agent_class.or(old.class) == old.class
}

/// The columns of an identity's row that a record decides, as they are
/// after applying it over `old` (none for a new identity): what the source
/// leaves out (builder, last use, agent class) is kept; a registration sets
/// purpose, intended blast radius, review interval and class; unregistered
/// identities show what the source says they are for, while a registered
/// purpose is Custodian's and is kept.
struct IdentityRow<'a> {
    agent_class: Option<crate::model::AgentClass>,
    purpose: &'a str,
    builder: Option<i64>,
    owner: Option<i64>,
    registered: bool,
    intended: &'a str,
    interval: Option<i64>,
    last_used: Option<i64>,
}

impl IdentityRow<'_> {
    /// The row's values in `IDENTITY_COLUMNS` order.
    fn values(
        &self,
        id: i64,
        source: SourceId,
        i: &crate::records::IdentityRecord,
        created: i64,
        digest: &str,
    ) -> Vec<Value> {
        values![
            id,
            source,
            i.external_id,
            i.name,
            i.kind,
            self.agent_class,
            i.status,
            self.purpose,
            self.builder,
            self.owner,
            i.team,
            i.environment,
            self.registered,
            self.intended,
            self.interval,
            created,
            self.last_used,
            digest
        ]
    }
}

fn identity_row<'a>(
    old: Option<&'a ExistingIdentity>,
    i: &'a crate::records::IdentityRecord,
    owner: Option<i64>,
    builder: Option<i64>,
) -> IdentityRow<'a> {
    let class = i.agent_class.or(old.and_then(|o| o.class));
    let registered_before = old.is_some_and(|o| o.registered);
    let (registered, purpose, intended, interval, agent_class) = match &i.registration {
        Some(reg) => (
            true,
            reg.purpose.as_str(),
            reg.intended_blast_radius.as_str(),
            reg.review_interval_days,
            reg.agent_class.or(class),
        ),
        None => match old {
            Some(o) if registered_before => (
                true,
                o.purpose.as_str(),
                o.intended.as_str(),
                o.interval,
                class,
            ),
            Some(o) => (
                false,
                i.description.as_str(),
                o.intended.as_str(),
                o.interval,
                class,
            ),
            None => (false, i.description.as_str(), "", None, class),
        },
    };
    IdentityRow {
        agent_class,
        purpose,
        builder: builder.or(old.and_then(|o| o.builder)),
        owner,
        registered,
        intended,
        interval,
        last_used: to_ts_opt(i.last_used_at).or(old.and_then(|o| o.last_used)),
    }
}

/// Stored credential columns, for change detection.
type CredRow = (
    i64,
    crate::model::CredentialKind,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

/// The identities an apply writes, by external id: (local id, new in this
/// run, the name the source gives it, which events are recorded under).
type Touched<'a> = HashMap<&'a str, (i64, bool, &'a str)>;

/// What an apply wrote, by store id: the findings of every identity these
/// can bear on are evaluated again (see [`crate::findings::full_evaluation_due`]).
#[derive(Default)]
struct Changed {
    identities: HashSet<i64>,
    people: HashSet<i64>,
    resources: HashSet<i64>,
    /// Something the access graph is made of was written: an identity's
    /// name, kind, status or intent, an identity new or dropped, a grant or
    /// a delegation (resources count through `resources`).
    graph: bool,
}

impl Changed {
    /// The identity's access (a grant or a delegation) was written.
    fn access(&mut self, identity: i64) {
        self.identities.insert(identity);
        self.graph = true;
    }
}

/// Whose stored children the apply reads and compares: every touched
/// identity but the clean ones (digest as stored). When at least
/// half are clean, only the others' are read, through `temp.sync_dirty`;
/// otherwise every identity of the source's, in one scan.
struct Held<'a> {
    /// The source applied: `?1` of [`Held::scope`].
    source: SourceId,
    clean: &'a HashSet<i64>,
    dirty_only: bool,
}

impl<'a> Held<'a> {
    fn new(
        tx: &Db,
        source: SourceId,
        touched: &Touched<'_>,
        clean: &'a HashSet<i64>,
    ) -> Result<Held<'a>> {
        let dirty_only = !clean.is_empty() && clean.len() * 2 >= touched.len();
        if dirty_only {
            let mut dirty: Vec<i64> = touched
                .values()
                .map(|t| t.0)
                .filter(|id| !clean.contains(id))
                .collect();
            dirty.sort_unstable();
            super::load::fill_temp_ids(tx, "sync_dirty", &dirty)?;
            tx.analyze("sync_dirty")?;
        }
        Ok(Held {
            source,
            clean,
            dirty_only,
        })
    }

    /// The joins and filter after `FROM <children> <alias>` that select
    /// the stored children to compare, by their identity `column`; `?1` is
    /// [`Held::source`].
    fn scope(&self, column: &str) -> String {
        if self.dirty_only {
            format!(
                "JOIN temp.sync_dirty dirty ON dirty.id = {column} JOIN identities i ON i.id = dirty.id WHERE i.source_id = ?1"
            )
        } else {
            format!("JOIN identities i ON i.id = {column} WHERE i.source_id = ?1")
        }
    }

    /// True when the identity's children are as stored: nothing to do.
    fn skips(&self, identity: i64) -> bool {
        self.clean.contains(&identity)
    }
}

fn apply_credentials(
    tx: &Db,
    f: &Fetched,
    touched: &Touched<'_>,
    held_by: &Held<'_>,
    now_ts: i64,
    ev: &mut Events<'_>,
    changed: &mut Changed,
) -> Result<()> {
    let mut incoming: HashMap<i64, Vec<&crate::records::CredentialRecord>> = HashMap::new();
    for c in &f.credentials {
        let Some(&(id, ..)) = touched.get(c.identity.as_str()) else {
            return Err(Error::new(
                ErrorCode::InvalidInput,
                format!(
                    "credential {} belongs to identity {} which the source did not return",
                    c.external_id, c.identity
                ),
            ));
        };
        if held_by.skips(id) {
            continue;
        }
        incoming.entry(id).or_default().push(c);
    }
    // Everything the identities to compare hold now, in one query.
    let mut existing: HashMap<i64, HashMap<String, CredRow>> = HashMap::new();
    {
        let mut st = tx.prepare(&format!(
            "SELECT c.identity_id, c.external_id, c.id, c.kind, c.display_name, c.created_at, c.expires_at,
                    c.last_rotated_at, c.last_used_at
             FROM credentials c {}",
            held_by.scope("c.identity_id")
        ))?;
        let rows = st.query_map([held_by.source], |r| {
            Ok((
                r.get::<i64>(0)?,
                r.get::<String>(1)?,
                (
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                ),
            ))
        })?;
        for row in rows {
            let (identity, ext, v) = row?;
            existing.entry(identity).or_default().insert(ext, v);
        }
    }
    let new_credentials = incoming
        .iter()
        .map(|(identity, cs)| {
            let held = existing.get(identity);
            cs.iter()
                .filter(|c| held.is_none_or(|h| !h.contains_key(&c.external_id)))
                .count()
        })
        .sum();
    let mut ids = tx.reserve_ids("credentials", new_credentials)?.into_iter();
    let mut update = Batch::new(
        "credentials",
        CREDENTIAL_COLUMNS,
        "ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, display_name = excluded.display_name,
             created_at = excluded.created_at, expires_at = excluded.expires_at,
             last_rotated_at = excluded.last_rotated_at, last_used_at = excluded.last_used_at",
        "UPDATE credentials SET kind = ?4, display_name = ?5, created_at = ?6, expires_at = ?7,
             last_rotated_at = ?8, last_used_at = ?9 WHERE id = ?1",
    );
    let mut insert = Batch::new(
        "credentials",
        CREDENTIAL_COLUMNS,
        "",
        "INSERT INTO credentials(id, identity_id, external_id, kind, display_name, created_at, expires_at,
             last_rotated_at, last_used_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    );
    for &(identity, is_new, name) in touched.values() {
        if held_by.skips(identity) {
            continue;
        }
        let held = existing.remove(&identity).unwrap_or_default();
        let mut keep: HashSet<i64> = HashSet::new();
        for c in incoming.remove(&identity).unwrap_or_default() {
            // A source that does not date a credential: first seen.
            let stored = held.get(&c.external_id);
            let created = to_ts_opt(c.created_at)
                .or(stored.map(|old| old.3))
                .unwrap_or(now_ts);
            let row = (
                c.kind,
                c.display_name.clone(),
                created,
                to_ts_opt(c.expires_at),
                to_ts_opt(c.last_rotated_at),
            );
            match stored {
                Some(old) => {
                    keep.insert(old.0);
                    let used = to_ts_opt(c.last_used_at).or(old.6);
                    if (old.1, old.2.clone(), old.3, old.4, old.5) == row && used == old.6 {
                        continue;
                    }
                    changed.identities.insert(identity);
                    update.push(
                        tx,
                        values![
                            old.0,
                            identity,
                            c.external_id,
                            row.0,
                            row.1,
                            row.2,
                            row.3,
                            row.4,
                            used
                        ],
                    )?;
                }
                None => {
                    let cid = next_id(&mut ids, "credentials")?;
                    changed.identities.insert(identity);
                    insert.push(
                        tx,
                        values![
                            cid,
                            identity,
                            c.external_id,
                            row.0,
                            row.1,
                            row.2,
                            row.3,
                            row.4,
                            to_ts_opt(c.last_used_at)
                        ],
                    )?;
                    let event = lifecycle::credential_new(is_new, c.kind.as_str(), name);
                    ev.record(Subject::Credential, cid, &c.display_name, event)?;
                }
            }
        }
        for old in held.values().filter(|old| !keep.contains(&old.0)) {
            tx.prepare_cached("DELETE FROM credentials WHERE id = ?1")?
                .execute([old.0])?;
            changed.identities.insert(identity);
        }
    }
    update.flush(tx)?;
    insert.flush(tx)
}

fn apply_grants(
    tx: &Db,
    f: &Fetched,
    touched: &Touched<'_>,
    resources: &HashMap<String, i64>,
    held_by: &Held<'_>,
    ev: &mut Events<'_>,
    changed: &mut Changed,
) -> Result<()> {
    /// (grant id, privilege, high consequence, last used, condition, excluded)
    type GrantRow = (
        i64,
        crate::model::Privilege,
        bool,
        Option<i64>,
        Option<String>,
        Option<String>,
    );
    let mut incoming: HashMap<i64, Vec<(i64, &crate::records::GrantRecord)>> = HashMap::new();
    for g in &f.grants {
        let Some(&(id, ..)) = touched.get(g.identity.as_str()) else {
            return Err(Error::invalid(format!(
                "a grant refers to identity {} which the source did not return",
                g.identity
            )));
        };
        let Some(&rid) = resources.get(&g.resource) else {
            return Err(Error::invalid(format!(
                "grant {} of {} refers to resource {} which the source did not return",
                g.permission, g.identity, g.resource
            )));
        };
        if held_by.skips(id) {
            continue;
        }
        incoming.entry(id).or_default().push((rid, g));
    }
    let mut existing: HashMap<i64, HashMap<(i64, String), GrantRow>> = HashMap::new();
    {
        let mut st = tx.prepare(&format!(
            "SELECT g.identity_id, g.resource_id, g.permission, g.id, g.privilege, g.high_consequence, g.last_used_at,
                    g.condition, g.excluded
             FROM grants g {}",
            held_by.scope("g.identity_id")
        ))?;
        let rows = st.query_map([held_by.source], |r| {
            Ok((
                r.get::<i64>(0)?,
                (r.get::<i64>(1)?, r.get::<String>(2)?),
                (
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                ),
            ))
        })?;
        for row in rows {
            let (identity, key, v) = row?;
            existing.entry(identity).or_default().insert(key, v);
        }
    }
    let mut update = Batch::new(
        "grants",
        GRANT_UPDATE_COLUMNS,
        "ON CONFLICT (id) DO UPDATE SET privilege = excluded.privilege, high_consequence = excluded.high_consequence,
             last_used_at = excluded.last_used_at, condition = excluded.condition, excluded = excluded.excluded",
        "UPDATE grants SET privilege = ?5, high_consequence = ?6, last_used_at = ?7, condition = ?8, excluded = ?9
         WHERE id = ?1",
    );
    let mut insert = Batch::new(
        "grants",
        GRANT_COLUMNS,
        "",
        "INSERT INTO grants(identity_id, resource_id, permission, privilege, high_consequence, last_used_at,
                            condition, excluded)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    );
    for (_, &(identity, is_new, name)) in touched {
        if held_by.skips(identity) {
            continue;
        }
        let held = existing.remove(&identity).unwrap_or_default();
        let mut keep: HashSet<i64> = HashSet::new();
        let (mut added, mut removed) = (0usize, 0usize);
        for (rid, g) in incoming.remove(&identity).unwrap_or_default() {
            // What qualifies it (AWS: conditions, partial denies).
            let qualified = if f.grant_conditions.is_empty() {
                None
            } else {
                f.grant_conditions.get(&(
                    g.identity.clone(),
                    g.resource.clone(),
                    g.permission.clone(),
                ))
            };
            let (condition, excluded) = match qualified {
                Some(c) => (
                    c.condition.clone(),
                    (!c.excluded.is_empty())
                        .then(|| serde_json::to_string(&c.excluded))
                        .transpose()?,
                ),
                None => (None, None),
            };
            match held.get(&(rid, g.permission.clone())) {
                Some((gid, privilege, hc, used, had_condition, had_excluded)) => {
                    let gid = *gid;
                    keep.insert(gid);
                    let new_used = to_ts_opt(g.last_used_at).or(*used);
                    if (*privilege, *hc, *used, had_condition, had_excluded)
                        == (
                            g.privilege,
                            g.high_consequence,
                            new_used,
                            &condition,
                            &excluded,
                        )
                    {
                        continue;
                    }
                    changed.access(identity);
                    update.push(
                        tx,
                        values![
                            gid,
                            identity,
                            rid,
                            g.permission,
                            g.privilege,
                            g.high_consequence,
                            new_used,
                            condition,
                            excluded
                        ],
                    )?;
                }
                None => {
                    insert.push(
                        tx,
                        values![
                            identity,
                            rid,
                            g.permission,
                            g.privilege,
                            g.high_consequence,
                            to_ts_opt(g.last_used_at),
                            condition,
                            excluded
                        ],
                    )?;
                    added += 1;
                    changed.access(identity);
                }
            }
        }
        let mut lost = Vec::new();
        for ((rid, permission), (gid, ..)) in
            held.iter().filter(|(_, (gid, ..))| !keep.contains(gid))
        {
            tx.prepare_cached("DELETE FROM grants WHERE id = ?1")?
                .execute([gid])?;
            removed += 1;
            changed.access(identity);
            // Read only for what is lost; the resource is still there (the
            // stale ones go after this apply).
            let on: String = tx
                .prepare_cached("SELECT name FROM resources WHERE id = ?1")?
                .query_row([rid], |r| r.get(0))?;
            lost.push(format!("{permission} on {on}"));
        }
        let event = lifecycle::grants_changed(is_new, added, removed, &lost);
        ev.record(Subject::Identity, identity, name, event)?;
    }
    update.flush(tx)?;
    insert.flush(tx)
}

fn apply_delegations(
    tx: &Db,
    f: &Fetched,
    touched: &Touched<'_>,
    before: &HashMap<String, ExistingIdentity>,
    held_by: &Held<'_>,
    ev: &mut Events<'_>,
    changed: &mut Changed,
) -> Result<()> {
    /// (to, kind) → (condition, reason): an edge and what it says.
    type Edges = HashMap<(i64, String), (Option<String>, Option<String>)>;
    let lookup = |ext: &str| {
        touched
            .get(ext)
            .map(|t| t.0)
            .or_else(|| before.get(ext).map(|e| e.id))
    };
    let mut incoming: HashMap<i64, Edges> = HashMap::new();
    for d in &f.delegations {
        let (Some(from), Some(to)) = (lookup(&d.from), lookup(&d.to)) else {
            return Err(Error::invalid(format!(
                "delegation {} -> {} refers to an identity the source did not return",
                d.from, d.to
            )));
        };
        if held_by.skips(from) {
            continue;
        }
        // The same edge twice: an unconditional one wins, then the first.
        let e = incoming
            .entry(from)
            .or_default()
            .entry((to, d.kind.as_str().to_string()))
            .or_insert_with(|| (d.condition.clone(), d.reason.clone()));
        if e.0.is_some() && d.condition.is_none() {
            *e = (None, d.reason.clone());
        }
    }
    // What the source's identities delegate to now, in one query (touched
    // identities are all the source's).
    let mut existing: HashMap<i64, Edges> = HashMap::new();
    tx.prepare(&format!(
        "SELECT d.from_id, d.to_id, d.kind, d.condition, d.reason FROM delegations d {}",
        held_by.scope("d.from_id")
    ))?
    .for_each([held_by.source], |r| {
        existing
            .entry(r.get(0)?)
            .or_default()
            .insert((r.get(1)?, r.get(2)?), (r.get(3)?, r.get(4)?));
        Ok(())
    })?;
    let mut insert = Batch::new(
        "delegations",
        &["from_id", "to_id", "kind", "condition", "reason"],
        "",
        "INSERT INTO delegations(from_id, to_id, kind, condition, reason) VALUES (?1, ?2, ?3, ?4, ?5)",
    );
    for (_, &(identity, is_new, name)) in touched {
        if held_by.skips(identity) {
            continue;
        }
        let existing = existing.remove(&identity).unwrap_or_default();
        let wanted = incoming.remove(&identity).unwrap_or_default();
        if existing == wanted {
            continue;
        }
        changed.access(identity);
        if !existing.is_empty() {
            tx.prepare_cached("DELETE FROM delegations WHERE from_id = ?1")?
                .execute([identity])?;
        }
        for ((to, kind), (condition, reason)) in &wanted {
            insert.push(tx, values![identity, to, kind, condition, reason])?;
        }
        // Edges gained or lost; one whose condition or reason alone changed
        // is rewritten, not counted.
        let added = wanted.keys().filter(|k| !existing.contains_key(k)).count();
        let removed = existing.keys().filter(|k| !wanted.contains_key(k)).count();
        if added + removed == 0 {
            continue;
        }
        // The lost edges named, "impersonate to <target name>".
        let mut lost = vec![];
        for (to, kind) in existing.keys().filter(|k| !wanted.contains_key(*k)) {
            let target: Option<String> = tx
                .prepare_cached("SELECT name FROM identities WHERE id = ?1")?
                .query_row([*to], |r| r.get(0))
                .optional()?;
            lost.push(format!(
                "{kind} to {}",
                target.unwrap_or_else(|| format!("#{to}"))
            ));
        }
        let event = lifecycle::delegations_changed(is_new, added, removed, &lost);
        ev.record(Subject::Identity, identity, name, event)?;
    }
    insert.flush(tx)
}

/// Resolves a `PersonKey` to a local person id.
struct PersonResolver<'a> {
    source: SourceId,
    local: &'a HashMap<&'a str, i64>,
    by_email: HashMap<String, Option<i64>>,
}

impl PersonResolver<'_> {
    fn resolve(&mut self, tx: &Db, key: &PersonKey) -> Result<Option<i64>> {
        match key {
            PersonKey::ExternalId(ext) => {
                if let Some(&id) = self.local.get(ext.as_str()) {
                    return Ok(Some(id));
                }
                Ok(tx
                    .prepare_cached(
                        "SELECT id FROM people WHERE source_id = ?1 AND external_id = ?2",
                    )?
                    .query_row(params![self.source, ext], |r| r.get(0))
                    .optional()?)
            }
            PersonKey::Email(email) => {
                let email = email.trim().to_lowercase();
                if email.is_empty() {
                    return Ok(None);
                }
                if let Some(hit) = self.by_email.get(&email) {
                    return Ok(*hit);
                }
                // Prefer an active person, then this source's own record.
                let hit: Option<i64> = tx
                    .prepare_cached(
                        "SELECT id FROM people WHERE email = ?1 COLLATE NOCASE
                         ORDER BY status = 'active' DESC, source_id = ?2 DESC, id LIMIT 1",
                    )?
                    .query_row(params![email, self.source], |r| r.get(0))
                    .optional()?;
                self.by_email.insert(email, hit);
                Ok(hit)
            }
        }
    }
}

/// Flags identities that gained access in this run (new grants, delegations
/// or credentials on an identity that existed before) for a permission review.
fn flag_movers(tx: &Db, run: RunId) -> Result<()> {
    tx.execute(
        "UPDATE identities SET review_flag = e.detail, review_flag_at = e.at
         FROM (SELECT subject_id AS id, group_concat(detail, '; ') AS detail, max(at) AS at
               FROM lifecycle_events
               WHERE run_id = ?1 AND kind = 'mover' AND subject = 'identity'
                 AND ((detail LIKE 'grants: +%' AND detail NOT LIKE 'grants: +0 %')
                   OR (detail LIKE 'delegations: +%' AND detail NOT LIKE 'delegations: +0 %'))
               GROUP BY subject_id) e
         WHERE identities.id = e.id",
        [run.0],
    )?;
    tx.execute(
        "UPDATE identities SET review_flag = coalesce(review_flag || '; ', '') || 'new credential', review_flag_at = e.at
         FROM (SELECT c.identity_id AS id, max(le.at) AS at FROM lifecycle_events le
               JOIN credentials c ON c.id = le.subject_id
               WHERE le.run_id = ?1 AND le.kind = 'joiner' AND le.subject = 'credential'
                 AND NOT EXISTS (SELECT 1 FROM lifecycle_events j
                                 WHERE j.run_id = ?1 AND j.kind = 'joiner' AND j.subject = 'identity'
                                   AND j.subject_id = c.identity_id)
               GROUP BY c.identity_id) e
         WHERE identities.id = e.id",
        [run.0],
    )?;
    Ok(())
}

/// Keeps each identity's usage baseline (the resources it held when first
/// seen or last certified) and records drift: resources outside the
/// baseline, and long-dormant identities in use again.
/// `scoped`: only for the identities in the refresh scope table.
fn track_drift(
    tx: &Db,
    source: SourceId,
    run: RunId,
    now: DateTime<Utc>,
    scoped: bool,
) -> Result<()> {
    let at = to_ts(now);
    let started = std::time::Instant::now();
    let among = if scoped {
        format!(" AND i.id IN (SELECT id FROM {})", super::load::SCOPE)
    } else {
        String::new()
    };
    tx.execute(
        "UPDATE identities SET baseline_at = ?2,
             baseline_resources = (SELECT json_group_array(DISTINCT resource_id) FROM grants WHERE identity_id = identities.id)
         WHERE source_id = ?1 AND baseline_at IS NULL",
        params![source, at],
    )?;
    let baselined = started.elapsed();
    let baseline = tx.pick(
        "SELECT value FROM json_each(i.baseline_resources)",
        "SELECT value::bigint FROM json_array_elements_text(i.baseline_resources::json)",
    );
    tx.execute(
        &format!("UPDATE identities SET drift = d.text FROM (
             SELECT g.identity_id AS id,
                    'uses ' || count(DISTINCT g.resource_id) || ' resource(s) outside its baseline of '
                        || date(i.baseline_at, 'unixepoch') || ': ' || group_concat(DISTINCT r.name) AS text
             FROM grants g JOIN identities i ON i.id = g.identity_id JOIN resources r ON r.id = g.resource_id
             WHERE i.source_id = ?1 AND i.baseline_resources IS NOT NULL{among}
               AND g.resource_id NOT IN ({baseline})
             GROUP BY g.identity_id, i.baseline_at) d
         WHERE identities.id = d.id AND identities.drift IS DISTINCT FROM d.text"),
        [source],
    )?;
    let drifted = started.elapsed();
    tx.execute(
        "UPDATE identities SET drift = coalesce(drift || '; ', '') || e.detail FROM (
             SELECT subject_id AS id, detail FROM lifecycle_events
             WHERE run_id = ?1 AND kind = 'mover' AND subject = 'identity' AND detail LIKE 'active again after %') e
         WHERE identities.id = e.id",
        [run.0],
    )?;
    tracing::debug!(
        baseline_ms = baselined.as_millis() as u64,
        drift_ms = (drifted - baselined).as_millis() as u64,
        again_ms = (started.elapsed() - drifted).as_millis() as u64,
        "drift tracked"
    );
    Ok(())
}
