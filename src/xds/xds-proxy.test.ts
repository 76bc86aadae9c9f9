import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { LogCapture } from '../../test/support/log-capture.js';
import { TestStream } from '../../test/support/stream-client.js';
import { TempDirs } from '../../test/support/tmp.js';
import { systemClock } from '../clock.js';
import { LocalControlPlane } from '../localmesh/index.js';
import { AgentMetrics } from '../metrics/index.js';
import { IstiodDialer } from '../net/index.js';
import { type Any, ProtoSchema, toStruct } from '../proto/index.js';
import { HEALTH_INFO_TYPE_URL, LISTENER_TYPE_URL, NAME_TABLE_TYPE_URL } from './type-urls.js';
import { XdsProxy } from './xds-proxy.js';
import { rawMethod, SOTW_ADS_PATH } from './protocol.js';

const RAW_SOTW = rawMethod(SOTW_ADS_PATH);
const NODE = { id: 'sidecar~10.0.0.1~vm.istio-demo~istio-demo.svc.cluster.local', cluster: 'nginx.istio-demo', metadata: toStruct({}) };

describe('XdsProxy agent-handled types', function () {
  this.timeout(30_000);
  const schema = new ProtoSchema();
  const dirs = new TempDirs();
  let cp: LocalControlPlane;
  let proxy: XdsProxy;
  let client: grpc.Client;
  let capture: LogCapture;
  let received: Any[];
  let reject: string | undefined;

  beforeEach(async () => {
    cp = new LocalControlPlane({ schema });
    await cp.start();
    const dir = dirs.make();
    writeFileSync(path.join(dir, 'root.pem'), cp.rootCertPem);
    writeFileSync(path.join(dir, 'token'), await cp.issueToken({ namespace: 'istio-demo', serviceAccount: 'vm' }));
    capture = new LogCapture();
    const log = capture.root.scope('xdsproxy');
    proxy = new XdsProxy({
      socketPath: path.join(dir, 'XDS'),
      address: cp.address,
      clusterId: 'Kubernetes',
      delta: false,
      dialer: new IstiodDialer({
        config: {
          address: cp.address,
          plaintext: false,
          rootCertPath: path.join(dir, 'root.pem'),
          serverName: 'istiod.istio-system.svc',
          tokenPath: path.join(dir, 'token'),
          headers: { ClusterID: 'Kubernetes' },
        },
        provCertDir: '',
        clock: systemClock,
        log,
        rootMissing: (_a, f) => `root CA file for XDS does not exist ${f}`,
      }),
      schema,
      clock: systemClock,
      log,
      metrics: new AgentMetrics(),
    });
    received = [];
    reject = undefined;
    proxy.registerHandler(
      NAME_TABLE_TYPE_URL,
      {
        onResource: (resource) => {
          if (reject) throw new Error(reject);
          received.push(resource);
        },
      },
      { subscribe: true },
    );
    await proxy.start(new AbortController().signal);
    client = new grpc.Client(`unix://${path.join(dir, 'XDS')}`, grpc.credentials.createInsecure());
  });

  afterEach(async () => {
    client.close();
    await proxy.close();
    await cp.close();
    dirs.cleanup();
  });

  function request(typeUrl: string, node?: typeof NODE): Buffer {
    return schema.discoveryRequest.encode({ version_info: '', node: node ?? null, resource_names: [], type_url: typeUrl, response_nonce: '', error_detail: null });
  }

  it('asks for the NameTable only after the first LDS request, hands it to its handler, ACKs it and never forwards it', async () => {
    cp.setResources(NAME_TABLE_TYPE_URL, [{ name: '', value: Buffer.from('name-table-bytes') }]);
    cp.setResources(LISTENER_TYPE_URL, []);
    cp.setResources('type.googleapis.com/envoy.config.cluster.v3.Cluster', []);
    const stream = new TestStream<Buffer, Buffer>(client, RAW_SOTW);
    stream.send(request('type.googleapis.com/envoy.config.cluster.v3.Cluster', NODE));
    await cp.waitForRequest((r) => r.typeUrl.endsWith('Cluster'));
    assert.equal(cp.requests.filter((r) => r.typeUrl === NAME_TABLE_TYPE_URL).length, 0, 'no NDS before LDS');
    stream.send(request(LISTENER_TYPE_URL));
    await cp.waitForAck(NAME_TABLE_TYPE_URL);
    assert.deepEqual(received.map((r) => r.value.toString()), ['name-table-bytes']);
    // Envoy gets the Cluster and Listener responses it asked for, and nothing else.
    const types = [schema.discoveryResponse.decode(await stream.next()).type_url, schema.discoveryResponse.decode(await stream.next()).type_url];
    assert.deepEqual(types.sort(), [LISTENER_TYPE_URL, 'type.googleapis.com/envoy.config.cluster.v3.Cluster'].sort());
    await stream.expectSilence(300);
  });

  it('NACKs a resource its handler rejects, with code 13 and the handler\'s message', async () => {
    reject = 'bad table';
    cp.setResources(NAME_TABLE_TYPE_URL, [{ name: '', value: Buffer.from('x') }]);
    const stream = new TestStream<Buffer, Buffer>(client, RAW_SOTW);
    stream.send(request(LISTENER_TYPE_URL, NODE));
    const nack = await cp.waitForNack(NAME_TABLE_TYPE_URL);
    assert.deepEqual(nack.errorDetail, { code: 13, message: 'bad table' });
  });

  it('holds health reports until the stream may carry them, then sends the latest; unhealthy carries code 13', async () => {
    proxy.reportHealth({ healthy: false, message: 'connection refused' });
    const stream = new TestStream<Buffer, Buffer>(client, RAW_SOTW);
    stream.send(request('type.googleapis.com/envoy.config.cluster.v3.Cluster', NODE));
    await cp.waitForRequest((r) => r.typeUrl.endsWith('Cluster'));
    assert.equal(cp.requests.filter((r) => r.typeUrl === HEALTH_INFO_TYPE_URL).length, 0);
    stream.send(request(LISTENER_TYPE_URL));
    const unhealthy = await cp.waitForRequest((r) => r.typeUrl === HEALTH_INFO_TYPE_URL);
    assert.deepEqual(unhealthy.errorDetail, { code: 13, message: 'connection refused' });
    proxy.reportHealth({ healthy: true });
    const healthy = await cp.waitForRequest((r) => r.typeUrl === HEALTH_INFO_TYPE_URL && r.errorDetail === undefined);
    assert.equal(healthy.isNack, false);
  });

  it('drops a type that is not Envoy\'s instead of forwarding it', async () => {
    cp.setResources('type.googleapis.com/istio.unknown.Thing', [{ name: 'a', value: Buffer.from('x') }]);
    const stream = new TestStream<Buffer, Buffer>(client, RAW_SOTW);
    stream.send(request('type.googleapis.com/istio.unknown.Thing', NODE));
    await capture.waitFor('Skipping forwarding type url type.googleapis.com/istio.unknown.Thing to Envoy as is not a valid Envoy type');
    await stream.expectSilence(200);
  });
});
