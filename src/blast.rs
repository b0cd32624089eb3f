//! Blast radius: what an identity could do if it were compromised or
//! manipulated, and through whom.
//!
//! The access graph: identities are nodes; an edge `a -> b` means `a` can act
//! as or through `b` (assume-role from IAM trust policies, app-to-app
//! permissions, on-behalf-of, invoke, Kerberos delegation, and edges
//! documented by hand in `identity_links`). Grants hang off identities.
//! Identities are linked across sources only by documented edges (a GitHub
//! app whose secret deploys to an AWS role is written down once, by a person;
//! matching by name alone would invent paths).
//!
//! Who can reach a resource: every identity with a chain to a holder of a
//! grant on it. On AWS a grant names an IAM resource pattern, so a grant on
//! `*` (the account-wide resource) or on a wildcard ARN
//! (`arn:aws:s3:::data/*`) also reaches every resource of the same account
//! (environment) it covers, for actions of that resource's service, and the
//! answer's permission says through which grant
//! ("s3:* (through the grant on arn:aws:s3:::data/*)"). The blast
//! radius does the same from the holder's side: it lists the wildcard
//! resource and each resource of the account under it that the grant's
//! action applies to, saying through which grant (its high-consequence
//! actions are listed once, on the wildcard). A resource a deny keeps the
//! grant from (its `excluded` patterns) is reached by neither.
//!
//! Links and grants that hold only under a condition keep it (outside
//! text), and every chain shows it on the link: `a -assume_role (only if
//! Bool aws:MultiFactorAuthPresent=true)-> b` ([`chain_text`]); a link's
//! reason (why an AWS escalation edge exists, a documented link's note)
//! is shown the same way.
//!
//! The blast radius of `x`: every identity reachable from `x` (breadth-first,
//! so each comes with its shortest chain; cycles are visited once), and every
//! resource those identities hold grants on, with the shortest chain that
//! grants it.
//!
//! Score: for each resource in reach, the heaviest permission on it counts
//! `sensitivity weight x privilege weight x 2 when high-consequence`,
//! discounted by `0.8^hops` (a longer chain is harder to use); the score is
//! the sum. Weights: sensitivity low 1, medium 3, high 9, critical 27;
//! privilege read 1, write 3, admin 9. The explanation lists the largest
//! contributions, so every number can be checked by hand.
//!
//! High-consequence actions are called out by category from the permission
//! and resource: IAM changes, payments, messaging, data-store writes,
//! deletion (irreversible), and anything else the source flagged.

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{DelegationKind, IdentityKind, IdentityStatus, Privilege, Sensitivity};
use crate::store::graph::{AccessGraphSink, GraphEdge, GraphGrant, GraphIdentity, GraphResource};
use crate::store::Store;

pub fn sensitivity_weight(s: Sensitivity) -> f64 {
    match s {
        Sensitivity::Low => 1.0,
        Sensitivity::Medium => 3.0,
        Sensitivity::High => 9.0,
        Sensitivity::Critical => 27.0,
    }
}

pub fn privilege_weight(p: Privilege) -> f64 {
    match p {
        Privilege::Read => 1.0,
        Privilege::Write => 3.0,
        Privilege::Admin => 9.0,
    }
}

/// Per hop along a delegation chain.
pub const HOP_DISCOUNT: f64 = 0.8;

#[derive(Debug, Clone)]
struct Node {
    id: i64,
    name: String,
    kind: IdentityKind,
    status: IdentityStatus,
    intended: String,
}

#[derive(Debug, Clone)]
struct Res {
    id: i64,
    name: String,
    kind: String,
    sensitivity: Sensitivity,
    environment: String,
}

#[derive(Debug, Clone)]
struct GrantRef {
    resource: u32,
    permission: String,
    privilege: Privilege,
    hc: bool,
    condition: Option<String>,
    /// Resource patterns under its resource that it does not reach.
    excluded: Vec<String>,
}

/// What an edge says: its kind as shown ("assume_role", "invoke
/// (documented)"), the condition it holds under and why it exists.
#[derive(Debug, Clone)]
struct EdgeLabel {
    kind: String,
    condition: Option<String>,
    reason: Option<String>,
}

/// A visited node: (node, hops, parent node, edge from the parent).
type Visit = (u32, u32, Option<u32>, Option<u32>);

fn positions(order: &[Visit]) -> HashMap<u32, usize> {
    order.iter().enumerate().map(|(i, o)| (o.0, i)).collect()
}

/// The whole access graph, read from the cache in three scans.
#[derive(Default)]
pub struct Graph {
    nodes: Vec<Node>,
    index: HashMap<i64, u32>,
    /// (other node, edge) per node, each way.
    out: Vec<Vec<(u32, u32)>>,
    inn: Vec<Vec<(u32, u32)>>,
    edges: Vec<EdgeLabel>,
    grants: Vec<Vec<GrantRef>>,
    resources: Vec<Res>,
    resource_index: HashMap<i64, u32>,
    /// Per AWS wildcard resource (`*`, `arn:aws:s3:::data/*`): the other
    /// resources of its account (environment) that it covers.
    under: HashMap<u32, Vec<u32>>,
}

/// Builds a [`Graph`] from the facts as the store reads them (identities
/// first, then edges, resources, grants). An edge or grant naming an
/// identity or resource not seen is dropped; a documented edge's kind reads
/// "<kind> (documented)".
#[derive(Default)]
pub struct GraphBuilder {
    graph: Graph,
}

impl AccessGraphSink for GraphBuilder {
    fn identity(&mut self, i: GraphIdentity) {
        self.graph.index.insert(i.id, self.graph.nodes.len() as u32);
        self.graph.nodes.push(Node {
            id: i.id,
            name: i.name,
            kind: i.kind,
            status: i.status,
            intended: i.intended_blast_radius,
        });
        self.graph.out.push(Vec::new());
        self.graph.inn.push(Vec::new());
        self.graph.grants.push(Vec::new());
    }

    fn edge(&mut self, e: GraphEdge) {
        if let (Some(&a), Some(&b)) = (self.graph.index.get(&e.from), self.graph.index.get(&e.to)) {
            let kind = if e.documented {
                format!("{} (documented)", e.kind)
            } else {
                e.kind
            };
            let edge = self.graph.edges.len() as u32;
            self.graph.edges.push(EdgeLabel {
                kind,
                condition: e.condition.filter(|c| !c.trim().is_empty()),
                reason: e.reason.filter(|r| !r.trim().is_empty()),
            });
            self.graph.out[a as usize].push((b, edge));
            self.graph.inn[b as usize].push((a, edge));
        }
    }

