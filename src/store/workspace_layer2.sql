-- Layer 2: every member role can do its job through the app, and no more.

-- The transaction each database-appended entry was written in: the proof,
-- checked at commit, that a governance change carries its entry.
ALTER TABLE custodian.audit_log ADD COLUMN IF NOT EXISTS txid BIGINT;
CREATE INDEX IF NOT EXISTS audit_log_txid ON custodian.audit_log (txid) WHERE txid IS NOT NULL;

-- Entries wait in audit_pending until their transaction commits; a
-- deferred trigger then seals each into the chain under the advisory lock.
-- The lock is so held only for the seal and the commit itself, never across
-- a client's round trips: concurrent members do not queue behind each
-- other's work, and the chain's order is the commit order.
CREATE TABLE custodian.audit_pending (
    id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    txid    BIGINT NOT NULL DEFAULT txid_current(),
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    subject TEXT NOT NULL,
    details TEXT NOT NULL
);
CREATE INDEX audit_pending_txid ON custodian.audit_pending (txid);
REVOKE ALL ON custodian.audit_pending FROM PUBLIC;

CREATE OR REPLACE FUNCTION custodian.audit_append(p_action TEXT, p_subject TEXT, p_details TEXT) RETURNS TEXT
LANGUAGE plpgsql SECURITY DEFINER SET search_path = custodian, pg_temp AS $f$
DECLARE v_person BIGINT; v_actor TEXT;
BEGIN
  v_person := custodian.current_person();
  IF v_person IS NULL THEN
    RAISE EXCEPTION 'login % is not an active workspace member', session_user USING ERRCODE = '42501';
  END IF;
  IF octet_length(p_action) > 200 OR octet_length(p_subject) > 4000 OR octet_length(p_details) > 262144 THEN
    RAISE EXCEPTION 'audit entry too large' USING ERRCODE = '22001';
  END IF;
  SELECT display_name INTO v_actor FROM custodian.people WHERE id = v_person;
  INSERT INTO custodian.audit_pending (actor, action, subject, details)
  VALUES (v_actor, p_action, p_subject, p_details);
  RETURN 'pending';
END $f$;

-- The chain's own lock ("CAUD"), not the writers' lock ("CUST") that a
-- sync or a close holds for its whole transaction: a decision committing
-- during a long sync waits for no one but other seals.
CREATE FUNCTION custodian.audit_seal() RETURNS TRIGGER
LANGUAGE plpgsql SECURITY DEFINER SET search_path = custodian, pg_temp AS $f$
DECLARE v_seq BIGINT; v_prev TEXT; v_at BIGINT; v_hash TEXT;
BEGIN
  PERFORM pg_advisory_xact_lock(1128355140);
  SELECT seq, hash INTO v_seq, v_prev FROM custodian.audit_log ORDER BY seq DESC LIMIT 1;
  IF v_seq IS NULL THEN v_seq := 0; v_prev := repeat('0', 64); END IF;
  v_seq := v_seq + 1;
  v_at := floor(extract(epoch FROM clock_timestamp()))::bigint;
  v_hash := encode(sha256(custodian.lp('custodian-audit/2') || custodian.lp(v_prev)
     || custodian.lp(v_seq::text) || custodian.lp(v_at::text) || custodian.lp(NEW.actor)
     || custodian.lp(NEW.action) || custodian.lp(NEW.subject) || custodian.lp(NEW.details)), 'hex');
  INSERT INTO custodian.audit_log (seq, at, actor, action, subject, details, prev_hash, hash, format, txid)
  VALUES (v_seq, v_at, NEW.actor, NEW.action, NEW.subject, NEW.details, v_prev, v_hash, 2, NEW.txid);
  DELETE FROM custodian.audit_pending WHERE id = NEW.id;
  RETURN NULL;
END $f$;
CREATE CONSTRAINT TRIGGER audit_pending_seal AFTER INSERT ON custodian.audit_pending
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION custodian.audit_seal();

-- An auditor changes nothing, so appends nothing either.
REVOKE EXECUTE ON FUNCTION custodian.audit_append(TEXT, TEXT, TEXT) FROM {auditor};

