import { useEffect, useState } from 'preact/hooks';
import type {
  CampaignProgress,
  CampaignView,
  Granularity,
  IdentityKind,
  PersonRef,
  Recurrence,
  ReviewerRule,
  UndecidedPolicy,
} from '../bindings';
import { toUserError, type UserError } from '../lib/ipc';
import { useCapabilities } from '../lib/connection';
import { ErrorCallout } from '../components/ErrorCallout';
import { newCampaign, reviews } from '../lib/reviews';
import { PersonSearch } from '../components/PersonSearch';
import { Page, TableFrame } from '../components/Page';
import { useActingPerson, WhoAreYou } from '../components/WhoAreYou';

const KINDS: IdentityKind[] = ['ai_agent', 'service_account', 'oauth_app', 'api_key', 'workload', 'bot'];

function ErrorBox({ error }: { error: UserError | null }) {
  return <ErrorCallout error={error} testid="campaign-error" />;
}

/** Search-as-you-type over the people in the cache. */
function PersonField({ label, value, onChange, testid }: { label: string; value: PersonRef | null; onChange: (p: PersonRef | null) => void; testid: string }) {
  const [search, setSearch] = useState('');
  const [found, setFound] = useState<PersonRef[]>([]);
  useEffect(() => {
    if (search.trim().length < 2) return setFound([]);
    let live = true;
    reviews.findPeople(search).then((p) => live && setFound(p.filter((x) => x.status === 'active').slice(0, 6)), () => undefined);
    return () => {
      live = false;
    };
  }, [search]);
  return (
    <div class="field">
      {label}{' '}
      {value ? (
        <span data-testid={`${testid}-chosen`}>
          {value.display_name}{' '}
          <button type="button" class="link-button" onClick={() => onChange(null)}>
            change
          </button>
        </span>
      ) : (
        <span class="person-field">
          <input class="input" data-testid={testid} value={search} placeholder="name or email" onInput={(e) => setSearch((e.target as HTMLInputElement).value)} />
          {found.map((p) => (
            <button
              type="button"
              key={p.id}
              class="link-button"
              data-testid={`${testid}-option`}
              data-id={String(p.id)}
              title={p.email}
              onClick={(e) => {
                e.preventDefault();
                onChange(p);
              }}
            >
              {p.display_name} <span class="muted">{p.email}</span>
            </button>
          ))}
        </span>
      )}
    </div>
  );
}

/** Values a form starts from. */
export interface CampaignPreset {
  name: string;
  description: string;
  kinds: IdentityKind[];
  due: string;
  recurrence: Recurrence;
  fallback: PersonRef | null;
}

/** YYYY-MM-DD, `days` after `from`. */
export function addDays(from: Date, days: number): string {
  const d = new Date(from.getTime() + days * 86_400_000);
  return d.toISOString().slice(0, 10);
}

/**
 * The first campaign's starting point: every non-human kind, owners review,
 * the person starting it as the fallback reviewer, due in 30 days, quarterly.
 */
export function firstCampaignPreset(me: PersonRef | null, now: Date): CampaignPreset {
  return {
    name: 'Non-human identity certification',
    description: 'Owners confirm each identity, grant and credential they are accountable for.',
    kinds: [...KINDS],
    due: addDays(now, 30),
    recurrence: 'quarterly',
    fallback: me,
  };
}

