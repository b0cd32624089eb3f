//! Custodian core: the domain, the local cache and the use cases of a
//! governance console for AI agents and other non-human identities.
//!
//! Codemap (see README.md, "Architecture"):
//! - [`model`]: domain types and newtype IDs; no I/O.
//! - [`store`]: the SQLite cache; the only module that touches SQL.
//! - [`findings`]: posture checks (OWASP NHI Top 10) evaluated in the store.
//! - [`demo`]: deterministic generator of a fictional organisation.
//! - [`views`]: serialisable read models shared by the CLI and the UI.
//! - [`sync`]: the sync engine, the shared HTTP client, sources, keyring secrets.
//! - [`connection`]: the app's connection settings (solo or workspace), who am I.
//! - [`ops`]: the use cases; the CLI and `src-tauri` call only these.
//! - [`sanitize`]: output safety (CSV, Markdown, HTML, terminal, secrets).
//!
//! Invariant: nothing here knows about Tauri.

#[cfg(feature = "ts")]
pub mod bindings;
pub mod blast;
pub mod campaigns;
pub mod connection;
pub mod demo;
pub mod error;
pub mod evidence;
pub mod findings;
pub mod hex;
pub mod lifecycle;
pub mod logging;
pub mod model;
pub mod offboarding;
pub mod ops;
pub mod paths;
pub mod posture;
pub mod records;
pub mod sanitize;
pub mod store;
pub mod sync;
pub mod views;
pub mod workspace;
pub mod writeback;

pub use error::{Error, ErrorCode, Result};

/// Test hook for fault-injection tests (debug builds only): when
/// `CUSTODIAN_FAILPOINT` names this point, touch `CUSTODIAN_FAILPOINT_MARK`
/// (if set) and sleep, so a test can kill the process inside the transaction.
/// A no-op in release builds.
pub fn failpoint(name: &str) {
    #[cfg(debug_assertions)]
    if std::env::var("CUSTODIAN_FAILPOINT").is_ok_and(|v| v == name) {
        if let Some(mark) = std::env::var_os("CUSTODIAN_FAILPOINT_MARK") {
            let _ = std::fs::write(mark, name);
        }
        std::thread::sleep(std::time::Duration::from_secs(30));
    }
    #[cfg(not(debug_assertions))]
    let _ = name;
}
