//! What a source hands to the sync engine: records keyed by the source's own
//! identifiers. The store turns them into rows with stable local ids.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::model::{
    AgentClass, CredentialKind, DelegationKind, IdentityKind, IdentityStatus, PersonStatus,
    Privilege, Sensitivity,
};

/// How a record refers to a person.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PersonKey {
    /// The person's id in the same source.
    ExternalId(String),
    /// An email address, matched case-insensitively across every source.
    Email(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct PersonRecord {
    pub external_id: String,
    pub display_name: String,
    pub email: String,
    pub department: String,
    pub title: String,
    pub manager: Option<PersonKey>,
    pub status: PersonStatus,
    pub left_at: Option<DateTime<Utc>>,
}

/// What the owner registered about an identity. Sources that know nothing of
/// registration leave it `None`, and what Custodian holds is kept.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Registration {
    pub purpose: String,
    pub agent_class: Option<AgentClass>,
    pub intended_blast_radius: String,
    pub review_interval_days: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IdentityRecord {
    pub external_id: String,
    pub name: String,
    pub kind: IdentityKind,
    pub agent_class: Option<AgentClass>,
    pub status: IdentityStatus,
    /// What the source says the identity is for (description, notes).
    pub description: String,
    pub owner: Option<PersonKey>,
    pub builder: Option<PersonKey>,
    pub team: String,
    pub environment: String,
    pub registration: Option<Registration>,
    pub created_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CredentialRecord {
    pub identity: String,
    pub external_id: String,
    pub kind: CredentialKind,
    pub display_name: String,
    pub created_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_rotated_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResourceRecord {
    pub external_id: String,
    pub name: String,
    pub kind: String,
    pub sensitivity: Sensitivity,
    pub environment: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GrantRecord {
    pub identity: String,
    pub resource: String,
    pub permission: String,
    pub privilege: Privilege,
    pub high_consequence: bool,
    pub last_used_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DelegationRecord {
    pub from: String,
    pub to: String,
    pub kind: DelegationKind,
    /// When the edge holds only under a condition, that condition, readable
    /// ("only if Bool aws:MultiFactorAuthPresent=true"): the edge is
    /// conditional. `None`: it holds as it is.
    pub condition: Option<String>,
    /// Why the edge exists when its kind alone does not say (an escalation:
    /// "iam:PassRole to ec2.amazonaws.com, with ec2:RunInstances").
    pub reason: Option<String>,
}

impl DelegationRecord {
    /// An unconditional edge `from` → `to` (external ids within the source).
    pub fn new(from: impl Into<String>, to: impl Into<String>, kind: DelegationKind) -> Self {
        DelegationRecord {
            from: from.into(),
            to: to.into(),
            kind,
            condition: None,
            reason: None,
        }
    }

    /// The same edge, holding only when `condition` does (`None`: always).
    pub fn when(mut self, condition: Option<String>) -> Self {
        self.condition = condition.filter(|c| !c.trim().is_empty());
        self
    }

    /// The same edge, with why it exists.
    pub fn because(mut self, reason: impl Into<String>) -> Self {
        let r: String = reason.into();
        self.reason = (!r.trim().is_empty()).then_some(r);
        self
    }
}

/// What qualifies a grant beyond its record: the condition it holds under
/// and the parts of its resource it does not reach (AWS: a conditional or
/// partial `Deny`, a conditional `Allow`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GrantCondition {
    /// Readable: "only if …; unless …; except …; not on …". `None`: the
    /// grant holds as it is.
    pub condition: Option<String>,
    /// Resource patterns under the grant's resource that it does not reach.
    pub excluded: Vec<String>,
}

/// A grant's key within a fetch: (identity, resource, permission), as in
/// its [`GrantRecord`].
pub type GrantKey = (String, String, String);

/// Whether a fetch is the whole truth of the source or a change set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchMode {
    /// Everything the source holds: what is missing was deleted.
    Full,
    /// Only what changed since the cursor: upserts plus explicit removals.
    /// An upserted identity brings its complete credentials and grants.
    Incremental,
}

impl FetchMode {
    pub fn as_str(self) -> &'static str {
        match self {
            FetchMode::Full => "full",
            FetchMode::Incremental => "incremental",
        }
    }
}

/// The result of fetching one source.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub mode: FetchMode,
    pub people: Vec<PersonRecord>,
    pub identities: Vec<IdentityRecord>,
    pub credentials: Vec<CredentialRecord>,
    pub resources: Vec<ResourceRecord>,
    pub grants: Vec<GrantRecord>,
    /// What qualifies some of `grants`, by their key; a grant not named
    /// here holds as it is. Beside the records, not in them, so sources
    /// that evaluate no conditions (all but AWS) build grants as before.
    pub grant_conditions: HashMap<GrantKey, GrantCondition>,
    pub delegations: Vec<DelegationRecord>,
    /// Incremental only: external ids removed from the source.
    pub removed_people: Vec<String>,
    pub removed_identities: Vec<String>,
    /// Where the next incremental fetch starts (delta link, timestamp...).
    pub cursor: Option<String>,
    /// The external id (in this source) of the identity Custodian signed in
    /// as, when the source can tell (Entra: the service principal of the
    /// app, found by its appId; AWS: the caller of sts:GetCallerIdentity).
    /// Kept with the source (`source show`), and that identity is marked in
    /// the inventory: Custodian governs its own access. `None`: unknown this
    /// run; what an earlier run found is kept.
    pub signed_in_as: Option<String>,
    /// A secret the source handed back in place of the stored one (an Entra
    /// delegated sign-in's refresh token is replaced at each use): the sync
    /// engine stores it in the secret store after the fetch. Never applied
    /// to the cache; its `Debug` shows no text.
    pub rotated_secret: Option<RotatedSecret>,
    /// What the run skipped or doubts (a malformed object, a listing that
    /// came back empty), each naming the object and why. At most
    /// [`MAX_WARNINGS`]; [`Fetched::warn`] counts the rest in
    /// `warnings_dropped`.
    pub warnings: Vec<String>,
    pub warnings_dropped: usize,
}

/// A secret a source handed back during a fetch ([`Fetched::rotated_secret`]).
#[derive(Clone, PartialEq, Eq)]
pub struct RotatedSecret(String);

impl RotatedSecret {
    pub fn new(secret: String) -> RotatedSecret {
        RotatedSecret(secret)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for RotatedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RotatedSecret(..)")
    }
}

/// How many warnings a run keeps word for word.
pub const MAX_WARNINGS: usize = 200;

impl Fetched {
    pub fn new(mode: FetchMode) -> Fetched {
        Fetched {
            mode,
            people: vec![],
            identities: vec![],
            credentials: vec![],
            resources: vec![],
            grants: vec![],
            grant_conditions: HashMap::new(),
            delegations: vec![],
            removed_people: vec![],
            removed_identities: vec![],
            cursor: None,
            signed_in_as: None,
            rotated_secret: None,
            warnings: vec![],
            warnings_dropped: 0,
        }
    }

    /// Records a warning (capped at [`MAX_WARNINGS`]; the rest are counted).
    pub fn warn(&mut self, message: impl Into<String>) {
        if self.warnings.len() < MAX_WARNINGS {
            self.warnings.push(message.into());
        } else {
            self.warnings_dropped += 1;
        }
    }

    /// The warnings as the run record keeps them: the first
    /// [`MAX_WARNINGS`], then "and N more".
    pub fn warnings_for_record(&self) -> Vec<String> {
        let mut out = self.warnings.clone();
        if self.warnings_dropped > 0 {
            out.push(format!(
                "and {} more warning(s) not listed",
                self.warnings_dropped
            ));
        }
        out
    }

    pub fn item_count(&self) -> usize {
        self.people.len()
            + self.identities.len()
            + self.credentials.len()
            + self.resources.len()
            + self.grants.len()
            + self.delegations.len()
    }

    /// What each identity holds in this fetch (its credentials, grants with
    /// their conditions, and delegations), digested, by the identity's
    /// external id; an identity that holds nothing has none. The sync
    /// stores it with the identity: the next fetch that brings the same
    /// digest skips reading and comparing that identity's children, since
    /// applying the same records again changes nothing.
    ///
    /// Each record is hashed on its own (SHA-256), and an identity's digest
    /// is the SHA-256 of its records' hashes in sorted order: the order a
    /// source lists things in does not matter, and the source's data cannot
    /// steer two different holdings to one digest (a sum of hashes could be
    /// steered so, and a change would then go unseen). The records are fed
    /// through their `Hash` impls, which are stable on one machine; a
    /// release that changes one costs one full comparison per identity,
    /// never a missed change.
    pub fn children_digests(&self) -> HashMap<&str, ChildrenDigest> {
        let mut rows: HashMap<&str, Vec<[u8; 32]>> = HashMap::with_capacity(self.identities.len());
        for c in &self.credentials {
            let row = (
                c.external_id.as_str(),
                c.kind,
                c.display_name.as_str(),
                c.created_at,
                c.expires_at,
                c.last_rotated_at,
                c.last_used_at,
            );
            rows.entry(c.identity.as_str())
                .or_default()
                .push(ChildrenDigest::row(b'c', &row));
        }
        for g in &self.grants {
            let row = (
                g.resource.as_str(),
                g.permission.as_str(),
                g.privilege,
                g.high_consequence,
                g.last_used_at,
            );
            rows.entry(g.identity.as_str())
                .or_default()
                .push(ChildrenDigest::row(b'g', &row));
        }
        for ((identity, resource, permission), c) in &self.grant_conditions {
            let row = (resource, permission, &c.condition, &c.excluded);
            rows.entry(identity.as_str())
                .or_default()
                .push(ChildrenDigest::row(b'q', &row));
        }
        for d in &self.delegations {
            let row = (d.to.as_str(), d.kind, &d.condition, &d.reason);
            rows.entry(d.from.as_str())
                .or_default()
                .push(ChildrenDigest::row(b'd', &row));
        }
        rows.into_iter()
            .map(|(identity, mut hashes)| {
                hashes.sort_unstable();
                let mut h = Sha256::new();
                h.update([ChildrenDigest::VERSION]);
                for row in &hashes {
                    h.update(row);
                }
                (identity, ChildrenDigest(h.finalize().into()))
            })
            .collect()
    }
}

/// A digest of what one identity holds in a fetch
/// ([`Fetched::children_digests`]); all zeros: it holds nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChildrenDigest([u8; 32]);

/// Feeds `Hash` impls into SHA-256.
struct Feed(Sha256);

impl std::hash::Hasher for Feed {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    fn finish(&self) -> u64 {
        0
    }
}

impl ChildrenDigest {
    /// The digest version: what is hashed changes with it.
    const VERSION: u8 = 1;

    fn row(tag: u8, row: &impl std::hash::Hash) -> [u8; 32] {
        use std::hash::Hash;
        let mut feed = Feed(Sha256::new());
        (Self::VERSION, tag).hash(&mut feed);
        row.hash(&mut feed);
        feed.0.finalize().into()
    }

    /// As stored: 64 hex digits.
    pub fn to_hex(self) -> String {
        crate::hex::encode(&self.0)
    }
}

/// The state of a credential, by its own dates first: a credential past its
/// expiry is expired whatever the source's own flag says (a source may report
/// a token "active" until it next recomputes, or never).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialState {
    Active,
    Expired,
    /// Revoked, deactivated or suspended by the source.
    Inactive,
}

