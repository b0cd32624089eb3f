// Sources: the settings each kind of source takes, building the settings JSON
// for `add_source`, and the pure bits of the sync UI (progress, polling, run
// summaries). The backend (src/ops.rs) stays the authority on validation:
// nothing here rejects what it would accept.

import type { JsonValue, SourceKindView, SourceSettingView, SyncProgress, SyncRunView } from '../bindings';
import { formatCount } from './format';

// The kinds of source and their settings are the core's catalogue
// (`source_kinds`, see ./catalogue.ts): the functions here take it, and keep
// no list of their own.

/** The definition of a kind in `kinds`; a bare one for a kind the catalogue does not list. */
export function kindDef(kinds: readonly SourceKindView[], kind: string): SourceKindView {
  return kinds.find((k) => k.kind === kind) ?? { kind, label: kind, about: '', needs_secret: false, secret: '', device_sign_in: null, settings: [], write_back: [] };
}

/** The kind's label, or the kind itself when the catalogue does not list it. */
export function kindLabel(kinds: readonly SourceKindView[], kind: string): string {
  return kinds.find((k) => k.kind === kind)?.label ?? kind;
}

/** `Bearer token` for the form's secret field (the catalogue says `bearer token`). */
export function secretLabel(def: SourceKindView): string {
  return def.secret ? def.secret.charAt(0).toUpperCase() + def.secret.slice(1) : 'Secret';
}

/**
 * The settings the form asks for first (required, and the one that turns on
 * a keyless sign-in, such as a GitHub App ID: offered before the secret),
 * then the other optional ones.
 */
export function formSettings(def: SourceKindView): { required: SourceSettingView[]; optional: SourceSettingView[] } {
  const first = (s: SourceSettingView) => s.required || s.sign_in;
  return { required: def.settings.filter(first), optional: def.settings.filter((s) => !first(s)) };
}

/** The hint under a field: its help, and its default when it has one. */
export function settingHint(s: SourceSettingView): string {
  const help = s.help ? s.help.charAt(0).toUpperCase() + s.help.slice(1) : '';
  return s.default !== null && s.default !== '' ? `${help} (default ${s.default}).` : help ? `${help}.` : '';
}

export type SettingsResult = { ok: true; settings: { [key: string]: JsonValue } } | { ok: false; field: string; message: string };

/**
 * The settings object for `add_source` from the form's text values, typed
 * as the catalogue declares. Values are trimmed; empty ones are left out (the
 * backend names a missing required setting); integers must be whole numbers,
 * booleans `true` or `false` (the form's choice), lists are split on commas.
 * Keys that are not settings of the kind are ignored (left over from another kind).
 */
export function buildSettings(def: SourceKindView, values: Record<string, string>): SettingsResult {
  const settings: { [key: string]: JsonValue } = {};
  for (const f of def.settings) {
    const v = (values[f.key] ?? '').trim();
    if (v === '') continue;
    switch (f.type) {
      case 'integer':
        if (!/^-?[0-9]+$/.test(v) || !Number.isSafeInteger(Number(v))) {
          return { ok: false, field: f.key, message: `${f.label} must be a whole number` };
        }
        settings[f.key] = Number(v);
        break;
      case 'bool':
        if (v !== 'true' && v !== 'false') return { ok: false, field: f.key, message: `${f.label} must be true or false` };
        settings[f.key] = v === 'true';
        break;
      case 'list':
        settings[f.key] = v.split(',').map((p) => p.trim()).filter((p) => p !== '');
        break;
      default:
        settings[f.key] = v;
    }
  }
  return { ok: true, settings };
}

/** The secret to send: null when the kind has none or the box is empty. */
export function secretFor(def: SourceKindView, secret: string): string | null {
  if (!def.needs_secret) return null;
  return secret === '' ? null : secret;
}

/** A short text for a source's settings, e.g. its path or URL (a kind's required settings; everything for a kind the catalogue does not list). */
export function settingsSummary(def: SourceKindView, settings: JsonValue): string {
  if (typeof settings !== 'object' || settings === null || Array.isArray(settings)) return '';
  const keys = def.settings.length ? def.settings.filter((f) => f.required).map((f) => f.key) : Object.keys(settings);
  return keys
    .map((k) => settings[k])
    .filter((v): v is string | number => typeof v === 'string' || typeof v === 'number')
    .map(String)
    .join(' · ');
}

/**
 * Does this source read as an administrator who signs in with a device code
 * (the kind's `device_sign_in` setting, Entra's `delegated`, is on)? Its
 * secret is then the refresh token the sign-in keeps, not one to paste.
 */
export function signsInWithDeviceCode(def: SourceKindView, settings: JsonValue): boolean {
  const key = def.device_sign_in;
  if (!key || typeof settings !== 'object' || settings === null || Array.isArray(settings)) return false;
  return settings[key] === true;
}

/** Can sources of this kind carry out remediation tasks (the catalogue's `write_back`)? */
export function canWriteBack(def: SourceKindView): boolean {
  return def.write_back.length > 0;
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
    case 'succeeded_with_warnings':
      return 'warn';
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
  if (!status) return '—';
  const words = status.replace(/_/g, ' ');
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** The run's warnings (skipped or doubtful objects, each named with why); none for older runs. */
export function runWarnings(r: Pick<SyncRunView, 'warnings'>): string[] {
  return r.warnings ?? [];
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

/** Is write-back switched on in a source's settings? (`write_back: true`, like the core). */
export function writeBackOn(settings: JsonValue): boolean {
  if (settings === null || typeof settings !== 'object' || Array.isArray(settings)) return false;
  const v = settings.write_back;
  return v === true || (typeof v === 'string' && ['true', 'on', 'yes'].includes(v.trim().toLowerCase()));
}
