// @vitest-environment jsdom
// The Settings view (who I am, the connection form with its write-only
// password), role-hidden menus, the unreachable banner, and a database
// refusal shown with its code.
import { fireEvent, render, screen, waitFor } from '@testing-library/preact';
import { describe, expect, it } from 'vitest';
import type { RoleView } from '../bindings';
import { useMocks } from '../test/dom';
import { createMockConnection, MOCK_PASSWORD, setConnectionApi } from '../lib/connection';
import { Reviews } from './Reviews';
import { createMockOffboarding, setOffboardingApi } from '../lib/offboarding';
import { App } from '../app';
import { Settings } from './Settings';
import { Team } from './Team';

const input = (testid: string) => screen.getByTestId(testid) as HTMLInputElement;
const type = (testid: string, value: string) => fireEvent.input(input(testid), { target: { value } });
const found = (selector: string) =>
  waitFor(() => {
    const el = document.querySelector<HTMLElement>(selector);
    if (!el) throw new Error(`no ${selector}`);
    return el;
  });

describe('Settings: who I am', () => {
  it('solo: the claimed person, every role, the OS account and the "Who are you?" switch', async () => {
    const { reviews } = useMocks();
    await reviews.setActingPerson(1);
    render(<Settings />);
    await waitFor(() => expect(screen.getByTestId('who-person').textContent).toContain('Maya Weber'));
    expect(screen.getByTestId('who-claimed').textContent).toContain('claimed at this desk by the account maya');
    expect(screen.getByTestId('who-mode').textContent).toContain('Solo');
    expect(screen.getByTestId('who-engine').textContent).toContain('SQLite');
    expect(screen.getByTestId('who-roles').textContent).toContain('every role');
    expect(screen.queryByTestId('who-login')).toBeNull();
    fireEvent.click(screen.getByTestId('who-change'));
    fireEvent.click(await found('[data-testid=person-option][data-id="2"]'));
    await waitFor(() => expect(screen.getByTestId('who-person').textContent).toContain('Noah Ibrahim'));
    expect((await reviews.actingPerson())?.id).toBe(2);
  });

  it('workspace: the member behind the login, roles as badges, no switch', async () => {
    useMocks({ roles: ['reviewer', 'manager'] });
    render(<Settings />);
    await waitFor(() => expect(screen.getAllByTestId('role-badge')).toHaveLength(2));
    expect(screen.getAllByTestId('role-badge').map((b) => b.textContent)).toEqual(['Reviewer', 'Manager']);
    expect(screen.getByTestId('who-person').textContent).toContain('Maya Weber');
    expect(screen.getByTestId('who-login').textContent).toBe('maya.weber');
    expect(screen.getByTestId('who-mode').textContent).toContain('Team workspace');
    expect(screen.queryByTestId('who-claimed')).toBeNull();
    expect(screen.queryByTestId('who-change')).toBeNull();
  });
});