-- Checked at commit: a member's change to governance rows needs an audit
-- entry appended in the same transaction (by audit_append, so by them).
CREATE FUNCTION custodian.require_audit() RETURNS TRIGGER
LANGUAGE plpgsql SECURITY DEFINER SET search_path = custodian, pg_temp AS $f$
BEGIN
  IF custodian.current_person() IS NULL THEN RETURN NULL; END IF;
  IF NOT EXISTS (SELECT 1 FROM custodian.audit_pending WHERE txid = txid_current())
     AND NOT EXISTS (SELECT 1 FROM custodian.audit_log WHERE txid = txid_current()) THEN
    RAISE EXCEPTION '% on % without its audit entry in the same transaction', TG_OP, TG_TABLE_NAME
      USING ERRCODE = '42501';
  END IF;
  RETURN NULL;
END $f$;
CREATE CONSTRAINT TRIGGER campaigns_audited AFTER INSERT OR UPDATE OR DELETE ON custodian.campaigns
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION custodian.require_audit();
CREATE CONSTRAINT TRIGGER campaign_items_audited AFTER INSERT OR UPDATE OR DELETE ON custodian.campaign_items
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION custodian.require_audit();
CREATE CONSTRAINT TRIGGER tasks_audited AFTER UPDATE OR DELETE ON custodian.tasks
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION custodian.require_audit();
CREATE CONSTRAINT TRIGGER offboarding_cases_audited AFTER UPDATE OR DELETE ON custodian.offboarding_cases
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION custodian.require_audit();
CREATE CONSTRAINT TRIGGER offboarding_items_audited AFTER UPDATE OR DELETE ON custodian.offboarding_items
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION custodian.require_audit();
CREATE CONSTRAINT TRIGGER departures_audited AFTER INSERT OR UPDATE OR DELETE ON custodian.departures
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION custodian.require_audit();
CREATE CONSTRAINT TRIGGER owner_overrides_audited AFTER INSERT OR UPDATE ON custodian.owner_overrides
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION custodian.require_audit();

-- What a role's rows are (SECURITY DEFINER: evaluated past RLS, once per query).
CREATE FUNCTION custodian.my_leavers() RETURNS SETOF BIGINT
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = custodian, pg_temp AS $f$
  SELECT p.id FROM custodian.offboarding_cases oc JOIN custodian.people lp ON lp.id = oc.person_id
    JOIN custodian.people p ON p.id = lp.id OR (trim(lp.email) <> '' AND lower(p.email) = lower(trim(lp.email)))
   WHERE oc.status = 'open' AND oc.manager_id = custodian.current_person()
$f$;
CREATE FUNCTION custodian.my_case_identities() RETURNS SETOF BIGINT
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = custodian, pg_temp AS $f$
  SELECT oi.identity_id FROM custodian.offboarding_items oi JOIN custodian.offboarding_cases oc ON oc.id = oi.case_id
   WHERE oc.status = 'open' AND oc.manager_id = custodian.current_person()
$f$;
CREATE FUNCTION custodian.my_campaign_identities() RETURNS SETOF BIGINT
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = custodian, pg_temp AS $f$
  SELECT ci.identity_id FROM custodian.campaign_items ci JOIN custodian.campaigns c ON c.id = ci.campaign_id
   WHERE c.owner_id = custodian.current_person()
$f$;

-- Reads: members read the inventory and the governance record (the review
-- queue and offboarding cases stay row-limited below).
GRANT SELECT ON ALL TABLES IN SCHEMA custodian TO {all};
REVOKE SELECT ON custodian.members, custodian.audit_pending FROM {all};
GRANT SELECT (login, person_id, roles, removed_at) ON custodian.members TO {all};
GRANT USAGE ON ALL SEQUENCES IN SCHEMA custodian TO {writers};

-- Nothing decided is ever lost: no member deletes governance history.
REVOKE DELETE ON custodian.campaigns, custodian.campaign_items, custodian.campaign_events, custodian.tasks,
  custodian.offboarding_cases, custodian.offboarding_items, custodian.audit_checkpoints,
  custodian.identity_events FROM {admin};

