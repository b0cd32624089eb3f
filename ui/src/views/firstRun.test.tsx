// @vitest-environment jsdom
// Empty and first-run states lead somewhere: each offers the step that fills it.
import { fireEvent, render, screen, waitFor } from '@testing-library/preact';
import { describe, expect, it } from 'vitest';
import { useMocks } from '../test/dom';
import { createMockBackend } from '../lib/mock';
import { setBackend } from '../lib/ipc';
import { addDays, Campaigns, firstCampaignPreset } from './Campaigns';
import { Team } from './Team';
import { Reviews } from './Reviews';
import { Sources } from './Sources';
import { Inventory } from './Inventory';
import { sourcesStore } from './sourcesStore';

const field = (testid: string) => screen.getByTestId(testid) as HTMLInputElement;
/** Waits for an element matching `selector`. */
const found = (selector: string) =>
  waitFor(() => {
    const el = document.querySelector<HTMLElement>(selector);
    if (!el) throw new Error(`no ${selector}`);
    return el;
  });

describe('first campaign', () => {
  it('the preset covers every kind, is due in 30 days and names the acting person as fallback', () => {
    const me = { id: 1, display_name: 'Maya Weber' } as never;
    const p = firstCampaignPreset(me, new Date('2026-01-10T12:00:00Z'));
    expect(p.due).toBe('2026-02-09');
    expect(p.kinds).toEqual(['ai_agent', 'service_account', 'oauth_app', 'api_key', 'workload', 'bot']);
    expect(p.fallback).toBe(me);
    expect(addDays(new Date('2026-12-20T00:00:00Z'), 30)).toBe('2027-01-19');
  });

  it('no campaign yet: a button opens the form filled with the default scope', async () => {
    const { reviews } = useMocks();
    await reviews.setActingPerson(1);
    render(<Campaigns />);
    const button = await waitFor(() => screen.getByTestId('first-campaign'));
    expect(screen.queryByTestId('campaign-list')).toBeNull();
    fireEvent.click(button);
    await waitFor(() => screen.getByTestId('campaign-form'));
    expect(field('campaign-name').value).toBe('Non-human identity certification');
    expect(field('campaign-due').value).toBe(addDays(new Date(), 30));
    const checked = [...document.querySelectorAll<HTMLInputElement>('[data-testid=campaign-form] fieldset input[type=checkbox]')].filter((c) => c.checked);
    expect(checked).toHaveLength(6);
    expect(screen.getByTestId('campaign-fallback-chosen').textContent).toContain('Maya Weber');
    expect(screen.queryByTestId('campaigns-empty')).toBeNull();
  });

  it('the blank New campaign form stays blank (the fallback is typed)', async () => {
    const { reviews } = useMocks();
    await reviews.setActingPerson(1);
    render(<Campaigns />);
    fireEvent.click(await waitFor(() => screen.getByTestId('new-campaign')));
    await waitFor(() => screen.getByTestId('campaign-form'));
    expect(field('campaign-name').value).toBe('');
    expect(screen.getByTestId('campaign-fallback')).toBeTruthy();
  });

  it('nobody chosen yet: the form first asks who you are, right there', async () => {
    useMocks();
    render(<Campaigns />);
    fireEvent.click(await waitFor(() => screen.getByTestId('first-campaign')));
    const option = await found('[data-testid=person-option][data-id="2"]');
    expect(screen.queryByTestId('campaign-form')).toBeNull();
    fireEvent.click(option);
    await waitFor(() => screen.getByTestId('campaign-form'));
    expect(screen.getByTestId('campaign-fallback-chosen').textContent).toContain('Noah Ibrahim');
  });
});

describe('My team, first run', () => {
  it('asks who you are instead of showing an error, then shows your team', async () => {
    const { reviews } = useMocks();
    render(<Team />);
    const search = await waitFor(() => screen.getByTestId('person-search'));
    expect(search).toBeTruthy();
    expect(screen.queryByTestId('team-error')).toBeNull();
    expect(document.body.textContent).not.toContain('Invalid request');
    // The Settings it mentions is a real view: the link leads there.
    expect(screen.getByTestId('team-settings-link').getAttribute('href')).toBe('#/settings');
    fireEvent.input(search, { target: { value: 'maya' } });
    const maya = await found('[data-testid=person-option][data-id="1"]');
    fireEvent.click(maya);
    await waitFor(() => expect(screen.getAllByTestId('team-member')).toHaveLength(2));
    expect((await reviews.actingPerson())?.id).toBe(1);
    expect(screen.getByTestId('team-acting-person').textContent).toContain('Maya Weber');
  });

  it('with someone chosen goes straight to the team', async () => {
    const { reviews } = useMocks();
    await reviews.setActingPerson(1);
    render(<Team />);
    await waitFor(() => expect(screen.getAllByTestId('team-member')).toHaveLength(2));
    expect(screen.queryByTestId('person-picker')).toBeNull();
  });
});

