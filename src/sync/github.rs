//! A GitHub organisation (REST API, `Authorization: Bearer <token>`).
//!
//! Settings: `org` (required), `api_base` (default `https://api.github.com`;
//! GitHub Enterprise Server: `https://HOST/api/v3`), `read_tokens` (default
//! true), and for the keyless mode `app_id`, `installation_id`,
//! `private_key_file`.
//!
//! Two ways to sign in, told apart by `app_id`:
//! - **GitHub App** (`app_id` set; offered first): Custodian holds no
//!   long-lived token. It signs a JWT with the app's private key (RS256; `iat`
//!   60 s in the past for clock drift, `exp` 9 minutes on, `iss` the app id;
//!   [`super::jwt`]), finds the installation on the org
//!   (`GET /orgs/{org}/installation`, unless `installation_id` is set), and
//!   exchanges the JWT for an installation token
//!   (`POST /app/installations/{id}/access_tokens`), kept in memory only and
//!   minted again five minutes before its `expires_at`, or at once when
//!   GitHub refuses it (401) mid-sync (that request is retried once). The
//!   private key is the source's secret (PEM, as GitHub hands it out), or the
//!   file `private_key_file`. Installation tokens can list the org's
//!   fine-grained tokens, which no PAT can.
//! - **Token** (no `app_id`): the secret is a token used as it is, a PAT of
//!   an org owner (`read:org`, `admin:org` read for installations) or an
//!   installation token minted elsewhere.
//!
//! Fetch (always full: GitHub has no change feed for these resources short of
//! the Enterprise audit log), every list paged with `per_page=100` and
//! followed through `Link: <…>; rel="next"` (one comma-joined header):
//! - `/orgs/{org}/members?role=all` and `?role=admin` → people (login as the
//!   key and name; "org owner" or "member" as title);
//!   `/orgs/{org}/outside_collaborators` → people ("outside collaborator");
//! - `/orgs/{org}/installations` → one `oauth_app` identity per GitHub App
//!   installation (`installation:{id}`, named by `app_slug`; suspended →
//!   disabled); each permission `{scope}: read|write|admin` → a grant on the
//!   organisation (resource `org:{org}`) with privilege read/write/admin;
//!   write or admin on administration, contents, workflows, secrets, actions,
//!   members, environments, deployments, organization_administration or
//!   organization_secrets, and any admin, is high-consequence;
//! - `/orgs/{org}/personal-access-tokens` (fine-grained PATs approved for the
//!   org) → one `api_key` identity per token (`pat:{id}`), owned and built by
//!   its owner's login, with one `personal_access_token` credential (granted,
//!   expiry, last use); expired → disabled; its organization, repository and
//!   other permissions → grants as above. GitHub lets only GitHub Apps list
//!   them: with any other token the run fails with a message saying so,
//!   unless `read_tokens` is false (then they are simply not read — and a
//!   full run cannot tell a revoked token from an unread one, which is why it
//!   is a setting and not a silent fallback);
//! - `/orgs/{org}/repos`, then per repository (bounded in parallel)
//!   `/repos/{owner}/{repo}/keys` → one `api_key` identity per deploy key
//!   (`deploy-key:{repo}:{id}`, builder = `added_by`) with an `ssh_key`
//!   credential and a grant `contents:read` or `contents:write` (high-
//!   consequence) on the repository (high sensitivity when private).
//!
//! Tolerant reading: a member without a login, or an installation, token or
//! deploy key without a numeric id, is skipped and named in the run's
//! warnings; a page that is not the documented list fails the run. A token
//! past `token_expires_at` is disabled (its description says expired)
//! whatever `token_expired` says.
//!
//! Rate limits are handled by the shared client: 429/403 with `retry-after`,
//! 403 with `x-ratelimit-remaining: 0` (waits until `x-ratelimit-reset`), and
//! a secondary limit named only in the body (waits `secondary_wait`, one
//! minute by default). Any other 403 is an authorisation failure.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde_json::Value;

