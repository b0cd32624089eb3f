import { useEffect, useState } from 'preact/hooks';
import type { FindingCatalogue, FindingCount, PostureFigures, PostureView, Severity } from '../bindings';
import { checkText, useFindingChecks, type CheckText } from '../lib/catalogue';
import { errorHeadline, toUserError, type UserError } from '../lib/ipc';
import { posture, sparkline } from '../lib/posture';
import { formatCount } from '../lib/format';
import { Page, TableFrame } from '../components/Page';

type Key = keyof PostureFigures;

/** Figures the demo history can be reconstructed for; the others start at the first real snapshot. */
const RECONSTRUCTABLE = new Set<Key>(['nhis', 'ai_agents', 'owned', 'owned_pct', 'orphaned', 'never_expiring', 'expired_credentials', 'unregistered_agents']);

const TILES: { key: Key; label: string; worse: 'up' | 'down'; pct?: boolean }[] = [
  { key: 'nhis', label: 'Non-human identities', worse: 'up' },
  { key: 'owned_pct', label: 'Owned by an active person', worse: 'down', pct: true },
  { key: 'orphaned', label: 'Orphaned', worse: 'up' },
  { key: 'unregistered_agents', label: 'Unregistered AI agents', worse: 'up' },
  { key: 'never_expiring', label: 'Secrets that never expire', worse: 'up' },
  { key: 'expired_credentials', label: 'Expired credentials', worse: 'up' },
  { key: 'stale_credentials', label: 'Stale credentials (90 d)', worse: 'up' },
  { key: 'unreviewed', label: 'Unreviewed', worse: 'up' },
  { key: 'high_blast', label: 'High blast radius', worse: 'up' },
  { key: 'critical_findings', label: 'Critical findings', worse: 'up' },
];

function Tile({ view, tile }: { view: PostureView; tile: (typeof TILES)[number] }) {
  const value = view.figures[tile.key] as number | null;
  const points = view.trend.filter((s) => s.origin !== 'reconstructed' || RECONSTRUCTABLE.has(tile.key));
  const series = points.map((s) => s.figures[tile.key] as number | null).filter((v): v is number => v !== null);
  const first = series[0];
  const delta = series.length > 1 && value !== null && first !== undefined ? value - first : 0;
  const bad = tile.worse === 'up' ? delta > 0 : delta < 0;
  return (
    <div class="tile" data-testid={`tile-${tile.key}`}>
      <div class="tile__label">{tile.label}</div>
      <div class="tile__value">{value === null ? '–' : tile.pct ? `${value.toFixed(1)}%` : formatCount(value)}</div>
      {series.length > 1 && (
        <svg class="tile__spark" viewBox="0 0 120 28" preserveAspectRatio="none" aria-label={`${tile.label} over ${series.length} snapshots`}>
          <polyline points={sparkline(series, 120, 26)} fill="none" stroke={bad ? '#b91c1c' : '#15803d'} stroke-width="1.5" />
        </svg>
      )}
      {series.length > 1 && delta !== 0 && (
        <div class={`tile__delta ${bad ? 'is-bad' : 'is-good'}`}>
          {delta > 0 ? '+' : ''}
          {tile.pct ? delta.toFixed(1) : formatCount(delta)} since {points[0]?.at.slice(0, 10)}
        </div>
      )}
    </div>
  );
}

const SEVERITY_RANK: Record<Severity, number> = { critical: 4, high: 3, medium: 2, low: 1 };

export type CheckRow = CheckText & { check_id: string; identities: number };

/**
 * The findings table: every check of the catalogue (a check nobody trips
 * shows 0, so the table says what is checked), with its texts from the
 * catalogue and its count from the posture; a counted check the catalogue
 * does not list keeps its own texts. Most identities first, then severity.
 */
export function checkRows(catalogue: FindingCatalogue | null, counts: FindingCount[]): CheckRow[] {
  const byId = new Map(counts.map((c) => [c.check_id, c]));
  const rows: CheckRow[] = (catalogue?.checks ?? []).map((c) => ({
    ...checkText(catalogue, c.id, c),
    check_id: c.id,
    identities: byId.get(c.id)?.identities ?? 0,
  }));
  for (const c of counts) {
    if (!rows.some((r) => r.check_id === c.check_id)) rows.push({ ...checkText(catalogue, c.check_id, c), check_id: c.check_id, identities: c.identities });
  }
  return rows.sort((a, b) => b.identities - a.identities || SEVERITY_RANK[b.severity] - SEVERITY_RANK[a.severity]);
}

