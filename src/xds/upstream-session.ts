import http2 from 'node:http2';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { status } from '@grpc/grpc-js';
import type { AgentMetrics } from '../metrics/index.js';
import { describeGrpcError, FLOW_CONTROL_WINDOW, type IstiodDialer } from '../net/index.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log/index.js';
import type { Any, Node } from '../proto/index.js';
import { FrameReader, frameHeader } from './grpc-frame.js';
import type { OutgoingRequest, StreamProtocol } from './protocol.js';
import { HEALTH_INFO_TYPE_URL, isForwardableType, LISTENER_TYPE_URL, PROXY_CONFIG_TYPE_URL } from './type-urls.js';
import { peekResponseType } from './wire.js';

/** A type the agent consumes itself (NameTable, ProxyConfig): never forwarded to Envoy. */
export interface AgentTypeHandler {
  /** Called with the first resource of each non-empty response; throwing NACKs the response. */
  onResource(resource: Any): void;
}

export interface HandlerEntry {
  typeUrl: string;
  handler: AgentTypeHandler;
  /** Ask istiod for this type on each stream (after Envoy's first LDS request). */
  subscribe: boolean;
}

export type HealthReport = { healthy: true } | { healthy: false; message: string };

/** A gRPC status, as both ends of the proxy see it. */
export interface StreamStatus {
  code: status;
  details: string;
}

export interface SessionContext {
  protocol: StreamProtocol;
  dialer: IstiodDialer;
  log: Logger;
  metrics: AgentMetrics;
  handlers: ReadonlyMap<string, HandlerEntry>;
  /** The latest health report, re-sent on every stream once it may carry agent requests. */
  health: () => HealthReport | undefined;
  keepalive: { intervalMs: number; timeoutMs: number };
}

/** Where Envoy-bound bytes go; write() returns false when the downstream buffer is full. */
export interface Downstream {
  write(bytes: Buffer): boolean;
  onDrain(resume: () => void): void;
}

export interface SessionOptions {
  id: number;
  downstream?: Downstream;
  /** The agent's own stream: send the node and subscriptions at once, and ACK everything. */
  own?: { node: Node };
  /** Whether this stream carries the agent's subscriptions and health reports at all. */
  carriesAgentRequests: boolean;
}

export type SessionEnd = { kind: 'ok' } | { kind: 'error'; status: StreamStatus } | { kind: 'closed' };

// Stream ends that are part of normal life (SPEC §5.2 step 5): logged at debug, counted as "cancelled".
const EXPECTED_UNAVAILABLE = /transport is closing|client disconnected|error reading from server: EOF|connection closed|GOAWAY|NO_ERROR/i;

export function isExpectedTermination(end: StreamStatus | undefined): boolean {
  if (!end) return true;
  if (end.code === status.CANCELLED || end.code === status.DEADLINE_EXCEEDED || end.code === status.OK) return true;
  return end.code === status.UNAVAILABLE && EXPECTED_UNAVAILABLE.test(end.details);
}

// HTTP/2 stream and connection receive windows for istiod's pushes: FLOW_CONTROL_WINDOW (16 MB).
// pilot-agent fixes both at 1 MB; measured side by side, 1 MB made the agent's CPU per 20 MB push rise
// from ~30 ms to 33–56 ms: istiod stops at every window, and the agent reads, and writes to Envoy, in
// smaller batches.
const WINDOW_BYTES = FLOW_CONTROL_WINDOW;
const MAX_WHOLE_RESPONSE_PEEK = 64 * 1024;

/**
 * One upstream ADS stream to istiod over its own HTTP/2 connection (pilot-agent never reuses one).
 * Written on node:http2 rather than a gRPC library so a response can be forwarded while it is still
 * arriving: the first resource's type says whether it is Envoy's (forwarded, chunk by chunk, bytes
 * untouched) or the agent's (assembled, decoded, handed to its handler, ACKed or NACKed here).
 */
export class UpstreamSession {
  readonly id: number;
  readonly ended: Promise<SessionEnd>;
  #resolveEnded!: (end: SessionEnd) => void;
  readonly #ctx: SessionContext;
  readonly #options: SessionOptions;
  #session?: http2.ClientHttp2Session;
  #stream?: http2.ClientHttp2Stream;
  #pending: Buffer[] = [];
  #isEnded = false;
  #isConnected = false;
  #mayCarryAgentRequests = false;
  #sawListenerRequest = false;
  #responses = 0;
  #pingTimer?: NodeJS.Timeout;
  readonly #reader: FrameReader;

