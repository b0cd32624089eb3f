//! The audit log detects every kind of tampering by anyone who lacks the
//! signing key (edit, field shift, insert, delete in the middle, reorder,
//! deleting the tail, full rehash, forged or foreign checkpoint, entries
//! written without the key), in the store and in an exported copy. A
//! key-less verifier says "signature not checked", never "verified".

use custodian::store::audit::{
    self, entry_hash, entry_hash_v1, verify_entries, verify_export, AuditEntry, Checkpoint,
    Verifier, SIG_INVALID, SIG_NOT_CHECKED, SIG_UNSIGNED, SIG_VERIFIED,
};
use custodian::store::key::{audit_key, AuditKey};
use custodian::store::Store;

use crate::util::now;

/// A store with four audited actions (acting-person changes).
fn logged() -> Store {
    let mut b = crate::util::OrgBuilder::new();
    for n in ["Ann", "Bo", "Cy", "Di"] {
        b.person(n, custodian::model::PersonStatus::Active);
    }
    let mut store = crate::util::test_store();
    store.replace_org(&b.org, now()).unwrap();
    for p in ["1", "2", "3", "4"] {
        custodian::ops::set_acting_person(&mut store, p, now()).unwrap();
    }
    store
}

fn entries(store: &Store) -> Vec<AuditEntry> {
    store.audit_entries(0, 1000).unwrap()
}

fn key(store: &Store) -> Verifier {
    Verifier::Key(audit_key(store.engine()).unwrap())
}

fn no_key() -> Verifier {
    Verifier::NoKey("no key in this test".into())
}

/// Replaces the whole log with `entries` (what an attacker with write
/// access to the database can do).
fn rewrite(store: &Store, entries: &[AuditEntry]) {
    let db = store.raw_db();
    db.execute("DELETE FROM audit_log", []).unwrap();
    for e in entries {
        db.execute(
            "INSERT INTO audit_log (seq, at, actor, action, subject, details, prev_hash, hash, format)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            custodian::store::db::params![
                e.seq, e.at, e.actor, e.action, e.subject, e.details, e.prev_hash, e.hash, e.format
            ],
        )
        .unwrap();
    }
}

/// Re-chains `entries` from seq 1 with correct hashes (format 2): what an
/// attacker without the key can compute.
fn rehash(mut entries: Vec<AuditEntry>) -> Vec<AuditEntry> {
    let mut prev = audit::GENESIS.to_string();
    for (i, e) in entries.iter_mut().enumerate() {
        e.seq = i as i64 + 1;
        e.prev_hash = prev.clone();
        e.format = 2;
        e.hash = entry_hash(
            &prev, e.seq, e.at, &e.actor, &e.action, &e.subject, &e.details,
        );
        prev = e.hash.clone();
    }
    entries
}

fn set_checkpoint(store: &Store, cp: &Checkpoint) {
    let db = store.raw_db();
    db.execute("DELETE FROM audit_checkpoints", []).unwrap();
    db.execute(
        "INSERT INTO audit_checkpoints (seq, head, at, key_id, signature) VALUES (?1, ?2, ?3, ?4, ?5)",
        custodian::store::db::params![cp.seq, cp.head, cp.at, cp.key_id, cp.signature],
    )
    .unwrap();
}

#[track_caller]
fn fails(v: &audit::AuditVerification, bad: Option<i64>, words: &str) {
    assert!(!v.ok, "must not verify: {v:?}");
    assert_eq!(v.first_bad_seq, bad, "{v:?}");
    let p = v.problem.as_deref().unwrap_or("");
    assert!(
        p.contains(words),
        "the problem names the fault ({words}): {p}"
    );
    assert_ne!(v.signature, SIG_VERIFIED);
}

