import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type protobuf from 'protobufjs';
import { ISTIOCTL_FIXTURES, MESH, VmTrees, fakeInterfaces } from '../../../test/fixtures/config/vm-tree.js';
import { ConfigErrors, loadAgentConfig, type AgentConfig, type ProxyFlags } from '../../config/index.js';
import type { LogOptions } from '../../log/index.js';
import { loadProtoRoot } from '../../proto/index.js';
import { buildNode, type BuildNodeOptions } from '../../xds/node/index.js';
import { BOOTSTRAP_PROTO_FILES, BOOTSTRAP_TYPE, ISTIO_PROXY_ONLY_TYPE_URLS } from './bootstrap-protos.js';
import { bootstrapPath, formatBootstrap, generateBootstrap, removeBootstrap, writeBootstrap, type EnvoyBootstrap } from './generate-bootstrap.js';
import { fromProtoJson } from './proto-json.js';
import { assertGolden as assertGoldenFile } from '../../../test/support/golden.js';

const GOLDEN_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/golden/bootstrap');
/** Stands for the agent's working directory in golden files (`/` on a VM). */
const CWD_PLACEHOLDER = '<cwd>';

/** The golden file for `name`, with the temporary working directory replaced. */
function assertGolden(name: string, cwd: string, text: string): void {
  assertGoldenFile(GOLDEN_DIR, name, text.replaceAll(cwd, CWD_PLACEHOLDER));
}

/** The istioctl fixture's mesh.yaml with more `defaultConfig` lines (indented two spaces). */
function meshWith(fixture: 'ipv4' | 'ipv6', ...lines: string[]): string {
  return `${readFileSync(path.join(ISTIOCTL_FIXTURES, fixture, 'mesh.yaml'), 'utf8').trimEnd()}\n${lines.map((l) => `  ${l}`).join('\n')}\n`;
}

interface Case {
  name: string;
  fixture: 'ipv4' | 'ipv6';
  interfaces: string[];
  mesh?: string[];
  env?: Record<string, string>;
  flags?: Partial<ProxyFlags>;
  log?: LogOptions;
  node?: BuildNodeOptions;
}

