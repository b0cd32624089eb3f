import type { ComponentChildren } from 'preact';
import { useEffect, useReducer, useRef, useState } from 'preact/hooks';
import type { ErrorCode, LifecycleEventView, SourceKindView, SourceView, SyncRunView } from '../bindings';
import { Badge } from '../components/Badge';
import { Page, TableFrame } from '../components/Page';
import { formatCount, plural } from '../lib/format';
import { api, errorHeadline, notifyDataChanged, toUserError, type UserError } from '../lib/ipc';
import { useCapabilities } from '../lib/connection';
import { ErrorCallout, ErrorCodeTag } from '../components/ErrorCallout';
import {
  agoTime,
  buildSettings,
  canWriteBack,
  duration,
  formatDateTime,
  formSettings,
  kindDef,
  phaseLabel,
  progressCounts,
  progressPercent,
  runStatusLabel,
  runStatusTone,
  runWarnings,
  secretFor,
  secretLabel,
  settingHint,
  settingsSummary,
  signsInWithDeviceCode,
  writeBackOn,
} from '../lib/sources';
import { sourcesStore as store, type RunningSync, type SignInState, type SyncOutcome, type TestState } from './sourcesStore';

const COLUMNS = 6;

function useStore(): void {
  const [, bump] = useReducer((n: number) => n + 1, 0);
  useEffect(() => store.subscribe(() => bump(undefined)), []);
}

/** A headline for an error code coming from a stored run (a plain string there). */
function headlineOf(code: string | null): string {
  if (!code) return 'Failed';
  return (errorHeadline(code as ErrorCode) as string | undefined) ?? code;
}

function ErrorText(props: { error: UserError; testid?: string; onDismiss?: () => void }) {
  return (
    <div class="inline-error" role="alert" data-testid={props.testid}>
      <strong>{errorHeadline(props.error.code)}</strong> <ErrorCodeTag code={props.error.code} />
      <span>{props.error.message}</span>
      {props.onDismiss && (
        <button type="button" class="link-button" onClick={props.onDismiss}>
          Dismiss
        </button>
      )}
    </div>
  );
}

export function Sources() {
  useStore();
  const manage = useCapabilities().actions.has('manage_sources');
  // Open by default until a real source exists.
  const addOpen = store.addOpen ?? (store.sources !== null && (store.demo || store.sources.length === 0));
  useEffect(() => {
    store.load();
  }, []);

  return (
    <Page
      class="sources"
      testid="sources-view"
      title="Sources"
      lead="Where Custodian reads people, identities, credentials and grants. Secrets stay in the OS keyring."
      actions={
        manage && (
        <button
          type="button"
          class={`button${addOpen ? '' : ' button--primary'}`}
          data-testid="add-source-open"
          aria-expanded={addOpen}
          onClick={() => {
            store.addOpen = !addOpen;
            store.emit();
          }}
        >
          {addOpen ? 'Close form' : 'Add source'}
        </button>
        )
      }
    >
      {store.demo && <DemoNote manage={manage} />}
      {manage && addOpen && <AddSourceForm />}
      {store.lastAdded && !addOpen && (
        <div class="inline-ok" role="status" data-testid="form-added">
          <span>
            Added “{store.lastAdded}”. Use <b>Sync now</b> on its row to import.
          </span>
          <button
            type="button"
            class="link-button"
            onClick={() => {
              store.lastAdded = null;
              store.emit();
            }}
          >
            Dismiss
          </button>
        </div>
      )}
      <SourcesTable />
      <History />
    </Page>
  );
}

// ---------------------------------------------------------------------------
// Sources table

/** Opens the add-source form (a spreadsheet registry) and puts the cursor in its first field. */
function openAddForm() {
  store.addOpen = true;
  store.emit();
  requestAnimationFrame(() => document.querySelector<HTMLElement>('[data-testid=add-source-kind]')?.focus());
}

