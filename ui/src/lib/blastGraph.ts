// The blast-radius graph: which nodes and edges to draw (the riskiest
// resources first, the rest counted and revealable), their layout by dagre
// (a layered graph layout: nodes and edge labels never overlap), the chains
// through a focused node, keyboard moves along the edges, and zoom.

import { Graph, layout } from '@dagrejs/dagre';
import type { BlastRadius, Sensitivity } from '../bindings';

export interface BNode {
  id: string;
  label: string;
  kind: 'identity' | 'resource';
  /** Delegation hops from the identity (resources: hops of their holder + 1). */
  hops: number;
  sensitivity?: Sensitivity;
  /** A resource's permissions as held, each with what it holds under ("s3:* (through the grant on *), unless …"). */
  detail?: string;
}

export interface BEdge {
  from: string;
  to: string;
  label: string;
  /** The condition the link holds under (a conditional AWS trust), if any. */
  condition?: string | null;
  /** Why the link exists, when its kind alone does not say. */
  reason?: string | null;
}

/** A link of the chains that says more than its kind: a condition or a reason. */
export interface ChainLink {
  from: string;
  to: string;
  via: string;
  condition: string | null;
  reason: string | null;
}

/** The links of the chains that hold only under a condition or say why they exist, once each, in chain order. */
export function notableLinks(b: BlastRadius): ChainLink[] {
  const out: ChainLink[] = [];
  const seen = new Set<string>();
  for (const r of b.reachable) {
    for (let i = 1; i < r.chain.length; i++) {
      const h = r.chain[i];
      const prev = r.chain[i - 1];
      if (!h.condition && !h.reason) continue;
      const key = `${prev.identity_id}>${h.identity_id}>${h.via ?? ''}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push({ from: prev.name, to: h.name, via: h.via ?? '', condition: h.condition, reason: h.reason });
    }
  }
  return out;
}

/** What an edge's label says: its kind, and "conditional" when it holds only under a condition. */
export function edgeLabel(via: string | null, condition: string | null | undefined): string {
  if (!via) return '';
  return condition ? `${via} · conditional` : via;
}

export interface BGraph {
  nodes: BNode[];
  edges: BEdge[];
  /** Resources in reach that are not drawn. */
  hidden: number;
  /** Resources in reach. */
  resources: number;
}

/** How many resources are drawn at first; "show more" adds this many. */
export const RESOURCE_STEP = 15;

/**
 * The nodes and edges to draw: the identity, every identity it reaches (with
 * the last link of its chain), and the first `maxResources` resources (the
 * backend lists them riskiest first) linked from the identity that holds them.
 */
export function buildGraph(b: BlastRadius, maxResources: number): BGraph {
  const nodes: BNode[] = [{ id: `i${b.identity_id}`, label: b.name, kind: 'identity', hops: 0 }];
  const seen = new Set(nodes.map((n) => n.id));
  for (const r of b.reachable) {
    const id = `i${r.identity_id}`;
    if (seen.has(id)) continue;
    seen.add(id);
    nodes.push({ id, label: r.name, kind: 'identity', hops: r.hops });
  }
  const edges: BEdge[] = [];
  const edgeKeys = new Set<string>();
  const addEdge = (e: BEdge) => {
    const key = `${e.from}>${e.to}`;
    if (e.from === e.to || edgeKeys.has(key) || !seen.has(e.from) || !seen.has(e.to)) return;
    edgeKeys.add(key);
    edges.push(e);
  };
  for (const r of b.reachable) {
    const last = r.chain[r.chain.length - 1];
    const prev = r.chain[r.chain.length - 2];
    if (last && prev)
      addEdge({
        from: `i${prev.identity_id}`,
        to: `i${last.identity_id}`,
        label: edgeLabel(last.via, last.condition),
        ...(last.condition ? { condition: last.condition } : {}),
        ...(last.reason ? { reason: last.reason } : {}),
      });
  }
  const shown = b.resources.slice(0, Math.max(0, maxResources));
  for (const r of shown) {
    const id = `r${r.resource_id}`;
    if (seen.has(id)) continue;
    seen.add(id);
    const detail = r.permissions.map((p) => (p.condition ? `${p.permission}, ${p.condition}` : p.permission)).join('; ');
    nodes.push({ id, label: r.name, kind: 'resource', hops: r.hops + 1, sensitivity: r.sensitivity, ...(detail ? { detail } : {}) });
    const holder = r.chain[r.chain.length - 1];
    const top = r.permissions[0];
    if (holder) addEdge({ from: `i${holder.identity_id}`, to: id, label: top ? top.privilege : '' });
  }
  return { nodes, edges, hidden: b.resources.length - shown.length, resources: b.resources.length };
}

export const NODE_HEIGHT = 24;
const CHAR_W = 6.6;
const MAX_LABEL = 40;
const EDGE_CHAR_W = 5.4;

/** A node's label as drawn (long names are cut, the full name stays in its title). */
export function shortLabel(label: string): string {
  return label.length > MAX_LABEL ? label.slice(0, MAX_LABEL - 1) + '…' : label;
}

export interface LayoutInput {
  nodes: { id: string; width: number; height: number }[];
  edges: { from: string; to: string; width: number; height: number }[];
}

/** What dagre is asked to place: each node as wide as its label, each edge label as a box of its own. */
export function layoutInput(g: Pick<BGraph, 'nodes' | 'edges'>): LayoutInput {
  return {
    nodes: g.nodes.map((n) => ({ id: n.id, width: Math.ceil(shortLabel(n.label).length * CHAR_W + 16), height: NODE_HEIGHT })),
    edges: g.edges.map((e) => ({ from: e.from, to: e.to, width: e.label ? Math.ceil(e.label.length * EDGE_CHAR_W + 6) : 0, height: e.label ? 12 : 0 })),
  };
}

export interface Placed {
  /** Centre and size of each node. */
  nodes: Map<string, { x: number; y: number; width: number; height: number }>;
  /** Each edge's polyline and the centre of its label. */
  edges: { from: string; to: string; points: { x: number; y: number }[]; labelX: number; labelY: number }[];
  width: number;
  height: number;
}

/** Lays the graph out left to right (hops as layers). */
export function place(input: LayoutInput): Placed {
  const g = new Graph();
  g.setGraph({ rankdir: 'LR', nodesep: 12, ranksep: 56, edgesep: 8, marginx: 12, marginy: 12 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of input.nodes) g.setNode(n.id, { width: n.width, height: n.height });
  for (const e of input.edges) g.setEdge(e.from, e.to, { width: e.width, height: e.height, labelpos: 'c' });
  layout(g);
  const nodes = new Map<string, { x: number; y: number; width: number; height: number }>();
  for (const n of input.nodes) {
    const p = g.node(n.id) as { x: number; y: number };
    nodes.set(n.id, { x: p.x, y: p.y, width: n.width, height: n.height });
  }
  const edges = input.edges.map((e) => {
    const l = g.edge(e.from, e.to) as { points: { x: number; y: number }[]; x?: number; y?: number };
    const mid = l.points[Math.floor(l.points.length / 2)] ?? { x: 0, y: 0 };
    return { from: e.from, to: e.to, points: l.points, labelX: l.x ?? mid.x, labelY: l.y ?? mid.y };
  });
  const gl = g.graph() as { width?: number; height?: number };
  return { nodes, edges, width: Math.ceil(gl.width ?? 0), height: Math.ceil(gl.height ?? 0) };
}

/**
 * The chains through `id`: every node upstream of it (who can reach it) and
 * downstream (what it reaches), and the edges between them.
 */
export function focusSet(edges: BEdge[], id: string): { nodes: Set<string>; edges: Set<number> } {
  const nodes = new Set<string>([id]);
  const onPath = new Set<number>();
  const walk = (start: string, forward: boolean) => {
    const stack = [start];
    const seen = new Set<string>([start]);
    while (stack.length) {
      const at = stack.pop() as string;
      edges.forEach((e, i) => {
        const [here, there] = forward ? [e.from, e.to] : [e.to, e.from];
        if (here !== at) return;
        onPath.add(i);
        nodes.add(there);
        if (!seen.has(there)) {
          seen.add(there);
          stack.push(there);
        }
      });
    }
  };
  walk(id, true);
  walk(id, false);
  return { nodes, edges: onPath };
}

/**
 * Where an arrow key goes from `id`: → to the first node it links to, ← to
 * the first that links to it, ↑/↓ to the node above or below in the same
 * layer. Order within a layer is top to bottom. Null when there is none.
 */
export function moveAlong(
  edges: BEdge[],
  positions: Map<string, { x: number; y: number }>,
  id: string,
  key: string,
): string | null {
  const byY = (ids: string[]) => ids.filter((n) => positions.has(n)).sort((a, b) => positions.get(a)!.y - positions.get(b)!.y);
  const here = positions.get(id);
  if (!here) return null;
  if (key === 'ArrowRight') return byY(edges.filter((e) => e.from === id).map((e) => e.to))[0] ?? null;
  if (key === 'ArrowLeft') return byY(edges.filter((e) => e.to === id).map((e) => e.from))[0] ?? null;
  if (key === 'ArrowUp' || key === 'ArrowDown') {
    const layer = byY([...positions.keys()].filter((n) => Math.abs(positions.get(n)!.x - here.x) < 1));
    const i = layer.indexOf(id) + (key === 'ArrowDown' ? 1 : -1);
    return layer[i] ?? null;
  }
  return null;
}

export interface View {
  scale: number;
  x: number;
  y: number;
}

export const MIN_SCALE = 0.25;
export const MAX_SCALE = 4;

/** Zooms by `factor` keeping the point (px, py) of the viewport where it is. */
export function zoomAt(v: View, factor: number, px: number, py: number): View {
  const scale = Math.min(MAX_SCALE, Math.max(MIN_SCALE, v.scale * factor));
  const k = scale / v.scale;
  return { scale, x: px - (px - v.x) * k, y: py - (py - v.y) * k };
}

/** The view that fits a `w` x `h` drawing into a `vw` x `vh` viewport (never enlarged). */
export function fit(w: number, h: number, vw: number, vh: number): View {
  if (w <= 0 || h <= 0 || vw <= 0 || vh <= 0) return { scale: 1, x: 0, y: 0 };
  const scale = Math.max(MIN_SCALE, Math.min(1, vw / w, vh / h));
  return { scale, x: (vw - w * scale) / 2, y: Math.max(0, (vh - h * scale) / 2) };
}
