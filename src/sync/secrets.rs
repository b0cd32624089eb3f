//! Source secrets live outside the cache: in the OS keyring on a desktop
//! (Secret Service on Linux, Keychain on macOS, Credential Manager on
//! Windows; the default), or, on a server with no keyring, in the
//! environment, a directory of files or systemd credentials
//! ([`ServerSecrets`], `--secrets-from`). Never in the database, logs or
//! exports.
//!
//! Headless secrets are found by the source's name:
//!
//! | `--secrets-from` | where the secret of source "HR SCIM" is read |
//! |---|---|
//! | `env` | `$CUSTODIAN_SECRET_HR_SCIM` (name upper-cased, every run of other characters one `_`) |
//! | `dir:/etc/custodian/secrets` | the file `/etc/custodian/secrets/hr-scim` (lower-cased, runs of other characters one `-`) |
//! | `systemd` | `$CREDENTIALS_DIRECTORY/hr-scim` (`LoadCredential=hr-scim:/path`) |
//! | `keyring` | the OS keyring (the default) |
//!
//! A secret file must be a regular file of at most 64 KiB, not readable by
//! group or others under `dir:` (mode 0600 or 0400) and not by others under
//! `systemd` (which makes them 0400 for the service); one trailing newline
//! is dropped. These stores are read-only: `source add --secret-stdin`
//! still writes to the keyring.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{Error, ErrorCode, Result};
use crate::model::SourceId;

/// The keyring service name under which Custodian stores secrets.
pub const SERVICE: &str = "org.custodian.desktop";

/// Where secrets are kept.
pub trait SecretStore: Send + Sync {
    fn get(&self, source: SourceId) -> Result<Option<String>>;
    /// The secret of `source`, whose name is `name`: what a sync asks. Stores
    /// keyed by id ignore the name; [`ServerSecrets`] looks it up by name.
    fn get_source(&self, source: SourceId, name: &str) -> Result<Option<String>> {
        let _ = name;
        self.get(source)
    }
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

/// The environment variable a source's secret is read from under
/// `--secrets-from env`: `CUSTODIAN_SECRET_` + the name upper-cased, each
/// run of characters other than ASCII letters and digits one `_` ("HR SCIM"
/// -> `CUSTODIAN_SECRET_HR_SCIM`). `None` for a name with no letter or digit.
pub fn env_var_name(source_name: &str) -> Option<String> {
    let key = fold(source_name, '_').to_ascii_uppercase();
    (!key.is_empty()).then(|| format!("CUSTODIAN_SECRET_{key}"))
}

/// The file (or systemd credential) name of a source's secret: the name
/// lower-cased, each run of other characters one `-` ("HR SCIM" -> `hr-scim`).
pub fn file_name(source_name: &str) -> Option<String> {
    let key = fold(source_name, '-').to_ascii_lowercase();
    (!key.is_empty()).then_some(key)
}

fn fold(name: &str, sep: char) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with(sep) {
            out.push(sep);
        }
    }
    while out.ends_with(sep) {
        out.pop();
    }
    out
}

/// Where a headless host reads source secrets (`--secrets-from`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretsFrom {
    /// The OS keyring (desktops; the default).
    Keyring,
    /// `CUSTODIAN_SECRET_<NAME>` environment variables.
    Env,
    /// One file per source in a directory.
    Dir(PathBuf),
    /// systemd credentials: files in `$CREDENTIALS_DIRECTORY`.
    Systemd,
}

impl SecretsFrom {
    /// `keyring`, `env`, `dir:/path` or `systemd`.
    pub fn parse(s: &str) -> Result<SecretsFrom> {
        match s.trim() {
            "keyring" => Ok(SecretsFrom::Keyring),
            "env" => Ok(SecretsFrom::Env),
            "systemd" => Ok(SecretsFrom::Systemd),
            other => match other.strip_prefix("dir:") {
                Some(d) if !d.trim().is_empty() => Ok(SecretsFrom::Dir(PathBuf::from(d.trim()))),
                _ => Err(Error::invalid(format!(
                    "'{other}' is not a secret store: use keyring, env, dir:/path or systemd"
                ))),
            },
        }
    }

    /// The store. `systemd` needs `$CREDENTIALS_DIRECTORY` (set by systemd
    /// for a unit with `LoadCredential=`).
    pub fn open(&self) -> Result<Box<dyn SecretStore>> {
        Ok(match self {
            SecretsFrom::Keyring => Box::new(KeyringSecrets::default()),
            SecretsFrom::Env => Box::new(ServerSecrets::env()),
            SecretsFrom::Dir(d) => Box::new(ServerSecrets::dir(d)),
            SecretsFrom::Systemd => {
                let dir = std::env::var_os("CREDENTIALS_DIRECTORY")
                    .filter(|d| !d.is_empty())
                    .ok_or_else(|| {
                        Error::new(
                            ErrorCode::SecretMissing,
                            "--secrets-from systemd needs $CREDENTIALS_DIRECTORY: run under a systemd unit with LoadCredential=",
                        )
                    })?;
                Box::new(ServerSecrets::systemd(Path::new(&dir)))
            }
        })
    }
}

