//! Inventory queries over the demo organisation and hand-built cases.

use std::sync::OnceLock;

use custodian::demo::{generate, DemoSize, DEFAULT_SEED};
use custodian::model::*;
use custodian::ops;
use custodian::store::Store;
use custodian::views::{InventoryQuery, OwnerState, SortKey};
use custodian::ErrorCode;

use crate::util::{now, OrgBuilder};

fn demo_store() -> Store {
    let mut store = crate::util::test_store();
    ops::load_demo(&mut store, DemoSize::S, DEFAULT_SEED, now()).unwrap();
    store
}

fn demo_org() -> &'static OrgSnapshot {
    static ORG: OnceLock<OrgSnapshot> = OnceLock::new();
    ORG.get_or_init(|| generate(DemoSize::S, DEFAULT_SEED, now()))
}

fn q() -> InventoryQuery {
    InventoryQuery::default()
}

#[test]
fn unfiltered_query_counts_everything_and_pages_by_default() {
    let store = demo_store();
    let page = ops::inventory(&store, &q(), now()).unwrap();
    assert_eq!(page.total, 1000);
    assert_eq!(page.rows.len(), 100, "default page size");
    let names: Vec<String> = page.rows.iter().map(|r| r.name.to_lowercase()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "sorted by name ascending");
}

#[test]
fn kind_filter_matches_the_generated_data() {
    let store = demo_store();
    let expected = demo_org()
        .identities
        .iter()
        .filter(|i| i.kind == IdentityKind::AiAgent)
        .count();
    let page = ops::inventory(
        &store,
        &InventoryQuery {
            kinds: vec![IdentityKind::AiAgent],
            limit: 1000,
            ..q()
        },
        now(),
    )
    .unwrap();
    assert_eq!(page.total as usize, expected);
    assert!(page
        .rows
        .iter()
        .all(|r| r.kind == IdentityKind::AiAgent && r.agent_class.is_some()));
}

#[test]
fn filters_combine() {
    let store = demo_store();
    let expected = demo_org()
        .identities
        .iter()
        .filter(|i| {
            matches!(i.kind, IdentityKind::Bot | IdentityKind::OauthApp)
                && i.status == IdentityStatus::Active
        })
        .count();
    let page = ops::inventory(
        &store,
        &InventoryQuery {
            kinds: vec![IdentityKind::Bot, IdentityKind::OauthApp],
            statuses: vec![IdentityStatus::Active],
            ..q()
        },
        now(),
    )
    .unwrap();
    assert_eq!(page.total as usize, expected);
}

#[test]
fn departed_owner_filter_returns_only_orphans() {
    let store = demo_store();
    let org = demo_org();
    let departed: std::collections::HashSet<PersonId> = org
        .people
        .iter()
        .filter(|p| p.status != PersonStatus::Active)
        .map(|p| p.id)
        .collect();
    let expected = org
        .identities
        .iter()
        .filter(|i| i.owner.is_some_and(|o| departed.contains(&o)))
        .count();
    let page = ops::inventory(
        &store,
        &InventoryQuery {
            owner_state: Some(OwnerState::Departed),
            limit: 1000,
            ..q()
        },
        now(),
    )
    .unwrap();
    assert_eq!(page.total as usize, expected);
    assert!(expected > 0);
    assert!(page
        .rows
        .iter()
        .all(|r| r.owner_status.is_some_and(|s| s != PersonStatus::Active)));

    let none = ops::inventory(
        &store,
        &InventoryQuery {
            owner_state: Some(OwnerState::None),
            ..q()
        },
        now(),
    )
    .unwrap();
    assert_eq!(
        none.total as usize,
        org.identities.iter().filter(|i| i.owner.is_none()).count()
    );
}

