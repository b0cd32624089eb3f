// In-browser mock backend, used when the UI runs outside Tauri.
//
// A deterministic fictional organisation (100k identities by default) in the
// shape of the demo the Rust core generates. Every record is a pure function
// of its id, so a row can be generated on its own; the whole inventory is only
// materialised on the first query that needs it (filtering and sorting need
// all rows). Filtering, sorting, prefix search and paging follow the SQL in
// src/store/inventory.rs. Errors reject with the `{ code, message }` shape of
// the real commands.

import type {
  AgentClass,
  CredentialKind,
  CredentialView,
  DelegationKind,
  DelegationView,
  Error as ApiError,
  ErrorCode,
  FacetCount,
  FindingCheckView,
  FindingView,
  GrantView,
  IdentityDetail,
  IdentityKind,
  IdentityStatus,
  InventoryFacets,
  InventoryPage,
  InventoryQuery,
  InventoryRow,
  OrgSummary,
  PersonRef,
  PersonStatus,
  Privilege,
  Sensitivity,
  Severity,
} from '../bindings';
import { FINDING_CHECKS, SOURCE_KINDS } from './catalogue.gen';
import type { Backend } from './ipc';
import { MockSources } from './mockSources';

const DAY = 86_400;

// ---------------------------------------------------------------------------
// Deterministic randomness

/** 32-bit integer hash of a few numbers. */
function hash(...xs: number[]): number {
  let h = 0x811c9dc5;
  for (const x of xs) {
    h = Math.imul(h ^ (x | 0), 0x01000193);
    h ^= h >>> 15;
    h = Math.imul(h, 0x2c1b3c6d);
    h ^= h >>> 12;
  }
  return h >>> 0;
}

/** Mulberry32. */
class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  below(n: number): number {
    return Math.floor(this.next() * Math.max(1, n));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.below(xs.length)];
  }
  /** A timestamp (seconds) between `min` and `max` days before `now`. */
  daysAgo(now: number, min: number, max: number): number {
    return now - (min + this.below(Math.max(1, max - min))) * DAY - this.below(DAY);
  }
}

// ---------------------------------------------------------------------------
// Vocabulary (from src/demo.rs)

