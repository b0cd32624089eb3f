//! How an Entra source signs in: the token endpoint of the Microsoft
//! identity platform (`{login_base}/{tenant}/oauth2/v2.0/token`), in one of
//! four modes, told apart by the settings ([`mode`]):
//!
//! - **Certificate credential** (`certificate_file` or
//!   `certificate_thumbprint`): `client_credentials` with a client assertion
//!   (RFC 7523) signed with the certificate's private key, as Microsoft
//!   documents it (<https://learn.microsoft.com/entra/identity-platform/certificate-credentials>):
//!   header `typ: JWT` and the certificate's base64url thumbprint, claims
//!   `aud` = the token endpoint, `iss` = `sub` = the client id, a GUID
//!   `jti`, `nbf` = `iat` = now, `exp` five minutes on. With the
//!   certificate itself (or a SHA-256 thumbprint) the header is `x5t#S256`
//!   and the signature PS256, the current format; with a SHA-1 thumbprint
//!   (what the admin center shows) it is `x5t` and RS256, the earlier one,
//!   still accepted. The key is the source's secret (PEM) or
//!   `private_key_file`; a PEM bundle with the certificate and the key works
//!   for either.
//! - **Workload identity federation** (`federated_token_file`): the client
//!   assertion is a token another issuer gave this workload (AKS workload
//!   identity, GitHub Actions OIDC, a Kubernetes projected service-account
//!   token), read from the file at every token request because the
//!   platform rotates it
//!   (<https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow#third-case-access-token-request-with-a-federated-credential>).
//!   The value `$AZURE_FEDERATED_TOKEN_FILE` reads the file that variable
//!   names, as AKS and azure/login set it. No secret at all.
//! - **Delegated, device code** (`delegated` true): an administrator signs
//!   in once in a browser ([`DeviceSignIn`], `custodian source sign-in`),
//!   following <https://learn.microsoft.com/entra/identity-platform/v2-oauth2-device-code>;
//!   the refresh token is the source's secret (OS keyring) and each sync
//!   redeems it (`grant_type=refresh_token`). Entra hands back a new refresh
//!   token each time: it replaces the stored one after the fetch
//!   ([`super::super::records::Fetched::rotated_secret`]). Reads act as that
//!   administrator, within [`DELEGATED_SCOPES`] and the administrator's own
//!   directory role. An expired or revoked sign-in is `source_auth` saying to
//!   sign in again.
//! - **Client secret** (none of the above): `client_credentials` with the
//!   secret, as before.
//!
//! Access tokens live in memory only, fetched again five minutes before they
//! expire. Error bodies are the platform's (`error`, `error_description`
//! with an `AADSTS` code): the message quotes the code and the first line of
//! the description, and says what to check.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::{Error, ErrorCode, Result};
use crate::sync::http::{HttpClient, Response};
use crate::sync::jwt::SigningKey;
use crate::sync::SyncContext;

/// The variable AKS workload identity and GitHub's azure/login set to the
/// federated token's file.
pub const FEDERATED_TOKEN_ENV: &str = "AZURE_FEDERATED_TOKEN_FILE";
/// `federated_token_file` set to this reads the file [`FEDERATED_TOKEN_ENV`] names.
pub const FROM_ENV: &str = "$AZURE_FEDERATED_TOKEN_FILE";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// The Microsoft Graph delegated permissions a device-code sign-in asks for:
/// what the sync reads (users, service principals, applications and their
/// credentials, owners, consent grants; directory role assignments; the
/// sign-in activity report). `offline_access` (a refresh token) is added.
pub const DELEGATED_SCOPES: &[&str] = &[
    "Application.Read.All",
    "Directory.Read.All",
    "RoleManagement.Read.Directory",
    "AuditLog.Read.All",
];

/// How a source signs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Certificate,
    Federated,
    Delegated,
    Secret,
}

