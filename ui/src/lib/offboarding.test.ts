import { describe, expect, it } from 'vitest';
import { createMockOffboarding, describeApply, transferAll } from './offboarding';

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
});
