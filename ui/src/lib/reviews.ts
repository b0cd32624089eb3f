// Access reviews in the UI: the calls (Tauri commands, or an in-browser
// mock), the keyboard map and the rules the backend enforces, mirrored so the
// reviewer is told before a round trip. The backend stays the authority.

import { invoke } from '@tauri-apps/api/core';
import type {
  AuditVerification,
  CampaignProgress,
  CampaignView,
  CloseReport,
  NewCampaign,
  TaskStatus,
  UndecidedPolicy,
  Decision,
  DecisionInput,
  ItemType,
  PersonRef,
  QueueQuery,
  ReviewItem,
  ReviewQueue,
  WriteBackReport,
} from '../bindings';
import { inTauri, toUserError } from './ipc';

export interface ReviewsApi {
  actingPerson(): Promise<PersonRef | null>;
  setActingPerson(person: number): Promise<PersonRef>;
  findPeople(search: string): Promise<PersonRef[]>;
  campaigns(): Promise<CampaignView[]>;
  queue(query: QueueQuery): Promise<ReviewQueue>;
  decide(input: DecisionInput): Promise<number>;
  verifyAudit(): Promise<AuditVerification>;
  createCampaign(campaign: NewCampaign): Promise<CampaignView>;
  launchProgress(): Promise<[number, number] | null>;
  campaignProgress(id: number): Promise<CampaignProgress>;
  remind(campaign: number, reviewer: number): Promise<null>;
  escalate(campaign: number, reviewer: number | null): Promise<number>;
  /** Moves a reviewer's undecided items in a campaign to another person (campaign owner). */
  delegate(campaign: number, from: number, to: number, reason: string): Promise<number>;
  /** Moves undecided items to another reviewer (the campaign owner, or the items' own reviewer). */
  reassign(items: number[], to: number, reason: string): Promise<number>;
  closeCampaign(campaign: number, policy: UndecidedPolicy): Promise<CloseReport>;
  exportCampaign(campaign: number): Promise<string[]>;
  setTaskStatus(task: number, status: TaskStatus, note: string): Promise<null>;
  writeBack(task: number): Promise<WriteBackReport>;
}

const tauriReviews: ReviewsApi = {
  actingPerson: () => invoke<PersonRef | null>('acting_person'),
  setActingPerson: (person) => invoke<PersonRef>('set_acting_person', { person }),
  findPeople: (search) => invoke<PersonRef[]>('find_people', { search, limit: 20 }),
  campaigns: () => invoke<CampaignView[]>('campaigns'),
  queue: (query) => invoke<ReviewQueue>('review_queue', { query }),
  decide: (input) => invoke<number>('decide', { input }),
  verifyAudit: () => invoke<AuditVerification>('verify_audit'),
  createCampaign: (campaign) => invoke<CampaignView>('create_campaign', { campaign }),
  launchProgress: () => invoke<[number, number] | null>('campaign_launch_progress'),
  campaignProgress: (campaign) => invoke<CampaignProgress>('campaign_progress', { campaign }),
  remind: (campaign, reviewer) => invoke<null>('remind', { campaign, reviewer }),
  escalate: (campaign, reviewer) => invoke<number>('escalate', { campaign, reviewer }),
  reassign: (items, to, reason) => invoke<number>('reassign_reviewer', { items, to, reason }),
  delegate: (campaign, from, to, reason) => invoke<number>('delegate_reviewer', { campaign, from, to, reason }),
  closeCampaign: (campaign, policy) => invoke<CloseReport>('close_campaign', { campaign, policy }),
  exportCampaign: (campaign) => invoke<string[]>('export_campaign', { campaign }),
  setTaskStatus: (task, status, note) => invoke<null>('set_task_status', { task, status, note }),
  writeBack: (task) => invoke<WriteBackReport>('write_back_task', { task }),
};

let current: ReviewsApi | null = null;

/** Replaces the backend (tests). */
export function setReviewsApi(api: ReviewsApi): void {
  current = api;
}

function backend(): ReviewsApi {
  if (!current) current = inTauri() ? tauriReviews : createMockReviews();
  return current;
}

async function call<T>(f: (api: ReviewsApi) => Promise<T>): Promise<T> {
  try {
    return await f(backend());
  } catch (e) {
    throw toUserError(e);
  }
}

