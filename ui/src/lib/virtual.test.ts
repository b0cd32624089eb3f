import { describe, expect, it } from 'vitest';
import { moveHighlight, pagesFor, RowSource, rowsPerViewport, scrollTopFor, visibleRange } from './virtual';

describe('visibleRange', () => {
  it('covers the viewport plus overscan, clamped at the top', () => {
    // 28px rows, 560px viewport = 20 rows; overscan 5
    expect(visibleRange(0, 560, 28, 100_000, 5)).toEqual({ start: 0, end: 25 });
  });

  it('starts mid-list at the first partly visible row minus overscan', () => {
    // scrollTop 2800 -> row 100 is the first visible; 2800+560=3360 -> row 120 end
    expect(visibleRange(2800, 560, 28, 100_000, 5)).toEqual({ start: 95, end: 125 });
    // a partly scrolled row is still included
    expect(visibleRange(2810, 560, 28, 100_000, 0)).toEqual({ start: 100, end: 121 });
  });

  it('is clamped to the total at the bottom', () => {
    expect(visibleRange(99_990 * 28, 560, 28, 100_000, 5)).toEqual({ start: 99_985, end: 100_000 });
  });

  it('is empty for no rows and tolerates negative scroll (overscroll bounce)', () => {
    expect(visibleRange(0, 560, 28, 0, 5)).toEqual({ start: 0, end: 0 });
    expect(visibleRange(-50, 560, 28, 10, 5)).toEqual({ start: 0, end: 10 });
  });
});

describe('pagesFor', () => {
  it('lists the pages a range touches', () => {
    expect(pagesFor({ start: 0, end: 25 }, 200)).toEqual([0]);
    expect(pagesFor({ start: 190, end: 215 }, 200)).toEqual([0, 1]);
    expect(pagesFor({ start: 200, end: 400 }, 200)).toEqual([1]);
    expect(pagesFor({ start: 399, end: 401 }, 200)).toEqual([1, 2]);
    expect(pagesFor({ start: 99_985, end: 100_000 }, 200)).toEqual([499]);
    expect(pagesFor({ start: 5, end: 5 }, 200)).toEqual([]);
  });
});

describe('scrollTopFor', () => {
  it('leaves the scroll alone when the row is visible', () => {
    expect(scrollTopFor(10, 0, 560, 28)).toBe(0);
  });
  it('scrolls up so the row is at the top', () => {
    expect(scrollTopFor(10, 1000, 560, 28)).toBe(280);
  });
  it('scrolls down so the row is at the bottom, allowing for a sticky header', () => {
    // row 30: top 840, bottom 868. Visible height 560-28=532 -> scrollTop 336
    expect(scrollTopFor(30, 0, 560, 28, 28)).toBe(336);
    expect(scrollTopFor(30, 0, 560, 28)).toBe(308);
  });
});

describe('moveHighlight', () => {
  it('starts at the first visible row, or the ends for Home/End', () => {
    expect(moveHighlight(null, 'ArrowDown', 100, 20, 40)).toBe(40);
    expect(moveHighlight(null, 'End', 100, 20, 40)).toBe(99);
    expect(moveHighlight(null, 'Home', 100, 20, 40)).toBe(0);
  });
  it('moves and clamps', () => {
    expect(moveHighlight(5, 'ArrowUp', 100, 20)).toBe(4);
    expect(moveHighlight(0, 'ArrowUp', 100, 20)).toBe(0);
    expect(moveHighlight(99, 'ArrowDown', 100, 20)).toBe(99);
    expect(moveHighlight(90, 'PageDown', 100, 20)).toBe(99);
    expect(moveHighlight(10, 'PageUp', 100, 20)).toBe(0);
    expect(moveHighlight(50, 'PageDown', 100, 20)).toBe(70);
  });
  it('has nothing to highlight in an empty list', () => {
    expect(moveHighlight(3, 'ArrowDown', 0, 20)).toBeNull();
  });
  it('counts whole rows per viewport', () => {
    expect(rowsPerViewport(560, 28)).toBe(20);
    expect(rowsPerViewport(10, 28)).toBe(1);
  });
});

/** A fetcher whose responses are resolved by hand, in any order. */
function manualFetcher<Q = string>(total: number) {
  const calls: { query: Q; offset: number; limit: number; resolve: () => void; reject: (e: unknown) => void }[] = [];
  const fetch = (query: Q, offset: number, limit: number) =>
    new Promise<{ total: number; rows: string[] }>((res, rej) => {
      const rows: string[] = [];
      for (let i = offset; i < Math.min(total, offset + limit); i++) rows.push(`${String(query)}:${i}`);
      calls.push({ query, offset, limit, resolve: () => res({ total, rows }), reject: rej });
    });
  return { fetch, calls };
}

const flush = () => new Promise((r) => setTimeout(r, 0));

