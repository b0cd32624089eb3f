//! Read queries behind the inventory and identity detail views.

use std::collections::HashMap;

use crate::store::db::{Engine, Value};
use crate::store::db::{OptionalExtension, Row};
use chrono::{DateTime, SecondsFormat, Utc};

use super::{from_ts, to_ts, Store};
use crate::error::{Error, Result};
use crate::findings::owasp_title;
use crate::model::{IdentityId, Severity};
use crate::views::{
    CredentialView, DelegationView, FacetCount, FindingView, GrantView, IdentityDetail,
    InventoryFacets, InventoryPage, InventoryQuery, InventoryRow, OrgSummary, OwnerState,
    PersonRef, SortKey,
};

pub const DEFAULT_PAGE: u32 = 100;
pub const MAX_PAGE: u32 = 1000;

pub(crate) fn rfc3339(ts: i64) -> String {
    from_ts(ts).to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn days_between(from: i64, to: i64) -> i64 {
    (to - from).div_euclid(86_400)
}

/// Turns what a person typed into an FTS5 query: every word must match as a
/// prefix. Quotes and operators are neutralised, so any input is valid.
/// Returns `None` when nothing searchable remains.
pub fn fts_query(input: &str) -> Option<String> {
    let terms: Vec<String> = input
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-' || c == '.' || c == '@'))
        .flat_map(|w| w.split(['-', '.', '@']))
        .filter(|w| !w.is_empty())
        .map(|w| format!("\"{}\"*", w.replace('"', "")))
        .collect();
    if terms.is_empty() {
        None
    } else {
        Some(terms.join(" "))
    }
}

/// Turns what a person typed into a PostgreSQL `tsquery` with the same
/// meaning as [`fts_query`]: every word must match as a prefix. Each word is
/// a quoted lexeme, so no input is a tsquery syntax error.
pub fn pg_tsquery(input: &str) -> Option<String> {
    let terms: Vec<String> = input
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| format!("'{}':*", w.replace('\\', "").replace('\'', "''")))
        .collect();
    if terms.is_empty() {
        None
    } else {
        Some(terms.join(" & "))
    }
}

/// The search expression for `engine`.
fn search_query(engine: Engine, input: &str) -> Option<String> {
    match engine {
        Engine::Sqlite => fts_query(input),
        Engine::Postgres => pg_tsquery(input),
    }
}

impl Store {
    /// One page of identities matching `q`, with the total count.
    pub fn inventory(&self, q: &InventoryQuery, now: DateTime<Utc>) -> Result<InventoryPage> {
        self.inventory_planned(q, now, None)
    }

    /// [`Store::inventory`] with the way of reading the page chosen
    /// (`Some(true)`: the filter's matches, sorted; `Some(false)`: a walk of
    /// the sort's index) rather than estimated: both give the same page, and
    /// the tests and the benchmark compare them.
    pub fn inventory_planned(
        &self,
        q: &InventoryQuery,
        now: DateTime<Utc>,
        filter_first: Option<bool>,
    ) -> Result<InventoryPage> {
        let (total, _, ids_sql, args) = self.page_statements(q, filter_first)?;
        let mut st = self.db.prepare_cached(&ids_sql)?;
        let ids = st
            .query_map(crate::store::db::params_from_iter(args.iter()), |r| {
                r.get::<i64>(0)
            })?
            .collect::<Result<Vec<_>>>()?;
        if ids.is_empty() {
            return Ok(InventoryPage {
                total,
                offset: q.offset,
                rows: vec![],
            });
        }
        let marks = vec!["?"; ids.len()].join(",");
        let rows_sql = format!(
            "SELECT i.id, i.name, i.kind, i.agent_class, i.status, i.owner_id, o.display_name, o.status, s.name,
                    i.team, i.registered, i.credential_count, i.oldest_credential_at, i.grant_count,
                    i.finding_count, i.max_severity, i.last_used_at
             FROM identities i
             JOIN sources s ON s.id = i.source_id
             LEFT JOIN people o ON o.id = i.owner_id
             WHERE i.id IN ({marks})"
        );
        let now = to_ts(now);
        let mut st = self.db.prepare(&rows_sql)?;
        let mut by_id: HashMap<i64, InventoryRow> = st
            .query_map(crate::store::db::params_from_iter(ids.iter()), |r| {
                Ok(InventoryRow {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    kind: r.get(2)?,
                    agent_class: r.get(3)?,
                    status: r.get(4)?,
                    owner_id: r.get(5)?,
                    owner_name: r.get(6)?,
                    owner_status: r.get(7)?,
                    source: r.get(8)?,
                    team: r.get(9)?,
                    registered: r.get(10)?,
                    credential_count: r.get(11)?,
                    oldest_credential_days: r.get::<Option<i64>>(12)?.map(|t| days_between(t, now)),
                    grant_count: r.get(13)?,
                    finding_count: r.get(14)?,
                    max_severity: Severity::from_rank(r.get(15)?),
                    last_used_at: r.get::<Option<i64>>(16)?.map(rfc3339),
                })
            })?
            .map(|r| r.map(|row| (row.id, row)))
            .collect::<Result<_>>()?;
        let rows = ids.iter().filter_map(|id| by_id.remove(id)).collect();
        Ok(InventoryPage {
            total,
            offset: q.offset,
            rows,
        })
    }

