-- Layer 3: a manager marks their own reports' departures and opens those
-- leavers' offboarding cases (admins and syncs could before; now the
-- person's manager can too, and nobody else's report).

-- The caller's name as the audit log and `marked_by` write it.
CREATE FUNCTION custodian.my_name() RETURNS TEXT
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = custodian, pg_temp AS $f$
  SELECT display_name FROM custodian.people WHERE id = custodian.current_person()
$f$;

-- A manager's reports: people whose manager in the inventory
-- (people.manager_id) is the caller, with every record of the same human
-- (same non-empty email, as the store groups them), never the caller.
CREATE FUNCTION custodian.my_reports() RETURNS SETOF BIGINT
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = custodian, pg_temp AS $f$
  SELECT p.id FROM custodian.people r
    JOIN custodian.people p ON p.id = r.id OR (trim(r.email) <> '' AND lower(p.email) = lower(trim(r.email)))
   WHERE r.manager_id = custodian.current_person() AND p.id <> custodian.current_person()
$f$;

-- True when `p_identity` is what the leaver of the caller's open case
-- `p_case` owns or built (any of their records): a manager's case holds
-- their leaver's identities and nothing else, since a case's identities are
-- what its manager may hand over.
CREATE FUNCTION custodian.leaves_behind(p_case BIGINT, p_identity BIGINT) RETURNS BOOLEAN
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = custodian, pg_temp AS $f$
  SELECT EXISTS (SELECT 1 FROM custodian.offboarding_cases oc
      JOIN custodian.people lp ON lp.id = oc.person_id
      JOIN custodian.people p ON p.id = lp.id OR (trim(lp.email) <> '' AND lower(p.email) = lower(trim(lp.email)))
      JOIN custodian.identities i ON i.id = p_identity AND (i.owner_id = p.id OR i.builder_id = p.id)
     WHERE oc.id = p_case AND oc.status = 'open' AND oc.manager_id = custodian.current_person())
$f$;

-- Departures: everyone reads them; the admin (and a sync) writes any; a
-- manager marks (and re-dates) only their own reports, in their own name.
GRANT INSERT, UPDATE ON custodian.departures TO {manager};
ALTER TABLE custodian.departures ENABLE ROW LEVEL SECURITY;
CREATE POLICY departures_read ON custodian.departures FOR SELECT TO {all} USING (true);
CREATE POLICY departures_admin ON custodian.departures FOR ALL TO {admin} USING (true) WITH CHECK (true);
CREATE POLICY departures_manager_mark ON custodian.departures FOR INSERT TO {manager}
  WITH CHECK (person_id IN (SELECT custodian.my_reports()) AND marked_by = custodian.my_name());
CREATE POLICY departures_manager_redate ON custodian.departures FOR UPDATE TO {manager}
  USING (person_id IN (SELECT custodian.my_reports()))
  WITH CHECK (person_id IN (SELECT custodian.my_reports()) AND marked_by = custodian.my_name());

-- The case of a report the manager marked departing: opened by them, with
-- them as its manager, holding only what the leaver owns or built.
GRANT INSERT ON custodian.offboarding_cases, custodian.offboarding_items TO {manager};
CREATE POLICY cases_manager_open ON custodian.offboarding_cases FOR INSERT TO {manager}
  WITH CHECK (status = 'open' AND closed_at IS NULL AND manager_id = custodian.current_person()
    AND person_id IN (SELECT custodian.my_reports())
    AND person_id IN (SELECT d.person_id FROM custodian.departures d));
CREATE POLICY case_items_manager_open ON custodian.offboarding_items FOR INSERT TO {manager}
  WITH CHECK (action IS NULL AND decided_by IS NULL AND applied_at IS NULL
    AND custodian.leaves_behind(case_id, identity_id));
-- Opening a case counts the leaver's pending review items (read only; once
-- the case is open, layer 2's items_manager policy takes over).
CREATE POLICY items_manager_departing ON custodian.campaign_items FOR SELECT TO {manager}
  USING (reviewer_id IN (SELECT custodian.my_reports())
    AND reviewer_id IN (SELECT d.person_id FROM custodian.departures d));
-- A case's opening carries its audit entry (offboarding.open) like its changes.
CREATE CONSTRAINT TRIGGER offboarding_cases_opened_audited AFTER INSERT ON custodian.offboarding_cases
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION custodian.require_audit();

-- The identity timeline is evidence of who registered, transferred or
-- retired an identity: every member writes entries in their own name only.
ALTER TABLE custodian.identity_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY identity_events_read ON custodian.identity_events FOR SELECT TO {all} USING (true);
CREATE POLICY identity_events_own_name ON custodian.identity_events FOR INSERT TO {writers}
  WITH CHECK (actor = custodian.my_name());

-- The schema's own marker is the migrations' (the DBA's), not the admin's.
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON custodian.custodian_marker FROM {admin};
-- Nobody truncates anything: TRUNCATE skips row-level security and triggers.
REVOKE TRUNCATE ON ALL TABLES IN SCHEMA custodian FROM {all};
