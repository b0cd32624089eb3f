//! Shared helpers for the core tests.
#![allow(dead_code)]

use chrono::{DateTime, Duration, TimeZone, Utc};
use custodian::model::*;

/// Test caches are encrypted with a passphrase from the environment when no
/// key is configured (`tests/run.sh` sets one; this covers plain `cargo test`).
pub fn test_key() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var_os(custodian::store::key::KEY_ENV).is_none() {
            std::env::set_var(custodian::store::key::KEY_ENV, "custodian-test-suite");
        }
        // The audit signing key: a team workspace (PostgreSQL) needs one of
        // its own; a raw key also spares every test process the KDF.
        if std::env::var_os(custodian::store::key::AUDIT_KEY_ENV).is_none() {
            std::env::set_var(custodian::store::key::AUDIT_KEY_ENV, "ab".repeat(32));
        }
    });
}

/// A fixed "now" so generated data and ages are reproducible.
pub fn now() -> DateTime<Utc> {
    test_key();
    Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0)
        .single()
        .unwrap()
}

pub fn days_ago(n: i64) -> DateTime<Utc> {
    now() - Duration::days(n)
}

/// Builds small organisations by hand, with sensible defaults.
pub struct OrgBuilder {
    pub org: OrgSnapshot,
}

impl Default for OrgBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl OrgBuilder {
    pub fn new() -> Self {
        let mut org = OrgSnapshot::default();
        org.sources.push(Source {
            id: SourceId(1),
            kind: "test".into(),
            name: "Test source".into(),
        });
        OrgBuilder { org }
    }

    pub fn person(&mut self, name: &str, status: PersonStatus) -> PersonId {
        let id = PersonId(self.org.people.len() as i64 + 1);
        self.org.people.push(Person {
            id,
            source: SourceId(1),
            external_id: format!("p{}", id.0),
            display_name: name.into(),
            email: format!("{}@example.test", name.to_lowercase().replace(' ', ".")),
            department: "Engineering".into(),
            title: "Engineer".into(),
            manager: None,
            status,
            left_at: (status == PersonStatus::Departed).then(|| days_ago(30)),
        });
        id
    }

    pub fn identity(
        &mut self,
        name: &str,
        kind: IdentityKind,
        owner: Option<PersonId>,
    ) -> IdentityId {
        let id = IdentityId(self.org.identities.len() as i64 + 1);
        self.org.identities.push(Identity {
            id,
            source: SourceId(1),
            external_id: format!("ext-{name}"),
            name: name.into(),
            kind,
            agent_class: (kind == IdentityKind::AiAgent).then_some(AgentClass::DigitalWorker),
            status: IdentityStatus::Active,
            purpose: format!("Purpose of {name}"),
            builder: owner,
            owner,
            team: "Platform".into(),
            environment: "production".into(),
            registered: true,
            intended_blast_radius: String::new(),
            created_at: days_ago(800),
            last_used_at: Some(days_ago(1)),
            last_reviewed_at: None,
        });
        id
    }

    pub fn identity_mut(&mut self, id: IdentityId) -> &mut Identity {
        &mut self.org.identities[(id.0 - 1) as usize]
    }

    pub fn credential(
        &mut self,
        identity: IdentityId,
        kind: CredentialKind,
        created_days_ago: i64,
        expires_in_days: Option<i64>,
    ) -> CredentialId {
        let id = CredentialId(self.org.credentials.len() as i64 + 1);
        self.org.credentials.push(Credential {
            id,
            identity,
            external_id: format!("c{}", id.0),
            kind,
            display_name: format!("cred-{}", id.0),
            created_at: days_ago(created_days_ago),
            expires_at: expires_in_days.map(|d| now() + Duration::days(d)),
            last_rotated_at: None,
            last_used_at: Some(days_ago(1)),
        });
        id
    }

    pub fn resource(&mut self, name: &str, sensitivity: Sensitivity, env: &str) -> ResourceId {
        let id = ResourceId(self.org.resources.len() as i64 + 1);
        self.org.resources.push(Resource {
            id,
            source: SourceId(1),
            external_id: format!("r-{name}"),
            name: name.into(),
            kind: "database".into(),
            sensitivity,
            environment: env.into(),
            owner: None,
        });
        id
    }

    pub fn grant(&mut self, identity: IdentityId, resource: ResourceId, privilege: Privilege) {
        self.org.grants.push(Grant {
            identity,
            resource,
            permission: privilege.as_str().into(),
            privilege,
            high_consequence: privilege != Privilege::Read,
            last_used_at: Some(days_ago(1)),
        });
    }

