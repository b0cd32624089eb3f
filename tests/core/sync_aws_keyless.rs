//! The AWS source signing in without a stored secret (issue 18), on a real
//! moto server: a profile whose `role_arn` + `source_profile` assumes a role
//! in another account (moto's assumed-role keys act in the role's account),
//! the source's own `role_arn`, a `credential_process` profile whose keys
//! are refreshed before they expire, and organisation mode across member
//! accounts (moto emulates Organizations) with cross-account trust chains
//! that blast radius and who-can-reach follow. The AWS config and
//! credentials files are temporary ones named by the source's
//! `config_file` / `credentials_file`, pointing at moto by `endpoint_url`
//! (no environment variable is set: tests share one process).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use custodian::model::SourceId;
use custodian::ops::sync_blocking;
use custodian::store::Store;
use custodian::sync::http::{Cancel, HttpPolicy};
use custodian::sync::secrets::{MemorySecrets, SecretStore};
use custodian::sync::SyncOutcome;
use custodian::Result;
use serde_json::{json, Value};

use crate::peers::MotoServer;

const HOME: &str = "123456789012";

fn policy() -> HttpPolicy {
    HttpPolicy {
        base_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        ..Default::default()
    }
}

/// A signed call in `account` (moto's `x-moto-account-id`) with the test
/// key, signed for `service` (moto routes by the signature's service).
fn call_in(
    moto: &MotoServer,
    account: &str,
    service: &str,
    target: Option<&str>,
    body: String,
    content_type: &str,
) -> String {
    let keys = aws_credential_types::Credentials::new(
        MotoServer::KEY_ID,
        MotoServer::SECRET,
        None,
        None,
        "test",
    );
    let mut headers = vec![("content-type", content_type)];
    if let Some(t) = target {
        headers.push(("x-amz-target", t));
    }
    let signed = custodian::sync::aws::sign(
        &keys,
        service,
        "us-east-1",
        &moto.endpoint,
        &headers,
        &body,
        std::time::SystemTime::now(),
    )
    .unwrap();
    let http = reqwest::blocking::Client::new();
    let mut rb = http
        .post(&moto.endpoint)
        .header("content-type", content_type)
        .header("x-moto-account-id", account)
        .body(body);
    if let Some(t) = target {
        rb = rb.header("x-amz-target", t);
    }
    for (k, v) in signed {
        rb = rb.header(k, v);
    }
    let resp = rb.send().unwrap();
    let status = resp.status();
    let text = resp.text().unwrap();
    assert!(status.is_success(), "{status} {text}");
    text
}

fn iam(moto: &MotoServer, account: &str, action: &str, params: &[(&str, &str)]) -> String {
    use custodian::sync::aws::{query_body, CONTENT_TYPE};
    call_in(
        moto,
        account,
        "iam",
        None,
        query_body(action, params),
        CONTENT_TYPE,
    )
}

fn org(moto: &MotoServer, action: &str, body: Value) -> Value {
    let text = call_in(
        moto,
        HOME,
        "organizations",
        Some(&format!("AWSOrganizationsV20161128.{action}")),
        body.to_string(),
        "application/x-amz-json-1.1",
    );
    serde_json::from_str(&text).unwrap()
}

fn arn(account: &str, kind: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:{kind}/{name}")
}

fn user_with_key(moto: &MotoServer, account: &str, name: &str) {
    iam(moto, account, "CreateUser", &[("UserName", name)]);
    iam(moto, account, "CreateAccessKey", &[("UserName", name)]);
}

fn role(moto: &MotoServer, account: &str, name: &str, trust: Value, policy: Option<Value>) {
    iam(
        moto,
        account,
        "CreateRole",
        &[
            ("RoleName", name),
            ("AssumeRolePolicyDocument", &trust.to_string()),
        ],
    );
    if let Some(p) = policy {
        iam(
            moto,
            account,
            "PutRolePolicy",
            &[
                ("RoleName", name),
                ("PolicyName", "p"),
                ("PolicyDocument", &p.to_string()),
            ],
        );
    }
}