fn text(settings: &Value, key: &str) -> Option<String> {
    settings
        .get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn flag(settings: &Value, key: &str) -> bool {
    settings.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// The sign-in mode the settings choose.
pub fn mode(settings: &Value) -> Mode {
    if flag(settings, "delegated") {
        Mode::Delegated
    } else if text(settings, "federated_token_file").is_some() {
        Mode::Federated
    } else if text(settings, "certificate_file").is_some()
        || text(settings, "certificate_thumbprint").is_some()
    {
        Mode::Certificate
    } else {
        Mode::Secret
    }
}

/// Does the source read a secret (the client secret, the certificate's
/// private key when no file holds it, or the delegated refresh token)?
pub fn needs_secret(settings: &Value) -> bool {
    match mode(settings) {
        Mode::Secret | Mode::Delegated => true,
        Mode::Certificate => text(settings, "private_key_file").is_none(),
        Mode::Federated => false,
    }
}

/// Settings of two modes at once, or of a mode that is not on, are refused
/// rather than silently ignored.
pub fn check_settings(out: &Map<String, Value>) -> Result<()> {
    let v = Value::Object(out.clone());
    let set = |k: &str| text(&v, k).is_some();
    let mut modes = Vec::new();
    if flag(&v, "delegated") {
        modes.push("delegated");
    }
    if set("federated_token_file") {
        modes.push("federated_token_file");
    }
    if set("certificate_file") || set("certificate_thumbprint") {
        modes.push(if set("certificate_file") {
            "certificate_file"
        } else {
            "certificate_thumbprint"
        });
    }
    if modes.len() > 1 {
        return Err(Error::invalid(format!(
            "the entra settings {} each choose a way to sign in; keep one",
            modes.join(" and ")
        )));
    }
    if set("private_key_file") && mode(&v) != Mode::Certificate {
        return Err(Error::invalid(
            "the entra setting 'private_key_file' is for a certificate credential, which needs 'certificate_file' or 'certificate_thumbprint' too; set one, or leave private_key_file out",
        ));
    }
    if set("certificate_file") && set("certificate_thumbprint") {
        return Err(Error::invalid(
            "the entra settings 'certificate_file' and 'certificate_thumbprint' both name the certificate; keep one",
        ));
    }
    if let Some(t) = text(&v, "certificate_thumbprint") {
        Thumbprint::parse(&t)?;
    }
    Ok(())
}

/// How an Entra source signs in, for `source show`: the mode and the
/// identity it signs in as.
pub fn sign_in(settings: &Value) -> (String, String) {
    let get = |k: &str| text(settings, k).unwrap_or_else(|| "?".into());
    let app = format!("app {} in tenant {}", get("client_id"), get("tenant_id"));
    match mode(settings) {
        Mode::Certificate => (
            "certificate credential (client assertion signed with the certificate's private key; no client secret)".into(),
            format!(
                "{app}'s service principal; certificate {}; private key in {}",
                match (text(settings, "certificate_file"), text(settings, "certificate_thumbprint")) {
                    (Some(f), _) => f,
                    (None, Some(t)) => format!("thumbprint {t}"),
                    (None, None) => "?".into(),
                },
                text(settings, "private_key_file").unwrap_or_else(|| "the secret".into())
            ),
        ),
        Mode::Federated => (
            "workload identity federation (a federated token read from a file at each sign-in; no secret)".into(),
            format!(
                "{app}'s service principal; token from {}",
                get("federated_token_file")
            ),
        ),
        Mode::Delegated => (
            "delegated sign-in of an administrator (device code; the refresh token is kept in the OS keyring)".into(),
            "the administrator who signed in with a device code (Sign in in Sources, or `custodian source sign-in`; a person, within their directory role)".into(),
        ),
        Mode::Secret => (
            "client secret (the secret) for an app registration".into(),
            format!("{app}'s service principal"),
        ),
    }
}

/// Where the source's endpoints are.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub tenant: String,
    pub client_id: String,
    pub login: String,
    pub graph: String,
}

impl Endpoints {
    pub fn of(name: &str, settings: &Value) -> Result<Endpoints> {
        let need = |k: &str| {
            text(settings, k)
                .ok_or_else(|| Error::invalid(format!("source '{name}' has no '{k}' setting")))
        };
        let opt = |k: &str, d: &str| {
            text(settings, k)
                .unwrap_or_else(|| d.to_string())
                .trim_end_matches('/')
                .to_string()
        };
        Ok(Endpoints {
            tenant: need("tenant_id")?,
            client_id: need("client_id")?,
            login: opt("login_base", "https://login.microsoftonline.com"),
            graph: opt("graph_base", "https://graph.microsoft.com"),
        })
    }

    pub fn token_url(&self) -> String {
        format!("{}/{}/oauth2/v2.0/token", self.login, self.tenant)
    }

    fn devicecode_url(&self) -> String {
        format!("{}/{}/oauth2/v2.0/devicecode", self.login, self.tenant)
    }

    /// The delegated scopes, on this Graph (a national cloud's has its own
    /// resource URI), with `offline_access`.
    fn delegated_scope(&self) -> String {
        let mut s: Vec<String> = DELEGATED_SCOPES
            .iter()
            .map(|p| format!("{}/{p}", self.graph))
            .collect();
        s.push("offline_access".into());
        s.join(" ")
    }
}

// ------------------------------------------------------------ base64

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// base64url without padding (RFC 7515's).
pub fn b64url(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            let c = B64[((n >> (18 - 6 * i)) & 63) as usize];
            out.push(match c {
                b'+' => '-',
                b'/' => '_',
                c => c as char,
            });
        }
    }
    out
}

