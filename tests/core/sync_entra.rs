//! The Entra ID (Microsoft Graph) source against a wiremock fixture server
//! serving the documented shapes, driven through the public sync engine.

use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use custodian::model::{CredentialKind, IdentityKind, IdentityStatus, Privilege, Sensitivity};
use custodian::ErrorCode;
use serde_json::{json, Value};
use wiremock::matchers::{method, path, path_regex, query_param, query_param_is_missing};

use crate::harness::{Fixture, SourceEnv};
use wiremock::{Match, Mock, MockBuilder, Request, Respond, ResponseTemplate};

pub(crate) const TENANT: &str = "tenant-1";
const MS_TENANT: &str = "f8cdef31-a31e-4b4a-93e4-5f571e91255a";

/// The Graph fixture server. The tests mount their mocks on a back server;
/// the front one (the URL the connector is given) forwards every request to
/// it unchanged, except `POST /{version}/$batch`, which it serves as Graph
/// documents JSON batching (https://learn.microsoft.com/graph/json-batching):
/// it parses the batch body, dispatches each sub-request as a GET of
/// `/{version}{url}` to the same mocks, and answers one entry per request
/// (id, status, headers, body). With [`GraphFx::throttle_every`] it answers
/// some sub-requests `429` with their own `Retry-After` instead, as Graph's
/// throttling guidance describes (https://learn.microsoft.com/graph/throttling),
/// each such URL once.
pub(crate) struct GraphFx {
    front: Fixture,
    back: Fixture,
    throttle: Arc<Mutex<Throttle>>,
}

#[derive(Default)]
struct Throttle {
    /// Answer every n-th sub-request 429 (0: never).
    every: usize,
    seen: usize,
    /// The sub-request URLs answered 429, in order.
    throttled: Vec<String>,
}

/// A request for the forwarding thread, and where to send its answer.
type Job = (
    reqwest::Method,
    String,
    Vec<(String, String)>,
    Vec<u8>,
    mpsc::Sender<(u16, Vec<(String, String)>, Vec<u8>)>,
);

/// The front server's one responder.
struct Front {
    back: String,
    jobs: Mutex<mpsc::Sender<Job>>,
    throttle: Arc<Mutex<Throttle>>,
}

impl Front {
    /// Sends one request to the back server (on a thread of its own: the
    /// front server's runtime must not block on itself).
    fn forward(
        &self,
        method: reqwest::Method,
        url: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> (u16, Vec<(String, String)>, Vec<u8>) {
        let (tx, rx) = mpsc::channel();
        self.jobs
            .lock()
            .unwrap()
            .send((method, url, headers, body, tx))
            .unwrap();
        rx.recv().unwrap()
    }

    fn batch(&self, version: &str, req: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&req.body).unwrap();
        let auth = req
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let requests = body["requests"].as_array().unwrap();
        assert!(
            requests.len() <= 20,
            "Graph takes at most 20 requests per batch"
        );
        let mut responses = Vec::new();
        for r in requests {
            let id = r["id"].as_str().unwrap().to_string();
            let url = r["url"].as_str().unwrap().to_string();
            assert_eq!(r["method"], "GET");
            let throttle = {
                let mut t = self.throttle.lock().unwrap();
                t.seen += 1;
                let hit = t.every > 0 && t.seen % t.every == 0 && !t.throttled.contains(&url);
                if hit {
                    t.throttled.push(url.clone());
                }
                hit
            };
            if throttle {
                responses.push(json!({"id": id, "status": 429,
                    "headers": {"Retry-After": "1", "Content-Type": "application/json"},
                    "body": {"error": {"code": "TooManyRequests", "message": "Too many requests"}}}));
                continue;
            }
            let (status, headers, bytes) = self.forward(
                reqwest::Method::GET,
                format!("{}/{version}{url}", self.back),
                vec![("authorization".into(), auth.clone())],
                vec![],
            );
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let headers: serde_json::Map<String, Value> = headers
                .into_iter()
                .filter(|(k, _)| {
                    k.eq_ignore_ascii_case("retry-after") || k.eq_ignore_ascii_case("content-type")
                })
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            responses.push(json!({"id": id, "status": status, "headers": headers, "body": body}));
        }
        ResponseTemplate::new(200).set_body_json(json!({ "responses": responses }))
    }
}

impl Respond for Front {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let path = req.url.path();
        if req.method.as_str() == "POST" && path.ends_with("/$batch") {
            let version = path
                .trim_start_matches('/')
                .split('/')
                .next()
                .unwrap_or("v1.0");
            return self.batch(version, req);
        }
        let url = match req.url.query() {
            Some(q) => format!("{}{path}?{q}", self.back),
            None => format!("{}{path}", self.back),
        };
        let headers = req
            .headers
            .iter()
            .filter(|(k, _)| matches!(k.as_str(), "authorization" | "content-type" | "accept"))
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let method = reqwest::Method::from_bytes(req.method.as_str().as_bytes()).unwrap();
        let (status, headers, body) = self.forward(method, url, headers, req.body.clone());
        let mut t = ResponseTemplate::new(status);
        let mut mime = "application/json".to_string();
        for (k, v) in headers {
            if k.eq_ignore_ascii_case("content-type") {
                mime = v;
            } else if k.eq_ignore_ascii_case("retry-after") {
                t = t.insert_header("Retry-After", v.as_str());
            }
        }
        t.set_body_raw(body, &mime)
    }
}

