//! Write-back: carrying out a remediation task in the source that holds the
//! identity, where the source's API allows it and the source is opted in
//! (its `write_back` setting; off by default, because it changes production
//! identities). Everything else stays a ticket (`custodian tasks --export`).
//!
//! | source | disable_identity | revoke_credential |
//! |---|---|---|
//! | SCIM 2.0 | `PATCH /Users/{id}` `active=false` | - |
//! | AWS IAM (user) | every access key `Inactive`, console password deleted | the access key `Inactive` |
//!
//! Not written back, on purpose: rotation (a new secret must reach the
//! workload that uses it), grant revocation (IAM grants come from shared
//! policies; detaching one would change other identities), ownership
//! transfers (no source here has a writable owner for machine identities),
//! and disabling AWS roles (there is no such switch; revoke the trust
//! policy by hand). Every attempt, done or failed, is recorded on the task
//! and in the audit log by the caller.
//!
//! This module holds the rules and the target type only (no I/O): the store
//! (`store::writeback`, `store::campaigns`) and the source settings read
//! them. The calls to the source live in `sync::writeback`, beside the
//! sources' clients; imports go `ops -> sync -> writeback -> campaigns`,
//! `store -> writeback`, never back.

use crate::campaigns::TaskKind;
use crate::error::{Error, Result};

/// What a task needs to be carried out in its source.
#[derive(Debug, Clone)]
pub struct Target {
    pub task: crate::campaigns::TaskId,
    pub kind: TaskKind,
    /// The identity's id in its source (SCIM id, IAM ARN).
    pub external_id: String,
    pub identity_name: String,
    /// The credential a `revoke_credential` task is about (its source id,
    /// e.g. the access key id), when the task knows it.
    pub credential: Option<String>,
}

/// The kinds of source that can carry out some task.
pub const SOURCE_KINDS: &[&str] = &["scim", "aws"];

/// Can a source of this kind carry out tasks of this kind?
pub fn supports(source_kind: &str, task: TaskKind) -> bool {
    matches!(
        (source_kind, task),
        ("scim", TaskKind::DisableIdentity)
            | ("aws", TaskKind::DisableIdentity)
            | ("aws", TaskKind::RevokeCredential)
    )
}

/// Is write-back switched on for the source (`write_back`: true or "true")?
pub fn enabled(settings: &serde_json::Value) -> bool {
    match settings.get("write_back") {
        Some(serde_json::Value::Bool(b)) => *b,
        Some(serde_json::Value::String(s)) => {
            matches!(
                s.trim().to_ascii_lowercase().as_str(),
                "true" | "on" | "yes"
            )
        }
        _ => false,
    }
}

/// `arn:aws:iam::ACCOUNT:user/path/name` -> `name`; roles are refused.
pub fn iam_user_name(arn: &str) -> Result<&str> {
    let resource = arn.splitn(6, ':').nth(5).unwrap_or_default();
    match resource.split_once('/') {
        Some(("user", rest)) => Ok(rest.rsplit('/').next().unwrap_or(rest)),
        Some(("role", _)) => Err(Error::invalid(format!(
            "{arn} is a role: IAM has no switch to disable a role; remove its trust policy's principals by hand"
        ))),
        _ => Err(Error::invalid(format!("'{arn}' is not an IAM user ARN"))),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use serde_json::json;

    #[test]
    fn user_names_come_from_user_arns_only() {
        assert_eq!(
            iam_user_name("arn:aws:iam::123456789012:user/svc/deployer").unwrap(),
            "deployer"
        );
        assert_eq!(
            iam_user_name("arn:aws:iam::123456789012:user/ada").unwrap(),
            "ada"
        );
        let e = iam_user_name("arn:aws:iam::123456789012:role/app").unwrap_err();
        assert!(e.message.contains("is a role"), "{}", e.message);
        assert_eq!(
            iam_user_name("not-an-arn").unwrap_err().code,
            ErrorCode::InvalidInput
        );
    }

    #[test]
    fn write_back_is_off_unless_switched_on() {
        assert!(!enabled(&json!({})));
        assert!(!enabled(&json!({"write_back": "false"})));
        assert!(!enabled(&json!({"write_back": 1})));
        assert!(enabled(&json!({"write_back": true})));
        assert!(enabled(&json!({"write_back": " TRUE "})));
    }

    #[test]
    fn only_what_the_source_can_do_is_supported() {
        assert!(supports("scim", TaskKind::DisableIdentity));
        assert!(!supports("scim", TaskKind::RevokeCredential));
        assert!(supports("aws", TaskKind::RevokeCredential));
        assert!(!supports("aws", TaskKind::RotateCredential));
        assert!(!supports("csv", TaskKind::DisableIdentity));
        assert!(!supports("entra", TaskKind::TransferOwner));
    }
}
