//! Reading the access graph (identities, delegations and documented links,
//! resources, grants) and the facts about one identity that its
//! authorization report shows (source, owner, how ownership was set,
//! registration, certifications). The graph itself, blast radius, scoring
//! and chains are `crate::blast`.

use crate::error::{Error, Result};
use crate::model::{IdentityKind, IdentityStatus, Privilege, Sensitivity};
use crate::store::Store;

/// An identity as a node of the graph.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphIdentity {
    pub id: i64,
    pub name: String,
    pub kind: IdentityKind,
    pub status: IdentityStatus,
    pub intended_blast_radius: String,
}

/// `from` can act as or through `to`.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphEdge {
    pub from: i64,
    pub to: i64,
    /// The delegation kind as stored (`assume_role`, `invoke`, ...).
    pub kind: String,
    /// Documented by a person (`identity_links`) rather than read from a source.
    pub documented: bool,
    /// The condition the edge holds under, as the source said it (outside
    /// text); `None`: always.
    pub condition: Option<String>,
    /// Why the edge exists: the source's reason, or a documented link's note
    /// (outside text).
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GraphResource {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub sensitivity: Sensitivity,
    pub environment: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GraphGrant {
    pub identity: i64,
    pub resource: i64,
    pub permission: String,
    pub privilege: Privilege,
    pub high_consequence: bool,
    /// What the grant holds under and leaves out (outside text); `None`:
    /// it holds as it is.
    pub condition: Option<String>,
    /// Resource patterns under its resource that it does not reach.
    pub excluded: Vec<String>,
}

/// Receives the graph as it is read, so a large organisation is not held
/// twice in memory. Calls come in this order: every identity (by id), every
/// edge, every resource (by id), every grant.
pub trait AccessGraphSink {
    fn identity(&mut self, identity: GraphIdentity);
    fn edge(&mut self, edge: GraphEdge);
    fn resource(&mut self, resource: GraphResource);
    fn grant(&mut self, grant: GraphGrant);
}

/// Who an identity belongs to and how that was decided.
#[derive(Debug, Clone, PartialEq)]
pub struct IdentityProvenance {
    /// The source it was read from.
    pub source: String,
    /// Its owner's display name.
    pub owner: Option<String>,
    /// Registered (in Custodian or in its source).
    pub registered: bool,
    /// An ownership decided in Custodian: "transfer by X on DATE (reason)".
    pub owner_override: Option<String>,
    /// The newest registration in Custodian: "registered by X on DATE: detail".
    pub registration: Option<String>,
}

/// `reach(id)`: the identity `?1` and every identity its delegations and
/// documented links reach, not crossing deleted identities (as
/// `crate::blast` walks them).
const REACH: &str = "WITH RECURSIVE reach(id) AS (
    SELECT id FROM identities WHERE id = ?1
    UNION
    SELECT e.to_id FROM reach r
    JOIN (SELECT from_id, to_id FROM delegations UNION ALL SELECT from_id, to_id FROM identity_links) e
      ON e.from_id = r.id
    JOIN identities t ON t.id = e.to_id AND t.status <> 'deleted')";

impl Store {
    /// Streams the access graph into `sink` (four scans). Edges and grants
    /// come in the order they were stored, whichever part is read, so a
    /// walk meets them in the same order.
    pub fn read_access_graph(&self, sink: &mut impl AccessGraphSink) -> Result<()> {
        self.read_graph_part(sink, "", &[])
    }

    /// Streams the part of the access graph that `start` reaches into
    /// `sink`: the identities its delegation chains reach (not crossing
    /// deleted ones), their edges and grants, the resources of those grants
    /// and the other AWS resources of their accounts (what a wildcard
    /// grant covers). Enough for that identity's blast radius, read through
    /// the indexes rather than in whole-table scans.
    pub fn read_access_graph_from(
        &self,
        start: i64,
        sink: &mut impl AccessGraphSink,
    ) -> Result<()> {
        self.read_graph_part(sink, REACH, &[start])
    }

