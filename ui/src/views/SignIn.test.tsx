// @vitest-environment jsdom
// A workspace whose login has no password on this computer: the app leads
// to a sign-in instead of an error, and the nav waits for who this is.
import { fireEvent, render, screen, waitFor } from '@testing-library/preact';
import axe from 'axe-core';
import { describe, expect, it } from 'vitest';
import { useMocks } from '../test/dom';
import { App } from '../app';
import { createMockConnection, MOCK_PASSWORD, setConnectionApi } from '../lib/connection';
import type { WhoAmI } from '../bindings';

const found = (selector: string) =>
  waitFor(
    () => {
      const el = document.querySelector<HTMLElement>(selector);
      if (!el) throw new Error(`no ${selector}`);
      return el;
    },
    { timeout: 3000 },
  );
const visibleNav = () => [...document.querySelectorAll('.sidenav a')].map((a) => a.getAttribute('data-testid')?.replace('nav-', ''));

describe('workspace sign-in, first run', () => {
  it('shows the login and server, refuses a wrong password readably, and a right one opens the member view', async () => {
    const { connection } = useMocks({ size: 50, signedOut: true });
    location.hash = '#/reviews';
    render(<App />);
    const form = await found('[data-testid=sign-in-form]');
    expect(screen.getByTestId('sign-in-login').textContent).toBe('maya.weber');
    expect(screen.getByTestId('sign-in-address').textContent).toBe('pg.example.com:5432/custodian');
    // No view and no nav to a view behind the sign-in, only Settings.
    expect(document.querySelector('[data-testid=queue-row], [data-testid=person-option]')).toBeNull();
    expect(visibleNav()).toEqual(['settings']);
    expect(document.body.textContent).not.toContain('Invalid request');

    // Empty: said at once, nothing sent.
    fireEvent.submit(form);
    expect((await found('[data-testid=sign-in-error]')).textContent).toContain('Type the password');

    // Wrong: the server's refusal, with its code; the field is emptied.
    const pw = screen.getByTestId('sign-in-password') as HTMLInputElement;
    fireEvent.input(pw, { target: { value: 'not it' } });
    fireEvent.submit(form);
    await waitFor(() => expect(screen.getByTestId('sign-in-error').textContent).toContain('The server refused this password'));
    expect(screen.getByTestId('sign-in-error').querySelector('[data-testid=error-code]')?.textContent).toBe('database_auth');
    expect(pw.value).toBe('');
    expect(connection.savedPassword).toBe(false);

    // Right, with Remember off: signed in, the reviewer's nav, nothing kept.
    fireEvent.click(screen.getByTestId('sign-in-remember'));
    fireEvent.input(pw, { target: { value: MOCK_PASSWORD } });
    fireEvent.submit(form);
    await waitFor(() => expect(screen.queryByTestId('sign-in-form')).toBeNull());
    await waitFor(() => expect(visibleNav()).toContain('reviews'));
    expect(visibleNav()).not.toContain('sources');
    expect(connection.savedPassword).toBe(false);
  });

  it('Remember keeps the password in the keyring', async () => {
    const { connection } = useMocks({ size: 50, signedOut: true });
    location.hash = '#/inventory';
    render(<App />);
    const form = await found('[data-testid=sign-in-form]');
    fireEvent.input(screen.getByTestId('sign-in-password'), { target: { value: MOCK_PASSWORD } });
    fireEvent.submit(form);
    await waitFor(() => expect(screen.queryByTestId('sign-in-form')).toBeNull());
    expect(connection.savedPassword).toBe(true);
  });

  it('Settings stays reachable while signed out', async () => {
    useMocks({ size: 50, signedOut: true });
    location.hash = '#/inventory';
    render(<App />);
    await found('[data-testid=sign-in-form]');
    location.hash = '#/settings';
    window.dispatchEvent(new HashChangeEvent('hashchange'));
    await found('[data-testid=connection-form]');
    expect(screen.queryByTestId('sign-in-form')).toBeNull();
  });

  it('has no serious or critical axe-core violations', async () => {
    useMocks({ size: 50, signedOut: true });
    location.hash = '#/inventory';
    render(<App />);
    await found('[data-testid=sign-in-form]');
    const r = await axe.run(document.body, { rules: { 'color-contrast': { enabled: false } }, resultTypes: ['violations'] });
    expect(r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => v.id)).toEqual([]);
  });
});

describe('the nav waits for who this is', () => {
  it('draws no item before the store has answered, then the role set', async () => {
    useMocks({ size: 50 });
    const base = createMockConnection({ roles: ['reviewer'] });
    let answer: (w: WhoAmI) => void = () => undefined;
    const pending = new Promise<WhoAmI>((r) => (answer = r));
    setConnectionApi({ ...base, whoAmI: () => pending });
    location.hash = '#/inventory';
    render(<App />);
    await found('[data-testid=sidenav]');
    expect(visibleNav()).toEqual([]);
    expect(screen.getByTestId('sidenav').getAttribute('aria-busy')).toBe('true');
    answer(await base.whoAmI());
    await waitFor(() => expect(visibleNav()).toContain('reviews'));
    expect(visibleNav()).not.toContain('sources');
    expect(screen.getByTestId('sidenav').getAttribute('aria-busy')).toBeNull();
  });
});
