import { lookup } from 'node:dns/promises';
import http, { type ClientRequest, type OutgoingHttpHeaders } from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log/index.js';
import { describeDialError, joinHostPort, systemErrorText } from './go-errors.js';
import { HEALTHY, settleFirst, unhealthy, type ProbeContext, type ProbeResult, type Prober } from './prober.js';

/** Sent unless the probe sets its own, so applications can tell probes apart (Kubernetes sends kube-probe). */
export const PROBE_USER_AGENT = 'istio-probe/1.0';

/**
 * Source addresses of Istio's probes (`UpstreamLocalAddressIPv4/6`): the inbound capture rules let
 * traffic from them through to the application, so a probe reaches it directly, not via Envoy.
 */
export const PROBE_SOURCE_IPV4 = '127.0.0.6';
export const PROBE_SOURCE_IPV6 = '::6';

export interface HttpProberOptions {
  scheme: string;
  /** The probe's host, or the default (first instance IP, else `localhost`). */
  host: string;
  port: number;
  path: string;
  headers: readonly { name: string; value: string }[];
  log: Logger;
}

interface Target {
  address: string;
  family: 4 | 6;
}

type Attempt = { status: number } | { error: unknown };

/**
 * HTTP(S) GET; healthy iff the status is 200–399. One connection per probe (no keep-alive), TLS
 * without certificate verification (as Kubernetes and Istio do for probes). The connection comes
 * from 127.0.0.6 (`::6` for an IPv6 target); where that address cannot be bound (`::6` usually is
 * not assigned to `lo`), the prober says so once and uses the default source from then on.
 */
export class HttpProber implements Prober {
  readonly kind = 'HTTPProber';
  readonly #url: string;
  /** Path and query as sent on the request line. */
  readonly #requestPath: string;
  readonly #hostPort: string;
  readonly #headers: OutgoingHttpHeaders;
  /** Families whose probe source address could not be bound on this machine. */
  readonly #unbindable = new Set<4 | 6>();

  constructor(private readonly options: HttpProberOptions) {
    this.#hostPort = joinHostPort(options.host, options.port);
    // Go's URL.String() puts the `/` between host and a relative path.
    const path = options.path.startsWith('/') ? options.path : `/${options.path}`;
    this.#url = `${options.scheme}://${this.#hostPort}${path}`;
    this.#requestPath = requestPath(this.#url, path);
    this.#headers = buildHeaders(options.headers, this.#hostPort);
  }

  async probe(context: ProbeContext): Promise<ProbeResult> {
    const target = await this.#resolve(context.signal);
    if ('error' in target) return this.#failure(target.error);
    if (context.signal.aborted) return this.#timeout();

    let source = this.#unbindable.has(target.family) ? undefined : target.family === 4 ? PROBE_SOURCE_IPV4 : PROBE_SOURCE_IPV6;
    let attempt = await this.#get(target, source, context.signal);
    if (source !== undefined && 'error' in attempt && isBindError(attempt.error)) {
      this.#unbindable.add(target.family);
      this.options.log.warn(
        `cannot bind probe source address ${source} (${systemErrorText(attempt.error)}); probing from the default source address, through inbound capture if it is installed`,
      );
      source = undefined;
      attempt = await this.#get(target, source, context.signal);
    }
    if ('error' in attempt) return attempt.error === TIMEOUT ? this.#timeout() : this.#failure(attempt.error, source);
    if (attempt.status >= 200 && attempt.status < 400) return HEALTHY;
    return unhealthy(`status code was not from [200,400), bad code ${attempt.status}`);
  }

