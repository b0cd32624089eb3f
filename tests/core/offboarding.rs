//! Offboarding cases and the identity lifecycle: detection from each kind of
//! source status, ownership across sources, transfer / retire / keep,
//! review items moving, orphan findings appearing and clearing, Custodian-held
//! owners surviving syncs, registration, mover flags, the manager's view.

use std::collections::HashMap;

use chrono::Duration;
use custodian::campaigns::*;
use custodian::model::*;
use custodian::offboarding::*;
use custodian::store::Store;
use custodian::ErrorCode;

use crate::util::{days_ago, now, OrgBuilder};

struct World {
    store: Store,
    p: HashMap<&'static str, i64>,
    i: HashMap<&'static str, i64>,
}

fn world() -> World {
    let mut b = OrgBuilder::new();
    b.org.sources.push(Source {
        id: SourceId(2),
        kind: "okta".into(),
        name: "Okta".into(),
    });
    let mia = b.person("Mia", PersonStatus::Active);
    let leo = b.person("Leo", PersonStatus::Departed);
    // Leo's record in the second source: still active there, same email.
    let leo2 = b.person("Leo Okta", PersonStatus::Active);
    b.org.people[(leo2.0 - 1) as usize].source = SourceId(2);
    b.org.people[(leo2.0 - 1) as usize].email = "leo@example.test".into();
    let sam = b.person("Sam", PersonStatus::Suspended);
    let tia = b.person("Tia", PersonStatus::Active);
    b.org.people[(tia.0 - 1) as usize].left_at = Some(days_ago(2));
    let uma = b.person("Uma", PersonStatus::Active);
    let vic = b.person("Vic", PersonStatus::Active);
    let wes = b.person("Wes", PersonStatus::Departed);
    let _ = wes;
    for p in [leo, leo2, vic, tia] {
        b.org.people[(p.0 - 1) as usize].manager = Some(mia);
    }

    let agent1 = b.identity("agent-1", IdentityKind::AiAgent, Some(leo));
    b.credential(agent1, CredentialKind::ClientSecret, 100, Some(200));
    let db = b.resource("orders-db", Sensitivity::Critical, "production");
    b.grant(agent1, db, Privilege::Admin);
    let svc2 = b.identity("svc-2", IdentityKind::ServiceAccount, Some(leo2));
    let bot3 = b.identity("bot-3", IdentityKind::Bot, Some(mia));
    b.identity_mut(bot3).builder = Some(leo);
    b.credential(bot3, CredentialKind::ApiToken, 10, Some(100));
    let bot4 = b.identity("bot-4", IdentityKind::Bot, Some(sam));
    let svc5 = b.identity("svc-5", IdentityKind::ServiceAccount, Some(tia));
    let svc6 = b.identity("svc-6", IdentityKind::ServiceAccount, Some(vic));
    let svc7 = b.identity("svc-7", IdentityKind::ServiceAccount, Some(uma));
    let svc8 = b.identity("svc-8", IdentityKind::ServiceAccount, Some(uma));
    // Builders only where the story says so (the builder defaults to the owner).
    for id in [svc2, bot4, svc5, svc6, svc7, svc8] {
        b.identity_mut(id).builder = None;
    }
    let mut store = crate::util::test_store();
    store.replace_org(&b.org, now()).unwrap();
    let p = HashMap::from([
        ("Mia", mia.0),
        ("Leo", leo.0),
        ("Leo Okta", leo2.0),
        ("Sam", sam.0),
        ("Tia", tia.0),
        ("Uma", uma.0),
        ("Vic", vic.0),
        ("Wes", wes.0),
    ]);
    let i = HashMap::from([
        ("agent-1", agent1.0),
        ("svc-2", svc2.0),
        ("bot-3", bot3.0),
        ("bot-4", bot4.0),
        ("svc-5", svc5.0),
        ("svc-6", svc6.0),
        ("svc-7", svc7.0),
        ("svc-8", svc8.0),
    ]);
    World { store, p, i }
}

fn case_names(store: &Store) -> Vec<(String, String)> {
    let mut v: Vec<_> = store
        .offboarding_cases(None, None)
        .unwrap()
        .into_iter()
        .map(|c| (c.person, c.reason))
        .collect();
    v.sort();
    v
}

