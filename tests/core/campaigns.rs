//! Access-review campaigns end to end on hand-built organisations and on the
//! demo organisation: reviewer rules and fallbacks, decisions and their
//! rules, reassignment, escalation, closing with each policy, tasks,
//! evidence, second stage, recurrence, vanished access, durability.

use std::collections::HashMap;

use chrono::Duration;
use custodian::campaigns::*;
use custodian::model::*;
use custodian::store::Store;
use custodian::ErrorCode;

use crate::util::{days_ago, now, OrgBuilder};

/// People and identities with every reviewer situation:
/// - agent-a: owner Cara, built by Ben; an admin grant on db-1 (owned by Fay),
///   a read grant on logs (no owner) unused for 200 days, a 500-day-old key.
/// - agent-b: owner and builder Dan, who departed.
/// - svc-c: no owner; an expired credential.
/// - svc-d: owner and builder Cara (self-review → her manager Ben).
/// - bot-e: owner Eve, suspended.
struct World {
    store: Store,
    p: HashMap<&'static str, i64>,
}

fn world() -> World {
    let mut b = OrgBuilder::new();
    let ana = b.person("Ana", PersonStatus::Active);
    let ben = b.person("Ben", PersonStatus::Active);
    let cara = b.person("Cara", PersonStatus::Active);
    let dan = b.person("Dan", PersonStatus::Departed);
    let eve = b.person("Eve", PersonStatus::Suspended);
    let fay = b.person("Fay", PersonStatus::Active);
    let gus = b.person("Gus", PersonStatus::Active);
    b.org.people[(cara.0 - 1) as usize].manager = Some(ben);
    b.org.people[(dan.0 - 1) as usize].manager = Some(ben);
    b.org.people[(ben.0 - 1) as usize].manager = Some(ana);

    let a = b.identity("agent-a", IdentityKind::AiAgent, Some(cara));
    b.identity_mut(a).builder = Some(ben);
    let db = b.resource("db-1", Sensitivity::Critical, "production");
    b.org.resources[(db.0 - 1) as usize].owner = Some(fay);
    let logs = b.resource("logs", Sensitivity::Low, "production");
    b.grant(a, db, Privilege::Admin);
    b.grant(a, logs, Privilege::Read);
    b.org.grants[1].last_used_at = Some(days_ago(200));
    b.credential(a, CredentialKind::AccessKey, 500, None);

    let bb = b.identity("agent-b", IdentityKind::AiAgent, Some(dan));
    let _ = bb;
    let c = b.identity("svc-c", IdentityKind::ServiceAccount, None);
    b.credential(c, CredentialKind::ClientSecret, 100, Some(-5));
    let _d = b.identity("svc-d", IdentityKind::ServiceAccount, Some(cara));
    let _e = b.identity("bot-e", IdentityKind::Bot, Some(eve));

    let mut store = crate::util::test_store();
    store.replace_org(&b.org, now()).unwrap();
    let p = HashMap::from([
        ("Ana", ana.0),
        ("Ben", ben.0),
        ("Cara", cara.0),
        ("Dan", dan.0),
        ("Eve", eve.0),
        ("Fay", fay.0),
        ("Gus", gus.0),
    ]);
    World { store, p }
}

fn new_campaign(rule: ReviewerRule, fallback: i64) -> NewCampaign {
    NewCampaign {
        name: "Q4 agent certification".into(),
        description: "All agents and service accounts".into(),
        scope: CampaignScope::default(),
        granularity: Granularity::All,
        reviewer_rule: rule,
        named_reviewer: None,
        fallback_reviewer: fallback,
        second_reviewer: None,
        recurrence: Recurrence::None,
        start_at: None,
        due_at: (now() + Duration::days(14)).to_rfc3339(),
    }
}

fn all_items(store: &Store, campaign: CampaignId) -> Vec<ReviewItem> {
    store
        .campaign_items(
            campaign,
            &QueueQuery {
                include_decided: true,
                limit: 1000,
                ..Default::default()
            },
        )
        .unwrap()
        .items
}

/// (subject, item type, detail prefix) → reviewer name and reason.
fn reviewers(store: &Store, campaign: CampaignId) -> Vec<(String, String, String)> {
    let mut v: Vec<_> = all_items(store, campaign)
        .into_iter()
        .map(|i| {
            (
                format!("{} {}", i.subject, i.item_type.as_str())
                    + &if i.item_type == ItemType::Grant {
                        format!(" {}", i.detail.split(' ').nth(2).unwrap_or(""))
                    } else {
                        String::new()
                    },
                i.reviewer.unwrap_or_default(),
                i.reviewer_reason,
            )
        })
        .collect();
    v.sort();
    v
}

fn item(
    store: &Store,
    campaign: CampaignId,
    subject: &str,
    t: ItemType,
    detail_has: &str,
) -> ReviewItem {
    all_items(store, campaign)
        .into_iter()
        .find(|i| i.subject == subject && i.item_type == t && i.detail.contains(detail_has))
        .unwrap_or_else(|| panic!("no {t:?} item for {subject} with '{detail_has}'"))
}

#[test]
fn owner_rule_resolves_reviewers_with_fallbacks_and_no_self_review() {
    let mut w = world();
    let id = w
        .store
        .create_campaign(
            w.p["Ana"],
            &new_campaign(ReviewerRule::Owner, w.p["Gus"]),
            now(),
        )
        .unwrap();
    let r = reviewers(&w.store, id);
    let get = |k: &str| {
        r.iter()
            .find(|(s, _, _)| s == k)
            .unwrap_or_else(|| panic!("{k} in {r:?}"))
            .clone()
    };
    assert_eq!(get("agent-a identity").1, "Cara");
    assert_eq!(get("agent-a identity").2, "owner");
    assert_eq!(get("agent-a grant db-1").1, "Cara");
    assert_eq!(get("agent-a credential").1, "Cara");
    let (_, who, why) = get("agent-b identity");
    assert_eq!(who, "Gus");
    assert!(why.contains("Dan is departed"), "{why}");
    let (_, who, why) = get("svc-c identity");
    assert_eq!((who.as_str(), why.as_str()), ("Gus", "fallback: no owner"));
    let (_, who, why) = get("svc-d identity");
    assert_eq!(who, "Ben", "Cara built svc-d: her manager reviews it");
    assert!(why.contains("no self-review"), "{why}");
    let (_, who, why) = get("bot-e identity");
    assert_eq!(who, "Gus");
    assert!(why.contains("suspended"), "{why}");

    // 5 identities + 2 grants + 2 credentials.
    let c = w.store.campaign(id, now()).unwrap();
    assert_eq!(
        (c.items, c.decided, c.status),
        (9, 0, CampaignStatus::Active)
    );
}

