//! A resync applies what changed: an identity whose row and holdings
//! (credentials, grants, delegations) are as the last applied fetch had
//! them is skipped by its digest, and the cache ends exactly where applying
//! everything would have left it.

use chrono::Duration;
use custodian::model::*;
use custodian::store::Store;
use custodian::sync::records::*;

use crate::util::{days_ago, now};

const IDENTITIES: [&str; 6] = ["svc-a", "svc-b", "svc-c", "svc-d", "svc-e", "svc-f"];

/// Every identity holds a credential and two grants; svc-a delegates to
/// svc-b. `edit` changes the fetch before it is returned.
fn fetch(edit: impl FnOnce(&mut Fetched)) -> Fetched {
    let mut f = Fetched::new(FetchMode::Full);
    f.people.push(PersonRecord {
        external_id: "u1".into(),
        display_name: "Uma".into(),
        email: "uma@x.test".into(),
        department: String::new(),
        title: String::new(),
        manager: None,
        status: PersonStatus::Active,
        left_at: None,
    });
    for r in ["r1", "r2"] {
        f.resources.push(ResourceRecord {
            external_id: r.into(),
            name: format!("resource {r}"),
            kind: "db".into(),
            sensitivity: Sensitivity::Low,
            environment: String::new(),
        });
    }
    for id in IDENTITIES {
        f.identities.push(IdentityRecord {
            external_id: id.into(),
            name: id.into(),
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
        f.credentials.push(CredentialRecord {
            identity: id.into(),
            external_id: format!("{id}-key"),
            kind: CredentialKind::ClientSecret,
            display_name: format!("{id} key"),
            // Undated: the cache keeps when it first saw it.
            created_at: None,
            expires_at: Some(now() + Duration::days(60)),
            last_rotated_at: None,
            last_used_at: Some(days_ago(2)),
        });
        for (r, permission) in [("r1", "read"), ("r2", "write")] {
            f.grants.push(GrantRecord {
                identity: id.into(),
                resource: r.into(),
                permission: permission.into(),
                privilege: Privilege::Read,
                high_consequence: false,
                last_used_at: Some(days_ago(3)),
            });
        }
    }
    f.delegations.push(DelegationRecord {
        from: "svc-a".into(),
        to: "svc-b".into(),
        kind: DelegationKind::AssumeRole,
        condition: None,
        reason: None,
    });
    edit(&mut f);
    f
}

fn sync(
    store: &mut Store,
    source: SourceId,
    f: &Fetched,
    at: chrono::DateTime<chrono::Utc>,
) -> custodian::store::sync::ApplyReport {
    let run = store.begin_sync_run(source, at).unwrap();
    store.apply_fetch(source, run, f, at).unwrap()
}

/// Everything the identities hold, with the rows' ids: a skipped identity
/// keeps its rows as they were.
fn holdings(store: &Store) -> Vec<String> {
    let db = store.raw_db();
    let mut out = vec![];
    for sql in [
        "SELECT i.external_id || ' credential ' || c.id || ' ' || c.external_id || ' ' || c.kind || ' ' || c.display_name
                || ' ' || c.created_at || ' ' || coalesce(c.expires_at, 0) || ' ' || coalesce(c.last_used_at, 0)
         FROM credentials c JOIN identities i ON i.id = c.identity_id",
        "SELECT i.external_id || ' grant ' || g.id || ' ' || r.external_id || ' ' || g.permission || ' ' || g.privilege
                || ' ' || coalesce(g.last_used_at, 0) || ' ' || coalesce(g.condition, '-')
         FROM grants g JOIN identities i ON i.id = g.identity_id JOIN resources r ON r.id = g.resource_id",
        "SELECT f.external_id || ' delegates ' || d.kind || ' to ' || t.external_id || ' ' || coalesce(d.reason, '-')
         FROM delegations d JOIN identities f ON f.id = d.from_id JOIN identities t ON t.id = d.to_id",
        "SELECT external_id || ' is ' || status FROM identities",
    ] {
        let mut st = db.prepare(sql).unwrap();
        let rows = st.query_map([], |r| r.get::<String>(0)).unwrap();
        out.extend(rows.map(Result::unwrap));
    }
    out.sort();
    out
}

fn one(store: &Store, sql: &str) -> String {
    store
        .raw_db()
        .query_row(sql, [], |r| r.get::<String>(0))
        .unwrap()
}

#[test]
fn a_resync_skips_identities_whose_holdings_are_as_stored_and_applies_the_rest() {
    let mut store = crate::util::test_store();
    let src = store
        .add_source("test", "Registry", &serde_json::json!({}), now())
        .unwrap();
    let first = sync(&mut store, src, &fetch(|_| {}), days_ago(10));
    assert_eq!(first.unchanged, 0, "a first sync compares everything");
    let created_first = days_ago(10).timestamp().to_string();
    let before = holdings(&store);

    // The same fetch again: every identity skipped, nothing rewritten.
    let again = sync(&mut store, src, &fetch(|_| {}), days_ago(9));
    assert_eq!(again.unchanged, IDENTITIES.len());
    assert_eq!(holdings(&store), before);

    // Four identities change what they hold (the whole source is read),
    // and one its row alone; then one (only its holdings are read). Each
    // change lands.
    let v2 = |f: &mut Fetched| {
        f.grants[0].privilege = Privilege::Admin; // svc-a r1
        f.credentials[1].expires_at = Some(now() + Duration::days(5)); // svc-b
        f.grants
            .retain(|g| !(g.identity == "svc-c" && g.resource == "r2"));
        f.credentials[3].display_name = "renamed".into(); // svc-d
                                                          // svc-f's row changes, not what it holds.
        f.identities[5].status = IdentityStatus::Disabled;
        // svc-c: its undated credential is compared and keeps its first date.
    };
    let r2 = sync(&mut store, src, &fetch(v2), days_ago(8));
    assert_eq!(r2.unchanged, 2, "svc-e and svc-f are as stored");
    let v3 = |f: &mut Fetched| {
        v2(f);
        f.delegations[0].reason = Some("ci deploys".into()); // svc-a
    };
    let r3 = sync(&mut store, src, &fetch(v3), days_ago(7));
    assert_eq!(r3.unchanged, IDENTITIES.len() - 1);
    let now_held = holdings(&store);
    for expected in [
        "svc-a grant",
        "svc-a delegates assume_role to svc-b ci deploys",
        "renamed",
    ] {
        assert!(
            now_held.iter().any(|h| h.contains(expected)),
            "{expected} not applied: {now_held:#?}"
        );
    }
    assert!(now_held
        .iter()
        .any(|h| h.starts_with("svc-a grant") && h.contains("r1 read admin")));
    assert!(!now_held
        .iter()
        .any(|h| h.starts_with("svc-c grant") && h.contains(" r2 ")));
    assert_eq!(
        one(
            &store,
            "SELECT CAST(created_at AS TEXT) FROM credentials WHERE external_id = 'svc-c-key'"
        ),
        created_first,
        "an undated credential keeps the date its first sync saw it"
    );

    // svc-e leaves the source, then comes back holding what it held: its
    // holdings were deleted with it, so they are written again.
    let gone = |f: &mut Fetched| {
        v3(f);
        f.identities.retain(|i| i.external_id != "svc-e");
        f.credentials.retain(|c| c.identity != "svc-e");
        f.grants.retain(|g| g.identity != "svc-e");
    };
    sync(&mut store, src, &fetch(gone), days_ago(6));
    assert!(!holdings(&store)
        .iter()
        .any(|h| h.starts_with("svc-e credential") || h.starts_with("svc-e grant")));
    let back = sync(&mut store, src, &fetch(v3), days_ago(5));
    assert_eq!(back.unchanged, IDENTITIES.len() - 1, "svc-e is compared");
    let held = holdings(&store);
    assert_eq!(
        held.iter()
            .filter(|h| h.starts_with("svc-e credential") || h.starts_with("svc-e grant"))
            .count(),
        3,
        "svc-e's credential and two grants are back: {held:#?}"
    );

    // A cache from before the digests (or one whose holdings something else
    // wrote) compares everything once, and is left as applying gives.
    let settled = holdings(&store);
    store
        .raw_db()
        .execute("UPDATE identities SET children_digest = NULL", [])
        .unwrap();
    let upgraded = sync(&mut store, src, &fetch(v3), days_ago(4));
    assert_eq!(upgraded.unchanged, 0);
    assert_eq!(holdings(&store), settled);
    let next = sync(&mut store, src, &fetch(v3), days_ago(3));
    assert_eq!(next.unchanged, IDENTITIES.len());
    assert_eq!(holdings(&store), settled);
}

/// A skipped identity's records are still checked: a grant on a resource
/// the source no longer returns fails the apply, which leaves the cache as
/// it was.
#[test]
fn a_skipped_identitys_grant_on_a_vanished_resource_still_fails_the_apply() {
    let mut store = crate::util::test_store();
    let src = store
        .add_source("test", "Registry", &serde_json::json!({}), now())
        .unwrap();
    sync(&mut store, src, &fetch(|_| {}), days_ago(2));
    let before = holdings(&store);
    let f = fetch(|f| f.resources.retain(|r| r.external_id != "r2"));
    let run = store.begin_sync_run(src, days_ago(1)).unwrap();
    let err = store.apply_fetch(src, run, &f, days_ago(1)).unwrap_err();
    assert!(err.to_string().contains("resource r2"), "{err}");
    assert_eq!(holdings(&store), before);
}

fn blast_of(store: &Store, identity: &str) -> f64 {
    store
        .raw_db()
        .query_row(
            "SELECT blast_score FROM identities WHERE external_id = ?1",
            [identity],
            |r| r.get::<f64>(0),
        )
        .unwrap()
}

/// A sync that wrote nothing the access graph is made of keeps the stored
/// blast radii (and still adds its point to the trend); one that did ranks
/// the graph again.
#[test]
fn a_resync_that_changes_nothing_keeps_the_stored_blast_radii_and_one_that_does_ranks_again() {
    use custodian::posture::{record_after_sync, trend};
    let mut store = crate::util::test_store();
    let src = store
        .add_source("test", "Registry", &serde_json::json!({}), now())
        .unwrap();
    let first = sync(&mut store, src, &fetch(|_| {}), days_ago(5));
    assert!(first.graph_changed);
    record_after_sync(&store, first.graph_changed, days_ago(5)).unwrap();
    let ranked = blast_of(&store, "svc-a");
    let points = trend(&store, 100).unwrap().len();

    // A mark on the stored radius: only ranking again removes it.
    store
        .raw_db()
        .execute(
            "UPDATE identities SET blast_score = blast_score + 1000 WHERE external_id = 'svc-a'",
            [],
        )
        .unwrap();
    let person_renamed = |f: &mut Fetched| f.people[0].display_name = "Uma B.".into();
    let same = sync(&mut store, src, &fetch(person_renamed), days_ago(4));
    assert!(!same.graph_changed, "a person's name is not in the graph");
    record_after_sync(&store, same.graph_changed, days_ago(4)).unwrap();
    assert_eq!(blast_of(&store, "svc-a"), ranked + 1000.0);
    assert_eq!(trend(&store, 100).unwrap().len(), points + 1);
    // Nor are an identity's owner, its last use or its credentials.
    let not_in_graph = |f: &mut Fetched| {
        person_renamed(f);
        f.identities[2].owner = None;
        f.identities[3].last_used_at = Some(days_ago(0));
        f.credentials[4].expires_at = None;
    };
    let quiet = sync(&mut store, src, &fetch(not_in_graph), days_ago(4));
    assert!(!quiet.graph_changed);
    assert_eq!(
        quiet.unchanged,
        IDENTITIES.len() - 1,
        "svc-e's credential changed"
    );
    record_after_sync(&store, quiet.graph_changed, days_ago(4)).unwrap();
    assert_eq!(blast_of(&store, "svc-a"), ranked + 1000.0);

    for (what, edit) in [
        (
            "a delegation",
            Box::new(|f: &mut Fetched| {
                person_renamed(f);
                f.delegations.push(DelegationRecord {
                    from: "svc-c".into(),
                    to: "svc-a".into(),
                    kind: DelegationKind::AssumeRole,
                    condition: None,
                    reason: None,
                });
            }) as Box<dyn Fn(&mut Fetched)>,
        ),
        (
            "an identity's status",
            Box::new(|f: &mut Fetched| {
                person_renamed(f);
                f.identities[1].status = IdentityStatus::Disabled;
            }),
        ),
        (
            "a resource's sensitivity",
            Box::new(|f: &mut Fetched| {
                person_renamed(f);
                f.resources[1].sensitivity = Sensitivity::Critical;
            }),
        ),
    ] {
        store
            .raw_db()
            .execute(
                "UPDATE identities SET blast_score = blast_score + 1000 WHERE external_id = 'svc-a'",
                [],
            )
            .unwrap();
        let changed = sync(&mut store, src, &fetch(edit), days_ago(3));
        assert!(changed.graph_changed, "{what}");
        record_after_sync(&store, changed.graph_changed, days_ago(3)).unwrap();
        assert!(
            blast_of(&store, "svc-a") < ranked + 1000.0,
            "{what}: the radii are ranked again"
        );
    }
}
