// Typed wrappers over the Tauri commands, plus error normalisation.
//
// Inside the desktop app every call goes through `invoke`. In a plain browser
// (`npm run dev`, `vite preview`) there is no `window.__TAURI_INTERNALS__`, so
// the calls are answered by the in-browser mock backend in ./mock.ts instead.

import { invoke } from '@tauri-apps/api/core';
import type {
  ErrorCode,
  IdentityDetail,
  InventoryFacets,
  InventoryPage,
  InventoryQuery,
  OrgSummary,
} from '../bindings';

/** The operations the UI needs from a backend (the Tauri commands, or the mock). */
export interface Backend {
  summary(): Promise<OrgSummary>;
  inventory(query: InventoryQuery): Promise<InventoryPage>;
  inventoryFacets(): Promise<InventoryFacets>;
  identity(id: number): Promise<IdentityDetail>;
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
};

let backend: Promise<Backend> | null = null;

/** Replaces the backend (tests). */
export function setBackend(b: Backend): void {
  backend = Promise.resolve(b);
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
};

/** A short, human explanation for an error code, shown above the message. */
export function errorHeadline(code: ErrorCode): string {
  return HEADLINES[code];
}
