import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { BlastRadius } from '../bindings';
import { errorHeadline, toUserError, type UserError } from '../lib/ipc';
import { posture } from '../lib/posture';
import { buildGraph, fit, focusSet, layoutInput, moveAlong, notableLinks, place, RESOURCE_STEP, shortLabel, zoomAt, type View } from '../lib/blastGraph';
import { identityHref } from '../lib/route';
import { Page, TableFrame } from '../components/Page';

const COLOURS: Record<string, string> = { low: '#86efac', medium: '#fde047', high: '#fdba74', critical: '#fca5a5' };
const STROKES: Record<string, string> = { low: '#15803d', medium: '#a16207', high: '#c2410c', critical: '#b91c1c' };

/** The viewport's size; the graph is drawn to fit it. */
function useSize(ref: { current: HTMLElement | null }): { w: number; h: number } {
  const [size, setSize] = useState({ w: 900, h: 460 });
  useLayoutEffect(() => {
    const el = ref.current;
    if (!el) return undefined;
    const measure = () => el.clientWidth > 0 && setSize({ w: el.clientWidth, h: el.clientHeight || 460 });
    measure();
    if (typeof ResizeObserver === 'undefined') return undefined;
    const ro = new ResizeObserver(measure);
    ro.observe(el);
    return () => ro.disconnect();
  }, []);
  return size;
}

function path(points: { x: number; y: number }[]): string {
  return points.map((p, i) => `${i ? 'L' : 'M'}${p.x.toFixed(1)} ${p.y.toFixed(1)}`).join(' ');
}

