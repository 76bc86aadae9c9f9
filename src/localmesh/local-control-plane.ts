import { readFile } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import { status, type ServerDuplexStream, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';
import { systemClock, type Clock } from '../clock.js';
import { ConfigError, ConfigErrors } from '../config/index.js';
import { AgentError, errorMessage } from '../errors.js';
import type { Component } from '../lifecycle.js';
import type { Logger } from '../log/index.js';
import {
  ProtoSchema,
  fromStruct,
  type DeltaDiscoveryRequest,
  type DeltaDiscoveryResponse,
  type DiscoveryRequest,
  type DiscoveryResponse,
  type IstioCertificateRequest,
  type IstioCertificateResponse,
  type JsonLike,
  type NameTable,
} from '../proto/index.js';
import { AdsServer, type AdsNodeRecord, type AdsRequestRecord, type AdsResponseRecord, type XdsResource } from './ads-server.js';
import {
  ANONYMOUS_CALLER,
  AuthenticationError,
  Authenticator,
  CLUSTER_ID_METADATA,
  metadataString,
  type AuthMethod,
  type Caller,
} from './authenticator.js';
import { CaAuthority, CsrError, spiffeUri, type CaState, type RootKeyAlgorithm, type ServingCertificate } from './ca-authority.js';
import { buildGrpcServiceResources, type GrpcService } from './grpc-service-resources.js';
import { TokenAuthority, type TokenRequest } from './jwt.js';
import { MeshConfigStore, type KubernetesService, type MeshConfigChange } from './mesh-config-store.js';
import type { ServiceEntry, WorkloadGroup } from './mesh-resources.js';
import { NAME_TABLE_TYPE_URL } from '../proto/type-urls.js';
import { buildNameTable, nameTableProxyFromNode, type NameTableProxy } from './name-table.js';
import { ResourceSchema } from './resource-schema.js';
import { StaticCertificateProvider } from './static-certificate-provider.js';
import { Waiters } from './waiters.js';
import { WorkloadEntryApiServer } from './workload-entry-api-server.js';
import { WorkloadEntryRegistry, type WorkloadEntry, type WorkloadEntryEvent } from './workload-entry-registry.js';

export const DEFAULT_SERVER_NAMES: readonly string[] = ['istiod.istio-system.svc', 'istiod.istio-system.svc.cluster.local', 'localhost'];
/** istiod's default maximum workload certificate TTL (90 days). */
export const DEFAULT_MAX_CERT_TTL_SECONDS = 90 * 24 * 3600;
/** istiod's default workload certificate TTL, used when a request asks for none. */
export const DEFAULT_CERT_TTL_SECONDS = 24 * 3600;
const DEFAULT_WAIT_MS = 10_000;

/** Everything needed to rebuild the same CA and token issuer in another control plane instance. */
export interface LocalControlPlaneState extends CaState {
  /** PKCS#8 PEM of the JWT signing key (P-256). */
  readonly tokenKeyPem?: string;
}

export interface LocalControlPlaneOptions {
  /** Listen address; default 127.0.0.1. */
  readonly host?: string;
  /** Default 0 (ephemeral). After the first start the bound port is kept for later starts. */
  readonly port?: number;
  /** Default `cluster.local`. */
  readonly trustDomain?: string;
  /** The cluster ID a JWT caller must send as `ClusterID` metadata; default `Kubernetes`. */
  readonly clusterId?: string;
  /** Caps the requested certificate validity; default 90 days. */
  readonly maxCertTtlSeconds?: number;
  /** DNS SANs of the serving certificate (127.0.0.1 and ::1 are always added). */
  readonly serverNames?: readonly string[];
  readonly log?: Logger;
  readonly schema?: ProtoSchema;
  /** Default RSA (2048), like istiod's self-signed root. */
  readonly rootKeyAlgorithm?: RootKeyAlgorithm;
  /** Root CA (and token key) from `exportState()` of an earlier instance. */
  readonly state?: LocalControlPlaneState;
  readonly clock?: Clock;
  /**
   * Plaintext gRPC, no authentication, ADS only (the CA service is not registered, so its calls
   * fail UNIMPLEMENTED). For clients that cannot do istiod's TLS, such as a proxyless gRPC client
   * (whose bootstrap offers only `insecure` and `google_default` channel credentials), or an agent
   * with `controlPlaneAuthPolicy: NONE`. Default false.
   */
  readonly insecure?: boolean;
  /** Schema for `setGrpcServices`; by default loaded on its first call. */
  readonly resourceSchema?: ResourceSchema;
  /** istiod's `PILOT_IP_AUTOALLOCATE_IPV4_PREFIX`; default `240.240.0.0/16`. */
  readonly ipv4AutoallocatePrefix?: string;
  /** istiod's `PILOT_IP_AUTOALLOCATE_IPV6_PREFIX`; default `2001:2::/48`. */
  readonly ipv6AutoallocatePrefix?: string;
  /** istiod's `PILOT_ENABLE_WORKLOAD_ENTRY_AUTOREGISTRATION`; default true. */
  readonly workloadEntryAutoRegistration?: boolean;
  /**
   * istiod's `PILOT_WORKLOAD_ENTRY_GRACE_PERIOD`: how long an auto-registered WorkloadEntry outlives
   * the last stream of its proxy. Default 10 000 ms.
   */
  readonly workloadEntryGracePeriodMs?: number;
  /** istiod's `ISTIO_WORKLOAD_ENTRY_VALIDATE_IDENTITY`; default true. */
  readonly validateWorkloadEntryIdentity?: boolean;
  /** Written to `istio.io/workloadController`, where istiod writes its pod name; default `localmesh`. */
  readonly instanceId?: string;
  /**
   * Serves the registered WorkloadEntries read-only over HTTP on 127.0.0.1 at this port (0 =
   * ephemeral), Kubernetes-API style (see `WorkloadEntryApiServer`). Default: not served.
   */
  readonly httpPort?: number;
}

/** A NameTable a node acknowledged: the node, its ACK, and the table it was sent. */
export interface NameTableAck {
  readonly node: AdsNodeRecord;
  readonly request: AdsRequestRecord;
  /** Undefined if the acknowledged response carried no table (a Delta response with no change). */
  readonly table: NameTable | undefined;
}

export interface IssuedCertificate {
  /** The SPIFFE URI certified, `spiffe://<td>/ns/<ns>/sa/<sa>`. */
  readonly identity: string;
  readonly authMethod: AuthMethod;
  /** Upper-case hex. */
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly certPem: string;
}

/** One CreateCertificate call, successful or not. */
export interface CaCallRecord {
  readonly code: status;
  readonly details: string;
  readonly identity?: string;
  readonly authMethod?: AuthMethod;
  /** `clusterid` metadata ('' if absent). */
  readonly clusterId: string;
  readonly requestedTtlSeconds: number;
  /** Request metadata (the agent sends `{"CertSigner": ...}`). */
  readonly metadata: Readonly<Record<string, JsonLike>>;
  readonly at: Date;
}

interface Materials {
  readonly ca: CaAuthority;
  readonly tokens: TokenAuthority;
  readonly authenticator: Authenticator;
  readonly serving: ServingCertificate;
}

interface CsrRejection {
  readonly code: status;
  readonly details: string;
}

function statusError(code: status, details: string): Partial<grpc.StatusObject> & Error {
  return Object.assign(new Error(details), { code, details });
}

function silentLogger(): Logger {
  const log: Logger = {
    scopeName: 'localmesh',
    debug: () => undefined,
    info: () => undefined,
    warn: () => undefined,
    error: () => undefined,
    isEnabled: () => false,
    scope: () => log,
  };
  return log;
}

/**
 * A small control plane for development and tests, NOT for production: it speaks istiod's real
 * protocols on one TLS port, as istiod does on 15012:
 *
 * - `istio.v1.auth.IstioCertificateService/CreateCertificate`, authenticating the caller by a client
 *   certificate it issued or by a JWT it signed (with `ClusterID` metadata), and certifying that
 *   identity whatever the CSR asks for;
 * - `envoy.service.discovery.v3.AggregatedDiscoveryService`, SotW and Delta, serving whatever
 *   resources a test sets, or the listeners, routes, clusters and endpoints istiod would generate
 *   for services named in `setGrpcServices`, or NameTables built per node, as istiod's NDS does,
 *   from ServiceEntries and WorkloadGroups applied as YAML (`applyYaml`, `loadYamlFile`), with
 *   istiod's address auto-allocation (see `MeshConfigStore`);
 * - istiod's WorkloadEntry auto-registration and health: a proxy connecting with node metadata
 *   `AUTO_REGISTER_GROUP` gets a WorkloadEntry from its WorkloadGroup, whose `Healthy` condition its
 *   health reports set, and which is deleted when it stays disconnected past the grace period (see
 *   `WorkloadEntryRegistry`); `workloadEntries` lists them, and with `httpPort` they are served
 *   read-only, Kubernetes-API style, at `httpAddress`.
 *
 * Its root CA is generated (or taken from `state`) once per instance, so `close()` then `start()`
 * serves the same root on the same port, as a restarted istiod would. Tests steer it with
 * `issueToken`, `setCaAvailable`, `rejectNextCsr`, `setResources`, `setGrpcServices`, `applyYaml`,
 * `setKubernetesServices`, `dropStreams` and the `waitFor*` methods; pending waits are rejected by
 * `close()`. With `insecure: true` it serves only ADS, in plaintext, to anyone.
 */
export class LocalControlPlane implements Component {
  readonly name = 'localmesh';
  readonly trustDomain: string;
  readonly clusterId: string;
  readonly #host: string;
  readonly #initialPort: number;
  readonly #maxCertTtlSeconds: number;
  readonly #serverNames: readonly string[];
  readonly #log: Logger;
  readonly #schema: ProtoSchema;
  readonly #rootKeyAlgorithm: RootKeyAlgorithm;
  readonly #state: LocalControlPlaneState | undefined;
  readonly #clock: Clock;
  readonly #isInsecure: boolean;
  #resourceSchema: ResourceSchema | undefined;
  readonly #waiters = new Waiters();
  readonly #ads: AdsServer;
  readonly #issued: IssuedCertificate[] = [];
  readonly #caCalls: CaCallRecord[] = [];
  readonly #csrRejections: CsrRejection[] = [];
  readonly #meshConfig: MeshConfigStore;
  readonly #workloadEntries: WorkloadEntryRegistry;
  readonly #httpPort: number | undefined;
  readonly #workloadEntryApi: WorkloadEntryApiServer;
  #materials?: Promise<Materials>;
  #resolved?: Materials;
  #boundPort?: number;
  #server?: grpc.Server;
  #starting?: Promise<void>;
  #closed?: Promise<void>;
  #isCaAvailable = true;

  constructor(options: LocalControlPlaneOptions = {}) {
    this.#host = options.host ?? '127.0.0.1';
    this.#initialPort = options.port ?? 0;
    this.trustDomain = options.trustDomain ?? 'cluster.local';
    this.clusterId = options.clusterId ?? 'Kubernetes';
    this.#maxCertTtlSeconds = options.maxCertTtlSeconds ?? DEFAULT_MAX_CERT_TTL_SECONDS;
    this.#serverNames = options.serverNames ?? DEFAULT_SERVER_NAMES;
    this.#log = options.log?.scope('localmesh') ?? silentLogger();
    this.#schema = options.schema ?? new ProtoSchema();
    this.#rootKeyAlgorithm = options.rootKeyAlgorithm ?? 'RSA';
    this.#state = options.state;
    this.#clock = options.clock ?? systemClock;
    this.#isInsecure = options.insecure ?? false;
    this.#resourceSchema = options.resourceSchema;
    this.#meshConfig = new MeshConfigStore({
      ...(options.ipv4AutoallocatePrefix !== undefined ? { ipv4Prefix: options.ipv4AutoallocatePrefix } : {}),
      ...(options.ipv6AutoallocatePrefix !== undefined ? { ipv6Prefix: options.ipv6AutoallocatePrefix } : {}),
      onChange: (change) => this.#onMeshConfigChange(change),
    });
    const workloadEntries = new WorkloadEntryRegistry({
      log: this.#log.scope('wle'),
      clock: this.#clock,
      workloadGroup: (namespace, name) => this.#meshConfig.workloadGroup(namespace, name),
      workloadGroups: () => this.#meshConfig.workloadGroups,
      onChange: () => this.#waiters.notify(),
      instanceId: options.instanceId ?? 'localmesh',
      ...(options.workloadEntryGracePeriodMs !== undefined ? { gracePeriodMs: options.workloadEntryGracePeriodMs } : {}),
      ...(options.validateWorkloadEntryIdentity !== undefined ? { validateIdentity: options.validateWorkloadEntryIdentity } : {}),
      ...(options.workloadEntryAutoRegistration !== undefined ? { isEnabled: options.workloadEntryAutoRegistration } : {}),
    });
    this.#workloadEntries = workloadEntries;
    this.#ads = new AdsServer({
      log: this.#log,
      onChange: () => this.#waiters.notify(),
      encode: { sotw: (r) => this.#schema.discoveryResponse.encode(r), delta: (r) => this.#schema.deltaDiscoveryResponse.encode(r) },
      hooks: {
        onConnect: (node) => workloadEntries.onConnect(node),
        onDisconnect: (node) => workloadEntries.onDisconnect(node),
        onHealthReport: (node, errorDetail) => workloadEntries.onHealthReport(node, errorDetail),
      },
    });
    this.#httpPort = options.httpPort;
    this.#workloadEntryApi = new WorkloadEntryApiServer({
      log: this.#log,
      source: {
        get workloadEntries() {
          return workloadEntries.entries;
        },
        get workloadEntriesVersion() {
          return workloadEntries.resourceVersion;
        },
      },
    });
  }

  /** The bound port; stays the same across restarts. */
  get port(): number {
    if (this.#boundPort === undefined) throw new Error('local control plane has not been started');
    return this.#boundPort;
  }

  /** `localhost:<port>`: the agent then verifies the server as `istiod.istio-system.svc`, as with istiod. */
  get address(): string {
    return `localhost:${this.port}`;
  }

  get isServing(): boolean {
    return this.#server !== undefined;
  }

  /** Plaintext and unauthenticated, without a CA (`insecure` option). */
  get isInsecure(): boolean {
    return this.#isInsecure;
  }

  /** The root certificate (PEM); available once `start()` (or `issueToken()`) has run. */
  get rootCertPem(): string {
    if (this.#isInsecure) throw new Error('an insecure local control plane has no CA and serves no certificate');
    if (!this.#resolved) throw new Error('local control plane has not been started');
    return this.#resolved.ca.rootCertPem;
  }

  exportState(): LocalControlPlaneState {
    if (!this.#resolved) throw new Error('local control plane has not been started');
    return { ...this.#resolved.ca.exportState(), tokenKeyPem: this.#resolved.tokens.exportKeyPem() };
  }

  async start(signal?: AbortSignal): Promise<void> {
    if (this.#server || this.#starting) throw new Error('local control plane is already started');
    // Both fields change before the first await, so a close() racing this start sees it and waits.
    const previousClose = this.#closed;
    this.#closed = undefined;
    const starting = (async () => {
      await previousClose;
      await this.#listen(signal);
    })();
    this.#starting = starting;
    try {
      await starting;
    } finally {
      if (this.#starting === starting) this.#starting = undefined;
    }
  }

  close(): Promise<void> {
    return (this.#closed ??= this.#shutdown());
  }

  // ---- CA test controls ----

  /** A service-account JWT this control plane accepts (audience `istio-ca` unless overridden). */
  async issueToken(request: TokenRequest): Promise<string> {
    const { tokens } = await this.#ensureMaterials();
    return tokens.issue(request, this.#now());
  }

  /** While false, CreateCertificate fails with UNAVAILABLE. */
  setCaAvailable(isAvailable: boolean): void {
    this.#isCaAvailable = isAvailable;
  }

  /** Fails the next authenticated CreateCertificate with `code` (default INTERNAL). Calls queue up. */
  rejectNextCsr(code: status = status.INTERNAL, details = 'CSR signing error (rejected by test control)'): void {
    this.#csrRejections.push({ code, details });
  }

  get issued(): readonly IssuedCertificate[] {
    return this.#issued;
  }

  get caCalls(): readonly CaCallRecord[] {
    return this.#caCalls;
  }

  /** Resolves with the issuance record once at least `count` certificates have been issued. */
  waitForIssued(count: number, timeoutMs = DEFAULT_WAIT_MS): Promise<IssuedCertificate[]> {
    return this.#waiters.wait(
      () => (this.#issued.length >= count ? [...this.#issued] : undefined),
      timeoutMs,
      `${count} issued certificate(s) (have ${this.#issued.length})`,
    );
  }

  // ---- ADS test controls ----

  /** Replaces the resources of one type and pushes them to every stream subscribed to it. */
  setResources(typeUrl: string, resources: readonly XdsResource[]): void {
    this.#ads.setResources(typeUrl, resources);
  }

  getResources(typeUrl: string): XdsResource[] | undefined {
    return this.#ads.getResources(typeUrl);
  }

  /**
   * Serves `services` to proxyless gRPC clients as istiod does: replaces every Listener,
   * RouteConfiguration, Cluster and ClusterLoadAssignment with the ones built for them (see
   * `buildGrpcServiceResources`) and pushes them, clusters and endpoints first, to subscribed
   * streams. A client then dials `xds:///<host>:<port>`. `[]` withdraws them all.
   */
  setGrpcServices(services: readonly GrpcService[]): void {
    this.#resourceSchema ??= new ResourceSchema();
    const resources = buildGrpcServiceResources(services, this.#resourceSchema);
    for (const [typeUrl, ofType] of resources) this.#ads.setResources(typeUrl, ofType);
    this.#log.info('grpc services set', { services: services.map((service) => `${service.host}:${service.port}`) });
  }

  // ---- mesh configuration (ServiceEntry, WorkloadGroup) and NameTables ----

  /**
   * Applies Istio YAML as `kubectl apply -f` would (see `parseMeshYaml`): ServiceEntries and
   * WorkloadGroups are created or updated, ServiceEntry hosts get auto-allocated addresses, and
   * every connected proxy subscribed to the NameTable gets its new table. The first call (or
   * `loadYamlFile`, `deleteYaml`, `setKubernetesServices`, `serveNameTables`) makes this control
   * plane serve NameTables generated per node, replacing any set with `setResources`.
   * Throws `ConfigErrors` naming file, line, document and field of every problem; nothing is applied then.
   */
  applyYaml(text: string, fileName?: string): MeshConfigChange {
    const change = this.#meshConfig.applyYaml(text, fileName !== undefined ? { fileName } : {});
    this.#log.info('mesh config applied', { file: fileName, ...change });
    this.serveNameTables();
    return change;
  }

  /** Reads `path` and applies it (`applyYaml`); a file that cannot be read is a `ConfigErrors` too. */
  async loadYamlFile(path: string): Promise<MeshConfigChange> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      throw new ConfigErrors([new ConfigError({ file: path }, `cannot read: ${errorMessage(err)}`)]);
    }
    return this.applyYaml(text, path);
  }

  /** Deletes the resources the YAML names, as `kubectl delete -f` (their addresses are not reused). */
  deleteYaml(text: string, fileName?: string): MeshConfigChange {
    const change = this.#meshConfig.deleteYaml(text, fileName !== undefined ? { fileName } : {});
    this.#log.info('mesh config deleted', { file: fileName, ...change });
    this.serveNameTables();
    return change;
  }

  /** Declares the Kubernetes Services istiod would know (none by default) and pushes NameTables. */
  setKubernetesServices(services: readonly KubernetesService[]): void {
    this.#meshConfig.setKubernetesServices(services);
    this.serveNameTables();
  }

  /** Starts serving NameTables built per node from the mesh configuration (idempotent). */
  serveNameTables(): void {
    if (this.#ads.generatedTypes.includes(NAME_TABLE_TYPE_URL)) return;
    this.#ads.setResourceGenerator(NAME_TABLE_TYPE_URL, (node) => [{ name: '', value: this.#schema.nameTable.encode(this.nameTableFor(node)) }]);
  }

  /** The store behind `applyYaml`; changes made through it directly are pushed too. */
  get meshConfig(): MeshConfigStore {
    return this.#meshConfig;
  }

  get serviceEntries(): readonly ServiceEntry[] {
    return this.#meshConfig.serviceEntries;
  }

  get workloadGroups(): readonly WorkloadGroup[] {
    return this.#meshConfig.workloadGroups;
  }

  workloadGroup(namespace: string, name: string): WorkloadGroup | undefined {
    return this.#meshConfig.workloadGroup(namespace, name);
  }

  /** Addresses auto-allocated to `host` (IPv4, then IPv6); see `MeshConfigStore.allocatedAddresses`. */
  allocatedAddresses(host: string, namespace?: string): string[] {
    return this.#meshConfig.allocatedAddresses(host, namespace);
  }

  /** The NameTable this control plane serves to a node (an ADS node record, or the fields that matter). */
  nameTableFor(node: AdsNodeRecord | NameTableProxy): NameTable {
    const proxy = 'ipFamilies' in node ? node : nameTableProxyFromNode(node);
    return buildNameTable(this.#meshConfig, proxy);
  }

  /**
   * Resolves once the latest NameTable sent on an open stream of a node matching `predicate`
   * (default: any) has been ACKed, with the table that was acknowledged.
   */
  waitForNameTableAck(predicate: (node: AdsNodeRecord) => boolean = () => true, timeoutMs = DEFAULT_WAIT_MS): Promise<NameTableAck> {
    const find = (): NameTableAck | undefined => {
      for (const node of this.#ads.connectedNodes) {
        if (!predicate(node)) continue;
        const latest = this.#ads.responses.findLast((response) => response.stream === node.stream && response.typeUrl === NAME_TABLE_TYPE_URL);
        if (!latest) continue;
        const request = this.#ads.requests.find(
          (r) => r.isAck && r.stream === node.stream && r.typeUrl === NAME_TABLE_TYPE_URL && r.nonce === latest.nonce,
        );
        if (request) return { node, request, table: this.#decodeNameTable(latest) };
      }
      return undefined;
    };
    return this.#waiters.wait(find, timeoutMs, 'ACK of a NameTable');
  }

  #decodeNameTable(response: AdsResponseRecord): NameTable | undefined {
    const value =
      response.kind === 'sotw'
        ? this.#schema.discoveryResponse.decode(response.bytes).resources[0]?.value
        : this.#schema.deltaDiscoveryResponse.decode(response.bytes).resources[0]?.resource?.value;
    return value ? this.#schema.nameTable.decode(value) : undefined;
  }

  #onMeshConfigChange(change: MeshConfigChange): void {
    // As istiod's NDS generator, WorkloadGroup changes do not touch NameTables.
    if (change.serviceEntries || change.kubernetesServices) this.#ads.regenerate(NAME_TABLE_TYPE_URL);
    if (change.workloadGroups) this.#workloadEntries.syncWorkloadGroups();
    this.#waiters.notify();
  }

  // ---- WorkloadEntry auto-registration ----

  /**
   * The WorkloadEntries registered for proxies that connected with node metadata
   * `AUTO_REGISTER_GROUP`, in creation order, as istiod's auto-registration writes them (see
   * `WorkloadEntryRegistry`). Each is a frozen snapshot, replaced on every change.
   */
  get workloadEntries(): readonly WorkloadEntry[] {
    return this.#workloadEntries.entries;
  }

  workloadEntry(namespace: string, name: string): WorkloadEntry | undefined {
    return this.#workloadEntries.entry(namespace, name);
  }

  /** What auto-registration did, in order: registrations, refusals, disconnections, deletions, health updates. */
  get workloadEntryEvents(): readonly WorkloadEntryEvent[] {
    return this.#workloadEntries.events;
  }

  /** Resolves with the first current WorkloadEntry matching `predicate`, once there is one. */
  waitForWorkloadEntry(predicate: (entry: WorkloadEntry) => boolean = () => true, timeoutMs = DEFAULT_WAIT_MS): Promise<WorkloadEntry> {
    return this.#waiters.wait(() => this.#workloadEntries.entries.find(predicate), timeoutMs, 'a matching WorkloadEntry');
  }

  /** Resolves with the earliest auto-registration event matching `predicate`. */
  waitForWorkloadEntryEvent(predicate: (event: WorkloadEntryEvent) => boolean, timeoutMs = DEFAULT_WAIT_MS): Promise<WorkloadEntryEvent> {
    return this.#waiters.wait(() => this.#workloadEntries.events.find(predicate), timeoutMs, 'a matching WorkloadEntry event');
  }

  /** The read-only WorkloadEntry API (`httpPort` option), `http://127.0.0.1:<port>`; throws if not serving. */
  get httpAddress(): string {
    return this.#workloadEntryApi.address;
  }

  /** Every node that opened an ADS stream, in order (including streams since closed). */
  get nodes(): readonly AdsNodeRecord[] {
    return this.#ads.nodes;
  }

  /** Nodes of the ADS streams open now. */
  get connectedNodes(): readonly AdsNodeRecord[] {
    return this.#ads.connectedNodes;
  }

  get requests(): readonly AdsRequestRecord[] {
    return this.#ads.requests;
  }

  get responses(): readonly AdsResponseRecord[] {
    return this.#ads.responses;
  }

  /** Ends every ADS stream with UNAVAILABLE; returns how many were open. */
  dropStreams(): number {
    return this.#ads.dropStreams();
  }

  /** Resolves with the earliest recorded ADS request matching `predicate`. */
  waitForRequest(predicate: (request: AdsRequestRecord) => boolean, timeoutMs = DEFAULT_WAIT_MS): Promise<AdsRequestRecord> {
    return this.#waiters.wait(() => this.#ads.requests.find(predicate), timeoutMs, 'a matching ADS request');
  }

  /** Resolves with the earliest recorded node matching `predicate` (default: any). */
  waitForNode(predicate: (node: AdsNodeRecord) => boolean = () => true, timeoutMs = DEFAULT_WAIT_MS): Promise<AdsNodeRecord> {
    return this.#waiters.wait(() => this.#ads.nodes.find(predicate), timeoutMs, 'a matching ADS node');
  }

  /** Resolves once the latest response of `typeUrl` has been ACKed on its stream. */
  waitForAck(typeUrl: string, timeoutMs = DEFAULT_WAIT_MS): Promise<AdsRequestRecord> {
    return this.#waitForReply(typeUrl, 'isAck', timeoutMs);
  }

  /** Resolves once the latest response of `typeUrl` has been NACKed on its stream. */
  waitForNack(typeUrl: string, timeoutMs = DEFAULT_WAIT_MS): Promise<AdsRequestRecord> {
    return this.#waitForReply(typeUrl, 'isNack', timeoutMs);
  }

  #waitForReply(typeUrl: string, kind: 'isAck' | 'isNack', timeoutMs: number): Promise<AdsRequestRecord> {
    const find = (): AdsRequestRecord | undefined => {
      const latest = this.#ads.responses.findLast((response) => response.typeUrl === typeUrl);
      if (!latest) return undefined;
      return this.#ads.requests.find((r) => r[kind] && r.stream === latest.stream && r.typeUrl === typeUrl && r.nonce === latest.nonce);
    };
    return this.#waiters.wait(find, timeoutMs, `${kind === 'isAck' ? 'ACK' : 'NACK'} of ${typeUrl}`);
  }

  // ---- internals ----

  #now(): Date {
    return new Date(this.#clock.now());
  }

  #ensureMaterials(): Promise<Materials> {
    this.#materials ??= this.#createMaterials().then(
      (materials) => (this.#resolved = materials),
      (err: unknown) => {
        this.#materials = undefined;
        throw err;
      },
    );
    return this.#materials;
  }

  async #createMaterials(): Promise<Materials> {
    const now = this.#now();
    const ca = this.#state
      ? await CaAuthority.fromState(this.#state)
      : await CaAuthority.create({ trustDomain: this.trustDomain, keyAlgorithm: this.#rootKeyAlgorithm, now });
    const tokens = await TokenAuthority.create(this.#state?.tokenKeyPem);
    const serving = await ca.issueServingCertificate({ dnsNames: this.#serverNames, ips: ['127.0.0.1', '::1'], now });
    const authenticator = new Authenticator({ ca, tokens, trustDomain: this.trustDomain, clusterId: this.clusterId });
    return { ca, tokens, authenticator, serving };
  }

  async #listen(signal: AbortSignal | undefined): Promise<void> {
    signal?.throwIfAborted();
    const server = new grpc.Server({ 'grpc.max_receive_message_length': -1, 'grpc.max_send_message_length': -1 });
    let credentials: grpc.ServerCredentials;
    let authenticate: (call: ServerDuplexStream<unknown, unknown>) => Promise<Caller>;
    if (this.#isInsecure) {
      credentials = grpc.ServerCredentials.createInsecure();
      authenticate = async () => ANONYMOUS_CALLER;
    } else {
      const materials = await this.#ensureMaterials();
      signal?.throwIfAborted();
      server.addService(this.#schema.caService, {
        CreateCertificate: (
          call: ServerUnaryCall<IstioCertificateRequest, IstioCertificateResponse>,
          callback: sendUnaryData<IstioCertificateResponse>,
        ) => {
          this.#createCertificate(materials, call, callback).catch((err: unknown) => {
            this.#log.error('CreateCertificate handler failed', { error: errorMessage(err) });
          });
        },
      });
      const provider = new StaticCertificateProvider(Buffer.from(materials.ca.rootCertPem), {
        certificate: Buffer.from(materials.serving.certPem),
        privateKey: Buffer.from(materials.serving.keyPem),
      });
      // One provider serves both roles; grpc-js's argument order for the two is easy to get wrong.
      credentials = grpc.experimental.createCertificateProviderServerCredentials(provider, provider, false);
      authenticate = (call) => materials.authenticator.authenticate(call, this.#now());
    }
    // The ADS server writes responses it has already encoded: serialize passes those bytes through.
    const ads = this.#schema.adsService;
    const passBytes =
      <T>(encode: (message: T) => Buffer) =>
      (message: T): Buffer =>
        Buffer.isBuffer(message) ? message : encode(message);
    const adsService = {
      StreamAggregatedResources: { ...ads.StreamAggregatedResources, responseSerialize: passBytes(ads.StreamAggregatedResources.responseSerialize) },
      DeltaAggregatedResources: { ...ads.DeltaAggregatedResources, responseSerialize: passBytes(ads.DeltaAggregatedResources.responseSerialize) },
    };
    server.addService(adsService, {
      StreamAggregatedResources: (call: ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>) => this.#serveAds(authenticate, 'sotw', call),
      DeltaAggregatedResources: (call: ServerDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>) =>
        this.#serveAds(authenticate, 'delta', call),
    });
    const port = this.#boundPort ?? this.#initialPort;
    const target = `${this.#host.includes(':') ? `[${this.#host}]` : this.#host}:${port}`;
    let boundPort: number;
    try {
      boundPort = await new Promise<number>((resolve, reject) =>
        server.bindAsync(target, credentials, (err, bound) => (err ? reject(err) : resolve(bound))),
      );
    } catch (err) {
      server.forceShutdown();
      throw new AgentError('SOCKET_LISTEN_FAILED', `local control plane: failed to listen on ${target}: ${errorMessage(err)}`, { cause: err });
    }
    this.#server = server;
    this.#boundPort = boundPort;
    if (this.#httpPort !== undefined) {
      try {
        await this.#workloadEntryApi.listen(this.#httpPort);
      } catch (err) {
        await this.#stopServer();
        throw err;
      }
    }
    this.#workloadEntries.start();
    this.#log.info('local control plane listening', {
      address: `${this.#host}:${boundPort}`,
      trustDomain: this.trustDomain,
      clusterId: this.clusterId,
      insecure: this.#isInsecure,
    });
    if (signal?.aborted) {
      await this.#stopServer();
      signal.throwIfAborted();
    }
  }

  async #shutdown(): Promise<void> {
    await this.#starting?.catch(() => undefined);
    this.#waiters.rejectAll(new Error('local control plane closed'));
    await this.#stopServer();
  }

  async #stopServer(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    this.#ads.dropStreams('local control plane shutting down');
    // After the drop: entries it disconnected keep their disconnectedAt, and a later start() arms their deletion.
    this.#workloadEntries.stop();
    await this.#workloadEntryApi.close();
    if (!server) return;
    await new Promise<void>((resolve) => {
      // tryShutdown's callback fires once listeners and sessions are gone; forceShutdown makes that
      // immediate instead of waiting for clients, whose ADS streams would never end by themselves.
      server.tryShutdown(() => resolve());
      server.forceShutdown();
    });
    this.#log.info('local control plane stopped', { port: this.#boundPort });
  }

  #serveAds(
    authenticate: (call: ServerDuplexStream<unknown, unknown>) => Promise<Caller>,
    kind: 'sotw' | 'delta',
    call: ServerDuplexStream<DiscoveryRequest, DiscoveryResponse> | ServerDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>,
  ): void {
    this.#authenticateAds(authenticate, kind, call).catch((err: unknown) => {
      this.#log.error('ADS handler failed', { error: errorMessage(err) });
      call.emit('error', statusError(status.INTERNAL, errorMessage(err)));
    });
  }

  async #authenticateAds(
    authenticate: (call: ServerDuplexStream<unknown, unknown>) => Promise<Caller>,
    kind: 'sotw' | 'delta',
    call: ServerDuplexStream<DiscoveryRequest, DiscoveryResponse> | ServerDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>,
  ): Promise<void> {
    let caller;
    try {
      caller = await authenticate(call);
    } catch (err) {
      const details = err instanceof AuthenticationError ? err.message : `authentication error: ${errorMessage(err)}`;
      this.#log.debug('ads stream rejected', { error: details });
      call.emit('error', statusError(err instanceof AuthenticationError ? status.UNAUTHENTICATED : status.INTERNAL, details));
      return;
    }
    if (call.cancelled || !this.#server) {
      if (!call.cancelled) call.emit('error', statusError(status.UNAVAILABLE, 'local control plane shutting down'));
      return;
    }
    if (kind === 'sotw') this.#ads.serveSotw(call as ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>, caller);
    else this.#ads.serveDelta(call as ServerDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>, caller);
  }

  async #createCertificate(
    materials: Materials,
    call: ServerUnaryCall<IstioCertificateRequest, IstioCertificateResponse>,
    callback: sendUnaryData<IstioCertificateResponse>,
  ): Promise<void> {
    const request = call.request;
    const now = this.#now();
    const base = {
      clusterId: metadataString(call.metadata, CLUSTER_ID_METADATA) ?? '',
      requestedTtlSeconds: request.validity_duration,
      metadata: fromStruct(request.metadata),
      at: now,
    };
    const fail = (code: status, details: string, caller?: { identity: string; authMethod: AuthMethod }): void => {
      this.#caCalls.push({ ...base, ...caller, code, details });
      this.#log.debug('CreateCertificate failed', { code: status[code], error: details, identity: caller?.identity });
      this.#waiters.notify();
      callback(statusError(code, details));
    };

    if (!this.#isCaAvailable) return fail(status.UNAVAILABLE, 'CA is unavailable (LocalControlPlane.setCaAvailable(false))');
    let identity;
    let authMethod: AuthMethod;
    try {
      ({ identity, authMethod } = await materials.authenticator.authenticate(call, now));
    } catch (err) {
      if (err instanceof AuthenticationError) return fail(status.UNAUTHENTICATED, err.message);
      return fail(status.INTERNAL, `authentication error: ${errorMessage(err)}`);
    }
    const caller = { identity: spiffeUri(identity), authMethod };
    const rejection = this.#csrRejections.shift();
    if (rejection) return fail(rejection.code, rejection.details, caller);

    const requested = request.validity_duration > 0 ? request.validity_duration : DEFAULT_CERT_TTL_SECONDS;
    const ttlSeconds = Math.min(requested, this.#maxCertTtlSeconds);
    let leaf;
    try {
      leaf = await materials.ca.signCsr({ csrPem: request.csr, identity, ttlSeconds, now });
    } catch (err) {
      if (err instanceof CsrError) return fail(status.INVALID_ARGUMENT, err.message, caller);
      return fail(status.INTERNAL, `CSR signing error: ${errorMessage(err)}`, caller);
    }
    this.#issued.push({ ...caller, serial: leaf.serial, notBefore: leaf.notBefore, notAfter: leaf.notAfter, certPem: leaf.certPem });
    this.#caCalls.push({ ...base, ...caller, code: status.OK, details: 'OK' });
    this.#log.info('certificate issued', { identity: caller.identity, authMethod, serial: leaf.serial, notAfter: leaf.notAfter.toISOString() });
    this.#waiters.notify();
    callback(null, { cert_chain: [leaf.certPem, materials.ca.rootCertPem] });
  }
}