describe('Settings: the connection form', () => {
  it('validates before any round trip, naming the field', async () => {
    useMocks();
    render(<Settings />);
    fireEvent.click(await waitFor(() => screen.getByTestId('conn-mode-workspace')));
    const error = async () => (await found('[data-testid=conn-error]')).textContent ?? '';
    fireEvent.click(screen.getByTestId('test-connection'));
    expect(await error()).toContain("Enter the PostgreSQL server's name or address");
    expect(screen.getByTestId('error-code').textContent).toBe('invalid_input');
    type('conn-host', 'pg.example.com');
    type('conn-port', '70000');
    fireEvent.click(screen.getByTestId('save-connection'));
    await waitFor(() => expect(screen.getByTestId('conn-error').textContent).toContain('1 to 65535'));
    type('conn-port', '5432');
    type('conn-login', 'maya weber');
    fireEvent.click(screen.getByTestId('save-connection'));
    await waitFor(() => expect(screen.getByTestId('conn-error').textContent).toContain('The login is'));
    type('conn-login', 'maya');
    fireEvent.change(screen.getByTestId('conn-tls'), { target: { value: 'disable' } });
    fireEvent.click(screen.getByTestId('save-connection'));
    await waitFor(() => expect(screen.getByTestId('conn-error').textContent).toContain('only for this computer'));
    type('conn-host', 'localhost');
    fireEvent.click(screen.getByTestId('test-connection'));
    // Valid now: the (mock) server answers, and refuses the missing password with its code.
    await waitFor(() => expect(screen.getByTestId('error-code').textContent).toBe('database_auth'));
    expect(screen.getByTestId('conn-error').textContent).toContain('The workspace refused the login');
  });

  it('the password is write-only: never prefilled, never rendered back, "saved in the keyring" instead', async () => {
    const { connection } = useMocks();
    render(<Settings />);
    fireEvent.click(await waitFor(() => screen.getByTestId('conn-mode-workspace')));
    type('conn-host', 'pg.example.com');
    type('conn-login', 'maya.weber');
    expect(input('conn-password').value).toBe('');
    expect(input('conn-password').type).toBe('password');
    type('conn-password', MOCK_PASSWORD);
    fireEvent.click(screen.getByTestId('test-connection'));
    await waitFor(() => expect(screen.getByTestId('conn-ok').textContent).toContain('Connected as Maya Weber'));
    fireEvent.click(screen.getByTestId('save-connection'));
    await waitFor(() => expect(screen.getByTestId('conn-ok').textContent).toContain('Saved and reconnected'));
    expect(connection.savedPassword).toBe(true);
    expect(input('conn-password').value).toBe('');
    expect(input('conn-password').placeholder).toBe('saved in the keyring');
    expect(screen.getByTestId('conn-password-hint').textContent).toContain('saved in the keyring');
    expect(document.body.innerHTML).not.toContain(MOCK_PASSWORD);
  });

  it('opened again with a saved workspace, the password field stays empty', async () => {
    useMocks({ roles: ['reviewer'] });
    render(<Settings />);
    await waitFor(() => expect(input('conn-host').value).toBe('pg.example.com'));
    expect(input('conn-password').value).toBe('');
    expect(input('conn-password').placeholder).toBe('saved in the keyring');
    expect(document.body.innerHTML).not.toContain(MOCK_PASSWORD);
  });
});

const visibleNav = () => [...document.querySelectorAll('[data-testid^=nav-]')].map((a) => a.getAttribute('data-testid')?.slice(4));

async function navFor(roles: RoleView[] | null): Promise<(string | undefined)[]> {
  useMocks({ size: 50, roles });
  location.hash = '#/settings';
  render(<App />);
  await found('[data-testid=who-mode]');
  return visibleNav();
}

describe('role-hidden menus', () => {
  it('solo: everything shows', async () => {
    expect(await navFor(null)).toEqual(['inventory', 'sources', 'reviews', 'campaigns', 'team', 'posture', 'settings']);
  });

  it('reviewer: My reviews, not Sources, Campaigns or My team', async () => {
    expect(await navFor(['reviewer'])).toEqual(['inventory', 'reviews', 'posture', 'settings']);
  });

  it('admin: Sources, not My reviews', async () => {
    expect(await navFor(['admin'])).toEqual(['inventory', 'sources', 'posture', 'settings']);
  });

  it('auditor: every view, and no button that changes something', async () => {
    expect(await navFor(['auditor'])).toEqual(['inventory', 'sources', 'reviews', 'campaigns', 'team', 'posture', 'settings']);
    location.hash = '#/sources';
    window.dispatchEvent(new HashChangeEvent('hashchange'));
    await found('[data-testid=source-row]');
    expect(screen.queryByTestId('add-source-open')).toBeNull();
    expect(screen.queryByTestId('source-sync')).toBeNull();
    location.hash = '#/campaigns';
    window.dispatchEvent(new HashChangeEvent('hashchange'));
    await found('[data-testid=campaigns]');
    await waitFor(() => expect(screen.queryByText('Loading…')).toBeNull());
    expect(screen.queryByTestId('new-campaign')).toBeNull();
    expect(screen.queryByTestId('first-campaign')).toBeNull();
    location.hash = '#/identity/1';
    window.dispatchEvent(new HashChangeEvent('hashchange'));
    await found('[data-testid=identity-lifecycle]');
    expect(screen.queryByRole('button', { name: 'Retire' })).toBeNull();
    expect(screen.queryByPlaceholderText('Why retire it?')).toBeNull();
  });

  it('solo: the identity page keeps its governance buttons', async () => {
    await navFor(null);
    location.hash = '#/identity/1';
    window.dispatchEvent(new HashChangeEvent('hashchange'));
    await found('[data-testid=identity-lifecycle]');
    expect(screen.getByRole('button', { name: 'Retire' })).toBeTruthy();
  });

  it('admin sees the Sources buttons the auditor does not', async () => {
    await navFor(['admin']);
    location.hash = '#/sources';
    window.dispatchEvent(new HashChangeEvent('hashchange'));
    await found('[data-testid=source-row]');
    expect(screen.getByTestId('add-source-open')).toBeTruthy();
    expect(screen.getAllByTestId('source-sync').length).toBeGreaterThan(0);
  });
});