    pub fn delegate(&mut self, from: IdentityId, to: IdentityId, kind: DelegationKind) {
        self.org.delegations.push(Delegation::new(from, to, kind));
    }
}

/// A SHA-free fingerprint of a file: its bytes.
pub fn file_bytes(path: &std::path::Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

/// Which engine the store tests run on: `CUSTODIAN_TEST_ENGINE=postgres`
/// (with `CUSTODIAN_TEST_PG`, the admin URL of a throwaway cluster that
/// `tests/support/pg-cluster.sh` starts) or SQLite, the default.
pub fn on_postgres() -> bool {
    std::env::var("CUSTODIAN_TEST_ENGINE").as_deref() == Ok("postgres")
}

/// A fresh, migrated store on the engine under test: a private in-memory
/// SQLite cache, or a new database of the test cluster.
pub fn test_store() -> custodian::store::Store {
    test_key();
    if on_postgres() {
        crate::pg::fresh_store()
    } else {
        custodian::store::Store::open_in_memory().unwrap()
    }
}

/// A second handle on the same store's data: on SQLite a copy of the
/// database in `dir` (`VACUUM INTO`), on PostgreSQL a new connection to the
/// same database.
pub fn reopen(store: &custodian::store::Store, dir: &std::path::Path) -> custodian::store::Store {
    use custodian::store::{Location, Store};
    if on_postgres() {
        Store::open_location(&Location::parse(store.location()).unwrap()).unwrap()
    } else {
        let path = dir.join(format!("copy-{}.db", std::process::id()));
        let _ = std::fs::remove_file(&path);
        store
            .raw_db()
            .execute("VACUUM INTO ?1", [path.to_str().unwrap()])
            .unwrap();
        Store::open(&path).unwrap()
    }
}

/// What the CLI tests pass as `--db`: the cache file itself on SQLite; on
/// PostgreSQL, a database of the test cluster that stands for that file
/// (the same file always gets the same database).
pub fn cli_location(file: &std::path::Path) -> std::ffi::OsString {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static MAP: Mutex<Option<HashMap<std::path::PathBuf, String>>> = Mutex::new(None);
    if !on_postgres() {
        return file.as_os_str().to_owned();
    }
    let mut map = MAP.lock().unwrap();
    let map = map.get_or_insert_with(HashMap::new);
    map.entry(file.to_path_buf())
        .or_insert_with(|| crate::pg::url_of(&crate::pg::empty_database()))
        .clone()
        .into()
}

/// The store behind a CLI test's `--db` (see [`cli_location`]), for raw SQL.
pub struct RawDb(custodian::store::Store);

impl std::ops::Deref for RawDb {
    type Target = custodian::store::Db;
    fn deref(&self) -> &custodian::store::Db {
        self.0.raw_db()
    }
}

pub fn raw_store(file: &std::path::Path) -> RawDb {
    let loc = cli_location(file);
    let loc = custodian::store::Location::parse(&loc.to_string_lossy()).unwrap();
    RawDb(custodian::store::Store::open_location(&loc).unwrap())
}

/// A campaign over every identity, reviewed by owners, `fallback` when the
/// owner cannot review, due in `due_days`; change fields with `..`.
pub fn identities_campaign(
    name: &str,
    fallback: i64,
    due_days: i64,
) -> custodian::campaigns::NewCampaign {
    use custodian::campaigns::*;
    NewCampaign {
        name: name.into(),
        description: String::new(),
        scope: CampaignScope::default(),
        granularity: Granularity::Identities,
        reviewer_rule: ReviewerRule::Owner,
        named_reviewer: None,
        fallback_reviewer: fallback,
        second_reviewer: None,
        recurrence: Recurrence::None,
        start_at: None,
        due_at: (now() + Duration::days(due_days)).to_rfc3339(),
    }
}

/// An agent registry (CSV) of `n` agents named `{prefix}-NN` whose every
/// tenth purpose names `round`: each round of a resync changes a few rows.
pub fn changing_registry(prefix: &str, n: usize, round: usize) -> String {
    let mut body = String::from("name,kind,class,purpose,owner_email,team,environment,intended_blast_radius,review_interval_days,created_at,credential_kind,credential_name,credential_created_at,credential_expires_at\n");
    for k in 0..n {
        body.push_str(&format!(
            "{prefix}-{k:02},ai_agent,digital_worker,Purpose {k} round {},nobody@example.test,Ops,production,Reads tickets,90,2025-01-15,client_secret,secret-{k},2025-01-15,\n",
            if k % 10 == 0 { round } else { 0 }
        ));
    }
    body
}
