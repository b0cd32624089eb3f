//! IAM policy documents and AWS's policy-evaluation rules, as plain
//! functions (no I/O): what the AWS source uses to decide which principals
//! can assume which roles, which grants survive denies and permission
//! boundaries, and which grants make a principal an administrator.
//!
//! Parsing is tolerant: `Statement` an object or a list; `Action` /
//! `NotAction`, `Resource` / `NotResource` a string or a list; `Principal`
//! `"*"`, `{"AWS": arn | account id | list}`, `{"Service": …}`,
//! `{"Federated": …}`; `Condition` kept as data (its text is shown where a
//! result depends on it). Anything unreadable in a statement is dropped, not
//! guessed.
//!
//! Matching (IAM JSON policy elements: Action, Resource): `*` matches any
//! run of characters and `?` one character, in actions and resources alike;
//! actions compare without case, resources with case.
//!
//! Evaluation ([`evaluate`]), after AWS's documented policy evaluation logic
//! (<https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-denyallow.html>,
//! <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-basics.html>):
//! 1. an explicit `Deny` that matches, in any of the policies, decides
//!    "denied" (a `Deny` with a condition only makes the result conditional:
//!    allowed *unless* its condition holds);
//! 2. otherwise an identity-based `Allow` must match; when the principal has
//!    a permissions boundary, the boundary must allow it too (the effective
//!    permissions are the intersection);
//! 3. otherwise the request is implicitly denied.
//!
//! Role trust ([`trust_decision`]; IAM JSON policy elements: Principal,
//! <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html>):
//! a trust policy is the role's resource-based policy, and it must allow the
//! caller itself. Naming the caller's ARN (or `*`) allows it on its own in
//! the same account; naming the account (`arn:aws:iam::ACCT:root` or the
//! bare 12-digit id) delegates to that account's identity-based policies, so
//! the caller's own policies must then allow `sts:AssumeRole` on the role.
//! A trust `Deny` naming the caller, its account or `*` stops it, as does an
//! identity-based `Deny`; a `NotPrincipal` deny stops every caller it does
//! not list, and every caller with a permissions boundary whatever it lists
//! (<https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html>).
//! A permissions boundary does not cap what the trust policy grants to the
//! caller's ARN itself, only what the caller's identity-based policies allow.
//!
//! Not modelled (the result errs towards more access): service control and
//! resource control policies, session policies, condition values (a
//! condition is carried as text, never evaluated), and resource-based
//! policies other than trust policies.

use serde_json::Value;

use crate::error::{Error, ErrorCode, Result};

fn malformed(what: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorCode::MalformedResponse,
        format!("AWS IAM policy document: {what}"),
    )
}

/// One policy statement, normalised.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Statement {
    pub allow: bool,
    /// `Action`, or `NotAction` when `not_action`.
    pub actions: Vec<String>,
    pub not_action: bool,
    /// `Resource`, or `NotResource` when `not_resource`. Empty when the
    /// statement has neither (trust policies).
    pub resources: Vec<String>,
    pub not_resource: bool,
    /// (`AWS` | `Service` | `Federated` | `CanonicalUser`, value); `Principal: "*"` is (`AWS`, `*`).
    pub principals: Vec<(String, String)>,
    pub not_principal: bool,
    /// The `Condition` block, readable ("Bool aws:MultiFactorAuthPresent=true"),
    /// when the statement has a non-empty one.
    pub condition: Option<String>,
}

impl Statement {
    pub fn conditional(&self) -> bool {
        self.condition.is_some()
    }
}

/// A policy document from IAM: percent-decoded when it starts with `%`
/// (real AWS encodes documents; moto sends some plain).
pub fn decode_document(raw: &str) -> Result<Value> {
    let raw = raw.trim();
    let decoded = if raw.starts_with('%') {
        percent_encoding::percent_decode_str(raw)
            .decode_utf8()
            .map_err(|e| malformed(format!("bad percent-encoding ({e})")))?
            .into_owned()
    } else {
        raw.to_string()
    };
    serde_json::from_str(&decoded).map_err(|e| malformed(format!("not JSON ({e})")))
}

fn str_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.trim().to_string()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(|s| s.trim().to_string())
            .collect(),
        _ => vec![],
    }
}

fn principals(v: Option<&Value>) -> Vec<(String, String)> {
    match v {
        Some(Value::String(s)) => vec![("AWS".into(), s.trim().to_string())],
        Some(Value::Object(m)) => m
            .iter()
            .flat_map(|(k, v)| str_list(Some(v)).into_iter().map(move |p| (k.clone(), p)))
            .collect(),
        _ => vec![],
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(value_text).collect::<Vec<_>>().join("|"),
        other => other.to_string(),
    }
}

