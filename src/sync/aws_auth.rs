//! How the AWS IAM source signs in: an access key pasted as the secret, or
//! keyless, through the standard AWS credential chain and configuration
//! (the `aws-config` crate), optionally assuming a role; and the temporary
//! keys kept fresh during a long sync.
//!
//! Modes (settings of the `aws` source):
//! - **Credential chain** (no `access_key_id`): `aws-config` finds the keys
//!   as the AWS CLI does: with `profile` set, that profile of the shared
//!   config and credentials files (an IAM Identity Center (SSO) profile with
//!   its cached token from `aws sso login`, `role_arn` with `source_profile`
//!   or `credential_source`, `credential_process`, static keys, web
//!   identity); without it, the default chain: environment variables
//!   (`AWS_ACCESS_KEY_ID`, ...), `AWS_PROFILE` or the `default` profile, web
//!   identity (`AWS_WEB_IDENTITY_TOKEN_FILE`), container credentials (ECS,
//!   EKS Pod Identity) and instance credentials (IMDSv2), for the headless
//!   worker. `config_file` / `credentials_file` name other files than
//!   `~/.aws/config` / `~/.aws/credentials` (or `AWS_CONFIG_FILE` /
//!   `AWS_SHARED_CREDENTIALS_FILE`). No secret is stored.
//! - **Access key** (`access_key_id` set): the secret access key is the
//!   secret, as before.
//! - Either way, `role_arn` (with an optional `external_id`) is then assumed
//!   (`sts:AssumeRole`, session name `custodian`): Custodian works with the
//!   role's temporary keys.
//!
//! Keys that expire (a role's, SSO's, a `credential_process`'s with an
//! `Expiration`, container and instance keys) are cached and fetched anew
//! when less than [`REFRESH_MARGIN`] of their life is left, before each
//! signed call: a sync longer than a session goes on with fresh keys.
//!
//! Endpoints: IAM, STS and Organizations each resolve as the SDKs do:
//! `AWS_ENDPOINT_URL_<SERVICE>` (`_IAM`, `_STS`, `_ORGANIZATIONS`), the
//! profile's `services` section, `AWS_ENDPOINT_URL`, the profile's
//! `endpoint_url`, else the public endpoint (`ignore_configured_endpoint_urls`
//! honoured). The source's `endpoint` setting, when set, is the IAM
//! endpoint (and wins). STS is regional: the `region` setting, else
//! `AWS_REGION` / the profile's `region`, else `us-east-1`.
//!
//! `aws-config` is used without its own HTTP stack (no hyper, rustls or
//! aws-lc-rs): its few calls (STS for profile roles and web identity, the
//! SSO portal, the container and instance endpoints) go through reqwest by
//! [`ReqwestClient`]. Custodian's own calls (IAM, STS, Organizations) are
//! signed here with SigV4 and sent through the shared [`HttpClient`], with
//! its retries, limits and cancel.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_config::meta::region::ProvideRegion;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_smithy_runtime_api::client::http::{
    HttpClient as SmithyHttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use serde_json::Value;
use tokio::sync::{Mutex, OnceCell};

use super::http::HttpClient;
use super::SyncContext;
use crate::error::{Error, ErrorCode, Result};

/// Keys with less than this left are fetched anew before a call.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);
/// The session name of every role Custodian assumes.
pub const SESSION_NAME: &str = "custodian";
pub const STS_VERSION: &str = "2011-06-15";
pub const DEFAULT_REGION: &str = "us-east-1";

/// A string setting, trimmed; `None` when absent or blank.
pub(crate) fn opt(settings: &Value, key: &str) -> Option<String> {
    settings
        .get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// How the source signs in, from its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// The credential chain: a named profile, or the default chain.
    Chain { profile: Option<String> },
    /// An access key; the secret access key is the secret.
    AccessKey { key_id: String },
}

