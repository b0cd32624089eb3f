//! SCIM 2.0 source against the real scim2-server.

use std::sync::{Arc, Mutex};

use custodian::model::{IdentityKind, IdentityStatus, PersonStatus, SourceId};
use custodian::ops;
use custodian::ops::sync_blocking;
use custodian::store::Store;
use custodian::sync::http::Cancel;
use custodian::sync::secrets::{MemorySecrets, SecretStore};
use custodian::sync::{ProgressFn, SyncProgress};
use custodian::views::InventoryQuery;
use custodian::ErrorCode;
use serde_json::json;

use crate::harness::fast_policy;
use crate::peers::ScimServer;
use crate::util::now;

fn quiet() -> ProgressFn {
    Arc::new(|_: &SyncProgress| {})
}

fn setup(server: &ScimServer, page_size: u64) -> (Store, SourceId, MemorySecrets) {
    let mut store = crate::util::test_store();
    let secrets = MemorySecrets::default();
    let src = ops::add_source(
        &mut store,
        &secrets,
        "scim",
        "HR SCIM",
        json!({"base_url": server.base, "page_size": page_size}),
        Some(&server.token),
        now(),
    )
    .unwrap();
    (store, SourceId(src.id), secrets)
}

fn identity_by_name(store: &Store, name: &str) -> custodian::views::IdentityDetail {
    ops::show(store, name, now()).unwrap()
}

#[test]
fn full_sync_maps_people_machines_owners_and_groups() {
    let server = ScimServer::start();
    let boss = server.user("grace.moreau", None, None, "Engineering");
    let dev = server.user("ben.novak", Some("Employee"), Some(&boss), "Engineering");
    let svc = server.user("svc-backup", Some("Service"), Some(&dev), "Platform");
    let agent = server.user("invoice-agent", Some("Agent"), Some(&dev), "Finance");
    server.group("prod-admins", &[&svc, &dev]);
    server.group("readers", &[&agent]);

    let (mut store, source, secrets) = setup(&server, 2);
    let seen = Arc::new(Mutex::new(Vec::<SyncProgress>::new()));
    let sink = seen.clone();
    let progress: ProgressFn =
        Arc::new(move |p: &SyncProgress| sink.lock().unwrap().push(p.clone()));
    let out = sync_blocking(
        &mut store,
        source,
        &secrets,
        progress,
        Cancel::new(),
        fast_policy(),
    )
    .unwrap();
    assert!(out.full);

    let page = store.inventory(&InventoryQuery::default(), now()).unwrap();
    assert_eq!(page.total, 2, "only machines are identities");
    let s = identity_by_name(&store, "svc-backup");
    assert_eq!(s.kind, IdentityKind::ServiceAccount);
    assert_eq!(s.owner.as_ref().unwrap().display_name, "ben novak");
    assert_eq!(
        s.owner.as_ref().unwrap().manager_name.as_deref(),
        Some("grace moreau")
    );
    assert_eq!(s.grants.len(), 1);
    assert_eq!(
        (
            s.grants[0].resource_name.as_str(),
            s.grants[0].privilege.as_str()
        ),
        ("prod-admins", "admin")
    );
    let a = identity_by_name(&store, "invoice-agent");
    assert_eq!(a.kind, IdentityKind::AiAgent);
    assert!(!a.registered, "discovered, not registered");
    assert_eq!(a.grants[0].privilege.as_str(), "read");

    let run = store.sync_run(out.run).unwrap();
    assert_eq!(
        (run.status.as_str(), run.mode.as_deref()),
        ("succeeded", Some("full"))
    );
    assert_eq!(run.joiners, 4, "2 people + 2 identities");
    let events = store.lifecycle_events(out.run).unwrap();
    assert!(events.iter().all(|e| e.kind == "joiner"));

    // Paged with count=2 over 4 users: the progress saw several pages and the total.
    let seen = seen.lock().unwrap();
    let people_pages = seen
        .iter()
        .filter(|p| p.phase == "people")
        .map(|p| p.pages)
        .max()
        .unwrap();
    assert!(people_pages >= 2, "pages: {people_pages}");
    assert!(seen.iter().any(|p| p.total == Some(4)));
}

