//! AWS organisation mode: one `aws` source reads every account of an AWS
//! Organization (setting `member_role_name`).
//!
//! The source signs in as usual ([`super::aws_auth`]: the credential chain
//! or an access key, then `role_arn` if set), in the organisation's
//! management account or a delegated administrator account. It then:
//! - asks `sts:GetCallerIdentity` who it is (its account is read with
//!   these keys, no role assumed);
//! - lists the organisation's accounts (`organizations:ListAccounts`,
//!   every page; accounts whose state is not `ACTIVE` are skipped);
//! - in every other account assumes the role `member_role_name`
//!   (`arn:PARTITION:iam::ACCOUNT:role/NAME`, session `custodian`; its
//!   temporary keys are refreshed before they expire) and reads the account
//!   as a one-account source does ([`super::aws::fetch_account`]), at most
//!   `parallel_accounts` (default 4) accounts at once;
//! - merges them into one fetch. Every identity's ARN names its account;
//!   descriptions say "in account NAME (ID)", and an identity without an
//!   `environment` tag has its account's name as environment. Resources
//!   are kept per account (external id `ACCOUNT/ARN`, named by the ARN or
//!   "* (every resource in account NAME (ID))"): the same pattern in two
//!   accounts is two resources.
//! - adds the **cross-account trust edges** ([`cross_account_edges`]): a
//!   role whose trust policy names a principal of another account of the
//!   organisation (its ARN, its account, or `*`) can be assumed by that
//!   principal when its own policies also allow `sts:AssumeRole` on the
//!   role (AWS's rule across accounts: both sides must allow it); each
//!   such pair is an `assume_role` delegation, conditional when either side
//!   is. Blast radius, `who-can-reach` and `paths-to-admin` then follow
//!   chains across accounts.
//!
//! An account whose role cannot be assumed (or whose IAM cannot be read) is
//! a run warning naming the account and why; the others are imported.
//! Such a run is applied as an increment: what it read replaces what the
//! cache had of those identities, and nothing is marked deleted (the
//! unread account's identities stay as the last run left them, rather than
//! all being taken for deleted).
//!
//! Write-back (disable, revoke a key) is for one-account sources.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::Value;

use super::aws::{fetch_account, AssumeView, Iam, TrustView};
use super::aws_auth::{opt, Auth};
use super::aws_policy::{account_of, evaluate, trust_decision, whole_account, Decision, Statement};
use super::records::*;
use super::SyncContext;
use crate::error::{Error, ErrorCode, Result};
use crate::model::DelegationKind;

pub const DEFAULT_PARALLEL_ACCOUNTS: usize = 4;
const LIST_ACCOUNTS_TARGET: &str = "AWSOrganizationsV20161128.ListAccounts";
const JSON_CONTENT_TYPE: &str = "application/x-amz-json-1.1";
const ASSUME: &str = "sts:AssumeRole";

/// What reading one account gave.
type AccountResult = std::result::Result<(Fetched, TrustView), Error>;

/// One account of the organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    pub name: String,
}

/// Reads one `ListAccounts` page: the active accounts and the next token.
pub fn read_accounts_page(body: &str) -> Result<(Vec<Account>, Option<String>)> {
    let bad = |what: &str| {
        Error::new(
            ErrorCode::MalformedResponse,
            format!("AWS Organizations ListAccounts: {what}"),
        )
    };
    let v: Value = serde_json::from_str(body).map_err(|_| bad("the response is not JSON"))?;
    let list = v
        .get("Accounts")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("the response has no Accounts list"))?;
    let mut out = Vec::new();
    for a in list {
        let id = a
            .get("Id")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|i| i.len() == 12 && i.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| bad("an account has no 12-digit Id"))?;
        // `State` replaces the deprecated `Status`; either says ACTIVE.
        let state = a
            .get("State")
            .or_else(|| a.get("Status"))
            .and_then(Value::as_str)
            .unwrap_or("ACTIVE");
        if state != "ACTIVE" {
            continue;
        }
        let name = a
            .get("Name")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .unwrap_or(id);
        out.push(Account {
            id: id.to_string(),
            name: crate::sanitize::terminal(name).to_string(),
        });
    }
    let next = v
        .get("NextToken")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    Ok((out, next))
}

