// Virtualisation maths and the paged row cache behind the inventory table.
// No DOM here, so all of it is unit-tested.

/** Half-open range of row indexes `[start, end)`. */
export interface Range {
  start: number;
  end: number;
}

/**
 * Rows to render for a scroll position: the rows in the viewport plus
 * `overscan` rows either side, clamped to `[0, total)`.
 */
export function visibleRange(
  scrollTop: number,
  viewportHeight: number,
  rowHeight: number,
  total: number,
  overscan: number,
): Range {
  if (total <= 0 || rowHeight <= 0) return { start: 0, end: 0 };
  const first = Math.floor(Math.max(0, scrollTop) / rowHeight);
  const last = Math.ceil((Math.max(0, scrollTop) + Math.max(0, viewportHeight)) / rowHeight);
  const start = Math.min(total, Math.max(0, first - overscan));
  const end = Math.min(total, Math.max(start, last + overscan));
  return { start, end };
}

/** Indexes of the pages of `pageSize` rows that cover `range` (ascending). */
export function pagesFor(range: Range, pageSize: number): number[] {
  if (range.end <= range.start) return [];
  const first = Math.floor(range.start / pageSize);
  const last = Math.floor((range.end - 1) / pageSize);
  const pages: number[] = [];
  for (let p = first; p <= last; p++) pages.push(p);
  return pages;
}

/** Number of whole rows that fit in the viewport (at least 1). */
export function rowsPerViewport(viewportHeight: number, rowHeight: number): number {
  return Math.max(1, Math.floor(viewportHeight / rowHeight));
}

/**
 * The scrollTop that brings row `index` fully into view, changing the current
 * one as little as possible. `headerHeight` is the part of the viewport
 * covered by a sticky header.
 */
export function scrollTopFor(
  index: number,
  scrollTop: number,
  viewportHeight: number,
  rowHeight: number,
  headerHeight = 0,
): number {
  const top = index * rowHeight;
  const bottom = top + rowHeight;
  const visible = viewportHeight - headerHeight;
  if (top < scrollTop) return top;
  if (bottom > scrollTop + visible) return Math.max(0, bottom - visible);
  return scrollTop;
}

/** Clamps a highlighted row index after a key press. */
export function moveHighlight(
  current: number | null,
  key: 'ArrowUp' | 'ArrowDown' | 'PageUp' | 'PageDown' | 'Home' | 'End',
  total: number,
  pageRows: number,
  firstVisible = 0,
): number | null {
  if (total <= 0) return null;
  const last = total - 1;
  const clamp = (i: number) => Math.min(last, Math.max(0, i));
  if (current === null) {
    if (key === 'End') return last;
    if (key === 'Home') return 0;
    return clamp(firstVisible);
  }
  switch (key) {
    case 'ArrowUp':
      return clamp(current - 1);
    case 'ArrowDown':
      return clamp(current + 1);
    case 'PageUp':
      return clamp(current - pageRows);
    case 'PageDown':
      return clamp(current + pageRows);
    case 'Home':
      return 0;
    case 'End':
      return last;
  }
}

export interface Page<T> {
  total: number;
  rows: T[];
}

export type FetchPage<Q, T> = (query: Q, offset: number, limit: number) => Promise<Page<T>>;

export interface RowSourceOptions {
  pageSize?: number;
  /** Most pages kept; the ones farthest from the last requested range go first. */
  maxPages?: number;
}

/**
 * Rows of one query, fetched a page at a time and cached per page.
 *
 * `setQuery` with a different query drops the cache and bumps a generation
 * counter: responses to requests made for an older query are ignored, so a
 * slow answer to an old search can never overwrite the current one.
 */
export class RowSource<Q, T> {
  readonly pageSize: number;
  readonly maxPages: number;
  private query: Q;
  private key: string;
  private generation = 0;
  private pages = new Map<number, T[]>();
  private inflight = new Set<number>();
  private lastRange: Range = { start: 0, end: 0 };
  /** Total rows of the current query; null until the first page arrives. */
  total: number | null = null;
  /** Total of the previous query, kept while the new one loads so the table does not collapse. */
  previousTotal: number | null = null;
  error: unknown = null;

  constructor(
    private readonly fetchPage: FetchPage<Q, T>,
    query: Q,
    private readonly onChange: () => void,
    options: RowSourceOptions = {},
  ) {
    this.pageSize = options.pageSize ?? 200;
    this.maxPages = Math.max(1, options.maxPages ?? 100);
    this.query = query;
    this.key = RowSource.keyOf(query);
  }

