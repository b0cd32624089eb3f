//! The cache is encrypted at rest (SQLCipher, AES-256): it maps the
//! organisation's weak spots. Its key comes in one of two forms
//! ([`CacheKey`]), so nothing can take one for the other:
//! - **Raw**: 32 random bytes kept in the OS keyring (service
//!   `org.custodian.desktop`, account `cache-key`), created with the first
//!   cache and given to SQLCipher as a raw key (`x'..'`): a random key needs
//!   no key derivation.
//! - **Passphrase**: for headless use (CI, servers without a Secret
//!   Service) `CUSTODIAN_CACHE_KEY` supplies a passphrase, which SQLCipher
//!   turns into the key with its own KDF ([`CACHE_KDF`]: PBKDF2-HMAC-SHA512,
//!   256,000 iterations, over the cache file's own random salt). That is
//!   paid once per open: [`Store::open`](super::Store::open) keeps one
//!   connection.
//!
//! Earlier versions used the passphrase's unsalted SHA-256 as the raw key
//! ([`CacheKey::legacy`]), far cheaper to guess. A cache still keyed that way
//! opens with the same passphrase and is rekeyed to the passphrase form on
//! that open (`store::open_keyed`), with a `cache.rekey` audit entry.
//!
//! The key never reaches the cache, logs or exports; `Debug` is redacted.
//!
//! **A passphrase given at run time.** Where no Secret Service runs, the
//! desktop app asks for a passphrase in its own window instead
//! ([`KeySource::Passphrase`], through `ops::open_or_demo_with_key`): the
//! same passphrase form as `CUSTODIAN_CACHE_KEY`, so the CLI opens that
//! cache with the variable set to it. A cache created that way gets a
//! marker next to it, `<cache>.key-mode` ([`key_mode_path`]), holding the
//! word `passphrase` and nothing secret: the next start asks for the
//! passphrase directly and never tries the keyring, whose random key could
//! not open it anyway. Without a marker the keyring is the default. Once a
//! passphrase has opened the cache, the process keeps it
//! ([`session_passphrase`]) for reopening (Settings, Retry) and for the
//! audit signing key, which then comes from it as from `CUSTODIAN_CACHE_KEY`
//! ([`audit_key`]). While no passphrase is known, opening a marked cache
//! fails with `keyring` ([`passphrase_needed`]), the code the app answers
//! with its unlock window.

use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorCode, Result};

pub const KEY_ENV: &str = "CUSTODIAN_CACHE_KEY";
const SERVICE: &str = "org.custodian.desktop";
const ACCOUNT: &str = "cache-key";

/// SQLCipher's KDF for a passphrase, as the bundled SQLCipher 4 applies it
/// (its defaults: Custodian sets no `cipher_*` pragma).
pub const CACHE_KDF: &str = "PBKDF2-HMAC-SHA512, 256,000 iterations, per-file random salt";

use crate::hex::encode as hex;

fn is_hex_key(s: &str) -> bool {
    s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit())
}

/// A cache key as SQLCipher receives it.
#[derive(Clone, PartialEq, Eq)]
pub enum CacheKey {
    /// 64 hex digits: the key itself (the keyring's random key).
    Raw(String),
    /// A passphrase: SQLCipher derives the key ([`CACHE_KDF`]).
    Passphrase(String),
}

impl std::fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CacheKey::Raw(_) => f.write_str("CacheKey::Raw(..)"),
            CacheKey::Passphrase(_) => f.write_str("CacheKey::Passphrase(..)"),
        }
    }
}

/// SQLCipher reads a key string of the form `x'<64 or 96 hex digits>'` as a
/// raw key (and salt) and skips its KDF: such a "passphrase" would be a raw
/// key in disguise.
fn looks_raw(p: &str) -> bool {
    let b = p.as_bytes();
    (b.len() == 67 || b.len() == 99)
        && b[..2].eq_ignore_ascii_case(b"x'")
        && b[2..b.len() - 1].iter().all(u8::is_ascii_hexdigit)
}

/// `s` as an SQL string literal: single quotes doubled.
fn sql_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

