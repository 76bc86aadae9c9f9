/** What one probe round found: the same shape as the xDS proxy's HealthReport. */
export type ProbeResult = { healthy: true } | { healthy: false; message: string };

export interface ProbeContext {
  /**
   * Aborts when the round's timeout (`timeoutSeconds`) passes or the checker closes. The prober then
   * releases what it holds (socket, child process, channel) and settles promptly, reporting the
   * timeout in the words Istio uses for that kind of probe.
   */
  readonly signal: AbortSignal;
  /** For messages only (`timed out after 1s`); the timer itself is the checker's. */
  readonly timeoutMs: number;
}

/** One kind of probe (HTTP, TCP, exec, gRPC). `probe` never rejects: every failure is a result. */
export interface Prober {
  /** Istio's Go type name, logged when the health check starts: `HTTPProber`. */
  readonly kind: string;
  probe(context: ProbeContext): Promise<ProbeResult>;
}

export const HEALTHY: ProbeResult = Object.freeze({ healthy: true });

export function unhealthy(message: string): ProbeResult {
  return { healthy: false, message };
}

/**
 * A promise settled by the first of `settle(value)` or the signal's abort (giving `onAbort()`); `cleanup`
 * runs once it is decided either way, so sockets, processes and listeners never outlive the round.
 * `start` may throw: that settles with `onThrow(err)`.
 */
export function settleFirst<T>(
  signal: AbortSignal,
  handlers: { start: (settle: (value: T) => void) => void; onAbort: () => T; onThrow: (err: unknown) => T; cleanup?: () => void },
): Promise<T> {
  return new Promise<T>((resolve) => {
    let settled = false;
    const aborted = (): void => settle(handlers.onAbort());
    function settle(value: T): void {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', aborted);
      handlers.cleanup?.();
      resolve(value);
    }
    if (signal.aborted) {
      aborted();
      return;
    }
    signal.addEventListener('abort', aborted, { once: true });
    try {
      handlers.start(settle);
    } catch (err) {
      settle(handlers.onThrow(err));
    }
  });
}
