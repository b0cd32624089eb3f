//! Write-back of remediation tasks into the real sources: SCIM users are
//! disabled on scim2-server, IAM users' keys deactivated and console
//! passwords deleted on moto. Off until the source opts in; failures mark
//! the task failed with the source's answer; everything is audited.

use custodian::campaigns::{TaskId, TaskKind, TaskStatus, TaskView};
use custodian::model::{IdentityStatus, SourceId};
use custodian::ops;
use custodian::ops::sync_blocking;
use custodian::store::Store;
use custodian::sync::http::Cancel;
use custodian::sync::secrets::{MemorySecrets, SecretStore};
use custodian::sync::{ProgressFn, SyncProgress};
use custodian::ErrorCode;
use serde_json::json;

use crate::harness::fast_policy;
use crate::peers::{MotoServer, ScimServer};
use crate::util::now;

fn quiet() -> ProgressFn {
    std::sync::Arc::new(|_: &SyncProgress| {})
}

fn sync(store: &mut Store, source: SourceId, secrets: &MemorySecrets) {
    sync_blocking(
        store,
        source,
        secrets,
        quiet(),
        Cancel::new(),
        fast_policy(),
    )
    .unwrap();
}

fn open_tasks(store: &Store, identity: i64, kind: TaskKind) -> Vec<TaskView> {
    store
        .tasks(None, None)
        .unwrap()
        .into_iter()
        .filter(|t| t.identity_id == identity && t.kind == kind)
        .collect()
}

fn task(store: &Store, id: TaskId) -> TaskView {
    store
        .tasks(None, None)
        .unwrap()
        .into_iter()
        .find(|t| t.id == id)
        .unwrap()
}

fn audit_actions(store: &Store) -> Vec<String> {
    let mut st = store
        .raw_db()
        .prepare("SELECT action FROM audit_log ORDER BY seq")
        .unwrap();
    st.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn scim_users_are_disabled_in_the_source_once_write_back_is_on() {
    let server = ScimServer::start();
    let boss = server.user("grace.moreau", None, None, "Engineering");
    let svc = server.user("svc-backup", Some("Service"), Some(&boss), "Platform");
    let gone = server.user("svc-gone", Some("Service"), Some(&boss), "Platform");

    let mut store = crate::util::test_store();
    let secrets = MemorySecrets::default();
    let src = ops::add_source(
        &mut store,
        &secrets,
        "scim",
        "HR SCIM",
        json!({"base_url": server.base}),
        Some(&server.token),
        now(),
    )
    .unwrap();
    let source = SourceId(src.id);
    sync(&mut store, source, &secrets);
    let actor = store.find_people("grace", 5).unwrap()[0].id;
    let id = ops::show(&store, "svc-backup", now()).unwrap().id;
    ops::retire_identity(
        &mut store,
        actor,
        "svc-backup",
        "the backup job moved to the platform team",
        now(),
    )
    .unwrap();
    let disable = open_tasks(&store, id, TaskKind::DisableIdentity);
    assert_eq!(disable.len(), 1);
    let t = disable[0].id;

    // Off by default: refused before any call, nothing changes.
    let err =
        ops::write_back_task(&mut store, &secrets, actor, t, fast_policy(), now()).unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidInput);
    assert!(
        err.message.contains("write-back is off for HR SCIM"),
        "{}",
        err.message
    );
    assert_eq!(task(&store, t).status, TaskStatus::Open);
    assert_eq!(server.get_user(&svc)["active"], json!(true));

    ops::set_write_back(&mut store, actor, "HR SCIM", true, now()).unwrap();
    let r = ops::write_back_task(&mut store, &secrets, actor, t, fast_policy(), now()).unwrap();
    assert_eq!(r.status, TaskStatus::Done);
    assert!(r.note.contains("disabled in HR SCIM"), "{}", r.note);
    assert_eq!(
        server.get_user(&svc)["active"],
        json!(false),
        "the server holds the change"
    );
    let done = task(&store, t);
    assert_eq!(
        (done.status, done.updated_by.as_str()),
        (TaskStatus::Done, "grace moreau")
    );
    let detail = ops::identity(&store, id, now()).unwrap();
    assert_eq!(
        detail.status,
        IdentityStatus::Disabled,
        "the cache shows it before the next sync"
    );
    assert!(ops::identity_timeline(&store, id)
        .unwrap()
        .iter()
        .any(|e| e.kind == "disabled"));

    // Done is done; the next sync agrees with the cache.
    let again =
        ops::write_back_task(&mut store, &secrets, actor, t, fast_policy(), now()).unwrap_err();
    assert!(again.message.contains("already done"), "{}", again.message);
    sync(&mut store, source, &secrets);
    assert_eq!(
        ops::identity(&store, id, now()).unwrap().status,
        IdentityStatus::Disabled
    );

    // The source answers with an error: the task is failed with its answer,
    // and can be tried again later.
    let gone_id = ops::show(&store, "svc-gone", now()).unwrap().id;
    ops::retire_identity(&mut store, actor, "svc-gone", "unused", now()).unwrap();
    server.delete_user(&gone);
    let t2 = open_tasks(&store, gone_id, TaskKind::DisableIdentity)[0].id;
    let err =
        ops::write_back_task(&mut store, &secrets, actor, t2, fast_policy(), now()).unwrap_err();
    assert_eq!(err.code, ErrorCode::SourceError, "{}", err.message);
    let failed = task(&store, t2);
    assert_eq!(failed.status, TaskStatus::Failed);
    assert!(
        failed.note.starts_with("write-back failed:") && failed.note.contains("404"),
        "{}",
        failed.note
    );
    assert_eq!(
        ops::identity(&store, gone_id, now()).unwrap().status,
        IdentityStatus::Active
    );

    // Switching it off again refuses further write-backs.
    ops::set_write_back(&mut store, actor, "HR SCIM", false, now()).unwrap();
    let err =
        ops::write_back_task(&mut store, &secrets, actor, t2, fast_policy(), now()).unwrap_err();
    assert!(err.message.contains("write-back is off"), "{}", err.message);

    let actions = audit_actions(&store);
    assert_eq!(
        actions.iter().filter(|a| *a == "source.write_back").count(),
        2
    );
    assert_eq!(
        actions.iter().filter(|a| *a == "task.write_back").count(),
        2,
        "the done and the failed attempt"
    );
    assert!(store.verify_audit().unwrap().ok);
    let settings = store.source(source).unwrap().settings;
    assert!(
        settings.get("write_back") == Some(&json!(false)),
        "{settings}"
    );
    assert!(
        !settings.to_string().contains(&server.token),
        "the token never reaches the settings"
    );
}

