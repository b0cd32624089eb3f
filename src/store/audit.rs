//! The audit log: every governance action, appended in the same transaction
//! as the change it records, hash-chained, and its head signed with a key
//! kept outside the database (see [`crate::store::key::audit_key`]).
//!
//! Entry hash, format 2 (`custodian-audit/2`, every entry written since
//! migration 9): lowercase hex SHA-256 of the fields
//! `"custodian-audit/2", prev_hash, seq, at, actor, action, subject, details`,
//! each encoded as its length in bytes (8 bytes, big-endian) followed by its
//! UTF-8 bytes (`seq` and `at` as decimal text, `at` in Unix seconds,
//! `details` the stored JSON text). The encoding is unambiguous: no text can
//! move from one field to another and keep the hash.
//!
//! Format 1 (entries written before): SHA-256 of
//! `prev_hash \n seq \n at \n actor \n action \n subject \n details \n`.
//! Those entries keep verifying under that rule; once an entry uses format
//! 2, every later one must too. The first entry's `prev_hash` is 64 zeros.
//!
//! Checkpoint: every append writes, in its transaction, the signed head
//! `(seq, head, at, key_id, signature)` where `signature` is the hex
//! HMAC-SHA-256 of the length-prefixed fields
//! `"custodian-audit/2 checkpoint", seq, head, at`. Only the latest is kept
//! (an older signed state would be a point to roll back to). The last
//! entry must be the checkpoint's: fewer entries means the tail was
//! deleted, more means entries were written without the key, a different
//! head means the chain was rewritten.

use sha2::{Digest, Sha256};

use super::key::AuditKey;
use super::Store;
use crate::error::{Error, ErrorCode, Result};
use crate::store::db::{Db, OptionalExtension};

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The hash rule an entry was written with.
pub const FORMAT_V1: i64 = 1;
pub const FORMAT_V2: i64 = 2;
/// The rule new entries are written with.
pub const CURRENT_FORMAT: i64 = FORMAT_V2;

fn one() -> i64 {
    FORMAT_V1
}

fn is_unknown(f: &i64) -> bool {
    *f == 0
}

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
    /// The hash rule: 1 (newline-joined) or 2 (length-prefixed). Absent in
    /// `custodian-audit/1` exports (= 1); 0 when a query did not read it.
    #[serde(default = "one", skip_serializing_if = "is_unknown")]
    #[cfg_attr(feature = "ts", ts(as = "Option<i64>", optional))]
    pub format: i64,
}

/// Reads `seq, at, actor, action, subject, details, prev_hash, hash` and,
/// when selected, `format` as the ninth column.
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
        format: if r.len() > 8 { r.get(8)? } else { 0 },
    })
}

use crate::hex::encode as hex;

/// Format 1: fields joined by newlines (ambiguous; kept for old entries).
pub fn entry_hash_v1(
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
    hex(&h.finalize())
}

/// The canonical encoding: each field as its 8-byte big-endian length and
/// its bytes.
pub fn length_prefixed(fields: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(fields.iter().map(|f| f.len() + 8).sum());
    for f in fields {
        out.extend_from_slice(&(f.len() as u64).to_be_bytes());
        out.extend_from_slice(f);
    }
    out
}

/// Format 2: length-prefixed fields.
pub fn entry_hash(
    prev_hash: &str,
    seq: i64,
    at: i64,
    actor: &str,
    action: &str,
    subject: &str,
    details: &str,
) -> String {
    let bytes = length_prefixed(&[
        b"custodian-audit/2",
        prev_hash.as_bytes(),
        seq.to_string().as_bytes(),
        at.to_string().as_bytes(),
        actor.as_bytes(),
        action.as_bytes(),
        subject.as_bytes(),
        details.as_bytes(),
    ]);
    hex(&Sha256::digest(&bytes))
}

/// The hash an entry should have under its own format (None: unknown format).
pub fn expected_hash(e: &AuditEntry) -> Option<String> {
    let f = match e.format {
        FORMAT_V1 => entry_hash_v1,
        FORMAT_V2 => entry_hash,
        _ => return None,
    };
    Some(f(
        &e.prev_hash,
        e.seq,
        e.at,
        &e.actor,
        &e.action,
        &e.subject,
        &e.details,
    ))
}

/// The signed head of the chain.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Checkpoint {
    pub seq: i64,
    pub head: String,
    /// Unix seconds (the entry's).
    pub at: i64,
    /// The signing key's public fingerprint ([`AuditKey::id`]).
    pub key_id: String,
    pub signature: String,
}