function Graph({ b }: { b: BlastRadius }) {
  const [limit, setLimit] = useState(RESOURCE_STEP);
  const g = useMemo(() => buildGraph(b, limit), [b, limit]);
  const placed = useMemo(() => place(layoutInput(g)), [g]);
  const [focus, setFocus] = useState<string | null>(null);
  const [cursor, setCursor] = useState<string>(g.nodes[0]?.id ?? '');
  const box = useRef<HTMLDivElement>(null);
  const svg = useRef<SVGSVGElement>(null);
  const size = useSize(box);
  const [view, setView] = useState<View>({ scale: 1, x: 0, y: 0 });
  const drag = useRef<{ x: number; y: number; vx: number; vy: number } | null>(null);
  const byKeyboard = useRef(false);

  // A new drawing (more resources shown, a resize) is fitted into the viewport.
  useLayoutEffect(() => setView(fit(placed.width, placed.height, size.w, size.h)), [placed, size.w, size.h]);
  // A focus on a node no longer drawn is dropped.
  useEffect(() => {
    if (focus && !placed.nodes.has(focus)) setFocus(null);
    if (!placed.nodes.has(cursor) && g.nodes[0]) setCursor(g.nodes[0].id);
  }, [placed]);
  // Keyboard moves take the DOM focus along (roving tabindex) and keep the node in view.
  useEffect(() => {
    if (!byKeyboard.current) return;
    byKeyboard.current = false;
    svg.current?.querySelector<SVGGElement>(`[data-node="${cursor}"]`)?.focus();
    const p = placed.nodes.get(cursor);
    if (!p) return;
    const sx = p.x * view.scale + view.x;
    const sy = p.y * view.scale + view.y;
    if (sx < 40 || sx > size.w - 40 || sy < 20 || sy > size.h - 20) setView({ ...view, x: size.w / 2 - p.x * view.scale, y: size.h / 2 - p.y * view.scale });
  }, [cursor]);

  const lit = focus ? focusSet(g.edges, focus) : null;
  const zoom = (factor: number, px = size.w / 2, py = size.h / 2) => setView((v) => zoomAt(v, factor, px, py));
  const toggleFocus = (id: string) => setFocus((f) => (f === id ? null : id));

  const onKeyDown = (e: KeyboardEvent) => {
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    if (e.key.startsWith('Arrow')) {
      const next = moveAlong(g.edges, placed.nodes, cursor, e.key);
      e.preventDefault();
      if (next) {
        byKeyboard.current = true;
        setCursor(next);
      }
    } else if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      toggleFocus(cursor);
    } else if (e.key === 'Escape' && focus) {
      e.preventDefault();
      setFocus(null);
    } else if (e.key === '+' || e.key === '=') {
      e.preventDefault();
      zoom(1.25);
    } else if (e.key === '-' || e.key === '_') {
      e.preventDefault();
      zoom(0.8);
    } else if (e.key === '0') {
      e.preventDefault();
      setView(fit(placed.width, placed.height, size.w, size.h));
    }
  };
  const onWheel = (e: WheelEvent) => {
    e.preventDefault();
    const r = svg.current?.getBoundingClientRect();
    zoom(Math.exp(-e.deltaY * 0.0015), e.clientX - (r?.left ?? 0), e.clientY - (r?.top ?? 0));
  };
  const onPointerDown = (e: PointerEvent) => {
    if ((e.target as Element).closest('[data-node]')) return;
    drag.current = { x: e.clientX, y: e.clientY, vx: view.x, vy: view.y };
    (e.currentTarget as Element).setPointerCapture?.(e.pointerId);
  };
  const onPointerMove = (e: PointerEvent) => {
    const d = drag.current;
    if (d) setView((v) => ({ ...v, x: d.vx + e.clientX - d.x, y: d.vy + e.clientY - d.y }));
  };
  const onPointerUp = () => {
    drag.current = null;
  };
  const focusedLabel = focus ? g.nodes.find((n) => n.id === focus)?.label : null;

  return (
    <div class="blast-graph-wrap">
      <div class="blast__toolbar" role="toolbar" aria-label="Graph view">
        <button type="button" class="button button--small" data-testid="zoom-in" aria-label="Zoom in" onClick={() => zoom(1.25)}>
          +
        </button>
        <button type="button" class="button button--small" data-testid="zoom-out" aria-label="Zoom out" onClick={() => zoom(0.8)}>
          −
        </button>
        <button type="button" class="button button--small" data-testid="zoom-fit" onClick={() => setView(fit(placed.width, placed.height, size.w, size.h))}>
          Fit
        </button>
        <span class="muted small" data-testid="zoom-level">
          {Math.round(view.scale * 100)}%
        </span>
        {focus && (
          <span class="blast__focus" data-testid="blast-focus">
            Chains through <b>{focusedLabel}</b>{' '}
            <button type="button" class="link-button" onClick={() => setFocus(null)}>
              show all
            </button>
          </span>
        )}
      </div>
      <div class="blast__graph" ref={box}>
        <svg
          ref={svg}
          class={`blast-graph${drag.current ? ' is-dragging' : ''}`}
          data-testid="blast-graph"
          role="group"
          aria-label={`Blast radius graph: ${g.nodes.length} nodes. Arrow keys move along the links, Enter focuses a node's chains, + and − zoom.`}
          width="100%"
          height="100%"
          onKeyDown={onKeyDown}
          onWheel={onWheel}
          onPointerDown={onPointerDown}
          onPointerMove={onPointerMove}
          onPointerUp={onPointerUp}
          onPointerCancel={onPointerUp}
        >
          <defs>
            <marker id="blast-arrow" viewBox="0 0 8 8" refX="8" refY="4" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
              <path d="M0 0 8 4 0 8z" fill="#64748b" />
            </marker>
          </defs>
          <g transform={`translate(${view.x.toFixed(1)} ${view.y.toFixed(1)}) scale(${view.scale.toFixed(3)})`}>
            {placed.edges.map((e, i) => {
              const edge = g.edges[i];
              const label = edge?.label ?? '';
              const on = !lit || lit.edges.has(i);
              const more = [edge?.reason, edge?.condition].filter(Boolean).join('; ');
              return (
                <g
                  key={`${e.from}>${e.to}`}
                  class={`blast-edge${on ? '' : ' is-dim'}${edge?.condition ? ' is-conditional' : ''}`}
                  data-edge={`${e.from}>${e.to}`}
                >
                  {more && <title>{`${label}: ${more}`}</title>}
                  <path
                    d={path(e.points)}
                    fill="none"
                    stroke="#64748b"
                    stroke-width={lit && on ? 2 : 1.2}
                    stroke-dasharray={edge?.condition ? '4 3' : undefined}
                    marker-end="url(#blast-arrow)"
                  />
                  {label && (
                    <text x={e.labelX} y={e.labelY + 3.5} text-anchor="middle" class="blast-graph__edge">
                      {label}
                    </text>
                  )}
                </g>
              );
            })}
            {g.nodes.map((n) => {
              const p = placed.nodes.get(n.id);
              if (!p) return null;
              const on = !lit || lit.nodes.has(n.id);
              const what = n.kind === 'resource' ? `resource, ${n.sensitivity ?? 'low'} sensitivity` : n.hops === 0 ? 'the identity' : `identity, ${n.hops} hops`;
              return (
                <g
                  key={n.id}
                  data-node={n.id}
                  data-kind={n.kind}
                  class={`blast-node${on ? '' : ' is-dim'}${focus === n.id ? ' is-focus' : ''}${cursor === n.id ? ' is-cursor' : ''}`}
                  transform={`translate(${(p.x - p.width / 2).toFixed(1)} ${(p.y - p.height / 2).toFixed(1)})`}
                  tabindex={cursor === n.id ? 0 : -1}
                  role="button"
                  aria-pressed={focus === n.id}
                  aria-label={`${n.label}, ${what}`}
                  onClick={() => {
                    setCursor(n.id);
                    toggleFocus(n.id);
                  }}
                  onFocus={() => setCursor(n.id)}
                >
                  <title>{n.detail ? `${n.label}: ${n.detail}` : n.label}</title>
                  <rect
                    width={p.width}
                    height={p.height}
                    rx={4}
                    fill={n.kind === 'resource' ? COLOURS[n.sensitivity ?? 'low'] : n.hops === 0 ? '#c7d2fe' : '#dbeafe'}
                    stroke={n.kind === 'resource' ? STROKES[n.sensitivity ?? 'low'] : '#334155'}
                  />
                  <text x={8} y={p.height / 2 + 4} class="blast-graph__label">
                    {shortLabel(n.label)}
                  </text>
                </g>
              );
            })}
          </g>
        </svg>
      </div>
      {(g.hidden > 0 || limit > RESOURCE_STEP) && (
        <p class="blast__more" data-testid="blast-hidden">
          {g.hidden > 0 ? (
            <>
              <b>{g.hidden}</b> more {g.hidden === 1 ? 'resource' : 'resources'} in reach not shown (the {g.resources - g.hidden} riskiest are drawn).{' '}
              <button type="button" class="button button--small" data-testid="blast-show-more" onClick={() => setLimit(limit + RESOURCE_STEP)}>
                Show {Math.min(RESOURCE_STEP, g.hidden)} more
              </button>{' '}
              <button type="button" class="button button--small" data-testid="blast-show-all" onClick={() => setLimit(g.resources)}>
                Show all {g.resources}
              </button>
            </>
          ) : (
            <>All {g.resources} resources in reach are drawn. </>
          )}
          {limit > RESOURCE_STEP && (
            <button type="button" class="link-button" data-testid="blast-show-fewer" onClick={() => setLimit(RESOURCE_STEP)}>
              show only the {RESOURCE_STEP} riskiest
            </button>
          )}
        </p>
      )}
    </div>
  );
}

