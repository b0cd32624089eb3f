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
//! - Directory role assignments of each SP
//!   (`/roleManagement/directory/roleAssignments?$filter=principalId eq '{id}'&$expand=roleDefinition`)
//!   → grants on the tenant resource `entra:tenant/<tenant id>` (critical,
//!   kind [`DIRECTORY_KIND`]: IAM changes in the blast radius), or on
//!   `entra:tenant/<tenant id><directoryScopeId>` (high) for a scoped one.
//!   Well-known roles by template id ([`DIRECTORY_ROLES`]); a role not in
//!   the table is admin under its expanded `displayName`. Admin and write
//!   roles are high-consequence; reader roles are read grants.
//! - `/servicePrincipals/{id}/ownedObjects`: an SP owning an application
//!   (matched to its SP on `appId`) or another SP can add a credential to it
//!   and act as it, so it delegates to it ([`OWNERSHIP_EDGE`], impersonate).
//!   Read from the owner's side so that an owner re-read in an incremental
//!   run brings all its edges (the store replaces a touched identity's
//!   outgoing edges). Edges only between SPs this source imports; in an
//!   incremental run an owned object not in the change set is looked up.
//! - Entra Agent ID (beta only): `/beta/servicePrincipals/microsoft.graph.agentIdentity`
//!   and `/beta/applications/microsoft.graph.agentIdentityBlueprint`. An agent
//!   identity gets its blueprint's secrets and certificates (joined on
//!   `agentIdentityBlueprintId`, the blueprint's appId; ids `blueprint:`),
//!   `createdDateTime` as created, its sponsors
//!   (`/beta/servicePrincipals/{id}/Microsoft.Graph.AgentIdentity/sponsors`)
//!   as owner when no user owns it, and `lifecycle.expirationDateTime` noted
//!   in its description. Refused or absent: agents are plain SPs.
//! - Per-SP reads go through Graph JSON batching (`super::graph_batch`: 20 a
//!   request, throttled sub-requests alone after their own `Retry-After`)
//!   unless the setting `batch` is false. A 403/404 on role assignments,
//!   owned objects or sponsors is one warning; the rest is imported.
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
//! `full_resync_hours`, `batch` (default true). Secret: the client secret.
//! Permissions: `Application.Read.All`, `Directory.Read.All` (or
//! `RoleManagement.Read.Directory` for the role assignments),
//! `AuditLog.Read.All` for last use, `AgentIdentity.Read.All` for Agent ID.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::http::{HttpClient, Response};
use super::records::*;
use super::{Source, SyncContext};
use crate::error::{Error, ErrorCode, Result};
use crate::model::{
    AgentClass, CredentialKind, DelegationKind, IdentityKind, IdentityStatus, PersonStatus,
    Privilege, Sensitivity,
};

