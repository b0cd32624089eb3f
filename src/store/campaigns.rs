//! Access-review campaigns in the cache: creation and item generation,
//! reviewer resolution, queues, decisions, reviewer changes, closing with
//! remediation tasks, and marking items whose access vanished.
//!
//! Every write is one transaction that also appends its events and audit
//! entries, so a crash leaves either all of a decision or none of it.

use std::collections::HashMap;

use crate::store::db::Value;
use crate::store::db::{params, Db, Engine, OptionalExtension};
use chrono::{DateTime, Months, Utc};

use super::audit;
use super::inventory::{inventory_filter, rfc3339};
use super::people::{active_person, person_name};
use super::{to_ts, Store};
use crate::campaigns::decide::{self, Next};
use crate::campaigns::reviewer::{self, Person, ReviewerFacts};
use crate::campaigns::*;
use crate::error::{Error, Result};
use crate::model::PersonStatus;
use crate::views::InventoryQuery;

/// Clears review data; run with the organisation it was about (demo swaps).
pub(crate) const WIPE_REVIEWS: &str = "DELETE FROM tasks; DELETE FROM campaign_events;
    DELETE FROM campaign_items; DELETE FROM campaigns; DELETE FROM meta WHERE key = 'acting_person_id';
    DELETE FROM offboarding_items; DELETE FROM offboarding_cases; DELETE FROM departures;
    DELETE FROM owner_overrides; DELETE FROM identity_events; DELETE FROM identity_links;
    DELETE FROM posture_snapshots;";

/// Reports (items generated, items expected) while a campaign launches.
pub type LaunchProgress<'a> = &'a dyn Fn(u64, u64);

const DEFAULT_QUEUE: i64 = 200;
/// The remediation tasks a campaign's progress lists (open first).
pub const PROGRESS_TASKS: u32 = 1000;
/// The columns [`read_item`] reads, in its order.
macro_rules! item_columns {
    () => {
        "SELECT ci.id, ci.campaign_id, c.name, c.due_at, ci.item_type, ci.identity_id, ci.subject,
        ci.detail, ci.owner_name, ci.risk, ci.recommendation, ci.reasons, ci.reviewer_id, rv.display_name,
        ci.reviewer_reason, ci.stage, ci.proposed, pb.display_name, ci.decision, db.display_name,
        ci.decided_at, ci.by_policy, ci.justification, no.display_name, ci.vanished_at"
    };
}
macro_rules! item_from {
    () => {
        "
     FROM campaign_items ci
     JOIN campaigns c ON c.id = ci.campaign_id
     LEFT JOIN people rv ON rv.id = ci.reviewer_id
     LEFT JOIN people pb ON pb.id = ci.proposed_by
     LEFT JOIN people db ON db.id = ci.decided_by
     LEFT JOIN people no ON no.id = ci.new_owner_id"
    };
}
const ITEM_SELECT: &str = concat!(item_columns!(), item_from!());
/// [`read_item`]'s columns.
const ITEM_READ_COLUMNS: usize = 25;
/// An item's columns then one of its events' (all NULL when it has none):
/// an item comes once per event, so its history streams with it.
const ITEM_WITH_EVENTS: &str = concat!(
    item_columns!(),
    ", ev.id, ev.kind, ev.actor, ev.at, ev.detail",
    item_from!(),
    "
     LEFT JOIN campaign_events ev ON ev.item_id = ci.id"
);
const MAX_QUEUE: i64 = 1000;
/// Reminders are due this close to the due date.
const REMIND_WITHIN_DAYS: i64 = 3;

fn parse_time(s: &str, what: &str) -> Result<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        if let Some(t) = d.and_hms_opt(23, 59, 59) {
            return Ok(t.and_utc());
        }
    }
    Err(Error::invalid(format!(
        "{what} '{s}' is not a date: use YYYY-MM-DD or RFC 3339 (2026-12-31T17:00:00Z)"
    )))
}

fn sensitivity_rank(s: &str) -> i64 {
    match s {
        "critical" => 4,
        "high" => 3,
        "medium" => 2,
        _ => 1,
    }
}

fn days(from: i64, to: i64) -> i64 {
    (to - from).div_euclid(86_400)
}

/// The campaign's row, as the decision code needs it.
struct CampaignRow {
    status: CampaignStatus,
    owner_id: i64,
    fallback: i64,
    second: Option<i64>,
    name: String,
}

impl CampaignRow {
    fn facts(&self) -> decide::CampaignFacts {
        decide::CampaignFacts {
            name: self.name.clone(),
            status: self.status,
            owner: self.owner_id,
            fallback: self.fallback,
            second: self.second,
        }
    }
}

fn campaign_row(tx: &Db, id: CampaignId) -> Result<CampaignRow> {
    tx.query_row(
        "SELECT status, owner_id, fallback_reviewer_id, second_reviewer_id, name FROM campaigns WHERE id = ?1",
        [id],
        |r| {
            Ok(CampaignRow {
                status: r.get(0)?,
                owner_id: r.get(1)?,
                fallback: r.get(2)?,
                second: r.get(3)?,
                name: r.get(4)?,
            })
        },
    )
    .optional()?
    .ok_or_else(|| Error::not_found(format!("no campaign with id {id}")))
}

#[allow(clippy::too_many_arguments)]
fn event(
    tx: &Db,
    campaign: CampaignId,
    item: Option<ReviewItemId>,
    kind: &str,
    actor_id: Option<i64>,
    actor: &str,
    at: i64,
    detail: &serde_json::Value,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO campaign_events (campaign_id, item_id, kind, actor_id, actor, at, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        campaign,
        item,
        kind,
        actor_id,
        actor,
        at,
        detail.to_string()
    ])?;
    Ok(())
}

struct IdentInfo {
    name: String,
    owner: Option<i64>,
    builder: Option<i64>,
    owner_name: Option<String>,
    owner_active: bool,
}

impl Store {
    /// Creates a campaign; launches it (generates its items) when it starts now or earlier.
    pub fn create_campaign(
        &mut self,
        actor: i64,
        c: &NewCampaign,
        now: DateTime<Utc>,
    ) -> Result<CampaignId> {
        self.create_campaign_with_progress(actor, c, now, &|_, _| {})
    }

