//! The demo organisation generator: deterministic and realistic.

use std::collections::{HashMap, HashSet, VecDeque};

use custodian::demo::{generate, DemoSize, DEFAULT_SEED};
use custodian::model::*;

use crate::util::now;

#[test]
fn same_seed_gives_the_same_organisation() {
    let a = generate(DemoSize::S, DEFAULT_SEED, now());
    let b = generate(DemoSize::S, DEFAULT_SEED, now());
    assert_eq!(a.identities, b.identities);
    assert_eq!(a.grants, b.grants);
    assert_eq!(a.people, b.people);
    let c = generate(DemoSize::S, DEFAULT_SEED + 1, now());
    assert_ne!(a.identities, c.identities);
}

#[test]
fn sizes_match_their_promise() {
    let s = generate(DemoSize::S, DEFAULT_SEED, now());
    assert_eq!(s.identities.len(), 1_000);
    let m = generate(DemoSize::M, DEFAULT_SEED, now());
    assert_eq!(m.identities.len(), 10_000);
    // About ten grants per identity, so L (100k) has about a million.
    let per = m.grants.len() as f64 / m.identities.len() as f64;
    assert!((8.0..12.0).contains(&per), "grants per identity {per}");
}

#[test]
fn small_organisation_is_realistic() {
    let org = generate(DemoSize::S, DEFAULT_SEED, now());
    let departed = org
        .people
        .iter()
        .filter(|p| p.status == PersonStatus::Departed)
        .count();
    assert!(
        departed > 5 && departed < org.people.len() / 5,
        "departed: {departed}"
    );
    assert!(
        org.people.iter().skip(1).all(|p| p.manager.is_some()),
        "everyone but the top has a manager"
    );

    let classes: HashSet<AgentClass> = org
        .identities
        .iter()
        .filter_map(|i| i.agent_class)
        .collect();
    assert_eq!(
        classes.len(),
        AgentClass::ALL.len(),
        "agents of every class"
    );
    let kinds: HashSet<IdentityKind> = org.identities.iter().map(|i| i.kind).collect();
    assert_eq!(
        kinds.len(),
        IdentityKind::ALL.len(),
        "identities of every kind"
    );
    assert!(org
        .identities
        .iter()
        .all(|i| i.owner.is_none() || i.builder.is_some()));

    let never_expiring = org
        .credentials
        .iter()
        .filter(|c| c.expires_at.is_none())
        .count();
    assert!(
        never_expiring > 100,
        "never-expiring credentials: {never_expiring}"
    );
    let two_years = now() - chrono::Duration::days(730);
    let unrotated_for_years = org
        .credentials
        .iter()
        .filter(|c| c.last_rotated_at.is_none() && c.created_at < two_years)
        .count();
    assert!(
        unrotated_for_years > 20,
        "unrotated for 2+ years: {unrotated_for_years}"
    );

    let sens: HashSet<Sensitivity> = org.resources.iter().map(|r| r.sensitivity).collect();
    assert_eq!(sens.len(), 4, "resources of every sensitivity");
    assert!(org.grants.iter().any(|g| g.high_consequence));
}

#[test]
fn delegation_chains_are_several_hops_deep() {
    let org = generate(DemoSize::S, DEFAULT_SEED, now());
    let mut out: HashMap<IdentityId, Vec<IdentityId>> = HashMap::new();
    for d in &org.delegations {
        out.entry(d.from).or_default().push(d.to);
    }
    // Longest shortest-path from any identity (BFS, cycle-safe).
    let mut deepest = 0;
    for start in out.keys() {
        let mut seen = HashSet::from([*start]);
        let mut q = VecDeque::from([(*start, 0)]);
        while let Some((n, depth)) = q.pop_front() {
            deepest = deepest.max(depth);
            for next in out.get(&n).into_iter().flatten() {
                if seen.insert(*next) {
                    q.push_back((*next, depth + 1));
                }
            }
        }
    }
    assert!(deepest >= 4, "deepest chain has {deepest} hops");
    let kinds: HashSet<DelegationKind> = org.delegations.iter().map(|d| d.kind).collect();
    assert!(kinds.contains(&DelegationKind::AssumeRole) && kinds.contains(&DelegationKind::Invoke));
}
