//! `--aws N`: syncs an IAM account of N users and N/2 roles from a real moto
//! server (PyPI `moto[server]`) on loopback and reports wall time and peak
//! memory. The account is built with the same signed Query API calls a real
//! account would answer: users (services with access keys, people with
//! console passwords), groups, managed and inline policies, and roles whose
//! trust policies form assume-role chains.
//!
//! The server is `--moto URL` when given, else `moto_server` from the test
//! peers (`$CUSTODIAN_PEERS_DIR/venv/bin`, default `target/peers/venv/bin`,
//! installed by `tests/run.sh`), started on a free loopback port and stopped
//! at the end.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use custodian::error::{Error, Result};
use custodian::store::Store;
use custodian::sync::aws::{query_body, sign_headers, CONTENT_TYPE};

use super::{peak_rss_mib, Report};

const KEY_ID: &str = "AKIABENCHMOTO0000001";
const SECRET: &str = "bench-secret";
const ACCOUNT: &str = "123456789012";

const MOTO_LAUNCHER: &str = "import sys, moto.iam.models as m\n\
m.Policy.policy_name = property(lambda s: s.name)\n\
m.Policy.policy_id = property(lambda s: s.id)\n\
from moto.server import main\n\
sys.exit(main())\n";

/// A moto server this process started; killed on drop.
struct Moto(Child);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn peers_dir() -> std::path::PathBuf {
    std::env::var_os("CUSTODIAN_PEERS_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/peers")
        })
}