/// What a checkpoint signature covers.
pub fn checkpoint_message(seq: i64, head: &str, at: i64) -> Vec<u8> {
    length_prefixed(&[
        b"custodian-audit/2 checkpoint",
        seq.to_string().as_bytes(),
        head.as_bytes(),
        at.to_string().as_bytes(),
    ])
}

impl Checkpoint {
    pub fn sign(key: &AuditKey, seq: i64, head: &str, at: i64) -> Checkpoint {
        Checkpoint {
            seq,
            head: head.to_string(),
            at,
            key_id: key.id(),
            signature: key.sign(&checkpoint_message(seq, head, at)),
        }
    }
}

/// Appends within `tx`, and re-signs the head in the same transaction;
/// returns the new entry's hash. Fails (and so does the change it records)
/// when the signing key is not available.
pub fn append(
    tx: &Db,
    at: i64,
    actor: &str,
    action: &str,
    subject: &str,
    details: &serde_json::Value,
) -> Result<String> {
    // In a team workspace the database appends (actor = the member behind
    // the login); members never hold the audit key.
    if super::workspace::in_workspace(tx)? {
        return super::workspace::append_in_workspace(tx, action, subject, &details.to_string());
    }
    let key = super::key::audit_key(tx.engine())?;
    // Solo mode: the actor is a claim ("Who are you?", --as); the entry
    // also records the operating-system account that made it (inside the
    // hashed details, so the hash rule is unchanged).
    let mut details = details.clone();
    if let Some(obj) = details.as_object_mut() {
        if !obj.contains_key("os_account") {
            obj.insert("os_account".into(), serde_json::Value::String(os_account()));
        }
    }
    append_signed(tx, &key, at, actor, action, subject, &details)
}

/// The operating-system account running Custodian (`USER`, `USERNAME` on
/// Windows), or `unknown`; shown with hidden controls made visible.
pub fn os_account() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .map(|u| crate::sanitize::terminal(&u).into_owned())
        .unwrap_or_else(|_| "unknown".into())
}

/// [`append`] with a given key (tests; tools that hold the key).
pub fn append_signed(
    tx: &Db,
    key: &AuditKey,
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
        "INSERT INTO audit_log (seq, at, actor, action, subject, details, prev_hash, hash, format)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(crate::store::db::params![
        seq,
        at,
        actor,
        action,
        subject,
        details,
        prev,
        hash,
        CURRENT_FORMAT
    ])?;
    let cp = Checkpoint::sign(key, seq, &hash, at);
    tx.prepare_cached("DELETE FROM audit_checkpoints WHERE seq <> ?1")?
        .execute([seq])?;
    tx.prepare_cached(
        "INSERT INTO audit_checkpoints (seq, head, at, key_id, signature) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(crate::store::db::params![
        cp.seq,
        cp.head,
        cp.at,
        cp.key_id,
        cp.signature
    ])?;
    Ok(hash)
}

/// Whether the signature over the head was checked.
pub const SIG_VERIFIED: &str = "verified";
/// No key was available to the verifier: the chain is consistent, but
/// anyone could have rewritten it whole.
pub const SIG_NOT_CHECKED: &str = "not_checked";
/// No signature covers the log: only entries written before format 2.
pub const SIG_UNSIGNED: &str = "unsigned";
/// The signature is missing, from another key, or does not match.
pub const SIG_INVALID: &str = "invalid";

/// The result of checking the chain.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct AuditVerification {
    pub entries: i64,
    /// The chain is consistent and, when `signature` is `verified`, signed.
    pub ok: bool,
    /// The first entry that does not verify, and why.
    pub first_bad_seq: Option<i64>,
    pub problem: Option<String>,
    /// The hash of the last entry (publish it to pin the log).
    pub head: String,
    /// `verified`, `not_checked` (no key), `unsigned` (only entries from
    /// before format 2) or `invalid`. Only `verified` means no one without
    /// the key changed the log.
    pub signature: String,
    /// Why the signature was not checked, or what it covers.
    pub signature_note: Option<String>,
}

/// The key a verifier has, or why it has none.
#[derive(Debug, Clone)]
pub enum Verifier {
    Key(AuditKey),
    NoKey(String),
}

