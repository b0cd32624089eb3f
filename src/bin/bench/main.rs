//! `custodian-bench`: measures the store on generated organisations.
//!
//! ```text
//! cargo run --release --bin custodian-bench -- [--sizes m,l] [--runs 25] [--json]
//! cargo run --release --bin custodian-bench -- --sync [--sizes m,l]
//! cargo run --release --bin custodian-bench -- --aws 3000 [--moto URL]
//! cargo run --release --bin custodian-bench -- --entra 10000 [--entra-latency-ms 20]
//! cargo run --release --bin custodian-bench -- --aws 1000,3000 --pmapper [--pmapper-timeout S] [--pmapper-reach-timeout S]
//! ```
//!
//! `--reviews` runs an access review over each size and engine (see
//! `reviews.rs`; `--reviews-identities` only its campaign of one item per
//! identity, created and closed);
//! `--offboarding` hands over the biggest leaver's estate (`offboarding.rs`);
//! `--blast` measures the access graph (`blast.rs`); `--scale` loads a size
//! once and measures what it costs end to end, XL included (`scale.rs`);
//! `--app PATH` times the desktop app's start and reads its memory
//! (`app.rs`); `--entra N` syncs N
//! Entra service principals from a throttling Graph fixture, per-SP reads
//! direct and then through `$batch` (`entra.rs`).
//!
//! `--aws N[,N...]` syncs an IAM account of N users and N/2 roles from a
//! real moto server (see `aws_moto.rs`), builds the access graph and asks one
//! principal's reach; `--pmapper` then runs principalmapper on the same
//! server and account and prints both side by side (`pmapper.rs`; each
//! PMapper build phase may take `--pmapper-timeout` seconds, default 3600,
//! each query, reachability or `preset privesc *`, `--pmapper-reach-timeout`,
//! default 600), then what each tool concludes: edges, admins, who can
//! escalate (`aws_compare.rs`).
//!
//! `--sync` measures the sync engine instead: a full sync of the organisation
//! served as paginated SCIM JSON by a fixture server on loopback, a resync
//! with 1% of identities changed, and a raw SQLite bulk insert of the same
//! rows on the same machine in the same run, for the ratio.
//!
//! For each size: generation time, load into a file-backed cache (rows/s),
//! inventory query latency (filter + sort + search, first page; median and
//! p95 over `--runs`), identity detail latency, and the process's peak
//! resident memory (VmHWM) after each phase. Timing lives here, never in tests.

mod app;
mod aws_compare;
mod aws_moto;
mod aws_org;
mod blast;
mod entra;
mod fixture;
mod heap;
mod inventory;
mod offboarding;
mod pmapper;
mod reviews;
mod scale;
mod target;
mod workspace;

use std::time::{Duration, Instant};

#[global_allocator]
static HEAP: heap::Counting = heap::Counting;