#[test]
fn search_matches_names_purposes_and_owners_by_prefix() {
    let store = demo_store();
    let org = demo_org();
    let by_purpose = org
        .identities
        .iter()
        .filter(|i| i.purpose.to_lowercase().contains("invoice"))
        .count();
    let page = ops::inventory(
        &store,
        &InventoryQuery {
            search: "invoic".into(),
            limit: 1000,
            ..q()
        },
        now(),
    )
    .unwrap();
    assert!(
        page.total as usize >= by_purpose && by_purpose > 0,
        "{} vs {by_purpose}",
        page.total
    );

    // Owner name search: pick an owner and search their full name.
    let owner = &org.people[(org.identities[0].owner.unwrap().0 - 1) as usize];
    let page = ops::inventory(
        &store,
        &InventoryQuery {
            search: owner.display_name.clone(),
            limit: 1000,
            ..q()
        },
        now(),
    )
    .unwrap();
    assert!(
        page.rows.iter().any(|r| r.id == 1),
        "identity 1 found by its owner's name"
    );

    // Operators and quotes are harmless.
    let page = ops::inventory(
        &store,
        &InventoryQuery {
            search: "\"NEAR( OR *".into(),
            ..q()
        },
        now(),
    )
    .unwrap();
    assert!(page.total >= 0);
    let nothing = ops::inventory(
        &store,
        &InventoryQuery {
            search: "zzzqqqxxx".into(),
            ..q()
        },
        now(),
    )
    .unwrap();
    assert_eq!(nothing.total, 0);
}

#[test]
fn paging_is_stable_and_disjoint() {
    let store = demo_store();
    let mut seen = std::collections::HashSet::new();
    for sort in [
        SortKey::Name,
        SortKey::Risk,
        SortKey::Owner,
        SortKey::LastUsed,
        SortKey::OldestCredential,
    ] {
        seen.clear();
        for offset in (0..1000).step_by(250) {
            let page = ops::inventory(
                &store,
                &InventoryQuery {
                    sort,
                    offset,
                    limit: 250,
                    ..q()
                },
                now(),
            )
            .unwrap();
            for r in page.rows {
                assert!(
                    seen.insert(r.id),
                    "row {} repeated across pages for {sort:?}",
                    r.id
                );
            }
        }
        assert_eq!(seen.len(), 1000, "{sort:?}");
    }
}

#[test]
fn sorting_by_risk_puts_critical_first_when_descending() {
    let store = demo_store();
    let page = ops::inventory(
        &store,
        &InventoryQuery {
            sort: SortKey::Risk,
            descending: true,
            ..q()
        },
        now(),
    )
    .unwrap();
    assert_eq!(page.rows[0].max_severity, Some(Severity::Critical));
    let ranks: Vec<i64> = page
        .rows
        .iter()
        .map(|r| r.max_severity.map_or(0, |s| s.rank()))
        .collect();
    assert!(ranks.windows(2).all(|w| w[0] >= w[1]));
}

#[test]
fn has_findings_filter_and_facets_agree() {
    let store = demo_store();
    let facets = ops::inventory_facets(&store).unwrap();
    assert_eq!(facets.total, 1000);
    let with = ops::inventory(
        &store,
        &InventoryQuery {
            has_findings: Some(true),
            ..q()
        },
        now(),
    )
    .unwrap();
    let without = ops::inventory(
        &store,
        &InventoryQuery {
            has_findings: Some(false),
            ..q()
        },
        now(),
    )
    .unwrap();
    assert_eq!(with.total, facets.with_findings);
    assert_eq!(with.total + without.total, 1000);
    let kinds_sum: i64 = facets.kinds.iter().map(|f| f.count).sum();
    assert_eq!(kinds_sum, 1000);
    assert_eq!(facets.sources.len(), 4);
}

#[test]
fn page_size_is_capped() {
    // The cap (`store::inventory::MAX_PAGE`) is 1000, the demo's own size, so
    // the organisation here is larger: a cap that did not hold would return
    // every row.
    const CAP: usize = 1000;
    const N: usize = CAP + 237;
    let mut b = OrgBuilder::new();
    for k in 0..N {
        b.identity(&format!("agent-{k:05}"), IdentityKind::AiAgent, None);
    }
    let mut store = crate::util::test_store();
    store.replace_org(&b.org, now()).unwrap();
    let page = ops::inventory(&store, &InventoryQuery { limit: 5000, ..q() }, now()).unwrap();
    assert_eq!(page.rows.len(), CAP, "exactly the cap comes back");
    assert_eq!(page.total as usize, N, "total counts every match");
    let names: Vec<String> = page.rows.iter().map(|r| r.name.clone()).collect();
    let expected: Vec<String> = (0..CAP).map(|k| format!("agent-{k:05}")).collect();
    assert_eq!(names, expected, "the first CAP rows in name order");
    // The next page continues exactly where the cap stopped.
    let next = ops::inventory(
        &store,
        &InventoryQuery {
            limit: 5000,
            offset: CAP as u32,
            ..q()
        },
        now(),
    )
    .unwrap();
    assert_eq!(next.total as usize, N);
    assert_eq!(next.offset as usize, CAP);
    let rest: Vec<String> = next.rows.iter().map(|r| r.name.clone()).collect();
    let expected: Vec<String> = (CAP..N).map(|k| format!("agent-{k:05}")).collect();
    assert_eq!(rest, expected, "the rest, no overlap, nothing skipped");
}

