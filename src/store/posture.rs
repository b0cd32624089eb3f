//! The facts the posture view is made of: counts over identities,
//! credentials and findings now (`posture_counts`) and as of a past time
//! from the dates the cache holds (`posture_counts_at_each`), the stored posture
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

/// What an identity's past posture depends on: its creation, whether it
/// is an (unregistered) agent, and its owner's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PastIdentity {
    pub created_at: i64,
    pub agent: bool,
    pub unregistered_agent: bool,
    /// Has an owner who is active now.
    pub owner_active: bool,
    /// When an owner who is no longer active left (unknown: `None`).
    pub owner_left_at: Option<i64>,
}

/// What a credential's past posture depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PastCredential {
    /// Its identity's creation.
    pub identity_created_at: i64,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    /// Not a certificate or federated credential.
    pub secret: bool,
}

/// The counts as of `at`: an identity counts once it was created; it was
/// owned then if its owner is still active or left after `at`; a credential
/// counts once both it and its identity existed, as never expiring (a
/// secret without an expiry) or as expired by then.
pub fn past_counts(
    identities: &[PastIdentity],
    credentials: &[PastCredential],
    at: i64,
) -> PastPostureCounts {
    let mut c = PastPostureCounts::default();
    for i in identities.iter().filter(|i| i.created_at <= at) {
        c.nhis += 1;
        c.ai_agents += i64::from(i.agent);
        c.unregistered_agents += i64::from(i.unregistered_agent);
        c.owned += i64::from(i.owner_active || i.owner_left_at.is_some_and(|left| left > at));
    }
    for k in credentials
        .iter()
        .filter(|k| k.identity_created_at <= at && k.created_at <= at)
    {
        match k.expires_at {
            None => c.never_expiring += i64::from(k.secret),
            Some(e) => c.expired_credentials += i64::from(e < at),
        }
    }
    c
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

    /// Counts as of each of `ats` (seconds since the epoch), in their order.
    ///
    /// One pass over identities and one over credentials, whatever the
    /// number of times: the dated facts are read once (a few integers a
    /// row) and counted for every time in [`past_counts`]. A demo load
    /// reconstructs 12 weeks; one scan per figure and week took about a
    /// third of an L load.
    pub fn posture_counts_at_each(&self, ats: &[i64]) -> Result<Vec<PastPostureCounts>> {
        if ats.is_empty() {
            return Ok(Vec::new());
        }
        let identities = self.db.query_map(
            "SELECT i.created_at,
                    CASE WHEN i.kind = 'ai_agent' THEN 1 ELSE 0 END,
                    CASE WHEN i.kind = 'ai_agent' AND i.registered = 0 THEN 1 ELSE 0 END,
                    CASE WHEN p.id IS NULL THEN 0 WHEN p.status = 'active' THEN 1 ELSE 0 END,
                    CASE WHEN p.id IS NULL OR p.status = 'active' THEN NULL ELSE p.left_at END
             FROM identities i LEFT JOIN people p ON p.id = i.owner_id
             WHERE i.status <> 'deleted'",
            [],
            |r| {
                Ok(PastIdentity {
                    created_at: r.get(0)?,
                    agent: r.get::<i64>(1)? != 0,
                    unregistered_agent: r.get::<i64>(2)? != 0,
                    owner_active: r.get::<i64>(3)? != 0,
                    owner_left_at: r.get(4)?,
                })
            },
        )?;
        let credentials = self.db.query_map(
            &format!(
                "SELECT i.created_at, c.created_at, c.expires_at,
                        CASE WHEN {SECRETS} THEN 1 ELSE 0 END
                 FROM credentials c JOIN identities i ON i.id = c.identity_id
                 WHERE i.status <> 'deleted'"
            ),
            [],
            |r| {
                Ok(PastCredential {
                    identity_created_at: r.get(0)?,
                    created_at: r.get(1)?,
                    expires_at: r.get(2)?,
                    secret: r.get::<i64>(3)? != 0,
                })
            },
        )?;
        Ok(ats
            .iter()
            .map(|&at| past_counts(&identities, &credentials, at))
            .collect())
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
        tx.analyze("blast_now")?;
        // NOT EXISTS, not NOT IN: PostgreSQL hashes a NOT IN list only
        // while it fits in work_mem, and past that (about 100k ids) scans
        // it once per identity.
        tx.execute_batch(
            "UPDATE identities SET blast_score = b.score, blast_reach = b.reach, blast_resources = b.res,
                 blast_high = b.high
             FROM blast_now b
             WHERE b.id = identities.id
               AND (identities.blast_score IS DISTINCT FROM b.score OR identities.blast_reach IS DISTINCT FROM b.reach
                    OR identities.blast_resources IS DISTINCT FROM b.res OR identities.blast_high IS DISTINCT FROM b.high);
             UPDATE identities SET blast_score = NULL, blast_reach = NULL, blast_resources = NULL, blast_high = NULL
             WHERE blast_score IS NOT NULL AND NOT EXISTS (SELECT 1 FROM blast_now b WHERE b.id = identities.id);
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

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    fn identity(created_at: i64) -> PastIdentity {
        PastIdentity {
            created_at,
            owner_active: true,
            ..Default::default()
        }
    }

    #[test]
    fn an_identity_counts_from_its_creation_and_is_owned_until_its_owner_left() {
        let identities = [
            identity(0),
            PastIdentity {
                agent: true,
                unregistered_agent: true,
                ..identity(10 * DAY)
            },
            // Its owner left on day 5: owned before, orphaned after.
            PastIdentity {
                owner_active: false,
                owner_left_at: Some(5 * DAY),
                ..identity(0)
            },
            // An owner who left at an unknown time, or no owner: never owned.
            PastIdentity {
                owner_active: false,
                ..identity(0)
            },
        ];
        let day = |d: i64| past_counts(&identities, &[], d * DAY);
        let before = day(-1);
        assert_eq!(before, PastPostureCounts::default());
        let d4 = day(4);
        assert_eq!((d4.nhis, d4.owned, d4.ai_agents), (3, 2, 0));
        let d5 = day(5);
        assert_eq!((d5.nhis, d5.owned), (3, 1), "left at day 5: not owned then");
        let d10 = day(10);
        assert_eq!(
            (d10.nhis, d10.owned, d10.ai_agents, d10.unregistered_agents),
            (4, 2, 1, 1)
        );
    }

    #[test]
    fn a_credential_counts_once_it_and_its_identity_existed() {
        let secret = |identity_created_at, created_at, expires_at| PastCredential {
            identity_created_at,
            created_at,
            expires_at,
            secret: true,
        };
        let credentials = [
            secret(0, DAY, None),
            // Its identity came later than the credential's own date.
            secret(3 * DAY, 0, None),
            // A certificate without an expiry is no never-expiring secret.
            PastCredential {
                secret: false,
                ..secret(0, 0, None)
            },
            // Expired on day 2 (any kind counts as expired).
            PastCredential {
                secret: false,
                ..secret(0, 0, Some(2 * DAY))
            },
        ];
        let day = |d: i64| past_counts(&[], &credentials, d * DAY);
        assert_eq!((day(0).never_expiring, day(0).expired_credentials), (0, 0));
        assert_eq!((day(1).never_expiring, day(1).expired_credentials), (1, 0));
        assert_eq!(
            (day(2).never_expiring, day(2).expired_credentials),
            (1, 0),
            "expires at, not before"
        );
        assert_eq!((day(3).never_expiring, day(3).expired_credentials), (2, 1));
    }
}