    fn resource(&mut self, r: GraphResource) {
        self.graph
            .resource_index
            .insert(r.id, self.graph.resources.len() as u32);
        self.graph.resources.push(Res {
            id: r.id,
            name: r.name,
            kind: r.kind,
            sensitivity: r.sensitivity,
            environment: r.environment,
        });
    }

    fn grant(&mut self, g: GraphGrant) {
        if let (Some(&a), Some(&b)) = (
            self.graph.index.get(&g.identity),
            self.graph.resource_index.get(&g.resource),
        ) {
            self.graph.grants[a as usize].push(GrantRef {
                resource: b,
                permission: g.permission,
                privilege: g.privilege,
                hc: g.high_consequence,
                condition: g.condition.filter(|c| !c.trim().is_empty()),
                excluded: g.excluded,
            });
        }
    }
}

impl GraphBuilder {
    pub fn finish(mut self) -> Graph {
        // Which resources each AWS wildcard resource covers, per account.
        let mut by_env: HashMap<&str, Vec<(u32, &str)>> = HashMap::new();
        for (i, r) in self.graph.resources.iter().enumerate() {
            if let Some(p) = aws_pattern(r) {
                by_env
                    .entry(r.environment.as_str())
                    .or_default()
                    .push((i as u32, p));
            }
        }
        let mut under: HashMap<u32, Vec<u32>> = HashMap::new();
        for list in by_env.values() {
            for &(w, wp) in list.iter().filter(|(_, p)| p.contains(['*', '?'])) {
                let v: Vec<u32> = list
                    .iter()
                    .filter(|&&(o, op)| o != w && crate::sync::aws_policy::covers(wp, op))
                    .map(|&(o, _)| o)
                    .collect();
                if !v.is_empty() {
                    under.insert(w, v);
                }
            }
        }
        self.graph.under = under;
        self.graph
    }
}

/// One step of a chain: the identity and the edge that led to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Hop {
    pub identity_id: i64,
    pub name: String,
    /// How the previous identity reaches this one; `null` for the start.
    pub via: Option<String>,
    /// The condition that link holds under (outside text: escape it where
    /// it goes); `null` when it always holds.
    pub condition: Option<String>,
    /// Why that link exists, when its kind alone does not say (outside
    /// text); `null` otherwise.
    pub reason: Option<String>,
}

impl Hop {
    /// How this hop was reached, in one piece: `assume_role`, or
    /// `invoke (reason; condition)`. `None` for the start of a chain.
    /// `esc` makes each piece of outside text safe for where it goes.
    pub fn link_text(&self, esc: impl Fn(&str) -> String) -> Option<String> {
        let via = self.via.as_deref()?;
        let more: Vec<String> = [&self.reason, &self.condition]
            .into_iter()
            .flatten()
            .map(|t| esc(t))
            .collect();
        Some(if more.is_empty() {
            esc(via)
        } else {
            format!("{} ({})", esc(via), more.join("; "))
        })
    }
}