/// A `Condition` block as one line: `Operator key=value|value; …`, in the
/// document's order; `None` when absent or empty.
pub fn condition_text(c: Option<&Value>) -> Option<String> {
    let c = c?;
    let Some(ops) = c.as_object() else {
        return Some(value_text(c));
    };
    let mut parts = Vec::new();
    for (op, keys) in ops {
        match keys.as_object() {
            Some(keys) => {
                for (k, v) in keys {
                    parts.push(format!("{op} {k}={}", value_text(v)));
                }
            }
            None => parts.push(format!("{op} {}", value_text(keys))),
        }
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// The statements of a policy document.
pub fn statements(doc: &Value) -> Vec<Statement> {
    let list = match doc.get("Statement") {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(s @ Value::Object(_)) => vec![s],
        _ => vec![],
    };
    list.into_iter()
        .filter(|s| s.is_object())
        .map(|s| {
            let not_action = s.get("Action").is_none() && s.get("NotAction").is_some();
            let not_resource = s.get("Resource").is_none() && s.get("NotResource").is_some();
            let not_principal = s.get("Principal").is_none() && s.get("NotPrincipal").is_some();
            Statement {
                allow: s
                    .get("Effect")
                    .and_then(Value::as_str)
                    .is_some_and(|e| e.trim().eq_ignore_ascii_case("allow")),
                actions: str_list(s.get(if not_action { "NotAction" } else { "Action" })),
                not_action,
                resources: str_list(s.get(if not_resource {
                    "NotResource"
                } else {
                    "Resource"
                })),
                not_resource,
                principals: principals(s.get(if not_principal {
                    "NotPrincipal"
                } else {
                    "Principal"
                })),
                not_principal,
                condition: condition_text(s.get("Condition")),
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Wildcards

/// Does the IAM wildcard `pattern` (`*` any run, `?` one character) match the
/// concrete `value`? Case-sensitive; lower-case both for actions.
pub fn wildcard_match(pattern: &str, value: &str) -> bool {
    let p = pattern.as_bytes();
    let t = value.as_bytes();
    // Work on chars only when there is non-ASCII text (`?` is one character).
    if !pattern.is_ascii() || !value.is_ascii() {
        let p: Vec<char> = pattern.chars().collect();
        let t: Vec<char> = value.chars().collect();
        return glob(&p, &t);
    }
    glob(p, t)
}

fn glob<T: PartialEq + Copy + From<u8>>(p: &[T], t: &[T]) -> bool {
    let star = T::from(b'*');
    let one = T::from(b'?');
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut back: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] != star && (p[pi] == one || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == star {
            back = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = back {
            pi = sp + 1;
            ti = st + 1;
            back = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == star {
        pi += 1;
    }
    pi == p.len()
}

/// Does the IAM wildcard `pattern` cover every expansion of `text`? A `*` in
/// `text` is a wildcard too, so it can only be absorbed by a `*` of the
/// pattern (`s3:*` covers `s3:Get*`; `s3:Get?` does not).
pub fn covers(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && ((p[pi] == t[ti] && p[pi] != '*') || (p[pi] == '?' && t[ti] != '*')) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// Does an action pattern match a concrete action (without case)?
pub fn action_matches(pattern: &str, action: &str) -> bool {
    wildcard_match(&pattern.to_ascii_lowercase(), &action.to_ascii_lowercase())
}

/// Does the statement's `Action` / `NotAction` apply to `action`?
pub fn applies_to_action(s: &Statement, action: &str) -> bool {
    let any = s.actions.iter().any(|p| action_matches(p, action));
    if s.not_action {
        !any
    } else {
        any
    }
}

/// Does the statement's `Resource` / `NotResource` apply to `resource`? A
/// statement with neither (a trust policy's) applies to its own resource.
pub fn applies_to_resource(s: &Statement, resource: &str) -> bool {
    if s.resources.is_empty() && !s.not_resource {
        return true;
    }
    let any = s.resources.iter().any(|p| wildcard_match(p, resource));
    if s.not_resource {
        !any
    } else {
        any
    }
}

// ---------------------------------------------------------------------------
// Evaluation

/// The answer for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// An explicit `Deny` matched.
    ExplicitDeny,
    /// Nothing allows it.
    ImplicitDeny,
    Allow,
    /// Allowed when every one of these conditions holds (each already
    /// readable; denies read "unless …").
    Conditional(Vec<String>),
}

impl Decision {
    pub fn allowed(&self) -> bool {
        matches!(self, Decision::Allow | Decision::Conditional(_))
    }

    /// The conditions, joined ("" when unconditional or denied).
    pub fn condition(&self) -> String {
        match self {
            Decision::Conditional(c) => c.join(" and "),
            _ => String::new(),
        }
    }

    /// What an allowed answer holds under, as a phrase for a chain or a
    /// grant: "only if A and B", "unless C or D" (a conditional deny
    /// applies when any of its conditions holds), or both joined by "; ".
    /// `None` when unconditional or denied.
    pub fn phrase(&self) -> Option<String> {
        let Decision::Conditional(c) = self else {
            return None;
        };
        let (unless, only): (Vec<&String>, Vec<&String>) =
            c.iter().partition(|c| c.starts_with("unless "));
        let mut parts = Vec::new();
        if !only.is_empty() {
            let v: Vec<&str> = only.iter().map(|c| c.as_str()).collect();
            parts.push(format!("only if {}", v.join(" and ")));
        }
        if !unless.is_empty() {
            let v: Vec<&str> = unless.iter().map(|c| &c["unless ".len()..]).collect();
            parts.push(format!("unless {}", v.join(" or ")));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

/// The best allow among `stmts` for the request: `None` when none matches,
/// `Some(None)` when one matches unconditionally, else `Some(Some(text))`
/// (any one of the conditions suffices).
fn allow_of(stmts: &[&Statement], action: &str, resource: &str) -> Option<Option<String>> {
    let mut conds: Vec<&str> = Vec::new();
    for s in stmts.iter().filter(|s| s.allow) {
        if applies_to_action(s, action) && applies_to_resource(s, resource) {
            match &s.condition {
                None => return Some(None),
                Some(c) => {
                    if !conds.contains(&c.as_str()) {
                        conds.push(c);
                    }
                }
            }
        }
    }
    if conds.is_empty() {
        None
    } else if conds.len() == 1 {
        Some(Some(conds[0].to_string()))
    } else {
        Some(Some(format!("({})", conds.join(" or "))))
    }
}

/// Matching denies: `Err(())` for an unconditional one, else the "unless …"
/// texts of the conditional ones.
#[allow(clippy::result_unit_err)]
pub fn denies_of(
    stmts: &[&Statement],
    action: &str,
    resource: &str,
) -> std::result::Result<Vec<String>, ()> {
    let mut out = Vec::new();
    for s in stmts.iter().filter(|s| !s.allow) {
        if applies_to_action(s, action) && applies_to_resource(s, resource) {
            match &s.condition {
                None => return Err(()),
                Some(c) => {
                    let t = format!("unless {c}");
                    if !out.contains(&t) {
                        out.push(t);
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Evaluates a request against a principal's identity-based policies
/// (inline, managed and group policies together) and its permissions
/// boundary (`None` when it has none).
pub fn evaluate(
    identity: &[&Statement],
    boundary: Option<&[&Statement]>,
    action: &str,
    resource: &str,
) -> Decision {
    let mut conds = match denies_of(identity, action, resource) {
        Err(()) => return Decision::ExplicitDeny,
        Ok(c) => c,
    };
    if let Some(b) = boundary {
        match denies_of(b, action, resource) {
            Err(()) => return Decision::ExplicitDeny,
            Ok(c) => conds.extend(c),
        }
    }
    let mut need = Vec::new();
    match allow_of(identity, action, resource) {
        None => return Decision::ImplicitDeny,
        Some(c) => need.extend(c),
    }
    if let Some(b) = boundary {
        match allow_of(b, action, resource) {
            None => return Decision::ImplicitDeny,
            Some(c) => need.extend(c),
        }
    }
    need.extend(conds);
    if need.is_empty() {
        Decision::Allow
    } else {
        Decision::Conditional(need)
    }
}

/// The account id of an ARN (`arn:aws:iam::123456789012:user/x` → the id).
pub fn account_of(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|a| !a.is_empty())
}

/// Is `p` a bare 12-digit account id?
pub fn is_account_id(p: &str) -> bool {
    p.len() == 12 && p.bytes().all(|c| c.is_ascii_digit())
}

/// The account a principal value stands for as a whole (`ACCT` or
/// `arn:…:iam::ACCT:root`), if it names one.
pub fn whole_account(p: &str) -> Option<&str> {
    if is_account_id(p) {
        return Some(p);
    }
    let resource = p.splitn(6, ':').nth(5)?;
    (resource == "root" && p.starts_with("arn:"))
        .then(|| account_of(p))
        .flatten()
}

/// How a trust statement's `AWS` principals name a caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Named {
    /// Not at all.
    No,
    /// By its ARN, or `*`: the trust policy alone allows it.
    Directly,
    /// By its account: its identity-based policies decide.
    ByAccount,
}

fn names(s: &Statement, caller: &str) -> Named {
    let account = account_of(caller);
    let mut best = Named::No;
    for (t, p) in &s.principals {
        if t != "AWS" {
            continue;
        }
        if p == "*" || p == caller {
            return Named::Directly;
        }
        if account.is_some() && whole_account(p) == account {
            best = Named::ByAccount;
        }
    }
    best
}

/// Does `role`'s trust policy allow `caller` to call `action`
/// (`sts:AssumeRole`, …), given the caller's identity-based policies and
/// boundary? See the module doc for the rules.
pub fn trust_decision(
    trust: &[Statement],
    identity: &[&Statement],
    boundary: Option<&[&Statement]>,
    caller: &str,
    role: &str,
    action: &str,
) -> Decision {
    let mut conds: Vec<String> = Vec::new();
    // Trust denies: naming the caller, its account or `*`; or NotPrincipal
    // not naming it.
    for s in trust.iter().filter(|s| !s.allow) {
        if !applies_to_action(s, action) {
            continue;
        }
        let named = names(s, caller) != Named::No;
        // A `NotPrincipal` deny denies every principal with a permissions
        // boundary, whatever it lists (the boundaries page of the IAM guide).
        let boundary_hit = s.not_principal && boundary.is_some();
        if boundary_hit || named != s.not_principal {
            match &s.condition {
                None => return Decision::ExplicitDeny,
                Some(c) => conds.push(format!("unless {c}")),
            }
        }
    }
    let mut direct: Option<Option<&str>> = None;
    let mut by_account: Option<Option<&str>> = None;
    for s in trust.iter().filter(|s| s.allow && !s.not_principal) {
        if !applies_to_action(s, action) {
            continue;
        }
        let slot = match names(s, caller) {
            Named::No => continue,
            Named::Directly => &mut direct,
            Named::ByAccount => &mut by_account,
        };
        let c = s.condition.as_deref();
        *slot = match (*slot, c) {
            (Some(None), _) | (_, None) => Some(None),
            (_, Some(c)) => Some(Some(c)),
        };
    }
    let identity_decision = evaluate(identity, boundary, action, role);
    if identity_decision == Decision::ExplicitDeny {
        return Decision::ExplicitDeny;
    }
    if let Some(c) = direct {
        // The trust policy allows the caller itself: identity-based denies
        // still apply, an implicit deny there does not.
        if let Some(c) = c {
            conds.insert(0, c.to_string());
        }
        if let Ok(d) = denies_of(identity, action, role) {
            conds.extend(d);
        }
        if let Some(b) = boundary {
            match denies_of(b, action, role) {
                Err(()) => return Decision::ExplicitDeny,
                Ok(d) => conds.extend(d),
            }
            // A role named by its ARN is still capped by its boundary: the
            // implicit deny of a boundary limits what a resource-based
            // policy grants to a role ARN, not to a user ARN (IAM guide,
            // "Policy evaluation logic", permissions boundaries).
            if caller.contains(":role/") {
                match evaluate(b, None, action, role) {
                    Decision::Conditional(more) => conds.extend(more),
                    Decision::Allow => {}
                    other => return other,
                }
            }
        }
        dedup(&mut conds);
        return if conds.is_empty() {
            Decision::Allow
        } else {
            Decision::Conditional(conds)
        };
    }
    let Some(c) = by_account else {
        return Decision::ImplicitDeny;
    };
    match identity_decision {
        Decision::Allow | Decision::Conditional(_) => {
            if let Some(c) = c {
                conds.insert(0, c.to_string());
            }
            if let Decision::Conditional(more) = identity_decision {
                conds.extend(more);
            }
            dedup(&mut conds);
            if conds.is_empty() {
                Decision::Allow
            } else {
                Decision::Conditional(conds)
            }
        }
        other => other,
    }
}

fn dedup(v: &mut Vec<String>) {
    let mut seen = std::collections::HashSet::new();
    v.retain(|c| seen.insert(c.clone()));
}

// ---------------------------------------------------------------------------
// Effective admin

/// IAM writes that let their holder grant itself (or anyone) any permission,
/// with why. `self_ok`: harmless when the resource is the holder's own user
/// (a user may rotate its own keys and password).
///
/// The writes that act as one other principal ([`EDGE_ACTIONS`]) are admin
/// only on a wildcard resource (any user, any role); on one named user or
/// role they are an escalation edge to it instead, followed to wherever it
/// leads.
pub const ADMIN_ACTIONS: &[(&str, &str, bool)] = &[
    (
        "iam:AttachUserPolicy",
        "attaches any managed policy (AdministratorAccess) to a user",
        false,
    ),
    (
        "iam:AttachRolePolicy",
        "attaches any managed policy to a role",
        false,
    ),
    (
        "iam:AttachGroupPolicy",
        "attaches any managed policy to a group",
        false,
    ),
    (
        "iam:PutUserPolicy",
        "writes an inline policy granting anything to a user",
        false,
    ),
    (
        "iam:PutRolePolicy",
        "writes an inline policy granting anything to a role",
        false,
    ),
    (
        "iam:PutGroupPolicy",
        "writes an inline policy granting anything to a group",
        false,
    ),
    (
        "iam:CreatePolicyVersion",
        "rewrites a managed policy that is attached somewhere",
        false,
    ),
    (
        "iam:SetDefaultPolicyVersion",
        "switches a managed policy to a broader version",
        false,
    ),
    (
        "iam:CreateAccessKey",
        "creates access keys for another user, then acts as them",
        true,
    ),
    (
        "iam:CreateLoginProfile",
        "sets a console password for another user, then signs in as them",
        true,
    ),
    (
        "iam:UpdateLoginProfile",
        "changes another user's console password",
        true,
    ),
    (
        "iam:UpdateAssumeRolePolicy",
        "rewrites a role's trust policy to let itself assume it",
        false,
    ),
    (
        "iam:AddUserToGroup",
        "adds a user (itself) to a more privileged group",
        false,
    ),
];

/// The admin writes that, on one named principal, are an edge to it.
pub const EDGE_ACTIONS: &[&str] = &[
    "iam:CreateAccessKey",
    "iam:CreateLoginProfile",
    "iam:UpdateLoginProfile",
    "iam:UpdateAssumeRolePolicy",
];

/// Why an allowed action pattern on a resource pattern makes its holder an
/// effective administrator, or `None`. `*` (any action) counts only on every
/// resource; an IAM write that grants permissions counts on any IAM resource
/// it can name (a wildcard action counts when it covers one of them).
/// `holder`: the holder's own ARN, for the writes harmless on oneself.
pub fn admin_reason(action: &str, resource: &str, holder: &str) -> Option<String> {
    let a = action.trim().to_ascii_lowercase();
    if a == "*" {
        return (resource == "*").then(|| "* on * (every action on every resource)".to_string());
    }
    let iam_resource = resource == "*"
        || resource.starts_with("arn:aws:iam::")
        || resource.starts_with("arn:aws-") && resource.split(':').nth(2) == Some("iam");
    if !iam_resource {
        return None;
    }
    for (name, why, self_ok) in ADMIN_ACTIONS {
        if wildcard_match(&a, &name.to_ascii_lowercase()) {
            if *self_ok && (resource == holder || resource.contains("${aws:username}")) {
                continue;
            }
            if EDGE_ACTIONS.contains(name) && !resource.contains(['*', '?']) {
                continue;
            }
            return Some(format!("{name}: {why}"));
        }
    }
    None
}

/// Why a `NotAction` allow on `resource` makes its holder an administrator:
/// when the actions it leaves allowed include `*`-on-`*`-equivalent access
/// (an empty exclusion) or one of [`ADMIN_ACTIONS`].
pub fn not_action_admin_reason(excluded: &[String], resource: &str) -> Option<String> {
    if resource != "*" && !resource.starts_with("arn:aws:iam::") {
        return None;
    }
    let excluded_lc: Vec<String> = excluded.iter().map(|e| e.to_ascii_lowercase()).collect();
    ADMIN_ACTIONS
        .iter()
        .find(|(name, _, _)| {
            let n = name.to_ascii_lowercase();
            !excluded_lc.iter().any(|e| wildcard_match(e, &n))
        })
        .map(|(name, why, _)| format!("NotAction leaves {name} allowed: {why}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Vec<Statement> {
        statements(&v)
    }

    fn refs(v: &[Statement]) -> Vec<&Statement> {
        v.iter().collect()
    }

    const ACCT: &str = "123456789012";
    fn arn(x: &str) -> String {
        format!("arn:aws:iam::{ACCT}:{x}")
    }

    #[test]
    fn parses_every_documented_shape() {
        let one = parse(
            json!({"Statement": {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}}),
        );
        assert_eq!(one.len(), 1);
        assert!(one[0].allow && !one[0].not_action && one[0].condition.is_none());
        assert_eq!(one[0].actions, ["s3:GetObject"]);
        let many = parse(json!({"Statement": [
            {"Effect": "Deny", "NotAction": ["iam:*", "sts:*"], "NotResource": "arn:aws:s3:::x"},
            {"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole"},
            {"Effect": "Allow", "Principal": {"AWS": [ACCT, arn("user/a")], "Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole",
             "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}, "StringEquals": {"aws:PrincipalTag/team": ["a", "b"]}}},
            "not a statement",
            {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {}}
        ]}));
        assert_eq!(many.len(), 4, "the string is dropped");
        assert!(!many[0].allow && many[0].not_action && many[0].not_resource);
        assert_eq!(many[0].actions, ["iam:*", "sts:*"]);
        assert_eq!(many[1].principals, [("AWS".to_string(), "*".to_string())]);
        assert_eq!(many[2].principals.len(), 3);
        assert_eq!(
            many[2].condition.as_deref(),
            Some("Bool aws:MultiFactorAuthPresent=true; StringEquals aws:PrincipalTag/team=a|b")
        );
        assert!(many[3].condition.is_none(), "an empty Condition is none");
        assert!(parse(json!({"Version": "2012-10-17"})).is_empty());
    }

    #[test]
    fn wildcards_match_like_iam() {
        assert!(
            action_matches("s3:Get*", "S3:GETOBJECT"),
            "actions ignore case"
        );
        assert!(action_matches("*", "iam:PassRole"));
        assert!(action_matches("sts:Assume?ole", "sts:AssumeRole"));
        assert!(!action_matches("sts:Assume?ole", "sts:AssumeRoleWithSAML"));
        assert!(!action_matches("s3:Get", "s3:GetObject"));
        assert!(wildcard_match("arn:aws:s3:::b/*", "arn:aws:s3:::b/k/x"));
        assert!(
            !wildcard_match("arn:aws:s3:::B/*", "arn:aws:s3:::b/k"),
            "resources keep case"
        );
        assert!(wildcard_match(
            "arn:aws:iam::*:role/dev-*",
            &arn("role/dev-1")
        ));
        assert!(wildcard_match("a*b*c", "aXXbYYc"));
        assert!(!wildcard_match("a*b*c", "aXXbYY"));
        assert!(wildcard_match("é?", "éx"));
        // Pattern against pattern.
        assert!(covers("s3:*", "s3:get*"));
        assert!(!covers("s3:get?", "s3:get*"));
        assert!(!covers("s3:deletebucket", "s3:*"));
    }

    #[test]
    fn not_action_and_not_resource_invert() {
        let s = parse(
            json!({"Statement": {"Effect": "Allow", "NotAction": "iam:*", "NotResource": "arn:aws:s3:::secret"}}),
        );
        assert!(applies_to_action(&s[0], "s3:GetObject"));
        assert!(!applies_to_action(&s[0], "iam:PassRole"));
        assert!(applies_to_resource(&s[0], "arn:aws:s3:::public"));
        assert!(!applies_to_resource(&s[0], "arn:aws:s3:::secret"));
    }

    #[test]
    fn explicit_deny_wins_and_boundary_intersects() {
        let id = parse(json!({"Statement": [
            {"Effect": "Allow", "Action": "*", "Resource": "*"},
            {"Effect": "Deny", "Action": "s3:Delete*", "Resource": "arn:aws:s3:::prod"}]}));
        let id = refs(&id);
        assert_eq!(
            evaluate(&id, None, "s3:DeleteBucket", "arn:aws:s3:::prod"),
            Decision::ExplicitDeny
        );
        assert_eq!(
            evaluate(&id, None, "s3:DeleteBucket", "arn:aws:s3:::dev"),
            Decision::Allow
        );
        let b = parse(json!({"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}}));
        let b = refs(&b);
        assert_eq!(
            evaluate(&id, Some(&b), "s3:GetObject", "arn:aws:s3:::dev"),
            Decision::Allow
        );
        assert_eq!(
            evaluate(&id, Some(&b), "sts:AssumeRole", &arn("role/r")),
            Decision::ImplicitDeny,
            "the boundary caps the identity's *"
        );
        // The boundary alone grants nothing.
        let none: Vec<&Statement> = vec![];
        assert_eq!(
            evaluate(&none, Some(&b), "s3:GetObject", "x"),
            Decision::ImplicitDeny
        );
    }

    #[test]
    fn conditions_make_the_answer_conditional() {
        let id = parse(json!({"Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*", "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}},
            {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}]}));
        let id = refs(&id);
        assert_eq!(
            evaluate(&id, None, "sts:AssumeRole", &arn("role/r")),
            Decision::Conditional(vec![
                "Bool aws:MultiFactorAuthPresent=true".into(),
                "unless IpAddress aws:SourceIp=10.0.0.0/8".into()
            ])
        );
        assert_eq!(
            evaluate(&id, None, "sts:AssumeRole", &arn("role/r")).condition(),
            "Bool aws:MultiFactorAuthPresent=true and unless IpAddress aws:SourceIp=10.0.0.0/8"
        );
        assert_eq!(
            evaluate(&id, None, "sts:AssumeRole", &arn("role/r"))
                .phrase()
                .as_deref(),
            Some("only if Bool aws:MultiFactorAuthPresent=true; unless IpAddress aws:SourceIp=10.0.0.0/8")
        );
        assert_eq!(
            Decision::Conditional(vec!["unless A".into(), "unless B".into()])
                .phrase()
                .as_deref(),
            Some("unless A or B")
        );
        assert_eq!(Decision::Allow.phrase(), None);
        assert_eq!(
            evaluate(&id, None, "s3:GetObject", "x"),
            Decision::ImplicitDeny
        );
    }

    #[test]
    fn trust_by_account_delegates_to_identity_policies() {
        let role = arn("role/target");
        let alice = arn("user/alice");
        for root in [arn("root"), ACCT.to_string()] {
            let trust = parse(
                json!({"Statement": {"Effect": "Allow", "Principal": {"AWS": root}, "Action": "sts:AssumeRole"}}),
            );
            let none: Vec<&Statement> = vec![];
            assert_eq!(
                trust_decision(&trust, &none, None, &alice, &role, "sts:AssumeRole"),
                Decision::ImplicitDeny,
                "the account trusts, alice's policies do not allow"
            );
            for allow in [
                json!({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role}),
                json!({"Effect": "Allow", "Action": "sts:*", "Resource": "*"}),
                json!({"Effect": "Allow", "Action": "*", "Resource": "arn:aws:iam::*:role/tar*"}),
                json!({"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"}),
            ] {
                let id = parse(json!({"Statement": allow}));
                assert_eq!(
                    trust_decision(&trust, &refs(&id), None, &alice, &role, "sts:AssumeRole"),
                    Decision::Allow,
                    "{allow}"
                );
            }
            let id = parse(
                json!({"Statement": {"Effect": "Allow", "NotAction": "sts:*", "Resource": "*"}}),
            );
            assert_eq!(
                trust_decision(&trust, &refs(&id), None, &alice, &role, "sts:AssumeRole"),
                Decision::ImplicitDeny
            );
        }
        // Another account's root does not delegate to this one.
        let trust = parse(
            json!({"Statement": {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999999999999:root"}, "Action": "sts:AssumeRole"}}),
        );
        let id = parse(json!({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}));
        assert_eq!(
            trust_decision(&trust, &refs(&id), None, &alice, &role, "sts:AssumeRole"),
            Decision::ImplicitDeny
        );
    }

    #[test]
    fn trust_by_arn_suffices_and_denies_stop_it() {
        let role = arn("role/target");
        let alice = arn("user/alice");
        let none: Vec<&Statement> = vec![];
        let trust = parse(
            json!({"Statement": {"Effect": "Allow", "Principal": {"AWS": [alice]}, "Action": "sts:AssumeRole"}}),
        );
        assert_eq!(
            trust_decision(&trust, &none, None, &alice, &role, "sts:AssumeRole"),
            Decision::Allow
        );
        assert_eq!(
            trust_decision(
                &trust,
                &none,
                None,
                &arn("user/bob"),
                &role,
                "sts:AssumeRole"
            ),
            Decision::ImplicitDeny
        );
        // An identity deny stops it.
        let deny =
            parse(json!({"Statement": {"Effect": "Deny", "Action": "sts:*", "Resource": "*"}}));
        assert_eq!(
            trust_decision(&trust, &refs(&deny), None, &alice, &role, "sts:AssumeRole"),
            Decision::ExplicitDeny
        );
        // A trust deny naming alice, the account, or everyone stops it.
        for who in [json!(alice), json!(arn("root")), json!(ACCT), json!("*")] {
            let trust = parse(json!({"Statement": [
                {"Effect": "Allow", "Principal": {"AWS": [alice]}, "Action": "sts:AssumeRole"},
                {"Effect": "Deny", "Principal": {"AWS": who}, "Action": "sts:AssumeRole"}]}));
            assert_eq!(
                trust_decision(&trust, &none, None, &alice, &role, "sts:AssumeRole"),
                Decision::ExplicitDeny,
                "{who}"
            );
        }
        // A role named by its ARN is capped by its boundary; a user is not.
        let bounded = arn("role/bounded");
        let trust_both = parse(
            json!({"Statement": {"Effect": "Allow", "Principal": {"AWS": [alice, bounded]}, "Action": "sts:AssumeRole"}}),
        );
        let s3_only =
            parse(json!({"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}}));
        let cap = refs(&s3_only);
        assert_eq!(
            trust_decision(
                &trust_both,
                &none,
                Some(&cap),
                &bounded,
                &role,
                "sts:AssumeRole"
            ),
            Decision::ImplicitDeny
        );
        assert_eq!(
            trust_decision(
                &trust_both,
                &none,
                Some(&cap),
                &alice,
                &role,
                "sts:AssumeRole"
            ),
            Decision::Allow
        );
        let sts_ok = parse(
            json!({"Statement": {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}}),
        );
        assert_eq!(
            trust_decision(
                &trust_both,
                &none,
                Some(&refs(&sts_ok)),
                &bounded,
                &role,
                "sts:AssumeRole"
            ),
            Decision::Allow
        );
        // A deny of someone else does not.
        let trust = parse(json!({"Statement": [
            {"Effect": "Allow", "Principal": {"AWS": [alice]}, "Action": "sts:AssumeRole"},
            {"Effect": "Deny", "Principal": {"AWS": arn("user/bob")}, "Action": "sts:AssumeRole"}]}));
        assert_eq!(
            trust_decision(&trust, &none, None, &alice, &role, "sts:AssumeRole"),
            Decision::Allow
        );
        // A conditional trust allow keeps the condition.
        let trust = parse(
            json!({"Statement": {"Effect": "Allow", "Principal": {"AWS": arn("root")}, "Action": "sts:AssumeRole",
            "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}}}),
        );
        let id = parse(
            json!({"Statement": {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}}),
        );
        assert_eq!(
            trust_decision(&trust, &refs(&id), None, &alice, &role, "sts:AssumeRole"),
            Decision::Conditional(vec!["Bool aws:MultiFactorAuthPresent=true".into()])
        );
        // A NotPrincipal deny listing alice spares her, unless she has a
        // boundary.
        let np = parse(json!({"Statement": [
            {"Effect": "Allow", "Principal": {"AWS": alice.clone()}, "Action": "sts:AssumeRole"},
            {"Effect": "Deny", "NotPrincipal": {"AWS": alice.clone()}, "Action": "sts:AssumeRole"}]}));
        let open = parse(json!({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}));
        assert_eq!(
            trust_decision(&np, &none, None, &alice, &role, "sts:AssumeRole"),
            Decision::Allow
        );
        assert_eq!(
            trust_decision(
                &np,
                &none,
                Some(&refs(&open)),
                &alice,
                &role,
                "sts:AssumeRole"
            ),
            Decision::ExplicitDeny
        );
        // The boundary caps an account-delegated allow.
        let b = parse(json!({"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}}));
        assert_eq!(
            trust_decision(
                &trust,
                &refs(&id),
                Some(&refs(&b)),
                &alice,
                &role,
                "sts:AssumeRole"
            ),
            Decision::ImplicitDeny
        );
    }

    #[test]
    fn admin_is_effective_admin() {
        let me = arn("user/me");
        assert!(admin_reason("*", "*", &me).is_some());
        assert!(
            admin_reason("*", "arn:aws:s3:::b", &me).is_none(),
            "* on one bucket is no admin"
        );
        assert!(admin_reason("iam:*", "*", &me).is_some());
        assert!(admin_reason("iam:Attach*", "*", &me)
            .unwrap()
            .contains("iam:AttachUserPolicy"));
        assert!(admin_reason("iam:PutRolePolicy", &arn("role/x"), &me).is_some());
        assert!(admin_reason("iam:PassRole", "*", &me).is_none());
        assert!(admin_reason("sts:AssumeRole", "*", &me).is_none());
        assert!(
            admin_reason("iam:CreateAccessKey", &me, &me).is_none(),
            "own keys"
        );
        assert!(admin_reason("iam:CreateAccessKey", &arn("user/${aws:username}"), &me).is_none());
        assert!(
            admin_reason("iam:CreateAccessKey", &arn("user/other"), &me).is_none(),
            "keys for one named user are an edge to it"
        );
        assert!(admin_reason("iam:CreateAccessKey", &arn("user/*"), &me).is_some());
        assert!(admin_reason("iam:UpdateAssumeRolePolicy", &arn("role/x"), &me).is_none());
        assert!(admin_reason("iam:UpdateAssumeRolePolicy", "*", &me).is_some());
        assert!(admin_reason("iam:AttachUserPolicy", "arn:aws:s3:::b", &me).is_none());
        assert!(admin_reason("iam:ListUsers", "*", &me).is_none());
        assert!(
            not_action_admin_reason(&["iam:*".into(), "organizations:*".into()], "*").is_none(),
            "PowerUserAccess"
        );
        assert!(not_action_admin_reason(&["s3:*".into()], "*").is_some());
        assert!(not_action_admin_reason(&[], "arn:aws:s3:::b").is_none());
    }

    #[test]
    fn whole_account_names() {
        assert_eq!(whole_account(ACCT), Some(ACCT));
        assert_eq!(whole_account(&arn("root")), Some(ACCT));
        assert_eq!(whole_account(&arn("user/root")), None);
        assert_eq!(whole_account("12345"), None);
    }
}
