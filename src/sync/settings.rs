//! The settings of each kind of source, as data: one [`Setting`] table per
//! source (the HTTP sources keep theirs beside their code: `scim::SETTINGS`,
//! `entra::SETTINGS`, `okta::SETTINGS`, `github::SETTINGS`) and one registry
//! of source kinds, [`KINDS`]. `ops::add_source` (CLI and desktop) validates
//! against it and stores typed values: `--set read_tokens=false` becomes JSON
//! `false`, `--set page_size=50` the number 50.
//!
//! Rules ([`validate`]): an unknown key is an error naming the known ones; a
//! required setting must be present and not blank; a blank optional setting
//! is dropped (its default applies); values are coerced from text (the
//! CLI's `KEY=VALUE`) to the declared type or refused with the key, the
//! value and what was expected; then the transport rules
//! ([`super::transport`]: HTTPS for kinds with a secret, TLS for LDAP).

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// The type of a setting's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum SettingType {
    String,
    Bool,
    Integer,
    /// An http(s) URL.
    Url,
    /// A list of strings (a JSON array, or text separated by commas).
    List,
}

impl SettingType {
    fn name(self) -> &'static str {
        match self {
            SettingType::String => "text",
            SettingType::Bool => "true or false",
            SettingType::Integer => "a whole number",
            SettingType::Url => "an http(s) URL",
            SettingType::List => "a list (comma-separated)",
        }
    }
}

/// One setting of a source kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Setting {
    pub key: &'static str,
    #[serde(rename = "type")]
    pub ty: SettingType,
    pub required: bool,
    /// The default when absent, as text (`None`: no default, or empty).
    pub default: Option<&'static str>,
    pub description: &'static str,
    /// Turns on a keyless sign-in (GitHub `app_id`, Okta `client_id`):
    /// optional, but offered with the required settings, before the secret.
    pub sign_in: bool,
}

impl Setting {
    pub const fn required(
        key: &'static str,
        ty: SettingType,
        description: &'static str,
    ) -> Setting {
        Setting {
            key,
            ty,
            required: true,
            default: None,
            description,
            sign_in: false,
        }
    }
    pub const fn optional(
        key: &'static str,
        ty: SettingType,
        default: Option<&'static str>,
        description: &'static str,
    ) -> Setting {
        Setting {
            key,
            ty,
            required: false,
            default,
            description,
            sign_in: false,
        }
    }
    /// The optional setting that turns on a keyless sign-in mode.
    pub const fn sign_in(key: &'static str, ty: SettingType, description: &'static str) -> Setting {
        Setting {
            key,
            ty,
            required: false,
            default: None,
            description,
            sign_in: true,
        }
    }
}

/// A kind of source this build knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct SourceKind {
    pub kind: &'static str,
    pub label: &'static str,
    /// One line about what the source reads (the Sources form shows it).
    pub about: &'static str,
    /// Does it keep a secret in the keyring?
    pub needs_secret: bool,
    /// What the secret is, for the form and the CLI help.
    pub secret: &'static str,
    pub settings: &'static [Setting],
    /// The bool setting that, when on, makes the source read as a person
    /// who signs in with a device code (the Sources view's "Sign in", `source
    /// sign-in`) instead of storing a secret: Entra's `delegated`.
    pub device_sign_in: Option<&'static str>,
}

use SettingType as T;

/// Settings every kind accepts.
pub const COMMON: &[Setting] = &[Setting::optional(
    "write_back",
    T::Bool,
    Some("false"),
    "Custodian may change identities in this source (set with `source write-back`)",
)];

