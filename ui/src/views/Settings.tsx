import { useEffect, useState } from 'preact/hooks';
import type { ConnectionSettings, ConnectionSettingsView, TlsMode, WhoAmI } from '../bindings';
import { notifyDataChanged, toUserError, type UserError } from '../lib/ipc';
import { connection, DEFAULT_SETTINGS, reconnect, refreshWhoAmI, useWhoAmI, validateSettings } from '../lib/connection';
import { roleLabel } from '../lib/roles';
import { Page } from '../components/Page';
import { ErrorCallout } from '../components/ErrorCallout';
import { WhoAreYou } from '../components/WhoAreYou';

const TLS: { value: TlsMode; label: string }[] = [
  { value: 'verify-full', label: 'Verify the certificate and the host name (verify-full)' },
  { value: 'verify-ca', label: 'Verify the certificate only (verify-ca)' },
  { value: 'require', label: 'Encrypt, verify nothing (require)' },
  { value: 'disable', label: 'No TLS: this computer only (disable)' },
];

/** Connection errors get headlines about the workspace, not about a source. */
function connectionHeadline(e: UserError): string | undefined {
  switch (e.code) {
    case 'network':
      return 'The team workspace could not be reached (or TLS failed)';
    case 'database_auth':
      return 'The workspace refused the login';
    case 'forbidden':
      return 'This login may not use the workspace';
    case 'invalid_input':
      return 'Check the connection settings';
    default:
      return undefined;
  }
}

/** Who I am: the person, the login, the roles, where. */
function WhoIAm({ who, error }: { who: WhoAmI | null | undefined; error: UserError | null }) {
  const [choosing, setChoosing] = useState(false);
  if (who === undefined && !error) return <p class="muted">Loading…</p>;
  return (
    <section class="panel settings-who" aria-labelledby="who-i-am-h" data-testid="who-i-am">
      <h2 id="who-i-am-h">Who I am</h2>
      <ErrorCallout error={error} testid="who-error" headline={error ? connectionHeadline(error) : undefined} />
      {who && (
        <dl class="settings-who__facts">
          <dt>Person</dt>
          <dd data-testid="who-person">
            {who.person ? (
              <>
                <b>{who.person.display_name}</b> <span class="muted">{who.person.email}</span>
              </>
            ) : who.mode === 'solo' ? (
              'Nobody chosen yet'
            ) : (
              'This login is not an active workspace member'
            )}
            {who.claimed && who.person && (
              <span class="muted" data-testid="who-claimed">
                {' '}
                (claimed at this desk{who.os_account ? ` by the account ${who.os_account}` : ''}, not authenticated)
              </span>
            )}
          </dd>
          {who.login !== null && (
            <>
              <dt>Login</dt>
              <dd data-testid="who-login">
                <code>{who.login}</code>
              </dd>
            </>
          )}
          <dt>Roles</dt>
          <dd data-testid="who-roles">
            {who.mode === 'solo' ? <span class="muted">every role (solo mode) </span> : who.roles.length === 0 && <span class="muted">none</span>}
            {who.mode !== 'solo' &&
              who.roles.map((r) => (
                <span class="badge badge--info" key={r} data-testid="role-badge" data-role={r}>
                  {roleLabel(r)}
                </span>
              ))}
          </dd>
          <dt>Mode</dt>
          <dd data-testid="who-mode">{who.mode === 'solo' ? 'Solo (this computer)' : 'Team workspace'}</dd>
          <dt>Engine</dt>
          <dd data-testid="who-engine">{who.engine === 'sqlite' ? 'SQLite (local cache)' : 'PostgreSQL'}</dd>
          <dt>Location</dt>
          <dd data-testid="who-location">
            <code>{who.location}</code>
          </dd>
        </dl>
      )}
      {who && who.mode === 'solo' && !choosing && (
        <button class="button" data-testid="who-change" onClick={() => setChoosing(true)}>
          {who.person ? 'Change who I am' : 'Choose who I am'}
        </button>
      )}
      {who && who.mode === 'solo' && choosing && (
        <WhoAreYou
          why="In solo mode you say who you are; the audit log records that claim and this computer's account."
          onChosen={() => {
            setChoosing(false);
            void refreshWhoAmI();
          }}
        />
      )}
    </section>
  );
}

