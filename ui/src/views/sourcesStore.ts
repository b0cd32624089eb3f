// State of the Sources view. It lives outside the component so that a sync
// started here keeps its progress, and still refreshes everything when it
// ends, while the user looks at the inventory meanwhile.

import type { DeviceCodePrompt, LifecycleEventView, SourceKindView, SourceView, SyncProgress, SyncRunView } from '../bindings';
import { catalogues } from '../lib/catalogue';
import { api, notifyDataChanged, toUserError, type NewSource, type UserError } from '../lib/ipc';
import { pollProgress } from '../lib/sources';

export const RUN_LIMIT = 100;

export interface RunningSync {
  progress: SyncProgress | null;
  cancelling: boolean;
}

export type TestState = { state: 'running' } | { state: 'ok'; text: string } | { state: 'error'; error: UserError };

/**
 * An administrator's device-code sign-in from a source's row: asking for
 * the code, waiting while it is entered (until `expiresAt`, ms), then the
 * outcome. Cancelling removes it.
 */
export type SignInState =
  | { state: 'starting' }
  | { state: 'waiting'; prompt: DeviceCodePrompt; expiresAt: number }
  | { state: 'done'; user: string | null }
  | { state: 'error'; error: UserError };

/** What one row shows after its last sync in this session. */
export type SyncOutcome = { ok: true; run: SyncRunView } | { ok: false; error: UserError };

export class SourcesStore {
  sources: SourceView[] | null = null;
  sourcesError: UserError | null = null;
  /** The kinds of source (the core's catalogue): the form, labels and toggles are built from it. */
  kinds: SourceKindView[] | null = null;
  kindsError: UserError | null = null;
  /** The cache still holds the generated demo organisation (its sources cannot sync). */
  demo = false;
  /** Whether the add-source form is open; null: open until a real source exists. */
  addOpen: boolean | null = null;
  /** Name of the source just added, for a note until dismissed. */
  lastAdded: string | null = null;
  /** Source whose history is shown; null for all. */
  historySource: number | null = null;
  runs: SyncRunView[] | null = null;
  runsError: UserError | null = null;
  selectedRun: number | null = null;
  events: LifecycleEventView[] | null = null;
  eventsError: UserError | null = null;
  readonly syncs = new Map<number, RunningSync>();
  readonly outcomes = new Map<number, SyncOutcome>();
  readonly tests = new Map<number, TestState>();
  readonly signIns = new Map<number, SignInState>();
  private listeners = new Set<() => void>();
  private sourcesGen = 0;
  private runsGen = 0;
  private eventsGen = 0;

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  emit(): void {
    for (const fn of this.listeners) fn();
  }

  /** Reloads the sources and the history. */
  load(): void {
    this.loadKinds();
    this.loadSources();
    this.loadRuns();
  }

  loadKinds(): void {
    catalogues.sourceKinds().then(
      (kinds) => {
        this.kinds = kinds;
        this.kindsError = null;
        this.emit();
      },
      (e: unknown) => {
        this.kindsError = toUserError(e);
        this.emit();
      },
    );
  }

  loadSources(): void {
    const gen = ++this.sourcesGen;
    Promise.all([api.sources(), api.summary().catch(() => null)]).then(
      ([sources, summary]) => {
        if (gen !== this.sourcesGen) return;
        this.sources = sources;
        this.sourcesError = null;
        this.demo = !!summary?.dataset?.startsWith('demo-');
        if (this.historySource !== null && !sources.some((s) => s.id === this.historySource)) this.historySource = null;
        this.emit();
      },
      (e: unknown) => {
        if (gen !== this.sourcesGen) return;
        this.sourcesError = toUserError(e);
        this.emit();
      },
    );
  }

  loadRuns(): void {
    const gen = ++this.runsGen;
    api.syncRuns(this.historySource, RUN_LIMIT).then(
      (runs) => {
        if (gen !== this.runsGen) return;
        this.runs = runs;
        this.runsError = null;
        if (this.selectedRun !== null && !runs.some((r) => r.id === this.selectedRun)) this.selectRun(null);
        this.emit();
      },
      (e: unknown) => {
        if (gen !== this.runsGen) return;
        this.runsError = toUserError(e);
        this.emit();
      },
    );
  }

  showHistoryOf(source: number | null): void {
    if (source === this.historySource) return;
    this.historySource = source;
    this.runs = null;
    this.selectRun(null);
    this.loadRuns();
    this.emit();
  }

  selectRun(run: number | null): void {
    this.selectedRun = run;
    this.events = null;
    this.eventsError = null;
    const gen = ++this.eventsGen;
    if (run !== null) {
      api.runEvents(run).then(
        (events) => {
          if (gen !== this.eventsGen) return;
          this.events = events;
          this.emit();
        },
        (e: unknown) => {
          if (gen !== this.eventsGen) return;
          this.eventsError = toUserError(e);
          this.emit();
        },
      );
    }
    this.emit();
  }