    /// [`Store::create_campaign`], reporting generation progress.
    pub fn create_campaign_with_progress(
        &mut self,
        actor: i64,
        c: &NewCampaign,
        now: DateTime<Utc>,
        progress: LaunchProgress<'_>,
    ) -> Result<CampaignId> {
        let name = c.name.trim();
        if name.is_empty() {
            return Err(Error::invalid("a campaign needs a name"));
        }
        let start = match c.start_at.as_deref().filter(|s| !s.trim().is_empty()) {
            Some(s) => parse_time(s, "start date")?,
            None => now,
        };
        let due = parse_time(&c.due_at, "due date")?;
        if due <= start {
            return Err(Error::invalid("the due date must be after the start date"));
        }
        if c.reviewer_rule == ReviewerRule::Named && c.named_reviewer.is_none() {
            return Err(Error::invalid(
                "the 'named' reviewer rule needs a named reviewer",
            ));
        }
        let tx = self.db.transaction()?;
        let actor_name = active_person(&tx, actor, "campaign owner")?;
        active_person(&tx, c.fallback_reviewer, "fallback reviewer")?;
        if let Some(n) = c.named_reviewer {
            active_person(&tx, n, "named reviewer")?;
        }
        if let Some(s) = c.second_reviewer {
            active_person(&tx, s, "second-stage reviewer")?;
        }
        let scope = serde_json::to_string(&c.scope)?;
        tx.execute(
            "INSERT INTO campaigns (name, description, scope, granularity, reviewer_rule, named_reviewer_id,
                fallback_reviewer_id, second_reviewer_id, recurrence, start_at, due_at, status, owner_id, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'scheduled', ?12, ?13)",
            params![
                name,
                c.description.trim(),
                scope,
                c.granularity,
                c.reviewer_rule,
                c.named_reviewer,
                c.fallback_reviewer,
                c.second_reviewer,
                c.recurrence,
                to_ts(start),
                to_ts(due),
                actor,
                to_ts(now)
            ],
        )?;
        let id = CampaignId(tx.last_insert_rowid()?);
        audit::append(
            &tx,
            to_ts(now),
            &actor_name,
            "campaign.create",
            &format!("campaign {id} {name}"),
            &serde_json::json!({"campaign_id": id, "definition": c}),
        )?;
        if start <= now {
            launch(&tx, id, now, progress)?;
        }
        let clock = std::time::Instant::now();
        tx.commit()?;
        tracing::debug!(
            campaign = id.0,
            ms = clock.elapsed().as_millis() as u64,
            "campaign committed"
        );
        Ok(id)
    }

    /// Launches scheduled campaigns whose start date has come.
    pub fn launch_due_campaigns(&mut self, now: DateTime<Utc>) -> Result<Vec<CampaignId>> {
        let due: Vec<CampaignId> = {
            let mut st = self
                .db
                .prepare("SELECT id FROM campaigns WHERE status = 'scheduled' AND start_at <= ?1 ORDER BY id")?;
            let ids = st
                .query_map([to_ts(now)], |r| r.get(0))?
                .collect::<Result<Vec<_>>>()?;
            ids
        };
        for id in &due {
            let tx = self.db.transaction()?;
            launch(&tx, *id, now, &|_, _| {})?;
            tx.commit()?;
        }
        Ok(due)
    }

    pub fn campaigns(&self, now: DateTime<Utc>) -> Result<Vec<CampaignView>> {
        let ids: Vec<CampaignId> = {
            let mut st = self
                .db
                .prepare("SELECT id FROM campaigns ORDER BY status = 'closed', due_at, id")?;
            let v = st
                .query_map([], |r| r.get(0))?
                .collect::<Result<Vec<_>>>()?;
            v
        };
        ids.into_iter().map(|id| self.campaign(id, now)).collect()
    }

    pub fn campaign(&self, id: CampaignId, now: DateTime<Utc>) -> Result<CampaignView> {
        let view = self
            .db
            .query_row(
                "SELECT c.id, c.name, c.description, c.scope, c.granularity, c.reviewer_rule, n.display_name,
                        f.display_name, s.display_name, c.recurrence, c.status, c.owner_id, o.display_name,
                        c.created_at, c.start_at, c.due_at, c.closed_at, c.undecided_policy, c.previous_id
                 FROM campaigns c
                 JOIN people f ON f.id = c.fallback_reviewer_id
                 JOIN people o ON o.id = c.owner_id
                 LEFT JOIN people n ON n.id = c.named_reviewer_id
                 LEFT JOIN people s ON s.id = c.second_reviewer_id
                 WHERE c.id = ?1",
                [id],
                |r| {
                    let scope: String = r.get(3)?;
                    Ok(CampaignView {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        description: r.get(2)?,
                        scope: serde_json::from_str(&scope).unwrap_or_default(),
                        granularity: r.get(4)?,
                        reviewer_rule: r.get(5)?,
                        named_reviewer: r.get(6)?,
                        fallback_reviewer: r.get(7)?,
                        second_reviewer: r.get(8)?,
                        recurrence: r.get(9)?,
                        status: r.get(10)?,
                        owner_id: r.get(11)?,
                        owner: r.get(12)?,
                        created_at: rfc3339(r.get(13)?),
                        start_at: rfc3339(r.get(14)?),
                        due_at: rfc3339(r.get(15)?),
                        closed_at: r.get::<Option<i64>>(16)?.map(rfc3339),
                        undecided_policy: r.get(17)?,
                        items: 0,
                        decided: 0,
                        overdue: 0,
                        previous_id: r.get(18)?,
                    })
                },
            )
            .optional()?
            .ok_or_else(|| Error::not_found(format!("no campaign with id {id}")))?;
        let (items, decided, due_at): (i64, i64, i64) = self.db.query_row(
            "SELECT count(*), count(ci.decision), (SELECT due_at FROM campaigns WHERE id = ?1)
             FROM campaign_items ci WHERE ci.campaign_id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let overdue = if view.status == CampaignStatus::Active && to_ts(now) > due_at {
            items - decided
        } else {
            0
        };
        Ok(CampaignView {
            items,
            decided,
            overdue,
            ..view
        })
    }

    /// Progress by reviewer and by decision, reminders due, vanished items, tasks.
    pub fn campaign_progress(
        &self,
        id: CampaignId,
        now: DateTime<Utc>,
    ) -> Result<CampaignProgress> {
        let campaign = self.campaign(id, now)?;
        let due = chrono::DateTime::parse_from_rfc3339(&campaign.due_at)
            .map(|t| t.timestamp())
            .unwrap_or(0);
        let remind = campaign.status == CampaignStatus::Active
            && days(to_ts(now), due) <= REMIND_WITHIN_DAYS;
        let mut st = self.db.prepare(
            "SELECT ci.reviewer_id, coalesce(p.display_name, '(nobody)'), p.status,
                    count(*) FILTER (WHERE ci.decision IS NULL), count(*) FILTER (WHERE ci.decision IS NOT NULL),
                    (SELECT max(at) FROM campaign_events e WHERE e.campaign_id = ?1 AND e.kind = 'reminder'
                        AND CAST(json_extract(e.detail, '$.reviewer_id') AS INTEGER) = ci.reviewer_id)
             FROM campaign_items ci LEFT JOIN people p ON p.id = ci.reviewer_id
             WHERE ci.campaign_id = ?1 GROUP BY ci.reviewer_id, p.display_name, p.status ORDER BY 4 DESC, 2",
        )?;
        let by_reviewer = st
            .query_map([id], |r| {
                let pending: i64 = r.get(3)?;
                Ok(ReviewerProgress {
                    reviewer_id: r.get(0)?,
                    reviewer: r.get(1)?,
                    reviewer_status: r.get(2)?,
                    pending,
                    decided: r.get(4)?,
                    last_reminded_at: r.get::<Option<i64>>(5)?.map(rfc3339),
                    reminder_due: remind && pending > 0,
                })
            })?
            .collect::<Result<Vec<_>>>()?;
        let mut st = self.db.prepare(
            "SELECT decision, count(*) FROM campaign_items WHERE campaign_id = ?1 GROUP BY decision ORDER BY 2 DESC",
        )?;
        let by_decision = st
            .query_map([id], |r| {
                Ok(DecisionCount {
                    decision: r.get(0)?,
                    count: r.get(1)?,
                })
            })?
            .collect::<Result<Vec<_>>>()?;
        let vanished: i64 = self.db.query_row(
            "SELECT count(*) FROM campaign_items WHERE campaign_id = ?1 AND vanished_at IS NOT NULL",
            [id],
            |r| r.get(0),
        )?;
        // Counted in SQL; only the tasks shown are read (27,801 after
        // closing a 100k-item campaign at L).
        let (tasks_total, tasks_open): (i64, i64) = self.db.query_row(
            "SELECT count(*), count(*) FILTER (WHERE status = 'open') FROM tasks WHERE campaign_id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let tasks = self.first_tasks(Some(id), None, None, Some(PROGRESS_TASKS))?;
        Ok(CampaignProgress {
            campaign,
            by_reviewer,
            by_decision,
            vanished,
            tasks,
            tasks_total,
            tasks_open,
        })
    }

    /// The acting reviewer's items across active campaigns (or one campaign).
    pub fn review_queue(&self, reviewer: i64, q: &QueueQuery) -> Result<ReviewQueue> {
        self.items_query(Some(reviewer), q, true)
    }

    /// A campaign's items for its owner (every reviewer).
    pub fn campaign_items(&self, campaign: CampaignId, q: &QueueQuery) -> Result<ReviewQueue> {
        let q = QueueQuery {
            campaign: Some(campaign),
            ..q.clone()
        };
        self.items_query(None, &q, false)
    }

    fn items_query(
        &self,
        reviewer: Option<i64>,
        q: &QueueQuery,
        active_only: bool,
    ) -> Result<ReviewQueue> {
        let mut clauses: Vec<String> = vec![];
        let mut args: Vec<Value> = vec![];
        if let Some(r) = reviewer {
            clauses.push("ci.reviewer_id = ?".into());
            args.push(Value::Int(r));
        }
        if let Some(t) = q.item_type {
            clauses.push("ci.item_type = ?".into());
            args.push(Value::Text(t.as_str().into()));
        }
        if let Some(r) = q.min_risk {
            clauses.push("ci.risk >= ?".into());
            args.push(Value::Int(r));
        }
        let search = q.search.trim();
        if !search.is_empty() {
            clauses.push("(ci.subject LIKE ? ESCAPE '\\' OR ci.detail LIKE ? ESCAPE '\\')".into());
            let pat = format!(
                "%{}%",
                search
                    .replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            );
            args.push(Value::Text(pat.clone()));
            args.push(Value::Text(pat));
        }
        // The filters of the items themselves, before those choosing campaigns
        // (the reviewer's page walks the campaigns itself).
        let item_filters = (clauses.clone(), args.clone());
        if active_only {
            clauses.push(
                "ci.campaign_id IN (SELECT id FROM campaigns WHERE status = 'active')".into(),
            );
        }
        if let Some(c) = q.campaign {
            clauses.push("ci.campaign_id = ?".into());
            args.push(Value::Int(c.0));
        }
        let base_where = if clauses.is_empty() {
            "1".to_string()
        } else {
            clauses.join(" AND ")
        };
        let (total, pending): (i64, i64) = self.db.query_row(
            &format!("SELECT count(*), count(*) - count(ci.decision) FROM campaign_items ci WHERE {base_where}"),
            crate::store::db::params_from_iter(args.iter()),
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let mut where_sql = base_where;
        if !q.include_decided {
            where_sql.push_str(" AND ci.decision IS NULL");
        }
        let limit = match q.limit {
            n if n <= 0 => DEFAULT_QUEUE,
            n => n.min(MAX_QUEUE),
        };
        let offset = q.offset.max(0);
        if reviewer.is_some() && !q.include_decided {
            // A reviewer's pending items: campaign by campaign in due order,
            // each read in (risk, id) order from `campaign_items_pending`,
            // so the first page does not sort the whole queue.
            let (mut c, a) = item_filters;
            c.push("ci.decision IS NULL".into());
            let items = self.pending_by_campaign(
                &c.join(" AND "),
                &a,
                q.campaign,
                active_only,
                offset,
                limit,
            )?;
            return Ok(ReviewQueue {
                total,
                pending,
                offset,
                items,
            });
        }
        let sql = format!(
            "{ITEM_SELECT}
             WHERE {where_sql}
             ORDER BY ci.decision IS NOT NULL, c.due_at, ci.risk DESC, ci.id
             LIMIT {limit} OFFSET {offset}"
        );
        let mut st = self.db.prepare_cached(&sql)?;
        let items = st
            .query_map(crate::store::db::params_from_iter(args.iter()), read_item)?
            .collect::<Result<Vec<_>>>()?;
        Ok(ReviewQueue {
            total,
            pending,
            offset,
            items,
        })
    }

    /// One page of pending items matching `where_sql`, ordered like the
    /// general query (campaign due date, risk descending, id).
    fn pending_by_campaign(
        &self,
        where_sql: &str,
        args: &[Value],
        campaign: Option<CampaignId>,
        active_only: bool,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<ReviewItem>> {
        let campaigns: Vec<i64> = {
            let mut st = self.db.prepare_cached(
                "SELECT id FROM campaigns WHERE (id = ?1 OR ?1 IS NULL) AND (?2 = 0 OR status = 'active')
                 ORDER BY due_at, id",
            )?;
            let v = st
                .query_map(params![campaign, active_only], |r| r.get(0))?
                .collect::<Result<Vec<_>>>()?;
            v
        };
        let mut skip = offset;
        let mut items = Vec::new();
        for c in campaigns {
            let want = limit - items.len() as i64;
            if want <= 0 {
                break;
            }
            let mut a = args.to_vec();
            a.push(Value::Int(c));
            if skip > 0 {
                let n: i64 = self.db.query_row(
                    &format!("SELECT count(*) FROM campaign_items ci WHERE {where_sql} AND ci.campaign_id = ?"),
                    crate::store::db::params_from_iter(a.iter()),
                    |r| r.get(0),
                )?;
                if n <= skip {
                    skip -= n;
                    continue;
                }
            }
            let sql = format!(
                "{ITEM_SELECT}
                 WHERE {where_sql} AND ci.campaign_id = ? AND c.id = ?
                 ORDER BY ci.risk DESC, ci.id
                 LIMIT {want} OFFSET {skip}"
            );
            // `c.id` too: one campaign row, so the index's (risk, id) order
            // serves the ORDER BY without sorting the queue.
            a.push(Value::Int(c));
            let mut st = self.db.prepare_cached(&sql)?;
            let page = st
                .query_map(crate::store::db::params_from_iter(a.iter()), read_item)?
                .collect::<Result<Vec<_>>>()?;
            skip = 0;
            items.extend(page);
        }
        Ok(items)
    }

    /// One item.
    pub fn review_item(&self, id: ReviewItemId) -> Result<ReviewItem> {
        self.db
            .query_row(&format!("{ITEM_SELECT} WHERE ci.id = ?1"), [id], read_item)
            .optional()?
            .ok_or_else(|| Error::not_found(format!("no review item with id {id}")))
    }

    /// Every item of a campaign in id order with its history, streamed (each
    /// item's row joined to its events, one pass), for exports of any size.
    pub fn for_each_item(
        &self,
        campaign: CampaignId,
        mut f: impl FnMut(ReviewItem, Vec<CampaignEvent>) -> Result<()>,
    ) -> Result<()> {
        // One stream in item then event order; memory stays flat whatever
        // the campaign's size (Db::for_each).
        let mut current: Option<(ReviewItem, Vec<CampaignEvent>)> = None;
        self.db.for_each(
            &format!("{ITEM_WITH_EVENTS} WHERE ci.campaign_id = ?1 ORDER BY ci.id, ev.id"),
            [campaign],
            |r| {
                let id: ReviewItemId = r.get(0)?;
                if current.as_ref().map(|(item, _)| item.id) != Some(id) {
                    if let Some((item, history)) = current.take() {
                        f(item, history)?;
                    }
                    current = Some((read_item(r)?, Vec::new()));
                }
                let e = ITEM_READ_COLUMNS;
                if let (Some(event), Some((_, history))) = (r.get::<Option<i64>>(e)?, &mut current)
                {
                    history.push(CampaignEvent {
                        id: event,
                        kind: r.get(e + 1)?,
                        actor: r.get(e + 2)?,
                        at: rfc3339(r.get(e + 3)?),
                        detail: r.get(e + 4)?,
                    });
                }
                Ok(())
            },
        )?;
        if let Some((item, history)) = current {
            f(item, history)?;
        }
        Ok(())
    }

    /// The history of an item (decisions, reviewer changes, vanishing).
    pub fn item_history(&self, id: ReviewItemId) -> Result<Vec<CampaignEvent>> {
        let mut st = self.db.prepare_cached(
            "SELECT id, kind, actor, at, detail FROM campaign_events WHERE item_id = ?1 ORDER BY id",
        )?;
        let v = st
            .query_map([id], |r| {
                Ok(CampaignEvent {
                    id: r.get(0)?,
                    kind: r.get(1)?,
                    actor: r.get(2)?,
                    at: rfc3339(r.get(3)?),
                    detail: r.get(4)?,
                })
            })?
            .collect::<Result<Vec<_>>>()?;
        Ok(v)
    }

    /// Records decisions by `actor` on items assigned to them, all or none.
    pub fn decide(
        &mut self,
        actor: i64,
        input: &DecisionInput,
        now: DateTime<Utc>,
    ) -> Result<usize> {
        if input.items.is_empty() {
            return Err(Error::invalid("choose at least one item"));
        }
        let justification = input.justification.trim();
        let at = to_ts(now);
        let tx = self.db.item_transaction()?;
        let actor_name = person_name(&tx, actor)?;
        if let Some(o) = input.new_owner {
            active_person(&tx, o, "new owner")?;
        }
        let mut campaigns: HashMap<CampaignId, CampaignRow> = HashMap::new();
        let request = decide::Request {
            actor,
            actor_name: &actor_name,
            decision: input.decision,
            justification,
            new_owner: input.new_owner,
            follow_recommendation: input.follow_recommendation,
        };
        let mut n = 0;
        for id in &input.items {
            // Read the facts.
            let row: Option<(CampaignId, decide::ItemFacts)> = tx
                .prepare_cached(
                    "SELECT ci.campaign_id, ci.item_type, ci.reviewer_id, rv.display_name, ci.stage,
                            ci.recommendation, ci.risk, ci.subject, i.owner_id
                     FROM campaign_items ci JOIN identities i ON i.id = ci.identity_id
                     LEFT JOIN people rv ON rv.id = ci.reviewer_id WHERE ci.id = ?1",
                )?
                .query_row([id], |r| {
                    Ok((
                        r.get(0)?,
                        decide::ItemFacts {
                            id: id.0,
                            item_type: r.get(1)?,
                            reviewer: r.get(2)?,
                            reviewer_name: r.get(3)?,
                            stage: r.get(4)?,
                            recommendation: r.get(5)?,
                            risk: r.get(6)?,
                            subject: r.get(7)?,
                            owner: r.get(8)?,
                        },
                    ))
                })
                .optional()?;
            let Some((cid, item)) = row else {
                return Err(Error::not_found(format!("no review item with id {id}")));
            };
            if let std::collections::hash_map::Entry::Vacant(e) = campaigns.entry(cid) {
                e.insert(campaign_row(&tx, cid)?);
            }
            let camp = campaigns
                .get(&cid)
                .ok_or_else(|| Error::internal("campaign lookup failed"))?;
            // Apply the rule.
            let outcome = decide::check(&camp.facts(), &item, &request)?;
            let (decision, new_owner, stage, subject) = (
                outcome.decision,
                outcome.new_owner,
                item.stage,
                &item.subject,
            );
            let recommendation = item.recommendation;
            // Write.
            match outcome.next {
                Next::SecondStage { reviewer: next } => {
                    tx.prepare_cached(
                        "UPDATE campaign_items SET proposed = ?2, proposed_by = ?3, stage = 2, reviewer_id = ?4,
                             reviewer_reason = 'second stage', justification = ?5, new_owner_id = ?6 WHERE id = ?1",
                    )?
                    .execute(params![id, decision, actor, next, justification, new_owner])?;
                }
                Next::Final => {
                    tx.prepare_cached(
                        "UPDATE campaign_items SET decision = ?2, decided_by = ?3, decided_at = ?4, by_policy = 0,
                             justification = ?5, new_owner_id = ?6 WHERE id = ?1",
                    )?
                    .execute(params![id, decision, actor, at, justification, new_owner])?;
                }
            }
            let detail = serde_json::json!({
                "decision": decision, "stage": stage, "justification": justification,
                "new_owner_id": new_owner, "recommendation": recommendation,
                "final": outcome.next == Next::Final,
            });
            event(
                &tx,
                cid,
                Some(*id),
                "decision",
                Some(actor),
                &actor_name,
                at,
                &detail,
            )?;
            audit::append(
                &tx,
                at,
                &actor_name,
                "review.decide",
                &format!("item {id} {subject}"),
                &detail,
            )?;
            n += 1;
        }
        tx.commit()?;
        Ok(n)
    }

    /// Moves items to another reviewer: the campaign owner reassigns, a
    /// reviewer delegates their own items. The new reviewer must be active and
    /// must not have built the identity.
    pub fn reassign_reviewer(
        &mut self,
        actor: i64,
        items: &[ReviewItemId],
        to: i64,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<usize> {
        if items.is_empty() {
            return Err(Error::invalid("choose at least one item"));
        }
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(Error::invalid("say why the items move to another reviewer"));
        }
        let at = to_ts(now);
        let tx = self.db.item_transaction()?;
        let actor_name = person_name(&tx, actor)?;
        let to_name = active_person(&tx, to, "new reviewer")?;
        for id in items {
            #[allow(clippy::type_complexity)]
            let row: Option<(
                CampaignId,
                Option<i64>,
                Option<String>,
                Option<i64>,
                String,
                Option<i64>,
            )> = tx
                .query_row(
                    "SELECT ci.campaign_id, ci.reviewer_id, ci.decision, i.builder_id, ci.subject, ci.proposed_by
                     FROM campaign_items ci JOIN identities i ON i.id = ci.identity_id WHERE ci.id = ?1",
                    [id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
                )
                .optional()?;
            let Some((cid, from, decision, builder, subject, proposed_by)) = row else {
                return Err(Error::not_found(format!("no review item with id {id}")));
            };
            let camp = campaign_row(&tx, cid)?;
            if camp.status != CampaignStatus::Active {
                return Err(Error::invalid(format!(
                    "campaign '{}' is {}",
                    camp.name,
                    camp.status.as_str()
                )));
            }
            if decision.is_some() {
                return Err(Error::invalid(format!(
                    "item {id} ({subject}) is already decided"
                )));
            }
            if camp.owner_id != actor && from != Some(actor) {
                return Err(Error::invalid(format!(
                    "only the campaign owner or the item's reviewer can move item {id} ({subject})"
                )));
            }
            if builder == Some(to) {
                return Err(Error::invalid(format!(
                    "{to_name} built {subject} and cannot review it (no self-review)"
                )));
            }
            // Two people: the second stage never goes back to whoever
            // proposed the first.
            if proposed_by == Some(to) {
                return Err(Error::invalid(format!(
                    "{to_name} proposed the first-stage decision on item {id} ({subject}); its second stage needs another person"
                )));
            }
            tx.prepare_cached(
                "UPDATE campaign_items SET reviewer_id = ?2, reviewer_reason = ?3 WHERE id = ?1",
            )?
            .execute(params![
                id,
                to,
                format!("reassigned by {actor_name}: {reason}")
            ])?;
            let detail = serde_json::json!({"from": from, "to": to, "reason": reason});
            event(
                &tx,
                cid,
                Some(*id),
                "reviewer_changed",
                Some(actor),
                &actor_name,
                at,
                &detail,
            )?;
            audit::append(
                &tx,
                at,
                &actor_name,
                "review.reassign",
                &format!("item {id} {subject}"),
                &detail,
            )?;
        }
        tx.commit()?;
        Ok(items.len())
    }

    /// The campaign owner escalates pending items to the fallback reviewer:
    /// every pending item of `reviewer`, or of everyone when none is named.
    /// Items the fallback built, or whose first stage the fallback proposed,
    /// stay where they are (two people).
    pub fn escalate(
        &mut self,
        actor: i64,
        campaign: CampaignId,
        reviewer: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<usize> {
        let camp = campaign_row(&self.db, campaign)?;
        if camp.owner_id != actor {
            return Err(Error::invalid("only the campaign owner can escalate"));
        }
        // Items the fallback built stay where they are (no self-review).
        let ids: Vec<ReviewItemId> = {
            let mut st = self.db.prepare(
                "SELECT ci.id FROM campaign_items ci JOIN identities i ON i.id = ci.identity_id
                 WHERE ci.campaign_id = ?1 AND ci.decision IS NULL AND ci.reviewer_id IS DISTINCT FROM ?2
                   AND (ci.reviewer_id = ?3 OR ?3 IS NULL) AND i.builder_id IS DISTINCT FROM ?2
                   AND ci.proposed_by IS DISTINCT FROM ?2",
            )?;
            let v = st
                .query_map(params![campaign, camp.fallback, reviewer], |r| r.get(0))?
                .collect::<Result<Vec<_>>>()?;
            v
        };
        if ids.is_empty() {
            return Ok(0);
        }
        self.reassign_reviewer(
            actor,
            &ids,
            camp.fallback,
            "escalated to the fallback reviewer",
            now,
        )
    }

    /// Delegates a reviewer's undecided items in a campaign to another
    /// person (campaign owner only). Items the new reviewer built, or whose
    /// first stage they proposed, stay where they are (two people); returns
    /// how many moved.
    pub fn delegate(
        &mut self,
        actor: i64,
        campaign: CampaignId,
        from: i64,
        to: i64,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<usize> {
        let camp = campaign_row(&self.db, campaign)?;
        if camp.owner_id != actor {
            return Err(Error::invalid(
                "only the campaign owner can delegate a reviewer's items",
            ));
        }
        if from == to {
            return Err(Error::invalid("choose someone else to delegate to"));
        }
        let ids: Vec<ReviewItemId> = {
            let mut st = self.db.prepare(
                "SELECT ci.id FROM campaign_items ci JOIN identities i ON i.id = ci.identity_id
                 WHERE ci.campaign_id = ?1 AND ci.decision IS NULL AND ci.reviewer_id = ?2
                   AND i.builder_id IS DISTINCT FROM ?3 AND ci.proposed_by IS DISTINCT FROM ?3",
            )?;
            let v = st
                .query_map(params![campaign, from, to], |r| r.get(0))?
                .collect::<Result<Vec<_>>>()?;
            v
        };
        if ids.is_empty() {
            return Ok(0);
        }
        self.reassign_reviewer(actor, &ids, to, reason, now)
    }

    /// Records that a reviewer was reminded (Custodian sends no mail: the
    /// owner reminds them and this keeps the record).
    pub fn record_reminder(
        &mut self,
        actor: i64,
        campaign: CampaignId,
        reviewer: i64,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let tx = self.db.transaction()?;
        let camp = campaign_row(&tx, campaign)?;
        if camp.owner_id != actor {
            return Err(Error::invalid("only the campaign owner records reminders"));
        }
        let actor_name = person_name(&tx, actor)?;
        let name = person_name(&tx, reviewer)?;
        let pending: i64 = tx.query_row(
            "SELECT count(*) FROM campaign_items WHERE campaign_id = ?1 AND reviewer_id = ?2 AND decision IS NULL",
            params![campaign, reviewer],
            |r| r.get(0),
        )?;
        let detail =
            serde_json::json!({"reviewer_id": reviewer, "reviewer": name, "pending": pending});
        event(
            &tx,
            campaign,
            None,
            "reminder",
            Some(actor),
            &actor_name,
            to_ts(now),
            &detail,
        )?;
        audit::append(
            &tx,
            to_ts(now),
            &actor_name,
            "campaign.remind",
            &format!("campaign {campaign}"),
            &detail,
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Closes a campaign: decides what nobody decided by `policy`, produces
    /// remediation tasks, marks reviewed identities, schedules the next run.
    pub fn close_campaign(
        &mut self,
        actor: i64,
        campaign: CampaignId,
        policy: UndecidedPolicy,
        now: DateTime<Utc>,
    ) -> Result<CloseReport> {
        let at = to_ts(now);
        let tx = self.db.transaction()?;
        let camp = campaign_row(&tx, campaign)?;
        if camp.owner_id != actor {
            return Err(Error::invalid("only the campaign owner can close it"));
        }
        if camp.status != CampaignStatus::Active {
            return Err(Error::invalid(format!(
                "campaign '{}' is {}",
                camp.name,
                camp.status.as_str()
            )));
        }
        let actor_name = person_name(&tx, actor)?;
        let decided_by_people: i64 = tx.query_row(
            "SELECT count(*) FROM campaign_items WHERE campaign_id = ?1 AND decision IS NOT NULL",
            [campaign],
            |r| r.get(0),
        )?;
        // Undecided items: the policy's decision, recorded as such.
        let policy_actor = format!(
            "close policy '{}' (closed by {actor_name})",
            policy.as_str()
        );
        tx.execute(
            "INSERT INTO campaign_events (campaign_id, item_id, kind, actor_id, actor, at, detail)
             SELECT campaign_id, id, 'decision', ?2, ?3, ?4,
                    json_object('decision',
                        CASE ?5 WHEN 'keep' THEN 'keep'
                                WHEN 'revoke' THEN CASE item_type WHEN 'identity' THEN 'retire' ELSE 'revoke' END
                                ELSE coalesce(proposed, recommendation) END,
                        'stage', stage, 'by_policy', 1, 'final', 1)
             FROM campaign_items WHERE campaign_id = ?1 AND decision IS NULL",
            params![campaign, actor, policy_actor, at, policy],
        )?;
        let decided_by_policy = tx.execute(
            "UPDATE campaign_items SET
                decision = CASE ?2 WHEN 'keep' THEN 'keep'
                                   WHEN 'revoke' THEN CASE item_type WHEN 'identity' THEN 'retire' ELSE 'revoke' END
                                   ELSE coalesce(proposed, recommendation) END,
                decided_at = ?3, by_policy = 1,
                justification = 'undecided at close: policy ' || ?2
             WHERE campaign_id = ?1 AND decision IS NULL",
            params![campaign, policy, at],
        )? as i64;
        // Remediation for everything that is not a plain keep and still exists.
        let tasks = tx.execute(
            "INSERT INTO tasks (origin, campaign_id, item_id, kind, identity_id, target, new_owner_id, status,
                                created_at, updated_at, updated_by)
             SELECT 'campaign', ci.campaign_id, ci.id,
                    CASE ci.decision
                        WHEN 'retire' THEN 'disable_identity'
                        WHEN 'reassign' THEN 'transfer_owner'
                        WHEN 'rotate' THEN 'rotate_credential'
                        WHEN 'revoke' THEN CASE ci.item_type WHEN 'grant' THEN 'revoke_grant' ELSE 'revoke_credential' END
                    END,
                    ci.identity_id, ci.subject || ': ' || ci.detail, ci.new_owner_id, 'open', ?2, ?2, ?3
             FROM campaign_items ci
             WHERE ci.campaign_id = ?1 AND ci.decision IN ('retire', 'reassign', 'rotate', 'revoke')
               AND ci.vanished_at IS NULL",
            params![campaign, at, policy_actor],
        )? as i64;
        // Identities a person certified are reviewed as of now.
        tx.execute(
            "UPDATE identities SET last_reviewed_at = ?2, review_flag = NULL, review_flag_at = NULL, drift = NULL,
                 baseline_at = ?2,
                 baseline_resources = (SELECT json_group_array(DISTINCT g.resource_id) FROM grants g WHERE g.identity_id = identities.id)
             WHERE id IN (
                 SELECT identity_id FROM campaign_items WHERE campaign_id = ?1 AND by_policy = 0 AND decision IS NOT NULL)",
            params![campaign, at],
        )?;
        tx.execute(
            "UPDATE campaigns SET status = 'closed', closed_at = ?2, closed_by = ?3, undecided_policy = ?4 WHERE id = ?1",
            params![campaign, at, actor, policy],
        )?;
        // The next run of a recurring campaign.
        let (recurrence, start, due): (Recurrence, i64, i64) = tx.query_row(
            "SELECT recurrence, start_at, due_at FROM campaigns WHERE id = ?1",
            [campaign],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let next_campaign = match recurrence.months() {
            Some(m) => {
                let shift = |t: i64| {
                    super::from_ts(t)
                        .checked_add_months(Months::new(m))
                        .map(to_ts)
                };
                let (Some(ns), Some(nd)) = (shift(start), shift(due)) else {
                    return Err(Error::internal("the next run's dates are out of range"));
                };
                tx.execute(
                    "INSERT INTO campaigns (name, description, scope, granularity, reviewer_rule, named_reviewer_id,
                        fallback_reviewer_id, second_reviewer_id, recurrence, start_at, due_at, status, owner_id,
                        created_at, previous_id)
                     SELECT name, description, scope, granularity, reviewer_rule, named_reviewer_id,
                        fallback_reviewer_id, second_reviewer_id, recurrence, ?2, ?3, 'scheduled', owner_id, ?4, id
                     FROM campaigns WHERE id = ?1",
                    params![campaign, ns, nd, at],
                )?;
                Some(CampaignId(tx.last_insert_rowid()?))
            }
            None => None,
        };
        let report = CloseReport {
            campaign_id: campaign,
            decided_by_people,
            decided_by_policy,
            tasks,
            next_campaign,
        };
        let detail = serde_json::to_value(&report)?;
        event(
            &tx,
            campaign,
            None,
            "closed",
            Some(actor),
            &actor_name,
            at,
            &detail,
        )?;
        audit::append(
            &tx,
            at,
            &actor_name,
            "campaign.close",
            &format!("campaign {campaign} {}", camp.name),
            &detail,
        )?;
        crate::failpoint("campaign.close");
        tx.commit()?;
        Ok(report)
    }
}

/// An entry of an item's history.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CampaignEvent {
    pub id: i64,
    pub kind: String,
    pub actor: String,
    pub at: String,
    /// JSON text.
    pub detail: String,
}

fn read_item(r: &crate::store::db::Row<'_>) -> Result<ReviewItem> {
    let item_type: ItemType = r.get(4)?;
    let reasons: String = r.get(11)?;
    Ok(ReviewItem {
        id: r.get(0)?,
        campaign_id: r.get(1)?,
        campaign: r.get(2)?,
        due_at: rfc3339(r.get(3)?),
        item_type,
        identity_id: r.get(5)?,
        subject: r.get(6)?,
        detail: r.get(7)?,
        owner_name: r.get(8)?,
        risk: risk_label(r.get(9)?).to_string(),
        recommendation: r.get(10)?,
        reasons: serde_json::from_str(&reasons).unwrap_or_default(),
        reviewer_id: r.get(12)?,
        reviewer: r.get(13)?,
        reviewer_reason: r.get(14)?,
        stage: r.get(15)?,
        proposed: r.get(16)?,
        proposed_by: r.get(17)?,
        decision: r.get(18)?,
        decided_by: r.get(19)?,
        decided_at: r.get::<Option<i64>>(20)?.map(rfc3339),
        by_policy: r.get(21)?,
        justification: r.get(22)?,
        new_owner: r.get(23)?,
        vanished_at: r.get::<Option<i64>>(24)?.map(rfc3339),
        allowed: Decision::allowed_for(item_type).to_vec(),
    })
}

/// The identities a scope selects, into `temp.campaign_scope`.
fn select_scope(tx: &Db, scope: &CampaignScope, now: i64) -> Result<i64> {
    let q = InventoryQuery {
        search: scope.search.clone(),
        kinds: scope.kinds.clone(),
        statuses: scope.statuses.clone(),
        classes: scope.classes.clone(),
        sources: scope.sources.clone(),
        owner_state: scope.owner_state,
        has_findings: scope.has_findings,
        ..Default::default()
    };
    let (where_sql, mut args) = inventory_filter(tx.engine(), &q);
    let mut extra: Vec<String> = vec![];
    if scope.statuses.is_empty() {
        extra.push("i.status <> 'deleted'".into());
    }
    if let Some(s) = scope.min_severity {
        extra.push("i.max_severity >= ?".into());
        args.push(Value::Int(s.rank()));
    }
    if let Some(d) = scope.not_reviewed_days {
        extra.push("(i.last_reviewed_at IS NULL OR i.last_reviewed_at < ?)".into());
        args.push(Value::Int(now - d.max(0) * 86_400));
    }
    let mut sql = where_sql;
    if !extra.is_empty() {
        sql = if sql.is_empty() {
            format!("WHERE {}", extra.join(" AND "))
        } else {
            format!("{sql} AND {}", extra.join(" AND "))
        };
    }
    tx.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS campaign_scope (id INTEGER PRIMARY KEY); DELETE FROM temp.campaign_scope;",
    )?;
    let n = tx.execute(
        &format!("INSERT INTO temp.campaign_scope (id) SELECT i.id FROM identities i {sql}"),
        crate::store::db::params_from_iter(args.iter()),
    )?;
    // Planned by its real size, not a temporary table's default guess.
    tx.analyze("campaign_scope")?;
    Ok(n as i64)
}

/// The columns of a generated campaign item, in [`ItemSink::push`] order.
const ITEM_COLUMNS: &[&str] = &[
    "campaign_id",
    "item_type",
    "identity_id",
    "resource_id",
    "permission",
    "credential_key",
    "subject",
    "detail",
    "owner_name",
    "risk",
    "recommendation",
    "reasons",
    "reviewer_id",
    "reviewer_reason",
];

/// Items per write of [`ItemSink`].
const ITEM_BATCH: usize = crate::store::db::BULK_ROWS;

/// A launch's items, written in batches through [`Db::insert_rows`] (a
/// cached statement per row on SQLite; one unnest insert a batch on
/// PostgreSQL, a round trip per batch instead of per item).
struct ItemSink<'a> {
    tx: &'a Db,
    rows: Vec<Vec<Value>>,
}

impl ItemSink<'_> {
    fn push(&mut self, row: Vec<Value>) -> Result<()> {
        self.rows.push(row);
        if self.rows.len() >= ITEM_BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if !self.rows.is_empty() {
            self.tx
                .insert_rows("campaign_items", ITEM_COLUMNS, self.rows.drain(..))?;
        }
        Ok(())
    }
}

/// Generates a campaign's items and activates it.
fn launch(
    tx: &Db,
    campaign: CampaignId,
    now: DateTime<Utc>,
    progress: LaunchProgress<'_>,
) -> Result<i64> {
    let at = to_ts(now);
    let (scope, granularity, rule, named, fallback, owner_id, name): (
        String,
        Granularity,
        ReviewerRule,
        Option<i64>,
        i64,
        i64,
        String,
    ) = tx.query_row(
        "SELECT scope, granularity, reviewer_rule, named_reviewer_id, fallback_reviewer_id, owner_id, name
         FROM campaigns WHERE id = ?1",
        [campaign],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)),
    )?;
    let scope: CampaignScope = serde_json::from_str(&scope)?;
    let clock = std::time::Instant::now();
    let in_scope = select_scope(tx, &scope, at)?;
    let expected: i64 = if granularity == Granularity::Identities {
        in_scope
    } else {
        let access: i64 = tx.query_row(
            "SELECT (SELECT count(*) FROM grants g JOIN temp.campaign_scope s ON s.id = g.identity_id)
                  + (SELECT count(*) FROM credentials c JOIN temp.campaign_scope s ON s.id = c.identity_id)",
            [],
            |r| r.get(0),
        )?;
        access
            + if granularity == Granularity::All {
                in_scope
            } else {
                0
            }
    };
    let expected = expected.max(0) as u64;
    progress(0, expected);
    tracing::debug!(
        campaign = campaign.0,
        in_scope,
        expected,
        ms = clock.elapsed().as_millis() as u64,
        "launch: scope chosen"
    );

    let people: HashMap<i64, Person> = {
        let mut st = tx.prepare("SELECT id, display_name, status, manager_id FROM people")?;
        let v = st
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    Person {
                        name: r.get(1)?,
                        status: r.get(2)?,
                        manager: r.get(3)?,
                    },
                ))
            })?
            .collect::<Result<HashMap<_, _>>>()?;
        v
    };
    let base = ReviewerFacts {
        rule,
        item_type: ItemType::Identity,
        owner: None,
        builder: None,
        resource_owner: None,
        named,
        fallback,
        campaign_owner: owner_id,
    };
    let mut insert = ItemSink {
        tx,
        rows: Vec::with_capacity(ITEM_BATCH),
    };
    let mut idents: HashMap<i64, IdentInfo> = HashMap::new();
    let mut count = 0i64;
    {
        // SQLite looks each count up as it goes, which costs little in
        // process; PostgreSQL counts for the whole scope in two joins it
        // plans by the scope's size (at L, 0.5 s where a subquery per
        // identity took 1.5 s).
        let mut st = tx.prepare(match tx.engine() {
            Engine::Sqlite => {
                "SELECT i.id, i.name, i.kind, i.status, i.owner_id, i.builder_id, i.created_at, i.last_used_at,
                        i.finding_count, i.max_severity,
                        (SELECT count(*) FROM grants g WHERE g.identity_id = i.id AND g.high_consequence = 1),
                        (SELECT count(*) FROM delegations d WHERE d.from_id = i.id)
                 FROM identities i JOIN temp.campaign_scope s ON s.id = i.id ORDER BY i.id"
            }
            Engine::Postgres => {
                "SELECT i.id, i.name, i.kind, i.status, i.owner_id, i.builder_id, i.created_at, i.last_used_at,
                        i.finding_count, i.max_severity, coalesce(h.n, 0), coalesce(o.n, 0)
                 FROM identities i JOIN temp.campaign_scope s ON s.id = i.id
                 LEFT JOIN (SELECT g.identity_id, count(*) AS n FROM temp.campaign_scope s2
                            JOIN grants g ON g.identity_id = s2.id WHERE g.high_consequence = 1
                            GROUP BY g.identity_id) h ON h.identity_id = i.id
                 LEFT JOIN (SELECT d.from_id, count(*) AS n FROM temp.campaign_scope s3
                            JOIN delegations d ON d.from_id = s3.id GROUP BY d.from_id) o ON o.from_id = i.id
                 ORDER BY i.id"
            }
        })?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            let name: String = r.get(1)?;
            let kind: String = r.get(2)?;
            let status: String = r.get(3)?;
            let owner: Option<i64> = r.get(4)?;
            let builder: Option<i64> = r.get(5)?;
            let created: i64 = r.get(6)?;
            let last_used: Option<i64> = r.get(7)?;
            let owner_p = owner.and_then(|o| people.get(&o));
            let owner_active = owner_p.is_some_and(|p| p.status == PersonStatus::Active);
            let owner_name = owner_p.map(|p| p.name.as_str());
            if granularity != Granularity::Access {
                let facts = ItemFacts {
                    item_type: Some(ItemType::Identity),
                    has_owner: owner.is_some(),
                    owner_active,
                    identity_disabled: status == "disabled",
                    unused_days: last_used.map(|t| days(t, at)),
                    ever_used: last_used.is_some(),
                    identity_age_days: days(created, at),
                    high_consequence_grants: r.get(10)?,
                    delegations_out: r.get(11)?,
                    findings: r.get(8)?,
                    max_severity: r.get(9)?,
                    ..Default::default()
                };
                let (rec, reasons, risk) = recommend(&facts);
                let (reviewer, why) = reviewer::resolve(
                    &people,
                    &ReviewerFacts {
                        item_type: ItemType::Identity,
                        owner,
                        builder,
                        resource_owner: None,
                        ..base
                    },
                );
                insert.push(crate::values![
                    campaign,
                    ItemType::Identity,
                    id,
                    None::<i64>,
                    None::<String>,
                    None::<String>,
                    name,
                    format!("{kind}, {status}"),
                    owner_name,
                    risk,
                    rec,
                    serde_json::to_string(&reasons)?,
                    reviewer,
                    why
                ])?;
                count += 1;
                if count % 10_000 == 0 {
                    progress(count as u64, expected);
                }
            }
            // Grants and credentials need what their identity says.
            if granularity != Granularity::Identities {
                idents.insert(
                    id,
                    IdentInfo {
                        name,
                        owner,
                        builder,
                        owner_name: owner_name.map(str::to_string),
                        owner_active,
                    },
                );
            }
        }
    }
    tracing::debug!(
        campaign = campaign.0,
        items = count,
        ms = clock.elapsed().as_millis() as u64,
        "launch: identities read"
    );
    if granularity != Granularity::Identities {
        let mut st = tx.prepare(
            "SELECT g.identity_id, g.resource_id, g.permission, g.privilege, g.high_consequence, g.last_used_at,
                    r.name, r.sensitivity, r.owner_id
             FROM grants g JOIN temp.campaign_scope s ON s.id = g.identity_id JOIN resources r ON r.id = g.resource_id
             ORDER BY g.identity_id, g.id",
        )?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let identity: i64 = r.get(0)?;
            let Some(info) = idents.get(&identity) else {
                continue;
            };
            let privilege: String = r.get(3)?;
            let hc: bool = r.get(4)?;
            let last_used: Option<i64> = r.get(5)?;
            let resource: String = r.get(6)?;
            let sensitivity: String = r.get(7)?;
            let permission: String = r.get(2)?;
            let facts = ItemFacts {
                item_type: Some(ItemType::Grant),
                has_owner: info.owner.is_some(),
                owner_active: info.owner_active,
                unused_days: last_used.map(|t| days(t, at)),
                // Sources rarely report per-grant use: unknown is not "never".
                ever_used: true,
                admin: privilege == "admin",
                high_consequence: hc,
                sensitivity: sensitivity_rank(&sensitivity),
                ..Default::default()
            };
            let (rec, reasons, risk) = recommend(&facts);
            let (reviewer, why) = reviewer::resolve(
                &people,
                &ReviewerFacts {
                    item_type: ItemType::Grant,
                    owner: info.owner,
                    builder: info.builder,
                    resource_owner: r.get(8)?,
                    ..base
                },
            );
            insert.push(crate::values![
                campaign,
                ItemType::Grant,
                identity,
                r.get::<i64>(1)?,
                permission,
                None::<String>,
                info.name,
                format!(
                    "{permission} on {resource} ({privilege}{})",
                    if hc { ", high-consequence" } else { "" }
                ),
                info.owner_name,
                risk,
                rec,
                serde_json::to_string(&reasons)?,
                reviewer,
                why
            ])?;
            count += 1;
            if count % 10_000 == 0 {
                progress(count as u64, expected);
            }
        }
        let mut st = tx.prepare(
            "SELECT c.identity_id, c.external_id, c.kind, c.display_name, c.created_at, c.expires_at,
                    c.last_rotated_at, c.last_used_at
             FROM credentials c JOIN temp.campaign_scope s ON s.id = c.identity_id ORDER BY c.identity_id, c.id",
        )?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let identity: i64 = r.get(0)?;
            let Some(info) = idents.get(&identity) else {
                continue;
            };
            let kind: String = r.get(2)?;
            let display: String = r.get(3)?;
            let created: i64 = r.get(4)?;
            let expires: Option<i64> = r.get(5)?;
            let rotated: Option<i64> = r.get(6)?;
            let last_used: Option<i64> = r.get(7)?;
            let facts = ItemFacts {
                item_type: Some(ItemType::Credential),
                has_owner: info.owner.is_some(),
                owner_active: info.owner_active,
                unused_days: last_used.map(|t| days(t, at)),
                ever_used: true,
                credential_age_days: days(rotated.unwrap_or(created).max(created), at),
                credential_expires_in_days: expires.map(|e| days(at, e)),
                credential_never_expires: expires.is_none(),
                ..Default::default()
            };
            let (rec, reasons, risk) = recommend(&facts);
            let (reviewer, why) = reviewer::resolve(
                &people,
                &ReviewerFacts {
                    item_type: ItemType::Credential,
                    owner: info.owner,
                    builder: info.builder,
                    resource_owner: None,
                    ..base
                },
            );
            insert.push(crate::values![
                campaign,
                ItemType::Credential,
                identity,
                None::<i64>,
                None::<String>,
                r.get::<String>(1)?,
                info.name,
                if display.is_empty() {
                    kind
                } else {
                    format!("{kind} {display}")
                },
                info.owner_name,
                risk,
                rec,
                serde_json::to_string(&reasons)?,
                reviewer,
                why
            ])?;
            count += 1;
            if count % 10_000 == 0 {
                progress(count as u64, expected);
            }
        }
    }
    insert.flush()?;
    progress(count as u64, expected);
    tracing::debug!(
        campaign = campaign.0,
        items = count,
        ms = clock.elapsed().as_millis() as u64,
        "launch: items written"
    );
    tx.execute(
        "UPDATE campaigns SET status = 'active', launched_at = ?2 WHERE id = ?1",
        params![campaign, at],
    )?;
    let owner_name = people
        .get(&owner_id)
        .map_or_else(String::new, |p| p.name.clone());
    let detail = serde_json::json!({"items": count});
    event(
        tx,
        campaign,
        None,
        "launched",
        Some(owner_id),
        &owner_name,
        at,
        &detail,
    )?;
    audit::append(
        tx,
        at,
        &owner_name,
        "campaign.launch",
        &format!("campaign {campaign} {name}"),
        &detail,
    )?;
    Ok(count)
}

