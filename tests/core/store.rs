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

/// The passphrase the suite runs with, and the raw key earlier Custodian
/// versions derived from it (its unsalted SHA-256).
fn passphrase_and_legacy_key() -> (String, String) {
    crate::util::test_key();
    let pass = std::env::var(custodian::store::key::KEY_ENV).unwrap();
    let legacy = custodian::store::key::CacheKey::passphrase(&pass)
        .unwrap()
        .legacy();
    let Some(custodian::store::key::CacheKey::Raw(hex)) = legacy else {
        panic!("a passphrase has a legacy raw key");
    };
    (pass, hex)
}

/// A cache as an earlier Custodian wrote it: demo data, an audit chain,
/// encrypted under `PRAGMA key = "x'<sha256(passphrase)>'"`.
fn legacy_cache(dir: &std::path::Path, name: &str, wal: bool) -> (std::path::PathBuf, i64, usize) {
    let (_, hex) = passphrase_and_legacy_key();
    let mut old = Store::open_in_memory().unwrap();
    custodian::ops::load_demo(&mut old, custodian::demo::DemoSize::S, 1, now()).unwrap();
    old.add_source(
        "csv",
        "registry",
        &serde_json::json!({"path": "/r.csv"}),
        now(),
    )
    .unwrap();
    let identities = old.summary().unwrap().identities;
    let entries = old.audit_entries(0, 10_000).unwrap().len();
    assert!(entries >= 1, "the legacy cache has an audit chain");
    let plain = dir.join(format!("{name}.plain"));
    old.raw_db()
        .execute("VACUUM INTO ?1", [plain.to_str().unwrap()])
        .unwrap();
    let path = dir.join(name);
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute_batch(&format!("PRAGMA key = \"x'{hex}'\";"))
        .unwrap();
    c.execute(
        "ATTACH DATABASE ?1 AS plain KEY ''",
        [plain.to_str().unwrap()],
    )
    .unwrap();
    c.query_row("SELECT sqlcipher_export('main', 'plain')", [], |_| Ok(()))
        .unwrap();
    let version: i64 = c
        .query_row("PRAGMA plain.user_version", [], |r| r.get(0))
        .unwrap();
    c.execute_batch(&format!(
        "PRAGMA user_version = {version}; PRAGMA application_id = {APPLICATION_ID}; DETACH DATABASE plain;"
    ))
    .unwrap();
    if wal {
        let _: String = c
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .unwrap();
    }
    drop(c);
    std::fs::remove_file(&plain).unwrap();
    (path, identities, entries)
}

/// Reads the identity count under a given `PRAGMA key` value, bypassing
/// the store.
fn count_with(path: &std::path::Path, pragma: &str) -> rusqlite::Result<i64> {
    let c = rusqlite::Connection::open(path)?;
    c.execute_batch(pragma)?;
    c.query_row("SELECT count(*) FROM identities", [], |r| r.get(0))
}

#[test]
fn a_cache_keyed_with_the_legacy_derivation_is_rekeyed_to_the_passphrase() {
    let (pass, hex) = passphrase_and_legacy_key();
    let dir = tempfile::tempdir().unwrap();
    let (path, identities, entries) = legacy_cache(dir.path(), "legacy.db", true);
    let legacy_pragma = format!("PRAGMA key = \"x'{hex}'\";");
    let pass_pragma = custodian::store::key::CacheKey::passphrase(&pass)
        .unwrap()
        .pragma();
    assert_eq!(count_with(&path, &legacy_pragma).unwrap(), identities);
    assert!(
        count_with(&path, &pass_pragma).is_err(),
        "not yet the passphrase form"
    );

    // Opening it as usual rekeys it; data and the audit chain are intact.
    let store = Store::open(&path).unwrap();
    assert_eq!(store.summary().unwrap().identities, identities);
    let v = store.verify_audit().unwrap();
    assert!(v.ok, "{v:?}");
    let log = store.audit_entries(0, 10_000).unwrap();
    assert_eq!(log.len(), entries + 1, "one entry more: the rekey");
    let last = log.last().unwrap();
    assert_eq!(last.action, "cache.rekey");
    assert!(
        !last.details.contains(&pass) && !last.details.contains(&hex),
        "no key material in the audit entry: {}",
        last.details
    );
    assert!(last.details.contains("256,000"), "{}", last.details);
    let mode: String = store
        .raw_db()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal", "WAL mode is back after the rekey");
    drop(store);

    // Now the passphrase form, and only it, opens the file.
    assert!(
        count_with(&path, &legacy_pragma).is_err(),
        "the legacy raw key no longer opens it"
    );
    assert_eq!(count_with(&path, &pass_pragma).unwrap(), identities);
    // A second open neither rekeys nor audits again.
    let store = Store::open(&path).unwrap();
    assert_eq!(store.audit_entries(0, 10_000).unwrap().len(), entries + 1);
    assert!(store.verify_audit().unwrap().ok);
}

