//! Entra ID without a client secret (issue 18): a certificate credential
//! (client assertion signed with the app's private key), workload identity
//! federation (a federated token from a file) and the device-code flow
//! (delegated sign-in of an administrator); and the identity Custodian signs
//! in as, marked in the inventory. The token endpoint is a fixture that
//! follows Microsoft's documented protocol and really verifies what it is
//! sent; Graph is the fixture of `sync_entra`.

use std::process::{Command, Output, Stdio};

use serde_json::json;

use crate::sync_entra::{mount_tenant, new_env, page2, GraphFx};

fn custodian(db: &std::path::Path, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    crate::util::test_key();
    let mut child = Command::new(env!("CARGO_BIN_EXE_custodian"))
        .arg("--db")
        .arg(crate::util::cli_location(db))
        .args(args)
        .env_remove("CUSTODIAN_DB")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

// ------------------------------------------------ Custodian's own identity

#[test]
fn the_apps_service_principal_is_the_identity_custodian_signs_in_as() {
    let fx = GraphFx::start();
    mount_tenant(&fx, page2());
    let mut env = new_env(&fx);
    // Custodian signs in as the app "app-ci", whose SP is sp-ci.
    let mut settings = env.store.source(env.source).unwrap().settings;
    settings["client_id"] = json!("app-ci");
    env.store
        .update_source_settings(env.source, &settings)
        .unwrap();
    env.sync().unwrap();

    let src = env.store.source(env.source).unwrap();
    let ci = env.detail("sp-ci");
    let a = src.signed_in_as.expect("the sign-in identity is kept");
    assert_eq!(
        (a.external_id.as_str(), a.identity_id, a.name.as_deref()),
        ("sp-ci", Some(ci.id), Some("ci-deployer"))
    );
    assert!(ci.custodian_signs_in, "the identity page marks it");
    assert!(!env.detail("sp-agent").custodian_signs_in);

    // An incremental run in which that SP did not change keeps it.
    fx.mount(
        fx.get("/v1.0/users/delta", json!({"@odata.deltaLink": format!("{}/v1.0/users/delta?$deltatoken=u2", fx.uri()), "value": []}))
            .and(wiremock::matchers::query_param("$deltatoken", "u1")),
    );
    fx.mount(
        fx.get("/v1.0/servicePrincipals/delta", json!({"@odata.deltaLink": format!("{}/v1.0/servicePrincipals/delta?$deltatoken=d2", fx.uri()), "value": []}))
            .and(wiremock::matchers::query_param("$deltatoken", "d1")),
    );
    let out = env.sync().unwrap();
    assert!(!out.full);
    let src = env.store.source(env.source).unwrap();
    assert_eq!(
        src.signed_in_as.map(|a| a.external_id).as_deref(),
        Some("sp-ci")
    );
    assert!(env.detail("sp-ci").custodian_signs_in);
}

#[test]
fn source_show_names_the_identity_custodian_signs_in_as() {
    let fx = GraphFx::start();
    mount_tenant(&fx, page2());
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let login = format!("login_base={}", fx.uri());
    let graph = format!("graph_base={}", fx.uri());
    ok(&custodian(
        &db,
        &[
            "source",
            "add",
            "entra",
            "--name",
            "entra",
            "--set",
            "tenant_id=tenant-1",
            "--set",
            "client_id=app-ci",
            "--set",
            &login,
            "--set",
            &graph,
        ],
        None,
    ));
    let before = ok(&custodian(&db, &["source", "show", "entra"], None));
    assert!(before.contains("Signs in as: not known yet"), "{before}");
    ok(&custodian(
        &db,
        &["sync", "entra", "--secret-stdin"],
        Some("s3cret\n"),
    ));
    let text = ok(&custodian(&db, &["source", "show", "entra"], None));
    assert!(
        text.contains("Signs in as identity #") && text.contains("ci-deployer (sp-ci)"),
        "{text}"
    );
    let v: serde_json::Value = serde_json::from_str(&ok(&custodian(
        &db,
        &["source", "show", "entra", "--json"],
        None,
    )))
    .unwrap();
    assert_eq!(v["source"]["signed_in_as"]["external_id"], "sp-ci");
    assert_eq!(v["source"]["signed_in_as"]["name"], "ci-deployer");
}
