//! `--scale`: what one organisation size costs end to end on one engine,
//! loaded once: the demo load and its derived data (findings, every blast
//! radius ranked), the store's size, the inventory's named queries on a cold
//! connection, the posture page, the access graph with the blast radius of
//! every active agent, and one campaign of about 100k items (Okta's
//! per-campaign maximum) created and closed. Run at L and XL on both engines
//! (`--scale --sizes l,xl --engines sqlite,postgres`), it tells which sizes
//! fit one desktop and which want the team workspace.

use std::time::Instant;

use chrono::Utc;
use custodian::blast::Graph;
use custodian::campaigns::*;
use custodian::demo::{generate, DemoSize, DEFAULT_SEED};
use custodian::error::Result;
use custodian::model::IdentityKind;

use super::target::Target;
use super::{ms, peak_rss_mib, percentile, Report};

/// Runs of each inventory query (a cold connection's first run included).
const RUNS: usize = 5;

pub fn run_scale(size: DemoSize, target: &Target) -> Result<Report> {
    let now = Utc::now();
    let mut lines = vec![format!(
        "## scale, size {} ({} identities) on {}",
        size.as_str().to_uppercase(),
        size.identities(),
        target.engine.as_str()
    )];
    let mut json = serde_json::Map::new();
    let mut note = |k: &str, v: serde_json::Value| {
        json.insert(k.to_string(), v);
    };

    let t = Instant::now();
    let org = generate(size, DEFAULT_SEED, now);
    let generate_s = t.elapsed().as_secs_f64();
    let rss_generate = peak_rss_mib();
    let mut store = target.open()?;
    let t = Instant::now();
    let counts = store.replace_org(&org, now)?;
    let load_s = t.elapsed().as_secs_f64();
    drop(org);
    // What a sync does after writing (the demo load does it before its
    // sort indexes): every blast radius ranked and kept.
    let t = Instant::now();
    custodian::posture::record(&store, "load", now)?;
    let record_s = t.elapsed().as_secs_f64();
    let rss_load = peak_rss_mib();
    let store_mib = target.size_mib(&store);
    let rows = counts.total_rows();
    lines.push(format!(
        "generate {generate_s:.1}s (peak RSS {rss_generate:.0} MiB); load {rows} rows ({} identities, {} grants, {} findings) in {load_s:.1}s = {:.0} rows/s; posture record (all blast radii) {record_s:.1}s; peak RSS {rss_load:.0} MiB; store {store_mib:.0} MiB",
        counts.identities,
        counts.grants,
        counts.findings,
        rows as f64 / load_s
    ));
    note("generate_s", generate_s.into());
    note("load_s", load_s.into());
    note("rows", rows.into());
    note("record_s", record_s.into());
    note("store_mib", store_mib.into());

    // A cold connection, as the app opens it.
    drop(store);
    let t = Instant::now();
    let mut store = target.open()?;
    let open_ms = ms(t.elapsed());
    let mut queries = vec![];
    let mut worst: f64 = 0.0;
    for (name, q) in super::inventory::standard(size.identities()) {
        let mut times = Vec::with_capacity(RUNS);
        let mut total = 0;
        for _ in 0..RUNS {
            let t = Instant::now();
            total = store.inventory(&q, now)?.total;
            times.push(t.elapsed());
        }
        let first = ms(times[0]);
        times.sort();
        let p50 = ms(percentile(&times, 0.5));
        worst = worst.max(ms(percentile(&times, 0.95)));
        lines.push(format!(
            "  inventory {name}: first {first:.1} ms, median {p50:.1} ms ({total} matches)"
        ));
        queries.push(serde_json::json!({"query": name, "first_ms": first, "median_ms": p50}));
    }
    let t = Instant::now();
    store.inventory_facets()?;
    let facets_ms = ms(t.elapsed());
    let t = Instant::now();
    custodian::ops::posture(&store, now)?;
    let posture_ms = ms(t.elapsed());
    lines.push(format!(
        "open {open_ms:.0} ms; worst inventory p95 {worst:.1} ms; facets {facets_ms:.0} ms; posture page {posture_ms:.0} ms"
    ));
    note("open_ms", open_ms.into());
    note("inventory", queries.into());
    note("facets_ms", facets_ms.into());
    note("posture_ms", posture_ms.into());

    let t = Instant::now();
    let g = Graph::load(&store)?;
    let graph_s = t.elapsed().as_secs_f64();
    let rss_graph = peak_rss_mib();
    let mut agents: Vec<i64> = vec![];
    store.raw_db().for_each(
        "SELECT id FROM identities WHERE kind = 'ai_agent' AND status = 'active' ORDER BY id",
        [],
        |r| {
            agents.push(r.get(0)?);
            Ok(())
        },
    )?;
    let t = Instant::now();
    let mut reach = 0usize;
    for a in &agents {
        reach += g.blast(*a)?.reachable.len();
    }
    let blast_s = t.elapsed().as_secs_f64();
    drop(g);
    lines.push(format!(
        "graph build {graph_s:.1}s (peak RSS {rss_graph:.0} MiB); blast radius of all {} active agents {blast_s:.1}s ({:.2} ms each, {:.1} identities in reach on average)",
        agents.len(),
        blast_s * 1000.0 / agents.len().max(1) as f64,
        reach as f64 / agents.len().max(1) as f64
    ));
    note("graph_s", graph_s.into());
    note("agents", agents.len().into());
    note("blast_all_s", blast_s.into());

    // One campaign of about 100k identities: the whole organisation up to
    // L, its API keys (a tenth) beyond.
    let owner = store.resolve_person("1")?;
    let fallback: i64 = store.raw_db().query_row(
        "SELECT id FROM people WHERE status = 'active' AND id > 1 ORDER BY id LIMIT 1",
        [],
        |r| r.get(0),
    )?;
    let scope = if size.identities() > 150_000 {
        CampaignScope {
            kinds: vec![IdentityKind::ApiKey],
            ..Default::default()
        }
    } else {
        CampaignScope::default()
    };
    let campaign = super::reviews::owner_campaign(
        "Scale certification",
        scope,
        Granularity::Identities,
        fallback,
        now,
    );
    let t = Instant::now();
    let id = store.create_campaign(owner, &campaign, now)?;
    let create_s = t.elapsed().as_secs_f64();
    let items = store.campaign(id, now)?.items;
    let t = Instant::now();
    let report = store.close_campaign(owner, id, UndecidedPolicy::Recommendation, now)?;
    let close_s = t.elapsed().as_secs_f64();
    let rss_end = peak_rss_mib();
    lines.push(format!(
        "campaign of {items} items: created {create_s:.1}s, closed by recommendation {close_s:.1}s ({} tasks); peak RSS {rss_end:.0} MiB",
        report.tasks
    ));
    note("campaign_items", items.into());
    note("campaign_create_s", create_s.into());
    note("campaign_close_s", close_s.into());
    note(
        "peak_rss_mib",
        serde_json::json!({"generate": rss_generate, "load": rss_load, "graph": rss_graph, "end": rss_end}),
    );
    note("bench", "scale".into());
    note("size", size.as_str().into());
    note("engine", target.engine.as_str().into());
    Ok(Report {
        json: serde_json::Value::Object(json),
        lines,
    })
}
