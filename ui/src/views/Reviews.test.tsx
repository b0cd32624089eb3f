// @vitest-environment jsdom
// The audit badge on My reviews shows what verify_audit says: verified for an
// intact log, broken (with the entry and why) for a tampered one.
import { render, screen, waitFor } from '@testing-library/preact';
import { describe, expect, it } from 'vitest';
import { useMocks } from '../test/dom';
import type { MockReviewsApi } from '../lib/reviews';
import { Reviews } from './Reviews';

async function badge(): Promise<HTMLElement> {
  return waitFor(() => screen.getByTestId('audit-badge'));
}

describe('the audit badge', () => {
  it('says verified for an intact log', async () => {
    const { reviews } = useMocks();
    await reviews.setActingPerson(1);
    render(<Reviews />);
    const b = await badge();
    expect(b.textContent).toBe('Audit log verified (3 entries)');
    expect(b.className).toContain('badge--ok');
    expect(b.className).not.toContain('badge--bad');
    expect(b.title).toMatch(/^Head [0-9a-f]{64}$/);
  });

  it('says broken, at which entry and why, for an edited entry', async () => {
    const { reviews } = useMocks();
    await reviews.setActingPerson(1);
    (reviews as MockReviewsApi).tamperAudit(2);
    render(<Reviews />);
    const b = await badge();
    expect(b.textContent).toBe('Audit log broken at entry 2');
    expect(b.className).toContain('badge--bad');
    expect(b.className).not.toContain('badge--ok');
    expect(b.title).toBe('entry 2 was edited');
  });

  it('says broken when the newest entries were deleted', async () => {
    const { reviews } = useMocks();
    await reviews.setActingPerson(1);
    (reviews as MockReviewsApi).dropAuditTail(1);
    render(<Reviews />);
    const b = await badge();
    expect(b.textContent).toBe('Audit log broken at entry 3');
    expect(b.className).toContain('badge--bad');
    expect(b.title).toContain('were deleted');
  });
});
