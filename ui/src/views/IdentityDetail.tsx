import { IdentityLifecycle } from './IdentityLifecycle';
import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import type { DelegationView, IdentityDetail as Detail, PersonRef } from '../bindings';
import { Badge, PersonStatusBadge, SeverityBadge, StatusBadge } from '../components/Badge';
import { Page, TableFrame } from '../components/Page';
import {
  ago,
  ageTone,
  CLASS_LABELS,
  CREDENTIAL_KIND_LABELS,
  DELEGATION_KIND_LABELS,
  expiryText,
  formatDate,
  KIND_LABELS,
  labelOf,
  owaspLabel,
  plural,
  PRIVILEGE_LABELS,
} from '../lib/format';
import { checkText, useFindingChecks } from '../lib/catalogue';
import { api, errorHeadline, notifyDataChanged, onDataChanged, toUserError, type UserError } from '../lib/ipc';
import { identityHref, navigate } from '../lib/route';

type Load = { state: 'loading' } | { state: 'ok'; detail: Detail } | { state: 'error'; error: UserError };

export function IdentityDetail(props: { id: number }) {
  const [load, setLoad] = useState<Load>({ state: 'loading' });
  const [attempt, setAttempt] = useState(0);

  useEffect(() => {
    let current = true;
    setLoad({ state: 'loading' });
    api.identity(props.id).then(
      (detail) => current && setLoad({ state: 'ok', detail }),
      (e: unknown) => current && setLoad({ state: 'error', error: toUserError(e) }),
    );
    return () => {
      current = false;
    };
  }, [props.id, attempt]);
  // A registration, retirement or confirmation on this page changes the detail.
  useEffect(() => onDataChanged(() => setAttempt((a) => a + 1)), []);

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape' && !e.defaultPrevented) {
        e.preventDefault();
        navigate({ name: 'inventory' });
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);

  useEffect(() => {
    document.querySelector('.main')?.scrollTo(0, 0);
  }, [props.id]);

  return (
    <Page as="article" class="detail" testid="identity-detail" label={`Identity ${props.id}`} busy={load.state === 'loading'}>
      <div class="detail__nav">
        <button type="button" class="back" data-testid="back-to-inventory" onClick={() => navigate({ name: 'inventory' })}>
          <span aria-hidden="true">←</span> Inventory
        </button>
        <span class="hint">
          <kbd>Esc</kbd> back
        </span>
      </div>
      {load.state === 'loading' && <div class="loading">Loading identity {props.id}…</div>}
      {load.state === 'error' && (
        <div class="callout callout--error" role="alert">
          <strong>{errorHeadline(load.error.code)}</strong>
          <p>{load.error.message}</p>
          {load.error.code !== 'not_found' && (
            <button type="button" class="button" onClick={() => setAttempt(attempt + 1)}>
              Retry
            </button>
          )}
        </div>
      )}
      {load.state === 'ok' && <DetailBody d={load.detail} />}
    </Page>
  );
}

