import { describe, expect, it } from 'vitest';
import type { InventoryQuery } from '../bindings';
import { createMockBackend, MockOrg } from './mock';

const NOW = Date.parse('2025-06-15T00:00:00Z') / 1000;
const q = (over: Partial<InventoryQuery> = {}): InventoryQuery => ({
  search: '', kinds: [], statuses: [], classes: [], sources: [], owner: null, owner_state: null,
  has_findings: null, sort: 'name', descending: false, offset: 0, limit: 200, ...over,
});

describe('mock backend', () => {
  const org = new MockOrg({ size: 2000, now: NOW });

  it('is deterministic', () => {
    const other = new MockOrg({ size: 2000, now: NOW });
    expect(other.detail(42)).toEqual(org.detail(42));
    expect(other.inventory(q({ offset: 100 })).rows).toEqual(org.inventory(q({ offset: 100 })).rows);
  });

  it('pages with a full total', () => {
    const page = org.inventory(q({ offset: 1990, limit: 50 }));
    expect(page.total).toBe(2000);
    expect(page.rows.length).toBe(10);
    expect(org.inventory(q({ limit: 5000 })).rows.length).toBe(1000);
  });

  it('filters and searches by word prefix', () => {
    const agents = org.inventory(q({ kinds: ['ai_agent'], limit: 1000 }));
    expect(agents.total).toBeGreaterThan(0);
    expect(agents.rows.every((r) => r.kind === 'ai_agent')).toBe(true);
    const facets = org.facets();
    expect(facets.kinds.find((f) => f.value === 'ai_agent')?.count).toBe(agents.total);
    const found = org.inventory(q({ search: 'invoice tri' }));
    expect(found.total).toBeGreaterThan(0);
    expect(found.rows.every((r) => r.name.includes('invoice-triage'))).toBe(true);
    const departed = org.inventory(q({ owner_state: 'departed', limit: 1000 }));
    expect(departed.rows.every((r) => r.owner_status !== 'active' && r.owner_status !== null)).toBe(true);
  });

  it('sorts with nulls last and risk descending', () => {
    const risk = org.inventory(q({ sort: 'risk', descending: true, limit: 1000 })).rows;
    expect(risk[0].max_severity).toBe('critical');
    const owners = org.inventory(q({ sort: 'owner', descending: true, limit: 1000, offset: 1000 })).rows;
    expect(owners[owners.length - 1].owner_name).toBeNull();
  });

  it('rows agree with details', () => {
    const row = org.inventory(q({ offset: 17, limit: 1 })).rows[0];
    const d = org.detail(row.id);
    expect(d.name).toBe(row.name);
    expect(d.credentials.length).toBe(row.credential_count);
    expect(d.grants.length).toBe(row.grant_count);
    expect(d.findings.length).toBe(row.finding_count);
    for (const del of d.delegations_out) {
      expect(org.detail(del.other_id).delegations_in.some((x) => x.other_id === row.id)).toBe(true);
    }
  });

  it('rejects like the real commands', async () => {
    const b = createMockBackend({ size: 100, latencyMs: 0 });
    await expect(b.identity(101)).rejects.toEqual({ code: 'not_found', message: 'no identity with id 101' });
    await expect(b.inventory(q({ offset: -1 }))).rejects.toMatchObject({ code: 'invalid_input' });
  });

  it('generates and sorts 100k identities in a bounded time', { timeout: 60_000 }, () => {
    const big = new MockOrg({ now: NOW });
    const t = performance.now();
    const page = big.inventory(q({ sort: 'risk', descending: true }));
    const ms = performance.now() - t;
    expect(page.total).toBe(100_000);
    expect(ms).toBeLessThan(30_000); // generous: shared CI machines are slow; ~1-2 s on a laptop
    console.log(`mock: 100k identities generated and sorted in ${ms.toFixed(0)} ms`);
  });
});
