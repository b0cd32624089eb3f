//! The local SQLite cache.
//!
//! Invariants:
//! - `Store::open` / `Store::open_in_memory` are the only places a connection
//!   is opened; they set WAL, foreign keys and the busy timeout. (And
//!   `Store::open_snapshot`, read-only, for a workspace's offline snapshot.)
//! - An unreadable file or one from a newer schema is refused before anything
//!   is written to it.
//! - The store never calls the network.
//! - Roll-up columns on `identities` are refreshed by every write path before
//!   its transaction commits.

pub mod audit;
mod audit_views;
pub mod campaigns;
pub mod copy;
pub mod db;
mod finding_queries;
pub mod graph;
mod inventory;
pub mod key;
pub mod load;
pub mod migrations;
pub mod offboarding;
pub mod people;
pub mod pg;
pub mod posture;
mod raw;
mod schedule;
pub mod snapshot;
pub mod sync;
pub mod tasks;
pub mod workspace;
pub mod writeback;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{Connection, OpenFlags};

use crate::error::{Error, ErrorCode, Result};

pub use db::{Db, Engine};

pub use inventory::fts_query;

/// A handle on the cache. Not `Sync`: the desktop shell keeps it behind a mutex.
pub struct Store {
    db: Db,
    path: Option<PathBuf>,
    /// Shown and logged: the file, or the URL without its password.
    location: String,
    /// Set when this is a team workspace's offline snapshot, opened
    /// read-only (see [`snapshot`]).
    snapshot: Option<snapshot::SnapshotInfo>,
}

/// Where a store lives: the location picks the engine.
#[derive(Debug, Clone, PartialEq)]
pub enum Location {
    /// A SQLite/SQLCipher cache file.
    File(PathBuf),
    /// A PostgreSQL database (team workspace).
    Postgres(pg::PgTarget),
}

impl Location {
    /// A `postgres://` or `postgresql://` URL means PostgreSQL; anything
    /// else is a file path.
    pub fn parse(s: &str) -> Result<Location> {
        let t = s.trim();
        let lower = t.to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            Ok(Location::Postgres(pg::PgTarget::parse(t)?))
        } else if t.is_empty() {
            Err(Error::invalid("the database location is empty"))
        } else {
            Ok(Location::File(PathBuf::from(t)))
        }
    }

    /// Safe to show and log: a PostgreSQL URL loses its password.
    pub fn display(&self) -> String {
        match self {
            Location::File(p) => p.display().to_string(),
            Location::Postgres(t) => t.display(),
        }
    }

    pub fn engine(&self) -> Engine {
        match self {
            Location::File(_) => Engine::Sqlite,
            Location::Postgres(_) => Engine::Postgres,
        }
    }

    /// The cache file, for a SQLite location.
    pub fn file(&self) -> Option<&Path> {
        match self {
            Location::File(p) => Some(p),
            Location::Postgres(_) => None,
        }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("location", &self.location)
            .finish()
    }
}