-- Campaign events: written as oneself.
GRANT INSERT ON custodian.campaign_events TO {writers};
ALTER TABLE custodian.campaign_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY events_read ON custodian.campaign_events FOR SELECT TO {all} USING (true);
CREATE POLICY events_as_self ON custodian.campaign_events FOR INSERT TO {owner}, {reviewer}, {manager}
  WITH CHECK (actor_id = custodian.current_person());
CREATE POLICY events_admin ON custodian.campaign_events FOR INSERT TO {admin}
  WITH CHECK (actor_id IS NULL OR actor_id = custodian.current_person());
GRANT INSERT ON custodian.identity_events TO {writers};

-- Review items. A reviewer updates only decision columns of their own items
-- (and may hand them on: the trigger checks the transition); the owner their
-- campaigns' items; a manager re-routes items held by their leavers.
REVOKE UPDATE ON custodian.campaign_items FROM {reviewer};
GRANT UPDATE (decision, decided_by, decided_at, by_policy, justification, new_owner_id, proposed, proposed_by,
  stage, reviewer_id, reviewer_reason) ON custodian.campaign_items TO {reviewer}, {manager};
DROP POLICY items_reviewer_decide ON custodian.campaign_items;
CREATE POLICY items_reviewer_decide ON custodian.campaign_items FOR UPDATE TO {reviewer}
  USING (reviewer_id = custodian.current_person()) WITH CHECK (true);
CREATE POLICY items_manager ON custodian.campaign_items FOR SELECT TO {manager}
  USING (reviewer_id IN (SELECT custodian.my_leavers()));
CREATE POLICY items_manager_move ON custodian.campaign_items FOR UPDATE TO {manager}
  USING (reviewer_id IN (SELECT custodian.my_leavers())) WITH CHECK (true);
ALTER TABLE custodian.campaign_items ADD COLUMN IF NOT EXISTS assigned_by BIGINT;