/// A chain as one line: `a -assume_role-> b -invoke (reason; only if …)-> c`.
/// `esc` makes each piece of outside text safe for where it goes.
pub fn chain_text(chain: &[Hop], esc: impl Fn(&str) -> String) -> String {
    chain
        .iter()
        .map(|h| match h.link_text(&esc) {
            Some(l) => format!("-{l}-> {}", esc(&h.name)),
            None => esc(&h.name),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ReachedIdentity {
    pub identity_id: i64,
    pub name: String,
    pub kind: IdentityKind,
    pub hops: u32,
    pub chain: Vec<Hop>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ReachedPermission {
    pub permission: String,
    pub privilege: Privilege,
    pub high_consequence: bool,
    /// The identity that holds the grant.
    pub holder: String,
    /// What the grant holds under and leaves out (outside text); `null`:
    /// it holds as it is.
    pub condition: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ReachedResource {
    pub resource_id: i64,
    pub name: String,
    pub kind: String,
    pub sensitivity: Sensitivity,
    pub environment: String,
    pub hops: u32,
    /// The shortest chain to an identity holding a grant on it.
    pub chain: Vec<Hop>,
    pub permissions: Vec<ReachedPermission>,
    pub contribution: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct HighConsequence {
    /// iam | payments | messaging | data_write | delete | other
    pub category: String,
    pub resource: String,
    pub permission: String,
    pub holder: String,
    pub hops: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct BlastRadius {
    pub identity_id: i64,
    pub name: String,
    pub kind: IdentityKind,
    pub score: f64,
    /// How the score adds up, largest contributions first.
    pub explanation: Vec<String>,
    pub reachable: Vec<ReachedIdentity>,
    pub resources: Vec<ReachedResource>,
    pub high_consequence: Vec<HighConsequence>,
    /// What the owner documented.
    pub intended: String,
    /// Where the computed blast radius goes beyond the documented one.
    pub differences: Vec<String>,
}

/// A row of the org-wide ranking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct BlastRank {
    pub identity_id: i64,
    pub name: String,
    pub kind: IdentityKind,
    pub score: f64,
    pub reachable_identities: u32,
    pub resources: u32,
    pub high_consequence: u32,
}

/// Who can reach a resource, and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Reacher {
    pub identity_id: i64,
    pub name: String,
    pub kind: IdentityKind,
    pub hops: u32,
    /// From this identity to the grant holder.
    pub chain: Vec<Hop>,
    pub permission: String,
    pub privilege: Privilege,
    /// What the grant holds under and leaves out (outside text); `null`:
    /// it holds as it is.
    pub condition: Option<String>,
}

/// An identity that reaches admin on a critical resource only through others.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct AdminPath {
    pub identity_id: i64,
    pub name: String,
    pub resource: String,
    pub permission: String,
    pub chain: Vec<Hop>,
    /// What the admin grant holds under (outside text); `null`: it holds as
    /// it is.
    pub condition: Option<String>,
}

/// The IAM resource pattern an AWS resource stands for: its ARN, or `*`
/// for the account-wide resource ("* (every resource in …)"); `None` for
/// resources of other sources.
fn aws_pattern(r: &Res) -> Option<&str> {
    if !r.kind.starts_with("aws:") {
        return None;
    }
    if r.kind == "aws:*" && r.name.starts_with("* ") {
        return Some("*");
    }
    Some(r.name.as_str())
}

/// Does an AWS permission (`s3:Get*`, `*`, `NotAction:…`) name actions of
/// `service`?
fn action_applies(permission: &str, service: &str) -> bool {
    if permission == "*" || permission.starts_with("NotAction:") {
        return true;
    }
    match permission.split_once(':') {
        Some((s, _)) => crate::sync::aws_policy::action_matches(s, service),
        None => false,
    }
}

/// Category of a high-consequence permission.
pub fn consequence_category(permission: &str, resource_kind: &str) -> &'static str {
    let p = permission.to_ascii_lowercase();
    let k = resource_kind.to_ascii_lowercase();
    if p.starts_with("iam:")
        || p.contains("passrole")
        || p.contains("assumerole")
        || k.contains("iam")
        || p.contains("role") && p.contains("assign")
    {
        "iam"
    } else if k.contains("payment")
        || p.contains("payment")
        || p.contains("refund")
        || p.contains("transfer")
    {
        "payments"
    } else if k.contains("mail")
        || k.contains("messag")
        || k.contains("slack")
        || p.contains("send")
        || p.contains("mail.")
    {
        "messaging"
    } else if p.contains("delete")
        || p.contains("destroy")
        || p.contains("purge")
        || p.contains("terminate")
    {
        "delete"
    } else if p.contains("put")
        || p.contains("write")
        || p.contains("update")
        || p.contains("*")
        || p.contains("admin")
    {
        "data_write"
    } else {
        "other"
    }
}

impl Graph {
    /// Reads identities, delegations (and documented links) and grants.
    pub fn load(store: &Store) -> Result<Graph> {
        let mut b = GraphBuilder::default();
        store.read_access_graph(&mut b)?;
        Ok(b.finish())
    }

    /// Reads only the part of the graph `start` reaches: what its
    /// [`Graph::blast`] needs (the same answer as on the whole graph), in
    /// index lookups proportional to that part rather than the whole
    /// organisation.
    pub fn load_from(store: &Store, start: i64) -> Result<Graph> {
        let mut b = GraphBuilder::default();
        store.read_access_graph_from(start, &mut b)?;
        Ok(b.finish())
    }

    pub fn identities(&self) -> usize {
        self.nodes.len()
    }

    fn node(&self, id: i64) -> Result<u32> {
        self.index
            .get(&id)
            .copied()
            .ok_or_else(|| Error::not_found(format!("no identity with id {id}")))
    }

    /// Breadth-first from `start` over edges (`forward`: who `start` can act
    /// as; else who can act as `start`). Returns (node, hops, parent, edge);
    /// deleted identities are not crossed.
    fn bfs(&self, start: u32, forward: bool) -> Vec<Visit> {
        let mut seen: HashMap<u32, usize> = HashMap::new();
        let mut order: Vec<Visit> = vec![(start, 0, None, None)];
        seen.insert(start, 0);
        let mut queue = VecDeque::from([start]);
        while let Some(n) = queue.pop_front() {
            let hops = order[seen[&n]].1;
            let edges = if forward {
                &self.out[n as usize]
            } else {
                &self.inn[n as usize]
            };
            for (m, edge) in edges {
                if seen.contains_key(m) || self.nodes[*m as usize].status == IdentityStatus::Deleted
                {
                    continue;
                }
                seen.insert(*m, order.len());
                order.push((*m, hops + 1, Some(n), Some(*edge)));
                queue.push_back(*m);
            }
        }
        order
    }

    fn chain(
        &self,
        order: &[Visit],
        pos: &HashMap<u32, usize>,
        at: usize,
        forward: bool,
    ) -> Vec<Hop> {
        let mut v: Vec<(u32, Option<u32>)> = vec![];
        let mut cur = Some(at);
        while let Some(i) = cur {
            let (n, _, parent, edge) = &order[i];
            v.push((*n, *edge));
            cur = parent.and_then(|p| pos.get(&p).copied());
        }
        if forward {
            v.reverse();
        } else {
            // Reverse search: the list already runs from the reacher to the
            // holder; the edge of each hop is the one to the next hop.
            let edges: Vec<Option<u32>> = v.iter().map(|h| h.1).collect();
            for (i, h) in v.iter_mut().enumerate() {
                h.1 = if i == 0 { None } else { edges[i - 1] };
            }
        }
        v.into_iter()
            .map(|(n, edge)| {
                let label = edge.map(|e| &self.edges[e as usize]);
                Hop {
                    identity_id: self.nodes[n as usize].id,
                    name: self.nodes[n as usize].name.clone(),
                    via: label.map(|l| l.kind.clone()),
                    condition: label.and_then(|l| l.condition.clone()),
                    reason: label.and_then(|l| l.reason.clone()),
                }
            })
            .collect()
    }

    /// Each resource a grant reaches, with the wildcard it goes through: its
    /// own resource (`None`), and for a grant on an AWS wildcard every
    /// resource of the account under it that its action applies to (`s3:*`
    /// on `*` reaches buckets, not roles) and that no deny keeps it from.
    fn reach(&self, g: &GrantRef, mut f: impl FnMut(u32, Option<u32>)) {
        f(g.resource, None);
        // Most graphs (every source but AWS) have no wildcard resources.
        if self.under.is_empty() {
            return;
        }
        let Some(list) = self.under.get(&g.resource) else {
            return;
        };
        for &o in list {
            let r = &self.resources[o as usize];
            let service = r.kind.strip_prefix("aws:").unwrap_or_default();
            if !action_applies(&g.permission, service) {
                continue;
            }
            let excluded = aws_pattern(r).is_some_and(|p| {
                g.excluded
                    .iter()
                    .any(|e| crate::sync::aws_policy::covers(e, p))
            });
            if !excluded {
                f(o, Some(g.resource));
            }
        }
    }

    /// The score alone (for rankings): no chains, no strings.
    pub fn score_of(&self, id: i64) -> Result<(f64, u32, u32, u32)> {
        let start = self.node(id)?;
        let order = self.bfs(start, true);
        let mut best: HashMap<u32, f64> = HashMap::new();
        let mut hc = 0u32;
        for (n, hops, _, _) in &order {
            let decay = HOP_DISCOUNT.powi(*hops as i32);
            for g in &self.grants[*n as usize] {
                self.reach(g, |res, _| {
                    let r = &self.resources[res as usize];
                    let w = sensitivity_weight(r.sensitivity)
                        * privilege_weight(g.privilege)
                        * if g.hc { 2.0 } else { 1.0 }
                        * decay;
                    let e = best.entry(res).or_insert(0.0);
                    if w > *e {
                        *e = w;
                    }
                });
                if g.hc {
                    hc += 1;
                }
            }
        }
        // Summed largest first, as `blast` sums its sorted resources: the
        // same score to the last bit, whatever the map's order.
        let mut parts: Vec<f64> = best.values().copied().collect();
        parts.sort_by(|a, b| b.total_cmp(a));
        Ok((
            parts.iter().sum(),
            order.len() as u32 - 1,
            best.len() as u32,
            hc,
        ))
    }

    /// The full blast radius of an identity.
    pub fn blast(&self, id: i64) -> Result<BlastRadius> {
        let start = self.node(id)?;
        let order = self.bfs(start, true);
        let pos = positions(&order);
        let node = &self.nodes[start as usize];
        let reachable = order
            .iter()
            .enumerate()
            .skip(1)
            .map(|(i, (n, hops, _, _))| ReachedIdentity {
                identity_id: self.nodes[*n as usize].id,
                name: self.nodes[*n as usize].name.clone(),
                kind: self.nodes[*n as usize].kind,
                hops: *hops,
                chain: self.chain(&order, &pos, i, true),
            })
            .collect();
        // Resources: first reach (BFS order = shortest chain) fixes the chain.
        let mut by_res: HashMap<u32, ReachedResource> = HashMap::new();
        let mut res_order: Vec<u32> = vec![];
        let mut high = vec![];
        for (i, (n, hops, _, _)) in order.iter().enumerate() {
            let decay = HOP_DISCOUNT.powi(*hops as i32);
            let holder = &self.nodes[*n as usize].name;
            for g in &self.grants[*n as usize] {
                let mut reached: Vec<(u32, Option<u32>)> = Vec::new();
                self.reach(g, |res, through| reached.push((res, through)));
                for (res, through) in reached {
                    let r = &self.resources[res as usize];
                    let w = sensitivity_weight(r.sensitivity)
                        * privilege_weight(g.privilege)
                        * if g.hc { 2.0 } else { 1.0 }
                        * decay;
                    let permission = match through {
                        Some(w) => format!(
                            "{} (through the grant on {})",
                            g.permission,
                            aws_pattern(&self.resources[w as usize]).unwrap_or_default()
                        ),
                        None => g.permission.clone(),
                    };
                    let entry = by_res.entry(res).or_insert_with(|| {
                        res_order.push(res);
                        ReachedResource {
                            resource_id: r.id,
                            name: r.name.clone(),
                            kind: r.kind.clone(),
                            sensitivity: r.sensitivity,
                            environment: r.environment.clone(),
                            hops: *hops,
                            chain: self.chain(&order, &pos, i, true),
                            permissions: vec![],
                            contribution: 0.0,
                        }
                    });
                    if w > entry.contribution {
                        entry.contribution = w;
                    }
                    if !entry
                        .permissions
                        .iter()
                        .any(|p| p.permission == permission && p.holder == *holder)
                    {
                        entry.permissions.push(ReachedPermission {
                            permission,
                            privilege: g.privilege,
                            high_consequence: g.hc,
                            holder: holder.clone(),
                            condition: g.condition.clone(),
                        });
                    }
                    // A wildcard's high-consequence actions are listed once,
                    // on the wildcard itself.
                    if g.hc && through.is_none() {
                        high.push(HighConsequence {
                            category: consequence_category(&g.permission, &r.kind).into(),
                            resource: r.name.clone(),
                            permission: g.permission.clone(),
                            holder: holder.clone(),
                            hops: *hops,
                        });
                    }
                }
            }
        }
        let mut resources: Vec<ReachedResource> = res_order
            .into_iter()
            .filter_map(|r| by_res.remove(&r))
            .collect();
        resources.sort_by(|a, b| {
            b.contribution
                .total_cmp(&a.contribution)
                .then(a.name.cmp(&b.name))
        });
        let score: f64 = resources.iter().map(|r| r.contribution).sum();
        let mut explanation: Vec<String> = resources
            .iter()
            .take(5)
            .map(|r| {
                let top = r.permissions.iter().max_by(|a, b| {
                    privilege_weight(a.privilege)
                        .total_cmp(&privilege_weight(b.privilege))
                        .then(a.high_consequence.cmp(&b.high_consequence))
                });
                format!(
                    "{:.1} from {} ({} sensitivity {}{}{})",
                    r.contribution,
                    r.name,
                    r.sensitivity.as_str(),
                    top.map_or("", |p| p.privilege.as_str()),
                    if top.is_some_and(|p| p.high_consequence) {
                        ", high-consequence"
                    } else {
                        ""
                    },
                    if r.hops > 0 {
                        format!(", {} hop(s) away", r.hops)
                    } else {
                        String::new()
                    }
                )
            })
            .collect();
        if resources.len() > 5 {
            let rest: f64 = resources.iter().skip(5).map(|r| r.contribution).sum();
            explanation.push(format!(
                "{rest:.1} from {} more resources",
                resources.len() - 5
            ));
        }
        high.sort_by(|a, b| {
            a.hops
                .cmp(&b.hops)
                .then(a.category.cmp(&b.category))
                .then(a.resource.cmp(&b.resource))
        });
        let differences = differences(&node.intended, &resources, &high);
        Ok(BlastRadius {
            identity_id: node.id,
            name: node.name.clone(),
            kind: node.kind,
            score,
            explanation,
            reachable,
            resources,
            high_consequence: high,
            intended: node.intended.clone(),
            differences,
        })
    }

    /// Every identity that can reach `resource`, with its shortest chain.
    pub fn who_can_reach(&self, resource: i64) -> Result<Vec<Reacher>> {
        let r = *self
            .resource_index
            .get(&resource)
            .ok_or_else(|| Error::not_found(format!("no resource with id {resource}")))?;
        // AWS resources whose wildcard pattern covers this one: a holder of
        // `*` or `arn:aws:s3:::data/*` reaches `arn:aws:s3:::data/x` too.
        let target = aws_pattern(&self.resources[r as usize]);
        let covering: HashMap<u32, &str> = match target {
            Some(target) => self
                .resources
                .iter()
                .enumerate()
                .filter(|(i, _)| *i as u32 != r)
                .filter(|(_, o)| o.environment == self.resources[r as usize].environment)
                .filter_map(|(i, o)| {
                    let p = aws_pattern(o)?;
                    (p.contains(['*', '?']) && crate::sync::aws_policy::covers(p, target))
                        .then_some((i as u32, p))
                })
                .collect(),
            None => HashMap::new(),
        };
        // Through a wildcard, only actions of the resource's service apply
        // (`sts:AssumeRole` on `*` reaches no bucket).
        let target_service = self.resources[r as usize]
            .kind
            .strip_prefix("aws:")
            .unwrap_or_default();
        let mut best: HashMap<u32, (Reacher, bool)> = HashMap::new();
        for (holder, gs) in self.grants.iter().enumerate() {
            for g in gs
                .iter()
                .filter(|g| g.resource == r || covering.contains_key(&g.resource))
            {
                let through = covering.get(&g.resource);
                if through.is_some() && !action_applies(&g.permission, target_service) {
                    continue;
                }
                // A deny keeps the wildcard grant from this resource.
                if through.is_some()
                    && target.is_some_and(|t| {
                        g.excluded
                            .iter()
                            .any(|e| crate::sync::aws_policy::covers(e, t))
                    })
                {
                    continue;
                }
                let order = self.bfs(holder as u32, false);
                let pos = positions(&order);
                for (i, (n, hops, _, _)) in order.iter().enumerate() {
                    let better = best.get(n).is_none_or(|(b, wild)| {
                        *hops < b.hops
                            || (*hops == b.hops
                                && (privilege_weight(g.privilege) > privilege_weight(b.privilege)
                                    || (g.privilege == b.privilege && *wild && through.is_none())))
                    });
                    if better {
                        let node = &self.nodes[*n as usize];
                        best.insert(
                            *n,
                            (
                                Reacher {
                                    identity_id: node.id,
                                    name: node.name.clone(),
                                    kind: node.kind,
                                    hops: *hops,
                                    chain: self.chain(&order, &pos, i, false),
                                    permission: match through {
                                        Some(p) => {
                                            format!("{} (through the grant on {p})", g.permission)
                                        }
                                        None => g.permission.clone(),
                                    },
                                    privilege: g.privilege,
                                    condition: g.condition.clone(),
                                },
                                through.is_some(),
                            ),
                        );
                    }
                }
            }
        }
        let mut v: Vec<Reacher> = best.into_values().map(|(r, _)| r).collect();
        v.sort_by(|a, b| a.hops.cmp(&b.hops).then(a.name.cmp(&b.name)));
        Ok(v)
    }

    /// Scores of every active identity, highest first.
    pub fn rank(&self, limit: usize) -> Vec<BlastRank> {
        let mut v: Vec<BlastRank> = self
            .nodes
            .iter()
            .filter(|n| n.status == IdentityStatus::Active)
            .filter_map(|n| {
                self.score_of(n.id)
                    .ok()
                    .map(|(score, reach, res, hc)| BlastRank {
                        identity_id: n.id,
                        name: n.name.clone(),
                        kind: n.kind,
                        score,
                        reachable_identities: reach,
                        resources: res,
                        high_consequence: hc,
                    })
            })
            .collect();
        v.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.name.cmp(&b.name)));
        v.truncate(limit);
        v
    }

    /// Identities that reach admin on a critical resource only through a
    /// delegation chain (they hold no such grant themselves).
    pub fn paths_to_admin(&self, limit: usize) -> Vec<AdminPath> {
        let mut v = vec![];
        for (i, n) in self.nodes.iter().enumerate() {
            if n.status != IdentityStatus::Active || self.out[i].is_empty() {
                continue;
            }
            let own = self.grants[i].iter().any(|g| {
                g.privilege == Privilege::Admin
                    && self.resources[g.resource as usize].sensitivity == Sensitivity::Critical
            });
            if own {
                continue;
            }
            let order = self.bfs(i as u32, true);
            let pos = positions(&order);
            'found: for (k, (m, hops, _, _)) in order.iter().enumerate() {
                if *hops == 0 {
                    continue;
                }
                for g in &self.grants[*m as usize] {
                    let r = &self.resources[g.resource as usize];
                    if g.privilege == Privilege::Admin && r.sensitivity == Sensitivity::Critical {
                        v.push(AdminPath {
                            identity_id: n.id,
                            name: n.name.clone(),
                            resource: r.name.clone(),
                            permission: g.permission.clone(),
                            chain: self.chain(&order, &pos, k, true),
                            condition: g.condition.clone(),
                        });
                        break 'found;
                    }
                }
            }
            if v.len() >= limit {
                break;
            }
        }
        v
    }
}

