import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { LocalControlPlane } from '../../src/localmesh/index.js';
import { type DiscoveryRequest, type DiscoveryResponse, ProtoSchema, SECRET_TYPE_URL, type Secret } from '../../src/proto/index.js';
import { AgentProcess } from '../support/agent-process.js';
import { TestStream } from '../support/stream-client.js';
import { TempDirs } from '../support/tmp.js';
import { scenarioMesh, writeVmFiles } from '../support/vm-files.js';

const SDS_SOCKET = 'var/run/secrets/workload-spiffe-uds/socket';
const NODE = { id: 'sidecar~10.0.0.1~vm.istio-demo~istio-demo.svc.cluster.local', cluster: 'nginx.istio-demo' };

describe('agent identity (whole agent against the local control plane)', function () {
  this.timeout(60_000);
  const schema = new ProtoSchema();
  const dirs = new TempDirs();
  let cp: LocalControlPlane;
  const agents: AgentProcess[] = [];
  const clients: grpc.Client[] = [];

  beforeEach(async () => {
    cp = new LocalControlPlane({ maxCertTtlSeconds: 3600 });
    await cp.start();
  });

  afterEach(async function () {
    for (const c of clients.splice(0)) c.close();
    for (const a of agents.splice(0)) {
      if (this.currentTest?.state === 'failed') console.log(a.dump());
      await a.stop();
    }
    await cp.close();
    dirs.cleanup();
  });

  async function startAgent(options: { token?: string | null; env?: Record<string, string>; ttlSeconds?: number } = {}) {
    const cwd = dirs.make();
    const token = options.token === null ? undefined : (options.token ?? (await cp.issueToken({ namespace: 'istio-demo', serviceAccount: 'vm', ttlSeconds: 3600 })));
    writeVmFiles(cwd, { mesh: scenarioMesh(cp.address), rootCertPem: cp.rootCertPem, token });
    const agent = AgentProcess.start({
      cwd,
      env: {
        CA_ADDR: cp.address,
        INSTANCE_IP: '10.0.0.1',
        SECRET_TTL: `${options.ttlSeconds ?? 3600}s`,
        ...options.env,
      },
    });
    agents.push(agent);
    return { cwd, agent };
  }

  async function sdsStream(agent: AgentProcess, cwd: string, names: string[]) {
    await agent.waitForLog('Starting SDS server for workload certificates');
    const client = new grpc.Client(`unix://${path.join(cwd, SDS_SOCKET)}`, grpc.credentials.createInsecure());
    clients.push(client);
    const stream = new TestStream<DiscoveryRequest, DiscoveryResponse>(client, schema.sdsService.StreamSecrets);
    stream.send({ version_info: '', node: NODE, resource_names: names, type_url: SECRET_TYPE_URL, response_nonce: '', error_detail: null });
    return stream;
  }

  function secretsOf(response: DiscoveryResponse): Secret[] {
    return response.resources.map((r) => schema.secret.decode(r.value));
  }

  function leafOf(secret: Secret | undefined): X509Certificate {
    const chain = secret?.tls_certificate?.certificate_chain?.inline_bytes?.toString() ?? '';
    return new X509Certificate(chain);
  }

  it('obtains a certificate that openssl verifies against the mesh root, with the right SAN and key', async () => {
    const { cwd, agent } = await startAgent();
    await agent.waitForLog('generated new workload certificate');
    const certs = path.join(cwd, 'etc/certs');
    const chain = readFileSync(path.join(certs, 'cert-chain.pem'), 'utf8');
    const leafPem = chain.slice(0, chain.indexOf('-----END CERTIFICATE-----') + 26);
    writeFileSync(path.join(cwd, 'leaf.pem'), leafPem);
    const verdict = execFileSync('openssl', ['verify', '-CAfile', path.join(certs, 'root-cert.pem'), path.join(cwd, 'leaf.pem')], { encoding: 'utf8' });
    assert.match(verdict, /leaf\.pem: OK/);
    assert.equal(readFileSync(path.join(certs, 'root-cert.pem'), 'utf8').trim(), cp.rootCertPem.trim());
    const leaf = new X509Certificate(leafPem);
    assert.equal(leaf.subjectAltName, 'URI:spiffe://cluster.local/ns/istio-demo/sa/vm');
    assert.ok(leaf.checkPrivateKey(createPrivateKey(readFileSync(path.join(certs, 'key.pem')))));
    assert.equal(cp.issued[0]?.authMethod, 'jwt');
    // Never a key or a token in the log.
    const all = agent.stdout.join('\n');
    assert.doesNotMatch(all, /PRIVATE KEY|eyJ[A-Za-z0-9_-]{10,}\./);
  });

  it('serves "default" and "ROOTCA" over SDS on the unix socket and logs the pushes', async () => {
    const { cwd, agent } = await startAgent();
    await agent.waitForLog('Starting SDS server for workload certificates, will listen on "var/run/secrets/workload-spiffe-uds/socket"');
    const workload = await sdsStream(agent, cwd, ['default']);
    const roots = await sdsStream(agent, cwd, ['ROOTCA']);
    const [cert] = secretsOf(await workload.next(20_000));
    const [root] = secretsOf(await roots.next(20_000));
    assert.equal(cert?.name, 'default');
    assert.equal(leafOf(cert).subjectAltName, 'URI:spiffe://cluster.local/ns/istio-demo/sa/vm');
    assert.ok(cert?.tls_certificate?.private_key?.inline_bytes?.toString().includes('PRIVATE KEY'));
    assert.equal(root?.validation_context?.trusted_ca?.inline_bytes?.toString().trim(), cp.rootCertPem.trim());
    await agent.waitForLog('SDS: PUSH resource=default');
    await agent.waitForLog('SDS: PUSH resource=ROOTCA');
  });

  it('pushes a rotated certificate on the open stream before the old one expires', async () => {
    const { cwd, agent } = await startAgent({ ttlSeconds: 4 });
    const stream = await sdsStream(agent, cwd, ['default']);
    const first = leafOf(secretsOf(await stream.next(20_000))[0]);
    const second = leafOf(secretsOf(await stream.next(20_000))[0]);
    assert.notEqual(second.serialNumber, first.serialNumber);
    assert.ok(Date.now() < Date.parse(first.validTo), 'rotated before expiry');
    await agent.waitForLog('SDS: PUSH resource=default', { count: 2 });
  });

  it('keeps serving the old certificate while the CA is down, and pushes a new one when it returns', async () => {
    const { cwd, agent } = await startAgent({ ttlSeconds: 6 });
    const stream = await sdsStream(agent, cwd, ['default']);
    const first = leafOf(secretsOf(await stream.next(20_000))[0]);
    cp.setCaAvailable(false);
    await agent.waitForLog('keeping the current certificate', { timeoutMs: 20_000 });
    // A new SDS stream still gets the working certificate.
    const again = await sdsStream(agent, cwd, ['default']);
    assert.equal(leafOf(secretsOf(await again.next(20_000))[0]).serialNumber, first.serialNumber);
    cp.setCaAvailable(true);
    const rotated = leafOf(secretsOf(await stream.next(20_000))[0]);
    assert.notEqual(rotated.serialNumber, first.serialNumber);
  });

  it('says clearly that the token was rejected, and retries until a good token appears', async () => {
    const { cwd, agent } = await startAgent({ token: 'not-a-jwt' });
    const line = await agent.waitForLog('failed to sign CSR');
    assert.match(line, /Unauthenticated/);
    await agent.waitForLog('failed to warm certificate');
    const good = await cp.issueToken({ namespace: 'istio-demo', serviceAccount: 'vm' });
    writeFileSync(path.join(cwd, 'var/run/secrets/tokens/istio-token'), good);
    await agent.waitForLog('generated new workload certificate', { timeoutMs: 30_000 });
    assert.equal(cp.issued.length, 1);
  });

  it('renews over mTLS with its own certificate after the token file is removed', async () => {
    const { cwd, agent } = await startAgent({ ttlSeconds: 4 });
    await agent.waitForLog('generated new workload certificate');
    rmSync(path.join(cwd, 'var/run/secrets/tokens/istio-token'));
    await agent.waitForLog('generated new workload certificate', { count: 2, timeoutMs: 20_000 });
    const renewals = cp.issued.slice(1);
    assert.ok(renewals.length >= 1);
    assert.equal(renewals[0]?.authMethod, 'mtls');
    assert.equal(renewals[0]?.identity, 'spiffe://cluster.local/ns/istio-demo/sa/vm');
    await agent.waitForLog('failed to fetch token from file');
  });

  it('issues ECDSA P-256 certificates when ECC_SIGNATURE_ALGORITHM=ECDSA', async () => {
    const { cwd, agent } = await startAgent({ env: { ECC_SIGNATURE_ALGORITHM: 'ECDSA' } });
    await agent.waitForLog('generated new workload certificate');
    const key = createPrivateKey(readFileSync(path.join(cwd, 'etc/certs/key.pem')));
    assert.equal(key.asymmetricKeyType, 'ec');
    assert.equal(key.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    assert.match(readFileSync(path.join(cwd, 'etc/certs/key.pem'), 'utf8'), /BEGIN EC PRIVATE KEY/);
  });

  it('exits 0 on SIGTERM and removes its SDS socket', async () => {
    const { cwd, agent } = await startAgent();
    await agent.waitForLog('generated new workload certificate');
    assert.equal(await agent.stop(), 0);
    assert.throws(() => readFileSync(path.join(cwd, SDS_SOCKET)));
    assert.ok(agent.lines('Agent has successfully terminated').length === 1);
  });
});