impl GraphFx {
    pub(crate) fn start() -> GraphFx {
        let (front, back) = (Fixture::start(), Fixture::start());
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::spawn(move || {
            let client = reqwest::blocking::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap();
            for (method, url, headers, body, reply) in rx {
                let mut r = client.request(method, &url).body(body);
                for (k, v) in headers {
                    r = r.header(k, v);
                }
                let answer = match r.send() {
                    Ok(resp) => {
                        let status = resp.status().as_u16();
                        let headers = resp
                            .headers()
                            .iter()
                            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                            .collect();
                        (
                            status,
                            headers,
                            resp.bytes().map(|b| b.to_vec()).unwrap_or_default(),
                        )
                    }
                    Err(e) => (599, vec![], e.to_string().into_bytes()),
                };
                let _ = reply.send(answer);
            }
        });
        let throttle = Arc::new(Mutex::new(Throttle::default()));
        front.mount(Mock::given(wiremock::matchers::any()).respond_with(Front {
            back: back.uri(),
            jobs: Mutex::new(tx),
            throttle: throttle.clone(),
        }));
        GraphFx {
            front,
            back,
            throttle,
        }
    }
    pub(crate) fn uri(&self) -> String {
        self.front.uri()
    }
    pub(crate) fn mount(&self, m: impl Into<Mock>) {
        self.back.mount(m)
    }
    pub(crate) fn reset(&self) {
        self.back.reset()
    }
    pub(crate) fn verify(&self) {
        self.back.verify()
    }
    /// Every request the mocks received (a batch's sub-requests each as its
    /// own GET), as `path?query`.
    pub(crate) fn requests(&self) -> Vec<String> {
        self.back.requests()
    }
    /// How many `$batch` POSTs the front server answered.
    fn batches(&self) -> usize {
        self.front
            .requests()
            .iter()
            .filter(|r| r.ends_with("/$batch"))
            .count()
    }
    fn throttle_every(&self, n: usize) {
        let mut t = self.throttle.lock().unwrap();
        t.every = n;
        t.seen = 0;
    }
    fn throttled(&self) -> Vec<String> {
        self.throttle.lock().unwrap().throttled.clone()
    }
}

impl GraphFx {
    pub(crate) fn get(&self, p: &str, body: Value) -> Get {
        Get {
            b: Mock::given(method("GET")).and(path(p.to_string())),
            body,
        }
    }
}

/// A GET mock answering 200 with a JSON body, open to more matchers.
pub(crate) struct Get {
    b: MockBuilder,
    body: Value,
}

impl Get {
    pub(crate) fn and<M: Match + 'static>(self, m: M) -> Get {
        Get {
            b: self.b.and(m),
            body: self.body,
        }
    }
}

impl From<Get> for Mock {
    fn from(g: Get) -> Mock {
        g.b.respond_with(ResponseTemplate::new(200).set_body_json(g.body))
    }
}

pub(crate) fn new_env(fx: &GraphFx) -> SourceEnv {
    let settings = json!({"tenant_id": TENANT, "client_id": "client-1", "graph_base": fx.uri(), "login_base": fx.uri()});
    SourceEnv::new("entra", "Entra", settings, "s3cret")
}

pub(crate) fn sp(id: &str, app_id: &str, name: &str, ty: &str, owner_org: &str) -> Value {
    json!({"id": id, "appId": app_id, "displayName": name, "servicePrincipalType": ty, "accountEnabled": true,
           "appOwnerOrganizationId": owner_org, "tags": [], "passwordCredentials": [], "keyCredentials": [], "appRoles": []})
}

fn sp_ci(enabled: bool, extra_secret: bool) -> Value {
    let mut v = sp("sp-ci", "app-ci", "ci-deployer", "Application", TENANT);
    v["accountEnabled"] = json!(enabled);
    let mut secrets = vec![
        json!({"keyId": "k1", "displayName": "gh-actions", "hint": "Abc", "secretText": null,
        "startDateTime": "2025-01-10T00:00:00Z", "endDateTime": "2027-01-10T00:00:00Z"}),
    ];
    if extra_secret {
        secrets.push(
            json!({"keyId": "k2", "displayName": "rotated", "startDateTime": "2026-06-01T00:00:00Z",
            "endDateTime": "2027-06-01T00:00:00Z"}),
        );
    }
    v["passwordCredentials"] = json!(secrets);
    v["keyCredentials"] = json!([{"keyId": "c1", "type": "AsymmetricX509Cert", "usage": "Verify",
        "startDateTime": "2025-02-01T00:00:00Z", "endDateTime": "2026-02-01T00:00:00Z", "customKeyIdentifier": "AB12"}]);
    v
}

fn app_ci() -> Value {
    json!({"id": "a-ci", "appId": "app-ci", "displayName": "ci-deployer",
        "passwordCredentials": [{"keyId": "k-app", "displayName": "terraform", "hint": "Zz9",
            "startDateTime": "2024-03-01T00:00:00Z", "endDateTime": null}],
        "keyCredentials": []})
}

fn sp_graph() -> Value {
    let mut v = sp(
        "sp-graph",
        "00000003-0000-0000-c000-000000000000",
        "Microsoft Graph",
        "Application",
        MS_TENANT,
    );
    v["appRoles"] = json!([{"id": "r-dirw", "value": "Directory.ReadWrite.All"}, {"id": "r-ur", "value": "User.Read.All"}]);
    v
}

fn sp_tagged() -> Value {
    let mut v = sp(
        "sp-tagged",
        "app-tagged",
        "copilot-helper",
        "Application",
        TENANT,
    );
    v["tags"] = json!(["WindowsAzureActiveDirectoryIntegratedApp", "AgenticApp"]);
    v
}

