import { describe, expect, it } from 'vitest';
import type { RoleView } from '../bindings';
import { capabilities, ROLE_TABLE, type Action, type NavItem } from './roles';

const ws = (...roles: RoleView[]) => capabilities({ mode: 'workspace', roles });
const nav = (c: ReturnType<typeof capabilities>) => [...c.nav].sort();
const acts = (c: ReturnType<typeof capabilities>) => [...c.actions].sort();
const ALL_NAV: NavItem[] = ['campaigns', 'inventory', 'posture', 'reviews', 'settings', 'sources', 'team'];
const ALL_ACTIONS: Action[] = ['close_campaign', 'create_campaign', 'decide', 'manage_identities', 'manage_members', 'manage_sources', 'offboard'];

describe('role capabilities (the one table)', () => {
  it('solo mode, and a who-am-I not known yet, show everything', () => {
    for (const c of [capabilities({ mode: 'solo', roles: [] }), capabilities(null)]) {
      expect(nav(c)).toEqual(ALL_NAV);
      expect(acts(c)).toEqual(ALL_ACTIONS);
      expect(c.readOnly).toBe(false);
    }
  });

  it('a reviewer gets My reviews and deciding, nothing else to change', () => {
    const c = ws('reviewer');
    expect(nav(c)).toEqual(['inventory', 'posture', 'reviews', 'settings']);
    expect(acts(c)).toEqual(['decide']);
  });

  it('a campaign owner creates and closes campaigns; a manager acts on their reports', () => {
    expect(nav(ws('campaign_owner'))).toEqual(['campaigns', 'inventory', 'posture', 'settings']);
    expect(acts(ws('campaign_owner'))).toEqual(['close_campaign', 'create_campaign']);
    expect(nav(ws('manager'))).toEqual(['inventory', 'posture', 'settings', 'team']);
    expect(acts(ws('manager'))).toEqual(['offboard']);
  });

  it('an admin manages sources and members, and decides nothing', () => {
    const c = ws('admin');
    expect(nav(c)).toEqual(['inventory', 'posture', 'settings', 'sources']);
    expect(acts(c)).toEqual(['manage_identities', 'manage_members', 'manage_sources']);
    expect(c.actions.has('decide')).toBe(false);
  });

  it('an auditor reads every view and changes nothing', () => {
    const c = ws('auditor');
    expect(nav(c)).toEqual(ALL_NAV);
    expect(acts(c)).toEqual([]);
    expect(c.readOnly).toBe(true);
  });

  it('roles add up, and a login with no role (not a member) sees only the common views', () => {
    const c = ws('reviewer', 'manager');
    expect(acts(c)).toEqual(['decide', 'offboard']);
    expect(nav(ws())).toEqual(['inventory', 'posture', 'settings']);
    expect(ws().readOnly).toBe(true);
  });

  it('every role has a row', () => {
    expect(Object.keys(ROLE_TABLE).sort()).toEqual(['admin', 'auditor', 'campaign_owner', 'manager', 'reviewer']);
  });
});

describe('the offline snapshot', () => {
  it('opens what the roles open and offers no change at all', () => {
    const snapshot = { taken_at: '2026-11-30T17:45:00Z', of: 'postgresql://maya@pg/custodian', login: 'maya', person_id: 1, roles: ['reviewer', 'campaign_owner'], rows: 10 };
    const live = capabilities({ mode: 'workspace', roles: ['reviewer', 'campaign_owner'] });
    const offline = capabilities({ mode: 'workspace', roles: ['reviewer', 'campaign_owner'], snapshot });
    expect([...offline.nav].sort()).toEqual([...live.nav].sort());
    expect(live.actions.has('decide')).toBe(true);
    expect(offline.actions.size).toBe(0);
    expect(offline.readOnly).toBe(true);
  });
});
