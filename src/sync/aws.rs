//! AWS IAM (the IAM Query API, signed with SigV4).
//!
//! One source is one AWS account: to govern several accounts, add one `aws`
//! source per account, each with its own access key (the key's account is
//! the one read). IAM is global, so there is no region setting.
//!
//! Settings: `access_key_id` (required), `endpoint` (default
//! `https://iam.amazonaws.com/`; a moto server or a partition's endpoint
//! otherwise; requests are always signed for `iam` in `us-east-1`),
//! `account_name` (a label shown in descriptions; also the environment when
//! an identity has no `environment`/`env` tag). Secret: the secret access key
//! only, as AWS shows it once (40 characters), with nothing around it. The
//! key needs read access to IAM: `GetAccountAuthorizationDetails`,
//! `ListAccessKeys`, `GetAccessKeyLastUsed` and `GetLoginProfile` (the AWS
//! managed policy `SecurityAudit` covers them).
//!
//! Transport: `POST` of `Action=…&Version=2010-05-08` as a form to the
//! endpoint, through the shared [`super::http::HttpClient`] with a SigV4 signature made
//! afresh for every attempt (the signature covers `X-Amz-Date`, and a retry
//! after a long backoff must not reuse a stale one). Throttling (HTTP 400 with
//! `<Code>Throttling</Code>`), 5xx and network errors are retried by the
//! client with exponential backoff.
//!
//! XML is read with `roxmltree`: the responses are small DOMs navigated by
//! element name, with many optional elements that differ between AWS and
//! emulators; a tree lookup that tolerates anything missing reads more simply
//! than serde structs, and it has no dependencies.
//!
//! Fetch:
//! - `GetAccountAuthorizationDetails` (GAAD), looping on `IsTruncated` /
//!   `Marker`: users, roles, groups, managed policies (their default
//!   version) and every inline policy. Managed policies are keyed by `Arn`;
//!   `PolicyName`/`PolicyId` are not required (moto omits them).
//!   Policy documents are percent-decoded when they start with `%` (AWS
//!   encodes them; moto sends trust policies unencoded).
//! - per user, bounded in parallel: `ListAccessKeys` (+ `GetAccessKeyLastUsed`
//!   per key) and `GetLoginProfile` (`NoSuchEntity` = no console password).
//!   Chosen over the credential report: the report names no access key ids,
//!   must be generated and polled, and may be up to four hours old.
//!
//! Mapping:
//! - An IAM user is a **non-human identity** when it is marked as one: a kind
//!   tag (`kind`, `type`, `identity-type`, `user-type`; see
//!   [`super::scim::machine_kind`], e.g. `service`, `bot`, `agent`), an `agent`
//!   tag (→ `ai_agent`), a truthy `service` tag, or a path under `/svc/`
//!   (→ `service_account`). An unmarked user is a **person** when it has a
//!   console password (login profile) and no access keys; every other user
//!   (access keys, or no credential at all) is a `service_account` identity,
//!   since programmatic keys are what makes an IAM user a machine credential.
//!   People get the `email` tag as email (or the user name when it is an
//!   address) and no grants (the cache keeps grants on identities only).
//! - Every role is a non-human identity: `ai_agent` when tagged `agent` or
//!   with a kind tag naming an agent, another kind a kind tag names, else
//!   `workload`. `RoleLastUsed.LastUsedDate` → last used.
//! - Owner: the `owner`/`Owner` tag: an email → [`PersonKey::Email`]; the
//!   name of a human IAM user of the account → that person. `team` tag →
//!   team.
//! - Access keys → `access_key` credentials (inactive keys are listed too,
//!   with "(inactive)" in their name); a user identity's login profile → a
//!   `password` credential. A user identity's last use is its keys' latest.
//! - Policies are evaluated by [`super::aws_policy`] (AWS's documented
//!   evaluation logic; see its module doc): each user and role identity's
//!   identity-based statements are its inline, attached managed and (users)
//!   group policies; its permissions boundary (`PermissionsBoundaryArn`, a
//!   managed policy) caps them.
//! - Trust policies → `assume_role` delegations. A trust policy naming a
//!   user or role identity's ARN (or `*`) allows it on its own; one naming
//!   this account (`arn:aws:iam::ACCT:root` or the bare id) delegates to the
//!   account's policies, so every user and role identity whose statements
//!   (capped by its boundary) allow `sts:AssumeRole` on the role ARN gets an
//!   edge (wildcards, `sts:*`, `*` and `NotAction` included). An explicit
//!   deny (in the trust policy naming the caller, the account or `*`; in the
//!   caller's policies or boundary) removes the edge. An edge that depends on
//!   a condition (`aws:MultiFactorAuthPresent`, …) is kept, conditional: the
//!   delegation carries the condition ("only if Bool
//!   aws:MultiFactorAuthPresent=true"; a conditional deny reads "unless …"),
//!   shown on every chain through it, and the role's description says so
//!   too ("assumable under conditions by NAME only if CONDITION"). Other principals
//!   cannot be edges and are written into the role's description ("trusted
//!   by …"): the account itself, other accounts, services, federated
//!   providers, human users, unknown or deleted principals.
//! - Escalation edges, from user and role identities that are not already
//!   admin (after principalmapper's edge checkers): `add_credential` to another
//!   user identity it may create access keys or a console password for (or
//!   change that password of); `assume_role` to a role whose trust policy it
//!   may rewrite (`iam:UpdateAssumeRolePolicy`; the rewritten trust names
//!   it, which suffices); `invoke` to a role it may pass (`iam:PassRole`) to a
//!   service the role trusts and that it may run (EC2 `RunInstances` for a
//!   role in an instance profile (`InstanceProfileList`), plus
//!   `iam:CreateInstanceProfile` + `iam:AddRoleToInstanceProfile` for one in
//!   none,
//!   Lambda `CreateFunction` + `InvokeFunction`, CloudFormation
//!   `CreateStack`, CodeBuild `CreateProject` + `StartBuild`, ECS `RunTask`).
//!   `paths-to-admin` follows them. Each says why it exists as its
//!   delegation's reason ("iam:CreateAccessKey"; "iam:PassRole to
//!   ec2.amazonaws.com, then ec2:RunInstances"), and a step allowed only
//!   under a condition makes the edge conditional.
//! - Permissions → grants, for user and role identities: every `Allow`
//!   statement gives a grant per (action, resource): permission = the action
//!   as written, resource = the resource ARN (or `*`; `NotResource` counts
//!   as `*`). A boundary keeps an allow it covers, narrows one that covers a
//!   narrower boundary allow to that one, and drops the rest. Privilege:
//!   **admin means effective admin**: `*` on `*`, or an IAM write that grants
//!   any permission (attaching or putting policies, new policy versions,
//!   access keys or passwords for another user, trust-policy updates, adding
//!   users to groups; the table is [`super::aws_policy::ADMIN_ACTIONS`]) on
//!   an IAM resource or `*`; `*` on one bucket is a write, and keys,
//!   passwords or trust rewrites for one named principal are an escalation
//!   edge to it instead. `iam:PassRole`,
//!   `sts:AssumeRole` and other IAM writes are high-consequence writes: they
//!   are edges to follow, not admin in themselves. Read for
//!   `List*`/`Get*`/`Describe*` and similar; write otherwise.
//!   High-consequence: every admin grant, IAM and STS writes, and writes on
//!   data stores (s3, dynamodb, rds, kms, secretsmanager). An `Allow` with
//!   `NotAction` is one grant named `NotAction:…`, admin when what it leaves
//!   allowed includes an admin action. A conditional `Allow` makes the grant
//!   conditional ("only if …", kept in [`Fetched::grant_conditions`]).
//! - Deny ([`effective_grants`]): a `Deny` statement (the principal's or its
//!   boundary's) is matched against each allowed (action, resource) pattern
//!   by pattern (wildcards in the deny against the allow's text, `NotAction`
//!   / `NotResource` denying what their list leaves out). Unconditional and
//!   covering both wholly, it removes the grant (`s3:*` on `*` removes
//!   `s3:GetObject` on a bucket); leaving only listed parts, it narrows the
//!   grant to them (`*` under a deny of all but `s3:*` is `s3:*`, no admin);
//!   denying the whole action on part of the resource, the grant stays "not
//!   on" that part and reach skips it; denying part of the actions, it stays
//!   "except" them. A conditional deny keeps the grant, "unless" its
//!   condition. Not evaluated: SCPs, session policies, resource policies
//!   other than trust, condition values. The inventory therefore errs
//!   towards more access.
//! - Resources: one per distinct resource ARN a grant names. Sensitivity:
//!   critical for `*` and IAM, high for the data stores, medium otherwise.
//!
//! Always a full fetch: IAM has no change feed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign as sign_request, SignableBody, SignableRequest, SigningSettings,
};
use chrono::{DateTime, Utc};
use roxmltree::{Document, Node};

use super::aws_auth::Auth;
use super::records::*;
use super::scim::machine_kind;
use super::{Source, SyncContext};
use crate::error::{Error, ErrorCode, Result};
use crate::model::{
    AgentClass, CredentialKind, DelegationKind, IdentityKind, IdentityStatus, PersonStatus,
    Privilege, Sensitivity,
};

pub struct AwsIamSource;

pub const DEFAULT_ENDPOINT: &str = "https://iam.amazonaws.com/";
/// IAM is global; its signing region is always `us-east-1` (aws partition).
pub const SIGNING_REGION: &str = "us-east-1";
pub const SIGNING_SERVICE: &str = "iam";
pub const API_VERSION: &str = "2010-05-08";
pub const CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";
/// How many per-user reads run at once (the HTTP client bounds requests too).
const TASKS: usize = 16;
/// Services whose resources hold data.
const DATA_STORES: &[&str] = &["s3", "dynamodb", "rds", "kms", "secretsmanager"];

// ---------------------------------------------------------------------------
// Transport

/// The SigV4 headers (`authorization`, `x-amz-date`) for a form POST of
/// `body` to `url`, signed for IAM in `us-east-1` at `time`.
pub fn sign_headers(
    access_key_id: &str,
    secret: &str,
    url: &str,
    content_type: &str,
    body: &str,
    time: SystemTime,
) -> Result<Vec<(String, String)>> {
    let k = Credentials::new(access_key_id, secret, None, None, "custodian");
    sign(
        &k,
        SIGNING_SERVICE,
        SIGNING_REGION,
        url,
        &[("content-type", content_type)],
        body,
        time,
    )
}

