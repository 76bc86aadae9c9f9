import type { Clock } from '../clock.js';
import type { ReadinessProbe } from '../config/types.js';
import { errorMessage } from '../errors.js';
import type { Component } from '../lifecycle.js';
import { formatDuration, type Logger } from '../log/index.js';
import type { HealthReport } from '../xds/index.js';
import { ExecProber } from './exec-prober.js';
import { GrpcProber } from './grpc-prober.js';
import { HttpProber } from './http-prober.js';
import { probeDefaults, validateReadinessProbe, type DefaultedProbe } from './probe-config.js';
import { settleFirst, unhealthy, type ProbeResult, type Prober } from './prober.js';
import { TcpProber } from './tcp-prober.js';

export interface WorkloadHealthCheckerDeps {
  /** ProxyConfig `readinessProbe`, as configured (Istio's defaults are applied here). */
  probe: ReadinessProbe;
  /** The proxy's IPs; the first is the default probe host. */
  instanceIps: readonly string[];
  /** REWRITE_PROBE_LEGACY_LOCALHOST_DESTINATION: probe `localhost` instead of the first IP. */
  rewriteLocalhost: boolean;
  clock: Clock;
  /** [healthcheck] */
  log: Logger;
  /** Called on every change of health, the first determination included; never twice in a row with the same state. */
  report: (report: HealthReport) => void;
  /**
   * Envoy's readiness (SPEC §9.2 checks 1–2): rejects, with the reason as its message, while Envoy
   * is not ready. Each round awaits it before probing the application, as Istio's EnvoyProber comes
   * first in its AggregateProber; the round's timeout bounds it too.
   */
  envoyReady?: (signal: AbortSignal) => Promise<void>;
}

type State = 'unknown' | 'healthy' | 'unhealthy';

/**
 * The VM readiness prober (SPEC §7.2): probes the application every `periodSeconds` and reports to
 * istiod, through the xDS proxy's `reportHealth`, only when the state changes. `successThreshold`
 * consecutive successes make it healthy, `failureThreshold` consecutive failures unhealthy, as in
 * pilot-agent's WorkloadHealthChecker.
 */
export class WorkloadHealthChecker implements Component {
  readonly name = 'healthcheck';
  readonly probe: DefaultedProbe;
  readonly #prober: Prober;
  readonly #lifetime = new AbortController();
  #loop?: Promise<void>;
  #closed?: Promise<void>;
  #state: State = 'unknown';
  #lastReport?: HealthReport;
  #successes = 0;
  #failures = 0;

  constructor(private readonly deps: WorkloadHealthCheckerDeps) {
    const errors = validateReadinessProbe(deps.probe, 'readinessProbe');
    if (errors.length > 0) throw new Error(errors.join('; '));
    this.probe = probeDefaults(deps.probe);
    this.#prober = createProber(this.probe, defaultHost(deps.instanceIps, deps.rewriteLocalhost), deps.log);
  }

  /** The last state reported, if any. */
  get lastReport(): HealthReport | undefined {
    return this.#lastReport;
  }

  /** Starts probing in the background (after `initialDelaySeconds`); resolves at once. */
  async start(_signal: AbortSignal): Promise<void> {
    if (this.#closed || this.#loop) return;
    this.#loop = this.#run().catch((err: unknown) => {
      if (!this.#lifetime.signal.aborted) this.deps.log.error(`health check loop stopped: ${errorMessage(err)}`);
    });
  }

  close(): Promise<void> {
    return (this.#closed ??= this.#shutdown());
  }

  async #shutdown(): Promise<void> {
    // Aborting ends the current wait or probe: its socket, child process or channel is released.
    this.#lifetime.abort();
    await this.#loop;
  }