/// Every active account of the organisation (every page).
pub async fn list_accounts(auth: &Auth) -> Result<Vec<Account>> {
    let e = auth.endpoints().await?;
    let mut out: Vec<Account> = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0usize;
    loop {
        let mut req = serde_json::json!({ "MaxResults": 20 });
        if let Some(t) = &token {
            req["NextToken"] = Value::String(t.clone());
        }
        let body = auth
            .send(
                &e.organizations,
                "organizations",
                "us-east-1",
                JSON_CONTENT_TYPE,
                &[("x-amz-target", LIST_ACCOUNTS_TARGET)],
                req.to_string(),
            )
            .await
            .map_err(|err| {
                Error::new(
                    err.code,
                    format!(
                        "cannot list the organisation's accounts (organizations:ListAccounts, from the management or a delegated administrator account): {}",
                        err.message
                    ),
                )
            })?;
        let (accounts, next) = read_accounts_page(&body)?;
        out.extend(accounts);
        pages += 1;
        match next {
            // A token that repeats would loop for ever.
            Some(t) if Some(&t) != token.as_ref() && pages < 10_000 => token = Some(t),
            _ => break,
        }
    }
    let mut seen = HashSet::new();
    out.retain(|a| seen.insert(a.id.clone()));
    Ok(out)
}

/// The partition of an ARN (`aws`, `aws-cn`, `aws-us-gov`).
fn partition(arn: &str) -> &str {
    arn.split(':')
        .nth(1)
        .filter(|p| !p.is_empty())
        .unwrap_or("aws")
}

/// Each account's label: its name, or "NAME (ID)" when two share a name.
fn labels(accounts: &[Account]) -> HashMap<String, String> {
    let mut count: HashMap<&str, usize> = HashMap::new();
    for a in accounts {
        *count.entry(a.name.as_str()).or_default() += 1;
    }
    accounts
        .iter()
        .map(|a| {
            let l = if count.get(a.name.as_str()).copied().unwrap_or(0) > 1 {
                format!("{} ({})", a.name, a.id)
            } else {
                a.name.clone()
            };
            (a.id.clone(), l)
        })
        .collect()
}

pub async fn fetch(ctx: &SyncContext) -> Result<Fetched> {
    let settings = &ctx.source.settings;
    let member_role = opt(settings, "member_role_name")
        .ok_or_else(|| Error::invalid("organisation mode needs 'member_role_name'"))?;
    let member_role = member_role.trim_matches('/').to_string();
    let parallel = settings
        .get("parallel_accounts")
        .and_then(Value::as_u64)
        .map(|n| n.clamp(1, 32) as usize)
        .unwrap_or(DEFAULT_PARALLEL_ACCOUNTS);
    let auth = Auth::from_context(ctx)?;
    let (home, caller) = auth.caller_identity().await?;
    let accounts = list_accounts(&auth).await?;
    let labels = labels(&accounts);
    let part = partition(&caller).to_string();
    let total = accounts.len() as u64;

    // One task per account, `parallel` at once; a failure is that
    // account's, not the run's.
    let mut set = tokio::task::JoinSet::new();
    let mut pending = accounts.clone().into_iter();
    let mut results: Vec<(Account, AccountResult)> = Vec::new();
    let ctx_view = std::sync::Arc::new(SharedCtx::of(ctx));
    loop {
        while set.len() < parallel {
            let Some(a) = pending.next() else { break };
            let account_auth = if a.id == home {
                auth.clone()
            } else {
                auth.assume(format!("arn:{part}:iam::{}:role/{member_role}", a.id), None)
            };
            let label = labels.get(&a.id).cloned().unwrap_or_else(|| a.id.clone());
            let shared = ctx_view.clone();
            set.spawn(async move {
                let c = shared.context();
                let iam = Iam::with_auth(account_auth);
                let r = fetch_account(&iam, &c, &label).await;
                (a, r)
            });
        }
        let Some(joined) = set.join_next().await else {
            break;
        };
        let (a, r) =
            joined.map_err(|e| Error::internal(format!("an AWS account task failed: {e}")))?;
        ctx.report("accounts", results.len() as u64 + 1, 0, Some(total));
        results.push((a, r));
    }
    ctx.http.cancel().check()?;
    results.sort_by(|x, y| x.0.id.cmp(&y.0.id));

    let mut f = Fetched::new(FetchMode::Full);
    let mut views: Vec<(String, TrustView)> = Vec::new();
    let mut failed = 0usize;
    for (a, r) in results {
        match r {
            Ok((part_f, view)) => {
                merge(&mut f, part_f, &a.id);
                views.push((a.id.clone(), view));
            }
            Err(e) if e.code == ErrorCode::Cancelled => return Err(e),
            Err(e) => {
                failed += 1;
                let how = if a.id == home {
                    "with the source's own keys".to_string()
                } else {
                    format!("assuming role '{member_role}'")
                };
                f.warn(format!(
                    "AWS account {} ({}) was not imported: reading it {how} failed: {}",
                    a.name, a.id, e.message
                ));
            }
        }
    }
    if failed > 0 {
        if views.is_empty() {
            return Err(Error::new(
                ErrorCode::SourceAuth,
                format!(
                    "no account of the organisation could be read: {}",
                    f.warnings.join("; ")
                ),
            ));
        }
        f.mode = FetchMode::Incremental;
        f.warn(format!(
            "{failed} account(s) could not be read: nothing was marked deleted this run, and their identities stay as the last run left them"
        ));
    }
    f.signed_in_as = super::aws::signed_in_identity(&caller, &f.identities);
    let mut edges = cross_account_edges(&views);
    f.delegations.append(&mut edges);
    f.delegations.sort_by(|a, b| {
        (&a.from, &a.to, a.kind.as_str(), a.condition.is_some()).cmp(&(
            &b.from,
            &b.to,
            b.kind.as_str(),
            b.condition.is_some(),
        ))
    });
    f.delegations
        .dedup_by(|b, a| (&a.from, &a.to, a.kind) == (&b.from, &b.to, b.kind));
    Ok(f)
}