/// Decodes base64 (standard or url alphabet, padding and whitespace
/// ignored); `None` when it is not base64.
pub fn b64decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' | b' ' | b'\n' | b'\r' | b'\t' => continue,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

// ------------------------------------------------------------ certificate

/// The certificate's thumbprint, as the assertion header carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Thumbprint {
    /// SHA-256, base64url: header `x5t#S256`, PS256.
    Sha256(String),
    /// SHA-1, base64url: header `x5t`, RS256.
    Sha1(String),
}

impl Thumbprint {
    /// A thumbprint in hex as the admin center shows it (SHA-1, 40 digits)
    /// or a SHA-256 one (64 digits); colons and spaces are ignored.
    pub fn parse(hex: &str) -> Result<Thumbprint> {
        let digits: String = hex
            .chars()
            .filter(|c| !matches!(c, ':' | ' ' | '-'))
            .collect();
        let bad = || {
            Error::invalid(format!(
                "the entra setting 'certificate_thumbprint' must be the certificate's thumbprint in hex (40 digits, SHA-1, as the Entra admin center shows it, or 64, SHA-256): got {} characters",
                digits.chars().count()
            ))
        };
        if !digits.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let bytes: Vec<u8> = (0..digits.len() / 2)
            .filter_map(|i| u8::from_str_radix(&digits[2 * i..2 * i + 2], 16).ok())
            .collect();
        match digits.len() {
            40 => Ok(Thumbprint::Sha1(b64url(&bytes))),
            64 => Ok(Thumbprint::Sha256(b64url(&bytes))),
            _ => Err(bad()),
        }
    }

    /// The SHA-256 thumbprint of the first certificate in a PEM text.
    pub fn of_pem(pem: &str, what: &str) -> Result<Thumbprint> {
        let der = pem_block(pem, "CERTIFICATE")
            .and_then(|b| b64decode(&b))
            .filter(|d| !d.is_empty())
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::SourceAuth,
                    format!("{what} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"),
                )
            })?;
        use sha2::Digest;
        Ok(Thumbprint::Sha256(b64url(&sha2::Sha256::digest(&der))))
    }
}

/// The base64 body of the first PEM block whose label is exactly `label`.
fn pem_block(text: &str, label: &str) -> Option<String> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let t = text.replace("\\n", "\n");
    let start = t.find(&begin)? + begin.len();
    let stop = t[start..].find(&end)? + start;
    Some(t[start..stop].to_string())
}

/// The private key block of a PEM text that may also hold certificates.
fn key_only(text: &str) -> String {
    for label in [
        "PRIVATE KEY",
        "RSA PRIVATE KEY",
        "EC PRIVATE KEY",
        "ENCRYPTED PRIVATE KEY",
    ] {
        if let Some(body) = pem_block(text, label) {
            return format!("-----BEGIN {label}-----{body}-----END {label}-----");
        }
    }
    text.to_string()
}

/// Reads a file Custodian was pointed at, naming it (never its content) in
/// the error.
fn read_named(path: &str, what: &str) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| {
        Error::new(
            ErrorCode::SourceAuth,
            format!("{what} {path} cannot be read ({e})"),
        )
    })
}

struct CertificateCredential {
    key: SigningKey,
    thumbprint: Thumbprint,
    /// Where the certificate came from, for messages.
    named: String,
}