impl Store {
    /// Opens (creating if missing) the cache at `path`, decrypting it with the
    /// key from the OS keyring (see [`key`]), and migrates it. An unencrypted
    /// cache from an earlier Custodian is encrypted first.
    ///
    /// A file that is not a Custodian cache, is corrupt, cannot be decrypted
    /// with the key, or was written by a newer schema gives an error and is
    /// left byte-for-byte untouched.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)?;
            }
        }
        let header = file_header(path)?;
        let key = match header {
            Header::Missing => key::for_new_cache()?,
            Header::Plain => {
                // Refuse what is not ours before touching it, then encrypt.
                let plain = open_conn(path)?;
                migrations::check_compatible_sqlite(&plain)
                    .map_err(|e| Error::new(e.code, format!("{}: {}", path.display(), e.message)))?;
                drop(plain);
                let key = key::for_new_cache()?;
                encrypt_in_place(path, &key)?;
                key
            }
            Header::Other => key::existing()?.ok_or_else(|| {
                Error::new(
                    ErrorCode::DatabaseUnreadable,
                    format!(
                        "{} is encrypted (or not a database) and no cache key is in the OS keyring; it was left untouched",
                        path.display()
                    ),
                )
            })?,
        };
        let (conn, rekeyed) = open_keyed(path, &key)?;
        // Checked before any pragma that writes (journal_mode=WAL writes the header).
        migrations::check_compatible_sqlite(&conn)
            .map_err(|e| Error::new(e.code, format!("{}: {}", path.display(), e.message)))?;
        let store = Store {
            db: Db::sqlite(conn),
            path: Some(path.to_path_buf()),
            location: path.display().to_string(),
            snapshot: None,
        };
        store.configure()?;
        migrations::migrate_to(&store.db, migrations::latest_version())?;
        if rekeyed {
            store.audit_rekey();
        }
        let interrupted = store.mark_interrupted_runs()?;
        if interrupted > 0 {
            tracing::warn!(interrupted, "sync runs were interrupted by a previous stop");
        }
        Ok(store)
    }

    /// Records that the cache was rekeyed from the legacy derivation (no key
    /// material). Best effort: the rekey has happened either way, so a
    /// missing audit key is logged rather than failing the open.
    fn audit_rekey(&self) {
        let write = || -> Result<()> {
            let tx = self.db.transaction()?;
            audit::append(
                &tx,
                to_ts(Utc::now()),
                "custodian",
                "cache.rekey",
                "cache",
                &serde_json::json!({
                    "from": "SHA-256 of CUSTODIAN_CACHE_KEY as the raw key (earlier Custodian)",
                    "to": format!("CUSTODIAN_CACHE_KEY as an SQLCipher passphrase ({})", key::CACHE_KDF),
                }),
            )?;
            tx.commit()
        };
        match write() {
            Ok(()) => {
                tracing::info!(path = %self.location, "rekeyed the cache from the legacy passphrase derivation")
            }
            Err(e) => {
                tracing::warn!(path = %self.location, error = %e, "rekeyed the cache, but could not audit it")
            }
        }
    }

    /// Opens the store at `location`: a file path (SQLite) or a
    /// `postgres://` / `postgresql://` URL (PostgreSQL).
    pub fn open_location(location: &Location) -> Result<Store> {
        match location {
            Location::File(path) => Store::open(path),
            Location::Postgres(target) => Store::open_postgres(target),
        }
    }

    /// Connects to a PostgreSQL database and migrates it (see [`pg`]). A
    /// database that holds another application's tables, or a newer
    /// Custodian schema, is refused before anything is written.
    pub fn open_postgres(target: &pg::PgTarget) -> Result<Store> {
        let db = pg::connect(target)?;
        migrations::check_compatible(&db)
            .map_err(|e| Error::new(e.code, format!("{}: {}", target.display(), e.message)))?;
        let store = Store {
            db,
            path: None,
            location: target.display(),
            snapshot: None,
        };
        migrations::migrate_to(&store.db, migrations::latest_version())?;
        let interrupted = store.mark_interrupted_runs()?;
        if interrupted > 0 {
            tracing::warn!(interrupted, "sync runs were interrupted by a previous stop");
        }
        Ok(store)
    }

    /// Like [`Store::open_postgres`], migrated only up to `version` (tests).
    pub fn open_postgres_at(target: &pg::PgTarget, version: i64) -> Result<Store> {
        let db = pg::connect(target)?;
        migrations::check_compatible(&db)?;
        let store = Store {
            db,
            path: None,
            location: target.display(),
            snapshot: None,
        };
        migrations::migrate_to(&store.db, version)?;
        Ok(store)
    }

    /// A private in-memory cache, migrated to the latest schema.
    pub fn open_in_memory() -> Result<Store> {
        Self::open_in_memory_at(migrations::latest_version())
    }

    /// An in-memory cache migrated only up to `version` (for migration tests).
    pub fn open_in_memory_at(version: i64) -> Result<Store> {
        let conn = Connection::open_in_memory()?;
        let store = Store {
            db: Db::sqlite(conn),
            path: None,
            location: ":memory:".into(),
            snapshot: None,
        };
        store.configure()?;
        migrations::migrate_to(&store.db, version)?;
        Ok(store)
    }

    fn configure(&self) -> Result<()> {
        let Some(conn) = self.db.sqlite_conn() else {
            return Ok(());
        };
        conn.busy_timeout(Duration::from_secs(5))?;
        if self.path.is_some() {
            let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
            if !mode.eq_ignore_ascii_case("wal") {
                tracing::warn!(mode, "WAL journal mode not available");
            }
        }
        conn.execute_batch(
            "PRAGMA foreign_keys = ON;
             PRAGMA synchronous = NORMAL;
             PRAGMA temp_store = MEMORY;
             PRAGMA cache_size = -65536;",
        )?;
        Ok(())
    }

    /// Migrates further (only used by migration tests).
    pub fn migrate_to(&mut self, version: i64) -> Result<()> {
        migrations::migrate_to(&self.db, version)
    }

    /// The schema version of the open cache.
    pub fn schema_version(&self) -> Result<i64> {
        migrations::schema_version(&self.db)
    }

    /// The cache file, for SQLite stores.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Where the store lives, safe to show and log (no password).
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Which engine this store runs on.
    pub fn engine(&self) -> Engine {
        self.db.engine()
    }

    /// The connection, for the store's own modules (tests and benchmarks
    /// use `raw_db`).
    pub(crate) fn db(&self) -> &Db {
        &self.db
    }

    /// True when the cache holds no source, no identity and no person: a
    /// fresh install, which opens on the demo organisation.
    pub fn is_empty(&self) -> Result<bool> {
        let n: i64 = self.db.query_row(
            "SELECT (SELECT count(*) FROM identities) + (SELECT count(*) FROM people) + (SELECT count(*) FROM sources)",
            [],
            |r| r.get(0),
        )?;
        Ok(n == 0)
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        meta_in(&self.db, key)
    }

    /// Appends a posture snapshot (figures as JSON) for the trend.
    pub fn add_posture_snapshot(&self, at: i64, origin: &str, figures: &str) -> Result<()> {
        self.db.execute(
            "INSERT INTO posture_snapshots (at, origin, figures) VALUES (?1, ?2, ?3)",
            crate::store::db::params![at, origin, figures],
        )?;
        Ok(())
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        set_meta_in(&self.db, key, value)
    }
}

