// Offboarding in the UI: the manager's team, cases, plans and apply
// (Tauri commands, or an in-browser mock with the same rules).

import { invoke } from '@tauri-apps/api/core';
import type { ApplyReport, OffboardingCase, OffboardPlan, Registration, TeamView, TimelineEntry } from '../bindings';
import { inTauri, toUserError } from './ipc';

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
    preview: { grants: 4, high_consequence_grants: 1, sensitive_resources: ['orders-db'], delegations_out: 0, findings: ['Orphaned: owner has departed'], secrets: ['client_secret deploy'] },
    suggestions: [{ person_id: 1, name: 'Maya Weber', reason: "Leo's manager" }],
    action: null as OffboardPlan['action'] | null,
    new_owner_id: null as number | null,
    new_owner: null as string | null,
    until: null,
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
      let n = 0;
      for (const it of items) {
        if (!it.action && (plan.items.length === 0 || plan.items.includes(it.id))) {
          it.action = plan.action;
          it.new_owner_id = plan.owner;
          it.new_owner = plan.owner === 1 ? 'Maya Weber' : null;
          it.rotate = plan.rotate;
          n++;
        }
      }
      return n;
    },
    apply: async () => {
      let transferred = 0;
      for (const it of items) {
        if (it.action && !it.applied_at) {
          it.applied_at = '2026-11-23T00:00:00Z';
          transferred += it.action === 'transfer' ? 1 : 0;
        }
      }
      closed = items.every((i) => i.applied_at);
      return { case_id: 1, transferred, retired: 0, kept: 0, tasks: transferred * 2, reviews_moved: 0, closed };
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
