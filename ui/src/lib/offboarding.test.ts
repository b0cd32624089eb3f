import { describe, expect, it } from 'vitest';
import { bulkPlan, createMockOffboarding, describeApply, describeDecision, transferAll } from './offboarding';

describe('offboarding helpers', () => {
  it('builds a bulk transfer plan', () => {
    expect(transferAll(7, true)).toEqual({ items: [], action: 'transfer', owner: 7, until: null, rotate: true });
  });
  it('describes an apply report', () => {
    expect(describeApply({ case_id: 1, transferred: 2, kept: 0, retired: 1, tasks: 5, reviews_moved: 0, closed: true })).toBe(
      '2 transferred, 0 kept with a temporary owner, 1 retired, 5 tasks opened; case closed',
    );
  });
  it('the mock plans and applies a case until it closes', async () => {
    const m = createMockOffboarding();
    const team = await m.myTeam();
    expect(team.cases).toHaveLength(1);
    await expect(m.plan(1, { items: [], action: 'transfer', owner: null, until: null, rotate: false })).rejects.toMatchObject({ code: 'invalid_input' });
    expect(await m.plan(1, transferAll(1, true))).toBe(2);
    const r = await m.apply(1);
    expect(r.transferred).toBe(2);
    expect(r.closed).toBe(true);
    expect((await m.myTeam()).cases).toHaveLength(0);
  });
  it('validates a bulk plan before it reaches the core', () => {
    const today = '2026-11-23';
    expect(bulkPlan([], 'retire', null, '', false, today)).toBe('Choose at least one item.');
    expect(bulkPlan([1], 'transfer', null, '', true, today)).toBe('Choose the new owner.');
    expect(bulkPlan([1], 'keep', null, '2026-12-01', false, today)).toBe('Choose the temporary owner.');
    expect(bulkPlan([1], 'keep', 4, '', false, today)).toMatch(/date/);
    expect(bulkPlan([1], 'keep', 4, '2026-11-23', false, today)).toBe('The deadline must be after today.');
    expect(bulkPlan([1, 2], 'keep', 4, '2026-12-01', true, today)).toEqual({ items: [1, 2], action: 'keep', owner: 4, until: '2026-12-01', rotate: false });
    expect(bulkPlan([3], 'retire', 4, '2026-12-01', true, today)).toEqual({ items: [3], action: 'retire', owner: null, until: null, rotate: false });
    expect(bulkPlan([3], 'transfer', 4, '', true, today)).toEqual({ items: [3], action: 'transfer', owner: 4, until: null, rotate: true });
  });
  it('the mock keeps, retires and transfers in one apply', async () => {
    const m = createMockOffboarding();
    await expect(m.plan(1, { items: [1], action: 'keep', owner: 1, until: null, rotate: false })).rejects.toMatchObject({ code: 'invalid_input' });
    expect(await m.plan(1, { items: [1], action: 'keep', owner: 1, until: '2026-12-31', rotate: false })).toBe(1);
    expect(await m.plan(1, { items: [2], action: 'retire', owner: null, until: null, rotate: false })).toBe(1);
    const c = await m.offboardingCase(1);
    expect(c.items.map((i) => [i.action, i.until])).toEqual([
      ['keep', '2026-12-31'],
      ['retire', null],
    ]);
    const r = await m.apply(1);
    expect([r.kept, r.retired, r.transferred]).toEqual([1, 1, 0]);
  });
  it('describes each decision for its row', () => {
    const base = { new_owner: 'Maya Weber', until: null, rotate: false, applied_at: null };
    expect(describeDecision({ ...base, action: 'transfer', rotate: true })).toBe('transfer to Maya Weber + rotate');
    expect(describeDecision({ ...base, action: 'keep', until: '2026-12-31T00:00:00Z' })).toBe('keep with Maya Weber until 2026-12-31');
    expect(describeDecision({ ...base, action: 'retire', new_owner: null, applied_at: '2026-11-23T00:00:00Z' })).toBe('retire (applied)');
  });
});
