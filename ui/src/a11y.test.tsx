// @vitest-environment jsdom
// Every view, rendered with the in-browser mocks, has no serious or critical
// axe-core violations. (Colour contrast needs a layout engine: jsdom has none,
// so styles/contrast.test.ts checks the palette instead.)
import { fireEvent, render, screen, waitFor } from '@testing-library/preact';
import axe from 'axe-core';
import { describe, expect, it } from 'vitest';
import { useMocks } from './test/dom';
import { App } from './app';

/** Set to true locally to see the moderate and minor findings too. */
const SHOW_ALL = false;

async function violations(root: Element): Promise<string[]> {
  const r = await axe.run(root, { rules: { 'color-contrast': { enabled: false } }, resultTypes: ['violations'] });
  return r.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical' || (SHOW_ALL && v.impact !== null))
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')}`);
}

const found = (selector: string) =>
  waitFor(
    () => {
      const el = document.querySelector<HTMLElement>(selector);
      if (!el) throw new Error(`no ${selector}`);
      return el;
    },
    { timeout: 3000 },
  );

async function at(hash: string, ready: string): Promise<Element> {
  location.hash = hash;
  window.dispatchEvent(new HashChangeEvent('hashchange'));
  await found(ready);
  return document.body;
}

describe('accessibility (axe-core)', () => {
  it('the check itself finds a serious problem (a nameless button, an unlabelled field)', async () => {
    const { container } = render(
      <main>
        <button />
        <input />
      </main>,
    );
    const found = await violations(container);
    expect(found.some((v) => v.startsWith('button-name'))).toBe(true);
    expect(found.some((v) => v.startsWith('label'))).toBe(true);
  });

  it('has no serious or critical violations in any view', async () => {
    const { reviews } = useMocks({ size: 200 });
    render(<App />);
    const problems: Record<string, string[]> = {};
    const check = async (name: string, hash: string, ready: string, then?: () => Promise<void>) => {
      const root = await at(hash, ready);
      if (then) await then();
      problems[name] = await violations(root);
    };

    await check('inventory', '#/inventory', '[data-testid=inventory-row]');
    await check('identity', '#/identity/1', '[data-testid=identity-name]');
    await check('sources', '#/sources', '[data-testid=source-row]');
    await check('reviews: who are you', '#/reviews', '[data-testid=person-option]');
    await check('team: who are you', '#/team', '[data-testid=person-option]');
    await reviews.setActingPerson(1);
    await check('not found', '#/nothing', 'h1');
    await check('reviews: queue', '#/reviews', '[data-testid=queue-row]');
    await check('team', '#/team', '[data-testid=team-member]', async () => {
      fireEvent.click(screen.getByTestId('open-case'));
      await found('[data-testid=offboarding-item]');
    });
    await check('campaigns: first', '#/campaigns', '[data-testid=first-campaign]', async () => {
      fireEvent.click(screen.getByTestId('first-campaign'));
      await found('[data-testid=campaign-form]');
    });
    await check('settings', '#/settings', '[data-testid=who-person]', async () => {
      fireEvent.click(screen.getByTestId('conn-mode-workspace'));
      await found('[data-testid=conn-host]');
    });
    await check('posture', '#/posture', '[data-testid=posture-findings]');
    await check('blast', '#/blast/1', '[data-testid=blast-graph]');
    await check('shortcuts', '#/inventory', '[data-testid=inventory-row]', async () => {
      fireEvent.keyDown(document.body, { key: '?' });
      await found('[data-testid=shortcuts]');
    });
    for (const [name, list] of Object.entries(problems)) expect(list, name).toEqual([]);
  }, 30_000);
});
