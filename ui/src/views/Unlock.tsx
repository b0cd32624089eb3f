// The unlock window: where no Secret Service runs (no OS keyring), or the
// cache is keyed by a passphrase, the app asks for a passphrase here instead
// of stopping on an error. First run: choose one (typed twice, at least
// `min_length` characters, it cannot be recovered); later runs: enter it, and
// try again after a wrong one. The calls are in lib/unlock.ts.

import { useEffect, useRef, useState } from 'preact/hooks';
import { toUserError, type UserError } from '../lib/ipc';
import { unlockApi, type UnlockApi, type UnlockState } from '../lib/unlock';
import { ErrorCodeTag } from '../components/ErrorCallout';
import { refreshWhoAmI } from '../lib/connection';

/** A narrow column in the middle of the window (set through the CSSOM, which the CSP allows). */
const FRAME = { maxWidth: '44rem', margin: '4rem auto' };

export function Unlock(props: { onUnlocked: () => void; api?: UnlockApi; reason?: UserError | null }) {
  const [api] = useState<UnlockApi>(() => props.api ?? unlockApi());
  const [state, setState] = useState<UnlockState | null>(null);
  const [loadError, setLoadError] = useState<UserError | null>(null);
  const [pass, setPass] = useState('');
  const [again, setAgain] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const first = useRef<HTMLInputElement>(null);

  useEffect(() => {
    api.state().then(
      (s) => (s.unlocked ? props.onUnlocked() : setState(s)),
      (e: unknown) => setLoadError(toUserError(e)),
    );
  }, []);
  useEffect(() => {
    if (state && !busy) first.current?.focus();
  }, [state, busy]);

  if (loadError)
    return (
      <section class="panel unlock" style={FRAME} aria-labelledby="unlock-h" data-testid="unlock">
        <h1 id="unlock-h">Custodian cannot open its cache</h1>
        <div class="callout callout--error" role="alert" data-testid="unlock-error">
          <strong>{loadError.message}</strong> <ErrorCodeTag code={loadError.code} />
        </div>
      </section>
    );
  if (!state)
    return (
      <section class="panel unlock" style={FRAME} aria-busy="true" data-testid="unlock">
        <p class="muted">Loading…</p>
      </section>
    );

  const choosing = state.new_cache;
  const submit = (e: Event) => {
    e.preventDefault();
    if (busy) return;
    if (choosing) {
      if ([...pass].length < state.min_length) {
        setError(`The passphrase is too short: use at least ${state.min_length} characters. A few unrelated words are easier to remember.`);
        return;
      }
      if (pass !== again) {
        setError('The two passphrases are not the same. Type the same passphrase in both fields.');
        return;
      }
    } else if (!pass) {
      setError('Enter the passphrase.');
      return;
    }
    setError(null);
    setBusy(true);
    api.unlock(pass, choosing ? again : null).then(
      () => {
        setPass('');
        setAgain('');
        setBusy(false);
        // Who am I failed with the same error while the cache was locked.
        void refreshWhoAmI();
        props.onUnlocked();
      },
      (e: unknown) => {
        const u = toUserError(e);
        setBusy(false);
        setPass('');
        setAgain('');
        setError(u.code === 'database_unreadable' && !choosing ? 'That passphrase does not open this cache. Check it and try again.' : u.message);
      },
    );
  };

  return (
    <section class="panel unlock" style={FRAME} aria-labelledby="unlock-h" data-testid="unlock" data-mode={choosing ? 'choose' : 'enter'}>
      <h1 id="unlock-h">{choosing ? 'Choose a passphrase for Custodian' : 'Unlock Custodian'}</h1>
      {choosing ? (
        <p data-testid="unlock-explain">
          Custodian keeps its data encrypted on this computer. Its key usually lives in the system keyring, but no keyring
          (Secret Service, such as GNOME Keyring) is running in this session. Choose a passphrase instead: Custodian asks for it
          each time it starts. <strong>It cannot be recovered.</strong> If you forget it, the local data cannot be opened and has
          to be rebuilt from your sources; reviews and the audit log kept only here would be lost.
        </p>
      ) : (
        <p data-testid="unlock-explain">
          The local data is encrypted with a passphrase{props.reason?.code === 'keyring' ? ' (no system keyring is available)' : ''}. Enter it to
          continue.
        </p>
      )}
      <p class="muted">
        Cache: <code>{state.location}</code>
      </p>
      <form onSubmit={submit} noValidate>
        <label class={`field${error ? ' field--invalid' : ''}`}>
          <span class="field__label">{choosing ? 'New passphrase' : 'Passphrase'}</span>
          <input
            ref={first}
            class="input"
            type="password"
            data-testid="unlock-passphrase"
            autocomplete={choosing ? 'new-password' : 'current-password'}
            value={pass}
            disabled={busy}
            aria-invalid={error ? true : undefined}
            aria-describedby={error ? 'unlock-msg' : choosing ? 'unlock-hint' : undefined}
            onInput={(e) => setPass((e.target as HTMLInputElement).value)}
          />
          {choosing && (
            <span class="field__hint" id="unlock-hint">
              At least {state.min_length} characters.
            </span>
          )}
        </label>
        {choosing && (
          <label class={`field${error ? ' field--invalid' : ''}`}>
            <span class="field__label">The same passphrase again</span>
            <input
              class="input"
              type="password"
              data-testid="unlock-confirm"
              autocomplete="new-password"
              value={again}
              disabled={busy}
              aria-invalid={error ? true : undefined}
              onInput={(e) => setAgain((e.target as HTMLInputElement).value)}
            />
          </label>
        )}
        {error && (
          <div class="callout callout--error" role="alert" id="unlock-msg" data-testid="unlock-error">
            {error}
          </div>
        )}
        {busy && (
          <p role="status" data-testid="unlock-busy">
            <progress aria-label="Deriving the key" /> {choosing ? 'Creating the encrypted cache…' : 'Checking the passphrase…'}
          </p>
        )}
        <div class="form-actions">
          <button type="submit" class="button button--primary" data-testid="unlock-submit" disabled={busy}>
            {choosing ? 'Create and open' : 'Unlock'}
          </button>
        </div>
      </form>
    </section>
  );
}
