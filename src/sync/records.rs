//! What a source hands to the sync engine: records keyed by the source's own
//! identifiers. The store turns them into rows with stable local ids.

use chrono::{DateTime, Utc};

use crate::model::{
    AgentClass, CredentialKind, DelegationKind, IdentityKind, IdentityStatus, PersonStatus,
    Privilege, Sensitivity,
};

/// How a record refers to a person.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PersonKey {
    /// The person's id in the same source.
    ExternalId(String),
    /// An email address, matched case-insensitively across every source.
    Email(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct PersonRecord {
    pub external_id: String,
    pub display_name: String,
    pub email: String,
    pub department: String,
    pub title: String,
    pub manager: Option<PersonKey>,
    pub status: PersonStatus,
    pub left_at: Option<DateTime<Utc>>,
}

/// What the owner registered about an identity. Sources that know nothing of
/// registration leave it `None`, and what Custodian holds is kept.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Registration {
    pub purpose: String,
    pub agent_class: Option<AgentClass>,
    pub intended_blast_radius: String,
    pub review_interval_days: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IdentityRecord {
    pub external_id: String,
    pub name: String,
    pub kind: IdentityKind,
    pub agent_class: Option<AgentClass>,
    pub status: IdentityStatus,
    /// What the source says the identity is for (description, notes).
    pub description: String,
    pub owner: Option<PersonKey>,
    pub builder: Option<PersonKey>,
    pub team: String,
    pub environment: String,
    pub registration: Option<Registration>,
    pub created_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CredentialRecord {
    pub identity: String,
    pub external_id: String,
    pub kind: CredentialKind,
    pub display_name: String,
    pub created_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_rotated_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResourceRecord {
    pub external_id: String,
    pub name: String,
    pub kind: String,
    pub sensitivity: Sensitivity,
    pub environment: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GrantRecord {
    pub identity: String,
    pub resource: String,
    pub permission: String,
    pub privilege: Privilege,
    pub high_consequence: bool,
    pub last_used_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DelegationRecord {
    pub from: String,
    pub to: String,
    pub kind: DelegationKind,
}

/// Whether a fetch is the whole truth of the source or a change set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchMode {
    /// Everything the source holds: what is missing was deleted.
    Full,
    /// Only what changed since the cursor: upserts plus explicit removals.
    /// An upserted identity brings its complete credentials and grants.
    Incremental,
}

impl FetchMode {
    pub fn as_str(self) -> &'static str {
        match self {
            FetchMode::Full => "full",
            FetchMode::Incremental => "incremental",
        }
    }
}

/// The result of fetching one source.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub mode: FetchMode,
    pub people: Vec<PersonRecord>,
    pub identities: Vec<IdentityRecord>,
    pub credentials: Vec<CredentialRecord>,
    pub resources: Vec<ResourceRecord>,
    pub grants: Vec<GrantRecord>,
    pub delegations: Vec<DelegationRecord>,
    /// Incremental only: external ids removed from the source.
    pub removed_people: Vec<String>,
    pub removed_identities: Vec<String>,
    /// Where the next incremental fetch starts (delta link, timestamp...).
    pub cursor: Option<String>,
}

impl Fetched {
    pub fn new(mode: FetchMode) -> Fetched {
        Fetched {
            mode,
            people: vec![],
            identities: vec![],
            credentials: vec![],
            resources: vec![],
            grants: vec![],
            delegations: vec![],
            removed_people: vec![],
            removed_identities: vec![],
            cursor: None,
        }
    }

    pub fn item_count(&self) -> usize {
        self.people.len()
            + self.identities.len()
            + self.credentials.len()
            + self.resources.len()
            + self.grants.len()
            + self.delegations.len()
    }
}