function SourcesTable() {
  const sources = store.sources;
  const manage = useCapabilities().actions.has('manage_sources');
  return (
    <section class="panel" aria-labelledby="sources-h">
      <h2 id="sources-h">
        Configured sources {sources && <span class="count">{sources.length}</span>}
      </h2>
      {store.sourcesError && (
        <div class="inline-error" role="alert">
          <strong>{errorHeadline(store.sourcesError.code)}</strong>
          <span>{store.sourcesError.message}</span>
          <button type="button" class="button button--small" onClick={() => store.loadSources()}>
            Retry
          </button>
        </div>
      )}
      {!sources && !store.sourcesError && <p class="loading">Loading sources…</p>}
      {sources && sources.length === 0 && (
        <div class="empty-state" data-testid="sources-empty">
          <p class="empty">
            No source yet. {store.addOpen === false ? 'Add one' : 'Fill in the form above'}: a spreadsheet registry (CSV or Excel) is the quickest start.
          </p>
          {manage && (
            <button type="button" class="button button--primary" data-testid="sources-empty-add" onClick={openAddForm}>
              Add a spreadsheet registry
            </button>
          )}
        </div>
      )}
      {sources && sources.length > 0 && (
        <TableFrame label="Configured sources">
        <table class="table sources-table">
          <thead>
            <tr>
              <th>Name</th>
              <th>Kind</th>
              <th>Last run</th>
              <th class="num">Items</th>
              <th class="num" title="Joiners, movers, leavers of the last run">Changes</th>
              <th class="actions-col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {sources.map((s) => (
              <SourceRows key={s.id} source={s} />
            ))}
          </tbody>
        </table>
        </TableFrame>
      )}
    </section>
  );
}

/**
 * The demo organisation is showing: what replaces it, and (for whoever
 * manages sources) a way to remove it now. Campaigns or decisions made on
 * the demo are removed only when the person confirms that too.
 */
function DemoNote(props: { manage: boolean }) {
  const [step, setStep] = useState<'idle' | 'confirm' | 'running'>('idle');
  const [error, setError] = useState<UserError | null>(null);
  const clear = (discard: boolean) => {
    setStep('running');
    api.clearDemo(discard).then(
      () => {
        setStep('idle');
        setError(null);
        notifyDataChanged();
        store.load();
      },
      (e: unknown) => {
        setStep('confirm');
        setError(toUserError(e));
      },
    );
  };
  const history = error?.code === 'invalid_input';
  return (
    <div class="callout callout--info" data-testid="demo-note">
      <strong>You are looking at the demo organisation.</strong>
      <p>
        Its sources are generated and cannot sync. Add a source and sync it: its first successful sync replaces the demo organisation with your own data.
      </p>
      {props.manage && step === 'idle' && (
        <button type="button" class="button" data-testid="demo-clear" onClick={() => setStep('confirm')}>
          Remove the demo organisation now
        </button>
      )}
      {props.manage && step !== 'idle' && (
        <div class="demo-clear" data-testid="demo-clear-confirm">
          {!history && <p>Remove the generated identities, people, sources and their reviews now? The audit log is kept, and the removal is recorded in it.</p>}
          <ErrorCallout error={error} testid="demo-clear-error" />
          {history ? (
            <button type="button" class="button button--danger" data-testid="demo-clear-discard" disabled={step === 'running'} onClick={() => clear(true)}>
              Discard them with the demo
            </button>
          ) : (
            <button type="button" class="button button--primary" data-testid="demo-clear-yes" disabled={step === 'running'} onClick={() => clear(false)}>
              {step === 'running' ? 'Removing…' : 'Remove the demo'}
            </button>
          )}{' '}
          <button
            type="button"
            class="link-button"
            onClick={() => {
              setStep('idle');
              setError(null);
            }}
          >
            Keep it
          </button>
        </div>
      )}
    </div>
  );
}

/** A source the demo generated: no settings at all. */
export function isGenerated(settings: unknown): boolean {
  return (
    settings == null ||
    (typeof settings === 'object' && !Array.isArray(settings) && Object.keys(settings as object).length === 0)
  );
}

