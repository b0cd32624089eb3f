//! The audit log: every governance action, appended in the same transaction
//! as the change it records, and hash-chained so that an edited, deleted or
//! reordered entry is detected.
//!
//! Entry hash: lowercase hex SHA-256 of
//! `prev_hash \n seq \n at \n actor \n action \n subject \n details`
//! (`at` in Unix seconds, `details` the stored JSON text); the first entry's
//! `prev_hash` is 64 zeros.

use crate::store::db::{OptionalExtension, Db};
use sha2::{Digest, Sha256};

use super::Store;
use crate::error::Result;

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One entry as stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct AuditEntry {
    pub seq: i64,
    /// Unix seconds.
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub subject: String,
    /// JSON text.
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

/// Reads `seq, at, actor, action, subject, details, prev_hash, hash`.
pub fn read_entry(r: &crate::store::db::Row<'_>) -> Result<AuditEntry> {
    Ok(AuditEntry {
        seq: r.get(0)?,
        at: r.get(1)?,
        actor: r.get(2)?,
        action: r.get(3)?,
        subject: r.get(4)?,
        details: r.get(5)?,
        prev_hash: r.get(6)?,
        hash: r.get(7)?,
    })
}

pub fn entry_hash(
    prev_hash: &str,
    seq: i64,
    at: i64,
    actor: &str,
    action: &str,
    subject: &str,
    details: &str,
) -> String {
    let mut h = Sha256::new();
    for part in [
        prev_hash,
        &seq.to_string(),
        &at.to_string(),
        actor,
        action,
        subject,
        details,
    ] {
        h.update(part.as_bytes());
        h.update(b"\n");
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Appends within `tx`; returns the new entry's hash.
pub fn append(
    tx: &Db,
    at: i64,
    actor: &str,
    action: &str,
    subject: &str,
    details: &serde_json::Value,
) -> Result<String> {
    let last: Option<(i64, String)> = tx
        .query_row(
            "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (seq, prev) = match last {
        Some((s, h)) => (s + 1, h),
        None => (1, GENESIS.to_string()),
    };
    let details = details.to_string();
    let hash = entry_hash(&prev, seq, at, actor, action, subject, &details);
    tx.prepare_cached(
        "INSERT INTO audit_log (seq, at, actor, action, subject, details, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(crate::store::db::params![
        seq, at, actor, action, subject, details, prev, hash
    ])?;
    Ok(hash)
}

/// The result of checking the chain.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct AuditVerification {
    pub entries: i64,
    pub ok: bool,
    /// The first entry that does not verify, and why.
    pub first_bad_seq: Option<i64>,
    pub problem: Option<String>,
    /// The hash of the last entry (publish it to pin the log).
    pub head: String,
}

/// Checks a whole log (from the cache or an export), from its first entry.
pub fn verify_entries(entries: &[AuditEntry]) -> AuditVerification {
    verify_chunk(entries, GENESIS, 1)
}

impl Store {
    /// Entries with `seq > after`, oldest first, at most `limit`.
    pub fn audit_entries(&self, after: i64, limit: i64) -> Result<Vec<AuditEntry>> {
        let mut st = self.db.prepare_cached(
            "SELECT seq, at, actor, action, subject, details, prev_hash, hash FROM audit_log
             WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )?;
        let rows = st
            .query_map([after, limit], read_entry)?
            .collect::<Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Verifies the whole chain in the cache.
    pub fn verify_audit(&self) -> Result<AuditVerification> {
        // In chunks, so a long log is not held in memory at once.
        let mut prev = GENESIS.to_string();
        let mut after = 0;
        let mut total = 0;
        loop {
            let chunk = self.audit_entries(after, 10_000)?;
            if chunk.is_empty() {
                return Ok(AuditVerification {
                    entries: total,
                    ok: true,
                    first_bad_seq: None,
                    problem: None,
                    head: prev,
                });
            }
            // Re-base the chunk on the running hash and sequence.
            let mut v = verify_chunk(&chunk, &prev, after + 1);
            v.entries += total;
            if !v.ok {
                return Ok(v);
            }
            total = v.entries;
            prev = v.head;
            after = chunk.last().map_or(after, |e| e.seq);
        }
    }

    /// The hash of the newest entry (the genesis value when the log is empty).
    pub fn audit_head(&self) -> Result<String> {
        Ok(self
            .db
            .query_row(
                "SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or_else(|| GENESIS.to_string()))
    }
}

fn verify_chunk(chunk: &[AuditEntry], prev: &str, first_seq: i64) -> AuditVerification {
    let mut prev = prev.to_string();
    for (expected, (i, e)) in (first_seq..).zip(chunk.iter().enumerate()) {
        let problem = if e.seq != expected {
            Some(format!(
                "entry {} is out of sequence (expected {expected}): an entry was deleted or moved",
                e.seq
            ))
        } else if e.prev_hash != prev {
            Some(format!(
                "entry {} does not follow the entry before it: an entry was deleted, inserted or reordered",
                e.seq
            ))
        } else if entry_hash(
            &e.prev_hash,
            e.seq,
            e.at,
            &e.actor,
            &e.action,
            &e.subject,
            &e.details,
        ) != e.hash
        {
            Some(format!("entry {} was edited after it was written", e.seq))
        } else {
            None
        };
        if let Some(p) = problem {
            return AuditVerification {
                entries: i as i64 + 1,
                ok: false,
                first_bad_seq: Some(e.seq),
                problem: Some(p),
                head: prev,
            };
        }
        prev = e.hash.clone();
    }
    AuditVerification {
        entries: chunk.len() as i64,
        ok: true,
        first_bad_seq: None,
        problem: None,
        head: prev,
    }
}

/// The export format: JSON Lines. Line 1 is a header
/// `{"format":"custodian-audit/1","entries":N,"head":"<hash>","exported_at":"…"}`;
/// every further line is one [`AuditEntry`] in `seq` order. Anyone can check
/// it with the hash rule above (and compare `head` with a published value).
pub const EXPORT_FORMAT: &str = "custodian-audit/1";

impl Store {
    /// Writes the whole log as JSON Lines to `w`; returns (entries, head).
    pub fn export_audit(
        &self,
        w: &mut impl std::io::Write,
        exported_at: &str,
    ) -> Result<(i64, String)> {
        let (n, head): (i64, String) = (
            self.db
                .query_row("SELECT count(*) FROM audit_log", [], |r| r.get(0))?,
            self.audit_head()?,
        );
        let header = serde_json::json!({"format": EXPORT_FORMAT, "entries": n, "head": head, "exported_at": exported_at});
        writeln!(w, "{header}")?;
        let mut after = 0;
        loop {
            let chunk = self.audit_entries(after, 10_000)?;
            let Some(last) = chunk.last() else { break };
            after = last.seq;
            for e in &chunk {
                writeln!(w, "{}", serde_json::to_string(e)?)?;
            }
        }
        Ok((n, head))
    }
}

/// Verifies an exported log (JSON Lines), without a cache. Also checks the
/// header's count and head against the entries.
pub fn verify_export(text: &str) -> crate::error::Result<AuditVerification> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: serde_json::Value = lines
        .next()
        .ok_or_else(|| crate::error::Error::invalid("the file is empty"))
        .and_then(|l| {
            serde_json::from_str(l).map_err(|e| {
                crate::error::Error::invalid(format!("line 1 is not the export header: {e}"))
            })
        })?;
    if header.get("format").and_then(|f| f.as_str()) != Some(EXPORT_FORMAT) {
        return Err(crate::error::Error::invalid(format!(
            "not a Custodian audit export (format {EXPORT_FORMAT} expected)"
        )));
    }
    let mut entries = vec![];
    for (i, l) in lines.enumerate() {
        entries.push(serde_json::from_str::<AuditEntry>(l).map_err(|e| {
            crate::error::Error::invalid(format!("line {} is not an audit entry: {e}", i + 2))
        })?);
    }
    let mut v = verify_entries(&entries);
    if v.ok {
        let claimed_n = header.get("entries").and_then(|n| n.as_i64()).unwrap_or(-1);
        let claimed_head = header.get("head").and_then(|h| h.as_str()).unwrap_or("");
        if claimed_n != v.entries || claimed_head != v.head {
            v.ok = false;
            v.problem = Some(format!(
                "the header says {claimed_n} entries ending in {claimed_head}, the file holds {} ending in {}: entries were removed from the end",
                v.entries, v.head
            ));
        }
    }
    Ok(v)
}