impl CredentialState {
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialState::Active => "active",
            CredentialState::Expired => "expired",
            CredentialState::Inactive => "inactive",
        }
    }

    /// The status of an identity that *is* this one credential (an Okta API
    /// token, a GitHub fine-grained PAT): only an active credential is an
    /// active identity.
    pub fn identity_status(self) -> IdentityStatus {
        match self {
            CredentialState::Active => IdentityStatus::Active,
            CredentialState::Expired | CredentialState::Inactive => IdentityStatus::Disabled,
        }
    }
}

/// The rule: expired when `expires_at` is past (or the source says expired),
/// else inactive when the source says so, else active.
pub fn credential_state(
    source_active: bool,
    source_says_expired: bool,
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> CredentialState {
    if source_says_expired || expires_at.is_some_and(|e| e <= now) {
        CredentialState::Expired
    } else if !source_active {
        CredentialState::Inactive
    } else {
        CredentialState::Active
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn holdings() -> Fetched {
        let mut f = Fetched::new(FetchMode::Full);
        for (identity, resource, permission) in [
            ("a", "r1", "read"),
            ("a", "r2", "write"),
            ("b", "r1", "read"),
        ] {
            f.grants.push(GrantRecord {
                identity: identity.into(),
                resource: resource.into(),
                permission: permission.into(),
                privilege: Privilege::Read,
                high_consequence: false,
                last_used_at: None,
            });
        }
        f.credentials.push(CredentialRecord {
            identity: "a".into(),
            external_id: "k1".into(),
            kind: CredentialKind::ApiToken,
            display_name: "key".into(),
            created_at: None,
            expires_at: None,
            last_rotated_at: None,
            last_used_at: None,
        });
        f.delegations.push(DelegationRecord {
            from: "b".into(),
            to: "a".into(),
            kind: DelegationKind::AssumeRole,
            condition: None,
            reason: None,
        });
        f
    }

    #[test]
    fn an_identitys_digest_ignores_order_and_changes_with_anything_it_holds() {
        let base = holdings();
        let d = base.children_digests();
        let (a, b) = (d["a"], d["b"]);
        assert_ne!(a, b);
        assert!(
            !d.contains_key("c"),
            "an identity holding nothing has no digest"
        );
        assert_eq!(a.to_hex().len(), 64);
        assert_eq!(ChildrenDigest([0x0f; 32]).to_hex(), "0f".repeat(32));

        let mut reordered = holdings();
        reordered.grants.reverse();
        assert_eq!(
            reordered.children_digests()["a"],
            a,
            "the listing order does not matter"
        );

        let changes: Vec<(&str, Box<dyn Fn(&mut Fetched)>)> = vec![
            (
                "a grant's privilege",
                Box::new(|f| f.grants[0].privilege = Privilege::Admin),
            ),
            (
                "a grant's last use",
                Box::new(|f| f.grants[1].last_used_at = Some(Utc::now())),
            ),
            (
                "a grant's resource",
                Box::new(|f| f.grants[0].resource = "r3".into()),
            ),
            (
                "a grant gone",
                Box::new(|f| {
                    f.grants.remove(1);
                }),
            ),
            (
                "a grant twice",
                Box::new(|f| {
                    let g = f.grants[0].clone();
                    f.grants.push(g);
                }),
            ),
            (
                "a credential's expiry",
                Box::new(|f| f.credentials[0].expires_at = Some(Utc::now())),
            ),
            (
                "a credential's name",
                Box::new(|f| f.credentials[0].display_name = "other".into()),
            ),
            (
                "a condition",
                Box::new(|f| {
                    f.grant_conditions.insert(
                        ("a".into(), "r1".into(), "read".into()),
                        GrantCondition {
                            condition: Some("only if MFA".into()),
                            excluded: vec![],
                        },
                    );
                }),
            ),
        ];
        for (what, change) in changes {
            let mut f = holdings();
            change(&mut f);
            let now = f.children_digests();
            assert_ne!(now["a"], a, "{what} leaves a's digest as it was");
            assert_eq!(now["b"], b, "{what} changes b's digest");
        }
        let mut f = holdings();
        f.delegations[0].reason = Some("why".into());
        assert_ne!(f.children_digests()["b"], b, "a delegation's reason");
        assert_eq!(f.children_digests()["a"], a, "a delegation is its source's");
    }

    #[test]
    fn warnings_are_capped_and_counted() {
        let mut f = Fetched::new(FetchMode::Full);
        for i in 0..(MAX_WARNINGS + 7) {
            f.warn(format!("w{i}"));
        }
        assert_eq!(f.warnings.len(), MAX_WARNINGS);
        assert_eq!(f.warnings_dropped, 7);
        let rec = f.warnings_for_record();
        assert_eq!(rec.len(), MAX_WARNINGS + 1);
        assert_eq!(rec[0], "w0");
        assert!(
            rec[MAX_WARNINGS].contains("and 7 more"),
            "{}",
            rec[MAX_WARNINGS]
        );
    }

    #[test]
    fn a_credential_past_its_expiry_is_expired_whatever_the_flag() {
        let now = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let past = Some(now - chrono::Duration::days(1));
        let future = Some(now + chrono::Duration::days(1));
        assert_eq!(
            credential_state(true, false, past, now),
            CredentialState::Expired
        );
        assert_eq!(
            credential_state(false, false, past, now),
            CredentialState::Expired
        );
        assert_eq!(
            credential_state(true, true, future, now),
            CredentialState::Expired
        );
        assert_eq!(
            credential_state(true, false, future, now),
            CredentialState::Active
        );
        assert_eq!(
            credential_state(true, false, None, now),
            CredentialState::Active
        );
        assert_eq!(
            credential_state(false, false, future, now),
            CredentialState::Inactive
        );
        assert_eq!(
            CredentialState::Expired.identity_status(),
            IdentityStatus::Disabled
        );
        assert_eq!(CredentialState::Expired.as_str(), "expired");
    }
}