#[test]
fn resync_records_leavers_and_movers_and_keeps_ids() {
    let server = ScimServer::start();
    let boss = server.user("grace.moreau", None, None, "Engineering");
    let dev = server.user("ben.novak", None, Some(&boss), "Engineering");
    let svc = server.user("svc-etl", Some("Service"), Some(&dev), "Data");
    let bot = server.user("deploy-bot", Some("Bot"), Some(&dev), "Platform");
    let gone = server.user("svc-legacy", Some("Service"), Some(&boss), "Data");
    let (mut store, source, secrets) = setup(&server, 50);
    sync_blocking(
        &mut store,
        source,
        &secrets,
        quiet(),
        Cancel::new(),
        fast_policy(),
    )
    .unwrap();
    let svc_id = identity_by_name(&store, "svc-etl").id;
    let legacy_id = identity_by_name(&store, "svc-legacy").id;

    server.set_active(&svc, false);
    server.delete_user(&gone);
    server.set_active(&dev, false);
    server.group("ops", &[&bot]);
    let out = sync_blocking(
        &mut store,
        source,
        &secrets,
        quiet(),
        Cancel::new(),
        fast_policy(),
    )
    .unwrap();

    let s = identity_by_name(&store, "svc-etl");
    assert_eq!(s.id, svc_id, "local ids are stable across syncs");
    assert_eq!(s.status, IdentityStatus::Disabled);
    let legacy = ops::identity(&store, legacy_id, now()).unwrap();
    assert_eq!(
        legacy.status,
        IdentityStatus::Deleted,
        "removed identities are kept, marked deleted"
    );
    let owner = identity_by_name(&store, "deploy-bot").owner.unwrap();
    assert_eq!(owner.status, PersonStatus::Suspended);

    let events = store.lifecycle_events(out.run).unwrap();
    let has = |kind: &str, name: &str| events.iter().any(|e| e.kind == kind && e.name == name);
    assert!(has("leaver", "svc-etl"), "{events:?}");
    assert!(has("leaver", "svc-legacy"), "{events:?}");
    assert!(has("leaver", "ben novak"), "{events:?}");
    assert!(
        events
            .iter()
            .any(|e| e.kind == "mover" && e.detail.contains("grants: +1")),
        "{events:?}"
    );
    let run = store.sync_run(out.run).unwrap();
    assert_eq!(run.leavers, 3);
    assert!(run.movers >= 1);
}

#[test]
fn wrong_token_fails_with_auth_and_keeps_the_snapshot() {
    let server = ScimServer::start();
    server.user("svc-one", Some("Service"), None, "Data");
    let (mut store, source, secrets) = setup(&server, 50);
    sync_blocking(
        &mut store,
        source,
        &secrets,
        quiet(),
        Cancel::new(),
        fast_policy(),
    )
    .unwrap();
    let before = store.summary().unwrap();

    secrets.set(source, "not-the-token").unwrap();
    let err = sync_blocking(
        &mut store,
        source,
        &secrets,
        quiet(),
        Cancel::new(),
        fast_policy(),
    )
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::SourceAuth, "{err}");
    assert!(
        !err.message.contains("not-the-token"),
        "the secret never appears in errors"
    );
    assert_eq!(store.summary().unwrap(), before);
    let runs = store.sync_runs(Some(source), 10).unwrap();
    assert_eq!(runs[0].status, "failed");
    assert_eq!(runs[0].error_code.as_deref(), Some("source_auth"));
    assert_eq!(runs[1].status, "succeeded");
}

#[test]
fn missing_secret_is_a_clear_error() {
    let server = ScimServer::start();
    let (mut store, source, _) = setup(&server, 50);
    let empty = MemorySecrets::default();
    let err = sync_blocking(
        &mut store,
        source,
        &empty,
        quiet(),
        Cancel::new(),
        fast_policy(),
    )
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::SecretMissing);
    assert!(err.message.contains("HR SCIM"));
}

#[test]
fn server_gone_midway_is_a_network_error_and_nothing_changes() {
    let server = ScimServer::start();
    for i in 0..5 {
        server.user(&format!("svc-{i}"), Some("Service"), None, "Data");
    }
    let (mut store, source, secrets) = setup(&server, 2);
    sync_blocking(
        &mut store,
        source,
        &secrets,
        quiet(),
        Cancel::new(),
        fast_policy(),
    )
    .unwrap();
    let before = store.summary().unwrap();
    // Stop the server: the next sync cannot reach it.
    drop(server);
    let err = sync_blocking(
        &mut store,
        source,
        &secrets,
        quiet(),
        Cancel::new(),
        fast_policy(),
    )
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::Network, "{err}");
    assert_eq!(store.summary().unwrap(), before);
}

