import { describe, expect, it } from 'vitest';
import type { JsonValue, SourceKindView, SourceSettingView, SyncProgress } from '../bindings';
import {
  buildSettings,
  canWriteBack,
  changesText,
  duration,
  formSettings,
  kindDef,
  kindLabel,
  MAX_POLL_FAILURES,
  pollProgress,
  progressCounts,
  progressPercent,
  secretFor,
  secretLabel,
  settingHint,
  settingsSummary,
  shouldPoll,
  writeBackOn,
  signsInWithDeviceCode,
  runStatusLabel,
  runStatusTone,
  runWarnings,
} from './sources';

const prog = (p: Partial<SyncProgress>): SyncProgress => ({ source_id: 1, phase: 'identities', pages: 0, items: 0, total: null, ...p });

/** A catalogue as `source_kinds` answers, made up so nothing here can lean on a list of its own. */
const setting = (key: string, type: SourceSettingView['type'], required: boolean, extra: Partial<SourceSettingView> = {}): SourceSettingView => ({
  key, label: key.toUpperCase(), type, required, default: null, help: `the ${key}`, secret: false, sign_in: false, ...extra,
});
const KINDS: SourceKindView[] = [
  { kind: 'sheet', label: 'Sheet', about: 'rows', needs_secret: false, secret: '', device_sign_in: null, settings: [setting('path', 'string', true)], write_back: [] },
  {
    kind: 'dir', label: 'Directory', about: 'people', needs_secret: true, secret: 'bind password', device_sign_in: 'tls',
    settings: [setting('host', 'url', true), setting('tenant', 'string', true), setting('page_size', 'integer', false, { default: '100' }), setting('tls', 'bool', false), setting('groups', 'list', false)],
    write_back: ['disable_identity'],
  },
];
const dir = kindDef(KINDS, 'dir');
const sheet = kindDef(KINDS, 'sheet');

describe('source kinds', () => {
  it('finds a kind in the catalogue, and falls back to a bare definition for one it does not list', () => {
    expect(dir.label).toBe('Directory');
    expect(kindLabel(KINDS, 'sheet')).toBe('Sheet');
    expect(kindLabel(KINDS, 'sap')).toBe('sap');
    expect(kindDef(KINDS, 'sap')).toMatchObject({ kind: 'sap', label: 'sap', settings: [], needs_secret: false, write_back: [] });
    expect(kindDef([], 'dir').settings).toEqual([]);
  });

  it("offers the device sign-in only where the kind has one and its setting is true", () => {
    expect(signsInWithDeviceCode(dir, { host: 'h', tls: true })).toBe(true);
    const others: JsonValue[] = [{ tls: false }, { tls: 'true' }, {}, null, [true], 'tls'];
    for (const settings of others) {
      expect(signsInWithDeviceCode(dir, settings)).toBe(false);
    }
    expect(signsInWithDeviceCode(sheet, { tls: true })).toBe(false);
    expect(signsInWithDeviceCode(kindDef(KINDS, 'sap'), { tls: true })).toBe(false);
  });

  it('asks for a secret only when the kind needs one, and labels it', () => {
    expect(secretFor(sheet, 'ignored')).toBeNull();
    expect(secretFor(dir, '')).toBeNull();
    expect(secretFor(dir, ' tok ')).toBe(' tok ');
    expect(secretLabel(dir)).toBe('Bind password');
  });

  it('splits required from optional settings and hints at defaults', () => {
    const f = formSettings(dir);
    expect(f.required.map((s) => s.key)).toEqual(['host', 'tenant']);
    expect(f.optional.map((s) => s.key)).toEqual(['page_size', 'tls', 'groups']);
    expect(settingHint(f.optional[0])).toBe('The page_size (default 100).');
    expect(settingHint(f.required[0])).toBe('The host.');
  });

  it('offers the setting that turns on a keyless sign-in with the required ones, in catalogue order', () => {
    const app = kindDef(
      [{ ...dir, settings: [setting('org', 'string', true), setting('app', 'string', false, { sign_in: true }), setting('page_size', 'integer', false)] }],
      'dir',
    );
    const f = formSettings(app);
    expect(f.required.map((s) => s.key)).toEqual(['org', 'app']);
    expect(f.optional.map((s) => s.key)).toEqual(['page_size']);
  });

  it('offers write-back only where the catalogue says so', () => {
    expect(canWriteBack(dir)).toBe(true);
    expect(canWriteBack(sheet)).toBe(false);
  });
});