function SourceRows({ source: s }: { source: SourceView }) {
  const [secretOpen, setSecretOpen] = useState(false);
  const [secretSaved, setSecretSaved] = useState(false);
  const running = store.syncs.get(s.id);
  const outcome = store.outcomes.get(s.id);
  const test = store.tests.get(s.id);
  const signIn = store.signIns.get(s.id);
  const last = s.last_run;
  const kinds = store.kinds ?? [];
  const def = kindDef(kinds, s.kind);
  const known = kinds.some((k) => k.kind === s.kind);
  // Its secret is the refresh token an administrator's sign-in keeps.
  const device = signsInWithDeviceCode(def, s.settings);
  const signingIn = signIn?.state === 'starting' || signIn?.state === 'waiting';
  // The demo's own sources carry no settings; a real source added beside
  // them syncs (its first successful sync replaces the demo).
  const demo = store.demo && isGenerated(s.settings);
  const disabled = demo ? 'Demo sources cannot sync: add a real source' : undefined;
  const now = Date.now();
  const selected = store.historySource === s.id;
  // Adding, syncing, testing, secrets and write-back are an admin's (everything in solo mode).
  const manage = useCapabilities().actions.has('manage_sources');

  return (
    <>
      <tr data-testid="source-row" data-id={String(s.id)} class={`source-row${selected ? ' is-selected' : ''}`}>
        <td>
          <button type="button" class="source-name" title="Show this source's sync history" onClick={() => store.showHistoryOf(selected ? null : s.id)}>
            {s.name}
          </button>
          <div class="muted small truncate source-settings" title={settingsSummary(def, s.settings)}>
            {settingsSummary(def, s.settings) || (demo ? 'generated demo data' : '')}
          </div>
        </td>
        <td class="kind-cell">{known ? def.label : s.kind}</td>
        <td>
          {running ? (
            <Badge tone="info">Syncing…</Badge>
          ) : last ? (
            <span class="last-run">
              <Badge tone={runStatusTone(last.status)}>{runStatusLabel(last.status)}</Badge>
              <span class="muted" title={formatDateTime(last.finished_at ?? last.started_at)}>
                {agoTime(last.finished_at ?? last.started_at, now)}
              </span>
            </span>
          ) : (
            <span class="muted">Never synced</span>
          )}
        </td>
        <td class="num">{last && last.status !== 'running' ? formatCount(last.items) : '—'}</td>
        <td class="num">{last && last.status !== 'running' ? <Changes run={last} /> : '—'}</td>
        <td class="actions-col">
          {manage && (
          <div class="row-actions">
            <button
              type="button"
              class="button button--small button--primary"
              data-testid="source-sync"
              disabled={!!running || demo}
              title={disabled}
              onClick={() => store.sync(s.id)}
            >
              {running ? 'Syncing…' : 'Sync now'}
            </button>
            <button
              type="button"
              class="button button--small"
              data-testid="source-test"
              disabled={test?.state === 'running' || demo}
              title={disabled}
              onClick={() => store.test(s.id)}
            >
              {test?.state === 'running' ? 'Testing…' : 'Test connection'}
            </button>
            {canWriteBack(def) && !demo && (
              <button
                type="button"
                class={`button button--small${writeBackOn(s.settings) ? ' button--warn' : ''}`}
                data-testid="source-write-back"
                aria-pressed={writeBackOn(s.settings)}
                title="Let Custodian carry out remediation tasks here (disable users, deactivate keys). The stored secret must be allowed to."
                onClick={() => void store.setWriteBack(s.id, !writeBackOn(s.settings))}
              >
                {writeBackOn(s.settings) ? 'Write-back on' : 'Write-back off'}
              </button>
            )}
            {device && (
              <button
                type="button"
                class="button button--small"
                data-testid="source-sign-in"
                disabled={demo || signingIn}
                title="An administrator signs in to the source with a one-time code in a browser; no secret is created. The refresh token goes to the OS keyring."
                onClick={() => store.signIn(s.id)}
              >
                {signingIn ? 'Signing in…' : 'Sign in'}
              </button>
            )}
            {def.needs_secret && !device && (
              <button
                type="button"
                class="button button--small"
                data-testid="source-secret"
                disabled={demo}
                aria-expanded={secretOpen}
                onClick={() => {
                  setSecretOpen(!secretOpen);
                  setSecretSaved(false);
                }}
              >
                Replace secret
              </button>
            )}
          </div>
          )}
        </td>
      </tr>
      {last && last.status === 'failed' && !running && (
        <SubRow>
          <div class="inline-error" data-testid="source-error">
            <strong>{headlineOf(last.error_code)}</strong>
            <span>{last.error_message ?? 'The last sync failed.'}</span>
          </div>
        </SubRow>
      )}
      {running && (
        <SubRow>
          <Progress id={s.id} running={running} />
        </SubRow>
      )}
      {outcome && !outcome.ok && outcome.error.code !== 'cancelled' && !running && !(last && last.status === 'failed') && (
        <SubRow>
          <ErrorText error={outcome.error} testid="sync-error" onDismiss={() => store.outcomes.delete(s.id) && store.emit()} />
        </SubRow>
      )}
      {test && test.state !== 'running' && (
        <SubRow>
          <TestResult id={s.id} test={test} />
        </SubRow>
      )}
      {signIn && (
        <SubRow>
          <SignInPanel id={s.id} signIn={signIn} />
        </SubRow>
      )}
      {secretOpen && (
        <SubRow>
          <SecretForm
            source={s}
            onDone={() => {
              setSecretOpen(false);
              setSecretSaved(true);
            }}
            onCancel={() => setSecretOpen(false)}
          />
        </SubRow>
      )}
      {secretSaved && !secretOpen && (
        <SubRow>
          <div class="inline-ok" role="status" data-testid="secret-saved">
            <span>Secret replaced in the OS keyring.</span>
            <button type="button" class="link-button" onClick={() => setSecretSaved(false)}>
              Dismiss
            </button>
          </div>
        </SubRow>
      )}
      {outcome?.ok && !running && <SyncDone outcome={outcome} onDismiss={() => store.outcomes.delete(s.id) && store.emit()} />}
    </>
  );
}

