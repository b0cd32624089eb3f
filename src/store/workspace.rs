//! The team workspace layer on PostgreSQL: all of its SQL. Installed once
//! over the normal migrations by `custodian workspace init`, versioned on
//! its own in `custodian.workspace_marker` (a newer layer is refused).
//!
//! The database is the security boundary: NOLOGIN group roles (named
//! `custodian_<db>_<role>`, see [`crate::workspace::role_prefix`]: role
//! names are cluster-wide, so each workspace has its own) carry the grants;
//! `members` maps logins to people and is written only by SECURITY DEFINER
//! functions that check the caller is an admin member and audit the change
//! in the same transaction; `current_person()` is the person behind
//! `session_user` (NULL for a removed member or a departed person). Audit
//! entries are appended by `audit_append` (actor = current_person()) into
//! `audit_pending`, and sealed at commit by a deferred trigger (advisory
//! lock 0x43415544, the chain's own: not the writers' lock a sync holds
//! throughout; the custodian-audit/2 hash computed in SQL; chain order =
//! commit order); no member role may write `audit_log`, triggers raise on
//! UPDATE/DELETE, and a commit-time check refuses a member's governance
//! change whose transaction appended no entry (layer 2, workspace_layer2.sql).
//! Checkpoint: members never hold the audit key, so entries appended by the
//! database are unsigned until a key holder (admin/worker) re-signs the head.

use super::db::{params, Db, OptionalExtension};
use super::Store;
use crate::error::{Error, ErrorCode, Result};
use crate::workspace::{group_role, validate_member, Role};

/// The workspace layer this build installs.
pub const LAYER_VERSION: i64 = 3;

/// The layers over layer 1 ([`layer_sql`]), in order: each file is run once,
/// when a workspace is made or upgraded past its version. Placeholders
/// name the group roles (`{all}` every member group, `{writers}` all but
/// the auditor, `{admin}` … `{auditor}` one each).
///
/// - 2 (src/store/workspace_layer2.sql): grants and row policies so each
///   role can work through the app and no further, a commit-time check that
///   a member's governance change carries its audit entry, the two-person
///   trigger in full, the audit seal at commit.
/// - 3 (src/store/workspace_layer3.sql): a manager marks their own reports'
///   departures and opens those leavers' cases; departures under row-level
///   security; nobody truncates; the schema marker is the DBA's.
const LAYERS: &[(i64, &str)] = &[
    (2, include_str!("workspace_layer2.sql")),
    (3, include_str!("workspace_layer3.sql")),
];

/// A layer file with its placeholders replaced by `prefix`'s group roles.
fn layer_file_sql(sql: &str, prefix: &str) -> String {
    let g = |r: Role| group_role(prefix, r);
    let writers = format!(
        "{}, {}, {}, {}",
        g(Role::Admin),
        g(Role::CampaignOwner),
        g(Role::Reviewer),
        g(Role::Manager)
    );
    let all = format!("{writers}, {}", g(Role::Auditor));
    sql.replace("{all}", &all)
        .replace("{writers}", &writers)
        .replace("{admin}", &g(Role::Admin))
        .replace("{owner}", &g(Role::CampaignOwner))
        .replace("{reviewer}", &g(Role::Reviewer))
        .replace("{manager}", &g(Role::Manager))
        .replace("{auditor}", &g(Role::Auditor))
}

/// The layers above `from` up to `upto`, in order, for `prefix`.
fn layers_sql(prefix: &str, from: i64, upto: i64) -> Vec<String> {
    LAYERS
        .iter()
        .filter(|(v, _)| *v > from && *v <= upto)
        .map(|(_, sql)| layer_file_sql(sql, prefix))
        .collect()
}

/// The grant decision a `custodian` table has in the workspace layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Row-level security on: the layer's policies decide each role's rows.
    Rls,
    /// Members only read it; the admin writes it (sources, syncs, links).
    Read,
    /// Members read it; the admin and these roles also write it directly,
    /// without row limits (the comment in [`TABLE_POLICY`] says why).
    Write(&'static [Role]),
    /// No member role writes it, the admin included: the DBA, the
    /// migrations or SECURITY DEFINER functions do.
    Definer,
}