/** The links of the chains that hold only under a condition, or that say why they exist (AWS escalations, documented notes). */
function ChainConditions({ b }: { b: BlastRadius }) {
  const links = notableLinks(b);
  if (links.length === 0) return null;
  return (
    <>
      <h2>Conditions and reasons on the chains</h2>
      <p class="muted small">A conditional link (dashed in the graph) is kept: it holds only while its condition does.</p>
      <TableFrame label="Conditions and reasons on the chains">
        <table class="table" data-testid="blast-chain-conditions">
          <thead>
            <tr>
              <th>From</th>
              <th>To</th>
              <th>Link</th>
              <th>Holds</th>
              <th>Why</th>
            </tr>
          </thead>
          <tbody>
            {links.map((l) => (
              <tr key={`${l.from}>${l.to}>${l.via}`}>
                <td>{l.from}</td>
                <td>{l.to}</td>
                <td>
                  <code>{l.via}</code>
                </td>
                <td>{l.condition ?? <span class="muted">always</span>}</td>
                <td>{l.reason ?? ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </TableFrame>
    </>
  );
}

function download(name: string, text: string, type: string) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export function Blast({ id }: { id: number }) {
  const [b, setB] = useState<BlastRadius | null>(null);
  const [error, setError] = useState<UserError | null>(null);
  useEffect(() => {
    setB(null);
    posture.blast(id).then(setB, (e: unknown) => setError(toUserError(e)));
  }, [id]);
  if (error)
    return (
      <Page title="Blast radius">
        <div class="callout callout--error" role="alert">
          <strong>{errorHeadline(error.code)}</strong>
          <p>{error.message}</p>
        </div>
      </Page>
    );
  if (!b)
    return (
      <Page title="Blast radius" busy>
        <p class="muted">Computing the blast radius…</p>
      </Page>
    );
  return (
    <Page
      class="blast"
      testid="blast"
      title={
        <>
          Blast radius: <a href={identityHref(b.identity_id)}>{b.name}</a>
        </>
      }
      lead={
        <>
          <b data-testid="blast-score">Score {b.score.toFixed(1)}</b> · {b.reachable.length} identities and {b.resources.length} resources in reach ·{' '}
          {b.high_consequence.length} high-consequence actions
        </>
      }
      actions={
        <>
          <button class="button" onClick={() => posture.blastDocument(id).then((md) => download(`${b.name}-blast-radius.md`, md, 'text/markdown'))}>
            Export Markdown
          </button>
          <button class="button" onClick={() => download(`${b.name}-blast-radius.json`, JSON.stringify(b, null, 2), 'application/json')}>
            Export JSON
          </button>
        </>
      }
    >
      <div class="blast__cols">
        <div>
          <h2>Intended (documented)</h2>
          <p>{b.intended || <span class="muted">Nothing documented.</span>}</p>
          {b.differences.length > 0 && (
            <ul class="differences" data-testid="blast-differences">
              {b.differences.map((d) => (
                <li key={d}>{d}</li>
              ))}
            </ul>
          )}
        </div>
        <div>
          <h2>How the score adds up</h2>
          <ul>
            {b.explanation.map((e) => (
              <li key={e}>{e}</li>
            ))}
          </ul>
        </div>
      </div>
      <h2>Graph</h2>
      <p class="muted">
        Delegation hops run left to right, resources (coloured by sensitivity) at the end. Click a node, or Tab to the graph and press Enter, to
        follow its chains; arrow keys move along the links. Drag to pan; wheel, + and − zoom; 0 fits.
      </p>
      <Graph b={b} />
      <ChainConditions b={b} />
      {b.resources.some((r) => r.kind.startsWith('aws:')) && (
        <p class="muted small" data-testid="blast-aws-approximation">
          AWS: computed from IAM identity policies, permissions boundaries and role trust policies. Service control policies, resource
          policies other than trust, session policies and condition values are not evaluated, so this may show more access than AWS allows;
          a link that holds only under a condition (MFA, source IP) is kept and marked conditional, with its condition.
        </p>
      )}
      <h2>High-consequence actions</h2>
      <TableFrame label="High-consequence actions">
      <table class="table">
        <thead>
          <tr>
            <th>Category</th>
            <th>Resource</th>
            <th>Permission</th>
            <th>Held by</th>
            <th>Hops</th>
          </tr>
        </thead>
        <tbody>
          {b.high_consequence.slice(0, 200).map((h, i) => (
            <tr key={i}>
              <td>{h.category}</td>
              <td>{h.resource}</td>
              <td>
                <code>{h.permission}</code>
              </td>
              <td>{h.holder}</td>
              <td>{h.hops}</td>
            </tr>
          ))}
        </tbody>
      </table>
      </TableFrame>
    </Page>
  );
}
