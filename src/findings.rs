//! Posture checks, mapped to the OWASP Non-Human Identities Top 10 (2025).
//!
//! This is the catalogue (what each check means, its OWASP category,
//! severity and fix). How a check is evaluated, one SQL query per check id,
//! lives with the rest of the SQL in `store/finding_queries.rs`.

use crate::model::Severity;
use crate::views::{FindingCatalogue, FindingCheckView, OwaspCategoryView};

/// A posture check.
pub struct Check {
    /// Stable identifier, used in exports and suppressions.
    pub id: &'static str,
    /// OWASP NHI Top 10 (2025) category, e.g. `NHI7`.
    pub owasp: &'static str,
    pub severity: Severity,
    pub title: &'static str,
    pub fix: &'static str,
}

/// The OWASP NHI Top 10 (2025) category titles.
pub const OWASP_NHI: &[(&str, &str)] = &[
    ("NHI1", "Improper Offboarding"),
    ("NHI2", "Secret Leakage"),
    ("NHI3", "Vulnerable Third-Party NHI"),
    ("NHI4", "Insecure Authentication"),
    ("NHI5", "Overprivileged NHI"),
    ("NHI6", "Insecure Cloud Deployment Configurations"),
    ("NHI7", "Long-Lived Secrets"),
    ("NHI8", "Environment Isolation"),
    ("NHI9", "NHI Reuse"),
    ("NHI10", "Human Use of NHI"),
];

pub const CHECKS: &[Check] = &[
    Check {
        id: "owner-departed",
        owasp: "NHI1",
        severity: Severity::High,
        title: "Orphaned: owner has departed",
        fix: "Transfer ownership to an active person, or retire the identity (Offboarding).",
    },
    Check {
        id: "no-owner",
        owasp: "NHI1",
        severity: Severity::High,
        title: "Orphaned: no owner",
        fix: "Assign an accountable owner, or register the identity with one.",
    },
    Check {
        id: "unregistered-agent",
        owasp: "NHI1",
        severity: Severity::Medium,
        title: "AI agent discovered but not registered",
        fix: "Register the agent: purpose, class, owner, intended blast radius, review interval.",
    },
    Check {
        id: "secret-never-expires",
        owasp: "NHI7",
        severity: Severity::Medium,
        title: "Secret never expires",
        fix: "Set an expiry on the secret, or move to a federated or short-lived credential.",
    },
    Check {
        id: "secret-not-rotated",
        owasp: "NHI7",
        severity: Severity::High,
        title: "Secret not rotated in over a year",
        fix: "Rotate the secret and automate rotation.",
    },
    Check {
        id: "secret-expired",
        owasp: "NHI7",
        severity: Severity::Low,
        title: "Expired secret still attached",
        fix: "Delete expired secrets so they cannot be revived or confused with live ones.",
    },
    Check {
        id: "stale-credential",
        owasp: "NHI7",
        severity: Severity::Low,
        title: "Credential unused for 90 days",
        fix: "Revoke credentials that are not used.",
    },
    Check {
        id: "admin-on-critical",
        owasp: "NHI5",
        severity: Severity::Critical,
        title: "Admin rights on a critical resource",
        fix: "Reduce to the least privilege the purpose needs.",
    },
    Check {
        id: "unused-grants",
        owasp: "NHI5",
        severity: Severity::Low,
        title: "Grants unused for 90 days",
        fix: "Revoke grants the identity does not use.",
    },
    Check {
        id: "cross-environment",
        owasp: "NHI8",
        severity: Severity::Medium,
        title: "Reaches production and non-production",
        fix: "Use a separate identity per environment.",
    },
    Check {
        id: "temporary-owner-expired",
        owasp: "NHI1",
        severity: Severity::High,
        title: "Orphaned: temporary owner's deadline passed",
        fix: "Transfer the identity to a permanent owner, or retire it.",
    },
    Check {
        id: "access-changed-since-review",
        owasp: "NHI5",
        severity: Severity::Medium,
        title: "Gained access since its last review",
        fix: "Review the new permissions (a campaign, or confirm on the identity's page).",
    },
    Check {
        id: "drift",
        owasp: "NHI5",
        severity: Severity::Medium,
        title: "Drifted from its usage baseline",
        fix: "Confirm the new usage (it becomes the baseline) or remove the access it should not have.",
    },
    Check {
        id: "review-overdue",
        owasp: "NHI1",
        severity: Severity::Low,
        title: "Review overdue",
        fix: "Include it in an access-review campaign.",
    },
    Check {
        id: "human-account-as-service",
        owasp: "NHI10",
        severity: Severity::High,
        title: "A person's account is used as a service",
        fix: "Run the service under its own (group) managed service account, then remove the service from the person's account.",
    },
];