#[test]
fn cancelling_keeps_the_previous_snapshot() {
    let server = ScimServer::start();
    server.user("svc-a", Some("Service"), None, "Data");
    let (mut store, source, secrets) = setup(&server, 1);
    let cancel = Cancel::new();
    cancel.cancel();
    let err =
        sync_blocking(&mut store, source, &secrets, quiet(), cancel, fast_policy()).unwrap_err();
    assert_eq!(err.code, ErrorCode::Cancelled);
    assert_eq!(
        store.sync_runs(Some(source), 1).unwrap()[0].status,
        "cancelled"
    );
    assert_eq!(store.summary().unwrap().identities, 0);
}

// ---------------------------------------------------------------- wiremock:
// the documented bodies and the shapes real tenants send.

mod documented {
    use super::*;
    use crate::harness::{doc_fixture, last_run, Fixture, SourceEnv};
    use wiremock::matchers::{header, method, path, query_param};
    use wiremock::{Mock, ResponseTemplate};

    fn scim(body: String) -> ResponseTemplate {
        ResponseTemplate::new(200).set_body_raw(body.into_bytes(), "application/scim+json")
    }

    fn get(p: &str) -> wiremock::MockBuilder {
        Mock::given(method("GET"))
            .and(path(p.to_string()))
            .and(header("authorization", "Bearer scim-tok"))
    }

    fn env(fx: &Fixture) -> SourceEnv {
        SourceEnv::new(
            "scim",
            "SCIM",
            json!({"base_url": fx.uri(), "page_size": 2}),
            "scim-tok",
        )
    }

