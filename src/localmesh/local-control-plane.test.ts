import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { ProtoSchema, toStruct, type IstioCertificateRequest } from '../proto/index.js';
import { LocalControlPlane, type LocalControlPlaneOptions } from './local-control-plane.js';
import {
  Cleanups,
  authMetadata,
  connect,
  createCertificate,
 
  expectStatus,
  generateCsr,
  makeTempDir,
  opensslVerify,
  type CsrKind,
} from './test-support.js';

const IDENTITY = 'spiffe://cluster.local/ns/istio-demo/sa/vm';

describe('LocalControlPlane CA', function () {
  this.timeout(30_000);
  const schema = new ProtoSchema();
  const cleanups = new Cleanups();
  afterEach(() => cleanups.runAll());

  async function startCp(options: LocalControlPlaneOptions = {}): Promise<LocalControlPlane> {
    const cp = new LocalControlPlane({ schema, maxCertTtlSeconds: 600, ...options });
    cleanups.add(() => cp.close());
    await cp.start();
    return cp;
  }

  function request(csrPem: string, validity = 3600): IstioCertificateRequest {
    return { csr: csrPem, validity_duration: validity, metadata: toStruct({ CertSigner: '' }) };
  }

  async function tokenMetadata(cp: LocalControlPlane) {
    const token = await cp.issueToken({ namespace: 'istio-demo', serviceAccount: 'vm' });
    return authMetadata({ token, clusterId: 'Kubernetes' });
  }

  for (const kind of ['RSA', 'P-256', 'P-384'] as CsrKind[]) {
    it(`signs a ${kind} CSR for the token's identity, ignoring the SAN the CSR asks for`, async () => {
      const cp = await startCp();
      const client = connect(cleanups, cp.port, cp.rootCertPem);
      const { csrPem } = await generateCsr(kind, 'spiffe://cluster.local/ns/kube-system/sa/admin');
      const response = await createCertificate(client, schema, request(csrPem), await tokenMetadata(cp));

      assert.equal(response.cert_chain.length, 2);
      const [leafPem = '', rootPem = ''] = response.cert_chain;
      assert.equal(rootPem, cp.rootCertPem, 'root comes last');
      const leaf = new X509Certificate(leafPem);
      assert.equal(leaf.subjectAltName, `URI:${IDENTITY}`);
      const dir = await makeTempDir(cleanups);
      assert.match(await opensslVerify(dir, cp.rootCertPem, leafPem), /leaf\.pem: OK/);
      assert.equal(cp.issued.length, 1);
      assert.deepEqual(
        { identity: cp.issued[0]?.identity, authMethod: cp.issued[0]?.authMethod, serial: cp.issued[0]?.serial },
        { identity: IDENTITY, authMethod: 'jwt', serial: leaf.serialNumber },
      );
      assert.equal(cp.caCalls[0]?.clusterId, 'Kubernetes');
    });
  }

  it('records the ClusterID and request metadata of each call', async function () {
    const cp = await startCp();
    const client = connect(cleanups, cp.port, cp.rootCertPem);
    const { csrPem } = await generateCsr('P-256');
    const req = { ...request(csrPem), metadata: toStruct({ CertSigner: 'vm-signer' }) };
    await createCertificate(client, schema, req, await tokenMetadata(cp));
    assert.equal(cp.caCalls[0]?.clusterId, 'Kubernetes');
    assert.equal(cp.caCalls[0]?.requestedTtlSeconds, 3600);
    assert.deepEqual(cp.caCalls[0]?.metadata, { CertSigner: 'vm-signer' });
  });

  it('caps the validity at maxCertTtlSeconds and uses the requested one below it', async () => {
    const cp = await startCp({ maxCertTtlSeconds: 5 });
    const client = connect(cleanups, cp.port, cp.rootCertPem);
    const { csrPem } = await generateCsr('P-256');
    const capped = new X509Certificate((await createCertificate(client, schema, request(csrPem, 86_400), await tokenMetadata(cp))).cert_chain[0] ?? '');
    assert.equal((Date.parse(capped.validTo) - Date.parse(capped.validFrom)) / 1000, 5);
    const short = new X509Certificate((await createCertificate(client, schema, request(csrPem, 3), await tokenMetadata(cp))).cert_chain[0] ?? '');
    assert.equal((Date.parse(short.validTo) - Date.parse(short.validFrom)) / 1000, 3);
    const issued = await cp.waitForIssued(2, 1000);
    assert.equal(issued[1]?.notAfter.getTime(), Date.parse(short.validTo));
  });

  it('serves an RSA root by default and an EC root when asked, both verifiable by openssl', async () => {
    for (const rootKeyAlgorithm of ['RSA', 'EC'] as const) {
      const cp = await startCp({ rootKeyAlgorithm });
      const root = new X509Certificate(cp.rootCertPem);
      assert.equal(root.publicKey.asymmetricKeyType, rootKeyAlgorithm === 'RSA' ? 'rsa' : 'ec');
      const client = connect(cleanups, cp.port, cp.rootCertPem);
      const { csrPem } = await generateCsr('RSA');
      const response = await createCertificate(client, schema, request(csrPem), await tokenMetadata(cp));
      assert.match(await opensslVerify(await makeTempDir(cleanups), cp.rootCertPem, response.cert_chain[0] ?? ''), /OK/);
    }
  });

  it('answers UNAUTHENTICATED without a token or client certificate', async () => {
    const cp = await startCp();
    const client = connect(cleanups, cp.port, cp.rootCertPem);
    const { csrPem } = await generateCsr('P-256');
    const err = await expectStatus(createCertificate(client, schema, request(csrPem), authMetadata({ clusterId: 'Kubernetes' })));
    assert.equal(err.code, status.UNAUTHENTICATED);
    assert.match(err.details, /no client certificate .* no "authorization: Bearer <JWT>"/);
    assert.equal(cp.issued.length, 0);
    assert.equal(cp.caCalls[0]?.code, status.UNAUTHENTICATED);
  });

  it('answers UNAUTHENTICATED for a token it did not sign, an expired one, or one for another audience', async () => {
    const cp = await startCp();
    const stranger = new LocalControlPlane({ schema });
    cleanups.add(() => stranger.close());
    const client = connect(cleanups, cp.port, cp.rootCertPem);
    const { csrPem } = await generateCsr('P-256');
    const cases: [string, RegExp][] = [
      [await stranger.issueToken({ namespace: 'istio-demo', serviceAccount: 'vm' }), /signature verification failed/],
      [await cp.issueToken({ namespace: 'istio-demo', serviceAccount: 'vm', ttlSeconds: -60 }), /JWT expired at/],
      [await cp.issueToken({ namespace: 'istio-demo', serviceAccount: 'vm', audience: 'kubernetes' }), /audience .* "istio-ca"/],
      ['not-a-jwt', /malformed JWT/],
    ];
    for (const [token, message] of cases) {
      const err = await expectStatus(createCertificate(client, schema, request(csrPem), authMetadata({ token, clusterId: 'Kubernetes' })));
      assert.equal(err.code, status.UNAUTHENTICATED);
      assert.match(err.details, message);
      assert.doesNotMatch(err.details, /eyJ/, 'never echoes the token');
    }
    assert.equal(cp.issued.length, 0);
  });

  it('treats a token as expired by the injected clock', async () => {
    let now = Date.now();
    const cp = await startCp({ clock: { now: () => now, sleep: async () => undefined } });
    const client = connect(cleanups, cp.port, cp.rootCertPem);
    const metadata = authMetadata({ token: await cp.issueToken({ namespace: 'istio-demo', serviceAccount: 'vm', ttlSeconds: 60 }), clusterId: 'Kubernetes' });
    const { csrPem } = await generateCsr('P-256');
    await createCertificate(client, schema, request(csrPem), metadata);
    now += 61_000;
    const err = await expectStatus(createCertificate(client, schema, request(csrPem), metadata));
    assert.equal(err.code, status.UNAUTHENTICATED);
    assert.match(err.details, /expired/);
  });

  it('requires the ClusterID metadata to name its cluster when a JWT is used', async () => {
    const cp = await startCp({ clusterId: 'vm-cluster' });
    const client = connect(cleanups, cp.port, cp.rootCertPem);
    const token = await cp.issueToken({ namespace: 'istio-demo', serviceAccount: 'vm' });
    const { csrPem } = await generateCsr('P-256');
    const wrong = await expectStatus(createCertificate(client, schema, request(csrPem), authMetadata({ token, clusterId: 'Kubernetes' })));
    assert.equal(wrong.code, status.UNAUTHENTICATED);
    assert.match(wrong.details, /unknown cluster "Kubernetes".*want "vm-cluster"/);
    const missing = await expectStatus(createCertificate(client, schema, request(csrPem), authMetadata({ token })));
    assert.equal(missing.code, status.UNAUTHENTICATED);
    assert.match(missing.details, /without "clusterid" metadata/);
    await createCertificate(client, schema, request(csrPem), authMetadata({ token, clusterId: 'vm-cluster' }));
  });

  it('renews over mTLS with a certificate it issued, with no token at all', async () => {
    const cp = await startCp();
    const { csrPem, keyPem } = await generateCsr('P-256');
    const first = await createCertificate(connect(cleanups, cp.port, cp.rootCertPem), schema, request(csrPem), await tokenMetadata(cp));
    const mtls = connect(cleanups, cp.port, cp.rootCertPem, { certChainPem: first.cert_chain.join(''), keyPem });
    const next = await generateCsr('RSA');
    const second = await createCertificate(mtls, schema, request(next.csrPem), authMetadata());
    assert.equal(new X509Certificate(second.cert_chain[0] ?? '').subjectAltName, `URI:${IDENTITY}`);
    assert.deepEqual(
      cp.issued.map((i) => [i.identity, i.authMethod]),
      [
        [IDENTITY, 'jwt'],
        [IDENTITY, 'mtls'],
      ],
    );
  });

  it('does not accept a client certificate from another CA as an identity', async () => {
    const cp = await startCp();
    const other = await startCp();
    const { csrPem, keyPem } = await generateCsr('P-256');
    const foreign = await createCertificate(connect(cleanups, other.port, other.rootCertPem), schema, request(csrPem), await tokenMetadata(other));
    const client = connect(cleanups, cp.port, cp.rootCertPem, { certChainPem: foreign.cert_chain.join(''), keyPem });
    const err = await expectStatus(createCertificate(client, schema, request(csrPem), authMetadata()));
    assert.equal(err.code, status.UNAUTHENTICATED);
    // A token still works on the same connection.
    await createCertificate(client, schema, request(csrPem), await tokenMetadata(cp));
    assert.equal(cp.issued[0]?.authMethod, 'jwt');
  });

  it('answers INVALID_ARGUMENT for a CSR it cannot parse', async () => {
    const cp = await startCp();
    const client = connect(cleanups, cp.port, cp.rootCertPem);
    const err = await expectStatus(createCertificate(client, schema, request('-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n'), await tokenMetadata(cp)));
    assert.equal(err.code, status.INVALID_ARGUMENT);
    assert.match(err.details, /CSR/);
  });

  it('answers UNAVAILABLE while the CA is switched off, and signs again once it is back', async () => {
    const cp = await startCp();
    const client = connect(cleanups, cp.port, cp.rootCertPem);
    const { csrPem } = await generateCsr('P-256');
    cp.setCaAvailable(false);
    const err = await expectStatus(createCertificate(client, schema, request(csrPem), await tokenMetadata(cp)));
    assert.equal(err.code, status.UNAVAILABLE);
    cp.setCaAvailable(true);
    await createCertificate(client, schema, request(csrPem), await tokenMetadata(cp));
    assert.equal(cp.issued.length, 1);
  });

  it('fails exactly the next CSR when told to, with the chosen status', async () => {
    const cp = await startCp();
    const client = connect(cleanups, cp.port, cp.rootCertPem);
    const { csrPem } = await generateCsr('P-256');
    cp.rejectNextCsr(status.RESOURCE_EXHAUSTED);
    const err = await expectStatus(createCertificate(client, schema, request(csrPem), await tokenMetadata(cp)));
    assert.equal(err.code, status.RESOURCE_EXHAUSTED);
    cp.rejectNextCsr();
    assert.equal((await expectStatus(createCertificate(client, schema, request(csrPem), await tokenMetadata(cp)))).code, status.INTERNAL);
    await createCertificate(client, schema, request(csrPem), await tokenMetadata(cp));
    assert.equal(cp.issued.length, 1);
  });

  it('comes back on the same port with the same root after close and start', async () => {
    const cp = await startCp();
    const port = cp.port;
    const root = cp.rootCertPem;
    const client = connect(cleanups, port, root);
    const { csrPem } = await generateCsr('P-256');
    const metadata = await tokenMetadata(cp);
    await createCertificate(client, schema, request(csrPem), metadata);
    await cp.close();
    await cp.close(); // idempotent
    assert.equal((await expectStatus(createCertificate(client, schema, request(csrPem), metadata))).code, status.UNAVAILABLE);
    await cp.start();
    assert.equal(cp.port, port);
    assert.equal(cp.rootCertPem, root);
    assert.equal(cp.address, `localhost:${port}`);
    // The same client reconnects, and the token issued before the restart is still accepted.
    await createCertificate(client, schema, request(csrPem), metadata, { waitForReady: true });
    assert.equal(cp.issued.length, 2);
  });

  it('reuses exported state in a new instance: same root, and earlier tokens stay valid', async () => {
    const cp = await startCp();
    const token = await cp.issueToken({ namespace: 'istio-demo', serviceAccount: 'vm' });
    const successor = await startCp({ state: cp.exportState() });
    assert.equal(successor.rootCertPem, cp.rootCertPem);
    const client = connect(cleanups, successor.port, successor.rootCertPem);
    const { csrPem } = await generateCsr('P-256');
    await createCertificate(client, schema, request(csrPem), authMetadata({ token, clusterId: 'Kubernetes' }));
  });

  it('can be closed before it was started, and rejects pending waits on close', async () => {
    const idle = new LocalControlPlane({ schema });
    await idle.close();
    const cp = await startCp();
    const waiting = cp.waitForIssued(1, 60_000);
    await cp.close();
    await assert.rejects(waiting, /closed/);
    await assert.rejects(new LocalControlPlane({ schema }).waitForIssued(1, 10), /timed out after 10 ms waiting for 1 issued certificate/);
  });

  it('does not keep serving when close() races start(), and starts again afterwards', async () => {
    const cp = new LocalControlPlane({ schema });
    cleanups.add(() => cp.close());
    const starting = cp.start();
    const closing = cp.close();
    await starting;
    await closing;
    assert.equal(cp.isServing, false);
    await cp.start();
    assert.equal(cp.isServing, true);
    const client = connect(cleanups, cp.port, cp.rootCertPem);
    const { csrPem } = await generateCsr('P-256');
    await createCertificate(client, schema, request(csrPem), await tokenMetadata(cp));
  });
});