#[test]
fn other_rules_manager_resource_owner_and_named() {
    let mut w = world();
    let get = |r: &Vec<(String, String, String)>, k: &str| {
        r.iter().find(|(s, _, _)| s == k).unwrap().clone()
    };
    let ro = w
        .store
        .create_campaign(
            w.p["Ana"],
            &new_campaign(ReviewerRule::ResourceOwner, w.p["Gus"]),
            now(),
        )
        .unwrap();
    let r = reviewers(&w.store, ro);
    assert_eq!(
        get(&r, "agent-a grant db-1").1,
        "Fay",
        "the data owner reviews grants on db-1"
    );
    let (_, who, why) = get(&r, "agent-a grant logs");
    assert_eq!(who, "Gus");
    assert_eq!(why, "fallback: no resource owner");
    assert_eq!(
        get(&r, "agent-a identity").1,
        "Cara",
        "identity items go to the identity's owner"
    );

    let mut named = new_campaign(ReviewerRule::Named, w.p["Gus"]);
    named.named_reviewer = Some(w.p["Ben"]);
    let n = w.store.create_campaign(w.p["Ana"], &named, now()).unwrap();
    let r = reviewers(&w.store, n);
    assert_eq!(get(&r, "svc-c identity").1, "Ben");
    let (_, who, why) = get(&r, "agent-a identity");
    assert_eq!(who, "Ana", "Ben built agent-a: his manager Ana reviews it");
    assert!(why.contains("no self-review"), "{why}");
}

#[test]
fn owner_manager_rule_routes_to_the_managers() {
    let mut w = world();
    let m = w
        .store
        .create_campaign(
            w.p["Ana"],
            &new_campaign(ReviewerRule::OwnerManager, w.p["Gus"]),
            now(),
        )
        .unwrap();
    let r = reviewers(&w.store, m);
    let get = |k: &str| r.iter().find(|(s, _, _)| s == k).unwrap().clone();
    // agent-a: owner Cara → manager Ben, but Ben built it → Ben's manager Ana.
    assert_eq!(get("agent-a identity").1, "Ana");
    // agent-b: owner Dan (departed) → his manager Ben is still active and did not build it.
    assert_eq!(get("agent-b identity").1, "Ben");
    // svc-d: owner Cara → Ben.
    assert_eq!(get("svc-d identity").1, "Ben");
    // bot-e: owner Eve has no manager → fallback.
    let (_, who, why) = get("bot-e identity");
    assert_eq!(who, "Gus");
    assert_eq!(why, "fallback: no owner's manager");
}

#[test]
fn creation_is_validated() {
    let mut w = world();
    let e = w
        .store
        .create_campaign(
            w.p["Ana"],
            &new_campaign(ReviewerRule::Owner, w.p["Dan"]),
            now(),
        )
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidInput);
    assert!(
        e.message.contains("fallback reviewer Dan is departed"),
        "{}",
        e.message
    );
    let mut c = new_campaign(ReviewerRule::Owner, w.p["Gus"]);
    c.due_at = (now() - Duration::days(1)).to_rfc3339();
    assert!(w
        .store
        .create_campaign(w.p["Ana"], &c, now())
        .unwrap_err()
        .message
        .contains("due date"));
    let mut c = new_campaign(ReviewerRule::Named, w.p["Gus"]);
    c.named_reviewer = None;
    assert!(w.store.create_campaign(w.p["Ana"], &c, now()).is_err());
    let mut c = new_campaign(ReviewerRule::Owner, w.p["Gus"]);
    c.due_at = "next friday".into();
    assert!(w
        .store
        .create_campaign(w.p["Ana"], &c, now())
        .unwrap_err()
        .message
        .contains("not a date"));
    assert_eq!(
        w.store.campaigns(now()).unwrap().len(),
        0,
        "nothing half-created"
    );
}

#[test]
fn recommendations_carry_their_reasons() {
    let mut w = world();
    let id = w
        .store
        .create_campaign(
            w.p["Ana"],
            &new_campaign(ReviewerRule::Owner, w.p["Gus"]),
            now(),
        )
        .unwrap();
    let logs = item(&w.store, id, "agent-a", ItemType::Grant, "logs");
    assert_eq!(logs.recommendation, Decision::Revoke);
    assert!(
        logs.reasons
            .contains(&"grant not used for 200 days".to_string()),
        "{:?}",
        logs.reasons
    );
    let db = item(&w.store, id, "agent-a", ItemType::Grant, "db-1");
    assert_eq!(
        (db.recommendation, db.risk.as_str()),
        (Decision::Keep, "high")
    );
    let key = item(&w.store, id, "agent-a", ItemType::Credential, "");
    assert_eq!(key.recommendation, Decision::Rotate);
    assert!(
        key.reasons
            .iter()
            .any(|r| r.contains("500 days since created")),
        "{:?}",
        key.reasons
    );
    let expired = item(&w.store, id, "svc-c", ItemType::Credential, "");
    assert_eq!(expired.recommendation, Decision::Revoke);
    let b = item(&w.store, id, "agent-b", ItemType::Identity, "");
    assert_eq!(
        (b.recommendation, b.risk.as_str()),
        (Decision::Reassign, "high")
    );
}