impl CertificateCredential {
    fn load(ctx: &SyncContext) -> Result<CertificateCredential> {
        let s = &ctx.source.settings;
        let what = "the Entra app's certificate private key";
        // The key: `private_key_file` (owner-only, as jwt::source_key checks)
        // or the secret; a bundle with the certificate is cut to the key.
        let key = match text(s, "private_key_file") {
            Some(path) => {
                let pem = read_owner_only(&path, what)?;
                SigningKey::from_pem(&key_only(&pem), &format!("{what} in {path}"))?
            }
            None => SigningKey::from_pem(
                &key_only(ctx.secret()?),
                &format!("{what} in the source's secret"),
            )?,
        };
        if !key.is_rsa() {
            return Err(Error::new(
                ErrorCode::SourceAuth,
                format!("{what} is an EC key; an Entra certificate credential signs with an RSA key (RS256/PS256): use the RSA key of a certificate uploaded to the app registration"),
            ));
        }
        let (thumbprint, named) =
            match (
                text(s, "certificate_file"),
                text(s, "certificate_thumbprint"),
            ) {
                (Some(file), _) => (
                    Thumbprint::of_pem(
                        &read_named(&file, "the certificate file")?,
                        &format!("the certificate file {file}"),
                    )?,
                    file,
                ),
                (None, Some(t)) => (Thumbprint::parse(&t)?, format!("thumbprint {t}")),
                (None, None) => return Err(Error::invalid(
                    "a certificate credential needs 'certificate_file' or 'certificate_thumbprint'",
                )),
            };
        Ok(CertificateCredential {
            key,
            thumbprint,
            named,
        })
    }

    /// The signed client assertion for `aud` (the token endpoint).
    fn assertion(&self, client_id: &str, aud: &str) -> Result<String> {
        let now = chrono::Utc::now().timestamp();
        let claims = serde_json::json!({
            "aud": aud,
            "iss": client_id,
            "sub": client_id,
            "jti": guid()?,
            "nbf": now,
            "iat": now,
            "exp": now + 300,
        });
        match &self.thumbprint {
            Thumbprint::Sha256(t) => self.key.sign_x5t(None, Some(t), true, &claims),
            Thumbprint::Sha1(t) => self.key.sign_x5t(Some(t), None, false, &claims),
        }
    }
}

/// `jwt::source_key`'s rule for key files: readable by the owner only.
fn read_owner_only(path: &str, what: &str) -> Result<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(|e| {
            Error::new(
                ErrorCode::SourceAuth,
                format!("{what} file {path} cannot be read ({e})"),
            )
        })?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(Error::new(
                ErrorCode::SourceAuth,
                format!("{what} file {path} is readable by group or others (mode {mode:o}); make it the owner's only: chmod 600 {path}"),
            ));
        }
    }
    read_named(path, &format!("{what} file"))
}

/// A random GUID (version 4 layout), as the documented `jti`.
fn guid() -> Result<String> {
    let h = crate::sync::jwt::jti()?;
    Ok(format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    ))
}

// ------------------------------------------------------------ federation

/// The federated token's file: the setting, or the file the variable names.
fn federated_path(setting: &str) -> Result<PathBuf> {
    if matches!(setting, FROM_ENV | "${AZURE_FEDERATED_TOKEN_FILE}") {
        match std::env::var_os(FEDERATED_TOKEN_ENV) {
            Some(p) if !p.is_empty() => Ok(PathBuf::from(p)),
            _ => Err(Error::new(
                ErrorCode::SourceAuth,
                format!("the source reads its federated token from ${FEDERATED_TOKEN_ENV}, which is not set: run the worker where the platform sets it (AKS workload identity, azure/login), or set federated_token_file to the token's path"),
            )),
        }
    } else {
        Ok(PathBuf::from(setting))
    }
}

/// Reads the federated token now (the platform rotates the file).
fn federated_token(setting: &str) -> Result<String> {
    let path = federated_path(setting)?;
    let shown = path.display().to_string();
    let token = read_named(&shown, "the federated token file")?;
    let token = token.trim();
    if token.is_empty() {
        return Err(Error::new(
            ErrorCode::SourceAuth,
            format!("the federated token file {shown} is empty"),
        ));
    }
    if token.split('.').count() != 3 || token.chars().any(char::is_whitespace) {
        return Err(Error::new(
            ErrorCode::SourceAuth,
            format!(
                "the federated token file {shown} does not hold a JWT (header.payload.signature)"
            ),
        ));
    }
    Ok(token.to_string())
}

// ------------------------------------------------------------ token source

enum Credential {
    Secret(String),
    Certificate(CertificateCredential),
    /// The `federated_token_file` setting, read at each request.
    Federated(String),
    /// The current refresh token of the delegated sign-in.
    Delegated(std::sync::Mutex<String>),
}

/// The token endpoint of one source, with the access token it holds.
pub struct TokenSource {
    source: String,
    ep: Endpoints,
    credential: Credential,
    current: tokio::sync::Mutex<Option<(String, Instant)>>,
    /// A refresh token Entra handed back in place of the stored one.
    rotated: std::sync::Mutex<Option<String>>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    id_token: Option<String>,
}

