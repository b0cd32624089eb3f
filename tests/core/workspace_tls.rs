//! TLS client-certificate logins to a team workspace: PostgreSQL checks the
//! certificate (`pg_hba.conf` method `cert`: signed by the server's
//! `ssl_ca_file`, CN = the login), Custodian only presents it (`sslcert` +
//! `sslkey`). The login has no password at all.
//!
//! The test issues its certificates from its own throwaway CA (openssl, in
//! a temporary directory), gives the shared test cluster that CA as its
//! client CA for the test's duration (a tagged block in a bundle in the
//! data directory that `ssl_ca_file` names, set with ALTER SYSTEM and
//! reset by the last test out; see `pg_hba.rs`), and adds one `hostssl …
//! cert` line for its login only. A server that asks for client
//! certificates changes nothing for clients that send none, so other tests
//! keep working meanwhile. Skipped without `CUSTODIAN_TEST_PG` or openssl.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use custodian::store::pg::PgTarget;
use custodian::store::Store;
use custodian::workspace::{role_prefix, Role};
use custodian::ErrorCode;

use crate::pg::{admin_client, url_of};
use crate::pg_hba::{hba_path, reload, superuser, HbaLines};
use crate::workspace::{have_pg, Logins};

/// The client CA bundle in the data directory while a test needs it.
const CLIENT_CA: &str = "custodian-test-client-ca.pem";

fn openssl(args: &[&str]) {
    let out = Command::new("openssl").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A throwaway CA in `dir` (its key never leaves the temporary directory).
struct Ca {
    dir: PathBuf,
    name: String,
}

impl Ca {
    fn new(dir: &Path, name: &str) -> Ca {
        let (crt, key) = (
            dir.join(format!("{name}.crt")),
            dir.join(format!("{name}.key")),
        );
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            &format!("/CN=Custodian test {name}"),
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            crt.to_str().unwrap(),
        ]);
        Ca {
            dir: dir.to_path_buf(),
            name: name.into(),
        }
    }

    fn crt(&self) -> PathBuf {
        self.dir.join(format!("{}.crt", self.name))
    }

    /// A client certificate for `cn` and its PKCS#8 key: (crt, key).
    fn issue(&self, cn: &str) -> (PathBuf, PathBuf) {
        let base = self.dir.join(format!("{}-{cn}", self.name));
        let (crt, key, csr) = (
            base.with_extension("crt"),
            base.with_extension("key"),
            base.with_extension("csr"),
        );
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            &format!("/CN={cn}"),
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            csr.to_str().unwrap(),
        ]);
        openssl(&[
            "x509",
            "-req",
            "-in",
            csr.to_str().unwrap(),
            "-CA",
            self.crt().to_str().unwrap(),
            "-CAkey",
            self.dir
                .join(format!("{}.key", self.name))
                .to_str()
                .unwrap(),
            "-CAcreateserial",
            "-days",
            "1",
            "-out",
            crt.to_str().unwrap(),
        ]);
        (crt, key)
    }
}

/// A URL for `login` with no password: TLS verified against the cluster's
/// CA (`verify-ca`: its certificate names localhost, not 127.0.0.1), and
/// the client certificate when given.
fn url(db: &str, login: &str, cert: Option<&(PathBuf, PathBuf)>) -> String {
    let mut u = url_of(db)
        .replacen("custodian_test@", &format!("{login}@"), 1)
        .replace("sslmode=disable", "sslmode=verify-ca");
    if let Ok(ca) = std::env::var("CUSTODIAN_TEST_PG_CA") {
        u.push_str(&format!("&sslrootcert={ca}"));
    } else {
        u = u.replace("sslmode=verify-ca", "sslmode=require");
    }
    if let Some((crt, key)) = cert {
        u.push_str(&format!(
            "&sslcert={}&sslkey={}",
            crt.display(),
            key.display()
        ));
    }
    u
}

fn open(url: &str) -> custodian::Result<Store> {
    Store::open_postgres(&PgTarget::parse(url).unwrap())
}

/// The error of a connection that must be refused.
fn refused(url: &str, what: &str) -> custodian::Error {
    match open(url) {
        Ok(_) => panic!("{what}: let in"),
        Err(e) => e,
    }
}