#[test]
fn decisions_follow_the_rules_and_a_bad_batch_records_nothing() {
    let mut w = world();
    let id = w
        .store
        .create_campaign(
            w.p["Ana"],
            &new_campaign(ReviewerRule::Owner, w.p["Gus"]),
            now(),
        )
        .unwrap();
    let cara = w.p["Cara"];
    let queue = w.store.review_queue(cara, &QueueQuery::default()).unwrap();
    assert_eq!(
        queue.pending, 4,
        "agent-a: identity, two grants, one credential"
    );
    let logs = item(&w.store, id, "agent-a", ItemType::Grant, "logs").id;
    let db = item(&w.store, id, "agent-a", ItemType::Grant, "db-1").id;
    let ident = item(&w.store, id, "agent-a", ItemType::Identity, "").id;
    let svc_c = item(&w.store, id, "svc-c", ItemType::Identity, "").id;
    let d = |items: Vec<ReviewItemId>, decision: Decision, j: &str| DecisionInput {
        items,
        decision,
        justification: j.into(),
        new_owner: None,
        follow_recommendation: false,
    };
    let err = w
        .store
        .decide(cara, &d(vec![logs], Decision::Revoke, ""), now())
        .unwrap_err();
    assert!(
        err.message.contains("justification is required"),
        "{}",
        err.message
    );
    let err = w
        .store
        .decide(cara, &d(vec![db], Decision::Keep, " "), now())
        .unwrap_err();
    assert!(err.message.contains("high risk"), "{}", err.message);
    let err = w
        .store
        .decide(cara, &d(vec![logs], Decision::Retire, "x"), now())
        .unwrap_err();
    assert!(
        err.message.contains("does not apply to a grant"),
        "{}",
        err.message
    );
    let err = w
        .store
        .decide(cara, &d(vec![svc_c], Decision::Keep, "fine"), now())
        .unwrap_err();
    assert!(
        err.message.contains("assigned to Gus, not to Cara"),
        "{}",
        err.message
    );
    // A batch with one bad item records nothing.
    let err = w
        .store
        .decide(
            cara,
            &d(vec![logs, svc_c], Decision::Revoke, "unused"),
            now(),
        )
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidInput);
    assert!(item(&w.store, id, "agent-a", ItemType::Grant, "logs")
        .decision
        .is_none());

    assert_eq!(
        w.store
            .decide(
                cara,
                &d(vec![logs], Decision::Revoke, "not used since spring"),
                now()
            )
            .unwrap(),
        1
    );
    assert_eq!(
        w.store
            .decide(
                cara,
                &d(vec![db, ident], Decision::Keep, "needed for billing"),
                now()
            )
            .unwrap(),
        2
    );
    let logs_item = item(&w.store, id, "agent-a", ItemType::Grant, "logs");
    assert_eq!(logs_item.decision, Some(Decision::Revoke));
    assert_eq!(logs_item.decided_by.as_deref(), Some("Cara"));
    assert_eq!(logs_item.justification, "not used since spring");
    // Revising a decision keeps the history.
    w.store
        .decide(
            cara,
            &d(vec![logs], Decision::Keep, "reconsidered: monthly job"),
            now(),
        )
        .unwrap();
    let history = w.store.item_history(logs).unwrap();
    assert_eq!(history.iter().filter(|e| e.kind == "decision").count(), 2);
    assert_eq!(
        w.store
            .review_queue(cara, &QueueQuery::default())
            .unwrap()
            .pending,
        1
    );

    // Reassigning needs an active new owner.
    let mut r = d(
        vec![item(&w.store, id, "agent-b", ItemType::Identity, "").id],
        Decision::Reassign,
        "Dan left",
    );
    let err = w.store.decide(w.p["Gus"], &r, now()).unwrap_err();
    assert!(
        err.message.contains("needs the new owner"),
        "{}",
        err.message
    );
    r.new_owner = Some(w.p["Eve"]);
    assert!(w
        .store
        .decide(w.p["Gus"], &r, now())
        .unwrap_err()
        .message
        .contains("suspended"));
    r.new_owner = Some(w.p["Cara"]);
    w.store.decide(w.p["Gus"], &r, now()).unwrap();

    let v = w.store.verify_audit().unwrap();
    assert!(v.ok, "{v:?}");
    assert!(
        v.entries >= 6,
        "create, launch and each decision are audited: {v:?}"
    );
}

#[test]
fn reassign_delegate_and_escalate() {
    let mut w = world();
    let id = w
        .store
        .create_campaign(
            w.p["Ana"],
            &new_campaign(ReviewerRule::Owner, w.p["Gus"]),
            now(),
        )
        .unwrap();
    let svc_d = item(&w.store, id, "svc-d", ItemType::Identity, "").id;
    // Only the campaign owner or the item's reviewer may move an item.
    let err = w
        .store
        .reassign_reviewer(w.p["Fay"], &[svc_d], w.p["Fay"], "I know it", now())
        .unwrap_err();
    assert!(
        err.message.contains("only the campaign owner"),
        "{}",
        err.message
    );
    // Never to the builder.
    let err = w
        .store
        .reassign_reviewer(w.p["Ana"], &[svc_d], w.p["Cara"], "owner knows best", now())
        .unwrap_err();
    assert!(err.message.contains("no self-review"), "{}", err.message);
    // Never to someone inactive.
    assert!(w
        .store
        .reassign_reviewer(w.p["Ana"], &[svc_d], w.p["Dan"], "x", now())
        .is_err());
    // The reviewer delegates.
    w.store
        .reassign_reviewer(
            w.p["Ben"],
            &[svc_d],
            w.p["Fay"],
            "Fay runs that service now",
            now(),
        )
        .unwrap();
    let it = item(&w.store, id, "svc-d", ItemType::Identity, "");
    assert_eq!(it.reviewer.as_deref(), Some("Fay"));
    assert!(it.reviewer_reason.contains("Fay runs that service now"));
    // The owner escalates everything Cara has not decided to the fallback.
    let n = w
        .store
        .escalate(w.p["Ana"], id, Some(w.p["Cara"]), now())
        .unwrap();
    assert_eq!(n, 4);
    assert_eq!(
        w.store
            .review_queue(w.p["Cara"], &QueueQuery::default())
            .unwrap()
            .pending,
        0
    );
    assert_eq!(
        item(&w.store, id, "agent-a", ItemType::Identity, "")
            .reviewer
            .as_deref(),
        Some("Gus")
    );
    // Reminders are recorded per reviewer.
    w.store
        .record_reminder(w.p["Ana"], id, w.p["Gus"], now())
        .unwrap();
    let progress = w
        .store
        .campaign_progress(id, now() + Duration::days(12))
        .unwrap();
    let gus = progress
        .by_reviewer
        .iter()
        .find(|r| r.reviewer == "Gus")
        .unwrap();
    assert!(gus.last_reminded_at.is_some());
    assert!(gus.reminder_due, "due in two days with pending items");
    assert_eq!(progress.campaign.overdue, 0);
    assert_eq!(
        w.store
            .campaign_progress(id, now() + Duration::days(15))
            .unwrap()
            .campaign
            .overdue,
        9
    );

    // The owner delegates what Gus holds to Fay: everything but what Fay
    // built; only the owner may, with a reason, to someone else.
    let pending = |w: &World, who: &str| {
        w.store
            .review_queue(w.p[who], &QueueQuery::default())
            .unwrap()
            .pending
    };
    let (gus_before, fay_before) = (pending(&w, "Gus"), pending(&w, "Fay"));
    assert!(gus_before > 0);
    let fay_built: i64 = w
        .store
        .raw_db()
        .query_row(
            "SELECT count(*) FROM campaign_items ci JOIN identities i ON i.id = ci.identity_id
             WHERE ci.campaign_id = ?1 AND ci.reviewer_id = ?2 AND ci.decision IS NULL AND i.builder_id = ?3",
            [id.0, w.p["Gus"], w.p["Fay"]],
            |r| r.get(0),
        )
        .unwrap();
    let err = w
        .store
        .delegate(w.p["Ben"], id, w.p["Gus"], w.p["Fay"], "x", now())
        .unwrap_err();
    assert!(
        err.message.contains("only the campaign owner"),
        "{}",
        err.message
    );
    assert!(w
        .store
        .delegate(w.p["Ana"], id, w.p["Gus"], w.p["Gus"], "x", now())
        .is_err());
    assert!(w
        .store
        .delegate(w.p["Ana"], id, w.p["Gus"], w.p["Fay"], " ", now())
        .is_err());
    let moved = w
        .store
        .delegate(
            w.p["Ana"],
            id,
            w.p["Gus"],
            w.p["Fay"],
            "Gus is on leave",
            now(),
        )
        .unwrap();
    assert_eq!(moved as i64, gus_before - fay_built);
    assert_eq!(pending(&w, "Gus"), fay_built);
    assert_eq!(pending(&w, "Fay"), fay_before + moved as i64);
    let moved_item = item(&w.store, id, "agent-a", ItemType::Identity, "");
    assert_eq!(moved_item.reviewer.as_deref(), Some("Fay"));
    assert!(moved_item.reviewer_reason.contains("Gus is on leave"));
}