describe('buildSettings', () => {
  it('trims values and leaves out empty ones for the backend to name', () => {
    expect(buildSettings(sheet, { path: '  /tmp/reg.csv ' })).toEqual({ ok: true, settings: { path: '/tmp/reg.csv' } });
    expect(buildSettings(dir, { host: 't', tenant: '', groups: '  ' })).toEqual({ ok: true, settings: { host: 't' } });
  });

  it('types values as the catalogue declares them', () => {
    expect(buildSettings(dir, { host: 'https://x', page_size: '50', tls: 'true', groups: 'a, b,,c' })).toEqual({
      ok: true,
      settings: { host: 'https://x', page_size: 50, tls: true, groups: ['a', 'b', 'c'] },
    });
    expect(buildSettings(dir, { tls: 'false', page_size: '-3' })).toEqual({ ok: true, settings: { tls: false, page_size: -3 } });
    for (const bad of ['2.5', '1e3', 'ten']) {
      expect(buildSettings(dir, { host: 'https://x', page_size: bad })).toMatchObject({ ok: false, field: 'page_size' });
    }
    expect(buildSettings(dir, { tls: 'maybe' })).toMatchObject({ ok: false, field: 'tls' });
  });

  it('ignores values left over from another kind', () => {
    expect(buildSettings(sheet, { path: '/tmp/x.csv', host: 'https://c' })).toEqual({ ok: true, settings: { path: '/tmp/x.csv' } });
  });
});

describe('settingsSummary', () => {
  it('shows the required settings of known kinds, and everything of unknown ones', () => {
    expect(settingsSummary(sheet, { path: '/a.csv' })).toBe('/a.csv');
    expect(settingsSummary(dir, { host: 't', tenant: 'c', groups: 'g' })).toBe('t · c');
    expect(settingsSummary(kindDef(KINDS, 'sap'), { tenant: 'acme' })).toBe('acme');
    expect(settingsSummary(sheet, {})).toBe('');
    expect(settingsSummary(sheet, null)).toBe('');
  });
});

describe('progress', () => {
  it('is a percentage only when the source gave a total', () => {
    expect(progressPercent(null)).toBeNull();
    expect(progressPercent(prog({ items: 50 }))).toBeNull();
    expect(progressPercent(prog({ items: 50, total: 0 }))).toBeNull();
    expect(progressPercent(prog({ items: 50, total: 200 }))).toBe(25);
    expect(progressPercent(prog({ items: 1, total: 3 }))).toBe(33);
    expect(progressPercent(prog({ items: 250, total: 200 }))).toBe(100);
    expect(progressPercent(prog({ phase: 'done', items: 3 }))).toBe(100);
  });

  it('describes items and pages', () => {
    expect(progressCounts(null)).toBe('');
    expect(progressCounts(prog({}))).toBe('');
    expect(progressCounts(prog({ items: 1200, total: 5000, pages: 12 }))).toBe('1,200 / 5,000 items · 12 pages');
    expect(progressCounts(prog({ items: 1, pages: 1 }))).toBe('1 item · 1 page');
    expect(progressCounts(prog({ phase: 'applying', items: 30, total: null }))).toBe('30 items');
  });
});

