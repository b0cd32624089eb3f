//! Access-review campaigns (certifications): what a campaign is, what a
//! reviewer decides, and the recommendation rules. The store side (creating,
//! deciding, closing, evidence) is `store::campaigns`.
//!
//! Rules a reviewer can rely on:
//! - Every decision is appended to `campaign_events` and the audit log in the
//!   same transaction that records it; nothing that was decided is ever
//!   overwritten without a new event.
//! - A reviewer never certifies an identity they built (self-review): such
//!   items go to the builder's manager, else the fallback reviewer.
//! - Inactive (departed or suspended) reviewers are never assigned: their
//!   items go to the fallback reviewer, whose choice is checked at creation.
//! - A revoke or retire needs a justification, and so does keeping anything
//!   high risk.
//!
//! The rules are plain functions over plain data, each with its unit tests:
//! [`recommend`] here, who reviews in [`reviewer`], what a decision may be
//! and where it goes next in [`decide`]. Typed ids are in [`ids`].

pub mod decide;
pub mod ids;
pub mod reviewer;

pub use ids::{CampaignId, CaseId, ReviewItemId, TaskId};

use serde::{Deserialize, Serialize};

use crate::model::{AgentClass, IdentityKind, IdentityStatus, Severity};
use crate::views::OwnerState;

macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "ts", derive(ts_rs::TS))]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
            pub fn parse(s: &str) -> crate::error::Result<$name> {
                match s.trim() {
                    $($text => Ok($name::$variant),)+
                    other => Err(crate::error::Error::invalid(format!(
                        "'{other}' is not a {}; expected one of: {}",
                        stringify!($name),
                        [$($text),+].join(", ")
                    ))),
                }
            }
        }

        impl $crate::store::db::FromValue for $name {
            fn from_value(v: $crate::store::db::Value) -> std::result::Result<Self, String> {
                let s = <String as $crate::store::db::FromValue>::from_value(v)?;
                $name::parse(&s).map_err(|e| e.message)
            }
        }

        impl $crate::store::db::ToValue for $name {
            fn to_value(&self) -> $crate::store::db::Value {
                $crate::store::db::Value::Text(self.as_str().to_string())
            }
        }
    };
}

pub(crate) use text_enum;

text_enum!(
    /// Who reviews an item.
    ReviewerRule {
        /// The identity's owner.
        Owner = "owner",
        /// The owner's manager.
        OwnerManager = "owner_manager",
        /// The owner of the resource a grant is on (identity and credential
        /// items go to the identity's owner).
        ResourceOwner = "resource_owner",
        /// One named person.
        Named = "named",
    }
);

text_enum!(
    /// What a campaign certifies.
    Granularity {
        /// Each identity: keep, retire, or reassign its owner.
        Identities = "identities",
        /// Each grant (keep / revoke) and credential (keep / revoke / rotate).
        Access = "access",
        /// Both.
        All = "all",
    }
);

text_enum!(
    Recurrence {
        None = "none",
        Monthly = "monthly",
        Quarterly = "quarterly",
        SemiAnnual = "semi_annual",
        Annual = "annual",
    }
);

text_enum!(
    CampaignStatus {
        /// Starts later (a recurrence, or a future start date).
        Scheduled = "scheduled",
        Active = "active",
        Closed = "closed",
    }
);

text_enum!(
    ItemType {
        Identity = "identity",
        Grant = "grant",
        Credential = "credential",
    }
);

text_enum!(
    /// A reviewer's decision, and a recommendation.
    Decision {
        /// Certify: the access stays.
        Keep = "keep",
        /// Remove a grant or a credential.
        Revoke = "revoke",
        /// Rotate a credential.
        Rotate = "rotate",
        /// Disable the identity and revoke its credentials.
        Retire = "retire",
        /// Keep the identity under a new owner.
        Reassign = "reassign",
    }
);

text_enum!(
    /// What closing does with items nobody decided.
    UndecidedPolicy {
        Keep = "keep",
        Revoke = "revoke",
        /// Apply each item's recommendation.
        Recommendation = "recommendation",
    }
);