    /// The four scans, each limited by `reach` (a `WITH` prefix defining
    /// `reach(id)` from `args`) when it is not empty.
    fn read_graph_part(
        &self,
        sink: &mut impl AccessGraphSink,
        reach: &str,
        args: &[i64],
    ) -> Result<()> {
        let part = !reach.is_empty();
        let only = |column: &str| {
            if part {
                format!("WHERE {column} IN (SELECT id FROM reach)")
            } else {
                String::new()
            }
        };
        let params = || crate::store::db::params_from_iter(args.iter());
        self.db.for_each(
            &format!(
                "{reach} SELECT id, name, kind, status, intended_blast_radius FROM identities {} ORDER BY id",
                only("id")
            ),
            params(),
            |r| {
                sink.identity(GraphIdentity {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    kind: r.get(2)?,
                    status: r.get(3)?,
                    intended_blast_radius: r.get(4)?,
                });
                Ok(())
            },
        )?;
        self.db.for_each(
            &format!(
                "{reach} SELECT from_id, to_id, kind, 0, condition, reason, id FROM delegations {w}
                 UNION ALL SELECT from_id, to_id, kind, 1, NULL, NULLIF(note, ''), id FROM identity_links {w}
                 ORDER BY 4, 7",
                w = only("from_id")
            ),
            params(),
            |r| {
                sink.edge(GraphEdge {
                    from: r.get(0)?,
                    to: r.get(1)?,
                    kind: r.get(2)?,
                    documented: r.get(3)?,
                    condition: r.get(4)?,
                    reason: r.get(5)?,
                });
                Ok(())
            },
        )?;
        let resources = if part {
            // The resources granted, and every AWS resource of an account
            // (environment) one of them is in: a wildcard's cover.
            format!(
                "{reach}, held(id) AS (SELECT resource_id FROM grants WHERE identity_id IN (SELECT id FROM reach))
                 SELECT id, name, kind, sensitivity, environment FROM resources
                 WHERE id IN (SELECT id FROM held)
                    OR (kind LIKE 'aws:%' AND environment IN (
                        SELECT environment FROM resources WHERE kind LIKE 'aws:%' AND id IN (SELECT id FROM held)))
                 ORDER BY id"
            )
        } else {
            "SELECT id, name, kind, sensitivity, environment FROM resources ORDER BY id".to_string()
        };
        self.db.for_each(&resources, params(), |r| {
            sink.resource(GraphResource {
                id: r.get(0)?,
                name: r.get(1)?,
                kind: r.get(2)?,
                sensitivity: r.get(3)?,
                environment: r.get(4)?,
            });
            Ok(())
        })?;
        self.db.for_each(
            &format!(
                "{reach} SELECT identity_id, resource_id, permission, privilege, high_consequence, condition, excluded
                 FROM grants {} ORDER BY id",
                only("identity_id")
            ),
            params(),
            |r| {
                // A list the store wrote; anything else reads as none.
                let excluded = r
                    .get::<Option<String>>(6)?
                    .and_then(|j| serde_json::from_str::<Vec<String>>(&j).ok())
                    .unwrap_or_default();
                sink.grant(GraphGrant {
                    identity: r.get(0)?,
                    resource: r.get(1)?,
                    permission: r.get(2)?,
                    privilege: r.get(3)?,
                    high_consequence: r.get(4)?,
                    condition: r.get(5)?,
                    excluded,
                });
                Ok(())
            },
        )
    }

