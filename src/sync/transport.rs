//! Transport rules for sources that send a secret, checked twice: when a
//! source's settings are validated (`settings::validate`, so `source add`
//! refuses them) and again before any connection (`fetch_kind`, write-back,
//! and [`super::http::HttpClient`] for every request and redirect), so a
//! source stored before the rule, or a next-page link a server sends, is
//! caught too.
//!
//! - **HTTPS**: every URL setting of a kind that keeps a secret (bearer
//!   tokens, client secrets, API tokens, signed AWS requests) must be
//!   `https://`. Plain `http://` is accepted only for loopback hosts
//!   (127.0.0.0/8, `::1`, `localhost`), where the test servers run.
//! - **LDAP**: `ldaps://`, or `ldap://` upgraded with StartTLS (the default:
//!   `starttls` is on unless `allow_plain` is set). A plaintext `ldap://`
//!   connection, which sends the bind password in clear, needs the explicit
//!   opt-in `allow_plain=true`; without it the source is refused before
//!   anything is sent. The Kerberos bind (`sasl_gssapi`) is the exception:
//!   it sends no password, and its GSSAPI security layer seals the session
//!   (what Active Directory's LDAP signing asks for), so `starttls=false`
//!   alone is enough for it. There is no loopback exception for LDAP.

use serde_json::Value;
use url::Url;

use super::settings::SettingType;
use crate::error::{Error, Result};

/// 127.0.0.0/8, `::1` or `localhost`.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d.trim_end_matches('.').eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Refuses anything but `https://`, or `http://` to a loopback host.
/// `what` names where the URL comes from (a setting, a link).
pub fn require_https(what: &str, value: &str) -> Result<()> {
    let shown = super::http::redact(value.trim());
    let url = Url::parse(value.trim())
        .map_err(|e| Error::invalid(format!("{what} ('{shown}') is not a URL: {e}")))?;
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&url) => Ok(()),
        "http" => Err(Error::invalid(format!(
            "{what} is '{shown}': plain http:// would send the source's secret and data unencrypted; \
             use https:// (plain HTTP is accepted only for a loopback test server: 127.0.0.1, ::1, localhost)"
        ))),
        other => Err(Error::invalid(format!(
            "{what} must be an https:// URL, not {other}:// ('{shown}')"
        ))),
    }
}

/// How an LDAP source connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LdapTransport {
    /// `ldaps://`: TLS from the first byte.
    Ldaps,
    /// `ldap://` upgraded with StartTLS before the bind.
    StartTls,
    /// `ldap://` without TLS: in clear (`allow_plain=true` only), or
    /// sealed by the Kerberos bind's security layer.
    Plain,
}

/// A bool setting: JSON true/false, or the text forms older caches stored.
fn bool_setting(settings: &Value, key: &str, of: &str) -> Result<Option<bool>> {
    match settings.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(v)) if v.trim().is_empty() => Ok(None),
        Some(Value::String(v)) => match v.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Ok(Some(true)),
            "false" | "no" | "off" | "0" => Ok(Some(false)),
            _ => Err(Error::invalid(format!(
                "the ldap setting '{key}'{of} must be true or false, not '{v}'"
            ))),
        },
        Some(other) => Err(Error::invalid(format!(
            "the ldap setting '{key}'{of} must be true or false, not {other}"
        ))),
    }
}

/// The LDAP rule of the module doc over an LDAP source's settings. `of`
/// names the source in errors (`" of source 'x'"`, or empty).
pub fn ldap_transport(settings: &Value, of: &str) -> Result<LdapTransport> {
    let url = settings
        .get("url")
        .and_then(Value::as_str)
        .map(str::trim)
        .unwrap_or_default();
    let lower = url.to_ascii_lowercase();
    let starttls = bool_setting(settings, "starttls", of)?;
    let allow_plain = bool_setting(settings, "allow_plain", of)?.unwrap_or(false);
    if lower.starts_with("ldaps://") {
        return Ok(LdapTransport::Ldaps);
    }
    if !lower.starts_with("ldap://") {
        return Err(Error::invalid(format!(
            "the ldap setting 'url'{of} is '{url}', which is not an LDAP URL: it must start with ldaps:// or ldap://"
        )));
    }
    // Exactly when the LDAP source binds with Kerberos (its own reading of
    // `sasl_gssapi`), never when it would send a password.
    let sealed = !super::ldap::needs_secret(settings);
    match (starttls.unwrap_or(!allow_plain), allow_plain || sealed) {
        (true, _) => Ok(LdapTransport::StartTls),
        (false, true) => Ok(LdapTransport::Plain),
        (false, false) => Err(Error::invalid(format!(
            "the ldap setting 'starttls'{of} is off for the ldap:// URL '{url}': the bind password would cross \
             the network in clear. Use ldaps://, keep StartTLS on, bind with Kerberos (sasl_gssapi=true: no \
             password, the session is sealed), or set allow_plain=true to accept a plaintext connection knowingly"
        ))),
    }
}

