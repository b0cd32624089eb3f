import { useEffect, useRef, useState } from 'preact/hooks';
import type { AuditVerification, Decision, PersonRef, ReviewItem, ReviewQueue } from '../bindings';
import { toUserError, type UserError } from '../lib/ipc';
import { useCapabilities, useSnapshot, useWhoAmI } from '../lib/connection';
import { ErrorCallout } from '../components/ErrorCallout';
import { emptyQuery, KEY_HELP, keyDecision, needsJustification, reviews } from '../lib/reviews';
import { PersonSearch } from '../components/PersonSearch';
import { Page } from '../components/Page';
import { useActingPerson, WhoAreYou } from '../components/WhoAreYou';

function AuditBadge({ tick }: { tick: number }) {
  const [v, setV] = useState<AuditVerification | null>(null);
  useEffect(() => {
    reviews.verifyAudit().then(setV, () => setV(null));
  }, [tick]);
  if (!v) return null;
  return (
    <span
      class={`badge ${v.ok ? 'badge--ok' : 'badge--bad'}`}
      data-testid="audit-badge"
      title={v.ok ? `Head ${v.head}${v.signature_note ? ` (${v.signature_note})` : ''}` : (v.problem ?? '')}
    >
      {!v.ok
        ? `Audit log broken${v.first_bad_seq == null ? '' : ` at entry ${v.first_bad_seq}`}`
        : v.signature === 'verified'
          ? `Audit log verified (${v.entries} entries)`
          : v.signature === 'unsigned'
            ? `Audit log intact, unsigned (${v.entries} entries)`
            : `Audit log intact, signature not checked (${v.entries} entries)`}
    </span>
  );
}

