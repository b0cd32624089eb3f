//! Okta (management API, `Authorization: SSWS <API token>`).
//!
//! Mapping:
//! - users → people: `DEPROVISIONED` → departed (`left_at` = `statusChanged`),
//!   `SUSPENDED` → suspended, any other status → active; `profile.managerId`
//!   is the manager. A user whose `profile.userType`, or whose Okta user type
//!   (`type.id`, named through `/api/v1/meta/types/user`), names a machine
//!   (see [`super::scim::machine_kind`]) is a non-human identity instead:
//!   `SUSPENDED`/`DEPROVISIONED` → disabled, `managerId` → owner, `lastLogin`
//!   → last used. The plain user listing omits deprovisioned users, so they
//!   are listed separately with `search=status eq "DEPROVISIONED"`.
//! - apps whose `settings.oauthClient.application_type` is `service` →
//!   `oauth_app` identities (`INACTIVE` → disabled); their active client
//!   secrets (`/credentials/secrets`, `client_secret_*` auth) → `client_secret`
//!   and their JWKS keys (`/credentials/jwks`, `private_key_jwt`) →
//!   `certificate`; their active scope grants (`/apps/{id}/grants`) → grants on
//!   the resource "Okta API" (critical): `*.manage` → admin and
//!   high-consequence, `*.read` → read, anything else → write.
//! - API tokens (`/api/v1/api-tokens`) → `api_key` identities owned by
//!   `userId`, each with one `api_token` credential (created, `expiresAt`).
//! - groups → resources (`group`; high sensitivity when the name says admin);
//!   the membership of a non-human user → a grant `member` (admin and
//!   high-consequence for admin groups, read otherwise).
//!
//! Pagination follows `rel="next"` across every `link` header. Throttling
//! (429 + `X-Rate-Limit-Reset`) is handled by the shared HTTP client.
//!
//! Always a full fetch. Okta can list users changed since a time
//! (`filter=lastUpdated gt "…"`), but apps, API tokens and group
//! memberships have no such filter and no deletion feed, and the engine's
//! incremental mode needs every upserted identity to bring its complete
//! grants and every removal to be named: a users-only increment would either
//! miss removed apps and tokens or have to re-read everything anyway. Reading
//! users is the cheap part of a run, so correctness wins.
//!
//! Tolerant reading: a user, app, API token or group without an `id` is
//! skipped and named in the run's warnings; an app's client secret or JSON
//! web key list that is not the documented array (Okta's own example for the
//! key list answers one object) is read as well as it can be (a JWKS as its
//! keys, one key object as one key) and noted. An API token past its
//! `expiresAt` is disabled (its description says expired): Okta keeps
//! listing it and has no status of its own.
//!
//! A refused read of user types, API tokens or app grants fails the run
//! rather than silently dropping what it would have named: in a full fetch a
//! missing identity is a deleted one.
//!
//! Settings: `org_url` (e.g. `https://acme.okta.com`), and for the keyless
//! mode `client_id`, `key_id`, `private_key_file`, `scopes`.
//!
//! Two ways to sign in, told apart by `client_id`:
//! - **OAuth service app, `private_key_jwt`** (`client_id` set; offered
//!   first, as Okta recommends over API tokens): Custodian signs a client
//!   assertion with the app's private key ([`super::jwt`]; `iss` = `sub` =
//!   the client id, `aud` = `{org_url}/oauth2/v1/token`, `iat` now, `exp`
//!   five minutes on, a unique `jti`, the header's `kid` = `key_id`) and
//!   posts it to the org authorization server's `/oauth2/v1/token`
//!   (`grant_type=client_credentials`, `scope` = [`SCOPES`] unless `scopes`
//!   says otherwise). The access token (an hour) is used as
//!   `Authorization: Bearer …`, kept in memory only and fetched again five
//!   minutes before it expires, or at once when Okta refuses it (401; that
//!   request is retried once). The private key is the source's secret
//!   (PEM), or the file `private_key_file`.
//! - **API token** (no `client_id`): the secret is an SSWS API token, which
//!   acts with all the admin rights of the user who made it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::http::HttpClient;
use super::records::*;
use super::scim::machine_kind;
use super::{Source, SyncContext};
use crate::error::{Error, ErrorCode, Result};
use crate::model::{CredentialKind, IdentityStatus, PersonStatus, Privilege, Sensitivity};

