// Formatting helpers and display labels. Pure functions; `now` is passed in so
// they are testable.

import type {
  AgentClass,
  CredentialKind,
  DelegationKind,
  IdentityKind,
  IdentityStatus,
  OwnerState,
  PersonStatus,
  Privilege,
  Sensitivity,
  Severity,
} from '../bindings';

const DAY_MS = 86_400_000;

const intFmt = new Intl.NumberFormat('en-US');

/** `1234` -> `1,234`. */
export function formatCount(n: number): string {
  return intFmt.format(n);
}

/** `1` -> `1 day`, `3` -> `3 days`. */
export function plural(n: number, one: string, many = one + 's'): string {
  return `${formatCount(n)} ${Math.abs(n) === 1 ? one : many}`;
}

/** Whole days from `iso` until `now` (negative when `iso` is in the future); null for no/invalid date. */
export function daysSince(iso: string | null, now: number): number | null {
  if (!iso) return null;
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return null;
  return Math.floor((now - t) / DAY_MS);
}

/**
 * Relative time for a past timestamp: `today`, `yesterday`, `12 days ago`,
 * `3 months ago`, `2 years ago`; `never` when there is none.
 */
export function ago(iso: string | null, now: number, none = 'never'): string {
  const d = daysSince(iso, now);
  if (d === null) return none;
  if (d <= 0) return 'today';
  if (d === 1) return 'yesterday';
  if (d < 60) return `${d} days ago`;
  if (d < 730) return `${Math.floor(d / 30.4375)} months ago`;
  return `${Math.floor(d / 365.25)} years ago`;
}

/** Compact relative time for dense tables: `today`, `3d`, `5mo`, `2y`; `—` when none. */
export function agoShort(iso: string | null, now: number): string {
  const d = daysSince(iso, now);
  if (d === null) return '—';
  if (d <= 0) return 'today';
  if (d < 60) return `${d}d`;
  if (d < 730) return `${Math.floor(d / 30.4375)}mo`;
  return `${Math.floor(d / 365.25)}y`;
}

/** A number of days for a table cell: `412 d`, `—` when none. */
export function formatDays(days: number | null): string {
  return days === null ? '—' : `${formatCount(days)} d`;
}

/** `2024-03-05` (UTC); `—` when none. */
export function formatDate(iso: string | null): string {
  if (!iso) return '—';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return '—';
  return new Date(t).toISOString().slice(0, 10);
}

export type Tone = 'ok' | 'warn' | 'bad' | 'muted';

/**
 * Expiry of a credential from `expires_in_days` (negative once expired, null
 * when it never expires).
 */
export function expiryText(expiresInDays: number | null): { text: string; tone: Tone } {
  if (expiresInDays === null) return { text: 'never', tone: 'warn' };
  if (expiresInDays < 0) {
    const n = -expiresInDays;
    return { text: `expired ${plural(n, 'day')} ago`, tone: 'bad' };
  }
  if (expiresInDays === 0) return { text: 'expires today', tone: 'bad' };
  return { text: `in ${plural(expiresInDays, 'day')}`, tone: expiresInDays <= 30 ? 'warn' : 'ok' };
}

/** Age of a credential: warn after 180 days, bad after a year. */
export function ageTone(days: number | null): Tone {
  if (days === null) return 'muted';
  if (days > 365) return 'bad';
  if (days > 180) return 'warn';
  return 'ok';
}

/** `NHI7` + `Long-Lived Secrets` -> `NHI7 Long-Lived Secrets`. */
export function owaspLabel(code: string, title: string): string {
  return title ? `${code} ${title}` : code;
}

export const KIND_LABELS: Record<IdentityKind, string> = {
  ai_agent: 'AI agent',
  service_account: 'Service account',
  oauth_app: 'OAuth app',
  api_key: 'API key',
  workload: 'Workload',
  bot: 'Bot',
};

export const CLASS_LABELS: Record<AgentClass, string> = {
  personal: 'Personal',
  consumer_assistant: 'Consumer assistant',
  workforce_assistant: 'Workforce assistant',
  digital_worker: 'Digital worker',
};

export const STATUS_LABELS: Record<IdentityStatus, string> = {
  active: 'Active',
  disabled: 'Disabled',
  deleted: 'Deleted',
};

export const PERSON_STATUS_LABELS: Record<PersonStatus, string> = {
  active: 'Active',
  suspended: 'Suspended',
  departed: 'Departed',
};

export const OWNER_STATE_LABELS: Record<OwnerState, string> = {
  owned: 'Active owner',
  departed: 'Owner departed or suspended',
  none: 'No owner',
};

export const CREDENTIAL_KIND_LABELS: Record<CredentialKind, string> = {
  client_secret: 'Client secret',
  certificate: 'Certificate',
  access_key: 'Access key',
  api_token: 'API token',
  password: 'Password',
  ssh_key: 'SSH key',
  personal_access_token: 'Personal access token',
  federated_credential: 'Federated credential',
};

export const DELEGATION_KIND_LABELS: Record<DelegationKind, string> = {
  assume_role: 'Assume role',
  invoke: 'Invoke',
  on_behalf_of: 'On behalf of',
  impersonate: 'Impersonate',
  add_credential: 'Can add a credential to',
};

export const SEVERITY_LABELS: Record<Severity, string> = {
  low: 'Low',
  medium: 'Medium',
  high: 'High',
  critical: 'Critical',
};

export const SENSITIVITY_LABELS: Record<Sensitivity, string> = SEVERITY_LABELS;

export const PRIVILEGE_LABELS: Record<Privilege, string> = {
  read: 'Read',
  write: 'Write',
  admin: 'Admin',
};

/** A label for a value from a lookup table, falling back to the raw value (for values newer than the UI). */
export function labelOf<K extends string>(table: Record<K, string>, value: string | null | undefined): string {
  if (value === null || value === undefined) return '—';
  return (table as Record<string, string>)[value] ?? value.replace(/_/g, ' ');
}

/** `Entra ID (contoso.example)` -> `Entra ID`, for narrow columns (show the full name as a tooltip). */
export function shortSource(source: string): string {
  const i = source.indexOf(' (');
  return i > 0 ? source.slice(0, i) : source;
}
