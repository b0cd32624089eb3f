//! The PostgreSQL test cluster: one per `tests/run.sh` run (started by
//! `tests/support/pg-cluster.sh`), one database per test, cloned from a
//! migrated template so each test starts from an empty, current schema.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use custodian::store::pg::PgTarget;
use custodian::store::Store;

/// The admin URL of the test cluster; fails with instructions without one.
pub fn admin_url() -> String {
    match std::env::var("CUSTODIAN_TEST_PG") {
        Ok(u) if !u.is_empty() => u,
        _ => panic!(
            "CUSTODIAN_TEST_PG is not set: start a throwaway cluster with \
             `tests/support/pg-cluster.sh start target/pg` and export \
             CUSTODIAN_TEST_PG=<the URL it prints> PGPASSFILE=target/pg/pgpass (tests/run.sh does this)"
        ),
    }
}

/// The URL of database `name` on the test cluster.
pub fn url_of(name: &str) -> String {
    let admin = admin_url();
    let (base, query) = admin.split_once('?').unwrap_or((&admin, ""));
    let base = base.rsplit_once('/').map(|(b, _)| b).unwrap_or(base);
    if query.is_empty() {
        format!("{base}/{name}")
    } else {
        format!("{base}/{name}?{query}")
    }
}

/// A raw client on database `name` as the cluster's superuser.
pub fn admin_client(name: &str) -> postgres::Client {
    let target = PgTarget::parse(&url_of(name)).unwrap();
    let pass = std::env::var("PGPASSFILE").ok();
    let mut cfg = postgres::Config::new();
    cfg.host(target.host.as_deref().unwrap_or("127.0.0.1"))
        .port(target.port.unwrap_or(5432))
        .user(target.user.as_deref().unwrap_or("custodian_test"))
        .dbname(name);
    if let Some(file) = pass {
        let text = std::fs::read_to_string(file).unwrap();
        if let Some(pw) = custodian::store::pg::pgpass_lookup(
            &text,
            target.host.as_deref().unwrap_or("127.0.0.1"),
            target.port.unwrap_or(5432),
            name,
            target.user.as_deref().unwrap_or(""),
        ) {
            cfg.password(pw);
        }
    }
    cfg.connect(postgres::NoTls).unwrap()
}

static N: AtomicU32 = AtomicU32::new(0);

/// A new empty database (no schema), for tests of the gate and migrations.
pub fn empty_database() -> String {
    let name = format!(
        "t_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    );
    admin_client("postgres")
        .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE template0"))
        .unwrap();
    name
}

fn template() -> &'static str {
    static T: OnceLock<String> = OnceLock::new();
    T.get_or_init(|| {
        let name = format!("tpl_{}", std::process::id());
        let mut admin = admin_client("postgres");
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
            .unwrap();
        admin
            .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE template0"))
            .unwrap();
        let store = Store::open_postgres(&PgTarget::parse(&url_of(&name)).unwrap()).unwrap();
        drop(store);
        name
    })
}

/// A new database cloned from the migrated template.
pub fn fresh_database() -> String {
    let tpl = template();
    let name = format!(
        "t_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    );
    let mut admin = admin_client("postgres");
    // A clone needs the template to itself; retry while another clone runs.
    for attempt in 0.. {
        match admin.batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {tpl}")) {
            Ok(()) => break,
            Err(e) if attempt < 50 && e.to_string().contains("being accessed") => {
                std::thread::sleep(std::time::Duration::from_millis(50))
            }
            Err(e) => panic!("CREATE DATABASE {name}: {e}"),
        }
    }
    name
}

/// A store on a new database of the test cluster.
pub fn fresh_store() -> Store {
    let name = fresh_database();
    Store::open_postgres(&PgTarget::parse(&url_of(&name)).unwrap()).unwrap()
}
