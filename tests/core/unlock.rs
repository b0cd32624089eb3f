//! A cache passphrase given at run time (the desktop app's unlock window,
//! where no Secret Service runs): `ops::open_or_demo_with_key` with
//! `KeySource::Passphrase`, the `<cache>.key-mode` marker, and the CLI
//! without a keyring on a cache made that way.

use std::path::Path;
use std::process::{Command, Output};

use custodian::ops::{self, CacheKey, KeySource};
use custodian::store::key::{key_mode_path, KEY_ENV};
use custodian::store::Location;
use custodian::ErrorCode;

use crate::util;

const PASS: &str = "correct horse battery staple";

/// The CLI on `db` with no Secret Service (a session bus that does not
/// exist) and `key` as `CUSTODIAN_CACHE_KEY` (None: unset).
fn cli_without_keyring(db: &Path, key: Option<&str>, args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_custodian"));
    c.arg("--db").arg(db).args(args);
    // Logs beside the cache's folder, not in it (its files are compared).
    c.env(
        "CUSTODIAN_LOG_DIR",
        db.parent().unwrap().with_extension("logs"),
    );
    c.env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
        .env_remove("CUSTODIAN_DB")
        .env_remove(KEY_ENV);
    if let Some(k) = key {
        c.env(KEY_ENV, k);
    }
    c.output().unwrap()
}

fn files_of(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_run_time_passphrase_keys_a_new_cache_marks_it_and_only_it_opens_it() {
    let now = util::now();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("custodian.db");
    let loc = Location::File(db.clone());
    let chosen = CacheKey::chosen(PASS, PASS).unwrap();

    let store = ops::open_or_demo_with_key(&loc, KeySource::Passphrase(chosen), now).unwrap();
    let identities = ops::summary(&store).unwrap().identities;
    assert!(identities > 0, "a new cache gets the demo organisation");
    drop(store);

    assert_ne!(
        &std::fs::read(&db).unwrap()[..16],
        b"SQLite format 3\0",
        "the cache is encrypted"
    );
    assert_eq!(
        std::fs::read_to_string(key_mode_path(&db)).unwrap(),
        "passphrase\n",
        "the marker says how the cache is keyed, and nothing more"
    );

    // A wrong passphrase: database_unreadable, every file left as it was
    // (the cache, its marker; no WAL or journal appears).
    let before = files_of(dir.path());
    let wrong = CacheKey::entered("correct horse battery stapler").unwrap();
    let e = ops::open_or_demo_with_key(&loc, KeySource::Passphrase(wrong), now).unwrap_err();
    assert_eq!(e.code, ErrorCode::DatabaseUnreadable, "{e}");
    assert!(!e.message.contains(PASS), "{e}");
    assert!(
        files_of(dir.path()) == before,
        "a wrong passphrase wrote nothing"
    );

    // The right one opens the same data (no second demo load).
    let right = CacheKey::entered(PASS).unwrap();
    let store = ops::open_or_demo_with_key(&loc, KeySource::Passphrase(right), now).unwrap();
    assert_eq!(ops::summary(&store).unwrap().identities, identities);
    drop(store);

    // The CLI with no keyring: the marker sends it to the passphrase, not to
    // the keyring, with the `keyring` code the app answers with its unlock
    // window; nothing is written.
    let before = files_of(dir.path());
    let out = cli_without_keyring(&db, None, &["summary", "--json"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("error[keyring]")
            && err.contains("protected by a passphrase")
            && err.contains(KEY_ENV),
        "{err}"
    );
    assert!(
        files_of(dir.path()) == before,
        "the refused open wrote nothing"
    );
    // The same passphrase as CUSTODIAN_CACHE_KEY opens it: one key form.
    let out = cli_without_keyring(&db, Some(PASS), &["summary", "--json"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("\"identities\": {identities}")),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(dir.path().with_extension("logs"));
}

#[test]
fn without_a_secret_service_a_new_cache_is_refused_with_keyring_and_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("custodian.db");
    let out = cli_without_keyring(&db, None, &["summary", "--json"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("error[keyring]") && err.contains("Secret Service"),
        "{err}"
    );
    // No half-made cache: the app's next step (choose a passphrase) starts
    // from a new cache.
    assert!(!db.exists(), "no cache file was left behind");
    assert!(!key_mode_path(&db).exists());
}

#[test]
fn an_unmarked_passphrase_cache_opens_with_its_passphrase_and_is_marked() {
    // A cache made headless (CUSTODIAN_CACHE_KEY) has no marker; unlocking
    // it with the same passphrase at run time works and marks it, so the
    // app asks for the passphrase directly next time. A wrong one marks
    // nothing.
    let now = util::now();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("headless.db");
    let out = cli_without_keyring(&db, Some(PASS), &["summary", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!key_mode_path(&db).exists());
    let loc = Location::File(db.clone());

    let wrong = CacheKey::entered("not the passphrase").unwrap();
    let e = ops::open_or_demo_with_key(&loc, KeySource::Passphrase(wrong), now).unwrap_err();
    assert_eq!(e.code, ErrorCode::DatabaseUnreadable, "{e}");
    assert!(
        !key_mode_path(&db).exists(),
        "a wrong passphrase marks nothing"
    );

    let right = CacheKey::entered(PASS).unwrap();
    let store = ops::open_or_demo_with_key(&loc, KeySource::Passphrase(right), now).unwrap();
    assert!(ops::summary(&store).unwrap().identities > 0);
    assert!(
        key_mode_path(&db).exists(),
        "marked once the passphrase opened it"
    );
}

#[test]
fn a_team_workspace_takes_no_cache_passphrase() {
    let loc = Location::parse("postgresql://u@127.0.0.1:9/db").unwrap();
    let key = CacheKey::chosen(PASS, PASS).unwrap();
    let e = ops::open_or_demo_with_key(&loc, KeySource::Passphrase(key), util::now()).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidInput, "{e}");
}