/// What an account task needs of the sync context (it outlives the borrow).
struct SharedCtx {
    source: crate::store::sync::SourceView,
    http: super::http::HttpClient,
    secret: Option<String>,
    progress: super::ProgressFn,
}

impl SharedCtx {
    fn of(ctx: &SyncContext) -> SharedCtx {
        SharedCtx {
            source: ctx.source.clone(),
            http: ctx.http.clone(),
            secret: ctx.secret.clone(),
            progress: ctx.progress.clone(),
        }
    }
    fn context(&self) -> SyncContext {
        SyncContext {
            source: self.source.clone(),
            http: self.http.clone(),
            secret: self.secret.clone(),
            progress: self.progress.clone(),
            cursor: None,
        }
    }
}

/// Adds one account's records to the organisation's, its resources kept
/// apart by account (external id `ACCOUNT/…`).
fn merge(into: &mut Fetched, mut f: Fetched, account: &str) {
    let key = |r: &str| format!("{account}/{r}");
    for r in &mut f.resources {
        r.external_id = key(&r.external_id);
    }
    for g in &mut f.grants {
        g.resource = key(&g.resource);
    }
    let conditions: Vec<(GrantKey, GrantCondition)> = f.grant_conditions.drain().collect();
    for ((identity, resource, permission), c) in conditions {
        into.grant_conditions
            .insert((identity, key(&resource), permission), c);
    }
    into.people.append(&mut f.people);
    into.identities.append(&mut f.identities);
    into.credentials.append(&mut f.credentials);
    into.resources.append(&mut f.resources);
    into.grants.append(&mut f.grants);
    into.delegations.append(&mut f.delegations);
    for w in f.warnings.drain(..) {
        into.warn(format!("account {account}: {w}"));
    }
}

/// The readable conditions of several decisions, each once.
fn conditions(ds: &[&Decision]) -> Option<String> {
    let mut v: Vec<String> = Vec::new();
    for p in ds.iter().filter_map(|d| d.phrase()) {
        if !v.contains(&p) {
            v.push(p);
        }
    }
    (!v.is_empty()).then(|| v.join("; "))
}