const FIRST = ['Ada', 'Ben', 'Chloe', 'Dev', 'Elena', 'Farid', 'Grace', 'Hiro', 'Ines', 'Jonas', 'Kemi', 'Liam', 'Maya', 'Noah', 'Olga', 'Priya', 'Quinn', 'Rosa', 'Sami', 'Tara', 'Umar', 'Vera', 'Wen', 'Ximena', 'Yusuf', 'Zoe', 'Aiko', 'Bruno', 'Carmen', 'Diego', 'Esther', 'Felix', 'Greta', 'Hamid', 'Ivy', 'Jakub', 'Lena', 'Marco', 'Nadia', 'Oscar'];
const LAST = ['Okafor', 'Lindqvist', 'Moreau', 'Tanaka', 'Kowalski', 'Haddad', 'Fischer', 'Nguyen', 'Silva', 'Brennan', 'Novak', 'Rossi', 'Sato', 'Jensen', 'Mensah', 'Petrov', 'Garcia', 'Khan', 'Dubois', 'Larsen', 'Costa', 'Weber', 'Ibrahim', 'Müller', "O'Neill", 'Zhang', 'Patel', 'Schmidt', 'Andersson', 'Kim'];
const DEPARTMENTS: readonly [string, string][] = [
  ['Engineering', 'eng'], ['Data', 'data'], ['Finance', 'fin'], ['Sales', 'sales'], ['Support', 'support'],
  ['Security', 'sec'], ['IT', 'it'], ['Marketing', 'mkt'], ['People', 'hr'], ['Legal', 'legal'],
];
const TITLES = ['Engineer', 'Senior Engineer', 'Staff Engineer', 'Analyst', 'Manager', 'Director', 'Specialist', 'Data Scientist', 'Platform Engineer', 'ML Engineer'];
const AGENT_FUNCS: readonly [string, string][] = [
  ['invoice-triage', 'Triages incoming supplier invoices and drafts payment approvals'],
  ['ticket-summariser', 'Summarises support tickets and suggests replies'],
  ['code-reviewer', 'Reviews pull requests and comments on risky changes'],
  ['sales-research', 'Researches prospects and drafts outreach emails'],
  ['contract-analyst', 'Extracts obligations and renewal dates from contracts'],
  ['incident-responder', 'Correlates alerts and opens incidents with a first diagnosis'],
  ['hr-onboarding', 'Answers new-joiner questions and files onboarding requests'],
  ['expense-auditor', 'Checks expense claims against policy and flags outliers'],
  ['campaign-writer', 'Drafts marketing campaign copy and schedules posts'],
  ['data-pipeline-fixer', 'Diagnoses failed data pipeline runs and retries them'],
  ['customer-chat', 'Answers customer questions in the web chat'],
  ['meeting-notes', 'Joins meetings, writes notes and files action items'],
  ['access-requester', 'Files and routes access requests on behalf of employees'],
  ['refund-processor', 'Issues refunds for eligible orders'],
];
const SERVICE_FUNCS: readonly [string, string][] = [
  ['etl', 'Nightly ETL from the operational databases to the warehouse'],
  ['backup', 'Backs up databases and file shares'],
  ['ci-deploy', 'Deploys builds from CI to the clusters'],
  ['report-mailer', 'Emails scheduled reports'],
  ['sync', 'Synchronises records between the CRM and billing'],
  ['monitoring', 'Collects metrics and health checks'],
  ['scanner', 'Scans repositories and buckets for secrets'],
  ['batch', 'Runs month-end batch jobs'],
];
const APP_FUNCS: readonly [string, string][] = [
  ['slack-integration', 'Posts notifications into chat channels'],
  ['crm-connector', 'Reads and writes CRM records for the sales team'],
  ['calendar-assistant', 'Reads calendars to schedule meetings'],
  ['doc-signer', 'Sends contracts for e-signature'],
  ['survey-tool', 'Collects survey responses'],
  ['analytics-export', 'Exports product analytics'],
];
type ResClass = 'data' | 'code' | 'msg' | 'pay' | 'iam' | 'compute';
const RESOURCE_KINDS: readonly [string, string, number[], ResClass][] = [
  ['s3_bucket', 'bucket', [3, 4, 2, 1], 'data'],
  ['database', 'db', [1, 3, 4, 2], 'data'],
  ['data_warehouse', 'warehouse', [0, 2, 4, 2], 'data'],
  ['repository', 'repo', [3, 4, 2, 1], 'code'],
  ['mailbox', 'mailbox', [1, 3, 3, 1], 'msg'],
  ['messaging_channel', 'channel', [4, 3, 1, 0], 'msg'],
  ['payments_api', 'payments', [0, 0, 2, 3], 'pay'],
  ['crm', 'crm', [0, 3, 4, 1], 'data'],
  ['secrets_vault', 'vault', [0, 0, 2, 4], 'iam'],
  ['iam_admin', 'iam', [0, 0, 1, 4], 'iam'],
  ['kubernetes_cluster', 'k8s', [0, 2, 3, 2], 'compute'],
  ['ticketing', 'tickets', [3, 4, 1, 0], 'data'],
  ['file_share', 'share', [2, 4, 2, 1], 'data'],
];
const PERMISSIONS: Record<ResClass, readonly [string, Privilege, boolean][]> = {
  data: [['read', 'read', false], ['list', 'read', false], ['write', 'write', true], ['delete', 'write', true], ['admin', 'admin', true]],
  code: [['pull', 'read', false], ['push', 'write', false], ['merge', 'write', true], ['admin', 'admin', true]],
  msg: [['read', 'read', false], ['send', 'write', true], ['send_as', 'admin', true]],
  pay: [['read', 'read', false], ['refund', 'write', true], ['transfer', 'write', true], ['admin', 'admin', true]],
  iam: [['read', 'read', false], ['pass_role', 'admin', true], ['create_credentials', 'admin', true], ['admin', 'admin', true]],
  compute: [['get', 'read', false], ['exec', 'write', true], ['deploy', 'write', true], ['cluster_admin', 'admin', true]],
};
const SOURCES = ['Entra ID (contoso.example)', 'AWS prod 123456789012', 'GitHub contoso', 'Okta contoso'];
const ENTRA = 1, AWS = 2, GITHUB = 3, OKTA = 4;
const ENVIRONMENTS = ['production', 'production', 'production', 'staging', 'development'];
const SENSITIVITIES: Sensitivity[] = ['low', 'medium', 'high', 'critical'];
const SEVERITY_RANK: Record<Severity, number> = { low: 1, medium: 2, high: 3, critical: 4 };

/**
 * The checks the mock organisation trips. Their titles, categories,
 * severities and fixes come from the core's catalogue (catalogue.gen.ts),
 * as the real findings' do.
 */
type CheckId =
  | 'owner-departed'
  | 'no-owner'
  | 'unregistered-agent'
  | 'secret-never-expires'
  | 'secret-not-rotated'
  | 'secret-expired'
  | 'stale-credential'
  | 'admin-on-critical'
  | 'unused-grants'
  | 'cross-environment';

function checkOf(id: CheckId): FindingCheckView {
  return FINDING_CHECKS.checks.find((c) => c.id === id) ?? { id, owasp: '', owasp_title: '', severity: 'low', title: id, fix: '' };
}

// ---------------------------------------------------------------------------
// The organisation

interface Person {
  id: number;
  name: string;
  email: string;
  title: string;
  department: string;
  status: PersonStatus;
  leftAt: number | null;
  manager: number | null;
}

