//! Source secrets in a real OS keyring: gnome-keyring (Secret Service) in a
//! private D-Bus session, driven through the real CLI.

use std::process::Command;

use crate::peers::ScimServer;

fn session_script() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/keyring-session.sh")
}

fn require(bin: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {bin}"))
        .output()
        .unwrap()
        .status
        .success();
    assert!(
        found,
        "{bin} is not installed: run `bash tests/run.sh` (it installs gnome-keyring and dbus)"
    );
}

#[test]
fn secrets_round_trip_through_the_os_keyring_and_never_touch_the_cache() {
    require("gnome-keyring-daemon");
    require("dbus-run-session");
    let server = ScimServer::start();
    server.user("svc-keyring", Some("Service"), None, "Platform");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cache.db");
    // The cache key, read back from the keyring, outside the folder searched.
    let keydir = tempfile::tempdir().unwrap();
    let keyfile = keydir.path().join("cache-key");
    let exe = env!("CARGO_BIN_EXE_custodian");
    // One keyring session: store the token with `source add`, then `sync`
    // reads it back from the keyring; finally the entry is looked up with
    // secret-tool to prove where it lives.
    let script = r#"set -e
printf '%s\n' "$TOKEN" | "$EXE" --db "$DB" source add scim --name kr --set base_url="$BASE" --secret-stdin
"$EXE" --db "$DB" sync kr --json
"$EXE" --db "$DB" diagnostics --out "$DIR/diagnostics.json" >/dev/null
"$EXE" --db "$DB" audit export --out "$DIR/audit.jsonl" >/dev/null
"$EXE" --db "$DB" tasks --export json > "$DIR/tasks.json"
"$EXE" --db "$DB" summary --json
secret-tool lookup service org.custodian.desktop username source-1 || secret-tool search --all service org.custodian.desktop
echo
echo "cache-key: $(secret-tool lookup service org.custodian.desktop username cache-key | wc -c)"
secret-tool lookup service org.custodian.desktop username cache-key > "$KEYFILE"
echo "audit-key: $(secret-tool lookup service org.custodian.desktop username audit-key | wc -c)"
"$EXE" --db "$DB" audit verify
"#;
    let out = Command::new("bash")
        .arg(session_script())
        .args(["bash", "-c", script])
        .env("EXE", exe)
        .env("DB", &db)
        .env("BASE", &server.base)
        .env("TOKEN", &server.token)
        .env("DIR", dir.path())
        .env("KEYFILE", &keyfile)
        // The most verbose logs, into the test's folder.
        .env("CUSTODIAN_LOG", "trace")
        // The cache key goes to the keyring too (no passphrase from the environment).
        .env_remove("CUSTODIAN_CACHE_KEY")
        .env_remove("CUSTODIAN_AUDIT_KEY")
        .env("CUSTODIAN_LOG_DIR", dir.path().join("logs"))
        .env_remove("CUSTODIAN_DB")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("\"status\": \"succeeded\""), "{stdout}");
    assert!(
        stdout.contains(&server.token),
        "the keyring holds the token: {stdout}"
    );
    // The audit signing key is created in the keyring on first use, and
    // the log verifies signed with it.
    assert!(stdout.contains("audit-key: 64"), "{stdout}");
    assert!(stdout.contains("Audit log verified and signed"), "{stdout}");
    assert!(
        stdout.contains("cache-key: 64"),
        "the keyring holds the 64-hex-digit cache key: {stdout}"
    );
    assert_ne!(
        &std::fs::read(&db).unwrap()[..16],
        b"SQLite format 3\0",
        "the cache is encrypted"
    );

    // Without its key the cache does not open as SQLite at all...
    let plain = rusqlite::Connection::open(&db).unwrap();
    let err = plain
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })
        .unwrap_err();
    assert!(err.to_string().contains("not a database"), "{err}");
    drop(plain);
    // ...with it, no text or blob in any column of any table holds the
    // secret, plainly, in hex or in base64.
    let key = std::fs::read_to_string(&keyfile).unwrap();
    let key = key.trim();
    assert_eq!(key.len(), 64, "a raw key from the keyring");
    let forms = secret_forms(&server.token);
    let (tables, cells) = scan_cache(&db, key, &forms);
    assert!(tables >= 20, "every table was read ({tables})");
    assert!(cells > 200, "every cell was read ({cells})");

    // The cache, its WAL, trace-level logs, the diagnostics bundle, the audit
    // export and the task export never contain the secret (nor its hex or
    // base64 forms); stderr neither.
    let mut checked = 0;
    let mut stack = vec![dir.path().to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let bytes = std::fs::read(&p).unwrap();
            // Failures name the form's index, never the secret.
            for (k, f) in forms.iter().enumerate() {
                assert!(
                    !contains(&bytes, f.as_bytes()),
                    "the secret (form {k}) found in {}",
                    p.display()
                );
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 5,
        "cache, logs and exports were all checked ({checked} files)"
    );
    assert!(
        dir.path().join("logs").read_dir().unwrap().count() >= 1,
        "trace logs were written"
    );
    assert!(!stderr.contains(&server.token), "secret on stderr");
    assert!(
        stdout.contains("\"identities\": 1"),
        "reopened with the key from the keyring: {stdout}"
    );
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The secret as it could be stored: itself, hex (both cases), and the
/// part of its base64 (standard and URL-safe) that does not depend on the
/// bytes around it, at each of the three alignments.
fn secret_forms(secret: &str) -> Vec<String> {
    const STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b64 = |bytes: &[u8]| -> String {
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for k in 0..=chunk.len() {
                out.push(STD[((n >> (18 - 6 * k)) & 63) as usize] as char);
            }
        }
        out
    };
    let hex: String = secret.bytes().map(|b| format!("{b:02x}")).collect();
    let mut forms = vec![secret.to_string(), hex.clone(), hex.to_uppercase()];
    for pad in 0..3 {
        let mut bytes = vec![0u8; pad];
        bytes.extend_from_slice(secret.as_bytes());
        let enc = b64(&bytes);
        // Drop the characters that mix in the padding bytes or the end.
        let core: String = enc.chars().skip((pad * 4).div_ceil(3)).collect();
        let core: String = core
            .chars()
            .take(core.chars().count().saturating_sub(3))
            .collect();
        assert!(core.len() >= 8, "a long enough secret to search for");
        forms.push(core.clone());
        forms.push(core.replace('+', "-").replace('/', "_"));
    }
    forms.sort();
    forms.dedup();
    forms
}