/// The settings of an Okta source (see `super::settings`).
pub const SETTINGS: &[super::settings::Setting] = {
    use super::settings::{Setting, SettingType as T};
    &[
        Setting::required(
            "org_url",
            T::Url,
            "the Okta org, e.g. https://acme.okta.com",
        ),
        Setting::sign_in(
            "client_id",
            T::String,
            "sign in as an OAuth service app with private_key_jwt (recommended: no API token): the app's client ID; the secret is then its private key (PEM). Leave empty to use an API token as the secret",
        ),
        Setting::optional(
            "key_id",
            T::String,
            None,
            "service app mode: the kid of the app's public key in Okta (needed when the app has more than one)",
        ),
        Setting::optional(
            "private_key_file",
            T::String,
            None,
            "service app mode: a PEM file with the app's private key, instead of keeping it as the secret (readable by its owner only)",
        ),
        Setting::optional(
            "scopes",
            T::List,
            None,
            "service app mode: the scopes to ask for (default: the read scopes the connector needs, okta.users.read, okta.userTypes.read, okta.apps.read, okta.appGrants.read, okta.apiTokens.read, okta.groups.read)",
        ),
    ]
};

/// The Okta API scopes the reads need (service app mode): users, user
/// types, apps (and their client secrets and keys), app grants, API tokens,
/// groups and their members. Each must be granted to the app (its Okta API
/// Scopes tab), and the app's admin role must allow the reads.
pub const SCOPES: &[&str] = &[
    "okta.users.read",
    "okta.userTypes.read",
    "okta.apps.read",
    "okta.appGrants.read",
    "okta.apiTokens.read",
    "okta.groups.read",
];

/// The service app's client id, when the source signs in as one.
pub fn client_id(settings: &Value) -> Option<String> {
    settings
        .get("client_id")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_string)
}

/// How an Okta source signs in, for `source show`: the mode and the
/// identity it signs in as.
pub fn sign_in(settings: &Value) -> (String, String) {
    match client_id(settings) {
        Some(id) => (
            "OAuth service app (private_key_jwt client assertion, hour-long access tokens)".into(),
            format!(
                "service app {id}{}{}",
                settings
                    .get("key_id")
                    .and_then(Value::as_str)
                    .map_or_else(String::new, |k| format!(", key {k}")),
                match settings.get("private_key_file").and_then(Value::as_str) {
                    Some(f) => format!("; private key in {f}"),
                    None => "; private key in the secret".into(),
                }
            ),
        ),
        None => (
            "API token (the secret, sent as SSWS)".into(),
            "the admin who created the API token".into(),
        ),
    }
}

/// How the connector signs in (see the module doc).
enum OktaAuth {
    Ssws(String),
    ServiceApp(ServiceApp),
}

struct ServiceApp {
    client_id: String,
    key_id: Option<String>,
    key: super::jwt::SigningKey,
    token_url: String,
    scopes: String,
    /// The access token and when to fetch the next one.
    current: tokio::sync::Mutex<Option<(String, std::time::Instant)>>,
}

#[derive(serde::Serialize)]
struct Assertion<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
    jti: String,
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl ServiceApp {
    /// The signed client assertion (`private_key_jwt`).
    fn assertion(&self) -> Result<String> {
        let now = Utc::now().timestamp();
        self.key.sign(
            self.key_id.as_deref(),
            &Assertion {
                iss: &self.client_id,
                sub: &self.client_id,
                aud: &self.token_url,
                iat: now,
                exp: now + 300,
                jti: super::jwt::jti()?,
            },
        )
    }

    async fn access_token(&self, http: &HttpClient) -> Result<String> {
        let mut current = self.current.lock().await;
        if let Some((t, until)) = current.as_ref() {
            if std::time::Instant::now() < *until {
                return Ok(t.clone());
            }
        }
        let assertion = self.assertion()?;
        let form = [
            ("grant_type", "client_credentials"),
            ("scope", self.scopes.as_str()),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion.as_str()),
        ];
        let resp = http
            .post_form(&self.token_url, &[("accept", "application/json".into())], &form)
            .await
            .map_err(|e| {
                if matches!(e.code, ErrorCode::SourceAuth | ErrorCode::SourceError) {
                    let dpop = if e.message.to_ascii_lowercase().contains("dpop") {
                        "; the app requires DPoP, which Custodian does not send: clear \"Require Demonstrating Proof of Possession (DPoP) header in token requests\" on the app"
                    } else {
                        ""
                    };
                    Error::new(
                        ErrorCode::SourceAuth,
                        format!(
                            "Okta refused the sign-in as service app {}: {}{dpop}; check the client id, that the key (kid {}) is one of the app's public keys, that the app uses Public key / Private key client authentication and is granted the scopes {}",
                            self.client_id,
                            e.message,
                            self.key_id.as_deref().unwrap_or("none given"),
                            self.scopes
                        ),
                    )
                } else {
                    e
                }
            })?;
        let tok: TokenResponse = resp.json("Okta token")?;
        // Fetched again five minutes before it expires (Okta's are an
        // hour); a token that short-lived, at half its life.
        let secs = tok.expires_in.unwrap_or(3600);
        let life = std::time::Duration::from_secs(if secs > 600 { secs - 300 } else { secs / 2 });
        *current = Some((tok.access_token.clone(), std::time::Instant::now() + life));
        Ok(tok.access_token)
    }
}

