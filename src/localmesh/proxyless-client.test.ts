import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { ProtoSchema } from '../proto/index.js';
import { LocalControlPlane } from './local-control-plane.js';
import {
  CLUSTER_LOAD_ASSIGNMENT_TYPE_URL,
  CLUSTER_TYPE_URL,
  LISTENER_TYPE_URL,
  ROUTE_CONFIGURATION_TYPE_URL,
  ResourceSchema,
} from './resource-schema.js';
import { Cleanups, makeTempDir } from './test-support.js';

const CLIENT_SCRIPT = fileURLToPath(new URL('./testdata/xds-client.ts', import.meta.url));
// mocha loads this file through tsx's CommonJS hook, where import.meta.resolve does not exist.
const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const ECHO_METHOD = '/localmesh.test.Echo/Echo';
const HOST = 'echo.istio-demo.svc.cluster.local';
const NODE_ID = 'sidecar~127.0.0.1~test.istio-demo~istio-demo.svc.cluster.local';

interface ClientResult {
  readonly ok: boolean;
  readonly reply?: string;
  readonly code?: number;
  readonly details?: string;
}

/** A plaintext gRPC server with one unary method answering `<name>: <request>` (raw bytes). */
async function startBackend(cleanups: Cleanups, name: string): Promise<{ port: number; calls: string[] }> {
  const calls: string[] = [];
  const server = new grpc.Server();
  const identity = (bytes: Buffer): Buffer => bytes;
  const echo = {
    path: ECHO_METHOD,
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  };
  server.addService(
    { Echo: echo },
    {
      Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
        calls.push(call.request.toString('utf8'));
        callback(null, Buffer.from(`${name}: ${call.request.toString('utf8')}`));
      },
    },
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound))),
  );
  cleanups.add(() => server.forceShutdown());
  return { port, calls };
}

/** Runs testdata/xds-client.ts in its own Node process; it stays up until its stdin closes. */
function startXdsClient(
  cleanups: Cleanups,
  bootstrapFile: string,
  target: string,
  message: string,
): { child: ChildProcessWithoutNullStreams; result: (timeoutMs: number) => Promise<ClientResult>; stderr: () => string } {
  const child = spawn(process.execPath, ['--import', TSX_LOADER, CLIENT_SCRIPT, target, ECHO_METHOD, message], {
    env: { ...process.env, GRPC_XDS_BOOTSTRAP: bootstrapFile },
    stdio: 'pipe',
  });
  const exited = once(child, 'exit');
  cleanups.add(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.stdin.end();
    const timeout = AbortSignal.timeout(3000);
    await Promise.race([exited, sleep(3000, undefined, { signal: timeout }).catch(() => undefined)]);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const lines = createInterface({ input: child.stdout });
  const firstLine = once(lines, 'line') as Promise<[string]>;
  const result = async (timeoutMs: number): Promise<ClientResult> => {
    const timer = new AbortController();
    cleanups.add(() => timer.abort());
    const line = await Promise.race([
      firstLine.then(([text]) => text),
      exited.then(([code]) => Promise.reject(new Error(`xds client exited with ${String(code)} before answering; stderr:\n${stderr}`))),
      sleep(timeoutMs, undefined, { signal: timer.signal }).then(() =>
        Promise.reject(new Error(`xds client gave no answer within ${timeoutMs} ms; stderr:\n${stderr}`)),
      ),
    ]);
    timer.abort();
    return JSON.parse(line) as ClientResult;
  };
  return { child, result, stderr: () => stderr };
}

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
    const backend = await startBackend(cleanups, 'backend-a');
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