    /// Counts the matches of `q`, then says how its page is read (`choice`,
    /// or by estimate) and with which statement: (total, filter first, the
    /// page's statement, the arguments both statements take).
    fn page_statements(
        &self,
        q: &InventoryQuery,
        choice: Option<bool>,
    ) -> Result<(i64, bool, String, Vec<Value>)> {
        let engine = self.db.engine();
        let (count_sql, _, args) = inventory_sql(engine, q, false);
        let total: i64 = self.db.query_row(
            &count_sql,
            crate::store::db::params_from_iter(args.iter()),
            |r| r.get(0),
        )?;
        let filter_first = match choice {
            Some(f) => f,
            None => self.filter_first(q, total)?,
        };
        let (_, ids_sql, _) = inventory_sql(engine, q, filter_first);
        Ok((total, filter_first, ids_sql, args))
    }

    /// Whether a page is read from the filter's matches, sorted (rather
    /// than by walking the sort's index and skipping what the filter
    /// refuses): when the walk would visit more than [`WALK_LIMIT`] rows,
    /// estimated from the share of identities that match. SQLite keeps no
    /// statistics to weigh this itself; PostgreSQL does, and decides alone.
    fn filter_first(&self, q: &InventoryQuery, total: i64) -> Result<bool> {
        if self.db.engine() != Engine::Sqlite || !has_filter(q) {
            return Ok(false);
        }
        // The largest id bounds the number of identities, at no cost.
        let size: i64 =
            self.db
                .query_row("SELECT coalesce(max(id), 0) FROM identities", [], |r| {
                    r.get(0)
                })?;
        Ok(read_matches_first(walk_visits(q, total, size), total))
    }

    /// How the engine runs the two statements of an inventory page: its
    /// query plan, one line a step (a diagnostic for the benchmark).
    pub fn inventory_plan(&self, q: &InventoryQuery) -> Result<Vec<String>> {
        let (total, filter_first, ids_sql, args) = self.page_statements(q, None)?;
        let (count_sql, _, _) = inventory_sql(self.db.engine(), q, filter_first);
        let mut lines = vec![format!("{total} matches; filter first: {filter_first}")];
        for (what, sql) in [("count", count_sql), ("page", ids_sql)] {
            lines.push(format!("{what}:"));
            let steps: Vec<String> = match self.db.engine() {
                Engine::Sqlite => self.db.query_map(
                    &format!("EXPLAIN QUERY PLAN {sql}"),
                    crate::store::db::params_from_iter(args.iter()),
                    |r| r.get(3),
                )?,
                Engine::Postgres => self.db.query_map(
                    &format!("EXPLAIN (ANALYZE, BUFFERS) {sql}"),
                    crate::store::db::params_from_iter(args.iter()),
                    |r| r.get(0),
                )?,
            };
            lines.extend(steps.into_iter().map(|l| format!("  {l}")));
        }
        Ok(lines)
    }