#[test]
fn a_failed_rekey_leaves_the_legacy_cache_readable_and_a_wrong_passphrase_touches_nothing() {
    let (_, hex) = passphrase_and_legacy_key();
    let dir = tempfile::tempdir().unwrap();
    // Rollback-journal mode, so nothing is folded or switched before the
    // rekey itself. Another connection (an older Custodian, say) holds a
    // read transaction: SQLCipher rewrites every page, then cannot take the
    // lock to commit them (after the 5 s busy timeout) and rolls back.
    let (path, identities, entries) = legacy_cache(dir.path(), "stuck.db", false);
    let legacy_pragma = format!("PRAGMA key = \"x'{hex}'\";");
    let before = file_bytes(&path);
    let reader = rusqlite::Connection::open(&path).unwrap();
    reader.execute_batch(&legacy_pragma).unwrap();
    reader.execute_batch("BEGIN").unwrap();
    let n: i64 = reader
        .query_row("SELECT count(*) FROM identities", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, identities);
    let e = Store::open(&path).unwrap_err();
    assert_eq!(e.code, ErrorCode::Storage, "{e:?}");
    assert!(
        e.message.contains("(rekeying: the rewrite did not commit)")
            && e.message.contains("left as it was"),
        "{}",
        e.message
    );
    // The reader still reads under the old key, in its transaction and after.
    let n: i64 = reader
        .query_row("SELECT count(*) FROM identities", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, identities);
    reader.execute_batch("COMMIT").unwrap();
    drop(reader);
    assert_eq!(file_bytes(&path), before, "the failed rekey rolled back");
    assert!(!dir.path().join("stuck.db-journal").exists());
    assert_eq!(
        count_with(&path, &legacy_pragma).unwrap(),
        identities,
        "still readable under the old key"
    );

    // A wrong passphrase (neither form opens it) is refused and writes nothing.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_custodian"))
        .arg("--db")
        .arg(&path)
        .arg("summary")
        .env("CUSTODIAN_CACHE_KEY", "not the passphrase")
        .env_remove("CUSTODIAN_DB")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("error[database_unreadable]")
            && err.contains("cannot be read with the cache key"),
        "{err}"
    );
    assert_eq!(file_bytes(&path), before, "left byte-identical");
    assert!(
        !err.contains("hmac check failed"),
        "SQLCipher's own log stays quiet during the probes: {err}"
    );

    // Once the other connection is gone the same open migrates it.
    let store = Store::open(&path).unwrap();
    assert_eq!(store.summary().unwrap().identities, identities);
    assert_eq!(store.audit_entries(0, 10_000).unwrap().len(), entries + 1);
    assert!(store.verify_audit().unwrap().ok);
    drop(store);
    assert!(count_with(&path, &legacy_pragma).is_err());
}

#[test]
fn db_copy_from_a_legacy_cache_rekeys_it_and_writes_a_passphrase_keyed_copy() {
    let (pass, hex) = passphrase_and_legacy_key();
    let dir = tempfile::tempdir().unwrap();
    let (from, identities, entries) = legacy_cache(dir.path(), "old.db", true);
    let to = dir.path().join("copy.db");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_custodian"))
        .args(["db", "copy", "--json", "--from"])
        .arg(&from)
        .arg("--to")
        .arg(&to)
        .env("CUSTODIAN_CACHE_KEY", &pass)
        .env_remove("CUSTODIAN_DB")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The copy carries the source's chain, the rekey entry included.
    assert!(
        stdout.contains(&format!("\"audit_entries\": {}", entries + 1)),
        "{stdout}"
    );
    let legacy_pragma = format!("PRAGMA key = \"x'{hex}'\";");
    let pass_pragma = custodian::store::key::CacheKey::passphrase(&pass)
        .unwrap()
        .pragma();
    for p in [&from, &to] {
        assert_eq!(
            count_with(p, &pass_pragma).unwrap(),
            identities,
            "{}",
            p.display()
        );
        assert!(
            count_with(p, &legacy_pragma).is_err(),
            "{} is not under the legacy key",
            p.display()
        );
    }
}