/// Token, users (2 pages), servicePrincipals (2 pages), per-SP relations,
/// sign-in report and the initial delta rounds.
pub(crate) fn mount_tenant(fx: &GraphFx, sp_page2: Value) {
    let uri = fx.uri();
    fx.mount(
        Mock::given(method("POST"))
            .and(path(format!("/{TENANT}/oauth2/v2.0/token")))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                json!({"token_type": "Bearer", "expires_in": 3599, "access_token": "tok"}),
            )),
    );
    fx.mount(fx.get("/v1.0/users", json!({
        "@odata.nextLink": format!("{uri}/v1.0/users?$skiptoken=up2"),
        "value": [
            {"id": "u-alice", "displayName": "Alice", "userPrincipalName": "alice@x.test", "mail": "alice@x.test",
             "accountEnabled": true, "department": "Platform", "jobTitle": "SRE", "manager": {"id": "u-boss"}},
            {"id": "u-boss", "displayName": "Boss", "userPrincipalName": "boss@x.test", "accountEnabled": true}
        ]})).and(query_param_is_missing("$skiptoken")));
    fx.mount(fx.get("/v1.0/users", json!({"value": [
            {"id": "u-sus", "displayName": "Sus", "userPrincipalName": "sus@x.test", "accountEnabled": false},
            {"id": "u-left", "displayName": "Left", "userPrincipalName": "left@x.test", "accountEnabled": true,
             "employeeLeaveDateTime": "2024-01-01T00:00:00Z"}
        ]})).and(query_param("$skiptoken", "up2")));
    fx.mount(
        fx.get(
            "/v1.0/servicePrincipals",
            json!({
        "@odata.nextLink": format!("{uri}/v1.0/servicePrincipals?$skiptoken=p2"),
        "value": [sp_ci(true, false), sp_graph()]}),
        )
        .and(query_param_is_missing("$skiptoken")),
    );
    fx.mount(
        fx.get("/v1.0/servicePrincipals", sp_page2)
            .and(query_param("$skiptoken", "p2")),
    );
    // Per-SP relations.
    fx.mount(fx.get(
        "/v1.0/servicePrincipals/sp-ci/owners",
        json!({"value": [
        {"@odata.type": "#microsoft.graph.servicePrincipal", "id": "sp-other"},
        {"@odata.type": "#microsoft.graph.user", "id": "u-alice"}]}),
    ));
    fx.mount(fx.get("/v1.0/servicePrincipals/sp-ci/appRoleAssignments", json!({"value": [
        {"appRoleId": "r-dirw", "resourceId": "sp-graph", "resourceDisplayName": "Microsoft Graph", "principalType": "ServicePrincipal"}]})));
    fx.mount(fx.get("/v1.0/servicePrincipals/sp-agent/oauth2PermissionGrants", json!({"value": [
        {"clientId": "sp-agent", "consentType": "AllPrincipals", "resourceId": "sp-graph", "scope": "Mail.Read User.Read"}]})));
    fx.mount(fx.get("/v1.0/servicePrincipals/sp-mi/appRoleAssignments", json!({"value": [
        {"appRoleId": "r-ur", "resourceId": "sp-graph", "resourceDisplayName": "Microsoft Graph"}]})));
    fx.mount(
        Mock::given(method("GET"))
            .and(path_regex(r"^/v1\.0/servicePrincipals/[^/]+/(owners|appRoleAssignments|oauth2PermissionGrants|ownedObjects)$"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"value": []})))
            .with_priority(10),
    );
    fx.mount(
        Mock::given(method("GET"))
            .and(path("/v1.0/roleManagement/directory/roleAssignments"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"value": []})))
            .with_priority(10),
    );
    // Applications: most client secrets live on the application object.
    fx.mount(fx.get(
        "/v1.0/applications",
        json!({"value": [app_ci(),
        {"id": "a-unused", "appId": "app-unused", "displayName": "unused",
         "passwordCredentials": [{"keyId": "k-x", "startDateTime": "2025-01-01T00:00:00Z"}]}]}),
    ));
    fx.mount(fx.get("/v1.0/applications(appId='app-ci')", app_ci()));
    fx.mount(fx.get("/beta/reports/servicePrincipalSignInActivities", json!({"value": [
        {"id": "x", "appId": "app-ci", "lastSignInActivity": {"lastSignInDateTime": "2026-05-01T00:00:00Z"},
         "applicationAuthenticationClientSignInActivity": {"lastSignInDateTime": "2026-04-01T00:00:00Z"}}]})));
    // Initial delta rounds: users in one page, SPs in two.
    fx.mount(fx.get("/v1.0/users/delta", json!({"@odata.deltaLink": format!("{uri}/v1.0/users/delta?$deltatoken=u1"), "value": []}))
        .and(query_param_is_missing("$deltatoken")));
    fx.mount(fx.get("/v1.0/servicePrincipals/delta", json!({"@odata.nextLink": format!("{uri}/v1.0/servicePrincipals/delta?$skiptoken=dp2"), "value": [sp_ci(true, false)]}))
        .and(query_param_is_missing("$deltatoken")).and(query_param_is_missing("$skiptoken")));
    fx.mount(fx.get("/v1.0/servicePrincipals/delta", json!({"@odata.deltaLink": format!("{uri}/v1.0/servicePrincipals/delta?$deltatoken=d1"), "value": []}))
        .and(query_param("$skiptoken", "dp2")));
}

pub(crate) fn page2() -> Value {
    json!({"value": [
        sp("sp-agent", "app-agent", "triage-agent", "ServiceIdentity", TENANT),
        sp("sp-mi", "app-mi", "vm-backup", "ManagedIdentity", TENANT),
        sp_tagged()]})
}

#[test]
fn full_sync_maps_people_identities_credentials_and_grants() {
    let fx = GraphFx::start();
    // The second users page is throttled once; Retry-After must be honoured.
    fx.mount(
        Mock::given(method("GET"))
            .and(path("/v1.0/users"))
            .and(query_param("$skiptoken", "up2"))
            .respond_with(
                ResponseTemplate::new(429)
                    .insert_header("Retry-After", "1")
                    .set_body_json(json!({"error": {"code": "TooManyRequests"}})),
            )
            .up_to_n_times(1)
            .expect(1)
            .with_priority(1),
    );
    mount_tenant(&fx, page2());
    let mut env = new_env(&fx);
    let started = Instant::now();
    let out = env.sync().unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was not waited for"
    );
    fx.verify();
    assert!(out.full);
    let run = &env.store.sync_runs(Some(env.source), 1).unwrap()[0];
    assert_eq!(
        (run.status.as_str(), run.mode.as_deref()),
        ("succeeded", Some("full"))
    );

    // Microsoft's first-party Graph SP is a resource, not an identity.
    let inv = env
        .store
        .inventory(&Default::default(), Utc::now())
        .unwrap();
    let mut names: Vec<_> = inv.rows.iter().map(|r| (r.name.clone(), r.kind)).collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            ("ci-deployer".to_string(), IdentityKind::OauthApp),
            ("copilot-helper".to_string(), IdentityKind::AiAgent),
            ("triage-agent".to_string(), IdentityKind::AiAgent),
            ("vm-backup".to_string(), IdentityKind::Workload),
        ]
    );

    let ci = env.detail("sp-ci");
    assert_eq!(
        ci.owner.as_ref().map(|o| o.display_name.as_str()),
        Some("Alice")
    );
    assert_eq!(
        ci.last_used_at.as_deref().map(|t| &t[..10]),
        Some("2026-05-01")
    );
    let mut creds: Vec<_> = ci
        .credentials
        .iter()
        .map(|c| {
            (
                c.external_id.clone(),
                c.kind,
                c.expires_at.clone().map(|t| t[..10].to_string()),
            )
        })
        .collect();
    creds.sort();
    assert_eq!(
        creds,
        vec![
            ("app:k-app".to_string(), CredentialKind::ClientSecret, None),
            (
                "c1".to_string(),
                CredentialKind::Certificate,
                Some("2026-02-01".to_string())
            ),
            (
                "k1".to_string(),
                CredentialKind::ClientSecret,
                Some("2027-01-10".to_string())
            ),
        ]
    );
    let app_secret = ci
        .credentials
        .iter()
        .find(|c| c.external_id == "app:k-app")
        .unwrap();
    assert_eq!(app_secret.display_name, "terraform (application)");
    assert!(
        ci.findings
            .iter()
            .any(|f| f.check_id == "secret-never-expires"),
        "the application's never-expiring secret is a finding on the SP"
    );
    assert_eq!(ci.grants.len(), 1);
    let g = &ci.grants[0];
    assert_eq!(
        (g.permission.as_str(), g.privilege, g.high_consequence),
        ("Directory.ReadWrite.All", Privilege::Admin, true)
    );
    assert_eq!(
        (g.resource_name.as_str(), g.sensitivity),
        ("Microsoft Graph", Sensitivity::Critical)
    );

    let agent = env.detail("sp-agent");
    let mut perms: Vec<_> = agent
        .grants
        .iter()
        .map(|g| (g.permission.clone(), g.privilege, g.high_consequence))
        .collect();
    perms.sort();
    assert_eq!(
        perms,
        vec![
            ("Mail.Read (delegated)".to_string(), Privilege::Read, false),
            ("User.Read (delegated)".to_string(), Privilege::Read, false)
        ]
    );
    let mi = env.detail("sp-mi");
    assert_eq!(
        mi.grants
            .iter()
            .map(|g| g.permission.as_str())
            .collect::<Vec<_>>(),
        vec!["User.Read.All"]
    );

    // People: manager, suspended, departed with the leave date.
    assert_eq!(
        env.person("u-alice"),
        ("active".into(), Some("u-boss".into()), None)
    );
    assert_eq!(env.person("u-sus").0, "suspended");
    let left = env.person("u-left");
    assert_eq!(left.0, "departed");
    assert_eq!(
        left.2,
        Some(
            chrono::DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")
                .unwrap()
                .timestamp()
        )
    );

    // The delta links are the cursor.
    let cursor = env.store.source_cursor(env.source).unwrap().unwrap();
    assert!(
        cursor.contains("$deltatoken=u1") && cursor.contains("$deltatoken=d1"),
        "{cursor}"
    );
}

