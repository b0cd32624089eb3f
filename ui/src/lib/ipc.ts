// Typed wrappers over the Tauri commands, plus error normalisation.
//
// Inside the desktop app every call goes through `invoke`. In a plain browser
// (`npm run dev`, `vite preview`) there is no `window.__TAURI_INTERNALS__`, so
// the calls are answered by the in-browser mock backend in ./mock.ts instead.

import { invoke } from '@tauri-apps/api/core';
import type {
  DeviceCodePrompt,
  ErrorCode,
  FindingCatalogue,
  IdentityDetail,
  InventoryFacets,
  InventoryPage,
  InventoryQuery,
  JsonValue,
  LifecycleEventView,
  OrgSummary,
  SourceKindView,
  SourceView,
  SyncProgress,
  SyncRunView,
} from '../bindings';

/** What `add_source` takes. `secret` goes to the OS keyring and never comes back. */
export interface NewSource {
  kind: string;
  name: string;
  settings: JsonValue;
  secret: string | null;
}

/** The operations the UI needs from a backend (the Tauri commands, or the mock). */
export interface Backend {
  summary(): Promise<OrgSummary>;
  inventory(query: InventoryQuery): Promise<InventoryPage>;
  inventoryFacets(): Promise<InventoryFacets>;
  identity(id: number): Promise<IdentityDetail>;
  /** The kinds of source this build knows (the core's catalogue). */
  sourceKinds(): Promise<SourceKindView[]>;
  /** Every posture check and OWASP NHI category (the core's catalogue). */
  findingChecks(): Promise<FindingCatalogue>;
  sources(): Promise<SourceView[]>;
  addSource(source: NewSource): Promise<SourceView>;
  setSourceSecret(id: number, secret: string): Promise<null>;
  /** Lets Custodian carry out remediation tasks in the source (SCIM, AWS IAM), or stops it. */
  setSourceWriteBack(id: number, on: boolean): Promise<SourceView>;
  /** A human summary of what the source answered, e.g. `connected: 3 people, ...`. */
  testSource(id: number): Promise<string>;
  /** Resolves when the run ends; rejects on failure (the run is still recorded). */
  syncSource(id: number): Promise<SyncRunView>;
  /** The latest progress of a running sync, or null when none runs. */
  syncProgress(id: number): Promise<SyncProgress | null>;
  /** Asks a running sync to stop; false when none runs. */
  cancelSync(id: number): Promise<boolean>;
  /** Newest first; `source` null for every source. */
  syncRuns(source: number | null, limit: number): Promise<SyncRunView[]>;
  runEvents(run: number): Promise<LifecycleEventView[]>;
  /**
   * Begins an administrator's device-code sign-in for a source that signs
   * in as one (`SourceKindView.device_sign_in` on): the code to show and
   * where to enter it. Then `finishSourceSignIn` waits for it.
   */
  beginSourceSignIn(id: number): Promise<DeviceCodePrompt>;
  /**
   * Resolves once the administrator has signed in (the refresh token is in
   * the OS keyring) with who signed in, when Entra names them; rejects when
   * declined, expired, or `cancelled` by `cancelSourceSignIn`.
   */
  finishSourceSignIn(id: number): Promise<string | null>;
  /** Stops waiting for the sign-in; false when none waits. */
  cancelSourceSignIn(id: number): Promise<boolean>;
  /**
   * Removes the generated demo organisation without loading another
   * (audited); history made on it (campaigns, decisions...) only with
   * `discardHistory`, else refused with `invalid_input` naming it.
   */
  clearDemo(discardHistory: boolean): Promise<null>;
}

/**
 * A short, human explanation per error code, shown above the message. A
 * `Record` over `ErrorCode`, so a code added in Rust fails the type check
 * until it is handled here.
 */
