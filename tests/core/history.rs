//! Governance history is never destroyed silently: a demo load refuses to
//! replace it unless told, and records the replacement; the first real
//! source replaces the demo only once its first sync succeeds.

use std::sync::Arc;

use custodian::demo::{DemoSize, DEFAULT_SEED};
use custodian::model::SourceId;
use custodian::ops;
use custodian::store::Store;
use custodian::sync::http::Cancel;
use custodian::sync::secrets::MemorySecrets;
use custodian::sync::SyncProgress;
use custodian::ErrorCode;
use serde_json::json;

use crate::util::now;

fn demo() -> Store {
    let mut store = crate::util::test_store();
    ops::load_demo(&mut store, DemoSize::S, DEFAULT_SEED, now()).unwrap();
    store
}

fn last_action(store: &Store) -> (String, String) {
    let e = store.audit_entries(0, 100_000).unwrap();
    let l = e.last().unwrap();
    (l.action.clone(), l.details.clone())
}

#[test]
fn a_demo_reload_refuses_to_replace_governance_history_unless_told() {
    let mut store = demo();
    // The demo's own history (cases it opens) does not count.
    assert!(store.history_beyond_demo().unwrap().is_empty());
    ops::load_demo(&mut store, DemoSize::S, 7, now()).unwrap();
    assert!(store.history_beyond_demo().unwrap().is_empty());

    // Someone works on it: who they are, and a decision-bearing campaign.
    ops::set_acting_person(&mut store, "1", now()).unwrap();
    let e = ops::load_demo(&mut store, DemoSize::S, 7, now()).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidInput);
    assert!(e.message.contains("1 audit entry"), "{}", e.message);
    assert!(e.message.contains("--replace-history"), "{}", e.message);
    let before = store.governance_history().unwrap();

    // Told explicitly: replaced, and the audit log says so (and still verifies).
    ops::load_demo_replacing(&mut store, DemoSize::S, 7, now(), true).unwrap();
    let (action, details) = last_action(&store);
    assert_eq!(action, "demo.replace_history");
    assert!(details.contains("\"audit_entries\":1"), "{details}");
    let after = store.governance_history().unwrap();
    assert!(
        after.audit_entries > before.audit_entries,
        "the audit log is kept"
    );
    assert!(store.verify_audit().unwrap().ok);
    // The new demo's own history is its baseline again.
    assert!(store.history_beyond_demo().unwrap().is_empty());
}

#[test]
fn the_app_opens_a_store_with_history_as_it_is() {
    // An organisation-less store whose log holds entries is not filled
    // with the demo.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.db");
    let loc = if crate::util::on_postgres() {
        custodian::store::Location::parse(&crate::util::cli_location(&path).to_string_lossy())
            .unwrap()
    } else {
        custodian::store::Location::File(path)
    };
    {
        let store = Store::open_location(&loc).unwrap();
        let key = custodian::store::key::audit_key(store.engine()).unwrap();
        custodian::store::audit::append_signed(
            store.raw_db(),
            &key,
            1,
            "ann",
            "note",
            "s",
            &json!({}),
        )
        .unwrap();
    }
    let store = ops::open_or_demo(&loc, now()).unwrap();
    assert!(store.is_empty().unwrap(), "no demo loaded over history");
}

fn add_csv(store: &mut Store, path: &std::path::Path) -> SourceId {
    let s = ops::add_source(
        store,
        &MemorySecrets::default(),
        "csv",
        "registry",
        json!({"path": path.display().to_string()}),
        None,
        now(),
    )
    .unwrap();
    SourceId(s.id)
}

fn sync(store: &mut Store, id: SourceId) -> custodian::Result<custodian::sync::SyncOutcome> {
    ops::sync_source(
        store,
        id,
        &MemorySecrets::default(),
        Arc::new(|_: &SyncProgress| {}),
        Cancel::new(),
    )
}