interface Resource {
  id: number;
  name: string;
  kind: string;
  cls: ResClass;
  sensitivity: Sensitivity;
  environment: string;
}

interface Cred {
  id: number;
  kind: CredentialKind;
  name: string;
  created: number;
  expires: number | null;
  rotated: number | null;
  used: number | null;
}

interface Grant {
  resource: number;
  perm: number;
  used: number | null;
}

interface Identity {
  id: number;
  name: string;
  externalId: string;
  kind: IdentityKind;
  cls: AgentClass | null;
  status: IdentityStatus;
  purpose: string;
  source: number;
  team: string;
  environment: string;
  registered: boolean;
  intended: string;
  created: number;
  lastUsed: number | null;
  lastReviewed: number | null;
  owner: number | null;
  builder: number | null;
  creds: Cred[];
  /** Empty in lite mode (inventory rows); `grantStats` is always filled. */
  grants: Grant[];
  grantStats: GrantStats;
}

interface GrantStats {
  count: number;
  /** Unused for 90 days or never used. */
  unused: number;
  /** The first admin grant on a critical resource: resource id and permission index. */
  adminCritical: [number, number] | null;
  production: boolean;
  nonProduction: boolean;
}

/** Scratch space for de-duplicating grants without allocating per identity. */
const seenGrants: number[] = [];

interface Finding {
  check: CheckId;
  evidence: string;
}

/** Materialised inventory entry: the row plus what filtering and sorting need. */
interface Entry {
  row: InventoryRow;
  sourceId: number;
  ownerActive: boolean | null;
  oldestCredAt: number | null;
  lastUsedAt: number | null;
  severityRank: number;
  nameKey: string;
  ownerKey: string | null;
  haystack: string;
}

