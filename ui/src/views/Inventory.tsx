import { useEffect, useLayoutEffect, useReducer, useRef, useState } from 'preact/hooks';
import type { InventoryFacets, InventoryRow, OwnerState, SortKey } from '../bindings';
import { FilterMenu, type MenuOption } from '../components/FilterMenu';
import { SeverityBadge } from '../components/Badge';
import { Page } from '../components/Page';
import {
  agoShort,
  CLASS_LABELS,
  formatCount,
  formatDays,
  KIND_LABELS,
  labelOf,
  OWNER_STATE_LABELS,
  PERSON_STATUS_LABELS,
  plural,
  STATUS_LABELS,
  ageTone,
  shortSource,
} from '../lib/format';
import { errorHeadline, toUserError } from '../lib/ipc';
import { debouncer } from '../lib/debounce';
import { navigate } from '../lib/route';
import { isTypingTarget } from '../lib/shortcuts';
import { moveHighlight, rowsPerViewport, scrollTopFor, visibleRange } from '../lib/virtual';
import { hasActiveFilters, inventoryStore as store } from './inventoryStore';

export const ROW_HEIGHT = 30;
const HEADER_HEIGHT = 32;
const OVERSCAN = 10;
const SEARCH_DEBOUNCE_MS = 150;

interface Column {
  key: string;
  label: string;
  sort?: SortKey;
  numeric?: boolean;
  title?: string;
}

const COLUMNS: Column[] = [
  { key: 'name', label: 'Name', sort: 'name' },
  { key: 'kind', label: 'Kind', sort: 'kind' },
  { key: 'class', label: 'Class' },
  { key: 'status', label: 'Status', sort: 'status' },
  { key: 'owner', label: 'Owner', sort: 'owner' },
  { key: 'source', label: 'Source', sort: 'source' },
  { key: 'creds', label: 'Creds', sort: 'credentials', numeric: true, title: 'Credentials' },
  { key: 'oldest', label: 'Oldest cred', sort: 'oldest_credential', numeric: true, title: 'Days since the oldest credential was created or rotated' },
  { key: 'grants', label: 'Grants', sort: 'grants', numeric: true },
  { key: 'risk', label: 'Risk', sort: 'risk', title: 'Highest finding severity and number of findings' },
  { key: 'last_used', label: 'Last used', sort: 'last_used', numeric: true },
];

function useStore(): void {
  const [, bump] = useReducer((n: number) => n + 1, 0);
  useEffect(() => store.subscribe(() => bump(undefined)), []);
}