impl Verifier {
    /// The key for a store on `engine`, or the reason there is none.
    pub fn for_engine(engine: crate::store::Engine) -> Verifier {
        match super::key::audit_key(engine) {
            Ok(k) => Verifier::Key(k),
            Err(e) => Verifier::NoKey(e.message),
        }
    }
}

/// The running check of a chain, fed entry by entry (so a long log is
/// checked in chunks).
#[derive(Clone)]
struct Chain {
    prev: String,
    next_seq: i64,
    count: i64,
    first_v2: Option<i64>,
    /// A published head to find in the chain, and whether it was seen.
    pin: Option<(String, bool)>,
}

impl Chain {
    fn new(pin: Option<&str>) -> Chain {
        Chain {
            prev: GENESIS.to_string(),
            next_seq: 1,
            count: 0,
            first_v2: None,
            pin: pin.map(|p| (p.trim().to_ascii_lowercase(), p.trim() == GENESIS)),
        }
    }

    fn feed(&mut self, e: &AuditEntry) -> std::result::Result<(), String> {
        if e.seq != self.next_seq {
            return Err(format!(
                "entry {} is out of sequence (expected {}): an entry was deleted, inserted or moved",
                e.seq, self.next_seq
            ));
        }
        if e.prev_hash != self.prev {
            return Err(format!(
                "entry {} does not follow the entry before it: an entry was deleted, inserted or reordered",
                e.seq
            ));
        }
        match (e.format, self.first_v2) {
            (FORMAT_V1, Some(v2)) => {
                return Err(format!(
                    "entry {} uses the old hash rule (format 1) after entry {v2} used custodian-audit/2: it was rewritten",
                    e.seq
                ))
            }
            (FORMAT_V2, None) => self.first_v2 = Some(e.seq),
            _ => {}
        }
        match expected_hash(e) {
            None => {
                return Err(format!(
                    "entry {} has an unknown format {}",
                    e.seq, e.format
                ))
            }
            Some(h) if h != e.hash => {
                return Err(format!("entry {} was edited after it was written", e.seq))
            }
            Some(_) => {}
        }
        if let Some((pin, seen)) = &mut self.pin {
            if *pin == e.hash {
                *seen = true;
            }
        }
        self.prev = e.hash.clone();
        self.next_seq += 1;
        self.count += 1;
        Ok(())
    }

    fn broken(&self, seq: i64, problem: String) -> AuditVerification {
        AuditVerification {
            entries: self.count + 1,
            ok: false,
            first_bad_seq: Some(seq),
            problem: Some(problem),
            head: self.prev.clone(),
            signature: SIG_NOT_CHECKED.into(),
            signature_note: Some("the chain is broken".into()),
        }
    }

