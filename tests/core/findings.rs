//! Posture checks on hand-built cases: each fires when it should and only then.

use std::collections::BTreeSet;

use custodian::findings::{owasp_title, CHECKS};
use custodian::model::*;
use custodian::ops;
use custodian::store::Store;

use crate::util::{now, OrgBuilder};

fn checks_of(store: &Store, name: &str) -> BTreeSet<String> {
    ops::show(store, name, now())
        .unwrap()
        .findings
        .into_iter()
        .map(|f| f.check_id)
        .collect()
}

fn load(b: &OrgBuilder) -> Store {
    let mut store = crate::util::test_store();
    store.replace_org(&b.org, now()).unwrap();
    store
}

#[test]
fn every_check_maps_to_an_owasp_category() {
    for c in CHECKS {
        assert!(
            !owasp_title(c.owasp).is_empty(),
            "{} maps to unknown {}",
            c.id,
            c.owasp
        );
    }
    let ids: BTreeSet<&str> = CHECKS.iter().map(|c| c.id).collect();
    assert_eq!(ids.len(), CHECKS.len(), "check ids are unique");
}

#[test]
fn a_well_kept_identity_has_no_findings() {
    let mut b = OrgBuilder::new();
    let p = b.person("Ada Okafor", PersonStatus::Active);
    let i = b.identity("tidy-agent", IdentityKind::AiAgent, Some(p));
    b.credential(i, CredentialKind::ClientSecret, 30, Some(60));
    let r = b.resource("docs", Sensitivity::Low, "production");
    b.grant(i, r, Privilege::Read);
    assert!(checks_of(&load(&b), "tidy-agent").is_empty());
}

#[test]
fn ownership_checks() {
    let mut b = OrgBuilder::new();
    let gone = b.person("Ben Novak", PersonStatus::Departed);
    let away = b.person("Chloe Rossi", PersonStatus::Suspended);
    b.identity("orphan", IdentityKind::ServiceAccount, Some(gone));
    b.identity("suspended-owner", IdentityKind::ServiceAccount, Some(away));
    b.identity("ownerless", IdentityKind::ServiceAccount, None);
    let disabled = b.identity("disabled-orphan", IdentityKind::ServiceAccount, Some(gone));
    b.identity_mut(disabled).status = IdentityStatus::Disabled;
    let store = load(&b);
    assert!(checks_of(&store, "orphan").contains("owner-departed"));
    assert!(checks_of(&store, "suspended-owner").contains("owner-departed"));
    assert!(checks_of(&store, "ownerless").contains("no-owner"));
    assert!(
        checks_of(&store, "disabled-orphan").is_empty(),
        "disabled identities are not posture risks"
    );
}

#[test]
fn unregistered_agents_are_flagged_but_other_kinds_are_not() {
    let mut b = OrgBuilder::new();
    let p = b.person("Ada Okafor", PersonStatus::Active);
    let a = b.identity("shadow-agent", IdentityKind::AiAgent, Some(p));
    b.identity_mut(a).registered = false;
    let s = b.identity("shadow-svc", IdentityKind::ServiceAccount, Some(p));
    b.identity_mut(s).registered = false;
    let store = load(&b);
    assert!(checks_of(&store, "shadow-agent").contains("unregistered-agent"));
    assert!(!checks_of(&store, "shadow-svc").contains("unregistered-agent"));
}

#[test]
fn secret_age_and_expiry_checks() {
    let mut b = OrgBuilder::new();
    let p = b.person("Ada Okafor", PersonStatus::Active);
    let forever = b.identity("forever", IdentityKind::ApiKey, Some(p));
    b.credential(forever, CredentialKind::ApiToken, 10, None);
    let federated = b.identity("federated", IdentityKind::Workload, Some(p));
    b.credential(federated, CredentialKind::FederatedCredential, 900, None);
    let old = b.identity("old", IdentityKind::ApiKey, Some(p));
    b.credential(old, CredentialKind::ApiToken, 366, Some(30));
    let rotated = b.identity("rotated", IdentityKind::ApiKey, Some(p));
    let c = b.credential(rotated, CredentialKind::ApiToken, 900, Some(30));
    b.org.credentials[(c.0 - 1) as usize].last_rotated_at = Some(crate::util::days_ago(20));
    let expired = b.identity("expired", IdentityKind::ApiKey, Some(p));
    b.credential(expired, CredentialKind::ApiToken, 100, Some(-1));
    let stale = b.identity("stale", IdentityKind::ApiKey, Some(p));
    let c = b.credential(stale, CredentialKind::ApiToken, 200, Some(100));
    b.org.credentials[(c.0 - 1) as usize].last_used_at = Some(crate::util::days_ago(91));
    let store = load(&b);

    assert_eq!(
        checks_of(&store, "forever"),
        BTreeSet::from(["secret-never-expires".to_string()])
    );
    assert!(
        checks_of(&store, "federated").is_empty(),
        "federated credentials have no secret to expire"
    );
    assert_eq!(
        checks_of(&store, "old"),
        BTreeSet::from(["secret-not-rotated".to_string()])
    );
    assert!(
        checks_of(&store, "rotated").is_empty(),
        "rotation resets the age"
    );
    assert_eq!(
        checks_of(&store, "expired"),
        BTreeSet::from(["secret-expired".to_string()])
    );
    assert_eq!(
        checks_of(&store, "stale"),
        BTreeSet::from(["stale-credential".to_string()])
    );
}

