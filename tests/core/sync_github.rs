//! The GitHub organisation source against a wiremock fixture server serving
//! the documented shapes: Link pagination (one comma-joined header), primary
//! and secondary rate limits, refused reads, malformed pages.

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
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(header("x-github-api-version", "2022-11-28"))
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