#[test]
fn renaming_an_owner_updates_search() {
    let mut b = OrgBuilder::new();
    let p = b.person("Ada Okafor", PersonStatus::Active);
    b.identity("ledger-agent", IdentityKind::AiAgent, Some(p));
    let mut store = crate::util::test_store();
    store.replace_org(&b.org, now()).unwrap();
    let find = |store: &Store, s: &str| {
        ops::inventory(
            store,
            &InventoryQuery {
                search: s.into(),
                ..q()
            },
            now(),
        )
        .unwrap()
        .total
    };
    assert_eq!(find(&store, "okafor"), 1);
    store
        .raw_db()
        .execute(
            "UPDATE people SET display_name = 'Ada Lindqvist' WHERE id = 1",
            [],
        )
        .unwrap();
    assert_eq!(find(&store, "okafor"), 0);
    assert_eq!(find(&store, "lindqvist"), 1);
}

#[test]
fn detail_shows_everything_about_an_identity() {
    let mut b = OrgBuilder::new();
    let boss = b.person("Grace Moreau", PersonStatus::Active);
    let owner = b.person("Ben Novak", PersonStatus::Departed);
    b.org.people[1].manager = Some(boss);
    let agent = b.identity("refund-agent", IdentityKind::AiAgent, Some(owner));
    let role = b.identity("payments-role", IdentityKind::Workload, Some(boss));
    let caller = b.identity("chat-app", IdentityKind::OauthApp, Some(boss));
    b.credential(agent, CredentialKind::ClientSecret, 400, None);
    b.credential(agent, CredentialKind::ApiToken, 10, Some(-3));
    let db = b.resource("payments-db", Sensitivity::Critical, "production");
    b.grant(agent, db, Privilege::Admin);
    b.delegate(agent, role, DelegationKind::AssumeRole);
    b.delegate(caller, agent, DelegationKind::OnBehalfOf);
    let mut store = crate::util::test_store();
    store.replace_org(&b.org, now()).unwrap();

    let d = ops::show(&store, "refund-agent", now()).unwrap();
    assert_eq!(d.id, agent.0);
    let o = d.owner.as_ref().unwrap();
    assert_eq!(
        (o.display_name.as_str(), o.status),
        ("Ben Novak", PersonStatus::Departed)
    );
    assert_eq!(o.manager_name.as_deref(), Some("Grace Moreau"));
    assert_eq!(d.credentials.len(), 2);
    let old = &d.credentials[0];
    assert_eq!((old.age_days, old.expires_in_days), (400, None));
    assert_eq!(d.credentials[1].expires_in_days, Some(-3));
    assert_eq!(d.grants.len(), 1);
    assert!(d.grants[0].high_consequence);
    assert_eq!(d.delegations_out.len(), 1);
    assert_eq!(d.delegations_out[0].other_name, "payments-role");
    assert_eq!(d.delegations_in[0].other_name, "chat-app");
    let checks: Vec<&str> = d.findings.iter().map(|f| f.check_id.as_str()).collect();
    for expected in [
        "owner-departed",
        "admin-on-critical",
        "secret-never-expires",
        "secret-not-rotated",
        "secret-expired",
    ] {
        assert!(
            checks.contains(&expected),
            "{expected} missing from {checks:?}"
        );
    }
    assert_eq!(
        d.findings[0].severity,
        Severity::Critical,
        "most severe first"
    );
}

