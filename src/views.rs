//! Read models: what the CLI prints with `--json` and the desktop UI receives.
//!
//! These are the transport DTOs of the core. They are serialisable, stable in
//! shape (new fields are added, none renamed), and exported to TypeScript
//! (`ui/src/bindings.ts`) with the `ts` feature.

use serde::{Deserialize, Serialize};

use crate::model::{
    AgentClass, CredentialKind, DelegationKind, IdentityKind, IdentityStatus, PersonStatus,
    Privilege, Sensitivity, Severity,
};

/// Columns the inventory can be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum SortKey {
    #[default]
    Name,
    Kind,
    Status,
    Owner,
    Source,
    Credentials,
    OldestCredential,
    Grants,
    Risk,
    LastUsed,
    Created,
}

/// Whose ownership state to filter on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum OwnerState {
    /// The owner is an active person.
    Owned,
    /// The owner departed or is suspended.
    Departed,
    /// No owner recorded.
    None,
}

/// A query over the inventory. Empty lists mean "any".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(default)]
pub struct InventoryQuery {
    /// Full-text search over names, purposes, owners, external ids and teams.
    pub search: String,
    pub kinds: Vec<IdentityKind>,
    pub statuses: Vec<IdentityStatus>,
    pub classes: Vec<AgentClass>,
    pub sources: Vec<i64>,
    /// Only identities owned by this person.
    pub owner: Option<i64>,
    pub owner_state: Option<OwnerState>,
    /// `Some(true)`: only identities with findings; `Some(false)`: only without.
    pub has_findings: Option<bool>,
    pub sort: SortKey,
    pub descending: bool,
    pub offset: u32,
    /// Page size; 0 means the default (100). At most 1000.
    pub limit: u32,
}

/// One row of the inventory table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct InventoryRow {
    pub id: i64,
    pub name: String,
    pub kind: IdentityKind,
    pub agent_class: Option<AgentClass>,
    pub status: IdentityStatus,
    pub owner_id: Option<i64>,
    pub owner_name: Option<String>,
    pub owner_status: Option<PersonStatus>,
    pub source: String,
    pub team: String,
    pub registered: bool,
    pub credential_count: i64,
    /// Days since the oldest credential was created or last rotated.
    pub oldest_credential_days: Option<i64>,
    pub grant_count: i64,
    pub finding_count: i64,
    pub max_severity: Option<Severity>,
    /// RFC 3339.
    pub last_used_at: Option<String>,
}

/// A page of the inventory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct InventoryPage {
    /// Rows matching the query, all pages together.
    pub total: i64,
    pub offset: u32,
    pub rows: Vec<InventoryRow>,
}

/// A value and how many identities have it, for filter menus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct FacetCount {
    pub value: String,
    pub label: String,
    pub count: i64,
}

/// Counts per filterable value over the whole inventory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct InventoryFacets {
    pub kinds: Vec<FacetCount>,
    pub statuses: Vec<FacetCount>,
    pub classes: Vec<FacetCount>,
    pub sources: Vec<FacetCount>,
    pub owner_states: Vec<FacetCount>,
    pub with_findings: i64,
    pub total: i64,
}

/// A person, as shown next to an identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PersonRef {
    pub id: i64,
    pub display_name: String,
    pub email: String,
    pub title: String,
    pub department: String,
    pub status: PersonStatus,
    pub left_at: Option<String>,
    pub manager_id: Option<i64>,
    pub manager_name: Option<String>,
}

/// A credential's metadata with its ages, as of the query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CredentialView {
    pub id: i64,
    pub kind: CredentialKind,
    pub display_name: String,
    pub external_id: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub last_rotated_at: Option<String>,
    pub last_used_at: Option<String>,
    /// Days since created or last rotated.
    pub age_days: i64,
    /// Negative once expired; `None` when it never expires.
    pub expires_in_days: Option<i64>,
    pub last_used_days: Option<i64>,
}

/// A grant with its resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct GrantView {
    pub resource_id: i64,
    pub resource_name: String,
    pub resource_kind: String,
    pub sensitivity: Sensitivity,
    pub environment: String,
    pub permission: String,
    pub privilege: Privilege,
    pub high_consequence: bool,
    pub last_used_at: Option<String>,
}

