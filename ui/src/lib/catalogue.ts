// The core's catalogues, as the backend serves them: the kinds of source
// (settings, secret, write-back abilities; `source_kinds`) and the posture
// checks (OWASP category, severity, title, fix; `finding_checks`). Views build
// forms, labels and finding texts from these; nothing in ui/src keeps its own
// list (tests/core/shell.rs holds that). Each is asked for once per backend.

import { useEffect, useState } from 'preact/hooks';
import type { FindingCatalogue, FindingCheckView, Severity, SourceKindView } from '../bindings';
import { api, backendGeneration, toUserError, type UserError } from './ipc';

/** One answer per backend; a failure is not kept (the next call asks again). */
function once<T>(ask: () => Promise<T>): () => Promise<T> {
  let kept: { generation: number; answer: Promise<T> } | null = null;
  return () => {
    const generation = backendGeneration();
    if (!kept || kept.generation !== generation) {
      const answer = ask();
      kept = { generation, answer };
      answer.catch(() => {
        if (kept?.answer === answer) kept = null;
      });
    }
    return kept.answer;
  };
}

export const catalogues = {
  sourceKinds: once<SourceKindView[]>(() => api.sourceKinds()),
  findingChecks: once<FindingCatalogue>(() => api.findingChecks()),
};

export type Loaded<T> = { state: 'loading' } | { state: 'ok'; value: T } | { state: 'error'; error: UserError };

function useLoaded<T>(get: () => Promise<T>): Loaded<T> {
  const [s, set] = useState<Loaded<T>>({ state: 'loading' });
  useEffect(() => {
    let live = true;
    get().then(
      (value) => live && set({ state: 'ok', value }),
      (e: unknown) => live && set({ state: 'error', error: toUserError(e) }),
    );
    return () => {
      live = false;
    };
  }, []);
  return s;
}

export function useSourceKinds(): Loaded<SourceKindView[]> {
  return useLoaded(() => catalogues.sourceKinds());
}

export function useFindingChecks(): Loaded<FindingCatalogue> {
  return useLoaded(() => catalogues.findingChecks());
}

/** What a finding shows: its check's entry in the catalogue. */
export interface CheckText {
  owasp: string;
  owasp_title: string;
  severity: Severity;
  title: string;
  fix: string;
}

/**
 * The texts of check `id` from the catalogue; `fallback` (what came with the
 * finding) only for a check this catalogue does not list or before it loaded.
 */
export function checkText(catalogue: FindingCatalogue | null, id: string, fallback: CheckText): CheckText {
  const c: FindingCheckView | undefined = catalogue?.checks.find((k) => k.id === id);
  return c ? { owasp: c.owasp, owasp_title: c.owasp_title, severity: c.severity, title: c.title, fix: c.fix } : fallback;
}
