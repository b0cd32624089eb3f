//! `--reviews`: an access review over a generated organisation: create a
//! campaign of every identity with its grants and credentials, record 10,000
//! decisions in bulk batches as the busiest reviewers, close by
//! recommendation, and export the evidence (`--reviews-identities`: the
//! campaign of one item per identity, created, closed and exported).

use std::time::Instant;

use chrono::{Duration, Utc};
use custodian::campaigns::*;
use custodian::demo::{DemoSize, DEFAULT_SEED};
use custodian::error::Result;

use super::target::Target;
use super::{peak_rss_mib, Report};

pub fn run_reviews(size: DemoSize, target: &Target, identities_only: bool) -> Result<Report> {
    let now = Utc::now();
    let mut lines = vec![format!(
        "## access review, size {} ({} identities), {}",
        size.as_str().to_uppercase(),
        size.identities(),
        target.engine.as_str()
    )];
    // The evidence export's directory (the store is the target's).
    let dir = std::env::temp_dir().join(format!(
        "custodian-bench-reviews-{}-{}",
        std::process::id(),
        size.as_str()
    ));
    std::fs::create_dir_all(&dir)?;
    let mut store = target.open()?;
    let t = Instant::now();
    custodian::ops::load_demo(&mut store, size, DEFAULT_SEED, now)?;
    lines.push(format!("load demo: {:.1}s", t.elapsed().as_secs_f64()));

    let owner = store.resolve_person("1")?;
    let fallback: i64 = store.raw_db().query_row(
        "SELECT id FROM people WHERE status = 'active' AND id > 1 ORDER BY id LIMIT 1",
        [],
        |r| r.get(0),
    )?;
    // Issue 19's goal: a campaign of one item per identity (100k at L,
    // Okta's per-campaign maximum) created in <= 1.5 s and closed in <= 3 s.
    // Every identity, owners as reviewers, due in 30 days.
    let campaign = |name: &str, granularity: Granularity| {
        owner_campaign(name, CampaignScope::default(), granularity, fallback, now)
    };
    let per_identity = campaign("Bench identity certification", Granularity::Identities);
    let t = Instant::now();
    let one = store.create_campaign(owner, &per_identity, now)?;
    let create_one_s = t.elapsed().as_secs_f64();
    let one_items = store.campaign(one, now)?.items;
    let t = Instant::now();
    let one_report = store.close_campaign(owner, one, UndecidedPolicy::Recommendation, now)?;
    let close_one_s = t.elapsed().as_secs_f64();
    lines.push(format!(
        "campaign of one item per identity: {one_items} items created in {create_one_s:.2}s (goal <= 1.5 s), closed by recommendation in {close_one_s:.2}s (goal <= 3 s; {} decided by policy, {} tasks)",
        one_report.decided_by_policy, one_report.tasks
    ));
    if identities_only {
        let (export_s, export_heap, bytes) = export(&store, one, &dir, &mut lines)?;
        let rss = peak_rss_mib();
        lines.push(format!("peak RSS {rss:.0} MiB"));
        let _ = std::fs::remove_dir_all(&dir);
        return Ok(Report {
            json: serde_json::json!({
                "bench": "reviews-identities", "size": size.as_str(), "engine": target.engine.as_str(),
                "items": one_items, "create_s": create_one_s, "close_s": close_one_s, "export_s": export_s,
                "export_heap_peak_mib": export_heap, "export_bytes": bytes, "peak_rss_mib": rss,
            }),
            lines,
        });
    }

    let c = campaign("Bench certification", Granularity::All);
    let t = Instant::now();
    let id = store.create_campaign(owner, &c, now)?;
    let create_s = t.elapsed().as_secs_f64();
    let items = store.campaign(id, now)?.items;
    lines.push(format!(
        "create campaign: {items} items in {create_s:.2}s = {:.0} items/s (identities + grants + credentials, with recommendations and reviewers)",
        items as f64 / create_s
    ));

    // 10,000 decisions: the busiest reviewers' queues, in batches of 500.
    let reviewers: Vec<(i64, i64)> = {
        let mut st = store.raw_db().prepare(
            "SELECT reviewer_id, count(*) FROM campaign_items WHERE campaign_id = ?1 GROUP BY reviewer_id ORDER BY 2 DESC",
        )?;
        let v = st
            .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<custodian::Result<Vec<_>>>()?;
        v
    };
    let t_queue = Instant::now();
    let first_page = store.review_queue(reviewers[0].0, &QueueQuery::default())?;
    let queue_ms = t_queue.elapsed().as_secs_f64() * 1000.0;
    lines.push(format!(
        "busiest reviewer's queue: {} items, first page in {queue_ms:.1} ms",
        first_page.total
    ));
    let mut decided = 0usize;
    let mut batches = 0;
    let t = Instant::now();
    'outer: for (reviewer, _) in &reviewers {
        loop {
            let page = store.review_queue(
                *reviewer,
                &QueueQuery {
                    limit: 500,
                    ..Default::default()
                },
            )?;
            if page.items.is_empty() {
                break;
            }
            let take = (10_000 - decided).min(page.items.len());
            let ids: Vec<_> = page.items[..take].iter().map(|i| i.id).collect();
            decided += store.decide(
                *reviewer,
                &DecisionInput {
                    items: ids,
                    decision: Decision::Keep,
                    justification: "certified in bulk (benchmark)".into(),
                    new_owner: None,
                    follow_recommendation: false,
                },
                now,
            )?;
            batches += 1;
            if decided >= 10_000 {
                break 'outer;
            }
        }
    }
    let decide_s = t.elapsed().as_secs_f64();
    lines.push(format!(
        "record {decided} decisions in {batches} bulk batches (queue read + decide): {decide_s:.2}s = {:.0} decisions/s",
        decided as f64 / decide_s
    ));

    let t = Instant::now();
    let report = store.close_campaign(owner, id, UndecidedPolicy::Recommendation, now)?;
    let close_s = t.elapsed().as_secs_f64();
    lines.push(format!(
        "close by recommendation: {} decided by policy, {} tasks in {close_s:.2}s",
        report.decided_by_policy, report.tasks
    ));
    let t = Instant::now();
    let v = store.verify_audit()?;
    lines.push(format!(
        "audit verify: {} entries in {:.2}s ({})",
        v.entries,
        t.elapsed().as_secs_f64(),
        if v.ok { "ok" } else { "BROKEN" }
    ));
    let (export_s, export_heap, bytes) = export(&store, id, &dir, &mut lines)?;
    let rss = peak_rss_mib();
    lines.push(format!("peak RSS {rss:.0} MiB"));
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Report {
        json: serde_json::json!({
            "bench": "reviews", "size": size.as_str(), "engine": target.engine.as_str(), "items": items,
            "identity_campaign_items": one_items, "identity_campaign_create_s": create_one_s,
            "identity_campaign_close_s": close_one_s, "create_s": create_s,
            "decisions": decided, "decide_s": decide_s, "queue_first_page_ms": queue_ms,
            "close_s": close_s, "tasks": report.tasks, "export_s": export_s,
            "export_heap_peak_mib": export_heap, "export_bytes": bytes, "peak_rss_mib": rss,
        }),
        lines,
    })
}