/// The `assume_role` edges across accounts of the organisation: for each
/// role whose trust policy names another read account's principal (by ARN,
/// by its account, or `*`), each such principal whose own statements allow
/// `sts:AssumeRole` on the role (and the trust allows it, no deny on either
/// side). `views` are (account id, its trust view).
pub(crate) fn cross_account_edges(views: &[(String, TrustView)]) -> Vec<DelegationRecord> {
    let by_account: BTreeMap<&str, &TrustView> =
        views.iter().map(|(a, v)| (a.as_str(), v)).collect();
    let by_arn: HashMap<&str, &AssumeView> = views
        .iter()
        .flat_map(|(_, v)| v.principals.iter().map(|p| (p.arn.as_str(), p)))
        .collect();
    let mut out: BTreeMap<(String, String), Option<String>> = BTreeMap::new();
    for (role_account, view) in views {
        for (role_arn, trust) in &view.roles {
            let mut candidates: Vec<&AssumeView> = Vec::new();
            for s in trust.iter().filter(|s| s.allow && !s.not_principal) {
                for (ptype, p) in &s.principals {
                    if ptype != "AWS" {
                        continue;
                    }
                    if p == "*" {
                        for (a, v) in &by_account {
                            if *a != role_account.as_str() {
                                candidates.extend(v.principals.iter());
                            }
                        }
                    } else if let Some(acct) = whole_account(p) {
                        if acct != role_account.as_str() {
                            if let Some(v) = by_account.get(acct) {
                                candidates.extend(v.principals.iter());
                            }
                        }
                    } else if account_of(p).is_some_and(|a| a != role_account.as_str()) {
                        if let Some(h) = by_arn.get(p.as_str()) {
                            candidates.push(h);
                        }
                    }
                }
            }
            let mut seen: HashSet<&str> = HashSet::new();
            for h in candidates {
                if !seen.insert(h.arn.as_str()) {
                    continue;
                }
                let stmts: Vec<&Statement> = h.stmts.iter().collect();
                let boundary: Option<Vec<&Statement>> =
                    h.boundary.as_ref().map(|b| b.iter().collect());
                let trusted =
                    trust_decision(trust, &stmts, boundary.as_deref(), &h.arn, role_arn, ASSUME);
                if !trusted.allowed() {
                    continue;
                }
                // Across accounts the caller's own policies must allow it
                // too, even when the trust names the caller itself.
                let own = evaluate(&stmts, boundary.as_deref(), ASSUME, role_arn);
                if !own.allowed() {
                    continue;
                }
                let c = conditions(&[&trusted, &own]);
                out.entry((h.arn.clone(), role_arn.clone()))
                    .and_modify(|old| {
                        if c.is_none() {
                            *old = None;
                        }
                    })
                    .or_insert(c);
            }
        }
    }
    out.into_iter()
        .map(|((from, to), c)| {
            DelegationRecord::new(from, to, DelegationKind::AssumeRole)
                .when(c)
                .because("cross-account trust".to_string())
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::sync::aws_policy::statements;
    use serde_json::json;

    fn view(roles: Vec<(&str, Value)>, principals: Vec<(&str, Value)>) -> TrustView {
        TrustView {
            roles: roles
                .into_iter()
                .map(|(a, t)| (a.to_string(), statements(&t)))
                .collect(),
            principals: principals
                .into_iter()
                .map(|(a, p)| AssumeView {
                    arn: a.to_string(),
                    stmts: statements(&p),
                    boundary: None,
                })
                .collect(),
        }
    }

    #[test]
    fn accounts_pages_keep_the_active_ones() {
        let (a, next) = read_accounts_page(
            r#"{"Accounts":[{"Id":"111111111111","Name":"prod","State":"ACTIVE"},
                {"Id":"222222222222","Name":"old","Status":"SUSPENDED"},
                {"Id":"333333333333"}],"NextToken":"t2"}"#,
        )
        .unwrap();
        assert_eq!(
            a,
            [
                Account {
                    id: "111111111111".into(),
                    name: "prod".into()
                },
                Account {
                    id: "333333333333".into(),
                    name: "333333333333".into()
                }
            ]
        );
        assert_eq!(next.as_deref(), Some("t2"));
        let e = read_accounts_page(r#"{"Accounts":[{"Id":"12"}]}"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::MalformedResponse);
        assert!(read_accounts_page("<html>").is_err());
    }

    #[test]
    fn cross_account_trust_needs_both_sides() {
        let allow_assume =
            json!({"Statement": {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}});
        let nothing = json!({"Statement": []});
        let a = view(
            vec![(
                "arn:aws:iam::111111111111:role/deploy",
                json!({"Statement": [
                    {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::222222222222:root"}, "Action": "sts:AssumeRole"},
                    {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::333333333333:role/named"}, "Action": "sts:AssumeRole",
                     "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}}]}),
            )],
            vec![],
        );
        let b = view(
            vec![],
            vec![
                ("arn:aws:iam::222222222222:role/ci", allow_assume.clone()),
                ("arn:aws:iam::222222222222:user/idle", nothing.clone()),
            ],
        );
        let c = view(
            vec![],
            vec![
                ("arn:aws:iam::333333333333:role/named", allow_assume),
                ("arn:aws:iam::333333333333:role/other", nothing),
            ],
        );
        let edges = cross_account_edges(&[
            ("111111111111".into(), a),
            ("222222222222".into(), b),
            ("333333333333".into(), c),
        ]);
        let got: Vec<(String, String, Option<String>)> = edges
            .into_iter()
            .map(|d| (d.from, d.to, d.condition))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "arn:aws:iam::222222222222:role/ci".to_string(),
                    "arn:aws:iam::111111111111:role/deploy".to_string(),
                    None
                ),
                (
                    "arn:aws:iam::333333333333:role/named".to_string(),
                    "arn:aws:iam::111111111111:role/deploy".to_string(),
                    Some("only if Bool aws:MultiFactorAuthPresent=true".to_string())
                ),
            ],
            "the trusted account's principal that may assume; the named one, under the trust's condition; not those whose policies do not allow it"
        );
    }
}