/// Temporary AWS config and credentials files.
struct Files {
    _dir: tempfile::TempDir,
    config: PathBuf,
    credentials: PathBuf,
}

impl Files {
    fn new(config: &str, credentials: &str) -> Files {
        let dir = tempfile::tempdir().unwrap();
        let c = dir.path().join("config");
        let k = dir.path().join("credentials");
        std::fs::write(&c, config).unwrap();
        std::fs::write(&k, credentials).unwrap();
        Files {
            _dir: dir,
            config: c,
            credentials: k,
        }
    }

    fn dir(&self) -> &Path {
        self._dir.path()
    }

    fn settings(&self, mut extra: Value) -> Value {
        extra["config_file"] = json!(self.config.to_str().unwrap());
        extra["credentials_file"] = json!(self.credentials.to_str().unwrap());
        extra
    }
}

/// The moto test key in the credentials file as profile `base`.
fn base_credentials() -> String {
    format!(
        "[base]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
        MotoServer::KEY_ID,
        MotoServer::SECRET
    )
}

struct Env {
    store: Store,
    secrets: MemorySecrets,
    source: SourceId,
}

impl Env {
    /// A source with these settings and no secret stored.
    fn new(settings: Value) -> Env {
        let mut store = crate::util::test_store();
        let source = store
            .add_source("aws", "AWS keyless", &settings, Utc::now())
            .unwrap();
        Env {
            store,
            secrets: MemorySecrets::default(),
            source,
        }
    }

    fn sync(&mut self) -> Result<SyncOutcome> {
        sync_blocking(
            &mut self.store,
            self.source,
            &self.secrets,
            Arc::new(|_| {}),
            Cancel::new(),
            policy(),
        )
    }

