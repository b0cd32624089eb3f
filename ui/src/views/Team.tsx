import { useEffect, useState } from 'preact/hooks';
import type { OffboardAction, OffboardingCase, OffboardingItemView, PersonRef, TeamView } from '../bindings';
import { identityHref } from '../lib/route';
import { toUserError, type UserError } from '../lib/ipc';
import { useCapabilities, useWhoAmI } from '../lib/connection';
import { ErrorCallout } from '../components/ErrorCallout';
import { bulkPlan, describeApply, describeDecision, offboarding, transferAll } from '../lib/offboarding';
import { reviews } from '../lib/reviews';
import { PersonSearch } from '../components/PersonSearch';
import { Page, TableFrame } from '../components/Page';
import { useActingPerson, WhoAreYou } from '../components/WhoAreYou';

function ErrorBox({ error }: { error: UserError | null }) {
  return <ErrorCallout error={error} testid="team-error" />;
}

function Preview({ item }: { item: OffboardingItemView }) {
  const p = item.preview;
  return (
    <span class="muted">
      {p.grants} grants ({p.high_consequence_grants} high-consequence), {p.delegations_out} delegations, {p.findings.length} findings
      {p.sensitive_resources.length > 0 && <>; reaches {p.sensitive_resources.join(', ')}</>}
      {p.secrets.length > 0 && <>; secrets the leaver could know: {p.secrets.join(', ')}</>}
    </span>
  );
}

function today(): string {
  return new Date().toISOString().slice(0, 10);
}