fn close_with(policy: UndecidedPolicy) -> (World, CampaignId, CloseReport) {
    let mut w = world();
    let id = w
        .store
        .create_campaign(
            w.p["Ana"],
            &new_campaign(ReviewerRule::Owner, w.p["Gus"]),
            now(),
        )
        .unwrap();
    // Cara keeps agent-a itself; everything else is left undecided.
    let ident = item(&w.store, id, "agent-a", ItemType::Identity, "").id;
    w.store
        .decide(
            w.p["Cara"],
            &DecisionInput {
                items: vec![ident],
                decision: Decision::Keep,
                justification: "in use".into(),
                new_owner: None,
                follow_recommendation: false,
            },
            now(),
        )
        .unwrap();
    let err = w
        .store
        .close_campaign(w.p["Cara"], id, policy, now())
        .unwrap_err();
    assert!(err.message.contains("only the campaign owner"));
    let report = w
        .store
        .close_campaign(w.p["Ana"], id, policy, now())
        .unwrap();
    (w, id, report)
}

#[test]
fn closing_with_keep_decides_everything_and_creates_no_tasks() {
    let (w, id, report) = close_with(UndecidedPolicy::Keep);
    assert_eq!(
        (
            report.decided_by_people,
            report.decided_by_policy,
            report.tasks
        ),
        (1, 8, 0)
    );
    assert!(all_items(&w.store, id)
        .iter()
        .all(|i| i.decision == Some(Decision::Keep)));
    let c = w.store.campaign(id, now()).unwrap();
    assert_eq!(
        (c.status, c.undecided_policy),
        (CampaignStatus::Closed, Some(UndecidedPolicy::Keep))
    );
    // Only what a person certified counts as reviewed.
    let reviewed: Vec<String> = {
        let mut st = w
            .store
            .raw_db()
            .prepare("SELECT name FROM identities WHERE last_reviewed_at IS NOT NULL")
            .unwrap();
        let v = st
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        v
    };
    assert_eq!(reviewed, ["agent-a"]);
}

#[test]
fn closing_with_revoke_removes_access_and_creates_tasks() {
    let (w, id, report) = close_with(UndecidedPolicy::Revoke);
    assert_eq!(report.decided_by_policy, 8);
    let tasks = w.store.tasks(Some(id), None).unwrap();
    assert_eq!(tasks.len(), 8);
    let kinds: Vec<TaskKind> = tasks.iter().map(|t| t.kind).collect();
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == TaskKind::DisableIdentity)
            .count(),
        4
    );
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == TaskKind::RevokeGrant)
            .count(),
        2
    );
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == TaskKind::RevokeCredential)
            .count(),
        2
    );
    assert!(tasks.iter().all(|t| t.status == TaskStatus::Open));
    let logs = item(&w.store, id, "agent-a", ItemType::Grant, "logs");
    assert!(logs.by_policy);
    assert_eq!(logs.justification, "undecided at close: policy revoke");
    // Closed means closed.
    let err = w
        .store
        .clone_decide_probe(w.p["Cara"], logs.id)
        .unwrap_err();
    assert!(err.message.contains("closed"), "{}", err.message);
}

trait Probe {
    fn clone_decide_probe(&self, actor: i64, item: ReviewItemId) -> custodian::Result<usize>;
}

impl Probe for Store {
    fn clone_decide_probe(&self, actor: i64, item: ReviewItemId) -> custodian::Result<usize> {
        // Re-open the same in-memory store is impossible; decide needs &mut, so
        // go through a throwaway copy of the database.
        let dir = tempfile::tempdir().unwrap();
        let mut copy = crate::util::reopen(self, dir.path());
        copy.decide(
            actor,
            &DecisionInput {
                items: vec![item],
                decision: Decision::Keep,
                justification: "late".into(),
                new_owner: None,
                follow_recommendation: false,
            },
            now(),
        )
    }
}

