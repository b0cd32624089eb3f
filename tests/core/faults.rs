//! Faults: a sync process killed mid-way leaves the last good snapshot intact
//! and the run is recorded as interrupted.

use std::io::Write;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use custodian::store::Store;

const REGISTRY: &str = "name,kind,purpose\nkept-agent,ai_agent,Survives the crash\nkept-svc,service_account,Also survives\n";

fn cli(db: &std::path::Path) -> Command {
    crate::util::test_key();
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
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A "source" that accepts connections and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let out = cli(&db)
        .args(["source", "add", "scim", "--name", "hanging", "--set"])
        .arg(format!("base_url=http://127.0.0.1:{port}/v2"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the sync never connected"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    // The run is recorded as running while it fetches.
    {
        let raw = custodian::store::open_raw(&db).unwrap();
        let status: String = raw
            .query_row(
                "SELECT status FROM sync_runs ORDER BY id DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(status, "running");
    }
    child.kill().unwrap(); // SIGKILL: no cleanup runs
    child.wait().unwrap();

    let store = Store::open(&db).unwrap();
    assert_eq!(
        store.summary().unwrap(),
        before,
        "the last good snapshot is intact"
    );
    let runs = store.sync_runs(None, 5).unwrap();
    assert_eq!(runs[0].status, "interrupted");
    assert!(runs[0]
        .error_message
        .as_deref()
        .unwrap()
        .contains("previous snapshot was kept"));
    assert_eq!(runs[1].status, "succeeded");
}

/// Starts `args` with a failpoint, waits until the process sits inside the
/// transaction, and SIGKILLs it.
fn kill_at_failpoint(db: &std::path::Path, point: &str, args: &[&str]) {
    let mark = db.with_extension(format!("{point}.mark"));
    let mut child = cli(db)
        .args(args)
        .env("CUSTODIAN_FAILPOINT", point)
        .env("CUSTODIAN_FAILPOINT_MARK", &mark)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !mark.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{point} was never reached"
        );
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the command ended ({status}) before reaching {point}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

fn count(db: &std::path::Path, sql: &str) -> i64 {
    custodian::store::open_raw(db)
        .unwrap()
        .query_row(sql, [], |r| r.get(0))
        .unwrap()
}

#[test]
fn killing_a_campaign_close_loses_no_decision_and_applies_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cache.db");
    assert!(cli(&db)
        .args(["demo", "--size", "s"])
        .output()
        .unwrap()
        .status
        .success());
    let out = cli(&db)
        .args([
            "--as",
            "1",
            "campaign",
            "create",
            "--name",
            "Bots",
            "--kind",
            "bot",
            "--granularity",
            "identities",
            "--fallback",
            "2",
            "--due",
            "2030-01-01",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let item: i64 = count(
        &db,
        "SELECT min(id) FROM campaign_items WHERE reviewer_id = 2",
    );
    let out = cli(&db)
        .args([
            "--as",
            "2",
            "campaign",
            "decide",
            &item.to_string(),
            "--decision",
            "retire",
            "--justification",
            "unused",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let audit_before = count(&db, "SELECT count(*) FROM audit_log");

    kill_at_failpoint(
        &db,
        "campaign.close",
        &[
            "--as",
            "1",
            "campaign",
            "close",
            "1",
            "--undecided",
            "revoke",
        ],
    );

    let store = Store::open(&db).unwrap();
    let c = store
        .campaign(custodian::campaigns::CampaignId(1), chrono::Utc::now())
        .unwrap();
    assert_eq!(c.status.as_str(), "active", "the close rolled back");
    assert_eq!(
        c.decided, 1,
        "the decision made before the crash is there; none by policy"
    );
    assert_eq!(count(&db, "SELECT count(*) FROM tasks"), 0);
    assert_eq!(count(&db, "SELECT count(*) FROM audit_log"), audit_before);
    assert!(store.verify_audit().unwrap().ok);
    drop(store);
    // Closing again works.
    let out = cli(&db)
        .args([
            "--as",
            "1",
            "campaign",
            "close",
            "1",
            "--undecided",
            "revoke",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn killing_an_offboarding_apply_changes_no_owner() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cache.db");
    assert!(cli(&db)
        .args(["demo", "--size", "s"])
        .output()
        .unwrap()
        .status
        .success());
    let (case, manager): (i64, i64) = custodian::store::open_raw(&db)
        .unwrap()
        .query_row("SELECT id, manager_id FROM offboarding_cases WHERE manager_id IS NOT NULL ORDER BY id LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    let person: i64 = count(
        &db,
        &format!("SELECT person_id FROM offboarding_cases WHERE id = {case}"),
    );
    let owners_before = count(
        &db,
        &format!("SELECT count(*) FROM identities WHERE owner_id = {manager}"),
    );
    let m = manager.to_string();
    let p = person.to_string();
    let out = cli(&db)
        .args(["--as", &m, "offboard", &p, "--transfer-to", &m])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    kill_at_failpoint(
        &db,
        "offboarding.apply",
        &["--as", &m, "offboard", &p, "--apply"],
    );

    assert_eq!(
        count(
            &db,
            &format!("SELECT count(*) FROM identities WHERE owner_id = {manager}")
        ),
        owners_before
    );
    assert_eq!(count(&db, &format!("SELECT count(*) FROM offboarding_items WHERE case_id = {case} AND applied_at IS NOT NULL")), 0);
    assert!(count(&db, &format!("SELECT count(*) FROM offboarding_items WHERE case_id = {case} AND action = 'transfer'")) > 0, "the plan survived");
    assert!(Store::open(&db).unwrap().verify_audit().unwrap().ok);
    let out = cli(&db)
        .args(["--as", &m, "offboard", &p, "--apply"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        count(
            &db,
            &format!("SELECT count(*) FROM identities WHERE owner_id = {manager}")
        ) > owners_before
    );
}

#[test]
fn a_full_disk_fails_clearly_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cache.db");
    let mut store = Store::open(&db).unwrap();
    custodian::ops::load_demo(
        &mut store,
        custodian::demo::DemoSize::S,
        1,
        chrono::Utc::now(),
    )
    .unwrap();
    let pages: i64 = store
        .raw_db()
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap();
    // No room to grow: as good as a full disk for SQLite.
    store
        .raw_db()
        .execute_batch(&format!("PRAGMA max_page_count = {}", pages))
        .unwrap();
    let audit = store.verify_audit().unwrap().entries;
    let c = custodian::campaigns::NewCampaign {
        name: "Everything".into(),
        description: String::new(),
        scope: Default::default(),
        granularity: custodian::campaigns::Granularity::All,
        reviewer_rule: custodian::campaigns::ReviewerRule::Owner,
        named_reviewer: None,
        fallback_reviewer: 2,
        second_reviewer: None,
        recurrence: custodian::campaigns::Recurrence::None,
        start_at: None,
        due_at: "2030-01-01".into(),
    };
    let err = store
        .create_campaign(1, &c, chrono::Utc::now())
        .unwrap_err();
    assert_eq!(err.code, custodian::ErrorCode::Storage);
    assert!(
        err.message.contains("disk is full") && err.message.contains("nothing was lost"),
        "{err}"
    );
    assert!(
        store.campaigns(chrono::Utc::now()).unwrap().is_empty(),
        "no half-made campaign"
    );
    let v = store.verify_audit().unwrap();
    assert!(v.ok && v.entries == audit);
}
