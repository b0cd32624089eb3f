// The sources part of the in-browser mock backend: a few configured sources
// with a plausible history, and syncs that report progress over a few
// seconds and can be cancelled. Validation follows src/ops.rs (add_source)
// and errors reject with the `{ code, message }` shape of the real commands.

import type { DeviceCodePrompt, Error as ApiError, ErrorCode, JsonValue, LifecycleEventView, SourceView, SyncProgress, SyncRunView } from '../bindings';
import type { NewSource } from './ipc';
import { SOURCE_KINDS } from './catalogue.gen';
import { kindDef, signsInWithDeviceCode } from './sources';

// What the backend knows, from its catalogue (generated: catalogue.gen.ts).
const KNOWN_KINDS = SOURCE_KINDS.map((k) => k.kind);
const NEEDS_SECRET = new Set(SOURCE_KINDS.filter((k) => k.needs_secret).map((k) => k.kind));
const REQUIRED: Record<string, string[]> = Object.fromEntries(SOURCE_KINDS.map((k) => [k.kind, k.settings.filter((s) => s.required).map((s) => s.key)]));
const WRITE_BACK_KINDS = SOURCE_KINDS.filter((k) => k.write_back.length > 0).map((k) => k.kind);

const AGENTS = ['invoice-triage', 'ticket-summariser', 'code-reviewer', 'sales-research', 'contract-analyst', 'incident-responder', 'meeting-notes', 'refund-processor', 'hr-onboarding', 'expense-auditor'];
const PEOPLE = ['Ada Okafor', 'Ben Lindqvist', 'Chloe Moreau', 'Dev Tanaka', 'Elena Kowalski', 'Farid Haddad', 'Grace Fischer', 'Hiro Nguyen'];

interface Source {
  id: number;
  kind: string;
  name: string;
  settings: { [key: string]: JsonValue };
  secret: string | null;
  cursor: boolean;
}

interface Running {
  run: SyncRunView;
  progress: SyncProgress;
  cancelled: boolean;
}

function err(code: ErrorCode, message: string): ApiError {
  return { code, message };
}