impl Mode {
    pub fn of(settings: &Value) -> Mode {
        match opt(settings, "access_key_id") {
            Some(key_id) => Mode::AccessKey { key_id },
            None => Mode::Chain {
                profile: opt(settings, "profile"),
            },
        }
    }
}

/// Does an `aws` source with these settings read a secret? Only with an
/// access key.
pub fn needs_secret(settings: &Value) -> bool {
    matches!(Mode::of(settings), Mode::AccessKey { .. })
}

/// The sign-in as `source show` says it (settings only, no network):
/// (mode, identity).
pub fn sign_in(settings: &Value) -> (String, String) {
    let role = opt(settings, "role_arn");
    let org = opt(settings, "member_role_name");
    let (mut mode, mut identity) = match Mode::of(settings) {
        Mode::AccessKey { key_id } => (
            "access key (the secret access key is the secret)".to_string(),
            format!("the IAM user of access key {key_id}"),
        ),
        Mode::Chain {
            profile: Some(p),
        } => (
            format!("AWS credential chain: profile '{p}' (no secret stored)"),
            format!("whoever profile '{p}' signs in as"),
        ),
        Mode::Chain { profile: None } => (
            "AWS credential chain: environment, default profile, container or instance credentials (no secret stored)".to_string(),
            "whoever the default credential chain signs in as".to_string(),
        ),
    };
    if let Some(r) = &role {
        mode.push_str(&format!(", then assumes {r} (temporary keys, refreshed)"));
        identity = format!("role {r} (session '{SESSION_NAME}')");
    }
    if let Some(m) = org {
        mode.push_str(&format!(
            "; organisation mode: lists the accounts and assumes role '{m}' in each member account"
        ));
    }
    (mode, identity)
}

// ---------------------------------------------------------------------------
// aws-config's HTTP through reqwest

/// The HTTP client `aws-config` uses for its own calls, over reqwest
/// (native TLS, as the rest of Custodian).
#[derive(Debug, Clone)]
pub struct ReqwestClient {
    client: reqwest::Client,
}

impl ReqwestClient {
    pub fn new() -> Result<ReqwestClient> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("custodian/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::internal(format!("cannot build the HTTP client: {e}")))?;
        Ok(ReqwestClient { client })
    }
}

#[derive(Debug)]
struct ReqwestConnector {
    client: reqwest::Client,
    connect_timeout: Option<Duration>,
    read_timeout: Option<Duration>,
}

impl SmithyHttpClient for ReqwestClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(ReqwestConnector {
            client: self.client.clone(),
            connect_timeout: settings.connect_timeout(),
            read_timeout: settings.read_timeout(),
        })
    }
}

impl HttpConnector for ReqwestConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let client = self.client.clone();
        // reqwest has one timeout per request: the connect and read ones
        // together bound it.
        let timeout = match (self.connect_timeout, self.read_timeout) {
            (None, None) => None,
            (c, r) => Some(c.unwrap_or_default() + r.unwrap_or(Duration::from_secs(30))),
        };
        HttpConnectorFuture::new(async move {
            let method = reqwest::Method::from_bytes(request.method().as_bytes())
                .map_err(|e| ConnectorError::user(Box::new(e)))?;
            let mut rb = client.request(method, request.uri());
            for (k, v) in request.headers().iter() {
                rb = rb.header(k, v);
            }
            let body = request
                .body()
                .bytes()
                .ok_or_else(|| {
                    ConnectorError::user("a streaming request body is not supported".into())
                })?
                .to_vec();
            rb = rb.body(body);
            if let Some(t) = timeout {
                rb = rb.timeout(t);
            }
            let resp = rb.send().await.map_err(|e| {
                if e.is_timeout() {
                    ConnectorError::timeout(Box::new(e))
                } else {
                    ConnectorError::io(Box::new(e))
                }
            })?;
            let status = resp.status().as_u16();
            let headers: Vec<(String, Vec<u8>)> = resp
                .headers()
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), v.as_bytes().to_vec()))
                .collect();
            let bytes = resp.bytes().await.map_err(|e| {
                if e.is_timeout() {
                    ConnectorError::timeout(Box::new(e))
                } else {
                    ConnectorError::io(Box::new(e))
                }
            })?;
            let mut out = aws_smithy_runtime_api::http::Response::new(
                aws_smithy_runtime_api::http::StatusCode::try_from(status)
                    .map_err(|e| ConnectorError::other(Box::new(e), None))?,
                SdkBody::from(bytes.to_vec()),
            );
            for (k, v) in headers {
                if let Ok(v) = String::from_utf8(v) {
                    out.headers_mut().append(k, v);
                }
            }
            Ok(out)
        })
    }
}

