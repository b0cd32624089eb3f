//! The offboarding rules that decide what a plan means and what applying it
//! does: pure functions over plain data. `store::offboarding` reads the
//! facts, asks these rules and writes what they return, in the one
//! transaction of `plan_offboarding` or `apply_offboarding`.
//!
//! - A plan: keeping needs a temporary owner and a deadline in the future; a
//!   transfer needs a new owner; the new owner is never the departing person
//!   (any of their records); rotation only goes with a transfer.
//! - Applying an item: a transfer or keep sets a Custodian-held owner and
//!   asks the source for the change (one task), plus one rotation task per
//!   secret the person could know when asked to rotate; a retirement asks to
//!   disable the identity and to revoke every credential.
//! - Review items the departing person still holds go to the identity's new
//!   owner (never to its builder), else to the campaign's fallback reviewer
//!   (unless that is the departing person or the builder), else to the
//!   campaign owner.

use chrono::DateTime;

use super::{OffboardAction, OffboardPlan};
use crate::campaigns::TaskKind;
use crate::error::{Error, Result};

/// Credential kinds that are secrets a person could have copied.
pub const SECRET_KINDS: &[&str] = &[
    "client_secret",
    "access_key",
    "api_token",
    "password",
    "ssh_key",
    "personal_access_token",
];

/// A date as typed (YYYY-MM-DD, midnight UTC, or RFC 3339) as a Unix time.
pub fn parse_date(s: &str, what: &str) -> Result<i64> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        if let Some(t) = d.and_hms_opt(0, 0, 0) {
            return Ok(t.and_utc().timestamp());
        }
    }
    Err(Error::invalid(format!(
        "{what} '{s}' is not a date: use YYYY-MM-DD or RFC 3339"
    )))
}

/// YYYY-MM-DD of a Unix time (UTC).
pub fn date(ts: i64) -> String {
    DateTime::from_timestamp(ts, 0)
        .unwrap_or_default()
        .format("%Y-%m-%d")
        .to_string()
}

/// A plan as it is recorded on each item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Planned {
    pub owner: Option<i64>,
    pub until: Option<i64>,
    pub rotate: bool,
}

/// Checks a plan against the time and the departing person's records; the
/// store still checks that the owner is an active person.
pub fn check_plan(plan: &OffboardPlan, now: i64, departing: &[i64]) -> Result<Planned> {
    let until = match plan.action {
        OffboardAction::Keep => {
            let u = plan.until.as_deref().ok_or_else(|| {
                Error::invalid("keeping an identity needs a deadline for its temporary owner")
            })?;
            let u = parse_date(u, "deadline")?;
            if u <= now {
                return Err(Error::invalid(
                    "the temporary owner's deadline must be in the future",
                ));
            }
            Some(u)
        }
        OffboardAction::Transfer | OffboardAction::Retire => None,
    };
    let owner = match plan.action {
        OffboardAction::Retire => None,
        OffboardAction::Transfer | OffboardAction::Keep => {
            let o = plan.owner.ok_or_else(|| {
                Error::invalid(if plan.action == OffboardAction::Transfer {
                    "a transfer needs the new owner"
                } else {
                    "keeping an identity needs a temporary owner"
                })
            })?;
            if departing.contains(&o) {
                return Err(Error::invalid(
                    "the new owner cannot be the departing person",
                ));
            }
            Some(o)
        }
    };
    Ok(Planned {
        owner,
        until,
        rotate: plan.rotate && plan.action == OffboardAction::Transfer,
    })
}

/// Checks that a planned item is one of the case's and not yet applied.
/// `found` is the item's case and whether it was applied, `None` when there
/// is no such item.
pub fn check_item(item: i64, case: i64, found: Option<(i64, bool)>) -> Result<()> {
    match found {
        None => Err(Error::not_found(format!(
            "no offboarding item with id {item}"
        ))),
        Some((c, _)) if c != case => Err(Error::invalid(format!(
            "item {item} belongs to case {c}, not {case}"
        ))),
        Some((_, true)) => Err(Error::invalid(format!("item {item} is already applied"))),
        Some((_, false)) => Ok(()),
    }
}

/// A credential of the identity, as a task names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub kind: String,
    pub display_name: String,
}

/// One planned item about to be applied.
#[derive(Debug, Clone, PartialEq)]
pub struct ApplyFacts<'a> {
    pub case: i64,
    pub item: i64,
    /// The departing person.
    pub person_name: &'a str,
    /// The identity and its source.
    pub name: &'a str,
    pub source: &'a str,
    pub action: OffboardAction,
    /// The planned owner and their name.
    pub owner: Option<(i64, &'a str)>,
    pub until: Option<i64>,
    pub rotate: bool,
    /// The identity's credentials; read only when [`needs_credentials`].
    pub credentials: &'a [Credential],
}