    /// The end of the chain against its signed checkpoint (`what` names
    /// where the checkpoint came from, for messages).
    fn finish(
        &self,
        cp: Option<&Checkpoint>,
        verifier: &Verifier,
        what: &str,
    ) -> AuditVerification {
        let last = self.count;
        let mut v = AuditVerification {
            entries: self.count,
            ok: true,
            first_bad_seq: None,
            problem: None,
            head: self.prev.clone(),
            signature: SIG_NOT_CHECKED.into(),
            signature_note: None,
        };
        let fail = |mut v: AuditVerification, seq: Option<i64>, p: String| {
            v.ok = false;
            v.first_bad_seq = seq;
            v.problem = Some(p);
            v.signature = SIG_INVALID.into();
            v
        };
        if let Some((pin, seen)) = &self.pin {
            if !seen {
                let p = format!(
                    "the published head {pin} is not in this log: it was truncated before that entry, or rewritten"
                );
                let mut v = fail(v, None, p);
                v.signature = SIG_NOT_CHECKED.into();
                return v;
            }
        }
        let Some(cp) = cp else {
            return match self.first_v2 {
                Some(seq) => fail(
                    v,
                    None,
                    format!(
                        "{what} has no signed checkpoint although entries from {seq} on use custodian-audit/2: \
                         the checkpoint was deleted"
                    ),
                ),
                None => {
                    v.signature = SIG_UNSIGNED.into();
                    v.signature_note = Some(if last == 0 {
                        "the log is empty; nothing is signed".into()
                    } else {
                        "every entry was written before custodian-audit/2; no signature covers them".into()
                    });
                    v
                }
            };
        };
        if cp.seq > last {
            return fail(
                v,
                Some(last + 1),
                format!(
                    "the signed checkpoint names entry {} but the log ends at entry {last}: entries were deleted from the end",
                    cp.seq
                ),
            );
        }
        if cp.seq < last {
            return fail(
                v,
                Some(cp.seq + 1),
                format!(
                    "entries {}..{last} are not covered by the signed checkpoint (entry {}): they were written \
                     without the signing key, or the checkpoint was rolled back",
                    cp.seq + 1,
                    cp.seq
                ),
            );
        }
        if cp.head != self.prev {
            return fail(
                v,
                None,
                format!(
                    "the signed checkpoint at entry {} names head {} but the chain ends in {}: the log was rewritten (re-hashed)",
                    cp.seq, cp.head, self.prev
                ),
            );
        }
        match verifier {
            Verifier::NoKey(why) => {
                v.signature = SIG_NOT_CHECKED.into();
                v.signature_note = Some(format!(
                    "signature not checked: {why}; the chain is consistent, but whoever can write the database \
                     could have rewritten it whole"
                ));
                v
            }
            Verifier::Key(key) => {
                if cp.key_id != key.id() {
                    return fail(
                        v,
                        None,
                        format!(
                            "the checkpoint at entry {} was signed with another key (id {}, this key is {}): \
                             the log was re-signed, or this is not the key that signs it",
                            cp.seq,
                            cp.key_id,
                            key.id()
                        ),
                    );
                }
                if !key.verify(&checkpoint_message(cp.seq, &cp.head, cp.at), &cp.signature) {
                    return fail(
                        v,
                        None,
                        format!(
                            "the signature of the checkpoint at entry {} does not match: the log was rewritten \
                             (re-hashed) or the checkpoint forged",
                            cp.seq
                        ),
                    );
                }
                v.signature = SIG_VERIFIED.into();
                v.signature_note = Some(format!(
                    "entries 1..{} are signed (key id {})",
                    cp.seq, cp.key_id
                ));
                v
            }
        }
    }
}

/// Checks the chain of a whole log from its first entry: sequence, links
/// and hashes only (no checkpoint; see [`Store::verify_audit`] and
/// [`verify_export`] for the signed checks).
pub fn verify_entries(entries: &[AuditEntry]) -> AuditVerification {
    let mut chain = Chain::new(None);
    for e in entries {
        if let Err(p) = chain.feed(e) {
            return chain.broken(e.seq, p);
        }
    }
    let mut v = chain.finish(
        None,
        &Verifier::NoKey("no checkpoint given".into()),
        "the log",
    );
    if v.signature == SIG_INVALID {
        // Entries alone carry no signature: report the chain only.
        v.ok = true;
        v.problem = None;
        v.signature = SIG_NOT_CHECKED.into();
        v.signature_note = Some("signature not checked: only the chain was given".into());
    }
    v
}

const AUDIT_COLUMNS: &str = "seq, at, actor, action, subject, details, prev_hash, hash, format";

impl Store {
    /// Entries with `seq > after`, oldest first, at most `limit`.
    pub fn audit_entries(&self, after: i64, limit: i64) -> Result<Vec<AuditEntry>> {
        let mut st = self.db.prepare_cached(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq > ?1 ORDER BY seq LIMIT ?2"
        ))?;
        let rows = st
            .query_map([after, limit], read_entry)?
            .collect::<Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// The latest signed checkpoint, if any.
    pub fn audit_checkpoint(&self) -> Result<Option<Checkpoint>> {
        self.db.query_opt(
            "SELECT seq, head, at, key_id, signature FROM audit_checkpoints ORDER BY seq DESC LIMIT 1",
            [],
            |r| {
                Ok(Checkpoint {
                    seq: r.get(0)?,
                    head: r.get(1)?,
                    at: r.get(2)?,
                    key_id: r.get(3)?,
                    signature: r.get(4)?,
                })
            },
        )
    }

    /// Verifies the whole chain in the store and its signed checkpoint,
    /// with the store's audit key when it is available.
    pub fn verify_audit(&self) -> Result<AuditVerification> {
        if self.snapshot().is_some() {
            // The workspace's chain, as it was; its key is the workspace's.
            return self.verify_workspace_audit(&Verifier::NoKey(
                "this is the workspace's offline snapshot (the workspace checks its signatures)"
                    .into(),
            ));
        }
        self.verify_audit_with(&Verifier::for_engine(self.engine()))
    }

