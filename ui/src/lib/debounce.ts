/** Runs the last scheduled action once `ms` have passed without another being scheduled. */
export interface Debouncer {
  run(action: () => void): void;
  /** Runs the pending action now, if any. */
  flush(): void;
  cancel(): void;
}

export function debouncer(ms: number): Debouncer {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let pending: (() => void) | null = null;
  const fire = () => {
    timer = undefined;
    const action = pending;
    pending = null;
    action?.();
  };
  return {
    run(action) {
      pending = action;
      if (timer !== undefined) clearTimeout(timer);
      timer = setTimeout(fire, ms);
    },
    flush() {
      if (timer !== undefined) clearTimeout(timer);
      fire();
    },
    cancel() {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      pending = null;
    },
  };
}
