/**
 * Envoy's bootstrap as pilot-agent renders it from tools/packaging/common/envoy_bootstrap.json, built
 * as JSON rather than by executing the Go template. Keys follow the template's order, so the output can
 * be read side by side with Istio's pkg/bootstrap/testdata/*_golden.json.
 */
import type { JsonValue } from '../../config/index.js';
import type { BootstrapParams, RemoteService, SocketAddress } from './bootstrap-params.js';
import type { JsonObject } from './json.js';

const TYPE = 'type.googleapis.com/';
const HTTP_PROTOCOL_OPTIONS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
const HCM = 'envoy.filters.network.http_connection_manager';
const STATS_CONTENT_TYPES = ['text/plain', 'application/vnd.google.protobuf', 'application/openmetrics-text', 'application/openmetrics-protobuf'];
const TEXT_LOG_FORMAT = '%Y-%m-%dT%T.%fZ\t%l\tenvoy %n %g:%#\t%v\tthread=%t';
/** Written by Envoy on `/heapprofiler`; Istio's fixed path (the Wasm cache directory). */
const PROFILE_PATH = '/var/lib/istio/data/envoy.prof';

/** Envoy's default tags Istio keeps (use_all_default_tags is off), in the template's order. */
const LEADING_STAT_TAGS: readonly [string, string][] = [
  ['cluster_name', '^cluster(\\.(.+);)'],
  ['http_conn_manager_prefix', '^http\\.(((?:[_.[:digit:]\\w]*|[_\\[\\]aAbBcCdDeEfF[:digit:]\\w\\:]*));\\.)'],
  ['thread_name', '^server(\\.(.+))\\.watchdog'],
  ['tcp_prefix', '^tcp\\.((.*?)\\.)\\w+?$'],
  ['response_code', '_rq(_(\\d{3}))$'],
  ['response_code_class', '_rq(_(\\dxx))$'],
  ['http_conn_manager_listener_prefix', '^listener(?=\\.).*?\\.http\\.(((?:[_.[:digit:]]*|[_\\[\\]aAbBcCdDeEfF[:digit:]]*))\\.)'],
  ['listener_address', '^listener\\.(((?:[_.[:digit:]]*|[_\\[\\]aAbBcCdDeEfF[:digit:]]*))\\.)'],
  ['mongo_prefix', '^mongo\\.(.+?)\\.(collection|cmd|cx_|op_|delays_|decoding_)(.*?)$'],
];
/** Istio's own tags, after the ProxyConfig extraStatTags. */
const TRAILING_STAT_TAGS: readonly [string, string][] = [
  ['cache', '(cache\\.(.+?)\\.)'],
  ['component', '(component\\.(.+?)\\.)'],
  ['tag', '(tag\\.(.+?);\\.)'],
  ['wasm_filter', '(wasm_filter\\.(.+?)\\.)'],
  ['authz_enforce_result', 'rbac(\\.(allowed|denied))'],
  ['authz_dry_run_action', '(\\.istio_dry_run_(allow|deny)_)'],
  ['authz_dry_run_result', '(\\.shadow_(allowed|denied))'],
];

