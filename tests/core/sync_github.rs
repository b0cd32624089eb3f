//! The GitHub organisation source against a wiremock fixture server serving
//! the documented shapes: Link pagination (one comma-joined header), primary
//! and secondary rate limits, refused reads, malformed pages.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use custodian::model::{CredentialKind, IdentityKind, IdentityStatus, Privilege};
use custodian::ops::sync_blocking;
use custodian::sync::http::{Cancel, HttpPolicy};
use custodian::ErrorCode;
use serde_json::{json, Value};
use wiremock::matchers::{header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, ResponseTemplate};

use crate::harness::{Fixture, SourceEnv};

const TOKEN: &str = "ghs_test_token";

fn ok(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_json(body)
        .insert_header("x-ratelimit-limit", "5000")
        .insert_header("x-ratelimit-remaining", "4999")
}

fn get(p: &str) -> wiremock::MockBuilder {
    Mock::given(method("GET"))
        .and(path(p.to_string()))
        .and(ValidBearer(VALID.with(|v| v.borrow().clone())))
        .and(header("x-github-api-version", "2022-11-28"))
}

type Tokens = Arc<Mutex<HashSet<String>>>;

thread_local! {
    /// The bearer tokens the fixture's API accepts: the PAT, or in app mode
    /// the installation tokens it has issued (see [`AppMode`]).
    static VALID: std::cell::RefCell<Tokens> = std::cell::RefCell::new(pat_only());
}

fn pat_only() -> Tokens {
    Arc::new(Mutex::new(HashSet::from([TOKEN.to_string()])))
}

/// Matches a request whose bearer token the fixture has issued.
struct ValidBearer(Tokens);

impl wiremock::Match for ValidBearer {
    fn matches(&self, r: &wiremock::Request) -> bool {
        r.headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|t| self.0.lock().unwrap().contains(t))
    }
}

fn bearer(r: &wiremock::Request) -> String {
    r.headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_string()
}

fn new_env(fx: &Fixture, extra: Value) -> SourceEnv {
    let mut settings = json!({"org": "acme", "api_base": fx.uri()});
    for (k, v) in extra.as_object().unwrap() {
        settings[k] = v.clone();
    }
    SourceEnv::new("github", "GitHub acme", settings, TOKEN)
}

fn policy() -> HttpPolicy {
    HttpPolicy {
        base_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        secondary_wait: Duration::from_millis(20),
        ..Default::default()
    }
}

fn sync(env: &mut SourceEnv) -> custodian::Result<custodian::sync::SyncOutcome> {
    sync_blocking(
        &mut env.store,
        env.source,
        &env.secrets,
        std::sync::Arc::new(|_| {}),
        Cancel::new(),
        policy(),
    )
}

fn member(login: &str) -> Value {
    json!({"login": login, "id": login.len(), "type": "User", "site_admin": false})
}

