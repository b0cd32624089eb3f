//! Offboarding cases, ownership transfers and the identity lifecycle
//! (register, review flags, retire, timeline) in the cache. See
//! `crate::offboarding` for the rules.

use std::collections::{HashMap, HashSet};

use crate::store::db::{params, Db, OptionalExtension};
use chrono::{DateTime, Utc};

use super::audit;
use super::inventory::rfc3339;
use super::load::refresh_derived_for;
use super::people::{active_person, person_name as actor_name};
use super::{to_ts, Store};
use crate::campaigns::{CaseId, TaskView};
use crate::error::{Error, Result};
use crate::model::PersonStatus;
use crate::offboarding::plan::{self, date, parse_date};
use crate::offboarding::*;

/// The secret kinds of [`plan::SECRET_KINDS`] as an SQL list.
fn secret_kinds_sql() -> String {
    plan::SECRET_KINDS
        .iter()
        .map(|k| format!("'{k}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Each person of `people p WHERE {filter}` with every record of the same
/// human (`person_id`, `member_id`): the people sharing their trimmed,
/// non-empty email, case-insensitively, and always the person themself.
fn records_sql(filter: &str) -> String {
    format!(
        "SELECT p.id AS person_id, q.id AS member_id FROM people p
         JOIN people q ON q.email = trim(p.email) COLLATE NOCASE
         WHERE trim(p.email) <> '' AND {filter}
         UNION SELECT p.id, p.id FROM people p WHERE {filter}"
    )
}

/// Every record of the same human ([`records_sql`]), in id order.
pub(crate) fn person_group(conn: &Db, person: i64) -> Result<Vec<i64>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT member_id FROM ({}) r ORDER BY member_id",
        records_sql("p.id = ?1")
    ))?;
    let v = st
        .query_map([person], |r| r.get(0))?
        .collect::<Result<Vec<i64>>>()?;
    if v.is_empty() {
        return Err(Error::not_found(format!("no person with id {person}")));
    }
    Ok(v)
}