/// Both rules over a kind's settings (as stored: absent keys take the
/// kind's defaults). `source` names the source in errors, when known.
pub fn check_settings(kind: &str, settings: &Value, source: Option<&str>) -> Result<()> {
    let k = super::settings::kind(kind)?;
    let of = source
        .map(|n| format!(" of source '{}'", crate::sanitize::terminal(n)))
        .unwrap_or_default();
    if k.needs_secret {
        for s in k.settings.iter().filter(|s| s.ty == SettingType::Url) {
            let value = settings
                .get(s.key)
                .and_then(Value::as_str)
                .filter(|v| !v.trim().is_empty())
                .or(s.default);
            if let Some(v) = value {
                require_https(&format!("the {kind} setting '{}'{of}", s.key), v)?;
            }
        }
    }
    if kind == "ldap" {
        ldap_transport(settings, &of)?;
    }
    Ok(())
}

/// [`check_settings`] for a stored source, before it is contacted.
pub fn check_source(source: &crate::store::sync::SourceView) -> Result<()> {
    check_settings(&source.kind, &source.settings, Some(&source.name))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use serde_json::json;

    #[test]
    fn https_everywhere_but_loopback() {
        for ok in [
            "https://idp.example/scim/v2",
            "http://127.0.0.1:8080/v2",
            "http://127.3.4.5/",
            "http://[::1]:9/x",
            "http://localhost:3000",
            "http://LOCALHOST./x",
        ] {
            assert!(require_https("the url", ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://example.com/v2",
            "http://10.0.0.1/",
            "http://localhost.example.com/",
            "http://[::ffff:8.8.8.8]/",
            "http://128.0.0.1/",
            "ftp://example.com/",
        ] {
            let e = require_https("the scim setting 'base_url'", bad).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidInput, "{bad}");
            assert!(
                e.message.contains("the scim setting 'base_url'"),
                "{}",
                e.message
            );
        }
        let e = require_https("x", "http://example.com/?token=s3cr3t").unwrap_err();
        assert!(!e.message.contains("s3cr3t"), "{}", e.message);
    }

    #[test]
    fn every_url_setting_of_a_secret_kind_is_checked_defaults_included() {
        assert!(
            check_settings("scim", &json!({"base_url": "http://example.com/v2"}), None).is_err()
        );
        let e = check_settings(
            "entra",
            &json!({"tenant_id": "t", "client_id": "c", "login_base": "http://login.example"}),
            Some("Corp"),
        )
        .unwrap_err();
        assert!(
            e.message
                .contains("the entra setting 'login_base' of source 'Corp'"),
            "{}",
            e.message
        );
        assert!(check_settings("okta", &json!({"org_url": "http://acme.okta.com"}), None).is_err());
        assert!(check_settings(
            "github",
            &json!({"org": "a", "api_base": "http://ghe/api"}),
            None
        )
        .is_err());
        assert!(check_settings(
            "aws",
            &json!({"access_key_id": "A", "endpoint": "http://iam.example/"}),
            None
        )
        .is_err());
        // Defaults are https; loopback test servers pass.
        assert!(
            check_settings("entra", &json!({"tenant_id": "t", "client_id": "c"}), None).is_ok()
        );
        assert!(check_settings(
            "aws",
            &json!({"access_key_id": "A", "endpoint": "http://127.0.0.1:5000/"}),
            None
        )
        .is_ok());
        // A kind without a secret is not a transport question here.
        assert!(check_settings("csv", &json!({"path": "/x.csv"}), None).is_ok());
    }

    #[test]
    fn ldap_needs_tls_unless_plain_is_allowed() {
        let t = |v: Value| ldap_transport(&v, "");
        assert_eq!(
            t(json!({"url": "ldaps://dc:636"})).unwrap(),
            LdapTransport::Ldaps
        );
        assert_eq!(
            t(json!({"url": "LDAPS://dc", "starttls": false})).unwrap(),
            LdapTransport::Ldaps
        );
        assert_eq!(
            t(json!({"url": "ldap://dc"})).unwrap(),
            LdapTransport::StartTls,
            "StartTLS by default"
        );
        assert_eq!(
            t(json!({"url": "ldap://dc", "starttls": "true"})).unwrap(),
            LdapTransport::StartTls
        );
        assert_eq!(
            t(json!({"url": "ldap://dc", "allow_plain": true})).unwrap(),
            LdapTransport::Plain
        );
        assert_eq!(
            t(json!({"url": "ldap://dc", "allow_plain": true, "starttls": true})).unwrap(),
            LdapTransport::StartTls
        );
        // No loopback exception.
        let e = t(json!({"url": "ldap://127.0.0.1:389", "starttls": false})).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidInput);
        assert!(e.message.contains("allow_plain=true"), "{}", e.message);
        assert!(e.message.contains("sasl_gssapi=true"), "{}", e.message);
        // The Kerberos bind sends no password and seals the session.
        assert_eq!(
            t(json!({"url": "ldap://dc", "starttls": false, "sasl_gssapi": true})).unwrap(),
            LdapTransport::Plain
        );
        assert_eq!(
            t(json!({"url": "ldap://dc", "sasl_gssapi": true})).unwrap(),
            LdapTransport::StartTls,
            "StartTLS stays the default with Kerberos"
        );
        assert!(t(json!({"url": "ldap://dc", "starttls": false, "sasl_gssapi": false})).is_err());
        // Only as the LDAP source reads the setting: text it would not take
        // as the Kerberos bind means a password bind, so no plain ldap://.
        assert!(t(json!({"url": "ldap://dc", "starttls": false, "sasl_gssapi": "yes"})).is_err());
        assert!(t(json!({"url": "http://dc"})).is_err());
        assert!(t(json!({"url": "ldap://dc", "allow_plain": "maybe"})).is_err());
    }
}