  /** Adds a source; rejects with the backend's error for the form to show. */
  async add(source: NewSource): Promise<SourceView> {
    const view = await api.addSource(source);
    // The demo stays until the new source's first successful sync.
    this.load();
    notifyDataChanged();
    return view;
  }

  /** Switches write-back for a source; the list reloads with the new setting. */
  async setWriteBack(id: number, on: boolean): Promise<void> {
    try {
      await api.setSourceWriteBack(id, on);
      this.load();
    } catch (e) {
      // Shown inline under the row, like a failed connection test.
      this.tests.set(id, { state: 'error', error: toUserError(e) });
      this.emit();
    }
  }

  replaceSecret(id: number, secret: string): Promise<null> {
    return api.setSourceSecret(id, secret);
  }

  test(id: number): void {
    if (this.tests.get(id)?.state === 'running') return;
    this.tests.set(id, { state: 'running' });
    this.emit();
    api.testSource(id).then(
      (text) => this.tests.set(id, { state: 'ok', text }),
      (e: unknown) => this.tests.set(id, { state: 'error', error: toUserError(e) }),
    ).finally(() => this.emit());
  }

  dismissTest(id: number): void {
    this.tests.delete(id);
    this.emit();
  }

  isSyncing(id: number): boolean {
    return this.syncs.has(id);
  }

  /** Starts a sync, polls its progress until it ends, then refreshes everything. */
  sync(id: number): void {
    if (this.syncs.has(id)) return;
    const running: RunningSync = { progress: null, cancelling: false };
    this.syncs.set(id, running);
    this.outcomes.delete(id);
    this.emit();
    const poller = pollProgress(
      () => api.syncProgress(id),
      (p) => {
        if (p) {
          running.progress = p;
          this.emit();
        }
      },
    );
    // The run is recorded as running: show it in the history at once.
    setTimeout(() => this.syncs.has(id) && this.load(), 300);
    api.syncSource(id).then(
      (run) => {
        this.outcomes.set(id, { ok: true, run });
        notifyDataChanged();
      },
      (e: unknown) => this.outcomes.set(id, { ok: false, error: toUserError(e) }),
    ).finally(() => {
      poller.settle();
      this.syncs.delete(id);
      this.load();
      this.emit();
    });
  }

  /**
   * Begins an administrator's sign-in for the source: shows the code, waits
   * for it, then keeps the outcome for the row. Does nothing while one is
   * under way for the source.
   */
  signIn(id: number): void {
    const current = this.signIns.get(id)?.state;
    if (current === 'starting' || current === 'waiting') return;
    const starting: SignInState = { state: 'starting' };
    this.signIns.set(id, starting);
    this.emit();
    // Each step checks that the row still shows this sign-in (not
    // cancelled, not begun again) before it changes the row.
    let shown: SignInState = starting;
    const ours = () => this.signIns.get(id) === shown;
    const show = (next: SignInState) => {
      shown = next;
      this.signIns.set(id, next);
      this.emit();
    };
    api.beginSourceSignIn(id).then(
      (prompt) => {
        if (!ours()) {
          // Cancelled while the code was being asked for.
          void api.cancelSourceSignIn(id).catch(() => false);
          return;
        }
        show({ state: 'waiting', prompt, expiresAt: Date.now() + prompt.expires_in * 1000 });
        api.finishSourceSignIn(id).then(
          (user) => {
            if (!ours()) return;
            show({ state: 'done', user });
            this.loadSources();
          },
          (e: unknown) => {
            const error = toUserError(e);
            if (ours() && error.code !== 'cancelled') show({ state: 'error', error });
          },
        );
      },
      (e: unknown) => {
        if (ours()) show({ state: 'error', error: toUserError(e) });
      },
    );
  }

  /** Stops waiting for the source's sign-in (its code no longer works here). */
  cancelSignIn(id: number): void {
    const current = this.signIns.get(id)?.state;
    this.signIns.delete(id);
    this.emit();
    if (current === 'waiting') void api.cancelSourceSignIn(id).catch(() => false);
  }

  dismissSignIn(id: number): void {
    const current = this.signIns.get(id)?.state;
    if (current === 'done' || current === 'error') {
      this.signIns.delete(id);
      this.emit();
    }
  }

  cancel(id: number): void {
    const running = this.syncs.get(id);
    if (!running || running.cancelling) return;
    running.cancelling = true;
    this.emit();
    api.cancelSync(id).catch(() => {
      running.cancelling = false;
      this.emit();
    });
  }
}

export const sourcesStore = new SourcesStore();
