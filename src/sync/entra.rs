//! Microsoft Entra ID through Microsoft Graph (app-only, client credentials).
//!
//! Mapping:
//! - users → people. `accountEnabled: false` → suspended;
//!   `employeeLeaveDateTime` in the past → departed (`left_at` is that date; a
//!   future date is kept as the planned `left_at` of an active person). The
//!   expanded `manager` is the manager.
//! - servicePrincipals → identities, keyed by the SP object id:
//!   `ServiceIdentity` (Entra Agent ID) or any tag containing "agent" →
//!   `ai_agent`; `ManagedIdentity` → `workload`; `Application`/`Legacy` →
//!   `oauth_app`. `SocialIdp` SPs and Microsoft's own first-party SPs
//!   (published by Microsoft's tenants) are not NHIs of this tenant and are
//!   skipped unless the setting `include_first_party` is true.
//!   `accountEnabled: false` → disabled.
//! - the SP's `passwordCredentials` → `client_secret`, `keyCredentials` →
//!   `certificate` (start → created, end → expiry); likewise the secrets and
//!   certificates on the *application* object behind the SP (`/applications`,
//!   matched on `appId`; ids prefixed `app:`), where most client secrets live.
//!   Incremental runs re-read the application of each changed SP; a secret
//!   added to an application whose SP did not change shows up at the next
//!   forced full run (`full_resync_hours`).
//! - `/servicePrincipals/{id}/owners`: the first user owner is the owner.
//! - `/servicePrincipals/{id}/appRoleAssignments` (application permissions)
//!   and `/servicePrincipals/{id}/oauth2PermissionGrants` (delegated scopes,
//!   permission `"<scope> (delegated)"`) → grants on the resource SP, which
//!   becomes a resource (`api`; Microsoft Graph is critical, other Microsoft
//!   APIs high, the rest medium).
//! - beta `reports/servicePrincipalSignInActivities` → `last_used_at`. The
//!   report needs a premium licence and `AuditLog.Read.All`; when it is
//!   refused or missing the sync goes on without last-use data.
//!
//! Privilege rule for a role value or scope (see [`privilege_of`]):
//! *admin* when it names administration (`FullControl`, `full_access`,
//! `Admin`, `RoleManagement`, `Privileged`) or a write over the whole tenant
//! (a write word — `Write`, `Send`, `Manage`, `Create`, `Delete` — together
//! with the `.All` suffix); *write* for any other write word; *read*
//! otherwise. High-consequence: admin, or a write held as an application
//! permission (it acts without a signed-in user, tenant-wide).
//!
//! Incremental: a full run lists users and SPs and also runs a Graph delta
//! round for each (started *before* the listing, so nothing changed during the
//! listing is missed); the two `@odata.deltaLink`s go in the cursor. A later
//! run follows the delta links; every changed object is read again by id (a
//! delta item may carry only the changed properties) and each changed SP gets
//! its owners, assignments and grants again, so the upsert is complete.
//! `@removed` (deleted or soft-deleted) → removed. An expired link (400
//! `syncStateNotFound`, 410) → `CursorExpired` and the engine resyncs in full.
//! Graph delta does not report changes to relationships (owners, role
//! assignments, consent grants) of an SP whose own properties did not change,
//! so a full sync is forced once the last one is older than
//! `full_resync_hours` (default 24): grants are never staler than that.
//!
//! Settings: `tenant_id`, `client_id`, optional `graph_base` (default
//! `https://graph.microsoft.com`), `login_base` (default
//! `https://login.microsoftonline.com`), `include_first_party`,
//! `full_resync_hours`. Secret: the client secret.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::http::{HttpClient, Response};
use super::records::*;
use super::{Source, SyncContext};
use crate::error::{Error, ErrorCode, Result};
use crate::model::{
    AgentClass, CredentialKind, IdentityKind, IdentityStatus, PersonStatus, Privilege, Sensitivity,
};

/// The settings of an Entra source (see `super::settings`).
pub const SETTINGS: &[super::settings::Setting] = {
    use super::settings::{Setting, SettingType as T};
    &[
        Setting::required("tenant_id", T::String, "the directory (tenant) id"),
        Setting::required(
            "client_id",
            T::String,
            "the application (client) id; the client secret is the secret",
        ),
        Setting::optional(
            "graph_base",
            T::Url,
            Some("https://graph.microsoft.com"),
            "Microsoft Graph (a national cloud's, or a test server)",
        ),
        Setting::optional(
            "login_base",
            T::Url,
            Some("https://login.microsoftonline.com"),
            "the token endpoint's host",
        ),
        Setting::optional(
            "include_first_party",
            T::Bool,
            Some("false"),
            "also import Microsoft's own first-party service principals",
        ),
        Setting::optional(
            "full_resync_hours",
            T::Integer,
            Some("24"),
            "force a full run when the last one is older than this",
        ),
    ]
};

pub struct EntraSource;

const USER_SELECT: &str =
    "$select=id,displayName,userPrincipalName,mail,accountEnabled,department,jobTitle,employeeLeaveDateTime&$expand=manager($select=id)";
