//! The offline snapshot of a team workspace: a local, encrypted, read-only
//! copy of what one member's login can read, so the app can still show the
//! inventory, the member's queue and the audit log when the workspace
//! cannot be reached.
//!
//! Invariants:
//! - A snapshot holds only rows the member's login could read when it was
//!   taken (row-level security applied at the workspace): a reviewer's
//!   snapshot has their own review items, not everyone's.
//! - It is written to a temporary file and renamed over the previous one
//!   only once complete: an interrupted refresh leaves the last good
//!   snapshot.
//! - It is opened read-only (SQLite `SQLITE_OPEN_READ_ONLY`): every change
//!   is refused with `read_only` and nothing is queued to be replayed.
//! - Its audit log is the workspace's chain as it was; a snapshot verifies
//!   the chain's consistency, and signatures are checked at the workspace.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use rusqlite::OpenFlags;
use serde::{Deserialize, Serialize};

use super::copy::{copy_table, COPY_ORDER};
use super::Store;
use crate::error::{Error, ErrorCode, Result};

/// What a snapshot is of, kept in its `meta` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SnapshotInfo {
    /// When it was read from the workspace (RFC 3339, UTC).
    pub taken_at: String,
    /// The workspace, as shown (no password).
    pub of: String,
    /// The login it was read as.
    pub login: String,
    /// The member behind the login then (none: removed or departed).
    pub person_id: Option<i64>,
    /// The member's roles then.
    pub roles: Vec<String>,
    /// Rows copied.
    pub rows: i64,
}

const META_KEY: &str = "snapshot";

/// Who the snapshot is read as: the workspace's answer when it was taken.
#[derive(Debug, Clone)]
pub struct SnapshotOf {
    pub login: String,
    pub person_id: Option<i64>,
    pub roles: Vec<String>,
}

/// Writes a snapshot of `from` (a team workspace, read as its login) to
/// `dest`: into `dest` + `.partial` first, then renamed over `dest`. The
/// snapshot cache is keyed like the local cache (the OS keyring).
pub fn take(from: &Store, of: SnapshotOf, dest: &Path, now: DateTime<Utc>) -> Result<SnapshotInfo> {
    if !from.is_workspace()? {
        return Err(Error::invalid(
            "only a team workspace has an offline snapshot",
        ));
    }
    if let Some(dir) = dest.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)?;
        }
    }
    let partial = PathBuf::from(format!("{}.partial", dest.display()));
    for p in [&partial, &wal(&partial), &shm(&partial)] {
        match std::fs::remove_file(p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    let written = write(from, of, &partial, now);
    match written {
        Ok(info) => {
            std::fs::rename(&partial, dest)?;
            // A stale WAL of an older snapshot must not be applied to the new file.
            for p in [wal(dest), shm(dest)] {
                let _ = std::fs::remove_file(p);
            }
            Ok(info)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

fn wal(p: &Path) -> PathBuf {
    PathBuf::from(format!("{}-wal", p.display()))
}

fn shm(p: &Path) -> PathBuf {
    PathBuf::from(format!("{}-shm", p.display()))
}

fn write(from: &Store, of: SnapshotOf, path: &Path, now: DateTime<Utc>) -> Result<SnapshotInfo> {
    if from.schema_version()? != super::migrations::latest_version() {
        return Err(Error::internal(
            "the workspace is at another schema version than this Custodian",
        ));
    }
    let to = Store::open(path)?;
    let src = from.db();
    let dst = to.db();
    // Row-level security hides some parents (a reviewer sees only their own
    // items, not the campaigns' other items' events): the copy keeps what
    // the login saw rather than what the foreign keys would ask for.
    dst.execute_batch("PRAGMA foreign_keys = OFF")?;
    let present = src.tables()?;
    let tx = dst.transaction()?;
    tx.execute("DELETE FROM meta", [])?;
    let mut rows = 0i64;
    for table in COPY_ORDER
        .iter()
        .filter(|t| present.iter().any(|p| p == *t))
    {
        rows += copy_table(src, &tx, table)?;
    }
    let info = SnapshotInfo {
        taken_at: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        of: from.location().to_string(),
        login: of.login,
        person_id: of.person_id,
        roles: of.roles,
        rows,
    };
    tx.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [META_KEY, &serde_json::to_string(&info)?],
    )?;
    tx.commit()?;
    // One self-contained file: the reader opens it read-only, which cannot
    // replay a WAL.
    dst.execute_batch("PRAGMA journal_mode = DELETE")?;
    drop(to);
    Ok(info)
}

impl Store {
    /// Opens the snapshot at `path` read-only. A missing file is
    /// `not_found`; one from another schema version is refused (refresh it
    /// by reconnecting once the workspace is reachable).
    pub fn open_snapshot(path: &Path) -> Result<Store> {
        if !path.exists() {
            return Err(Error::not_found(format!(
                "no offline snapshot at {}",
                path.display()
            )));
        }
        let key = super::key::existing()?.ok_or_else(|| {
            Error::new(
                ErrorCode::DatabaseUnreadable,
                format!(
                    "{} is encrypted and no cache key is in the OS keyring",
                    path.display()
                ),
            )
        })?;
        let conn = rusqlite::Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.execute_batch(&key.pragma())?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let mut store = Store {
            db: super::Db::sqlite(conn),
            path: Some(path.to_path_buf()),
            location: path.display().to_string(),
            snapshot: None,
        };
        let version = store.schema_version()?;
        if version != super::migrations::latest_version() {
            return Err(Error::new(
                ErrorCode::DatabaseTooNew,
                format!(
                    "the offline snapshot {} is at schema {version}, this Custodian at {}: it is refreshed when the workspace is reachable",
                    path.display(),
                    super::migrations::latest_version()
                ),
            ));
        }
        let info: SnapshotInfo = match store.meta(META_KEY)? {
            Some(v) => serde_json::from_str(&v).map_err(|e| {
                Error::new(
                    ErrorCode::DatabaseUnreadable,
                    format!("{} is not a Custodian snapshot: {e}", path.display()),
                )
            })?,
            None => {
                return Err(Error::new(
                    ErrorCode::DatabaseUnreadable,
                    format!("{} is not a Custodian snapshot", path.display()),
                ))
            }
        };
        store.location = format!("{} (offline snapshot of {})", path.display(), info.of);
        store.snapshot = Some(info);
        Ok(store)
    }

    /// What this store is a snapshot of; `None` for a live store.
    pub fn snapshot(&self) -> Option<&SnapshotInfo> {
        self.snapshot.as_ref()
    }
}
