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
        // Three passes, one per table, each counting all its figures at
        // once (sum of CASE), instead of one scan per figure: the posture
        // page reads these on every visit.
        let c = &self.db;
        let (nhis, ai_agents, owned, unreviewed, unregistered_agents) = c.query_row(
            &format!(
                "SELECT count(*),
                    coalesce(sum(CASE WHEN i.kind = 'ai_agent' THEN 1 ELSE 0 END), 0),
                    coalesce(sum(CASE WHEN i.owner_state = 'owned' AND NOT EXISTS (
                        SELECT 1 FROM owner_overrides o WHERE o.identity_id = i.id AND o.kind = 'temporary' AND o.until < ?1)
                      THEN 1 ELSE 0 END), 0),
                    coalesce(sum(CASE WHEN i.last_reviewed_at IS NULL
                        OR i.last_reviewed_at < ?1 - coalesce(i.review_interval_days, {default_review_days}) * 86400
                      THEN 1 ELSE 0 END), 0),
                    coalesce(sum(CASE WHEN i.kind = 'ai_agent' AND i.registered = 0 THEN 1 ELSE 0 END), 0)
                 FROM identities i WHERE i.status = 'active'"
            ),
            [now],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )?;
        // The thresholds are numbers, written into the SQL as before.
        let (stale_credentials, never_expiring, expired_credentials) = c.query_row(
            &format!(
                "SELECT coalesce(sum(CASE WHEN c.last_used_at IS NULL OR c.last_used_at < ?1 - {stale_days} * 86400 THEN 1 ELSE 0 END), 0),
                    coalesce(sum(CASE WHEN c.expires_at IS NULL AND {SECRETS} THEN 1 ELSE 0 END), 0),
                    coalesce(sum(CASE WHEN c.expires_at < ?1 THEN 1 ELSE 0 END), 0)
                 FROM credentials c JOIN identities i ON i.id = c.identity_id
                 WHERE i.status = 'active'"
            ),
            [now],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let (findings, critical_findings, high_findings) = c.query_row(
            "SELECT count(*),
                coalesce(sum(CASE WHEN severity = 4 THEN 1 ELSE 0 END), 0),
                coalesce(sum(CASE WHEN severity = 3 THEN 1 ELSE 0 END), 0)
             FROM findings",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        Ok(PostureCounts {
            nhis,
            ai_agents,
            owned,
            stale_credentials,
            never_expiring,
            expired_credentials,
            unreviewed,
            unregistered_agents,
            findings,
            critical_findings,
            high_findings,
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
            // Counted on the (check, severity, identity) index; the words of
            // each group from one of its rows (a check's title and fix are
            // its own, the same on every finding).
            "SELECT g.check_id, f.owasp, g.severity, f.title, f.fix, g.n FROM (
                SELECT check_id, severity, count(DISTINCT identity_id) AS n, min(id) AS one
                FROM findings GROUP BY check_id, severity) AS g
             JOIN findings f ON f.id = g.one
             ORDER BY g.severity DESC, g.n DESC, g.check_id",
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

    /// Keeps each identity's blast radius (score, identities and resources
    /// in reach, high-consequence actions) as ranked after a write to the
    /// access graph; identities left out (not active) are cleared. Only
    /// rows whose figures change are written.
    pub fn set_blast_scores(&self, scores: &[StoredBlast]) -> Result<()> {
        let tx = self.db.transaction()?;
        let real = match tx.engine() {
            super::db::Engine::Sqlite => "REAL",
            super::db::Engine::Postgres => "DOUBLE PRECISION",
        };
        tx.execute_batch(&format!(
            "CREATE TEMP TABLE IF NOT EXISTS blast_now (id BIGINT PRIMARY KEY, score {real}, reach BIGINT,
                 res BIGINT, high BIGINT);
             DELETE FROM blast_now;"
        ))?;
        // Several rows a statement: one round trip each on PostgreSQL.
        for chunk in scores.chunks(400) {
            let marks = vec!["(?, ?, ?, ?, ?)"; chunk.len()].join(", ");
            let mut args: Vec<super::db::Value> = Vec::with_capacity(chunk.len() * 5);
            for b in chunk {
                args.extend([
                    super::db::Value::Int(b.identity_id),
                    super::db::Value::Real(b.score),
                    super::db::Value::Int(b.reachable_identities),
                    super::db::Value::Int(b.resources),
                    super::db::Value::Int(b.high_consequence),
                ]);
            }
            tx.execute(
                &format!("INSERT INTO blast_now(id, score, reach, res, high) VALUES {marks}"),
                super::db::params_from_iter(args.iter()),
            )?;
        }
        tx.execute_batch(
            "UPDATE identities SET blast_score = b.score, blast_reach = b.reach, blast_resources = b.res,
                 blast_high = b.high
             FROM blast_now b
             WHERE b.id = identities.id
               AND (identities.blast_score IS DISTINCT FROM b.score OR identities.blast_reach IS DISTINCT FROM b.reach
                    OR identities.blast_resources IS DISTINCT FROM b.res OR identities.blast_high IS DISTINCT FROM b.high);
             UPDATE identities SET blast_score = NULL, blast_reach = NULL, blast_resources = NULL, blast_high = NULL
             WHERE blast_score IS NOT NULL AND id NOT IN (SELECT id FROM blast_now);
             DELETE FROM blast_now;",
        )?;
        tx.commit()
    }

    /// Whether blast radii are stored for the active identities (none yet
    /// after the upgrade that added them, before the next sync).
    pub fn blast_scores_stored(&self) -> Result<bool> {
        let missing: Option<i64> = self.db.query_opt(
            &format!(
                "SELECT id FROM identities WHERE {} = 'active' AND blast_score IS NULL LIMIT 1",
                self.db.engine().no_index("status")
            ),
            [],
            |r| r.get(0),
        )?;
        Ok(missing.is_none())
    }

    /// The `limit` active identities with the largest stored blast radius,
    /// largest first (equal scores by name).
    pub fn top_blast(&self, limit: i64) -> Result<Vec<StoredBlastRank>> {
        self.db.query_map(
            &format!(
                "SELECT id, name, kind, blast_score, blast_reach, blast_resources, blast_high FROM identities
                 WHERE {} = 'active' AND blast_score IS NOT NULL ORDER BY blast_score DESC, name LIMIT ?1",
                self.db.engine().no_index("status")
            ),
            [limit],
            stored_rank,
        )
    }

    /// Active identities whose stored blast score is at least `min`.
    pub fn count_blast_at_least(&self, min: f64) -> Result<i64> {
        self.db.query_row(
            &format!(
                "SELECT count(*) FROM identities WHERE {} = 'active' AND blast_score >= ?1",
                self.db.engine().no_index("status")
            ),
            [min],
            |r| r.get(0),
        )
    }

    /// Every finding of an active identity whose stored blast score is at
    /// least `min`: (identity id, check id, severity rank, score).
    pub fn finding_keys_blast_at_least(&self, min: f64) -> Result<Vec<(i64, String, i64, f64)>> {
        self.db.query_map(
            &format!(
                "SELECT f.identity_id, f.check_id, f.severity, i.blast_score FROM identities i
                 JOIN findings f ON f.identity_id = i.id
                 WHERE i.blast_score >= ?1 AND {} = 'active'",
                self.db.engine().no_index("i.status")
            ),
            [min],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
    }

    /// The stored blast radius of these identities (those without one are
    /// left out).
    pub fn blast_of(&self, ids: &[i64]) -> Result<Vec<StoredBlastRank>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let marks = vec!["?"; chunk.len()].join(",");
            out.extend(self.db.query_map(
                &format!(
                    "SELECT id, name, kind, blast_score, blast_reach, blast_resources, blast_high FROM identities
                     WHERE blast_score IS NOT NULL AND id IN ({marks})"
                ),
                super::db::params_from_iter(chunk.iter()),
                stored_rank,
            )?);
        }
        Ok(out)
    }
}

/// One identity's blast radius as the posture keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredBlast {
    pub identity_id: i64,
    pub score: f64,
    pub reachable_identities: i64,
    pub resources: i64,
    pub high_consequence: i64,
}

/// A stored blast radius with the identity's name and kind.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredBlastRank {
    pub identity_id: i64,
    pub name: String,
    pub kind: crate::model::IdentityKind,
    pub score: f64,
    pub reachable_identities: i64,
    pub resources: i64,
    pub high_consequence: i64,
}

fn stored_rank(r: &super::db::Row<'_>) -> Result<StoredBlastRank> {
    Ok(StoredBlastRank {
        identity_id: r.get(0)?,
        name: r.get(1)?,
        kind: r.get(2)?,
        score: r.get(3)?,
        reachable_identities: r.get::<Option<i64>>(4)?.unwrap_or(0),
        resources: r.get::<Option<i64>>(5)?.unwrap_or(0),
        high_consequence: r.get::<Option<i64>>(6)?.unwrap_or(0),
    })
}