/// Every table of the `custodian` schema and its decision in the current
/// layer. A table a later migration adds without a layer decision makes
/// `workspace init` refuse (naming it) and fails the workspace test: add it
/// here and give it its grants in a new layer. Everything but [`Policy::Rls`]
/// is the allow-list of tables without row-level security.
pub const TABLE_POLICY: &[(&str, Policy)] = &[
    // The inventory: written by syncs (the admin's worker), read by all.
    ("sources", Policy::Read),
    ("people", Policy::Read),
    ("credentials", Policy::Read),
    ("resources", Policy::Read),
    ("grants", Policy::Read),
    ("delegations", Policy::Read),
    ("meta", Policy::Read),
    ("lifecycle_events", Policy::Read),
    ("identity_links", Policy::Read),
    ("posture_snapshots", Policy::Read),
    // Signed checkpoints: written by a key holder (admin or worker).
    ("audit_checkpoints", Policy::Read),
    // Row-limited: identities (owners mark reviewed, managers hand over),
    // findings (a handover refreshes its identities'), sync runs (every
    // desktop marks interrupted runs; only the admin's update matches).
    ("identities", Policy::Rls),
    ("findings", Policy::Rls),
    ("sync_runs", Policy::Rls),
    // Governance: campaigns, their items and events, tasks, offboarding.
    ("campaigns", Policy::Rls),
    ("campaign_items", Policy::Rls),
    ("campaign_events", Policy::Rls),
    ("tasks", Policy::Rls),
    ("owner_overrides", Policy::Rls),
    ("departures", Policy::Rls),
    ("offboarding_cases", Policy::Rls),
    ("offboarding_items", Policy::Rls),
    // The search index follows identities by trigger, which runs as the
    // member whose change fires it (an owner's review mark, a handover).
    (
        "identity_fts",
        Policy::Write(&[Role::CampaignOwner, Role::Manager]),
    ),
    // An identity's timeline: appended by the governance action it records
    // (insert only; no member deletes it), each entry in its writer's own
    // name (layer 3: row-level security checks `actor`).
    ("identity_events", Policy::Rls),
    // Written only through SECURITY DEFINER functions (audit_append, the
    // seal, member_*), or by the DBA and the migrations (the markers).
    ("audit_log", Policy::Definer),
    ("audit_pending", Policy::Definer),
    ("members", Policy::Definer),
    ("workspace_marker", Policy::Definer),
    ("custodian_marker", Policy::Definer),
];

/// Who may call a `custodian` function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exec {
    /// Anyone (PUBLIC): helpers that grant nothing, trigger functions
    /// (callable only as triggers), and SECURITY DEFINER functions that
    /// read only what every member reads or check the caller themselves.
    Public,
    /// EXECUTE revoked from PUBLIC and granted to exactly these groups.
    Roles(&'static [Role]),
}

/// Every function of the `custodian` schema (by name: overloads share one
/// decision) and who may call it.
pub const FUNCTION_POLICY: &[(&str, Exec)] = &[
    // SQLite compatibility shims of the migrations (pure functions).
    ("unixepoch", Exec::Public),
    ("date", Exec::Public),
    ("json_extract", Exec::Public),
    ("json_group_array_final", Exec::Public),
    ("json_group_array", Exec::Public),
    ("group_concat_step", Exec::Public),
    ("group_concat", Exec::Public),
    // Triggers of the migrations (the search index).
    ("identity_fts_sync", Exec::Public),
    ("people_fts_rename", Exec::Public),
    // ... and the inventory's denormalised owner and source names.
    ("identities_denorm", Exec::Public),
    ("people_denorm", Exec::Public),
    ("sources_denorm", Exec::Public),
    // Who the caller is and what is theirs (read-only, about the caller).
    ("current_person", Exec::Public),
    ("has_role", Exec::Public),
    ("my_name", Exec::Public),
    ("my_reports", Exec::Public),
    ("my_leavers", Exec::Public),
    ("my_case_identities", Exec::Public),
    ("my_campaign_identities", Exec::Public),
    ("leaves_behind", Exec::Public),
    ("lp", Exec::Public),
    ("check_roles", Exec::Public),
    // Raises unless the caller is an admin; changes nothing.
    ("require_admin", Exec::Public),
    // Trigger functions (the audit log's, the two-person rules).
    ("audit_immutable", Exec::Public),
    ("audit_seal", Exec::Public),
    ("require_audit", Exec::Public),
    ("two_person", Exec::Public),
    // The audit log: every member but the auditor appends (as themselves).
    (
        "audit_append",
        Exec::Roles(&[
            Role::Admin,
            Role::CampaignOwner,
            Role::Reviewer,
            Role::Manager,
        ]),
    ),
    // Members: the admin only.
    ("member_add", Exec::Roles(&[Role::Admin])),
    ("member_set_roles", Exec::Roles(&[Role::Admin])),
    ("member_remove", Exec::Roles(&[Role::Admin])),
    // Called only inside member_* (the definer's rights): nobody directly.
    ("grant_groups", Exec::Roles(&[])),
];

