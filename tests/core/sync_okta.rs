//! The Okta source against a wiremock fixture server serving the documented
//! shapes, driven through the public sync engine.

use chrono::Utc;
use custodian::model::{CredentialKind, IdentityKind, IdentityStatus, Privilege};
use custodian::ErrorCode;
use serde_json::{json, Value};
use wiremock::matchers::{header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, ResponseTemplate};

use crate::harness::{Fixture, SourceEnv};

fn ok(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_json(body)
        .insert_header("X-Rate-Limit-Limit", "600")
        .insert_header("X-Rate-Limit-Remaining", "598")
        .insert_header("X-Rate-Limit-Reset", "1735689600")
}

/// A page with Okta's separate `link` header lines.
fn page(body: Value, self_url: &str, next: Option<&str>) -> ResponseTemplate {
    let mut r = ok(body).append_header("link", format!("<{self_url}>; rel=\"self\"").as_str());
    if let Some(n) = next {
        r = r.append_header("link", format!("<{n}>; rel=\"next\"").as_str());
    }
    r
}

fn get(p: &str) -> wiremock::MockBuilder {
    Mock::given(method("GET"))
        .and(path(p.to_string()))
        .and(header(
            "authorization",
            AUTH.with(|a| a.borrow().clone()).as_str(),
        ))
}

thread_local! {
    /// The `authorization` the fixture's API accepts: the API token, or in
    /// service app mode the documented access token (see [`ServiceAppMode`]).
    static AUTH: std::cell::RefCell<String> = std::cell::RefCell::new("SSWS tok-123".into());
}

fn new_env(fx: &Fixture) -> SourceEnv {
    SourceEnv::new("okta", "Okta", json!({"org_url": fx.uri()}), "tok-123")
}

fn user(id: &str, status: &str, login: &str, extra: Value) -> Value {
    let mut profile = json!({"login": login, "email": login, "firstName": id, "lastName": "X"});
    for (k, v) in extra.as_object().unwrap() {
        profile[k] = v.clone();
    }
    json!({"id": id, "status": status, "created": "2024-01-02T10:00:00.000Z", "lastLogin": null,
           "lastUpdated": "2025-05-01T09:00:00.000Z", "statusChanged": "2025-03-01T00:00:00.000Z",
           "type": {"id": "oty-default"}, "profile": profile})
}