CREATE OR REPLACE FUNCTION custodian.two_person() RETURNS TRIGGER
LANGUAGE plpgsql SECURITY DEFINER SET search_path = custodian, pg_temp AS $f$
DECLARE me BIGINT := custodian.current_person(); builder BIGINT; c RECORD;
BEGIN
  IF me IS NULL THEN RETURN NEW; END IF; -- the DBA or a solo tool: the store's rules apply
  SELECT builder_id INTO builder FROM custodian.identities WHERE id = NEW.identity_id;
  SELECT owner_id, second_reviewer_id, fallback_reviewer_id INTO c FROM custodian.campaigns WHERE id = NEW.campaign_id;
  IF NEW.identity_id IS DISTINCT FROM OLD.identity_id OR NEW.campaign_id IS DISTINCT FROM OLD.campaign_id
     OR NEW.subject IS DISTINCT FROM OLD.subject OR NEW.item_type IS DISTINCT FROM OLD.item_type THEN
    RAISE EXCEPTION 'what a review item is about does not change' USING ERRCODE = '42501';
  END IF;
  IF OLD.decision IS NOT NULL AND (NEW.decision IS DISTINCT FROM OLD.decision
      OR NEW.decided_by IS DISTINCT FROM OLD.decided_by) THEN
    RAISE EXCEPTION 'item % is decided: a decision is final', OLD.id USING ERRCODE = '42501';
  END IF;
  IF NEW.decision IS NOT NULL AND OLD.decision IS NULL THEN
    IF NEW.decided_by IS NULL THEN
      -- a close policy: only the campaign's owner, closing it
      IF c.owner_id IS DISTINCT FROM me OR NEW.by_policy <> 1 THEN
        RAISE EXCEPTION 'a decision names its decider' USING ERRCODE = '42501';
      END IF;
    ELSE
      IF NEW.decided_by <> me THEN
        RAISE EXCEPTION 'a decision is recorded as its own decider' USING ERRCODE = '42501';
      END IF;
      IF OLD.reviewer_id IS DISTINCT FROM me THEN
        RAISE EXCEPTION 'only the assigned reviewer decides item %', OLD.id USING ERRCODE = '42501';
      END IF;
      IF NEW.by_policy <> 0 THEN
        RAISE EXCEPTION 'a person''s decision is not a policy''s' USING ERRCODE = '42501';
      END IF;
      IF builder = me THEN
        RAISE EXCEPTION 'no self-review: you built this identity' USING ERRCODE = '42501';
      END IF;
      IF OLD.proposed_by = me THEN
        RAISE EXCEPTION 'the second stage is not decided by the first stage''s decider' USING ERRCODE = '42501';
      END IF;
      IF OLD.assigned_by = me AND OLD.reviewer_id = me THEN
        RAISE EXCEPTION 'an item you assigned to yourself is decided by someone else' USING ERRCODE = '42501';
      END IF;
    END IF;
  END IF;
  IF NEW.proposed_by IS DISTINCT FROM OLD.proposed_by THEN
    IF OLD.proposed_by IS NOT NULL OR NEW.proposed_by <> me OR OLD.reviewer_id IS DISTINCT FROM me
       OR builder = me OR NEW.stage <> 2 THEN
      RAISE EXCEPTION 'a first-stage proposal is made once, by the item''s reviewer' USING ERRCODE = '42501';
    END IF;
    IF NEW.reviewer_id = me
       OR NEW.reviewer_id NOT IN (coalesce(c.second_reviewer_id, -1), coalesce(c.fallback_reviewer_id, -1), c.owner_id) THEN
      RAISE EXCEPTION 'the second stage goes to the campaign''s second reviewer, never back to its proposer'
        USING ERRCODE = '42501';
    END IF;
  ELSIF NEW.stage IS DISTINCT FROM OLD.stage THEN
    RAISE EXCEPTION 'the stage changes only with a proposal' USING ERRCODE = '42501';
  END IF;
  IF NEW.reviewer_id IS DISTINCT FROM OLD.reviewer_id THEN
    IF OLD.decision IS NOT NULL THEN
      RAISE EXCEPTION 'item % is decided: it stays with its decider', OLD.id USING ERRCODE = '42501';
    END IF;
    IF NEW.reviewer_id = builder THEN
      RAISE EXCEPTION 'no self-review: an item never goes to the identity''s builder' USING ERRCODE = '42501';
    END IF;
    NEW.assigned_by := me;
  END IF;
  RETURN NEW;
END $f$;

-- Campaign owners: close their campaigns (tasks, reviewed marks).
GRANT INSERT ON custodian.tasks TO {owner}, {manager}, {admin};
GRANT UPDATE (status, updated_at, updated_by, note) ON custodian.tasks TO {owner}, {manager}, {admin};
ALTER TABLE custodian.tasks ENABLE ROW LEVEL SECURITY;
CREATE POLICY tasks_read ON custodian.tasks FOR SELECT TO {all} USING (true);
CREATE POLICY tasks_admin ON custodian.tasks FOR ALL TO {admin} USING (true) WITH CHECK (true);
CREATE POLICY tasks_owner ON custodian.tasks FOR INSERT TO {owner}
  WITH CHECK (origin = 'campaign' AND campaign_id IN (SELECT id FROM custodian.campaigns WHERE owner_id = custodian.current_person()));
CREATE POLICY tasks_owner_update ON custodian.tasks FOR UPDATE TO {owner}
  USING (campaign_id IN (SELECT id FROM custodian.campaigns WHERE owner_id = custodian.current_person()));
CREATE POLICY tasks_manager ON custodian.tasks FOR INSERT TO {manager}
  WITH CHECK (origin = 'offboarding' AND identity_id IN (SELECT custodian.my_case_identities()));
CREATE POLICY tasks_manager_update ON custodian.tasks FOR UPDATE TO {manager}
  USING (identity_id IN (SELECT custodian.my_case_identities()));

GRANT UPDATE (last_reviewed_at, review_flag, review_flag_at, drift, baseline_at, baseline_resources)
  ON custodian.identities TO {owner};
