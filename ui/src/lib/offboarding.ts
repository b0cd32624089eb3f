// Offboarding in the UI: the manager's team, cases, plans and apply
// (Tauri commands, or an in-browser mock with the same rules).

import { invoke } from '@tauri-apps/api/core';
import type { ApplyReport, OffboardAction, OffboardingCase, OffboardingItemView, OffboardPlan, Registration, TeamView, TimelineEntry } from '../bindings';
import { inTauri, toUserError } from './ipc';
import { FINDING_CHECKS } from './catalogue.gen';

export interface OffboardingApi {
  myTeam(): Promise<TeamView>;
  offboardingCase(id: number): Promise<OffboardingCase>;
  plan(caseId: number, plan: OffboardPlan): Promise<number>;
  apply(caseId: number): Promise<ApplyReport>;
  timeline(identity: number): Promise<TimelineEntry[]>;
  register(identity: number, registration: Registration): Promise<null>;
  retire(identity: number, reason: string): Promise<number>;
  confirmChange(identity: number, note: string): Promise<null>;
}

const tauriApi: OffboardingApi = {
  myTeam: () => invoke<TeamView>('my_team'),
  offboardingCase: (id) => invoke<OffboardingCase>('offboarding_case', { case: id }),
  plan: (caseId, plan) => invoke<number>('plan_offboarding', { case: caseId, plan }),
  apply: (caseId) => invoke<ApplyReport>('apply_offboarding', { case: caseId }),
  timeline: (identity) => invoke<TimelineEntry[]>('identity_timeline', { identity }),
  register: (identity, registration) => invoke<null>('register_identity', { identity, registration }),
  retire: (identity, reason) => invoke<number>('retire_identity', { identity, reason }),
  confirmChange: (identity, note) => invoke<null>('confirm_access_change', { identity, note }),
};

let current: OffboardingApi | null = null;

export function setOffboardingApi(api: OffboardingApi): void {
  current = api;
}

async function call<T>(f: (api: OffboardingApi) => Promise<T>): Promise<T> {
  if (!current) current = inTauri() ? tauriApi : createMockOffboarding();
  try {
    return await f(current);
  } catch (e) {
    throw toUserError(e);
  }
}

export const offboarding = {
  myTeam: () => call((a) => a.myTeam()),
  offboardingCase: (id: number) => call((a) => a.offboardingCase(id)),
  plan: (caseId: number, plan: OffboardPlan) => call((a) => a.plan(caseId, plan)),
  apply: (caseId: number) => call((a) => a.apply(caseId)),
  timeline: (identity: number) => call((a) => a.timeline(identity)),
  register: (identity: number, r: Registration) => call((a) => a.register(identity, r)),
  retire: (identity: number, reason: string) => call((a) => a.retire(identity, reason)),
  confirmChange: (identity: number, note: string) => call((a) => a.confirmChange(identity, note)),
};

/** A plan moving every undecided item to `owner`, rotating what the leaver could know. */
export function transferAll(owner: number, rotate: boolean): OffboardPlan {
  return { items: [], action: 'transfer', owner, until: null, rotate };
}

/**
 * A plan for the chosen items, or the reason it cannot be made: a transfer
 * and a keep need a person, a keep needs a deadline after `today`
 * (YYYY-MM-DD), and something must be chosen.
 */
export function bulkPlan(
  items: number[],
  action: OffboardAction,
  owner: number | null,
  until: string,
  rotate: boolean,
  today: string,
): OffboardPlan | string {
  if (items.length === 0) return 'Choose at least one item.';
  if (action !== 'retire' && owner === null) return action === 'keep' ? 'Choose the temporary owner.' : 'Choose the new owner.';
  if (action === 'keep') {
    if (!/^\d{4}-\d{2}-\d{2}$/.test(until)) return 'Give the date by which a permanent owner takes over.';
    if (until <= today) return 'The deadline must be after today.';
  }
  return {
    items,
    action,
    owner: action === 'retire' ? null : owner,
    until: action === 'keep' ? until : null,
    rotate: action === 'transfer' && rotate,
  };
}

/** The planned (or applied) decision of a case item, for its row. */
export function describeDecision(it: Pick<OffboardingItemView, 'action' | 'new_owner' | 'until' | 'rotate' | 'applied_at'>): string {
  const who = it.new_owner ?? 'the chosen person';
  const text =
    it.action === 'transfer'
      ? `transfer to ${who}${it.rotate ? ' + rotate' : ''}`
      : it.action === 'keep'
        ? `keep with ${who} until ${(it.until ?? '').slice(0, 10)}`
        : it.action === 'retire'
          ? 'retire'
          : 'undecided';
  return it.applied_at ? `${text} (applied)` : text;
}

