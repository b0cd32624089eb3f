//! Bulk writes: loading a whole organisation snapshot, and keeping the derived
//! tables (findings, roll-ups) in step.

use crate::store::db::{Db, Engine};
use chrono::{DateTime, Utc};

use super::{to_ts, to_ts_opt, Store};
use crate::error::{Context, Result};
use crate::findings::CHECKS;
use crate::model::OrgSnapshot;
use crate::values;

/// Counts of rows written by a load.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadCounts {
    pub people: usize,
    pub identities: usize,
    pub credentials: usize,
    pub resources: usize,
    pub grants: usize,
    pub delegations: usize,
    pub findings: usize,
}

impl LoadCounts {
    pub fn total_rows(&self) -> usize {
        self.people
            + self.identities
            + self.credentials
            + self.resources
            + self.grants
            + self.delegations
    }
}

impl Store {
    /// Replaces the whole cache content with `org`, in one transaction: on any
    /// error nothing changes. Then evaluates findings as of `now`.
    pub fn replace_org(&mut self, org: &OrgSnapshot, now: DateTime<Utc>) -> Result<LoadCounts> {
        self.replace_org_and(org, now, |_| Ok(()), |_| Ok(()))
    }

    /// [`Store::replace_org`] with two steps of the caller's in the same
    /// transaction: `derive` once every row, roll-up and finding is in but
    /// before the identities' secondary indexes are built (the demo load
    /// writes its blast radii and posture history there: on PostgreSQL an
    /// update of every identity row under its 25 indexes took 25 s at L,
    /// against well under one without them), and `after` at the end (the
    /// demo load records there what it replaced, in the audit log).
    pub fn replace_org_and(
        &mut self,
        org: &OrgSnapshot,
        now: DateTime<Utc>,
        derive: impl FnOnce(&Store) -> Result<()>,
        after: impl FnOnce(&Db) -> Result<()>,
    ) -> Result<LoadCounts> {
        let tx = self.db.transaction()?;
        // Reviews were about the organisation being replaced.
        tx.execute_batch(super::campaigns::WIPE_REVIEWS)?;
        tx.execute_batch(
            "DELETE FROM findings; DELETE FROM delegations; DELETE FROM grants; DELETE FROM credentials;
             DELETE FROM identities; DELETE FROM resources; DELETE FROM people; DELETE FROM sources;",
        )?;
        // The secondary indexes of what a load fills are built once the rows
        // are in (one sort each) rather than kept row by row: the
        // identities' after their roll-ups are written, the others before
        // the checks read them. In the transaction: a failed load keeps
        // them as they were.
        let children =
            drop_secondary_indexes(&tx, &["grants", "credentials", "delegations", "findings"])?;
        let identities = drop_secondary_indexes(&tx, &["identities"])?;
        let mut counts = insert_org(&tx, org).context(|| "loading the organisation".to_string())?;
        create_indexes(&tx, &children)?;
        if tx.engine() == Engine::Postgres {
            // PostgreSQL builds no index on a table with deferred checks
            // pending (the owner keys): every row is in, check them now.
            tx.execute_batch("SET CONSTRAINTS ALL IMMEDIATE")?;
        }
        // The owner and builder indexes before anything updates an identity:
        // opening offboarding cases looks identities up by them, and on
        // PostgreSQL an index built after this transaction updated its
        // table (a single HOT update will do: the roll-ups below, the blast
        // radii in `derive`) carries `indcheckxmin` and is unusable until
        // the transaction ends, which made those lookups one scan of every
        // identity per case (0.2 s a case at XL).
        let (lookups, sorts): (Vec<_>, Vec<_>) = identities
            .into_iter()
            .partition(|(name, _)| LOAD_LOOKUP_INDEXES.contains(&name.as_str()));
        create_indexes(&tx, &lookups)?;
        analyze_written(&tx)?;
        counts.findings = refresh_derived(&tx, now)?;
        tx.analyze("findings")?;
        derive(self)?;
        create_indexes(&tx, &sorts)?;
        super::offboarding::open_cases(&tx, now)?;
        after(&tx)?;
        tx.commit()?;
        tracing::info!(?counts, "organisation loaded");
        Ok(counts)
    }

