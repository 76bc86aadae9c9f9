import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { FakeCa } from '../../test/fakes/fake-ca.js';
import { FakeClock, flush } from '../../test/fakes/fake-clock.js';
import { LogCapture } from '../../test/support/log-capture.js';
import { TempDirs } from '../../test/support/tmp.js';
import type { SecretsConfig } from '../config/index.js';
import { SecretCache, type SecretName } from './secret-cache.js';

const SPIFFE = 'spiffe:///ns/istio-demo/sa/vm';

function secretsConfig(dir: string, overrides: Partial<SecretsConfig> = {}): SecretsConfig {
  return {
    ttlSeconds: 100,
    gracePeriodRatio: 0.5,
    gracePeriodRatioJitter: 0,
    rsaKeySize: 2048,
    eccCurve: 'P256',
    pkcs8: false,
    provCertDir: path.join(dir, 'etc/certs'),
    outputCertsDir: path.join(dir, 'etc/certs'),
    fileMountedCerts: false,
    fileMountedCertDir: path.join(dir, 'var/run/secrets/workload-spiffe-credentials'),
    sdsSocketPath: path.join(dir, 'sock'),
    ...overrides,
  };
}

describe('SecretCache', () => {
  const dirs = new TempDirs();
  const caches: SecretCache[] = [];
  afterEach(async () => {
    await Promise.all(caches.splice(0).map((c) => c.close()));
    dirs.cleanup();
  });

  async function setup(overrides: Partial<SecretsConfig> = {}) {
    const dir = dirs.make();
    const clock = new FakeClock();
    const ca = await FakeCa.create(clock);
    const capture = new LogCapture({ outputLevel: 'default:debug' });
    const config = secretsConfig(dir, overrides);
    const cache = new SecretCache({
      config,
      spiffeId: SPIFFE,
      extraTrustAnchors: [],
      signer: ca,
      clock,
      log: capture.root.scope('cache'),
      sdsLog: capture.root.scope('sds'),
      random: () => 0.5,
    });
    caches.push(cache);
    const events: SecretName[] = [];
    cache.onSecretChange((name) => events.push(name));
    return { dir, clock, ca, capture, config, cache, events };
  }

  it('issues one certificate for concurrent callers and serves it from the cache afterwards', async () => {
    const { cache, ca } = await setup();
    const [a, b] = await Promise.all([cache.getWorkloadSecret(), cache.getWorkloadSecret()]);
    assert.equal(a, b);
    assert.equal(ca.signed, 1);
    assert.equal(await cache.getWorkloadSecret(), a);
    assert.equal(ca.signed, 1);
    const leaf = new X509Certificate(a.certChainPem);
    assert.equal(leaf.subjectAltName, 'URI:spiffe://cluster.local/ns/istio-demo/sa/vm');
    assert.ok(leaf.checkPrivateKey(await import('node:crypto').then((c) => c.createPrivateKey(a.privateKeyPem))));
    assert.equal(a.rootCertPem, ca.rootCertPem);
  });

  it('writes key, chain and root to OUTPUT_CERTS with mode 0600', async () => {
    const { cache, dir } = await setup();
    const secret = await cache.getWorkloadSecret();
    const out = path.join(dir, 'etc/certs');
    assert.equal(readFileSync(path.join(out, 'key.pem'), 'utf8'), secret.privateKeyPem);
    assert.equal(readFileSync(path.join(out, 'cert-chain.pem'), 'utf8'), secret.certChainPem);
    assert.equal(readFileSync(path.join(out, 'root-cert.pem'), 'utf8'), secret.rootCertPem);
    assert.equal(statSync(path.join(out, 'key.pem')).mode & 0o777, 0o600);
  });

  it('rotates at half the lifetime and tells SDS about the new certificate', async () => {
    const { cache, clock, ca, events, capture } = await setup();
    const first = await cache.getWorkloadSecret();
    await clock.advance(49_000);
    assert.equal(ca.signed, 1);
    await clock.advance(2_000);
    await waitUntil(() => ca.signed === 2);
    await waitUntil(() => events.includes('default'));
    const second = await cache.getWorkloadSecret();
    assert.notEqual(second.serial, first.serial);
    assert.deepEqual(events, ['default']);
    assert.equal(capture.find('generated new workload certificate').length, 2);
  });

  it('keeps serving the old certificate while the CA is unreachable, and rotates once it returns', async () => {
    const { cache, clock, ca, events, capture } = await setup();
    const first = await cache.getWorkloadSecret();
    ca.available = false;
    await clock.advance(51_000);
    await waitUntil(() => ca.attempts >= 2);
    assert.equal((await cache.getWorkloadSecret()).serial, first.serial);
    await clock.advance(1_000); // first backoff
    await waitUntil(() => ca.attempts >= 3);
    assert.equal((await cache.getWorkloadSecret()).serial, first.serial);
    assert.equal(events.length, 0, 'no push while the CA is down');
    assert.ok(capture.find('keeping the current certificate').length >= 2);
    ca.available = true;
    await clock.advance(2_000);
    await waitUntil(() => events.includes('default'));
    assert.notEqual((await cache.getWorkloadSecret()).serial, first.serial);
  });

  it('schedules rotation at expiry minus ratio±jitter of the lifetime', async () => {
    const { cache, clock } = await setup({ gracePeriodRatioJitter: 0.01 });
    const secret = await cache.getWorkloadSecret();
    const lifetime = secret.notAfter - secret.createdAt;
    for (let i = 0; i < 20; i++) {
      const delay = cache.rotationDelay(secret);
      const ratio = (secret.notAfter - clock.now() - delay) / lifetime;
      assert.ok(ratio >= 0.49 && ratio <= 0.51, `ratio ${ratio}`);
    }
  });

  it('warms up in the background, retrying with backoff until the CA answers', async () => {
    const { cache, clock, ca, events, capture } = await setup();
    ca.available = false;
    await cache.start(new AbortController().signal);
    await waitUntil(() => capture.find('failed to warm certificate').length === 1);
    await clock.advance(500);
    await waitUntil(() => capture.find('failed to warm certificate').length === 2);
    ca.available = true;
    await clock.advance(1_000);
    await waitUntil(() => cache.current !== undefined);
    assert.equal(ca.signed, 1);
    assert.equal(events.length, 0, 'warm-up fills the cache without announcing a change');
  });

  it('announces a changed root certificate after rotation', async () => {
    const { cache, clock, ca, events, capture } = await setup();
    const first = await cache.getWorkloadSecret();
    await ca.replaceRoot();
    await clock.advance(51_000);
    await waitUntil(() => events.length === 2);
    assert.deepEqual(events, ['default', 'ROOTCA']);
    assert.notEqual((await cache.getWorkloadSecret()).rootCertPem, first.rootCertPem);
    assert.equal(await cache.getRootCert(), ca.rootCertPem);
    await capture.waitFor('Root cert has changed, start rotating root cert');
  });

  it('serves file-mounted certificates without a CA and reloads them when they change', async () => {
    const dir = dirs.make();
    const clock = new FakeClock(Date.now());
    const ca = await FakeCa.create(clock);
    const { generateKeyAndCsr } = await import('../ca/index.js');
    const issue = async () => {
      const { csrPem, privateKeyPem } = await generateKeyAndCsr({ spiffeId: SPIFFE, algorithm: { kind: 'EC', curve: 'P256' }, pkcs8: false });
      return { chain: (await ca.sign(csrPem, 3600)).join(''), key: privateKeyPem };
    };
    const mounted = path.join(dir, 'creds');
    mkdirSync(mounted);
    const write = (c: { chain: string; key: string }) => {
      writeFileSync(path.join(mounted, 'cert-chain.pem'), c.chain);
      writeFileSync(path.join(mounted, 'key.pem'), c.key);
      writeFileSync(path.join(mounted, 'root-cert.pem'), ca.rootCertPem);
    };
    write(await issue());
    const capture = new LogCapture();
    const cache = new SecretCache({
      config: secretsConfig(dir, { fileMountedCerts: true, fileMountedCertDir: mounted, outputCertsDir: '', provCertDir: '' }),
      spiffeId: SPIFFE,
      extraTrustAnchors: [],
      clock,
      log: capture.root.scope('cache'),
      sdsLog: capture.root.scope('sds'),
    });
    caches.push(cache);
    const events: SecretName[] = [];
    cache.onSecretChange((n) => events.push(n));
    await cache.start(new AbortController().signal);
    await capture.waitFor('Workload is using file mounted certificates. Skipping connecting to CA');
    const first = await cache.getWorkloadSecret();
    write(await issue());
    await waitUntil(() => events.includes('default'), 5_000);
    assert.notEqual((await cache.getWorkloadSecret()).serial, first.serial);
    assert.equal(ca.signed, 2); // only the test's own issuances: the cache never called a CA
  });
});

async function waitUntil(predicate: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await flush();
    await new Promise((r) => setTimeout(r, 5));
  }
}