#[test]
fn delta_incremental_applies_leavers_and_removals_and_keeps_the_rest() {
    let fx = GraphFx::start();
    mount_tenant(&fx, page2());
    let mut env = new_env(&fx);
    env.sync().unwrap();
    let mi_before = env.detail("sp-mi");

    // Second run: only the delta links are served (plus per-SP reads).
    fx.reset();
    let uri = fx.uri();
    // The changed SP's application is read again (and only that one).
    fx.mount(Mock::from(fx.get("/v1.0/applications(appId='app-ci')", app_ci())).expect(1));
    fx.mount(
        Mock::given(method("POST"))
            .and(path(format!("/{TENANT}/oauth2/v2.0/token")))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"access_token": "tok2", "expires_in": 3599})),
            ),
    );
    fx.mount(
        fx.get(
            "/v1.0/users/delta",
            json!({"@odata.deltaLink": format!("{uri}/v1.0/users/delta?$deltatoken=u2"),
        "value": [{"id": "u-boss", "accountEnabled": false}]}),
        )
        .and(query_param("$deltatoken", "u1")),
    );
    fx.mount(fx.get("/v1.0/users/u-boss", json!({"id": "u-boss", "displayName": "Boss", "userPrincipalName": "boss@x.test", "accountEnabled": false})));
    // Two pages: the disabled SP, then the deleted one (minimal shapes).
    fx.mount(
        fx.get(
            "/v1.0/servicePrincipals/delta",
            json!({"@odata.nextLink": format!("{uri}/v1.0/servicePrincipals/delta?$skiptoken=i2"),
        "value": [{"id": "sp-ci", "accountEnabled": false}]}),
        )
        .and(query_param("$deltatoken", "d1")),
    );
    fx.mount(
        fx.get(
            "/v1.0/servicePrincipals/delta",
            json!({"@odata.deltaLink": format!("{uri}/v1.0/servicePrincipals/delta?$deltatoken=d2"),
        "value": [{"id": "sp-agent", "@removed": {"reason": "deleted"}}]}),
        )
        .and(query_param("$skiptoken", "i2")),
    );
    // The changed SP is read again in full, with its relations.
    fx.mount(fx.get("/v1.0/servicePrincipals/sp-ci", sp_ci(false, true)));
    fx.mount(fx.get(
        "/v1.0/servicePrincipals/sp-ci/owners",
        json!({"value": [{"@odata.type": "#microsoft.graph.user", "id": "u-alice"}]}),
    ));
    fx.mount(fx.get("/v1.0/servicePrincipals/sp-ci/appRoleAssignments", json!({"value": [
        {"appRoleId": "r-dirw", "resourceId": "sp-graph", "resourceDisplayName": "Microsoft Graph"}]})));
    fx.mount(fx.get(
        "/v1.0/servicePrincipals/sp-ci/oauth2PermissionGrants",
        json!({"value": []}),
    ));
    fx.mount(fx.get(
        "/v1.0/servicePrincipals/sp-ci/ownedObjects",
        json!({"value": []}),
    ));
    fx.mount(
        fx.get(
            "/v1.0/roleManagement/directory/roleAssignments",
            json!({"value": []}),
        )
        .and(query_param("$filter", "principalId eq 'sp-ci'")),
    );
    fx.mount(fx.get("/v1.0/servicePrincipals/sp-graph", sp_graph()));
    // A removed SP is taken from `@removed`, not read again.
    fx.mount(
        Mock::given(method("GET"))
            .and(path("/v1.0/servicePrincipals/sp-agent"))
            .respond_with(ResponseTemplate::new(200).set_body_json(sp(
                "sp-agent",
                "app-agent",
                "triage-agent",
                "ServiceIdentity",
                TENANT,
            )))
            .expect(0),
    );
    // Sign-in activity refused: the sync goes on.
    fx.mount(
        Mock::given(method("GET"))
            .and(path("/beta/reports/servicePrincipalSignInActivities"))
            .respond_with(ResponseTemplate::new(403).set_body_json(
                json!({"error": {"code": "Authentication_RequestFromNonPremiumTenantOrB2CTenant"}}),
            )),
    );

    let out = env.sync().unwrap();
    fx.verify();
    assert!(!out.full, "the second run must be incremental");
    let run = &env.store.sync_runs(Some(env.source), 1).unwrap()[0];
    assert_eq!(
        (run.status.as_str(), run.mode.as_deref()),
        ("succeeded", Some("incremental"))
    );

    let ci = env.detail("sp-ci");
    assert_eq!(ci.status, IdentityStatus::Disabled);
    assert_eq!(
        ci.credentials.len(),
        4,
        "the upsert brings its complete credentials, the application's included"
    );
    assert_eq!(ci.grants.len(), 1, "and its complete grants");
    assert_eq!(
        ci.last_used_at.as_deref().map(|t| &t[..10]),
        Some("2026-05-01"),
        "last use is kept when the report is refused"
    );
    let agent = env.detail("sp-agent");
    assert_eq!(agent.status, IdentityStatus::Deleted);
    assert!(agent.grants.is_empty());
    // Untouched identities are left as they were.
    assert_eq!(env.detail("sp-mi"), mi_before);
    assert_eq!(env.detail("sp-tagged").status, IdentityStatus::Active);
    assert_eq!(env.person("u-boss").0, "suspended");
    assert_eq!(env.person("u-alice").0, "active");

    let events = env.store.lifecycle_events(out.run).unwrap();
    let leavers: Vec<_> = events
        .iter()
        .filter(|e| e.kind == "leaver")
        .map(|e| (e.subject.as_str(), e.name.as_str(), e.detail.as_str()))
        .collect();
    assert!(
        leavers.contains(&("identity", "ci-deployer", "status active -> disabled")),
        "{events:?}"
    );
    assert!(
        leavers.contains(&("identity", "triage-agent", "removed from the source")),
        "{events:?}"
    );
    assert!(
        leavers.contains(&("person", "Boss", "status active -> suspended")),
        "{events:?}"
    );
    let new_secrets: Vec<&str> = events
        .iter()
        .filter(|e| e.kind == "joiner" && e.subject == "credential")
        .map(|e| e.detail.as_str())
        .collect();
    assert_eq!(
        new_secrets,
        ["new client_secret on ci-deployer"],
        "the new secret is a joiner, named by its identity's name"
    );

    let cursor = env.store.source_cursor(env.source).unwrap().unwrap();
    assert!(
        cursor.contains("$deltatoken=u2") && cursor.contains("$deltatoken=d2"),
        "{cursor}"
    );
}

