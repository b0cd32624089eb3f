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

    // The cache, its WAL, trace-level logs, the diagnostics bundle, the audit
    // export and the task export never contain the secret; stderr neither.
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
            assert!(
                !bytes
                    .windows(server.token.len())
                    .any(|w| w == server.token.as_bytes()),
                "secret found in {}",
                p.display()
            );
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
