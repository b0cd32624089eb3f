//! The cache is encrypted at rest (SQLCipher, AES-256): it maps the
//! organisation's weak spots. Its key is 32 random bytes kept in the OS
//! keyring (service `org.custodian.desktop`, account `cache-key`), created
//! with the first cache. For headless use (CI, servers without a Secret
//! Service) `CUSTODIAN_CACHE_KEY` supplies a passphrase instead; the raw key
//! is its SHA-256. The key never reaches the cache, logs or exports.

use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorCode, Result};

pub const KEY_ENV: &str = "CUSTODIAN_CACHE_KEY";
const SERVICE: &str = "org.custodian.desktop";
const ACCOUNT: &str = "cache-key";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn is_hex_key(s: &str) -> bool {
    s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit())
}

fn keyring_error(e: keyring::Error) -> Error {
    Error::new(
        ErrorCode::Keyring,
        format!(
            "the cache key is kept in the OS keyring, which is not available ({e}); unlock or start a Secret Service \
             (gnome-keyring), or set {KEY_ENV} for headless use"
        ),
    )
}

fn from_env() -> Option<String> {
    std::env::var(KEY_ENV)
        .ok()
        .filter(|v| !v.is_empty())
        .map(|v| hex(&Sha256::digest(v.as_bytes())))
}

/// The key of an existing cache, if there is one.
pub fn existing() -> Result<Option<String>> {
    if let Some(k) = from_env() {
        return Ok(Some(k));
    }
    let entry = keyring::Entry::new(SERVICE, ACCOUNT).map_err(keyring_error)?;
    match entry.get_password() {
        Ok(k) if is_hex_key(&k) => Ok(Some(k)),
        Ok(_) => Err(Error::new(
            ErrorCode::Keyring,
            "the cache key in the OS keyring is not a key Custodian wrote",
        )),
        Err(keyring::Error::NoEntry) => Ok(None),
        Err(e) => Err(keyring_error(e)),
    }
}

/// The key for a new (or newly encrypted) cache: the existing one, else a
/// new random key, stored in the keyring before it is used.
pub fn for_new_cache() -> Result<String> {
    if let Some(k) = existing()? {
        return Ok(k);
    }
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes)
        .map_err(|e| Error::internal(format!("no randomness for the cache key: {e}")))?;
    let k = hex(&bytes);
    keyring::Entry::new(SERVICE, ACCOUNT)
        .and_then(|e| e.set_password(&k))
        .map_err(keyring_error)?;
    Ok(k)
}

/// `PRAGMA key` for a raw key (validated hex, so nothing to escape).
pub(crate) fn pragma(key: &str) -> Result<String> {
    if !is_hex_key(key) {
        return Err(Error::internal("a cache key must be 64 hex digits"));
    }
    Ok(format!("PRAGMA key = \"x'{key}'\";"))
}
