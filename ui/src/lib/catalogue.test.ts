import { describe, expect, it } from 'vitest';
import type { FindingCatalogue, SourceKindView } from '../bindings';
import { catalogues, checkText } from './catalogue';
import { setBackend, type Backend } from './ipc';
import { createMockBackend } from './mock';
import { FINDING_CHECKS, SOURCE_KINDS } from './catalogue.gen';

function counting(kinds: () => Promise<SourceKindView[]>): { backend: Backend; calls: () => number } {
  let n = 0;
  const b = createMockBackend({ size: 10, latencyMs: 0 });
  return { backend: { ...b, sourceKinds: () => (n++, kinds()) }, calls: () => n };
}

describe('catalogues', () => {
  it('asks the backend once, again after a failure, and again for a new backend', async () => {
    let fail = true;
    const c = counting(() => (fail ? Promise.reject({ code: 'internal', message: 'down' }) : Promise.resolve([])));
    setBackend(c.backend);
    await expect(catalogues.sourceKinds()).rejects.toMatchObject({ message: 'down' });
    fail = false;
    await expect(catalogues.sourceKinds()).resolves.toEqual([]);
    await catalogues.sourceKinds();
    expect(c.calls()).toBe(2);
    const d = counting(() => Promise.resolve(SOURCE_KINDS));
    setBackend(d.backend);
    expect((await catalogues.sourceKinds()).length).toBe(SOURCE_KINDS.length);
    expect(d.calls()).toBe(1);
  });

  it('the mock serves the core catalogues (generated), with write-back only where the core allows it', async () => {
    setBackend(createMockBackend({ size: 10, latencyMs: 0 }));
    const kinds = await catalogues.sourceKinds();
    expect(kinds).toEqual(SOURCE_KINDS);
    expect(kinds.filter((k) => k.write_back.length > 0).every((k) => k.needs_secret)).toBe(true);
    expect((await catalogues.findingChecks()).checks.length).toBe(FINDING_CHECKS.checks.length);
  });

  it('takes a check text from the catalogue, and the finding own only for an unlisted check', () => {
    const cat: FindingCatalogue = { categories: [], checks: [{ id: 'a', owasp: 'NHI2', owasp_title: 'Two', severity: 'high', title: 'From catalogue', fix: 'F' }] };
    const own = { owasp: 'NHI1', owasp_title: 'One', severity: 'low' as const, title: 'Own', fix: 'own' };
    expect(checkText(cat, 'a', own)).toEqual({ owasp: 'NHI2', owasp_title: 'Two', severity: 'high', title: 'From catalogue', fix: 'F' });
    expect(checkText(cat, 'b', own)).toBe(own);
    expect(checkText(null, 'a', own)).toBe(own);
  });
});