/// The OAuth error body the platform answers with.
#[derive(Deserialize, Default)]
struct OAuthError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

impl OAuthError {
    fn of(resp: &Response) -> OAuthError {
        serde_json::from_slice(&resp.body).unwrap_or_default()
    }

    /// `error: AADSTS…: first line of the description`, bounded.
    fn describe(&self, status: u16) -> String {
        let first = self
            .error_description
            .split(['\r', '\n'])
            .next()
            .unwrap_or("")
            .trim();
        let first: String = first.chars().take(300).collect();
        match (self.error.is_empty(), first.is_empty()) {
            (true, true) => format!("HTTP {status}"),
            (false, true) => self.error.clone(),
            (true, false) => first,
            (false, false) => format!("{}: {first}", self.error),
        }
    }
}

impl TokenSource {
    pub fn new(ctx: &SyncContext) -> Result<TokenSource> {
        let ep = Endpoints::of(&ctx.source.name, &ctx.source.settings)?;
        let s = &ctx.source.settings;
        let credential = match mode(s) {
            Mode::Secret => Credential::Secret(ctx.secret()?.to_string()),
            Mode::Certificate => Credential::Certificate(CertificateCredential::load(ctx)?),
            Mode::Federated => Credential::Federated(text(s, "federated_token_file").unwrap_or_default()),
            Mode::Delegated => match ctx.secret.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
                Some(t) => Credential::Delegated(std::sync::Mutex::new(t.to_string())),
                None => {
                    return Err(Error::new(
                        ErrorCode::SourceAuth,
                        format!(
                            "nobody has signed in to Entra for source '{0}' yet: an administrator signs in with Sign in on the source's row in Sources, or `custodian source sign-in {0}`",
                            ctx.source.name
                        ),
                    ))
                }
            },
        };
        Ok(TokenSource {
            source: ctx.source.name.clone(),
            ep,
            credential,
            current: tokio::sync::Mutex::new(None),
            rotated: std::sync::Mutex::new(None),
        })
    }

    /// Does the sign-in act as the app itself (not a signed-in person)?
    pub fn app_only(&self) -> bool {
        !matches!(self.credential, Credential::Delegated(_))
    }

    /// The refresh token Entra handed back, once (to replace the stored one).
    pub fn take_rotated(&self) -> Option<String> {
        self.rotated.lock().ok().and_then(|mut r| r.take())
    }

    /// A valid access token: the held one, or a new one.
    pub async fn bearer(&self, http: &HttpClient) -> Result<String> {
        let mut current = self.current.lock().await;
        if let Some((token, until)) = current.as_ref() {
            if Instant::now() < *until {
                return Ok(token.clone());
            }
        }
        let tok = self.request(http).await?;
        // Renew five minutes before it expires.
        let life = Duration::from_secs(tok.expires_in.unwrap_or(3599).saturating_sub(300).max(60));
        *current = Some((tok.access_token.clone(), Instant::now() + life));
        Ok(tok.access_token)
    }

    async fn request(&self, http: &HttpClient) -> Result<TokenResponse> {
        let url = self.ep.token_url();
        let app_scope = format!("{}/.default", self.ep.graph);
        let client_id = self.ep.client_id.as_str();
        let mut form: Vec<(&str, String)> = vec![("client_id", client_id.to_string())];
        match &self.credential {
            Credential::Secret(secret) => {
                form.push(("grant_type", "client_credentials".into()));
                form.push(("client_secret", secret.clone()));
                form.push(("scope", app_scope));
            }
            Credential::Certificate(c) => {
                form.push(("grant_type", "client_credentials".into()));
                form.push(("client_assertion_type", ASSERTION_TYPE.into()));
                form.push(("client_assertion", c.assertion(client_id, &url)?));
                form.push(("scope", app_scope));
            }
            Credential::Federated(setting) => {
                form.push(("grant_type", "client_credentials".into()));
                form.push(("client_assertion_type", ASSERTION_TYPE.into()));
                form.push(("client_assertion", federated_token(setting)?));
                form.push(("scope", app_scope));
            }
            Credential::Delegated(refresh) => {
                let rt = refresh
                    .lock()
                    .map_err(|_| Error::internal("refresh token lock poisoned"))?
                    .clone();
                form.push(("grant_type", "refresh_token".into()));
                form.push(("refresh_token", rt));
                form.push(("scope", self.ep.delegated_scope()));
            }
        }
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let resp = http
            .post_form_answer(&url, &[("accept", "application/json".into())], &pairs)
            .await?;
        if !resp.status.is_success() {
            return Err(self.refused(&OAuthError::of(&resp), resp.status.as_u16()));
        }
        let tok: TokenResponse = resp.json("Entra token")?;
        if let (Credential::Delegated(current), Some(new)) = (&self.credential, &tok.refresh_token)
        {
            if let Ok(mut cur) = current.lock() {
                if *cur != *new {
                    cur.clone_from(new);
                    if let Ok(mut r) = self.rotated.lock() {
                        *r = Some(new.clone());
                    }
                }
            }
        }
        Ok(tok)
    }

    /// What a refused token request means in this mode, and what to do.
    fn refused(&self, e: &OAuthError, status: u16) -> Error {
        let why = e.describe(status);
        let app = &self.ep.client_id;
        let message = match &self.credential {
            Credential::Secret(_) => format!(
                "Entra refused the client credentials of app {app}: {why}; check the tenant id, the client id and that the client secret (the source's secret) is current"
            ),
            Credential::Certificate(c) => format!(
                "Entra refused the certificate credential of app {app} ({}): {why}; check that this certificate is uploaded to the app registration (Certificates & secrets) and that the private key is its own",
                c.named
            ),
            Credential::Federated(setting) => format!(
                "Entra refused the federated token from {setting} for app {app}: {why}; check that the app has a federated identity credential whose issuer, subject and audience (api://AzureADTokenExchange by default) match the token, and that the token has not expired"
            ),
            Credential::Delegated(_) => format!(
                "the administrator's Entra sign-in for source '{0}' has expired or was revoked ({why}): sign in again (Sign in on the source's row in Sources, or `custodian source sign-in {0}`)",
                self.source
            ),
        };
        Error::new(ErrorCode::SourceAuth, message)
    }
}