use std::sync::Arc;

use super::http::HttpClient;
use super::jwt::SigningKey;
use super::okta::next_link;
use super::records::*;
use super::{bounded, Source, SyncContext};
use crate::error::{Error, ErrorCode, Result};
use crate::model::{
    CredentialKind, IdentityKind, IdentityStatus, PersonStatus, Privilege, Sensitivity,
};

/// The settings of a GitHub source (see `super::settings`).
pub const SETTINGS: &[super::settings::Setting] = {
    use super::settings::{Setting, SettingType as T};
    &[
        Setting::required("org", T::String, "the organisation's login"),
        Setting::sign_in(
            "app_id",
            T::String,
            "sign in as a GitHub App (recommended: no long-lived token): its App ID or client ID; the secret is then the app's private key (PEM). Leave empty to use a token as the secret",
        ),
        Setting::optional(
            "installation_id",
            T::Integer,
            None,
            "GitHub App mode: the app's installation on the org (found from the org when empty)",
        ),
        Setting::optional(
            "private_key_file",
            T::String,
            None,
            "GitHub App mode: a PEM file with the app's private key, instead of keeping it as the secret (readable by its owner only)",
        ),
        Setting::optional(
            "api_base",
            T::Url,
            Some("https://api.github.com"),
            "the REST API (GitHub Enterprise Server: https://HOST/api/v3)",
        ),
        Setting::optional(
            "read_tokens",
            T::Bool,
            Some("true"),
            "list the fine-grained tokens approved for the org (GitHub Apps only)",
        ),
    ]
};

pub struct GithubSource;

const DEFAULT_API: &str = "https://api.github.com";
const TASKS: usize = 8;

#[derive(Clone)]
struct Api {
    http: HttpClient,
    base: String,
    auth: Arc<Auth>,
}

/// How the connector signs in (see the module doc).
enum Auth {
    /// A token from the secret, used as it is.
    Token(String),
    App(AppAuth),
}

/// A GitHub App's installation, with the installation token in memory.
struct AppAuth {
    app_id: String,
    installation: i64,
    key: SigningKey,
    /// The current installation token and when to mint the next one.
    current: tokio::sync::Mutex<Option<(String, DateTime<Utc>)>>,
}

/// Mint a new installation token this long before the current one expires.
const REFRESH_BEFORE: chrono::Duration = chrono::Duration::minutes(5);

/// The claims of a GitHub App JWT.
#[derive(serde::Serialize)]
struct AppClaims<'a> {
    iat: i64,
    exp: i64,
    iss: &'a str,
}

/// A GitHub App JWT: issued 60 s in the past (clock drift, as GitHub
/// advises), valid 9 minutes (GitHub's limit is 10).
fn app_jwt(key: &SigningKey, app_id: &str) -> Result<String> {
    let now = Utc::now().timestamp();
    key.sign(
        None,
        &AppClaims {
            iat: now - 60,
            exp: now + 540,
            iss: app_id,
        },
    )
}

fn github_headers() -> Vec<(&'static str, String)> {
    vec![
        ("accept", "application/vnd.github+json".into()),
        ("x-github-api-version", "2022-11-28".into()),
    ]
}

/// Names what a refused app sign-in means.
fn app_refused(app_id: &str, e: Error, what: &str) -> Error {
    if matches!(e.code, ErrorCode::SourceAuth | ErrorCode::SourceError) {
        Error::new(
            ErrorCode::SourceAuth,
            format!(
                "GitHub refused the sign-in as GitHub App {app_id} ({what}): {}; check the app id, that the private key is one of the app's (Settings > Developer settings > GitHub Apps > Private keys) and that the app is installed on the org",
                e.message
            ),
        )
    } else {
        e
    }
}