impl CacheKey {
    /// A raw key: exactly 64 hex digits.
    pub fn raw(hex_key: &str) -> Result<CacheKey> {
        if !is_hex_key(hex_key) {
            return Err(Error::internal("a raw cache key must be 64 hex digits"));
        }
        Ok(CacheKey::Raw(hex_key.to_ascii_lowercase()))
    }

    /// A passphrase, taken byte for byte (not trimmed: the legacy
    /// derivation hashed it as given). Refused: an empty one, one with a
    /// NUL (it cannot be passed whole), and one SQLCipher would read as a
    /// raw key.
    pub fn passphrase(p: &str) -> Result<CacheKey> {
        checked_passphrase(p, KEY_ENV)
    }

    pub fn is_passphrase(&self) -> bool {
        matches!(self, CacheKey::Passphrase(_))
    }

    /// The key as an SQL string literal for `PRAGMA key`, `PRAGMA rekey`
    /// and `ATTACH ... KEY`: `'x''<hex>'''` for a raw key, the quoted
    /// passphrase (quotes doubled) otherwise.
    pub(crate) fn sql_literal(&self) -> String {
        match self {
            CacheKey::Raw(h) => sql_string(&format!("x'{h}'")),
            CacheKey::Passphrase(p) => sql_string(p),
        }
    }

    /// `PRAGMA key = ...;` (the first statement on a connection).
    pub fn pragma(&self) -> String {
        format!("PRAGMA key = {};", self.sql_literal())
    }

    /// `PRAGMA rekey = ...;`: rewrites every page under this key.
    pub(crate) fn rekey_pragma(&self) -> String {
        format!("PRAGMA rekey = {};", self.sql_literal())
    }

    /// The raw key earlier Custodian versions derived from this passphrase
    /// (its unsalted SHA-256), to open and migrate their caches. None for a
    /// raw key.
    pub fn legacy(&self) -> Option<CacheKey> {
        match self {
            CacheKey::Raw(_) => None,
            CacheKey::Passphrase(p) => Some(CacheKey::Raw(hex(&Sha256::digest(p.as_bytes())))),
        }
    }
}

/// The shortest passphrase the app lets a user choose (characters).
pub const MIN_PASSPHRASE_CHARS: usize = 12;

/// Where the key of a cache comes from when it is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `CUSTODIAN_CACHE_KEY`, else the passphrase this process was unlocked
    /// with, else (unless the cache is marked passphrase-keyed) the keyring.
    Default,
    /// A passphrase given at run time (the app's unlock window).
    Passphrase(CacheKey),
}

/// Checks `p` as a passphrase SQLCipher can take whole; `what` names it in
/// the refusal.
fn checked_passphrase(p: &str, what: &str) -> Result<CacheKey> {
    if p.is_empty() {
        return Err(Error::invalid(format!("{what} is empty")));
    }
    if p.contains('\0') {
        return Err(Error::invalid(format!(
            "{what} contains a NUL character, which SQLCipher cannot take as part of a passphrase"
        )));
    }
    if looks_raw(p) {
        return Err(Error::invalid(format!(
            "{what} is written like a raw SQLCipher key (x'<hex>'), which would skip the key derivation; \
             use a passphrase"
        )));
    }
    Ok(CacheKey::Passphrase(p.to_string()))
}

impl CacheKey {
    /// The passphrase a user typed to open an existing cache (no length
    /// rule: it only has to be the one the cache was made with).
    pub fn entered(p: &str) -> Result<CacheKey> {
        checked_passphrase(p, "the passphrase")
    }

    /// A passphrase a user chooses for a new cache, typed twice: at least
    /// [`MIN_PASSPHRASE_CHARS`] characters, both the same.
    pub fn chosen(p: &str, again: &str) -> Result<CacheKey> {
        if p.chars().count() < MIN_PASSPHRASE_CHARS {
            return Err(Error::invalid(format!(
                "the passphrase is too short: use at least {MIN_PASSPHRASE_CHARS} characters (a few words are easier to remember)"
            )));
        }
        if p != again {
            return Err(Error::invalid(
                "the two passphrases are not the same: type the same passphrase twice",
            ));
        }
        checked_passphrase(p, "the passphrase")
    }
}