fn findings(store: &Store, identity: i64) -> Vec<String> {
    let mut st = store
        .raw_db()
        .prepare("SELECT check_id FROM findings WHERE identity_id = ?1 ORDER BY check_id")
        .unwrap();
    let v = st
        .query_map([identity], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    v
}

fn owner_of(store: &Store, identity: i64) -> String {
    store
        .raw_db()
        .query_row("SELECT p.display_name FROM identities i JOIN people p ON p.id = i.owner_id WHERE i.id = ?1", [identity], |r| r.get(0))
        .unwrap()
}

#[test]
fn departures_are_detected_from_each_kind_of_status() {
    let mut w = world();
    let cases = case_names(&w.store);
    let reasons: HashMap<String, String> = cases.into_iter().collect();
    assert!(
        reasons["Leo"].starts_with("departed in Test source"),
        "{reasons:?}"
    );
    assert_eq!(reasons["Sam"], "suspended in Test source");
    assert!(reasons["Tia"].starts_with("leave date"), "{reasons:?}");
    assert!(!reasons.contains_key("Uma"), "active people have no case");
    assert!(
        !reasons.contains_key("Wes"),
        "a departure that leaves nothing behind opens no case"
    );
    assert!(
        !reasons.contains_key("Leo Okta"),
        "one case per human, not per record"
    );
    // Marked by hand, with a date.
    let case = w
        .store
        .mark_departing(
            w.p["Mia"],
            w.p["Vic"],
            "2026-12-15",
            "moving to a partner company",
            now(),
        )
        .unwrap();
    let case = w.store.offboarding_case(case.unwrap()).unwrap();
    assert!(
        case.summary
            .reason
            .contains("marked departing on 2026-12-15 by Mia: moving to a partner company"),
        "{}",
        case.summary.reason
    );
    assert_eq!(case.summary.manager.as_deref(), Some("Mia"));
    // Opening again is idempotent.
    assert_eq!(w.store.refresh_offboarding(now()).unwrap(), 0);
}

#[test]
fn a_case_lists_what_the_person_owns_or_built_across_sources_with_suggestions_and_previews() {
    let w = world();
    let c = w
        .store
        .case_of(w.p["Leo Okta"])
        .unwrap()
        .expect("Leo's case, found from either record");
    let case = w.store.offboarding_case(c).unwrap();
    let mut items: Vec<(String, String)> = case
        .items
        .iter()
        .map(|i| (i.name.clone(), i.relation.clone()))
        .collect();
    items.sort();
    assert_eq!(
        items,
        [
            ("agent-1".into(), "owner+builder".into()),
            ("bot-3".into(), "builder".into()),
            ("svc-2".into(), "owner".into())
        ]
    );
    let a = case.items.iter().find(|i| i.name == "agent-1").unwrap();
    assert_eq!(a.preview.high_consequence_grants, 1);
    assert_eq!(a.preview.sensitive_resources, ["orders-db"]);
    assert_eq!(
        a.preview.secrets.len(),
        1,
        "the client secret Leo could know"
    );
    assert!(
        a.preview
            .findings
            .iter()
            .any(|f| f.contains("owner has departed")),
        "{:?}",
        a.preview.findings
    );
    let names: Vec<&str> = a.suggestions.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names[0], "Mia", "the manager first");
    let uma = a
        .suggestions
        .iter()
        .find(|s| s.name == "Uma")
        .expect("the team's busiest other owner");
    assert!(
        uma.reason.contains("owns 2 other identities in Platform"),
        "{}",
        uma.reason
    );
    assert!(!names.contains(&"Leo Okta"), "never the departing person");
}