fn start_moto() -> Result<(Moto, String)> {
    let peers = peers_dir();
    let python = peers.join("venv/bin/python");
    if !peers.join("venv/bin/moto_server").exists() {
        return Err(Error::invalid(format!(
            "moto_server is not in {}: run `bash tests/run.sh` once (it installs the test peers) or pass --moto URL",
            peers.join("venv/bin").display()
        )));
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    // moto 5.2.5 leaves PolicyName/PolicyId out of GAAD's ManagedPolicyDetail,
    // which real AWS always sends; principalmapper needs them (our parser does
    // not). The launcher adds them and then runs the stock server.
    let child = Command::new(&python)
        .args([
            "-c",
            MOTO_LAUNCHER,
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let moto = Moto(child);
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() > Duration::from_secs(30) {
            return Err(Error::internal("moto_server did not start"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok((moto, format!("http://127.0.0.1:{port}/")))
}

/// One IAM call: (action, params).
type Call = (&'static str, Vec<(&'static str, String)>);

/// One call; a 5xx (moto's CreateRole fails now and then under load) is
/// tried again, up to five times.
async fn send(http: &reqwest::Client, endpoint: &str, call: &Call) -> Result<()> {
    let mut attempt = 0;
    loop {
        match send_once(http, endpoint, call).await {
            Err(e) if attempt < 5 && e.to_string().contains("answered 5") => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
            }
            other => return other,
        }
    }
}

async fn send_once(http: &reqwest::Client, endpoint: &str, call: &Call) -> Result<()> {
    let params: Vec<(&str, &str)> = call.1.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let body = query_body(call.0, &params);
    let mut rb = http.post(endpoint).header("content-type", CONTENT_TYPE);
    for (k, v) in sign_headers(
        KEY_ID,
        SECRET,
        endpoint,
        CONTENT_TYPE,
        &body,
        std::time::SystemTime::now(),
    )? {
        rb = rb.header(k, v);
    }
    let resp = rb
        .body(body)
        .send()
        .await
        .map_err(|e| Error::internal(format!("moto: {}: {e}", call.0)))?;
    if !resp.status().is_success() {
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        return Err(Error::internal(format!(
            "moto: {} answered {status}: {text}",
            call.0
        )));
    }
    Ok(())
}

/// Runs the calls of one stage, 8 at a time.
async fn stage(http: &reqwest::Client, endpoint: &Arc<str>, calls: Vec<Call>) -> Result<()> {
    let mut set = tokio::task::JoinSet::new();
    let mut it = calls.into_iter();
    loop {
        while set.len() < 8 {
            let Some(c) = it.next() else { break };
            let (h, e) = (http.clone(), endpoint.clone());
            set.spawn(async move { send(&h, &e, &c).await });
        }
        match set.join_next().await {
            Some(r) => r.map_err(|e| Error::internal(format!("task: {e}")))??,
            None => return Ok(()),
        }
    }
}

fn doc(v: serde_json::Value) -> String {
    v.to_string()
}

fn user_name(i: usize) -> String {
    if i % 10 < 7 {
        format!("svc-{i:05}")
    } else {
        format!("person-{i:05}")
    }
}

fn user_arn(i: usize) -> String {
    if i % 10 < 7 {
        format!("arn:aws:iam::{ACCOUNT}:user/svc/{}", user_name(i))
    } else {
        format!("arn:aws:iam::{ACCOUNT}:user/{}", user_name(i))
    }
}

/// The `case-*` principals: one of each shape the two tools might judge
/// differently (escalation by keys, passwords, trust rewrites and passed
/// roles; admin by an IAM write on another principal, on any user, by group
/// membership; account trust with a deny, a condition, a boundary). A fixed
/// set whatever the size, added to the three stages of [`populate`]: users,
/// then their keys, policies and the roles, then the roles' policies.
fn cases() -> (Vec<Call>, Vec<Call>, Vec<Call>) {
    let arn = |kind: &str, name: &str| format!("arn:aws:iam::{ACCOUNT}:{kind}/{name}");
    let admin_user = arn("user", "svc/case-admin");
    let admin_role = arn("role", "case-admin-role");
    let root_role = arn("role", "case-root-admin-role");
    let allow = |actions: &[&str], resource: &str| serde_json::json!({"Effect":"Allow","Action":actions,"Resource":resource});
    let users: Vec<(&str, Vec<serde_json::Value>)> = vec![
        ("case-admin", vec![]),
        (
            "case-keymaker",
            vec![allow(&["iam:CreateAccessKey"], &admin_user)],
        ),
        (
            "case-passwd",
            vec![allow(&["iam:CreateLoginProfile"], &admin_user)],
        ),
        (
            "case-keymaker-any",
            vec![allow(&["iam:CreateAccessKey"], "*")],
        ),
        (
            "case-trust-rewriter",
            vec![allow(&["iam:UpdateAssumeRolePolicy"], &admin_role)],
        ),
        (
            "case-trust-rewriter-assume",
            vec![allow(
                &["iam:UpdateAssumeRolePolicy", "sts:AssumeRole"],
                &admin_role,
            )],
        ),
        (
            "case-lambda",
            vec![allow(
                &[
                    "iam:PassRole",
                    "lambda:CreateFunction",
                    "lambda:InvokeFunction",
                ],
                "*",
            )],
        ),
        (
            "case-lambda-noinvoke",
            vec![allow(&["iam:PassRole", "lambda:CreateFunction"], "*")],
        ),
        (
            "case-ec2",
            vec![allow(&["iam:PassRole", "ec2:RunInstances"], "*")],
        ),
        (
            "case-ec2-profile",
            vec![allow(
                &[
                    "iam:PassRole",
                    "ec2:RunInstances",
                    "iam:CreateInstanceProfile",
                    "iam:AddRoleToInstanceProfile",
                ],
                "*",
            )],
        ),
        (
            "case-attach-other",
            vec![allow(
                &["iam:AttachUserPolicy"],
                &arn("user", "svc/case-keymaker"),
            )],
        ),
        (
            "case-self-put",
            vec![allow(
                &["iam:PutUserPolicy"],
                &arn("user", "svc/${aws:username}"),
            )],
        ),
        (
            "case-group-adder",
            vec![allow(&["iam:AddUserToGroup"], "*")],
        ),
        (
            "case-notaction",
            vec![serde_json::json!({"Effect":"Allow","NotAction":"iam:*","Resource":"*"})],
        ),
        ("case-denied", vec![allow(&["sts:AssumeRole"], "*")]),
        (
            "case-self-denied",
            vec![
                allow(&["sts:AssumeRole"], "*"),
                serde_json::json!({"Effect":"Deny","Action":"sts:AssumeRole","Resource":root_role}),
            ],
        ),
    ];
    let (mut s1, mut s2, mut s3) = (vec![], vec![], vec![]);
    for (name, stmts) in &users {
        s1.push((
            "CreateUser",
            vec![("UserName", name.to_string()), ("Path", "/svc/".into())],
        ));
        s2.push(("CreateAccessKey", vec![("UserName", name.to_string())]));
        if !stmts.is_empty() {
            s2.push((
                "PutUserPolicy",
                vec![
                    ("UserName", name.to_string()),
                    ("PolicyName", "case".into()),
                    (
                        "PolicyDocument",
                        doc(serde_json::json!({"Version":"2012-10-17","Statement":stmts})),
                    ),
                ],
            ));
        }
    }
    s2.push((
        "AttachUserPolicy",
        vec![
            ("UserName", "case-admin".into()),
            ("PolicyArn", format!("arn:aws:iam::{ACCOUNT}:policy/admin")),
        ],
    ));
    let root = format!("arn:aws:iam::{ACCOUNT}:root");
    let trust = |stmts: serde_json::Value| {
        doc(serde_json::json!({"Version":"2012-10-17","Statement":stmts}))
    };
    // (role, trust, managed policy, boundary)
    let roles: Vec<(&str, String, &str, Option<&str>)> = vec![
        (
            "case-admin-role",
            trust(
                serde_json::json!([{"Effect":"Allow","Principal":{"Service":["lambda.amazonaws.com","ec2.amazonaws.com"]},"Action":"sts:AssumeRole"}]),
            ),
            "admin",
            None,
        ),
        (
            "case-root-admin-role",
            trust(
                serde_json::json!([{"Effect":"Allow","Principal":{"AWS":root},"Action":"sts:AssumeRole"}]),
            ),
            "admin",
            None,
        ),
        (
            "case-mfa-role",
            trust(
                serde_json::json!([{"Effect":"Allow","Principal":{"AWS":root},"Action":"sts:AssumeRole","Condition":{"Bool":{"aws:MultiFactorAuthPresent":"true"}}}]),
            ),
            "s3-read",
            None,
        ),
        (
            "case-deny-role",
            trust(serde_json::json!([
                {"Effect":"Allow","Principal":{"AWS":root},"Action":"sts:AssumeRole"},
                {"Effect":"Deny","Principal":{"AWS":arn("user", "svc/case-denied")},"Action":"sts:AssumeRole"}
            ])),
            "s3-read",
            None,
        ),
        (
            "case-bounded",
            trust(
                serde_json::json!([{"Effect":"Allow","Principal":{"AWS":arn("user", "svc/case-denied")},"Action":"sts:AssumeRole"}]),
            ),
            "assume-any",
            Some("s3-read"),
        ),
        (
            // Names the bounded role directly: its boundary (s3 only) does not
            // allow sts:AssumeRole.
            "case-trusts-bounded",
            trust(
                serde_json::json!([{"Effect":"Allow","Principal":{"AWS":arn("role", "case-bounded")},"Action":"sts:AssumeRole"}]),
            ),
            "s3-read",
            None,
        ),
    ];
    for (name, trust, policy, boundary) in roles {
        let mut p = vec![
            ("RoleName", name.to_string()),
            ("AssumeRolePolicyDocument", trust),
        ];
        if let Some(b) = boundary {
            p.push((
                "PermissionsBoundary",
                format!("arn:aws:iam::{ACCOUNT}:policy/{b}"),
            ));
        }
        s2.push(("CreateRole", p));
        s3.push((
            "AttachRolePolicy",
            vec![
                ("RoleName", name.to_string()),
                (
                    "PolicyArn",
                    format!("arn:aws:iam::{ACCOUNT}:policy/{policy}"),
                ),
            ],
        ));
    }
    (s1, s2, s3)
}

/// Builds the account in stages (an object must exist before it is used).
/// Returns the number of calls made.
pub async fn populate(endpoint: &str, users: usize, roles: usize) -> Result<usize> {
    let http = reqwest::Client::new();
    let ep: Arc<str> = Arc::from(endpoint);
    let policies: Vec<(&str, serde_json::Value)> = vec![
        (
            "s3-read",
            serde_json::json!([{"Effect":"Allow","Action":["s3:GetObject","s3:ListBucket"],"Resource":"*"}]),
        ),
        (
            "s3-write",
            serde_json::json!([{"Effect":"Allow","Action":["s3:PutObject","s3:DeleteObject"],"Resource":"arn:aws:s3:::data-*/*"}]),
        ),
        (
            "dynamo-rw",
            serde_json::json!([{"Effect":"Allow","Action":"dynamodb:*","Resource":"*"}]),
        ),
        (
            "pass-role",
            serde_json::json!([{"Effect":"Allow","Action":"iam:PassRole","Resource":"*"}]),
        ),
        (
            "assume-any",
            serde_json::json!([{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]),
        ),
        (
            "admin",
            serde_json::json!([{"Effect":"Allow","Action":"*","Resource":"*"}]),
        ),
        (
            "logs-read",
            serde_json::json!([{"Effect":"Allow","Action":["logs:Get*","logs:Describe*"],"Resource":"*"}]),
        ),
        (
            "kms-decrypt",
            serde_json::json!([{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*"},{"Effect":"Deny","Action":"kms:ScheduleKeyDeletion","Resource":"*"}]),
        ),
    ];
    let policy_arn = |k: usize| {
        format!(
            "arn:aws:iam::{ACCOUNT}:policy/{}",
            policies[k % policies.len()].0
        )
    };
    let mut total = 0;
    let (c1, c2, c3) = cases();

    let mut s1: Vec<Call> = policies
        .iter()
        .map(|(n, st)| {
            (
                "CreatePolicy",
                vec![
                    ("PolicyName", n.to_string()),
                    (
                        "PolicyDocument",
                        doc(serde_json::json!({"Version":"2012-10-17","Statement":st})),
                    ),
                ],
            )
        })
        .collect();
    for g in 0..10 {
        s1.push(("CreateGroup", vec![("GroupName", format!("group-{g}"))]));
    }
    for i in 0..users {
        let svc = i % 10 < 7;
        let owner = format!("person-{:05}@example.com", (i / 10) * 10 + 7);
        let mut p = vec![
            ("UserName", user_name(i)),
            ("Tags.member.1.Key", "owner".to_string()),
            ("Tags.member.1.Value", owner),
        ];
        if svc {
            p.push(("Path", "/svc/".into()));
            if i % 20 == 0 {
                p.push(("Tags.member.2.Key", "agent".into()));
                p.push(("Tags.member.2.Value", "true".into()));
            }
        }
        s1.push(("CreateUser", p));
    }
    s1.extend(c1);
    total += s1.len();
    stage(&http, &ep, s1).await?;

    let mut s2: Vec<Call> = vec![];
    for i in 0..users {
        let u = user_name(i);
        if i % 10 < 7 {
            s2.push(("CreateAccessKey", vec![("UserName", u.clone())]));
        } else {
            s2.push((
                "CreateLoginProfile",
                vec![
                    ("UserName", u.clone()),
                    ("Password", "Bench-Passw0rd!".into()),
                ],
            ));
        }
        s2.push((
            "AttachUserPolicy",
            vec![("UserName", u.clone()), ("PolicyArn", policy_arn(i))],
        ));
        s2.push((
            "AddUserToGroup",
            vec![
                ("UserName", u.clone()),
                ("GroupName", format!("group-{}", i % 10)),
            ],
        ));
        if i % 10 == 0 {
            s2.push((
                "PutUserPolicy",
                vec![
                    ("UserName", u),
                    ("PolicyName", "inline".into()),
                    ("PolicyDocument", doc(serde_json::json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"*"}]}))),
                ],
            ));
        }
    }
    for g in 0..10 {
        s2.push((
            "AttachGroupPolicy",
            vec![
                ("GroupName", format!("group-{g}")),
                ("PolicyArn", policy_arn(g + 1)),
            ],
        ));
    }
    // Roles: each trusted by a service user, every third also by the
    // previous role (chains of assume-role hops).
    for j in 0..roles {
        let mut principals = vec![user_arn((j * 7) % users.max(1) / 10 * 10 + (j % 7))];
        if j % 3 != 0 && j > 0 {
            principals.push(format!("arn:aws:iam::{ACCOUNT}:role/role-{:05}", j - 1));
        }
        let trust = serde_json::json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":principals},"Action":"sts:AssumeRole"}]});
        let mut p = vec![
            ("RoleName", format!("role-{j:05}")),
            ("AssumeRolePolicyDocument", doc(trust)),
        ];
        if j % 5 == 0 {
            p.push(("Tags.member.1.Key", "agent".into()));
            p.push(("Tags.member.1.Value", "true".into()));
        }
        s2.push(("CreateRole", p));
    }
    s2.extend(c2);
    total += s2.len();
    stage(&http, &ep, s2).await?;

    let mut s3: Vec<Call> = vec![];
    for j in 0..roles {
        s3.push((
            "AttachRolePolicy",
            vec![
                ("RoleName", format!("role-{j:05}")),
                ("PolicyArn", policy_arn(j + 3)),
            ],
        ));
    }
    s3.extend(c3);
    total += s3.len();
    stage(&http, &ep, s3).await?;
    Ok(total)
}

pub fn run_aws(
    users: usize,
    moto_url: Option<&str>,
    pmapper: Option<(u64, u64)>,
) -> Result<Report> {
    use custodian::sync::http::{Cancel, HttpPolicy};
    use custodian::sync::secrets::{MemorySecrets, SecretStore};

    let roles = users / 2;
    let mut lines = vec![format!(
        "## AWS IAM from moto: {users} users, {roles} roles"
    )];
    let (_moto, endpoint) = match moto_url {
        Some(u) => (None, u.to_string()),
        None => {
            let (m, e) = start_moto()?;
            (Some(m), e)
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let t = Instant::now();
    let calls = rt.block_on(populate(&endpoint, users, roles))?;
    drop(rt);
    lines.push(format!(
        "populate: {calls} IAM calls in {:.1}s (not part of the measurement)",
        t.elapsed().as_secs_f64()
    ));

    let dir = std::env::temp_dir().join(format!(
        "custodian-bench-aws-{}-{users}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("aws.db");
    let _ = std::fs::remove_file(&path);
    let mut store = Store::open(&path)?;
    let secrets = MemorySecrets::default();
    let now = Utc::now();
    let src = store.add_source(
        "aws",
        "bench",
        &serde_json::json!({"access_key_id": KEY_ID, "endpoint": endpoint}),
        now,
    )?;
    secrets.set(src, SECRET)?;
    let quiet: custodian::sync::ProgressFn = Arc::new(|_: &custodian::sync::SyncProgress| {});
    let rss0 = peak_rss_mib();
    let t = Instant::now();
    let out = custodian::ops::sync_blocking(
        &mut store,
        src,
        &secrets,
        quiet,
        Cancel::new(),
        HttpPolicy::default(),
    )?;
    let secs = t.elapsed().as_secs_f64();
    let rss = peak_rss_mib();
    let count = |sql: &str| -> Result<i64> { Ok(store.raw_db().query_row(sql, [], |r| r.get(0))?) };
    let (idents, creds, grants, dels) = (
        count("SELECT count(*) FROM identities")?,
        count("SELECT count(*) FROM credentials")?,
        count("SELECT count(*) FROM grants")?,
        count("SELECT count(*) FROM delegations")?,
    );
    lines.push(format!(
        "full sync: {secs:.1}s wall; {} items ({idents} identities, {creds} credentials, {grants} grants, {dels} assume-role edges); peak RSS {rss:.0} MiB (before {rss0:.0})",
        out.report.items
    ));

    // The access graph over what was synced, and one principal's reach.
    let t = Instant::now();
    let graph = custodian::blast::Graph::load(&store)?;
    let graph_s = t.elapsed().as_secs_f64();
    let ours = super::aws_compare::ours(&store)?;
    lines.push(format!(
        "paths-to-admin over the whole account: {} principals in {:.2} ms (graph load included)",
        ours.privesc.len(),
        ours.paths_s * 1000.0
    ));
    let mut reaches = vec![];
    for (label, p) in pick_principals(&graph, &ours)? {
        let t = Instant::now();
        let b = graph.blast(p.id)?;
        let s = t.elapsed().as_secs_f64();
        lines.push(format!(
            "reach of {} ({label}): {} principals via assume-role, {} resources, score {:.0}, in {:.3} ms",
            p.searchable,
            b.reachable.len(),
            b.resources.len(),
            b.score,
            s * 1000.0
        ));
        reaches.push(super::pmapper::Reach {
            label: label.to_string(),
            principal: p.searchable,
            s,
            reachable: b.reachable.len(),
        });
    }
    lines.push(format!(
        "access graph build (from the cache): {:.2} ms",
        graph_s * 1000.0
    ));
    let mut json = serde_json::json!({
        "bench": "aws_moto", "users": users, "roles": roles, "sync_s": secs, "items": out.report.items,
        "identities": idents, "credentials": creds, "grants": grants, "delegations": dels,
        "peak_rss_mib": rss, "rss_before_mib": rss0, "graph_build_s": graph_s,
        "paths_to_admin_s": ours.paths_s, "paths_to_admin": ours.privesc.len(), "admins": ours.admin_ids.len(),
        "reaches": reaches.iter().map(|r| serde_json::json!({"principal": r.principal, "label": r.label, "s": r.s, "reachable": r.reachable})).collect::<Vec<_>>(),
    });
    if let Some((timeout, reach_timeout)) = pmapper {
        let side = super::pmapper::Side {
            fetch_s: secs,
            build_s: graph_s,
            reaches,
            privesc_s: ours.paths_s,
            peak_rss_mib: rss,
        };
        let cmp = super::pmapper::compare(
            &endpoint,
            Duration::from_secs(timeout),
            Duration::from_secs(reach_timeout),
            &side,
        )?;
        lines.extend(cmp.lines);
        json["pmapper"] = cmp.json;
        let (what, verdicts) =
            super::aws_compare::compare(&ours, cmp.graph.as_ref(), cmp.privesc.as_ref());
        lines.extend(what);
        json["comparison"] = verdicts;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Report { json, lines })
}

pub(crate) struct Principal {
    id: i64,
    /// principalmapper's name for it: `user/NAME` or `role/NAME`.
    pub searchable: String,
}

/// The principals both tools are asked about, each with why:
/// - the non-admin user or role whose edges reach the most principals
///   without reaching an administrator (ties: the lowest id);
/// - the non-admin principal with the most reach among those whose edges
///   reach an administrator, the case where PMapper enumerates a path to
///   every principal.
///
/// Admin is Custodian's effective admin (`aws_compare::Ours::admin_ids`: an
/// admin grant on a critical resource, what `paths-to-admin` looks for).
fn pick_principals(
    graph: &custodian::blast::Graph,
    ours: &super::aws_compare::Ours,
) -> Result<Vec<(&'static str, Principal)>> {
    let admins = &ours.admin_ids;
    let mut rows: Vec<(i64, String)> = ours
        .arn_of
        .iter()
        .filter(|(id, arn)| !admins.contains(id) && ours.identities.contains(*arn))
        .map(|(id, arn)| (*id, arn.clone()))
        .collect();
    rows.sort();
    let mut widest: Option<(usize, i64, String)> = None;
    let mut to_admin: Option<(usize, i64, String)> = None;
    for (id, arn) in rows {
        let b = graph.blast(id)?;
        let n = b.reachable.len();
        let slot = if b.reachable.iter().any(|r| admins.contains(&r.identity_id)) {
            &mut to_admin
        } else {
            &mut widest
        };
        if slot.as_ref().is_none_or(|w| n > w.0) {
            *slot = Some((n, id, arn));
        }
    }
    let searchable = |arn: &str| super::aws_compare::searchable(arn);
    let mut out = vec![];
    if let Some((_, id, arn)) = widest {
        out.push((
            "widest reach short of an admin",
            Principal {
                id,
                searchable: searchable(&arn),
            },
        ));
    }
    if let Some((_, id, arn)) = to_admin {
        out.push((
            "reaches an admin",
            Principal {
                id,
                searchable: searchable(&arn),
            },
        ));
    }
    if out.is_empty() {
        return Err(Error::internal("no non-admin principal in the account"));
    }
    Ok(out)
}