function CreateForm({ onCreated, preset }: { onCreated: (c: CampaignView) => void; preset?: CampaignPreset }) {
  const [name, setName] = useState(preset?.name ?? '');
  const [description, setDescription] = useState(preset?.description ?? '');
  const [due, setDue] = useState(preset?.due ?? '');
  const [rule, setRule] = useState<ReviewerRule>('owner');
  const [granularity, setGranularity] = useState<Granularity>('all');
  const [recurrence, setRecurrence] = useState<Recurrence>(preset?.recurrence ?? 'none');
  const [kinds, setKinds] = useState<IdentityKind[]>(preset?.kinds ?? ['ai_agent']);
  const [days, setDays] = useState('');
  const [fallback, setFallback] = useState<PersonRef | null>(preset?.fallback ?? null);
  const [named, setNamed] = useState<PersonRef | null>(null);
  const [problem, setProblem] = useState('');
  const [error, setError] = useState<UserError | null>(null);
  const [progress, setProgress] = useState<[number, number] | null>(null);
  const submit = (e: Event) => {
    e.preventDefault();
    const c = newCampaign({
      name,
      description,
      due,
      fallback: fallback?.id ?? null,
      rule,
      named: named?.id ?? null,
      granularity,
      kinds,
      notReviewedDays: days,
      recurrence,
    });
    if (typeof c === 'string') return setProblem(c);
    setProblem('');
    setProgress([0, 0]);
    const poll = setInterval(() => reviews.launchProgress().then((p) => p && setProgress(p), () => undefined), 250);
    reviews.createCampaign(c).then(
      (v) => {
        clearInterval(poll);
        setProgress(null);
        onCreated(v);
      },
      (err: unknown) => {
        clearInterval(poll);
        setProgress(null);
        setError(toUserError(err));
      },
    );
  };
  return (
    <form class="panel campaign-form" onSubmit={submit} data-testid="campaign-form">
      <h2>New campaign</h2>
      <label class="field">
        Name <input class="input" data-testid="campaign-name" value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
      </label>
      <label class="field">
        Description <input class="input input--wide" value={description} onInput={(e) => setDescription((e.target as HTMLInputElement).value)} />
      </label>
      <fieldset class="field">
        <legend>Identities</legend>
        {KINDS.map((k) => (
          <label key={k} class="check">
            <input
              type="checkbox"
              checked={kinds.includes(k)}
              onChange={(e) => setKinds((e.target as HTMLInputElement).checked ? [...kinds, k] : kinds.filter((x) => x !== k))}
            />{' '}
            {k}
          </label>
        ))}{' '}
        <label class="check">
          not reviewed in <input class="input input--small" value={days} onInput={(e) => setDays((e.target as HTMLInputElement).value)} /> days
        </label>
      </fieldset>
      <label class="field">
        Certify{' '}
        <select value={granularity} onChange={(e) => setGranularity((e.target as HTMLSelectElement).value as Granularity)}>
          <option value="all">each identity, grant and credential</option>
          <option value="identities">each identity</option>
          <option value="access">each grant and credential</option>
        </select>
      </label>
      <label class="field">
        Reviewer{' '}
        <select data-testid="campaign-rule" value={rule} onChange={(e) => setRule((e.target as HTMLSelectElement).value as ReviewerRule)}>
          <option value="owner">the owner</option>
          <option value="owner_manager">the owner's manager</option>
          <option value="resource_owner">the resource owner (grants)</option>
          <option value="named">a named reviewer</option>
        </select>
      </label>
      {rule === 'named' && <PersonField label="Named reviewer" value={named} onChange={setNamed} testid="campaign-named" />}
      <PersonField label="Fallback reviewer" value={fallback} onChange={setFallback} testid="campaign-fallback" />
      <label class="field">
        Due <input type="date" class="input" data-testid="campaign-due" value={due} onInput={(e) => setDue((e.target as HTMLInputElement).value)} />
      </label>
      <label class="field">
        Repeats{' '}
        <select value={recurrence} onChange={(e) => setRecurrence((e.target as HTMLSelectElement).value as Recurrence)}>
          <option value="none">no</option>
          <option value="monthly">monthly</option>
          <option value="quarterly">quarterly</option>
          <option value="semi_annual">every six months</option>
          <option value="annual">yearly</option>
        </select>
      </label>
      {problem && <p class="error-text">{problem}</p>}
      <ErrorBox error={error} />
      {progress && (
        <div class="progress" data-testid="campaign-launch-progress">
          <div class="progress__bar" style={{ width: progress[1] ? `${Math.round((progress[0] / progress[1]) * 100)}%` : '5%' }} />
          <span>
            Generating items {progress[0]}
            {progress[1] ? ` / ${progress[1]}` : ''}
          </span>
        </div>
      )}
      <button class="button button--primary" type="submit" data-testid="campaign-create" disabled={progress !== null}>
        Create and start
      </button>
    </form>
  );
}