/// The SigV4 headers (`authorization`, `x-amz-date`, and
/// `x-amz-security-token` for temporary keys) for a POST of `body` to
/// `url` with `headers` (all signed), for `service` in `region` at `time`.
pub fn sign(
    keys: &Credentials,
    service: &str,
    region: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
    time: SystemTime,
) -> Result<Vec<(String, String)>> {
    let fail =
        |e: &dyn std::fmt::Display| Error::internal(format!("cannot sign the AWS request: {e}"));
    let identity = keys.clone().into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| fail(&e))?
        .into();
    let request = SignableRequest::new(
        "POST",
        url,
        headers.iter().copied(),
        SignableBody::Bytes(body.as_bytes()),
    )
    .map_err(|e| fail(&e))?;
    let (instructions, _signature) = sign_request(request, &params)
        .map_err(|e| fail(&e))?
        .into_parts();
    Ok(instructions
        .headers()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

/// The form body of a Query API call.
pub fn query_body(action: &str, params: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("Action", action)
        .append_pair("Version", API_VERSION)
        .extend_pairs(params)
        .finish()
}

/// A signed IAM Query API client (shared by the sync and write-back).
#[derive(Clone)]
pub(crate) struct Iam {
    auth: Auth,
}

impl Iam {
    /// The client for a source's settings and secret: an access key
    /// (`access_key_id` + the secret), or the credential chain; then its
    /// `role_arn`, if any ([`super::aws_auth`]). Nothing is fetched yet.
    pub(crate) fn from_context(ctx: &SyncContext) -> Result<Iam> {
        // Keys of the management account must not act on a member
        // account's user of the same name.
        if super::aws_auth::opt(&ctx.source.settings, "member_role_name").is_some() {
            return Err(Error::invalid(format!(
                "source '{}' reads an AWS organisation: write-back is for one-account sources; add a source for that account (role_arn into it) with write-back on, or export the task as a ticket",
                ctx.source.name
            )));
        }
        Ok(Iam {
            auth: Auth::from_context(ctx)?,
        })
    }

    /// The client signing with `auth`'s keys.
    pub(crate) fn with_auth(auth: Auth) -> Iam {
        Iam { auth }
    }

    /// The ids of a user's access keys (every page).
    pub(crate) async fn access_key_ids(&self, user: &str) -> Result<Vec<String>> {
        Ok(list_keys(self, user)
            .await?
            .into_iter()
            .map(|k| k.id)
            .collect())
    }

    /// One signed call; the XML text of the response.
    pub(crate) async fn call(&self, action: &str, params: &[(&str, &str)]) -> Result<String> {
        let e = self.auth.endpoints().await?;
        self.auth
            .query(
                &e.iam,
                SIGNING_SERVICE,
                SIGNING_REGION,
                query_body(action, params),
            )
            .await
            .map_err(|err| match err.code {
                ErrorCode::MalformedResponse => malformed(action, "the response is not UTF-8"),
                _ => err,
            })
    }
}

fn malformed(action: &str, what: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorCode::MalformedResponse,
        format!("AWS IAM {action}: {what}"),
    )
}

pub(crate) fn is_no_such_entity(e: &Error) -> bool {
    e.code == ErrorCode::SourceError && e.message.contains("NoSuchEntity")
}

// ---------------------------------------------------------------------------
// XML

fn parse_xml<'i>(text: &'i str, action: &str) -> Result<Document<'i>> {
    Document::parse(text).map_err(|e| malformed(action, format!("the response is not XML ({e})")))
}

/// The `<{action}Result>` element.
fn result<'a, 'i>(doc: &'a Document<'i>, action: &str) -> Result<Node<'a, 'i>> {
    let name = format!("{action}Result");
    child(doc.root_element(), &name)
        .ok_or_else(|| malformed(action, format!("the response has no {name}")))
}

fn child<'a, 'i>(n: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    n.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

fn text(n: Node<'_, '_>, name: &str) -> Option<String> {
    child(n, name)
        .and_then(|c| c.text())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn members<'a, 'i>(n: Node<'a, 'i>, list: &str) -> Vec<Node<'a, 'i>> {
    child(n, list)
        .map(|l| {
            l.children()
                .filter(|c| c.is_element() && c.tag_name().name() == "member")
                .collect()
        })
        .unwrap_or_default()
}

fn time(n: Node<'_, '_>, name: &str) -> Option<DateTime<Utc>> {
    text(n, name)
        .and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
        .map(|t| t.with_timezone(&Utc))
}

fn required(n: Node<'_, '_>, name: &str, what: &str) -> Result<String> {
    text(n, name).ok_or_else(|| {
        malformed(
            "GetAccountAuthorizationDetails",
            format!("a {what} has no {name}"),
        )
    })
}

// ---------------------------------------------------------------------------
// Policy documents

use super::aws_policy::{
    account_of, admin_reason, applies_to_action, evaluate, not_action_admin_reason, trust_decision,
    whole_account, wildcard_match, Decision, ADMIN_ACTIONS,
};
pub use super::aws_policy::{covers, decode_document, statements, Statement};

fn document_statements(raw: Option<String>) -> Result<Vec<Statement>> {
    match raw {
        Some(r) => Ok(statements(&decode_document(&r)?)),
        None => Ok(vec![]),
    }
}

/// The service of an action (`s3:GetObject` → `s3`), lower-case.
fn action_service(action: &str) -> String {
    action
        .split_once(':')
        .map(|(s, _)| s)
        .unwrap_or(action)
        .to_ascii_lowercase()
}

/// The service of a resource ARN (`arn:aws:s3:::b` → `s3`); `None` for `*`.
fn resource_service(resource: &str) -> Option<String> {
    let mut parts = resource.splitn(4, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("arn"), Some(_), Some(service)) if !service.is_empty() => {
            Some(service.to_ascii_lowercase())
        }
        _ => None,
    }
}

const READ_VERBS: &[&str] = &[
    "list", "get", "describe", "head", "batchget", "query", "scan", "search", "select", "view",
    "lookup",
];

/// The privilege of an action and whether it is high-consequence, from the
/// action alone: admin for `*` and for IAM writes that grant permissions
/// ([`ADMIN_ACTIONS`], or a wildcard covering one); other IAM and STS writes
/// (`iam:PassRole`, `sts:AssumeRole`, …) are high-consequence writes (they
/// are edges to follow, not admin in themselves); read for
/// `List*`/`Get*`/`Describe*` and similar; write otherwise. Where the
/// resource is known, [`effective_permissions`] narrows admin further.
pub fn action_privilege(action: &str) -> (Privilege, bool) {
    let a = action.trim().to_ascii_lowercase();
    if a == "*" {
        return (Privilege::Admin, true);
    }
    let service = action_service(&a);
    let verb = a.split_once(':').map(|(_, v)| v).unwrap_or_default();
    let read = READ_VERBS.iter().any(|r| verb.starts_with(r));
    if service == "iam"
        && ADMIN_ACTIONS
            .iter()
            .any(|(n, _, _)| wildcard_match(&a, &n.to_ascii_lowercase()))
    {
        return (Privilege::Admin, true);
    }
    let escalates = match service.as_str() {
        "iam" => !read,
        "sts" => verb == "*" || verb.starts_with("assumerole"),
        _ => false,
    };
    if escalates {
        (Privilege::Write, true)
    } else if read {
        (Privilege::Read, false)
    } else {
        (Privilege::Write, DATA_STORES.contains(&service.as_str()))
    }
}

/// Resource sensitivity: critical for `*` and IAM, high for data stores.
pub fn resource_sensitivity(resource: &str) -> Sensitivity {
    match resource_service(resource) {
        None => Sensitivity::Critical,
        Some(s) if s == "iam" => Sensitivity::Critical,
        Some(s) if DATA_STORES.contains(&s.as_str()) => Sensitivity::High,
        Some(_) => Sensitivity::Medium,
    }
}

/// One effective permission: (permission, resource, privilege, high-consequence).
pub type Permission = (String, String, Privilege, bool);

/// The effective grants of a set of statements (no boundary, no holder):
/// see [`effective_permissions`].
pub fn permissions(stmts: &[&Statement]) -> Vec<Permission> {
    effective_permissions(stmts, None, "")
}

/// The narrower of two patterns when one covers the other.
fn narrower<'a>(a: &'a str, b: &'a str, lower: bool) -> Option<&'a str> {
    let (x, y) = if lower {
        (a.to_ascii_lowercase(), b.to_ascii_lowercase())
    } else {
        (a.to_string(), b.to_string())
    };
    if covers(&x, &y) {
        Some(b)
    } else if covers(&y, &x) {
        Some(a)
    } else {
        None
    }
}

/// One effective grant of a principal ([`effective_grants`]).
#[derive(Debug, Clone, PartialEq)]
pub struct EffectiveGrant {
    pub permission: String,
    pub resource: String,
    pub privilege: Privilege,
    pub high_consequence: bool,
    /// What the grant holds under and what it leaves out, readable, joined
    /// by "; ": "only if …" (its allow's condition), "unless …" (a
    /// conditional deny), "except …" (a deny of part of its actions), "not
    /// on …" (a deny of its actions on part of its resources). `None`: it
    /// holds as it is.
    pub condition: Option<String>,
    /// Resource patterns under `resource` that it does not reach: an
    /// unconditional deny of its whole action there.
    pub excluded: Vec<String>,
}

impl EffectiveGrant {
    fn permission(&self) -> Permission {
        (
            self.permission.clone(),
            self.resource.clone(),
            self.privilege,
            self.high_consequence,
        )
    }
}

/// How much of an allowed pattern a deny's patterns take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Overlap {
    None,
    Part,
    Whole,
}

/// Can two IAM patterns match a common value? Exact when one covers the
/// other; otherwise, for two wildcard patterns, when their literal starts
/// agree (`s3:Get*` and `s3:*Object` may; `s3:Get*` and `s3:Put*` cannot).
fn patterns_overlap(x: &str, y: &str) -> bool {
    if covers(x, y) || covers(y, x) {
        return true;
    }
    let lead = |p: &str| -> (String, bool) {
        match p.find(['*', '?']) {
            Some(i) => (p[..i].to_string(), true),
            None => (p.to_string(), false),
        }
    };
    let ((lx, wx), (ly, wy)) = (lead(x), lead(y));
    wx && wy && (lx.starts_with(&ly) || ly.starts_with(&lx))
}