impl AppAuth {
    /// The installation of the app on `org` (`GET /orgs/{org}/installation`,
    /// signed with the app's JWT).
    async fn find_installation(
        http: &HttpClient,
        base: &str,
        org: &str,
        app_id: &str,
        key: &SigningKey,
    ) -> Result<i64> {
        let mut h = github_headers();
        h.push(("authorization", format!("Bearer {}", app_jwt(key, app_id)?)));
        let resp = http
            .get(&format!("{base}/orgs/{org}/installation"), &h)
            .await
            .map_err(|e| {
                if e.message.contains("HTTP 404 ") {
                    Error::new(
                        ErrorCode::SourceAuth,
                        format!("GitHub App {app_id} is not installed on the org {org} (GET /orgs/{org}/installation answered 404); install it there, or set installation_id"),
                    )
                } else {
                    app_refused(app_id, e, "finding its installation on the org")
                }
            })?;
        let body: Value = resp.json("GitHub org installation")?;
        body.get("id")
            .and_then(Value::as_i64)
            .ok_or_else(|| malformed("the org's installation has no numeric id"))
    }

    /// The installation token, minted when there is none or it is due.
    async fn token(&self, http: &HttpClient, base: &str) -> Result<String> {
        let mut current = self.current.lock().await;
        if let Some((t, until)) = current.as_ref() {
            if Utc::now() < *until {
                return Ok(t.clone());
            }
        }
        let url = format!(
            "{base}/app/installations/{}/access_tokens",
            self.installation
        );
        let sign = || -> Result<Vec<(String, String)>> {
            Ok(vec![(
                "authorization".to_string(),
                format!("Bearer {}", app_jwt(&self.key, &self.app_id)?),
            )])
        };
        let resp = http
            .post_body(
                &url,
                &github_headers(),
                "application/json",
                "{}".into(),
                Some(&sign),
            )
            .await
            .map_err(|e| app_refused(&self.app_id, e, "creating an installation token"))?;
        let body: Value = resp.json("GitHub installation token")?;
        let token = s(&body, &["token"])
            .ok_or_else(|| malformed("the installation token response has no token"))?
            .to_string();
        // Without a readable expiry, assume GitHub's documented hour.
        let expires =
            time(&body, "expires_at").unwrap_or_else(|| Utc::now() + chrono::Duration::hours(1));
        tracing::debug!(installation = self.installation, expires_at = %expires, "GitHub installation token minted");
        *current = Some((token.clone(), expires - REFRESH_BEFORE));
        Ok(token)
    }

    /// Forgets `token` if it is still the current one (GitHub refused it).
    async fn forget(&self, token: &str) {
        let mut current = self.current.lock().await;
        if current.as_ref().is_some_and(|(t, _)| t == token) {
            *current = None;
        }
    }
}

fn s<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    cur.as_str().map(str::trim).filter(|x| !x.is_empty())
}