#[test]
fn privilege_and_environment_checks() {
    let mut b = OrgBuilder::new();
    let p = b.person("Ada Okafor", PersonStatus::Active);
    let crown = b.resource("ledger", Sensitivity::Critical, "production");
    let staging = b.resource("ledger-staging", Sensitivity::High, "staging");
    let admin = b.identity("admin-bot", IdentityKind::Bot, Some(p));
    b.grant(admin, crown, Privilege::Admin);
    let reader = b.identity("reader-bot", IdentityKind::Bot, Some(p));
    b.grant(reader, crown, Privilege::Read);
    let both = b.identity("both-envs", IdentityKind::Bot, Some(p));
    b.grant(both, crown, Privilege::Read);
    b.grant(both, staging, Privilege::Read);
    let idle = b.identity("idle-grants", IdentityKind::Bot, Some(p));
    b.grant(idle, crown, Privilege::Read);
    b.org.grants.last_mut().unwrap().last_used_at = None;
    let store = load(&b);
    assert_eq!(
        checks_of(&store, "admin-bot"),
        BTreeSet::from(["admin-on-critical".to_string()])
    );
    assert!(checks_of(&store, "reader-bot").is_empty());
    assert_eq!(
        checks_of(&store, "both-envs"),
        BTreeSet::from(["cross-environment".to_string()])
    );
    assert_eq!(
        checks_of(&store, "idle-grants"),
        BTreeSet::from(["unused-grants".to_string()])
    );
}

#[test]
fn findings_are_reevaluated_as_time_passes() {
    let mut b = OrgBuilder::new();
    let p = b.person("Ada Okafor", PersonStatus::Active);
    let i = b.identity("ageing", IdentityKind::ApiKey, Some(p));
    b.credential(i, CredentialKind::ApiToken, 300, Some(400));
    let mut store = load(&b);
    assert!(checks_of(&store, "ageing").is_empty());
    store
        .refresh_findings(now() + chrono::Duration::days(70))
        .unwrap();
    assert!(checks_of(&store, "ageing").contains("secret-not-rotated"));
    let row = &ops::inventory(&store, &Default::default(), now())
        .unwrap()
        .rows[0];
    assert_eq!(
        (row.finding_count, row.max_severity),
        (1, Some(Severity::High)),
        "roll-ups follow"
    );
}

/// The catalogue the UI shows describes every finding the store raises
/// with the same category, severity, title and fix, and names every
/// OWASP NHI category once.
#[test]
fn the_check_catalogue_describes_every_raised_finding() {
    let mut store = crate::util::test_store();
    ops::load_demo(&mut store, custodian::demo::DemoSize::S, 7, now()).unwrap();
    let catalogue = ops::finding_checks();
    let codes: Vec<&str> = catalogue
        .categories
        .iter()
        .map(|c| c.code.as_str())
        .collect();
    assert_eq!(
        codes,
        (1..=10).map(|i| format!("NHI{i}")).collect::<Vec<_>>()
    );
    assert_eq!(catalogue.checks.len(), CHECKS.len());
    let counts = ops::finding_counts(&store).unwrap();
    assert!(
        counts.len() > 3,
        "the demo raises several kinds of findings"
    );
    for f in counts {
        let c = catalogue
            .checks
            .iter()
            .find(|c| c.id == f.check_id)
            .unwrap_or_else(|| panic!("{} is not in the catalogue", f.check_id));
        assert_eq!(
            (&c.owasp, &c.owasp_title, c.severity, &c.title, &c.fix),
            (&f.owasp, &f.owasp_title, f.severity, &f.title, &f.fix),
            "{}",
            f.check_id
        );
    }
    // The JSON shape the UI reads.
    let json = serde_json::to_value(ops::finding_checks()).unwrap();
    assert_eq!(json["checks"][0]["id"], CHECKS[0].id);
    assert_eq!(json["checks"][0]["severity"], "high");
    assert_eq!(json["categories"][0]["title"], owasp_title("NHI1"));
}