pub const AWS: &[Setting] = &[
    Setting::sign_in(
        "profile",
        T::String,
        "sign in without a stored secret, through a profile of the AWS config files (IAM Identity Center (SSO) after `aws sso login`, role_arn + source_profile, credential_process); with neither this nor an access key ID, the default chain signs in (environment variables, the default profile, container or instance credentials)",
    ),
    Setting::optional(
        "role_arn",
        T::String,
        None,
        "a role to assume once signed in (session 'custodian'): Custodian then works with its temporary keys, refreshed before they expire",
    ),
    Setting::optional(
        "external_id",
        T::String,
        None,
        "the external ID the role's trust policy asks for (with role_arn)",
    ),
    Setting::optional(
        "member_role_name",
        T::String,
        None,
        "organisation mode: list the organisation's accounts (organizations:ListAccounts, from the management or a delegated administrator account) and read each one by assuming this role in it (e.g. a read-only audit role)",
    ),
    Setting::optional(
        "parallel_accounts",
        T::Integer,
        Some("4"),
        "organisation mode: how many accounts are read at once (1 to 32)",
    ),
    Setting::optional(
        "region",
        T::String,
        None,
        "the region for STS (default: AWS_REGION or the profile's region, else us-east-1)",
    ),
    Setting::optional(
        "config_file",
        T::String,
        None,
        "the AWS config file to read instead of ~/.aws/config (or AWS_CONFIG_FILE): profiles, region, endpoint_url",
    ),
    Setting::optional(
        "credentials_file",
        T::String,
        None,
        "the AWS credentials file to read instead of ~/.aws/credentials (or AWS_SHARED_CREDENTIALS_FILE)",
    ),
    Setting::optional(
        "access_key_id",
        T::String,
        None,
        "to sign in with an IAM user's long-lived access key instead: its ID (the secret access key is then the secret)",
    ),
    Setting::optional(
        "endpoint",
        T::Url,
        Some("https://iam.amazonaws.com/"),
        "the IAM endpoint (a partition's, or a test server); otherwise AWS_ENDPOINT_URL_IAM, AWS_ENDPOINT_URL or the profile's endpoint_url apply, as for STS and Organizations",
    ),
    Setting::optional(
        "account_name",
        T::String,
        None,
        "a label for the account, shown in descriptions (one-account sources; in organisation mode each account's name is used)",
    ),
];

pub const LDAP: &[Setting] = &[
    Setting::required(
        "url",
        T::String,
        "ldaps:// or ldap:// URL of the directory (ldap:// is upgraded with StartTLS unless allow_plain is set)",
    ),
    Setting::sign_in(
        "sasl_gssapi",
        T::Bool,
        "sign in without a stored secret: a Kerberos (SASL GSSAPI) bind with your own ticket (after `kinit`, or your Windows logon), as whoever the ticket names; with it, no bind DN or password",
    ),
    Setting::optional(
        "kerberos_host",
        T::String,
        None,
        "Kerberos: the directory server's host name in its service principal ldap/<host>, when the URL names an IP address or an alias (default: the URL's host)",
    ),
    Setting::optional(
        "bind_dn",
        T::String,
        None,
        "the DN to bind as with a password (the secret), when sasl_gssapi is off",
    ),
    Setting::required("base_dn", T::String, "where the searches start"),
    Setting::optional(
        "starttls",
        T::Bool,
        Some("true"),
        "upgrade an ldap:// connection with StartTLS before the bind (on unless allow_plain is set)",
    ),
    Setting::optional(
        "allow_plain",
        T::Bool,
        Some("false"),
        "allow an ldap:// connection without TLS: the bind password crosses the network in clear (test directories only); with sasl_gssapi no password is sent and Kerberos seals the traffic",
    ),
    Setting::optional(
        "ca_cert",
        T::String,
        None,
        "a PEM file with the CA certificate that signed the directory's, trusted besides the system's (an internal CA); the certificate is always verified",
    ),
    Setting::optional(
        "page_size",
        T::Integer,
        Some("500"),
        "entries per page (1 to 1000)",
    ),
    Setting::optional(
        "account_filter",
        T::String,
        None,
        "the LDAP filter that finds service accounts",
    ),
    Setting::optional(
        "group_filter",
        T::String,
        None,
        "the LDAP filter that finds groups",
    ),
    Setting::optional(
        "admin_groups",
        T::List,
        None,
        "groups (by name or DN) whose members are administrators, besides the well-known ones (Domain Admins, Administrators, ... by SID)",
    ),
];

