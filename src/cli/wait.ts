import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from '../log/index.js';

export interface WaitOptions {
  timeoutSeconds: number;
  requestTimeoutMillis: number;
  periodMillis: number;
  url: string;
}

export const DEFAULT_WAIT_OPTIONS: WaitOptions = {
  timeoutSeconds: 60,
  requestTimeoutMillis: 500,
  periodMillis: 500,
  url: 'http://localhost:15021/healthz/ready',
};

/**
 * `pilot-agent wait`: polls Envoy's readiness URL until it answers 200 (exit 0) or the timeout passes
 * (`timeout waiting for Envoy proxy to become ready. Last error: <err>`, exit 255), as pilot-agent does.
 */
export async function waitForEnvoy(options: WaitOptions, log: Logger): Promise<{ code: number; error?: string }> {
  log.info(`Waiting for Envoy proxy to be ready (timeout: ${options.timeoutSeconds} seconds)...`);
  const deadline = Date.now() + options.timeoutSeconds * 1000;
  let lastError: string;
  for (;;) {
    try {
      const response = await fetch(options.url, { signal: AbortSignal.timeout(options.requestTimeoutMillis) });
      await response.arrayBuffer();
      if (response.status === 200) {
        log.info('Envoy is ready!');
        return { code: 0 };
      }
      lastError = `HTTP status code ${response.status}`;
    } catch (err) {
      lastError = describeFetchError(err);
    }
    if (Date.now() + options.periodMillis > deadline) {
      return { code: 255, error: `timeout waiting for Envoy proxy to become ready. Last error: ${lastError}` };
    }
    await delay(options.periodMillis);
  }
}

/** fetch() hides the socket error in `cause`: show it, as Go's client error would. */
export function describeFetchError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause;
  if (cause instanceof Error) return `${err.message}: ${cause.message}`;
  if (err.name === 'TimeoutError') return `request timed out: ${err.message}`;
  return err.message;
}