/// Opens the cache with its raw key (bypassing the store) and reads every
/// text and blob of every table: (tables read, cells read).
fn scan_cache(db: &std::path::Path, key: &str, forms: &[String]) -> (usize, usize) {
    let c = rusqlite::Connection::open(db).unwrap();
    c.execute_batch(&format!("PRAGMA key = \"x'{key}'\";"))
        .unwrap();
    let mut st = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap();
    let tables: Vec<String> = st
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    let mut cells = 0;
    for t in &tables {
        // FTS shadow tables and virtual tables read like any other.
        let Ok(mut st) = c.prepare(&format!("SELECT * FROM \"{t}\"")) else {
            continue;
        };
        let n = st.column_count();
        let mut rows = st.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            for i in 0..n {
                let bytes: Vec<u8> = match row.get_ref(i).unwrap() {
                    rusqlite::types::ValueRef::Text(b) | rusqlite::types::ValueRef::Blob(b) => {
                        b.to_vec()
                    }
                    _ => continue,
                };
                cells += 1;
                for (k, f) in forms.iter().enumerate() {
                    assert!(
                        !contains(&bytes, f.as_bytes()),
                        "the secret (form {k}) in the cache: table {t}, column {i}"
                    );
                }
            }
        }
    }
    (tables.len(), cells)
}

#[test]
fn without_a_keyring_the_error_says_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cache.db");
    let out = Command::new(env!("CARGO_BIN_EXE_custodian"))
        .args(["--db"])
        .arg(&db)
        .args([
            "source",
            "add",
            "scim",
            "--name",
            "x",
            "--set",
            "base_url=http://127.0.0.1:9/v2",
            "--secret-stdin",
        ])
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
        .env_remove("CUSTODIAN_DB")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b"tok\n")?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("error[keyring]") && err.contains("Secret Service"),
        "{err}"
    );
}