#[test]
fn a_login_with_a_client_certificate_gets_in_without_a_password_and_acts_as_its_member() {
    if !have_pg() {
        eprintln!("skipped: CUSTODIAN_TEST_PG is not set");
        return;
    }
    if Command::new("openssl").arg("version").output().is_err() {
        eprintln!("skipped: openssl is not installed");
        return;
    }
    let data: String = admin_client("postgres")
        .query_one("SHOW data_directory", &[])
        .unwrap()
        .get(0);
    let bundle = Path::new(&data).join(CLIENT_CA);
    let current: String = admin_client("postgres")
        .query_one("SHOW ssl_ca_file", &[])
        .unwrap()
        .get(0);
    if !current.is_empty() && Path::new(&current) != bundle {
        eprintln!(
            "skipped: the test cluster already has a client CA ({current}), not the tests' own"
        );
        return;
    }

    let db = crate::pg::fresh_database();
    let mut logins = Logins::new(&db);
    admin_client(&db)
        .batch_execute(
            "INSERT INTO custodian.sources (kind, name) VALUES ('csv', 'hr');
             INSERT INTO custodian.people (source_id, external_id, display_name, email, status)
               SELECT id, x, x, x || '@example.com', 'active' FROM custodian.sources, (VALUES ('maya'), ('ravi')) v(x)",
        )
        .unwrap();
    let dba = open(&url_of(&db)).unwrap();
    let (maya, ravi) = (
        dba.resolve_person("maya").unwrap(),
        dba.resolve_person("ravi").unwrap(),
    );
    let admin = logins.create("admin");
    dba.workspace_init(&role_prefix(&db).unwrap(), &admin, maya)
        .unwrap();
    // The certificate login: no password in the database at all.
    let member = logins.create("cert");
    let other = logins.create("other");
    admin_client("postgres")
        .batch_execute(&format!("ALTER ROLE {member} PASSWORD NULL"))
        .unwrap();
    let no_password: bool = admin_client("postgres")
        .query_one(
            "SELECT rolpassword IS NULL FROM pg_authid WHERE rolname = $1",
            &[&member],
        )
        .unwrap()
        .get(0);
    assert!(no_password);
    open(&logins.url(&admin))
        .unwrap()
        .workspace_member_add(&member, ravi, &[Role::Reviewer])
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "client-ca");
    let mine = ca.issue(&member);
    let others = ca.issue(&other);
    let stranger_ca = Ca::new(dir.path(), "stranger-ca");
    let forged = stranger_ca.issue(&member);

    // The server trusts the test's CA for client certificates, and the
    // cert line matches this login only.
    let hba = hba_path();
    let mut lines = HbaLines::insert(
        &hba,
        &format!("tls:{db}"),
        &[format!("hostssl {db} {member} 127.0.0.1/32 cert")],
    );
    let pem = std::fs::read_to_string(ca.crt()).unwrap();
    let set = format!("ALTER SYSTEM SET ssl_ca_file = '{}'", bundle.display());
    lines
        .add_to_bundle(
            &bundle,
            &pem,
            |_| Ok(()),
            Box::new(|| superuser("ALTER SYSTEM RESET ssl_ca_file").and_then(|()| reload())),
        )
        .unwrap();
    superuser(&set).unwrap();
    reload().unwrap();

    // Once the reload has taken effect, the certificate lets the login in.
    let started = Instant::now();
    let store = loop {
        match open(&url(&db, &member, Some(&mine))) {
            Ok(s) => break s,
            Err(e) => assert!(
                started.elapsed() < Duration::from_secs(20),
                "the certificate never let {member} in: {e:?}"
            ),
        }
        std::thread::sleep(Duration::from_millis(100));
        let _ = reload();
    };
    let who = custodian::ops::who_am_i(&store).unwrap();
    assert_eq!(who.login.as_deref(), Some(member.as_str()));
    assert_eq!(who.person.as_ref().map(|p| p.id), Some(ravi));
    assert_eq!(
        serde_json::to_value(&who.roles).unwrap(),
        serde_json::json!(["reviewer"])
    );
    assert_eq!(custodian::ops::actor(&store, None).unwrap(), ravi);
    drop(store);

    // Without the certificate, with another login's, or with one the
    // server's CA did not sign: refused.
    let e = refused(&url(&db, &member, None), "no certificate");
    assert_eq!(e.code, ErrorCode::DatabaseAuth, "{e:?}");
    assert!(e.message.contains("certificate"), "{e:?}");
    let e = refused(&url(&db, &member, Some(&others)), "another CN");
    assert_eq!(e.code, ErrorCode::DatabaseAuth, "{e:?}");
    assert!(
        e.message.contains(&format!(
            "certificate authentication failed for user \"{member}\""
        )),
        "{e:?}"
    );
    assert!(
        open(&url(&db, &member, Some(&forged))).is_err(),
        "a certificate of another CA"
    );
    // The other login's certificate is its own, but no cert line names it.
    assert!(open(&url(&db, &other, Some(&others))).is_err());

    // A traditional (PKCS#1) key is refused before connecting, with the
    // command that converts it.
    let rsa = dir.path().join("pkcs1.key");
    openssl(&[
        "rsa",
        "-in",
        mine.1.to_str().unwrap(),
        "-traditional",
        "-out",
        rsa.to_str().unwrap(),
    ]);
    let e = refused(
        &url(&db, &member, Some(&(mine.0.clone(), rsa))),
        "a PKCS#1 key",
    );
    assert_eq!(e.code, ErrorCode::InvalidInput, "{e:?}");
    assert!(e.message.contains("openssl pkcs8 -topk8"), "{e:?}");

    drop(lines);
    // The last test out leaves the cluster without a client CA again.
    if !bundle.exists() {
        let started = Instant::now();
        loop {
            let now_set: String = admin_client("postgres")
                .query_one("SHOW ssl_ca_file", &[])
                .unwrap()
                .get(0);
            if now_set.is_empty() {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "ssl_ca_file stays {now_set}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