    fn identities(&self) -> Vec<String> {
        let mut st = self
            .store
            .raw_db()
            .prepare("SELECT external_id FROM identities WHERE status != 'deleted' ORDER BY 1")
            .unwrap();
        let v = st
            .query_map([], |r| r.get::<String>(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        v
    }

    fn purpose_and_env(&self, ext: &str) -> (String, String) {
        self.store
            .raw_db()
            .query_row(
                "SELECT purpose, environment FROM identities WHERE external_id = ?1",
                [ext],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap()
    }

    /// The external id of the identity the source signs in as.
    fn signed_in_as(&self) -> Option<String> {
        self.store
            .source(self.source)
            .unwrap()
            .signed_in_as
            .map(|s| s.external_id)
    }

    fn warnings(&self) -> String {
        let runs = self.store.sync_runs(Some(self.source), 1).unwrap();
        format!("{:?}", runs[0])
    }
}

/// A profile with `role_arn` + `source_profile` assumes a role in account
/// 111111111111: what is read is that account's IAM, not the home
/// account's; nothing was stored as a secret.
#[test]
fn aws_profile_role_reads_the_roles_account() {
    let moto = MotoServer::start();
    let other = "111111111111";
    user_with_key(&moto, HOME, "home-user");
    user_with_key(&moto, other, "svc-other");
    role(
        &moto,
        other,
        "audit",
        json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{HOME}:root")}, "Action": "sts:AssumeRole"}}),
        None,
    );
    let files = Files::new(
        &format!(
            "[default]\nregion = us-east-1\nendpoint_url = {e}\n\n\
             [profile base]\nregion = us-east-1\nendpoint_url = {e}\n\n\
             [profile audit]\nrole_arn = {r}\nsource_profile = base\nregion = us-east-1\nendpoint_url = {e}\n",
            e = moto.endpoint,
            r = arn(other, "role", "audit"),
        ),
        &base_credentials(),
    );
    let mut env = Env::new(files.settings(json!({"profile": "audit"})));
    env.sync().unwrap();
    assert_eq!(
        env.identities(),
        [arn(other, "role", "audit"), arn(other, "user", "svc-other")]
    );
    // Custodian signs in as the role (sts:GetCallerIdentity's assumed-role
    // session, mapped to the role), an NHI of the inventory like any other.
    assert_eq!(env.signed_in_as(), Some(arn(other, "role", "audit")));

    // The base profile itself reads the home account; the source's own
    // role_arn (with an external id) then moves it to the other account.
    let mut base = Env::new(files.settings(json!({"profile": "base"})));
    base.sync().unwrap();
    assert_eq!(base.identities(), [arn(HOME, "user", "home-user")]);
    let mut own = Env::new(files.settings(json!({
        "profile": "base", "role_arn": arn(other, "role", "reader"), "external_id": "ext-1"})));
    own.sync().unwrap();
    assert_eq!(
        own.identities(),
        [arn(other, "role", "audit"), arn(other, "user", "svc-other")]
    );
}

/// A `credential_process` profile: the documented JSON (Version 1,
/// AccessKeyId, SecretAccessKey, SessionToken, Expiration). Keys with an
/// hour left are fetched once per sync; keys with less than the refresh
/// margin left are fetched anew before calls, so a long sync never signs
/// with expired keys.
#[test]
fn aws_credential_process_keys_are_refreshed_before_they_expire() {
    let moto = MotoServer::start();
    for n in ["a", "b", "c"] {
        user_with_key(&moto, HOME, &format!("svc-{n}"));
    }
    let files = Files::new("", "");
    let counter = files.dir().join("runs");
    let expiry = files.dir().join("expiry");
    let script = files.dir().join("creds.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho run >> '{c}'\nprintf '{{\"Version\": 1, \"AccessKeyId\": \"{k}\", \"SecretAccessKey\": \"{s}\", \"SessionToken\": \"tok\", \"Expiration\": \"%s\"}}' \"$(cat '{x}')\"\n",
            c = counter.display(),
            k = MotoServer::KEY_ID,
            s = MotoServer::SECRET,
            x = expiry.display(),
        ),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    std::fs::write(
        &files.config,
        format!(
            "[profile proc]\ncredential_process = {}\nregion = us-east-1\nendpoint_url = {}\n",
            script.display(),
            moto.endpoint
        ),
    )
    .unwrap();
    let runs = || {
        std::fs::read_to_string(&counter)
            .unwrap_or_default()
            .lines()
            .count()
    };
    let at = |secs: i64| (Utc::now() + chrono::Duration::seconds(secs)).to_rfc3339();
    std::fs::write(&expiry, at(3600)).unwrap();
    let mut env = Env::new(files.settings(json!({"profile": "proc"})));
    env.sync().unwrap();
    assert_eq!(env.identities().len(), 3);
    assert_eq!(runs(), 1, "an hour left: the keys are cached for the sync");
    // Two minutes left (under the five-minute margin): fetched anew.
    std::fs::write(&expiry, at(120)).unwrap();
    env.sync().unwrap();
    assert!(
        runs() > 3,
        "keys near expiry are refreshed before calls, not used once: {} runs",
        runs()
    );
}

/// Creates the organisation and `n` member accounts; their ids in order.
fn organisation(moto: &MotoServer, names: &[&str]) -> Vec<String> {
    org(moto, "CreateOrganization", json!({"FeatureSet": "ALL"}));
    names
        .iter()
        .map(|n| {
            let r = org(
                moto,
                "CreateAccount",
                json!({"AccountName": n, "Email": format!("{n}@example.com")}),
            );
            r["CreateAccountStatus"]["AccountId"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

/// Organisation mode: every account of the organisation (more than one
/// ListAccounts page) read as one source, each identity with its account;
/// and a chain across three accounts by cross-account trust
/// (dev's ci-bot → build's deployer → prod's data-admin) that blast radius
/// and who-can-reach follow; a trust that the caller's own policies do not
/// back is no edge.
#[test]
fn aws_organisation_mode_reads_every_account_and_follows_cross_account_trust() {
    use custodian::blast::Graph;
    let moto = MotoServer::start();
    let mut names = vec!["prod", "build", "dev"];
    let fillers: Vec<String> = (0..20).map(|i| format!("empty-{i:02}")).collect();
    names.extend(fillers.iter().map(String::as_str));
    let ids = organisation(&moto, &names);
    let (prod, build, dev) = (ids[0].as_str(), ids[1].as_str(), ids[2].as_str());
    user_with_key(&moto, HOME, "org-admin");
    // prod: data-admin, trusting build's deployer by ARN; it holds s3:* on a bucket.
    role(
        &moto,
        prod,
        "data-admin",
        json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow",
            "Principal": {"AWS": arn(build, "role", "deployer")}, "Action": "sts:AssumeRole"}}),
        Some(
            json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow",
            "Action": "s3:*", "Resource": "arn:aws:s3:::prod-data"}}),
        ),
    );
    // build: deployer, trusting the dev account; it may assume data-admin.
    role(
        &moto,
        build,
        "deployer",
        json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{dev}:root")}, "Action": "sts:AssumeRole"}}),
        Some(
            json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow",
            "Action": "sts:AssumeRole", "Resource": arn(prod, "role", "data-admin")}}),
        ),
    );
    // dev: ci-bot may assume deployer; idle-bot is trusted (by account) but may not.
    user_with_key(&moto, dev, "ci-bot");
    iam(
        &moto,
        dev,
        "PutUserPolicy",
        &[
            ("UserName", "ci-bot"),
            ("PolicyName", "p"),
            (
                "PolicyDocument",
                &json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow",
                    "Action": "sts:AssumeRole", "Resource": arn(build, "role", "deployer")}})
                .to_string(),
            ),
        ],
    );
    user_with_key(&moto, dev, "idle-bot");

    let files = Files::new(
        &format!(
            "[profile mgmt]\nregion = us-east-1\nendpoint_url = {}\n",
            moto.endpoint
        ),
        &format!(
            "[mgmt]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            MotoServer::KEY_ID,
            MotoServer::SECRET
        ),
    );
    let mut env = Env::new(files.settings(json!({
        "profile": "mgmt", "member_role_name": "OrganizationAccountAccessRole", "parallel_accounts": 3})));
    env.sync().unwrap();
    let got = env.identities();
    for want in [
        arn(HOME, "user", "org-admin"),
        arn(prod, "role", "data-admin"),
        arn(build, "role", "deployer"),
        arn(dev, "user", "ci-bot"),
        arn(dev, "user", "idle-bot"),
    ] {
        assert!(got.contains(&want), "{want} missing from {got:?}");
    }
    // Every account was read (24: two ListAccounts pages), each with the
    // role moto creates in a new member account.
    let accounts: std::collections::BTreeSet<&str> =
        got.iter().filter_map(|a| a.split(':').nth(4)).collect();
    assert_eq!(accounts.len(), 1 + names.len(), "{accounts:?}");
    assert_eq!(
        got.iter()
            .filter(|a| a.ends_with(":role/OrganizationAccountAccessRole"))
            .count(),
        names.len()
    );
    let (purpose, environment) = env.purpose_and_env(&arn(prod, "role", "data-admin"));
    assert!(
        purpose.contains(&format!("account prod ({prod})")),
        "{purpose}"
    );
    assert_eq!(environment, "prod");

    let id = |ext: &str| env.store.resolve_identity(ext).unwrap().0;
    let g = Graph::load(&env.store).unwrap();
    let b = g.blast(id(&arn(dev, "user", "ci-bot"))).unwrap();
    let reached: Vec<(&str, u32)> = b
        .reachable
        .iter()
        .map(|r| (r.name.as_str(), r.hops))
        .collect();
    assert_eq!(reached, [("deployer", 1), ("data-admin", 2)]);
    assert!(
        b.resources
            .iter()
            .any(|r| r.name == "arn:aws:s3:::prod-data"),
        "{:?}",
        b.resources
    );
    let idle = g.blast(id(&arn(dev, "user", "idle-bot"))).unwrap();
    assert!(idle.reachable.is_empty(), "{:?}", idle.reachable);
    let bucket = env
        .store
        .resolve_resource("arn:aws:s3:::prod-data")
        .unwrap();
    let who: Vec<String> = g
        .who_can_reach(bucket)
        .unwrap()
        .into_iter()
        .map(|w| w.name)
        .collect();
    for n in ["data-admin", "deployer", "ci-bot"] {
        assert!(who.contains(&n.to_string()), "{n} missing from {who:?}");
    }
    assert!(!who.contains(&"idle-bot".to_string()), "{who:?}");
}