/// [`Store::meta`] on a connection or within a transaction.
pub(crate) fn meta_in(db: &Db, key: &str) -> Result<Option<String>> {
    db.query_opt("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
}

/// [`Store::set_meta`] on a connection or within a transaction.
pub(crate) fn set_meta_in(db: &Db, key: &str, value: &str) -> Result<()> {
    db.execute(
        "INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [key, value],
    )?;
    Ok(())
}

/// Seconds since the epoch, as stored in SQLite.
pub(crate) fn to_ts(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

pub(crate) fn to_ts_opt(t: Option<DateTime<Utc>>) -> Option<i64> {
    t.map(to_ts)
}

pub(crate) fn from_ts(s: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(s, 0).single().unwrap_or_default()
}

enum Header {
    /// No file, or an empty one.
    Missing,
    /// An unencrypted SQLite file.
    Plain,
    /// Anything else: encrypted, or not a database.
    Other,
}

fn file_header(path: &Path) -> Result<Header> {
    use std::io::Read;
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Header::Missing),
        Err(e) => {
            return Err(Error::new(
                ErrorCode::DatabaseUnreadable,
                format!("cannot read {}: {e}", path.display()),
            ))
        }
    };
    let mut buf = [0u8; 16];
    let n = f.read(&mut buf)?;
    Ok(if n == 0 {
        Header::Missing
    } else if n == 16 && &buf == b"SQLite format 3\0" {
        Header::Plain
    } else {
        Header::Other
    })
}

