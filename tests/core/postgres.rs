//! The PostgreSQL engine itself: the forward gate, the refusal to touch a
//! database that is not Custodian's, what is shown of a location, and the
//! concurrency guarantees (parallel deciders, a concurrent writer, a close:
//! nothing lost or duplicated, the chain verifies). Needs the test cluster
//! (`CUSTODIAN_TEST_PG`), in both passes of `tests/run.sh`.

use std::collections::HashMap;
use std::sync::{Arc, Barrier};

use custodian::campaigns::*;
use custodian::store::pg::PgTarget;
use custodian::store::{Location, Store};
use custodian::ErrorCode;

use crate::pg::{admin_client, empty_database, url_of};
use crate::util::now;

fn target(db: &str) -> PgTarget {
    PgTarget::parse(&url_of(db)).unwrap()
}

fn tables_of(db: &str) -> Vec<String> {
    admin_client(db)
        .query(
            "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[test]
fn a_database_of_another_application_is_refused_and_left_alone() {
    let db = empty_database();
    admin_client(&db)
        .batch_execute("CREATE TABLE customers (id int PRIMARY KEY, name text); INSERT INTO customers VALUES (1, 'Acme');")
        .unwrap();
    let before = tables_of(&db);
    let err = Store::open_postgres(&target(&db)).unwrap_err();
    assert_eq!(err.code, ErrorCode::DatabaseUnreadable, "{err:?}");
    assert!(
        err.message.contains("not a Custodian store"),
        "{}",
        err.message
    );
    assert_eq!(tables_of(&db), before, "nothing was created");
    let n: i64 = admin_client(&db)
        .query_one("SELECT count(*) FROM customers", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
}

#[test]
fn an_empty_database_becomes_a_store_and_a_newer_schema_is_refused() {
    let db = empty_database();
    let store = Store::open_postgres(&target(&db)).unwrap();
    let latest = custodian::store::migrations::latest_version();
    assert_eq!(store.schema_version().unwrap(), latest);
    drop(store);
    assert!(tables_of(&db).contains(&"custodian.custodian_marker".to_string()));
    // Opening again migrates nothing and keeps the data.
    let store = Store::open_postgres(&target(&db)).unwrap();
    store.set_meta("probe", "kept").unwrap();
    drop(store);
    // A newer Custodian wrote it: refused, marker and data untouched.
    admin_client(&db)
        .batch_execute("UPDATE custodian.custodian_marker SET version = 9999")
        .unwrap();
    let err = Store::open_postgres(&target(&db)).unwrap_err();
    assert_eq!(err.code, ErrorCode::DatabaseTooNew, "{err:?}");
    let v: i64 = admin_client(&db)
        .query_one("SELECT version FROM custodian.custodian_marker", &[])
        .unwrap()
        .get(0);
    assert_eq!(v, 9999);
    let probe: String = admin_client(&db)
        .query_one("SELECT value FROM custodian.meta WHERE key = 'probe'", &[])
        .unwrap()
        .get(0);
    assert_eq!(probe, "kept");
    // Another application's marker is refused too.
    admin_client(&db)
        .batch_execute("UPDATE custodian.custodian_marker SET version = 1, application_id = 42")
        .unwrap();
    let err = Store::open_postgres(&target(&db)).unwrap_err();
    assert_eq!(err.code, ErrorCode::DatabaseUnreadable, "{err:?}");
}

#[test]
fn every_migration_step_runs_on_postgres() {
    let latest = custodian::store::migrations::latest_version();
    for v in 1..latest {
        let db = empty_database();
        let mut store = Store::open_postgres_at(&target(&db), v).unwrap();
        assert_eq!(store.schema_version().unwrap(), v);
        store.migrate_to(latest).unwrap();
        assert_eq!(store.schema_version().unwrap(), latest);
    }
}

#[test]
fn two_desktops_opening_a_new_workspace_at_once_migrate_it_once() {
    let db = empty_database();
    let t = target(&db);
    let barrier = Arc::new(Barrier::new(4));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let t = t.clone();
            let b = barrier.clone();
            std::thread::spawn(move || {
                b.wait();
                Store::open_postgres(&t).map(|s| s.schema_version().unwrap())
            })
        })
        .collect();
    let latest = custodian::store::migrations::latest_version();
    for h in handles {
        assert_eq!(h.join().unwrap().unwrap(), latest);
    }
}

#[test]
fn a_password_never_appears_in_what_is_shown() {
    let loc = Location::parse("postgresql://maya:hunter2@db.example.com/team?sslmode=verify-full")
        .unwrap();
    assert!(!loc.display().contains("hunter2"));
    assert!(!format!("{loc:?}").contains("hunter2"));
    // The store's own location (shown in the app, logged) is the same.
    let db = empty_database();
    let mut url = url_of(&db);
    // A password in the URL works (it is the cluster's) but is never shown.
    let pass = std::fs::read_to_string(std::env::var("PGPASSFILE").unwrap()).unwrap();
    let pw = pass
        .lines()
        .next()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    url = url.replacen("custodian_test@", &format!("custodian_test:{pw}@"), 1);
    let store = Store::open_location(&Location::parse(&url).unwrap()).unwrap();
    assert!(!store.location().contains(&pw), "{}", store.location());
    assert!(!format!("{store:?}").contains(&pw));
}

#[test]
fn a_wrong_password_is_a_clear_database_auth_error() {
    let db = empty_database();
    let url = url_of(&db).replacen("custodian_test@", "custodian_test:not-the-password@", 1);
    let err = Store::open_location(&Location::parse(&url).unwrap()).unwrap_err();
    assert_eq!(err.code, ErrorCode::DatabaseAuth, "{err:?}");
    assert!(!err.message.contains("not-the-password"));
}

/// A demo organisation with one campaign over everything, reviewed by owners.
fn campaign_world() -> (PgTarget, i64, CampaignId, HashMap<i64, Vec<ReviewItemId>>) {
    let db = crate::pg::fresh_database();
    let t = target(&db);
    let mut store = Store::open_postgres(&t).unwrap();
    custodian::ops::load_demo(&mut store, custodian::demo::DemoSize::S, 7, now()).unwrap();
    let owner = store.resolve_person("1").unwrap();
    let c = crate::util::identities_campaign("Concurrent certification", owner, 14);
    let id = store.create_campaign(owner, &c, now()).unwrap();
    let mut by_reviewer: HashMap<i64, Vec<ReviewItemId>> = HashMap::new();
    for (reviewer, item) in store
        .raw_db()
        .query_map(
            "SELECT reviewer_id, id FROM campaign_items WHERE campaign_id = ?1 AND reviewer_id IS NOT NULL ORDER BY id",
            [id],
            |r| Ok((r.get::<i64>(0)?, r.get::<ReviewItemId>(1)?)),
        )
        .unwrap()
    {
        by_reviewer.entry(reviewer).or_default().push(item);
    }
    (t, owner, id, by_reviewer)
}

#[test]
fn parallel_deciders_a_concurrent_writer_and_a_close_lose_nothing() {
    let (t, owner, campaign, by_reviewer) = campaign_world();
    let mut busiest: Vec<(i64, Vec<ReviewItemId>)> = by_reviewer.into_iter().collect();
    busiest.sort_by_key(|(r, items)| (std::cmp::Reverse(items.len()), *r));
    let reviewers: Vec<(i64, Vec<ReviewItemId>)> = busiest.into_iter().take(4).collect();
    assert!(
        reviewers.iter().all(|(_, items)| items.len() >= 3),
        "{reviewers:?}"
    );
    let total: usize = reviewers.iter().map(|(_, i)| i.len()).sum();

    let start = Arc::new(Barrier::new(reviewers.len() + 2));
    let mut handles = Vec::new();
    for (reviewer, items) in reviewers.clone() {
        let t = t.clone();
        let b = start.clone();
        handles.push(std::thread::spawn(move || {
            let mut store = Store::open_postgres(&t).unwrap();
            b.wait();
            let mut n = 0;
            for item in items {
                n += store
                    .decide(
                        reviewer,
                        &DecisionInput {
                            items: vec![item],
                            decision: Decision::Keep,
                            justification: "still needed".into(),
                            new_owner: None,
                            follow_recommendation: false,
                        },
                        now(),
                    )
                    .unwrap();
            }
            n
        }));
    }
    // A second desktop of the first reviewer revises the same items at the
    // same time: each call is a decision event of its own, none lost.
    let (twin, twin_items) = reviewers[0].clone();
    {
        let t = t.clone();
        let b = start.clone();
        handles.push(std::thread::spawn(move || {
            let mut store = Store::open_postgres(&t).unwrap();
            b.wait();
            let mut n = 0;
            for item in twin_items.iter().rev() {
                n += store
                    .decide(
                        twin,
                        &DecisionInput {
                            items: vec![*item],
                            decision: Decision::Retire,
                            justification: "no longer used".into(),
                            new_owner: None,
                            follow_recommendation: false,
                        },
                        now(),
                    )
                    .unwrap();
            }
            n
        }));
    }
    // A writer that re-evaluates the whole organisation meanwhile (what a
    // sync apply does after its upserts).
    let writer = {
        let t = t.clone();
        let b = start.clone();
        std::thread::spawn(move || {
            let mut store = Store::open_postgres(&t).unwrap();
            b.wait();
            for _ in 0..3 {
                store.refresh_findings(now()).unwrap();
            }
        })
    };
    let decided: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    writer.join().unwrap();
    let twin_count = reviewers[0].1.len();
    assert_eq!(decided, total + twin_count);

    let mut store = Store::open_postgres(&t).unwrap();
    let events: i64 = store
        .raw_db()
        .query_row(
            "SELECT count(*) FROM campaign_events WHERE campaign_id = ?1 AND kind = 'decision'",
            [campaign],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        events as usize, decided,
        "every decision is an event, none lost or doubled"
    );
    // Each item's decision is the last event recorded for it.
    let mismatched: i64 = store
        .raw_db()
        .query_row(
            "SELECT count(*) FROM campaign_items ci
             WHERE ci.campaign_id = ?1 AND ci.decision IS NOT NULL
               AND ci.decision IS DISTINCT FROM (
                   SELECT json_extract(e.detail, '$.decision') FROM campaign_events e
                   WHERE e.item_id = ci.id AND e.kind = 'decision' ORDER BY e.id DESC LIMIT 1)",
            [campaign],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(mismatched, 0);
    let report = store
        .close_campaign(owner, campaign, UndecidedPolicy::Keep, now())
        .unwrap();
    assert_eq!(report.decided_by_people as usize, total, "{report:?}");
    let v = store.verify_audit().unwrap();
    assert!(v.ok, "{v:?}");
    let decision_entries: i64 = store
        .raw_db()
        .query_row(
            "SELECT count(*) FROM audit_log WHERE action = 'review.decide'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        decision_entries as usize, decided,
        "every decision is audited once"
    );
}

/// A real sync (a spreadsheet registry, imported then re-imported with
/// changes) applies over and over while reviewers decide and the owner
/// closes: every sync run succeeds, every decision is kept once, the close
/// counts them all, and the chain verifies.
#[test]
fn a_sync_applying_during_decisions_and_the_close_loses_nothing() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let (t, owner, campaign, by_reviewer) = campaign_world();
    {
        // The demo's organisation stands in for a real one, so the CSV
        // source adds to it instead of replacing it on its first sync.
        let store = Store::open_postgres(&t).unwrap();
        store
            .raw_db()
            .execute(
                "UPDATE meta SET value = 'concurrency-test' WHERE key = 'dataset'",
                [],
            )
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("registry.csv");
    // Each round the syncer renames the purposes of the agents.
    std::fs::write(
        &csv,
        crate::util::changing_registry("registry-agent", 40, 0),
    )
    .unwrap();
    let source = {
        let mut store = Store::open_postgres(&t).unwrap();
        let s = custodian::ops::add_source(
            &mut store,
            &custodian::sync::secrets::MemorySecrets::default(),
            "csv",
            "registry",
            serde_json::json!({"path": csv.display().to_string()}),
            None,
            now(),
        )
        .unwrap();
        custodian::model::SourceId(s.id)
    };

    let mut reviewers: Vec<(i64, Vec<ReviewItemId>)> = by_reviewer.into_iter().collect();
    reviewers.sort_by_key(|(r, items)| (std::cmp::Reverse(items.len()), *r));
    reviewers.truncate(3);
    let total: usize = reviewers.iter().map(|(_, i)| i.len()).sum();
    assert!(total >= 6, "{reviewers:?}");

    let stop = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(reviewers.len() + 1));
    let syncer = {
        let (t, stop, csv) = (t.clone(), stop.clone(), csv.clone());
        std::thread::spawn(move || {
            let mut store = Store::open_postgres(&t).unwrap();
            let mut runs = Vec::new();
            let mut round = 0;
            while !stop.load(Ordering::SeqCst) || runs.is_empty() {
                let out = custodian::ops::sync_source(
                    &mut store,
                    source,
                    &custodian::sync::secrets::MemorySecrets::default(),
                    Arc::new(|_: &custodian::sync::SyncProgress| {}),
                    custodian::sync::http::Cancel::new(),
                )
                .unwrap_or_else(|e| panic!("sync round {round} failed: {e:?}"));
                runs.push(out.run);
                round += 1;
                let mut body = std::fs::read_to_string(&csv).unwrap();
                body = body.replace(&format!("round {}", round - 1), &format!("round {round}"));
                std::fs::write(&csv, body).unwrap();
            }
            runs
        })
    };
    let mut handles = Vec::new();
    for (reviewer, items) in reviewers.clone() {
        let (t, b) = (t.clone(), start.clone());
        handles.push(std::thread::spawn(move || {
            let mut store = Store::open_postgres(&t).unwrap();
            b.wait();
            items
                .into_iter()
                .map(|item| {
                    store
                        .decide(
                            reviewer,
                            &DecisionInput {
                                items: vec![item],
                                decision: Decision::Keep,
                                justification: "checked during the sync".into(),
                                new_owner: None,
                                follow_recommendation: false,
                            },
                            now(),
                        )
                        .unwrap()
                })
                .sum::<usize>()
        }));
    }
    start.wait();
    let decided: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(decided, total);
    // The close races the sync that is still applying.
    let report = Store::open_postgres(&t)
        .unwrap()
        .close_campaign(owner, campaign, UndecidedPolicy::Keep, now())
        .unwrap();
    stop.store(true, Ordering::SeqCst);
    let runs = syncer.join().unwrap();
    assert!(!runs.is_empty());
    assert_eq!(report.decided_by_people as usize, total, "{report:?}");

    let store = Store::open_postgres(&t).unwrap();
    for run in &runs {
        let r = store.sync_run(*run).unwrap();
        assert!(r.status.starts_with("succeeded"), "run {run:?}: {r:?}");
    }
    let count = |sql: &str| -> i64 { store.raw_db().query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(
        count("SELECT count(*) FROM audit_log WHERE action = 'review.decide'") as usize,
        total,
        "every decision audited once"
    );
    assert_eq!(
        count("SELECT count(*) FROM identities WHERE name LIKE 'registry-agent-%'"),
        40,
        "the registry's agents are in the inventory"
    );
    let v = store.verify_audit().unwrap();
    assert!(v.ok, "{v:?}");
}

/// TLS as libpq users expect it, against the test cluster's own CA (its
/// certificate names `localhost` only): verify-full checks the chain and
/// the host name, verify-ca only the chain, require neither; the
/// connection really is encrypted.
#[test]
fn verify_full_checks_the_chain_and_the_host_name() {
    use custodian::store::pg::SslMode;
    let ca = std::env::var("CUSTODIAN_TEST_PG_CA").unwrap_or_else(|_| {
        panic!(
            "CUSTODIAN_TEST_PG_CA is not set: tests/support/pg-cluster.sh writes the cluster's CA \
             to DIR/ca.crt and tests/run.sh exports it"
        )
    });
    let db = crate::pg::fresh_database();
    let with = |host: &str, mode: SslMode, root: Option<&str>| {
        let mut t = target(&db);
        t.host = Some(host.into());
        t.sslmode = Some(mode);
        t.sslrootcert = root.map(str::to_string);
        Store::open_postgres(&t)
    };
    let encrypted = |s: &Store| -> bool {
        s.raw_db()
            .query_row(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                [],
                |r| r.get(0),
            )
            .unwrap()
    };

    let full = with("localhost", SslMode::VerifyFull, Some(&ca)).unwrap();
    assert!(encrypted(&full), "verify-full must use TLS");

    let Err(wrong_name) = with("127.0.0.1", SslMode::VerifyFull, Some(&ca)) else {
        panic!("verify-full accepted a certificate that does not name 127.0.0.1");
    };
    assert!(
        wrong_name.message.to_lowercase().contains("certificate")
            || wrong_name.message.to_lowercase().contains("hostname"),
        "{wrong_name:?}"
    );
    let Err(unknown_ca) = with("localhost", SslMode::VerifyFull, Some("system")) else {
        panic!("verify-full accepted a certificate from a CA outside the system's roots");
    };
    assert!(
        unknown_ca.message.contains("cannot connect"),
        "{unknown_ca:?}"
    );

    let ca_only = with("127.0.0.1", SslMode::VerifyCa, Some(&ca)).unwrap();
    assert!(encrypted(&ca_only));
    let require = with("127.0.0.1", SslMode::Require, None).unwrap();
    assert!(encrypted(&require));
    let plain = with("127.0.0.1", SslMode::Disable, None).unwrap();
    assert!(!encrypted(&plain), "sslmode=disable must not use TLS");
}

/// `Db::for_each` reads PostgreSQL rows through a cursor, a fetch at a time:
/// the rows arrive in order across fetches, the connection is free inside
/// the callback (a query, a nested stream), a write transaction cannot
/// start inside the stream's own read transaction, and a failed callback
/// leaves nothing open.
#[test]
fn rows_stream_through_a_cursor_and_leave_nothing_open() {
    let db = empty_database();
    let store = Store::open_postgres(&target(&db)).unwrap();
    let raw = store.raw_db();
    let n = custodian::store::db::STREAM_ROWS as i64 * 2 + 500;
    let open_cursors = |raw: &custodian::store::db::Db| -> i64 {
        raw.query_row(
            "SELECT count(*) FROM pg_cursors WHERE name LIKE 'custodian_rows_%'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    let mut seen = vec![];
    let mut nested = vec![];
    raw.for_each("SELECT g FROM generate_series(1, ?1) g", [n], |r| {
        let g: i64 = r.get(0)?;
        if g == 1 {
            assert_eq!(open_cursors(raw), 1, "the rows come through a cursor");
            raw.for_each("SELECT g * 10 FROM generate_series(1, 3) g", [], |r| {
                nested.push(r.get::<i64>(0)?);
                Ok(())
            })?;
            let err = raw.transaction().map(|_| ()).unwrap_err();
            assert_eq!(err.code, ErrorCode::Internal, "{err:?}");
        }
        seen.push(g);
        Ok(())
    })
    .unwrap();
    assert_eq!(seen, (1..=n).collect::<Vec<_>>());
    assert_eq!(nested, [10, 20, 30]);
    assert_eq!(open_cursors(raw), 0);
    assert!(!raw.in_transaction());

    // A callback that fails mid-stream: its error, and nothing left open.
    let mut count = 0;
    let err = raw
        .for_each("SELECT g FROM generate_series(1, ?1) g", [n], |_| {
            count += 1;
            if count == 2500 {
                return Err(custodian::Error::invalid("stop here"));
            }
            Ok(())
        })
        .unwrap_err();
    assert_eq!(err.message, "stop here");
    assert_eq!(open_cursors(raw), 0);
    // Inside a write transaction the cursor is the transaction's, closed
    // when done, and the transaction goes on.
    let tx = raw.transaction().unwrap();
    let mut m = 0;
    tx.for_each("SELECT g FROM generate_series(1, ?1) g", [n], |_| {
        m += 1;
        Ok(())
    })
    .unwrap();
    assert_eq!(m, n);
    assert_eq!(open_cursors(&tx), 0);
    tx.commit().unwrap();
}

/// A load takes PostgreSQL's statistics of what it wrote, in its own
/// transaction, so the checks and case opening after it are planned on the
/// rows there (without them a load at XL scanned every identity per case).
#[test]
fn a_load_leaves_statistics_of_the_tables_it_filled() {
    let db = empty_database();
    let mut store = Store::open_postgres(&target(&db)).unwrap();
    custodian::ops::load_demo(&mut store, custodian::demo::DemoSize::S, 7, now()).unwrap();
    let analysed: Vec<String> = store
        .raw_db()
        .query_map(
            "SELECT DISTINCT tablename::text FROM pg_stats WHERE schemaname = current_schema()
             AND tablename IN ('people', 'identities', 'credentials', 'resources', 'grants', 'delegations', 'findings')
             ORDER BY 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        analysed,
        ["credentials", "delegations", "findings", "grants", "identities", "people", "resources"]
    );
    // The owner and builder indexes were built before the load updated an
    // identity, so its own case lookups could use them (an index built
    // after an update in the same transaction is marked `indcheckxmin` and
    // left unused until the transaction ends).
    let unusable: Vec<String> = store
        .raw_db()
        .query_map(
            "SELECT c.relname::text FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
             WHERE c.relname IN ('identities_owner', 'identities_builder') AND x.indcheckxmin
               AND c.relnamespace = current_schema()::regnamespace",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(unusable.is_empty(), "{unusable:?}");
}

/// Every store connection plans as the app's queries want: UTC, its own
/// schema first, cursors read whole, and no JIT (its compile time exceeds
/// what it saves on queries of tens of milliseconds).
#[test]
fn a_store_connection_sets_what_its_queries_are_planned_for() {
    let db = empty_database();
    let store = Store::open_postgres(&target(&db)).unwrap();
    let setting = |name: &str| -> String {
        store
            .raw_db()
            .query_row("SELECT current_setting(?1)", [name], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(setting("jit"), "off");
    assert_eq!(setting("cursor_tuple_fraction"), "1");
    assert_eq!(setting("TimeZone"), "UTC");
    assert!(
        setting("search_path").starts_with("custodian"),
        "{}",
        setting("search_path")
    );
}
