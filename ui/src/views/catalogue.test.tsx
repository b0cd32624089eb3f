// @vitest-environment jsdom
// The Sources form, labels and write-back toggle, and the Posture findings,
// are built from the catalogues the backend serves: handed a made-up one,
// they show it and nothing else (a list kept in ui/src would show through).
import { fireEvent, render, screen, waitFor } from '@testing-library/preact';
import { describe, expect, it } from 'vitest';
import type { FindingCatalogue, SourceKindView, SourceView } from '../bindings';
import { setBackend } from '../lib/ipc';
import { createMockBackend } from '../lib/mock';
import { createMockPosture, setPostureApi } from '../lib/posture';
import { useMocks } from '../test/dom';
import { IdentityDetail } from './IdentityDetail';
import { checkRows, Posture } from './Posture';
import { AddSourceFields, Sources } from './Sources';
import { sourcesStore } from './sourcesStore';

const KINDS: SourceKindView[] = [
  {
    kind: 'hr', label: 'HR system', about: 'Reads the HR roster.', needs_secret: true, secret: 'api passphrase', device_sign_in: null,
    settings: [
      { key: 'host', label: 'Host name', type: 'url', required: true, default: null, help: 'where it answers', secret: false, sign_in: false },
      { key: 'dry', label: 'Dry run', type: 'bool', required: false, default: 'false', help: 'read only', secret: false, sign_in: false },
    ],
    write_back: ['disable_identity'],
  },
  { kind: 'sheet', label: 'Roster sheet', about: 'A spreadsheet.', needs_secret: false, secret: '', device_sign_in: null, settings: [{ key: 'file', label: 'Roster file', type: 'string', required: true, default: null, help: 'the file', secret: false, sign_in: false }], write_back: [] },
];

const source = (id: number, kind: string, name: string): SourceView => ({ id, kind, name, settings: { host: 'https://hr.example' }, has_cursor: false, last_run: null });

describe('the Sources view takes its kinds from the catalogue', () => {
  it('offers exactly the catalogue kinds, with their settings, labels and secret', () => {
    render(<AddSourceFields kinds={KINDS} />);
    const select = screen.getByTestId('add-source-kind') as HTMLSelectElement;
    expect([...select.options].map((o) => [o.value, o.textContent])).toEqual([
      ['hr', 'HR system'],
      ['sheet', 'Roster sheet'],
    ]);
    // The first kind that needs no secret is the default.
    expect(select.value).toBe('sheet');
    expect(screen.getByText('Roster file')).toBeTruthy();
    expect(screen.queryByTestId('add-source-secret')).toBeNull();
    fireEvent.change(select, { target: { value: 'hr' } });
    expect(screen.getByText('Reads the HR roster.')).toBeTruthy();
    expect(screen.getByText('Host name')).toBeTruthy();
    expect(screen.getByTestId('add-source-setting-dry').tagName).toBe('SELECT');
    expect(screen.getByText('Api passphrase')).toBeTruthy();
    expect((screen.getByTestId('add-source-secret') as HTMLInputElement).type).toBe('password');
  });

  it('labels rows and offers write-back by the catalogue', async () => {
    const b = createMockBackend({ size: 50, latencyMs: 0 });
    setBackend({ ...b, sourceKinds: async () => KINDS, sources: async () => [source(1, 'hr', 'People'), source(2, 'sheet', 'Roster'), source(3, 'scim', 'Other')] });
    sourcesStore.addOpen = false;
    render(<Sources />);
    await waitFor(() => expect(screen.getAllByTestId('source-row')).toHaveLength(3));
    await waitFor(() => expect(document.querySelector('[data-id="1"] .kind-cell')?.textContent).toBe('HR system'));
    const cell = (id: number, sel: string) => document.querySelector(`[data-testid=source-row][data-id="${id}"] ${sel}`);
    expect(cell(2, '.kind-cell')?.textContent).toBe('Roster sheet');
    // A kind this catalogue does not list shows as it is, with no write-back or secret button.
    expect(cell(3, '.kind-cell')?.textContent).toBe('scim');
    expect(cell(1, '[data-testid=source-write-back]')).toBeTruthy();
    expect(cell(2, '[data-testid=source-write-back]')).toBeNull();
    expect(cell(3, '[data-testid=source-write-back]')).toBeNull();
    expect(cell(1, '[data-testid=source-secret]')).toBeTruthy();
    expect(cell(2, '[data-testid=source-secret]')).toBeNull();
    expect(cell(3, '[data-testid=source-secret]')).toBeNull();
  });

  it('says so when the catalogue cannot be read', async () => {
    const b = createMockBackend({ size: 50, latencyMs: 0 });
    setBackend({ ...b, sourceKinds: () => Promise.reject({ code: 'internal', message: 'no catalogue' }) });
    sourcesStore.kinds = null;
    sourcesStore.addOpen = true;
    render(<Sources />);
    await waitFor(() => expect(screen.getByTestId('kinds-error').textContent).toContain('no catalogue'));
    expect(screen.queryByTestId('add-source-kind')).toBeNull();
  });
});