impl ServiceApp {
    /// Forgets `token` if it is still the current one (Okta refused it).
    async fn forget(&self, token: &str) {
        let mut current = self.current.lock().await;
        if current.as_ref().is_some_and(|(t, _)| t == token) {
            *current = None;
        }
    }
}

impl OktaAuth {
    async fn header(&self, http: &HttpClient) -> Result<String> {
        match self {
            OktaAuth::Ssws(t) => Ok(format!("SSWS {t}")),
            OktaAuth::ServiceApp(app) => Ok(format!("Bearer {}", app.access_token(http).await?)),
        }
    }
}

pub struct OktaSource;

/// The resource Okta scope grants are on.
const OKTA_API: &str = "okta-api";
const PAGE: &str = "limit=200";
/// How many per-group or per-app reads run at once.
const TASKS: usize = 16;

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    cur.as_str().map(str::trim).filter(|s| !s.is_empty())
}

fn time_at(v: &Value, path: &[&str]) -> Option<DateTime<Utc>> {
    str_at(v, path)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

fn id_of(v: &Value, what: &str) -> Result<String> {
    str_at(v, &["id"]).map(str::to_string).ok_or_else(|| {
        Error::new(
            ErrorCode::MalformedResponse,
            format!("Okta: a {what} has no id"),
        )
    })
}

fn is_not_found(e: &Error) -> bool {
    e.code == ErrorCode::SourceError && e.message.contains("HTTP 404 ")
}

/// The `rel="next"` target among `link` header values (one link per header
/// line, as Okta sends them, or several comma-joined in one line).
pub fn next_link(values: &[String]) -> Option<String> {
    for v in values {
        let mut rest = v.as_str();
        while let Some(open) = rest.find('<') {
            let Some(close) = rest[open..].find('>').map(|c| open + c) else {
                break;
            };
            let url = &rest[open + 1..close];
            let after = &rest[close + 1..];
            let params_end = after.find('<').unwrap_or(after.len());
            let params = &after[..params_end];
            let is_next = params.split(';').any(|p| {
                let p = p.trim().trim_end_matches(',').trim();
                p.strip_prefix("rel=")
                    .map(|r| {
                        r.trim_matches('"')
                            .split_whitespace()
                            .any(|r| r.eq_ignore_ascii_case("next"))
                    })
                    .unwrap_or(false)
            });
            if is_next {
                return Some(url.trim().to_string());
            }
            rest = &after[params_end..];
        }
    }
    None
}

#[derive(Clone)]
struct Okta {
    http: HttpClient,
    base: String,
    auth: Arc<OktaAuth>,
}

impl Okta {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Every item of a paged list (a JSON array per page).
    async fn list(
        &self,
        ctx: Option<&SyncContext>,
        first: &str,
        what: &str,
        phase: &str,
    ) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        let mut url = first.to_string();
        let mut seen = HashSet::new();
        let mut pages = 0u64;
        loop {
            self.http.cancel().check()?;
            let resp = self.get(&url).await?;
            let page: Vec<Value> = resp.json(&format!("Okta {what} page {}", pages + 1))?;
            pages += 1;
            out.extend(page);
            if let Some(ctx) = ctx {
                ctx.report(phase, pages, out.len() as u64, None);
            }
            seen.insert(url);
            match next_link(&resp.header_values("link")) {
                Some(next) if seen.contains(&next) => {
                    return Err(Error::new(
                        ErrorCode::MalformedResponse,
                        format!("Okta {what}: the next link loops"),
                    ));
                }
                Some(next) => url = next,
                None => return Ok(out),
            }
        }
    }

    /// GET with the current credentials. A service app's access token that
    /// Okta refuses (401: revoked, or expired early) is fetched again and
    /// the request retried once.
    async fn get(&self, url: &str) -> Result<super::http::Response> {
        let auth = self.auth.header(&self.http).await?;
        let headers = [
            ("authorization", auth.clone()),
            ("accept", "application/json".to_string()),
        ];
        match (self.http.get(url, &headers).await, self.auth.as_ref()) {
            (Err(e), OktaAuth::ServiceApp(app))
                if e.code == ErrorCode::SourceAuth && e.message.contains("HTTP 401") =>
            {
                tracing::info!("Okta refused the access token; fetching a new one");
                app.forget(auth.trim_start_matches("Bearer ")).await;
                let headers = [
                    ("authorization", self.auth.header(&self.http).await?),
                    ("accept", "application/json".to_string()),
                ];
                self.http.get(url, &headers).await
            }
            (r, _) => r,
        }
    }

    /// One unpaged per-app list (client secrets, JSON web keys), read
    /// tolerantly: a 404 (the endpoint does not apply) is an empty list, and
    /// a body of another shape is read as well as it can be, with a note.
    async fn credential_list(&self, url: &str) -> Result<(Vec<Value>, Option<String>)> {
        let resp = match self.get(url).await {
            Err(e) if is_not_found(&e) => return Ok((vec![], None)),
            other => other?,
        };
        let body: Value = resp.json("Okta app credentials")?;
        Ok(credential_items(body))
    }
}