    /// Counts per filter value over the whole inventory: one grouped pass
    /// over the filter index (`identities_filter`), summed here per facet.
    pub fn inventory_facets(&self) -> Result<InventoryFacets> {
        type Group = (String, String, Option<String>, i64, String, i64, i64);
        let groups: Vec<Group> = self.db.query_map(
            "SELECT kind, status, agent_class, source_id, owner_state, finding_count, count(*) FROM identities
             GROUP BY kind, status, agent_class, source_id, owner_state, finding_count",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)),
        )?;
        let sources: Vec<(i64, String)> =
            self.db
                .query_map("SELECT id, name FROM sources ORDER BY name, id", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
        let mut kinds: HashMap<String, i64> = HashMap::new();
        let mut statuses: HashMap<String, i64> = HashMap::new();
        let mut classes: HashMap<String, i64> = HashMap::new();
        let mut by_source: HashMap<i64, i64> = HashMap::new();
        let mut owner_states: HashMap<String, i64> = HashMap::new();
        let (mut with_findings, mut total) = (0, 0);
        for (kind, status, class, source, owner_state, findings, n) in groups {
            *kinds.entry(kind).or_default() += n;
            *statuses.entry(status).or_default() += n;
            if let Some(c) = class {
                *classes.entry(c).or_default() += n;
            }
            *by_source.entry(source).or_default() += n;
            *owner_states.entry(owner_state).or_default() += n;
            if findings > 0 {
                with_findings += n;
            }
            total += n;
        }
        // Most common first; equal counts by value, so the order is stable.
        let ranked = |m: HashMap<String, i64>| -> Vec<FacetCount> {
            let mut v: Vec<FacetCount> = m
                .into_iter()
                .map(|(value, count)| FacetCount {
                    label: value.clone(),
                    value,
                    count,
                })
                .collect();
            v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
            v
        };
        Ok(InventoryFacets {
            kinds: ranked(kinds),
            statuses: ranked(statuses),
            classes: ranked(classes),
            sources: sources
                .into_iter()
                .map(|(id, name)| FacetCount {
                    value: id.to_string(),
                    label: name,
                    count: by_source.get(&id).copied().unwrap_or(0),
                })
                .collect(),
            owner_states: ranked(owner_states),
            with_findings,
            total,
        })
    }

    /// Every identity's id and external id (its key in its source: the ARN
    /// for AWS), by id: what names an identity outside Custodian.
    pub fn identity_external_ids(&self) -> Result<Vec<(i64, String)>> {
        self.db.query_map(
            "SELECT id, external_id FROM identities ORDER BY id",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    /// Finds an identity by numeric id, external id, or exact (case-insensitive) name.
    pub fn resolve_identity(&self, reference: &str) -> Result<IdentityId> {
        let reference = reference.trim();
        if let Ok(id) = reference.parse::<i64>() {
            let found: Option<i64> = self
                .db
                .query_row("SELECT id FROM identities WHERE id = ?1", [id], |r| {
                    r.get(0)
                })
                .optional()?;
            if let Some(id) = found {
                return Ok(IdentityId(id));
            }
        }
        let mut st = self.db.prepare_cached(
            "SELECT id FROM identities WHERE external_id = ?1
             UNION SELECT id FROM identities WHERE name = ?1 COLLATE NOCASE LIMIT 2",
        )?;
        let ids = st
            .query_map([reference], |r| r.get::<i64>(0))?
            .collect::<Result<Vec<_>>>()?;
        match ids.as_slice() {
            [id] => Ok(IdentityId(*id)),
            [] => Err(Error::not_found(format!("no identity matches '{reference}'"))),
            _ => Err(Error::invalid(format!(
                "'{reference}' matches several identities; use the numeric id from `custodian inventory`"
            ))),
        }
    }

    /// Everything about one identity, with ages computed as of `now`.
    pub fn identity_detail(&self, id: IdentityId, now: DateTime<Utc>) -> Result<IdentityDetail> {
        let now = to_ts(now);
        let base = self
            .db
            .query_row(
                "SELECT i.id, i.name, i.external_id, i.kind, i.agent_class, i.status, i.purpose, s.name, i.team,
                        i.environment, i.registered, i.intended_blast_radius, i.created_at, i.last_used_at,
                        i.last_reviewed_at, i.owner_id, i.builder_id, s.signed_in_as IS NOT NULL AND s.signed_in_as = i.external_id
                 FROM identities i JOIN sources s ON s.id = i.source_id WHERE i.id = ?1",
                [id],
                |r| {
                    Ok((
                        IdentityDetail {
                            id: r.get(0)?,
                            name: r.get(1)?,
                            external_id: r.get(2)?,
                            kind: r.get(3)?,
                            agent_class: r.get(4)?,
                            status: r.get(5)?,
                            purpose: r.get(6)?,
                            source: r.get(7)?,
                            team: r.get(8)?,
                            environment: r.get(9)?,
                            registered: r.get(10)?,
                            intended_blast_radius: r.get(11)?,
                            created_at: rfc3339(r.get(12)?),
                            last_used_at: r.get::<Option<i64>>(13)?.map(rfc3339),
                            last_reviewed_at: r.get::<Option<i64>>(14)?.map(rfc3339),
                            owner: None,
                            builder: None,
                            credentials: vec![],
                            grants: vec![],
                            delegations_out: vec![],
                            delegations_in: vec![],
                            findings: vec![],
                            custodian_signs_in: r.get(17)?,
                        },
                        r.get::<Option<i64>>(15)?,
                        r.get::<Option<i64>>(16)?,
                    ))
                },
            )
            .optional()?;
        let Some((mut d, owner, builder)) = base else {
            return Err(Error::not_found(format!("no identity with id {id}")));
        };
        d.owner = owner.map(|p| self.person_ref(p)).transpose()?.flatten();
        d.builder = builder.map(|p| self.person_ref(p)).transpose()?.flatten();

        let mut st = self.db.prepare_cached(
            "SELECT id, kind, display_name, external_id, created_at, expires_at, last_rotated_at, last_used_at
             FROM credentials WHERE identity_id = ?1 ORDER BY coalesce(last_rotated_at, created_at)",
        )?;
        d.credentials = st
            .query_map([id], |r| {
                let created: i64 = r.get(4)?;
                let expires: Option<i64> = r.get(5)?;
                let rotated: Option<i64> = r.get(6)?;
                let used: Option<i64> = r.get(7)?;
                Ok(CredentialView {
                    id: r.get(0)?,
                    kind: r.get(1)?,
                    display_name: r.get(2)?,
                    external_id: r.get(3)?,
                    created_at: rfc3339(created),
                    expires_at: expires.map(rfc3339),
                    last_rotated_at: rotated.map(rfc3339),
                    last_used_at: used.map(rfc3339),
                    age_days: days_between(rotated.unwrap_or(created), now),
                    expires_in_days: expires.map(|e| days_between(now, e)),
                    last_used_days: used.map(|u| days_between(u, now)),
                })
            })?
            .collect::<Result<Vec<_>>>()?;

        let mut st = self.db.prepare_cached(
            "SELECT r.id, r.name, r.kind, r.sensitivity, r.environment, g.permission, g.privilege,
                    g.high_consequence, g.last_used_at
             FROM grants g JOIN resources r ON r.id = g.resource_id WHERE g.identity_id = ?1
             ORDER BY g.high_consequence DESC, r.name, g.permission",
        )?;
        d.grants = st
            .query_map([id], |r| {
                Ok(GrantView {
                    resource_id: r.get(0)?,
                    resource_name: r.get(1)?,
                    resource_kind: r.get(2)?,
                    sensitivity: r.get(3)?,
                    environment: r.get(4)?,
                    permission: r.get(5)?,
                    privilege: r.get(6)?,
                    high_consequence: r.get(7)?,
                    last_used_at: r.get::<Option<i64>>(8)?.map(rfc3339),
                })
            })?
            .collect::<Result<Vec<_>>>()?;

        let delegation = |r: &Row<'_>| -> Result<DelegationView> {
            Ok(DelegationView {
                kind: r.get(0)?,
                other_id: r.get(1)?,
                other_name: r.get(2)?,
                other_kind: r.get(3)?,
            })
        };
        let mut st = self.db.prepare_cached(
            "SELECT d.kind, o.id, o.name, o.kind FROM delegations d JOIN identities o ON o.id = d.to_id
             WHERE d.from_id = ?1 ORDER BY o.name",
        )?;
        d.delegations_out = st
            .query_map([id], delegation)?
            .collect::<Result<Vec<_>>>()?;
        let mut st = self.db.prepare_cached(
            "SELECT d.kind, o.id, o.name, o.kind FROM delegations d JOIN identities o ON o.id = d.from_id
             WHERE d.to_id = ?1 ORDER BY o.name",
        )?;
        d.delegations_in = st
            .query_map([id], delegation)?
            .collect::<Result<Vec<_>>>()?;

        let mut st = self.db.prepare_cached(
            "SELECT check_id, owasp, severity, title, evidence, fix FROM findings WHERE identity_id = ?1
             ORDER BY severity DESC, check_id",
        )?;
        d.findings = st
            .query_map([id], |r| {
                let owasp: String = r.get(1)?;
                Ok(FindingView {
                    check_id: r.get(0)?,
                    owasp_title: owasp_title(&owasp).to_string(),
                    owasp,
                    severity: Severity::from_rank(r.get(2)?).unwrap_or(Severity::Low),
                    title: r.get(3)?,
                    evidence: r.get(4)?,
                    fix: r.get(5)?,
                })
            })?
            .collect::<Result<Vec<_>>>()?;
        Ok(d)
    }

    pub fn person_ref(&self, id: i64) -> Result<Option<PersonRef>> {
        Ok(self
            .db
            .query_row(
                "SELECT p.id, p.display_name, p.email, p.title, p.department, p.status, p.left_at, p.manager_id, m.display_name
                 FROM people p LEFT JOIN people m ON m.id = p.manager_id WHERE p.id = ?1",
                [id],
                |r| {
                    Ok(PersonRef {
                        id: r.get(0)?,
                        display_name: r.get(1)?,
                        email: r.get(2)?,
                        title: r.get(3)?,
                        department: r.get(4)?,
                        status: r.get(5)?,
                        left_at: r.get::<Option<i64>>(6)?.map(rfc3339),
                        manager_id: r.get(7)?,
                        manager_name: r.get(8)?,
                    })
                },
            )
            .optional()?)
    }

    /// Headline counts.
    pub fn summary(&self) -> Result<OrgSummary> {
        let count = |table: &str| -> Result<i64> {
            Ok(self
                .db
                .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?)
        };
        let mut st = self
            .db
            .prepare_cached("SELECT name FROM sources ORDER BY name")?;
        let sources = st
            .query_map([], |r| r.get(0))?
            .collect::<Result<Vec<String>>>()?;
        Ok(OrgSummary {
            database: self.path.as_ref().map(|p| p.display().to_string()),
            dataset: self.meta("dataset")?,
            sources,
            people: count("people")?,
            identities: count("identities")?,
            credentials: count("credentials")?,
            grants: count("grants")?,
            delegations: count("delegations")?,
            findings: count("findings")?,
        })
    }
}

/// The two statements of an inventory page (the total count, then one page
/// of ids in order) with their positional arguments.
/// Matches few enough to read and sort whatever the sort (a few ms at
/// 100k identities): an estimate of the walk can be far off when the filter
/// and the sort go together (no owner, sorted by owner: all at the end).
pub const FEW_MATCHES: i64 = 5_000;

/// Read the filter's matches and sort them, rather than walk the sort's
/// index, when that reads fewer rows than the walk would visit or the
/// matches are few.
pub fn read_matches_first(visits: f64, total: i64) -> bool {
    total <= FEW_MATCHES || (total as f64) < visits
}

/// Any filter besides the sort?
fn has_filter(q: &InventoryQuery) -> bool {
    !q.search.trim().is_empty()
        || !q.kinds.is_empty()
        || !q.statuses.is_empty()
        || !q.classes.is_empty()
        || !q.sources.is_empty()
        || q.owner.is_some()
        || q.owner_state.is_some()
        || q.has_findings.is_some()
}

/// The rows a walk of the sort's index visits to fill a page when `total`
/// of `size` identities match, spread evenly.
pub fn walk_visits(q: &InventoryQuery, total: i64, size: i64) -> f64 {
    let limit = match q.limit {
        0 => DEFAULT_PAGE,
        n => n.min(MAX_PAGE),
    };
    let wanted = f64::from(q.offset) + f64::from(limit);
    if total <= 0 {
        // Nothing matches: a walk would visit every row to find that out.
        return size as f64;
    }
    (wanted * size as f64 / total as f64).min(size as f64)
}

fn inventory_sql(
    engine: Engine,
    q: &InventoryQuery,
    filter_first: bool,
) -> (String, String, Vec<Value>) {
    let (where_sql, args) = inventory_filter(engine, q);
    // SQLite has no statistics to choose between reading the filter's
    // matches and walking the sort's index: the page's statement says which,
    // a + before the sort's columns or before the filter's.
    let hinted = engine == Engine::Sqlite && has_filter(q);
    let page_where = if hinted && !filter_first {
        filter_with(engine, q, true).0
    } else {
        where_sql.clone()
    };
    let dir = if q.descending { "DESC" } else { "ASC" };
    // `i.id` last makes the order total, so pages never overlap.
    let order = match q.sort {
        SortKey::Name => format!("i.name COLLATE NOCASE {dir}"),
        SortKey::Kind => format!("i.kind {dir}, i.name COLLATE NOCASE {dir}"),
        SortKey::Status => format!("i.status {dir}, i.name COLLATE NOCASE {dir}"),
        // The owner's and source's names are kept on the row (migration 12),
        // each sort an index walk.
        SortKey::Owner => format!("(i.owner_name IS NULL), i.owner_name COLLATE NOCASE {dir}, i.name COLLATE NOCASE {dir}"),
        SortKey::Source => format!("i.source_name {dir}, i.name COLLATE NOCASE {dir}"),
        SortKey::Credentials => format!("i.credential_count {dir}"),
        SortKey::OldestCredential => {
            // By age: ascending = youngest first = latest timestamp first;
            // identities without credentials last either way.
            let inv = if q.descending { "ASC" } else { "DESC" };
            format!("i.oldest_credential_at IS NULL, i.oldest_credential_at {inv}")
        }
        SortKey::Grants => format!("i.grant_count {dir}"),
        SortKey::Risk => format!("i.max_severity {dir}, i.finding_count {dir}"),
        // Ascending puts never-used identities (NULL) first: the stalest.
        SortKey::LastUsed => format!("i.last_used_at {dir}"),
        SortKey::Created => format!("i.created_at {dir}"),
    };
    let limit = match q.limit {
        0 => DEFAULT_PAGE,
        n => n.min(MAX_PAGE),
    };
    let count_sql = format!("SELECT count(*) FROM identities i {where_sql}");
    // Two steps: page the ids with only the joins the sort needs (cheap to
    // sort, index-friendly), then read the display columns of that page.
    let mut terms: Vec<String> = order.split(", ").map(str::to_string).collect();
    terms.push(format!("i.id {dir}"));
    if hinted && filter_first {
        // The order kept from an index: SQLite reads the matches through the
        // filter's index and sorts them.
        terms = terms.into_iter().map(|t| engine.no_index(&t)).collect();
    }
    let ids_sql = format!(
        "SELECT i.id FROM identities i {page_where}
         ORDER BY {} LIMIT {limit} OFFSET {offset}",
        terms.join(", "),
        offset = q.offset
    );
    (count_sql, ids_sql, args)
}

/// Builds the WHERE clause (with positional arguments) for an inventory query.
pub(crate) fn inventory_filter(engine: Engine, q: &InventoryQuery) -> (String, Vec<Value>) {
    filter_with(engine, q, false)
}

/// [`inventory_filter`]; `walk`: each column kept from an index
/// ([`Engine::no_index`]), so SQLite walks the sort's index instead.
fn filter_with(engine: Engine, q: &InventoryQuery, walk: bool) -> (String, Vec<Value>) {
    let c = |column: &str| {
        if walk {
            engine.no_index(column)
        } else {
            column.to_string()
        }
    };
    let mut clauses: Vec<String> = Vec::new();
    let mut args: Vec<Value> = Vec::new();
    let in_list =
        |column: &str, values: Vec<Value>, clauses: &mut Vec<String>, args: &mut Vec<Value>| {
            if values.is_empty() {
                return;
            }
            let marks = vec!["?"; values.len()].join(", ");
            clauses.push(format!("{column} IN ({marks})"));
            args.extend(values);
        };
    in_list(
        &c("i.kind"),
        q.kinds
            .iter()
            .map(|k| Value::Text(k.as_str().into()))
            .collect(),
        &mut clauses,
        &mut args,
    );
    in_list(
        &c("i.status"),
        q.statuses
            .iter()
            .map(|k| Value::Text(k.as_str().into()))
            .collect(),
        &mut clauses,
        &mut args,
    );
    in_list(
        &c("i.agent_class"),
        q.classes
            .iter()
            .map(|k| Value::Text(k.as_str().into()))
            .collect(),
        &mut clauses,
        &mut args,
    );
    in_list(
        &c("i.source_id"),
        q.sources.iter().map(|s| Value::Int(*s)).collect(),
        &mut clauses,
        &mut args,
    );
    if let Some(owner) = q.owner {
        clauses.push(format!("{} = ?", c("i.owner_id")));
        args.push(Value::Int(owner));
    }
    match q.owner_state {
        Some(OwnerState::None) => clauses.push(format!("{} = 'none'", c("i.owner_state"))),
        Some(OwnerState::Owned) => clauses.push(format!("{} = 'owned'", c("i.owner_state"))),
        Some(OwnerState::Departed) => clauses.push(format!("{} = 'departed'", c("i.owner_state"))),
        None => {}
    }
    match q.has_findings {
        Some(true) => clauses.push(format!("{} > 0", c("i.finding_count"))),
        Some(false) => clauses.push(format!("{} = 0", c("i.finding_count"))),
        None => {}
    }
    if let Some(m) = search_query(engine, &q.search) {
        clauses.push(
            match engine {
                Engine::Sqlite => {
                    "{id} IN (SELECT rowid FROM identity_fts WHERE identity_fts MATCH ?)"
                }
                Engine::Postgres => {
                    "i.id IN (SELECT id FROM identity_fts WHERE doc @@ to_tsquery('simple', ?))"
                }
            }
            .replace("{id}", &c("i.id")),
        );
        args.push(Value::Text(m));
    }
    let sql = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    (sql, args)
}

#[cfg(test)]
mod tests {
    use super::{fts_query, read_matches_first, walk_visits};
    use crate::views::InventoryQuery;

    #[test]
    fn a_walk_visits_the_page_over_the_share_that_matches() {
        let q = InventoryQuery::default();
        // Half match: twice the page.
        assert_eq!(walk_visits(&q, 50_000, 100_000), 200.0);
        // 807 of 100k match: a walk visits ~12k rows for the first page...
        let few = walk_visits(&q, 807, 100_000);
        assert!(few > 12_000.0 && few < 13_000.0, "{few}");
        // ... and the whole index for page 300 (capped at the table).
        let deep = InventoryQuery {
            offset: 30_000,
            ..q.clone()
        };
        assert_eq!(walk_visits(&deep, 807, 100_000), 100_000.0);
        // Nothing matches: the walk would read everything.
        assert_eq!(walk_visits(&q, 0, 100_000), 100_000.0);
    }

    #[test]
    fn matches_are_read_first_when_few_or_fewer_than_the_walk() {
        assert!(read_matches_first(12_400.0, 807));
        assert!(read_matches_first(100_000.0, 30_000));
        assert!(!read_matches_first(200.0, 50_000));
        assert!(!read_matches_first(1_344.0, 7_442));
    }

    #[test]
    fn fts_query_neutralises_operators() {
        assert_eq!(
            fts_query("billing bot").as_deref(),
            Some("\"billing\"* \"bot\"*")
        );
        assert_eq!(
            fts_query("\"OR\" NEAR(a").as_deref(),
            Some("\"OR\"* \"NEAR\"* \"a\"*")
        );
        assert_eq!(
            fts_query("svc-billing.prod").as_deref(),
            Some("\"svc\"* \"billing\"* \"prod\"*")
        );
        assert_eq!(fts_query("  ** () "), None);
    }
}