#[test]
fn expired_delta_token_resyncs_in_full() {
    let fx = GraphFx::start();
    mount_tenant(&fx, page2());
    let mut env = new_env(&fx);
    env.sync().unwrap();

    // The SP delta link expired; the tenant meanwhile lost sp-tagged.
    fx.reset();
    fx.mount(
        Mock::given(method("GET"))
            .and(path("/v1.0/servicePrincipals/delta"))
            .and(query_param("$deltatoken", "d1"))
            .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {"code": "syncStateNotFound",
                "message": "The sync state generation is not found. The delta token is expired and data must be synchronized again."}})))
            .expect(1),
    );
    fx.mount(fx.get("/v1.0/users/delta", json!({"@odata.deltaLink": format!("{}/v1.0/users/delta?$deltatoken=u2", fx.uri()), "value": []}))
        .and(query_param("$deltatoken", "u1")));
    mount_tenant(
        &fx,
        json!({"value": [sp("sp-agent", "app-agent", "triage-agent", "ServiceIdentity", TENANT),
        sp("sp-mi", "app-mi", "vm-backup", "ManagedIdentity", TENANT)]}),
    );

    let out = env.sync().unwrap();
    fx.verify();
    assert!(out.full, "an expired cursor falls back to a full resync");
    let run = &env.store.sync_runs(Some(env.source), 1).unwrap()[0];
    assert_eq!(
        (run.status.as_str(), run.mode.as_deref()),
        ("succeeded", Some("full"))
    );
    assert_eq!(
        env.detail("sp-tagged").status,
        IdentityStatus::Deleted,
        "a full run deletes what is gone"
    );
    assert_eq!(env.detail("sp-ci").status, IdentityStatus::Active);
    assert!(env
        .store
        .source_cursor(env.source)
        .unwrap()
        .unwrap()
        .contains("$deltatoken=d1"));
}

