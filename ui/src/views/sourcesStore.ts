// State of the Sources view. It lives outside the component so that a sync
// started here keeps its progress, and still refreshes everything when it
// ends, while the user looks at the inventory meanwhile.

import type { LifecycleEventView, SourceKindView, SourceView, SyncProgress, SyncRunView } from '../bindings';
import { catalogues } from '../lib/catalogue';
import { api, notifyDataChanged, toUserError, type NewSource, type UserError } from '../lib/ipc';
import { pollProgress } from '../lib/sources';

export const RUN_LIMIT = 100;

export interface RunningSync {
  progress: SyncProgress | null;
  cancelling: boolean;
}

export type TestState = { state: 'running' } | { state: 'ok'; text: string } | { state: 'error'; error: UserError };

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
