interface Waiter {
  /** Returns true once the waiter has settled. */
  check(): boolean;
  fail(reason: Error): void;
}

/**
 * Promises that resolve when recorded state satisfies a predicate. The owner calls `notify()` after
 * every change and `rejectAll()` on close, which also clears every timeout timer.
 */
export class Waiters {
  readonly #pending = new Set<Waiter>();

  wait<T>(find: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer: { handle?: NodeJS.Timeout } = {};
      const waiter: Waiter = {
        check: () => {
          const found = find();
          if (found === undefined) return false;
          settle();
          resolve(found);
          return true;
        },
        fail: (reason) => {
          settle();
          reject(reason);
        },
      };
      const settle = (): void => {
        clearTimeout(timer.handle);
        this.#pending.delete(waiter);
      };
      if (waiter.check()) return;
      timer.handle = setTimeout(() => waiter.fail(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
      this.#pending.add(waiter);
    });
  }

  notify(): void {
    for (const waiter of [...this.#pending]) waiter.check();
  }

  rejectAll(reason: Error): void {
    for (const waiter of [...this.#pending]) waiter.fail(reason);
  }
}