function DetailBody({ d }: { d: Detail }) {
  const now = Date.now();
  return (
    <>
      <header class="detail__header">
        <div class="detail__title">
          <h1 data-testid="identity-name">{d.name}</h1>
          <div class="detail__badges">
            <Badge tone="info">{labelOf(KIND_LABELS, d.kind)}</Badge>
            {d.agent_class && <Badge>{labelOf(CLASS_LABELS, d.agent_class)}</Badge>}
            <StatusBadge value={d.status} />
            {d.registered ? (
              <Badge tone="ok" title="In the agent / identity registry">Registered</Badge>
            ) : (
              <Badge tone="warn" title="Found in a source, not in the registry">Discovered</Badge>
            )}
            {d.custodian_signs_in && (
              <Badge
                tone="info"
                title={`Custodian signs in to ${d.source} as this identity: its own access, governed like any other`}
              >
                Custodian signs in as this identity
              </Badge>
            )}
          </div>
        </div>
        <dl class="detail__meta">
          <div>
            <dt>Source</dt>
            <dd>{d.source}</dd>
          </div>
          <div>
            <dt>External id</dt>
            <dd class="mono">{d.external_id}</dd>
          </div>
          <div>
            <dt>Id</dt>
            <dd class="mono">{d.id}</dd>
          </div>
        </dl>
      </header>

      <div class="detail__grid">
        <section class="panel" aria-labelledby="overview-h">
          <h2 id="overview-h">Overview</h2>
          <dl class="facts">
            <Fact label="Purpose">{d.purpose || <span class="muted">Not documented</span>}</Fact>
            <Fact label="Team">{d.team || '—'}</Fact>
            <Fact label="Environment">{d.environment || '—'}</Fact>
            <Fact label="Created">
              {formatDate(d.created_at)} <span class="muted">({ago(d.created_at, now)})</span>
            </Fact>
            <Fact label="Last used">
              {d.last_used_at ? (
                <>
                  {formatDate(d.last_used_at)} <span class="muted">({ago(d.last_used_at, now)})</span>
                </>
              ) : (
                <span class="tone--warn">never</span>
              )}
            </Fact>
            <Fact label="Last reviewed">
              {d.last_reviewed_at ? (
                <>
                  {formatDate(d.last_reviewed_at)} <span class="muted">({ago(d.last_reviewed_at, now)})</span>
                </>
              ) : (
                <span class="tone--warn">never</span>
              )}
            </Fact>
            <Fact label="Intended blast radius" wide>
              {d.intended_blast_radius ? (
                <span class="quote">{d.intended_blast_radius}</span>
              ) : (
                <span class="muted">Not documented by the owner</span>
              )}
            </Fact>
          </dl>
        </section>
        <div class="people">
          <PersonCard role="Owner" person={d.owner} testid="owner-name" missingIsRisk />
          <PersonCard role="Builder" person={d.builder} />
        </div>
      </div>

      <Findings d={d} />
      <Credentials d={d} now={now} />
      <Grants d={d} now={now} />
      <div class="detail__grid detail__grid--even">
        <Delegations title="Delegations out" hint="Identities this one can act as or call" testid="delegations-out" items={d.delegations_out} />
        <Delegations title="Delegations in" hint="Identities that can act as or call this one" testid="delegations-in" items={d.delegations_in} />
      </div>
      <IdentityLifecycle
        id={d.id}
        registered={d.registered}
        flagged={d.findings.some((f) => f.check_id === 'access-changed-since-review' || f.check_id === 'drift')}
        onChanged={() => notifyDataChanged()}
      />
    </>
  );
}

function Fact(props: { label: string; children: ComponentChildren; wide?: boolean }) {
  return (
    <div class={props.wide ? 'fact fact--wide' : 'fact'}>
      <dt>{props.label}</dt>
      <dd>{props.children}</dd>
    </div>
  );
}

function PersonCard(props: { role: string; person: PersonRef | null; testid?: string; missingIsRisk?: boolean }) {
  const p = props.person;
  if (!p) {
    return (
      <section class={`panel person${props.missingIsRisk ? ' person--risk' : ''}`}>
        <h2>{props.role}</h2>
        <div class="person__name" data-testid={props.testid}>
          No {props.role.toLowerCase()}
        </div>
        {props.missingIsRisk && <p class="person__warning">Nobody is accountable for this identity.</p>}
      </section>
    );
  }
  const gone = p.status !== 'active';
  return (
    <section class={`panel person${gone ? ' person--risk' : ''}`}>
      <h2>
        {props.role}
        <PersonStatusBadge value={p.status} />
      </h2>
      <div class="person__name" data-testid={props.testid}>
        {p.display_name}
      </div>
      <div class="person__sub">
        {p.title}
        {p.department && ` · ${p.department}`}
      </div>
      <dl class="person__facts">
        <div>
          <dt>Email</dt>
          <dd class="mono">{p.email}</dd>
        </div>
        <div>
          <dt>Manager</dt>
          <dd>{p.manager_name ?? '—'}</dd>
        </div>
      </dl>
      {gone && (
        <p class="person__warning">
          {p.status === 'departed' ? 'Departed' : 'Suspended'}
          {p.left_at && ` on ${formatDate(p.left_at)}`}: {props.role.toLowerCase()}ship needs to move to an active person.
        </p>
      )}
    </section>
  );
}

function Section(props: { title: string; count: number; testid: string; children: ComponentChildren; hint?: string }) {
  return (
    <section class="panel" data-testid={props.testid} aria-label={props.title}>
      <h2>
        {props.title} <span class="count">{props.count}</span>
        {props.hint && <span class="panel__hint">{props.hint}</span>}
      </h2>
      {props.children}
    </section>
  );
}

function Findings({ d }: { d: Detail }) {
  const checks = useFindingChecks();
  const catalogue = checks.state === 'ok' ? checks.value : null;
  return (
    <Section title="Findings" count={d.findings.length} testid="findings">
      {d.findings.length === 0 ? (
        <p class="empty">No findings.</p>
      ) : (
        <ul class="findings">
          {d.findings.map((found) => ({ ...found, ...checkText(catalogue, found.check_id, found) })).map((f) => (
            <li class={`finding finding--${f.severity}`} key={f.check_id} data-testid="finding" data-check={f.check_id}>
              <div class="finding__head">
                <SeverityBadge value={f.severity} />
                <span class="finding__title">{f.title}</span>
                <span class="owasp" title="OWASP Non-Human Identities Top 10 (2025)">
                  {owaspLabel(f.owasp, f.owasp_title)}
                </span>
              </div>
              <div class="finding__body">
                <div>
                  <span class="label">Evidence</span> {f.evidence}
                </div>
                <div>
                  <span class="label">Fix</span> {f.fix}
                </div>
              </div>
            </li>
          ))}
        </ul>
      )}
    </Section>
  );
}

