/**
 * The xDS node pilot-agent describes its proxy with (pkg/bootstrap/config.go GetNodeMetaData, and the
 * cluster name rule of its bootstrap): Envoy's bootstrap carries it to istiod, and the gRPC bootstrap
 * carries its typed part to proxyless gRPC clients.
 */
import path from 'node:path';
import { ConfigError, ConfigErrors, parseBool, parseGoInt, proxyConfigJson, type AgentConfig, type ProxyConfig } from '../../config/index.js';
import { toStruct, type JsonLike, type Node } from '../../proto/index.js';
import { compareGoKeys, isJsonObject, sortKeysDeep } from './go-json.js';
import { TYPED_FIELDS, decodeTypedField, encodeTypedFields, typedFieldFor, type TypedValue } from './typed-metadata.js';

export interface XdsLocality {
  region?: string;
  zone?: string;
  sub_zone?: string;
}

export interface XdsNode {
  /** `sidecar~<ip>~<pod>.<ns>~<ns>.svc.cluster.local` */
  id: string;
  /** Envoy's `node.cluster` (SPEC §8.1). */
  cluster: string;
  /** Always present once built (`{}` when unknown), as gRPC clients require the key. */
  locality?: XdsLocality;
  /**
   * What istiod receives from Envoy: the typed fields plus every other ISTIO_META_* and
   * ISTIO_METAJSON_* key passed through as given (pilot-agent's `meta_json_str`). Keys sorted.
   */
  metadata: Record<string, JsonLike>;
  /**
   * Only the typed fields, as pilot-agent writes them into the gRPC bootstrap (which has no
   * pass-through keys: no `NETWORK: ""`, no label keys at the top level). Keys sorted.
   */
  typedMetadata: Record<string, JsonLike>;
}

export interface BuildNodeOptions {
  /** GENERATOR; pilot-agent sets `grpc` for the gRPC bootstrap only, which buildGrpcBootstrap does itself. */
  generator?: string;
  /** A credential SDS server answers on `./var/run/secrets/credential-uds/socket`: adds `credential: "true"`. */
  credentialSocketExists?: boolean;
  /** The SDS server serves only file secrets (another server owns the workload socket): adds `file-credential: "true"`. */
  serveOnlyFiles?: boolean;
}

const META_PREFIX = 'ISTIO_META_';
const META_JSON_PREFIX = 'ISTIO_METAJSON_';
/** The label Istio keeps the sanitised locality under. */
const LOCALITY_LABEL = 'istio-locality';
const TOPOLOGY_LOCALITY_LABEL = 'topology.istio.io/locality';
const TRACING_SERVICE_NAMES = ['APP_LABEL_AND_NAMESPACE', 'CANONICAL_NAME_ONLY', 'CANONICAL_NAME_AND_NAMESPACE'] as const;

/**
 * Builds the node exactly as pilot-agent does. Throws ConfigErrors when a metadata value does not fit
 * the typed field istiod decodes it into: pilot-agent fails startup on those too
 * (`failed to generate bootstrap metadata`).
 */
export function buildNode(config: AgentConfig, options: BuildNodeOptions = {}): XdsNode {
  const { raw, origin } = collectRawMetadata(config);
  const typed = decodeRawMetadata(raw, origin);
  applyComputedFields(typed, config);

  const labels = stringMapOf(typed, 'LABELS');
  const localityText = sanitizeLocality(labels?.[TOPOLOGY_LOCALITY_LABEL] ?? labels?.[LOCALITY_LABEL] ?? '');
  // Written into the label map itself, which STATIC_LABELS shares when both came from ISTIO_METAJSON_LABELS.
  if (labels !== null && localityText !== '') labels[LOCALITY_LABEL] = localityText;
  const locality = convertLocality(localityText);

  if (config.proxyConfig.controlPlaneAuthPolicy === 'MUTUAL_TLS') {
    typed.set('PILOT_SAN', { kind: 'stringArray', value: [pilotSan(config.proxyConfig.discoveryAddress)] });
  } else {
    typed.set('PILOT_SAN', { kind: 'stringArray', value: null });
  }
  typed.set('OUTLIER_LOG_PATH', { kind: 'string', value: config.flags.outlierLogPath });
  // Added to the untyped map only, after decoding: Envoy sees them, the gRPC bootstrap does not.
  if (options.credentialSocketExists === true) raw.set('credential', 'true');
  if (options.serveOnlyFiles === true) raw.set('file-credential', 'true');
  const discovery = typed.get('METADATA_DISCOVERY');
  if (discovery?.kind === 'optionalStringBool' && discovery.value === null) {
    typed.set('METADATA_DISCOVERY', { kind: 'optionalStringBool', value: boolOf(typed, 'ENABLE_HBONE') });
  }
  if (options.generator !== undefined) typed.set('GENERATOR', { kind: 'string', value: options.generator });

  const typedMetadata = encodeTypedFields(typed);
  // Untyped keys are added only where the typed encoding has none, so `NETWORK: ""` (omitted as
  // empty) comes back as the raw empty string and label keys appear at the top level.
  const merged: [string, JsonLike][] = Object.entries(typedMetadata);
  for (const [key, value] of raw) if (!Object.hasOwn(typedMetadata, key)) merged.push([key, value]);
  merged.sort(([a], [b]) => compareGoKeys(a, b));

  return {
    id: config.identity.nodeId,
    cluster: serviceCluster(config.proxyConfig, typed),
    locality,
    metadata: Object.fromEntries(merged.map(([key, value]): [string, JsonLike] => [key, sortKeysDeep(value)])),
    typedMetadata,
  };
}