// ------------------------------------------ passphrase given at run time ---

/// The marker next to a cache keyed by a passphrase given at run time:
/// `<cache file>.key-mode`, e.g. `custodian.db.key-mode`.
pub fn key_mode_path(cache: &std::path::Path) -> std::path::PathBuf {
    let mut name = cache.as_os_str().to_os_string();
    name.push(".key-mode");
    std::path::PathBuf::from(name)
}

const MARKER_PASSPHRASE: &str = "passphrase";

/// Whether the marker says the cache at `cache` is keyed by a passphrase.
/// No marker: false (the keyring, or `CUSTODIAN_CACHE_KEY`). A marker that
/// says anything else is refused rather than guessed at.
pub fn marked_passphrase(cache: &std::path::Path) -> Result<bool> {
    let marker = key_mode_path(cache);
    match std::fs::read_to_string(&marker) {
        Ok(t) if t.trim() == MARKER_PASSPHRASE => Ok(true),
        Ok(_) => Err(Error::new(
            ErrorCode::DatabaseUnreadable,
            format!(
                "{} does not say how the cache is keyed (it should hold the word `{MARKER_PASSPHRASE}`); \
                 remove it to use the OS keyring",
                marker.display()
            ),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::new(
            ErrorCode::Storage,
            format!("cannot read {}: {e}", marker.display()),
        )),
    }
}

/// Writes the marker (atomically: a temporary file renamed over it).
pub fn mark_passphrase(cache: &std::path::Path) -> Result<()> {
    let marker = key_mode_path(cache);
    let mut tmp = marker.as_os_str().to_os_string();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    std::fs::write(&tmp, format!("{MARKER_PASSPHRASE}\n"))
        .and_then(|()| std::fs::rename(&tmp, &marker))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Error::new(
                ErrorCode::Storage,
                format!("cannot write {}: {e}", marker.display()),
            )
        })
}

/// The error for a marked cache while no passphrase is known: `keyring`,
/// since the key is not to be had from the keyring (the app answers it with
/// its unlock window; the CLI needs `CUSTODIAN_CACHE_KEY`).
pub fn passphrase_needed(cache: &std::path::Path) -> Error {
    Error::new(
        ErrorCode::Keyring,
        format!(
            "{} is protected by a passphrase (see {}), not by a key in the OS keyring: enter it in the app, \
             or set {KEY_ENV} to it",
            cache.display(),
            key_mode_path(cache).display()
        ),
    )
}

thread_local! {
    /// The key [`with_key`] gives the open under way on this thread.
    static OPENING: std::cell::RefCell<Option<CacheKey>> = const { std::cell::RefCell::new(None) };
}

fn session() -> &'static std::sync::Mutex<Option<CacheKey>> {
    static SESSION: std::sync::OnceLock<std::sync::Mutex<Option<CacheKey>>> =
        std::sync::OnceLock::new();
    SESSION.get_or_init(|| std::sync::Mutex::new(None))
}

/// Runs `f` (an open) with `key` as the cache key on this thread: it comes
/// before `CUSTODIAN_CACHE_KEY` and the keyring in [`existing`] and
/// [`for_new_cache`], and gives the audit key ([`audit_key`]), until `f`
/// returns. Nothing is kept: a passphrase that turns out wrong is gone.
pub fn with_key<T>(key: &CacheKey, f: impl FnOnce() -> T) -> T {
    struct Reset(Option<CacheKey>);
    impl Drop for Reset {
        fn drop(&mut self) {
            let prev = self.0.take();
            OPENING.with(|o| *o.borrow_mut() = prev);
        }
    }
    let prev = OPENING.with(|o| o.borrow_mut().replace(key.clone()));
    let _reset = Reset(prev);
    f()
}

fn opening() -> Option<CacheKey> {
    OPENING.with(|o| o.borrow().clone())
}