fn mount_org(fx: &Fixture, with_token: bool) {
    let uri = fx.uri();
    let p1 = format!("{uri}/api/v1/users?limit=200");
    let p2 = format!("{uri}/api/v1/users?after=00u2&limit=200");
    let mut svc = user(
        "00u1svc",
        "ACTIVE",
        "svc-sync@example.com",
        json!({"managerId": "00u9boss"}),
    );
    svc["type"] = json!({"id": "oty1svc"});
    svc["lastLogin"] = json!("2026-04-01T00:00:00.000Z");
    fx.mount(
        get("/api/v1/users")
            .and(query_param_is_missing("after"))
            .and(query_param_is_missing("search"))
            .respond_with(page(
                json!([
                    svc,
                    user(
                        "00u2alice",
                        "ACTIVE",
                        "alice@example.com",
                        json!({"managerId": "00u9boss", "department": "Sales"})
                    )
                ]),
                &p1,
                Some(&p2),
            )),
    );
    fx.mount(
        get("/api/v1/users")
            .and(query_param("after", "00u2"))
            .respond_with(page(
                json!([
                    user("00u3bob", "SUSPENDED", "bob@example.com", json!({})),
                    user(
                        "00u4bot",
                        "ACTIVE",
                        "deploy-bot@example.com",
                        json!({"userType": "bot"})
                    )
                ]),
                &p2,
                None,
            )),
    );
    fx.mount(
        get("/api/v1/users")
            .and(query_param("search", "status eq \"DEPROVISIONED\""))
            .respond_with(page(
                json!([user(
                    "00u9boss",
                    "DEPROVISIONED",
                    "boss@example.com",
                    json!({})
                )]),
                &p1,
                None,
            )),
    );
    fx.mount(get("/api/v1/meta/types/user").respond_with(ok(json!([
        {"id": "oty-default", "name": "user", "displayName": "User"},
        {"id": "oty1svc", "name": "service_account", "displayName": "Service account"}]))));
    fx.mount(get("/api/v1/apps").respond_with(ok(json!([
        {"id": "0oasvc", "label": "reporting-service", "status": "ACTIVE", "created": "2025-01-01T00:00:00.000Z",
         "signOnMode": "OPENID_CONNECT",
         "settings": {"oauthClient": {"application_type": "service", "grant_types": ["client_credentials"]}},
         "credentials": {"oauthClient": {"client_id": "0oasvc", "token_endpoint_auth_method": "client_secret_basic"}}},
        {"id": "0oaweb", "label": "intranet", "status": "ACTIVE", "signOnMode": "OPENID_CONNECT",
         "settings": {"oauthClient": {"application_type": "web"}}}]))));
    fx.mount(get("/api/v1/apps/0oasvc/grants").respond_with(ok(json!([
        {"id": "oag1", "status": "ACTIVE", "scopeId": "okta.users.manage", "issuer": uri, "clientId": "0oasvc"},
        {"id": "oag2", "status": "ACTIVE", "scopeId": "okta.groups.read", "issuer": uri, "clientId": "0oasvc"},
        {"id": "oag3", "status": "REVOKED", "scopeId": "okta.apps.manage", "issuer": uri, "clientId": "0oasvc"}]))));
    fx.mount(get("/api/v1/apps/0oasvc/credentials/secrets").respond_with(ok(json!([
        {"id": "ocs1", "status": "ACTIVE", "created": "2025-02-01T00:00:00.000Z", "lastUpdated": "2025-02-01T00:00:00.000Z"},
        {"id": "ocs0", "status": "INACTIVE", "created": "2024-02-01T00:00:00.000Z"}]))));
    let tokens = if with_token {
        json!([{"id": "00Tabc", "name": "terraform", "userId": "00u9boss", "clientName": "Okta API",
                "created": "2024-03-01T00:00:00.000Z", "lastUpdated": "2024-03-01T00:00:00.000Z",
                "expiresAt": "2025-07-01T00:00:00.000Z", "tokenWindow": "PT720H", "network": {"connection": "ANYWHERE"}}])
    } else {
        json!([])
    };
    fx.mount(get("/api/v1/api-tokens").respond_with(ok(tokens)));
    fx.mount(get("/api/v1/groups").respond_with(ok(json!([
        {"id": "00gadm", "type": "OKTA_GROUP", "profile": {"name": "Okta Admins"}},
        {"id": "00gall", "type": "BUILT_IN", "profile": {"name": "Everyone"}}]))));
    let g1 = format!("{uri}/api/v1/groups/00gall/users?limit=200");
    let g2 = format!("{uri}/api/v1/groups/00gall/users?after=x&limit=200");
    fx.mount(
        get("/api/v1/groups/00gall/users")
            .and(query_param_is_missing("after"))
            .respond_with(page(
                json!([{"id": "00u2alice"}, {"id": "00u1svc"}]),
                &g1,
                Some(&g2),
            )),
    );
    fx.mount(
        get("/api/v1/groups/00gall/users")
            .and(query_param("after", "x"))
            .respond_with(page(json!([{"id": "00u4bot"}]), &g2, None)),
    );
    fx.mount(get("/api/v1/groups/00gadm/users").respond_with(ok(json!([{"id": "00u1svc"}]))));
}