fn open_conn(path: &Path) -> Result<Connection> {
    Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| {
        Error::new(
            ErrorCode::DatabaseUnreadable,
            format!("cannot open {}: {e}", path.display()),
        )
    })
}

/// Whether `key` fits: the first read of page 1 fails with "not a
/// database" when it does not.
fn first_read(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
}

fn is_not_a_database(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::NotADatabase)
}

/// A connection to the encrypted cache at `path` under `key`, and whether it
/// was rekeyed on the way.
///
/// A passphrase that does not open the file is tried once more under the
/// legacy derivation ([`key::CacheKey::legacy`]); when that opens it, the
/// file is rekeyed to the passphrase ([`rekey_legacy`]) and opened again.
/// A key that fits neither way writes nothing: the file is left
/// byte-for-byte as it was.
fn open_keyed(path: &Path, key: &key::CacheKey) -> Result<(Connection, bool)> {
    let unreadable = |e: &dyn std::fmt::Display| {
        Error::new(
            ErrorCode::DatabaseUnreadable,
            format!(
                "{} cannot be read with the cache key (a different key, or not a Custodian cache): {e}; it was left untouched",
                path.display()
            ),
        )
    };
    let conn = open_conn(path)?;
    conn.execute_batch(&key.pragma())?;
    // Probing with a key that may not fit makes SQLCipher log "hmac check
    // failed" to stderr (its default: warnings there); the errors below say
    // what happened, so it stays quiet until the probes are done. (Set after
    // the first key: SQLCipher applies its default level when first used.)
    let _quiet = QuietCipherLog::new();
    let e = match first_read(&conn) {
        Ok(_) => return Ok((conn, false)),
        Err(e) => e,
    };
    drop(conn);
    let Some(legacy) = key.legacy().filter(|_| is_not_a_database(&e)) else {
        return Err(unreadable(&e));
    };
    if !rekey_legacy(path, &legacy, key)? {
        return Err(unreadable(&e));
    }
    let conn = open_conn(path)?;
    conn.execute_batch(&key.pragma())?;
    first_read(&conn).map_err(|e| unreadable(&e))?;
    Ok((conn, true))
}

/// Silences SQLCipher's own log (a process-wide setting) while it lives,
/// then puts back SQLCipher's default level, `WARN`.
struct QuietCipherLog(Option<Connection>);

impl QuietCipherLog {
    fn new() -> QuietCipherLog {
        let conn = Connection::open_in_memory().ok();
        if let Some(c) = &conn {
            let _ = c.query_row("PRAGMA cipher_log_level = NONE", [], |_| Ok(()));
        }
        QuietCipherLog(conn)
    }
}

impl Drop for QuietCipherLog {
    fn drop(&mut self) {
        if let Some(c) = &self.0 {
            let _ = c.query_row("PRAGMA cipher_log_level = WARN", [], |_| Ok(()));
        }
    }
}

