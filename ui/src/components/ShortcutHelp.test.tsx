// @vitest-environment jsdom
import { fireEvent, render, screen, waitFor } from '@testing-library/preact';
import { describe, expect, it } from 'vitest';
import '../test/dom';
import { isHelpKey, SHORTCUTS } from '../lib/shortcuts';
import { ShortcutButton, ShortcutHelp, useShortcutHelp } from './ShortcutHelp';

function Harness() {
  const help = useShortcutHelp();
  return (
    <div>
      <ShortcutButton open={help.open} onToggle={help.toggle} />
      <input data-testid="field" aria-label="field" />
      <button data-testid="elsewhere">elsewhere</button>
      <ShortcutHelp open={help.open} onToggle={help.toggle} onClose={help.close} />
    </div>
  );
}

const row = (keys: string, does: RegExp) =>
  [...document.querySelectorAll('.shortcuts__row')].some(
    (r) => [...r.querySelectorAll('kbd')].map((k) => k.textContent).join(' ') === keys && does.test(r.querySelector('dd')?.textContent ?? ''),
  );

describe('shortcut help', () => {
  it('? opens a dialog listing the queue and inventory keys; Esc closes it and gives the focus back', async () => {
    render(<Harness />);
    const elsewhere = screen.getByTestId('elsewhere');
    elsewhere.focus();
    fireEvent.keyDown(elsewhere, { key: '?' });
    const dialog = await waitFor(() => screen.getByRole('dialog', { name: 'Keyboard shortcuts' }));
    expect(dialog.getAttribute('aria-modal')).toBe('true');
    expect(document.activeElement).toBe(screen.getByTestId('shortcuts-close'));
    for (const [keys, does] of [
      ['a', /keep/],
      ['r', /revoke/],
      ['o', /rotate/],
      ['x', /select/],
      ['A', /recommendation/],
      ['/', /justification/],
      ['/', /search/],
      ['Enter', /open the highlighted identity/],
      ['Home End', /first or last/],
    ] as [string, RegExp][]) {
      expect(row(keys, does), `${keys} ${does}`).toBe(true);
    }
    fireEvent.keyDown(document.activeElement!, { key: 'Escape' });
    await waitFor(() => expect(screen.queryByRole('dialog')).toBeNull());
    expect(document.activeElement).toBe(elsewhere);
  });

  it('? typed in a text field is text, not a shortcut; the top bar button opens the list too', async () => {
    render(<Harness />);
    fireEvent.keyDown(screen.getByTestId('field'), { key: '?' });
    expect(screen.queryByRole('dialog')).toBeNull();
    fireEvent.click(screen.getByTestId('shortcuts-open'));
    await waitFor(() => screen.getByRole('dialog'));
    expect(screen.getByTestId('shortcuts-open').getAttribute('aria-expanded')).toBe('true');
    fireEvent.keyDown(document.activeElement!, { key: '?' });
    await waitFor(() => expect(screen.queryByRole('dialog')).toBeNull());
  });

  it('Tab stays inside the dialog', async () => {
    render(<Harness />);
    fireEvent.click(screen.getByTestId('shortcuts-open'));
    const close = await waitFor(() => screen.getByTestId('shortcuts-close'));
    fireEvent.keyDown(close, { key: 'Tab' });
    expect(document.activeElement).toBe(close);
  });

  it('isHelpKey ignores modified keys and text fields', () => {
    const input = document.createElement('input');
    const div = document.createElement('div');
    const e = (over: Partial<KeyboardEvent>) => ({ key: '?', ctrlKey: false, metaKey: false, altKey: false, target: div, ...over }) as KeyboardEvent;
    expect(isHelpKey(e({}))).toBe(true);
    expect(isHelpKey(e({ target: input }))).toBe(false);
    expect(isHelpKey(e({ ctrlKey: true }))).toBe(false);
    expect(isHelpKey(e({ key: '/' }))).toBe(false);
    expect(SHORTCUTS.map((g) => g.title)).toEqual(['Everywhere', 'Inventory', 'My reviews', 'Blast radius graph']);
  });
});
