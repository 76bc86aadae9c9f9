import http from 'node:http';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { AgentError, errorMessage } from '../errors.js';
import type { Component } from '../lifecycle.js';
import { formatDuration, type Logger } from '../log/index.js';
import type { AgentMetrics } from '../metrics/index.js';
import { ipBytes } from '../net/index.js';
import {
  CONFIG_STATS_FILTER,
  SERVER_STATS_FILTER,
  configReadinessError,
  configUpdateStats,
  parseEnvoyStats,
  serverReadinessError,
} from './envoy-stats.js';
import { localGet } from './local-http.js';
import { TERMINATING_MESSAGE, type ReadinessCheck } from './readiness.js';
import { PROMETHEUS_TEXT_CONTENT_TYPE, acceptsGzip, filterAccept, joinExpositions, scrapeTimeoutMs } from './scrape.js';
import { statusMetrics, type ScrapeFailureType, type StatusMetrics } from './status-metrics.js';

const gzipAsync = promisify(gzip);

/** pilot-agent's timeout for each readiness query to Envoy's admin API. */
const ADMIN_TIMEOUT_MS = 3_000;
/** The admin `/stats` answers are a few lines; anything this big is not Envoy. */
const ADMIN_MAX_BYTES = 1 << 20;
/** Bodies below this go out uncompressed even when gzip is accepted: compressing them saves nothing. */
const GZIP_MIN_BYTES = 1024;
/** How long close() lets in-flight requests finish before cutting their connections. */
const CLOSE_GRACE_MS = 2_000;

const TEXT_CONTENT_TYPE = 'text/plain; charset=utf-8';
export const LOCALHOST_ONLY_MESSAGE = 'Only requests from localhost are allowed';

export interface StatusServerDeps {
  /** 15020; 0 picks an ephemeral port (tests). A statusPort of 0 in config means no server: the caller decides. */
  port: number;
  /** Listen address; all interfaces when absent. */
  host?: string;
  log: Logger;
  metrics: AgentMetrics;
  /** Envoy's ports; absent when Envoy is disabled. `host` is the admin address, 127.0.0.1 by default. */
  envoy?: { adminPort: number; prometheusPort: number; host?: string };
  /** Ordered extra readiness conditions, evaluated after Envoy's (SPEC §9.2 checks 3 and 4). */
  readinessChecks: () => readonly ReadinessCheck[];
  /** `/debug/ndsz`: the NameTable proto-JSON, or undefined before the first table. */
  debugNameTable?: () => unknown;
  /** The application's metrics endpoint (from ISTIO_PROMETHEUS_ANNOTATIONS), appended to the merged scrape. */
  appMetricsUrl?: string;
  /** POST /quitquitquit: exit without draining. */
  onQuit: () => void;
  /** POST /drain: drain Envoy's listeners without exiting. */
  onDrain: () => void;
  /** True once the agent has received SIGTERM: readiness then fails. */
  isTerminating: () => boolean;
}

type ProbeState = { ready: true } | { ready: false; error: string };

/**
 * The agent's status server on 15020 (SPEC §9): readiness for Envoy's 15021 listener, the merged
 * Prometheus scrape, /quitquitquit, /drain and /debug/ndsz.
 */
export class StatusServer implements Component {
  readonly name = 'status';

  readonly #deps: StatusServerDeps;
  readonly #metrics: StatusMetrics;
  readonly #server: http.Server;
  /** Keep-alive sockets to Envoy and the app, owned here so close() can drop them. */
  readonly #upstreamAgent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  readonly #stop = new AbortController();
  /** Check 1 passed once: it is not asked again. */
  #configReceived = false;
  /** Check 2 passed once: only termination fails it from then on. */
  #envoyLive = false;
  #startupRecorded = false;
  #lastProbe: ProbeState | undefined;
  /** Concurrent probes share one evaluation rather than each querying Envoy. */
  #evaluating: Promise<string | undefined> | undefined;
  #starting: Promise<void> | undefined;
  #closing = false;
  #closed: Promise<void> | undefined;
  #closeTimer: NodeJS.Timeout | undefined;