fn time(v: &Value, key: &str) -> Option<DateTime<Utc>> {
    s(v, &[key])
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

fn malformed(what: &str) -> Error {
    Error::new(ErrorCode::MalformedResponse, format!("GitHub: {what}"))
}

/// Privilege and high-consequence flag of a permission level on a scope.
pub fn permission_level(scope: &str, level: &str) -> Option<(Privilege, bool)> {
    const DANGEROUS: &[&str] = &[
        "administration",
        "contents",
        "workflows",
        "secrets",
        "actions",
        "members",
        "environments",
        "deployments",
        "organization_administration",
        "organization_secrets",
    ];
    let p = match level {
        "read" => Privilege::Read,
        "write" => Privilege::Write,
        "admin" => Privilege::Admin,
        _ => return None,
    };
    let hc = p == Privilege::Admin || (p == Privilege::Write && DANGEROUS.contains(&scope));
    Some((p, hc))
}

impl Api {
    /// The bearer token for the next request.
    async fn bearer(&self) -> Result<String> {
        match self.auth.as_ref() {
            Auth::Token(t) => Ok(t.clone()),
            Auth::App(app) => app.token(&self.http, &self.base).await,
        }
    }

    /// GET with the current token. In app mode a 401 (the installation token
    /// expired or was revoked early) mints a new token and retries once.
    async fn get(&self, url: &str) -> Result<super::http::Response> {
        let token = self.bearer().await?;
        let mut h = github_headers();
        h.push(("authorization", format!("Bearer {token}")));
        match (self.http.get(url, &h).await, self.auth.as_ref()) {
            (Err(e), Auth::App(app))
                if e.code == ErrorCode::SourceAuth && e.message.contains("HTTP 401") =>
            {
                tracing::info!("GitHub refused the installation token; minting a new one");
                app.forget(&token).await;
                let token = self.bearer().await?;
                let mut h = github_headers();
                h.push(("authorization", format!("Bearer {token}")));
                self.http.get(url, &h).await
            }
            (r, _) => r,
        }
    }

    /// Every item of a paged list. `key`: the array's field when the page is
    /// an object (`installations`), else the page is the array.
    async fn list(
        &self,
        ctx: &SyncContext,
        path: &str,
        key: Option<&str>,
        phase: &str,
    ) -> Result<Vec<Value>> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut url = format!("{}{path}{sep}per_page=100", self.base);
        let mut out = Vec::new();
        let mut pages = 0u64;
        loop {
            let resp = self.get(&url).await?;
            let body: Value = resp.json(&format!("GitHub {path}"))?;
            let items = match key {
                Some(k) => body.get(k).and_then(Value::as_array),
                None => body.as_array(),
            }
            .ok_or_else(|| malformed(&format!("{path} did not return a list")))?;
            out.extend(items.iter().cloned());
            pages += 1;
            ctx.report(phase, pages, out.len() as u64, None);
            match next_link(&resp.header_values("link")) {
                Some(next) => url = next,
                None => return Ok(out),
            }
        }
    }
}

