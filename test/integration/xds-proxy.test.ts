import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { buildClusters, LocalControlPlane, CLUSTER_TYPE_URL } from '../../src/localmesh/index.js';
import { ProtoSchema, toStruct } from '../../src/proto/index.js';
import { AgentProcess } from '../support/agent-process.js';
import { startEchoBackend, startXdsClient } from '../support/proxyless.js';
import { TestStream } from '../support/stream-client.js';
import { TempDirs } from '../support/tmp.js';
import { fakeEnvoyMeshOptions, scenarioMesh, writeVmFiles } from '../support/vm-files.js';
import { DELTA_ADS_PATH, rawMethod, SOTW_ADS_PATH } from '../../src/xds/index.js';

const XDS_SOCKET = 'etc/istio/proxy/XDS';
const SCENARIO_YAML = fileURLToPath(new URL('../fixtures/localmesh/scenario.yaml', import.meta.url));
const ENVOY_NODE = {
  id: 'sidecar~10.0.0.1~vm.istio-demo~istio-demo.svc.cluster.local',
  cluster: 'nginx.istio-demo',
  metadata: toStruct({ ISTIO_VERSION: '1.28.0', sent_by: 'envoy-under-test' }),
};
const rawSotw = rawMethod(SOTW_ADS_PATH);
const rawDelta = rawMethod(DELTA_ADS_PATH);