// ------------------------------------------------------------ device code

/// What to show the administrator while a device-code sign-in waits.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct DeviceCodePrompt {
    /// The short code to type at `verification_uri`.
    pub user_code: String,
    pub verification_uri: String,
    /// Entra's own instructions (localised text).
    pub message: String,
    /// Seconds until the code expires (15 minutes by default).
    pub expires_in: u64,
}

#[derive(Deserialize)]
struct DeviceCodeResponse {
    device_code: String,
    user_code: String,
    verification_uri: String,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    interval: Option<u64>,
    #[serde(default)]
    message: Option<String>,
}

/// A device-code sign-in under way (`start`, show [`DeviceSignIn::prompt`],
/// then `finish`).
pub struct DeviceSignIn {
    source: String,
    ep: Endpoints,
    http: HttpClient,
    device_code: String,
    prompt: DeviceCodePrompt,
    interval: u64,
    /// How long one second of `interval` lasts (tests shorten it).
    unit: Duration,
}

impl std::fmt::Debug for DeviceSignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceSignIn")
            .field("source", &self.source)
            .field("prompt", &self.prompt)
            .finish_non_exhaustive()
    }
}

/// A finished delegated sign-in.
pub struct DelegatedSignIn {
    /// The refresh token to keep in the keyring (never shown or logged).
    pub refresh_token: String,
    /// Who signed in, as the ID token names them (for the message; the
    /// token is not verified here, only read).
    pub user: Option<String>,
    /// The wait before each poll of the token endpoint, in seconds of the
    /// protocol (`interval`, plus 5 after each `slow_down`).
    pub polls: Vec<u64>,
}

impl std::fmt::Debug for DelegatedSignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DelegatedSignIn")
            .field("user", &self.user)
            .field("polls", &self.polls)
            .finish_non_exhaustive()
    }
}

/// Who the ID token names (`preferred_username`, else `upn`, else `name`).
fn id_token_user(id_token: &str) -> Option<String> {
    let payload = id_token.split('.').nth(1)?;
    let claims: Value = serde_json::from_slice(&b64decode(payload)?).ok()?;
    ["preferred_username", "upn", "name"]
        .iter()
        .find_map(|k| claims.get(*k).and_then(Value::as_str))
        .map(|u| u.chars().take(256).collect())
}

