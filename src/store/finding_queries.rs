//! How each posture check of [`crate::findings::CHECKS`] is evaluated: one
//! SQL query over the cache per check id, yielding `(identity_id, evidence)`
//! rows; `:now` is bound to the evaluation time in seconds since the epoch.
//! Evaluating in SQL keeps a 100k-identity organisation to one pass per
//! check. Every check selects from `identities i` (or a table joined to it)
//! with one top-level `WHERE`, which the scoped refresh narrows.

/// `(check id, query)`, one for every check of the catalogue (a test holds
/// the two lists together).
pub(crate) const QUERIES: &[(&str, &str)] = &[
    (
        "owner-departed",
        "SELECT i.id AS identity_id,
                       'owner ' || p.display_name || ' is ' || p.status ||
                       coalesce(' since ' || date(p.left_at, 'unixepoch'), '') AS evidence
                FROM identities i JOIN people p ON p.id = i.owner_id
                WHERE i.status = 'active' AND p.status <> 'active'",
    ),
    (
        "no-owner",
        "SELECT i.id AS identity_id, 'no owner recorded in ' || s.name AS evidence
                FROM identities i JOIN sources s ON s.id = i.source_id
                WHERE i.status = 'active' AND i.owner_id IS NULL",
    ),
    (
        "unregistered-agent",
        "SELECT i.id AS identity_id, 'discovered in ' || s.name || ', never registered' AS evidence
                FROM identities i JOIN sources s ON s.id = i.source_id
                WHERE i.kind = 'ai_agent' AND i.registered = 0 AND i.status = 'active'",
    ),
    (
        "secret-never-expires",
        "SELECT c.identity_id,
                       count(*) || ' secret(s) without expiry, e.g. ' || min(c.display_name) AS evidence
                FROM credentials c JOIN identities i ON i.id = c.identity_id
                WHERE c.expires_at IS NULL AND c.kind NOT IN ('federated_credential', 'certificate')
                  AND i.status = 'active'
                GROUP BY c.identity_id",
    ),
    (
        "secret-not-rotated",
        "SELECT c.identity_id,
                       'oldest secret last rotated ' ||
                       ((:now - min(coalesce(c.last_rotated_at, c.created_at))) / 86400) || ' days ago' AS evidence
                FROM credentials c JOIN identities i ON i.id = c.identity_id
                WHERE coalesce(c.last_rotated_at, c.created_at) < :now - 365 * 86400
                  AND c.kind <> 'federated_credential' AND i.status = 'active'
                GROUP BY c.identity_id",
    ),
    (
        "secret-expired",
        "SELECT c.identity_id, count(*) || ' expired secret(s) still attached' AS evidence
                FROM credentials c JOIN identities i ON i.id = c.identity_id
                WHERE c.expires_at IS NOT NULL AND c.expires_at < :now AND i.status = 'active'
                GROUP BY c.identity_id",
    ),
    (
        "stale-credential",
        "SELECT c.identity_id, count(*) || ' credential(s) unused for 90+ days' AS evidence
                FROM credentials c JOIN identities i ON i.id = c.identity_id
                WHERE coalesce(c.last_used_at, c.created_at) < :now - 90 * 86400 AND i.status = 'active'
                  AND (c.expires_at IS NULL OR c.expires_at >= :now)
                GROUP BY c.identity_id",
    ),
    (
        "admin-on-critical",
        "SELECT g.identity_id, count(*) || ' admin grant(s) on critical resources, e.g. ' || min(r.name) AS evidence
                FROM grants g JOIN resources r ON r.id = g.resource_id JOIN identities i ON i.id = g.identity_id
                WHERE g.privilege = 'admin' AND r.sensitivity = 'critical' AND i.status = 'active'
                GROUP BY g.identity_id",
    ),
    (
        "unused-grants",
        "SELECT g.identity_id, count(*) || ' grant(s) unused for 90+ days' AS evidence
                FROM grants g JOIN identities i ON i.id = g.identity_id
                WHERE (g.last_used_at IS NULL OR g.last_used_at < :now - 90 * 86400) AND i.status = 'active'
                GROUP BY g.identity_id",
    ),
    (
        "cross-environment",
        "SELECT g.identity_id, 'grants in ' || group_concat(DISTINCT r.environment) AS evidence
                FROM grants g JOIN resources r ON r.id = g.resource_id JOIN identities i ON i.id = g.identity_id
                WHERE r.environment <> '' AND i.status = 'active'
                GROUP BY g.identity_id
                HAVING count(DISTINCT CASE WHEN r.environment = 'production' THEN 1 ELSE 0 END) > 1",
    ),
    (
        "temporary-owner-expired",
        "SELECT o.identity_id AS identity_id, 'kept by ' || p.display_name || ' until ' || date(o.until, 'unixepoch') AS evidence
                FROM owner_overrides o JOIN people p ON p.id = o.owner_id JOIN identities i ON i.id = o.identity_id
                WHERE o.kind = 'temporary' AND o.until < :now AND i.status = 'active'",
    ),
    (
        "access-changed-since-review",
        "SELECT i.id AS identity_id, i.review_flag || ' on ' || date(i.review_flag_at, 'unixepoch') AS evidence
                FROM identities i WHERE i.review_flag IS NOT NULL AND i.status = 'active'",
    ),
    (
        "drift",
        "SELECT i.id AS identity_id, i.drift AS evidence FROM identities i WHERE i.drift IS NOT NULL AND i.status = 'active'",
    ),
    (
        "review-overdue",
        "SELECT i.id AS identity_id,
                       CASE WHEN i.last_reviewed_at IS NULL THEN 'never reviewed; interval ' || i.review_interval_days || ' days'
                            ELSE 'last reviewed ' || date(i.last_reviewed_at, 'unixepoch') || '; interval ' || i.review_interval_days || ' days' END AS evidence
                FROM identities i
                WHERE i.status = 'active' AND i.review_interval_days IS NOT NULL
                  AND coalesce(i.last_reviewed_at, i.created_at) < :now - i.review_interval_days * 86400",
    ),
    (
        "human-account-as-service",
        // The same account (one external id in one source) is both a
        // person and an identity: a person's own login runs a service.
        "SELECT i.id AS identity_id,
                       'the account of ' || p.display_name || ' is also ' || i.name || ' in ' || s.name AS evidence
                FROM identities i
                JOIN people p ON p.source_id = i.source_id AND p.external_id = i.external_id
                JOIN sources s ON s.id = i.source_id
                WHERE i.status = 'active'",
    ),
];

/// The query of one check.
pub(crate) fn query(check: &str) -> Option<&'static str> {
    QUERIES.iter().find(|(id, _)| *id == check).map(|(_, q)| *q)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::CHECKS;

    #[test]
    fn every_check_has_exactly_one_query_and_every_query_a_check() {
        for c in CHECKS {
            let n = QUERIES.iter().filter(|(id, _)| *id == c.id).count();
            assert_eq!(n, 1, "check {} has {n} queries", c.id);
        }
        for (id, _) in QUERIES {
            assert!(
                CHECKS.iter().any(|c| c.id == *id),
                "query for unknown check {id}"
            );
        }
        assert_eq!(QUERIES.len(), CHECKS.len());
        assert!(query("no-owner").is_some_and(|q| q.contains("owner_id IS NULL")));
        assert!(query("no-such-check").is_none());
    }
}
