//! The use cases. The CLI (`src/main.rs`) and the desktop shell (`src-tauri`)
//! are thin callers of these functions and of nothing else in the core.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::demo::{self, DemoSize};
use crate::error::{Error, ErrorCode, Result};
use crate::store::load::LoadCounts;
use crate::store::Store;
use crate::views::{IdentityDetail, InventoryFacets, InventoryPage, InventoryQuery, OrgSummary};

/// Environment variable that overrides where the cache lives.
pub const DB_ENV: &str = "CUSTODIAN_DB";

/// Where the cache lives: `$CUSTODIAN_DB`, else the platform data directory.
pub fn default_db_path() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os(DB_ENV).filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let dirs =
        directories::ProjectDirs::from("org", "Custodian", "custodian").ok_or_else(|| {
            Error::new(
                ErrorCode::Storage,
                format!("no home directory found; set {DB_ENV} to a file path"),
            )
        })?;
    Ok(dirs.data_dir().join("custodian.db"))
}

/// Opens the cache at `path`; when it holds nothing (no source has been
/// configured or synced yet), loads the S demo organisation so a newcomer
/// sees a populated console.
pub fn open_or_demo(path: &Path, now: DateTime<Utc>) -> Result<Store> {
    let mut store = Store::open(path)?;
    if store.is_empty()? {
        load_demo(&mut store, DemoSize::S, demo::DEFAULT_SEED, now)?;
    }
    Ok(store)
}

/// Replaces the cache content with a generated demo organisation.
pub fn load_demo(
    store: &mut Store,
    size: DemoSize,
    seed: u64,
    now: DateTime<Utc>,
) -> Result<LoadCounts> {
    let org = demo::generate(size, seed, now);
    let counts = store.replace_org(&org, now)?;
    store.set_meta("dataset", &format!("demo-{}", size.as_str()))?;
    Ok(counts)
}

pub fn inventory(store: &Store, q: &InventoryQuery, now: DateTime<Utc>) -> Result<InventoryPage> {
    store.inventory(q, now)
}

pub fn inventory_facets(store: &Store) -> Result<InventoryFacets> {
    store.inventory_facets()
}

/// One identity by id, external id or exact name.
pub fn show(store: &Store, reference: &str, now: DateTime<Utc>) -> Result<IdentityDetail> {
    let id = store.resolve_identity(reference)?;
    store.identity_detail(id, now)
}

pub fn identity(store: &Store, id: i64, now: DateTime<Utc>) -> Result<IdentityDetail> {
    store.identity_detail(crate::model::IdentityId(id), now)
}

pub fn summary(store: &Store) -> Result<OrgSummary> {
    store.summary()
}
