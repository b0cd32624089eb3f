import { useEffect, useState } from 'preact/hooks';
import type { BlastRadius } from '../bindings';
import { errorHeadline, toUserError, type UserError } from '../lib/ipc';
import { layoutBlast, posture } from '../lib/posture';
import { identityHref } from '../lib/route';
import { Page, TableFrame } from '../components/Page';

const COLOURS: Record<string, string> = { low: '#86efac', medium: '#fde047', high: '#fb923c', critical: '#ef4444' };

function Graph({ b }: { b: BlastRadius }) {
  const { nodes, edges, columns } = layoutBlast(b);
  const [hover, setHover] = useState<string | null>(null);
  const colW = 230;
  const rowH = 34;
  const rows = Math.max(1, ...nodes.map((n) => n.row + 1));
  const pos = new Map(nodes.map((n) => [n.id, { x: 10 + n.column * colW, y: 14 + n.row * rowH }]));
  const lit = (id: string) => hover === null || hover === id || edges.some((e) => (e.from === hover && e.to === id) || (e.to === hover && e.from === id));
  return (
    <svg class="blast-graph" data-testid="blast-graph" viewBox={`0 0 ${columns * colW} ${rows * rowH + 10}`} width={columns * colW}>
      {edges.map((e, i) => {
        const a = pos.get(e.from);
        const z = pos.get(e.to);
        if (!a || !z) return null;
        const on = hover === null || hover === e.from || hover === e.to;
        return (
          <g key={i} opacity={on ? 1 : 0.15}>
            <line x1={a.x + 180} y1={a.y + 10} x2={z.x} y2={z.y + 10} stroke="#64748b" />
            <text x={(a.x + 180 + z.x) / 2} y={(a.y + z.y) / 2 + 6} class="blast-graph__edge">
              {e.label}
            </text>
          </g>
        );
      })}
      {nodes.map((n) => {
        const p = pos.get(n.id);
        if (!p) return null;
        return (
          <g key={n.id} opacity={lit(n.id) ? 1 : 0.25} onMouseEnter={() => setHover(n.id)} onMouseLeave={() => setHover(null)}>
            <rect x={p.x} y={p.y} width={180} height={22} rx={4} fill={n.kind === 'resource' ? COLOURS[n.sensitivity ?? 'low'] : '#dbeafe'} stroke="#334155" />
            <text x={p.x + 6} y={p.y + 15} class="blast-graph__label">
              {n.label.length > 26 ? n.label.slice(0, 25) + '…' : n.label}
            </text>
          </g>
        );
      })}
    </svg>
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
      <p class="muted">Columns are delegation hops; resources (coloured by sensitivity) on the right. Hover a node to follow its links.</p>
      <div class="blast__graph">
        <Graph b={b} />
      </div>
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