/// The bulk insert every load, sync, copy and campaign launch writes
/// through (`Db::insert_rows_with`; on PostgreSQL one statement of array
/// parameters per batch): across batch boundaries, every value comes back
/// as it went in, NULLs and hostile text included, a suffix applies, and a
/// row of the wrong width is an error, not a misaligned row.
#[test]
fn bulk_inserts_keep_every_value_across_batches() {
    use custodian::store::db::Value;
    let store = crate::util::test_store();
    let db = store.raw_db();
    let ddl = if crate::util::on_postgres() {
        "CREATE TEMP TABLE bulk_probe (id BIGINT PRIMARY KEY, n INTEGER, r DOUBLE PRECISION,
            t TEXT, b BYTEA, flag BOOLEAN, j JSONB)"
    } else {
        "CREATE TEMP TABLE bulk_probe (id INTEGER PRIMARY KEY, n INTEGER, r REAL,
            t TEXT, b BLOB, flag INTEGER, j TEXT)"
    };
    db.execute_batch(ddl).unwrap();
    let cols = ["id", "n", "r", "t", "b", "flag", "j"];
    let text = |i: i64| format!("'); DROP TABLE bulk_probe; -- \\ \t\n\"ü{i}\u{0}x");
    let text = |i: i64| text(i).replace('\u{0}', ""); // PostgreSQL text has no NUL
    let row = |i: i64| -> Vec<Value> {
        if i % 7 == 0 {
            return vec![
                Value::Int(i),
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
            ];
        }
        vec![
            Value::Int(i),
            Value::Int(-i),
            Value::Real(i as f64 / 3.0),
            Value::Text(text(i)),
            Value::Blob(vec![0, 255, (i % 256) as u8, b'\\']),
            Value::Int(i % 2),
            Value::Text(format!("{{\"k\": {i}}}")),
        ]
    };
    let total = 2_345;
    let n = db
        .insert_rows("bulk_probe", &cols, (1..=total).map(row))
        .unwrap();
    assert_eq!(n, total as usize);
    // A suffix: the conflicting half is skipped, the rest written.
    let n = db
        .insert_rows_with(
            "bulk_probe",
            &cols,
            "ON CONFLICT (id) DO NOTHING",
            (total - 999..=total + 1_001).map(row),
        )
        .unwrap();
    assert_eq!(n, 1_001);
    type Back = (
        i64,
        Option<i64>,
        Option<f64>,
        Option<String>,
        Option<Vec<u8>>,
        Option<bool>,
    );
    let back: Vec<Back> = db
        .query_map(
            "SELECT id, n, r, t, b, flag FROM bulk_probe ORDER BY id",
            [],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            },
        )
        .unwrap();
    assert_eq!(back.len(), (total + 1_001) as usize);
    for (id, n, r, t, b, flag) in back {
        if id % 7 == 0 {
            assert_eq!(
                (n, r.is_none(), t, b, flag),
                (None, true, None, None, None),
                "row {id}"
            );
            continue;
        }
        assert_eq!(n, Some(-id));
        assert!((r.unwrap() - id as f64 / 3.0).abs() < 1e-9, "row {id}");
        assert_eq!(t.as_deref(), Some(text(id).as_str()));
        assert_eq!(b, Some(vec![0, 255, (id % 256) as u8, b'\\']));
        assert_eq!(flag, Some(id % 2 == 1));
    }
    let j: String = db
        .query_row("SELECT j FROM bulk_probe WHERE id = 5", [], |r| r.get(0))
        .unwrap();
    assert!(j.replace(' ', "") == "{\"k\":5}", "{j}");
    // A short row fails the call; no value lands in another's column.
    let bad = vec![
        vec![Value::Int(10_000)],
        vec![Value::Int(10_001), Value::Null],
    ];
    assert!(db.insert_rows("bulk_probe", &["id", "n"], bad).is_err());
    let stray: i64 = db
        .query_row(
            "SELECT count(*) FROM bulk_probe WHERE id >= 10000",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stray, 0);
}