function iso(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

export class MockSources {
  private sources: Source[] = [];
  private runs: SyncRunView[] = [];
  private events = new Map<number, LifecycleEventView[]>();
  private running = new Map<number, Running>();
  /** Device-code sign-ins waiting, by source: set `cancelled` to stop one. */
  private signIns = new Map<number, { cancelled: boolean }>();
  private nextSource = 1;
  private nextRun = 1;
  /** Ms per simulated step of a sync. */
  private readonly step: number;

  constructor(opts: { now?: number; stepMs?: number } = {}) {
    this.step = opts.stepMs ?? 220;
    const now = opts.now ?? Date.now();
    const H = 3_600_000;
    const csv = this.create('csv', 'Agent registry', { path: '/Users/ops/registry/agent-registry.xlsx' }, null);
    const entra = this.create('entra', 'Entra ID (contoso.example)', { tenant_id: '7d1c1b52-2f0e-4b5e-9a55-3c1f0e6b2a10', client_id: 'c2a6e0c4-91c8-4f3b-8d1e-5b7f3e2a9d44' }, 'secret');
    const okta = this.create('okta', 'Okta contoso', { org_url: 'https://contoso.okta.com' }, null);
    this.record(csv.id, now - 50 * H, 'succeeded', 'full', 14, [14, 0, 0]);
    this.record(entra.id, now - 49 * H, 'succeeded', 'full', 1840, [1840, 0, 0]);
    this.record(csv.id, now - 26 * H, 'succeeded', 'full', 15, [2, 3, 1]);
    this.record(entra.id, now - 25 * H, 'failed', 'incremental', 0, [0, 0, 0], ['source_auth', 'Entra ID refused the client secret (AADSTS7000215: invalid client secret provided)']);
    this.record(entra.id, now - 3 * H, 'succeeded', 'incremental', 37, [4, 6, 2]);
    this.record(csv.id, now - 2 * H, 'succeeded', 'full', 15, [1, 0, 1]);
    this.record(okta.id, now - 1 * H, 'succeeded_with_warnings', 'full', 12, [12, 0, 0], undefined, [
      "skipped app 3 of page 1 of /api/v1/apps: it has no 'id'",
      "app 0oa1gjh63g214q0Hq0g4 (Example App): its keys are an object where Okta's schema says a list; read as one key",
      'skipped user 17 of page 2 of /api/v1/users: <script>alert(1)</script> is not a valid profile',
    ]);
    entra.cursor = true;
  }

  private create(kind: string, name: string, settings: { [key: string]: JsonValue }, secret: string | null): Source {
    const s: Source = { id: this.nextSource++, kind, name, settings, secret, cursor: false };
    this.sources.push(s);
    return s;
  }

  private record(source: number, started: number, status: string, mode: string, items: number, [j, m, l]: number[], error?: [string, string], warnings: string[] = []): SyncRunView {
    const run: SyncRunView = {
      id: this.nextRun++, source_id: source, started_at: iso(started), finished_at: iso(started + 1500 + items * 40),
      status, mode, items, joiners: j, movers: m, leavers: l, error_code: error?.[0] ?? null, error_message: error?.[1] ?? null, warnings,
    };
    this.runs.push(run);
    this.events.set(run.id, this.makeEvents(run));
    return run;
  }

  private makeEvents(run: SyncRunView): LifecycleEventView[] {
    const out: LifecycleEventView[] = [];
    const src = this.source(run.source_id);
    const at = run.finished_at ?? run.started_at;
    const person = src.kind !== 'csv';
    let k = run.id * 7;
    const add = (kind: string, n: number) => {
      for (let i = 0; i < Math.min(n, 200); i++, k++) {
        const isPerson = person && k % 3 === 0;
        const name = isPerson ? PEOPLE[k % PEOPLE.length] : `${AGENTS[k % AGENTS.length]}-${(k % 9) + 1}`;
        const detail =
          kind === 'joiner' ? (isPerson ? 'new person' : 'new identity')
          : kind === 'mover' ? (isPerson ? 'department: Sales → Finance' : k % 2 ? 'owner changed' : 'status: active → disabled')
          : isPerson ? 'left the organisation' : 'no longer in the source';
        out.push({ at, kind, subject: isPerson ? 'person' : 'identity', subject_id: 1000 + k, name, detail });
      }
    };
    add('joiner', run.joiners);
    add('mover', run.movers);
    add('leaver', run.leavers);
    return out;
  }

  private source(id: number): Source {
    const s = this.sources.find((x) => x.id === id);
    if (!s) throw err('not_found', `no source ${id}`);
    return s;
  }

  private view(s: Source): SourceView {
    const last = this.runs.filter((r) => r.source_id === s.id).sort((a, b) => b.id - a.id)[0] ?? null;
    const running = [...this.running.values()].find((r) => r.run.source_id === s.id);
    return { id: s.id, kind: s.kind, name: s.name, settings: s.settings, has_cursor: s.cursor, last_run: running?.run ?? last };
  }

  list(): SourceView[] {
    return [...this.sources].sort((a, b) => (a.name.toLowerCase() < b.name.toLowerCase() ? -1 : 1)).map((s) => this.view(s));
  }

  add(n: NewSource): SourceView {
    if (!KNOWN_KINDS.includes(n.kind)) throw err('invalid_input', `unknown source kind '${n.kind}'; known: ${KNOWN_KINDS.join(', ')}`);
    const settings = n.settings;
    if (typeof settings !== 'object' || settings === null || Array.isArray(settings)) throw err('invalid_input', 'source settings must be a JSON object');
    for (const key of REQUIRED[n.kind] ?? []) {
      const v = settings[key];
      if (typeof v !== 'string' || !v.trim()) throw err('invalid_input', `a ${n.kind} source needs the setting '${key}'`);
    }
    const url = settings.base_url ?? settings.org_url;
    if (typeof url === 'string') {
      if (!/^https?:\/\/[^/\s]+/i.test(url)) throw err('invalid_input', `'${url}' is not a URL: relative URL without a base`);
    }
    const name = n.name.trim();
    if (!name) throw err('invalid_input', 'a source needs a name');
    if (this.sources.some((s) => s.name === name)) throw err('invalid_input', `a source named '${name}' already exists`);
    const s = this.create(n.kind, name, settings, n.secret || null);
    return this.view(s);
  }

  /** Same rule as the core: only SCIM and AWS IAM sources can carry out tasks. */
  setWriteBack(id: number, on: boolean): SourceView {
    const s = this.source(id);
    if (on && !WRITE_BACK_KINDS.includes(s.kind)) {
      throw err('invalid_input', `${s.kind} sources cannot carry out tasks; write-back works for: ${WRITE_BACK_KINDS.join(', ')}`);
    }
    s.settings = { ...s.settings, write_back: on };
    return this.view(s);
  }

  setSecret(id: number, secret: string): null {
    const s = this.source(id);
    s.secret = secret;
    return null;
  }

  private check(s: Source): void {
    if (NEEDS_SECRET.has(s.kind) && !s.secret) {
      throw err('secret_missing', `no secret is stored for source '${s.name}'; set one with Replace secret`);
    }
    const path = s.settings.path;
    if (typeof path === 'string' && /missing|nope/i.test(path)) {
      throw err('invalid_input', `cannot read the spreadsheet ${path}: No such file or directory (os error 2)`);
    }
  }

  private size(s: Source): number {
    return s.kind === 'csv' ? 12 + (s.id % 5) : s.kind === 'entra' ? 1840 : 420;
  }

  async test(id: number): Promise<string> {
    const s = this.source(id);
    await new Promise((r) => setTimeout(r, this.step * 3));
    this.check(s);
    const n = this.size(s);
    const people = s.kind === 'csv' ? 0 : Math.round(n / 4);
    return `connected: ${people} people, ${n} identities, ${s.kind === 'csv' ? 0 : Math.round(n / 3)} resources, ${s.kind === 'csv' ? 0 : n * 2} grants`;
  }

  progress(id: number): SyncProgress | null {
    const r = [...this.running.values()].find((x) => x.run.source_id === id);
    return r ? { ...r.progress } : null;
  }

  cancel(id: number): boolean {
    const r = [...this.running.values()].find((x) => x.run.source_id === id);
    if (!r) return false;
    r.cancelled = true;
    return true;
  }

  async sync(id: number): Promise<SyncRunView> {
    const s = this.source(id);
    if ([...this.running.values()].some((x) => x.run.source_id === id)) throw err('invalid_input', 'this source is already syncing');
    const run: SyncRunView = {
      id: this.nextRun++, source_id: id, started_at: iso(Date.now()), finished_at: null, status: 'running',
      mode: s.cursor ? 'incremental' : 'full', items: 0, joiners: 0, movers: 0, leavers: 0, error_code: null, error_message: null,
    };
    this.runs.push(run);
    const state: Running = { run, progress: { source_id: id, phase: 'starting', pages: 0, items: 0, total: null }, cancelled: false };
    this.running.set(run.id, state);
    const wait = () => new Promise((r) => setTimeout(r, this.step));
    const finish = (status: string, code: string | null, message: string | null) => {
      run.status = status;
      run.finished_at = iso(Date.now());
      run.error_code = code;
      run.error_message = message;
      this.running.delete(run.id);
      this.events.set(run.id, this.makeEvents(run));
    };
    try {
      state.progress = { ...state.progress, phase: 'connecting' };
      await wait();
      this.check(s);
      const total = this.size(s);
      const knowsTotal = s.kind === 'csv' || s.kind === 'scim';
      const pages = s.kind === 'csv' ? 1 : 12;
      const phases = s.kind === 'csv' ? ['identities'] : ['people', 'identities', 'groups'];
      let items = 0;
      for (const phase of phases) {
        for (let p = 1; p <= pages; p++) {
          if (state.cancelled) throw err('cancelled', 'the sync was cancelled; the previous snapshot is kept');
          items = Math.min(total, items + Math.ceil(total / (pages * phases.length)));
          state.progress = { source_id: id, phase, pages: state.progress.pages + 1, items, total: knowsTotal ? total : null };
          await wait();
        }
      }
      if (state.cancelled) throw err('cancelled', 'the sync was cancelled; the previous snapshot is kept');
      state.progress = { source_id: id, phase: 'applying', pages: 0, items: total, total: null };
      await wait();
      const first = !this.runs.some((r) => r.source_id === id && r.id !== run.id && r.status === 'succeeded');
      run.items = total;
      run.joiners = first ? total : id % 3;
      run.movers = first ? 0 : (id + 1) % 4;
      run.leavers = first ? 0 : id % 2;
      s.cursor = s.kind === 'entra' || s.kind === 'okta';
      finish('succeeded', null, null);
      return { ...run };
    } catch (e) {
      const ue = e as ApiError;
      finish(ue.code === 'cancelled' ? 'cancelled' : 'failed', ue.code, ue.message);
      throw e;
    }
  }

  /** Like `begin_source_sign_in`: only a source whose device sign-in setting is on. */
  beginSignIn(id: number): DeviceCodePrompt {
    const s = this.source(id);
    if (!signsInWithDeviceCode(kindDef(SOURCE_KINDS, s.kind), s.settings)) {
      throw err('invalid_input', `source '${s.name}' (${s.kind}) has no sign-in of its own: only an Entra source with delegated=true signs in as an administrator (with a device code)`);
    }
    const earlier = this.signIns.get(id);
    if (earlier) earlier.cancelled = true;
    this.signIns.set(id, { cancelled: false });
    const uri = 'https://microsoft.com/devicelogin';
    const code = `MOCK${(id * 7919) % 100000}`.padEnd(9, 'X');
    return { user_code: code, verification_uri: uri, message: `To sign in, use a web browser to open the page ${uri} and enter the code ${code} to authenticate.`, expires_in: 900 };
  }

  /** The administrator "signs in" after a few steps, unless cancelled first. */
  async finishSignIn(id: number): Promise<string | null> {
    const s = this.source(id);
    const pending = this.signIns.get(id);
    if (!pending) throw err('invalid_input', `no sign-in is waiting for source '${s.name}' (or one is already being waited for): start it again`);
    for (let i = 0; i < 12; i++) {
      await new Promise((r) => setTimeout(r, this.step));
      if (pending.cancelled) throw err('cancelled', 'the sign-in was cancelled');
    }
    this.signIns.delete(id);
    s.secret = 'mock-refresh-token';
    return 'admin@contoso.example';
  }

  cancelSignIn(id: number): boolean {
    const pending = this.signIns.get(id);
    if (!pending) return false;
    pending.cancelled = true;
    this.signIns.delete(id);
    return true;
  }

  listRuns(source: number | null, limit: number): SyncRunView[] {
    return this.runs
      .filter((r) => source === null || r.source_id === source)
      .sort((a, b) => b.id - a.id)
      .slice(0, Math.max(0, Math.min(limit || 50, 500)))
      .map((r) => ({ ...r }));
  }

  runEvents(run: number): LifecycleEventView[] {
    if (!this.runs.some((r) => r.id === run)) throw err('not_found', `no sync run ${run}`);
    return this.events.get(run) ?? [];
  }
}