const SP_SELECT: &str =
    "$select=id,appId,displayName,description,notes,accountEnabled,servicePrincipalType,\
appOwnerOrganizationId,tags,passwordCredentials,keyCredentials,appRoles";
const APP_SELECT: &str = "$select=id,appId,displayName,passwordCredentials,keyCredentials";
/// Tenants that publish Microsoft's first-party applications.
const MICROSOFT_TENANTS: &[&str] = &[
    "f8cdef31-a31e-4b4a-93e4-5f571e91255a",
    "72f988bf-86f1-41af-91ab-2d7cd011db47",
];
const MICROSOFT_GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";
/// How many per-SP fetches run at once (the HTTP client bounds requests too).
const PER_SP_TASKS: usize = 16;

/// What the cursor holds between runs.
#[derive(Debug, Serialize, Deserialize)]
struct Cursor {
    users: String,
    service_principals: String,
    /// When the last full sync ran.
    full_at: DateTime<Utc>,
}

// ---------------------------------------------------------------- JSON helpers

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn time_at(v: &Value, key: &str) -> Option<DateTime<Utc>> {
    str_at(v, key)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

fn id_of(v: &Value, what: &str) -> Result<String> {
    str_at(v, "id").map(str::to_string).ok_or_else(|| {
        Error::new(
            ErrorCode::MalformedResponse,
            format!("Graph: a {what} has no id"),
        )
    })
}

/// Did the shared client fail with this HTTP status? (It reports the status in
/// the message of a `SourceError`.)
fn is_status(e: &Error, status: u16) -> bool {
    e.code == ErrorCode::SourceError && e.message.contains(&format!("HTTP {status} "))
}

// ---------------------------------------------------------------- Graph client

struct TokenSource {
    url: String,
    client_id: String,
    secret: String,
    scope: String,
    current: tokio::sync::Mutex<Option<(String, Instant)>>,
}

/// Graph with a token that renews itself; cheap to clone into tasks.
#[derive(Clone)]
struct Graph {
    http: HttpClient,
    base: String,
    token: Arc<TokenSource>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    value: Option<Vec<Value>>,
    #[serde(default, rename = "@odata.nextLink")]
    next: Option<String>,
    #[serde(default, rename = "@odata.deltaLink")]
    delta: Option<String>,
}

impl Graph {
    fn new(ctx: &SyncContext) -> Result<Graph> {
        let tenant = ctx.setting("tenant_id")?;
        let client_id = ctx.setting("client_id")?;
        let secret = ctx.secret()?.to_string();
        let opt = |k: &str, d: &str| {
            ctx.source
                .settings
                .get(k)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .unwrap_or(d)
                .trim_end_matches('/')
                .to_string()
        };
        let base = opt("graph_base", "https://graph.microsoft.com");
        let login = opt("login_base", "https://login.microsoftonline.com");
        Ok(Graph {
            http: ctx.http.clone(),
            token: Arc::new(TokenSource {
                url: format!("{login}/{}/oauth2/v2.0/token", tenant.trim()),
                client_id,
                secret,
                scope: format!("{base}/.default"),
                current: tokio::sync::Mutex::new(None),
            }),
            base,
        })
    }

    async fn bearer(&self) -> Result<String> {
        let mut current = self.token.current.lock().await;
        if let Some((token, until)) = current.as_ref() {
            if Instant::now() < *until {
                return Ok(token.clone());
            }
        }
        let t = &self.token;
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", t.client_id.as_str()),
            ("client_secret", t.secret.as_str()),
            ("scope", t.scope.as_str()),
        ];
        let resp = self
            .http
            .post_form(&t.url, &[("accept", "application/json".into())], &form)
            .await
            .map_err(|e| {
                if e.code == ErrorCode::SourceError {
                    // 400 invalid_client / unauthorized_client / unknown tenant.
                    Error::new(
                        ErrorCode::SourceAuth,
                        format!("Entra refused the client credentials: {}", e.message),
                    )
                } else {
                    e
                }
            })?;
        let tok: TokenResponse = resp.json("Entra token")?;
        // Renew five minutes before it expires.
        let life = Duration::from_secs(tok.expires_in.unwrap_or(3599).saturating_sub(300).max(60));
        *current = Some((tok.access_token.clone(), Instant::now() + life));
        Ok(tok.access_token)
    }

    async fn get(&self, url: &str) -> Result<Response> {
        let token = self.bearer().await?;
        self.http
            .get(
                url,
                &[
                    ("authorization", format!("Bearer {token}")),
                    ("accept", "application/json".into()),
                ],
            )
            .await
    }

    fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.base)
    }

    async fn object(&self, url: &str, what: &str) -> Result<Value> {
        self.get(url).await?.json(what)
    }

    /// Follows `@odata.nextLink` verbatim; returns the items and the final
    /// `@odata.deltaLink` when there is one.
    async fn pages(
        &self,
        ctx: Option<&SyncContext>,
        first: &str,
        what: &str,
        phase: &str,
    ) -> Result<(Vec<Value>, Option<String>, PageEnds)> {
        let mut out = Vec::new();
        let mut ends = PageEnds::default();
        let mut url = first.to_string();
        let mut pages = 0u64;
        loop {
            self.http.cancel().check()?;
            let page: Page = self
                .get(&url)
                .await?
                .json(&format!("Graph {what} page {}", pages + 1))?;
            pages += 1;
            let Some(items) = page.value else {
                return Err(Error::new(
                    ErrorCode::MalformedResponse,
                    format!("Graph {what}: a page has no 'value'"),
                ));
            };
            out.extend(items);
            ends.0.push(out.len());
            if let Some(ctx) = ctx {
                ctx.report(phase, pages, out.len() as u64, None);
            }
            match page.next {
                Some(next) if next == url => {
                    return Err(Error::new(
                        ErrorCode::MalformedResponse,
                        format!("Graph {what}: nextLink points at the same page"),
                    ))
                }
                Some(next) => url = next,
                None => return Ok((out, page.delta, ends)),
            }
        }
    }

    async fn list(
        &self,
        ctx: Option<&SyncContext>,
        first: &str,
        what: &str,
        phase: &str,
    ) -> Result<Vec<Value>> {
        Ok(self.pages(ctx, first, what, phase).await?.0)
    }

    /// Like `list`, with where each item was (for warnings).
    async fn list_placed(
        &self,
        ctx: Option<&SyncContext>,
        first: &str,
        what: &str,
        phase: &str,
    ) -> Result<(Vec<Value>, PageEnds)> {
        let (items, _, ends) = self.pages(ctx, first, what, phase).await?;
        Ok((items, ends))
    }

    /// A delta round: the changed items and the next delta link. An expired
    /// or unusable link is `CursorExpired`.
    async fn delta(
        &self,
        ctx: &SyncContext,
        link: &str,
        what: &str,
        phase: &str,
    ) -> Result<(Vec<Value>, String, PageEnds)> {
        match self.pages(Some(ctx), link, what, phase).await {
            Ok((items, Some(delta), ends)) => Ok((items, delta, ends)),
            Ok((_, None, _)) => Err(Error::new(
                ErrorCode::MalformedResponse,
                format!("Graph {what} delta: the last page has no deltaLink"),
            )),
            Err(e)
                if is_status(&e, 410)
                    || (is_status(&e, 400) && is_sync_state_error(&e.message)) =>
            {
                Err(Error::new(
                    ErrorCode::CursorExpired,
                    format!(
                        "the Graph {what} delta link expired; a full resync is needed ({})",
                        e.message
                    ),
                ))
            }
            Err(e) => Err(e),
        }
    }
}

