/**
 * Everything the bootstrap depends on, derived from the agent's configuration and the xDS node the
 * way pilot-agent derives its template parameters (pkg/bootstrap/config.go toTemplateParams and
 * pkg/bootstrap/option). renderBootstrap turns these into the JSON document.
 */
import path from 'node:path';
import { ConfigError, parseBool, parseGoInt, parseProtoDuration, splitHostPort, type AgentConfig, type JsonValue } from '../../config/index.js';
import type { XdsLocality, XdsNode } from '../../xds/node/index.js';
import { isJsonObject, protoField, stringField, type JsonObject } from './json.js';
import { globalDownstreamMaxConnections, runtimeFlags } from './runtime-flags.js';
import { statsOptions, type StatsOptions } from './stats-options.js';
import { upstreamTlsSocket, type ClientCertOverrides } from './upstream-tls.js';

/** Where pilot-agent's SDS server serves file-mounted certificates when another server owns the workload socket. */
const FILE_CREDENTIAL_SOCKET = './var/run/secrets/credential-uds/files-socket';
const DEFAULT_ENVOY_STATUS_PORT = 15021;
const DEFAULT_ENVOY_PROMETHEUS_PORT = 15090;

export interface SocketAddress {
  address: string;
  port_value: number;
}

export interface RemoteService {
  address: SocketAddress;
  transportSocket?: JsonObject;
  /** `upstream_connection_options` */
  connectionOptions?: JsonObject;
}

export interface BootstrapParams {
  nodeId: string;
  cluster: string;
  locality: XdsLocality;
  metadata: JsonObject;
  /** `--log_as_json`: Envoy logs JSON too. */
  logJson: boolean;
  xdsType: 'DELTA_GRPC' | 'GRPC';
  /** Istio's workload metadata discovery extension (ambient); Delta xDS only. */
  metadataDiscovery: boolean;
  runtimeFlags: JsonObject;
  stats: StatsOptions;
  localhost: string;
  wildcard: string;
  /** The other family's addresses, on dual-stack hosts with ISTIO_DUAL_STACK. */
  additional?: { localhost: string; wildcard: string };
  dnsLookupFamily: 'V4_ONLY' | 'V6_ONLY' | 'ALL';
  proxyAdminPort: number;
  statusPort: number;
  envoyStatusPort: number;
  envoyPrometheusPort: number;
  secureMetricsPort: number;
  secureMergedMetricsPort: number;
  /** proxyMetadata METRICS_LOCALHOST_ACCESS_ONLY=true: the Prometheus listener binds loopback only. */
  metricsLocalhostAccessOnly: boolean;
  /** ENVOY_STATUS_PORT_ENABLE_PROXY_PROTOCOL */
  statusPortProxyProtocol: boolean;
  /** ProxyConfig `statsCompression` (default on): brotli, zstd and gzip on /stats/prometheus. */
  statsCompression: boolean;
  xdsSocketPath: string;
  sdsSocketPath: string;
  /** `sds-files-grpc` socket, when the node carries `file-credential`. */
  fileSdsSocketPath?: string;
  tracing?: { kind: 'zipkin' | 'datadog'; service: RemoteService };
  metricsService?: RemoteService;
  accessLogService?: RemoteService;
  statsd?: SocketAddress;
  outlierLogPath?: string;
  loadStatsConfig?: JsonValue;
  /** ENABLE_SELF_DISCOVERY: a `local_cluster` fed by EDS. */
  selfDiscovery: boolean;
  globalDownstreamMaxConnections: number;
}

export interface ParamsResult {
  params: BootstrapParams;
  errors: ConfigError[];
  warnings: string[];
}

