import { createHash, randomUUID } from 'node:crypto';
import { Metadata, status, type ServerDuplexStream } from '@grpc/grpc-js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log/index.js';
import {
  fromStruct,
  HEALTH_INFO_TYPE_URL,
  type DeltaDiscoveryRequest,
  type DeltaDiscoveryResponse,
  type DiscoveryRequest,
  type DiscoveryResponse,
  type JsonLike,
  type Locality,
  type Node,
  type Status,
} from '../proto/index.js';
import { spiffeUri } from './ca-authority.js';
import type { AuthMethod, Caller } from './authenticator.js';

/** One resource as the control plane serves it: its name and its encoded protobuf message. */
export interface XdsResource {
  readonly name: string;
  /** The encoded message; it travels as `Any{type_url, value}`. */
  readonly value: Buffer;
}

export type AdsStreamKind = 'sotw' | 'delta';

/**
 * Builds the resources of one type for one node, as istiod's per-proxy generators do (the NameTable
 * depends on the proxy's namespace, DNS capture and IP family). Called when a stream subscribes to the
 * type and again on `regenerate`.
 */
export type ResourceGenerator = (node: AdsNodeRecord) => readonly XdsResource[];

/** A node that opened an ADS stream, from the stream's first request. */
export interface AdsNodeRecord {
  readonly stream: number;
  readonly kind: AdsStreamKind;
  readonly id: string;
  readonly cluster: string;
  readonly metadata: Readonly<Record<string, JsonLike>>;
  /** The Envoy node's `locality`; undefined when the node sent none. */
  readonly locality: Readonly<Locality> | undefined;
  /** The authenticated caller, `spiffe://...`; '' on an insecure control plane. */
  readonly peerIdentity: string;
  readonly authMethod: AuthMethod;
  readonly connectedAt: Date;
  /** Set once the stream has ended. */
  readonly disconnectedAt: Date | undefined;
}

export interface AdsRequestRecord {
  readonly stream: number;
  readonly kind: AdsStreamKind;
  readonly typeUrl: string;
  /** `response_nonce` of the request ('' on a first request). */
  readonly nonce: string;
  /** SotW `version_info` ('' for Delta). */
  readonly versionInfo: string;
  /** SotW `resource_names`, or Delta `resource_names_subscribe`. */
  readonly resourceNames: readonly string[];
  /** Delta `resource_names_unsubscribe` ([] for SotW). */
  readonly unsubscribe: readonly string[];
  /** Acknowledges an earlier response: non-empty nonce and no error_detail. */
  readonly isAck: boolean;
  /** Rejects an earlier response: carries error_detail. */
  readonly isNack: boolean;
  readonly errorDetail?: { readonly code: number; readonly message: string };
  readonly at: Date;
}

/** The status a stream is ended with when `onConnect` refuses it. */
export interface AdsStreamRejection {
  readonly code: status;
  readonly details: string;
}

/**
 * What istiod does beside serving resources, on the streams' lifecycle (its WorkloadEntry controller).
 * Called synchronously; a hook that throws is logged and otherwise ignored.
 */
export interface AdsStreamHooks {
  /** The stream's node is known; a rejection ends the stream with that status before its first request is handled. */
  onConnect?(node: AdsNodeRecord): AdsStreamRejection | undefined;
  /** A stream whose node was known has ended (also after a rejection by `onConnect`). */
  onDisconnect?(node: AdsNodeRecord): void;
  /** A HealthInformation request: healthy without `errorDetail`. */
  onHealthReport?(node: AdsNodeRecord, errorDetail: { readonly code: number; readonly message: string } | undefined): void;
}

/** Encoders for responses: the server writes the bytes they return. */
export interface ResponseEncoders {
  sotw(response: DiscoveryResponse): Buffer;
  delta(response: DeltaDiscoveryResponse): Buffer;
}

