//! JSON web tokens signed with a source's private key, for the keyless
//! sign-ins: a GitHub App's JWT (RS256) and an Okta service app's
//! `private_key_jwt` client assertion (RS256 or ES256).
//!
//! The signing is `jsonwebtoken`'s (over ring); this module only reads the
//! key and names what is wrong with it. The key is a PEM private key: an RSA
//! key as PKCS#1 (`BEGIN RSA PRIVATE KEY`, what GitHub hands out) or PKCS#8
//! (`BEGIN PRIVATE KEY`), or an EC P-256/P-384 key as PKCS#8. A SEC1 EC key
//! (`BEGIN EC PRIVATE KEY`) or an encrypted one is refused with the command
//! that converts it. The algorithm follows from the key: RSA → RS256, P-256
//! → ES256, P-384 → ES384.
//!
//! Where the key comes from ([`source_key`]): the file named by the source's
//! `private_key_file` setting (readable by its owner only, like a secrets
//! directory), or else the source's secret (OS keyring, or `--secrets-from`).
//! The key never leaves the process: errors name the file or "the secret",
//! never its text.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

use super::SyncContext;
use crate::error::{Error, ErrorCode, Result};

/// A private key that signs JWTs.
pub struct SigningKey {
    key: EncodingKey,
    alg: Algorithm,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

fn bad_key(what: &str, why: &str) -> Error {
    Error::new(
        ErrorCode::SourceAuth,
        format!("{what} cannot be used to sign in: {why}"),
    )
}

const CONVERT: &str =
    "convert it with `openssl pkcs8 -topk8 -nocrypt -in key.pem -out key.pk8.pem`";

impl SigningKey {
    /// Reads a PEM private key. `what` names it in errors ("the GitHub App
    /// private key in the secret"). The key is tried once here, so a key
    /// that cannot sign fails now, with this message, not mid-sync.
    pub fn from_pem(pem: &str, what: &str) -> Result<SigningKey> {
        let text = pem.trim();
        if !text.contains("-----BEGIN") {
            return Err(bad_key(
                what,
                "it is not a PEM private key (no -----BEGIN line)",
            ));
        }
        if text.contains("BEGIN ENCRYPTED PRIVATE KEY") || text.contains("Proc-Type: 4,ENCRYPTED") {
            return Err(bad_key(
                what,
                &format!("it is encrypted with a passphrase; {CONVERT} (it asks for the passphrase once)"),
            ));
        }
        if text.contains("BEGIN EC PRIVATE KEY") {
            return Err(bad_key(
                what,
                &format!("an EC key must be PKCS#8 (BEGIN PRIVATE KEY); {CONVERT}"),
            ));
        }
        if (text.contains("BEGIN PUBLIC KEY") || text.contains("BEGIN CERTIFICATE"))
            && !text.contains("PRIVATE KEY")
        {
            return Err(bad_key(
                what,
                "it is a public key or certificate; the private key is needed",
            ));
        }
        let normal = normalize_pem(text)
            .ok_or_else(|| bad_key(what, "its -----BEGIN line has no matching -----END line"))?;
        let bytes = normal.as_bytes();
        let candidates: Vec<(EncodingKey, Algorithm)> = match EncodingKey::from_rsa_pem(bytes) {
            Ok(k) => vec![(k, Algorithm::RS256)],
            Err(_) => match EncodingKey::from_ec_pem(bytes) {
                Ok(k) => vec![(k.clone(), Algorithm::ES256), (k, Algorithm::ES384)],
                Err(e) => {
                    return Err(bad_key(
                        what,
                        &format!("it is neither an RSA nor an EC private key in PEM ({e})"),
                    ))
                }
            },
        };
        for (key, alg) in candidates {
            let k = SigningKey { key, alg };
            if k.sign(None, &serde_json::json!({"probe": true})).is_ok() {
                return Ok(k);
            }
        }
        Err(bad_key(
            what,
            "the key does not sign (a damaged key, or an EC curve other than P-256 or P-384)",
        ))
    }

    /// `RS256`, `ES256` or `ES384`.
    pub fn algorithm(&self) -> &'static str {
        match self.alg {
            Algorithm::RS256 => "RS256",
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            _ => "other",
        }
    }

    /// A compact JWT (`header.claims.signature`) with `typ: JWT` and, when
    /// given, the key id `kid`.
    pub fn sign<C: Serialize>(&self, kid: Option<&str>, claims: &C) -> Result<String> {
        let mut header = Header::new(self.alg);
        header.kid = kid.map(str::to_string);
        self.encode(&header, claims)
    }

    /// Is it an RSA key (RS256)?
    pub fn is_rsa(&self) -> bool {
        self.alg == Algorithm::RS256
    }

