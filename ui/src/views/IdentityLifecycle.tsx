import { useEffect, useState } from 'preact/hooks';
import type { AgentClass, TimelineEntry } from '../bindings';
import { toUserError, type UserError } from '../lib/ipc';
import { useCapabilities } from '../lib/connection';
import { ErrorCallout } from '../components/ErrorCallout';
import { offboarding } from '../lib/offboarding';

/** Governance of one identity: blast radius link, register, confirm a change, retire, and its timeline. */
export function IdentityLifecycle(props: { id: number; registered: boolean; flagged: boolean; onChanged: () => void }) {
  const [timeline, setTimeline] = useState<TimelineEntry[]>([]);
  const [error, setError] = useState<UserError | null>(null);
  const [message, setMessage] = useState('');
  const [purpose, setPurpose] = useState('');
  const [intended, setIntended] = useState('');
  const [data, setData] = useState('');
  const [agentClass, setAgentClass] = useState<AgentClass | ''>('');
  const [reason, setReason] = useState('');
  // Register, confirm and retire are an admin's in a workspace (everything in solo mode).
  const manage = useCapabilities().actions.has('manage_identities');
  const load = () => offboarding.timeline(props.id).then(setTimeline, (e: unknown) => setError(toUserError(e)));
  useEffect(() => {
    void load();
  }, [props.id]);
  const done = (m: string) => {
    setMessage(m);
    setError(null);
    void load();
    props.onChanged();
  };
  return (
    <section class="panel" data-testid="identity-lifecycle">
      <h2>Governance</h2>
      <p>
        <a href={`#/blast/${props.id}`} data-testid="open-blast">
          Blast radius: what it could do if compromised →
        </a>
      </p>
      <ErrorCallout error={error} />
      {message && <p class="notice">{message}</p>}
      {manage && !props.registered && (
        <form
          class="lifecycle-form"
          onSubmit={(e) => {
            e.preventDefault();
            offboarding
              .register(props.id, {
                purpose,
                agent_class: agentClass || null,
                owner: null,
                builder: null,
                data_touched: data,
                intended_blast_radius: intended,
                review_interval_days: 90,
              })
              .then(() => done('Registered.'), (err: unknown) => setError(toUserError(err)));
          }}
        >
          <h3>Register</h3>
          <input class="input input--wide" placeholder="Purpose" value={purpose} onInput={(e) => setPurpose((e.target as HTMLInputElement).value)} />
          <input class="input input--wide" placeholder="Data it touches" value={data} onInput={(e) => setData((e.target as HTMLInputElement).value)} />
          <input class="input input--wide" placeholder="Intended blast radius, in words" value={intended} onInput={(e) => setIntended((e.target as HTMLInputElement).value)} />
          <select value={agentClass} onChange={(e) => setAgentClass((e.target as HTMLSelectElement).value as AgentClass | '')}>
            <option value="">class…</option>
            <option value="personal">personal</option>
            <option value="consumer_assistant">consumer assistant</option>
            <option value="workforce_assistant">workforce assistant</option>
            <option value="digital_worker">digital worker</option>
          </select>{' '}
          <button class="button" type="submit">
            Register (review every 90 days)
          </button>
        </form>
      )}
      {manage && props.flagged && (
        <p>
          Its access changed since its last review.{' '}
          <button class="button" onClick={() => offboarding.confirmChange(props.id, 'confirmed on the identity page').then(() => done('Change confirmed.'), (e: unknown) => setError(toUserError(e)))}>
            Confirm the new access
          </button>
        </p>
      )}
      {manage && (
      <p>
        <input class="input" placeholder="Why retire it?" value={reason} onInput={(e) => setReason((e.target as HTMLInputElement).value)} />{' '}
        <button class="button" onClick={() => offboarding.retire(props.id, reason).then((n) => done(`${n} deprovision tasks opened.`), (e: unknown) => setError(toUserError(e)))}>
          Retire
        </button>
      </p>
      )}
      <h3>Timeline</h3>
      <ol class="timeline" data-testid="identity-timeline">
        {timeline.map((t, i) => (
          <li key={i}>
            <span class="muted">{t.at.slice(0, 16).replace('T', ' ')}</span> <b>{t.kind}</b> <span class="muted">{t.source} · {t.actor}</span> {t.summary}
          </li>
        ))}
        {timeline.length === 0 && <li class="muted">Nothing recorded yet.</li>}
      </ol>
    </section>
  );
}
