import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CLUSTER_LOAD_ASSIGNMENT_TYPE_URL, CLUSTER_TYPE_URL, LISTENER_TYPE_URL, ProtoSchema, ROUTE_CONFIGURATION_TYPE_URL } from '../proto/index.js';
import { LocalControlPlane } from './local-control-plane.js';
import {
  ResourceSchema,
} from './resource-schema.js';
import { startEchoBackend, startXdsClient } from '../../test/support/proxyless.js';
import { Cleanups, makeTempDir } from './test-support.js';

const HOST = 'echo.istio-demo.svc.cluster.local';
const NODE_ID = 'sidecar~127.0.0.1~test.istio-demo~istio-demo.svc.cluster.local';

describe('LocalControlPlane with a real proxyless gRPC client', function () {
  this.timeout(60_000);
  const schema = new ProtoSchema();
  const resources = new ResourceSchema();
  const cleanups = new Cleanups();
  afterEach(() => cleanups.runAll());

  it('lets grpc-js-xds resolve xds:///<host>:<port> through LDS, RDS, CDS and EDS and reach the endpoint', async () => {
    const cp = new LocalControlPlane({ schema, resourceSchema: resources, insecure: true });
    cleanups.add(() => cp.close());
    await cp.start();
    const backend = await startEchoBackend(cleanups, 'backend-a');
    const port = backend.port;
    const listener = `${HOST}:${port}`;
    const cluster = `outbound|${port}||${HOST}`;
    cp.setGrpcServices([{ host: HOST, port, endpoints: [{ address: '127.0.0.1', port }] }]);

    const dir = await makeTempDir(cleanups);
    const bootstrapFile = path.join(dir, 'grpc-bootstrap.json');
    await writeFile(
      bootstrapFile,
      JSON.stringify({
        xds_servers: [{ server_uri: `127.0.0.1:${cp.port}`, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
        // grpc-js-xds refuses a bootstrap whose node has no `locality` (Istio's gRPC bootstrap has one).
        node: { id: NODE_ID, locality: {}, metadata: { GENERATOR: 'grpc' } },
      }),
    );
    const client = startXdsClient(cleanups, bootstrapFile, `xds:///${listener}`, 'hello');
    const result = await client.result(30_000);
    assert.deepEqual(result, { ok: true, reply: 'backend-a: hello' }, client.stderr());
    assert.deepEqual(backend.calls, ['hello']);

    // Every type was requested by name and accepted.
    for (const [typeUrl, name] of [
      [LISTENER_TYPE_URL, listener],
      [ROUTE_CONFIGURATION_TYPE_URL, listener],
      [CLUSTER_TYPE_URL, cluster],
      [CLUSTER_LOAD_ASSIGNMENT_TYPE_URL, cluster],
    ] as const) {
      const ack = await cp.waitForAck(typeUrl, 10_000);
      assert.deepEqual([ack.kind, ack.resourceNames], ['sotw', [name]], typeUrl);
    }
    assert.equal(
      cp.requests.filter((request) => request.isNack).length,
      0,
      JSON.stringify(cp.requests.filter((request) => request.isNack)),
    );
    const [node] = cp.nodes;
    assert.equal(cp.nodes.length, 1);
    assert.deepEqual([node?.id, node?.kind, node?.authMethod, node?.metadata.GENERATOR], [NODE_ID, 'sotw', 'none', 'grpc']);

    // A later push of changed endpoints reaches the live client, which accepts it.
    const pushedBefore = cp.responses.length;
    cp.setGrpcServices([
      {
        host: HOST,
        port,
        endpoints: [
          { address: '127.0.0.1', port },
          { address: '127.0.0.2', port },
        ],
      },
    ]);
    const ack = await cp.waitForAck(CLUSTER_LOAD_ASSIGNMENT_TYPE_URL, 10_000);
    const response = cp.responses.find((r) => r.nonce === ack.nonce);
    assert.ok(response && cp.responses.indexOf(response) >= pushedBefore, 'the ACK answers the new push');
    assert.equal(client.child.exitCode, null, 'the client is still connected');
  });
});
