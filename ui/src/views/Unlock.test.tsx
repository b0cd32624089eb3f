// @vitest-environment jsdom
// The unlock window: first run (choose a passphrase twice; too short and
// mismatched refused before any call), later runs (a wrong passphrase says so
// and lets the user try again, then the right one unlocks), focus and Enter.
import { fireEvent, render, screen, waitFor } from '@testing-library/preact';
import { describe, expect, it, vi } from 'vitest';
import axe from 'axe-core';
import '../test/dom';
import { createMockUnlock, type UnlockApi } from '../lib/unlock';
import { Unlock } from './Unlock';

const input = (testid: string) => screen.getByTestId(testid) as HTMLInputElement;
const type = (testid: string, value: string) => fireEvent.input(input(testid), { target: { value } });
/** Enter in the field: the form submits. */
const enter = (testid: string) => fireEvent.submit(input(testid).form!);
const message = () => screen.getByTestId('unlock-error').textContent ?? '';

describe('Unlock: first run', () => {
  it('asks for a passphrase twice, refuses a short or mismatched one, then creates the cache', async () => {
    const api = createMockUnlock({ newCache: true });
    const unlock = vi.spyOn(api, 'unlock');
    const onUnlocked = vi.fn();
    render(<Unlock api={api} onUnlocked={onUnlocked} />);
    await waitFor(() => expect(screen.getByTestId('unlock').dataset.mode).toBe('choose'));
    await waitFor(() => expect(document.activeElement).toBe(input('unlock-passphrase')));
    expect(screen.getByTestId('unlock-explain').textContent).toContain('cannot be recovered');
    // Labels name both fields.
    expect(screen.getByLabelText(/^New passphrase/)).toBe(input('unlock-passphrase'));
    expect(screen.getByLabelText('The same passphrase again')).toBe(input('unlock-confirm'));

    type('unlock-passphrase', 'short');
    type('unlock-confirm', 'short');
    enter('unlock-confirm');
    expect(message()).toContain('at least 12 characters');
    expect(input('unlock-passphrase').getAttribute('aria-invalid')).toBe('true');

    type('unlock-passphrase', 'correct horse battery');
    type('unlock-confirm', 'correct horse batery');
    enter('unlock-confirm');
    expect(message()).toContain('not the same');
    expect(unlock).not.toHaveBeenCalled();
    expect(onUnlocked).not.toHaveBeenCalled();

    type('unlock-confirm', 'correct horse battery');
    fireEvent.click(screen.getByTestId('unlock-submit'));
    expect(screen.getByTestId('unlock-busy').textContent).toContain('Creating the encrypted cache');
    await waitFor(() => expect(onUnlocked).toHaveBeenCalledTimes(1));
    expect(unlock).toHaveBeenCalledWith('correct horse battery', 'correct horse battery');
  });

  it("shows the core's refusal when it refuses what the form let through", async () => {
    // A core with a stricter rule than the form (e.g. a raw-key lookalike).
    const api: UnlockApi = {
      state: async () => ({ unlocked: false, new_cache: true, min_length: 12, location: '/c.db' }),
      unlock: async () => Promise.reject({ code: 'invalid_input', message: 'the passphrase is written like a raw SQLCipher key' }),
    };
    render(<Unlock api={api} onUnlocked={() => undefined} />);
    await waitFor(() => input('unlock-passphrase'));
    type('unlock-passphrase', "x'00000000000000'");
    type('unlock-confirm', "x'00000000000000'");
    enter('unlock-passphrase');
    await waitFor(() => expect(message()).toContain('raw SQLCipher key'));
  });
});

describe('Unlock: later runs', () => {
  it('a wrong passphrase says so and lets the user try again; the right one unlocks', async () => {
    const api = createMockUnlock({ newCache: false, passphrase: 'correct horse battery' });
    const onUnlocked = vi.fn();
    render(<Unlock api={api} onUnlocked={onUnlocked} reason={null} />);
    await waitFor(() => expect(screen.getByTestId('unlock').dataset.mode).toBe('enter'));
    expect(screen.queryByTestId('unlock-confirm')).toBeNull();
    expect(screen.getByLabelText('Passphrase')).toBe(input('unlock-passphrase'));
    await waitFor(() => expect(document.activeElement).toBe(input('unlock-passphrase')));

    enter('unlock-passphrase');
    expect(message()).toBe('Enter the passphrase.');
    expect(api.tries).toBe(0);

    type('unlock-passphrase', 'wrong horse battery');
    enter('unlock-passphrase');
    await waitFor(() => expect(message()).toContain('does not open this cache'));
    expect(onUnlocked).not.toHaveBeenCalled();
    // The field is cleared, enabled and focused again for the next try.
    expect(input('unlock-passphrase').value).toBe('');
    expect(input('unlock-passphrase').disabled).toBe(false);
    await waitFor(() => expect(document.activeElement).toBe(input('unlock-passphrase')));

    type('unlock-passphrase', 'correct horse battery');
    enter('unlock-passphrase');
    await waitFor(() => expect(onUnlocked).toHaveBeenCalledTimes(1));
    expect(api.tries).toBe(2);
  });

  it('an already open store goes straight through', async () => {
    const onUnlocked = vi.fn();
    const api: UnlockApi = {
      state: async () => ({ unlocked: true, new_cache: false, min_length: 12, location: '/c.db' }),
      unlock: vi.fn(),
    };
    render(<Unlock api={api} onUnlocked={onUnlocked} />);
    await waitFor(() => expect(onUnlocked).toHaveBeenCalledTimes(1));
    expect(api.unlock).not.toHaveBeenCalled();
  });
});

describe('Unlock: accessibility', () => {
  it('has no serious or critical axe-core violations, choosing or entering', async () => {
    for (const newCache of [true, false]) {
      const { container, unmount } = render(<main><Unlock api={createMockUnlock({ newCache })} onUnlocked={() => undefined} /></main>);
      await waitFor(() => input('unlock-passphrase'));
      const r = await axe.run(container, { rules: { 'color-contrast': { enabled: false } }, resultTypes: ['violations'] });
      const bad = r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id}: ${v.help}`);
      expect(bad).toEqual([]);
      unmount();
    }
  });
});
