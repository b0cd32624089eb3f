//! Offboarding and the agent lifecycle: what a departure opens, what can be
//! decided about each thing the person owned or built, and what registering,
//! changing and retiring an identity record. The store side is
//! `store::offboarding`.
//!
//! Rules:
//! - A person is departing when any source says departed or suspended, when
//!   their leave date has passed, or when someone marked them departing (with
//!   a date). People with the same email address in several sources are one
//!   person: a case covers what any of their records owns or built.
//! - A case opens only when there is something to hand over (an identity
//!   owned or built, or review items assigned to them); it closes when every
//!   item has been applied.
//! - Ownership decided here (transfer, temporary owner, registration) is held
//!   by Custodian and wins over the source's owner until the source agrees;
//!   a task asks for the change in the source system.
//!
//! What a plan means and what applying it writes (ownership, tasks, where
//! pending reviews go) are the pure rules of [`plan`].

pub mod plan;

use serde::{Deserialize, Serialize};

use crate::campaigns::TaskView;
use crate::model::{AgentClass, IdentityKind, IdentityStatus, PersonStatus};

crate::campaigns::text_enum!(
    /// What happens to one thing a departing person owned or built.
    OffboardAction {
        /// To a new, active owner.
        Transfer = "transfer",
        /// Disable the identity and revoke its credentials.
        Retire = "retire",
        /// Keep it running under a temporary owner until a deadline.
        Keep = "keep",
    }
);

/// A suggested new owner and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct OwnerSuggestion {
    pub person_id: i64,
    pub name: String,
    pub reason: String,
}

/// What a new owner should see before accepting an identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct HandoverPreview {
    pub grants: i64,
    pub high_consequence_grants: i64,
    /// Names of high or critical resources in reach, at most 10.
    pub sensitive_resources: Vec<String>,
    pub delegations_out: i64,
    /// Titles of open findings.
    pub findings: Vec<String>,
    /// Secrets the departing person could know: rotate them on transfer.
    pub secrets: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct OffboardingItemView {
    pub id: i64,
    pub identity_id: i64,
    pub name: String,
    pub kind: IdentityKind,
    pub agent_class: Option<AgentClass>,
    pub status: IdentityStatus,
    pub source: String,
    /// owner | builder | owner+builder
    pub relation: String,
    pub credentials: i64,
    pub preview: HandoverPreview,
    pub suggestions: Vec<OwnerSuggestion>,
    pub action: Option<OffboardAction>,
    pub new_owner_id: Option<i64>,
    pub new_owner: Option<String>,
    pub until: Option<String>,
    pub rotate: bool,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    pub applied_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct OffboardingCaseSummary {
    pub id: crate::campaigns::CaseId,
    pub person_id: i64,
    pub person: String,
    pub email: String,
    pub person_status: PersonStatus,
    pub reason: String,
    pub opened_at: String,
    pub manager_id: Option<i64>,
    pub manager: Option<String>,
    /// open | closed
    pub status: String,
    pub items: i64,
    pub decided: i64,
    pub applied: i64,
    /// Review items still assigned to the departing person.
    pub pending_reviews: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct OffboardingCase {
    pub summary: OffboardingCaseSummary,
    pub items: Vec<OffboardingItemView>,
    pub tasks: Vec<TaskView>,
}

/// A plan for some items of a case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct OffboardPlan {
    /// Item ids of the case; empty = every undecided item.
    #[serde(default)]
    pub items: Vec<i64>,
    pub action: OffboardAction,
    /// Transfer: the new owner; keep: the temporary owner.
    #[serde(default)]
    pub owner: Option<i64>,
    /// Keep: until when (YYYY-MM-DD or RFC 3339).
    #[serde(default)]
    pub until: Option<String>,
    /// Transfer: rotate the secrets the departing person could know.
    #[serde(default)]
    pub rotate: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ApplyReport {
    pub case_id: crate::campaigns::CaseId,
    pub transferred: i64,
    pub retired: i64,
    pub kept: i64,
    pub tasks: i64,
    pub reviews_moved: i64,
    pub closed: bool,
}

/// What registering an identity records.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(default)]
pub struct Registration {
    pub purpose: String,
    pub agent_class: Option<AgentClass>,
    pub owner: Option<i64>,
    pub builder: Option<i64>,
    /// The data it reads or changes, in words.
    pub data_touched: String,
    /// What it may do, in the owner's words.
    pub intended_blast_radius: String,
    pub review_interval_days: Option<i64>,
}

/// One entry of an identity's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct TimelineEntry {
    pub at: String,
    /// sync | governance | review | task
    pub source: String,
    pub kind: String,
    pub actor: String,
    pub summary: String,
}

/// A direct report as their manager sees them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct TeamMember {
    pub person_id: i64,
    pub name: String,
    pub email: String,
    pub title: String,
    pub status: PersonStatus,
    pub left_at: Option<String>,
    pub departing_on: Option<String>,
    pub owns: i64,
    pub case_id: Option<crate::campaigns::CaseId>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct TeamView {
    pub manager_id: i64,
    pub members: Vec<TeamMember>,
    /// Open cases the manager decides.
    pub cases: Vec<OffboardingCaseSummary>,
    /// Items awaiting the manager's decision in open cases.
    pub undecided_items: i64,
    /// The manager's pending access-review items.
    pub pending_reviews: i64,
}