    /// In a team workspace the database appends entries (members never hold
    /// the audit key), so the log is a signed prefix, up to the checkpoint a
    /// key holder (admin or worker) last signed, and a chained but unsigned
    /// tail, reported as such. The whole chain must still be consistent.
    fn verify_workspace_audit(&self, verifier: &Verifier) -> Result<AuditVerification> {
        let cp = self.audit_checkpoint()?;
        let mut chain = Chain::new(None);
        let mut prefix: Option<Chain> = None;
        let mut after = 0;
        loop {
            let chunk = self.audit_entries(after, 10_000)?;
            let Some(last) = chunk.last() else { break };
            after = last.seq;
            for e in &chunk {
                if let Err(p) = chain.feed(e) {
                    return Ok(chain.broken(e.seq, p));
                }
                if cp.as_ref().is_some_and(|c| c.seq == e.seq) {
                    prefix = Some(chain.clone());
                }
            }
        }
        let signed = match (&cp, &prefix) {
            (Some(c), Some(p)) if chain.count > c.seq => {
                Some((c.seq, p.finish(Some(c), verifier, "the store")))
            }
            (None, _) if chain.count > 0 => Some((
                0,
                AuditVerification {
                    entries: 0,
                    ok: true,
                    first_bad_seq: None,
                    problem: None,
                    head: GENESIS.to_string(),
                    signature: SIG_UNSIGNED.into(),
                    signature_note: None,
                },
            )),
            _ => None,
        };
        let Some((upto, mut v)) = signed else {
            return Ok(chain.finish(cp.as_ref(), verifier, "the store"));
        };
        v.entries = chain.count;
        v.head = chain.prev.clone();
        if v.ok {
            let before = v
                .signature_note
                .take()
                .map(|n| format!("{n}; "))
                .unwrap_or_default();
            v.signature_note = Some(format!(
                "{before}entries {}..{} were appended by the workspace database: chained, not yet signed \
                 (a holder of the audit key, the admin or the worker, re-signs the head)",
                upto + 1,
                chain.count
            ));
        }
        Ok(v)
    }

    /// Verifies with a given key (or none).
    pub fn verify_audit_with(&self, verifier: &Verifier) -> Result<AuditVerification> {
        if super::workspace::in_workspace(self.db())? {
            return self.verify_workspace_audit(verifier);
        }
        let mut chain = Chain::new(None);
        let mut after = 0;
        loop {
            // In chunks, so a long log is not held in memory at once.
            let chunk = self.audit_entries(after, 10_000)?;
            let Some(last) = chunk.last() else { break };
            after = last.seq;
            for e in &chunk {
                if let Err(p) = chain.feed(e) {
                    return Ok(chain.broken(e.seq, p));
                }
            }
        }
        let cp = self.audit_checkpoint()?;
        Ok(chain.finish(cp.as_ref(), verifier, "the store"))
    }

