// The workspace sign-in: the app opens a team workspace whose login has no
// password here yet (first run on this computer), or the server refused the
// one it has. Instead of an error, the member signs in: the login and server
// are shown, the password is typed, checked by connecting, and kept in the
// OS keyring ("Remember") or until the app quits. A password only goes in.

import { useEffect, useRef, useState } from 'preact/hooks';
import type { SignInTarget } from '../bindings';
import { connection, signIn } from '../lib/connection';
import { notifyDataChanged, toUserError, UserError } from '../lib/ipc';
import { ErrorCodeTag } from '../components/ErrorCallout';
import { Page } from '../components/Page';

/** Words for a refused sign-in, by its code (the core's message follows). */
export function signInHeadline(e: UserError): string {
  switch (e.code) {
    case 'database_auth':
      return 'The server refused this password';
    case 'forbidden':
      return 'This login is not a member of the workspace';
    case 'network':
      return 'The workspace could not be reached';
    case 'keyring':
      return 'The password could not be kept in the keyring';
    default:
      return 'Could not sign in';
  }
}

export function SignIn(props: { reason: UserError }) {
  const [target, setTarget] = useState<SignInTarget | null | undefined>(undefined);
  const [password, setPassword] = useState('');
  const [remember, setRemember] = useState(true);
  const [error, setError] = useState<UserError | null>(null);
  const [busy, setBusy] = useState(false);
  const input = useRef<HTMLInputElement>(null);

  useEffect(() => {
    connection.signInTarget().then(setTarget, () => setTarget(null));
  }, []);
  useEffect(() => {
    if (target && !busy) input.current?.focus();
  }, [target, busy]);

  const submit = (e: Event) => {
    e.preventDefault();
    if (busy) return;
    if (!password) {
      setError(new UserError('invalid_input', 'Type the password of your workspace login.'));
      return;
    }
    setBusy(true);
    setError(null);
    signIn(password, remember).then(
      () => {
        setPassword('');
        setBusy(false);
        notifyDataChanged();
      },
      (err: unknown) => {
        setPassword('');
        setBusy(false);
        setError(toUserError(err));
      },
    );
  };

  if (target === undefined) return <Page title="Sign in to the team workspace" busy testid="sign-in" />;
  if (target === null || target.password_in_location)
    // Nothing to sign in to here: say what the app was told.
    return (
      <Page title="The team workspace refused the login" testid="sign-in">
        <div class="callout callout--error" role="alert" data-testid="sign-in-reason">
          <strong>{props.reason.message}</strong> <ErrorCodeTag code={props.reason.code} />
          <p>
            {target?.password_in_location ? 'The location in CUSTODIAN_DB carries its own password: correct it there. ' : ''}
            <a href="#/settings">Connection settings</a>
          </p>
        </div>
      </Page>
    );

  return (
    <Page
      title="Sign in to the team workspace"
      lead="Your team keeps its reviews, cases and audit trail in one shared workspace. PostgreSQL checks who you are, so every decision carries your own login."
      testid="sign-in"
      busy={busy}
    >
      <section class="panel sign-in" aria-label="Sign in">
        <dl class="sign-in__facts">
          <dt>Login</dt>
          <dd data-testid="sign-in-login">
            <b>{target.login}</b>
          </dd>
          <dt>Workspace</dt>
          <dd data-testid="sign-in-address">
            <code>{target.address}</code>
          </dd>
        </dl>
        <form onSubmit={submit} noValidate data-testid="sign-in-form">
          <label class={`field${error ? ' field--invalid' : ''}`}>
            <span class="field__label">Password</span>
            <input
              ref={input}
              class="input"
              type="password"
              data-testid="sign-in-password"
              autocomplete="current-password"
              value={password}
              disabled={busy}
              aria-invalid={error ? true : undefined}
              aria-describedby={error ? 'sign-in-msg' : undefined}
              onInput={(e) => setPassword((e.target as HTMLInputElement).value)}
            />
          </label>
          <label class="field field--check">
            <input type="checkbox" data-testid="sign-in-remember" checked={remember} disabled={busy} onChange={() => setRemember(!remember)} />
            <span>Remember on this computer (in the OS keyring); otherwise until Custodian quits</span>
          </label>
          {error && (
            <div class="callout callout--error" role="alert" id="sign-in-msg" data-testid="sign-in-error">
              <strong>{signInHeadline(error)}</strong> <ErrorCodeTag code={error.code} />
              <p>{error.message}</p>
            </div>
          )}
          {busy && (
            <p role="status" data-testid="sign-in-busy">
              <progress aria-label="Signing in" /> Connecting as {target.login}…
            </p>
          )}
          <div class="form-actions">
            <button type="submit" class="button button--primary" data-testid="sign-in-submit" disabled={busy}>
              Sign in
            </button>
            <a href="#/settings">Connection settings</a>
          </div>
        </form>
        <p class="muted sign-in__why" data-testid="sign-in-why">
          Why now: {props.reason.message}
        </p>
      </section>
    </Page>
  );
}
