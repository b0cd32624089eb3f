//! Where a benchmark writes: a throwaway cache file, or a throwaway
//! database on a PostgreSQL server (`--pg URL`, `CUSTODIAN_BENCH_PG` or
//! `CUSTODIAN_TEST_PG`: an admin URL; the password from PGPASSFILE, the
//! keyring or the URL), dropped afterwards.

use std::path::PathBuf;

use custodian::store::{pg::PgTarget, Location, Store};

pub use custodian::store::Engine;

pub struct Target {
    pub engine: Engine,
    location: Location,
    dir: Option<PathBuf>,
    pg: Option<(PgTarget, String)>,
}

fn with_db(admin: &PgTarget, name: &str) -> PgTarget {
    let mut t = admin.clone();
    t.dbname = Some(name.to_string());
    t
}

impl Target {
    pub fn new(engine: Engine, admin: Option<&str>, tag: &str) -> Result<Target, String> {
        match engine {
            Engine::Sqlite => {
                let dir = std::env::temp_dir()
                    .join(format!("custodian-bench-{}-{tag}", std::process::id()));
                std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
                let path = dir.join("bench.db");
                let _ = std::fs::remove_file(&path);
                Ok(Target {
                    engine,
                    location: Location::File(path),
                    dir: Some(dir),
                    pg: None,
                })
            }
            Engine::Postgres => {
                let admin = admin.ok_or(
                    "the postgres engine needs a server: --pg postgres://user@host/postgres (or CUSTODIAN_BENCH_PG)",
                )?;
                let admin = PgTarget::parse(admin).map_err(|e| e.message)?;
                let name = format!("custodian_bench_{}_{tag}", std::process::id());
                let db = custodian::store::pg::connect(&admin).map_err(|e| e.message)?;
                db.execute_batch(&format!("DROP DATABASE IF EXISTS {name}"))
                    .map_err(|e| e.message)?;
                db.execute_batch(&format!("CREATE DATABASE {name} TEMPLATE template0"))
                    .map_err(|e| e.message)?;
                Ok(Target {
                    engine,
                    location: Location::Postgres(with_db(&admin, &name)),
                    dir: None,
                    pg: Some((admin, name)),
                })
            }
        }
    }

    pub fn open(&self) -> custodian::Result<Store> {
        Store::open_location(&self.location)
    }

    /// The store's size on disk.
    pub fn size_mib(&self, store: &Store) -> f64 {
        match &self.location {
            Location::File(p) => {
                std::fs::metadata(p).map_or(f64::NAN, |m| m.len() as f64 / 1_048_576.0)
            }
            Location::Postgres(_) => store
                .raw_db()
                .query_row("SELECT pg_database_size(current_database())", [], |r| {
                    r.get::<i64>(0)
                })
                .map_or(f64::NAN, |b| b as f64 / 1_048_576.0),
        }
    }

    /// The throwaway database's name (PostgreSQL only).
    pub fn pg_database(&self) -> Option<String> {
        self.pg.as_ref().map(|(_, n)| n.clone())
    }

    /// Drops the throwaway database now, closing its connections.
    pub fn drop_database(&self) {
        if let Some((admin, name)) = &self.pg {
            if let Ok(db) = custodian::store::pg::connect(admin) {
                let _ = db.execute_batch(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        }
    }

    /// A connection to the server's admin database (PostgreSQL only).
    pub fn admin_store(&self) -> Option<custodian::store::db::Db> {
        self.pg
            .as_ref()
            .and_then(|(admin, _)| custodian::store::pg::connect(admin).ok())
    }

    pub fn cleanup(self) {
        if let Some(dir) = self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some((admin, name)) = self.pg {
            if let Ok(db) = custodian::store::pg::connect(&admin) {
                let _ = db.execute_batch(&format!("DROP DATABASE IF EXISTS {name}"));
            }
        }
    }
}
