//! The CISO's posture view: key figures, their trend over sync history,
//! findings by OWASP NHI category, the highest blast radii.
//!
//! Figures are computed live from the cache; a snapshot is appended after
//! every sync and load (`record`), and the trend reads those snapshots. A
//! newly loaded demo organisation gets a reconstructed history (figures as
//! of past weeks, from creation, expiry and leave dates) marked as such.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::blast::{BlastRank, Graph};
use crate::error::Result;
use crate::store::Store;

/// Blast-radius score from which an identity counts as "high blast radius".
pub const HIGH_BLAST: f64 = 1500.0;
/// A credential unused this long is stale.
pub const STALE_DAYS: i64 = 90;
/// Identities without their own review interval are due after this long.
pub const DEFAULT_REVIEW_DAYS: i64 = 180;

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PostureFigures {
    /// Active non-human identities.
    pub nhis: i64,
    pub ai_agents: i64,
    /// With an active owner.
    pub owned: i64,
    pub owned_pct: f64,
    /// Owner departed, suspended, unknown or missing.
    pub orphaned: i64,
    /// Credentials not used in 90 days or never used (`null` when reconstructed).
    pub stale_credentials: Option<i64>,
    /// Secrets without an expiry.
    pub never_expiring: i64,
    pub expired_credentials: i64,
    /// Never reviewed, or past their review interval (`null` when reconstructed).
    pub unreviewed: Option<i64>,
    pub unregistered_agents: i64,
    /// Blast-radius score of at least `HIGH_BLAST` (`null` when reconstructed).
    pub high_blast: Option<i64>,
    pub findings: i64,
    pub critical_findings: i64,
    pub high_findings: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PostureSnapshot {
    pub at: String,
    /// sync | load | reconstructed
    pub origin: String,
    pub figures: PostureFigures,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct FindingCount {
    pub check_id: String,
    pub owasp: String,
    pub owasp_title: String,
    pub severity: crate::model::Severity,
    pub title: String,
    pub fix: String,
    pub identities: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PostureView {
    pub at: String,
    pub figures: PostureFigures,
    pub trend: Vec<PostureSnapshot>,
    pub findings: Vec<FindingCount>,
    pub top_blast: Vec<BlastRank>,
}

const SECRETS: &str = "c.kind NOT IN ('federated_credential', 'certificate')";

/// Figures now.
pub fn figures(store: &Store, graph: Option<&Graph>, now: DateTime<Utc>) -> Result<PostureFigures> {
    let c = store.db();
    let t = now.timestamp();
    let q = |sql: &str| -> Result<i64> {
        Ok(if sql.contains(":now") {
            c.query_row(&sql.replace(":now", "?1"), [t], |r| r.get(0))?
        } else {
            c.query_row(sql, [], |r| r.get(0))?
        })
    };
    let nhis = q("SELECT count(*) FROM identities WHERE status = 'active'")?;
    let owned = q("SELECT count(*) FROM identities i JOIN people p ON p.id = i.owner_id WHERE i.status = 'active' AND p.status = 'active'
                   AND NOT EXISTS (SELECT 1 FROM owner_overrides o WHERE o.identity_id = i.id AND o.kind = 'temporary' AND o.until < :now)")?;
    let high_blast = graph.map(|g| {
        g.rank(usize::MAX)
            .iter()
            .filter(|r| r.score >= HIGH_BLAST)
            .count() as i64
    });
    Ok(PostureFigures {
        nhis,
        ai_agents: q("SELECT count(*) FROM identities WHERE status = 'active' AND kind = 'ai_agent'")?,
        owned,
        owned_pct: if nhis == 0 { 0.0 } else { (owned as f64 * 1000.0 / nhis as f64).round() / 10.0 },
        orphaned: nhis - owned,
        stale_credentials: Some(q(&format!(
            "SELECT count(*) FROM credentials c JOIN identities i ON i.id = c.identity_id
             WHERE i.status = 'active' AND (c.last_used_at IS NULL OR c.last_used_at < :now - {STALE_DAYS} * 86400)"
        ))?),
        never_expiring: q(&format!(
            "SELECT count(*) FROM credentials c JOIN identities i ON i.id = c.identity_id
             WHERE i.status = 'active' AND c.expires_at IS NULL AND {SECRETS}"
        ))?,
        expired_credentials: q("SELECT count(*) FROM credentials c JOIN identities i ON i.id = c.identity_id
             WHERE i.status = 'active' AND c.expires_at < :now")?,
        unreviewed: Some(q(&format!(
            "SELECT count(*) FROM identities WHERE status = 'active' AND (last_reviewed_at IS NULL
                OR last_reviewed_at < :now - coalesce(review_interval_days, {DEFAULT_REVIEW_DAYS}) * 86400)"
        ))?),
        unregistered_agents: q("SELECT count(*) FROM identities WHERE status = 'active' AND kind = 'ai_agent' AND registered = 0")?,
        high_blast,
        findings: q("SELECT count(*) FROM findings")?,
        critical_findings: q("SELECT count(*) FROM findings WHERE severity = 4")?,
        high_findings: q("SELECT count(*) FROM findings WHERE severity = 3")?,
    })
}

/// Figures as of a past time, from the dates the cache holds (identities
/// created, credentials created and expiring, people's leave dates).
pub fn reconstruct(store: &Store, at: DateTime<Utc>) -> Result<PostureFigures> {
    let c = store.db();
    let t = at.timestamp();
    let q = |sql: &str| -> Result<i64> {
        Ok(if sql.contains(":t") {
            c.query_row(&sql.replace(":t", "?1"), [t], |r| r.get(0))?
        } else {
            c.query_row(sql, [], |r| r.get(0))?
        })
    };
    let alive = "i.created_at <= :t AND i.status <> 'deleted'";
    let nhis = q(&format!("SELECT count(*) FROM identities i WHERE {alive}"))?;
    let owned = q(&format!(
        "SELECT count(*) FROM identities i JOIN people p ON p.id = i.owner_id
         WHERE {alive} AND (p.status = 'active' OR (p.left_at IS NOT NULL AND p.left_at > :t))"
    ))?;
    Ok(PostureFigures {
        nhis,
        ai_agents: q(&format!("SELECT count(*) FROM identities i WHERE {alive} AND i.kind = 'ai_agent'"))?,
        owned,
        owned_pct: if nhis == 0 { 0.0 } else { (owned as f64 * 1000.0 / nhis as f64).round() / 10.0 },
        orphaned: nhis - owned,
        stale_credentials: None,
        never_expiring: q(&format!(
            "SELECT count(*) FROM credentials c JOIN identities i ON i.id = c.identity_id
             WHERE {alive} AND c.created_at <= :t AND c.expires_at IS NULL AND {SECRETS}"
        ))?,
        expired_credentials: q(&format!(
            "SELECT count(*) FROM credentials c JOIN identities i ON i.id = c.identity_id
             WHERE {alive} AND c.created_at <= :t AND c.expires_at < :t"
        ))?,
        unreviewed: None,
        unregistered_agents: q(&format!(
            "SELECT count(*) FROM identities i WHERE {alive} AND i.kind = 'ai_agent' AND i.registered = 0"
        ))?,
        high_blast: None,
        findings: 0,
        critical_findings: 0,
        high_findings: 0,
    })
}

/// Appends a snapshot of the figures now.
pub fn record(store: &Store, origin: &str, now: DateTime<Utc>) -> Result<PostureFigures> {
    let graph = Graph::load(store)?;
    let f = figures(store, Some(&graph), now)?;
    store.add_posture_snapshot(now.timestamp(), origin, &serde_json::to_string(&f)?)?;
    Ok(f)
}

/// Reconstructed weekly snapshots for the `weeks` before `now` (demo loads).
pub fn record_history(store: &Store, weeks: i64, now: DateTime<Utc>) -> Result<()> {
    for w in (1..=weeks).rev() {
        let at = now - Duration::weeks(w);
        let f = reconstruct(store, at)?;
        store.add_posture_snapshot(at.timestamp(), "reconstructed", &serde_json::to_string(&f)?)?;
    }
    Ok(())
}

pub fn trend(store: &Store, limit: i64) -> Result<Vec<PostureSnapshot>> {
    let mut st = store.db().prepare(
        "SELECT at, origin, figures FROM (SELECT * FROM posture_snapshots ORDER BY at DESC, id DESC LIMIT ?1) AS s ORDER BY at, id",
    )?;
    let rows = st
        .query_map([limit], |r| {
            Ok((
                r.get::<i64>(0)?,
                r.get::<String>(1)?,
                r.get::<String>(2)?,
            ))
        })?
        .collect::<Result<Vec<_>>>()?;
    Ok(rows
        .into_iter()
        .filter_map(|(at, origin, f)| {
            serde_json::from_str(&f)
                .ok()
                .map(|figures| PostureSnapshot {
                    at: chrono::DateTime::from_timestamp(at, 0)
                        .map(|t| t.to_rfc3339())
                        .unwrap_or_default(),
                    origin,
                    figures,
                })
        })
        .collect())
}

/// Findings grouped by check, most common first.
pub fn finding_counts(store: &Store) -> Result<Vec<FindingCount>> {
    let mut st = store.db().prepare(
        "SELECT check_id, owasp, severity, title, fix, count(DISTINCT identity_id) FROM findings
         GROUP BY check_id, owasp, severity, title, fix ORDER BY severity DESC, 6 DESC",
    )?;
    let v = st
        .query_map([], |r| {
            let owasp: String = r.get(1)?;
            Ok(FindingCount {
                owasp_title: crate::findings::owasp_title(&owasp).to_string(),
                check_id: r.get(0)?,
                owasp,
                severity: crate::model::Severity::from_rank(r.get(2)?)
                    .unwrap_or(crate::model::Severity::Low),
                title: r.get(3)?,
                fix: r.get(4)?,
                identities: r.get(5)?,
            })
        })?
        .collect::<Result<Vec<_>>>()?;
    Ok(v)
}

pub fn view(store: &Store, now: DateTime<Utc>) -> Result<PostureView> {
    let graph = Graph::load(store)?;
    let figures = figures(store, Some(&graph), now)?;
    Ok(PostureView {
        at: now.to_rfc3339(),
        figures,
        trend: trend(store, 104)?,
        findings: finding_counts(store)?,
        top_blast: graph.rank(10),
    })
}