describe('polling', () => {
  it('stops when the sync settles, when stopped, or after repeated failures', () => {
    expect(shouldPoll({ settled: false, stopped: false, consecutiveFailures: 0 })).toBe(true);
    expect(shouldPoll({ settled: true, stopped: false, consecutiveFailures: 0 })).toBe(false);
    expect(shouldPoll({ settled: false, stopped: true, consecutiveFailures: 0 })).toBe(false);
    expect(shouldPoll({ settled: false, stopped: false, consecutiveFailures: MAX_POLL_FAILURES - 1 })).toBe(true);
    expect(shouldPoll({ settled: false, stopped: false, consecutiveFailures: MAX_POLL_FAILURES })).toBe(false);
  });

  /** Manual timers: `fire()` runs the pending one. */
  function manualTimers() {
    let pending: (() => void) | null = null;
    return {
      timers: { set: (f: () => void) => ((pending = f), 1), clear: () => (pending = null) },
      pending: () => pending !== null,
      fire: () => {
        const f = pending;
        pending = null;
        f?.();
      },
    };
  }
  const flush = () => new Promise((r) => setTimeout(r, 0));

  it('polls one request at a time, keeps going through null, and reports nothing after settle', async () => {
    const answers: (SyncProgress | null)[] = [null, prog({ items: 5 }), prog({ items: 9 })];
    let calls = 0;
    const seen: (SyncProgress | null)[] = [];
    const t = manualTimers();
    const poller = pollProgress(() => Promise.resolve(answers[calls++] ?? null), (p) => seen.push(p), 250, t.timers);
    expect(calls).toBe(1); // first request at once
    await flush();
    expect(seen).toEqual([null]);
    expect(t.pending()).toBe(true);
    t.fire();
    await flush();
    expect(seen.map((p) => p?.items)).toEqual([undefined, 5]);
    t.fire();
    expect(calls).toBe(3);
    poller.settle(); // the sync ended while the third request was in flight
    await flush();
    expect(seen).toHaveLength(2);
    expect(t.pending()).toBe(false);
  });

  it('gives up after repeated failures', async () => {
    let calls = 0;
    const t = manualTimers();
    pollProgress(() => (calls++, Promise.reject(new Error('ipc'))), () => undefined, 250, t.timers);
    for (let i = 0; i < 10; i++) {
      await flush();
      t.fire();
    }
    expect(calls).toBe(MAX_POLL_FAILURES);
    expect(t.pending()).toBe(false);
  });

  it('stop() cancels the pending timer', async () => {
    let calls = 0;
    const t = manualTimers();
    const poller = pollProgress(() => (calls++, Promise.resolve(null)), () => undefined, 250, t.timers);
    await flush();
    expect(t.pending()).toBe(true);
    poller.stop();
    expect(t.pending()).toBe(false);
    expect(calls).toBe(1);
  });
});

describe('runs', () => {
  it('summarises joiners, movers and leavers', () => {
    expect(changesText({ joiners: 3, movers: 0, leavers: 1200 })).toBe('+3 ~0 −1,200');
  });

  it('formats durations', () => {
    expect(duration('2024-01-01T00:00:00Z', null)).toBe('');
    expect(duration('2024-01-01T00:00:00Z', '2024-01-01T00:00:00.040Z')).toBe('< 0.1 s');
    expect(duration('2024-01-01T00:00:00Z', '2024-01-01T00:00:00.400Z')).toBe('0.4 s');
    expect(duration('2024-01-01T00:00:00Z', '2024-01-01T00:00:42Z')).toBe('42 s');
    expect(duration('2024-01-01T00:00:00Z', '2024-01-01T00:03:05Z')).toBe('3 min 5 s');
    expect(duration('2024-01-01T00:00:00Z', '2024-01-01T02:04:00Z')).toBe('2 h 4 min');
    expect(duration('2024-01-01T00:00:10Z', '2024-01-01T00:00:00Z')).toBe('');
  });
});

describe('writeBackOn', () => {
  it('reads the opt-in like the core', () => {
    expect(writeBackOn({})).toBe(false);
    expect(writeBackOn(null)).toBe(false);
    expect(writeBackOn({ write_back: 'false' })).toBe(false);
    expect(writeBackOn({ write_back: 1 })).toBe(false);
    expect(writeBackOn({ write_back: true })).toBe(true);
    expect(writeBackOn({ write_back: ' TRUE ' })).toBe(true);
  });
});

import { isGenerated } from '../views/Sources';

describe('demo sources', () => {
  it('only sources without settings count as generated', () => {
    expect(isGenerated({})).toBe(true);
    expect(isGenerated(null)).toBe(true);
    expect(isGenerated({ path: '/tmp/registry.csv' })).toBe(false);
    expect(isGenerated([])).toBe(false);
  });
});

describe('run status', () => {
  it('reads succeeded_with_warnings as words, in the warning tone', () => {
    expect(runStatusLabel('succeeded_with_warnings')).toBe('Succeeded with warnings');
    expect(runStatusTone('succeeded_with_warnings')).toBe('warn');
    expect(runStatusLabel('failed')).toBe('Failed');
    expect(runWarnings({ warnings: undefined })).toEqual([]);
  });
});
