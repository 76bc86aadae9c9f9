/** Every long-running part of the agent is a Component with an explicit start/close lifecycle. */
export interface Component {
  readonly name: string;
  /** Starts the component; resolves once it is serving. The signal aborts a start still under way. */
  start(signal: AbortSignal): Promise<void>;
  /** Stops the component. Idempotent; safe before, during or after start. */
  close(): Promise<void>;
}

/**
 * Starts components in order. If one fails, closes the ones already started (and the failing one,
 * which may have half-started) in reverse order, then rethrows the original error.
 */
export async function startAll(components: readonly Component[], signal: AbortSignal): Promise<void> {
  const started: Component[] = [];
  for (const component of components) {
    started.push(component);
    try {
      signal.throwIfAborted();
      await component.start(signal);
    } catch (err) {
      await closeAll(started);
      throw err;
    }
  }
}

/** Closes components in reverse order; a failing close does not stop the others from closing. */
export async function closeAll(components: readonly Component[]): Promise<Error[]> {
  const errors: Error[] = [];
  for (const component of [...components].reverse()) {
    try {
      await component.close();
    } catch (err) {
      errors.push(err instanceof Error ? err : new Error(String(err)));
    }
  }
  return errors;
}