/// Where each page of a listing ends (cumulative item counts).
#[derive(Debug, Default)]
pub struct PageEnds(Vec<usize>);

impl PageEnds {
    /// "page P item I" of the item at `index` (both from 1).
    pub fn place(&self, index: usize) -> String {
        let page = self.0.partition_point(|&end| end <= index);
        let start = if page == 0 { 0 } else { self.0[page - 1] };
        format!("page {} item {}", page + 1, index - start + 1)
    }
}

/// A name to tell an object by when it has no id.
fn label(v: &Value) -> String {
    ["displayName", "userPrincipalName", "appId"]
        .iter()
        .find_map(|k| str_at(v, k))
        .map_or_else(|| "unnamed".to_string(), |n| format!("'{n}'"))
}

/// Keeps the items of a listing that have an id (once each); the others are
/// skipped with a warning naming their page and position.
fn with_ids(items: Vec<Value>, ends: &PageEnds, what: &str, f: &mut Fetched) -> Vec<Value> {
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        match str_at(&item, "id") {
            None => f.warn(format!(
                "Graph {what} {} ({}): no id; skipped",
                ends.place(i),
                label(&item)
            )),
            Some(id) if !seen.insert(id.to_string()) => f.warn(format!(
                "Graph {what} {}: id {id} listed twice; the first kept",
                ends.place(i)
            )),
            Some(_) => out.push(item),
        }
    }
    out
}

fn is_sync_state_error(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    m.contains("syncstatenotfound") || m.contains("resyncrequired") || m.contains("sync state")
}

// ---------------------------------------------------------------- mapping

fn user_to_person(u: &Value, now: DateTime<Utc>) -> Result<PersonRecord> {
    let id = id_of(u, "user")?;
    let enabled = u
        .get("accountEnabled")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let leave = time_at(u, "employeeLeaveDateTime");
    let status = match leave {
        Some(t) if t <= now => PersonStatus::Departed,
        _ if !enabled => PersonStatus::Suspended,
        _ => PersonStatus::Active,
    };
    let manager = u
        .get("manager")
        .and_then(|m| str_at(m, "id"))
        .or_else(|| {
            // The delta shape: "manager@delta": [{"id": ...}]
            u.get("manager@delta")
                .and_then(Value::as_array)
                .and_then(|a| a.first())
                .and_then(|m| str_at(m, "id"))
        })
        .map(|m| PersonKey::ExternalId(m.to_string()));
    let upn = str_at(u, "userPrincipalName").unwrap_or_default();
    Ok(PersonRecord {
        display_name: str_at(u, "displayName").unwrap_or(upn).to_string(),
        email: str_at(u, "mail").unwrap_or(upn).to_string(),
        department: str_at(u, "department").unwrap_or_default().to_string(),
        title: str_at(u, "jobTitle").unwrap_or_default().to_string(),
        manager,
        status,
        left_at: leave,
        external_id: id,
    })
}

