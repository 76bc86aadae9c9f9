import { spawn, type ChildProcess } from 'node:child_process';
import type { Clock } from '../clock.js';
import { errorMessage } from '../errors.js';
import type { Component } from '../lifecycle.js';
import { formatDuration, type Logger } from '../log/index.js';

export interface EnvoyAgentDeps {
  binaryPath: string;
  args: readonly string[];
  /** Writes the bootstrap just before Envoy starts. */
  prepare?: () => Promise<void>;
  /** Deletes envoy-rev.json once Envoy has exited, as pilot-agent does (a customConfigFile is kept). */
  removeBootstrap: () => Promise<void>;
  adminPort: number;
  /** terminationDrainDuration */
  terminationDrainMs: number;
  /** EXIT_ON_ZERO_ACTIVE_CONNECTIONS, with MINIMUM_DRAIN_DURATION before the first check. */
  exitOnZeroActiveConnections: boolean;
  minimumDrainMs: number;
  clock: Clock;
  log: Logger;
  /** Envoy ended on its own (not because the agent stopped it): pilot-agent then exits 0. */
  onExit: () => void;
}

const POLL_ACTIVE_CONNECTIONS_MS = 1000;

/**
 * Runs Envoy the way pilot-agent does (SPEC §8.2–8.3): its output inherited; when it exits on its own
 * the agent exits 0 and systemd restarts it; on SIGTERM the inbound listeners are drained through the
 * admin API, the termination drain period runs, then Envoy is killed.
 */
export class EnvoyAgent implements Component {
  readonly name = 'envoy';
  readonly #deps: EnvoyAgentDeps;
  #child?: ChildProcess;
  #exited?: Promise<{ code: number | null; signal: NodeJS.Signals | null; error: string | undefined }>;
  #isStopping = false;
  #closed?: Promise<void>;

  constructor(deps: EnvoyAgentDeps) {
    this.#deps = deps;
  }

  get isRunning(): boolean {
    return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  async start(_signal: AbortSignal): Promise<void> {
    const { binaryPath, args, log } = this.#deps;
    await this.#deps.prepare?.();
    log.info(`Envoy command: [${args.join(' ')}]`);
    const child = spawn(binaryPath, [...args], { stdio: ['ignore', 'inherit', 'inherit'] });
    this.#child = child;
    this.#exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal, error: undefined }));
      // A binary that cannot be started never fires 'exit': for pilot-agent it is Envoy exiting with an error.
      child.once('error', (err) => resolve({ code: null, signal: null, error: `fork/exec ${binaryPath}: ${err.message}` }));
    });
    void this.#exited.then(async ({ code, signal, error }) => {
      if (this.#isStopping) return;
      if (code === 0) log.info('Envoy exited normally');
      else log.error(`Envoy exited with error: ${error ?? describeExit(code, signal)}`);
      await this.#deps.removeBootstrap();
      this.#deps.onExit();
    });
  }

  /**
   * The graceful part of a SIGTERM: drain inbound listeners, then wait the termination drain period
   * (or until no connection is left). Resolves early if Envoy exits meanwhile.
   */
  async drain(): Promise<void> {
    const { log, clock, terminationDrainMs, exitOnZeroActiveConnections, minimumDrainMs } = this.#deps;
    if (!this.isRunning) return;
    this.#isStopping = true;
    log.info('Agent draining Proxy for termination');
    try {
      await this.#admin('POST', '/drain_listeners?inboundonly&graceful');
    } catch (err) {
      log.warn(`failed to drain listeners: ${errorMessage(err)}`);
    }
    const exited = this.#exited ?? Promise.resolve();
    const wait = async (): Promise<void> => {
      if (!exitOnZeroActiveConnections) {
        log.info(`Graceful termination period is ${formatDuration(terminationDrainMs)}, starting...`);
        await clock.sleep(terminationDrainMs);
        log.info('Graceful termination period complete, terminating remaining proxies.');
        return;
      }
      log.info(`Agent draining proxy for ${formatDuration(minimumDrainMs)}, then waiting for active connections to terminate...`);
      await clock.sleep(minimumDrainMs);
      for (;;) {
        const active = await this.#activeConnections().catch(() => 0);
        if (active === 0) {
          log.info('There are no more active connections. terminating proxy...');
          return;
        }
        log.info(`There are still ${active} active connections`);
        await clock.sleep(POLL_ACTIVE_CONNECTIONS_MS);
      }
    };
    const early = exited.then(() => 'exited' as const);
    if ((await Promise.race([wait().then(() => 'waited' as const), early])) === 'exited') {
      log.warn('Graceful termination logic ended prematurely, envoy process terminated early');
    }
  }

  close(): Promise<void> {
    return (this.#closed ??= this.#kill());
  }

  async #kill(): Promise<void> {
    this.#isStopping = true;
    const child = this.#child;
    if (!child || !this.isRunning) return;
    child.kill('SIGKILL');
    await this.#exited;
    this.#deps.log.info('Envoy aborted normally');
    this.#deps.log.info('Aborted proxy instance');
    await this.#deps.removeBootstrap();
  }

  /** Sum of `listener.*.downstream_cx_active` except the agent's own, admin and worker listeners. */
  async #activeConnections(): Promise<number> {
    const text = await this.#admin('GET', '/stats?usedonly&filter=downstream_cx_active$');
    let total = 0;
    for (const line of text.split('\n')) {
      const match = /^(listener\.[^:]+\.downstream_cx_active):\s*(\d+)/.exec(line.trim());
      if (!match) continue;
      const name = match[1] ?? '';
      if (/worker_|envoy_internal_|admin|15021|15090/.test(name)) continue;
      total += Number(match[2]);
    }
    return total;
  }

  async #admin(method: string, path: string): Promise<string> {
    const response = await fetch(`http://127.0.0.1:${this.#deps.adminPort}${path}`, { method, signal: AbortSignal.timeout(3000) });
    const text = await response.text();
    if (!response.ok) throw new Error(`${method} ${path}: status ${response.status}`);
    return text;
  }
}

/** As Go's exec.ExitError prints: `exit status 1`, or `signal: killed` (with an OOM hint, as pilot-agent adds). */
export function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  if (signal === 'SIGKILL') return 'signal: killed (the kernel may have killed Envoy for using too much memory)';
  if (signal) return `signal: ${signal.replace(/^SIG/, '').toLowerCase()}`;
  return `exit status ${code ?? -1}`;
}
