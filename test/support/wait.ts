/**
 * Waits for a condition with a deadline; tests use this instead of bare sleeps. The condition may
 * be async; it is re-checked every `interval` ms and the failure message says what never happened.
 */
export async function waitFor<T>(
  condition: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  options: { timeout?: number; interval?: number; message?: string | (() => string) } = {},
): Promise<T> {
  const timeout = options.timeout ?? 10_000;
  const interval = options.interval ?? 20;
  const deadline = performance.now() + timeout;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await condition();
      if (value) return value;
    } catch (err) {
      lastError = err;
    }
    if (performance.now() > deadline) {
      const why = typeof options.message === 'function' ? options.message() : (options.message ?? condition.toString());
      throw new Error(`waitFor timed out after ${timeout}ms: ${why}${lastError ? ` (last error: ${String(lastError)})` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}

/** Resolves with the first emission of `event`, or rejects after the deadline. */
export function onceWithin<T = unknown>(
  emitter: { once(event: string, fn: (value: T) => void): unknown; off?(event: string, fn: (value: T) => void): unknown },
  event: string,
  timeout = 10_000,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off?.(event, handler);
      reject(new Error(`event "${event}" not emitted within ${timeout}ms`));
    }, timeout);
    const handler = (value: T) => {
      clearTimeout(timer);
      resolve(value);
    };
    emitter.once(event, handler);
  });
}
