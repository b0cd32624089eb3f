//! The LDAP / Active Directory source against a real OpenLDAP `slapd` with
//! AD's schema, driven through the public sync engine.

use custodian::model::{CredentialKind, DelegationKind, IdentityKind, IdentityStatus, Privilege};
use custodian::ErrorCode;
use serde_json::json;

use crate::harness::SourceEnv;
use crate::peers::Slapd;

const B: &str = Slapd::BASE;
const NEVER: &str = "9223372036854775807";
/// FILETIMEs.
const FT_2024_01_01: &str = "133485408000000000";
const FT_2025_06_30: &str = "133957152000000000";
const FT_2026_10_01: &str = "134352864000000000";
const FT_2026_11_01: &str = "134379648000000000";

/// An AD `user` entry (AD's mandatory attributes, `extensibleObject` for
/// `sAMAccountName`, `mail` and friends).
fn user(cn: &str, ou: &str, extra: &str) -> String {
    format!(
        "dn: cn={cn},ou={ou},{B}\nobjectClass: user\nobjectClass: extensibleObject\n\
         cn: {cn}\nsn: {cn}\nsAMAccountName: {cn}\ninstanceType: 4\nnTSecurityDescriptor:: AA==\n\
         objectCategory: cn=Person,cn=Schema,cn=Configuration,{B}\nwhenCreated: 20230301120000.0Z\n{extra}\n\n"
    )
}

fn group(cn: &str, ou: &str, members: &[String]) -> String {
    let m: String = members.iter().map(|d| format!("member: {d}\n")).collect();
    format!(
        "dn: cn={cn},ou={ou},{B}\nobjectClass: group\ncn: {cn}\ngroupType: -2147483646\ninstanceType: 4\n\
         nTSecurityDescriptor:: AA==\nobjectCategory: cn=Group,cn=Schema,cn=Configuration,{B}\n{m}\n"
    )
}

fn dn(cn: &str, ou: &str) -> String {
    format!("cn={cn},ou={ou},{B}")
}

fn populate(s: &Slapd) {
    let mut ldif = String::new();
    for ou in [
        "People",
        "Service Accounts",
        "AI Agents",
        "Computers",
        "Managed Service Accounts",
        "Legacy",
        "Groups",
    ] {
        ldif += &format!("dn: ou={ou},{B}\nobjectClass: organizationalUnit\nou: {ou}\n\n");
    }
    let alice = dn("alice", "People");
    let bob = dn("bob", "People");
    ldif += &user("alice", "People", "displayName: Alice Adams\nmail: alice@example.org\ndepartment: Engineering\ntitle: CTO\nuserAccountControl: 512");
    ldif += &user("bob", "People", &format!("displayName: Bob Brown\nuserPrincipalName: bob@example.org\ndepartment: Platform\nmanager: {alice}\nuserAccountControl: 512"));
    ldif += &user(
        "carol",
        "People",
        "mail: carol@example.org\nuserAccountControl: 514",
    );
    ldif += &user(
        "dave",
        "People",
        &format!(
            "mail: dave@example.org\nuserAccountControl: 512\naccountExpires: {FT_2025_06_30}"
        ),
    );
    // A person-looking account in People, made a service by its SPN; password never expires.
    ldif += &user(
        "sql-runner",
        "People",
        &format!(
            "servicePrincipalName: MSSQLSvc/db01.example.org:1433\nuserAccountControl: 66048\nmanager: {bob}\n\
             pwdLastSet: {FT_2024_01_01}\naccountExpires: {NEVER}\ndescription: Runs the SQL Server instance"
        ),
    );
    // Unconstrained delegation; the domain password policy applies (42 days).
    ldif += &user(
        "svc-web",
        "Service Accounts",
        &format!("userAccountControl: 524800\nmanager: {bob}\npwdLastSet: {FT_2024_01_01}\naccountExpires: 0"),
    );
    ldif += &user(
        "triage-agent",
        "AI Agents",
        &format!("userAccountControl: 512\nmanager: {alice}\nlastLogonTimestamp: {FT_2026_11_01}\npwdLastSet: {FT_2026_10_01}"),
    );
    // A host: not governed.
    ldif += &format!(
        "dn: cn=ws01,ou=Computers,{B}\nobjectClass: computer\nobjectClass: extensibleObject\ncn: ws01\nsn: ws01\n\
         sAMAccountName: ws01$\ninstanceType: 4\nnTSecurityDescriptor:: AA==\n\
         objectCategory: cn=Computer,cn=Schema,cn=Configuration,{B}\nuserAccountControl: 4096\n\n"
    );
    // A gMSA owned by bob, allowed to delegate to the SQL service.
    ldif += &format!(
        "dn: cn=gmsa-reports,ou=Managed Service Accounts,{B}\nobjectClass: msDS-GroupManagedServiceAccount\n\
         objectClass: extensibleObject\ncn: gmsa-reports\nsn: gmsa-reports\nsAMAccountName: gmsa-reports$\n\
         instanceType: 4\nnTSecurityDescriptor:: AA==\nobjectCategory: cn=ms-DS-Group-Managed-Service-Account,cn=Schema,cn=Configuration,{B}\n\
         userAccountControl: 4096\nmanagedBy: {bob}\nmsDS-ManagedPasswordInterval: 30\npwdLastSet: {FT_2026_10_01}\n\
         msDS-AllowedToDelegateTo: MSSQLSvc/db01.example.org:1433\n\n"
    );
    // OpenLDAP's usual service account shape.
    ldif += &format!(
        "dn: uid=legacy-batch,ou=Legacy,{B}\nobjectClass: account\nobjectClass: simpleSecurityObject\n\
         uid: legacy-batch\nuserPassword: x\ndescription: nightly batch\n\n"
    );
    ldif += &group("web-ops", "Groups", &[dn("svc-web", "Service Accounts")]);
    ldif += &group("Domain Admins", "Groups", &[dn("web-ops", "Groups")]);
    ldif += &group("Backup Operators", "Groups", &[dn("sql-runner", "People")]);
    ldif += &format!(
        "dn: cn=Reporting,ou=Groups,{B}\nobjectClass: groupOfNames\ncn: Reporting\nmember: {}\nmember: {alice}\n\n",
        dn("gmsa-reports", "Managed Service Accounts")
    );
    s.add(&ldif);
}

