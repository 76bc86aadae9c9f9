import { chmod, rm } from 'node:fs/promises';
import http2 from 'node:http2';
import { status } from '@grpc/grpc-js';
import type { Clock } from '../clock.js';
import { errorMessage } from '../errors.js';
import type { Component } from '../lifecycle.js';
import { formatDuration, type Logger } from '../log/index.js';
import type { AgentMetrics } from '../metrics/index.js';
import { describeGrpcError, prepareSocketPath, type IstiodDialer } from '../net/index.js';
import type { Node, ProtoSchema } from '../proto/index.js';
import { FrameError, FrameReader } from './grpc-frame.js';
import { DELTA_ADS_PATH, deltaProtocol, SOTW_ADS_PATH, sotwProtocol, type StreamProtocol } from './protocol.js';
import {
  isExpectedTermination,
  UpstreamSession,
  type AgentTypeHandler,
  type HandlerEntry,
  type HealthReport,
  type SessionContext,
  type StreamStatus,
} from './upstream-session.js';

export interface XdsProxyDeps {
  /** `etc/istio/proxy/XDS` */
  socketPath: string;
  /** discoveryAddress, for log lines. */
  address: string;
  clusterId: string;
  /** Protocol of the agent's own stream (ISTIO_DELTA_XDS). */
  delta: boolean;
  dialer: IstiodDialer;
  schema: ProtoSchema;
  clock: Clock;
  /** [xdsproxy] */
  log: Logger;
  metrics: AgentMetrics;
  keepalive?: { intervalMs: number; timeoutMs: number };
  /**
   * Envoy disabled: the agent keeps an upstream stream of its own, with this node, so DNS and health
   * work without Envoy (our extension; pilot-agent has no such stream).
   */
  ownNode?: Node;
  random?: () => number;
}

interface DownstreamConnection {
  session: UpstreamSession;
  /** Ends Envoy's stream with a gRPC status (idempotent). */
  end(end: StreamStatus): void;
}

const OWN_STREAM_BACKOFF_START_MS = 1_000;
/** How much Envoy-bound data may wait in the agent before istiod's stream is paused. */
const DOWNSTREAM_BUFFER_BYTES = 8 * 1024 * 1024;
const OWN_STREAM_BACKOFF_MAX_MS = 30_000;

/**
 * The xDS proxy on Envoy's side of the agent (SPEC §5): AggregatedDiscoveryService on a unix socket.
 * Each downstream stream gets a fresh upstream stream to istiod; one downstream stream is active at a
 * time, a new one replacing the old, as in pilot-agent. The gRPC framing is handled here on node:http2
 * so responses can be passed through while they arrive (see UpstreamSession).
 */
export class XdsProxy implements Component {
  readonly name = 'xdsproxy';
  readonly #deps: XdsProxyDeps;
  readonly #handlers = new Map<string, HandlerEntry>();
  readonly #protocols: ReadonlyMap<string, StreamProtocol>;
  readonly #lifetime = new AbortController();
  readonly #sessions = new Set<http2.ServerHttp2Session>();
  #server?: http2.Http2Server;
  #active?: DownstreamConnection;
  #own?: UpstreamSession;
  #ownLoop?: Promise<void>;
  #health?: HealthReport;
  #streamCounter = 0;
  #closed?: Promise<void>;

