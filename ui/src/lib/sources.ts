// Sources: the settings each kind of source takes, building the settings JSON
// for `add_source`, and the pure bits of the sync UI (progress, polling, run
// summaries). The backend (src/ops.rs) stays the authority on validation:
// nothing here rejects what it would accept.

import type { JsonValue, SyncProgress, SyncRunView } from '../bindings';
import { formatCount } from './format';

export interface SettingField {
  key: string;
  label: string;
  hint: string;
  placeholder?: string;
  required: boolean;
  /** Sent as a JSON number (a positive whole number). */
  numeric?: boolean;
}

export interface SourceKindDef {
  kind: string;
  label: string;
  /** One line about what the source reads. */
  about: string;
  fields: SettingField[];
  /** What the secret is, when the kind keeps one in the keyring; null when it has none. */
  secret: { label: string; hint: string } | null;
}

export const SOURCE_KINDS: SourceKindDef[] = [
  {
    kind: 'csv',
    label: 'Spreadsheet (CSV / XLSX)',
    about: 'An agent registry kept as a spreadsheet: one row per identity, the first row holds the column names (name, kind, purpose, owner_email, ...).',
    fields: [
      {
        key: 'path',
        label: 'File path',
        hint: 'Absolute path of a .csv or .xlsx file on this machine; it is read again at every sync.',
        placeholder: '/home/me/agent-registry.csv',
        required: true,
      },
    ],
    secret: null,
  },
  {
    kind: 'scim',
    label: 'SCIM 2.0',
    about: 'Any SCIM 2.0 service provider: users, groups and service accounts.',
    fields: [
      { key: 'base_url', label: 'Base URL', hint: 'The SCIM endpoint, up to and including /v2.', placeholder: 'https://idp.example.com/scim/v2', required: true },
      { key: 'page_size', label: 'Page size', hint: 'Optional: resources per page, 1 to 1000 (default 100).', placeholder: '100', required: false, numeric: true },
    ],
    secret: { label: 'Bearer token', hint: 'Sent as "Authorization: Bearer …". Stored in the OS keyring.' },
  },
  {
    kind: 'entra',
    label: 'Microsoft Entra ID',
    about: 'Users, service principals, app registrations and their credentials, through Microsoft Graph (delta sync).',
    fields: [
      { key: 'tenant_id', label: 'Tenant ID', hint: 'Directory (tenant) ID, a GUID.', placeholder: '00000000-0000-0000-0000-000000000000', required: true },
      { key: 'client_id', label: 'Client ID', hint: 'Application (client) ID of the app registration Custodian signs in as.', placeholder: '00000000-0000-0000-0000-000000000000', required: true },
      { key: 'graph_base', label: 'Graph base URL', hint: 'Optional: for national clouds (default https://graph.microsoft.com).', placeholder: 'https://graph.microsoft.com', required: false },
      { key: 'login_base', label: 'Login base URL', hint: 'Optional: for national clouds (default https://login.microsoftonline.com).', placeholder: 'https://login.microsoftonline.com', required: false },
    ],
    secret: { label: 'Client secret', hint: 'A client secret of that app registration. Stored in the OS keyring.' },
  },
  {
    kind: 'okta',
    label: 'Okta',
    about: 'Users, groups and OAuth service apps of an Okta org.',
    fields: [{ key: 'org_url', label: 'Org URL', hint: 'Your Okta org, without a path.', placeholder: 'https://contoso.okta.com', required: true }],
    secret: { label: 'API token', hint: 'An Okta API token (read-only admin is enough). Stored in the OS keyring.' },
  },
  {
    kind: 'aws',
    label: 'AWS IAM',
    about: 'IAM users, roles and access keys of one AWS account.',
    fields: [
      { key: 'access_key_id', label: 'Access key ID', hint: 'Of an IAM user with read-only IAM access.', placeholder: 'AKIA…', required: true },
      { key: 'endpoint', label: 'Endpoint', hint: 'Optional: a custom IAM endpoint (default: AWS).', placeholder: 'https://iam.amazonaws.com', required: false },
    ],
    secret: { label: 'Secret access key', hint: 'The secret of that access key. Stored in the OS keyring.' },
  },
  {
    kind: 'ldap',
    label: 'LDAP / Active Directory',
    about: 'People, service accounts (SPNs, MSA/gMSA), group memberships and Kerberos delegation from an LDAP directory or Active Directory.',
    fields: [
      { key: 'url', label: 'Server URL', hint: 'ldap:// or ldaps:// URL of the directory.', placeholder: 'ldaps://ldap.example.com', required: true },
      { key: 'bind_dn', label: 'Bind DN', hint: 'The account Custodian binds as.', placeholder: 'cn=custodian,ou=services,dc=example,dc=com', required: true },
      { key: 'base_dn', label: 'Base DN', hint: 'Where to search.', placeholder: 'dc=example,dc=com', required: true },
      { key: 'starttls', label: 'StartTLS', hint: 'Optional: "true" to upgrade an ldap:// connection with StartTLS.', placeholder: 'false', required: false },
      { key: 'page_size', label: 'Page size', hint: 'Optional: entries per page, 1 to 1000 (default 500; AD caps pages at 1000).', placeholder: '500', required: false, numeric: true },
    ],
    secret: { label: 'Bind password', hint: 'Password of the bind DN. Stored in the OS keyring.' },
  },
  {
    kind: 'github',
    label: 'GitHub organisation',
    about: 'Members and outside collaborators, GitHub App installations and their permissions, fine-grained tokens approved for the org, deploy keys.',
    fields: [
      { key: 'org', label: 'Organisation', hint: 'The organisation login, as in github.com/<org>.', placeholder: 'acme', required: true },
      { key: 'api_base', label: 'API base URL', hint: 'Optional: GitHub Enterprise Server (https://HOST/api/v3); default https://api.github.com.', placeholder: 'https://api.github.com', required: false },
    ],
    secret: { label: 'Token', hint: 'A GitHub App installation token (needed to list fine-grained tokens) or an org owner\'s token. Stored in the OS keyring.' },
  },
];