/// How a deny's list (`Action`/`Resource`, or the `Not…` form when `not`)
/// covers the allowed pattern `v`, and for the `Not…` form the listed
/// patterns `v` covers (what the allow keeps when that is all it overlaps).
fn overlap(list: &[String], not: bool, v: &str) -> (Overlap, Vec<String>) {
    if list.is_empty() && !not {
        return (Overlap::Whole, vec![]);
    }
    if !not {
        if list.iter().any(|p| covers(p, v)) {
            return (Overlap::Whole, vec![]);
        }
        let part = list.iter().any(|p| patterns_overlap(p, v));
        return (if part { Overlap::Part } else { Overlap::None }, vec![]);
    }
    // NotAction / NotResource: the deny applies to what the list leaves out.
    if list.iter().any(|p| covers(p, v)) {
        return (Overlap::None, vec![]);
    }
    let touching: Vec<&String> = list.iter().filter(|p| patterns_overlap(p, v)).collect();
    if touching.is_empty() {
        return (Overlap::Whole, vec![]);
    }
    let kept: Vec<String> = touching
        .iter()
        .filter(|p| covers(v, p))
        .map(|p| p.to_string())
        .collect();
    // Exact only when every listed pattern it touches lies within it.
    let exact = kept.len() == touching.len();
    (Overlap::Part, if exact { kept } else { vec![] })
}

/// The deny's actions or resources as written, for a grant's condition.
fn listed(list: &[String], not: bool) -> String {
    if not {
        format!("all but {}", list.join(", "))
    } else {
        list.join(", ")
    }
}

/// An allowed (action, resource) on its way through the denies.
#[derive(Debug, Clone)]
struct Allowed {
    /// The permission as stored (`NotAction:…` for a NotAction allow).
    permission: String,
    /// The action pattern denies are matched against (lower-case; `*` for a
    /// NotAction allow).
    action: String,
    resource: String,
    /// A NotAction allow's exclusions.
    not_action: Option<Vec<String>>,
    /// "only if …" of its allow (none when one allow holds unconditionally).
    only_if: Option<String>,
}

/// The effective grants of a principal: every allowed (action, resource) of
/// its identity-based statements, capped by its permissions boundary
/// (`boundary`: the boundary policy's statements; an allow the boundary
/// covers stays, one that covers a narrower boundary allow becomes that
/// narrower grant, anything else goes), then its denies and its
/// boundary's, after AWS's rule that an explicit deny wins:
/// - an unconditional deny of the whole action on the whole resource
///   removes the grant (`NotAction` / `NotResource` denies included: they
///   deny what their list leaves out);
/// - one that leaves only listed parts allowed narrows the grant to them
///   (`* ` under a deny of everything but `s3:*` becomes `s3:*`; `s3:GetObject`
///   on `*` under a deny off `arn:aws:s3:::public/*` becomes that prefix);
/// - one of the whole action on part of the resource keeps the grant "not
///   on" that part, and lists it in `excluded` (reach skips it);
/// - one of part of the action keeps it, "except" those actions;
/// - a conditional deny keeps it, "unless" its condition (for the part it
///   covers, when partial).
///
/// An allow's own condition makes the grant "only if" it. Admin only where
/// the holder is an effective administrator: `*` on `*`, or an IAM write
/// that grants permissions ([`admin_reason`]; `holder` is the holder's ARN,
/// for writes harmless on oneself). Sorted by resource, then permission.
pub fn effective_grants(
    stmts: &[&Statement],
    boundary: Option<&[&Statement]>,
    holder: &str,
) -> Vec<EffectiveGrant> {
    let denies: Vec<&Statement> = stmts
        .iter()
        .chain(boundary.unwrap_or_default())
        .filter(|s| !s.allow)
        .copied()
        .collect();
    // What the boundary allows, as (action, resource) patterns; NotAction
    // boundary statements as their exclusions.
    let cap: Option<Vec<(Option<&str>, &[String], &str)>> = boundary.map(|b| {
        b.iter()
            .filter(|s| s.allow)
            .flat_map(|s| {
                let resources: Vec<&str> = if s.not_resource || s.resources.is_empty() {
                    vec!["*"]
                } else {
                    s.resources.iter().map(String::as_str).collect()
                };
                resources.into_iter().flat_map(move |r| {
                    let v: Vec<(Option<&str>, &[String], &str)> = if s.not_action {
                        vec![(None, s.actions.as_slice(), r)]
                    } else {
                        s.actions
                            .iter()
                            .map(|a| (Some(a.as_str()), &[][..], r))
                            .collect()
                    };
                    v
                })
            })
            .collect()
    });
    // The (action, resource) pairs an allow (a, r) becomes under the cap.
    let capped = |a: &str, r: &str| -> Vec<(String, String)> {
        let Some(cap) = &cap else {
            return vec![(a.to_string(), r.to_string())];
        };
        let mut v = Vec::new();
        for (ca, excluded, cr) in cap {
            let Some(res) = narrower(r, cr, false) else {
                continue;
            };
            match ca {
                Some(ca) => {
                    if let Some(act) = narrower(a, ca, true) {
                        v.push((act.to_string(), res.to_string()));
                    }
                }
                None => {
                    // A NotAction boundary: kept unless an exclusion covers it.
                    let al = a.to_ascii_lowercase();
                    if !excluded
                        .iter()
                        .any(|e| covers(&e.to_ascii_lowercase(), &al))
                    {
                        v.push((a.to_string(), res.to_string()));
                    }
                }
            }
        }
        v
    };
    // Every allowed pair once: an unconditional allow wins over conditional ones.
    let mut allowed: BTreeMap<(String, String), Allowed> = BTreeMap::new();
    let mut allow = |x: Allowed| {
        let key = (x.resource.clone(), x.permission.clone());
        match allowed.get_mut(&key) {
            None => {
                allowed.insert(key, x);
            }
            Some(e) => {
                if x.only_if.is_none() {
                    e.only_if = None;
                }
            }
        }
    };
    for s in stmts.iter().filter(|s| s.allow) {
        let resources = if s.not_resource || s.resources.is_empty() {
            vec!["*".to_string()]
        } else {
            s.resources.clone()
        };
        let only_if = s.condition.as_ref().map(|c| format!("only if {c}"));
        for r in &resources {
            if s.not_action {
                allow(Allowed {
                    permission: format!("NotAction:{}", s.actions.join(",")),
                    action: "*".into(),
                    resource: r.clone(),
                    not_action: Some(s.actions.clone()),
                    only_if: only_if.clone(),
                });
                continue;
            }
            for a0 in &s.actions {
                for (a, r) in capped(a0, r) {
                    allow(Allowed {
                        action: a.to_ascii_lowercase(),
                        permission: a,
                        resource: r,
                        not_action: None,
                        only_if: only_if.clone(),
                    });
                }
            }
        }
    }
    // Through the denies: narrowed pairs go round again (each narrowing
    // makes a pattern strictly narrower, so this ends).
    let mut work: Vec<Allowed> = allowed.into_values().collect();
    let mut out: BTreeMap<(String, String), EffectiveGrant> = BTreeMap::new();
    let mut rounds = 0usize;
    'pair: while let Some(x) = work.pop() {
        rounds += 1;
        let mut unless: Vec<String> = Vec::new();
        let mut except: Vec<String> = Vec::new();
        let mut not_on: Vec<String> = Vec::new();
        for d in &denies {
            let lower: Vec<String> = d.actions.iter().map(|a| a.to_ascii_lowercase()).collect();
            let (ao, keep_actions) = overlap(&lower, d.not_action, &x.action);
            if ao == Overlap::None {
                continue;
            }
            let (ro, keep_resources) = overlap(&d.resources, d.not_resource, &x.resource);
            if ro == Overlap::None {
                continue;
            }
            let what = || {
                let mut w = Vec::new();
                if ao != Overlap::Whole {
                    w.push(listed(&d.actions, d.not_action));
                }
                if ro != Overlap::Whole {
                    w.push(format!("on {}", listed(&d.resources, d.not_resource)));
                }
                w.join(" ")
            };
            if let Some(c) = &d.condition {
                unless.push(if ao == Overlap::Whole && ro == Overlap::Whole {
                    c.clone()
                } else {
                    format!("{c} (for {})", what())
                });
                continue;
            }
            match (ao, ro) {
                (Overlap::Whole, Overlap::Whole) => continue 'pair,
                // Narrowings, when the deny leaves exactly listed parts.
                (Overlap::Part, Overlap::Whole)
                    if !keep_actions.is_empty() && x.not_action.is_none() && rounds < 10_000 =>
                {
                    let original = d.actions.clone();
                    for k in keep_actions {
                        let permission = original
                            .iter()
                            .find(|o| o.to_ascii_lowercase() == k)
                            .cloned()
                            .unwrap_or_else(|| k.clone());
                        work.push(Allowed {
                            permission,
                            action: k,
                            ..x.clone()
                        });
                    }
                    continue 'pair;
                }
                (Overlap::Whole, Overlap::Part)
                    if !keep_resources.is_empty() && rounds < 10_000 =>
                {
                    for k in keep_resources {
                        work.push(Allowed {
                            resource: k,
                            ..x.clone()
                        });
                    }
                    continue 'pair;
                }
                (Overlap::Whole, Overlap::Part) if !d.not_resource => {
                    for r in d.resources.iter().filter(|r| covers(&x.resource, r)) {
                        if !not_on.contains(r) {
                            not_on.push(r.clone());
                        }
                    }
                    if not_on.is_empty() {
                        except.push(what());
                    }
                }
                _ => except.push(what()),
            }
        }
        let (mut privilege, hc) = match &x.not_action {
            Some(excluded) => {
                if not_action_admin_reason(excluded, &x.resource).is_some() {
                    (Privilege::Admin, true)
                } else {
                    (Privilege::Write, true)
                }
            }
            None => action_privilege(&x.permission),
        };
        if x.not_action.is_none()
            && privilege == Privilege::Admin
            && admin_reason(&x.permission, &x.resource, holder).is_none()
        {
            privilege = Privilege::Write;
        }
        let mut parts: Vec<String> = Vec::new();
        parts.extend(x.only_if.clone());
        dedup_keep_order(&mut unless);
        if !unless.is_empty() {
            parts.push(format!("unless {}", unless.join(" or ")));
        }
        dedup_keep_order(&mut except);
        if !except.is_empty() {
            parts.push(format!("except {}", except.join(", ")));
        }
        if !not_on.is_empty() {
            parts.push(format!("not on {}", not_on.join(", ")));
        }
        let g = EffectiveGrant {
            permission: x.permission.clone(),
            resource: x.resource.clone(),
            privilege,
            high_consequence: hc,
            condition: (!parts.is_empty()).then(|| parts.join("; ")),
            excluded: not_on,
        };
        match out.get_mut(&(x.resource.clone(), x.permission.clone())) {
            None => {
                out.insert((x.resource, x.permission), g);
            }
            Some(e) => {
                // The same grant twice (two narrowings meet): the wider
                // privilege and the unqualified one win.
                if privilege_rank(g.privilege) > privilege_rank(e.privilege) {
                    e.privilege = g.privilege;
                    e.high_consequence = g.high_consequence;
                }
                if g.condition.is_none() {
                    e.condition = None;
                    e.excluded.clear();
                }
            }
        }
    }
    out.into_values().collect()
}

