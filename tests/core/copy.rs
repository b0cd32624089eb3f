//! `db copy`: a whole store into an empty one, SQLite → PostgreSQL and back,
//! with the audit chain verified at the target. Needs the test cluster
//! (`CUSTODIAN_TEST_PG`), in both passes of `tests/run.sh`.

use std::collections::BTreeMap;

use custodian::campaigns::*;
use custodian::store::copy::{unknown_tables, COPY_ORDER};
use custodian::store::{Location, Store};
use custodian::views::InventoryQuery;
use custodian::ErrorCode;

use crate::pg::{empty_database, url_of};
use crate::util::{identities_campaign, now};

/// A cache with history of every kind: the demo organisation (sync runs,
/// posture snapshots), a campaign with decisions and a close (events,
/// tasks), a departure (an offboarding case), audit entries.
fn rich_store(path: &std::path::Path) -> Store {
    let mut store = Store::open(path).unwrap();
    custodian::ops::load_demo(&mut store, custodian::demo::DemoSize::S, 11, now()).unwrap();
    let owner = store.resolve_person("1").unwrap();
    let c = NewCampaign {
        description: "with decisions".into(),
        recurrence: Recurrence::Quarterly,
        ..identities_campaign("Copy me", owner, 14)
    };
    let id = store.create_campaign(owner, &c, now()).unwrap();
    let items: Vec<(ReviewItemId, i64)> = store
        .raw_db()
        .query_map(
            "SELECT id, reviewer_id FROM campaign_items WHERE campaign_id = ?1 AND reviewer_id IS NOT NULL ORDER BY id LIMIT 5",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    for (item, reviewer) in items {
        store
            .decide(
                reviewer,
                &DecisionInput {
                    items: vec![item],
                    decision: Decision::Keep,
                    justification: "needed".into(),
                    new_owner: None,
                    follow_recommendation: false,
                },
                now(),
            )
            .unwrap();
    }
    store
        .close_campaign(owner, id, UndecidedPolicy::Recommendation, now())
        .unwrap();
    let leaver: i64 = store
        .raw_db()
        .query_row(
            "SELECT p.id FROM people p WHERE p.status = 'active' AND p.manager_id IS NOT NULL
               AND EXISTS (SELECT 1 FROM identities i WHERE i.owner_id = p.id) ORDER BY p.id LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    store
        .mark_departing(owner, leaver, "2026-11-20", "moving on", now())
        .unwrap();
    store
}

fn counts(store: &Store) -> BTreeMap<String, i64> {
    let present = store.raw_db().tables().unwrap();
    COPY_ORDER
        .iter()
        .filter(|t| present.iter().any(|p| p == *t))
        .map(|t| {
            let n: i64 = store
                .raw_db()
                .query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0))
                .unwrap();
            (t.to_string(), n)
        })
        .collect()
}

fn first_page(store: &Store) -> Vec<(i64, String, i64)> {
    let q = InventoryQuery {
        search: "agent".into(),
        ..Default::default()
    };
    store
        .inventory(&q, now())
        .unwrap()
        .rows
        .into_iter()
        .map(|r| (r.id, r.name, r.finding_count))
        .collect()
}

#[test]
fn the_copy_knows_every_table_of_the_schema() {
    let store = crate::util::test_store();
    assert_eq!(
        unknown_tables(store.raw_db()).unwrap(),
        Vec::<String>::new()
    );
}

#[test]
fn a_cache_goes_to_postgres_and_back_with_everything_and_a_verified_chain() {
    let dir = tempfile::tempdir().unwrap();
    let solo = rich_store(&dir.path().join("solo.db"));
    let before = counts(&solo);
    assert!(
        before["campaign_events"] > 0 && before["offboarding_cases"] > 0 && before["tasks"] > 0
    );
    assert!(before["audit_log"] > 5 && before["posture_snapshots"] > 0 && before["findings"] > 0);
    let head = solo.verify_audit().unwrap().head;

    // Solo → team.
    let team_url = url_of(&empty_database());
    let team_loc = Location::parse(&team_url).unwrap();
    let solo_loc = Location::File(dir.path().join("solo.db"));
    drop(solo);
    let report = custodian::ops::copy_store(&solo_loc, &team_loc).unwrap();
    assert_eq!(report.audit_head, head);
    let team = Store::open_location(&team_loc).unwrap();
    assert_eq!(counts(&team), before);
    assert_eq!(report.rows, before.values().sum::<i64>());
    let solo = Store::open_location(&solo_loc).unwrap();
    assert_eq!(
        first_page(&team),
        first_page(&solo),
        "search rebuilt at the target"
    );
    let v = team.verify_audit().unwrap();
    assert!(v.ok && v.head == head, "{v:?}");
    drop(team);

    // The team store goes on: new rows continue after the copied ids.
    let mut team = Store::open_location(&team_loc).unwrap();
    let owner = team.resolve_person("1").unwrap();
    let last: i64 = team
        .raw_db()
        .query_row("SELECT max(id) FROM campaigns", [], |r| r.get(0))
        .unwrap();
    let c = identities_campaign("After the move", owner, 7);
    assert!(team.create_campaign(owner, &c, now()).unwrap() > CampaignId(last));
    assert!(team.verify_audit().unwrap().ok);
    drop(team);

    // Team → an offline snapshot, from a fresh copy of the solo data.
    let team2 = Location::parse(&url_of(&empty_database())).unwrap();
    custodian::ops::copy_store(&solo_loc, &team2).unwrap();
    let snapshot = Location::File(dir.path().join("snapshot.db"));
    let back = custodian::ops::copy_store(&team2, &snapshot).unwrap();
    assert_eq!(back.audit_head, head);
    let snap = Store::open_location(&snapshot).unwrap();
    assert_eq!(counts(&snap), before);
    assert_eq!(first_page(&snap), first_page(&solo));
    assert!(snap.verify_audit().unwrap().ok);
}

#[test]
fn a_copy_into_a_store_that_holds_data_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.db");
    let b = dir.path().join("b.db");
    drop(rich_store(&a));
    let mut other = Store::open(&b).unwrap();
    custodian::ops::load_demo(&mut other, custodian::demo::DemoSize::S, 3, now()).unwrap();
    let before = counts(&other);
    drop(other);
    let err = custodian::ops::copy_store(&Location::File(a.clone()), &Location::File(b.clone()))
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidInput, "{err:?}");
    assert!(err.message.contains("not empty"), "{}", err.message);
    assert_eq!(counts(&Store::open(&b).unwrap()), before);
    // A missing source is not created.
    let missing = dir.path().join("missing.db");
    let err = custodian::ops::copy_store(
        &Location::File(missing.clone()),
        &Location::File(dir.path().join("c.db")),
    )
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound);
    assert!(!missing.exists());
}
