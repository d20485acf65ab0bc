/**
 * Where the engine gets its timers, so that tests can drive redelivery waits with a
 * virtual clock instead of real seconds. The default is the process's own timers.
 */
export interface Scheduler {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realScheduler: Scheduler = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/**
 * Waits `ms` unless one of the signals aborts first. Resolves with the signal that ended the wait,
 * or undefined when the time passed; never rejects.
 */
export function abortableWait(scheduler: Scheduler, ms: number, signals: ReadonlyArray<AbortSignal | undefined>): Promise<AbortSignal | undefined> {
  const live = signals.filter((s): s is AbortSignal => s !== undefined);
  const already = live.find((s) => s.aborted);
  if (already) return Promise.resolve(already);
  return new Promise((resolve) => {
    const listeners = live.map((signal) => {
      const listener = () => finish(signal);
      signal.addEventListener('abort', listener, { once: true });
      return [signal, listener] as const;
    });
    const handle = scheduler.setTimeout(() => finish(undefined), ms);
    function finish(by: AbortSignal | undefined) {
      scheduler.clearTimeout(handle);
      for (const [signal, listener] of listeners) signal.removeEventListener('abort', listener);
      resolve(by);
    }
  });
}
