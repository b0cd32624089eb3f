//! `--aws-org N[,ACCOUNTS]`: an AWS organisation from a real moto server
//! (Organizations emulated): ACCOUNTS member accounts (default 3) of N IAM
//! users and N/2 roles each, built with the same signed Query API calls a
//! real account answers (moto's `x-moto-account-id` picks the account).
//! Each account: users (7 in 10 services with an access key, the rest
//! people with a console password), a managed policy per user out of eight,
//! roles trusted by a service user, every third also by the previous role,
//! and each account's first role trusting the previous account's first role
//! (a chain across the accounts).
//!
//! Measured, one after the other in one process: a one-account source
//! reading the first member account (access key + `role_arn` into it), then
//! an organisation-mode source reading them all (`member_role_name`, four
//! accounts at once): sync wall time and peak resident memory (VmHWM, reset
//! through `/proc/self/clear_refs` before each, where the kernel allows),
//! the identities and cross-account edges imported.
//!
//! The server is `moto_server` from the test peers
//! (`$CUSTODIAN_PEERS_DIR/venv/bin`), started on a free loopback port and
//! stopped at the end.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use custodian::error::{Error, Result};
use custodian::store::Store;

use super::{peak_rss_mib, Report};

const KEY_ID: &str = "AKIABENCHMOTO0000001";
const SECRET: &str = "bench-secret";
const MEMBER_ROLE: &str = "OrganizationAccountAccessRole";

/// Runs `--aws-org` when the arguments ask for it: prints its report (or
/// `--json`) and returns true.
pub fn main_if_asked() -> bool {
    let args: Vec<String> = std::env::args().collect();
    let Some(i) = args.iter().position(|a| a == "--aws-org") else {
        return false;
    };
    let spec = args.get(i + 1).cloned().unwrap_or_else(|| "1000".into());
    let mut parts = spec.split(',');
    let users = parts.next().and_then(|n| n.trim().parse::<usize>().ok());
    let accounts = parts
        .next()
        .map(|n| n.trim().parse::<usize>().ok())
        .unwrap_or(Some(3));
    let (Some(users), Some(accounts)) = (users, accounts) else {
        eprintln!("custodian-bench: --aws-org needs USERS[,ACCOUNTS], like 1000,3");
        std::process::exit(2);
    };
    match run(users, accounts.max(1)) {
        Ok(r) => {
            if args.iter().any(|a| a == "--json") {
                println!("{}", r.json);
            } else {
                super::print_human(&r);
            }
        }
        Err(e) => {
            eprintln!("custodian-bench: aws-org: {e}");
            std::process::exit(1);
        }
    }
    true
}

