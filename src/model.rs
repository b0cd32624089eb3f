//! The domain model: people, identities (agents and other NHIs), credentials,
//! resources, grants and delegations.
//!
//! Types here are plain data. They know nothing of SQLite (see `store`) or of
//! any transport (see `ops` for the DTOs the CLI and the desktop shell share).

use std::fmt;

use std::str::FromStr;

use chrono::{DateTime, Utc};

use crate::error::{Error, ErrorCode};

/// Defines an `i64` newtype ID with `Display`, `FromStr`, ordering and hashing.
macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self, Error> {
                s.trim().parse::<i64>().map($name).map_err(|_| {
                    Error::new(ErrorCode::InvalidInput, format!("'{s}' is not a valid {}", stringify!($name)))
                })
            }
        }

        impl $crate::store::db::ToValue for $name {
            fn to_value(&self) -> $crate::store::db::Value {
                $crate::store::db::Value::Int(self.0)
            }
        }

        impl $crate::store::db::FromValue for $name {
            fn from_value(v: $crate::store::db::Value) -> std::result::Result<Self, String> {
                <i64 as $crate::store::db::FromValue>::from_value(v).map($name)
            }
        }
    };
}

id_type!(
    /// A person (human) known to some source.
    PersonId
);
id_type!(
    /// An identity: an AI agent or another non-human identity.
    IdentityId
);
id_type!(
    /// A credential that an identity authenticates with.
    CredentialId
);
id_type!(
    /// Something that can be accessed: a bucket, a database, a repository, an API.
    ResourceId
);
id_type!(
    /// An identity source (Entra ID tenant, AWS account, the demo organisation...).
    SourceId
);
id_type!(
    /// A finding raised by the posture checks.
    FindingId
);

/// Defines a string-backed enum with a stable snake_case spelling used in
/// SQLite, JSON and the CLI alike.
macro_rules! str_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        #[cfg_attr(feature = "ts", derive(ts_rs::TS))]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self, Error> {
                match s.trim() {
                    $($text => Ok($name::$variant),)+
                    other => Err(Error::new(
                        ErrorCode::InvalidInput,
                        format!(
                            "'{other}' is not a valid {}; expected one of: {}",
                            stringify!($name),
                            [$($text),+].join(", ")
                        ),
                    )),
                }
            }
        }

        impl $crate::store::db::ToValue for $name {
            fn to_value(&self) -> $crate::store::db::Value {
                $crate::store::db::Value::Text(self.as_str().to_string())
            }
        }

        impl $crate::store::db::FromValue for $name {
            fn from_value(v: $crate::store::db::Value) -> std::result::Result<Self, String> {
                let s = <String as $crate::store::db::FromValue>::from_value(v)?;
                s.parse().map_err(|e: Error| e.message)
            }
        }
    };
}

str_enum!(
    /// What sort of non-human identity this is.
    IdentityKind {
        AiAgent = "ai_agent",
        ServiceAccount = "service_account",
        OauthApp = "oauth_app",
        ApiKey = "api_key",
        Workload = "workload",
        Bot = "bot",
    }
);

str_enum!(
    /// The class of an AI agent, by whom it acts for and how autonomously.
    AgentClass {
        /// Built by one person for their own work.
        Personal = "personal",
        /// Serves customers or the public.
        ConsumerAssistant = "consumer_assistant",
        /// Assists employees, acting on their behalf.
        WorkforceAssistant = "workforce_assistant",
        /// Runs a business process autonomously, under its own identity.
        DigitalWorker = "digital_worker",
    }
);

str_enum!(
    /// Lifecycle status of an identity in its source.
    IdentityStatus {
        Active = "active",
        Disabled = "disabled",
        Deleted = "deleted",
    }
);

str_enum!(
    /// Employment / account status of a person.
    PersonStatus {
        Active = "active",
        Suspended = "suspended",
        Departed = "departed",
    }
);

str_enum!(
    /// How an identity authenticates.
    CredentialKind {
        ClientSecret = "client_secret",
        Certificate = "certificate",
        AccessKey = "access_key",
        ApiToken = "api_token",
        Password = "password",
        SshKey = "ssh_key",
        PersonalAccessToken = "personal_access_token",
        FederatedCredential = "federated_credential",
    }
);

str_enum!(
    /// How bad it would be if a resource were misused.
    Sensitivity {
        Low = "low",
        Medium = "medium",
        High = "high",
        Critical = "critical",
    }
);

str_enum!(
    /// The level of a permission.
    Privilege {
        Read = "read",
        Write = "write",
        Admin = "admin",
    }
);