pub const CSV: &[Setting] = &[Setting::required(
    "path",
    T::String,
    "the registry spreadsheet (CSV or XLSX)",
)];

/// Every kind of source, in the order the UI offers them.
pub const KINDS: &[SourceKind] = &[
    SourceKind {
        kind: "scim",
        label: "SCIM 2.0",
        about: "Any SCIM 2.0 service provider: users, groups and service accounts.",
        needs_secret: true,
        secret: "bearer token",
        settings: super::scim::SETTINGS,
        device_sign_in: None,
    },
    SourceKind {
        kind: "csv",
        label: "Agent registry (CSV/XLSX)",
        about: "An agent registry kept as a spreadsheet: one row per identity, the first row holds the column names (name, kind, purpose, owner_email, ...).",
        needs_secret: false,
        secret: "",
        settings: CSV,
        device_sign_in: None,
    },
    SourceKind {
        kind: "entra",
        label: "Microsoft Entra ID",
        about: "Users, service principals, app registrations and their credentials, through Microsoft Graph (delta sync). Signs in with a certificate, a federated token (workload identity) or an administrator's device-code sign-in (no secret), or with a client secret.",
        needs_secret: true,
        secret: "the certificate's private key (PEM) with a certificate, or the client secret when no keyless mode is set",
        settings: super::entra::SETTINGS,
        device_sign_in: Some("delegated"),
    },
    SourceKind {
        kind: "okta",
        label: "Okta",
        about: "Users, groups and OAuth service apps of an Okta org. Signs in as an OAuth service app with a private key (recommended), or with an API token.",
        needs_secret: true,
        secret: "the service app's private key (PEM), or an API token when no client ID is set",
        settings: super::okta::SETTINGS,
        device_sign_in: None,
    },
    SourceKind {
        kind: "aws",
        label: "AWS IAM",
        about: "IAM users, roles, access keys and trust of one AWS account, or of every account of an organisation. Signs in through the AWS credential chain (a profile, SSO, a role, container or instance credentials: no stored secret; recommended), or with an access key.",
        needs_secret: true,
        secret: "the secret access key, only when an access key ID is set",
        settings: AWS,
        device_sign_in: None,
    },
    SourceKind {
        kind: "ldap",
        label: "LDAP / Active Directory",
        about: "People, service accounts (SPNs, MSA/gMSA), group memberships and Kerberos delegation from an LDAP directory or Active Directory. Signs in with your own Kerberos ticket (SASL GSSAPI: no stored secret; recommended for Active Directory), or with a bind DN and its password.",
        needs_secret: true,
        secret: "the bind password, only when the Kerberos sign-in (sasl_gssapi) is off",
        settings: LDAP,
        device_sign_in: None,
    },
    SourceKind {
        kind: "github",
        label: "GitHub organisation",
        about: "Members and outside collaborators, GitHub App installations and their permissions, fine-grained tokens approved for the org, deploy keys. Signs in as a GitHub App with its private key (recommended), or with a token.",
        needs_secret: true,
        secret: "the GitHub App's private key (PEM), or a token (PAT) when no App ID is set",
        settings: super::github::SETTINGS,
        device_sign_in: None,
    },
];

/// Does a source of `kind` with these settings sign in as a person with a
/// device code ([`SourceKind::device_sign_in`] set to `true`)?
pub fn signs_in_with_device_code(kind_name: &str, settings: &Value) -> bool {
    kind(kind_name)
        .ok()
        .and_then(|k| k.device_sign_in)
        .is_some_and(|key| settings.get(key).and_then(Value::as_bool) == Some(true))
}

/// The registry entry of a kind.
pub fn kind(kind: &str) -> Result<&'static SourceKind> {
    KINDS.iter().find(|k| k.kind == kind).ok_or_else(|| {
        Error::invalid(format!(
            "unknown source kind '{kind}'; known: {}",
            KINDS.iter().map(|k| k.kind).collect::<Vec<_>>().join(", ")
        ))
    })
}