describe('xDS proxy (whole agent against the local control plane)', function () {
  this.timeout(90_000);
  const schema = new ProtoSchema();
  const dirs = new TempDirs();
  const cleanups: (() => unknown)[] = [];
  const registry = { add: (task: () => unknown) => void cleanups.push(task) };
  let cp: LocalControlPlane;
  let agent: AgentProcess;
  let cwd: string;

  async function startAgent(env: Record<string, string> = {}) {
    cwd = dirs.make();
    const token = await cp.issueToken({ namespace: 'istio-demo', serviceAccount: 'vm' });
    // Envoy's part is played by the test's clients on the socket; the fake Envoy only stands in for the
    // process, so the agent runs as it does beside Envoy (no xDS stream of its own).
    const mesh = scenarioMesh(cp.address, await fakeEnvoyMeshOptions(cwd));
    writeVmFiles(cwd, { mesh, rootCertPem: cp.rootCertPem, token });
    agent = AgentProcess.start({ cwd, env: { CA_ADDR: cp.address, INSTANCE_IP: '10.0.0.1', DISABLE_ENVOY: 'false', ...env } });
    cleanups.push(() => agent.stop());
    await agent.waitForLog('Initializing with upstream address');
    await agent.waitForLog('gRPC bootstrap written to');
  }

  function xdsClient(): grpc.Client {
    const client = new grpc.Client(`unix://${path.join(cwd, XDS_SOCKET)}`, grpc.credentials.createInsecure(), {
      'grpc.max_receive_message_length': -1,
    });
    cleanups.push(() => client.close());
    return client;
  }

  function sotwRequest(typeUrl: string, extra: { node?: typeof ENVOY_NODE; nonce?: string; version?: string } = {}): Buffer {
    return schema.discoveryRequest.encode({
      version_info: extra.version ?? '',
      node: extra.node ?? null,
      resource_names: [],
      type_url: typeUrl,
      response_nonce: extra.nonce ?? '',
      error_detail: null,
    });
  }

  beforeEach(async () => {
    cp = new LocalControlPlane();
    await cp.start();
    // The cluster side of the scenario: the VM's node names WorkloadGroup nginx (AUTO_REGISTER_GROUP),
    // and, like istiod, the control plane refuses streams whose group does not exist.
    await cp.loadYamlFile(SCENARIO_YAML);
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && agent) console.log(agent.dump());
    for (const task of cleanups.splice(0).reverse()) await task();
    await cp.close();
    dirs.cleanup();
  });

  it('passes a SotW response through byte for byte and forwards Envoy\'s node as it is', async () => {
    await startAgent();
    cp.setResources(CLUSTER_TYPE_URL, buildClusters(3, 200));
    const stream = new TestStream<Buffer, Buffer>(xdsClient(), rawSotw);
    stream.send(sotwRequest(CLUSTER_TYPE_URL, { node: ENVOY_NODE }));
    const received = await stream.next();
    const sent = cp.responses.filter((r) => r.typeUrl === CLUSTER_TYPE_URL).at(-1);
    assert.ok(sent);
    assert.ok(received.equals(sent.bytes), 'response bytes differ from what the control plane sent');
    const node = await cp.waitForNode((n) => n.kind === 'sotw');
    assert.equal(node.id, ENVOY_NODE.id);
    assert.equal(node.metadata['sent_by'], 'envoy-under-test');
    assert.equal(node.authMethod, 'jwt');
    await agent.waitForLog(`connected to upstream XDS server: ${cp.address}`);
    assert.match(agent.lines('connected to upstream XDS server')[0] ?? '', /\tinfo\txdsproxy\tconnected to upstream XDS server: localhost:\d+\tid=1$/);
    // The ACK goes up unchanged too.
    const decoded = schema.discoveryResponse.decode(received);
    stream.send(sotwRequest(CLUSTER_TYPE_URL, { nonce: decoded.nonce, version: decoded.version_info }));
    await cp.waitForAck(CLUSTER_TYPE_URL);
  });

  it('passes a Delta response through byte for byte and logs the delta connect line', async () => {
    await startAgent();
    cp.setResources(CLUSTER_TYPE_URL, buildClusters(2, 100));
    const stream = new TestStream<Buffer, Buffer>(xdsClient(), rawDelta);
    stream.send(
      schema.deltaDiscoveryRequest.encode({
        node: ENVOY_NODE,
        type_url: CLUSTER_TYPE_URL,
        resource_names_subscribe: [],
        resource_names_unsubscribe: [],
        initial_resource_versions: {},
        response_nonce: '',
        error_detail: null,
      }),
    );
    const received = await stream.next();
    const sent = cp.responses.filter((r) => r.kind === 'delta' && r.typeUrl === CLUSTER_TYPE_URL).at(-1);
    assert.ok(sent && received.equals(sent.bytes));
    assert.match(await agent.waitForLog('connected to delta upstream XDS server'), /\txdsproxy\tconnected to delta upstream XDS server: localhost:\d+\tid=1$/);
  });

  it('carries a 20 MB push through, and keeps one active downstream stream', async () => {
    await startAgent();
    cp.setResources(CLUSTER_TYPE_URL, buildClusters(20_000, 1000));
    const client = xdsClient();
    const first = new TestStream<Buffer, Buffer>(client, rawSotw);
    first.send(sotwRequest(CLUSTER_TYPE_URL, { node: ENVOY_NODE }));
    const big = await first.next(30_000);
    assert.ok(big.length >= 20_000_000, `got ${big.length} bytes`);
    assert.ok(big.equals(cp.responses.filter((r) => r.typeUrl === CLUSTER_TYPE_URL).at(-1)?.bytes ?? Buffer.alloc(0)));
    const second = new TestStream<Buffer, Buffer>(client, rawSotw);
    second.send(sotwRequest(CLUSTER_TYPE_URL, { node: ENVOY_NODE }));
    await agent.waitForLog('registered overlapping stream; closing previous');
    const end = await first.ended();
    assert.equal(end.code, grpc.status.CANCELLED);
    assert.ok((await second.next(30_000)).length >= 20_000_000);
  });

  it('ends both streams on a malformed request and keeps serving new ones', async () => {
    await startAgent();
    cp.setResources(CLUSTER_TYPE_URL, buildClusters(1, 50));
    const client = xdsClient();
    const bad = new TestStream<Buffer, Buffer>(client, rawSotw);
    bad.send(Buffer.from([0x22, 0x05, 0x61])); // type_url says 5 bytes, 1 follows
    const end = await bad.ended();
    assert.equal(end.code, grpc.status.INVALID_ARGUMENT);
    await agent.waitForLog('downstream terminated with unexpected error');
    const good = new TestStream<Buffer, Buffer>(client, rawSotw);
    good.send(sotwRequest(CLUSTER_TYPE_URL, { node: ENVOY_NODE }));
    assert.ok((await good.next()).length > 0);
  });

  it('ends both streams when istiod sends a malformed response, and stays up', async () => {
    // A fake istiod (plaintext, controlPlaneAuthPolicy NONE) that answers every request with a cut-off message.
    const fake = new grpc.Server();
    fake.addService(
      { StreamAggregatedResources: rawSotw },
      { StreamAggregatedResources: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => call.on('data', () => call.write(Buffer.from([0x22, 0x05, 0x61]))) },
    );
    const port = await new Promise<number>((resolve, reject) =>
      fake.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    cleanups.push(() => fake.forceShutdown());
    await startAgent({ PROXY_CONFIG: `discoveryAddress: 127.0.0.1:${port}\ncontrolPlaneAuthPolicy: NONE\n` });
    const client = xdsClient();
    const stream = new TestStream<Buffer, Buffer>(client, rawSotw);
    stream.send(sotwRequest(CLUSTER_TYPE_URL, { node: ENVOY_NODE }));
    const end = await stream.ended();
    assert.equal(end.code, grpc.status.UNAVAILABLE);
    assert.match(await agent.waitForLog('upstream terminated with unexpected error'), /malformed response from upstream/);
    // Still serving: the next stream reaches the fake again.
    const again = new TestStream<Buffer, Buffer>(client, rawSotw);
    again.send(sotwRequest(CLUSTER_TYPE_URL, { node: ENVOY_NODE }));
    assert.equal((await again.ended()).code, grpc.status.UNAVAILABLE);
    assert.equal(agent.lines('upstream terminated with unexpected error').length, 2);
  });

  it('keeps its own stream without Envoy, with the VM node metadata istiod registers it by, and reconnects after a restart', async () => {
    await startAgent({ DISABLE_ENVOY: 'true' });
    const node = await cp.waitForNode();
    assert.equal(node.id, 'sidecar~10.0.0.1~vm.istio-demo~istio-demo.svc.cluster.local');
    assert.equal(node.cluster, 'nginx.istio-demo');
    assert.equal(node.kind, 'delta');
    const meta = node.metadata;
    assert.deepEqual(meta['LABELS'], { app: 'nginx', class: 'vm', 'service.istio.io/canonical-name': 'nginx', 'service.istio.io/canonical-version': 'latest' });
    assert.equal(meta['AUTO_REGISTER_GROUP'], 'nginx');
    assert.equal(meta['CLUSTER_ID'], 'Kubernetes');
    assert.equal(meta['NAMESPACE'], 'istio-demo');
    assert.equal(meta['SERVICE_ACCOUNT'], 'vm');
    const ips = meta['INSTANCE_IPS'];
    assert.ok(typeof ips === 'string' && ips.split(',')[0] === '10.0.0.1', `INSTANCE_IPS ${JSON.stringify(ips)}`);
    assert.equal(meta['DNS_CAPTURE'], 'true');
    assert.equal(typeof meta['PROXY_CONFIG'], 'object');
    await agent.waitForLog('connected to delta upstream XDS server');

    await cp.close();
    await cp.start();
    await agent.waitForLog('connected to delta upstream XDS server', { count: 2, timeoutMs: 30_000 });
    await cp.waitForNode();
    assert.ok(agent.lines('reconnecting to upstream XDS server in').length >= 1);
  });

  it('lets a real proxyless gRPC client resolve xds:/// through the agent and call a backend', async () => {
    await startAgent();
    const backend = await startEchoBackend(registry, 'vm-backend');
    const host = 'echo.istio-demo.svc.cluster.local';
    cp.setGrpcServices([{ host, port: backend.port, endpoints: [{ address: '127.0.0.1', port: backend.port }] }]);
    const bootstrap = path.join(cwd, 'etc/istio/proxy/grpc-bootstrap.json');
    const parsed = JSON.parse(readFileSync(bootstrap, 'utf8')) as { xds_servers: { server_uri: string }[] };
    assert.equal(parsed.xds_servers[0]?.server_uri, `unix://${path.join(cwd, XDS_SOCKET)}`);
    const client = startXdsClient(registry, bootstrap, `xds:///${host}:${backend.port}`, 'hello mesh');
    const result = await client.result(30_000);
    assert.deepEqual(result, { ok: true, reply: 'vm-backend: hello mesh' }, client.stderr());
    const node = await cp.waitForNode((n) => n.metadata['GENERATOR'] === 'grpc');
    assert.equal(node.metadata['NAMESPACE'], 'istio-demo');
    await agent.waitForLog('connected to upstream XDS server');
  });

  it('recovers a client stream after the control plane restarts on the same port', async () => {
    await startAgent();
    cp.setResources(CLUSTER_TYPE_URL, buildClusters(1, 50));
    const client = xdsClient();
    const before = new TestStream<Buffer, Buffer>(client, rawSotw);
    before.send(sotwRequest(CLUSTER_TYPE_URL, { node: ENVOY_NODE }));
    await before.next();
    await cp.close();
    const end = await before.ended();
    assert.equal(end.code, grpc.status.UNAVAILABLE);
    await cp.start();
    cp.setResources(CLUSTER_TYPE_URL, buildClusters(1, 50));
    // Envoy reconnects with its own backoff; the agent opens a fresh upstream stream for it.
    const after = new TestStream<Buffer, Buffer>(client, rawSotw);
    after.send(sotwRequest(CLUSTER_TYPE_URL, { node: ENVOY_NODE }));
    assert.ok((await after.next(20_000)).length > 0);
    await agent.waitForLog('connected to upstream XDS server', { count: 2 });
  });

  it('never logs the token it sends upstream', async () => {
    await startAgent({ DISABLE_ENVOY: 'true' });
    await agent.waitForLog('connected to delta upstream XDS server');
    assert.doesNotMatch(agent.stdout.join('\n'), /eyJ[A-Za-z0-9_-]{10,}\./);
  });
});
