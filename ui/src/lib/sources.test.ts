import { describe, expect, it } from 'vitest';
import type { SyncProgress } from '../bindings';
import {
  buildSettings,
  changesText,
  duration,
  kindDef,
  MAX_POLL_FAILURES,
  pollProgress,
  progressCounts,
  progressPercent,
  secretFor,
  settingsSummary,
  shouldPoll,
  SOURCE_KINDS,
  writeBackOn,
} from './sources';

const prog = (p: Partial<SyncProgress>): SyncProgress => ({ source_id: 1, phase: 'identities', pages: 0, items: 0, total: null, ...p });

describe('source kinds', () => {
  it('declares the settings the backend requires per kind', () => {
    const required = (k: string) => kindDef(k).fields.filter((f) => f.required).map((f) => f.key);
    expect(required('csv')).toEqual(['path']);
    expect(required('scim')).toEqual(['base_url']);
    expect(required('entra')).toEqual(['tenant_id', 'client_id']);
    expect(required('okta')).toEqual(['org_url']);
    expect(required('aws')).toEqual(['access_key_id']);
    expect(required('ldap')).toEqual(['url', 'bind_dn', 'base_dn']);
  });

  it('asks for a secret for every kind but csv', () => {
    for (const k of SOURCE_KINDS) expect(k.secret === null).toBe(k.kind === 'csv');
    expect(secretFor('csv', 'ignored')).toBeNull();
    expect(secretFor('scim', '')).toBeNull();
    expect(secretFor('scim', ' tok ')).toBe(' tok ');
  });

  it('has unique keys, labels and hints for every field', () => {
    for (const k of SOURCE_KINDS) {
      const keys = k.fields.map((f) => f.key);
      expect(new Set(keys).size).toBe(keys.length);
      for (const f of k.fields) expect(f.label && f.hint).toBeTruthy();
    }
  });

  it('falls back to a bare definition for a kind it does not know', () => {
    expect(kindDef('sap')).toMatchObject({ kind: 'sap', label: 'sap', fields: [], secret: null });
  });
});

describe('buildSettings', () => {
  it('trims values and leaves out empty ones for the backend to name', () => {
    expect(buildSettings('csv', { path: '  /tmp/reg.csv ' })).toEqual({ ok: true, settings: { path: '/tmp/reg.csv' } });
    expect(buildSettings('entra', { tenant_id: 't', client_id: '', graph_base: '  ' })).toEqual({ ok: true, settings: { tenant_id: 't' } });
  });

  it('sends numeric fields as numbers and rejects what is not a positive whole number', () => {
    expect(buildSettings('scim', { base_url: 'https://x/scim/v2', page_size: '50' })).toEqual({
      ok: true,
      settings: { base_url: 'https://x/scim/v2', page_size: 50 },
    });
    for (const bad of ['0', '-3', '2.5', '1e3', 'ten']) {
      expect(buildSettings('scim', { base_url: 'https://x', page_size: bad })).toMatchObject({ ok: false, field: 'page_size' });
    }
  });

  it('ignores values left over from another kind', () => {
    expect(buildSettings('okta', { org_url: 'https://c.okta.com', path: '/tmp/x.csv' })).toEqual({ ok: true, settings: { org_url: 'https://c.okta.com' } });
  });
});

describe('settingsSummary', () => {
  it('shows the required settings of known kinds, and everything of unknown ones', () => {
    expect(settingsSummary('csv', { path: '/a.csv' })).toBe('/a.csv');
    expect(settingsSummary('entra', { tenant_id: 't', client_id: 'c', graph_base: 'g' })).toBe('t · c');
    expect(settingsSummary('github', { org: 'contoso' })).toBe('contoso');
    expect(settingsSummary('sap', { tenant: 'acme' })).toBe('acme');
    expect(settingsSummary('csv', {})).toBe('');
    expect(settingsSummary('csv', null)).toBe('');
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
