// Settings: where the app connects (solo or a team workspace), who I am there,
// and the role capabilities the nav and the buttons follow. Tauri commands, or
// an in-browser mock (solo, or a workspace with a mock role set).
//
// A password only ever goes in (`saveSettings`, `testConnection`): no call
// returns it, and the view shows "saved in the keyring" instead.

import { invoke } from '@tauri-apps/api/core';
import { useEffect, useState } from 'preact/hooks';
import type { ConnectionSettings, ConnectionSettingsView, RoleView, SignInTarget, SnapshotInfo, WhoAmI } from '../bindings';
import { inTauri, toUserError, type UserError } from './ipc';
import { capabilities, type Capabilities } from './roles';
import { reviews as reviewsApi, type ReviewsApi } from './reviews';

export interface ConnectionApi {
  whoAmI(): Promise<WhoAmI>;
  settings(): Promise<ConnectionSettingsView>;
  save(settings: ConnectionSettings, password: string | null): Promise<ConnectionSettingsView>;
  test(settings: ConnectionSettings, password: string | null): Promise<WhoAmI>;
  /** Reopens the store where the settings point; the new who-am-I. */
  reconnect(): Promise<WhoAmI>;
  /** Where a sign-in goes (the workspace login and server); `null` for a local cache. */
  signInTarget(): Promise<SignInTarget | null>;
  /** Signs in with a typed password (checked first; kept in the keyring when `remember`, else until the app quits), then reopens the store. */
  signIn(password: string, remember: boolean): Promise<WhoAmI>;
}

const tauriConnection: ConnectionApi = {
  whoAmI: () => invoke<WhoAmI>('who_am_i'),
  settings: () => invoke<ConnectionSettingsView>('connection_settings'),
  save: (settings, password) => invoke<ConnectionSettingsView>('save_connection_settings', { settings, password }),
  test: (settings, password) => invoke<WhoAmI>('test_connection', { settings, password }),
  reconnect: () => invoke<WhoAmI>('reconnect'),
  signInTarget: () => invoke<SignInTarget | null>('sign_in_target'),
  signIn: (password, remember) => invoke<WhoAmI>('sign_in', { password, remember }),
};

export const DEFAULT_SETTINGS: ConnectionSettings = {
  mode: 'solo',
  host: '',
  port: 5432,
  database: 'custodian',
  login: '',
  tls: 'verify-full',
  ca_file: null,
};

/** True for localhost and loopback addresses (where TLS may be off). */
export function isLoopback(host: string): boolean {
  const h = host.trim().replace(/^\[/, '').replace(/\]$/, '').toLowerCase();
  return h === 'localhost' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || h === '::1';
}

const IDENT = { database: /^[A-Za-z_][A-Za-z0-9_.-]{0,62}$/, login: /^[A-Za-z_][A-Za-z0-9_.@-]{0,62}$/ };

/**
 * The form's own check, before a round trip (the core checks the same and is
 * the authority). `null` when the settings look right, else the field and why.
 */
export function validateSettings(s: ConnectionSettings): { field: keyof ConnectionSettings; message: string } | null {
  if (s.mode === 'solo') return null;
  const host = s.host.trim();
  if (!host) return { field: 'host', message: "Enter the PostgreSQL server's name or address." };
  if (host.length > 253 || !/^(\[?[0-9A-Fa-f:.]+\]?|[A-Za-z0-9._-]+)$/.test(host))
    return { field: 'host', message: 'The host is not a host name or IP address.' };
  if (!Number.isInteger(s.port) || s.port < 1 || s.port > 65535) return { field: 'port', message: 'The port is a number from 1 to 65535.' };
  if (!IDENT.database.test(s.database))
    return { field: 'database', message: 'The database is 1-63 characters: a letter or _ first, then letters, digits, _ - .' };
  if (!IDENT.login.test(s.login)) return { field: 'login', message: 'The login is 1-63 characters: a letter or _ first, then letters, digits, _ - . @' };
  if (s.tls === 'disable' && !isLoopback(host))
    return { field: 'tls', message: 'TLS can be turned off only for this computer (localhost, 127.0.0.1, ::1).' };
  if (s.ca_file !== null && s.ca_file.trim() !== '' && !s.ca_file.trim().startsWith('/') && !/^[A-Za-z]:[\\/]/.test(s.ca_file.trim()))
    return { field: 'ca_file', message: "Give the CA certificate's full path, or leave it empty for the system's roots." };
  return null;
}

// ------------------------------------------------------------------- mock ---

export interface MockConnectionOptions {
  /** `null` (default): solo. A role set: a team workspace where the acting person holds those roles. */
  roles?: RoleView[] | null;
  /** The workspace cannot be reached (every call rejects with `network`). */
  unreachable?: boolean;
  /** The workspace cannot be reached and the app shows its offline snapshot (read-only) until Retry. */
  snapshot?: boolean;
  /** A workspace whose login has no password yet (or a refused one): every call rejects with `database_auth` until `signIn`. */
  signedOut?: boolean;
  /** Where the acting person comes from (default: the reviews backend in use). */
  reviews?: Pick<ReviewsApi, 'actingPerson' | 'setActingPerson' | 'findPeople'>;
}