export function renderBootstrap(p: BootstrapParams): JsonObject {
  const bootstrap: JsonObject = {
    application_log_config: {
      log_format: p.logJson
        ? { json_format: { time: '%Y-%m-%dT%T.%fZ', level: '%l', scope: 'envoy %n', msg: '%j', caller: '%g:%#', thread: '%t' } }
        : { text_format: TEXT_LOG_FORMAT },
    },
    node: { id: p.nodeId, cluster: p.cluster, locality: locality(p), metadata: p.metadata },
    layered_runtime: {
      layers: [
        { name: 'global config', static_layer: p.runtimeFlags },
        { name: 'admin', admin_layer: {} },
      ],
    },
    bootstrap_extensions: bootstrapExtensions(p),
  };
  if (p.stats.flushInterval !== undefined) bootstrap['stats_flush_interval'] = p.stats.flushInterval;
  if (p.stats.evictionInterval !== undefined) bootstrap['stats_eviction_interval'] = p.stats.evictionInterval;
  bootstrap['stats_config'] = statsConfig(p);
  bootstrap['admin'] = {
    access_log: [{ name: 'envoy.access_loggers.file', typed_config: { '@type': `${TYPE}envoy.extensions.access_loggers.file.v3.FileAccessLog`, path: '/dev/null' } }],
    profile_path: PROFILE_PATH,
    address: { socket_address: { address: p.localhost, port_value: p.proxyAdminPort } },
  };
  bootstrap['dynamic_resources'] = {
    lds_config: { ads: {}, initial_fetch_timeout: '0s', resource_api_version: 'V3' },
    cds_config: { ads: {}, initial_fetch_timeout: '0s', resource_api_version: 'V3' },
    ads_config: {
      api_type: p.xdsType,
      set_node_on_first_message_only: true,
      transport_api_version: 'V3',
      grpc_services: [{ envoy_grpc: { cluster_name: 'xds-grpc' } }],
    },
  };
  bootstrap['static_resources'] = { clusters: clusters(p), listeners: listeners(p) };
  bootstrap['overload_manager'] = {
    resource_monitors: [
      {
        name: 'envoy.resource_monitors.global_downstream_max_connections',
        typed_config: {
          '@type': `${TYPE}envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig`,
          max_active_downstream_connections: p.globalDownstreamMaxConnections,
        },
      },
    ],
  };
  const tracing = tracingConfig(p);
  if (tracing !== undefined) bootstrap['tracing'] = tracing;
  const sinks = statsSinks(p);
  if (sinks.length > 0) bootstrap['stats_sinks'] = sinks;
  if (p.outlierLogPath !== undefined || p.loadStatsConfig !== undefined || p.selfDiscovery) {
    const manager: JsonObject = {};
    if (p.selfDiscovery) manager['local_cluster_name'] = 'local_cluster';
    if (p.outlierLogPath !== undefined) manager['outlier_detection'] = { event_log_path: p.outlierLogPath };
    if (p.loadStatsConfig !== undefined) manager['load_stats_config'] = p.loadStatsConfig;
    manager['enable_deferred_cluster_creation'] = true;
    bootstrap['cluster_manager'] = manager;
  }
  bootstrap['deferred_stat_options'] = { enable_deferred_creation_stats: true };
  return bootstrap;
}

/** Only the parts that are set, as the template writes them. */
function locality(p: BootstrapParams): JsonObject {
  const out: JsonObject = {};
  if (p.locality.region) out['region'] = p.locality.region;
  if (p.locality.zone) out['zone'] = p.locality.zone;
  if (p.locality.sub_zone) out['sub_zone'] = p.locality.sub_zone;
  return out;
}

function bootstrapExtensions(p: BootstrapParams): JsonValue[] {
  const typedStruct = (typeUrl: string, value: JsonObject): JsonObject => ({ '@type': `${TYPE}udpa.type.v1.TypedStruct`, type_url: typeUrl, value });
  const extensions: JsonValue[] = [];
  if (p.metadataDiscovery) {
    extensions.push({ name: 'metadata_discovery', typed_config: typedStruct(`${TYPE}istio.workload.BootstrapExtension`, { config_source: { ads: {} } }) });
  }
  extensions.push({
    name: 'envoy.bootstrap.internal_listener',
    typed_config: typedStruct(`${TYPE}envoy.extensions.bootstrap.internal_listener.v3.InternalListener`, { buffer_size_kb: 64 }),
  });
  return extensions;
}

function statsConfig(p: BootstrapParams): JsonObject {
  const tag = ([name, regex]: readonly [string, string]): JsonObject => ({ tag_name: name, regex });
  const statsTags = [
    ...LEADING_STAT_TAGS.map(tag),
    // Istio's metrics encode their labels as `name=.=value;.;` in the stat name.
    ...p.stats.extraStatTags.map((name) => tag([name, `(${name}=\\.=(.*?);\\.;)`])),
    ...TRAILING_STAT_TAGS.map(tag),
  ];
  const patterns: JsonObject[] = [{ prefix: 'reporter=' }];
  if (p.metadataDiscovery) patterns.push({ prefix: 'workload_discovery' });
  for (const prefix of p.stats.inclusionPrefixes) patterns.push({ prefix });
  for (const suffix of p.stats.inclusionSuffixes) patterns.push({ suffix });
  for (const regex of p.stats.inclusionRegexps) patterns.push({ safe_regex: { regex } });
  patterns.push({ prefix: 'component' }, { prefix: 'istio' });

  const config: JsonObject = { use_all_default_tags: false, stats_tags: statsTags };
  if (p.stats.histogramBuckets.length > 0) {
    config['histogram_bucket_settings'] = p.stats.histogramBuckets.map((b) => ({ match: { prefix: b.match.prefix }, buckets: [...b.buckets] }));
  }
  config['stats_matcher'] = { inclusion_list: { patterns } };
  return config;
}

