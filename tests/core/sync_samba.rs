//! The LDAP / Active Directory source against a real Active Directory: a
//! Samba AD domain controller provisioned by the tests (see
//! `tests/core/samba.rs`), synced over verified StartTLS or LDAPS as an
//! ordinary domain user, through the public sync engine.
//!
//! Every test works in its own [`Scope`] (an OU and a name prefix) of the
//! one shared domain, and reaches the domain's real built-in groups (Domain
//! Admins, Backup Operators), which AD itself keeps.

use custodian::model::{CredentialKind, IdentityKind, IdentityStatus, Privilege};
use custodian::ErrorCode;

use crate::harness::{last_run, SourceEnv};
use crate::samba::{builtin, dc, SambaDc, Scope};

/// 2025-06-30 as a FILETIME (in the past).
const FT_2025_06_30: &str = "133957152000000000";

/// `userAccountControl` values as AD stores them.
const NORMAL: i64 = 0x200;
const DISABLED: i64 = 0x2;
const DONT_EXPIRE: i64 = 0x1_0000;
const TRUSTED_FOR_DELEGATION: i64 = 0x8_0000;
const TRUSTED_TO_AUTH: i64 = 0x100_0000;
const WORKSTATION_TRUST: i64 = 0x1000;

fn env_for(scope: &Scope, url: &str, name: &str) -> SourceEnv {
    SourceEnv::new("ldap", name, scope.settings(url), scope.dc.reader_pw())
}

fn identity_names(env: &SourceEnv) -> Vec<String> {
    let mut st = env
        .store
        .raw_db()
        .prepare("SELECT name || ' ' || status FROM identities")
        .unwrap();
    let mut v: Vec<String> = st
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    v.sort();
    v
}

