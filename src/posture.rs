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
use crate::store::posture::{
    CheckFindingCount, PastPostureCounts, PostureCounts, PostureSnapshotRow,
};
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
    /// What to fix first: findings ranked by severity × blast radius.
    pub fix_first: Vec<FixFirst>,
}

/// One finding on the "fix first" list: what it is, on whom, how far the
/// identity reaches, and the fix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct FixFirst {
    pub identity_id: i64,
    pub name: String,
    pub kind: crate::model::IdentityKind,
    pub check_id: String,
    pub severity: crate::model::Severity,
    pub title: String,
    pub evidence: String,
    pub fix: String,
    pub blast_score: f64,
    /// Severity weight × (1 + blast score), the order of the list.
    pub priority: f64,
}

/// How much a severity weighs in the "fix first" order: each step up
/// counts twice the one below (critical 8, high 4, medium 2, low 1).
pub fn severity_weight(s: crate::model::Severity) -> f64 {
    use crate::model::Severity;
    match s {
        Severity::Critical => 8.0,
        Severity::High => 4.0,
        Severity::Medium => 2.0,
        Severity::Low => 1.0,
    }
}

/// The smallest blast score an identity needs for one of its findings to
/// reach `priority` in [`rank_fixes`] (the heaviest severity weighs 8).
pub fn min_score_to_reach(priority: f64) -> f64 {
    priority / severity_weight(crate::model::Severity::Critical) - 1.0
}

/// Ranks findings (identity id, check id, severity) by severity weight ×
/// (1 + the identity's blast score), highest first; ties by severity, then
/// identity and check id, so the order is stable. Identities without a
/// score (not in the graph) count as reaching nothing.
pub fn rank_fixes(
    keys: &[(i64, String, crate::model::Severity)],
    blast: &std::collections::HashMap<i64, f64>,
    limit: usize,
) -> Vec<(i64, String, crate::model::Severity, f64)> {
    let mut v: Vec<(i64, String, crate::model::Severity, f64)> = keys
        .iter()
        .map(|(id, check, sev)| {
            let b = blast.get(id).copied().unwrap_or(0.0).max(0.0);
            (*id, check.clone(), *sev, severity_weight(*sev) * (1.0 + b))
        })
        .collect();
    v.sort_by(|a, b| {
        b.3.total_cmp(&a.3)
            .then(b.2.cmp(&a.2))
            .then(a.0.cmp(&b.0))
            .then(a.1.cmp(&b.1))
    });
    v.truncate(limit);
    v
}

/// The "fix first" list of the cache, from the graph's blast ranks.
pub fn fix_first(store: &Store, ranks: &[BlastRank], limit: usize) -> Result<Vec<FixFirst>> {
    let blast: std::collections::HashMap<i64, f64> =
        ranks.iter().map(|r| (r.identity_id, r.score)).collect();
    let keys: Vec<(i64, String, i64)> = store.active_finding_keys()?;
    let by_id: std::collections::HashMap<i64, (String, crate::model::IdentityKind, f64)> = ranks
        .iter()
        .map(|r| (r.identity_id, (r.name.clone(), r.kind, r.score)))
        .collect();
    fix_first_from(
        store,
        keys,
        &blast,
        |ids| {
            Ok(ids
                .iter()
                .filter_map(|id| by_id.get(id).map(|v| (*id, v.clone())))
                .collect())
        },
        limit,
    )
}