/// The items of a credential list. Okta documents an array, but its own
/// example for the JSON web keys answers one object: a JWKS
/// (`{"keys": [...]}`) is read as its keys, a single key object as one key
/// (with a note), anything else as nothing (with a note).
pub fn credential_items(body: Value) -> (Vec<Value>, Option<String>) {
    match body {
        Value::Array(items) => (items, None),
        Value::Object(mut m) => {
            if let Some(Value::Array(keys)) = m.remove("keys") {
                return (keys, None);
            }
            if ["id", "kid", "kty", "client_secret"]
                .iter()
                .any(|k| m.contains_key(*k))
            {
                (
                    vec![Value::Object(m)],
                    Some("answered one object where a list is documented; read as one".into()),
                )
            } else {
                (
                    vec![],
                    Some("answered an object that is neither a list nor a key; not read".into()),
                )
            }
        }
        other => (
            vec![],
            Some(format!(
                "answered {} where a list is documented; not read",
                match other {
                    Value::Null => "null",
                    Value::Bool(_) => "a boolean",
                    Value::Number(_) => "a number",
                    _ => "a string",
                }
            )),
        ),
    }
}

/// Keeps the items that have an id (once each); the others are skipped with
/// a warning naming their position and why.
fn with_ids(items: Vec<Value>, what: &str, f: &mut Fetched) -> Vec<Value> {
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let label = ["label", "name"]
            .iter()
            .find_map(|k| str_at(&item, &[k]))
            .or_else(|| str_at(&item, &["profile", "login"]))
            .or_else(|| str_at(&item, &["profile", "name"]))
            .map_or_else(|| "unnamed".to_string(), |n| format!("'{n}'"));
        match str_at(&item, &["id"]) {
            None => f.warn(format!(
                "Okta {what} item {} ({label}): no id; skipped",
                i + 1
            )),
            Some(id) if !seen.insert(id.to_string()) => {}
            Some(_) => out.push(item),
        }
    }
    out
}

/// What is read per service app.
struct AppDetails {
    id: String,
    grants: Vec<Value>,
    secrets: Vec<Value>,
    keys: Vec<Value>,
    /// Shape problems met while reading (become warnings).
    notes: Vec<String>,
}

