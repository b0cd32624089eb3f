import { describe, expect, it } from 'vitest';
import { blast } from '../test/blastFixture';
import { buildGraph, fit, focusSet, layoutInput, moveAlong, place, RESOURCE_STEP, shortLabel, zoomAt } from './blastGraph';

describe('blast graph', () => {
  it('draws the riskiest resources and counts the rest', () => {
    const g = buildGraph(blast(90), RESOURCE_STEP);
    expect(g.nodes.filter((n) => n.kind === 'resource')).toHaveLength(RESOURCE_STEP);
    expect(g.hidden).toBe(90 - RESOURCE_STEP);
    expect(g.resources).toBe(90);
    expect(g.nodes.find((n) => n.kind === 'resource')?.label).toBe('resource-0-with-a-fairly-long-name');
    const all = buildGraph(blast(90), 90);
    expect(all.hidden).toBe(0);
    expect(all.nodes).toHaveLength(4 + 90);
    expect(buildGraph(blast(5), RESOURCE_STEP).hidden).toBe(0);
  });

  it('links each identity from the previous hop of its chain and each resource from its holder', () => {
    const g = buildGraph(blast(3), 3);
    const links = g.edges.map((e) => `${e.from}>${e.to}:${e.label}`);
    expect(links).toEqual(['i1>i2:assume_role', 'i1>i3:assume_role', 'i2>i4:calls', 'i2>r100:write', 'i3>r101:write', 'i4>r102:write']);
  });

  it('gives dagre each node as wide as its (cut) label and each edge label a box', () => {
    const g = buildGraph(blast(1), 1);
    const input = layoutInput(g);
    const agent = input.nodes.find((n) => n.id === 'i1')!;
    const res = input.nodes.find((n) => n.id === 'r100')!;
    expect(res.width).toBeGreaterThan(agent.width);
    expect(input.edges.find((e) => e.to === 'i2')!.width).toBeGreaterThan(0);
    expect(shortLabel('x'.repeat(100))).toHaveLength(40);
    expect(shortLabel('short')).toBe('short');
  });

  it('places no two nodes on top of each other, and hops left to right', () => {
    const g = buildGraph(blast(40), 40);
    const p = place(layoutInput(g));
    const boxes = [...p.nodes.entries()];
    for (let i = 0; i < boxes.length; i++) {
      for (let j = i + 1; j < boxes.length; j++) {
        const [, a] = boxes[i];
        const [, b] = boxes[j];
        const apart = Math.abs(a.x - b.x) * 2 >= a.width + b.width || Math.abs(a.y - b.y) * 2 >= a.height + b.height;
        expect(apart, `${boxes[i][0]} and ${boxes[j][0]} overlap`).toBe(true);
      }
    }
    expect(p.nodes.get('i1')!.x).toBeLessThan(p.nodes.get('i2')!.x);
    expect(p.nodes.get('i2')!.x).toBeLessThan(p.nodes.get('i4')!.x);
    expect(p.width).toBeGreaterThan(0);
    expect(p.edges).toHaveLength(g.edges.length);
  });

  it('focusing a node keeps the chains through it: who reaches it and what it reaches', () => {
    const g = buildGraph(blast(3), 3);
    const f = focusSet(g.edges, 'i2');
    expect([...f.nodes].sort()).toEqual(['i1', 'i2', 'i4', 'r100', 'r102']);
    expect([...f.edges].map((i) => `${g.edges[i].from}>${g.edges[i].to}`).sort()).toEqual(['i1>i2', 'i2>i4', 'i2>r100', 'i4>r102']);
    const leaf = focusSet(g.edges, 'r101');
    expect([...leaf.nodes].sort()).toEqual(['i1', 'i3', 'r101']);
  });

  it('arrow keys move along the edges and within a layer', () => {
    const g = buildGraph(blast(3), 3);
    const p = place(layoutInput(g)).nodes;
    expect(moveAlong(g.edges, p, 'i1', 'ArrowLeft')).toBeNull();
    const first = moveAlong(g.edges, p, 'i1', 'ArrowRight');
    expect(['i2', 'i3']).toContain(first);
    const other = first === 'i2' ? 'i3' : 'i2';
    const below = p.get('i2')!.y < p.get('i3')!.y ? 'i3' : 'i2';
    const above = below === 'i2' ? 'i3' : 'i2';
    expect(moveAlong(g.edges, p, above, 'ArrowDown')).toBe(below);
    expect(moveAlong(g.edges, p, below, 'ArrowUp')).toBe(above);
    expect(moveAlong(g.edges, p, first!, 'ArrowLeft')).toBe('i1');
    expect(first).not.toBe(other);
    expect(moveAlong(g.edges, p, 'r101', 'ArrowRight')).toBeNull();
  });

  it('zooms about a point and fits a drawing into the viewport', () => {
    const v = zoomAt({ scale: 1, x: 0, y: 0 }, 2, 100, 50);
    expect(v).toEqual({ scale: 2, x: -100, y: -50 });
    expect(zoomAt({ scale: 1, x: 0, y: 0 }, 100, 0, 0).scale).toBe(4);
    expect(zoomAt({ scale: 1, x: 0, y: 0 }, 0.001, 0, 0).scale).toBe(0.25);
    expect(fit(2000, 400, 1000, 400).scale).toBe(0.5);
    expect(fit(200, 100, 1000, 400)).toEqual({ scale: 1, x: 400, y: 150 });
  });
});

describe('the mock backend blast radius', () => {
  it('reaches more resources than drawn at first, each linked from its holder', async () => {
    const { createMockPosture } = await import('./posture');
    const b = await createMockPosture().blast(1);
    const g = buildGraph(b, RESOURCE_STEP);
    expect(g.hidden).toBe(b.resources.length - RESOURCE_STEP);
    expect(g.hidden).toBeGreaterThan(0);
    expect(g.edges).toContainEqual({ from: 'i1', to: 'i2', label: 'assume_role' });
    expect(g.edges).toContainEqual({ from: 'i2', to: 'r9', label: 'admin' });
    expect(g.edges).toContainEqual({ from: 'i2', to: 'i3', label: 'impersonate' });
  });
});
