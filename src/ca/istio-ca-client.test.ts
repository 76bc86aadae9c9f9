import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { status } from '@grpc/grpc-js';
import { LogCapture } from '../../test/support/log-capture.js';
import { TempDirs } from '../../test/support/tmp.js';
import { systemClock } from '../clock.js';
import type { CaConfig } from '../config/index.js';
import { AgentError } from '../errors.js';
import { LocalControlPlane } from '../localmesh/index.js';
import { AgentMetrics } from '../metrics/index.js';
import { ProtoSchema } from '../proto/index.js';
import { generateKeyAndCsr } from './csr.js';
import { IstioCaClient } from './istio-ca-client.js';

const SPIFFE = 'spiffe://cluster.local/ns/istio-demo/sa/vm';

describe('IstioCaClient', function () {
  this.timeout(20_000);
  const schema = new ProtoSchema();
  const dirs = new TempDirs();
  let cp: LocalControlPlane;

  before(async () => {
    cp = new LocalControlPlane({ schema });
    await cp.start();
  });
  after(() => cp.close());
  afterEach(() => {
    cp.setCaAvailable(true);
    dirs.cleanup();
  });

  async function setup(options: { token?: string | null; headers?: Record<string, string>; provCert?: boolean } = {}) {
    const dir = dirs.make();
    const tokenPath = path.join(dir, 'istio-token');
    const token = options.token === undefined ? await cp.issueToken({ namespace: 'istio-demo', serviceAccount: 'vm' }) : options.token;
    if (token !== null) writeFileSync(tokenPath, `${token}\n`);
    const rootCertPath = path.join(dir, 'root-cert.pem');
    writeFileSync(rootCertPath, cp.rootCertPem);
    const config: CaConfig = {
      address: cp.address,
      plaintext: false,
      rootCertPath,
      serverName: 'istiod.istio-system.svc',
      tokenPath,
      headers: { ClusterID: 'Kubernetes', ...options.headers },
      provider: 'Citadel',
      certSigner: '',
    };
    const capture = new LogCapture();
    const metrics = new AgentMetrics();
    const provCertDir = path.join(dir, 'certs');
    const client = new IstioCaClient({
      config,
      provCertDir,
      schema,
      clock: systemClock,
      log: capture.root.scope('citadelclient'),
      retryLog: capture.root.scope('ca'),
      metrics,
      random: () => 0.5,
    });
    return { dir, client, capture, metrics, provCertDir, tokenPath };
  }

  const csr = () => generateKeyAndCsr({ spiffeId: SPIFFE, algorithm: { kind: 'EC', curve: 'P256' }, pkcs8: false });

  it('signs a CSR with the token and returns the chain with the root last', async () => {
    const { client } = await setup({ headers: { 'x-extra': 'yes' } });
    const chain = await client.sign((await csr()).csrPem, 600);
    assert.equal(chain.length, 2);
    assert.equal(chain.at(-1)?.trim(), cp.rootCertPem.trim());
    assert.equal(new X509Certificate(chain[0] ?? '').subjectAltName, `URI:${SPIFFE}`);
    const call = cp.caCalls.at(-1);
    assert.equal(call?.clusterId, 'Kubernetes');
    assert.equal(call?.requestedTtlSeconds, 600);
    assert.deepEqual(call?.metadata, { CertSigner: '' });
  });

  it('retries transient failures with backoff, logging each attempt, then reports the failure', async () => {
    const { client, capture, metrics } = await setup();
    cp.setCaAvailable(false);
    const before = cp.caCalls.length;
    await assert.rejects(client.sign((await csr()).csrPem, 600), (err: unknown) => err instanceof AgentError && err.code === 'CA_SIGN_FAILED');
    assert.equal(cp.caCalls.length - before, 5);
    assert.deepEqual(
      capture.find('ca request failed').map((l) => l.split('\t').slice(1, 4).join(' ')),
      [1, 2, 3, 4].map((n) => `warn ca ca request failed, starting attempt ${n} in ${100 * 2 ** (n - 1)}ms`),
    );
    assert.match(capture.find('failed to sign CSR')[0] ?? '', /failed to sign CSR: rpc error: code = Unavailable desc = /);
    const text = await metrics.registry.metrics();
    assert.match(text, /istio_agent_num_outgoing_retries\{request_type="csr"\} 4/);
    assert.match(text, /istio_agent_num_failed_outgoing_requests\{request_type="csr"\} 5/);
  });

  it('does not retry when the token is rejected', async () => {
    const { client, capture } = await setup({ token: 'garbage' });
    const before = cp.caCalls.length;
    await assert.rejects(client.sign((await csr()).csrPem, 600), (err: unknown) => err instanceof AgentError && err.code === 'CA_UNAUTHENTICATED');
    assert.equal(cp.caCalls.length - before, 1);
    assert.equal(cp.caCalls.at(-1)?.code, status.UNAUTHENTICATED);
    assert.equal(capture.find('ca request failed').length, 0);
  });

  it('authenticates with the provisioned certificate once the token file is empty', async () => {
    const { client, capture, provCertDir, tokenPath } = await setup();
    // First issuance with the token, stored where PROV_CERT points.
    const { csrPem, privateKeyPem } = await csr();
    const chain = await client.sign(csrPem, 600);
    mkdirSync(provCertDir, { recursive: true });
    writeFileSync(path.join(provCertDir, 'cert-chain.pem'), chain.join(''));
    writeFileSync(path.join(provCertDir, 'key.pem'), privateKeyPem);
    writeFileSync(tokenPath, '');
    await client.sign((await csr()).csrPem, 600);
    assert.equal(cp.issued.at(-1)?.authMethod, 'mtls');
    assert.equal(capture.find('failed to fetch token').length, 0, 'an empty token file is no token, not an error');
  });

  it('falls back to the token when the provisioned certificate cannot be parsed', async () => {
    const { client, capture, provCertDir } = await setup();
    mkdirSync(provCertDir, { recursive: true });
    writeFileSync(path.join(provCertDir, 'cert-chain.pem'), 'not a certificate');
    writeFileSync(path.join(provCertDir, 'key.pem'), 'not a key');
    await client.sign((await csr()).csrPem, 600);
    assert.equal(cp.issued.at(-1)?.authMethod, 'jwt');
    assert.match(capture.find('cannot parse the cert chain, using token instead')[0] ?? '', /warn\tcitadelclient/);
  });

  it('uses the token when the provisioned key does not match the provisioned certificate', async () => {
    const { client, capture, provCertDir } = await setup();
    const first = await csr();
    const chain = await client.sign(first.csrPem, 600);
    mkdirSync(provCertDir, { recursive: true });
    writeFileSync(path.join(provCertDir, 'cert-chain.pem'), chain.join(''));
    writeFileSync(path.join(provCertDir, 'key.pem'), (await csr()).privateKeyPem); // another issuance's key
    await client.sign((await csr()).csrPem, 600);
    assert.equal(cp.issued.at(-1)?.authMethod, 'jwt');
    assert.match(capture.find('cannot parse the cert chain, using token instead')[0] ?? '', /does not match/);
  });

  it('warns and sends no authorization header when the token file is missing', async () => {
    const { client, capture } = await setup({ token: null });
    await assert.rejects(client.sign((await csr()).csrPem, 600));
    assert.match(capture.find('failed to fetch token from file')[0] ?? '', /warn\tcitadelclient\tfailed to fetch token from file: ENOENT/);
    assert.match(cp.caCalls.at(-1)?.details ?? '', /no token|missing|authenticate/i);
  });
});