const HEADLINES: Record<ErrorCode, string> = {
  invalid_input: 'Invalid request',
  not_found: 'Not found',
  database_unreadable: 'The local database could not be read',
  database_too_new: 'The local database was written by a newer version of Custodian',
  storage: 'Storage error',
  network: 'The source could not be reached',
  source_auth: 'The source refused the credentials',
  rate_limited: 'The source is throttling requests',
  source_error: 'The source answered with an error',
  malformed_response: 'The source sent data Custodian cannot read',
  cursor_expired: 'The incremental sync position expired',
  cancelled: 'Cancelled',
  secret_missing: 'No secret is stored for this source',
  keyring: 'The OS keyring is not available',
  audit_broken: 'The audit log does not verify',
  forbidden: 'The workspace does not allow this for your login',
  conflict: 'Someone else changed this at the same time; try again',
  database_auth: 'The workspace refused the login',
  read_only: 'Read-only: the team workspace is offline',
  internal: 'Something went wrong',
};

const ERROR_CODES = Object.keys(HEADLINES) as ErrorCode[];

function isErrorCode(v: unknown): v is ErrorCode {
  return typeof v === 'string' && (ERROR_CODES as readonly string[]).includes(v);
}

/** An error to show to the user. Branch on `code`, never on `message`. */
export class UserError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = 'UserError';
    this.code = code;
  }
}

/**
 * Turns whatever a command rejected with into a `UserError`.
 *
 * Commands reject with `{ code, message }` (the `Error` DTO). Tauri itself
 * rejects with a bare string (e.g. an unknown command or bad arguments), and
 * JavaScript failures are `Error`s; those become `internal`.
 */
export function toUserError(e: unknown): UserError {
  if (e instanceof UserError) return e;
  if (typeof e === 'object' && e !== null) {
    const o = e as { code?: unknown; message?: unknown };
    const message = typeof o.message === 'string' && o.message ? o.message : 'Unexpected error';
    if (isErrorCode(o.code)) return new UserError(o.code, message);
    return new UserError('internal', message);
  }
  if (typeof e === 'string' && e) return new UserError('internal', e);
  return new UserError('internal', 'Unexpected error');
}

/** Whether the page runs inside the Tauri webview. */
export function inTauri(): boolean {
  return typeof window !== 'undefined' && '__TAURI_INTERNALS__' in window;
}

export const tauriBackend: Backend = {
  summary: () => invoke<OrgSummary>('summary'),
  inventory: (query) => invoke<InventoryPage>('inventory', { query }),
  inventoryFacets: () => invoke<InventoryFacets>('inventory_facets'),
  identity: (id) => invoke<IdentityDetail>('identity', { id }),
  sourceKinds: () => invoke<SourceKindView[]>('source_kinds'),
  findingChecks: () => invoke<FindingCatalogue>('finding_checks'),
  sources: () => invoke<SourceView[]>('sources'),
  addSource: ({ kind, name, settings, secret }) => invoke<SourceView>('add_source', { kind, name, settings, secret }),
  setSourceSecret: (id, secret) => invoke<null>('set_source_secret', { id, secret }),
  setSourceWriteBack: (id, on) => invoke<SourceView>('set_source_write_back', { id, on }),
  testSource: (id) => invoke<string>('test_source', { id }),
  syncSource: (id) => invoke<SyncRunView>('sync_source', { id }),
  syncProgress: (id) => invoke<SyncProgress | null>('sync_progress', { id }),
  cancelSync: (id) => invoke<boolean>('cancel_sync', { id }),
  syncRuns: (source, limit) => invoke<SyncRunView[]>('sync_runs', { source, limit }),
  runEvents: (run) => invoke<LifecycleEventView[]>('run_events', { run }),
  beginSourceSignIn: (id) => invoke<DeviceCodePrompt>('begin_source_sign_in', { id }),
  finishSourceSignIn: (id) => invoke<string | null>('finish_source_sign_in', { id }),
  cancelSourceSignIn: (id) => invoke<boolean>('cancel_source_sign_in', { id }),
  clearDemo: (discardHistory) => invoke<null>('clear_demo', { discardHistory }),
};

