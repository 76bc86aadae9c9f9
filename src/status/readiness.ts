import { access } from 'node:fs/promises';

/** One extra readiness condition (SPEC §9.2 checks 3 and 4, or the xDS connection without Envoy). */
export interface ReadinessCheck {
  readonly name: string;
  /** Resolves when ready; rejects with an Error whose message is the probe's 503 body otherwise. */
  check(): Promise<void>;
}

/** Readiness fails with this once the agent is shutting down, as pilot-agent's does on SIGTERM. */
export const TERMINATING_MESSAGE = 'server is terminated: received signal: terminated';

/** A check on an in-memory condition: e.g. the DNS table is loaded, with `DNS_NOT_READY_MESSAGE`. */
export function conditionCheck(name: string, isReady: () => boolean, message: string): ReadinessCheck {
  return {
    name,
    check: async () => {
      if (!isReady()) throw new Error(message);
    },
  };
}

/**
 * Check 3 on a VM: the files the gRPC bootstrap's file_watcher provider points at exist
 * (`/etc/certs/*.pem`), failing with `<path> does not exist` for the first one missing.
 */
export function filesExistCheck(name: string, paths: () => readonly string[]): ReadinessCheck {
  return {
    name,
    check: async () => {
      for (const file of paths()) {
        try {
          await access(file);
        } catch {
          throw new Error(`${file} does not exist`);
        }
      }
    },
  };
}
