//! `custodian-bench`: measures the store on generated organisations.
//!
//! ```text
//! cargo run --release --bin custodian-bench -- [--sizes m,l] [--runs 25] [--json]
//! ```
//!
//! For each size: generation time, load into a file-backed cache (rows/s),
//! inventory query latency (filter + sort + search, first page; median and
//! p95 over `--runs`), identity detail latency, and the process's peak
//! resident memory (VmHWM) after each phase. Timing lives here, never in tests.

use std::time::{Duration, Instant};

use chrono::Utc;
use custodian::demo::{generate, DemoSize, DEFAULT_SEED};
use custodian::model::{IdentityKind, IdentityStatus};
use custodian::store::Store;
use custodian::views::{InventoryQuery, OwnerState, SortKey};

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Args {
    sizes: Vec<DemoSize>,
    runs: usize,
    json: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        sizes: vec![DemoSize::M, DemoSize::L],
        runs: 25,
        json: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--sizes" => {
                let v = it.next().ok_or("--sizes needs a value like m,l")?;
                args.sizes = v
                    .split(',')
                    .map(|s| DemoSize::parse(s).map_err(|e| e.message))
                    .collect::<Result<_, _>>()?;
            }
            "--runs" => {
                let v = it.next().ok_or("--runs needs a number")?;
                args.runs = v.parse().map_err(|_| format!("bad --runs '{v}'"))?;
            }
            "--json" => args.json = true,
            "--bench" => {} // passed by `cargo bench` harnesses
            other => return Err(format!("unknown argument '{other}'")),
        }
    }
    Ok(args)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("custodian-bench: {e}");
            std::process::exit(2);
        }
    };
    let mut results = Vec::new();
    for size in &args.sizes {
        match run(*size, args.runs) {
            Ok(r) => {
                if !args.json {
                    print_human(&r);
                }
                results.push(r);
            }
            Err(e) => {
                eprintln!("custodian-bench: size {}: {e}", size.as_str());
                std::process::exit(1);
            }
        }
    }
    if args.json {
        println!(
            "{}",
            serde_json::Value::Array(results.into_iter().map(|r| r.json).collect())
        );
    }
}

struct Report {
    json: serde_json::Value,
    lines: Vec<String>,
}

fn print_human(r: &Report) {
    for l in &r.lines {
        println!("{l}");
    }
    println!();
}

fn run(size: DemoSize, runs: usize) -> custodian::Result<Report> {
    let now = Utc::now();
    let mut lines = vec![format!(
        "## size {} ({} identities)",
        size.as_str().to_uppercase(),
        size.identities()
    )];

    let t = Instant::now();
    let org = generate(size, DEFAULT_SEED, now);
    let gen_s = t.elapsed().as_secs_f64();
    let rss_gen = peak_rss_mib();

    let dir = std::env::temp_dir().join(format!(
        "custodian-bench-{}-{}",
        std::process::id(),
        size.as_str()
    ));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("bench.db");
    let _ = std::fs::remove_file(&path);
    let mut store = Store::open(&path)?;
    let t = Instant::now();
    let counts = store.replace_org(&org, now)?;
    let load_s = t.elapsed().as_secs_f64();
    let rows = counts.total_rows();
    let rss_load = peak_rss_mib();
    drop(org);
    lines.push(format!(
        "generate: {gen_s:.2}s | load: {rows} rows ({} identities, {} grants, {} credentials, {} findings) in {load_s:.2}s = {:.0} rows/s",
        counts.identities,
        counts.grants,
        counts.credentials,
        counts.findings,
        rows as f64 / load_s
    ));

    // Reopen so queries run on a cold connection against the file.
    drop(store);
    let store = Store::open(&path)?;
    let queries: Vec<(&str, InventoryQuery)> = vec![
        ("first page, sort name", InventoryQuery::default()),
        (
            "kind=ai_agent + active + has findings, sort risk desc",
            InventoryQuery {
                kinds: vec![IdentityKind::AiAgent],
                statuses: vec![IdentityStatus::Active],
                has_findings: Some(true),
                sort: SortKey::Risk,
                descending: true,
                ..Default::default()
            },
        ),
        (
            "search 'invoice', sort name",
            InventoryQuery {
                search: "invoice".into(),
                ..Default::default()
            },
        ),
        (
            "search 'fin' + kind=service_account + owner departed, sort oldest credential",
            InventoryQuery {
                search: "fin".into(),
                kinds: vec![IdentityKind::ServiceAccount],
                owner_state: Some(OwnerState::Departed),
                sort: SortKey::OldestCredential,
                ..Default::default()
            },
        ),
        (
            "sort owner desc",
            InventoryQuery {
                sort: SortKey::Owner,
                descending: true,
                ..Default::default()
            },
        ),
        (
            "deep page: offset n/2, sort last used",
            InventoryQuery {
                sort: SortKey::LastUsed,
                offset: (size.identities() as u32 / 2),
                ..Default::default()
            },
        ),
    ];
    let mut qjson = Vec::new();
    lines.push(format!(
        "inventory queries (first page of 100 + total count), {runs} runs:"
    ));
    for (name, q) in &queries {
        let mut times = Vec::with_capacity(runs);
        let mut total = 0;
        for _ in 0..runs {
            let t = Instant::now();
            let page = store.inventory(q, now)?;
            times.push(t.elapsed());
            total = page.total;
        }
        times.sort();
        let (p50, p95) = (percentile(&times, 0.5), percentile(&times, 0.95));
        lines.push(format!(
            "  {name}: median {:.2} ms, p95 {:.2} ms ({total} matches)",
            ms(p50),
            ms(p95)
        ));
        qjson.push(serde_json::json!({"query": name, "median_ms": ms(p50), "p95_ms": ms(p95), "matches": total}));
    }

    let mut times = Vec::with_capacity(runs);
    for i in 0..runs {
        let id = custodian::model::IdentityId(1 + (i as i64 * 7919) % size.identities() as i64);
        let t = Instant::now();
        store.identity_detail(id, now)?;
        times.push(t.elapsed());
    }
    times.sort();
    let detail_p50 = percentile(&times, 0.5);
    lines.push(format!(
        "identity detail: median {:.2} ms, p95 {:.2} ms",
        ms(detail_p50),
        ms(percentile(&times, 0.95))
    ));
    let t = Instant::now();
    store.inventory_facets()?;
    let facets_ms = ms(t.elapsed());
    lines.push(format!("facets: {facets_ms:.1} ms"));
    let rss_end = peak_rss_mib();
    lines.push(format!("peak RSS: after generate {rss_gen:.0} MiB, after load {rss_load:.0} MiB, at end {rss_end:.0} MiB"));
    let db_mib = std::fs::metadata(&path)
        .map(|m| m.len() as f64 / 1_048_576.0)
        .unwrap_or(f64::NAN);
    lines.push(format!("cache file: {db_mib:.0} MiB"));
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);

    Ok(Report {
        json: serde_json::json!({
            "size": size.as_str(),
            "identities": counts.identities,
            "grants": counts.grants,
            "rows": rows,
            "generate_s": gen_s,
            "load_s": load_s,
            "load_rows_per_s": rows as f64 / load_s,
            "queries": qjson,
            "detail_median_ms": ms(detail_p50),
            "facets_ms": facets_ms,
            "peak_rss_mib": {"generate": rss_gen, "load": rss_load, "end": rss_end},
            "cache_mib": db_mib,
        }),
        lines,
    })
}