    /// Re-evaluates every finding and roll-up as of `now`.
    pub fn refresh_findings(&mut self, now: DateTime<Utc>) -> Result<usize> {
        let tx = self.db.transaction()?;
        let n = refresh_derived(&tx, now)?;
        tx.commit()?;
        Ok(n)
    }
}

/// On PostgreSQL, takes the statistics of the tables a load or a large sync
/// has just filled, in its transaction (ANALYZE sees the transaction's own
/// rows), so what follows (the checks, the roll-ups, opening offboarding
/// cases) is planned on the rows there rather than on tables that were
/// empty. A member who does not own the tables gets a warning from
/// ANALYZE, never an error. SQLite: nothing.
pub(super) fn analyze_written(tx: &Db) -> Result<()> {
    tx.analyze("people, identities, credentials, resources, grants, delegations")
}

/// The identities' indexes the load itself reads through after its rows
/// are in (offboarding cases by owner and builder).
const LOAD_LOOKUP_INDEXES: &[&str] = &["identities_owner", "identities_builder"];

/// Drops the indexes of `tables` that no constraint needs, returning their
/// names and the statements that create them again.
fn drop_secondary_indexes(tx: &Db, tables: &[&str]) -> Result<Vec<(String, String)>> {
    let mut found: Vec<(String, String)> = vec![];
    for table in tables {
        found.extend(match tx.engine() {
            Engine::Sqlite => tx.query_map(
                "SELECT name, sql FROM sqlite_schema WHERE type = 'index' AND tbl_name = ?1 AND sql IS NOT NULL",
                [*table],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?,
            Engine::Postgres => tx.query_map(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = ?1
                   AND indexname NOT IN (SELECT conname FROM pg_constraint)",
                [*table],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?,
        });
    }
    for (name, _) in &found {
        tx.execute_batch(&format!("DROP INDEX \"{}\"", name.replace('"', "\"\"")))?;
    }
    Ok(found)
}

fn create_indexes(tx: &Db, indexes: &[(String, String)]) -> Result<()> {
    for (_, sql) in indexes {
        tx.execute_batch(sql)?;
    }
    Ok(())
}

fn insert_org(tx: &Db, org: &OrgSnapshot) -> Result<LoadCounts> {
    // Multi-row inserts on PostgreSQL, a cached statement per row on SQLite
    // (`Db::insert_rows`).
    let mut c = LoadCounts::default();
    tx.insert_rows(
        "sources",
        &["id", "kind", "name"],
        org.sources.iter().map(|s| values![s.id, s.kind, s.name]),
    )?;
    c.people = tx.insert_rows(
        "people",
        &[
            "id",
            "source_id",
            "external_id",
            "display_name",
            "email",
            "department",
            "title",
            "manager_id",
            "status",
            "left_at",
        ],
        org.people.iter().map(|p| {
            values![
                p.id,
                p.source,
                p.external_id,
                p.display_name,
                p.email,
                p.department,
                p.title,
                p.manager,
                p.status,
                to_ts_opt(p.left_at)
            ]
        }),
    )?;
    c.identities = tx.insert_rows(
        "identities",
        &[
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
            "created_at",
            "last_used_at",
            "last_reviewed_at",
        ],
        org.identities.iter().map(|i| {
            values![
                i.id,
                i.source,
                i.external_id,
                i.name,
                i.kind,
                i.agent_class,
                i.status,
                i.purpose,
                i.builder,
                i.owner,
                i.team,
                i.environment,
                i.registered,
                i.intended_blast_radius,
                to_ts(i.created_at),
                to_ts_opt(i.last_used_at),
                to_ts_opt(i.last_reviewed_at)
            ]
        }),
    )?;
    c.credentials = tx.insert_rows(
        "credentials",
        &[
            "id",
            "identity_id",
            "external_id",
            "kind",
            "display_name",
            "created_at",
            "expires_at",
            "last_rotated_at",
            "last_used_at",
        ],
        org.credentials.iter().map(|k| {
            values![
                k.id,
                k.identity,
                k.external_id,
                k.kind,
                k.display_name,
                to_ts(k.created_at),
                to_ts_opt(k.expires_at),
                to_ts_opt(k.last_rotated_at),
                to_ts_opt(k.last_used_at)
            ]
        }),
    )?;
    c.resources = tx.insert_rows(
        "resources",
        &[
            "id",
            "source_id",
            "external_id",
            "name",
            "kind",
            "sensitivity",
            "environment",
            "owner_id",
        ],
        org.resources.iter().map(|r| {
            values![
                r.id,
                r.source,
                r.external_id,
                r.name,
                r.kind,
                r.sensitivity,
                r.environment,
                r.owner
            ]
        }),
    )?;
    c.grants = tx.insert_rows(
        "grants",
        &[
            "identity_id",
            "resource_id",
            "permission",
            "privilege",
            "high_consequence",
            "last_used_at",
        ],
        org.grants.iter().map(|g| {
            values![
                g.identity,
                g.resource,
                g.permission,
                g.privilege,
                g.high_consequence,
                to_ts_opt(g.last_used_at)
            ]
        }),
    )?;
    c.delegations = tx.insert_rows_with(
        "delegations",
        &["from_id", "to_id", "kind", "condition", "reason"],
        "ON CONFLICT DO NOTHING",
        org.delegations
            .iter()
            .map(|d| values![d.from, d.to, d.kind, d.condition, d.reason]),
    )?;
    // The snapshot brought its own ids: later inserts continue after them.
    for table in [
        "sources",
        "people",
        "identities",
        "credentials",
        "resources",
    ] {
        tx.sync_id_sequence(table)?;
    }
    Ok(c)
}

/// The identities a scoped refresh re-evaluates (a temporary table, so
/// every check can join it through its identity alias `i`).
pub(super) const SCOPE: &str = "temp.refresh_scope";

/// [`refresh_derived`] for a few identities: their findings and roll-ups are
/// recomputed, every other row is left as it is (their owner and source
/// names follow by trigger: a member's handover may write only the roll-ups). Correct because every check
/// is a function of one identity's own rows (its credentials, grants, owner,
/// source, override); a test in tests/core/offboarding.rs proves it equals a
/// full refresh.
pub(super) fn refresh_derived_for(tx: &Db, now: DateTime<Utc>, identities: &[i64]) -> Result<()> {
    set_refresh_scope(tx, identities)?;
    refresh_derived_in_scope(tx, now)
}

/// Fills the scope table with `identities`.
fn set_refresh_scope(tx: &Db, identities: &[i64]) -> Result<()> {
    fill_temp_ids(tx, "refresh_scope", identities)
}

/// Makes the temporary table `table` (one id column) hold just `ids`.
/// PostgreSQL sends them in batches, not a round trip each.
pub(super) fn fill_temp_ids(tx: &Db, table: &str, ids: &[i64]) -> Result<()> {
    tx.execute_batch(&format!(
        "CREATE TEMP TABLE IF NOT EXISTS {table} (id INTEGER PRIMARY KEY); DELETE FROM temp.{table};"
    ))?;
    tx.insert_rows_with(
        &format!("temp.{table}"),
        &["id"],
        "ON CONFLICT DO NOTHING",
        ids.iter().map(|&id| values![id]),
    )?;
    Ok(())
}

/// Fills the scope table with what a sync's writes can bear on: the
/// `identities` it wrote, those owned or built by the `people` it wrote,
/// the accounts of those people (human-account-as-service), and every
/// holder of a grant on the `resources` it wrote (their sensitivity,
/// environment and name are in the evidence). Returns the scope's size.
pub(super) fn set_change_scope(
    tx: &Db,
    identities: &[i64],
    people: &[i64],
    resources: &[i64],
) -> Result<usize> {
    set_refresh_scope(tx, identities)?;
    for (table, ids, select) in [
        (
            "refresh_people",
            people,
            "SELECT i.id FROM identities i WHERE i.owner_id IN (SELECT id FROM temp.refresh_people)
             UNION SELECT i.id FROM identities i WHERE i.builder_id IN (SELECT id FROM temp.refresh_people)
             UNION SELECT i.id FROM temp.refresh_people c JOIN people p ON p.id = c.id
                   JOIN identities i ON i.source_id = p.source_id AND i.external_id = p.external_id",
        ),
        (
            "refresh_resources",
            resources,
            "SELECT DISTINCT g.identity_id AS id FROM grants g WHERE g.resource_id IN (SELECT id FROM temp.refresh_resources)",
        ),
    ] {
        if ids.is_empty() {
            continue;
        }
        fill_temp_ids(tx, table, ids)?;
        tx.execute(
            &format!("INSERT INTO {SCOPE}(id) SELECT id FROM ({select}) AS q WHERE true ON CONFLICT DO NOTHING"),
            [],
        )?;
    }
    // Planned by its size, not the default guess of 2,550 rows.
    tx.analyze("refresh_scope")?;
    let n: i64 = tx.query_row(&format!("SELECT count(*) FROM {SCOPE}"), [], |r| r.get(0))?;
    Ok(usize::try_from(n).unwrap_or(0))
}

/// [`refresh_derived`] for the identities in the scope table.
pub(super) fn refresh_derived_in_scope(tx: &Db, now: DateTime<Utc>) -> Result<()> {
    tx.execute(
        &format!("DELETE FROM findings WHERE identity_id IN (SELECT id FROM {SCOPE})"),
        [],
    )?;
    run_checks(tx, to_ts(now), true)?;
    let started = std::time::Instant::now();
    // `severity + 0`: a plain max(severity) lets PostgreSQL walk the whole
    // findings_severity index backwards for each identity (5.9 ms each at L:
    // 5.8 s for a resync of 984 identities, against 0.01 ms by identity).
    tx.execute_batch(&format!(
        "UPDATE identities SET
             credential_count = (SELECT count(*) FROM credentials c WHERE c.identity_id = identities.id),
             oldest_credential_at = (SELECT min(coalesce(c.last_rotated_at, c.created_at)) FROM credentials c
                                     WHERE c.identity_id = identities.id),
             grant_count = (SELECT count(*) FROM grants g WHERE g.identity_id = identities.id),
             finding_count = (SELECT count(*) FROM findings f WHERE f.identity_id = identities.id),
             max_severity = coalesce((SELECT max(f.severity + 0) FROM findings f WHERE f.identity_id = identities.id), 0)
         WHERE id IN (SELECT id FROM {SCOPE});"
    ))?;
    tracing::debug!(
        ms = started.elapsed().as_millis() as u64,
        "roll-ups in scope"
    );
    Ok(())
}

/// Inserts the findings of every check as of `now`; `scoped`: only for the
/// identities in the scope table.
fn run_checks(tx: &Db, now: i64, scoped: bool) -> Result<()> {
    for check in CHECKS {
        let Some(check_query) = super::finding_queries::query(check.id) else {
            return Err(crate::error::Error::internal(format!(
                "posture check {} has no query",
                check.id
            )));
        };
        // Every check selects from `identities i` with one top-level WHERE.
        let query = if scoped {
            check_query.replacen(
                "WHERE ",
                &format!("WHERE i.id IN (SELECT id FROM {SCOPE}) AND "),
                1,
            )
        } else {
            check_query.to_string()
        };
        let sql = format!(
            "INSERT INTO findings(identity_id, check_id, owasp, severity, title, evidence, fix, detected_at)
             SELECT identity_id, '{id}', '{owasp}', {sev}, '{title}', evidence, '{fix}', :now FROM ({query}) AS q",
            id = check.id,
            owasp = check.owasp,
            sev = check.severity.rank(),
            title = check.title.replace('\'', "''"),
            fix = check.fix.replace('\'', "''"),
        );
        // `:now` is the check's one parameter.
        let started = std::time::Instant::now();
        tx.execute(&sql.replace(":now", "?1"), [now])
            .context(|| format!("finding check {}", check.id))?;
        tracing::debug!(
            check = check.id,
            scoped,
            ms = started.elapsed().as_millis() as u64,
            "finding check"
        );
    }
    Ok(())
}

/// Recomputes findings and the roll-up columns. Returns the number of findings.
pub(super) fn refresh_derived(tx: &Db, now: DateTime<Utc>) -> Result<usize> {
    tx.execute("DELETE FROM findings", [])?;
    run_checks(tx, to_ts(now), false)?;
    let started = std::time::Instant::now();
    // Roll-ups from one grouped pass per table; only rows whose values
    // change are written (a resync touches few).
    tx.execute_batch(
        "WITH c AS (SELECT identity_id, count(*) AS n, min(coalesce(last_rotated_at, created_at)) AS oldest
                    FROM credentials GROUP BY identity_id),
              g AS (SELECT identity_id, count(*) AS n FROM grants GROUP BY identity_id),
              f AS (SELECT identity_id, count(*) AS n, max(severity) AS sev FROM findings GROUP BY identity_id),
              agg AS (SELECT i.id, coalesce(c.n, 0) AS cn, c.oldest AS oldest, coalesce(g.n, 0) AS gn,
                             coalesce(f.n, 0) AS fn, coalesce(f.sev, 0) AS sev, p.display_name AS oname,
                             CASE WHEN i.owner_id IS NULL THEN 'none' WHEN p.status = 'active' THEN 'owned'
                                  ELSE 'departed' END AS ostate,
                             s.name AS sname
                      FROM identities i
                      LEFT JOIN c ON c.identity_id = i.id
                      LEFT JOIN g ON g.identity_id = i.id
                      LEFT JOIN f ON f.identity_id = i.id
                      LEFT JOIN people p ON p.id = i.owner_id
                      LEFT JOIN sources s ON s.id = i.source_id)
         UPDATE identities SET credential_count = agg.cn, oldest_credential_at = agg.oldest, grant_count = agg.gn,
                               finding_count = agg.fn, max_severity = agg.sev, owner_name = agg.oname,
                               owner_state = agg.ostate, source_name = agg.sname
         FROM agg
         WHERE agg.id = identities.id
           AND (identities.credential_count IS DISTINCT FROM agg.cn OR identities.oldest_credential_at IS DISTINCT FROM agg.oldest
                OR identities.grant_count IS DISTINCT FROM agg.gn OR identities.finding_count IS DISTINCT FROM agg.fn
                OR identities.max_severity IS DISTINCT FROM agg.sev OR identities.owner_name IS DISTINCT FROM agg.oname
                OR identities.owner_state IS DISTINCT FROM agg.ostate OR identities.source_name IS DISTINCT FROM agg.sname);",
    )?;
    tracing::debug!(ms = started.elapsed().as_millis() as u64, "roll-ups");
    let n: i64 = tx.query_row("SELECT count(*) FROM findings", [], |r| r.get(0))?;
    Ok(usize::try_from(n).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The load builds these before its derive step by name: a renamed
    /// index would silently fall back to one scan per offboarding case.
    #[test]
    fn the_load_lookup_indexes_exist_in_the_schema() {
        let store = Store::open_in_memory().unwrap_or_else(|e| panic!("{e}"));
        let tx = store.db.transaction().unwrap_or_else(|e| panic!("{e}"));
        let found = drop_secondary_indexes(&tx, &["identities"]).unwrap_or_else(|e| panic!("{e}"));
        for name in LOAD_LOOKUP_INDEXES {
            assert!(
                found.iter().any(|(n, _)| n == name),
                "{name} is not an index of identities: {found:?}"
            );
        }
    }
}