#[test]
fn transfer_keep_and_retire_apply_with_tasks_and_clear_orphan_findings() {
    let mut w = world();
    let c = w.store.case_of(w.p["Leo"]).unwrap().unwrap();
    let item = |w: &World, name: &str| {
        w.store
            .offboarding_case(c)
            .unwrap()
            .items
            .into_iter()
            .find(|i| i.name == name)
            .unwrap()
            .id
    };
    let (a1, s2, b3) = (item(&w, "agent-1"), item(&w, "svc-2"), item(&w, "bot-3"));
    let mia = w.p["Mia"];
    // Validation.
    let plan = |items: Vec<i64>, action, owner, until: Option<&str>, rotate| OffboardPlan {
        items,
        action,
        owner,
        until: until.map(str::to_string),
        rotate,
    };
    let e = w
        .store
        .plan_offboarding(
            mia,
            c,
            &plan(
                vec![a1],
                OffboardAction::Transfer,
                Some(w.p["Leo Okta"]),
                None,
                false,
            ),
            now(),
        )
        .unwrap_err();
    assert!(
        e.message.contains("cannot be the departing person"),
        "{}",
        e.message
    );
    let e = w
        .store
        .plan_offboarding(
            mia,
            c,
            &plan(
                vec![a1],
                OffboardAction::Transfer,
                Some(w.p["Sam"]),
                None,
                false,
            ),
            now(),
        )
        .unwrap_err();
    assert!(e.message.contains("suspended"), "{}", e.message);
    let e = w
        .store
        .plan_offboarding(
            mia,
            c,
            &plan(vec![s2], OffboardAction::Keep, Some(mia), None, false),
            now(),
        )
        .unwrap_err();
    assert!(e.message.contains("deadline"), "{}", e.message);
    let e = w
        .store
        .plan_offboarding(
            mia,
            c,
            &plan(
                vec![s2],
                OffboardAction::Keep,
                Some(mia),
                Some("2020-01-01"),
                false,
            ),
            now(),
        )
        .unwrap_err();
    assert!(e.message.contains("future"), "{}", e.message);

    assert!(findings(&w.store, w.i["agent-1"]).contains(&"owner-departed".to_string()));
    w.store
        .plan_offboarding(
            mia,
            c,
            &plan(
                vec![a1],
                OffboardAction::Transfer,
                Some(w.p["Uma"]),
                None,
                true,
            ),
            now(),
        )
        .unwrap();
    w.store
        .plan_offboarding(
            mia,
            c,
            &plan(
                vec![s2],
                OffboardAction::Keep,
                Some(mia),
                Some("2026-12-31"),
                false,
            ),
            now(),
        )
        .unwrap();
    w.store
        .plan_offboarding(
            mia,
            c,
            &plan(vec![b3], OffboardAction::Retire, None, None, false),
            now(),
        )
        .unwrap();
    let r = w.store.apply_offboarding(mia, c, now()).unwrap();
    assert_eq!(
        (r.transferred, r.kept, r.retired, r.closed),
        (1, 1, 1, true)
    );
    // transfer + rotate 1 secret, temporary owner, disable + revoke 1 credential.
    assert_eq!(r.tasks, 5);
    let tasks = w.store.offboarding_case(c).unwrap().tasks;
    let mut kinds: Vec<&str> = tasks.iter().map(|t| t.kind.as_str()).collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "disable_identity",
            "revoke_credential",
            "rotate_credential",
            "transfer_owner",
            "transfer_owner"
        ]
    );
    assert!(tasks
        .iter()
        .all(|t| t.origin == "offboarding" && t.case_id == Some(c)));

    assert_eq!(owner_of(&w.store, w.i["agent-1"]), "Uma");
    assert_eq!(owner_of(&w.store, w.i["svc-2"]), "Mia");
    assert!(
        !findings(&w.store, w.i["agent-1"]).contains(&"owner-departed".to_string()),
        "the orphan finding clears"
    );
    // The temporary owner's deadline passing makes svc-2 an orphan again.
    w.store
        .refresh_findings(now() + Duration::days(90))
        .unwrap();
    assert!(findings(&w.store, w.i["svc-2"]).contains(&"temporary-owner-expired".to_string()));

    let timeline = w.store.identity_timeline(w.i["agent-1"]).unwrap();
    assert!(
        timeline
            .iter()
            .any(|t| t.kind == "transferred" && t.summary.contains("Leo -> Uma")),
        "{timeline:?}"
    );
    assert!(
        timeline
            .iter()
            .any(|t| t.source == "task" && t.summary.contains("rotate")),
        "{timeline:?}"
    );
    // A closed case takes no more plans.
    assert!(w
        .store
        .plan_offboarding(
            mia,
            c,
            &plan(vec![a1], OffboardAction::Retire, None, None, false),
            now()
        )
        .is_err());
    assert!(w.store.verify_audit().unwrap().ok);
}

