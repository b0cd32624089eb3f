//! `--blast`: the access graph over a generated organisation: build it,
//! compute one agent's full blast radius (chains, resources, explanation),
//! rank every identity, who-can-reach for a critical resource, paths to admin.

use std::time::Instant;

use chrono::Utc;
use custodian::blast::Graph;
use custodian::demo::{DemoSize, DEFAULT_SEED};
use custodian::error::Result;
use custodian::store::Store;

use super::{peak_rss_mib, Report};

pub fn run_blast(size: DemoSize) -> Result<Report> {
    let now = Utc::now();
    let mut lines = vec![format!(
        "## blast radius, size {} ({} identities)",
        size.as_str().to_uppercase(),
        size.identities()
    )];
    let mut store = Store::open_in_memory()?;
    custodian::ops::load_demo(&mut store, size, DEFAULT_SEED, now)?;
    let t = Instant::now();
    let g = Graph::load(&store)?;
    let build_s = t.elapsed().as_secs_f64();
    let (edges, grants): (i64, i64) = store.raw_db().query_row(
        "SELECT (SELECT count(*) FROM delegations), (SELECT count(*) FROM grants)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    lines.push(format!(
        "graph build: {} identities, {edges} delegation edges, {grants} grants in {build_s:.2}s",
        g.identities()
    ));
    // The agent with the longest delegation chain out.
    let agent: i64 = store.raw_db().query_row(
        "SELECT i.id FROM identities i WHERE i.kind = 'ai_agent' AND i.status = 'active'
         ORDER BY (SELECT count(*) FROM delegations d WHERE d.from_id = i.id) DESC, i.id LIMIT 1",
        [],
        |r| r.get(0),
    )?;
    let t = Instant::now();
    let b = g.blast(agent)?;
    let one_ms = t.elapsed().as_secs_f64() * 1000.0;
    lines.push(format!(
        "one agent's blast radius ({}): score {:.0}, {} identities and {} resources in reach, {} high-consequence actions, in {one_ms:.2} ms",
        b.name,
        b.score,
        b.reachable.len(),
        b.resources.len(),
        b.high_consequence.len()
    ));
    let agents: Vec<i64> = {
        let mut st = store
            .raw_db()
            .prepare("SELECT id FROM identities WHERE kind = 'ai_agent' AND status = 'active'")?;
        let v = st
            .query_map([], |r| r.get(0))?
            .collect::<custodian::Result<Vec<_>>>()?;
        v
    };
    let t = Instant::now();
    let mut total = 0.0;
    for a in &agents {
        total += g.blast(*a)?.score;
    }
    let all_agents_s = t.elapsed().as_secs_f64();
    lines.push(format!(
        "full blast radius of all {} agents: {all_agents_s:.2}s (mean score {:.0})",
        agents.len(),
        total / agents.len().max(1) as f64
    ));
    let t = Instant::now();
    let rank = g.rank(usize::MAX);
    let rank_s = t.elapsed().as_secs_f64();
    lines.push(format!(
        "rank every active identity by score ({}): {rank_s:.2}s",
        rank.len()
    ));
    let resource: i64 = store.raw_db().query_row(
        "SELECT r.id FROM resources r WHERE r.sensitivity = 'critical' ORDER BY (SELECT count(*) FROM grants g WHERE g.resource_id = r.id) DESC LIMIT 1",
        [],
        |r| r.get(0),
    )?;
    let t = Instant::now();
    let who = g.who_can_reach(resource)?;
    lines.push(format!(
        "who can reach the busiest critical resource: {} identities in {:.1} ms",
        who.len(),
        t.elapsed().as_secs_f64() * 1000.0
    ));
    let t = Instant::now();
    let paths = g.paths_to_admin(usize::MAX);
    lines.push(format!(
        "paths to admin on critical resources through delegation: {} identities in {:.2}s",
        paths.len(),
        t.elapsed().as_secs_f64()
    ));
    let rss = peak_rss_mib();
    lines.push(format!("peak RSS {rss:.0} MiB"));
    Ok(Report {
        json: serde_json::json!({
            "bench": "blast", "size": size.as_str(), "build_s": build_s, "one_ms": one_ms, "all_agents_s": all_agents_s,
            "agents": agents.len(), "rank_s": rank_s, "peak_rss_mib": rss,
        }),
        lines,
    })
}