const CASES: Case[] = [
  { name: 'ipv4', fixture: 'ipv4', interfaces: ['192.168.56.11'] },
  { name: 'ipv6', fixture: 'ipv6', interfaces: ['fd00:56::11'] },
  { name: 'sotw', fixture: 'ipv4', interfaces: ['192.168.56.11'], env: { ISTIO_DELTA_XDS: 'false' } },
  {
    name: 'custom-stats',
    fixture: 'ipv4',
    interfaces: ['192.168.56.11', '10.0.0.11'],
    mesh: [
      'extraStatTags: [dlp_success, dlp_status, dlp_success]',
      'proxyStatsMatcher:',
      '  inclusionPrefixes: [prefix1, "http.{pod_ip}_"]',
      '  inclusion_suffixes: [upstream_rq_5xx]',
      '  inclusionRegexps: [".*osconfig.*"]',
    ],
    env: { EXIT_ON_ZERO_ACTIVE_CONNECTIONS: 'true' },
  },
  {
    name: 'proxy-metadata',
    fixture: 'ipv4',
    interfaces: ['192.168.56.11'],
    // PROXY_CONFIG's proxyMetadata merges key by key into the mesh file's.
    env: {
      PROXY_CONFIG: [
        'proxyMetadata:',
        '  METRICS_LOCALHOST_ACCESS_ONLY: "true"',
        '  ISTIO_META_GLOBAL_DOWNSTREAM_MAX_CONNECTIONS: "5000"',
        '  ISTIO_META_ENABLE_HBONE: "true"',
        '  ISTIO_META_REQUESTED_NETWORK_VIEW: "net1,net2"',
      ].join('\n'),
    },
  },
  { name: 'concurrency', fixture: 'ipv4', interfaces: ['192.168.56.11'], mesh: ['concurrency: 2'] },
  {
    name: 'runtime-values',
    fixture: 'ipv4',
    interfaces: ['192.168.56.11'],
    mesh: [
      'runtimeValues:',
      '  re2.max_program_size.error_level: ""',
      '  envoy.reloadable_features.http_reject_path_with_fragment: "true"',
      '  envoy.resource_limits.listener.example.connection_limit: "100"',
      '  overload.global_downstream_max_connections: "1000"',
      'statsCompression: false',
    ],
    env: { COMPLIANCE_POLICY: 'fips-140-2', HTTP_STRIP_FRAGMENT_FROM_PATH_UNSAFE_IF_DISABLED: 'false' },
  },
  {
    name: 'remote-services',
    fixture: 'ipv4',
    interfaces: ['192.168.56.11'],
    mesh: [
      'tracing:',
      '  zipkin: {address: "zipkin.istio-system:9411"}',
      '  tlsSettings: {mode: SIMPLE, caCertificates: /etc/zipkin/ca.pem, subjectAltNames: [zipkin.example.com]}',
      'envoyMetricsService:',
      '  address: metrics-service:15000',
      '  tlsSettings: {mode: MUTUAL, clientCertificate: /etc/ms/client.pem, privateKey: /etc/ms/key.pem, caCertificates: /etc/ms/ca.pem}',
      '  tcpKeepalive: {probes: 3, time: 7200s, interval: 75s}',
      'envoyAccessLogService:',
      '  address: accesslog-service:15000',
      '  tlsSettings: {mode: ISTIO_MUTUAL}',
      'statsdUdpAddress: 10.1.1.1:9125',
      'connectionSettings: {globalDownstreamConnectionLimit: 15000}',
    ],
  },
  { name: 'dual-stack', fixture: 'ipv4', interfaces: ['192.168.56.11', 'fd00:56::11'], env: { ISTIO_DUAL_STACK: 'true' } },
  {
    name: 'all-options',
    fixture: 'ipv6',
    interfaces: ['fd00:56::11'],
    mesh: ['tracing:', '  datadog: {address: "$(HOST_IP):8126"}'],
    env: {
      HOST_IP: 'fd00:56::1',
      ENVOY_SECURE_METRICS_PORT: '15091',
      ENVOY_SECURE_MERGED_METRICS_PORT: '15092',
      ENVOY_STATUS_PORT_ENABLE_PROXY_PROTOCOL: 'true',
      ISTIO_META_ENABLE_SELF_DISCOVERY: 'true',
      ISTIO_META_LOAD_STATS_CONFIG_JSON: '{"api_type":"GRPC","transport_api_version":"V3","grpc_services":[{"envoy_grpc":{"cluster_name":"xds-grpc"}}]}',
      // An ISTIO_METAJSON_* document is merged into the metadata key by key: this one sets ANNOTATIONS.
      ISTIO_METAJSON_ANNOTATIONS: JSON.stringify({
        ANNOTATIONS: {
          'sidecar.istio.io/statsInclusionPrefixes': 'upstream_cx,downstream_cx',
          'sidecar.istio.io/extraStatTags': 'dlp_status',
          'sidecar.istio.io/statsHistogramBuckets': '{"istio":[1,5,10],"envoy":[1,10,100]}',
          'sidecar.istio.io/statsFlushInterval': '10s',
        },
      }),
    },
    flags: { outlierLogPath: '/dev/stdout' },
    log: { asJson: true, outputLevel: 'default:info', target: 'stdout' },
    node: { serveOnlyFiles: true },
  },
];

