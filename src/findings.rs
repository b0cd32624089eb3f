//! Posture checks, mapped to the OWASP Non-Human Identities Top 10 (2025).
//!
//! Each check is one SQL query over the cache that yields
//! `(identity_id, evidence)` rows; `:now` is bound to the evaluation time in
//! seconds since the epoch. Evaluating in SQL keeps a 100k-identity
//! organisation to one pass per check.

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
    pub query: &'static str,
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
        query: "SELECT i.id AS identity_id,
                       'owner ' || p.display_name || ' is ' || p.status ||
                       coalesce(' since ' || date(p.left_at, 'unixepoch'), '') AS evidence
                FROM identities i JOIN people p ON p.id = i.owner_id
                WHERE i.status = 'active' AND p.status <> 'active'",
    },
    Check {
        id: "no-owner",
        owasp: "NHI1",
        severity: Severity::High,
        title: "Orphaned: no owner",
        fix: "Assign an accountable owner, or register the identity with one.",
        query: "SELECT i.id AS identity_id, 'no owner recorded in ' || s.name AS evidence
                FROM identities i JOIN sources s ON s.id = i.source_id
                WHERE i.status = 'active' AND i.owner_id IS NULL",
    },
    Check {
        id: "unregistered-agent",
        owasp: "NHI1",
        severity: Severity::Medium,
        title: "AI agent discovered but not registered",
        fix: "Register the agent: purpose, class, owner, intended blast radius, review interval.",
        query: "SELECT i.id AS identity_id, 'discovered in ' || s.name || ', never registered' AS evidence
                FROM identities i JOIN sources s ON s.id = i.source_id
                WHERE i.kind = 'ai_agent' AND i.registered = 0 AND i.status = 'active'",
    },
    Check {
        id: "secret-never-expires",
        owasp: "NHI7",
        severity: Severity::Medium,
        title: "Secret never expires",
        fix: "Set an expiry on the secret, or move to a federated or short-lived credential.",
        query: "SELECT c.identity_id,
                       count(*) || ' secret(s) without expiry, e.g. ' || min(c.display_name) AS evidence
                FROM credentials c JOIN identities i ON i.id = c.identity_id
                WHERE c.expires_at IS NULL AND c.kind NOT IN ('federated_credential', 'certificate')
                  AND i.status = 'active'
                GROUP BY c.identity_id",
    },
    Check {
        id: "secret-not-rotated",
        owasp: "NHI7",
        severity: Severity::High,
        title: "Secret not rotated in over a year",
        fix: "Rotate the secret and automate rotation.",
        query: "SELECT c.identity_id,
                       'oldest secret last rotated ' ||
                       ((:now - min(coalesce(c.last_rotated_at, c.created_at))) / 86400) || ' days ago' AS evidence
                FROM credentials c JOIN identities i ON i.id = c.identity_id
                WHERE coalesce(c.last_rotated_at, c.created_at) < :now - 365 * 86400
                  AND c.kind <> 'federated_credential' AND i.status = 'active'
                GROUP BY c.identity_id",
    },
    Check {
        id: "secret-expired",
        owasp: "NHI7",
        severity: Severity::Low,
        title: "Expired secret still attached",
        fix: "Delete expired secrets so they cannot be revived or confused with live ones.",
        query: "SELECT c.identity_id, count(*) || ' expired secret(s) still attached' AS evidence
                FROM credentials c JOIN identities i ON i.id = c.identity_id
                WHERE c.expires_at IS NOT NULL AND c.expires_at < :now AND i.status = 'active'
                GROUP BY c.identity_id",
    },
    Check {
        id: "stale-credential",
        owasp: "NHI7",
        severity: Severity::Low,
        title: "Credential unused for 90 days",
        fix: "Revoke credentials that are not used.",
        query: "SELECT c.identity_id, count(*) || ' credential(s) unused for 90+ days' AS evidence
                FROM credentials c JOIN identities i ON i.id = c.identity_id
                WHERE coalesce(c.last_used_at, c.created_at) < :now - 90 * 86400 AND i.status = 'active'
                  AND (c.expires_at IS NULL OR c.expires_at >= :now)
                GROUP BY c.identity_id",
    },
    Check {
        id: "admin-on-critical",
        owasp: "NHI5",
        severity: Severity::Critical,
        title: "Admin rights on a critical resource",
        fix: "Reduce to the least privilege the purpose needs.",
        query: "SELECT g.identity_id, count(*) || ' admin grant(s) on critical resources, e.g. ' || min(r.name) AS evidence
                FROM grants g JOIN resources r ON r.id = g.resource_id JOIN identities i ON i.id = g.identity_id
                WHERE g.privilege = 'admin' AND r.sensitivity = 'critical' AND i.status = 'active'
                GROUP BY g.identity_id",
    },
    Check {
        id: "unused-grants",
        owasp: "NHI5",
        severity: Severity::Low,
        title: "Grants unused for 90 days",
        fix: "Revoke grants the identity does not use.",
        query: "SELECT g.identity_id, count(*) || ' grant(s) unused for 90+ days' AS evidence
                FROM grants g JOIN identities i ON i.id = g.identity_id
                WHERE (g.last_used_at IS NULL OR g.last_used_at < :now - 90 * 86400) AND i.status = 'active'
                GROUP BY g.identity_id",
    },
    Check {
        id: "cross-environment",
        owasp: "NHI8",
        severity: Severity::Medium,
        title: "Reaches production and non-production",
        fix: "Use a separate identity per environment.",
        query: "SELECT g.identity_id, 'grants in ' || group_concat(DISTINCT r.environment) AS evidence
                FROM grants g JOIN resources r ON r.id = g.resource_id JOIN identities i ON i.id = g.identity_id
                WHERE r.environment <> '' AND i.status = 'active'
                GROUP BY g.identity_id
                HAVING count(DISTINCT CASE WHEN r.environment = 'production' THEN 1 ELSE 0 END) > 1",
    },
    Check {
        id: "temporary-owner-expired",
        owasp: "NHI1",
        severity: Severity::High,
        title: "Orphaned: temporary owner's deadline passed",
        fix: "Transfer the identity to a permanent owner, or retire it.",
        query: "SELECT o.identity_id AS identity_id, 'kept by ' || p.display_name || ' until ' || date(o.until, 'unixepoch') AS evidence
                FROM owner_overrides o JOIN people p ON p.id = o.owner_id JOIN identities i ON i.id = o.identity_id
                WHERE o.kind = 'temporary' AND o.until < :now AND i.status = 'active'",
    },
    Check {
        id: "access-changed-since-review",
        owasp: "NHI5",
        severity: Severity::Medium,
        title: "Gained access since its last review",
        fix: "Review the new permissions (a campaign, or confirm on the identity's page).",
        query: "SELECT i.id AS identity_id, i.review_flag || ' on ' || date(i.review_flag_at, 'unixepoch') AS evidence
                FROM identities i WHERE i.review_flag IS NOT NULL AND i.status = 'active'",
    },
    Check {
        id: "drift",
        owasp: "NHI5",
        severity: Severity::Medium,
        title: "Drifted from its usage baseline",
        fix: "Confirm the new usage (it becomes the baseline) or remove the access it should not have.",
        query: "SELECT i.id AS identity_id, i.drift AS evidence FROM identities i WHERE i.drift IS NOT NULL AND i.status = 'active'",
    },
    Check {
        id: "review-overdue",
        owasp: "NHI1",
        severity: Severity::Low,
        title: "Review overdue",
        fix: "Include it in an access-review campaign.",
        query: "SELECT i.id AS identity_id,
                       CASE WHEN i.last_reviewed_at IS NULL THEN 'never reviewed; interval ' || i.review_interval_days || ' days'
                            ELSE 'last reviewed ' || date(i.last_reviewed_at, 'unixepoch') || '; interval ' || i.review_interval_days || ' days' END AS evidence
                FROM identities i
                WHERE i.status = 'active' AND i.review_interval_days IS NOT NULL
                  AND coalesce(i.last_reviewed_at, i.created_at) < :now - i.review_interval_days * 86400",
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

#[cfg(test)]
mod tests {
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