#[test]
fn closing_by_recommendation_follows_each_item() {
    let (w, id, report) = close_with(UndecidedPolicy::Recommendation);
    let by = |s: &str, t: ItemType, d: &str| item(&w.store, id, s, t, d).decision;
    assert_eq!(
        by("agent-a", ItemType::Grant, "logs"),
        Some(Decision::Revoke)
    );
    assert_eq!(by("agent-a", ItemType::Grant, "db-1"), Some(Decision::Keep));
    assert_eq!(
        by("agent-a", ItemType::Credential, ""),
        Some(Decision::Rotate)
    );
    assert_eq!(
        by("svc-c", ItemType::Credential, ""),
        Some(Decision::Revoke)
    );
    assert_eq!(
        by("agent-b", ItemType::Identity, ""),
        Some(Decision::Reassign)
    );
    let tasks = w.store.tasks(Some(id), None).unwrap();
    assert_eq!(tasks.len() as i64, report.tasks);
    assert!(tasks
        .iter()
        .any(|t| t.kind == TaskKind::RotateCredential && t.identity == "agent-a"));
    // A reassignment without a chosen owner still needs one: the task says so by having none.
    let transfer = tasks
        .iter()
        .find(|t| t.kind == TaskKind::TransferOwner)
        .unwrap();
    assert_eq!(transfer.identity, "agent-b");
}

#[test]
fn tasks_are_worked_and_a_done_transfer_changes_the_owner() {
    let mut w = world();
    let id = w
        .store
        .create_campaign(
            w.p["Ana"],
            &new_campaign(ReviewerRule::Owner, w.p["Gus"]),
            now(),
        )
        .unwrap();
    let b = item(&w.store, id, "agent-b", ItemType::Identity, "").id;
    w.store
        .decide(
            w.p["Gus"],
            &DecisionInput {
                items: vec![b],
                decision: Decision::Reassign,
                justification: "Dan left".into(),
                new_owner: Some(w.p["Fay"]),
                follow_recommendation: false,
            },
            now(),
        )
        .unwrap();
    w.store
        .close_campaign(w.p["Ana"], id, UndecidedPolicy::Keep, now())
        .unwrap();
    let t = w.store.tasks(Some(id), Some(TaskStatus::Open)).unwrap();
    assert_eq!(t.len(), 1);
    assert_eq!(
        (t[0].kind, t[0].new_owner.as_deref()),
        (TaskKind::TransferOwner, Some("Fay"))
    );
    let err = w
        .store
        .set_task_status(w.p["Ana"], t[0].id, TaskStatus::Failed, "", now())
        .unwrap_err();
    assert!(err.message.contains("why"));
    let departed_findings = |store: &custodian::store::Store| -> i64 {
        store
            .raw_db()
            .query_row(
                "SELECT count(*) FROM findings f JOIN identities i ON i.id = f.identity_id
                 WHERE i.name = 'agent-b' AND f.check_id = 'owner-departed'",
                [],
                |r| r.get(0),
            )
            .unwrap()
    };
    assert_eq!(departed_findings(&w.store), 1);
    w.store
        .set_task_status(
            w.p["Ana"],
            t[0].id,
            TaskStatus::Done,
            "changed in Entra",
            now(),
        )
        .unwrap();
    let owner: String = w
        .store
        .raw_db()
        .query_row("SELECT p.display_name FROM identities i JOIN people p ON p.id = i.owner_id WHERE i.name = 'agent-b'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(owner, "Fay");
    // Its findings follow the new owner: Dan's departure no longer counts.
    assert_eq!(departed_findings(&w.store), 0);
    assert_eq!(
        w.store.tasks(None, Some(TaskStatus::Done)).unwrap().len(),
        1
    );
}

#[test]
fn second_stage_confirms_stage_one() {
    let mut w = world();
    let mut c = new_campaign(ReviewerRule::Owner, w.p["Gus"]);
    c.second_reviewer = Some(w.p["Fay"]);
    let id = w.store.create_campaign(w.p["Ana"], &c, now()).unwrap();
    let logs = item(&w.store, id, "agent-a", ItemType::Grant, "logs").id;
    w.store
        .decide(
            w.p["Cara"],
            &DecisionInput {
                items: vec![logs],
                decision: Decision::Revoke,
                justification: "unused".into(),
                new_owner: None,
                follow_recommendation: false,
            },
            now(),
        )
        .unwrap();
    let it = item(&w.store, id, "agent-a", ItemType::Grant, "logs");
    assert_eq!(
        (it.stage, it.proposed, it.decision),
        (2, Some(Decision::Revoke), None)
    );
    assert_eq!(it.reviewer.as_deref(), Some("Fay"));
    assert_eq!(it.proposed_by.as_deref(), Some("Cara"));
    w.store
        .decide(
            w.p["Fay"],
            &DecisionInput {
                items: vec![logs],
                decision: Decision::Revoke,
                justification: "agreed".into(),
                new_owner: None,
                follow_recommendation: false,
            },
            now(),
        )
        .unwrap();
    let it = item(&w.store, id, "agent-a", ItemType::Grant, "logs");
    assert_eq!(
        (it.decision, it.decided_by.as_deref()),
        (Some(Decision::Revoke), Some("Fay"))
    );
}

/// The second stage never goes back to whoever proposed the first: not by
/// a reassignment (refused, named), nor by delegation or escalation (the
/// item stays where it is).
#[test]
fn a_second_stage_never_returns_to_its_proposer() {
    let mut w = world();
    let mut c = new_campaign(ReviewerRule::Owner, w.p["Cara"]);
    c.second_reviewer = Some(w.p["Fay"]);
    let id = w.store.create_campaign(w.p["Ana"], &c, now()).unwrap();
    let logs = item(&w.store, id, "agent-a", ItemType::Grant, "logs").id;
    w.store
        .decide(
            w.p["Cara"],
            &DecisionInput {
                items: vec![logs],
                decision: Decision::Revoke,
                justification: "unused".into(),
                new_owner: None,
                follow_recommendation: false,
            },
            now(),
        )
        .unwrap();
    let it = item(&w.store, id, "agent-a", ItemType::Grant, "logs");
    assert_eq!((it.stage, it.reviewer.as_deref()), (2, Some("Fay")));

    let e = w
        .store
        .reassign_reviewer(w.p["Ana"], &[logs], w.p["Cara"], "Cara knows it", now())
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidInput);
    assert!(
        e.message.contains("proposed the first-stage decision"),
        "{}",
        e.message
    );
    assert_eq!(
        w.store
            .delegate(w.p["Ana"], id, w.p["Fay"], w.p["Cara"], "holiday", now())
            .unwrap(),
        0,
        "delegation leaves the proposer's item with the second reviewer"
    );
    // Cara is the fallback reviewer: escalation leaves the item too.
    w.store
        .escalate(w.p["Ana"], id, Some(w.p["Fay"]), now())
        .unwrap();
    let it = item(&w.store, id, "agent-a", ItemType::Grant, "logs");
    assert_eq!(it.reviewer.as_deref(), Some("Fay"));
    // Anyone else may still take it.
    w.store
        .reassign_reviewer(w.p["Ana"], &[logs], w.p["Gus"], "Gus runs logging", now())
        .unwrap();
    let it = item(&w.store, id, "agent-a", ItemType::Grant, "logs");
    assert_eq!(it.reviewer.as_deref(), Some("Gus"));
}