// ---------------------------------------------------------------------------
// The credential chain

/// What `aws-config` resolved: the keys' provider and the configuration
/// the endpoints and region come from.
pub(crate) struct Chain {
    pub sdk: SdkConfig,
    pub provider: Option<SharedCredentialsProvider>,
}

#[allow(deprecated)]
fn profile_files(settings: &Value) -> Option<aws_config::profile::profile_file::ProfileFiles> {
    use aws_config::profile::profile_file::{ProfileFileKind, ProfileFiles};
    let config = opt(settings, "config_file");
    let credentials = opt(settings, "credentials_file");
    if config.is_none() && credentials.is_none() {
        return None;
    }
    let mut b = ProfileFiles::builder();
    // A named file replaces the default one of its kind; the other stays.
    b = match config {
        Some(c) => b.with_file(ProfileFileKind::Config, c),
        None => b.include_default_config_file(true),
    };
    b = match credentials {
        Some(c) => b.with_file(ProfileFileKind::Credentials, c),
        None => b.include_default_credentials_file(true),
    };
    Some(b.build())
}

/// The region for STS: the `region` setting, else `AWS_REGION` /
/// `AWS_DEFAULT_REGION`, else the profile's `region`, else `us-east-1`.
/// Never asks the instance metadata service.
async fn region(settings: &Value, profile: Option<&str>) -> Region {
    if let Some(r) = opt(settings, "region") {
        return Region::new(r);
    }
    if let Some(r) = aws_config::environment::region::EnvironmentVariableRegionProvider::new()
        .region()
        .await
    {
        return r;
    }
    let mut b = aws_config::profile::ProfileFileRegionProvider::builder();
    if let Some(files) = profile_files(settings) {
        b = b.profile_files(files);
    }
    if let Some(p) = profile {
        b = b.profile_name(p);
    }
    b.build()
        .region()
        .await
        .unwrap_or_else(|| Region::new(DEFAULT_REGION))
}

/// Reads the configuration for a source, and with `keys` the chain's
/// provider: a named profile's, or the default chain's.
pub(crate) async fn load_chain(
    settings: &Value,
    profile: Option<&str>,
    keys: bool,
) -> Result<Chain> {
    let http = ReqwestClient::new()?;
    let region = region(settings, profile).await;
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http.clone())
        .region(region.clone());
    let files = profile_files(settings);
    if let Some(f) = files.clone() {
        loader = loader.profile_files(f);
    }
    if let Some(p) = profile {
        loader = loader.profile_name(p);
    }
    if !keys {
        loader = loader.no_credentials();
    } else if let Some(p) = profile {
        // A named profile is what the source asks for: environment keys do
        // not take its place (as with `aws --profile`).
        let conf = aws_config::provider_config::ProviderConfig::without_region()
            .with_region(Some(region))
            .with_http_client(http);
        let mut b = aws_config::profile::ProfileFileCredentialsProvider::builder()
            .configure(&conf)
            .profile_name(p);
        if let Some(f) = files {
            b = b.profile_files(f);
        }
        loader = loader.credentials_provider(b.build());
    }
    let sdk = loader.load().await;
    let provider = sdk.credentials_provider();
    if keys && provider.is_none() {
        return Err(Error::internal(
            "aws-config resolved no credentials provider",
        ));
    }
    Ok(Chain { sdk, provider })
}