    /// Whether an entry with this hash is in the log (a published head).
    pub fn audit_contains(&self, hash: &str) -> Result<bool> {
        let h = hash.trim().to_ascii_lowercase();
        if h == GENESIS {
            return Ok(true);
        }
        Ok(self
            .db
            .query_opt("SELECT seq FROM audit_log WHERE hash = ?1", [h], |r| {
                r.get::<i64>(0)
            })?
            .is_some())
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

/// The export format: JSON Lines. Line 1 is a header
/// `{"format":"custodian-audit/2","entries":N,"head":"<hash>","exported_at":"…",
/// "checkpoint":{"seq":N,"head":"<hash>","at":T,"key_id":"…","signature":"…"}}`
/// (`checkpoint` is null for a log with no signed entry); every further line
/// is one [`AuditEntry`] in `seq` order. The checkpoint is the store's own,
/// copied: the export is not re-signed, so exporting a tampered store does
/// not launder it.
pub const EXPORT_FORMAT: &str = "custodian-audit/2";
/// The earlier export format (no checkpoint, every entry format 1).
pub const EXPORT_FORMAT_V1: &str = "custodian-audit/1";

impl Store {
    /// Writes the log as JSON Lines to `w`; returns (entries, head) of the
    /// header. With a checkpoint, the header and the entries end at it.
    pub fn export_audit(
        &self,
        w: &mut impl std::io::Write,
        exported_at: &str,
    ) -> Result<(i64, String)> {
        let cp = self.audit_checkpoint()?;
        let (n, head, upto) = match &cp {
            Some(c) => (c.seq, c.head.clone(), c.seq),
            None => (
                self.db
                    .query_row("SELECT count(*) FROM audit_log", [], |r| r.get(0))?,
                self.audit_head()?,
                i64::MAX,
            ),
        };
        let header = serde_json::json!({
            "format": EXPORT_FORMAT,
            "entries": n,
            "head": head,
            "exported_at": exported_at,
            "checkpoint": cp,
        });
        writeln!(w, "{header}")?;
        let mut after = 0;
        'chunks: loop {
            let chunk = self.audit_entries(after, 10_000)?;
            let Some(last) = chunk.last() else { break };
            after = last.seq;
            for e in &chunk {
                if e.seq > upto {
                    break 'chunks;
                }
                writeln!(w, "{}", serde_json::to_string(e)?)?;
            }
        }
        Ok((n, head))
    }
}

/// Verifies an exported log (JSON Lines) without a store: the chain, the
/// header's count and head against the entries, the header's signed
/// checkpoint (with `verifier`'s key), and, given `published_head`, that
/// the log contains that head (a head published elsewhere pins the log up
/// to it, even without the key).
pub fn verify_export(
    text: &str,
    published_head: Option<&str>,
    verifier: &Verifier,
) -> Result<AuditVerification> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let header: serde_json::Value = lines
        .next()
        .ok_or_else(|| Error::invalid("the file is empty"))
        .and_then(|(_, l)| {
            serde_json::from_str(l)
                .map_err(|e| Error::invalid(format!("line 1 is not the export header: {e}")))
        })?;
    let format = header.get("format").and_then(|f| f.as_str());
    if format != Some(EXPORT_FORMAT) && format != Some(EXPORT_FORMAT_V1) {
        return Err(Error::invalid(format!(
            "not a Custodian audit export (format {EXPORT_FORMAT} or {EXPORT_FORMAT_V1} expected)"
        )));
    }
    let checkpoint: Option<Checkpoint> = match header.get("checkpoint") {
        None | Some(serde_json::Value::Null) => None,
        Some(c) => Some(serde_json::from_value(c.clone()).map_err(|e| {
            Error::new(
                ErrorCode::AuditBroken,
                format!("the header's checkpoint is malformed: {e}"),
            )
        })?),
    };
    let mut chain = Chain::new(published_head);
    for (i, l) in lines {
        let e = serde_json::from_str::<AuditEntry>(l)
            .map_err(|e| Error::invalid(format!("line {} is not an audit entry: {e}", i + 1)))?;
        if let Err(p) = chain.feed(&e) {
            return Ok(chain.broken(e.seq, p));
        }
    }
    let claimed_n = header.get("entries").and_then(|n| n.as_i64()).unwrap_or(-1);
    let claimed_head = header.get("head").and_then(|h| h.as_str()).unwrap_or("");
    let mut v = chain.finish(checkpoint.as_ref(), verifier, "the export");
    if v.ok && (claimed_n != v.entries || claimed_head != v.head) {
        v.ok = false;
        v.signature = SIG_INVALID.into();
        v.problem = Some(format!(
            "the header says {claimed_n} entries ending in {claimed_head}, the file holds {} ending in {}: \
             entries were removed from the end, or the header was changed",
            v.entries, v.head
        ));
    }
    if v.ok && format == Some(EXPORT_FORMAT_V1) {
        v.signature = SIG_UNSIGNED.into();
        v.signature_note = Some(format!(
            "a {EXPORT_FORMAT_V1} export carries no signature; compare its head with a published one"
        ));
    }
    Ok(v)
}