/// Members on three pages (Link with next and last in one header), the rest on one page each.
fn mount_org(fx: &Fixture, with_pat: bool) {
    let uri = fx.uri();
    let link = |page: u32, last: u32| {
        let mut parts = vec![];
        if page < last {
            parts.push(format!(
                "<{uri}/orgs/acme/members?role=all&per_page=100&page={}>; rel=\"next\"",
                page + 1
            ));
        }
        parts.push(format!(
            "<{uri}/orgs/acme/members?role=all&per_page=100&page={last}>; rel=\"last\""
        ));
        parts.join(", ")
    };
    fx.mount(
        get("/orgs/acme/members")
            .and(query_param("role", "all"))
            .and(query_param_is_missing("page"))
            .respond_with(
                ok(json!([member("alice"), member("bob")]))
                    .insert_header("link", link(1, 3).as_str()),
            ),
    );
    fx.mount(
        get("/orgs/acme/members")
            .and(query_param("role", "all"))
            .and(query_param("page", "2"))
            .respond_with(ok(json!([member("carol")])).insert_header("link", link(2, 3).as_str())),
    );
    fx.mount(
        get("/orgs/acme/members")
            .and(query_param("role", "all"))
            .and(query_param("page", "3"))
            .respond_with(ok(json!([member("dave")]))),
    );
    fx.mount(
        get("/orgs/acme/members")
            .and(query_param("role", "admin"))
            .respond_with(ok(json!([member("alice")]))),
    );
    fx.mount(get("/orgs/acme/outside_collaborators").respond_with(ok(json!([member("erin")]))));
    fx.mount(get("/orgs/acme/installations").respond_with(ok(json!({"total_count": 2, "installations": [
        {"id": 1, "app_id": 42, "app_slug": "release-bot", "target_type": "Organization",
         "account": {"login": "acme", "id": 2, "type": "Organization"}, "repository_selection": "all",
         "permissions": {"contents": "write", "metadata": "read", "members": "read"}, "events": ["push"],
         "created_at": "2024-01-01T00:00:00Z", "updated_at": "2025-01-01T00:00:00Z", "suspended_at": null, "suspended_by": null},
        {"id": 2, "app_id": 43, "app_slug": "old-linter", "target_type": "Organization",
         "account": {"login": "acme", "id": 2, "type": "Organization"}, "repository_selection": "selected",
         "permissions": {"checks": "write"}, "events": [],
         "created_at": "2023-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z",
         "suspended_at": "2025-06-01T00:00:00Z", "suspended_by": {"login": "alice"}}]}))));
    let pats = if with_pat {
        json!([{"id": 25381, "owner": {"login": "bob", "id": 1, "type": "User"}, "repository_selection": "subset",
                "repositories_url": format!("{uri}/organizations/652551/personal-access-tokens/25381/repositories"),
                "permissions": {"organization": {"members": "read"}, "repository": {"metadata": "read", "workflows": "write"}},
                "access_granted_at": "2025-05-16T08:47:09Z", "token_id": 98716, "token_name": "agent-runner", "token_expired": false,
                "token_expires_at": "2099-11-16T08:47:09Z", "token_last_used_at": "2026-10-30T10:00:00Z"}])
    } else {
        json!([])
    };
    fx.mount(get("/orgs/acme/personal-access-tokens").respond_with(ok(pats)));
    fx.mount(get("/orgs/acme/repos").respond_with(ok(json!([
        {"id": 1, "full_name": "acme/api", "private": true},
        {"id": 2, "full_name": "acme/docs", "private": false}]))));
    fx.mount(get("/repos/acme/api/keys").respond_with(ok(json!([
        {"id": 7, "key": "ssh-ed25519 AAAA", "title": "ci-deploy", "verified": true, "created_at": "2024-03-01T00:00:00Z",
         "read_only": false, "added_by": "carol", "last_used": "2026-11-01T00:00:00Z", "enabled": true}]))));
    fx.mount(get("/repos/acme/docs/keys").respond_with(ok(json!([]))));
}