/// What in the `custodian` schema has no decision, or not the one recorded.
fn undecided(db: &Db) -> Result<Vec<String>> {
    let Some((_, prefix)) = marker(db)? else {
        return Err(Error::invalid("this database is not a team workspace"));
    };
    let mut problems = Vec::new();
    let tables: Vec<(String, String, bool)> = db.query_map(
        "SELECT c.relname::text, c.relkind::text, c.relrowsecurity FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = 'custodian' AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
          ORDER BY c.relname",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    // The roles that write each table at all (any column, any row).
    let mut writers: std::collections::HashMap<String, Vec<Role>> = Default::default();
    for role in Role::ALL {
        let g = group_role(&prefix, role);
        let written: Vec<String> = db.query_map(
            "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = 'custodian' AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
                AND (has_any_column_privilege(?1::text, c.oid, 'INSERT')
                  OR has_any_column_privilege(?1::text, c.oid, 'UPDATE')
                  OR has_table_privilege(?1::text, c.oid, 'DELETE')
                  OR has_table_privilege(?1::text, c.oid, 'TRUNCATE')
                  OR has_table_privilege(?1::text, c.oid, 'TRIGGER'))",
            [g.as_str()],
            |r| r.get(0),
        )?;
        for t in written {
            writers.entry(t).or_default().push(role);
        }
    }
    for (name, kind, rls) in &tables {
        let Some((_, policy)) = TABLE_POLICY.iter().find(|(t, _)| t == name) else {
            problems.push(format!(
                "custodian.{name} (relkind {kind}) has no grant decision in the workspace layer (TABLE_POLICY)"
            ));
            continue;
        };
        let w = writers.get(name).cloned().unwrap_or_default();
        let allowed: Vec<Role> = match policy {
            Policy::Rls => {
                if !rls {
                    problems.push(format!(
                        "custodian.{name} is recorded as row-level secured but has row-level security off"
                    ));
                }
                continue;
            }
            Policy::Read => vec![Role::Admin],
            Policy::Write(roles) => std::iter::once(Role::Admin)
                .chain(roles.iter().copied())
                .collect(),
            Policy::Definer => vec![],
        };
        if *rls {
            problems.push(format!(
                "custodian.{name} has row-level security on: record it as Policy::Rls"
            ));
        }
        for r in w.iter().filter(|r| !allowed.contains(r)) {
            problems.push(format!(
                "custodian.{name}: the {} group writes it, which {policy:?} does not allow",
                r.as_str()
            ));
        }
    }
    for (name, _) in TABLE_POLICY {
        if !tables.iter().any(|(t, _, _)| t == name) {
            problems.push(format!(
                "TABLE_POLICY names custodian.{name}, which does not exist"
            ));
        }
    }
    // A sequence serves a decided table's column (identity or serial).
    let loose: Vec<String> = db.query_map(
        "SELECT s.relname::text FROM pg_class s JOIN pg_namespace n ON n.oid = s.relnamespace
          WHERE n.nspname = 'custodian' AND s.relkind = 'S'
            AND NOT EXISTS (SELECT 1 FROM pg_depend d JOIN pg_class t ON t.oid = d.refobjid
                             WHERE d.classid = 'pg_class'::regclass AND d.objid = s.oid
                               AND d.deptype IN ('a', 'i') AND t.relnamespace = n.oid)
          ORDER BY 1",
        [],
        |r| r.get(0),
    )?;
    for s in loose {
        problems.push(format!(
            "sequence custodian.{s} belongs to no table: give it a grant decision"
        ));
    }
    let functions: Vec<(String, bool)> = db.query_map(
        "SELECT DISTINCT p.proname::text,
                EXISTS (SELECT 1 FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                         WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE')
           FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
          WHERE n.nspname = 'custodian' ORDER BY 1",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    for (name, public) in &functions {
        let Some((_, exec)) = FUNCTION_POLICY.iter().find(|(f, _)| f == name) else {
            problems.push(format!(
                "function custodian.{name} has no EXECUTE decision in the workspace layer (FUNCTION_POLICY)"
            ));
            continue;
        };
        match exec {
            Exec::Public => {
                if !public {
                    problems.push(format!(
                        "function custodian.{name} is recorded as Exec::Public but PUBLIC cannot call it"
                    ));
                }
            }
            Exec::Roles(roles) => {
                if *public {
                    problems.push(format!(
                        "function custodian.{name}: PUBLIC may call it (EXECUTE not revoked)"
                    ));
                }
                for role in Role::ALL {
                    let g = group_role(&prefix, role);
                    let can: bool = db.query_row(
                        "SELECT bool_or(has_function_privilege(?1::text, p.oid, 'EXECUTE'))
                           FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                          WHERE n.nspname = 'custodian' AND p.proname = ?2",
                        [g.as_str(), name.as_str()],
                        |r| r.get(0),
                    )?;
                    if can != roles.contains(&role) {
                        problems.push(format!(
                            "function custodian.{name}: the {} group {} call it",
                            role.as_str(),
                            if can { "may" } else { "may not" }
                        ));
                    }
                }
            }
        }
    }
    for (name, _) in FUNCTION_POLICY {
        if !functions.iter().any(|(f, _)| f == name) {
            problems.push(format!(
                "FUNCTION_POLICY names custodian.{name}, which does not exist"
            ));
        }
    }
    Ok(problems)
}

/// Refuses (and so rolls back) a layer that leaves anything undecided.
fn refuse_undecided(db: &Db) -> Result<()> {
    let problems = undecided(db)?;
    if problems.is_empty() {
        return Ok(());
    }
    Err(Error::new(
        ErrorCode::Internal,
        format!(
            "the workspace layer leaves {} object(s) without a grant decision: {}",
            problems.len(),
            problems.join("; ")
        ),
    ))
}

fn layer_sql(prefix: &str) -> String {
    let g = |r: Role| group_role(prefix, r);
    let (admin, owner, reviewer, manager, auditor) = (
        g(Role::Admin),
        g(Role::CampaignOwner),
        g(Role::Reviewer),
        g(Role::Manager),
        g(Role::Auditor),
    );
    let all = format!("{admin}, {owner}, {reviewer}, {manager}, {auditor}");
    format!(
        r#"
DO $$ BEGIN
  PERFORM 1;
  {creates}
END $$;

CREATE TABLE custodian.members (
    login      TEXT PRIMARY KEY,
    person_id  BIGINT NOT NULL REFERENCES custodian.people(id),
    roles      TEXT[] NOT NULL,
    added_by   TEXT NOT NULL,
    added_at   BIGINT NOT NULL,
    removed_at BIGINT
);
REVOKE ALL ON custodian.members FROM PUBLIC;

CREATE FUNCTION custodian.current_person() RETURNS BIGINT
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = custodian, pg_temp AS $f$
  SELECT m.person_id FROM custodian.members m JOIN custodian.people p ON p.id = m.person_id
   WHERE m.login = session_user::text AND m.removed_at IS NULL
     AND p.left_at IS NULL AND p.status <> 'departed'
     AND NOT EXISTS (SELECT 1 FROM custodian.departures d WHERE d.person_id = p.id)
$f$;

CREATE FUNCTION custodian.has_role(r TEXT) RETURNS BOOLEAN
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = custodian, pg_temp AS $f$
  SELECT EXISTS (SELECT 1 FROM custodian.members m WHERE m.login = session_user::text
     AND m.removed_at IS NULL AND r = ANY(m.roles)) AND custodian.current_person() IS NOT NULL
$f$;

CREATE FUNCTION custodian.lp(t TEXT) RETURNS BYTEA
LANGUAGE sql IMMUTABLE SET search_path = custodian, pg_temp AS $f$
  SELECT int8send(octet_length(convert_to(t, 'UTF8'))::int8) || convert_to(t, 'UTF8')
$f$;

CREATE FUNCTION custodian.audit_append(p_action TEXT, p_subject TEXT, p_details TEXT) RETURNS TEXT
LANGUAGE plpgsql SECURITY DEFINER SET search_path = custodian, pg_temp AS $f$
DECLARE
  v_seq BIGINT; v_prev TEXT; v_at BIGINT; v_actor TEXT; v_hash TEXT; v_person BIGINT;
BEGIN
  v_person := custodian.current_person();
  IF v_person IS NULL THEN
    RAISE EXCEPTION 'login % is not an active workspace member', session_user USING ERRCODE = '42501';
  END IF;
  PERFORM pg_advisory_xact_lock(1129665364);
  SELECT display_name INTO v_actor FROM custodian.people WHERE id = v_person;
  SELECT seq, hash INTO v_seq, v_prev FROM custodian.audit_log ORDER BY seq DESC LIMIT 1;
  IF v_seq IS NULL THEN v_seq := 0; v_prev := repeat('0', 64); END IF;
  v_seq := v_seq + 1;
  v_at := floor(extract(epoch FROM clock_timestamp()))::bigint;
  v_hash := encode(sha256(custodian.lp('custodian-audit/2') || custodian.lp(v_prev)
     || custodian.lp(v_seq::text) || custodian.lp(v_at::text) || custodian.lp(v_actor)
     || custodian.lp(p_action) || custodian.lp(p_subject) || custodian.lp(p_details)), 'hex');
  INSERT INTO custodian.audit_log (seq, at, actor, action, subject, details, prev_hash, hash, format)
  VALUES (v_seq, v_at, v_actor, p_action, p_subject, p_details, v_prev, v_hash, 2);
  RETURN v_hash;
END $f$;

CREATE FUNCTION custodian.audit_immutable() RETURNS TRIGGER
LANGUAGE plpgsql SET search_path = custodian, pg_temp AS $f$
BEGIN
  RAISE EXCEPTION 'the audit log is append-only' USING ERRCODE = '42501';
END $f$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON custodian.audit_log
  FOR EACH ROW EXECUTE FUNCTION custodian.audit_immutable();

CREATE FUNCTION custodian.require_admin() RETURNS VOID
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = custodian, pg_temp AS $f$
BEGIN
  IF NOT custodian.has_role('admin') THEN
    RAISE EXCEPTION 'only a workspace admin may change members' USING ERRCODE = '42501';
  END IF;
END $f$;

CREATE FUNCTION custodian.grant_groups(p_login TEXT, p_roles TEXT[], p_grant BOOLEAN) RETURNS VOID
LANGUAGE plpgsql SECURITY DEFINER SET search_path = custodian, pg_temp AS $f$
DECLARE r TEXT;
BEGIN
  FOREACH r IN ARRAY ARRAY['admin','campaign_owner','reviewer','manager','auditor'] LOOP
    IF p_grant AND r = ANY(p_roles) THEN
      EXECUTE format('GRANT %I TO %I', '{prefix}' || r, p_login);
    ELSE
      EXECUTE format('REVOKE %I FROM %I', '{prefix}' || r, p_login);
    END IF;
  END LOOP;
END $f$;
REVOKE EXECUTE ON FUNCTION custodian.grant_groups(TEXT, TEXT[], BOOLEAN) FROM PUBLIC;

CREATE FUNCTION custodian.check_roles(p_roles TEXT[]) RETURNS VOID
LANGUAGE plpgsql IMMUTABLE SET search_path = custodian, pg_temp AS $f$
BEGIN
  IF cardinality(p_roles) = 0 OR NOT p_roles <@ ARRAY['admin','campaign_owner','reviewer','manager','auditor'] THEN
    RAISE EXCEPTION 'unknown or missing role in %', p_roles USING ERRCODE = '22023';
  END IF;
END $f$;

CREATE FUNCTION custodian.member_add(p_login TEXT, p_person BIGINT, p_roles TEXT[]) RETURNS VOID
LANGUAGE plpgsql SECURITY DEFINER SET search_path = custodian, pg_temp AS $f$
BEGIN
  PERFORM custodian.require_admin();
  PERFORM custodian.check_roles(p_roles);
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = p_login AND rolcanlogin) THEN
    RAISE EXCEPTION 'login % does not exist: the DBA creates logins', p_login USING ERRCODE = '22023';
  END IF;
  INSERT INTO custodian.members (login, person_id, roles, added_by, added_at)
  VALUES (p_login, p_person, p_roles, session_user::text, floor(extract(epoch FROM now()))::bigint)
  ON CONFLICT (login) DO UPDATE SET person_id = excluded.person_id, roles = excluded.roles,
     added_by = excluded.added_by, added_at = excluded.added_at, removed_at = NULL;
  PERFORM custodian.grant_groups(p_login, p_roles, TRUE);
  PERFORM custodian.audit_append('workspace.member_add', p_login,
     json_build_object('login', p_login, 'person_id', p_person, 'roles', p_roles)::text);
END $f$;

CREATE FUNCTION custodian.member_set_roles(p_login TEXT, p_roles TEXT[]) RETURNS VOID
LANGUAGE plpgsql SECURITY DEFINER SET search_path = custodian, pg_temp AS $f$
BEGIN
  PERFORM custodian.require_admin();
  PERFORM custodian.check_roles(p_roles);
  UPDATE custodian.members SET roles = p_roles WHERE login = p_login AND removed_at IS NULL;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no active member with login %', p_login USING ERRCODE = '22023';
  END IF;
  PERFORM custodian.grant_groups(p_login, p_roles, TRUE);
  PERFORM custodian.audit_append('workspace.member_roles', p_login,
     json_build_object('login', p_login, 'roles', p_roles)::text);
END $f$;

CREATE FUNCTION custodian.member_remove(p_login TEXT) RETURNS VOID
LANGUAGE plpgsql SECURITY DEFINER SET search_path = custodian, pg_temp AS $f$
BEGIN
  PERFORM custodian.require_admin();
  -- audited first: the entry's actor must still be an active member
  PERFORM custodian.audit_append('workspace.member_remove', p_login,
     json_build_object('login', p_login)::text);
  UPDATE custodian.members SET removed_at = floor(extract(epoch FROM now()))::bigint
   WHERE login = p_login AND removed_at IS NULL;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no active member with login %', p_login USING ERRCODE = '22023';
  END IF;
  PERFORM custodian.grant_groups(p_login, ARRAY[]::TEXT[], FALSE);
END $f$;

REVOKE EXECUTE ON FUNCTION custodian.member_add(TEXT, BIGINT, TEXT[]) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION custodian.member_set_roles(TEXT, TEXT[]) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION custodian.member_remove(TEXT) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION custodian.audit_append(TEXT, TEXT, TEXT) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION custodian.member_add(TEXT, BIGINT, TEXT[]) TO {admin};
GRANT EXECUTE ON FUNCTION custodian.member_set_roles(TEXT, TEXT[]) TO {admin};
GRANT EXECUTE ON FUNCTION custodian.member_remove(TEXT) TO {admin};
GRANT EXECUTE ON FUNCTION custodian.audit_append(TEXT, TEXT, TEXT) TO {all};

GRANT USAGE ON SCHEMA custodian TO {all};
REVOKE ALL ON ALL TABLES IN SCHEMA custodian FROM PUBLIC;
GRANT SELECT ON ALL TABLES IN SCHEMA custodian TO {admin}, {auditor};
-- Admin: sources, syncs, links (the inventory); never the audit log or members directly.
GRANT INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA custodian TO {admin};
REVOKE INSERT, UPDATE, DELETE ON custodian.audit_log, custodian.members, custodian.workspace_marker FROM {admin};
GRANT USAGE ON ALL SEQUENCES IN SCHEMA custodian TO {admin}, {owner};
GRANT SELECT ON custodian.audit_log, custodian.audit_checkpoints, custodian.people,
  custodian.identities, custodian.campaigns, custodian.meta TO {owner}, {reviewer}, {manager};
GRANT SELECT (login, person_id, roles, removed_at) ON custodian.members TO {all};
GRANT SELECT ON custodian.custodian_marker, custodian.workspace_marker TO PUBLIC;
-- Every desktop marks interrupted sync runs on open: only the admin's
-- update matches rows; for the others it is a no-op, not an error.
GRANT SELECT, UPDATE ON custodian.sync_runs TO {all};
ALTER TABLE custodian.sync_runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE custodian.sync_runs FORCE ROW LEVEL SECURITY;
CREATE POLICY sync_runs_read ON custodian.sync_runs FOR SELECT TO {all} USING (true);
CREATE POLICY sync_runs_admin ON custodian.sync_runs FOR ALL TO {admin} USING (true) WITH CHECK (true);

-- Reviewers: their own queue, and decisions only on items assigned to them.
GRANT SELECT, UPDATE ON custodian.campaign_items TO {reviewer};
GRANT SELECT, INSERT, UPDATE ON custodian.campaign_items TO {owner};
GRANT SELECT, INSERT, UPDATE ON custodian.campaigns TO {owner};
ALTER TABLE custodian.campaign_items ENABLE ROW LEVEL SECURITY;
ALTER TABLE custodian.campaign_items FORCE ROW LEVEL SECURITY;
CREATE POLICY items_read_all ON custodian.campaign_items FOR SELECT TO {admin}, {auditor} USING (true);
CREATE POLICY items_reviewer_read ON custodian.campaign_items FOR SELECT TO {reviewer}
  USING (reviewer_id = custodian.current_person());
CREATE POLICY items_reviewer_decide ON custodian.campaign_items FOR UPDATE TO {reviewer}
  USING (reviewer_id = custodian.current_person())
  WITH CHECK (reviewer_id = custodian.current_person());
CREATE POLICY items_owner ON custodian.campaign_items FOR ALL TO {owner}
  USING (EXISTS (SELECT 1 FROM custodian.campaigns c WHERE c.id = campaign_id
                  AND c.owner_id = custodian.current_person()))
  WITH CHECK (EXISTS (SELECT 1 FROM custodian.campaigns c WHERE c.id = campaign_id
                  AND c.owner_id = custodian.current_person()));
ALTER TABLE custodian.campaigns ENABLE ROW LEVEL SECURITY;
ALTER TABLE custodian.campaigns FORCE ROW LEVEL SECURITY;
CREATE POLICY campaigns_read ON custodian.campaigns FOR SELECT TO {all}
  USING (custodian.current_person() IS NOT NULL);
CREATE POLICY campaigns_owner_insert ON custodian.campaigns FOR INSERT TO {owner}
  WITH CHECK (owner_id = custodian.current_person());
CREATE POLICY campaigns_owner_update ON custodian.campaigns FOR UPDATE TO {owner}
  USING (owner_id = custodian.current_person()) WITH CHECK (owner_id = custodian.current_person());

-- Two-person rules on decisions.
CREATE FUNCTION custodian.two_person() RETURNS TRIGGER
LANGUAGE plpgsql SET search_path = custodian, pg_temp AS $f$
DECLARE me BIGINT := custodian.current_person(); subject_person BIGINT;
BEGIN
  IF me IS NULL THEN RETURN NEW; END IF; -- solo tools / the DBA: the store's rules apply
  IF NEW.decided_by IS DISTINCT FROM OLD.decided_by AND NEW.decided_by IS NOT NULL THEN
    IF NEW.decided_by <> me THEN
      RAISE EXCEPTION 'a decision is recorded as its own decider' USING ERRCODE = '42501';
    END IF;
    SELECT builder_id INTO subject_person FROM custodian.identities WHERE id = NEW.identity_id;
    IF subject_person = me THEN
      RAISE EXCEPTION 'no self-review' USING ERRCODE = '42501';
    END IF;
    IF NEW.proposed_by = me THEN
      RAISE EXCEPTION 'the second stage is not decided by the first stage''s decider' USING ERRCODE = '42501';
    END IF;
  END IF;
  IF NEW.reviewer_id IS DISTINCT FROM OLD.reviewer_id AND NEW.reviewer_id = me THEN
    RAISE EXCEPTION 'an owner cannot reassign an item to themselves' USING ERRCODE = '42501';
  END IF;
  RETURN NEW;
END $f$;
CREATE TRIGGER campaign_items_two_person BEFORE UPDATE ON custodian.campaign_items
  FOR EACH ROW EXECUTE FUNCTION custodian.two_person();
"#,
        creates = Role::ALL
            .into_iter()
            .map(|r| {
                let n = group_role(prefix, r);
                format!(
                    "IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{n}') THEN CREATE ROLE {n} NOLOGIN; END IF;"
                )
            })
            .collect::<Vec<_>>()
            .join("\n  "),
    )
}

/// A workspace member as the database holds it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Member {
    pub login: String,
    pub person_id: i64,
    pub roles: Vec<String>,
    pub removed_at: Option<i64>,
}