/** The mock's "right" password for `test`; anything else is refused like the server would. */
export const MOCK_PASSWORD = 'correct horse';

export function createMockConnection(opts: MockConnectionOptions = {}): ConnectionApi & { readonly savedPassword: boolean } {
  const reviews = opts.reviews ?? reviewsApi;
  // The member's roles while the mock is a workspace (a reviewer after switching from solo).
  let roles = opts.roles ?? null;
  // In a workspace the acting person is the login's member (Maya Weber in the mock), not a choice.
  const ready = roles === null ? Promise.resolve() : reviews.setActingPerson(1).then(() => undefined, () => undefined);
  let saved: ConnectionSettings =
    roles === null
      ? { ...DEFAULT_SETTINGS }
      : { ...DEFAULT_SETTINGS, mode: 'workspace', host: 'pg.example.com', database: 'custodian', login: 'maya.weber' };
  // The mock's keyring: whether a password is kept (never what it is).
  let keyring = roles !== null;
  let unreachable = opts.unreachable ?? false;
  let offline = opts.snapshot ?? false;
  let signedOut = opts.signedOut ?? false;
  if (signedOut && roles === null) roles = ['reviewer'];
  if (signedOut) {
    saved = { ...DEFAULT_SETTINGS, mode: 'workspace', host: 'pg.example.com', database: 'custodian', login: 'maya.weber' };
    keyring = false;
  }
  const unreachableError = () => ({
    code: 'network',
    message: 'cannot connect to postgresql://maya.weber@pg.example.com:5432/custodian?sslmode=verify-full: connection refused',
  });
  const refusedLogin = () => ({
    code: 'database_auth',
    message: `the server refused the login ${saved.login}: password authentication failed for user "${saved.login}" (no password was found: put it in ~/.pgpass or PGPASSFILE, or keep it in the keyring with \`custodian db password\`)`,
  });
  const who = async (): Promise<WhoAmI> => {
    if (unreachable) throw unreachableError();
    if (signedOut) throw refusedLogin();
    if (saved.mode === 'solo' || roles === null) {
      return {
        mode: 'solo',
        engine: 'sqlite',
        location: '~/.local/share/custodian/custodian.db',
        login: null,
        person: await reviews.actingPerson(),
        roles: ['admin', 'campaign_owner', 'reviewer', 'manager', 'auditor'],
        claimed: true,
        os_account: 'maya',
        reachable: true,
        snapshot: null,
      };
    }
    await ready;
    const person = (await reviews.actingPerson()) ?? (await member());
    return {
      mode: 'workspace',
      engine: 'postgres',
      location: `postgresql://${saved.login}@${saved.host}:${saved.port}/${saved.database}?sslmode=${saved.tls}`,
      login: saved.login,
      person,
      roles: [...roles],
      claimed: false,
      os_account: null,
      reachable: !offline,
      snapshot: offline
        ? { taken_at: '2026-11-30T17:45:00Z', of: `postgresql://${saved.login}@${saved.host}:${saved.port}/${saved.database}`, login: saved.login, person_id: person?.id ?? null, roles: [...roles], rows: 1234 }
        : null,
    };
  };
  const member = async () => (await reviews.findPeople('maya'))[0] ?? null;
  const refuseInvalid = (s: ConnectionSettings) => {
    const bad = validateSettings(s);
    if (bad) throw { code: 'invalid_input', message: `${bad.field}: ${bad.message}` };
  };
  const view = (): ConnectionSettingsView => ({
    settings: { ...saved },
    file: '~/.config/custodian/connection.json',
    env_override: null,
    password_saved: saved.mode === 'workspace' && keyring,
  });
  return {
    get savedPassword() {
      return keyring;
    },
    whoAmI: who,
    settings: async () => view(),
    save: async (s, password) => {
      refuseInvalid(s);
      if (password && s.mode !== 'workspace') throw { code: 'invalid_input', message: 'password: a password is kept only for a team workspace' };
      saved = { ...s };
      if (password) keyring = true;
      roles = s.mode === 'workspace' ? (roles ?? ['reviewer']) : null;
      return view();
    },
    test: async (s, password) => {
      refuseInvalid(s);
      if (s.mode !== 'workspace') throw { code: 'invalid_input', message: 'choose Team workspace to connect to a PostgreSQL server' };
      if (s.host.endsWith('.invalid')) throw { code: 'network', message: `the workspace is unreachable: cannot connect to ${s.host}` };
      if ((password ?? (keyring ? MOCK_PASSWORD : '')) !== MOCK_PASSWORD)
        throw { code: 'database_auth', message: `the server refused the login ${s.login}: password authentication failed` };
      return {
        mode: 'workspace',
        engine: 'postgres',
        location: `postgresql://${s.login}@${s.host}:${s.port}/${s.database}?sslmode=${s.tls}`,
        login: s.login,
        person: await member(),
        roles: [...(roles ?? ['reviewer'])],
        claimed: false,
        os_account: null,
        reachable: true,
        snapshot: null,
      };
    },
    reconnect: async () => {
      unreachable = false;
      offline = false;
      return who();
    },
    signInTarget: async () =>
      saved.mode === 'workspace' ? { login: saved.login, address: `${saved.host}:${saved.port}/${saved.database}`, password_in_location: false } : null,
    signIn: async (password, remember) => {
      if (saved.mode !== 'workspace') throw { code: 'invalid_input', message: 'this is a local cache: it has no sign-in (a team workspace is chosen in Settings)' };
      if (!password) throw { code: 'invalid_input', message: 'type the password of your workspace login' };
      if (password !== MOCK_PASSWORD) throw { code: 'database_auth', message: `the server refused the login ${saved.login}: password authentication failed for user "${saved.login}"` };
      signedOut = false;
      if (remember) keyring = true;
      return who();
    },
  };
}