  async #run(): Promise<void> {
    const { clock, log } = this.deps;
    const signal = this.#lifetime.signal;
    const delayMs = this.probe.initialDelaySeconds * 1000;
    const periodMs = this.probe.periodSeconds * 1000;
    // Istio prints its prober's Go type (%T), which is always the aggregate of Envoy's and the app's probe.
    log.info(`starting health check for health.AggregateProber in ${formatDuration(delayMs)}`, { prober: this.#prober.kind });
    if (delayMs > 0) await clock.sleep(delayMs, signal);

    // Rounds keep to a fixed grid, like Go's time.Ticker: a round that overruns its period is
    // followed at once by one more, and the ticks it missed are dropped.
    let due = clock.now();
    while (!signal.aborted) {
      const result = await this.#round(signal);
      if (signal.aborted) return;
      this.#record(result);
      const now = clock.now();
      due += periodMs;
      while (due + periodMs <= now) due += periodMs;
      if (due > now) await clock.sleep(due - now, signal);
    }
  }

  /** One probe, Envoy's readiness first, bounded by `timeoutSeconds` on the injected clock. */
  async #round(lifetime: AbortSignal): Promise<ProbeResult> {
    const timeoutMs = this.probe.timeoutSeconds * 1000;
    const round = new AbortController();
    const stop = (): void => round.abort();
    lifetime.addEventListener('abort', stop, { once: true });
    this.deps.clock.sleep(timeoutMs, round.signal).then(stop, () => undefined);
    try {
      const envoy = this.deps.envoyReady;
      if (envoy) {
        const notReady = await settleFirst<string | undefined>(round.signal, {
          start: (settle) => {
            envoy(round.signal).then(
              () => settle(undefined),
              (err: unknown) => settle(errorMessage(err)),
            );
          },
          onAbort: () => `Envoy readiness check timed out after ${formatDuration(timeoutMs)}`,
          onThrow: (err) => errorMessage(err),
        });
        if (notReady !== undefined) return unhealthy(notReady);
      }
      return await this.#prober.probe({ signal: round.signal, timeoutMs });
    } catch (err) {
      // Probers settle every failure as a result; this only guards against a bug in one.
      return unhealthy(errorMessage(err));
    } finally {
      lifetime.removeEventListener('abort', stop);
      round.abort();
    }
  }

  #record(result: ProbeResult): void {
    const { log } = this.deps;
    const probe = this.probe;
    if (result.healthy) {
      log.debug('probe completed with healthy status');
      this.#successes++;
      this.#failures = 0;
      if (this.#successes >= probe.successThreshold && this.#state !== 'healthy') {
        log.info('success threshold hit, marking as healthy');
        this.#change('healthy', { healthy: true });
      }
      return;
    }
    log.debug(`probe completed with unhealthy status: ${result.message}`);
    this.#failures++;
    this.#successes = 0;
    if (this.#failures >= probe.failureThreshold && this.#state !== 'unhealthy') {
      log.info(`failure threshold hit, marking as unhealthy: ${result.message}`);
      this.#change('unhealthy', { healthy: false, message: result.message });
    }
  }

  #change(state: State, report: HealthReport): void {
    this.#state = state;
    this.#lastReport = report;
    try {
      this.deps.report(report);
    } catch (err) {
      this.deps.log.warn(`failed to report health: ${errorMessage(err)}`);
    }
  }
}

/** Probe host when the probe names none: the first instance IP, or `localhost` (SPEC §7.2). */
export function defaultHost(instanceIps: readonly string[], rewriteLocalhost: boolean): string {
  const first = instanceIps[0];
  return rewriteLocalhost || first === undefined || first === '' ? 'localhost' : first;
}

function createProber(probe: DefaultedProbe, host: string, log: Logger): Prober {
  if (probe.httpGet) {
    const { scheme, path, port, httpHeaders } = probe.httpGet;
    return new HttpProber({ scheme, path, port, host: probe.httpGet.host || host, headers: httpHeaders ?? [], log });
  }
  if (probe.tcpSocket) return new TcpProber(probe.tcpSocket.host || host, probe.tcpSocket.port);
  if (probe.exec) return new ExecProber(probe.exec.command);
  if (probe.grpc) return new GrpcProber(host, probe.grpc.port, probe.grpc.service ?? '');
  // validateReadinessProbe guarantees one handler.
  throw new Error('readinessProbe: no handler');
}