export interface AdsResponseRecord {
  readonly stream: number;
  readonly kind: AdsStreamKind;
  readonly typeUrl: string;
  readonly nonce: string;
  /** SotW `version_info` or Delta `system_version_info`. */
  readonly version: string;
  readonly resourceNames: readonly string[];
  /** Delta `removed_resources` ([] for SotW). */
  readonly removed: readonly string[];
  /** The encoded response exactly as written to the stream. */
  readonly bytes: Buffer;
  readonly at: Date;
}

interface StoredResource {
  readonly value: Buffer;
  /** Content hash: Delta only re-sends a resource whose content changed. */
  readonly version: string;
}

interface TypeStore {
  readonly version: number;
  readonly resources: ReadonlyMap<string, StoredResource>;
}

type Writable<T> = { -readonly [K in keyof T]: T[K] };

interface SotwSubscription {
  names: string[];
  /** Nonce of the last response on this stream for this type; '' before the first. */
  nonce: string;
}

interface DeltaSubscription {
  isWildcard: boolean;
  readonly names: Set<string>;
  /** What the client has: name → version. */
  readonly sent: Map<string, string>;
  /** The first request is answered even when empty, once the type has resources at all. */
  isAwaitingFirstResponse: boolean;
}

interface StreamBase {
  readonly id: number;
  readonly caller: Caller;
  node?: Writable<AdsNodeRecord>;
  isOpen: boolean;
  /** What generators built for this stream's node, by type (dropped to be rebuilt on `regenerate`). */
  readonly generated: Map<string, TypeStore>;
  /** The last version generated per type: versions count up per stream. */
  readonly generatedVersions: Map<string, number>;
  /** Ends the stream with a status. */
  fail(code: status, details: string): void;
}

interface SotwStream extends StreamBase {
  readonly kind: 'sotw';
  readonly call: ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>;
  readonly subscriptions: Map<string, SotwSubscription>;
}

interface DeltaStream extends StreamBase {
  readonly kind: 'delta';
  readonly call: ServerDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>;
  readonly subscriptions: Map<string, DeltaSubscription>;
}

type AdsStream = SotwStream | DeltaStream;

function statusError(code: status, details: string): Error & { code: status; details: string; metadata: Metadata } {
  return Object.assign(new Error(details), { code, details, metadata: new Metadata() });
}

function contentVersion(value: Buffer): string {
  return createHash('sha256').update(value).digest('hex').slice(0, 16);
}

function errorDetailOf(detail: Status | null | undefined): { code: number; message: string } | undefined {
  return detail ? { code: detail.code, message: detail.message } : undefined;
}

function storedResources(resources: readonly XdsResource[]): Map<string, StoredResource> {
  const byName = new Map<string, StoredResource>();
  for (const resource of resources) {
    const value = Buffer.from(resource.value);
    byName.set(resource.name, { value, version: contentVersion(value) });
  }
  return byName;
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const set = new Set(a);
  return b.every((name) => set.has(name));
}

/**
 * The ADS half of the local control plane: per-type resource store, SotW and Delta streams, and a
 * record of nodes, requests and responses for tests. Resources of a type are served once
 * `setResources` (the same to every stream) or `setResourceGenerator` (per node) has been called for
 * it; requests for other types are recorded and left unanswered, as istiod does for types it does
 * not generate. Health reports (HealthInformation) are recorded and handed to `hooks`, which also
 * hear of each stream's node and end, and may refuse a stream (istiod's WorkloadEntry controller).
 */
export class AdsServer {
  readonly #log: Logger;
  readonly #encode: ResponseEncoders;
  readonly #onChange: () => void;
  readonly #hooks: AdsStreamHooks;
  readonly #store = new Map<string, TypeStore>();
  readonly #generators = new Map<string, ResourceGenerator>();
  readonly #streams = new Set<AdsStream>();
  readonly #nodes: Writable<AdsNodeRecord>[] = [];
  readonly #requests: AdsRequestRecord[] = [];
  readonly #responses: AdsResponseRecord[] = [];
  #nextStreamId = 1;

  constructor(deps: { log: Logger; onChange: () => void; encode: ResponseEncoders; hooks?: AdsStreamHooks }) {
    this.#log = deps.log;
    this.#onChange = deps.onChange;
    this.#encode = deps.encode;
    this.#hooks = deps.hooks ?? {};
  }