/// The "fix first" list from the blast radii stored at the last write to
/// the access graph: no graph is read.
pub fn fix_first_stored(store: &Store, limit: usize) -> Result<Vec<FixFirst>> {
    // Only the findings of identities that reach far enough can rank first:
    // start with those of the 50 reaching furthest, then widen to every
    // identity whose score could still reach the last place found.
    let top = store.top_blast(50)?;
    let mut min = match top.last() {
        Some(r) if top.len() == 50 => r.score,
        _ => f64::MIN,
    };
    let rows = loop {
        let rows = store.finding_keys_blast_at_least(min)?;
        let keys: Vec<(i64, String, crate::model::Severity)> = rows
            .iter()
            .map(|(id, c, sev, _)| {
                let s =
                    crate::model::Severity::from_rank(*sev).unwrap_or(crate::model::Severity::Low);
                (*id, c.clone(), s)
            })
            .collect();
        let blast: std::collections::HashMap<i64, f64> = rows.iter().map(|r| (r.0, r.3)).collect();
        let ranked = rank_fixes(&keys, &blast, limit);
        let need = match ranked.last() {
            Some(last) if ranked.len() == limit => min_score_to_reach(last.3),
            _ => f64::MIN,
        };
        if need >= min {
            break rows;
        }
        min = need;
    };
    let blast: std::collections::HashMap<i64, f64> = rows.iter().map(|r| (r.0, r.3)).collect();
    let keys = rows
        .into_iter()
        .map(|(id, check, sev, _)| (id, check, sev))
        .collect();
    fix_first_from(
        store,
        keys,
        &blast,
        |ids| {
            Ok(store
                .blast_of(ids)?
                .into_iter()
                .map(|r| (r.identity_id, (r.name, r.kind, r.score)))
                .collect())
        },
        limit,
    )
}

type Named = std::collections::HashMap<i64, (String, crate::model::IdentityKind, f64)>;

fn fix_first_from(
    store: &Store,
    keys: Vec<(i64, String, i64)>,
    blast: &std::collections::HashMap<i64, f64>,
    names: impl FnOnce(&[i64]) -> Result<Named>,
    limit: usize,
) -> Result<Vec<FixFirst>> {
    use crate::model::Severity;
    let keys: Vec<(i64, String, Severity)> = keys
        .into_iter()
        .map(|(id, check, rank)| {
            (
                id,
                check,
                Severity::from_rank(rank).unwrap_or(Severity::Low),
            )
        })
        .collect();
    let ranked = rank_fixes(&keys, blast, limit);
    let ids: Vec<i64> = ranked.iter().map(|r| r.0).collect();
    let named = names(&ids)?;
    let mut out = vec![];
    for (id, check_id, severity, priority) in ranked {
        let Some((name, kind, score)) = named.get(&id) else {
            continue;
        };
        let check = crate::findings::CHECKS.iter().find(|c| c.id == check_id);
        out.push(FixFirst {
            identity_id: id,
            name: name.clone(),
            kind: *kind,
            evidence: store.finding_evidence(id, &check_id)?.unwrap_or_default(),
            title: check.map(|c| c.title).unwrap_or_default().to_string(),
            fix: check.map(|c| c.fix).unwrap_or_default().to_string(),
            check_id,
            severity,
            blast_score: *score,
            priority,
        });
    }
    Ok(out)
}

/// Percentage with one decimal; 0 of nothing is 0.
fn share_pct(part: i64, whole: i64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        (part as f64 * 1000.0 / whole as f64).round() / 10.0
    }
}

/// The figures from the counts now and the high-blast count (when the
/// graph was loaded).
pub fn figures_from(c: &PostureCounts, high_blast: Option<i64>) -> PostureFigures {
    PostureFigures {
        nhis: c.nhis,
        ai_agents: c.ai_agents,
        owned: c.owned,
        owned_pct: share_pct(c.owned, c.nhis),
        orphaned: c.nhis - c.owned,
        stale_credentials: Some(c.stale_credentials),
        never_expiring: c.never_expiring,
        expired_credentials: c.expired_credentials,
        unreviewed: Some(c.unreviewed),
        unregistered_agents: c.unregistered_agents,
        high_blast,
        findings: c.findings,
        critical_findings: c.critical_findings,
        high_findings: c.high_findings,
    }
}

/// The figures of a reconstructed past: what the cache cannot tell about
/// the past (last use, reviews, blast radius) is `None`, findings 0.
pub fn figures_from_past(c: &PastPostureCounts) -> PostureFigures {
    PostureFigures {
        nhis: c.nhis,
        ai_agents: c.ai_agents,
        owned: c.owned,
        owned_pct: share_pct(c.owned, c.nhis),
        orphaned: c.nhis - c.owned,
        stale_credentials: None,
        never_expiring: c.never_expiring,
        expired_credentials: c.expired_credentials,
        unreviewed: None,
        unregistered_agents: c.unregistered_agents,
        high_blast: None,
        findings: 0,
        critical_findings: 0,
        high_findings: 0,
    }
}