export function bootstrapParams(config: AgentConfig, node: XdsNode): ParamsResult {
  const errors: ConfigError[] = [];
  const warnings: string[] = [];
  const { proxyConfig, env } = config;
  const meta = node.metadata;
  const typed = node.typedMetadata;
  const envBool = (name: string): boolean => parseBool(env[name] ?? '') ?? false;

  let xdsType: BootstrapParams['xdsType'] = config.xds.delta ? 'DELTA_GRPC' : 'GRPC';
  let metadataDiscovery = typed['METADATA_DISCOVERY'] === 'true';
  // Waypoints always use Delta and discovery; kept for parity, though VMs run sidecars.
  if (node.id.startsWith('waypoint~')) {
    xdsType = 'DELTA_GRPC';
    metadataDiscovery = true;
  }
  if (metadataDiscovery && xdsType === 'GRPC') {
    warnings.push('disabling metadata discovery; not supported on SotW XDS');
    metadataDiscovery = false;
  }

  const instanceIps = typeof typed['INSTANCE_IPS'] === 'string' ? typed['INSTANCE_IPS'].split(',') : [...config.identity.instanceIps];
  const addresses = addressFamily(instanceIps, envBool('ISTIO_DUAL_STACK'));

  const annotations = stringMap(typed['ANNOTATIONS']);
  const stats = statsOptions(
    { proxyConfig, annotations, instanceIps, exitOnZeroActiveConnections: typed['EXIT_ON_ZERO_ACTIVE_CONNECTIONS'] === 'true' },
    (message) => warnings.push(message),
  );

  const socketAddress = (address: string, key: string): SocketAddress | undefined => {
    const parsed = parseAddress(address, env['HOST_IP'] ?? '');
    if (typeof parsed === 'string') {
      errors.push(new ConfigError({ key }, parsed));
      return undefined;
    }
    return parsed;
  };
  const remoteService = (settings: JsonValue | undefined, key: string, sniName: string): RemoteService | undefined => {
    const address = stringField(settings, 'address');
    if (address === '') return undefined;
    const socket = socketAddress(address, `${key}.address`);
    if (socket === undefined) return undefined;
    const service: RemoteService = { address: socket };
    const tls = upstreamTlsSocket(protoField(settings, 'tlsSettings'), sniName, certOverrides(typed), true);
    if (tls !== undefined) service.transportSocket = tls;
    const keepalive = protoField(settings, 'tcpKeepalive');
    if (isJsonObject(keepalive)) service.connectionOptions = { tcp_keepalive: tcpKeepalive(keepalive) };
    return service;
  };

  const params: BootstrapParams = {
    nodeId: node.id,
    cluster: node.cluster,
    locality: node.locality ?? {},
    metadata: node.metadata,
    logJson: config.log.asJson,
    xdsType,
    metadataDiscovery,
    runtimeFlags: runtimeFlags(proxyConfig, env),
    stats,
    ...addresses,
    proxyAdminPort: proxyConfig.proxyAdminPort,
    statusPort: proxyConfig.statusPort,
    envoyStatusPort: intOf(typed['ENVOY_STATUS_PORT']) || DEFAULT_ENVOY_STATUS_PORT,
    envoyPrometheusPort: intOf(typed['ENVOY_PROMETHEUS_PORT']) || DEFAULT_ENVOY_PROMETHEUS_PORT,
    secureMetricsPort: intOf(typed['ENVOY_SECURE_METRICS_PORT']),
    secureMergedMetricsPort: intOf(typed['ENVOY_SECURE_MERGED_METRICS_PORT']),
    metricsLocalhostAccessOnly: proxyConfig.proxyMetadata['METRICS_LOCALHOST_ACCESS_ONLY'] === 'true',
    statusPortProxyProtocol: envBool('ENVOY_STATUS_PORT_ENABLE_PROXY_PROTOCOL'),
    statsCompression: proxyConfig.statsCompression ?? true,
    xdsSocketPath: config.xds.socketPath,
    sdsSocketPath: config.secrets.sdsSocketPath,
    selfDiscovery: typed['ENABLE_SELF_DISCOVERY'] === 'true',
    globalDownstreamMaxConnections: globalDownstreamMaxConnections(proxyConfig),
  };
  if (Object.hasOwn(meta, 'file-credential')) params.fileSdsSocketPath = path.resolve(config.cwd, FILE_CREDENTIAL_SOCKET);

  const tracing = tracingParams(proxyConfig.tracing, typed, remoteService, errors);
  if (tracing !== undefined) params.tracing = tracing;
  // The deprecated `envoyMetricsServiceAddress` alone is not used: Istio dereferences the (then
  // absent) envoyMetricsService message for it.
  const metricsService = remoteService(proxyConfig.other['envoyMetricsService'], 'envoyMetricsService', 'envoy_metrics_service');
  if (metricsService !== undefined) params.metricsService = metricsService;
  const accessLogService = remoteService(proxyConfig.other['envoyAccessLogService'], 'envoyAccessLogService', 'envoy_accesslog_service');
  if (accessLogService !== undefined) params.accessLogService = accessLogService;
  const statsdAddress = proxyConfig.other['statsdUdpAddress'];
  if (typeof statsdAddress === 'string' && statsdAddress !== '') {
    const statsd = socketAddress(statsdAddress, 'statsdUdpAddress');
    if (statsd !== undefined) params.statsd = statsd;
  }

  const outlierLogPath = stringOf(typed['OUTLIER_LOG_PATH']);
  if (outlierLogPath !== '') params.outlierLogPath = outlierLogPath;
  const loadStats = meta['LOAD_STATS_CONFIG_JSON'];
  if (typeof loadStats === 'string') {
    try {
      params.loadStatsConfig = JSON.parse(loadStats) as JsonValue;
    } catch (err) {
      errors.push(new ConfigError({ key: 'ISTIO_META_LOAD_STATS_CONFIG_JSON' }, `invalid JSON: ${err instanceof Error ? err.message : String(err)}`));
    }
  }
  return { params, errors, warnings };
}

type RemoteServiceOf = (settings: JsonValue | undefined, key: string, sniName: string) => RemoteService | undefined;

