//! The keyless bind of the LDAP source: SASL GSSAPI (RFC 4752) with the
//! user's own Kerberos ticket (`kinit`, or the Windows logon session), no
//! stored password.
//!
//! The ticket is looked up first (Unix: GSSAPI's default credential, i.e.
//! the credential cache `KRB5CCNAME` names, with the Kerberos configuration
//! `KRB5_CONFIG` names): with none, or an expired one, the sync fails with
//! `source_auth` and says to run `kinit`, before anything is sent. Its
//! principal is who Custodian signs in as. The bind itself is ldap3's: the
//! service principal is `ldap/<host>` (the URL's host name, or the
//! `kerberos_host` setting when the URL names an IP address or an alias);
//! over TLS (ldaps://, StartTLS) Kerberos only authenticates (with the
//! `tls-server-end-point` channel binding), over a plaintext connection
//! Kerberos seals the traffic (its confidentiality layer).
//!
//! Then the LDAP "Who am I?" extended operation (RFC 4532) asks the
//! directory who the connection is bound as (Active Directory and OpenLDAP
//! answer; Samba does not, and the ticket's principal stands).

use std::time::Duration;

use ldap3::exop::WhoAmI;
use ldap3::{Ldap, LdapError};

use crate::error::{Error, ErrorCode, Result};

/// Longest authorization id kept from a server's "Who am I?" answer.
const MAX_AUTHZID: usize = 512;

/// The ticket GSSAPI would use: its credential and principal.
#[cfg(unix)]
fn ticket() -> Result<(cross_krb5::Cred, String)> {
    use libgssapi::credential::{Cred, CredUsage};
    use libgssapi::oid::{OidSet, GSS_MECH_KRB5};
    let internal = |e: libgssapi::error::Error| {
        Error::internal(format!("Kerberos: cannot set up GSSAPI: {e}"))
    };
    let mut mechs = OidSet::new().map_err(internal)?;
    mechs.add(&GSS_MECH_KRB5).map_err(internal)?;
    let cred = Cred::acquire(None, None, CredUsage::Initiate, Some(&mechs))
        .map_err(|e| no_ticket(&e.to_string()))?;
    let info = cred.info().map_err(|e| no_ticket(&e.to_string()))?;
    if info.lifetime.is_zero() {
        return Err(no_ticket("the ticket has expired"));
    }
    Ok((cred.into(), info.name.to_string()))
}

/// No usable ticket: what to do about it.
fn no_ticket(detail: &str) -> Error {
    Error::new(
        ErrorCode::SourceAuth,
        format!(
            "Kerberos: no valid ticket to sign in to the directory with ({}); run `kinit <user>@<REALM>` \
             (or point KRB5CCNAME at the credential cache that holds one), then sync again",
            crate::sanitize::terminal(detail.trim())
        ),
    )
}

/// A GSSAPI failure during the bind, with what to check.
fn gssapi_error(msg: &str, host: &str) -> Error {
    let lower = msg.to_ascii_lowercase();
    let msg = crate::sanitize::terminal(msg);
    let hint = if lower.contains("server not found") {
        format!(
            "the KDC knows no service principal ldap/{host}: set 'kerberos_host' to the directory \
             server's own host name (as in its SPN), not an alias or an IP address"
        )
    } else if lower.contains("no credentials")
        || lower.contains("expired")
        || lower.contains("credentials cache")
    {
        return no_ticket(&msg);
    } else if lower.contains("kdc") || lower.contains("realm") {
        "check the Kerberos configuration (krb5.conf, or KRB5_CONFIG): the realm and its KDC".into()
    } else {
        "check the ticket (klist) and the directory's service principal".into()
    };
    Error::new(
        ErrorCode::SourceAuth,
        format!("LDAP: the Kerberos (GSSAPI) bind failed: {msg}; {hint}"),
    )
}

