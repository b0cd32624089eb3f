//! The app's connection: who am I on a solo cache, and `test_connection`
//! against a real workspace on the test cluster (wrong password, right
//! password, a login that is not a member, TLS that does not verify).
//! The PostgreSQL parts are skipped without `CUSTODIAN_TEST_PG`.

use custodian::connection::{ConnectionMode, ConnectionSettings, RoleView, TlsMode};
use custodian::store::pg::PgTarget;
use custodian::store::{Engine, Store};
use custodian::workspace::{role_prefix, Role};
use custodian::ErrorCode;

use crate::pg::{admin_client, url_of};
use crate::util::now;

#[test]
fn who_am_i_on_a_solo_cache_is_the_claimed_person_with_every_role() {
    crate::util::test_key();
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("c.db")).unwrap();
    custodian::ops::load_demo(&mut store, custodian::demo::DemoSize::S, 7, now()).unwrap();

    let nobody = custodian::ops::who_am_i(&store).unwrap();
    assert_eq!(nobody.mode, ConnectionMode::Solo);
    assert_eq!(nobody.engine, Engine::Sqlite);
    assert!(nobody.person.is_none());
    assert!(nobody.claimed && nobody.reachable);
    assert_eq!(nobody.login, None);
    assert!(nobody.location.ends_with("c.db"), "{}", nobody.location);

    custodian::ops::set_acting_person(&mut store, "1", now()).unwrap();
    let me = custodian::ops::who_am_i(&store).unwrap();
    assert_eq!(me.person.as_ref().map(|p| p.id), Some(1));
    assert!(me.claimed);
    assert_eq!(
        me.roles,
        vec![
            RoleView::Admin,
            RoleView::CampaignOwner,
            RoleView::Reviewer,
            RoleView::Manager,
            RoleView::Auditor
        ]
    );
    let json = serde_json::to_value(&me).unwrap();
    assert_eq!(json["mode"], "solo");
    assert_eq!(json["roles"][1], "campaign_owner");
}

fn have_pg() -> bool {
    std::env::var("CUSTODIAN_TEST_PG").is_ok_and(|u| !u.is_empty())
}

/// One database with a workspace, a reviewer member and a stranger login;
/// database and roles dropped on drop.
struct Workspace {
    db: String,
    logins: Vec<String>,
}

impl Drop for Workspace {
    fn drop(&mut self) {
        let mut a = admin_client("postgres");
        let _ = a.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.db));
        for n in &self.logins {
            let _ = a.batch_execute(&format!("DROP ROLE IF EXISTS {n}"));
        }
        if let Ok(prefix) = role_prefix(&self.db) {
            for r in Role::ALL {
                let _ = a.batch_execute(&format!("DROP ROLE IF EXISTS {prefix}{}", r.as_str()));
            }
        }
    }
}

fn settings(db: &str, login: &str, host: &str, tls: TlsMode) -> ConnectionSettings {
    let t = PgTarget::parse(&url_of(db)).unwrap();
    ConnectionSettings {
        mode: ConnectionMode::Workspace,
        host: host.into(),
        port: u32::from(t.port.unwrap_or(5432)),
        database: db.into(),
        login: login.into(),
        tls,
        ca_file: None,
    }
}

/// A fresh workspace on the test cluster with a reviewer member and a
/// stranger login (both with `password`), the S demo organisation loaded.
struct Fixture {
    ws: Workspace,
    db: String,
    reviewer: String,
    stranger: String,
    reviewer_p: i64,
    password: String,
}

fn workspace_with_a_reviewer() -> Fixture {
    let db = crate::pg::fresh_database();
    let mut ws = Workspace {
        db: db.clone(),
        logins: vec![],
    };
    let password = format!("pw-{}-{}", std::process::id(), db.len() * 7919);
    let mut admin = admin_client("postgres");
    for tag in ["rev", "stranger"] {
        let name = format!("{db}_{tag}");
        admin
            .batch_execute(&format!("CREATE ROLE {name} LOGIN PASSWORD '{password}'"))
            .unwrap();
        ws.logins.push(name);
    }
    let (reviewer, stranger) = (ws.logins[0].clone(), ws.logins[1].clone());
    let mut store = Store::open_postgres(&PgTarget::parse(&url_of(&db)).unwrap()).unwrap();
    custodian::ops::load_demo(&mut store, custodian::demo::DemoSize::S, 7, now()).unwrap();
    let active: Vec<i64> = store
        .find_people("", 50)
        .unwrap()
        .into_iter()
        .filter(|p| p.status == custodian::model::PersonStatus::Active)
        .map(|p| p.id)
        .collect();
    let (admin_p, reviewer_p) = (active[0], active[1]);
    let dba = store.workspace_session_login().unwrap();
    store
        .workspace_init(&role_prefix(&db).unwrap(), &dba, admin_p)
        .unwrap();
    store
        .workspace_member_add(&reviewer, reviewer_p, &[Role::Reviewer])
        .unwrap();
    drop(store);
    Fixture {
        ws,
        db,
        reviewer,
        stranger,
        reviewer_p,
        password,
    }
}

