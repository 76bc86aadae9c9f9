import assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import {
  ProtoSchema,
  SECRET_TYPE_URL,
  toStruct,
  type DeltaDiscoveryRequest,
  type DiscoveryRequest,
  type Node,
} from '../proto/index.js';
import { Cleanups, authMetadata, connect, createCertificate, deltaRequestFor, generateCsr, openDelta, openSotw, sotwRequestFor, startWithClient } from './test-support.js';

const OTHER_TYPE_URL = 'type.googleapis.com/istio.networking.nds.v1.NameTable';
const NODE: Node = {
  id: 'sidecar~10.0.0.1~vm.istio-demo~istio-demo.svc.cluster.local',
  cluster: 'nginx.istio-demo',
  metadata: toStruct({ NAMESPACE: 'istio-demo', DNS_CAPTURE: 'true', INSTANCE_IPS: '10.0.0.1' }),
};

const sotwRequest = (fields: Partial<DiscoveryRequest>) => sotwRequestFor(SECRET_TYPE_URL, fields);
const deltaRequest = (fields: Partial<DeltaDiscoveryRequest>) => deltaRequestFor(SECRET_TYPE_URL, fields);

describe('LocalControlPlane ADS', function () {
  this.timeout(30_000);
  const schema = new ProtoSchema();
  const cleanups = new Cleanups();
  afterEach(() => cleanups.runAll());

  function secret(name: string, content = name): { name: string; value: Buffer } {
    return { name, value: schema.secret.encode({ name, validation_context: { trusted_ca: { inline_bytes: Buffer.from(content) } } }) };
  }

  function secretNames(resources: readonly { value: Buffer }[]): string[] {
    return resources.map((resource) => schema.secret.decode(resource.value).name);
  }

  it('answers a first SotW request with the stored resources, records the node and the ACK', async () => {
    const { cp, client, metadata } = await startWithClient(cleanups, schema);
    cp.setResources(SECRET_TYPE_URL, [secret('a'), secret('b')]);
    const { stream, reader } = openSotw(cleanups, client, schema, metadata);
    stream.write(sotwRequest({ node: NODE }));
    const response = await reader.next();
    assert.equal(response.type_url, SECRET_TYPE_URL);
    assert.equal(response.version_info, '1');
    assert.notEqual(response.nonce, '');
    assert.deepEqual(secretNames(response.resources), ['a', 'b']);
    assert.ok(response.resources.every((resource) => resource.type_url === SECRET_TYPE_URL));

    stream.write(sotwRequest({ version_info: response.version_info, response_nonce: response.nonce }));
    const ack = await cp.waitForAck(SECRET_TYPE_URL);
    assert.deepEqual([ack.kind, ack.isAck, ack.isNack, ack.nonce], ['sotw', true, false, response.nonce]);
    assert.equal(cp.requests[0]?.isAck, false);

    const [node] = cp.connectedNodes;
    assert.deepEqual(
      [node?.kind, node?.id, node?.cluster, node?.peerIdentity, node?.authMethod],
      ['sotw', NODE.id, NODE.cluster, 'spiffe://cluster.local/ns/istio-demo/sa/vm', 'jwt'],
    );
    assert.equal(node?.stream, ack.stream);
  });

  it('records node metadata as JSON', async function () {
    const { cp, client, metadata } = await startWithClient(cleanups, schema);
    const { stream } = openSotw(cleanups, client, schema, metadata);
    stream.write(sotwRequest({ node: NODE }));
    const node = await cp.waitForNode();
    assert.deepEqual(node.metadata, { NAMESPACE: 'istio-demo', DNS_CAPTURE: 'true', INSTANCE_IPS: '10.0.0.1' });
  });

  it('pushes changes to subscribed SotW streams and records a NACK with its error detail', async () => {
    const { cp, client, metadata } = await startWithClient(cleanups, schema);
    cp.setResources(SECRET_TYPE_URL, [secret('a')]);
    const { stream, reader } = openSotw(cleanups, client, schema, metadata);
    stream.write(sotwRequest({ node: NODE }));
    const first = await reader.next();
    stream.write(sotwRequest({ version_info: first.version_info, response_nonce: first.nonce }));
    await cp.waitForAck(SECRET_TYPE_URL);

    cp.setResources(SECRET_TYPE_URL, [secret('a', 'changed'), secret('c')]);
    const pushed = await reader.next();
    assert.equal(pushed.version_info, '2');
    assert.deepEqual(secretNames(pushed.resources), ['a', 'c']);

    stream.write(sotwRequest({ version_info: first.version_info, response_nonce: pushed.nonce, error_detail: { code: 13, message: 'bad secret' } }));
    const nack = await cp.waitForNack(SECRET_TYPE_URL);
    assert.deepEqual([nack.isAck, nack.isNack, nack.errorDetail], [false, true, { code: 13, message: 'bad secret' }]);
    assert.equal(cp.responses.length, 2, 'a NACK gets no reply');
  });

  it('filters SotW responses by resource_names and answers a changed subscription', async () => {
    const { cp, client, metadata } = await startWithClient(cleanups, schema);
    cp.setResources(SECRET_TYPE_URL, [secret('a'), secret('b'), secret('c')]);
    const { stream, reader } = openSotw(cleanups, client, schema, metadata);
    stream.write(sotwRequest({ node: NODE, resource_names: ['b'] }));
    const first = await reader.next();
    assert.deepEqual(secretNames(first.resources), ['b']);
    stream.write(sotwRequest({ version_info: first.version_info, response_nonce: first.nonce, resource_names: ['b', 'c'] }));
    const second = await reader.next();
    assert.deepEqual(secretNames(second.resources), ['b', 'c']);
  });

  it('holds requests for a type it has no resources for until setResources is called', async () => {
    const { cp, client, metadata } = await startWithClient(cleanups, schema);
    const { stream, reader } = openSotw(cleanups, client, schema, metadata);
    stream.write(sotwRequest({ node: NODE, type_url: OTHER_TYPE_URL }));
    await cp.waitForRequest((request) => request.typeUrl === OTHER_TYPE_URL);
    assert.equal(cp.responses.length, 0);
    cp.setResources(OTHER_TYPE_URL, [{ name: 'table', value: Buffer.from([0x0a, 0x00]) }]);
    const response = await reader.next();
    assert.equal(response.type_url, OTHER_TYPE_URL);
    assert.deepEqual(response.resources[0]?.value, Buffer.from([0x0a, 0x00]));
  });

  it('answers a wildcard Delta subscription, then sends only changed resources and removals', async () => {
    const { cp, client, metadata } = await startWithClient(cleanups, schema);
    cp.setResources(SECRET_TYPE_URL, [secret('a'), secret('b')]);
    const { stream, reader } = openDelta(cleanups, client, schema, metadata);
    stream.write(deltaRequest({ node: NODE }));
    const first = await reader.next();
    assert.equal(first.type_url, SECRET_TYPE_URL);
    assert.deepEqual(
      first.resources.map((r) => r.name),
      ['a', 'b'],
    );
    assert.deepEqual(secretNames(first.resources.map((r) => ({ value: r.resource?.value ?? Buffer.alloc(0) }))), ['a', 'b']);
    assert.ok(first.resources.every((r) => r.version !== '' && r.resource?.type_url === SECRET_TYPE_URL));
    stream.write(deltaRequest({ response_nonce: first.nonce }));
    const ack = await cp.waitForAck(SECRET_TYPE_URL);
    assert.deepEqual([ack.kind, ack.isAck], ['delta', true]);
    assert.equal(cp.connectedNodes[0]?.kind, 'delta');

    cp.setResources(SECRET_TYPE_URL, [secret('a'), secret('c')]);
    const second = await reader.next();
    assert.deepEqual(
      second.resources.map((r) => r.name),
      ['c'],
    );
    assert.deepEqual(second.removed_resources, ['b']);
  });

  it('skips Delta resources the client already has and serves explicit subscriptions', async () => {
    const { cp, client, metadata } = await startWithClient(cleanups, schema);
    cp.setResources(SECRET_TYPE_URL, [secret('a'), secret('b'), secret('c')]);
    const probe = openDelta(cleanups, client, schema, metadata);
    probe.stream.write(deltaRequest({ node: NODE, resource_names_subscribe: ['a'] }));
    const probed = await probe.reader.next();
    assert.deepEqual(
      probed.resources.map((r) => r.name),
      ['a'],
    );
    const versionOfA = probed.resources[0]?.version ?? '';

    // A reconnecting client declares what it has; only the rest is sent.
    const { stream, reader } = openDelta(cleanups, client, schema, metadata);
    stream.write(deltaRequest({ node: NODE, resource_names_subscribe: ['a', 'b'], initial_resource_versions: { a: versionOfA } }));
    const first = await reader.next();
    assert.deepEqual(
      first.resources.map((r) => r.name),
      ['b'],
    );
    stream.write(deltaRequest({ response_nonce: first.nonce, resource_names_subscribe: ['c'], resource_names_unsubscribe: ['a'] }));
    const second = await reader.next();
    assert.deepEqual(
      second.resources.map((r) => r.name),
      ['c'],
    );
    const request = await cp.waitForRequest((r) => r.unsubscribe.includes('a'));
    assert.deepEqual(request.resourceNames, ['c']);
  });

  it('refuses ADS streams without a token or client certificate with UNAUTHENTICATED', async () => {
    const { client } = await startWithClient(cleanups, schema);
    const { stream, reader } = openSotw(cleanups, client, schema, authMetadata());
    stream.write(sotwRequest({ node: NODE }));
    const err = await reader.ended;
    assert.equal(err?.code, status.UNAUTHENTICATED);
    assert.match(err?.details ?? '', /request authenticate failure/);
  });

  it('accepts an ADS stream authenticated by a client certificate it issued', async () => {
    const { cp, client, metadata } = await startWithClient(cleanups, schema);
    const { csrPem, keyPem } = await generateCsr('P-256');
    const issued = await createCertificate(client, schema, { csr: csrPem, validity_duration: 600 }, metadata);
    const mtls = connect(cleanups, cp.port, cp.rootCertPem, { certChainPem: issued.cert_chain.join(''), keyPem });
    const { stream } = openDelta(cleanups, mtls, schema, authMetadata());
    stream.write(deltaRequest({ node: NODE }));
    const node = await cp.waitForNode();
    assert.deepEqual([node.authMethod, node.peerIdentity], ['mtls', 'spiffe://cluster.local/ns/istio-demo/sa/vm']);
  });

  it('refuses a stream whose first request carries no node with INVALID_ARGUMENT', async () => {
    const { client, metadata } = await startWithClient(cleanups, schema);
    const { stream, reader } = openSotw(cleanups, client, schema, metadata);
    stream.write(sotwRequest({}));
    const err = await reader.ended;
    assert.equal(err?.code, status.INVALID_ARGUMENT);
    assert.match(err?.details ?? '', /missing node information/);
  });

  it('ends every ADS stream with UNAVAILABLE on dropStreams and no longer lists their nodes', async () => {
    const { cp, client, metadata } = await startWithClient(cleanups, schema);
    const sotw = openSotw(cleanups, client, schema, metadata);
    const delta = openDelta(cleanups, client, schema, metadata);
    sotw.stream.write(sotwRequest({ node: NODE }));
    delta.stream.write(deltaRequest({ node: NODE }));
    await cp.waitForNode((node) => node.kind === 'delta');
    await cp.waitForNode((node) => node.kind === 'sotw');
    assert.equal(cp.dropStreams(), 2);
    assert.equal((await sotw.reader.ended)?.code, status.UNAVAILABLE);
    assert.equal((await delta.reader.ended)?.code, status.UNAVAILABLE);
    assert.equal(cp.connectedNodes.length, 0);
    assert.equal(cp.nodes.length, 2);
    assert.ok(cp.nodes.every((node) => node.disconnectedAt instanceof Date));
  });

  it('ends open streams when closed, and serves new ones after a restart', async () => {
    const { cp, client, metadata } = await startWithClient(cleanups, schema);
    cp.setResources(SECRET_TYPE_URL, [secret('a')]);
    const before = openSotw(cleanups, client, schema, metadata);
    before.stream.write(sotwRequest({ node: NODE }));
    await before.reader.next();
    await cp.close();
    assert.ok((await before.reader.ended) !== undefined, 'stream ended with an error status');
    await cp.start();
    const readyMetadata = metadata.clone();
    readyMetadata.setOptions({ waitForReady: true });
    const after = openSotw(cleanups, client, schema, readyMetadata);
    after.stream.write(sotwRequest({ node: NODE }));
    assert.deepEqual(secretNames((await after.reader.next()).resources), ['a']);
    assert.equal(cp.connectedNodes.length, 1);
  });
});
