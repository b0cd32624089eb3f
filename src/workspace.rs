//! Team workspace rules (plain, no SQL): the member roles, what each role
//! may do (for friendly messages; the database enforces the same rules, see
//! `store::workspace`), the group-role names derived from the database name,
//! and member validation.

use crate::error::{Error, Result};

/// A member role. Each maps to one NOLOGIN group role in PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Admin,
    CampaignOwner,
    Reviewer,
    Manager,
    Auditor,
}

/// What a member may try to do (for messages and hiding menu items).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    ManageMembers,
    ManageSources,
    CreateCampaign,
    DecideItem,
    ActOnOffboarding,
    ReadEverything,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::CampaignOwner,
        Role::Reviewer,
        Role::Manager,
        Role::Auditor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::CampaignOwner => "campaign_owner",
            Role::Reviewer => "reviewer",
            Role::Manager => "manager",
            Role::Auditor => "auditor",
        }
    }

    pub fn parse(s: &str) -> Result<Role> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s.trim())
            .ok_or_else(|| {
                Error::invalid(format!(
                    "unknown role {:?}: use admin, campaign_owner, reviewer, manager or auditor",
                    crate::sanitize::terminal(s)
                ))
            })
    }

    /// Whether this role allows `action` (the database's policies are the
    /// proof; this is for messages).
    pub fn allows(self, action: Action) -> bool {
        matches!(
            (self, action),
            (Role::Admin, Action::ManageMembers | Action::ManageSources)
                | (Role::CampaignOwner, Action::CreateCampaign)
                | (Role::Reviewer, Action::DecideItem)
                | (Role::Manager, Action::ActOnOffboarding)
                | (Role::Auditor | Role::Admin, Action::ReadEverything)
        )
    }
}

/// Why `action` is refused to a member holding `roles`, or None if allowed.
pub fn refusal(roles: &[Role], action: Action) -> Option<String> {
    if roles.iter().any(|r| r.allows(action)) {
        return None;
    }
    let need: Vec<&str> = Role::ALL
        .into_iter()
        .filter(|r| r.allows(action))
        .map(Role::as_str)
        .collect();
    Some(format!(
        "your workspace roles do not allow this (it needs: {})",
        need.join(" or ")
    ))
}

/// Group-role prefix for database `db`. Role names are cluster-wide, so two
/// workspaces on one cluster must not share group roles: the prefix is
/// derived from the database name (lowercase ASCII letters, digits and `_`,
/// cut so the longest group name stays within PostgreSQL's 63 bytes).
pub fn role_prefix(db: &str) -> Result<String> {
    let clean: String = db
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if clean.trim_matches('_').is_empty() {
        return Err(Error::invalid(
            "the database name gives no usable role prefix",
        ));
    }
    // "custodian_" (10) + db + "_campaign_owner" (15) <= 63
    let cut: String = clean.chars().take(38).collect();
    Ok(format!("custodian_{cut}_"))
}

/// The group role for `role` under `prefix`.
pub fn group_role(prefix: &str, role: Role) -> String {
    format!("{prefix}{}", role.as_str())
}

/// Checks a login name and a role set before they reach the database.
pub fn validate_member(login: &str, roles: &[Role]) -> Result<()> {
    let ok = !login.is_empty()
        && login.len() <= 63
        && login
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.' || c == '@');
    if !ok {
        return Err(Error::invalid(format!(
            "login {:?} is not a PostgreSQL role name Custodian accepts (1-63 of letters, digits, _ - . @)",
            crate::sanitize::terminal(login)
        )));
    }
    if roles.is_empty() {
        return Err(Error::invalid("a member needs at least one --role"));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_and_unknown_is_refused() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()).unwrap(), r);
        }
        assert!(Role::parse("root").is_err());
    }

    #[test]
    fn only_the_right_roles_allow_each_action() {
        assert!(refusal(&[Role::Reviewer], Action::DecideItem).is_none());
        assert!(refusal(&[Role::Auditor], Action::DecideItem).is_some());
        assert!(refusal(&[Role::Reviewer], Action::ManageMembers).is_some());
        assert!(refusal(&[Role::Admin], Action::ManageMembers).is_none());
        assert!(refusal(&[Role::Auditor], Action::ReadEverything).is_none());
    }

    #[test]
    fn the_prefix_is_safe_and_bounded() {
        assert_eq!(role_prefix("Prod-DB").unwrap(), "custodian_prod_db_");
        let long = role_prefix(&"x".repeat(100)).unwrap();
        assert!(group_role(&long, Role::CampaignOwner).len() <= 63);
        assert!(role_prefix("--").is_err());
    }

    #[test]
    fn members_are_validated() {
        assert!(validate_member("maya", &[Role::Reviewer]).is_ok());
        assert!(validate_member("maya\"; DROP", &[Role::Reviewer]).is_err());
        assert!(validate_member("maya", &[]).is_err());
    }
}