/// Keeps the passphrase that opened the cache for the rest of the process
/// (reopening, and the audit key), after `CUSTODIAN_CACHE_KEY`, which wins.
pub fn remember_passphrase(key: &CacheKey) {
    if let Ok(mut s) = session().lock() {
        *s = Some(key.clone());
    }
}

/// The passphrase this process was unlocked with, if any.
pub fn session_passphrase() -> Option<CacheKey> {
    session().lock().ok().and_then(|s| s.clone())
}

/// The key an open of the store at `location` runs under ([`with_key`]),
/// or None for the default order ([`existing`]). A cache marked
/// passphrase-keyed while no passphrase is known is refused here, before
/// the keyring is asked ([`passphrase_needed`]).
pub fn opening_key(location: &super::Location, source: &KeySource) -> Result<Option<CacheKey>> {
    match (source, location) {
        (KeySource::Passphrase(_), super::Location::Postgres(_)) => Err(Error::invalid(
            "a team workspace is not encrypted with a cache passphrase; its login's password is in Settings",
        )),
        (KeySource::Passphrase(k), super::Location::File(_)) => Ok(Some(k.clone())),
        (KeySource::Default, super::Location::File(path)) => {
            if from_env()?.is_none() && session_passphrase().is_none() && marked_passphrase(path)? {
                return Err(passphrase_needed(path));
            }
            Ok(None)
        }
        (KeySource::Default, super::Location::Postgres(_)) => Ok(None),
    }
}

