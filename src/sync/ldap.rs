//! LDAP directories and Active Directory (the `ldap3` client; a simple
//! bind, or a Kerberos SASL GSSAPI bind with the user's own ticket).
//!
//! Settings: `url` (`ldaps://` or `ldap://`) and `base_dn` (required);
//! how it binds: `sasl_gssapi` (keyless: Kerberos with the ticket `kinit`
//! left in the credential cache, no stored secret; `kerberos_host` names
//! the server in its service principal `ldap/<host>` when the URL's host is
//! an IP address or an alias; see [`kerberos`]), else `bind_dn` and the
//! secret, its password (a simple bind); `starttls` (for `ldap://`, on by default) and `allow_plain`
//! (the explicit opt-in for a plaintext `ldap://` connection; without it a
//! source with StartTLS off is refused before anything is sent, see
//! [`super::transport::ldap_transport`]), `ca_cert` (a PEM file: an
//! internal CA trusted besides the system's; the server's certificate and
//! host name are always verified), `page_size` (1 to
//! 1000, default 500: AD caps pages at its `MaxPageSize`, 1000 by default),
//! `account_filter` and `group_filter` (to narrow or widen the searches; the
//! defaults are below). Secret: the bind password (simple bind only).
//!
//! Fetch (always full, see below), all under `base_dn`, subtree:
//! 1. the base entry's `maxPwdAge` (AD's domain password policy), which also
//!    proves the base DN exists before anything else is read;
//! 2. accounts, with the RFC 2696 Simple Paged Results control:
//!    [`DEFAULT_ACCOUNT_FILTER`], i.e. users, `inetOrgPerson`s and
//!    `account`s but not computers, plus managed service accounts (MSA and
//!    gMSA, which AD derives from `computer`). Computer accounts are hosts,
//!    not identities anyone builds or owns, and a domain has as many of them
//!    as users: they are left out at the server and again here;
//! 3. groups (`group`, `groupOfNames`, `groupOfUniqueNames`), paged too;
//! 4. computers that accept resource-based delegation (see below);
//! 5. the rest of every ranged attribute: a Windows DC sends a
//!    multi-valued attribute with more than `MaxValRange` (1500) values as
//!    `member;range=0-1499`; each further chunk is a base search on the
//!    entry for `member;range=<next>-*`, until one ends in `-*`
//!    ([`Entry::take_ranges`]; at most 10,000 chunks an entry, then a
//!    warning).
//!
//! Referrals are dropped (`EntriesOnly`): following them would mean binding
//! to other servers with this source's password.
//!
//! Mapping:
//! - **Which accounts are non-human**: MSA/gMSA/dMSA object classes; an
//!   `employeeType` naming a machine ([`super::scim::machine_kind`], e.g.
//!   `service`, `agent`, `bot`); a `servicePrincipalName` (Kerberos services
//!   run under it); an `account` entry that is not a person (OpenLDAP's usual
//!   service-account shape, `account` + `simpleSecurityObject`); an entry
//!   inside an OU named like service accounts (`service…`, `svc…`, `robot…`,
//!   `bot…`; `agent…`/`ai…` → AI agent); or a `svc-`/`svc_`/`sa-`/`srv-`
//!   account name. Everything else is a person. An account with an SPN
//!   that carries a person's attributes (`givenName`, and `mail`, `sn` or
//!   `manager`) and no machine naming stays a person (no leaver when a
//!   person's account gains an SPN); its service use becomes a service
//!   account of the same key owned by that person, which the posture check
//!   `human-account-as-service` (NHI10) flags. `DONT_EXPIRE_PASSWORD` alone
//!   does not decide it (it is set on people too) but is shown.
//! - **People**: `displayName`/`cn`, `mail` (else a `userPrincipalName` that
//!   is an address), `department`, `title`, `manager` (a DN resolved within
//!   the fetched entries). `accountExpires` in the past → departed (`left_at`
//!   = that time); `ACCOUNTDISABLE` → suspended (disabling is how AD
//!   offboards, but an account can be disabled for leave and re-enabled, so
//!   it is not taken as a departure date).
//! - **Service accounts** → identities: disabled when `ACCOUNTDISABLE` or
//!   expired (not `krbtgt`, RID 502, or an RODC's `krbtgt_<n>`: disabled for
//!   logon by design, its password keys every ticket, so it stays active
//!   and its password's age is judged); owner from `managedBy` (MSA/gMSA; a group there is named in the
//!   description, since an owner is a person) or `manager`; `department` →
//!   team; `whenCreated`/`createTimestamp` → created; `lastLogonTimestamp`
//!   (FILETIME; replicated lazily, so up to ~14 days behind) → last used.
//!   Security-relevant `userAccountControl` bits (password never expires,
//!   password not required, no Kerberos pre-authentication, delegation) and
//!   SPNs are listed in the description.
//! - Each service account's **password** → a `password` credential:
//!   `pwdLastSet` → created and last rotated (0 means "must change"),
//!   expiry = the DC's `msDS-UserPasswordExpiryTimeComputed` where it
//!   offers it (the resultant fine-grained policy, PSO, applied), else
//!   `pwdLastSet` + the domain `maxPwdAge` (already expired when
//!   `pwdLastSet` is 0, as AD computes it), none when
//!   `DONT_EXPIRE_PASSWORD`; a gMSA's managed password expires after
//!   `msDS-ManagedPasswordInterval` days (AD rotates it).
//! - **Group memberships** of service accounts → grants `member` on the group
//!   (a resource), nested groups followed (`member via <group> > <group>`, the shortest chain
//!   from the account's own group); builtin
//!   administrative groups (Domain/Enterprise/Schema Admins, Administrators,
//!   the operators groups, DnsAdmins, ...) and any group named `*admin*` or
//!   with `adminCount=1` are high/critical, and membership in them is admin
//!   and high-consequence. Only groups that some service account reaches
//!   become resources. AD distribution lists (`groupType` without the
//!   security bit 0x80000000) give no grant and pass no nesting on; an
//!   account's direct lists are named in its description. The
//!   primary group (`primaryGroupID`, resolved by RID within the account's
//!   domain SID from `objectSid`; in neither `member` nor `memberOf`) is a
//!   membership too (`member (primary group)`), except the defaults 513
//!   Domain Users and 515 Domain Computers.
//! - **Kerberos delegation**: `TRUSTED_FOR_DELEGATION` (unconstrained) and
//!   `TRUSTED_TO_AUTH_FOR_DELEGATION` (protocol transition) → admin,
//!   high-consequence grants on the domain; each `msDS-AllowedToDelegateTo`
//!   SPN → a grant on that service and, when another fetched service account
//!   holds the SPN, an `impersonate` delegation edge to it. Resource-based
//!   constrained delegation is read from the target: the DACL of its
//!   `msDS-AllowedToActOnBehalfOfOtherIdentity` ([`dacl_allowed_sids`]),
//!   each SID resolved by `objectSid`; an allowed identity gets an
//!   `impersonate` edge to a target identity, or a grant on a target
//!   computer (read by a third search, computers with the attribute set,
//!   a `host:` resource); the target's description names everyone allowed
//!   (unresolved SIDs as SIDs).
//!
//! Keys: `objectGUID` (AD), else `entryUUID` (OpenLDAP), else the normalised
//! DN, so renames and moves keep the local id where the directory has one.
//!
//! Always a full fetch: AD's `uSNChanged` finds changed entries but not
//! deleted ones (that needs the show-deleted control and the Deleted Objects
//! container), and OpenLDAP has no deletion feed short of syncrepl; a full
//! read of accounts and groups is a few pages per thousand entries.
//!
//! Who Custodian signs in as (`Fetched::signed_in_as`): the account the
//! bind DN names, or the one the Kerberos bind is bound as, when the read
//! brought it; else (a person, or an account outside the filters) the DN
//! or principal itself.
//!
//! Errors: a refused bind (49) or missing rights (50), no Kerberos ticket
//! (or an expired one) → `source_auth`; a
//! missing base DN (32) → `source_error` naming it; a server that is busy
//! (51) or unavailable (52), a dropped connection or a timeout is retried
//! with the shared backoff policy (the paged search restarts: its cookie is
//! bound to the connection), then → `network`/`source_error`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::asn1::{StructureTag, PL};
use ldap3::{LdapConnAsync, LdapConnSettings, LdapError, Scope};

use super::http::{backoff, HttpPolicy};
use super::records::*;
use super::scim::machine_kind;
use super::transport::{ldap_transport, LdapTransport};
use super::{Source, SyncContext};
use crate::error::{Error, ErrorCode, Result};
use crate::model::{
    AgentClass, CredentialKind, DelegationKind, IdentityKind, IdentityStatus, PersonStatus,
    Privilege, Sensitivity,
};

mod kerberos;

pub struct LdapSource;

/// Accounts: people and service accounts, no computers except managed
/// service accounts.
pub const DEFAULT_ACCOUNT_FILTER: &str = "(|(&(|(objectClass=user)(objectClass=inetOrgPerson)(objectClass=account))(!(objectClass=computer)))(objectClass=msDS-ManagedServiceAccount)(objectClass=msDS-GroupManagedServiceAccount)(objectClass=msDS-DelegatedManagedServiceAccount))";
pub const DEFAULT_GROUP_FILTER: &str =
    "(|(objectClass=group)(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))";
const DEFAULT_PAGE: i32 = 500;
/// At most this many ranged reads per entry (1,500 values each on AD: 15M).
const MAX_RANGE_ROUNDS: usize = 10_000;

const ACCOUNT_ATTRS: &[&str] = &[
    "objectClass",
    "objectGUID",
    "objectSid",
    "primaryGroupID",
    // Constructed (asked for by name): the expiry AD computes, with the
    // resultant fine-grained password policy (PSO) applied.
    "msDS-UserPasswordExpiryTimeComputed",
    "entryUUID",
    "cn",
    "uid",
    "sAMAccountName",
    "displayName",
    "givenName",
    "sn",
    "mail",
    "userPrincipalName",
    "description",
    "title",
    "department",
    "employeeType",
    "manager",
    "managedBy",
    "memberOf",
    "userAccountControl",
    "pwdLastSet",
    "lastLogonTimestamp",
    "accountExpires",
    "whenCreated",
    "createTimestamp",
    "servicePrincipalName",
    "msDS-ManagedPasswordInterval",
    "msDS-AllowedToDelegateTo",
    "msDS-AllowedToActOnBehalfOfOtherIdentity",
];
/// Computers that accept resource-based constrained delegation (hosts are
/// not governed, but who may act as anyone towards them is).
const HOST_FILTER: &str = "(&(objectClass=computer)(msDS-AllowedToActOnBehalfOfOtherIdentity=*))";
const HOST_ATTRS: &[&str] = &[
    "objectClass",
    "objectGUID",
    "objectSid",
    "cn",
    "sAMAccountName",
    "dNSHostName",
    "msDS-AllowedToActOnBehalfOfOtherIdentity",
];
const GROUP_ATTRS: &[&str] = &[
    "objectGUID",
    "entryUUID",
    "cn",
    "description",
    "member",
    "uniqueMember",
    "adminCount",
    "groupType",
    "objectSid",
];

/// `userAccountControl` bits.
pub mod uac {
    pub const ACCOUNTDISABLE: i64 = 0x2;
    pub const PASSWD_NOTREQD: i64 = 0x20;
    pub const DONT_EXPIRE_PASSWORD: i64 = 0x10000;
    pub const TRUSTED_FOR_DELEGATION: i64 = 0x80000;
    pub const DONT_REQ_PREAUTH: i64 = 0x40_0000;
    pub const TRUSTED_TO_AUTH_FOR_DELEGATION: i64 = 0x100_0000;
}

/// FILETIME (100-ns ticks since 1601-01-01 UTC) to a time; 0 and the
/// "never" value (`i64::MAX`) are none.
pub fn filetime(ticks: i64) -> Option<DateTime<Utc>> {
    if ticks <= 0 || ticks == i64::MAX {
        return None;
    }
    let secs = ticks / 10_000_000 - 11_644_473_600;
    let nanos = (ticks % 10_000_000) * 100;
    Utc.timestamp_opt(secs, u32::try_from(nanos).ok()?).single()
}

/// LDAP GeneralizedTime (`20240102103000Z`, `20240102103000.0Z`) to a time.
pub fn generalized_time(s: &str) -> Option<DateTime<Utc>> {
    let digits: String = s.chars().take(14).collect();
    if digits.len() < 14 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    chrono::NaiveDateTime::parse_from_str(&digits, "%Y%m%d%H%M%S")
        .ok()
        .map(|t| t.and_utc())
}

/// An AD `objectGUID` (16 bytes, first three fields little-endian) in its
/// usual text form.
pub fn guid_string(b: &[u8]) -> Option<String> {
    if b.len() != 16 {
        return None;
    }
    Some(format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]
    ))
}

