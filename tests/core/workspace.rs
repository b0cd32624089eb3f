//! The team workspace on PostgreSQL: the database is the security boundary.
//! Each test builds its own database and its own logins (role names are
//! cluster-wide: unique per test, dropped at the end), and tries every
//! forbidden action as a plain member login with a raw client. Never with
//! the cluster's superuser. Skipped without `CUSTODIAN_TEST_PG`.

use std::collections::HashMap;

use custodian::store::pg::PgTarget;
use custodian::store::Store;
use custodian::workspace::{role_prefix, Role};

use crate::pg::{admin_client, url_of};
use crate::util::now;

pub(crate) fn have_pg() -> bool {
    std::env::var("CUSTODIAN_TEST_PG").is_ok_and(|u| !u.is_empty())
}

/// Logins created for one test, dropped (with the database) on drop.
pub(crate) struct Logins {
    pub(crate) db: String,
    names: Vec<String>,
    password: String,
}

impl Logins {
    pub(crate) fn new(db: &str) -> Logins {
        let seed = format!(
            "{}-{db}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        );
        let password = custodian::store::audit::length_prefixed(&[seed.as_bytes()])
            .iter()
            .fold(String::new(), |mut s, b| {
                s.push_str(&format!("{b:02x}"));
                s
            });
        Logins {
            db: db.into(),
            names: Vec::new(),
            password: format!("pw{}", &password[password.len() - 24..]),
        }
    }

    pub(crate) fn create(&mut self, tag: &str) -> String {
        let name = format!("{}_{tag}", self.db);
        admin_client("postgres")
            .batch_execute(&format!(
                "CREATE ROLE {name} LOGIN PASSWORD '{}'",
                self.password
            ))
            .unwrap();
        self.names.push(name.clone());
        name
    }

    pub(crate) fn client(&self, login: &str) -> postgres::Client {
        let t = PgTarget::parse(&url_of(&self.db)).unwrap();
        let mut cfg = postgres::Config::new();
        cfg.host(t.host.as_deref().unwrap_or("127.0.0.1"))
            .port(t.port.unwrap_or(5432))
            .user(login)
            .password(&self.password)
            .dbname(&self.db);
        let mut c = cfg.connect(postgres::NoTls).unwrap();
        c.batch_execute("SET search_path = custodian, pg_temp")
            .unwrap();
        c
    }

    pub(crate) fn url(&self, login: &str) -> String {
        url_of(&self.db).replacen("custodian_test@", &format!("{login}:{}@", self.password), 1)
    }

    pub(crate) fn target(&self, login: &str) -> PgTarget {
        PgTarget::parse(&self.url(login)).unwrap()
    }
}

impl Drop for Logins {
    fn drop(&mut self) {
        let mut a = admin_client("postgres");
        let _ = a.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.db));
        for n in &self.names {
            let _ = a.batch_execute(&format!("DROP ROLE IF EXISTS {n}"));
        }
        if let Ok(prefix) = role_prefix(&self.db) {
            for r in Role::ALL {
                let _ = a.batch_execute(&format!("DROP ROLE IF EXISTS {prefix}{}", r.as_str()));
            }
        }
    }
}

fn refused(e: &postgres::Error) -> bool {
    e.code().is_some_and(|c| c.code() == "42501")
}

/// Runs `sql` as one transaction of `c`; the error when it (or its commit) fails.
fn tx_err(c: &mut postgres::Client, sql: &str) -> Option<postgres::Error> {
    let mut tx = c.transaction().unwrap();
    if let Err(e) = tx.batch_execute(sql) {
        return Some(e);
    }
    tx.commit().err()
}

/// A fresh database holding the S demo (seed `seed`), standing in for a
/// real organisation (a source adds to it), opened as the suite's
/// superuser; and the logins made for it.
pub(crate) fn demo_database(seed: u64) -> (Logins, PgTarget, Store) {
    let db = crate::pg::fresh_database();
    let logins = Logins::new(&db);
    let t = PgTarget::parse(&url_of(&db)).unwrap();
    let mut store = Store::open_postgres(&t).unwrap();
    custodian::ops::load_demo(&mut store, custodian::demo::DemoSize::S, seed, now()).unwrap();
    store
        .raw_db()
        .execute(
            "UPDATE meta SET value = 'workspace-test' WHERE key = 'dataset'",
            [],
        )
        .unwrap();
    (logins, t, store)
}

/// How many identities, not deleted, `person` owns (read as `store`'s login).
fn owned_by(store: &Store, person: i64) -> i64 {
    store
        .raw_db()
        .query_row(
            "SELECT count(*) FROM identities WHERE owner_id = ?1 AND status <> 'deleted'",
            [person],
            |r| r.get(0),
        )
        .unwrap()
}

fn now_plus(days: i64) -> chrono::DateTime<chrono::Utc> {
    now() + chrono::Duration::days(days)
}

