//! Faults: a sync process killed mid-way leaves the last good snapshot intact
//! and the run is recorded as interrupted.

use std::io::Write;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use custodian::store::Store;

const REGISTRY: &str = "name,kind,purpose\nkept-agent,ai_agent,Survives the crash\nkept-svc,service_account,Also survives\n";

fn cli(db: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_custodian"));
    c.arg("--db").arg(db).env_remove("CUSTODIAN_DB");
    c
}

#[test]
fn killing_a_sync_midway_keeps_the_snapshot_and_marks_the_run_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cache.db");
    let csv = dir.path().join("registry.csv");
    std::fs::write(&csv, REGISTRY).unwrap();
    let out = cli(&db).args(["import"]).arg(&csv).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // A "source" that accepts connections and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let out = cli(&db)
        .args(["source", "add", "scim", "--name", "hanging", "--set"])
        .arg(format!("base_url=http://127.0.0.1:{port}/v2"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let before = Store::open(&db).unwrap().summary().unwrap();
    assert_eq!(before.identities, 2);

    let mut child = cli(&db)
        .args(["sync", "hanging", "--secret-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"token\n").unwrap();
    listener.set_nonblocking(true).unwrap();
    let started = Instant::now();
    let _conn = loop {
        if let Ok((c, _)) = listener.accept() {
            break c;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "the sync never connected");
        std::thread::sleep(Duration::from_millis(20));
    };
    // The run is recorded as running while it fetches.
    {
        let raw = rusqlite::Connection::open(&db).unwrap();
        let status: String =
            raw.query_row("SELECT status FROM sync_runs ORDER BY id DESC LIMIT 1", [], |r| r.get(0)).unwrap();
        assert_eq!(status, "running");
    }
    child.kill().unwrap(); // SIGKILL: no cleanup runs
    child.wait().unwrap();

    let store = Store::open(&db).unwrap();
    assert_eq!(store.summary().unwrap(), before, "the last good snapshot is intact");
    let runs = store.sync_runs(None, 5).unwrap();
    assert_eq!(runs[0].status, "interrupted");
    assert!(runs[0].error_message.as_deref().unwrap().contains("previous snapshot was kept"));
    assert_eq!(runs[1].status, "succeeded");
}