struct Moto(Child);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_moto() -> Result<(Moto, String)> {
    let bin = super::aws_moto::peers_dir().join("venv/bin/moto_server");
    if !bin.exists() {
        return Err(Error::invalid(format!(
            "moto_server is not at {}: run `bash tests/run.sh` once (it installs the test peers)",
            bin.display()
        )));
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = Command::new(&bin)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
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

/// One call in an account: (service, action or JSON target, params or body).
struct Call {
    account: String,
    service: &'static str,
    body: String,
    target: Option<String>,
}

fn iam(account: &str, action: &str, params: Vec<(&str, String)>) -> Call {
    let p: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Call {
        account: account.to_string(),
        service: "iam",
        body: custodian::sync::aws::query_body(action, &p),
        target: None,
    }
}

async fn send(http: &reqwest::Client, endpoint: &str, c: &Call) -> Result<String> {
    let keys = aws_credential_types::Credentials::new(KEY_ID, SECRET, None, None, "bench");
    let content_type = if c.target.is_some() {
        "application/x-amz-json-1.1"
    } else {
        custodian::sync::aws::CONTENT_TYPE
    };
    let mut attempt = 0u64;
    loop {
        let mut headers = vec![("content-type", content_type)];
        if let Some(t) = &c.target {
            headers.push(("x-amz-target", t.as_str()));
        }
        let signed = custodian::sync::aws::sign(
            &keys,
            c.service,
            "us-east-1",
            endpoint,
            &headers,
            &c.body,
            std::time::SystemTime::now(),
        )?;
        let mut rb = http
            .post(endpoint)
            .header("x-moto-account-id", &c.account)
            .body(c.body.clone());
        for (k, v) in headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .chain(signed)
        {
            rb = rb.header(k, v);
        }
        let resp = rb
            .send()
            .await
            .map_err(|e| Error::internal(format!("moto: {e}")))?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| Error::internal(format!("moto: {e}")))?;
        if status.is_success() {
            return Ok(text);
        }
        // moto fails now and then under load: tried again, five times.
        if status.is_server_error() && attempt < 5 {
            attempt += 1;
            tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
            continue;
        }
        return Err(Error::internal(format!(
            "moto answered {status}: {}",
            text.chars().take(300).collect::<String>()
        )));
    }
}

/// Runs the calls of one stage, 8 at a time.
async fn stage(http: &reqwest::Client, endpoint: &Arc<str>, calls: Vec<Call>) -> Result<()> {
    let mut set = tokio::task::JoinSet::new();
    let mut it = calls.into_iter();
    loop {
        while set.len() < 8 {
            let Some(c) = it.next() else { break };
            let (h, e) = (http.clone(), endpoint.clone());
            set.spawn(async move { send(&h, &e, &c).await.map(|_| ()) });
        }
        let Some(r) = set.join_next().await else {
            break;
        };
        r.map_err(|e| Error::internal(format!("a populate task failed: {e}")))??;
    }
    Ok(())
}

fn doc(v: serde_json::Value) -> String {
    v.to_string()
}

/// The organisation: its member account ids, each populated.
async fn populate(endpoint: &str, users: usize, accounts: usize) -> Result<(Vec<String>, usize)> {
    let http = reqwest::Client::new();
    let ep: Arc<str> = Arc::from(endpoint);
    let org = |action: &str, body: serde_json::Value| Call {
        account: "123456789012".into(),
        service: "organizations",
        body: body.to_string(),
        target: Some(format!("AWSOrganizationsV20161128.{action}")),
    };
    send(
        &http,
        endpoint,
        &org(
            "CreateOrganization",
            serde_json::json!({"FeatureSet": "ALL"}),
        ),
    )
    .await?;
    let mut ids = Vec::new();
    for a in 0..accounts {
        let r = send(
            &http,
            endpoint,
            &org(
                "CreateAccount",
                serde_json::json!({"AccountName": format!("acct-{a}"), "Email": format!("acct-{a}@example.com")}),
            ),
        )
        .await?;
        let v: serde_json::Value = serde_json::from_str(&r)?;
        let id = v["CreateAccountStatus"]["AccountId"]
            .as_str()
            .ok_or_else(|| Error::internal("CreateAccount gave no AccountId"))?
            .to_string();
        ids.push(id);
    }
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
            serde_json::json!([{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*"}]),
        ),
    ];
    let roles = users / 2;
    let user = |i: usize| format!("user-{i:05}");
    let mut total = 0;
    let (mut s1, mut s2, mut s3) = (vec![], vec![], vec![]);
    for (k, acct) in ids.iter().enumerate() {
        let arn = |kind: &str, n: &str| format!("arn:aws:iam::{acct}:{kind}/{n}");
        for (n, st) in &policies {
            s1.push(iam(
                acct,
                "CreatePolicy",
                vec![
                    ("PolicyName", n.to_string()),
                    (
                        "PolicyDocument",
                        doc(serde_json::json!({"Version":"2012-10-17","Statement":st})),
                    ),
                ],
            ));
        }
        for i in 0..users {
            let mut p = vec![("UserName", user(i))];
            if i % 10 < 7 {
                p.push(("Path", "/svc/".into()));
            }
            s1.push(iam(acct, "CreateUser", p));
            s2.push(if i % 10 < 7 {
                iam(acct, "CreateAccessKey", vec![("UserName", user(i))])
            } else {
                iam(
                    acct,
                    "CreateLoginProfile",
                    vec![
                        ("UserName", user(i)),
                        ("Password", "Bench-Passw0rd!".into()),
                    ],
                )
            });
            s2.push(iam(
                acct,
                "AttachUserPolicy",
                vec![
                    ("UserName", user(i)),
                    ("PolicyArn", arn("policy", policies[i % policies.len()].0)),
                ],
            ));
        }
        for j in 0..roles {
            let svc_user = (j * 10) % users.max(1);
            let mut principals = vec![arn("user", &format!("svc/{}", user(svc_user)))];
            if j % 3 == 1 {
                principals.push(arn("role", &format!("role-{:05}", j - 1)));
            }
            if j == 0 && k > 0 {
                principals.push(format!("arn:aws:iam::{}:role/role-00000", ids[k - 1]));
            }
            let trust = serde_json::json!({"Version":"2012-10-17","Statement":[
                {"Effect":"Allow","Principal":{"AWS": principals},"Action":"sts:AssumeRole"}]});
            s2.push(iam(
                acct,
                "CreateRole",
                vec![
                    ("RoleName", format!("role-{j:05}")),
                    ("AssumeRolePolicyDocument", doc(trust)),
                ],
            ));
            if j == 0 {
                // It may assume the next account's first role (which trusts it).
                s3.push(iam(
                    acct,
                    "AttachRolePolicy",
                    vec![
                        ("RoleName", format!("role-{j:05}")),
                        ("PolicyArn", arn("policy", "assume-any")),
                    ],
                ));
            }
            s3.push(iam(
                acct,
                "AttachRolePolicy",
                vec![
                    ("RoleName", format!("role-{j:05}")),
                    (
                        "PolicyArn",
                        arn("policy", policies[(j + 3) % policies.len()].0),
                    ),
                ],
            ));
        }
    }
    for s in [s1, s2, s3] {
        total += s.len();
        stage(&http, &ep, s).await?;
    }
    Ok((ids, total))
}

/// Resets the peak resident memory (VmHWM) where the kernel allows it.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

pub fn run(users: usize, accounts: usize) -> Result<Report> {
    use custodian::sync::http::{Cancel, HttpPolicy};
    use custodian::sync::secrets::{MemorySecrets, SecretStore};

    let mut lines = vec![format!(
        "## AWS organisation from moto: {accounts} accounts x {users} users, {} roles each",
        users / 2
    )];
    let (_moto, endpoint) = start_moto()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let t = Instant::now();
    let (ids, calls) = rt.block_on(populate(&endpoint, users, accounts))?;
    drop(rt);
    lines.push(format!(
        "populate: {calls} calls in {:.1}s (not part of the measurement)",
        t.elapsed().as_secs_f64()
    ));
    let dir = std::env::temp_dir().join(format!("custodian-bench-aws-org-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let config = dir.join("aws-config");
    std::fs::write(
        &config,
        format!("[default]\nregion = us-east-1\nendpoint_url = {endpoint}\n"),
    )?;
    let config_s = config.to_string_lossy().to_string();
    let first_role = format!("arn:aws:iam::{}:role/{MEMBER_ROLE}", ids[0]);
    let cases = [
        (
            "one account (access key, role_arn into it)",
            serde_json::json!({"access_key_id": KEY_ID, "config_file": config_s, "role_arn": first_role}),
        ),
        (
            "organisation mode (every account, 4 at once)",
            serde_json::json!({"access_key_id": KEY_ID, "config_file": config_s, "member_role_name": MEMBER_ROLE}),
        ),
    ];
    let mut json_runs = vec![];
    for (i, (label, settings)) in cases.iter().enumerate() {
        let path = dir.join(format!("aws-org-{i}.db"));
        let _ = std::fs::remove_file(&path);
        let mut store = Store::open(&path)?;
        let secrets = MemorySecrets::default();
        let src = store.add_source("aws", "bench", settings, Utc::now())?;
        secrets.set(src, SECRET)?;
        let reset = reset_peak();
        let before = peak_rss_mib();
        let t = Instant::now();
        let out = custodian::ops::sync_blocking(
            &mut store,
            src,
            &secrets,
            Arc::new(|_| {}),
            Cancel::new(),
            HttpPolicy::default(),
        )?;
        let secs = t.elapsed().as_secs_f64();
        let rss = peak_rss_mib();
        let count = |sql: &str| -> i64 {
            store
                .raw_db()
                .query_row(sql, [], |r| r.get(0))
                .unwrap_or(-1)
        };
        let idents = count("SELECT count(*) FROM identities");
        let cross = count("SELECT count(*) FROM delegations WHERE reason = 'cross-account trust'");
        let dels = count("SELECT count(*) FROM delegations");
        lines.push(format!(
            "{label}: sync {secs:.2}s, {idents} identities, {dels} delegations ({cross} across accounts), peak RSS {rss:.0} MiB{}",
            if reset { "" } else { " (process peak: not resettable here)" }
        ));
        json_runs.push(serde_json::json!({
            "case": label, "sync_s": secs, "identities": idents, "delegations": dels,
            "cross_account_edges": cross, "items": out.report.items,
            "peak_rss_mib": rss, "rss_before_mib": before, "peak_reset": reset,
        }));
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Report {
        json: serde_json::json!({"bench": "aws_org", "users": users, "accounts": accounts, "runs": json_runs}),
        lines,
    })
}
