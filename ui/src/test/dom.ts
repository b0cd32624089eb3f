// Helpers for component tests (jsdom): the browser APIs jsdom lacks, and the
// in-browser mock backends with no latency.

import { cleanup } from '@testing-library/preact';
import { afterEach } from 'vitest';
import { setBackend } from '../lib/ipc';
import { createMockBackend } from '../lib/mock';
import { createMockOffboarding, setOffboardingApi } from '../lib/offboarding';
import { createMockPosture, setPostureApi } from '../lib/posture';
import { createMockReviews, setReviewsApi, type ReviewsApi } from '../lib/reviews';
import { createMockConnection, setConnectionApi, type MockConnectionOptions } from '../lib/connection';

class NoResizeObserver {
  observe(): void {}
  unobserve(): void {}
  disconnect(): void {}
}

if (typeof window !== 'undefined') {
  if (!('ResizeObserver' in window)) (window as unknown as { ResizeObserver: unknown }).ResizeObserver = NoResizeObserver;
  (globalThis as unknown as { ResizeObserver: unknown }).ResizeObserver = window.ResizeObserver;
  if (!Element.prototype.scrollTo) Element.prototype.scrollTo = () => undefined;
  // axe-core probes a canvas for icon fonts; jsdom has none.
  HTMLCanvasElement.prototype.getContext = (() => null) as typeof HTMLCanvasElement.prototype.getContext;
}

afterEach(() => cleanup());

/**
 * Fresh mock backends for every API; returns the reviews mock so a test can
 * pre-set who acts. `roles`: a team workspace where the acting person holds
 * those roles (default: solo); `unreachable`: the workspace does not answer.
 */
export function useMocks(
  opts: { size?: number } & Omit<MockConnectionOptions, 'reviews'> = {},
): { reviews: ReviewsApi; connection: ReturnType<typeof createMockConnection> } {
  setBackend(createMockBackend({ size: opts.size ?? 300, latencyMs: 0 }));
  const reviews = createMockReviews();
  setReviewsApi(reviews);
  const connection = createMockConnection({ roles: opts.roles ?? null, unreachable: opts.unreachable, snapshot: opts.snapshot, signedOut: opts.signedOut, reviews });
  setConnectionApi(connection);
  setOffboardingApi(createMockOffboarding());
  setPostureApi(createMockPosture());
  return { reviews, connection };
}