#[test]
fn pending_review_items_move_to_the_new_owner_or_the_fallback() {
    let mut w = world();
    let c = NewCampaign {
        name: "Services".into(),
        description: String::new(),
        scope: CampaignScope {
            kinds: vec![IdentityKind::ServiceAccount],
            ..Default::default()
        },
        granularity: Granularity::Identities,
        reviewer_rule: ReviewerRule::Owner,
        named_reviewer: None,
        fallback_reviewer: w.p["Mia"],
        second_reviewer: None,
        recurrence: Recurrence::None,
        start_at: None,
        due_at: (now() + Duration::days(10)).to_rfc3339(),
    };
    let camp = w.store.create_campaign(w.p["Mia"], &c, now()).unwrap();
    assert_eq!(
        w.store
            .review_queue(w.p["Vic"], &QueueQuery::default())
            .unwrap()
            .pending,
        1,
        "svc-6"
    );
    let case = w
        .store
        .mark_departing(w.p["Mia"], w.p["Vic"], "2026-11-30", "", now())
        .unwrap()
        .unwrap();
    let summary = &w
        .store
        .offboarding_cases(Some("open"), None)
        .unwrap()
        .into_iter()
        .find(|s| s.id == case)
        .unwrap();
    assert_eq!(summary.pending_reviews, 1);
    w.store
        .plan_offboarding(
            w.p["Mia"],
            case,
            &OffboardPlan {
                items: vec![],
                action: OffboardAction::Transfer,
                owner: Some(w.p["Uma"]),
                until: None,
                rotate: false,
            },
            now(),
        )
        .unwrap();
    let r = w.store.apply_offboarding(w.p["Mia"], case, now()).unwrap();
    assert_eq!(r.reviews_moved, 1);
    let q = w
        .store
        .review_queue(
            w.p["Uma"],
            &QueueQuery {
                campaign: Some(camp),
                ..Default::default()
            },
        )
        .unwrap();
    let moved = q
        .items
        .iter()
        .find(|i| i.subject == "svc-6")
        .expect("svc-6's review went with it");
    assert!(
        moved.reviewer_reason.contains("Vic is leaving"),
        "{}",
        moved.reviewer_reason
    );
    assert_eq!(
        w.store
            .review_queue(w.p["Vic"], &QueueQuery::default())
            .unwrap()
            .pending,
        0
    );
}

#[test]
fn the_managers_view_shows_reports_departures_and_decisions_waiting() {
    let w = world();
    let t = w.store.team(w.p["Mia"]).unwrap();
    let mut names: Vec<&str> = t.members.iter().map(|m| m.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["Leo", "Leo Okta", "Tia", "Vic"]);
    let leo = t.members.iter().find(|m| m.name == "Leo").unwrap();
    assert!(leo.case_id.is_some());
    assert_eq!(leo.status, PersonStatus::Departed);
    let mut cases: Vec<&str> = t.cases.iter().map(|c| c.person.as_str()).collect();
    cases.sort();
    assert_eq!(
        cases,
        ["Leo", "Tia"],
        "Sam has no manager: his case has no decider yet"
    );
    assert_eq!(t.undecided_items, 4, "3 of Leo's, 1 of Tia's");
}