function rfc3339(ts: number): string {
  return new Date(ts * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function days(from: number, to: number): number {
  return Math.floor((to - from) / DAY);
}

export interface MockOptions {
  /** Number of identities (default 100,000). */
  size?: number;
  /** Evaluation time, seconds since the epoch (default: now, to the hour). */
  now?: number;
  /** Simulated latency per call in ms (default 15). */
  latencyMs?: number;
  seed?: number;
}

export class MockOrg {
  readonly size: number;
  readonly people: number;
  readonly resources: number;
  readonly now: number;
  private readonly seed: number;
  private entries: Entry[] | null = null;
  private delegIn: Map<number, [number, DelegationKind][]> | null = null;
  private sorted = new Map<string, Int32Array>();

  constructor(opts: MockOptions = {}) {
    this.size = opts.size ?? 100_000;
    this.people = Math.max(10, Math.round(this.size / 4));
    this.resources = Math.max(10, Math.round(this.size / 4));
    this.now = opts.now ?? Math.floor(Date.now() / 3_600_000) * 3600;
    this.seed = opts.seed ?? 0xc0ffee;
  }

  private peopleCache: (Person | undefined)[] = [];

  person(id: number): Person | null {
    if (!Number.isInteger(id) || id < 1 || id > this.people) return null;
    return (this.peopleCache[id] ??= this.makePerson(id));
  }

  private makePerson(id: number): Person {
    const r = new Rng(hash(this.seed, 1, id));
    const first = r.pick(FIRST);
    const last = r.pick(LAST);
    const [dept] = r.pick(DEPARTMENTS);
    const manager = id === 1 ? null : 1 + r.below(Math.max(1, Math.ceil((id - 1) / 6)));
    const roll = r.below(100);
    let status: PersonStatus = 'active';
    let leftAt: number | null = null;
    if (id > 1 && roll < 6) {
      status = 'departed';
      leftAt = r.daysAgo(this.now, 1, 400);
    } else if (id > 1 && roll < 7) {
      status = 'suspended';
    }
    const login = `${first.toLowerCase()}.${last.toLowerCase().replace(/'/g, '').replace('ü', 'u')}${id}`;
    return { id, name: `${first} ${last}`, email: `${login}@contoso.example`, title: r.pick(TITLES), department: dept, status, leftAt, manager };
  }

  resource(id: number): Resource {
    const r = new Rng(hash(this.seed, 2, id));
    const [kind, stem, weights, cls] = r.pick(RESOURCE_KINDS);
    const total = weights.reduce((a, b) => a + b, 0);
    let roll = r.below(total);
    let s = 0;
    while (roll >= weights[s]) roll -= weights[s++];
    const env = r.pick(ENVIRONMENTS);
    const [, team] = r.pick(DEPARTMENTS);
    return { id, name: `${team}-${stem}-${env.slice(0, 4)}-${String(id).padStart(4, '0')}`, kind, cls, sensitivity: SENSITIVITIES[s], environment: env };
  }

  /** An identity; `lite` skips materialising the grants (their stats are still computed). */
  identity(id: number, lite = false): Identity | null {
    if (!Number.isInteger(id) || id < 1 || id > this.size) return null;
    const now = this.now;
    const r = new Rng(hash(this.seed, 3, id));
    const k = r.below(100);
    const kind: IdentityKind = k < 30 ? 'ai_agent' : k < 60 ? 'service_account' : k < 72 ? 'oauth_app' : k < 82 ? 'api_key' : k < 95 ? 'workload' : 'bot';
    const [dept, team] = r.pick(DEPARTMENTS);
    let func: [string, string];
    let source: number;
    switch (kind) {
      case 'ai_agent': func = r.pick(AGENT_FUNCS); source = r.chance(0.7) ? ENTRA : OKTA; break;
      case 'service_account': func = r.pick(SERVICE_FUNCS); source = r.chance(0.5) ? ENTRA : AWS; break;
      case 'oauth_app': func = r.pick(APP_FUNCS); source = r.chance(0.6) ? OKTA : ENTRA; break;
      case 'api_key': func = r.pick(SERVICE_FUNCS); source = OKTA; break;
      case 'workload': func = r.pick(SERVICE_FUNCS); source = AWS; break;
      case 'bot': func = r.pick(APP_FUNCS); source = GITHUB; break;
    }
    const suffix = { ai_agent: 'agent', service_account: 'svc', oauth_app: 'app', api_key: 'key', workload: 'role', bot: 'bot' }[kind];
    let cls: AgentClass | null = null;
    if (kind === 'ai_agent') {
      const c = r.below(10);
      cls = c <= 2 ? 'personal' : c === 3 ? 'consumer_assistant' : c <= 6 ? 'workforce_assistant' : 'digital_worker';
    }
    const owner = r.chance(0.04) ? null : 1 + r.below(this.people);
    const builder = owner !== null && r.chance(0.7) ? owner : 1 + r.below(this.people);
    const s = r.below(100);
    const status: IdentityStatus = s <= 2 ? 'disabled' : s === 3 ? 'deleted' : 'active';
    const registered = r.chance(kind === 'ai_agent' ? 0.65 : 0.85);
    const environment = r.pick(ENVIRONMENTS);
    const created = r.daysAgo(now, 5, 1800);
    const u = r.below(10);
    const lastUsed = u === 0 ? null : u === 1 ? r.daysAgo(now, 120, 700) : r.daysAgo(now, 0, 30);
    const lastReviewed = r.chance(0.5) ? r.daysAgo(now, 1, 540) : null;
    const intended = registered && kind === 'ai_agent'
      ? `Reads ${dept} data it needs to ${func[1].toLowerCase()}; never sends externally or changes access.`
      : '';

    const nCreds = kind === 'workload' ? (r.chance(0.3) ? 1 : 0) : kind === 'api_key' ? 1 : r.below(3) + (r.chance(0.5) ? 1 : 0);
    const creds: Cred[] = [];
    for (let c = 0; c < nCreds; c++) {
      const ck: CredentialKind =
        kind === 'ai_agent' ? r.pick(['client_secret', 'api_token', 'federated_credential', 'certificate'] as const)
        : kind === 'service_account' ? r.pick(['password', 'access_key'] as const)
        : kind === 'oauth_app' ? r.pick(['client_secret', 'certificate'] as const)
        : kind === 'api_key' ? 'api_token'
        : kind === 'workload' ? 'access_key'
        : r.pick(['personal_access_token', 'ssh_key'] as const);
      const cCreated = Math.max(r.daysAgo(now, 1, 1500), created);
      const expires = ck === 'federated_credential' || r.chance(0.4) ? null : cCreated + r.pick([90, 180, 365, 730]) * DAY;
      const rotated = r.chance(0.3) ? Math.max(r.daysAgo(now, 0, 400), cCreated) : null;
      const uu = r.below(8);
      const used = uu === 0 ? null : uu <= 2 ? Math.max(r.daysAgo(now, 91, 600), cCreated) : Math.max(r.daysAgo(now, 0, 30), cCreated);
      creds.push({ id: id * 8 + c, kind: ck, name: `${ck.replace(/_/g, '-')}-${c + 1}`, created: cCreated, expires, rotated, used });
    }
    creds.sort((a, b) => (a.rotated ?? a.created) - (b.rotated ?? b.created));

    const nGrants = 1 + r.below(19);
    const grants: Grant[] = [];
    const stats: GrantStats = { count: 0, unused: 0, adminCritical: null, production: false, nonProduction: false };
    seenGrants.length = 0;
    for (let g = 0; g < nGrants; g++) {
      const res = 1 + r.below(this.resources);
      const perms = PERMISSIONS[this.resourceClass(res)];
      const perm = r.chance(0.6) ? 0 : r.below(perms.length);
      const key = res * 8 + perm;
      if (seenGrants.includes(key)) continue;
      seenGrants.push(key);
      const gu = r.below(6);
      const used = gu === 0 ? null : gu === 1 ? r.daysAgo(now, 91, 500) : r.daysAgo(now, 0, 60);
      stats.count++;
      if (used === null || days(used, now) >= 90) stats.unused++;
      const meta = this.resMeta(res);
      if (stats.adminCritical === null && perms[perm][1] === 'admin' && meta.sensitivity === 'critical') stats.adminCritical = [res, perm];
      if (meta.environment === 'production') stats.production = true;
      else stats.nonProduction = true;
      if (!lite) grants.push({ resource: res, perm, used });
    }

    return {
      id, name: `${team}-${func[0]}-${suffix}-${String(id).padStart(4, '0')}`, externalId: `${suffix}-${String(id).padStart(6, '0')}`,
      kind, cls, status, purpose: func[1], source, team: dept, environment, registered, intended, created, lastUsed, lastReviewed,
      owner, builder, creds, grants, grantStats: stats,
    };
  }

  private resourceCache: ResClass[] | null = null;
  private resourceClass(id: number): ResClass {
    if (!this.resourceCache) {
      this.resourceCache = new Array(this.resources + 1);
      for (let i = 1; i <= this.resources; i++) this.resourceCache[i] = this.resource(i).cls;
    }
    return this.resourceCache[id];
  }

  private resourceMeta: { sensitivity: Sensitivity; environment: string }[] | null = null;
  private resMeta(id: number): { sensitivity: Sensitivity; environment: string } {
    if (!this.resourceMeta) {
      this.resourceMeta = new Array(this.resources + 1);
      for (let i = 1; i <= this.resources; i++) {
        const res = this.resource(i);
        this.resourceMeta[i] = { sensitivity: res.sensitivity, environment: res.environment };
      }
    }
    return this.resourceMeta[id];
  }

  /** Outgoing delegations: some agents and services act through others. */
  delegationsOut(id: number): [number, DelegationKind][] {
    const r = new Rng(hash(this.seed, 4, id));
    if (!r.chance(0.12)) return [];
    const n = 1 + r.below(3);
    const out: [number, DelegationKind][] = [];
    for (let i = 0; i < n; i++) {
      const to = 1 + r.below(this.size);
      if (to === id || out.some(([o]) => o === to)) continue;
      out.push([to, r.pick(['assume_role', 'invoke', 'on_behalf_of', 'impersonate'] as const)]);
    }
    return out;
  }

  delegationsIn(id: number): [number, DelegationKind][] {
    if (!this.delegIn) {
      this.delegIn = new Map();
      for (let from = 1; from <= this.size; from++) {
        for (const [to, kind] of this.delegationsOut(from)) {
          const list = this.delegIn.get(to) ?? [];
          list.push([from, kind]);
          this.delegIn.set(to, list);
        }
      }
    }
    return this.delegIn.get(id) ?? [];
  }

  findings(ident: Identity, owner: Person | null): Finding[] {
    const now = this.now;
    const out: Finding[] = [];
    if (ident.status === 'deleted') return out;
    if (owner && owner.status !== 'active') {
      out.push({ check: 'owner-departed', evidence: `owner ${owner.name} is ${owner.status}${owner.leftAt ? ' since ' + rfc3339(owner.leftAt).slice(0, 10) : ''}` });
    }
    if (ident.owner === null) out.push({ check: 'no-owner', evidence: 'no owner recorded' });
    if (ident.kind === 'ai_agent' && !ident.registered) {
      out.push({ check: 'unregistered-agent', evidence: `discovered in ${SOURCES[ident.source - 1]}, not in the agent registry` });
    }
    const secrets = ident.creds.filter((c) => c.kind !== 'federated_credential');
    const noExpiry = secrets.filter((c) => c.expires === null);
    if (noExpiry.length) {
      const first = noExpiry.map((c) => c.name).sort()[0];
      out.push({ check: 'secret-never-expires', evidence: `${noExpiry.length} secret(s) without expiry, e.g. ${first}` });
    }
    if (secrets.length) {
      const oldest = Math.min(...secrets.map((c) => c.rotated ?? c.created));
      if (days(oldest, now) > 365) out.push({ check: 'secret-not-rotated', evidence: `oldest secret last rotated ${days(oldest, now)} days ago` });
    }
    const expired = ident.creds.filter((c) => c.expires !== null && c.expires < now);
    if (expired.length) out.push({ check: 'secret-expired', evidence: `${expired.length} expired credential(s), e.g. ${expired[0].name}` });
    const stale = ident.creds.filter((c) => c.used !== null && days(c.used, now) >= 90);
    if (stale.length) out.push({ check: 'stale-credential', evidence: `${stale.length} credential(s) unused for 90+ days, e.g. ${stale[0].name}` });
    const g = ident.grantStats;
    if (g.adminCritical) {
      const res = this.resource(g.adminCritical[0]);
      out.push({ check: 'admin-on-critical', evidence: `${PERMISSIONS[res.cls][g.adminCritical[1]][0]} on ${res.name}` });
    }
    if (g.unused) out.push({ check: 'unused-grants', evidence: `${g.unused} of ${g.count} grant(s) unused for 90+ days` });
    if (g.production && g.nonProduction) out.push({ check: 'cross-environment', evidence: 'grants on production and non-production resources' });
    return out;
  }

  private entry(id: number): Entry {
    const ident = this.identity(id, true)!;
    const owner = ident.owner === null ? null : this.person(ident.owner);
    const findings = this.findings(ident, owner);
    const severityRank = findings.reduce((m, f) => Math.max(m, SEVERITY_RANK[checkOf(f.check).severity]), 0);
    const oldestCredAt = ident.creds.length ? Math.min(...ident.creds.map((c) => c.rotated ?? c.created)) : null;
    const row: InventoryRow = {
      id,
      name: ident.name,
      kind: ident.kind,
      agent_class: ident.cls,
      status: ident.status,
      owner_id: ident.owner,
      owner_name: owner?.name ?? null,
      owner_status: owner?.status ?? null,
      source: SOURCES[ident.source - 1],
      team: ident.team,
      registered: ident.registered,
      credential_count: ident.creds.length,
      oldest_credential_days: oldestCredAt === null ? null : days(oldestCredAt, this.now),
      grant_count: ident.grantStats.count,
      finding_count: findings.length,
      max_severity: severityRank ? SENSITIVITIES[severityRank - 1] : null,
      last_used_at: ident.lastUsed === null ? null : rfc3339(ident.lastUsed),
    };
    return {
      row,
      sourceId: ident.source,
      ownerActive: owner ? owner.status === 'active' : null,
      oldestCredAt,
      lastUsedAt: ident.lastUsed,
      severityRank,
      nameKey: row.name.toLowerCase(),
      ownerKey: owner ? owner.name.toLowerCase() : null,
      haystack: ' ' + wordsOf(`${ident.name} ${ident.purpose} ${owner?.name ?? ''} ${ident.externalId} ${ident.team}`),
    };
  }

  private partial: Entry[] = [];

  /** Every identity, generated on first use. */
  all(): Entry[] {
    if (!this.entries) {
      for (let i = this.partial.length; i < this.size; i++) this.partial.push(this.entry(i + 1));
      this.entries = this.partial;
    }
    return this.entries;
  }

  /** Generates every identity in slices, yielding between them so a page stays responsive. */
  async prepare(slice = 4000): Promise<void> {
    while (!this.entries && this.partial.length < this.size) {
      const end = Math.min(this.size, this.partial.length + slice);
      for (let i = this.partial.length; i < end; i++) this.partial.push(this.entry(i + 1));
      await new Promise((r) => setTimeout(r, 0));
    }
    this.all();
  }

  summary(): OrgSummary {
    const all = this.all();
    let credentials = 0, grants = 0, findings = 0;
    for (const e of all) {
      credentials += e.row.credential_count;
      grants += e.row.grant_count;
      findings += e.row.finding_count;
    }
    let delegations = 0;
    for (let i = 1; i <= this.size; i++) delegations += this.delegationsOut(i).length;
    return {
      database: null,
      dataset: `mock-${this.size}`,
      sources: [...SOURCES].sort(),
      people: this.people,
      identities: this.size,
      credentials,
      grants,
      delegations,
      findings,
    };
  }

  facets(): InventoryFacets {
    const all = this.all();
    const count = <K extends string>(f: (e: Entry) => K | null) => {
      const m = new Map<K, number>();
      for (const e of all) {
        const k = f(e);
        if (k !== null) m.set(k, (m.get(k) ?? 0) + 1);
      }
      return [...m.entries()].sort((a, b) => b[1] - a[1]).map(([value, n]): FacetCount => ({ value, label: value, count: n }));
    };
    const bySource = new Map<number, number>();
    for (const e of all) bySource.set(e.sourceId, (bySource.get(e.sourceId) ?? 0) + 1);
    return {
      kinds: count((e) => e.row.kind),
      statuses: count((e) => e.row.status),
      classes: count((e) => e.row.agent_class),
      sources: SOURCES.map((name, i) => ({ value: String(i + 1), label: name, count: bySource.get(i + 1) ?? 0 })).sort((a, b) => a.label.localeCompare(b.label)),
      owner_states: count((e) => (e.ownerActive === null ? 'none' : e.ownerActive ? 'owned' : 'departed')),
      with_findings: all.filter((e) => e.row.finding_count > 0).length,
      total: all.length,
    };
  }

  inventory(q: InventoryQuery): InventoryPage {
    if (!Number.isInteger(q.offset) || q.offset < 0) throw apiError('invalid_input', 'offset must be a non-negative integer');
    if (!Number.isInteger(q.limit) || q.limit < 0) throw apiError('invalid_input', 'limit must be a non-negative integer');
    const limit = q.limit === 0 ? 100 : Math.min(q.limit, 1000);
    const key = JSON.stringify({ ...q, offset: 0, limit: 0 });
    let order = this.sorted.get(key);
    if (!order) {
      order = this.matchAndSort(q);
      if (this.sorted.size > 16) this.sorted.clear();
      this.sorted.set(key, order);
    }
    const all = this.all();
    const rows: InventoryRow[] = [];
    for (let i = q.offset; i < Math.min(order.length, q.offset + limit); i++) rows.push(all[order[i]].row);
    return { total: order.length, offset: q.offset, rows };
  }

  private matchAndSort(q: InventoryQuery): Int32Array {
    const all = this.all();
    const terms = tokens(q.search).map((t) => ' ' + t);
    const match = (e: Entry): boolean => {
      const r = e.row;
      if (q.kinds.length && !q.kinds.includes(r.kind)) return false;
      if (q.statuses.length && !q.statuses.includes(r.status)) return false;
      if (q.classes.length && (r.agent_class === null || !q.classes.includes(r.agent_class))) return false;
      if (q.sources.length && !q.sources.includes(e.sourceId)) return false;
      if (q.owner !== null && r.owner_id !== q.owner) return false;
      if (q.owner_state === 'none' && e.ownerActive !== null) return false;
      if (q.owner_state === 'owned' && e.ownerActive !== true) return false;
      if (q.owner_state === 'departed' && e.ownerActive !== false) return false;
      if (q.has_findings === true && r.finding_count === 0) return false;
      if (q.has_findings === false && r.finding_count > 0) return false;
      for (const t of terms) if (!e.haystack.includes(t)) return false;
      return true;
    };
    const idx: number[] = [];
    for (let i = 0; i < all.length; i++) if (match(all[i])) idx.push(i);

    const dir = q.descending ? -1 : 1;
    const byKey = (x: string, y: string) => (x < y ? -1 : x > y ? 1 : 0);
    const byName = (a: Entry, b: Entry) => byKey(a.nameKey, b.nameKey);
    const nullsLast = <T>(a: T | null, b: T | null, f: (x: T, y: T) => number) =>
      a === null ? (b === null ? 0 : 1) : b === null ? -1 : f(a, b);
    const cmp: (a: Entry, b: Entry) => number = (() => {
      switch (q.sort) {
        case 'name': return (a, b) => dir * byName(a, b);
        case 'kind': return (a, b) => dir * cmpStr(a.row.kind, b.row.kind) || byName(a, b);
        case 'status': return (a, b) => dir * cmpStr(a.row.status, b.row.status) || byName(a, b);
        case 'owner': return (a, b) => nullsLast(a.ownerKey, b.ownerKey, (x, y) => dir * byKey(x, y)) || byName(a, b);
        case 'source': return (a, b) => dir * cmpStr(a.row.source, b.row.source) || byName(a, b);
        case 'credentials': return (a, b) => dir * (a.row.credential_count - b.row.credential_count);
        case 'oldest_credential': return (a, b) => nullsLast(a.oldestCredAt, b.oldestCredAt, (x, y) => -dir * (x - y));
        case 'grants': return (a, b) => dir * (a.row.grant_count - b.row.grant_count);
        case 'risk': return (a, b) => dir * (a.severityRank - b.severityRank) || dir * (a.row.finding_count - b.row.finding_count);
        case 'last_used': return (a, b) => nullsLast(a.lastUsedAt, b.lastUsedAt, (x, y) => dir * (x - y));
        case 'created': return (a, b) => dir * (a.row.id - b.row.id);
      }
    })();
    idx.sort((i, j) => cmp(all[i], all[j]) || dir * (all[i].row.id - all[j].row.id));
    return Int32Array.from(idx);
  }

  private personRef(id: number | null): PersonRef | null {
    const p = id === null ? null : this.person(id);
    if (!p) return null;
    const m = p.manager === null ? null : this.person(p.manager);
    return {
      id: p.id, display_name: p.name, email: p.email, title: p.title, department: p.department, status: p.status,
      left_at: p.leftAt === null ? null : rfc3339(p.leftAt), manager_id: m?.id ?? null, manager_name: m?.name ?? null,
    };
  }

  detail(id: number): IdentityDetail {
    const ident = this.identity(id);
    if (!ident) throw apiError('not_found', `no identity with id ${id}`);
    const now = this.now;
    const owner = ident.owner === null ? null : this.person(ident.owner);
    const credentials: CredentialView[] = ident.creds.map((c) => ({
      id: c.id, kind: c.kind, display_name: c.name, external_id: `cred-${String(c.id).padStart(7, '0')}`,
      created_at: rfc3339(c.created), expires_at: c.expires === null ? null : rfc3339(c.expires),
      last_rotated_at: c.rotated === null ? null : rfc3339(c.rotated), last_used_at: c.used === null ? null : rfc3339(c.used),
      age_days: days(c.rotated ?? c.created, now), expires_in_days: c.expires === null ? null : days(now, c.expires),
      last_used_days: c.used === null ? null : days(c.used, now),
    }));
    const grants: GrantView[] = ident.grants.map((g) => {
      const res = this.resource(g.resource);
      const [permission, privilege, high] = PERMISSIONS[res.cls][g.perm];
      return {
        resource_id: res.id, resource_name: res.name, resource_kind: res.kind, sensitivity: res.sensitivity,
        environment: res.environment, permission, privilege, high_consequence: high,
        last_used_at: g.used === null ? null : rfc3339(g.used),
      };
    });
    grants.sort((a, b) => Number(b.high_consequence) - Number(a.high_consequence) || cmpStr(a.resource_name, b.resource_name) || cmpStr(a.permission, b.permission));
    const deleg = (list: [number, DelegationKind][]): DelegationView[] =>
      list.map(([other, kind]) => {
        const o = this.identity(other)!;
        return { kind, other_id: other, other_name: o.name, other_kind: o.kind };
      }).sort((a, b) => cmpStr(a.other_name, b.other_name));
    const findings: FindingView[] = this.findings(ident, owner)
      .map((f) => {
        const { owasp, owasp_title, severity, title, fix } = checkOf(f.check);
        return { check_id: f.check, owasp, owasp_title, severity, title, evidence: f.evidence, fix };
      })
      .sort((a, b) => SEVERITY_RANK[b.severity] - SEVERITY_RANK[a.severity] || cmpStr(a.check_id, b.check_id));
    return {
      id, name: ident.name, external_id: ident.externalId, kind: ident.kind, agent_class: ident.cls, status: ident.status,
      purpose: ident.purpose, source: SOURCES[ident.source - 1], team: ident.team, environment: ident.environment,
      registered: ident.registered, intended_blast_radius: ident.intended, created_at: rfc3339(ident.created),
      last_used_at: ident.lastUsed === null ? null : rfc3339(ident.lastUsed),
      last_reviewed_at: ident.lastReviewed === null ? null : rfc3339(ident.lastReviewed),
      owner: this.personRef(ident.owner), builder: this.personRef(ident.builder),
      credentials, grants, delegations_out: deleg(this.delegationsOut(id)), delegations_in: deleg(this.delegationsIn(id)), findings,
    };
  }
}

function cmpStr(a: string, b: string): number {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  return x < y ? -1 : x > y ? 1 : 0;
}

const SEPARATORS = /[^\p{L}\p{N}_]+/gu;

/** Lower-case words, split like the FTS query builder (on anything but letters, digits and `_`). */
export function tokens(s: string): string[] {
  return s.toLowerCase().split(SEPARATORS).filter(Boolean);
}

/** The words of `s`, lower-cased and joined by single spaces. */
function wordsOf(s: string): string {
  return s.toLowerCase().replace(SEPARATORS, ' ');
}

function apiError(code: ErrorCode, message: string): ApiError {
  return { code, message };
}

/** A backend answering from a `MockOrg`, asynchronously like IPC. */
export function createMockBackend(opts: MockOptions = {}): Backend {
  const org = new MockOrg(opts);
  const sources = new MockSources();
  const latency = opts.latencyMs ?? 15;
  const ready = org.prepare();
  const answer = <T>(f: () => T): Promise<T> =>
    ready.then(() => new Promise((resolve, reject) => {
      setTimeout(() => {
        try {
          resolve(structuredClone(f()));
        } catch (e) {
          reject(e);
        }
      }, latency);
    }));
  return {
    summary: () => answer(() => org.summary()),
    inventory: (query) => answer(() => org.inventory(query)),
    inventoryFacets: () => answer(() => org.facets()),
    identity: (id) => answer(() => org.detail(id)),
    sourceKinds: () => answer(() => SOURCE_KINDS),
    findingChecks: () => answer(() => FINDING_CHECKS),
    sources: () => answer(() => sources.list()),
    addSource: (n) => answer(() => sources.add(n)),
    setSourceSecret: (id, secret) => answer(() => sources.setSecret(id, secret)),
    setSourceWriteBack: (id, on) => answer(() => sources.setWriteBack(id, on)),
    testSource: (id) => sources.test(id),
    syncSource: (id) => sources.sync(id),
    syncProgress: (id) => answer(() => sources.progress(id)),
    cancelSync: (id) => answer(() => sources.cancel(id)),
    syncRuns: (source, limit) => answer(() => sources.listRuns(source, limit)),
    runEvents: (run) => answer(() => sources.runEvents(run)),
    beginSourceSignIn: (id) => answer(() => sources.beginSignIn(id)),
    finishSourceSignIn: (id) => sources.finishSignIn(id),
    cancelSourceSignIn: (id) => answer(() => sources.cancelSignIn(id)),
    // The mock's organisation is not the demo (dataset `mock-N`): nothing to remove.
    clearDemo: () => answer(() => {
      throw { code: 'invalid_input', message: 'this cache holds no demo organisation: nothing was removed' };
    }),
  };
}
