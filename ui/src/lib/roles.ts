// What each workspace role may see and do in the app: the ONE table the nav
// and the action buttons consult. The database enforces the same rules (row
// level security and grants); hiding is only so nobody is offered a button
// that can only be refused. In solo mode everything shows.

import type { RoleView, WhoAmI } from '../bindings';

/** Nav entries that can be hidden. Inventory, Posture and Settings are everyone's. */
export type NavItem = 'inventory' | 'sources' | 'reviews' | 'campaigns' | 'team' | 'posture' | 'settings';

/** Buttons that change something. */
export type Action =
  | 'decide' // decide review items in My reviews
  | 'create_campaign'
  | 'close_campaign' // and remind, escalate, delegate, export
  | 'offboard' // plan and apply offboarding cases of one's reports
  | 'manage_sources' // add, sync, test, secrets, write-back
  | 'manage_identities' // register, confirm a change, retire (the identity page)
  | 'manage_members';

export interface Capabilities {
  nav: ReadonlySet<NavItem>;
  actions: ReadonlySet<Action>;
  /** True when no button that changes something shows (an auditor). */
  readOnly: boolean;
}

const EVERYONE: NavItem[] = ['inventory', 'posture', 'settings'];
const ALL_NAV: NavItem[] = ['inventory', 'sources', 'reviews', 'campaigns', 'team', 'posture', 'settings'];
const ALL_ACTIONS: Action[] = ['decide', 'create_campaign', 'close_campaign', 'offboard', 'manage_sources', 'manage_identities', 'manage_members'];

/** Role → what it opens and what it may change. A `Record`, so a role added in Rust fails the type check here. */
export const ROLE_TABLE: Record<RoleView, { nav: NavItem[]; actions: Action[] }> = {
  reviewer: { nav: ['reviews'], actions: ['decide'] },
  campaign_owner: { nav: ['campaigns'], actions: ['create_campaign', 'close_campaign'] },
  manager: { nav: ['team'], actions: ['offboard'] },
  admin: { nav: ['sources'], actions: ['manage_sources', 'manage_identities', 'manage_members'] },
  // Reads and exports everything, changes nothing.
  auditor: { nav: ['sources', 'reviews', 'campaigns', 'team'], actions: [] },
};

/**
 * What the person in `who` may see and do. `null` (not known yet, or the
 * store did not answer) and solo mode show everything: the database stays the
 * authority and refuses what a role cannot do. The workspace's offline
 * snapshot opens what the roles open and changes nothing.
 */
export function capabilities(who: Pick<WhoAmI, 'mode' | 'roles'> & { snapshot?: WhoAmI['snapshot'] } | null): Capabilities {
  if (!who || who.mode === 'solo') return { nav: new Set(ALL_NAV), actions: new Set(ALL_ACTIONS), readOnly: false };
  const nav = new Set<NavItem>(EVERYONE);
  const actions = new Set<Action>();
  for (const r of who.roles) {
    const row = ROLE_TABLE[r] as { nav: NavItem[]; actions: Action[] } | undefined;
    if (!row) continue;
    row.nav.forEach((n) => nav.add(n));
    row.actions.forEach((a) => actions.add(a));
  }
  if (who.snapshot) return { nav, actions: new Set(), readOnly: true };
  return { nav, actions, readOnly: actions.size === 0 };
}

/** A role's name as people read it. */
export function roleLabel(r: RoleView): string {
  switch (r) {
    case 'admin':
      return 'Admin';
    case 'campaign_owner':
      return 'Campaign owner';
    case 'reviewer':
      return 'Reviewer';
    case 'manager':
      return 'Manager';
    case 'auditor':
      return 'Auditor';
  }
}