/// Where the computed blast radius exceeds what the owner wrote down.
fn differences(
    intended: &str,
    resources: &[ReachedResource],
    high: &[HighConsequence],
) -> Vec<String> {
    let text = intended.to_lowercase();
    if text.trim().is_empty() {
        return if resources.is_empty() {
            vec![]
        } else {
            vec![format!(
                "no intended blast radius is documented; the computed one spans {} resources",
                resources.len()
            )]
        };
    }
    let mut v = vec![];
    let read_only = text.contains("read-only")
        || text.contains("read only")
        || text.contains("reads only")
        || text.contains("only read");
    if read_only {
        for r in resources
            .iter()
            .filter(|r| r.permissions.iter().any(|p| p.privilege != Privilege::Read))
            .take(10)
        {
            v.push(format!(
                "documented as read-only, but can {} {}",
                if r.permissions
                    .iter()
                    .any(|p| p.privilege == Privilege::Admin)
                {
                    "administer"
                } else {
                    "write to"
                },
                r.name
            ));
        }
    }
    let no_delete = text.contains("never delete")
        || text.contains("no delete")
        || text.contains("cannot delete")
        || text.contains("does not delete");
    if no_delete {
        for h in high.iter().filter(|h| h.category == "delete").take(5) {
            v.push(format!(
                "documented as never deleting, but {} allows {} on {}",
                h.holder, h.permission, h.resource
            ));
        }
    }
    for (cat, words) in [
        ("payments", ["payment", "refund"]),
        ("messaging", ["mail", "message"]),
        ("iam", ["iam", "role"]),
    ] {
        if high.iter().any(|h| h.category == cat) && !words.iter().any(|w| text.contains(w)) {
            v.push(format!(
                "can take {cat} actions that the documented intent does not mention"
            ));
        }
    }
    let undocumented: Vec<&str> = resources
        .iter()
        .filter(|r| r.sensitivity >= Sensitivity::High)
        .filter(|r| {
            !text.contains(&r.name.to_lowercase())
                && !text.contains(&r.kind.to_lowercase().replace('_', " "))
                && !text.contains(&r.kind.to_lowercase())
        })
        .map(|r| r.name.as_str())
        .take(10)
        .collect();
    if !undocumented.is_empty() {
        v.push(format!(
            "reaches sensitive resources the documented intent does not name: {}",
            undocumented.join(", ")
        ));
    }
    v
}