/// The endpoint of `service` (`iam`, `sts`, `organizations`) from the
/// configuration, as the SDKs resolve it; `None`: the public one.
pub(crate) fn configured_endpoint(sdk: &SdkConfig, service_id: &str) -> Option<String> {
    let key = aws_types::service_config::ServiceConfigKey::builder()
        .service_id(service_id)
        .env("AWS_ENDPOINT_URL")
        .profile("endpoint_url")
        .build()
        .ok()?;
    sdk.service_config()
        .and_then(|c| c.load_config(key))
        .or_else(|| sdk.endpoint_url().map(str::to_string))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn credentials_error(source: &str, e: CredentialsError) -> Error {
    use std::error::Error as _;
    let mut why = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        why.push_str(&format!(": {c}"));
        cause = c.source();
    }
    let code = match &e {
        CredentialsError::ProviderTimedOut(_) => ErrorCode::Network,
        CredentialsError::InvalidConfiguration(_) => ErrorCode::InvalidInput,
        _ => ErrorCode::SourceAuth,
    };
    Error::new(
        code,
        format!(
            "AWS source '{source}' found no usable credentials ({why}); sign in as the AWS CLI would \
             (for an SSO profile `aws sso login --profile NAME`), check the `profile` setting and the \
             AWS config files, or set `access_key_id` and store the secret access key as the secret"
        ),
    )
}

// ---------------------------------------------------------------------------
// Keys, kept fresh

/// Where the keys come from.
enum Origin {
    Static(Credentials),
    /// The credential chain's provider (read with the configuration).
    Chain,
    /// `sts:AssumeRole` with the keys of `base`.
    Assume {
        base: Auth,
        role_arn: String,
        external_id: Option<String>,
    },
}

/// The keys to sign with, fetched when first needed and again before they
/// expire. Cheap to clone (shared).
#[derive(Clone)]
pub struct Auth {
    inner: Arc<AuthInner>,
}

struct AuthInner {
    origin: Origin,
    /// The source's settings (files, profile, region, endpoint).
    settings: Value,
    profile: Option<String>,
    /// The chain's provider (when the keys come from it) and the
    /// endpoints, read from the configuration once, on first use.
    loaded: OnceCell<(Option<SharedCredentialsProvider>, Endpoints)>,
    cached: Mutex<Option<Credentials>>,
    fetches: std::sync::atomic::AtomicU64,
    http: HttpClient,
    source: String,
}

/// Where Custodian's own calls go, and the STS region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    pub iam: String,
    pub sts: String,
    pub organizations: String,
    pub region: String,
}

impl Endpoints {
    fn public(region: &str) -> Endpoints {
        Endpoints {
            iam: super::aws::DEFAULT_ENDPOINT.to_string(),
            sts: format!("https://sts.{region}.amazonaws.com/"),
            organizations: "https://organizations.us-east-1.amazonaws.com/".to_string(),
            region: region.to_string(),
        }
    }

    /// From the configuration `aws-config` read, then the `endpoint`
    /// setting (IAM).
    fn configured(sdk: &SdkConfig, settings: &Value) -> Result<Endpoints> {
        let region = sdk
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| DEFAULT_REGION.to_string());
        let mut e = Endpoints::public(&region);
        if let Some(u) = configured_endpoint(sdk, "IAM") {
            e.iam = checked_url("IAM", &u)?;
        }
        if let Some(u) = opt(settings, "endpoint") {
            e.iam = checked_url("IAM", &u)?;
        }
        if let Some(u) = configured_endpoint(sdk, "STS") {
            e.sts = checked_url("STS", &u)?;
        }
        if let Some(u) = configured_endpoint(sdk, "Organizations") {
            e.organizations = checked_url("Organizations", &u)?;
        }
        Ok(e)
    }
}