GRANT UPDATE (owner_id, credential_count, oldest_credential_at, grant_count, finding_count, max_severity)
  ON custodian.identities TO {manager};
ALTER TABLE custodian.identities ENABLE ROW LEVEL SECURITY;
CREATE POLICY identities_read ON custodian.identities FOR SELECT TO {all} USING (true);
CREATE POLICY identities_admin ON custodian.identities FOR ALL TO {admin} USING (true) WITH CHECK (true);
CREATE POLICY identities_owner ON custodian.identities FOR UPDATE TO {owner}
  USING (id IN (SELECT custodian.my_campaign_identities()));
CREATE POLICY identities_manager ON custodian.identities FOR UPDATE TO {manager}
  USING (id IN (SELECT custodian.my_case_identities()));

-- Managers: their own reports' offboarding cases, and what a handover changes.
GRANT UPDATE (status, closed_at, closed_by) ON custodian.offboarding_cases TO {manager};
GRANT UPDATE (action, new_owner_id, until, rotate, decided_by, decided_at, applied_at)
  ON custodian.offboarding_items TO {manager};
ALTER TABLE custodian.offboarding_cases ENABLE ROW LEVEL SECURITY;
ALTER TABLE custodian.offboarding_items ENABLE ROW LEVEL SECURITY;
CREATE POLICY cases_read ON custodian.offboarding_cases FOR SELECT TO {admin}, {auditor} USING (true);
CREATE POLICY cases_admin ON custodian.offboarding_cases FOR ALL TO {admin} USING (true) WITH CHECK (true);
CREATE POLICY cases_manager_read ON custodian.offboarding_cases FOR SELECT TO {manager}
  USING (manager_id = custodian.current_person());
CREATE POLICY cases_manager ON custodian.offboarding_cases FOR UPDATE TO {manager}
  USING (manager_id = custodian.current_person() AND status = 'open')
  WITH CHECK (manager_id = custodian.current_person());
CREATE POLICY case_items_read ON custodian.offboarding_items FOR SELECT TO {admin}, {auditor} USING (true);
CREATE POLICY case_items_admin ON custodian.offboarding_items FOR ALL TO {admin} USING (true) WITH CHECK (true);
CREATE POLICY case_items_manager_read ON custodian.offboarding_items FOR SELECT TO {manager}
  USING (case_id IN (SELECT id FROM custodian.offboarding_cases WHERE manager_id = custodian.current_person()));
CREATE POLICY case_items_manager ON custodian.offboarding_items FOR UPDATE TO {manager}
  USING (case_id IN (SELECT id FROM custodian.offboarding_cases WHERE manager_id = custodian.current_person() AND status = 'open'))
  WITH CHECK (true);
GRANT INSERT, UPDATE ON custodian.owner_overrides TO {manager};
-- The search index follows identities by trigger (an owner's name changes it).
GRANT INSERT, UPDATE, DELETE ON custodian.identity_fts TO {owner}, {manager};
GRANT INSERT, DELETE ON custodian.findings TO {manager};
ALTER TABLE custodian.owner_overrides ENABLE ROW LEVEL SECURITY;
CREATE POLICY overrides_read ON custodian.owner_overrides FOR SELECT TO {all} USING (true);
CREATE POLICY overrides_admin ON custodian.owner_overrides FOR ALL TO {admin} USING (true) WITH CHECK (true);
CREATE POLICY overrides_manager ON custodian.owner_overrides FOR ALL TO {manager}
  USING (identity_id IN (SELECT custodian.my_case_identities()))
  WITH CHECK (identity_id IN (SELECT custodian.my_case_identities()));
ALTER TABLE custodian.findings ENABLE ROW LEVEL SECURITY;
CREATE POLICY findings_read ON custodian.findings FOR SELECT TO {all} USING (true);
CREATE POLICY findings_admin ON custodian.findings FOR ALL TO {admin} USING (true) WITH CHECK (true);
CREATE POLICY findings_manager ON custodian.findings FOR ALL TO {manager}
  USING (identity_id IN (SELECT custodian.my_case_identities()))
  WITH CHECK (identity_id IN (SELECT custodian.my_case_identities()));