describe('RowSource', () => {
  it('invalidate() forgets pages and total and ignores answers to earlier requests', async () => {
    const { fetch, calls } = manualFetcher(1000);
    const src = new RowSource(fetch, 'q', () => {}, { pageSize: 100 });
    src.ensure({ start: 0, end: 50 });
    calls[0].resolve();
    await flush();
    src.ensure({ start: 150, end: 160 }); // page 1 in flight
    src.invalidate();
    expect(src.total).toBeNull();
    expect(src.previousTotal).toBeNull();
    expect(src.row(0)).toBeUndefined();
    calls[1].resolve(); // stale
    await flush();
    expect(src.hasPage(1)).toBe(false);
    expect(src.ensure({ start: 0, end: 50 })).toEqual([0]);
  });

  it('asks for the first page alone until the total is known, then the rest of the window', async () => {
    const { fetch, calls } = manualFetcher(1000);
    let changes = 0;
    const src = new RowSource(fetch, 'q', () => changes++, { pageSize: 100 });
    expect(src.ensure({ start: 0, end: 250 })).toEqual([0]);
    expect(src.ensure({ start: 0, end: 250 })).toEqual([]); // still learning the total
    calls[0].resolve();
    await flush();
    expect(src.total).toBe(1000);
    expect(src.row(5)).toBe('q:5');
    expect(calls.map((c) => c.offset)).toEqual([0, 100, 200]);
    expect(calls.every((c) => c.limit === 100)).toBe(true);
    expect(changes).toBeGreaterThan(0);
  });

  it('serves cached pages without refetching and never asks past the end', async () => {
    const { fetch, calls } = manualFetcher(250);
    const src = new RowSource(fetch, 'q', () => {}, { pageSize: 100 });
    src.ensure({ start: 0, end: 50 });
    calls[0].resolve();
    await flush();
    expect(src.ensure({ start: 10, end: 60 })).toEqual([]);
    expect(src.ensure({ start: 150, end: 400 })).toEqual([1, 2]);
    expect(src.row(99)).toBe('q:99');
    expect(src.row(100)).toBeUndefined(); // requested, not arrived
    expect(src.isLoading(1)).toBe(true);
  });

  it('drops the cache when the query changes and ignores stale responses', async () => {
    const { fetch, calls } = manualFetcher(1000);
    const src = new RowSource<string, string>(fetch, 'old', () => {}, { pageSize: 100 });
    src.ensure({ start: 0, end: 10 });
    calls[0].resolve();
    await flush();
    src.ensure({ start: 500, end: 510 });
    const slowOld = calls[1];
    expect(slowOld.query).toBe('old');

    expect(src.setQuery('new')).toBe(true);
    expect(src.row(0)).toBeUndefined();
    expect(src.total).toBeNull();
    expect(src.displayTotal).toBe(1000); // previous total while loading
    src.ensure({ start: 0, end: 10 });
    const fresh = calls[2];
    expect(fresh.query).toBe('new');

    slowOld.resolve(); // arrives after the query changed
    await flush();
    expect(src.hasPage(5)).toBe(false);
    expect(src.row(500)).toBeUndefined();

    fresh.resolve();
    await flush();
    expect(src.row(0)).toBe('new:0');
  });

  it('keeps the cache when set to an equal query', async () => {
    const { fetch, calls } = manualFetcher<{ search: string; kinds: string[] }>(100);
    const src = new RowSource(fetch, { search: 'a', kinds: [] as string[] }, () => {}, { pageSize: 50 });
    src.ensure({ start: 0, end: 10 });
    calls[0].resolve();
    await flush();
    expect(src.setQuery({ search: 'a', kinds: [] })).toBe(false);
    expect(src.row(0)).toBeDefined();
    expect(src.currentGeneration).toBe(0);
  });

  it('ignores a stale failure, reports a current one, and retries only on reload', async () => {
    const { fetch, calls } = manualFetcher(100);
    const src = new RowSource<string, string>(fetch, 'a', () => {}, { pageSize: 50 });
    src.ensure({ start: 0, end: 10 });
    src.setQuery('b');
    calls[0].reject(new Error('old failure'));
    await flush();
    expect(src.error).toBeNull();

    src.ensure({ start: 0, end: 10 });
    calls[1].reject({ code: 'storage', message: 'disk' });
    await flush();
    expect(src.error).toEqual({ code: 'storage', message: 'disk' });
    expect(src.ensure({ start: 0, end: 10 })).toEqual([]);
    src.reload();
    expect(src.error).toBeNull();
    expect(calls.length).toBe(3);
    calls[2].resolve();
    await flush();
    expect(src.row(0)).toBe('b:0');
  });

  it('evicts the pages farthest from the current window', async () => {
    const { fetch, calls } = manualFetcher(10_000);
    const src = new RowSource(fetch, 'q', () => {}, { pageSize: 100, maxPages: 3 });
    for (const start of [0, 1000, 2000, 3000]) {
      src.ensure({ start, end: start + 10 });
      calls[calls.length - 1].resolve();
      await flush();
    }
    expect(src.cachedPages).toEqual([10, 20, 30]);
  });
});
