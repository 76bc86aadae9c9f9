import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { validateBootstrapConfig } from '@grpc/grpc-js-xds/build/src/xds-bootstrap.js';
import { CLUSTER_ENV, MESH, VmTrees, fakeInterfaces } from '../../../test/fixtures/config/vm-tree.js';
import { scenarioClusterEnv, scenarioMesh } from '../../../test/support/vm-files.js';
import { loadAgentConfig, type AgentConfig } from '../../config/index.js';
import { buildGrpcBootstrap, formatGrpcBootstrap, grpcBootstrapPath, writeGrpcBootstrap } from './grpc-bootstrap.js';
import { buildNode } from './node-metadata.js';
import { assertGolden as assertGoldenFile } from '../../../test/support/golden.js';

const GOLDEN_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/golden/grpc-bootstrap');

/** The golden file for `name`, with the temporary working directory replaced. */
function assertGolden(name: string, cwd: string, text: string): void {
  assertGoldenFile(GOLDEN_DIR, name, `${text.replaceAll(cwd, '')}
`);
}

describe('gRPC bootstrap', () => {
  const trees = VmTrees.forSuite();

  function load(cwd: string, env: Record<string, string> = {}, interfaces: string[] = ['192.168.56.11']): AgentConfig {
    return loadAgentConfig({ cwd, env, networkInterfaces: fakeInterfaces(...interfaces), hostname: () => 'vm-1.example.com' });
  }

  const cases: { name: string; make: () => string; interfaces: string[] }[] = [
    { name: 'ipv4', make: () => trees.make('ipv4'), interfaces: ['192.168.56.11'] },
    { name: 'ipv6', make: () => trees.make('ipv6'), interfaces: ['fd00:56::11'] },
    { name: 'nil-proxy-metadata', make: () => trees.make('nil-proxy-metadata'), interfaces: ['192.168.56.12'] },
    {
      name: 'scenario',
      make: () => trees.make(undefined, { [CLUSTER_ENV]: scenarioClusterEnv(), [MESH]: scenarioMesh('istiod.istio-system.svc:15012', { statusPort: 15020 }) }),
      interfaces: ['192.168.56.11'],
    },
  ];
  for (const c of cases) {
    it(`matches the golden file for ${c.name}`, () => {
      const cwd = c.make();
      const config = load(cwd, {}, c.interfaces);
      assertGolden(c.name, cwd, formatGrpcBootstrap(buildGrpcBootstrap(config, buildNode(config))));
    });
  }

  it('has exactly the golden files it checks', () => {
    const names = readdirSync(GOLDEN_DIR).filter((f) => f.endsWith('.json'));
    assert.deepEqual(names.sort(), cases.map((c) => `${c.name}.json`).sort());
  });

  it('points at the xDS socket as pilot-agent does when running in /', () => {
    const cwd = trees.make('ipv4');
    const bootstrap = buildGrpcBootstrap(load(cwd), buildNode(load(cwd)));
    assert.deepEqual(bootstrap.xds_servers, [
      { server_uri: `unix://${cwd}/etc/istio/proxy/XDS`, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] },
    ]);
    assert.equal(bootstrap.xds_servers[0]?.server_uri.replace(cwd, ''), 'unix:///etc/istio/proxy/XDS');
    assert.equal(bootstrap.server_listener_resource_name_template, 'xds.istio.io/grpc/lds/inbound/%s');
  });

  it('sends the typed metadata only, with GENERATOR grpc', () => {
    const cwd = trees.make('ipv4');
    const config = load(cwd);
    const node = buildNode(config);
    const { metadata } = buildGrpcBootstrap(config, node).node;
    assert.equal(metadata['AUTO_REGISTER_GROUP'], 'nginx');
    assert.equal(metadata['CLUSTER_ID'], 'Kubernetes');
    for (const key of ['NETWORK', 'MESH_ID', 'app']) assert.ok(!(key in metadata), key);
    assert.deepEqual(Object.keys(metadata), Object.keys(metadata).sort());
    assert.deepEqual(metadata, { ...node.typedMetadata, GENERATOR: 'grpc' });
  });

  it('points the certificate provider into OUTPUT_CERTS, and leaves it out without one', () => {
    const cwd = trees.make('ipv4');
    const config = load(cwd);
    assert.deepEqual(buildGrpcBootstrap(config, buildNode(config)).certificate_providers, {
      default: {
        plugin_name: 'file_watcher',
        config: {
          certificate_file: `${cwd}/etc/certs/cert-chain.pem`,
          private_key_file: `${cwd}/etc/certs/key.pem`,
          ca_certificate_file: `${cwd}/etc/certs/root-cert.pem`,
          refresh_interval: '900s',
        },
      },
    });
    const custom = load(cwd, { OUTPUT_CERTS: 'var/lib/certs' });
    assert.equal(buildGrpcBootstrap(custom, buildNode(custom)).certificate_providers?.default.config.certificate_file, `${cwd}/var/lib/certs/cert-chain.pem`);
    const none = load(cwd, { OUTPUT_CERTS: '' });
    const bootstrap = buildGrpcBootstrap(none, buildNode(none));
    assert.equal(bootstrap.certificate_providers, undefined);
    assert.ok(!formatGrpcBootstrap(bootstrap).includes('certificate_providers'));
  });

  it('carries the node locality', () => {
    const labels = '\'{"app":"nginx","topology.istio.io/locality":"us-east1/us-east1-b"}\'';
    const cwd = trees.make(undefined, { [CLUSTER_ENV]: scenarioClusterEnv({ ISTIO_METAJSON_LABELS: labels }), [MESH]: scenarioMesh('istiod.istio-system.svc:15012', { statusPort: 15020 }) });
    const config = load(cwd);
    assert.deepEqual(buildGrpcBootstrap(config, buildNode(config)).node.locality, { region: 'us-east1', zone: 'us-east1-b' });
  });

  it('is accepted by grpc-js-xds', () => {
    const cwd = trees.make('ipv4');
    const config = load(cwd);
    const parsed: unknown = JSON.parse(formatGrpcBootstrap(buildGrpcBootstrap(config, buildNode(config))));
    const validated = validateBootstrapConfig(parsed);
    assert.equal(validated.node.id, config.identity.nodeId);
    assert.equal(validated.xdsServers[0]?.server_uri, `unix://${cwd}/etc/istio/proxy/XDS`);
    assert.equal(validated.serverListenerResourceNameTemplate, 'xds.istio.io/grpc/lds/inbound/%s');
    assert.deepEqual(Object.keys(validated.certificateProviders), ['default']);
  });

  it('escapes HTML characters as Go does', () => {
    const cwd = trees.make('ipv4');
    const config = load(cwd, { ISTIO_META_OWNER: 'a<b>&c' });
    const text = formatGrpcBootstrap(buildGrpcBootstrap(config, buildNode(config)));
    assert.ok(text.includes('"OWNER": "a\\u003cb\\u003e\\u0026c"'), text);
    const parsed = JSON.parse(text) as { node: { metadata: Record<string, unknown> } };
    assert.equal(parsed.node.metadata['OWNER'], 'a<b>&c');
  });

  describe('path', () => {
    it('defaults to ./etc/istio/proxy/grpc-bootstrap.json under the working directory', () => {
      const cwd = trees.make('ipv4');
      assert.equal(grpcBootstrapPath(load(cwd)), path.join(cwd, 'etc/istio/proxy/grpc-bootstrap.json'));
    });

    it('follows GRPC_XDS_BOOTSTRAP, and writes none when it is empty', () => {
      const cwd = trees.make('ipv4');
      assert.equal(grpcBootstrapPath(load(cwd, { GRPC_XDS_BOOTSTRAP: 'var/run/grpc.json' })), path.join(cwd, 'var/run/grpc.json'));
      assert.equal(grpcBootstrapPath(load(cwd, { GRPC_XDS_BOOTSTRAP: '/srv/grpc.json' })), '/srv/grpc.json');
      assert.equal(grpcBootstrapPath(load(cwd, { GRPC_XDS_BOOTSTRAP: '' })), undefined);
    });
  });

  describe('writeGrpcBootstrap', () => {
    it('creates the parent directory 0700 and writes the file 0644 atomically', async () => {
      const cwd = trees.make('ipv4');
      const config = load(cwd);
      const bootstrap = buildGrpcBootstrap(config, buildNode(config));
      const file = path.join(cwd, 'etc/istio/proxy/grpc/bootstrap.json');
      const previous = process.umask(0o077);
      try {
        await writeGrpcBootstrap(file, bootstrap);
      } finally {
        process.umask(previous);
      }
      assert.equal(statSync(path.dirname(file)).mode & 0o777, 0o700);
      assert.equal(statSync(file).mode & 0o777, 0o644);
      assert.equal(readFileSync(file, 'utf8'), formatGrpcBootstrap(bootstrap));
      assert.deepEqual(readdirSync(path.dirname(file)), ['bootstrap.json']);
    });

    it('replaces an existing file', async () => {
      const dir = trees.make(undefined);
      const file = path.join(dir, 'grpc-bootstrap.json');
      writeFileSync(file, 'old');
      const cwd = trees.make('ipv4');
      const config = load(cwd);
      await writeGrpcBootstrap(file, buildGrpcBootstrap(config, buildNode(config)));
      assert.equal((JSON.parse(readFileSync(file, 'utf8')) as { node: { id: string } }).node.id, config.identity.nodeId);
      assert.deepEqual(readdirSync(dir).filter((f) => f.includes('grpc-bootstrap')), ['grpc-bootstrap.json']);
    });

    it('leaves no temporary file behind when the write fails', async () => {
      const cwd = trees.make('ipv4');
      const config = load(cwd);
      // A directory in the file's place makes the rename fail.
      const file = path.join(cwd, 'taken');
      mkdirSync(path.join(file, 'child'), { recursive: true });
      await assert.rejects(writeGrpcBootstrap(file, buildGrpcBootstrap(config, buildNode(config))));
      assert.deepEqual(readdirSync(cwd).filter((f) => f.startsWith('taken')), ['taken']);
    });
  });
});