/// The departing person of an open case (a closed one takes no more changes).
fn open_case_person(conn: &Db, case: CaseId) -> Result<i64> {
    let (person, status): (i64, String) = conn
        .query_row(
            "SELECT person_id, status FROM offboarding_cases WHERE id = ?1",
            [case],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
        .ok_or_else(|| Error::not_found(format!("no offboarding case with id {case}")))?;
    if status != "open" {
        return Err(Error::invalid(format!("case {case} is closed")));
    }
    Ok(person)
}

fn in_list(ids: &[i64]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

fn identity_event(
    tx: &Db,
    identity: i64,
    at: i64,
    actor: &str,
    kind: &str,
    detail: &str,
) -> Result<()> {
    tx.prepare_cached("INSERT INTO identity_events (identity_id, at, actor, kind, detail) VALUES (?1, ?2, ?3, ?4, ?5)")?
        .execute(params![identity, at, actor, kind, detail])?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn task(
    tx: &Db,
    case: Option<CaseId>,
    origin: &str,
    kind: &str,
    identity: i64,
    target: &str,
    new_owner: Option<i64>,
    at: i64,
    by: &str,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO tasks (origin, case_id, kind, identity_id, target, new_owner_id, status, created_at, updated_at, updated_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'open', ?7, ?7, ?8)",
    )?
    .execute(params![origin, case, kind, identity, target, new_owner, at, by])?;
    Ok(())
}

/// Opens cases for departing people who leave something behind, and adds
/// newly acquired identities to open cases. Runs after every sync and load.
pub(crate) fn open_cases(tx: &Db, now: DateTime<Utc>) -> Result<usize> {
    open_cases_among(tx, now, None)
}

/// Who a member's action opens cases for: in a team workspace only the
/// person acted on (all their records); a manager may open their own
/// reports' cases and no one else's, and a sync opens the rest. Solo: all due.
fn due_scope(tx: &Db, person: i64) -> Result<Option<Vec<i64>>> {
    if super::workspace::in_workspace(tx)? {
        Ok(Some(person_group(tx, person)?))
    } else {
        Ok(None)
    }
}

/// [`open_cases`], for the people of `only` when given. A handful of
/// statements whatever the number of departed people: each one's records
/// ([`person_group`]) and case are worked out in SQL, only people without
/// a case yet are looked at one by one, and every open case takes its new
/// acquisitions in one `INSERT`.
fn open_cases_among(tx: &Db, now: DateTime<Utc>, only: Option<&[i64]>) -> Result<usize> {
    let at = to_ts(now);
    let among = only
        .map(|ids| format!(" AND p.id IN ({})", in_list(ids)))
        .unwrap_or_default();
    let due = format!(
        "(p.status <> 'active' OR (p.left_at IS NOT NULL AND p.left_at <= ?1)
          OR EXISTS (SELECT 1 FROM departures d WHERE d.person_id = p.id)){among}"
    );
    tx.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS offboard_group (person_id INTEGER NOT NULL, member_id INTEGER NOT NULL,
             PRIMARY KEY (person_id, member_id));
         CREATE TEMP TABLE IF NOT EXISTS offboard_case (person_id INTEGER PRIMARY KEY, case_id INTEGER NOT NULL);
         DELETE FROM temp.offboard_group; DELETE FROM temp.offboard_case;",
    )?;
    // Each due person's records, as `person_group` finds them.
    let due_people = tx.execute(
        &format!(
            "INSERT INTO temp.offboard_group (person_id, member_id) {}",
            records_sql(&due)
        ),
        [at],
    )?;
    if due_people == 0 {
        return Ok(0);
    }
    // Due people none of whose records has a case yet.
    #[allow(clippy::type_complexity)]
    let caseless: Vec<(
        i64,
        PersonStatus,
        Option<i64>,
        String,
        Option<i64>,
        Option<String>,
        Option<String>,
    )> = {
        let mut st = tx.prepare(&format!(
            "SELECT p.id, p.status, p.left_at, s.name, d.departing_on, d.marked_by, d.note
             FROM people p JOIN sources s ON s.id = p.source_id LEFT JOIN departures d ON d.person_id = p.id
             WHERE {due} AND NOT EXISTS (SELECT 1 FROM temp.offboard_group g
                                         JOIN offboarding_cases oc ON oc.person_id = g.member_id
                                         WHERE g.person_id = p.id)
             ORDER BY p.id"
        ))?;
        let v = st
            .query_map([at], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            })?
            .collect::<Result<Vec<_>>>()?;
        v
    };
    // Their records (read only when someone needs a case: most syncs open none).
    let mut groups: HashMap<i64, Vec<i64>> = HashMap::new();
    if !caseless.is_empty() {
        for (person, member) in tx.query_map(
            "SELECT person_id, member_id FROM temp.offboard_group ORDER BY person_id, member_id",
            [],
            |r| Ok((r.get::<i64>(0)?, r.get::<i64>(1)?)),
        )? {
            groups.entry(person).or_default().push(member);
        }
    }
    let mut opened = 0;
    // People this call opened a case for: a second record of the same
    // person joins the first one's case.
    let mut opened_for: HashSet<i64> = HashSet::new();
    for (person, status, left_at, source, departing_on, marked_by, note) in caseless {
        let own = [person];
        let group = groups.get(&person).map_or(&own[..], Vec::as_slice);
        if group.iter().any(|m| opened_for.contains(m)) {
            continue;
        }
        let list = in_list(group);
        let owns: i64 = tx.query_row(
            &format!(
                "SELECT count(*) FROM identities WHERE status <> 'deleted'
                   AND (owner_id IN ({list}) OR builder_id IN ({list}))"
            ),
            [],
            |r| r.get(0),
        )?;
        let reviews: i64 = tx.query_row(
            &format!(
                "SELECT count(*) FROM campaign_items ci JOIN campaigns c ON c.id = ci.campaign_id
                 WHERE c.status = 'active' AND ci.decision IS NULL AND ci.reviewer_id IN ({list})"
            ),
            [],
            |r| r.get(0),
        )?;
        if owns == 0 && reviews == 0 {
            continue;
        }
        let reason = match (status, departing_on) {
            (PersonStatus::Departed, _) => format!(
                "departed in {source}{}",
                left_at
                    .map(|t| format!(" (left {})", date(t)))
                    .unwrap_or_default()
            ),
            (PersonStatus::Suspended, _) => format!("suspended in {source}"),
            (_, Some(on)) => format!(
                "marked departing on {} by {}{}",
                date(on),
                marked_by.unwrap_or_default(),
                note.filter(|n| !n.is_empty())
                    .map(|n| format!(": {n}"))
                    .unwrap_or_default()
            ),
            _ => format!(
                "leave date {} passed",
                left_at.map(date).unwrap_or_default()
            ),
        };
        // The decider: the first active manager among the person's records.
        let manager: Option<i64> = tx
            .query_row(
                &format!(
                    "SELECT m.id FROM people p JOIN people m ON m.id = p.manager_id
                     WHERE p.id IN ({list}) AND m.status = 'active' AND m.id NOT IN ({list}) ORDER BY p.id LIMIT 1"
                ),
                [],
                |r| r.get(0),
            )
            .optional()?;
        tx.execute(
            "INSERT INTO offboarding_cases (person_id, reason, opened_at, manager_id, status) VALUES (?1, ?2, ?3, ?4, 'open')",
            params![person, reason, at, manager],
        )?;
        let id = tx.last_insert_rowid()?;
        audit::append(
            tx,
            at,
            "custodian",
            "offboarding.open",
            &format!("case {id}"),
            &serde_json::json!({"person_id": person, "reason": reason, "identities": owns, "reviews": reviews}),
        )?;
        opened += 1;
        opened_for.insert(person);
    }
    // Items: everything owned or built, for every due person whose case is
    // open (new acquisitions join open cases; a closed case takes none).
    tx.execute(
        "INSERT INTO temp.offboard_case (person_id, case_id)
         SELECT g.person_id, min(oc.id) FROM temp.offboard_group g
         JOIN offboarding_cases oc ON oc.person_id = g.member_id
         GROUP BY g.person_id",
        [],
    )?;
    tx.execute(
        "INSERT INTO offboarding_items (case_id, identity_id, relation)
         SELECT x.case_id, x.identity_id,
                CASE WHEN max(x.o) = 1 AND max(x.b) = 1 THEN 'owner+builder'
                     WHEN max(x.o) = 1 THEN 'owner' ELSE 'builder' END
         FROM (SELECT c.case_id, i.id AS identity_id, 1 AS o, 0 AS b
               FROM temp.offboard_case c
               JOIN offboarding_cases oc ON oc.id = c.case_id AND oc.status = 'open'
               JOIN temp.offboard_group g ON g.person_id = c.person_id
               JOIN identities i ON i.owner_id = g.member_id
               WHERE i.status <> 'deleted'
               UNION ALL
               SELECT c.case_id, i.id, 0, 1
               FROM temp.offboard_case c
               JOIN offboarding_cases oc ON oc.id = c.case_id AND oc.status = 'open'
               JOIN temp.offboard_group g ON g.person_id = c.person_id
               JOIN identities i ON i.builder_id = g.member_id
               WHERE i.status <> 'deleted') x
         WHERE true
         GROUP BY x.case_id, x.identity_id
         ON CONFLICT DO NOTHING",
        [],
    )?;
    Ok(opened)
}

