//! One sync runner for every host, and headless syncs: `sync --all`, the
//! server secret stores (environment, directory, systemd credentials).

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use custodian::model::SourceId;
use custodian::ops::{self, SharedStore};
use custodian::store::Store;
use custodian::sync::http::{Cancel, HttpPolicy};
use custodian::sync::secrets::{MemorySecrets, SecretStore, SecretsFrom, ServerSecrets};
use custodian::sync::SyncProgress;
use custodian::ErrorCode;
use serde_json::json;

use crate::util::now;

const REGISTRY: &str =
    "name,kind,purpose\nagent-alpha,ai_agent,Reads invoices\nagent-beta,bot,Posts alerts\n";

/// A shared store that says whether the cache is held at this moment.
struct Watched {
    store: Mutex<Store>,
    held: Arc<AtomicBool>,
}

impl SharedStore for Watched {
    fn with_store<T>(
        &self,
        f: impl FnOnce(&mut Store) -> custodian::Result<T>,
    ) -> custodian::Result<T> {
        let mut g = self.store.lock().unwrap();
        self.held.store(true, Ordering::SeqCst);
        let r = f(&mut g);
        self.held.store(false, Ordering::SeqCst);
        r
    }
}

fn csv_source(store: &mut Store, name: &str, path: &std::path::Path) -> SourceId {
    let s = ops::add_source(
        store,
        &MemorySecrets::default(),
        "csv",
        name,
        json!({"path": path.display().to_string()}),
        None,
        now(),
    )
    .unwrap();
    SourceId(s.id)
}