  constructor(deps: StatusServerDeps) {
    this.#deps = deps;
    this.#metrics = statusMetrics(deps.metrics.registry);
    this.#server = http.createServer((req, res) => {
      this.#handle(req, res).catch((err: unknown) => {
        deps.log.error('status request failed', { path: req.url, error: errorMessage(err) });
        if (!res.headersSent) sendError(res, 500, 'Internal Server Error');
        else res.destroy();
      });
    });
  }

  /** The bound port once listening (useful with port 0), else the configured one. */
  get port(): number {
    const address = this.#server.address();
    return address !== null && typeof address === 'object' ? address.port : this.#deps.port;
  }

  start(signal: AbortSignal): Promise<void> {
    if (this.#closing) return Promise.reject(new Error('status server is closed'));
    return (this.#starting ??= this.#listen(signal));
  }

  close(): Promise<void> {
    return (this.#closed ??= this.#shutdown());
  }

  async #listen(signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    const { port, host, log } = this.#deps;
    try {
      await new Promise<void>((resolve, reject) => {
        this.#server.once('error', reject);
        this.#server.listen({ port, host }, () => {
          this.#server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      throw new AgentError('SOCKET_LISTEN_FAILED', `opening status port ${port}: ${errorMessage(err)}`, { cause: err });
    }
    this.#server.on('error', (err) => log.error('status server error', { error: err.message }));
    log.info(`Opening status port ${this.port}`);
  }

  async #shutdown(): Promise<void> {
    this.#closing = true;
    // Upstream scrapes and admin queries in flight end now, so their requests answer at once.
    this.#stop.abort();
    await this.#starting?.catch(() => undefined);
    if (this.#server.listening) {
      const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
      this.#server.closeIdleConnections();
      this.#closeTimer = setTimeout(() => this.#server.closeAllConnections(), CLOSE_GRACE_MS);
      this.#closeTimer.unref();
      await closed;
      clearTimeout(this.#closeTimer);
    }
    this.#upstreamAgent.destroy();
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const rawUrl = req.url ?? '/';
    const query = rawUrl.indexOf('?');
    const path = query >= 0 ? rawUrl.slice(0, query) : rawUrl;
    this.#deps.log.debug('status request', { method: req.method, path });
    switch (path) {
      case '/healthz/ready':
        return this.#handleReady(req, res);
      case '/stats/prometheus':
      case '/metrics':
        return this.#handleMetrics(req, res, query >= 0 ? rawUrl.slice(query) : '');
      case '/quitquitquit':
        return this.#handleLocalPost(req, res, '/quitquitquit', () => {
          this.#deps.log.info('handling /quitquitquit, notifying pilot-agent to exit');
          this.#deps.onQuit();
        });
      case '/drain':
        return this.#handleLocalPost(req, res, '/drain', () => {
          this.#deps.log.info('handling /drain, starting drain');
          this.#deps.onDrain();
        });
      case '/debug/ndsz':
        return this.#handleNdsz(req, res);
    }
    // No Kubernetes probes are rewritten onto a VM's agent, so every app probe is unconfigured.
    if (path.startsWith('/app-health/') || path.startsWith('/app-lifecycle/')) {
      sendError(res, 400, `app prober config does not exists for ${path}`);
      return;
    }
    sendError(res, 404, '404 page not found');
  }

  // ---- /healthz/ready ----

  async #handleReady(_req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const error = await (this.#evaluating ??= this.#evaluateReadiness().finally(() => (this.#evaluating = undefined)));
    this.#reportProbe(error);
    if (error === undefined) {
      res.writeHead(200).end();
    } else {
      res.writeHead(503, { 'Content-Type': TEXT_CONTENT_TYPE }).end(error);
    }
  }

  async #evaluateReadiness(): Promise<string | undefined> {
    try {
      await this.#checkReadiness();
      return undefined;
    } catch (err) {
      return errorMessage(err);
    }
  }

  async #checkReadiness(): Promise<void> {
    const { envoy, isTerminating, readinessChecks } = this.#deps;
    if (envoy) {
      if (!this.#configReceived) {
        const error = configReadinessError(configUpdateStats(await this.#adminStats(envoy, CONFIG_STATS_FILTER)));
        if (error !== undefined) throw new Error(error);
        this.#configReceived = true;
      }
      if (isTerminating()) throw new Error(TERMINATING_MESSAGE);
      if (!this.#envoyLive) {
        const error = serverReadinessError(await this.#adminStats(envoy, SERVER_STATS_FILTER));
        if (error !== undefined) throw new Error(error);
        this.#envoyLive = true;
        this.#recordStartup();
      }
    } else if (isTerminating()) {
      throw new Error(TERMINATING_MESSAGE);
    }
    for (const check of readinessChecks()) await check.check();
    if (!envoy) this.#recordStartup();
  }

  async #adminStats(envoy: NonNullable<StatusServerDeps['envoy']>, filter: string): Promise<Map<string, number>> {
    const url = new URL(`http://${hostPort(envoy.host ?? '127.0.0.1', envoy.adminPort)}/stats?usedonly&filter=${encodeURIComponent(filter)}`);
    try {
      const res = await localGet(url, {
        agent: this.#upstreamAgent,
        timeoutMs: ADMIN_TIMEOUT_MS,
        signal: this.#stop.signal,
        maxBytes: ADMIN_MAX_BYTES,
      });
      return parseEnvoyStats(res.body.toString('utf8'));
    } catch (err) {
      throw new Error(`failed retrieving Envoy stats: ${errorMessage(err)}`, { cause: err });
    }
  }

  /** The first time the proxy is ready: startup duration from process start, logged once. */
  #recordStartup(): void {
    if (this.#startupRecorded) return;
    this.#startupRecorded = true;
    // performance.now() counts from the process's time origin, which is what pilot-agent measures from.
    const ms = performance.now();
    this.#metrics.startupDuration.set(ms / 1000);
    this.#deps.log.info(`Readiness succeeded in ${formatDuration(ms)}`);
  }

  /** Logs only when the verdict (or the reason) changes, so a probe every second does not flood. */
  #reportProbe(error: string | undefined): void {
    const last = this.#lastProbe;
    if (error === undefined) {
      if (!last?.ready) this.#deps.log.info('Envoy proxy is ready');
      this.#lastProbe = { ready: true };
    } else {
      if (last === undefined || last.ready || last.error !== error) this.#deps.log.warn(`Envoy proxy is NOT ready: ${error}`);
      this.#lastProbe = { ready: false, error };
    }
  }

  // ---- /stats/prometheus ----

  async #handleMetrics(req: http.IncomingMessage, res: http.ServerResponse, search: string): Promise<void> {
    this.#metrics.scrapes.inc();
    const timeoutHeader = headerValue(req, 'x-prometheus-scrape-timeout-seconds');
    const timeoutMs = scrapeTimeoutMs(timeoutHeader);
    const headers: http.OutgoingHttpHeaders = {};
    const userAgent = headerValue(req, 'user-agent');
    if (userAgent !== undefined) headers['User-Agent'] = userAgent;
    const accept = filterAccept(headerValue(req, 'accept'));
    if (accept !== undefined) headers['Accept'] = accept;
    if (timeoutHeader !== undefined) headers['X-Prometheus-Scrape-Timeout-Seconds'] = timeoutHeader;

    const { envoy, appMetricsUrl } = this.#deps;
    const [envoyPart, appPart] = await Promise.all([
      envoy
        ? this.#scrape('envoy', `http://${hostPort(envoy.host ?? '127.0.0.1', envoy.prometheusPort)}/stats/prometheus${search}`, headers, timeoutMs)
        : undefined,
      appMetricsUrl ? this.#scrape('application', appMetricsUrl, headers, timeoutMs) : undefined,
    ]);
    // The agent's own part is gathered last so this scrape's failures already show in its counters.
    let agentPart: Buffer | undefined;
    try {
      agentPart = Buffer.from(await this.#deps.metrics.registry.metrics(), 'utf8');
    } catch (err) {
      this.#scrapeFailed('agent', err);
    }
    const parts = [agentPart, envoyPart, appPart].filter((p): p is Buffer => p !== undefined);
    await send(req, res, 200, joinExpositions(parts), PROMETHEUS_TEXT_CONTENT_TYPE);
  }

  async #scrape(type: ScrapeFailureType, url: string, headers: http.OutgoingHttpHeaders, timeoutMs: number): Promise<Buffer | undefined> {
    try {
      const res = await localGet(new URL(url), { agent: this.#upstreamAgent, headers, timeoutMs, signal: this.#stop.signal });
      return res.body;
    } catch (err) {
      this.#scrapeFailed(type, err);
      return undefined;
    }
  }

  #scrapeFailed(type: ScrapeFailureType, err: unknown): void {
    this.#metrics.scrapeFailures.inc({ type });
    this.#deps.log.warn(`failed scraping ${type} metrics: ${errorMessage(err)}`);
  }

  // ---- /quitquitquit, /drain, /debug/ndsz ----

  #handleLocalPost(req: http.IncomingMessage, res: http.ServerResponse, path: string, action: () => void): void {
    if (!isLoopbackAddress(req.socket.remoteAddress)) {
      sendError(res, 403, LOCALHOST_ONLY_MESSAGE);
      return;
    }
    if (req.method !== 'POST') {
      sendError(res, 405, 'Method Not Allowed');
      return;
    }
    res.writeHead(200, { 'Content-Type': TEXT_CONTENT_TYPE }).end('OK');
    try {
      action();
    } catch (err) {
      this.#deps.log.error(`handling ${path} failed: ${errorMessage(err)}`);
    }
  }

  async #handleNdsz(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (!isLoopbackAddress(req.socket.remoteAddress)) {
      sendError(res, 403, LOCALHOST_ONLY_MESSAGE);
      return;
    }
    const table = this.#deps.debugNameTable?.();
    if (table === undefined || table === null) {
      res.writeHead(404, { 'Content-Type': 'application/json' }).end('{}');
      return;
    }
    await send(req, res, 200, Buffer.from(JSON.stringify(table, null, 2), 'utf8'), 'application/json');
  }
}