export const reviews = {
  actingPerson: () => call((a) => a.actingPerson()),
  setActingPerson: (person: number) => call((a) => a.setActingPerson(person)),
  findPeople: (search: string) => call((a) => a.findPeople(search)),
  campaigns: () => call((a) => a.campaigns()),
  queue: (query: QueueQuery) => call((a) => a.queue(query)),
  decide: (input: DecisionInput) => call((a) => a.decide(input)),
  verifyAudit: () => call((a) => a.verifyAudit()),
  createCampaign: (c: NewCampaign) => call((a) => a.createCampaign(c)),
  launchProgress: () => call((a) => a.launchProgress()),
  campaignProgress: (id: number) => call((a) => a.campaignProgress(id)),
  remind: (campaign: number, reviewer: number) => call((a) => a.remind(campaign, reviewer)),
  escalate: (campaign: number, reviewer: number | null) => call((a) => a.escalate(campaign, reviewer)),
  reassign: (items: number[], to: number, reason: string) => call((a) => a.reassign(items, to, reason)),
  delegate: (campaign: number, from: number, to: number, reason: string) => call((a) => a.delegate(campaign, from, to, reason)),
  closeCampaign: (campaign: number, policy: UndecidedPolicy) => call((a) => a.closeCampaign(campaign, policy)),
  exportCampaign: (campaign: number) => call((a) => a.exportCampaign(campaign)),
  setTaskStatus: (task: number, status: TaskStatus, note: string) => call((a) => a.setTaskStatus(task, status, note)),
  writeBack: (task: number) => call((a) => a.writeBack(task)),
};

/** A campaign definition from the form's values; `null` fields are left to the backend to refuse. */
export function newCampaign(v: {
  name: string;
  description: string;
  due: string;
  fallback: number | null;
  rule: NewCampaign['reviewer_rule'];
  named: number | null;
  granularity: NewCampaign['granularity'];
  kinds: NewCampaign['scope']['kinds'];
  notReviewedDays: string;
  recurrence: NewCampaign['recurrence'];
}): NewCampaign | string {
  if (!v.name.trim()) return 'Give the campaign a name.';
  if (!v.due) return 'Choose a due date.';
  if (v.fallback === null) return 'Choose a fallback reviewer.';
  if (v.rule === 'named' && v.named === null) return 'Choose the named reviewer.';
  const days = v.notReviewedDays.trim() === '' ? null : Number(v.notReviewedDays);
  if (days !== null && (!Number.isInteger(days) || days < 0)) return 'Not reviewed in N days: a whole number.';
  return {
    name: v.name.trim(),
    description: v.description.trim(),
    scope: {
      search: '',
      kinds: v.kinds,
      statuses: [],
      classes: [],
      sources: [],
      owner_state: null,
      has_findings: null,
      min_severity: null,
      not_reviewed_days: days,
    },
    granularity: v.granularity,
    reviewer_rule: v.rule,
    named_reviewer: v.rule === 'named' ? v.named : null,
    fallback_reviewer: v.fallback,
    second_reviewer: null,
    recurrence: v.recurrence,
    start_at: null,
    due_at: v.due,
  };
}

/** The decision a key stands for on an item, or null. */
export function keyDecision(key: string, type: ItemType): Decision | null {
  switch (key) {
    case 'a':
      return 'keep';
    case 'r':
      return type === 'identity' ? 'retire' : 'revoke';
    case 'o':
      return type === 'credential' ? 'rotate' : null;
    default:
      return null;
  }
}

/** Whether the backend will ask for a justification. */
export function needsJustification(decision: Decision, risk: string): boolean {
  return decision === 'revoke' || decision === 'retire' || (decision === 'keep' && risk === 'high');
}

export const KEY_HELP = '↑↓ move · a keep · r revoke/retire · o rotate · x select · A follow recommendation · g send to another reviewer · / justification';

export function emptyQuery(): QueueQuery {
  return { campaign: null, include_decided: false, item_type: null, min_risk: null, search: '', offset: 0, limit: 200 };
}

// ------------------------------------------------------------------ mock ---

function person(id: number, name: string): PersonRef {
  return {
    id,
    display_name: name,
    email: `${name.toLowerCase().replace(' ', '.')}@contoso.example`,
    title: 'Engineer',
    department: 'Platform',
    status: 'active',
    left_at: null,
    manager_id: null,
    manager_name: null,
  };
}

/** One entry of the mock's audit chain. */
type MockAuditEntry = { seq: number; action: string; subject: string; prev: string; hash: string };