#[test]
fn an_untouched_log_verifies_signed_and_names_its_head() {
    let store = logged();
    let v = store.verify_audit().unwrap();
    assert!(v.ok, "{v:?}");
    assert_eq!(v.signature, SIG_VERIFIED, "{v:?}");
    assert_eq!(v.entries, 4);
    assert_eq!(v.head, store.audit_head().unwrap());
    assert!(entries(&store).iter().all(|e| e.format == 2));
    // Only the latest checkpoint is kept, naming the last entry.
    let cp = store.audit_checkpoint().unwrap().unwrap();
    assert_eq!((cp.seq, cp.head.as_str()), (4, v.head.as_str()));
    let n: i64 = store
        .raw_db()
        .query_row("SELECT count(*) FROM audit_checkpoints", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
    // The chain alone verifies the same way, without a signature.
    let c = verify_entries(&entries(&store));
    assert!(
        c.ok && c.head == v.head && c.signature == SIG_NOT_CHECKED,
        "{c:?}"
    );
}

#[test]
fn a_verifier_without_the_key_says_signature_not_checked() {
    let store = logged();
    let v = store.verify_audit_with(&no_key()).unwrap();
    assert!(v.ok, "the chain is consistent: {v:?}");
    assert_eq!(v.signature, SIG_NOT_CHECKED);
    assert!(v
        .signature_note
        .unwrap()
        .contains("signature not checked: no key in this test"));
    // With another key, the same log is refused.
    let other = Verifier::Key(AuditKey::from_bytes([9; 32]));
    fails(
        &store.verify_audit_with(&other).unwrap(),
        None,
        "signed with another key",
    );
}

#[test]
fn every_kind_of_tampering_in_the_store_is_detected() {
    // Edit a field.
    let store = logged();
    store
        .raw_db()
        .execute("UPDATE audit_log SET details = '{}' WHERE seq = 3", [])
        .unwrap();
    fails(
        &store.verify_audit().unwrap(),
        Some(3),
        "entry 3 was edited",
    );

    // Move text from one field to the next: the old newline rule keeps the
    // hash, the length-prefixed rule does not.
    let store = logged();
    let k = audit_key(store.engine()).unwrap();
    audit::append_signed(
        store.raw_db(),
        &k,
        100,
        "Ann",
        "note\nsplit",
        "s",
        &serde_json::json!({}),
    )
    .unwrap();
    assert!(store.verify_audit().unwrap().ok);
    assert_eq!(
        entry_hash_v1("p", 5, 100, "Ann", "note\nsplit", "s", "{}"),
        entry_hash_v1("p", 5, 100, "Ann\nnote", "split", "s", "{}")
    );
    store
        .raw_db()
        .execute(
            "UPDATE audit_log SET actor = ?1, action = ?2 WHERE seq = 5",
            ["Ann\nnote", "split"],
        )
        .unwrap();
    fails(
        &store.verify_audit().unwrap(),
        Some(5),
        "entry 5 was edited",
    );

    // Insert an entry in the middle (correctly hashed on its predecessor).
    let store = logged();
    let mut e = entries(&store);
    let mut forged = e[1].clone();
    forged.seq = 3;
    forged.actor = "Mallory".into();
    forged.prev_hash = e[1].hash.clone();
    forged.hash = entry_hash(
        &forged.prev_hash,
        3,
        forged.at,
        "Mallory",
        &forged.action,
        &forged.subject,
        &forged.details,
    );
    e.insert(2, forged);
    for (i, x) in e.iter_mut().enumerate() {
        x.seq = i as i64 + 1;
    }
    rewrite(&store, &e);
    fails(
        &store.verify_audit().unwrap(),
        Some(4),
        "entry 4 does not follow",
    );

    // Delete an entry in the middle.
    let store = logged();
    store
        .raw_db()
        .execute("DELETE FROM audit_log WHERE seq = 2", [])
        .unwrap();
    fails(
        &store.verify_audit().unwrap(),
        Some(3),
        "entry 3 is out of sequence",
    );

    // Reorder two entries (and renumber them).
    let store = logged();
    let mut e = entries(&store);
    e.swap(1, 2);
    e[1].seq = 2;
    e[2].seq = 3;
    rewrite(&store, &e);
    fails(
        &store.verify_audit().unwrap(),
        Some(2),
        "entry 2 does not follow",
    );

    // Delete the tail: the checkpoint names an entry beyond the end.
    let store = logged();
    store
        .raw_db()
        .execute("DELETE FROM audit_log WHERE seq = 4", [])
        .unwrap();
    fails(
        &store.verify_audit().unwrap(),
        Some(4),
        "names entry 4 but the log ends at entry 3: entries were deleted from the end",
    );
    // ...and the checkpoint with it.
    store
        .raw_db()
        .execute("DELETE FROM audit_checkpoints", [])
        .unwrap();
    fails(
        &store.verify_audit().unwrap(),
        None,
        "no signed checkpoint although entries from 1 on use custodian-audit/2",
    );

    // A full rehash after an edit.
    let store = logged();
    let mut e = entries(&store);
    e[1].actor = "Mallory".into();
    let e = rehash(e);
    rewrite(&store, &e);
    fails(
        &store.verify_audit().unwrap(),
        None,
        "the log was rewritten (re-hashed)",
    );
    // ...with the checkpoint's head moved to the new head: the signature fails.
    let mut cp = store.audit_checkpoint().unwrap().unwrap();
    cp.head = e[3].hash.clone();
    set_checkpoint(&store, &cp);
    fails(
        &store.verify_audit().unwrap(),
        None,
        "the signature of the checkpoint at entry 4 does not match",
    );
    // ...re-signed with the attacker's own key: another key.
    let mallory = AuditKey::from_bytes([6; 32]);
    set_checkpoint(&store, &Checkpoint::sign(&mallory, 4, &e[3].hash, e[3].at));
    fails(
        &store.verify_audit().unwrap(),
        None,
        "signed with another key",
    );
    // A key-less verifier cannot tell: it never says verified.
    let v = store.verify_audit_with(&no_key()).unwrap();
    assert_eq!((v.ok, v.signature.as_str()), (true, SIG_NOT_CHECKED));

    // An entry appended without the key (no new checkpoint).
    let store = logged();
    let mut e = entries(&store);
    let last = e[3].clone();
    let mut extra = last.clone();
    extra.seq = 5;
    extra.prev_hash = last.hash.clone();
    extra.hash = entry_hash(
        &extra.prev_hash,
        5,
        extra.at,
        &extra.actor,
        &extra.action,
        &extra.subject,
        &extra.details,
    );
    e.push(extra);
    rewrite(&store, &e);
    fails(
        &store.verify_audit().unwrap(),
        Some(5),
        "entries 5..5 are not covered by the signed checkpoint",
    );
}

#[test]
fn entries_from_before_format_2_keep_verifying_under_the_old_rule() {
    let mut store = logged();
    // The shape migration 9 leaves: two entries hashed the old way.
    let mut old = entries(&store)[..2].to_vec();
    let mut prev = audit::GENESIS.to_string();
    for e in &mut old {
        e.format = 1;
        e.prev_hash = prev.clone();
        e.hash = entry_hash_v1(
            &prev, e.seq, e.at, &e.actor, &e.action, &e.subject, &e.details,
        );
        prev = e.hash.clone();
    }
    rewrite(&store, &old);
    store
        .raw_db()
        .execute("DELETE FROM audit_checkpoints", [])
        .unwrap();
    let v = store.verify_audit().unwrap();
    assert!(v.ok, "{v:?}");
    assert_eq!(v.signature, SIG_UNSIGNED, "nothing signs old entries yet");
    // New entries use format 2 and sign the head, old ones included.
    custodian::ops::set_acting_person(&mut store, "3", now()).unwrap();
    let formats: Vec<i64> = entries(&store).iter().map(|e| e.format).collect();
    assert_eq!(formats, [1, 1, 2]);
    let v = store.verify_audit().unwrap();
    assert!(v.ok && v.signature == SIG_VERIFIED, "{v:?}");
    // An entry turned back to format 1 after a format-2 one is refused.
    let mut e = entries(&store);
    e[2].format = 1;
    e[2].hash = entry_hash_v1(
        &e[2].prev_hash,
        3,
        e[2].at,
        &e[2].actor,
        &e[2].action,
        &e[2].subject,
        &e[2].details,
    );
    rewrite(&store, &e);
    store
        .raw_db()
        .execute("DELETE FROM audit_checkpoints", [])
        .unwrap();
    // Downgrading every entry and dropping the checkpoint makes the log
    // read as unsigned: never as verified.
    let v = store.verify_audit().unwrap();
    assert_eq!(v.signature, SIG_UNSIGNED, "{v:?}");
    let mut e = entries(&store);
    e.push(e[2].clone());
    e[2].format = 2;
    e[2].hash = entry_hash(
        &e[2].prev_hash,
        3,
        e[2].at,
        &e[2].actor,
        &e[2].action,
        &e[2].subject,
        &e[2].details,
    );
    e[3].seq = 4;
    e[3].prev_hash = e[2].hash.clone();
    e[3].hash = entry_hash_v1(
        &e[3].prev_hash,
        4,
        e[3].at,
        &e[3].actor,
        &e[3].action,
        &e[3].subject,
        &e[3].details,
    );
    rewrite(&store, &e);
    fails(
        &store.verify_audit().unwrap(),
        Some(4),
        "entry 4 uses the old hash rule (format 1) after entry 3 used custodian-audit/2",
    );
}

fn export(store: &Store) -> (String, String) {
    let mut buf = Vec::new();
    let (n, head) = store
        .export_audit(&mut buf, "2026-11-01T00:00:00Z")
        .unwrap();
    let text = String::from_utf8(buf).unwrap();
    assert_eq!(
        text.lines().count() as i64,
        n + 1,
        "a header and one line per entry"
    );
    (text, head)
}

fn lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn unlines(v: &[serde_json::Value]) -> String {
    v.iter()
        .map(|l| l.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn an_export_verifies_offline_signed_and_against_a_published_head() {
    let store = logged();
    let (text, head) = export(&store);
    let k = key(&store);
    let v = verify_export(&text, None, &k).unwrap();
    assert!(
        v.ok && v.head == head && v.signature == SIG_VERIFIED,
        "{v:?}"
    );
    let v = verify_export(&text, None, &no_key()).unwrap();
    assert!(v.ok && v.signature == SIG_NOT_CHECKED, "{v:?}");
    assert!(v.signature_note.unwrap().contains("signature not checked"));
    // A head published earlier is still in the grown log; a foreign one is not.
    let earlier = entries(&store)[1].hash.clone();
    assert!(verify_export(&text, Some(&earlier), &no_key()).unwrap().ok);
    assert!(verify_export(&text, Some(&head), &k).unwrap().ok);
    let v = verify_export(&text, Some(&"1".repeat(64)), &k).unwrap();
    fails(&v, None, "is not in this log");
    // The header carries the store's checkpoint, never a fresh signature.
    let h = &lines(&text)[0];
    assert_eq!(h["format"], "custodian-audit/2");
    assert_eq!(h["checkpoint"]["seq"], 4);
    assert_eq!(h["checkpoint"]["head"], head.as_str());
    // Not an export at all.
    assert!(verify_export("{\"format\":\"other\"}", None, &k).is_err());
    assert!(verify_export("", None, &k).is_err());
}

#[test]
fn every_kind_of_tampering_in_an_export_is_detected() {
    let store = logged();
    let (text, head) = export(&store);
    let k = key(&store);
    let l = lines(&text);

    // Edit an entry's actor.
    let edited = text.replacen("\"actor\":\"Ann\"", "\"actor\":\"Mallory\"", 1);
    assert_ne!(edited, text);
    fails(
        &verify_export(&edited, None, &k).unwrap(),
        Some(1),
        "entry 1 was edited",
    );

    // Delete an entry in the middle.
    let mut cut = l.clone();
    cut.remove(2);
    fails(
        &verify_export(&unlines(&cut), None, &k).unwrap(),
        Some(3),
        "entry 3 is out of sequence",
    );

    // Reorder two entries.
    let mut swapped = l.clone();
    swapped.swap(2, 3);
    fails(
        &verify_export(&unlines(&swapped), None, &k).unwrap(),
        Some(3),
        "out of sequence",
    );

    // Insert an entry (renumbered, hashed on its predecessor).
    let mut ins = l.clone();
    let mut forged: AuditEntry = serde_json::from_value(l[2].clone()).unwrap();
    forged.seq = 3;
    forged.prev_hash = forged.hash.clone();
    forged.hash = entry_hash(
        &forged.prev_hash,
        3,
        forged.at,
        &forged.actor,
        &forged.action,
        &forged.subject,
        &forged.details,
    );
    ins.insert(3, serde_json::to_value(&forged).unwrap());
    for (i, x) in ins.iter_mut().enumerate().skip(4) {
        x["seq"] = serde_json::json!(i as i64);
    }
    fails(
        &verify_export(&unlines(&ins), None, &k).unwrap(),
        Some(4),
        "entry 4 does not follow",
    );

    // Drop the tail: the header says more.
    let mut tail = l.clone();
    tail.pop();
    fails(
        &verify_export(&unlines(&tail), None, &k).unwrap(),
        Some(4),
        "names entry 4 but the log ends at entry 3",
    );
    // ...and adjust the header's count and head: the checkpoint still names 4.
    tail[0]["entries"] = serde_json::json!(3);
    tail[0]["head"] = tail[3]["hash"].clone();
    fails(
        &verify_export(&unlines(&tail), None, &k).unwrap(),
        Some(4),
        "entries were deleted from the end",
    );
    // ...and the checkpoint's seq and head too: its signature fails.
    tail[0]["checkpoint"]["seq"] = serde_json::json!(3);
    tail[0]["checkpoint"]["head"] = tail[3]["hash"].clone();
    fails(
        &verify_export(&unlines(&tail), None, &k).unwrap(),
        None,
        "does not match",
    );
    // Without the key that cannot be seen, but the published head can.
    let v = verify_export(&unlines(&tail), None, &no_key()).unwrap();
    assert_eq!((v.ok, v.signature.as_str()), (true, SIG_NOT_CHECKED));
    fails(
        &verify_export(&unlines(&tail), Some(&head), &no_key()).unwrap(),
        None,
        "is not in this log",
    );
    // ...or drop the checkpoint: a v2 export without one is refused.
    tail[0]["checkpoint"] = serde_json::Value::Null;
    fails(
        &verify_export(&unlines(&tail), None, &no_key()).unwrap(),
        None,
        "has no signed checkpoint",
    );

    // Renumber after deleting entry 2, re-hash everything, fix the header.
    let mut es: Vec<AuditEntry> = l[1..]
        .iter()
        .map(|x| serde_json::from_value(x.clone()).unwrap())
        .collect();
    es.remove(1);
    let es = rehash(es);
    let mut re = vec![l[0].clone()];
    re.extend(es.iter().map(|e| serde_json::to_value(e).unwrap()));
    re[0]["entries"] = serde_json::json!(3);
    re[0]["head"] = serde_json::json!(es[2].hash);
    re[0]["checkpoint"]["seq"] = serde_json::json!(3);
    re[0]["checkpoint"]["head"] = serde_json::json!(es[2].hash);
    fails(
        &verify_export(&unlines(&re), None, &k).unwrap(),
        None,
        "does not match",
    );
    fails(
        &verify_export(&unlines(&re), Some(&head), &no_key()).unwrap(),
        None,
        "is not in this log",
    );

    // A rehash with only the header's count and head adjusted, checkpoint kept.
    let mut re2 = re.clone();
    re2[0]["checkpoint"] = l[0]["checkpoint"].clone();
    fails(
        &verify_export(&unlines(&re2), None, &no_key()).unwrap(),
        Some(4),
        "entries were deleted from the end",
    );
}

#[test]
fn an_old_format_export_still_verifies_unsigned() {
    let store = logged();
    let mut prev = audit::GENESIS.to_string();
    let mut out = vec![];
    for mut e in entries(&store) {
        e.prev_hash = prev.clone();
        e.hash = entry_hash_v1(
            &prev, e.seq, e.at, &e.actor, &e.action, &e.subject, &e.details,
        );
        prev = e.hash.clone();
        let mut j = serde_json::to_value(&e).unwrap();
        j.as_object_mut().unwrap().remove("format");
        out.push(j);
    }
    out.insert(
        0,
        serde_json::json!({"format": "custodian-audit/1", "entries": 4, "head": prev, "exported_at": "x"}),
    );
    let v = verify_export(&unlines(&out), None, &key(&store)).unwrap();
    assert!(v.ok, "{v:?}");
    assert_eq!(v.signature, SIG_UNSIGNED);
    assert!(
        verify_export(&unlines(&out), Some(&prev), &no_key())
            .unwrap()
            .ok
    );
    out.pop();
    fails(
        &verify_export(&unlines(&out), None, &no_key()).unwrap(),
        None,
        "removed from the end",
    );
    let _ = SIG_INVALID;
}

#[test]
fn the_cli_checks_an_export_against_a_published_head() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cache.db");
    let loc = crate::util::cli_location(&db);
    let exe = env!("CARGO_BIN_EXE_custodian");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(exe)
            .arg("--db")
            .arg(&loc)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    crate::util::test_key();
    let (code, _, err) = run(&[
        "source",
        "add",
        "csv",
        "--name",
        "reg",
        "--set",
        "path=/nonexistent.csv",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let file = dir.path().join("log.jsonl");
    let (code, out, err) = run(&["audit", "export", "--out", file.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    let head = out
        .split("(head ")
        .nth(1)
        .unwrap()
        .trim_end_matches([')', '\n'])
        .to_string();
    let (code, out, err) = run(&[
        "audit",
        "verify",
        "--file",
        file.to_str().unwrap(),
        "--head",
        &head,
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("verified and signed"), "{out}");
    let (code, out, err) = run(&["audit", "verify", "--head", &"2".repeat(64)]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        err.contains("error[audit_broken]") && err.contains("is not in this log"),
        "{err}"
    );
    // A key-less verifier (another passphrase has no such key).
    let out = std::process::Command::new(exe)
        .args(["--db"])
        .arg(dir.path().join("other.db"))
        .args(["audit", "verify", "--file", file.to_str().unwrap()])
        .env(custodian::store::key::AUDIT_KEY_ENV, "cd".repeat(32))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("signed with another key"), "{err}");
}

#[test]
fn sync_runs_and_source_changes_are_audited() {
    use custodian::sync::records::{FetchMode, Fetched};
    let mut store = crate::util::test_store();
    let src = store
        .add_source(
            "test",
            "HR",
            &serde_json::json!({"base_url": "https://hr.example"}),
            now(),
        )
        .unwrap();
    let run = store.begin_sync_run(src, now()).unwrap();
    store
        .apply_fetch(src, run, &Fetched::new(FetchMode::Full), now())
        .unwrap();
    let run = store.begin_sync_run(src, now()).unwrap();
    store
        .end_sync_run_unapplied(
            run,
            "failed",
            &custodian::Error::new(custodian::ErrorCode::Network, "down"),
            now(),
        )
        .unwrap();
    let actions: Vec<String> = entries(&store)
        .into_iter()
        .map(|e| format!("{} {}", e.action, e.subject))
        .collect();
    assert_eq!(
        actions,
        [
            "source.add source 1 HR",
            "sync.run source 1 HR",
            "sync.run source 1 HR"
        ]
    );
    assert!(entries(&store)[2].details.contains("\"status\":\"failed\""));
    assert!(store.verify_audit().unwrap().ok);
}