async fn app_details(o: Okta, id: String, auth_method: String) -> Result<AppDetails> {
    let grants = o
        .list(
            None,
            &o.url(&format!("/api/v1/apps/{id}/grants")),
            "app grants",
            "",
        )
        .await?;
    let mut notes = Vec::new();
    let secrets = if auth_method.starts_with("client_secret") {
        let (items, note) = o
            .credential_list(&o.url(&format!("/api/v1/apps/{id}/credentials/secrets")))
            .await?;
        notes.extend(note.map(|n| format!("Okta app {id}: its client secret list {n}")));
        items
    } else {
        vec![]
    };
    let keys = if auth_method == "private_key_jwt" {
        let (items, note) = o
            .credential_list(&o.url(&format!("/api/v1/apps/{id}/credentials/jwks")))
            .await?;
        notes.extend(note.map(|n| format!("Okta app {id}: its JSON web key list {n}")));
        items
    } else {
        vec![]
    };
    Ok(AppDetails {
        id,
        grants,
        secrets,
        keys,
        notes,
    })
}

async fn group_members(o: Okta, id: String) -> Result<(String, Vec<String>)> {
    let users = o
        .list(
            None,
            &o.url(&format!("/api/v1/groups/{id}/users?{PAGE}")),
            "group members",
            "",
        )
        .await?;
    let ids = users
        .iter()
        .filter_map(|u| str_at(u, &["id"]).map(str::to_string))
        .collect();
    Ok((id, ids))
}

fn display_name(u: &Value) -> String {
    str_at(u, &["profile", "displayName"])
        .map(str::to_string)
        .or_else(|| {
            let first = str_at(u, &["profile", "firstName"]).unwrap_or_default();
            let last = str_at(u, &["profile", "lastName"]).unwrap_or_default();
            let full = format!("{first} {last}").trim().to_string();
            (!full.is_empty()).then_some(full)
        })
        .or_else(|| str_at(u, &["profile", "login"]).map(str::to_string))
        .unwrap_or_default()
}

/// `*.manage` → admin (high-consequence), `*.read` → read, else write.
pub fn scope_privilege(scope: &str) -> (Privilege, bool) {
    let s = scope.to_ascii_lowercase();
    if s.ends_with(".manage") {
        (Privilege::Admin, true)
    } else if s.ends_with(".read") {
        (Privilege::Read, false)
    } else {
        (Privilege::Write, false)
    }
}