fn dedup_keep_order(v: &mut Vec<String>) {
    let mut seen = HashSet::new();
    v.retain(|x| seen.insert(x.clone()));
}

/// [`effective_grants`] as (permission, resource, privilege,
/// high-consequence), without what qualifies them.
pub fn effective_permissions(
    stmts: &[&Statement],
    boundary: Option<&[&Statement]>,
    holder: &str,
) -> Vec<Permission> {
    effective_grants(stmts, boundary, holder)
        .iter()
        .map(EffectiveGrant::permission)
        .collect()
}

fn privilege_rank(p: Privilege) -> u8 {
    match p {
        Privilege::Read => 0,
        Privilege::Write => 1,
        Privilege::Admin => 2,
    }
}

// ---------------------------------------------------------------------------
// GAAD

type Tags = Vec<(String, String)>;

struct User {
    name: String,
    arn: String,
    path: String,
    created: Option<DateTime<Utc>>,
    groups: Vec<String>,
    inline: Vec<Statement>,
    attached: Vec<String>,
    /// The permissions boundary's managed policy ARN.
    boundary: Option<String>,
    tags: Tags,
}

struct Role {
    name: String,
    arn: String,
    path: String,
    created: Option<DateTime<Utc>>,
    last_used: Option<DateTime<Utc>>,
    trust: Vec<Statement>,
    inline: Vec<Statement>,
    attached: Vec<String>,
    /// The permissions boundary's managed policy ARN.
    boundary: Option<String>,
    tags: Tags,
    /// How many instance profiles hold it (EC2 runs an instance with a
    /// profile, not a role).
    instance_profiles: usize,
}

#[derive(Default)]
struct Group {
    inline: Vec<Statement>,
    attached: Vec<String>,
}

#[derive(Default)]
struct Gaad {
    users: Vec<User>,
    roles: Vec<Role>,
    groups: HashMap<String, Group>,
    /// Managed policy ARN → statements of its default version.
    policies: HashMap<String, Vec<Statement>>,
}

fn tags(n: Node<'_, '_>) -> Tags {
    members(n, "Tags")
        .into_iter()
        .filter_map(|t| Some((text(t, "Key")?, text(t, "Value").unwrap_or_default())))
        .collect()
}

fn inline(n: Node<'_, '_>, list: &str) -> Result<Vec<Statement>> {
    let mut out = Vec::new();
    for p in members(n, list) {
        out.extend(document_statements(text(p, "PolicyDocument"))?);
    }
    Ok(out)
}

fn attached(n: Node<'_, '_>) -> Vec<String> {
    members(n, "AttachedManagedPolicies")
        .into_iter()
        .filter_map(|p| text(p, "PolicyArn"))
        .collect()
}

fn boundary(n: Node<'_, '_>) -> Option<String> {
    child(n, "PermissionsBoundary").and_then(|b| text(b, "PermissionsBoundaryArn"))
}

/// Reads one GAAD page into `g`; the next marker when truncated.
fn read_gaad_page(xml: &str, g: &mut Gaad) -> Result<Option<String>> {
    const ACTION: &str = "GetAccountAuthorizationDetails";
    let doc = parse_xml(xml, ACTION)?;
    let res = result(&doc, ACTION)?;
    for u in members(res, "UserDetailList") {
        g.users.push(User {
            name: required(u, "UserName", "user")?,
            arn: required(u, "Arn", "user")?,
            path: text(u, "Path").unwrap_or_else(|| "/".into()),
            created: time(u, "CreateDate"),
            groups: members(u, "GroupList")
                .into_iter()
                .filter_map(|m| m.text().map(|t| t.trim().to_string()))
                .collect(),
            inline: inline(u, "UserPolicyList")?,
            attached: attached(u),
            boundary: boundary(u),
            tags: tags(u),
        });
    }
    for r in members(res, "RoleDetailList") {
        g.roles.push(Role {
            name: required(r, "RoleName", "role")?,
            arn: required(r, "Arn", "role")?,
            path: text(r, "Path").unwrap_or_else(|| "/".into()),
            created: time(r, "CreateDate"),
            last_used: child(r, "RoleLastUsed").and_then(|l| time(l, "LastUsedDate")),
            trust: document_statements(text(r, "AssumeRolePolicyDocument"))?,
            inline: inline(r, "RolePolicyList")?,
            attached: attached(r),
            boundary: boundary(r),
            tags: tags(r),
            instance_profiles: members(r, "InstanceProfileList").len(),
        });
    }
    for gr in members(res, "GroupDetailList") {
        let name = required(gr, "GroupName", "group")?;
        g.groups.insert(
            name,
            Group {
                inline: inline(gr, "GroupPolicyList")?,
                attached: attached(gr),
            },
        );
    }
    for p in members(res, "Policies") {
        let arn = required(p, "Arn", "managed policy")?;
        let default = text(p, "DefaultVersionId");
        let version = members(p, "PolicyVersionList").into_iter().find(|v| {
            text(*v, "IsDefaultVersion").is_some_and(|d| d.eq_ignore_ascii_case("true"))
                || (default.is_some() && text(*v, "VersionId") == default)
        });
        g.policies.insert(
            arn,
            document_statements(version.and_then(|v| text(v, "Document")))?,
        );
    }
    let truncated = text(res, "IsTruncated").is_some_and(|t| t.eq_ignore_ascii_case("true"));
    if !truncated {
        return Ok(None);
    }
    text(res, "Marker")
        .map(Some)
        .ok_or_else(|| malformed(ACTION, "IsTruncated is true but there is no Marker"))
}

async fn gaad(iam: &Iam, ctx: &SyncContext) -> Result<Gaad> {
    let mut g = Gaad::default();
    let mut marker: Option<String> = None;
    let mut seen = HashSet::new();
    let mut pages = 0u64;
    loop {
        let mut params = vec![("MaxItems", "1000")];
        if let Some(m) = &marker {
            params.push(("Marker", m.as_str()));
        }
        let xml = iam.call("GetAccountAuthorizationDetails", &params).await?;
        pages += 1;
        let next = read_gaad_page(&xml, &mut g)?;
        ctx.report(
            "identities",
            pages,
            (g.users.len() + g.roles.len()) as u64,
            None,
        );
        match next {
            Some(m) if !seen.insert(m.clone()) => {
                return Err(malformed(
                    "GetAccountAuthorizationDetails",
                    "the Marker repeats",
                ));
            }
            Some(m) => marker = Some(m),
            None => return Ok(g),
        }
    }
}

// ---------------------------------------------------------------------------
// Per-user credentials

struct Key {
    id: String,
    active: bool,
    created: Option<DateTime<Utc>>,
    last_used: Option<DateTime<Utc>>,
}

struct UserCreds {
    arn: String,
    keys: Vec<Key>,
    /// `Some(created)` when the user has a console password.
    login: Option<Option<DateTime<Utc>>>,
}

/// A user's access keys, every page (without last use).
async fn list_keys(iam: &Iam, name: &str) -> Result<Vec<Key>> {
    let mut keys = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let mut params = vec![("UserName", name)];
        if let Some(m) = &marker {
            params.push(("Marker", m.as_str()));
        }
        let xml = iam.call("ListAccessKeys", &params).await?;
        let doc = parse_xml(&xml, "ListAccessKeys")?;
        let res = result(&doc, "ListAccessKeys")?;
        for k in members(res, "AccessKeyMetadata") {
            let Some(id) = text(k, "AccessKeyId") else {
                return Err(malformed(
                    "ListAccessKeys",
                    "an access key has no AccessKeyId",
                ));
            };
            keys.push(Key {
                id,
                active: text(k, "Status").is_none_or(|s| s.eq_ignore_ascii_case("active")),
                created: time(k, "CreateDate"),
                last_used: None,
            });
        }
        // moto omits IsTruncated.
        match text(res, "IsTruncated")
            .filter(|t| t.eq_ignore_ascii_case("true"))
            .and_then(|_| text(res, "Marker"))
        {
            Some(m) if marker.as_deref() != Some(m.as_str()) => marker = Some(m),
            _ => break,
        }
    }
    Ok(keys)
}

async fn user_creds(iam: Iam, name: String, arn: String) -> Result<UserCreds> {
    let mut keys = list_keys(&iam, &name).await?;
    for k in &mut keys {
        let xml = iam
            .call("GetAccessKeyLastUsed", &[("AccessKeyId", k.id.as_str())])
            .await?;
        let doc = parse_xml(&xml, "GetAccessKeyLastUsed")?;
        let res = result(&doc, "GetAccessKeyLastUsed")?;
        k.last_used = child(res, "AccessKeyLastUsed").and_then(|u| time(u, "LastUsedDate"));
    }
    let login = match iam
        .call("GetLoginProfile", &[("UserName", name.as_str())])
        .await
    {
        Ok(xml) => {
            let doc = parse_xml(&xml, "GetLoginProfile")?;
            let res = result(&doc, "GetLoginProfile")?;
            Some(child(res, "LoginProfile").and_then(|p| time(p, "CreateDate")))
        }
        Err(e) if is_no_such_entity(&e) => None,
        Err(e) => return Err(e),
    };
    Ok(UserCreds { arn, keys, login })
}

