import { describe, expect, it } from 'vitest';
import { createMockReviews, emptyQuery, keyDecision, needsJustification, newCampaign } from './reviews';

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
    const v = await m.verifyAudit();
    expect(v).toMatchObject({ ok: true, entries: 4, first_bad_seq: null, signature: 'verified' });
  });
  it('its audit check fails on an edited entry and on a cut tail', async () => {
    const edited = createMockReviews();
    edited.tamperAudit(2);
    expect(await edited.verifyAudit()).toMatchObject({ ok: false, first_bad_seq: 2, problem: 'entry 2 was edited' });
    const cut = createMockReviews();
    cut.dropAuditTail(1);
    const v = await cut.verifyAudit();
    expect(v.ok).toBe(false);
    expect(v.problem).toContain('deleted');
  });
  it('sends undecided items to another reviewer, with a reason', async () => {
    const m = createMockReviews();
    await m.setActingPerson(1);
    const [a, b] = (await m.queue(emptyQuery())).items;
    await expect(m.reassign([a.id], 2, ' ')).rejects.toMatchObject({ code: 'invalid_input' });
    await expect(m.reassign([a.id], 99, 'not mine')).rejects.toMatchObject({ code: 'not_found' });
    expect(await m.reassign([a.id, b.id], 2, 'not mine')).toBe(2);
    expect((await m.queue(emptyQuery())).pending).toBe(10);
    await m.setActingPerson(2);
    const theirs = await m.queue(emptyQuery());
    expect(theirs.items.map((i) => i.id)).toEqual([a.id, b.id]);
    expect(theirs.items[0].reviewer_reason).toBe('reassigned by Maya Weber: not mine');
  });
  it('delegates everything a reviewer has pending', async () => {
    const m = createMockReviews();
    await m.setActingPerson(1);
    await expect(m.delegate(1, 1, 1, 'away')).rejects.toMatchObject({ code: 'invalid_input' });
    await expect(m.delegate(1, 1, 3, '')).rejects.toMatchObject({ code: 'invalid_input' });
    expect(await m.delegate(1, 1, 3, 'away until January')).toBe(12);
    expect((await m.queue(emptyQuery())).pending).toBe(0);
    await m.setActingPerson(3);
    expect((await m.queue(emptyQuery())).pending).toBe(12);
  });
});

describe('newCampaign', () => {
  const base = {
    name: 'Q4',
    description: '',
    due: '2026-12-31',
    fallback: 2,
    rule: 'owner' as const,
    named: null,
    granularity: 'all' as const,
    kinds: ['ai_agent' as const],
    notReviewedDays: '',
    recurrence: 'none' as const,
  };
  it('builds the definition the backend takes', () => {
    const c = newCampaign({ ...base, notReviewedDays: '90' });
    expect(typeof c).toBe('object');
    if (typeof c === 'object') {
      expect(c.scope.kinds).toEqual(['ai_agent']);
      expect(c.scope.not_reviewed_days).toBe(90);
      expect(c.fallback_reviewer).toBe(2);
      expect(c.named_reviewer).toBeNull();
    }
  });
  it('names what is missing', () => {
    expect(newCampaign({ ...base, name: ' ' })).toBe('Give the campaign a name.');
    expect(newCampaign({ ...base, fallback: null })).toBe('Choose a fallback reviewer.');
    expect(newCampaign({ ...base, rule: 'named' })).toBe('Choose the named reviewer.');
    expect(newCampaign({ ...base, notReviewedDays: 'soon' })).toContain('whole number');
  });
});
