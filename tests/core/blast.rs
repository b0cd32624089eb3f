//! The access graph on hand-built organisations: chains, cycles, documented
//! cross-source links, scores that can be checked by hand, the reverse query,
//! paths to admin, and the intended-versus-computed comparison.

use custodian::blast::{privilege_weight, sensitivity_weight, Graph, HOP_DISCOUNT};
use custodian::model::*;
use custodian::store::Store;

use crate::util::{now, OrgBuilder};

/// a -> b -> c -> d -> b (a cycle), d holds admin on a critical database,
/// b reads a low bucket; x is in another source, reachable only by a
/// documented link from d.
fn graph_org() -> (Store, Vec<IdentityId>) {
    let mut b = OrgBuilder::new();
    b.org.sources.push(Source {
        id: SourceId(2),
        kind: "github".into(),
        name: "GitHub".into(),
    });
    let owner = b.person("Owner", PersonStatus::Active);
    let ids: Vec<IdentityId> = ["a", "b", "c", "d", "x"]
        .iter()
        .map(|n| b.identity(n, IdentityKind::AiAgent, Some(owner)))
        .collect();
    b.identity_mut(ids[4]).source = SourceId(2);
    b.identity_mut(ids[0]).intended_blast_radius =
        "Reads the bucket only (read-only); never deletes anything.".into();
    let db = b.resource("orders-db", Sensitivity::Critical, "production");
    let bucket = b.resource("bucket", Sensitivity::Low, "production");
    let repo = b.resource("release-repo", Sensitivity::High, "production");
    b.grant(ids[3], db, Privilege::Admin); // high-consequence (builder sets it for non-read)
    b.grant(ids[1], bucket, Privilege::Read);
    b.grant(ids[4], repo, Privilege::Write);
    b.org.grants[2].permission = "contents:write".into();
    b.delegate(ids[0], ids[1], DelegationKind::AssumeRole);
    b.delegate(ids[1], ids[2], DelegationKind::Invoke);
    b.delegate(ids[2], ids[3], DelegationKind::OnBehalfOf);
    b.delegate(ids[3], ids[1], DelegationKind::AssumeRole);
    for i in b.org.identities.iter_mut() {
        i.last_used_at = Some(now());
    }
    let mut store = crate::util::test_store();
    store.replace_org(&b.org, now()).unwrap();
    (store, ids)
}

#[test]
fn chains_are_shortest_and_cycles_are_visited_once() {
    let (store, ids) = graph_org();
    let g = Graph::load(&store).unwrap();
    let b = g.blast(ids[0].0).unwrap();
    let reached: Vec<(&str, u32)> = b
        .reachable
        .iter()
        .map(|r| (r.name.as_str(), r.hops))
        .collect();
    assert_eq!(reached, [("b", 1), ("c", 2), ("d", 3)]);
    let d = b.reachable.iter().find(|r| r.name == "d").unwrap();
    let chain: Vec<(&str, Option<&str>)> = d
        .chain
        .iter()
        .map(|h| (h.name.as_str(), h.via.as_deref()))
        .collect();
    assert_eq!(
        chain,
        [
            ("a", None),
            ("b", Some("assume_role")),
            ("c", Some("invoke")),
            ("d", Some("on_behalf_of"))
        ]
    );
    // The score by hand: admin (9) x critical (27) x high-consequence (2) x 0.8^3, plus read (1) x low (1) x 0.8.
    let expected = 9.0 * 27.0 * 2.0 * HOP_DISCOUNT.powi(3) + 1.0 * 1.0 * HOP_DISCOUNT;
    assert!(
        (b.score - expected).abs() < 1e-9,
        "{} vs {expected}",
        b.score
    );
    assert_eq!(
        privilege_weight(Privilege::Admin) * sensitivity_weight(Sensitivity::Critical),
        243.0
    );
    assert!(
        b.explanation[0].starts_with(
            "248.8 from orders-db (critical sensitivity admin, high-consequence, 3 hop(s) away)"
        ),
        "{:?}",
        b.explanation
    );
    // From b, the cycle leads back to b without looping.
    let from_b = g.blast(ids[1].0).unwrap();
    assert_eq!(from_b.reachable.len(), 2);
}