#[test]
fn full_sync_maps_users_apps_tokens_and_groups() {
    let fx = Fixture::start();
    // The second users page is throttled once with X-Rate-Limit-Reset.
    let reset = Utc::now().timestamp().to_string();
    fx.mount(
        get("/api/v1/users")
            .and(query_param("after", "00u2"))
            .respond_with(
                ResponseTemplate::new(429)
                    .insert_header("X-Rate-Limit-Limit", "600")
                    .insert_header("X-Rate-Limit-Remaining", "0")
                    .insert_header("X-Rate-Limit-Reset", reset.as_str())
                    .set_body_json(json!({"errorCode": "E0000047", "errorSummary": "API call exceeded rate limit due to too many requests."})),
            )
            .up_to_n_times(1)
            .expect(1)
            .with_priority(1),
    );
    mount_org(&fx, true);
    let mut env = new_env(&fx);
    let started = std::time::Instant::now();
    let out = env.sync().unwrap();
    let took = started.elapsed();
    fx.verify();
    assert!(out.full);
    // The throttled page was asked twice, the retry after the wait Okta
    // asked for (until the reset, plus a second), then the pages after it.
    let log = fx.requests();
    let throttled = "/api/v1/users?after=00u2&limit=200";
    let at: Vec<usize> = log
        .iter()
        .enumerate()
        .filter(|(_, r)| r.as_str() == throttled)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(at.len(), 2, "{log:#?}");
    assert!(
        took >= std::time::Duration::from_secs(1),
        "no wait: {took:?}"
    );
    let first = log.iter().position(|r| r == "/api/v1/users?limit=200");
    assert!(
        first.is_some_and(|f| f < at[0]),
        "the first page once, then the throttled one twice: {log:#?}"
    );
    assert!(log
        .iter()
        .all(|r| r.as_str() == throttled || log.iter().filter(|o| *o == r).count() == 1));
    let run = &env.store.sync_runs(Some(env.source), 1).unwrap()[0];
    assert_eq!(
        (run.status.as_str(), run.mode.as_deref()),
        ("succeeded", Some("full"))
    );

    let inv = env
        .store
        .inventory(&Default::default(), Utc::now())
        .unwrap();
    let mut rows: Vec<_> = inv
        .rows
        .iter()
        .map(|r| (r.name.clone(), r.kind, r.status))
        .collect();
    rows.sort();
    assert_eq!(
        rows,
        vec![
            (
                "deploy-bot@example.com".to_string(),
                IdentityKind::Bot,
                IdentityStatus::Active
            ),
            (
                "reporting-service".to_string(),
                IdentityKind::OauthApp,
                IdentityStatus::Active
            ),
            (
                "svc-sync@example.com".to_string(),
                IdentityKind::ServiceAccount,
                IdentityStatus::Active
            ),
            // The documented token's expiresAt (2025-07-01) is past: an
            // expired token is not active, though Okta still lists it.
            (
                "terraform".to_string(),
                IdentityKind::ApiKey,
                IdentityStatus::Disabled
            ),
        ],
        "web apps and people are not NHIs"
    );

    // The NHI user typed through /meta/types: owner, last login, groups.
    let svc = env.detail("00u1svc");
    assert_eq!(
        svc.owner.as_ref().map(|o| o.display_name.as_str()),
        Some("00u9boss X")
    );
    assert_eq!(
        svc.last_used_at.as_deref().map(|t| &t[..10]),
        Some("2026-04-01")
    );
    let mut groups: Vec<_> = svc
        .grants
        .iter()
        .map(|g| (g.resource_name.clone(), g.privilege, g.high_consequence))
        .collect();
    groups.sort();
    assert_eq!(
        groups,
        vec![
            ("Everyone".to_string(), Privilege::Read, false),
            ("Okta Admins".to_string(), Privilege::Admin, true)
        ]
    );
    // Membership on the second page of a group is seen.
    assert_eq!(env.detail("00u4bot").grants.len(), 1);

    let app = env.detail("0oasvc");
    let mut scopes: Vec<_> = app
        .grants
        .iter()
        .map(|g| {
            (
                g.permission.clone(),
                g.privilege,
                g.high_consequence,
                g.resource_name.clone(),
            )
        })
        .collect();
    scopes.sort();
    assert_eq!(
        scopes,
        vec![
            (
                "okta.groups.read".to_string(),
                Privilege::Read,
                false,
                "Okta API".to_string()
            ),
            (
                "okta.users.manage".to_string(),
                Privilege::Admin,
                true,
                "Okta API".to_string()
            ),
        ],
        "revoked grants are not access"
    );
    assert_eq!(
        app.credentials
            .iter()
            .map(|c| (c.external_id.as_str(), c.kind))
            .collect::<Vec<_>>(),
        vec![("ocs1", CredentialKind::ClientSecret)]
    );

    let token = env.detail("00Tabc");
    assert!(token.purpose.contains("expired"), "{}", token.purpose);
    assert_eq!(
        token.owner.as_ref().map(|o| o.status.as_str()),
        Some("departed")
    );
    assert_eq!(token.credentials.len(), 1);
    let c = &token.credentials[0];
    assert_eq!(
        (
            c.kind,
            c.created_at.get(..10),
            c.expires_at.as_deref().map(|t| &t[..10])
        ),
        (
            CredentialKind::ApiToken,
            Some("2024-03-01"),
            Some("2025-07-01")
        )
    );

    assert_eq!(
        env.person("00u2alice"),
        ("active".into(), Some("00u9boss".into()), None)
    );
    assert_eq!(env.person("00u3bob").0, "suspended");
    let boss = env.person("00u9boss");
    assert_eq!(boss.0, "departed");
    assert_eq!(
        boss.2,
        Some(
            chrono::DateTime::parse_from_rfc3339("2025-03-01T00:00:00Z")
                .unwrap()
                .timestamp()
        )
    );
    assert_eq!(
        env.store.source_cursor(env.source).unwrap(),
        None,
        "Okta runs are always full"
    );
}

