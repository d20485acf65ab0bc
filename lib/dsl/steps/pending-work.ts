/**
 * Work a step started that outlives the exchange which started it (a wire tap still sending, an
 * aggregated group completed by its timeout). The route's stop waits for it, so stopping does not
 * close the producers under it and lose the message.
 */
export class PendingWork {
  readonly #running = new Set<Promise<void>>();

  get size(): number {
    return this.#running.size;
  }

  /** Tracks the work until it settles; a rejection is the caller's to report, it is swallowed here. */
  add(work: Promise<unknown>): void {
    const tracked: Promise<void> = work.then(
      () => undefined,
      () => undefined,
    );
    this.#running.add(tracked);
    void tracked.then(() => this.#running.delete(tracked));
  }

  /**
   * Resolves once nothing is running, including work added while waiting, or with the number still
   * running when the timeout passes.
   */
  async settle(timeoutMs: number): Promise<number> {
    const deadline = performance.now() + timeoutMs;
    while (this.#running.size > 0) {
      const left = deadline - performance.now();
      if (left <= 0) break;
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, left);
      });
      await Promise.race([Promise.all([...this.#running]), timedOut]);
      clearTimeout(timer);
      // Let the delete callbacks of what just settled run before counting again.
      await Promise.resolve();
    }
    return this.#running.size;
  }
}
