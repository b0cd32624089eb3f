//! Joiners, movers and leavers: which lifecycle event a change a sync saw
//! is. Pure rules over the facts before and after, no I/O; `store/sync.rs`
//! reads the facts, asks these rules and writes the events, all in the
//! apply's one transaction.
//!
//! The details are part of the contract: `store/sync.rs`'s review flag
//! (`flag_movers`) picks the mover events that gained access by their
//! `grants: +N -M` / `delegations: +N -M` detail, and drift picks
//! `active again after N days dormant` (see [`gains_access`]).

use crate::model::{IdentityStatus, PersonStatus};

/// Days without use after which renewed use is drift.
pub const DORMANT_DAYS: i64 = 90;

/// The kind of a lifecycle event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Joiner,
    Mover,
    Leaver,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Joiner => "joiner",
            EventKind::Mover => "mover",
            EventKind::Leaver => "leaver",
        }
    }
}

/// What an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    Person,
    Identity,
    Credential,
}

impl Subject {
    pub fn as_str(self) -> &'static str {
        match self {
            Subject::Person => "person",
            Subject::Identity => "identity",
            Subject::Credential => "credential",
        }
    }
}

/// One event: its kind and the detail recorded with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    pub detail: String,
}

fn ev(kind: EventKind, detail: impl Into<String>) -> Event {
    Event {
        kind,
        detail: detail.into(),
    }
}

/// What a person's record says, for classification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PersonFacts<'a> {
    pub status: PersonStatus,
    pub department: &'a str,
}

/// A person the source returns for the first time.
pub fn person_new() -> Event {
    ev(EventKind::Joiner, "new person")
}

/// A known person whose record changed: leaving or returning active wins
/// over a move between departments; other edits are no event.
pub fn person_changed(before: PersonFacts<'_>, after: PersonFacts<'_>) -> Option<Event> {
    let was_active = before.status == PersonStatus::Active;
    let is_active = after.status == PersonStatus::Active;
    if was_active && !is_active {
        Some(ev(
            EventKind::Leaver,
            format!("status {} -> {}", before.status, after.status),
        ))
    } else if !was_active && is_active {
        Some(ev(
            EventKind::Joiner,
            format!("status {} -> active", before.status),
        ))
    } else if before.department != after.department {
        Some(ev(
            EventKind::Mover,
            format!("department {} -> {}", before.department, after.department),
        ))
    } else {
        None
    }
}

/// A known person's manager changed: a mover, unless the same record also
/// changed status or department (that change is the event already).
pub fn person_manager_changed(before: PersonFacts<'_>, after: PersonFacts<'_>) -> Option<Event> {
    (before == after).then(|| ev(EventKind::Mover, "manager changed"))
}

/// A person (or identity) the source no longer has: a leaver, once (a
/// person already departed, an identity already deleted, is no event).
pub fn person_removed(status: PersonStatus) -> Option<Event> {
    (status != PersonStatus::Departed).then(|| ev(EventKind::Leaver, "removed from the source"))
}

/// See [`person_removed`].
pub fn identity_removed(status: IdentityStatus) -> Option<Event> {
    (status != IdentityStatus::Deleted).then(|| ev(EventKind::Leaver, "removed from the source"))
}

/// An identity the source returns for the first time (`kind` as spelled).
pub fn identity_new(kind: &str) -> Event {
    ev(EventKind::Joiner, format!("new {kind}"))
}

/// What an identity's record says, for classification (owner: the local
/// person id after Custodian's held owners are applied).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdentityFacts {
    pub status: IdentityStatus,
    pub owner: Option<i64>,
    /// Last use, as Unix seconds.
    pub last_used: Option<i64>,
}

/// A known identity whose record changed: in order, a status change
/// (leaver when it stops being active, joiner when it becomes active), an
/// owner change (mover), and renewed use after [`DORMANT_DAYS`] without
/// (mover, also drift).
pub fn identity_changed(before: IdentityFacts, after: IdentityFacts) -> Vec<Event> {
    let mut out = Vec::new();
    let was_active = before.status == IdentityStatus::Active;
    let is_active = after.status == IdentityStatus::Active;
    if was_active && !is_active {
        out.push(ev(
            EventKind::Leaver,
            format!("status {} -> {}", before.status, after.status),
        ));
    } else if !was_active && is_active {
        out.push(ev(
            EventKind::Joiner,
            format!("status {} -> active", before.status),
        ));
    }
    if before.owner != after.owner {
        out.push(ev(EventKind::Mover, "owner changed"));
    }
    if let (Some(b), Some(a)) = (before.last_used, after.last_used) {
        let dormant_days = (a - b) / 86_400;
        if dormant_days >= DORMANT_DAYS {
            out.push(ev(
                EventKind::Mover,
                format!("active again after {dormant_days} days dormant"),
            ));
        }
    }
    out
}