#[test]
fn every_run_is_full_and_removes_what_is_gone() {
    let fx = Fixture::start();
    mount_org(&fx, true);
    let mut env = new_env(&fx);
    env.sync().unwrap();
    fx.reset();
    mount_org(&fx, false);
    let out = env.sync().unwrap();
    assert!(out.full);
    assert_eq!(env.detail("00Tabc").status, IdentityStatus::Deleted);
    let events = env.store.lifecycle_events(out.run).unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.kind == "leaver" && e.name == "terraform"),
        "{events:?}"
    );
    assert_eq!(
        env.detail("0oasvc").grants.len(),
        2,
        "the rest is unchanged"
    );
}

#[test]
fn malformed_page_fails_and_keeps_the_previous_snapshot() {
    let fx = Fixture::start();
    mount_org(&fx, true);
    let mut env = new_env(&fx);
    env.sync().unwrap();
    let before = env
        .store
        .inventory(&Default::default(), Utc::now())
        .unwrap();

    fx.reset();
    mount_org(&fx, false);
    fx.mount(
        get("/api/v1/groups")
            .respond_with(ResponseTemplate::new(200).set_body_string("[{\"id\": \"00gadm\""))
            .with_priority(1),
    );
    let err = env.sync().unwrap_err();
    assert_eq!(err.code, ErrorCode::MalformedResponse, "{err:?}");
    let run = &env.store.sync_runs(Some(env.source), 1).unwrap()[0];
    assert_eq!(
        (run.status.as_str(), run.error_code.as_deref()),
        ("failed", Some("malformed_response"))
    );
    assert_eq!(
        env.store
            .inventory(&Default::default(), Utc::now())
            .unwrap(),
        before
    );
    assert_eq!(
        env.detail("00Tabc").status,
        IdentityStatus::Disabled,
        "nothing of the failed run was applied"
    );
}

#[test]
fn refused_token_is_source_auth() {
    let fx = Fixture::start();
    fx.mount(
        Mock::given(method("GET"))
            .and(path("/api/v1/users"))
            .respond_with(ResponseTemplate::new(401).set_body_json(
                json!({"errorCode": "E0000011", "errorSummary": "Invalid token provided"}),
            )),
    );
    let mut env = new_env(&fx);
    let err = env.sync().unwrap_err();
    assert_eq!(err.code, ErrorCode::SourceAuth, "{err:?}");
    assert!(!err.message.contains("tok-123"));
    let run = &env.store.sync_runs(Some(env.source), 1).unwrap()[0];
    assert_eq!(
        (run.status.as_str(), run.error_code.as_deref()),
        ("failed", Some("source_auth"))
    );
}