function Detail({ id, onChanged }: { id: number; onChanged: () => void }) {
  const [p, setP] = useState<CampaignProgress | null>(null);
  const [error, setError] = useState<UserError | null>(null);
  const [policy, setPolicy] = useState<UndecidedPolicy>('recommendation');
  const [message, setMessage] = useState('');
  /** The reviewer whose pending items are being delegated, with to whom and why. */
  const [delegating, setDelegating] = useState<{ from: number; name: string } | null>(null);
  const [delegateTo, setDelegateTo] = useState<PersonRef | null>(null);
  const [delegateWhy, setDelegateWhy] = useState('');
  // Remind, escalate, delegate, close and tasks: the campaign owner's (everything in solo mode).
  const manage = useCapabilities().actions.has('close_campaign');
  const load = () => reviews.campaignProgress(id).then(setP, (e: unknown) => setError(toUserError(e)));
  useEffect(() => {
    void load();
  }, [id]);
  const act = (f: () => Promise<string>) =>
    f().then(
      (m) => {
        setMessage(m);
        void load();
        onChanged();
      },
      (e: unknown) => setError(toUserError(e)),
    );
  if (!p) return <ErrorBox error={error} />;
  const c = p.campaign;
  const maxDecision = Math.max(1, ...p.by_decision.map((d) => d.count));
  const undecided = c.items - c.decided;
  return (
    <section class="panel" data-testid="campaign-detail">
      <h2>
        {c.name} <span class="badge">{c.status}</span>
      </h2>
      <p class="muted">
        Owner {c.owner}; reviewer rule {c.reviewer_rule}, fallback {c.fallback_reviewer}; due {c.due_at.slice(0, 10)}; {c.decided}/{c.items} decided
        {c.overdue > 0 && `; ${c.overdue} overdue`}
        {p.vanished > 0 && `; ${p.vanished} items' access vanished in a sync`}.
      </p>
      <ErrorBox error={error} />
      {message && <p class="notice" data-testid="campaign-message">{message}</p>}
      <h3>By decision</h3>
      <svg class="decision-chart" width="420" height={p.by_decision.length * 22} aria-label="decisions">
        {p.by_decision.map((d, i) => (
          <g key={i} transform={`translate(0 ${i * 22})`}>
            <text x="0" y="14" class="chart-label">
              {d.decision ?? 'undecided'}
            </text>
            <rect x="90" y="3" height="14" width={Math.max(2, (d.count / maxDecision) * 260)} fill={d.decision ? '#60a5fa' : '#cbd5e1'} />
            <text x={96 + (d.count / maxDecision) * 260} y="14" class="chart-label">
              {d.count}
            </text>
          </g>
        ))}
      </svg>
      <h3>By reviewer</h3>
      <TableFrame label="Progress by reviewer">
      <table class="table" data-testid="campaign-reviewers">
        <thead>
          <tr>
            <th>Reviewer</th>
            <th>Pending</th>
            <th>Decided</th>
            <th>Reminded</th>
            <th>
              <span class="sr-only">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {p.by_reviewer.slice(0, 100).map((r) => (
            <tr key={r.reviewer_id ?? 0}>
              <td>
                {r.reviewer} {r.reviewer_status && r.reviewer_status !== 'active' && <span class="badge badge--bad">{r.reviewer_status}</span>}
                {r.reminder_due && <span class="badge badge--bad">reminder due</span>}
              </td>
              <td>{r.pending}</td>
              <td>{r.decided}</td>
              <td class="muted">{r.last_reminded_at?.slice(0, 10) ?? ''}</td>
              <td>
                {manage && c.status === 'active' && r.reviewer_id !== null && r.pending > 0 && (
                  <>
                    <button class="link-button" onClick={() => act(() => reviews.remind(id, r.reviewer_id as number).then(() => `Reminder to ${r.reviewer} recorded.`))}>
                      remind
                    </button>{' '}
                    <button
                      class="link-button"
                      onClick={() => act(() => reviews.escalate(id, r.reviewer_id).then((n) => `${n} items of ${r.reviewer} escalated to the fallback reviewer.`))}
                    >
                      escalate
                    </button>{' '}
                    <button
                      class="link-button"
                      data-testid="delegate"
                      onClick={() => {
                        setDelegating({ from: r.reviewer_id as number, name: r.reviewer });
                        setDelegateTo(null);
                      }}
                    >
                      delegate…
                    </button>
                  </>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      </TableFrame>
      {delegating && (
        <div class="bulk-bar" data-testid="delegate-panel">
          <span>Move {delegating.name}'s pending items to</span>
          <PersonSearch chosen={delegateTo} onChosen={setDelegateTo} placeholder="Reviewer: name or email" testid="delegate-to" />
          <input
            class="input input--mid"
            data-testid="delegate-reason"
            placeholder="Why (recorded)"
            value={delegateWhy}
            onInput={(e) => setDelegateWhy((e.target as HTMLInputElement).value)}
          />
          <button
            class="button"
            data-testid="delegate-send"
            disabled={!delegateTo || !delegateWhy.trim()}
            onClick={() => {
              const to = delegateTo;
              if (!to) return;
              void act(() =>
                reviews.delegate(id, delegating.from, to.id, delegateWhy).then((n) => {
                  setDelegating(null);
                  setDelegateWhy('');
                  return `${n} items of ${delegating.name} delegated to ${to.display_name}.`;
                }),
              );
            }}
          >
            Delegate
          </button>
          <button class="link-button" onClick={() => setDelegating(null)}>
            cancel
          </button>
        </div>
      )}
      {manage && c.status === 'active' && (
        <p class="close-row">
          Close: the {undecided} undecided items become{' '}
          <select data-testid="close-policy" value={policy} onChange={(e) => setPolicy((e.target as HTMLSelectElement).value as UndecidedPolicy)}>
            <option value="recommendation">their recommendation</option>
            <option value="keep">keep</option>
            <option value="revoke">revoke / retire</option>
          </select>{' '}
          <button
            class="button"
            data-testid="close-campaign"
            onClick={() =>
              confirm(`Close "${c.name}"? ${undecided} undecided items will be decided by the policy.`) &&
              act(() =>
                reviews
                  .closeCampaign(id, policy)
                  .then((r) => `Closed: ${r.decided_by_people} decided by reviewers, ${r.decided_by_policy} by the policy, ${r.tasks} remediation tasks${r.next_campaign ? `; next run #${r.next_campaign} scheduled` : ''}.`),
              )
            }
          >
            Close campaign
          </button>
        </p>
      )}
      <p>
        <button class="button" data-testid="export-campaign" onClick={() => act(() => reviews.exportCampaign(id).then((files) => `Evidence written: ${files.join(', ')}`))}>
          Export evidence (CSV, JSON, HTML)
        </button>
      </p>
      {p.tasks_total > 0 && (
        <>
          <h3>
            Remediation tasks ({p.tasks_open} open of {p.tasks_total})
          </h3>
          <TableFrame label="Remediation tasks">
          <table class="table" data-testid="campaign-tasks">
            <tbody>
              {p.tasks.slice(0, 200).map((t) => (
                <tr key={t.id}>
                  <td>{t.kind}</td>
                  <td>{t.target}</td>
                  <td title={t.note || undefined}>{t.status}</td>
                  <td>
                    {manage && t.write_back && (
                      <>
                        <button
                          class="link-button"
                          data-testid="write-back"
                          title="Carry it out in the source now"
                          onClick={() => act(() => reviews.writeBack(t.id).then((r) => `Task ${t.id} ${r.status}: ${r.note}`))}
                        >
                          write back
                        </button>{' '}
                      </>
                    )}
                    {manage && t.status === 'open' && (
                      <>
                        <button class="link-button" onClick={() => act(() => reviews.setTaskStatus(t.id, 'done', '').then(() => `Task ${t.id} done.`))}>
                          done
                        </button>{' '}
                        <button
                          class="link-button"
                          onClick={() => {
                            const why = prompt('Why did it fail?') ?? '';
                            if (why) void act(() => reviews.setTaskStatus(t.id, 'failed', why).then(() => `Task ${t.id} failed: ${why}`));
                          }}
                        >
                          failed
                        </button>
                      </>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          </TableFrame>
        </>
      )}
    </section>
  );
}

/** The campaign owner's view: campaigns, a new one, progress, close, evidence. */
export function Campaigns() {
  const [list, setList] = useState<CampaignView[] | null>(null);
  const [error, setError] = useState<UserError | null>(null);
  const [creating, setCreating] = useState(false);
  const [preset, setPreset] = useState<CampaignPreset | undefined>(undefined);
  const [me, setMe] = useActingPerson();
  const [open, setOpen] = useState<number | null>(null);
  const mayCreate = useCapabilities().actions.has('create_campaign');
  const load = () => reviews.campaigns().then(setList, (e: unknown) => setError(toUserError(e)));
  useEffect(() => {
    void load();
  }, []);
  return (
    <Page
      class="campaigns"
      testid="campaigns"
      title="Campaigns"
      lead="Access reviews: who certifies which identities, grants and credentials, by when."
      actions={
        mayCreate && (
        <button
          class="button"
          data-testid="new-campaign"
          aria-expanded={creating}
          onClick={() => {
            setPreset(undefined);
            setCreating(!creating);
          }}
        >
          {creating ? 'Cancel' : 'New campaign'}
        </button>
        )
      }
    >
      <ErrorBox error={error} />
      {creating && me === null && (
        <WhoAreYou
          why="A campaign records who owns it, and every decision who made it. Choose yourself first; the form follows."
          onChosen={(p) => {
            setMe(p);
            if (preset) setPreset({ ...preset, fallback: preset.fallback ?? p });
          }}
        />
      )}
      {creating && me && (
        <CreateForm
          key={preset ? 'preset' : 'blank'}
          preset={preset}
          onCreated={(c) => {
            setCreating(false);
            setOpen(c.id);
            void load();
          }}
        />
      )}
      {list && list.length > 0 && (
      <TableFrame label="Campaigns">
      <table class="table" data-testid="campaign-list">
        <thead>
          <tr>
            <th>Campaign</th>
            <th>Status</th>
            <th>Due</th>
            <th>Progress</th>
            <th>Owner</th>
          </tr>
        </thead>
        <tbody>
          {list?.map((c) => (
            <tr key={c.id} data-testid="campaign-row" data-id={String(c.id)}>
              <td>
                <button class="link-button" onClick={() => setOpen(c.id)}>
                  {c.name}
                </button>
              </td>
              <td>{c.status}</td>
              <td>{c.due_at.slice(0, 10)}</td>
              <td>
                <span class="bar" style={{ width: `${c.items ? Math.round((c.decided / c.items) * 100) : 0}px` }} /> {c.decided}/{c.items}
                {c.overdue > 0 && <span class="badge badge--bad">{c.overdue} overdue</span>}
              </td>
              <td>{c.owner}</td>
            </tr>
          ))}
        </tbody>
      </table>
      </TableFrame>
      )}
      {list?.length === 0 && !creating && (
        <div class="callout empty-state" data-testid="campaigns-empty">
          <strong>No campaign yet.</strong>
          <p>
            A campaign asks the owners of your non-human identities to confirm or revoke what they hold. Start with every kind, owners as
            reviewers, due in 30 days and repeated each quarter; change anything before you start it.
          </p>
          {mayCreate && (
          <button
            class="button button--primary"
            data-testid="first-campaign"
            onClick={() => {
              setPreset(firstCampaignPreset(me ?? null, new Date()));
              setCreating(true);
            }}
          >
            Set up the first campaign
          </button>
          )}
        </div>
      )}
      {open !== null && <Detail id={open} onChanged={() => void load()} />}
    </Page>
  );
}