    fn no_groups(fx: &Fixture) {
        // Lower-case keys, as Entra's SCIM API sends them.
        fx.mount(get("/Groups").respond_with(scim(r#"{"totalresults":0,"resources":[]}"#.into())));
    }

    #[test]
    fn the_rfc_7644_list_example_is_read_verbatim() {
        let fx = Fixture::start();
        fx.mount(
            get("/Users").respond_with(scim(doc_fixture("scim/rfc7644-3.4.2-list-response.json"))),
        );
        no_groups(&fx);
        let mut env = env(&fx);
        env.sync().unwrap();
        assert_eq!(
            env.person("2819c223-7f76-453a-919d-413861904646").0,
            "active"
        );
        assert_eq!(
            env.person("c75ad752-64ae-4823-840d-ffa80929976c").0,
            "active"
        );
        let run = last_run(&env);
        assert_eq!(run.status, "succeeded");
        assert!(run.warnings.is_empty(), "{:?}", run.warnings);
    }

    #[test]
    fn lower_case_cursor_pages_skip_a_user_without_id_and_warn() {
        let fx = Fixture::start();
        fx.mount(
            get("/Users")
                .and(query_param("startIndex", "1"))
                .respond_with(scim(
                    r#"{"totalresults":3,"resources":[
                    {"id":"svc1","username":"svc-one","usertype":"Service"},
                    {"username":"ghost","userType":"Service"}],"nextCursor":"c2"}"#
                        .into(),
                )),
        );
        // The cursor page is throttled once (429 + Retry-After), then served.
        fx.mount(
            get("/Users")
                .and(query_param("cursor", "c2"))
                .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "0"))
                .up_to_n_times(1)
                .with_priority(1),
        );
        fx.mount(get("/Users").and(query_param("cursor", "c2")).respond_with(scim(
            r#"{"Resources":[{"ID":"svc2","UserName":"svc-two","UserType":"Bot","Active":false}]}"#.into(),
        )));
        no_groups(&fx);
        let mut env = env(&fx);
        env.sync().unwrap();
        assert_eq!(env.detail("svc1").kind, IdentityKind::ServiceAccount);
        let two = env.detail("svc2");
        assert_eq!(
            (two.kind, two.status),
            (IdentityKind::Bot, IdentityStatus::Disabled)
        );
        let run = last_run(&env);
        assert_eq!(run.status, "succeeded_with_warnings");
        assert_eq!(run.warnings.len(), 1, "{:?}", run.warnings);
        assert!(
            run.warnings[0].contains("Users page 1 item 2") && run.warnings[0].contains("ghost"),
            "{:?}",
            run.warnings
        );
    }

    #[test]
    fn forced_cursor_paging_starts_with_an_empty_cursor() {
        let fx = Fixture::start();
        fx.mount(
            get("/Users")
                .and(query_param("cursor", ""))
                .respond_with(scim(
                    r#"{"Resources":[{"id":"a","userName":"alice"}],"nextCursor":"n1"}"#.into(),
                )),
        );
        fx.mount(
            get("/Users")
                .and(query_param("cursor", "n1"))
                .respond_with(scim(
                    r#"{"Resources":[{"id":"b","userName":"bob"}]}"#.into(),
                )),
        );
        no_groups(&fx);
        let mut env = SourceEnv::new(
            "scim",
            "SCIM",
            json!({"base_url": fx.uri(), "pagination": "cursor"}),
            "scim-tok",
        );
        env.sync().unwrap();
        assert_eq!(env.person("a").0, "active");
        assert_eq!(env.person("b").0, "active");
        assert_eq!(last_run(&env).status, "succeeded");
    }

    #[test]
    fn an_empty_listing_after_a_run_with_data_is_a_warning() {
        let fx = Fixture::start();
        fx.mount(
            get("/Users").respond_with(scim(doc_fixture("scim/rfc7644-3.4.2-list-response.json"))),
        );
        no_groups(&fx);
        let mut env = env(&fx);
        env.sync().unwrap();
        fx.reset();
        fx.mount(get("/Users").respond_with(scim(r#"{"totalResults":5,"Resources":[]}"#.into())));
        no_groups(&fx);
        env.sync().unwrap();
        let run = last_run(&env);
        assert_eq!(run.status, "succeeded_with_warnings");
        assert!(
            run.warnings.iter().any(|w| w.contains("reported 5")),
            "{:?}",
            run.warnings
        );
        assert!(
            run.warnings
                .iter()
                .any(|w| w.contains("last successful run imported")),
            "{:?}",
            run.warnings
        );
    }

    #[test]
    fn a_page_that_is_not_a_list_response_fails_the_run() {
        let fx = Fixture::start();
        fx.mount(get("/Users").respond_with(scim(r#"{"Resources":{"id":"x"}}"#.into())));
        no_groups(&fx);
        let mut env = env(&fx);
        let err = env.sync().unwrap_err();
        assert_eq!(err.code, ErrorCode::MalformedResponse, "{err}");
        assert_eq!(last_run(&env).status, "failed");
    }
}

// ---------------------------------------------------------------- settings

mod settings {
    use super::*;
    use custodian::sync::secrets::SecretStore;

    /// A keyring that refuses every write.
    struct RefusingKeyring;
    impl SecretStore for RefusingKeyring {
        fn get(&self, _: SourceId) -> custodian::Result<Option<String>> {
            Ok(None)
        }
        fn set(&self, _: SourceId, _: &str) -> custodian::Result<()> {
            Err(custodian::Error::new(
                ErrorCode::Keyring,
                "no Secret Service on this session bus",
            ))
        }
        fn delete(&self, _: SourceId) -> custodian::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn settings_are_stored_typed_and_unknown_keys_refused() {
        let mut store = crate::util::test_store();
        let secrets = MemorySecrets::default();
        let s = ops::add_source(
            &mut store,
            &secrets,
            "github",
            "GH",
            json!({"org": "acme", "read_tokens": "false"}),
            Some("t"),
            now(),
        )
        .unwrap();
        assert_eq!(
            s.settings["read_tokens"],
            json!(false),
            "a bool, not \"false\""
        );
        let err = ops::add_source(
            &mut store,
            &secrets,
            "scim",
            "S",
            json!({"base_url": "https://idp/scim", "pagesize": "5"}),
            Some("t"),
            now(),
        )
        .unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidInput);
        assert!(
            err.message.contains("'pagesize'") && err.message.contains("page_size"),
            "{err}"
        );
        assert_eq!(
            ops::source_kinds().len(),
            custodian::sync::SOURCE_KINDS.len()
        );
    }

    #[test]
    fn a_secret_that_cannot_be_stored_leaves_no_source_behind() {
        let mut store = crate::util::test_store();
        let settings = json!({"base_url": "https://idp/scim"});
        let err = ops::add_source(
            &mut store,
            &RefusingKeyring,
            "scim",
            "HR",
            settings.clone(),
            Some("tok"),
            now(),
        )
        .unwrap_err();
        assert_eq!(err.code, ErrorCode::Keyring, "{err}");
        assert!(err.message.contains("not added"), "{err}");
        assert!(store.sources().unwrap().is_empty(), "nothing left behind");
        // A retry with a working keyring is not told the name is taken.
        let secrets = MemorySecrets::default();
        let s = ops::add_source(
            &mut store,
            &secrets,
            "scim",
            "HR",
            settings,
            Some("tok"),
            now(),
        )
        .unwrap();
        assert_eq!(secrets.get(SourceId(s.id)).unwrap().as_deref(), Some("tok"));
    }
}
