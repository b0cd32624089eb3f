//! Where things live by default: the store's location (`$CUSTODIAN_DB`, else
//! the cache file in the platform data directory). Below `ops` and
//! `logging`, which both use it; it depends only on `store::Location`.

use std::path::PathBuf;

use crate::error::{Error, ErrorCode, Result};
use crate::store::Location;

/// Environment variable that overrides where the cache lives.
pub const DB_ENV: &str = "CUSTODIAN_DB";

/// Where the store lives: `$CUSTODIAN_DB` (a file path, or a `postgres://`
/// URL for a team workspace), else the cache file in the platform data
/// directory.
pub fn default_location() -> Result<Location> {
    match std::env::var(DB_ENV) {
        Ok(v) if !v.trim().is_empty() => Location::parse(&v),
        _ => Ok(Location::File(default_cache_file()?)),
    }
}

/// The cache file: `$CUSTODIAN_DB` when it names a file, else the platform
/// data directory (`~/.local/share/custodian/custodian.db` on Linux).
pub fn default_db_path() -> Result<PathBuf> {
    if let Ok(Location::File(p)) = default_location() {
        return Ok(p);
    }
    default_cache_file()
}

fn default_cache_file() -> Result<PathBuf> {
    Ok(data_dir()?.join("custodian.db"))
}

/// The platform data directory (`~/.local/share/custodian` on Linux):
/// the cache, and the team workspace's offline snapshots.
pub fn data_dir() -> Result<PathBuf> {
    let dirs =
        directories::ProjectDirs::from("org", "Custodian", "custodian").ok_or_else(|| {
            Error::new(
                ErrorCode::Storage,
                format!("no home directory found; set {DB_ENV} to a file path"),
            )
        })?;
    Ok(dirs.data_dir().to_path_buf())
}