/// Runs `ops::run_sync` over a watched store; the phases reported, and
/// whether any report came while the cache was held.
fn run_watched(
    watched: &Watched,
    source: SourceId,
    cancel: Cancel,
) -> (
    custodian::Result<custodian::sync::SyncOutcome>,
    Vec<String>,
    bool,
) {
    let phases = Arc::new(Mutex::new(Vec::<String>::new()));
    let held_while_reporting = Arc::new(AtomicBool::new(false));
    let (sink, held, flag) = (
        phases.clone(),
        watched.held.clone(),
        held_while_reporting.clone(),
    );
    let progress: custodian::sync::ProgressFn = Arc::new(move |p: &SyncProgress| {
        if held.load(Ordering::SeqCst) {
            flag.store(true, Ordering::SeqCst);
        }
        sink.lock().unwrap().push(p.phase.clone());
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let out = rt.block_on(ops::run_sync(
        watched,
        source,
        &MemorySecrets::default(),
        progress,
        cancel,
        HttpPolicy::default(),
    ));
    let phases = phases.lock().unwrap().clone();
    (out, phases, held_while_reporting.load(Ordering::SeqCst))
}

#[test]
fn the_runner_reports_its_phases_without_holding_the_cache_and_records_failures() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.csv");
    std::fs::write(&good, REGISTRY).unwrap();
    let mut store = crate::util::test_store();
    let ok = csv_source(&mut store, "registry", &good);
    let gone = csv_source(&mut store, "gone", &dir.path().join("missing.csv"));
    let watched = Watched {
        store: Mutex::new(store),
        held: Arc::new(AtomicBool::new(false)),
    };

    let (out, phases, held) = run_watched(&watched, ok, Cancel::new());
    let out = out.unwrap();
    assert_eq!(out.report.joiners, 2);
    assert_eq!(
        phases.first().map(String::as_str),
        Some("connecting"),
        "{phases:?}"
    );
    assert_eq!(
        &phases[phases.len() - 2..],
        ["applying", "done"],
        "{phases:?}"
    );
    assert!(
        !held,
        "progress came while the cache was locked: the fetch held it"
    );

    // A fetch that fails is recorded on its run, with its code; no `done`.
    let (err, phases, held) = run_watched(&watched, gone, Cancel::new());
    let err = err.unwrap_err();
    assert!(!held);
    assert!(
        !phases.iter().any(|p| p == "done" || p == "applying"),
        "{phases:?}"
    );
    let runs = watched.with_store(|s| s.sync_runs(Some(gone), 5)).unwrap();
    assert_eq!(runs[0].status, "failed");
    assert_eq!(runs[0].error_code.as_deref(), Some(err.code.as_str()));

    // Cancelled before it began: recorded `cancelled`, nothing fetched.
    let cancel = Cancel::new();
    cancel.cancel();
    let (err, phases, _) = run_watched(&watched, ok, cancel);
    assert_eq!(err.unwrap_err().code, ErrorCode::Cancelled);
    assert!(phases.is_empty(), "{phases:?}");
    let runs = watched.with_store(|s| s.sync_runs(Some(ok), 5)).unwrap();
    assert_eq!(runs[0].status, "cancelled");
    assert_eq!(runs[1].status, "succeeded", "the good snapshot stays");
}

fn custodian(db: &std::path::Path, args: &[&str]) -> std::process::Output {
    crate::util::test_key();
    Command::new(env!("CARGO_BIN_EXE_custodian"))
        .arg("--db")
        .arg(crate::util::cli_location(db))
        .args(args)
        .env_remove("CUSTODIAN_DB")
        .env("CUSTODIAN_LOG_DIR", db.with_extension("logs"))
        .output()
        .unwrap()
}

#[test]
fn sync_all_reports_every_source_imports_the_good_one_and_fails_for_the_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let good = dir.path().join("good.csv");
    std::fs::write(&good, REGISTRY).unwrap();
    let missing = dir.path().join("missing.csv");
    let good_set = format!("path={}", good.display());
    let missing_set = format!("path={}", missing.display());
    // A hostile name: an escape sequence must not reach the terminal.
    let bad_name = "Gone \u{1b}[31mred";
    for (name, set) in [("Good registry", &good_set), (bad_name, &missing_set)] {
        let out = custodian(&db, &["source", "add", "csv", "--name", name, "--set", set]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let out = custodian(&db, &["sync", "--all"]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failed source fails the pass: {stdout}"
    );
    assert!(!stdout.contains('\u{1b}'), "{stdout:?}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.len(),
        3,
        "one line per source (not the demo's) and a total: {stdout}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("ok ") && l.contains("Good registry") && l.contains("2 items")),
        "{stdout}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("FAILED ") && l.contains("Gone \\u001b[31mred")),
        "{stdout}"
    );
    assert_eq!(lines[2], "2 source(s): 1 synced, 1 failed");

    // The good source landed; the failure is on its run.
    let inv = custodian(&db, &["inventory", "--search", "agent-alpha", "--json"]);
    let inv: serde_json::Value = serde_json::from_slice(&inv.stdout).unwrap();
    assert_eq!(inv["total"], 1, "{inv}");
    let runs = custodian(&db, &["runs", "--json"]);
    let runs: serde_json::Value = serde_json::from_slice(&runs.stdout).unwrap();
    let statuses: Vec<&str> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert!(
        statuses.contains(&"failed") && statuses.contains(&"succeeded"),
        "{statuses:?}"
    );

    // Once the bad one is fixed, the pass succeeds (exit 0), as JSON too.
    std::fs::copy(&good, &missing).unwrap();
    let out = custodian(&db, &["sync", "--all", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let pass: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (pass["sources"].as_i64(), pass["failed"].as_i64()),
        (Some(2), Some(0))
    );

    // A schedule below a minute is refused; a bad secret store too.
    let out = custodian(&db, &["sync", "--all", "--every", "5s"]);
    assert_eq!(out.status.code(), Some(2));
    let out = custodian(&db, &["worker", "--secrets-from", "vault"]);
    assert_eq!(out.status.code(), Some(2));
}

#[cfg(unix)]
fn write_mode(path: &std::path::Path, text: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn environment_secrets_are_found_by_the_source_name() {
    let s = ServerSecrets::env();
    std::env::set_var("CUSTODIAN_SECRET_HEADLESS_ENV_SCIM", "env-s3cr3t-value");
    assert_eq!(
        s.get_source(SourceId(7), "Headless env SCIM")
            .unwrap()
            .as_deref(),
        Some("env-s3cr3t-value")
    );
    let e = s.get_source(SourceId(8), "Headless env unset").unwrap_err();
    assert_eq!(e.code, ErrorCode::SecretMissing);
    assert!(
        e.message.contains("$CUSTODIAN_SECRET_HEADLESS_ENV_UNSET"),
        "{}",
        e.message
    );
    std::env::set_var("CUSTODIAN_SECRET_HEADLESS_ENV_EMPTY", "");
    assert_eq!(
        s.get_source(SourceId(9), "headless-env-empty")
            .unwrap_err()
            .code,
        ErrorCode::SecretMissing
    );
    assert!(s.set(SourceId(7), "x").is_err(), "read-only");
}

#[cfg(unix)]
#[test]
fn secret_files_are_read_and_open_or_odd_ones_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = ServerSecrets::dir(dir.path());
    write_mode(&dir.path().join("hr-scim"), "file-s3cr3t-value\n", 0o600);
    assert_eq!(
        s.get_source(SourceId(1), "HR SCIM").unwrap().as_deref(),
        Some("file-s3cr3t-value"),
        "the trailing newline is not the secret"
    );

    write_mode(&dir.path().join("open"), "open-s3cr3t-value", 0o644);
    let e = s.get_source(SourceId(2), "open").unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidInput);
    assert!(
        e.message.contains("group or others") && e.message.contains("0644"),
        "{}",
        e.message
    );
    assert!(
        !e.message.contains("open-s3cr3t-value"),
        "the secret never shows"
    );

    std::fs::create_dir(dir.path().join("a-dir")).unwrap();
    assert_eq!(
        s.get_source(SourceId(3), "A dir").unwrap_err().code,
        ErrorCode::SecretMissing
    );
    let e = s.get_source(SourceId(4), "Nobody").unwrap_err();
    assert_eq!(e.code, ErrorCode::SecretMissing);
    assert!(
        e.message.contains("nobody"),
        "names the file it looked for: {}",
        e.message
    );

    write_mode(&dir.path().join("big"), &"x".repeat(70 * 1024), 0o600);
    assert_eq!(
        s.get_source(SourceId(5), "big").unwrap_err().code,
        ErrorCode::InvalidInput
    );

    // systemd credentials: $CREDENTIALS_DIRECTORY, 0400 (group bits are
    // systemd's business, others must have none).
    let creds = tempfile::tempdir().unwrap();
    write_mode(&creds.path().join("corp-ad"), "ldap-s3cr3t-value", 0o440);
    write_mode(&creds.path().join("world"), "world-s3cr3t-value", 0o404);
    std::env::set_var("CREDENTIALS_DIRECTORY", creds.path());
    let sd = SecretsFrom::Systemd.open().unwrap();
    assert_eq!(
        sd.get_source(SourceId(6), "Corp AD").unwrap().as_deref(),
        Some("ldap-s3cr3t-value")
    );
    assert_eq!(
        sd.get_source(SourceId(7), "World").unwrap_err().code,
        ErrorCode::InvalidInput
    );
    std::env::remove_var("CREDENTIALS_DIRECTORY");
    assert_eq!(
        SecretsFrom::Systemd.open().err().map(|e| e.code),
        Some(ErrorCode::SecretMissing),
        "no credentials directory: not a systemd unit"
    );
}

#[test]
fn a_sync_reads_its_secret_from_the_server_store_by_name() {
    // The engine asks the store by name: an env-held secret reaches the
    // source, and a missing one fails the run as secret_missing.
    let mut store = crate::util::test_store();
    let id = ops::add_source(
        &mut store,
        &MemorySecrets::default(),
        "scim",
        "Headless missing SCIM",
        json!({"base_url": "http://127.0.0.1:9/scim/v2"}),
        None,
        now(),
    )
    .unwrap();
    let err = ops::sync_source(
        &mut store,
        SourceId(id.id),
        &ServerSecrets::env(),
        Arc::new(|_: &SyncProgress| {}),
        Cancel::new(),
    )
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::SecretMissing);
    assert!(
        err.message
            .contains("CUSTODIAN_SECRET_HEADLESS_MISSING_SCIM"),
        "{}",
        err.message
    );
    let runs = store.sync_runs(Some(SourceId(id.id)), 1).unwrap();
    assert_eq!(runs[0].error_code.as_deref(), Some("secret_missing"));
}

#[cfg(unix)]
#[test]
fn the_worker_syncs_on_its_schedule_and_stops_cleanly_on_sigterm() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let good = dir.path().join("good.csv");
    std::fs::write(&good, REGISTRY).unwrap();
    let set = format!("path={}", good.display());
    let out = custodian(
        &db,
        &[
            "source",
            "add",
            "csv",
            "--name",
            "Worker registry",
            "--set",
            &set,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut child = Command::new(env!("CARGO_BIN_EXE_custodian"))
        .arg("--db")
        .arg(crate::util::cli_location(&db))
        .args(["worker", "--every", "1h", "--secrets-from", "env", "--json"])
        .env_remove("CUSTODIAN_DB")
        .env("CUSTODIAN_LOG_DIR", dir.path().join("logs"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The first pass runs at once; then the worker sleeps for an hour.
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let pass: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(
        (pass["sources"].as_i64(), pass["failed"].as_i64()),
        (Some(1), Some(0)),
        "{pass}"
    );
    assert_eq!(pass["runs"][0]["run"]["joiners"], 2);

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "SIGTERM is a clean stop");
    let logs = std::fs::read_dir(dir.path().join("logs"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect::<String>();
    assert!(
        logs.contains("sync run applied") && logs.contains("SIGTERM"),
        "{logs}"
    );
    assert!(logs.contains("scheduled syncs stopped"), "{logs}");
}