/** The protobuf Node of an xDS request. pilot-agent sets no user agent: Envoy and gRPC add their own. */
export function toProtoNode(node: XdsNode): Node {
  const proto: Node = { id: node.id, cluster: node.cluster, metadata: toStruct(node.metadata) };
  if (node.locality !== undefined) {
    proto.locality = { region: node.locality.region ?? '', zone: node.locality.zone ?? '', sub_zone: node.locality.sub_zone ?? '' };
  }
  return proto;
}

// ---- the untyped map ----

interface RawMetadata {
  raw: Map<string, JsonLike>;
  /** The variable each key came from, for error messages. */
  origin: Map<string, string>;
}

/** proxyMetadata ISTIO_META_*, then env ISTIO_META_* (both in config.metaEnv), ISTIO_METAJSON_*, DNS_PROXY_ADDR. */
function collectRawMetadata(config: AgentConfig): RawMetadata {
  const raw = new Map<string, JsonLike>();
  const origin = new Map<string, string>();
  for (const [key, value] of Object.entries(config.metaEnv)) {
    raw.set(key, value);
    origin.set(key, META_PREFIX + key);
  }
  for (const [name, text] of Object.entries(config.env).sort(([a], [b]) => compareGoKeys(a, b))) {
    if (!name.startsWith(META_JSON_PREFIX)) continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      continue; // pilot-agent only warns; config/ has already reported it
    }
    // Each document is merged key by key into the map (ISTIO_METAJSON_LABELS puts `app` at the top
    // level); anything but an object is skipped, as Go cannot unmarshal it into a map.
    if (!isJsonObject(parsed)) continue;
    for (const [key, value] of Object.entries(parsed)) {
      raw.set(key, value);
      origin.set(key, name);
    }
  }
  const dnsProxyAddr = config.env['DNS_PROXY_ADDR'];
  if (dnsProxyAddr !== undefined && dnsProxyAddr !== '') {
    raw.set('DNS_PROXY_ADDR', dnsProxyAddr);
    origin.set('DNS_PROXY_ADDR', 'DNS_PROXY_ADDR');
  }
  return { raw, origin };
}

/** The untyped map decoded into the typed fields, keys in Go's order (a later match wins). */
function decodeRawMetadata(raw: ReadonlyMap<string, JsonLike>, origin: ReadonlyMap<string, string>): Map<string, TypedValue> {
  const typed = new Map<string, TypedValue>();
  const errors: ConfigError[] = [];
  for (const key of [...raw.keys()].sort(compareGoKeys)) {
    const field = typedFieldFor(key);
    const kind = field === undefined ? undefined : TYPED_FIELDS.get(field);
    if (field === undefined || kind === undefined) continue;
    const result = decodeTypedField(kind, raw.get(key) ?? null, typed.get(field));
    if (!result.ok) {
      const via = key === field ? '' : ` (as ${field})`;
      errors.push(new ConfigError({ key: origin.get(key) ?? key }, `node metadata ${key}${via}: ${result.problem}`));
    } else if (result.value !== undefined) {
      typed.set(field, result.value);
    }
  }
  if (errors.length > 0) throw new ConfigErrors(errors);
  return typed;
}