impl Source for OktaSource {
    async fn fetch(&self, ctx: &SyncContext) -> Result<Fetched> {
        let org = ctx.setting("org_url")?;
        let base = org.trim().trim_end_matches('/').to_string();
        let auth = match client_id(&ctx.source.settings) {
            Some(client_id) => {
                let scopes = match ctx.source.settings.get("scopes").and_then(Value::as_array) {
                    Some(list) if !list.is_empty() => list
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(" "),
                    _ => SCOPES.join(" "),
                };
                OktaAuth::ServiceApp(ServiceApp {
                    key: super::jwt::source_key(ctx, "the Okta service app's private key")?,
                    key_id: ctx
                        .source
                        .settings
                        .get("key_id")
                        .and_then(Value::as_str)
                        .map(str::trim)
                        .filter(|k| !k.is_empty())
                        .map(str::to_string),
                    token_url: format!("{base}/oauth2/v1/token"),
                    client_id,
                    scopes,
                    current: tokio::sync::Mutex::new(None),
                })
            }
            None => OktaAuth::Ssws(ctx.secret()?.to_string()),
        };
        let o = Okta {
            http: ctx.http.clone(),
            base,
            auth: Arc::new(auth),
        };
        let mut f = Fetched::new(FetchMode::Full);

        // Users, deprovisioned ones included.
        let mut users = o
            .list(
                Some(ctx),
                &o.url(&format!("/api/v1/users?{PAGE}")),
                "users",
                "people",
            )
            .await?;
        let deprovisioned = o
            .list(
                Some(ctx),
                &o.url(&format!(
                    "/api/v1/users?{PAGE}&search=status%20eq%20%22DEPROVISIONED%22"
                )),
                "deprovisioned users",
                "people",
            )
            .await?;
        users.extend(deprovisioned);
        let users = with_ids(users, "users", &mut f);
        let types = o
            .list(
                None,
                &o.url("/api/v1/meta/types/user"),
                "user types",
                "people",
            )
            .await;
        let types = match types {
            Ok(t) => t,
            Err(e) if is_not_found(&e) => vec![],
            Err(e) => return Err(e),
        };
        let type_names: HashMap<&str, Vec<&str>> = types
            .iter()
            .filter_map(|t| {
                let id = str_at(t, &["id"])?;
                Some((
                    id,
                    [str_at(t, &["name"]), str_at(t, &["displayName"])]
                        .into_iter()
                        .flatten()
                        .collect(),
                ))
            })
            .collect();

        let mut seen_users = HashSet::new();
        let mut nhi_users: HashSet<String> = HashSet::new();
        for u in &users {
            let id = id_of(u, "user")?;
            if !seen_users.insert(id.clone()) {
                continue;
            }
            let status = str_at(u, &["status"])
                .unwrap_or("ACTIVE")
                .to_ascii_uppercase();
            let manager =
                str_at(u, &["profile", "managerId"]).map(|m| PersonKey::ExternalId(m.to_string()));
            let machine = str_at(u, &["profile", "userType"])
                .and_then(machine_kind)
                .or_else(|| {
                    let t = str_at(u, &["type", "id"])?;
                    type_names.get(t)?.iter().find_map(|n| machine_kind(n))
                });
            let department = str_at(u, &["profile", "department"])
                .unwrap_or_default()
                .to_string();
            match machine {
                Some((kind, class)) => {
                    nhi_users.insert(id.clone());
                    f.identities.push(IdentityRecord {
                        name: str_at(u, &["profile", "login"])
                            .map_or_else(|| display_name(u), str::to_string),
                        kind,
                        agent_class: class,
                        status: if matches!(status.as_str(), "SUSPENDED" | "DEPROVISIONED") {
                            IdentityStatus::Disabled
                        } else {
                            IdentityStatus::Active
                        },
                        description: str_at(u, &["profile", "title"])
                            .map_or_else(|| display_name(u), str::to_string),
                        owner: manager,
                        builder: None,
                        team: department,
                        environment: String::new(),
                        registration: None,
                        created_at: time_at(u, &["created"]),
                        last_used_at: time_at(u, &["lastLogin"]),
                        external_id: id,
                    });
                }
                None => f.people.push(PersonRecord {
                    display_name: display_name(u),
                    email: str_at(u, &["profile", "email"])
                        .unwrap_or_default()
                        .to_string(),
                    department,
                    title: str_at(u, &["profile", "title"])
                        .unwrap_or_default()
                        .to_string(),
                    manager,
                    status: match status.as_str() {
                        "DEPROVISIONED" => PersonStatus::Departed,
                        "SUSPENDED" => PersonStatus::Suspended,
                        _ => PersonStatus::Active,
                    },
                    left_at: (status == "DEPROVISIONED")
                        .then(|| time_at(u, &["statusChanged"]))
                        .flatten(),
                    external_id: id,
                }),
            }
        }

        // Service apps, their credentials and scope grants.
        let apps = o
            .list(
                Some(ctx),
                &o.url(&format!("/api/v1/apps?{PAGE}")),
                "apps",
                "identities",
            )
            .await?;
        let apps = with_ids(apps, "apps", &mut f);
        let mut service_apps = Vec::new();
        for a in &apps {
            if str_at(a, &["settings", "oauthClient", "application_type"]) != Some("service") {
                continue;
            }
            let id = id_of(a, "app")?;
            let method = str_at(
                a,
                &["credentials", "oauthClient", "token_endpoint_auth_method"],
            )
            .unwrap_or_default()
            .to_string();
            f.identities.push(IdentityRecord {
                name: str_at(a, &["label"])
                    .or_else(|| str_at(a, &["name"]))
                    .unwrap_or(&id)
                    .to_string(),
                kind: crate::model::IdentityKind::OauthApp,
                agent_class: None,
                status: if str_at(a, &["status"]) == Some("INACTIVE") {
                    IdentityStatus::Disabled
                } else {
                    IdentityStatus::Active
                },
                description: format!(
                    "Okta API service app (client {})",
                    str_at(a, &["credentials", "oauthClient", "client_id"]).unwrap_or(&id)
                ),
                owner: None,
                builder: None,
                team: String::new(),
                environment: String::new(),
                registration: None,
                created_at: time_at(a, &["created"]),
                last_used_at: None,
                external_id: id.clone(),
            });
            service_apps.push((id, method));
        }
        let details = super::bounded(TASKS, "Okta", service_apps, |(id, method)| {
            app_details(o.clone(), id, method)
        })
        .await?;
        let mut okta_api_used = false;
        for d in &details {
            for n in &d.notes {
                f.warn(n.clone());
            }
            for s in d
                .secrets
                .iter()
                .filter(|s| str_at(s, &["status"]).is_none_or(|st| st == "ACTIVE"))
            {
                let Some(sid) = str_at(s, &["id"]) else {
                    f.warn(format!(
                        "Okta app {}: a client secret without an id; skipped",
                        d.id
                    ));
                    continue;
                };
                f.credentials.push(CredentialRecord {
                    identity: d.id.clone(),
                    external_id: sid.to_string(),
                    kind: CredentialKind::ClientSecret,
                    display_name: "client secret".into(),
                    created_at: time_at(s, &["created"]),
                    expires_at: None,
                    last_rotated_at: None,
                    last_used_at: None,
                });
            }
            for k in d
                .keys
                .iter()
                .filter(|k| str_at(k, &["status"]).is_none_or(|st| st == "ACTIVE"))
            {
                let Some(kid) = str_at(k, &["id"]).or_else(|| str_at(k, &["kid"])) else {
                    f.warn(format!(
                        "Okta app {}: a JSON web key without an id or kid; skipped",
                        d.id
                    ));
                    continue;
                };
                f.credentials.push(CredentialRecord {
                    identity: d.id.clone(),
                    external_id: kid.to_string(),
                    kind: CredentialKind::Certificate,
                    display_name: str_at(k, &["kid"])
                        .map_or_else(|| "public key".to_string(), |k| format!("key {k}")),
                    created_at: time_at(k, &["created"]),
                    expires_at: None,
                    last_rotated_at: None,
                    last_used_at: None,
                });
            }
            let mut scopes = HashSet::new();
            for g in d
                .grants
                .iter()
                .filter(|g| str_at(g, &["status"]).is_none_or(|st| st == "ACTIVE"))
            {
                let Some(scope) = str_at(g, &["scopeId"]) else {
                    continue;
                };
                if !scopes.insert(scope) {
                    continue;
                }
                let (privilege, high_consequence) = scope_privilege(scope);
                okta_api_used = true;
                f.grants.push(GrantRecord {
                    identity: d.id.clone(),
                    resource: OKTA_API.into(),
                    permission: scope.to_string(),
                    privilege,
                    high_consequence,
                    last_used_at: None,
                });
            }
        }
        if okta_api_used {
            f.resources.push(ResourceRecord {
                external_id: OKTA_API.into(),
                name: "Okta API".into(),
                kind: "api".into(),
                sensitivity: Sensitivity::Critical,
                environment: String::new(),
            });
        }

        // API tokens.
        let tokens = o
            .list(
                Some(ctx),
                &o.url(&format!("/api/v1/api-tokens?{PAGE}")),
                "API tokens",
                "identities",
            )
            .await?;
        let now = Utc::now();
        for t in &with_ids(tokens, "API tokens", &mut f) {
            let id = id_of(t, "API token")?;
            let name = str_at(t, &["name"]).unwrap_or(&id).to_string();
            let expires = time_at(t, &["expiresAt"]);
            // Okta lists a token until it is revoked or lapses, with no
            // status of its own: its expiry decides.
            let state = credential_state(true, false, expires, now);
            f.identities.push(IdentityRecord {
                name: name.clone(),
                kind: crate::model::IdentityKind::ApiKey,
                agent_class: None,
                status: state.identity_status(),
                description: format!(
                    "Okta API token{}; acts with the admin rights of its user (client: {})",
                    if state == CredentialState::Expired {
                        " (expired)"
                    } else {
                        ""
                    },
                    str_at(t, &["clientName"]).unwrap_or("unknown")
                ),
                owner: str_at(t, &["userId"]).map(|u| PersonKey::ExternalId(u.to_string())),
                builder: None,
                team: String::new(),
                environment: String::new(),
                registration: None,
                created_at: time_at(t, &["created"]),
                last_used_at: None,
                external_id: id.clone(),
            });
            f.credentials.push(CredentialRecord {
                identity: id.clone(),
                external_id: id,
                kind: CredentialKind::ApiToken,
                display_name: name,
                created_at: time_at(t, &["created"]),
                expires_at: time_at(t, &["expiresAt"]),
                last_rotated_at: None,
                last_used_at: None,
            });
        }

        // Groups, and the memberships of non-human users.
        let groups = o
            .list(
                Some(ctx),
                &o.url(&format!("/api/v1/groups?{PAGE}")),
                "groups",
                "groups",
            )
            .await?;
        let groups = with_ids(groups, "groups", &mut f);
        let mut admin_groups = HashSet::new();
        let mut group_ids = Vec::new();
        for g in &groups {
            let id = id_of(g, "group")?;
            let name = str_at(g, &["profile", "name"]).unwrap_or(&id).to_string();
            let admin = name.to_ascii_lowercase().contains("admin");
            if admin {
                admin_groups.insert(id.clone());
            }
            f.resources.push(ResourceRecord {
                external_id: id.clone(),
                name,
                kind: "group".into(),
                sensitivity: if admin {
                    Sensitivity::High
                } else {
                    Sensitivity::Medium
                },
                environment: String::new(),
            });
            group_ids.push(id);
        }
        if !nhi_users.is_empty() {
            let total = group_ids.len() as u64;
            let mut members =
                super::bounded(TASKS, "Okta", group_ids, |id| group_members(o.clone(), id)).await?;
            members.sort_by(|a, b| a.0.cmp(&b.0));
            ctx.report("groups", 0, total, Some(total));
            for (gid, users) in members {
                let admin = admin_groups.contains(&gid);
                let mut done = HashSet::new();
                for u in users.into_iter().filter(|u| nhi_users.contains(u)) {
                    if !done.insert(u.clone()) {
                        continue;
                    }
                    f.grants.push(GrantRecord {
                        identity: u,
                        resource: gid.clone(),
                        permission: "member".into(),
                        privilege: if admin {
                            Privilege::Admin
                        } else {
                            Privilege::Read
                        },
                        high_consequence: admin,
                        last_used_at: None,
                    });
                }
            }
        }
        Ok(f)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn credential_lists_of_any_documented_shape() {
        let (items, note) = credential_items(json!([{"id": "a"}, {"id": "b"}]));
        assert_eq!((items.len(), note), (2, None));
        let (items, note) = credential_items(json!({"keys": [{"kid": "k1"}]}));
        assert_eq!((items.len(), note), (1, None));
        let (items, note) =
            credential_items(json!({"id": "pks1", "kid": "k1", "kty": "RSA", "status": "ACTIVE"}));
        assert_eq!(items.len(), 1);
        assert!(note.unwrap().contains("one object"));
        let (items, note) = credential_items(json!({"errorCode": "E0000007"}));
        assert!(items.is_empty());
        assert!(note.unwrap().contains("not read"));
        let (items, note) = credential_items(json!("x"));
        assert!(items.is_empty() && note.is_some());
    }

    #[test]
    fn objects_without_ids_are_skipped_and_named() {
        let mut f = Fetched::new(FetchMode::Full);
        let kept = with_ids(
            vec![
                json!({"id": "a"}),
                json!({"label": "orphan"}),
                json!({"id": "a"}),
            ],
            "apps",
            &mut f,
        );
        assert_eq!(kept.len(), 1);
        assert_eq!(f.warnings.len(), 1);
        assert!(f.warnings[0].contains("apps item 2") && f.warnings[0].contains("'orphan'"));
    }

    #[test]
    fn next_link_reads_every_header_and_joined_lines() {
        let sep = vec![
            r#"<https://o/api/v1/users?limit=2>; rel="self""#.to_string(),
            r#"<https://o/api/v1/users?after=00u2&limit=2>; rel="next""#.to_string(),
        ];
        assert_eq!(
            next_link(&sep).as_deref(),
            Some("https://o/api/v1/users?after=00u2&limit=2")
        );
        let joined =
            vec![r#"<https://o/a?x=1>; rel="self", <https://o/a?after=9>; rel="next""#.to_string()];
        assert_eq!(next_link(&joined).as_deref(), Some("https://o/a?after=9"));
        let last = vec![r#"<https://o/a?x=1>; rel="self""#.to_string()];
        assert_eq!(next_link(&last), None);
    }

    #[test]
    fn scope_rule() {
        assert_eq!(
            scope_privilege("okta.users.manage"),
            (Privilege::Admin, true)
        );
        assert_eq!(scope_privilege("okta.users.read"), (Privilege::Read, false));
    }
}