describe('My reviews, first run', () => {
  it('choosing yourself opens your queue', async () => {
    useMocks();
    render(<Reviews />);
    const maya = await found('[data-testid=person-option][data-id="1"]');
    fireEvent.click(maya);
    await waitFor(() => expect(screen.getAllByTestId('queue-row').length).toBeGreaterThan(0));
    expect(screen.getByTestId('acting-person').textContent).toContain('Maya Weber');
  });
});

describe('no source yet', () => {
  it('offers to add one, and the button opens the add form', async () => {
    const b = createMockBackend({ size: 50, latencyMs: 0 });
    setBackend({ ...b, sources: async () => [] });
    sourcesStore.addOpen = false;
    render(<Sources />);
    const add = await waitFor(() => screen.getByTestId('sources-empty-add'));
    expect(screen.queryByTestId('add-source-kind')).toBeNull();
    fireEvent.click(add);
    await waitFor(() => screen.getByTestId('add-source-kind'));
    expect((screen.getByTestId('add-source-kind') as HTMLSelectElement).value).toBe('csv');
  });
});

describe('empty inventory', () => {
  it('leads to Sources when there is nothing at all', async () => {
    setBackend(createMockBackend({ size: 0, latencyMs: 0 }));
    render(<Inventory />);
    const link = await waitFor(() => screen.getByTestId('inventory-add-source'));
    expect(link.getAttribute('href')).toBe('#/sources');
    expect(screen.getByTestId('inventory-empty').textContent).toContain('No identities yet');
  });
});

describe('a run that skipped objects', () => {
  it('says so in the run history, names each skipped object, and never runs source text as markup', async () => {
    useMocks();
    render(<Sources />);
    const row = await found('[data-testid=run-row][data-status=succeeded_with_warnings]');
    expect(row.textContent).toContain('Succeeded with warnings');
    const sub = await found('[data-testid=run-warnings]');
    expect(sub.textContent).toContain('3 warnings');
    expect(sub.textContent).toContain("skipped app 3 of page 1 of /api/v1/apps: it has no 'id'");
    expect(sub.textContent).toContain('and 2 more');
    fireEvent.click(row);
    const list = await found('[data-testid=run-warning-list]');
    const items = [...list.querySelectorAll('[data-testid=run-warning]')].map((li) => li.textContent);
    expect(items).toHaveLength(3);
    expect(items[2]).toContain('<script>alert(1)</script> is not a valid profile');
    expect(list.querySelector('script')).toBeNull();
  });
});

describe('the demo organisation', () => {
  it('can be removed from Sources; history made on it goes only when that is confirmed too', async () => {
    useMocks();
    const b = createMockBackend({ size: 50, latencyMs: 0 });
    const calls: boolean[] = [];
    let cleared = false;
    setBackend({
      ...b,
      summary: async () => ({ ...(await b.summary()), dataset: cleared ? null : 'demo-s' }),
      clearDemo: async (discard) => {
        calls.push(discard);
        if (!discard) throw { code: 'invalid_input', message: 'the demo organisation carries 1 campaign, 2 decisions made on it; nothing was removed.' };
        cleared = true;
        return null;
      },
    });
    sourcesStore.addOpen = false;
    render(<Sources />);
    fireEvent.click(await found('[data-testid=demo-clear]'));
    expect((await found('[data-testid=demo-clear-confirm]')).textContent).toContain('The audit log is kept');
    fireEvent.click(screen.getByTestId('demo-clear-yes'));
    const refusal = await found('[data-testid=demo-clear-error]');
    expect(refusal.textContent).toContain('1 campaign, 2 decisions made on it; nothing was removed');
    expect(calls).toEqual([false]);
    fireEvent.click(screen.getByTestId('demo-clear-discard'));
    await waitFor(() => expect(calls).toEqual([false, true]));
    await waitFor(() => expect(screen.queryByTestId('demo-note')).toBeNull());
  });

  it('Keep it asks nothing of the core', async () => {
    useMocks();
    const b = createMockBackend({ size: 50, latencyMs: 0 });
    let called = false;
    setBackend({ ...b, summary: async () => ({ ...(await b.summary()), dataset: 'demo-s' }), clearDemo: async () => ((called = true), null) });
    render(<Sources />);
    fireEvent.click(await found('[data-testid=demo-clear]'));
    fireEvent.click(screen.getByText('Keep it'));
    await found('[data-testid=demo-clear]');
    expect(called).toBe(false);
  });
});