function SubRow(props: { children: ComponentChildren }) {
  return (
    <tr class="sub-row">
      <td colSpan={COLUMNS}>{props.children}</td>
    </tr>
  );
}

function Changes({ run }: { run: Pick<SyncRunView, 'joiners' | 'movers' | 'leavers'> }) {
  return (
    <span class="changes" title={`${plural(run.joiners, 'joiner')}, ${plural(run.movers, 'mover')}, ${plural(run.leavers, 'leaver')}`}>
      <span class={run.joiners ? 'chg chg--join' : 'chg'}>+{formatCount(run.joiners)}</span>
      <span class={run.movers ? 'chg chg--move' : 'chg'}>~{formatCount(run.movers)}</span>
      <span class={run.leavers ? 'chg chg--leave' : 'chg'}>−{formatCount(run.leavers)}</span>
    </span>
  );
}

function SyncDone(props: { outcome: Extract<SyncOutcome, { ok: true }>; onDismiss: () => void }) {
  const r = props.outcome.run;
  const took = duration(r.started_at, r.finished_at);
  return (
    <SubRow>
      <div class="inline-ok" role="status" data-testid="sync-done">
        <strong>Sync {r.status === 'succeeded' ? 'finished' : runStatusLabel(r.status).toLowerCase()}</strong>
        <span>
          {plural(r.items, 'item')}, {plural(r.joiners, 'joiner')}, {plural(r.movers, 'mover')}, {plural(r.leavers, 'leaver')}
          {took ? ` in ${took}` : ''}.
          {runWarnings(r).length > 0 && ` ${plural(runWarnings(r).length, 'warning')}: ${runWarnings(r)[0]}`}
        </span>
        <button type="button" class="link-button" onClick={() => store.selectRun(r.id)}>
          Show changes
        </button>
        <button type="button" class="link-button" onClick={props.onDismiss}>
          Dismiss
        </button>
      </div>
    </SubRow>
  );
}

function Progress(props: { id: number; running: RunningSync }) {
  const p = props.running.progress;
  const pct = progressPercent(p);
  const counts = progressCounts(p);
  return (
    <div class="sync-progress" data-testid="sync-progress" aria-live="polite">
      <div class="sync-progress__text">
        <strong>{props.running.cancelling ? 'Cancelling…' : phaseLabel(p?.phase ?? 'starting')}</strong>
        {counts && <span class="muted">{counts}</span>}
        {pct !== null && <span class="sync-progress__pct">{pct}%</span>}
      </div>
      <div
        class={`bar${pct === null ? ' bar--indeterminate' : ''}`}
        role="progressbar"
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={pct ?? undefined}
        aria-label="Sync progress"
      >
        {/* Set through the CSSOM, which the CSP allows (no style attribute in the markup). */}
        <div class="bar__fill" style={pct === null ? undefined : { width: `${pct}%` }} />
      </div>
      <button
        type="button"
        class="button button--small"
        data-testid="sync-cancel"
        disabled={props.running.cancelling}
        onClick={() => store.cancel(props.id)}
      >
        Cancel
      </button>
    </div>
  );
}

