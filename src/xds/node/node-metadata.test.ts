import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { CLUSTER_ENV, ISTIOCTL_FIXTURES, MESH, VmTrees, fakeInterfaces } from '../../../test/fixtures/config/vm-tree.js';
import { scenarioClusterEnv, scenarioMesh } from '../../../test/support/vm-files.js';
import { ConfigErrors, loadAgentConfig, type AgentConfig } from '../../config/index.js';
import { fromStruct } from '../../proto/index.js';
import { ISTIO_COMPAT_VERSION } from '../../version.js';
import { buildNode, toProtoNode } from './node-metadata.js';

type Fixture = 'ipv4' | 'ipv6' | 'nil-proxy-metadata';

/** The fixture's cluster.env with some lines replaced or appended (values already shell-quoted). */
function clusterEnvWith(fixture: Fixture, values: Record<string, string>): string {
  const lines = readFileSync(path.join(ISTIOCTL_FIXTURES, fixture, 'cluster.env'), 'utf8').trimEnd().split('\n');
  for (const [key, raw] of Object.entries(values)) {
    const i = lines.findIndex((l) => l.startsWith(`${key}=`));
    if (i < 0) lines.push(`${key}=${raw}`);
    else lines[i] = `${key}=${raw}`;
  }
  return `${lines.join('\n')}\n`;
}

const IPV4_LABELS = {
  app: 'nginx',
  'service.istio.io/canonical-name': 'nginx',
  'service.istio.io/canonical-revision': 'v1',
  version: 'v1',
};