/** One offboarding case: what the person owned or built, and what happens to it. */
function CaseView({ id, managerId, onDone }: { id: number; managerId: number; onDone: () => void }) {
  const [c, setC] = useState<OffboardingCase | null>(null);
  const [rotate, setRotate] = useState(true);
  const [error, setError] = useState<UserError | null>(null);
  const [result, setResult] = useState('');
  const [selected, setSelected] = useState<Set<number>>(new Set());
  const [action, setAction] = useState<OffboardAction>('transfer');
  const [owner, setOwner] = useState<PersonRef | null>(null);
  const [until, setUntil] = useState('');
  const [bulkError, setBulkError] = useState('');
  // Planning and applying need the manager role in a workspace (everything in solo mode).
  const mayAct = useCapabilities().actions.has('offboard');
  const load = () => offboarding.offboardingCase(id).then(setC, (e: unknown) => setError(toUserError(e)));
  useEffect(() => {
    void load();
  }, [id]);
  if (!c) return <p class="muted">Loading the case…</p>;
  const open = c.summary.status === 'open' && mayAct;
  const undecided = c.items.filter((it) => !it.action && !it.applied_at).map((it) => it.id);
  const toggle = (itemId: number) => {
    const next = new Set(selected);
    if (next.has(itemId)) next.delete(itemId);
    else next.add(itemId);
    setSelected(next);
  };
  const planSelected = () => {
    const plan = bulkPlan(
      [...selected].filter((x) => undecided.includes(x)),
      action,
      owner?.id ?? null,
      until,
      rotate,
      today(),
    );
    if (typeof plan === 'string') {
      setBulkError(plan);
      return;
    }
    setBulkError('');
    offboarding.plan(id, plan).then(
      () => {
        setSelected(new Set());
        void load();
      },
      (e: unknown) => setError(toUserError(e)),
    );
  };
  const planOne = (item: OffboardingItemView, action: OffboardAction, owner: number | null) =>
    offboarding
      .plan(id, { items: [item.id], action, owner, until: null, rotate: action === 'transfer' && rotate })
      .then(load, (e: unknown) => setError(toUserError(e)));
  return (
    <section class="panel" data-testid="offboarding-case">
      <h2>
        {c.summary.person} <span class="badge">{c.summary.person_status}</span>
      </h2>
      <p class="muted">
        {c.summary.reason}. {c.summary.items} items, {c.summary.decided} decided, {c.summary.applied} applied
        {c.summary.pending_reviews > 0 && `; ${c.summary.pending_reviews} review items still assigned to them`}.
      </p>
      <ErrorBox error={error} />
      {open && (
        <p>
          <label>
            <input type="checkbox" checked={rotate} onChange={(e) => setRotate((e.target as HTMLInputElement).checked)} /> rotate the
            secrets they could know
          </label>{' '}
          <button
            class="button"
            data-testid="transfer-all-to-me"
            onClick={() => offboarding.plan(id, transferAll(managerId, rotate)).then(load, (e: unknown) => setError(toUserError(e)))}
          >
            Transfer everything undecided to me
          </button>{' '}
          <button
            class="button button--primary"
            data-testid="apply-offboarding"
            disabled={c.summary.decided === c.summary.applied}
            onClick={() =>
              offboarding.apply(id).then(
                (r) => {
                  setResult(describeApply(r));
                  void load();
                  onDone();
                },
                (e: unknown) => setError(toUserError(e)),
              )
            }
          >
            Apply decisions
          </button>
        </p>
      )}
      {open && undecided.length > 0 && (
        <div class="bulk-bar" data-testid="bulk-bar">
          <span>{selected.size} selected</span>
          <select
            class="input input--mid"
            data-testid="bulk-action"
            aria-label="Action for the selected items"
            value={action}
            onChange={(e) => setAction((e.target as HTMLSelectElement).value as OffboardAction)}
          >
            <option value="transfer">transfer to</option>
            <option value="keep">keep with a temporary owner</option>
            <option value="retire">retire (disable, revoke)</option>
          </select>
          {action !== 'retire' && <PersonSearch chosen={owner} onChosen={setOwner} placeholder="New owner: name or email" testid="bulk-owner" />}
          {action === 'keep' && (
            <label>
              until{' '}
              <input
                type="date"
                class="input input--mid"
                data-testid="bulk-until"
                min={today()}
                value={until}
                onInput={(e) => setUntil((e.target as HTMLInputElement).value)}
              />
            </label>
          )}
          <button class="button" data-testid="bulk-plan" onClick={planSelected}>
            Plan selected
          </button>
          {bulkError && (
            <span class="error-text" role="alert" data-testid="bulk-error">
              {bulkError}
            </span>
          )}
        </div>
      )}
      {result && (
        <p class="notice" data-testid="apply-result">
          {result}
        </p>
      )}
      <TableFrame label="Items of the case">
      <table class="table">
        <thead>
          <tr>
            <th>
              {open && undecided.length > 0 && (
                <input
                  type="checkbox"
                  aria-label="Select every undecided item"
                  data-testid="select-all-items"
                  checked={undecided.length > 0 && undecided.every((x) => selected.has(x))}
                  onChange={(e) => setSelected((e.target as HTMLInputElement).checked ? new Set(undecided) : new Set())}
                />
              )}
            </th>
            <th>Identity</th>
            <th>Relation</th>
            <th>Handover preview</th>
            <th>Decision</th>
          </tr>
        </thead>
        <tbody>
          {c.items.map((it) => (
            <tr key={it.id} data-testid="offboarding-item" data-id={String(it.id)}>
              <td>
                {open && !it.action && !it.applied_at && (
                  <input
                    type="checkbox"
                    aria-label={`Select ${it.name}`}
                    data-testid="select-item"
                    checked={selected.has(it.id)}
                    onChange={() => toggle(it.id)}
                  />
                )}
              </td>
              <td>
                <a href={identityHref(it.identity_id)}>{it.name}</a> <span class="muted">{it.kind}</span>
              </td>
              <td>{it.relation}</td>
              <td class="cell-wrap">
                <Preview item={it} />
              </td>
              <td data-testid="offboarding-decision">
                {it.action
                  ? describeDecision(it)
                    : open && (
                        <span>
                          {it.suggestions.slice(0, 2).map((s) => (
                            <button key={s.person_id} class="link-button" title={s.reason} onClick={() => planOne(it, 'transfer', s.person_id)}>
                              → {s.name}
                            </button>
                          ))}{' '}
                          <button class="link-button" onClick={() => planOne(it, 'retire', null)}>
                            retire
                          </button>
                        </span>
                      )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      </TableFrame>
      {c.tasks.length > 0 && (
        <>
          <h3>Tasks</h3>
          <ul data-testid="offboarding-tasks">
            {c.tasks.map((t) => (
              <li key={t.id} title={t.note || undefined}>
                {t.kind} · {t.status} · {t.target}
                {t.write_back && mayAct && (
                  <>
                    {' '}
                    <button
                      class="link-button"
                      data-testid="write-back"
                      title="Carry it out in the source now"
                      onClick={() =>
                        reviews.writeBack(t.id).then(
                          (r) => {
                            setResult(`Task ${r.task_id} ${r.status}: ${r.note}`);
                            void load();
                          },
                          (e: unknown) => {
                            setError(toUserError(e));
                            void load();
                          },
                        )
                      }
                    >
                      write back
                    </button>
                  </>
                )}
              </li>
            ))}
          </ul>
        </>
      )}
    </section>
  );
}

/** The manager's view: direct reports, their departures, what waits for the manager. */
export function Team() {
  const [me, setMe] = useActingPerson();
  // In a team workspace you are your login's member: no "Who are you?".
  const claimed = useWhoAmI().who?.mode !== 'workspace';
  const [team, setTeam] = useState<TeamView | null>(null);
  const [error, setError] = useState<UserError | null>(null);
  const [openCase, setOpenCase] = useState<number | null>(null);
  const load = () =>
    offboarding.myTeam().then(
      (t) => {
        setTeam(t);
        setError(null);
      },
      (e: unknown) => setError(toUserError(e)),
    );
  useEffect(() => {
    if (me) void load();
  }, [me]);
  if (me === undefined)
    return (
      <Page class="team" testid="team" title="My team" busy>
        <p class="muted">Loading…</p>
      </Page>
    );
  // First run: nobody chosen yet. The team is the chosen person's direct reports.
  if (me === null)
    return (
      <Page class="team" testid="team" title="My team" lead="The people who report to you, their departures, and what waits for your decision.">
        <WhoAreYou
          why={
            <>
              My team shows the direct reports of the person you are. Choose yourself from the people in the cache; Custodian remembers it (change it any
              time here, in My reviews or in <a href="#/settings" data-testid="team-settings-link">Settings</a>).
            </>
          }
          onChosen={(p) => {
            setTeam(null);
            setOpenCase(null);
            setMe(p);
          }}
        />
      </Page>
    );
  return (
    <Page
      class="team"
      testid="team"
      title="My team"
      actions={
        <span class="muted" data-testid="team-acting-person">
          As <b>{me.display_name}</b>{' '}
          {claimed ? (
            <button class="link-button" onClick={() => setMe(null)} aria-label="Choose who you are">
              change
            </button>
          ) : (
            <a href="#/settings">Settings</a>
          )}
        </span>
      }
    >
      <ErrorBox error={error} />
      {team && (
        <>
          <p data-testid="team-counts">
            {team.members.length} direct reports · {team.cases.length} open offboarding cases ({team.undecided_items} items to decide) ·{' '}
            {team.pending_reviews} review items waiting for you
          </p>
          {team.members.length === 0 && (
            <div class="callout" data-testid="team-empty">
              <strong>Nobody reports to {me.display_name} in the cache.</strong>
              <p>
                Reporting lines come from the people sources (Entra ID, Okta, the HR export).{' '}
                {claimed && (
                  <>
                    <button class="link-button" onClick={() => setMe(null)}>
                      Choose someone else
                    </button>{' '}
                    or{' '}
                  </>
                )}
                <a href="#/sources">check the sources</a>.
              </p>
            </div>
          )}
          {team.members.length > 0 && (
          <TableFrame label="Direct reports">
          <table class="table">
            <thead>
              <tr>
                <th>Person</th>
                <th>Status</th>
                <th>Owns</th>
                <th>Offboarding</th>
              </tr>
            </thead>
            <tbody>
              {team.members.map((m) => (
                <tr key={m.person_id} data-testid="team-member" data-id={String(m.person_id)}>
                  <td>
                    {m.name} <span class="muted">{m.email}</span>
                  </td>
                  <td>
                    <span class={`badge ${m.status === 'active' ? '' : 'badge--bad'}`}>{m.status}</span>
                    {m.departing_on && <span class="muted"> leaving {m.departing_on.slice(0, 10)}</span>}
                  </td>
                  <td>{m.owns}</td>
                  <td>
                    {m.case_id !== null && (
                      <button class="link-button" data-testid="open-case" onClick={() => setOpenCase(m.case_id)}>
                        case #{m.case_id}
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          </TableFrame>
          )}
          {openCase !== null && <CaseView id={openCase} managerId={team.manager_id} onDone={() => void load()} />}
        </>
      )}
    </Page>
  );
}
