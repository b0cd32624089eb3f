//! Write-back calls: carrying out a remediation task through the source's
//! API (SCIM `PATCH`, AWS IAM), with the same context a sync fetches with.
//! The rules (what can be written back, the opt-in, the target) are in
//! `crate::writeback`; recording the outcome is `store::writeback`.

use serde_json::json;

use super::SyncContext;
use crate::campaigns::TaskKind;
use crate::error::{Error, ErrorCode, Result};
use crate::writeback::{iam_user_name, Target};

/// Carries out `t` through the source's API; what was done, for the task's
/// note.
pub async fn perform(ctx: &SyncContext, t: &Target) -> Result<String> {
    super::transport::check_source(&ctx.source)?;
    match (ctx.source.kind.as_str(), t.kind) {
        ("scim", TaskKind::DisableIdentity) => scim_disable(ctx, t).await,
        ("aws", TaskKind::DisableIdentity) => aws_disable_user(ctx, t).await,
        ("aws", TaskKind::RevokeCredential) => aws_revoke_key(ctx, t).await,
        (kind, task) => Err(Error::invalid(format!(
            "a {kind} source cannot carry out '{}' tasks; export it as a ticket",
            task.as_str()
        ))),
    }
}

async fn scim_disable(ctx: &SyncContext, t: &Target) -> Result<String> {
    let base = ctx.setting("base_url")?;
    let id = t.external_id.trim();
    if id.is_empty() || id.contains('/') {
        return Err(Error::invalid(format!(
            "'{}' is not a SCIM resource id",
            t.external_id
        )));
    }
    let url = format!("{}/Users/{id}", base.trim_end_matches('/'));
    let body = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": false}],
    });
    let auth = [("authorization", format!("Bearer {}", ctx.secret()?.trim()))];
    ctx.http
        .request(
            reqwest::Method::PATCH,
            &url,
            &auth,
            Some(("application/scim+json", body.to_string())),
        )
        .await?;
    // Read it back: a server that accepted the PATCH but ignored it must
    // not leave the task looking done.
    let resp = ctx.http.get(&url, &auth).await?;
    let user: serde_json::Value = resp.json("SCIM user")?;
    if user.get("active").and_then(serde_json::Value::as_bool) != Some(false) {
        return Err(Error::new(
            ErrorCode::SourceError,
            format!(
                "{}: the SCIM server accepted active=false but the user still reads as active",
                t.identity_name
            ),
        ));
    }
    Ok(format!(
        "disabled in {} (SCIM active=false, read back)",
        ctx.source.name
    ))
}

async fn aws_disable_user(ctx: &SyncContext, t: &Target) -> Result<String> {
    let iam = crate::sync::aws::Iam::from_context(ctx)?;
    let user = iam_user_name(&t.external_id)?;
    let keys = iam.access_key_ids(user).await?;
    for k in &keys {
        iam.call(
            "UpdateAccessKey",
            &[
                ("UserName", user),
                ("AccessKeyId", k),
                ("Status", "Inactive"),
            ],
        )
        .await?;
    }
    let password = match iam.call("DeleteLoginProfile", &[("UserName", user)]).await {
        Ok(_) => "console password deleted",
        Err(e) if crate::sync::aws::is_no_such_entity(&e) => "no console password",
        Err(e) => return Err(e),
    };
    Ok(format!(
        "disabled in {}: {} access key(s) set Inactive, {password}",
        ctx.source.name,
        keys.len()
    ))
}

async fn aws_revoke_key(ctx: &SyncContext, t: &Target) -> Result<String> {
    let iam = crate::sync::aws::Iam::from_context(ctx)?;
    let user = iam_user_name(&t.external_id)?;
    let key = t
        .credential
        .as_deref()
        .map(str::trim)
        .filter(|k| k.starts_with("AKIA") || k.starts_with("ASIA"))
        .ok_or_else(|| {
            Error::invalid(format!(
                "task {} does not name an access key; revoke it by hand",
                t.task
            ))
        })?;
    iam.call(
        "UpdateAccessKey",
        &[
            ("UserName", user),
            ("AccessKeyId", key),
            ("Status", "Inactive"),
        ],
    )
    .await?;
    Ok(format!(
        "access key {key} of {user} set Inactive in {}",
        ctx.source.name
    ))
}