  constructor(ctx: SessionContext, options: SessionOptions) {
    this.#ctx = ctx;
    this.#options = options;
    this.id = options.id;
    this.ended = new Promise((resolve) => (this.#resolveEnded = resolve));
    this.#reader = new FrameReader(
      {
        begin: (length, compressed) => (compressed || length <= MAX_WHOLE_RESPONSE_PEEK ? 'whole' : 'stream'),
        peek: (prefix) => {
          const peek = peekResponseType(prefix, ctx.protocol.kind);
          if (!peek.decided) return 'more';
          return this.#isPassThrough(peek.typeUrl) ? 'stream' : 'whole';
        },
        part: (bytes, header) => this.#forwardPart(bytes, header),
        whole: (message) => this.#onResponse(message),
      },
      MAX_WHOLE_RESPONSE_PEEK,
    );
  }

  get responseCount(): number {
    return this.#responses;
  }

  get isConnected(): boolean {
    return this.#isConnected;
  }

  /** Dials istiod and opens the stream; requests sent before it is open are queued. */
  async open(): Promise<void> {
    const { dialer, protocol, log, metrics } = this.#ctx;
    let target: Awaited<ReturnType<IstiodDialer['connectionOptions']>>;
    let headers: Record<string, string>;
    try {
      target = await dialer.connectionOptions();
      headers = await dialer.headers();
    } catch (err) {
      log.error(`failed to connect to upstream ${dialer.address}: ${errorMessage(err)}`);
      metrics.istiodConnectionFailures.inc();
      this.#finish({ kind: 'error', status: { code: status.UNAVAILABLE, details: errorMessage(err) } });
      return;
    }
    if (this.#isEnded) return;
    const tls = target.tls;
    const session = http2.connect(`${tls ? 'https' : 'http'}://${target.authority}`, {
      createConnection: () => (tls ? tlsConnect(tls) : netConnect({ host: target.host, port: target.port })),
      settings: { initialWindowSize: WINDOW_BYTES },
      maxSessionMemory: Number.MAX_SAFE_INTEGER,
    });
    this.#session = session;
    session.on('connect', () => {
      session.setLocalWindowSize(WINDOW_BYTES);
      this.#isConnected = true;
      log.info(`connected to ${protocol.label}: ${dialer.address}`, { id: this.id });
      this.#startKeepalive(session);
    });
    session.on('error', (err: Error) => this.#onTransportError(err));
    session.on('goaway', () => undefined);
    const stream = session.request({
      ':method': 'POST',
      ':path': protocol.method.path,
      ':authority': target.authority,
      'content-type': 'application/grpc',
      te: 'trailers',
      'user-agent': 'istio-vm-agent',
      ...headers,
    });
    this.#stream = stream;
    stream.on('response', (responseHeaders) => {
      // A trailers-only response: the call failed before any message (e.g. Unauthenticated).
      if (responseHeaders['grpc-status'] !== undefined) this.#onStatus(responseHeaders);
    });
    stream.on('data', (chunk: Buffer) => {
      try {
        this.#reader.push(chunk);
      } catch (err) {
        this.#abort(`malformed response from upstream: ${errorMessage(err)}`);
      }
    });
    stream.on('trailers', (trailers: http2.IncomingHttpHeaders) => this.#onStatus(trailers));
    stream.on('error', (err: Error) => this.#onTransportError(err));
    stream.on('close', () => {
      if (!this.#isEnded) this.#onEnd({ code: status.UNAVAILABLE, details: 'connection closed before a status was received' });
    });
    if (this.#options.own) {
      this.#mayCarryAgentRequests = true;
      this.#sendAgentRequests(this.#options.own.node);
    }
    for (const frame of this.#pending.splice(0)) stream.write(frame);
  }

  /** Forwards one of Envoy's requests, unchanged. */
  forwardRequest(message: Buffer): void {
    const { protocol, metrics } = this.#ctx;
    const summary = protocol.summarizeRequest(message);
    metrics.xdsProxyRequests.inc();
    this.#write(message);
    // Istio holds its own requests (NDS, PCDS, health) until Envoy's first LDS request has gone up.
    if (!this.#sawListenerRequest && summary.typeUrl === LISTENER_TYPE_URL) {
      this.#sawListenerRequest = true;
      if (this.#options.carriesAgentRequests) {
        this.#mayCarryAgentRequests = true;
        this.#sendAgentRequests(undefined);
      }
    }
  }

  /** Envoy closed its side: close ours, and let istiod finish the stream. */
  endRequests(): void {
    this.#stream?.end();
  }

  /** Sends a health report now if this stream may carry it (else it waits in the proxy's cache). */
  sendHealth(report: HealthReport): void {
    if (!this.#mayCarryAgentRequests || !this.#options.carriesAgentRequests) return;
    this.#write(this.#ctx.protocol.encodeRequest(healthRequest(report)));
  }

  /** Ends the stream from our side (downstream went away, or the agent is closing). */
  close(): void {
    if (this.#isEnded) return;
    this.#finish({ kind: 'closed' });
  }

  #isPassThrough(typeUrl: string): boolean {
    return !this.#options.own && !this.#ctx.handlers.has(typeUrl) && isForwardableType(typeUrl);
  }

  #sendAgentRequests(node: Node | undefined): void {
    const { handlers, protocol, health } = this.#ctx;
    let first = node;
    for (const entry of handlers.values()) {
      if (!entry.subscribe) continue;
      this.#write(protocol.encodeRequest({ typeUrl: entry.typeUrl, node: first }));
      first = undefined;
    }
    if (first) {
      // Nothing to subscribe to: the node still has to reach istiod (it registers the workload), so
      // the first message asks for the mesh ProxyConfig, which istiod serves to every proxy.
      this.#write(protocol.encodeRequest({ typeUrl: PROXY_CONFIG_TYPE_URL, node: first }));
    }
    const report = health();
    if (report) this.#write(protocol.encodeRequest(healthRequest(report)));
  }

  #write(message: Buffer): void {
    if (this.#isEnded) return;
    const frame = Buffer.concat([frameHeader(message.length), message]);
    if (!this.#stream) this.#pending.push(frame);
    else this.#stream.write(frame);
  }

  /** Part of a large Envoy-bound response, passed on as it arrives. */
  #forwardPart(bytes: Buffer, header: Buffer | undefined): void {
    const downstream = this.#options.downstream;
    if (!downstream) return;
    if (header) {
      this.#responses++;
      this.#ctx.metrics.xdsProxyResponses.inc();
      downstream.write(header);
    }
    if (!downstream.write(bytes)) this.#pauseUntilDrained(downstream);
  }

  #pauseUntilDrained(downstream: Downstream): void {
    const stream = this.#stream;
    if (!stream || stream.isPaused()) return;
    stream.pause();
    downstream.onDrain(() => stream.resume());
  }

  /** A whole response: the agent's own types are handled here, Envoy's are forwarded. */
  #onResponse(message: Buffer): void {
    const { protocol, handlers, log, metrics } = this.#ctx;
    this.#responses++;
    let typeUrl: string;
    try {
      typeUrl = protocol.responseTypeUrl(message);
    } catch (err) {
      this.#abort(`malformed response from upstream: ${errorMessage(err)}`);
      return;
    }
    const entry = handlers.get(typeUrl);
    if (entry || this.#options.own) {
      this.#handleAgentResponse(message, entry);
      return;
    }
    if (!isForwardableType(typeUrl)) {
      log.error(`Skipping forwarding type url ${typeUrl} to Envoy as is not a valid Envoy type`);
      return;
    }
    metrics.xdsProxyResponses.inc();
    const downstream = this.#options.downstream;
    if (!downstream) return;
    downstream.write(frameHeader(message.length));
    if (!downstream.write(message)) this.#pauseUntilDrained(downstream);
  }

  #handleAgentResponse(message: Buffer, entry: HandlerEntry | undefined): void {
    const { protocol, log } = this.#ctx;
    let response;
    try {
      response = protocol.decodeResponse(message);
    } catch (err) {
      this.#abort(`malformed response from upstream: ${errorMessage(err)}`);
      return;
    }
    const ack: OutgoingRequest = { typeUrl: response.typeUrl, nonce: response.nonce, version: response.version };
    const first = response.resources[0];
    if (entry && first) {
      try {
        entry.handler.onResource(first);
      } catch (err) {
        log.warn(`rejecting ${response.typeUrl} from upstream: ${errorMessage(err)}`);
        ack.errorDetail = { code: status.INTERNAL, message: errorMessage(err) };
      }
    }
    // Empty responses of agent-handled types are ignored, as Istio does; the agent's own stream ACKs all.
    if (first || this.#options.own) this.#write(protocol.encodeRequest(ack));
  }

  #startKeepalive(session: http2.ClientHttp2Session): void {
    const { intervalMs, timeoutMs } = this.#ctx.keepalive;
    if (intervalMs <= 0) return;
    this.#pingTimer = setInterval(() => {
      const timeout = setTimeout(() => this.#onEnd({ code: status.UNAVAILABLE, details: 'keepalive ping timed out' }), timeoutMs);
      timeout.unref();
      session.ping((err) => {
        clearTimeout(timeout);
        if (err) this.#onEnd({ code: status.UNAVAILABLE, details: `keepalive ping failed: ${err.message}` });
      });
    }, intervalMs);
    this.#pingTimer.unref();
  }

  #onStatus(fields: http2.IncomingHttpHeaders): void {
    const code = Number(fields['grpc-status'] ?? status.UNKNOWN) as status;
    const raw = fields['grpc-message'];
    const details = typeof raw === 'string' ? decodeGrpcMessage(raw) : '';
    this.#onEnd(code === status.OK ? undefined : { code, details });
  }

  #onTransportError(err: Error): void {
    this.#onEnd({ code: status.UNAVAILABLE, details: err.message });
  }

  #onEnd(end: StreamStatus | undefined): void {
    if (this.#isEnded) return;
    const { log, metrics, dialer } = this.#ctx;
    if (!this.#isConnected && end && end.code === status.UNAVAILABLE) {
      log.error(`failed to connect to upstream ${dialer.address}: ${describeStatus(end)}`);
      metrics.istiodConnectionFailures.inc();
    } else if (isExpectedTermination(end)) {
      log.debug(`upstream terminated with: ${end ? describeStatus(end) : 'EOF'}`, { id: this.id });
      metrics.istiodConnectionTerminations.inc({ type: 'cancelled' });
    } else {
      log.warn(`upstream terminated with unexpected error ${describeStatus(end)}`, { id: this.id });
      metrics.istiodConnectionTerminations.inc({ type: 'error' });
    }
    this.#finish(end ? { kind: 'error', status: end } : { kind: 'ok' });
  }

  #abort(message: string): void {
    if (this.#isEnded) return;
    this.#ctx.log.warn(`upstream terminated with unexpected error ${message}`, { id: this.id });
    this.#ctx.metrics.istiodConnectionTerminations.inc({ type: 'error' });
    this.#finish({ kind: 'error', status: { code: status.INTERNAL, details: message } });
  }

  #finish(end: SessionEnd): void {
    if (this.#isEnded) return;
    this.#isEnded = true;
    this.#pending = [];
    clearInterval(this.#pingTimer);
    if (this.#stream && !this.#stream.closed) this.#stream.close(http2.constants.NGHTTP2_CANCEL);
    this.#session?.close();
    // A session that will not close politely (peer gone) is torn down shortly after.
    const session = this.#session;
    if (session) setTimeout(() => session.destroy(), 1000).unref();
    this.#resolveEnded(end);
  }
}

function describeStatus(end: StreamStatus | undefined): string {
  if (!end) return 'EOF';
  return describeGrpcError(Object.assign(new Error(end.details), end));
}

/** grpc-message is percent-encoded (gRPC over HTTP/2). */
function decodeGrpcMessage(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

function healthRequest(report: HealthReport): OutgoingRequest {
  // istiod reads an error_detail as "unhealthy"; code 13 (INTERNAL) as pilot-agent sends it.
  return report.healthy
    ? { typeUrl: HEALTH_INFO_TYPE_URL }
    : { typeUrl: HEALTH_INFO_TYPE_URL, errorDetail: { code: status.INTERNAL, message: report.message } };
}

