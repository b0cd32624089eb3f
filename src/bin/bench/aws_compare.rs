//! `--aws N --pmapper`: what Custodian and principalmapper conclude about the
//! same account, side by side (not only how fast): assume-role edges,
//! escalation edges, the admin set, and who can escalate to admin
//! (Custodian's `paths-to-admin` against pmapper's `preset privesc *`).
//!
//! Custodian's side is read through the library's public API only: the
//! access graph as the store streams it ([`Store::read_access_graph`]), the
//! identities' external ids (ARNs for AWS) and [`custodian::ops::paths_to_admin`].
//! pmapper's side is what `pmapper_driver.py` prints in its `graph` and
//! `privesc` phases (external data: every field is checked, nothing is
//! unwrapped).
//!
//! Pairs are compared by (source ARN, destination ARN). An edge is an
//! assume-role edge when pmapper's STS checker made it (`short_reason`
//! `AssumeRole`) or Custodian stores it as `assume_role`; every other pmapper
//! edge (IAM, Lambda, EC2, CloudFormation, CodeBuild, ...) and Custodian's
//! `add_credential` and `invoke` edges are escalation edges. Custodian stores
//! a trust-rewrite escalation as `assume_role` too; such a pair, when pmapper
//! has it only as "can update the trust document", is counted with the
//! escalation edges.
//!
//! Each "only one tool" class is split by the reason that explains most of
//! it without reading policies: a principal Custodian files as a person (an
//! IAM user with a console password and no keys is not an identity there);
//! an edge from a principal pmapper calls admin (pmapper keeps no edges from
//! admins: they reach everything anyway).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Instant;

use custodian::error::Result;
use custodian::model::{IdentityStatus, Privilege, Sensitivity};
use custodian::store::graph::{
    AccessGraphSink, GraphEdge, GraphGrant, GraphIdentity, GraphResource,
};
use custodian::store::Store;

/// How many examples each class shows.
const EXAMPLES: usize = 4;

/// (source ARN, destination ARN).
type Pair = (String, String);

/// Custodian's conclusions about the account, by ARN.
pub struct Ours {
    /// Identity id → ARN.
    pub arn_of: HashMap<i64, String>,
    /// Active identities (ARNs).
    pub identities: BTreeSet<String>,
    /// Pair → stored delegation kind (`assume_role`, `add_credential`, `invoke`).
    pub edges: BTreeMap<Pair, Vec<String>>,
    /// Effective admins: an admin grant on a critical resource (what
    /// `paths-to-admin` counts as reaching admin).
    pub admin_ids: HashSet<i64>,
    /// `paths-to-admin`: principal ARN → its chain, written out.
    pub privesc: BTreeMap<String, String>,
    /// Time of `ops::paths_to_admin` over the whole account (it loads the graph).
    pub paths_s: f64,
}

impl Ours {
    pub fn admins(&self) -> BTreeSet<String> {
        self.admin_ids
            .iter()
            .filter_map(|id| self.arn_of.get(id).cloned())
            .collect()
    }
}

#[derive(Default)]
struct Facts {
    active: HashSet<i64>,
    edges: Vec<(i64, i64, String)>,
    critical: HashSet<i64>,
    admins: HashSet<i64>,
}

impl AccessGraphSink for Facts {
    fn identity(&mut self, i: GraphIdentity) {
        if i.status == IdentityStatus::Active {
            self.active.insert(i.id);
        }
    }
    fn edge(&mut self, e: GraphEdge) {
        if !e.documented {
            self.edges.push((e.from, e.to, e.kind));
        }
    }
    fn resource(&mut self, r: GraphResource) {
        if r.sensitivity == Sensitivity::Critical {
            self.critical.insert(r.id);
        }
    }
    fn grant(&mut self, g: GraphGrant) {
        if g.privilege == Privilege::Admin && self.critical.contains(&g.resource) {
            self.admins.insert(g.identity);
        }
    }
}