#[test]
fn documented_links_cross_sources() {
    let (mut store, ids) = graph_org();
    let g = Graph::load(&store).unwrap();
    assert!(
        g.blast(ids[0].0)
            .unwrap()
            .resources
            .iter()
            .all(|r| r.name != "release-repo"),
        "no link, no path"
    );
    let actor = store.resolve_person("Owner").unwrap();
    custodian::ops::link_identities(
        &mut store,
        actor,
        "d",
        "x",
        DelegationKind::Invoke,
        "d's secret deploys through x",
        now(),
    )
    .unwrap();
    let err = custodian::ops::link_identities(
        &mut store,
        actor,
        "d",
        "x",
        DelegationKind::Invoke,
        "again",
        now(),
    )
    .unwrap_err();
    assert!(err.message.contains("already documented"));
    let g = Graph::load(&store).unwrap();
    let b = g.blast(ids[0].0).unwrap();
    let repo = b
        .resources
        .iter()
        .find(|r| r.name == "release-repo")
        .expect("reachable through the documented link");
    assert_eq!(repo.hops, 4);
    assert_eq!(
        repo.chain.last().unwrap().via.as_deref(),
        Some("invoke (documented)")
    );
}

#[test]
fn who_can_reach_walks_back_and_paths_to_admin_need_a_hop() {
    let (store, ids) = graph_org();
    let g = Graph::load(&store).unwrap();
    let db: i64 = store
        .raw_db()
        .query_row(
            "SELECT id FROM resources WHERE name = 'orders-db'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let who = g.who_can_reach(db).unwrap();
    let v: Vec<(&str, u32)> = who.iter().map(|w| (w.name.as_str(), w.hops)).collect();
    assert_eq!(v, [("d", 0), ("c", 1), ("b", 2), ("a", 3)]);
    let a = who.iter().find(|w| w.name == "a").unwrap();
    let names: Vec<&str> = a.chain.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(
        names,
        ["a", "b", "c", "d"],
        "from the reacher to the holder"
    );
    let paths = g.paths_to_admin(100);
    let mut who: Vec<&str> = paths.iter().map(|p| p.name.as_str()).collect();
    who.sort();
    assert_eq!(
        who,
        ["a", "b", "c"],
        "d holds admin itself; x reaches nothing critical"
    );
    let _ = ids;
}

#[test]
fn intended_blast_radius_is_compared() {
    let (store, ids) = graph_org();
    let g = Graph::load(&store).unwrap();
    let b = g.blast(ids[0].0).unwrap();
    assert!(
        b.differences
            .iter()
            .any(|d| d == "documented as read-only, but can administer orders-db"),
        "{:?}",
        b.differences
    );
    assert!(
        b.differences
            .iter()
            .any(|d| d
                .contains("sensitive resources the documented intent does not name: orders-db")),
        "{:?}",
        b.differences
    );
    let c = g.blast(ids[2].0).unwrap();
    assert!(
        c.differences[0].starts_with("no intended blast radius is documented"),
        "{:?}",
        c.differences
    );
}

#[test]
fn the_posture_view_counts_and_keeps_a_trend() {
    let mut store = crate::util::test_store();
    custodian::ops::load_demo(
        &mut store,
        custodian::demo::DemoSize::S,
        custodian::demo::DEFAULT_SEED,
        now(),
    )
    .unwrap();
    let p = custodian::ops::posture(&store, now()).unwrap();
    let f = &p.figures;
    assert!(
        f.nhis > 500 && f.orphaned > 0 && f.owned + f.orphaned == f.nhis,
        "{f:?}"
    );
    assert!(f.owned_pct > 50.0 && f.owned_pct < 100.0);
    assert!(f.high_blast.unwrap() > 0);
    // 12 reconstructed weeks and the load itself.
    assert_eq!(p.trend.len(), 13);
    assert_eq!(
        p.trend
            .iter()
            .filter(|s| s.origin == "reconstructed")
            .count(),
        12
    );
    assert!(
        p.trend.first().unwrap().figures.nhis <= p.trend.last().unwrap().figures.nhis,
        "identities accumulate"
    );
    assert!(p
        .findings
        .iter()
        .any(|c| c.owasp == "NHI1" && c.owasp_title == "Improper Offboarding"));
    assert_eq!(p.top_blast.len(), 10);
    assert!(p.top_blast.windows(2).all(|w| w[0].score >= w[1].score));
}

/// Each posture figure counts exactly what it names (the one-pass counts of
/// `Store::posture_counts`): active identities only, an owner who left is
/// no owner, a certificate or federated credential never counts as a
/// never-expiring secret, and a disabled identity's credentials count
/// nowhere.
#[test]
fn each_posture_figure_counts_exactly_what_it_names() {
    use crate::util::days_ago;
    let mut b = OrgBuilder::new();
    let here = b.person("Here", PersonStatus::Active);
    let gone = b.person("Gone", PersonStatus::Departed);
    // Owned, never reviewed, registered.
    let a1 = b.identity("agent-1", IdentityKind::AiAgent, Some(here));
    // Its owner left; unregistered; reviewed last week.
    let a2 = b.identity("agent-2", IdentityKind::AiAgent, Some(gone));
    b.identity_mut(a2).registered = false;
    b.identity_mut(a2).last_reviewed_at = Some(days_ago(7));
    // No owner; reviewed two years ago.
    let s1 = b.identity("svc-1", IdentityKind::ServiceAccount, None);
    b.identity_mut(s1).last_reviewed_at = Some(days_ago(730));
    // Disabled: counted nowhere, nor its credentials.
    let off = b.identity("svc-off", IdentityKind::AiAgent, Some(here));
    b.identity_mut(off).status = IdentityStatus::Disabled;
    b.identity_mut(off).registered = false;

    b.credential(a1, CredentialKind::ClientSecret, 10, None); // never expires
    b.credential(a1, CredentialKind::Certificate, 10, None); // a certificate: not a secret
    b.credential(a2, CredentialKind::FederatedCredential, 10, None); // nor a federated one
    b.credential(s1, CredentialKind::AccessKey, 400, Some(-5)); // expired
    let stale = b.credential(s1, CredentialKind::ApiToken, 400, Some(100));
    b.org.credentials[(stale.0 - 1) as usize].last_used_at = Some(days_ago(200)); // stale
    let unused = b.credential(a2, CredentialKind::ApiToken, 30, Some(100));
    b.org.credentials[(unused.0 - 1) as usize].last_used_at = None; // never used: stale
    b.credential(off, CredentialKind::ApiToken, 10, None);
    let off_stale = b.credential(off, CredentialKind::ApiToken, 400, Some(-1));
    b.org.credentials[(off_stale.0 - 1) as usize].last_used_at = None;

    let mut store = crate::util::test_store();
    store.replace_org(&b.org, now()).unwrap();
    let c = store.posture_counts(now().timestamp(), 90, 365).unwrap();
    assert_eq!(
        (
            c.nhis,
            c.ai_agents,
            c.owned,
            c.unreviewed,
            c.unregistered_agents
        ),
        (3, 2, 1, 2, 1),
        "{c:?}"
    );
    assert_eq!(
        (c.stale_credentials, c.never_expiring, c.expired_credentials),
        (2, 1, 1),
        "{c:?}"
    );
    // Findings: the totals of every identity's own list, by severity.
    let mut want = (0i64, 0i64, 0i64);
    for id in 1..=b.org.identities.len() as i64 {
        for f in custodian::ops::identity(&store, id, now())
            .unwrap()
            .findings
        {
            want.0 += 1;
            want.1 += i64::from(f.severity == Severity::Critical);
            want.2 += i64::from(f.severity == Severity::High);
        }
    }
    assert!(want.0 > 0 && want.2 > 0, "{want:?}");
    assert_eq!((c.findings, c.critical_findings, c.high_findings), want);
}

/// The trend's reconstructed weeks count what the dates say at each time
/// (`Store::posture_counts_at_each`, one pass for every week): identities
/// from their creation and not deleted, owned while their owner had not
/// yet left, credentials once they and their identity existed.
#[test]
fn the_reconstructed_past_counts_what_the_dates_say() {
    use crate::util::days_ago;
    let mut b = OrgBuilder::new();
    let here = b.person("Here", PersonStatus::Active);
    let gone = b.person("Gone", PersonStatus::Departed); // left 30 days ago
    let old = b.identity("old", IdentityKind::ServiceAccount, Some(gone));
    let agent = b.identity("agent", IdentityKind::AiAgent, Some(here));
    b.identity_mut(agent).created_at = days_ago(40);
    b.identity_mut(agent).registered = false;
    let new = b.identity("new", IdentityKind::ServiceAccount, None);
    b.identity_mut(new).created_at = days_ago(10);
    let deleted = b.identity("deleted", IdentityKind::ServiceAccount, Some(here));
    b.identity_mut(deleted).status = IdentityStatus::Deleted;
    b.credential(old, CredentialKind::ClientSecret, 100, None); // never expires
    b.credential(old, CredentialKind::Certificate, 100, None); // not a secret
    b.credential(old, CredentialKind::AccessKey, 100, Some(-20)); // expired 20 days ago
    b.credential(agent, CredentialKind::ApiToken, 90, None); // older than its identity
    b.credential(deleted, CredentialKind::ApiToken, 100, None); // counts nowhere
    let mut store = crate::util::test_store();
    store.replace_org(&b.org, now()).unwrap();

    let ats: Vec<i64> = [60, 35, 25, 5]
        .iter()
        .map(|d| days_ago(*d).timestamp())
        .collect();
    let c = store.posture_counts_at_each(&ats).unwrap();
    let row = |c: &custodian::store::posture::PastPostureCounts| {
        (
            c.nhis,
            c.ai_agents,
            c.owned,
            c.unregistered_agents,
            c.never_expiring,
            c.expired_credentials,
        )
    };
    assert_eq!(c.len(), 4);
    assert_eq!(row(&c[0]), (1, 0, 1, 0, 1, 0), "60 days ago: {:?}", c[0]);
    assert_eq!(row(&c[1]), (2, 1, 2, 1, 2, 0), "35 days ago: {:?}", c[1]);
    assert_eq!(
        row(&c[2]),
        (2, 1, 1, 1, 2, 0),
        "25 days ago, Gone left: {:?}",
        c[2]
    );
    assert_eq!(row(&c[3]), (3, 1, 1, 1, 2, 1), "5 days ago: {:?}", c[3]);
    assert!(store.posture_counts_at_each(&[]).unwrap().is_empty());
}

/// The blast-radius page reads only the part of the graph an identity
/// reaches (`Graph::load_from`); its answer must be the whole graph's for
/// every identity: chains through a deleted identity stop, documented links
/// count, and a wildcard AWS grant still covers the other resources of its
/// account (and not another account's).
#[test]
fn the_blast_radius_from_the_reached_part_of_the_graph_is_the_whole_graphs() {
    let mut b = OrgBuilder::new();
    let owner = b.person("Owner", PersonStatus::Active);
    let ids: Vec<IdentityId> = [
        "agent",
        "role",
        "admin-role",
        "gone",
        "behind-gone",
        "other",
    ]
    .iter()
    .map(|n| b.identity(n, IdentityKind::AiAgent, Some(owner)))
    .collect();
    b.identity_mut(ids[3]).status = IdentityStatus::Deleted;
    let star = b.resource("* (all resources)", Sensitivity::Critical, "aws-111");
    let object = b.resource("arn:aws:s3:::data/report", Sensitivity::High, "aws-111");
    let prefix = b.resource("arn:aws:s3:::data/*", Sensitivity::Medium, "aws-111");
    let elsewhere = b.resource("arn:aws:s3:::other/x", Sensitivity::High, "aws-222");
    let db = b.resource("orders-db", Sensitivity::Critical, "production");
    for r in [star, object, prefix, elsewhere] {
        let res = &mut b.org.resources[r.0 as usize - 1];
        res.kind = if r == star { "aws:*" } else { "aws:s3" }.into();
        res.external_id = res.name.clone();
    }
    b.grant(ids[2], star, Privilege::Admin);
    b.grant(ids[1], prefix, Privilege::Read);
    b.grant(ids[4], db, Privilege::Admin);
    b.grant(ids[5], elsewhere, Privilege::Write);
    b.org.grants[0].permission = "*".into();
    b.org.grants[1].permission = "s3:GetObject".into();
    b.org.grants[3].permission = "s3:PutObject".into();
    b.delegate(ids[0], ids[1], DelegationKind::AssumeRole);
    b.delegate(ids[1], ids[2], DelegationKind::AssumeRole);
    b.delegate(ids[1], ids[3], DelegationKind::Invoke);
    b.delegate(ids[3], ids[4], DelegationKind::Invoke);
    b.delegate(ids[2], ids[0], DelegationKind::Invoke); // a cycle
    let mut store = crate::util::test_store();
    store.replace_org(&b.org, now()).unwrap();
    let actor = store.resolve_person("Owner").unwrap();
    custodian::ops::link_identities(
        &mut store,
        actor,
        "other",
        "agent",
        DelegationKind::Invoke,
        "documented",
        now(),
    )
    .unwrap();

    let whole = Graph::load(&store).unwrap();
    for id in &ids {
        let part = Graph::load_from(&store, id.0).unwrap();
        assert!(part.identities() <= whole.identities());
        assert_eq!(
            part.blast(id.0).unwrap(),
            whole.blast(id.0).unwrap(),
            "identity {}",
            id.0
        );
    }
    // The agent reaches the object and the prefix through the wildcard of
    // its account, not the other account's bucket nor what is behind the
    // deleted identity; the part read is the agent's chain only.
    let agent = custodian::ops::blast_by_id(&store, ids[0].0).unwrap();
    let names: Vec<&str> = agent.resources.iter().map(|r| r.name.as_str()).collect();
    assert!(names.contains(&"arn:aws:s3:::data/report"), "{names:?}");
    assert!(!names.contains(&"arn:aws:s3:::other/x"), "{names:?}");
    assert!(!names.contains(&"orders-db"), "{names:?}");
    assert_eq!(Graph::load_from(&store, ids[0].0).unwrap().identities(), 3);
    // `other` reaches the agent's whole chain through its documented link.
    assert_eq!(Graph::load_from(&store, ids[5].0).unwrap().identities(), 4);
    assert!(Graph::load_from(&store, 999_999)
        .unwrap()
        .blast(999_999)
        .is_err());

    // And on the demo organisation, for every identity.
    let mut demo = crate::util::test_store();
    custodian::ops::load_demo(&mut demo, custodian::demo::DemoSize::S, 7, now()).unwrap();
    let whole = Graph::load(&demo).unwrap();
    let all: Vec<i64> = demo
        .identity_external_ids()
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    for id in all.iter().step_by(7) {
        let part = Graph::load_from(&demo, *id).unwrap();
        assert_eq!(
            part.blast(*id).unwrap(),
            whole.blast(*id).unwrap(),
            "demo identity {id}"
        );
    }
}

/// The posture page reads the blast radii kept at the last write to the
/// graph (a load, a sync, a documented link) instead of ranking the whole
/// graph on every visit: the page is the same as when ranked on the spot
/// (a cache that has none stored yet), and a documented link refreshes them.
#[test]
fn the_posture_page_reads_blast_radii_kept_at_the_last_graph_write() {
    let mut store = crate::util::test_store();
    custodian::ops::load_demo(
        &mut store,
        custodian::demo::DemoSize::S,
        custodian::demo::DEFAULT_SEED,
        now(),
    )
    .unwrap();
    assert!(store.blast_scores_stored().unwrap());
    let kept = custodian::ops::posture(&store, now()).unwrap();
    store
        .raw_db()
        .execute("UPDATE identities SET blast_score = NULL", [])
        .unwrap();
    assert!(!store.blast_scores_stored().unwrap());
    let ranked = custodian::ops::posture(&store, now()).unwrap();
    assert_eq!(kept.top_blast, ranked.top_blast);
    assert_eq!(kept.fix_first, ranked.fix_first);
    assert_eq!(kept.figures, ranked.figures);
    assert_eq!(kept.top_blast.len(), 10);
    assert_eq!(kept.fix_first.len(), 10);

    // The least-reaching active identity is linked to the one reaching
    // most: its kept radius becomes what the graph now says.
    custodian::posture::refresh_blast(&store).unwrap();
    let ranks = Graph::load(&store).unwrap().rank(usize::MAX);
    let (top, low) = (&ranks[0], ranks.last().unwrap());
    let before = store.blast_of(&[low.identity_id]).unwrap()[0].score;
    let actor = store.resolve_person("1").unwrap();
    custodian::ops::link_identities(
        &mut store,
        actor,
        &low.identity_id.to_string(),
        &top.identity_id.to_string(),
        DelegationKind::Invoke,
        "its key deploys through the top one",
        now(),
    )
    .unwrap();
    let after = store.blast_of(&[low.identity_id]).unwrap()[0].score;
    let graph = Graph::load(&store)
        .unwrap()
        .blast(low.identity_id)
        .unwrap()
        .score;
    assert!(after > before, "{before} -> {after}");
    assert_eq!(after, graph);
}