#[test]
fn recurring_campaigns_schedule_and_launch_the_next_run() {
    let mut w = world();
    let mut c = new_campaign(ReviewerRule::Owner, w.p["Gus"]);
    c.recurrence = Recurrence::Quarterly;
    let id = w.store.create_campaign(w.p["Ana"], &c, now()).unwrap();
    let report = w
        .store
        .close_campaign(w.p["Ana"], id, UndecidedPolicy::Keep, now())
        .unwrap();
    let next = report.next_campaign.unwrap();
    let v = w.store.campaign(next, now()).unwrap();
    assert_eq!(
        (v.status, v.previous_id, v.items),
        (CampaignStatus::Scheduled, Some(id), 0)
    );
    assert!(v.start_at.starts_with("2027-02-01"), "{}", v.start_at);
    assert!(w
        .store
        .launch_due_campaigns(now() + Duration::days(30))
        .unwrap()
        .is_empty());
    assert_eq!(
        w.store
            .launch_due_campaigns(now() + Duration::days(93))
            .unwrap(),
        [next]
    );
    let v = w.store.campaign(next, now()).unwrap();
    assert_eq!((v.status, v.items), (CampaignStatus::Active, 9));
}

#[test]
fn evidence_exports_and_reads_back() {
    let (mut w, id, _) = close_with(UndecidedPolicy::Recommendation);
    let dir = tempfile::tempdir().unwrap();
    let files = custodian::ops::export_campaign(&w.store, id, dir.path(), now()).unwrap();
    assert_eq!(files.len(), 3);
    let mut rdr = csv::Reader::from_path(&files[0]).unwrap();
    assert_eq!(
        rdr.headers().unwrap().iter().collect::<Vec<_>>(),
        custodian::evidence::CSV_COLUMNS
    );
    let rows: Vec<csv::StringRecord> = rdr.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 9);
    let a = rows
        .iter()
        .find(|r| &r[3] == "agent-a" && &r[2] == "identity")
        .unwrap();
    assert_eq!(
        (&a[13], &a[14], &a[16], &a[17]),
        ("keep", "Cara", "no", "in use")
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&files[1]).unwrap()).unwrap();
    assert_eq!(json["items"].as_array().unwrap().len(), 9);
    // The header, written as it serialises, is the whole progress.
    let progress = w.store.campaign_progress(id, now()).unwrap();
    assert_eq!(json["progress"], serde_json::to_value(&progress).unwrap());
    assert_eq!(json["format"], "custodian-review-evidence/1");
    // The progress lists the first tasks, open first, and counts them all.
    let all = w.store.tasks(Some(id), None).unwrap();
    assert!(all.len() >= 2, "{all:?}");
    assert_eq!(progress.tasks, all);
    assert_eq!(progress.tasks_total, all.len() as i64);
    assert_eq!(
        progress.tasks_open,
        all.iter().filter(|t| t.status == TaskStatus::Open).count() as i64
    );
    let first = w.store.first_tasks(Some(id), None, None, Some(1)).unwrap();
    assert_eq!(first, all[..1]);
    assert_eq!(
        json["audit_head"].as_str().unwrap(),
        w.store.audit_head().unwrap()
    );
    assert!(
        !json["items"][0]["history"].as_array().unwrap().is_empty(),
        "each item's history is included"
    );
    // Each item carries exactly its own history, in order (the export
    // streams items joined to their events).
    let mut events = 0;
    let mut ids = vec![];
    for item in json["items"].as_array().unwrap() {
        let id = item["id"].as_i64().unwrap();
        ids.push(id);
        let want: Vec<serde_json::Value> = w
            .store
            .item_history(ReviewItemId(id))
            .unwrap()
            .iter()
            .map(|e| serde_json::to_value(e).unwrap())
            .collect();
        assert_eq!(item["history"].as_array().unwrap(), &want, "item {id}");
        events += want.len();
    }
    assert!(ids.windows(2).all(|p| p[0] < p[1]), "items in id order");
    assert!(events >= ids.len());
    // An item with a revised decision carries both events, in order, and
    // its neighbours none of them.
    let open = w
        .store
        .create_campaign(
            w.p["Ana"],
            &new_campaign(ReviewerRule::Owner, w.p["Gus"]),
            now(),
        )
        .unwrap();
    let ident = item(&w.store, open, "agent-a", ItemType::Identity, "").id;
    for justification in ["in use", "still in use"] {
        w.store
            .decide(
                w.p["Cara"],
                &DecisionInput {
                    items: vec![ident],
                    decision: Decision::Keep,
                    justification: justification.into(),
                    new_owner: None,
                    follow_recommendation: false,
                },
                now(),
            )
            .unwrap();
    }
    let evidence = custodian::evidence::collect(&w.store, open, now()).unwrap();
    for e in &evidence.items {
        assert_eq!(e.history, w.store.item_history(e.item.id).unwrap());
    }
    let revised = evidence.items.iter().find(|e| e.item.id == ident).unwrap();
    assert_eq!(
        revised
            .history
            .iter()
            .filter(|e| e.kind == "decision")
            .count(),
        2,
        "{:?}",
        revised.history
    );
    let html = std::fs::read_to_string(&files[2]).unwrap();
    assert!(
        html.contains("Q4 agent certification")
            && html.contains("in use")
            && html.contains("Remediation tasks")
    );
    assert!(!html.contains("<script"), "print-ready, no scripts");
}

#[test]
fn decisions_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let w = world();
    let first = crate::util::reopen(&w.store, dir.path());
    let location = first.location().to_string();
    let p = w.p.clone();
    drop(w);
    let (id, logs) = {
        let mut store = first;
        let id = store
            .create_campaign(
                p["Ana"],
                &new_campaign(ReviewerRule::Owner, p["Gus"]),
                now(),
            )
            .unwrap();
        let logs = item(&store, id, "agent-a", ItemType::Grant, "logs").id;
        store
            .decide(
                p["Cara"],
                &DecisionInput {
                    items: vec![logs],
                    decision: Decision::Revoke,
                    justification: "unused".into(),
                    new_owner: None,
                    follow_recommendation: false,
                },
                now(),
            )
            .unwrap();
        (id, logs)
    };
    let store =
        Store::open_location(&custodian::store::Location::parse(&location).unwrap()).unwrap();
    let it = store.review_item(logs).unwrap();
    assert_eq!((it.campaign_id, it.decision), (id, Some(Decision::Revoke)));
    assert!(store.verify_audit().unwrap().ok);
}