/// Ranked identities whose blast-radius score is at least `HIGH_BLAST`.
pub fn high_blast_count(ranks: &[BlastRank]) -> i64 {
    ranks.iter().filter(|r| r.score >= HIGH_BLAST).count() as i64
}

/// Figures now, with the number of identities of high blast radius when
/// it is known.
pub fn figures(
    store: &Store,
    high_blast: Option<i64>,
    now: DateTime<Utc>,
) -> Result<PostureFigures> {
    let counts = store.posture_counts(now.timestamp(), STALE_DAYS, DEFAULT_REVIEW_DAYS)?;
    Ok(figures_from(&counts, high_blast))
}

/// Ranks every active identity's blast radius on `graph` and keeps the
/// figures on the identities, for the posture page and its "fix first":
/// called after each write to the access graph (a sync, a load, a
/// documented link).
pub fn record_blast(store: &Store, graph: &Graph) -> Result<Vec<BlastRank>> {
    let ranks = graph.rank(usize::MAX);
    let stored: Vec<crate::store::posture::StoredBlast> = ranks
        .iter()
        .map(|r| crate::store::posture::StoredBlast {
            identity_id: r.identity_id,
            score: r.score,
            reachable_identities: i64::from(r.reachable_identities),
            resources: i64::from(r.resources),
            high_consequence: i64::from(r.high_consequence),
        })
        .collect();
    store.set_blast_scores(&stored)?;
    Ok(ranks)
}

/// Recomputes the stored blast radii from the whole graph (after a write
/// to it outside a sync).
pub fn refresh_blast(store: &Store) -> Result<()> {
    record_blast(store, &Graph::load(store)?).map(|_| ())
}

/// Appends a snapshot of the figures now, and keeps every identity's blast
/// radius as of now.
pub fn record(store: &Store, origin: &str, now: DateTime<Utc>) -> Result<PostureFigures> {
    let t = std::time::Instant::now();
    let graph = Graph::load(store)?;
    let loaded = t.elapsed();
    let ranks = record_blast(store, &graph)?;
    let ranked = t.elapsed();
    let f = snapshot(store, origin, high_blast_count(&ranks), now)?;
    tracing::debug!(
        graph_ms = loaded.as_millis() as u64,
        blast_ms = (ranked - loaded).as_millis() as u64,
        figures_ms = (t.elapsed() - ranked).as_millis() as u64,
        "posture recorded"
    );
    Ok(f)
}

/// [`record`] after a sync: when it wrote nothing the access graph is made
/// of (`graph_changed` false), the blast radii stored at the last write
/// stand, and the snapshot counts them instead of ranking the whole graph
/// again (2.8 s at L on PostgreSQL, for a resync that changed nothing). A
/// cache without stored radii ranks as `record` does.
pub fn record_after_sync(
    store: &Store,
    graph_changed: bool,
    now: DateTime<Utc>,
) -> Result<PostureFigures> {
    if graph_changed || !store.blast_scores_stored()? {
        return record(store, "sync", now);
    }
    snapshot(store, "sync", store.count_blast_at_least(HIGH_BLAST)?, now)
}

/// Appends the figures now, with `high_blast` identities of high blast
/// radius, to the trend.
fn snapshot(
    store: &Store,
    origin: &str,
    high_blast: i64,
    now: DateTime<Utc>,
) -> Result<PostureFigures> {
    let f = figures(store, Some(high_blast), now)?;
    store.add_posture_snapshot(now.timestamp(), origin, &serde_json::to_string(&f)?)?;
    Ok(f)
}

/// Reconstructed weekly snapshots for the `weeks` before `now` (demo loads).
pub fn record_history(store: &Store, weeks: i64, now: DateTime<Utc>) -> Result<()> {
    let ats: Vec<i64> = (1..=weeks)
        .rev()
        .map(|w| (now - Duration::weeks(w)).timestamp())
        .collect();
    for (at, counts) in ats.iter().zip(store.posture_counts_at_each(&ats)?) {
        let f = figures_from_past(&counts);
        store.add_posture_snapshot(*at, "reconstructed", &serde_json::to_string(&f)?)?;
    }
    Ok(())
}