describe('refusals and an unreachable workspace', () => {
  it('a refusal from the database is shown readably, with its code', async () => {
    const { reviews } = useMocks({ roles: ['reviewer'] });
    await reviews.setActingPerson(1);
    setOffboardingApi({
      ...createMockOffboarding(),
      myTeam: async () => {
        throw { code: 'forbidden', message: 'database error [42501]: permission denied for table offboarding_cases' };
      },
    });
    render(<Team />);
    const box = await found('[data-testid=team-error]');
    expect(box.getAttribute('role')).toBe('alert');
    expect(box.textContent).toContain('The workspace does not allow this for your login');
    expect(box.textContent).toContain('permission denied for table offboarding_cases');
    expect(box.querySelector('[data-testid=error-code]')?.textContent).toBe('forbidden');
  });

  it('says the workspace is unreachable, with Retry, and Retry reconnects', async () => {
    useMocks({ size: 50, roles: ['reviewer'], unreachable: true });
    location.hash = '#/inventory';
    render(<App />);
    const banner = await found('[data-testid=unreachable-banner]');
    expect(banner.textContent).toContain('Team workspace unreachable: cannot connect to postgresql://maya.weber@pg.example.com');
    expect(banner.textContent).toContain('Nothing is queued');
    expect(banner.querySelector('[data-testid=error-code]')?.textContent).toBe('network');
    fireEvent.click(screen.getByTestId('unreachable-retry'));
    await waitFor(() => expect(screen.queryByTestId('unreachable-banner')).toBeNull());
    expect(visibleNav()).toContain('reviews');
  });
});

describe('the offline snapshot', () => {
  it('says the workspace is unreachable and what is shown, offers no change, and Retry goes back online', async () => {
    useMocks({ size: 50, roles: ['reviewer'], snapshot: true });
    location.hash = '#/reviews';
    render(<App />);
    const banner = await found('[data-testid=snapshot-banner]');
    expect(banner.textContent).toContain('Team workspace unreachable: showing your offline snapshot, read-only');
    expect(banner.textContent).toContain('What maya.weber could read at postgresql://maya.weber@pg.example.com:5432/custodian');
    expect(banner.textContent).toContain('2026-11-30T17:45:00Z');
    expect(banner.textContent).toContain('nothing is queued');
    expect(banner.querySelector('[data-testid=error-code]')?.textContent).toBe('read_only');
    expect(screen.queryByTestId('unreachable-banner')).toBeNull();
    // The reviewer's queue is there to read, without a decision button.
    expect(visibleNav()).toContain('reviews');
    await found('[data-testid=queue-row]');
    const pending = screen.getByTestId('queue-pending').textContent;
    fireEvent.keyDown(screen.getByTestId('queue'), { key: 'a' });
    expect((await found('[data-testid=review-notice]')).textContent).toContain('this is your offline snapshot. Nothing was decided or queued');
    expect(screen.getByTestId('queue-pending').textContent).toBe(pending);
    fireEvent.click(screen.getByTestId('unreachable-retry'));
    await waitFor(() => expect(screen.queryByTestId('snapshot-banner')).toBeNull());
  });
});

describe('no "Who are you?" in a workspace', () => {
  it('a login with no active member is told so, and offered no picker', async () => {
    useMocks();
    const base = createMockConnection({ roles: ['reviewer'], reviews: { actingPerson: async () => null, setActingPerson: async () => Promise.reject(new Error('no')), findPeople: async () => [] } });
    setConnectionApi({ ...base, whoAmI: async () => ({ ...(await base.whoAmI()), person: null, roles: [] }) });
    render(<Reviews />);
    const box = await found('[data-testid=not-a-member]');
    expect(box.textContent).toContain('(maya.weber)');
    expect(screen.queryByTestId('person-picker')).toBeNull();
  });

  it('solo mode still asks', async () => {
    useMocks();
    render(<Reviews />);
    await found('[data-testid=person-picker]');
    expect(screen.queryByTestId('not-a-member')).toBeNull();
  });
});
