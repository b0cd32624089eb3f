//! The inventory queries the UI can issue, as a matrix: every sort key both
//! ways, each under the filters a person combines (kind, status, agent
//! class, source, owner state, findings, search), and a deep page of each
//! sort. `CUSTODIAN_BENCH_EXPLAIN=1` prints each query's plan.

use custodian::model::{AgentClass, IdentityKind, IdentityStatus};
use custodian::views::{InventoryQuery, OwnerState, SortKey};

/// The six queries every size reports by name: the first page, a filtered
/// sort, two searches, a denormalised sort and a deep page.
pub fn standard(identities: usize) -> Vec<(&'static str, InventoryQuery)> {
    vec![
        ("first page, sort name", InventoryQuery::default()),
        (
            "kind=ai_agent + active + has findings, sort risk desc",
            InventoryQuery {
                kinds: vec![IdentityKind::AiAgent],
                statuses: vec![IdentityStatus::Active],
                has_findings: Some(true),
                sort: SortKey::Risk,
                descending: true,
                ..Default::default()
            },
        ),
        (
            "search 'invoice', sort name",
            InventoryQuery {
                search: "invoice".into(),
                ..Default::default()
            },
        ),
        (
            "search 'fin' + kind=service_account + owner departed, sort oldest credential",
            InventoryQuery {
                search: "fin".into(),
                kinds: vec![IdentityKind::ServiceAccount],
                owner_state: Some(OwnerState::Departed),
                sort: SortKey::OldestCredential,
                ..Default::default()
            },
        ),
        (
            "sort owner desc",
            InventoryQuery {
                sort: SortKey::Owner,
                descending: true,
                ..Default::default()
            },
        ),
        (
            "deep page: offset n/2, sort last used",
            InventoryQuery {
                sort: SortKey::LastUsed,
                offset: (identities as u32 / 2),
                ..Default::default()
            },
        ),
    ]
}

pub const SORTS: [(SortKey, &str); 11] = [
    (SortKey::Name, "name"),
    (SortKey::Kind, "kind"),
    (SortKey::Status, "status"),
    (SortKey::Owner, "owner"),
    (SortKey::Source, "source"),
    (SortKey::Credentials, "credentials"),
    (SortKey::OldestCredential, "oldest credential"),
    (SortKey::Grants, "grants"),
    (SortKey::Risk, "risk"),
    (SortKey::LastUsed, "last used"),
    (SortKey::Created, "created"),
];

/// The filters the matrix puts under every sort: none, and each kind of
/// filter the inventory offers, alone and combined.
fn filters() -> Vec<(&'static str, InventoryQuery)> {
    let q = InventoryQuery::default;
    vec![
        ("no filter", q()),
        (
            "kind=service_account",
            InventoryQuery {
                kinds: vec![IdentityKind::ServiceAccount],
                ..q()
            },
        ),
        (
            "status=disabled",
            InventoryQuery {
                statuses: vec![IdentityStatus::Disabled],
                ..q()
            },
        ),
        (
            "class=digital_worker",
            InventoryQuery {
                classes: vec![AgentClass::DigitalWorker],
                ..q()
            },
        ),
        (
            "source=2",
            InventoryQuery {
                sources: vec![2],
                ..q()
            },
        ),
        (
            "owner departed",
            InventoryQuery {
                owner_state: Some(OwnerState::Departed),
                ..q()
            },
        ),
        (
            "no owner",
            InventoryQuery {
                owner_state: Some(OwnerState::None),
                ..q()
            },
        ),
        (
            "has findings",
            InventoryQuery {
                has_findings: Some(true),
                ..q()
            },
        ),
        (
            "kind=ai_agent + active + has findings",
            InventoryQuery {
                kinds: vec![IdentityKind::AiAgent],
                statuses: vec![IdentityStatus::Active],
                has_findings: Some(true),
                ..q()
            },
        ),
        (
            "search 'prod'",
            InventoryQuery {
                search: "prod".into(),
                ..q()
            },
        ),
        (
            "search 'fin' + kind=service_account + owner departed",
            InventoryQuery {
                search: "fin".into(),
                kinds: vec![IdentityKind::ServiceAccount],
                owner_state: Some(OwnerState::Departed),
                ..q()
            },
        ),
    ]
}

/// Every sort both ways without a filter, every sort (ascending) under each
/// filter, and a deep page (offset n/2) of every sort.
pub fn matrix(identities: usize) -> Vec<(String, InventoryQuery)> {
    let mut out = vec![];
    for (sort, sname) in SORTS {
        for (fname, f) in filters() {
            for descending in [false, true] {
                if descending && fname != "no filter" {
                    continue;
                }
                out.push((
                    format!(
                        "{fname}, sort {sname}{}",
                        if descending { " desc" } else { "" }
                    ),
                    InventoryQuery {
                        sort,
                        descending,
                        ..f.clone()
                    },
                ));
            }
        }
        out.push((
            format!("deep page n/2, sort {sname}"),
            InventoryQuery {
                sort,
                offset: identities as u32 / 2,
                ..Default::default()
            },
        ));
    }
    out
}
