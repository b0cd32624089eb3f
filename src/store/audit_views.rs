//! Read-only views over the audit log for its readers: the newest entries
//! (the CLI's `audit log`) and the entries about one identity (its
//! authorization report). Appending, verifying and exporting the chain is
//! `audit.rs`.

use crate::error::Result;
use crate::store::audit::{read_entry, AuditEntry};
use crate::store::Store;

impl Store {
    /// The number of entries in the audit log.
    pub fn audit_len(&self) -> Result<i64> {
        self.db
            .query_row("SELECT count(*) FROM audit_log", [], |r| r.get(0))
    }

    /// The newest `limit` entries (at least one), oldest first.
    pub fn audit_tail(&self, limit: i64) -> Result<Vec<AuditEntry>> {
        let limit = limit.max(1);
        let total = self.audit_len()?;
        self.audit_entries((total - limit).max(0), limit)
    }

    /// Entries about an identity (by id in the subject or details, or by
    /// name at the end of the subject), oldest first, at most 500.
    pub fn audit_about_identity(&self, identity: i64, name: &str) -> Result<Vec<AuditEntry>> {
        self.db.query_map(
            "SELECT seq, at, actor, action, subject, details, prev_hash, hash FROM audit_log
             WHERE subject LIKE 'identity ' || ?1 || ' %' OR subject LIKE '% ' || ?2 OR details LIKE '%\"identity_id\":' || ?1 || '%'
             ORDER BY seq LIMIT 500",
            crate::store::db::params![identity, name],
            read_entry,
        )
    }
}