/** FNV-1a over the entry's fields, length-prefixed (a stand-in for SHA-256). */
function mockAuditHash(prev: string, seq: number, action: string, subject: string): string {
  let h = 0x811c9dc5;
  for (const field of [prev, String(seq), action, subject]) {
    for (const ch of `${field.length}:${field}`) {
      h ^= ch.codePointAt(0) ?? 0;
      h = Math.imul(h, 0x01000193) >>> 0;
    }
  }
  return h.toString(16).padStart(8, '0').repeat(8);
}

/** The mock reviews backend, with ways to damage its audit log (tests). */
export type MockReviewsApi = ReviewsApi & {
  /** Edits entry `seq` without re-hashing it, as someone with write access to the store could. */
  tamperAudit(seq: number): void;
  /** Deletes the newest `n` entries. */
  dropAuditTail(n: number): void;
};

/** A small in-browser backend that keeps the same rules. */
export function createMockReviews(): MockReviewsApi {
  const people = [person(1, 'Maya Weber'), person(2, 'Noah Ibrahim'), person(3, 'Ximena Weber')];
  let acting: PersonRef | null = null;
  const items: ReviewItem[] = Array.from({ length: 12 }, (_, i) => {
    const type: ItemType = (['identity', 'grant', 'credential'] as const)[i % 3];
    const risk = ['low', 'medium', 'high'][i % 3];
    return {
      id: i + 1,
      campaign_id: 1,
      campaign: 'Q4 agent certification',
      due_at: '2026-12-31T23:59:59Z',
      item_type: type,
      identity_id: 100 + i,
      subject: `agent-${String(i + 1).padStart(4, '0')}`,
      detail: type === 'grant' ? 's3:PutObject on data-bucket (write)' : type === 'credential' ? 'client_secret deploy' : 'ai_agent, active',
      owner_name: 'Maya Weber',
      risk,
      recommendation: type === 'credential' ? 'rotate' : i % 4 === 0 ? (type === 'identity' ? 'retire' : 'revoke') : 'keep',
      reasons: [`${type} used ${i * 7} days ago`],
      reviewer_id: 1,
      reviewer: 'Maya Weber',
      reviewer_reason: 'owner',
      stage: 1,
      proposed: null,
      proposed_by: null,
      decision: null,
      decided_by: null,
      decided_at: null,
      by_policy: false,
      justification: '',
      new_owner: null,
      vanished_at: null,
      allowed: type === 'identity' ? ['keep', 'retire', 'reassign'] : type === 'grant' ? ['keep', 'revoke'] : ['keep', 'revoke', 'rotate'],
    };
  });
  // The audit chain, and the signed checkpoint of its head (as the store keeps one).
  const chain: MockAuditEntry[] = [];
  let checkpoint = { seq: 0, hash: '0'.repeat(64) };
  const append = (action: string, subject: string) => {
    const prev = chain.length ? chain[chain.length - 1].hash : '0'.repeat(64);
    const seq = chain.length + 1;
    chain.push({ seq, action, subject, prev, hash: mockAuditHash(prev, seq, action, subject) });
    checkpoint = { seq, hash: chain[chain.length - 1].hash };
  };
  append('demo.load', 'demo-s');
  append('campaign.create', 'campaign 1');
  append('campaign.launch', 'campaign 1');
  const broken = (seq: number, problem: string) => ({
    entries: chain.length,
    ok: false,
    first_bad_seq: seq,
    problem,
    head: chain.length ? chain[chain.length - 1].hash : '0'.repeat(64),
    signature: 'verified',
    signature_note: null,
  });
  return {
    tamperAudit: (seq) => {
      const e = chain.find((x) => x.seq === seq);
      if (e) e.subject = `${e.subject} (edited)`;
    },
    dropAuditTail: (n) => {
      chain.splice(Math.max(chain.length - n, 0), n);
    },
    actingPerson: async () => acting,
    setActingPerson: async (id) => {
      acting = people.find((p) => p.id === id) ?? null;
      if (!acting) throw { code: 'not_found', message: `no person with id ${id}` };
      return acting;
    },
    findPeople: async (search) => people.filter((p) => p.display_name.toLowerCase().includes(search.toLowerCase())),
    campaigns: async () => [],
    queue: async (q) => {
      if (!acting) throw { code: 'invalid_input', message: 'who is acting? choose yourself first' };
      const mine = items.filter((i) => i.reviewer_id === acting?.id);
      const shown = mine.filter((i) => q.include_decided || i.decision === null);
      return {
        total: mine.length,
        pending: mine.filter((i) => i.decision === null).length,
        offset: q.offset,
        items: shown.slice(q.offset, q.offset + (q.limit || 200)),
      };
    },
    decide: async (input) => {
      const chosen = input.items.map((id) => items.find((i) => i.id === id));
      for (const it of chosen) {
        if (!it) throw { code: 'not_found', message: 'no such item' };
        const d = input.follow_recommendation ? it.recommendation : input.decision;
        if (!it.allowed.includes(d)) throw { code: 'invalid_input', message: `'${d}' does not apply to a ${it.item_type} item` };
        if (needsJustification(d, it.risk) && !input.justification.trim()) {
          throw { code: 'invalid_input', message: `a justification is required for item ${it.id} (${it.subject})` };
        }
      }
      for (const it of chosen) {
        if (!it) continue;
        it.decision = input.follow_recommendation ? it.recommendation : input.decision;
        it.justification = input.justification;
        it.decided_by = acting?.display_name ?? null;
        append('review.decide', `item ${it.id}`);
      }
      return chosen.length;
    },
    // Verifies the chain as the store does: each entry's hash over its
    // fields and its predecessor's, then the newest against the checkpoint.
    verifyAudit: async () => {
      let prev = '0'.repeat(64);
      for (const [i, e] of chain.entries()) {
        if (e.seq !== i + 1 || e.prev !== prev) return broken(i + 1, `entry ${i + 1} was deleted, inserted or moved`);
        if (e.hash !== mockAuditHash(e.prev, e.seq, e.action, e.subject)) return broken(e.seq, `entry ${e.seq} was edited`);
        prev = e.hash;
      }
      if (chain.length !== checkpoint.seq || prev !== checkpoint.hash) {
        return broken(chain.length + 1, `entries after ${chain.length} were deleted (the signed checkpoint is at ${checkpoint.seq})`);
      }
      return {
        entries: chain.length,
        ok: true,
        first_bad_seq: null,
        problem: null,
        head: prev,
        signature: 'verified',
        signature_note: null,
      };
    },
    createCampaign: async (c) => {
      if (!c.name) throw { code: 'invalid_input', message: 'a campaign needs a name' };
      throw { code: 'invalid_input', message: 'the mock keeps one campaign' };
    },
    launchProgress: async () => null,
    campaignProgress: async () => {
      throw { code: 'not_found', message: 'the mock has no campaign details' };
    },
    remind: async () => null,
    escalate: async () => 0,
    delegate: async (_campaign, from, to, reason) => {
      if (!reason.trim()) throw { code: 'invalid_input', message: 'say why the items move to another reviewer' };
      if (from === to) throw { code: 'invalid_input', message: 'choose someone else to delegate to' };
      const target = people.find((p) => p.id === to);
      if (!target) throw { code: 'not_found', message: `no person with id ${to}` };
      const moving = items.filter((i) => i.reviewer_id === from && i.decision === null);
      for (const it of moving) {
        it.reviewer_id = to;
        it.reviewer = target.display_name;
        it.reviewer_reason = `reassigned by ${acting?.display_name ?? ''}: ${reason}`;
      }
      return moving.length;
    },
    reassign: async (ids, to, reason) => {
      if (!reason.trim()) throw { code: 'invalid_input', message: 'say why the items move to another reviewer' };
      const target = people.find((p) => p.id === to);
      if (!target) throw { code: 'not_found', message: `no person with id ${to}` };
      for (const id of ids) {
        const it = items.find((i) => i.id === id);
        if (!it) throw { code: 'not_found', message: `no review item with id ${id}` };
        if (it.decision) throw { code: 'invalid_input', message: `item ${id} (${it.subject}) is already decided` };
      }
      for (const id of ids) {
        const it = items.find((i) => i.id === id);
        if (it) {
          it.reviewer_id = to;
          it.reviewer = target.display_name;
          it.reviewer_reason = `reassigned by ${acting?.display_name ?? ''}: ${reason}`;
        }
      }
      return ids.length;
    },
    closeCampaign: async () => ({ campaign_id: 1, decided_by_people: 0, decided_by_policy: 12, tasks: 3, next_campaign: null }),
    exportCampaign: async () => ['/tmp/campaign-1-evidence.csv'],
    setTaskStatus: async () => null,
    writeBack: async (task) => ({ task_id: task, status: 'done', note: 'disabled in the mock source' }),
  };
}