#[test]
fn access_that_vanishes_in_a_sync_is_marked_not_deleted() {
    use custodian::sync::records::*;
    let mut store = crate::util::test_store();
    let src = store
        .add_source("test", "Directory", &serde_json::json!({}), now())
        .unwrap();
    let fetch = |with_grant: bool, with_cred: bool, with_b: bool| {
        let mut f = Fetched::new(FetchMode::Full);
        for (id, name) in [("u1", "Owner One"), ("u2", "Fallback Two")] {
            f.people.push(PersonRecord {
                external_id: id.into(),
                display_name: name.into(),
                email: format!("{id}@x.test"),
                department: String::new(),
                title: String::new(),
                manager: None,
                status: PersonStatus::Active,
                left_at: None,
            });
        }
        for name in ["svc-a", "svc-b"]
            .into_iter()
            .filter(|n| with_b || *n == "svc-a")
        {
            f.identities.push(IdentityRecord {
                external_id: name.into(),
                name: name.into(),
                kind: IdentityKind::ServiceAccount,
                agent_class: None,
                status: IdentityStatus::Active,
                description: String::new(),
                owner: Some(PersonKey::ExternalId("u1".into())),
                builder: None,
                team: String::new(),
                environment: String::new(),
                registration: None,
                created_at: Some(days_ago(100)),
                last_used_at: Some(days_ago(1)),
            });
        }
        f.resources.push(ResourceRecord {
            external_id: "bucket".into(),
            name: "bucket".into(),
            kind: "s3".into(),
            sensitivity: Sensitivity::High,
            environment: String::new(),
        });
        if with_grant {
            f.grants.push(GrantRecord {
                identity: "svc-a".into(),
                resource: "bucket".into(),
                permission: "s3:PutObject".into(),
                privilege: Privilege::Write,
                high_consequence: true,
                last_used_at: None,
            });
        }
        if with_cred {
            f.credentials.push(CredentialRecord {
                identity: "svc-a".into(),
                external_id: "key-1".into(),
                kind: CredentialKind::AccessKey,
                display_name: "key-1".into(),
                created_at: Some(days_ago(10)),
                expires_at: None,
                last_rotated_at: None,
                last_used_at: Some(days_ago(1)),
            });
        }
        f
    };
    let run = store.begin_sync_run(src, now()).unwrap();
    store
        .apply_fetch(src, run, &fetch(true, true, true), now())
        .unwrap();
    let owner = store.resolve_person("u1@x.test").unwrap();
    let fallback = store.resolve_person("Fallback Two").unwrap();
    let id = store
        .create_campaign(
            fallback,
            &new_campaign(ReviewerRule::Owner, fallback),
            now(),
        )
        .unwrap();
    assert_eq!(store.campaign(id, now()).unwrap().items, 4);
    let grant = item(&store, id, "svc-a", ItemType::Grant, "bucket").id;
    store
        .decide(
            owner,
            &DecisionInput {
                items: vec![grant],
                decision: Decision::Revoke,
                justification: "not needed".into(),
                new_owner: None,
                follow_recommendation: false,
            },
            now(),
        )
        .unwrap();

    // The grant, the credential and svc-b disappear from the source.
    let run = store.begin_sync_run(src, now()).unwrap();
    store
        .apply_fetch(src, run, &fetch(false, false, false), now())
        .unwrap();
    let items = all_items(&store, id);
    assert_eq!(items.len(), 4, "no item is deleted");
    let vanished: Vec<String> = items
        .iter()
        .filter(|i| i.vanished_at.is_some())
        .map(|i| format!("{} {}", i.subject, i.item_type.as_str()))
        .collect();
    assert_eq!(vanished.len(), 3, "{vanished:?}");
    let g = store.review_item(grant).unwrap();
    assert_eq!(g.decision, Some(Decision::Revoke), "the decision is kept");
    assert!(store
        .item_history(grant)
        .unwrap()
        .iter()
        .any(|e| e.kind == "vanished"));
    // Closing makes no task for access that is already gone.
    let report = store
        .close_campaign(fallback, id, UndecidedPolicy::Keep, now())
        .unwrap();
    assert_eq!(report.tasks, 0);
}

