//! `--aws N --pmapper`: the same IAM account, in the same moto server, read
//! and analysed by principalmapper (PyPI `principalmapper` 1.1.5, the
//! reference tool for IAM privilege graphs) right after Custodian, phase by
//! phase, with the ratio side by side.
//!
//! PMapper runs from its own venv (`$CUSTODIAN_PEERS_DIR/venv-pmapper`,
//! created here on first use) through `pmapper_driver.py`, which calls the
//! steps of `gathering.create_graph` one by one and then pmapper's own search
//! (`query_utils.get_search_list`) for one principal. Each phase may take at
//! most the given timeout; a phase that does not finish is reported as such.
//! The driver also prints what pmapper concluded (its nodes, admins and
//! edges, and `preset privesc *`, a query like reachability and under the
//! same timeout), which `aws_compare.rs` sets beside Custodian's answers.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use custodian::error::{Error, Result};

const DRIVER: &str = include_str!("pmapper_driver.py");
const PMAPPER_VERSION: &str = "1.1.5";

/// One tool's figures.
pub struct Side {
    /// Reading the account from moto (Custodian: the whole sync, including
    /// writing the cache; PMapper: its IAM calls).
    pub fetch_s: f64,
    /// Building the graph from the fetched data (Custodian: the access graph
    /// from the cache; PMapper: admin status and every edge checker).
    pub build_s: f64,
    /// Principals asked about, in order.
    pub reaches: Vec<Reach>,
    /// Who can escalate to admin over the whole account (Custodian:
    /// `ops::paths_to_admin`, graph load included; PMapper: `preset privesc *`).
    pub privesc_s: f64,
    pub peak_rss_mib: f64,
}

/// One principal's reachability on our side.
pub struct Reach {
    /// Why this principal: "widest non-admin reach", "reaches an admin".
    pub label: String,
    /// principalmapper's name for it.
    pub principal: String,
    pub s: f64,
    pub reachable: usize,
}

pub struct Comparison {
    pub lines: Vec<String>,
    pub json: serde_json::Value,
    /// The driver's `graph` line (nodes, admins, edges), when it got there.
    pub graph: Option<serde_json::Value>,
    /// The driver's `privesc` line (`preset privesc *`), when it got there.
    pub privesc: Option<serde_json::Value>,
}

fn venv() -> Result<PathBuf> {
    let dir = super::aws_moto::peers_dir().join("venv-pmapper");
    let python = dir.join("bin/python");
    let ready = Command::new(&python)
        .args([
            "-c",
            "import principalmapper, sys; sys.exit(principalmapper.__version__ != '1.1.5')",
        ])
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ready {
        eprintln!(
            "custodian-bench: installing principalmapper {PMAPPER_VERSION} into {}",
            dir.display()
        );
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&dir)
            .status()?
            .success()
            && Command::new(dir.join("bin/pip"))
                .args(["install", "--quiet", "--disable-pip-version-check"])
                .arg(format!("principalmapper=={PMAPPER_VERSION}"))
                .status()?
                .success();
        if !ok {
            return Err(Error::internal(format!(
                "could not install principalmapper into {}",
                dir.display()
            )));
        }
    }
    Ok(python)
}

/// Seconds for a person: "153.5 s", "1.20 ms", "14 µs".
fn dur(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.1} s")
    } else if s >= 1e-3 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{:.1} µs", s * 1e6)
    }
}