let backend: Promise<Backend> | null = null;
let generation = 0;

/** Replaces the backend (tests). */
export function setBackend(b: Backend): void {
  backend = Promise.resolve(b);
  generation++;
}

/** Changes whenever the backend is replaced (what caches of its answers key on). */
export function backendGeneration(): number {
  return generation;
}

function mockSize(): number | undefined {
  if (typeof location === 'undefined') return undefined;
  const n = Number(new URLSearchParams(location.search).get('mock-size'));
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

function getBackend(): Promise<Backend> {
  if (!backend) {
    backend = inTauri()
      ? Promise.resolve(tauriBackend)
      : import('./mock').then((m) => m.createMockBackend({ size: mockSize() }));
  }
  return backend;
}

/** True when the UI is talking to the mock backend. */
export function usingMock(): boolean {
  return !inTauri();
}

async function call<T>(f: (b: Backend) => Promise<T>): Promise<T> {
  try {
    return await f(await getBackend());
  } catch (e) {
    throw toUserError(e);
  }
}

export const api = {
  summary: (): Promise<OrgSummary> => call((b) => b.summary()),
  inventory: (query: InventoryQuery): Promise<InventoryPage> => call((b) => b.inventory(query)),
  inventoryFacets: (): Promise<InventoryFacets> => call((b) => b.inventoryFacets()),
  identity: (id: number): Promise<IdentityDetail> => call((b) => b.identity(id)),
  sourceKinds: (): Promise<SourceKindView[]> => call((b) => b.sourceKinds()),
  findingChecks: (): Promise<FindingCatalogue> => call((b) => b.findingChecks()),
  sources: (): Promise<SourceView[]> => call((b) => b.sources()),
  addSource: (source: NewSource): Promise<SourceView> => call((b) => b.addSource(source)),
  setSourceSecret: (id: number, secret: string): Promise<null> => call((b) => b.setSourceSecret(id, secret)),
  setSourceWriteBack: (id: number, on: boolean): Promise<SourceView> => call((b) => b.setSourceWriteBack(id, on)),
  testSource: (id: number): Promise<string> => call((b) => b.testSource(id)),
  syncSource: (id: number): Promise<SyncRunView> => call((b) => b.syncSource(id)),
  syncProgress: (id: number): Promise<SyncProgress | null> => call((b) => b.syncProgress(id)),
  cancelSync: (id: number): Promise<boolean> => call((b) => b.cancelSync(id)),
  syncRuns: (source: number | null, limit = 50): Promise<SyncRunView[]> => call((b) => b.syncRuns(source, limit)),
  runEvents: (run: number): Promise<LifecycleEventView[]> => call((b) => b.runEvents(run)),
  beginSourceSignIn: (id: number): Promise<DeviceCodePrompt> => call((b) => b.beginSourceSignIn(id)),
  finishSourceSignIn: (id: number): Promise<string | null> => call((b) => b.finishSourceSignIn(id)),
  cancelSourceSignIn: (id: number): Promise<boolean> => call((b) => b.cancelSourceSignIn(id)),
  clearDemo: (discardHistory: boolean): Promise<null> => call((b) => b.clearDemo(discardHistory)),
};

type Listener = () => void;
const dataListeners = new Set<Listener>();

/**
 * Subscribes to "the organisation in the cache changed" (a source was added
 * or a sync applied): the summary and the inventory reload. Returns the
 * unsubscribe function.
 */
export function onDataChanged(fn: Listener): () => void {
  dataListeners.add(fn);
  return () => dataListeners.delete(fn);
}

export function notifyDataChanged(): void {
  for (const fn of [...dataListeners]) fn();
}

/** A short, human explanation for an error code, shown above the message. */
export function errorHeadline(code: ErrorCode): string {
  return HEADLINES[code];
}