  constructor(deps: XdsProxyDeps) {
    this.#deps = deps;
    const sotw = sotwProtocol(deps.schema);
    const delta = deltaProtocol(deps.schema);
    this.#protocols = new Map([
      [sotw.method.path, sotw],
      [delta.method.path, delta],
    ]);
  }

  /** Plugs in an agent-handled type (NameTable, ProxyConfig): decoded here, never forwarded to Envoy. */
  registerHandler(typeUrl: string, handler: AgentTypeHandler, options: { subscribe: boolean }): void {
    this.#handlers.set(typeUrl, { typeUrl, handler, subscribe: options.subscribe });
  }

  /** Sends a health report upstream now if a stream may carry it; it is also re-sent on every new stream. */
  reportHealth(report: HealthReport): void {
    this.#health = report;
    this.#agentRequestCarrier()?.sendHealth(report);
  }

  /** True while some upstream stream to istiod is connected. */
  get isUpstreamConnected(): boolean {
    return Boolean(this.#own?.isConnected || this.#active?.session.isConnected);
  }

  async start(_signal: AbortSignal): Promise<void> {
    const { log, address, clusterId, socketPath } = this.#deps;
    log.info(`Initializing with upstream address "${address}" and cluster "${clusterId}"`);
    const server = http2.createServer({ maxSessionMemory: Number.MAX_SAFE_INTEGER });
    server.on('stream', (stream, headers) => this.#onStream(stream, headers));
    server.on('session', (session) => {
      this.#sessions.add(session);
      session.on('close', () => this.#sessions.delete(session));
      session.on('error', (err: Error) => log.debug(`downstream connection error: ${err.message}`));
    });
    server.on('sessionError', (err) => log.debug(`downstream connection error: ${err.message}`));
    this.#server = server;
    await prepareSocketPath(socketPath, 0o750);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
    await chmod(socketPath, 0o666);
    if (this.#deps.ownNode) this.#ownLoop = this.#runOwnStream(this.#deps.ownNode);
  }

  close(): Promise<void> {
    return (this.#closed ??= this.#shutdown());
  }

  async #shutdown(): Promise<void> {
    this.#lifetime.abort(new Error('xds proxy closed'));
    this.#own?.close();
    this.#active?.end({ code: status.UNAVAILABLE, details: 'agent shutting down' });
    this.#active = undefined;
    const server = this.#server;
    if (server) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const session of this.#sessions) session.close();
      const forced = setTimeout(() => {
        for (const session of this.#sessions) session.destroy();
      }, 1000);
      forced.unref();
      await closed;
      clearTimeout(forced);
    }
    await this.#ownLoop?.catch(() => undefined);
    await rm(this.#deps.socketPath, { force: true });
  }

  #context(protocol: StreamProtocol): SessionContext {
    return {
      protocol,
      dialer: this.#deps.dialer,
      log: this.#deps.log,
      metrics: this.#deps.metrics,
      handlers: this.#handlers,
      health: () => this.#health,
      keepalive: this.#deps.keepalive ?? { intervalMs: 30_000, timeoutMs: 10_000 },
    };
  }

  /** The stream that carries NDS/PCDS subscriptions and health: the agent's own if it has one, else Envoy's. */
  #agentRequestCarrier(): UpstreamSession | undefined {
    return this.#own ?? this.#active?.session;
  }

  #onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    const protocol = this.#protocols.get(String(headers[':path']));
    if (!protocol) {
      stream.respond(
        { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(status.UNIMPLEMENTED), 'grpc-message': encodeURIComponent(`unknown method ${String(headers[':path'])}`) },
        { endStream: true },
      );
      return;
    }
    const { log, metrics } = this.#deps;
    const id = ++this.#streamCounter;
    if (this.#active) {
      log.info('registered overlapping stream; closing previous');
      this.#active.session.close();
      this.#active.end({ code: status.CANCELLED, details: 'replaced by a newer stream' });
    }

    let trailers: StreamStatus = { code: status.OK, details: '' };
    let isEnded = false;
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => {
      const fields: http2.OutgoingHttpHeaders = { 'grpc-status': String(trailers.code) };
      if (trailers.details) fields['grpc-message'] = encodeURIComponent(trailers.details);
      stream.sendTrailers(fields);
    });

    const session = new UpstreamSession(this.#context(protocol), {
      id,
      carriesAgentRequests: !this.#deps.ownNode,
      downstream: {
        write: (bytes) => {
          // Upstream chunks arrive 8 KB at a time, several per socket read: hold them until the event
          // loop has read everything available (setImmediate runs after the poll phase), then write
          // them as one batch. Flushing each chunk on its own costs more than the hop itself.
          if (!stream.writableCorked) {
            stream.cork();
            setImmediate(() => stream.uncork());
          }
          stream.write(bytes);
          // The stream's 16 KB high-water mark would stop istiod's push every other chunk; hold it
          // back only once Envoy is really behind.
          return stream.writableLength < DOWNSTREAM_BUFFER_BYTES;
        },
        onDrain: (resume) => {
          const check = () => (stream.writableLength < DOWNSTREAM_BUFFER_BYTES || stream.destroyed ? resume() : stream.once('drain', check));
          stream.once('drain', check);
        },
      },
    });
    const end = (result: StreamStatus) => {
      if (isEnded) return;
      isEnded = true;
      trailers = result;
      if (stream.closed || stream.destroyed) return;
      stream.end();
    };
    const connection: DownstreamConnection = { session, end };
    this.#active = connection;

    let isDone = false;
    const done = (from: 'downstream' | 'upstream', result?: StreamStatus) => {
      if (isDone) return;
      isDone = true;
      if (this.#active === connection) this.#active = undefined;
      session.close();
      if (from !== 'downstream') return;
      if (isExpectedTermination(result)) {
        log.debug(`downstream terminated with: ${result ? describe(result) : 'EOF'}`, { id });
        metrics.envoyConnectionTerminations.inc({ type: 'cancelled' });
      } else {
        log.warn(`downstream terminated with unexpected error ${describe(result)}`, { id });
        metrics.envoyConnectionTerminations.inc({ type: 'error' });
      }
    };

    const reader = new FrameReader({
      begin: (_length, compressed) => {
        if (compressed) throw new FrameError('compressed requests are not supported');
        return 'whole';
      },
      part: () => undefined,
      whole: (message) => session.forwardRequest(message),
    });
    stream.on('data', (chunk: Buffer) => {
      if (isDone) return;
      try {
        reader.push(chunk);
      } catch (err) {
        // A request we cannot parse ends both streams; Envoy reconnects.
        const result = { code: status.INVALID_ARGUMENT, details: `malformed request from downstream: ${errorMessage(err)}` };
        done('downstream', result);
        end(result);
      }
    });
    stream.on('end', () => session.endRequests());
    stream.on('aborted', () => done('downstream', { code: status.CANCELLED, details: 'client disconnected' }));
    stream.on('close', () => done('downstream', isEnded ? trailers : { code: status.CANCELLED, details: 'client disconnected' }));
    stream.on('error', (err) => done('downstream', { code: status.UNAVAILABLE, details: err.message }));

    void session.open();
    void session.ended.then((result) => {
      if (isDone) return;
      done('upstream');
      // Any upstream end ends Envoy's stream too; Envoy reconnects with its own backoff.
      if (result.kind === 'ok') end({ code: status.OK, details: '' });
      else if (result.kind === 'error') end({ code: status.UNAVAILABLE, details: `upstream: ${result.status.details}` });
    });
  }

  async #runOwnStream(node: Node): Promise<void> {
    const { clock, log } = this.#deps;
    const random = this.#deps.random ?? Math.random;
    const signal = this.#lifetime.signal;
    const protocol = this.#protocols.get(this.#deps.delta ? DELTA_ADS_PATH : SOTW_ADS_PATH);
    if (!protocol) return;
    let backoff = OWN_STREAM_BACKOFF_START_MS;
    while (!signal.aborted) {
      const session = new UpstreamSession(this.#context(protocol), { id: ++this.#streamCounter, own: { node }, carriesAgentRequests: true });
      this.#own = session;
      await session.open();
      await session.ended;
      if (signal.aborted) return;
      // A stream that got answers was healthy: start over from the shortest delay.
      backoff = session.responseCount > 0 ? OWN_STREAM_BACKOFF_START_MS : Math.min(backoff * 2, OWN_STREAM_BACKOFF_MAX_MS);
      const delay = Math.round(backoff * (0.8 + 0.4 * random()));
      log.info(`reconnecting to upstream XDS server in ${formatDuration(delay)}`);
      try {
        await clock.sleep(delay, signal);
      } catch {
        return;
      }
    }
  }
}

function describe(result: StreamStatus | undefined): string {
  return result ? describeGrpcError(Object.assign(new Error(result.details), result)) : 'EOF';
}
