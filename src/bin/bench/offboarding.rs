//! `--offboarding`: the leaver with the most to hand over in a generated
//! organisation: open (read) their case, plan a bulk transfer of everything
//! to their manager with secret rotation, apply.

use std::time::Instant;

use chrono::Utc;
use custodian::demo::{DemoSize, DEFAULT_SEED};
use custodian::error::{Error, Result};
use custodian::offboarding::{OffboardAction, OffboardPlan};
use custodian::store::Store;

use super::{peak_rss_mib, Report};

pub fn run_offboarding(size: DemoSize) -> Result<Report> {
    let now = Utc::now();
    let mut lines = vec![format!(
        "## offboarding, size {} ({} identities)",
        size.as_str().to_uppercase(),
        size.identities()
    )];
    let dir = std::env::temp_dir().join(format!(
        "custodian-bench-offboarding-{}-{}",
        std::process::id(),
        size.as_str()
    ));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("offboarding.db");
    let _ = std::fs::remove_file(&path);
    let mut store = Store::open(&path)?;
    let t = Instant::now();
    custodian::ops::load_demo(&mut store, size, DEFAULT_SEED, now)?;
    let cases = store.offboarding_cases(None, None)?.len();
    lines.push(format!(
        "load demo (opens {cases} offboarding cases): {:.1}s",
        t.elapsed().as_secs_f64()
    ));

    // The person owning or having built the most, with an active manager.
    let (person, manager, owns): (i64, i64, i64) = store.raw_db().query_row(
        "SELECT p.id, p.manager_id, (SELECT count(*) FROM identities i WHERE i.owner_id = p.id OR i.builder_id = p.id) AS n
         FROM people p JOIN people m ON m.id = p.manager_id WHERE m.status = 'active' ORDER BY n DESC LIMIT 1",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let t = Instant::now();
    let case = match store.case_of(person)? {
        Some(c) => c,
        None => store
            .mark_departing(
                manager,
                person,
                &now.format("%Y-%m-%d").to_string(),
                "benchmark",
                now,
            )?
            .ok_or_else(|| Error::internal("no case opened"))?,
    };
    let open_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let view = store.offboarding_case(case)?;
    let view_ms = t.elapsed().as_secs_f64() * 1000.0;
    lines.push(format!(
        "open the case of the top owner ({owns} identities owned or built; {} items): {:.0} ms to open, {view_ms:.0} ms to read with previews and suggestions",
        view.items.len(),
        open_s * 1000.0
    ));
    let t = Instant::now();
    let planned = store.plan_offboarding(
        manager,
        case,
        &OffboardPlan {
            items: vec![],
            action: OffboardAction::Transfer,
            owner: Some(manager),
            until: None,
            rotate: true,
        },
        now,
    )?;
    let plan_ms = t.elapsed().as_secs_f64() * 1000.0;
    let t = Instant::now();
    let r = store.apply_offboarding(manager, case, now)?;
    let apply_s = t.elapsed().as_secs_f64();
    lines.push(format!(
        "bulk transfer: plan {planned} items in {plan_ms:.0} ms; apply in {apply_s:.2}s ({} transferred, {} tasks, {} review items moved; re-evaluates the findings of the case's identities)",
        r.transferred, r.tasks, r.reviews_moved
    ));
    let rss = peak_rss_mib();
    lines.push(format!("peak RSS {rss:.0} MiB"));
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Report {
        json: serde_json::json!({
            "bench": "offboarding", "size": size.as_str(), "items": view.items.len(), "open_ms": open_s * 1000.0,
            "view_ms": view_ms, "plan_ms": plan_ms, "apply_s": apply_s, "tasks": r.tasks, "peak_rss_mib": rss,
        }),
        lines,
    })
}