/** The bootstrap tracer: zipkin or datadog (pkg/bootstrap getProxyConfigOptions). */
function tracingParams(
  tracing: JsonValue | undefined,
  typed: Readonly<Record<string, JsonValue>>,
  remoteService: RemoteServiceOf,
  errors: ConfigError[],
): BootstrapParams['tracing'] {
  if (!isJsonObject(tracing)) return undefined;
  for (const kind of ['zipkin', 'datadog'] as const) {
    const settings = protoField(tracing, kind);
    if (settings === undefined) continue;
    // The tracer's TLS comes from `tracing.tlsSettings`; tracers speak HTTP/1.1, so no ALPN.
    const service = remoteService({ address: stringField(settings, 'address') }, `tracing.${kind}`, 'tracer');
    if (service === undefined) return undefined;
    const tls = upstreamTlsSocket(protoField(tracing, 'tlsSettings'), 'tracer', certOverrides(typed), false);
    if (tls !== undefined) service.transportSocket = tls;
    return { kind, service };
  }
  if (protoField(tracing, 'lightstep') !== undefined) {
    // Istio writes the access token to a file beside the bootstrap; Lightstep is deprecated in Istio's API.
    errors.push(new ConfigError({ key: 'tracing.lightstep' }, 'the Lightstep tracer is not supported by this agent (deprecated in Istio)'));
  } else if (protoField(tracing, 'stackdriver') !== undefined) {
    const platform = stringMap(typed['PLATFORM_METADATA']);
    if (platform['gcp_project'] === undefined) {
      errors.push(new ConfigError({ key: 'tracing.stackdriver' }, 'unable to process Stackdriver tracer: missing GCP Project'));
    }
  }
  return undefined;
}

function certOverrides(typed: Readonly<Record<string, JsonValue>>): ClientCertOverrides {
  return {
    certChain: stringOf(typed['TLS_CLIENT_CERT_CHAIN']),
    key: stringOf(typed['TLS_CLIENT_KEY']),
    rootCert: stringOf(typed['TLS_CLIENT_ROOT_CERT']),
  };
}

/**
 * Loopback and wildcard addresses from the instance IPs: IPv4 unless every IP is IPv6; with both
 * families and ISTIO_DUAL_STACK, the first IP's family leads and the other is added.
 */
function addressFamily(ips: readonly string[], dualStack: boolean): Pick<BootstrapParams, 'localhost' | 'wildcard' | 'additional' | 'dnsLookupFamily'> {
  const v4 = { localhost: '127.0.0.1', wildcard: '0.0.0.0' };
  const v6 = { localhost: '::1', wildcard: '::' };
  const isV6 = (ip: string): boolean => ip.includes(':') && !/^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(ip);
  if (ips.every((ip) => !isV6(ip))) return { ...v4, dnsLookupFamily: 'V4_ONLY' };
  if (ips.every(isV6)) return { ...v6, dnsLookupFamily: 'V6_ONLY' };
  if (!dualStack) return { ...v4, dnsLookupFamily: 'V4_ONLY' };
  const [first, second] = isV6(ips[0] ?? '') ? [v6, v4] : [v4, v6];
  return { ...first, additional: second, dnsLookupFamily: 'ALL' };
}

/** Go's net.SplitHostPort, with `$(HOST_IP)` replaced by HOST_IP as Kubernetes would have. */
function parseAddress(address: string, hostIp: string): SocketAddress | string {
  const split = splitHostPort(address);
  if (typeof split === 'string') return `unable to parse address "${address}": ${split}`;
  const port = parseGoInt(split.port);
  if (port === undefined || port < 0 || port > 65535) return `unable to parse address "${address}": invalid port "${split.port}"`;
  const host = split.host === '$(HOST_IP)' && hostIp !== '' ? hostIp : split.host;
  return { address: host, port_value: port };
}

/** networking.v1alpha3 TcpKeepalive → Envoy's TcpKeepalive; zero values are left out. */
function tcpKeepalive(settings: JsonObject): JsonObject {
  const out: JsonObject = {};
  const probes = protoField(settings, 'probes');
  if (typeof probes === 'number' && probes > 0) out['keepalive_probes'] = probes;
  for (const [from, to] of [
    ['time', 'keepalive_time'],
    ['interval', 'keepalive_interval'],
  ] as const) {
    const ms = parseProtoDuration(stringField(settings, from));
    if (ms !== undefined && ms >= 1000) out[to] = Math.trunc(ms / 1000);
  }
  return out;
}

function stringOf(value: JsonValue | undefined): string {
  return typeof value === 'string' ? value : '';
}

function intOf(value: JsonValue | undefined): number {
  return typeof value === 'number' && Number.isInteger(value) ? value : 0;
}

function stringMap(value: JsonValue | undefined): Record<string, string> {
  if (!isJsonObject(value)) return {};
  return Object.fromEntries(Object.entries(value).filter((e): e is [string, string] => typeof e[1] === 'string'));
}