fn checked_url(what: &str, url: &str) -> Result<String> {
    let parsed = url::Url::parse(url.trim()).map_err(|e| {
        Error::invalid(format!("the AWS {what} endpoint '{url}' is not a URL: {e}"))
    })?;
    if !matches!(parsed.scheme(), "https" | "http") {
        return Err(Error::invalid(format!(
            "the AWS {what} endpoint '{url}' must be an http(s) URL"
        )));
    }
    Ok(parsed.to_string())
}

/// Is this keys' life long enough to sign with, at `now`?
pub fn fresh(k: &Credentials, now: SystemTime) -> bool {
    match k.expiry() {
        None => true,
        Some(t) => t > now + REFRESH_MARGIN,
    }
}

impl Auth {
    /// The sign-in of a source, from its settings and secret (nothing is
    /// read or fetched until the first call).
    pub fn from_context(ctx: &SyncContext) -> Result<Auth> {
        let settings = &ctx.source.settings;
        let (origin, profile) = match Mode::of(settings) {
            Mode::AccessKey { key_id } => (
                Origin::Static(Credentials::new(
                    key_id,
                    ctx.secret()?.trim(),
                    None,
                    None,
                    "custodian-access-key",
                )),
                None,
            ),
            // The provider comes with the configuration, on first use.
            Mode::Chain { profile } => (Origin::Chain, profile),
        };
        let base = Auth::new(
            origin,
            settings.clone(),
            profile,
            ctx.http.clone(),
            &ctx.source.name,
        );
        Ok(match opt(settings, "role_arn") {
            Some(role_arn) => base.assume(role_arn, opt(settings, "external_id")),
            None => base,
        })
    }

    fn new(
        origin: Origin,
        settings: Value,
        profile: Option<String>,
        http: HttpClient,
        source: &str,
    ) -> Auth {
        Auth {
            inner: Arc::new(AuthInner {
                origin,
                settings,
                profile,
                loaded: OnceCell::new(),
                cached: Mutex::new(None),
                fetches: std::sync::atomic::AtomicU64::new(0),
                http,
                source: source.to_string(),
            }),
        }
    }

    /// These keys, used to assume `role_arn` (the role's keys, refreshed).
    pub fn assume(&self, role_arn: String, external_id: Option<String>) -> Auth {
        Auth::new(
            Origin::Assume {
                base: self.clone(),
                role_arn,
                external_id,
            },
            self.inner.settings.clone(),
            self.inner.profile.clone(),
            self.inner.http.clone(),
            &self.inner.source,
        )
    }

    pub fn http(&self) -> &HttpClient {
        &self.inner.http
    }