/// True when `db` holds the workspace layer (always false on SQLite).
/// Asked once per connection: a workspace stays one, and
/// [`Store::workspace_init`] sets the answer on the connection that makes it.
pub fn in_workspace(db: &Db) -> Result<bool> {
    if !db.is_postgres() {
        return Ok(false);
    }
    if let Some(v) = db.workspace_flag() {
        return Ok(v);
    }
    let v = marker(db)?.is_some();
    db.set_workspace_flag(v);
    Ok(v)
}

/// Appends an audit entry through the database (`custodian.audit_append`):
/// actor, time, sequence and hash are the database's. The entry is sealed
/// into the chain when the transaction commits (a deferred trigger, under
/// the chain's advisory lock), so this returns `pending`, not a hash.
pub fn append_in_workspace(tx: &Db, action: &str, subject: &str, details: &str) -> Result<String> {
    tx.query_row(
        "SELECT custodian.audit_append(?1, ?2, ?3)",
        [action, subject, details],
        |r| r.get(0),
    )
}

fn marker(db: &Db) -> Result<Option<(i64, String)>> {
    let exists: bool = db.query_row(
        "SELECT to_regclass('custodian.workspace_marker') IS NOT NULL",
        [],
        |r| r.get(0),
    )?;
    if !exists {
        return Ok(None);
    }
    db.query_row(
        "SELECT version, role_prefix FROM custodian.workspace_marker",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
}

impl Store {
    /// True when this store is a team workspace (PostgreSQL with the layer).
    pub fn is_workspace(&self) -> Result<bool> {
        in_workspace(self.db())
    }

    /// Installs the workspace layer with group roles under `prefix` and the
    /// first admin (`admin_login` mapped to `admin_person`). Refuses a newer
    /// layer; an installed one of this version is left as it is.
    ///
    /// The layer's DDL takes exclusive locks on busy tables; a deadlock with
    /// autovacuum (seen on a freshly loaded 100k-identity store) rolls the
    /// whole install back, and it is tried again.
    pub fn workspace_init(
        &self,
        prefix: &str,
        admin_login: &str,
        admin_person: i64,
    ) -> Result<bool> {
        self.workspace_init_layer(prefix, admin_login, admin_person, LAYER_VERSION)
    }

    /// [`Store::workspace_init`] stopping at layer `upto` (tests make an
    /// older workspace this way, to upgrade it). Only the current layer is
    /// checked against [`TABLE_POLICY`].
    #[doc(hidden)]
    pub fn workspace_init_layer(
        &self,
        prefix: &str,
        admin_login: &str,
        admin_person: i64,
        upto: i64,
    ) -> Result<bool> {
        if !(1..=LAYER_VERSION).contains(&upto) {
            return Err(Error::invalid(format!(
                "no workspace layer {upto} (this build knows 1 to {LAYER_VERSION})"
            )));
        }
        super::db::with_retry(|| self.workspace_init_once(prefix, admin_login, admin_person, upto))
    }

    fn workspace_init_once(
        &self,
        prefix: &str,
        admin_login: &str,
        admin_person: i64,
        upto: i64,
    ) -> Result<bool> {
        if !self.db().is_postgres() {
            return Err(Error::invalid(
                "a team workspace lives on PostgreSQL: pass --db postgres://…",
            ));
        }
        validate_member(admin_login, &[Role::Admin])?;
        let tx = self.db().transaction()?;
        if let Some((v, installed_prefix)) = marker(&tx)? {
            if v > LAYER_VERSION {
                return Err(Error::new(
                    ErrorCode::DatabaseTooNew,
                    format!("the workspace layer is version {v}; this build knows up to {LAYER_VERSION}"),
                ));
            }
            if v >= upto {
                if upto == LAYER_VERSION {
                    refuse_undecided(&tx)?;
                }
                return Ok(false);
            }
            // An older layer: bring it up to date in place, keeping its
            // roles, members and data.
            for sql in layers_sql(&installed_prefix, v, upto) {
                tx.execute_script(&sql)?;
            }
            tx.execute("UPDATE custodian.workspace_marker SET version = ?1", [upto])?;
            if upto == LAYER_VERSION {
                refuse_undecided(&tx)?;
            }
            tx.commit()?;
            self.db().set_workspace_flag(true);
            return Ok(true);
        }
        tx.execute_script(&format!(
            "CREATE TABLE custodian.workspace_marker (
                 one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
                 version BIGINT NOT NULL, role_prefix TEXT NOT NULL);
             INSERT INTO custodian.workspace_marker (version, role_prefix) VALUES ({upto}, '{prefix}');"
        ))?;
        tx.execute_script(&layer_sql(prefix))?;
        for sql in layers_sql(prefix, 1, upto) {
            tx.execute_script(&sql)?;
        }
        // The first admin, written directly (no admin exists yet to call member_add).
        tx.execute(
            "INSERT INTO custodian.members (login, person_id, roles, added_by, added_at)
             VALUES (?1, ?2, ARRAY['admin'], session_user::text, floor(extract(epoch FROM now()))::bigint)",
            params![admin_login, admin_person],
        )?;
        tx.execute_script(&format!(
            "GRANT {} TO \"{admin_login}\" WITH ADMIN OPTION",
            group_role(prefix, Role::Admin)
        ))?;
        if upto == LAYER_VERSION {
            refuse_undecided(&tx)?;
        }
        tx.commit()?;
        self.db().set_workspace_flag(true);
        Ok(true)
    }

    /// What in the `custodian` schema has no grant decision in this build's
    /// layer, or not the one [`TABLE_POLICY`] / [`FUNCTION_POLICY`] records
    /// (one readable line each; empty when every object is decided).
    pub fn workspace_undecided(&self) -> Result<Vec<String>> {
        undecided(self.db())
    }

    /// Adds (or re-adds) a member; the database checks the caller is an admin.
    pub fn workspace_member_add(&self, login: &str, person: i64, roles: &[Role]) -> Result<()> {
        validate_member(login, roles)?;
        let roles: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        let tx = self.db().transaction()?;
        tx.execute(
            "SELECT custodian.member_add(?1, ?2, string_to_array(?3, ','))",
            params![login, person, roles.join(",")],
        )?;
        tx.commit()
    }

    /// Replaces a member's roles (admin only, enforced by the database).
    pub fn workspace_member_roles(&self, login: &str, roles: &[Role]) -> Result<()> {
        validate_member(login, roles)?;
        let roles: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        let tx = self.db().transaction()?;
        tx.execute(
            "SELECT custodian.member_set_roles(?1, string_to_array(?2, ','))",
            params![login, roles.join(",")],
        )?;
        tx.commit()
    }

    /// Removes a member: roles revoked, removed_at set, history kept.
    pub fn workspace_member_remove(&self, login: &str) -> Result<()> {
        let tx = self.db().transaction()?;
        tx.execute("SELECT custodian.member_remove(?1)", [login])?;
        tx.commit()
    }

    /// Every member, removed ones included.
    pub fn workspace_members(&self) -> Result<Vec<Member>> {
        self.db().query_map(
            "SELECT login, person_id, array_to_string(roles, ','), removed_at FROM custodian.members ORDER BY login",
            [],
            |r| {
                let roles: String = r.get(2)?;
                Ok(Member {
                    login: r.get(0)?,
                    person_id: r.get(1)?,
                    roles: roles.split(',').filter(|s| !s.is_empty()).map(String::from).collect(),
                    removed_at: r.get(3)?,
                })
            },
        )
    }

    /// The person behind this connection's login, if an active member.
    pub fn workspace_current_person(&self) -> Result<Option<i64>> {
        self.db()
            .query_row("SELECT custodian.current_person()", [], |r| r.get(0))
    }

    /// The login this connection authenticated as.
    pub fn workspace_session_login(&self) -> Result<String> {
        self.db()
            .query_row("SELECT session_user::text", [], |r| r.get(0))
    }
}