/// Whether applying the item needs the identity's credentials.
pub fn needs_credentials(action: OffboardAction, rotate: bool) -> bool {
    action == OffboardAction::Retire || rotate
}

/// The Custodian-held owner an item sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnerChange {
    pub owner: i64,
    /// `transfer` or `temporary` (the `owner_overrides` kind).
    pub kind: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedTask {
    pub kind: TaskKind,
    pub target: String,
    pub new_owner: Option<i64>,
}

/// What applying one item writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemEffects {
    pub owner: Option<OwnerChange>,
    /// Why (the override's reason).
    pub reason: String,
    /// The identity's timeline entry.
    pub event_kind: &'static str,
    pub event_detail: String,
    /// In the order they are created.
    pub tasks: Vec<PlannedTask>,
}

/// The effects of applying one planned item.
pub fn apply_item(f: &ApplyFacts<'_>) -> Result<ItemEffects> {
    let reason = format!("offboarding of {} (case {})", f.person_name, f.case);
    let (name, person) = (f.name, f.person_name);
    let task = |kind, target: String, new_owner| PlannedTask {
        kind,
        target,
        new_owner,
    };
    match f.action {
        OffboardAction::Transfer | OffboardAction::Keep => {
            let Some((o, owner_name)) = f.owner else {
                return Err(Error::internal(format!(
                    "item {} is planned without an owner",
                    f.item
                )));
            };
            let transfer = f.action == OffboardAction::Transfer;
            let event_detail = match f.until {
                Some(u) => format!("temporary owner {owner_name} until {} ({reason})", date(u)),
                None => format!("owner {person} -> {owner_name} ({reason})"),
            };
            let mut tasks = vec![task(
                TaskKind::TransferOwner,
                format!("{name}: set the owner to {owner_name} in {}", f.source),
                Some(o),
            )];
            if f.rotate {
                tasks.extend(
                    f.credentials
                        .iter()
                        .filter(|c| SECRET_KINDS.contains(&c.kind.as_str()))
                        .map(|c| {
                            task(
                                TaskKind::RotateCredential,
                                format!(
                                    "{name}: rotate {} {} ({person} could know it)",
                                    c.kind, c.display_name
                                ),
                                None,
                            )
                        }),
                );
            }
            Ok(ItemEffects {
                owner: Some(OwnerChange {
                    owner: o,
                    kind: if transfer { "transfer" } else { "temporary" },
                }),
                event_kind: if transfer {
                    "transferred"
                } else {
                    "temporary_owner"
                },
                event_detail,
                reason,
                tasks,
            })
        }
        OffboardAction::Retire => {
            let mut tasks = vec![task(
                TaskKind::DisableIdentity,
                format!("{name}: disable in {}", f.source),
                None,
            )];
            tasks.extend(f.credentials.iter().map(|c| {
                task(
                    TaskKind::RevokeCredential,
                    format!("{name}: revoke {} {}", c.kind, c.display_name),
                    None,
                )
            }));
            Ok(ItemEffects {
                owner: None,
                event_kind: "retired",
                event_detail: reason.clone(),
                reason,
                tasks,
            })
        }
    }
}

/// A review item the departing person still holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingReview {
    /// The identity's new owner when this apply handed it over.
    pub new_owner: Option<i64>,
    pub builder: Option<i64>,
    pub fallback: i64,
    pub campaign_owner: i64,
}