/// (display name, status, manager's display name) of every person.
fn people(env: &SourceEnv) -> Vec<String> {
    let mut st = env
        .store
        .raw_db()
        .prepare(
            "SELECT p.display_name || ' ' || p.status || ' ' || coalesce(m.display_name, '-')
             FROM people p LEFT JOIN people m ON m.id = p.manager_id",
        )
        .unwrap();
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

fn delegations(env: &SourceEnv, name: &str) -> Vec<String> {
    let mut v: Vec<String> = env
        .detail(name)
        .delegations_out
        .iter()
        .map(|d| format!("{:?} {}", d.kind, d.other_name))
        .collect();
    v.sort();
    v
}

/// The lifecycle events of a run, as `kind subject name: detail`.
fn events(env: &SourceEnv, run: custodian::store::sync::RunId) -> Vec<String> {
    let mut v: Vec<String> = env
        .store
        .lifecycle_events(run)
        .unwrap()
        .into_iter()
        .map(|e| format!("{} {} {}: {}", e.kind, e.subject, e.name, e.detail))
        .collect();
    v.sort();
    v
}

/// A small organisation in `scope`: people with managers, service accounts
/// with SPNs and UAC flags, a gMSA, nested groups reaching Domain Admins,
/// constrained delegation.
struct Org {
    alice: String,
    bob: String,
    sql: String,
    web: String,
    app: String,
    web_ops: String,
}

fn populate(s: &Scope) -> Org {
    let p = &s.prefix;
    let alice = s.user(
        "alice",
        &format!("displayName: Alice Adams\nmail: alice@{p}.custodian.test\ndepartment: Engineering\ntitle: CTO"),
    );
    let bob = s.user(
        "bob",
        &format!("displayName: Bob Brown\nuserPrincipalName: bob@{p}.custodian.test\ndepartment: Platform\nmanager: {alice}"),
    );
    s.user(
        "carol",
        &format!(
            "displayName: Carol Cole\nuserAccountControl: {}",
            NORMAL | DISABLED
        ),
    );
    s.user(
        "dave",
        &format!("displayName: Dave Dunn\naccountExpires: {FT_2025_06_30}"),
    );
    // Service accounts: recognised by their SPNs alone (neutral OU and names).
    let sql = s.user(
        "sql",
        &format!(
            "servicePrincipalName: MSSQLSvc/{p}-db01.custodian.test:1433\n\
             servicePrincipalName: MSSQLSvc/{p}-db01:1433\n\
             userAccountControl: {}\nmanager: {bob}\ndescription: Runs the SQL Server instance",
            NORMAL | DONT_EXPIRE
        ),
    );
    let web = s.user(
        "web",
        &format!(
            "servicePrincipalName: HTTP/{p}-web01.custodian.test\nuserAccountControl: {}\nmanager: {bob}\ndepartment: Web",
            NORMAL | TRUSTED_FOR_DELEGATION
        ),
    );
    let app = s.user(
        "app",
        &format!(
            "servicePrincipalName: HTTP/{p}-app01.custodian.test\nuserAccountControl: {}\nmanager: {alice}\n\
             msDS-AllowedToDelegateTo: MSSQLSvc/{p}-db01.custodian.test:1433",
            NORMAL | TRUSTED_TO_AUTH
        ),
    );
    s.user(
        "old",
        &format!(
            "servicePrincipalName: HTTP/{p}-old.custodian.test\nuserAccountControl: {}",
            NORMAL | DISABLED
        ),
    );
    // Groups: web ∈ web-ops ∈ Domain Admins; sql ∈ Backup Operators.
    let owners = s.group("owners", &[&alice], "");
    let web_ops = s.group("web-ops", &[&web], &format!("managedBy: {alice}"));
    s.add_member(&builtin("Domain Admins"), &web_ops);
    s.add_member(&builtin("Backup Operators"), &sql);
    // A Domain Admin by primary group only: AD lists it in neither the
    // group's `member` nor its own `memberOf` once primaryGroupID is 512
    // (it must be a member before the change).
    let pg = s.user(
        "pgadmin",
        &format!("servicePrincipalName: HTTP/{p}-pg.custodian.test\nuserAccountControl: {NORMAL}"),
    );
    s.add_member(&builtin("Domain Admins"), &pg);
    s.replace(&pg, "primaryGroupID", &["512"]);
    // A PSO (fine-grained password policy) of 365 days for the app account.
    let days = |d: i64| (-d * 86_400 * 10_000_000).to_string();
    s.dc.add(&format!(
        "dn: CN={p}-long,CN=Password Settings Container,CN=System,{}\nobjectClass: msDS-PasswordSettings\n\
         msDS-PasswordSettingsPrecedence: 10\nmsDS-PasswordReversibleEncryptionEnabled: FALSE\n\
         msDS-PasswordHistoryLength: 0\nmsDS-PasswordComplexityEnabled: FALSE\nmsDS-MinimumPasswordLength: 0\n\
         msDS-MinimumPasswordAge: 0\nmsDS-MaximumPasswordAge: {}\nmsDS-LockoutThreshold: 0\n\
         msDS-LockoutObservationWindow: {}\nmsDS-LockoutDuration: {}\nmsDS-PSOAppliesTo: {}\n",
        SambaDc::BASE,
        days(365),
        -18_000_000_000i64,
        -18_000_000_000i64,
        s.dn("app")
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    // A distribution list (groupType 2: global, not security-enabled) whose
    // name says admin: a mail list, no grant.
    s.group("it-admins", &[&sql], "groupType: 2");
    // Group managed service accounts: one owned by a person, one by a group.
    let gmsa = |name: &str, managed_by: &str, extra: &str| {
        s.dc.add(&format!(
            "dn: {}\nobjectClass: msDS-GroupManagedServiceAccount\nsAMAccountName: {}$\n\
             dNSHostName: {}.custodian.test\nmsDS-ManagedPasswordInterval: 30\nmanagedBy: {managed_by}\n{extra}",
            s.dn(name),
            s.name(name),
            s.name(name)
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        // Samba creates a gMSA disabled (no password yet); Windows enables it.
        s.replace(
            &s.dn(name),
            "userAccountControl",
            &[&WORKSTATION_TRUST.to_string()],
        );
        s.dn(name)
    };
    let reports = gmsa("reports", &bob, "");
    gmsa("etl", &owners, "");
    s.group("reporting", &[&reports, &alice], "");
    Org {
        alice,
        bob,
        sql,
        web,
        app,
        web_ops,
    }
}

#[test]
fn a_real_ad_syncs_service_accounts_people_groups_and_delegation() {
    let Some(dc) = dc() else { return };
    let s = dc.scope("ad");
    let started = std::time::Instant::now();
    populate(&s);
    // Resource-based constrained delegation as an administrator sets it
    // (samba-tool writes the security descriptor): the SQL account may act
    // as anyone towards web, the app account towards a file server (a
    // computer: not an identity, but a host the app reaches).
    let fs = s.name("fs01");
    dc.add(&format!(
        "dn: CN={fs},{}\nobjectClass: computer\nsAMAccountName: {fs}$\n\
         dNSHostName: {fs}.custodian.test\nuserAccountControl: {WORKSTATION_TRUST}\n",
        s.ou
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    dc.samba_tool(&[
        "delegation",
        "add-principal",
        &s.name("web"),
        &s.name("sql"),
    ]);
    dc.samba_tool(&[
        "delegation",
        "add-principal",
        &format!("{fs}$"),
        &s.name("app"),
    ]);
    // One of the organisation's own groups is configured as an admin group.
    let mut settings = s.settings(&dc.url);
    settings["admin_groups"] = serde_json::json!(s.name("reporting"));
    let mut env = SourceEnv::new("ldap", "Samba AD", settings, dc.reader_pw());
    let out = env.sync().unwrap();
    eprintln!(
        "samba: DC up in {:.1} s; populated and synced in {:.1} s",
        dc.startup.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    assert!(out.full);
    let n = |x: &str| s.name(x);

    // SPN accounts and gMSAs are NHIs; the reader and Administrator are out of scope.
    assert_eq!(
        identity_names(&env),
        [
            format!("{} active", n("app")),
            format!("{}$ active", n("etl")),
            format!("{} disabled", n("old")),
            format!("{} active", n("pgadmin")),
            format!("{}$ active", n("reports")),
            format!("{} active", n("sql")),
            format!("{} active", n("web")),
        ],
        "SPN accounts and gMSAs are the NHIs; ACCOUNTDISABLE is disabled"
    );
    assert_eq!(
        people(&env),
        [
            "Alice Adams active -",
            "Bob Brown active Alice Adams",
            "Carol Cole suspended -",
            "Dave Dunn departed -",
        ],
        "people, their manager (a DN AD keeps), disabled = suspended, expired = departed"
    );

    // The SQL service account: owner from manager, password never expires,
    // member of the built-in Backup Operators.
    let sql = env.detail(&n("sql"));
    assert_eq!(sql.kind, IdentityKind::ServiceAccount);
    assert_eq!(
        sql.owner.as_ref().map(|o| o.display_name.as_str()),
        Some("Bob Brown")
    );
    let on_list = format!(
        "on distribution list {} (mail only: no access)",
        n("it-admins")
    );
    for fact in [
        "Runs the SQL Server instance",
        "password never expires",
        "SPN: MSSQLSvc/",
        &on_list,
    ] {
        assert!(sql.purpose.contains(fact), "{fact}: {}", sql.purpose);
    }
    assert_eq!(sql.credentials.len(), 1);
    let pw = &sql.credentials[0];
    assert_eq!(pw.kind, CredentialKind::Password);
    assert_eq!(pw.expires_at, None, "DONT_EXPIRE_PASSWORD: never expires");
    assert_eq!(
        pw.age_days, 0,
        "pwdLastSet is when the password was set: now"
    );
    assert_eq!(
        grants(&env, &n("sql")),
        ["member on Backup Operators admin HC"],
        "the distribution list it-admins gives no grant"
    );
    assert_eq!(
        grants(&env, &n("pgadmin")),
        [
            "member (primary group) on Domain Admins admin HC",
            // AD moved the old primary group (Domain Users) into `member`.
            "member on Domain Users read",
            "member via Domain Admins on Administrators admin HC",
            "member via Domain Admins on Denied RODC Password Replication Group read",
            "member via Domain Users on Users read",
        ],
        "Domain Admin through primaryGroupID alone"
    );

    // Unconstrained delegation, and Domain Admins through a nested group.
    let web = env.detail(&n("web"));
    assert!(
        web.purpose.contains("unconstrained Kerberos delegation"),
        "{}",
        web.purpose
    );
    assert_eq!(web.team, "Web");
    let (set, expires) = (
        &web.credentials[0].last_rotated_at,
        &web.credentials[0].expires_at,
    );
    let t =
        |x: &Option<String>| chrono::DateTime::parse_from_rfc3339(x.as_deref().unwrap()).unwrap();
    assert_eq!(
        (t(expires) - t(set)).num_days(),
        42,
        "pwdLastSet + the domain's maxPwdAge (Samba's default: 42 days)"
    );
    // A fine-grained password policy (PSO) of 365 days applies to the app
    // account: the DC's computed expiry, not the domain's 42 days.
    let app = env.detail(&n("app"));
    let pw = &app.credentials[0];
    assert_eq!(
        (t(&pw.expires_at) - t(&pw.last_rotated_at)).num_days(),
        365,
        "msDS-UserPasswordExpiryTimeComputed with the PSO: {pw:?}"
    );
    // AD nests Domain Admins in the built-in Administrators (and in the
    // Denied RODC Password Replication Group): both are reached too, and the
    // route names every group on the way.
    assert_eq!(
        grants(&env, &n("web")),
        [
            format!("kerberos: unconstrained delegation (can impersonate any user to any service) on Directory {} admin HC", SambaDc::BASE),
            format!("member on {} read", n("web-ops")),
            format!("member via {} > Domain Admins on Administrators admin HC", n("web-ops")),
            format!("member via {} > Domain Admins on Denied RODC Password Replication Group read", n("web-ops")),
            format!("member via {} on Domain Admins admin HC", n("web-ops")),
        ]
    );
    let da = env
        .detail(&n("web"))
        .grants
        .into_iter()
        .find(|g| g.resource_name == "Domain Admins")
        .unwrap();
    assert_eq!(da.privilege, Privilege::Admin);
    assert_eq!(da.sensitivity, custodian::model::Sensitivity::Critical);

    // Protocol transition and constrained delegation to the SQL service,
    // which another fetched account holds: an impersonation edge.
    let app = env.detail(&n("app"));
    assert!(
        app.purpose.contains("Kerberos protocol transition"),
        "{}",
        app.purpose
    );
    assert_eq!(
        app.owner.as_ref().map(|o| o.display_name.as_str()),
        Some("Alice Adams")
    );
    assert_eq!(
        delegations(&env, &n("app")),
        [format!("Impersonate {}", n("sql"))]
    );
    let ag = grants(&env, &n("app"));
    assert!(
        ag.contains(&format!(
            "kerberos: constrained delegation (acts as any user to this service) on MSSQLSvc/{}-db01.custodian.test:1433 write HC",
            s.prefix
        )),
        "{ag:?}"
    );
    assert!(
        ag.iter()
            .any(|g| g.starts_with("kerberos: protocol transition")),
        "{ag:?}"
    );
    assert_eq!(
        env.detail(&n("sql")).delegations_in.len(),
        1,
        "the SQL account is the delegation's target"
    );
    // Resource-based delegation: read from the target's descriptor.
    assert_eq!(
        delegations(&env, &n("sql")),
        [format!("Impersonate {}", n("web"))],
        "msDS-AllowedToActOnBehalfOfOtherIdentity on web allows sql"
    );
    assert!(
        env.detail(&n("web")).purpose.contains(&format!(
            "accepts resource-based delegation from {}",
            n("sql")
        )),
        "{}",
        env.detail(&n("web")).purpose
    );
    assert!(
        ag.contains(&format!(
            "kerberos: resource-based constrained delegation (acts as any user to this host) on {fs}.custodian.test write HC"
        )),
        "{ag:?}"
    );

    // gMSAs: owner from managedBy (a person), or the owning group named.
    let reports = env.detail(&format!("{}$", n("reports")));
    assert_eq!(reports.kind, IdentityKind::ServiceAccount);
    assert_eq!(
        reports.owner.as_ref().map(|o| o.display_name.as_str()),
        Some("Bob Brown")
    );
    assert!(
        reports.purpose.contains("managed service account"),
        "{}",
        reports.purpose
    );
    assert_eq!(
        grants(&env, &format!("{}$", n("reports"))),
        [format!("member on {} admin HC", n("reporting"))],
        "admin_groups names reporting: membership is admin"
    );
    let etl = env.detail(&format!("{}$", n("etl")));
    assert!(etl.owner.is_none(), "a group is not a person");
    assert!(
        etl.purpose
            .contains(&format!("managed by group {}", n("owners"))),
        "{}",
        etl.purpose
    );

    // A disabled service account.
    assert_eq!(env.detail(&n("old")).status, IdentityStatus::Disabled);
    // AD's objectGUID is the key.
    assert_eq!(sql.external_id.len(), 36, "{}", sql.external_id);
}

#[test]
fn a_resync_after_changes_in_ad_reports_joiners_movers_and_leavers() {
    let Some(dc) = dc() else { return };
    let s = dc.scope("rs");
    let org = populate(&s);
    let n = |x: &str| s.name(x);
    let mut env = env_for(&s, &dc.ldaps_url, "Samba AD over LDAPS");
    let first = env.sync().unwrap();
    assert!(first.report.joiners > 0);
    let sql_id = env.detail(&n("sql")).id;
    assert_eq!(grants(&env, &n("web")).len(), 5);

    // Changes an administrator makes.
    let p = &s.prefix;
    // The web account is disabled; Bob is disabled.
    s.replace(
        &org.web,
        "userAccountControl",
        &[&(NORMAL | TRUSTED_FOR_DELEGATION | DISABLED).to_string()],
    );
    s.replace(
        &org.bob,
        "userAccountControl",
        &[&(NORMAL | DISABLED).to_string()],
    );
    // The SQL account loses the SPN the app delegates to, and Backup Operators.
    s.dc.modify(&format!(
        "dn: {}\nchangetype: modify\ndelete: servicePrincipalName\nservicePrincipalName: MSSQLSvc/{p}-db01.custodian.test:1433\n",
        org.sql
    ));
    s.remove_member(&builtin("Backup Operators"), &org.sql);
    // web-ops leaves Domain Admins.
    s.remove_member(&builtin("Domain Admins"), &org.web_ops);
    // A new service account joins, owned by Alice.
    s.user(
        "batch",
        &format!(
            "servicePrincipalName: HTTP/{p}-batch.custodian.test\nmanager: {}",
            org.alice
        ),
    );
    // Alice (a person: given name, mail) starts running a service under her
    // own account: she stays a person, and the service is flagged.
    s.replace(&org.alice, "givenName", &["Alice"]);
    s.replace(
        &org.alice,
        "servicePrincipalName",
        &[&format!("HTTP/{p}-alice-pc.custodian.test")],
    );
    let _ = &org.app;

    let out = env.sync().unwrap();
    let ev = events(&env, out.run);

    let web = env.detail(&n("web"));
    assert_eq!(
        web.status,
        IdentityStatus::Disabled,
        "ACCOUNTDISABLE on the next read"
    );
    assert_eq!(
        grants(&env, &n("web")),
        [
            format!("kerberos: unconstrained delegation (can impersonate any user to any service) on Directory {} admin HC", SambaDc::BASE),
            format!("member on {} read", n("web-ops")),
        ],
        "no longer Domain Admin once web-ops left it"
    );
    let sql = env.detail(&n("sql"));
    assert_eq!(sql.id, sql_id, "matched on objectGUID: same local id");
    assert_eq!(
        sql.status,
        IdentityStatus::Active,
        "still a service account by its other SPN"
    );
    assert!(
        grants(&env, &n("sql")).is_empty(),
        "out of Backup Operators"
    );
    assert!(
        delegations(&env, &n("app")).is_empty(),
        "the SPN the app delegates to has no holder any more"
    );
    assert_eq!(
        env.detail(&n("batch"))
            .owner
            .as_ref()
            .map(|o| o.display_name.as_str()),
        Some("Alice Adams")
    );
    assert!(
        people(&env).contains(&"Bob Brown suspended Alice Adams".to_string()),
        "{:?}",
        people(&env)
    );

    assert!(
        people(&env).contains(&"Alice Adams active -".to_string()),
        "{:?}",
        people(&env)
    );
    let alice = env.detail(&n("alice"));
    assert_eq!(
        (
            alice.kind,
            alice.owner.as_ref().map(|o| o.display_name.as_str())
        ),
        (IdentityKind::ServiceAccount, Some("Alice Adams"))
    );
    assert_eq!(
        alice
            .findings
            .iter()
            .filter(|f| f.owasp == "NHI10")
            .map(|f| (f.check_id.as_str(), f.evidence.clone()))
            .collect::<Vec<_>>(),
        [(
            "human-account-as-service",
            format!(
                "the account of Alice Adams is also {} in Samba AD over LDAPS",
                n("alice")
            )
        )]
    );

    // The run's counts match its events.
    // Joiners, movers and leavers: the new account; the disabled account and
    // person; the app's lost delegation edge, and the lost memberships, each
    // named, the identity by its name (not its objectGUID).
    for want in [
        format!("joiner identity {}: new service_account", n("batch")),
        format!("joiner identity {}: new service_account", n("alice")),
        format!("leaver identity {}: status active -> disabled", n("web")),
        "leaver person Bob Brown: status active -> suspended".to_string(),
        format!(
            "mover identity {}: delegations: +0 -1 (lost impersonate to {})",
            n("app"),
            n("sql")
        ),
        format!(
            "mover identity {}: grants: +0 -1 (lost member on Backup Operators)",
            n("sql")
        ),
        format!(
            "mover identity {}: grants: +0 -3 (lost member via {ops} > Domain Admins on Administrators, \
             member via {ops} > Domain Admins on Denied RODC Password Replication Group, \
             member via {ops} on Domain Admins)",
            n("web"),
            ops = n("web-ops")
        ),
    ] {
        assert!(ev.contains(&want), "{want} in {ev:#?}");
    }
    let count = |k: &str| {
        ev.iter()
            .filter(|e| e.starts_with(&format!("{k} ")))
            .count()
    };
    assert_eq!((out.report.joiners, out.report.leavers), (2, 2), "{ev:#?}");
    assert!(
        !ev.iter().any(|e| e.contains("Alice Adams")),
        "no leaver or mover for the person: {ev:#?}"
    );
    assert_eq!(out.report.movers, count("mover"), "{ev:#?}");
    // The run records the same counts.
    let run = last_run(&env);
    assert_eq!(run.status, "succeeded");
    assert_eq!(
        (run.joiners, run.movers, run.leavers),
        (2, out.report.movers as i64, 2)
    );
    assert!(run.items > 0);
}

#[test]
fn the_dc_refuses_plain_binds_and_unverified_certificates() {
    let Some(dc) = dc() else { return };
    let s = dc.scope("tl");
    s.user("svc", "servicePrincipalName: HTTP/tl-svc.custodian.test");
    let mut base = s.settings(&dc.url);

    // Without the CA: the certificate does not verify, nothing is bound.
    base.as_object_mut().unwrap().remove("ca_cert");
    let mut env = SourceEnv::new("ldap", "Untrusted", base.clone(), dc.reader_pw());
    let e = env.sync().unwrap_err();
    assert!(
        e.message.to_ascii_lowercase().contains("certificate"),
        "{e}"
    );
    assert!(!e.message.contains(dc.reader_pw()), "{e}");

    // Plain LDAP, opted in: AD itself refuses a simple bind without TLS.
    let mut plain = base.clone();
    plain["allow_plain"] = serde_json::json!(true);
    let mut env = SourceEnv::new("ldap", "Plain", plain, dc.reader_pw());
    let e = env.sync().unwrap_err();
    assert_eq!(e.code, ErrorCode::SourceAuth, "{e}");
    assert!(e.message.contains("requires a secure connection"), "{e}");

    // A wrong password: AD's invalid-credentials, the password not echoed.
    let mut env = env_for(&s, &dc.url, "Wrong password");
    use custodian::sync::secrets::SecretStore;
    env.secrets.set(env.source, "Wrong-Passw0rd-xx").unwrap();
    let e = env.sync().unwrap_err();
    assert_eq!(e.code, ErrorCode::SourceAuth, "{e}");
    assert!(e.message.contains("invalid credentials"), "{e}");
    assert!(!e.message.contains("Wrong-Passw0rd-xx"), "{e}");

    // With the CA, over StartTLS and LDAPS: it syncs.
    for url in [&dc.url, &dc.ldaps_url] {
        let mut env = env_for(&s, url, "Verified");
        env.sync().unwrap();
        assert_eq!(identity_names(&env), [format!("{} active", s.name("svc"))]);
    }
}