#[test]
fn registration_records_the_owner_and_clears_the_unregistered_finding() {
    let mut w = world();
    let agent: i64 = w.i["agent-1"];
    w.store
        .raw_db()
        .execute(
            "UPDATE identities SET registered = 0 WHERE id = ?1",
            [agent],
        )
        .unwrap();
    w.store.refresh_findings(now()).unwrap();
    assert!(findings(&w.store, agent).contains(&"unregistered-agent".to_string()));
    let reg = Registration {
        purpose: "Triage incoming orders".into(),
        agent_class: Some(AgentClass::DigitalWorker),
        owner: Some(w.p["Uma"]),
        builder: None,
        data_touched: "order records (PII: names, addresses)".into(),
        intended_blast_radius: "reads and updates order status; never refunds".into(),
        review_interval_days: Some(90),
    };
    let e = w
        .store
        .register_identity(
            w.p["Mia"],
            agent,
            &Registration {
                purpose: " ".into(),
                ..reg.clone()
            },
            now(),
        )
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidInput);
    w.store
        .register_identity(w.p["Mia"], agent, &reg, now())
        .unwrap();
    let d = w.store.identity_detail(IdentityId(agent), now()).unwrap();
    assert!(d.registered);
    assert_eq!(d.purpose, "Triage incoming orders");
    assert_eq!(d.owner.unwrap().display_name, "Uma");
    let f = findings(&w.store, agent);
    assert!(
        !f.contains(&"unregistered-agent".to_string())
            && !f.contains(&"owner-departed".to_string()),
        "{f:?}"
    );
    let data: String = w
        .store
        .raw_db()
        .query_row(
            "SELECT data_touched FROM identities WHERE id = ?1",
            [agent],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(data, "order records (PII: names, addresses)");
    assert!(w
        .store
        .identity_timeline(agent)
        .unwrap()
        .iter()
        .any(|t| t.kind == "registered"));
}

#[test]
fn retiring_produces_deprovision_tasks() {
    let mut w = world();
    assert!(w
        .store
        .retire_identity(w.p["Mia"], w.i["bot-3"], "", now())
        .is_err());
    let n = w
        .store
        .retire_identity(
            w.p["Mia"],
            w.i["bot-3"],
            "replaced by the new pipeline",
            now(),
        )
        .unwrap();
    assert_eq!(n, 2, "disable + revoke its one credential");
    let tasks = w.store.tasks(None, Some(TaskStatus::Open)).unwrap();
    assert!(tasks.iter().any(|t| t.kind == TaskKind::DisableIdentity
        && t.identity == "bot-3"
        && t.origin == "lifecycle"));
    let csv = custodian::ops::tasks_export(&w.store, Some(TaskStatus::Open), "csv").unwrap();
    assert!(
        csv.lines().count() == 3 && csv.contains("bot-3: disable in Test source"),
        "{csv}"
    );
}