function TestResult(props: { id: number; test: Exclude<TestState, { state: 'running' }> }) {
  const t = props.test;
  if (t.state === 'ok') {
    return (
      <div class="inline-ok" role="status" data-testid="test-result" data-ok="true">
        <strong>Connection works</strong>
        <span>{t.text}</span>
        <button type="button" class="link-button" onClick={() => store.dismissTest(props.id)}>
          Dismiss
        </button>
      </div>
    );
  }
  return (
    <div class="inline-error" role="alert" data-testid="test-result" data-ok="false">
      <strong>{errorHeadline(t.error.code)}</strong>
      <span>{t.error.message}</span>
      <button type="button" class="link-button" onClick={() => store.dismissTest(props.id)}>
        Dismiss
      </button>
    </div>
  );
}

/** Minutes (or seconds, under one) left until `at`, e.g. `14 min`. */
function timeLeft(at: number, now: number): string {
  const s = Math.max(0, Math.round((at - now) / 1000));
  return s >= 60 ? `${Math.floor(s / 60)} min` : `${s} s`;
}

/** The row's device-code sign-in: the code and where to enter it, then who signed in. */
function SignInPanel(props: { id: number; signIn: SignInState }) {
  const t = props.signIn;
  const [copied, setCopied] = useState(false);
  const [, tick] = useReducer((n: number) => n + 1, 0);
  useEffect(() => {
    if (t.state !== 'waiting') return;
    const timer = setInterval(() => tick(undefined), 1000);
    return () => clearInterval(timer);
  }, [t.state]);
  if (t.state === 'starting') {
    return (
      <div class="sign-in" role="status" data-testid="sign-in-panel" data-state="starting">
        <span>Asking for a sign-in code…</span>
        <button type="button" class="link-button" onClick={() => store.cancelSignIn(props.id)}>
          Cancel
        </button>
      </div>
    );
  }
  if (t.state === 'waiting') {
    const copy = () => {
      const done = () => setCopied(true);
      navigator.clipboard?.writeText(t.prompt.user_code).then(done, () => setCopied(false));
    };
    return (
      <div class="sign-in" role="status" aria-live="polite" data-testid="sign-in-panel" data-state="waiting">
        <div class="sign-in__steps">
          <span>
            In a browser, open <strong class="sign-in__uri" data-testid="sign-in-uri">{t.prompt.verification_uri}</strong> and
            enter the code
          </span>
          <code class="sign-in__code" data-testid="sign-in-code">
            {t.prompt.user_code}
          </code>
          <button type="button" class="button button--small" onClick={copy}>
            {copied ? 'Copied' : 'Copy code'}
          </button>
        </div>
        <span class="muted small">
          Sign in as an administrator of the directory; Custodian waits here (the code works for {timeLeft(t.expiresAt, Date.now())} more).
        </span>
        <button type="button" class="button button--small" data-testid="sign-in-cancel" onClick={() => store.cancelSignIn(props.id)}>
          Cancel
        </button>
      </div>
    );
  }
  if (t.state === 'done') {
    return (
      <div class="inline-ok" role="status" data-testid="sign-in-panel" data-state="done">
        <strong>Signed in{t.user ? ` as ${t.user}` : ''}</strong>
        <span>The refresh token is in the OS keyring; syncs sign in with it. Sync now to read the directory.</span>
        <button type="button" class="link-button" onClick={() => store.dismissSignIn(props.id)}>
          Dismiss
        </button>
      </div>
    );
  }
  return (
    <div data-testid="sign-in-panel" data-state="error">
      <ErrorText error={t.error} onDismiss={() => store.dismissSignIn(props.id)} />
    </div>
  );
}

function SecretForm(props: { source: SourceView; onDone: () => void; onCancel: () => void }) {
  const [secret, setSecret] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<UserError | null>(null);
  const ref = useRef<HTMLInputElement>(null);
  const def = kindDef(store.kinds ?? [], props.source.kind);
  useEffect(() => ref.current?.focus(), []);

  const submit = (e: Event) => {
    e.preventDefault();
    if (!secret) return;
    setBusy(true);
    setError(null);
    store.replaceSecret(props.source.id, secret).then(
      () => {
        setSecret('');
        setBusy(false);
        props.onDone();
      },
      (err: unknown) => {
        setBusy(false);
        setError(toUserError(err));
      },
    );
  };

  return (
    <form class="secret-form" onSubmit={submit} data-testid="secret-form">
      <label class="field field--inline">
        <span class="field__label">New {def.secret || 'secret'}</span>
        <input
          ref={ref}
          type="password"
          class="input"
          autocomplete="new-password"
          spellcheck={false}
          data-testid="secret-input"
          value={secret}
          onInput={(e) => setSecret((e.target as HTMLInputElement).value)}
        />
      </label>
      <button type="submit" class="button button--small button--primary" disabled={busy || !secret} data-testid="secret-save">
        {busy ? 'Saving…' : 'Save to keyring'}
      </button>
      <button type="button" class="button button--small" onClick={props.onCancel}>
        Cancel
      </button>
      <span class="muted small">The current secret is never shown; this replaces it.</span>
      {error && <ErrorText error={error} testid="form-error" />}
    </form>
  );
}