export function Posture() {
  const checks = useFindingChecks();
  const [view, setView] = useState<PostureView | null>(null);
  const [error, setError] = useState<UserError | null>(null);
  useEffect(() => {
    posture.view().then(setView, (e: unknown) => setError(toUserError(e)));
  }, []);
  if (error)
    return (
      <Page title="Posture">
        <div class="callout callout--error" role="alert">
          <strong>{errorHeadline(error.code)}</strong>
          <p>{error.message}</p>
        </div>
      </Page>
    );
  if (!view)
    return (
      <Page title="Posture" busy>
        <p class="muted">Computing the posture…</p>
      </Page>
    );
  const reconstructed = view.trend.filter((s) => s.origin === 'reconstructed').length;
  const rows = checkRows(checks.state === 'ok' ? checks.value : null, view.findings);
  const maxFinding = Math.max(1, ...rows.map((f) => f.identities));
  return (
    <Page
      class="posture"
      testid="posture"
      title="Posture"
      lead={
        <>
          Trend over {view.trend.length} snapshots (one per sync and load)
          {reconstructed > 0 && `; ${reconstructed} reconstructed from creation, expiry and leave dates`}.
        </>
      }
    >
      <div class="tiles">
        {TILES.map((t) => (
          <Tile key={t.key} view={view} tile={t} />
        ))}
      </div>
      <h2>Fix first</h2>
      {view.fix_first.length === 0 ? (
        <p class="muted" data-testid="fix-first-empty">No finding to fix.</p>
      ) : (
        <>
          <p class="muted small">The findings whose identities reach furthest, weighted by severity (blast radius × severity).</p>
          <TableFrame label="Fix first">
            <table class="table fix-first" data-testid="fix-first">
              <thead>
                <tr>
                  <th>#</th>
                  <th>Severity</th>
                  <th>Identity</th>
                  <th>Finding</th>
                  <th>Blast radius</th>
                  <th>Fix</th>
                </tr>
              </thead>
              <tbody>
                {view.fix_first.map((f, i) => (
                  <tr key={`${f.identity_id}-${f.check_id}`} data-testid="fix-first-row" data-fix-check={f.check_id}>
                    <td>{i + 1}</td>
                    <td>
                      <span class={`sev sev--${f.severity}`}>{f.severity}</span>
                    </td>
                    <td class="cell-wrap cell-wrap--narrow">
                      <a href={`#/identity/${f.identity_id}`}>{f.name}</a> <span class="muted">{f.kind}</span>
                    </td>
                    <td class="cell-wrap">
                      {f.title}
                      <div class="muted small">{f.evidence}</div>
                    </td>
                    <td>
                      <a href={`#/blast/${f.identity_id}`}>{f.blast_score.toFixed(0)}</a>
                    </td>
                    <td class="muted cell-wrap">{f.fix}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableFrame>
        </>
      )}
      <h2>Findings by OWASP NHI Top 10</h2>
      <TableFrame label="Findings by OWASP NHI Top 10">
      <table class="table posture-findings" data-testid="posture-findings">
        <thead>
          <tr>
            <th>Severity</th>
            <th>OWASP</th>
            <th>Finding</th>
            <th>Identities</th>
            <th>Fix</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((f) => (
            <tr key={f.check_id} data-testid="posture-check" data-check={f.check_id} class={f.identities === 0 ? 'is-clear' : undefined}>
              <td>
                <span class={`sev sev--${f.severity}`}>{f.severity}</span>
              </td>
              <td class="cell-wrap cell-wrap--narrow" title={f.owasp_title}>
                {f.owasp} {f.owasp_title}
              </td>
              <td class="cell-wrap cell-wrap--narrow">{f.title}</td>
              <td>
                <span class="bar" style={{ width: `${Math.round((f.identities / maxFinding) * 120)}px` }} /> {formatCount(f.identities)}
              </td>
              <td class="muted cell-wrap">{f.fix}</td>
            </tr>
          ))}
        </tbody>
      </table>
      </TableFrame>
      {checks.state === 'error' && (
        <p class="muted small" role="status" data-testid="checks-error">
          The list of checks could not be read ({checks.error.message}); only checks with findings are shown.
        </p>
      )}
      <h2>Highest blast radius</h2>
      <ol data-testid="top-blast">
        {view.top_blast.map((b) => (
          <li key={b.identity_id}>
            <a href={`#/blast/${b.identity_id}`}>{b.name}</a> <span class="muted">{b.kind}</span> score {b.score.toFixed(0)} ·{' '}
            {b.resources} resources · {b.high_consequence} high-consequence
          </li>
        ))}
      </ol>
    </Page>
  );
}
