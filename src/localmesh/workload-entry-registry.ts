import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { status } from '@grpc/grpc-js';
import type { Clock } from '../clock.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log/index.js';
import type { JsonLike } from '../proto/index.js';
import type { AdsNodeRecord, AdsStreamRejection } from './ads-server.js';
import { parseSpiffeUri, type SpiffeIdentity } from './ca-authority.js';
import type { WorkloadGroup } from './mesh-resources.js';
import { deepFreeze } from '../deep-freeze.js';
import { resourceKey } from './mesh-resources.js';

export const WORKLOAD_ENTRY_API_VERSION = 'networking.istio.io/v1';

/** istiod's `PILOT_WORKLOAD_ENTRY_GRACE_PERIOD` default. */
export const DEFAULT_WORKLOAD_ENTRY_GRACE_PERIOD_MS = 10_000;

// Annotation and label names, spelled as in istio.io/api and pilot/pkg/model.
export const AUTO_REGISTRATION_GROUP_ANNOTATION = 'istio.io/autoRegistrationGroup';
export const WORKLOAD_CONTROLLER_ANNOTATION = 'istio.io/workloadController';
export const CONNECTED_AT_ANNOTATION = 'istio.io/connectedAt';
export const DISCONNECTED_AT_ANNOTATION = 'istio.io/disconnectedAt';
export const HEALTH_CHECKS_ENABLED_ANNOTATION = 'proxy.istio.io/health-checks-enabled';
export const HEALTHY_CONDITION = 'Healthy';
/** Node label istiod derives from the locality; `/` is not allowed in a label value, so entries drop it. */
const LOCALITY_LABEL = 'istio-locality';
const TUNNEL_LABEL = 'networking.istio.io/tunnel';
/** Kubernetes caps object names at 253 characters; istiod keeps the end of a longer generated name. */
const MAX_NAME_LENGTH = 253;

export interface OwnerReference {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  readonly uid: string;
  readonly controller: boolean;
}

/** istio.meta.v1alpha1.IstioCondition as it appears in a resource's status. */
export interface IstioCondition {
  readonly type: string;
  /** `True` or `False`. */
  readonly status: string;
  /** RFC 3339. */
  readonly lastProbeTime: string;
  readonly lastTransitionTime: string;
  readonly message?: string;
}

/** A WorkloadEntry spec as the API server returns it: empty fields are left out. */
export interface WorkloadEntryObjectSpec {
  readonly address: string;
  readonly ports?: Readonly<Record<string, number>>;
  readonly labels?: Readonly<Record<string, string>>;
  readonly network?: string;
  readonly locality?: string;
  readonly weight?: number;
  readonly serviceAccount?: string;
}

/** A `networking.istio.io/v1` WorkloadEntry, shaped as `kubectl get -o json` shows it. Snapshots are frozen. */
export interface WorkloadEntry {
  readonly apiVersion: typeof WORKLOAD_ENTRY_API_VERSION;
  readonly kind: 'WorkloadEntry';
  readonly metadata: {
    readonly name: string;
    readonly namespace: string;
    readonly uid: string;
    readonly resourceVersion: string;
    /** RFC 3339, whole seconds. */
    readonly creationTimestamp: string;
    readonly labels: Readonly<Record<string, string>>;
    readonly annotations: Readonly<Record<string, string>>;
    readonly ownerReferences: readonly OwnerReference[];
  };
  readonly spec: WorkloadEntryObjectSpec;
  /** Absent until the first health report, as istiod leaves it. */
  readonly status?: { readonly conditions: readonly IstioCondition[] };
}

export type WorkloadEntryEventKind =
  /** Created from the group on a connection (or late, when the group appeared). */
  | 'registered'
  /** An existing entry taken over by a new connection: connectedAt set, disconnectedAt removed. */
  | 'reconnected'
  /** The connection was refused; `code` and `details` are the status its stream ended with. */
  | 'rejected'
  /** AUTO_REGISTER_GROUP without an IP or a namespace: no entry, the stream goes on. */
  | 'skipped'
  /** The proxy's last stream ended: disconnectedAt set, deletion scheduled after the grace period. */
  | 'disconnected'
  /** Removed: not reconnected within the grace period, or its WorkloadGroup was deleted. */
  | 'deleted'
  /** A health report set the Healthy condition. */
  | 'health';