fn coerce(kind: &str, s: &Setting, v: &Value) -> Result<Option<Value>> {
    let bad = |why: String| {
        Error::invalid(format!(
            "the {kind} setting '{}' must be {} ({why}): {}",
            s.key,
            s.ty.name(),
            s.description
        ))
    };
    let text = match v {
        Value::String(t) => Some(t.trim().to_string()),
        _ => None,
    };
    if text.as_deref() == Some("") || v.is_null() {
        return Ok(None);
    }
    let out = match s.ty {
        T::String => match v {
            Value::String(_) => Value::String(text.unwrap_or_default()),
            Value::Number(n) => Value::String(n.to_string()),
            other => return Err(bad(format!("got {other}"))),
        },
        T::Bool => match v {
            Value::Bool(b) => Value::Bool(*b),
            Value::Number(n) if n.as_u64() == Some(0) || n.as_u64() == Some(1) => {
                Value::Bool(n.as_u64() == Some(1))
            }
            _ => match text.as_deref().map(str::to_ascii_lowercase).as_deref() {
                Some("true" | "yes" | "on" | "1") => Value::Bool(true),
                Some("false" | "no" | "off" | "0") => Value::Bool(false),
                _ => return Err(bad(format!("got {v}"))),
            },
        },
        T::Integer => match v {
            Value::Number(n) if n.is_i64() || n.is_u64() => Value::Number(n.clone()),
            _ => match text.as_deref().map(str::parse::<i64>) {
                Some(Ok(i)) => Value::from(i),
                _ => return Err(bad(format!("got {v}"))),
            },
        },
        T::Url => {
            let t = text.ok_or_else(|| bad(format!("got {v}")))?;
            let parsed =
                url::Url::parse(&t).map_err(|e| bad(format!("'{t}' is not a URL: {e}")))?;
            if !matches!(parsed.scheme(), "https" | "http") {
                return Err(bad(format!("'{t}' is not http(s)")));
            }
            Value::String(t)
        }
        T::List => match v {
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for i in items {
                    match i.as_str() {
                        Some(t) if !t.trim().is_empty() => {
                            out.push(Value::String(t.trim().to_string()))
                        }
                        Some(_) => {}
                        None => return Err(bad(format!("an item is {i}"))),
                    }
                }
                Value::Array(out)
            }
            Value::String(t) => Value::Array(
                t.split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(|p| Value::String(p.to_string()))
                    .collect(),
            ),
            other => return Err(bad(format!("got {other}"))),
        },
    };
    Ok(Some(out))
}

/// Validates a source's settings against its kind's table and returns them
/// typed (see the module doc for the rules).
pub fn validate(kind_name: &str, settings: &Value) -> Result<Value> {
    let k = kind(kind_name)?;
    let obj = settings
        .as_object()
        .ok_or_else(|| Error::invalid("source settings must be a JSON object"))?;
    let table = || k.settings.iter().chain(COMMON.iter());
    let mut out = Map::new();
    for (key, value) in obj {
        let Some(s) = table().find(|s| s.key == key.trim()) else {
            return Err(Error::invalid(format!(
                "unknown setting '{key}' for a {kind_name} source; known: {}",
                table().map(|s| s.key).collect::<Vec<_>>().join(", ")
            )));
        };
        if let Some(v) = coerce(kind_name, s, value)? {
            out.insert(s.key.to_string(), v);
        }
    }
    for s in table().filter(|s| s.required) {
        if !out.contains_key(s.key) {
            return Err(Error::invalid(format!(
                "a {kind_name} source needs the setting '{}': {}",
                s.key, s.description
            )));
        }
    }
    check_sign_in(kind_name, &out)?;
    let out = Value::Object(out);
    super::transport::check_settings(kind_name, &out, None)?;
    Ok(out)
}

