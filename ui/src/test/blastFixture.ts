// A small blast radius for tests.
import type { BlastRadius } from '../bindings';

const hop = (id: number, name: string, via: string | null, condition: string | null = null, reason: string | null = null) => ({
  identity_id: id,
  name,
  via,
  condition,
  reason,
});

/** An agent (1) that assumes two roles (2, 3); role 2 calls 4; `n` resources held by 2, 3 or 4. */
export function blast(n: number): BlastRadius {
  const chains = {
    2: [hop(1, 'agent', null), hop(2, 'role-a', 'assume_role')],
    3: [hop(1, 'agent', null), hop(3, 'role-b', 'assume_role')],
    4: [hop(1, 'agent', null), hop(2, 'role-a', 'assume_role'), hop(4, 'svc-c', 'calls')],
  };
  return {
    identity_id: 1,
    name: 'agent',
    kind: 'ai_agent',
    score: 1,
    explanation: [],
    reachable: [
      { identity_id: 2, name: 'role-a', kind: 'workload', hops: 1, chain: chains[2] },
      { identity_id: 3, name: 'role-b', kind: 'workload', hops: 1, chain: chains[3] },
      { identity_id: 4, name: 'svc-c', kind: 'service_account', hops: 2, chain: chains[4] },
    ],
    resources: Array.from({ length: n }, (_, i) => {
      const holder = ([2, 3, 4] as const)[i % 3];
      return {
        resource_id: 100 + i,
        name: `resource-${i}-with-a-fairly-long-name`,
        kind: 'bucket',
        sensitivity: i === 0 ? 'critical' : 'low',
        environment: 'production',
        hops: chains[holder].length - 1,
        chain: chains[holder],
        permissions: [{ permission: 'write', privilege: 'write', high_consequence: false, holder: 'x', condition: null }],
        contribution: n - i,
      };
    }),
    high_consequence: [],
    intended: '',
    differences: [],
  } as BlastRadius;
}