text_enum!(
    TaskKind {
        RevokeGrant = "revoke_grant",
        RevokeCredential = "revoke_credential",
        RotateCredential = "rotate_credential",
        DisableIdentity = "disable_identity",
        TransferOwner = "transfer_owner",
    }
);

text_enum!(
    TaskStatus {
        Open = "open",
        Done = "done",
        Failed = "failed",
    }
);

impl Decision {
    /// The decisions that apply to an item type.
    pub fn allowed_for(t: ItemType) -> &'static [Decision] {
        match t {
            ItemType::Identity => &[Decision::Keep, Decision::Retire, Decision::Reassign],
            ItemType::Grant => &[Decision::Keep, Decision::Revoke],
            ItemType::Credential => &[Decision::Keep, Decision::Revoke, Decision::Rotate],
        }
    }

    /// The decision that removes access for an item type (the `revoke` close
    /// policy).
    pub fn removal_for(t: ItemType) -> Decision {
        match t {
            ItemType::Identity => Decision::Retire,
            _ => Decision::Revoke,
        }
    }
}

impl Recurrence {
    /// Months between two runs; none for `None`.
    pub fn months(self) -> Option<u32> {
        match self {
            Recurrence::None => None,
            Recurrence::Monthly => Some(1),
            Recurrence::Quarterly => Some(3),
            Recurrence::SemiAnnual => Some(6),
            Recurrence::Annual => Some(12),
        }
    }
}

/// Which identities a campaign covers: a saved inventory filter. Empty lists
/// mean "any"; deleted identities are left out unless `statuses` asks.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(default)]
pub struct CampaignScope {
    pub search: String,
    pub kinds: Vec<IdentityKind>,
    pub statuses: Vec<IdentityStatus>,
    pub classes: Vec<AgentClass>,
    pub sources: Vec<i64>,
    pub owner_state: Option<OwnerState>,
    pub has_findings: Option<bool>,
    /// Only identities with a finding at least this severe.
    pub min_severity: Option<Severity>,
    /// Only identities not reviewed in this many days (or never).
    pub not_reviewed_days: Option<i64>,
}

/// What it takes to create a campaign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct NewCampaign {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub scope: CampaignScope,
    pub granularity: Granularity,
    pub reviewer_rule: ReviewerRule,
    /// Required for the `named` rule.
    #[serde(default)]
    pub named_reviewer: Option<i64>,
    /// Who reviews when the rule yields nobody, or someone inactive.
    pub fallback_reviewer: i64,
    /// Optional second stage: this person confirms every stage-one decision.
    #[serde(default)]
    pub second_reviewer: Option<i64>,
    #[serde(default = "default_recurrence")]
    pub recurrence: Recurrence,
    /// RFC 3339; now when absent.
    #[serde(default)]
    pub start_at: Option<String>,
    /// RFC 3339.
    pub due_at: String,
}

fn default_recurrence() -> Recurrence {
    Recurrence::None
}

/// A campaign with its progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CampaignView {
    pub id: CampaignId,
    pub name: String,
    pub description: String,
    pub scope: CampaignScope,
    pub granularity: Granularity,
    pub reviewer_rule: ReviewerRule,
    pub named_reviewer: Option<String>,
    pub fallback_reviewer: String,
    pub second_reviewer: Option<String>,
    pub recurrence: Recurrence,
    pub status: CampaignStatus,
    pub owner_id: i64,
    pub owner: String,
    pub created_at: String,
    pub start_at: String,
    pub due_at: String,
    pub closed_at: Option<String>,
    pub undecided_policy: Option<UndecidedPolicy>,
    pub items: i64,
    pub decided: i64,
    /// Pending items past the due date.
    pub overdue: i64,
    pub previous_id: Option<CampaignId>,
}