/// The keyless sign-in settings (GitHub App, Okta service app) mean
/// nothing without the one that turns that mode on: refused rather than
/// silently ignored while the source signs in with a token.
fn check_sign_in(kind_name: &str, out: &Map<String, Value>) -> Result<()> {
    let (mode_key, mode, dependent): (&str, &str, &[&str]) = match kind_name {
        "github" => (
            "app_id",
            "GitHub App",
            &["installation_id", "private_key_file"],
        ),
        "okta" => (
            "client_id",
            "service app",
            &["key_id", "private_key_file", "scopes"],
        ),
        "aws" => return check_aws_sign_in(out),
        "ldap" => return super::ldap::check_settings(out),
        "entra" => return super::entra::auth::check_settings(out),
        _ => return Ok(()),
    };
    if out.contains_key(mode_key) {
        return Ok(());
    }
    match dependent.iter().find(|k| out.contains_key(**k)) {
        Some(k) => Err(Error::invalid(format!(
            "the {kind_name} setting '{k}' is for signing in as a {mode}, which needs '{mode_key}' too; set {mode_key}, or leave {k} out to sign in with a token"
        ))),
        None => Ok(()),
    }
}

/// AWS: an access key and a profile are two ways to sign in (one only);
/// an external ID belongs to a role, and the parallelism to organisation
/// mode.
fn check_aws_sign_in(out: &Map<String, Value>) -> Result<()> {
    if out.contains_key("access_key_id") {
        if let Some(k) = ["profile", "credentials_file"]
            .iter()
            .find(|k| out.contains_key(**k))
        {
            return Err(Error::invalid(format!(
                "the aws setting '{k}' is for signing in through the AWS credential chain, but 'access_key_id' signs in with an access key; keep one of the two"
            )));
        }
    }
    if out.contains_key("external_id") && !out.contains_key("role_arn") {
        return Err(Error::invalid(
            "the aws setting 'external_id' goes with the role it is for: set role_arn too",
        ));
    }
    if out.contains_key("parallel_accounts") && !out.contains_key("member_role_name") {
        return Err(Error::invalid(
            "the aws setting 'parallel_accounts' is for organisation mode: set member_role_name too",
        ));
    }
    Ok(())
}

/// The catalogue the UI can build its forms from.
pub fn catalogue() -> &'static [SourceKind] {
    KINDS
}

/// The form label of each setting key, shared by every kind that has the
/// key (`page_size` means the same in SCIM and LDAP). Every key in
/// [`KINDS`] has one (a unit test holds it).
pub const LABELS: &[(&str, &str)] = &[
    ("path", "File path"),
    ("base_url", "Base URL"),
    ("page_size", "Page size"),
    ("pagination", "Pagination"),
    ("tenant_id", "Tenant ID"),
    ("client_id", "Client ID"),
    ("graph_base", "Graph base URL"),
    ("login_base", "Login base URL"),
    ("include_first_party", "Include first-party apps"),
    ("full_resync_hours", "Full resync after (hours)"),
    ("batch", "Graph JSON batching"),
    ("org_url", "Org URL"),
    ("access_key_id", "Access key ID"),
    ("profile", "AWS profile"),
    ("role_arn", "Role to assume (ARN)"),
    ("external_id", "External ID"),
    ("member_role_name", "Member account role (organisation)"),
    ("parallel_accounts", "Accounts read at once"),
    ("region", "Region"),
    ("config_file", "AWS config file"),
    ("credentials_file", "AWS credentials file"),
    ("endpoint", "Endpoint"),
    ("account_name", "Account name"),
    ("url", "Server URL"),
    ("bind_dn", "Bind DN"),
    ("sasl_gssapi", "Kerberos sign-in (your ticket)"),
    ("kerberos_host", "Kerberos service host name"),
    ("base_dn", "Base DN"),
    ("starttls", "StartTLS"),
    ("allow_plain", "Allow plaintext LDAP"),
    ("ca_cert", "CA certificate file"),
    ("account_filter", "Account filter"),
    ("group_filter", "Group filter"),
    ("admin_groups", "Administrator groups"),
    ("org", "Organisation"),
    ("api_base", "API base URL"),
    ("read_tokens", "Read fine-grained tokens"),
    ("app_id", "GitHub App ID"),
    ("installation_id", "Installation ID"),
    ("private_key_file", "Private key file (PEM)"),
    ("certificate_file", "Certificate file (PEM)"),
    ("certificate_thumbprint", "Certificate thumbprint"),
    ("federated_token_file", "Federated token file"),
    ("delegated", "Administrator sign-in (device code)"),
    ("key_id", "Key ID (kid)"),
    ("scopes", "Scopes"),
    ("write_back", "Write-back"),
];