/// The kinds of edge a person may document between identities.
pub fn documented_kinds() -> &'static [DelegationKind] {
    &[
        DelegationKind::AssumeRole,
        DelegationKind::Invoke,
        DelegationKind::OnBehalfOf,
        DelegationKind::Impersonate,
    ]
}

/// The blast-radius document of an identity, as Markdown.
pub fn to_markdown(b: &BlastRadius, generated_at: &str) -> String {
    use crate::sanitize::md_text as t;
    use std::fmt::Write as _;
    // Every string from a source or a person goes through `t` (one line of
    // literal text: no links, HTML, headings or table breaks).
    let mut m = String::new();
    let _ = writeln!(m, "# Blast radius: {}\n", t(&b.name));
    let _ = writeln!(
        m,
        "*{}*, generated {generated_at} by Custodian.\n",
        b.kind.as_str()
    );
    let _ = writeln!(
        m,
        "**Score {:.1}** ({} identities and {} resources in reach, {} high-consequence actions).\n",
        b.score,
        b.reachable.len(),
        b.resources.len(),
        b.high_consequence.len()
    );
    let _ = writeln!(m, "## Intended (documented by the owner)\n");
    let _ = writeln!(
        m,
        "{}\n",
        if b.intended.trim().is_empty() {
            "_Nothing documented._".to_string()
        } else {
            t(&b.intended)
        }
    );
    if !b.differences.is_empty() {
        let _ = writeln!(m, "## Differences: computed beyond intended\n");
        for d in &b.differences {
            let _ = writeln!(m, "- **{}**", t(d));
        }
        m.push('\n');
    }
    let _ = writeln!(m, "## How the score adds up\n");
    for e in &b.explanation {
        let _ = writeln!(m, "- {}", t(e));
    }
    let _ = writeln!(m, "\nWeights: sensitivity low 1, medium 3, high 9, critical 27; privilege read 1, write 3, admin 9; x2 when high-consequence; x{HOP_DISCOUNT} per delegation hop.\n");
    if !b.high_consequence.is_empty() {
        let _ = writeln!(m, "## High-consequence actions\n\n| category | resource | permission | held by | hops |\n|---|---|---|---|---|");
        for h in &b.high_consequence {
            let _ = writeln!(
                m,
                "| {} | {} | {} | {} | {} |",
                t(&h.category),
                t(&h.resource),
                t(&h.permission),
                t(&h.holder),
                h.hops
            );
        }
        m.push('\n');
    }
    if !b.reachable.is_empty() {
        let _ = writeln!(m, "## Delegation chains\n");
        for r in &b.reachable {
            let chain: Vec<String> = r
                .chain
                .iter()
                .map(|h| match h.link_text(t) {
                    Some(l) => format!("--{l}--> {}", t(&h.name)),
                    None => t(&h.name),
                })
                .collect();
            let _ = writeln!(
                m,
                "- {} ({} hop(s)): {}",
                t(&r.name),
                r.hops,
                chain.join(" ")
            );
        }
        m.push('\n');
    }
    let _ = writeln!(m, "## Resources in reach\n\n| resource | kind | sensitivity | environment | permissions | via | contribution |\n|---|---|---|---|---|---|---|");
    for r in &b.resources {
        let perms: Vec<String> = r
            .permissions
            .iter()
            .map(|p| match &p.condition {
                Some(c) => format!("{} ({}; {})", t(&p.permission), p.privilege.as_str(), t(c)),
                None => format!("{} ({})", t(&p.permission), p.privilege.as_str()),
            })
            .collect();
        let via: Vec<String> = r.chain.iter().map(|h| t(&h.name)).collect();
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} | {} | {} | {:.1} |",
            t(&r.name),
            t(&r.kind),
            r.sensitivity.as_str(),
            t(&r.environment),
            perms.join(", "),
            via.join(" → "),
            r.contribution
        );
    }
    m
}