/// A delegation edge seen from one end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct DelegationView {
    pub kind: DelegationKind,
    /// The identity at the other end.
    pub other_id: i64,
    pub other_name: String,
    pub other_kind: IdentityKind,
}

/// A posture finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct FindingView {
    pub check_id: String,
    pub owasp: String,
    pub owasp_title: String,
    pub severity: Severity,
    pub title: String,
    pub evidence: String,
    pub fix: String,
}

/// Everything about one identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct IdentityDetail {
    pub id: i64,
    pub name: String,
    pub external_id: String,
    pub kind: IdentityKind,
    pub agent_class: Option<AgentClass>,
    pub status: IdentityStatus,
    pub purpose: String,
    pub source: String,
    pub team: String,
    pub environment: String,
    pub registered: bool,
    pub intended_blast_radius: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub last_reviewed_at: Option<String>,
    pub owner: Option<PersonRef>,
    pub builder: Option<PersonRef>,
    pub credentials: Vec<CredentialView>,
    pub grants: Vec<GrantView>,
    pub delegations_out: Vec<DelegationView>,
    pub delegations_in: Vec<DelegationView>,
    pub findings: Vec<FindingView>,
    /// Custodian signs in to its source as this identity (the source's
    /// `signed_in_as`): its own access, governed like any other.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(as = "Option<bool>", optional))]
    pub custodian_signs_in: bool,
}

/// Headline figures of the cache.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct OrgSummary {
    /// Where the cache lives, or `null` when in memory.
    pub database: Option<String>,
    /// e.g. `demo-s` for the bundled demo organisation.
    pub dataset: Option<String>,
    pub sources: Vec<String>,
    pub people: i64,
    pub identities: i64,
    pub credentials: i64,
    pub grants: i64,
    pub delegations: i64,
    pub findings: i64,
}

/// An OWASP Non-Human Identities Top 10 (2025) category.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct OwaspCategoryView {
    /// e.g. `NHI7`.
    pub code: String,
    /// e.g. `Long-Lived Secrets`.
    pub title: String,
}

/// One posture check: what it finds and how to fix it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct FindingCheckView {
    /// Stable identifier, as on findings (`check_id`).
    pub id: String,
    pub owasp: String,
    pub owasp_title: String,
    pub severity: Severity,
    pub title: String,
    pub fix: String,
}

/// Every posture check and every OWASP NHI category, in catalogue order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct FindingCatalogue {
    pub categories: Vec<OwaspCategoryView>,
    pub checks: Vec<FindingCheckView>,
}

/// One setting of a kind of source, as the Sources form shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SourceSettingView {
    /// The key in the source's settings, e.g. `base_url`.
    pub key: String,
    /// e.g. `Base URL`.
    pub label: String,
    #[serde(rename = "type")]
    pub ty: crate::sync::settings::SettingType,
    pub required: bool,
    /// The default when absent, as text.
    pub default: Option<String>,
    /// What the setting is for (the CLI's help text too).
    pub help: String,
    /// Does the key name a secret (`sanitize::is_secret_key`)? Such a value
    /// belongs in the keyring, and is redacted wherever settings are shown.
    pub secret: bool,
    /// Turns on a keyless sign-in mode (a GitHub App, an Okta service app):
    /// optional, but the form offers it first, with the required settings.
    pub sign_in: bool,
}

/// A kind of source this build knows: what the Sources view builds its add
/// form, labels and write-back toggle from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SourceKindView {
    /// e.g. `scim`, as on `SourceView::kind`.
    pub kind: String,
    pub label: String,
    /// One line about what the source reads.
    pub about: String,
    /// Does it keep a secret in the OS keyring?
    pub needs_secret: bool,
    /// What the secret is (`bearer token`); empty when it needs none.
    pub secret: String,
    /// The bool setting that makes the source sign in as a person with a
    /// device code (Entra's `delegated`): the Sources view offers "Sign in"
    /// for a source where it is on. `None`: the kind has no such sign-in.
    pub device_sign_in: Option<String>,
    /// Its own settings in form order (not `write_back`, which has its toggle).
    pub settings: Vec<SourceSettingView>,
    /// The remediation tasks it can carry out when opted in to write-back
    /// (`writeback::supports`); empty when it cannot write back.
    pub write_back: Vec<crate::campaigns::TaskKind>,
}