// ---------------------------------------------------------------------------
// History

function History() {
  const runs = store.runs;
  const sources = store.sources ?? [];
  const nameOf = (id: number) => sources.find((s) => s.id === id)?.name ?? `#${id}`;
  const selected = runs?.find((r) => r.id === store.selectedRun) ?? null;
  return (
    <section class="panel history" aria-labelledby="history-h">
      <h2 id="history-h">
        Sync history
        <select
          class="select select--small"
          aria-label="Show the history of"
          data-testid="history-source"
          value={store.historySource === null ? '' : String(store.historySource)}
          onChange={(e) => {
            const v = (e.target as HTMLSelectElement).value;
            store.showHistoryOf(v === '' ? null : Number(v));
          }}
        >
          <option value="">All sources</option>
          {sources.map((s) => (
            <option key={s.id} value={String(s.id)}>
              {s.name}
            </option>
          ))}
        </select>
      </h2>
      {store.runsError && (
        <div class="inline-error" role="alert">
          <strong>{errorHeadline(store.runsError.code)}</strong>
          <span>{store.runsError.message}</span>
          <button type="button" class="button button--small" onClick={() => store.loadRuns()}>
            Retry
          </button>
        </div>
      )}
      {!runs && !store.runsError && <p class="loading">Loading runs…</p>}
      {runs && runs.length === 0 && <p class="empty">No sync yet.</p>}
      {runs && runs.length > 0 && (
        <div class="history__scroll">
          <table class="table runs-table">
            <thead>
              <tr>
                <th>Status</th>
                {store.historySource === null && <th>Source</th>}
                <th>Mode</th>
                <th>Started</th>
                <th>Took</th>
                <th class="num">Items</th>
                <th class="num">Changes</th>
              </tr>
            </thead>
            <tbody>
              {runs.map((r) => (
                <RunRow key={r.id} run={r} sourceName={store.historySource === null ? nameOf(r.source_id) : null} selected={r.id === store.selectedRun} />
              ))}
            </tbody>
          </table>
        </div>
      )}
      {selected && <Events run={selected} sourceName={nameOf(selected.source_id)} />}
    </section>
  );
}

function RunRow(props: { run: SyncRunView; sourceName: string | null; selected: boolean }) {
  const r = props.run;
  const failed = r.status === 'failed' || r.status === 'interrupted' || (r.status === 'cancelled' && r.error_message);
  const warnings = runWarnings(r);
  const select = () => store.selectRun(props.selected ? null : r.id);
  return (
    <>
      <tr
        class={`run-row${props.selected ? ' is-selected' : ''}`}
        data-testid="run-row"
        data-id={String(r.id)}
        data-status={r.status}
        tabIndex={0}
        aria-selected={props.selected}
        onClick={select}
        onKeyDown={(e) => {
          if (e.key === 'Enter' || e.key === ' ') {
            e.preventDefault();
            select();
          }
        }}
      >
        <td>
          <Badge tone={runStatusTone(r.status)}>{runStatusLabel(r.status)}</Badge>
        </td>
        {props.sourceName !== null && <td class="truncate run-source">{props.sourceName}</td>}
        <td class="muted">{r.mode ?? '—'}</td>
        <td title={r.finished_at ? `Finished ${formatDateTime(r.finished_at)}` : 'Not finished'}>{formatDateTime(r.started_at)}</td>
        <td class="muted">{duration(r.started_at, r.finished_at) || (r.status === 'running' ? 'running' : '—')}</td>
        <td class="num">{formatCount(r.items)}</td>
        <td class="num">
          <Changes run={r} />
        </td>
      </tr>
      {failed && (
        <tr class="sub-row run-error" onClick={select}>
          <td colSpan={props.sourceName !== null ? 7 : 6}>
            <span class="run-error__code">{r.error_code ?? r.status}</span> {r.error_message ?? headlineOf(r.error_code)}
          </td>
        </tr>
      )}
      {warnings.length > 0 && (
        <tr class="sub-row run-warnings" onClick={select} data-testid="run-warnings">
          <td colSpan={props.sourceName !== null ? 7 : 6}>
            <Badge tone="warn">{plural(warnings.length, 'warning')}</Badge> <span class="truncate">{warnings[0]}</span>
            {warnings.length > 1 && <span class="muted"> · and {formatCount(warnings.length - 1)} more: select the run to see them all</span>}
          </td>
        </tr>
      )}
    </>
  );
}

