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
    let mut store = Store::open_in_memory().unwrap();
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
        .conn()
        .execute("UPDATE audit_log SET details = '{}' WHERE seq = 3", [])
        .unwrap();
    let v = store.verify_audit().unwrap();
    assert_eq!((v.ok, v.first_bad_seq), (false, Some(3)));
    assert!(v.problem.unwrap().contains("edited"));

    let store = logged();
    store
        .conn()
        .execute("DELETE FROM audit_log WHERE seq = 2", [])
        .unwrap();
    let v = store.verify_audit().unwrap();
    assert_eq!((v.ok, v.first_bad_seq), (false, Some(3)));

    // Deleting the newest entry leaves a shorter chain that still verifies:
    // only a published head hash catches that, which is why exports carry it.
    let store = logged();
    let head = store.audit_head().unwrap();
    store
        .conn()
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
