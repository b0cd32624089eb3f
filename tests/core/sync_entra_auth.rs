//! Entra ID sign-in without a client secret (issue 18), against a token
//! endpoint (`/{tenant}/oauth2/v2.0/token`) that really checks what it is
//! sent, as the Microsoft identity platform documents it:
//!
//! - a certificate credential: the client assertion's signature with the
//!   certificate's public key, `aud` (the token URL), `exp`/`nbf`, `iss` =
//!   `sub` = the client id, a `jti` not seen before, the `x5t#S256` (PS256)
//!   or `x5t` (RS256) thumbprint of the uploaded certificate and the
//!   `client_assertion_type`
//!   (https://learn.microsoft.com/entra/identity-platform/certificate-credentials);
//! - workload identity federation: the federated token's signature with the
//!   issuer's key, its issuer, subject and audience (`api://AzureADTokenExchange`),
//!   as a federated identity credential matches it;
//! - the device-code flow: `/devicecode`, then polling answered
//!   `authorization_pending` / `slow_down` (RFC 8628 §3.5: 5 s more per
//!   `slow_down`, and `slow_down` too when polled faster than the interval)
//!   until the administrator signs in, then the refresh-token grant, which
//!   hands back a new refresh token each time
//!   (https://learn.microsoft.com/entra/identity-platform/v2-oauth2-device-code).
//!
//! Refusals are Entra's documented error body (`error`,
//! `error_description` with its `AADSTS` code, `error_codes`, `trace_id`,
//! `correlation_id`). Graph is the fixture of `sync_entra`. Keys and
//! certificates are made by the openssl command for each test.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use custodian::sync::http::Cancel;
use custodian::sync::secrets::SecretStore;
use custodian::ErrorCode;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{json, Value};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, Request, Respond, ResponseTemplate};

use crate::harness::{doc_fixture, fast_policy, last_run, SourceEnv};
use crate::sync_entra::{mount_tenant, page2, GraphFx, TENANT};

/// The app Custodian signs in as: `app-ci`, whose service principal
/// `sp-ci` the Graph fixture lists.
const CLIENT: &str = "app-ci";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// The device code of Microsoft's documented token request (its text, the
/// trailing ellipsis left out).
const DEVICE_CODE: &str = "GMMhmHCXhWEzkobqIHGG_EnNYYsAkukHspeYUk9E8";
const USER_CODE: &str = "FJ7KQ2RTB";
/// The documented device-code token response's refresh token.
const DOC_REFRESH: &str = "AwABAAAAvPM1KaPlrEqdFSBzjqfTGAMxZGUTdM0t4B4...";
/// The audience of federated tokens Entra accepts by default.
const FEDERATED_AUD: &str = "api://AzureADTokenExchange";
const GH_ISSUER: &str = "https://token.actions.githubusercontent.com";
const GH_SUBJECT: &str = "repo:contoso/custodian:environment:prod";

// ------------------------------------------------------------ openssl

fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl").args(args).output().unwrap();
    assert!(out.status.success(), "openssl {args:?}: {out:?}");
    out.stdout
}

/// base64url without padding, written out here (not the code under test).
fn b64url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..=c.len() {
            out.push(A[((n >> (18 - 6 * k)) & 63) as usize] as char);
        }
    }
    out
}

fn chmod(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A self-signed certificate with its RSA key, as one uploads to an app
/// registration: files, PEM texts and thumbprints.
struct Cert {
    _dir: tempfile::TempDir,
    key: String,
    cert: String,
    public: String,
    cert_file: PathBuf,
    /// The key alone, mode 600.
    key_file: PathBuf,
    /// SHA-1 in hex with colons, as `openssl x509 -fingerprint` prints it.
    sha1_hex: String,
    sha256_hex: String,
    /// base64url of SHA-1 / SHA-256 of the DER certificate.
    x5t: String,
    x5t_s256: String,
}

fn cert() -> Cert {
    let dir = tempfile::tempdir().unwrap();
    let at = |n: &str| dir.path().join(n);
    let (key_file, cert_file, der) = (at("key.pem"), at("cert.pem"), at("cert.der"));
    let s = |p: &Path| p.to_str().unwrap().to_string();
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        &s(&key_file),
        "-out",
        &s(&cert_file),
        "-days",
        "2",
        "-subj",
        "/CN=custodian-entra-test",
    ]);
    chmod(&key_file, 0o600);
    let public = String::from_utf8(openssl(&[
        "x509",
        "-in",
        &s(&cert_file),
        "-pubkey",
        "-noout",
    ]))
    .unwrap();
    openssl(&[
        "x509",
        "-in",
        &s(&cert_file),
        "-outform",
        "DER",
        "-out",
        &s(&der),
    ]);
    let sha1 = openssl(&["dgst", "-sha1", "-binary", &s(&der)]);
    let sha256 = openssl(&["dgst", "-sha256", "-binary", &s(&der)]);
    let hex = |b: &[u8], sep: &str| {
        b.iter()
            .map(|x| format!("{x:02X}"))
            .collect::<Vec<_>>()
            .join(sep)
    };
    Cert {
        key: std::fs::read_to_string(&key_file).unwrap(),
        cert: std::fs::read_to_string(&cert_file).unwrap(),
        public,
        sha1_hex: hex(&sha1, ":"),
        sha256_hex: hex(&sha256, ""),
        x5t: b64url(&sha1),
        x5t_s256: b64url(&sha256),
        cert_file,
        key_file,
        _dir: dir,
    }
}

// ------------------------------------------------------------ Entra's answers

/// Entra's documented error body: `AADSTS{code}: {text}` and its trace lines.
fn entra_error(status: u16, error: &str, code: u32, text: &str) -> ResponseTemplate {
    let trace = "255d1aef-8c98-452f-ac51-23d051240864";
    let corr = "fb3d2015-bc17-4bb9-bb85-30c5cf1aaaa7";
    ResponseTemplate::new(status).set_body_json(json!({
        "error": error,
        "error_description": format!("AADSTS{code}: {text}\r\nTrace ID: {trace}\r\nCorrelation ID: {corr}\r\nTimestamp: 2026-12-03 10:00:00Z"),
        "error_codes": [code],
        "timestamp": "2026-12-03 10:00:00Z",
        "trace_id": trace,
        "correlation_id": corr,
    }))
}

fn signature_invalid() -> ResponseTemplate {
    // The reference's text for AADSTS700027.
    entra_error(
        401,
        "invalid_client",
        700027,
        "Client assertion failed signature validation.",
    )
}

fn form_of(r: &Request) -> HashMap<String, String> {
    url::form_urlencoded::parse(&r.body).into_owned().collect()
}