// ---- clusters ----

function http2Options(): JsonObject {
  return {
    [HTTP_PROTOCOL_OPTIONS]: { '@type': `${TYPE}${HTTP_PROTOCOL_OPTIONS}`, explicit_http_config: { http2_protocol_options: {} } },
  };
}

function loadAssignment(name: string, address: JsonObject): JsonObject {
  return { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address } }] }] };
}

function tcpAddress(address: string, port: number): JsonObject {
  return { socket_address: { protocol: 'TCP', address, port_value: port } };
}

function pipe(path: string): JsonObject {
  return { pipe: { path } };
}

function staticCluster(name: string, address: JsonObject): JsonObject {
  return { name, alt_stat_name: `${name};`, type: 'STATIC', connect_timeout: '0.250s', lb_policy: 'ROUND_ROBIN', load_assignment: loadAssignment(name, address) };
}

/** A cluster to a local agent socket speaking gRPC. */
function udsGrpcCluster(name: string, socketPath: string): JsonObject {
  return {
    name,
    alt_stat_name: `${name};`,
    type: 'STATIC',
    typed_extension_protocol_options: http2Options(),
    connect_timeout: '1s',
    lb_policy: 'ROUND_ROBIN',
    load_assignment: loadAssignment(name, pipe(socketPath)),
  };
}

function clusters(p: BootstrapParams): JsonValue[] {
  const out: JsonValue[] = [
    staticCluster('prometheus_stats', tcpAddress(p.localhost, p.proxyAdminPort)),
    staticCluster('agent', tcpAddress(p.localhost, p.statusPort)),
    // Istio writes `./var/run/secrets/workload-spiffe-uds/<file>`, relative to Envoy's cwd (`/` on a
    // VM); the absolute path names the same socket wherever the agent runs.
    udsGrpcCluster('sds-grpc', p.sdsSocketPath),
  ];
  if (p.fileSdsSocketPath !== undefined) out.push(udsGrpcCluster('sds-files-grpc', p.fileSdsSocketPath));
  const threshold = (priority: string): JsonObject => ({ priority, max_connections: 100000, max_pending_requests: 100000, max_requests: 100000 });
  out.push({
    name: 'xds-grpc',
    alt_stat_name: 'xds-grpc;',
    type: 'STATIC',
    connect_timeout: '1s',
    lb_policy: 'ROUND_ROBIN',
    // Istio writes `./etc/istio/proxy/XDS` (configPath + /XDS), relative to Envoy's cwd; on a VM that
    // is `/`, so it is the agent's xDS socket, written here as the absolute path the agent listens on.
    load_assignment: loadAssignment('xds-grpc', pipe(p.xdsSocketPath)),
    circuit_breakers: { thresholds: [threshold('DEFAULT'), threshold('HIGH')] },
    upstream_connection_options: { tcp_keepalive: { keepalive_time: 300 } },
    // One stream per connection: each Envoy xDS stream gets its own connection through the agent.
    max_requests_per_connection: 1,
    typed_extension_protocol_options: http2Options(),
  });
  if (p.tracing !== undefined) {
    const name = p.tracing.kind === 'zipkin' ? 'zipkin' : 'datadog_agent';
    const cluster = dnsCluster(name, p.tracing.service, p.dnsLookupFamily, false);
    if (p.tracing.kind === 'zipkin') cluster['dns_refresh_rate'] = '30s';
    out.push(cluster);
  }
  if (p.metricsService !== undefined) out.push(dnsCluster('envoy_metrics_service', p.metricsService, p.dnsLookupFamily, true));
  if (p.accessLogService !== undefined) out.push(dnsCluster('envoy_accesslog_service', p.accessLogService, p.dnsLookupFamily, true));
  if (p.selfDiscovery) {
    out.push({
      name: 'local_cluster',
      alt_stat_name: 'local_cluster;',
      type: 'EDS',
      connect_timeout: '1s',
      load_balancing_policy: {
        policies: [
          {
            typed_extension_config: {
              name: 'envoy.load_balancing_policies.least_request',
              typed_config: {
                '@type': `${TYPE}envoy.extensions.load_balancing_policies.least_request.v3.LeastRequest`,
                locality_lb_config: { zone_aware_lb_config: { min_cluster_size: '1' } },
              },
            },
          },
        ],
      },
      eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' }, service_name: 'local_cluster' },
    });
  }
  return out;
}