  get nodes(): readonly AdsNodeRecord[] {
    return this.#nodes;
  }

  get connectedNodes(): readonly AdsNodeRecord[] {
    return this.#nodes.filter((node) => node.disconnectedAt === undefined);
  }

  get requests(): readonly AdsRequestRecord[] {
    return this.#requests;
  }

  get responses(): readonly AdsResponseRecord[] {
    return this.#responses;
  }

  get openStreamCount(): number {
    return this.#streams.size;
  }

  /** The resources set for `typeUrl`; undefined if none were, or if a generator serves the type. */
  getResources(typeUrl: string): XdsResource[] | undefined {
    const store = this.#store.get(typeUrl);
    if (!store) return undefined;
    return [...store.resources].map(([name, resource]) => ({ name, value: resource.value }));
  }

  /**
   * Replaces every resource of `typeUrl` and pushes the change to streams subscribed to that type.
   * Ends any generator of the type: the last of `setResources` and `setResourceGenerator` wins.
   */
  setResources(typeUrl: string, resources: readonly XdsResource[]): void {
    const wasGenerated = this.#generators.delete(typeUrl);
    const version = (this.#store.get(typeUrl)?.version ?? 0) + 1;
    this.#store.set(typeUrl, { version, resources: storedResources(resources) });
    for (const stream of this.#streams) {
      if (wasGenerated) stream.generated.delete(typeUrl);
      this.#push(stream, typeUrl);
    }
    this.#onChange();
  }

  /**
   * Serves `typeUrl` per node: each stream subscribed to it gets what `generator` builds for its node,
   * now and on every `regenerate(typeUrl)`. Replaces resources set with `setResources` for the type.
   */
  setResourceGenerator(typeUrl: string, generator: ResourceGenerator): void {
    this.#store.delete(typeUrl);
    this.#generators.set(typeUrl, generator);
    this.regenerate(typeUrl);
  }

  get generatedTypes(): readonly string[] {
    return [...this.#generators.keys()];
  }

  /**
   * Re-runs the generator of `typeUrl` for every stream subscribed to it and pushes the result, as
   * istiod pushes on a config change: SotW streams always get a response, Delta streams only the
   * resources whose content changed.
   */
  regenerate(typeUrl: string): void {
    if (!this.#generators.has(typeUrl)) return;
    for (const stream of this.#streams) {
      stream.generated.delete(typeUrl);
      this.#push(stream, typeUrl);
    }
    this.#onChange();
  }

  #push(stream: AdsStream, typeUrl: string): void {
    if (stream.kind === 'sotw') {
      if (stream.subscriptions.has(typeUrl)) this.#sendSotw(stream, typeUrl);
    } else if (stream.subscriptions.has(typeUrl)) {
      this.#sendDelta(stream, typeUrl);
    }
  }

  /** The resources a stream is served for `typeUrl`: generated for its node, or the shared ones. */
  #storeFor(stream: AdsStream, typeUrl: string): TypeStore | undefined {
    const generator = this.#generators.get(typeUrl);
    if (!generator) return this.#store.get(typeUrl);
    const cached = stream.generated.get(typeUrl);
    if (cached || !stream.node) return cached;
    let resources: readonly XdsResource[];
    try {
      resources = generator(stream.node);
    } catch (err) {
      this.#log.error('ads resource generator failed', { stream: stream.id, type: typeUrl, node: stream.node.id, error: errorMessage(err) });
      return undefined;
    }
    const previous = stream.generatedVersions.get(typeUrl) ?? 0;
    const store: TypeStore = { version: previous + 1, resources: storedResources(resources) };
    stream.generatedVersions.set(typeUrl, store.version);
    stream.generated.set(typeUrl, store);
    return store;
  }

  serveSotw(call: ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>, caller: Caller): void {
    const stream: SotwStream = {
      kind: 'sotw',
      id: this.#nextStreamId++,
      caller,
      call,
      subscriptions: new Map(),
      generated: new Map(),
      generatedVersions: new Map(),
      isOpen: true,
      fail: (code, details) => this.#fail(stream, code, details),
    };
    this.#attach(stream, call);
    call.on('data', (request: DiscoveryRequest) => this.#onSotwRequest(stream, request));
  }

  serveDelta(call: ServerDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>, caller: Caller): void {
    const stream: DeltaStream = {
      kind: 'delta',
      id: this.#nextStreamId++,
      caller,
      call,
      subscriptions: new Map(),
      generated: new Map(),
      generatedVersions: new Map(),
      isOpen: true,
      fail: (code, details) => this.#fail(stream, code, details),
    };
    this.#attach(stream, call);
    call.on('data', (request: DeltaDiscoveryRequest) => this.#onDeltaRequest(stream, request));
  }

  /** Ends every open stream with `code` (UNAVAILABLE by default), as an istiod restart would. */
  dropStreams(details = 'stream dropped by the local control plane', code: status = status.UNAVAILABLE): number {
    const open = [...this.#streams];
    for (const stream of open) stream.fail(code, details);
    return open.length;
  }

  #attach(stream: AdsStream, call: ServerDuplexStream<unknown, unknown>): void {
    this.#streams.add(stream);
    const finish = (): void => this.#finish(stream);
    call.on('end', () => {
      // The client half-closed: finish with OK, unless the stream was already ended with a status.
      const wasOpen = stream.isOpen;
      finish();
      if (wasOpen) call.end();
    });
    call.on('cancelled', finish);
    call.on('error', finish);
    call.on('close', finish);
  }

  #fail(stream: AdsStream, code: status, details: string): void {
    if (!stream.isOpen) return;
    this.#finish(stream);
    // grpc-js turns an 'error' event on a server stream into the final status.
    stream.call.emit('error', statusError(code, details));
  }

  #finish(stream: AdsStream): void {
    if (!stream.isOpen) return;
    stream.isOpen = false;
    this.#streams.delete(stream);
    if (stream.node) stream.node.disconnectedAt = new Date();
    this.#log.debug('ads stream closed', { stream: stream.id, kind: stream.kind, node: stream.node?.id });
    const node = stream.node;
    if (node) this.#runHook('onDisconnect', node, () => this.#hooks.onDisconnect?.(node));
    this.#onChange();
  }

  #runHook<T>(name: string, node: AdsNodeRecord, hook: () => T): T | undefined {
    try {
      return hook();
    } catch (err) {
      this.#log.error('ads stream hook failed', { hook: name, stream: node.stream, node: node.id, error: errorMessage(err) });
      return undefined;
    }
  }