/// What the token endpoint received and accepted.
#[derive(Clone, Default)]
struct Seen {
    forms: Arc<Mutex<Vec<HashMap<String, String>>>>,
    /// Headers and claims of the accepted client assertions.
    headers: Arc<Mutex<Vec<Value>>>,
    claims: Arc<Mutex<Vec<Value>>>,
}

impl Seen {
    fn forms(&self) -> Vec<HashMap<String, String>> {
        self.forms.lock().unwrap().clone()
    }
}

/// How the app proves who it is.
#[derive(Clone)]
enum AppCredential {
    /// The certificate uploaded to the app registration.
    Certificate {
        public: String,
        x5t: String,
        x5t_s256: String,
    },
    /// A federated identity credential: the issuer's key, issuer, subject.
    Federated {
        public: String,
        issuer: String,
        subject: String,
    },
}

/// The token endpoint of a confidential client (client credentials grant).
struct AppTokenEndpoint {
    aud: String,
    scope: String,
    credential: AppCredential,
    seen: Seen,
}

// A refusal is the response itself; its size does not matter here.
#[allow(clippy::result_large_err)]
impl AppTokenEndpoint {
    fn check_certificate(
        &self,
        jwt: &str,
        public: &str,
        x5t: &str,
        x5t_s256: &str,
    ) -> Result<(), ResponseTemplate> {
        let malformed = || {
            entra_error(
                400,
                "invalid_client",
                50027,
                "JWT token is invalid or malformed.",
            )
        };
        let header = jsonwebtoken::decode_header(jwt).map_err(|_| malformed())?;
        let raw_header: Value = {
            let h = jwt.split('.').next().unwrap_or("");
            let bytes = decode_b64url(h).ok_or_else(malformed)?;
            serde_json::from_slice(&bytes).map_err(|_| malformed())?
        };
        if raw_header["typ"] != "JWT" {
            return Err(malformed());
        }
        // The current format: PS256 with x5t#S256; the earlier one, still
        // accepted: RS256 with the SHA-1 x5t.
        let named = match header.alg {
            Algorithm::PS256 => header.x5t_s256.as_deref() == Some(x5t_s256),
            Algorithm::RS256 => {
                header.x5t.as_deref() == Some(x5t) || header.x5t_s256.as_deref() == Some(x5t_s256)
            }
            _ => return Err(signature_invalid()),
        };
        if !named {
            return Err(entra_error(
                401,
                "invalid_client",
                700027,
                "The certificate with identifier used to sign the client assertion is not registered on application.",
            ));
        }
        let mut v = Validation::new(header.alg);
        v.set_issuer(&[CLIENT]);
        v.sub = Some(CLIENT.into());
        v.set_audience(&[self.aud.as_str()]);
        v.set_required_spec_claims(&["exp", "nbf", "iss", "sub", "aud"]);
        v.validate_nbf = true;
        v.leeway = 0;
        let key = DecodingKey::from_rsa_pem(public.as_bytes()).unwrap();
        let claims = match jsonwebtoken::decode::<Value>(jwt, &key, &v) {
            Ok(t) => t.claims,
            Err(e) => {
                use jsonwebtoken::errors::ErrorKind as K;
                return Err(match e.kind() {
                    K::ExpiredSignature | K::ImmatureSignature => entra_error(
                        401,
                        "invalid_client",
                        700024,
                        "Client assertion is not within its valid time range.",
                    ),
                    K::InvalidAudience => entra_error(
                        401,
                        "invalid_client",
                        700027,
                        "Client assertion contains an invalid audience.",
                    ),
                    K::InvalidSignature => signature_invalid(),
                    _ => entra_error(
                        401,
                        "invalid_client",
                        700027,
                        &format!("Client assertion is invalid ({e:?})."),
                    ),
                });
            }
        };
        // "Keep it short - 5-10 minutes after nbf at most."
        let (nbf, exp) = (
            claims["nbf"].as_i64().unwrap_or(0),
            claims["exp"].as_i64().unwrap_or(0),
        );
        if exp - nbf > 600 {
            return Err(entra_error(
                401,
                "invalid_client",
                700024,
                "Client assertion lives longer than 10 minutes.",
            ));
        }
        let mut seen = self.seen.claims.lock().unwrap();
        if claims["jti"].as_str().is_none_or(str::is_empty)
            || seen.iter().any(|c| c["jti"] == claims["jti"])
        {
            return Err(entra_error(
                401,
                "invalid_client",
                700027,
                "Client assertion has no jti, or one already used.",
            ));
        }
        seen.push(claims);
        self.seen.headers.lock().unwrap().push(raw_header);
        Ok(())
    }

    fn check_federated(
        &self,
        jwt: &str,
        public: &str,
        issuer: &str,
        subject: &str,
    ) -> Result<(), ResponseTemplate> {
        let no_match = || {
            entra_error(
                400,
                "invalid_client",
                70021,
                "No matching federated identity record found for presented assertion.",
            )
        };
        let header = jsonwebtoken::decode_header(jwt).map_err(|_| no_match())?;
        let mut v = Validation::new(header.alg);
        v.set_issuer(&[issuer]);
        v.sub = Some(subject.into());
        v.set_audience(&[FEDERATED_AUD]);
        v.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
        v.leeway = 0;
        let key = DecodingKey::from_rsa_pem(public.as_bytes()).unwrap();
        let claims = jsonwebtoken::decode::<Value>(jwt, &key, &v)
            .map_err(|_| no_match())?
            .claims;
        self.seen.claims.lock().unwrap().push(claims);
        Ok(())
    }
}

impl Respond for AppTokenEndpoint {
    fn respond(&self, r: &Request) -> ResponseTemplate {
        let form = form_of(r);
        self.seen.forms.lock().unwrap().push(form.clone());
        let get = |k: &str| form.get(k).map(String::as_str);
        if get("grant_type") != Some("client_credentials") {
            return entra_error(
                400,
                "unsupported_grant_type",
                70003,
                "The app returned an unsupported grant type.",
            );
        }
        if get("client_id") != Some(CLIENT) {
            return entra_error(
                400,
                "unauthorized_client",
                700016,
                "Application was not found in the directory.",
            );
        }
        if get("scope") != Some(self.scope.as_str()) {
            // The documented error response, verbatim.
            return ResponseTemplate::new(400).set_body_raw(
                doc_fixture("entra/v2-oauth2-client-creds-error.json").into_bytes(),
                "application/json",
            );
        }
        if form.contains_key("client_secret") {
            return entra_error(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided.",
            );
        }
        if get("client_assertion_type") != Some(ASSERTION_TYPE) {
            return entra_error(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'client_assertion_type'.",
            );
        }
        let Some(jwt) = get("client_assertion") else {
            return entra_error(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'client_assertion'.",
            );
        };
        let checked = match &self.credential {
            AppCredential::Certificate {
                public,
                x5t,
                x5t_s256,
            } => self.check_certificate(jwt, public, x5t, x5t_s256),
            AppCredential::Federated {
                public,
                issuer,
                subject,
            } => self.check_federated(jwt, public, issuer, subject),
        };
        match checked {
            Ok(()) => ResponseTemplate::new(200).set_body_raw(
                doc_fixture("entra/v2-oauth2-client-creds-token.json").into_bytes(),
                "application/json",
            ),
            Err(refusal) => refusal,
        }
    }
}