/// The settings of an Entra source (see `super::settings`).
pub const SETTINGS: &[super::settings::Setting] = {
    use super::settings::{Setting, SettingType as T};
    &[
        Setting::required("tenant_id", T::String, "the directory (tenant) id"),
        Setting::required(
            "client_id",
            T::String,
            "the application (client) id of the app registration Custodian signs in as (for an administrator sign-in: a public client app the administrator signs in to)",
        ),
        // The keyless modes first: a certificate, a federated token, an
        // administrator's sign-in; with none of them the secret is a client secret.
        Setting::sign_in(
            "certificate_file",
            T::String,
            "sign in with a certificate credential (recommended: no client secret): a PEM file with the certificate uploaded to the app registration; the secret is then the certificate's private key (PEM), or set private_key_file",
        ),
        Setting::optional(
            "certificate_thumbprint",
            T::String,
            None,
            "certificate credential, instead of certificate_file: the certificate's thumbprint in hex as the Entra admin center shows it (SHA-1), or its SHA-256",
        ),
        Setting::optional(
            "private_key_file",
            T::String,
            None,
            "certificate credential: a PEM file with the certificate's private key, instead of keeping it as the secret (readable by its owner only; a bundle with the certificate works)",
        ),
        Setting::sign_in(
            "federated_token_file",
            T::String,
            "workload identity federation for the headless worker (no secret at all): the file holding the token the platform issues to this workload, read again at each sign-in; $AZURE_FEDERATED_TOKEN_FILE reads the file that variable names (AKS workload identity, GitHub azure/login)",
        ),
        Setting::sign_in(
            "delegated",
            T::Bool,
            "an administrator signs in with a device code (quick start: no app secret or certificate is created); then press Sign in on the source's row (or run `custodian source sign-in NAME`) and enter the code shown; the refresh token is kept in the OS keyring",
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
        Setting::optional(
            "batch",
            T::Bool,
            Some("true"),
            "read each SP's owners, permissions and roles through Graph JSON batching ($batch, 20 per request)",
        ),
    ]
};

pub mod auth;

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

/// Graph with a token that renews itself; cheap to clone into tasks.
#[derive(Clone)]
struct Graph {
    http: HttpClient,
    base: String,
    token: Arc<auth::TokenSource>,
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
        let token = auth::TokenSource::new(ctx)?;
        let base = auth::Endpoints::of(&ctx.source.name, &ctx.source.settings)?.graph;
        Ok(Graph {
            http: ctx.http.clone(),
            token: Arc::new(token),
            base,
        })
    }

    async fn bearer(&self) -> Result<String> {
        self.token.bearer(&self.http).await
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

    /// Does the sign-in act as the app itself (not as a signed-in user)?
    fn app_only(&self) -> bool {
        self.token.app_only()
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

/// The blueprint's secrets and certificates on one of its agent identities
/// (ids prefixed `blueprint:`; the same credential shows on every agent
/// identity of the blueprint).
fn blueprint_credentials(app: &Value, identity: &str) -> Vec<CredentialRecord> {
    sp_credentials(app, identity)
        .into_iter()
        .map(|mut c| {
            c.external_id = format!("blueprint:{}", c.external_id);
            c.display_name = format!("{} (agent identity blueprint)", c.display_name);
            c
        })
        .collect()
}

/// The delegation kind of an ownership edge: the owner can add a credential
/// to the owned application or SP and then act as it.
pub const OWNERSHIP_EDGE: DelegationKind = DelegationKind::AddCredential;

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

/// Microsoft Entra built-in roles recognised by their `roleTemplateId` (for a
/// built-in role the `roleDefinitionId` of an assignment is the template id),
/// with the privilege an assignment of it confers. Source: Microsoft Entra
/// built-in roles, https://learn.microsoft.com/entra/identity/role-based-access-control/permissions-reference
/// ("All roles", column "Template ID"). Any other role (another built-in one,
/// a custom one) is an admin grant named by its expanded `displayName`.
pub const DIRECTORY_ROLES: &[(&str, &str, Privilege)] = &[
    (
        "62e90394-69f5-4237-9190-012177145e10",
        "Global Administrator",
        Privilege::Admin,
    ),
    (
        "e8611ab8-c189-46e8-94e1-60213ab1f814",
        "Privileged Role Administrator",
        Privilege::Admin,
    ),
    (
        "7be44c8a-adaf-4e2a-84d6-ab2649e08a13",
        "Privileged Authentication Administrator",
        Privilege::Admin,
    ),
    (
        "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3",
        "Application Administrator",
        Privilege::Admin,
    ),
    (
        "158c047a-c907-4556-b7ef-446551a6b5f7",
        "Cloud Application Administrator",
        Privilege::Admin,
    ),
    (
        "8ac3fc64-6eca-42ea-9e69-59f4c7b60eb2",
        "Hybrid Identity Administrator",
        Privilege::Admin,
    ),
    (
        "b1be1c3e-b65d-4f19-8427-f6fa0d97feb9",
        "Conditional Access Administrator",
        Privilege::Admin,
    ),
    (
        "9360feb5-f418-4baa-8175-e2a00bac4301",
        "Directory Writers",
        Privilege::Write,
    ),
    (
        "f2ef992c-3afb-46b9-b7cf-a126ee74c451",
        "Global Reader",
        Privilege::Read,
    ),
    (
        "88d8e3e3-8f55-4a1e-953a-9b9898b8876b",
        "Directory Readers",
        Privilege::Read,
    ),
];

/// The resource kind of the directory (its `iam` makes the blast radius call
/// its grants IAM changes).
pub const DIRECTORY_KIND: &str = "iam_directory";

/// A directory role assignment (`unifiedRoleAssignment`) as a grant on the
/// tenant resource (`entra:tenant/<tenant id>`), or on a directory-scope
/// resource (`entra:tenant/<tenant id><directoryScopeId>`, high) when the
/// assignment is scoped to an administrative unit or an application.
fn role_grant(a: &Value, identity: &str, tenant: &str) -> Option<(ResourceRecord, GrantRecord)> {
    let def = str_at(a, "roleDefinitionId")?.to_ascii_lowercase();
    let expanded = a.get("roleDefinition").filter(|d| d.is_object());
    let template = expanded
        .and_then(|d| str_at(d, "templateId"))
        .map(str::to_ascii_lowercase)
        .unwrap_or_else(|| def.clone());
    let known = DIRECTORY_ROLES.iter().find(|r| r.0 == template);
    let name = expanded
        .and_then(|d| str_at(d, "displayName"))
        .or(known.map(|k| k.1))
        .map_or_else(|| format!("directory role {def}"), str::to_string);
    let privilege = known.map_or(Privilege::Admin, |k| k.2);
    let scope = str_at(a, "directoryScopeId").unwrap_or("/");
    let tenant = tenant.trim();
    let (rid, rname, sensitivity) = if scope == "/" {
        (
            format!("entra:tenant/{tenant}"),
            format!("Entra directory (tenant {tenant})"),
            Sensitivity::Critical,
        )
    } else {
        (
            format!("entra:tenant/{tenant}{scope}"),
            format!("Entra directory scope {scope}"),
            Sensitivity::High,
        )
    };
    Some((
        ResourceRecord {
            external_id: rid.clone(),
            name: rname,
            kind: DIRECTORY_KIND.into(),
            sensitivity,
            environment: String::new(),
        },
        GrantRecord {
            identity: identity.to_string(),
            resource: rid,
            permission: format!("{name} (directory role)"),
            privilege,
            high_consequence: privilege != Privilege::Read,
            last_used_at: None,
        },
    ))
}

/// What is read per SP.
struct SpDetails {
    owner: Option<String>,
    assignments: Vec<Value>,
    delegated: Vec<Value>,
    /// Directory role assignments held by the SP.
    roles: Vec<Value>,
    /// Objects the SP owns (applications, service principals).
    owned: Vec<Value>,
    /// Agent identities: the sponsors' ids.
    sponsors: Vec<String>,
}

/// The per-SP reads, relative to `/v1.0`, in the order [`SpDetails`] takes them.
fn detail_urls(sp_id: &str) -> [String; 5] {
    [
        format!("/servicePrincipals/{sp_id}/owners?$select=id"),
        format!("/servicePrincipals/{sp_id}/appRoleAssignments"),
        format!("/servicePrincipals/{sp_id}/oauth2PermissionGrants"),
        format!(
            "/roleManagement/directory/roleAssignments?$filter=principalId eq '{sp_id}'&$expand=roleDefinition"
        ),
        format!("/servicePrincipals/{sp_id}/ownedObjects"),
    ]
}

/// The sponsors of an agent identity, relative to `/beta` (the documented
/// `GET /servicePrincipals/{id}/Microsoft.Graph.AgentIdentity/sponsors`).
fn sponsors_url(sp_id: &str) -> String {
    format!("/servicePrincipals/{sp_id}/Microsoft.Graph.AgentIdentity/sponsors")
}

/// One listing per URL, in order (each may have failed on its own).
type Lists = Vec<Result<Vec<Value>>>;

/// How many batches are in flight at once (the HTTP client bounds requests too).
const BATCH_TASKS: usize = 4;

impl Graph {
    /// GETs each of `urls` (relative to `/{version}`) as a listing followed
    /// to its last page: through JSON batching when `batch` (20 a request,
    /// throttled sub-requests sent again after their own `Retry-After`, see
    /// `graph_batch`), else one request each. One result per URL, in order;
    /// a failed sub-request is an `Err` naming its HTTP status like a direct
    /// request's.
    async fn lists(&self, version: &str, urls: Vec<String>, batch: bool) -> Result<Lists> {
        let n = urls.len();
        let mut out: Vec<Option<Result<Vec<Value>>>> = (0..n).map(|_| None).collect();
        let urls = Arc::new(urls);
        let mut set = tokio::task::JoinSet::new();
        if batch {
            let mut chunks = (0..n)
                .collect::<Vec<_>>()
                .chunks(super::graph_batch::MAX_PER_BATCH)
                .map(<[usize]>::to_vec)
                .collect::<Vec<_>>()
                .into_iter();
            loop {
                while set.len() < BATCH_TASKS {
                    let Some(chunk) = chunks.next() else { break };
                    let (g, urls, version) = (self.clone(), urls.clone(), version.to_string());
                    set.spawn(async move {
                        let r = g.batch_chunk(&version, &urls, &chunk).await;
                        (chunk, r)
                    });
                }
                let Some(joined) = set.join_next().await else {
                    break;
                };
                let (chunk, r) = joined
                    .map_err(|e| Error::internal(format!("a Graph batch task failed: {e}")))?;
                for (i, item) in chunk.into_iter().zip(r?) {
                    out[i] = Some(item);
                }
            }
        } else {
            let mut pending = 0..n;
            loop {
                while set.len() < PER_SP_TASKS {
                    let Some(i) = pending.next() else { break };
                    let (g, urls, version) = (self.clone(), urls.clone(), version.to_string());
                    set.spawn(async move {
                        let url = g.url(&format!("/{version}{}", urls[i]));
                        let r = g.list(None, &url, "relation", "").await;
                        (vec![i], Ok(vec![r]))
                    });
                }
                let Some(joined) = set.join_next().await else {
                    break;
                };
                let (idx, r): (Vec<usize>, Result<Lists>) =
                    joined.map_err(|e| Error::internal(format!("a Graph task failed: {e}")))?;
                for (i, item) in idx.into_iter().zip(r?) {
                    out[i] = Some(item);
                }
            }
        }
        Ok(out
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(Error::internal("a Graph read was not run"))))
            .collect())
    }

    /// One batch of at most 20 listings; pages after the first are read directly.
    async fn batch_chunk(&self, version: &str, urls: &[String], chunk: &[usize]) -> Result<Lists> {
        self.http.cancel().check()?;
        let endpoint = self.url(&format!("/{version}/$batch"));
        let items: Vec<(usize, &str)> = chunk.iter().map(|&i| (i, urls[i].as_str())).collect();
        let policy = self.http.policy().clone();
        let outcome = super::graph_batch::run(&policy, &items, |body| {
            let g = self.clone();
            let endpoint = endpoint.clone();
            async move {
                let token = g.bearer().await?;
                g.http
                    .post_body(
                        &endpoint,
                        &[
                            ("authorization", format!("Bearer {token}")),
                            ("accept", "application/json".into()),
                        ],
                        "application/json",
                        body,
                        None,
                    )
                    .await?
                    .json::<Value>("Graph $batch")
            }
        })
        .await?;
        let mut responses = outcome.responses;
        let mut out = Vec::with_capacity(chunk.len());
        for &i in chunk {
            let url = &urls[i];
            let Some(r) = responses.remove(&i) else {
                out.push(Err(Error::internal("a Graph batch entry went missing")));
                continue;
            };
            if !(200..300).contains(&r.status) {
                let detail = r
                    .body
                    .get("error")
                    .and_then(|e| str_at(e, "code").or_else(|| str_at(e, "message")))
                    .unwrap_or("")
                    .to_string();
                out.push(Err(Error::new(
                    ErrorCode::SourceError,
                    format!(
                        "Graph {}: HTTP {} {detail}",
                        super::http::redact(url),
                        r.status
                    ),
                )));
                continue;
            }
            let mut items = match r.body.get("value").and_then(Value::as_array) {
                Some(v) => v.clone(),
                None => {
                    out.push(Err(Error::new(
                        ErrorCode::MalformedResponse,
                        format!(
                            "Graph {}: a batch response has no 'value'",
                            super::http::redact(url)
                        ),
                    )));
                    continue;
                }
            };
            if let Some(next) = str_at(&r.body, "@odata.nextLink") {
                match self.list(None, next, "relation", "").await {
                    Ok(more) => items.extend(more),
                    Err(e) => {
                        out.push(Err(e));
                        continue;
                    }
                }
            }
            out.push(Ok(items));
        }
        Ok(out)
    }
}

/// Was a read refused for lack of permission or not offered by this tenant?
fn is_refused(e: &Error) -> bool {
    e.code == ErrorCode::SourceAuth || is_status(e, 403) || is_status(e, 404) || is_status(e, 400)
}

/// Reads the details of many SPs (through `$batch` unless the source's
/// `batch` setting is false). An SP gone while we listed is skipped with a
/// warning; role assignments, owned objects or sponsors Graph refuses (403)
/// are a warning each, once, and the rest of the run goes on.
async fn all_details(
    ctx: &SyncContext,
    g: &Graph,
    ids: Vec<String>,
    agents: &HashSet<String>,
    f: &mut Fetched,
) -> Result<HashMap<String, SpDetails>> {
    let batch = ctx
        .source
        .settings
        .get("batch")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let total = ids.len() as u64;
    let urls: Vec<String> = ids.iter().flat_map(|id| detail_urls(id)).collect();
    let mut results = g.lists("v1.0", urls, batch).await?.into_iter();
    let agent_ids: Vec<&String> = ids.iter().filter(|id| agents.contains(*id)).collect();
    let sponsor_urls: Vec<String> = agent_ids.iter().map(|id| sponsors_url(id)).collect();
    let mut sponsors: HashMap<String, Result<Vec<Value>>> = agent_ids
        .iter()
        .map(|id| (*id).clone())
        .zip(g.lists("beta", sponsor_urls, batch).await?)
        .collect();
    let mut refused: HashSet<&'static str> = HashSet::new();
    let mut out = HashMap::with_capacity(ids.len());
    for id in ids {
        let mut next = || {
            results
                .next()
                .unwrap_or_else(|| Err(Error::internal("a Graph read went missing")))
        };
        let (owners, assignments, delegated, roles, owned) =
            (next(), next(), next(), next(), next());
        let mut gone = false;
        let mut take = |r: Result<Vec<Value>>,
                        what: &'static str,
                        optional: bool|
         -> Result<Vec<Value>> {
            match r {
                Ok(v) => Ok(v),
                Err(e) if is_status(&e, 404) && !optional => {
                    gone = true;
                    Ok(vec![])
                }
                Err(e) if optional && is_refused(&e) => {
                    if refused.insert(what) {
                        f.warn(format!(
                            "Graph refused the {what} of service principals ({}); they are not imported",
                            e.message
                        ));
                    }
                    Ok(vec![])
                }
                Err(e) => Err(e),
            }
        };
        let owners = take(owners, "owners", false)?;
        let assignments = take(assignments, "appRoleAssignments", false)?;
        let delegated = take(delegated, "oauth2PermissionGrants", false)?;
        let roles = take(
            roles,
            "directory role assignments (RoleManagement.Read.Directory)",
            true,
        )?;
        let owned = take(owned, "ownedObjects", true)?;
        let sponsor_list = match sponsors.remove(&id) {
            Some(r) => take(r, "agent identity sponsors", true)?,
            None => vec![],
        };
        if gone {
            f.warn(format!(
                "Graph servicePrincipal {id}: not found when reading its owners and permissions \
                 (deleted during the sync?); skipped"
            ));
            continue;
        }
        let owner = owners
            .iter()
            .find(|o| {
                str_at(o, "@odata.type")
                    .is_some_and(|t| t.eq_ignore_ascii_case("#microsoft.graph.user"))
            })
            .and_then(|o| str_at(o, "id"))
            .map(str::to_string);
        let sponsors = sponsor_list
            .iter()
            .filter(|s| {
                // Users (or untyped directory objects); never groups or SPs.
                str_at(s, "@odata.type").is_none_or(|t| {
                    let t = t.to_ascii_lowercase();
                    t.ends_with(".user") || t.ends_with(".directoryobject")
                })
            })
            .filter_map(|s| str_at(s, "id").map(str::to_string))
            .collect();
        out.insert(
            id.clone(),
            SpDetails {
                owner,
                assignments,
                delegated,
                roles,
                owned,
                sponsors,
            },
        );
    }
    ctx.report("identities", 0, out.len() as u64, Some(total));
    Ok(out)
}
/// Turns SPs and their details into identities, credentials, resources and grants.
struct Builder<'a> {
    g: &'a Graph,
    tenant: String,
    include_first_party: bool,
    /// Every SP known by id (resource SPs included).
    resources: HashMap<String, ResourceSp>,
    /// Agent identities by SP id, as the Agent ID listing returned them.
    agents: HashMap<String, Value>,
    /// The SPs an owned object lets its owner act as.
    targets: Targets,
}