/** The definition of a kind; a bare one for kinds this UI does not know (added in Rust later). */
export function kindDef(kind: string): SourceKindDef {
  return SOURCE_KINDS.find((k) => k.kind === kind) ?? { kind, label: kind, about: '', fields: [], secret: null };
}

export function kindLabel(kind: string): string {
  return SOURCE_KINDS.find((k) => k.kind === kind)?.label ?? kind;
}

export type SettingsResult = { ok: true; settings: { [key: string]: JsonValue } } | { ok: false; field: string; message: string };

/**
 * The settings object for `add_source` from the form's text values. Values
 * are trimmed; empty ones are left out (the backend names a missing required
 * setting); numeric fields must be positive whole numbers. Keys that are not
 * fields of the kind are ignored (left over from another kind).
 */
export function buildSettings(kind: string, values: Record<string, string>): SettingsResult {
  const settings: { [key: string]: JsonValue } = {};
  for (const f of kindDef(kind).fields) {
    const v = (values[f.key] ?? '').trim();
    if (v === '') continue;
    if (f.numeric) {
      if (!/^[0-9]+$/.test(v) || Number(v) < 1 || !Number.isSafeInteger(Number(v))) {
        return { ok: false, field: f.key, message: `${f.label} must be a whole number above 0` };
      }
      settings[f.key] = Number(v);
    } else {
      settings[f.key] = v;
    }
  }
  return { ok: true, settings };
}

/** The secret to send: null when the kind has none or the box is empty. */
export function secretFor(kind: string, secret: string): string | null {
  if (!kindDef(kind).secret) return null;
  return secret === '' ? null : secret;
}

/** A short text for a source's settings, e.g. its path or URL. */
export function settingsSummary(kind: string, settings: JsonValue): string {
  if (typeof settings !== 'object' || settings === null || Array.isArray(settings)) return '';
  const def = kindDef(kind);
  const keys = def.fields.length ? def.fields.filter((f) => f.required).map((f) => f.key) : Object.keys(settings);
  return keys
    .map((k) => settings[k])
    .filter((v): v is string | number => typeof v === 'string' || typeof v === 'number')
    .map(String)
    .join(' · ');
}

// ---------------------------------------------------------------------------
// Progress and polling

export const POLL_INTERVAL_MS = 250;

const PHASE_LABELS: Record<string, string> = {
  starting: 'Starting',
  connecting: 'Connecting',
  people: 'Reading people',
  identities: 'Reading identities',
  groups: 'Reading groups',
  applying: 'Applying changes',
  done: 'Finishing',
};

export function phaseLabel(phase: string): string {
  return PHASE_LABELS[phase] ?? phase.charAt(0).toUpperCase() + phase.slice(1).replace(/_/g, ' ');
}

/** Percentage done (0..100), or null when the source gave no total (indeterminate bar). */
export function progressPercent(p: SyncProgress | null): number | null {
  if (!p) return null;
  if (p.phase === 'done') return 100;
  if (p.total === null || p.total <= 0) return null;
  return Math.max(0, Math.min(100, Math.round((p.items / p.total) * 100)));
}

/** `1,200 / 5,000 items · 12 pages`, `340 items`, or `` before anything is read. */
export function progressCounts(p: SyncProgress | null): string {
  if (!p) return '';
  const parts: string[] = [];
  if (p.total !== null && p.total > 0 && p.phase !== 'applying' && p.phase !== 'done') {
    parts.push(`${formatCount(p.items)} / ${formatCount(p.total)} items`);
  } else if (p.items > 0) {
    parts.push(`${formatCount(p.items)} ${p.items === 1 ? 'item' : 'items'}`);
  }
  if (p.pages > 0) parts.push(`${formatCount(p.pages)} ${p.pages === 1 ? 'page' : 'pages'}`);
  return parts.join(' · ');
}