/// The error for a log that does not verify (the CLI's exit status).
pub fn broken_error(v: &AuditVerification) -> Error {
    Error::new(
        ErrorCode::AuditBroken,
        format!(
            "the audit log does not verify: {}",
            v.problem.clone().unwrap_or_default()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_v2_encoding_keeps_fields_apart() {
        // Moving a newline between fields keeps the format-1 hash...
        let a = entry_hash_v1(GENESIS, 1, 5, "ann", "x\ny", "s", "{}");
        let b = entry_hash_v1(GENESIS, 1, 5, "ann\nx", "y", "s", "{}");
        assert_eq!(a, b);
        // ...never the format-2 hash.
        let a = entry_hash(GENESIS, 1, 5, "ann", "x\ny", "s", "{}");
        let b = entry_hash(GENESIS, 1, 5, "ann\nx", "y", "s", "{}");
        assert_ne!(a, b);
        assert_eq!(
            length_prefixed(&[b"ab", b""]),
            [0, 0, 0, 0, 0, 0, 0, 2, b'a', b'b', 0, 0, 0, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn checkpoint_signatures_bind_seq_head_and_time() {
        let k = AuditKey::from_bytes([1; 32]);
        let cp = Checkpoint::sign(&k, 3, "ab", 9);
        assert!(k.verify(&checkpoint_message(3, "ab", 9), &cp.signature));
        assert!(!k.verify(&checkpoint_message(2, "ab", 9), &cp.signature));
        assert!(!k.verify(&checkpoint_message(3, "ac", 9), &cp.signature));
        assert!(!k.verify(&checkpoint_message(3, "ab", 8), &cp.signature));
    }
}

// ------------------------------------------------------ governance history ---

/// Governance history a store holds: what replacing its organisation would
/// remove (campaigns, decisions, cases, registrations, tasks) or bury
/// (audit entries, which are kept).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct History {
    pub campaigns: i64,
    pub decisions: i64,
    pub offboarding_cases: i64,
    pub registrations: i64,
    pub tasks: i64,
    pub audit_entries: i64,
}

impl History {
    /// What `self` holds beyond `base` (never negative).
    pub fn beyond(self, base: History) -> History {
        History {
            campaigns: (self.campaigns - base.campaigns).max(0),
            decisions: (self.decisions - base.decisions).max(0),
            offboarding_cases: (self.offboarding_cases - base.offboarding_cases).max(0),
            registrations: (self.registrations - base.registrations).max(0),
            tasks: (self.tasks - base.tasks).max(0),
            audit_entries: (self.audit_entries - base.audit_entries).max(0),
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == History::default()
    }

    /// "2 campaigns, 5 decisions" (only what is there).
    pub fn describe(&self) -> String {
        let parts = [
            (self.campaigns, "campaign", "campaigns"),
            (self.decisions, "decision", "decisions"),
            (
                self.offboarding_cases,
                "offboarding case",
                "offboarding cases",
            ),
            (self.registrations, "registration", "registrations"),
            (self.tasks, "task", "tasks"),
            (self.audit_entries, "audit entry", "audit entries"),
        ];
        parts
            .iter()
            .filter(|(n, _, _)| *n > 0)
            .map(|(n, one, many)| format!("{n} {}", if *n == 1 { one } else { many }))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// `meta` key: the history a demo load itself made (its own offboarding
/// cases and their audit entries), so only what came after counts.
const DEMO_BASELINE: &str = "demo_history";

fn history_of(db: &Db) -> Result<History> {
    db.query_row(
        "SELECT (SELECT count(*) FROM campaigns), (SELECT count(*) FROM campaign_events),
                (SELECT count(*) FROM offboarding_cases),
                (SELECT count(*) FROM identity_events WHERE kind = 'registered'),
                (SELECT count(*) FROM tasks), (SELECT count(*) FROM audit_log)",
        [],
        |r| {
            Ok(History {
                campaigns: r.get(0)?,
                decisions: r.get(1)?,
                offboarding_cases: r.get(2)?,
                registrations: r.get(3)?,
                tasks: r.get(4)?,
                audit_entries: r.get(5)?,
            })
        },
    )
}

/// Records, within a demo load's transaction, the history the load itself
/// left (the baseline [`Store::history_beyond_demo`] subtracts).
pub fn record_demo_baseline(tx: &Db) -> Result<()> {
    let h = history_of(tx)?;
    super::set_meta_in(tx, DEMO_BASELINE, &serde_json::to_string(&h)?)
}

impl Store {
    /// All governance history in the store.
    pub fn governance_history(&self) -> Result<History> {
        history_of(&self.db)
    }

    /// History made by people: everything, less what the demo load made
    /// when the store holds the demo organisation.
    pub fn history_beyond_demo(&self) -> Result<History> {
        history_beyond_demo_in(&self.db)
    }
}

/// [`Store::history_beyond_demo`] within a transaction.
pub(crate) fn history_beyond_demo_in(db: &Db) -> Result<History> {
    let h = history_of(db)?;
    let meta = |key: &str| super::meta_in(db, key);
    let demo = meta("dataset")?.is_some_and(|d| d.starts_with("demo-"));
    let base = match meta(DEMO_BASELINE)? {
        Some(b) if demo => serde_json::from_str(&b).unwrap_or_default(),
        _ => History::default(),
    };
    Ok(h.beyond(base))
}