impl DeviceSignIn {
    /// Asks Entra for a device code (`POST /{tenant}/oauth2/v2.0/devicecode`)
    /// for the source `name` with these settings (a delegated one).
    pub async fn start(name: &str, settings: &Value, http: HttpClient) -> Result<DeviceSignIn> {
        if mode(settings) != Mode::Delegated {
            return Err(Error::invalid(format!(
                "source '{name}' does not sign in as an administrator: set delegated=true to use the device-code sign-in (it then needs no client secret)"
            )));
        }
        let ep = Endpoints::of(name, settings)?;
        let mut scope = ep.delegated_scope();
        scope.push_str(" openid profile");
        let form = [
            ("client_id", ep.client_id.as_str()),
            ("scope", scope.as_str()),
        ];
        let resp = http
            .post_form_answer(
                &ep.devicecode_url(),
                &[("accept", "application/json".into())],
                &form,
            )
            .await?;
        if !resp.status.is_success() {
            let why = OAuthError::of(&resp).describe(resp.status.as_u16());
            return Err(Error::new(
                ErrorCode::SourceAuth,
                format!(
                    "Entra refused to start a device-code sign-in for app {}: {why}; the app registration must allow public client flows (Authentication > Advanced settings > Allow public client flows: Yes)",
                    ep.client_id
                ),
            ));
        }
        let d: DeviceCodeResponse = resp.json("Entra device code")?;
        // Outside data: a code lives at most an hour, a poll waits at most a
        // minute (Entra's are 15 minutes and 5 seconds).
        let expires_in = d.expires_in.unwrap_or(900).min(3600);
        let message = d.message.unwrap_or_else(|| {
            format!(
                "To sign in, use a web browser to open the page {} and enter the code {} to authenticate.",
                d.verification_uri, d.user_code
            )
        });
        Ok(DeviceSignIn {
            source: name.to_string(),
            ep,
            http,
            device_code: d.device_code,
            prompt: DeviceCodePrompt {
                user_code: d.user_code,
                verification_uri: d.verification_uri,
                message,
                expires_in,
            },
            interval: d.interval.filter(|i| *i > 0).unwrap_or(5).min(60),
            unit: Duration::from_secs(1),
        })
    }

    pub fn prompt(&self) -> &DeviceCodePrompt {
        &self.prompt
    }

    /// Makes one second of the protocol's `interval` last `unit` (tests).
    pub fn with_unit(mut self, unit: Duration) -> DeviceSignIn {
        self.unit = unit;
        self
    }

    async fn wait(&self, seconds: u64) -> Result<()> {
        let mut left = self
            .unit
            .saturating_mul(u32::try_from(seconds).unwrap_or(u32::MAX));
        while !left.is_zero() {
            self.http.cancel().check()?;
            let step = left.min(Duration::from_millis(200));
            tokio::time::sleep(step).await;
            left = left.saturating_sub(step);
        }
        self.http.cancel().check()
    }