#[test]
fn test_connection_tells_a_wrong_password_a_stranger_and_bad_tls_from_a_member() {
    if !have_pg() {
        eprintln!("skipped: CUSTODIAN_TEST_PG is not set");
        return;
    }
    let Fixture {
        ws: _ws,
        db,
        reviewer,
        stranger,
        reviewer_p,
        password,
    } = workspace_with_a_reviewer();

    // A wrong password: the server's refusal, with its code, and the
    // password nowhere in the message.
    let as_rev = settings(&db, &reviewer, "127.0.0.1", TlsMode::Disable);
    let e = custodian::ops::test_connection(&as_rev, Some("not-the-password")).unwrap_err();
    assert_eq!(e.code, ErrorCode::DatabaseAuth, "{e:?}");
    assert!(e.message.contains("refused the login"), "{}", e.message);
    assert!(!e.message.contains("not-the-password"), "{}", e.message);

    // The right one: the member, their person and their roles.
    let who = custodian::ops::test_connection(&as_rev, Some(&password)).unwrap();
    assert_eq!(who.mode, ConnectionMode::Workspace);
    assert_eq!(who.engine, Engine::Postgres);
    assert_eq!(who.login.as_deref(), Some(reviewer.as_str()));
    assert_eq!(who.person.as_ref().map(|p| p.id), Some(reviewer_p));
    assert_eq!(who.roles, vec![RoleView::Reviewer]);
    assert!(!who.claimed && who.reachable);
    assert!(!who.location.contains(&password), "{}", who.location);

    // A login the server accepts but that is no member.
    let e = custodian::ops::test_connection(
        &settings(&db, &stranger, "127.0.0.1", TlsMode::Disable),
        Some(&password),
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::Forbidden, "{e:?}");

    // TLS that does not verify: the cluster's certificate is for localhost,
    // signed by a CA the system does not know.
    let e = custodian::ops::test_connection(
        &settings(&db, &reviewer, "127.0.0.1", TlsMode::VerifyFull),
        Some(&password),
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::Network, "{e:?}");
    assert!(e.message.starts_with("TLS failure"), "{}", e.message);
    if let Ok(ca) = std::env::var("CUSTODIAN_TEST_PG_CA") {
        let ok = ConnectionSettings {
            ca_file: Some(ca),
            ..settings(&db, &reviewer, "localhost", TlsMode::VerifyFull)
        };
        let who = custodian::ops::test_connection(&ok, Some(&password)).unwrap();
        assert_eq!(who.roles, vec![RoleView::Reviewer]);
    }

    // Nothing listens: unreachable.
    let closed = ConnectionSettings {
        port: 1,
        ..as_rev.clone()
    };
    let e = custodian::ops::test_connection(&closed, Some(&password)).unwrap_err();
    assert_eq!(e.code, ErrorCode::Network, "{e:?}");
    assert!(e.message.contains("unreachable"), "{}", e.message);
}

