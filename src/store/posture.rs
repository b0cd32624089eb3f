//! The facts the posture view is made of: counts over identities,
//! credentials and findings now (`posture_counts`) and as of a past time
//! from the dates the cache holds (`posture_counts_at`), the stored posture
//! snapshots (`posture_snapshots`; appended by `add_posture_snapshot` in
//! `mod.rs`) and findings grouped by check.
//!
//! Thresholds (what "stale" and "due for review" mean) are rules of
//! `crate::posture` and arrive as arguments; the figures derived from these
//! counts (owned share, orphaned) are computed there.

use crate::error::Result;
use crate::store::Store;

/// Credentials that are secrets (a federated credential or a certificate is
/// not a secret that can leak or should expire).
const SECRETS: &str = "c.kind NOT IN ('federated_credential', 'certificate')";

/// Counts over the cache now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PostureCounts {
    /// Active non-human identities.
    pub nhis: i64,
    pub ai_agents: i64,
    /// Active identities with an active owner (a temporary owner past its
    /// deadline does not count).
    pub owned: i64,
    /// Credentials of active identities not used within `stale_days`, or never used.
    pub stale_credentials: i64,
    /// Secrets of active identities without an expiry.
    pub never_expiring: i64,
    pub expired_credentials: i64,
    /// Active identities never reviewed or past their review interval.
    pub unreviewed: i64,
    pub unregistered_agents: i64,
    pub findings: i64,
    pub critical_findings: i64,
    pub high_findings: i64,
}

/// Counts as of a past time, from creation, expiry and leave dates (what
/// the cache cannot tell about the past, such as last use or reviews, is
/// not counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PastPostureCounts {
    /// Identities created by then and not deleted.
    pub nhis: i64,
    pub ai_agents: i64,
    /// ... whose owner was active then (still active, or left later).
    pub owned: i64,
    pub never_expiring: i64,
    pub expired_credentials: i64,
    pub unregistered_agents: i64,
}

/// A stored posture snapshot: its time, origin and figures as JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostureSnapshotRow {
    pub at: i64,
    /// sync | load | reconstructed
    pub origin: String,
    pub figures_json: String,
}

/// Findings of one check, with the number of identities they concern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckFindingCount {
    pub check_id: String,
    pub owasp: String,
    /// Severity rank as stored (`Severity::rank`).
    pub severity_rank: i64,
    pub title: String,
    pub fix: String,
    pub identities: i64,
}