/// A credential new on an identity: a joiner on an identity that existed
/// before this run (a new identity's credentials come with its own joiner).
pub fn credential_new(identity_is_new: bool, kind: &str, identity_name: &str) -> Option<Event> {
    (!identity_is_new).then(|| ev(EventKind::Joiner, format!("new {kind} on {identity_name}")))
}

/// How many lost grants a mover's detail names before "and N more".
pub const LOST_NAMED: usize = 3;

/// An existing identity's grants changed (`added`, `removed` counts);
/// `lost` names the removed ones ("member on Backup Operators"), the first
/// [`LOST_NAMED`] of them in the detail, so a lost membership is said.
pub fn grants_changed(
    identity_is_new: bool,
    added: usize,
    removed: usize,
    lost: &[String],
) -> Option<Event> {
    (!identity_is_new && (added > 0 || removed > 0)).then(|| {
        ev(
            EventKind::Mover,
            format!("grants: +{added} -{removed}{}", lost_suffix(lost)),
        )
    })
}

/// ` (lost a, b, c and N more)`: the first [`LOST_NAMED`] names, sorted;
/// nothing when none is named.
fn lost_suffix(lost: &[String]) -> String {
    if lost.is_empty() {
        return String::new();
    }
    let mut names: Vec<&str> = lost.iter().map(String::as_str).collect();
    names.sort_unstable();
    let shown = names.len().min(LOST_NAMED);
    let mut out = format!(" (lost {}", names[..shown].join(", "));
    if names.len() > shown {
        out.push_str(&format!(" and {} more", names.len() - shown));
    }
    out.push(')');
    out
}

/// An existing identity's delegations changed (called only when the set
/// differs, so `+0 -0` is never recorded).
pub fn delegations_changed(
    identity_is_new: bool,
    added: usize,
    removed: usize,
    lost: &[String],
) -> Option<Event> {
    (!identity_is_new).then(|| {
        ev(
            EventKind::Mover,
            format!("delegations: +{added} -{removed}{}", lost_suffix(lost)),
        )
    })
}

