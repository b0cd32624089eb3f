//! The AWS IAM source: against a real moto server (signing, XML shapes,
//! mapping) and against wiremock fixtures for what moto cannot do
//! (GAAD pagination, throttling, malformed pages).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use custodian::model::SourceId;
use custodian::ops::sync_blocking;
use custodian::store::Store;
use custodian::sync::http::{Cancel, HttpPolicy};
use custodian::sync::secrets::{MemorySecrets, SecretStore};
use custodian::sync::SyncOutcome;
use custodian::{ErrorCode, Result};
use serde_json::json;
use wiremock::matchers::{body_string_contains, header_exists, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::peers::MotoServer;

const ACCT: &str = "123456789012";

fn arn(kind: &str, name: &str) -> String {
    format!("arn:aws:iam::{ACCT}:{kind}/{name}")
}

fn policy() -> HttpPolicy {
    HttpPolicy {
        base_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        ..Default::default()
    }
}

struct Env {
    store: Store,
    secrets: MemorySecrets,
    source: SourceId,
}

impl Env {
    fn new(endpoint: &str) -> Env {
        let mut store = crate::util::test_store();
        let settings = json!({"access_key_id": MotoServer::KEY_ID, "endpoint": endpoint, "account_name": "prod"});
        let source = store
            .add_source("aws", "AWS prod", &settings, Utc::now())
            .unwrap();
        let secrets = MemorySecrets::default();
        secrets.set(source, MotoServer::SECRET).unwrap();
        Env {
            store,
            secrets,
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

    fn strings(&self, sql: &str, arg: &str) -> Vec<String> {
        let mut st = self.store.raw_db().prepare(sql).unwrap();
        let rows = st.query_map([arg], |r| r.get::<String>(0)).unwrap();
        let mut v: Vec<String> = rows.map(|r| r.unwrap()).collect();
        v.sort();
        v
    }

    /// (kind, agent_class, owner email, team, environment, has last use)
    fn identity(
        &self,
        ext: &str,
    ) -> (String, Option<String>, Option<String>, String, String, bool) {
        self.store
            .raw_db()
            .query_row(
                "SELECT i.kind, i.agent_class, p.email, i.team, i.environment, i.last_used_at IS NOT NULL
                 FROM identities i LEFT JOIN people p ON p.id = i.owner_id WHERE i.external_id = ?1",
                [ext],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
            )
            .unwrap()
    }

    fn purpose(&self, ext: &str) -> String {
        self.strings("SELECT purpose FROM identities WHERE external_id = ?1", ext)
            .remove(0)
    }

    /// "permission on resource privilege [HC]" for an identity.
    fn grants(&self, ext: &str) -> Vec<String> {
        self.strings(
            "SELECT g.permission || ' on ' || r.external_id || ' ' || g.privilege || CASE g.high_consequence WHEN 1 THEN ' HC' ELSE '' END
             FROM grants g JOIN identities i ON i.id = g.identity_id JOIN resources r ON r.id = g.resource_id
             WHERE i.external_id = ?1",
            ext,
        )
    }

    /// "kind display_name used?" for an identity's credentials.
    fn credentials(&self, ext: &str) -> Vec<String> {
        self.strings(
            "SELECT c.kind || ' ' || c.display_name || CASE WHEN c.last_used_at IS NULL THEN '' ELSE ' used' END
             FROM credentials c JOIN identities i ON i.id = c.identity_id WHERE i.external_id = ?1",
            ext,
        )
    }

    fn delegations(&self) -> Vec<String> {
        self.strings(
            "SELECT f.name || ' -' || d.kind || '-> ' || t.name FROM delegations d
             JOIN identities f ON f.id = d.from_id JOIN identities t ON t.id = d.to_id WHERE ?1 = ?1",
            "",
        )
    }

    fn count(&self, table: &str) -> i64 {
        self.store
            .raw_db()
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    }
}

fn doc(v: serde_json::Value) -> String {
    v.to_string()
}

/// A small account: a service user, a human, two keyed users, an assume-role
/// chain svc-ci → deployer → admin, and policies with `s3:*`, `iam:PassRole`,
/// `*` and denies.
fn populate(moto: &MotoServer) {
    let c = |action: &str, params: &[(&str, &str)]| moto.call(action, params);
    // Users.
    c(
        "CreateUser",
        &[
            ("UserName", "svc-ci"),
            ("Path", "/svc/"),
            ("Tags.member.1.Key", "Owner"),
            ("Tags.member.1.Value", "alice@example.com"),
            ("Tags.member.2.Key", "team"),
            ("Tags.member.2.Value", "platform"),
        ],
    );
    let used = MotoServer::field(
        &c("CreateAccessKey", &[("UserName", "svc-ci")]),
        "AccessKeyId",
    );
    let old = MotoServer::field(
        &c("CreateAccessKey", &[("UserName", "svc-ci")]),
        "AccessKeyId",
    );
    c(
        "UpdateAccessKey",
        &[
            ("UserName", "svc-ci"),
            ("AccessKeyId", &old),
            ("Status", "Inactive"),
        ],
    );
    // Signing any call with a key id makes moto record it as used.
    moto.call_as(&used, "ListUsers", &[]);
    c(
        "CreateUser",
        &[
            ("UserName", "alice"),
            ("Tags.member.1.Key", "email"),
            ("Tags.member.1.Value", "alice@example.com"),
        ],
    );
    c(
        "CreateLoginProfile",
        &[("UserName", "alice"), ("Password", "Correct-Horse-1")],
    );
    c("CreateUser", &[("UserName", "bob-keys")]);
    c("CreateAccessKey", &[("UserName", "bob-keys")]);
    c(
        "CreateUser",
        &[
            ("UserName", "carol"),
            ("Tags.member.1.Key", "owner"),
            ("Tags.member.1.Value", "alice"),
        ],
    );
    c(
        "CreateLoginProfile",
        &[("UserName", "carol"), ("Password", "Correct-Horse-2")],
    );
    c("CreateAccessKey", &[("UserName", "carol")]);

    // A group the service user inherits from.
    c("CreateGroup", &[("GroupName", "deployers")]);
    c(
        "AddUserToGroup",
        &[("GroupName", "deployers"), ("UserName", "svc-ci")],
    );
    let group_doc = doc(json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::artifacts/*"}]}));
    c(
        "PutGroupPolicy",
        &[
            ("GroupName", "deployers"),
            ("PolicyName", "read-artifacts"),
            ("PolicyDocument", &group_doc),
        ],
    );

    // Roles: svc-ci → deployer → admin.
    let trust_deployer = doc(json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": arn("user", "svc/svc-ci"), "Service": "codebuild.amazonaws.com"},
         "Action": "sts:AssumeRole"}]}));
    c(
        "CreateRole",
        &[
            ("RoleName", "deployer"),
            ("AssumeRolePolicyDocument", &trust_deployer),
            ("Tags.member.1.Key", "agent"),
            ("Tags.member.1.Value", "true"),
            ("Tags.member.2.Key", "owner"),
            ("Tags.member.2.Value", "bob@example.com"),
        ],
    );
    let deployer_doc = doc(json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:*", "s3:DeleteBucket"], "Resource": "arn:aws:s3:::data"},
        {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": "arn:aws:dynamodb:us-east-1:123456789012:table/t"},
        {"Effect": "Deny", "Action": "s3:DeleteBucket", "Resource": "arn:aws:s3:::data"}]}));
    c(
        "PutRolePolicy",
        &[
            ("RoleName", "deployer"),
            ("PolicyName", "data"),
            ("PolicyDocument", &deployer_doc),
        ],
    );
    let pass_doc = doc(json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["iam:PassRole", "sts:AssumeRole"], "Resource": arn("role", "admin")}]}));
    let pass = MotoServer::field(
        &c(
            "CreatePolicy",
            &[("PolicyName", "pass-admin"), ("PolicyDocument", &pass_doc)],
        ),
        "Arn",
    );
    c(
        "AttachRolePolicy",
        &[("RoleName", "deployer"), ("PolicyArn", &pass)],
    );

    let trust_admin = doc(json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "sts:AssumeRole",
         "Principal": {"AWS": [arn("role", "deployer"), format!("arn:aws:iam::{ACCT}:root"),
                               "arn:aws:iam::999999999999:root", arn("user", "alice"), arn("user", "bob-keys")]}},
        {"Effect": "Deny", "Action": "sts:AssumeRole", "Principal": {"AWS": arn("user", "bob-keys")}}]}));
    c(
        "CreateRole",
        &[
            ("RoleName", "admin"),
            ("AssumeRolePolicyDocument", &trust_admin),
        ],
    );
    let admin_doc = doc(json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"},
        {"Effect": "Deny", "Action": "kms:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "false"}}}]}));
    let all = MotoServer::field(
        &c(
            "CreatePolicy",
            &[("PolicyName", "admin-all"), ("PolicyDocument", &admin_doc)],
        ),
        "Arn",
    );
    c(
        "AttachRolePolicy",
        &[("RoleName", "admin"), ("PolicyArn", &all)],
    );
}

#[test]
fn aws_iam_against_moto() {
    let moto = MotoServer::start();
    populate(&moto);
    let mut env = Env::new(&moto.endpoint);
    let out = env.sync().unwrap();
    assert!(out.full);

    let svc = arn("user", "svc/svc-ci");
    let bob = arn("user", "bob-keys");
    let carol = arn("user", "carol");
    let deployer = arn("role", "deployer");
    let admin = arn("role", "admin");

    // Only alice (console password, no keys, unmarked) is a person.
    assert_eq!(env.count("people"), 1);
    assert_eq!(
        env.strings(
            "SELECT email FROM people WHERE external_id = ?1",
            &arn("user", "alice")
        ),
        ["alice@example.com"]
    );
    assert_eq!(env.count("identities"), 5);

    // Kinds, owners from tags (an email, or a human IAM user's name), team, environment.
    assert_eq!(
        env.identity(&svc),
        (
            "service_account".into(),
            None,
            Some("alice@example.com".into()),
            "platform".into(),
            "prod".into(),
            true
        )
    );
    assert_eq!(env.identity(&bob).0, "service_account");
    assert_eq!(
        env.identity(&carol).2.as_deref(),
        Some("alice@example.com"),
        "owner by IAM user name"
    );
    let d = env.identity(&deployer);
    assert_eq!(
        (d.0.as_str(), d.2),
        ("ai_agent", None),
        "bob@example.com is no person of this source"
    );
    assert_eq!(env.identity(&admin).0, "workload");

    // Access keys (inactive ones listed and named so), last use from moto, passwords.
    let creds = env.credentials(&svc);
    assert_eq!(creds.len(), 2, "{creds:?}");
    assert!(
        creds
            .iter()
            .any(|c| c.starts_with("access_key access key AKIA") && c.ends_with(" used")),
        "{creds:?}"
    );
    assert!(creds.iter().any(|c| c.ends_with("(inactive)")), "{creds:?}");
    let creds = env.credentials(&carol);
    assert_eq!(creds.len(), 2);
    assert!(
        creds.contains(&"password console password".to_string()),
        "{creds:?}"
    );

    // The assume-role chain; the denied, human, root and foreign principals are no edges.
    assert_eq!(
        env.delegations(),
        [
            "deployer -assume_role-> admin",
            "svc-ci -assume_role-> deployer"
        ]
    );
    let purpose = env.purpose(&admin);
    for note in ["this account", "account 999999999999", "person user/alice"] {
        assert!(purpose.contains(note), "{note} missing from {purpose}");
    }
    assert!(env
        .purpose(&deployer)
        .contains("service codebuild.amazonaws.com"));

    // Grants: group-inherited, inline, managed; deny subtracted; flags.
    assert_eq!(
        env.grants(&svc),
        ["s3:GetObject on arn:aws:s3:::artifacts/* read"]
    );
    assert_eq!(
        env.grants(&deployer),
        [
            "dynamodb:GetItem on arn:aws:dynamodb:us-east-1:123456789012:table/t read",
            "iam:PassRole on arn:aws:iam::123456789012:role/admin write HC",
            "s3:* on arn:aws:s3:::data write HC",
            "sts:AssumeRole on arn:aws:iam::123456789012:role/admin write HC",
        ]
    );
    // `kms:Decrypt` is denied by `kms:*`; the conditional deny of `*` is not applied.
    assert_eq!(env.grants(&admin), ["* on * admin HC"]);
    assert!(env.grants(&bob).is_empty());
    assert_eq!(
        env.strings(
            "SELECT sensitivity FROM resources WHERE external_id = ?1",
            "*"
        ),
        ["critical"]
    );
    assert_eq!(
        env.strings(
            "SELECT sensitivity FROM resources WHERE external_id = ?1",
            "arn:aws:s3:::data"
        ),
        ["high"]
    );

    // A second run changes nothing; a deleted user disappears.
    env.sync().unwrap();
    assert_eq!(env.count("identities"), 5);
    moto.call(
        "DeleteAccessKey",
        &[
            ("UserName", "bob-keys"),
            (
                "AccessKeyId",
                &MotoServer::field(
                    &moto.call("ListAccessKeys", &[("UserName", "bob-keys")]),
                    "AccessKeyId",
                ),
            ),
        ],
    );
    moto.call("DeleteUser", &[("UserName", "bob-keys")]);
    env.sync().unwrap();
    assert_eq!(
        env.strings("SELECT status FROM identities WHERE external_id = ?1", &bob),
        ["deleted"]
    );
}

// ---------------------------------------------------------------------------
// wiremock fixtures

struct Fixture {
    rt: tokio::runtime::Runtime,
    server: MockServer,
}

impl Fixture {
    fn start() -> Fixture {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let server = rt.block_on(MockServer::start());
        Fixture { rt, server }
    }
    fn endpoint(&self) -> String {
        format!("{}/", self.server.uri())
    }
    fn mount(&self, m: Mock) {
        self.rt.block_on(m.mount(&self.server));
    }
    fn reset(&self) {
        self.rt.block_on(self.server.reset());
    }
}

fn xml(body: String) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body, "text/xml")
}

fn call(action: &str) -> wiremock::MockBuilder {
    Mock::given(method("POST"))
        .and(header_exists("authorization"))
        .and(header_exists("x-amz-date"))
        .and(body_string_contains(format!("Action={action}&")))
}

fn gaad_page(users: &str, roles: &str, policies: &str, marker: Option<&str>) -> String {
    let tail = match marker {
        Some(m) => format!("<IsTruncated>true</IsTruncated><Marker>{m}</Marker>"),
        None => "<IsTruncated>false</IsTruncated>".into(),
    };
    format!(
        r#"<GetAccountAuthorizationDetailsResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><GetAccountAuthorizationDetailsResult>
<UserDetailList>{users}</UserDetailList><GroupDetailList/><RoleDetailList>{roles}</RoleDetailList><Policies>{policies}</Policies>{tail}
</GetAccountAuthorizationDetailsResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></GetAccountAuthorizationDetailsResponse>"#
    )
}

fn user_xml(name: &str) -> String {
    format!(
        "<member><Path>/svc/</Path><UserName>{name}</UserName><UserId>AIDA{name}</UserId><Arn>{}</Arn>\
         <CreateDate>2025-01-10T00:00:00Z</CreateDate><UserPolicyList/><GroupList/><AttachedManagedPolicies/><Tags/></member>",
        arn("user", &format!("svc/{name}"))
    )
}

/// A role as real AWS sends it: URL-encoded trust policy, RoleLastUsed,
/// and a managed policy without PolicyName.
fn role_xml() -> String {
    let trust = doc(json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": arn("user", "svc/svc-a")}, "Action": "sts:AssumeRole"}]}));
    let enc: String = url::form_urlencoded::byte_serialize(trust.as_bytes())
        .collect::<String>()
        .replace('+', "%20");
    format!(
        "<member><Path>/</Path><RoleName>agent-runner</RoleName><RoleId>AROAX</RoleId><Arn>{}</Arn>\
         <CreateDate>2025-01-10T00:00:00Z</CreateDate><AssumeRolePolicyDocument>{enc}</AssumeRolePolicyDocument>\
         <RoleLastUsed><LastUsedDate>2025-06-01T12:00:00Z</LastUsedDate><Region>us-east-1</Region></RoleLastUsed>\
         <RolePolicyList/><AttachedManagedPolicies><member><PolicyName>ro</PolicyName><PolicyArn>arn:aws:iam::aws:policy/ro</PolicyArn></member></AttachedManagedPolicies>\
         <Tags><member><Key>owner</Key><Value>alice@example.com</Value></member></Tags></member>",
        arn("role", "agent-runner")
    )
}

fn policy_xml() -> String {
    let d = doc(
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:List*", "Resource": "*"}]}),
    );
    let enc: String = url::form_urlencoded::byte_serialize(d.as_bytes()).collect();
    format!(
        "<member><Arn>arn:aws:iam::aws:policy/ro</Arn><DefaultVersionId>v2</DefaultVersionId><PolicyVersionList>\
         <member><Document>{enc}</Document><VersionId>v2</VersionId><IsDefaultVersion>true</IsDefaultVersion></member>\
         </PolicyVersionList></member>"
    )
}

fn mount_user_calls(fx: &Fixture) {
    fx.mount(call("ListAccessKeys").respond_with(xml(
        "<ListAccessKeysResponse><ListAccessKeysResult><AccessKeyMetadata/><IsTruncated>false</IsTruncated></ListAccessKeysResult></ListAccessKeysResponse>"
            .into(),
    )));
    fx.mount(call("GetLoginProfile").respond_with(ResponseTemplate::new(404).set_body_raw(
        "<ErrorResponse><Error><Type>Sender</Type><Code>NoSuchEntity</Code><Message>none</Message></Error></ErrorResponse>",
        "text/xml",
    )));
}

const THROTTLED: &str = r#"<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>t</RequestId></ErrorResponse>"#;

/// GAAD over two pages (Marker), the first call throttled once.
fn mount_paged(fx: &Fixture) {
    fx.mount(
        call("GetAccountAuthorizationDetails")
            .respond_with(ResponseTemplate::new(400).set_body_raw(THROTTLED, "text/xml"))
            .up_to_n_times(1)
            .with_priority(1)
            .expect(1),
    );
    fx.mount(
        call("GetAccountAuthorizationDetails")
            .and(body_string_contains("Marker=m2"))
            .respond_with(xml(gaad_page(&user_xml("svc-b"), "", &policy_xml(), None)))
            .with_priority(2)
            .expect(1),
    );
    fx.mount(
        call("GetAccountAuthorizationDetails")
            .respond_with(xml(gaad_page(
                &user_xml("svc-a"),
                &role_xml(),
                "",
                Some("m2"),
            )))
            .with_priority(3),
    );
    mount_user_calls(fx);
}

#[test]
fn aws_gaad_pages_on_marker_and_retries_throttling() {
    let fx = Fixture::start();
    mount_paged(&fx);
    let mut env = Env::new(&fx.endpoint());
    env.sync().unwrap();
    fx.rt.block_on(fx.server.verify());

    assert_eq!(
        env.count("identities"),
        3,
        "users from both pages and the role"
    );
    let role = arn("role", "agent-runner");
    let r = env.identity(&role);
    // The owner tag names an email no source has a person for: no owner yet.
    assert_eq!(
        (r.0.as_str(), r.2.as_deref(), r.5),
        ("workload", None, true)
    );
    assert_eq!(
        env.delegations(),
        ["svc-a -assume_role-> agent-runner"],
        "the encoded trust policy was decoded"
    );
    assert_eq!(
        env.grants(&role),
        ["s3:List* on * read"],
        "managed policy matched by Arn from a later page"
    );
}

#[test]
fn aws_malformed_page_keeps_the_previous_snapshot() {
    let fx = Fixture::start();
    mount_paged(&fx);
    let mut env = Env::new(&fx.endpoint());
    env.sync().unwrap();
    assert_eq!(env.count("identities"), 3);

    fx.reset();
    fx.mount(
        call("GetAccountAuthorizationDetails")
            .and(body_string_contains("Marker=m2"))
            .respond_with(xml("<GetAccountAuthorizationDetailsResponse><GetAccountAuthorizationDetailsResult><UserDetailList><member>".into())),
    );
    fx.mount(
        call("GetAccountAuthorizationDetails").respond_with(xml(gaad_page(
            &user_xml("svc-a"),
            "",
            "",
            Some("m2"),
        ))),
    );
    mount_user_calls(&fx);
    let e = env.sync().unwrap_err();
    assert_eq!(e.code, ErrorCode::MalformedResponse, "{e}");
    assert_eq!(
        env.count("identities"),
        3,
        "the previous snapshot is intact"
    );
    assert_eq!(env.count("delegations"), 1);
}

/// Trust and policy denies shape the blast radius: chains follow only the
/// assume-role edges IAM allows, and denied actions are out of reach.
#[test]
fn aws_blast_radius_respects_denies() {
    use custodian::blast::Graph;
    let moto = MotoServer::start();
    populate(&moto);
    let mut env = Env::new(&moto.endpoint);
    env.sync().unwrap();
    let id = |ext: &str| env.store.resolve_identity(ext).unwrap().0;
    let g = Graph::load(&env.store).unwrap();
    let b = g.blast(id(&arn("role", "deployer"))).unwrap();
    let reached: Vec<(&str, u32)> = b
        .reachable
        .iter()
        .map(|r| (r.name.as_str(), r.hops))
        .collect();
    assert_eq!(
        reached,
        [("admin", 1)],
        "deployer -> admin by the trust policy"
    );
    let perms: Vec<&str> = b
        .resources
        .iter()
        .flat_map(|r| r.permissions.iter().map(|p| p.permission.as_str()))
        .collect();
    assert!(
        !perms.contains(&"s3:DeleteBucket"),
        "the deny removes DeleteBucket: {perms:?}"
    );
    assert!(
        b.high_consequence.iter().any(|h| h.category == "iam"),
        "{:?}",
        b.high_consequence
    );
    // bob-keys is denied in the admin role's trust policy: he cannot reach it.
    let bob = g.blast(id(&arn("user", "bob-keys"))).unwrap();
    assert!(
        bob.reachable.iter().all(|r| r.name != "admin"),
        "{:?}",
        bob.reachable
    );
    // Who can reach what admin holds: admin itself, then deployer (and whoever reaches deployer).
    let some_admin_resource = g.blast(id(&arn("role", "admin"))).unwrap().resources[0].resource_id;
    let who = g.who_can_reach(some_admin_resource).unwrap();
    let names: Vec<&str> = who.iter().map(|w| w.name.as_str()).collect();
    assert!(
        names.contains(&"admin") && names.contains(&"deployer") && !names.contains(&"bob-keys"),
        "{names:?}"
    );
}

// ---------------------------------------------------------------------------
// AWS's evaluation rules, one case each (issue 17)

/// A hand-built account, one principal per rule:
/// - `ops` trusts the account root (and denies `trust-denied` by ARN);
///   `mfa-role` trusts the root only with MFA; `direct` trusts `arn-trusted`
///   by ARN; `capped` (a role) holds `*` on `*` capped by an `s3:*` boundary;
/// - users: `allowed` (sts:AssumeRole on ops), `not-allowed` (s3:GetObject on
///   the prefix `arn:aws:s3:::data/*` only), `id-denied` (sts:* allowed,
///   sts:AssumeRole denied), `trust-denied` (allowed sts:AssumeRole on ops,
///   denied by the trust policy), `notaction` (NotAction iam:*,
///   organizations:* on *, PowerUserAccess-like), `mfa` (sts:AssumeRole on
///   mfa-role), `arn-trusted` (no policy), `true-admin` (* on *, managed),
///   `attacher` (iam:AttachUserPolicy on *), `passrole` (iam:PassRole on *).
fn populate_rules(moto: &MotoServer) {
    let c = |action: &str, params: &[(&str, &str)]| moto.call(action, params);
    let root = format!("arn:aws:iam::{ACCT}:root");
    let user_policy = |user: &str, d: serde_json::Value| {
        c("CreateUser", &[("UserName", user)]);
        if !d.is_null() {
            let d = doc(json!({"Version": "2012-10-17", "Statement": d}));
            c(
                "PutUserPolicy",
                &[
                    ("UserName", user),
                    ("PolicyName", "p"),
                    ("PolicyDocument", &d),
                ],
            );
        }
    };
    let role = |name: &str, trust: serde_json::Value| {
        let t = doc(json!({"Version": "2012-10-17", "Statement": trust}));
        c(
            "CreateRole",
            &[("RoleName", name), ("AssumeRolePolicyDocument", &t)],
        );
    };
    role(
        "ops",
        json!([
            {"Effect": "Allow", "Principal": {"AWS": root}, "Action": "sts:AssumeRole"},
            {"Effect": "Deny", "Principal": {"AWS": arn("user", "trust-denied")}, "Action": "sts:AssumeRole"}]),
    );
    let ops_doc = doc(json!({"Version": "2012-10-17", "Statement":
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::data/report"}}));
    c(
        "PutRolePolicy",
        &[
            ("RoleName", "ops"),
            ("PolicyName", "read"),
            ("PolicyDocument", &ops_doc),
        ],
    );
    role(
        "mfa-role",
        json!({"Effect": "Allow", "Principal": {"AWS": ACCT}, "Action": "sts:AssumeRole",
               "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}}),
    );
    role(
        "direct",
        json!({"Effect": "Allow", "Principal": {"AWS": arn("user", "arn-trusted")}, "Action": "sts:AssumeRole"}),
    );
    // The boundary: s3 only.
    let b_doc = doc(json!({"Version": "2012-10-17", "Statement":
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}}));
    let boundary = MotoServer::field(
        &c(
            "CreatePolicy",
            &[("PolicyName", "s3-only"), ("PolicyDocument", &b_doc)],
        ),
        "Arn",
    );
    let t = doc(json!({"Version": "2012-10-17", "Statement":
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}}));
    c(
        "CreateRole",
        &[
            ("RoleName", "capped"),
            ("AssumeRolePolicyDocument", &t),
            ("PermissionsBoundary", &boundary),
        ],
    );
    let all = doc(json!({"Version": "2012-10-17", "Statement":
        {"Effect": "Allow", "Action": "*", "Resource": "*"}}));
    c(
        "PutRolePolicy",
        &[
            ("RoleName", "capped"),
            ("PolicyName", "all"),
            ("PolicyDocument", &all),
        ],
    );

    user_policy(
        "allowed",
        json!({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": arn("role", "ops")}),
    );
    user_policy(
        "not-allowed",
        json!({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::data/*"}),
    );
    user_policy(
        "id-denied",
        json!([{"Effect": "Allow", "Action": "sts:*", "Resource": "*"},
               {"Effect": "Deny", "Action": "sts:AssumeRole", "Resource": "*"}]),
    );
    user_policy(
        "trust-denied",
        json!({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": arn("role", "ops")}),
    );
    user_policy(
        "notaction",
        json!({"Effect": "Allow", "NotAction": ["iam:*", "organizations:*"], "Resource": "*"}),
    );
    user_policy(
        "mfa",
        json!({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": arn("role", "mfa-role")}),
    );
    user_policy("arn-trusted", serde_json::Value::Null);
    user_policy("true-admin", serde_json::Value::Null);
    let admin = MotoServer::field(
        &c(
            "CreatePolicy",
            &[("PolicyName", "admin"), ("PolicyDocument", &all)],
        ),
        "Arn",
    );
    c(
        "AttachUserPolicy",
        &[("UserName", "true-admin"), ("PolicyArn", &admin)],
    );
    user_policy(
        "attacher",
        json!({"Effect": "Allow", "Action": "iam:AttachUserPolicy", "Resource": "*"}),
    );
    user_policy(
        "passrole",
        json!({"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"}),
    );
    // Escalation edges: keys for one named user, a trust rewrite, a role
    // passed to EC2 by someone who can run instances.
    user_policy(
        "key-maker",
        json!({"Effect": "Allow", "Action": "iam:CreateAccessKey", "Resource": arn("user", "true-admin")}),
    );
    user_policy(
        "trust-writer",
        // No sts:AssumeRole allow of its own: once the trust names it, the
        // trust alone lets it in (same account).
        json!({"Effect": "Allow", "Action": "iam:UpdateAssumeRolePolicy", "Resource": arn("role", "capped")}),
    );
    // EC2 runs an instance with an instance profile: runner is in one;
    // no-profile is in none, so only someone who can make a profile and
    // add the role to it gets there.
    user_policy(
        "launcher",
        json!([{"Effect": "Allow", "Action": "iam:PassRole", "Resource": [arn("role", "runner"), arn("role", "no-profile")]},
               {"Effect": "Allow", "Action": "ec2:RunInstances", "Resource": "*"}]),
    );
    user_policy(
        "profile-maker",
        json!([{"Effect": "Allow", "Action": "iam:PassRole", "Resource": arn("role", "no-profile")},
               {"Effect": "Allow", "Action": ["ec2:RunInstances", "iam:CreateInstanceProfile", "iam:AddRoleToInstanceProfile"], "Resource": "*"}]),
    );
    role(
        "runner",
        json!({"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}),
    );
    role(
        "no-profile",
        json!({"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}),
    );
    c(
        "CreateInstanceProfile",
        &[("InstanceProfileName", "runner-profile")],
    );
    c(
        "AddRoleToInstanceProfile",
        &[
            ("InstanceProfileName", "runner-profile"),
            ("RoleName", "runner"),
        ],
    );
    // Denies on grants: a bucket someone reads; s3:* on * less that bucket
    // and DeleteBucket; * under a deny of everything but S3; s3:* on the
    // bucket unless MFA is absent.
    user_policy(
        "vault-reader",
        json!({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::vault"}),
    );
    user_policy(
        "deny-limited",
        json!([{"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
               {"Effect": "Deny", "Action": "s3:*", "Resource": "arn:aws:s3:::vault"},
               {"Effect": "Deny", "Action": "s3:DeleteBucket", "Resource": "*"}]),
    );
    user_policy(
        "s3-only",
        json!([{"Effect": "Allow", "Action": "*", "Resource": "*"},
               {"Effect": "Deny", "NotAction": "s3:*", "Resource": "*"}]),
    );
    user_policy(
        "mfa-writer",
        json!([{"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::vault"},
               {"Effect": "Deny", "Action": "*", "Resource": "*",
                "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "false"}}}]),
    );
    c(
        "PutRolePolicy",
        &[
            ("RoleName", "runner"),
            ("PolicyName", "all"),
            ("PolicyDocument", &all),
        ],
    );
}

#[test]
fn aws_rules_edges_reach_and_admins_follow_aws_evaluation() {
    use custodian::blast::{chain_text, Graph};
    let moto = MotoServer::start();
    populate_rules(&moto);
    let mut env = Env::new(&moto.endpoint);
    env.sync().unwrap();

    // Exact edges: account-root trust to those whose policies allow it (not
    // `not-allowed`, `id-denied`, the trust-denied user, the capped role,
    // `passrole`, `attacher`); ARN trust on its own; the MFA role by
    // condition.
    assert_eq!(
        env.delegations(),
        [
            "allowed -assume_role-> ops",
            "arn-trusted -assume_role-> direct",
            "key-maker -add_credential-> true-admin",
            "launcher -invoke-> runner",
            "mfa -assume_role-> mfa-role",
            "notaction -assume_role-> mfa-role",
            "notaction -assume_role-> ops",
            "profile-maker -invoke-> no-profile",
            "runner -assume_role-> mfa-role",
            "runner -assume_role-> ops",
            "true-admin -assume_role-> mfa-role",
            "true-admin -assume_role-> ops",
            "trust-writer -assume_role-> capped",
        ],
        "passrole cannot run a service, so passing roles leads nowhere"
    );
    let purpose = env.purpose(&arn("role", "mfa-role"));
    assert!(
        purpose.contains(
            "assumable under conditions by mfa only if Bool aws:MultiFactorAuthPresent=true, \
             notaction only if Bool aws:MultiFactorAuthPresent=true, \
             runner only if Bool aws:MultiFactorAuthPresent=true, \
             true-admin only if Bool aws:MultiFactorAuthPresent=true"
        ),
        "{purpose}"
    );
    assert!(!env
        .purpose(&arn("role", "ops"))
        .contains("under conditions"));
    // The condition is on the edge itself, and each escalation edge says why
    // it exists.
    assert_eq!(
        env.strings(
            "SELECT f.name || ' -' || d.kind || '-> ' || t.name || coalesce(' [' || d.condition || ']', '')
                    || coalesce(' (' || d.reason || ')', '')
             FROM delegations d JOIN identities f ON f.id = d.from_id JOIN identities t ON t.id = d.to_id
             WHERE (d.condition IS NOT NULL OR d.reason IS NOT NULL) AND ?1 = ?1",
            ""
        ),
        [
            "key-maker -add_credential-> true-admin (iam:CreateAccessKey)",
            "launcher -invoke-> runner (iam:PassRole to ec2.amazonaws.com, then ec2:RunInstances)",
            "mfa -assume_role-> mfa-role [only if Bool aws:MultiFactorAuthPresent=true]",
            "notaction -assume_role-> mfa-role [only if Bool aws:MultiFactorAuthPresent=true]",
            "profile-maker -invoke-> no-profile (iam:PassRole to ec2.amazonaws.com (a new instance profile), \
             then ec2:RunInstances + iam:CreateInstanceProfile + iam:AddRoleToInstanceProfile)",
            "runner -assume_role-> mfa-role [only if Bool aws:MultiFactorAuthPresent=true]",
            "true-admin -assume_role-> mfa-role [only if Bool aws:MultiFactorAuthPresent=true]",
            "trust-writer -assume_role-> capped (iam:UpdateAssumeRolePolicy, then sts:AssumeRole)",
        ]
    );

    // The boundary caps the role's * to s3:*; admin means effective admin.
    assert_eq!(env.grants(&arn("role", "capped")), ["s3:* on * write HC"]);
    assert_eq!(
        env.grants(&arn("user", "passrole")),
        ["iam:PassRole on * write HC"]
    );
    assert_eq!(
        env.grants(&arn("user", "notaction")),
        ["NotAction:iam:*,organizations:* on * write HC"]
    );
    // Denies on grants: partial ones limit the grant (and say how), a
    // NotAction deny narrows * to what it leaves, a conditional one makes
    // the grant "allowed unless".
    let qualified = |user: &str| {
        env.strings(
            "SELECT g.permission || ' on ' || r.external_id || ' ' || g.privilege || coalesce(' [' || g.condition || ']', '')
                    || coalesce(' ' || g.excluded, '')
             FROM grants g JOIN identities i ON i.id = g.identity_id JOIN resources r ON r.id = g.resource_id
             WHERE i.external_id = ?1",
            &arn("user", user),
        )
    };
    assert_eq!(
        qualified("deny-limited"),
        ["s3:* on * write [except s3:DeleteBucket; not on arn:aws:s3:::vault] [\"arn:aws:s3:::vault\"]"]
    );
    assert_eq!(qualified("s3-only"), ["s3:* on * write"]);
    assert_eq!(
        qualified("mfa-writer"),
        ["s3:* on arn:aws:s3:::vault write [unless Bool aws:MultiFactorAuthPresent=false]"]
    );
    assert_eq!(
        env.strings(
            "SELECT DISTINCT i.name FROM grants g JOIN identities i ON i.id = g.identity_id
             JOIN resources r ON r.id = g.resource_id
             WHERE g.privilege = 'admin' AND r.sensitivity = 'critical' AND ?1 = ?1",
            ""
        ),
        ["attacher", "runner", "true-admin"],
        "the exact admin set (key-maker and trust-writer reach one principal each: edges)"
    );

    // Who can reach the bucket object: its holder, the prefix and * holders
    // (saying through which grant), and who assumes ops.
    let g = Graph::load(&env.store).unwrap();
    let object: i64 = env
        .store
        .raw_db()
        .query_row(
            "SELECT id FROM resources WHERE external_id = ?1",
            ["arn:aws:s3:::data/report"],
            |r| r.get(0),
        )
        .unwrap();
    let who: Vec<String> = g
        .who_can_reach(object)
        .unwrap()
        .into_iter()
        .map(|r| {
            let chain: Vec<String> = r.chain.iter().map(|h| h.name.clone()).collect();
            format!(
                "{} {} [{}] {}",
                r.name,
                r.hops,
                chain.join(" > "),
                r.permission
            )
        })
        .collect();
    assert_eq!(
        who,
        [
            "capped 0 [capped] s3:* (through the grant on *)",
            "deny-limited 0 [deny-limited] s3:* (through the grant on *)",
            "not-allowed 0 [not-allowed] s3:GetObject (through the grant on arn:aws:s3:::data/*)",
            "notaction 0 [notaction] NotAction:iam:*,organizations:* (through the grant on *)",
            "ops 0 [ops] s3:GetObject",
            "runner 0 [runner] * (through the grant on *)",
            "s3-only 0 [s3-only] s3:* (through the grant on *)",
            "true-admin 0 [true-admin] * (through the grant on *)",
            "allowed 1 [allowed > ops] s3:GetObject",
            "key-maker 1 [key-maker > true-admin] * (through the grant on *)",
            "launcher 1 [launcher > runner] * (through the grant on *)",
            "trust-writer 1 [trust-writer > capped] s3:* (through the grant on *)",
        ]
    );
    // paths-to-admin follows the escalation edges, and its chains say why.
    let plain = |s: &str| s.to_string();
    let mut paths: Vec<String> = g
        .paths_to_admin(100)
        .into_iter()
        .map(|p| {
            format!(
                "{}: {} {}",
                p.name,
                chain_text(&p.chain, plain),
                p.permission
            )
        })
        .collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            "key-maker: key-maker -add_credential (iam:CreateAccessKey)-> true-admin *",
            "launcher: launcher -invoke (iam:PassRole to ec2.amazonaws.com, then ec2:RunInstances)-> runner *",
        ]
    );
    // The blast radius's chain to the MFA role is marked conditional.
    let mfa = env.store.resolve_identity(&arn("user", "mfa")).unwrap().0;
    let b = g.blast(mfa).unwrap();
    let chains: Vec<String> = b
        .reachable
        .iter()
        .map(|r| chain_text(&r.chain, plain))
        .collect();
    assert_eq!(
        chains,
        ["mfa -assume_role (only if Bool aws:MultiFactorAuthPresent=true)-> mfa-role"]
    );
    // who-can-reach's chains, from the other end, say why too: the vault is
    // reached by launcher through runner's * (launcher's own ec2 grant on *
    // reaches no bucket).
    let held: i64 = env
        .store
        .raw_db()
        .query_row(
            "SELECT id FROM resources WHERE external_id = ?1",
            ["arn:aws:s3:::vault"],
            |r| r.get(0),
        )
        .unwrap();
    let via_launcher: Vec<String> = g
        .who_can_reach(held)
        .unwrap()
        .into_iter()
        .filter(|r| r.name == "launcher")
        .map(|r| chain_text(&r.chain, plain))
        .collect();
    assert_eq!(
        via_launcher,
        ["launcher -invoke (iam:PassRole to ec2.amazonaws.com, then ec2:RunInstances)-> runner"]
    );

    // The vault: reached by its reader, by mfa-writer unless MFA is absent,
    // by the s3:* and * holders through their wildcard grants, never by
    // deny-limited (its deny there).
    let vault: i64 = env
        .store
        .raw_db()
        .query_row(
            "SELECT id FROM resources WHERE external_id = ?1",
            ["arn:aws:s3:::vault"],
            |r| r.get(0),
        )
        .unwrap();
    let who: Vec<String> = g
        .who_can_reach(vault)
        .unwrap()
        .into_iter()
        .filter(|r| r.hops == 0)
        .map(|r| match r.condition {
            Some(c) => format!("{} {} [{c}]", r.name, r.permission),
            None => format!("{} {}", r.name, r.permission),
        })
        .collect();
    assert_eq!(
        who,
        [
            "capped s3:* (through the grant on *)",
            "mfa-writer s3:* [unless Bool aws:MultiFactorAuthPresent=false]",
            "notaction NotAction:iam:*,organizations:* (through the grant on *)",
            "runner * (through the grant on *)",
            "s3-only s3:* (through the grant on *)",
            "true-admin * (through the grant on *)",
            "vault-reader s3:GetObject",
        ]
    );
    // The blast radius lists each of the account's resources under a
    // wildcard grant, saying through which, and none a deny keeps it from.
    let limited = env
        .store
        .resolve_identity(&arn("user", "deny-limited"))
        .unwrap()
        .0;
    let mut reached: Vec<String> = g
        .blast(limited)
        .unwrap()
        .resources
        .into_iter()
        .flat_map(|r| {
            r.permissions
                .into_iter()
                .map(move |p| format!("{}: {}", r.name, p.permission))
        })
        .collect();
    reached.sort();
    assert_eq!(
        reached,
        [
            "* (every resource in account prod (123456789012)): s3:*",
            "arn:aws:s3:::data/*: s3:* (through the grant on *)",
            "arn:aws:s3:::data/report: s3:* (through the grant on *)",
        ]
    );
}