// ---------------------------------------------------------------------------
// Mapping

fn norm(s: &str) -> String {
    s.trim().to_ascii_lowercase().replace([' ', '-', '_'], "")
}

/// The value of the first tag whose key is one of `keys` (compared without
/// case, spaces, `-` or `_`).
fn tag<'a>(tags: &'a Tags, keys: &[&str]) -> Option<&'a str> {
    tags.iter()
        .find(|(k, _)| keys.contains(&norm(k).as_str()))
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

fn truthy_tag(tags: &Tags, key: &str) -> bool {
    tags.iter()
        .any(|(k, v)| norm(k) == key && !matches!(norm(v).as_str(), "false" | "no" | "0" | "off"))
}

const KIND_TAGS: &[&str] = &["kind", "type", "identitytype", "usertype", "nhitype"];

/// The NHI kind tags name, if any.
fn tagged_kind(tags: &Tags) -> Option<(IdentityKind, Option<AgentClass>)> {
    if let Some(k) = tag(tags, KIND_TAGS).and_then(machine_kind) {
        return Some(k);
    }
    truthy_tag(tags, "agent").then_some((IdentityKind::AiAgent, None))
}

fn environment(tags: &Tags, fallback: &str) -> String {
    tag(tags, &["environment", "env"])
        .unwrap_or(fallback)
        .to_string()
}

/// The action a trust policy governs.
const ASSUME: &str = "sts:AssumeRole";

/// A user or role identity with its policies.
struct Holder<'a> {
    arn: &'a str,
    name: &'a str,
    stmts: Vec<Statement>,
    /// The boundary policy's statements, when it has one.
    boundary: Option<Vec<Statement>>,
}

/// Services a passed role runs under, and what the caller must be allowed
/// (on `*`) to make one run with it (after principalmapper's edge checkers).
const PASS_ROLE_SERVICES: &[(&str, &[&str])] = &[
    // A role already in an instance profile: run an instance with it.
    ("ec2.amazonaws.com", &["ec2:RunInstances"]),
    // A role in no instance profile: make one first.
    (
        EC2_NEW_PROFILE,
        &[
            "ec2:RunInstances",
            "iam:CreateInstanceProfile",
            "iam:AddRoleToInstanceProfile",
        ],
    ),
    (
        "lambda.amazonaws.com",
        &["lambda:CreateFunction", "lambda:InvokeFunction"],
    ),
    (
        "cloudformation.amazonaws.com",
        &["cloudformation:CreateStack"],
    ),
    (
        "codebuild.amazonaws.com",
        &["codebuild:CreateProject", "codebuild:StartBuild"],
    ),
    ("ecs-tasks.amazonaws.com", &["ecs:RunTask"]),
];

/// EC2 as the service of a role in no instance profile: EC2 takes a
/// profile, so one must be made and the role added to it.
const EC2_NEW_PROFILE: &str = "ec2.amazonaws.com (a new instance profile)";

/// The services a role can be passed to and run under: those its trust
/// allows, EC2 as [`EC2_NEW_PROFILE`] when no instance profile holds it.
fn pass_targets(r: &Role) -> Vec<&str> {
    trusted_services(&r.trust)
        .into_iter()
        .map(|s| {
            if s == "ec2.amazonaws.com" && r.instance_profiles == 0 {
                EC2_NEW_PROFILE
            } else {
                s
            }
        })
        .collect()
}

/// The service principals a trust policy allows (conditionally or not).
fn trusted_services(trust: &[Statement]) -> Vec<&str> {
    trust
        .iter()
        .filter(|s| s.allow && !s.not_principal)
        .flat_map(|s| {
            s.principals
                .iter()
                .filter(|(t, _)| t == "Service")
                .map(|(_, p)| p.as_str())
        })
        .collect()
}

/// What a set of alternatives holds under when any one of them suffices
/// (each `None` when it holds unconditionally, else its phrase): `None`
/// when one holds unconditionally, else the phrases joined by "or".
fn either(alternatives: Vec<Option<String>>) -> Option<String> {
    let mut v: Vec<String> = Vec::new();
    for a in alternatives {
        match a {
            None => return None,
            Some(p) if !v.contains(&p) => v.push(p),
            Some(_) => {}
        }
    }
    match v.len() {
        0 => None,
        1 => v.pop(),
        _ => Some(format!("({})", v.join(") or ("))),
    }
}

/// What a sequence of steps holds under when each must be allowed: the
/// conditional steps' phrases joined by "; ".
fn all_of(ds: &[&Decision]) -> Option<String> {
    let mut v: Vec<String> = ds.iter().filter_map(|d| d.phrase()).collect();
    v.dedup();
    (!v.is_empty()).then(|| v.join("; "))
}