// ---- what pilot-agent computes ----

function applyComputedFields(typed: Map<string, TypedValue>, config: AgentConfig): void {
  const env = config.env;
  const envInt = (name: string, fallback: number): number => {
    const text = env[name];
    return text === undefined ? fallback : (parseGoInt(text) ?? fallback);
  };
  const envBool = (name: string, fallback: boolean): boolean => {
    const text = env[name];
    return text === undefined ? fallback : (parseBool(text) ?? fallback);
  };

  if (stringOf(typed, 'ISTIO_VERSION') === '') typed.set('ISTIO_VERSION', { kind: 'string', value: config.istioVersion });
  typed.set('INSTANCE_IPS', { kind: 'commaList', value: [...new Set(config.identity.instanceIps)] });
  if (config.flags.stsPort !== 0) typed.set('STS_PORT', { kind: 'string', value: String(config.flags.stsPort) });
  typed.set('ENVOY_STATUS_PORT', { kind: 'int', value: envInt('ENVOY_STATUS_PORT', 15021) });
  typed.set('ENVOY_PROMETHEUS_PORT', { kind: 'int', value: envInt('ENVOY_PROMETHEUS_PORT', 15090) });
  typed.set('ENVOY_SECURE_METRICS_PORT', { kind: 'int', value: envInt('ENVOY_SECURE_METRICS_PORT', 0) });
  typed.set('ENVOY_SECURE_MERGED_METRICS_PORT', { kind: 'int', value: envInt('ENVOY_SECURE_MERGED_METRICS_PORT', 0) });
  typed.set('EXIT_ON_ZERO_ACTIVE_CONNECTIONS', { kind: 'stringBool', value: envBool('EXIT_ON_ZERO_ACTIVE_CONNECTIONS', false) });
  // Set only when PEER_METADATA_DISCOVERY is; otherwise it follows ENABLE_HBONE at the end.
  const peerDiscovery = env['PEER_METADATA_DISCOVERY'] === undefined ? null : envBool('PEER_METADATA_DISCOVERY', false);
  typed.set('METADATA_DISCOVERY', { kind: 'optionalStringBool', value: peerDiscovery });
  typed.set('ENVOY_SKIP_DEPRECATED_LOGS', { kind: 'stringBool', value: envBool('ENVOY_SKIP_DEPRECATED_LOGS', true) });
  typed.set('WORKLOAD_IDENTITY_SOCKET_FILE', { kind: 'string', value: path.basename(config.secrets.sdsSocketPath) });
  typed.set('PROXY_CONFIG', { kind: 'proxyConfig', value: protoJsonProxyConfig(config.proxyConfig) });

  // LABELS and STATIC_LABELS are one map, so the locality written later shows in both.
  if (Object.keys(config.labels).length > 0) {
    const labels: Record<string, string> = Object.fromEntries(Object.entries(config.labels));
    typed.set('LABELS', { kind: 'stringMap', value: labels });
    typed.set('STATIC_LABELS', { kind: 'stringMap', value: labels });
  }
  // Only variables present in the environment override what ISTIO_META_* decoded.
  if (env['POD_NAME'] !== undefined) typed.set('NAME', { kind: 'string', value: config.identity.podName });
  if (env['POD_NAMESPACE'] !== undefined) typed.set('NAMESPACE', { kind: 'string', value: config.identity.podNamespace });
  if (env['SERVICE_ACCOUNT'] !== undefined) typed.set('SERVICE_ACCOUNT', { kind: 'string', value: config.identity.serviceAccount });
}

/** ProxyConfig fields that are plain proto3 scalars, lists or maps: protojson leaves out their zero values. */
const PROXY_CONFIG_ZERO_VALUES: Readonly<Record<string, JsonLike>> = {
  configPath: '',
  binaryPath: '',
  discoveryAddress: '',
  customConfigFile: '',
  proxyBootstrapTemplatePath: '',
  zipkinAddress: '',
  statsdUdpAddress: '',
  envoyMetricsServiceAddress: '',
  availabilityZone: '',
  meshId: '',
  proxyAdminPort: 0,
  statusPort: 0,
  statNameLength: 0,
  fileFlushMinSizeKb: 0,
  controlPlaneAuthPolicy: 'NONE',
  interceptionMode: 'REDIRECT',
};