export interface WorkloadEntryEvent {
  readonly kind: WorkloadEntryEventKind;
  readonly namespace: string;
  /** The entry's name ('' when none could be derived). */
  readonly name: string;
  /** The ADS node id ('' for events not caused by a connection). */
  readonly nodeId: string;
  readonly stream?: number;
  readonly code?: status;
  readonly details?: string;
  readonly at: Date;
}

export interface WorkloadEntryRegistryOptions {
  readonly log: Logger;
  readonly clock: Clock;
  readonly workloadGroup: (namespace: string, name: string) => WorkloadGroup | undefined;
  readonly workloadGroups: () => readonly WorkloadGroup[];
  /** Called after every change to entries or events. */
  readonly onChange: () => void;
  /** The `istio.io/workloadController` value: istiod writes its instance (pod) name. */
  readonly instanceId: string;
  /** `PILOT_WORKLOAD_ENTRY_GRACE_PERIOD`; default 10 s. */
  readonly gracePeriodMs?: number;
  /** `ISTIO_WORKLOAD_ENTRY_VALIDATE_IDENTITY`; default true. */
  readonly validateIdentity?: boolean;
  /** `PILOT_ENABLE_WORKLOAD_ENTRY_AUTOREGISTRATION`; default true. */
  readonly isEnabled?: boolean;
}

/** What auto-registration reads from a node, as istiod's model.Proxy has it. */
interface ProxyInfo {
  readonly nodeId: string;
  /** The third part of the node id, as istiod names the proxy in messages. */
  readonly id: string;
  readonly namespace: string;
  readonly group: string;
  readonly ips: readonly string[];
  readonly network: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly hasReadinessProbe: boolean;
  readonly isHboneEnabled: boolean;
  /** `region/zone/subzone` from the Envoy node's locality; undefined when the node sent none. */
  readonly locality: string | undefined;
  readonly identity: SpiffeIdentity | undefined;
}

/** One ADS stream of a proxy using auto-registration. */
interface Connection {
  readonly stream: number;
  readonly proxy: ProxyInfo;
  /** istiod's proxyKey: streams sharing it are one proxy, which is disconnected once all are gone. */
  readonly proxyKey: string;
  readonly entryName: string;
  readonly connectedAt: number;
}

type Writable<T> = { -readonly [K in keyof T]: T[K] };



/** Go's `time.RFC3339Nano` of a UTC time: fraction digits without trailing zeros, none when zero. */
export function formatRfc3339Nano(ms: number): string {
  const iso = new Date(ms).toISOString();
  const [seconds = iso, fraction = ''] = iso.slice(0, -1).split('.');
  const trimmed = fraction.replace(/0+$/, '');
  return `${seconds}${trimmed ? `.${trimmed}` : ''}Z`;
}

function parseTime(text: string | undefined): number | undefined {
  if (!text) return undefined;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : ms;
}

/** Go's strconv.ParseBool; anything it rejects counts as false, as istiod's callers treat it. */
function parseGoBool(value: string | undefined): boolean {
  return value !== undefined && ['1', 't', 'T', 'true', 'TRUE', 'True'].includes(value);
}

