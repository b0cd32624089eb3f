//! Source secrets live only in the OS keyring (Secret Service on Linux,
//! Keychain on macOS, Credential Manager on Windows): never in SQLite, logs or
//! exports. `Secret` redacts itself in `Debug` and `Display`.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::error::{Error, ErrorCode, Result};
use crate::model::SourceId;

/// The keyring service name under which Custodian stores secrets.
pub const SERVICE: &str = "org.custodian.desktop";

/// Where secrets are kept.
pub trait SecretStore: Send + Sync {
    fn get(&self, source: SourceId) -> Result<Option<String>>;
    fn set(&self, source: SourceId, secret: &str) -> Result<()>;
    fn delete(&self, source: SourceId) -> Result<()>;
}

fn account(source: SourceId) -> String {
    format!("source-{}", source.0)
}

/// The OS keyring, through the `keyring` crate.
#[derive(Debug, Clone)]
pub struct KeyringSecrets {
    service: String,
}

impl Default for KeyringSecrets {
    fn default() -> Self {
        KeyringSecrets {
            service: SERVICE.into(),
        }
    }
}

impl KeyringSecrets {
    /// A store under another service name (tests use their own).
    pub fn with_service(service: &str) -> Self {
        KeyringSecrets {
            service: service.into(),
        }
    }

    fn entry(&self, source: SourceId) -> Result<keyring::Entry> {
        keyring::Entry::new(&self.service, &account(source)).map_err(keyring_error)
    }
}

fn keyring_error(e: keyring::Error) -> Error {
    Error::new(
        ErrorCode::Keyring,
        format!("the OS keyring is not available ({e}); on Linux a Secret Service such as gnome-keyring must be running and unlocked"),
    )
}

impl SecretStore for KeyringSecrets {
    fn get(&self, source: SourceId) -> Result<Option<String>> {
        match self.entry(source)?.get_password() {
            Ok(s) => Ok(Some(s)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(keyring_error(e)),
        }
    }

    fn set(&self, source: SourceId, secret: &str) -> Result<()> {
        if secret.is_empty() {
            return Err(Error::invalid("an empty secret cannot be stored"));
        }
        self.entry(source)?
            .set_password(secret)
            .map_err(keyring_error)
    }

    fn delete(&self, source: SourceId) -> Result<()> {
        match self.entry(source)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(keyring_error(e)),
        }
    }
}

/// An in-process store, for tests and for sources configured on the command
/// line for one run.
#[derive(Debug, Default)]
pub struct MemorySecrets(Mutex<HashMap<i64, String>>);

impl SecretStore for MemorySecrets {
    fn get(&self, source: SourceId) -> Result<Option<String>> {
        let map = self
            .0
            .lock()
            .map_err(|_| Error::internal("secret store poisoned"))?;
        Ok(map.get(&source.0).cloned())
    }
    fn set(&self, source: SourceId, secret: &str) -> Result<()> {
        let mut map = self
            .0
            .lock()
            .map_err(|_| Error::internal("secret store poisoned"))?;
        map.insert(source.0, secret.to_string());
        Ok(())
    }
    fn delete(&self, source: SourceId) -> Result<()> {
        let mut map = self
            .0
            .lock()
            .map_err(|_| Error::internal("secret store poisoned"))?;
        map.remove(&source.0);
        Ok(())
    }
}