#[test]
fn identities_resolve_by_id_external_id_or_name() {
    let mut b = OrgBuilder::new();
    b.identity("twin", IdentityKind::Bot, None);
    b.identity("twin", IdentityKind::Bot, None);
    b.org.identities[1].external_id = "ext-twin-2".into();
    b.identity("solo", IdentityKind::Bot, None);
    let mut store = crate::util::test_store();
    store.replace_org(&b.org, now()).unwrap();
    assert_eq!(store.resolve_identity("3").unwrap(), IdentityId(3));
    assert_eq!(store.resolve_identity("ext-twin-2").unwrap(), IdentityId(2));
    assert_eq!(store.resolve_identity("SOLO").unwrap(), IdentityId(3));
    assert_eq!(
        store.resolve_identity("twin").unwrap_err().code,
        ErrorCode::InvalidInput
    );
    assert_eq!(
        store.resolve_identity("nobody").unwrap_err().code,
        ErrorCode::NotFound
    );
    assert_eq!(
        ops::identity(&store, 42, now()).unwrap_err().code,
        ErrorCode::NotFound
    );
}

/// Sorting by owner or source and filtering on the owner's state read names
/// and states kept on each identity (migration 12): they follow a rename, a
/// departure, a handover and a source rename in the writing statement, and
/// identities without an owner sort last both ways.
#[test]
fn owner_and_source_sorts_and_owner_state_follow_every_write() {
    let mut b = OrgBuilder::new();
    b.org.sources.push(Source {
        id: SourceId(2),
        kind: "github".into(),
        name: "Aardvark".into(),
    });
    let zed = b.person("Zed Quill", PersonStatus::Active);
    let amy = b.person("amy Baker", PersonStatus::Active);
    let z1 = b.identity("z-agent", IdentityKind::AiAgent, Some(zed));
    b.identity("a-agent", IdentityKind::AiAgent, Some(amy));
    b.identity("nobodys", IdentityKind::AiAgent, None);
    b.identity_mut(z1).source = SourceId(2);
    let mut store = crate::util::test_store();
    store.replace_org(&b.org, now()).unwrap();
    let names = |store: &Store, sort: SortKey, descending: bool, state: Option<OwnerState>| {
        ops::inventory(
            store,
            &InventoryQuery {
                sort,
                descending,
                owner_state: state,
                ..q()
            },
            now(),
        )
        .unwrap()
        .rows
        .into_iter()
        .map(|r| r.name)
        .collect::<Vec<_>>()
    };
    // Case-insensitive by owner, the unowned last either way.
    assert_eq!(
        names(&store, SortKey::Owner, false, None),
        ["a-agent", "z-agent", "nobodys"]
    );
    assert_eq!(
        names(&store, SortKey::Owner, true, None),
        ["z-agent", "a-agent", "nobodys"]
    );
    assert_eq!(
        names(&store, SortKey::Source, false, None),
        ["z-agent", "a-agent", "nobodys"]
    );
    assert_eq!(
        names(&store, SortKey::Name, false, Some(OwnerState::None)),
        ["nobodys"]
    );
    assert_eq!(
        names(&store, SortKey::Name, false, Some(OwnerState::Owned)),
        ["a-agent", "z-agent"]
    );

    let db = store.raw_db();
    // Amy is renamed past Zed; Zed leaves; the unowned one is handed to Amy;
    // the first source is renamed before "Aardvark".
    db.execute(
        "UPDATE people SET display_name = 'Zz Top' WHERE id = ?1",
        [amy.0],
    )
    .unwrap();
    db.execute(
        "UPDATE people SET status = 'departed' WHERE id = ?1",
        [zed.0],
    )
    .unwrap();
    db.execute(
        "UPDATE identities SET owner_id = ?1 WHERE name = 'nobodys'",
        [amy.0],
    )
    .unwrap();
    db.execute("UPDATE sources SET name = 'AAA' WHERE id = 1", [])
        .unwrap();
    assert_eq!(
        names(&store, SortKey::Owner, false, None),
        ["z-agent", "a-agent", "nobodys"]
    );
    assert_eq!(
        names(&store, SortKey::Name, false, Some(OwnerState::Departed)),
        ["z-agent"]
    );
    assert_eq!(
        names(&store, SortKey::Name, false, Some(OwnerState::None)),
        Vec::<String>::new()
    );
    assert_eq!(
        names(&store, SortKey::Source, false, None),
        ["a-agent", "nobodys", "z-agent"]
    );
    let row = ops::inventory(
        &store,
        &InventoryQuery {
            search: "nobodys".into(),
            ..q()
        },
        now(),
    )
    .unwrap()
    .rows
    .remove(0);
    assert_eq!(row.owner_name.as_deref(), Some("Zz Top"));

    // The facets count the same states, from the same columns.
    let f = ops::inventory_facets(&store).unwrap();
    let count = |v: &[custodian::views::FacetCount], value: &str| {
        v.iter().find(|c| c.value == value).map(|c| c.count)
    };
    assert_eq!(count(&f.owner_states, "owned"), Some(2));
    assert_eq!(count(&f.owner_states, "departed"), Some(1));
    assert_eq!(count(&f.owner_states, "none"), None);
    assert_eq!(
        f.sources
            .iter()
            .map(|s| (s.label.as_str(), s.count))
            .collect::<Vec<_>>(),
        [("AAA", 2), ("Aardvark", 1)]
    );
    assert_eq!(f.total, 3);
}

