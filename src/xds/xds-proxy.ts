import { rm } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import type { Clock } from '../clock.js';
import { errorMessage } from '../errors.js';
import type { Component } from '../lifecycle.js';
import { formatDuration, type Logger } from '../log/index.js';
import type { AgentMetrics } from '../metrics/index.js';
import { bindUnixSocket, describeGrpcError, shutdownServer, type IstiodDialer } from '../net/index.js';
import type { Node, ProtoSchema } from '../proto/index.js';
import { deltaProtocol, sotwProtocol, type StreamProtocol } from './protocol.js';
import {
  isExpectedTermination,
  UpstreamSession,
  type AgentTypeHandler,
  type HandlerEntry,
  type HealthReport,
  type SessionContext,
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
  /**
   * Envoy disabled: the agent keeps an upstream stream of its own, with this node, so DNS and health
   * work without Envoy (our extension; pilot-agent has no such stream).
   */
  ownNode?: Node;
  random?: () => number;
}

type DownstreamCall = grpc.ServerDuplexStream<Buffer, Buffer>;

const OWN_STREAM_BACKOFF_START_MS = 1_000;
const OWN_STREAM_BACKOFF_MAX_MS = 30_000;

/**
 * The xDS proxy on Envoy's side of the agent (SPEC §5): a gRPC server on a unix socket serving
 * AggregatedDiscoveryService. Each downstream stream gets a fresh upstream stream to istiod; one
 * downstream stream is active at a time, a new one replacing the old, as in pilot-agent.
 */
export class XdsProxy implements Component {
  readonly name = 'xdsproxy';
  readonly #deps: XdsProxyDeps;
  readonly #handlers = new Map<string, HandlerEntry>();
  readonly #sotw: StreamProtocol;
  readonly #delta: StreamProtocol;
  readonly #lifetime = new AbortController();
  #server?: grpc.Server;
  #active?: { session: UpstreamSession; call: DownstreamCall };
  #own?: UpstreamSession;
  #ownLoop?: Promise<void>;
  #health?: HealthReport;
  #streamCounter = 0;
  #closed?: Promise<void>;

  constructor(deps: XdsProxyDeps) {
    this.#deps = deps;
    this.#sotw = sotwProtocol(deps.schema);
    this.#delta = deltaProtocol(deps.schema);
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
    const server = new grpc.Server({ 'grpc.max_receive_message_length': -1, 'grpc.max_send_message_length': -1 });
    server.addService(
      {
        StreamAggregatedResources: { ...this.#sotw.method },
        DeltaAggregatedResources: { ...this.#delta.method },
      },
      {
        StreamAggregatedResources: (call: DownstreamCall) => this.#onDownstream(this.#sotw, call),
        DeltaAggregatedResources: (call: DownstreamCall) => this.#onDownstream(this.#delta, call),
      },
    );
    this.#server = server;
    await bindUnixSocket(server, socketPath, { parentMode: 0o750 });
    if (this.#deps.ownNode) this.#ownLoop = this.#runOwnStream(this.#deps.ownNode);
  }

  close(): Promise<void> {
    return (this.#closed ??= this.#shutdown());
  }

  async #shutdown(): Promise<void> {
    this.#lifetime.abort(new Error('xds proxy closed'));
    this.#own?.close();
    if (this.#active) {
      this.#active.session.close();
      this.#active.call.end();
      this.#active = undefined;
    }
    if (this.#server) await shutdownServer(this.#server);
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
    };
  }

  /** The stream that carries NDS/PCDS subscriptions and health: the agent's own if it has one, else Envoy's. */
  #agentRequestCarrier(): UpstreamSession | undefined {
    return this.#own ?? this.#active?.session;
  }

  #onDownstream(protocol: StreamProtocol, call: DownstreamCall): void {
    const { log, metrics } = this.#deps;
    const id = ++this.#streamCounter;
    if (this.#active) {
      log.info('registered overlapping stream; closing previous');
      this.#active.session.close();
      this.#active.call.emit('error', { code: grpc.status.CANCELLED, details: 'replaced by a newer stream', metadata: new grpc.Metadata() });
    }
    const session = new UpstreamSession(this.#context(protocol), {
      id,
      carriesAgentRequests: !this.#deps.ownNode,
      forward: (bytes) => call.write(bytes),
    });
    const connection = { session, call };
    this.#active = connection;
    call.on('drain', () => session.resume());

    let isDone = false;
    const done = (from: 'downstream' | 'upstream', error?: grpc.ServiceError) => {
      if (isDone) return;
      isDone = true;
      if (this.#active === connection) this.#active = undefined;
      session.close();
      if (from === 'downstream') {
        if (isExpectedTermination(error)) {
          log.debug(`downstream terminated with: ${error ? describeGrpcError(error) : 'EOF'}`, { id });
          metrics.envoyConnectionTerminations.inc({ type: 'cancelled' });
        } else {
          log.warn(`downstream terminated with unexpected error ${describeGrpcError(error)}`, { id });
          metrics.envoyConnectionTerminations.inc({ type: 'error' });
        }
      }
    };

    call.on('data', (bytes: Buffer) => {
      try {
        session.forwardRequest(bytes);
      } catch (err) {
        // A request we cannot parse ends both streams; Envoy reconnects.
        const details = `malformed request from downstream: ${errorMessage(err)}`;
        done('downstream', toError(grpc.status.INVALID_ARGUMENT, details));
        call.emit('error', { code: grpc.status.INVALID_ARGUMENT, details, metadata: new grpc.Metadata() });
      }
    });
    call.on('end', () => {
      done('downstream');
      call.end();
    });
    call.on('cancelled', () => done('downstream', toError(grpc.status.CANCELLED, 'client disconnected')));
    call.on('error', (err: grpc.ServiceError) => done('downstream', err));

    void session.open();
    void session.ended.then((end) => {
      if (isDone) return;
      done('upstream');
      // Any upstream end ends Envoy's stream too; Envoy reconnects with its own backoff.
      if (end.kind === 'ok') call.end();
      else if (end.kind === 'error') call.emit('error', { code: grpc.status.UNAVAILABLE, details: `upstream: ${end.error.details || end.error.message}`, metadata: new grpc.Metadata() });
    });
  }

  async #runOwnStream(node: Node): Promise<void> {
    const { clock, log } = this.#deps;
    const random = this.#deps.random ?? Math.random;
    const signal = this.#lifetime.signal;
    const protocol = this.#deps.delta ? this.#delta : this.#sotw;
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

function toError(code: grpc.status, details: string): grpc.ServiceError {
  return Object.assign(new Error(details), { code, details, metadata: new grpc.Metadata() });
}
