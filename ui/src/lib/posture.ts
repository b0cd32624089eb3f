// Posture and blast radius in the UI: the calls (Tauri commands, or an
// in-browser mock), the sparkline geometry and the blast graph layout.

import { invoke } from '@tauri-apps/api/core';
import type { BlastRadius, PostureView, Sensitivity } from '../bindings';
import { FINDING_CHECKS } from './catalogue.gen';
import { inTauri, toUserError } from './ipc';

export interface PostureApi {
  posture(): Promise<PostureView>;
  blast(identity: number): Promise<BlastRadius>;
  blastDocument(identity: number): Promise<string>;
}

const tauriApi: PostureApi = {
  posture: () => invoke<PostureView>('posture'),
  blast: (identity) => invoke<BlastRadius>('blast_radius', { identity }),
  blastDocument: (identity) => invoke<string>('blast_document', { identity }),
};

let current: PostureApi | null = null;

export function setPostureApi(api: PostureApi): void {
  current = api;
}

async function call<T>(f: (api: PostureApi) => Promise<T>): Promise<T> {
  if (!current) current = inTauri() ? tauriApi : createMockPosture();
  try {
    return await f(current);
  } catch (e) {
    throw toUserError(e);
  }
}

export const posture = {
  view: () => call((a) => a.posture()),
  blast: (id: number) => call((a) => a.blast(id)),
  blastDocument: (id: number) => call((a) => a.blastDocument(id)),
};

/** SVG polyline points for a series, scaled into width x height (min at the bottom). */
export function sparkline(values: number[], width: number, height: number): string {
  if (values.length === 0) return '';
  const min = Math.min(...values);
  const max = Math.max(...values);
  const span = max - min || 1;
  const step = values.length > 1 ? width / (values.length - 1) : 0;
  return values
    .map((v, i) => `${(i * step).toFixed(1)},${(height - ((v - min) / span) * height).toFixed(1)}`)
    .join(' ');
}

/** Identities per check in the mock organisation. */
const MOCK_COUNTS: Record<string, number> = { 'admin-on-critical': 323, 'secret-never-expires': 389, 'no-owner': 102 };

export function createMockPosture(): PostureApi {
  const figures = {
    nhis: 958, ai_agents: 275, owned: 856, owned_pct: 89.4, orphaned: 102, stale_credentials: 430, never_expiring: 389,
    expired_credentials: 434, unreviewed: 812, unregistered_agents: 99, high_blast: 120, findings: 3573, critical_findings: 323, high_findings: 488,
  };
  const trend = Array.from({ length: 13 }, (_, i) => ({
    at: `2026-${String(8 + Math.floor(i / 4)).padStart(2, '0')}-${String(1 + (i % 4) * 7).padStart(2, '0')}T00:00:00Z`,
    origin: i < 12 ? 'reconstructed' : 'load',
    figures: { ...figures, nhis: 940 + i, orphaned: 88 + i, never_expiring: 360 + 2 * i, stale_credentials: i < 12 ? null : 430, unreviewed: i < 12 ? null : 812, high_blast: i < 12 ? null : 120 },
  }));
  const blast: BlastRadius = {
    identity_id: 1,
    name: 'fin-invoice-triage-agent-0042',
    kind: 'ai_agent',
    score: 812.4,
    explanation: ['486.0 from payments-prod (critical sensitivity admin, high-consequence)'],
    reachable: [
      { identity_id: 2, name: 'deploy-role', kind: 'workload', hops: 1, chain: [{ identity_id: 1, name: 'fin-invoice-triage-agent-0042', via: null, condition: null, reason: null }, { identity_id: 2, name: 'deploy-role', via: 'assume_role', condition: null, reason: null }] },
      { identity_id: 3, name: 'ledger-sync-svc', kind: 'service_account', hops: 2, chain: [{ identity_id: 1, name: 'fin-invoice-triage-agent-0042', via: null, condition: null, reason: null }, { identity_id: 2, name: 'deploy-role', via: 'assume_role', condition: null, reason: null }, { identity_id: 3, name: 'ledger-sync-svc', via: 'impersonate', condition: null, reason: null }] },
    ],
    resources: [
      { resource_id: 9, name: 'payments-prod', kind: 'payments_api', sensitivity: 'critical', environment: 'production', hops: 1,
        chain: [{ identity_id: 1, name: 'fin-invoice-triage-agent-0042', via: null, condition: null, reason: null }, { identity_id: 2, name: 'deploy-role', via: 'assume_role', condition: null, reason: null }],
        permissions: [{ permission: 'admin', privilege: 'admin', high_consequence: true, holder: 'deploy-role', condition: null }], contribution: 388.8 },
    ],
    high_consequence: [{ category: 'payments', resource: 'payments-prod', permission: 'admin', holder: 'deploy-role', hops: 1 }],
    intended: 'Reads invoices only (read-only).',
    differences: ['documented as read-only, but can administer payments-prod'],
  };
  // A wide reach, as the real top identities have: more resources than the graph draws at first.
  const sens: Sensitivity[] = ['high', 'medium', 'medium', 'low'];
  for (let i = 0; i < 40; i++) {
    const viaSvc = i % 3 === 0;
    const chain = viaSvc ? blast.reachable[1].chain : blast.reachable[0].chain;
    blast.resources.push({
      resource_id: 10 + i, name: `${['s3', 'sql', 'kv', 'queue'][i % 4]}-finance-${String(i).padStart(2, '0')}`, kind: 'bucket', sensitivity: sens[i % 4],
      environment: 'production', hops: chain.length - 1, chain, permissions: [{ permission: 'write', privilege: i % 5 === 0 ? 'admin' : 'write', high_consequence: false, holder: chain[chain.length - 1].name, condition: null }],
      contribution: 200 - i,
    });
  }
  return {
    posture: async () => ({
      at: '2026-11-23T00:00:00Z',
      figures,
      trend,
      // Counts per check; the texts are the core's (catalogue.gen.ts), as the real posture's are.
      findings: FINDING_CHECKS.checks
        .filter((c) => c.id in MOCK_COUNTS)
        .map(({ id, owasp, owasp_title, severity, title, fix }) => ({ check_id: id, owasp, owasp_title, severity, title, fix, identities: MOCK_COUNTS[id] ?? 0 })),
      top_blast: [{ identity_id: 1, name: blast.name, kind: 'ai_agent', score: 812.4, reachable_identities: 1, resources: 1, high_consequence: 1 }],
      fix_first: FINDING_CHECKS.checks
        .filter((c) => c.id === 'admin-on-critical' || c.id === 'secret-never-expires')
        .map(({ id, severity, title, fix }) => ({
          identity_id: 1, name: blast.name, kind: 'ai_agent' as const, check_id: id, severity, title, fix,
          evidence: id === 'admin-on-critical' ? '2 admin grant(s) on critical resources, e.g. s3-finance-00' : '1 secret(s) without expiry, e.g. client-secret-1',
          blast_score: 812.4, priority: (severity === 'critical' ? 8 : 2) * 813.4,
        }))
        // As the core orders them: severity weight × (1 + blast score).
        .sort((a, b) => b.priority - a.priority),
    }),
    blast: async () => blast,
    blastDocument: async () => `# Blast radius: ${blast.name}\n`,
  };
}