type Status = { kind: 'error'; error: UserError; field: keyof ConnectionSettings | null } | { kind: 'ok'; text: string } | null;

/** The connection form: solo or a team workspace; the password is write-only. */
function ConnectionForm() {
  const [view, setView] = useState<ConnectionSettingsView | null>(null);
  const [loadError, setLoadError] = useState<UserError | null>(null);
  const [s, setS] = useState<ConnectionSettings>(DEFAULT_SETTINGS);
  const [portText, setPortText] = useState(String(DEFAULT_SETTINGS.port));
  // Only what the user types now; never read back from anywhere.
  const [password, setPassword] = useState('');
  const [status, setStatus] = useState<Status>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    connection.settings().then(
      (v) => {
        setView(v);
        setS(v.settings);
        setPortText(String(v.settings.port));
      },
      (e: unknown) => setLoadError(toUserError(e)),
    );
  }, []);

  const locked = view?.env_override != null;
  const current = (): ConnectionSettings => ({
    ...s,
    port: /^\d{1,6}$/.test(portText.trim()) ? Number(portText.trim()) : NaN,
    ca_file: s.ca_file !== null && s.ca_file.trim() !== '' ? s.ca_file.trim() : null,
  });
  const check = (): ConnectionSettings | null => {
    const c = current();
    const bad = validateSettings(c);
    if (bad) {
      setStatus({ kind: 'error', error: toUserError({ code: 'invalid_input', message: bad.message }), field: bad.field });
      return null;
    }
    return c;
  };
  const run = (f: () => Promise<void>) => {
    setBusy(true);
    setStatus(null);
    f()
      .catch((e: unknown) => setStatus({ kind: 'error', error: toUserError(e), field: null }))
      .finally(() => setBusy(false));
  };
  const test = () => {
    const c = check();
    if (!c) return;
    run(async () => {
      const who = await connection.test(c, password || null);
      setStatus({
        kind: 'ok',
        text: `Connected as ${who.person?.display_name ?? 'nobody'} (login ${who.login ?? '?'})${who.roles.length ? `, roles: ${who.roles.map(roleLabel).join(', ')}` : ''}.`,
      });
    });
  };
  const save = (e: Event) => {
    e.preventDefault();
    if (busy || locked) return;
    const c = check();
    if (!c) return;
    run(async () => {
      const v = await connection.save(c, c.mode === 'workspace' && password ? password : null);
      setView(v);
      setPassword('');
      const who = await reconnect();
      notifyDataChanged();
      setStatus({ kind: 'ok', text: who.mode === 'solo' ? 'Saved: the app uses the local cache.' : `Saved and reconnected as ${who.person?.display_name ?? who.login ?? 'nobody'}.` });
    });
  };
  const field = (name: keyof ConnectionSettings) => (status?.kind === 'error' && status.field === name ? ' field--invalid' : '');
  const text = (name: 'host' | 'database' | 'login', label: string, hint: string) => (
    <label class={`field${field(name)}`}>
      <span class="field__label">{label}</span>
      <input
        class="input"
        data-testid={`conn-${name}`}
        value={s[name]}
        disabled={locked}
        spellcheck={false}
        autocomplete="off"
        aria-invalid={field(name) ? true : undefined}
        onInput={(e) => setS({ ...s, [name]: (e.target as HTMLInputElement).value })}
      />
      <span class="field__hint">{hint}</span>
    </label>
  );

  return (
    <section class="panel settings-connection" aria-labelledby="conn-h">
      <h2 id="conn-h">Connection</h2>
      <ErrorCallout error={loadError} testid="conn-load-error" />
      {locked && (
        <div class="callout callout--info" data-testid="conn-env-override">
          <strong>CUSTODIAN_DB is set: the app uses {view?.env_override}.</strong>
          <p>These settings apply when it is unset; they are read-only until then.</p>
        </div>
      )}
      <form onSubmit={save} noValidate class="settings-connection__form" data-testid="connection-form">
        <fieldset class="settings-connection__mode" disabled={locked}>
          <legend class="field__label">Where Custodian keeps its data</legend>
          <label class="field--inline">
            <input type="radio" name="mode" data-testid="conn-mode-solo" checked={s.mode === 'solo'} onChange={() => setS({ ...s, mode: 'solo' })} /> Solo:
            the local cache on this computer
          </label>
          <label class="field--inline">
            <input
              type="radio"
              name="mode"
              data-testid="conn-mode-workspace"
              checked={s.mode === 'workspace'}
              onChange={() => setS({ ...s, mode: 'workspace' })}
            />{' '}
            Team workspace: a shared PostgreSQL database, each person with their own login
          </label>
        </fieldset>
        {s.mode === 'workspace' && (
          <>
            {text('host', 'Host', 'The PostgreSQL server, e.g. pg.internal.example.com')}
            <label class={`field${field('port')}`}>
              <span class="field__label">Port</span>
              <input
                class="input input--mid"
                data-testid="conn-port"
                inputMode="numeric"
                value={portText}
                disabled={locked}
                aria-invalid={field('port') ? true : undefined}
                onInput={(e) => setPortText((e.target as HTMLInputElement).value)}
              />
            </label>
            {text('database', 'Database', 'The workspace database, e.g. custodian')}
            {text('login', 'Login', 'Your own PostgreSQL login (the workspace maps it to you)')}
            <label class={`field${field('tls')}`}>
              <span class="field__label">TLS</span>
              <select
                class="select"
                data-testid="conn-tls"
                value={s.tls}
                disabled={locked}
                onChange={(e) => setS({ ...s, tls: (e.target as HTMLSelectElement).value as TlsMode })}
              >
                {TLS.map((t) => (
                  <option key={t.value} value={t.value}>
                    {t.label}
                  </option>
                ))}
              </select>
            </label>
            <label class={`field${field('ca_file')}`}>
              <span class="field__label">
                CA certificate <span class="field__optional"> optional</span>
              </span>
              <input
                class="input"
                data-testid="conn-ca"
                value={s.ca_file ?? ''}
                disabled={locked}
                spellcheck={false}
                placeholder="/etc/ssl/certs/company-ca.pem"
                onInput={(e) => setS({ ...s, ca_file: (e.target as HTMLInputElement).value })}
              />
              <span class="field__hint">The PEM file of the CA that signed the server's certificate; empty: the system's roots.</span>
            </label>
            <label class="field">
              <span class="field__label">Password</span>
              <input
                class="input"
                type="password"
                data-testid="conn-password"
                value={password}
                disabled={locked}
                autocomplete="new-password"
                spellcheck={false}
                placeholder={view?.password_saved ? 'saved in the keyring' : ''}
                onInput={(e) => setPassword((e.target as HTMLInputElement).value)}
              />
              <span class="field__hint" data-testid="conn-password-hint">
                {view?.password_saved
                  ? 'A password is saved in the keyring; type a new one to replace it.'
                  : 'Kept in the OS keyring (shared with `custodian db password`), never in a file; leave empty for a certificate or directory login.'}
              </span>
            </label>
          </>
        )}
        {status?.kind === 'error' && (
          <ErrorCallout error={status.error} testid="conn-error" headline={connectionHeadline(status.error)} />
        )}
        {status?.kind === 'ok' && (
          <div class="inline-ok" role="status" data-testid="conn-ok">
            {status.text}
          </div>
        )}
        <div class="form-actions">
          {s.mode === 'workspace' && (
            <button type="button" class="button" data-testid="test-connection" disabled={busy || locked} onClick={test}>
              Test connection
            </button>
          )}
          <button type="submit" class="button button--primary" data-testid="save-connection" disabled={busy || locked}>
            {busy ? 'Working…' : 'Save and reconnect'}
          </button>
        </div>
        {view?.file && (
          <p class="muted settings-connection__file">
            Saved in <code>{view.file}</code> (never a password).
          </p>
        )}
      </form>
    </section>
  );
}

export function Settings() {
  const { who, error } = useWhoAmI();
  return (
    <Page class="settings" testid="settings" title="Settings" lead="Who you are, and where Custodian keeps its data: this computer, or your team's workspace.">
      <WhoIAm who={who} error={error} />
      <ConnectionForm />
    </Page>
  );
}