/// A synced source: Custodian-held owners survive resyncs until the source
/// agrees, and new access flags the identity for a permission review.
#[test]
fn held_owners_survive_syncs_and_new_access_raises_a_review_flag() {
    use custodian::sync::records::*;
    let mut store = crate::util::test_store();
    let src = store
        .add_source("test", "HR", &serde_json::json!({}), now())
        .unwrap();
    let fetch = |owner: &str, grants: usize| {
        let mut f = Fetched::new(FetchMode::Full);
        for (id, name, status) in [
            ("u1", "Old Owner", PersonStatus::Departed),
            ("u2", "New Owner", PersonStatus::Active),
        ] {
            f.people.push(PersonRecord {
                external_id: id.into(),
                display_name: name.into(),
                email: format!("{id}@x.test"),
                department: String::new(),
                title: String::new(),
                manager: None,
                status,
                left_at: None,
            });
        }
        f.identities.push(IdentityRecord {
            external_id: "svc".into(),
            name: "svc".into(),
            kind: IdentityKind::ServiceAccount,
            agent_class: None,
            status: IdentityStatus::Active,
            description: String::new(),
            owner: Some(PersonKey::ExternalId(owner.into())),
            builder: None,
            team: String::new(),
            environment: String::new(),
            registration: None,
            created_at: Some(days_ago(100)),
            last_used_at: Some(days_ago(1)),
        });
        for g in 0..grants {
            f.resources.push(ResourceRecord {
                external_id: format!("r{g}"),
                name: format!("bucket-{g}"),
                kind: "s3".into(),
                sensitivity: Sensitivity::Low,
                environment: String::new(),
            });
            f.grants.push(GrantRecord {
                identity: "svc".into(),
                resource: format!("r{g}"),
                permission: "s3:GetObject".into(),
                privilege: Privilege::Read,
                high_consequence: false,
                last_used_at: None,
            });
        }
        f
    };
    let sync = |store: &mut Store, f: &Fetched| {
        let run = store.begin_sync_run(src, now()).unwrap();
        store.apply_fetch(src, run, f, now()).unwrap()
    };
    sync(&mut store, &fetch("u1", 1));
    let old = store.resolve_person("u1@x.test").unwrap();
    let new = store.resolve_person("u2@x.test").unwrap();
    let svc = store.resolve_identity("svc").unwrap().0;
    let case = store
        .case_of(old)
        .unwrap()
        .expect("the departed owner's case opened at sync");
    store
        .plan_offboarding(
            new,
            case,
            &OffboardPlan {
                items: vec![],
                action: OffboardAction::Transfer,
                owner: Some(new),
                until: None,
                rotate: false,
            },
            now(),
        )
        .unwrap();
    store.apply_offboarding(new, case, now()).unwrap();
    assert_eq!(owner_of(&store, svc), "New Owner");

    // The source still says u1: Custodian's decision holds, and no mover event is invented.
    let report = sync(&mut store, &fetch("u1", 1));
    assert_eq!(owner_of(&store, svc), "New Owner");
    assert_eq!(report.movers, 0);
    let held: i64 = store
        .raw_db()
        .query_row("SELECT count(*) FROM owner_overrides", [], |r| r.get(0))
        .unwrap();
    assert_eq!(held, 1);
    // The source catches up: the override is dropped.
    sync(&mut store, &fetch("u2", 1));
    let held: i64 = store
        .raw_db()
        .query_row("SELECT count(*) FROM owner_overrides", [], |r| r.get(0))
        .unwrap();
    assert_eq!(held, 0);
    assert_eq!(owner_of(&store, svc), "New Owner");

    // A new grant flags it; confirming clears the flag and its finding.
    assert!(!findings(&store, svc).contains(&"access-changed-since-review".to_string()));
    sync(&mut store, &fetch("u2", 2));
    assert!(findings(&store, svc).contains(&"access-changed-since-review".to_string()));
    assert!(store
        .clear_review_flag(new, svc, "bucket-1 is expected", now())
        .is_ok());
    assert!(!findings(&store, svc).contains(&"access-changed-since-review".to_string()));
    assert!(store.clear_review_flag(new, svc, "again", now()).is_err());
}

/// Findings (identity, check, severity, evidence) and roll-ups (identity,
/// credentials, oldest credential, grants, findings, max severity).
type Snapshot = (
    Vec<(i64, String, i64, String)>,
    Vec<(i64, i64, Option<i64>, i64, i64, i64)>,
);