/** A cluster to a remote service by DNS name (tracer, metrics service, access-log service). */
function dnsCluster(name: string, service: RemoteService, family: string, isH2: boolean): JsonObject {
  const cluster: JsonObject = { name, alt_stat_name: `${name};`, type: 'STRICT_DNS' };
  if (service.transportSocket !== undefined) cluster['transport_socket'] = service.transportSocket;
  if (service.connectionOptions !== undefined) cluster['upstream_connection_options'] = service.connectionOptions;
  cluster['respect_dns_ttl'] = true;
  cluster['dns_lookup_family'] = family;
  cluster['connect_timeout'] = '1s';
  cluster['lb_policy'] = 'ROUND_ROBIN';
  if (isH2) cluster['typed_extension_protocol_options'] = http2Options();
  cluster['load_assignment'] = loadAssignment(name, { socket_address: socketAddress(service.address) });
  return cluster;
}

function socketAddress(address: SocketAddress): JsonObject {
  return { address: address.address, port_value: address.port_value };
}

// ---- listeners ----

function listeners(p: BootstrapParams): JsonValue[] {
  const out: JsonValue[] = [];
  const metricsAddress = p.metricsLocalhostAccessOnly ? p.localhost : p.wildcard;
  const metricsAdditional = p.additional === undefined ? undefined : p.metricsLocalhostAccessOnly ? p.additional.localhost : p.additional.wildcard;
  const filters: JsonValue[] = [];
  if (p.statsCompression) {
    filters.push(compressor('brotli', 'envoy.extensions.compression.brotli.compressor.v3.Brotli'));
    filters.push(compressor('zstd', 'envoy.extensions.compression.zstd.compressor.v3.Zstd'));
    filters.push(compressor('gzip', 'envoy.extensions.compression.gzip.compressor.v3.Gzip'));
  }
  filters.push(router());
  out.push(
    listener(`${metricsAddress}_${p.envoyPrometheusPort}`, metricsAddress, metricsAdditional, p.envoyPrometheusPort, undefined, [
      { filters: [httpConnectionManager('stats', [['/stats/prometheus', 'prometheus_stats']], filters)] },
    ]),
  );
  if (p.secureMetricsPort !== 0) {
    out.push(secureMetricsListener(p, p.secureMetricsPort, 'secure_stats', [['/stats/prometheus', 'prometheus_stats']]));
  }
  if (p.secureMergedMetricsPort !== 0) {
    out.push(
      secureMetricsListener(p, p.secureMergedMetricsPort, 'secure_merged_stats', [
        ['/stats/prometheus', 'agent'],
        ['/metrics', 'agent'],
      ]),
    );
  }
  const proxyProtocol = p.statusPortProxyProtocol
    ? [
        {
          name: 'envoy.listener.proxy_protocol',
          typed_config: {
            '@type': `${TYPE}envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol`,
            allow_requests_without_proxy_protocol: true,
          },
        },
      ]
    : undefined;
  out.push(
    listener(`${p.wildcard}_${p.envoyStatusPort}`, p.wildcard, p.additional?.wildcard, p.envoyStatusPort, proxyProtocol, [
      { filters: [httpConnectionManager('agent', [['/healthz/ready', 'agent']], [router()])] },
    ]),
  );
  return out;
}

function listener(
  name: string,
  address: string,
  additional: string | undefined,
  port: number,
  listenerFilters: JsonValue[] | undefined,
  filterChains: JsonValue[],
): JsonObject {
  const out: JsonObject = {
    name,
    address: tcpAddress(address, port),
    // Istio's own listeners must answer even when the proxy is at its connection limit.
    ignore_global_conn_limit: true,
    bypass_overload_manager: true,
  };
  if (additional !== undefined) out['additional_addresses'] = [{ address: tcpAddress(additional, port) }];
  if (listenerFilters !== undefined) out['listener_filters'] = listenerFilters;
  out['filter_chains'] = filterChains;
  return out;
}

