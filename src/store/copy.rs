//! `db copy`: a whole store into an empty one, either way between the
//! engines (solo cache to team workspace, workspace to an offline
//! snapshot): inventory, sync history, campaigns and decisions, offboarding,
//! tasks, posture snapshots and the audit chain, rows and ids as they are.
//!
//! The target is written in one transaction: a failure leaves it empty.
//! Search indexes are not copied; the target's triggers rebuild them as the
//! identities arrive. Afterwards the audit chain must verify at the target
//! with the source's head, or the copy is an error.

use super::db::{Db, Value};
use super::Store;
use crate::error::{Error, ErrorCode, Result};

/// Every table, parents before children (foreign keys are checked row by
/// row on PostgreSQL). A table the copy does not know is refused, so a new
/// migration cannot be silently left out (a test holds this list against
/// the latest schema).
pub const COPY_ORDER: &[&str] = &[
    "meta",
    "sources",
    "people",
    "identities",
    "credentials",
    "resources",
    "grants",
    "delegations",
    "findings",
    "sync_runs",
    "lifecycle_events",
    "campaigns",
    "campaign_items",
    "campaign_events",
    "offboarding_cases",
    "offboarding_items",
    "departures",
    "owner_overrides",
    "identity_events",
    "identity_links",
    "tasks",
    "audit_log",
    "audit_checkpoints",
    "posture_snapshots",
];

/// Tables that belong to one engine or are derived: never copied.
pub const NOT_COPIED: &[&str] = &["identity_fts", "custodian_marker"];

/// What a copy wrote.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CopyReport {
    pub from: String,
    pub to: String,
    /// (table, rows), in copy order.
    pub tables: Vec<(String, i64)>,
    pub rows: i64,
    /// The audit chain's head, the same at both ends.
    pub audit_head: String,
    pub audit_entries: i64,
}

/// Tables of `db` that the copy would not know what to do with.
pub fn unknown_tables(db: &Db) -> Result<Vec<String>> {
    Ok(db
        .tables()?
        .into_iter()
        .filter(|t| !COPY_ORDER.contains(&t.as_str()) && !NOT_COPIED.contains(&t.as_str()))
        .collect())
}

fn is_empty(db: &Db, tables: &[String]) -> Result<Option<String>> {
    for t in tables {
        if t == "meta" {
            continue;
        }
        let n: i64 = db.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0))?;
        if n > 0 {
            return Ok(Some(format!("{t} holds {n} row(s)")));
        }
    }
    Ok(None)
}

/// Copies the rows of `table` that `src` shows (row-level security
/// applies) into `tx`, the columns both ends have, in key order; returns
/// how many. Tables keyed by an integer `id` or `seq` are read in pages
/// of [`PAGE`] rows (keyset), so a big table is never held whole in
/// memory (PostgreSQL reads are materialised per query).
pub(crate) fn copy_table(src: &Db, tx: &Db, table: &str) -> Result<i64> {
    let src_cols = src.columns(table)?;
    let dst_cols = tx.columns(table)?;
    let cols: Vec<&str> = src_cols
        .iter()
        .filter(|c| dst_cols.contains(c))
        .map(String::as_str)
        .collect();
    let key = ["id", "seq"].into_iter().find(|k| cols.contains(k));
    let mut n = 0i64;
    let mut rows: Vec<Vec<Value>> = Vec::new();
    let mut read = |select: &str,
                    params: Vec<i64>,
                    rows: &mut Vec<Vec<Value>>|
     -> Result<(usize, Option<i64>)> {
        let mut got = 0usize;
        let mut last = None;
        let key_at = key.and_then(|k| cols.iter().position(|c| *c == k));
        src.for_each(select, params, |r| {
            let mut row = Vec::with_capacity(cols.len());
            for i in 0..cols.len() {
                row.push(r.value(i)?);
            }
            if let Some(Value::Int(v)) = key_at.map(|i| &row[i]) {
                last = Some(*v);
            }
            rows.push(row);
            got += 1;
            if rows.len() >= 5_000 {
                n += tx.insert_rows(table, &cols, std::mem::take(rows))? as i64;
            }
            Ok(())
        })?;
        Ok((got, last))
    };
    match key {
        Some(k) => {
            let select = format!(
                "SELECT {} FROM {table} WHERE {k} > ?1 ORDER BY {k} LIMIT {PAGE}",
                cols.join(", ")
            );
            let mut after = i64::MIN;
            loop {
                let (got, last) = read(&select, vec![after], &mut rows)?;
                match last {
                    Some(l) if got as i64 == PAGE => after = l,
                    _ => break,
                }
            }
        }
        None => {
            let order = cols.first().copied().unwrap_or("1");
            let select = format!("SELECT {} FROM {table} ORDER BY {order}", cols.join(", "));
            read(&select, Vec::new(), &mut rows)?;
        }
    }
    n += tx.insert_rows(table, &cols, rows)? as i64;
    if cols.contains(&"id") {
        tx.sync_id_sequence(table)?;
    }
    Ok(n)
}

/// Rows per keyset page in [`copy_table`].
const PAGE: i64 = 50_000;

/// Copies everything in `from` into `to`, which must be empty (a fresh
/// cache file or database: `meta` only).
pub fn copy(from: &Store, to: &mut Store) -> Result<CopyReport> {
    let src = from.db();
    let dst = to.db();
    if from.schema_version()? != to.schema_version()? {
        return Err(Error::internal(
            "source and target are at different schema versions",
        ));
    }
    for (db, which) in [(src, "source"), (dst, "target")] {
        let unknown = unknown_tables(db)?;
        if !unknown.is_empty() {
            return Err(Error::internal(format!(
                "the {which} has tables this build cannot copy: {}",
                unknown.join(", ")
            )));
        }
    }
    let present: Vec<String> = src.tables()?;
    let order: Vec<&str> = COPY_ORDER
        .iter()
        .copied()
        .filter(|t| present.iter().any(|p| p == t))
        .collect();
    let target_tables: Vec<String> = order.iter().map(|t| t.to_string()).collect();
    if let Some(why) = is_empty(dst, &target_tables)? {
        return Err(Error::invalid(format!(
            "the target {} is not empty ({why}): db copy writes only into a new cache or an empty database",
            to.location()
        )));
    }
    let source_audit = from.verify_audit()?;
    if !source_audit.ok {
        return Err(Error::new(
            ErrorCode::AuditBroken,
            format!(
                "the source's audit log does not verify ({}); it was not copied",
                source_audit.problem.unwrap_or_default()
            ),
        ));
    }
    let tx = dst.transaction()?;
    // The target starts empty of the store's own rows (meta keeps only
    // what the copy brings).
    tx.execute("DELETE FROM meta", [])?;
    let mut tables = Vec::new();
    let mut total = 0i64;
    for table in &order {
        let n = copy_table(src, &tx, table)?;
        tables.push((table.to_string(), n));
        total += n;
    }
    tx.commit()?;
    let target_audit = to.verify_audit()?;
    if !target_audit.ok || target_audit.head != source_audit.head {
        return Err(Error::new(
            ErrorCode::AuditBroken,
            format!(
                "the copied audit log does not verify at {} ({}); the target should be discarded",
                to.location(),
                target_audit
                    .problem
                    .unwrap_or_else(|| "its head differs from the source's".into())
            ),
        ));
    }
    Ok(CopyReport {
        from: from.location().to_string(),
        to: to.location().to_string(),
        tables,
        rows: total,
        audit_head: target_audit.head,
        audit_entries: target_audit.entries,
    })
}