impl Store {
    /// Counts now (`now` in seconds since the epoch).
    pub fn posture_counts(
        &self,
        now: i64,
        stale_days: i64,
        default_review_days: i64,
    ) -> Result<PostureCounts> {
        let c = &self.db;
        let plain = |sql: &str| -> Result<i64> { c.query_row(sql, [], |r| r.get(0)) };
        let at_now = |sql: &str| -> Result<i64> { c.query_row(sql, [now], |r| r.get(0)) };
        Ok(PostureCounts {
            nhis: plain("SELECT count(*) FROM identities WHERE status = 'active'")?,
            ai_agents: plain(
                "SELECT count(*) FROM identities WHERE status = 'active' AND kind = 'ai_agent'",
            )?,
            owned: at_now(
                "SELECT count(*) FROM identities i JOIN people p ON p.id = i.owner_id WHERE i.status = 'active' AND p.status = 'active'
                   AND NOT EXISTS (SELECT 1 FROM owner_overrides o WHERE o.identity_id = i.id AND o.kind = 'temporary' AND o.until < ?1)",
            )?,
            // The thresholds are numbers, written into the SQL as before.
            stale_credentials: at_now(&format!(
                "SELECT count(*) FROM credentials c JOIN identities i ON i.id = c.identity_id
                 WHERE i.status = 'active' AND (c.last_used_at IS NULL OR c.last_used_at < ?1 - {stale_days} * 86400)"
            ))?,
            never_expiring: plain(&format!(
                "SELECT count(*) FROM credentials c JOIN identities i ON i.id = c.identity_id
                 WHERE i.status = 'active' AND c.expires_at IS NULL AND {SECRETS}"
            ))?,
            expired_credentials: at_now(
                "SELECT count(*) FROM credentials c JOIN identities i ON i.id = c.identity_id
                 WHERE i.status = 'active' AND c.expires_at < ?1",
            )?,
            unreviewed: at_now(&format!(
                "SELECT count(*) FROM identities WHERE status = 'active' AND (last_reviewed_at IS NULL
                    OR last_reviewed_at < ?1 - coalesce(review_interval_days, {default_review_days}) * 86400)"
            ))?,
            unregistered_agents: plain(
                "SELECT count(*) FROM identities WHERE status = 'active' AND kind = 'ai_agent' AND registered = 0",
            )?,
            findings: plain("SELECT count(*) FROM findings")?,
            critical_findings: plain("SELECT count(*) FROM findings WHERE severity = 4")?,
            high_findings: plain("SELECT count(*) FROM findings WHERE severity = 3")?,
        })
    }

    /// Counts as of `at` (seconds since the epoch).
    pub fn posture_counts_at(&self, at: i64) -> Result<PastPostureCounts> {
        let q = |sql: &str| -> Result<i64> { self.db.query_row(sql, [at], |r| r.get(0)) };
        let alive = "i.created_at <= ?1 AND i.status <> 'deleted'";
        Ok(PastPostureCounts {
            nhis: q(&format!("SELECT count(*) FROM identities i WHERE {alive}"))?,
            ai_agents: q(&format!(
                "SELECT count(*) FROM identities i WHERE {alive} AND i.kind = 'ai_agent'"
            ))?,
            owned: q(&format!(
                "SELECT count(*) FROM identities i JOIN people p ON p.id = i.owner_id
                 WHERE {alive} AND (p.status = 'active' OR (p.left_at IS NOT NULL AND p.left_at > ?1))"
            ))?,
            never_expiring: q(&format!(
                "SELECT count(*) FROM credentials c JOIN identities i ON i.id = c.identity_id
                 WHERE {alive} AND c.created_at <= ?1 AND c.expires_at IS NULL AND {SECRETS}"
            ))?,
            expired_credentials: q(&format!(
                "SELECT count(*) FROM credentials c JOIN identities i ON i.id = c.identity_id
                 WHERE {alive} AND c.created_at <= ?1 AND c.expires_at < ?1"
            ))?,
            unregistered_agents: q(&format!(
                "SELECT count(*) FROM identities i WHERE {alive} AND i.kind = 'ai_agent' AND i.registered = 0"
            ))?,
        })
    }

    /// The newest `limit` posture snapshots, oldest first.
    pub fn posture_snapshots(&self, limit: i64) -> Result<Vec<PostureSnapshotRow>> {
        self.db.query_map(
            "SELECT at, origin, figures FROM (SELECT * FROM posture_snapshots ORDER BY at DESC, id DESC LIMIT ?1) AS s ORDER BY at, id",
            [limit],
            |r| {
                Ok(PostureSnapshotRow {
                    at: r.get(0)?,
                    origin: r.get(1)?,
                    figures_json: r.get(2)?,
                })
            },
        )
    }

    /// Findings grouped by check, most severe first, then most common.
    pub fn finding_counts_by_check(&self) -> Result<Vec<CheckFindingCount>> {
        self.db.query_map(
            "SELECT check_id, owasp, severity, title, fix, count(DISTINCT identity_id) FROM findings
             GROUP BY check_id, owasp, severity, title, fix ORDER BY severity DESC, 6 DESC",
            [],
            |r| {
                Ok(CheckFindingCount {
                    check_id: r.get(0)?,
                    owasp: r.get(1)?,
                    severity_rank: r.get(2)?,
                    title: r.get(3)?,
                    fix: r.get(4)?,
                    identities: r.get(5)?,
                })
            },
        )
    }

    /// Every finding of an active identity, as (identity id, check id,
    /// severity rank): the small keys the "fix first" ranking orders.
    pub fn active_finding_keys(&self) -> Result<Vec<(i64, String, i64)>> {
        self.db.query_map(
            "SELECT f.identity_id, f.check_id, f.severity FROM findings f
             JOIN identities i ON i.id = f.identity_id WHERE i.status = 'active'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
    }

    /// The evidence of one identity's finding of one check.
    pub fn finding_evidence(&self, identity_id: i64, check_id: &str) -> Result<Option<String>> {
        Ok(self
            .db
            .query_map(
                "SELECT evidence FROM findings WHERE identity_id = ?1 AND check_id = ?2 LIMIT 1",
                super::db::params![identity_id, check_id],
                |r| r.get(0),
            )?
            .into_iter()
            .next())
    }
}
