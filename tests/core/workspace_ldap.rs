//! Directory logins to a team workspace: PostgreSQL authenticates a member
//! against LDAP (`pg_hba.conf` method `ldap`), tested against the suite's
//! real slapd. Custodian has no authentication code of its own here: the
//! login has no password in the database, PostgreSQL binds to the directory
//! with what the client sent, and the workspace maps the login to a person.
//!
//! The test adds its own `pg_hba.conf` lines to the shared test cluster,
//! each matching only this test's database and one of its logins, placed
//! before the generic lines, removed at the end (see `pg_hba.rs`: tagged,
//! locked, atomic, a drop guard). For `ldaptls=1` the server's libldap must trust the
//! slapd's throwaway CA: the test adds it to a bundle that an `ldaprc` in
//! the data directory names (each backend reads `./ldaprc` after
//! `/etc/ldap/ldap.conf`; nothing outside the cluster changes), removed the
//! same way. Skipped without `CUSTODIAN_TEST_PG` or without slapd.

use std::path::Path;
use std::time::{Duration, Instant};

use custodian::store::pg::{PgTarget, SslMode};
use custodian::store::Store;
use custodian::workspace::{role_prefix, Role};

use crate::peers::Slapd;
use crate::pg::{admin_client, url_of};
use crate::pg_hba::{hba_path, write_like, HbaLines, MARK};
use crate::util::now;

/// Where the simple-bind people live in the test directory.
const PEOPLE: &str = "ou=people,dc=example,dc=org";
/// A deeper branch only search+bind finds (simple bind has one fixed suffix).
const CONTRACTORS: &str = "ou=contractors,ou=people,dc=example,dc=org";

fn have_pg() -> bool {
    std::env::var("CUSTODIAN_TEST_PG").is_ok_and(|u| !u.is_empty())
}

fn random_password(tag: &str) -> String {
    let mut b = [0u8; 12];
    getrandom::getrandom(&mut b).unwrap();
    b.iter().fold(format!("{tag}-"), |mut s, x| {
        s.push_str(&format!("{x:02x}"));
        s
    })
}

/// Logins (and the database) of this test, dropped on drop. Copied in
/// spirit from `workspace.rs`: directory logins are created without a
/// password.
struct Logins {
    db: String,
    names: Vec<String>,
}

impl Logins {
    /// A login with no password at all: only `pg_hba.conf` can let it in.
    fn directory(&mut self, tag: &str) -> String {
        let name = format!("{}_{tag}", self.db);
        admin_client("postgres")
            .batch_execute(&format!("CREATE ROLE {name} LOGIN"))
            .unwrap();
        self.names.push(name.clone());
        name
    }

    /// A login with a SCRAM password (the generic `pg_hba.conf` lines).
    fn with_password(&mut self, tag: &str, password: &str) -> String {
        let name = format!("{}_{tag}", self.db);
        admin_client("postgres")
            .batch_execute(&format!("CREATE ROLE {name} LOGIN PASSWORD '{password}'"))
            .unwrap();
        self.names.push(name.clone());
        name
    }
}

impl Drop for Logins {
    fn drop(&mut self) {
        let mut a = admin_client("postgres");
        let _ = a.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.db));
        for n in &self.names {
            let _ = a.batch_execute(&format!("DROP ROLE IF EXISTS {n}"));
        }
        if let Ok(prefix) = role_prefix(&self.db) {
            for r in Role::ALL {
                let _ = a.batch_execute(&format!("DROP ROLE IF EXISTS {prefix}{}", r.as_str()));
            }
        }
    }
}

/// The CA bundle the server's LDAP client trusts for `ldaptls=1` while a
/// test runs: each backend's libldap reads `./ldaprc` (the data directory)
/// after `/etc/ldap/ldap.conf`, so nothing outside the cluster changes.
const CA_BUNDLE: &str = "custodian-test-ldap-ca.pem";

/// The `ldaprc` the tests write: it names the bundle and nothing else.
fn ldaprc_text(data: &Path) -> String {
    format!("TLS_CACERT {}\n", data.join(CA_BUNDLE).display())
}

