//! Append-only schema migrations, gated by `PRAGMA user_version`.
//!
//! Rules: never edit a released migration; add a new one. Every migration that
//! changes existing data gets a test that builds the old shape, migrates and
//! checks the rows (see `tests/core/store.rs`).

use crate::store::db::Db;

use crate::error::{Context, Error, ErrorCode, Result};

/// `PRAGMA application_id` of a Custodian cache: "CUST".
pub const APPLICATION_ID: i64 = 0x4355_5354;

pub struct Migration {
    /// The `user_version` after this migration ran.
    pub version: i64,
    pub description: &'static str,
    /// The migration on SQLite.
    pub sql: &'static str,
    /// The same migration on PostgreSQL (same tables, columns and indexes;
    /// BIGINT for INTEGER, identity columns for rowid keys, a tsvector table
    /// kept by triggers for FTS5).
    pub postgres: &'static str,
}

/// All migrations, in order. `MIGRATIONS[i].version == i + 1`.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
    version: 1,
    description: "initial schema: sources, people, identities, credentials, resources, grants, delegations, findings, search",
    sql: r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE sources (
    id   INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL UNIQUE
) STRICT;

CREATE TABLE people (
    id           INTEGER PRIMARY KEY,
    source_id    INTEGER NOT NULL REFERENCES sources(id),
    external_id  TEXT NOT NULL,
    display_name TEXT NOT NULL,
    email        TEXT NOT NULL DEFAULT '',
    department   TEXT NOT NULL DEFAULT '',
    title        TEXT NOT NULL DEFAULT '',
    manager_id   INTEGER REFERENCES people(id) DEFERRABLE INITIALLY DEFERRED,
    status       TEXT NOT NULL,
    left_at      INTEGER,
    UNIQUE (source_id, external_id)
) STRICT;
CREATE INDEX people_manager ON people(manager_id);
CREATE INDEX people_name ON people(display_name);

CREATE TABLE identities (
    id                    INTEGER PRIMARY KEY,
    source_id             INTEGER NOT NULL REFERENCES sources(id),
    external_id           TEXT NOT NULL,
    name                  TEXT NOT NULL,
    kind                  TEXT NOT NULL,
    agent_class           TEXT,
    status                TEXT NOT NULL,
    purpose               TEXT NOT NULL DEFAULT '',
    builder_id            INTEGER REFERENCES people(id) DEFERRABLE INITIALLY DEFERRED,
    owner_id              INTEGER REFERENCES people(id) DEFERRABLE INITIALLY DEFERRED,
    team                  TEXT NOT NULL DEFAULT '',
    environment           TEXT NOT NULL DEFAULT '',
    registered            INTEGER NOT NULL DEFAULT 0,
    intended_blast_radius TEXT NOT NULL DEFAULT '',
    created_at            INTEGER NOT NULL,
    last_used_at          INTEGER,
    last_reviewed_at      INTEGER,
    -- Roll-ups kept by Store::refresh_rollups after every write batch, so the
    -- inventory can sort and filter on them with an index at 100k rows.
    credential_count      INTEGER NOT NULL DEFAULT 0,
    oldest_credential_at  INTEGER,
    grant_count           INTEGER NOT NULL DEFAULT 0,
    finding_count         INTEGER NOT NULL DEFAULT 0,
    max_severity          INTEGER NOT NULL DEFAULT 0,
    UNIQUE (source_id, external_id)
) STRICT;
CREATE INDEX identities_name ON identities(name COLLATE NOCASE);
CREATE INDEX identities_kind_name ON identities(kind, name COLLATE NOCASE);
CREATE INDEX identities_owner ON identities(owner_id);
CREATE INDEX identities_builder ON identities(builder_id);
CREATE INDEX identities_severity ON identities(max_severity, finding_count);
CREATE INDEX identities_last_used ON identities(last_used_at);

CREATE TABLE credentials (
    id              INTEGER PRIMARY KEY,
    identity_id     INTEGER NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
    external_id     TEXT NOT NULL,
    kind            TEXT NOT NULL,
    display_name    TEXT NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER,
    last_rotated_at INTEGER,
    last_used_at    INTEGER
) STRICT;
CREATE INDEX credentials_identity ON credentials(identity_id);

CREATE TABLE resources (
    id          INTEGER PRIMARY KEY,
    source_id   INTEGER NOT NULL REFERENCES sources(id),
    external_id TEXT NOT NULL,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    sensitivity TEXT NOT NULL,
    environment TEXT NOT NULL DEFAULT '',
    UNIQUE (source_id, external_id)
) STRICT;

CREATE TABLE grants (
    id               INTEGER PRIMARY KEY,
    identity_id      INTEGER NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
    resource_id      INTEGER NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
    permission       TEXT NOT NULL,
    privilege        TEXT NOT NULL,
    high_consequence INTEGER NOT NULL DEFAULT 0,
    last_used_at     INTEGER
) STRICT;
CREATE INDEX grants_identity ON grants(identity_id);
CREATE INDEX grants_resource ON grants(resource_id);

CREATE TABLE delegations (
    id      INTEGER PRIMARY KEY,
    from_id INTEGER NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
    to_id   INTEGER NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
    kind    TEXT NOT NULL,
    UNIQUE (from_id, to_id, kind)
) STRICT;
CREATE INDEX delegations_to ON delegations(to_id);

CREATE TABLE findings (
    id          INTEGER PRIMARY KEY,
    identity_id INTEGER NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
    check_id    TEXT NOT NULL,
    owasp       TEXT NOT NULL,
    severity    INTEGER NOT NULL,
    title       TEXT NOT NULL,
    evidence    TEXT NOT NULL,
    fix         TEXT NOT NULL,
    detected_at INTEGER NOT NULL
) STRICT;
CREATE INDEX findings_identity ON findings(identity_id);

-- Full-text search over names, purposes and owners. rowid = identities.id.
CREATE VIRTUAL TABLE identity_fts USING fts5(
    name, purpose, owner, external_id, team,
    tokenize = 'unicode61 remove_diacritics 2',
    prefix = '2 3'
);

CREATE TRIGGER identities_fts_insert AFTER INSERT ON identities BEGIN
    INSERT INTO identity_fts(rowid, name, purpose, owner, external_id, team)
    VALUES (new.id, new.name, new.purpose,
            coalesce((SELECT display_name FROM people WHERE id = new.owner_id), ''),
            new.external_id, new.team);
END;
CREATE TRIGGER identities_fts_update AFTER UPDATE OF name, purpose, owner_id, external_id, team ON identities BEGIN
    DELETE FROM identity_fts WHERE rowid = old.id;
    INSERT INTO identity_fts(rowid, name, purpose, owner, external_id, team)
    VALUES (new.id, new.name, new.purpose,
            coalesce((SELECT display_name FROM people WHERE id = new.owner_id), ''),
            new.external_id, new.team);
END;
CREATE TRIGGER identities_fts_delete AFTER DELETE ON identities BEGIN
    DELETE FROM identity_fts WHERE rowid = old.id;
END;
CREATE TRIGGER people_fts_rename AFTER UPDATE OF display_name ON people BEGIN
    UPDATE identity_fts SET owner = new.display_name
    WHERE rowid IN (SELECT id FROM identities WHERE owner_id = new.id);
END;
"#,
        postgres: r#"
-- What SQLite has built in and the shared SQL calls by the same name.
CREATE FUNCTION unixepoch() RETURNS bigint LANGUAGE sql STABLE
    AS $$ SELECT extract(epoch FROM clock_timestamp())::bigint $$;