/// The demo looks like a partly governed organisation (issue 20): most
/// active identities have no finding at all, no single check flags most of
/// them, and a long tail of serious problems remains for the posture page
/// to rank.
#[test]
fn the_demo_is_mostly_clean_with_a_long_tail_of_serious_findings() {
    use custodian::model::{IdentityStatus, Severity};
    use custodian::views::InventoryQuery;
    let store = demo_s();
    let count = |has_findings: Option<bool>| {
        let q = InventoryQuery {
            statuses: vec![IdentityStatus::Active],
            has_findings,
            limit: 1,
            ..InventoryQuery::default()
        };
        ops::inventory(&store, &q, now()).unwrap().total
    };
    let (active, clean) = (count(None), count(Some(false)));
    assert!(
        clean * 100 >= active * 60,
        "{clean} of {active} active identities without a finding"
    );
    let counts = ops::finding_counts(&store).unwrap();
    for c in &counts {
        assert!(
            c.identities * 100 <= active * 25,
            "{} flags {} of {active}",
            c.check_id,
            c.identities
        );
    }
    let serious: i64 = counts
        .iter()
        .filter(|c| c.severity >= Severity::High)
        .map(|c| c.identities)
        .sum();
    assert!(
        serious >= active / 20,
        "a tail of serious findings: {serious}"
    );
}

/// The posture page's "fix first" list: the demo's findings ranked by
/// severity weight × (1 + blast score), each with the catalogue's fix and
/// the finding's own evidence.
#[test]
fn the_posture_ranks_what_to_fix_first_by_severity_and_blast_radius() {
    let store = demo_s();
    let view = ops::posture(&store, now()).unwrap();
    let fixes = &view.fix_first;
    assert_eq!(fixes.len(), 10);
    for w in fixes.windows(2) {
        assert!(w[0].priority >= w[1].priority, "{w:?}");
    }
    for f in fixes {
        let weight = custodian::posture::severity_weight(f.severity);
        assert!(
            (f.priority - weight * (1.0 + f.blast_score)).abs() < 1e-6,
            "{f:?}"
        );
        let check = CHECKS.iter().find(|c| c.id == f.check_id).unwrap();
        assert_eq!((f.title.as_str(), f.fix.as_str()), (check.title, check.fix));
        assert!(!f.evidence.is_empty(), "{f:?}");
        let detail = ops::identity(&store, f.identity_id, now()).unwrap();
        assert!(detail
            .findings
            .iter()
            .any(|x| x.check_id == f.check_id && x.evidence == f.evidence));
    }
    // Nothing ranks above the list's last entry that is left out: the
    // widest blast radius with a high finding is on it or below its floor.
    let floor = fixes[9].priority;
    let top = &view.top_blast[0];
    let top_detail = ops::identity(&store, top.identity_id, now()).unwrap();
    for f in &top_detail.findings {
        let p = custodian::posture::severity_weight(f.severity) * (1.0 + top.score);
        assert!(
            p < floor
                || fixes
                    .iter()
                    .any(|x| x.identity_id == top.identity_id && x.check_id == f.check_id),
            "{} {} ({p}) is missing",
            top.name,
            f.check_id
        );
    }
}

/// A test store holding the S demo organisation (the default seed).
fn demo_s() -> Store {
    let mut store = crate::util::test_store();
    ops::load_demo(
        &mut store,
        custodian::demo::DemoSize::S,
        custodian::demo::DEFAULT_SEED,
        now(),
    )
    .unwrap();
    store
}

/// A sync of a person, a resource and an identity's records by hand.
mod resync {
    use chrono::Duration;
    use custodian::model::*;
    use custodian::store::Store;
    use custodian::sync::records::*;

    use crate::util::{days_ago, now};

