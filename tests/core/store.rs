//! Opening, migrating and refusing cache files; atomic loads.

use custodian::model::*;
use custodian::store::migrations::{latest_version, APPLICATION_ID, MIGRATIONS};
use custodian::store::Store;
use custodian::ErrorCode;

use crate::util::{file_bytes, now, OrgBuilder};

#[test]
fn migrations_are_numbered_in_order() {
    for (i, m) in MIGRATIONS.iter().enumerate() {
        assert_eq!(
            m.version,
            i as i64 + 1,
            "migration {} out of order",
            m.description
        );
    }
    assert_eq!(latest_version(), MIGRATIONS.len() as i64);
}

#[test]
fn new_file_is_created_migrated_and_configured() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/cache.db");
    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), latest_version());
    let c = store.raw_db();
    let mode: String = c
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let fk: i64 = c
        .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
        .unwrap();
    assert_eq!(fk, 1);
    let app: i64 = c
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .unwrap();
    assert_eq!(app, APPLICATION_ID);
    assert!(store.is_empty().unwrap());
}

#[test]
fn data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.db");
    let mut b = OrgBuilder::new();
    let p = b.person("Ada Okafor", PersonStatus::Active);
    b.identity("billing-agent", IdentityKind::AiAgent, Some(p));
    {
        let mut store = Store::open(&path).unwrap();
        store.replace_org(&b.org, now()).unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.summary().unwrap().identities, 1);
    assert_eq!(
        store.resolve_identity("billing-agent").unwrap(),
        IdentityId(1)
    );
}

#[test]
fn garbage_file_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.db");
    let garbage: Vec<u8> = (0..8192u32).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(&path, &garbage).unwrap();
    let err = Store::open(&path).unwrap_err();
    assert_eq!(err.code, ErrorCode::DatabaseUnreadable, "{err}");
    assert!(
        err.message.contains("cache.db"),
        "message names the file: {err}"
    );
    assert_eq!(file_bytes(&path), garbage);
    assert!(!dir.path().join("cache.db-wal").exists());
}

#[test]
fn newer_schema_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.db");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(&format!(
            "CREATE TABLE future(x); PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {};",
            latest_version() + 5
        ))
        .unwrap();
    }
    let before = file_bytes(&path);
    let err = Store::open(&path).unwrap_err();
    assert_eq!(err.code, ErrorCode::DatabaseTooNew, "{err}");
    assert!(err.message.contains("newer Custodian"), "{err}");
    assert_eq!(file_bytes(&path), before);
}

#[test]
fn other_applications_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch("CREATE TABLE contacts(name TEXT); INSERT INTO contacts VALUES ('x');")
            .unwrap();
    }
    let before = file_bytes(&path);
    let err = Store::open(&path).unwrap_err();
    assert_eq!(err.code, ErrorCode::DatabaseUnreadable, "{err}");
    assert_eq!(file_bytes(&path), before);
}

#[test]
fn failed_load_keeps_the_previous_organisation() {
    let mut store = Store::open_in_memory().unwrap();
    let mut good = OrgBuilder::new();
    let p = good.person("Ada Okafor", PersonStatus::Active);
    good.identity("kept-agent", IdentityKind::AiAgent, Some(p));
    store.replace_org(&good.org, now()).unwrap();

    let mut bad = OrgBuilder::new();
    let q = bad.person("Ben Novak", PersonStatus::Active);
    let i = bad.identity("new-agent", IdentityKind::AiAgent, Some(q));
    // A grant on a resource that does not exist violates a foreign key.
    bad.grant(i, ResourceId(99), Privilege::Read);
    let err = store.replace_org(&bad.org, now()).unwrap_err();
    assert_eq!(err.code, ErrorCode::Storage, "{err}");

    let s = store.summary().unwrap();
    assert_eq!(s.identities, 1);
    assert_eq!(store.resolve_identity("kept-agent").unwrap(), IdentityId(1));
    assert_eq!(
        store.resolve_identity("new-agent").unwrap_err().code,
        ErrorCode::NotFound
    );
}

#[test]
fn migrating_from_empty_step_by_step_reaches_latest() {
    let mut store = Store::open_in_memory_at(0).unwrap();
    assert_eq!(store.schema_version().unwrap(), 0);
    for m in MIGRATIONS {
        store.migrate_to(m.version).unwrap();
        assert_eq!(store.schema_version().unwrap(), m.version);
    }
}

#[test]
fn the_cache_is_encrypted_at_rest_and_a_legacy_cache_is_migrated() {
    crate::util::test_key();
    let dir = tempfile::tempdir().unwrap();
    // A new cache: no SQLite header, no readable names in the file.
    let path = dir.path().join("new.db");
    {
        let mut store = Store::open(&path).unwrap();
        custodian::ops::load_demo(&mut store, custodian::demo::DemoSize::S, 1, now()).unwrap();
        store
            .raw_db()
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .unwrap();
    }
    let bytes = file_bytes(&path);
    assert_ne!(&bytes[..16], b"SQLite format 3\0");
    assert!(
        !bytes.windows(9).any(|w| w == b"contoso.e"),
        "plaintext found in the encrypted cache"
    );

    // An unencrypted cache of an earlier Custodian: encrypted on open, nothing lost.
    let legacy = dir.path().join("legacy.db");
    let mut old = Store::open_in_memory().unwrap();
    custodian::ops::load_demo(&mut old, custodian::demo::DemoSize::S, 1, now()).unwrap();
    let summary = old.summary().unwrap();
    old.raw_db()
        .execute("VACUUM INTO ?1", [legacy.to_str().unwrap()])
        .unwrap();
    assert_eq!(&file_bytes(&legacy)[..16], b"SQLite format 3\0");
    let store = Store::open(&legacy).unwrap();
    assert_eq!(store.summary().unwrap().identities, summary.identities);
    assert!(store.verify_audit().unwrap().ok);
    drop(store);
    assert_ne!(
        &file_bytes(&legacy)[..16],
        b"SQLite format 3\0",
        "encrypted in place"
    );
    assert!(!dir.path().join("legacy.encrypting").exists());
}

#[test]
fn a_wrong_key_is_a_clear_error_and_touches_nothing() {
    crate::util::test_key();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let run = |key: &str, args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_custodian"))
            .arg("--db")
            .arg(&db)
            .args(args)
            .env("CUSTODIAN_CACHE_KEY", key)
            .env_remove("CUSTODIAN_DB")
            .output()
            .unwrap()
    };
    assert!(run("right passphrase", &["demo", "--size", "s"])
        .status
        .success());
    // Fold the WAL so the file alone is the cache.
    assert!(run("right passphrase", &["summary"]).status.success());
    let before = file_bytes(&db);
    let out = run("wrong passphrase", &["summary"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("error[database_unreadable]")
            && err.contains("cannot be read with the cache key"),
        "{err}"
    );
    assert_eq!(file_bytes(&db), before, "left untouched");
    assert!(
        run("right passphrase", &["summary"]).status.success(),
        "the right key still opens it"
    );
}
