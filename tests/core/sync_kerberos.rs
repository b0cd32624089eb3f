//! The LDAP source's keyless sign-in against a real KDC: the Samba AD DC of
//! `tests/core/samba.rs` is a KDC too. A test user gets a ticket with the
//! real `kinit` (its password on stdin) into a credential cache of the
//! test's own, and `custodian sync` runs as a child process with that
//! cache (`KRB5CCNAME`) and a krb5.conf for the realm (`KRB5_CONFIG`), as
//! a user's shell after `kinit` would: the Kerberos library reads both
//! from the environment, which tests running in parallel cannot share.
//! No secret is stored: the keyring is never asked.
//!
//! Also here: LDAPS with a pinned CA (`ca_cert`) refuses a directory whose
//! certificate another CA issued.

use std::path::Path;
use std::process::{Command, Output};

use custodian::ErrorCode;

use crate::harness::SourceEnv;
use crate::samba::{dc, issue_cert, random_password, SambaDc, Scope};
use crate::util::{cli_location, raw_store};

/// The CLI on `db`, with the realm's krb5.conf and the credential cache
/// `ccache`, nothing else of the caller's Kerberos environment.
fn cli(dc: &SambaDc, db: &Path, ccache: &Path) -> Command {
    crate::util::test_key();
    let mut c = Command::new(env!("CARGO_BIN_EXE_custodian"));
    c.arg("--db")
        .arg(cli_location(db))
        .env_remove("CUSTODIAN_DB")
        .env("KRB5_CONFIG", dc.krb5_conf())
        .env("KRB5CCNAME", format!("FILE:{}", ccache.display()));
    c
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `source add ldap` with the Kerberos bind over `url`: the scope's
/// settings without a bind DN, the DC's host name for the service
/// principal (the URL names its address).
fn add_source(dc: &SambaDc, s: &Scope, db: &Path, ccache: &Path, name: &str, url: &str) {
    add_source_with(dc, s, db, ccache, name, url, &[]);
}

fn add_source_with(
    dc: &SambaDc,
    s: &Scope,
    db: &Path,
    ccache: &Path,
    name: &str,
    url: &str,
    more: &[(&str, serde_json::Value)],
) {
    let mut settings = s.settings(url);
    let map = settings.as_object_mut().unwrap();
    for (k, v) in more {
        map.insert((*k).into(), v.clone());
    }
    map.remove("bind_dn");
    map.insert("sasl_gssapi".into(), true.into());
    map.insert("kerberos_host".into(), SambaDc::FQDN.into());
    let mut cmd = cli(dc, db, ccache);
    cmd.args(["source", "add", "ldap", "--name", name]);
    for (k, v) in map {
        let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
        cmd.arg("--set").arg(format!("{k}={v}"));
    }
    ok(&cmd.output().unwrap());
}

fn identity_names(db: &Path) -> Vec<String> {
    let raw = raw_store(db);
    let mut st = raw.prepare("SELECT name FROM identities").unwrap();
    let mut v: Vec<String> = st
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn a_kerberos_ticket_signs_in_to_ad_without_a_secret_and_says_as_whom() {
    let Some(dc) = dc() else { return };
    let s = dc.scope("krb");
    // The account that signs in (a service account: employeeType), and one
    // more to read.
    let pw = random_password();
    s.user(
        "reader",
        &format!("employeeType: service\n{}", crate::samba::unicode_pwd(&pw)),
    );
    s.user("app", "servicePrincipalName: HTTP/krb-app.custodian.test");
    let dir = tempfile::tempdir().unwrap();
    let ccache = dir.path().join("ccache");
    dc.kinit(&s.name("reader"), &pw, &ccache);
    let db = dir.path().join("cache.db");

    // LDAPS, StartTLS, and plain LDAP, which the DC takes only with a
    // Kerberos security layer (sign or seal): ldap3 seals it, so it needs
    // no allow_plain (no password crosses the network).
    let plain = [("starttls", serde_json::json!(false))];
    for (name, url, more) in [
        ("krb-ldaps", &dc.ldaps_url, &[][..]),
        ("krb-starttls", &dc.url, &[][..]),
        ("krb-sealed", &dc.url, &plain[..]),
    ] {
        add_source_with(dc, &s, &db, &ccache, name, url, more);
        let show = ok(&cli(dc, &db, &ccache)
            .args(["source", "show", name])
            .output()
            .unwrap());
        assert!(show.contains("Kerberos (SASL GSSAPI bind)"), "{show}");
        assert!(
            show.contains("for the service ldap/dc1.custodian.test"),
            "{show}"
        );
        assert!(show.contains("not known yet"), "{show}");

        let out = cli(dc, &db, &ccache).args(["sync", name]).output().unwrap();
        ok(&out);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains(&pw), "{stderr}");

        let show = ok(&cli(dc, &db, &ccache)
            .args(["source", "show", name])
            .output()
            .unwrap());
        let me = s.name("reader");
        assert!(
            show.lines()
                .any(|l| l.starts_with("Signs in as identity #") && l.contains(&me)),
            "the ticket's principal is the identity Custodian signs in as:\n{show}"
        );
    }
    // The three sources read the same two accounts.
    let one = vec![s.name("app"), s.name("reader")];
    let mut want: Vec<String> = one.iter().cycle().take(6).cloned().collect();
    want.sort();
    assert_eq!(identity_names(&db), want);
}

#[test]
fn without_a_ticket_the_kerberos_sync_fails_with_source_auth_and_says_kinit() {
    let Some(dc) = dc() else { return };
    let s = dc.scope("krbno");
    s.user("app", "servicePrincipalName: HTTP/krbno-app.custodian.test");
    let dir = tempfile::tempdir().unwrap();
    // A credential cache that does not exist: no `kinit` was run.
    let ccache = dir.path().join("no-ticket");
    let db = dir.path().join("cache.db");
    add_source(dc, &s, &db, &ccache, "krb-none", &dc.ldaps_url);
    let out = cli(dc, &db, &ccache)
        .args(["sync", "krb-none"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("error[{}]", ErrorCode::SourceAuth.as_str())),
        "{stderr}"
    );
    assert!(stderr.contains("run `kinit"), "{stderr}");
}

#[test]
fn ldaps_with_a_pinned_ca_refuses_a_certificate_another_ca_issued() {
    let Some(dc) = dc() else { return };
    let s = dc.scope("pin");
    s.user("svc", "servicePrincipalName: HTTP/pin-svc.custodian.test");
    // Another CA, with a certificate for the same names.
    let other = tempfile::tempdir().unwrap();
    issue_cert(
        other.path(),
        SambaDc::FQDN,
        &format!("IP:{},DNS:{}", dc.ip, SambaDc::FQDN),
    )
    .unwrap();
    let mut settings = s.settings(&dc.ldaps_url);
    settings["ca_cert"] = other.path().join("ca.pem").display().to_string().into();
    let mut env = SourceEnv::new("ldap", "Pinned elsewhere", settings, dc.reader_pw());
    let e = env.sync().unwrap_err();
    assert_eq!(e.code, ErrorCode::Network, "{e}");
    assert!(
        e.message.contains("certificate") && e.message.contains("ca_cert"),
        "{e}"
    );
    assert!(!e.message.contains(dc.reader_pw()), "{e}");

    // The DC's own CA pinned: it syncs.
    let mut env = SourceEnv::new("ldap", "Pinned", s.settings(&dc.ldaps_url), dc.reader_pw());
    env.sync().unwrap();
}