/// After `key` (from [`opening_key`]) opened the cache at `location`:
/// marks the cache passphrase-keyed (best effort: without the marker the
/// next start tries the keyring first, fails, and asks all the same) and
/// keeps the passphrase for the process.
pub fn opened_with(location: &super::Location, key: &CacheKey) {
    if let super::Location::File(path) = location {
        let marked = marked_passphrase(path).unwrap_or(false);
        if !marked && key.is_passphrase() {
            if let Err(e) = mark_passphrase(path) {
                tracing::warn!(error = %e, "could not mark the cache as passphrase-keyed");
            }
        }
    }
    remember_passphrase(key);
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

fn from_env() -> Result<Option<CacheKey>> {
    match std::env::var(KEY_ENV) {
        Ok(v) if !v.is_empty() => CacheKey::passphrase(&v).map(Some),
        _ => Ok(None),
    }
}

/// The key of an existing cache, if there is one.
/// In order: the key of the open under way ([`with_key`]),
/// `CUSTODIAN_CACHE_KEY`, the passphrase this process was unlocked with
/// ([`remember_passphrase`]), the keyring.
pub fn existing() -> Result<Option<CacheKey>> {
    if let Some(k) = opening() {
        return Ok(Some(k));
    }
    if let Some(k) = from_env()? {
        return Ok(Some(k));
    }
    if let Some(k) = session_passphrase() {
        return Ok(Some(k));
    }
    let entry = keyring::Entry::new(SERVICE, ACCOUNT).map_err(keyring_error)?;
    match entry.get_password() {
        Ok(k) if is_hex_key(&k) => CacheKey::raw(&k).map(Some),
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
pub fn for_new_cache() -> Result<CacheKey> {
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
    CacheKey::raw(&k)
}

// ------------------------------------------------------- audit signing key ---

/// The audit signing key for a team workspace (PostgreSQL), or to override
/// the default anywhere: a path to a file holding the key, or the key
/// itself. 64 hex digits are used as the raw key; anything else is a
/// passphrase (PBKDF2, see [`AuditKey::from_passphrase`]).
pub const AUDIT_KEY_ENV: &str = "CUSTODIAN_AUDIT_KEY";
const AUDIT_ACCOUNT: &str = "audit-key";
/// The salt of the passphrase KDF: distinct from the cache key's, so the
/// audit key is not the cache key even when both come from one passphrase.
const AUDIT_SALT: &[u8] = b"org.custodian.audit-key/v1";
/// PBKDF2-HMAC-SHA-256 iterations for a passphrase: about the work of
/// SQLCipher's KDF on the cache key (256,000 x PBKDF2-HMAC-SHA-512), so
/// neither is the cheaper way to guess a shared passphrase.
pub const AUDIT_KDF_ITERATIONS: u32 = 310_000;

type HmacSha256 = hmac::Hmac<Sha256>;

/// The key that signs the audit log's head (HMAC-SHA-256). It is kept
/// outside the database: whoever can write the database but lacks this key
/// cannot make a tampered log verify. Redacted in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct AuditKey([u8; 32]);

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuditKey(id {})", self.id())
    }
}

fn mac(key: &[u8]) -> HmacSha256 {
    use hmac::digest::KeyInit;
    // HMAC's own key schedule (RFC 2104): a key longer than the block is
    // hashed, then zero-padded to the block. Done here so construction is
    // infallible (a block-sized key).
    let mut block = [0u8; 64];
    if key.len() > block.len() {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    <HmacSha256 as KeyInit>::new(&block.into())
}

/// PBKDF2-HMAC-SHA-256 (RFC 8018), one 32-byte block.
pub fn pbkdf2_sha256(passphrase: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    use hmac::Mac;
    let base = mac(passphrase);
    let mut m = base.clone();
    m.update(salt);
    m.update(&1u32.to_be_bytes());
    let mut u: [u8; 32] = m.finalize().into_bytes().into();
    let mut out = u;
    for _ in 1..iterations.max(1) {
        let mut m = base.clone();
        m.update(&u);
        u = m.finalize().into_bytes().into();
        for (o, x) in out.iter_mut().zip(u.iter()) {
            *o ^= x;
        }
    }
    out
}

fn unhex32(s: &str) -> Option<[u8; 32]> {
    if !is_hex_key(s) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

impl AuditKey {
    pub fn from_bytes(bytes: [u8; 32]) -> AuditKey {
        AuditKey(bytes)
    }

    /// A key from a passphrase: PBKDF2-HMAC-SHA-256 with the audit salt.
    pub fn from_passphrase(passphrase: &str) -> AuditKey {
        AuditKey(pbkdf2_sha256(
            passphrase.as_bytes(),
            AUDIT_SALT,
            AUDIT_KDF_ITERATIONS,
        ))
    }

    /// 64 hex digits are the raw key; anything else is a passphrase.
    pub fn parse(value: &str) -> AuditKey {
        let v = value.trim();
        match unhex32(v) {
            Some(b) => AuditKey(b),
            None => AuditKey::from_passphrase(v),
        }
    }

    /// A public fingerprint (16 hex digits), stored beside each signature
    /// so "signed with another key" is told apart from "tampered".
    pub fn id(&self) -> String {
        self.sign(b"custodian audit key id")[..16].to_string()
    }

    /// Lowercase hex HMAC-SHA-256 of `message`.
    pub fn sign(&self, message: &[u8]) -> String {
        use hmac::Mac;
        let mut m = mac(&self.0);
        m.update(message);
        hex(&m.finalize().into_bytes())
    }

    /// Checks a hex signature in constant time.
    pub fn verify(&self, message: &[u8], signature: &str) -> bool {
        use hmac::Mac;
        let Some(sig) = unhex32(signature) else {
            return false;
        };
        let mut m = mac(&self.0);
        m.update(message);
        m.verify_slice(&sig).is_ok()
    }
}

/// Where the audit key comes from, first match wins:
/// 1. `CUSTODIAN_AUDIT_KEY` (a file path or a value), on every engine;
/// 2. on SQLite, `CUSTODIAN_CACHE_KEY` through PBKDF2 with the audit salt;
/// 3. on SQLite, the OS keyring (`org.custodian.desktop` / `audit-key`),
///    32 random bytes created on first use.
///
/// A team workspace (PostgreSQL) needs 1: the same key on every machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditKeySource {
    Setting(String),
    CachePassphrase(String),
    Keyring,
}

/// The rule above, over given settings (no environment access: unit tests).
pub fn audit_key_source(
    audit_setting: Option<&str>,
    cache_passphrase: Option<&str>,
    postgres: bool,
) -> Result<AuditKeySource> {
    if let Some(v) = audit_setting.filter(|v| !v.trim().is_empty()) {
        return Ok(AuditKeySource::Setting(v.to_string()));
    }
    if postgres {
        return Err(Error::new(
            ErrorCode::SecretMissing,
            format!(
                "a team workspace signs its audit log with {AUDIT_KEY_ENV}: set it to a file holding the key \
                 (or the key itself), the same on every machine that writes to the workspace"
            ),
        ));
    }
    if let Some(p) = cache_passphrase.filter(|p| !p.is_empty()) {
        return Ok(AuditKeySource::CachePassphrase(p.to_string()));
    }
    Ok(AuditKeySource::Keyring)
}

fn read_setting(value: &str) -> Result<AuditKey> {
    let path = std::path::Path::new(value.trim());
    let text = if path.is_file() {
        let t = std::fs::read_to_string(path).map_err(|e| {
            Error::invalid(format!(
                "{AUDIT_KEY_ENV} names {}, which cannot be read: {e}",
                path.display()
            ))
        })?;
        if t.trim().is_empty() {
            return Err(Error::invalid(format!(
                "{AUDIT_KEY_ENV} names {}, which is empty",
                path.display()
            )));
        }
        t
    } else {
        value.to_string()
    };
    Ok(AuditKey::parse(&text))
}

fn keyring_audit_key() -> Result<AuditKey> {
    let entry = keyring::Entry::new(SERVICE, AUDIT_ACCOUNT).map_err(keyring_error)?;
    match entry.get_password() {
        Ok(k) => unhex32(&k).map(AuditKey).ok_or_else(|| {
            Error::new(
                ErrorCode::Keyring,
                "the audit key in the OS keyring is not a key Custodian wrote",
            )
        }),
        Err(keyring::Error::NoEntry) => {
            let mut bytes = [0u8; 32];
            getrandom::getrandom(&mut bytes)
                .map_err(|e| Error::internal(format!("no randomness for the audit key: {e}")))?;
            entry.set_password(&hex(&bytes)).map_err(keyring_error)?;
            Ok(AuditKey(bytes))
        }
        Err(e) => Err(keyring_error(e)),
    }
}

/// The audit signing key for a store on `engine` (see [`AuditKeySource`]).
/// Derived keys are cached for the process (the KDF is slow on purpose).
pub fn audit_key(engine: crate::store::Engine) -> Result<AuditKey> {
    use std::sync::{Mutex, OnceLock};
    type Derived = Vec<([u8; 32], AuditKey)>;
    static CACHE: OnceLock<Mutex<Derived>> = OnceLock::new();
    let setting = std::env::var(AUDIT_KEY_ENV).ok();
    // The cache passphrase as `existing` orders it: the open under way, the
    // environment, the one the process was unlocked with.
    let passphrase = |k: Option<CacheKey>| match k {
        Some(CacheKey::Passphrase(p)) => Some(p),
        _ => None,
    };
    let cache_pass = passphrase(opening())
        .or_else(|| std::env::var(KEY_ENV).ok().filter(|v| !v.is_empty()))
        .or_else(|| passphrase(session_passphrase()));
    let source = audit_key_source(
        setting.as_deref(),
        cache_pass.as_deref(),
        engine == crate::store::Engine::Postgres,
    )?;
    // The cache is keyed by a digest of where the key comes from, so a
    // changed setting is honoured and no input is kept in clear.
    let tag: [u8; 32] = {
        let mut h = Sha256::new();
        match &source {
            AuditKeySource::Setting(v) => {
                h.update(b"setting\0");
                h.update(v.as_bytes());
            }
            AuditKeySource::CachePassphrase(p) => {
                h.update(b"cache\0");
                h.update(p.as_bytes());
            }
            AuditKeySource::Keyring => h.update(b"keyring\0"),
        }
        h.finalize().into()
    };
    let cache = CACHE.get_or_init(|| Mutex::new(Vec::new()));
    let file_setting =
        matches!(&source, AuditKeySource::Setting(v) if std::path::Path::new(v.trim()).is_file());
    if !file_setting {
        if let Ok(c) = cache.lock() {
            if let Some((_, k)) = c.iter().find(|(t, _)| *t == tag) {
                return Ok(k.clone());
            }
        }
    }
    let key = match &source {
        AuditKeySource::Setting(v) => read_setting(v)?,
        AuditKeySource::CachePassphrase(p) => AuditKey::from_passphrase(p),
        AuditKeySource::Keyring => keyring_audit_key()?,
    };
    if !file_setting {
        if let Ok(mut c) = cache.lock() {
            c.push((tag, key.clone()));
        }
    }
    Ok(key)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_passphrase_with_quotes_is_one_sql_string() {
        let k = CacheKey::passphrase("it's a 'test'; DROP TABLE x; --").unwrap();
        assert_eq!(
            k.pragma(),
            "PRAGMA key = 'it''s a ''test''; DROP TABLE x; --';"
        );
        assert_eq!(
            k.rekey_pragma(),
            "PRAGMA rekey = 'it''s a ''test''; DROP TABLE x; --';"
        );
        let raw = CacheKey::raw(&"AB".repeat(32)).unwrap();
        assert_eq!(raw.sql_literal(), format!("'x''{}'''", "ab".repeat(32)));
        assert!(raw.legacy().is_none());
        assert!(!format!("{k:?}").contains("test"), "Debug is redacted");
    }

    #[test]
    fn a_passphrase_with_a_quote_round_trips_through_sqlcipher() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let k = CacheKey::passphrase("o'brien's \"key\"").unwrap();
        {
            let c = rusqlite::Connection::open(&path).unwrap();
            c.execute_batch(&k.pragma()).unwrap();
            c.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (42);")
                .unwrap();
        }
        let read = |key: &CacheKey| {
            let c = rusqlite::Connection::open(&path).unwrap();
            c.execute_batch(&key.pragma()).unwrap();
            c.query_row("SELECT x FROM t", [], |r| r.get::<_, i64>(0))
        };
        assert_eq!(read(&k).unwrap(), 42);
        // The quotes are part of the passphrase: without them, or under the
        // legacy derivation, the file does not open.
        assert!(read(&CacheKey::passphrase("obriens \"key\"").unwrap()).is_err());
        assert!(read(&k.legacy().unwrap()).is_err());
    }

    #[test]
    fn passphrases_sqlcipher_would_misread_are_refused() {
        assert!(CacheKey::passphrase("").is_err());
        assert!(CacheKey::passphrase("a\0b").is_err());
        assert!(CacheKey::passphrase(&format!("x'{}'", "0".repeat(64))).is_err());
        assert!(CacheKey::passphrase(&format!("X'{}'", "a".repeat(96))).is_err());
        // Hex alone is a passphrase like any other (SQLCipher derives it).
        assert!(CacheKey::passphrase(&"0".repeat(64))
            .unwrap()
            .is_passphrase());
        assert_eq!(
            CacheKey::passphrase("custodian-test-suite")
                .unwrap()
                .legacy(),
            Some(CacheKey::Raw(hex(&Sha256::digest(b"custodian-test-suite"))))
        );
    }

    #[test]
    fn a_chosen_passphrase_is_long_enough_and_typed_twice_the_same() {
        let short = CacheKey::chosen("elevenchars", "elevenchars").unwrap_err();
        assert!(short.message.contains("at least 12"), "{short}");
        // Characters, not bytes: twelve accented letters are enough.
        assert!(CacheKey::chosen(&"é".repeat(12), &"é".repeat(12)).is_ok());
        assert!(CacheKey::chosen(&"é".repeat(11), &"é".repeat(11)).is_err());
        let differ = CacheKey::chosen("correct horse battery", "correct horse batery").unwrap_err();
        assert!(differ.message.contains("not the same"), "{differ}");
        let raw = format!("x'{}'", "0".repeat(64));
        assert!(CacheKey::chosen(&raw, &raw).is_err());
        let k = CacheKey::chosen("correct horse battery", "correct horse battery").unwrap();
        assert_eq!(k, CacheKey::Passphrase("correct horse battery".into()));
        // An entered passphrase has no length rule, only SQLCipher's.
        assert!(CacheKey::entered("short").unwrap().is_passphrase());
        let e = CacheKey::entered("").unwrap_err();
        assert!(!e.message.contains(KEY_ENV), "{e}");
    }

    #[test]
    fn the_marker_says_passphrase_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("custodian.db");
        assert_eq!(
            key_mode_path(&cache),
            dir.path().join("custodian.db.key-mode")
        );
        assert!(!marked_passphrase(&cache).unwrap());
        mark_passphrase(&cache).unwrap();
        assert!(marked_passphrase(&cache).unwrap());
        assert_eq!(
            std::fs::read_to_string(key_mode_path(&cache)).unwrap(),
            "passphrase\n"
        );
        std::fs::write(key_mode_path(&cache), "keyring?").unwrap();
        assert_eq!(
            marked_passphrase(&cache).unwrap_err().code,
            ErrorCode::DatabaseUnreadable
        );
        let needed = passphrase_needed(&cache);
        assert_eq!(needed.code, ErrorCode::Keyring);
        assert!(needed.message.contains("passphrase"), "{needed}");
    }

    #[test]
    fn with_key_comes_first_and_only_while_it_runs() {
        let k = CacheKey::passphrase("only for this open").unwrap();
        let inner = with_key(&k, || {
            let nested = CacheKey::passphrase("nested").unwrap();
            assert_eq!(with_key(&nested, opening), Some(nested));
            (existing().ok().flatten(), opening())
        });
        assert_eq!(inner, (Some(k.clone()), Some(k.clone())));
        assert_eq!(opening(), None, "nothing is kept after the open");
        // Another thread never sees it.
        let seen = with_key(&k, || std::thread::spawn(opening).join().unwrap());
        assert_eq!(seen, None);
    }

    #[test]
    fn pbkdf2_matches_the_rfc_vectors() {
        // RFC 7914 section 11 / the common PBKDF2-HMAC-SHA256 vectors.
        assert_eq!(
            hex(&pbkdf2_sha256(b"password", b"salt", 1)),
            "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b"
        );
        assert_eq!(
            hex(&pbkdf2_sha256(b"password", b"salt", 4096)),
            "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a"
        );
    }

    #[test]
    fn the_audit_key_is_not_the_cache_key_and_hex_is_raw() {
        let a = AuditKey::parse("correct horse");
        assert_eq!(a, AuditKey::from_passphrase("correct horse"));
        assert_ne!(hex(&a.0), hex(&Sha256::digest(b"correct horse")));
        let raw = "ab".repeat(32);
        assert_eq!(AuditKey::parse(&raw).0, [0xab; 32]);
        assert!(!format!("{a:?}").contains(&hex(&a.0)), "Debug is redacted");
    }

    #[test]
    fn signatures_verify_only_with_the_same_key_and_message() {
        let k = AuditKey::from_bytes([7; 32]);
        let s = k.sign(b"head");
        assert!(k.verify(b"head", &s));
        assert!(!k.verify(b"head2", &s));
        assert!(!AuditKey::from_bytes([8; 32]).verify(b"head", &s));
        assert!(!k.verify(b"head", "zz"));
        assert_ne!(k.id(), AuditKey::from_bytes([8; 32]).id());
    }

    #[test]
    fn where_the_audit_key_comes_from() {
        assert_eq!(
            audit_key_source(Some("/k"), Some("p"), true).ok(),
            Some(AuditKeySource::Setting("/k".into()))
        );
        assert_eq!(
            audit_key_source(None, Some("p"), false).ok(),
            Some(AuditKeySource::CachePassphrase("p".into()))
        );
        assert_eq!(
            audit_key_source(Some(" "), None, false).ok(),
            Some(AuditKeySource::Keyring)
        );
        // A team workspace never falls back to a per-machine key.
        let e = audit_key_source(None, Some("p"), true).err();
        assert!(e.is_some_and(|e| e.message.contains(AUDIT_KEY_ENV)));
    }
}