/// The GitHub App id of a source's settings, when it signs in as an app.
pub fn app_id(settings: &Value) -> Option<String> {
    match settings.get("app_id")? {
        Value::String(t) => Some(t.trim().to_string()).filter(|t| !t.is_empty()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// How a GitHub source signs in, for `source show`: the mode and the
/// identity it signs in as.
pub fn sign_in(settings: &Value) -> (String, String) {
    match app_id(settings) {
        Some(id) => (
            "GitHub App (JWT signed with the app's private key, exchanged for hour-long installation tokens)".into(),
            format!(
                "GitHub App {id}, {}{}",
                match settings.get("installation_id").and_then(Value::as_i64) {
                    Some(i) => format!("installation {i}"),
                    None => "installation found from the org".into(),
                },
                match settings.get("private_key_file").and_then(Value::as_str) {
                    Some(f) => format!("; private key in {f}"),
                    None => "; private key in the secret".into(),
                }
            ),
        ),
        None => (
            "token (the secret: a PAT or an installation token, used as it is)".into(),
            "whoever owns the token".into(),
        ),
    }
}

fn grants_from(identity: &str, resource: &str, perms: &Value, out: &mut Vec<GrantRecord>) {
    let Some(map) = perms.as_object() else { return };
    for (scope, level) in map {
        let Some(level) = level.as_str() else {
            continue;
        };
        if let Some((privilege, hc)) = permission_level(scope, level) {
            out.push(GrantRecord {
                identity: identity.into(),
                resource: resource.into(),
                permission: format!("{scope}:{level}"),
                privilege,
                high_consequence: hc,
                last_used_at: None,
            });
        }
    }
}

impl Source for GithubSource {
    async fn fetch(&self, ctx: &SyncContext) -> Result<Fetched> {
        let org = ctx.setting("org")?;
        let base = ctx
            .source
            .settings
            .get("api_base")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|b| !b.is_empty())
            .unwrap_or(DEFAULT_API)
            .trim_end_matches('/')
            .to_string();
        let read_tokens = ctx
            .source
            .settings
            .get("read_tokens")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        let auth = match app_id(&ctx.source.settings) {
            Some(app_id) => {
                let key = super::jwt::source_key(ctx, "the GitHub App private key")?;
                let installation = match ctx
                    .source
                    .settings
                    .get("installation_id")
                    .and_then(Value::as_i64)
                {
                    Some(id) => id,
                    None => {
                        AppAuth::find_installation(&ctx.http, &base, &org, &app_id, &key).await?
                    }
                };
                Auth::App(AppAuth {
                    app_id,
                    installation,
                    key,
                    current: tokio::sync::Mutex::new(None),
                })
            }
            None => Auth::Token(ctx.secret()?.to_string()),
        };
        let app_mode = matches!(auth, Auth::App(_));
        let api = Api {
            http: ctx.http.clone(),
            base,
            auth: Arc::new(auth),
        };
        let mut f = Fetched::new(FetchMode::Full);
        let org_res = format!("org:{org}");

        // People.
        let admins: HashSet<String> = api
            .list(
                ctx,
                &format!("/orgs/{org}/members?role=admin"),
                None,
                "people",
            )
            .await?
            .iter()
            .filter_map(|m| s(m, &["login"]).map(str::to_string))
            .collect();
        let mut seen = HashSet::new();
        for (m, title) in api
            .list(
                ctx,
                &format!("/orgs/{org}/members?role=all"),
                None,
                "people",
            )
            .await?
            .iter()
            .map(|m| (m.clone(), "member"))
            .chain(
                api.list(
                    ctx,
                    &format!("/orgs/{org}/outside_collaborators"),
                    None,
                    "people",
                )
                .await?
                .into_iter()
                .map(|m| (m, "outside collaborator")),
            )
        {
            let Some(login) = s(&m, &["login"]).map(str::to_string) else {
                f.warn(format!(
                    "GitHub {title} without a login (id {}); skipped",
                    m.get("id")
                        .map_or_else(|| "unknown".to_string(), Value::to_string)
                ));
                continue;
            };
            if !seen.insert(login.clone()) {
                continue;
            }
            f.people.push(PersonRecord {
                external_id: login.clone(),
                display_name: login.clone(),
                email: String::new(),
                department: String::new(),
                title: if admins.contains(&login) {
                    "org owner".into()
                } else {
                    title.into()
                },
                manager: None,
                status: PersonStatus::Active,
                left_at: None,
            });
        }
        f.resources.push(ResourceRecord {
            external_id: org_res.clone(),
            name: format!("GitHub org {org}"),
            kind: "github_org".into(),
            sensitivity: Sensitivity::High,
            environment: String::new(),
        });

        // GitHub App installations.
        for inst in api
            .list(
                ctx,
                &format!("/orgs/{org}/installations"),
                Some("installations"),
                "identities",
            )
            .await?
        {
            let Some(id) = inst.get("id").and_then(Value::as_i64) else {
                f.warn(format!(
                    "GitHub installation of '{}' without a numeric id; skipped",
                    s(&inst, &["app_slug"]).unwrap_or("unknown app")
                ));
                continue;
            };
            let slug = s(&inst, &["app_slug"]).unwrap_or("github-app");
            let ext = format!("installation:{id}");
            let events: Vec<&str> = inst
                .get("events")
                .and_then(Value::as_array)
                .map(|e| e.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            f.identities.push(IdentityRecord {
                external_id: ext.clone(),
                name: slug.to_string(),
                kind: IdentityKind::OauthApp,
                agent_class: None,
                status: if inst.get("suspended_at").is_some_and(|v| !v.is_null()) {
                    IdentityStatus::Disabled
                } else {
                    IdentityStatus::Active
                },
                description: format!(
                    "GitHub App {slug} on {} repositories{}",
                    s(&inst, &["repository_selection"]).unwrap_or("some"),
                    if events.is_empty() {
                        String::new()
                    } else {
                        format!("; events: {}", events.join(", "))
                    }
                ),
                owner: None,
                builder: None,
                team: String::new(),
                environment: String::new(),
                registration: None,
                created_at: time(&inst, "created_at"),
                last_used_at: None,
            });
            if let Some(p) = inst.get("permissions") {
                grants_from(&ext, &org_res, p, &mut f.grants);
            }
        }

        // Fine-grained personal access tokens approved for the org.
        if read_tokens {
            let tokens = match api.list(ctx, &format!("/orgs/{org}/personal-access-tokens"), None, "identities").await {
                Err(e) if e.code == ErrorCode::SourceAuth && app_mode => {
                    return Err(Error::new(
                        ErrorCode::SourceAuth,
                        format!(
                            "GitHub refused the GitHub App the org's fine-grained tokens ({}); give the app the organization permission 'Personal access tokens' (read), or set read_tokens to false to skip them",
                            e.message
                        ),
                    ))
                }
                Err(e) if e.code == ErrorCode::SourceAuth => {
                    return Err(Error::new(
                        ErrorCode::SourceAuth,
                        format!(
                            "GitHub lets only GitHub Apps list the organisation's fine-grained tokens ({}); use an app installation token, or set read_tokens to false to skip them",
                            e.message
                        ),
                    ))
                }
                other => other?,
            };
            let now = Utc::now();
            for t in tokens {
                let Some(id) = t.get("id").and_then(Value::as_i64) else {
                    f.warn(format!(
                        "GitHub fine-grained token '{}' without a numeric id; skipped",
                        s(&t, &["token_name"]).unwrap_or("unnamed")
                    ));
                    continue;
                };
                let ext = format!("pat:{id}");
                let owner =
                    s(&t, &["owner", "login"]).map(|l| PersonKey::ExternalId(l.to_string()));
                let name =
                    s(&t, &["token_name"]).map_or_else(|| format!("token {id}"), str::to_string);
                let flag_expired = t
                    .get("token_expired")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                // The dates decide: GitHub's flag can lag the expiry.
                let state = credential_state(true, flag_expired, time(&t, "token_expires_at"), now);
                f.identities.push(IdentityRecord {
                    external_id: ext.clone(),
                    name: name.clone(),
                    kind: IdentityKind::ApiKey,
                    agent_class: None,
                    status: state.identity_status(),
                    description: format!(
                        "fine-grained personal access token on {} repositories{}",
                        s(&t, &["repository_selection"]).unwrap_or("some"),
                        if state == CredentialState::Expired {
                            " (expired)"
                        } else {
                            ""
                        }
                    ),
                    owner: owner.clone(),
                    builder: owner,
                    team: String::new(),
                    environment: String::new(),
                    registration: None,
                    created_at: time(&t, "access_granted_at"),
                    last_used_at: time(&t, "token_last_used_at"),
                });
                f.credentials.push(CredentialRecord {
                    identity: ext.clone(),
                    external_id: format!("pat:{id}"),
                    kind: CredentialKind::PersonalAccessToken,
                    display_name: name,
                    created_at: time(&t, "access_granted_at"),
                    expires_at: time(&t, "token_expires_at"),
                    last_rotated_at: None,
                    last_used_at: time(&t, "token_last_used_at"),
                });
                for group in ["organization", "repository", "other"] {
                    if let Some(p) = t.get("permissions").and_then(|p| p.get(group)) {
                        grants_from(&ext, &org_res, p, &mut f.grants);
                    }
                }
            }
        }

        // Deploy keys, per repository.
        let repos: Vec<(String, bool)> = api
            .list(ctx, &format!("/orgs/{org}/repos"), None, "groups")
            .await?
            .iter()
            .filter_map(|r| {
                s(r, &["full_name"]).map(|n| {
                    (
                        n.to_string(),
                        r.get("private").and_then(Value::as_bool).unwrap_or(true),
                    )
                })
            })
            .collect();
        let private: HashMap<String, bool> = repos.iter().cloned().collect();
        let results = bounded(
            TASKS,
            "deploy key",
            repos.into_iter().map(|(n, _)| n).collect(),
            |repo: String| {
                let api = api.clone();
                async move {
                    let url = format!("{}/repos/{repo}/keys?per_page=100", api.base);
                    let mut keys = vec![];
                    let mut next = Some(url);
                    while let Some(u) = next {
                        let resp = api.get(&u).await?;
                        let page: Value = resp.json(&format!("GitHub deploy keys of {repo}"))?;
                        keys.extend(
                            page.as_array()
                                .ok_or_else(|| {
                                    malformed(&format!("the deploy keys of {repo} are not a list"))
                                })?
                                .iter()
                                .cloned(),
                        );
                        next = next_link(&resp.header_values("link"));
                    }
                    Ok((repo, keys))
                }
            },
        )
        .await?;
        let mut results = results;
        results.sort_by(|a, b| a.0.cmp(&b.0));
        for (repo, keys) in results {
            if keys.is_empty() {
                continue;
            }
            let res = format!("repo:{repo}");
            f.resources.push(ResourceRecord {
                external_id: res.clone(),
                name: repo.clone(),
                kind: "repository".into(),
                sensitivity: if private.get(&repo).copied().unwrap_or(true) {
                    Sensitivity::High
                } else {
                    Sensitivity::Medium
                },
                environment: String::new(),
            });
            for (i, k) in keys.into_iter().enumerate() {
                let Some(id) = k.get("id").and_then(Value::as_i64) else {
                    f.warn(format!(
                        "GitHub deploy key {} of {repo} ('{}') without a numeric id; skipped",
                        i + 1,
                        s(&k, &["title"]).unwrap_or("untitled")
                    ));
                    continue;
                };
                let ext = format!("deploy-key:{repo}:{id}");
                let title = s(&k, &["title"]).unwrap_or("deploy key");
                let read_only = k.get("read_only").and_then(Value::as_bool).unwrap_or(false);
                let added_by = s(&k, &["added_by"]).map(|l| PersonKey::ExternalId(l.to_string()));
                f.identities.push(IdentityRecord {
                    external_id: ext.clone(),
                    name: format!("{title} ({repo})"),
                    kind: IdentityKind::ApiKey,
                    agent_class: None,
                    status: if k.get("enabled").and_then(Value::as_bool) == Some(false) {
                        IdentityStatus::Disabled
                    } else {
                        IdentityStatus::Active
                    },
                    description: format!(
                        "deploy key on {repo}, {}",
                        if read_only { "read-only" } else { "read-write" }
                    ),
                    owner: added_by.clone(),
                    builder: added_by,
                    team: String::new(),
                    environment: String::new(),
                    registration: None,
                    created_at: time(&k, "created_at"),
                    last_used_at: time(&k, "last_used"),
                });
                f.credentials.push(CredentialRecord {
                    identity: ext.clone(),
                    external_id: format!("key:{id}"),
                    kind: CredentialKind::SshKey,
                    display_name: title.to_string(),
                    created_at: time(&k, "created_at"),
                    expires_at: None,
                    last_rotated_at: None,
                    last_used_at: time(&k, "last_used"),
                });
                f.grants.push(GrantRecord {
                    identity: ext,
                    resource: res.clone(),
                    permission: if read_only {
                        "contents:read".into()
                    } else {
                        "contents:write".into()
                    },
                    privilege: if read_only {
                        Privilege::Read
                    } else {
                        Privilege::Write
                    },
                    high_consequence: !read_only,
                    last_used_at: None,
                });
            }
        }
        Ok(f)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn permission_levels() {
        assert_eq!(
            permission_level("contents", "write"),
            Some((Privilege::Write, true))
        );
        assert_eq!(
            permission_level("issues", "write"),
            Some((Privilege::Write, false))
        );
        assert_eq!(
            permission_level("metadata", "read"),
            Some((Privilege::Read, false))
        );
        assert_eq!(
            permission_level("members", "admin"),
            Some((Privilege::Admin, true))
        );
        assert_eq!(permission_level("x", "none"), None);
    }
}