/// Reads Custodian's side from the store.
pub fn ours(store: &Store) -> Result<Ours> {
    let mut f = Facts::default();
    store.read_access_graph(&mut f)?;
    let arn_of: HashMap<i64, String> = store.identity_external_ids()?.into_iter().collect();
    let arn = |id: i64| arn_of.get(&id).cloned().unwrap_or_else(|| format!("#{id}"));
    let mut edges: BTreeMap<Pair, Vec<String>> = BTreeMap::new();
    for (a, b, kind) in &f.edges {
        let v = edges.entry((arn(*a), arn(*b))).or_default();
        if !v.contains(kind) {
            v.push(kind.clone());
        }
    }
    let t = Instant::now();
    let paths = custodian::ops::paths_to_admin(store, usize::MAX)?;
    let paths_s = t.elapsed().as_secs_f64();
    let privesc = paths
        .into_iter()
        .map(|p| {
            let chain = p
                .chain
                .iter()
                .map(|h| match &h.via {
                    Some(v) => format!("-[{v}]-> {}", h.name),
                    None => h.name.clone(),
                })
                .collect::<Vec<_>>()
                .join(" ");
            (
                arn(p.identity_id),
                format!("{chain} (holds {} on {})", p.permission, p.resource),
            )
        })
        .collect();
    let identities = f.active.iter().map(|&id| arn(id)).collect();
    Ok(Ours {
        identities,
        edges,
        admin_ids: f.admins,
        privesc,
        paths_s,
        arn_of,
    })
}

/// pmapper's conclusions, from the driver's `graph` and `privesc` lines.
struct Theirs {
    nodes: BTreeSet<String>,
    admins: BTreeSet<String>,
    /// Pair → (reason, short_reason) of each edge pmapper made for it.
    edges: BTreeMap<Pair, Vec<(String, String)>>,
    /// Principal → its path, written out; `None` when the phase did not finish.
    privesc: Option<BTreeMap<String, String>>,
    privesc_s: Option<f64>,
    /// Entries that could not be read.
    malformed: usize,
}

fn theirs(graph: &serde_json::Value, privesc: Option<&serde_json::Value>) -> Theirs {
    let mut malformed = 0;
    let mut nodes = BTreeSet::new();
    let mut admins = BTreeSet::new();
    for n in graph["nodes"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        match (n[0].as_str(), n[1].as_bool()) {
            (Some(arn), Some(admin)) => {
                nodes.insert(arn.to_string());
                if admin {
                    admins.insert(arn.to_string());
                }
            }
            _ => malformed += 1,
        }
    }
    let mut edges: BTreeMap<Pair, Vec<(String, String)>> = BTreeMap::new();
    for e in graph["edges"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        match (e[0].as_str(), e[1].as_str(), e[2].as_str(), e[3].as_str()) {
            (Some(a), Some(b), Some(reason), Some(short)) => edges
                .entry((a.to_string(), b.to_string()))
                .or_default()
                .push((reason.to_string(), short.to_string())),
            _ => malformed += 1,
        }
    }
    let short = |arn: &str| searchable(arn);
    let privesc_map = privesc.map(|p| {
        let mut m = BTreeMap::new();
        for entry in p["principals"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let (Some(arn), Some(path)) = (entry[0].as_str(), entry[1].as_array()) else {
                malformed += 1;
                continue;
            };
            let mut text = short(arn);
            for hop in path {
                text.push_str(&format!(
                    " -[{}]-> {}",
                    hop[1].as_str().unwrap_or("?"),
                    short(hop[0].as_str().unwrap_or("?"))
                ));
            }
            m.insert(arn.to_string(), text);
        }
        m
    });
    Theirs {
        nodes,
        admins,
        edges,
        privesc: privesc_map,
        privesc_s: privesc.and_then(|p| p["s"].as_f64()),
        malformed,
    }
}

/// pmapper's searchable name of an ARN: `user/NAME`, `role/NAME` (no path).
pub fn searchable(arn: &str) -> String {
    let res = arn.splitn(6, ':').nth(5).unwrap_or(arn);
    let mut parts = res.split('/');
    let kind = parts.next().unwrap_or_default();
    let name = res.rsplit('/').next().unwrap_or_default();
    format!("{kind}/{name}")
}

/// One class: its members and why each is there.
struct Class {
    name: String,
    items: Vec<String>,
}

impl Class {
    fn new(name: impl Into<String>) -> Class {
        Class {
            name: name.into(),
            items: vec![],
        }
    }
    fn line(&self) -> String {
        let ex: Vec<&str> = self
            .items
            .iter()
            .take(EXAMPLES)
            .map(String::as_str)
            .collect();
        if ex.is_empty() {
            format!("  - {}: 0", self.name)
        } else {
            format!(
                "  - {}: {} (e.g. {})",
                self.name,
                self.items.len(),
                ex.join("; ")
            )
        }
    }
    fn json(&self) -> serde_json::Value {
        serde_json::json!({"count": self.items.len(), "examples": self.items.iter().take(20).collect::<Vec<_>>()})
    }
}

fn pair_text(p: &Pair) -> String {
    format!("{} -> {}", searchable(&p.0), searchable(&p.1))
}