#[test]
fn an_app_key_list_of_another_shape_and_an_app_without_id_are_warnings() {
    let fx = Fixture::start();
    mount_org(&fx, true);
    fx.mount(
        get("/api/v1/apps")
            .respond_with(ok(json!([
                {"id": "0oasvc", "label": "reporting-service", "status": "ACTIVE",
                 "settings": {"oauthClient": {"application_type": "service"}},
                 "credentials": {"oauthClient": {"client_id": "0oasvc", "token_endpoint_auth_method": "client_secret_basic"}}},
                {"id": "0oajwt", "label": "jwt-service", "status": "ACTIVE",
                 "settings": {"oauthClient": {"application_type": "service"}},
                 "credentials": {"oauthClient": {"client_id": "0oajwt", "token_endpoint_auth_method": "private_key_jwt"}}},
                {"label": "orphan", "status": "ACTIVE",
                 "settings": {"oauthClient": {"application_type": "service"}}}])))
            .with_priority(1),
    );
    fx.mount(get("/api/v1/apps/0oajwt/grants").respond_with(ok(json!([]))));
    // One key object where the schema says an array (as Okta's own example).
    fx.mount(get("/api/v1/apps/0oajwt/credentials/jwks").respond_with(ok(json!(
        {"id": "pks2k3", "kid": "k1", "kty": "RSA", "status": "ACTIVE", "alg": "RS256", "use": "sig",
         "created": "2022-01-10T23:53:49.000Z", "lastUpdated": "2022-01-10T23:53:49.000Z", "e": "AQAB", "n": "xyz"}))));
    let mut env = new_env(&fx);
    env.sync().unwrap();
    let run = crate::harness::last_run(&env);
    assert_eq!(run.status, "succeeded_with_warnings");
    assert_eq!(run.warnings.len(), 2, "{:?}", run.warnings);
    assert!(
        run.warnings
            .iter()
            .any(|w| w.contains("apps item 3") && w.contains("'orphan'")),
        "{:?}",
        run.warnings
    );
    assert!(
        run.warnings
            .iter()
            .any(|w| w.contains("0oajwt") && w.contains("JSON web key list")),
        "{:?}",
        run.warnings
    );
    let jwt = env.detail("0oajwt");
    assert_eq!(jwt.credentials.len(), 1, "the one key is read");
    assert_eq!(jwt.credentials[0].kind, CredentialKind::Certificate);
    assert_eq!(
        env.detail("0oasvc").status,
        IdentityStatus::Active,
        "the rest is imported"
    );
}

#[test]
fn an_api_token_past_its_expiry_is_not_active() {
    let fx = Fixture::start();
    mount_org(&fx, true);
    let mut env = new_env(&fx);
    env.sync().unwrap();
    // expiresAt 2025-07-01 (the reference example): Okta still lists it.
    let t = env.detail("00Tabc");
    assert_eq!(t.status, IdentityStatus::Disabled);
    assert!(t.purpose.contains("expired"), "{}", t.purpose);
    assert!(t.credentials[0].expires_in_days.unwrap() < 0);
}

// ------------------------------------------------- OAuth service app mode

/// The client id of Okta's own example (the service app guide).
const CLIENT_ID: &str = "0oar95zt9zIpYuz6A0h7";
const KID: &str = "my_key_id";

/// Okta's org authorization server for a service app whose public key is
/// `public`: verifies each client assertion (signature, `kid`, iss = sub =
/// the client id, aud = the token URL, at most an hour of life, a `jti` not
/// seen before) and the form, then answers Okta's documented token
/// response verbatim; anything else is `invalid_client`. The API accepts
/// that documented access token as a Bearer token while this is alive.
struct ServiceAppMode {
    assertions: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
    forms: std::sync::Arc<std::sync::Mutex<Vec<std::collections::HashMap<String, String>>>>,
}

impl Drop for ServiceAppMode {
    fn drop(&mut self) {
        AUTH.with(|a| *a.borrow_mut() = "SSWS tok-123".into());
    }
}

struct TokenEndpoint {
    public: String,
    short_first: bool,
    aud: String,
    assertions: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
    forms: std::sync::Arc<std::sync::Mutex<Vec<std::collections::HashMap<String, String>>>>,
}

fn invalid_client(why: &str) -> ResponseTemplate {
    ResponseTemplate::new(401).set_body_json(json!({
        "error": "invalid_client",
        "error_description": why}))
}