/// Who reviews it now, and as what.
pub fn review_target(r: &PendingReview, departing: &[i64]) -> (i64, &'static str) {
    match r.new_owner {
        Some(o) if Some(o) != r.builder => (o, "new owner"),
        _ if !departing.contains(&r.fallback) && Some(r.fallback) != r.builder => {
            (r.fallback, "fallback reviewer")
        }
        _ => (r.campaign_owner, "campaign owner"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const NOW: i64 = 1_790_000_000; // 2026-09-21

    fn plan(action: OffboardAction) -> OffboardPlan {
        OffboardPlan {
            items: vec![],
            action,
            owner: Some(5),
            until: Some("2027-01-31".into()),
            rotate: true,
        }
    }

    fn err(r: Result<Planned>) -> String {
        r.unwrap_err().message
    }

    #[test]
    fn dates_parse_as_days_or_rfc3339_and_print_as_days() {
        assert_eq!(parse_date("2027-01-31", "d").unwrap(), 1_801_353_600);
        assert_eq!(
            parse_date(" 2027-01-31T12:00:00+01:00 ", "d").unwrap(),
            1_801_353_600 + 11 * 3600
        );
        let e = parse_date("next week", "deadline").unwrap_err();
        assert_eq!(
            e.message,
            "deadline 'next week' is not a date: use YYYY-MM-DD or RFC 3339"
        );
        assert_eq!(date(1_801_353_600 + 86_399), "2027-01-31");
    }

    #[test]
    fn a_transfer_needs_a_new_owner_and_keeps_its_rotation() {
        let p = check_plan(&plan(OffboardAction::Transfer), NOW, &[1, 2]).unwrap();
        assert_eq!(
            p,
            Planned {
                owner: Some(5),
                until: None,
                rotate: true
            }
        );
        let mut t = plan(OffboardAction::Transfer);
        t.owner = None;
        assert_eq!(
            err(check_plan(&t, NOW, &[1])),
            "a transfer needs the new owner"
        );
    }

    #[test]
    fn keeping_needs_a_temporary_owner_and_a_future_deadline() {
        let p = check_plan(&plan(OffboardAction::Keep), NOW, &[1]).unwrap();
        assert_eq!(
            p,
            Planned {
                owner: Some(5),
                until: Some(1_801_353_600),
                rotate: false
            }
        );
        let mut k = plan(OffboardAction::Keep);
        k.until = None;
        assert!(err(check_plan(&k, NOW, &[1])).contains("needs a deadline"));
        k.until = Some("2020-01-01".into());
        assert_eq!(
            err(check_plan(&k, NOW, &[1])),
            "the temporary owner's deadline must be in the future"
        );
        k.until = Some("soon".into());
        assert!(err(check_plan(&k, NOW, &[1])).contains("is not a date"));
        let mut k = plan(OffboardAction::Keep);
        k.owner = None;
        assert_eq!(
            err(check_plan(&k, NOW, &[1])),
            "keeping an identity needs a temporary owner"
        );
    }

    #[test]
    fn the_new_owner_is_never_the_departing_person() {
        for a in [OffboardAction::Transfer, OffboardAction::Keep] {
            let mut p = plan(a);
            p.owner = Some(2);
            assert_eq!(
                err(check_plan(&p, NOW, &[1, 2])),
                "the new owner cannot be the departing person"
            );
        }
    }

    #[test]
    fn a_retirement_has_no_owner_deadline_or_rotation() {
        let p = check_plan(&plan(OffboardAction::Retire), NOW, &[5]).unwrap();
        assert_eq!(
            p,
            Planned {
                owner: None,
                until: None,
                rotate: false
            }
        );
    }

    #[test]
    fn only_open_items_of_the_case_are_planned() {
        assert!(check_item(3, 1, Some((1, false))).is_ok());
        let e = check_item(3, 1, Some((2, false))).unwrap_err();
        assert_eq!(e.message, "item 3 belongs to case 2, not 1");
        let e = check_item(3, 1, Some((1, true))).unwrap_err();
        assert_eq!(e.message, "item 3 is already applied");
        let e = check_item(3, 1, None).unwrap_err();
        assert_eq!(e.code, crate::error::ErrorCode::NotFound);
    }

    fn creds() -> Vec<Credential> {
        [
            ("client_secret", "prod"),
            ("certificate", "mtls"),
            ("access_key", "AKIA1"),
        ]
        .iter()
        .map(|(k, d)| Credential {
            kind: (*k).into(),
            display_name: (*d).into(),
        })
        .collect()
    }

    fn facts<'a>(action: OffboardAction, credentials: &'a [Credential]) -> ApplyFacts<'a> {
        ApplyFacts {
            case: 9,
            item: 3,
            person_name: "Priya",
            name: "bot",
            source: "Entra",
            action,
            owner: Some((5, "Hiro")),
            until: None,
            rotate: false,
            credentials,
        }
    }

    fn targets(e: &ItemEffects) -> Vec<(TaskKind, &str)> {
        e.tasks
            .iter()
            .map(|t| (t.kind, t.target.as_str()))
            .collect()
    }

    #[test]
    fn a_transfer_sets_the_owner_and_asks_the_source() {
        let e = apply_item(&facts(OffboardAction::Transfer, &[])).unwrap();
        assert_eq!(
            e.owner,
            Some(OwnerChange {
                owner: 5,
                kind: "transfer"
            })
        );
        assert_eq!(e.event_kind, "transferred");
        assert_eq!(
            e.event_detail,
            "owner Priya -> Hiro (offboarding of Priya (case 9))"
        );
        assert_eq!(e.reason, "offboarding of Priya (case 9)");
        assert_eq!(
            targets(&e),
            [(
                TaskKind::TransferOwner,
                "bot: set the owner to Hiro in Entra"
            )]
        );
        assert_eq!(e.tasks[0].new_owner, Some(5));
    }

    #[test]
    fn rotating_on_transfer_asks_to_rotate_only_the_secrets() {
        let c = creds();
        let mut f = facts(OffboardAction::Transfer, &c);
        // Without rotation the credentials are not touched.
        assert_eq!(apply_item(&f).unwrap().tasks.len(), 1);
        f.rotate = true;
        let e = apply_item(&f).unwrap();
        assert_eq!(
            targets(&e)[1..],
            [
                (
                    TaskKind::RotateCredential,
                    "bot: rotate client_secret prod (Priya could know it)"
                ),
                (
                    TaskKind::RotateCredential,
                    "bot: rotate access_key AKIA1 (Priya could know it)"
                ),
            ]
        );
        assert!(e.tasks[1..].iter().all(|t| t.new_owner.is_none()));
        assert!(needs_credentials(OffboardAction::Transfer, true));
        assert!(!needs_credentials(OffboardAction::Transfer, false));
        assert!(!needs_credentials(OffboardAction::Keep, false));
    }

    #[test]
    fn keeping_sets_a_temporary_owner_until_the_deadline() {
        let mut f = facts(OffboardAction::Keep, &[]);
        f.until = Some(1_801_353_600);
        let e = apply_item(&f).unwrap();
        assert_eq!(
            e.owner,
            Some(OwnerChange {
                owner: 5,
                kind: "temporary"
            })
        );
        assert_eq!(e.event_kind, "temporary_owner");
        assert_eq!(
            e.event_detail,
            "temporary owner Hiro until 2027-01-31 (offboarding of Priya (case 9))"
        );
        assert_eq!(
            targets(&e),
            [(
                TaskKind::TransferOwner,
                "bot: set the owner to Hiro in Entra"
            )]
        );
    }

    #[test]
    fn an_ownership_change_without_an_owner_is_an_internal_error() {
        for a in [OffboardAction::Transfer, OffboardAction::Keep] {
            let mut f = facts(a, &[]);
            f.owner = None;
            let e = apply_item(&f).unwrap_err();
            assert_eq!(e.code, crate::error::ErrorCode::Internal);
        }
    }

    #[test]
    fn a_retirement_disables_and_revokes_every_credential() {
        let c = creds();
        let e = apply_item(&facts(OffboardAction::Retire, &c)).unwrap();
        assert_eq!(e.owner, None);
        assert_eq!(e.event_kind, "retired");
        assert_eq!(e.event_detail, "offboarding of Priya (case 9)");
        assert_eq!(
            targets(&e),
            [
                (TaskKind::DisableIdentity, "bot: disable in Entra"),
                (TaskKind::RevokeCredential, "bot: revoke client_secret prod"),
                (TaskKind::RevokeCredential, "bot: revoke certificate mtls"),
                (TaskKind::RevokeCredential, "bot: revoke access_key AKIA1"),
            ]
        );
        assert!(e.tasks.iter().all(|t| t.new_owner.is_none()));
        assert!(needs_credentials(OffboardAction::Retire, false));
    }

    #[test]
    fn pending_reviews_go_to_the_new_owner_then_the_fallback_then_the_campaign_owner() {
        let r = PendingReview {
            new_owner: Some(5),
            builder: None,
            fallback: 6,
            campaign_owner: 7,
        };
        assert_eq!(review_target(&r, &[1]), (5, "new owner"));
        // The new owner built it: no self-review.
        let built = PendingReview {
            builder: Some(5),
            ..r
        };
        assert_eq!(review_target(&built, &[1]), (6, "fallback reviewer"));
        let kept = PendingReview {
            new_owner: None,
            ..r
        };
        assert_eq!(review_target(&kept, &[1]), (6, "fallback reviewer"));
        // The fallback is the departing person, or built it.
        assert_eq!(review_target(&kept, &[1, 6]), (7, "campaign owner"));
        let by_fallback = PendingReview {
            builder: Some(6),
            ..kept
        };
        assert_eq!(review_target(&by_fallback, &[1]), (7, "campaign owner"));
    }
}