describe('buildNode', () => {
  const trees = VmTrees.forSuite();

  function load(
    fixture: Fixture | undefined,
    files: Record<string, string | null> = {},
    env: Record<string, string> = {},
    interfaces: string[] = ['192.168.56.11'],
  ): AgentConfig {
    return loadAgentConfig({
      cwd: trees.make(fixture, files),
      env,
      networkInterfaces: fakeInterfaces(...interfaces),
      hostname: () => 'vm-1.example.com',
    });
  }

  function scenario(overrides: Record<string, string> = {}, env: Record<string, string> = {}): AgentConfig {
    return load(
      undefined,
      { [CLUSTER_ENV]: scenarioClusterEnv({ ISTIO_SVC_IP: "'192.168.56.11'", ...overrides }), [MESH]: scenarioMesh('istiod.istio-system.svc:15012', { statusPort: 15020 }) },
      env,
    );
  }

  describe('istioctl output', () => {
    it('describes the ipv4 VM with the value types istiod decodes', () => {
      const node = buildNode(load('ipv4'));
      assert.equal(node.id, 'sidecar~192.168.56.11~vm-1.istio-demo~istio-demo.svc.cluster.local');
      assert.equal(node.cluster, 'nginx.istio-demo');
      assert.deepEqual(node.locality, {});
      const { PROXY_CONFIG, ...metadata } = node.metadata;
      assert.deepEqual(metadata, {
        AUTO_REGISTER_GROUP: 'nginx',
        CLUSTER_ID: 'Kubernetes',
        DNS_CAPTURE: 'true',
        ENVOY_PROMETHEUS_PORT: 15090,
        ENVOY_SKIP_DEPRECATED_LOGS: 'true',
        ENVOY_STATUS_PORT: 15021,
        INSTANCE_IPS: '192.168.56.11',
        ISTIO_VERSION: ISTIO_COMPAT_VERSION,
        LABELS: IPV4_LABELS,
        MESH_ID: '',
        METADATA_DISCOVERY: 'false',
        NAME: 'vm-1',
        NAMESPACE: 'istio-demo',
        NETWORK: '',
        PILOT_SAN: ['istiod.istio-system.svc'],
        POD_PORTS: '[{"name":"http","containerPort":80,"protocol":"TCP"}]',
        SERVICE_ACCOUNT: 'vm',
        STATIC_LABELS: IPV4_LABELS,
        WORKLOAD_IDENTITY_SOCKET_FILE: 'socket',
        WORKLOAD_NAME: 'nginx',
        // ISTIO_METAJSON_LABELS is also merged key by key into the metadata itself.
        ...IPV4_LABELS,
      });
      assert.deepEqual(Object.keys(node.metadata), Object.keys(node.metadata).sort());
      assert.ok(PROXY_CONFIG !== null && typeof PROXY_CONFIG === 'object' && !Array.isArray(PROXY_CONFIG));
      assert.equal(PROXY_CONFIG['serviceCluster'], 'nginx.istio-demo');
      assert.equal(PROXY_CONFIG['discoveryAddress'], 'istiod.istio-system.svc:15012');
      assert.deepEqual(PROXY_CONFIG['readinessProbe'], { httpGet: { path: '/', port: 80 }, initialDelaySeconds: 1, periodSeconds: 5 });
    });

    it('keeps pass-through keys out of the typed metadata', () => {
      const node = buildNode(load('ipv4'));
      for (const key of ['MESH_ID', 'NETWORK', 'app', 'version', 'service.istio.io/canonical-name']) {
        assert.ok(!(key in node.typedMetadata), key);
      }
      const typedKeys = Object.keys(node.typedMetadata);
      assert.deepEqual(typedKeys, Object.keys(node.metadata).filter((k) => typedKeys.includes(k)));
      for (const key of typedKeys) assert.deepEqual(node.typedMetadata[key], node.metadata[key], key);
    });

    it('describes the ipv6 VM of a revisioned control plane', () => {
      const node = buildNode(load('ipv6', {}, {}, ['fd00:56::11']));
      assert.equal(node.id, 'sidecar~fd00:56::11~vm-1.istio-demo~istio-demo.svc.cluster.local');
      assert.equal(node.metadata['INSTANCE_IPS'], 'fd00:56::11');
      assert.deepEqual(node.metadata['PILOT_SAN'], ['istiod-canary.istio-system.svc']);
      assert.equal(node.metadata['POD_PORTS'], undefined);
      assert.equal(node.metadata['AUTO_REGISTER_GROUP'], 'nginx');
      assert.equal(node.cluster, 'nginx.istio-demo');
    });

    it('takes everything from cluster.env when the mesh config has no proxyMetadata', () => {
      const node = buildNode(load('nil-proxy-metadata', {}, {}, ['192.168.56.12']));
      assert.equal(node.metadata['CLUSTER_ID'], 'Kubernetes');
      assert.equal(node.metadata['DNS_CAPTURE'], 'true');
      assert.equal(node.metadata['NETWORK'], '');
      assert.equal(node.metadata['AUTO_REGISTER_GROUP'], undefined);
      assert.deepEqual(node.metadata['LABELS'], {
        app: 'nginx',
        'service.istio.io/canonical-name': 'nginx',
        'service.istio.io/canonical-revision': 'latest',
      });
      const proxyConfig = node.metadata['PROXY_CONFIG'];
      assert.ok(proxyConfig !== null && typeof proxyConfig === 'object' && !Array.isArray(proxyConfig));
      assert.equal(proxyConfig['proxyMetadata'], undefined);
      assert.deepEqual(proxyConfig['readinessProbe'], { exec: { command: ['/usr/bin/curl', '-sf', 'http://localhost/'] }, periodSeconds: 5 });
    });

    it('carries the scenario labels, class vm included', () => {
      const node = buildNode(scenario());
      const labels = {
        app: 'nginx',
        class: 'vm',
        'service.istio.io/canonical-name': 'nginx',
        'service.istio.io/canonical-version': 'latest',
      };
      assert.deepEqual(node.metadata['LABELS'], labels);
      assert.deepEqual(node.metadata['STATIC_LABELS'], labels);
      assert.equal(node.metadata['class'], 'vm');
      assert.equal(node.metadata['AUTO_REGISTER_GROUP'], 'nginx');
      assert.equal(node.metadata['CLUSTER_ID'], 'Kubernetes');
      assert.equal(node.metadata['NAMESPACE'], 'istio-demo');
      assert.equal(node.metadata['SERVICE_ACCOUNT'], 'vm');
      assert.equal(node.metadata['NETWORK'], '');
      assert.equal(node.cluster, 'nginx.istio-demo');
    });
  });

  describe('addresses', () => {
    it('lists INSTANCE_IP first, then the interface addresses', () => {
      const config = load('ipv4', {}, {}, ['10.0.0.5', '192.168.56.11', 'fd00::5']);
      const node = buildNode(config);
      assert.equal(node.metadata['INSTANCE_IPS'], '192.168.56.11,10.0.0.5,fd00::5');
      assert.equal(node.id, 'sidecar~192.168.56.11~vm-1.istio-demo~istio-demo.svc.cluster.local');
    });
  });

  describe('cluster name', () => {
    it('uses serviceCluster from PROXY_CONFIG, which istio-start.sh sets to ISTIO_SERVICE', () => {
      assert.equal(buildNode(load('ipv4', {}, { PROXY_CONFIG: 'serviceCluster: payments.prod\n' })).cluster, 'payments.prod');
    });

    it('falls back to the app label and namespace when serviceCluster is istio-proxy', () => {
      assert.equal(buildNode(load('ipv4', {}, { PROXY_CONFIG: 'serviceCluster: istio-proxy\n' })).cluster, 'nginx.istio-demo');
    });

    it('falls back to WORKLOAD_NAME, then istio-proxy, without an app label', () => {
      const noLabels = { [CLUSTER_ENV]: clusterEnvWith('ipv4', { ISTIO_METAJSON_LABELS: "'{}'", ISTIO_META_WORKLOAD_NAME: "'web'" }) };
      const env = { PROXY_CONFIG: 'serviceCluster: istio-proxy\n' };
      // proxyMetadata in the mesh file still names the workload nginx; cluster.env (the environment) wins.
      assert.equal(buildNode(load('ipv4', noLabels, env)).cluster, 'web.istio-demo');
      const noWorkload = { [CLUSTER_ENV]: clusterEnvWith('nil-proxy-metadata', { ISTIO_METAJSON_LABELS: "'{}'", ISTIO_META_WORKLOAD_NAME: "''" }) };
      assert.equal(buildNode(load('nil-proxy-metadata', noWorkload, env)).cluster, 'istio-proxy.istio-demo');
    });

    it('follows tracingServiceName when the mesh config sets it', () => {
      const mesh = (mode: string): Record<string, string> => ({
        [MESH]: `defaultConfig:\n  tracingServiceName: ${mode}\n`,
        [CLUSTER_ENV]: clusterEnvWith('nil-proxy-metadata', { ISTIO_CP_AUTH: "'MUTUAL_TLS'" }),
      });
      // Without PROXY_CONFIG in the environment, istio-start.sh would set serviceCluster again.
      const env = { PROXY_CONFIG: 'concurrency: 2\n' };
      assert.equal(buildNode(load('nil-proxy-metadata', mesh('CANONICAL_NAME_AND_NAMESPACE'), env, ['192.168.56.12'])).cluster, 'nginx.istio-demo');
      assert.equal(buildNode(load('nil-proxy-metadata', mesh('CANONICAL_NAME_ONLY'), env, ['192.168.56.12'])).cluster, 'nginx');
      const node = buildNode(load('nil-proxy-metadata', mesh('APP_LABEL_AND_NAMESPACE'), env, ['192.168.56.12']));
      assert.equal(node.cluster, 'nginx.istio-demo');
      const proxyConfig = node.metadata['PROXY_CONFIG'];
      assert.ok(proxyConfig !== null && typeof proxyConfig === 'object' && !Array.isArray(proxyConfig));
      assert.equal(proxyConfig['tracingServiceName'], 'APP_LABEL_AND_NAMESPACE');
      assert.ok(!('serviceCluster' in proxyConfig));
    });
  });

  describe('locality', () => {
    it('reads topology.istio.io/locality in label syntax and records it as istio-locality', () => {
      const labels = '\'{"app":"nginx","topology.istio.io/locality":"us-east1.us-east1-b.rack7"}\'';
      const node = buildNode(load('ipv4', { [CLUSTER_ENV]: clusterEnvWith('ipv4', { ISTIO_METAJSON_LABELS: labels }) }));
      assert.deepEqual(node.locality, { region: 'us-east1', zone: 'us-east1-b', sub_zone: 'rack7' });
      const expected = { app: 'nginx', 'istio-locality': 'us-east1/us-east1-b/rack7', 'topology.istio.io/locality': 'us-east1.us-east1-b.rack7' };
      assert.deepEqual(node.metadata['LABELS'], expected);
      assert.deepEqual(node.metadata['STATIC_LABELS'], expected);
      // The pass-through copy keeps what the operator wrote.
      assert.equal(node.metadata['topology.istio.io/locality'], 'us-east1.us-east1-b.rack7');
      assert.equal(node.metadata['istio-locality'], undefined);
    });

    it('reads istio-locality when there is no topology label, keeping slashes as they are', () => {
      const labels = '\'{"app":"nginx","istio-locality":"eu-west/eu-west-1a"}\'';
      const node = buildNode(load('ipv4', { [CLUSTER_ENV]: clusterEnvWith('ipv4', { ISTIO_METAJSON_LABELS: labels }) }));
      assert.deepEqual(node.locality, { region: 'eu-west', zone: 'eu-west-1a' });
      assert.deepEqual(toProtoNode(node).locality, { region: 'eu-west', zone: 'eu-west-1a', sub_zone: '' });
    });
  });

  describe('value types', () => {
    it('writes typed booleans as "true"/"false" strings, leaving false ones to the raw value', () => {
      const files = { [CLUSTER_ENV]: clusterEnvWith('nil-proxy-metadata', { ISTIO_META_DNS_CAPTURE: "'True'", ISTIO_META_DNS_AUTO_ALLOCATE: "'0'" }) };
      const node = buildNode(load('nil-proxy-metadata', files, {}, ['192.168.56.12']));
      assert.equal(node.metadata['DNS_CAPTURE'], 'true');
      // false is empty to the typed encoding, so only the pass-through copy remains, unnormalised.
      assert.equal(node.metadata['DNS_AUTO_ALLOCATE'], '0');
      assert.equal(node.typedMetadata['DNS_AUTO_ALLOCATE'], undefined);
    });

    it('takes the Envoy ports from the environment as numbers', () => {
      const node = buildNode(load('ipv4', {}, { ENVOY_STATUS_PORT: '25021', ENVOY_PROMETHEUS_PORT: '25090', ENVOY_SECURE_METRICS_PORT: '15091' }));
      assert.equal(node.metadata['ENVOY_STATUS_PORT'], 25021);
      assert.equal(node.metadata['ENVOY_PROMETHEUS_PORT'], 25090);
      assert.equal(node.metadata['ENVOY_SECURE_METRICS_PORT'], 15091);
      assert.equal(node.metadata['ENVOY_SECURE_MERGED_METRICS_PORT'], undefined);
    });

    it('normalises POD_PORTS to Go field order and drops unknown fields', () => {
      const ports = '\'[{"protocol":"TCP","containerPort":8080,"extra":1},{"name":"grpc","containerPort":9090}]\'';
      const node = buildNode(load('ipv4', { [CLUSTER_ENV]: clusterEnvWith('ipv4', { ISTIO_META_POD_PORTS: ports }) }));
      assert.equal(node.metadata['POD_PORTS'], '[{"containerPort":8080,"protocol":"TCP"},{"name":"grpc","containerPort":9090,"protocol":""}]');
    });

    it('matches metadata keys to typed fields regardless of case, as Go does', () => {
      const node = buildNode(load('ipv4', {}, { ISTIO_META_network: 'vm-net' }));
      assert.equal(node.typedMetadata['NETWORK'], 'vm-net');
      assert.equal(node.metadata['NETWORK'], 'vm-net');
      assert.equal(node.metadata['network'], 'vm-net');
    });

    it('merges other ISTIO_METAJSON_ documents into the metadata with their JSON types', () => {
      const node = buildNode(load('ipv4', {}, { ISTIO_METAJSON_EXTRA: '{"SIDECAR_WEIGHT":3,"flags":{"b":true,"a":[1,"x"]}}' }));
      assert.equal(node.metadata['SIDECAR_WEIGHT'], 3);
      assert.deepEqual(node.metadata['flags'], { a: [1, 'x'], b: true });
      assert.deepEqual(Object.keys(node.metadata['flags'] as object), ['a', 'b']);
    });

    it('passes DNS_PROXY_ADDR through when it is set', () => {
      assert.equal(buildNode(load('ipv4')).metadata['DNS_PROXY_ADDR'], undefined);
      assert.equal(buildNode(load('ipv4', {}, { DNS_PROXY_ADDR: '127.0.0.1:53' })).metadata['DNS_PROXY_ADDR'], '127.0.0.1:53');
    });

    it('reports METADATA_DISCOVERY from PEER_METADATA_DISCOVERY, else from ENABLE_HBONE', () => {
      assert.equal(buildNode(load('ipv4', {}, { PEER_METADATA_DISCOVERY: 'true' })).metadata['METADATA_DISCOVERY'], 'true');
      assert.equal(buildNode(load('ipv4', {}, { ISTIO_META_ENABLE_HBONE: 'true' })).metadata['METADATA_DISCOVERY'], 'true');
      assert.equal(buildNode(load('ipv4')).metadata['METADATA_DISCOVERY'], 'false');
    });

    it('reports EXIT_ON_ZERO_ACTIVE_CONNECTIONS only when it is on, and the SDS socket name', () => {
      const node = buildNode(load('ipv4', {}, { EXIT_ON_ZERO_ACTIVE_CONNECTIONS: 'true', ENVOY_SKIP_DEPRECATED_LOGS: 'false', WORKLOAD_IDENTITY_SOCKET_FILE: 'spire.sock' }));
      assert.equal(node.metadata['EXIT_ON_ZERO_ACTIVE_CONNECTIONS'], 'true');
      assert.equal(node.metadata['ENVOY_SKIP_DEPRECATED_LOGS'], undefined);
      assert.equal(node.metadata['WORKLOAD_IDENTITY_SOCKET_FILE'], 'spire.sock');
      assert.equal(buildNode(load('ipv4')).metadata['EXIT_ON_ZERO_ACTIVE_CONNECTIONS'], undefined);
    });

    it('sends no PILOT_SAN when the control plane is plaintext', () => {
      const node = buildNode(load('ipv4', {}, { PROXY_CONFIG: 'serviceCluster: nginx.istio-demo\ncontrolPlaneAuthPolicy: NONE\n' }));
      assert.equal(node.metadata['PILOT_SAN'], undefined);
      const proxyConfig = node.metadata['PROXY_CONFIG'];
      assert.ok(proxyConfig !== null && typeof proxyConfig === 'object' && !Array.isArray(proxyConfig));
      // NONE is the enum's zero value, which protojson leaves out.
      assert.equal(proxyConfig['controlPlaneAuthPolicy'], undefined);
    });

    it('maps localhost discovery to istiod.istio-system.svc in PILOT_SAN', () => {
      const node = buildNode(load('ipv4', {}, { PROXY_CONFIG: 'discoveryAddress: localhost:15012\n' }));
      assert.deepEqual(node.metadata['PILOT_SAN'], ['istiod.istio-system.svc']);
    });

    it('lets ISTIO_META_ISTIO_VERSION override the reported version', () => {
      assert.equal(buildNode(load('ipv4', {}, { ISTIO_META_ISTIO_VERSION: '1.24.2' })).metadata['ISTIO_VERSION'], '1.24.2');
    });

    it('adds the credential flags and GENERATOR when asked', () => {
      const node = buildNode(load('ipv4'), { credentialSocketExists: true, serveOnlyFiles: true, generator: 'grpc' });
      assert.equal(node.metadata['credential'], 'true');
      assert.equal(node.metadata['file-credential'], 'true');
      assert.equal(node.metadata['GENERATOR'], 'grpc');
      assert.equal(node.typedMetadata['GENERATOR'], 'grpc');
      assert.equal(node.typedMetadata['credential'], undefined);
      assert.equal(buildNode(load('ipv4')).metadata['GENERATOR'], undefined);
    });
  });

  describe('values pilot-agent cannot decode', () => {
    function errorsOf(config: AgentConfig): string[] {
      try {
        buildNode(config);
      } catch (err) {
        assert.ok(err instanceof ConfigErrors, `expected ConfigErrors, got ${String(err)}`);
        return err.errors.map((e) => e.message);
      }
      return assert.fail('expected buildNode to throw');
    }

    it('fails on an empty typed boolean, as pilot-agent does', () => {
      const files = { [CLUSTER_ENV]: clusterEnvWith('nil-proxy-metadata', { ISTIO_META_DNS_CAPTURE: "''" }) };
      assert.deepEqual(errorsOf(load('nil-proxy-metadata', files, {}, ['192.168.56.12'])), [
        'ISTIO_META_DNS_CAPTURE: node metadata DNS_CAPTURE: expected "true" or "false", got a string ("")',
      ]);
    });

    it('fails on a port given as a string and on a malformed POD_PORTS entry', () => {
      const files = { [CLUSTER_ENV]: clusterEnvWith('ipv4', { ISTIO_META_POD_PORTS: '\'[{"containerPort":"80"}]\'' }) };
      assert.deepEqual(errorsOf(load('ipv4', files, { ISTIO_META_ENVOY_STATUS_PORT: '15021' })), [
        'ISTIO_META_ENVOY_STATUS_PORT: node metadata ENVOY_STATUS_PORT: expected an integer, got a string ("15021")',
        'ISTIO_META_POD_PORTS: node metadata POD_PORTS: port 0: containerPort: expected an integer, got a string ("80")',
      ]);
    });

    it('names the ISTIO_METAJSON_ variable a bad value came from', () => {
      assert.deepEqual(errorsOf(load('ipv4', {}, { ISTIO_METAJSON_X: '{"labels":{"a":1}}' })), [
        'ISTIO_METAJSON_X: node metadata labels (as LABELS): expected an object of strings, but "a" is a number (1)',
      ]);
    });
  });

  describe('toProtoNode', () => {
    it('carries id, cluster, locality and the metadata as a Struct, with no user agent', () => {
      const node = buildNode(load('ipv4'));
      const proto = toProtoNode(node);
      assert.equal(proto.id, node.id);
      assert.equal(proto.cluster, 'nginx.istio-demo');
      assert.deepEqual(proto.locality, { region: '', zone: '', sub_zone: '' });
      assert.equal(proto.user_agent_name, undefined);
      assert.deepEqual(fromStruct(proto.metadata), node.metadata);
    });
  });
});