/**
 * Whether a request's source is loopback, as Go's net.IP.IsLoopback decides: 127.0.0.0/8 (also
 * IPv4-mapped, `::ffff:127.0.0.1`) or `::1`.
 */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (address === undefined) return false;
  const bytes = ipBytes(address);
  if (!bytes) return false;
  if (bytes.length === 4) return bytes[0] === 127;
  const mapped = bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  if (mapped) return bytes[12] === 127;
  return bytes.subarray(0, 15).every((b) => b === 0) && bytes[15] === 1;
}

function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function headerValue(req: http.IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

/** Go's http.Error: text/plain, nosniff, the message and a newline. */
function sendError(res: http.ServerResponse, status: number, message: string): void {
  res
    .writeHead(status, { 'Content-Type': TEXT_CONTENT_TYPE, 'X-Content-Type-Options': 'nosniff' })
    .end(`${message}\n`);
}

/** Sends a body, gzipped when the client accepts it and it is big enough to be worth it. */
async function send(req: http.IncomingMessage, res: http.ServerResponse, status: number, body: Buffer, contentType: string): Promise<void> {
  const headers: http.OutgoingHttpHeaders = { 'Content-Type': contentType, Vary: 'Accept-Encoding' };
  let payload = body;
  if (body.length >= GZIP_MIN_BYTES && acceptsGzip(headerValue(req, 'accept-encoding'))) {
    payload = await gzipAsync(body);
    headers['Content-Encoding'] = 'gzip';
  }
  headers['Content-Length'] = payload.length;
  res.writeHead(status, headers).end(payload);
}
