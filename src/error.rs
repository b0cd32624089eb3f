//! One error type for the core, carrying a code the UI can act on and a
//! message a person can read.

use std::fmt;

/// What the caller can do about an error. Only codes a consumer (the UI, the
/// CLI's exit status) acts on belong here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Input from the user or a file was not acceptable; the message says why.
    InvalidInput,
    /// The thing asked for does not exist.
    NotFound,
    /// The database file cannot be read as a Custodian cache (corrupt, not SQLite, wrong key).
    DatabaseUnreadable,
    /// The database was written by a newer Custodian; it is left untouched.
    DatabaseTooNew,
    /// Any other storage failure (disk full, locked, I/O).
    Storage,
    /// A source could not be reached (DNS, refused, timeout, TLS).
    Network,
    /// A source refused the credentials (401/403): fix the secret or its permissions.
    SourceAuth,
    /// A source kept throttling past the retry budget.
    RateLimited,
    /// A source answered with an error (4xx/5xx) that retrying did not cure.
    SourceError,
    /// A source answered with something that is not what its API documents.
    MalformedResponse,
    /// An incremental cursor (delta link) expired; a full resync is needed.
    CursorExpired,
    /// The operation was cancelled by the user.
    Cancelled,
    /// No secret is stored for a source that needs one.
    SecretMissing,
    /// The OS keyring could not be used.
    Keyring,
    /// The audit log's hash chain does not verify: an entry was edited,
    /// deleted or reordered.
    AuditBroken,
    /// The database refused the action for this login (PostgreSQL
    /// privileges, row-level security or a governance rule).
    Forbidden,
    /// A concurrent change won (serialization failure, deadlock) and
    /// retrying did not cure it: try again.
    Conflict,
    /// The store is open read-only (a team workspace's offline snapshot):
    /// nothing can be changed, and nothing is queued.
    ReadOnly,
    /// The PostgreSQL server refused the login (wrong password, no such
    /// role, no `pg_hba.conf` entry).
    DatabaseAuth,
    /// A bug or an unexpected state.
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidInput => "invalid_input",
            ErrorCode::NotFound => "not_found",
            ErrorCode::DatabaseUnreadable => "database_unreadable",
            ErrorCode::DatabaseTooNew => "database_too_new",
            ErrorCode::Storage => "storage",
            ErrorCode::Network => "network",
            ErrorCode::SourceAuth => "source_auth",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::SourceError => "source_error",
            ErrorCode::MalformedResponse => "malformed_response",
            ErrorCode::CursorExpired => "cursor_expired",
            ErrorCode::Cancelled => "cancelled",
            ErrorCode::SecretMissing => "secret_missing",
            ErrorCode::Keyring => "keyring",
            ErrorCode::AuditBroken => "audit_broken",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::Conflict => "conflict",
            ErrorCode::DatabaseAuth => "database_auth",
            ErrorCode::ReadOnly => "read_only",
            ErrorCode::Internal => "internal",
        }
    }
}

/// The core's error: a code plus a readable message (with its causes folded in).
/// Serialises as `{code, message}`, the shape the UI receives.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Error::new(ErrorCode::NotFound, message)
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Error::new(ErrorCode::InvalidInput, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Error::new(ErrorCode::Internal, message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ffi::ErrorCode as Sq;
        let code = match &e {
            rusqlite::Error::SqliteFailure(f, _) => match f.code {
                Sq::NotADatabase => ErrorCode::DatabaseUnreadable,
                Sq::DatabaseCorrupt => ErrorCode::DatabaseUnreadable,
                Sq::DiskFull => {
                    return Error::new(
                        ErrorCode::Storage,
                        "the disk is full: the change was not saved and nothing was lost; free some space and try again",
                    )
                }
                Sq::ReadOnly => {
                    return Error::new(
                        ErrorCode::ReadOnly,
                        "this is a read-only copy (the team workspace's offline snapshot, or a file that cannot be written): nothing was changed, and nothing is queued; reconnect to the workspace to act",
                    )
                }
                Sq::DatabaseBusy | Sq::DatabaseLocked => {
                    return Error::new(
                        ErrorCode::Storage,
                        "the cache is busy in another Custodian window or command; try again when it has finished",
                    )
                }
                _ => ErrorCode::Storage,
            },
            rusqlite::Error::QueryReturnedNoRows => ErrorCode::NotFound,
            _ => ErrorCode::Storage,
        };
        Error::new(code, format!("database error: {e}"))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::new(ErrorCode::Storage, format!("I/O error: {e}"))
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::new(ErrorCode::Internal, format!("JSON error: {e}"))
    }
}

/// Adds a human-readable context to an error while keeping its code.
pub trait Context<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: Into<Error>> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| {
            let e: Error = e.into();
            Error::new(e.code, format!("{}: {}", what(), e.message))
        })
    }
}
