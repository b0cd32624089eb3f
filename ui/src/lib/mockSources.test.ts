import { describe, expect, it } from 'vitest';
import type { SyncProgress } from '../bindings';
import { MockSources } from './mockSources';

describe('MockSources', () => {
  it('starts with sources and a history, newest first, with events per run', () => {
    const m = new MockSources({ now: Date.parse('2025-06-01T12:00:00Z') });
    const sources = m.list();
    expect(sources.length).toBeGreaterThan(0);
    expect(sources.find((s) => s.kind === 'csv')?.last_run?.status).toBe('succeeded');
    const runs = m.listRuns(null, 50);
    expect(runs.map((r) => r.id)).toEqual([...runs.map((r) => r.id)].sort((a, b) => b - a));
    expect(runs.some((r) => r.status === 'failed' && r.error_code)).toBe(true);
    const run = runs.find((r) => r.joiners + r.movers + r.leavers > 0)!;
    expect(m.runEvents(run.id)).toHaveLength(run.joiners + run.movers + run.leavers);
    expect(() => m.runEvents(9999)).toThrow();
  });

  it('switches write-back only for sources that can carry out tasks', () => {
    const m = new MockSources();
    const scim = m.add({ kind: 'scim', name: 'HR', settings: { base_url: 'https://hr.example/scim/v2' }, secret: 't' });
    expect(m.setWriteBack(scim.id, true).settings).toMatchObject({ write_back: true, base_url: 'https://hr.example/scim/v2' });
    expect(m.setWriteBack(scim.id, false).settings).toMatchObject({ write_back: false });
    const csv = m.add({ kind: 'csv', name: 'Reg', settings: { path: '/tmp/r.csv' }, secret: null });
    expect(() => m.setWriteBack(csv.id, true)).toThrowError();
    expect(m.setWriteBack(csv.id, false).settings).toMatchObject({ write_back: false });
  });

  it('validates new sources like add_source', () => {
    const m = new MockSources();
    expect(() => m.add({ kind: 'csv', name: 'R', settings: {}, secret: null })).toThrowError();
    try {
      m.add({ kind: 'csv', name: 'R', settings: {}, secret: null });
    } catch (e) {
      expect(e).toEqual({ code: 'invalid_input', message: "a csv source needs the setting 'path'" });
    }
    expect(() => m.add({ kind: 'scim', name: 'S', settings: { base_url: 'ftp-ish' }, secret: 't' })).toThrow();
    expect(() => m.add({ kind: 'nope', name: 'S', settings: {}, secret: null })).toThrow();
    const v = m.add({ kind: 'csv', name: 'Registry', settings: { path: '/tmp/r.csv' }, secret: null });
    expect(v).toMatchObject({ kind: 'csv', name: 'Registry', last_run: null });
    expect(() => m.add({ kind: 'csv', name: 'Registry', settings: { path: '/tmp/r.csv' }, secret: null })).toThrow();
  });

  it('syncs with progress, records the run and its joiners', async () => {
    const m = new MockSources({ stepMs: 1 });
    const v = m.add({ kind: 'csv', name: 'Registry', settings: { path: '/tmp/r.csv' }, secret: null });
    const seen: SyncProgress[] = [];
    const done = m.sync(v.id);
    const timer = setInterval(() => {
      const p = m.progress(v.id);
      if (p) seen.push(p);
    }, 0);
    const run = await done;
    clearInterval(timer);
    expect(run.status).toBe('succeeded');
    expect(run.joiners).toBe(run.items);
    expect(m.progress(v.id)).toBeNull();
    expect(seen.length).toBeGreaterThan(0);
    expect(m.listRuns(v.id, 10)[0]).toMatchObject({ id: run.id, status: 'succeeded' });
    expect(m.runEvents(run.id).every((e) => e.kind === 'joiner')).toBe(true);
  });

  it('cancels, and fails without a secret; both runs are recorded', async () => {
    const m = new MockSources({ stepMs: 2 });
    const v = m.add({ kind: 'csv', name: 'Registry', settings: { path: '/tmp/r.csv' }, secret: null });
    const p = m.sync(v.id);
    await expect(m.sync(v.id)).rejects.toMatchObject({ code: 'invalid_input' });
    expect(m.cancel(v.id)).toBe(true);
    await expect(p).rejects.toMatchObject({ code: 'cancelled' });
    expect(m.listRuns(v.id, 1)[0].status).toBe('cancelled');
    expect(m.cancel(v.id)).toBe(false);

    const s = m.add({ kind: 'okta', name: 'Okta', settings: { org_url: 'https://c.okta.com' }, secret: null });
    await expect(m.sync(s.id)).rejects.toMatchObject({ code: 'secret_missing' });
    expect(m.listRuns(s.id, 1)[0]).toMatchObject({ status: 'failed', error_code: 'secret_missing' });
    m.setSecret(s.id, 'token');
    await expect(m.test(s.id)).resolves.toMatch(/^connected: /);
  });

  it('signs an administrator in only where the device sign-in is on, and keeps the token as the secret', async () => {
    const m = new MockSources({ stepMs: 1 });
    const settings = { tenant_id: 't', client_id: 'c' };
    const secretOnly = m.add({ kind: 'entra', name: 'With secret', settings, secret: 's' });
    expect(() => m.beginSignIn(secretOnly.id)).toThrow();
    const admin = m.add({ kind: 'entra', name: 'Admin', settings: { ...settings, delegated: true }, secret: null });
    await expect(m.test(admin.id)).rejects.toMatchObject({ code: 'secret_missing' });
    await expect(m.finishSignIn(admin.id)).rejects.toMatchObject({ code: 'invalid_input' });
    expect(m.beginSignIn(admin.id).verification_uri).toBe('https://microsoft.com/devicelogin');
    const cancelled = m.finishSignIn(admin.id);
    expect(m.cancelSignIn(admin.id)).toBe(true);
    await expect(cancelled).rejects.toMatchObject({ code: 'cancelled' });
    expect(m.cancelSignIn(admin.id)).toBe(false);
    m.beginSignIn(admin.id);
    await expect(m.finishSignIn(admin.id)).resolves.toBe('admin@contoso.example');
    await expect(m.test(admin.id)).resolves.toContain('connected');
  });
});