/// Largest secret file read.
pub const MAX_SECRET_FILE: u64 = 64 * 1024;

#[derive(Debug, Clone)]
enum Origin {
    Env,
    /// A directory; `deny`: the mode bits that must be clear.
    Dir {
        dir: PathBuf,
        deny: u32,
    },
}

/// Read-only secrets for servers: environment variables, a directory of
/// files, or systemd credentials, found by the source's name (see the module
/// docs). Nothing is ever written.
#[derive(Debug, Clone)]
pub struct ServerSecrets(Origin);

impl ServerSecrets {
    pub fn env() -> Self {
        ServerSecrets(Origin::Env)
    }
    /// Files in `dir`, each readable by its owner only.
    pub fn dir(dir: &Path) -> Self {
        ServerSecrets(Origin::Dir {
            dir: dir.to_path_buf(),
            deny: 0o077,
        })
    }
    /// systemd's credentials directory (files not readable by others).
    pub fn systemd(dir: &Path) -> Self {
        ServerSecrets(Origin::Dir {
            dir: dir.to_path_buf(),
            deny: 0o007,
        })
    }

    fn missing(name: &str, what: String) -> Error {
        Error::new(
            ErrorCode::SecretMissing,
            format!("no secret for source '{name}': {what}"),
        )
    }

    fn read_file(path: &Path, name: &str, deny: u32) -> Result<String> {
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Self::missing(
                    name,
                    format!("{} does not exist", path.display()),
                ))
            }
            Err(e) => {
                return Err(Self::missing(
                    name,
                    format!("{} cannot be read ({})", path.display(), e.kind()),
                ))
            }
        };
        if !meta.is_file() {
            return Err(Self::missing(
                name,
                format!("{} is not a file", path.display()),
            ));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = meta.permissions().mode() & 0o777;
            if mode & deny != 0 {
                return Err(Error::invalid(format!(
                    "the secret file {} is readable by {} (mode {mode:04o}): refused; chmod {} it",
                    path.display(),
                    if deny & 0o070 != 0 {
                        "group or others"
                    } else {
                        "others"
                    },
                    if deny & 0o070 != 0 { "600" } else { "o-rwx" },
                )));
            }
        }
        #[cfg(not(unix))]
        let _ = deny;
        if meta.len() > MAX_SECRET_FILE {
            return Err(Error::invalid(format!(
                "the secret file {} is larger than {MAX_SECRET_FILE} bytes",
                path.display()
            )));
        }
        let bytes = std::fs::read(path).map_err(|e| {
            Self::missing(
                name,
                format!("{} cannot be read ({})", path.display(), e.kind()),
            )
        })?;
        String::from_utf8(bytes).map_err(|_| {
            Error::invalid(format!(
                "the secret file {} is not UTF-8 text",
                path.display()
            ))
        })
    }
}

/// One trailing newline (`\n` or `\r\n`) is not part of a secret.
/// Reads a secret typed or piped on standard input (`--secret-stdin`): one
/// line without its line ending, or, when that line opens a PEM block
/// (`-----BEGIN …`, a keyless source's private key), every line through the
/// block's `-----END …` line. Empty is an error.
pub fn read_secret_from(input: &mut dyn std::io::BufRead) -> Result<String> {
    let mut line = String::new();
    input.read_line(&mut line)?;
    let first = line.trim_end_matches(['\r', '\n']).to_string();
    if first.trim_start().starts_with("-----BEGIN ") && !first.contains("-----END ") {
        let mut pem = format!("{}\n", first.trim());
        loop {
            let mut l = String::new();
            if input.read_line(&mut l)? == 0 {
                return Err(crate::error::Error::invalid(
                    "the private key on standard input has no -----END line",
                ));
            }
            let l = l.trim();
            pem.push_str(l);
            pem.push('\n');
            if l.starts_with("-----END ") {
                return Ok(pem);
            }
        }
    }
    if first.is_empty() {
        return Err(crate::error::Error::invalid("no secret on standard input"));
    }
    Ok(first)
}

fn strip_newline(mut s: String) -> String {
    if s.ends_with('\n') {
        s.pop();
        if s.ends_with('\r') {
            s.pop();
        }
    }
    s
}

