import { describe, expect, it } from 'vitest';
import { createMockReviews, emptyQuery, keyDecision, needsJustification } from './reviews';

describe('keyboard decisions', () => {
  it('maps keys to the decision that fits the item type', () => {
    expect(keyDecision('a', 'grant')).toBe('keep');
    expect(keyDecision('r', 'grant')).toBe('revoke');
    expect(keyDecision('r', 'credential')).toBe('revoke');
    expect(keyDecision('r', 'identity')).toBe('retire');
    expect(keyDecision('o', 'credential')).toBe('rotate');
    expect(keyDecision('o', 'grant')).toBeNull();
    expect(keyDecision('z', 'grant')).toBeNull();
  });
});

describe('justification rule (mirrors the backend)', () => {
  it('is needed to remove access and to keep anything high risk', () => {
    expect(needsJustification('revoke', 'low')).toBe(true);
    expect(needsJustification('retire', 'medium')).toBe(true);
    expect(needsJustification('keep', 'high')).toBe(true);
    expect(needsJustification('keep', 'medium')).toBe(false);
    expect(needsJustification('rotate', 'high')).toBe(false);
  });
});

describe('mock reviews', () => {
  it('asks who is acting, then records decisions with the same rules', async () => {
    const m = createMockReviews();
    await expect(m.queue(emptyQuery())).rejects.toMatchObject({ code: 'invalid_input' });
    await m.setActingPerson(1);
    const q = await m.queue(emptyQuery());
    expect(q.pending).toBe(12);
    const grant = q.items.find((i) => i.item_type === 'grant' && i.risk !== 'high')!;
    await expect(
      m.decide({ items: [grant.id], decision: 'revoke', justification: '', new_owner: null, follow_recommendation: false }),
    ).rejects.toMatchObject({ message: expect.stringContaining('justification') });
    expect(await m.decide({ items: [grant.id], decision: 'revoke', justification: 'unused', new_owner: null, follow_recommendation: false })).toBe(1);
    expect((await m.queue(emptyQuery())).pending).toBe(11);
    expect((await m.verifyAudit()).ok).toBe(true);
  });
});