    /// Source, owner, ownership decision and registration of an identity;
    /// `not_found` when there is no such identity.
    pub fn identity_provenance(&self, identity: i64) -> Result<IdentityProvenance> {
        let (source, owner, registered): (String, Option<String>, bool) = self
            .db
            .query_opt(
                "SELECT s.name, p.display_name, i.registered FROM identities i JOIN sources s ON s.id = i.source_id
                 LEFT JOIN people p ON p.id = i.owner_id WHERE i.id = ?1",
                [identity],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?
            .ok_or_else(|| Error::not_found(format!("no identity {identity}")))?;
        let owner_override = self.db.query_opt(
            "SELECT o.kind || ' by ' || o.set_by || ' on ' || date(o.set_at, 'unixepoch') || ' (' || o.reason || ')'
             FROM owner_overrides o WHERE o.identity_id = ?1",
            [identity],
            |r| r.get::<Option<String>>(0),
        )?;
        let registration = self.db.query_opt(
            "SELECT 'registered by ' || actor || ' on ' || date(at, 'unixepoch') || ': ' || detail FROM identity_events
             WHERE identity_id = ?1 AND kind = 'registered' ORDER BY at DESC LIMIT 1",
            [identity],
            |r| r.get::<Option<String>>(0),
        )?;
        Ok(IdentityProvenance {
            source,
            owner,
            registered,
            owner_override: owner_override.flatten(),
            registration: registration.flatten(),
        })
    }

    /// Decisions on the identity itself in campaigns, newest first:
    /// "keep by X on DATE in CAMPAIGN: justification".
    pub fn identity_certifications(&self, identity: i64) -> Result<Vec<String>> {
        self.db.query_map(
            "SELECT ci.decision || ' by ' || coalesce(p.display_name, 'close policy') || ' on ' || date(ci.decided_at, 'unixepoch')
                    || ' in ' || c.name || CASE WHEN ci.justification <> '' THEN ': ' || ci.justification ELSE '' END
             FROM campaign_items ci JOIN campaigns c ON c.id = ci.campaign_id LEFT JOIN people p ON p.id = ci.decided_by
             WHERE ci.identity_id = ?1 AND ci.item_type = 'identity' AND ci.decision IS NOT NULL ORDER BY ci.decided_at DESC",
            [identity],
            |r| r.get(0),
        )
    }

    /// The newest decision on a grant of the identity named `holder`:
    /// "keep by X on DATE in CAMPAIGN".
    pub fn grant_certification(
        &self,
        holder: &str,
        resource: i64,
        permission: &str,
    ) -> Result<Option<String>> {
        self.db.query_opt(
            "SELECT ci.decision || ' by ' || coalesce(pp.display_name, 'close policy') || ' on ' || date(ci.decided_at, 'unixepoch') || ' in ' || c.name
             FROM campaign_items ci JOIN campaigns c ON c.id = ci.campaign_id JOIN identities i ON i.id = ci.identity_id
             LEFT JOIN people pp ON pp.id = ci.decided_by
             WHERE i.name = ?1 AND ci.item_type = 'grant' AND ci.resource_id = ?2 AND ci.permission = ?3 AND ci.decision IS NOT NULL
             ORDER BY ci.decided_at DESC LIMIT 1",
            crate::store::db::params![holder, resource, permission],
            |r| r.get(0),
        )
    }

    /// A resource by numeric id, external id or exact (case-insensitive)
    /// name; `invalid_input` when the reference matches several.
    pub fn resolve_resource(&self, reference: &str) -> Result<i64> {
        let r = reference.trim();
        let ids = self.db.query_map(
            "SELECT id FROM resources WHERE CAST(id AS TEXT) = ?1 UNION SELECT id FROM resources WHERE external_id = ?1
             UNION SELECT id FROM resources WHERE name = ?1 COLLATE NOCASE LIMIT 2",
            [r],
            |row| row.get::<i64>(0),
        )?;
        match ids.as_slice() {
            [id] => Ok(*id),
            [] => Err(Error::not_found(format!("no resource matches '{r}'"))),
            _ => Err(Error::invalid(format!(
                "'{r}' matches several resources; use the numeric id"
            ))),
        }
    }
}