#[test]
fn a_campaign_over_the_demo_organisation_assigns_every_item_to_an_active_non_builder() {
    let mut store = crate::util::test_store();
    custodian::ops::load_demo(
        &mut store,
        custodian::demo::DemoSize::S,
        custodian::demo::DEFAULT_SEED,
        now(),
    )
    .unwrap();
    let ciso = store.resolve_person("1").unwrap();
    let fallback: i64 = store
        .raw_db()
        .query_row(
            "SELECT id FROM people WHERE status = 'active' AND id <> ?1 ORDER BY id LIMIT 1",
            [ciso],
            |r| r.get(0),
        )
        .unwrap();
    let mut c = new_campaign(ReviewerRule::OwnerManager, fallback);
    c.scope.kinds = vec![IdentityKind::AiAgent];
    let id = store.create_campaign(ciso, &c, now()).unwrap();
    let expected: i64 = store
        .raw_db()
        .query_row(
            "SELECT (SELECT count(*) FROM identities WHERE kind = 'ai_agent' AND status <> 'deleted')
                  + (SELECT count(*) FROM grants g JOIN identities i ON i.id = g.identity_id WHERE i.kind = 'ai_agent' AND i.status <> 'deleted')
                  + (SELECT count(*) FROM credentials c JOIN identities i ON i.id = c.identity_id WHERE i.kind = 'ai_agent' AND i.status <> 'deleted')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(expected > 100);
    assert_eq!(store.campaign(id, now()).unwrap().items, expected);
    let bad: i64 = store
        .raw_db()
        .query_row(
            "SELECT count(*) FROM campaign_items ci JOIN identities i ON i.id = ci.identity_id
             LEFT JOIN people p ON p.id = ci.reviewer_id
             WHERE ci.campaign_id = ?1 AND (p.id IS NULL OR p.status <> 'active' OR ci.reviewer_id = i.builder_id)",
            [id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        bad, 0,
        "every reviewer is active and none reviews what they built"
    );
    // The fallback gets only what the rule could not place.
    let q = store
        .review_queue(fallback, &QueueQuery::default())
        .unwrap();
    assert!(q.pending < expected / 2, "{} of {expected}", q.pending);
    assert!(q
        .items
        .iter()
        .all(|i| i.reviewer_reason.starts_with("fallback")
            || i.reviewer_reason == "owner's manager"
            || i.reviewer_reason.starts_with("builder's manager")));
    // A demo reload, when told to replace history, clears reviews about the
    // old organisation.
    custodian::ops::load_demo_replacing(&mut store, custodian::demo::DemoSize::S, 7, now(), true)
        .unwrap();
    assert!(store.campaigns(now()).unwrap().is_empty());
    assert!(
        store.verify_audit().unwrap().ok,
        "the audit log is kept across a demo reload"
    );
}

#[test]
fn authorization_chains_name_who_certified_what() {
    let mut w = world();
    let id = w
        .store
        .create_campaign(
            w.p["Ana"],
            &new_campaign(ReviewerRule::Owner, w.p["Gus"]),
            now(),
        )
        .unwrap();
    let db = item(&w.store, id, "agent-a", ItemType::Grant, "db-1").id;
    let ident = item(&w.store, id, "agent-a", ItemType::Identity, "").id;
    w.store
        .decide(
            w.p["Cara"],
            &DecisionInput {
                items: vec![db, ident],
                decision: Decision::Keep,
                justification: "billing needs it".into(),
                new_owner: None,
                follow_recommendation: false,
            },
            now(),
        )
        .unwrap();
    w.store
        .close_campaign(w.p["Ana"], id, UndecidedPolicy::Keep, now())
        .unwrap();
    let r = custodian::ops::authorization(&w.store, "agent-a").unwrap();
    assert_eq!(r.owner.as_deref(), Some("Cara"));
    assert_eq!(r.ownership, "as recorded in Test source");
    assert!(
        r.certifications[0]
            .starts_with("keep by Cara on 2026-11-01 in Q4 agent certification: billing needs it"),
        "{:?}",
        r.certifications
    );
    let e = r.entries.iter().find(|e| e.resource == "db-1").unwrap();
    assert_eq!(
        e.certified.as_deref(),
        Some("keep by Cara on 2026-11-01 in Q4 agent certification")
    );
    assert_eq!(e.holder, "agent-a");
    let logs = r.entries.iter().find(|e| e.resource == "logs").unwrap();
    assert_eq!(
        logs.certified.as_deref(),
        Some("keep by close policy on 2026-11-01 in Q4 agent certification")
    );
    assert!(
        r.audit
            .iter()
            .any(|a| a.action == "review.decide" && a.actor == "Cara"),
        "{:?}",
        r.audit
    );
}

/// The reviewer's queue reads campaign by campaign (due first), each by risk
/// then id; pages must match that order exactly across campaign boundaries,
/// and the decided items drop out.
#[test]
fn a_reviewers_queue_pages_in_due_then_risk_order_across_campaigns() {
    let mut w = world();
    let named = |name: &str, days: i64| NewCampaign {
        name: name.into(),
        reviewer_rule: ReviewerRule::Named,
        named_reviewer: Some(w.p["Gus"]),
        due_at: (now() + Duration::days(days)).to_rfc3339(),
        ..new_campaign(ReviewerRule::Named, w.p["Fay"])
    };
    let (later, sooner) = (named("later", 30), named("sooner", 7));
    let late = w.store.create_campaign(w.p["Ana"], &later, now()).unwrap();
    let soon = w.store.create_campaign(w.p["Ana"], &sooner, now()).unwrap();
    let gus = w.p["Gus"];
    // Decide one item so the queue has something to skip.
    let first = w
        .store
        .review_queue(gus, &QueueQuery::default())
        .unwrap()
        .items[0]
        .id;
    w.store
        .decide(
            gus,
            &DecisionInput {
                items: vec![first],
                decision: Decision::Keep,
                justification: "known".into(),
                new_owner: None,
                follow_recommendation: false,
            },
            now(),
        )
        .unwrap();

    // The expected order, from every item of both campaigns.
    let mut expected: Vec<ReviewItem> = [soon, late]
        .iter()
        .flat_map(|c| all_items(&w.store, *c))
        .filter(|i| i.reviewer_id == Some(gus) && i.decision.is_none())
        .collect();
    let rank = |r: &str| match r {
        "high" => 3,
        "medium" => 2,
        _ => 1,
    };
    expected.sort_by_key(|i| {
        (
            if i.campaign_id == soon { 0 } else { 1 },
            -rank(&i.risk),
            i.id,
        )
    });
    let expected: Vec<ReviewItemId> = expected.iter().map(|i| i.id).collect();
    assert!(expected.len() > 6, "{} pending items", expected.len());

    let q = w
        .store
        .review_queue(
            gus,
            &QueueQuery {
                limit: 1000,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(q.items.iter().map(|i| i.id).collect::<Vec<_>>(), expected);
    assert_eq!(q.pending as usize, expected.len());
    // Pages of 5 at every offset, including ones that start in the second campaign.
    for offset in 0..expected.len() as i64 {
        let page = w
            .store
            .review_queue(
                gus,
                &QueueQuery {
                    offset,
                    limit: 5,
                    ..Default::default()
                },
            )
            .unwrap();
        let want: Vec<ReviewItemId> = expected
            .iter()
            .skip(offset as usize)
            .take(5)
            .copied()
            .collect();
        assert_eq!(
            page.items.iter().map(|i| i.id).collect::<Vec<_>>(),
            want,
            "offset {offset}"
        );
    }
    // One campaign only.
    let only = w
        .store
        .review_queue(
            gus,
            &QueueQuery {
                campaign: Some(late),
                limit: 1000,
                ..Default::default()
            },
        )
        .unwrap();
    assert!(only.items.iter().all(|i| i.campaign_id == late));
    assert_eq!(
        only.items.iter().map(|i| i.id).collect::<Vec<_>>(),
        expected
            .iter()
            .copied()
            .filter(|id| only.items.iter().any(|i| i.id == *id))
            .collect::<Vec<_>>()
    );
}