function mockRoles(): RoleView[] | null {
  if (typeof location === 'undefined') return null;
  const v = new URLSearchParams(location.search).get('mock-role');
  if (v === null) return null;
  return v.split(',').filter((r): r is RoleView => ['admin', 'campaign_owner', 'reviewer', 'manager', 'auditor'].includes(r));
}

// ------------------------------------------------------------ the backend ---

let current: ConnectionApi | null = null;

/** Replaces the backend (tests); forgets who I am. */
export function setConnectionApi(api: ConnectionApi): void {
  current = api;
  whoState = { who: undefined, error: null };
  notify();
}

function backend(): ConnectionApi {
  if (!current) current = inTauri() ? tauriConnection : createMockConnection({ roles: mockRoles() });
  return current;
}

async function call<T>(f: (api: ConnectionApi) => Promise<T>): Promise<T> {
  try {
    return await f(backend());
  } catch (e) {
    throw toUserError(e);
  }
}

export const connection = {
  whoAmI: () => call((a) => a.whoAmI()),
  settings: () => call((a) => a.settings()),
  save: (s: ConnectionSettings, password: string | null) => call((a) => a.save(s, password)),
  test: (s: ConnectionSettings, password: string | null) => call((a) => a.test(s, password)),
  reconnect: () => call((a) => a.reconnect()),
  signInTarget: () => call((a) => a.signInTarget()),
  signIn: (password: string, remember: boolean) => call((a) => a.signIn(password, remember)),
};

// ------------------------------------------- who am I, shared by the views ---

interface WhoState {
  /** `undefined` while loading. */
  who: WhoAmI | null | undefined;
  error: UserError | null;
}

let whoState: WhoState = { who: undefined, error: null };
let loading: Promise<void> | null = null;
const listeners = new Set<() => void>();

function notify(): void {
  for (const l of [...listeners]) l();
}

function set(next: WhoState): void {
  whoState = next;
  notify();
}

/** Asks the backend again who I am (after a reconnect, a new acting person). */
export function refreshWhoAmI(): Promise<void> {
  const p = connection.whoAmI().then(
    (who) => set({ who, error: null }),
    (e: unknown) => set({ who: null, error: toUserError(e) }),
  );
  loading = p;
  void p.finally(() => {
    if (loading === p) loading = null;
  });
  return p;
}

/** Reopens the store (Retry, Save and reconnect), then who I am. */
export function reconnect(): Promise<WhoAmI> {
  return connection.reconnect().then(
    (who) => {
      set({ who, error: null });
      return who;
    },
    (e: unknown) => {
      const err = toUserError(e);
      set({ who: null, error: err });
      throw err;
    },
  );
}

/** Signs in to the workspace (the sign-in form); who I am is then the member. */
export function signIn(password: string, remember: boolean): Promise<WhoAmI> {
  return connection.signIn(password, remember).then((who) => {
    set({ who, error: null });
    return who;
  });
}

/** Who I am (shared; loaded once), and the error when the store did not answer. */
export function useWhoAmI(): WhoState {
  const [s, setS] = useState<WhoState>(whoState);
  useEffect(() => {
    const on = () => setS(whoState);
    listeners.add(on);
    if (whoState.who === undefined && !whoState.error && !loading) void refreshWhoAmI();
    on();
    return () => {
      listeners.delete(on);
    };
  }, []);
  return s;
}

/** What the role set lets the UI show (everything in solo mode and while unknown). */
export function useCapabilities(): Capabilities {
  const { who } = useWhoAmI();
  return capabilities(who ?? null);
}

/** The offline snapshot shown while the team workspace does not answer, if that is what is open. */
export function useSnapshot(): SnapshotInfo | null {
  return useWhoAmI().who?.snapshot ?? null;
}

/** True when the error means the team workspace did not answer (not a refusal). */
export function isUnreachable(e: UserError | null): boolean {
  return e !== null && e.code === 'network';
}