fn env_for(s: &Slapd, password: &str) -> SourceEnv {
    SourceEnv::new(
        "ldap",
        "Corp AD",
        // StartTLS (the default for ldap://), verified against the test CA.
        json!({"url": s.url, "ca_cert": s.ca, "bind_dn": Slapd::READER_DN, "base_dn": B, "page_size": 2}),
        password,
    )
}

fn names(env: &SourceEnv, sql: &str) -> Vec<String> {
    let mut st = env.store.raw_db().prepare(sql).unwrap();
    let mut v: Vec<String> = st
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    v.sort();
    v
}

fn grants(env: &SourceEnv, name: &str) -> Vec<String> {
    let mut v: Vec<String> = env
        .detail(name)
        .grants
        .iter()
        .map(|g| {
            format!(
                "{} on {} {}{}",
                g.permission,
                g.resource_name,
                g.privilege.as_str(),
                if g.high_consequence { " HC" } else { "" }
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn full_sync_maps_people_service_accounts_groups_and_delegation() {
    let s = Slapd::start();
    populate(&s);
    let mut env = env_for(&s, Slapd::READER_PW);
    let out = env.sync().unwrap();
    assert!(out.full);

    // Ten accounts were more than the server's unpaged limit of five: paging worked.
    assert_eq!(
        names(&env, "SELECT name FROM identities"),
        [
            "gmsa-reports$",
            "legacy-batch",
            "sql-runner",
            "svc-web",
            "triage-agent"
        ],
        "computers are not identities; SPN, OU, gMSA and `account` entries are"
    );
    assert_eq!(
        names(&env, "SELECT display_name || ' ' || status FROM people"),
        [
            "Alice Adams active",
            "Bob Brown active",
            "carol suspended",
            "dave departed"
        ]
    );
    let (_, manager, _) = env.person(
        &env.store
            .raw_db()
            .query_row(
                "SELECT external_id FROM people WHERE display_name = 'Bob Brown'",
                [],
                |r| r.get::<String>(0),
            )
            .unwrap(),
    );
    let alice_ext: String = env
        .store
        .raw_db()
        .query_row(
            "SELECT external_id FROM people WHERE email = 'alice@example.org'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        manager.as_deref(),
        Some(alice_ext.as_str()),
        "manager DN resolved to the person"
    );
    let dave_left: Option<i64> = env
        .store
        .raw_db()
        .query_row(
            "SELECT left_at FROM people WHERE email = 'dave@example.org'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(dave_left.is_some(), "an expired account has a leave date");

    // The SPN account.
    let sql = env.detail("sql-runner");
    assert_eq!(sql.kind, IdentityKind::ServiceAccount);
    assert_eq!(sql.owner.as_ref().unwrap().display_name, "Bob Brown");
    assert!(
        sql.purpose.contains("Runs the SQL Server instance"),
        "{}",
        sql.purpose
    );
    assert!(
        sql.purpose.contains("password never expires"),
        "{}",
        sql.purpose
    );
    assert_eq!(sql.credentials.len(), 1);
    let pw = &sql.credentials[0];
    assert_eq!(pw.kind, CredentialKind::Password);
    assert!(pw.created_at.starts_with("2024-01-01"), "{}", pw.created_at);
    assert_eq!(pw.expires_at, None, "DONT_EXPIRE_PASSWORD: never expires");
    assert_eq!(
        grants(&env, "sql-runner"),
        ["member on Backup Operators admin HC"]
    );

    // Unconstrained delegation and nested Domain Admins.
    let web = env.detail("svc-web");
    assert!(
        web.credentials[0]
            .expires_at
            .as_deref()
            .unwrap()
            .starts_with("2024-02-12"),
        "pwdLastSet + maxPwdAge 42 d"
    );
    assert!(web.purpose.contains("unconstrained Kerberos delegation"));
    assert_eq!(
        grants(&env, "svc-web"),
        [
            "kerberos: unconstrained delegation (can impersonate any user to any service) on Directory dc=example,dc=org admin HC",
            "member on web-ops read",
            "member via web-ops on Domain Admins admin HC",
        ]
    );

    // The gMSA: owner from managedBy, managed password, constrained delegation.
    let g = env.detail("gmsa-reports$");
    assert_eq!(g.owner.as_ref().unwrap().display_name, "Bob Brown");
    assert!(
        g.credentials[0]
            .expires_at
            .as_deref()
            .unwrap()
            .starts_with("2026-10-31"),
        "{:?}",
        g.credentials[0]
    );
    assert_eq!(g.delegations_out.len(), 1);
    assert_eq!(g.delegations_out[0].kind, DelegationKind::Impersonate);
    assert_eq!(g.delegations_out[0].other_name, "sql-runner");
    let gg = grants(&env, "gmsa-reports$");
    assert!(
        gg.contains(&"member on Reporting read".to_string()),
        "{gg:?}"
    );
    assert!(
        gg.iter()
            .any(|x| x.starts_with("kerberos: constrained delegation") && x.ends_with("write HC")),
        "{gg:?}"
    );

    // The agent in its OU, with last use from lastLogonTimestamp.
    let a = env.detail("triage-agent");
    assert_eq!(a.kind, IdentityKind::AiAgent);
    assert_eq!(a.owner.as_ref().unwrap().display_name, "Alice Adams");
    assert!(a.last_used_at.as_deref().unwrap().starts_with("2026-11-01"));

    assert_eq!(
        env.detail("legacy-batch").kind,
        IdentityKind::ServiceAccount
    );

    // Unresolvable owners stay empty rather than pointing at a group or a computer.
    assert!(env.detail("legacy-batch").owner.is_none());
    // Privileged groups are critical resources.
    let da: String = env
        .store
        .raw_db()
        .query_row(
            "SELECT sensitivity FROM resources WHERE name = 'Domain Admins'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(da, "critical");
    let privileged: Vec<Privilege> = env
        .detail("svc-web")
        .grants
        .iter()
        .map(|g| g.privilege)
        .collect();
    assert!(privileged.contains(&Privilege::Admin));
}

#[test]
fn resync_sees_deletions_and_disabled_accounts_and_keeps_ids() {
    let s = Slapd::start();
    populate(&s);
    let mut env = env_for(&s, Slapd::READER_PW);
    env.sync().unwrap();
    let sql_id = env.detail("sql-runner").id;

    s.modify(&format!(
        "dn: {}\nchangetype: delete\n\n\
         dn: {}\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 66050\n\n\
         dn: {}\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 514\n",
        dn("svc-web", "Service Accounts"),
        dn("sql-runner", "People"),
        dn("bob", "People"),
    ));
    env.sync().unwrap();
    assert_eq!(
        env.detail("svc-web").status,
        IdentityStatus::Deleted,
        "gone from the directory"
    );
    let sql = env.detail("sql-runner");
    assert_eq!(sql.status, IdentityStatus::Disabled);
    assert_eq!(sql.id, sql_id, "matched on entryUUID: same local id");
    assert_eq!(
        names(
            &env,
            "SELECT display_name || ' ' || status FROM people WHERE display_name = 'Bob Brown'"
        ),
        ["Bob Brown suspended"]
    );
}

#[test]
fn wrong_password_fails_clearly_and_keeps_the_snapshot() {
    let s = Slapd::start();
    populate(&s);
    let mut env = env_for(&s, Slapd::READER_PW);
    env.sync().unwrap();
    use custodian::sync::secrets::SecretStore;
    env.secrets.set(env.source, "wrong").unwrap();
    let err = env.sync().unwrap_err();
    assert_eq!(err.code, ErrorCode::SourceAuth, "{err}");
    assert!(err.message.contains("invalid credentials"), "{err}");
    assert!(
        !err.message.contains("wrong"),
        "the password is not echoed: {err}"
    );
    assert_eq!(
        env.detail("svc-web").status,
        IdentityStatus::Active,
        "last good snapshot intact"
    );
}

#[test]
fn missing_base_dn_and_a_stopped_server_are_named() {
    let mut s = Slapd::start();
    populate(&s);
    let mut env = SourceEnv::new(
        "ldap",
        "Wrong base",
        json!({"url": s.url, "ca_cert": s.ca, "bind_dn": Slapd::READER_DN, "base_dn": "dc=nowhere,dc=org"}),
        Slapd::READER_PW,
    );
    let err = env.sync().unwrap_err();
    assert_eq!(err.code, ErrorCode::SourceError, "{err}");
    assert!(err.message.contains("dc=nowhere,dc=org"), "{err}");

    let mut env = env_for(&s, Slapd::READER_PW);
    env.sync().unwrap();
    s.stop();
    let err = env.sync().unwrap_err();
    assert_eq!(err.code, ErrorCode::Network, "{err}");
    assert_eq!(env.detail("sql-runner").status, IdentityStatus::Active);
    let failed: i64 = env
        .store
        .raw_db()
        .query_row(
            "SELECT count(*) FROM sync_runs WHERE status = 'failed'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(failed, 1, "the failed run is recorded");
}

#[test]
fn a_bad_filter_setting_is_invalid_input() {
    let s = Slapd::start();
    let mut env = SourceEnv::new(
        "ldap",
        "Bad filter",
        json!({"url": s.url, "ca_cert": s.ca, "bind_dn": Slapd::READER_DN, "base_dn": B, "account_filter": "(objectClass=user"}),
        Slapd::READER_PW,
    );
    let err = env.sync().unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidInput, "{err}");
}

/// A TCP server on loopback that accepts connections, never answers, and
/// hands back everything each client sent (read for `window`).
fn recorder(window: std::time::Duration) -> (u16, std::sync::mpsc::Receiver<Vec<u8>>) {
    use std::io::Read;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let tx = tx.clone();
            std::thread::spawn(move || {
                let _ = conn.set_read_timeout(Some(window));
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
                let _ = tx.send(got);
            });
        }
    });
    (port, rx)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn plain_ldap_without_the_opt_in_is_refused_before_anything_is_sent() {
    let (port, rx) = recorder(std::time::Duration::from_millis(300));
    let settings = json!({"url": format!("ldap://127.0.0.1:{port}"), "starttls": false,
        "bind_dn": Slapd::READER_DN, "base_dn": B});

    // At `source add`: refused, naming the setting and the opt-in.
    let mut store = crate::util::test_store();
    let secrets = custodian::sync::secrets::MemorySecrets::default();
    let e = custodian::ops::add_source(
        &mut store,
        &secrets,
        "ldap",
        "Plain",
        settings.clone(),
        Some(Slapd::READER_PW),
        chrono::Utc::now(),
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidInput, "{e}");
    assert!(
        e.message.contains("'starttls'") && e.message.contains("allow_plain=true"),
        "{e}"
    );
    assert!(store.sources().unwrap().is_empty(), "nothing was added");

    // Stored before the rule (straight into the store): refused at sync,
    // before any connection, so the password never left.
    let mut env = SourceEnv::new("ldap", "Plain", settings, Slapd::READER_PW);
    let e = env.sync().unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidInput, "{e}");
    assert!(e.message.contains("of source 'Plain'"), "{e}");
    assert!(
        rx.recv_timeout(std::time::Duration::from_millis(500))
            .is_err(),
        "no connection was made"
    );
}

#[test]
fn by_default_ldap_asks_for_starttls_before_the_bind() {
    let (port, rx) = recorder(std::time::Duration::from_millis(1500));
    let mut env = SourceEnv::new(
        "ldap",
        "Default",
        json!({"url": format!("ldap://127.0.0.1:{port}"), "bind_dn": Slapd::READER_DN, "base_dn": B}),
        Slapd::READER_PW,
    );
    // One attempt, short timeouts: the server never answers StartTLS.
    let policy = custodian::sync::http::HttpPolicy {
        max_attempts: 1,
        connect_timeout: std::time::Duration::from_secs(1),
        request_timeout: std::time::Duration::from_secs(1),
        ..crate::harness::fast_policy()
    };
    let e = custodian::ops::sync_blocking(
        &mut env.store,
        env.source,
        &env.secrets,
        std::sync::Arc::new(|_| {}),
        custodian::sync::http::Cancel::new(),
        policy,
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::Network, "{e}");
    let first = rx.recv_timeout(std::time::Duration::from_secs(30)).unwrap();
    assert!(
        contains(&first, b"1.3.6.1.4.1.1466.20037"),
        "the first request is StartTLS: {first:?}"
    );
    while let Ok(more) = rx.recv_timeout(std::time::Duration::from_secs(2)) {
        assert!(!contains(&more, Slapd::READER_PW.as_bytes()));
    }
    assert!(
        !contains(&first, Slapd::READER_PW.as_bytes())
            && !contains(&first, Slapd::READER_DN.as_bytes()),
        "no bind went out in clear"
    );
}

#[test]
fn starttls_verifies_the_directory_certificate_and_plain_needs_the_opt_in() {
    let s = Slapd::start();
    populate(&s);
    // Without the test CA the certificate does not verify: no bind.
    let mut env = SourceEnv::new(
        "ldap",
        "Untrusted",
        json!({"url": s.url, "bind_dn": Slapd::READER_DN, "base_dn": B}),
        Slapd::READER_PW,
    );
    let e = env.sync().unwrap_err();
    assert!(
        e.message.to_ascii_lowercase().contains("certificate"),
        "the TLS layer's reason is named: {e}"
    );
    assert!(!e.message.contains(Slapd::READER_PW), "{e}");
    // By host name as well as by address, with the CA: it verifies.
    let by_name = s.url.replace("127.0.0.1", "localhost");
    let mut env = SourceEnv::new(
        "ldap",
        "By name",
        json!({"url": by_name, "ca_cert": s.ca, "bind_dn": Slapd::READER_DN, "base_dn": B, "page_size": 2}),
        Slapd::READER_PW,
    );
    assert!(env.sync().unwrap().report.items > 0);
    // A name the certificate does not carry is refused even with the CA.
    let mut env = SourceEnv::new(
        "ldap",
        "Wrong name",
        json!({"url": s.url.replace("127.0.0.1", "127.0.0.2"), "ca_cert": s.ca,
            "bind_dn": Slapd::READER_DN, "base_dn": B}),
        Slapd::READER_PW,
    );
    assert!(env.sync().is_err(), "127.0.0.2 is not in the certificate");

    // Plain LDAP with the explicit opt-in: accepted at add, and it syncs.
    let plain = json!({"url": s.url, "allow_plain": true, "bind_dn": Slapd::READER_DN, "base_dn": B, "page_size": 2});
    let mut store = crate::util::test_store();
    let secrets = custodian::sync::secrets::MemorySecrets::default();
    custodian::ops::add_source(
        &mut store,
        &secrets,
        "ldap",
        "Plain on purpose",
        plain.clone(),
        Some(Slapd::READER_PW),
        chrono::Utc::now(),
    )
    .unwrap();
    let mut env = SourceEnv::new("ldap", "Plain on purpose", plain, Slapd::READER_PW);
    assert!(env.sync().unwrap().report.items > 0);
}