const EVENT_TONES: Record<string, 'ok' | 'info' | 'bad'> = { joiner: 'ok', mover: 'info', leaver: 'bad' };

function Events(props: { run: SyncRunView; sourceName: string }) {
  const events = store.events;
  return (
    <div class="events" data-testid="run-events">
      <h3>
        Changes in run {props.run.id} <span class="muted">· {props.sourceName} · {formatDateTime(props.run.started_at)}</span>
      </h3>
      {runWarnings(props.run).length > 0 && (
        <div class="callout callout--warning" data-testid="run-warning-list">
          <strong>
            {plural(runWarnings(props.run).length, 'warning')}: what this run skipped or doubts (the rest was imported)
          </strong>
          <ul>
            {runWarnings(props.run).map((w, i) => (
              <li key={i} data-testid="run-warning">
                {w}
              </li>
            ))}
          </ul>
        </div>
      )}
      {store.eventsError && <ErrorText error={store.eventsError} />}
      {!events && !store.eventsError && <p class="loading">Loading changes…</p>}
      {events && events.length === 0 && <p class="empty">No joiners, movers or leavers in this run.</p>}
      {events && events.length > 0 && (
        <TableFrame label="Changes in this run">
        <table class="table events-table">
          <thead>
            <tr>
              <th>Change</th>
              <th>Subject</th>
              <th>Name</th>
              <th>Detail</th>
            </tr>
          </thead>
          <tbody>
            {events.map((e: LifecycleEventView, i) => (
              <tr key={i} data-testid="event-row" data-kind={e.kind}>
                <td>
                  <Badge tone={EVENT_TONES[e.kind] ?? 'neutral'}>{e.kind}</Badge>
                </td>
                <td class="muted">{e.subject}</td>
                <td class="mono">{e.name}</td>
                <td class="event-detail">{e.detail || <span class="muted">—</span>}</td>
              </tr>
            ))}
          </tbody>
        </table>
        </TableFrame>
      )}
    </div>
  );
}

// ---------------------------------------------------------------------------
// Add source

function AddSourceForm() {
  if (store.kindsError) {
    return (
      <section class="panel add-source" aria-labelledby="add-h">
        <h2 id="add-h">Add source</h2>
        <ErrorText error={store.kindsError} testid="kinds-error" />
      </section>
    );
  }
  if (!store.kinds) {
    return (
      <section class="panel add-source" aria-labelledby="add-h" aria-busy="true">
        <h2 id="add-h">Add source</h2>
        <p class="loading">Loading the kinds of source…</p>
      </section>
    );
  }
  return <AddSourceFields kinds={store.kinds} />;
}

/** One setting's input: a choice for booleans, text otherwise. */
function SettingInput(props: { s: SourceKindView['settings'][number]; value: string; invalid: boolean; onValue: (v: string) => void }) {
  const { s } = props;
  if (s.type === 'bool') {
    return (
      <select
        class="select"
        data-testid={`add-source-setting-${s.key}`}
        name={s.key}
        value={props.value}
        aria-invalid={props.invalid}
        onChange={(e) => props.onValue((e.target as HTMLSelectElement).value)}
      >
        <option value="">{s.default === null ? 'Not set' : `Default (${s.default === 'true' ? 'yes' : 'no'})`}</option>
        <option value="true">Yes</option>
        <option value="false">No</option>
      </select>
    );
  }
  return (
    <input
      class="input"
      type={s.secret ? 'password' : 'text'}
      data-testid={`add-source-setting-${s.key}`}
      name={s.key}
      inputMode={s.type === 'integer' ? 'numeric' : s.type === 'url' ? 'url' : undefined}
      value={props.value}
      placeholder={s.default ?? undefined}
      spellcheck={false}
      autocomplete={s.secret ? 'new-password' : 'off'}
      aria-invalid={props.invalid}
      onInput={(e) => props.onValue((e.target as HTMLInputElement).value)}
    />
  );
}