const CHECKS: FindingCatalogue = {
  categories: [{ code: 'NHI9', title: 'Category nine' }],
  checks: [
    { id: 'admin-on-critical', owasp: 'NHI9', owasp_title: 'Category nine', severity: 'high', title: 'Title from the catalogue', fix: 'Fix from the catalogue' },
    { id: 'quiet-check', owasp: 'NHI9', owasp_title: 'Category nine', severity: 'low', title: 'Nobody trips this', fix: 'Nothing to do' },
  ],
};

describe('the Posture view takes its check texts from the catalogue', () => {
  it('shows every catalogue check, with the catalogue texts', async () => {
    useMocks();
    const b = createMockBackend({ size: 50, latencyMs: 0 });
    setBackend({ ...b, findingChecks: async () => CHECKS });
    setPostureApi(createMockPosture());
    render(<Posture />);
    await waitFor(() => expect(document.querySelector('[data-check="quiet-check"]')).toBeTruthy());
    const row = document.querySelector('[data-check="admin-on-critical"]');
    expect(row?.textContent).toContain('Title from the catalogue');
    expect(row?.textContent).toContain('Fix from the catalogue');
    expect(row?.textContent).toContain('NHI9 Category nine');
    expect(document.querySelector('[data-check="quiet-check"]')?.textContent).toContain('0');
  });

  it('orders by identities then severity, and keeps a check the catalogue lacks', () => {
    const counts = [
      { check_id: 'unknown', owasp: 'NHI1', owasp_title: 'x', severity: 'critical' as const, title: 'Own title', fix: 'own fix', identities: 5 },
      { check_id: 'admin-on-critical', owasp: 'NHI5', owasp_title: 'y', severity: 'critical' as const, title: 'old', fix: 'old', identities: 5 },
    ];
    const rows = checkRows(CHECKS, counts);
    expect(rows.map((r) => [r.check_id, r.title, r.identities])).toEqual([
      ['unknown', 'Own title', 5],
      ['admin-on-critical', 'Title from the catalogue', 5],
      ['quiet-check', 'Nobody trips this', 0],
    ]);
    expect(checkRows(null, counts).map((r) => r.title)).toEqual(['Own title', 'old']);
  });
});

describe('the identity page takes its finding texts from the catalogue', () => {
  it('shows the catalogue title and fix of each finding', async () => {
    useMocks();
    const b = createMockBackend({ size: 300, latencyMs: 0 });
    let id = 1;
    let check = '';
    for (; id < 300; id++) {
      const d = await b.identity(id).catch(() => null);
      if (d && d.findings.length > 0) {
        check = d.findings[0].check_id;
        break;
      }
    }
    expect(check).not.toBe('');
    const cat: FindingCatalogue = {
      categories: [],
      checks: [{ id: check, owasp: 'NHI9', owasp_title: 'Category nine', severity: 'critical', title: 'Catalogue title', fix: 'Catalogue fix' }],
    };
    setBackend({ ...b, findingChecks: async () => cat });
    render(<IdentityDetail id={id} />);
    await waitFor(() => expect(document.querySelector(`[data-testid=finding][data-check="${check}"]`)?.textContent).toContain('Catalogue title'));
    const f = document.querySelector(`[data-testid=finding][data-check="${check}"]`)!;
    expect(f.textContent).toContain('Catalogue fix');
    expect(f.textContent).toContain('NHI9 Category nine');
    expect(f.classList.contains('finding--critical')).toBe(true);
  });
});