str_enum!(
    /// How one identity can act as, or through, another.
    DelegationKind {
        AssumeRole = "assume_role",
        Invoke = "invoke",
        OnBehalfOf = "on_behalf_of",
        Impersonate = "impersonate",
        /// Can add a credential to the other (an owner of an Entra
        /// application or service principal, an IAM user allowed to create
        /// another's access keys), then sign in as it.
        AddCredential = "add_credential",
    }
);

str_enum!(
    /// Severity of a finding.
    Severity {
        Low = "low",
        Medium = "medium",
        High = "high",
        Critical = "critical",
    }
);

impl Severity {
    /// Numeric rank, 1 (low) to 4 (critical); stored for sorting.
    pub fn rank(self) -> i64 {
        match self {
            Severity::Low => 1,
            Severity::Medium => 2,
            Severity::High => 3,
            Severity::Critical => 4,
        }
    }

    pub fn from_rank(rank: i64) -> Option<Severity> {
        match rank {
            1 => Some(Severity::Low),
            2 => Some(Severity::Medium),
            3 => Some(Severity::High),
            4 => Some(Severity::Critical),
            _ => None,
        }
    }
}

/// An identity source as configured (secrets are never part of it).
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub id: SourceId,
    pub kind: String,
    pub name: String,
}

/// A person. Owners, builders and reviewers are people.
#[derive(Debug, Clone, PartialEq)]
pub struct Person {
    pub id: PersonId,
    pub source: SourceId,
    pub external_id: String,
    pub display_name: String,
    pub email: String,
    pub department: String,
    pub title: String,
    pub manager: Option<PersonId>,
    pub status: PersonStatus,
    /// When the person left, or is due to leave.
    pub left_at: Option<DateTime<Utc>>,
}

/// An AI agent or other non-human identity.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    pub id: IdentityId,
    pub source: SourceId,
    /// The identifier in the source (object id, ARN, client id...).
    pub external_id: String,
    pub name: String,
    pub kind: IdentityKind,
    /// Only for `IdentityKind::AiAgent`.
    pub agent_class: Option<AgentClass>,
    pub status: IdentityStatus,
    pub purpose: String,
    pub builder: Option<PersonId>,
    pub owner: Option<PersonId>,
    pub team: String,
    pub environment: String,
    /// Registered by its owner (true) or only discovered in a source (false).
    pub registered: bool,
    /// The owner's own words for what this identity should be able to do.
    pub intended_blast_radius: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub last_reviewed_at: Option<DateTime<Utc>>,
}

/// A credential held by an identity. Only metadata: secret values are never stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Credential {
    pub id: CredentialId,
    pub identity: IdentityId,
    pub external_id: String,
    pub kind: CredentialKind,
    pub display_name: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_rotated_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// Something an identity can be granted access to.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub id: ResourceId,
    pub source: SourceId,
    pub external_id: String,
    pub name: String,
    /// Free-form type: `s3_bucket`, `database`, `repository`, `payments_api`...
    pub kind: String,
    pub sensitivity: Sensitivity,
    pub environment: String,
    /// Who answers for the resource (data owner); reviews of grants on it can
    /// go to them.
    pub owner: Option<PersonId>,
}

/// One permission of an identity on a resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    pub identity: IdentityId,
    pub resource: ResourceId,
    pub permission: String,
    pub privilege: Privilege,
    /// Irreversible or dangerous: writes to data stores, payments, messaging, IAM changes.
    pub high_consequence: bool,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// An edge: `from` can act as, or through, `to`.
#[derive(Debug, Clone, PartialEq)]
pub struct Delegation {
    pub from: IdentityId,
    pub to: IdentityId,
    pub kind: DelegationKind,
    /// The condition the edge holds under, readable; `None`: always.
    pub condition: Option<String>,
    /// Why the edge exists when its kind alone does not say.
    pub reason: Option<String>,
}

impl Delegation {
    /// An unconditional edge with no stated reason.
    pub fn new(from: IdentityId, to: IdentityId, kind: DelegationKind) -> Self {
        Delegation {
            from,
            to,
            kind,
            condition: None,
            reason: None,
        }
    }
}

/// A whole organisation as one value: what a generator or an import produces
/// and what `store::Store::replace_org` loads in one transaction.
///
/// IDs inside are local to the value (`id.0` is an index + 1 into the vectors),
/// and the store keeps them as they are.
#[derive(Debug, Clone, Default)]
pub struct OrgSnapshot {
    pub sources: Vec<Source>,
    pub people: Vec<Person>,
    pub identities: Vec<Identity>,
    pub credentials: Vec<Credential>,
    pub resources: Vec<Resource>,
    pub grants: Vec<Grant>,
    pub delegations: Vec<Delegation>,
}