/// A member account whose role Custodian may not assume is a run warning
/// naming that account; the other accounts are imported, and nothing is
/// marked deleted. moto enforces IAM here (signatures and the caller's
/// policies, which deny assuming the locked account's role; it does not
/// check trust policies across accounts).
#[test]
fn aws_organisation_member_that_refuses_is_a_warning() {
    let moto = MotoServer::start();
    let ids = organisation(&moto, &["good", "locked"]);
    let (good, locked) = (ids[0].as_str(), ids[1].as_str());
    // Custodian's own user in the management account, allowed everything.
    iam(&moto, HOME, "CreateUser", &[("UserName", "custodian")]);
    let key = iam(&moto, HOME, "CreateAccessKey", &[("UserName", "custodian")]);
    let (key_id, secret) = (
        MotoServer::field(&key, "AccessKeyId"),
        MotoServer::field(&key, "SecretAccessKey"),
    );
    let everything = json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}});
    let but_locked = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Action": "sts:AssumeRole", "Resource": arn(locked, "role", "Audit")}]});
    iam(
        &moto,
        HOME,
        "PutUserPolicy",
        &[
            ("UserName", "custodian"),
            ("PolicyName", "all"),
            ("PolicyDocument", &but_locked.to_string()),
        ],
    );
    let trusting = |p: String| {
        json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow",
            "Principal": {"AWS": p}, "Action": "sts:AssumeRole"}})
    };
    role(
        &moto,
        good,
        "Audit",
        trusting(arn(HOME, "user", "custodian")),
        Some(everything.clone()),
    );
    role(
        &moto,
        locked,
        "Audit",
        trusting("arn:aws:iam::999999999999:root".into()),
        Some(everything),
    );
    // From here on moto checks signatures and policies of every request.
    let http = reqwest::blocking::Client::new();
    let r = http
        .post(format!("{}moto-api/reset-auth", moto.endpoint))
        .body("0")
        .send()
        .unwrap();
    assert!(r.status().is_success());

    let files = Files::new(
        &format!(
            "[default]\nregion = us-east-1\nendpoint_url = {}\n",
            moto.endpoint
        ),
        "",
    );
    let settings = json!({"access_key_id": key_id, "config_file": files.config.to_str().unwrap(),
        "member_role_name": "Audit"});
    let mut env = Env::new(settings);
    env.secrets.set(env.source, &secret).unwrap();
    let out = env.sync().unwrap();
    let got = env.identities();
    assert!(got.contains(&arn(HOME, "user", "custodian")), "{got:?}");
    assert!(got.contains(&arn(good, "role", "Audit")), "{got:?}");
    assert!(!got.iter().any(|i| i.contains(locked)), "{got:?}");
    let warnings = format!("{:?} {}", out.report, env.warnings());
    assert!(
        warnings.contains(locked) && warnings.contains("locked") && warnings.contains("Audit"),
        "{warnings}"
    );
    assert!(
        !out.full,
        "a run that missed an account marks nothing deleted"
    );
    assert_eq!(env.signed_in_as(), Some(arn(HOME, "user", "custodian")));
}