export function Reviews() {
  const [me, setMe, meError] = useActingPerson();
  const [queue, setQueue] = useState<ReviewQueue | null>(null);
  const [cursor, setCursor] = useState(0);
  const [selected, setSelected] = useState<Set<number>>(new Set());
  const [justification, setJustification] = useState('');
  const [error, setError] = useState<UserError | null>(null);
  const [notice, setNotice] = useState('');
  const [tick, setTick] = useState(0);
  /** The items being sent to another reviewer (the `g` panel), or null. */
  const [sending, setSending] = useState<ReviewItem[] | null>(null);
  const [sendTo, setSendTo] = useState<PersonRef | null>(null);
  const justRef = useRef<HTMLInputElement>(null);
  const tableRef = useRef<HTMLDivElement>(null);
  // Deciding needs the reviewer role in a workspace (an auditor reads only); everything in solo mode.
  const mayDecide = useCapabilities().actions.has('decide');
  const offline = useSnapshot() !== null;
  const claimed = useWhoAmI().who?.mode !== 'workspace';

  const load = () => {
    if (!me) return;
    reviews.queue(emptyQuery()).then(
      (q) => {
        setQueue(q);
        setCursor((c) => Math.min(c, Math.max(q.items.length - 1, 0)));
      },
      (e: unknown) => setError(toUserError(e)),
    );
  };
  useEffect(load, [me, tick]);

  const decide = (items: ReviewItem[], decision: Decision | null, follow = false) => {
    if (items.length === 0) return;
    if (!mayDecide) {
      setNotice(
        offline
          ? 'Read-only: the team workspace is unreachable and this is your offline snapshot. Nothing was decided or queued; decide again once it answers.'
          : 'Read-only: your workspace roles do not include reviewer.',
      );
      return;
    }
    const wanted = (it: ReviewItem) => (follow ? it.recommendation : (decision ?? 'keep'));
    if (!justification.trim() && items.some((it) => needsJustification(wanted(it), it.risk))) {
      setError(null);
      setNotice('A justification is needed for this decision: type it, then press the key again.');
      justRef.current?.focus();
      return;
    }
    reviews
      .decide({ items: items.map((i) => i.id), decision: decision ?? 'keep', justification, new_owner: null, follow_recommendation: follow })
      .then(
        (n) => {
          setNotice(`Recorded ${n} decision${n === 1 ? '' : 's'}.`);
          setError(null);
          setSelected(new Set());
          setJustification('');
          setTick((t) => t + 1);
          tableRef.current?.focus();
        },
        (e: unknown) => setError(toUserError(e)),
      );
  };

  const send = () => {
    if (!sending || !sendTo) return;
    if (!justification.trim()) {
      setNotice('Say why these items go to another reviewer (the justification), then send.');
      justRef.current?.focus();
      return;
    }
    reviews.reassign(sending.map((i) => i.id), sendTo.id, justification).then(
      (n) => {
        setNotice(`Sent ${n} item${n === 1 ? '' : 's'} to ${sendTo.display_name}.`);
        setError(null);
        setSending(null);
        setSendTo(null);
        setSelected(new Set());
        setJustification('');
        setTick((t) => t + 1);
        tableRef.current?.focus();
      },
      (e: unknown) => setError(toUserError(e)),
    );
  };

  const onKey = (e: KeyboardEvent) => {
    if (!queue || e.target === justRef.current) return;
    const items = queue.items;
    const it = items[cursor];
    if (e.key === 'ArrowDown' || e.key === 'j') {
      setCursor((c) => Math.min(c + 1, items.length - 1));
    } else if (e.key === 'ArrowUp' || e.key === 'k') {
      setCursor((c) => Math.max(c - 1, 0));
    } else if ((e.key === 'x' || e.key === ' ') && it) {
      const next = new Set(selected);
      if (next.has(it.id)) next.delete(it.id);
      else next.add(it.id);
      setSelected(next);
    } else if (e.key === 'A') {
      const chosen = items.filter((i) => selected.has(i.id));
      decide(chosen.length ? chosen : it ? [it] : [], null, true);
    } else if (e.key === '/') {
      justRef.current?.focus();
    } else if (e.key === 'g' && it) {
      setSending(selected.size ? items.filter((i) => selected.has(i.id)) : [it]);
    } else if (e.key === 'Escape' && sending) {
      setSending(null);
    } else if (it) {
      const chosen = selected.size ? items.filter((i) => selected.has(i.id)) : [it];
      const d = keyDecision(e.key, it.item_type);
      if (!d) return;
      decide(chosen, d);
    } else {
      return;
    }
    e.preventDefault();
  };

  if (me === undefined)
    return (
      <Page title="My reviews" busy>
        <p class="muted">Loading…</p>
      </Page>
    );
  if (me === null)
    return (
      <Page title="My reviews">
        <ErrorCallout error={meError} testid="review-error" />
        <WhoAreYou onChosen={(p) => setMe(p)} />
      </Page>
    );

  return (
    <Page
      class="reviews"
      testid="reviews"
      title="My reviews"
      actions={
        <>
          <span class="muted" data-testid="acting-person">
            Acting as <b>{me.display_name}</b>{' '}
            {claimed ? (
              <button class="link-button" onClick={() => setMe(null)}>
                change
              </button>
            ) : (
              <a href="#/settings">Settings</a>
            )}
          </span>
          <AuditBadge tick={tick} />
        </>
      }
    >
      {queue && (
        <p data-testid="queue-counts">
          <b data-testid="queue-pending">{queue.pending}</b> pending of {queue.total} items assigned to you
        </p>
      )}
      <div class="reviews__just">
        <label>
          Justification{' '}
          <input
            ref={justRef}
            class="input input--wide"
            data-testid="justification"
            value={justification}
            placeholder="Why (required to revoke or retire, and to keep anything high risk)"
            onInput={(e) => setJustification((e.target as HTMLInputElement).value)}
            onKeyDown={(e) => {
              if (e.key === 'Enter' || e.key === 'Escape') {
                e.preventDefault();
                tableRef.current?.focus();
              }
            }}
          />
        </label>
      </div>
      {notice && (
        <p class="notice" data-testid="review-notice">
          {notice}
        </p>
      )}
      <ErrorCallout error={error} testid="review-error" />
      {sending && (
        <div class="bulk-bar" data-testid="send-panel">
          <span>
            Send {sending.length} item{sending.length === 1 ? '' : 's'} to
          </span>
          <PersonSearch chosen={sendTo} onChosen={setSendTo} placeholder="Reviewer: name or email" testid="send-to" />
          <button class="button" data-testid="send-items" disabled={!sendTo} onClick={send}>
            Send
          </button>
          <button class="link-button" onClick={() => setSending(null)}>
            cancel
          </button>
        </div>
      )}
      <p class="muted keyhelp">{KEY_HELP}</p>
      <div class="queue" tabIndex={0} ref={tableRef} onKeyDown={onKey} data-testid="queue" autoFocus>
        <table class="table">
          <thead>
            <tr>
              <th>
                <span class="sr-only">Selected</span>
              </th>
              <th>Risk</th>
              <th>Item</th>
              <th>Identity</th>
              <th>Detail</th>
              <th>Recommendation</th>
              <th>Why</th>
              <th>Campaign</th>
            </tr>
          </thead>
          <tbody>
            {queue?.items.map((it, i) => (
              <tr
                key={it.id}
                class={`${i === cursor ? 'is-cursor' : ''} ${selected.has(it.id) ? 'is-selected' : ''}`}
                data-testid="queue-row"
                data-id={String(it.id)}
                onClick={() => setCursor(i)}
              >
                <td>{selected.has(it.id) ? '☑' : '☐'}</td>
                <td>
                  <span class={`risk risk--${it.risk}`}>{it.risk}</span>
                </td>
                <td>{it.item_type}</td>
                <td data-testid="queue-subject">{it.subject}</td>
                <td>{it.detail}</td>
                <td data-testid="queue-recommendation">{it.recommendation}</td>
                <td class="muted cell-wrap">{it.reasons.join('; ')}</td>
                <td class="muted">
                  {it.campaign}
                  {it.stage === 2 && it.proposed && ` · stage 2: ${it.proposed} proposed by ${it.proposed_by ?? ''}`}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {queue && queue.pending > queue.items.length && (
          <p class="muted" data-testid="queue-more">
            Showing the {queue.items.length} most urgent of {queue.pending} pending items; decided items make room for the next.
          </p>
        )}
        {queue && queue.items.length === 0 && (
          <p class="muted" data-testid="queue-empty">
            Nothing waits for you.
          </p>
        )}
      </div>
    </Page>
  );
}