/// Exports a campaign's evidence: seconds, the export's own heap peak (MiB
/// above the heap at its start) and the bytes written. The export streams,
/// so the heap should not grow with the campaign.
fn export(
    store: &custodian::store::Store,
    id: CampaignId,
    dir: &std::path::Path,
    lines: &mut Vec<String>,
) -> Result<(f64, f64, u64)> {
    let heap_mark = super::heap::mark();
    let t = Instant::now();
    let files = custodian::ops::export_campaign(store, id, dir, Utc::now())?;
    let export_s = t.elapsed().as_secs_f64();
    let export_heap = super::heap::peak_above_mib(heap_mark);
    let bytes: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    lines.push(format!(
        "export evidence (CSV + JSON + HTML): {export_s:.1}s, {:.0} MiB written, heap peak {export_heap:.1} MiB above the start (goal: independent of size)",
        bytes as f64 / 1048576.0
    ));
    Ok((export_s, export_heap, bytes))
}

/// The benchmarks' campaign: owners review, `fallback` where there is
/// none, due in 30 days.
pub fn owner_campaign(
    name: &str,
    scope: CampaignScope,
    granularity: Granularity,
    fallback: i64,
    now: chrono::DateTime<Utc>,
) -> NewCampaign {
    NewCampaign {
        name: name.into(),
        description: String::new(),
        scope,
        granularity,
        reviewer_rule: ReviewerRule::Owner,
        named_reviewer: None,
        fallback_reviewer: fallback,
        second_reviewer: None,
        recurrence: Recurrence::None,
        start_at: None,
        due_at: (now + Duration::days(30)).to_rfc3339(),
    }
}