/// A binary SID (MS-DTYP 2.4.2.2: revision, sub-authority count, 48-bit
/// big-endian authority, little-endian 32-bit sub-authorities) as
/// `S-1-5-21-…`.
pub fn sid_string(b: &[u8]) -> Option<String> {
    let (&rev, rest) = b.split_first()?;
    let (&count, rest) = rest.split_first()?;
    let count = usize::from(count);
    if rev != 1 || rest.len() != 6 + 4 * count {
        return None;
    }
    let authority = rest[..6].iter().fold(0u64, |a, &x| (a << 8) | u64::from(x));
    let mut out = format!("S-1-{authority}");
    for c in rest[6..].chunks_exact(4) {
        out.push_str(&format!(
            "-{}",
            u32::from_le_bytes([c[0], c[1], c[2], c[3]])
        ));
    }
    Some(out)
}

/// The SIDs a security descriptor's DACL lets through: the trustees of its
/// access-allowed ACEs (plain and object) that no access-denied ACE names.
/// `msDS-AllowedToActOnBehalfOfOtherIdentity` (resource-based constrained
/// delegation) is such a descriptor: the accounts it allows may act as any
/// user towards the account that holds it. Self-relative form, MS-DTYP
/// 2.4.6 (header: revision, sbz1, control, then 32-bit little-endian
/// offsets of owner, group, SACL and DACL), ACL 2.4.5 (revision, sbz1,
/// size, ACE count, sbz2), ACE 2.4.4 (type, flags, size; then the mask
/// and, for object ACEs, flags and up to two GUIDs before the SID). `None`
/// when the descriptor cannot be read; an absent DACL allows no one here
/// (a null DACL would allow everyone, which AD does not store for this
/// attribute).
pub fn dacl_allowed_sids(sd: &[u8]) -> Option<Vec<String>> {
    const ALLOWED: u8 = 0x00;
    const DENIED: u8 = 0x01;
    const ALLOWED_OBJECT: u8 = 0x05;
    const DENIED_OBJECT: u8 = 0x06;
    let u16_at = |b: &[u8], i: usize| -> Option<usize> {
        Some(usize::from(u16::from_le_bytes([
            *b.get(i)?,
            *b.get(i + 1)?,
        ])))
    };
    let u32_at = |b: &[u8], i: usize| -> Option<usize> {
        let v = u32::from_le_bytes([*b.get(i)?, *b.get(i + 1)?, *b.get(i + 2)?, *b.get(i + 3)?]);
        usize::try_from(v).ok()
    };
    if sd.len() < 20 || sd[0] != 1 {
        return None;
    }
    let dacl = u32_at(sd, 16)?;
    if dacl == 0 {
        return Some(vec![]);
    }
    let acl = sd.get(dacl..)?;
    let acl_size = u16_at(acl, 2)?;
    let count = u16_at(acl, 4)?;
    let acl = acl.get(..acl_size)?;
    let (mut allowed, mut denied) = (vec![], HashSet::new());
    let mut at = 8;
    for _ in 0..count {
        let ace_type = *acl.get(at)?;
        let size = u16_at(acl, at + 2)?;
        if size < 8 {
            return None;
        }
        let ace = acl.get(at..at + size)?;
        let sid_at = match ace_type {
            ALLOWED | DENIED => Some(8),
            ALLOWED_OBJECT | DENIED_OBJECT => {
                let flags = u32_at(ace, 8)?;
                // ACE_OBJECT_TYPE_PRESENT, ACE_INHERITED_OBJECT_TYPE_PRESENT
                Some(12 + 16 * (flags & 1) + 16 * ((flags >> 1) & 1))
            }
            _ => None,
        };
        if let Some(sid_at) = sid_at {
            let sid_bytes = ace.get(sid_at..)?;
            let count = usize::from(*sid_bytes.get(1)?);
            let sid = sid_string(sid_bytes.get(..8 + 4 * count)?)?;
            if matches!(ace_type, DENIED | DENIED_OBJECT) {
                denied.insert(sid);
            } else if !allowed.contains(&sid) {
                allowed.push(sid);
            }
        }
        at += size;
    }
    allowed.retain(|s| !denied.contains(s));
    Some(allowed)
}

/// A DN in a form to compare by: RDNs trimmed, spaces around `=` removed,
/// lower-cased. Escaped commas (`\,`) stay inside their RDN.
pub fn normalize_dn(dn: &str) -> String {
    let mut rdns = Vec::new();
    let mut cur = String::new();
    let mut escaped = false;
    for c in dn.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
        } else if c == '\\' {
            cur.push(c);
            escaped = true;
        } else if c == ',' {
            rdns.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    rdns.push(cur);
    rdns.iter()
        .map(|r| {
            let r = r.trim();
            match r.split_once('=') {
                Some((a, v)) => format!("{}={}", a.trim(), v.trim()),
                None => r.to_string(),
            }
            .to_lowercase()
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// One directory entry. Attribute names are lower-cased; values are bytes
/// (most are UTF-8; `objectGUID` is binary).
#[derive(Debug, Clone, Default)]
pub struct Entry {
    pub dn: String,
    attrs: HashMap<String, Vec<Vec<u8>>>,
}

impl Entry {
    pub fn new(dn: &str, attrs: &[(&str, &[&str])]) -> Entry {
        let mut e = Entry {
            dn: dn.to_string(),
            attrs: HashMap::new(),
        };
        for (k, vs) in attrs {
            e.attrs.insert(
                k.to_lowercase(),
                vs.iter().map(|v| v.as_bytes().to_vec()).collect(),
            );
        }
        e
    }

    fn values(&self, name: &str) -> &[Vec<u8>] {
        self.attrs
            .get(&name.to_lowercase())
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The first non-empty UTF-8 value.
    pub fn first(&self, name: &str) -> Option<&str> {
        self.all(name).into_iter().next()
    }

    /// Every non-empty UTF-8 value.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.values(name)
            .iter()
            .filter_map(|v| std::str::from_utf8(v).ok())
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect()
    }

    pub fn int(&self, name: &str) -> Option<i64> {
        self.first(name).and_then(|s| s.parse().ok())
    }

    pub fn has_class(&self, class: &str) -> bool {
        self.all("objectClass")
            .iter()
            .any(|c| c.eq_ignore_ascii_case(class))
    }

    /// `objectSid` as text: AD sends it binary; a text `S-1-…` value
    /// (an LDIF fixture) is taken as it is.
    pub fn sid(&self) -> Option<String> {
        let v = self.values("objectSid").first()?;
        match std::str::from_utf8(v) {
            Ok(t) if t.starts_with("S-1-") => Some(t.to_string()),
            _ => sid_string(v),
        }
    }

    /// The SID of the primary group: the domain's SID (the account's
    /// without its RID) and `primaryGroupID`. The defaults every account
    /// has (513 Domain Users, 515 Domain Computers) say nothing more than
    /// "an account of the domain": `None`.
    pub fn primary_group_sid(&self) -> Option<String> {
        let rid = self
            .int("primaryGroupID")
            .filter(|r| *r != 513 && *r != 515)?;
        let sid = self.sid()?;
        let (domain, _) = sid.rsplit_once('-')?;
        Some(format!("{domain}-{rid}"))
    }

    /// The KDC's account: RID 502 in a domain, or an RODC's `krbtgt_<n>`.
    pub fn is_krbtgt(&self) -> bool {
        self.sid()
            .is_some_and(|s| s.starts_with("S-1-5-21-") && s.ends_with("-502"))
            || self
                .first("sAMAccountName")
                .is_some_and(|n| n.to_ascii_lowercase().starts_with("krbtgt_"))
    }

    /// The stable key: objectGUID, entryUUID, else the normalised DN.
    pub fn key(&self) -> String {
        if let Some(g) = self
            .values("objectGUID")
            .first()
            .and_then(|b| guid_string(b))
        {
            return g;
        }
        if let Some(u) = self.first("entryUUID") {
            return u.to_lowercase();
        }
        normalize_dn(&self.dn)
    }

    /// Moves the values of AD's ranged form (`member;range=0-1499`: a
    /// multi-valued attribute larger than the DC's `MaxValRange`, 1500 by
    /// default) into the plain attribute, and returns, for each attribute
    /// that is not complete (its last chunk ends in `-*`), where the next
    /// chunk starts. MS-ADTS 3.1.1.3.1.3.3.
    pub fn take_ranges(&mut self) -> Vec<(String, u64)> {
        let ranged: Vec<String> = self
            .attrs
            .keys()
            .filter(|k| k.contains(";range="))
            .cloned()
            .collect();
        let mut more = vec![];
        for k in ranged {
            let Some(values) = self.attrs.remove(&k) else {
                continue;
            };
            let Some((attr, range)) = k.split_once(";range=") else {
                continue;
            };
            self.attrs
                .entry(attr.to_string())
                .or_default()
                .extend(values);
            let hi = range.split_once('-').map(|(_, hi)| hi);
            match hi {
                Some("*") | None => {}
                Some(hi) => {
                    if let Ok(hi) = hi.parse::<u64>() {
                        more.push((attr.to_string(), hi + 1));
                    }
                }
            }
        }
        more
    }

    /// Adds a chunk read for ranged values (its ranged attributes only) and
    /// returns where the next chunks start, as [`Entry::take_ranges`].
    pub fn absorb_ranges(&mut self, mut chunk: Entry) -> Vec<(String, u64)> {
        let more = chunk.take_ranges();
        for (k, v) in chunk.attrs {
            self.attrs.entry(k).or_default().extend(v);
        }
        more
    }

    fn uac(&self) -> i64 {
        self.int("userAccountControl").unwrap_or(0)
    }
}

fn malformed(what: &str) -> Error {
    Error::new(
        ErrorCode::MalformedResponse,
        format!("LDAP: the server sent a search entry that cannot be read ({what})"),
    )
}

/// Reads a SearchResultEntry (`[APPLICATION 4] { objectName, attributes }`)
/// without panicking on a malformed one (`ldap3`'s own reader panics).
pub fn parse_entry(tag: StructureTag) -> Result<Entry> {
    let parts = tag
        .match_id(4)
        .and_then(StructureTag::expect_constructed)
        .ok_or_else(|| malformed("not an entry"))?;
    let mut parts = parts.into_iter();
    let dn = parts
        .next()
        .and_then(StructureTag::expect_primitive)
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| malformed("no DN"))?;
    let attrs = parts
        .next()
        .and_then(StructureTag::expect_constructed)
        .ok_or_else(|| malformed("no attribute list"))?;
    let mut out = HashMap::new();
    for a in attrs {
        let mut pa = a
            .expect_constructed()
            .ok_or_else(|| malformed("attribute is not a sequence"))?
            .into_iter();
        let name = pa
            .next()
            .and_then(StructureTag::expect_primitive)
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| malformed("attribute without a name"))?;
        let vals = match pa.next().map(|t| t.payload) {
            Some(PL::C(vs)) => vs
                .into_iter()
                .map(|v| v.expect_primitive().ok_or_else(|| malformed("value")))
                .collect::<Result<Vec<_>>>()?,
            _ => return Err(malformed("attribute without values")),
        };
        out.entry(name.to_lowercase())
            .or_insert_with(Vec::new)
            .extend(vals);
    }
    Ok(Entry { dn, attrs: out })
}

/// What an account is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountClass {
    Person,
    Machine(IdentityKind, Option<AgentClass>),
    /// A person's own account (person attributes, no machine naming) that
    /// also runs a Kerberos service (an SPN): the person stays a person, and
    /// the account's service use is governed as a service account owned by
    /// that person (finding `human-account-as-service`).
    PersonAndService,
    /// A computer (host) account: not governed here.
    Computer,
}

impl AccountClass {
    /// Whether the account is (also) a person's.
    pub fn is_person(self) -> bool {
        matches!(self, AccountClass::Person | AccountClass::PersonAndService)
    }

    /// The identity the account is governed as, if any.
    pub fn machine(self) -> Option<(IdentityKind, Option<AgentClass>)> {
        match self {
            AccountClass::Machine(kind, class) => Some((kind, class)),
            AccountClass::PersonAndService => Some((IdentityKind::ServiceAccount, None)),
            AccountClass::Person | AccountClass::Computer => None,
        }
    }
}

fn is_managed_sa(e: &Entry) -> bool {
    e.has_class("msDS-GroupManagedServiceAccount")
        || e.has_class("msDS-ManagedServiceAccount")
        || e.has_class("msDS-DelegatedManagedServiceAccount")
}

fn account_name(e: &Entry) -> Option<&str> {
    e.first("sAMAccountName")
        .or_else(|| e.first("uid"))
        .or_else(|| e.first("cn"))
}