/// One permission an identity can exercise, and who authorised it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct AuthorizationEntry {
    pub resource: String,
    pub permission: String,
    pub privilege: Privilege,
    /// Who holds the grant (the identity itself, or one it acts through).
    pub holder: String,
    /// The delegation chain from the identity to the holder.
    pub chain: Vec<Hop>,
    /// The newest certification of this grant: "keep by X on DATE in CAMPAIGN".
    pub certified: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct AuthorizationReport {
    pub identity_id: i64,
    pub name: String,
    pub source: String,
    pub owner: Option<String>,
    /// How the owner was set: the source, or a decision in Custodian.
    pub ownership: String,
    pub registered: Option<String>,
    /// Certifications of the identity itself, newest first.
    pub certifications: Vec<String>,
    pub entries: Vec<AuthorizationEntry>,
    /// Audit-log entries about this identity, oldest first (seq, at, actor, action).
    pub audit: Vec<crate::store::audit::AuditEntry>,
}

/// "Authorised by whom, under which policy, via which chain" for an identity,
/// from the graph (chains and grants), the review history and the audit log.
pub fn authorization(store: &Store, graph: &Graph, identity: i64) -> Result<AuthorizationReport> {
    let b = graph.blast(identity)?;
    let p = store.identity_provenance(identity)?;
    let source = p.source;
    let ownership = p
        .owner_override
        .unwrap_or_else(|| format!("as recorded in {source}"));
    let registration = p
        .registration
        .or_else(|| p.registered.then(|| format!("registered in {source}")));
    let certifications = store.identity_certifications(identity)?;
    let mut entries = vec![];
    for r in &b.resources {
        for perm in &r.permissions {
            let certified =
                store.grant_certification(&perm.holder, r.resource_id, &perm.permission)?;
            entries.push(AuthorizationEntry {
                resource: r.name.clone(),
                permission: perm.permission.clone(),
                privilege: perm.privilege,
                holder: perm.holder.clone(),
                chain: r.chain.clone(),
                certified,
            });
        }
    }
    let audit = store.audit_about_identity(identity, &b.name)?;
    let owner = p.owner;
    Ok(AuthorizationReport {
        identity_id: identity,
        name: b.name,
        source,
        owner,
        ownership,
        registered: registration,
        certifications,
        entries,
        audit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(id: i64, name: &str) -> GraphIdentity {
        GraphIdentity {
            id,
            name: name.into(),
            kind: IdentityKind::AiAgent,
            status: IdentityStatus::Active,
            intended_blast_radius: String::new(),
        }
    }

    /// agent (1) -> role (2) by a documented link; the role is admin on a
    /// critical resource, the agent reads a low one. Edges and grants that
    /// name unknown identities or resources are dropped.
    fn sample() -> Graph {
        let mut b = GraphBuilder::default();
        b.identity(identity(1, "agent"));
        b.identity(identity(2, "role"));
        b.edge(GraphEdge {
            from: 1,
            to: 2,
            kind: "invoke".into(),
            documented: true,
            condition: None,
            reason: Some("its secret deploys through the role".into()),
        });
        b.edge(GraphEdge {
            from: 1,
            to: 99,
            kind: "assume_role".into(),
            documented: false,
            condition: None,
            reason: None,
        });
        b.resource(GraphResource {
            id: 10,
            name: "payments-db".into(),
            kind: "database".into(),
            sensitivity: Sensitivity::Critical,
            environment: "production".into(),
        });
        b.resource(GraphResource {
            id: 11,
            name: "wiki".into(),
            kind: "site".into(),
            sensitivity: Sensitivity::Low,
            environment: String::new(),
        });
        let grant = |identity, resource, privilege, hc| GraphGrant {
            identity,
            resource,
            permission: "p".into(),
            privilege,
            high_consequence: hc,
            condition: None,
            excluded: vec![],
        };
        b.grant(grant(2, 10, Privilege::Admin, false));
        b.grant(grant(1, 11, Privilege::Read, false));
        b.grant(grant(1, 77, Privilege::Admin, true));
        b.finish()
    }

    #[test]
    fn builder_scores_through_a_documented_edge_and_drops_dangling_facts() -> Result<()> {
        let g = sample();
        assert_eq!(g.identities(), 2);
        let b = g.blast(1)?;
        assert_eq!(b.reachable.len(), 1);
        let via = b.reachable[0].chain.last().and_then(|h| h.via.clone());
        assert_eq!(via.as_deref(), Some("invoke (documented)"));
        // 27 x 9 one hop away (x 0.8) plus 1 x 1 at the start.
        let expected = 27.0 * 9.0 * HOP_DISCOUNT + 1.0;
        assert!((b.score - expected).abs() < 1e-9, "score {}", b.score);
        assert_eq!(b.resources.len(), 2);
        assert!(b.high_consequence.is_empty());
        Ok(())
    }

    #[test]
    fn who_can_reach_follows_aws_wildcard_grants() -> Result<()> {
        let mut b = GraphBuilder::default();
        for (id, name) in [
            (1, "bucket-admin"),
            (2, "reader"),
            (3, "admin"),
            (4, "other"),
            (5, "elsewhere"),
        ] {
            b.identity(identity(id, name));
        }
        let res = |id, name: &str, kind: &str, env: &str| GraphResource {
            id,
            name: name.into(),
            kind: kind.into(),
            sensitivity: Sensitivity::High,
            environment: env.into(),
        };
        b.resource(res(10, "arn:aws:s3:::data/report", "aws:s3", "prod"));
        b.resource(res(11, "arn:aws:s3:::data/*", "aws:s3", "prod"));
        b.resource(res(
            12,
            "* (every resource in account prod)",
            "aws:*",
            "prod",
        ));
        b.resource(res(13, "arn:aws:s3:::other/*", "aws:s3", "prod"));
        b.resource(res(14, "* (every resource in account dev)", "aws:*", "dev"));
        b.resource(res(15, "data/*", "site", "prod"));
        let grant = |identity, resource, permission: &str, privilege| GraphGrant {
            identity,
            resource,
            permission: permission.into(),
            privilege,
            high_consequence: false,
            condition: None,
            excluded: vec![],
        };
        b.grant(grant(1, 11, "s3:*", Privilege::Write));
        b.grant(grant(2, 10, "s3:GetObject", Privilege::Read));
        b.grant(grant(3, 12, "*", Privilege::Admin));
        b.grant(grant(4, 13, "s3:*", Privilege::Write));
        b.grant(grant(5, 14, "*", Privilege::Admin));
        b.grant(grant(4, 15, "write", Privilege::Write));
        b.grant(grant(4, 12, "sts:AssumeRole", Privilege::Write));
        let g = b.finish();
        let mut who: Vec<(String, String)> = g
            .who_can_reach(10)?
            .into_iter()
            .map(|r| (r.name, r.permission))
            .collect();
        who.sort();
        assert_eq!(
            who,
            [
                (
                    "admin".to_string(),
                    "* (through the grant on *)".to_string()
                ),
                (
                    "bucket-admin".to_string(),
                    "s3:* (through the grant on arn:aws:s3:::data/*)".to_string()
                ),
                ("reader".to_string(), "s3:GetObject".to_string()),
            ]
        );
        // A wildcard resource itself is reached only by wider patterns.
        let mut who: Vec<String> = g.who_can_reach(11)?.into_iter().map(|r| r.name).collect();
        who.sort();
        assert_eq!(who, ["admin", "bucket-admin"]);
        Ok(())
    }

    #[test]
    fn chains_carry_each_link_s_condition_and_reason_both_ways() -> Result<()> {
        // user (1) -assume_role only if MFA-> role (2) -invoke (why)-> runner (3),
        // which administers a critical resource.
        let mut b = GraphBuilder::default();
        for (id, name) in [(1, "user"), (2, "role"), (3, "runner")] {
            b.identity(identity(id, name));
        }
        b.edge(GraphEdge {
            from: 1,
            to: 2,
            kind: "assume_role".into(),
            documented: false,
            condition: Some("only if Bool aws:MultiFactorAuthPresent=true".into()),
            reason: None,
        });
        b.edge(GraphEdge {
            from: 2,
            to: 3,
            kind: "invoke".into(),
            documented: false,
            condition: None,
            reason: Some("iam:PassRole to ec2.amazonaws.com".into()),
        });
        b.resource(GraphResource {
            id: 10,
            name: "*".into(),
            kind: "aws:*".into(),
            sensitivity: Sensitivity::Critical,
            environment: "prod".into(),
        });
        b.grant(GraphGrant {
            identity: 3,
            resource: 10,
            permission: "*".into(),
            privilege: Privilege::Admin,
            high_consequence: true,
            condition: Some("unless Bool aws:MultiFactorAuthPresent=false".into()),
            excluded: vec![],
        });
        let g = b.finish();
        let plain = |s: &str| s.to_string();
        let expected = "user -assume_role (only if Bool aws:MultiFactorAuthPresent=true)-> role \
                        -invoke (iam:PassRole to ec2.amazonaws.com)-> runner";
        // Forward: the blast radius and paths-to-admin.
        let blast = g.blast(1)?;
        assert_eq!(chain_text(&blast.reachable[1].chain, plain), expected);
        assert_eq!(chain_text(&blast.resources[0].chain, plain), expected);
        let paths = g.paths_to_admin(10);
        assert_eq!(chain_text(&paths[0].chain, plain), expected);
        // The admin grant's own condition goes with it.
        assert_eq!(
            paths[0].condition.as_deref(),
            Some("unless Bool aws:MultiFactorAuthPresent=false")
        );
        // Reverse: who can reach the resource.
        let who = g.who_can_reach(10)?;
        let user = who.iter().find(|r| r.name == "user").map(|r| &r.chain);
        assert_eq!(
            user.map(|c| chain_text(c, plain)).as_deref(),
            Some(expected)
        );
        // The Markdown document escapes the condition like any outside text.
        let md = to_markdown(&blast, "now");
        assert!(
            md.contains("--assume\\_role (only if Bool aws\\:MultiFactorAuthPresent=true)--> role"),
            "{md}"
        );
        Ok(())
    }

    #[test]
    fn blast_radius_lists_each_resource_under_a_wildcard_grant() -> Result<()> {
        let mut b = GraphBuilder::default();
        for (id, name) in [(1, "s3-writer"), (2, "admin")] {
            b.identity(identity(id, name));
        }
        let res = |id, name: &str, kind: &str, env: &str| GraphResource {
            id,
            name: name.into(),
            kind: kind.into(),
            sensitivity: Sensitivity::High,
            environment: env.into(),
        };
        b.resource(res(
            10,
            "* (every resource in account prod)",
            "aws:*",
            "prod",
        ));
        b.resource(res(11, "arn:aws:s3:::data/report", "aws:s3", "prod"));
        b.resource(res(12, "arn:aws:s3:::secret", "aws:s3", "prod"));
        b.resource(res(13, "arn:aws:iam::1:role/r", "aws:iam", "prod"));
        b.resource(res(14, "arn:aws:s3:::elsewhere", "aws:s3", "dev"));
        b.grant(GraphGrant {
            identity: 1,
            resource: 10,
            permission: "s3:*".into(),
            privilege: Privilege::Write,
            high_consequence: true,
            condition: Some("not on arn:aws:s3:::secret".into()),
            excluded: vec!["arn:aws:s3:::secret".into()],
        });
        b.grant(GraphGrant {
            identity: 2,
            resource: 10,
            permission: "*".into(),
            privilege: Privilege::Admin,
            high_consequence: true,
            condition: None,
            excluded: vec![],
        });
        let g = b.finish();
        let reach = |id| -> Result<Vec<(String, String)>> {
            let mut v: Vec<(String, String)> = g
                .blast(id)?
                .resources
                .into_iter()
                .flat_map(|r| {
                    r.permissions
                        .into_iter()
                        .map(move |p| (r.name.clone(), p.permission))
                })
                .collect();
            v.sort();
            Ok(v)
        };
        // s3:* reaches the account's buckets (not the secret one a deny keeps
        // it from, not a role, not another account's), saying through which grant.
        assert_eq!(
            reach(1)?,
            [
                (
                    "* (every resource in account prod)".to_string(),
                    "s3:*".to_string()
                ),
                (
                    "arn:aws:s3:::data/report".to_string(),
                    "s3:* (through the grant on *)".to_string()
                ),
            ]
        );
        assert_eq!(reach(2)?.len(), 4, "{:?}", reach(2)?);
        // The ranking's score is the blast radius's; high-consequence actions
        // are listed once, on the wildcard.
        let blast = g.blast(1)?;
        assert!((g.score_of(1)?.0 - blast.score).abs() < 1e-9);
        assert_eq!(g.score_of(1)?.2, 2);
        assert_eq!(blast.high_consequence.len(), 1);
        assert_eq!(
            blast.resources[0].permissions[0].condition.as_deref(),
            Some("not on arn:aws:s3:::secret")
        );
        // who-can-reach agrees: the secret bucket is the admin's only.
        let who: Vec<String> = g.who_can_reach(12)?.into_iter().map(|r| r.name).collect();
        assert_eq!(who, ["admin"]);
        let who = g.who_can_reach(11)?;
        let writer = who.iter().find(|r| r.name == "s3-writer");
        assert_eq!(
            writer.and_then(|r| r.condition.as_deref()),
            Some("not on arn:aws:s3:::secret")
        );
        Ok(())
    }

    #[test]
    fn reverse_search_finds_who_reaches_a_resource() -> Result<()> {
        let g = sample();
        let mut names: Vec<String> = g.who_can_reach(10)?.into_iter().map(|r| r.name).collect();
        names.sort();
        assert_eq!(names, ["agent", "role"]);
        Ok(())
    }
}