    /// How many times keys were fetched (first fetch and refreshes).
    pub fn fetches(&self) -> u64 {
        self.inner
            .fetches
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Reads the configuration once: the chain's provider (when the keys
    /// come from it) and the endpoints.
    async fn loaded(&self) -> Result<&(Option<SharedCredentialsProvider>, Endpoints)> {
        self.inner
            .loaded
            .get_or_try_init(|| async {
                if let Origin::Assume { base, .. } = &self.inner.origin {
                    let e = Box::pin(base.endpoints()).await?;
                    return Ok((None, e));
                }
                let wants_keys = matches!(self.inner.origin, Origin::Chain);
                let chain = load_chain(
                    &self.inner.settings,
                    self.inner.profile.as_deref(),
                    wants_keys,
                )
                .await?;
                let e = Endpoints::configured(&chain.sdk, &self.inner.settings)?;
                Ok((chain.provider, e))
            })
            .await
    }

    /// Where the calls go (reading the configuration first).
    pub async fn endpoints(&self) -> Result<Endpoints> {
        Ok(self.loaded().await?.1.clone())
    }

    /// The keys to sign the next call with: the cached ones while they
    /// have more than [`REFRESH_MARGIN`] left, else fresh ones.
    pub async fn credentials(&self) -> Result<Credentials> {
        let mut cached = self.inner.cached.lock().await;
        if let Some(k) = cached.as_ref().filter(|k| fresh(k, SystemTime::now())) {
            return Ok(k.clone());
        }
        let k = match &self.inner.origin {
            Origin::Static(k) => k.clone(),
            Origin::Chain => {
                let p =
                    self.loaded().await?.0.as_ref().ok_or_else(|| {
                        Error::internal("the AWS credential chain was not loaded")
                    })?;
                p.provide_credentials()
                    .await
                    .map_err(|e| credentials_error(&self.inner.source, e))?
            }
            Origin::Assume {
                base,
                role_arn,
                external_id,
            } => {
                let e = Box::pin(base.endpoints()).await?;
                Box::pin(assume_role(base, &e, role_arn, external_id.as_deref())).await?
            }
        };
        self.inner
            .fetches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        *cached = Some(k.clone());
        Ok(k)
    }

    /// One signed Query API call (`Action=…&Version=…` form POST) to `url`
    /// for `service`; the XML text of the response.
    pub async fn query(
        &self,
        url: &str,
        service: &str,
        region: &str,
        body: String,
    ) -> Result<String> {
        let content = super::aws::CONTENT_TYPE;
        self.send(url, service, region, content, &[], body).await
    }

    /// One signed POST of `body` (`content_type`, extra signed `headers`).
    pub async fn send(
        &self,
        url: &str,
        service: &str,
        region: &str,
        content_type: &str,
        headers: &[(&str, &str)],
        body: String,
    ) -> Result<String> {
        let k = self.credentials().await?;
        let signer = || {
            let mut all: Vec<(&str, &str)> = vec![("content-type", content_type)];
            all.extend_from_slice(headers);
            super::aws::sign(&k, service, region, url, &all, &body, SystemTime::now())
        };
        let plain: Vec<(&str, String)> = headers.iter().map(|(k, v)| (*k, v.to_string())).collect();
        let resp = self
            .inner
            .http
            .post_body(url, &plain, content_type, body.clone(), Some(&signer))
            .await?;
        String::from_utf8(resp.body).map_err(|_| {
            Error::new(
                ErrorCode::MalformedResponse,
                format!("AWS {service}: the response is not UTF-8"),
            )
        })
    }

    /// `sts:GetCallerIdentity`: (account, ARN) of whoever these keys are.
    pub async fn caller_identity(&self) -> Result<(String, String)> {
        let e = self.endpoints().await?;
        let body = sts_body("GetCallerIdentity", &[]);
        let xml = self.query(&e.sts, "sts", &e.region, body).await?;
        let doc =
            roxmltree::Document::parse(&xml).map_err(|e| sts_malformed("GetCallerIdentity", e))?;
        let field = |n: &str| {
            doc.descendants()
                .find(|d| d.is_element() && d.tag_name().name() == n)
                .and_then(|d| d.text())
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        match (field("Account"), field("Arn")) {
            (Some(a), Some(arn)) => Ok((a, arn)),
            _ => Err(sts_malformed("GetCallerIdentity", "no Account or Arn")),
        }
    }
}

fn sts_body(action: &str, params: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("Action", action)
        .append_pair("Version", STS_VERSION)
        .extend_pairs(params)
        .finish()
}

fn sts_malformed(action: &str, what: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorCode::MalformedResponse,
        format!("AWS STS {action}: {what}"),
    )
}

/// `sts:AssumeRole` with `base`'s keys: the role's temporary keys.
async fn assume_role(
    base: &Auth,
    e: &Endpoints,
    role_arn: &str,
    external_id: Option<&str>,
) -> Result<Credentials> {
    let mut params = vec![("RoleArn", role_arn), ("RoleSessionName", SESSION_NAME)];
    if let Some(x) = external_id {
        params.push(("ExternalId", x));
    }
    let xml = base
        .query(&e.sts, "sts", &e.region, sts_body("AssumeRole", &params))
        .await
        .map_err(|err| {
            Error::new(
                err.code,
                format!("cannot assume the role {role_arn}: {}", err.message),
            )
        })?;
    read_assumed(&xml, role_arn)
}

/// The `Credentials` of an `AssumeRole` response.
pub fn read_assumed(xml: &str, role_arn: &str) -> Result<Credentials> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| sts_malformed("AssumeRole", e))?;
    let creds = doc
        .descendants()
        .find(|d| d.is_element() && d.tag_name().name() == "Credentials")
        .ok_or_else(|| sts_malformed("AssumeRole", format!("no Credentials for {role_arn}")))?;
    let field = |n: &str| {
        creds
            .children()
            .find(|d| d.is_element() && d.tag_name().name() == n)
            .and_then(|d| d.text())
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let (Some(id), Some(secret), Some(token)) = (
        field("AccessKeyId"),
        field("SecretAccessKey"),
        field("SessionToken"),
    ) else {
        return Err(sts_malformed(
            "AssumeRole",
            format!("the credentials for {role_arn} are incomplete"),
        ));
    };
    let expiry = field("Expiration")
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| SystemTime::from(t.with_timezone(&chrono::Utc)));
    if expiry.is_none() {
        return Err(sts_malformed(
            "AssumeRole",
            format!("the credentials for {role_arn} have no readable Expiration"),
        ));
    }
    Ok(Credentials::new(
        id,
        secret,
        Some(token),
        expiry,
        "custodian-assume-role",
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_refreshed_before_they_expire() {
        let now = SystemTime::now();
        let k = |left: u64| {
            Credentials::new("A", "S", None, Some(now + Duration::from_secs(left)), "t")
        };
        assert!(fresh(&Credentials::new("A", "S", None, None, "t"), now));
        assert!(fresh(&k(3600), now));
        assert!(!fresh(&k(240), now), "4 minutes left: fetched anew");
        assert!(!fresh(&k(0), now));
    }

    #[test]
    fn the_mode_follows_the_settings() {
        assert_eq!(
            Mode::of(&json!({"access_key_id": " AKIA1 "})),
            Mode::AccessKey {
                key_id: "AKIA1".into()
            }
        );
        assert_eq!(
            Mode::of(&json!({"profile": "audit"})),
            Mode::Chain {
                profile: Some("audit".into())
            }
        );
        assert!(!needs_secret(&json!({"profile": "audit"})));
        assert!(needs_secret(&json!({"access_key_id": "AKIA1"})));
        let (mode, who) = sign_in(&json!({"profile": "p", "role_arn": "arn:aws:iam::1:role/r"}));
        assert!(
            mode.contains("profile 'p'") && mode.contains("assumes"),
            "{mode}"
        );
        assert!(who.contains("arn:aws:iam::1:role/r"), "{who}");
    }

    #[test]
    fn assumed_keys_need_every_part() {
        let xml = r#"<AssumeRoleResponse><AssumeRoleResult><Credentials>
            <AccessKeyId>ASIA1</AccessKeyId><SecretAccessKey>s</SecretAccessKey>
            <SessionToken>t</SessionToken><Expiration>2030-01-01T00:00:00Z</Expiration>
            </Credentials></AssumeRoleResult></AssumeRoleResponse>"#;
        let k = read_assumed(xml, "r").unwrap();
        assert_eq!(k.access_key_id(), "ASIA1");
        assert_eq!(k.session_token(), Some("t"));
        assert!(k.expiry().is_some());
        let e = read_assumed(&xml.replace("<SessionToken>t</SessionToken>", ""), "r").unwrap_err();
        assert_eq!(e.code, ErrorCode::MalformedResponse);
        assert!(read_assumed("<x", "r").is_err());
    }
}