/// Snapshots as the trend shows them; one whose figures do not parse (an
/// older or damaged row) is left out.
pub fn snapshots_from(rows: Vec<PostureSnapshotRow>) -> Vec<PostureSnapshot> {
    rows.into_iter()
        .filter_map(|row| {
            serde_json::from_str(&row.figures_json)
                .ok()
                .map(|figures| PostureSnapshot {
                    at: chrono::DateTime::from_timestamp(row.at, 0)
                        .map(|t| t.to_rfc3339())
                        .unwrap_or_default(),
                    origin: row.origin,
                    figures,
                })
        })
        .collect()
}

pub fn trend(store: &Store, limit: i64) -> Result<Vec<PostureSnapshot>> {
    Ok(snapshots_from(store.posture_snapshots(limit)?))
}

/// A check's count with its OWASP category title; an unknown severity rank
/// reads as low.
pub fn finding_count_from(c: CheckFindingCount) -> FindingCount {
    FindingCount {
        owasp_title: crate::findings::owasp_title(&c.owasp).to_string(),
        check_id: c.check_id,
        owasp: c.owasp,
        severity: crate::model::Severity::from_rank(c.severity_rank)
            .unwrap_or(crate::model::Severity::Low),
        title: c.title,
        fix: c.fix,
        identities: c.identities,
    }
}

/// Findings grouped by check, most common first.
pub fn finding_counts(store: &Store) -> Result<Vec<FindingCount>> {
    Ok(store
        .finding_counts_by_check()?
        .into_iter()
        .map(finding_count_from)
        .collect())
}