/// Runs PMapper against `endpoint` for the principals of `ours` and sets it beside `ours`.
pub fn compare(
    endpoint: &str,
    timeout: Duration,
    reach_timeout: Duration,
    ours: &Side,
) -> Result<Comparison> {
    let python = venv()?;
    let script = std::env::temp_dir().join(format!(
        "custodian-pmapper-driver-{}.py",
        std::process::id()
    ));
    std::fs::write(&script, DRIVER)?;
    let empty = std::env::temp_dir().join("custodian-pmapper-empty-aws-config");
    std::fs::write(&empty, "")?;
    let mut child = Command::new(&python)
        .arg(&script)
        .arg(endpoint.trim_end_matches('/'))
        .args(ours.reaches.iter().map(|r| r.principal.as_str()))
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", &empty)
        .env("AWS_SHARED_CREDENTIALS_FILE", &empty)
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| Error::internal("no stdout from the pmapper driver"))?;
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout)
            .lines()
            .map_while(std::io::Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut phases = serde_json::Map::new();
    let mut reaches: Vec<serde_json::Value> = vec![];
    let mut unfinished: Option<String> = None;
    let mut order: Vec<String> = ["fetch", "edges", "resource_policies", "graph"]
        .map(String::from)
        .to_vec();
    order.extend(
        ours.reaches
            .iter()
            .map(|r| format!("reach {}", r.principal)),
    );
    order.push("privesc".into());
    for want in &order {
        let started = Instant::now();
        let limit = if want.starts_with("reach ") || want == "privesc" {
            reach_timeout
        } else {
            timeout
        };
        let got = loop {
            let left = limit.saturating_sub(started.elapsed());
            match rx.recv_timeout(left) {
                Ok(line) => match serde_json::from_str::<serde_json::Value>(&line) {
                    Ok(v) if v.get("error").is_some() => {
                        let _ = child.kill();
                        return Err(Error::internal(format!("pmapper driver: {}", v["error"])));
                    }
                    Ok(v) if v["phase"] == "reach" && want.starts_with("reach ") => break Some(v),
                    Ok(v) if v["phase"] == want.as_str() => break Some(v),
                    _ => eprintln!("pmapper: {line}"),
                },
                Err(_) => break None,
            }
        };
        match got {
            Some(v) if want.starts_with("reach ") => reaches.push(v),
            Some(v) => {
                phases.insert(want.clone(), v);
            }
            None => {
                unfinished = Some(want.clone());
                break;
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(&script);
    let graph = phases.remove("graph");
    let privesc = phases.remove("privesc");

    let f = |p: &str, k: &str| phases.get(p).and_then(|v| v[k].as_f64());
    let fetch = f("fetch", "s");
    let build = match (f("edges", "s"), f("resource_policies", "s")) {
        (Some(a), Some(b)) => Some(a + b),
        _ => None,
    };
    let rss = phases
        .values()
        .chain(reaches.iter())
        .chain(graph.iter())
        .chain(privesc.iter())
        .filter_map(|v| v["peak_rss_mib"].as_f64())
        .fold(f64::NAN, f64::max);
    let secs = |v: Option<f64>, limit: Duration| {
        v.map_or_else(|| format!("did not finish in {} s", limit.as_secs()), dur)
    };
    let ratio = |theirs: Option<f64>, ours: f64, limit: Duration| {
        theirs.map_or_else(
            || format!("> {:.0}x", limit.as_secs_f64() / ours.max(1e-9)),
            |t| format!("{:.0}x", t / ours.max(1e-9)),
        )
    };
    let privesc_s = privesc.as_ref().and_then(|v| v["s"].as_f64());
    let total = match (fetch, build) {
        (Some(a), Some(b)) => Some(a + b),
        _ => None,
    };
    let nodes = phases
        .get("fetch")
        .and_then(|v| v["nodes"].as_u64())
        .unwrap_or(0);
    let edges = phases.get("edges").and_then(|v| v["edges"].as_u64());
    let admins = phases.get("edges").and_then(|v| v["admins"].as_u64());
    let opt = |v: Option<u64>| v.map_or_else(|| "-".to_string(), |n| n.to_string());
    let mut lines = vec![
        format!(
            "### beside principalmapper {PMAPPER_VERSION} (same moto, same account; PMapper: {nodes} principals, {} edges, {} admins)",
            opt(edges),
            opt(admins)
        ),
        "| phase | Custodian | PMapper | PMapper / Custodian |".into(),
        "|---|---|---|---|".into(),
        format!(
            "| read the account from moto (Custodian: whole sync into the cache) | {} | {} | {} |",
            dur(ours.fetch_s),
            secs(fetch, timeout),
            ratio(fetch, ours.fetch_s, timeout)
        ),
        format!(
            "| graph build from the fetched data | {} | {} | {} |",
            dur(ours.build_s),
            secs(build, timeout),
            ratio(build, ours.build_s, timeout)
        ),
        format!(
            "| read + build (PMapper: `graph create`) | {} | {} | {} |",
            dur(ours.fetch_s + ours.build_s),
            secs(total, timeout),
            ratio(total, ours.fetch_s + ours.build_s, timeout)
        ),
    ];
    for (i, r) in ours.reaches.iter().enumerate() {
        let theirs = reaches.get(i);
        let t = theirs.and_then(|v| v["s"].as_f64());
        // Not run: the driver stopped at an earlier phase or query.
        let stopped_here = unfinished.as_deref() == Some(format!("reach {}", r.principal).as_str())
            && i == reaches.len();
        if theirs.is_none() && !stopped_here {
            lines.push(format!(
                "| reachability of {} ({}) | {} ({} principals) | not run (an earlier phase hit its limit) | |",
                r.principal,
                r.label,
                dur(r.s),
                r.reachable
            ));
            continue;
        }
        lines.push(format!(
            "| reachability of {} ({}) | {} ({} principals) | {} ({} principals, {} paths enumerated) | {} |",
            r.principal,
            r.label,
            dur(r.s),
            r.reachable,
            secs(t, reach_timeout),
            opt(theirs.and_then(|v| v["reachable"].as_u64())),
            opt(theirs.and_then(|v| v["paths"].as_u64())),
            ratio(t, r.s, reach_timeout)
        ));
    }
    lines.push(format!(
        "| peak RSS | {:.0} MiB | {:.0} MiB | |",
        ours.peak_rss_mib, rss
    ));
    let privesc_row = "| who can escalate to admin, whole account (Custodian: `paths-to-admin`; PMapper: `preset privesc *`)";
    if privesc_s.is_none() && unfinished.as_deref() != Some("privesc") {
        lines.push(format!(
            "{privesc_row} | {} | not run (an earlier phase hit its limit) | |",
            dur(ours.privesc_s)
        ));
    } else {
        lines.push(format!(
            "{privesc_row} | {} | {} | {} |",
            dur(ours.privesc_s),
            secs(privesc_s, reach_timeout),
            ratio(privesc_s, ours.privesc_s, reach_timeout)
        ));
    }
    let json = serde_json::json!({
        "version": PMAPPER_VERSION, "timeout_s": timeout.as_secs(), "reach_timeout_s": reach_timeout.as_secs(),
        "unfinished_phase": unfinished, "phases": phases, "reaches": reaches,
        "fetch_s": fetch, "build_s": build, "privesc_s": privesc_s,
    });
    Ok(Comparison {
        lines,
        json,
        graph,
        privesc,
    })
}
