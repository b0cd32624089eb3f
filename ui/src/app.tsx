import type { ComponentType } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import type { OrgSummary } from './bindings';
import { ago, formatCount, plural } from './lib/format';
import { api, errorHeadline, notifyDataChanged, onDataChanged, toUserError, usingMock, type UserError } from './lib/ipc';
import { parseRoute, type Route } from './lib/route';
import { IdentityDetail } from './views/IdentityDetail';
import { Inventory } from './views/Inventory';
import { Campaigns } from './views/Campaigns';
import { Posture } from './views/Posture';
import { Reviews } from './views/Reviews';
import { Sources } from './views/Sources';
import { Team } from './views/Team';
import { Settings } from './views/Settings';
import { Unlock } from './views/Unlock';
import { SignIn } from './views/SignIn';
import { ErrorCodeTag } from './components/ErrorCallout';
import { isUnreachable, reconnect, useCapabilities, useWhoAmI } from './lib/connection';
import type { NavItem } from './lib/roles';
import { Page } from './components/Page';
import { ShortcutButton, ShortcutHelp, useShortcutHelp } from './components/ShortcutHelp';

function useRoute(): Route {
  const [route, setRoute] = useState<Route>(() => parseRoute(location.hash));
  useEffect(() => {
    const on = () => setRoute(parseRoute(location.hash));
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return route;
}


const TITLES: Record<Route['name'], string> = {
  inventory: 'Inventory',
  identity: 'Identity',
  sources: 'Sources',
  reviews: 'My reviews',
  campaigns: 'Campaigns',
  team: 'My team',
  posture: 'Posture',
  settings: 'Settings',
  blast: 'Blast radius',
  not_found: 'Not found',
};

/** The side navigation, in order; each entry shows only when the role set allows it (lib/roles.ts). */
const NAV: { item: NavItem; label: string; active: Route['name'][] }[] = [
  { item: 'inventory', label: 'Inventory', active: ['inventory', 'identity'] },
  { item: 'sources', label: 'Sources', active: ['sources'] },
  { item: 'reviews', label: 'My reviews', active: ['reviews'] },
  { item: 'campaigns', label: 'Campaigns', active: ['campaigns'] },
  { item: 'team', label: 'My team', active: ['team'] },
  { item: 'posture', label: 'Posture', active: ['posture', 'blast'] },
  { item: 'settings', label: 'Settings', active: ['settings'] },
];

export function App() {
  const route = useRoute();
  const caps = useCapabilities();
  const { who, error: whoError } = useWhoAmI();
  const snapshot = who?.snapshot ?? null;
  const [retrying, setRetrying] = useState(false);
  const retry = () => {
    setRetrying(true);
    reconnect()
      .then(
        () => notifyDataChanged(),
        () => undefined,
      )
      .finally(() => setRetrying(false));
  };
  const help = useShortcutHelp();
  const [summary, setSummary] = useState<OrgSummary | null>(null);
  const [summaryError, setSummaryError] = useState<UserError | null>(null);
  // The workspace did not answer (who am I, or the summary): one banner with Retry.
  const unreachable = isUnreachable(whoError) ? whoError : isUnreachable(summaryError) ? summaryError : null;
  // The workspace refused the login (no password on this computer yet, or a
  // wrong one): the sign-in takes the place of every view.
  const signedOut = whoError?.code === 'database_auth' ? whoError : summaryError?.code === 'database_auth' ? summaryError : null;
  const showSignIn = signedOut !== null && route.name !== 'settings';

  useEffect(() => {
    // Only the latest request may set the summary: a reload after a sync can
    // overtake the first load.
    let latest = 0;
    const load = () => {
      const n = ++latest;
      api.summary().then(
        (s) => {
          if (n !== latest) return;
          setSummary(s);
          setSummaryError(null);
        },
        (e: unknown) => n === latest && setSummaryError(toUserError(e)),
      );
    };
    load();
    return onDataChanged(load);
  }, []);

  useEffect(() => {
    document.title =
      route.name === 'identity' ? `Identity ${route.id} · Custodian` : route.name === 'blast' ? `Blast radius ${route.id} · Custodian` : `${TITLES[route.name]} · Custodian`;
  }, [route]);

  // No OS keyring, or a passphrase-keyed cache: ask for the passphrase (views/Unlock.tsx).
  if (summaryError?.code === 'keyring')
    return <Unlock reason={summaryError} onUnlocked={() => { setSummaryError(null); notifyDataChanged(); }} />;

  return (
    <div class="app">
      <header class="topbar">
        <a class="brand" href="#/inventory">
          <svg class="brand__mark" viewBox="0 0 20 20" aria-hidden="true">
            <path d="M10 1.5 17 4v5.2c0 4.3-2.9 7.7-7 9.3-4.1-1.6-7-5-7-9.3V4z" />
            <path class="brand__check" d="m6.6 10 2.4 2.4 4.4-4.8" />
          </svg>
          Custodian
        </a>
        {signedOut ? <div class="summary" /> : <SummaryBar summary={summary} />}
        {usingMock() && (
          <span class="mock-badge" title="Running outside the desktop app: data comes from the in-browser mock backend">
            Mock data
          </span>
        )}
        <ShortcutButton open={help.open} onToggle={help.toggle} />
      </header>
      <nav class="sidenav" aria-label="Main" aria-busy={who === undefined || undefined} data-testid="sidenav">
        {/* The nav follows the roles: drawn once the store has said who this is (so an item does not move under a click); only Settings while signed out. */}
        {NAV.filter((n) => (signedOut ? n.item === 'settings' : who !== undefined && caps.nav.has(n.item))).map((n) => (
          <a
            key={n.item}
            class={`sidenav__item${n.active.includes(route.name) ? ' is-active' : ''}`}
            href={`#/${n.item}`}
            data-testid={`nav-${n.item}`}
            aria-current={route.name === n.item ? 'page' : undefined}
          >
            {n.label}
            {summary && n.item === 'inventory' && <span class="sidenav__count">{formatCount(summary.identities)}</span>}
            {summary && n.item === 'sources' && <span class="sidenav__count">{formatCount(summary.sources.length)}</span>}
          </a>
        ))}
      </nav>
      <main class="main">
        {unreachable && (
          <div class="callout callout--error unreachable" role="alert" data-testid="unreachable-banner">
            <strong>Team workspace unreachable: {unreachable.message}</strong> <ErrorCodeTag code={unreachable.code} />
            <p>
              Nothing is queued: what you do now is not kept until the workspace answers again.{' '}
              <button class="button" data-testid="unreachable-retry" disabled={retrying} onClick={retry}>
                {retrying ? 'Retrying…' : 'Retry'}
              </button>{' '}
              <a href="#/settings">Connection settings</a>
            </p>
          </div>
        )}
        {snapshot && !unreachable && (
          <div class="callout callout--warning unreachable" role="status" data-testid="snapshot-banner">
            <strong>Team workspace unreachable: showing your offline snapshot, read-only</strong> <ErrorCodeTag code="read_only" />
            <p>
              What {snapshot.login} could read at {snapshot.of}, taken {ago(snapshot.taken_at, Date.now())} ({snapshot.taken_at}). Nothing can be
              changed and nothing is queued: decisions and changes wait until the workspace answers again.{' '}
              <button class="button" data-testid="unreachable-retry" disabled={retrying} onClick={retry}>
                {retrying ? 'Retrying…' : 'Retry'}
              </button>{' '}
              <a href="#/settings">Connection settings</a>
            </p>
          </div>
        )}
        {showSignIn && signedOut && <SignIn reason={signedOut} />}
        {summaryError && !unreachable && !signedOut && (
          <div class="callout callout--error" role="alert">
            <strong>{errorHeadline(summaryError.code)}</strong> <ErrorCodeTag code={summaryError.code} />
            <p>{summaryError.message}</p>
          </div>
        )}
        {!showSignIn && (
          <>
          {route.name === 'inventory' && <Inventory />}
          {route.name === 'identity' && <IdentityDetail id={route.id} />}
          {route.name === 'sources' && <Sources />}
          {route.name === 'reviews' && <Reviews />}
          {route.name === 'campaigns' && <Campaigns />}
          {route.name === 'team' && <Team />}
          {route.name === 'posture' && <Posture />}
          {route.name === 'settings' && <Settings />}
          {route.name === 'blast' && <LazyBlast id={route.id} />}
          {route.name === 'not_found' && (
            <Page title="Not found">
              <div class="callout">
                <strong>Nothing at {route.path}</strong>
                <p>
                  <a href="#/inventory">Go to the inventory</a>
                </p>
              </div>
            </Page>
          )}
          </>
        )}
      </main>
      <ShortcutHelp open={help.open} onToggle={help.toggle} onClose={help.close} />
    </div>
  );
}

/** The blast page and its graph layout library load on first use (a separate chunk). */
function LazyBlast({ id }: { id: number }) {
  const [View, setView] = useState<ComponentType<{ id: number }> | null>(null);
  const [failed, setFailed] = useState<string | null>(null);
  useEffect(() => {
    import('./views/Blast').then(
      (m) => setView(() => m.Blast),
      (e: unknown) => setFailed(String(e)),
    );
  }, []);
  if (failed)
    return (
      <Page title="Blast radius">
        <div class="callout callout--error" role="alert">
          <strong>The blast radius page could not be loaded</strong>
          <p>{failed}</p>
        </div>
      </Page>
    );
  if (!View)
    return (
      <Page title="Blast radius" busy>
        <p class="muted">Loading…</p>
      </Page>
    );
  return <View id={id} />;
}

function SummaryBar({ summary }: { summary: OrgSummary | null }) {
  if (!summary) return <div class="summary summary--loading">Loading…</div>;
  const items: [string, number][] = [
    ['identities', summary.identities],
    ['people', summary.people],
    ['credentials', summary.credentials],
    ['grants', summary.grants],
    ['findings', summary.findings],
  ];
  return (
    <div class="summary" title={summary.database ?? 'In-memory database'}>
      {summary.dataset && <span class="summary__dataset">{summary.dataset}</span>}
      <span class="summary__sources" title={summary.sources.join('\n')}>
        {plural(summary.sources.length, 'source')}
      </span>
      {items.map(([label, n]) => (
        <span class="summary__item" key={label}>
          <b>{formatCount(n)}</b> {label}
        </span>
      ))}
    </div>
  );
}