    /// A JWT naming the signing certificate by its thumbprints (base64url,
    /// `x5t` = SHA-1, `x5t#S256` = SHA-256), as Entra's certificate
    /// credential wants. An RSA key signs PS256 (PSS padding) when `pss`,
    /// else RS256.
    pub fn sign_x5t<C: Serialize>(
        &self,
        x5t: Option<&str>,
        x5t_s256: Option<&str>,
        pss: bool,
        claims: &C,
    ) -> Result<String> {
        let alg = if pss && self.alg == Algorithm::RS256 {
            Algorithm::PS256
        } else {
            self.alg
        };
        let mut header = Header::new(alg);
        header.x5t = x5t.map(str::to_string);
        header.x5t_s256 = x5t_s256.map(str::to_string);
        self.encode(&header, claims)
    }

    fn encode<C: Serialize>(&self, header: &Header, claims: &C) -> Result<String> {
        jsonwebtoken::encode(header, claims, &self.key)
            .map_err(|e| Error::new(ErrorCode::SourceAuth, format!("cannot sign a JWT: {e}")))
    }
}

/// A PEM block as it may arrive: pasted into a one-line password field
/// (which drops the line breaks), with CRLF or stray spaces, or with literal
/// `\n` from an environment variable. Rebuilt as standard PEM (the BEGIN
/// line, the base64 in 64-column lines, the END line); `None` without a
/// matching END line.
fn normalize_pem(text: &str) -> Option<String> {
    let t = text.replace("\\n", "\n");
    let begin = t.find("-----BEGIN ")?;
    let after = &t[begin + "-----BEGIN ".len()..];
    let label_len = after.find("-----")?;
    let label = after[..label_len].trim();
    let body = &after[label_len + "-----".len()..];
    let end_marker = format!("-----END {label}-----");
    let body = &body[..body.find(&end_marker)?];
    let b64: Vec<char> = body.chars().filter(|c| !c.is_whitespace()).collect();
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.chunks(64) {
        out.extend(line);
        out.push('\n');
    }
    out.push_str(&end_marker);
    out.push('\n');
    Some(out)
}