/// Binds `ldap` with SASL GSSAPI for `ldap/<host>` within `t`; returns who
/// the connection is bound as: the directory's "Who am I?" answer (`dn:…`
/// or `u:…`) when it gives one, else the ticket's principal.
pub(super) async fn bind(
    ldap: &mut Ldap,
    host: &str,
    t: Duration,
    base_dn: &str,
) -> Result<String> {
    #[cfg(unix)]
    let (cred, principal) = tokio::task::spawn_blocking(ticket)
        .await
        .map_err(|e| Error::internal(format!("Kerberos: the ticket lookup failed: {e}")))??;
    // ldap3 indexes into the server's last GSSAPI token: its own task, so
    // that a malformed one fails this sync rather than the process.
    let mut l = ldap.clone();
    let h = host.to_string();
    let task = tokio::spawn(async move {
        #[cfg(unix)]
        let r = l.sasl_gssapi_cred_bind(cred, &h).await;
        #[cfg(not(unix))]
        let r = l.sasl_gssapi_bind(&h).await;
        r
    });
    let res = match tokio::time::timeout(t, task).await {
        Err(_) => {
            return Err(Error::new(
                ErrorCode::Network,
                format!(
                    "LDAP: timed out after {} s during the Kerberos bind",
                    t.as_secs()
                ),
            ))
        }
        Ok(Err(e)) => {
            return Err(Error::new(
                ErrorCode::SourceError,
                format!("LDAP: the Kerberos bind broke off (the server's answer was malformed): {e}"),
            ))
        }
        Ok(Ok(Err(LdapError::GssapiOperationError(msg)))) => return Err(gssapi_error(&msg, host)),
        Ok(Ok(Err(LdapError::NoGssapiToken))) => {
            return Err(Error::new(
                ErrorCode::SourceAuth,
                "LDAP: the directory sent no GSSAPI token during the Kerberos bind; does it accept SASL GSSAPI?",
            ))
        }
        Ok(Ok(r)) => r,
    };
    let done = res.and_then(|r| r.success());
    if let Err(LdapError::LdapResult { result }) = &done {
        if result.rc == 49 {
            return Err(Error::new(
                ErrorCode::SourceAuth,
                format!(
                    "LDAP: the directory refused the Kerberos bind (invalid credentials): {}; is the ticket for this domain (klist)?",
                    crate::sanitize::terminal(&result.text)
                ),
            ));
        }
    }
    done.map_err(|e| super::ldap_error(e, "bind with Kerberos", base_dn))?;
    let who = match tokio::time::timeout(t, ldap.extended(WhoAmI)).await {
        Ok(Ok(r)) => match r.success() {
            Ok((exop, _)) => exop
                .val
                .map(|v| String::from_utf8_lossy(&v[..v.len().min(MAX_AUTHZID)]).into_owned())
                .filter(|v| !v.trim().is_empty()),
            Err(_) => None,
        },
        _ => None,
    };
    #[cfg(unix)]
    return Ok(who.unwrap_or(principal));
    #[cfg(not(unix))]
    return who.ok_or_else(|| {
        Error::new(
            ErrorCode::SourceError,
            "LDAP: bound with Kerberos, but the directory does not say who as (no Who am I? answer)",
        )
    });
}

/// The account in `accounts` that a bound identity names: `dn:<DN>`, a
/// `u:<DOMAIN>\<name>` authorization id, or a Kerberos principal
/// `<name>@<REALM>` (by userPrincipalName, else sAMAccountName).
pub(super) fn account_of<'a>(who: &str, accounts: &'a [super::Entry]) -> Option<&'a super::Entry> {
    let who = who.trim();
    let eq = |a: Option<&str>, b: &str| a.is_some_and(|a| a.eq_ignore_ascii_case(b));
    if let Some(dn) = who.strip_prefix("dn:") {
        let dn = super::normalize_dn(dn);
        return accounts.iter().find(|e| super::normalize_dn(&e.dn) == dn);
    }
    let name = who.strip_prefix("u:").unwrap_or(who);
    if let Some((_, sam)) = name.split_once('\\') {
        return accounts.iter().find(|e| eq(e.first("sAMAccountName"), sam));
    }
    if let Some((local, _realm)) = name.rsplit_once('@') {
        return accounts
            .iter()
            .find(|e| eq(e.first("userPrincipalName"), name))
            .or_else(|| {
                let mut by_sam = accounts
                    .iter()
                    .filter(|e| eq(e.first("sAMAccountName"), local));
                match (by_sam.next(), by_sam.next()) {
                    (Some(e), None) => Some(e),
                    _ => None,
                }
            });
    }
    None
}