    /// What one version of the source says. `v2`: u1 has left, r1 became
    /// critical, svc-c lost its owner, svc-d got a secret without expiry and
    /// the account `shared` became a person too; svc-a and svc-b, whom the
    /// first two bear on, are themselves unchanged.
    fn fetch(v2: bool) -> Fetched {
        let mut f = Fetched::new(FetchMode::Full);
        let mut people = vec![("u1", PersonStatus::Active), ("u2", PersonStatus::Active)];
        if v2 {
            people[0].1 = PersonStatus::Departed;
            people.push(("shared", PersonStatus::Active));
        }
        for (id, status) in people {
            f.people.push(PersonRecord {
                external_id: id.into(),
                display_name: format!("Person {id}"),
                email: format!("{id}@x.test"),
                department: String::new(),
                title: String::new(),
                manager: None,
                status,
                left_at: None,
            });
        }
        for (id, owner) in [
            ("svc-a", Some("u1")),
            ("svc-b", Some("u2")),
            ("svc-c", (!v2).then_some("u2")),
            ("svc-d", Some("u2")),
            ("svc-e", Some("u2")),
            ("shared", Some("u2")),
        ] {
            f.identities.push(IdentityRecord {
                external_id: id.into(),
                name: id.into(),
                kind: IdentityKind::ServiceAccount,
                agent_class: None,
                status: IdentityStatus::Active,
                description: String::new(),
                owner: owner.map(|o| PersonKey::ExternalId(o.into())),
                builder: None,
                team: String::new(),
                environment: String::new(),
                registration: None,
                created_at: Some(days_ago(100)),
                last_used_at: Some(days_ago(1)),
            });
        }
        f.resources.push(ResourceRecord {
            external_id: "r1".into(),
            name: "ledger".into(),
            kind: "db".into(),
            sensitivity: if v2 {
                Sensitivity::Critical
            } else {
                Sensitivity::Low
            },
            environment: String::new(),
        });
        f.grants.push(GrantRecord {
            identity: "svc-b".into(),
            resource: "r1".into(),
            permission: "db:admin".into(),
            privilege: Privilege::Admin,
            high_consequence: false,
            last_used_at: Some(days_ago(1)),
        });
        let mut secret = |identity: &str, ext: &str, expires| {
            f.credentials.push(CredentialRecord {
                identity: identity.into(),
                external_id: ext.into(),
                kind: CredentialKind::ClientSecret,
                display_name: ext.into(),
                created_at: Some(days_ago(10)),
                expires_at: expires,
                last_rotated_at: None,
                last_used_at: Some(days_ago(1)),
            });
        };
        // Expires an hour after the second sync: only the clock changes it.
        secret("svc-e", "e-key", Some(now() + Duration::hours(2)));
        if v2 {
            secret("svc-d", "d-key", None);
        }
        f
    }

    fn sync(store: &mut Store, source: SourceId, f: &Fetched, at: chrono::DateTime<chrono::Utc>) {
        let run = store.begin_sync_run(source, at).unwrap();
        store.apply_fetch(source, run, f, at).unwrap();
    }

    /// Findings as (identity, check, evidence) and the inventory's roll-ups.
    fn snapshot(
        store: &Store,
    ) -> (
        Vec<(String, String, String)>,
        Vec<(String, i64, i64, i64, i64)>,
    ) {
        let mut st = store
            .raw_db()
            .prepare(
                "SELECT i.external_id, f.check_id, f.evidence FROM findings f JOIN identities i ON i.id = f.identity_id
                 ORDER BY 1, 2",
            )
            .unwrap();
        let f = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let mut st = store
            .raw_db()
            .prepare(
                "SELECT external_id, credential_count, grant_count, finding_count, max_severity
                 FROM identities ORDER BY external_id",
            )
            .unwrap();
        let r = st
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        (f, r)
    }

    fn has(
        s: &(
            Vec<(String, String, String)>,
            Vec<(String, i64, i64, i64, i64)>,
        ),
        who: &str,
        check: &str,
    ) -> bool {
        s.0.iter().any(|(i, c, _)| i == who && c == check)
    }

    /// A resync within the day evaluates only what its writes bear on (the
    /// owner who left, the resource that became critical, the account that
    /// became a person): the result is exactly what evaluating every
    /// identity gives. A sync a day later catches what the clock alone did.
    #[test]
    fn a_resync_evaluates_what_it_changed_exactly_as_a_full_refresh_would() {
        let mut store = crate::util::test_store();
        let src = store
            .add_source("test", "HR", &serde_json::json!({}), now())
            .unwrap();
        sync(&mut store, src, &fetch(false), now());
        let first = snapshot(&store);
        let later = now() + Duration::hours(1);
        sync(&mut store, src, &fetch(true), later);
        let resynced = snapshot(&store);
        for (who, check) in [
            ("svc-a", "owner-departed"),
            ("svc-b", "admin-on-critical"),
            ("svc-c", "no-owner"),
            ("svc-d", "secret-never-expires"),
            ("shared", "human-account-as-service"),
        ] {
            assert!(!has(&first, who, check), "{who} {check} before the change");
            assert!(
                has(&resynced, who, check),
                "{who} has no {check} after the resync: {:?}",
                resynced.0
            );
        }
        store.refresh_findings(later).unwrap();
        assert_eq!(
            resynced,
            snapshot(&store),
            "a resync's findings differ from a full refresh"
        );

        // The secret expired an hour after the resync, its identity unchanged.
        assert!(!has(&resynced, "svc-e", "secret-expired"));
        sync(&mut store, src, &fetch(true), now() + Duration::hours(25));
        assert!(
            has(&snapshot(&store), "svc-e", "secret-expired"),
            "the first sync a day later evaluates every identity"
        );
    }
}
