import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { LogCapture } from '../../test/support/log-capture.js';
import { TestStream } from '../../test/support/stream-client.js';
import { TempDirs } from '../../test/support/tmp.js';
import { AgentError } from '../errors.js';
import { type DiscoveryRequest, type DiscoveryResponse, ProtoSchema, SECRET_TYPE_URL } from '../proto/index.js';
import type { SecretName } from '../secrets/index.js';
import { SdsServer, type SecretSource } from './sds-server.js';

class StaticSecrets implements SecretSource {
  chain = 'CHAIN-1';
  key = 'KEY-1';
  root = 'ROOT-1';
  readonly #listeners = new Set<(name: SecretName) => void>();
  async getWorkloadSecret() {
    return { certChainPem: this.chain, privateKeyPem: this.key };
  }
  async getRootCert() {
    return this.root;
  }
  onSecretChange(listener: (name: SecretName) => void) {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
  change(name: SecretName) {
    for (const l of this.#listeners) l(name);
  }
}

const NODE = { id: 'sidecar~10.0.0.1~vm.istio-demo~istio-demo.svc.cluster.local', cluster: 'nginx.istio-demo' };

describe('SdsServer', () => {
  const schema = new ProtoSchema();
  const dirs = new TempDirs();
  let server: SdsServer | undefined;
  let client: grpc.Client | undefined;
  let capture: LogCapture;
  let secrets: StaticSecrets;
  let socket: string;

  beforeEach(async () => {
    const dir = dirs.make();
    socket = path.join(dir, 'var/run/secrets/workload-spiffe-uds/socket');
    capture = new LogCapture();
    secrets = new StaticSecrets();
    server = new SdsServer({ socketPath: socket, cwd: dir, schema, secrets, log: capture.root.scope('sds'), adsLog: capture.root.scope('ads') });
    await server.start(new AbortController().signal);
    client = new grpc.Client(`unix://${socket}`, grpc.credentials.createInsecure());
  });

  afterEach(async () => {
    client?.close();
    await server?.close();
    dirs.cleanup();
  });

  function open(): TestStream<DiscoveryRequest, DiscoveryResponse> {
    return new TestStream(client as grpc.Client, schema.sdsService.StreamSecrets);
  }

  function request(names: string[], nonce = '', extra: Partial<DiscoveryRequest> = {}): DiscoveryRequest {
    return { version_info: '', node: null, resource_names: names, type_url: SECRET_TYPE_URL, response_nonce: nonce, error_detail: null, ...extra };
  }

  function decodeSecrets(response: DiscoveryResponse) {
    return response.resources.map((any) => {
      assert.equal(any.type_url, SECRET_TYPE_URL);
      return schema.secret.decode(any.value);
    });
  }

  it('serves the workload certificate as "default" and the trust bundle as "ROOTCA"', async () => {
    const stream = open();
    stream.send(request(['default'], '', { node: NODE }));
    const first = await stream.next();
    const [secret] = decodeSecrets(first);
    assert.equal(secret?.name, 'default');
    assert.equal(secret?.tls_certificate?.certificate_chain?.inline_bytes?.toString(), 'CHAIN-1');
    assert.equal(secret?.tls_certificate?.private_key?.inline_bytes?.toString(), 'KEY-1');
    assert.match(first.version_info, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\/\d+$/);

    const roots = open();
    roots.send(request(['ROOTCA'], '', { node: NODE }));
    const [root] = decodeSecrets(await roots.next());
    assert.equal(root?.validation_context?.trusted_ca?.inline_bytes?.toString(), 'ROOT-1');
    await capture.waitFor('SDS: PUSH resource=ROOTCA');
    assert.equal(capture.find('SDS: PUSH resource=default').length, 1);
    assert.equal(capture.find('ADS: new connection for node:').length, 2);
  });

  it('rejects a first request without node information', async () => {
    const stream = open();
    stream.send(request(['default']));
    const end = await stream.ended();
    assert.equal(end.code, grpc.status.INVALID_ARGUMENT);
    assert.match(end.details, /missing node information/);
  });

  it('does not reply to an ACK, a NACK or a stale nonce, and replies with only the added names', async () => {
    const stream = open();
    stream.send(request(['default'], '', { node: NODE }));
    const first = await stream.next();
    stream.send(request(['default'], first.nonce, { version_info: first.version_info }));
    stream.send(request(['default'], 'stale-nonce'));
    stream.send(request(['default'], first.nonce, { error_detail: { code: 13, message: 'bad cert' } }));
    await stream.expectSilence();
    await capture.waitFor('ADS:SDS: ACK ERROR 1 13:bad cert');
    stream.send(request(['default', 'ROOTCA'], first.nonce));
    const second = await stream.next();
    assert.deepEqual(decodeSecrets(second).map((s) => s.name), ['ROOTCA']);
  });

  it('answers a first request that carries a nonce from an earlier stream, as after a reconnect', async () => {
    const stream = open();
    stream.send(request(['default'], 'nonce-from-before', { node: NODE }));
    assert.equal(decodeSecrets(await stream.next())[0]?.name, 'default');
  });

  it('serves file-cert and file-root secrets from files relative to the agent directory', async () => {
    const dir = path.dirname(path.dirname(path.dirname(path.dirname(path.dirname(socket)))));
    writeFileSync(path.join(dir, 'c.pem'), 'FILE-CHAIN');
    writeFileSync(path.join(dir, 'k.pem'), 'FILE-KEY');
    const stream = open();
    stream.send(request(['file-cert:c.pem~k.pem', 'file-root:c.pem'], '', { node: NODE }));
    const [cert, root] = decodeSecrets(await stream.next());
    assert.equal(cert?.tls_certificate?.private_key?.inline_bytes?.toString(), 'FILE-KEY');
    assert.equal(root?.validation_context?.trusted_ca?.inline_bytes?.toString(), 'FILE-CHAIN');
  });

  it('pushes a changed secret on every open stream watching it', async () => {
    const a = open();
    const b = open();
    a.send(request(['default'], '', { node: NODE }));
    b.send(request(['ROOTCA'], '', { node: NODE }));
    await a.next();
    await b.next();
    secrets.chain = 'CHAIN-2';
    secrets.change('default');
    const pushed = await a.next();
    assert.equal(decodeSecrets(pushed)[0]?.tls_certificate?.certificate_chain?.inline_bytes?.toString(), 'CHAIN-2');
    await b.expectSilence();
  });

  it('ends the stream when a secret cannot be generated, so Envoy retries', async () => {
    secrets.getWorkloadSecret = () => Promise.reject(new Error('CA unreachable'));
    const stream = open();
    stream.send(request(['default'], '', { node: NODE }));
    const end = await stream.ended();
    assert.equal(end.code, grpc.status.INTERNAL);
    assert.match(end.details, /CA unreachable/);
  });

  it('answers DeltaSecrets with UNIMPLEMENTED', async () => {
    const stream = new TestStream(client as grpc.Client, schema.sdsService.DeltaSecrets);
    stream.send({ type_url: SECRET_TYPE_URL, resource_names_subscribe: ['default'], resource_names_unsubscribe: [], initial_resource_versions: {}, response_nonce: '', node: NODE });
    const end = await stream.ended();
    assert.equal(end.code, grpc.status.UNIMPLEMENTED);
  });

  it('replaces a stale socket file but refuses to steal a live one', async () => {
    const dir = dirs.make();
    const stale = path.join(dir, 'stale.sock');
    writeFileSync(stale, '');
    const other = new SdsServer({ socketPath: stale, cwd: dir, schema, secrets, log: capture.root.scope('sds'), adsLog: capture.root.scope('ads') });
    await other.start(new AbortController().signal);
    await other.close();

    const live = path.join(dir, 'live.sock');
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(live, resolve));
    const thief = new SdsServer({ socketPath: live, cwd: dir, schema, secrets, log: capture.root.scope('sds'), adsLog: capture.root.scope('ads') });
    await assert.rejects(thief.start(new AbortController().signal), (err: unknown) => err instanceof AgentError && err.code === 'SOCKET_IN_USE');
    await thief.close();
    await new Promise((resolve) => holder.close(resolve));
  });
});
