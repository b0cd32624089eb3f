// @vitest-environment jsdom
import { FINDING_CHECKS } from '../lib/catalogue.gen';
import { render, screen, waitFor } from '@testing-library/preact';
import { afterEach, describe, expect, it } from 'vitest';
import { useMocks } from '../test/dom';
import { overflowsX, Page, TableFrame } from './Page';
import { Posture } from '../views/Posture';
import { Campaigns } from '../views/Campaigns';
import { Team } from '../views/Team';
import { Blast } from '../views/Blast';
import { Sources } from '../views/Sources';
import { Reviews } from '../views/Reviews';

describe('Page', () => {
  it('shows the heading, names the page by it, and puts the actions beside it', () => {
    const { container } = render(
      <Page title="Campaigns" lead="Reviews by date" testid="p" actions={<button>New campaign</button>}>
        <p>body</p>
      </Page>,
    );
    const page = screen.getByTestId('p');
    expect(page.classList.contains('page')).toBe(true);
    expect(screen.getByRole('region', { name: 'Campaigns' })).toBe(page);
    const head = container.querySelector('.page-head')!;
    expect(head.querySelector('h1')?.textContent).toBe('Campaigns');
    expect(head.querySelector('.page-head__actions button')?.textContent).toBe('New campaign');
    expect(head.querySelector('.page-head__lead')?.textContent).toBe('Reviews by date');
    expect(page.lastElementChild?.textContent).toBe('body');
  });

  it('without a title has no header, takes a label, and fills the height when asked', () => {
    render(
      <Page as="article" label="Identity 7" fill testid="p">
        <h1>agent-7</h1>
      </Page>,
    );
    const page = screen.getByTestId('p');
    expect(page.tagName).toBe('ARTICLE');
    expect(page.getAttribute('aria-label')).toBe('Identity 7');
    expect(page.querySelector('.page-head')).toBeNull();
    expect(page.classList.contains('page--fill')).toBe(true);
  });
});

describe('TableFrame', () => {
  const widths = (scroll: number, client: number) => {
    Object.defineProperty(HTMLElement.prototype, 'scrollWidth', { configurable: true, get: () => scroll });
    Object.defineProperty(HTMLElement.prototype, 'clientWidth', { configurable: true, get: () => client });
  };
  afterEach(() => widths(0, 0));

  it('tells overflow from a fit', () => {
    expect(overflowsX(900, 600)).toBe(true);
    expect(overflowsX(600, 600)).toBe(false);
    expect(overflowsX(601, 600)).toBe(false);
  });

  it('is a focusable, labelled region only while the table is wider than it', () => {
    widths(1200, 600);
    const wide = render(
      <TableFrame label="Findings">
        <table />
      </TableFrame>,
    );
    const frame = wide.container.querySelector('.table-frame')!;
    expect(frame.getAttribute('role')).toBe('region');
    expect(frame.getAttribute('aria-label')).toBe('Findings');
    expect(frame.getAttribute('tabindex')).toBe('0');
    wide.unmount();

    widths(500, 600);
    const narrow = render(
      <TableFrame label="Findings">
        <table />
      </TableFrame>,
    );
    const f2 = narrow.container.querySelector('.table-frame')!;
    expect(f2.hasAttribute('tabindex')).toBe(false);
    expect(f2.hasAttribute('role')).toBe(false);
  });
});

describe('views in the page frame', () => {
  it('every view sits in a .page with its h1', async () => {
    const { reviews } = useMocks();
    await reviews.setActingPerson(1);
    const views: [string, () => preact.JSX.Element, string][] = [
      ['Campaigns', () => <Campaigns />, 'campaigns'],
      ['Posture', () => <Posture />, 'posture'],
      ['My team', () => <Team />, 'team'],
      ['Blast radius', () => <Blast id={1} />, 'blast'],
      ['Sources', () => <Sources />, 'sources-view'],
      ['My reviews', () => <Reviews />, 'reviews'],
    ];
    for (const [title, view, testid] of views) {
      const r = render(view());
      const page = await waitFor(() => screen.getByTestId(testid));
      expect(page.classList.contains('page'), title).toBe(true);
      expect(page.querySelector(':scope > .page-head h1')?.textContent, title).toContain(title);
      r.unmount();
    }
  });

  it('the posture findings table scrolls in its own frame and its Fix column wraps', async () => {
    useMocks();
    render(<Posture />);
    const table = await waitFor(() => screen.getByTestId('posture-findings'));
    expect(table.parentElement?.classList.contains('table-frame')).toBe(true);
    // Every check of the catalogue gets a row, its fix text from the catalogue.
    await waitFor(() => expect(table.querySelectorAll('tbody tr')).toHaveLength(FINDING_CHECKS.checks.length));
    const row = table.querySelector('tbody tr')!;
    const fix = row.querySelector('td:last-child')!;
    expect(fix.textContent).toBe(FINDING_CHECKS.checks.find((c) => c.id === row.getAttribute('data-check'))?.fix);
    expect(fix.classList.contains('cell-wrap')).toBe(true);
  });

  it('the posture page ranks what to fix first, each with its identity, evidence and fix', async () => {
    useMocks();
    render(<Posture />);
    const table = await waitFor(() => screen.getByTestId('fix-first'));
    expect(table.parentElement?.classList.contains('table-frame')).toBe(true);
    const rows = [...table.querySelectorAll('tbody tr')];
    expect(rows.map((r) => r.getAttribute('data-fix-check'))).toEqual(['admin-on-critical', 'secret-never-expires']);
    const first = rows[0];
    expect(first.querySelector('a[href^="#/identity/"]')?.getAttribute('href')).toBe('#/identity/1');
    expect(first.querySelector('a[href^="#/blast/"]')?.textContent).toBe('812');
    expect(first.textContent).toContain('2 admin grant(s) on critical resources');
    expect(first.querySelector('td:last-child')?.textContent).toBe(FINDING_CHECKS.checks.find((c) => c.id === 'admin-on-critical')?.fix);
  });
});