/// Title of an OWASP NHI category, e.g. `NHI7` -> `Long-Lived Secrets`.
pub fn owasp_title(code: &str) -> &'static str {
    OWASP_NHI
        .iter()
        .find(|(c, _)| *c == code)
        .map_or("", |(_, t)| t)
}

/// The checks and categories as the UI and `--json` show them.
pub fn catalogue() -> FindingCatalogue {
    FindingCatalogue {
        categories: OWASP_NHI
            .iter()
            .map(|(code, title)| OwaspCategoryView {
                code: (*code).to_string(),
                title: (*title).to_string(),
            })
            .collect(),
        checks: CHECKS
            .iter()
            .map(|c| FindingCheckView {
                id: c.id.to_string(),
                owasp: c.owasp.to_string(),
                owasp_title: owasp_title(c.owasp).to_string(),
                severity: c.severity,
                title: c.title.to_string(),
                fix: c.fix.to_string(),
            })
            .collect(),
    }
}

/// How long the findings of identities a sync did not change may wait for
/// the clock. A sync re-evaluates the identities it wrote (and those whose
/// owner, account or resources it wrote); what the clock alone turns into a
/// finding (a secret expiring, a review falling due) is caught by the first
/// sync after this much time, which evaluates every identity.
pub const FULL_EVALUATION_EVERY_S: i64 = 86_400;

/// What the store keeps after evaluating every identity: when, and against
/// which catalogue (a catalogue that gained or lost a check evaluates all).
pub fn full_evaluation_stamp(at: i64) -> String {
    format!("{at} {}", catalogue_signature())
}

/// The check ids in catalogue order, comma-separated.
fn catalogue_signature() -> String {
    let ids: Vec<&str> = CHECKS.iter().map(|c| c.id).collect();
    ids.join(",")
}

/// True when a sync at `now` must evaluate every identity: never done,
/// unreadable, another catalogue, a clock that went back, or older than
/// [`FULL_EVALUATION_EVERY_S`].
pub fn full_evaluation_due(stamp: Option<&str>, now: i64) -> bool {
    let Some((at, catalogue)) = stamp.and_then(|s| s.split_once(' ')) else {
        return true;
    };
    let Ok(at) = at.parse::<i64>() else {
        return true;
    };
    if catalogue != catalogue_signature() {
        return true;
    }
    now < at || now - at >= FULL_EVALUATION_EVERY_S
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_identity_is_evaluated_when_the_last_full_pass_is_missing_old_or_for_another_catalogue()
    {
        use super::{full_evaluation_due, full_evaluation_stamp, FULL_EVALUATION_EVERY_S};
        let at = 1_700_000_000;
        let stamp = full_evaluation_stamp(at);
        assert!(full_evaluation_due(None, at));
        assert!(!full_evaluation_due(Some(&stamp), at));
        assert!(!full_evaluation_due(
            Some(&stamp),
            at + FULL_EVALUATION_EVERY_S - 1
        ));
        assert!(full_evaluation_due(
            Some(&stamp),
            at + FULL_EVALUATION_EVERY_S
        ));
        assert!(
            full_evaluation_due(Some(&stamp), at - 1),
            "the clock went back"
        );
        assert!(full_evaluation_due(
            Some(&format!("{at} owner-departed")),
            at
        ));
        assert!(full_evaluation_due(Some("garbage"), at));
        assert!(full_evaluation_due(Some(&format!("x{}", &stamp[1..])), at));
    }

    use super::*;

    #[test]
    fn every_check_has_a_unique_id_and_a_known_category() {
        let mut ids: Vec<&str> = CHECKS.iter().map(|c| c.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), CHECKS.len(), "check ids are not unique");
        for c in CHECKS {
            assert!(
                !owasp_title(c.owasp).is_empty(),
                "{} names unknown category {}",
                c.id,
                c.owasp
            );
            assert!(
                !c.title.is_empty() && !c.fix.is_empty(),
                "{} lacks a title or fix",
                c.id
            );
        }
    }

    #[test]
    fn the_catalogue_lists_every_check_and_category_with_titles() {
        let cat = catalogue();
        assert_eq!(cat.categories.len(), 10);
        assert_eq!(cat.categories[6].code, "NHI7");
        assert_eq!(cat.categories[6].title, "Long-Lived Secrets");
        assert_eq!(cat.checks.len(), CHECKS.len());
        let orphan = cat.checks.iter().find(|c| c.id == "owner-departed");
        assert_eq!(
            orphan.map(|c| (c.owasp.as_str(), c.owasp_title.as_str(), c.severity)),
            Some(("NHI1", "Improper Offboarding", Severity::High))
        );
    }
}