/** A UUID-shaped uid derived from its inputs, so runs are reproducible. */
function stableUid(...parts: readonly (string | number)[]): string {
  const hex = createHash('sha256').update(parts.join('\0')).digest('hex');
  const variant = ((parseInt(hex.charAt(16), 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

function stringOf(value: JsonLike | undefined): string {
  return typeof value === 'string' ? value : '';
}

function stringMap(value: JsonLike | undefined): Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return {};
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) if (typeof v === 'string') out[k] = v;
  return out;
}

function hasReadinessProbe(proxyConfig: JsonLike | undefined): boolean {
  if (typeof proxyConfig !== 'object' || proxyConfig === null || Array.isArray(proxyConfig)) return false;
  const probe = proxyConfig['readinessProbe'];
  return probe !== undefined && probe !== null;
}

/** istiod's model: INSTANCE_IPS when every one is an IP, else the IP in the node id. */
function proxyIps(metadata: Readonly<Record<string, JsonLike>>, idParts: readonly string[]): string[] {
  const raw = metadata['INSTANCE_IPS'];
  const listed = typeof raw === 'string' ? raw.split(',') : Array.isArray(raw) ? raw.map((ip) => (typeof ip === 'string' ? ip : '')) : [];
  if (listed.length > 0 && listed.every((ip) => isIP(ip) !== 0)) return listed;
  const fromId = idParts.length === 4 ? (idParts[1] ?? '') : '';
  return isIP(fromId) !== 0 ? [fromId] : [];
}

function localityString(locality: AdsNodeRecord['locality']): string | undefined {
  if (!locality) return undefined;
  if (locality.zone === '') return locality.region;
  if (locality.sub_zone === '') return `${locality.region}/${locality.zone}`;
  return `${locality.region}/${locality.zone}/${locality.sub_zone}`;
}

function proxyInfo(node: AdsNodeRecord): ProxyInfo {
  const { metadata } = node;
  const idParts = node.id.split('~');
  return {
    nodeId: node.id,
    id: idParts.length === 4 ? (idParts[2] ?? node.id) : node.id,
    namespace: stringOf(metadata['NAMESPACE']),
    group: stringOf(metadata['AUTO_REGISTER_GROUP']),
    ips: proxyIps(metadata, idParts),
    network: stringOf(metadata['NETWORK']),
    labels: stringMap(metadata['LABELS']),
    hasReadinessProbe: hasReadinessProbe(metadata['PROXY_CONFIG']),
    isHboneEnabled: parseGoBool(stringOf(metadata['ENABLE_HBONE'])) || metadata['ENABLE_HBONE'] === true,
    locality: localityString(node.locality),
    identity: node.peerIdentity ? parseSpiffeUri(node.peerIdentity) : undefined,
  };
}

/**
 * The name istiod gives an auto-registered entry: `<group>-<first IP, ':'→'-'>[-<network>]`, keeping
 * the last 253 characters. '' when the proxy has no group, IP or namespace (no registration).
 */
export function autoRegisteredEntryName(proxy: EntryNameSource): string {
  const name = untruncatedEntryName(proxy);
  return name.length > MAX_NAME_LENGTH ? name.slice(name.length - MAX_NAME_LENGTH) : name;
}

export interface EntryNameSource {
  /** Node metadata AUTO_REGISTER_GROUP. */
  readonly group: string;
  /** The proxy's IPs (INSTANCE_IPS); the first one names the entry. */
  readonly ips: readonly string[];
  /** Node metadata NAMESPACE. */
  readonly namespace: string;
  /** Node metadata NETWORK ('' for none). */
  readonly network: string;
}

function untruncatedEntryName(proxy: EntryNameSource): string {
  const [ip] = proxy.ips;
  if (proxy.group === '' || ip === undefined || proxy.namespace === '') return '';
  return [proxy.group, ip.replaceAll(':', '-'), ...(proxy.network !== '' ? [proxy.network] : [])].join('-');
}

/**
 * Whether istiod sends the entry's endpoint to proxies (`isHealthy` in its ServiceEntry registry): an
 * entry with `proxy.istio.io/health-checks-enabled: "true"` counts as unhealthy until a condition
 * `Healthy=True` says otherwise; other entries are always healthy.
 */
export function isWorkloadEntryHealthy(entry: WorkloadEntry): boolean {
  if (!parseGoBool(entry.metadata.annotations[HEALTH_CHECKS_ENABLED_ANNOTATION])) return true;
  const condition = entry.status?.conditions.find((c) => c.type === HEALTHY_CONDITION);
  return condition?.status === 'True';
}

class RegistrationError extends Error {
  constructor(
    readonly code: status,
    message: string,
  ) {
    super(message);
  }
}

/**
 * istiod's WorkloadEntry auto-registration controller (`pilot/pkg/autoregistration`) over an in-memory
 * store instead of the Kubernetes API:
 *
 * - a proxy connecting with node metadata AUTO_REGISTER_GROUP gets a WorkloadEntry built from the
 *   group's template, owned by the group, annotated with the controller and connection time; a proxy
 *   whose entry exists takes it over instead;
 * - the connection is refused when the group does not exist (FAILED_PRECONDITION), or when the
 *   caller's verified identity is not the entry's namespace and service account (istiod returns a
 *   plain error there, which gRPC sends as UNKNOWN);
 * - HealthInformation requests set the entry's `Healthy` condition;
 * - when the last stream of a proxy ends, the entry is marked disconnected and deleted unless the
 *   proxy reconnects within the grace period;
 * - a WorkloadGroup that appears registers the proxies of that group still connected (istiod's late
 *   registration); one that is deleted takes its entries with it, as Kubernetes' garbage collector
 *   does for owned objects.
 *
 * Not modelled: node metadata WORKLOAD_ENTRY (health for an entry that exists beforehand: there is no
 * way to declare one here) and istiod's periodic sweep for entries leaked by a crashed istiod.
 */
export class WorkloadEntryRegistry {
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #deps: WorkloadEntryRegistryOptions;
  readonly #gracePeriodMs: number;
  readonly #shouldValidateIdentity: boolean;
  readonly #isEnabled: boolean;
  readonly #entries = new Map<string, WorkloadEntry>();
  readonly #connections = new Map<number, Connection>();
  readonly #cleanups = new Map<string, AbortController>();
  /** uid of each WorkloadGroup seen, and how many times each name was created (for new uids). */
  readonly #groupUids = new Map<string, string>();
  readonly #groupIncarnations = new Map<string, number>();
  readonly #entryIncarnations = new Map<string, number>();
  readonly #events: WorkloadEntryEvent[] = [];
  #resourceVersion = 0;
  #isRunning = false;

  constructor(options: WorkloadEntryRegistryOptions) {
    this.#deps = options;
    this.#log = options.log;
    this.#clock = options.clock;
    this.#gracePeriodMs = options.gracePeriodMs ?? DEFAULT_WORKLOAD_ENTRY_GRACE_PERIOD_MS;
    this.#shouldValidateIdentity = options.validateIdentity ?? true;
    this.#isEnabled = options.isEnabled ?? true;
    if (!(this.#gracePeriodMs >= 0)) throw new TypeError(`workloadEntryGracePeriodMs: ${this.#gracePeriodMs} is not a duration`);
  }

  /** Entries in creation order. */
  get entries(): readonly WorkloadEntry[] {
    return [...this.#entries.values()];
  }

  entry(namespace: string, name: string): WorkloadEntry | undefined {
    return this.#entries.get(resourceKey(namespace, name));
  }

  get events(): readonly WorkloadEntryEvent[] {
    return this.#events;
  }

  /** The latest resource version handed out (Kubernetes-style, a counter). */
  get resourceVersion(): string {
    return String(this.#resourceVersion);
  }

  /** Arms the deletion of entries left disconnected, as a restarted istiod's cleanup would find them. */
  start(): void {
    if (this.#isRunning) return;
    this.#isRunning = true;
    for (const [key, entry] of this.#entries) {
      if (this.#isAwaitingCleanup(entry)) this.#scheduleCleanup(key);
    }
  }

  /** Cancels every pending deletion (the entries stay). */
  stop(): void {
    this.#isRunning = false;
    for (const controller of this.#cleanups.values()) controller.abort();
    this.#cleanups.clear();
  }

  // ---- ADS hooks ----

  /** istiod's OnConnect: registers the proxy, or says with which status its stream must end. */
  onConnect(node: AdsNodeRecord): AdsStreamRejection | undefined {
    const proxy = proxyInfo(node);
    if (!this.#isEnabled || proxy.group === '') return undefined;
    const fullName = untruncatedEntryName(proxy);
    const entryName = autoRegisteredEntryName(proxy);
    if (entryName === '') {
      const reason = proxy.ips.length === 0 ? 'missing IP addresses' : 'missing namespace';
      this.#log.error(`auto-registration of ${proxy.id} failed: ${reason}`, { node: proxy.nodeId });
      this.#record({ kind: 'skipped', namespace: proxy.namespace, name: '', nodeId: proxy.nodeId, stream: node.stream, details: reason });
      return undefined;
    }
    if (entryName !== fullName) {
      this.#log.warn('generated WorkloadEntry name is too long, consider making the WorkloadGroup name shorter', { name: entryName });
    }
    const connection: Connection = {
      stream: node.stream,
      proxy,
      proxyKey: JSON.stringify([proxy.network, proxy.ips[0], proxy.group, proxy.namespace]),
      entryName,
      connectedAt: this.#clock.now(),
    };
    this.#connections.set(node.stream, connection);
    try {
      this.#register(connection);
    } catch (err) {
      this.#connections.delete(node.stream);
      const code = err instanceof RegistrationError ? err.code : status.INTERNAL;
      const details = errorMessage(err);
      this.#log.error('auto-registration rejected', { node: proxy.nodeId, entry: resourceKey(proxy.namespace, entryName), error: details });
      this.#record({ kind: 'rejected', namespace: proxy.namespace, name: entryName, nodeId: proxy.nodeId, stream: node.stream, code, details });
      return { code, details };
    }
    return undefined;
  }

  /** istiod's OnDisconnect: once no stream of the proxy is left, marks its entry disconnected. */
  onDisconnect(node: AdsNodeRecord): void {
    const connection = this.#connections.get(node.stream);
    if (!connection) return;
    this.#connections.delete(node.stream);
    for (const other of this.#connections.values()) if (other.proxyKey === connection.proxyKey) return;
    const { namespace } = connection.proxy;
    const key = resourceKey(namespace, connection.entryName);
    const entry = this.#entries.get(key);
    if (!entry) {
      this.#log.info(`workloadentry ${key} is not found, maybe deleted`);
      return;
    }
    const connectedAt = parseTime(entry.metadata.annotations[CONNECTED_AT_ANNOTATION]);
    // Taken over by a later connection (of this proxy, or through another istiod).
    if (connectedAt !== undefined && connectedAt > connection.connectedAt) return;
    if (entry.metadata.annotations[WORKLOAD_CONTROLLER_ANNOTATION] !== this.#deps.instanceId) return;
    const now = this.#clock.now();
    const annotations: Record<string, string> = { ...entry.metadata.annotations, [DISCONNECTED_AT_ANNOTATION]: formatRfc3339Nano(now) };
    delete annotations[CONNECTED_AT_ANNOTATION];
    this.#store(key, { ...entry, metadata: { ...entry.metadata, annotations } });
    this.#log.info(`updated auto-registered WorkloadEntry ${key} as disconnected`);
    this.#record({ kind: 'disconnected', namespace, name: connection.entryName, nodeId: connection.proxy.nodeId, stream: node.stream });
    this.#scheduleCleanup(key);
  }

  /** istiod's health controller: a HealthInformation request sets the entry's `Healthy` condition. */
  onHealthReport(node: AdsNodeRecord, errorDetail: { readonly code: number; readonly message: string } | undefined): void {
    const connection = this.#connections.get(node.stream);
    if (!connection) {
      this.#log.warn(`unable to derive WorkloadEntry for health update for ${node.id}`);
      return;
    }
    const key = resourceKey(connection.proxy.namespace, connection.entryName);
    const entry = this.#entries.get(key);
    if (!entry) {
      this.#log.warn(`failed to update health status for ${connection.proxy.id}: WorkloadEntry ${key} not found`);
      return;
    }
    if (entry.metadata.annotations[WORKLOAD_CONTROLLER_ANNOTATION] !== this.#deps.instanceId) return;
    const now = this.#clock.now();
    const previous = entry.status?.conditions.find((c) => c.type === HEALTHY_CONDITION);
    const previousProbe = parseTime(previous?.lastProbeTime);
    if (previousProbe !== undefined && previousProbe > now) return;
    // The agent only reports transitions, so istiod stamps both times with the report's arrival.
    const time = new Date(now).toISOString();
    const condition: IstioCondition = errorDetail
      ? { type: HEALTHY_CONDITION, status: 'False', lastProbeTime: time, lastTransitionTime: time, message: errorDetail.message }
      : { type: HEALTHY_CONDITION, status: 'True', lastProbeTime: time, lastTransitionTime: time };
    const existing = entry.status?.conditions ?? [];
    const conditions = previous ? existing.map((c) => (c.type === HEALTHY_CONDITION ? condition : c)) : [...existing, condition];
    this.#store(key, { ...entry, status: { conditions } });
    this.#log.debug('updated health status', { entry: key, proxy: connection.proxy.id, healthy: !errorDetail, message: errorDetail?.message });
    this.#record({
      kind: 'health',
      namespace: connection.proxy.namespace,
      name: connection.entryName,
      nodeId: connection.proxy.nodeId,
      stream: node.stream,
      ...(errorDetail ? { code: errorDetail.code, details: errorDetail.message } : {}),
    });
  }

  /**
   * Follows WorkloadGroup additions and deletions (call after every mesh configuration change). A new
   * group registers the proxies of that group still connected; a deleted one takes its entries with it.
   */
  syncWorkloadGroups(): void {
    const present = new Set<string>();
    const added: WorkloadGroup[] = [];
    for (const group of this.#deps.workloadGroups()) {
      const key = resourceKey(group.metadata.namespace, group.metadata.name);
      present.add(key);
      if (!this.#groupUids.has(key)) {
        this.#groupUid(group);
        added.push(group);
      }
    }
    for (const [key, uid] of [...this.#groupUids]) {
      if (present.has(key)) continue;
      this.#groupUids.delete(key);
      this.#collectOwnedBy(uid);
    }
    for (const group of added) this.#registerLate(group);
  }

  // ---- internals ----

  /** istiod's registerWorkload: take over the entry if it exists, else create it from the group. */
  #register(connection: Connection): void {
    const { proxy, entryName } = connection;
    const key = resourceKey(proxy.namespace, entryName);
    const existing = this.#entries.get(key);
    if (existing) {
      this.#ensureCanControl(proxy, existing.metadata.namespace, existing.spec.serviceAccount ?? '');
      if (this.#markConnected(key, existing, connection.connectedAt)) {
        this.#log.info(`updated auto-registered WorkloadEntry ${key} as connected`);
        this.#record({ kind: 'reconnected', namespace: proxy.namespace, name: entryName, nodeId: proxy.nodeId, stream: connection.stream });
      }
      return;
    }
    const group = this.#deps.workloadGroup(proxy.namespace, proxy.group);
    if (!group) {
      throw new RegistrationError(
        status.FAILED_PRECONDITION,
        `auto-registration WorkloadEntry of ${proxy.id} failed: cannot find WorkloadGroup ${proxy.namespace}/${proxy.group}`,
      );
    }
    const entry = this.#entryFromGroup(entryName, proxy, group, connection.connectedAt);
    this.#ensureCanControl(proxy, entry.metadata.namespace, entry.spec.serviceAccount ?? '');
    this.#store(key, entry);
    const isHealthChecked = HEALTH_CHECKS_ENABLED_ANNOTATION in entry.metadata.annotations;
    this.#log.info(`auto-registered WorkloadEntry ${key}${isHealthChecked ? ' with health checking enabled' : ''}`);
    this.#record({ kind: 'registered', namespace: proxy.namespace, name: entryName, nodeId: proxy.nodeId, stream: connection.stream });
  }

  /** ISTIO_WORKLOAD_ENTRY_VALIDATE_IDENTITY: the verified caller must be the entry's namespace and service account. */
  #ensureCanControl(proxy: ProxyInfo, namespace: string, serviceAccount: string): void {
    if (!this.#shouldValidateIdentity) return;
    const identity = proxy.identity;
    if (!identity) throw new RegistrationError(status.UNKNOWN, 'registration of WorkloadEntry requires a verified identity');
    if (identity.namespace !== namespace) {
      throw new RegistrationError(status.UNKNOWN, `registration of WorkloadEntry namespace mismatch: "${identity.namespace}" vs "${namespace}"`);
    }
    if (serviceAccount !== '' && identity.serviceAccount !== serviceAccount) {
      throw new RegistrationError(
        status.UNKNOWN,
        `registration of WorkloadEntry service account mismatch: "${identity.serviceAccount}" vs "${serviceAccount}"`,
      );
    }
  }

  /** istiod's changeWorkloadEntryStateToConnected; false when a newer event already won. */
  #markConnected(key: string, entry: WorkloadEntry, connectedAt: number): boolean {
    const { annotations } = entry.metadata;
    const disconnectedAt = parseTime(annotations[DISCONNECTED_AT_ANNOTATION]);
    if (disconnectedAt !== undefined && connectedAt < disconnectedAt) return false;
    const lastConnectedAt = parseTime(annotations[CONNECTED_AT_ANNOTATION]) ?? 0;
    if (connectedAt < lastConnectedAt) return false;
    if (annotations[WORKLOAD_CONTROLLER_ANNOTATION] === this.#deps.instanceId && connectedAt <= lastConnectedAt) return false;
    this.#cancelCleanup(key);
    this.#store(key, { ...entry, metadata: { ...entry.metadata, annotations: this.#connectMeta(annotations, connectedAt) } });
    return true;
  }

  #connectMeta(annotations: Readonly<Record<string, string>>, connectedAt: number): Record<string, string> {
    const out: Record<string, string> = {
      ...annotations,
      [WORKLOAD_CONTROLLER_ANNOTATION]: this.#deps.instanceId,
      [CONNECTED_AT_ANNOTATION]: formatRfc3339Nano(connectedAt),
    };
    delete out[DISCONNECTED_AT_ANNOTATION];
    return out;
  }

  /** istiod's workloadEntryFromGroup, plus the connection annotations and the API server's metadata. */
  #entryFromGroup(name: string, proxy: ProxyInfo, group: WorkloadGroup, connectedAt: number): WorkloadEntry {
    const template = group.spec.template;
    // Node metadata labels win over the group's, which win over the template's.
    const labels: Record<string, string> = { ...template.labels, ...group.spec.metadata.labels, ...proxy.labels };
    delete labels[LOCALITY_LABEL];
    if (proxy.isHboneEnabled && !(TUNNEL_LABEL in labels)) labels[TUNNEL_LABEL] = 'http';
    const annotations: Record<string, string> = { [AUTO_REGISTRATION_GROUP_ANNOTATION]: group.metadata.name, ...group.spec.metadata.annotations };
    if (proxy.hasReadinessProbe) annotations[HEALTH_CHECKS_ENABLED_ANNOTATION] = 'true';
    const network = proxy.network !== '' ? proxy.network : template.network;
    const locality = proxy.locality ?? template.locality;
    const spec: Writable<WorkloadEntryObjectSpec> = { address: proxy.ips[0] ?? '' };
    if (Object.keys(template.ports).length > 0) spec.ports = { ...template.ports };
    if (Object.keys(labels).length > 0) spec.labels = { ...labels };
    if (network !== '') spec.network = network;
    if (locality !== '') spec.locality = locality;
    if (template.weight > 0) spec.weight = template.weight;
    if (template.serviceAccount !== '') spec.serviceAccount = template.serviceAccount;
    const key = resourceKey(proxy.namespace, name);
    const incarnation = (this.#entryIncarnations.get(key) ?? 0) + 1;
    this.#entryIncarnations.set(key, incarnation);
    return {
      apiVersion: WORKLOAD_ENTRY_API_VERSION,
      kind: 'WorkloadEntry',
      metadata: {
        name,
        namespace: proxy.namespace,
        uid: stableUid('WorkloadEntry', key, incarnation),
        resourceVersion: '',
        creationTimestamp: new Date(this.#clock.now()).toISOString().replace(/\.\d+Z$/, 'Z'),
        labels,
        annotations: this.#connectMeta(annotations, connectedAt),
        ownerReferences: [{ apiVersion: WORKLOAD_ENTRY_API_VERSION, kind: 'WorkloadGroup', name: group.metadata.name, uid: this.#groupUid(group), controller: true }],
      },
      spec,
    };
  }

  /** A uid per WorkloadGroup, kept while it exists; a group created again under the same name gets a new one. */
  #groupUid(group: WorkloadGroup): string {
    const key = resourceKey(group.metadata.namespace, group.metadata.name);
    const known = this.#groupUids.get(key);
    if (known) return known;
    const incarnation = (this.#groupIncarnations.get(key) ?? 0) + 1;
    this.#groupIncarnations.set(key, incarnation);
    const uid = stableUid('WorkloadGroup', key, incarnation);
    this.#groupUids.set(key, uid);
    return uid;
  }

  /** istiod's late registration: proxies of a group that appears get their entries without reconnecting. */
  #registerLate(group: WorkloadGroup): void {
    for (const connection of [...this.#connections.values()]) {
      if (connection.proxy.group !== group.metadata.name || connection.proxy.namespace !== group.metadata.namespace) continue;
      try {
        this.#register(connection);
      } catch (err) {
        this.#log.error('late auto-registration failed', { node: connection.proxy.nodeId, error: errorMessage(err) });
      }
    }
  }

  /** Kubernetes' garbage collector: entries whose controlling owner is gone are deleted. */
  #collectOwnedBy(groupUid: string): void {
    for (const [key, entry] of [...this.#entries]) {
      if (!entry.metadata.ownerReferences.some((owner) => owner.uid === groupUid)) continue;
      this.#delete(key, entry, 'owner WorkloadGroup deleted');
    }
  }

  #isAwaitingCleanup(entry: WorkloadEntry): boolean {
    const { annotations } = entry.metadata;
    return annotations[AUTO_REGISTRATION_GROUP_ANNOTATION] !== undefined && annotations[CONNECTED_AT_ANNOTATION] === undefined && annotations[DISCONNECTED_AT_ANNOTATION] !== undefined;
  }

  #scheduleCleanup(key: string): void {
    if (!this.#isRunning) return;
    this.#cancelCleanup(key);
    const entry = this.#entries.get(key);
    const disconnectedAt = parseTime(entry?.metadata.annotations[DISCONNECTED_AT_ANNOTATION]) ?? this.#clock.now();
    const controller = new AbortController();
    this.#cleanups.set(key, controller);
    const delay = Math.max(0, disconnectedAt + this.#gracePeriodMs - this.#clock.now());
    this.#clock.sleep(delay, controller.signal).then(
      () => {
        if (this.#cleanups.get(key) !== controller) return;
        this.#cleanups.delete(key);
        this.#cleanupIfStillDisconnected(key);
      },
      () => undefined,
    );
  }

  #cancelCleanup(key: string): void {
    this.#cleanups.get(key)?.abort();
    this.#cleanups.delete(key);
  }

  /** istiod's shouldCleanupEntry and deleteEntry, after the grace period. */
  #cleanupIfStillDisconnected(key: string): void {
    const entry = this.#entries.get(key);
    if (!entry || !this.#isAwaitingCleanup(entry)) return;
    const disconnectedAt = parseTime(entry.metadata.annotations[DISCONNECTED_AT_ANNOTATION]);
    if (disconnectedAt !== undefined && this.#clock.now() - disconnectedAt < this.#gracePeriodMs) {
      this.#scheduleCleanup(key);
      return;
    }
    this.#delete(key, entry, 'not reconnected within the grace period');
  }

  #delete(key: string, entry: WorkloadEntry, reason: string): void {
    this.#cancelCleanup(key);
    this.#entries.delete(key);
    this.#resourceVersion++;
    this.#log.info(`cleaned up auto-registered WorkloadEntry ${key}`, { reason });
    this.#record({ kind: 'deleted', namespace: entry.metadata.namespace, name: entry.metadata.name, nodeId: '', details: reason });
  }

  #store(key: string, entry: WorkloadEntry): void {
    this.#resourceVersion++;
    this.#entries.set(key, deepFreeze(structuredClone({ ...entry, metadata: { ...entry.metadata, resourceVersion: String(this.#resourceVersion) } })));
  }

  #record(event: Omit<WorkloadEntryEvent, 'at'>): void {
    this.#events.push({ ...event, at: new Date(this.#clock.now()) });
    this.#deps.onChange();
  }
}