  /**
   * istiod skips a health report that comes before the stream's first xDS request (the agent can probe
   * before Envoy has asked for anything): it is recorded here, and goes no further.
   */
  #isEarlyHealthReport(stream: AdsStream, typeUrl: string): boolean {
    if (stream.node || typeUrl !== HEALTH_INFO_TYPE_URL) return false;
    this.#log.warn('ads health report before the first xDS request: ignored', { stream: stream.id });
    return true;
  }

  /** Hands a health report to the hooks; true if the request was one (it then subscribes to nothing). */
  #handleHealthReport(stream: AdsStream, typeUrl: string, errorDetail: { code: number; message: string } | undefined): boolean {
    const node = stream.node;
    if (typeUrl !== HEALTH_INFO_TYPE_URL || !node) return false;
    this.#log.debug('ads health report', { stream: stream.id, node: node.id, healthy: !errorDetail, error: errorDetail?.message });
    this.#runHook('onHealthReport', node, () => this.#hooks.onHealthReport?.(node, errorDetail));
    return true;
  }

  /** Records the node from the stream's first request; istiod refuses a stream without one. */
  #acceptNode(stream: AdsStream, node: Node | null | undefined): boolean {
    if (stream.node) return true;
    if (!node?.id) {
      stream.fail(status.INVALID_ARGUMENT, 'missing node information');
      return false;
    }
    const record: Writable<AdsNodeRecord> = {
      stream: stream.id,
      kind: stream.kind,
      id: node.id,
      cluster: node.cluster,
      metadata: fromStruct(node.metadata),
      locality: node.locality ? { region: node.locality.region, zone: node.locality.zone, sub_zone: node.locality.sub_zone } : undefined,
      peerIdentity: stream.caller.identity ? spiffeUri(stream.caller.identity) : '',
      authMethod: stream.caller.authMethod,
      connectedAt: new Date(),
      disconnectedAt: undefined,
    };
    stream.node = record;
    this.#nodes.push(record);
    this.#log.info('ads stream connected', { stream: stream.id, kind: stream.kind, node: node.id, identity: record.peerIdentity });
    const rejection = this.#runHook('onConnect', record, () => this.#hooks.onConnect?.(record));
    if (rejection) {
      this.#log.warn('ads stream refused', { stream: stream.id, node: node.id, code: status[rejection.code], error: rejection.details });
      stream.fail(rejection.code, rejection.details);
      return false;
    }
    return true;
  }

  #onSotwRequest(stream: SotwStream, request: DiscoveryRequest): void {
    if (!stream.isOpen) return;
    const isEarlyHealthReport = this.#isEarlyHealthReport(stream, request.type_url);
    if (!isEarlyHealthReport && !this.#acceptNode(stream, request.node)) return;
    const typeUrl = request.type_url;
    const errorDetail = errorDetailOf(request.error_detail);
    const nonce = request.response_nonce;
    this.#requests.push({
      stream: stream.id,
      kind: 'sotw',
      typeUrl,
      nonce,
      versionInfo: request.version_info,
      resourceNames: [...request.resource_names],
      unsubscribe: [],
      isAck: nonce !== '' && !errorDetail,
      isNack: errorDetail !== undefined,
      ...(errorDetail ? { errorDetail } : {}),
      at: new Date(),
    });
    if (isEarlyHealthReport || this.#handleHealthReport(stream, typeUrl, errorDetail)) {
      this.#onChange();
      return;
    }
    if (errorDetail) {
      this.#log.warn('ads NACK', { stream: stream.id, type: typeUrl, nonce, code: errorDetail.code, error: errorDetail.message });
    } else {
      const subscription = stream.subscriptions.get(typeUrl);
      if (!subscription || nonce === '') {
        stream.subscriptions.set(typeUrl, { names: [...request.resource_names], nonce: subscription?.nonce ?? '' });
        this.#sendSotw(stream, typeUrl);
      } else if (nonce === subscription.nonce) {
        // Matching nonce: an ACK, and a new subscription if the names changed.
        if (!sameNames(subscription.names, request.resource_names)) {
          subscription.names = [...request.resource_names];
          this.#sendSotw(stream, typeUrl);
        }
      }
      // Any other nonce answers a response the client has since been superseded by: ignored.
    }
    this.#onChange();
  }

  #sendSotw(stream: SotwStream, typeUrl: string): void {
    const store = this.#storeFor(stream, typeUrl);
    const subscription = stream.subscriptions.get(typeUrl);
    if (!store || !subscription || !stream.isOpen) return;
    const isWildcard = subscription.names.length === 0 || subscription.names.includes('*');
    const selected = [...store.resources].filter(([name]) => isWildcard || subscription.names.includes(name));
    const nonce = randomUUID();
    const response: DiscoveryResponse = {
      version_info: String(store.version),
      resources: selected.map(([, resource]) => ({ type_url: typeUrl, value: resource.value })),
      type_url: typeUrl,
      nonce,
    };
    subscription.nonce = nonce;
    // Encoded here, and written as those bytes, so tests can compare what a client got byte for byte.
    const bytes = this.#encode.sotw(response);
    stream.call.write(bytes as unknown as DiscoveryResponse);
    this.#recordResponse(stream, typeUrl, nonce, response.version_info, selected.map(([name]) => name), [], bytes);
  }

  #onDeltaRequest(stream: DeltaStream, request: DeltaDiscoveryRequest): void {
    if (!stream.isOpen) return;
    const isEarlyHealthReport = this.#isEarlyHealthReport(stream, request.type_url);
    if (!isEarlyHealthReport && !this.#acceptNode(stream, request.node)) return;
    const typeUrl = request.type_url;
    const errorDetail = errorDetailOf(request.error_detail);
    const nonce = request.response_nonce;
    const subscribe = request.resource_names_subscribe;
    const unsubscribe = request.resource_names_unsubscribe;
    this.#requests.push({
      stream: stream.id,
      kind: 'delta',
      typeUrl,
      nonce,
      versionInfo: '',
      resourceNames: [...subscribe],
      unsubscribe: [...unsubscribe],
      isAck: nonce !== '' && !errorDetail,
      isNack: errorDetail !== undefined,
      ...(errorDetail ? { errorDetail } : {}),
      at: new Date(),
    });
    if (isEarlyHealthReport || this.#handleHealthReport(stream, typeUrl, errorDetail)) {
      this.#onChange();
      return;
    }
    if (errorDetail) {
      this.#log.warn('ads NACK', { stream: stream.id, type: typeUrl, nonce, code: errorDetail.code, error: errorDetail.message });
      this.#onChange();
      return;
    }
    let subscription = stream.subscriptions.get(typeUrl);
    const isNew = subscription === undefined;
    if (!subscription) {
      subscription = {
        // A first request without names subscribes to everything (the legacy wildcard).
        isWildcard: subscribe.length === 0,
        names: new Set(),
        sent: new Map(Object.entries(request.initial_resource_versions ?? {})),
        isAwaitingFirstResponse: true,
      };
      stream.subscriptions.set(typeUrl, subscription);
    }
    for (const name of subscribe) {
      if (name === '*') subscription.isWildcard = true;
      else subscription.names.add(name);
    }
    for (const name of unsubscribe) {
      if (name === '*') {
        subscription.isWildcard = false;
      } else {
        subscription.names.delete(name);
        subscription.sent.delete(name);
      }
    }
    if (isNew || subscribe.length > 0) this.#sendDelta(stream, typeUrl);
    this.#onChange();
  }

  /** Sends what the client lacks: changed or new resources in scope, and removals of ones it has. */
  #sendDelta(stream: DeltaStream, typeUrl: string): void {
    const store = this.#storeFor(stream, typeUrl);
    const subscription = stream.subscriptions.get(typeUrl);
    if (!store || !subscription || !stream.isOpen) return;
    const changed = [...store.resources].filter(
      ([name, resource]) => (subscription.isWildcard || subscription.names.has(name)) && subscription.sent.get(name) !== resource.version,
    );
    const removed = [...subscription.sent.keys()].filter((name) => !store.resources.has(name));
    if (changed.length === 0 && removed.length === 0 && !subscription.isAwaitingFirstResponse) return;
    subscription.isAwaitingFirstResponse = false;
    const nonce = randomUUID();
    const response: DeltaDiscoveryResponse = {
      system_version_info: String(store.version),
      resources: changed.map(([name, resource]) => ({
        name,
        version: resource.version,
        resource: { type_url: typeUrl, value: resource.value },
      })),
      type_url: typeUrl,
      removed_resources: removed,
      nonce,
    };
    for (const [name, resource] of changed) subscription.sent.set(name, resource.version);
    for (const name of removed) subscription.sent.delete(name);
    const bytes = this.#encode.delta(response);
    stream.call.write(bytes as unknown as DeltaDiscoveryResponse);
    this.#recordResponse(stream, typeUrl, nonce, response.system_version_info, changed.map(([name]) => name), removed, bytes);
  }

  #recordResponse(stream: AdsStream, typeUrl: string, nonce: string, version: string, names: string[], removed: string[], bytes: Buffer): void {
    this.#responses.push({ stream: stream.id, kind: stream.kind, typeUrl, nonce, version, resourceNames: names, removed, bytes, at: new Date() });
    this.#log.debug('ads push', { stream: stream.id, type: typeUrl, version, nonce, resources: names.length, removed: removed.length });
  }
}