#[test]
fn malformed_page_fails_and_keeps_the_previous_snapshot() {
    let fx = GraphFx::start();
    mount_tenant(&fx, page2());
    let mut env = new_env(&fx);
    env.sync().unwrap();
    let before = env
        .store
        .inventory(&Default::default(), Utc::now())
        .unwrap();
    let cursor_before = env.store.source_cursor(env.source).unwrap();

    // Force a full run whose second SP page is not JSON.
    env.store.reset_cursor(env.source).unwrap();
    fx.reset();
    mount_tenant(&fx, json!({}));
    fx.mount(
        Mock::given(method("GET"))
            .and(path("/v1.0/servicePrincipals"))
            .and(query_param("$skiptoken", "p2"))
            .respond_with(
                ResponseTemplate::new(200).set_body_string("{\"value\": [ {\"id\": \"sp-agent\", "),
            )
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
    assert_eq!(env.detail("sp-agent").status, IdentityStatus::Active);
    assert_eq!(
        env.store.source_cursor(env.source).unwrap(),
        None,
        "the cursor is only written by a good run"
    );
    assert!(cursor_before.is_some());
}

#[test]
fn refused_credentials_are_source_auth() {
    let fx = GraphFx::start();
    fx.mount(
        Mock::given(method("POST"))
            .and(path(format!("/{TENANT}/oauth2/v2.0/token")))
            .respond_with(
                ResponseTemplate::new(401).set_body_json(json!({"error": "invalid_client",
                "error_description": "AADSTS7000215: Invalid client secret provided."})),
            ),
    );
    let mut env = new_env(&fx);
    let err = env.sync().unwrap_err();
    assert_eq!(err.code, ErrorCode::SourceAuth, "{err:?}");
    assert!(
        !err.message.contains("s3cret"),
        "the secret never appears in errors"
    );
    let run = &env.store.sync_runs(Some(env.source), 1).unwrap()[0];
    assert_eq!(
        (run.status.as_str(), run.error_code.as_deref()),
        ("failed", Some("source_auth"))
    );

    // A Graph call refused with 401 after a token was issued is the same.
    fx.reset();
    mount_tenant(&fx, page2());
    fx.mount(
        Mock::given(method("GET"))
            .and(path("/v1.0/users"))
            .respond_with(ResponseTemplate::new(401))
            .with_priority(1),
    );
    assert_eq!(env.sync().unwrap_err().code, ErrorCode::SourceAuth);
}

#[test]
fn a_stale_full_sync_forces_a_full_run_despite_the_cursor() {
    let fx = GraphFx::start();
    mount_tenant(&fx, page2());
    let mut env = new_env(&fx);
    let settings = json!({"tenant_id": TENANT, "client_id": "client-1", "graph_base": fx.uri(), "login_base": fx.uri(),
        "full_resync_hours": 0});
    env.store
        .update_source_settings(env.source, &settings)
        .unwrap();
    assert!(env.sync().unwrap().full);
    assert!(env.store.source_cursor(env.source).unwrap().is_some());
    // No delta link is served: an incremental run would fail.
    let out = env.sync().unwrap();
    assert!(
        out.full,
        "relationships are re-read at least every full_resync_hours"
    );
}

#[test]
fn a_documented_service_principal_without_id_is_skipped_and_named() {
    // Graph's own "List servicePrincipals" Example 4 body, verbatim, as the
    // second page: its one object has no id.
    let fx = GraphFx::start();
    let doc: Value = serde_json::from_str(&crate::harness::doc_fixture(
        "entra/serviceprincipal-list-example4.json",
    ))
    .unwrap();
    mount_tenant(&fx, doc);
    let mut env = new_env(&fx);
    env.sync().unwrap();
    let run = crate::harness::last_run(&env);
    assert_eq!(run.status, "succeeded_with_warnings");
    assert_eq!(run.warnings.len(), 1, "{:?}", run.warnings);
    assert!(
        run.warnings[0].contains("servicePrincipals page 2 item 1")
            && run.warnings[0].contains("'myContosoTeam'")
            && run.warnings[0].contains("no id"),
        "{:?}",
        run.warnings
    );
    // The rest is imported.
    let ci = env.detail("sp-ci");
    assert_eq!(ci.status, IdentityStatus::Active);
    // A secret past its end date is expired, whatever else is said.
    let cert = ci
        .credentials
        .iter()
        .find(|c| c.external_id == "c1")
        .unwrap();
    assert!(cert.expires_in_days.unwrap() < 0, "{cert:?}");
}

#[test]
fn an_sp_deleted_during_the_sync_is_skipped_with_a_warning() {
    let fx = GraphFx::start();
    mount_tenant(&fx, page2());
    fx.mount(
        Mock::given(method("GET"))
            .and(path("/v1.0/servicePrincipals/sp-mi/owners"))
            .respond_with(ResponseTemplate::new(404).set_body_json(
                json!({"error": {"code": "Request_ResourceNotFound", "message": "Resource 'sp-mi' does not exist"}}),
            ))
            .with_priority(1),
    );
    let mut env = new_env(&fx);
    env.sync().unwrap();
    let run = crate::harness::last_run(&env);
    assert_eq!(run.status, "succeeded_with_warnings");
    assert!(
        run.warnings
            .iter()
            .any(|w| w.contains("sp-mi") && w.contains("not found")),
        "{:?}",
        run.warnings
    );
    assert_eq!(env.detail("sp-agent").status, IdentityStatus::Active);
    assert!(
        env.store.resolve_identity("sp-mi").is_err(),
        "never imported"
    );
}

// ------------------------------------------------ admin paths, Agent ID, $batch

/// The SP of "List unifiedRoleAssignments" Example 2 (its principalId).
const GA_SP: &str = "f1847572-48aa-47aa-96a3-2ec61904f41f";

fn doc(rel: &str) -> Value {
    serde_json::from_str(&crate::harness::doc_fixture(rel)).unwrap()
}

/// A tenant whose page 2 adds: the Global Administrator SP of Microsoft's
/// Example 2 (`ga-app`), `sp-owner` that owns ga-app's *application*, and
/// `sp-root` that owns the `sp-owner` SP. Role assignments are served from
/// the documented example for GA_SP.
fn mount_admin_paths(fx: &GraphFx) {
    let mut p2 = page2();
    for v in [
        sp(GA_SP, "app-ga", "ga-app", "Application", TENANT),
        sp("sp-owner", "app-owner", "owner-app", "Application", TENANT),
        sp("sp-root", "app-root", "root-app", "Application", TENANT),
    ] {
        p2["value"].as_array_mut().unwrap().push(v);
    }
    mount_tenant(fx, p2);
    fx.mount(
        fx.get(
            "/v1.0/roleManagement/directory/roleAssignments",
            doc("entra/rbac-list-roleassignments-example2.json"),
        )
        .and(query_param("$filter", format!("principalId eq '{GA_SP}'")))
        .and(query_param("$expand", "roleDefinition")),
    );
    // Owners may be users or service principals; an owned application
    // stands for its SP (matched on appId), an owned SP for itself.
    fx.mount(fx.get(
        "/v1.0/servicePrincipals/sp-owner/ownedObjects",
        json!({"value": [{"@odata.type": "#microsoft.graph.application", "id": "a-ga", "appId": "app-ga",
                          "displayName": "ga-app"}]}),
    ));
    fx.mount(fx.get(
        "/v1.0/servicePrincipals/sp-root/ownedObjects",
        json!({"value": [
            {"@odata.type": "#microsoft.graph.servicePrincipal", "id": "sp-owner", "appId": "app-owner"},
            // Microsoft Graph's SP is not imported: no edge to it.
            {"@odata.type": "#microsoft.graph.servicePrincipal", "id": "sp-graph"},
            {"@odata.type": "#microsoft.graph.group", "id": "g-1"}]}),
    ));
}

#[test]
fn directory_role_assignments_are_admin_grants_on_the_tenant() {
    let fx = GraphFx::start();
    mount_admin_paths(&fx);
    let mut env = new_env(&fx);
    env.sync().unwrap();
    assert_eq!(crate::harness::last_run(&env).status, "succeeded");
    let ga = env.detail(GA_SP);
    let mut roles: Vec<_> = ga
        .grants
        .iter()
        .map(|g| {
            (
                g.permission.clone(),
                g.privilege,
                g.high_consequence,
                g.resource_name.clone(),
                g.resource_kind.clone(),
                g.sensitivity,
            )
        })
        .collect();
    roles.sort();
    let tenant = format!("Entra directory (tenant {TENANT})");
    assert_eq!(
        roles,
        vec![
            (
                "Global Administrator (directory role)".to_string(),
                Privilege::Admin,
                true,
                tenant.clone(),
                "iam_directory".to_string(),
                Sensitivity::Critical
            ),
            (
                "Global Reader (directory role)".to_string(),
                Privilege::Read,
                false,
                tenant,
                "iam_directory".to_string(),
                Sensitivity::Critical
            ),
        ]
    );
    // The blast radius calls it an IAM change.
    let b = custodian::ops::blast(&env.store, GA_SP).unwrap();
    assert!(
        b.high_consequence
            .iter()
            .any(|h| h.category == "iam" && h.permission == "Global Administrator (directory role)"),
        "{:?}",
        b.high_consequence
    );
    // Every SP's roles were asked for by principal.
    let asked = fx
        .requests()
        .iter()
        .filter(|r| r.starts_with("/v1.0/roleManagement/directory/roleAssignments?"))
        .count();
    assert_eq!(asked, 7, "one per imported SP");
}

#[test]
fn an_owner_of_a_global_admin_reaches_tenant_admin_through_ownership() {
    let fx = GraphFx::start();
    mount_admin_paths(&fx);
    let mut env = new_env(&fx);
    env.sync().unwrap();
    let owner = env.detail("sp-owner");
    assert_eq!(
        owner
            .delegations_out
            .iter()
            .map(|d| (d.kind, d.other_name.as_str()))
            .collect::<Vec<_>>(),
        vec![(custodian::model::DelegationKind::AddCredential, "ga-app")]
    );
    let root = env.detail("sp-root");
    assert_eq!(
        root.delegations_out
            .iter()
            .map(|d| d.other_name.as_str())
            .collect::<Vec<_>>(),
        vec!["owner-app"],
        "no edge to a first-party SP or a group"
    );

    let paths = custodian::ops::paths_to_admin(&env.store, 50).unwrap();
    let tenant = format!("Entra directory (tenant {TENANT})");
    let of = |name: &str| {
        paths
            .iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("{name} has no path to admin: {paths:?}"))
    };
    let p = of("owner-app");
    assert_eq!(
        (p.resource.as_str(), p.permission.as_str()),
        (tenant.as_str(), "Global Administrator (directory role)")
    );
    let p = of("root-app");
    let chain: Vec<_> = p
        .chain
        .iter()
        .map(|h| (h.name.as_str(), h.via.as_deref()))
        .collect();
    assert_eq!(
        chain,
        vec![
            ("root-app", None),
            ("owner-app", Some("add_credential")),
            ("ga-app", Some("add_credential"))
        ],
        "two hops to the tenant's Global Administrator"
    );
    assert!(
        paths.iter().all(|p| p.name != "ga-app"),
        "it holds the role itself"
    );

    let b = custodian::ops::blast(&env.store, "sp-root").unwrap();
    let r = b.resources.iter().find(|r| r.name == tenant).unwrap();
    assert_eq!(r.hops, 2);
    assert!(r
        .permissions
        .iter()
        .any(|p| p.privilege == Privilege::Admin && p.holder == "ga-app"));
}