use chrono::Utc;
use custodian::demo::{generate, DemoSize, DEFAULT_SEED};
use custodian::model::IdentityKind;
use custodian::views::{InventoryQuery, SortKey};

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
    sync: bool,
    reviews: bool,
    /// `--reviews-identities`: only the campaign of one item per identity.
    reviews_identities_only: bool,
    offboarding: bool,
    blast: bool,
    /// `--scale`: load once, then inventory, graph, all agents' blast radii
    /// and a 100k-item campaign (`scale.rs`).
    scale: bool,
    /// `--app PATH`: the desktop app's start at each size (`app.rs`).
    app: Option<std::path::PathBuf>,
    workspace: bool,
    aws: Vec<usize>,
    entra: Vec<usize>,
    entra_latency_ms: u64,
    moto: Option<String>,
    pmapper: Option<(u64, u64)>,
    engines: Vec<target::Engine>,
    pg: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        sizes: vec![DemoSize::M, DemoSize::L],
        runs: 25,
        json: false,
        sync: false,
        reviews: false,
        reviews_identities_only: false,
        offboarding: false,
        blast: false,
        scale: false,
        app: None,
        workspace: false,
        aws: vec![],
        entra: vec![],
        entra_latency_ms: 0,
        moto: None,
        pmapper: None,
        engines: vec![target::Engine::Sqlite],
        pg: None,
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
            "--sync" => args.sync = true,
            "--reviews" => args.reviews = true,
            "--reviews-identities" => {
                args.reviews = true;
                args.reviews_identities_only = true;
            }
            "--offboarding" => args.offboarding = true,
            "--blast" => args.blast = true,
            "--scale" => args.scale = true,
            "--app" => {
                args.app = Some(it.next().ok_or("--app needs the app binary's path")?.into())
            }
            "--workspace" => args.workspace = true,
            "--aws" => {
                let v = it.next().ok_or("--aws needs user counts like 1000,3000")?;
                args.aws = v
                    .split(',')
                    .map(|n| {
                        n.trim()
                            .parse::<usize>()
                            .map_err(|_| format!("bad --aws count '{n}'"))
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--entra" => {
                let v = it.next().ok_or("--entra needs SP counts like 10000")?;
                args.entra = v
                    .split(',')
                    .map(|n| {
                        n.trim()
                            .parse::<usize>()
                            .map_err(|_| format!("bad SP count: {n}"))
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--entra-latency-ms" => {
                let v = it.next().ok_or("--entra-latency-ms needs milliseconds")?;
                args.entra_latency_ms = v.parse().map_err(|_| format!("bad latency: {v}"))?;
            }
            "--moto" => args.moto = Some(it.next().ok_or("--moto needs a URL")?),
            "--pmapper" => args.pmapper = Some(args.pmapper.unwrap_or((3600, 600))),
            "--pmapper-timeout" | "--pmapper-reach-timeout" => {
                let v = it.next().ok_or(format!("{a} needs seconds"))?;
                let s: u64 = v.parse().map_err(|_| format!("bad {a} '{v}'"))?;
                let (build, reach) = args.pmapper.unwrap_or((3600, 600));
                args.pmapper = Some(if a == "--pmapper-timeout" {
                    (s, reach)
                } else {
                    (build, s)
                });
            }
            "--engines" | "--engine" => {
                let v = it
                    .next()
                    .ok_or("--engines needs sqlite, postgres or sqlite,postgres")?;
                args.engines = v
                    .split(',')
                    .map(|e| match e.trim() {
                        "sqlite" => Ok(target::Engine::Sqlite),
                        "postgres" | "pg" => Ok(target::Engine::Postgres),
                        other => Err(format!("unknown engine '{other}'")),
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--pg" => args.pg = Some(it.next().ok_or("--pg needs an admin URL")?),
            "--bench" => {} // passed by `cargo bench` harnesses
            other => return Err(format!("unknown argument '{other}'")),
        }
    }
    Ok(args)
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CUSTODIAN_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal, not in a log file or CI output.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // Benchmarks use throwaway caches: encrypt them with a fixed passphrase
    // rather than the user's keyring key.
    if std::env::var_os(custodian::store::key::KEY_ENV).is_none() {
        std::env::set_var(custodian::store::key::KEY_ENV, "custodian-bench");
    }
    // And a workspace's audit signing key, for the PostgreSQL runs.
    if std::env::var_os("CUSTODIAN_AUDIT_KEY").is_none() {
        std::env::set_var("CUSTODIAN_AUDIT_KEY", "custodian-bench-audit-key");
    }
    // `--aws-org USERS[,ACCOUNTS]`: an AWS organisation from moto (aws_org.rs).
    if aws_org::main_if_asked() {
        return;
    }
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("custodian-bench: {e}");
            std::process::exit(2);
        }
    };
    let mut results = Vec::new();
    for users in &args.aws {
        match aws_moto::run_aws(*users, args.moto.as_deref(), args.pmapper) {
            Ok(r) => {
                if !args.json {
                    print_human(&r);
                }
                results.push(r);
            }
            Err(e) => {
                eprintln!("custodian-bench: aws {users}: {e}");
                std::process::exit(1);
            }
        }
    }
    for sps in &args.entra {
        match entra::run_entra(*sps, args.entra_latency_ms) {
            Ok(r) => {
                if !args.json {
                    print_human(&r);
                }
                results.push(r);
            }
            Err(e) => {
                eprintln!("custodian-bench: entra {sps}: {e}");
                std::process::exit(1);
            }
        }
    }
    if let Some(app) = &args.app {
        for size in &args.sizes {
            match app::run_app(*size, app, args.runs.clamp(1, 5)) {
                Ok(r) => {
                    if !args.json {
                        print_human(&r);
                    }
                    results.push(r);
                }
                Err(e) => {
                    eprintln!("custodian-bench: app at size {}: {e}", size.as_str());
                    std::process::exit(1);
                }
            }
        }
    }
    let sizes = if args.aws.is_empty() && args.entra.is_empty() && args.app.is_none() {
        args.sizes.clone()
    } else {
        vec![]
    };
    let admin = args
        .pg
        .clone()
        .or_else(|| std::env::var("CUSTODIAN_BENCH_PG").ok())
        .or_else(|| std::env::var("CUSTODIAN_TEST_PG").ok());
    for size in &sizes {
        for engine in &args.engines {
            let t = match target::Target::new(*engine, admin.as_deref(), size.as_str()) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("custodian-bench: {e}");
                    std::process::exit(2);
                }
            };
            let result = if args.workspace {
                match admin.as_deref() {
                    Some(a) => workspace::run_workspace(*size, &t, a),
                    None => Err(custodian::Error::invalid("--workspace needs --pg URL")),
                }
            } else if args.sync {
                run_sync(*size, &t)
            } else if args.scale {
                scale::run_scale(*size, &t)
            } else if args.engines.len() > 1 && !args.reviews && !args.offboarding && !args.blast {
                run(*size, args.runs, &t)
            } else if args.reviews {
                reviews::run_reviews(*size, &t, args.reviews_identities_only)
            } else if args.offboarding {
                offboarding::run_offboarding(*size)
            } else if args.blast {
                blast::run_blast(*size)
            } else {
                run(*size, args.runs, &t)
            };
            t.cleanup();
            match result {
                Ok(r) => {
                    if !args.json {
                        print_human(&r);
                    }
                    results.push(r);
                }
                Err(e) => {
                    eprintln!(
                        "custodian-bench: size {} on {}: {e}",
                        size.as_str(),
                        engine.as_str()
                    );
                    std::process::exit(1);
                }
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

fn run(size: DemoSize, runs: usize, target: &target::Target) -> custodian::Result<Report> {
    let now = Utc::now();
    let mut lines = vec![format!(
        "## size {} ({} identities) on {}",
        size.as_str().to_uppercase(),
        size.identities(),
        target.engine.as_str()
    )];

    let t = Instant::now();
    let org = generate(size, DEFAULT_SEED, now);
    let gen_s = t.elapsed().as_secs_f64();
    let rss_gen = peak_rss_mib();

    let mut store = target.open()?;
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

    // What a load or sync does after writing: rank every blast radius and
    // keep it with a posture snapshot (the posture page reads it).
    let t = Instant::now();
    custodian::posture::record(&store, "load", now)?;
    let record_s = t.elapsed().as_secs_f64();
    lines.push(format!(
        "posture record after the write (every blast radius ranked and kept): {record_s:.2}s"
    ));

    // Reopen so queries run on a cold connection.
    drop(store);
    let store = target.open()?;
    let queries = inventory::standard(size.identities());
    let mut qjson = Vec::new();
    let explain = std::env::var_os("CUSTODIAN_BENCH_EXPLAIN").is_some();
    let mut time_query =
        |name: &str, q: &InventoryQuery, runs: usize| -> custodian::Result<(f64, f64, i64)> {
            let mut times = Vec::with_capacity(runs);
            let mut total = 0;
            for _ in 0..runs {
                let t = Instant::now();
                let page = store.inventory(q, now)?;
                times.push(t.elapsed());
                total = page.total;
            }
            times.sort();
            let (p50, p95) = (ms(percentile(&times, 0.5)), ms(percentile(&times, 0.95)));
            if explain {
                for l in store.inventory_plan(q)? {
                    eprintln!("    {name}: {l}");
                }
            }
            qjson.push(
            serde_json::json!({"query": name, "median_ms": p50, "p95_ms": p95, "matches": total}),
        );
            Ok((p50, p95, total))
        };
    lines.push(format!(
        "inventory queries (first page of 100 + total count), {runs} runs:"
    ));
    for (name, q) in &queries {
        let (p50, p95, total) = time_query(name, q, runs)?;
        lines.push(format!(
            "  {name}: median {p50:.2} ms, p95 {p95:.2} ms ({total} matches)"
        ));
    }
    // Every query the UI can issue, as a matrix (fewer runs each).
    let matrix = inventory::matrix(size.identities());
    let mruns = runs.clamp(1, 10);
    let mut worst: Vec<(f64, String, i64)> = vec![];
    for (name, q) in &matrix {
        let (_, p95, total) = time_query(name, q, mruns)?;
        worst.push((p95, name.clone(), total));
    }
    worst.sort_by(|a, b| b.0.total_cmp(&a.0));
    let over = worst.iter().filter(|w| w.0 > 20.0).count();
    lines.push(format!(
        "inventory matrix: {} queries x {mruns} runs; p95 over 20 ms: {over}; worst p95 {:.1} ms; the slowest:",
        matrix.len(),
        worst.first().map_or(0.0, |w| w.0)
    ));
    for (p95, name, total) in worst.iter().take(8) {
        lines.push(format!("  {name}: p95 {p95:.2} ms ({total} matches)"));
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
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        store.inventory_facets()?;
        times.push(t.elapsed());
    }
    times.sort();
    let facets_ms = ms(percentile(&times, 0.5));
    lines.push(format!(
        "facets: median {facets_ms:.1} ms, p95 {:.1} ms",
        ms(percentile(&times, 0.95))
    ));
    // The posture page's data and the blast-radius page of a few agents,
    // as the app asks for them.
    let pruns = runs.clamp(1, 5);
    let mut times = Vec::with_capacity(pruns);
    for _ in 0..pruns {
        let t = Instant::now();
        custodian::ops::posture(&store, now)?;
        times.push(t.elapsed());
    }
    times.sort();
    let posture_ms = ms(percentile(&times, 0.5));
    lines.push(format!(
        "posture page: median {posture_ms:.1} ms, p95 {:.1} ms",
        ms(percentile(&times, 0.95))
    ));
    // Where the posture page's time goes.
    let part = |f: &dyn Fn() -> custodian::Result<()>| -> custodian::Result<f64> {
        let t = Instant::now();
        f()?;
        Ok(ms(t.elapsed()))
    };
    let parts = [
        (
            "figures",
            part(&|| custodian::posture::figures(&store, None, now).map(|_| ()))?,
        ),
        (
            "trend",
            part(&|| custodian::posture::trend(&store, 104).map(|_| ()))?,
        ),
        (
            "findings by check",
            part(&|| custodian::posture::finding_counts(&store).map(|_| ()))?,
        ),
        (
            "fix first",
            part(&|| custodian::posture::fix_first_stored(&store, 10).map(|_| ()))?,
        ),
        ("top blast", part(&|| store.top_blast(10).map(|_| ()))?),
    ];
    lines.push(format!(
        "  posture parts: {}",
        parts
            .iter()
            .map(|(n, t)| format!("{n} {t:.1} ms"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let agents = store.inventory(
        &InventoryQuery {
            kinds: vec![IdentityKind::AiAgent],
            sort: SortKey::Grants,
            descending: true,
            limit: pruns as u32,
            ..Default::default()
        },
        now,
    )?;
    let mut times = Vec::with_capacity(pruns);
    for a in &agents.rows {
        let t = Instant::now();
        custodian::ops::blast_by_id(&store, a.id)?;
        times.push(t.elapsed());
    }
    times.sort();
    let blast_ms = ms(percentile(&times, 0.95));
    lines.push(format!(
        "blast-radius page (the {} agents with most grants): median {:.1} ms, p95 {blast_ms:.1} ms",
        times.len(),
        ms(percentile(&times, 0.5))
    ));
    let rss_end = peak_rss_mib();
    lines.push(format!("peak RSS: after generate {rss_gen:.0} MiB, after load {rss_load:.0} MiB, at end {rss_end:.0} MiB"));
    let db_mib = target.size_mib(&store);
    lines.push(format!("store size: {db_mib:.0} MiB"));
    drop(store);

    Ok(Report {
        json: serde_json::json!({
            "size": size.as_str(),
            "engine": target.engine.as_str(),
            "identities": counts.identities,
            "grants": counts.grants,
            "rows": rows,
            "generate_s": gen_s,
            "load_s": load_s,
            "load_rows_per_s": rows as f64 / load_s,
            "queries": qjson,
            "detail_median_ms": ms(detail_p50),
            "facets_ms": facets_ms,
            "posture_ms": posture_ms,
            "posture_record_s": record_s,
            "blast_page_p95_ms": blast_ms,
            "peak_rss_mib": {"generate": rss_gen, "load": rss_load, "end": rss_end},
            "cache_mib": db_mib,
        }),
        lines,
    })
}

fn run_sync(size: DemoSize, target: &target::Target) -> custodian::Result<Report> {
    use custodian::model::SourceId;
    use custodian::sync::http::{Cancel, HttpPolicy};
    use custodian::sync::secrets::{MemorySecrets, SecretStore};
    use std::sync::Arc;

    let now = Utc::now();
    let mut lines = vec![format!(
        "## sync, size {} ({} identities) on {}",
        size.as_str().to_uppercase(),
        size.identities(),
        target.engine.as_str()
    )];
    let mut org = generate(size, DEFAULT_SEED, now);
    let page = 1000;
    let t = Instant::now();
    let pages = fixture::scim_pages(&org, page);
    let base = fixture::serve(pages)?;
    lines.push(format!(
        "fixture: SCIM pages of {page} built in {:.1}s, served at {base}",
        t.elapsed().as_secs_f64()
    ));

    let dir = std::env::temp_dir().join(format!(
        "custodian-bench-sync-{}-{}",
        std::process::id(),
        size.as_str()
    ));
    std::fs::create_dir_all(&dir)?;
    let mut store = target.open()?;
    let secrets = MemorySecrets::default();
    let src = store.add_source(
        "scim",
        "bench",
        &serde_json::json!({"base_url": base, "page_size": page}),
        now,
    )?;
    secrets.set(src, "bench-token")?;
    // When the runner reports `applying`: the fetch ends there (SCIM must
    // re-read everything, so a resync's fetch costs what a full one does;
    // the apply is what should cost only what changed).
    let applying: Arc<std::sync::Mutex<Option<Instant>>> = Arc::default();
    let seen = applying.clone();
    let quiet: custodian::sync::ProgressFn = Arc::new(move |p: &custodian::sync::SyncProgress| {
        if p.phase == "applying" {
            if let Ok(mut at) = seen.lock() {
                at.get_or_insert_with(Instant::now);
            }
        }
    });
    // (fetch, apply) seconds of the run that started at `t`.
    let split = |t: Instant| -> (f64, f64) {
        let end = Instant::now();
        let at = applying
            .lock()
            .ok()
            .and_then(|mut a| a.take())
            .unwrap_or(end);
        (
            at.duration_since(t).as_secs_f64(),
            end.duration_since(at).as_secs_f64(),
        )
    };
    let policy = HttpPolicy::default();

    let rss0 = peak_rss_mib();
    let t = Instant::now();
    let full = custodian::ops::sync_blocking(
        &mut store,
        src,
        &secrets,
        quiet.clone(),
        Cancel::new(),
        policy.clone(),
    )?;
    let (full_fetch_s, full_apply_s) = split(t);
    let full_s = t.elapsed().as_secs_f64();
    let rss_full = peak_rss_mib();
    let items = full.report.items;
    lines.push(format!(
        "full sync: {items} items in {full_s:.2}s = {:.0} items/s ({} joiners): fetch {full_fetch_s:.2}s, apply {full_apply_s:.2}s; peak RSS {rss_full:.0} MiB (before {rss0:.0})",
        items as f64 / full_s,
        full.report.joiners
    ));

    // 1% of identities change: half disabled, half get another owner.
    let n_change = size.identities() / 100;
    let n_people = org.people.len() as i64;
    for k in 0..n_change {
        let i = &mut org.identities[(k * 97) % size.identities()];
        if k % 2 == 0 {
            i.status = custodian::model::IdentityStatus::Disabled;
        } else {
            i.owner = Some(custodian::model::PersonId(1 + (k as i64 * 31) % n_people));
        }
    }
    let base2 = fixture::serve(fixture::scim_pages(&org, page))?;
    store.update_source_settings(
        SourceId(src.0),
        &serde_json::json!({"base_url": base2, "page_size": page}),
    )?;
    let t = Instant::now();
    let re = custodian::ops::sync_blocking(
        &mut store,
        src,
        &secrets,
        quiet.clone(),
        Cancel::new(),
        policy.clone(),
    )?;
    let (re_fetch_s, re_apply_s) = split(t);
    let re_s = t.elapsed().as_secs_f64();
    lines.push(format!(
        "resync, 1% changed ({n_change} identities): {} items in {re_s:.2}s = {:.0} items/s; {} movers, {} leavers, {} identities unchanged: fetch {re_fetch_s:.2}s, apply {re_apply_s:.2}s = {:.0}% of the full apply (goal <= 10%); peak RSS {:.0} MiB",
        re.report.items,
        re.report.items as f64 / re_s,
        re.report.movers,
        re.report.leavers,
        re.report.unchanged,
        100.0 * re_apply_s / full_apply_s.max(f64::EPSILON),
        peak_rss_mib()
    ));
    // The same again: what a scheduled resync costs on a quiet day.
    let t = Instant::now();
    let quiet_run =
        custodian::ops::sync_blocking(&mut store, src, &secrets, quiet, Cancel::new(), policy)?;
    let (same_fetch_s, same_apply_s) = split(t);
    lines.push(format!(
        "resync, nothing changed: fetch {same_fetch_s:.2}s, apply {same_apply_s:.2}s = {:.0}% of the full apply; {} identities unchanged, graph ranked again: {}",
        100.0 * same_apply_s / full_apply_s.max(f64::EPSILON),
        quiet_run.report.unchanged,
        quiet_run.report.graph_changed
    ));
    drop(store);

    // The floor: a raw bulk insert of the same rows into plain tables.
    let raw_path = dir.join("raw.db");
    let _ = std::fs::remove_file(&raw_path);
    let conn = rusqlite::Connection::open(&raw_path)?;
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;
         CREATE TABLE people(id INTEGER PRIMARY KEY, ext TEXT, name TEXT, email TEXT, dept TEXT, manager TEXT, active INT);
         CREATE TABLE identities(id INTEGER PRIMARY KEY, ext TEXT, name TEXT, kind TEXT, active INT, owner TEXT, team TEXT);
         CREATE TABLE resources(id INTEGER PRIMARY KEY, ext TEXT, name TEXT);
         CREATE TABLE grants(id INTEGER PRIMARY KEY, identity TEXT, resource TEXT);",
    )?;
    let t = Instant::now();
    let mut rows = 0usize;
    {
        let tx = conn.unchecked_transaction()?;
        {
            let mut st = tx.prepare("INSERT INTO people(ext, name, email, dept, manager, active) VALUES (?1,?2,?3,?4,?5,?6)")?;
            for p in &org.people {
                st.execute(rusqlite::params![
                    p.external_id,
                    p.display_name,
                    p.email,
                    p.department,
                    p.manager.map(|m| m.0),
                    p.status.as_str()
                ])?;
                rows += 1;
            }
            let mut st = tx.prepare("INSERT INTO identities(ext, name, kind, active, owner, team) VALUES (?1,?2,?3,?4,?5,?6)")?;
            for i in &org.identities {
                st.execute(rusqlite::params![
                    i.external_id,
                    i.name,
                    i.kind.as_str(),
                    i.status.as_str(),
                    i.owner.map(|o| o.0),
                    i.team
                ])?;
                rows += 1;
            }
            let mut st = tx.prepare("INSERT INTO resources(ext, name) VALUES (?1,?2)")?;
            for r in &org.resources {
                st.execute(rusqlite::params![r.external_id, r.name])?;
                rows += 1;
            }
            let mut st = tx.prepare("INSERT INTO grants(identity, resource) VALUES (?1,?2)")?;
            for g in &org.grants {
                st.execute(rusqlite::params![g.identity.0, g.resource.0])?;
                rows += 1;
            }
        }
        tx.commit()?;
    }
    let raw_s = t.elapsed().as_secs_f64();
    lines.push(format!(
        "raw SQLite bulk insert of the same {rows} rows: {raw_s:.2}s = {:.0} rows/s; full sync / raw insert = {:.1}x (apply alone {:.1}x; goal <= 5x)",
        rows as f64 / raw_s,
        full_s / raw_s,
        full_apply_s / raw_s
    ));
    drop(conn);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Report {
        json: serde_json::json!({
            "size": size.as_str(), "engine": target.engine.as_str(), "mode": "sync", "items": items, "full_s": full_s, "resync_s": re_s,
            "raw_insert_s": raw_s, "ratio_full_to_raw": full_s / raw_s, "peak_rss_mib": peak_rss_mib(),
            "full_fetch_s": full_fetch_s, "full_apply_s": full_apply_s,
            "resync_fetch_s": re_fetch_s, "resync_apply_s": re_apply_s, "same_fetch_s": same_fetch_s, "same_apply_s": same_apply_s,
        }),
        lines,
    })
}
