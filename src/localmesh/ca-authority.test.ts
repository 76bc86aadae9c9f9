import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CaAuthority, CsrError, parseSpiffeUri, spiffeUri } from './ca-authority.js';
import { Cleanups, generateCsr, makeTempDir, openssl, opensslVerify } from './test-support.js';

const IDENTITY = { trustDomain: 'cluster.local', namespace: 'vm', serviceAccount: 'vm-sa' };

describe('CaAuthority', () => {
  const cleanups = new Cleanups();
  afterEach(() => cleanups.runAll());

  it('creates a self-signed RSA 2048 root that is a critical CA with keyCertSign and cRLSign', async () => {
    const ca = await CaAuthority.create({ trustDomain: 'example.org', keyAlgorithm: 'RSA', now: new Date() });
    const dir = await makeTempDir(cleanups);
    const file = path.join(dir, 'root.pem');
    await writeFile(file, ca.rootCertPem);
    const text = await openssl(['x509', '-in', file, '-noout', '-text']);
    assert.match(text, /Subject: O ?= ?example\.org/);
    assert.match(text, /Public-Key: \(2048 bit\)/);
    assert.match(text, /Basic Constraints: critical\s+CA:TRUE/);
    assert.match(text, /Key Usage: critical\s+Certificate Sign, CRL Sign/);
    assert.match(text, /Subject Key Identifier/);
  });

  it('issues an istiod serving certificate that openssl verifies against the root', async () => {
    const ca = await CaAuthority.create({ trustDomain: 'cluster.local', keyAlgorithm: 'EC', now: new Date() });
    const serving = await ca.issueServingCertificate({ dnsNames: ['istiod.istio-system.svc', 'localhost'], ips: ['127.0.0.1', '::1'], now: new Date() });
    const dir = await makeTempDir(cleanups);
    assert.match(await opensslVerify(dir, ca.rootCertPem, serving.certPem), /leaf\.pem: OK/);
    const cert = new X509Certificate(serving.certPem);
    assert.equal(cert.checkHost('istiod.istio-system.svc'), 'istiod.istio-system.svc');
    assert.equal(cert.checkIP('127.0.0.1'), '127.0.0.1');
    assert.equal(cert.checkIP('::1'), '::1');
  });

  it('certifies the given identity with istiod-shaped extensions, ignoring the CSR SAN', async () => {
    const ca = await CaAuthority.create({ trustDomain: 'cluster.local', keyAlgorithm: 'RSA', now: new Date() });
    const { csrPem } = await generateCsr('P-256', 'spiffe://evil.example/ns/kube-system/sa/admin');
    const now = new Date();
    const leaf = await ca.signCsr({ csrPem, identity: IDENTITY, ttlSeconds: 120, now });
    const dir = await makeTempDir(cleanups);
    assert.match(await opensslVerify(dir, ca.rootCertPem, leaf.certPem), /OK/);
    const text = await openssl(['x509', '-in', path.join(dir, 'leaf.pem'), '-noout', '-text']);
    assert.match(text, /Subject:\s*\n/);
    assert.match(text, /X509v3 Subject Alternative Name: critical\s+URI:spiffe:\/\/cluster\.local\/ns\/vm\/sa\/vm-sa\s*\n/);
    assert.match(text, /Key Usage: critical\s+Digital Signature, Key Encipherment/);
    assert.match(text, /Extended Key Usage:\s+TLS Web Server Authentication, TLS Web Client Authentication/);
    assert.match(text, /Authority Key Identifier/);
    assert.doesNotMatch(text, /evil/);
    assert.equal(leaf.notAfter.getTime() - leaf.notBefore.getTime(), 120_000);
    assert.ok(leaf.notBefore.getTime() <= now.getTime());
    assert.equal(new X509Certificate(leaf.certPem).serialNumber, leaf.serial);
  });

  it('rejects a CSR that is not PEM, or whose signature does not verify, with CsrError', async () => {
    const ca = await CaAuthority.create({ trustDomain: 'cluster.local', keyAlgorithm: 'EC', now: new Date() });
    await assert.rejects(ca.signCsr({ csrPem: 'not a csr', identity: IDENTITY, ttlSeconds: 60, now: new Date() }), CsrError);
    const { csrPem } = await generateCsr('P-256');
    const body = csrPem.split('\n').filter((line) => line && !line.startsWith('-----')).join('');
    const der = Buffer.from(body, 'base64');
    der[der.length - 5] = (der[der.length - 5] ?? 0) ^ 0xff; // corrupt the signature
    const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    await assert.rejects(ca.signCsr({ csrPem: tampered, identity: IDENTITY, ttlSeconds: 60, now: new Date() }), CsrError);
  });

  it('accepts only client certificates it issued and that are still valid', async () => {
    const ca = await CaAuthority.create({ trustDomain: 'cluster.local', keyAlgorithm: 'EC', now: new Date() });
    const other = await CaAuthority.create({ trustDomain: 'cluster.local', keyAlgorithm: 'EC', now: new Date() });
    const { csrPem } = await generateCsr('P-256');
    const now = new Date();
    const leaf = await ca.signCsr({ csrPem, identity: IDENTITY, ttlSeconds: 60, now });
    const der = new X509Certificate(leaf.certPem).raw;
    assert.deepEqual(ca.verifyClientCertificate(der, now), { ok: true, identity: IDENTITY });
    const later = new Date(now.getTime() + 120_000);
    const expired = ca.verifyClientCertificate(der, later);
    assert.equal(expired.ok, false);
    assert.match(expired.ok ? '' : expired.reason, /expired/);
    const foreign = other.verifyClientCertificate(der, now);
    assert.match(foreign.ok ? '' : foreign.reason, /not issued by this control plane/);
  });

  it('reuses exported root material, and refuses a key that does not match the certificate', async () => {
    const ca = await CaAuthority.create({ trustDomain: 'cluster.local', keyAlgorithm: 'RSA', now: new Date() });
    const again = await CaAuthority.fromState(ca.exportState());
    assert.equal(again.rootCertPem, ca.rootCertPem);
    const { csrPem } = await generateCsr('RSA');
    const leaf = await again.signCsr({ csrPem, identity: IDENTITY, ttlSeconds: 60, now: new Date() });
    assert.ok(new X509Certificate(leaf.certPem).verify(new X509Certificate(ca.rootCertPem).publicKey));
    const other = await CaAuthority.create({ trustDomain: 'cluster.local', keyAlgorithm: 'EC', now: new Date() });
    await assert.rejects(CaAuthority.fromState({ rootCertPem: ca.rootCertPem, rootKeyPem: other.exportState().rootKeyPem }), /does not match/);
  });

  it('parses and formats SPIFFE URIs, including an empty trust domain', () => {
    assert.deepEqual(parseSpiffeUri('spiffe:///ns/a/sa/b'), { trustDomain: '', namespace: 'a', serviceAccount: 'b' });
    assert.equal(parseSpiffeUri('spiffe://td/ns/a'), undefined);
    assert.equal(spiffeUri(IDENTITY), 'spiffe://cluster.local/ns/vm/sa/vm-sa');
  });
});
