// @vitest-environment jsdom
// An administrator's device-code sign-in from a source's row (an Entra
// source with `delegated` on): the code and where to enter it, a wait that
// can be cancelled, then who signed in, or why not.
import { fireEvent, render, screen, waitFor } from '@testing-library/preact';
import { beforeEach, describe, expect, it } from 'vitest';
import type { DeviceCodePrompt, SourceView } from '../bindings';
import { setBackend, type Backend } from '../lib/ipc';
import { createMockBackend } from '../lib/mock';
import { useMocks } from '../test/dom';
import { Sources } from './Sources';
import { sourcesStore } from './sourcesStore';

const entra = (id: number, name: string, settings: { [k: string]: boolean | string }): SourceView => ({
  id,
  kind: 'entra',
  name,
  settings: { tenant_id: 'contoso.onmicrosoft.com', client_id: 'c2a6e0c4', ...settings },
  has_cursor: false,
  last_run: null,
});

const PROMPT: DeviceCodePrompt = {
  user_code: 'FJ7KQ2RTB',
  verification_uri: 'https://microsoft.com/devicelogin',
  message: 'To sign in, use a web browser to open the page https://microsoft.com/devicelogin and enter the code FJ7KQ2RTB to authenticate.',
  expires_in: 900,
};

/** A backend whose sign-in answers when the test says so; records the calls. */
function backend(begin: () => Promise<DeviceCodePrompt> = async () => PROMPT) {
  const calls: string[] = [];
  let finish: { resolve: (u: string | null) => void; reject: (e: unknown) => void } | null = null;
  const base = createMockBackend({ size: 50, latencyMs: 0 });
  const b: Backend = {
    ...base,
    sources: async () => {
      calls.push('sources');
      return [entra(1, 'Entra (admin sign-in)', { delegated: true }), entra(2, 'Entra (secret)', {})];
    },
    beginSourceSignIn: async (id) => {
      calls.push(`begin ${id}`);
      return begin();
    },
    finishSourceSignIn: (id) => {
      calls.push(`finish ${id}`);
      return new Promise((resolve, reject) => {
        finish = { resolve, reject };
      });
    },
    cancelSourceSignIn: async (id) => {
      calls.push(`cancel ${id}`);
      finish?.reject({ code: 'cancelled', message: 'cancelled' });
      return true;
    },
  };
  setBackend(b);
  return {
    calls,
    signedIn: (user: string | null) => finish?.resolve(user),
    failed: (code: string, message: string) => finish?.reject({ code, message }),
  };
}

const row = (id: number) => document.querySelector(`[data-testid=source-row][data-id="${id}"]`) as HTMLElement;
const inRow = (id: number, testid: string) => row(id)?.querySelector(`[data-testid=${testid}]`) as HTMLButtonElement | null;

async function openSources() {
  sourcesStore.addOpen = false;
  render(<Sources />);
  await waitFor(() => expect(inRow(1, 'source-sign-in')).toBeTruthy());
}

describe('signing in to a source from its row', () => {
  beforeEach(() => {
    useMocks();
    sourcesStore.signIns.clear();
  });

  it('offers Sign in instead of a secret where the source signs in as an administrator', async () => {
    backend();
    await openSources();
    expect(inRow(1, 'source-secret')).toBeNull();
    expect(inRow(2, 'source-sign-in')).toBeNull();
    expect(inRow(2, 'source-secret')).toBeTruthy();
  });

  it('shows the code and where to enter it, waits, then says who signed in', async () => {
    const b = backend();
    await openSources();
    fireEvent.click(inRow(1, 'source-sign-in')!);
    await waitFor(() => expect(screen.getByTestId('sign-in-code').textContent).toBe('FJ7KQ2RTB'));
    expect(screen.getByTestId('sign-in-uri').textContent).toBe('https://microsoft.com/devicelogin');
    expect(screen.getByTestId('sign-in-panel').textContent).toContain('15 min');
    expect(inRow(1, 'source-sign-in')!.disabled).toBe(true);
    expect(b.calls).toContain('begin 1');
    await waitFor(() => expect(b.calls).toContain('finish 1'));
    const loads = b.calls.filter((c) => c === 'sources').length;
    // Outside data: who Entra names is shown as text.
    b.signedIn('<img src=x onerror=alert(1)>@contoso.example');
    await waitFor(() => expect(screen.getByTestId('sign-in-panel').dataset.state).toBe('done'));
    const panel = screen.getByTestId('sign-in-panel');
    expect(panel.textContent).toContain('Signed in as <img src=x onerror=alert(1)>@contoso.example');
    expect(panel.querySelector('img')).toBeNull();
    expect(inRow(1, 'source-sign-in')!.disabled).toBe(false);
    // The row reloads: the source now has its refresh token.
    await waitFor(() => expect(b.calls.filter((c) => c === 'sources').length).toBeGreaterThan(loads));
    fireEvent.click(screen.getByText('Dismiss'));
    expect(screen.queryByTestId('sign-in-panel')).toBeNull();
  });

  it('stops waiting on Cancel, and can begin again', async () => {
    const b = backend();
    await openSources();
    fireEvent.click(inRow(1, 'source-sign-in')!);
    await waitFor(() => expect(screen.getByTestId('sign-in-cancel')).toBeTruthy());
    await waitFor(() => expect(b.calls).toContain('finish 1'));
    fireEvent.click(screen.getByTestId('sign-in-cancel'));
    await waitFor(() => expect(b.calls).toContain('cancel 1'));
    expect(screen.queryByTestId('sign-in-panel')).toBeNull();
    expect(inRow(1, 'source-sign-in')!.disabled).toBe(false);
    fireEvent.click(inRow(1, 'source-sign-in')!);
    await waitFor(() => expect(screen.getByTestId('sign-in-panel').dataset.state).toBe('waiting'));
    expect(b.calls.filter((c) => c === 'begin 1')).toHaveLength(2);
  });

  it("shows why the sign-in could not start or did not finish", async () => {
    backend(() => Promise.reject({ code: 'source_auth', message: 'Entra refused to start a device-code sign-in for app c2a6e0c4' }));
    await openSources();
    fireEvent.click(inRow(1, 'source-sign-in')!);
    await waitFor(() => expect(screen.getByTestId('sign-in-panel').dataset.state).toBe('error'));
    expect(screen.getByTestId('sign-in-panel').textContent).toContain('The source refused the credentials');
    expect(screen.getByTestId('sign-in-panel').textContent).toContain('refused to start a device-code sign-in');

    sourcesStore.signIns.clear();
    const b = backend();
    fireEvent.click(inRow(1, 'source-sign-in')!);
    await waitFor(() => expect(b.calls).toContain('finish 1'));
    b.failed('source_auth', 'the sign-in code FJ7KQ2RTB expired before anyone signed in');
    await waitFor(() => expect(screen.getByTestId('sign-in-panel').textContent).toContain('expired before anyone signed in'));
  });
});
