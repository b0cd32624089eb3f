//! Remediation tasks: the work a closed campaign or an applied offboarding
//! leaves (revoke, rotate, disable, transfer), listed and moved through their
//! statuses with an audit entry for each change.

use std::collections::HashMap;

use crate::store::db::{params, OptionalExtension};
use chrono::{DateTime, Utc};

use super::audit;
use super::inventory::rfc3339;
use super::people::person_name;
use super::{to_ts, Store};
use crate::campaigns::*;
use crate::error::{Error, Result};

impl Store {
    /// Remediation tasks, optionally of one campaign or one status.
    pub fn tasks(
        &self,
        campaign: Option<CampaignId>,
        status: Option<TaskStatus>,
    ) -> Result<Vec<TaskView>> {
        self.tasks_where(campaign, None, status)
    }

    /// Tasks of a campaign, an offboarding case, or all, optionally by status.
    pub fn tasks_where(
        &self,
        campaign: Option<CampaignId>,
        case: Option<CaseId>,
        status: Option<TaskStatus>,
    ) -> Result<Vec<TaskView>> {
        self.first_tasks(campaign, case, status, None)
    }

    /// [`Store::tasks_where`], only the first `limit` (open first, then by
    /// id) when given: a view that shows some of a campaign's tasks reads
    /// no more than it shows.
    pub fn first_tasks(
        &self,
        campaign: Option<CampaignId>,
        case: Option<CaseId>,
        status: Option<TaskStatus>,
        limit: Option<u32>,
    ) -> Result<Vec<TaskView>> {
        let limit = limit.map(|n| format!(" LIMIT {n}")).unwrap_or_default();
        let mut st = self.db.prepare_cached(&format!(
            "SELECT t.id, t.origin, t.campaign_id, t.case_id, t.item_id, t.kind, t.identity_id, i.name, t.target,
                    p.display_name, t.status, t.created_at, t.updated_at, t.updated_by, t.note, i.source_id
             FROM tasks t JOIN identities i ON i.id = t.identity_id LEFT JOIN people p ON p.id = t.new_owner_id
             WHERE (t.campaign_id = ?1 OR ?1 IS NULL) AND (t.case_id = ?2 OR ?2 IS NULL)
               AND (t.status = ?3 OR ?3 IS NULL)
             ORDER BY t.status <> 'open', t.id{limit}"
        ))?;
        // Which sources can carry out which tasks (few sources: read once).
        let sources: HashMap<i64, (String, bool)> = self
            .sources()?
            .into_iter()
            .map(|s| {
                let on = crate::writeback::enabled(&s.settings);
                (s.id, (s.kind, on))
            })
            .collect();
        let v = st
            .query_map(params![campaign, case, status], |r| {
                let kind: TaskKind = r.get(5)?;
                let status: TaskStatus = r.get(10)?;
                let write_back = status != TaskStatus::Done
                    && sources
                        .get(&r.get::<i64>(15)?)
                        .is_some_and(|(k, on)| *on && crate::writeback::supports(k, kind));
                Ok(TaskView {
                    id: r.get(0)?,
                    origin: r.get(1)?,
                    campaign_id: r.get(2)?,
                    case_id: r.get(3)?,
                    item_id: r.get(4)?,
                    kind,
                    identity_id: r.get(6)?,
                    identity: r.get(7)?,
                    target: r.get(8)?,
                    new_owner: r.get(9)?,
                    status,
                    created_at: rfc3339(r.get(11)?),
                    updated_at: rfc3339(r.get(12)?),
                    updated_by: r.get(13)?,
                    note: r.get(14)?,
                    write_back,
                })
            })?
            .collect::<Result<Vec<_>>>()?;
        Ok(v)
    }

    /// Marks a task done or failed (with a note), recorded in the audit log.
    /// A done ownership transfer sets the new owner in the cache.
    pub fn set_task_status(
        &mut self,
        actor: i64,
        task: TaskId,
        status: TaskStatus,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let tx = self.db.transaction()?;
        let actor_name = person_name(&tx, actor)?;
        let row: Option<(TaskKind, i64, Option<i64>)> = tx
            .query_row(
                "SELECT kind, identity_id, new_owner_id FROM tasks WHERE id = ?1",
                [task],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((kind, identity, new_owner)) = row else {
            return Err(Error::not_found(format!("no task with id {task}")));
        };
        if status == TaskStatus::Failed && note.trim().is_empty() {
            return Err(Error::invalid("say why the task failed"));
        }
        tx.execute(
            "UPDATE tasks SET status = ?2, note = ?3, updated_at = ?4, updated_by = ?5 WHERE id = ?1",
            params![task, status, note.trim(), to_ts(now), actor_name],
        )?;
        if status == TaskStatus::Done && kind == TaskKind::TransferOwner {
            if let Some(o) = new_owner {
                tx.execute(
                    "UPDATE identities SET owner_id = ?2 WHERE id = ?1",
                    [identity, o],
                )?;
                // Its findings (no owner, departed owner) follow the new owner.
                super::load::refresh_derived_for(&tx, now, &[identity])?;
            }
        }
        audit::append(
            &tx,
            to_ts(now),
            &actor_name,
            "task.status",
            &format!("task {task}"),
            &serde_json::json!({"status": status, "kind": kind, "note": note.trim()}),
        )?;
        tx.commit()?;
        Ok(())
    }
}