fn is_first_party(sp: &Value) -> bool {
    str_at(sp, "appOwnerOrganizationId")
        .is_some_and(|o| MICROSOFT_TENANTS.iter().any(|m| m.eq_ignore_ascii_case(o)))
}

/// The NHI kind of an SP, or `None` when it is not one of this tenant's NHIs.
fn sp_kind(sp: &Value, include_first_party: bool) -> Option<(IdentityKind, Option<AgentClass>)> {
    let ty = str_at(sp, "servicePrincipalType").unwrap_or("Application");
    if ty.eq_ignore_ascii_case("SocialIdp") || (!include_first_party && is_first_party(sp)) {
        return None;
    }
    let agent_tag = sp
        .get("tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .any(|t| t.to_ascii_lowercase().contains("agent"));
    let kind = if ty.eq_ignore_ascii_case("ServiceIdentity") || agent_tag {
        IdentityKind::AiAgent
    } else if ty.eq_ignore_ascii_case("ManagedIdentity") {
        IdentityKind::Workload
    } else {
        IdentityKind::OauthApp
    };
    Some((kind, None))
}

fn sp_to_identity(
    sp: &Value,
    tenant: &str,
    kind: (IdentityKind, Option<AgentClass>),
    owner: Option<String>,
) -> Result<IdentityRecord> {
    let id = id_of(sp, "servicePrincipal")?;
    let enabled = sp
        .get("accountEnabled")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let publisher = str_at(sp, "appOwnerOrganizationId");
    let third_party = publisher.is_some_and(|p| !p.eq_ignore_ascii_case(tenant));
    let description = str_at(sp, "description")
        .or_else(|| str_at(sp, "notes"))
        .map(str::to_string)
        .unwrap_or_else(|| match publisher {
            Some(p) if third_party => format!("third-party application (publisher tenant {p})"),
            _ => String::new(),
        });
    Ok(IdentityRecord {
        name: str_at(sp, "displayName").unwrap_or(&id).to_string(),
        kind: kind.0,
        agent_class: kind.1,
        status: if enabled {
            IdentityStatus::Active
        } else {
            IdentityStatus::Disabled
        },
        description,
        owner: owner.map(PersonKey::ExternalId),
        builder: None,
        team: String::new(),
        environment: String::new(),
        registration: None,
        created_at: None,
        last_used_at: None,
        external_id: id,
    })
}

fn sp_credentials(sp: &Value, identity: &str) -> Vec<CredentialRecord> {
    let mut out = Vec::new();
    for (field, kind, default_name) in [
        (
            "passwordCredentials",
            CredentialKind::ClientSecret,
            "client secret",
        ),
        ("keyCredentials", CredentialKind::Certificate, "certificate"),
    ] {
        for c in sp
            .get(field)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(key_id) = str_at(c, "keyId") else {
                continue;
            };
            out.push(CredentialRecord {
                identity: identity.to_string(),
                external_id: key_id.to_string(),
                kind,
                display_name: str_at(c, "displayName")
                    .or_else(|| str_at(c, "hint"))
                    .or_else(|| str_at(c, "customKeyIdentifier"))
                    .unwrap_or(default_name)
                    .to_string(),
                created_at: time_at(c, "startDateTime"),
                expires_at: time_at(c, "endDateTime"),
                last_rotated_at: None,
                last_used_at: None,
            });
        }
    }
    out
}

/// The secrets and certificates held on the *application* object behind a
/// service principal (where most client secrets live), attached to the SP's
/// identity. Their ids are prefixed `app:` so they never collide with the
/// SP's own credentials.
fn app_credentials(app: &Value, identity: &str) -> Vec<CredentialRecord> {
    sp_credentials(app, identity)
        .into_iter()
        .map(|mut c| {
            c.external_id = format!("app:{}", c.external_id);
            c.display_name = format!("{} (application)", c.display_name);
            c
        })
        .collect()
}

/// The documented privilege rule (module doc): the level of a role value or
/// scope, and whether holding it is high-consequence.
pub fn privilege_of(value: &str, application: bool) -> (Privilege, bool) {
    let v = value.to_ascii_lowercase();
    let admin_word = [
        "fullcontrol",
        "full_access",
        "admin",
        "rolemanagement",
        "privileged",
    ]
    .iter()
    .any(|w| v.contains(w));
    let write_word = ["write", "send", "manage", "create", "delete"]
        .iter()
        .any(|w| v.contains(w));
    let privilege = if admin_word || (write_word && v.ends_with(".all")) {
        Privilege::Admin
    } else if write_word {
        Privilege::Write
    } else {
        Privilege::Read
    };
    let high = privilege == Privilege::Admin || (privilege == Privilege::Write && application);
    (privilege, high)
}

/// A resource SP: its name and role ids → values.
#[derive(Clone)]
struct ResourceSp {
    name: String,
    app_id: String,
    first_party: bool,
    roles: HashMap<String, String>,
}

fn resource_sp(sp: &Value) -> ResourceSp {
    let roles = sp
        .get("appRoles")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| {
            Some((
                str_at(r, "id")?.to_ascii_lowercase(),
                str_at(r, "value")?.to_string(),
            ))
        })
        .collect();
    ResourceSp {
        name: str_at(sp, "displayName").unwrap_or_default().to_string(),
        app_id: str_at(sp, "appId").unwrap_or_default().to_string(),
        first_party: is_first_party(sp),
        roles,
    }
}