/// A unique JWT id: 16 random bytes, hex.
pub fn jti() -> Result<String> {
    let mut b = [0u8; 16];
    getrandom::getrandom(&mut b)
        .map_err(|e| Error::internal(format!("no randomness for a JWT id: {e}")))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// Reads a key file, refusing one that others can read (unix).
fn read_key_file(path: &str, what: &str) -> Result<String> {
    let p = std::path::Path::new(path);
    let meta = std::fs::metadata(p).map_err(|e| {
        bad_key(
            &format!("{what} file {path}"),
            &format!("it cannot be read ({e})"),
        )
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(bad_key(
                &format!("{what} file {path}"),
                &format!(
                    "it is readable by group or others (mode {mode:o}); make it the owner's only: chmod 600 {path}"
                ),
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    std::fs::read_to_string(p).map_err(|e| {
        bad_key(
            &format!("{what} file {path}"),
            &format!("it cannot be read ({e})"),
        )
    })
}

/// The source's signing key: the PEM file named by `private_key_file`
/// when that setting is present, else the source's secret. `what` names the
/// key ("the GitHub App private key").
pub fn source_key(ctx: &SyncContext, what: &str) -> Result<SigningKey> {
    let file = ctx
        .source
        .settings
        .get("private_key_file")
        .and_then(serde_json::Value::as_str)
        .map(str::trim)
        .filter(|p| !p.is_empty());
    match file {
        Some(path) => {
            let pem = read_key_file(path, what)?;
            SigningKey::from_pem(&pem, &format!("{what} in {path}"))
        }
        None => SigningKey::from_pem(ctx.secret()?, &format!("{what} in the source's secret")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use jsonwebtoken::{decode, DecodingKey, Validation};
    use std::process::Command;

    /// A fresh key pair from the openssl command (private PEM, public PEM).
    fn openssl_key(args: &[&str], dir: &std::path::Path, name: &str) -> (String, String) {
        let key = dir.join(format!("{name}.pem"));
        let out = Command::new("openssl")
            .args(args)
            .arg("-out")
            .arg(&key)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let public = dir.join(format!("{name}.pub.pem"));
        let out = Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&key)
            .arg("-out")
            .arg(&public)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        (
            std::fs::read_to_string(key).unwrap(),
            std::fs::read_to_string(public).unwrap(),
        )
    }

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Claims {
        iss: String,
        exp: i64,
    }

    fn claims() -> Claims {
        Claims {
            iss: "12345".into(),
            exp: chrono::Utc::now().timestamp() + 300,
        }
    }

    #[test]
    fn rsa_keys_sign_rs256_in_pkcs1_and_pkcs8() {
        let dir = tempfile::tempdir().unwrap();
        let (pk8, public) = openssl_key(
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
            ],
            dir.path(),
            "rsa",
        );
        // GitHub hands out PKCS#1 (BEGIN RSA PRIVATE KEY).
        let pk1_path = dir.path().join("rsa1.pem");
        let out = Command::new("openssl")
            .args(["rsa", "-traditional", "-in"])
            .arg(dir.path().join("rsa.pem"))
            .arg("-out")
            .arg(&pk1_path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let pk1 = std::fs::read_to_string(pk1_path).unwrap();
        assert!(pk1.contains("BEGIN RSA PRIVATE KEY"), "{pk1}");
        for pem in [&pk8, &pk1] {
            let k = SigningKey::from_pem(pem, "the test key").unwrap();
            assert_eq!(k.algorithm(), "RS256");
            let jwt = k.sign(Some("kid-1"), &claims()).unwrap();
            let v = decode::<Claims>(
                &jwt,
                &DecodingKey::from_rsa_pem(public.as_bytes()).unwrap(),
                &Validation::new(Algorithm::RS256),
            )
            .unwrap();
            assert_eq!(v.claims.iss, "12345");
            assert_eq!(v.header.kid.as_deref(), Some("kid-1"));
            assert_eq!(v.header.typ.as_deref(), Some("JWT"));
        }
    }

    #[test]
    fn a_key_pasted_on_one_line_or_with_escaped_newlines_still_signs() {
        let dir = tempfile::tempdir().unwrap();
        let (pem, public) = openssl_key(
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
            ],
            dir.path(),
            "rsa",
        );
        // A password field drops the line breaks; an environment variable
        // often carries them as the two characters \n; Windows, CRLF.
        for mangled in [
            pem.replace('\n', ""),
            pem.replace('\n', "\\n"),
            pem.replace('\n', "\r\n"),
            format!("  {}  ", pem.replace('\n', " ")),
        ] {
            let k = SigningKey::from_pem(&mangled, "k").unwrap();
            let jwt = k.sign(None, &claims()).unwrap();
            decode::<Claims>(
                &jwt,
                &DecodingKey::from_rsa_pem(public.as_bytes()).unwrap(),
                &Validation::new(Algorithm::RS256),
            )
            .unwrap();
        }
        let cut = pem.split("-----END").next().unwrap().to_string();
        let e = SigningKey::from_pem(&cut, "k").unwrap_err();
        assert!(e.message.contains("no matching -----END"), "{}", e.message);
    }

    #[test]
    fn ec_p256_keys_sign_es256() {
        let dir = tempfile::tempdir().unwrap();
        let (pem, public) = openssl_key(
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ],
            dir.path(),
            "ec",
        );
        let k = SigningKey::from_pem(&pem, "the test key").unwrap();
        assert_eq!(k.algorithm(), "ES256");
        let jwt = k.sign(None, &claims()).unwrap();
        decode::<Claims>(
            &jwt,
            &DecodingKey::from_ec_pem(public.as_bytes()).unwrap(),
            &Validation::new(Algorithm::ES256),
        )
        .unwrap();
    }

    #[test]
    fn unusable_keys_are_refused_with_what_to_do() {
        let e = SigningKey::from_pem("ghs_not_a_key", "the GitHub App private key").unwrap_err();
        assert_eq!(e.code, ErrorCode::SourceAuth);
        assert!(
            e.message.contains("the GitHub App private key")
                && e.message.contains("not a PEM private key"),
            "{}",
            e.message
        );
        let e = SigningKey::from_pem(
            "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----",
            "k",
        )
        .unwrap_err();
        assert!(e.message.contains("openssl pkcs8 -topk8"), "{}", e.message);
        let e = SigningKey::from_pem(
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----",
            "k",
        )
        .unwrap_err();
        assert!(e.message.contains("encrypted"), "{}", e.message);
        let e = SigningKey::from_pem(
            "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----",
            "k",
        )
        .unwrap_err();
        assert!(e.message.contains("public key"), "{}", e.message);
        // PEM-shaped garbage: refused, and the text is not echoed.
        let junk = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWJ5dGVz\n-----END PRIVATE KEY-----";
        let e = SigningKey::from_pem(junk, "k").unwrap_err();
        assert_eq!(e.code, ErrorCode::SourceAuth);
        assert!(!e.message.contains("c2VjcmV0"), "{}", e.message);
    }

    #[test]
    fn a_key_file_readable_by_others_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.pem");
        std::fs::write(&p, "x").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = read_key_file(p.to_str().unwrap(), "the key").unwrap_err();
        assert!(e.message.contains("chmod 600"), "{}", e.message);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_key_file(p.to_str().unwrap(), "the key").unwrap(), "x");
        let e = read_key_file("/nonexistent/k.pem", "the key").unwrap_err();
        assert_eq!(e.code, ErrorCode::SourceAuth);
    }

    #[test]
    fn jtis_are_unique() {
        let a = jti().unwrap();
        assert_eq!(a.len(), 32);
        assert_ne!(a, jti().unwrap());
    }
}