/// The label of a setting key; the key itself when it has none.
pub fn label(key: &str) -> &str {
    LABELS
        .iter()
        .find(|(k, _)| *k == key)
        .map_or(key, |(_, l)| l)
}

/// The source kinds as the UI receives them (`ops::source_kinds`): each
/// kind's own settings with labels and whether the key names a secret, and
/// the remediation tasks it can carry out (`writeback::supports`).
pub fn views() -> Vec<crate::views::SourceKindView> {
    use crate::views::{SourceKindView, SourceSettingView};
    KINDS
        .iter()
        .map(|k| SourceKindView {
            kind: k.kind.to_string(),
            label: k.label.to_string(),
            about: k.about.to_string(),
            needs_secret: k.needs_secret,
            secret: k.secret.to_string(),
            device_sign_in: k.device_sign_in.map(str::to_string),
            settings: k
                .settings
                .iter()
                .map(|s| SourceSettingView {
                    key: s.key.to_string(),
                    label: label(s.key).to_string(),
                    ty: s.ty,
                    required: s.required,
                    default: s.default.map(str::to_string),
                    help: s.description.to_string(),
                    secret: crate::sanitize::is_secret_key(s.key),
                    sign_in: s.sign_in,
                })
                .collect(),
            write_back: if crate::writeback::SOURCE_KINDS.contains(&k.kind) {
                crate::campaigns::TaskKind::ALL
                    .iter()
                    .copied()
                    .filter(|t| crate::writeback::supports(k.kind, *t))
                    .collect()
            } else {
                vec![]
            },
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_stored_typed() {
        let v = validate(
            "github",
            &json!({"org": "acme", "read_tokens": "false", "api_base": " https://ghe.example/api/v3 "}),
        )
        .unwrap();
        assert_eq!(
            v,
            json!({"org": "acme", "read_tokens": false, "api_base": "https://ghe.example/api/v3"})
        );
        let v = validate(
            "scim",
            &json!({"base_url": "https://idp/scim", "page_size": "50"}),
        )
        .unwrap();
        assert_eq!(v["page_size"], json!(50));
        let v = validate(
            "entra",
            &json!({"tenant_id": 1234, "client_id": "c", "include_first_party": "YES"}),
        )
        .unwrap();
        assert_eq!(
            (v["tenant_id"].clone(), v["include_first_party"].clone()),
            (json!("1234"), json!(true))
        );
        let v = validate(
            "aws",
            &json!({"access_key_id": "AKIA", "write_back": "true"}),
        )
        .unwrap();
        assert_eq!(v["write_back"], json!(true));
    }

    #[test]
    fn keyless_settings_need_the_mode_they_belong_to() {
        let e = validate("github", &json!({"org": "a", "installation_id": "7"})).unwrap_err();
        assert!(
            e.message.contains("'installation_id'") && e.message.contains("app_id"),
            "{}",
            e.message
        );
        let v = validate(
            "github",
            &json!({"org": "a", "app_id": "12345", "installation_id": "7"}),
        )
        .unwrap();
        assert_eq!(v["installation_id"], json!(7));
        let e = validate("okta", &json!({"org_url": "https://o", "key_id": "k1"})).unwrap_err();
        assert!(e.message.contains("client_id"), "{}", e.message);
        let v = validate(
            "okta",
            &json!({"org_url": "https://o", "client_id": "0oa1", "key_id": "k1", "scopes": "okta.users.read, okta.groups.read"}),
        )
        .unwrap();
        assert_eq!(v["scopes"], json!(["okta.users.read", "okta.groups.read"]));
        // The keyless mode is offered first: right after what names the org.
        let gh = kind("github").unwrap();
        assert_eq!(gh.settings[1].key, "app_id");
        let okta = kind("okta").unwrap();
        assert_eq!(okta.settings[1].key, "client_id");
        // ... and the form shows them with the required ones.
        let views = views();
        for (k, key) in [("github", "app_id"), ("okta", "client_id")] {
            let v = views.iter().find(|v| v.kind == k).unwrap();
            let signs: Vec<&str> = v
                .settings
                .iter()
                .filter(|s| s.sign_in)
                .map(|s| s.key.as_str())
                .collect();
            assert_eq!(signs, [key], "{k}");
        }
    }

    #[test]
    fn aws_offers_the_credential_chain_first_and_one_sign_in_only() {
        let aws = kind("aws").unwrap();
        assert_eq!(aws.settings[0].key, "profile");
        assert!(
            aws.settings.iter().all(|s| !s.required),
            "no setting is required: the default chain needs none"
        );
        let v = views();
        let signs: Vec<&str> = v
            .iter()
            .find(|v| v.kind == "aws")
            .unwrap()
            .settings
            .iter()
            .filter(|s| s.sign_in)
            .map(|s| s.key.as_str())
            .collect();
        assert_eq!(signs, ["profile"]);
        assert_eq!(validate("aws", &json!({})).unwrap(), json!({}));
        let v = validate(
            "aws",
            &json!({"profile": "audit", "role_arn": "arn:aws:iam::1:role/r", "external_id": "x",
                    "member_role_name": "Audit", "parallel_accounts": "8"}),
        )
        .unwrap();
        assert_eq!(v["parallel_accounts"], json!(8));
        let e = validate("aws", &json!({"access_key_id": "AKIA", "profile": "p"})).unwrap_err();
        assert!(e.message.contains("keep one"), "{}", e.message);
        let e = validate("aws", &json!({"external_id": "x"})).unwrap_err();
        assert!(e.message.contains("role_arn"), "{}", e.message);
        let e = validate("aws", &json!({"parallel_accounts": 2})).unwrap_err();
        assert!(e.message.contains("member_role_name"), "{}", e.message);
        assert!(!crate::sync::source_needs_secret(
            "aws",
            &json!({"profile": "p"})
        ));
        assert!(crate::sync::source_needs_secret(
            "aws",
            &json!({"access_key_id": "A"})
        ));
    }

    #[test]
    fn unknown_keys_name_the_known_ones() {
        let e = validate("okta", &json!({"org_url": "https://o", "orgurl": "x"})).unwrap_err();
        assert!(
            e.message.contains("unknown setting 'orgurl'") && e.message.contains("org_url"),
            "{}",
            e.message
        );
        assert!(e.message.contains("write_back"), "{}", e.message);
    }

    #[test]
    fn bad_values_and_missing_requirements_are_named() {
        let e = validate("github", &json!({"org": "a", "read_tokens": "maybe"})).unwrap_err();
        assert!(
            e.message.contains("'read_tokens'") && e.message.contains("true or false"),
            "{}",
            e.message
        );
        let e = validate("scim", &json!({"base_url": "ftp://x"})).unwrap_err();
        assert!(e.message.contains("http(s)"), "{}", e.message);
        let e = validate("scim", &json!({"page_size": 5})).unwrap_err();
        assert!(
            e.message.contains("needs the setting 'base_url'"),
            "{}",
            e.message
        );
        let e = validate("scim", &json!({"base_url": "  "})).unwrap_err();
        assert!(
            e.message.contains("needs the setting 'base_url'"),
            "{}",
            e.message
        );
        assert!(validate("nope", &json!({}))
            .unwrap_err()
            .message
            .contains("known: scim"));
        assert!(validate("csv", &json!([])).is_err());
    }

    #[test]
    fn lists_from_text_or_arrays_and_blank_optionals_are_dropped() {
        let s = Setting::optional("x", T::List, None, "");
        assert_eq!(
            coerce("k", &s, &json!("a, b,,c")).unwrap(),
            Some(json!(["a", "b", "c"]))
        );
        assert_eq!(
            coerce("k", &s, &json!(["a", " "])).unwrap(),
            Some(json!(["a"]))
        );
        assert!(coerce("k", &s, &json!([1])).is_err());
        let v = validate("github", &json!({"org": "a", "api_base": ""})).unwrap();
        assert_eq!(v, json!({"org": "a"}));
    }

    #[test]
    fn every_setting_has_a_label_and_the_views_carry_the_registry() {
        for k in KINDS {
            for s in k.settings.iter().chain(COMMON) {
                assert_ne!(
                    label(s.key),
                    s.key,
                    "{}: setting '{}' has no label in LABELS",
                    k.kind,
                    s.key
                );
            }
        }
        assert_eq!(label("nope"), "nope");
        let views = views();
        let kinds: Vec<&str> = views.iter().map(|v| v.kind.as_str()).collect();
        assert_eq!(kinds, KINDS.iter().map(|k| k.kind).collect::<Vec<_>>());
        let scim = views.iter().find(|v| v.kind == "scim").unwrap();
        assert_eq!(scim.settings[0].label, "Base URL");
        assert_eq!(scim.settings[0].ty, SettingType::Url);
        assert!(scim.settings[0].required && !scim.settings[0].secret);
        assert!(scim.settings.iter().all(|s| s.key != "write_back"));
        assert_eq!(
            scim.write_back,
            [crate::campaigns::TaskKind::DisableIdentity]
        );
        let aws = views.iter().find(|v| v.kind == "aws").unwrap();
        assert_eq!(
            aws.write_back,
            [
                crate::campaigns::TaskKind::RevokeCredential,
                crate::campaigns::TaskKind::DisableIdentity
            ]
        );
        // `access_key_id` is public; the secret access key is the secret.
        assert!(!aws.settings[0].secret && aws.needs_secret);
        for v in &views {
            assert_eq!(
                !v.write_back.is_empty(),
                crate::writeback::SOURCE_KINDS.contains(&v.kind.as_str()),
                "{}",
                v.kind
            );
            assert!(
                !v.about.is_empty() && v.needs_secret != v.secret.is_empty(),
                "{}",
                v.kind
            );
        }
    }

    #[test]
    fn every_kind_is_registered_once_and_agrees_on_secrets() {
        for k in KINDS {
            assert_eq!(KINDS.iter().filter(|o| o.kind == k.kind).count(), 1);
            assert_eq!(
                k.needs_secret,
                super::super::kind_needs_secret(k.kind),
                "{}",
                k.kind
            );
            assert!(super::super::SOURCE_KINDS.contains(&k.kind));
            // A device sign-in is switched on by one of the kind's own bool
            // settings, offered as a keyless sign-in.
            if let Some(key) = k.device_sign_in {
                let s = k.settings.iter().find(|s| s.key == key).unwrap();
                assert!(s.ty == SettingType::Bool && s.sign_in, "{}", k.kind);
                assert!(k.needs_secret, "the refresh token is kept as the secret");
            }
        }
        assert_eq!(KINDS.len(), super::super::SOURCE_KINDS.len());
    }

    #[test]
    fn a_device_sign_in_is_on_only_where_its_setting_is_true() {
        assert!(signs_in_with_device_code(
            "entra",
            &json!({"delegated": true})
        ));
        for (kind, settings) in [
            ("entra", json!({"delegated": false})),
            ("entra", json!({"delegated": "true"})),
            ("entra", json!({})),
            ("okta", json!({"delegated": true})),
            ("nope", json!({"delegated": true})),
        ] {
            assert!(
                !signs_in_with_device_code(kind, &settings),
                "{kind} {settings}"
            );
        }
    }
}
