//! Shared harness for source tests: a wiremock fixture server on its own
//! runtime (`sync_blocking` builds another), a fast retry policy, and a cache
//! with one configured source.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use custodian::model::SourceId;
use custodian::ops::sync_blocking;
use custodian::store::Store;
use custodian::sync::http::{Cancel, HttpPolicy};
use custodian::sync::secrets::{MemorySecrets, SecretStore};
use custodian::sync::SyncOutcome;
use custodian::views::IdentityDetail;
use custodian::Result;
use wiremock::{Mock, MockServer};

/// A wiremock server with the runtime that serves it.
pub struct Fixture {
    rt: tokio::runtime::Runtime,
    server: MockServer,
}

impl Fixture {
    pub fn start() -> Fixture {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let server = rt.block_on(MockServer::start());
        Fixture { rt, server }
    }
    pub fn uri(&self) -> String {
        self.server.uri()
    }
    pub fn mount(&self, m: impl Into<Mock>) {
        self.rt.block_on(m.into().mount(&self.server));
    }
    pub fn reset(&self) {
        self.rt.block_on(self.server.reset());
    }
    pub fn verify(&self) {
        self.rt.block_on(self.server.verify());
    }
    /// Every request the server received, in order, with its headers and body.
    pub fn received(&self) -> Vec<wiremock::Request> {
        self.rt
            .block_on(self.server.received_requests())
            .unwrap_or_default()
    }
    /// Every request the server received, in order, as `path?query`.
    pub fn requests(&self) -> Vec<String> {
        self.rt
            .block_on(self.server.received_requests())
            .unwrap_or_default()
            .iter()
            .map(|r| match r.url.query() {
                Some(q) => format!("{}?{q}", r.url.path()),
                None => r.url.path().to_string(),
            })
            .collect()
    }
}

/// Retries quickly, so throttling tests take milliseconds.
pub fn fast_policy() -> HttpPolicy {
    HttpPolicy {
        base_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        ..Default::default()
    }
}

/// An in-memory cache with one source and its secret.
pub struct SourceEnv {
    pub store: Store,
    pub secrets: MemorySecrets,
    pub source: SourceId,
}

impl SourceEnv {
    pub fn new(kind: &str, name: &str, settings: serde_json::Value, secret: &str) -> SourceEnv {
        let mut store = crate::util::test_store();
        let source = store.add_source(kind, name, &settings, Utc::now()).unwrap();
        let secrets = MemorySecrets::default();
        secrets.set(source, secret).unwrap();
        SourceEnv {
            store,
            secrets,
            source,
        }
    }

    pub fn sync(&mut self) -> Result<SyncOutcome> {
        sync_blocking(
            &mut self.store,
            self.source,
            &self.secrets,
            Arc::new(|_| {}),
            Cancel::new(),
            fast_policy(),
        )
    }

    pub fn detail(&self, ext: &str) -> IdentityDetail {
        let id = self.store.resolve_identity(ext).unwrap();
        self.store.identity_detail(id, Utc::now()).unwrap()
    }

    /// (status, manager's external id, left_at) of a person.
    pub fn person(&self, ext: &str) -> (String, Option<String>, Option<i64>) {
        self.store
            .raw_db()
            .query_row(
                "SELECT p.status, m.external_id, p.left_at FROM people p LEFT JOIN people m ON m.id = p.manager_id
                 WHERE p.external_id = ?1",
                [ext],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap()
    }
}

/// A vendor's documented example body, verbatim, from
/// `tests/support/fixtures/` (see its `SOURCES.md`).
pub fn doc_fixture(rel: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support/fixtures")
        .join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The newest run of the environment's source.
pub fn last_run(env: &SourceEnv) -> custodian::store::sync::SyncRunView {
    env.store.sync_runs(Some(env.source), 1).unwrap().remove(0)
}

/// A throwaway key pair made by the openssl command, for the keyless
/// sign-ins: (private key PEM, public key PEM). `kind`: `rsa` (PKCS#1, the
/// form GitHub hands out) or `ec` (P-256, PKCS#8).
pub fn key_pair(kind: &str) -> (String, String) {
    use std::process::Command;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.pem");
    let gen: &[&str] = match kind {
        "rsa" => &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ],
        _ => &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ],
    };
    let run = |args: &[&str], extra: &[&std::path::Path]| {
        let out = Command::new("openssl")
            .args(args)
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    run(gen, &[std::path::Path::new("-out"), &key]);
    if kind == "rsa" {
        run(
            &["rsa", "-traditional", "-in"],
            &[&key, std::path::Path::new("-out"), &key],
        );
    }
    let public = dir.path().join("public.pem");
    run(
        &["pkey", "-pubout", "-in"],
        &[&key, std::path::Path::new("-out"), &public],
    );
    (
        std::fs::read_to_string(&key).unwrap(),
        std::fs::read_to_string(&public).unwrap(),
    )
}