/** Map fields (an empty map is not written; an empty message, such as `tracing: {}`, is). */
const PROXY_CONFIG_MAP_FIELDS: ReadonlySet<string> = new Set(['proxyMetadata', 'runtimeValues']);

/** The effective ProxyConfig as protojson writes it (PROXY_CONFIG is marshalled with protojson). */
function protoJsonProxyConfig(proxyConfig: ProxyConfig): { [key: string]: JsonLike } {
  const out: { [key: string]: JsonLike } = {};
  for (const [key, value] of Object.entries(proxyConfigJson(proxyConfig))) {
    if (Object.hasOwn(PROXY_CONFIG_ZERO_VALUES, key) && PROXY_CONFIG_ZERO_VALUES[key] === value) continue;
    if (Array.isArray(value) && value.length === 0) continue;
    if (PROXY_CONFIG_MAP_FIELDS.has(key) && isJsonObject(value) && Object.keys(value).length === 0) continue;
    // serviceCluster and tracingServiceName are one oneof: only the one that is set is written.
    if (key === 'serviceCluster' && Object.hasOwn(proxyConfig.other, 'tracingServiceName')) continue;
    Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

// ---- cluster name, locality, PILOT_SAN ----

/** Envoy's node.cluster: pkg/bootstrap getServiceCluster / serviceClusterOrDefault. */
function serviceCluster(proxyConfig: ProxyConfig, typed: ReadonlyMap<string, TypedValue>): string {
  const labels = stringMapOf(typed, 'LABELS') ?? {};
  const namespace = stringOf(typed, 'NAMESPACE');
  const workloadName = stringOf(typed, 'WORKLOAD_NAME');
  const orDefault = (name: string): string => {
    if (name !== '' && name !== 'istio-proxy') return name;
    const app = labels['app'] ?? labels['app.kubernetes.io/name'] ?? labels['service.istio.io/canonical-name'];
    if (app !== undefined) return `${app}.${namespace}`;
    if (workloadName !== '') return `${workloadName}.${namespace}`;
    return namespace !== '' ? `istio-proxy.${namespace}` : 'istio-proxy';
  };
  if (!Object.hasOwn(proxyConfig.other, 'tracingServiceName')) return orDefault(proxyConfig.serviceCluster);

  const setting = proxyConfig.other['tracingServiceName'];
  const mode = typeof setting === 'number' ? TRACING_SERVICE_NAMES[setting] : setting;
  const canonicalName =
    labels['service.istio.io/canonical-name'] ?? labels['app.kubernetes.io/name'] ?? labels['app'] ?? (workloadName || 'istio-proxy');
  switch (mode) {
    case 'CANONICAL_NAME_ONLY':
      return orDefault(canonicalName);
    case 'CANONICAL_NAME_AND_NAMESPACE':
      return namespace !== '' ? `${canonicalName}.${namespace}` : orDefault(canonicalName);
    default:
      return orDefault('istio-proxy');
  }
}

/** `us-east1.us-east1-b` (Kubernetes label syntax) becomes `us-east1/us-east1-b`; a value with `/` is kept. */
function sanitizeLocality(label: string): string {
  return label.includes('/') ? label : label.replaceAll('.', '/');
}

function convertLocality(locality: string): XdsLocality {
  if (locality === '') return {};
  const [region = '', zone = '', subZone = ''] = locality.split('/');
  const out: XdsLocality = {};
  // Empty parts are left out, as Go's encoding of core.Locality does.
  if (region !== '') out.region = region;
  if (zone !== '') out.zone = zone;
  if (subZone !== '') out.sub_zone = subZone;
  return out;
}

/** The name istiod's certificate must carry: the discovery host, with `localhost` meaning istiod. */
function pilotSan(discoveryAddress: string): string {
  const host = discoveryAddress.split(':')[0] ?? '';
  return host === 'localhost' ? 'istiod.istio-system.svc' : host;
}

// ---- typed field access ----

function stringOf(typed: ReadonlyMap<string, TypedValue>, key: string): string {
  const field = typed.get(key);
  return field?.kind === 'string' ? field.value : '';
}

function boolOf(typed: ReadonlyMap<string, TypedValue>, key: string): boolean {
  const field = typed.get(key);
  return field?.kind === 'stringBool' ? field.value : false;
}

function stringMapOf(typed: ReadonlyMap<string, TypedValue>, key: string): Record<string, string> | null {
  const field = typed.get(key);
  return field?.kind === 'stringMap' ? field.value : null;
}