-- date(ts, 'unixepoch'): the UTC day of a Unix time, as YYYY-MM-DD.
CREATE FUNCTION date(bigint, text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF $2 <> 'unixepoch' THEN
        RAISE EXCEPTION 'date(): only the unixepoch modifier is supported';
    END IF;
    RETURN to_char(to_timestamp($1) AT TIME ZONE 'UTC', 'YYYY-MM-DD');
END $$;
CREATE FUNCTION json_group_array_final(anycompatiblearray) RETURNS json LANGUAGE sql IMMUTABLE
    AS $$ SELECT array_to_json($1) $$;
CREATE AGGREGATE json_group_array(anycompatible) (
    SFUNC = array_append, STYPE = anycompatiblearray, INITCOND = '{}', FINALFUNC = json_group_array_final
);
-- json_extract(json, '$.a.b'): the value at a path, as text (SQLite returns
-- it typed: compare numbers through CAST(... AS INTEGER) on both engines).
CREATE FUNCTION json_extract(text, text) RETURNS text LANGUAGE sql IMMUTABLE
    AS $$ SELECT ($1::jsonb) #>> string_to_array(regexp_replace($2, '^\$\.?', ''), '.') $$;
-- group_concat(x) and group_concat(x, separator), skipping NULLs.
CREATE FUNCTION group_concat_step(acc text, v text, sep text) RETURNS text LANGUAGE sql IMMUTABLE
    AS $$ SELECT CASE WHEN v IS NULL THEN acc WHEN acc IS NULL THEN v ELSE acc || sep || v END $$;
CREATE FUNCTION group_concat_step(acc text, v text) RETURNS text LANGUAGE sql IMMUTABLE
    AS $$ SELECT group_concat_step(acc, v, ',') $$;
CREATE AGGREGATE group_concat(text) (SFUNC = group_concat_step, STYPE = text);
CREATE AGGREGATE group_concat(text, text) (SFUNC = group_concat_step, STYPE = text);
-- SQLite's NOCASE: compare and sort ignoring case.
CREATE COLLATION nocase (provider = icu, locale = 'und-u-ks-level2', deterministic = false);

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE sources (
    id   BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL UNIQUE
);

CREATE TABLE people (
    id           BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    source_id    BIGINT NOT NULL REFERENCES sources(id),
    external_id  TEXT NOT NULL,
    display_name TEXT NOT NULL,
    email        TEXT NOT NULL DEFAULT '',
    department   TEXT NOT NULL DEFAULT '',
    title        TEXT NOT NULL DEFAULT '',
    manager_id   BIGINT REFERENCES people(id) DEFERRABLE INITIALLY DEFERRED,
    status       TEXT NOT NULL,
    left_at      BIGINT,
    UNIQUE (source_id, external_id)
);
CREATE INDEX people_manager ON people(manager_id);
CREATE INDEX people_name ON people(display_name);

CREATE TABLE identities (
    id                    BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    source_id             BIGINT NOT NULL REFERENCES sources(id),
    external_id           TEXT NOT NULL,
    name                  TEXT NOT NULL,
    kind                  TEXT NOT NULL,
    agent_class           TEXT,
    status                TEXT NOT NULL,
    purpose               TEXT NOT NULL DEFAULT '',
    builder_id            BIGINT REFERENCES people(id) DEFERRABLE INITIALLY DEFERRED,
    owner_id              BIGINT REFERENCES people(id) DEFERRABLE INITIALLY DEFERRED,
    team                  TEXT NOT NULL DEFAULT '',
    environment           TEXT NOT NULL DEFAULT '',
    registered            BIGINT NOT NULL DEFAULT 0,
    intended_blast_radius TEXT NOT NULL DEFAULT '',
    created_at            BIGINT NOT NULL,
    last_used_at          BIGINT,
    last_reviewed_at      BIGINT,
    -- Roll-ups kept by Store::refresh_rollups after every write batch, so the
    -- inventory can sort and filter on them with an index at 100k rows.
    credential_count      BIGINT NOT NULL DEFAULT 0,
    oldest_credential_at  BIGINT,
    grant_count           BIGINT NOT NULL DEFAULT 0,
    finding_count         BIGINT NOT NULL DEFAULT 0,
    max_severity          BIGINT NOT NULL DEFAULT 0,
    UNIQUE (source_id, external_id)
);
CREATE INDEX identities_name ON identities(name COLLATE nocase);
CREATE INDEX identities_kind_name ON identities(kind, name COLLATE nocase);
CREATE INDEX identities_owner ON identities(owner_id);
CREATE INDEX identities_builder ON identities(builder_id);
CREATE INDEX identities_severity ON identities(max_severity, finding_count);
CREATE INDEX identities_last_used ON identities(last_used_at);

CREATE TABLE credentials (
    id              BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    identity_id     BIGINT NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
    external_id     TEXT NOT NULL,
    kind            TEXT NOT NULL,
    display_name    TEXT NOT NULL DEFAULT '',
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT,
    last_rotated_at BIGINT,
    last_used_at    BIGINT
);
CREATE INDEX credentials_identity ON credentials(identity_id);

CREATE TABLE resources (
    id          BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    source_id   BIGINT NOT NULL REFERENCES sources(id),
    external_id TEXT NOT NULL,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    sensitivity TEXT NOT NULL,
    environment TEXT NOT NULL DEFAULT '',
    UNIQUE (source_id, external_id)
);

CREATE TABLE grants (
    id               BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    identity_id      BIGINT NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
    resource_id      BIGINT NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
    permission       TEXT NOT NULL,
    privilege        TEXT NOT NULL,
    high_consequence BIGINT NOT NULL DEFAULT 0,
    last_used_at     BIGINT
);
CREATE INDEX grants_identity ON grants(identity_id);
CREATE INDEX grants_resource ON grants(resource_id);

CREATE TABLE delegations (
    id      BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    from_id BIGINT NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
    to_id   BIGINT NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
    kind    TEXT NOT NULL,
    UNIQUE (from_id, to_id, kind)
);
CREATE INDEX delegations_to ON delegations(to_id);

CREATE TABLE findings (
    id          BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    identity_id BIGINT NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
    check_id    TEXT NOT NULL,
    owasp       TEXT NOT NULL,
    severity    BIGINT NOT NULL,
    title       TEXT NOT NULL,
    evidence    TEXT NOT NULL,
    fix         TEXT NOT NULL,
    detected_at BIGINT NOT NULL
);
CREATE INDEX findings_identity ON findings(identity_id);


-- Search over names, purposes and owners: a tsvector kept by triggers
-- (SQLite: FTS5). id = identities.id.
CREATE TABLE identity_fts (
    id          BIGINT PRIMARY KEY REFERENCES identities(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    purpose     TEXT NOT NULL,
    owner       TEXT NOT NULL,
    external_id TEXT NOT NULL,
    team        TEXT NOT NULL,
    doc         tsvector GENERATED ALWAYS AS (
        to_tsvector('simple', regexp_replace(
            name || ' ' || purpose || ' ' || owner || ' ' || external_id || ' ' || team,
            '[^[:alnum:]]+', ' ', 'g'))
    ) STORED
);
CREATE INDEX identity_fts_doc ON identity_fts USING gin (doc);

CREATE FUNCTION identity_fts_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO identity_fts (id, name, purpose, owner, external_id, team)
    VALUES (NEW.id, NEW.name, NEW.purpose,
            coalesce((SELECT display_name FROM people WHERE id = NEW.owner_id), ''),
            NEW.external_id, NEW.team)
    ON CONFLICT (id) DO UPDATE SET name = excluded.name, purpose = excluded.purpose,
        owner = excluded.owner, external_id = excluded.external_id, team = excluded.team;
    RETURN NULL;
END $$;
CREATE TRIGGER identities_fts_insert AFTER INSERT ON identities
    FOR EACH ROW EXECUTE FUNCTION identity_fts_sync();
CREATE TRIGGER identities_fts_update AFTER UPDATE OF name, purpose, owner_id, external_id, team ON identities
    FOR EACH ROW EXECUTE FUNCTION identity_fts_sync();

CREATE FUNCTION people_fts_rename() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE identity_fts SET owner = NEW.display_name
    WHERE id IN (SELECT id FROM identities WHERE owner_id = NEW.id);
    RETURN NULL;
END $$;
CREATE TRIGGER people_fts_rename AFTER UPDATE OF display_name ON people
    FOR EACH ROW EXECUTE FUNCTION people_fts_rename();
"#,
    },
    Migration {
        version: 2,
        description: "sync: source settings and cursors, sync runs, lifecycle events, registration review interval",
        sql: r#"
ALTER TABLE sources ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';
ALTER TABLE sources ADD COLUMN cursor TEXT;
ALTER TABLE sources ADD COLUMN created_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE identities ADD COLUMN review_interval_days INTEGER;
CREATE INDEX people_email ON people(email COLLATE NOCASE);

CREATE TABLE sync_runs (
    id            INTEGER PRIMARY KEY,
    source_id     INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    started_at    INTEGER NOT NULL,
    finished_at   INTEGER,
    -- running | succeeded | failed | cancelled | interrupted
    status        TEXT NOT NULL,
    mode          TEXT,
    items         INTEGER NOT NULL DEFAULT 0,
    joiners       INTEGER NOT NULL DEFAULT 0,
    movers        INTEGER NOT NULL DEFAULT 0,
    leavers       INTEGER NOT NULL DEFAULT 0,
    error_code    TEXT,
    error_message TEXT
) STRICT;
CREATE INDEX sync_runs_source ON sync_runs(source_id, started_at);

CREATE TABLE lifecycle_events (
    id         INTEGER PRIMARY KEY,
    run_id     INTEGER REFERENCES sync_runs(id) ON DELETE SET NULL,
    source_id  INTEGER,
    at         INTEGER NOT NULL,
    -- joiner | mover | leaver
    kind       TEXT NOT NULL,
    -- person | identity | credential
    subject    TEXT NOT NULL,
    subject_id INTEGER NOT NULL,
    name       TEXT NOT NULL,
    detail     TEXT NOT NULL
) STRICT;
CREATE INDEX lifecycle_events_subject ON lifecycle_events(subject, subject_id);
CREATE INDEX lifecycle_events_run ON lifecycle_events(run_id);
"#,
        postgres: r#"
ALTER TABLE sources ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';
ALTER TABLE sources ADD COLUMN cursor TEXT;
ALTER TABLE sources ADD COLUMN created_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE identities ADD COLUMN review_interval_days BIGINT;
CREATE INDEX people_email ON people(email COLLATE nocase);

CREATE TABLE sync_runs (
    id            BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    source_id     BIGINT NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    started_at    BIGINT NOT NULL,
    finished_at   BIGINT,
    -- running | succeeded | failed | cancelled | interrupted
    status        TEXT NOT NULL,
    mode          TEXT,
    items         BIGINT NOT NULL DEFAULT 0,
    joiners       BIGINT NOT NULL DEFAULT 0,
    movers        BIGINT NOT NULL DEFAULT 0,
    leavers       BIGINT NOT NULL DEFAULT 0,
    error_code    TEXT,
    error_message TEXT
);
CREATE INDEX sync_runs_source ON sync_runs(source_id, started_at);

CREATE TABLE lifecycle_events (
    id         BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    run_id     BIGINT REFERENCES sync_runs(id) ON DELETE SET NULL,
    source_id  BIGINT,
    at         BIGINT NOT NULL,
    -- joiner | mover | leaver
    kind       TEXT NOT NULL,
    -- person | identity | credential
    subject    TEXT NOT NULL,
    subject_id BIGINT NOT NULL,
    name       TEXT NOT NULL,
    detail     TEXT NOT NULL
);
CREATE INDEX lifecycle_events_subject ON lifecycle_events(subject, subject_id);
CREATE INDEX lifecycle_events_run ON lifecycle_events(run_id);
"#,
    },
    Migration {
        version: 3,
        description: "access reviews: campaigns, items, append-only campaign events, remediation tasks, resource owners, hash-chained audit log",
        sql: r#"
ALTER TABLE resources ADD COLUMN owner_id INTEGER REFERENCES people(id);

CREATE TABLE campaigns (
    id                   INTEGER PRIMARY KEY,
    name                 TEXT NOT NULL,
    description          TEXT NOT NULL DEFAULT '',
    -- JSON CampaignScope
    scope                TEXT NOT NULL,
    -- identities | access | all
    granularity          TEXT NOT NULL,
    -- owner | owner_manager | resource_owner | named
    reviewer_rule        TEXT NOT NULL,
    named_reviewer_id    INTEGER REFERENCES people(id),
    fallback_reviewer_id INTEGER NOT NULL REFERENCES people(id),
    second_reviewer_id   INTEGER REFERENCES people(id),
    -- none | monthly | quarterly | semi_annual | annual
    recurrence           TEXT NOT NULL DEFAULT 'none',
    start_at             INTEGER NOT NULL,
    due_at               INTEGER NOT NULL,
    -- scheduled | active | closed
    status               TEXT NOT NULL,
    owner_id             INTEGER NOT NULL REFERENCES people(id),
    created_at           INTEGER NOT NULL,
    launched_at          INTEGER,
    closed_at            INTEGER,
    closed_by            INTEGER REFERENCES people(id),
    -- keep | revoke | recommendation
    undecided_policy     TEXT,
    previous_id          INTEGER REFERENCES campaigns(id)
) STRICT;

-- One thing to certify. What the reviewer saw is copied in (subject, detail,
-- owner_name, risk, recommendation, reasons) so the evidence stays true when
-- the source data changes; the live row is found again by its natural key.
CREATE TABLE campaign_items (
    id                INTEGER PRIMARY KEY,
    campaign_id       INTEGER NOT NULL REFERENCES campaigns(id),
    -- identity | grant | credential
    item_type         TEXT NOT NULL,
    identity_id       INTEGER NOT NULL REFERENCES identities(id),
    resource_id       INTEGER,
    permission        TEXT,
    credential_key    TEXT,
    subject           TEXT NOT NULL,
    detail            TEXT NOT NULL,
    owner_name        TEXT,
    -- 1 low, 2 medium, 3 high
    risk              INTEGER NOT NULL,
    recommendation    TEXT NOT NULL,
    reasons           TEXT NOT NULL,
    reviewer_id       INTEGER REFERENCES people(id),
    reviewer_reason   TEXT NOT NULL,
    stage             INTEGER NOT NULL DEFAULT 1,
    -- stage one's decision awaiting the second stage
    proposed          TEXT,
    proposed_by       INTEGER REFERENCES people(id),
    decision          TEXT,
    decided_by        INTEGER REFERENCES people(id),
    decided_at        INTEGER,
    -- 1 when the close policy decided it
    by_policy         INTEGER NOT NULL DEFAULT 0,
    justification     TEXT NOT NULL DEFAULT '',
    new_owner_id      INTEGER REFERENCES people(id),
    vanished_at       INTEGER
) STRICT;
CREATE INDEX campaign_items_queue ON campaign_items(reviewer_id, decision, campaign_id);
CREATE INDEX campaign_items_campaign ON campaign_items(campaign_id, decision);
CREATE INDEX campaign_items_identity ON campaign_items(identity_id);

-- Append-only history of every item: decisions, reviewer changes, reminders.
CREATE TABLE campaign_events (
    id          INTEGER PRIMARY KEY,
    campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
    item_id     INTEGER REFERENCES campaign_items(id),
    -- decision | reviewer_changed | reminder | vanished | launched | closed
    kind        TEXT NOT NULL,
    actor_id    INTEGER REFERENCES people(id),
    actor       TEXT NOT NULL,
    at          INTEGER NOT NULL,
    detail      TEXT NOT NULL
) STRICT;
CREATE INDEX campaign_events_item ON campaign_events(item_id);
CREATE INDEX campaign_events_campaign ON campaign_events(campaign_id, kind);

-- Remediation: what someone must do in the source system.
CREATE TABLE tasks (
    id           INTEGER PRIMARY KEY,
    -- campaign | offboarding | lifecycle
    origin       TEXT NOT NULL,
    campaign_id  INTEGER REFERENCES campaigns(id),
    item_id      INTEGER REFERENCES campaign_items(id),
    -- revoke_grant | revoke_credential | rotate_credential | disable_identity | transfer_owner
    kind         TEXT NOT NULL,
    identity_id  INTEGER NOT NULL REFERENCES identities(id),
    target       TEXT NOT NULL,
    new_owner_id INTEGER REFERENCES people(id),
    -- open | done | failed
    status       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    updated_by   TEXT NOT NULL DEFAULT '',
    note         TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX tasks_status ON tasks(status, kind);
CREATE INDEX tasks_identity ON tasks(identity_id);

-- Every governance action, hash-chained: hash = SHA-256 over the previous
-- hash and this entry's fields (see store::audit).
CREATE TABLE audit_log (
    seq       INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    subject   TEXT NOT NULL,
    details   TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
) STRICT;
"#,
        postgres: r#"
ALTER TABLE resources ADD COLUMN owner_id BIGINT REFERENCES people(id);

CREATE TABLE campaigns (
    id                   BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    name                 TEXT NOT NULL,
    description          TEXT NOT NULL DEFAULT '',
    -- JSON CampaignScope
    scope                TEXT NOT NULL,
    -- identities | access | all
    granularity          TEXT NOT NULL,
    -- owner | owner_manager | resource_owner | named
    reviewer_rule        TEXT NOT NULL,
    named_reviewer_id    BIGINT REFERENCES people(id),
    fallback_reviewer_id BIGINT NOT NULL REFERENCES people(id),
    second_reviewer_id   BIGINT REFERENCES people(id),
    -- none | monthly | quarterly | semi_annual | annual
    recurrence           TEXT NOT NULL DEFAULT 'none',
    start_at             BIGINT NOT NULL,
    due_at               BIGINT NOT NULL,
    -- scheduled | active | closed
    status               TEXT NOT NULL,
    owner_id             BIGINT NOT NULL REFERENCES people(id),
    created_at           BIGINT NOT NULL,
    launched_at          BIGINT,
    closed_at            BIGINT,
    closed_by            BIGINT REFERENCES people(id),
    -- keep | revoke | recommendation
    undecided_policy     TEXT,
    previous_id          BIGINT REFERENCES campaigns(id)
);

-- One thing to certify. What the reviewer saw is copied in (subject, detail,
-- owner_name, risk, recommendation, reasons) so the evidence stays true when
-- the source data changes; the live row is found again by its natural key.
CREATE TABLE campaign_items (
    id                BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    campaign_id       BIGINT NOT NULL REFERENCES campaigns(id),
    -- identity | grant | credential
    item_type         TEXT NOT NULL,
    identity_id       BIGINT NOT NULL REFERENCES identities(id),
    resource_id       BIGINT,
    permission        TEXT,
    credential_key    TEXT,
    subject           TEXT NOT NULL,
    detail            TEXT NOT NULL,
    owner_name        TEXT,
    -- 1 low, 2 medium, 3 high
    risk              BIGINT NOT NULL,
    recommendation    TEXT NOT NULL,
    reasons           TEXT NOT NULL,
    reviewer_id       BIGINT REFERENCES people(id),
    reviewer_reason   TEXT NOT NULL,
    stage             BIGINT NOT NULL DEFAULT 1,
    -- stage one's decision awaiting the second stage
    proposed          TEXT,
    proposed_by       BIGINT REFERENCES people(id),
    decision          TEXT,
    decided_by        BIGINT REFERENCES people(id),
    decided_at        BIGINT,
    -- 1 when the close policy decided it
    by_policy         BIGINT NOT NULL DEFAULT 0,
    justification     TEXT NOT NULL DEFAULT '',
    new_owner_id      BIGINT REFERENCES people(id),
    vanished_at       BIGINT
);
CREATE INDEX campaign_items_queue ON campaign_items(reviewer_id, decision, campaign_id);
CREATE INDEX campaign_items_campaign ON campaign_items(campaign_id, decision);
CREATE INDEX campaign_items_identity ON campaign_items(identity_id);

-- Append-only history of every item: decisions, reviewer changes, reminders.
CREATE TABLE campaign_events (
    id          BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    campaign_id BIGINT NOT NULL REFERENCES campaigns(id),
    item_id     BIGINT REFERENCES campaign_items(id),
    -- decision | reviewer_changed | reminder | vanished | launched | closed
    kind        TEXT NOT NULL,
    actor_id    BIGINT REFERENCES people(id),
    actor       TEXT NOT NULL,
    at          BIGINT NOT NULL,
    detail      TEXT NOT NULL
);
CREATE INDEX campaign_events_item ON campaign_events(item_id);
CREATE INDEX campaign_events_campaign ON campaign_events(campaign_id, kind);

-- Remediation: what someone must do in the source system.
CREATE TABLE tasks (
    id           BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    -- campaign | offboarding | lifecycle
    origin       TEXT NOT NULL,
    campaign_id  BIGINT REFERENCES campaigns(id),
    item_id      BIGINT REFERENCES campaign_items(id),
    -- revoke_grant | revoke_credential | rotate_credential | disable_identity | transfer_owner
    kind         TEXT NOT NULL,
    identity_id  BIGINT NOT NULL REFERENCES identities(id),
    target       TEXT NOT NULL,
    new_owner_id BIGINT REFERENCES people(id),
    -- open | done | failed
    status       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    updated_by   TEXT NOT NULL DEFAULT '',
    note         TEXT NOT NULL DEFAULT ''
);
CREATE INDEX tasks_status ON tasks(status, kind);
CREATE INDEX tasks_identity ON tasks(identity_id);

-- Every governance action, hash-chained: hash = SHA-256 over the previous
-- hash and this entry's fields (see store::audit).
CREATE TABLE audit_log (
    seq       BIGINT PRIMARY KEY,
    at        BIGINT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    subject   TEXT NOT NULL,
    details   TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
"#,
    },
    Migration {
        version: 4,
        description: "offboarding and lifecycle: Custodian-held owners, departures marked by hand, offboarding cases and items, identity governance events, review flags, data touched",
        sql: r#"
-- Ownership decided in Custodian (a transfer, a temporary owner, a
-- registration) wins over the source's owner until the source agrees.
CREATE TABLE owner_overrides (
    identity_id INTEGER PRIMARY KEY REFERENCES identities(id),
    owner_id    INTEGER NOT NULL REFERENCES people(id),
    -- transfer | temporary | registration
    kind        TEXT NOT NULL,
    until       INTEGER,
    reason      TEXT NOT NULL,
    set_by      TEXT NOT NULL,
    set_at      INTEGER NOT NULL
) STRICT;

CREATE TABLE departures (
    person_id    INTEGER PRIMARY KEY REFERENCES people(id),
    departing_on INTEGER NOT NULL,
    note         TEXT NOT NULL DEFAULT '',
    marked_by    TEXT NOT NULL,
    marked_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE offboarding_cases (
    id         INTEGER PRIMARY KEY,
    person_id  INTEGER NOT NULL UNIQUE REFERENCES people(id),
    reason     TEXT NOT NULL,
    opened_at  INTEGER NOT NULL,
    -- who decides: the departing person's manager when active
    manager_id INTEGER REFERENCES people(id),
    -- open | closed
    status     TEXT NOT NULL,
    closed_at  INTEGER,
    closed_by  TEXT
) STRICT;
CREATE INDEX offboarding_cases_manager ON offboarding_cases(manager_id, status);

CREATE TABLE offboarding_items (
    id           INTEGER PRIMARY KEY,
    case_id      INTEGER NOT NULL REFERENCES offboarding_cases(id),
    identity_id  INTEGER NOT NULL REFERENCES identities(id),
    -- owner | builder | owner+builder
    relation     TEXT NOT NULL,
    -- transfer | retire | keep
    action       TEXT,
    new_owner_id INTEGER REFERENCES people(id),
    until        INTEGER,
    rotate       INTEGER NOT NULL DEFAULT 0,
    decided_by   TEXT,
    decided_at   INTEGER,
    applied_at   INTEGER,
    UNIQUE (case_id, identity_id)
) STRICT;
CREATE INDEX offboarding_items_identity ON offboarding_items(identity_id);

-- Governance actions on an identity, for its timeline.
CREATE TABLE identity_events (
    id          INTEGER PRIMARY KEY,
    identity_id INTEGER NOT NULL REFERENCES identities(id),
    at          INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    -- registered | transferred | temporary_owner | retired | flagged | flag_cleared | departed_owner
    kind        TEXT NOT NULL,
    detail      TEXT NOT NULL
) STRICT;
CREATE INDEX identity_events_identity ON identity_events(identity_id, at);

ALTER TABLE tasks ADD COLUMN case_id INTEGER REFERENCES offboarding_cases(id);
ALTER TABLE identities ADD COLUMN data_touched TEXT NOT NULL DEFAULT '';
-- Owner suggestions look for the team's other owners.
CREATE INDEX identities_team ON identities(team, owner_id);
-- Why a permission review is needed (a mover: new grants, delegations, credentials).
ALTER TABLE identities ADD COLUMN review_flag TEXT;
ALTER TABLE identities ADD COLUMN review_flag_at INTEGER;
"#,
        postgres: r#"
-- Ownership decided in Custodian (a transfer, a temporary owner, a
-- registration) wins over the source's owner until the source agrees.
CREATE TABLE owner_overrides (
    identity_id BIGINT PRIMARY KEY REFERENCES identities(id),
    owner_id    BIGINT NOT NULL REFERENCES people(id),
    -- transfer | temporary | registration
    kind        TEXT NOT NULL,
    until       BIGINT,
    reason      TEXT NOT NULL,
    set_by      TEXT NOT NULL,
    set_at      BIGINT NOT NULL
);

CREATE TABLE departures (
    person_id    BIGINT PRIMARY KEY REFERENCES people(id),
    departing_on BIGINT NOT NULL,
    note         TEXT NOT NULL DEFAULT '',
    marked_by    TEXT NOT NULL,
    marked_at    BIGINT NOT NULL
);

CREATE TABLE offboarding_cases (
    id         BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    person_id  BIGINT NOT NULL UNIQUE REFERENCES people(id),
    reason     TEXT NOT NULL,
    opened_at  BIGINT NOT NULL,
    -- who decides: the departing person's manager when active
    manager_id BIGINT REFERENCES people(id),
    -- open | closed
    status     TEXT NOT NULL,
    closed_at  BIGINT,
    closed_by  TEXT
);
CREATE INDEX offboarding_cases_manager ON offboarding_cases(manager_id, status);

CREATE TABLE offboarding_items (
    id           BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    case_id      BIGINT NOT NULL REFERENCES offboarding_cases(id),
    identity_id  BIGINT NOT NULL REFERENCES identities(id),
    -- owner | builder | owner+builder
    relation     TEXT NOT NULL,
    -- transfer | retire | keep
    action       TEXT,
    new_owner_id BIGINT REFERENCES people(id),
    until        BIGINT,
    rotate       BIGINT NOT NULL DEFAULT 0,
    decided_by   TEXT,
    decided_at   BIGINT,
    applied_at   BIGINT,
    UNIQUE (case_id, identity_id)
);
CREATE INDEX offboarding_items_identity ON offboarding_items(identity_id);

-- Governance actions on an identity, for its timeline.
CREATE TABLE identity_events (
    id          BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    identity_id BIGINT NOT NULL REFERENCES identities(id),
    at          BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    -- registered | transferred | temporary_owner | retired | flagged | flag_cleared | departed_owner
    kind        TEXT NOT NULL,
    detail      TEXT NOT NULL
);
CREATE INDEX identity_events_identity ON identity_events(identity_id, at);

ALTER TABLE tasks ADD COLUMN case_id BIGINT REFERENCES offboarding_cases(id);
ALTER TABLE identities ADD COLUMN data_touched TEXT NOT NULL DEFAULT '';
-- Owner suggestions look for the team's other owners.
CREATE INDEX identities_team ON identities(team, owner_id);
-- Why a permission review is needed (a mover: new grants, delegations, credentials).
ALTER TABLE identities ADD COLUMN review_flag TEXT;
ALTER TABLE identities ADD COLUMN review_flag_at BIGINT;
"#,
    },
    Migration {
        version: 5,
        description: "blast radius and posture: edges documented by hand, posture snapshots for trends, usage baselines",
        sql: r#"
-- Edges between identities that no source knows (a GitHub app whose secret
-- deploys to an AWS role), written down by a person.
CREATE TABLE identity_links (
    id            INTEGER PRIMARY KEY,
    from_id       INTEGER NOT NULL REFERENCES identities(id),
    to_id         INTEGER NOT NULL REFERENCES identities(id),
    kind          TEXT NOT NULL,
    note          TEXT NOT NULL DEFAULT '',
    documented_by TEXT NOT NULL,
    documented_at INTEGER NOT NULL,
    UNIQUE (from_id, to_id, kind)
) STRICT;
CREATE INDEX identity_links_to ON identity_links(to_id);

-- Key posture figures over time (after every sync and load).
CREATE TABLE posture_snapshots (
    id      INTEGER PRIMARY KEY,
    at      INTEGER NOT NULL,
    -- sync | load | reconstructed
    origin  TEXT NOT NULL,
    figures TEXT NOT NULL
) STRICT;
CREATE INDEX posture_snapshots_at ON posture_snapshots(at);

-- Behavioural baseline: what each identity used when the baseline was taken.
ALTER TABLE identities ADD COLUMN baseline_at INTEGER;
ALTER TABLE identities ADD COLUMN baseline_resources TEXT;
ALTER TABLE identities ADD COLUMN drift TEXT;
"#,
        postgres: r#"
-- Edges between identities that no source knows (a GitHub app whose secret
-- deploys to an AWS role), written down by a person.
CREATE TABLE identity_links (
    id            BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    from_id       BIGINT NOT NULL REFERENCES identities(id),
    to_id         BIGINT NOT NULL REFERENCES identities(id),
    kind          TEXT NOT NULL,
    note          TEXT NOT NULL DEFAULT '',
    documented_by TEXT NOT NULL,
    documented_at BIGINT NOT NULL,
    UNIQUE (from_id, to_id, kind)
);
CREATE INDEX identity_links_to ON identity_links(to_id);

-- Key posture figures over time (after every sync and load).
CREATE TABLE posture_snapshots (
    id      BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    at      BIGINT NOT NULL,
    -- sync | load | reconstructed
    origin  TEXT NOT NULL,
    figures TEXT NOT NULL
);
CREATE INDEX posture_snapshots_at ON posture_snapshots(at);

-- Behavioural baseline: what each identity used when the baseline was taken.
ALTER TABLE identities ADD COLUMN baseline_at BIGINT;
ALTER TABLE identities ADD COLUMN baseline_resources TEXT;
ALTER TABLE identities ADD COLUMN drift TEXT;
"#,
    },
    Migration {
        version: 6,
        description: "write-back: the credential a revoke task is about",
        sql: r#"
-- The credential's id in its source (an AWS access key id), so a revoke task
-- can be carried out there.
ALTER TABLE tasks ADD COLUMN credential_key TEXT;
"#,
        postgres: r#"
-- The credential's id in its source (an AWS access key id), so a revoke task
-- can be carried out there.
ALTER TABLE tasks ADD COLUMN credential_key TEXT;
"#,
    },
    Migration {
        version: 7,
        description: "a reviewer's pending items in queue order, per campaign",
        sql: r#"
-- My reviews reads each campaign's pending items of one reviewer by risk
-- then id, stopping at the page size instead of sorting the whole queue.
CREATE INDEX campaign_items_pending ON campaign_items(reviewer_id, campaign_id, decision, risk DESC, id);
"#,
        postgres: r#"
-- My reviews reads each campaign's pending items of one reviewer by risk
-- then id, stopping at the page size instead of sorting the whole queue.
CREATE INDEX campaign_items_pending ON campaign_items(reviewer_id, campaign_id, decision, risk DESC, id);
"#,
    },
    Migration {
        version: 8,
        description: "sync runs keep their warnings",
        sql: r#"
-- What a run skipped or doubts (a JSON array of strings); a run that has
-- any ends 'succeeded_with_warnings'.
ALTER TABLE sync_runs ADD COLUMN warnings TEXT;
"#,
        postgres: r#"
-- What a run skipped or doubts (a JSON array of strings); a run that has
-- any ends 'succeeded_with_warnings'.
ALTER TABLE sync_runs ADD COLUMN warnings TEXT;
"#,
    },
    Migration {
        version: 9,
        description: "audit log format 2 (length-prefixed entry hash) and signed checkpoints",
        sql: r#"
-- The hash rule of each entry (see store::audit): 1 = newline-joined fields
-- (entries written before this migration), 2 = length-prefixed fields.
ALTER TABLE audit_log ADD COLUMN format INTEGER NOT NULL DEFAULT 1;

-- The signed head of the chain: HMAC-SHA-256 with a key kept outside the
-- database, written in the same transaction as every append. Only the
-- latest is kept, so no older signed state is left to roll back to.
CREATE TABLE audit_checkpoints (
    seq       INTEGER PRIMARY KEY,
    head      TEXT NOT NULL,
    at        INTEGER NOT NULL,
    key_id    TEXT NOT NULL,
    signature TEXT NOT NULL
) STRICT;
"#,
        postgres: r#"
-- The hash rule of each entry (see store::audit): 1 = newline-joined fields
-- (entries written before this migration), 2 = length-prefixed fields.
ALTER TABLE audit_log ADD COLUMN format BIGINT NOT NULL DEFAULT 1;

-- The signed head of the chain: HMAC-SHA-256 with a key kept outside the
-- database, written in the same transaction as every append. Only the
-- latest is kept, so no older signed state is left to roll back to.
CREATE TABLE audit_checkpoints (
    seq       BIGINT PRIMARY KEY,
    head      TEXT NOT NULL,
    at        BIGINT NOT NULL,
    key_id    TEXT NOT NULL,
    signature TEXT NOT NULL
);
"#,
    },
    Migration {
        version: 10,
        description: "delegations keep the condition they hold under and why they exist",
        sql: r#"
-- An edge that holds only under a condition (an AWS trust policy with
-- aws:MultiFactorAuthPresent) keeps it, readable; NULL: it always holds.
-- The reason says why an edge exists when its kind does not (an AWS
-- escalation: the iam:PassRole and the service it runs).
ALTER TABLE delegations ADD COLUMN condition TEXT;
ALTER TABLE delegations ADD COLUMN reason TEXT;
"#,
        postgres: r#"
-- An edge that holds only under a condition (an AWS trust policy with
-- aws:MultiFactorAuthPresent) keeps it, readable; NULL: it always holds.
-- The reason says why an edge exists when its kind does not (an AWS
-- escalation: the iam:PassRole and the service it runs).
ALTER TABLE delegations ADD COLUMN condition TEXT;
ALTER TABLE delegations ADD COLUMN reason TEXT;
"#,
    },
    Migration {
        version: 11,
        description: "grants keep the condition they hold under and the resources a deny keeps them from",
        sql: r#"
-- A grant that holds only under a condition, or less than its resource
-- (an AWS Deny on part of it): readable ("only if …; unless …; except …;
-- not on …"); NULL: it holds as it is. `excluded`: a JSON array of the
-- resource patterns under its resource that it does not reach.
ALTER TABLE grants ADD COLUMN condition TEXT;
ALTER TABLE grants ADD COLUMN excluded TEXT;
"#,
        postgres: r#"
-- A grant that holds only under a condition, or less than its resource
-- (an AWS Deny on part of it): readable ("only if …; unless …; except …;
-- not on …"); NULL: it holds as it is. `excluded`: a JSON array of the
-- resource patterns under its resource that it does not reach.
ALTER TABLE grants ADD COLUMN condition TEXT;
ALTER TABLE grants ADD COLUMN excluded TEXT;
"#,
    },
    Migration {
        version: 12,
        description: "inventory at scale: owner and source names denormalised by trigger, sort and filter indexes, stored blast radius",
        sql: r#"
-- Denormalised for the inventory's sorts, filters and facets at 100k rows
-- (each an index away): the owner's display name and state ('owned': an
-- active owner; 'departed'; 'none') and the source's name. Rows a load or
-- sync inserts get them from the roll-ups at the end of its write batch
-- (`refresh_derived`: one grouped pass, not a trigger per row); a later
-- change of owner or source, an owner's rename or departure and a source's
-- rename carry them by the triggers below, in the writing statement.
ALTER TABLE identities ADD COLUMN owner_name TEXT;
ALTER TABLE identities ADD COLUMN owner_state TEXT NOT NULL DEFAULT 'none';
ALTER TABLE identities ADD COLUMN source_name TEXT;
-- The blast radius as of the last write to the access graph (a sync, a
-- load, a documented link; `crate::posture::record_blast`), for the posture
-- page and its ranking: NULL until computed.
ALTER TABLE identities ADD COLUMN blast_score REAL;
ALTER TABLE identities ADD COLUMN blast_reach INTEGER;
ALTER TABLE identities ADD COLUMN blast_resources INTEGER;
ALTER TABLE identities ADD COLUMN blast_high INTEGER;
UPDATE identities SET
    owner_name = (SELECT display_name FROM people p WHERE p.id = identities.owner_id),
    owner_state = CASE WHEN owner_id IS NULL THEN 'none'
                       WHEN (SELECT status FROM people p WHERE p.id = identities.owner_id) = 'active' THEN 'owned'
                       ELSE 'departed' END,
    source_name = (SELECT name FROM sources s WHERE s.id = identities.source_id);
CREATE INDEX identities_owner_sort ON identities((owner_name IS NULL), owner_name COLLATE NOCASE, name COLLATE NOCASE);
CREATE INDEX identities_owner_sort_desc
    ON identities((owner_name IS NULL), owner_name COLLATE NOCASE DESC, name COLLATE NOCASE DESC, id DESC);
CREATE INDEX identities_source_sort ON identities(source_name, name COLLATE NOCASE);
CREATE INDEX identities_status_name ON identities(status, name COLLATE NOCASE);
-- Every filter column: counts and facets read this index, not the rows.
CREATE INDEX identities_filter ON identities(kind, status, agent_class, source_id, owner_state, finding_count);
CREATE INDEX identities_blast ON identities(blast_score DESC, name);
-- The posture page's counts, each from an index rather than the rows.
CREATE INDEX credentials_posture ON credentials(identity_id, kind, expires_at, last_used_at);
CREATE INDEX findings_severity ON findings(severity);
-- A filter leading each index, for selective filters; a sort key each.
CREATE INDEX identities_class_name ON identities(agent_class, name COLLATE NOCASE);
CREATE INDEX identities_owner_state ON identities(owner_state, name COLLATE NOCASE);
CREATE INDEX identities_findings ON identities(finding_count);
CREATE INDEX identities_credentials ON identities(credential_count);
CREATE INDEX identities_grants ON identities(grant_count);
CREATE INDEX identities_created ON identities(created_at);
CREATE INDEX identities_oldest ON identities((oldest_credential_at IS NULL), oldest_credential_at DESC);
CREATE INDEX identities_oldest_desc ON identities((oldest_credential_at IS NULL), oldest_credential_at, id DESC);

CREATE TRIGGER identities_denorm_update AFTER UPDATE OF owner_id, source_id ON identities BEGIN
    UPDATE identities SET
        owner_name = (SELECT display_name FROM people WHERE id = new.owner_id),
        owner_state = CASE WHEN new.owner_id IS NULL THEN 'none'
                           WHEN (SELECT status FROM people WHERE id = new.owner_id) = 'active' THEN 'owned'
                           ELSE 'departed' END,
        source_name = (SELECT name FROM sources WHERE id = new.source_id)
    WHERE id = new.id;
END;
-- An owner renamed or leaving.
CREATE TRIGGER people_denorm_update AFTER UPDATE OF display_name, status ON people
WHEN old.display_name IS NOT new.display_name OR old.status IS NOT new.status BEGIN
    UPDATE identities SET owner_name = new.display_name,
        owner_state = CASE WHEN new.status = 'active' THEN 'owned' ELSE 'departed' END
    WHERE owner_id = new.id;
END;
CREATE TRIGGER sources_denorm_rename AFTER UPDATE OF name ON sources WHEN old.name IS NOT new.name BEGIN
    UPDATE identities SET source_name = new.name WHERE source_id = new.id;
END;
"#,
        postgres: r#"
-- Denormalised for the inventory's sorts, filters and facets at 100k rows
-- (each an index away): the owner's display name and state ('owned': an
-- active owner; 'departed'; 'none') and the source's name. Rows a load or
-- sync inserts get them from the roll-ups at the end of its write batch
-- (`refresh_derived`: one grouped pass, not a trigger per row); a later
-- change of owner or source, an owner's rename or departure and a source's
-- rename carry them by the triggers below, in the writing statement.
ALTER TABLE identities ADD COLUMN owner_name TEXT;
ALTER TABLE identities ADD COLUMN owner_state TEXT NOT NULL DEFAULT 'none';
ALTER TABLE identities ADD COLUMN source_name TEXT;
-- The blast radius as of the last write to the access graph (a sync, a
-- load, a documented link; `crate::posture::record_blast`), for the posture
-- page and its ranking: NULL until computed.
ALTER TABLE identities ADD COLUMN blast_score DOUBLE PRECISION;
ALTER TABLE identities ADD COLUMN blast_reach BIGINT;
ALTER TABLE identities ADD COLUMN blast_resources BIGINT;
ALTER TABLE identities ADD COLUMN blast_high BIGINT;
UPDATE identities SET
    owner_name = (SELECT display_name FROM people p WHERE p.id = identities.owner_id),
    owner_state = CASE WHEN owner_id IS NULL THEN 'none'
                       WHEN (SELECT status FROM people p WHERE p.id = identities.owner_id) = 'active' THEN 'owned'
                       ELSE 'departed' END,
    source_name = (SELECT name FROM sources s WHERE s.id = identities.source_id);
CREATE INDEX identities_owner_sort ON identities((owner_name IS NULL), owner_name COLLATE nocase, name COLLATE nocase);
CREATE INDEX identities_owner_sort_desc
    ON identities((owner_name IS NULL), owner_name COLLATE nocase DESC, name COLLATE nocase DESC, id DESC);
CREATE INDEX identities_source_sort ON identities(source_name, name COLLATE nocase);
CREATE INDEX identities_status_name ON identities(status, name COLLATE nocase);
-- Every filter column: counts and facets read this index, not the rows.
CREATE INDEX identities_filter ON identities(kind, status, agent_class, source_id, owner_state, finding_count);
CREATE INDEX identities_blast ON identities(blast_score DESC, name);
-- The posture page's counts, each from an index rather than the rows.
CREATE INDEX credentials_posture ON credentials(identity_id, kind, expires_at, last_used_at);
CREATE INDEX findings_severity ON findings(severity);
-- A filter leading each index, for selective filters; a sort key each.
CREATE INDEX identities_class_name ON identities(agent_class, name COLLATE nocase);
CREATE INDEX identities_owner_state ON identities(owner_state, name COLLATE nocase);
CREATE INDEX identities_findings ON identities(finding_count);
CREATE INDEX identities_credentials ON identities(credential_count);
CREATE INDEX identities_grants ON identities(grant_count);
CREATE INDEX identities_created ON identities(created_at);
CREATE INDEX identities_oldest ON identities((oldest_credential_at IS NULL), oldest_credential_at DESC);
CREATE INDEX identities_oldest_desc ON identities((oldest_credential_at IS NULL), oldest_credential_at, id DESC);

-- Set on the row being written (a member's handover writes only owner_id:
-- a trigger's change needs no column grant). The search path is pinned:
-- a trigger also fires for a session that did not set it.
CREATE FUNCTION identities_denorm() RETURNS trigger LANGUAGE plpgsql SET search_path = custodian, pg_temp AS $$
BEGIN
    IF NEW.owner_id IS NULL THEN
        NEW.owner_name := NULL;
        NEW.owner_state := 'none';
    ELSE
        SELECT p.display_name, CASE WHEN p.status = 'active' THEN 'owned' ELSE 'departed' END
          INTO NEW.owner_name, NEW.owner_state FROM people p WHERE p.id = NEW.owner_id;
        IF NOT FOUND THEN
            NEW.owner_name := NULL;
            NEW.owner_state := 'departed';
        END IF;
    END IF;
    NEW.source_name := (SELECT s.name FROM sources s WHERE s.id = NEW.source_id);
    RETURN NEW;
END $$;
CREATE TRIGGER identities_denorm BEFORE UPDATE OF owner_id, source_id ON identities
    FOR EACH ROW EXECUTE FUNCTION identities_denorm();
CREATE FUNCTION people_denorm() RETURNS trigger LANGUAGE plpgsql SET search_path = custodian, pg_temp AS $$
BEGIN
    UPDATE identities SET owner_name = NEW.display_name,
        owner_state = CASE WHEN NEW.status = 'active' THEN 'owned' ELSE 'departed' END
    WHERE owner_id = NEW.id;
    RETURN NULL;
END $$;
CREATE TRIGGER people_denorm_update AFTER UPDATE OF display_name, status ON people
    FOR EACH ROW WHEN (OLD.display_name IS DISTINCT FROM NEW.display_name OR OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION people_denorm();
CREATE FUNCTION sources_denorm() RETURNS trigger LANGUAGE plpgsql SET search_path = custodian, pg_temp AS $$
BEGIN
    UPDATE identities SET source_name = NEW.name WHERE source_id = NEW.id;
    RETURN NULL;
END $$;
CREATE TRIGGER sources_denorm_rename AFTER UPDATE OF name ON sources
    FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name) EXECUTE FUNCTION sources_denorm();
"#,
    },
    Migration {
        version: 13,
        description: "sources keep the identity Custodian signs in as",
        sql: r#"
-- The identity Custodian signs in to the source as (its external id in that
-- source: an Entra app's service principal, an AWS caller), as the last
-- sync that could tell found it; NULL: not known. `source show` names it and
-- the inventory marks it: Custodian governs its own access.
ALTER TABLE sources ADD COLUMN signed_in_as TEXT;
"#,
        postgres: r#"
-- The identity Custodian signs in to the source as (its external id in that
-- source: an Entra app's service principal, an AWS caller), as the last
-- sync that could tell found it; NULL: not known. `source show` names it and
-- the inventory marks it: Custodian governs its own access.
ALTER TABLE sources ADD COLUMN signed_in_as TEXT;
"#,
    },
    Migration {
        version: 14,
        description: "covering indexes for the posture page's counts",
        sql: r#"
-- The posture page's counts read only these (issue 19): the identity pass
-- of posture_counts from one covering index instead of the wide table rows,
-- and findings by check from (check, severity, identity) in index order.
CREATE INDEX identities_posture ON identities(status, kind, owner_state, registered, last_reviewed_at, review_interval_days, id);
CREATE INDEX findings_check ON findings(check_id, severity, identity_id, id);
"#,
        postgres: r#"
-- The posture page's counts read only these (issue 19): the identity pass
-- of posture_counts from one covering index instead of the wide table rows,
-- and findings by check from (check, severity, identity) in index order.
CREATE INDEX identities_posture ON identities(status, kind, owner_state, registered, last_reviewed_at, review_interval_days, id);
CREATE INDEX findings_check ON findings(check_id, severity, identity_id, id);
"#,
    },
    Migration {
        version: 15,
        description: "a partial index of high-consequence grants; one campaign item index fewer",
        sql: r#"
-- A campaign's launch counts each identity's high-consequence grants
-- (issue 19): from this small index instead of every grant's row. And it
-- writes one index fewer per item: campaign_items_pending (reviewer_id,
-- campaign_id, decision, risk, id) serves every lookup by reviewer that
-- campaign_items_queue (reviewer_id, decision, campaign_id) did.
CREATE INDEX grants_high_consequence ON grants(identity_id) WHERE high_consequence = 1;
DROP INDEX campaign_items_queue;
"#,
        postgres: r#"
-- A campaign's launch counts each identity's high-consequence grants
-- (issue 19): from this small index instead of every grant's row. And it
-- writes one index fewer per item: campaign_items_pending (reviewer_id,
-- campaign_id, decision, risk, id) serves every lookup by reviewer that
-- campaign_items_queue (reviewer_id, decision, campaign_id) did.
CREATE INDEX grants_high_consequence ON grants(identity_id) WHERE high_consequence = 1;
DROP INDEX campaign_items_queue;
"#,
    },
    Migration {
        version: 16,
        description: "identities keep a digest of what the last sync applied to them; unbaselined ones are indexed",
        sql: r#"
-- What the identity's credentials, grants and delegations were in the
-- fetch a sync last applied, digested (Fetched::children_digests): a resync
-- that brings the same digest skips reading and comparing them (issue 19).
-- NULL: not known, compare everything. Whatever else writes those rows
-- clears it.
ALTER TABLE identities ADD COLUMN children_digest TEXT;
-- Each sync baselines the identities it has not yet (track_drift): from
-- this index, not a read of every identity row of the source.
CREATE INDEX identities_unbaselined ON identities(source_id) WHERE baseline_at IS NULL;
"#,
        postgres: r#"
-- What the identity's credentials, grants and delegations were in the
-- fetch a sync last applied, digested (Fetched::children_digests): a resync
-- that brings the same digest skips reading and comparing them (issue 19).
-- NULL: not known, compare everything. Whatever else writes those rows
-- clears it.
ALTER TABLE identities ADD COLUMN children_digest TEXT;
-- (SQLite alone indexes the unbaselined identities: PostgreSQL reads the
-- source's rows for track_drift's baseline in 0.1 s at L, and an index on
-- baseline_at would make the baseline's update of every new identity a
-- non-HOT one.)
"#,
    },
];

/// The schema version this build writes.
pub fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// The PostgreSQL schema that holds a Custodian store.
pub const PG_SCHEMA: &str = "custodian";

/// The marker of a Custodian database on PostgreSQL (SQLite: the
/// `application_id` and `user_version` pragmas): one row, written by every
/// migration in its own transaction.
const PG_MARKER: &str = "custodian.custodian_marker";

/// The schema version of an open store.
pub fn schema_version(db: &Db) -> Result<i64> {
    match db.sqlite_conn() {
        Some(c) => Ok(c.query_row("PRAGMA user_version", [], |r| r.get(0))?),
        None => Ok(db
            .query_opt(&format!("SELECT version FROM {PG_MARKER}"), [], |r| {
                r.get(0)
            })?
            .unwrap_or(0)),
    }
}

fn too_new(version: i64) -> Error {
    Error::new(
        ErrorCode::DatabaseTooNew,
        format!(
            "this cache was written by a newer Custodian (schema {version}; this build knows up to {}); \
             it was left untouched: update Custodian to open it",
            latest_version()
        ),
    )
}

/// Reads the version without writing anything; rejects databases that are
/// not Custodian's or come from a newer Custodian.
pub fn check_compatible(db: &Db) -> Result<i64> {
    match db.sqlite_conn() {
        Some(c) => check_compatible_sqlite(c),
        None => check_compatible_pg(db),
    }
}

/// PostgreSQL: the marker table says whose database it is. A database with
/// tables in Custodian's schema or in `public` but no marker belongs to
/// someone else and is refused.
fn check_compatible_pg(db: &Db) -> Result<i64> {
    // One statement, one snapshot: a migrator committing in between cannot
    // make the tables visible without the marker.
    let (has_marker, tables): (bool, i64) = db.query_row(
        "SELECT count(*) FILTER (WHERE n.nspname = 'custodian' AND c.relname = 'custodian_marker') > 0,
                count(*)
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname IN ('custodian', 'public') AND c.relkind IN ('r', 'p', 'v', 'm', 'f')",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    if !has_marker {
        if tables > 0 {
            return Err(Error::new(
                ErrorCode::DatabaseUnreadable,
                format!(
                    "the PostgreSQL database holds {tables} tables but no Custodian marker: it is not a Custodian \
                     store; it was left untouched (use an empty database)"
                ),
            ));
        }
        return Ok(0);
    }
    let (app_id, version): (i64, i64) = db
        .query_opt(
            &format!("SELECT application_id, version FROM {PG_MARKER}"),
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?
        .unwrap_or((APPLICATION_ID, 0));
    if app_id != APPLICATION_ID {
        return Err(Error::new(
            ErrorCode::DatabaseUnreadable,
            format!("the PostgreSQL database belongs to another application (application id {app_id:#x}); it was left untouched"),
        ));
    }
    if version > latest_version() {
        return Err(too_new(version));
    }
    Ok(version)
}

/// SQLite: reads the pragmas without writing anything.
pub fn check_compatible_sqlite(conn: &rusqlite::Connection) -> Result<i64> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| {
            Error::new(
                ErrorCode::DatabaseUnreadable,
                format!("the file is not a readable database: {e}"),
            )
        })?;
    let app_id: i64 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    if version > latest_version() {
        return Err(too_new(version));
    }
    if app_id != APPLICATION_ID && app_id != 0 {
        return Err(Error::new(
            ErrorCode::DatabaseUnreadable,
            format!("the file is a SQLite database of another application (application_id {app_id:#x}); it was left untouched"),
        ));
    }
    if version == 0 {
        let tables: i64 = conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))?;
        if tables > 0 {
            return Err(Error::new(
                ErrorCode::DatabaseUnreadable,
                "the file is a SQLite database but not a Custodian cache; it was left untouched",
            ));
        }
    }
    Ok(version)
}

/// Applies every migration after the current version, up to `target`, each in
/// its own transaction. On PostgreSQL an advisory lock serializes desktops
/// that open a workspace at the same moment, and the version is read again
/// under it.
pub fn migrate_to(db: &Db, target: i64) -> Result<()> {
    let current = check_compatible(db)?;
    if current >= target {
        return Ok(());
    }
    for m in MIGRATIONS.iter().filter(|m| m.version <= target) {
        // The write transaction serializes migrators too (two desktops opening
        // a new workspace at once): the version is read again under it.
        let tx = db.transaction()?;
        let now = check_compatible(&tx)?;
        if m.version <= now {
            continue;
        }
        match tx.sqlite_conn() {
            Some(c) => {
                c.execute_batch(m.sql)
                    .context(|| format!("migration {} ({}) failed", m.version, m.description))?;
                c.pragma_update(None, "application_id", APPLICATION_ID)?;
                c.pragma_update(None, "user_version", m.version)?;
            }
            None => {
                if m.version == 1 {
                    tx.execute_script(&format!(
                        "CREATE SCHEMA IF NOT EXISTS {PG_SCHEMA};
                         CREATE TABLE {PG_MARKER} (
                             one            BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
                             application_id BIGINT NOT NULL,
                             version        BIGINT NOT NULL
                         );
                         INSERT INTO {PG_MARKER} (application_id, version) VALUES ({APPLICATION_ID}, 0);
                         SET LOCAL search_path = {PG_SCHEMA}, pg_temp;"
                    ))?;
                }
                tx.execute_script(m.postgres)
                    .context(|| format!("migration {} ({}) failed", m.version, m.description))?;
                tx.execute(&format!("UPDATE {PG_MARKER} SET version = ?1"), [m.version])?;
            }
        }
        tx.commit()?;
        tracing::info!(
            version = m.version,
            engine = db.engine().as_str(),
            "applied migration: {}",
            m.description
        );
    }
    Ok(())
}