fn decode_b64url(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
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

fn token_path() -> String {
    format!("/{TENANT}/oauth2/v2.0/token")
}

/// Mounts the app's token endpoint over the tenant's (which takes anything).
fn mount_app_token(fx: &GraphFx, credential: AppCredential) -> Seen {
    let seen = Seen::default();
    fx.mount(
        Mock::given(method("POST"))
            .and(path(token_path()))
            .respond_with(AppTokenEndpoint {
                aud: format!("{}{}", fx.uri(), token_path()),
                scope: format!("{}/.default", fx.uri()),
                credential,
                seen: seen.clone(),
            })
            .with_priority(1),
    );
    seen
}

fn certificate(c: &Cert) -> AppCredential {
    AppCredential::Certificate {
        public: c.public.clone(),
        x5t: c.x5t.clone(),
        x5t_s256: c.x5t_s256.clone(),
    }
}

fn env_with(fx: &GraphFx, extra: Value, secret: Option<&str>) -> SourceEnv {
    let mut settings = json!({"tenant_id": TENANT, "client_id": CLIENT, "graph_base": fx.uri(), "login_base": fx.uri()});
    for (k, v) in extra.as_object().unwrap() {
        settings[k] = v.clone();
    }
    let env = SourceEnv::new("entra", "Entra", settings, secret.unwrap_or("unused"));
    if secret.is_none() {
        env.secrets.delete(env.source).unwrap();
    }
    env
}

/// Incremental rounds that find nothing changed, again and again (a
/// second sync of the same source reads the deltas).
fn mount_incremental(fx: &GraphFx) {
    use wiremock::matchers::query_param;
    let uri = fx.uri();
    fx.mount(
        fx.get("/v1.0/users/delta", json!({"@odata.deltaLink": format!("{uri}/v1.0/users/delta?$deltatoken=u1"), "value": []}))
            .and(query_param("$deltatoken", "u1")),
    );
    fx.mount(
        fx.get("/v1.0/servicePrincipals/delta", json!({"@odata.deltaLink": format!("{uri}/v1.0/servicePrincipals/delta?$deltatoken=d1"), "value": []}))
            .and(query_param("$deltatoken", "d1")),
    );
}

fn needs_secret(env: &SourceEnv) -> bool {
    let s = env.store.source(env.source).unwrap();
    custodian::sync::source_needs_secret(&s.kind, &s.settings)
}

// ------------------------------------------------------------ certificate

#[test]
fn a_certificate_key_in_the_secret_signs_a_client_assertion_entra_verifies() {
    let c = cert();
    let fx = GraphFx::start();
    mount_tenant(&fx, page2());
    mount_incremental(&fx);
    let seen = mount_app_token(&fx, certificate(&c));
    let file = c.cert_file.to_str().unwrap();
    let mut env = env_with(&fx, json!({"certificate_file": file}), Some(&c.key));
    assert!(needs_secret(&env), "the key is the secret here");
    env.sync().unwrap();

    // One token for the run, asked for as documented, without a secret.
    let forms = seen.forms();
    assert_eq!(forms.len(), 1, "{forms:?}");
    let f = &forms[0];
    assert_eq!(f["grant_type"], "client_credentials");
    assert_eq!(f["client_assertion_type"], ASSERTION_TYPE);
    assert_eq!(f["scope"], format!("{}/.default", fx.uri()));
    assert!(!f.contains_key("client_secret"));
    // The current format: PS256 naming the certificate by x5t#S256.
    let h = seen.headers.lock().unwrap()[0].clone();
    assert_eq!(
        (h["alg"].as_str(), h["typ"].as_str()),
        (Some("PS256"), Some("JWT"))
    );
    assert_eq!(h["x5t#S256"], c.x5t_s256.as_str());
    let claims = seen.claims.lock().unwrap()[0].clone();
    assert_eq!(claims["aud"], format!("{}{}", fx.uri(), token_path()));
    assert_eq!(
        (claims["iss"].as_str(), claims["sub"].as_str()),
        (Some(CLIENT), Some(CLIENT))
    );
    let jti = claims["jti"].as_str().unwrap();
    assert_eq!(jti.len(), 36, "a GUID: {jti}");
    let (nbf, exp) = (
        claims["nbf"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert!(
        (Utc::now().timestamp() - nbf).abs() < 60 && exp - nbf == 300,
        "{claims}"
    );

    // The inventory is read as with a client secret, and the app's SP is
    // the identity Custodian signs in as.
    assert_eq!(env.detail("sp-ci").name, "ci-deployer");
    assert!(env.detail("sp-ci").custodian_signs_in);

    // A PEM bundle (certificate and key in one text) in the secret works too.
    env.secrets
        .set(env.source, &format!("{}{}", c.cert, c.key))
        .unwrap();
    env.sync().unwrap();
    assert_eq!(seen.forms().len(), 2);
    assert_eq!(
        seen.claims.lock().unwrap().len(),
        2,
        "accepted: a second jti"
    );
}

#[test]
fn a_private_key_file_needs_no_secret_and_must_be_its_owners_only() {
    let c = cert();
    let fx = GraphFx::start();
    mount_tenant(&fx, page2());
    let seen = mount_app_token(&fx, certificate(&c));
    let mut env = env_with(
        &fx,
        json!({"certificate_file": c.cert_file.to_str().unwrap(), "private_key_file": c.key_file.to_str().unwrap()}),
        None,
    );
    assert!(!needs_secret(&env), "the key file replaces the secret");
    env.sync().unwrap();
    assert_eq!(seen.claims.lock().unwrap().len(), 1);

    // Readable by others: refused before any request, saying how to fix it.
    chmod(&c.key_file, 0o644);
    let err = env.sync().unwrap_err();
    assert_eq!(err.code, ErrorCode::SourceAuth, "{err:?}");
    assert!(
        err.message.contains("readable by group or others") && err.message.contains("chmod 600"),
        "{}",
        err.message
    );
    assert_eq!(seen.forms().len(), 1, "nothing was sent");
    assert!(!err.message.contains("PRIVATE KEY"));
    assert_eq!(last_run(&env).error_code.as_deref(), Some("source_auth"));
}

#[test]
fn a_thumbprint_names_the_certificate_instead_of_its_file() {
    let c = cert();
    let fx = GraphFx::start();
    mount_tenant(&fx, page2());
    let seen = mount_app_token(&fx, certificate(&c));
    // The SHA-1 thumbprint, as the admin center shows it (no colons) or as
    // openssl prints it: the earlier format, x5t with RS256.
    for thumb in [c.sha1_hex.replace(':', ""), c.sha1_hex.clone()] {
        let mut env = env_with(&fx, json!({"certificate_thumbprint": thumb}), Some(&c.key));
        env.sync().unwrap();
        let h = seen.headers.lock().unwrap().last().cloned().unwrap();
        assert_eq!(h["alg"], "RS256", "{h}");
        assert_eq!(h["x5t"], c.x5t.as_str());
        assert!(h.get("x5t#S256").is_none());
    }
    // A SHA-256 thumbprint: x5t#S256 with PS256.
    let mut env = env_with(
        &fx,
        json!({"certificate_thumbprint": c.sha256_hex.to_lowercase()}),
        Some(&c.key),
    );
    env.sync().unwrap();
    let h = seen.headers.lock().unwrap().last().cloned().unwrap();
    assert_eq!(
        (h["alg"].as_str(), h["x5t#S256"].as_str()),
        (Some("PS256"), Some(c.x5t_s256.as_str()))
    );
    assert_eq!(seen.claims.lock().unwrap().len(), 3);
}

#[test]
fn a_wrong_key_or_an_unregistered_certificate_is_source_auth_naming_the_app() {
    let c = cert();
    let other = cert();
    let fx = GraphFx::start();
    mount_tenant(&fx, page2());
    let seen = mount_app_token(&fx, certificate(&c));
    // The registered certificate, but another key signs.
    let mut env = env_with(
        &fx,
        json!({"certificate_file": c.cert_file.to_str().unwrap()}),
        Some(&other.key),
    );
    let err = env.sync().unwrap_err();
    assert_eq!(err.code, ErrorCode::SourceAuth, "{err:?}");
    for part in [
        CLIENT,
        "AADSTS700027",
        "Client assertion failed signature validation",
        "certificate",
    ] {
        assert!(err.message.contains(part), "{part}: {}", err.message);
    }
    assert!(
        !err.message.contains("Trace ID"),
        "the first line only: {}",
        err.message
    );
    assert!(!err.message.contains("PRIVATE") && !err.message.contains(&other.key[40..80]));
    let run = last_run(&env);
    assert_eq!(
        (run.status.as_str(), run.error_code.as_deref()),
        ("failed", Some("source_auth"))
    );
    // A certificate the app does not have, with its own key.
    let mut env = env_with(
        &fx,
        json!({"certificate_file": other.cert_file.to_str().unwrap()}),
        Some(&other.key),
    );
    let err = env.sync().unwrap_err();
    assert_eq!(err.code, ErrorCode::SourceAuth);
    assert!(
        err.message.contains("not registered on application"),
        "{}",
        err.message
    );
    assert!(
        err.message.contains(other.cert_file.to_str().unwrap()),
        "names the file: {}",
        err.message
    );
    assert!(
        seen.claims.lock().unwrap().is_empty(),
        "nothing was accepted"
    );
}

/// Signs an assertion in the test, as a client would.
fn assertion(c: &Cert, claims: &Value) -> String {
    let mut h = Header::new(Algorithm::PS256);
    h.x5t_s256 = Some(c.x5t_s256.clone());
    jsonwebtoken::encode(
        &h,
        claims,
        &EncodingKey::from_rsa_pem(c.key.as_bytes()).unwrap(),
    )
    .unwrap()
}

#[test]
fn the_fixture_token_endpoint_refuses_a_tampered_or_stale_assertion() {
    let c = cert();
    let fx = GraphFx::start();
    let seen = mount_app_token(&fx, certificate(&c));
    let url = format!("{}{}", fx.uri(), token_path());
    let post = |jwt: &str, kind: &str| -> (u16, Value) {
        let r = reqwest::blocking::Client::new()
            .post(&url)
            .form(&[
                ("client_id", CLIENT),
                ("grant_type", "client_credentials"),
                ("scope", &format!("{}/.default", fx.uri())),
                ("client_assertion_type", kind),
                ("client_assertion", jwt),
            ])
            .send()
            .unwrap();
        (r.status().as_u16(), r.json().unwrap())
    };
    let now = Utc::now().timestamp();
    let good = |jti: &str| json!({"aud": url, "iss": CLIENT, "sub": CLIENT, "jti": jti, "nbf": now, "iat": now, "exp": now + 300});
    let ok = assertion(&c, &good("j1"));
    assert_eq!(post(&ok, ASSERTION_TYPE).0, 200, "a well-made assertion");
    let code = |(s, b): (u16, Value)| (s, b["error_codes"][0].as_u64().unwrap_or(0));
    // The same one again: its jti is used.
    assert_eq!(code(post(&ok, ASSERTION_TYPE)), (401, 700027));
    // The claims changed after signing (sub), the signature kept.
    let fresh = assertion(&c, &good("j2"));
    let parts: Vec<&str> = fresh.split('.').collect();
    let mut payload: Value = serde_json::from_slice(&decode_b64url(parts[1]).unwrap()).unwrap();
    payload["sub"] = json!("another-app");
    payload["iss"] = json!("another-app");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64url(payload.to_string().as_bytes()),
        parts[2]
    );
    let (status, body) = post(&tampered, ASSERTION_TYPE);
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client")),
        "{body}"
    );
    // The signature altered.
    let mut sig = decode_b64url(parts[2]).unwrap();
    sig[10] ^= 1;
    let flipped = format!("{}.{}.{}", parts[0], parts[1], b64url(&sig));
    assert_eq!(code(post(&flipped, ASSERTION_TYPE)), (401, 700027));
    // Signed by another key.
    let other = cert();
    let mut h = Header::new(Algorithm::PS256);
    h.x5t_s256 = Some(c.x5t_s256.clone());
    let forged = jsonwebtoken::encode(
        &h,
        &good("j3"),
        &EncodingKey::from_rsa_pem(other.key.as_bytes()).unwrap(),
    )
    .unwrap();
    assert_eq!(code(post(&forged, ASSERTION_TYPE)), (401, 700027));
    // Expired, not yet valid, too long-lived, for another audience, without jti.
    let mut bad = Vec::new();
    let mut v = good("j4");
    v["exp"] = json!(now - 10);
    v["nbf"] = json!(now - 310);
    bad.push((v, 700024));
    let mut v = good("j5");
    v["nbf"] = json!(now + 120);
    bad.push((v, 700024));
    let mut v = good("j6");
    v["exp"] = json!(now + 3600);
    bad.push((v, 700024));
    let mut v = good("j7");
    v["aud"] = json!("https://login.microsoftonline.com/other/oauth2/v2.0/token");
    bad.push((v, 700027));
    let mut v = good("j8");
    v.as_object_mut().unwrap().remove("jti");
    bad.push((v, 700027));
    for (claims, expect) in bad {
        assert_eq!(
            code(post(&assertion(&c, &claims), ASSERTION_TYPE)),
            (401, expect),
            "{claims}"
        );
    }
    // The wrong assertion type.
    let (status, body) = post(
        &assertion(&c, &good("j9")),
        "urn:ietf:params:oauth:client-assertion-type:saml2-bearer",
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    assert_eq!(
        seen.claims.lock().unwrap().len(),
        1,
        "only the first was accepted"
    );
}

// ------------------------------------------------------------ federation

fn federated_token(private: &str, subject: &str) -> String {
    let now = Utc::now().timestamp();
    jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        &json!({"iss": GH_ISSUER, "sub": subject, "aud": FEDERATED_AUD, "iat": now, "nbf": now, "exp": now + 600,
                "jti": format!("{subject}-{}", rand_suffix())}),
        &EncodingKey::from_rsa_pem(private.as_bytes()).unwrap(),
    )
    .unwrap()
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

#[test]
fn a_federated_token_file_is_the_client_assertion_read_again_at_each_sign_in() {
    let (issuer_key, issuer_public) = crate::harness::key_pair("rsa");
    let fx = GraphFx::start();
    mount_tenant(&fx, page2());
    mount_incremental(&fx);
    let seen = mount_app_token(
        &fx,
        AppCredential::Federated {
            public: issuer_public,
            issuer: GH_ISSUER.into(),
            subject: GH_SUBJECT.into(),
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("azure-identity-token");
    let first = federated_token(&issuer_key, GH_SUBJECT);
    std::fs::write(&file, format!("{first}\n")).unwrap();
    let mut env = env_with(
        &fx,
        json!({"federated_token_file": file.to_str().unwrap()}),
        None,
    );
    assert!(!needs_secret(&env), "no secret at all");
    env.sync().unwrap();
    assert!(env.detail("sp-ci").custodian_signs_in);

    // The platform rotated the token: the next sign-in sends the new one.
    let second = federated_token(&issuer_key, GH_SUBJECT);
    assert_ne!(first, second);
    std::fs::write(&file, &second).unwrap();
    env.sync().unwrap();
    let sent: Vec<String> = seen
        .forms()
        .iter()
        .map(|f| f["client_assertion"].clone())
        .collect();
    assert_eq!(sent, vec![first, second]);
    assert!(seen
        .forms()
        .iter()
        .all(|f| f["client_assertion_type"] == ASSERTION_TYPE
            && f["grant_type"] == "client_credentials"
            && !f.contains_key("client_secret")));

    // $AZURE_FEDERATED_TOKEN_FILE names the file (as AKS and azure/login set it).
    std::env::set_var(custodian::sync::entra::auth::FEDERATED_TOKEN_ENV, &file);
    let mut env2 = env_with(
        &fx,
        json!({"federated_token_file": custodian::sync::entra::auth::FROM_ENV}),
        None,
    );
    env2.sync().unwrap();
    assert_eq!(seen.forms().len(), 3);

    // A token whose subject has no federated credential on the app.
    std::fs::write(
        &file,
        federated_token(&issuer_key, "repo:contoso/other:ref:refs/heads/main"),
    )
    .unwrap();
    let err = env.sync().unwrap_err();
    assert_eq!(err.code, ErrorCode::SourceAuth, "{err:?}");
    for part in [
        "AADSTS70021",
        CLIENT,
        file.to_str().unwrap(),
        "federated identity credential",
    ] {
        assert!(err.message.contains(part), "{part}: {}", err.message);
    }
    // Not a JWT: refused before it is sent.
    std::fs::write(&file, "not a token").unwrap();
    let err = env.sync().unwrap_err();
    assert_eq!(err.code, ErrorCode::SourceAuth);
    assert!(
        err.message.contains("does not hold a JWT"),
        "{}",
        err.message
    );
    assert_eq!(seen.forms().len(), 4, "nothing sent");
}

// ------------------------------------------------------------ device code

#[derive(Clone, Copy, Debug, PartialEq)]
enum Poll {
    Pending,
    SlowDown,
    Declined,
    Expired,
    SignedIn,
}

/// Entra for a public client: `/devicecode`, the device-code grant
/// answered from a script (and `slow_down` whenever it is polled faster
/// than the interval), and the refresh-token grant, which accepts only the
/// latest refresh token it issued (stricter than Entra, which also honours
/// an earlier one until it expires: a client that kept the old one fails)
/// and hands back a new one each time.
#[derive(Clone)]
struct PublicClient {
    unit: Duration,
    interval: u64,
    expires_in: u64,
    script: Arc<Mutex<VecDeque<Poll>>>,
    /// When /devicecode answered, then each poll.
    times: Arc<Mutex<Vec<Instant>>>,
    current_interval: Arc<Mutex<u64>>,
    refresh: Arc<Mutex<String>>,
    issued: Arc<Mutex<u32>>,
    forms: Arc<Mutex<Vec<HashMap<String, String>>>>,
    graph: String,
}

impl PublicClient {
    fn new(graph: String, unit: Duration, script: &[Poll]) -> PublicClient {
        PublicClient {
            unit,
            interval: 5,
            expires_in: 900,
            script: Arc::new(Mutex::new(script.iter().copied().collect())),
            times: Default::default(),
            current_interval: Arc::new(Mutex::new(5)),
            refresh: Arc::new(Mutex::new(DOC_REFRESH.into())),
            issued: Default::default(),
            forms: Default::default(),
            graph,
        }
    }

    fn forms(&self) -> Vec<HashMap<String, String>> {
        self.forms.lock().unwrap().clone()
    }

    fn scopes_ok(&self, scope: &str) -> bool {
        let s: Vec<&str> = scope.split(' ').collect();
        s.contains(&"offline_access")
            && custodian::sync::entra::auth::DELEGATED_SCOPES
                .iter()
                .all(|p| s.contains(&format!("{}/{p}", self.graph).as_str()))
    }

    fn device_code(&self, form: &HashMap<String, String>) -> ResponseTemplate {
        let scope = form.get("scope").cloned().unwrap_or_default();
        if form.get("client_id").map(String::as_str) != Some(CLIENT)
            || !self.scopes_ok(&scope)
            || !scope.contains("openid")
        {
            return entra_error(
                400,
                "invalid_request",
                90014,
                "A required field for this request is missing or invalid.",
            );
        }
        self.times.lock().unwrap().push(Instant::now());
        *self.current_interval.lock().unwrap() = self.interval;
        // Microsoft documents the fields of this answer, not an example
        // body: these are its fields with the documented meanings.
        let uri = "https://microsoft.com/devicelogin";
        ResponseTemplate::new(200).set_body_json(json!({
            "device_code": DEVICE_CODE,
            "user_code": USER_CODE,
            "verification_uri": uri,
            "expires_in": self.expires_in,
            "interval": self.interval,
            "message": format!("To sign in, use a web browser to open the page {uri} and enter the code {USER_CODE} to authenticate."),
        }))
    }

    fn token_body(&self) -> ResponseTemplate {
        let mut body: Value =
            serde_json::from_str(&doc_fixture("entra/v2-oauth2-device-code-token.json")).unwrap();
        let mut issued = self.issued.lock().unwrap();
        if *issued > 0 {
            body["refresh_token"] = json!(format!("0.ARotated-refresh-token-{issued}"));
        }
        *issued += 1;
        *self.refresh.lock().unwrap() = body["refresh_token"].as_str().unwrap().to_string();
        ResponseTemplate::new(200).set_body_json(body)
    }

    fn poll(&self, form: &HashMap<String, String>) -> ResponseTemplate {
        if form.get("device_code").map(String::as_str) != Some(DEVICE_CODE) {
            return entra_error(
                400,
                "bad_verification_code",
                70018,
                "Invalid verification code.",
            );
        }
        let now = Instant::now();
        let too_fast = {
            let mut times = self.times.lock().unwrap();
            let last = *times.last().unwrap();
            times.push(now);
            let wait = self.unit * u32::try_from(*self.current_interval.lock().unwrap()).unwrap();
            now.duration_since(last) < wait
        };
        let step = if too_fast {
            Poll::SlowDown
        } else {
            self.script
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or(Poll::Pending)
        };
        match step {
            Poll::Pending => entra_error(
                400,
                "authorization_pending",
                70016,
                "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
            ),
            Poll::SlowDown => {
                *self.current_interval.lock().unwrap() += 5;
                entra_error(400, "slow_down", 70016, "Polling too fast: slow down.")
            }
            Poll::Declined => entra_error(
                400,
                "authorization_declined",
                70000,
                "The end user denied the authorization request.",
            ),
            Poll::Expired => entra_error(400, "expired_token", 70019, "Verification code expired."),
            Poll::SignedIn => self.token_body(),
        }
    }

    fn redeem(&self, form: &HashMap<String, String>) -> ResponseTemplate {
        let get = |k: &str| form.get(k).map(String::as_str);
        if get("client_id") != Some(CLIENT)
            || form.contains_key("client_secret")
            || form.contains_key("client_assertion")
            || !self.scopes_ok(get("scope").unwrap_or(""))
        {
            return entra_error(
                400,
                "invalid_request",
                90014,
                "A required field for this request is missing or invalid.",
            );
        }
        if get("refresh_token") != Some(self.refresh.lock().unwrap().as_str()) {
            return entra_error(
                400,
                "invalid_grant",
                70008,
                "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.",
            );
        }
        self.token_body()
    }
}

impl Respond for PublicClient {
    fn respond(&self, r: &Request) -> ResponseTemplate {
        let form = form_of(r);
        self.forms.lock().unwrap().push(form.clone());
        if r.url.path().ends_with("/devicecode") {
            return self.device_code(&form);
        }
        match form.get("grant_type").map(String::as_str) {
            Some(DEVICE_GRANT) => self.poll(&form),
            Some("refresh_token") => self.redeem(&form),
            _ => entra_error(
                400,
                "unsupported_grant_type",
                70003,
                "The app returned an unsupported grant type.",
            ),
        }
    }
}

fn mount_public_client(fx: &GraphFx, unit: Duration, script: &[Poll]) -> PublicClient {
    let pc = PublicClient::new(fx.uri(), unit, script);
    fx.mount(
        Mock::given(method("POST"))
            .and(path_regex(format!(
                r"^/{TENANT}/oauth2/v2\.0/(token|devicecode)$"
            )))
            .respond_with(pc.clone())
            .with_priority(1),
    );
    pc
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// `source sign-in` as the CLI and the desktop run it, one protocol second
/// lasting `unit`.
fn sign_in(
    env: &SourceEnv,
    unit: Duration,
) -> custodian::Result<(custodian::ops::DeviceCodePrompt, Option<String>)> {
    let view = env.store.source(env.source).unwrap();
    let rt = runtime();
    let s = rt.block_on(custodian::ops::begin_sign_in(
        &view,
        fast_policy(),
        Cancel::new(),
    ))?;
    let prompt = s.prompt().clone();
    let user = rt.block_on(custodian::ops::finish_sign_in(
        &view,
        s.with_unit(unit),
        &env.secrets,
    ))?;
    Ok((prompt, user))
}

/// Every text and blob of every table of the store, as one string.
fn everything_stored(env: &SourceEnv) -> String {
    let db = env.store.raw_db();
    let mut all = String::new();
    for t in db.tables().unwrap() {
        let rows: Vec<String> = db
            .query_map(&format!("SELECT * FROM {t}"), [], |r| {
                Ok((0..r.len())
                    .map(|i| format!("{:?}", r.value(i)))
                    .collect::<Vec<_>>()
                    .join("|"))
            })
            .unwrap();
        all.push_str(&rows.join("\n"));
    }
    all
}

#[test]
fn the_device_code_sign_in_polls_as_documented_and_slows_down_when_told() {
    let unit = Duration::from_millis(10);
    let fx = GraphFx::start();
    mount_tenant(&fx, page2());
    mount_incremental(&fx);
    use Poll::*;
    let pc = mount_public_client(
        &fx,
        unit,
        &[Pending, Pending, SlowDown, Pending, SlowDown, SignedIn],
    );
    let mut env = env_with(&fx, json!({"delegated": true}), None);
    assert!(needs_secret(&env), "the refresh token is the secret");
    // Before anyone signed in, a sync says what to do.
    let err = env.sync().unwrap_err();
    assert_eq!(err.code, ErrorCode::SourceAuth, "{err:?}");
    assert!(
        err.message.contains("custodian source sign-in Entra"),
        "{}",
        err.message
    );

    let (prompt, user) = sign_in(&env, unit).unwrap();
    assert_eq!(prompt.user_code, USER_CODE);
    assert_eq!(prompt.verification_uri, "https://microsoft.com/devicelogin");
    assert!(prompt.message.contains(USER_CODE), "{}", prompt.message);
    assert_eq!(prompt.expires_in, 900);
    assert_eq!(
        user, None,
        "the documented id_token is cut short: nobody is named"
    );
    // The waits between polls, measured by the server: the interval (5),
    // then 5 s more after each slow_down, never faster (the fixture answers
    // slow_down to a poll that comes too soon, and none did).
    let times = pc.times.lock().unwrap().clone();
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    let expect = [5u32, 5, 5, 10, 10, 15];
    assert_eq!(gaps.len(), expect.len(), "{gaps:?}");
    for (g, e) in gaps.iter().zip(expect) {
        assert!(*g >= unit * e, "{gaps:?}");
    }
    assert!(
        pc.script.lock().unwrap().is_empty(),
        "every scripted answer was used"
    );
    let forms = pc.forms();
    assert_eq!(forms[0]["client_id"], CLIENT);
    assert!(forms[1..]
        .iter()
        .all(|f| f["grant_type"] == DEVICE_GRANT && f["device_code"] == DEVICE_CODE));
    // The refresh token is the source's secret now.
    assert_eq!(
        env.secrets.get(env.source).unwrap().as_deref(),
        Some(DOC_REFRESH)
    );

    // A sync redeems it, reads as the administrator, and keeps the refresh
    // token Entra hands back in its place.
    env.sync().unwrap();
    let redeem = pc.forms().last().cloned().unwrap();
    assert_eq!(redeem["grant_type"], "refresh_token");
    assert_eq!(redeem["refresh_token"], DOC_REFRESH);
    assert!(!redeem.contains_key("client_secret") && !redeem.contains_key("client_assertion"));
    let rotated1 = "0.ARotated-refresh-token-1";
    assert_eq!(
        env.secrets.get(env.source).unwrap().as_deref(),
        Some(rotated1)
    );
    assert_eq!(env.detail("sp-ci").name, "ci-deployer");
    assert!(
        !env.detail("sp-ci").custodian_signs_in,
        "a person signed in, not the app"
    );
    // The next sync uses the rotated one (the fixture refuses the old one).
    env.sync().unwrap();
    assert_eq!(pc.forms().last().unwrap()["refresh_token"], rotated1);
    let rotated2 = "0.ARotated-refresh-token-2";
    assert_eq!(
        env.secrets.get(env.source).unwrap().as_deref(),
        Some(rotated2)
    );

    // None of them is in the cache: no table, no run, no warning.
    let stored = everything_stored(&env);
    assert!(stored.len() > 1000, "the cache was read");
    for t in [
        DOC_REFRESH,
        rotated1,
        rotated2,
        "AwABAAAAvPM1KaPl",
        "Rotated-refresh",
    ] {
        assert!(!stored.contains(t), "{t} in the cache");
    }
    let runs = serde_json::to_string(&env.store.sync_runs(Some(env.source), 10).unwrap()).unwrap();
    assert!(!runs.contains("AwABAAAA") && !runs.contains("Rotated-refresh"));
}

#[test]
fn a_declined_or_expired_device_code_ends_with_a_clear_error() {
    let unit = Duration::from_millis(2);
    use Poll::*;
    for (script, words) in [
        (vec![Pending, Declined], "declined"),
        (vec![Pending, Expired], "expired"),
    ] {
        let fx = GraphFx::start();
        let pc = mount_public_client(&fx, unit, &script);
        let env = env_with(&fx, json!({"delegated": true}), None);
        let err = sign_in(&env, unit).unwrap_err();
        assert_eq!(err.code, ErrorCode::SourceAuth, "{err:?}");
        assert!(
            err.message.contains(words) && err.message.contains("custodian source sign-in Entra"),
            "{}",
            err.message
        );
        assert_eq!(pc.forms().len(), 3, "it stopped polling");
        assert_eq!(env.secrets.get(env.source).unwrap(), None, "nothing kept");
    }
    // Nobody signs in before the code's lifetime is over.
    let fx = GraphFx::start();
    let mut pc = PublicClient::new(fx.uri(), unit, &[]);
    pc.expires_in = 12;
    fx.mount(
        Mock::given(method("POST"))
            .and(path_regex(format!(
                r"^/{TENANT}/oauth2/v2\.0/(token|devicecode)$"
            )))
            .respond_with(pc.clone())
            .with_priority(1),
    );
    let env = env_with(&fx, json!({"delegated": true}), None);
    let err = sign_in(&env, unit).unwrap_err();
    assert!(
        err.message.contains("expired before anyone signed in"),
        "{}",
        err.message
    );
    assert_eq!(
        pc.forms().len(),
        1 + 3,
        "polls at 5, 10 and 15 s of a 12 s code"
    );
    // A source that does not sign in as an administrator has no sign-in.
    let env = env_with(&fx, json!({}), Some("s3cret"));
    let err = sign_in(&env, unit).unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidInput, "{err:?}");
    assert!(err.message.contains("delegated=true"), "{}", err.message);
}

/// The desktop's sign-in: "Sign in" shows the code (`begin`), the row waits
/// (`finish`) and can stop waiting (`cancel`); starting again stops an
/// earlier wait, whose code is no longer shown.
#[test]
fn the_desktop_sign_in_waits_for_its_code_and_can_be_stopped() {
    let unit = Duration::from_millis(5);
    let fx = GraphFx::start();
    use Poll::*;
    let pc = mount_public_client(&fx, unit, &[Pending, SignedIn]);
    let env = env_with(&fx, json!({"delegated": true}), None);
    let view = env.store.source(env.source).unwrap();
    let signs = custodian::ops::DeviceSignIns::with_unit(unit);
    let rt = runtime();
    let finish = || rt.block_on(signs.finish(&view, &env.secrets));
    // Nothing begun: nothing to wait for or to stop.
    assert_eq!(finish().unwrap_err().code, ErrorCode::InvalidInput);
    assert!(!signs.cancel(env.source).unwrap());

    let prompt = rt.block_on(signs.begin(&view, fast_policy())).unwrap();
    assert_eq!(prompt.user_code, USER_CODE);
    assert_eq!(
        env.secrets.get(env.source).unwrap(),
        None,
        "nothing kept yet"
    );
    assert_eq!(finish().unwrap(), None);
    assert_eq!(
        env.secrets.get(env.source).unwrap().as_deref(),
        Some(DOC_REFRESH)
    );
    // Done: nothing waits any more.
    assert!(!signs.cancel(env.source).unwrap());
    assert_eq!(finish().unwrap_err().code, ErrorCode::InvalidInput);

    // A sign-in nobody completes (the script is used up: pending until
    // stopped) is stopped by Cancel, and the earlier token is kept.
    rt.block_on(signs.begin(&view, fast_policy())).unwrap();
    let before = pc.forms().len();
    let (waited, stopped) = rt.block_on(async {
        tokio::join!(signs.finish(&view, &env.secrets), async {
            tokio::time::sleep(unit * 40).await;
            signs.cancel(env.source)
        })
    });
    assert_eq!(waited.unwrap_err().code, ErrorCode::Cancelled);
    assert!(stopped.unwrap());
    assert!(pc.forms().len() > before, "it polled until it was stopped");
    assert_eq!(
        env.secrets.get(env.source).unwrap().as_deref(),
        Some(DOC_REFRESH)
    );

    // Beginning again stops the earlier wait; the new one waits on.
    rt.block_on(signs.begin(&view, fast_policy())).unwrap();
    let (first, again) = rt.block_on(async {
        tokio::join!(signs.finish(&view, &env.secrets), async {
            tokio::time::sleep(unit * 10).await;
            signs.begin(&view, fast_policy()).await
        })
    });
    assert_eq!(first.unwrap_err().code, ErrorCode::Cancelled);
    assert_eq!(again.unwrap().user_code, USER_CODE);
    assert!(
        signs.cancel(env.source).unwrap(),
        "the second one was waiting"
    );
    // A source without a device sign-in has none to begin.
    let env = env_with(&fx, json!({}), Some("s3cret"));
    let view = env.store.source(env.source).unwrap();
    let err = rt.block_on(signs.begin(&view, fast_policy())).unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidInput, "{err:?}");
}

#[test]
fn a_refused_refresh_token_says_to_sign_in_again() {
    let fx = GraphFx::start();
    mount_tenant(&fx, page2());
    mount_public_client(&fx, Duration::from_millis(1), &[]);
    let mut env = env_with(
        &fx,
        json!({"delegated": true}),
        Some("0.AStale-refresh-token"),
    );
    let err = env.sync().unwrap_err();
    assert_eq!(err.code, ErrorCode::SourceAuth, "{err:?}");
    for part in [
        "AADSTS70008",
        "sign in again",
        "custodian source sign-in Entra",
    ] {
        assert!(err.message.contains(part), "{part}: {}", err.message);
    }
    assert!(!err.message.contains("AStale"), "the token is never shown");
    assert_eq!(
        env.secrets.get(env.source).unwrap().as_deref(),
        Some("0.AStale-refresh-token"),
        "a failed run replaces nothing"
    );
}

// ------------------------------------------------------------ the CLI

fn custodian(db: &Path, args: &[&str], stdin: Option<&str>, logs: &Path) -> Output {
    use std::io::Write;
    crate::util::test_key();
    let mut child = Command::new(env!("CARGO_BIN_EXE_custodian"))
        .arg("--db")
        .arg(crate::util::cli_location(db))
        .args(args)
        .env_remove("CUSTODIAN_DB")
        .env("CUSTODIAN_LOG", "trace")
        .env("CUSTODIAN_LOG_DIR", logs)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[test]
fn source_show_says_how_each_entra_source_signs_in() {
    let c = cert();
    let dir = tempfile::tempdir().unwrap();
    let (db, logs) = (dir.path().join("c.db"), dir.path().join("logs"));
    let cert_file = format!("certificate_file={}", c.cert_file.display());
    let key_file = format!("private_key_file={}", c.key_file.display());
    let thumb = format!("certificate_thumbprint={}", c.sha1_hex.replace(':', ""));
    let sources: [(&str, Vec<&str>, &str, &str); 5] = [
        (
            "cert",
            vec![&cert_file, &key_file],
            "certificate credential",
            "private key in",
        ),
        (
            "thumb",
            vec![&thumb],
            "certificate credential",
            "thumbprint",
        ),
        (
            "wif",
            vec!["federated_token_file=$AZURE_FEDERATED_TOKEN_FILE"],
            "workload identity federation",
            "token from $AZURE_FEDERATED_TOKEN_FILE",
        ),
        (
            "admin",
            vec!["delegated=true"],
            "delegated sign-in of an administrator (device code",
            "the administrator who signed in",
        ),
        (
            "secret",
            vec![],
            "client secret (the secret)",
            "service principal",
        ),
    ];
    for (name, extra, mode, who) in &sources {
        let mut args = vec![
            "source",
            "add",
            "entra",
            "--name",
            name,
            "--set",
            "tenant_id=tenant-1",
            "--set",
            "client_id=app-ci",
        ];
        for e in extra {
            args.extend(["--set", e]);
        }
        ok(&custodian(&db, &args, None, &logs));
        let text = ok(&custodian(&db, &["source", "show", name], None, &logs));
        assert!(
            text.contains(&format!("Signs in:   {mode}")),
            "{name}: {text}"
        );
        assert!(
            text.lines()
                .any(|l| l.starts_with("As:") && l.contains(who)),
            "{name}: {text}"
        );
        let v: Value = serde_json::from_str(&ok(&custodian(
            &db,
            &["source", "show", name, "--json"],
            None,
            &logs,
        )))
        .unwrap();
        assert!(
            v["sign_in"]["mode"].as_str().unwrap().starts_with(mode),
            "{name}: {v}"
        );
    }
    // Two ways at once are refused when the source is added.
    let out = custodian(
        &db,
        &[
            "source",
            "add",
            "entra",
            "--name",
            "both",
            "--set",
            "tenant_id=t",
            "--set",
            "client_id=c",
            "--set",
            "delegated=true",
            "--set",
            &cert_file,
        ],
        None,
        &logs,
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("keep one"),
        "{out:?}"
    );
}

#[test]
fn refresh_tokens_never_appear_in_the_cli_output_or_its_logs() {
    let fx = GraphFx::start();
    mount_tenant(&fx, page2());
    let pc = mount_public_client(&fx, Duration::from_millis(1), &[]);
    // The documented refresh token was issued by a sign-in before.
    *pc.issued.lock().unwrap() = 1;
    let dir = tempfile::tempdir().unwrap();
    let (db, logs) = (dir.path().join("c.db"), dir.path().join("logs"));
    let (login, graph) = (
        format!("login_base={}", fx.uri()),
        format!("graph_base={}", fx.uri()),
    );
    ok(&custodian(
        &db,
        &[
            "source",
            "add",
            "entra",
            "--name",
            "Entra",
            "--set",
            "tenant_id=tenant-1",
            "--set",
            "client_id=app-ci",
            "--set",
            "delegated=true",
            "--set",
            &login,
            "--set",
            &graph,
        ],
        None,
        &logs,
    ));
    let out = custodian(
        &db,
        &["sync", "Entra", "--secret-stdin", "--json"],
        Some(&format!("{DOC_REFRESH}\n")),
        &logs,
    );
    let stdout = ok(&out);
    assert_eq!(pc.forms().last().unwrap()["refresh_token"], DOC_REFRESH);
    let rotated = "0.ARotated-refresh-token-1";
    assert_eq!(
        *pc.refresh.lock().unwrap(),
        rotated,
        "Entra handed back a new one"
    );
    let mut all = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    for entry in std::fs::read_dir(&logs).unwrap() {
        all.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default());
    }
    assert!(
        all.len() > stdout.len() + 200,
        "the logs were written: {all}"
    );
    for t in [
        "AwABAAAAvPM1KaPl",
        "Rotated-refresh",
        "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiIsIng1dCI6Ik5HVEZ2",
    ] {
        assert!(!all.contains(t), "{t} in the output or logs");
    }
}