/// Counts by reviewer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ReviewerProgress {
    pub reviewer_id: Option<i64>,
    pub reviewer: String,
    pub reviewer_status: Option<crate::model::PersonStatus>,
    pub pending: i64,
    pub decided: i64,
    /// When the last reminder was recorded.
    pub last_reminded_at: Option<String>,
    /// Pending items and the campaign due within three days or past.
    pub reminder_due: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct DecisionCount {
    /// `null` for undecided.
    pub decision: Option<Decision>,
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CampaignProgress {
    pub campaign: CampaignView,
    pub by_reviewer: Vec<ReviewerProgress>,
    pub by_decision: Vec<DecisionCount>,
    /// Items whose grant, credential or identity vanished from the source.
    pub vanished: i64,
    /// The first 1,000 remediation tasks (open first); `tasks_total` counts all.
    pub tasks: Vec<TaskView>,
    pub tasks_total: i64,
    pub tasks_open: i64,
}

/// One item as a reviewer or the campaign owner sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ReviewItem {
    pub id: ReviewItemId,
    pub campaign_id: CampaignId,
    pub campaign: String,
    pub due_at: String,
    pub item_type: ItemType,
    pub identity_id: i64,
    pub subject: String,
    pub detail: String,
    pub owner_name: Option<String>,
    /// low | medium | high
    pub risk: String,
    pub recommendation: Decision,
    pub reasons: Vec<String>,
    pub reviewer_id: Option<i64>,
    pub reviewer: Option<String>,
    pub reviewer_reason: String,
    pub stage: i64,
    pub proposed: Option<Decision>,
    pub proposed_by: Option<String>,
    pub decision: Option<Decision>,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    pub by_policy: bool,
    pub justification: String,
    pub new_owner: Option<String>,
    pub vanished_at: Option<String>,
    /// The decisions this item accepts.
    pub allowed: Vec<Decision>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ReviewQueue {
    pub total: i64,
    pub pending: i64,
    pub offset: i64,
    pub items: Vec<ReviewItem>,
}

/// A reviewer's queue query.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(default)]
pub struct QueueQuery {
    pub campaign: Option<CampaignId>,
    /// Include items already decided (to revise them).
    pub include_decided: bool,
    pub item_type: Option<ItemType>,
    pub min_risk: Option<i64>,
    pub search: String,
    pub offset: i64,
    /// 0 means 200; at most 1000.
    pub limit: i64,
}

/// Decisions on one or more items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct DecisionInput {
    pub items: Vec<ReviewItemId>,
    pub decision: Decision,
    #[serde(default)]
    pub justification: String,
    /// For `reassign`: the new owner.
    #[serde(default)]
    pub new_owner: Option<i64>,
    /// Record the recommendation of each item instead of `decision`.
    #[serde(default)]
    pub follow_recommendation: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct TaskView {
    pub id: TaskId,
    pub origin: String,
    pub campaign_id: Option<CampaignId>,
    pub case_id: Option<CaseId>,
    pub item_id: Option<ReviewItemId>,
    pub kind: TaskKind,
    pub identity_id: i64,
    pub identity: String,
    pub target: String,
    pub new_owner: Option<String>,
    pub status: TaskStatus,
    pub created_at: String,
    pub updated_at: String,
    pub updated_by: String,
    pub note: String,
    /// Custodian can carry it out in its source (the source can, and is
    /// opted in to write-back) and it is not done yet.
    pub write_back: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CloseReport {
    pub campaign_id: CampaignId,
    pub decided_by_people: i64,
    pub decided_by_policy: i64,
    pub tasks: i64,
    /// The next campaign when it recurs.
    pub next_campaign: Option<CampaignId>,
}

/// What is known about an item when it is generated, for the recommendation.
#[derive(Debug, Clone, Default)]
pub struct ItemFacts {
    pub item_type: Option<ItemType>,
    pub owner_active: bool,
    pub has_owner: bool,
    pub identity_disabled: bool,
    /// Days since the identity, grant or credential was last used; `None` = never.
    pub unused_days: Option<i64>,
    pub ever_used: bool,
    pub identity_age_days: i64,
    /// Credential: days since created or rotated.
    pub credential_age_days: i64,
    pub credential_expires_in_days: Option<i64>,
    pub credential_never_expires: bool,
    /// Grant: privilege admin, or high-consequence.
    pub admin: bool,
    pub high_consequence: bool,
    /// Grant's resource sensitivity rank (1 low .. 4 critical).
    pub sensitivity: i64,
    /// Identity: number of high-consequence grants and delegation edges out.
    pub high_consequence_grants: i64,
    pub delegations_out: i64,
    pub findings: i64,
    pub max_severity: i64,
}

/// Days after which something unused should go.
pub const UNUSED_DAYS: i64 = 90;
/// Days after which a credential should have been rotated.
pub const ROTATE_DAYS: i64 = 365;

/// The recommendation for an item, its reasons, and its risk (1 low, 2
/// medium, 3 high). Every rule that fired is a reason, so a reviewer sees
/// why, not just what.
pub fn recommend(f: &ItemFacts) -> (Decision, Vec<String>, i64) {
    let mut reasons = vec![];
    let mut risk = 1;
    let unused = |what: &str, reasons: &mut Vec<String>| -> bool {
        match f.unused_days {
            None if !f.ever_used && f.identity_age_days >= 30 => {
                reasons.push(format!("{what} has never been used"));
                true
            }
            Some(d) if d >= UNUSED_DAYS => {
                reasons.push(format!("{what} not used for {d} days"));
                true
            }
            Some(d) => {
                reasons.push(format!("{what} used {d} days ago"));
                false
            }
            None => false,
        }
    };
    let decision = match f.item_type.unwrap_or(ItemType::Identity) {
        ItemType::Identity => {
            if f.has_owner && !f.owner_active {
                reasons.push("owner has departed or is suspended".into());
                risk = 3;
            } else if !f.has_owner {
                reasons.push("no owner recorded".into());
                risk = risk.max(2);
            }
            if f.high_consequence_grants > 0 {
                reasons.push(format!(
                    "blast radius: {} high-consequence grant(s), {} delegation(s) out",
                    f.high_consequence_grants, f.delegations_out
                ));
                risk = 3;
            } else if f.delegations_out > 0 {
                reasons.push(format!(
                    "can act through {} other identities",
                    f.delegations_out
                ));
                risk = risk.max(2);
            }
            if f.findings > 0 {
                reasons.push(format!(
                    "{} open finding(s), worst {}",
                    f.findings,
                    Severity::from_rank(f.max_severity).map_or("unknown", Severity::as_str)
                ));
                if f.max_severity >= 3 {
                    risk = 3;
                } else {
                    risk = risk.max(2);
                }
            }
            let stale = unused("identity", &mut reasons);
            if f.identity_disabled {
                reasons.push("already disabled in its source".into());
            }
            if stale || f.identity_disabled {
                Decision::Retire
            } else if f.has_owner && !f.owner_active {
                Decision::Reassign
            } else {
                Decision::Keep
            }
        }
        ItemType::Grant => {
            if f.high_consequence {
                reasons.push("high-consequence permission".into());
                risk = 3;
            } else if f.admin {
                reasons.push("administrative privilege".into());
                risk = 3;
            }
            if f.sensitivity >= 3 {
                reasons.push(format!(
                    "on a {} resource",
                    if f.sensitivity >= 4 {
                        "critical"
                    } else {
                        "high-sensitivity"
                    }
                ));
                risk = risk.max(2);
            }
            let stale = unused("grant", &mut reasons);
            if f.has_owner && !f.owner_active {
                reasons.push("owner has departed or is suspended".into());
                risk = 3;
            }
            if stale {
                Decision::Revoke
            } else {
                Decision::Keep
            }
        }
        ItemType::Credential => {
            let mut d = Decision::Keep;
            if let Some(e) = f.credential_expires_in_days {
                if e < 0 {
                    reasons.push(format!("expired {} days ago", -e));
                    d = Decision::Revoke;
                } else if e <= 30 {
                    reasons.push(format!("expires in {e} days"));
                    d = Decision::Rotate;
                }
            }
            if f.credential_never_expires {
                reasons.push("never expires".into());
                risk = risk.max(2);
            }
            if f.credential_age_days >= ROTATE_DAYS {
                reasons.push(format!(
                    "{} days since created or rotated",
                    f.credential_age_days
                ));
                risk = risk.max(2);
                if d == Decision::Keep {
                    d = Decision::Rotate;
                }
            }
            if unused("credential", &mut reasons) {
                d = Decision::Revoke;
            }
            if f.has_owner && !f.owner_active {
                reasons.push("owner has departed or is suspended: they may know it".into());
                risk = 3;
                if d == Decision::Keep {
                    d = Decision::Rotate;
                }
            }
            d
        }
    };
    (decision, reasons, risk)
}

pub fn risk_label(rank: i64) -> &'static str {
    match rank {
        3.. => "high",
        2 => "medium",
        _ => "low",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn facts(t: ItemType) -> ItemFacts {
        ItemFacts {
            item_type: Some(t),
            owner_active: true,
            has_owner: true,
            ever_used: true,
            unused_days: Some(3),
            identity_age_days: 400,
            credential_age_days: 10,
            sensitivity: 1,
            ..Default::default()
        }
    }

    #[test]
    fn a_used_owned_identity_is_kept_at_low_risk() {
        let (d, reasons, risk) = recommend(&facts(ItemType::Identity));
        assert_eq!(d, Decision::Keep);
        assert_eq!(risk, 1);
        assert_eq!(reasons, ["identity used 3 days ago"]);
    }

    #[test]
    fn departed_owner_means_reassign_and_high_risk() {
        let mut f = facts(ItemType::Identity);
        f.owner_active = false;
        let (d, reasons, risk) = recommend(&f);
        assert_eq!((d, risk), (Decision::Reassign, 3));
        assert!(reasons.iter().any(|r| r.contains("departed")));
    }

    #[test]
    fn unused_things_go() {
        let mut f = facts(ItemType::Grant);
        f.unused_days = Some(200);
        assert_eq!(recommend(&f).0, Decision::Revoke);
        let mut f = facts(ItemType::Identity);
        f.unused_days = None;
        f.ever_used = false;
        let (d, reasons, _) = recommend(&f);
        assert_eq!(d, Decision::Retire);
        assert!(reasons.contains(&"identity has never been used".to_string()));
        // A brand-new identity is not "never used" yet.
        f.identity_age_days = 5;
        assert_eq!(recommend(&f).0, Decision::Keep);
    }

    #[test]
    fn old_credentials_rotate_and_expired_ones_are_revoked() {
        let mut f = facts(ItemType::Credential);
        f.credential_age_days = 500;
        assert_eq!(recommend(&f).0, Decision::Rotate);
        f.credential_expires_in_days = Some(-3);
        assert_eq!(recommend(&f).0, Decision::Revoke);
        let mut f = facts(ItemType::Credential);
        f.owner_active = false;
        let (d, _, risk) = recommend(&f);
        assert_eq!(
            (d, risk),
            (Decision::Rotate, 3),
            "a departed owner may know the secret"
        );
    }

    #[test]
    fn high_consequence_grants_are_high_risk() {
        let mut f = facts(ItemType::Grant);
        f.high_consequence = true;
        f.sensitivity = 4;
        let (d, reasons, risk) = recommend(&f);
        assert_eq!((d, risk), (Decision::Keep, 3));
        assert!(reasons.contains(&"on a critical resource".to_string()));
    }

    #[test]
    fn enums_round_trip_and_name_the_choices() {
        for d in Decision::ALL {
            assert_eq!(Decision::parse(d.as_str()).unwrap(), *d);
        }
        let e = Decision::parse("approve").unwrap_err();
        assert!(e.message.contains("keep, revoke"), "{}", e.message);
        assert!(Decision::allowed_for(ItemType::Grant).contains(&Decision::Revoke));
        assert!(!Decision::allowed_for(ItemType::Grant).contains(&Decision::Retire));
    }
}
