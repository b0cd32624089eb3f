import { describe, expect, it } from 'vitest';
import type { InventoryQuery } from '../bindings';
import { emptyFilters, hasActiveFilters, InventoryStore, nextSort, toQuery } from './inventoryStore';

describe('toQuery', () => {
  it('normalises filters so equal selections give equal queries', () => {
    const a = toQuery({ ...emptyFilters(), kinds: ['bot', 'ai_agent'], sources: [3, 1], search: '  billing ' }, 'name', false);
    const b = toQuery({ ...emptyFilters(), kinds: ['ai_agent', 'bot'], sources: [1, 3], search: 'billing' }, 'name', false);
    expect(a).toEqual(b);
    expect(a.kinds).toEqual(['ai_agent', 'bot']);
    expect(a.search).toBe('billing');
    expect(a.owner).toBeNull();
  });

  it('knows when filters are active', () => {
    expect(hasActiveFilters(emptyFilters())).toBe(false);
    expect(hasActiveFilters({ ...emptyFilters(), search: '   ' })).toBe(false);
    expect(hasActiveFilters({ ...emptyFilters(), has_findings: false })).toBe(true);
    expect(hasActiveFilters({ ...emptyFilters(), owner_state: 'none' })).toBe(true);
  });
});

describe('nextSort', () => {
  it('toggles the direction of the current column', () => {
    expect(nextSort('name', false, 'name')).toEqual({ sort: 'name', descending: true });
    expect(nextSort('name', true, 'name')).toEqual({ sort: 'name', descending: false });
  });
  it('starts text columns ascending and risk-like columns descending', () => {
    expect(nextSort('risk', true, 'owner')).toEqual({ sort: 'owner', descending: false });
    expect(nextSort('name', false, 'risk')).toEqual({ sort: 'risk', descending: true });
    expect(nextSort('name', false, 'oldest_credential')).toEqual({ sort: 'oldest_credential', descending: true });
  });
});

describe('InventoryStore', () => {
  const fake = () => {
    const seen: InventoryQuery[] = [];
    const fetch = (q: InventoryQuery, offset: number, limit: number) => {
      seen.push({ ...q, offset, limit });
      return Promise.resolve({ total: 5000, offset, rows: [] });
    };
    return { seen, store: new InventoryStore(fetch) };
  };

  it('resets scroll and highlight when the query changes, not otherwise', () => {
    const { store } = fake();
    store.scrollTop = 900;
    store.highlighted = 30;
    store.setFilters({ kinds: [] }); // same query
    expect([store.scrollTop, store.highlighted, store.resetToken]).toEqual([900, 30, 0]);
    store.setFilters({ kinds: ['bot'] });
    expect([store.scrollTop, store.highlighted, store.resetToken]).toEqual([0, null, 1]);
    store.scrollTop = 300;
    store.sortBy('risk');
    expect(store.scrollTop).toBe(0);
    expect(store.query()).toMatchObject({ sort: 'risk', descending: true, kinds: ['bot'] });
  });

  it('fetches pages with the current query, offset and the page size', async () => {
    const { store, seen } = fake();
    store.setFilters({ search: 'refund', has_findings: true });
    store.rows.ensure({ start: 0, end: 10 });
    await Promise.resolve();
    expect(seen[0]).toMatchObject({ search: 'refund', has_findings: true, offset: 0, limit: 200 });
  });

  it('clears every filter and the search text', () => {
    const { store } = fake();
    store.searchText = 'x';
    store.setFilters({ search: 'x', statuses: ['active'] });
    store.clearFilters();
    expect(store.searchText).toBe('');
    expect(store.filters).toEqual(emptyFilters());
  });
});