/// The app's sign-in: a typed password is checked by connecting before it
/// is kept anywhere; kept for this process only, the next open of the store
/// as that login uses it; a refused one, a stranger and a local cache are
/// refused with their codes, and nothing of a refused sign-in is kept.
#[test]
fn a_sign_in_is_checked_first_then_kept_for_the_session() {
    use custodian::connection::{sign_in, sign_in_target_of};
    use custodian::store::Location;
    if !have_pg() {
        eprintln!("skipped: CUSTODIAN_TEST_PG is not set");
        return;
    }
    let f = workspace_with_a_reviewer();
    let at = |login: &str| {
        let mut t = PgTarget::parse(&url_of(&f.db)).unwrap();
        t.user = Some(login.to_string());
        Location::Postgres(t)
    };
    let reviewer = at(&f.reviewer);
    let target = sign_in_target_of(&reviewer).unwrap();
    assert_eq!(target.login, f.reviewer);
    assert!(
        target.address.ends_with(&format!("/{}", f.db)),
        "{}",
        target.address
    );
    assert!(!target.password_in_location);

    // No password anywhere yet: the store does not open as the reviewer, a
    // refused login (not "unreachable", which would open the offline
    // snapshot) that says where a password goes.
    let e = Store::open_location(&reviewer).unwrap_err();
    assert_eq!(e.code, ErrorCode::DatabaseAuth, "{e:?}");
    assert!(e.message.contains("no password was found"), "{}", e.message);

    // A wrong password is refused and not kept: the store still does not open.
    let e = sign_in(&reviewer, "not-the-password", false).unwrap_err();
    assert_eq!(e.code, ErrorCode::DatabaseAuth, "{e:?}");
    assert!(!e.message.contains("not-the-password"), "{}", e.message);
    assert_eq!(
        Store::open_location(&reviewer).unwrap_err().code,
        ErrorCode::DatabaseAuth
    );
    // Empty, too long, a local cache, a stranger: each refused with its code.
    assert_eq!(
        sign_in(&reviewer, "", false).unwrap_err().code,
        ErrorCode::InvalidInput
    );
    let long = "x".repeat(custodian::connection::MAX_PASSWORD_LEN + 1);
    assert_eq!(
        sign_in(&reviewer, &long, false).unwrap_err().code,
        ErrorCode::InvalidInput
    );
    let file = Location::File(std::env::temp_dir().join("nothing.db"));
    assert!(sign_in_target_of(&file).is_none());
    assert_eq!(
        sign_in(&file, "x", false).unwrap_err().code,
        ErrorCode::InvalidInput
    );
    let stranger = at(&f.stranger);
    assert_eq!(
        sign_in(&stranger, &f.password, false).unwrap_err().code,
        ErrorCode::Forbidden
    );

    // The right one: who signed in, and the store now opens as the reviewer.
    let who = sign_in(&reviewer, &f.password, false).unwrap();
    assert_eq!(who.person.as_ref().map(|p| p.id), Some(f.reviewer_p));
    let store = Store::open_location(&reviewer).unwrap();
    let again = custodian::ops::who_am_i(&store).unwrap();
    assert_eq!(again.login.as_deref(), Some(f.reviewer.as_str()));
    assert_eq!(again.roles, vec![RoleView::Reviewer]);
    assert!(!again.location.contains(&f.password), "{}", again.location);
}

/// The app's commands run inside an async runtime: a PostgreSQL store opens,
/// reads and closes there without the synchronous client starting or
/// dropping its own runtime inside it (which panics and, in the app,
/// poisoned the store's lock for every later command).
#[test]
fn a_postgres_store_opens_reads_and_closes_inside_an_async_runtime() {
    if !have_pg() {
        eprintln!("skipped: CUSTODIAN_TEST_PG is not set");
        return;
    }
    let db = crate::pg::fresh_database();
    let target = PgTarget::parse(&url_of(&db)).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let engine = rt.block_on(async move {
        let store = Store::open_postgres(&target).unwrap();
        let who = custodian::ops::who_am_i(&store).unwrap();
        drop(store);
        who.engine
    });
    assert_eq!(engine, Engine::Postgres);
    let mut a = admin_client("postgres");
    let _ = a.batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
}

/// The shell's Settings commands never trace a password: every command
/// taking one skips it (or every argument) in its `tracing::instrument`.
#[test]
fn the_shell_never_traces_a_password() {
    let src = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src-tauri/src/connection.rs"),
    )
    .unwrap();
    let mut checked = 0;
    for (i, chunk) in src.split("#[tauri::command").enumerate().skip(1) {
        let sig_end = chunk.find('{').unwrap();
        let head = &chunk[..sig_end];
        if head.contains("password") {
            checked += 1;
            let instrument = head
                .lines()
                .find(|l| l.contains("tracing::instrument"))
                .unwrap_or_else(|| panic!("command #{i} takes a password and has no instrument"));
            assert!(
                instrument.contains("skip_all") || instrument.contains("skip(password"),
                "command #{i} would trace its password: {instrument}"
            );
        }
    }
    assert_eq!(
        checked, 3,
        "save_connection_settings, test_connection and sign_in take a password"
    );
}