impl SecretStore for ServerSecrets {
    fn get(&self, source: SourceId) -> Result<Option<String>> {
        Err(Error::internal(format!(
            "source {source}: headless secrets are found by the source's name"
        )))
    }

    fn get_source(&self, _source: SourceId, name: &str) -> Result<Option<String>> {
        let secret = match &self.0 {
            Origin::Env => {
                let var = env_var_name(name).ok_or_else(|| {
                    Self::missing(
                        name,
                        "its name has no letter or digit to name a variable".into(),
                    )
                })?;
                match std::env::var(&var) {
                    Ok(v) => v,
                    Err(std::env::VarError::NotPresent) => {
                        return Err(Self::missing(name, format!("${var} is not set")))
                    }
                    Err(std::env::VarError::NotUnicode(_)) => {
                        return Err(Error::invalid(format!("${var} is not UTF-8 text")))
                    }
                }
            }
            Origin::Dir { dir, deny } => {
                let file = file_name(name).ok_or_else(|| {
                    Self::missing(
                        name,
                        "its name has no letter or digit to name a file".into(),
                    )
                })?;
                Self::read_file(&dir.join(file), name, *deny)?
            }
        };
        let secret = strip_newline(secret);
        if secret.is_empty() {
            return Err(Self::missing(name, "it is empty".into()));
        }
        Ok(Some(secret))
    }

    fn set(&self, _source: SourceId, _secret: &str) -> Result<()> {
        Err(Error::invalid(
            "headless secrets are read-only: put the secret in the environment, the secrets directory or the unit's credentials",
        ))
    }

    fn delete(&self, source: SourceId) -> Result<()> {
        self.set(source, "")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn a_pem_key_on_standard_input_is_read_whole() {
        let pem = "-----BEGIN RSA PRIVATE KEY-----\r\nMIIEow\nAAAA\n-----END RSA PRIVATE KEY-----\nafter\n";
        assert_eq!(
            super::read_secret_from(&mut pem.as_bytes()).unwrap(),
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nAAAA\n-----END RSA PRIVATE KEY-----\n"
        );
        assert_eq!(
            super::read_secret_from(&mut "tok-123\r\nnext\n".as_bytes()).unwrap(),
            "tok-123"
        );
        let cut = "-----BEGIN PRIVATE KEY-----\nMIIE\n";
        assert!(super::read_secret_from(&mut cut.as_bytes())
            .unwrap_err()
            .message
            .contains("no -----END"));
        assert!(super::read_secret_from(&mut "\n".as_bytes()).is_err());
    }

    use super::*;

    #[test]
    fn names_fold_to_variables_and_files() {
        assert_eq!(
            env_var_name("HR SCIM").as_deref(),
            Some("CUSTODIAN_SECRET_HR_SCIM")
        );
        assert_eq!(
            env_var_name("  AWS prod (eu-west-1) ").as_deref(),
            Some("CUSTODIAN_SECRET_AWS_PROD_EU_WEST_1")
        );
        assert_eq!(
            file_name("Corp AD / Müller").as_deref(),
            Some("corp-ad-m-ller")
        );
        assert_eq!(env_var_name("—"), None);
        assert_eq!(file_name("\u{1b}[31m"), Some("31m".into()));
    }

    #[test]
    fn the_store_is_chosen_by_flag() {
        assert_eq!(SecretsFrom::parse("env").unwrap(), SecretsFrom::Env);
        assert_eq!(SecretsFrom::parse("systemd").unwrap(), SecretsFrom::Systemd);
        assert_eq!(
            SecretsFrom::parse("dir:/etc/custodian").unwrap(),
            SecretsFrom::Dir("/etc/custodian".into())
        );
        assert_eq!(
            SecretsFrom::parse("dir:").unwrap_err().code,
            ErrorCode::InvalidInput
        );
        assert_eq!(
            SecretsFrom::parse("vault").unwrap_err().code,
            ErrorCode::InvalidInput
        );
    }

    #[test]
    fn one_trailing_newline_is_dropped() {
        assert_eq!(strip_newline("s3cr3t\n".into()), "s3cr3t");
        assert_eq!(strip_newline("s3cr3t\r\n".into()), "s3cr3t");
        assert_eq!(strip_newline("s3cr3t\n\n".into()), "s3cr3t\n");
        assert_eq!(strip_newline(" s3cr3t ".into()), " s3cr3t ");
    }

    #[test]
    fn headless_stores_are_read_only() {
        let s = ServerSecrets::env();
        assert_eq!(
            s.set(SourceId(1), "x").unwrap_err().code,
            ErrorCode::InvalidInput
        );
    }
}