/// The preview of one identity for a new owner.
fn preview(conn: &Db, identity: i64) -> Result<HandoverPreview> {
    let (grants, hc, delegations): (i64, i64, i64) = conn.query_row(
        "SELECT (SELECT count(*) FROM grants WHERE identity_id = ?1),
                (SELECT count(*) FROM grants WHERE identity_id = ?1 AND high_consequence = 1),
                (SELECT count(*) FROM delegations WHERE from_id = ?1)",
        [identity],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let strings = |sql: &str| -> Result<Vec<String>> {
        let mut st = conn.prepare_cached(sql)?;
        let v = st
            .query_map([identity], |r| r.get(0))?
            .collect::<Result<Vec<String>>>()?;
        Ok(v)
    };
    Ok(HandoverPreview {
        grants,
        high_consequence_grants: hc,
        sensitive_resources: strings(
            "SELECT r.name FROM grants g JOIN resources r ON r.id = g.resource_id
             WHERE g.identity_id = ?1 AND r.sensitivity IN ('high', 'critical')
             GROUP BY r.name ORDER BY max(CASE WHEN r.sensitivity = 'critical' THEN 1 ELSE 0 END) DESC, r.name LIMIT 10",
        )?,
        delegations_out: delegations,
        findings: strings("SELECT title FROM findings WHERE identity_id = ?1 ORDER BY severity DESC, title")?,
        secrets: strings(&format!(
            "SELECT kind || ' ' || display_name FROM credentials WHERE identity_id = ?1 AND kind IN ({}) ORDER BY id",
            secret_kinds_sql()
        ))?,
    })
}

impl Store {
    /// Marks a person as departing on a date (by hand); opens their case
    /// when they own or built anything.
    pub fn mark_departing(
        &mut self,
        actor: i64,
        person: i64,
        on: &str,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<CaseId>> {
        let on = parse_date(on, "departure date")?;
        let tx = self.db.transaction()?;
        let who = actor_name(&tx, actor)?;
        let name = actor_name(&tx, person)?;
        tx.execute(
            "INSERT INTO departures (person_id, departing_on, note, marked_by, marked_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(person_id) DO UPDATE SET departing_on = excluded.departing_on, note = excluded.note,
                 marked_by = excluded.marked_by, marked_at = excluded.marked_at",
            params![person, on, note.trim(), who, to_ts(now)],
        )?;
        audit::append(
            &tx,
            to_ts(now),
            &who,
            "offboarding.mark_departing",
            &name,
            &serde_json::json!({"person_id": person, "departing_on": date(on), "note": note.trim()}),
        )?;
        let scope = due_scope(&tx, person)?;
        open_cases_among(&tx, now, scope.as_deref())?;
        let group = person_group(&tx, person)?;
        let case: Option<CaseId> = tx
            .query_row(
                &format!(
                    "SELECT id FROM offboarding_cases WHERE person_id IN ({})",
                    in_list(&group)
                ),
                [],
                |r| r.get(0),
            )
            .optional()?;
        tx.commit()?;
        Ok(case)
    }

    /// Opens any cases due (also run by every sync and load).
    pub fn refresh_offboarding(&mut self, now: DateTime<Utc>) -> Result<usize> {
        let tx = self.db.transaction()?;
        let n = open_cases(&tx, now)?;
        tx.commit()?;
        Ok(n)
    }

    /// Opens `person`'s case if it is due. In a team workspace that is the
    /// only case a member's action opens (a manager may open their reports'
    /// and no one else's; syncs open the rest); solo, every case due, as
    /// [`Store::refresh_offboarding`].
    pub fn refresh_offboarding_of(&mut self, person: i64, now: DateTime<Utc>) -> Result<usize> {
        let tx = self.db.transaction()?;
        let scope = due_scope(&tx, person)?;
        let n = open_cases_among(&tx, now, scope.as_deref())?;
        tx.commit()?;
        Ok(n)
    }

    /// The case of a person (any of their records), if one is open or closed.
    pub fn case_of(&self, person: i64) -> Result<Option<CaseId>> {
        let group = person_group(&self.db, person)?;
        Ok(self
            .db
            .query_row(
                &format!(
                    "SELECT id FROM offboarding_cases WHERE person_id IN ({})",
                    in_list(&group)
                ),
                [],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub fn offboarding_cases(
        &self,
        status: Option<&str>,
        manager: Option<i64>,
    ) -> Result<Vec<OffboardingCaseSummary>> {
        let ids: Vec<CaseId> = {
            let mut st = self.db.prepare_cached(
                "SELECT id FROM offboarding_cases WHERE (status = ?1 OR ?1 IS NULL) AND (manager_id = ?2 OR ?2 IS NULL)
                 ORDER BY status = 'closed', opened_at DESC, id DESC",
            )?;
            let v = st
                .query_map(params![status, manager], |r| r.get(0))?
                .collect::<Result<Vec<_>>>()?;
            v
        };
        ids.into_iter().map(|id| self.case_summary(id)).collect()
    }

    fn case_summary(&self, id: CaseId) -> Result<OffboardingCaseSummary> {
        let s = self
            .db
            .query_row(
                "SELECT c.id, c.person_id, p.display_name, p.email, p.status, c.reason, c.opened_at, c.manager_id,
                        m.display_name, c.status,
                        (SELECT count(*) FROM offboarding_items WHERE case_id = c.id),
                        (SELECT count(*) FROM offboarding_items WHERE case_id = c.id AND action IS NOT NULL),
                        (SELECT count(*) FROM offboarding_items WHERE case_id = c.id AND applied_at IS NOT NULL)
                 FROM offboarding_cases c JOIN people p ON p.id = c.person_id LEFT JOIN people m ON m.id = c.manager_id
                 WHERE c.id = ?1",
                [id],
                |r| {
                    Ok(OffboardingCaseSummary {
                        id: r.get(0)?,
                        person_id: r.get(1)?,
                        person: r.get(2)?,
                        email: r.get(3)?,
                        person_status: r.get(4)?,
                        reason: r.get(5)?,
                        opened_at: rfc3339(r.get(6)?),
                        manager_id: r.get(7)?,
                        manager: r.get(8)?,
                        status: r.get(9)?,
                        items: r.get(10)?,
                        decided: r.get(11)?,
                        applied: r.get(12)?,
                        pending_reviews: 0,
                    })
                },
            )
            .optional()?
            .ok_or_else(|| Error::not_found(format!("no offboarding case with id {id}")))?;
        let group = person_group(&self.db, s.person_id)?;
        let pending_reviews = self.db.query_row(
            &format!(
                "SELECT count(*) FROM campaign_items ci JOIN campaigns c ON c.id = ci.campaign_id
                 WHERE c.status = 'active' AND ci.decision IS NULL AND ci.reviewer_id IN ({})",
                in_list(&group)
            ),
            [],
            |r| r.get(0),
        )?;
        Ok(OffboardingCaseSummary {
            pending_reviews,
            ..s
        })
    }

    /// A case with every item, its preview and owner suggestions, and its tasks.
    pub fn offboarding_case(&self, id: CaseId) -> Result<OffboardingCase> {
        let summary = self.case_summary(id)?;
        let group = person_group(&self.db, summary.person_id)?;
        let list = in_list(&group);
        let manager: Option<(i64, String)> = match summary.manager_id {
            Some(m) => self
                .db
                .query_row(
                    "SELECT id, display_name FROM people WHERE id = ?1",
                    [m],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?,
            None => None,
        };
        let mut team_owners: HashMap<String, Vec<OwnerSuggestion>> = HashMap::new();
        let mut st = self.db.prepare(
            "SELECT oi.id, i.id, i.name, i.kind, i.agent_class, i.status, s.name, oi.relation, i.credential_count,
                    oi.action, oi.new_owner_id, np.display_name, oi.until, oi.rotate, oi.decided_by, oi.decided_at,
                    oi.applied_at, i.team
             FROM offboarding_items oi JOIN identities i ON i.id = oi.identity_id JOIN sources s ON s.id = i.source_id
             LEFT JOIN people np ON np.id = oi.new_owner_id
             WHERE oi.case_id = ?1 ORDER BY oi.applied_at IS NOT NULL, i.max_severity DESC, i.name",
        )?;
        let mut rows = st.query([id])?;
        let mut items = vec![];
        while let Some(r) = rows.next()? {
            let identity: i64 = r.get(1)?;
            let team: String = r.get(17)?;
            let mut suggestions = vec![];
            if let Some((m, name)) = &manager {
                suggestions.push(OwnerSuggestion {
                    person_id: *m,
                    name: name.clone(),
                    reason: format!("{}'s manager", summary.person),
                });
            }
            if !team.is_empty() {
                if !team_owners.contains_key(&team) {
                    let mut st = self.db.prepare_cached(&format!(
                        "SELECT p.id, p.display_name, count(*) FROM identities i JOIN people p ON p.id = i.owner_id
                         WHERE i.team = ?1 AND p.status = 'active' AND p.id NOT IN ({list}) AND i.status <> 'deleted'
                         GROUP BY p.id ORDER BY 3 DESC, p.display_name LIMIT 3"
                    ))?;
                    let v = st
                        .query_map([&team], |r| {
                            Ok(OwnerSuggestion {
                                person_id: r.get(0)?,
                                name: r.get(1)?,
                                reason: match r.get::<i64>(2)? {
                                    1 => format!("owns 1 other identity in {team}"),
                                    n => format!("owns {n} other identities in {team}"),
                                },
                            })
                        })?
                        .collect::<Result<Vec<_>>>()?;
                    team_owners.insert(team.clone(), v);
                }
                for s in team_owners.get(&team).into_iter().flatten() {
                    if !suggestions.iter().any(|x| x.person_id == s.person_id) {
                        suggestions.push(s.clone());
                    }
                }
            }
            items.push(OffboardingItemView {
                id: r.get(0)?,
                identity_id: identity,
                name: r.get(2)?,
                kind: r.get(3)?,
                agent_class: r.get(4)?,
                status: r.get(5)?,
                source: r.get(6)?,
                relation: r.get(7)?,
                credentials: r.get(8)?,
                preview: preview(&self.db, identity)?,
                suggestions,
                action: r.get(9)?,
                new_owner_id: r.get(10)?,
                new_owner: r.get(11)?,
                until: r.get::<Option<i64>>(12)?.map(rfc3339),
                rotate: r.get(13)?,
                decided_by: r.get(14)?,
                decided_at: r.get::<Option<i64>>(15)?.map(rfc3339),
                applied_at: r.get::<Option<i64>>(16)?.map(rfc3339),
            });
        }
        let tasks: Vec<TaskView> = self.tasks_where(None, Some(id), None)?;
        Ok(OffboardingCase {
            summary,
            items,
            tasks,
        })
    }

    /// Records a plan for items of a case (not yet applied).
    pub fn plan_offboarding(
        &mut self,
        actor: i64,
        case: CaseId,
        plan: &OffboardPlan,
        now: DateTime<Utc>,
    ) -> Result<usize> {
        let at = to_ts(now);
        let tx = self.db.transaction()?;
        let who = actor_name(&tx, actor)?;
        let person = open_case_person(&tx, case)?;
        let group = person_group(&tx, person)?;
        let planned = plan::check_plan(plan, at, &group)?;
        if let Some(o) = planned.owner {
            active_person(&tx, o, "new owner")?;
        }
        let plan::Planned {
            owner,
            until,
            rotate,
        } = planned;
        let items: Vec<i64> = if plan.items.is_empty() {
            let mut st = tx.prepare("SELECT id FROM offboarding_items WHERE case_id = ?1 AND applied_at IS NULL AND action IS NULL")?;
            let v = st
                .query_map([case], |r| r.get(0))?
                .collect::<Result<Vec<_>>>()?;
            v
        } else {
            plan.items.clone()
        };
        for item in &items {
            let found: Option<(i64, Option<i64>)> = tx
                .query_row(
                    "SELECT case_id, applied_at FROM offboarding_items WHERE id = ?1",
                    [item],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            plan::check_item(
                *item,
                case.0,
                found.map(|(c, applied)| (c, applied.is_some())),
            )?;
            tx.prepare_cached(
                "UPDATE offboarding_items SET action = ?2, new_owner_id = ?3, until = ?4, rotate = ?5, decided_by = ?6, decided_at = ?7
                 WHERE id = ?1",
            )?
            .execute(params![item, plan.action, owner, until, rotate, who, at])?;
        }
        audit::append(
            &tx,
            at,
            &who,
            "offboarding.plan",
            &format!("case {case}"),
            &serde_json::json!({"items": items, "action": plan.action, "owner": owner, "until": until, "rotate": plan.rotate}),
        )?;
        tx.commit()?;
        Ok(items.len())
    }

    /// Applies every planned item of a case: ownership, tasks, review items;
    /// closes the case when nothing is left.
    pub fn apply_offboarding(
        &mut self,
        actor: i64,
        case: CaseId,
        now: DateTime<Utc>,
    ) -> Result<ApplyReport> {
        let at = to_ts(now);
        let tx = self.db.transaction()?;
        let who = actor_name(&tx, actor)?;
        let person = open_case_person(&tx, case)?;
        let person_name = actor_name(&tx, person)?;
        let group = person_group(&tx, person)?;
        let list = in_list(&group);
        #[allow(clippy::type_complexity)]
        let planned: Vec<(
            i64,
            i64,
            String,
            OffboardAction,
            Option<i64>,
            Option<i64>,
            bool,
            String,
        )> = {
            let mut st = tx.prepare(
                "SELECT oi.id, oi.identity_id, i.name, oi.action, oi.new_owner_id, oi.until, oi.rotate, s.name
                 FROM offboarding_items oi JOIN identities i ON i.id = oi.identity_id JOIN sources s ON s.id = i.source_id
                 WHERE oi.case_id = ?1 AND oi.action IS NOT NULL AND oi.applied_at IS NULL ORDER BY oi.id",
            )?;
            let v = st
                .query_map([case], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                    ))
                })?
                .collect::<Result<Vec<_>>>()?;
            v
        };
        let mut report = ApplyReport {
            case_id: case,
            transferred: 0,
            retired: 0,
            kept: 0,
            tasks: 0,
            reviews_moved: 0,
            closed: false,
        };
        let mut new_owner_of: HashMap<i64, i64> = HashMap::new();
        for (item, identity, name, action, owner, until, rotate, source) in &planned {
            // Read the facts.
            let owner_name = match owner {
                Some(o) => Some(actor_name(&tx, *o)?),
                None => None,
            };
            let mut credentials: Vec<plan::Credential> = vec![];
            if plan::needs_credentials(*action, *rotate) {
                let mut st = tx.prepare_cached(
                    "SELECT kind, display_name FROM credentials WHERE identity_id = ?1 ORDER BY id",
                )?;
                for c in st.query_map([identity], |r| {
                    Ok(plan::Credential {
                        kind: r.get(0)?,
                        display_name: r.get(1)?,
                    })
                })? {
                    credentials.push(c?);
                }
            }
            // Apply the rule.
            let effects = plan::apply_item(&plan::ApplyFacts {
                case: case.0,
                item: *item,
                person_name: &person_name,
                name,
                source,
                action: *action,
                owner: owner.zip(owner_name.as_deref()),
                until: *until,
                rotate: *rotate,
                credentials: &credentials,
            })?;
            // Write.
            if let Some(change) = effects.owner {
                tx.execute(
                    "INSERT INTO owner_overrides (identity_id, owner_id, kind, until, reason, set_by, set_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT(identity_id) DO UPDATE SET owner_id = excluded.owner_id, kind = excluded.kind,
                         until = excluded.until, reason = excluded.reason, set_by = excluded.set_by, set_at = excluded.set_at",
                    params![identity, change.owner, change.kind, until, effects.reason, who, at],
                )?;
                tx.execute(
                    "UPDATE identities SET owner_id = ?2 WHERE id = ?1",
                    [*identity, change.owner],
                )?;
            }
            identity_event(
                &tx,
                *identity,
                at,
                &who,
                effects.event_kind,
                &effects.event_detail,
            )?;
            for t in &effects.tasks {
                task(
                    &tx,
                    Some(case),
                    "offboarding",
                    t.kind.as_str(),
                    *identity,
                    &t.target,
                    t.new_owner,
                    at,
                    &who,
                )?;
                report.tasks += 1;
            }
            match effects.owner {
                Some(change) => {
                    new_owner_of.insert(*identity, change.owner);
                    if *action == OffboardAction::Transfer {
                        report.transferred += 1;
                    } else {
                        report.kept += 1;
                    }
                }
                None => report.retired += 1,
            }
            tx.execute(
                "UPDATE offboarding_items SET applied_at = ?2 WHERE id = ?1",
                [*item, at],
            )?;
            audit::append(
                &tx,
                at,
                &who,
                "offboarding.apply",
                &format!("identity {identity} {name}"),
                &serde_json::json!({"case": case, "action": action, "owner": owner, "until": until, "rotate": rotate}),
            )?;
        }
        // Review items the departing person still holds: to the new owner of
        // the identity when it was handed over (never to its builder), else to
        // the campaign's fallback reviewer (or its owner when that is them).
        let pending: Vec<(i64, i64, i64, Option<i64>, i64, i64)> = {
            let mut st = tx.prepare(&format!(
                "SELECT ci.id, ci.campaign_id, ci.identity_id, i.builder_id, c.fallback_reviewer_id, c.owner_id
                 FROM campaign_items ci JOIN campaigns c ON c.id = ci.campaign_id JOIN identities i ON i.id = ci.identity_id
                 WHERE c.status = 'active' AND ci.decision IS NULL AND ci.reviewer_id IN ({list})"
            ))?;
            let v = st
                .query_map([], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                })?
                .collect::<Result<Vec<_>>>()?;
            v
        };
        for (item, campaign, identity, builder, fallback, owner) in pending {
            let to = plan::review_target(
                &plan::PendingReview {
                    new_owner: new_owner_of.get(&identity).copied(),
                    builder,
                    fallback,
                    campaign_owner: owner,
                },
                &group,
            );
            tx.execute(
                "UPDATE campaign_items SET reviewer_id = ?2, reviewer_reason = ?3 WHERE id = ?1",
                params![item, to.0, format!("{}: {person_name} is leaving", to.1)],
            )?;
            tx.execute(
                "INSERT INTO campaign_events (campaign_id, item_id, kind, actor_id, actor, at, detail)
                 VALUES (?1, ?2, 'reviewer_changed', ?3, ?4, ?5, ?6)",
                params![
                    campaign,
                    item,
                    actor,
                    who,
                    at,
                    serde_json::json!({"to": to.0, "reason": format!("offboarding of {person_name}")}).to_string()
                ],
            )?;
            report.reviews_moved += 1;
        }
        // Findings and roll-ups first, while the case is still open (in a
        // workspace a manager may only touch an open case's identities).
        let touched: Vec<i64> = planned.iter().map(|p| p.1).collect();
        refresh_derived_for(&tx, now, &touched)?;
        let left: i64 = tx.query_row(
            "SELECT count(*) FROM offboarding_items WHERE case_id = ?1 AND applied_at IS NULL",
            [case],
            |r| r.get(0),
        )?;
        if left == 0 {
            tx.execute("UPDATE offboarding_cases SET status = 'closed', closed_at = ?2, closed_by = ?3 WHERE id = ?1", params![case, at, who])?;
            report.closed = true;
        }
        audit::append(
            &tx,
            at,
            &who,
            "offboarding.applied",
            &format!("case {case}"),
            &serde_json::to_value(&report)?,
        )?;
        crate::failpoint("offboarding.apply");
        tx.commit()?;
        Ok(report)
    }

    /// Registers an identity (usually a discovered agent).
    pub fn register_identity(
        &mut self,
        actor: i64,
        identity: i64,
        reg: &Registration,
        now: DateTime<Utc>,
    ) -> Result<()> {
        if reg.purpose.trim().is_empty() {
            return Err(Error::invalid("say what the identity is for (purpose)"));
        }
        if reg
            .review_interval_days
            .is_some_and(|d| !(1..=3650).contains(&d))
        {
            return Err(Error::invalid("the review interval must be 1 to 3650 days"));
        }
        let at = to_ts(now);
        let tx = self.db.transaction()?;
        let who = actor_name(&tx, actor)?;
        let name: String = tx
            .query_row(
                "SELECT name FROM identities WHERE id = ?1",
                [identity],
                |r| r.get(0),
            )
            .optional()?
            .ok_or_else(|| Error::not_found(format!("no identity with id {identity}")))?;
        if let Some(o) = reg.owner {
            active_person(&tx, o, "owner")?;
        }
        tx.execute(
            "UPDATE identities SET registered = 1, purpose = ?2, agent_class = coalesce(?3, agent_class),
                 builder_id = coalesce(?4, builder_id), data_touched = ?5, intended_blast_radius = ?6,
                 review_interval_days = coalesce(?7, review_interval_days)
             WHERE id = ?1",
            params![
                identity,
                reg.purpose.trim(),
                reg.agent_class,
                reg.builder,
                reg.data_touched.trim(),
                reg.intended_blast_radius.trim(),
                reg.review_interval_days
            ],
        )?;
        if let Some(o) = reg.owner {
            tx.execute(
                "INSERT INTO owner_overrides (identity_id, owner_id, kind, until, reason, set_by, set_at)
                 VALUES (?1, ?2, 'registration', NULL, 'registered', ?3, ?4)
                 ON CONFLICT(identity_id) DO UPDATE SET owner_id = excluded.owner_id, kind = excluded.kind, until = NULL,
                     reason = excluded.reason, set_by = excluded.set_by, set_at = excluded.set_at",
                params![identity, o, who, at],
            )?;
            tx.execute(
                "UPDATE identities SET owner_id = ?2 WHERE id = ?1",
                [identity, o],
            )?;
        }
        let detail = serde_json::to_value(reg)?;
        identity_event(
            &tx,
            identity,
            at,
            &who,
            "registered",
            &format!("purpose: {}", reg.purpose.trim()),
        )?;
        audit::append(
            &tx,
            at,
            &who,
            "identity.register",
            &format!("identity {identity} {name}"),
            &detail,
        )?;
        refresh_derived_for(&tx, now, &[identity])?;
        tx.commit()?;
        Ok(())
    }

    /// Retires an identity: deprovision tasks for it and its credentials.
    pub fn retire_identity(
        &mut self,
        actor: i64,
        identity: i64,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<usize> {
        if reason.trim().is_empty() {
            return Err(Error::invalid("say why the identity is retired"));
        }
        let at = to_ts(now);
        let tx = self.db.transaction()?;
        let who = actor_name(&tx, actor)?;
        let (name, source): (String, String) = tx
            .query_row(
                "SELECT i.name, s.name FROM identities i JOIN sources s ON s.id = i.source_id WHERE i.id = ?1",
                [identity],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .ok_or_else(|| Error::not_found(format!("no identity with id {identity}")))?;
        task(
            &tx,
            None,
            "lifecycle",
            "disable_identity",
            identity,
            &format!("{name}: disable in {source}"),
            None,
            at,
            &who,
        )?;
        let creds: Vec<(String, String)> = {
            let mut st = tx.prepare(
                "SELECT kind || ' ' || display_name, external_id FROM credentials WHERE identity_id = ?1",
            )?;
            let v = st
                .query_map([identity], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<Vec<_>>>()?;
            v
        };
        for (c, key) in &creds {
            task(
                &tx,
                None,
                "lifecycle",
                "revoke_credential",
                identity,
                &format!("{name}: revoke {c}"),
                None,
                at,
                &who,
            )?;
            tx.execute(
                "UPDATE tasks SET credential_key = ?1 WHERE id = last_insert_rowid()",
                [key],
            )?;
        }
        identity_event(&tx, identity, at, &who, "retired", reason.trim())?;
        audit::append(
            &tx,
            at,
            &who,
            "identity.retire",
            &format!("identity {identity} {name}"),
            &serde_json::json!({"reason": reason.trim(), "credentials": creds.len()}),
        )?;
        tx.commit()?;
        Ok(1 + creds.len())
    }

    /// Confirms an identity's changed access (clears its review flag).
    pub fn clear_review_flag(
        &mut self,
        actor: i64,
        identity: i64,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let at = to_ts(now);
        let tx = self.db.transaction()?;
        let who = actor_name(&tx, actor)?;
        let flag: Option<Option<String>> = tx
            .query_row(
                "SELECT coalesce(review_flag, drift) FROM identities WHERE id = ?1",
                [identity],
                |r| r.get(0),
            )
            .optional()?;
        let Some(flag) = flag else {
            return Err(Error::not_found(format!("no identity with id {identity}")));
        };
        let Some(flag) = flag else {
            return Err(Error::invalid(
                "the identity is not flagged for a permission review and has no drift",
            ));
        };
        tx.execute("UPDATE identities SET review_flag = NULL, review_flag_at = NULL, last_reviewed_at = ?2, drift = NULL,
                 baseline_at = ?2,
                 baseline_resources = (SELECT json_group_array(DISTINCT resource_id) FROM grants WHERE identity_id = ?1)
             WHERE id = ?1", [identity, at])?;
        identity_event(
            &tx,
            identity,
            at,
            &who,
            "flag_cleared",
            &format!("{flag}: {}", note.trim()),
        )?;
        audit::append(
            &tx,
            at,
            &who,
            "identity.review_confirmed",
            &format!("identity {identity}"),
            &serde_json::json!({"flag": flag, "note": note.trim()}),
        )?;
        refresh_derived_for(&tx, now, &[identity])?;
        tx.commit()?;
        Ok(())
    }

    /// Sync lifecycle events, governance actions, review decisions and tasks
    /// of an identity, newest first.
    pub fn identity_timeline(&self, identity: i64) -> Result<Vec<TimelineEntry>> {
        let mut st = self.db.prepare(
            "SELECT at, 'sync', kind, coalesce((SELECT name FROM sources WHERE id = source_id), 'sync'), name || ': ' || detail
               FROM lifecycle_events WHERE subject = 'identity' AND subject_id = ?1
             UNION ALL
             SELECT le.at, 'sync', le.kind, 'sync', 'credential ' || le.name || ': ' || le.detail
               FROM lifecycle_events le JOIN credentials c ON c.id = le.subject_id
               WHERE le.subject = 'credential' AND c.identity_id = ?1
             UNION ALL
             SELECT at, 'governance', kind, actor, detail FROM identity_events WHERE identity_id = ?1
             UNION ALL
             SELECT e.at, 'review', e.kind, e.actor,
                    c.name || ': ' || ci.item_type || ' ' || ci.detail || ' -> ' || coalesce(json_extract(e.detail, '$.decision'), json_extract(e.detail, '$.reason'), '')
               FROM campaign_events e JOIN campaign_items ci ON ci.id = e.item_id JOIN campaigns c ON c.id = e.campaign_id
               WHERE ci.identity_id = ?1 AND e.kind IN ('decision', 'vanished')
             UNION ALL
             SELECT updated_at, 'task', kind || ' ' || status, updated_by, target FROM tasks WHERE identity_id = ?1
             ORDER BY 1 DESC LIMIT 500",
        )?;
        let v = st
            .query_map([identity], |r| {
                Ok(TimelineEntry {
                    at: rfc3339(r.get(0)?),
                    source: r.get(1)?,
                    kind: r.get(2)?,
                    actor: r.get(3)?,
                    summary: r.get(4)?,
                })
            })?
            .collect::<Result<Vec<_>>>()?;
        Ok(v)
    }

    /// A manager's direct reports (across all of the manager's records),
    /// their departures, and what awaits the manager.
    pub fn team(&self, manager: i64) -> Result<TeamView> {
        let group = person_group(&self.db, manager)?;
        let list = in_list(&group);
        let mut st = self.db.prepare(&format!(
            "SELECT p.id, p.display_name, p.email, p.title, p.status, p.left_at, d.departing_on,
                    (SELECT count(*) FROM identities i WHERE i.owner_id = p.id AND i.status <> 'deleted')
             FROM people p LEFT JOIN departures d ON d.person_id = p.id
             WHERE p.manager_id IN ({list}) ORDER BY p.status = 'active', p.display_name"
        ))?;
        let rows = st
            .query_map([], |r| {
                Ok(TeamMember {
                    person_id: r.get(0)?,
                    name: r.get(1)?,
                    email: r.get(2)?,
                    title: r.get(3)?,
                    status: r.get(4)?,
                    left_at: r.get::<Option<i64>>(5)?.map(rfc3339),
                    departing_on: r.get::<Option<i64>>(6)?.map(rfc3339),
                    owns: r.get(7)?,
                    case_id: None,
                })
            })?
            .collect::<Result<Vec<_>>>()?;
        let mut members = Vec::with_capacity(rows.len());
        for m in rows {
            let case_id = self.case_of(m.person_id)?;
            members.push(TeamMember { case_id, ..m });
        }
        let cases: Vec<OffboardingCaseSummary> = {
            let mut all = vec![];
            for g in &group {
                all.extend(self.offboarding_cases(Some("open"), Some(*g))?);
            }
            all
        };
        let undecided_items = cases.iter().map(|c| c.items - c.decided).sum();
        let pending_reviews = self.db.query_row(
            &format!(
                "SELECT count(*) FROM campaign_items ci JOIN campaigns c ON c.id = ci.campaign_id
                 WHERE c.status = 'active' AND ci.decision IS NULL AND ci.reviewer_id IN ({list})"
            ),
            [],
            |r| r.get(0),
        )?;
        Ok(TeamView {
            manager_id: manager,
            members,
            cases,
            undecided_items,
            pending_reviews,
        })
    }
}

impl Store {
    /// Records an edge between identities that no source knows.
    pub fn link_identities(
        &mut self,
        actor: i64,
        from: i64,
        to: i64,
        kind: crate::model::DelegationKind,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        if from == to {
            return Err(Error::invalid("an identity cannot be linked to itself"));
        }
        let at = to_ts(now);
        let tx = self.db.transaction()?;
        let who = actor_name(&tx, actor)?;
        let names: (String, String) = tx.query_row(
            "SELECT (SELECT name FROM identities WHERE id = ?1), (SELECT name FROM identities WHERE id = ?2)",
            [from, to],
            |r| Ok((r.get::<Option<String>>(0)?.unwrap_or_default(), r.get::<Option<String>>(1)?.unwrap_or_default())),
        )?;
        let n = tx.execute(
            "INSERT INTO identity_links (from_id, to_id, kind, note, documented_by, documented_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
            params![from, to, kind, note.trim(), who, at],
        )?;
        if n == 0 {
            return Err(Error::invalid(format!(
                "{} -> {} ({}) is already documented",
                names.0,
                names.1,
                kind.as_str()
            )));
        }
        identity_event(
            &tx,
            from,
            at,
            &who,
            "linked",
            &format!(
                "can {} {} (documented: {})",
                kind.as_str(),
                names.1,
                note.trim()
            ),
        )?;
        audit::append(
            &tx,
            at,
            &who,
            "graph.link",
            &format!("{} -> {}", names.0, names.1),
            &serde_json::json!({"from": from, "to": to, "kind": kind, "note": note.trim()}),
        )?;
        tx.commit()?;
        Ok(())
    }
}
