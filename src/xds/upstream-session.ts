import * as grpc from '@grpc/grpc-js';
import type { AgentMetrics } from '../metrics/index.js';
import { describeGrpcError, type IstiodDialer } from '../net/index.js';
import type { Logger } from '../log/index.js';
import type { Any, Node } from '../proto/index.js';
import type { OutgoingRequest, StreamProtocol } from './protocol.js';
import { HEALTH_INFO_TYPE_URL, isForwardableType, LISTENER_TYPE_URL, PROXY_CONFIG_TYPE_URL } from './type-urls.js';

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

export interface SessionContext {
  protocol: StreamProtocol;
  dialer: IstiodDialer;
  log: Logger;
  metrics: AgentMetrics;
  handlers: ReadonlyMap<string, HandlerEntry>;
  /** The latest health report, re-sent on every stream once it may carry agent requests. */
  health: () => HealthReport | undefined;
}

export interface SessionOptions {
  id: number;
  /** Forwards an Envoy-bound response; returns false when the downstream buffer is full. */
  forward?: (bytes: Buffer) => boolean;
  /** The agent's own stream: send the node and subscriptions at once, and ACK everything. */
  own?: { node: Node };
  /** Whether this stream carries the agent's subscriptions and health reports at all. */
  carriesAgentRequests: boolean;
}

export type SessionEnd = { kind: 'ok' } | { kind: 'error'; error: grpc.ServiceError } | { kind: 'closed' };

// Stream ends that are part of normal life (SPEC §5.2 step 5): logged at debug, counted as "cancelled".
const EXPECTED_UNAVAILABLE = /transport is closing|client disconnected|error reading from server: EOF|Connection dropped|GOAWAY|NO_ERROR/i;

export function isExpectedTermination(error: grpc.ServiceError | undefined): boolean {
  if (!error) return true;
  if (error.code === grpc.status.CANCELLED || error.code === grpc.status.DEADLINE_EXCEEDED || error.code === grpc.status.OK) return true;
  return error.code === grpc.status.UNAVAILABLE && EXPECTED_UNAVAILABLE.test(error.details);
}

/**
 * One upstream ADS stream to istiod. Envoy's requests go up unchanged; istiod's responses come back as
 * bytes and are forwarded unchanged, except the types the agent handles itself, which are decoded,
 * handed to their handler and ACKed or NACKed here.
 */
export class UpstreamSession {
  readonly id: number;
  readonly ended: Promise<SessionEnd>;
  #resolveEnded!: (end: SessionEnd) => void;
  readonly #ctx: SessionContext;
  readonly #options: SessionOptions;
  #client?: grpc.Client;
  #call?: grpc.ClientDuplexStream<Buffer, Buffer>;
  #pending: Buffer[] = [];
  #isOpen = false;
  #isEnded = false;
  #isConnected = false;
  #mayCarryAgentRequests = false;
  #sawListenerRequest = false;
  #responses = 0;

