import { describe, expect, it } from 'vitest';
import { createMockPosture, layoutBlast, sparkline } from './posture';

describe('sparkline', () => {
  it('scales a series into the box, lowest at the bottom', () => {
    expect(sparkline([0, 5, 10], 100, 20)).toBe('0.0,20.0 50.0,10.0 100.0,0.0');
    expect(sparkline([3, 3], 10, 10)).toBe('0.0,10.0 10.0,10.0');
    expect(sparkline([], 10, 10)).toBe('');
  });
});

describe('blast graph layout', () => {
  it('puts identities in hop columns and resources last, with edges along the chains', async () => {
    const b = await createMockPosture().blast(1);
    const { nodes, edges, columns } = layoutBlast(b);
    expect(columns).toBe(3);
    expect(nodes.find((n) => n.id === 'i1')).toMatchObject({ column: 0, kind: 'identity' });
    expect(nodes.find((n) => n.id === 'i2')).toMatchObject({ column: 1 });
    expect(nodes.find((n) => n.id === 'r9')).toMatchObject({ column: 2, kind: 'resource', sensitivity: 'critical' });
    expect(edges).toContainEqual({ from: 'i1', to: 'i2', label: 'assume_role' });
    expect(edges).toContainEqual({ from: 'i2', to: 'r9', label: 'admin' });
  });
});
