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

use chrono::{DateTime, Utc};
use crate::store::db::{params, OptionalExtension, Db};

use super::load::refresh_derived;
use super::{from_ts, to_ts, to_ts_opt, Store};
use crate::error::{Context, Error, ErrorCode, Result};
use crate::model::{IdentityStatus, PersonStatus, SourceId};
use crate::sync::records::{FetchMode, Fetched, PersonKey};

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
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum EventKind {
    Joiner,
    Mover,
    Leaver,
}

impl EventKind {
    fn as_str(self) -> &'static str {
        match self {
            EventKind::Joiner => "joiner",
            EventKind::Mover => "mover",
            EventKind::Leaver => "leaver",
        }
    }
}

struct Events<'a> {
    tx: &'a Db,
    run: RunId,
    source: SourceId,
    at: i64,
    report: ApplyReport,
}

impl Events<'_> {
    fn record(
        &mut self,
        kind: EventKind,
        subject: &str,
        subject_id: i64,
        name: &str,
        detail: &str,
    ) -> Result<()> {
        let mut st = self.tx.prepare_cached(
            "INSERT INTO lifecycle_events(run_id, source_id, at, kind, subject, subject_id, name, detail)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        st.execute(params![
            self.run.0,
            self.source,
            self.at,
            kind.as_str(),
            subject,
            subject_id,
            name,
            detail
        ])?;
        match kind {
            EventKind::Joiner => self.report.joiners += 1,
            EventKind::Mover => self.report.movers += 1,
            EventKind::Leaver => self.report.leavers += 1,
        }
        Ok(())
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
fn replace_demo(tx: &Db, source: SourceId, now: DateTime<Utc>) -> Result<()> {
    let dataset: Option<String> = tx
        .query_row("SELECT value FROM meta WHERE key = 'dataset'", [], |r| {
            r.get(0)
        })
        .optional()?;
    let Some(dataset) = dataset.filter(|d| d.starts_with("demo-")) else {
        return Ok(());
    };
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
        "demo.replace",
        &format!("source {source}"),
        &serde_json::json!({"dataset": dataset, "campaigns": history.0, "decisions": history.1, "tasks": history.2}),
    )?;
    tracing::info!("first real source synced: demo organisation removed");
    Ok(())
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
            "SELECT id, kind, name, settings, cursor IS NOT NULL FROM sources ORDER BY name",
        )?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<i64>(0)?,
                    r.get::<String>(1)?,
                    r.get::<String>(2)?,
                    r.get::<String>(3)?,
                    r.get(4)?,
                ))
            })?
            .collect::<Result<Vec<_>>>()?;
        let mut out = Vec::with_capacity(rows.len());
        for (id, kind, name, settings, has_cursor) in rows {
            let last_run = self.sync_runs(Some(SourceId(id)), 1)?.into_iter().next();
            out.push(SourceView {
                id,
                kind,
                name,
                settings: serde_json::from_str(&settings).unwrap_or(serde_json::Value::Null),
                has_cursor,
                last_run,
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
        replace_demo(&tx, source, now)?;
        let started = std::time::Instant::now();
        let report = {
            let mut ev = Events {
                tx: &tx,
                run,
                source,
                at: to_ts(now),
                report: ApplyReport::default(),
            };
            apply(&tx, source, f, now, &mut ev).context(|| "applying the sync".to_string())?;
            ev.report
        };
        let report = ApplyReport {
            items: f.item_count(),
            ..report
        };
        let applied = started.elapsed();
        flag_movers(&tx, run)?;
        track_drift(&tx, source, run, now)?;
        refresh_derived(&tx, now)?;
        super::campaigns::mark_vanished(&tx, now)?;
        super::offboarding::open_cases(&tx, now)?;
        tracing::info!(
            source = %source,
            apply_ms = applied.as_millis() as u64,
            derive_ms = (started.elapsed() - applied).as_millis() as u64,
            "sync applied"
        );
        tx.execute(
            "UPDATE sources SET cursor = ?2 WHERE id = ?1",
            params![source, f.cursor],
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
        tx.commit()?;
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
}

fn apply(
    tx: &Db,
    source: SourceId,
    f: &Fetched,
    now: DateTime<Utc>,
    ev: &mut Events<'_>,
) -> Result<()> {
    let now_ts = to_ts(now);

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
                tx.prepare_cached(
                    "UPDATE people SET display_name = ?2, email = ?3, department = ?4, title = ?5, status = ?6,
                         left_at = ?7 WHERE id = ?1",
                )?
                .execute(params![old.id, p.display_name, p.email, p.department, p.title, p.status, to_ts_opt(p.left_at)])?;
                if old.status == PersonStatus::Active && p.status != PersonStatus::Active {
                    ev.record(
                        EventKind::Leaver,
                        "person",
                        old.id,
                        &p.display_name,
                        &format!("status {} -> {}", old.status, p.status),
                    )?;
                } else if old.status != PersonStatus::Active && p.status == PersonStatus::Active {
                    ev.record(
                        EventKind::Joiner,
                        "person",
                        old.id,
                        &p.display_name,
                        &format!("status {} -> active", old.status),
                    )?;
                } else if old.department != p.department {
                    ev.record(
                        EventKind::Mover,
                        "person",
                        old.id,
                        &p.display_name,
                        &format!("department {} -> {}", old.department, p.department),
                    )?;
                }
                old.id
            }
            None => {
                tx.prepare_cached(
                    "INSERT INTO people(source_id, external_id, display_name, email, department, title, status, left_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?
                .execute(params![
                    source,
                    p.external_id,
                    p.display_name,
                    p.email,
                    p.department,
                    p.title,
                    p.status,
                    to_ts_opt(p.left_at)
                ])?;
                let id = tx.last_insert_rowid()?;
                ev.record(
                    EventKind::Joiner,
                    "person",
                    id,
                    &p.display_name,
                    "new person",
                )?;
                id
            }
        };
        person_ids.insert(p.external_id.as_str(), id);
    }
    let mut resolver = PersonResolver {
        source,
        local: &person_ids,
        by_email: HashMap::new(),
    };
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
            if old.status == p.status && old.department == p.department {
                ev.record(
                    EventKind::Mover,
                    "person",
                    id,
                    &p.display_name,
                    "manager changed",
                )?;
            }
        }
        tx.prepare_cached("UPDATE people SET manager_id = ?2 WHERE id = ?1")?
            .execute(params![id, manager])?;
    }
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
        if p.status != PersonStatus::Departed {
            tx.prepare_cached("UPDATE people SET status = 'departed', left_at = coalesce(left_at, ?2) WHERE id = ?1")?
                .execute(params![p.id, now_ts])?;
            ev.record(
                EventKind::Leaver,
                "person",
                p.id,
                &p.name,
                "removed from the source",
            )?;
        }
    }

    // Resources.
    let mut resources: HashMap<String, i64> = HashMap::new();
    {
        let mut st = tx.prepare("SELECT external_id, id FROM resources WHERE source_id = ?1")?;
        for row in st.query_map([source], |r| {
            Ok((r.get::<String>(0)?, r.get::<i64>(1)?))
        })? {
            let (k, v) = row?;
            resources.insert(k, v);
        }
    }
    let mut seen_resources: HashSet<&str> = HashSet::new();
    for r in &f.resources {
        seen_resources.insert(r.external_id.as_str());
        match resources.get(&r.external_id) {
            Some(&id) => {
                tx.prepare_cached("UPDATE resources SET name = ?2, kind = ?3, sensitivity = ?4, environment = ?5 WHERE id = ?1")?
                    .execute(params![id, r.name, r.kind, r.sensitivity, r.environment])?;
            }
            None => {
                tx.prepare_cached(
                    "INSERT INTO resources(source_id, external_id, name, kind, sensitivity, environment) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![source, r.external_id, r.name, r.kind, r.sensitivity, r.environment])?;
                resources.insert(r.external_id.clone(), tx.last_insert_rowid()?);
            }
        }
    }
    if f.mode == FetchMode::Full {
        let stale: Vec<i64> = resources
            .iter()
            .filter(|(k, _)| !seen_resources.contains(k.as_str()))
            .map(|(_, &v)| v)
            .collect();
        for id in stale {
            tx.prepare_cached("DELETE FROM resources WHERE id = ?1")?
                .execute([id])?;
        }
    }

    // Identities.
    let mut identities: HashMap<String, ExistingIdentity> = HashMap::new();
    {
        let mut st = tx.prepare(
            "SELECT external_id, id, status, owner_id, registered, name, kind, builder_id, team, environment,
                    last_used_at, agent_class, purpose, intended_blast_radius, review_interval_days
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
    // Identities whose children (credentials, grants, delegations) this fetch replaces.
    let mut touched: HashMap<&str, (i64, bool)> = HashMap::with_capacity(f.identities.len());
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
        match identities.get(&i.external_id) {
            Some(old) if identity_unchanged(old, i, owner, builder) => {
                touched.insert(i.external_id.as_str(), (old.id, false));
            }
            Some(old) => {
                tx.prepare_cached(
                    "UPDATE identities SET name = ?2, kind = ?3, status = ?4, owner_id = ?5, builder_id = coalesce(?6, builder_id),
                         team = ?7, environment = ?8, last_used_at = coalesce(?9, last_used_at),
                         agent_class = coalesce(?10, agent_class)
                     WHERE id = ?1",
                )?
                .execute(params![
                    old.id,
                    i.name,
                    i.kind,
                    i.status,
                    owner,
                    builder,
                    i.team,
                    i.environment,
                    to_ts_opt(i.last_used_at),
                    i.agent_class
                ])?;
                apply_registration(tx, old.id, old.registered, i)?;
                if old.status == IdentityStatus::Active && i.status != IdentityStatus::Active {
                    ev.record(
                        EventKind::Leaver,
                        "identity",
                        old.id,
                        &i.name,
                        &format!("status {} -> {}", old.status, i.status),
                    )?;
                } else if old.status != IdentityStatus::Active && i.status == IdentityStatus::Active
                {
                    ev.record(
                        EventKind::Joiner,
                        "identity",
                        old.id,
                        &i.name,
                        &format!("status {} -> active", old.status),
                    )?;
                }
                if old.owner != owner {
                    ev.record(
                        EventKind::Mover,
                        "identity",
                        old.id,
                        &i.name,
                        "owner changed",
                    )?;
                }
                // Drift: a long-dormant identity in use again.
                if let (Some(before), Some(after)) = (old.last_used, to_ts_opt(i.last_used_at)) {
                    let dormant_days = (after - before) / 86_400;
                    if dormant_days >= DORMANT_DAYS {
                        ev.record(
                            EventKind::Mover,
                            "identity",
                            old.id,
                            &i.name,
                            &format!("active again after {dormant_days} days dormant"),
                        )?;
                    }
                }
                touched.insert(i.external_id.as_str(), (old.id, false));
            }
            None => {
                tx.prepare_cached(
                    "INSERT INTO identities(source_id, external_id, name, kind, agent_class, status, purpose, builder_id, owner_id,
                         team, environment, registered, created_at, last_used_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 0, ?12, ?13)",
                )?
                .execute(params![
                    source,
                    i.external_id,
                    i.name,
                    i.kind,
                    i.agent_class,
                    i.status,
                    i.description,
                    builder,
                    owner,
                    i.team,
                    i.environment,
                    created,
                    to_ts_opt(i.last_used_at)
                ])?;
                let id = tx.last_insert_rowid()?;
                apply_registration(tx, id, false, i)?;
                ev.record(
                    EventKind::Joiner,
                    "identity",
                    id,
                    &i.name,
                    &format!("new {}", i.kind),
                )?;
                touched.insert(i.external_id.as_str(), (id, true));
            }
        }
    }
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
        if old.status != IdentityStatus::Deleted {
            tx.prepare_cached("UPDATE identities SET status = 'deleted' WHERE id = ?1")?
                .execute([old.id])?;
            let name: String =
                tx.query_row("SELECT name FROM identities WHERE id = ?1", [old.id], |r| {
                    r.get(0)
                })?;
            ev.record(
                EventKind::Leaver,
                "identity",
                old.id,
                &name,
                "removed from the source",
            )?;
        }
        for sql in [
            "DELETE FROM credentials WHERE identity_id = ?1",
            "DELETE FROM grants WHERE identity_id = ?1",
            "DELETE FROM delegations WHERE from_id = ?1",
        ] {
            tx.prepare_cached(sql)?.execute([old.id])?;
        }
    }

    apply_credentials(tx, source, f, &touched, ev)?;
    apply_grants(tx, source, f, &touched, &resources, ev)?;
    apply_delegations(tx, f, &touched, &identities, ev)?;
    Ok(())
}