  constructor(ctx: SessionContext, options: SessionOptions) {
    this.#ctx = ctx;
    this.#options = options;
    this.id = options.id;
    this.ended = new Promise((resolve) => (this.#resolveEnded = resolve));
  }

  get responseCount(): number {
    return this.#responses;
  }

  get isConnected(): boolean {
    return this.#isConnected;
  }

  /** Dials istiod and opens the stream; requests sent before this resolves are queued. */
  async open(): Promise<void> {
    const { dialer, protocol, log, metrics } = this.#ctx;
    let metadata: grpc.Metadata;
    try {
      this.#client = await dialer.newClient();
      metadata = await dialer.metadata();
    } catch (err) {
      log.error(`failed to connect to upstream ${dialer.address}: ${describeGrpcError(err)}`);
      metrics.istiodConnectionFailures.inc();
      this.#finish({ kind: 'error', error: toServiceError(err) });
      return;
    }
    if (this.#isEnded) {
      this.#client.close();
      return;
    }
    const method = protocol.method;
    const call = this.#client.makeBidiStreamRequest(method.path, method.requestSerialize, method.responseDeserialize, metadata);
    this.#call = call;
    call.on('data', (bytes: Buffer) => this.#onResponse(bytes));
    call.on('error', (error: grpc.ServiceError) => this.#onUpstreamEnd(error));
    call.on('status', (status: grpc.StatusObject) => {
      if (status.code === grpc.status.OK) this.#onUpstreamEnd(undefined);
    });
    this.#watchConnected();
    this.#isOpen = true;
    if (this.#options.own) {
      this.#mayCarryAgentRequests = true;
      this.#sendAgentRequests(this.#options.own.node);
    }
    for (const bytes of this.#pending.splice(0)) call.write(bytes);
  }

  /** Forwards one of Envoy's requests, unchanged. */
  forwardRequest(bytes: Buffer): void {
    const { protocol, metrics } = this.#ctx;
    const summary = protocol.summarizeRequest(bytes);
    metrics.xdsProxyRequests.inc();
    this.#write(bytes);
    // Istio holds its own requests (NDS, PCDS, health) until Envoy's first LDS request has gone up.
    if (!this.#sawListenerRequest && summary.typeUrl === LISTENER_TYPE_URL) {
      this.#sawListenerRequest = true;
      if (this.#options.carriesAgentRequests) {
        this.#mayCarryAgentRequests = true;
        this.#sendAgentRequests(undefined);
      }
    }
  }

  /** Sends a health report now if this stream may carry it (else it waits in the proxy's cache). */
  sendHealth(report: HealthReport): void {
    if (!this.#mayCarryAgentRequests || !this.#options.carriesAgentRequests) return;
    this.#write(this.#ctx.protocol.encodeRequest(healthRequest(report)));
  }

  pause(): void {
    this.#call?.pause();
  }

  resume(): void {
    this.#call?.resume();
  }

  /** Ends the stream from our side (downstream went away, or the agent is closing). */
  close(): void {
    if (this.#isEnded) return;
    this.#call?.cancel();
    this.#finish({ kind: 'closed' });
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

  #write(bytes: Buffer): void {
    if (this.#isEnded) return;
    if (!this.#isOpen || !this.#call) this.#pending.push(bytes);
    else this.#call.write(bytes);
  }

  #onResponse(bytes: Buffer): void {
    const { protocol, handlers, log, metrics } = this.#ctx;
    this.#responses++;
    let typeUrl: string;
    try {
      typeUrl = protocol.responseTypeUrl(bytes);
    } catch (err) {
      this.#abort(`malformed response from upstream: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    const entry = handlers.get(typeUrl);
    if (entry || this.#options.own) {
      this.#handleAgentResponse(bytes, entry);
      return;
    }
    if (!isForwardableType(typeUrl)) {
      log.error(`Skipping forwarding type url ${typeUrl} to Envoy as is not a valid Envoy type`);
      return;
    }
    metrics.xdsProxyResponses.inc();
    const forward = this.#options.forward;
    if (forward && !forward(bytes)) this.pause();
  }

  #handleAgentResponse(bytes: Buffer, entry: HandlerEntry | undefined): void {
    const { protocol, log } = this.#ctx;
    let response;
    try {
      response = protocol.decodeResponse(bytes);
    } catch (err) {
      this.#abort(`malformed response from upstream: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    const ack: OutgoingRequest = { typeUrl: response.typeUrl, nonce: response.nonce, version: response.version };
    const first = response.resources[0];
    if (entry && first) {
      try {
        entry.handler.onResource(first);
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        log.warn(`rejecting ${response.typeUrl} from upstream: ${message}`);
        ack.errorDetail = { code: grpc.status.INTERNAL, message };
      }
    }
    // Empty responses of agent-handled types are ignored, as Istio does; the agent's own stream ACKs all.
    if (first || this.#options.own) this.#write(protocol.encodeRequest(ack));
  }

  #watchConnected(): void {
    const channel = this.#client?.getChannel();
    if (!channel) return;
    const check = (): void => {
      if (this.#isEnded) return;
      const state = channel.getConnectivityState(true);
      if (state === grpc.connectivityState.READY) {
        this.#isConnected = true;
        this.#ctx.log.info(`connected to ${this.#ctx.protocol.label}: ${this.#ctx.dialer.address}`, { id: this.id });
        return;
      }
      channel.watchConnectivityState(state, Infinity, check);
    };
    check();
  }

  #onUpstreamEnd(error: grpc.ServiceError | undefined): void {
    if (this.#isEnded) return;
    const { log, metrics, dialer } = this.#ctx;
    if (!this.#isConnected && error && error.code === grpc.status.UNAVAILABLE) {
      log.error(`failed to connect to upstream ${dialer.address}: ${describeGrpcError(error)}`);
      metrics.istiodConnectionFailures.inc();
    } else if (isExpectedTermination(error)) {
      log.debug(`upstream terminated with: ${error ? describeGrpcError(error) : 'EOF'}`, { id: this.id });
      metrics.istiodConnectionTerminations.inc({ type: 'cancelled' });
    } else {
      log.warn(`upstream terminated with unexpected error ${describeGrpcError(error)}`, { id: this.id });
      metrics.istiodConnectionTerminations.inc({ type: 'error' });
    }
    this.#finish(error ? { kind: 'error', error } : { kind: 'ok' });
  }

  #abort(message: string): void {
    this.#ctx.log.warn(`upstream terminated with unexpected error ${message}`, { id: this.id });
    this.#ctx.metrics.istiodConnectionTerminations.inc({ type: 'error' });
    this.#call?.cancel();
    this.#finish({ kind: 'error', error: toServiceError(new Error(message), grpc.status.INTERNAL) });
  }

  #finish(end: SessionEnd): void {
    if (this.#isEnded) return;
    this.#isEnded = true;
    this.#pending = [];
    this.#client?.close();
    this.#resolveEnded(end);
  }
}

function healthRequest(report: HealthReport): OutgoingRequest {
  // istiod reads an error_detail as "unhealthy"; code 13 (INTERNAL) as pilot-agent sends it.
  return report.healthy
    ? { typeUrl: HEALTH_INFO_TYPE_URL }
    : { typeUrl: HEALTH_INFO_TYPE_URL, errorDetail: { code: grpc.status.INTERNAL, message: report.message } };
}

function toServiceError(err: unknown, code: grpc.status = grpc.status.UNAVAILABLE): grpc.ServiceError {
  if (err instanceof Error && typeof (err as Partial<grpc.ServiceError>).code === 'number') return err as grpc.ServiceError;
  const message = err instanceof Error ? err.message : String(err);
  return Object.assign(new Error(message), { code, details: message, metadata: new grpc.Metadata() });
}