/// A person's attributes: a given name, and a mail address, surname or
/// manager besides it. Service accounts carry a manager (their owner) or a
/// mail address for alerts, but not a given name.
fn has_person_attributes(e: &Entry) -> bool {
    e.first("givenName").is_some()
        && (e.first("mail").is_some() || e.first("sn").is_some() || e.first("manager").is_some())
}

/// A machine by where the entry sits (an OU named for service accounts or
/// agents) or by its account name (`svc-`, `sa-`, `srv-`...).
fn machine_by_place_or_name(e: &Entry) -> Option<IdentityKind> {
    let norm = normalize_dn(&e.dn);
    for rdn in norm.split(',').skip(1) {
        if let Some(ou) = rdn.strip_prefix("ou=") {
            let ou = ou.trim_start_matches(|c: char| !c.is_alphanumeric());
            if ou.starts_with("agent") || ou.starts_with("ai agent") || ou.starts_with("ai-agent") {
                return Some(IdentityKind::AiAgent);
            }
            if ["service", "svc", "robot", "bot", "non-human", "nonhuman"]
                .iter()
                .any(|p| ou.starts_with(p))
            {
                return Some(IdentityKind::ServiceAccount);
            }
        }
    }
    let n = account_name(e)?.to_lowercase();
    ["svc-", "svc_", "svc.", "sa-", "sa_", "srv-", "srv_"]
        .iter()
        .any(|p| n.starts_with(p))
        .then_some(IdentityKind::ServiceAccount)
}

/// Decides whether an account is a person or a non-human identity (see the
/// module documentation for the signals, strongest first).
pub fn classify(e: &Entry) -> AccountClass {
    if is_managed_sa(e) {
        return AccountClass::Machine(IdentityKind::ServiceAccount, None);
    }
    if e.has_class("computer") {
        return AccountClass::Computer;
    }
    if let Some((kind, class)) = e.first("employeeType").and_then(machine_kind) {
        return AccountClass::Machine(kind, class);
    }
    let by_place = machine_by_place_or_name(e);
    if e.first("servicePrincipalName").is_some() {
        if by_place.is_none() && has_person_attributes(e) {
            return AccountClass::PersonAndService;
        }
        return AccountClass::Machine(by_place.unwrap_or(IdentityKind::ServiceAccount), None);
    }
    let personish = e.has_class("person")
        || e.has_class("inetOrgPerson")
        || e.has_class("organizationalPerson")
        || e.has_class("user");
    if e.has_class("account") && !personish {
        return AccountClass::Machine(IdentityKind::ServiceAccount, None);
    }
    match by_place {
        Some(kind) => AccountClass::Machine(kind, None),
        None => AccountClass::Person,
    }
}

/// Well-known groups by SID: domain-relative RIDs (MS-DTYP 2.4.2.4; the
/// domain SID `S-1-5-21-…` before them) and the `BUILTIN` domain
/// (`S-1-5-32-…`). Names are localised (a German DC has "Domänen-Admins"),
/// SIDs are not.
const WELL_KNOWN_GROUPS: &[(&str, u32, Sensitivity)] = &[
    ("domain", 512, Sensitivity::Critical),  // Domain Admins
    ("domain", 516, Sensitivity::Critical),  // Domain Controllers
    ("domain", 518, Sensitivity::Critical),  // Schema Admins
    ("domain", 519, Sensitivity::Critical),  // Enterprise Admins
    ("domain", 498, Sensitivity::High),      // Enterprise Read-only Domain Controllers
    ("domain", 517, Sensitivity::High),      // Cert Publishers
    ("domain", 520, Sensitivity::High),      // Group Policy Creator Owners
    ("domain", 521, Sensitivity::High),      // Read-only Domain Controllers
    ("domain", 526, Sensitivity::High),      // Key Admins
    ("domain", 527, Sensitivity::High),      // Enterprise Key Admins
    ("builtin", 544, Sensitivity::Critical), // Administrators
    ("builtin", 548, Sensitivity::High),     // Account Operators
    ("builtin", 549, Sensitivity::High),     // Server Operators
    ("builtin", 550, Sensitivity::High),     // Print Operators
    ("builtin", 551, Sensitivity::High),     // Backup Operators
    ("builtin", 552, Sensitivity::High),     // Replicator
];

/// The sensitivity a group's SID alone gives it, if it is well known.
pub fn sid_sensitivity(sid: &str) -> Option<Sensitivity> {
    let (prefix, rid) = sid.rsplit_once('-')?;
    let rid: u32 = rid.parse().ok()?;
    let domain = if prefix == "S-1-5-32" {
        "builtin"
    } else if prefix.starts_with("S-1-5-21-") {
        "domain"
    } else {
        return None;
    };
    WELL_KNOWN_GROUPS
        .iter()
        .find(|(d, r, _)| *d == domain && *r == rid)
        .map(|(_, _, s)| *s)
}

/// How sensitive a group is, strongest signal first: a group the source
/// names in `admin_groups` (by cn or DN) is critical; a well-known SID
/// ([`WELL_KNOWN_GROUPS`]); `adminCount = 1` (AD's protected groups, kept
/// by AdminSDHolder) is high; then the well-known English names, and any
/// name containing "admin", for directories without SIDs (OpenLDAP).
pub fn group_sensitivity(
    sid: Option<&str>,
    name: &str,
    dn: &str,
    admin_count: bool,
    admin_groups: &[String],
) -> Sensitivity {
    let n = name.trim().to_lowercase();
    let norm_dn = normalize_dn(dn);
    if admin_groups
        .iter()
        .any(|g| g.trim().eq_ignore_ascii_case(&n) || normalize_dn(g) == norm_dn)
    {
        return Sensitivity::Critical;
    }
    if let Some(s) = sid.and_then(sid_sensitivity) {
        return s;
    }
    const CRITICAL: &[&str] = &[
        "domain admins",
        "enterprise admins",
        "schema admins",
        "administrators",
    ];
    const HIGH: &[&str] = &[
        "account operators",
        "backup operators",
        "server operators",
        "print operators",
        "dnsadmins",
        "group policy creator owners",
        "key admins",
        "enterprise key admins",
        "cert publishers",
    ];
    if CRITICAL.contains(&n.as_str()) {
        Sensitivity::Critical
    } else if HIGH.contains(&n.as_str()) || n.contains("admin") || admin_count {
        Sensitivity::High
    } else {
        Sensitivity::Low
    }
}

/// How the source binds.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Bind {
    /// A simple bind: this DN and the password (the secret).
    Simple { dn: String },
    /// SASL GSSAPI with the user's own Kerberos ticket, to the service
    /// principal `ldap/<host>`.
    Kerberos { host: String },
}