/// Escalation edges from holder `i`: `add_credential` to another user
/// identity it can create access keys or a console password for (or change
/// that password of); `assume_role` to a role whose trust policy it can
/// rewrite and that its own policies let it assume; `invoke` to a role it
/// can pass to a service it can run (EC2, Lambda, CloudFormation, CodeBuild,
/// ECS). `user_targets` / `role_targets` index `holders`. Each edge says why
/// it exists (the actions it takes) and, when a step is allowed only under a
/// condition, that condition.
fn escalations(
    i: usize,
    h: &Holder<'_>,
    holders: &[Holder<'_>],
    user_targets: &[usize],
    role_targets: &[(usize, Vec<&str>)],
) -> Vec<DelegationRecord> {
    const KEYS: &[&str] = &[
        "iam:CreateAccessKey",
        "iam:CreateLoginProfile",
        "iam:UpdateLoginProfile",
    ];
    const TRUST: &str = "iam:UpdateAssumeRolePolicy";
    const PASS: &str = "iam:PassRole";
    let may = |action: &str| {
        h.stmts
            .iter()
            .any(|s| s.allow && applies_to_action(s, action))
    };
    let (keys, trust, pass) = (KEYS.iter().any(|a| may(a)), may(TRUST), may(PASS));
    if !(keys || trust || pass) {
        return vec![];
    }
    let all: Vec<&Statement> = h.stmts.iter().collect();
    let boundary: Option<Vec<&Statement>> = h.boundary.as_ref().map(|b| b.iter().collect());
    let decide =
        |action: &str, resource: &str| evaluate(&all, boundary.as_deref(), action, resource);
    let mut out = Vec::new();
    for &u in user_targets.iter().filter(|_| keys) {
        if u == i {
            continue;
        }
        let target = holders[u].arn;
        let allowed: Vec<(&str, Decision)> = KEYS
            .iter()
            .map(|a| (*a, decide(a, target)))
            .filter(|(_, d)| d.allowed())
            .collect();
        if allowed.is_empty() {
            continue;
        }
        let actions: Vec<&str> = allowed.iter().map(|(a, _)| *a).collect();
        let ds: Vec<&Decision> = allowed.iter().map(|(_, d)| d).collect();
        out.push(
            DelegationRecord::new(h.arn, target, DelegationKind::AddCredential)
                .because(actions.join(", "))
                .when(either(ds.iter().map(|d| d.phrase()).collect())),
        );
    }
    // The services it can run a passed role under, with the decisions that
    // let it (on `*`).
    let runs: Vec<(&str, &[&str], Vec<Decision>)> = PASS_ROLE_SERVICES
        .iter()
        .filter(|_| pass)
        .map(|(s, needs)| (*s, *needs, needs.iter().map(|a| decide(a, "*")).collect()))
        .filter(|(_, _, ds): &(&str, &[&str], Vec<Decision>)| ds.iter().all(Decision::allowed))
        .collect();
    if !trust && runs.is_empty() {
        return out;
    }
    for (r, services) in role_targets {
        if *r == i {
            continue;
        }
        let target = holders[*r].arn;
        if trust {
            // Once rewritten, the trust names the caller's ARN, which
            // suffices in the same account (IAM JSON Principal element):
            // the caller's own policies need not allow sts:AssumeRole; an
            // explicit deny there still stops it, and a role's boundary
            // still caps it (aws_policy::trust_decision).
            let named = statements(&serde_json::json!({"Statement": {
                "Effect": "Allow", "Principal": {"AWS": h.arn}, "Action": ASSUME}}));
            let rewrite = decide(TRUST, target);
            let assume = trust_decision(&named, &all, boundary.as_deref(), h.arn, target, ASSUME);
            if rewrite.allowed() && assume.allowed() {
                out.push(
                    DelegationRecord::new(h.arn, target, DelegationKind::AssumeRole)
                        .because(format!("{TRUST}, then {ASSUME}"))
                        .when(all_of(&[&rewrite, &assume])),
                );
            }
        }
        let via: Vec<&(&str, &[&str], Vec<Decision>)> = runs
            .iter()
            .filter(|(s, _, _)| services.contains(s))
            .collect();
        if via.is_empty() {
            continue;
        }
        let passing = decide(PASS, target);
        if !passing.allowed() {
            continue;
        }
        let why: Vec<String> = via
            .iter()
            .map(|(s, needs, _)| format!("{PASS} to {s}, then {}", needs.join(" + ")))
            .collect();
        // Any one service suffices; each needs the pass and its own actions.
        let each: Vec<Option<String>> = via
            .iter()
            .map(|(_, _, ds)| {
                let mut steps: Vec<&Decision> = vec![&passing];
                steps.extend(ds.iter());
                all_of(&steps)
            })
            .collect();
        out.push(
            DelegationRecord::new(h.arn, target, DelegationKind::Invoke)
                .because(why.join(" or "))
                .when(either(each)),
        );
    }
    out
}

impl Source for AwsIamSource {
    async fn fetch(&self, ctx: &SyncContext) -> Result<Fetched> {
        if super::aws_auth::opt(&ctx.source.settings, "member_role_name").is_some() {
            return super::aws_org::fetch(ctx).await;
        }
        let iam = Iam::from_context(ctx)?;
        let account_name =
            super::aws_auth::opt(&ctx.source.settings, "account_name").unwrap_or_default();
        let (mut f, _) = fetch_account(&iam, ctx, &account_name).await?;
        // Who Custodian signs in as: an access key's user is known from the
        // keys just read; anyone else is asked (sts:GetCallerIdentity).
        let settings = &ctx.source.settings;
        let own_key = match super::aws_auth::Mode::of(settings) {
            super::aws_auth::Mode::AccessKey { key_id }
                if super::aws_auth::opt(settings, "role_arn").is_none() =>
            {
                Some(key_id)
            }
            _ => None,
        };
        f.signed_in_as = match own_key {
            Some(k) => f
                .credentials
                .iter()
                .find(|c| c.kind == CredentialKind::AccessKey && c.external_id == k)
                .map(|c| c.identity.clone()),
            None => match iam.auth.caller_identity().await {
                Ok((_, caller)) => signed_in_identity(&caller, &f.identities),
                Err(e) => {
                    f.warn(format!(
                        "could not tell which identity Custodian signs in as (sts:GetCallerIdentity): {}",
                        e.message
                    ));
                    None
                }
            },
        };
        Ok(f)
    }
}

/// The identity (external id) a caller ARN of `sts:GetCallerIdentity` is:
/// an IAM user's ARN as it is, an assumed-role session
/// (`arn:aws:sts::ACCT:assumed-role/NAME/SESSION`) the role of that name in
/// that account (whatever its path); `None` for the root user or anything
/// not among `identities`.
pub(crate) fn signed_in_identity(caller: &str, identities: &[IdentityRecord]) -> Option<String> {
    let parts: Vec<&str> = caller.splitn(6, ':').collect();
    let [_, partition, service, _, account, resource] = parts.as_slice() else {
        return None;
    };
    let wanted: Box<dyn Fn(&str) -> bool> = match (*service, resource.split_once('/')) {
        ("sts", Some(("assumed-role", rest))) => {
            let role = rest.split('/').next().unwrap_or_default().to_string();
            let prefix = format!("arn:{partition}:iam::{account}:role/");
            Box::new(move |ext: &str| {
                ext.strip_prefix(&prefix)
                    .is_some_and(|path| path.rsplit('/').next() == Some(role.as_str()))
            })
        }
        ("iam", Some(("user", _))) => {
            let c = caller.to_string();
            Box::new(move |ext: &str| ext == c)
        }
        _ => return None,
    };
    identities
        .iter()
        .find(|i| wanted(&i.external_id))
        .map(|i| i.external_id.clone())
}

/// What cross-account trust needs of one account, beside its records: each
/// role's trust policy, and each user and role identity's statements that
/// bear on `sts:AssumeRole` (and its boundary's).
#[derive(Debug, Clone, Default)]
pub(crate) struct TrustView {
    /// (role ARN, trust statements).
    pub roles: Vec<(String, Vec<Statement>)>,
    pub principals: Vec<AssumeView>,
}

/// A user or role identity's `sts:AssumeRole` statements.
#[derive(Debug, Clone)]
pub(crate) struct AssumeView {
    pub arn: String,
    pub stmts: Vec<Statement>,
    pub boundary: Option<Vec<Statement>>,
}

/// One account's users, roles, keys, grants and edges, read with `iam`'s
/// keys; `account_name` labels it (descriptions, the fallback
/// environment). Also what cross-account trust needs of it.
pub(crate) async fn fetch_account(
    iam: &Iam,
    ctx: &SyncContext,
    account_name: &str,
) -> Result<(Fetched, TrustView)> {
    {
        let account_name = account_name.to_string();
        let g = gaad(iam, ctx).await?;
        let work: Vec<(String, String)> = g
            .users
            .iter()
            .map(|u| (u.name.clone(), u.arn.clone()))
            .collect();
        let total = work.len() as u64;
        let creds = super::bounded(TASKS, "AWS IAM", work, |(name, arn)| {
            user_creds(iam.clone(), name, arn)
        })
        .await?;
        ctx.report("identities", 0, total, Some(total));
        let creds: HashMap<String, UserCreds> =
            creds.into_iter().map(|c| (c.arn.clone(), c)).collect();

        let account = g
            .users
            .iter()
            .map(|u| &u.arn)
            .chain(g.roles.iter().map(|r| &r.arn))
            .find_map(|a| account_of(a));
        let label = match (account_name.as_str(), account) {
            ("", Some(id)) => format!("account {id}"),
            ("", None) => "the account".to_string(),
            (name, Some(id)) => format!("account {name} ({id})"),
            (name, None) => format!("account {name}"),
        };
        let mut f = Fetched::new(FetchMode::Full);

        // Users: people or identities.
        let mut humans: HashMap<String, String> = HashMap::new(); // user name → ARN
        let mut machines: Vec<(&User, (IdentityKind, Option<AgentClass>))> = Vec::new();
        for u in &g.users {
            let c = creds.get(&u.arn);
            let has_keys = c.is_some_and(|c| !c.keys.is_empty());
            let has_login = c.is_some_and(|c| c.login.is_some());
            let marked = tagged_kind(&u.tags).or_else(|| {
                (u.path.starts_with("/svc/") || truthy_tag(&u.tags, "service"))
                    .then_some((IdentityKind::ServiceAccount, None))
            });
            match marked {
                None if has_login && !has_keys => {
                    humans.insert(u.name.clone(), u.arn.clone());
                    f.people.push(PersonRecord {
                        external_id: u.arn.clone(),
                        display_name: tag(&u.tags, &["name", "displayname"])
                            .unwrap_or(&u.name)
                            .to_string(),
                        email: tag(&u.tags, &["email", "mail"])
                            .map(str::to_string)
                            .or_else(|| u.name.contains('@').then(|| u.name.clone()))
                            .unwrap_or_default(),
                        department: tag(&u.tags, &["department", "team"])
                            .unwrap_or_default()
                            .to_string(),
                        title: tag(&u.tags, &["title", "jobtitle"])
                            .unwrap_or_default()
                            .to_string(),
                        manager: tag(&u.tags, &["manager"])
                            .filter(|m| m.contains('@'))
                            .map(|m| PersonKey::Email(m.to_string())),
                        status: PersonStatus::Active,
                        left_at: None,
                    });
                }
                marked => {
                    machines.push((u, marked.unwrap_or((IdentityKind::ServiceAccount, None))))
                }
            }
        }
        let owner_of = |tags: &Tags| -> Option<PersonKey> {
            let o = tag(tags, &["owner"])?;
            if o.contains('@') {
                Some(PersonKey::Email(o.to_string()))
            } else {
                humans.get(o).map(|arn| PersonKey::ExternalId(arn.clone()))
            }
        };

        for (u, (kind, class)) in &machines {
            let c = creds.get(&u.arn);
            let keys = c.map(|c| c.keys.as_slice()).unwrap_or_default();
            let login = c.and_then(|c| c.login);
            let mut how = Vec::new();
            let active = keys.iter().filter(|k| k.active).count();
            if !keys.is_empty() {
                how.push(format!("{active} active of {} access keys", keys.len()));
            }
            if login.is_some() {
                how.push("a console password".to_string());
            }
            let how = if how.is_empty() {
                "no credentials".to_string()
            } else {
                how.join(" and ")
            };
            f.identities.push(IdentityRecord {
                external_id: u.arn.clone(),
                name: u.name.clone(),
                kind: *kind,
                agent_class: *class,
                status: IdentityStatus::Active,
                description: tag(&u.tags, &["description", "purpose"])
                    .map(str::to_string)
                    .unwrap_or_else(|| {
                        format!("IAM user {}{} in {label}, with {how}", u.path, u.name)
                    }),
                owner: owner_of(&u.tags),
                builder: None,
                team: tag(&u.tags, &["team"]).unwrap_or_default().to_string(),
                environment: environment(&u.tags, &account_name),
                registration: None,
                created_at: u.created,
                last_used_at: keys.iter().filter_map(|k| k.last_used).max(),
            });
            for k in keys {
                f.credentials.push(CredentialRecord {
                    identity: u.arn.clone(),
                    external_id: k.id.clone(),
                    kind: CredentialKind::AccessKey,
                    display_name: if k.active {
                        format!("access key {}", k.id)
                    } else {
                        format!("access key {} (inactive)", k.id)
                    },
                    created_at: k.created,
                    expires_at: None,
                    last_rotated_at: k.created,
                    last_used_at: k.last_used,
                });
            }
            if let Some(created) = login {
                f.credentials.push(CredentialRecord {
                    identity: u.arn.clone(),
                    external_id: format!("{}#login-profile", u.arn),
                    kind: CredentialKind::Password,
                    display_name: "console password".into(),
                    created_at: created,
                    expires_at: None,
                    last_rotated_at: None,
                    last_used_at: None,
                });
            }
        }
        let identity_arns: HashSet<&str> = machines
            .iter()
            .map(|(u, _)| u.arn.as_str())
            .chain(g.roles.iter().map(|r| r.arn.as_str()))
            .collect();
        let human_arns: HashSet<&str> = humans.values().map(String::as_str).collect();

        // Each principal's identity-based statements (inline, attached
        // managed, and for users their groups') and permissions boundary.
        let mut missing: Vec<String> = Vec::new();
        let mut managed = |arns: &[String], out: &mut Vec<Statement>| {
            for a in arns {
                match g.policies.get(a) {
                    Some(s) => out.extend(s.iter().cloned()),
                    None => missing.push(a.clone()),
                }
            }
        };
        let mut holders: Vec<Holder> = Vec::new();
        for (u, _) in &machines {
            let mut s = u.inline.clone();
            managed(&u.attached, &mut s);
            for gname in &u.groups {
                if let Some(gr) = g.groups.get(gname) {
                    s.extend(gr.inline.iter().cloned());
                    managed(&gr.attached, &mut s);
                }
            }
            let mut b = None;
            if let Some(arn) = &u.boundary {
                let mut v = Vec::new();
                managed(std::slice::from_ref(arn), &mut v);
                b = g.policies.contains_key(arn).then_some(v);
            }
            holders.push(Holder {
                arn: &u.arn,
                name: &u.name,
                stmts: s,
                boundary: b,
            });
        }
        for r in &g.roles {
            let mut s = r.inline.clone();
            managed(&r.attached, &mut s);
            let mut b = None;
            if let Some(arn) = &r.boundary {
                let mut v = Vec::new();
                managed(std::slice::from_ref(arn), &mut v);
                b = g.policies.contains_key(arn).then_some(v);
            }
            holders.push(Holder {
                arn: &r.arn,
                name: &r.name,
                stmts: s,
                boundary: b,
            });
        }
        missing.sort();
        missing.dedup();
        for a in missing {
            f.warn(format!(
                "the managed policy {a} is attached (or a boundary) but missing from the authorization details; it was left out"
            ));
        }
        // The statements that bear on `sts:AssumeRole`, per principal.
        let assume_view: Vec<(Vec<&Statement>, Option<Vec<&Statement>>)> = holders
            .iter()
            .map(|h| {
                (
                    h.stmts
                        .iter()
                        .filter(|s| applies_to_action(s, ASSUME))
                        .collect(),
                    h.boundary
                        .as_ref()
                        .map(|b| b.iter().filter(|s| applies_to_action(s, ASSUME)).collect()),
                )
            })
            .collect();
        // Who may assume a role its account trusts: whose policies allow it somewhere.
        let may_assume: Vec<usize> = (0..holders.len())
            .filter(|&i| assume_view[i].0.iter().any(|s| s.allow))
            .collect();
        let holder_index: HashMap<&str, usize> = holders
            .iter()
            .enumerate()
            .map(|(i, h)| (h.arn, i))
            .collect();

        // Roles and their trust.
        // (from, to) → the condition the trust edge holds under.
        let mut trust_edges: HashMap<(String, String), Option<String>> = HashMap::new();
        for r in &g.roles {
            let (kind, class) = match tagged_kind(&r.tags) {
                Some(k) => k,
                None => (IdentityKind::Workload, None),
            };
            let role_account = account_of(&r.arn).unwrap_or_default();
            let mut notes: Vec<String> = Vec::new();
            let mut note = |n: String| {
                if !notes.contains(&n) {
                    notes.push(n);
                }
            };
            let mut candidates: Vec<usize> = Vec::new();
            for s in r.trust.iter().filter(|s| s.allow) {
                if s.not_principal {
                    note(format!(
                        "everyone except {}",
                        s.principals
                            .iter()
                            .map(|p| p.1.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                    continue;
                }
                for (ptype, p) in &s.principals {
                    match ptype.as_str() {
                        "AWS" => {}
                        "Service" => {
                            note(format!("service {p}"));
                            continue;
                        }
                        "Federated" => {
                            note(format!("federated {p}"));
                            continue;
                        }
                        other => {
                            note(format!("{other} {p}"));
                            continue;
                        }
                    }
                    if p == "*" {
                        note("anyone (any AWS principal)".into());
                        candidates.extend(0..holders.len());
                        continue;
                    }
                    if let Some(acct) = whole_account(p) {
                        if acct == role_account {
                            note("this account (any principal its policies allow)".into());
                            candidates.extend(may_assume.iter().copied());
                        } else {
                            note(format!("account {acct}"));
                        }
                        continue;
                    }
                    let Some(acct) = account_of(p) else {
                        note(format!("unknown or deleted principal {p}"));
                        continue;
                    };
                    let resource = p.splitn(6, ':').nth(5).unwrap_or_default();
                    if acct != role_account {
                        note(format!("{resource} in account {acct}"));
                    } else if identity_arns.contains(p.as_str()) {
                        if let Some(&i) = holder_index.get(p.as_str()) {
                            candidates.push(i);
                        }
                    } else if human_arns.contains(p.as_str()) {
                        note(format!("person {resource}"));
                    } else {
                        note(format!("unknown {resource}"));
                    }
                }
            }
            candidates.sort_unstable();
            candidates.dedup();
            let mut conditional: Vec<String> = Vec::new();
            for i in candidates {
                let h = &holders[i];
                if h.arn == r.arn {
                    continue;
                }
                let (stmts, boundary) = &assume_view[i];
                let d = trust_decision(&r.trust, stmts, boundary.as_deref(), h.arn, &r.arn, ASSUME);
                if !d.allowed() {
                    continue;
                }
                if let Decision::Conditional(_) = d {
                    conditional.push(format!("{} only if {}", h.name, d.condition()));
                }
                // Two trust statements: the unconditional one decides.
                let condition = d.phrase();
                trust_edges
                    .entry((h.arn.to_string(), r.arn.clone()))
                    .and_modify(|c| {
                        if condition.is_none() {
                            *c = None;
                        }
                    })
                    .or_insert(condition);
            }
            let mut description = tag(&r.tags, &["description", "purpose"])
                .map(str::to_string)
                .unwrap_or_else(|| format!("IAM role {}{} in {label}", r.path, r.name));
            if !notes.is_empty() {
                description.push_str(&format!("; trusted by {}", notes.join(", ")));
            }
            conditional.sort();
            if !conditional.is_empty() {
                description.push_str(&format!(
                    "; assumable under conditions by {}",
                    conditional.join(", ")
                ));
            }
            f.identities.push(IdentityRecord {
                external_id: r.arn.clone(),
                name: r.name.clone(),
                kind,
                agent_class: class,
                status: IdentityStatus::Active,
                description,
                owner: owner_of(&r.tags),
                builder: None,
                team: tag(&r.tags, &["team"]).unwrap_or_default().to_string(),
                environment: environment(&r.tags, &account_name),
                registration: None,
                created_at: r.created,
                last_used_at: r.last_used,
            });
        }
        let mut edges: Vec<DelegationRecord> = trust_edges
            .into_iter()
            .map(|((a, b), c)| DelegationRecord::new(a, b, DelegationKind::AssumeRole).when(c))
            .collect();

        // Each principal's effective grants; escalation edges from the ones
        // that are not already admin.
        let perms: Vec<Vec<EffectiveGrant>> = holders
            .iter()
            .map(|h| {
                let refs: Vec<&Statement> = h.stmts.iter().collect();
                let boundary: Option<Vec<&Statement>> =
                    h.boundary.as_ref().map(|b| b.iter().collect());
                effective_grants(&refs, boundary.as_deref(), h.arn)
            })
            .collect();
        let user_targets: Vec<usize> = (0..machines.len()).collect();
        let role_targets: Vec<(usize, Vec<&str>)> = g
            .roles
            .iter()
            .enumerate()
            .map(|(k, r)| (machines.len() + k, pass_targets(r)))
            .collect();
        for (i, h) in holders.iter().enumerate() {
            if perms[i].iter().any(|p| p.privilege == Privilege::Admin) {
                continue;
            }
            edges.extend(escalations(i, h, &holders, &user_targets, &role_targets));
        }
        // One edge per (from, to, kind): an unconditional one first, then
        // the trust edge (no reason) before an escalation to the same role.
        edges.sort_by(|a, b| {
            (
                &a.from,
                &a.to,
                a.kind.as_str(),
                a.condition.is_some(),
                a.reason.is_some(),
            )
                .cmp(&(
                    &b.from,
                    &b.to,
                    b.kind.as_str(),
                    b.condition.is_some(),
                    b.reason.is_some(),
                ))
        });
        edges.dedup_by(|b, a| (&a.from, &a.to, a.kind) == (&b.from, &b.to, b.kind));
        f.delegations = edges;

        // Grants.
        let mut resources: BTreeMap<String, ResourceRecord> = BTreeMap::new();
        for (h, perms) in holders.iter().zip(perms) {
            for g in perms {
                let EffectiveGrant {
                    permission,
                    resource,
                    privilege,
                    high_consequence,
                    condition,
                    excluded,
                } = g;
                if condition.is_some() || !excluded.is_empty() {
                    f.grant_conditions.insert(
                        (h.arn.to_string(), resource.clone(), permission.clone()),
                        GrantCondition {
                            condition,
                            excluded,
                        },
                    );
                }
                resources
                    .entry(resource.clone())
                    .or_insert_with(|| ResourceRecord {
                        external_id: resource.clone(),
                        name: if resource == "*" {
                            format!("* (every resource in {label})")
                        } else {
                            resource.clone()
                        },
                        kind: format!(
                            "aws:{}",
                            resource_service(&resource).unwrap_or_else(|| "*".into())
                        ),
                        sensitivity: resource_sensitivity(&resource),
                        environment: account_name.clone(),
                    });
                f.grants.push(GrantRecord {
                    identity: h.arn.to_string(),
                    resource,
                    permission,
                    privilege,
                    high_consequence,
                    last_used_at: None,
                });
            }
        }
        f.resources = resources.into_values().collect();
        let view = TrustView {
            roles: g
                .roles
                .iter()
                .map(|r| (r.arn.clone(), r.trust.clone()))
                .collect(),
            principals: holders
                .iter()
                .zip(&assume_view)
                .map(|(h, (stmts, boundary))| AssumeView {
                    arn: h.arn.to_string(),
                    stmts: stmts.iter().map(|s| (*s).clone()).collect(),
                    boundary: boundary
                        .as_ref()
                        .map(|b| b.iter().map(|s| (*s).clone()).collect()),
                })
                .collect(),
        };
        Ok((f, view))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_cover_whole_expansions_only() {
        assert!(covers("s3:*", "s3:getobject"));
        assert!(covers("s3:*", "s3:*"));
        assert!(covers("s3:*", "s3:get*"));
        assert!(covers("*", "*"));
        assert!(!covers("s3:deletebucket", "s3:*"));
        assert!(!covers("s3:get?", "s3:get*"));
        assert!(covers("arn:aws:s3:::b/*", "arn:aws:s3:::b/k/x"));
        assert!(!covers("arn:aws:s3:::b", "arn:aws:s3:::b/k"));
        assert!(covers("sts:assume*", "sts:assumerole"));
    }

    #[test]
    fn privilege_rule() {
        assert_eq!(action_privilege("*"), (Privilege::Admin, true));
        assert_eq!(action_privilege("iam:*"), (Privilege::Admin, true));
        assert_eq!(action_privilege("iam:PassRole"), (Privilege::Write, true));
        assert_eq!(action_privilege("iam:Put*"), (Privilege::Admin, true));
        assert_eq!(action_privilege("iam:ListUsers"), (Privilege::Read, false));
        assert_eq!(action_privilege("sts:AssumeRole"), (Privilege::Write, true));
        assert_eq!(action_privilege("s3:GetObject"), (Privilege::Read, false));
        assert_eq!(action_privilege("s3:*"), (Privilege::Write, true));
        assert_eq!(
            action_privilege("dynamodb:PutItem"),
            (Privilege::Write, true)
        );
        assert_eq!(
            action_privilege("ec2:StartInstances"),
            (Privilege::Write, false)
        );
        assert_eq!(resource_sensitivity("*"), Sensitivity::Critical);
        assert_eq!(
            resource_sensitivity("arn:aws:iam::1:role/x"),
            Sensitivity::Critical
        );
        assert_eq!(resource_sensitivity("arn:aws:s3:::b"), Sensitivity::High);
        assert_eq!(
            resource_sensitivity("arn:aws:ec2:us-east-1:1:instance/i"),
            Sensitivity::Medium
        );
    }

    #[test]
    fn documents_decode_when_encoded_and_denies_subtract() {
        let enc = "%7B%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%5B%22s3%3AGetObject%22%2C%22s3%3APutObject%22%5D%2C%22Resource%22%3A%22arn%3Aaws%3As3%3A%3A%3Ab%2F%2A%22%7D%5D%7D";
        let allow = statements(&decode_document(enc).unwrap());
        let deny = statements(
            &decode_document(
                r#"{"Statement":{"Effect":"Deny","Action":"s3:Put*","Resource":"*"}}"#,
            )
            .unwrap(),
        );
        let cond = statements(&decode_document(
            r#"{"Statement":{"Effect":"Deny","Action":"s3:*","Resource":"*","Condition":{"Bool":{"aws:MultiFactorAuthPresent":"false"}}}}"#,
        ).unwrap());
        let all: Vec<&Statement> = allow.iter().chain(&deny).chain(&cond).collect();
        let p = permissions(&all);
        assert_eq!(
            p,
            vec![(
                "s3:GetObject".into(),
                "arn:aws:s3:::b/*".into(),
                Privilege::Read,
                false
            )]
        );
    }

    #[test]
    fn boundaries_cap_grants_and_admin_needs_the_whole_account() {
        let id = statements(&serde_json::json!({"Statement": [
            {"Effect": "Allow", "Action": "*", "Resource": "*"},
            {"Effect": "Allow", "Action": "iam:CreateAccessKey", "Resource": "arn:aws:iam::1:user/me"}]}));
        let b = statements(&serde_json::json!({"Statement": [
            {"Effect": "Allow", "Action": "s3:Get*", "Resource": "arn:aws:s3:::logs/*"},
            {"Effect": "Allow", "Action": "iam:CreateAccessKey", "Resource": "*"}]}));
        let refs: Vec<&Statement> = id.iter().collect();
        let brefs: Vec<&Statement> = b.iter().collect();
        let me = "arn:aws:iam::1:user/me";
        assert_eq!(
            effective_permissions(&refs, Some(&brefs), me),
            vec![
                (
                    "iam:CreateAccessKey".into(),
                    "*".into(),
                    Privilege::Admin,
                    true
                ),
                (
                    "iam:CreateAccessKey".into(),
                    me.into(),
                    Privilege::Write,
                    true
                ),
                (
                    "s3:Get*".into(),
                    "arn:aws:s3:::logs/*".into(),
                    Privilege::Read,
                    false
                ),
            ],
            "the boundary narrows * to its own allows; keys for oneself are no admin"
        );
        let star_on_bucket = statements(&serde_json::json!({"Statement":
            {"Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::b"}}));
        let refs: Vec<&Statement> = star_on_bucket.iter().collect();
        assert_eq!(
            effective_permissions(&refs, None, me)[0].2,
            Privilege::Write
        );
        let power = statements(&serde_json::json!({"Statement":
            {"Effect": "Allow", "NotAction": ["iam:*", "organizations:*"], "Resource": "*"}}));
        let refs: Vec<&Statement> = power.iter().collect();
        assert_eq!(
            effective_permissions(&refs, None, me),
            vec![(
                "NotAction:iam:*,organizations:*".into(),
                "*".into(),
                Privilege::Write,
                true
            )]
        );
    }

    #[test]
    fn partial_conditional_and_not_denies_limit_grants() {
        let me = "arn:aws:iam::1:user/me";
        type Row = (String, String, Option<String>, Vec<String>);
        let grants = |v: serde_json::Value| -> Vec<Row> {
            let st = statements(&serde_json::json!({ "Statement": v }));
            let refs: Vec<&Statement> = st.iter().collect();
            effective_grants(&refs, None, me)
                .into_iter()
                .map(|g| (g.permission, g.resource, g.condition, g.excluded))
                .collect()
        };
        let row = |p: &str, r: &str, c: Option<&str>, x: &[&str]| -> Row {
            (
                p.into(),
                r.into(),
                c.map(str::to_string),
                x.iter().map(|x| x.to_string()).collect(),
            )
        };
        // The whole action denied on part of the resource: kept, not on it.
        assert_eq!(
            grants(serde_json::json!([
                {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
                {"Effect": "Deny", "Action": "s3:*", "Resource": "arn:aws:s3:::secret*"}])),
            [row(
                "s3:*",
                "*",
                Some("not on arn:aws:s3:::secret*"),
                &["arn:aws:s3:::secret*"]
            )]
        );
        // Part of the actions denied: kept, except those.
        assert_eq!(
            grants(serde_json::json!([
                {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
                {"Effect": "Deny", "Action": "s3:DeleteBucket", "Resource": "*"}])),
            [row("s3:*", "*", Some("except s3:DeleteBucket"), &[])]
        );
        // A conditional deny: allowed unless its condition holds (for the
        // part it covers, when partial); a conditional allow: only if.
        let mfa = serde_json::json!({"Bool": {"aws:MultiFactorAuthPresent": "false"}});
        assert_eq!(
            grants(serde_json::json!([
                {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*",
                 "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}},
                {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::c"},
                {"Effect": "Deny", "Action": "s3:*", "Resource": "*", "Condition": mfa},
                {"Effect": "Deny", "Action": "s3:Delete*", "Resource": "*", "Condition": mfa}])),
            [
                row(
                    "s3:GetObject",
                    "arn:aws:s3:::b/*",
                    Some("only if IpAddress aws:SourceIp=10.0.0.0/8; unless Bool aws:MultiFactorAuthPresent=false"),
                    &[]
                ),
                row(
                    "s3:*",
                    "arn:aws:s3:::c",
                    Some("unless Bool aws:MultiFactorAuthPresent=false or Bool aws:MultiFactorAuthPresent=false (for s3:Delete*)"),
                    &[]
                ),
            ]
        );
        // NotAction denies deny what their list leaves out: `*` narrows to
        // s3:*, an EC2 action goes, an S3 one stays.
        let not_s3 = serde_json::json!({"Effect": "Deny", "NotAction": "s3:*", "Resource": "*"});
        assert_eq!(
            grants(serde_json::json!([
                {"Effect": "Allow", "Action": ["*", "ec2:RunInstances", "s3:GetObject"], "Resource": "*"},
                not_s3])),
            [
                row("s3:*", "*", None, &[]),
                row("s3:GetObject", "*", None, &[])
            ]
        );
        // NotResource denies likewise: `*` narrows to the one prefix left,
        // another bucket goes.
        assert_eq!(
            grants(serde_json::json!([
                {"Effect": "Allow", "Action": "s3:GetObject", "Resource": ["*", "arn:aws:s3:::private/x"]},
                {"Effect": "Deny", "Action": "s3:*", "NotResource": "arn:aws:s3:::public/*"}])),
            [row("s3:GetObject", "arn:aws:s3:::public/*", None, &[])]
        );
        // The narrowed `*` is no admin any more.
        let st = statements(&serde_json::json!({"Statement": [
            {"Effect": "Allow", "Action": "*", "Resource": "*"}, not_s3]}));
        let refs: Vec<&Statement> = st.iter().collect();
        assert_eq!(
            effective_grants(&refs, None, me)[0].privilege,
            Privilege::Write
        );
    }

    #[test]
    fn the_caller_is_found_among_the_identities() {
        let id = |ext: &str| IdentityRecord {
            external_id: ext.into(),
            name: "x".into(),
            kind: IdentityKind::Workload,
            agent_class: None,
            status: IdentityStatus::Active,
            description: String::new(),
            owner: None,
            builder: None,
            team: String::new(),
            environment: String::new(),
            registration: None,
            created_at: None,
            last_used_at: None,
        };
        let ids = [
            id("arn:aws:iam::1:role/ops/audit"),
            id("arn:aws:iam::2:role/audit"),
            id("arn:aws:iam::1:user/svc"),
        ];
        assert_eq!(
            signed_in_identity("arn:aws:sts::1:assumed-role/audit/custodian", &ids).as_deref(),
            Some("arn:aws:iam::1:role/ops/audit")
        );
        assert_eq!(
            signed_in_identity("arn:aws:iam::1:user/svc", &ids).as_deref(),
            Some("arn:aws:iam::1:user/svc")
        );
        assert_eq!(signed_in_identity("arn:aws:iam::1:root", &ids), None);
        assert_eq!(
            signed_in_identity("arn:aws:sts::3:assumed-role/audit/c", &ids),
            None
        );
    }

    #[test]
    fn organisation_sources_write_nothing_back() {
        let ctx = |settings: serde_json::Value| SyncContext {
            source: crate::store::sync::SourceView {
                id: 1,
                kind: "aws".into(),
                name: "org".into(),
                settings,
                has_cursor: false,
                last_run: None,
                signed_in_as: None,
            },
            http: super::super::http::HttpClient::new(
                Default::default(),
                super::super::http::Cancel::new(),
            )
            .unwrap(),
            secret: None,
            progress: std::sync::Arc::new(|_| {}),
            cursor: None,
        };
        let e = Iam::from_context(&ctx(serde_json::json!({"member_role_name": "Audit"})))
            .err()
            .unwrap();
        assert!(
            e.message.contains("write-back is for one-account"),
            "{}",
            e.message
        );
        assert!(Iam::from_context(&ctx(serde_json::json!({"profile": "p"}))).is_ok());
    }

    #[test]
    fn a_page_needs_its_result_element() {
        let mut g = Gaad::default();
        let e = read_gaad_page("<X><Y/></X>", &mut g).unwrap_err();
        assert_eq!(e.code, ErrorCode::MalformedResponse);
        let e = read_gaad_page("<GetAccountAuthorizationDetailsResponse><Get", &mut g).unwrap_err();
        assert_eq!(e.code, ErrorCode::MalformedResponse);
    }
}