pub fn view(store: &Store, now: DateTime<Utc>) -> Result<PostureView> {
    // The blast radii kept at the last write to the graph; a cache that has
    // none yet (upgraded, not synced since) ranks on the whole graph here.
    if !store.blast_scores_stored()? {
        let graph = Graph::load(store)?;
        let ranks = graph.rank(usize::MAX);
        return Ok(PostureView {
            at: now.to_rfc3339(),
            figures: figures(store, Some(high_blast_count(&ranks)), now)?,
            trend: trend(store, 104)?,
            findings: finding_counts(store)?,
            fix_first: fix_first(store, &ranks, 10)?,
            top_blast: ranks.into_iter().take(10).collect(),
        });
    }
    let top_blast = store
        .top_blast(10)?
        .into_iter()
        .map(|r| BlastRank {
            identity_id: r.identity_id,
            name: r.name,
            kind: r.kind,
            score: r.score,
            reachable_identities: u32::try_from(r.reachable_identities).unwrap_or(u32::MAX),
            resources: u32::try_from(r.resources).unwrap_or(u32::MAX),
            high_consequence: u32::try_from(r.high_consequence).unwrap_or(u32::MAX),
        })
        .collect();
    Ok(PostureView {
        at: now.to_rfc3339(),
        figures: figures(store, Some(store.count_blast_at_least(HIGH_BLAST)?), now)?,
        trend: trend(store, 104)?,
        findings: finding_counts(store)?,
        fix_first: fix_first_stored(store, 10)?,
        top_blast,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Severity;

    #[test]
    fn fixes_rank_by_severity_times_blast_radius() {
        use std::collections::HashMap;
        let keys = vec![
            (1, "unused-grants".to_string(), Severity::Low),
            (2, "admin-on-critical".to_string(), Severity::Critical),
            (3, "secret-never-expires".to_string(), Severity::Medium),
            (3, "no-owner".to_string(), Severity::High),
            (4, "no-owner".to_string(), Severity::High),
        ];
        // 1 reaches far; 2 reaches nothing; 3 and 4 reach a little.
        let blast = HashMap::from([(1, 999.0), (2, 0.0), (3, 9.0), (4, 9.0)]);
        let ranked = rank_fixes(&keys, &blast, 10);
        let got: Vec<(i64, &str, f64)> = ranked
            .iter()
            .map(|(id, c, _, p)| (*id, c.as_str(), *p))
            .collect();
        assert_eq!(
            got.iter().map(|(id, c, _)| (*id, *c)).collect::<Vec<_>>(),
            [
                (1, "unused-grants"),        // 1 × 1000
                (3, "no-owner"),             // 4 × 10, id 3 before 4
                (4, "no-owner"),             // 4 × 10
                (3, "secret-never-expires"), // 2 × 10
                (2, "admin-on-critical"),    // 8 × 1
            ]
        );
        assert_eq!(got[0].2, 1000.0);
        assert_eq!(rank_fixes(&keys, &blast, 2).len(), 2);
        // Without a score: reaches nothing; a negative score counts as 0.
        let none = rank_fixes(&keys[1..2], &HashMap::from([(2, -5.0)]), 1);
        assert_eq!(none[0].3, 8.0);
    }

    #[test]
    fn a_finding_reaches_a_priority_only_from_a_high_enough_score() {
        // A critical finding (8) on an identity of score 9 ranks 80: any
        // finding to rank above it needs a score of at least 9.
        assert_eq!(min_score_to_reach(80.0), 9.0);
        let keys = vec![(1, "x".to_string(), Severity::Critical)];
        let at = rank_fixes(&keys, &std::collections::HashMap::from([(1, 9.0)]), 1);
        assert_eq!(at[0].3, 80.0);
        assert!(min_score_to_reach(8.0) <= 0.0);
    }

    #[test]
    fn owned_share_and_orphans_from_counts() {
        let c = PostureCounts {
            nhis: 3,
            owned: 2,
            stale_credentials: 5,
            unreviewed: 1,
            ..Default::default()
        };
        let f = figures_from(&c, Some(1));
        assert_eq!(f.owned_pct, 66.7);
        assert_eq!(f.orphaned, 1);
        assert_eq!(f.stale_credentials, Some(5));
        assert_eq!(f.unreviewed, Some(1));
        assert_eq!(f.high_blast, Some(1));
        // Nothing to own: 0 %, not NaN.
        let empty = figures_from(&PostureCounts::default(), None);
        assert_eq!(empty.owned_pct, 0.0);
        assert_eq!(empty.high_blast, None);
    }

    #[test]
    fn reconstructed_figures_leave_out_what_the_past_does_not_tell() {
        let c = PastPostureCounts {
            nhis: 8,
            owned: 8,
            never_expiring: 2,
            ..Default::default()
        };
        let f = figures_from_past(&c);
        assert_eq!(f.owned_pct, 100.0);
        assert_eq!(f.orphaned, 0);
        assert_eq!(f.never_expiring, 2);
        assert_eq!(
            (f.stale_credentials, f.unreviewed, f.high_blast),
            (None, None, None)
        );
        assert_eq!(
            (f.findings, f.critical_findings, f.high_findings),
            (0, 0, 0)
        );
    }

    #[test]
    fn snapshots_skip_rows_whose_figures_do_not_parse() {
        let good = serde_json::to_string(&PostureFigures {
            nhis: 4,
            ..Default::default()
        })
        .unwrap_or_default();
        let rows = vec![
            PostureSnapshotRow {
                at: 0,
                origin: "load".into(),
                figures_json: good,
            },
            PostureSnapshotRow {
                at: 60,
                origin: "sync".into(),
                figures_json: "{not json".into(),
            },
        ];
        let s = snapshots_from(rows);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].at, "1970-01-01T00:00:00+00:00");
        assert_eq!(s[0].origin, "load");
        assert_eq!(s[0].figures.nhis, 4);
    }

    #[test]
    fn finding_counts_carry_the_owasp_title_and_read_unknown_ranks_as_low() {
        let row = |rank| CheckFindingCount {
            check_id: "secret-never-expires".into(),
            owasp: "NHI7".into(),
            severity_rank: rank,
            title: "Secret never expires".into(),
            fix: "Set an expiry".into(),
            identities: 3,
        };
        let f = finding_count_from(row(Severity::High.rank()));
        assert_eq!(f.owasp_title, "Long-Lived Secrets");
        assert_eq!(f.severity, Severity::High);
        assert_eq!(f.identities, 3);
        assert_eq!(finding_count_from(row(99)).severity, Severity::Low);
    }
}
