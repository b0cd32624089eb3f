// Text colours against the backgrounds they are drawn on: WCAG AA (4.5:1).
// The colours are read from the style sheets, so a palette change that breaks
// contrast fails here.
import { describe, expect, it } from 'vitest';
import { contrast, parseHex } from '../lib/contrast';
import baseCss from './base.css?raw';
import appCss from './app.css?raw';

const css = `${baseCss}\n${appCss}`;

/** The custom properties declared in :root. */
function tokens(): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of css.matchAll(/(--[a-z0-9-]+):\s*(#[0-9a-f]{3,6})\s*;/gi)) out.set(m[1], m[2]);
  return out;
}

/** A colour named by token (`--text-3`) or given as hex. */
function colour(c: string): string {
  if (c.startsWith('#')) return c;
  const v = tokens().get(c);
  if (!v) throw new Error(`no token ${c}`);
  return v;
}

/** The colour a rule (exact selector) sets for `prop`, e.g. rule('.notice', 'color'). */
function rule(selector: string, prop: string): string {
  const esc = selector.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const m = css.match(new RegExp(`(?:^|[\\n}])\\s*${esc}\\s*\\{([^}]*)\\}`, 'm'));
  if (!m) throw new Error(`no rule ${selector}`);
  const d = m[1].match(new RegExp(`(?:^|[;\\s{])${prop}:\\s*([^;]+);?`));
  if (!d) throw new Error(`${selector} sets no ${prop}`);
  const v = d[1].trim();
  const t = v.match(/^var\((--[a-z0-9-]+)/i);
  return t ? colour(t[1]) : v;
}

// [what, text, background]
const PAIRS: [string, string, string][] = [
  ['secondary text on the page', '--text-3', '--bg'],
  ['secondary text on a surface', '--text-3', '--surface'],
  ['secondary text in table heads', '--text-3', '--surface-2'],
  ['muted badges and counts', '--text-3', '--muted-bg'],
  ['muted text in a hovered row', '--text-3', '--row-hover'],
  ['muted text in the highlighted inventory row', '--text-3', '--row-active'],
  ['muted text in the review cursor row', '--text-3', '#e8f0fe'],
  ['body text', '--text', '--bg'],
  ['labels', '--text-2', '--surface'],
  ['links', '--accent', '--surface'],
  ['active nav item', '--accent-strong', '--accent-bg'],
  ['ok badge', '--ok', '--ok-bg'],
  ['warning badge', '--warn', '--warn-bg'],
  ['bad badge', '--bad', '--bad-bg'],
  ['low severity', '--sev-low', '--sev-low-bg'],
  ['medium severity', '--sev-medium', '--sev-medium-bg'],
  ['high severity', '--sev-high', '--sev-high-bg'],
  ['critical severity', '--sev-critical', '--sev-critical-bg'],
  ['primary button', '#ffffff', '--accent'],
];

describe('text contrast (WCAG AA)', () => {
  it('computes the WCAG ratio', () => {
    expect(contrast('#000', '#fff')).toBeCloseTo(21, 5);
    expect(contrast('#777777', '#ffffff')).toBeCloseTo(4.48, 2);
    expect(parseHex('#3b5bdb')).toEqual([59, 91, 219]);
  });

  it.each(PAIRS)('%s: 4.5:1 or more', (_what, fg, bg) => {
    expect(contrast(colour(fg), colour(bg))).toBeGreaterThanOrEqual(4.5);
  });

  it('the search placeholder and the component colours set in app.css', () => {
    const white = '#ffffff';
    const checks: [string, string, string][] = [
      ['search placeholder', rule('.search__input::placeholder', 'color'), white],
      ['tile label', rule('.tile__label', 'color'), white],
      ['notice', rule('.notice', 'color'), colour('--bg')],
      ['error text', rule('.error-text', 'color'), white],
      ['link button', rule('.link-button', 'color'), white],
      ['high risk', rule('.risk--high', 'color'), rule('.risk--high', 'background')],
      ['medium risk', rule('.risk--medium', 'color'), rule('.risk--medium', 'background')],
      ['low risk', rule('.risk--low', 'color'), rule('.risk--low', 'background')],
      ['top bar summary', rule('.summary', 'color'), rule('.topbar', 'background')],
    ];
    for (const [what, fg, bg] of checks) expect(contrast(fg, bg), what).toBeGreaterThanOrEqual(4.5);
  });
});

describe('visible focus', () => {
  it('every focused control gets an outline, and no rule takes it away', () => {
    const focus = css.match(/(?:^|\n):focus-visible\s*\{([^}]*)\}/);
    expect(focus?.[1]).toMatch(/outline:\s*2px solid var\(--focus-ring\)/);
    expect(contrast(colour('--focus-ring'), colour('--surface'))).toBeGreaterThanOrEqual(3);
    expect(css).not.toMatch(/outline:\s*(none|0)\b/);
  });
});
