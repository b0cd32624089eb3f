//! `--app PATH [--sizes l] [--runs N]`: the desktop app's start on an
//! organisation of a size. A cache holding the demo organisation is written
//! first (not timed); then the app binary at PATH (a release build:
//! `cargo build --release -p custodian-app`) starts on it `--runs` times
//! under `$DISPLAY`, or a private Xvfb when there is none. Each start is
//! timed from spawn to the app's log line for its first inventory page
//! served (`custodian_app_lib::FIRST_PAGE_EVENT`), and the app process's
//! resident memory is read then and after the window settles; the WebKit
//! processes it starts are reported apart. Issue 19's goals at L: 1.5 s and
//! 250 MB.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use chrono::Utc;
use custodian::demo::{DemoSize, DEFAULT_SEED};
use custodian::error::{Error, Result};
use custodian::store::{Location, Store};

use super::Report;

/// The app's log line for its first inventory page (the app crate's
/// `FIRST_PAGE_EVENT`; the bench does not link the app).
const FIRST_PAGE_EVENT: &str = "first inventory page served";
/// How long a start may take before the run is called failed.
const START_TIMEOUT: Duration = Duration::from_secs(180);
/// How long the window is left to settle before memory is read again.
const SETTLE: Duration = Duration::from_secs(5);

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `VmRSS` and `VmHWM` of a process, in MiB.
fn memory_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The processes below `pid` (WebKit's web and network processes).
fn descendants(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = vec![];
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(p) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            // `pid (comm) state ppid ...`: comm may hold spaces, so read
            // after its closing parenthesis.
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|s| s.parse::<u32>().ok());
            if let Some(pp) = ppid {
                parents.push((p, pp));
            }
        }
    }
    let mut out = vec![];
    let mut frontier = vec![pid];
    while let Some(q) = frontier.pop() {
        for (p, pp) in &parents {
            if *pp == q {
                out.push(*p);
                frontier.push(*p);
            }
        }
    }
    out
}

fn start_xvfb() -> Result<(String, Option<Killed>)> {
    if let Some(d) = std::env::var("DISPLAY").ok().filter(|d| !d.is_empty()) {
        return Ok((d, None));
    }
    for n in 170..240 {
        let socket = PathBuf::from(format!("/tmp/.X11-unix/X{n}"));
        if socket.exists() || Path::new(&format!("/tmp/.X{n}-lock")).exists() {
            continue;
        }
        let child = Command::new("Xvfb")
            .args([
                &format!(":{n}"),
                "-screen",
                "0",
                "1400x900x24",
                "-nolisten",
                "tcp",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| Error::invalid(format!("cannot start Xvfb (install xvfb): {e}")))?;
        let mut x = Killed(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if socket.exists() {
                return Ok((format!(":{n}"), Some(x)));
            }
            if let Ok(Some(_)) = x.0.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Err(Error::invalid("no free X display for Xvfb"))
}

pub fn run_app(size: DemoSize, app: &Path, runs: usize) -> Result<Report> {
    let mut lines = vec![format!(
        "## app start, size {} ({} identities), {}",
        size.as_str().to_uppercase(),
        size.identities(),
        app.display()
    )];
    let dir = std::env::temp_dir().join(format!(
        "custodian-bench-app-{}-{}",
        std::process::id(),
        size.as_str()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("config"))?;
    let cache = dir.join("cache.db");
    let t = Instant::now();
    {
        let mut store = Store::open_location(&Location::File(cache.clone()))?;
        custodian::ops::load_demo(&mut store, size, DEFAULT_SEED, Utc::now())?;
    }
    lines.push(format!(
        "cache with the demo organisation written in {:.1}s ({:.0} MiB)",
        t.elapsed().as_secs_f64(),
        std::fs::metadata(&cache).map_or(f64::NAN, |m| m.len() as f64 / 1_048_576.0)
    ));
    let (display, _xvfb) = start_xvfb()?;
    let mut starts = vec![];
    for run in 0..runs.max(1) {
        let child = Command::new(app)
            .env("DISPLAY", &display)
            .env("CUSTODIAN_DB", &cache)
            .env("CUSTODIAN_LOG", "info")
            .env("CUSTODIAN_LOG_DIR", dir.join("logs"))
            .env("XDG_CONFIG_HOME", dir.join("config"))
            .env("XDG_DATA_HOME", dir.join("data"))
            .env("LIBGL_ALWAYS_SOFTWARE", "1")
            .env("NO_AT_BRIDGE", "1")
            .env_remove("WAYLAND_DISPLAY")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::invalid(format!("cannot start {}: {e}", app.display())))?;
        let spawned = Instant::now();
        let mut child = Killed(child);
        let pid = child.0.id();
        let Some(stderr) = child.0.stderr.take() else {
            return Err(Error::internal("the app's standard error was not captured"));
        };
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(|l| l.ok()) {
                let hit = line.contains(FIRST_PAGE_EVENT);
                let _ = tx.send((hit, line));
            }
        });
        let mut tail: Vec<String> = vec![];
        let first_page = loop {
            let left = START_TIMEOUT.saturating_sub(spawned.elapsed());
            match rx.recv_timeout(left) {
                Ok((true, _)) => break spawned.elapsed(),
                Ok((false, line)) => {
                    tail.push(line);
                    if tail.len() > 20 {
                        tail.remove(0);
                    }
                }
                Err(_) => {
                    return Err(Error::invalid(format!(
                        "run {run}: no first inventory page within {}s; the app's last lines:\n{}",
                        START_TIMEOUT.as_secs(),
                        tail.join("\n")
                    )))
                }
            }
        };
        let (rss_first, _) = memory_mib(pid);
        std::thread::sleep(SETTLE);
        let (rss, hwm) = memory_mib(pid);
        let webkit: f64 = descendants(pid).iter().map(|p| memory_mib(*p).0).sum();
        drop(child);
        let s = first_page.as_secs_f64();
        lines.push(format!(
            "  start {}: first inventory page {s:.2}s (goal <= 1.5 s); app process RSS {rss_first:.0} MiB then, {rss:.0} MiB settled, peak {hwm:.0} MiB (goal <= 250 MB); WebKit processes {webkit:.0} MiB",
            run + 1
        ));
        starts.push(serde_json::json!({
            "first_page_s": s, "rss_first_mib": rss_first, "rss_mib": rss, "hwm_mib": hwm, "webkit_mib": webkit,
        }));
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Report {
        json: serde_json::json!({
            "bench": "app", "size": size.as_str(), "starts": starts,
        }),
        lines,
    })
}
