// State of the inventory view. It lives outside the component so that opening
// an identity and coming back keeps the query, the cached pages, the scroll
// position and the highlighted row.

import type { AgentClass, IdentityKind, IdentityStatus, InventoryFacets, InventoryQuery, InventoryRow, OwnerState, SortKey } from '../bindings';
import { api, onDataChanged, toUserError, type UserError } from '../lib/ipc';
import { RowSource } from '../lib/virtual';

export interface Filters {
  search: string;
  kinds: IdentityKind[];
  statuses: IdentityStatus[];
  classes: AgentClass[];
  sources: number[];
  owner_state: OwnerState | null;
  has_findings: boolean | null;
}

export function emptyFilters(): Filters {
  return { search: '', kinds: [], statuses: [], classes: [], sources: [], owner_state: null, has_findings: null };
}

export function hasActiveFilters(f: Filters): boolean {
  return (
    f.search.trim() !== '' ||
    f.kinds.length > 0 ||
    f.statuses.length > 0 ||
    f.classes.length > 0 ||
    f.sources.length > 0 ||
    f.owner_state !== null ||
    f.has_findings !== null
  );
}

/**
 * The query for filters and a sort; offset and limit are filled in per page.
 * Multi-value filters are sorted so that the same selection made in a
 * different order is the same query (and hits the same cache).
 */
export function toQuery(f: Filters, sort: SortKey, descending: boolean): InventoryQuery {
  const sorted = <T extends string | number>(xs: T[]) => [...xs].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return {
    search: f.search.trim(),
    kinds: sorted(f.kinds),
    statuses: sorted(f.statuses),
    classes: sorted(f.classes),
    sources: sorted(f.sources),
    owner: null,
    owner_state: f.owner_state,
    has_findings: f.has_findings,
    sort,
    descending,
    offset: 0,
    limit: 0,
  };
}

/** Columns where the interesting end is the top: the first click sorts descending. */
const DESCENDING_FIRST: ReadonlySet<SortKey> = new Set<SortKey>(['credentials', 'oldest_credential', 'grants', 'risk', 'last_used', 'created']);

/** Sort after clicking the header of `key`: toggles direction on the current column. */
export function nextSort(current: SortKey, descending: boolean, key: SortKey): { sort: SortKey; descending: boolean } {
  if (current === key) return { sort: key, descending: !descending };
  return { sort: key, descending: DESCENDING_FIRST.has(key) };
}

export const PAGE_SIZE = 200;

export class InventoryStore {
  filters: Filters = emptyFilters();
  /** What is in the search box (the filter follows it after a debounce). */
  searchText = '';
  sort: SortKey = 'name';
  descending = false;
  scrollTop = 0;
  highlighted: number | null = null;
  /** Bumped when the query changes, so the table scrolls back to the top. */
  resetToken = 0;
  facets: InventoryFacets | null = null;
  facetsError: UserError | null = null;
  readonly rows: RowSource<InventoryQuery, InventoryRow>;
  private listeners = new Set<() => void>();
  private facetsRequested = false;

  constructor(fetchPage = (q: InventoryQuery, offset: number, limit: number) => api.inventory({ ...q, offset, limit })) {
    this.rows = new RowSource(fetchPage, this.query(), () => this.emit(), { pageSize: PAGE_SIZE, maxPages: 60 });
  }

  query(): InventoryQuery {
    return toQuery(this.filters, this.sort, this.descending);
  }

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  emit(): void {
    for (const fn of this.listeners) fn();
  }

  setFilters(patch: Partial<Filters>): void {
    this.filters = { ...this.filters, ...patch };
    this.apply();
  }

  clearFilters(): void {
    this.filters = emptyFilters();
    this.searchText = '';
    this.apply();
  }

  sortBy(key: SortKey): void {
    const next = nextSort(this.sort, this.descending, key);
    this.sort = next.sort;
    this.descending = next.descending;
    this.apply();
  }

  private apply(): void {
    if (this.rows.setQuery(this.query())) {
      this.scrollTop = 0;
      this.highlighted = null;
      this.resetToken++;
    }
    this.emit();
  }

  /**
   * The cache changed under the inventory (a source was added or synced):
   * forget the cached pages, the facets and the position; the view refetches
   * when it is shown. Filters and sort are kept, except filters on sources,
   * whose ids may be gone.
   */
  invalidate(): void {
    if (this.filters.sources.length) this.filters = { ...this.filters, sources: [] };
    this.rows.setQuery(this.query());
    this.rows.invalidate();
    this.scrollTop = 0;
    this.highlighted = null;
    this.resetToken++;
    this.facets = null;
    this.facetsError = null;
    this.facetsRequested = false;
    this.emit();
  }

  loadFacets(force = false): void {
    if (this.facetsRequested && !force) return;
    this.facetsRequested = true;
    api.inventoryFacets().then(
      (f) => {
        this.facets = f;
        this.facetsError = null;
        this.emit();
      },
      (e: unknown) => {
        this.facetsError = toUserError(e);
        this.facetsRequested = false;
        this.emit();
      },
    );
  }
}

export const inventoryStore = new InventoryStore();
onDataChanged(() => inventoryStore.invalidate());