    /// Polls the token endpoint until the administrator has signed in (or
    /// declined, or the code expired), as the protocol says: wait `interval`
    /// before each poll, `authorization_pending` → poll again,
    /// `slow_down` → 5 s more between polls from now on.
    pub async fn finish(self) -> Result<DelegatedSignIn> {
        let url = self.ep.token_url();
        let mut interval = self.interval;
        let mut waited = 0u64;
        let mut polls = Vec::new();
        let again = |what: &str| {
            Error::new(
                ErrorCode::SourceAuth,
                format!(
                    "{what}; sign in again (Sign in on the source's row, or `custodian source sign-in {}`)",
                    self.source
                ),
            )
        };
        loop {
            if waited >= self.prompt.expires_in {
                return Err(again(&format!(
                    "the sign-in code {} expired before anyone signed in ({} minutes)",
                    self.prompt.user_code,
                    self.prompt.expires_in / 60
                )));
            }
            self.wait(interval).await?;
            waited += interval;
            polls.push(interval);
            let form = [
                ("grant_type", DEVICE_CODE_GRANT),
                ("client_id", self.ep.client_id.as_str()),
                ("device_code", self.device_code.as_str()),
            ];
            let resp = self
                .http
                .post_form_answer(&url, &[("accept", "application/json".into())], &form)
                .await?;
            if resp.status.is_success() {
                let tok: TokenResponse = resp.json("Entra token")?;
                let refresh_token = tok.refresh_token.filter(|t| !t.trim().is_empty()).ok_or_else(|| {
                    Error::new(
                        ErrorCode::MalformedResponse,
                        "Entra signed the administrator in but returned no refresh token (offline_access was not granted); Custodian cannot sync later without one",
                    )
                })?;
                return Ok(DelegatedSignIn {
                    refresh_token,
                    user: tok.id_token.as_deref().and_then(id_token_user),
                    polls,
                });
            }
            let e = OAuthError::of(&resp);
            match e.error.as_str() {
                "authorization_pending" => {}
                "slow_down" => interval += 5,
                "authorization_declined" => {
                    return Err(again("the sign-in was declined in the browser"))
                }
                "expired_token" => {
                    return Err(again(&format!(
                        "the sign-in code {} expired before anyone signed in",
                        self.prompt.user_code
                    )))
                }
                "bad_verification_code" => {
                    return Err(again(
                        "Entra did not recognise the device code of this sign-in (bad_verification_code)",
                    ))
                }
                _ => {
                    return Err(Error::new(
                        ErrorCode::SourceAuth,
                        format!(
                            "Entra refused the device-code sign-in for app {}: {}",
                            self.ep.client_id,
                            e.describe(resp.status.as_u16())
                        ),
                    ))
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn base64url_round_trips_and_thumbprints_follow_the_docs() {
        for n in 0..40u8 {
            let bytes: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37).wrapping_add(n)).collect();
            let enc = b64url(&bytes);
            assert!(!enc.contains(['=', '+', '/']), "{enc}");
            assert_eq!(b64decode(&enc).unwrap(), bytes);
        }
        assert_eq!(b64url(b"hello"), "aGVsbG8");
        assert_eq!(b64decode("aGVsbG8=").unwrap(), b"hello");
        assert!(b64decode("not*base64").is_none());
        // Microsoft's (older) example: the hex SHA-1 thumbprint
        // 84E05C1D98BCE3A5421D225B140B36E86A3D5534 is x5t hOBcHZi846VCHSJbFAs26Go9VTQ.
        assert_eq!(
            Thumbprint::parse("84:E0:5C:1D:98:BC:E3:A5:42:1D:22:5B:14:0B:36:E8:6A:3D:55:34")
                .unwrap(),
            Thumbprint::Sha1("hOBcHZi846VCHSJbFAs26Go9VTQ".into())
        );
        assert!(matches!(
            Thumbprint::parse(&"ab".repeat(32)).unwrap(),
            Thumbprint::Sha256(_)
        ));
        let e = Thumbprint::parse("xyz").unwrap_err();
        assert!(e.message.contains("40 digits"), "{}", e.message);
    }

    #[test]
    fn the_settings_choose_one_mode_and_say_whether_a_secret_is_read() {
        let m = |v: Value| (mode(&v), needs_secret(&v));
        assert_eq!(m(json!({})), (Mode::Secret, true));
        assert_eq!(
            m(json!({"certificate_thumbprint": "ab"})),
            (Mode::Certificate, true)
        );
        assert_eq!(
            m(json!({"certificate_file": "/c.pem", "private_key_file": "/k.pem"})),
            (Mode::Certificate, false)
        );
        assert_eq!(
            m(json!({"federated_token_file": FROM_ENV})),
            (Mode::Federated, false)
        );
        assert_eq!(m(json!({"delegated": true})), (Mode::Delegated, true));
        let check = |v: Value| check_settings(v.as_object().unwrap());
        assert!(
            check(json!({"delegated": true, "federated_token_file": "/t"}))
                .unwrap_err()
                .message
                .contains("keep one")
        );
        assert!(check(json!({"private_key_file": "/k"}))
            .unwrap_err()
            .message
            .contains("certificate_file"));
        assert!(check(json!({"certificate_thumbprint": "12"})).is_err());
        check(json!({"certificate_file": "/c.pem", "private_key_file": "/k.pem"})).unwrap();
    }

    #[test]
    fn oauth_errors_quote_the_code_and_the_first_line_only() {
        let e = OAuthError {
            error: "invalid_client".into(),
            error_description: "AADSTS700027: Client assertion failed signature validation.\r\nTrace ID: 1\r\nCorrelation ID: 2".into(),
        };
        assert_eq!(
            e.describe(401),
            "invalid_client: AADSTS700027: Client assertion failed signature validation."
        );
        assert_eq!(OAuthError::default().describe(400), "HTTP 400");
    }

    #[test]
    fn the_id_token_names_who_signed_in() {
        let payload = b64url(br#"{"preferred_username":"admin@contoso.example","name":"Admin"}"#);
        assert_eq!(
            id_token_user(&format!("eyJhbGciOiJub25lIn0.{payload}.")).as_deref(),
            Some("admin@contoso.example")
        );
        assert_eq!(id_token_user("garbage"), None);
    }
}