/// What is read per SP.
struct SpDetails {
    sp_id: String,
    owner: Option<String>,
    assignments: Vec<Value>,
    delegated: Vec<Value>,
}

async fn sp_details(g: Graph, sp_id: String) -> Result<SpDetails> {
    let owners = g
        .list(
            None,
            &g.url(&format!(
                "/v1.0/servicePrincipals/{sp_id}/owners?$select=id"
            )),
            "servicePrincipal owners",
            "",
        )
        .await?;
    let owner = owners
        .iter()
        .find(|o| {
            str_at(o, "@odata.type")
                .is_some_and(|t| t.eq_ignore_ascii_case("#microsoft.graph.user"))
        })
        .and_then(|o| str_at(o, "id"))
        .map(str::to_string);
    let assignments = g
        .list(
            None,
            &g.url(&format!(
                "/v1.0/servicePrincipals/{sp_id}/appRoleAssignments"
            )),
            "appRoleAssignments",
            "",
        )
        .await?;
    let delegated = g
        .list(
            None,
            &g.url(&format!(
                "/v1.0/servicePrincipals/{sp_id}/oauth2PermissionGrants"
            )),
            "oauth2PermissionGrants",
            "",
        )
        .await?;
    Ok(SpDetails {
        sp_id,
        owner,
        assignments,
        delegated,
    })
}

/// Reads the details of many SPs, a bounded number at a time.
async fn all_details(
    ctx: &SyncContext,
    g: &Graph,
    ids: Vec<String>,
    f: &mut Fetched,
) -> Result<HashMap<String, SpDetails>> {
    let total = ids.len() as u64;
    let mut out = HashMap::with_capacity(ids.len());
    let mut pending = ids.into_iter();
    let mut set = tokio::task::JoinSet::new();
    loop {
        while set.len() < PER_SP_TASKS {
            let Some(id) = pending.next() else { break };
            let g = g.clone();
            set.spawn(async move {
                let r = sp_details(g, id.clone()).await;
                (id, r)
            });
        }
        let Some(joined) = set.join_next().await else {
            break;
        };
        let (id, details) =
            joined.map_err(|e| Error::internal(format!("a Graph task failed: {e}")))?;
        match details {
            Ok(details) => {
                out.insert(details.sp_id.clone(), details);
            }
            // Deleted while we listed: it is gone, say so.
            Err(e) if is_status(&e, 404) => f.warn(format!(
                "Graph servicePrincipal {id}: not found when reading its owners and permissions \
                 (deleted during the sync?); skipped"
            )),
            Err(e) => return Err(e),
        }
        ctx.report("identities", 0, out.len() as u64, Some(total));
    }
    Ok(out)
}

/// Turns SPs and their details into identities, credentials, resources and grants.
struct Builder<'a> {
    g: &'a Graph,
    tenant: String,
    include_first_party: bool,
    /// Every SP known by id (resource SPs included).
    resources: HashMap<String, ResourceSp>,
}

impl Builder<'_> {
    async fn resource(&mut self, id: &str, fallback_name: &str) -> Result<ResourceSp> {
        if let Some(r) = self.resources.get(id) {
            return Ok(r.clone());
        }
        let url = self.g.url(&format!("/v1.0/servicePrincipals/{id}?$select=id,appId,displayName,appOwnerOrganizationId,appRoles"));
        let r = match self.g.object(&url, "resource servicePrincipal").await {
            Ok(sp) => resource_sp(&sp),
            Err(e) if is_status(&e, 404) => ResourceSp {
                name: fallback_name.to_string(),
                app_id: String::new(),
                first_party: false,
                roles: HashMap::new(),
            },
            Err(e) => return Err(e),
        };
        self.resources.insert(id.to_string(), r.clone());
        Ok(r)
    }

    async fn build(
        &mut self,
        f: &mut Fetched,
        sps: &[Value],
        details: &HashMap<String, SpDetails>,
        apps: &HashMap<String, Value>,
    ) -> Result<()> {
        let mut resources: HashMap<String, ResourceRecord> = HashMap::new();
        for sp in sps {
            let Some(kind) = sp_kind(sp, self.include_first_party) else {
                continue;
            };
            let id = id_of(sp, "servicePrincipal")?;
            let Some(d) = details.get(&id) else { continue };
            f.identities
                .push(sp_to_identity(sp, &self.tenant, kind, d.owner.clone())?);
            f.credentials.extend(sp_credentials(sp, &id));
            if let Some(app) = str_at(sp, "appId").and_then(|a| apps.get(a)) {
                f.credentials.extend(app_credentials(app, &id));
            }
            let mut seen: HashSet<(String, String)> = HashSet::new();
            let mut wanted: Vec<(String, String, String, bool)> = Vec::new();
            for a in &d.assignments {
                let Some(rid) = str_at(a, "resourceId") else {
                    continue;
                };
                let role = str_at(a, "appRoleId")
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                let r = self
                    .resource(rid, str_at(a, "resourceDisplayName").unwrap_or(rid))
                    .await?;
                let permission =
                    if role.is_empty() || role == "00000000-0000-0000-0000-000000000000" {
                        "default access".to_string()
                    } else {
                        r.roles.get(&role).cloned().unwrap_or(role)
                    };
                wanted.push((rid.to_string(), permission.clone(), permission, true));
            }
            for g in &d.delegated {
                let Some(rid) = str_at(g, "resourceId") else {
                    continue;
                };
                for scope in str_at(g, "scope").unwrap_or_default().split_whitespace() {
                    wanted.push((
                        rid.to_string(),
                        format!("{scope} (delegated)"),
                        scope.to_string(),
                        false,
                    ));
                }
            }
            for (rid, permission, value, application) in wanted {
                if !seen.insert((rid.clone(), permission.clone())) {
                    continue;
                }
                let r = self.resource(&rid, &rid).await?;
                resources
                    .entry(rid.clone())
                    .or_insert_with(|| ResourceRecord {
                        external_id: rid.clone(),
                        name: if r.name.is_empty() {
                            rid.clone()
                        } else {
                            r.name.clone()
                        },
                        kind: "api".into(),
                        sensitivity: if r.app_id.eq_ignore_ascii_case(MICROSOFT_GRAPH_APP_ID) {
                            Sensitivity::Critical
                        } else if r.first_party {
                            Sensitivity::High
                        } else {
                            Sensitivity::Medium
                        },
                        environment: String::new(),
                    });
                let (privilege, high_consequence) = privilege_of(&value, application);
                f.grants.push(GrantRecord {
                    identity: id.clone(),
                    resource: rid,
                    permission,
                    privilege,
                    high_consequence,
                    last_used_at: None,
                });
            }
        }
        let mut resources: Vec<ResourceRecord> = resources.into_values().collect();
        resources.sort_by(|a, b| a.external_id.cmp(&b.external_id));
        f.resources = resources;
        Ok(())
    }
}