export function Inventory() {
  useStore();
  const searchRef = useRef<HTMLInputElement>(null);

  useEffect(() => {
    store.loadFacets();
    const onKey = (e: KeyboardEvent) => {
      if (e.key === '/' && !e.ctrlKey && !e.metaKey && !e.altKey && !isTypingTarget(e.target)) {
        e.preventDefault();
        searchRef.current?.focus();
        searchRef.current?.select();
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);

  return (
    <Page fill class="inventory" title="Inventory">
      <Toolbar searchRef={searchRef} />
      <Table />
    </Page>
  );
}

function Toolbar(props: { searchRef: { current: HTMLInputElement | null } }) {
  const [text, setText] = useState(store.searchText);
  const debounced = useRef(debouncer(SEARCH_DEBOUNCE_MS));
  const f = store.filters;
  const facets = store.facets;

  // Keep the box in step when the filters are cleared from elsewhere.
  useEffect(() => {
    if (store.searchText !== text) setText(store.searchText);
  }, [store.searchText]);
  useEffect(() => () => debounced.current.cancel(), []);

  const onInput = (value: string) => {
    setText(value);
    store.searchText = value;
    debounced.current.run(() => store.setFilters({ search: value }));
  };

  const onSearchKey = (e: KeyboardEvent) => {
    if (e.key === 'Enter') {
      // Apply at once, without waiting for the debounce.
      debounced.current.flush();
    } else if (e.key === 'Escape' && text) {
      e.preventDefault();
      onInput('');
    } else if (e.key === 'ArrowDown') {
      e.preventDefault();
      document.querySelector<HTMLElement>('[data-testid="inventory-table"]')?.focus();
    }
  };

  const total = store.rows.total;
  const shown = total ?? store.rows.previousTotal;

  return (
    <div class="toolbar">
      <div class="search">
        <svg class="search__icon" viewBox="0 0 16 16" aria-hidden="true">
          <circle cx="7" cy="7" r="4.5" />
          <path d="M10.5 10.5 14 14" />
        </svg>
        <input
          ref={props.searchRef}
          type="search"
          class="search__input"
          placeholder="Search names, purposes, owners, teams, ids"
          aria-label="Search identities"
          data-testid="inventory-search"
          value={text}
          spellcheck={false}
          autocomplete="off"
          onInput={(e) => onInput((e.target as HTMLInputElement).value)}
          onKeyDown={onSearchKey}
        />
        <kbd class="search__kbd" aria-hidden="true">/</kbd>
      </div>
      <div class="filters">
        <FilterMenu
          label="Kind"
          options={facetOptions(facets?.kinds, (v) => labelOf(KIND_LABELS, v))}
          selected={f.kinds}
          onChange={(kinds) => store.setFilters({ kinds: kinds as typeof f.kinds })}
        />
        <FilterMenu
          label="Status"
          options={facetOptions(facets?.statuses, (v) => labelOf(STATUS_LABELS, v))}
          selected={f.statuses}
          onChange={(statuses) => store.setFilters({ statuses: statuses as typeof f.statuses })}
        />
        <FilterMenu
          label="Agent class"
          options={facetOptions(facets?.classes, (v) => labelOf(CLASS_LABELS, v))}
          selected={f.classes}
          onChange={(classes) => store.setFilters({ classes: classes as typeof f.classes })}
        />
        <FilterMenu
          label="Source"
          options={(facets?.sources ?? []).map((s) => ({ value: Number(s.value), label: s.label, count: s.count }))}
          selected={f.sources}
          onChange={(sources) => store.setFilters({ sources })}
        />
        <FilterMenu
          label="Owner"
          single
          options={facetOptions(facets?.owner_states, (v) => labelOf(OWNER_STATE_LABELS, v))}
          selected={f.owner_state ? [f.owner_state] : []}
          onChange={(v) => store.setFilters({ owner_state: (v[0] as OwnerState | undefined) ?? null })}
        />
        <FilterMenu
          label="Findings"
          single
          options={findingOptions(facets)}
          selected={f.has_findings === null ? [] : [f.has_findings]}
          onChange={(v) => store.setFilters({ has_findings: v.length ? (v[0] as boolean) : null })}
        />
        {(hasActiveFilters(f) || text) && (
          <button type="button" class="link-button" onClick={() => store.clearFilters()}>
            Clear all
          </button>
        )}
      </div>
      <div class={`total${total === null ? ' total--loading' : ''}`} aria-live="polite" aria-busy={total === null}>
        {/* Rendered only once a count is known, so a test that waits for it never reads a placeholder. */}
        {shown === null ? <span class="muted">Loading…</span> : <span data-testid="inventory-total">{plural(shown, 'identity', 'identities')}</span>}
        {facets && shown !== null && shown !== facets.total && <span class="total__of"> of {formatCount(facets.total)}</span>}
      </div>
    </div>
  );
}

function facetOptions<V extends string>(
  facets: { value: string; label: string; count: number }[] | undefined,
  label: (v: string) => string,
): MenuOption<V>[] {
  return (facets ?? []).map((x) => ({ value: x.value as V, label: label(x.value), count: x.count }));
}

function findingOptions(facets: InventoryFacets | null): MenuOption<boolean>[] {
  return [
    { value: true, label: 'With findings', count: facets?.with_findings },
    { value: false, label: 'Without findings', count: facets ? facets.total - facets.with_findings : undefined },
  ];
}

function Table() {
  const ref = useRef<HTMLDivElement>(null);
  const [viewport, setViewport] = useState(600);
  const [scrollTop, setScrollTop] = useState(store.scrollTop);
  const frame = useRef(0);
  const rows = store.rows;
  const total = rows.displayTotal;
  const bodyHeight = viewport - HEADER_HEIGHT;
  const range = visibleRange(scrollTop, bodyHeight, ROW_HEIGHT, total, OVERSCAN);

  // Measure the viewport.
  useLayoutEffect(() => {
    const el = ref.current;
    if (!el) return undefined;
    setViewport(el.clientHeight);
    const ro = new ResizeObserver(() => setViewport(el.clientHeight));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  // Restore the scroll position when coming back from a detail page; focus the table.
  useLayoutEffect(() => {
    const el = ref.current;
    if (!el) return;
    el.scrollTop = store.scrollTop;
    if (store.highlighted !== null) el.focus({ preventScroll: true });
  }, []);

  // Back to the top when the query changes.
  const resetSeen = useRef(store.resetToken);
  useLayoutEffect(() => {
    if (resetSeen.current === store.resetToken) return;
    resetSeen.current = store.resetToken;
    if (ref.current) ref.current.scrollTop = 0;
    setScrollTop(0);
  }, [store.resetToken]);

  // Fetch the pages the window needs. Read the scroll position from the element:
  // right after a query change it is already back at the top while `range`
  // was computed for the old position.
  useEffect(() => {
    const top = ref.current?.scrollTop ?? 0;
    rows.ensure(visibleRange(top, bodyHeight, ROW_HEIGHT, total, OVERSCAN));
  }, [range.start, range.end, store.resetToken, rows.total === null, rows.error === null]);

  useEffect(() => () => cancelAnimationFrame(frame.current), []);

  const onScroll = () => {
    cancelAnimationFrame(frame.current);
    frame.current = requestAnimationFrame(() => {
      const top = ref.current?.scrollTop ?? 0;
      store.scrollTop = top;
      setScrollTop(top);
    });
  };

  const highlight = (index: number | null) => {
    store.highlighted = index;
    if (index !== null && ref.current) {
      const el = ref.current;
      const next = scrollTopFor(index, el.scrollTop, el.clientHeight, ROW_HEIGHT, HEADER_HEIGHT);
      if (next !== el.scrollTop) el.scrollTop = next;
    }
    store.emit();
  };

  const open = (index: number) => {
    const row = rows.row(index);
    if (!row) return;
    store.highlighted = index;
    store.scrollTop = ref.current?.scrollTop ?? store.scrollTop;
    navigate({ name: 'identity', id: row.id });
  };

  const onKeyDown = (e: KeyboardEvent) => {
    // Only when the grid itself has focus, not a header button inside it.
    if (e.altKey || e.ctrlKey || e.metaKey || e.target !== e.currentTarget) return;
    switch (e.key) {
      case 'ArrowUp':
      case 'ArrowDown':
      case 'PageUp':
      case 'PageDown':
      case 'Home':
      case 'End': {
        e.preventDefault();
        const firstVisible = Math.min(total - 1, Math.ceil(scrollTop / ROW_HEIGHT));
        highlight(moveHighlight(store.highlighted, e.key, total, rowsPerViewport(bodyHeight, ROW_HEIGHT), firstVisible));
        break;
      }
      case 'Enter':
        if (store.highlighted !== null) {
          e.preventDefault();
          open(store.highlighted);
        }
        break;
    }
  };

  const rendered = [];
  for (let i = range.start; i < range.end; i++) {
    const row = rows.row(i);
    rendered.push(
      row ? (
        <Row key={i} index={i} row={row} active={store.highlighted === i} onOpen={open} />
      ) : (
        <Placeholder key={i} index={i} />
      ),
    );
  }

  const err = rows.error ? toUserError(rows.error) : null;
  const empty = rows.total === 0;

  return (
    <div
      ref={ref}
      class="grid"
      role="grid"
      tabIndex={0}
      aria-label="Identities"
      aria-rowcount={total + 1}
      aria-colcount={COLUMNS.length}
      aria-activedescendant={store.highlighted !== null && store.highlighted >= range.start && store.highlighted < range.end ? `inv-row-${store.highlighted}` : undefined}
      aria-busy={rows.total === null}
      data-testid="inventory-table"
      onScroll={onScroll}
      onKeyDown={onKeyDown}
    >
      <div class="grid__head grid__cols" role="row" aria-rowindex={1}>
        {COLUMNS.map((c) => {
          const sorted = c.sort && store.sort === c.sort;
          return (
            <div
              key={c.key}
              role="columnheader"
              class={`grid__th${c.numeric ? ' num' : ''}${sorted ? ' is-sorted' : ''}`}
              aria-sort={sorted ? (store.descending ? 'descending' : 'ascending') : undefined}
              title={c.title}
            >
              {c.sort ? (
                <button
                  type="button"
                  class="th-button"
                  onClick={(e) => {
                    store.sortBy(c.sort!);
                    // After a mouse click, give the keys back to the grid.
                    if (e.detail > 0) ref.current?.focus({ preventScroll: true });
                  }}
                >
                  {c.label}
                  <span class="th-arrow" aria-hidden="true">
                    {sorted ? (store.descending ? '↓' : '↑') : ''}
                  </span>
                </button>
              ) : (
                <span class="th-plain">{c.label}</span>
              )}
            </div>
          );
        })}
      </div>
      <div class="grid__body" role="rowgroup" style={{ height: `${total * ROW_HEIGHT}px` }}>
        {rendered}
      </div>
      {err && (
        <div class="grid__message grid__message--error" role="alert">
          <strong>{errorHeadline(err.code)}</strong>
          <span>{err.message}</span>
          <button type="button" class="button" onClick={() => rows.reload()}>
            Retry
          </button>
        </div>
      )}
      {!err && empty && (
        <div class="grid__message" data-testid="inventory-empty">
          {hasActiveFilters(store.filters) ? (
            <>
              <strong>No identities match.</strong>
              <button type="button" class="link-button" onClick={() => store.clearFilters()}>
                Clear filters
              </button>
            </>
          ) : (
            <>
              <strong>No identities yet.</strong>
              <span>Custodian reads them from your sources.</span>
              <a class="button button--primary" href="#/sources" data-testid="inventory-add-source">
                Add a source
              </a>
            </>
          )}
        </div>
      )}
    </div>
  );
}

function Row(props: { index: number; row: InventoryRow; active: boolean; onOpen: (index: number) => void }) {
  const { row, index } = props;
  const now = Date.now();
  const ownerGone = row.owner_status !== null && row.owner_status !== 'active';
  return (
    <div
      id={`inv-row-${index}`}
      role="row"
      aria-rowindex={index + 2}
      aria-selected={props.active}
      class={`grid__row grid__cols${props.active ? ' is-active' : ''}${index % 2 ? ' is-odd' : ''}`}
      style={{ transform: `translateY(${index * ROW_HEIGHT}px)` }}
      data-testid="inventory-row"
      data-id={String(row.id)}
      onClick={() => props.onOpen(index)}
    >
      {/* The name cell holds the name only (tests compare its text); "discovered" is drawn by CSS. */}
      <div
        role="gridcell"
        class={`cell cell--name${row.registered ? '' : ' is-discovered'}`}
        data-testid="cell-name"
        title={row.registered ? row.name : `${row.name} (discovered, not registered)`}
      >
        {row.name}
      </div>
      <div role="gridcell" class="cell">{labelOf(KIND_LABELS, row.kind)}</div>
      <div role="gridcell" class="cell muted" title={row.agent_class ? labelOf(CLASS_LABELS, row.agent_class) : undefined}>
        {row.agent_class ? labelOf(CLASS_LABELS, row.agent_class) : '—'}
      </div>
      <div role="gridcell" class="cell">
        <span class={`dot dot--${row.status}`}>{labelOf(STATUS_LABELS, row.status)}</span>
      </div>
      <div role="gridcell" class={`cell cell--flex${ownerGone ? ' cell--risk' : ''}`} title={ownerGone ? `Owner ${labelOf(PERSON_STATUS_LABELS, row.owner_status)}` : undefined}>
        {row.owner_name ? (
          <>
            <span class="truncate">{row.owner_name}</span>
            {ownerGone && <span class="tag tag--bad">{row.owner_status === 'departed' ? 'left' : 'susp.'}</span>}
          </>
        ) : (
          <span class="muted">—</span>
        )}
      </div>
      <div role="gridcell" class="cell muted" title={row.source}>
        {shortSource(row.source)}
      </div>
      <div role="gridcell" class="cell num">{row.credential_count}</div>
      <div role="gridcell" class={`cell num tone--${ageTone(row.oldest_credential_days)}`}>{formatDays(row.oldest_credential_days)}</div>
      <div role="gridcell" class="cell num">{row.grant_count}</div>
      <div role="gridcell" class="cell">
        {row.max_severity ? (
          <SeverityBadge value={row.max_severity} suffix={` · ${row.finding_count}`} title={plural(row.finding_count, 'finding')} />
        ) : (
          <span class="muted">—</span>
        )}
      </div>
      <div role="gridcell" class="cell num muted" title={row.last_used_at ?? 'never used'}>
        {agoShort(row.last_used_at, now)}
      </div>
    </div>
  );
}

function Placeholder(props: { index: number }) {
  return (
    <div
      role="row"
      aria-rowindex={props.index + 2}
      class="grid__row grid__row--loading grid__cols"
      style={{ transform: `translateY(${props.index * ROW_HEIGHT}px)` }}
    >
      <div role="gridcell" class="cell">
        <span class="skeleton" />
      </div>
    </div>
  );
}