impl wiremock::Respond for TokenEndpoint {
    fn respond(&self, r: &wiremock::Request) -> ResponseTemplate {
        use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
        let form: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(&r.body).into_owned().collect();
        self.forms.lock().unwrap().push(form.clone());
        if form.get("grant_type").map(String::as_str) != Some("client_credentials")
            || form.get("client_assertion_type").map(String::as_str)
                != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
        {
            return ResponseTemplate::new(400).set_body_json(json!({
                "error": "invalid_request", "error_description": "bad form"}));
        }
        let Some(jwt) = form.get("client_assertion") else {
            return invalid_client("no client_assertion");
        };
        let header = match decode_header(jwt) {
            Ok(h) => h,
            Err(_) => return invalid_client("The client_assertion token is invalid."),
        };
        if header.kid.as_deref() != Some(KID) {
            return invalid_client("The client_assertion token has an unknown kid.");
        }
        let mut v = Validation::new(header.alg);
        v.algorithms = vec![header.alg];
        v.set_issuer(&[CLIENT_ID]);
        v.sub = Some(CLIENT_ID.to_string());
        v.set_audience(&[self.aud.as_str()]);
        v.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
        v.leeway = 0;
        let key = match header.alg {
            Algorithm::ES256 => DecodingKey::from_ec_pem(self.public.as_bytes()),
            _ => DecodingKey::from_rsa_pem(self.public.as_bytes()),
        }
        .unwrap();
        let claims = match decode::<Value>(jwt, &key, &v) {
            Ok(t) => t.claims,
            Err(_) => return invalid_client("The client_assertion signature is invalid."),
        };
        let now = Utc::now().timestamp();
        if claims["exp"].as_i64().unwrap() > now + 3600 {
            return invalid_client("The client_assertion token expires too far in the future.");
        }
        let mut seen = self.assertions.lock().unwrap();
        if claims["jti"].as_str().is_none() || seen.iter().any(|c| c["jti"] == claims["jti"]) {
            return invalid_client("The client_assertion token has already been used.");
        }
        let first = seen.is_empty();
        seen.push(claims);
        let doc = crate::harness::doc_fixture("okta/oauth2-v1-token-service-app.json");
        if first && self.short_first {
            // A token about to expire (the documented body, its lifetime
            // and token changed): it must be replaced before the next read.
            let mut b: Value = serde_json::from_str(&doc).unwrap();
            b["expires_in"] = json!(1);
            b["access_token"] = json!("short-lived");
            return ResponseTemplate::new(200).set_body_json(b);
        }
        ResponseTemplate::new(200).set_body_raw(doc.into_bytes(), "application/json")
    }
}

fn mount_service_app(fx: &Fixture, public: &str) -> ServiceAppMode {
    mount_service_app_with(fx, public, false)
}

fn mount_service_app_with(fx: &Fixture, public: &str, short_first: bool) -> ServiceAppMode {
    let mode = ServiceAppMode {
        assertions: Default::default(),
        forms: Default::default(),
    };
    AUTH.with(|a| *a.borrow_mut() = "Bearer eyJraWQiOiJ.....UfThlJ7w".into());
    fx.mount(
        Mock::given(method("POST"))
            .and(path("/oauth2/v1/token"))
            .and(header("accept", "application/json"))
            .respond_with(TokenEndpoint {
                public: public.to_string(),
                short_first,
                aud: format!("{}/oauth2/v1/token", fx.uri()),
                assertions: mode.assertions.clone(),
                forms: mode.forms.clone(),
            }),
    );
    mode
}

fn service_app_env(fx: &Fixture, private_pem: &str) -> SourceEnv {
    SourceEnv::new(
        "okta",
        "Okta (service app)",
        json!({"org_url": fx.uri(), "client_id": CLIENT_ID, "key_id": KID}),
        private_pem,
    )
}

#[test]
fn a_service_app_signs_in_with_private_key_jwt_and_reads_with_a_bearer_token() {
    for kind in ["rsa", "ec"] {
        let fx = Fixture::start();
        let (private, public) = crate::harness::key_pair(kind);
        let app = mount_service_app(&fx, &public);
        mount_org(&fx, true);
        let mut env = service_app_env(&fx, &private);
        env.sync().unwrap();
        fx.verify();
        // The same inventory as with an API token.
        assert_eq!(env.detail("0oasvc").name, "reporting-service");
        assert_eq!(env.detail("00Tabc").name, "terraform");
        assert_eq!(env.person("00u2alice").0, "active");
        // One token for the whole run (an hour), asked for with the scopes
        // the reads need; every API request carried it, none SSWS.
        let forms = app.forms.lock().unwrap();
        assert_eq!(forms.len(), 1, "{kind}: {forms:?}");
        let scopes: Vec<&str> = forms[0]["scope"].split(' ').collect();
        assert_eq!(scopes, custodian::sync::okta::SCOPES, "{kind}");
        assert!(!forms[0].contains_key("client_secret"));
        let claims = &app.assertions.lock().unwrap()[0];
        assert_eq!(
            (claims["iss"].as_str(), claims["sub"].as_str()),
            (Some(CLIENT_ID), Some(CLIENT_ID))
        );
        let api: Vec<String> = fx
            .received()
            .iter()
            .filter(|r| r.url.path().starts_with("/api/v1/"))
            .map(|r| {
                r.headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string()
            })
            .collect();
        assert!(!api.is_empty());
        assert!(
            api.iter().all(|a| a == "Bearer eyJraWQiOiJ.....UfThlJ7w"),
            "{kind}: {api:?}"
        );
    }
}