/// The comparison of both sides; `graph`/`privesc` are the driver's lines
/// (absent when pmapper did not get that far).
pub fn compare(
    ours: &Ours,
    graph: Option<&serde_json::Value>,
    privesc: Option<&serde_json::Value>,
) -> (Vec<String>, serde_json::Value) {
    let Some(graph) = graph else {
        return (
            vec![
                "### what each tool concludes: pmapper's graph did not finish, nothing to compare"
                    .into(),
            ],
            serde_json::json!({"finished": false}),
        );
    };
    let t = theirs(graph, privesc);
    let person = |arn: &str| t.nodes.contains(arn) && !ours.identities.contains(arn);
    let pm_assume: BTreeSet<&Pair> = t
        .edges
        .iter()
        .filter(|(_, v)| v.iter().any(|(_, s)| s == "AssumeRole"))
        .map(|(p, _)| p)
        .collect();
    let pm_trust_rewrite = |p: &Pair| {
        t.edges.get(p).is_some_and(|v| {
            v.iter()
                .any(|(r, _)| r.contains("update the trust document"))
        })
    };
    let pm_esc: BTreeSet<&Pair> = t
        .edges
        .iter()
        .filter(|(_, v)| v.iter().any(|(_, s)| s != "AssumeRole"))
        .map(|(p, _)| p)
        .collect();
    let mut cu_assume: BTreeSet<&Pair> = BTreeSet::new();
    let mut cu_esc: BTreeSet<&Pair> = BTreeSet::new();
    for (p, kinds) in &ours.edges {
        if kinds.iter().any(|k| k != "assume_role") {
            cu_esc.insert(p);
        }
        if kinds.iter().any(|k| k == "assume_role") {
            if !pm_assume.contains(p) && pm_trust_rewrite(p) {
                cu_esc.insert(p);
            } else {
                cu_assume.insert(p);
            }
        }
    }
    let pm_reasons = |p: &Pair| {
        t.edges
            .get(p)
            .map(|v| {
                v.iter()
                    .map(|(r, _)| r.as_str())
                    .collect::<Vec<_>>()
                    .join(" / ")
            })
            .unwrap_or_default()
    };
    let cu_kinds = |p: &Pair| ours.edges.get(p).map(|v| v.join(" / ")).unwrap_or_default();

    let mut lines = vec![format!(
        "### what each tool concludes (same account; pmapper {} principals, Custodian {} identities)",
        t.nodes.len(),
        ours.identities.len()
    )];
    let cu_admin_arns = ours.admins();
    let mut json = serde_json::Map::new();
    for (label, key, pm, cu) in [
        (
            "assume-role edges",
            "assume_role_edges",
            &pm_assume,
            &cu_assume,
        ),
        ("escalation edges", "escalation_edges", &pm_esc, &cu_esc),
    ] {
        let mut both = Class::new("in both");
        let mut only_pm_person =
            Class::new("only pmapper, touching a principal Custodian files as a person");
        let mut only_pm_admin = Class::new(
            "only pmapper, from a principal Custodian calls admin (Custodian adds no escalation edges from admins)",
        );
        let mut only_pm = Class::new("only pmapper, the rest");
        let mut only_cu_admin = Class::new("only Custodian, from a principal pmapper calls admin (pmapper keeps no edges from admins)");
        let mut only_cu = Class::new("only Custodian, the rest");
        for p in pm.iter() {
            if cu.contains(p) {
                both.items.push(format!(
                    "{} ({}; {})",
                    pair_text(p),
                    pm_reasons(p),
                    cu_kinds(p)
                ));
            } else if person(&p.0) || person(&p.1) {
                only_pm_person
                    .items
                    .push(format!("{} ({})", pair_text(p), pm_reasons(p)));
            } else if key == "escalation_edges" && cu_admin_arns.contains(&p.0) {
                only_pm_admin
                    .items
                    .push(format!("{} ({})", pair_text(p), pm_reasons(p)));
            } else {
                only_pm
                    .items
                    .push(format!("{} ({})", pair_text(p), pm_reasons(p)));
            }
        }
        for p in cu.iter().filter(|p| !pm.contains(*p)) {
            let text = format!("{} ({})", pair_text(p), cu_kinds(p));
            if t.admins.contains(&p.0) {
                only_cu_admin.items.push(text);
            } else {
                only_cu.items.push(text);
            }
        }
        lines.push(format!(
            "- {label}: pmapper {}, Custodian {}",
            pm.len(),
            cu.len()
        ));
        let classes = [
            &both,
            &only_pm_person,
            &only_pm_admin,
            &only_pm,
            &only_cu_admin,
            &only_cu,
        ];
        lines.extend(classes.iter().map(|c| c.line()));
        json.insert(
            key.into(),
            serde_json::json!({
                "pmapper": pm.len(), "custodian": cu.len(),
                "both": both.json(), "only_pmapper_person": only_pm_person.json(),
                "only_pmapper_from_custodian_admin": only_pm_admin.json(),
                "only_pmapper": only_pm.json(), "only_custodian_from_pmapper_admin": only_cu_admin.json(),
                "only_custodian": only_cu.json(),
            }),
        );
    }

    // Admin sets.
    let cu_admins = cu_admin_arns;
    let mut both = Class::new("in both");
    let mut only_pm_person = Class::new("only pmapper, a principal Custodian files as a person");
    let mut only_pm = Class::new("only pmapper, the rest");
    let mut only_cu = Class::new("only Custodian");
    for a in &t.admins {
        let s = searchable(a);
        if cu_admins.contains(a) {
            both.items.push(s);
        } else if person(a) {
            only_pm_person.items.push(s);
        } else {
            only_pm.items.push(s);
        }
    }
    for a in cu_admins.iter().filter(|a| !t.admins.contains(*a)) {
        only_cu.items.push(searchable(a));
    }
    lines.push(format!(
        "- admin set: pmapper {}, Custodian {}",
        t.admins.len(),
        cu_admins.len()
    ));
    for c in [&both, &only_pm_person, &only_pm, &only_cu] {
        lines.push(c.line());
    }
    json.insert(
        "admins".into(),
        serde_json::json!({
            "pmapper": t.admins.len(), "custodian": cu_admins.len(), "both": both.json(),
            "only_pmapper_person": only_pm_person.json(), "only_pmapper": only_pm.json(),
            "only_custodian": only_cu.json(),
        }),
    );

    // Who can escalate: preset privesc against paths-to-admin.
    match &t.privesc {
        None => {
            lines.push(
                "- can escalate to admin: pmapper's `preset privesc *` did not finish or did not run (an earlier query hit its limit)"
                    .into(),
            );
            json.insert("privesc".into(), serde_json::json!({"finished": false}));
        }
        Some(pm) => {
            let mut both = Class::new("in both");
            let mut only_pm_person =
                Class::new("only pmapper, a principal Custodian files as a person");
            let mut only_pm_admin = Class::new("only pmapper, Custodian calls it admin already");
            let mut only_pm = Class::new("only pmapper, the rest");
            let mut only_cu_admin = Class::new("only Custodian, pmapper calls it admin already");
            let mut only_cu = Class::new("only Custodian, the rest");
            for (a, path) in pm {
                if let Some(ours_path) = ours.privesc.get(a) {
                    both.items.push(format!("{path} | {ours_path}"));
                } else if person(a) {
                    only_pm_person.items.push(path.clone());
                } else if cu_admins.contains(a) {
                    only_pm_admin.items.push(path.clone());
                } else {
                    only_pm.items.push(path.clone());
                }
            }
            for (a, path) in ours.privesc.iter().filter(|(a, _)| !pm.contains_key(*a)) {
                if t.admins.contains(a) {
                    only_cu_admin.items.push(path.clone());
                } else {
                    only_cu.items.push(path.clone());
                }
            }
            lines.push(format!(
                "- can escalate to admin (pmapper `preset privesc *` in {}; Custodian `paths-to-admin` in {:.2} ms): pmapper {}, Custodian {}",
                t.privesc_s.map_or_else(|| "-".to_string(), |s| format!("{s:.2} s")),
                ours.paths_s * 1e3,
                pm.len(),
                ours.privesc.len()
            ));
            let classes = [
                &both,
                &only_pm_person,
                &only_pm_admin,
                &only_pm,
                &only_cu_admin,
                &only_cu,
            ];
            lines.extend(classes.iter().map(|c| c.line()));
            json.insert(
                "privesc".into(),
                serde_json::json!({
                    "finished": true, "pmapper_s": t.privesc_s, "custodian_paths_to_admin_s": ours.paths_s,
                    "pmapper": pm.len(), "custodian": ours.privesc.len(), "both": both.json(),
                    "only_pmapper_person": only_pm_person.json(), "only_pmapper_custodian_admin": only_pm_admin.json(),
                    "only_pmapper": only_pm.json(), "only_custodian_pmapper_admin": only_cu_admin.json(),
                    "only_custodian": only_cu.json(),
                }),
            );
        }
    }
    if t.malformed > 0 {
        lines.push(format!(
            "- {} entries of pmapper's output could not be read",
            t.malformed
        ));
    }
    json.insert("malformed_pmapper_entries".into(), t.malformed.into());
    json.insert("finished".into(), true.into());
    (lines, serde_json::Value::Object(json))
}
