//! `--workspace` (PostgreSQL only): a team workspace under load. The demo
//! organisation at the given size, a workspace with an admin (the worker)
//! and 50 reviewer logins, a certification of every identity, then 50
//! concurrent reviewer connections decide up to 10,000 items (one decision
//! per transaction, through `ops::decide`, as their own logins, every
//! entry appended by the database under its advisory lock) while the
//! worker resyncs a CSV registry round after round. Reports decisions/s and
//! the latency percentiles of one decision. Logins and group roles are
//! dropped afterwards.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration as StdDuration, Instant};

use chrono::Utc;
use custodian::campaigns::*;
use custodian::demo::{DemoSize, DEFAULT_SEED};
use custodian::error::{Error, Result};
use custodian::store::pg::PgTarget;
use custodian::store::Store;
use custodian::workspace::{role_prefix, Role};

use super::{ms, peak_rss_mib, percentile, Report};

/// Reviewer connections (`CUSTODIAN_BENCH_REVIEWERS` overrides, to compare).
const REVIEWERS: usize = 50;
const DECISIONS: usize = 10_000;
const REGISTRY: usize = 2_000;

fn password() -> Result<String> {
    let mut b = [0u8; 16];
    getrandom::getrandom(&mut b).map_err(|e| Error::internal(e.to_string()))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

fn member_target(admin_url: &str, db: &str, login: &str, pw: &str) -> Result<PgTarget> {
    let mut u = url::Url::parse(admin_url).map_err(|e| Error::invalid(e.to_string()))?;
    u.set_username(login)
        .and_then(|_| u.set_password(Some(pw)))
        .map_err(|_| Error::invalid("the --pg URL cannot carry a login"))?;
    u.set_path(&format!("/{db}"));
    PgTarget::parse(u.as_str())
}

fn registry(path: &std::path::Path, round: usize) -> Result<()> {
    let mut body = String::from("name,kind,class,purpose,owner_email,team,environment,intended_blast_radius,review_interval_days,created_at,credential_kind,credential_name,credential_created_at,credential_expires_at\n");
    for k in 0..REGISTRY {
        // 1% of the rows change each round.
        let r = if k % 100 == round % 100 { round } else { 0 };
        body.push_str(&format!(
            "bench-agent-{k:05},ai_agent,digital_worker,Purpose {k} round {r},nobody@example.test,Ops,production,Reads tickets,90,2025-01-15,client_secret,secret-{k},2025-01-15,\n"
        ));
    }
    std::fs::write(path, body)?;
    Ok(())
}

/// Tops up each reviewer's queue to `per` undecided items with items of
/// other reviewers (before the workspace exists: the DBA's set-up).
fn spread_items(store: &Store, campaign: i64, reviewers: &[i64], per: usize) -> Result<()> {
    if reviewers.is_empty() {
        return Ok(());
    }
    let mut need: Vec<(i64, usize)> = Vec::new();
    for r in reviewers {
        let held: i64 = store.raw_db().query_row(
            "SELECT count(*) FROM campaign_items WHERE campaign_id = ?1 AND reviewer_id = ?2",
            custodian::store::db::params![campaign, r],
            |row| row.get(0),
        )?;
        need.push((*r, per.saturating_sub(held as usize)));
    }
    let wanted: usize = need.iter().map(|(_, n)| n).sum();
    let list = reviewers
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let spare: Vec<(i64, Option<i64>)> = store.raw_db().query_map(
        &format!(
            "SELECT ci.id, i.builder_id FROM campaign_items ci JOIN identities i ON i.id = ci.identity_id
             WHERE ci.campaign_id = ?1 AND ci.reviewer_id NOT IN ({list}) ORDER BY ci.id LIMIT ?2"
        ),
        custodian::store::db::params![campaign, (wanted * 2) as i64],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let mut moves: Vec<(i64, i64)> = Vec::new();
    let mut k = 0usize;
    for (item, builder) in spare {
        let Some(slot) = (0..need.len())
            .map(|j| (k + j) % need.len())
            .find(|j| need[*j].1 > 0 && Some(need[*j].0) != builder)
        else {
            continue;
        };
        need[slot].1 -= 1;
        moves.push((item, need[slot].0));
        k = slot + 1;
        if need.iter().all(|(_, n)| *n == 0) {
            break;
        }
    }
    for chunk in moves.chunks(1_000) {
        let values = chunk
            .iter()
            .map(|(i, r)| format!("({i}, {r})"))
            .collect::<Vec<_>>()
            .join(", ");
        store.raw_db().execute_batch(&format!(
            "UPDATE campaign_items SET reviewer_id = v.r, reviewer_reason = 'bench: dealt to this reviewer'
               FROM (VALUES {values}) AS v(id, r) WHERE campaign_items.id = v.id"
        ))?;
    }
    Ok(())
}

/// One sync of the worker's registry (no secret, no progress).
fn resync(store: &mut Store, source: custodian::model::SourceId) -> Result<()> {
    custodian::ops::sync_source(
        store,
        source,
        &custodian::sync::secrets::MemorySecrets::default(),
        Arc::new(|_: &custodian::sync::SyncProgress| {}),
        custodian::sync::http::Cancel::new(),
    )?;
    Ok(())
}

pub fn run_workspace(
    size: DemoSize,
    target: &super::target::Target,
    admin_url: &str,
) -> Result<Report> {
    let now = Utc::now();
    let Some(db) = target.pg_database() else {
        return Err(Error::invalid("--workspace needs --engines postgres"));
    };
    let reviewers = std::env::var("CUSTODIAN_BENCH_REVIEWERS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(REVIEWERS);
    let mut lines = vec![format!(
        "## team workspace, size {} ({} identities): {reviewers} reviewer connections",
        size.as_str().to_uppercase(),
        size.identities()
    )];
    let mut store = target.open()?;
    let t = Instant::now();
    custodian::ops::load_demo(&mut store, size, DEFAULT_SEED, now)?;
    store.raw_db().execute(
        "UPDATE meta SET value = 'bench-workspace' WHERE key = 'dataset'",
        [],
    )?;
    lines.push(format!("load demo: {:.1}s", t.elapsed().as_secs_f64()));

    let owner = store.resolve_person("1")?;
    let fallback: i64 = store.raw_db().query_row(
        "SELECT id FROM people WHERE status = 'active' AND id > 1 ORDER BY id LIMIT 1",
        [],
        |r| r.get(0),
    )?;
    let c = super::reviews::owner_campaign(
        "Bench workspace certification",
        CampaignScope::default(),
        Granularity::Identities,
        fallback,
        now,
    );
    let t = Instant::now();
    let campaign = store.create_campaign(owner, &c, now)?;
    let campaign_n: i64 = serde_json::to_value(campaign)?.as_i64().unwrap_or(0);
    lines.push(format!(
        "create campaign: {:.1}s",
        t.elapsed().as_secs_f64()
    ));

    // The busiest reviewers (not the worker's person) and their queues.
    let busiest: Vec<i64> = store.raw_db().query_map(
        "SELECT reviewer_id FROM campaign_items WHERE campaign_id = ?1 AND reviewer_id IS NOT NULL AND reviewer_id <> ?2
         GROUP BY reviewer_id ORDER BY count(*) DESC, reviewer_id LIMIT ?3",
        custodian::store::db::params![campaign_n, fallback, reviewers as i64],
        |r| r.get(0),
    )?;
    let per = DECISIONS.div_ceil(busiest.len().max(1));
    // Owners alone hold too few items at L (the 50 busiest: ~4,400), so
    // the first items of the campaign are dealt round-robin to the
    // reviewers until each holds `per` (never to an identity's builder:
    // the database refuses that decision), as a reassignment would.
    spread_items(&store, campaign_n, &busiest, per)?;
    let mut queues: Vec<(i64, Vec<ReviewItemId>)> = Vec::new();
    for r in &busiest {
        let items: Vec<i64> = store.raw_db().query_map(
            "SELECT id FROM campaign_items WHERE campaign_id = ?1 AND reviewer_id = ?2 ORDER BY id LIMIT ?3",
            custodian::store::db::params![campaign_n, r, per as i64],
            |r| r.get(0),
        )?;
        queues.push((*r, items.into_iter().map(ReviewItemId).collect()));
    }

    // Workspace, worker and reviewer logins.
    let prefix = role_prefix(&db)?;
    let pw = password()?;
    let tag = format!("cb{}", std::process::id());
    let worker = format!("{tag}_worker");
    let mut logins = vec![worker.clone()];
    store
        .raw_db()
        .execute_batch(&format!("CREATE ROLE {worker} LOGIN PASSWORD '{pw}'"))?;
    store.workspace_init(&prefix, &worker, fallback)?;
    let worker_target = member_target(admin_url, &db, &worker, &pw)?;
    let as_worker = Store::open_postgres(&worker_target)?;
    let mut targets = Vec::new();
    for (i, (person, _)) in queues.iter().enumerate() {
        let l = format!("{tag}_r{i}");
        store
            .raw_db()
            .execute_batch(&format!("CREATE ROLE {l} LOGIN PASSWORD '{pw}'"))?;
        logins.push(l.clone());
        as_worker.workspace_member_add(&l, *person, &[Role::Reviewer])?;
        targets.push(member_target(admin_url, &db, &l, &pw)?);
    }
    drop(as_worker);

    let result = (|| -> Result<Vec<String>> {
        let mut out = Vec::new();
        // The worker's CSV registry, resynced round after round meanwhile.
        let dir =
            std::env::temp_dir().join(format!("custodian-bench-workspace-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let csv = dir.join("registry.csv");
        registry(&csv, 0)?;
        let mut w = Store::open_postgres(&worker_target)?;
        let source = custodian::ops::add_source(
            &mut w,
            &custodian::sync::secrets::MemorySecrets::default(),
            "csv",
            "bench registry",
            serde_json::json!({"path": csv.display().to_string()}),
            None,
            Utc::now(),
        )?;
        let source = custodian::model::SourceId(source.id);
        resync(&mut w, source)?;
        let stop = Arc::new(AtomicBool::new(false));
        let start = Arc::new(Barrier::new(queues.len() + 2));
        let syncer = {
            let (stop, start, csv) = (stop.clone(), start.clone(), csv.clone());
            std::thread::spawn(move || -> Result<Vec<f64>> {
                let mut took = Vec::new();
                start.wait();
                let mut round = 1;
                // CUSTODIAN_BENCH_NO_RESYNC=1: the same load without the worker.
                let quiet = std::env::var_os("CUSTODIAN_BENCH_NO_RESYNC").is_some();
                while !quiet && !stop.load(Ordering::SeqCst) {
                    registry(&csv, round)?;
                    let t = Instant::now();
                    resync(&mut w, source)?;
                    took.push(t.elapsed().as_secs_f64());
                    round += 1;
                }
                Ok(took)
            })
        };
        let mut handles = Vec::new();
        for ((person, items), target) in queues.iter().cloned().zip(targets.iter().cloned()) {
            let start = start.clone();
            handles.push(std::thread::spawn(move || -> Result<Vec<StdDuration>> {
                let mut s = Store::open_postgres(&target)?;
                let mut lat = Vec::with_capacity(items.len());
                start.wait();
                for item in items {
                    let t = Instant::now();
                    custodian::ops::decide(
                        &mut s,
                        person,
                        &DecisionInput {
                            items: vec![item],
                            decision: Decision::Keep,
                            justification: "still needed".into(),
                            new_owner: None,
                            follow_recommendation: false,
                        },
                        Utc::now(),
                    )?;
                    lat.push(t.elapsed());
                }
                Ok(lat)
            }));
        }
        let t = Instant::now();
        start.wait();
        let mut lat = Vec::new();
        let mut failed = Vec::new();
        for h in handles {
            match h.join() {
                Ok(Ok(v)) => lat.extend(v),
                Ok(Err(e)) => failed.push(e.to_string()),
                Err(_) => failed.push("a reviewer thread panicked".into()),
            }
        }
        let wall = t.elapsed();
        stop.store(true, Ordering::SeqCst);
        let syncs = syncer
            .join()
            .map_err(|_| Error::internal("the sync thread panicked"))??;
        if !failed.is_empty() {
            return Err(Error::internal(format!(
                "{} reviewer(s) failed: {}",
                failed.len(),
                failed[0]
            )));
        }
        lat.sort();
        out.push(format!(
            "{} decisions by {} connections in {:.1}s = {:.0} decisions/s; one decision p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            lat.len(),
            queues.len(),
            wall.as_secs_f64(),
            lat.len() as f64 / wall.as_secs_f64(),
            ms(percentile(&lat, 0.5)),
            ms(percentile(&lat, 0.95)),
            ms(percentile(&lat, 0.99)),
            ms(*lat.last().unwrap_or(&StdDuration::ZERO)),
        ));
        let mean = if syncs.is_empty() {
            0.0
        } else {
            syncs.iter().sum::<f64>() / syncs.len() as f64
        };
        out.push(format!(
            "meanwhile the worker resynced a {REGISTRY}-agent registry {} times (1% changed each round), {mean:.2}s each",
            syncs.len()
        ));
        let audited: i64 = store.raw_db().query_row(
            "SELECT count(*) FROM audit_log WHERE action = 'review.decide'",
            [],
            |r| r.get(0),
        )?;
        let ok = store.verify_audit()?.ok;
        out.push(format!(
            "audit: {audited} decision entries, chain verifies: {ok}"
        ));
        if audited as usize != lat.len() || !ok {
            return Err(Error::internal("decisions and audit entries disagree"));
        }
        let _ = std::fs::remove_dir_all(&dir);
        Ok(out)
    })();
    // Throwaway logins go, whatever happened.
    drop(store);
    target.drop_database();
    if let Some(admin) = target.admin_store() {
        for l in &logins {
            let _ = admin.execute_batch(&format!("DROP ROLE IF EXISTS {l}"));
        }
        for r in Role::ALL {
            let _ = admin.execute_batch(&format!("DROP ROLE IF EXISTS {prefix}{}", r.as_str()));
        }
    }
    lines.extend(result?);
    lines.push(format!("peak RSS {:.0} MiB", peak_rss_mib()));
    Ok(Report {
        json: serde_json::json!({"bench": "workspace", "size": size.as_str(), "lines": lines}),
        lines,
    })
}
