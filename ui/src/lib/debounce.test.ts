import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { debouncer } from './debounce';

describe('debouncer', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('runs only the last action, after the quiet period', () => {
    const d = debouncer(150);
    const seen: string[] = [];
    d.run(() => seen.push('i'));
    vi.advanceTimersByTime(100);
    d.run(() => seen.push('in'));
    vi.advanceTimersByTime(100);
    d.run(() => seen.push('inv'));
    vi.advanceTimersByTime(149);
    expect(seen).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(seen).toEqual(['inv']);
    vi.advanceTimersByTime(1000);
    expect(seen).toEqual(['inv']);
  });

  it('flushes a pending action at once, and cancels', () => {
    const d = debouncer(150);
    const seen: number[] = [];
    d.run(() => seen.push(1));
    d.flush();
    expect(seen).toEqual([1]);
    d.flush(); // nothing pending
    expect(seen).toEqual([1]);
    d.run(() => seen.push(2));
    d.cancel();
    vi.advanceTimersByTime(500);
    expect(seen).toEqual([1]);
  });
});