/// Whether an identity's event means it gained access and wants a
/// permission review: a mover with grants or delegations added (`+N` with
/// N > 0), or a new credential. `flag_movers` in `store/sync.rs` applies the
/// same rule to the recorded events in SQL; a test here holds the two to
/// the same details.
pub fn gains_access(subject: Subject, event: &Event) -> bool {
    match (subject, event.kind) {
        (Subject::Identity, EventKind::Mover) => ["grants: +", "delegations: +"].iter().any(|p| {
            event
                .detail
                .strip_prefix(p)
                .is_some_and(|rest| !rest.starts_with("0 "))
        }),
        (Subject::Credential, EventKind::Joiner) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(status: PersonStatus, department: &str) -> PersonFacts<'_> {
        PersonFacts { status, department }
    }

    fn i(status: IdentityStatus, owner: Option<i64>, last_used: Option<i64>) -> IdentityFacts {
        IdentityFacts {
            status,
            owner,
            last_used,
        }
    }

    #[test]
    fn a_person_leaving_or_returning_wins_over_a_department_move() {
        use PersonStatus::*;
        let e = person_changed(p(Active, "fin"), p(Departed, "ops")).unwrap();
        assert_eq!(
            (e.kind, e.detail.as_str()),
            (EventKind::Leaver, "status active -> departed")
        );
        let e = person_changed(p(Suspended, "fin"), p(Active, "ops")).unwrap();
        assert_eq!(
            (e.kind, e.detail.as_str()),
            (EventKind::Joiner, "status suspended -> active")
        );
        let e = person_changed(p(Active, "fin"), p(Active, "ops")).unwrap();
        assert_eq!(
            (e.kind, e.detail.as_str()),
            (EventKind::Mover, "department fin -> ops")
        );
        // Suspended to departed is no new leaver; a rename is no event.
        assert_eq!(
            person_changed(p(Suspended, "fin"), p(Departed, "fin")),
            None
        );
        assert_eq!(person_changed(p(Active, "fin"), p(Active, "fin")), None);
    }

    #[test]
    fn a_manager_change_is_a_mover_only_when_nothing_else_moved() {
        use PersonStatus::*;
        assert_eq!(
            person_manager_changed(p(Active, "fin"), p(Active, "fin")).map(|e| e.kind),
            Some(EventKind::Mover)
        );
        assert_eq!(
            person_manager_changed(p(Active, "fin"), p(Active, "ops")),
            None
        );
        assert_eq!(
            person_manager_changed(p(Active, "fin"), p(Departed, "fin")),
            None
        );
    }

    #[test]
    fn removal_is_a_leaver_once() {
        assert_eq!(
            person_removed(PersonStatus::Active).map(|e| e.kind),
            Some(EventKind::Leaver)
        );
        assert_eq!(
            person_removed(PersonStatus::Suspended).map(|e| e.kind),
            Some(EventKind::Leaver)
        );
        assert_eq!(person_removed(PersonStatus::Departed), None);
        assert_eq!(
            identity_removed(IdentityStatus::Disabled).map(|e| e.kind),
            Some(EventKind::Leaver)
        );
        assert_eq!(identity_removed(IdentityStatus::Deleted), None);
    }

    #[test]
    fn identity_changes_are_status_then_owner_then_dormancy() {
        use IdentityStatus::*;
        let day = 86_400;
        let ev = identity_changed(
            i(Active, Some(1), Some(0)),
            i(Disabled, Some(2), Some(90 * day)),
        );
        let got: Vec<_> = ev.iter().map(|e| (e.kind, e.detail.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (EventKind::Leaver, "status active -> disabled"),
                (EventKind::Mover, "owner changed"),
                (EventKind::Mover, "active again after 90 days dormant"),
            ]
        );
        let ev = identity_changed(i(Disabled, None, Some(0)), i(Active, None, Some(89 * day)));
        assert_eq!(
            ev,
            vec![Event {
                kind: EventKind::Joiner,
                detail: "status disabled -> active".into()
            }]
        );
        // Unknown last use on either side is no drift; deleted to disabled no event.
        assert!(
            identity_changed(i(Active, None, None), i(Active, None, Some(1000 * day))).is_empty()
        );
        assert!(identity_changed(i(Deleted, None, None), i(Disabled, None, None)).is_empty());
    }

    #[test]
    fn new_things_on_new_identities_are_not_events_of_their_own() {
        assert_eq!(identity_new("ai_agent").detail, "new ai_agent");
        assert_eq!(person_new().kind, EventKind::Joiner);
        assert_eq!(credential_new(true, "api_key", "a1"), None);
        assert_eq!(
            credential_new(false, "api_key", "a1").unwrap().detail,
            "new api_key on a1"
        );
        assert_eq!(grants_changed(true, 3, 0, &[]), None);
        assert_eq!(grants_changed(false, 0, 0, &[]), None);
        assert_eq!(
            grants_changed(false, 2, 1, &[]).unwrap().detail,
            "grants: +2 -1"
        );
        let lost: Vec<String> = ["member on ops", "member on Backup Operators", "a", "b"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            grants_changed(false, 0, 1, &lost[1..2]).unwrap().detail,
            "grants: +0 -1 (lost member on Backup Operators)"
        );
        assert_eq!(
            grants_changed(false, 1, 4, &lost).unwrap().detail,
            "grants: +1 -4 (lost a, b, member on Backup Operators and 1 more)"
        );
        // The review flag's rule still reads the counts (`flag_movers`).
        assert!(!gains_access(
            Subject::Identity,
            &grants_changed(false, 0, 1, &lost[1..2]).unwrap()
        ));
        assert_eq!(delegations_changed(true, 1, 0, &[]), None);
        assert_eq!(
            delegations_changed(false, 0, 1, &[]).unwrap().detail,
            "delegations: +0 -1"
        );
        assert_eq!(
            delegations_changed(false, 0, 1, &["impersonate to sql".to_string()])
                .unwrap()
                .detail,
            "delegations: +0 -1 (lost impersonate to sql)"
        );
    }

    #[test]
    fn only_added_access_wants_a_review() {
        use Subject::*;
        assert!(gains_access(
            Identity,
            &grants_changed(false, 1, 0, &[]).unwrap()
        ));
        assert!(gains_access(
            Identity,
            &grants_changed(false, 10, 4, &[]).unwrap()
        ));
        assert!(!gains_access(
            Identity,
            &grants_changed(false, 0, 4, &[]).unwrap()
        ));
        assert!(gains_access(
            Identity,
            &delegations_changed(false, 1, 1, &["assume_role to r".to_string()]).unwrap()
        ));
        assert!(!gains_access(
            Identity,
            &delegations_changed(false, 0, 1, &["assume_role to r".to_string()]).unwrap()
        ));
        assert!(gains_access(
            Credential,
            &credential_new(false, "api_key", "a1").unwrap()
        ));
        let owner = identity_changed(
            i(IdentityStatus::Active, Some(1), None),
            i(IdentityStatus::Active, Some(2), None),
        );
        assert!(!gains_access(Identity, &owner[0]));
        assert!(!gains_access(Identity, &identity_new("bot")));
        assert!(!gains_access(Person, &person_new()));
        assert!(!gains_access(
            Identity,
            &identity_removed(IdentityStatus::Active).unwrap()
        ));
    }
}