#[test]
fn a_refused_client_assertion_is_source_auth_naming_the_app() {
    let fx = Fixture::start();
    let (_, public) = crate::harness::key_pair("rsa");
    let (other, _) = crate::harness::key_pair("rsa");
    let app = mount_service_app(&fx, &public);
    mount_org(&fx, true);
    let mut env = service_app_env(&fx, &other);
    let e = env.sync().unwrap_err();
    assert_eq!(e.code, ErrorCode::SourceAuth, "{e:?}");
    assert!(
        e.message.contains("invalid_client")
            && e.message.contains(CLIENT_ID)
            && e.message.contains("kid my_key_id"),
        "{}",
        e.message
    );
    assert!(!e.message.contains("PRIVATE KEY"), "{}", e.message);
    assert!(app.assertions.lock().unwrap().is_empty());
    assert!(
        fx.received()
            .iter()
            .all(|r| !r.url.path().starts_with("/api/v1/")),
        "no API request without a token"
    );
    let run = &env.store.sync_runs(Some(env.source), 1).unwrap()[0];
    assert_eq!(run.error_code.as_deref(), Some("source_auth"));
}

#[test]
fn a_service_app_token_about_to_expire_is_replaced_before_the_next_read() {
    let fx = Fixture::start();
    let (private, public) = crate::harness::key_pair("rsa");
    let app = mount_service_app_with(&fx, &public, true);
    // The short-lived token is good for the first read only.
    fx.mount(
        Mock::given(method("GET"))
            .and(path("/api/v1/users"))
            .and(header("authorization", "Bearer short-lived"))
            .and(query_param_is_missing("after"))
            .and(query_param_is_missing("search"))
            .respond_with(ok(json!([])))
            .up_to_n_times(1)
            .with_priority(1),
    );
    mount_org(&fx, false);
    let mut env = service_app_env(&fx, &private);
    env.sync().unwrap();
    let auth: Vec<String> = fx
        .received()
        .iter()
        .filter(|r| r.url.path().starts_with("/api/v1/"))
        .map(|r| {
            r.headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(auth[0], "Bearer short-lived", "{auth:?}");
    assert!(
        auth[1..]
            .iter()
            .all(|a| a == "Bearer eyJraWQiOiJ.....UfThlJ7w"),
        "{auth:?}"
    );
    // Two assertions, each with its own jti (the fixture refuses a reuse).
    assert_eq!(app.assertions.lock().unwrap().len(), 2);
}

#[test]
fn a_service_app_token_refused_mid_sync_is_fetched_again_and_the_read_retried() {
    let fx = Fixture::start();
    let (private, public) = crate::harness::key_pair("rsa");
    let app = mount_service_app(&fx, &public);
    // Okta refuses the access token once, on the group listing (revoked).
    fx.mount(
        Mock::given(method("GET"))
            .and(path("/api/v1/groups"))
            .respond_with(ResponseTemplate::new(401).set_body_json(
                json!({"errorCode": "E0000011", "errorSummary": "Invalid token provided"}),
            ))
            .up_to_n_times(1)
            .expect(1)
            .with_priority(1),
    );
    mount_org(&fx, true);
    let mut env = service_app_env(&fx, &private);
    env.sync().unwrap();
    fx.verify();
    assert_eq!(app.assertions.lock().unwrap().len(), 2, "a second token");
    let groups = fx
        .requests()
        .iter()
        .filter(|r| r.starts_with("/api/v1/groups?"))
        .count();
    assert_eq!(groups, 2, "the refused read, then its retry");
    assert_eq!(
        env.detail("00u1svc").grants.len(),
        2,
        "the groups were read"
    );
}