#[test]
fn members_are_bound_by_the_database_and_decisions_carry_their_person() {
    use custodian::campaigns::{ReviewItemId, UndecidedPolicy};
    if !have_pg() {
        eprintln!("skipped: CUSTODIAN_TEST_PG is not set");
        return;
    }
    let (mut logins, t, store) = demo_database(7);
    let db = logins.db.clone();
    let owner = store.resolve_person("1").unwrap();
    // A leaver who owns identities, their active manager, and a bystander case.
    let pairs: Vec<(i64, i64)> = store
        .raw_db()
        .query_map(
            "SELECT p.id, p.manager_id FROM people p JOIN people m ON m.id = p.manager_id
             WHERE p.status = 'active' AND m.status = 'active' AND p.id <> ?1 AND m.id <> ?1
               AND EXISTS (SELECT 1 FROM identities i WHERE i.owner_id = p.id AND i.status <> 'deleted')
             ORDER BY p.id",
            [owner],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let (leaver, manager_p) = pairs[0];
    let (other_leaver, _) = *pairs
        .iter()
        .find(|(l, m)| *m != manager_p && *l != manager_p && *l != leaver)
        .expect("a second leaver with another manager");
    let taken = [owner, leaver, manager_p, other_leaver];
    let people: Vec<i64> = store
        .raw_db()
        .query_map(
            "SELECT id FROM people WHERE status = 'active' ORDER BY id",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let others: Vec<i64> = people.into_iter().filter(|p| !taken.contains(p)).collect();

    let (admin_p, auditor_p, owner2_p) = (
        others[others.len() - 1],
        others[others.len() - 2],
        others[others.len() - 3],
    );

    // Init as the DBA, with a plain login as first admin.
    let admin = logins.create("admin");
    let prefix = role_prefix(&db).unwrap();
    assert!(store.workspace_init(&prefix, &admin, admin_p).unwrap());
    assert!(
        !store.workspace_init(&prefix, &admin, admin_p).unwrap(),
        "applied once"
    );
    assert!(store.is_workspace().unwrap());
    drop(store);

    let mut as_admin = Store::open_postgres(&logins.target(&admin)).unwrap();
    assert_eq!(as_admin.workspace_current_person().unwrap(), Some(admin_p));
    let own = logins.create("owner");
    as_admin
        .workspace_member_add(&own, owner, &[Role::CampaignOwner])
        .unwrap();
    let own2 = logins.create("owner2");
    as_admin
        .workspace_member_add(&own2, owner2_p, &[Role::CampaignOwner])
        .unwrap();
    let mgr = logins.create("manager");
    as_admin
        .workspace_member_add(&mgr, manager_p, &[Role::Manager])
        .unwrap();
    let aud = logins.create("auditor");
    as_admin
        .workspace_member_add(&aud, auditor_p, &[Role::Auditor])
        .unwrap();
    let stranger = logins.create("stranger");
    let err = as_admin.workspace_member_add(&format!("{db}_nobody"), manager_p, &[Role::Reviewer]);
    assert!(err.is_err(), "a login that does not exist is refused");

    // The admin adds a source (a CSV registry) the worker will sync.
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("registry.csv");
    let registry = |round: usize| crate::util::changing_registry("ws-agent", 40, round);
    std::fs::write(&csv, registry(0)).unwrap();
    let source = custodian::ops::add_source(
        &mut as_admin,
        &custodian::sync::secrets::MemorySecrets::default(),
        "csv",
        "registry",
        serde_json::json!({"path": csv.display().to_string()}),
        None,
        now(),
    )
    .unwrap();
    let source = custodian::model::SourceId(source.id);

    // The owner creates the campaign through the store, as their login.
    let mut as_owner = Store::open_postgres(&logins.target(&own)).unwrap();
    assert_eq!(custodian::ops::actor(&as_owner, None).unwrap(), owner);
    let c = crate::util::identities_campaign("Workspace certification", owner, 14);
    let campaign = as_owner.create_campaign(owner, &c, now()).unwrap();
    let campaign_n: i64 = serde_json::to_value(campaign).unwrap().as_i64().unwrap();
    let su = Store::open_postgres(&t).unwrap();
    let items_of = |person: i64| -> Vec<i64> {
        su.raw_db()
            .query_map(
                "SELECT id FROM campaign_items WHERE campaign_id = ?1 AND reviewer_id = ?2 ORDER BY id",
                custodian::store::db::params![campaign_n, person],
                |r| r.get(0),
            )
            .unwrap()
    };
    // Reviewers: the three busiest of the campaign who hold no other part.
    let busy: Vec<i64> = su
        .raw_db()
        .query_map(
            "SELECT reviewer_id FROM campaign_items WHERE campaign_id = ?1 AND reviewer_id IS NOT NULL
             GROUP BY reviewer_id ORDER BY count(*) DESC, reviewer_id",
            [campaign_n],
            |r| r.get(0),
        )
        .unwrap();
    let reviewer_people: Vec<i64> = busy
        .into_iter()
        .filter(|p| !taken.contains(p) && ![admin_p, auditor_p, owner2_p].contains(p))
        .take(3)
        .collect();
    assert_eq!(reviewer_people.len(), 3);
    let mut rev = Vec::new();
    for (i, person) in reviewer_people.iter().enumerate() {
        let l = logins.create(&format!("rev{i}"));
        as_admin
            .workspace_member_add(&l, *person, &[Role::Reviewer])
            .unwrap();
        rev.push((l, *person));
    }
    let queues: Vec<Vec<i64>> = rev.iter().map(|(_, p)| items_of(*p)).collect();
    assert!(queues.iter().all(|q| q.len() >= 2), "{queues:?}");
    // Another owner's campaign cannot be created in this owner's name.
    let e = as_owner.create_campaign(owner2_p, &c, now()).unwrap_err();
    assert!(
        e.message.contains("row-level security") || e.code == custodian::ErrorCode::Forbidden,
        "{e:?}"
    );

    // A reviewer sees only their own queue and cannot touch another's item.
    let (l0, p0) = rev[0].clone();
    let mut r0 = logins.client(&l0);
    let n: i64 = r0
        .query_one("SELECT count(*) FROM campaign_items", &[])
        .unwrap()
        .get(0);
    assert_eq!(n as usize, queues[0].len());
    let foreign = queues[1][0];
    let changed = r0
        .execute(
            "UPDATE campaign_items SET decision = 'keep', decided_by = custodian.current_person() WHERE id = $1",
            &[&foreign],
        )
        .unwrap();
    assert_eq!(changed, 0, "deciding someone else's item changes nothing");
    let mine = queues[0][0];
    for (what, sql) in [
        ("an audit entry written by hand", "INSERT INTO audit_log (seq, at, actor, action, subject, details, prev_hash, hash) VALUES (999999, 0, 'x', 'x', 'x', '{}', 'x', 'x')".to_string()),
        ("making oneself admin", format!("SELECT custodian.member_add('{l0}', {p0}, ARRAY['admin'])")),
        ("a decision without its audit entry", format!("UPDATE campaign_items SET decision = 'keep', decided_by = custodian.current_person(), decided_at = 1 WHERE id = {mine}")),
        ("a decision in someone else's name", format!("UPDATE campaign_items SET decision = 'keep', decided_by = {} WHERE id = {mine}; SELECT custodian.audit_append('review.decide', 'x', '{{}}')", rev[1].1)),
        ("a fake close-policy decision", format!("UPDATE campaign_items SET decision = 'keep', by_policy = 1 WHERE id = {mine}; SELECT custodian.audit_append('review.decide', 'x', '{{}}')")),
        ("rewriting what an item is about", format!("UPDATE campaign_items SET risk = 1 WHERE id = {mine}")),
        ("moving an item to the identity's builder", format!("UPDATE campaign_items SET reviewer_id = i.builder_id FROM identities i WHERE i.id = campaign_items.identity_id AND campaign_items.id = {mine} AND i.builder_id IS NOT NULL AND i.builder_id <> {p0}; SELECT custodian.audit_append('review.delegate', 'x', '{{}}'); SELECT 1/(SELECT count(*) FROM campaign_items WHERE id = {mine} AND reviewer_id <> {p0})")),
        ("a second stage sent back to its proposer", format!("UPDATE campaign_items SET proposed = 'keep', proposed_by = {p0}, stage = 2 WHERE id = {mine}; SELECT custodian.audit_append('review.decide', 'x', '{{}}')")),
        ("a second stage sent to a friend", format!("UPDATE campaign_items SET proposed = 'keep', proposed_by = {p0}, stage = 2, reviewer_id = {} WHERE id = {mine}; SELECT custodian.audit_append('review.decide', 'x', '{{}}')", rev[1].1)),
        ("deleting a review item", format!("DELETE FROM campaign_items WHERE id = {mine}")),
        ("closing the campaign", format!("UPDATE campaigns SET status = 'closed' WHERE id = {campaign_n}; SELECT 1/(SELECT count(*) FROM campaigns WHERE id = {campaign_n} AND status = 'closed')")),
    ] {
        let e = tx_err(&mut r0, &sql).unwrap_or_else(|| panic!("{what}: allowed"));
        assert!(
            refused(&e) || e.code().is_some_and(|c| c.code() == "22012"),
            "{what}: {e:?}"
        );
    }
    let state: (Option<String>, i64) = su
        .raw_db()
        .query_row(
            "SELECT decision, stage FROM campaign_items WHERE id = ?1",
            [mine],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(state, (None, 1), "nothing of the refused changes stayed");

    // An auditor reads everything and changes nothing.
    let mut a = logins.client(&aud);
    let all: i64 = a
        .query_one("SELECT count(*) FROM campaign_items", &[])
        .unwrap()
        .get(0);
    assert!(all as usize > queues[0].len());
    for sql in [
        "UPDATE campaign_items SET decision = 'keep'",
        "UPDATE campaigns SET status = 'closed'",
        "DELETE FROM audit_log",
        "UPDATE audit_log SET actor = 'someone'",
        "UPDATE identities SET owner_id = NULL",
        "INSERT INTO tasks (origin, kind, identity_id, target, status, created_at, updated_at) VALUES ('campaign', 'x', 1, 'x', 'open', 0, 0)",
        "SELECT custodian.audit_append('x', 'x', '{}')",
        "INSERT INTO members (login, person_id, roles, added_by, added_at) VALUES ('x', 1, ARRAY['admin'], 'x', 0)",
    ] {
        let e = tx_err(&mut a, sql).unwrap_or_else(|| panic!("{sql}: allowed"));
        assert!(refused(&e), "{sql}: {e:?}");
    }
    // Even the admin cannot rewrite the audit log or delete decisions.
    let mut ad = logins.client(&admin);
    for sql in [
        "DELETE FROM audit_log",
        "DELETE FROM campaign_items",
        "DELETE FROM campaigns",
        "DELETE FROM tasks",
    ] {
        let e = tx_err(&mut ad, sql).unwrap_or_else(|| panic!("admin {sql}: allowed"));
        assert!(refused(&e), "admin {sql}: {e:?}");
    }
    // A login that is no member can call nothing.
    let e = logins
        .client(&stranger)
        .execute("SELECT custodian.audit_append('x', 'x', '{}')", &[])
        .unwrap_err();
    assert!(refused(&e), "{e:?}");

    // Another owner cannot close this campaign, even by direct SQL.
    let closed = logins
        .client(&own2)
        .execute(
            "UPDATE campaigns SET status = 'closed' WHERE id = $1",
            &[&campaign_n],
        )
        .unwrap();
    assert_eq!(closed, 0);
    let mut as_owner2 = Store::open_postgres(&logins.target(&own2)).unwrap();
    assert!(as_owner2
        .close_campaign(owner2_p, campaign, UndecidedPolicy::Keep, now())
        .is_err());

    // The store as a member: the actor is the login's person; --as and
    // whoami --set are refused.
    let as_rev = Store::open_postgres(&logins.target(&l0)).unwrap();
    assert_eq!(custodian::ops::actor(&as_rev, None).unwrap(), p0);
    let e = custodian::ops::actor(&as_rev, Some("1")).unwrap_err();
    assert_eq!(e.code, custodian::ErrorCode::Forbidden);
    drop(as_rev);
    let as_stranger = Store::open_postgres(&logins.target(&stranger));
    if let Ok(s) = as_stranger {
        assert_eq!(
            custodian::ops::actor(&s, None).unwrap_err().code,
            custodian::ErrorCode::Forbidden
        );
    }

    // An owner may assign an item to themselves, but not then decide it.
    let taken_item = queues[2][0];
    as_owner
        .reassign_reviewer(owner, &[ReviewItemId(taken_item)], owner, "I will look", now())
        .map(|_| ())
        .or_else(|e| {
            // the store refuses it outright (the friendly message); force it by SQL
            assert_ne!(e.code, custodian::ErrorCode::Internal, "{e:?}");
            let mut o = logins.client(&own);
            tx_err(&mut o, &format!("UPDATE campaign_items SET reviewer_id = {owner} WHERE id = {taken_item}; SELECT custodian.audit_append('review.reassign', 'x', '{{}}')"))
                .map_or(Ok(()), Err)
        })
        .unwrap();
    let e = tx_err(
        &mut logins.client(&own),
        &format!("UPDATE campaign_items SET decision = 'keep', decided_by = {owner}, decided_at = 1 WHERE id = {taken_item}; SELECT custodian.audit_append('review.decide', 'x', '{{}}')"),
    )
    .expect("deciding an item one assigned to oneself is refused");
    assert!(refused(&e), "{e:?}");
    let queues: Vec<Vec<i64>> = rev.iter().map(|(_, p)| items_of(*p)).collect();

    // Reviewers decide their queues in parallel processes (the CLI, each as
    // their own login) while the admin's worker syncs the registry.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let syncer = {
        let (target, stop, csv) = (logins.target(&admin), stop.clone(), csv.clone());
        std::thread::spawn(move || {
            let mut store = Store::open_postgres(&target).unwrap();
            let mut runs = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) || runs == 0 {
                custodian::ops::sync_source(
                    &mut store,
                    source,
                    &custodian::sync::secrets::MemorySecrets::default(),
                    std::sync::Arc::new(|_: &custodian::sync::SyncProgress| {}),
                    custodian::sync::http::Cancel::new(),
                )
                .unwrap_or_else(|e| panic!("sync round {runs} failed: {e:?}"));
                runs += 1;
                std::fs::write(&csv, registry(runs)).unwrap();
            }
            runs
        })
    };
    let exe = env!("CARGO_BIN_EXE_custodian");
    let handles: Vec<_> = rev
        .iter()
        .zip(&queues)
        .map(|((l, _), items)| {
            let url = logins.url(l);
            let items = items.clone();
            std::thread::spawn(move || {
                for chunk in items.chunks(2) {
                    let mut cmd = std::process::Command::new(exe);
                    cmd.arg("--db").arg(&url).args(["campaign", "decide"]);
                    cmd.args(chunk.iter().map(|i| i.to_string()));
                    cmd.args(["--decision", "keep", "--justification", "still needed"]);
                    let out = cmd
                        .env_remove("CUSTODIAN_DB")
                        .env_remove("PGPASSFILE")
                        .output()
                        .unwrap();
                    assert!(
                        out.status.success(),
                        "{}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let runs = syncer.join().unwrap();
    assert!(runs >= 1);

    // A decided item stays decided.
    let e = tx_err(
        &mut r0,
        &format!("UPDATE campaign_items SET decision = 'retire', decided_by = {p0} WHERE id = {mine}; SELECT custodian.audit_append('review.decide', 'x', '{{}}')"),
    )
    .expect("a decision is final");
    assert!(refused(&e), "{e:?}");

    // The owner closes their own campaign through the store.
    let report = as_owner
        .close_campaign(owner, campaign, UndecidedPolicy::Keep, now())
        .unwrap();
    let decided: usize = queues.iter().map(Vec::len).sum();
    assert_eq!(report.decided_by_people as usize, decided, "{report:?}");

    // The manager hands over their leaver's identities; not another's.
    let case = custodian::ops::mark_departing(
        &mut as_admin,
        admin_p,
        &leaver.to_string(),
        &now_plus(7).format("%Y-%m-%d").to_string(),
        "moving on",
        now(),
    )
    .unwrap()
    .expect("a case opens for someone who owns identities");
    let other_case = custodian::ops::mark_departing(
        &mut as_admin,
        admin_p,
        &other_leaver.to_string(),
        &now_plus(7).format("%Y-%m-%d").to_string(),
        "moving on",
        now(),
    )
    .unwrap()
    .unwrap();
    let mut as_mgr = Store::open_postgres(&logins.target(&mgr)).unwrap();
    let cases = custodian::ops::offboarding_cases(&as_mgr, None, None).unwrap();
    assert_eq!(
        cases.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![case],
        "a manager sees their own reports' cases only"
    );
    let plan = custodian::offboarding::OffboardPlan {
        items: vec![],
        action: custodian::offboarding::OffboardAction::Transfer,
        owner: Some(manager_p),
        until: None,
        rotate: true,
    };
    assert!(
        custodian::ops::plan_offboarding(&mut as_mgr, manager_p, other_case, &plan, now()).is_err()
    );
    let planned =
        custodian::ops::plan_offboarding(&mut as_mgr, manager_p, case, &plan, now()).unwrap();
    assert!(planned > 0);
    let applied = custodian::ops::apply_offboarding(&mut as_mgr, manager_p, case, now()).unwrap();
    assert!(applied.closed && applied.transferred > 0, "{applied:?}");
    let owned = owned_by(&su, leaver);
    assert_eq!(owned, 0, "every identity of the leaver has its new owner");
    let e = tx_err(
        &mut logins.client(&mgr),
        &format!("UPDATE identities SET owner_id = {manager_p} WHERE owner_id = {other_leaver}; SELECT custodian.audit_append('x', 'x', '{{}}'); SELECT 1/(SELECT count(*) FROM identities WHERE owner_id = {manager_p} AND id IN (SELECT id FROM identities WHERE builder_id = {other_leaver} OR owner_id = {other_leaver}))"),
    );
    let other_owned: i64 = su
        .raw_db()
        .query_row(
            "SELECT count(*) FROM identities WHERE owner_id = ?1",
            [other_leaver],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        other_owned > 0,
        "another manager's leaver is untouched ({e:?})"
    );

    // A removed member can no longer act.
    let (l2, _) = rev[2].clone();
    as_admin.workspace_member_remove(&l2).unwrap();
    let mut r2 = logins.client(&l2);
    match r2.execute(
        "UPDATE custodian.campaign_items SET justification = 'x' WHERE id = $1",
        &[&queues[2][0]],
    ) {
        Ok(n) => assert_eq!(n, 0),
        Err(e) => assert!(refused(&e), "{e:?}"),
    }
    let e = r2
        .execute("SELECT custodian.audit_append('x', 'x', '{}')", &[])
        .unwrap_err();
    assert!(refused(&e), "{e:?}");
    let members = as_admin.workspace_members().unwrap();
    assert!(
        members
            .iter()
            .any(|m| m.login == l2 && m.removed_at.is_some()),
        "history kept"
    );

    // Every decision's actor is the person behind its login, once each; the
    // chain holds.
    let names: HashMap<i64, String> = su
        .raw_db()
        .query_map("SELECT id, display_name FROM people", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap()
        .into_iter()
        .collect();
    for ((_, person), items) in rev.iter().zip(&queues) {
        for id in items {
            let actors: Vec<String> = su
                .raw_db()
                .query_map(
                    "SELECT actor FROM audit_log WHERE action = 'review.decide' AND subject LIKE ?1",
                    [format!("item {id} %")],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(actors, vec![names[person].clone()], "item {id}");
            let by: Option<i64> = su
                .raw_db()
                .query_row(
                    "SELECT decided_by FROM campaign_items WHERE id = ?1",
                    [id],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(by, Some(*person));
        }
    }
    let closer: String = su
        .raw_db()
        .query_row(
            "SELECT actor FROM audit_log WHERE action = 'campaign.close'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(closer, names[&owner]);
    let handover: Vec<String> = su
        .raw_db()
        .query_map(
            "SELECT DISTINCT actor FROM audit_log WHERE action LIKE 'offboarding.appl%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(handover, vec![names[&manager_p].clone()]);
    let entries = su.audit_entries(0, 1_000_000).unwrap();
    let v = custodian::store::audit::verify_entries(&entries);
    assert!(v.ok, "{v:?}");
    let full = su.verify_audit().unwrap();
    assert!(full.ok, "{full:?}");
    assert!(
        full.signature_note
            .as_deref()
            .is_some_and(|n| n.contains("not yet signed")),
        "the unsigned tail is reported as such: {full:?}"
    );

    // A newer workspace layer is refused.
    admin_client(&db)
        .batch_execute("UPDATE custodian.workspace_marker SET version = 99")
        .unwrap();
    let e = su.workspace_init(&prefix, &admin, admin_p).unwrap_err();
    assert_eq!(e.code, custodian::ErrorCode::DatabaseTooNew);
}

#[test]
fn in_solo_mode_an_audit_entry_records_the_os_account_behind_the_claim() {
    let mut store = Store::open_in_memory().unwrap();
    custodian::ops::load_demo(&mut store, custodian::demo::DemoSize::S, 7, now()).unwrap();
    assert!(!store.is_workspace().unwrap());
    custodian::ops::set_acting_person(&mut store, "1", now()).unwrap();
    let entries = store.audit_entries(0, 1_000_000).unwrap();
    let last = entries.last().unwrap();
    assert_eq!(last.action, "settings.acting_person");
    let d: serde_json::Value = serde_json::from_str(&last.details).unwrap();
    assert_eq!(d["os_account"], custodian::store::audit::os_account());
    assert!(store.verify_audit().unwrap().ok);
}

/// The names of a `pg_class` kind in the `custodian` schema, as the DBA sees them.
fn schema_objects(db: &str, sql: &str) -> Vec<(String, bool)> {
    admin_client(db)
        .query(sql, &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[test]
fn every_table_sequence_and_function_of_the_schema_has_a_grant_decision() {
    use custodian::store::workspace::{Exec, Policy, FUNCTION_POLICY, TABLE_POLICY};
    if !have_pg() {
        eprintln!("skipped: CUSTODIAN_TEST_PG is not set");
        return;
    }
    let db = crate::pg::fresh_database();
    let mut logins = Logins::new(&db);
    admin_client(&db)
        .batch_execute(
            "INSERT INTO custodian.sources (kind, name) VALUES ('csv', 'hr');
             INSERT INTO custodian.people (source_id, external_id, display_name, status)
               SELECT id, 'maya', 'Maya', 'active' FROM custodian.sources",
        )
        .unwrap();
    let t = PgTarget::parse(&url_of(&db)).unwrap();
    let store = Store::open_postgres(&t).unwrap();
    let person = store.resolve_person("Maya").unwrap();
    let admin = logins.create("admin");
    let prefix = role_prefix(&db).unwrap();
    assert!(store.workspace_init(&prefix, &admin, person).unwrap());
    assert_eq!(store.workspace_undecided().unwrap(), Vec::<String>::new());

    // Listed here independently of the layer's own check: every table has
    // row-level security or is on the commented allow-list, and the list
    // names nothing that is not there.
    let tables = schema_objects(
        &db,
        "SELECT c.relname::text, c.relrowsecurity FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = 'custodian' AND c.relkind IN ('r', 'p', 'v', 'm', 'f') ORDER BY 1",
    );
    assert!(tables.len() >= 25, "{tables:?}");
    for (name, rls) in &tables {
        let policy = TABLE_POLICY
            .iter()
            .find(|(t, _)| t == name)
            .map(|(_, p)| *p)
            .unwrap_or_else(|| panic!("custodian.{name} has no decision in TABLE_POLICY"));
        assert_eq!(*rls, policy == Policy::Rls, "custodian.{name}: {policy:?}");
    }
    for (name, _) in TABLE_POLICY {
        assert!(tables.iter().any(|(t, _)| t == name), "{name} is gone");
    }
    // Members other than the admin write none of the read-only tables.
    let mut dba = admin_client(&db);
    for (name, policy) in TABLE_POLICY {
        for role in Role::ALL {
            let group = custodian::workspace::group_role(&prefix, role);
            let writes: bool = dba
                .query_one(
                    "SELECT has_table_privilege($1::text, $2::text, 'INSERT') OR has_any_column_privilege($1::text, $2::text, 'UPDATE')
                         OR has_table_privilege($1::text, $2::text, 'DELETE') OR has_table_privilege($1::text, $2::text, 'TRUNCATE')",
                    &[&group, &format!("custodian.{name}")],
                )
                .unwrap()
                .get(0);
            let may = match policy {
                Policy::Rls => continue,
                Policy::Read => role == Role::Admin,
                Policy::Write(roles) => role == Role::Admin || roles.contains(&role),
                Policy::Definer => false,
            };
            assert!(
                !writes || may,
                "{} writes custodian.{name} ({policy:?})",
                group
            );
        }
    }
    // Every sequence belongs to a decided table; every function is listed,
    // and one granted to some roles only is not PUBLIC's.
    let loose = schema_objects(
        &db,
        "SELECT s.relname::text, false FROM pg_class s JOIN pg_namespace n ON n.oid = s.relnamespace
          WHERE n.nspname = 'custodian' AND s.relkind = 'S'
            AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = s.oid AND d.deptype IN ('a', 'i'))",
    );
    assert_eq!(loose, vec![], "sequences that belong to no table");
    let functions = schema_objects(
        &db,
        "SELECT DISTINCT p.proname::text, EXISTS (SELECT 1 FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                 WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE')
           FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'custodian' ORDER BY 1",
    );
    assert!(functions.iter().any(|(f, _)| f == "my_reports"));
    for (name, public) in &functions {
        let exec = FUNCTION_POLICY
            .iter()
            .find(|(f, _)| f == name)
            .map(|(_, e)| *e)
            .unwrap_or_else(|| panic!("custodian.{name}() has no decision in FUNCTION_POLICY"));
        assert_eq!(
            *public,
            exec == Exec::Public,
            "custodian.{name}(): {exec:?}"
        );
    }

    // A table, a sequence and a function a later migration adds without a
    // layer decision are named, and init refuses until they have one.
    dba.batch_execute(
        "CREATE TABLE custodian.future_notes (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, note TEXT);
         CREATE SEQUENCE custodian.future_counter;
         CREATE FUNCTION custodian.future_helper() RETURNS INT LANGUAGE sql AS 'SELECT 1';",
    )
    .unwrap();
    let problems = store.workspace_undecided().unwrap();
    for needle in [
        "custodian.future_notes ",
        "custodian.future_counter ",
        "custodian.future_helper ",
    ] {
        assert!(
            problems.iter().any(|p| p.contains(needle)),
            "{needle}: {problems:?}"
        );
    }
    let e = store.workspace_init(&prefix, &admin, person).unwrap_err();
    assert!(e.message.contains("custodian.future_notes"), "{e:?}");
    dba.batch_execute(
        "DROP TABLE custodian.future_notes; DROP SEQUENCE custodian.future_counter;
         DROP FUNCTION custodian.future_helper();",
    )
    .unwrap();
    // A decided table that loses its row-level security, or a read-only one
    // a role may suddenly write, is named too.
    let reviewer = custodian::workspace::group_role(&prefix, Role::Reviewer);
    dba.batch_execute(&format!(
        "ALTER TABLE custodian.departures DISABLE ROW LEVEL SECURITY;
         GRANT UPDATE (display_name) ON custodian.people TO {reviewer};
         GRANT EXECUTE ON FUNCTION custodian.member_remove(TEXT) TO {reviewer};"
    ))
    .unwrap();
    let problems = store.workspace_undecided().unwrap();
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems[0].contains("custodian.departures"), "{problems:?}");
    assert!(
        problems[1].contains("custodian.people: the reviewer group writes it"),
        "{problems:?}"
    );
    assert!(
        problems[2].contains("custodian.member_remove: the reviewer group may call it"),
        "{problems:?}"
    );
    drop(store);
}

#[test]
fn a_manager_marks_their_own_reports_departing_and_hands_over_as_their_login() {
    use custodian::offboarding::{OffboardAction, OffboardPlan};
    use custodian::ErrorCode;
    if !have_pg() {
        eprintln!("skipped: CUSTODIAN_TEST_PG is not set");
        return;
    }
    let (mut logins, _, store) = demo_database(7);
    let db = logins.db.clone();
    let ids = |sql: &str| -> Vec<(i64, i64)> {
        store
            .raw_db()
            .query_map(sql, [], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
    };
    // Active reports of active managers who own identities, whose other
    // records (same email) name no other manager: (report, manager).
    let owning = ids(
        "SELECT p.id, p.manager_id FROM people p JOIN people m ON m.id = p.manager_id
          WHERE p.status = 'active' AND m.status = 'active' AND p.left_at IS NULL AND m.left_at IS NULL
            AND EXISTS (SELECT 1 FROM identities i WHERE i.owner_id = p.id AND i.status <> 'deleted')
            AND NOT EXISTS (SELECT 1 FROM people q WHERE q.id <> p.id AND trim(p.email) <> ''
                             AND lower(q.email) = lower(p.email) AND q.manager_id IS DISTINCT FROM p.manager_id)
          ORDER BY p.id",
    );
    let all_reports = ids(
        "SELECT p.id, p.manager_id FROM people p WHERE p.status = 'active' AND p.manager_id IS NOT NULL ORDER BY p.id",
    );
    let reports_of = |m: i64| -> Vec<i64> {
        all_reports
            .iter()
            .filter(|(_, x)| *x == m)
            .map(|(p, _)| *p)
            .collect()
    };
    // The manager: one with an owning report and another report besides.
    let (leaver, manager_p) = *owning
        .iter()
        .find(|(p, m)| reports_of(*m).iter().any(|r| r != p))
        .expect("a manager with two reports, one owning identities");
    let mine = reports_of(manager_p);
    let other_report = *mine.iter().find(|r| **r != leaver).unwrap();
    // Another manager's report who owns identities, and a non-report.
    let (foreign, _) = *owning
        .iter()
        .find(|(p, m)| *m != manager_p && !mine.contains(p) && *p != manager_p)
        .expect("another manager's report");
    let foreign_identity: i64 = store
        .raw_db()
        .query_row(
            "SELECT id FROM identities WHERE owner_id = ?1 AND status <> 'deleted' ORDER BY id LIMIT 1",
            [foreign],
            |r| r.get(0),
        )
        .unwrap();
    let taken = [leaver, manager_p, other_report, foreign];
    let free: Vec<i64> = store
        .raw_db()
        .query_map(
            "SELECT id FROM people WHERE status = 'active' AND left_at IS NULL ORDER BY id",
            [],
            |r| r.get(0),
        )
        .unwrap()
        .into_iter()
        .filter(|p| !taken.contains(p) && !mine.contains(p))
        .collect();
    let (admin_p, reviewer_p, auditor_p, stranger_p) = (free[0], free[1], free[2], free[3]);

    // A layer-2 workspace: the manager cannot mark anyone there.
    let admin = logins.create("admin");
    let prefix = role_prefix(&db).unwrap();
    assert!(store
        .workspace_init_layer(&prefix, &admin, admin_p, 2)
        .unwrap());
    let version = || -> i64 {
        admin_client(&db)
            .query_one("SELECT version FROM custodian.workspace_marker", &[])
            .unwrap()
            .get(0)
    };
    assert_eq!(version(), 2);
    let mut as_admin = Store::open_postgres(&logins.target(&admin)).unwrap();
    let mgr = logins.create("manager");
    as_admin
        .workspace_member_add(&mgr, manager_p, &[Role::Manager])
        .unwrap();
    let rev = logins.create("reviewer");
    as_admin
        .workspace_member_add(&rev, reviewer_p, &[Role::Reviewer])
        .unwrap();
    let aud = logins.create("auditor");
    as_admin
        .workspace_member_add(&aud, auditor_p, &[Role::Auditor])
        .unwrap();
    let on = now_plus(7).format("%Y-%m-%d").to_string();
    let mut as_mgr = Store::open_postgres(&logins.target(&mgr)).unwrap();
    let e =
        custodian::ops::mark_departing(&mut as_mgr, manager_p, &leaver.to_string(), &on, "", now())
            .unwrap_err();
    assert_eq!(e.code, ErrorCode::Forbidden, "layer 2: {e:?}");
    // The admin marks someone on layer 2; the upgrade keeps it all.
    let kept_case = custodian::ops::mark_departing(
        &mut as_admin,
        admin_p,
        &foreign.to_string(),
        &on,
        "before the upgrade",
        now(),
    )
    .unwrap()
    .expect("a case for someone who owns identities");
    let members_before = as_admin.workspace_members().unwrap();
    let entries_before = store.audit_entries(0, 1_000_000).unwrap();
    drop(as_mgr);
    drop(as_admin);

    assert!(
        store.workspace_init(&prefix, &admin, admin_p).unwrap(),
        "upgraded"
    );
    assert!(
        !store.workspace_init(&prefix, &admin, admin_p).unwrap(),
        "once"
    );
    assert_eq!(version(), 3);
    let as_admin = Store::open_postgres(&logins.target(&admin)).unwrap();
    assert_eq!(as_admin.workspace_members().unwrap(), members_before);
    assert_eq!(store.audit_entries(0, 1_000_000).unwrap(), entries_before);
    let kept: (i64, String, custodian::campaigns::CaseId) = store
        .raw_db()
        .query_row(
            "SELECT d.person_id, d.note, c.id FROM departures d JOIN offboarding_cases c ON c.person_id = d.person_id
              WHERE c.status = 'open'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(kept, (foreign, "before the upgrade".to_string(), kept_case));

    // The manager marks their report departing as their own login: the
    // departure, the case (theirs to decide) and both audit entries.
    let mut as_mgr = Store::open_postgres(&logins.target(&mgr)).unwrap();
    assert_eq!(custodian::ops::actor(&as_mgr, None).unwrap(), manager_p);
    let case = custodian::ops::mark_departing(
        &mut as_mgr,
        manager_p,
        &leaver.to_string(),
        &on,
        "moving on",
        now(),
    )
    .unwrap()
    .expect("a case opens for a report who owns identities");
    let names: HashMap<i64, String> = store
        .raw_db()
        .query_map("SELECT id, display_name FROM people", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap()
        .into_iter()
        .collect();
    let (case_manager, status, marked_by): (Option<i64>, String, String) = store
        .raw_db()
        .query_row(
            "SELECT c.manager_id, c.status, d.marked_by FROM offboarding_cases c JOIN departures d ON d.person_id = c.person_id
              WHERE c.id = ?1",
            [case],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        (case_manager, status.as_str(), marked_by.as_str()),
        (Some(manager_p), "open", names[&manager_p].as_str())
    );
    let entries = store.audit_entries(0, 1_000_000).unwrap();
    let new: Vec<(&str, &str)> = entries[entries_before.len()..]
        .iter()
        .map(|e| (e.action.as_str(), e.actor.as_str()))
        .collect();
    assert_eq!(
        new,
        vec![
            ("offboarding.mark_departing", names[&manager_p].as_str()),
            ("offboarding.open", names[&manager_p].as_str())
        ]
    );
    // (The demo's earlier leavers of this manager have their cases too.)
    let cases: Vec<_> = custodian::ops::offboarding_cases(&as_mgr, None, None)
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert!(
        cases.contains(&case) && !cases.contains(&kept_case),
        "{cases:?}"
    );

    // Another manager's report, and someone who is nobody's report of
    // theirs: refused by the database, through the store as by raw SQL.
    for (what, person) in [
        ("another manager's report", foreign),
        ("a non-report", stranger_p),
    ] {
        let e = custodian::ops::mark_departing(
            &mut as_mgr,
            manager_p,
            &person.to_string(),
            &on,
            "",
            now(),
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::Forbidden, "{what}: {e:?}");
    }
    let mut m = logins.client(&mgr);
    let mark = |person: i64, by: &str| {
        format!(
            "INSERT INTO departures (person_id, departing_on, note, marked_by, marked_at) VALUES ({person}, 1, '', {by}, 0)
             ON CONFLICT (person_id) DO UPDATE SET departing_on = 2, marked_by = excluded.marked_by;
             SELECT custodian.audit_append('offboarding.mark_departing', 'x', '{{}}')"
        )
    };
    for (what, sql) in [
        ("another manager's report", mark(foreign, "custodian.my_name()")),
        ("a non-report", mark(stranger_p, "custodian.my_name()")),
        ("one's report in someone else's name", mark(other_report, "'Someone Else'")),
        (
            "one's report without the audit entry",
            format!("INSERT INTO departures (person_id, departing_on, note, marked_by, marked_at) VALUES ({other_report}, 1, '', custodian.my_name(), 0)"),
        ),
        (
            "a case for a report who is not leaving",
            format!("INSERT INTO offboarding_cases (person_id, reason, opened_at, manager_id, status) VALUES ({other_report}, 'x', 0, custodian.current_person(), 'open'); SELECT custodian.audit_append('offboarding.open', 'x', '{{}}')"),
        ),
        (
            "someone else's identity in one's case",
            format!("INSERT INTO offboarding_items (case_id, identity_id, relation) VALUES ({case}, {foreign_identity}, 'owner'); SELECT custodian.audit_append('x', 'x', '{{}}')"),
        ),
        (
            "deleting a departure",
            format!("DELETE FROM departures WHERE person_id = {foreign}; SELECT 1/(SELECT count(*) FROM departures WHERE person_id = {foreign}) - 1"),
        ),
        (
            "a timeline entry in someone else's name",
            format!("INSERT INTO identity_events (identity_id, at, actor, kind, detail) VALUES ({foreign_identity}, 0, 'Someone Else', 'transferred', 'forged')"),
        ),
    ] {
        let e = tx_err(&mut m, &sql).unwrap_or_else(|| panic!("{what}: allowed"));
        assert!(
            refused(&e) || e.code().is_some_and(|c| c.code() == "22012"),
            "{what}: {e:?}"
        );
    }
    // Re-dating another manager's leaver matches no row.
    let n = m
        .execute(
            "UPDATE departures SET departing_on = 1 WHERE person_id = $1",
            &[&foreign],
        )
        .unwrap();
    assert_eq!(n, 0);

    // A reviewer and an auditor mark nobody, not even the manager's report.
    for login in [&rev, &aud] {
        let mut s = Store::open_postgres(&logins.target(login)).unwrap();
        let me = custodian::ops::actor(&s, None).unwrap();
        let e =
            custodian::ops::mark_departing(&mut s, me, &other_report.to_string(), &on, "", now())
                .unwrap_err();
        assert_eq!(e.code, ErrorCode::Forbidden, "{login}: {e:?}");
        let e = tx_err(
            &mut logins.client(login),
            &mark(other_report, "custodian.my_name()"),
        )
        .unwrap_or_else(|| panic!("{login}: allowed"));
        assert!(refused(&e), "{login}: {e:?}");
    }
    let departures: Vec<(i64, i64)> = store
        .raw_db()
        .query_map(
            "SELECT person_id, departing_on FROM departures ORDER BY person_id",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        departures.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
        {
            let mut v = vec![leaver, foreign];
            v.sort();
            v
        },
        "nothing of the refused marks stayed"
    );
    assert!(departures.iter().all(|(_, on)| *on > 2), "{departures:?}");

    // The manager plans and applies the handover as their own login.
    let plan = OffboardPlan {
        items: vec![],
        action: OffboardAction::Transfer,
        owner: Some(manager_p),
        until: None,
        rotate: true,
    };
    let planned =
        custodian::ops::plan_offboarding(&mut as_mgr, manager_p, case, &plan, now()).unwrap();
    assert!(planned > 0);
    let applied = custodian::ops::apply_offboarding(&mut as_mgr, manager_p, case, now()).unwrap();
    assert!(applied.closed && applied.transferred > 0, "{applied:?}");
    let owned = owned_by(&store, leaver);
    assert_eq!(owned, 0);
    // The other manager's leaver is untouched, and the chain holds.
    let foreign_owned = owned_by(&store, foreign);
    assert!(foreign_owned > 0);
    let entries = store.audit_entries(0, 1_000_000).unwrap();
    assert!(entries[entries_before.len()..]
        .iter()
        .all(|e| e.actor == names[&manager_p]));
    assert!(custodian::store::audit::verify_entries(&entries).ok);
    assert!(store.verify_audit().unwrap().ok);

    // Departures recorded without a case yet (here by the DBA, as a source's
    // import would): the manager's `offboard` opens their report's case and
    // leaves another manager's due case to a sync.
    let elsewhere: i64 = store
        .raw_db()
        .query_row(
            "SELECT p.id FROM people p WHERE p.status = 'active' AND p.manager_id IS NOT NULL AND p.manager_id <> ?1
               AND p.id NOT IN (?2, ?3, ?4, ?5)
               AND EXISTS (SELECT 1 FROM identities i WHERE i.owner_id = p.id AND i.status <> 'deleted')
               AND NOT EXISTS (SELECT 1 FROM offboarding_cases oc WHERE oc.person_id = p.id)
             ORDER BY p.id LIMIT 1",
            custodian::store::db::params![manager_p, leaver, foreign, other_report, stranger_p],
            |r| r.get(0),
        )
        .unwrap();
    for p in [other_report, elsewhere] {
        store
            .raw_db()
            .execute(
                "INSERT INTO departures (person_id, departing_on, note, marked_by, marked_at) VALUES (?1, 1, '', 'HR feed', 0)",
                [p],
            )
            .unwrap();
    }
    let opened =
        custodian::ops::offboard_person(&mut as_mgr, &other_report.to_string(), now()).unwrap();
    assert_eq!(opened.summary.manager_id, Some(manager_p));
    assert_eq!(opened.summary.status, "open");
    assert_eq!(
        store.case_of(elsewhere).unwrap(),
        None,
        "not the manager's to open"
    );
    drop(as_admin);
}