/// Which SP an owned object stands for (an application: the SP of its
/// `appId`), and whether that SP is one this source imports. A full run
/// knows every SP from its listing; an incremental one asks Graph about the
/// few it has not seen.
#[derive(Default)]
struct Targets {
    /// appId (lower case) → SP id.
    by_app: HashMap<String, String>,
    /// SP id → imported (an NHI of this tenant)?
    importable: HashMap<String, bool>,
    /// Ask Graph about unknown objects (incremental runs).
    lookup: bool,
}

const TARGET_SELECT: &str = "$select=id,appId,servicePrincipalType,appOwnerOrganizationId,tags";

impl Targets {
    fn from_listing(sps: &[Value], include_first_party: bool) -> Targets {
        let mut t = Targets::default();
        for sp in sps {
            let Some(id) = str_at(sp, "id") else { continue };
            if let Some(app) = str_at(sp, "appId") {
                t.by_app.insert(app.to_ascii_lowercase(), id.to_string());
            }
            t.importable
                .insert(id.to_string(), sp_kind(sp, include_first_party).is_some());
        }
        t
    }

    /// The imported SP that `owned` (an item of `ownedObjects`) stands for.
    async fn resolve(
        &mut self,
        g: &Graph,
        owned: &Value,
        include_first_party: bool,
    ) -> Result<Option<String>> {
        let ty = str_at(owned, "@odata.type")
            .unwrap_or("")
            .to_ascii_lowercase();
        let is_sp = ty.ends_with("serviceprincipal")
            || ty.ends_with("agentidentity")
            || ty.ends_with("agentidentityblueprintprincipal");
        let is_app =
            !is_sp && (ty.ends_with(".application") || ty.ends_with("agentidentityblueprint"));
        let sp_id = if is_sp {
            str_at(owned, "id").map(str::to_string)
        } else if is_app {
            let Some(app) = str_at(owned, "appId").map(str::to_ascii_lowercase) else {
                return Ok(None);
            };
            match self.by_app.get(&app) {
                Some(id) => Some(id.clone()),
                None if self.lookup => {
                    let url = g.url(&format!(
                        "/v1.0/servicePrincipals(appId='{app}')?{TARGET_SELECT}"
                    ));
                    match g.object(&url, "servicePrincipal").await {
                        Ok(sp) => {
                            let id = str_at(&sp, "id").map(str::to_string);
                            if let Some(id) = &id {
                                self.importable.insert(
                                    id.clone(),
                                    sp_kind(&sp, include_first_party).is_some(),
                                );
                                self.by_app.insert(app, id.clone());
                            }
                            id
                        }
                        Err(e) if is_status(&e, 404) => None,
                        Err(e) => return Err(e),
                    }
                }
                None => None,
            }
        } else {
            None
        };
        let Some(id) = sp_id else { return Ok(None) };
        let importable = match self.importable.get(&id) {
            Some(&known) => known,
            None if self.lookup => {
                let url = g.url(&format!("/v1.0/servicePrincipals/{id}?{TARGET_SELECT}"));
                let known = match g.object(&url, "servicePrincipal").await {
                    Ok(sp) => sp_kind(&sp, include_first_party).is_some(),
                    Err(e) if is_status(&e, 404) => false,
                    Err(e) => return Err(e),
                };
                self.importable.insert(id.clone(), known);
                known
            }
            None => false,
        };
        Ok(importable.then_some(id))
    }
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
            let agent = self.agents.get(&id);
            // An agent identity without a user owner: its sponsors are the
            // accountable people (the first one that is a person here).
            let owner = d.owner.clone().or_else(|| d.sponsors.first().cloned());
            let mut identity = sp_to_identity(sp, &self.tenant, kind, owner)?;
            identity.created_at = agent
                .and_then(|a| time_at(a, "createdDateTime"))
                .or_else(|| time_at(sp, "createdDateTime"));
            if let Some(exp) = agent
                .and_then(|a| a.get("lifecycle"))
                .and_then(|l| time_at(l, "expirationDateTime"))
            {
                let note = format!("agent identity lifecycle expires {}", exp.to_rfc3339());
                identity.description = if identity.description.is_empty() {
                    note
                } else {
                    format!("{}; {note}", identity.description)
                };
            }
            f.identities.push(identity);
            f.credentials.extend(sp_credentials(sp, &id));
            let own_app = str_at(sp, "appId");
            if let Some(app) = own_app.and_then(|a| apps.get(a)) {
                f.credentials.extend(app_credentials(app, &id));
            }
            // Entra Agent ID: an agent identity authenticates with the
            // credentials of its blueprint (`agentIdentityBlueprintId` is the
            // blueprint's appId).
            if let Some(bp) = agent
                .and_then(|a| str_at(a, "agentIdentityBlueprintId"))
                .or_else(|| str_at(sp, "agentIdentityBlueprintId"))
                .filter(|bp| own_app.is_none_or(|o| !o.eq_ignore_ascii_case(bp)))
            {
                if let Some(app) = apps.get(bp) {
                    f.credentials.extend(blueprint_credentials(app, &id));
                }
            }
            // One grant per role and scope.
            let mut roles_seen: HashSet<(String, String)> = HashSet::new();
            for a in &d.roles {
                if let Some((r, g)) = role_grant(a, &id, &self.tenant) {
                    if !roles_seen.insert((g.resource.clone(), g.permission.clone())) {
                        continue;
                    }
                    resources.entry(r.external_id.clone()).or_insert(r);
                    f.grants.push(g);
                }
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
        // Ownership: an SP that owns an application or another SP can add a
        // credential to it and act as it (the "add secret" path), so it
        // delegates to that SP. Only edges between identities this source
        // imports: an edge to a first-party or skipped SP leads nowhere here.
        let emitted: HashSet<String> = f.identities.iter().map(|i| i.external_id.clone()).collect();
        let mut edges: HashSet<(String, String)> = HashSet::new();
        for sp in sps {
            let Some(id) = str_at(sp, "id") else { continue };
            let Some(d) = details.get(id) else { continue };
            if !emitted.contains(id) {
                continue;
            }
            for o in &d.owned {
                let Some(to) = self
                    .targets
                    .resolve(self.g, o, self.include_first_party)
                    .await?
                else {
                    continue;
                };
                let known = emitted.contains(&to) || self.targets.lookup;
                if to != id && known && edges.insert((id.to_string(), to.clone())) {
                    f.delegations
                        .push(DelegationRecord::new(id.to_string(), to, OWNERSHIP_EDGE));
                }
            }
        }
        Ok(())
    }
}