function Credentials({ d, now }: { d: Detail; now: number }) {
  return (
    <Section title="Credentials" count={d.credentials.length} testid="credentials">
      {d.credentials.length === 0 ? (
        <p class="empty">No credentials.</p>
      ) : (
        <TableFrame label="Credentials">
        <table class="table">
          <thead>
            <tr>
              <th>Kind</th>
              <th>Name</th>
              <th class="num">Age</th>
              <th>Expiry</th>
              <th>Last used</th>
            </tr>
          </thead>
          <tbody>
            {d.credentials.map((c) => {
              const federated = c.kind === 'federated_credential';
              const exp = federated && c.expires_in_days === null ? { text: 'never', tone: 'muted' as const } : expiryText(c.expires_in_days);
              return (
                <tr key={c.id} data-testid="credential-row">
                  <td>{labelOf(CREDENTIAL_KIND_LABELS, c.kind)}</td>
                  <td>
                    <span class="mono">{c.display_name}</span>
                    <span class="muted small"> {c.external_id}</span>
                  </td>
                  <td class={`num tone--${ageTone(c.age_days)}`} title={c.last_rotated_at ? `Rotated ${formatDate(c.last_rotated_at)}` : `Created ${formatDate(c.created_at)}, never rotated`}>
                    {plural(c.age_days, 'day')}
                  </td>
                  <td>
                    <span class={`pill pill--${exp.tone}`} title={c.expires_at ? formatDate(c.expires_at) : federated ? 'Federated: no stored secret to expire' : 'No expiry set'}>
                      {exp.text}
                    </span>
                  </td>
                  <td class={c.last_used_days !== null && c.last_used_days >= 90 ? 'tone--warn' : ''}>{ago(c.last_used_at, now)}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
        </TableFrame>
      )}
    </Section>
  );
}

function Grants({ d, now }: { d: Detail; now: number }) {
  return (
    <Section title="Grants" count={d.grants.length} testid="grants">
      {d.grants.length === 0 ? (
        <p class="empty">No grants.</p>
      ) : (
        <TableFrame label="Grants">
        <table class="table">
          <thead>
            <tr>
              <th>Resource</th>
              <th>Kind</th>
              <th>Env</th>
              <th>Sensitivity</th>
              <th>Permission</th>
              <th>Privilege</th>
              <th>High consequence</th>
              <th>Last used</th>
            </tr>
          </thead>
          <tbody>
            {d.grants.map((g) => (
              <tr key={`${g.resource_id}:${g.permission}`} data-testid="grant-row">
                <td class="mono">{g.resource_name}</td>
                <td class="muted">{g.resource_kind.replace(/_/g, ' ')}</td>
                <td class="muted">{g.environment}</td>
                <td>
                  <SeverityBadge value={g.sensitivity} />
                </td>
                <td class="mono">{g.permission}</td>
                <td>
                  <span class={`priv priv--${g.privilege}`}>{labelOf(PRIVILEGE_LABELS, g.privilege)}</span>
                </td>
                <td>{g.high_consequence ? <span class="flag">High consequence</span> : <span class="muted">—</span>}</td>
                <td class={g.last_used_at === null ? 'tone--warn' : ''}>{ago(g.last_used_at, now)}</td>
              </tr>
            ))}
          </tbody>
        </table>
        </TableFrame>
      )}
    </Section>
  );
}

function Delegations(props: { title: string; hint: string; testid: string; items: DelegationView[] }) {
  return (
    <Section title={props.title} count={props.items.length} testid={props.testid} hint={props.hint}>
      {props.items.length === 0 ? (
        <p class="empty">None.</p>
      ) : (
        <ul class="delegations">
          {props.items.map((x) => (
            <li key={`${x.kind}:${x.other_id}`} data-testid="delegation">
              <span class="delegation__kind">{labelOf(DELEGATION_KIND_LABELS, x.kind)}</span>
              <a href={identityHref(x.other_id)} class="delegation__link">
                {x.other_name}
              </a>
              <span class="muted small">{labelOf(KIND_LABELS, x.other_kind)}</span>
            </li>
          ))}
        </ul>
      )}
    </Section>
  );
}