describe('Envoy bootstrap', () => {
  let bootstrapType: protobuf.Type;
  before(() => {
    bootstrapType = loadProtoRoot(BOOTSTRAP_PROTO_FILES).lookupType(BOOTSTRAP_TYPE);
  });
  const trees = VmTrees.forSuite();

  function load(cwd: string, c: Partial<Case> = {}): AgentConfig {
    return loadAgentConfig({
      cwd,
      env: c.env ?? {},
      flags: c.flags ?? {},
      ...(c.log === undefined ? {} : { log: c.log }),
      networkInterfaces: fakeInterfaces(...(c.interfaces ?? ['192.168.56.11'])),
      hostname: () => 'vm-1.example.com',
    });
  }

  function make(c: Partial<Case> & { fixture?: 'ipv4' | 'ipv6' }, files: Record<string, string> = {}): { cwd: string; config: AgentConfig } {
    const fixture = c.fixture ?? 'ipv4';
    const cwd = trees.make(fixture, { ...(c.mesh === undefined ? {} : { [MESH]: meshWith(fixture, ...c.mesh) }), ...files });
    return { cwd, config: load(cwd, c) };
  }

  function generate(c: Partial<Case> = {}): { cwd: string; config: AgentConfig; bootstrap: EnvoyBootstrap } {
    const { cwd, config } = make(c);
    return { cwd, config, bootstrap: generateBootstrap(config, buildNode(config, c.node ?? {})) };
  }

  /** Checks the document against Envoy's protos and returns it decoded from its binary encoding. */
  function decode(json: object): Record<string, unknown> {
    const { object, problems } = fromProtoJson(bootstrapType, json, { opaqueTypeUrls: ISTIO_PROXY_ONLY_TYPE_URLS });
    assert.deepEqual(problems, []);
    const message = bootstrapType.fromObject(object);
    assert.equal(bootstrapType.verify(message), null);
    const decoded = bootstrapType.decode(bootstrapType.encode(message).finish());
    return bootstrapType.toObject(decoded, { longs: String, enums: String });
  }

  for (const c of CASES) {
    describe(c.name, () => {
      it('decodes as an envoy.config.bootstrap.v3.Bootstrap with no unknown field and no type error', () => {
        const { config, bootstrap } = generate(c);
        const decoded = decode(bootstrap.json);
        assert.equal((decoded['node'] as { id: string }).id, config.identity.nodeId);
      });

      it('matches its golden file', () => {
        const { cwd, bootstrap } = generate(c);
        assert.equal(bootstrap.source, 'generated');
        assert.equal(bootstrap.text, formatBootstrap(bootstrap.json));
        assertGolden(c.name, cwd, bootstrap.text ?? '');
      });
    });
  }

  describe('golden files', () => {
    it('are exactly the ones checked', () => {
      const files = readdirSync(GOLDEN_DIR).filter((f) => f.endsWith('.json'));
      assert.deepEqual(files.sort(), CASES.map((c) => `${c.name}.json`).sort());
    });
  });

  /** The value at a path of object keys and array indexes, or undefined. */
  function at(value: unknown, ...keys: (string | number)[]): unknown {
    let current = value;
    for (const key of keys) {
      if (typeof current !== 'object' || current === null) return undefined;
      current = (current as Record<string | number, unknown>)[key];
    }
    return current;
  }
  const list = (value: unknown): unknown[] => (Array.isArray(value) ? (value as unknown[]) : []);
  const jsonOf = (bootstrap: EnvoyBootstrap): unknown => JSON.parse(formatBootstrap(bootstrap.json));
  const clusterNamed = (json: unknown, name: string): unknown => list(at(json, 'static_resources', 'clusters')).find((c) => at(c, 'name') === name);
  const endpointAddress = (cluster: unknown): unknown => at(cluster, 'load_assignment', 'endpoints', 0, 'lb_endpoints', 0, 'endpoint', 'address');
  const names = (items: unknown): unknown[] => list(items).map((item) => at(item, 'name'));

  describe('node', () => {
    it('carries the node built for xDS: id, cluster, locality and metadata', () => {
      const { config, bootstrap } = generate();
      const json = jsonOf(bootstrap);
      assert.equal(at(json, 'node', 'id'), 'sidecar~192.168.56.11~vm-1.istio-demo~istio-demo.svc.cluster.local');
      assert.equal(at(json, 'node', 'cluster'), 'nginx.istio-demo');
      assert.deepEqual(at(json, 'node', 'locality'), {});
      assert.deepEqual(at(json, 'node', 'metadata'), buildNode(config).metadata);
    });

    it('names the cluster after the app label when serviceCluster is istio-proxy, else uses serviceCluster', () => {
      assert.equal(at(jsonOf(generate({ env: { PROXY_CONFIG: 'serviceCluster: istio-proxy' } }).bootstrap), 'node', 'cluster'), 'nginx.istio-demo');
      assert.equal(at(jsonOf(generate({ env: { PROXY_CONFIG: 'serviceCluster: billing' } }).bootstrap), 'node', 'cluster'), 'billing');
    });

    it('writes only the locality parts that are set', () => {
      const { bootstrap } = generate({ env: { ISTIO_METAJSON_LABELS: '{"app":"nginx","topology.istio.io/locality":"eu-west1"}' } });
      assert.deepEqual(at(jsonOf(bootstrap), 'node', 'locality'), { region: 'eu-west1' });
    });
  });

  describe('xDS', () => {
    it('uses Delta ADS by default and State of the World with ISTIO_DELTA_XDS=false', () => {
      assert.equal(at(jsonOf(generate().bootstrap), 'dynamic_resources', 'ads_config', 'api_type'), 'DELTA_GRPC');
      assert.equal(at(jsonOf(generate({ env: { ISTIO_DELTA_XDS: 'false' } }).bootstrap), 'dynamic_resources', 'ads_config', 'api_type'), 'GRPC');
    });

    it('points xds-grpc and sds-grpc at the agent sockets by absolute path', () => {
      const { cwd, config, bootstrap } = generate();
      const json = jsonOf(bootstrap);
      assert.equal(at(endpointAddress(clusterNamed(json, 'xds-grpc')), 'pipe', 'path'), config.xds.socketPath);
      assert.equal(config.xds.socketPath, path.join(cwd, 'etc/istio/proxy/XDS'));
      assert.equal(at(endpointAddress(clusterNamed(json, 'sds-grpc')), 'pipe', 'path'), path.join(cwd, 'var/run/secrets/workload-spiffe-uds/socket'));
    });

    it('follows WORKLOAD_IDENTITY_SOCKET_FILE for the SDS socket', () => {
      const { cwd, bootstrap } = generate({ env: { WORKLOAD_IDENTITY_SOCKET_FILE: 'sds.sock' } });
      const sds = clusterNamed(jsonOf(bootstrap), 'sds-grpc');
      assert.equal(at(endpointAddress(sds), 'pipe', 'path'), path.join(cwd, 'var/run/secrets/workload-spiffe-uds/sds.sock'));
    });

    it('turns metadata discovery off on State of the World xDS, with a warning', () => {
      const hbone = { ISTIO_META_ENABLE_HBONE: 'true' };
      const delta = generate({ env: hbone }).bootstrap;
      assert.deepEqual(names(at(jsonOf(delta), 'bootstrap_extensions')), ['metadata_discovery', 'envoy.bootstrap.internal_listener']);
      const sotw = generate({ env: { ...hbone, ISTIO_DELTA_XDS: 'false' } }).bootstrap;
      assert.deepEqual(names(at(jsonOf(sotw), 'bootstrap_extensions')), ['envoy.bootstrap.internal_listener']);
      assert.deepEqual(sotw.warnings, ['disabling metadata discovery; not supported on SotW XDS']);
    });
  });

  describe('addresses', () => {
    it('binds admin and local clusters to ::1 and listeners to :: when every instance IP is IPv6', () => {
      const json = jsonOf(generate({ fixture: 'ipv6', interfaces: ['fd00:56::11'] }).bootstrap);
      assert.equal(at(json, 'admin', 'address', 'socket_address', 'address'), '::1');
      assert.equal(at(endpointAddress(clusterNamed(json, 'agent')), 'socket_address', 'address'), '::1');
      assert.deepEqual(names(at(json, 'static_resources', 'listeners')), ['::_15090', '::_15021']);
    });

    it('stays IPv4-only on a dual-stack host unless ISTIO_DUAL_STACK is set', () => {
      const plain = jsonOf(generate({ interfaces: ['192.168.56.11', 'fd00:56::11'] }).bootstrap);
      assert.equal(at(plain, 'static_resources', 'listeners', 1, 'additional_addresses'), undefined);
      const dual = jsonOf(generate({ interfaces: ['192.168.56.11', 'fd00:56::11'], env: { ISTIO_DUAL_STACK: 'true' } }).bootstrap);
      assert.deepEqual(at(dual, 'static_resources', 'listeners', 1, 'additional_addresses'), [
        { address: { socket_address: { protocol: 'TCP', address: '::', port_value: 15021 } } },
      ]);
    });

    it('uses proxyAdminPort and statusPort, and ENVOY_STATUS_PORT / ENVOY_PROMETHEUS_PORT for the listeners', () => {
      const json = jsonOf(
        generate({ mesh: ['proxyAdminPort: 15100', 'statusPort: 15120'], env: { ENVOY_STATUS_PORT: '15121', ENVOY_PROMETHEUS_PORT: '15190' } }).bootstrap,
      );
      assert.equal(at(json, 'admin', 'address', 'socket_address', 'port_value'), 15100);
      assert.equal(at(endpointAddress(clusterNamed(json, 'prometheus_stats')), 'socket_address', 'port_value'), 15100);
      assert.equal(at(endpointAddress(clusterNamed(json, 'agent')), 'socket_address', 'port_value'), 15120);
      assert.deepEqual(names(at(json, 'static_resources', 'listeners')), ['0.0.0.0_15190', '0.0.0.0_15121']);
    });

    it('binds the Prometheus listener to loopback with METRICS_LOCALHOST_ACCESS_ONLY=true in proxyMetadata', () => {
      const json = jsonOf(generate({ env: { PROXY_CONFIG: 'proxyMetadata: {METRICS_LOCALHOST_ACCESS_ONLY: "true"}' } }).bootstrap);
      assert.deepEqual(names(at(json, 'static_resources', 'listeners')), ['127.0.0.1_15090', '0.0.0.0_15021']);
    });
  });

  describe('stats', () => {
    const patterns = (bootstrap: EnvoyBootstrap): string[] =>
      list(at(jsonOf(bootstrap), 'stats_config', 'stats_matcher', 'inclusion_list', 'patterns')).map((p) => JSON.stringify(p));

    it("keeps Istio's required stats", () => {
      assert.deepEqual(patterns(generate().bootstrap), [
        '{"prefix":"reporter="}',
        '{"prefix":"cluster_manager"}',
        '{"prefix":"listener_manager"}',
        '{"prefix":"server"}',
        '{"prefix":"cluster.xds-grpc"}',
        '{"prefix":"wasm"}',
        '{"suffix":"rbac.allowed"}',
        '{"suffix":"rbac.denied"}',
        '{"suffix":"shadow_allowed"}',
        '{"suffix":"shadow_denied"}',
        '{"safe_regex":{"regex":"vhost\\\\..*\\\\.route\\\\..*"}}',
        '{"prefix":"component"}',
        '{"prefix":"istio"}',
      ]);
    });

    it('keeps downstream_cx_active for draining with EXIT_ON_ZERO_ACTIVE_CONNECTIONS', () => {
      assert.ok(!patterns(generate().bootstrap).includes('{"suffix":"downstream_cx_active"}'));
      assert.ok(patterns(generate({ env: { EXIT_ON_ZERO_ACTIVE_CONNECTIONS: 'true' } }).bootstrap).includes('{"suffix":"downstream_cx_active"}'));
    });

    it('lets an annotation replace the ProxyConfig list rather than merge with it', () => {
      const { bootstrap } = generate({
        mesh: ['proxyStatsMatcher: {inclusionPrefixes: [from_mesh]}'],
        env: { ISTIO_METAJSON_ANNOTATIONS: '{"ANNOTATIONS":{"sidecar.istio.io/statsInclusionPrefixes":"from_annotation"}}' },
      });
      const got = patterns(bootstrap);
      assert.ok(got.includes('{"prefix":"from_annotation"}'));
      assert.ok(!got.includes('{"prefix":"from_mesh"}'));
    });

    it('tags each extraStatTags entry once, between the Envoy and Istio tags', () => {
      const tags = list(at(jsonOf(generate({ mesh: ['extraStatTags: [a, b, a, ""]'] }).bootstrap), 'stats_config', 'stats_tags')).map((t) => at(t, 'tag_name'));
      assert.deepEqual(tags.slice(8, 12), ['mongo_prefix', 'a', 'b', 'cache']);
    });

    it('compresses /stats/prometheus unless statsCompression is false', () => {
      const filters = (bootstrap: EnvoyBootstrap): unknown[] =>
        names(at(jsonOf(bootstrap), 'static_resources', 'listeners', 0, 'filter_chains', 0, 'filters', 0, 'typed_config', 'http_filters'));
      assert.deepEqual(filters(generate().bootstrap), [
        'envoy.filters.http.compressor.brotli',
        'envoy.filters.http.compressor.zstd',
        'envoy.filters.http.compressor.gzip',
        'envoy.filters.http.router',
      ]);
      assert.deepEqual(filters(generate({ mesh: ['statsCompression: false'] }).bootstrap), ['envoy.filters.http.router']);
    });

    it('writes stats_eviction_interval, a field newer than the Envoy protos grpc-js-xds ships', () => {
      const { bootstrap } = generate({ env: { ISTIO_METAJSON_ANNOTATIONS: '{"ANNOTATIONS":{"sidecar.istio.io/statsEvictionInterval":"30s"}}' } });
      assert.equal(at(jsonOf(bootstrap), 'stats_eviction_interval'), '30s');
      // Istio's Envoy has it (Istio's template writes it); the bundled copy of Envoy's API does not yet.
      // When this starts failing, the protos have caught up: add the annotation back to all-options.
      const { problems } = fromProtoJson(bootstrapType, bootstrap.json);
      assert.deepEqual(problems, ['stats_eviction_interval: unknown field of envoy.config.bootstrap.v3.Bootstrap']);
    });

    it('warns about, and skips, an eviction interval that is not a multiple of the flush interval', () => {
      const { bootstrap } = generate({ env: { ISTIO_METAJSON_ANNOTATIONS: '{"ANNOTATIONS":{"sidecar.istio.io/statsEvictionInterval":"7s"}}' } });
      assert.equal(at(jsonOf(bootstrap), 'stats_eviction_interval'), undefined);
      assert.deepEqual(bootstrap.warnings, ['StatsEvictionInterval must be a multiple of the StatsFlushInterval']);
    });
  });

  describe('runtime and limits', () => {
    const staticLayer = (bootstrap: EnvoyBootstrap): unknown => at(jsonOf(bootstrap), 'layered_runtime', 'layers', 0, 'static_layer');
    const maxConnections = (bootstrap: EnvoyBootstrap): unknown =>
      at(jsonOf(bootstrap), 'overload_manager', 'resource_monitors', 0, 'typed_config', 'max_active_downstream_connections');

    it("writes Istio's fixed runtime flags, sorted", () => {
      const layer = staticLayer(generate().bootstrap);
      assert.deepEqual(layer, {
        'envoy.deprecated_features:envoy.config.listener.v3.Listener.hidden_envoy_deprecated_use_original_dst': true,
        'envoy.reloadable_features.coalesce_lb_rebuilds_on_batch_update': false,
        'envoy.reloadable_features.fixed_heap_use_allocated': true,
        'envoy.reloadable_features.http_reject_path_with_fragment': false,
        're2.max_program_size.error_level': '32768',
      });
      assert.deepEqual(Object.keys(layer as object), Object.keys(layer as object).sort());
    });

    it('applies runtimeValues: "" removes a flag, "true"/"false" become booleans', () => {
      const layer = staticLayer(generate({ mesh: ['runtimeValues: {re2.max_program_size.error_level: "", a.flag: "false", b.value: "7"}'] }).bootstrap);
      assert.equal(at(layer, 're2.max_program_size.error_level'), undefined);
      assert.equal(at(layer, 'a.flag'), false);
      assert.equal(at(layer, 'b.value'), '7');
    });

    it('limits downstream connections to 2147483647 unless configured, connectionSettings first', () => {
      assert.equal(maxConnections(generate().bootstrap), 2147483647);
      assert.equal(maxConnections(generate({ mesh: ['runtimeValues: {overload.global_downstream_max_connections: "300"}'] }).bootstrap), 300);
      const runtime = ['runtimeValues: {overload.global_downstream_max_connections: "300"}'];
      const env = { PROXY_CONFIG: 'proxyMetadata: {ISTIO_META_GLOBAL_DOWNSTREAM_MAX_CONNECTIONS: "200"}' };
      assert.equal(maxConnections(generate({ mesh: runtime, env }).bootstrap), 200);
      assert.equal(maxConnections(generate({ mesh: [...runtime, 'connectionSettings: {globalDownstreamConnectionLimit: 100}'], env }).bootstrap), 100);
    });
  });

  describe('tracing', () => {
    it('is off by default', () => {
      const json = jsonOf(generate().bootstrap);
      assert.equal(at(json, 'tracing'), undefined);
      assert.deepEqual(names(at(json, 'static_resources', 'clusters')), ['prometheus_stats', 'agent', 'sds-grpc', 'xds-grpc']);
    });

    it('adds a zipkin cluster and tracer for tracing.zipkin', () => {
      const json = jsonOf(generate({ mesh: ['tracing: {zipkin: {address: "zipkin.istio-system:9411"}}'] }).bootstrap);
      assert.equal(at(json, 'tracing', 'http', 'name'), 'envoy.tracers.zipkin');
      assert.deepEqual(at(endpointAddress(clusterNamed(json, 'zipkin')), 'socket_address'), { address: 'zipkin.istio-system', port_value: 9411 });
    });

    it('refuses the Lightstep tracer', () => {
      assert.throws(() => generate({ mesh: ['tracing: {lightstep: {address: "ls:8080", accessToken: "t"}}'] }), /tracing\.lightstep: .*not supported/);
    });
  });

  describe('logging', () => {
    it("formats Envoy's log like Istio's text log, or as JSON with --log_as_json", () => {
      assert.deepEqual(at(jsonOf(generate().bootstrap), 'application_log_config', 'log_format'), {
        text_format: '%Y-%m-%dT%T.%fZ\t%l\tenvoy %n %g:%#\t%v\tthread=%t',
      });
      const json = jsonOf(generate({ log: { asJson: true, outputLevel: 'default:info', target: 'stdout' } }).bootstrap);
      assert.equal(at(json, 'application_log_config', 'log_format', 'json_format', 'msg'), '%j');
    });
  });

  describe('sources', () => {
    it('writes <configPath>/envoy-rev.json under the working directory, and removes it', async () => {
      const { cwd, config } = make({});
      const bootstrap = await writeBootstrap(config, buildNode(config));
      assert.equal(bootstrap.path, path.join(cwd, 'etc/istio/proxy/envoy-rev.json'));
      assert.equal(bootstrapPath(config), bootstrap.path);
      assert.equal(readFileSync(bootstrap.path, 'utf8'), bootstrap.text);
      assert.equal(statSync(path.dirname(bootstrap.path)).mode & 0o777, 0o700);
      assert.deepEqual(readdirSync(path.dirname(bootstrap.path)), ['envoy-rev.json']);
      await removeBootstrap(bootstrap);
      assert.equal(existsSync(bootstrap.path), false);
    });

    it('follows a configPath elsewhere', () => {
      const { cwd, bootstrap } = generate({ mesh: ['configPath: var/lib/istio/proxy'] });
      assert.equal(bootstrap.path, path.join(cwd, 'var/lib/istio/proxy/envoy-rev.json'));
    });

    it('uses customConfigFile in place without rendering or writing anything', async () => {
      const custom = { node: { id: 'custom' } };
      const { cwd, config } = make({ mesh: ['customConfigFile: etc/envoy/custom.json'] }, { 'etc/envoy/custom.json': JSON.stringify(custom) });
      const bootstrap = await writeBootstrap(config, buildNode(config));
      assert.equal(bootstrap.path, path.join(cwd, 'etc/envoy/custom.json'));
      assert.equal(bootstrap.source, 'custom');
      assert.deepEqual(bootstrap.json, custom);
      assert.equal(existsSync(path.join(cwd, 'etc/istio/proxy/envoy-rev.json')), false);
      await removeBootstrap(bootstrap);
      assert.equal(existsSync(bootstrap.path), true);
    });

    it('reports a customConfigFile that cannot be read, naming it', () => {
      const { config } = make({ mesh: ['customConfigFile: /nonexistent/custom.json'] });
      assert.throws(
        () => generateBootstrap(config, buildNode(config)),
        (err: unknown) => err instanceof ConfigErrors && err.message === '/nonexistent/custom.json: customConfigFile: cannot read the bootstrap file (ENOENT)',
      );
    });

    it('copies a plain JSON template override verbatim, ISTIO_BOOTSTRAP over proxyBootstrapTemplatePath', async () => {
      const text = '{\n  "node": {"id": "from-env"}\n}\n';
      const { cwd, config } = make(
        { mesh: ['proxyBootstrapTemplatePath: etc/envoy/mesh.json'], env: { ISTIO_BOOTSTRAP: 'etc/envoy/env.json' } },
        { 'etc/envoy/env.json': text, 'etc/envoy/mesh.json': '{"node": {"id": "from-mesh"}}' },
      );
      const bootstrap = await writeBootstrap(config, buildNode(config));
      assert.equal(bootstrap.source, 'template');
      assert.equal(bootstrap.sourceFile, path.join(cwd, 'etc/envoy/env.json'));
      assert.equal(readFileSync(path.join(cwd, 'etc/istio/proxy/envoy-rev.json'), 'utf8'), text);
    });

    it('refuses a Go template override with an error naming the file', () => {
      const { cwd, config } = make({ mesh: ['proxyBootstrapTemplatePath: etc/envoy/tmpl.json'] }, { 'etc/envoy/tmpl.json': '{"node": {"id": "{{ .nodeID }}"}}' });
      assert.throws(
        () => generateBootstrap(config, buildNode(config)),
        (err: unknown) =>
          err instanceof ConfigErrors && err.message.startsWith(`${path.join(cwd, 'etc/envoy/tmpl.json')}: proxyBootstrapTemplatePath: Go template bootstrap files are not supported`),
      );
    });

    it('refuses a YAML template override', () => {
      const { config } = make({}, { 'etc/envoy/tmpl.yaml': 'node: {}\n' });
      assert.throws(() => generateBootstrap(config, buildNode(config), { templatePath: 'etc/envoy/tmpl.yaml' }), /tmpl\.yaml: templatePath: only a plain JSON bootstrap/);
    });

    it("treats an override naming Istio's default template file as the built-in bootstrap", () => {
      // The Go template istio-sidecar.deb installs there is never executed: the agent builds the same document.
      const { config } = make(
        { env: { ISTIO_BOOTSTRAP: './var/lib/istio/envoy/envoy_bootstrap_tmpl.json' } },
        { 'var/lib/istio/envoy/envoy_bootstrap_tmpl.json': '{"node": {"id": "{{ .nodeID }}"}}' },
      );
      assert.equal(generateBootstrap(config, buildNode(config)).source, 'generated');
    });

    it('takes --templateFile over proxyBootstrapTemplatePath', () => {
      const { cwd, config } = make(
        { mesh: ['proxyBootstrapTemplatePath: etc/envoy/mesh.json'], flags: { templateFile: 'etc/envoy/flag.json' } },
        { 'etc/envoy/flag.json': '{}', 'etc/envoy/mesh.json': '{}' },
      );
      assert.equal(generateBootstrap(config, buildNode(config)).sourceFile, path.join(cwd, 'etc/envoy/flag.json'));
    });
  });
});