#[test]
fn agent_identities_carry_their_blueprints_credentials_dates_sponsors_and_expiry() {
    let fx = GraphFx::start();
    // The documented agent identity ("List agentIdentity objects", beta),
    // also in the v1.0 listing as a ServiceIdentity SP.
    const AGENT: &str = "1b7313c4-05d0-4a08-88e3-7b76c003a0a2";
    const BLUEPRINT_APP: &str = "631a96bc-a705-4eda-9f99-fdaf9f54f6a2";
    const SPONSOR: &str = "a6c034b8-621b-dee3-6abb-52cbce801fe9";
    let mut p2 = page2();
    let mut agent = sp(
        AGENT,
        "agent-own-app",
        "My Agent Identity",
        "ServiceIdentity",
        TENANT,
    );
    agent["passwordCredentials"] = json!([]);
    p2["value"].as_array_mut().unwrap().push(agent);
    mount_tenant(&fx, p2);
    fx.mount(fx.get(
        "/beta/servicePrincipals/microsoft.graph.agentIdentity",
        doc("entra/agentidentity-list.json"),
    ));
    // The documented blueprint list, and the agent's own blueprint around it.
    let mut bps = doc("entra/agentidentityblueprint-list.json");
    bps["value"].as_array_mut().unwrap().push(json!({
        "@odata.type": "#microsoft.graph.agentIdentityBlueprint", "id": "bp-obj", "appId": BLUEPRINT_APP,
        "displayName": "triage blueprint",
        "passwordCredentials": [{"keyId": "bp-k1", "displayName": "blueprint secret",
            "startDateTime": "2025-10-01T00:00:00Z", "endDateTime": "2026-10-01T00:00:00Z"}],
        "keyCredentials": []}));
    fx.mount(fx.get(
        "/beta/applications/microsoft.graph.agentIdentityBlueprint",
        bps,
    ));
    fx.mount(fx.get(
        &format!("/beta/servicePrincipals/{AGENT}/Microsoft.Graph.AgentIdentity/sponsors"),
        doc("entra/agentidentity-list-sponsors.json"),
    ));
    // The sponsor is a user of the tenant.
    fx.mount(
        Mock::from(
            fx.get("/v1.0/users", json!({"value": [
            {"id": SPONSOR, "displayName": "Sam Sponsor", "userPrincipalName": "sam@x.test", "accountEnabled": true}]}))
                .and(query_param("$skiptoken", "up2")),
        )
        .with_priority(1),
    );
    let mut env = new_env(&fx);
    env.sync().unwrap();
    let a = env.detail(AGENT);
    assert_eq!(a.kind, IdentityKind::AiAgent);
    assert_eq!(
        a.credentials
            .iter()
            .map(|c| (c.external_id.as_str(), c.display_name.as_str()))
            .collect::<Vec<_>>(),
        vec![(
            "blueprint:bp-k1",
            "blueprint secret (agent identity blueprint)"
        )],
        "the blueprint's secret is the agent's (joined on agentIdentityBlueprintId, not appId)"
    );
    assert_eq!(
        &a.created_at[..10],
        "2019-09-17",
        "createdDateTime, not the sync time"
    );
    assert_eq!(
        a.owner.as_ref().map(|o| o.display_name.as_str()),
        Some("Sam Sponsor"),
        "the sponsor is accountable"
    );
    assert!(
        a.purpose.contains("lifecycle expires 2024-12-31"),
        "{}",
        a.purpose
    );
    // Sponsors are asked only for agent identities.
    let sponsor_reads: Vec<_> = fx
        .requests()
        .into_iter()
        .filter(|r| r.ends_with("/sponsors"))
        .collect();
    assert_eq!(sponsor_reads.len(), 1, "{sponsor_reads:?}");
}