/// True when applying `i` would not change the stored row (no write, so no
/// FTS churn and no WAL growth on a resync).
fn identity_unchanged(
    old: &ExistingIdentity,
    i: &crate::sync::records::IdentityRecord,
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

fn apply_registration(
    tx: &Db,
    id: i64,
    registered_before: bool,
    i: &crate::sync::records::IdentityRecord,
) -> Result<()> {
    match &i.registration {
        Some(reg) => {
            tx.prepare_cached(
                "UPDATE identities SET registered = 1, purpose = ?2, intended_blast_radius = ?3,
                     review_interval_days = ?4, agent_class = coalesce(?5, agent_class) WHERE id = ?1",
            )?
            .execute(params![id, reg.purpose, reg.intended_blast_radius, reg.review_interval_days, reg.agent_class])?;
        }
        // Unregistered identities show what the source says they are for;
        // a registered purpose is Custodian's and is kept.
        None if !registered_before => {
            tx.prepare_cached("UPDATE identities SET purpose = ?2 WHERE id = ?1")?
                .execute(params![id, i.description])?;
        }
        None => {}
    }
    Ok(())
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

fn apply_credentials(
    tx: &Db,
    source: SourceId,
    f: &Fetched,
    touched: &HashMap<&str, (i64, bool)>,
    ev: &mut Events<'_>,
) -> Result<()> {
    let mut incoming: HashMap<i64, Vec<&crate::sync::records::CredentialRecord>> = HashMap::new();
    for c in &f.credentials {
        let Some(&(id, _)) = touched.get(c.identity.as_str()) else {
            return Err(Error::new(
                ErrorCode::InvalidInput,
                format!(
                    "credential {} belongs to identity {} which the source did not return",
                    c.external_id, c.identity
                ),
            ));
        };
        incoming.entry(id).or_default().push(c);
    }
    // Everything the source's identities hold now, in one query.
    let mut existing: HashMap<i64, HashMap<String, CredRow>> = HashMap::new();
    {
        let mut st = tx.prepare(
            "SELECT c.identity_id, c.external_id, c.id, c.kind, c.display_name, c.created_at, c.expires_at,
                    c.last_rotated_at, c.last_used_at
             FROM credentials c JOIN identities i ON i.id = c.identity_id WHERE i.source_id = ?1",
        )?;
        let rows = st.query_map([source], |r| {
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
    for (ext, &(identity, is_new)) in touched {
        let held = existing.remove(&identity).unwrap_or_default();
        let mut keep: HashSet<i64> = HashSet::new();
        for c in incoming.remove(&identity).unwrap_or_default() {
            let created = to_ts(c.created_at.unwrap_or_else(Utc::now));
            let row = (
                c.kind,
                c.display_name.clone(),
                created,
                to_ts_opt(c.expires_at),
                to_ts_opt(c.last_rotated_at),
            );
            match held.get(&c.external_id) {
                Some(old) => {
                    keep.insert(old.0);
                    let used = to_ts_opt(c.last_used_at).or(old.6);
                    if (old.1, old.2.clone(), old.3, old.4, old.5) == row && used == old.6 {
                        continue;
                    }
                    tx.prepare_cached(
                        "UPDATE credentials SET kind = ?2, display_name = ?3, created_at = ?4, expires_at = ?5,
                             last_rotated_at = ?6, last_used_at = ?7 WHERE id = ?1",
                    )?
                    .execute(params![old.0, row.0, row.1, row.2, row.3, row.4, used])?;
                }
                None => {
                    tx.prepare_cached(
                        "INSERT INTO credentials(identity_id, external_id, kind, display_name, created_at, expires_at,
                             last_rotated_at, last_used_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    )?
                    .execute(params![identity, c.external_id, row.0, row.1, row.2, row.3, row.4, to_ts_opt(c.last_used_at)])?;
                    let cid = tx.last_insert_rowid()?;
                    keep.insert(cid);
                    if !is_new {
                        ev.record(
                            EventKind::Joiner,
                            "credential",
                            cid,
                            &c.display_name,
                            &format!("new {} on {ext}", c.kind),
                        )?;
                    }
                }
            }
        }
        for old in held.values().filter(|old| !keep.contains(&old.0)) {
            tx.prepare_cached("DELETE FROM credentials WHERE id = ?1")?
                .execute([old.0])?;
        }
    }
    Ok(())
}

fn apply_grants(
    tx: &Db,
    source: SourceId,
    f: &Fetched,
    touched: &HashMap<&str, (i64, bool)>,
    resources: &HashMap<String, i64>,
    ev: &mut Events<'_>,
) -> Result<()> {
    /// (grant id, privilege, high consequence, last used)
    type GrantRow = (i64, crate::model::Privilege, bool, Option<i64>);
    let mut incoming: HashMap<i64, Vec<&crate::sync::records::GrantRecord>> = HashMap::new();
    for g in &f.grants {
        let Some(&(id, _)) = touched.get(g.identity.as_str()) else {
            return Err(Error::invalid(format!(
                "a grant refers to identity {} which the source did not return",
                g.identity
            )));
        };
        incoming.entry(id).or_default().push(g);
    }
    let mut existing: HashMap<i64, HashMap<(i64, String), GrantRow>> = HashMap::new();
    {
        let mut st = tx.prepare(
            "SELECT g.identity_id, g.resource_id, g.permission, g.id, g.privilege, g.high_consequence, g.last_used_at
             FROM grants g JOIN identities i ON i.id = g.identity_id WHERE i.source_id = ?1",
        )?;
        let rows = st.query_map([source], |r| {
            Ok((
                r.get::<i64>(0)?,
                (r.get::<i64>(1)?, r.get::<String>(2)?),
                (r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?),
            ))
        })?;
        for row in rows {
            let (identity, key, v) = row?;
            existing.entry(identity).or_default().insert(key, v);
        }
    }
    for (ext, &(identity, is_new)) in touched {
        let held = existing.remove(&identity).unwrap_or_default();
        let mut keep: HashSet<i64> = HashSet::new();
        let (mut added, mut removed) = (0usize, 0usize);
        for g in incoming.remove(&identity).unwrap_or_default() {
            let Some(&rid) = resources.get(&g.resource) else {
                return Err(Error::invalid(format!(
                    "grant {} of {} refers to resource {} which the source did not return",
                    g.permission, g.identity, g.resource
                )));
            };
            match held.get(&(rid, g.permission.clone())) {
                Some(&(gid, privilege, hc, used)) => {
                    keep.insert(gid);
                    let new_used = to_ts_opt(g.last_used_at).or(used);
                    if (privilege, hc, used) == (g.privilege, g.high_consequence, new_used) {
                        continue;
                    }
                    tx.prepare_cached("UPDATE grants SET privilege = ?2, high_consequence = ?3, last_used_at = ?4 WHERE id = ?1")?
                        .execute(params![gid, g.privilege, g.high_consequence, new_used])?;
                }
                None => {
                    tx.prepare_cached(
                        "INSERT INTO grants(identity_id, resource_id, permission, privilege, high_consequence, last_used_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )?
                    .execute(params![identity, rid, g.permission, g.privilege, g.high_consequence, to_ts_opt(g.last_used_at)])?;
                    keep.insert(tx.last_insert_rowid()?);
                    added += 1;
                }
            }
        }
        for (gid, ..) in held.values().filter(|(gid, ..)| !keep.contains(gid)) {
            tx.prepare_cached("DELETE FROM grants WHERE id = ?1")?
                .execute([gid])?;
            removed += 1;
        }
        if !is_new && (added > 0 || removed > 0) {
            ev.record(
                EventKind::Mover,
                "identity",
                identity,
                ext,
                &format!("grants: +{added} -{removed}"),
            )?;
        }
    }
    Ok(())
}

fn apply_delegations(
    tx: &Db,
    f: &Fetched,
    touched: &HashMap<&str, (i64, bool)>,
    before: &HashMap<String, ExistingIdentity>,
    ev: &mut Events<'_>,
) -> Result<()> {
    let lookup = |ext: &str| {
        touched
            .get(ext)
            .map(|t| t.0)
            .or_else(|| before.get(ext).map(|e| e.id))
    };
    let mut incoming: HashMap<i64, HashSet<(i64, String)>> = HashMap::new();
    for d in &f.delegations {
        let (Some(from), Some(to)) = (lookup(&d.from), lookup(&d.to)) else {
            return Err(Error::invalid(format!(
                "delegation {} -> {} refers to an identity the source did not return",
                d.from, d.to
            )));
        };
        incoming
            .entry(from)
            .or_default()
            .insert((to, d.kind.as_str().to_string()));
    }
    for (ext, &(identity, is_new)) in touched {
        let mut st = tx.prepare_cached("SELECT to_id, kind FROM delegations WHERE from_id = ?1")?;
        let existing: HashSet<(i64, String)> = st
            .query_map([identity], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_>>()?;
        let wanted = incoming.remove(&identity).unwrap_or_default();
        if existing == wanted {
            continue;
        }
        tx.prepare_cached("DELETE FROM delegations WHERE from_id = ?1")?
            .execute([identity])?;
        for (to, kind) in &wanted {
            tx.prepare_cached("INSERT INTO delegations(from_id, to_id, kind) VALUES (?1, ?2, ?3)")?
                .execute(params![identity, to, kind])?;
        }
        if !is_new {
            let added = wanted.difference(&existing).count();
            let removed = existing.difference(&wanted).count();
            ev.record(
                EventKind::Mover,
                "identity",
                identity,
                ext,
                &format!("delegations: +{added} -{removed}"),
            )?;
        }
    }
    Ok(())
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
                 AND c.identity_id NOT IN (SELECT subject_id FROM lifecycle_events
                                           WHERE run_id = ?1 AND kind = 'joiner' AND subject = 'identity')
               GROUP BY c.identity_id) e
         WHERE identities.id = e.id",
        [run.0],
    )?;
    Ok(())
}

/// Days without use after which renewed use is drift.
const DORMANT_DAYS: i64 = 90;

/// Keeps each identity's usage baseline (the resources it held when first
/// seen or last certified) and records drift: resources outside the
/// baseline, and long-dormant identities in use again.
fn track_drift(
    tx: &Db,
    source: SourceId,
    run: RunId,
    now: DateTime<Utc>,
) -> Result<()> {
    let at = to_ts(now);
    tx.execute(
        "UPDATE identities SET baseline_at = ?2,
             baseline_resources = (SELECT json_group_array(DISTINCT resource_id) FROM grants WHERE identity_id = identities.id)
         WHERE source_id = ?1 AND baseline_at IS NULL",
        params![source, at],
    )?;
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
             WHERE i.source_id = ?1 AND i.baseline_resources IS NOT NULL
               AND g.resource_id NOT IN ({baseline})
             GROUP BY g.identity_id, i.baseline_at) d
         WHERE identities.id = d.id AND identities.drift IS DISTINCT FROM d.text"),
        [source],
    )?;
    tx.execute(
        "UPDATE identities SET drift = coalesce(drift || '; ', '') || e.detail FROM (
             SELECT subject_id AS id, detail FROM lifecycle_events
             WHERE run_id = ?1 AND kind = 'mover' AND subject = 'identity' AND detail LIKE 'active again after %') e
         WHERE identities.id = e.id",
        [run.0],
    )?;
    Ok(())
}