#[test]
fn the_first_real_source_replaces_the_demo_only_after_its_first_sync_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.csv");
    let mut store = demo();
    let id = add_csv(&mut store, &path);
    let demo_identities = store.summary().unwrap();
    // Adding it keeps the demo.
    assert_eq!(store.meta("dataset").unwrap().as_deref(), Some("demo-s"));
    // A failed first import (no file) leaves the demo and the source as they were.
    assert!(sync(&mut store, id).is_err());
    assert_eq!(store.meta("dataset").unwrap().as_deref(), Some("demo-s"));
    assert_eq!(
        serde_json::to_value(store.summary().unwrap()).unwrap(),
        serde_json::to_value(&demo_identities).unwrap()
    );
    assert!(ops::resolve_source(&store, "registry").is_ok());

    // A good one replaces it, in the applying transaction, audited.
    std::fs::write(&path, "name,kind\ninvoice-triage,ai_agent\n").unwrap();
    let out = sync(&mut store, id).unwrap();
    assert_eq!(out.report.joiners, 1);
    assert_eq!(store.meta("dataset").unwrap(), None);
    let n: i64 = store
        .raw_db()
        .query_row("SELECT count(*) FROM identities", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1, "only the real source's identities remain");
    let sources: Vec<String> = ops::sources(&store)
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(sources, ["registry"]);
    let actions: Vec<String> = store
        .audit_entries(0, 100_000)
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert!(actions.contains(&"demo.replace".to_string()), "{actions:?}");
    assert!(store.verify_audit().unwrap().ok);
}

#[test]
fn a_decision_made_on_the_demo_is_never_swept_away_by_the_first_real_source() {
    use custodian::campaigns::{Decision, DecisionInput, ReviewItemId};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.csv");
    std::fs::write(&path, "name,kind\ninvoice-triage,ai_agent\n").unwrap();
    let mut store = demo();
    // Someone tries the product on the demo: a campaign and one decision.
    let owner = store.resolve_person("1").unwrap();
    let c = crate::util::identities_campaign("Trying it out", owner, 14);
    store.create_campaign(owner, &c, now()).unwrap();
    let (item, reviewer): (i64, i64) = store
        .raw_db()
        .query_row(
            "SELECT ci.id, ci.reviewer_id FROM campaign_items ci JOIN campaigns c ON c.id = ci.campaign_id
             WHERE c.status = 'active' AND ci.decision IS NULL AND ci.reviewer_id IS NOT NULL
             ORDER BY ci.id LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    ops::decide(
        &mut store,
        reviewer,
        &DecisionInput {
            items: vec![ReviewItemId(item)],
            decision: Decision::Keep,
            justification: "owner confirmed it still runs the nightly ledger".into(),
            new_owner: None,
            follow_recommendation: false,
        },
        now(),
    )
    .unwrap();
    let id = add_csv(&mut store, &path);
    let before = serde_json::to_value(store.summary().unwrap()).unwrap();
    let history = store.governance_history().unwrap();

    // The first real sync would replace the demo and the decision with it: refused.
    let e = sync(&mut store, id).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidInput, "{e:?}");
    assert!(
        e.message.contains("1 campaign, ") && e.message.contains(" decisions made on it"),
        "{}",
        e.message
    );
    assert!(
        e.message.contains("demo --clear --replace-history"),
        "{}",
        e.message
    );
    assert_eq!(store.meta("dataset").unwrap().as_deref(), Some("demo-s"));
    assert_eq!(
        serde_json::to_value(store.summary().unwrap()).unwrap(),
        before
    );
    let kept = store.governance_history().unwrap();
    assert_eq!(
        (kept.campaigns, kept.decisions),
        (history.campaigns, history.decisions)
    );

    // Clearing the demo needs the explicit consent, and is audited.
    let e = ops::clear_demo(&mut store, false, now()).unwrap_err();
    assert!(e.message.contains("--replace-history"), "{}", e.message);
    assert_eq!(store.meta("dataset").unwrap().as_deref(), Some("demo-s"));
    ops::clear_demo(&mut store, true, now()).unwrap();
    let (action, details) = last_action(&store);
    assert_eq!(action, "demo.clear");
    assert!(details.contains("\"decisions\""), "{details}");
    assert!(
        ops::clear_demo(&mut store, true, now()).is_err(),
        "no demo left"
    );

    // Then the source imports into the emptied cache, and the log verifies.
    let out = sync(&mut store, id).unwrap();
    assert_eq!(out.report.joiners, 1);
    let n: i64 = store
        .raw_db()
        .query_row("SELECT count(*) FROM identities", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
    let actions: Vec<String> = store
        .audit_entries(0, 100_000)
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert!(
        actions.contains(&"review.decide".to_string()),
        "the decision's entry is kept"
    );
    assert!(!actions.contains(&"demo.replace".to_string()));
    assert!(store.verify_audit().unwrap().ok);
}