  static keyOf(query: unknown): string {
    return JSON.stringify(query);
  }

  get currentQuery(): Q {
    return this.query;
  }

  get currentGeneration(): number {
    return this.generation;
  }

  /** Whether a total is known for the current query. */
  get loaded(): boolean {
    return this.total !== null;
  }

  /** Total to size the table with: the current one, or the previous while loading. */
  get displayTotal(): number {
    return this.total ?? this.previousTotal ?? 0;
  }

  /** Switches to `query`. Returns false (and keeps the cache) when it is the same query. */
  setQuery(query: Q): boolean {
    const key = RowSource.keyOf(query);
    if (key === this.key) return false;
    this.query = query;
    this.key = key;
    this.generation++;
    this.pages.clear();
    this.inflight.clear();
    if (this.total !== null) this.previousTotal = this.total;
    this.total = null;
    this.error = null;
    this.onChange();
    return true;
  }

  /**
   * The data behind the query changed (e.g. a sync): drops the cache and the
   * total, so the next `ensure` starts over from the first page to learn the
   * new total. Answers to earlier requests are ignored.
   */
  invalidate(): void {
    this.generation++;
    this.pages.clear();
    this.inflight.clear();
    this.total = null;
    this.previousTotal = null;
    this.error = null;
    this.onChange();
  }

  /** Drops everything and refetches (same query). */
  reload(): void {
    this.generation++;
    this.pages.clear();
    this.inflight.clear();
    this.error = null;
    this.ensure(this.lastRange);
    this.onChange();
  }

  /** The row at `index`, or undefined when its page is not loaded. */
  row(index: number): T | undefined {
    const page = this.pages.get(Math.floor(index / this.pageSize));
    return page?.[index % this.pageSize];
  }

  hasPage(page: number): boolean {
    return this.pages.has(page);
  }

  isLoading(page: number): boolean {
    return this.inflight.has(page);
  }

  get cachedPages(): number[] {
    return [...this.pages.keys()].sort((a, b) => a - b);
  }

  /**
   * Requests the pages covering `range` that are neither cached nor in
   * flight. Before the total is known only the first needed page is
   * requested, to learn it. Returns the page indexes requested.
   */
  ensure(range: Range): number[] {
    this.lastRange = range;
    // After a failure, wait for reload() or a new query rather than retrying on every render.
    if (this.error !== null) return [];
    let wanted = pagesFor(range.end > range.start ? range : { start: range.start, end: range.start + 1 }, this.pageSize);
    if (this.total !== null) {
      const lastPage = Math.max(0, Math.ceil(this.total / this.pageSize) - 1);
      wanted = wanted.filter((p) => p <= lastPage);
    } else if (this.inflight.size > 0) {
      return [];
    } else {
      wanted = wanted.slice(0, 1);
    }
    const requested: number[] = [];
    for (const p of wanted) {
      if (this.pages.has(p) || this.inflight.has(p)) continue;
      this.request(p);
      requested.push(p);
    }
    return requested;
  }

  private request(page: number): void {
    const generation = this.generation;
    this.inflight.add(page);
    this.fetchPage(this.query, page * this.pageSize, this.pageSize).then(
      (res) => {
        if (generation !== this.generation) return; // stale: the query changed meanwhile
        this.inflight.delete(page);
        this.pages.set(page, res.rows);
        const firstTotal = this.total === null;
        this.total = res.total;
        this.previousTotal = null;
        this.error = null;
        this.evict();
        // With the total known, fetch the rest of the window requested meanwhile.
        if (firstTotal) this.ensure(this.lastRange);
        this.onChange();
      },
      (err: unknown) => {
        if (generation !== this.generation) return;
        this.inflight.delete(page);
        this.error = err;
        this.onChange();
      },
    );
  }

  private evict(): void {
    if (this.pages.size <= this.maxPages) return;
    const centre = (this.lastRange.start + this.lastRange.end) / 2 / this.pageSize;
    const byDistance = [...this.pages.keys()].sort((a, b) => Math.abs(b - centre) - Math.abs(a - centre));
    for (const p of byDistance) {
      if (this.pages.size <= this.maxPages) break;
      this.pages.delete(p);
    }
  }
}