/// Applying a case re-evaluates only the case's identities; the result must
/// be exactly what re-evaluating the whole cache gives (findings and the
/// inventory's roll-ups), for transfers, temporary keeps and retirements.
#[test]
fn applying_a_case_leaves_findings_exactly_as_a_full_refresh_would() {
    use custodian::demo::{DemoSize, DEFAULT_SEED};
    let mut store = crate::util::test_store();
    custodian::ops::load_demo(&mut store, DemoSize::S, DEFAULT_SEED, now()).unwrap();
    let (person, manager): (i64, i64) = store
        .raw_db()
        .query_row(
            "SELECT p.id, p.manager_id FROM people p JOIN people m ON m.id = p.manager_id
             WHERE m.status = 'active'
             ORDER BY (SELECT count(*) FROM identities i WHERE i.owner_id = p.id OR i.builder_id = p.id) DESC, p.id LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let case = match store.case_of(person).unwrap() {
        Some(c) => c,
        None => store
            .mark_departing(
                manager,
                person,
                &now().format("%Y-%m-%d").to_string(),
                "test",
                now(),
            )
            .unwrap()
            .unwrap(),
    };
    let items: Vec<i64> = store
        .offboarding_case(case)
        .unwrap()
        .items
        .iter()
        .map(|i| i.id)
        .collect();
    assert!(items.len() >= 3, "the top owner has {} items", items.len());
    let plan = |items: Vec<i64>, action, owner, until: Option<&str>| OffboardPlan {
        items,
        action,
        owner,
        until: until.map(str::to_string),
        rotate: true,
    };
    store
        .plan_offboarding(
            manager,
            case,
            &plan(vec![items[0]], OffboardAction::Retire, None, None),
            now(),
        )
        .unwrap();
    let soon = (now() + Duration::days(10)).format("%Y-%m-%d").to_string();
    store
        .plan_offboarding(
            manager,
            case,
            &plan(
                vec![items[1]],
                OffboardAction::Keep,
                Some(manager),
                Some(&soon),
            ),
            now(),
        )
        .unwrap();
    store
        .plan_offboarding(
            manager,
            case,
            &plan(
                items[2..].to_vec(),
                OffboardAction::Transfer,
                Some(manager),
                None,
            ),
            now(),
        )
        .unwrap();

    let snapshot = |store: &Store| -> Snapshot {
        let mut st = store
            .raw_db()
            .prepare("SELECT identity_id, check_id, severity, evidence FROM findings ORDER BY identity_id, check_id")
            .unwrap();
        let f = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let mut st = store
            .raw_db()
            .prepare(
                "SELECT id, credential_count, oldest_credential_at, grant_count, finding_count, max_severity
                 FROM identities ORDER BY id",
            )
            .unwrap();
        let r = st
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        (f, r)
    };
    let before = snapshot(&store);
    let report = store.apply_offboarding(manager, case, now()).unwrap();
    assert_eq!((report.retired, report.kept), (1, 1));
    assert!(report.transferred >= 1);
    let applied = snapshot(&store);
    assert_ne!(
        applied.0, before.0,
        "the apply changed no finding: the test proves nothing"
    );
    store.refresh_findings(now()).unwrap();
    let full = snapshot(&store);
    assert_eq!(
        applied.0, full.0,
        "findings after a scoped refresh differ from a full one"
    );
    assert_eq!(
        applied.1, full.1,
        "roll-ups after a scoped refresh differ from a full one"
    );
}

#[test]
fn new_acquisitions_join_an_open_case_and_never_a_closed_one() {
    let mut w = world();
    let leo = w.store.case_of(w.p["Leo"]).unwrap().unwrap();
    let sam = w.store.case_of(w.p["Sam"]).unwrap().unwrap();
    let db = w.store.raw_db();
    // Between syncs: svc-7 passes to Leo's second record, Sam's case is
    // closed and svc-8 then passes to Sam, and Leo's second record departs too.
    db.execute(
        "UPDATE identities SET owner_id = ?1 WHERE id = ?2",
        custodian::store::db::params![w.p["Leo Okta"], w.i["svc-7"]],
    )
    .unwrap();
    db.execute(
        "UPDATE offboarding_cases SET status = 'closed' WHERE id = ?1",
        [sam.0],
    )
    .unwrap();
    db.execute(
        "UPDATE identities SET owner_id = ?1, builder_id = ?1 WHERE id = ?2",
        custodian::store::db::params![w.p["Sam"], w.i["svc-8"]],
    )
    .unwrap();
    db.execute(
        "UPDATE people SET status = 'departed' WHERE id = ?1",
        [w.p["Leo Okta"]],
    )
    .unwrap();
    assert_eq!(
        w.store.refresh_offboarding(now()).unwrap(),
        0,
        "no new case: both of Leo's records share one"
    );
    let items = |w: &World, c| -> Vec<(String, String)> {
        let mut v: Vec<_> = w
            .store
            .offboarding_case(c)
            .unwrap()
            .items
            .into_iter()
            .map(|i| (i.name, i.relation))
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        items(&w, leo),
        [
            ("agent-1".into(), "owner+builder".into()),
            ("bot-3".into(), "builder".into()),
            ("svc-2".into(), "owner".into()),
            ("svc-7".into(), "owner".into())
        ],
        "the acquisition joins the open case of either record"
    );
    assert_eq!(
        items(&w, sam),
        [("bot-4".into(), "owner".into())],
        "a closed case takes no new items"
    );
    assert!(
        !case_names(&w.store).iter().any(|(p, _)| p == "Leo Okta"),
        "one case per human, not per record"
    );
    // Idempotent: a second pass adds nothing.
    w.store.refresh_offboarding(now()).unwrap();
    assert_eq!(items(&w, leo).len(), 4);
}
