import { describe, expect, it } from 'vitest';
import type { SyncRunView } from '../bindings';
import { setBackend, onDataChanged, type Backend } from '../lib/ipc';
import { createMockBackend } from '../lib/mock';
import { InventoryStore } from './inventoryStore';
import { SourcesStore } from './sourcesStore';

const until = async (cond: () => boolean, ms = 3000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe('SourcesStore', () => {
  it('after a sync, refreshes the sources and the history and announces the change', async () => {
    const mock = createMockBackend({ size: 50, latencyMs: 0 });
    let finish: (r: SyncRunView) => void = () => {};
    const backend: Backend = {
      ...mock,
      syncSource: () => new Promise((res) => (finish = res)),
      syncProgress: (id) => Promise.resolve({ source_id: id, phase: 'identities', pages: 1, items: 2, total: 3 }),
    };
    setBackend(backend);
    let changed = 0;
    const off = onDataChanged(() => changed++);
    const store = new SourcesStore();
    store.load();
    await until(() => store.sources !== null && store.runs !== null);
    const id = store.sources![0].id;

    store.sync(id);
    expect(store.isSyncing(id)).toBe(true);
    await until(() => store.syncs.get(id)?.progress?.items === 2);
    const before = store.runs;
    finish({ id: 99, source_id: id, started_at: '', finished_at: '', status: 'succeeded', mode: 'full', items: 3, joiners: 3, movers: 0, leavers: 0, error_code: null, error_message: null });
    await until(() => !store.isSyncing(id) && store.runs !== before);
    expect(store.outcomes.get(id)).toMatchObject({ ok: true });
    expect(changed).toBe(1);
    off();
  });

  it('keeps a failed sync as an outcome and does not announce a change', async () => {
    const mock = createMockBackend({ size: 50, latencyMs: 0 });
    setBackend({ ...mock, syncSource: () => Promise.reject({ code: 'network', message: 'connection refused' }) });
    let changed = 0;
    const off = onDataChanged(() => changed++);
    const store = new SourcesStore();
    store.sync(1);
    await until(() => !store.isSyncing(1));
    expect(store.outcomes.get(1)).toMatchObject({ ok: false, error: { code: 'network', message: 'connection refused' } });
    expect(changed).toBe(0);
    off();
  });
});

describe('InventoryStore.invalidate', () => {
  it('drops cached rows and facets, and source filters', async () => {
    let total = 10;
    const store = new InventoryStore((_q, offset) => Promise.resolve({ total, offset, rows: [] }));
    store.setFilters({ sources: [2], search: 'x' });
    store.rows.ensure({ start: 0, end: 5 });
    await until(() => store.rows.total === 10);
    total = 3;
    const token = store.resetToken;
    store.invalidate();
    expect(store.rows.total).toBeNull();
    expect(store.filters.sources).toEqual([]);
    expect(store.filters.search).toBe('x');
    expect(store.resetToken).toBe(token + 1);
    store.rows.ensure({ start: 0, end: 5 });
    await until(() => store.rows.total === 3);
  });
});
