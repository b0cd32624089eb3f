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

fn have_pg() -> bool {
    std::env::var("CUSTODIAN_TEST_PG").is_ok_and(|u| !u.is_empty())
}

/// Logins created for one test, dropped (with the database) on drop.
struct Logins {
    db: String,
    names: Vec<String>,
    password: String,
}

impl Logins {
    fn new(db: &str) -> Logins {
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

    fn create(&mut self, tag: &str) -> String {
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

    fn client(&self, login: &str) -> postgres::Client {
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

    fn target(&self, login: &str) -> PgTarget {
        let admin = url_of(&self.db);
        let url = admin.replacen("custodian_test@", &format!("{login}:{}@", self.password), 1);
        PgTarget::parse(&url).unwrap()
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

#[test]
fn members_are_bound_by_the_database_and_decisions_carry_their_person() {
    if !have_pg() {
        eprintln!("skipped: CUSTODIAN_TEST_PG is not set");
        return;
    }
    let db = crate::pg::fresh_database();
    let mut logins = Logins::new(&db);
    let t = PgTarget::parse(&url_of(&db)).unwrap();
    let mut store = Store::open_postgres(&t).unwrap();
    custodian::ops::load_demo(&mut store, custodian::demo::DemoSize::S, 7, now()).unwrap();
    let owner = store.resolve_person("1").unwrap();
    let c = crate::util::identities_campaign("Workspace certification", owner, 14);
    // The id as a plain number (the campaign id type is serde-transparent).
    let campaign: i64 = serde_json::to_value(store.create_campaign(owner, &c, now()).unwrap())
        .unwrap()
        .as_i64()
        .unwrap();
    let mut by_reviewer: HashMap<i64, Vec<i64>> = HashMap::new();
    for (r, item) in store
        .raw_db()
        .query_map(
            "SELECT reviewer_id, id FROM campaign_items WHERE campaign_id = ?1 AND reviewer_id IS NOT NULL AND reviewer_id <> ?2 ORDER BY id",
            custodian::store::db::params![campaign, owner],
            |r| Ok((r.get::<i64>(0)?, r.get::<i64>(1)?)),
        )
        .unwrap()
    {
        by_reviewer.entry(r).or_default().push(item);
    }
    let mut busiest: Vec<(i64, Vec<i64>)> = by_reviewer.into_iter().collect();
    busiest.sort_by_key(|(r, items)| (std::cmp::Reverse(items.len()), *r));
    let reviewers: Vec<(i64, Vec<i64>)> = busiest.into_iter().take(3).collect();
    assert_eq!(reviewers.len(), 3);
    let people: Vec<i64> = store
        .raw_db()
        .query_map("SELECT id FROM people ORDER BY id LIMIT 20", [], |r| {
            r.get(0)
        })
        .unwrap();
    let others: Vec<i64> = people
        .into_iter()
        .filter(|p| *p != owner && reviewers.iter().all(|(r, _)| r != p))
        .collect();
    let (admin_p, manager_p, auditor_p, owner2_p) = (others[0], others[1], others[2], others[3]);

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

    let as_admin = Store::open_postgres(&logins.target(&admin)).unwrap();
    assert_eq!(as_admin.workspace_current_person().unwrap(), Some(admin_p));
    let mut rev = Vec::new();
    for (i, (person, items)) in reviewers.iter().enumerate() {
        let l = logins.create(&format!("rev{i}"));
        as_admin
            .workspace_member_add(&l, *person, &[Role::Reviewer])
            .unwrap();
        rev.push((l, *person, items.clone()));
    }
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

    // A reviewer sees only their own queue and cannot touch another's item.
    let (l0, p0, items0) = rev[0].clone();
    let mut r0 = logins.client(&l0);
    let n: i64 = r0
        .query_one("SELECT count(*) FROM campaign_items", &[])
        .unwrap()
        .get(0);
    assert_eq!(n as usize, items0.len());
    let foreign = rev[1].2[0];
    let changed = r0
        .execute(
            "UPDATE campaign_items SET decision = 'keep', decided_by = custodian.current_person() WHERE id = $1",
            &[&foreign],
        )
        .unwrap();
    assert_eq!(changed, 0, "deciding someone else's item changes nothing");
    let e = r0
        .execute(
            "INSERT INTO audit_log (seq, at, actor, action, subject, details, prev_hash, hash) VALUES (999999, 0, 'x', 'x', 'x', '{}', 'x', 'x')",
            &[],
        )
        .unwrap_err();
    assert!(refused(&e), "{e:?}");
    let e = r0
        .execute(
            "SELECT custodian.member_add($1, $2, ARRAY['admin'])",
            &[&l0, &p0],
        )
        .unwrap_err();
    assert!(
        refused(&e),
        "a reviewer cannot make themselves admin: {e:?}"
    );
    let e = r0.execute(
        "UPDATE campaign_items SET reviewer_id = reviewer_id WHERE id = $1",
        &[&items0[0]],
    );
    assert!(e.is_ok());

    // An auditor reads everything and changes nothing.
    let mut a = logins.client(&aud);
    let all: i64 = a
        .query_one("SELECT count(*) FROM campaign_items", &[])
        .unwrap()
        .get(0);
    assert!(all as usize > items0.len());
    for sql in [
        "UPDATE campaign_items SET decision = 'keep'",
        "UPDATE campaigns SET status = 'closed'",
        "DELETE FROM audit_log",
        "UPDATE audit_log SET actor = 'someone'",
        "INSERT INTO members (login, person_id, roles, added_by, added_at) VALUES ('x', 1, ARRAY['admin'], 'x', 0)",
    ] {
        let e = a.execute(sql, &[]).unwrap_err();
        assert!(refused(&e), "{sql}: {e:?}");
    }
    // Even the admin cannot rewrite the audit log.
    let e = logins
        .client(&admin)
        .execute("DELETE FROM audit_log", &[])
        .unwrap_err();
    assert!(refused(&e), "{e:?}");
    // A login that is no member can call nothing.
    let e = logins
        .client(&stranger)
        .execute("SELECT custodian.audit_append('x', 'x', '{}')", &[])
        .unwrap_err();
    assert!(refused(&e), "{e:?}");

    // Another owner cannot close this campaign.
    let closed = logins
        .client(&own2)
        .execute(
            "UPDATE campaigns SET status = 'closed' WHERE id = $1",
            &[&campaign],
        )
        .unwrap();
    assert_eq!(closed, 0);

    // The store as a member: the actor is the login's person; --as and
    // whoami --set are refused.
    let as_rev = Store::open_postgres(&logins.target(&l0)).unwrap();
    assert_eq!(custodian::ops::actor(&as_rev, None).unwrap(), p0);
    let e = custodian::ops::actor(&as_rev, Some("1")).unwrap_err();
    assert_eq!(e.code, custodian::ErrorCode::Forbidden);
    let as_stranger = Store::open_postgres(&logins.target(&stranger));
    if let Ok(s) = as_stranger {
        assert_eq!(
            custodian::ops::actor(&s, None).unwrap_err().code,
            custodian::ErrorCode::Forbidden
        );
    }

    // Two-person rules: a decision is recorded as its own decider, and an
    // owner cannot reassign an item to themselves.
    let e = r0
        .execute(
            "UPDATE campaign_items SET decision = 'keep', decided_by = $2 WHERE id = $1",
            &[&items0[0], &rev[1].1],
        )
        .unwrap_err();
    assert!(refused(&e), "{e:?}");
    let e = logins
        .client(&own)
        .execute(
            "UPDATE campaign_items SET reviewer_id = $2 WHERE id = $1",
            &[&items0[0], &owner],
        )
        .unwrap_err();
    assert!(refused(&e), "{e:?}");

    // Reviewers decide their own items in parallel, as their own logins.
    let handles: Vec<_> = rev
        .iter()
        .map(|(l, _, items)| {
            let mut c = logins.client(l);
            let items = items.clone();
            std::thread::spawn(move || {
                for id in items {
                    let mut tx = c.transaction().unwrap();
                    let n = tx
                        .execute(
                            "UPDATE campaign_items SET decision = 'keep', decided_by = custodian.current_person(),
                                 decided_at = 1, justification = 'still needed' WHERE id = $1",
                            &[&id],
                        )
                        .unwrap();
                    assert_eq!(n, 1);
                    tx.execute(
                        "SELECT custodian.audit_append('campaign.decide', $1, '{}')",
                        &[&id.to_string()],
                    )
                    .unwrap();
                    tx.commit().unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    // The owner closes their own campaign.
    let closed = logins
        .client(&own)
        .execute(
            "UPDATE campaigns SET status = 'closed' WHERE id = $1",
            &[&campaign],
        )
        .unwrap();
    assert_eq!(closed, 1);

    // A removed member can no longer act.
    let (l2, _, items2) = rev[2].clone();
    as_admin.workspace_member_remove(&l2).unwrap();
    let mut r2 = logins.client(&l2);
    match r2.execute(
        "UPDATE custodian.campaign_items SET decision = 'retire' WHERE id = $1",
        &[&items2[0]],
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

    // Every decision's actor is the person behind its login; the chain holds.
    let su = Store::open_postgres(&t).unwrap();
    let names: HashMap<i64, String> = su
        .raw_db()
        .query_map("SELECT id, display_name FROM people", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap()
        .into_iter()
        .collect();
    for (_, person, items) in &rev {
        for id in items {
            let actor: String = su
                .raw_db()
                .query_row(
                    "SELECT actor FROM audit_log WHERE action = 'campaign.decide' AND subject = ?1",
                    [id.to_string()],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(&actor, &names[person]);
        }
    }
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