/// Entra Agent ID (beta): the agent identities by SP id
/// (`GET /beta/servicePrincipals/microsoft.graph.agentIdentity`) and the agent
/// identity blueprints by appId
/// (`GET /beta/applications/microsoft.graph.agentIdentityBlueprint`). A
/// tenant that refuses them (no Agent ID, no beta, no permission) has none.
async fn agent_id(
    ctx: &SyncContext,
    g: &Graph,
) -> Result<(HashMap<String, Value>, HashMap<String, Value>)> {
    let mut agents = HashMap::new();
    let mut blueprints = HashMap::new();
    let reads = [
        ("/beta/servicePrincipals/microsoft.graph.agentIdentity", "agentIdentities", "id"),
        (
            "/beta/applications/microsoft.graph.agentIdentityBlueprint?$select=id,appId,displayName,passwordCredentials,keyCredentials,createdDateTime",
            "agentIdentityBlueprints",
            "appId",
        ),
    ];
    for (path, what, key) in reads {
        match g.list(Some(ctx), &g.url(path), what, "identities").await {
            Ok(items) => {
                let into = if key == "id" {
                    &mut agents
                } else {
                    &mut blueprints
                };
                for item in items {
                    if let Some(k) = str_at(&item, key).map(str::to_string) {
                        into.insert(k, item);
                    }
                }
            }
            Err(e) if matches!(e.code, ErrorCode::SourceAuth | ErrorCode::SourceError) => {
                tracing::warn!(what, error = %e, "Graph Agent ID is not available; agents are read as service principals");
            }
            Err(e) => return Err(e),
        }
    }
    Ok((agents, blueprints))
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
        f.signed_in_as = signed_in_as(ctx, g, &sps);
        let (agents, blueprints) = agent_id(ctx, g).await?;
        let mut builder = Builder {
            g,
            tenant,
            include_first_party,
            resources: HashMap::new(),
            targets: Targets::from_listing(&sps, include_first_party),
            agents,
        };
        let mut ids = Vec::new();
        for sp in &sps {
            let id = id_of(sp, "servicePrincipal")?;
            builder.resources.insert(id.clone(), resource_sp(sp));
            if sp_kind(sp, include_first_party).is_some() {
                ids.push(id);
            }
        }
        let agent_ids: HashSet<String> = builder.agents.keys().cloned().collect();
        let details = all_details(ctx, g, ids, &agent_ids, &mut f).await?;
        let mut apps: HashMap<String, Value> = g
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
        for (app_id, bp) in blueprints {
            apps.entry(app_id).or_insert(bp);
        }
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
        f.signed_in_as = signed_in_as(ctx, g, &sps);
        // Agent ID is read again only when an agent identity changed.
        let any_agent = sps.iter().any(|sp| {
            str_at(sp, "servicePrincipalType")
                .is_some_and(|t| t.eq_ignore_ascii_case("ServiceIdentity"))
        });
        let (agents, blueprints) = if any_agent {
            agent_id(ctx, g).await?
        } else {
            (HashMap::new(), HashMap::new())
        };
        let mut targets = Targets::from_listing(&sps, include_first_party);
        targets.lookup = true;
        let mut builder = Builder {
            g,
            tenant,
            include_first_party,
            resources: HashMap::new(),
            targets,
            agents,
        };
        let mut ids = Vec::new();
        for sp in &sps {
            let id = id_of(sp, "servicePrincipal")?;
            builder.resources.insert(id.clone(), resource_sp(sp));
            if sp_kind(sp, include_first_party).is_some() {
                ids.push(id);
            }
        }
        let agent_ids: HashSet<String> = builder
            .agents
            .keys()
            .filter(|id| ids.contains(id))
            .cloned()
            .collect();
        let details = all_details(ctx, g, ids, &agent_ids, &mut f).await?;
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
        // An agent identity's blueprint: from the Agent ID listing, or read by appId.
        for (id, a) in &builder.agents {
            let Some(bp) = str_at(a, "agentIdentityBlueprintId") else {
                continue;
            };
            if !details.contains_key(id) || apps.contains_key(bp) {
                continue;
            }
            if let Some(b) = blueprints.get(bp) {
                apps.insert(bp.to_string(), b.clone());
                continue;
            }
            let url = g.url(&format!("/v1.0/applications(appId='{bp}')?{APP_SELECT}"));
            match g.object(&url, "agent identity blueprint").await {
                Ok(app) => {
                    apps.insert(bp.to_string(), app);
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

/// The service principal Custodian signs in as: the one of the app
/// (`appId` = `client_id`) among `sps`. An app-only sign-in acts as that
/// SP; a delegated one (device code) acts as the signed-in user, who is a
/// person, not an NHI of this source: `None`. An incremental run finds it
/// only when the SP changed (the stored one is kept otherwise).
fn signed_in_as(ctx: &SyncContext, g: &Graph, sps: &[Value]) -> Option<String> {
    if !g.app_only() {
        return None;
    }
    let client_id = ctx.setting("client_id").ok()?;
    sps.iter()
        .find(|sp| str_at(sp, "appId").is_some_and(|a| a.eq_ignore_ascii_case(client_id.trim())))
        .and_then(|sp| str_at(sp, "id"))
        .map(str::to_string)
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
        let mut f = match cursor {
            Some(c) if Utc::now() - c.full_at < chrono::Duration::hours(full_every) => {
                self.incremental(ctx, &g, c).await
            }
            _ => self.full(ctx, &g).await,
        }?;
        // A delegated sign-in's refresh token is replaced at each use.
        f.rotated_secret = g.token.take_rotated().map(RotatedSecret::new);
        Ok(f)
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