/// A filtered page can be read two ways (walk the sort's index, or read the
/// filter's matches and sort them); the store picks by estimate, and both
/// give the same page, for every sort both ways, deep pages included.
#[test]
fn both_ways_of_reading_a_filtered_page_give_the_same_page() {
    let store = demo_store();
    let sorts = [
        SortKey::Name,
        SortKey::Kind,
        SortKey::Status,
        SortKey::Owner,
        SortKey::Source,
        SortKey::Credentials,
        SortKey::OldestCredential,
        SortKey::Grants,
        SortKey::Risk,
        SortKey::LastUsed,
        SortKey::Created,
    ];
    let filters = [
        InventoryQuery {
            owner_state: Some(OwnerState::None),
            ..q()
        },
        InventoryQuery {
            kinds: vec![IdentityKind::ServiceAccount],
            has_findings: Some(true),
            ..q()
        },
        InventoryQuery {
            search: "agent".into(),
            statuses: vec![IdentityStatus::Active],
            ..q()
        },
    ];
    for sort in sorts {
        for f in &filters {
            for descending in [false, true] {
                for offset in [0, 40] {
                    let query = InventoryQuery {
                        sort,
                        descending,
                        offset,
                        limit: 50,
                        ..f.clone()
                    };
                    let ids = |first| {
                        let p = store.inventory_planned(&query, now(), Some(first)).unwrap();
                        (
                            p.total,
                            p.rows.into_iter().map(|r| r.id).collect::<Vec<_>>(),
                        )
                    };
                    let (walked, read) = (ids(false), ids(true));
                    assert!(walked.0 > 0, "{query:?}");
                    assert_eq!(walked, read, "{query:?}");
                }
            }
        }
    }
}

/// A load sets the secondary indexes aside while it writes and builds them
/// again after: the same indexes as a new store, on every table it fills.
#[test]
fn a_load_builds_again_every_index_it_set_aside() {
    let indexes = |store: &Store| -> Vec<String> {
        let sql = if crate::util::on_postgres() {
            "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()
               AND tablename IN ('identities', 'grants', 'credentials', 'delegations', 'findings') ORDER BY 1"
        } else {
            "SELECT name FROM sqlite_schema WHERE type = 'index'
               AND tbl_name IN ('identities', 'grants', 'credentials', 'delegations', 'findings') ORDER BY 1"
        };
        let mut st = store.raw_db().prepare(sql).unwrap();
        st.query_map([], |r| r.get::<String>(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
    };
    let fresh = indexes(&crate::util::test_store());
    assert!(
        fresh.iter().any(|n| n == "identities_owner_sort"),
        "{fresh:?}"
    );
    assert!(fresh.iter().any(|n| n == "grants_identity"), "{fresh:?}");
    let loaded = demo_store();
    assert_eq!(indexes(&loaded), fresh);
}