/// Has the server's LDAP client trust the PEM CA `ca` while `lines` lives:
/// the CA goes into the bundle that an `ldaprc` in the data directory
/// `data` names (both created when missing, owned like `pg_hba.conf`; the
/// last test out removes them). New connections see it at once: each
/// backend reads its LDAP configuration afresh.
fn trust_ldap_ca(lines: &mut HbaLines, data: &Path, ca: &Path) {
    let pem = std::fs::read_to_string(ca).unwrap();
    let rc = data.join("ldaprc");
    let rc_text = ldaprc_text(data);
    let setup = {
        let (rc, rc_text) = (rc.clone(), rc_text.clone());
        move |like: &std::fs::Metadata| match std::fs::read_to_string(&rc) {
            Ok(t) if t == rc_text => Ok(()),
            Ok(_) => Err(std::io::Error::other(format!(
                "{} exists and is not the tests' own: left alone",
                rc.display()
            ))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => write_like(&rc, &rc_text, like),
            Err(e) => Err(e),
        }
    };
    let teardown = Box::new(move || {
        if std::fs::read_to_string(&rc).is_ok_and(|t| t == rc_text) {
            std::fs::remove_file(&rc)?;
        }
        Ok(())
    });
    if let Err(e) = lines.add_to_bundle(&data.join(CA_BUNDLE), &pem, setup, teardown) {
        panic!("cannot give the test cluster's LDAP client the directory's CA: {e}");
    }
}

/// A raw connection to `db` as `login` with `password`, over TLS (`tls`)
/// or in the clear.
fn connect(
    db: &str,
    login: &str,
    password: &str,
    tls: bool,
) -> Result<postgres::Client, postgres::Error> {
    let t = PgTarget::parse(&url_of(db)).unwrap();
    let mut cfg = postgres::Config::new();
    cfg.host(t.host.as_deref().unwrap_or("127.0.0.1"))
        .port(t.port.unwrap_or(5432))
        .user(login)
        .password(password)
        .dbname(db)
        .connect_timeout(Duration::from_secs(10));
    if !tls {
        cfg.ssl_mode(postgres::config::SslMode::Disable);
        return cfg.connect(postgres::NoTls);
    }
    let mut b = native_tls::TlsConnector::builder();
    match std::env::var("CUSTODIAN_TEST_PG_CA") {
        Ok(ca) if !ca.is_empty() => {
            // verify-ca: the cluster's certificate names localhost only.
            let pem = std::fs::read(&ca).unwrap();
            b.add_root_certificate(native_tls::Certificate::from_pem(&pem).unwrap())
                .disable_built_in_roots(true)
                .danger_accept_invalid_hostnames(true);
        }
        _ => {
            b.danger_accept_invalid_certs(true)
                .danger_accept_invalid_hostnames(true);
        }
    }
    cfg.ssl_mode(postgres::config::SslMode::Require);
    cfg.connect(postgres_native_tls::MakeTlsConnector::new(
        b.build().unwrap(),
    ))
}

/// The store's target for `login` with `password`, over TLS.
fn target(db: &str, login: &str, password: &str) -> PgTarget {
    let url = url_of(db).replacen("custodian_test@", &format!("{login}:{password}@"), 1);
    let mut t = PgTarget::parse(&url).unwrap();
    match std::env::var("CUSTODIAN_TEST_PG_CA") {
        Ok(ca) if !ca.is_empty() => {
            t.sslmode = Some(SslMode::VerifyCa);
            t.sslrootcert = Some(ca);
        }
        _ => t.sslmode = Some(SslMode::Require),
    }
    t
}

/// SQLSTATE and server message of a refused connection.
fn refusal(r: Result<postgres::Client, postgres::Error>, what: &str) -> (String, String) {
    match r {
        Ok(_) => panic!("{what}: the connection was accepted"),
        Err(e) => match e.as_db_error() {
            Some(d) => (d.code().code().to_string(), d.message().to_string()),
            None => panic!("{what}: refused without a server error: {e}"),
        },
    }
}

/// PostgreSQL reports a failed `ldap` login as 28000
/// (invalid_authorization_specification: `auth_failed` keeps 28P01 for the
/// password methods), which the store maps to `database_auth` like 28P01.
fn ldap_refused(r: Result<postgres::Client, postgres::Error>, login: &str, what: &str) {
    let (code, message) = refusal(r, what);
    assert_eq!(code, "28000", "{what}: {message}");
    assert_eq!(
        message,
        format!("LDAP authentication failed for user \"{login}\""),
        "{what}: refused by the LDAP line"
    );
}

fn password_refused(r: Result<postgres::Client, postgres::Error>, login: &str, what: &str) {
    let (code, message) = refusal(r, what);
    assert_eq!(code, "28P01", "{what}: {message}");
    assert_eq!(
        message,
        format!("password authentication failed for user \"{login}\""),
        "{what}: refused by a generic (SCRAM) line"
    );
}

/// The server's message for a refused connection, else the client's with
/// its causes.
fn why(e: &postgres::Error) -> String {
    if let Some(d) = e.as_db_error() {
        return d.message().to_string();
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

fn session_user(c: &mut postgres::Client) -> String {
    c.query_one("SELECT session_user::text", &[])
        .unwrap()
        .get(0)
}

#[test]
fn a_directory_login_authenticates_through_pg_hba_ldap_and_acts_as_its_person() {
    if !have_pg() {
        eprintln!("skipped: CUSTODIAN_TEST_PG is not set");
        return;
    }
    if !Path::new("/usr/sbin/slapd").exists() || !Path::new("/usr/bin/ldapadd").exists() {
        eprintln!("skipped: OpenLDAP is not installed (apt-get install slapd ldap-utils)");
        return;
    }
    let db = crate::pg::fresh_database();
    let mut logins = Logins {
        db: db.clone(),
        names: Vec::new(),
    };
    let slapd = Slapd::start();
    let port: u16 = slapd
        .url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap();

    // The directory: two people under ou=people, one under a deeper branch.
    let simple = logins.directory("ldap");
    let searched = logins.directory("sb");
    let other_uid = format!("{db}_other");
    let (pw_simple, pw_other, pw_searched) = (
        random_password("a"),
        random_password("b"),
        random_password("c"),
    );
    let person = |uid: &str, branch: &str, pw: &str| {
        format!(
            "dn: uid={uid},{branch}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: Test\nuserPassword: {pw}\n\n"
        )
    };
    slapd.add(&format!(
        "dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n\
         dn: {CONTRACTORS}\nobjectClass: organizationalUnit\nou: contractors\n\n{}{}{}",
        person(&simple, PEOPLE, &pw_simple),
        person(&other_uid, PEOPLE, &pw_other),
        person(&searched, CONTRACTORS, &pw_searched),
    ));
    // A SCRAM login (the first workspace admin), on the generic lines.
    let admin_pw = random_password("s");
    let admin = logins.with_password("admin", &admin_pw);

    let hba = hba_path();
    let original = std::fs::read_to_string(&hba).unwrap();
    let mut lines = HbaLines::insert(
        &hba,
        &db,
        &[
            // Simple bind over StartTLS: the DN is prefix + login + suffix.
            format!(
                "hostssl {db} {simple} 127.0.0.1/32 ldap ldapserver=127.0.0.1 ldapport={port} ldaptls=1 \
                 ldapprefix=\"uid=\" ldapsuffix=\",{PEOPLE}\""
            ),
            // Search+bind: PostgreSQL finds the DN as the read-only account
            // (plain LDAP, on loopback).
            format!(
                "hostssl {db} {searched} 127.0.0.1/32 ldap ldapserver=127.0.0.1 ldapport={port} \
                 ldapbasedn=\"{PEOPLE}\" ldapbinddn=\"{}\" ldapbindpasswd=\"{}\" ldapsearchattribute=uid",
                Slapd::READER_DN,
                Slapd::READER_PW
            ),
        ],
    );
    let errors: Vec<(i32, String)> = admin_client("postgres")
        .query(
            "SELECT line_number, error FROM pg_hba_file_rules WHERE error IS NOT NULL",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert!(errors.is_empty(), "pg_hba.conf does not parse: {errors:?}");

    // Once the reload has taken effect (until then the generic SCRAM line
    // refuses a login with no password), the LDAP line answers; while the
    // server does not trust the directory's certificate, StartTLS fails and
    // so does the login.
    let started = Instant::now();
    loop {
        let e = match connect(&db, &simple, &pw_simple, true) {
            Ok(_) => panic!("{simple} got in over an LDAP leg whose certificate nobody trusts"),
            Err(e) => e,
        };
        if why(&e) == format!("LDAP authentication failed for user \"{simple}\"") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the LDAP line never applied: {}",
            why(&e)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let data: String = admin_client("postgres")
        .query_one("SHOW data_directory", &[])
        .unwrap()
        .get(0);
    trust_ldap_ca(&mut lines, Path::new(&data), &slapd.ca);

    // (a) The directory password logs in, StartTLS verified.
    let started = Instant::now();
    let mut c = loop {
        match connect(&db, &simple, &pw_simple, true) {
            Ok(c) => break c,
            Err(e) => {
                assert!(
                    started.elapsed() < Duration::from_secs(15),
                    "the LDAP line never let {simple} in: {}",
                    why(&e)
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    };
    assert_eq!(session_user(&mut c), simple);
    let ssl: bool = c
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(ssl, "the password reached PostgreSQL over TLS");
    drop(c);

    // (b) A wrong password, and an empty one (which an LDAP server would
    // take as an unauthenticated, successful bind), are refused.
    ldap_refused(
        connect(&db, &simple, "not-the-password", true),
        &simple,
        "a wrong password",
    );
    // PostgreSQL refuses it before asking the directory.
    let (code, message) = refusal(connect(&db, &simple, "", true), "an empty password");
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("28P01", "empty password returned by client")
    );
    // (c) Another directory user's password does not open this login.
    ldap_refused(
        connect(&db, &simple, &pw_other, true),
        &simple,
        "another directory user's password",
    );
    // A person outside the simple-bind suffix is not found by it either...
    ldap_refused(
        connect(&db, &simple, &pw_searched, true),
        &simple,
        "a deeper branch's password",
    );
    // ...while search+bind finds them, and only with their own password.
    let mut c = connect(&db, &searched, &pw_searched, true).unwrap();
    assert_eq!(session_user(&mut c), searched);
    drop(c);
    ldap_refused(
        connect(&db, &searched, &pw_simple, true),
        &searched,
        "search+bind with another user's password",
    );
    // The lines are hostssl: in the clear the login falls through to the
    // generic SCRAM line, which has no password to check against.
    password_refused(
        connect(&db, &simple, &pw_simple, false),
        &simple,
        "the directory password without TLS",
    );
    // Other logins keep matching the generic lines.
    let mut c = connect(&db, &admin, &admin_pw, false).unwrap();
    assert_eq!(session_user(&mut c), admin);
    drop(c);

    // (e) No password is stored for a directory login (a SCRAM login shows
    // what a stored one looks like).
    let mut su = admin_client("postgres");
    for (login, stored) in [(&simple, false), (&searched, false), (&admin, true)] {
        let pw: Option<String> = su
            .query_one(
                "SELECT rolpassword FROM pg_authid WHERE rolname = $1",
                &[login],
            )
            .unwrap()
            .get(0);
        assert_eq!(pw.is_some(), stored, "{login}");
        if let Some(p) = pw {
            assert!(
                p.starts_with("SCRAM-SHA-256$"),
                "{login}: a verifier, not a password"
            );
        }
    }

    // (d) Mapped as a workspace member, the directory login acts as its
    // person through the store.
    let t = PgTarget::parse(&url_of(&db)).unwrap();
    let mut store = Store::open_postgres(&t).unwrap();
    custodian::ops::load_demo(&mut store, custodian::demo::DemoSize::S, 7, now()).unwrap();
    let people: Vec<(i64, String)> = store
        .raw_db()
        .query_map(
            "SELECT id, display_name FROM people ORDER BY id LIMIT 2",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let (admin_p, (member_p, member_name)) = (people[0].0, people[1].clone());
    let prefix = role_prefix(&db).unwrap();
    assert!(store.workspace_init(&prefix, &admin, admin_p).unwrap());
    let as_admin = Store::open_postgres(&target(&db, &admin, &admin_pw)).unwrap();
    as_admin
        .workspace_member_add(&simple, member_p, &[Role::Reviewer])
        .unwrap();

    let as_member = Store::open_postgres(&target(&db, &simple, &pw_simple)).unwrap();
    assert_eq!(as_member.workspace_session_login().unwrap(), simple);
    assert_eq!(custodian::ops::actor(&as_member, None).unwrap(), member_p);
    // Outside a transaction the entry is sealed into the chain as the
    // statement commits.
    custodian::store::workspace::append_in_workspace(
        as_member.raw_db(),
        "test.directory_login",
        &simple,
        "{}",
    )
    .unwrap();
    let actor: String = store
        .raw_db()
        .query_row(
            "SELECT actor FROM audit_log WHERE subject = ?1 AND action = 'test.directory_login'",
            [simple.as_str()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        actor, member_name,
        "the audit entry names the login's person"
    );
    assert!(store.verify_audit().unwrap().ok);
    // Through the store, a wrong directory password is an authentication
    // error that does not repeat the password.
    let e = Store::open_postgres(&target(&db, &simple, "wrong-directory-pw")).unwrap_err();
    assert_eq!(e.code, custodian::ErrorCode::DatabaseAuth, "{}", e.message);
    assert!(
        e.message.contains("LDAP authentication failed"),
        "{}",
        e.message
    );
    assert!(!e.message.contains("wrong-directory-pw"), "{}", e.message);
    drop((as_member, as_admin, store));

    // Removing the lines puts pg_hba.conf back and shuts the directory out.
    lines.remove().unwrap();
    let now_text = std::fs::read_to_string(&hba).unwrap();
    assert!(
        !now_text.contains(lines.marker()),
        "this test's lines are gone"
    );
    for l in original.lines().filter(|l| !l.contains(MARK)) {
        assert!(now_text.lines().any(|n| n == l), "kept: {l}");
    }
    let started = Instant::now();
    loop {
        match connect(&db, &simple, &pw_simple, true) {
            Ok(_) => assert!(
                started.elapsed() < Duration::from_secs(15),
                "the LDAP line still lets {simple} in after the reload"
            ),
            Err(e) => {
                let msg = e.as_db_error().map(|d| d.message().to_string());
                if msg.as_deref()
                    == Some(&format!(
                        "password authentication failed for user \"{simple}\""
                    ))
                {
                    break;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(15),
                    "after removal: {}",
                    why(&e)
                );
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(slapd);
}

/// Kerberos is documented, not offered: Custodian's PostgreSQL client
/// (rust-postgres) does not speak GSSAPI, so a `gss` line refuses it. The
/// refusal must say so rather than look like a wrong password.
#[test]
fn a_kerberos_gss_line_refuses_custodians_client_and_says_why() {
    if !have_pg() {
        eprintln!("skipped: CUSTODIAN_TEST_PG is not set");
        return;
    }
    let db = crate::pg::fresh_database();
    let mut logins = Logins {
        db: db.clone(),
        names: Vec::new(),
    };
    let login = logins.directory("krb");
    let hba = hba_path();
    let _lines = HbaLines::insert(
        &hba,
        &db,
        &[format!(
            "host {db} {login} 127.0.0.1/32 gss include_realm=0 krb_realm=EXAMPLE.ORG"
        )],
    );
    // Once the reload has taken effect the server asks for GSSAPI (before,
    // the generic SCRAM line refuses the password).
    let started = Instant::now();
    loop {
        let e = match connect(&db, &login, "unused", false) {
            Ok(_) => panic!("{login} has no password and no ticket, yet got in"),
            Err(e) => e,
        };
        if why(&e).contains("unsupported authentication method") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the gss line never applied: {}",
            why(&e)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let url = url_of(&db).replacen("custodian_test@", &format!("{login}@"), 1);
    let e = Store::open_postgres(&PgTarget::parse(&url).unwrap()).unwrap_err();
    assert!(
        e.message.contains("unsupported authentication method") && e.message.contains(&login),
        "{}",
        e.message
    );
}