/// Rekeys a cache written under the legacy derivation of a passphrase
/// (`legacy`) to the passphrase itself (`key`). False, with nothing
/// written, when `legacy` does not open it either.
///
/// The sequence, so that any failure (or a crash) leaves a file that opens
/// with the same passphrase, rekeyed or not:
/// 1. fold the WAL into the file and leave WAL mode: SQLite refuses that
///    while another connection has the cache open, and in rollback-journal
///    mode the journal holds every page as it was (under the old key) until
///    the rekey commits, so a crash mid-way rolls back on the next open;
/// 2. `PRAGMA rekey`: SQLCipher rewrites every page in one transaction. It
///    reports no error of its own (a failed page write rolls back silently),
///    so the result is checked instead:
/// 3. a new connection reads every page under the passphrase
///    (`quick_check`). If it cannot, the old key must still open the file,
///    and the error says the cache was left as it was.
///
/// `Store::open` turns WAL mode back on afterwards.
fn rekey_legacy(path: &Path, legacy: &key::CacheKey, key: &key::CacheKey) -> Result<bool> {
    let conn = open_conn(path)?;
    conn.execute_batch(&legacy.pragma())?;
    if first_read(&conn).is_err() {
        return Ok(false);
    }
    let left = |step: &str, why: &dyn std::fmt::Display| {
        Error::new(
            ErrorCode::Storage,
            format!(
                "{} is keyed with the earlier derivation of {} and could not be rekeyed to its stronger form \
                 ({step}: {why}); it was left as it was and still opens with the same passphrase. \
                 Close any other Custodian window or command on it and try again",
                path.display(),
                key::KEY_ENV
            ),
        )
    };
    conn.busy_timeout(Duration::from_secs(5))?;
    let busy: i64 = conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
        .map_err(|e| left("folding the write-ahead log", &e))?;
    if busy != 0 {
        return Err(left("folding the write-ahead log", &"the cache is in use"));
    }
    let mode: String = conn
        .query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))
        .map_err(|e| left("leaving WAL mode", &e))?;
    if !mode.eq_ignore_ascii_case("delete") {
        return Err(left("leaving WAL mode", &"the cache is in use"));
    }
    conn.execute_batch(&key.rekey_pragma())
        .map_err(|e| left("rekeying", &e))?;
    // After a failed rekey this connection would write under the new key:
    // close it before anything else.
    drop(conn);
    let check = open_conn(path)?;
    check.execute_batch(&key.pragma())?;
    let verdict: rusqlite::Result<String> = check.query_row("PRAGMA quick_check", [], |r| r.get(0));
    drop(check);
    match verdict {
        Ok(v) if v == "ok" => Ok(true),
        other => {
            let why = match other {
                Ok(v) => v,
                Err(e) => e.to_string(),
            };
            let old = open_conn(path)?;
            old.execute_batch(&legacy.pragma())?;
            if first_read(&old).is_ok() {
                Err(left("rekeying", &"the rewrite did not commit"))
            } else {
                Err(Error::new(
                    ErrorCode::DatabaseUnreadable,
                    format!(
                        "{}: the rekey from the earlier derivation of {} left a file that neither key reads ({why})",
                        path.display(),
                        key::KEY_ENV
                    ),
                ))
            }
        }
    }
}

/// Encrypts an unencrypted cache: exports it into a new encrypted file next
/// to it, then renames that over the original (atomic; a crash before the
/// rename leaves the original as it was, and the next open tries again).
fn encrypt_in_place(path: &Path, key: &key::CacheKey) -> Result<()> {
    let tmp = path.with_extension("encrypting");
    let _ = std::fs::remove_file(&tmp);
    let tmp_str = tmp.to_string_lossy().replace('\'', "''");
    {
        let plain = open_conn(path)?;
        let version: i64 = plain.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        // Fold any WAL into the main file first.
        plain.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        plain.execute_batch(&format!(
            "ATTACH DATABASE '{tmp_str}' AS enc KEY {};",
            key.sql_literal()
        ))?;
        plain.query_row("SELECT sqlcipher_export('enc')", [], |_| Ok(()))?;
        plain.execute_batch(&format!(
            "PRAGMA enc.user_version = {version}; PRAGMA enc.application_id = {}; DETACH DATABASE enc;",
            migrations::APPLICATION_ID
        ))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        Error::new(
            ErrorCode::Storage,
            format!(
                "cannot replace {} with its encrypted copy: {e}",
                path.display()
            ),
        )
    })?;
    for suffix in ["-wal", "-shm"] {
        let side = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
        let _ = std::fs::remove_file(side);
    }
    tracing::info!(path = %path.display(), "encrypted an unencrypted cache");
    Ok(())
}

/// A raw connection to a cache file, with its key applied (tests and tools
/// that need plain SQL on a file; the app goes through [`Store::open`]).
pub fn open_raw(path: &Path) -> Result<Connection> {
    let conn = open_conn(path)?;
    if let Header::Other = file_header(path)? {
        if let Some(k) = key::existing()? {
            conn.execute_batch(&k.pragma())?;
        }
    }
    Ok(conn)
}
