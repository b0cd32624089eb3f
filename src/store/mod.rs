//! The local SQLite cache.
//!
//! Invariants:
//! - `Store::open` / `Store::open_in_memory` are the only places a connection
//!   is opened; they set WAL, foreign keys and the busy timeout.
//! - An unreadable file or one from a newer schema is refused before anything
//!   is written to it.
//! - The store never calls the network.
//! - Roll-up columns on `identities` are refreshed by every write path before
//!   its transaction commits.

pub mod audit;
pub mod campaigns;
mod inventory;
pub mod offboarding;
pub mod load;
pub mod sync;
pub mod migrations;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{Connection, OpenFlags};

use crate::error::{Error, ErrorCode, Result};

pub use inventory::fts_query;

/// A handle on the cache. Not `Sync`: the desktop shell keeps it behind a mutex.
pub struct Store {
    conn: Connection,
    path: Option<PathBuf>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating if missing) the cache at `path` and migrates it.
    ///
    /// A file that is not a Custodian cache, is corrupt, or was written by a
    /// newer schema gives an error and is left byte-for-byte untouched.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)?;
            }
        }
        let conn = Connection::open_with_flags(
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
        })?;
        let mut store = Store {
            conn,
            path: Some(path.to_path_buf()),
        };
        // Checked before any pragma that writes (journal_mode=WAL writes the header).
        migrations::check_compatible(&store.conn)
            .map_err(|e| Error::new(e.code, format!("{}: {}", path.display(), e.message)))?;
        store.configure()?;
        migrations::migrate_to(&mut store.conn, migrations::latest_version())?;
        let interrupted = store.mark_interrupted_runs()?;
        if interrupted > 0 {
            tracing::warn!(interrupted, "sync runs were interrupted by a previous stop");
        }
        Ok(store)
    }

    /// A private in-memory cache, migrated to the latest schema.
    pub fn open_in_memory() -> Result<Store> {
        Self::open_in_memory_at(migrations::latest_version())
    }

    /// An in-memory cache migrated only up to `version` (for migration tests).
    pub fn open_in_memory_at(version: i64) -> Result<Store> {
        let conn = Connection::open_in_memory()?;
        let mut store = Store { conn, path: None };
        store.configure()?;
        migrations::migrate_to(&mut store.conn, version)?;
        Ok(store)
    }

    fn configure(&self) -> Result<()> {
        self.conn.busy_timeout(Duration::from_secs(5))?;
        if self.path.is_some() {
            let mode: String = self
                .conn
                .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
            if !mode.eq_ignore_ascii_case("wal") {
                tracing::warn!(mode, "WAL journal mode not available");
            }
        }
        self.conn.execute_batch(
            "PRAGMA foreign_keys = ON;
             PRAGMA synchronous = NORMAL;
             PRAGMA temp_store = MEMORY;
             PRAGMA cache_size = -65536;",
        )?;
        Ok(())
    }

    /// Migrates further (only used by migration tests).
    pub fn migrate_to(&mut self, version: i64) -> Result<()> {
        migrations::migrate_to(&mut self.conn, version)
    }

    /// The schema version of the open cache.
    pub fn schema_version(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Raw access for tests and migrations.
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// True when the cache holds no source, no identity and no person: a
    /// fresh install, which opens on the demo organisation.
    pub fn is_empty(&self) -> Result<bool> {
        let n: i64 = self.conn.query_row(
            "SELECT (SELECT count(*) FROM identities) + (SELECT count(*) FROM people) + (SELECT count(*) FROM sources)",
            [],
            |r| r.get(0),
        )?;
        Ok(n == 0)
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        use rusqlite::OptionalExtension;
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    /// Appends a posture snapshot (figures as JSON) for the trend.
    pub fn add_posture_snapshot(&self, at: i64, origin: &str, figures: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO posture_snapshots (at, origin, figures) VALUES (?1, ?2, ?3)",
            rusqlite::params![at, origin, figures],
        )?;
        Ok(())
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [key, value],
        )?;
        Ok(())
    }
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
