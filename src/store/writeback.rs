//! What write-back reads and records: a task's target in its source, the
//! outcome on the task (with the identity's status and timeline when it was
//! disabled), and the per-source opt-in. Each in one transaction with its
//! audit entry.

use crate::store::db::{params, OptionalExtension};
use chrono::{DateTime, Utc};

use super::people::person_name;
use super::{audit, to_ts, Store};
use crate::campaigns::{TaskId, TaskKind, TaskStatus};
use crate::error::{Error, Result};
use crate::model::SourceId;
use crate::writeback::Target;

impl Store {
    /// A task's target, its status and the source of its identity.
    pub fn writeback_target(&self, task: TaskId) -> Result<(Target, TaskStatus, SourceId)> {
        self.db
            .query_row(
                "SELECT t.id, t.kind, t.status, i.external_id, i.name, i.source_id,
                        coalesce(t.credential_key, (SELECT ci.credential_key FROM campaign_items ci WHERE ci.id = t.item_id))
                 FROM tasks t JOIN identities i ON i.id = t.identity_id WHERE t.id = ?1",
                [task],
                |r| {
                    Ok((
                        Target {
                            task: r.get(0)?,
                            kind: r.get(1)?,
                            external_id: r.get(3)?,
                            identity_name: r.get(4)?,
                            credential: r.get(6)?,
                        },
                        r.get(2)?,
                        SourceId(r.get(5)?),
                    ))
                },
            )
            .optional()?
            .ok_or_else(|| Error::not_found(format!("no task with id {task}")))
    }

    /// Records a write-back attempt: the task becomes done (with what was
    /// done) or failed (with why); a disabled identity is disabled in the
    /// cache too, on its timeline, until the next sync confirms it.
    pub fn record_writeback(
        &mut self,
        actor: i64,
        task: TaskId,
        outcome: std::result::Result<&str, &str>,
        now: DateTime<Utc>,
    ) -> Result<TaskStatus> {
        let at = to_ts(now);
        let tx = self.db.transaction()?;
        let who = person_name(&tx, actor)?;
        let (kind, identity, source): (TaskKind, i64, String) = tx
            .query_row(
                "SELECT t.kind, t.identity_id, s.name FROM tasks t
                 JOIN identities i ON i.id = t.identity_id JOIN sources s ON s.id = i.source_id
                 WHERE t.id = ?1",
                [task],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?
            .ok_or_else(|| Error::not_found(format!("no task with id {task}")))?;
        let (status, note) = match outcome {
            Ok(done) => (TaskStatus::Done, done.to_string()),
            Err(why) => (TaskStatus::Failed, format!("write-back failed: {why}")),
        };
        tx.execute(
            "UPDATE tasks SET status = ?2, note = ?3, updated_at = ?4, updated_by = ?5 WHERE id = ?1",
            params![task, status, note, at, who],
        )?;
        if status == TaskStatus::Done && kind == TaskKind::DisableIdentity {
            tx.execute(
                "UPDATE identities SET status = 'disabled' WHERE id = ?1",
                [identity],
            )?;
            tx.execute(
                "INSERT INTO identity_events (identity_id, at, actor, kind, detail) VALUES (?1, ?2, ?3, 'disabled', ?4)",
                params![identity, at, who, format!("written back to {source} (task {task})")],
            )?;
            super::load::refresh_derived_for(&tx, now, &[identity])?;
        }
        audit::append(
            &tx,
            at,
            &who,
            "task.write_back",
            &format!("task {task}"),
            &serde_json::json!({"kind": kind, "source": source, "status": status, "note": note}),
        )?;
        tx.commit()?;
        Ok(status)
    }

    /// Switches write-back on or off for a source (a setting change, audited).
    pub fn set_write_back(
        &mut self,
        actor: i64,
        source: SourceId,
        on: bool,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let tx = self.db.transaction()?;
        let who = person_name(&tx, actor)?;
        let (name, settings): (String, String) = tx
            .query_row(
                "SELECT name, settings FROM sources WHERE id = ?1",
                [source],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .ok_or_else(|| Error::not_found(format!("no source with id {source}")))?;
        let mut settings: serde_json::Value = serde_json::from_str(&settings).map_err(|e| {
            Error::internal(format!("the settings of source {name} are not JSON: {e}"))
        })?;
        let obj = settings.as_object_mut().ok_or_else(|| {
            Error::internal(format!("the settings of source {name} are not an object"))
        })?;
        obj.insert("write_back".into(), serde_json::Value::Bool(on));
        tx.execute(
            "UPDATE sources SET settings = ?2 WHERE id = ?1",
            params![source, settings.to_string()],
        )?;
        audit::append(
            &tx,
            to_ts(now),
            &who,
            "source.write_back",
            &format!("source {source} {name}"),
            &serde_json::json!({"write_back": on}),
        )?;
        tx.commit()?;
        Ok(())
    }
}