  /** A host name resolves here so the source address can match its family; IPv4 is preferred, as 127.0.0.6 is what Istio binds. */
  async #resolve(signal: AbortSignal): Promise<Target | { error: unknown }> {
    const host = this.options.host;
    const family = isIP(host);
    if (family === 4 || family === 6) return { address: host, family };
    try {
      const lookedUp = lookup(host, { all: true });
      const addresses = await Promise.race([lookedUp, abortPromise(signal)]);
      if (addresses === TIMEOUT) return { error: TIMEOUT };
      const chosen = addresses.find((a) => a.family === 4) ?? addresses[0];
      if (!chosen) return { error: Object.assign(new Error(`lookup ${host}: no such host`), { code: 'ENOTFOUND', hostname: host }) };
      return { address: chosen.address, family: chosen.family === 6 ? 6 : 4 };
    } catch (err) {
      return { error: err };
    }
  }

  #get(target: Target, source: string | undefined, signal: AbortSignal): Promise<Attempt> {
    let request: ClientRequest | undefined;
    const isHttps = this.options.scheme === 'https';
    return settleFirst<Attempt>(signal, {
      start: (settle) => {
        const options: https.RequestOptions = {
          method: 'GET',
          host: target.address,
          port: this.options.port,
          path: this.#requestPath,
          headers: this.#headers,
          // A fresh connection per probe; Node then sends `Connection: close`, as Go does without keep-alives.
          agent: false,
          ...(source === undefined ? {} : { localAddress: source }),
        };
        if (isHttps) {
          options.rejectUnauthorized = false;
          if (isIP(this.options.host) === 0) options.servername = this.options.host;
        }
        request = (isHttps ? https : http).request(options, (response) => {
          settle({ status: response.statusCode ?? 0 });
          response.destroy();
        });
        request.once('error', (error) => settle({ error }));
        request.end();
      },
      onAbort: () => ({ error: TIMEOUT }),
      onThrow: (error) => ({ error }),
      cleanup: () => {
        request?.on('error', () => undefined);
        request?.destroy();
      },
    });
  }

  #timeout(): ProbeResult {
    return unhealthy(`Get ${JSON.stringify(this.#url)}: context deadline exceeded (Client.Timeout exceeded while awaiting headers)`);
  }

  #failure(error: unknown, source?: string): ProbeResult {
    if (error === TIMEOUT) return this.#timeout();
    const e = error as { syscall?: unknown; code?: unknown };
    const dial = e.syscall === 'connect' || e.syscall === 'bind' || e.syscall === 'getaddrinfo' || e.code === 'ENOTFOUND';
    const why = dial ? describeDialError(error, this.#hostPort, source) : goHttpError(error);
    return unhealthy(`Get ${JSON.stringify(this.#url)}: ${why}`);
  }
}

const TIMEOUT = Symbol('timeout');

/** The request-line path: the URL's, percent-encoded where needed, or the configured one as is if it does not parse (as Istio passes it along). */
function requestPath(url: string, fallback: string): string {
  try {
    const parsed = new URL(url);
    return parsed.pathname + parsed.search;
  } catch {
    return fallback;
  }
}

function abortPromise(signal: AbortSignal): Promise<typeof TIMEOUT> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve(TIMEOUT);
    else signal.addEventListener('abort', () => resolve(TIMEOUT), { once: true });
  });
}

function isBindError(error: unknown): boolean {
  return (error as { syscall?: unknown }).syscall === 'bind';
}

/** Errors after the connection opened, in Go's words where they have an obvious counterpart. */
function goHttpError(error: unknown): string {
  const code = (error as { code?: unknown }).code;
  if (code === 'ECONNRESET') return errorMessage(error) === 'socket hang up' ? 'EOF' : 'read: connection reset by peer';
  return errorMessage(error);
}

/**
 * The configured headers (repeated names keep every value), then `Host` as Go sets it from the URL
 * (host:port) unless configured, and the default User-Agent unless configured. Names compare
 * case-insensitively.
 */
function buildHeaders(configured: readonly { name: string; value: string }[], hostPort: string): OutgoingHttpHeaders {
  const headers: Record<string, string[]> = {};
  const spelling = new Map<string, string>();
  for (const { name, value } of configured) {
    const key = name.toLowerCase();
    const first = spelling.get(key) ?? name;
    spelling.set(key, first);
    (headers[first] ??= []).push(value);
  }
  const out: OutgoingHttpHeaders = {};
  for (const [name, values] of Object.entries(headers)) out[name] = values.length === 1 ? values[0] : values;
  // Go's req.Host takes the first Host value; Node would send every one.
  const host = spelling.get('host');
  if (host !== undefined) out[host] = headers[host]?.[0];
  else out['Host'] = hostPort;
  if (!spelling.has('user-agent')) out['User-Agent'] = PROBE_USER_AGENT;
  return out;
}