#[test]
fn aws_users_lose_their_keys_and_console_password_and_roles_are_refused() {
    let moto = MotoServer::start();
    let c = |action: &str, params: &[(&str, &str)]| moto.call(action, params);
    c(
        "CreateUser",
        &[
            ("UserName", "svc-etl"),
            ("Path", "/svc/"),
            ("Tags.member.1.Key", "owner"),
            ("Tags.member.1.Value", "ada"),
        ],
    );
    let k1 = MotoServer::field(
        &c("CreateAccessKey", &[("UserName", "svc-etl")]),
        "AccessKeyId",
    );
    let k2 = MotoServer::field(
        &c("CreateAccessKey", &[("UserName", "svc-etl")]),
        "AccessKeyId",
    );
    c(
        "CreateLoginProfile",
        &[("UserName", "svc-etl"), ("Password", "Correct-Horse-9")],
    );
    c(
        "CreateUser",
        &[("UserName", "svc-report"), ("Path", "/svc/")],
    );
    let k3 = MotoServer::field(
        &c("CreateAccessKey", &[("UserName", "svc-report")]),
        "AccessKeyId",
    );
    c(
        "CreateUser",
        &[
            ("UserName", "ada"),
            ("Tags.member.1.Key", "email"),
            ("Tags.member.1.Value", "ada@example.com"),
        ],
    );
    c(
        "CreateLoginProfile",
        &[("UserName", "ada"), ("Password", "Correct-Horse-1")],
    );
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::123456789012:user/svc/svc-etl"}, "Action": "sts:AssumeRole"}]});
    c(
        "CreateRole",
        &[
            ("RoleName", "loader"),
            ("AssumeRolePolicyDocument", &trust.to_string()),
        ],
    );

    let mut store = crate::util::test_store();
    let secrets = MemorySecrets::default();
    let src = ops::add_source(
        &mut store,
        &secrets,
        "aws",
        "prod account",
        json!({"access_key_id": MotoServer::KEY_ID, "endpoint": moto.endpoint, "write_back": "true"}),
        Some(MotoServer::SECRET),
        now(),
    )
    .unwrap();
    let source = SourceId(src.id);
    assert!(secrets.get(source).unwrap().is_some());
    sync(&mut store, source, &secrets);
    let actor = store.find_people("ada", 5).unwrap()[0].id;
    let key_status = |user: &str| -> Vec<(String, String)> {
        let xml = moto.call("ListAccessKeys", &[("UserName", user)]);
        let mut out = vec![];
        for m in xml.split("<member>").skip(1) {
            out.push((
                MotoServer::field(m, "AccessKeyId"),
                MotoServer::field(m, "Status"),
            ));
        }
        out.sort();
        out
    };

    // Retiring svc-etl: disable it (both keys, the console password).
    let etl = ops::show(&store, "svc-etl", now()).unwrap().id;
    ops::retire_identity(
        &mut store,
        actor,
        "svc-etl",
        "replaced by the new pipeline",
        now(),
    )
    .unwrap();
    let t = open_tasks(&store, etl, TaskKind::DisableIdentity)[0].id;
    let r = ops::write_back_task(&mut store, &secrets, actor, t, fast_policy(), now()).unwrap();
    assert!(
        r.note
            .contains("2 access key(s) set Inactive, console password deleted"),
        "{}",
        r.note
    );
    let mut want = vec![
        (k1.clone(), "Inactive".to_string()),
        (k2.clone(), "Inactive".to_string()),
    ];
    want.sort();
    assert_eq!(key_status("svc-etl"), want);
    let xml = moto.call("ListUsers", &[]);
    assert!(
        xml.contains("svc-etl"),
        "the user itself stays (retire disables, it does not delete)"
    );

    // Retiring svc-report, but only its key is revoked (the revoke task
    // carries the access key id).
    let report = ops::show(&store, "svc-report", now()).unwrap().id;
    ops::retire_identity(&mut store, actor, "svc-report", "unused", now()).unwrap();
    let revoke = open_tasks(&store, report, TaskKind::RevokeCredential);
    assert_eq!(revoke.len(), 1, "{revoke:?}");
    let r = ops::write_back_task(
        &mut store,
        &secrets,
        actor,
        revoke[0].id,
        fast_policy(),
        now(),
    )
    .unwrap();
    assert!(r.note.contains(&k3), "{}", r.note);
    assert_eq!(
        key_status("svc-report"),
        vec![(k3.clone(), "Inactive".to_string())]
    );
    assert_eq!(
        ops::identity(&store, report, now()).unwrap().status,
        IdentityStatus::Active,
        "revoking one key does not disable the identity"
    );

    // A role cannot be disabled: refused with what to do instead, task failed.
    let loader = ops::show(&store, "loader", now()).unwrap().id;
    ops::retire_identity(&mut store, actor, "loader", "the pipeline is gone", now()).unwrap();
    let t = open_tasks(&store, loader, TaskKind::DisableIdentity)[0].id;
    let err =
        ops::write_back_task(&mut store, &secrets, actor, t, fast_policy(), now()).unwrap_err();
    assert!(err.message.contains("is a role"), "{}", err.message);
    assert_eq!(task(&store, t).status, TaskStatus::Failed);

    // The console password's revoke task names no access key: refused, and
    // the reason is on the task.
    let password = open_tasks(&store, etl, TaskKind::RevokeCredential)
        .into_iter()
        .find(|t| t.target.contains("console password"))
        .expect("a revoke task for the console password");
    let err = ops::write_back_task(
        &mut store,
        &secrets,
        actor,
        password.id,
        fast_policy(),
        now(),
    )
    .unwrap_err();
    assert!(
        err.message.contains("does not name an access key"),
        "{}",
        err.message
    );
    assert_eq!(task(&store, password.id).status, TaskStatus::Failed);
    assert!(store.verify_audit().unwrap().ok);
}