fn grants(env: &SourceEnv, ext: &str) -> Vec<String> {
    let mut v: Vec<String> = env
        .detail(ext)
        .grants
        .iter()
        .map(|g| {
            format!(
                "{} {}{}",
                g.permission,
                g.privilege.as_str(),
                if g.high_consequence { " HC" } else { "" }
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn an_organisation_maps_to_people_apps_tokens_and_deploy_keys() {
    let fx = Fixture::start();
    mount_org(&fx, true);
    let mut env = new_env(&fx, json!({}));
    sync(&mut env).unwrap();

    let people: Vec<(String, String)> = {
        let mut st = env
            .store
            .raw_db()
            .prepare("SELECT external_id, title FROM people ORDER BY external_id")
            .unwrap();
        let v = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        v
    };
    assert_eq!(
        people,
        [
            ("alice".to_string(), "org owner".to_string()),
            ("bob".into(), "member".into()),
            ("carol".into(), "member".into()),
            ("dave".into(), "member".into()),
            ("erin".into(), "outside collaborator".into())
        ],
        "three pages of members followed through the Link header"
    );

    let app = env.detail("installation:1");
    assert_eq!(
        (app.kind, app.status, app.name.as_str()),
        (
            IdentityKind::OauthApp,
            IdentityStatus::Active,
            "release-bot"
        )
    );
    assert_eq!(
        grants(&env, "installation:1"),
        [
            "contents:write write HC",
            "members:read read",
            "metadata:read read"
        ]
    );
    assert_eq!(
        env.detail("installation:2").status,
        IdentityStatus::Disabled,
        "suspended"
    );

    let pat = env.detail("pat:25381");
    assert_eq!(pat.kind, IdentityKind::ApiKey);
    assert_eq!(pat.owner.as_ref().unwrap().display_name, "bob");
    assert_eq!(pat.credentials[0].kind, CredentialKind::PersonalAccessToken);
    assert!(pat.credentials[0]
        .expires_at
        .as_deref()
        .unwrap()
        .starts_with("2099-11-16"));
    assert!(pat
        .last_used_at
        .as_deref()
        .unwrap()
        .starts_with("2026-10-30"));
    assert_eq!(
        grants(&env, "pat:25381"),
        [
            "members:read read",
            "metadata:read read",
            "workflows:write write HC"
        ]
    );

    let key = env.detail("deploy-key:acme/api:7");
    assert_eq!(key.name, "ci-deploy (acme/api)");
    assert_eq!(key.builder.as_ref().unwrap().display_name, "carol");
    assert_eq!(key.credentials[0].kind, CredentialKind::SshKey);
    let g = &key.grants[0];
    assert_eq!(
        (g.privilege, g.high_consequence, g.resource_name.as_str()),
        (Privilege::Write, true, "acme/api")
    );
    fx.verify();
}

/// Answers `first` once, then `then`, recording when each request came.
struct Throttle {
    first: ResponseTemplate,
    then: ResponseTemplate,
    at: std::sync::Arc<std::sync::Mutex<Vec<std::time::Instant>>>,
}

impl wiremock::Respond for Throttle {
    fn respond(&self, _: &wiremock::Request) -> ResponseTemplate {
        let mut at = self.at.lock().unwrap();
        at.push(std::time::Instant::now());
        if at.len() == 1 {
            self.first.clone()
        } else {
            self.then.clone()
        }
    }
}

type Times = std::sync::Arc<std::sync::Mutex<Vec<std::time::Instant>>>;

fn throttled(first: ResponseTemplate, then: ResponseTemplate) -> (Throttle, Times) {
    let at = Times::default();
    (
        Throttle {
            first,
            then,
            at: at.clone(),
        },
        at,
    )
}

#[test]
fn primary_and_secondary_rate_limits_are_waited_out() {
    let fx = Fixture::start();
    // Primary: 403 with remaining 0 and a reset now (wait until the reset,
    // plus a second); secondary: 403 with retry-after 1; secondary named only
    // in the body (wait the policy's secondary_wait). Each once, then the
    // real answer; each throttled URL must be asked twice, the second time
    // only after the wait.
    let reset = chrono::Utc::now().timestamp().to_string();
    let (primary, primary_at) = throttled(
        ResponseTemplate::new(403)
            .insert_header("x-ratelimit-remaining", "0")
            .insert_header("x-ratelimit-reset", reset.as_str())
            .set_body_json(json!({"message": "API rate limit exceeded"})),
        ok(json!([member("alice")])),
    );
    fx.mount(
        get("/orgs/acme/members")
            .and(query_param("role", "admin"))
            .respond_with(primary)
            .with_priority(1),
    );
    let (secondary, secondary_at) = throttled(
        ResponseTemplate::new(403).insert_header("retry-after", "1")
            .set_body_json(json!({"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."})),
        ok(json!([member("erin")])),
    );
    fx.mount(
        get("/orgs/acme/outside_collaborators")
            .respond_with(secondary)
            .with_priority(1),
    );
    let (body_only, body_only_at) = throttled(
        ResponseTemplate::new(403)
            .set_body_json(json!({"message": "You have exceeded a secondary rate limit and have been temporarily blocked from content creation."})),
        ok(json!([member("dave")])),
    );
    fx.mount(
        get("/orgs/acme/members")
            .and(query_param("role", "all"))
            .and(query_param("page", "3"))
            .respond_with(body_only)
            .with_priority(1),
    );
    mount_org(&fx, false);
    let mut env = new_env(&fx, json!({}));
    let secondary_wait = Duration::from_millis(400);
    sync_blocking(
        &mut env.store,
        env.source,
        &env.secrets,
        std::sync::Arc::new(|_| {}),
        Cancel::new(),
        HttpPolicy {
            secondary_wait,
            ..policy()
        },
    )
    .unwrap();
    // What the retried answers carried is in the inventory.
    assert_eq!(env.detail("installation:1").name, "release-bot");
    let people: Vec<String> = ["alice", "erin", "dave"]
        .iter()
        .map(|l| env.person(l).0)
        .collect();
    assert_eq!(people, ["active", "active", "active"]);
    // Each throttle was served, then the same URL asked again after the wait.
    for (what, at, min) in [
        ("primary (reset)", &primary_at, Duration::from_secs(1)),
        (
            "secondary (retry-after)",
            &secondary_at,
            Duration::from_secs(1),
        ),
        ("secondary (body only)", &body_only_at, secondary_wait),
    ] {
        let at = at.lock().unwrap();
        assert_eq!(at.len(), 2, "{what}: asked {} time(s)", at.len());
        let waited = at[1] - at[0];
        assert!(
            waited >= min,
            "{what}: retried after {waited:?}, less than {min:?}"
        );
    }
    // In the server's log: each throttled URL twice, and nothing else twice.
    let log = fx.requests();
    let count = |u: &str| log.iter().filter(|r| r.as_str() == u).count();
    for u in [
        "/orgs/acme/members?role=admin&per_page=100",
        "/orgs/acme/outside_collaborators?per_page=100",
        "/orgs/acme/members?role=all&per_page=100&page=3",
    ] {
        assert_eq!(count(u), 2, "{u} in {log:#?}");
    }
    let mut once: Vec<&String> = log.iter().filter(|r| count(r) != 2).collect();
    once.dedup();
    assert!(log.iter().all(|r| count(r) <= 2), "{log:#?}");
    assert_eq!(log.len(), once.len() + 6, "{log:#?}");
}

#[test]
fn a_refused_read_fails_clearly_and_keeps_the_last_snapshot() {
    let fx = Fixture::start();
    mount_org(&fx, true);
    let mut env = new_env(&fx, json!({}));
    sync(&mut env).unwrap();
    // A PAT cannot list the org's fine-grained tokens: GitHub answers 403.
    fx.reset();
    fx.mount(
        get("/orgs/acme/personal-access-tokens")
            .respond_with(ResponseTemplate::new(403).set_body_json(
                json!({"message": "Resource not accessible by personal access token"}),
            ))
            .with_priority(1),
    );
    mount_org(&fx, true);
    let err = sync(&mut env).unwrap_err();
    assert_eq!(err.code, ErrorCode::SourceAuth);
    assert!(err.message.contains("read_tokens"), "{err}");
    assert!(
        !err.message.contains(TOKEN),
        "the token never appears: {err}"
    );
    assert_eq!(
        env.detail("pat:25381").status,
        IdentityStatus::Active,
        "last good snapshot intact"
    );
}

#[test]
fn read_tokens_off_skips_them_and_a_revoked_token_is_deleted_on_resync() {
    let fx = Fixture::start();
    mount_org(&fx, true);
    let mut env = new_env(&fx, json!({}));
    sync(&mut env).unwrap();
    fx.reset();
    mount_org(&fx, false);
    sync(&mut env).unwrap();
    assert_eq!(
        env.detail("pat:25381").status,
        IdentityStatus::Deleted,
        "no longer approved for the org"
    );
    // With read_tokens off, the endpoint is not called at all.
    let fx2 = Fixture::start();
    mount_org(&fx2, true);
    fx2.mount(
        get("/orgs/acme/personal-access-tokens")
            .respond_with(ResponseTemplate::new(500))
            .expect(0)
            .with_priority(1),
    );
    let mut env2 = new_env(&fx2, json!({"read_tokens": false}));
    sync(&mut env2).unwrap();
    fx2.verify();
}

#[test]
fn bad_token_and_malformed_pages() {
    let fx = Fixture::start();
    fx.mount(Mock::given(method("GET")).respond_with(
        ResponseTemplate::new(401).set_body_json(json!({"message": "Bad credentials"})),
    ));
    let mut e = new_env(&fx, json!({}));
    assert_eq!(sync(&mut e).unwrap_err().code, ErrorCode::SourceAuth);

    let fx = Fixture::start();
    fx.mount(
        get("/orgs/acme/members")
            .and(query_param("role", "admin"))
            .respond_with(ok(json!({"not": "a list"}))),
    );
    let mut e = new_env(&fx, json!({}));
    assert_eq!(sync(&mut e).unwrap_err().code, ErrorCode::MalformedResponse);
}

#[test]
fn the_documented_members_example_is_read_and_a_member_without_login_is_named() {
    let fx = Fixture::start();
    mount_org(&fx, false);
    let doc = crate::harness::doc_fixture("github/orgs-members-list.json");
    fx.mount(
        get("/orgs/acme/members")
            .and(query_param("role", "all"))
            .respond_with(
                ResponseTemplate::new(200).set_body_raw(doc.into_bytes(), "application/json"),
            )
            .with_priority(1),
    );
    fx.mount(
        get("/orgs/acme/outside_collaborators")
            .respond_with(ok(json!([member("erin"), {"id": 99, "type": "User"}])))
            .with_priority(1),
    );
    let mut env = new_env(&fx, json!({}));
    sync(&mut env).unwrap();
    assert_eq!(env.person("octocat").0, "active");
    assert_eq!(env.person("erin").0, "active");
    let run = crate::harness::last_run(&env);
    assert_eq!(run.status, "succeeded_with_warnings");
    assert_eq!(run.warnings.len(), 1, "{:?}", run.warnings);
    assert!(
        run.warnings[0].contains("outside collaborator without a login (id 99)"),
        "{:?}",
        run.warnings
    );
    assert_eq!(
        env.detail("installation:1").status,
        IdentityStatus::Active,
        "the rest is imported"
    );
}

#[test]
fn a_token_past_its_expiry_is_disabled_whatever_token_expired_says() {
    let fx = Fixture::start();
    mount_org(&fx, false);
    fx.mount(
        get("/orgs/acme/personal-access-tokens")
            .respond_with(ok(json!([{"id": 777, "owner": {"login": "bob", "id": 1, "type": "User"},
                "repository_selection": "all", "permissions": {"repository": {"contents": "write"}},
                "access_granted_at": "2024-01-01T00:00:00Z", "token_id": 5, "token_name": "lapsed",
                "token_expired": false, "token_expires_at": "2025-01-01T00:00:00Z", "token_last_used_at": null}])))
            .with_priority(1),
    );
    let mut env = new_env(&fx, json!({}));
    sync(&mut env).unwrap();
    let pat = env.detail("pat:777");
    assert_eq!(pat.status, IdentityStatus::Disabled);
    assert!(pat.purpose.contains("expired"), "{}", pat.purpose);
}

// ------------------------------------------------------------ GitHub App mode

const APP_ID: &str = "12345";

/// GitHub's side of a GitHub App: verifies each app JWT with the app's
/// public key (RS256, iss = the app id, iat at least 30 s back, at most 10
/// minutes of life, not expired), serves the documented installation, and
/// issues installation tokens (the documented example first, verbatim,
/// then the same body with fresh tokens), each accepted by the API from then
/// on. Dropped, it puts the fixture back to the PAT.
struct AppMode {
    valid: Tokens,
    issued: Issued,
    jwts: Jwts,
}

/// The installation tokens issued, in order.
type Issued = Arc<Mutex<Vec<String>>>;
/// The claims of every app JWT the fixture verified.
type Jwts = Arc<Mutex<Vec<Value>>>;

impl Drop for AppMode {
    fn drop(&mut self) {
        VALID.with(|v| *v.borrow_mut() = pat_only());
    }
}

/// Verifies an app JWT; its claims, or why not.
fn verify_app_jwt(r: &wiremock::Request, public: &str) -> Result<Value, String> {
    use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
    let jwt = bearer(r);
    let mut v = Validation::new(Algorithm::RS256);
    v.set_issuer(&[APP_ID]);
    v.set_required_spec_claims(&["exp", "iat", "iss"]);
    v.leeway = 0;
    let key = DecodingKey::from_rsa_pem(public.as_bytes()).map_err(|e| e.to_string())?;
    let claims = decode::<Value>(&jwt, &key, &v)
        .map_err(|e| e.to_string())?
        .claims;
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    let now = chrono::Utc::now().timestamp();
    if iat > now - 30 || exp - iat > 600 {
        return Err(format!("iat {iat} / exp {exp} against now {now}"));
    }
    Ok(claims)
}

fn jwt_refused() -> ResponseTemplate {
    // GitHub's answer to a JWT it cannot verify.
    ResponseTemplate::new(401).set_body_json(json!({
        "message": "A JSON web token could not be decoded",
        "documentation_url": "https://docs.github.com/rest"}))
}

struct TokenIssuer {
    public: String,
    bodies: Vec<Value>,
    mode: (Tokens, Issued, Jwts),
}

impl wiremock::Respond for TokenIssuer {
    fn respond(&self, r: &wiremock::Request) -> ResponseTemplate {
        let claims = match verify_app_jwt(r, &self.public) {
            Ok(c) => c,
            Err(_) => return jwt_refused(),
        };
        let (valid, issued, jwts) = &self.mode;
        jwts.lock().unwrap().push(claims);
        let mut issued = issued.lock().unwrap();
        let body = self.bodies[issued.len().min(self.bodies.len() - 1)].clone();
        let token = body["token"].as_str().unwrap().to_string();
        valid.lock().unwrap().insert(token.clone());
        issued.push(token);
        ResponseTemplate::new(201).set_body_json(body)
    }
}

struct OrgInstallation(String);

impl wiremock::Respond for OrgInstallation {
    fn respond(&self, r: &wiremock::Request) -> ResponseTemplate {
        match verify_app_jwt(r, &self.0) {
            Ok(_) => ResponseTemplate::new(200).set_body_raw(
                crate::harness::doc_fixture("github/apps-get-org-installation.json").into_bytes(),
                "application/json",
            ),
            Err(_) => jwt_refused(),
        }
    }
}

/// Mounts GitHub's app endpoints for the app whose public key is `public`;
/// the installation (1, the documented one) hands out `tokens` in turn.
fn mount_app(fx: &Fixture, public: &str, tokens: &[(&str, Option<i64>)]) -> AppMode {
    let doc: Value = serde_json::from_str(&crate::harness::doc_fixture(
        "github/apps-create-installation-access-token.json",
    ))
    .unwrap();
    let bodies = tokens
        .iter()
        .map(|(t, ttl)| match ttl {
            // None: the documented example as it is (it expired in 2016).
            None => doc.clone(),
            Some(secs) => {
                let mut b = doc.clone();
                b["token"] = json!(t);
                b["expires_at"] = json!((chrono::Utc::now() + chrono::Duration::seconds(*secs))
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
                b
            }
        })
        .collect();
    let mode = AppMode {
        valid: Arc::new(Mutex::new(HashSet::new())),
        issued: Arc::default(),
        jwts: Arc::default(),
    };
    VALID.with(|v| *v.borrow_mut() = mode.valid.clone());
    fx.mount(
        Mock::given(method("POST"))
            .and(path("/app/installations/1/access_tokens"))
            .and(header("accept", "application/vnd.github+json"))
            .respond_with(TokenIssuer {
                public: public.to_string(),
                bodies,
                mode: (mode.valid.clone(), mode.issued.clone(), mode.jwts.clone()),
            }),
    );
    fx.mount(
        Mock::given(method("GET"))
            .and(path("/orgs/acme/installation"))
            .respond_with(OrgInstallation(public.to_string())),
    );
    mode
}

fn app_env(fx: &Fixture, private_pem: &str, extra: Value) -> SourceEnv {
    let mut settings = json!({"org": "acme", "api_base": fx.uri(), "app_id": APP_ID});
    for (k, v) in extra.as_object().unwrap() {
        settings[k] = v.clone();
    }
    SourceEnv::new("github", "GitHub acme (app)", settings, private_pem)
}

#[test]
fn a_github_app_signs_in_with_its_key_and_refreshes_its_installation_token() {
    let fx = Fixture::start();
    let (private, public) = crate::harness::key_pair("rsa");
    // First the documented token, whose expires_at is long past: used for
    // the request it was minted for, then replaced before the next. The
    // second is revoked early (GitHub answers 401 mid-sync): a third is
    // minted and the refused request retried.
    let app = mount_app(
        &fx,
        &public,
        &[
            ("ghs_16C7e42F292c6912E7710c838347Ae178B4a", None),
            ("ghs_second", Some(3600)),
            ("ghs_third", Some(3600)),
        ],
    );
    let revoked = app.valid.clone();
    fx.mount(
        Mock::given(method("GET"))
            .and(path("/orgs/acme/repos"))
            .and(header("authorization", "Bearer ghs_second"))
            .respond_with(move |_: &wiremock::Request| {
                revoked.lock().unwrap().remove("ghs_second");
                ResponseTemplate::new(401).set_body_json(json!({
                    "message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}))
            })
            .with_priority(1),
    );
    mount_org(&fx, true);
    let mut env = app_env(&fx, &private, json!({}));
    sync(&mut env).unwrap();

    // What only an installation token can read is there: the org's
    // fine-grained tokens, besides members, installations and deploy keys.
    assert_eq!(env.detail("pat:25381").status, IdentityStatus::Active);
    assert_eq!(env.detail("installation:1").name, "release-bot");
    assert_eq!(
        env.detail("deploy-key:acme/api:7").name,
        "ci-deploy (acme/api)"
    );
    assert_eq!(env.person("alice").0, "active");

    // Three tokens, each for a JWT the app's public key verifies.
    assert_eq!(
        *app.issued.lock().unwrap(),
        [
            "ghs_16C7e42F292c6912E7710c838347Ae178B4a",
            "ghs_second",
            "ghs_third"
        ]
    );
    let jwts = app.jwts.lock().unwrap();
    assert_eq!(jwts.len(), 3);
    for c in jwts.iter() {
        assert_eq!(c["iss"], json!(APP_ID));
    }
    // The installation was found from the org (no installation_id set),
    // signed with a JWT too.
    let log = fx.received();
    let paths: Vec<&str> = log.iter().map(|r| r.url.path()).collect();
    assert_eq!(paths[0], "/orgs/acme/installation", "{paths:?}");
    assert_eq!(paths[1], "/app/installations/1/access_tokens", "{paths:?}");
    // The documented token served one request; every API request after
    // the second mint carried a current token; the refused one was asked
    // again with the third.
    let api: Vec<(String, String)> = log
        .iter()
        .filter(|r| r.method.as_str() == "GET" && r.url.path() != "/orgs/acme/installation")
        .map(|r| (r.url.path().to_string(), bearer(r)))
        .collect();
    assert_eq!(
        api[0].1, "ghs_16C7e42F292c6912E7710c838347Ae178B4a",
        "{api:?}"
    );
    assert_eq!(
        api.iter()
            .filter(|(_, t)| t.starts_with("ghs_16C7"))
            .count(),
        1,
        "{api:?}"
    );
    let repos: Vec<&str> = api
        .iter()
        .filter(|(p, _)| p == "/orgs/acme/repos")
        .map(|(_, t)| t.as_str())
        .collect();
    assert_eq!(repos, ["ghs_second", "ghs_third"], "{api:?}");
    assert!(api.last().is_some_and(|(_, t)| t == "ghs_third"), "{api:?}");
    // Neither the key nor a token is in the run's record.
    let run = crate::harness::last_run(&env);
    assert_eq!(run.status, "succeeded", "{run:?}");
}

#[test]
fn a_bad_app_key_or_a_missing_permission_is_source_auth_with_what_to_do() {
    let fx = Fixture::start();
    let (_, public) = crate::harness::key_pair("rsa");
    let (other, _) = crate::harness::key_pair("rsa");
    let app = mount_app(&fx, &public, &[("ghs_x", Some(3600))]);
    mount_org(&fx, true);
    // A key that is not the app's: GitHub cannot verify the JWT.
    let mut env = app_env(&fx, &other, json!({"installation_id": 1}));
    let e = sync(&mut env).unwrap_err();
    assert_eq!(e.code, ErrorCode::SourceAuth, "{e:?}");
    assert!(
        e.message.contains("GitHub App 12345")
            && e.message.contains("private key")
            && e.message.contains("could not be decoded"),
        "{}",
        e.message
    );
    assert!(!e.message.contains("PRIVATE KEY"), "{}", e.message);
    assert!(app.issued.lock().unwrap().is_empty());
    // installation_id set: the org's installation was not looked up.
    assert!(fx
        .received()
        .iter()
        .all(|r| r.url.path() != "/orgs/acme/installation"));

    // A secret that is no key at all (a PAT left in place): refused before
    // anything is sent.
    let before = fx.received().len();
    let mut env = app_env(&fx, TOKEN, json!({}));
    let e = sync(&mut env).unwrap_err();
    assert_eq!(e.code, ErrorCode::SourceAuth, "{e:?}");
    assert!(e.message.contains("not a PEM private key"), "{}", e.message);
    assert!(!e.message.contains(TOKEN), "{}", e.message);
    assert_eq!(fx.received().len(), before, "nothing sent");

    // The app's own key, but the app lacks 'Personal access tokens' (read).
    let (private, public) = crate::harness::key_pair("rsa");
    let fx = Fixture::start();
    let _app = mount_app(&fx, &public, &[("ghs_y", Some(3600))]);
    fx.mount(
        Mock::given(method("GET"))
            .and(path("/orgs/acme/personal-access-tokens"))
            .respond_with(
                ResponseTemplate::new(403)
                    .set_body_json(json!({"message": "Resource not accessible by integration"})),
            )
            .with_priority(1),
    );
    mount_org(&fx, true);
    let mut env = app_env(&fx, &private, json!({}));
    let e = sync(&mut env).unwrap_err();
    assert_eq!(e.code, ErrorCode::SourceAuth, "{e:?}");
    assert!(
        e.message.contains("'Personal access tokens' (read)"),
        "{}",
        e.message
    );
}

#[test]
fn the_app_key_can_be_a_file_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let fx = Fixture::start();
    let (private, public) = crate::harness::key_pair("rsa");
    let app = mount_app(&fx, &public, &[("ghs_file", Some(3600))]);
    mount_org(&fx, false);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.pem");
    std::fs::write(&file, &private).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    // No secret at all: the file is the key.
    let mut env = app_env(&fx, "", json!({"private_key_file": file.to_str().unwrap()}));
    let e = sync(&mut env).unwrap_err();
    assert!(e.message.contains("chmod 600"), "{}", e.message);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    sync(&mut env).unwrap();
    assert_eq!(*app.issued.lock().unwrap(), ["ghs_file"]);
    // Headless (--secrets-from env) with no variable set: the key file is
    // all it needs, no secret is asked for.
    let headless = custodian::sync::secrets::SecretsFrom::parse("env")
        .unwrap()
        .open()
        .unwrap();
    sync_blocking(
        &mut env.store,
        env.source,
        &*headless,
        std::sync::Arc::new(|_| {}),
        Cancel::new(),
        policy(),
    )
    .unwrap();
}