/// (kind, external id) facts of a synced source, for comparing two runs.
fn facts(env: &SourceEnv) -> Vec<String> {
    let inv = env
        .store
        .inventory(&Default::default(), Utc::now())
        .unwrap();
    let mut out = Vec::new();
    for row in &inv.rows {
        let d = env
            .store
            .identity_detail(custodian::model::IdentityId(row.id), Utc::now())
            .unwrap();
        out.push(format!(
            "identity {} owner {:?}",
            d.external_id,
            d.owner.map(|o| o.display_name)
        ));
        for c in &d.credentials {
            out.push(format!("credential {} {}", d.external_id, c.external_id));
        }
        for g in &d.grants {
            out.push(format!(
                "grant {} {} {}",
                d.external_id, g.resource_name, g.permission
            ));
        }
        for e in &d.delegations_out {
            out.push(format!("edge {} {}", d.external_id, e.other_name));
        }
    }
    out.sort();
    out
}

#[test]
fn throttled_batch_sub_requests_are_retried_after_their_retry_after_and_nothing_is_lost() {
    // The same tenant read directly (batch off) and through $batch with
    // every 7th sub-request answered 429 + Retry-After: 1.
    let direct = GraphFx::start();
    mount_admin_paths(&direct);
    let mut env = new_env(&direct);
    let settings = json!({"tenant_id": TENANT, "client_id": "client-1", "graph_base": direct.uri(),
        "login_base": direct.uri(), "batch": false});
    env.store
        .update_source_settings(env.source, &settings)
        .unwrap();
    env.sync().unwrap();
    assert_eq!(
        direct.batches(),
        0,
        "batch=false reads each relation directly"
    );
    let want = facts(&env);
    assert!(
        want.iter().any(|f| f.contains("Global Administrator")),
        "{want:?}"
    );
    assert!(
        want.iter().any(|f| f.starts_with("edge sp-root")),
        "{want:?}"
    );

    let fx = GraphFx::start();
    mount_admin_paths(&fx);
    fx.throttle_every(7);
    let mut env = new_env(&fx);
    let started = Instant::now();
    env.sync().unwrap();
    let throttled = fx.throttled();
    assert_eq!(throttled.len(), 5, "every 7th of 35: {throttled:?}");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "the sub-response's Retry-After was not waited for"
    );
    assert_eq!(crate::harness::last_run(&env).status, "succeeded");
    assert_eq!(facts(&env), want, "nothing lost, nothing doubled");
    // Each per-SP read reached the handlers exactly once, as many as when
    // read directly: the throttled ones on their retry (they never reached
    // the handlers before).
    let per_sp = |fx: &GraphFx| {
        let mut v: Vec<String> = fx
            .requests()
            .into_iter()
            .filter(|r| {
                (r.starts_with("/v1.0/servicePrincipals/") && r.matches('/').count() == 4)
                    || r.starts_with("/v1.0/roleManagement/")
            })
            .collect();
        v.sort();
        v
    };
    let (batched, unbatched) = (per_sp(&fx), per_sp(&direct));
    assert_eq!(batched.len(), 35, "7 SPs x 5 relations: {batched:?}");
    assert_eq!(batched, unbatched);
    // 35 sub-requests: 2 batches, then one more round per throttled batch.
    assert!((3..=4).contains(&fx.batches()), "{} batches", fx.batches());
}

#[test]
fn an_owner_changed_in_an_incremental_run_keeps_its_ownership_edge() {
    let fx = GraphFx::start();
    mount_admin_paths(&fx);
    let mut env = new_env(&fx);
    env.sync().unwrap();
    assert_eq!(env.detail("sp-owner").delegations_out.len(), 1);

    // Only sp-owner changed (renamed); the SP it owns did not.
    fx.reset();
    let uri = fx.uri();
    fx.mount(
        Mock::given(method("POST"))
            .and(path(format!("/{TENANT}/oauth2/v2.0/token")))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"access_token": "tok2", "expires_in": 3599})),
            ),
    );
    fx.mount(
        fx.get(
            "/v1.0/users/delta",
            json!({"@odata.deltaLink": format!("{uri}/v1.0/users/delta?$deltatoken=u2"), "value": []}),
        )
        .and(query_param("$deltatoken", "u1")),
    );
    fx.mount(
        fx.get(
            "/v1.0/servicePrincipals/delta",
            json!({"@odata.deltaLink": format!("{uri}/v1.0/servicePrincipals/delta?$deltatoken=d2"),
                   "value": [{"id": "sp-owner", "displayName": "owner-app-2"}]}),
        )
        .and(query_param("$deltatoken", "d1")),
    );
    fx.mount(fx.get(
        "/v1.0/servicePrincipals/sp-owner",
        sp(
            "sp-owner",
            "app-owner",
            "owner-app-2",
            "Application",
            TENANT,
        ),
    ));
    fx.mount(fx.get(
        "/v1.0/servicePrincipals/sp-owner/ownedObjects",
        json!({"value": [{"@odata.type": "#microsoft.graph.application", "id": "a-ga", "appId": "app-ga"}]}),
    ));
    // The owned application's SP is not in the change set: looked up by appId.
    fx.mount(
        Mock::from(fx.get(
            "/v1.0/servicePrincipals(appId='app-ga')",
            sp(GA_SP, "app-ga", "ga-app", "Application", TENANT),
        ))
        .expect(1),
    );
    fx.mount(
        Mock::given(method("GET"))
            .and(path_regex(
                r"^/v1\.0/servicePrincipals/sp-owner/(owners|appRoleAssignments|oauth2PermissionGrants)$",
            ))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"value": []}))),
    );
    fx.mount(fx.get(
        "/v1.0/roleManagement/directory/roleAssignments",
        json!({"value": []}),
    ));

    let out = env.sync().unwrap();
    fx.verify();
    assert!(!out.full);
    let owner = env.detail("sp-owner");
    assert_eq!(owner.name, "owner-app-2");
    assert_eq!(
        owner
            .delegations_out
            .iter()
            .map(|d| d.other_name.as_str())
            .collect::<Vec<_>>(),
        vec!["ga-app"],
        "the edge to the unchanged SP it owns is kept"
    );
    let paths = custodian::ops::paths_to_admin(&env.store, 50).unwrap();
    assert!(paths.iter().any(|p| p.name == "root-app"), "{paths:?}");
}