/** The add form, built from the catalogue `kinds` (exported for tests that hand it one). */
export function AddSourceFields({ kinds }: { kinds: SourceKindView[] }) {
  // The simplest to start with: the first kind that needs no secret.
  const [kind, setKind] = useState((kinds.find((k) => !k.needs_secret) ?? kinds[0])?.kind ?? '');
  const [name, setName] = useState('');
  const [values, setValues] = useState<Record<string, string>>({});
  const [secret, setSecret] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<{ error: UserError; field: string | null } | null>(null);
  const def = kindDef(kinds, kind);
  const fields = formSettings(def);

  const submit = (e: Event) => {
    e.preventDefault();
    if (busy) return;
    const built = buildSettings(def, values);
    if (!built.ok) {
      setError({ error: toUserError({ code: 'invalid_input', message: built.message }), field: built.field });
      return;
    }
    setBusy(true);
    setError(null);
    store.add({ kind, name: name.trim(), settings: built.settings, secret: secretFor(def, secret) }).then(
      (view) => {
        setBusy(false);
        setName('');
        setValues({});
        setSecret('');
        store.lastAdded = view.name;
        store.addOpen = false;
        store.emit();
      },
      (err: unknown) => {
        setBusy(false);
        setError({ error: toUserError(err), field: null });
      },
    );
  };

  const field = (f: SourceKindView['settings'][number]) => (
    <label class={`field${error?.field === f.key ? ' field--invalid' : ''}`} key={`${kind}:${f.key}`}>
      <span class="field__label">
        {f.label}
        {!f.required && <span class="field__optional"> optional</span>}
      </span>
      <SettingInput s={f} value={values[f.key] ?? ''} invalid={error?.field === f.key} onValue={(v) => setValues({ ...values, [f.key]: v })} />
      <span class="field__hint">{settingHint(f)}</span>
    </label>
  );

  return (
    <section class="panel add-source" aria-labelledby="add-h">
      <h2 id="add-h">Add source</h2>
      <form onSubmit={submit} noValidate class="add-source__form">
        <label class="field">
          <span class="field__label">Kind</span>
          <select
            class="select"
            data-testid="add-source-kind"
            value={kind}
            onChange={(e) => {
              setKind((e.target as HTMLSelectElement).value);
              setError(null);
            }}
          >
            {kinds.map((k) => (
              <option key={k.kind} value={k.kind}>
                {k.label}
              </option>
            ))}
          </select>
        </label>
        <label class="field">
          <span class="field__label">Name</span>
          <input
            class="input"
            data-testid="add-source-name"
            value={name}
            placeholder={`${def.label} production`}
            spellcheck={false}
            autocomplete="off"
            onInput={(e) => setName((e.target as HTMLInputElement).value)}
          />
          <span class="field__hint">Shown in the inventory's Source column; unique.</span>
        </label>
        {def.about && <p class="add-source__about">{def.about}</p>}
        {fields.required.map(field)}
        {fields.optional.length > 0 && (
          <details class="add-source__more" key={`${kind}:more`} data-testid="add-source-more">
            <summary>
              More settings <span class="muted">({fields.optional.length} optional)</span>
            </summary>
            {fields.optional.map(field)}
          </details>
        )}
        {def.needs_secret && (
          <label class="field">
            <span class="field__label">{secretLabel(def)}</span>
            <input
              class="input"
              type="password"
              data-testid="add-source-secret"
              value={secret}
              autocomplete="new-password"
              spellcheck={false}
              onInput={(e) => setSecret((e.target as HTMLInputElement).value)}
            />
            <span class="field__hint">Stored in the OS keyring; never shown again.</span>
          </label>
        )}
        {error && <ErrorText error={error.error} testid="form-error" />}
        <div class="form-actions">
          <button type="submit" class="button button--primary" data-testid="add-source-submit" disabled={busy}>
            {busy ? 'Adding…' : 'Add source'}
          </button>
        </div>
      </form>
    </section>
  );
}