/// Last sign-in per appId from the beta report; `None` when it is refused.
async fn sign_ins(ctx: &SyncContext, g: &Graph) -> Result<Option<HashMap<String, DateTime<Utc>>>> {
    let url = g.url("/beta/reports/servicePrincipalSignInActivities");
    let items = match g
        .list(
            Some(ctx),
            &url,
            "servicePrincipalSignInActivities",
            "identities",
        )
        .await
    {
        Ok(items) => items,
        Err(e) if matches!(e.code, ErrorCode::SourceAuth | ErrorCode::SourceError) => {
            tracing::warn!(error = %e, "Graph sign-in activity is not available; last use is not updated");
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let mut out: HashMap<String, DateTime<Utc>> = HashMap::new();
    for a in &items {
        let Some(app) = str_at(a, "appId") else {
            continue;
        };
        let latest = a
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| k.ends_with("SignInActivity") || k.ends_with("signInActivity"))
            .filter_map(|(_, v)| time_at(v, "lastSignInDateTime"))
            .max();
        if let Some(t) = latest {
            let e = out.entry(app.to_ascii_lowercase()).or_insert(t);
            *e = (*e).max(t);
        }
    }
    Ok(Some(out))
}

fn apply_sign_ins(f: &mut Fetched, sps: &[Value], last: &HashMap<String, DateTime<Utc>>) {
    let by_id: HashMap<&str, &str> = sps
        .iter()
        .filter_map(|sp| Some((str_at(sp, "id")?, str_at(sp, "appId")?)))
        .collect();
    for i in &mut f.identities {
        if let Some(app) = by_id.get(i.external_id.as_str()) {
            i.last_used_at = last.get(&app.to_ascii_lowercase()).copied();
        }
    }
}

// ---------------------------------------------------------------- the source

impl EntraSource {
    fn settings(ctx: &SyncContext) -> (bool, i64) {
        let s = &ctx.source.settings;
        let first_party = s
            .get("include_first_party")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let hours = s
            .get("full_resync_hours")
            .and_then(Value::as_i64)
            .unwrap_or(24);
        (first_party, hours)
    }

    async fn full(&self, ctx: &SyncContext, g: &Graph) -> Result<Fetched> {
        let now = Utc::now();
        let tenant = ctx.setting("tenant_id")?;
        let (include_first_party, _) = Self::settings(ctx);
        // Delta rounds first: whatever changes while we list is in the next delta.
        let users_link = self
            .initial_delta(ctx, g, &format!("/v1.0/users/delta?{USER_SELECT}"), "users")
            .await?;
        let sps_link = self
            .initial_delta(
                ctx,
                g,
                &format!("/v1.0/servicePrincipals/delta?{SP_SELECT}"),
                "servicePrincipals",
            )
            .await?;

        let mut f = Fetched::new(FetchMode::Full);
        let (users, ends) = g
            .list_placed(
                Some(ctx),
                &g.url(&format!("/v1.0/users?$top=999&{USER_SELECT}")),
                "users",
                "people",
            )
            .await?;
        for u in &with_ids(users, &ends, "users", &mut f) {
            f.people.push(user_to_person(u, now)?);
        }
        let (sps, ends) = g
            .list_placed(
                Some(ctx),
                &g.url(&format!("/v1.0/servicePrincipals?$top=999&{SP_SELECT}")),
                "servicePrincipals",
                "identities",
            )
            .await?;
        let sps = with_ids(sps, &ends, "servicePrincipals", &mut f);
        let mut builder = Builder {
            g,
            tenant,
            include_first_party,
            resources: HashMap::new(),
        };
        let mut ids = Vec::new();
        for sp in &sps {
            let id = id_of(sp, "servicePrincipal")?;
            builder.resources.insert(id.clone(), resource_sp(sp));
            if sp_kind(sp, include_first_party).is_some() {
                ids.push(id);
            }
        }
        let details = all_details(ctx, g, ids, &mut f).await?;
        let apps: HashMap<String, Value> = g
            .list(
                Some(ctx),
                &g.url(&format!("/v1.0/applications?$top=999&{APP_SELECT}")),
                "applications",
                "identities",
            )
            .await?
            .into_iter()
            .filter_map(|a| Some((str_at(&a, "appId")?.to_string(), a)))
            .collect();
        builder.build(&mut f, &sps, &details, &apps).await?;
        if let Some(last) = sign_ins(ctx, g).await? {
            apply_sign_ins(&mut f, &sps, &last);
        }
        f.cursor = match (users_link, sps_link) {
            (Some(users), Some(service_principals)) => Some(serde_json::to_string(&Cursor {
                users,
                service_principals,
                full_at: now,
            })?),
            _ => None,
        };
        Ok(f)
    }

    /// Runs a delta round to its deltaLink. A source that refuses delta still
    /// syncs in full: the cursor is then left out.
    async fn initial_delta(
        &self,
        ctx: &SyncContext,
        g: &Graph,
        path: &str,
        what: &str,
    ) -> Result<Option<String>> {
        match g
            .pages(
                Some(ctx),
                &g.url(path),
                &format!("{what} delta"),
                "connecting",
            )
            .await
        {
            Ok((_, Some(link), _)) => Ok(Some(link)),
            Ok((_, None, _)) => {
                tracing::warn!(
                    what,
                    "Graph delta round ended without a deltaLink; syncs stay full"
                );
                Ok(None)
            }
            Err(e) if e.code == ErrorCode::SourceError => {
                tracing::warn!(what, error = %e, "Graph delta is not available; syncs stay full");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    async fn incremental(&self, ctx: &SyncContext, g: &Graph, cursor: Cursor) -> Result<Fetched> {
        let now = Utc::now();
        let tenant = ctx.setting("tenant_id")?;
        let (include_first_party, _) = Self::settings(ctx);
        let (user_items, users_link, user_ends) =
            g.delta(ctx, &cursor.users, "users", "people").await?;
        let (sp_items, sps_link, sp_ends) = g
            .delta(
                ctx,
                &cursor.service_principals,
                "servicePrincipals",
                "identities",
            )
            .await?;

        let mut f = Fetched::new(FetchMode::Incremental);
        // The last word on each id wins (an object may appear more than once).
        let (changed_users, removed_users) = changes(&user_items, &user_ends, "users", &mut f);
        f.removed_people = removed_users;
        for id in changed_users {
            let url = g.url(&format!("/v1.0/users/{id}?{USER_SELECT}"));
            match g.object(&url, "user").await {
                Ok(u) if str_at(&u, "id").is_none() => {
                    f.warn(format!("Graph user {id}: read back without an id; skipped"))
                }
                Ok(u) => f.people.push(user_to_person(&u, now)?),
                Err(e) if is_status(&e, 404) => f.removed_people.push(id),
                Err(e) => return Err(e),
            }
        }
        let (changed_sps, removed_sps) = changes(&sp_items, &sp_ends, "servicePrincipals", &mut f);
        f.removed_identities = removed_sps;
        let mut sps = Vec::new();
        for id in changed_sps {
            let url = g.url(&format!("/v1.0/servicePrincipals/{id}?{SP_SELECT}"));
            match g.object(&url, "servicePrincipal").await {
                Ok(sp) if str_at(&sp, "id").is_none() => f.warn(format!(
                    "Graph servicePrincipal {id}: read back without an id; skipped"
                )),
                Ok(sp) => sps.push(sp),
                Err(e) if is_status(&e, 404) => f.removed_identities.push(id),
                Err(e) => return Err(e),
            }
        }
        let mut builder = Builder {
            g,
            tenant,
            include_first_party,
            resources: HashMap::new(),
        };
        let mut ids = Vec::new();
        for sp in &sps {
            let id = id_of(sp, "servicePrincipal")?;
            builder.resources.insert(id.clone(), resource_sp(sp));
            if sp_kind(sp, include_first_party).is_some() {
                ids.push(id);
            }
        }
        let details = all_details(ctx, g, ids, &mut f).await?;
        // An upserted identity must bring all its credentials: read the
        // application behind each changed SP (none for managed identities).
        let mut apps: HashMap<String, Value> = HashMap::new();
        for sp in &sps {
            if sp_kind(sp, include_first_party).is_none() {
                continue;
            }
            let Some(app_id) = str_at(sp, "appId") else {
                continue;
            };
            let url = g.url(&format!(
                "/v1.0/applications(appId='{app_id}')?{APP_SELECT}"
            ));
            match g.object(&url, "application").await {
                Ok(app) => {
                    apps.insert(app_id.to_string(), app);
                }
                Err(e) if is_status(&e, 404) => {}
                Err(e) => return Err(e),
            }
        }
        builder.build(&mut f, &sps, &details, &apps).await?;
        if !f.identities.is_empty() {
            if let Some(last) = sign_ins(ctx, g).await? {
                apply_sign_ins(&mut f, &sps, &last);
            }
        }
        f.cursor = Some(serde_json::to_string(&Cursor {
            users: users_link,
            service_principals: sps_link,
            full_at: cursor.full_at,
        })?);
        Ok(f)
    }
}

/// Changed and removed ids of a delta round, deduplicated, last word wins.
/// An item without an id is skipped with a warning.
fn changes(
    items: &[Value],
    ends: &PageEnds,
    what: &str,
    f: &mut Fetched,
) -> (Vec<String>, Vec<String>) {
    let mut order: Vec<String> = Vec::new();
    let mut removed: HashMap<String, bool> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        let Some(id) = str_at(item, "id").map(str::to_string) else {
            f.warn(format!(
                "Graph {what} delta {} ({}): no id; skipped",
                ends.place(i),
                label(item)
            ));
            continue;
        };
        let gone = item.get("@removed").is_some();
        if removed.insert(id.clone(), gone).is_none() {
            order.push(id);
        }
    }
    let (mut changed, mut gone) = (Vec::new(), Vec::new());
    for id in order {
        if removed.get(&id).copied().unwrap_or(false) {
            gone.push(id);
        } else {
            changed.push(id);
        }
    }
    (changed, gone)
}

impl Source for EntraSource {
    async fn fetch(&self, ctx: &SyncContext) -> Result<Fetched> {
        let g = Graph::new(ctx)?;
        let (_, full_every) = Self::settings(ctx);
        let cursor = match ctx.cursor.as_deref() {
            None => None,
            Some(raw) => match serde_json::from_str::<Cursor>(raw) {
                Ok(c) => Some(c),
                // Written by another version: start over rather than fail.
                Err(_) => {
                    return Err(Error::new(
                        ErrorCode::CursorExpired,
                        "the stored Graph cursor is unreadable; a full resync is needed",
                    ))
                }
            },
        };
        match cursor {
            Some(c) if Utc::now() - c.full_at < chrono::Duration::hours(full_every) => {
                self.incremental(ctx, &g, c).await
            }
            _ => self.full(ctx, &g).await,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn privilege_rule() {
        assert_eq!(
            privilege_of("User.Read.All", true),
            (Privilege::Read, false)
        );
        assert_eq!(
            privilege_of("Directory.ReadWrite.All", true),
            (Privilege::Admin, true)
        );
        assert_eq!(privilege_of("Mail.Send", true), (Privilege::Write, true));
        assert_eq!(privilege_of("Mail.Send", false), (Privilege::Write, false));
        assert_eq!(
            privilege_of("Sites.FullControl.All", false),
            (Privilege::Admin, true)
        );
        assert_eq!(
            privilege_of("offline_access", false),
            (Privilege::Read, false)
        );
    }

    #[test]
    fn delta_changes_last_word_wins() {
        let items: Vec<Value> = serde_json::from_str(
            r#"[{"id":"a"},{"id":"b","@removed":{"reason":"deleted"}},{"id":"a","@removed":{"reason":"changed"}},{"id":"c"}]"#,
        )
        .unwrap();
        let mut f = Fetched::new(FetchMode::Incremental);
        let ends = PageEnds(vec![items.len()]);
        let (changed, removed) = changes(&items, &ends, "x", &mut f);
        assert_eq!(changed, vec!["c".to_string()]);
        assert_eq!(removed, vec!["a".to_string(), "b".to_string()]);
        assert!(f.warnings.is_empty());
    }

    #[test]
    fn objects_without_an_id_are_skipped_and_placed() {
        let items: Vec<Value> = serde_json::from_str(
            r#"[{"id":"a"},{"displayName":"ghost"},{"id":"c"},{"id":"a"},{"appId":"x"}]"#,
        )
        .unwrap();
        let ends = PageEnds(vec![2, 5]);
        assert_eq!(ends.place(0), "page 1 item 1");
        assert_eq!(ends.place(1), "page 1 item 2");
        assert_eq!(ends.place(2), "page 2 item 1");
        let mut f = Fetched::new(FetchMode::Full);
        let kept = with_ids(items.clone(), &ends, "servicePrincipals", &mut f);
        assert_eq!(kept.len(), 2);
        assert_eq!(f.warnings.len(), 3, "{:?}", f.warnings);
        assert!(f.warnings[0].contains("page 1 item 2") && f.warnings[0].contains("'ghost'"));
        assert!(f.warnings[1].contains("listed twice"));
        assert!(f.warnings[2].contains("page 2 item 3"));
        let mut f = Fetched::new(FetchMode::Incremental);
        let (changed, _) = changes(&items, &ends, "users", &mut f);
        assert_eq!(changed, vec!["a".to_string(), "c".to_string()]);
        assert_eq!(f.warnings.len(), 2);
    }
}