/// Marks items of open campaigns whose identity was deleted, or whose grant or
/// credential no longer exists, after a sync changed the data. The item and
/// any decision on it stay.
pub(crate) fn mark_vanished(tx: &Db, now: DateTime<Utc>) -> Result<usize> {
    let open: i64 = tx.query_row(
        "SELECT count(*) FROM campaigns WHERE status <> 'closed' AND launched_at IS NOT NULL",
        [],
        |r| r.get(0),
    )?;
    if open == 0 {
        return Ok(0);
    }
    let at = to_ts(now);
    tx.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS vanished_items (id INTEGER PRIMARY KEY); DELETE FROM temp.vanished_items;",
    )?;
    tx.execute(
        "INSERT INTO temp.vanished_items (id)
         SELECT ci.id FROM campaign_items ci JOIN campaigns c ON c.id = ci.campaign_id
         WHERE c.status = 'active' AND ci.vanished_at IS NULL AND (
            (ci.item_type = 'identity' AND EXISTS (SELECT 1 FROM identities i WHERE i.id = ci.identity_id AND i.status = 'deleted'))
         OR (ci.item_type = 'grant' AND NOT EXISTS (SELECT 1 FROM grants g WHERE g.identity_id = ci.identity_id
                AND g.resource_id = ci.resource_id AND g.permission = ci.permission))
         OR (ci.item_type = 'credential' AND NOT EXISTS (SELECT 1 FROM credentials k WHERE k.identity_id = ci.identity_id
                AND k.external_id = ci.credential_key)))",
        [],
    )?;
    tx.execute(
        "INSERT INTO campaign_events (campaign_id, item_id, kind, actor_id, actor, at, detail)
         SELECT ci.campaign_id, ci.id, 'vanished', NULL, 'sync', ?1,
                json_object('message', 'no longer in the source at the last sync')
         FROM campaign_items ci JOIN temp.vanished_items v ON v.id = ci.id",
        [at],
    )?;
    let n = tx.execute(
        "UPDATE campaign_items SET vanished_at = ?1 WHERE id IN (SELECT id FROM temp.vanished_items)",
        [at],
    )?;
    if n > 0 {
        audit::append(
            tx,
            at,
            "sync",
            "review.vanished",
            "campaign items",
            &serde_json::json!({"items": n}),
        )?;
    }
    Ok(n)
}
