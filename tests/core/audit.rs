//! The audit log's hash chain detects edits, deletions and reordering, in the
//! cache and in an exported copy.

use custodian::store::audit::{verify_entries, AuditEntry};
use custodian::store::Store;

use crate::util::now;

/// A cache with a few audited actions (acting-person changes).
fn logged() -> Store {
    let mut b = crate::util::OrgBuilder::new();
    for n in ["Ann", "Bo", "Cy", "Di"] {
        b.person(n, custodian::model::PersonStatus::Active);
    }
    let mut store = crate::util::test_store();
    store.replace_org(&b.org, now()).unwrap();
    for p in ["1", "2", "3", "4"] {
        custodian::ops::set_acting_person(&mut store, p, now()).unwrap();
    }
    store
}

fn entries(store: &Store) -> Vec<AuditEntry> {
    store.audit_entries(0, 1000).unwrap()
}

#[test]
fn an_untouched_log_verifies_and_names_its_head() {
    let store = logged();
    let v = store.verify_audit().unwrap();
    assert!(v.ok, "{v:?}");
    assert_eq!(v.entries, 4);
    assert_eq!(v.head, store.audit_head().unwrap());
    assert_eq!(
        verify_entries(&entries(&store)),
        v,
        "an export verifies the same way"
    );
}

#[test]
fn edits_deletions_and_reordering_are_detected() {
    let store = logged();
    store
        .raw_db()
        .execute("UPDATE audit_log SET details = '{}' WHERE seq = 3", [])
        .unwrap();
    let v = store.verify_audit().unwrap();
    assert_eq!((v.ok, v.first_bad_seq), (false, Some(3)));
    assert!(v.problem.unwrap().contains("edited"));

    let store = logged();
    store
        .raw_db()
        .execute("DELETE FROM audit_log WHERE seq = 2", [])
        .unwrap();
    let v = store.verify_audit().unwrap();
    assert_eq!((v.ok, v.first_bad_seq), (false, Some(3)));

    // Deleting the newest entry leaves a shorter chain that still verifies:
    // only a published head hash catches that, which is why exports carry it.
    let store = logged();
    let head = store.audit_head().unwrap();
    store
        .raw_db()
        .execute("DELETE FROM audit_log WHERE seq = 4", [])
        .unwrap();
    assert!(store.verify_audit().unwrap().ok);
    assert_ne!(store.audit_head().unwrap(), head);

    let store = logged();
    let mut e = entries(&store);
    e.swap(1, 2);
    let v = verify_entries(&e);
    assert!(!v.ok);
    assert!(v.problem.unwrap().contains("out of sequence"));
    // Renumbering after a swap does not help: the links break.
    let mut e = entries(&store);
    e.swap(1, 2);
    e[1].seq = 2;
    e[2].seq = 3;
    let v = verify_entries(&e);
    assert_eq!((v.ok, v.first_bad_seq), (false, Some(2)));
}

#[test]
fn an_export_verifies_offline_and_shows_tampering() {
    use custodian::store::audit::verify_export;
    let store = logged();
    let mut buf = Vec::new();
    let (n, head) = store
        .export_audit(&mut buf, "2026-11-01T00:00:00Z")
        .unwrap();
    let text = String::from_utf8(buf).unwrap();
    assert_eq!(
        text.lines().count() as i64,
        n + 1,
        "a header and one line per entry"
    );
    let v = verify_export(&text).unwrap();
    assert!(v.ok && v.head == head, "{v:?}");
    // Drop the newest entry: the chain alone still verifies, the header catches it.
    let cut: Vec<&str> = text.lines().collect();
    let v = verify_export(&cut[..cut.len() - 1].join("\n")).unwrap();
    assert!(!v.ok);
    assert!(v.problem.unwrap().contains("removed from the end"));
    // Edit an entry's actor.
    let edited = text.replacen("\"actor\":\"Ann\"", "\"actor\":\"Mallory\"", 1);
    assert_ne!(edited, text);
    assert!(!verify_export(&edited).unwrap().ok);
    // Not an export at all.
    assert!(verify_export("{\"format\":\"other\"}").is_err());
    assert!(verify_export("").is_err());
}

#[test]
fn sync_runs_and_source_changes_are_audited() {
    use custodian::sync::records::{FetchMode, Fetched};
    let mut store = crate::util::test_store();
    let src = store
        .add_source(
            "test",
            "HR",
            &serde_json::json!({"base_url": "https://hr.example"}),
            now(),
        )
        .unwrap();
    let run = store.begin_sync_run(src, now()).unwrap();
    store
        .apply_fetch(src, run, &Fetched::new(FetchMode::Full), now())
        .unwrap();
    let run = store.begin_sync_run(src, now()).unwrap();
    store
        .end_sync_run_unapplied(
            run,
            "failed",
            &custodian::Error::new(custodian::ErrorCode::Network, "down"),
            now(),
        )
        .unwrap();
    let actions: Vec<String> = entries(&store)
        .into_iter()
        .map(|e| format!("{} {}", e.action, e.subject))
        .collect();
    assert_eq!(
        actions,
        [
            "source.add source 1 HR",
            "sync.run source 1 HR",
            "sync.run source 1 HR"
        ]
    );
    assert!(entries(&store)[2].details.contains("\"status\":\"failed\""));
    assert!(store.verify_audit().unwrap().ok);
}