function httpConnectionManager(statPrefix: string, routes: readonly [string, string][], httpFilters: JsonValue[]): JsonObject {
  return {
    name: HCM,
    typed_config: {
      '@type': `${TYPE}envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager`,
      codec_type: 'AUTO',
      stat_prefix: statPrefix,
      route_config: {
        virtual_hosts: [
          {
            name: 'backend',
            domains: ['*'],
            routes: routes.map(([prefix, cluster]) => ({ match: { prefix }, route: { cluster } })),
          },
        ],
      },
      http_filters: httpFilters,
    },
  };
}

function router(): JsonObject {
  return { name: 'envoy.filters.http.router', typed_config: { '@type': `${TYPE}envoy.extensions.filters.http.router.v3.Router` } };
}

function compressor(library: string, type: string): JsonObject {
  return {
    name: `envoy.filters.http.compressor.${library}`,
    typed_config: {
      '@type': `${TYPE}envoy.extensions.filters.http.compressor.v3.Compressor`,
      compressor_library: { name: `stats_${library}`, typed_config: { '@type': `${TYPE}${type}` } },
      response_direction_config: { common_config: { content_type: [...STATS_CONTENT_TYPES] } },
    },
  };
}

/** ENVOY_SECURE_METRICS_PORT / ENVOY_SECURE_MERGED_METRICS_PORT: metrics over mTLS with the workload certificate. */
function secureMetricsListener(p: BootstrapParams, port: number, statPrefix: string, routes: readonly [string, string][]): JsonObject {
  const sds = (name: string): JsonObject => ({
    name,
    sds_config: {
      api_config_source: {
        api_type: 'GRPC',
        grpc_services: [{ envoy_grpc: { cluster_name: 'sds-grpc' } }],
        set_node_on_first_message_only: true,
        transport_api_version: 'V3',
      },
      resource_api_version: 'V3',
    },
  });
  const tlsInspector = [
    { name: 'envoy.filters.listener.tls_inspector', typed_config: { '@type': `${TYPE}envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector` } },
  ];
  return listener(`${p.wildcard}_${port}`, p.wildcard, undefined, port, tlsInspector, [
    {
      filter_chain_match: { transport_protocol: 'tls' },
      transport_socket: {
        name: 'envoy.transport_sockets.tls',
        typed_config: {
          '@type': `${TYPE}envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext`,
          require_client_certificate: true,
          common_tls_context: {
            tls_certificate_sds_secret_configs: [sds('default')],
            combined_validation_context: { default_validation_context: {}, validation_context_sds_secret_config: sds('ROOTCA') },
          },
        },
      },
      filters: [httpConnectionManager(statPrefix, routes, [router()])],
    },
  ]);
}

// ---- tracing and sinks ----

function tracingConfig(p: BootstrapParams): JsonObject | undefined {
  if (p.tracing === undefined) return undefined;
  if (p.tracing.kind === 'zipkin') {
    return {
      http: {
        name: 'envoy.tracers.zipkin',
        typed_config: {
          '@type': `${TYPE}envoy.config.trace.v3.ZipkinConfig`,
          collector_cluster: 'zipkin',
          collector_endpoint: '/api/v2/spans',
          collector_endpoint_version: 'HTTP_JSON',
          trace_id_128bit: true,
          shared_span_context: false,
        },
      },
    };
  }
  return {
    http: {
      name: 'envoy.tracers.datadog',
      typed_config: { '@type': `${TYPE}envoy.config.trace.v3.DatadogConfig`, collector_cluster: 'datadog_agent', service_name: p.cluster },
    },
  };
}

function statsSinks(p: BootstrapParams): JsonValue[] {
  const sinks: JsonValue[] = [];
  if (p.metricsService !== undefined) {
    sinks.push({
      name: 'envoy.stat_sinks.metrics_service',
      typed_config: {
        '@type': `${TYPE}envoy.config.metrics.v3.MetricsServiceConfig`,
        transport_api_version: 'V3',
        grpc_service: { envoy_grpc: { cluster_name: 'envoy_metrics_service' } },
      },
    });
  }
  if (p.statsd !== undefined) {
    sinks.push({
      name: 'envoy.stat_sinks.statsd',
      typed_config: { '@type': `${TYPE}envoy.config.metrics.v3.StatsdSink`, address: { socket_address: socketAddress(p.statsd) } },
    });
  }
  return sinks;
}