/// Is the `sasl_gssapi` setting on (`true`, or the text "true")?
fn kerberos_on(settings: &serde_json::Value) -> bool {
    match settings.get("sasl_gssapi") {
        Some(serde_json::Value::Bool(b)) => *b,
        Some(serde_json::Value::String(t)) => t.trim().eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// Does an LDAP source with these settings read a secret (the bind
/// password)? Not with the Kerberos bind.
pub fn needs_secret(settings: &serde_json::Value) -> bool {
    !kerberos_on(settings)
}

/// The bind settings go one way or the other: a Kerberos bind takes no
/// bind DN (it binds as the ticket's principal), a simple bind needs one,
/// and `kerberos_host` means nothing without the Kerberos bind.
pub fn check_settings(out: &serde_json::Map<String, serde_json::Value>) -> Result<()> {
    let settings = serde_json::Value::Object(out.clone());
    if kerberos_on(&settings) {
        if out.contains_key("bind_dn") {
            return Err(Error::invalid(
                "the ldap setting 'bind_dn' is for a simple bind with a password, but 'sasl_gssapi' binds with your Kerberos ticket as whoever it names; keep one of the two",
            ));
        }
        return Ok(());
    }
    if out.contains_key("kerberos_host") {
        return Err(Error::invalid(
            "the ldap setting 'kerberos_host' is for the Kerberos bind: set sasl_gssapi=true too, or leave it out to bind with a DN and password",
        ));
    }
    if !out.contains_key("bind_dn") {
        return Err(Error::invalid(
            "an ldap source needs 'bind_dn' (the DN to bind as with a password, the secret), or sasl_gssapi=true to bind with your own Kerberos ticket",
        ));
    }
    Ok(())
}

/// How the source signs in, for `source show`: (mode, identity).
pub fn sign_in(settings: &serde_json::Value) -> (String, String) {
    let get = |k: &str| {
        settings
            .get(k)
            .and_then(|v| v.as_str())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    if kerberos_on(settings) {
        let host = get("kerberos_host")
            .or_else(|| get("url").and_then(|u| url_host(&u)))
            .unwrap_or_else(|| "?".into());
        (
            "Kerberos (SASL GSSAPI bind) with your own ticket: no stored secret".into(),
            format!("the principal of the Kerberos ticket in the credential cache (kinit; KRB5CCNAME), for the service ldap/{host}"),
        )
    } else {
        (
            "simple bind with a password (the secret)".into(),
            get("bind_dn").unwrap_or_else(|| "?".into()),
        )
    }
}

/// The host name of an LDAP URL (none for an IP address).
fn url_host(url: &str) -> Option<String> {
    match url::Url::parse(url.trim()).ok()?.host()? {
        // An ldap:// URL's host is opaque to `url`: an address is a
        // "domain" that parses as one.
        url::Host::Domain(d) if !d.is_empty() && d.parse::<std::net::IpAddr>().is_err() => {
            Some(d.to_ascii_lowercase())
        }
        _ => None,
    }
}

struct Settings {
    url: String,
    bind: Bind,
    base_dn: String,
    transport: LdapTransport,
    ca_cert: Option<String>,
    page_size: i32,
    account_filter: String,
    group_filter: String,
    admin_groups: Vec<String>,
}

fn settings(ctx: &SyncContext) -> Result<Settings> {
    let s = &ctx.source.settings;
    let url = ctx.setting("url")?;
    let transport = ldap_transport(
        s,
        &format!(
            " of source '{}'",
            crate::sanitize::terminal(&ctx.source.name)
        ),
    )?;
    let page_size = match s.get("page_size") {
        None | Some(serde_json::Value::Null) => DEFAULT_PAGE,
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_str().and_then(|t| t.trim().parse().ok()))
            .filter(|n| (1..=1000).contains(n))
            .and_then(|n| i32::try_from(n).ok())
            .ok_or_else(|| {
                Error::invalid("the setting 'page_size' must be a number from 1 to 1000")
            })?,
    };
    let opt = |k: &str, d: &str| {
        s.get(k)
            .and_then(|v| v.as_str())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .unwrap_or(d)
            .to_string()
    };
    let bind = if kerberos_on(s) {
        let host = match opt("kerberos_host", "") {
            h if !h.is_empty() => h,
            _ => url_host(&url).ok_or_else(|| {
                Error::invalid(format!(
                    "the Kerberos bind needs the directory server's host name (its service principal is ldap/<host name>), but the url '{}' names none: set 'kerberos_host'",
                    crate::sanitize::terminal(&url)
                ))
            })?,
        };
        Bind::Kerberos { host }
    } else {
        Bind::Simple {
            dn: ctx.setting("bind_dn")?,
        }
    };
    Ok(Settings {
        url,
        bind,
        base_dn: ctx.setting("base_dn")?,
        transport,
        ca_cert: s
            .get("ca_cert")
            .and_then(|v| v.as_str())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string),
        page_size,
        account_filter: opt("account_filter", DEFAULT_ACCOUNT_FILTER),
        group_filter: opt("group_filter", DEFAULT_GROUP_FILTER),
        admin_groups: match s.get("admin_groups") {
            Some(serde_json::Value::Array(v)) => v
                .iter()
                .filter_map(|x| x.as_str())
                .map(str::to_string)
                .collect(),
            Some(serde_json::Value::String(t)) => t
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect(),
            _ => vec![],
        },
    })
}

/// A TLS connector that trusts the CA in `path` besides the system's roots
/// (verification stays on).
fn tls_trusting(path: &str) -> Result<native_tls::TlsConnector> {
    let pem = std::fs::read(path).map_err(|e| {
        Error::invalid(format!(
            "the ldap setting 'ca_cert' names {path}, which cannot be read: {e}"
        ))
    })?;
    let cert = native_tls::Certificate::from_pem(&pem).map_err(|e| {
        Error::invalid(format!(
            "the ldap setting 'ca_cert' names {path}, which is not a PEM certificate: {e}"
        ))
    })?;
    native_tls::TlsConnector::builder()
        .add_root_certificate(cert)
        .build()
        .map_err(|e| Error::internal(format!("cannot build the LDAP TLS connector: {e}")))
}

/// The TLS handshake failed: almost always a certificate that does not
/// verify (another CA's, or a name it is not for). Not retried.
fn untrusted(s: &Settings, detail: &str) -> Error {
    let hint = match &s.ca_cert {
        Some(path) => format!(
            "it must be issued by the CA in the 'ca_cert' file {} (or one the system trusts) and name the host of the URL",
            crate::sanitize::terminal(path)
        ),
        None => "if an internal CA issued it, set 'ca_cert' to that CA's certificate (a PEM file)".into(),
    };
    Error::new(
        ErrorCode::Network,
        format!(
            "LDAP: {UNTRUSTED} ({}); {hint}",
            crate::sanitize::terminal(detail)
        ),
    )
}

const UNTRUSTED: &str =
    "the TLS handshake with the directory failed: its certificate is not trusted";

/// Whether an error is worth another attempt (a new connection); a
/// certificate that does not verify will not verify next time either.
fn transient(e: &Error) -> bool {
    e.code == ErrorCode::Network && !e.message.contains(UNTRUSTED)
}

fn ldap_error(e: LdapError, what: &str, base_dn: &str) -> Error {
    match e {
        LdapError::LdapResult { result } => {
            let detail = if result.text.is_empty() {
                String::new()
            } else {
                format!(": {}", result.text)
            };
            match result.rc {
                49 => Error::new(
                    ErrorCode::SourceAuth,
                    format!("LDAP: the directory refused the bind (invalid credentials){detail}; check the bind DN and the password kept in the keyring"),
                ),
                50 => Error::new(
                    ErrorCode::SourceAuth,
                    format!("LDAP: the bind account may not {what} (insufficient access rights){detail}"),
                ),
                8 | 13 => Error::new(
                    ErrorCode::SourceAuth,
                    format!("LDAP: the directory requires a secure connection (use ldaps:// or starttls){detail}"),
                ),
                32 => Error::new(
                    ErrorCode::SourceError,
                    format!("LDAP: the base DN '{base_dn}' does not exist on this server{detail}"),
                ),
                51..=53 => Error::new(
                    ErrorCode::Network,
                    format!("LDAP: the directory is busy or unavailable (code {}) while trying to {what}{detail}", result.rc),
                ),
                4 => Error::new(
                    ErrorCode::SourceError,
                    format!("LDAP: the server's size limit was reached while trying to {what}; lower 'page_size'{detail}"),
                ),
                rc => Error::new(
                    ErrorCode::SourceError,
                    format!("LDAP: could not {what}: result code {rc}{detail}"),
                ),
            }
        }
        LdapError::Io { source } => {
            Error::new(ErrorCode::Network, format!("LDAP: cannot {what}: {source}"))
        }
        LdapError::Timeout { .. } => Error::new(
            ErrorCode::Network,
            format!("LDAP: timed out while trying to {what}"),
        ),
        LdapError::EndOfStream | LdapError::ResultRecv { .. } | LdapError::OpSend { .. } => {
            Error::new(
                ErrorCode::Network,
                format!("LDAP: the connection closed while trying to {what}"),
            )
        }
        LdapError::FilterParsing => Error::invalid(format!(
            "LDAP: a search filter of this source is not valid LDAP filter syntax ({what})"
        )),
        LdapError::UrlParsing { source } => {
            Error::invalid(format!("LDAP: the server URL is not valid: {source}"))
        }
        other => Error::new(
            ErrorCode::SourceError,
            format!("LDAP: could not {what}: {other}"),
        ),
    }
}

async fn timed<T>(
    d: Duration,
    what: &str,
    base_dn: &str,
    fut: impl std::future::Future<Output = std::result::Result<T, LdapError>>,
) -> Result<T> {
    match tokio::time::timeout(d, fut).await {
        Ok(r) => r.map_err(|e| ldap_error(e, what, base_dn)),
        Err(_) => Err(Error::new(
            ErrorCode::Network,
            format!(
                "LDAP: timed out after {} s while trying to {what}",
                d.as_secs()
            ),
        )),
    }
}

/// What one directory read returns.
struct Read {
    max_pwd_age: Option<i64>,
    accounts: Vec<Entry>,
    groups: Vec<Entry>,
    /// Computers whose `msDS-AllowedToActOnBehalfOfOtherIdentity` is set.
    hosts: Vec<Entry>,
    /// What the read could not complete (an entry's ranged values).
    warnings: Vec<String>,
    /// Who the connection was bound as: the bind DN, or the Kerberos
    /// bind's "Who am I?" answer or ticket principal.
    bound_as: String,
}

async fn read_once(ctx: &SyncContext, s: &Settings, password: Option<&str>) -> Result<Read> {
    let policy: &HttpPolicy = ctx.http.policy();
    let cancel = ctx.http.cancel();
    let mut conn_settings = LdapConnSettings::new()
        .set_conn_timeout(policy.connect_timeout)
        .set_starttls(s.transport == LdapTransport::StartTls);
    if let (Some(path), false) = (&s.ca_cert, s.transport == LdapTransport::Plain) {
        conn_settings = conn_settings.set_connector(tls_trusting(path)?);
    }
    let connected = tokio::time::timeout(
        policy.connect_timeout + Duration::from_secs(1),
        LdapConnAsync::with_settings(conn_settings, &s.url),
    )
    .await;
    let (conn, mut ldap) = match connected {
        Ok(Err(LdapError::NativeTLS { source })) => return Err(untrusted(s, &source.to_string())),
        Ok(r) => r.map_err(|e| ldap_error(e, "connect", &s.base_dn))?,
        Err(_) => {
            return Err(Error::new(
                ErrorCode::Network,
                format!(
                    "LDAP: timed out after {} s while trying to connect",
                    (policy.connect_timeout + Duration::from_secs(1)).as_secs()
                ),
            ))
        }
    };
    let driver = tokio::spawn(async move {
        if let Err(e) = conn.drive().await {
            tracing::debug!(error = %e, "LDAP connection ended");
        }
    });
    let result = async {
        let t = policy.request_timeout;
        let bound_as = match &s.bind {
            Bind::Simple { dn } => {
                let password = password.ok_or_else(|| {
                    Error::internal("LDAP: a simple bind without its password")
                })?;
                timed(t, "bind", &s.base_dn, async {
                    ldap.simple_bind(dn, password).await?.success()
                })
                .await?;
                format!("dn:{dn}")
            }
            Bind::Kerberos { host } => kerberos::bind(&mut ldap, host, t, &s.base_dn).await?,
        };
        cancel.check()?;

        // The base entry: proves it exists and brings the password policy.
        let (base, _) = timed(t, "read the base DN", &s.base_dn, async {
            ldap.search(
                &s.base_dn,
                Scope::Base,
                "(objectClass=*)",
                vec!["maxPwdAge"],
            )
            .await?
            .success()
        })
        .await?;
        let max_pwd_age = match base.into_iter().next() {
            Some(e) => parse_entry(e.0)?.int("maxPwdAge"),
            None => None,
        };

        let mut read = Read {
            max_pwd_age,
            accounts: vec![],
            groups: vec![],
            hosts: vec![],
            warnings: vec![],
            bound_as,
        };
        let host_filter = HOST_FILTER.to_string();
        for (phase, filter, attrs) in [
            ("identities", &s.account_filter, ACCOUNT_ATTRS),
            ("groups", &s.group_filter, GROUP_ATTRS),
            ("delegation targets", &host_filter, HOST_ATTRS),
        ] {
            let what = format!("search {phase}");
            let adapters: Vec<Box<dyn Adapter<_, _>>> = vec![
                Box::new(EntriesOnly::new()),
                Box::new(PagedResults::new(s.page_size)),
            ];
            let mut stream = timed(t, &what, &s.base_dn, async {
                ldap.streaming_search_with(
                    adapters,
                    &s.base_dn,
                    Scope::Subtree,
                    filter.as_str(),
                    attrs.to_vec(),
                )
                .await
            })
            .await?;
            let mut out = Vec::new();
            let page = usize::try_from(s.page_size).unwrap_or(1).max(1);
            while let Some(raw) = timed(t, &what, &s.base_dn, stream.next()).await? {
                cancel.check()?;
                out.push(parse_entry(raw.0)?);
                if out.len() % page == 0 {
                    ctx.report(phase, (out.len() / page) as u64, out.len() as u64, None);
                }
            }
            timed(t, &what, &s.base_dn, async {
                stream.finish().await.success()
            })
            .await?;
            ctx.report(
                phase,
                out.len().div_ceil(page) as u64,
                out.len() as u64,
                None,
            );
            match phase {
                "identities" => read.accounts = out,
                "groups" => read.groups = out,
                _ => read.hosts = out,
            }
        }
        // Ranged values (AD sends a large `member` as `member;range=0-1499`
        // and the rest only when asked, one chunk per request).
        for e in read.accounts.iter_mut().chain(read.groups.iter_mut()) {
            let mut pending = e.take_ranges();
            let mut rounds = 0usize;
            while let Some((attr, start)) = pending.pop() {
                cancel.check()?;
                rounds += 1;
                if rounds > MAX_RANGE_ROUNDS {
                    read.warnings.push(format!(
                        "{}: {attr} has more values than {MAX_RANGE_ROUNDS} ranged reads brought; the rest are not shown",
                        e.dn
                    ));
                    break;
                }
                let want = format!("{attr};range={start}-*");
                let (found, _) = timed(t, "read ranged values", &s.base_dn, async {
                    ldap.search(&e.dn, Scope::Base, "(objectClass=*)", vec![want.as_str()])
                        .await?
                        .success()
                })
                .await?;
                let Some(raw) = found.into_iter().next() else {
                    read.warnings.push(format!(
                        "{}: the directory stopped answering for {attr} from value {start}; the rest are not shown",
                        e.dn
                    ));
                    break;
                };
                for (a, next) in e.absorb_ranges(parse_entry(raw.0)?) {
                    // A chunk that does not move forward would loop.
                    if a == attr && next <= start {
                        read.warnings.push(format!(
                            "{}: the directory sent {attr} from {start} again; the rest are not shown",
                            e.dn
                        ));
                    } else {
                        pending.push((a, next));
                    }
                }
            }
        }
        Ok(read)
    }
    .await;
    let _ = ldap.unbind().await;
    driver.abort();
    result
}

impl Source for LdapSource {
    async fn fetch(&self, ctx: &SyncContext) -> Result<Fetched> {
        let s = settings(ctx)?;
        let password = match s.bind {
            Bind::Simple { .. } => Some(ctx.secret()?.to_string()),
            Bind::Kerberos { .. } => None,
        };
        let policy = ctx.http.policy().clone();
        let mut attempt = 1;
        let read = loop {
            ctx.http.cancel().check()?;
            match read_once(ctx, &s, password.as_deref()).await {
                Ok(r) => break r,
                Err(e) if transient(&e) && attempt < policy.max_attempts.max(1) => {
                    tracing::warn!(attempt, error = %e, "LDAP read failed; retrying");
                    tokio::time::sleep(backoff(&policy, attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        };
        let mut f = map(&read, &s.base_dn, &s.admin_groups, Utc::now());
        f.signed_in_as = Some(signed_in_as(&read, &f));
        Ok(f)
    }
}

/// The external id of the identity the read was bound as, when the read
/// brought it as one; else who it was bound as (a person's account, or one
/// outside the filters), as the directory or the ticket names it.
fn signed_in_as(read: &Read, f: &Fetched) -> String {
    let who = read.bound_as.trim();
    kerberos::account_of(who, &read.accounts)
        .map(Entry::key)
        .filter(|k| f.identities.iter().any(|i| &i.external_id == k))
        .unwrap_or_else(|| who.strip_prefix("dn:").unwrap_or(who).to_string())
}

/// Turns what was read into records.
fn map(read: &Read, base_dn: &str, admin_groups: &[String], now: DateTime<Utc>) -> Fetched {
    let mut f = Fetched::new(FetchMode::Full);
    for w in &read.warnings {
        f.warn(w.clone());
    }
    let classes: Vec<AccountClass> = read.accounts.iter().map(classify).collect();
    // DN → (key, is a person) for manager / managedBy / member resolution.
    let mut by_dn: HashMap<String, (String, bool)> = HashMap::new();
    for (e, c) in read.accounts.iter().zip(&classes) {
        if *c != AccountClass::Computer {
            by_dn.insert(normalize_dn(&e.dn), (e.key(), c.is_person()));
        }
    }
    let group_names: HashMap<String, &str> = read
        .groups
        .iter()
        .map(|g| (normalize_dn(&g.dn), g.first("cn").unwrap_or(g.dn.as_str())))
        .collect();
    let person_key = |dn: Option<&str>| -> Option<PersonKey> {
        let (key, is_person) = by_dn.get(&normalize_dn(dn?))?;
        is_person.then(|| PersonKey::ExternalId(key.clone()))
    };
    let max_pwd_age = read
        .max_pwd_age
        .filter(|v| *v != 0 && *v != i64::MIN)
        .map(|v| chrono::Duration::microseconds(v.abs() / 10));

    // SPN → identity key, for constrained-delegation edges.
    let mut spn_owner: HashMap<String, String> = HashMap::new();
    for (e, c) in read.accounts.iter().zip(&classes) {
        if c.machine().is_some() {
            for spn in e.all("servicePrincipalName") {
                spn_owner.insert(spn.to_lowercase(), e.key());
            }
        }
    }

    let rbcd = resource_based_delegation(read, &classes, &mut f);

    let domain_resource = format!("domain:{}", normalize_dn(base_dn));
    let mut domain_used = false;
    let mut machine_dns: Vec<(String, String)> = vec![];

    for (e, c) in read.accounts.iter().zip(&classes) {
        let key = e.key();
        let uac_bits = e.uac();
        let expires = e.int("accountExpires").and_then(filetime);
        let expired = expires.is_some_and(|t| t <= now);
        let disabled = uac_bits & uac::ACCOUNTDISABLE != 0;
        let created = e
            .first("whenCreated")
            .or_else(|| e.first("createTimestamp"))
            .and_then(generalized_time);
        if c.is_person() {
            let (status, left_at) = if expired {
                (PersonStatus::Departed, expires)
            } else if disabled {
                (PersonStatus::Suspended, None)
            } else {
                (PersonStatus::Active, None)
            };
            let email = e
                .first("mail")
                .or_else(|| e.first("userPrincipalName").filter(|u| u.contains('@')))
                .unwrap_or_default();
            f.people.push(PersonRecord {
                external_id: key.clone(),
                display_name: e
                    .first("displayName")
                    .or_else(|| e.first("cn"))
                    .or_else(|| account_name(e))
                    .unwrap_or(e.dn.as_str())
                    .to_string(),
                email: email.to_string(),
                department: e.first("department").unwrap_or_default().to_string(),
                title: e.first("title").unwrap_or_default().to_string(),
                manager: person_key(e.first("manager")),
                status,
                left_at,
            });
        }
        if let Some((kind, agent_class)) = c.machine() {
            let gmsa_days = e
                .int("msDS-ManagedPasswordInterval")
                .filter(|d| *d > 0)
                .or_else(|| is_managed_sa(e).then_some(30));
            let managed_by = e.first("managedBy");
            let owner = if *c == AccountClass::PersonAndService {
                // The person whose account it is answers for it.
                Some(PersonKey::ExternalId(key.clone()))
            } else {
                person_key(managed_by).or_else(|| person_key(e.first("manager")))
            };
            let mut facts: Vec<String> = vec![];
            let krbtgt = e.is_krbtgt();
            if krbtgt {
                facts.push(
                    "the domain's Kerberos ticket-granting account: disabled for logon by design, \
                     but its password keys every Kerberos ticket (reset it twice to rotate)"
                        .to_string(),
                );
            }
            if *c == AccountClass::PersonAndService {
                facts.push(
                        "a person's own account (given name and mail, surname or manager) running a service"
                            .to_string(),
                    );
            }
            if let Some(d) = e.first("description") {
                facts.push(d.to_string());
            }
            if is_managed_sa(e) {
                facts.push(format!(
                    "managed service account (AD rotates its password every {} days)",
                    gmsa_days.unwrap_or(30)
                ));
            }
            if let Some(m) = managed_by {
                if let Some(g) = group_names.get(&normalize_dn(m)) {
                    facts.push(format!("managed by group {g}"));
                }
            }
            if let Some(from) = rbcd.accepts.get(&key) {
                facts.push(format!(
                    "accepts resource-based delegation from {}",
                    from.join(", ")
                ));
            }
            let spns = e.all("servicePrincipalName");
            if !spns.is_empty() {
                facts.push(format!("SPN: {}", spns.join(", ")));
            }
            for (bit, text) in [
                (uac::DONT_EXPIRE_PASSWORD, "password never expires"),
                (uac::PASSWD_NOTREQD, "password not required"),
                (
                    uac::DONT_REQ_PREAUTH,
                    "Kerberos pre-authentication disabled",
                ),
                (
                    uac::TRUSTED_FOR_DELEGATION,
                    "unconstrained Kerberos delegation",
                ),
                (
                    uac::TRUSTED_TO_AUTH_FOR_DELEGATION,
                    "Kerberos protocol transition",
                ),
            ] {
                if uac_bits & bit != 0 {
                    facts.push(text.to_string());
                }
            }
            if expired {
                facts.push("account expired".into());
            }
            f.identities.push(IdentityRecord {
                external_id: key.clone(),
                name: account_name(e).unwrap_or(e.dn.as_str()).to_string(),
                kind,
                agent_class,
                // krbtgt is always disabled, and always in use.
                status: if (disabled && !krbtgt) || expired {
                    IdentityStatus::Disabled
                } else {
                    IdentityStatus::Active
                },
                description: facts.join("; "),
                owner,
                builder: None,
                team: e.first("department").unwrap_or_default().to_string(),
                environment: String::new(),
                registration: None,
                created_at: created,
                last_used_at: e.int("lastLogonTimestamp").and_then(filetime),
            });

            // The password.
            let pwd_set = e.int("pwdLastSet").and_then(filetime);
            let pwd_expires = if uac_bits & uac::DONT_EXPIRE_PASSWORD != 0 {
                None
            } else if is_managed_sa(e) {
                pwd_set.map(|t| t + chrono::Duration::days(gmsa_days.unwrap_or(30)))
            } else if let Some(computed) = e.int("msDS-UserPasswordExpiryTimeComputed") {
                // The DC's own answer (MS-ADTS 3.1.1.4.4), PSOs included:
                // 0 = expired or must change, i64::MAX = never.
                match computed {
                    0 => Some(now),
                    _ => filetime(computed),
                }
            } else if e.int("pwdLastSet") == Some(0) {
                // AD's msDS-UserPasswordExpiryTimeComputed is 0 here
                // (MS-ADTS 3.1.1.4.4): never set, or "must change at
                // next logon", is already expired, not "never expires".
                Some(now)
            } else {
                pwd_set.zip(max_pwd_age).map(|(t, age)| t + age)
            };
            let label = if is_managed_sa(e) {
                "managed password".to_string()
            } else if uac_bits & uac::PASSWD_NOTREQD != 0 {
                "password (not required: may be empty)".to_string()
            } else if e.int("pwdLastSet") == Some(0) {
                "password (must change at next logon: expired)".to_string()
            } else {
                "password".to_string()
            };
            f.credentials.push(CredentialRecord {
                identity: key.clone(),
                external_id: format!("{key}#password"),
                kind: CredentialKind::Password,
                display_name: label,
                created_at: pwd_set,
                expires_at: pwd_expires,
                last_rotated_at: pwd_set,
                last_used_at: e.int("lastLogonTimestamp").and_then(filetime),
            });

            // Kerberos delegation.
            for (bit, perm) in [
                    (
                        uac::TRUSTED_FOR_DELEGATION,
                        "kerberos: unconstrained delegation (can impersonate any user to any service)",
                    ),
                    (
                        uac::TRUSTED_TO_AUTH_FOR_DELEGATION,
                        "kerberos: protocol transition (can obtain tickets for any user without their password)",
                    ),
                ] {
                    if uac_bits & bit != 0 {
                        domain_used = true;
                        f.grants.push(GrantRecord {
                            identity: key.clone(),
                            resource: domain_resource.clone(),
                            permission: perm.to_string(),
                            privilege: Privilege::Admin,
                            high_consequence: true,
                            last_used_at: None,
                        });
                    }
                }
            for spn in e.all("msDS-AllowedToDelegateTo") {
                let rid = format!("spn:{}", spn.to_lowercase());
                if !f.resources.iter().any(|r| r.external_id == rid) {
                    f.resources.push(ResourceRecord {
                        external_id: rid.clone(),
                        name: spn.to_string(),
                        kind: "kerberos_service".into(),
                        sensitivity: Sensitivity::High,
                        environment: String::new(),
                    });
                }
                f.grants.push(GrantRecord {
                        identity: key.clone(),
                        resource: rid,
                        permission:
                            "kerberos: constrained delegation (acts as any user to this service)"
                                .into(),
                        privilege: Privilege::Write,
                        high_consequence: true,
                        last_used_at: None,
                    });
                if let Some(target) = spn_owner.get(&spn.to_lowercase()) {
                    if *target != key {
                        f.delegations.push(DelegationRecord::new(
                            key.clone(),
                            target.clone(),
                            DelegationKind::Impersonate,
                        ));
                    }
                }
            }
            machine_dns.push((key, normalize_dn(&e.dn)));
        }
    }
    if domain_used {
        f.resources.push(ResourceRecord {
            external_id: domain_resource,
            name: format!("Directory {base_dn}"),
            kind: "directory".into(),
            sensitivity: Sensitivity::Critical,
            environment: String::new(),
        });
    }
    map_groups(read, &machine_dns, admin_groups, &mut f);
    f
}

/// Resource-based constrained delegation, as read from the targets.
struct Rbcd {
    /// Target identity key → who its descriptor allows (names; a SID
    /// nobody fetched has its SID as name).
    accepts: HashMap<String, Vec<String>>,
}

/// `msDS-AllowedToActOnBehalfOfOtherIdentity` of every governed account and
/// of the computers read for it: each allowed account that is an identity
/// gets an `impersonate` edge to a target identity, or a grant on a target
/// host (a `kerberos_service` resource); the target's description names
/// everyone allowed. A descriptor that cannot be read is a warning.
fn resource_based_delegation(read: &Read, classes: &[AccountClass], f: &mut Fetched) -> Rbcd {
    const ATTR: &str = "msDS-AllowedToActOnBehalfOfOtherIdentity";
    let mut out = Rbcd {
        accepts: HashMap::new(),
    };
    // SID → (key, name, governed as an identity).
    let mut by_sid: HashMap<String, (String, String, bool)> = HashMap::new();
    for (e, c) in read.accounts.iter().zip(classes) {
        if let Some(sid) = e.sid() {
            let name = account_name(e).unwrap_or(e.dn.as_str()).to_string();
            by_sid.insert(sid, (e.key(), name, c.machine().is_some()));
        }
    }
    for h in &read.hosts {
        if let Some(sid) = h.sid() {
            let name = account_name(h).unwrap_or(h.dn.as_str()).to_string();
            by_sid.entry(sid).or_insert((h.key(), name, false));
        }
    }
    let governed: HashSet<String> = read
        .accounts
        .iter()
        .zip(classes)
        .filter(|(_, c)| c.machine().is_some())
        .map(|(e, _)| e.key())
        .collect();
    let accounts = read.accounts.iter().filter(|e| governed.contains(&e.key()));
    let hosts = read.hosts.iter().filter(|h| !governed.contains(&h.key()));
    for target in accounts.chain(hosts) {
        let Some(sd) = target.values(ATTR).first() else {
            continue;
        };
        let Some(sids) = dacl_allowed_sids(sd) else {
            f.warn(format!(
                "{}: {ATTR} is not a security descriptor that can be read; its resource-based delegation is not shown",
                target.dn
            ));
            continue;
        };
        let key = target.key();
        let is_identity = governed.contains(&key);
        let host_name = target
            .first("dNSHostName")
            .or_else(|| account_name(target))
            .unwrap_or(target.dn.as_str());
        let host = format!("host:{}", host_name.to_lowercase());
        let mut names = vec![];
        for sid in sids {
            let Some((from, name, from_identity)) = by_sid.get(&sid) else {
                names.push(sid);
                continue;
            };
            names.push(name.clone());
            if !from_identity || *from == key {
                continue;
            }
            if is_identity {
                f.delegations.push(DelegationRecord::new(
                    from.clone(),
                    key.clone(),
                    DelegationKind::Impersonate,
                ));
                continue;
            }
            if !f.resources.iter().any(|r| r.external_id == host) {
                f.resources.push(ResourceRecord {
                    external_id: host.clone(),
                    name: host_name.to_string(),
                    kind: "kerberos_service".into(),
                    sensitivity: Sensitivity::High,
                    environment: String::new(),
                });
            }
            f.grants.push(GrantRecord {
                identity: from.clone(),
                resource: host.clone(),
                permission:
                    "kerberos: resource-based constrained delegation (acts as any user to this host)"
                        .into(),
                privilege: Privilege::Write,
                high_consequence: true,
                last_used_at: None,
            });
        }
        if is_identity && !names.is_empty() {
            out.accepts.insert(key, names);
        }
    }
    out
}

/// Group memberships of service accounts, nested groups followed.
fn map_groups(
    read: &Read,
    machines: &[(String, String)],
    admin_groups: &[String],
    f: &mut Fetched,
) {
    struct Group<'a> {
        key: String,
        name: &'a str,
        sensitivity: Sensitivity,
    }
    let groups: Vec<Group> = read
        .groups
        .iter()
        .map(|g| {
            let name = g.first("cn").unwrap_or(g.dn.as_str());
            Group {
                key: g.key(),
                name,
                sensitivity: group_sensitivity(
                    g.sid().as_deref(),
                    name,
                    &g.dn,
                    g.int("adminCount") == Some(1),
                    admin_groups,
                ),
            }
        })
        .collect();
    // AD's distribution lists (groupType without GROUP_TYPE_SECURITY_ENABLED,
    // 0x80000000) are mail lists: they are not in a Kerberos token, so they
    // give no grant, whatever their name, and nesting does not pass through
    // them. A directory without `groupType` (OpenLDAP) has only security
    // groups.
    let is_distribution = |g: &Entry| g.int("groupType").is_some_and(|t| t & 0x8000_0000 == 0);
    let dn_to_group: HashMap<String, usize> = read
        .groups
        .iter()
        .enumerate()
        .filter(|(_, g)| !is_distribution(g))
        .map(|(i, g)| (normalize_dn(&g.dn), i))
        .collect();
    // member DN → groups it is directly in.
    let mut parents: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, g) in read.groups.iter().enumerate() {
        if is_distribution(g) {
            continue;
        }
        for m in g.all("member").into_iter().chain(g.all("uniqueMember")) {
            // uniqueMember may carry an optional `#'bits'B` UID suffix.
            let m = m.split('#').next().unwrap_or(m);
            let v = parents.entry(normalize_dn(m)).or_default();
            if !v.contains(&i) {
                v.push(i);
            }
        }
    }
    let mut used = vec![false; groups.len()];
    let account_member_of: HashMap<&str, Vec<usize>> = read
        .accounts
        .iter()
        .map(|e| {
            let v = e
                .all("memberOf")
                .into_iter()
                .filter_map(|g| dn_to_group.get(&normalize_dn(g)).copied())
                .collect();
            (e.dn.as_str(), v)
        })
        .collect();
    let entry_of: HashMap<String, &Entry> = read
        .accounts
        .iter()
        .map(|e| (normalize_dn(&e.dn), e))
        .collect();
    // Security groups by SID, for primary groups (AD lists a primary group
    // in neither `member` nor `memberOf`).
    let by_sid: HashMap<String, usize> = read
        .groups
        .iter()
        .enumerate()
        .filter(|(_, g)| !is_distribution(g))
        .filter_map(|(i, g)| Some((g.sid()?, i)))
        .collect();
    for (key, dn) in machines {
        // Direct groups: listed by the group (`member`) or the account (`memberOf`).
        let mut direct: Vec<usize> = parents.get(dn).cloned().unwrap_or_default();
        let mut primary = None;
        if let Some(e) = entry_of.get(dn) {
            for g in account_member_of.get(e.dn.as_str()).into_iter().flatten() {
                if !direct.contains(g) {
                    direct.push(*g);
                }
            }
            primary = e
                .primary_group_sid()
                .and_then(|sid| by_sid.get(&sid).copied());
            if let Some(g) = primary.filter(|g| !direct.contains(g)) {
                direct.push(g);
            }
        }
        // Breadth-first up the nesting; the first (shortest) path found
        // names the route: each group reached remembers the group it was
        // reached through.
        let mut via: HashMap<usize, Option<usize>> = HashMap::new();
        let mut queue: VecDeque<usize> = VecDeque::new();
        for g in direct {
            via.insert(g, None);
            queue.push_back(g);
        }
        let mut seen: HashSet<usize> = via.keys().copied().collect();
        while let Some(g) = queue.pop_front() {
            let gdn = normalize_dn(&read.groups[g].dn);
            for p in parents.get(&gdn).into_iter().flatten() {
                if seen.insert(*p) {
                    via.insert(*p, Some(g));
                    queue.push_back(*p);
                }
            }
        }
        // The groups between the account and `g`, outermost last (AD nests
        // Domain Admins in Administrators, so two hops are common).
        let route = |g: usize| -> Vec<&str> {
            let mut names = vec![];
            let mut cur = via.get(&g).copied().flatten();
            while let Some(r) = cur {
                if names.len() > groups.len() {
                    break;
                }
                names.push(groups[r].name);
                cur = via.get(&r).copied().flatten();
            }
            names.reverse();
            names
        };
        let mut reached: Vec<usize> = via.keys().copied().collect();
        reached.sort_unstable();
        for g in reached {
            used[g] = true;
            let grp = &groups[g];
            let privileged = grp.sensitivity >= Sensitivity::High;
            let path = route(g);
            f.grants.push(GrantRecord {
                identity: key.clone(),
                resource: format!("group:{}", grp.key),
                permission: if path.is_empty() && primary == Some(g) {
                    "member (primary group)".to_string()
                } else if path.is_empty() {
                    "member".to_string()
                } else {
                    format!("member via {}", path.join(" > "))
                },
                privilege: if privileged {
                    Privilege::Admin
                } else {
                    Privilege::Read
                },
                high_consequence: privileged,
                last_used_at: None,
            });
        }
    }
    // Distribution lists give nothing, but a reviewer sees them on the
    // account (its direct lists, by `member` or `memberOf`).
    let machine_dns: HashMap<&str, &str> = machines
        .iter()
        .map(|(k, dn)| (dn.as_str(), k.as_str()))
        .collect();
    // Lists by DN, then one pass over each side of the membership (not a
    // scan of every account per list).
    let dl_of: HashMap<String, usize> = read
        .groups
        .iter()
        .enumerate()
        .filter(|(_, g)| is_distribution(g))
        .map(|(i, g)| (normalize_dn(&g.dn), i))
        .collect();
    let mut on: Vec<(&str, usize)> = vec![];
    for &g in dl_of.values() {
        for m in read.groups[g].all("member") {
            if let Some(key) = machine_dns.get(normalize_dn(m).as_str()) {
                on.push((key, g));
            }
        }
    }
    for (key, dn) in machines {
        let member_of = entry_of.get(dn).map(|e| e.all("memberOf"));
        for m in member_of.unwrap_or_default() {
            if let Some(&g) = dl_of.get(&normalize_dn(m)) {
                on.push((key.as_str(), g));
            }
        }
    }
    let mut lists: HashMap<&str, Vec<&str>> = HashMap::new();
    for (key, g) in on {
        let v = lists.entry(key).or_default();
        if !v.contains(&groups[g].name) {
            v.push(groups[g].name);
        }
    }
    for i in f.identities.iter_mut() {
        if let Some(names) = lists.get_mut(i.external_id.as_str()) {
            names.sort_unstable();
            let fact = format!(
                "on distribution list{} {} (mail only: no access)",
                if names.len() > 1 { "s" } else { "" },
                names.join(", ")
            );
            if i.description.is_empty() {
                i.description = fact;
            } else {
                i.description = format!("{}; {fact}", i.description);
            }
        }
    }
    for (g, grp) in groups.iter().enumerate() {
        if used[g] {
            f.resources.push(ResourceRecord {
                external_id: format!("group:{}", grp.key),
                name: grp.name.to_string(),
                kind: "group".into(),
                sensitivity: grp.sensitivity,
                environment: String::new(),
            });
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn filetime_converts_and_knows_never() {
        // 2021-06-15 00:00:00 UTC = 132681888000000000 ticks.
        let t = filetime(132_681_888_000_000_000).unwrap();
        assert_eq!(t.to_rfc3339(), "2021-06-15T00:00:00+00:00");
        assert_eq!(filetime(0), None);
        assert_eq!(filetime(i64::MAX), None);
        assert_eq!(filetime(-5), None);
    }

    #[test]
    fn generalized_time_reads_both_forms() {
        assert_eq!(
            generalized_time("20240102103000.0Z").unwrap().to_rfc3339(),
            "2024-01-02T10:30:00+00:00"
        );
        assert_eq!(
            generalized_time("20240102103000Z").unwrap().to_rfc3339(),
            "2024-01-02T10:30:00+00:00"
        );
        assert_eq!(generalized_time("2024"), None);
        assert_eq!(generalized_time("2024010210300xZ"), None);
    }

    #[test]
    fn guid_is_mixed_endian() {
        let b: Vec<u8> = (0u8..16).collect();
        assert_eq!(
            guid_string(&b).unwrap(),
            "03020100-0504-0706-0809-0a0b0c0d0e0f"
        );
        assert_eq!(guid_string(&b[..15]), None);
    }

    #[test]
    fn dns_normalise_but_keep_escaped_commas() {
        assert_eq!(
            normalize_dn("CN=Svc Backup , OU=Service Accounts,DC=Example, DC=org"),
            "cn=svc backup,ou=service accounts,dc=example,dc=org"
        );
        assert_eq!(
            normalize_dn("cn=Smith\\, John,dc=x"),
            "cn=smith\\, john,dc=x"
        );
    }

    #[test]
    fn classification_signals() {
        let spn = Entry::new(
            "cn=sql,ou=people,dc=x",
            &[
                ("objectClass", &["user"]),
                ("servicePrincipalName", &["MSSQLSvc/db:1433"]),
            ],
        );
        assert_eq!(
            classify(&spn),
            AccountClass::Machine(IdentityKind::ServiceAccount, None)
        );
        let person = Entry::new(
            "cn=ann,ou=people,dc=x",
            &[("objectClass", &["user"]), ("sAMAccountName", &["ann"])],
        );
        assert_eq!(classify(&person), AccountClass::Person);
        let ou = Entry::new(
            "cn=x,OU=Service Accounts,dc=x",
            &[("objectClass", &["user"])],
        );
        assert_eq!(
            classify(&ou),
            AccountClass::Machine(IdentityKind::ServiceAccount, None)
        );
        let agent = Entry::new("cn=x,ou=AI Agents,dc=x", &[("objectClass", &["user"])]);
        assert_eq!(
            classify(&agent),
            AccountClass::Machine(IdentityKind::AiAgent, None)
        );
        let typed = Entry::new(
            "cn=x,ou=people,dc=x",
            &[
                ("objectClass", &["inetOrgPerson"]),
                ("employeeType", &["agent"]),
            ],
        );
        assert_eq!(
            classify(&typed),
            AccountClass::Machine(IdentityKind::AiAgent, None)
        );
        let computer = Entry::new("cn=ws1,dc=x", &[("objectClass", &["user", "computer"])]);
        assert_eq!(classify(&computer), AccountClass::Computer);
        let gmsa = Entry::new(
            "cn=g,dc=x",
            &[(
                "objectClass",
                &["user", "computer", "msDS-GroupManagedServiceAccount"],
            )],
        );
        assert_eq!(
            classify(&gmsa),
            AccountClass::Machine(IdentityKind::ServiceAccount, None)
        );
        let acct = Entry::new(
            "uid=backup,ou=people,dc=x",
            &[("objectClass", &["account", "simpleSecurityObject"])],
        );
        assert_eq!(
            classify(&acct),
            AccountClass::Machine(IdentityKind::ServiceAccount, None)
        );
        let named = Entry::new(
            "cn=x,dc=x",
            &[("objectClass", &["user"]), ("sAMAccountName", &["svc-etl"])],
        );
        assert_eq!(
            classify(&named),
            AccountClass::Machine(IdentityKind::ServiceAccount, None)
        );
    }

    #[test]
    fn a_person_with_an_spn_stays_a_person_and_the_service_is_flagged() {
        let spn: (&str, &[&str]) = ("servicePrincipalName", &["HTTP/intranet"]);
        let ann = |more: &[(&str, &[&str])]| {
            let mut attrs: Vec<(&str, &[&str])> = vec![
                ("objectClass", &["user"]),
                ("sAMAccountName", &["ann"]),
                spn,
            ];
            attrs.extend_from_slice(more);
            Entry::new("cn=ann,ou=people,dc=x", &attrs)
        };
        let given: (&str, &[&str]) = ("givenName", &["Ann"]);
        for other in [
            ("mail", &["ann@x.test"] as &[&str]),
            ("sn", &["Archer"]),
            ("manager", &["cn=boss,dc=x"]),
        ] {
            assert_eq!(
                classify(&ann(&[given, other])),
                AccountClass::PersonAndService,
                "{other:?}"
            );
        }
        // A given name alone, or a manager and mail without one (a service
        // account's owner and alert address): a service account.
        for more in [
            vec![given],
            vec![
                ("mail", &["alerts@x.test"] as &[&str]),
                ("manager", &["cn=boss,dc=x"]),
            ],
        ] {
            assert_eq!(
                classify(&ann(&more)),
                AccountClass::Machine(IdentityKind::ServiceAccount, None)
            );
        }
        // Machine naming wins over person attributes.
        let named = Entry::new(
            "cn=x,dc=x",
            &[
                ("objectClass", &["user"]),
                ("sAMAccountName", &["svc-web"]),
                spn,
                given,
                ("mail", &["web@x.test"]),
            ],
        );
        assert_eq!(
            classify(&named),
            AccountClass::Machine(IdentityKind::ServiceAccount, None)
        );

        // Mapped: the person, and a service account of the same key that
        // the person owns, holding the password and the group's grant.
        let read = Read {
            max_pwd_age: None,
            hosts: vec![],
            warnings: vec![],
            bound_as: String::new(),
            accounts: vec![ann(&[
                given,
                ("mail", &["ann@x.test"]),
                ("memberOf", &["cn=web,dc=x"]),
            ])],
            groups: vec![group("web", "cn=ann,ou=people,dc=x", &[])],
        };
        let f = map(&read, "dc=x", &[], Utc::now());
        assert_eq!(f.people.len(), 1);
        let person = &f.people[0];
        assert_eq!(
            (person.display_name.as_str(), person.status),
            ("ann", PersonStatus::Active)
        );
        assert_eq!(f.identities.len(), 1);
        let svc = &f.identities[0];
        assert_eq!(svc.external_id, person.external_id);
        assert_eq!(svc.kind, IdentityKind::ServiceAccount);
        assert_eq!(
            svc.owner,
            Some(PersonKey::ExternalId(person.external_id.clone()))
        );
        assert!(
            svc.description.starts_with("a person's own account")
                && svc.description.contains("SPN: HTTP/intranet"),
            "{}",
            svc.description
        );
        assert_eq!(f.credentials.len(), 1);
        assert_eq!(
            f.grants
                .iter()
                .map(|g| (g.identity.as_str(), g.permission.as_str()))
                .collect::<Vec<_>>(),
            [(svc.external_id.as_str(), "member")]
        );
    }

    /// A binary SID from its text form.
    fn sid_bytes(sid: &str) -> Vec<u8> {
        let parts: Vec<u64> = sid
            .trim_start_matches("S-1-")
            .split('-')
            .map(|p| p.parse().unwrap())
            .collect();
        let mut b = vec![1u8, (parts.len() - 1) as u8];
        b.extend_from_slice(&parts[0].to_be_bytes()[2..]);
        for p in &parts[1..] {
            b.extend_from_slice(&(*p as u32).to_le_bytes());
        }
        b
    }

    /// A self-relative security descriptor whose DACL holds these ACEs
    /// (type, SID); type 5 gets an object type GUID as AD writes them.
    fn sd(aces: &[(u8, &str)]) -> Vec<u8> {
        let mut body = vec![];
        for (t, sid) in aces {
            let mut ace = vec![*t, 0, 0, 0];
            ace.extend_from_slice(&0x000f_01ffu32.to_le_bytes());
            if *t == 5 {
                ace.extend_from_slice(&1u32.to_le_bytes());
                ace.extend_from_slice(&[7u8; 16]);
            }
            ace.extend(sid_bytes(sid));
            let n = ace.len() as u16;
            ace[2..4].copy_from_slice(&n.to_le_bytes());
            body.extend(ace);
        }
        let mut acl = vec![4u8, 0];
        acl.extend_from_slice(&((8 + body.len()) as u16).to_le_bytes());
        acl.extend_from_slice(&(aces.len() as u16).to_le_bytes());
        acl.extend_from_slice(&[0, 0]);
        acl.extend(body);
        let mut out = vec![1u8, 0, 0x04, 0x80];
        out.extend_from_slice(&[0; 12]);
        out.extend_from_slice(&20u32.to_le_bytes());
        out.extend(acl);
        out
    }

    #[test]
    fn a_dacl_allows_its_allowed_trustees_minus_the_denied() {
        let (a, b, c) = ("S-1-5-21-1-2-3-1105", "S-1-5-21-1-2-3-1106", "S-1-5-32-544");
        let d = sd(&[(0, a), (0, b), (5, c), (0x11, a), (1, b)]);
        assert_eq!(
            dacl_allowed_sids(&d),
            Some(vec![a.to_string(), c.to_string()])
        );
        assert_eq!(dacl_allowed_sids(&d[..d.len() - 3]), None, "truncated ACE");
        assert_eq!(
            dacl_allowed_sids(b"O:BAD:(A;;;;;S-1-1-0)"),
            None,
            "SDDL text is not a descriptor"
        );
        let mut no_dacl = d.clone();
        no_dacl[16..20].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(dacl_allowed_sids(&no_dacl), Some(vec![]));
    }

    #[test]
    fn resource_based_delegation_draws_edges_to_identities_and_grants_on_hosts() {
        let dom = "S-1-5-21-7-8-9";
        let account = |cn: &str, rid: u32, more: &[(&str, &[&str])]| {
            let sid = [format!("{dom}-{rid}")];
            let sid = [sid[0].as_str()];
            let mut attrs: Vec<(&str, &[&str])> = vec![
                ("objectClass", &["user"]),
                ("sAMAccountName", std::slice::from_ref(&cn)),
                ("objectSid", &sid),
            ];
            attrs.extend_from_slice(more);
            Entry::new(&format!("cn={cn},dc=x"), &attrs)
        };
        let spn: (&str, &[&str]) = ("servicePrincipalName", &["HTTP/h"]);
        let allow = |e: &mut Entry, sids: &[String]| {
            let aces: Vec<(u8, &str)> = sids.iter().map(|s| (0u8, s.as_str())).collect();
            e.attrs.insert(
                "msds-allowedtoactonbehalfofotheridentity".into(),
                vec![sd(&aces)],
            );
        };
        let app = account("app", 1101, &[spn]);
        let ann = account("ann", 1102, &[]);
        let mut web = account("web", 1103, &[spn]);
        allow(
            &mut web,
            &[
                format!("{dom}-1101"),
                format!("{dom}-1102"),
                format!("{dom}-4242"),
            ],
        );
        let mut fs = Entry::new(
            "cn=FS01,ou=servers,dc=x",
            &[
                ("objectClass", &["computer"]),
                ("sAMAccountName", &["FS01$"]),
                ("dNSHostName", &["fs01.x.test"]),
            ],
        );
        allow(&mut fs, &[format!("{dom}-1101")]);
        let mut broken = Entry::new("cn=BAD,dc=x", &[("objectClass", &["computer"])]);
        broken.attrs.insert(
            "msds-allowedtoactonbehalfofotheridentity".into(),
            vec![vec![1, 0, 4]],
        );
        let read = Read {
            max_pwd_age: None,
            hosts: vec![fs, broken],
            warnings: vec![],
            bound_as: String::new(),
            accounts: vec![app, ann, web],
            groups: vec![],
        };
        let f = map(&read, "dc=x", &[], Utc::now());
        let name_of = |k: &str| {
            f.identities
                .iter()
                .find(|i| i.external_id == k)
                .map(|i| i.name.clone())
                .unwrap_or_default()
        };
        assert_eq!(
            f.delegations
                .iter()
                .map(|d| (name_of(&d.from), name_of(&d.to), d.kind))
                .collect::<Vec<_>>(),
            [(
                "app".to_string(),
                "web".to_string(),
                DelegationKind::Impersonate
            )]
        );
        let web = f.identities.iter().find(|i| i.name == "web").unwrap();
        assert!(
            web.description.contains(&format!(
                "accepts resource-based delegation from app, ann, {dom}-4242"
            )),
            "{}",
            web.description
        );
        let host_grants: Vec<(String, &str)> = f
            .grants
            .iter()
            .filter(|g| g.resource.starts_with("host:"))
            .map(|g| (name_of(&g.identity), g.resource.as_str()))
            .collect();
        assert_eq!(host_grants, [("app".to_string(), "host:fs01.x.test")]);
        assert!(f
            .resources
            .iter()
            .any(|r| r.external_id == "host:fs01.x.test" && r.name == "fs01.x.test"));
        assert_eq!(f.warnings.len(), 1, "{:?}", f.warnings);
        assert!(f.warnings[0].starts_with("cn=BAD,dc=x: msDS-AllowedToActOnBehalfOfOtherIdentity"));
    }

    #[test]
    fn ranged_values_are_merged_and_say_where_the_next_chunk_starts() {
        let mut g = Entry::new(
            "cn=big,dc=x",
            &[
                ("cn", &["big"]),
                ("member;range=0-1", &["cn=a,dc=x", "cn=b,dc=x"]),
            ],
        );
        assert_eq!(g.take_ranges(), [("member".to_string(), 2)]);
        assert_eq!(g.all("member"), ["cn=a,dc=x", "cn=b,dc=x"]);
        let next = Entry::new(
            "cn=big,dc=x",
            &[("member;range=2-3", &["cn=c,dc=x", "cn=d,dc=x"])],
        );
        assert_eq!(g.absorb_ranges(next), [("member".to_string(), 4)]);
        let last = Entry::new("cn=big,dc=x", &[("member;range=4-*", &["cn=e,dc=x"])]);
        assert!(g.absorb_ranges(last).is_empty(), "-* is the last chunk");
        assert_eq!(g.all("member").len(), 5);
        // A complete attribute is left as it is.
        let mut plain = Entry::new("cn=small,dc=x", &[("member", &["cn=a,dc=x"])]);
        assert!(plain.take_ranges().is_empty());
        assert_eq!(plain.all("member"), ["cn=a,dc=x"]);
    }

    #[test]
    fn krbtgt_is_governed_as_active_whatever_its_disabled_bit() {
        let acct = |name: &str, sid: &str| {
            Entry::new(
                &format!("cn={name},cn=users,dc=x"),
                &[
                    ("objectClass", &["user"]),
                    ("sAMAccountName", &[name]),
                    ("objectSid", &[sid]),
                    ("servicePrincipalName", &["kadmin/changepw"]),
                    ("userAccountControl", &["514"]),
                ],
            )
        };
        let read = Read {
            max_pwd_age: None,
            hosts: vec![],
            warnings: vec![],
            bound_as: String::new(),
            accounts: vec![
                acct("krbtgt", "S-1-5-21-1-2-3-502"),
                acct("krbtgt_8245", "S-1-5-21-1-2-3-1108"),
                acct("oldsvc", "S-1-5-21-1-2-3-1109"),
            ],
            groups: vec![],
        };
        let f = map(&read, "dc=x", &[], Utc::now());
        let status = |n: &str| {
            f.identities
                .iter()
                .find(|i| i.name == n)
                .map(|i| (i.status, i.description.contains("ticket-granting")))
        };
        assert_eq!(status("krbtgt"), Some((IdentityStatus::Active, true)));
        assert_eq!(status("krbtgt_8245"), Some((IdentityStatus::Active, true)));
        assert_eq!(status("oldsvc"), Some((IdentityStatus::Disabled, false)));
    }

    /// A group `cn=<cn>,dc=x` with one member and more attributes.
    fn group(cn: &str, member: &str, more: &[(&str, &[&str])]) -> Entry {
        let mut attrs: Vec<(&str, &[&str])> = vec![
            ("objectClass", &["group"]),
            ("cn", std::slice::from_ref(&cn)),
            ("member", std::slice::from_ref(&member)),
        ];
        attrs.extend_from_slice(more);
        Entry::new(&format!("cn={cn},dc=x"), &attrs)
    }

    /// The service account `cn=svc,dc=x` (an SPN) with more attributes.
    fn svc(more: &[(&str, &[&str])]) -> Entry {
        let mut attrs: Vec<(&str, &[&str])> = vec![
            ("objectClass", &["user"]),
            ("sAMAccountName", &["svc"]),
            ("servicePrincipalName", &["HTTP/svc"]),
        ];
        attrs.extend_from_slice(more);
        Entry::new("cn=svc,dc=x", &attrs)
    }

    #[test]
    fn nested_membership_names_every_group_on_the_way() {
        // svc ∈ ops ∈ Domain Admins ∈ Administrators, as AD nests them.
        let b = "dc=x";
        let read = Read {
            max_pwd_age: None,
            hosts: vec![],
            warnings: vec![],
            bound_as: String::new(),
            accounts: vec![svc(&[])],
            groups: vec![
                group("Administrators", "cn=Domain Admins,dc=x", &[]),
                group("Domain Admins", "cn=ops,dc=x", &[]),
                group("ops", "cn=svc,dc=x", &[]),
            ],
        };
        let f = map(&read, b, &[], Utc::now());
        let mut perms: Vec<&str> = f.grants.iter().map(|g| g.permission.as_str()).collect();
        perms.sort_unstable();
        assert_eq!(
            perms,
            ["member", "member via ops", "member via ops > Domain Admins"]
        );
    }

    #[test]
    fn pwd_last_set_zero_is_expired_not_never_expiring() {
        let acct = |dn: &str, uac: &str| {
            Entry::new(
                dn,
                &[
                    ("objectClass", &["user"]),
                    ("sAMAccountName", &[dn]),
                    ("servicePrincipalName", &["HTTP/x"]),
                    ("userAccountControl", &[uac]),
                    ("pwdLastSet", &["0"]),
                ],
            )
        };
        let read = Read {
            max_pwd_age: Some(-42 * 86_400 * 10_000_000),
            hosts: vec![],
            warnings: vec![],
            bound_as: String::new(),
            accounts: vec![acct("cn=must,dc=x", "512"), acct("cn=dont,dc=x", "66048")],
            groups: vec![],
        };
        let now = Utc::now();
        let f = map(&read, "dc=x", &[], now);
        let pwd = |name: &str| {
            f.credentials
                .iter()
                .find(|c| c.identity.contains(name) || c.external_id.contains(name))
                .map(|c| (c.display_name.clone(), c.expires_at))
        };
        let ids: Vec<(&str, &str)> = f
            .identities
            .iter()
            .map(|i| (i.name.as_str(), i.external_id.as_str()))
            .collect();
        let key = |name: &str| {
            ids.iter()
                .find(|(n, _)| n.contains(name))
                .map(|(_, k)| k.to_string())
                .unwrap_or_default()
        };
        let must = pwd(&key("must"));
        assert_eq!(
            must,
            Some((
                "password (must change at next logon: expired)".to_string(),
                Some(now)
            ))
        );
        // DONT_EXPIRE_PASSWORD comes first in AD's computation: never.
        assert_eq!(pwd(&key("dont")).and_then(|(_, e)| e), None);
    }

    #[test]
    fn a_distribution_list_gives_no_grant_whatever_its_name() {
        let b = "dc=x";
        let typed = |t: &'static [&'static str]| [("groupType", t)];
        let read = Read {
            max_pwd_age: None,
            hosts: vec![],
            warnings: vec![],
            bound_as: String::new(),
            accounts: vec![svc(&[("memberOf", &["cn=IT Admins,dc=x"])])],
            groups: vec![
                // A global distribution list (2), and a security group
                // (0x80000002 as AD writes it, signed) nesting it.
                group("IT Admins", "cn=svc,dc=x", &typed(&["2"])),
                group(
                    "Domain Admins",
                    "cn=IT Admins,dc=x",
                    &typed(&["-2147483646"]),
                ),
                group("ops", "cn=svc,dc=x", &typed(&["-2147483646"])),
            ],
        };
        let f = map(&read, b, &[], Utc::now());
        let got: Vec<(&str, &str)> = f
            .grants
            .iter()
            .map(|g| (g.resource.as_str(), g.permission.as_str()))
            .collect();
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].1, "member");
        assert!(
            f.resources
                .iter()
                .all(|r| r.name != "IT Admins" && r.name != "Domain Admins"),
            "neither the list nor what it is nested in is reached"
        );
        assert!(
            f.identities[0]
                .description
                .ends_with("on distribution list IT Admins (mail only: no access)"),
            "the list is shown on the account: {}",
            f.identities[0].description
        );
    }

    #[test]
    fn sids_read_in_binary_and_text() {
        // S-1-5-21-1-2-3-512: revision 1, 5 sub-authorities, authority 5.
        let mut b = vec![1u8, 5, 0, 0, 0, 0, 0, 5];
        for x in [21u32, 1, 2, 3, 512] {
            b.extend_from_slice(&x.to_le_bytes());
        }
        assert_eq!(sid_string(&b).as_deref(), Some("S-1-5-21-1-2-3-512"));
        assert_eq!(sid_string(&b[..b.len() - 1]), None, "truncated");
        assert_eq!(sid_string(&[]), None);
    }

    #[test]
    fn a_primary_group_counts_as_membership_and_nests() {
        let b = "dc=x";
        let dom = "S-1-5-21-10-20-30";
        let grp = |cn: &str, rid: u32, member: &str| {
            Entry::new(
                &format!("cn={cn},{b}"),
                &[
                    ("objectClass", &["group"]),
                    ("cn", &[cn]),
                    ("objectSid", &[&format!("{dom}-{rid}")]),
                    ("member", &[member]),
                ],
            )
        };
        let svc = |cn: &str, rid: &str| {
            Entry::new(
                &format!("cn={cn},{b}"),
                &[
                    ("objectClass", &["user"]),
                    ("sAMAccountName", &[cn]),
                    ("servicePrincipalName", &["HTTP/x"]),
                    ("objectSid", &[&format!("{dom}-{}", cn.len() + 1100)]),
                    ("primaryGroupID", &[rid]),
                ],
            )
        };
        let read = Read {
            max_pwd_age: None,
            hosts: vec![],
            warnings: vec![],
            bound_as: String::new(),
            accounts: vec![svc("pg", "512"), svc("plain", "513")],
            groups: vec![
                grp("Administrators", 544, "cn=Domain Admins,dc=x"),
                grp("Domain Admins", 512, "cn=nobody,dc=x"),
                grp("Domain Users", 513, "cn=nobody,dc=x"),
            ],
        };
        let f = map(&read, b, &[], Utc::now());
        let mut perms: Vec<(&str, Privilege)> = f
            .grants
            .iter()
            .map(|g| (g.permission.as_str(), g.privilege))
            .collect();
        perms.sort_unstable_by_key(|p| p.0);
        assert_eq!(
            perms,
            [
                ("member (primary group)", Privilege::Admin),
                ("member via Domain Admins", Privilege::Admin)
            ],
            "Domain Admin by primary group; Domain Users (513) left out"
        );
    }

    #[test]
    fn group_sensitivity_by_name() {
        let by_name = |n: &str, admin_count: bool| {
            group_sensitivity(None, n, &format!("cn={n},dc=x"), admin_count, &[])
        };
        assert_eq!(by_name("Domain Admins", false), Sensitivity::Critical);
        assert_eq!(by_name("Backup Operators", false), Sensitivity::High);
        assert_eq!(by_name("sql-admins", false), Sensitivity::High);
        assert_eq!(by_name("Reporting", true), Sensitivity::High);
        assert_eq!(by_name("Reporting", false), Sensitivity::Low);
    }

    #[test]
    fn group_sensitivity_by_sid_and_configured_names_before_the_name() {
        let dom = "S-1-5-21-10-20-30";
        let g = |sid: &str, name: &str, configured: &[String]| {
            group_sensitivity(
                Some(sid),
                name,
                &format!("CN={name},DC=x"),
                false,
                configured,
            )
        };
        // Localised names of well-known groups: the SID decides.
        assert_eq!(
            g(&format!("{dom}-512"), "Domänen-Admins", &[]),
            Sensitivity::Critical
        );
        assert_eq!(
            g(&format!("{dom}-519"), "Organisations-Admins", &[]),
            Sensitivity::Critical
        );
        assert_eq!(
            g("S-1-5-32-544", "Administratoren", &[]),
            Sensitivity::Critical
        );
        assert_eq!(
            g("S-1-5-32-551", "Sicherungs-Operatoren", &[]),
            Sensitivity::High
        );
        assert_eq!(
            g(&format!("{dom}-516"), "Domänencontroller", &[]),
            Sensitivity::Critical
        );
        // RID 512 outside a domain SID is not Domain Admins.
        assert_eq!(g("S-1-5-32-512", "x", &[]), Sensitivity::Low);
        assert_eq!(sid_sensitivity("S-1-16-512"), None);
        // An ordinary group (RID >= 1000) falls back to its name.
        assert_eq!(
            g(&format!("{dom}-1105"), "Reporting", &[]),
            Sensitivity::Low
        );
        assert_eq!(
            g(&format!("{dom}-1106"), "sql-admins", &[]),
            Sensitivity::High
        );
        // A configured admin group, by name or by DN, whatever its SID.
        let conf = [
            "tier0-ops".to_string(),
            "cn=Vault Operators, dc=x".to_string(),
        ];
        assert_eq!(
            g(&format!("{dom}-1107"), "Tier0-Ops", &conf),
            Sensitivity::Critical
        );
        assert_eq!(
            g(&format!("{dom}-1108"), "Vault Operators", &conf),
            Sensitivity::Critical
        );
        assert_eq!(
            g(&format!("{dom}-1109"), "Reporting", &conf),
            Sensitivity::Low
        );
    }

    #[test]
    fn malformed_entries_are_errors_not_panics() {
        use ldap3::asn1::TagClass;
        let bad = StructureTag {
            class: TagClass::Application,
            id: 4,
            payload: PL::P(vec![1, 2, 3]),
        };
        assert_eq!(
            parse_entry(bad).unwrap_err().code,
            ErrorCode::MalformedResponse
        );
        let wrong_id = StructureTag {
            class: TagClass::Application,
            id: 5,
            payload: PL::C(vec![]),
        };
        assert_eq!(
            parse_entry(wrong_id).unwrap_err().code,
            ErrorCode::MalformedResponse
        );
        let no_attrs = StructureTag {
            class: TagClass::Application,
            id: 4,
            payload: PL::C(vec![StructureTag {
                class: TagClass::Universal,
                id: 4,
                payload: PL::P(b"cn=x".to_vec()),
            }]),
        };
        assert_eq!(
            parse_entry(no_attrs).unwrap_err().code,
            ErrorCode::MalformedResponse
        );
    }

    #[test]
    fn the_kerberos_sign_in_is_offered_first_and_needs_no_secret_nor_bind_dn() {
        use crate::sync::settings::{kind, validate};
        use serde_json::json;
        let k = kind("ldap").unwrap();
        assert_eq!(k.settings[1].key, "sasl_gssapi");
        let signs: Vec<&str> = k
            .settings
            .iter()
            .filter(|s| s.sign_in)
            .map(|s| s.key)
            .collect();
        assert_eq!(signs, ["sasl_gssapi"]);
        let base = json!({"url": "ldaps://dc1.corp.example", "base_dn": "dc=corp"});
        let mut krb = base.clone();
        krb["sasl_gssapi"] = json!("true");
        let v = validate("ldap", &krb).unwrap();
        assert_eq!(v["sasl_gssapi"], json!(true));
        assert!(!crate::sync::source_needs_secret("ldap", &v));
        let (mode, who) = sign_in(&v);
        assert!(
            mode.contains("Kerberos") && mode.contains("no stored secret"),
            "{mode}"
        );
        assert!(who.contains("ldap/dc1.corp.example"), "{who}");
        // One way to bind: a bind DN is a simple bind's.
        let mut both = krb.clone();
        both["bind_dn"] = json!("cn=r,dc=corp");
        let e = validate("ldap", &both).unwrap_err();
        assert!(e.message.contains("keep one"), "{}", e.message);
        // A simple bind needs its DN, and reads the password.
        let e = validate("ldap", &base).unwrap_err();
        assert!(
            e.message.contains("bind_dn") && e.message.contains("sasl_gssapi"),
            "{}",
            e.message
        );
        let mut simple = base.clone();
        simple["bind_dn"] = json!("cn=r,dc=corp");
        let v = validate("ldap", &simple).unwrap();
        assert!(crate::sync::source_needs_secret("ldap", &v));
        assert_eq!(sign_in(&v).1, "cn=r,dc=corp");
        simple["kerberos_host"] = json!("dc1");
        let e = validate("ldap", &simple).unwrap_err();
        assert!(e.message.contains("sasl_gssapi=true"), "{}", e.message);
        // The service principal's host: the URL's, or kerberos_host for an
        // address.
        assert_eq!(
            url_host("ldap://DC1.corp.example:389").as_deref(),
            Some("dc1.corp.example")
        );
        assert_eq!(url_host("ldaps://10.0.0.5"), None);
        assert_eq!(url_host("ldaps://[::1]:636"), None);
    }

    #[test]
    fn the_bound_identity_is_found_by_dn_domain_name_or_principal() {
        let a = Entry::new(
            "CN=Svc Sync,OU=Svc,DC=corp",
            &[("sAMAccountName", &["svc-sync"])],
        );
        let b = Entry::new(
            "CN=Ann,OU=People,DC=corp",
            &[
                ("sAMAccountName", &["ann"]),
                ("userPrincipalName", &["ann.lee@corp.example"]),
            ],
        );
        let accounts = vec![a, b];
        let dn = |w: &str| kerberos::account_of(w, &accounts).map(|e| e.dn.clone());
        assert_eq!(
            dn("dn:cn=svc sync,ou=svc,dc=corp").as_deref(),
            Some("CN=Svc Sync,OU=Svc,DC=corp")
        );
        assert_eq!(
            dn("u:CORP\\SVC-SYNC").as_deref(),
            Some("CN=Svc Sync,OU=Svc,DC=corp")
        );
        assert_eq!(
            dn("svc-sync@CORP.EXAMPLE").as_deref(),
            Some("CN=Svc Sync,OU=Svc,DC=corp")
        );
        assert_eq!(
            dn("ann.lee@corp.example").as_deref(),
            Some("CN=Ann,OU=People,DC=corp")
        );
        assert_eq!(dn("bob@CORP.EXAMPLE"), None);
        assert_eq!(dn("dn:cn=nobody,dc=corp"), None);
    }
}