/** Consecutive `sync_progress` failures after which polling gives up (the sync itself goes on). */
export const MAX_POLL_FAILURES = 5;

export interface PollState {
  /** The sync call has resolved or rejected. */
  settled: boolean;
  /** The poller was stopped by its owner. */
  stopped: boolean;
  consecutiveFailures: number;
}

/**
 * Whether to poll `sync_progress` again. A `null` progress is no reason to
 * stop: right after `sync_source` is called the backend may not have
 * registered the run yet; the end of the run is the sync call settling.
 */
export function shouldPoll(s: PollState): boolean {
  return !s.settled && !s.stopped && s.consecutiveFailures < MAX_POLL_FAILURES;
}

export interface Poller {
  /** The sync call settled: stop after the request in flight, if any. */
  settle(): void;
  stop(): void;
}

/**
 * Polls `get` every `interval` ms (first call at once) and hands each answer
 * to `onProgress` until `settle()` or `stop()`; one request at a time, and
 * nothing is reported after either.
 */
export function pollProgress(
  get: () => Promise<SyncProgress | null>,
  onProgress: (p: SyncProgress | null) => void,
  interval = POLL_INTERVAL_MS,
  timers: { set: (f: () => void, ms: number) => unknown; clear: (h: unknown) => void } = {
    set: (f, ms) => setTimeout(f, ms),
    clear: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
  },
): Poller {
  const state: PollState = { settled: false, stopped: false, consecutiveFailures: 0 };
  let timer: unknown = null;
  const tick = () => {
    timer = null;
    if (!shouldPoll(state)) return;
    get().then(
      (p) => {
        state.consecutiveFailures = 0;
        if (!shouldPoll(state)) return;
        onProgress(p);
        timer = timers.set(tick, interval);
      },
      () => {
        state.consecutiveFailures++;
        if (shouldPoll(state)) timer = timers.set(tick, interval);
      },
    );
  };
  tick();
  const end = (key: 'settled' | 'stopped') => {
    state[key] = true;
    if (timer !== null) timers.clear(timer);
    timer = null;
  };
  return { settle: () => end('settled'), stop: () => end('stopped') };
}

// ---------------------------------------------------------------------------
// Runs

export const RUN_STATUSES = ['running', 'succeeded', 'failed', 'cancelled', 'interrupted'] as const;

export function runStatusTone(status: string): 'ok' | 'bad' | 'warn' | 'info' | 'muted' {
  switch (status) {
    case 'succeeded':
      return 'ok';
    case 'failed':
      return 'bad';
    case 'cancelled':
      return 'muted';
    case 'interrupted':
      return 'warn';
    case 'running':
      return 'info';
    default:
      return 'muted';
  }
}

export function runStatusLabel(status: string): string {
  return status ? status.charAt(0).toUpperCase() + status.slice(1) : '—';
}

/** `+3 ~1 −2` (joiners, movers, leavers). */
export function changesText(r: Pick<SyncRunView, 'joiners' | 'movers' | 'leavers'>): string {
  return `+${formatCount(r.joiners)} ~${formatCount(r.movers)} −${formatCount(r.leavers)}`;
}

/** `2024-03-05 14:02:11` in local time; `—` when none. */
export function formatDateTime(iso: string | null): string {
  if (!iso) return '—';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return '—';
  const d = new Date(t);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** `< 0.1 s`, `0.4 s`, `12 s`, `3 min 5 s`, `2 h 4 min`; empty when not finished or unparsable. */
export function duration(startIso: string, endIso: string | null): string {
  if (!endIso) return '';
  const a = Date.parse(startIso);
  const b = Date.parse(endIso);
  if (Number.isNaN(a) || Number.isNaN(b) || b < a) return '';
  const ms = b - a;
  if (ms < 100) return '< 0.1 s';
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/** Relative time with minutes for recent runs: `just now`, `5 min ago`, `3 h ago`, `4 d ago`. */
export function agoTime(iso: string | null, now: number): string {
  if (!iso) return 'never';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return '—';
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 45) return 'just now';
  if (s < 3600) return `${Math.max(1, Math.round(s / 60))} min ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86_400)} d ago`;
}

/** Source kinds that can carry out remediation tasks (the core's `writeback::SOURCE_KINDS`). */
export const WRITE_BACK_KINDS = ['scim', 'aws'];

/** Is write-back switched on in a source's settings? (`write_back: true`, like the core). */
export function writeBackOn(settings: JsonValue): boolean {
  if (settings === null || typeof settings !== 'object' || Array.isArray(settings)) return false;
  const v = settings.write_back;
  return v === true || (typeof v === 'string' && ['true', 'on', 'yes'].includes(v.trim().toLowerCase()));
}