/** Short text for an apply report. */
export function describeApply(r: ApplyReport): string {
  const parts = [`${r.transferred} transferred`, `${r.kept} kept with a temporary owner`, `${r.retired} retired`, `${r.tasks} tasks opened`];
  if (r.reviews_moved) parts.push(`${r.reviews_moved} review items moved`);
  return parts.join(', ') + (r.closed ? '; case closed' : '');
}

export function createMockOffboarding(): OffboardingApi {
  const items = [1, 2].map((i) => ({
    id: i,
    identity_id: 200 + i,
    name: `leo-agent-${i}`,
    kind: 'ai_agent' as const,
    agent_class: null,
    status: 'active' as const,
    source: 'Entra ID',
    relation: 'owner',
    credentials: 1,
    preview: { grants: 4, high_consequence_grants: 1, sensitive_resources: ['orders-db'], delegations_out: 0, findings: FINDING_CHECKS.checks.filter((c) => c.id === 'owner-departed').map((c) => c.title), secrets: ['client_secret deploy'] },
    suggestions: [{ person_id: 1, name: 'Maya Weber', reason: "Leo's manager" }],
    action: null as OffboardPlan['action'] | null,
    new_owner_id: null as number | null,
    new_owner: null as string | null,
    until: null as string | null,
    rotate: false,
    decided_by: null,
    decided_at: null,
    applied_at: null as string | null,
  }));
  let closed = false;
  const summary = () => ({
    id: 1,
    person_id: 9,
    person: 'Leo Okafor',
    email: 'leo@contoso.example',
    person_status: 'departed' as const,
    reason: 'departed in Entra ID',
    opened_at: '2026-11-01T00:00:00Z',
    manager_id: 1,
    manager: 'Maya Weber',
    status: closed ? 'closed' : 'open',
    items: items.length,
    decided: items.filter((i) => i.action).length,
    applied: items.filter((i) => i.applied_at).length,
    pending_reviews: 0,
  });
  return {
    myTeam: async () => ({
      manager_id: 1,
      members: [
        { person_id: 9, name: 'Leo Okafor', email: 'leo@contoso.example', title: 'Engineer', status: 'departed', left_at: '2026-10-30T00:00:00Z', departing_on: null, owns: 2, case_id: 1 },
        { person_id: 10, name: 'Ann Lee', email: 'ann@contoso.example', title: 'Engineer', status: 'active', left_at: null, departing_on: null, owns: 3, case_id: null },
      ],
      cases: closed ? [] : [summary()],
      undecided_items: items.filter((i) => !i.action).length,
      pending_reviews: 0,
    }),
    offboardingCase: async () => ({ summary: summary(), items, tasks: [] }),
    plan: async (_c, plan) => {
      if (plan.action !== 'retire' && plan.owner === null) throw { code: 'invalid_input', message: 'a transfer needs the new owner' };
      if (plan.action === 'keep' && !plan.until) throw { code: 'invalid_input', message: 'keeping needs a deadline (until)' };
      let n = 0;
      for (const it of items) {
        if (!it.action && (plan.items.length === 0 || plan.items.includes(it.id))) {
          it.action = plan.action;
          it.new_owner_id = plan.owner;
          it.new_owner = plan.owner === 1 ? 'Maya Weber' : null;
          it.rotate = plan.rotate;
          it.until = plan.until;
          n++;
        }
      }
      return n;
    },
    apply: async () => {
      const n = { transfer: 0, keep: 0, retire: 0 };
      for (const it of items) {
        if (it.action && !it.applied_at) {
          it.applied_at = '2026-11-23T00:00:00Z';
          n[it.action] += 1;
        }
      }
      closed = items.every((i) => i.applied_at);
      return { case_id: 1, transferred: n.transfer, retired: n.retire, kept: n.keep, tasks: n.transfer * 2 + n.retire * 2, reviews_moved: 0, closed };
    },
    timeline: async () => [{ at: '2026-11-01T00:00:00Z', source: 'sync', kind: 'joiner', actor: 'Entra ID', summary: 'new ai_agent' }],
    register: async (_i, r) => {
      if (!r.purpose.trim()) throw { code: 'invalid_input', message: 'say what the identity is for (purpose)' };
      return null;
    },
    retire: async (_i, reason) => {
      if (!reason.trim()) throw { code: 'invalid_input', message: 'say why the identity is retired' };
      return 2;
    },
    confirmChange: async () => null,
  };
}
