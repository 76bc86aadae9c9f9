import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { generateKeyAndCsr, type CertificateSigner, type KeyAlgorithm } from '../ca/index.js';
import type { Clock } from '../clock.js';
import type { SecretsConfig } from '../config/index.js';
import { AgentError, errorMessage } from '../errors.js';
import type { Component } from '../lifecycle.js';
import { formatDuration, type Logger } from '../log/index.js';
import type { AgentMetrics } from '../metrics/index.js';
import { writeFileAtomicIfChanged } from './atomic-write.js';
import { describeLeaf, mergeTrustAnchors, splitPemCertificates } from './pem.js';

export const WORKLOAD_SECRET = 'default';
export const ROOT_SECRET = 'ROOTCA';
export type SecretName = typeof WORKLOAD_SECRET | typeof ROOT_SECRET;

export interface WorkloadSecret {
  /** Every certificate the CA returned, leaf first and root last, concatenated (what Envoy is served). */
  certChainPem: string;
  privateKeyPem: string;
  /** The CA's root: the last entry of the chain. */
  rootCertPem: string;
  serial: string;
  san: string;
  /** When the agent received it (epoch ms): the base of the rotation schedule, as in Istio. */
  createdAt: number;
  notBefore: number;
  notAfter: number;
}

export interface SecretCacheDeps {
  config: SecretsConfig;
  spiffeId: string;
  /** ProxyConfig caCertificatesPem: extra trust anchors merged into ROOTCA. */
  extraTrustAnchors: readonly string[];
  /** Absent in file-mounted mode. */
  signer?: CertificateSigner;
  clock: Clock;
  /** [cache] */
  log: Logger;
  /** [sds]: where Istio logs warm-up failures. */
  sdsLog: Logger;
  metrics?: AgentMetrics;
  random?: () => number;
}

const WARM_BACKOFF_START_MS = 500;
const WARM_BACKOFF_MAX_MS = 60_000;
const ROTATE_BACKOFF_START_MS = 1_000;
const ROTATE_BACKOFF_MAX_MS = 60_000;

/**
 * Holds the workload certificate: issues it on first use (single flight), rotates it at Istio's grace
 * ratio with jitter, writes it to OUTPUT_CERTS, and tells SDS when `default` or `ROOTCA` changed.
 * A failed rotation never loses the working certificate: it stays served while the agent retries.
 */
export class SecretCache implements Component {
  readonly name = 'secret-cache';
  readonly #deps: SecretCacheDeps;
  readonly #random: () => number;
  readonly #listeners = new Set<(name: SecretName) => void>();
  readonly #lifetime = new AbortController();
  #current?: WorkloadSecret;
  #inflight?: Promise<WorkloadSecret>;
  #rotation?: AbortController;
  #watcher?: FSWatcher;
  #background = new Set<Promise<void>>();
  #closed?: Promise<void>;

  constructor(deps: SecretCacheDeps) {
    this.#deps = deps;
    this.#random = deps.random ?? Math.random;
    deps.metrics?.trackCertExpiry(() => this.#current?.notAfter);
  }

  get isFileMounted(): boolean {
    return this.#deps.config.fileMountedCerts;
  }

  /** The current secret without triggering issuance (undefined before the first one). */
  get current(): WorkloadSecret | undefined {
    return this.#current;
  }

  onSecretChange(listener: (name: SecretName) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async start(_signal: AbortSignal): Promise<void> {
    if (this.isFileMounted) {
      this.#deps.log.info('Workload is using file mounted certificates. Skipping connecting to CA');
      this.#current = await this.#loadFileMounted();
      this.#watchFileMounted();
      return;
    }
    // Warm up in the background, as Istio's SDS server does: Envoy starts without waiting for certificates.
    this.#spawn(this.#warmUp());
  }

  close(): Promise<void> {
    return (this.#closed ??= this.#shutdown());
  }

  async #shutdown(): Promise<void> {
    this.#lifetime.abort(new Error('secret cache closed'));
    this.#rotation?.abort();
    this.#watcher?.close();
    await Promise.allSettled([...this.#background]);
  }

  /** The workload certificate: from the cache, or issued now (concurrent callers share one issuance). */
  async getWorkloadSecret(): Promise<WorkloadSecret> {
    const current = this.#current;
    if (current) {
      this.#deps.log.info('returned workload certificate from cache', { ttl: formatDuration(current.notAfter - this.#deps.clock.now()) });
      // Hits rewrite OUTPUT_CERTS too (only if changed), so deleted or edited files come back, as in Istio.
      await this.#writeOutputCerts(current);
      return current;
    }
    return this.#issueOnce();
  }

  /** The ROOTCA bundle: the CA root (last chain entry) merged with configured extra trust anchors. */
  async getRootCert(): Promise<string> {
    const secret = await this.getWorkloadSecret();
    this.#deps.log.info('returned workload trust anchor from cache', { ttl: formatDuration(secret.notAfter - this.#deps.clock.now()) });
    return mergeTrustAnchors(secret.rootCertPem, this.#deps.extraTrustAnchors);
  }

  #issueOnce(): Promise<WorkloadSecret> {
    if (this.#lifetime.signal.aborted) return Promise.reject(new AgentError('CA_SIGN_FAILED', 'secret cache is closed'));
    if (this.isFileMounted) return this.#loadFileMounted().then((s) => (this.#current = s));
    this.#inflight ??= this.#issue().finally(() => {
      this.#inflight = undefined;
    });
    return this.#inflight;
  }

  async #issue(): Promise<WorkloadSecret> {
    const { config, signer, clock, log, spiffeId } = this.#deps;
    if (!signer) throw new AgentError('CA_SIGN_FAILED', 'no CA client configured');
    const started = clock.now();
    const algorithm: KeyAlgorithm = config.eccCurve ? { kind: 'EC', curve: config.eccCurve } : { kind: 'RSA', bits: config.rsaKeySize };
    const { csrPem, privateKeyPem } = await generateKeyAndCsr({ spiffeId, algorithm, pkcs8: config.pkcs8 });
    const chain = await signer.sign(csrPem, config.ttlSeconds, this.#lifetime.signal);
    const secret = this.#toSecret(chain.join(''), privateKeyPem, clock.now());
    const previous = this.#current;
    this.#current = secret;
    // On disk first: whoever reads the log line finds the files in place.
    await this.#writeOutputCerts(secret);
    log.info('generated new workload certificate', {
      resourceName: WORKLOAD_SECRET,
      latency: formatDuration(clock.now() - started),
      ttl: formatDuration(secret.notAfter - clock.now()),
      serial: secret.serial,
      san: secret.san,
      notAfter: new Date(secret.notAfter).toISOString(),
    });
    this.#scheduleRotation(secret);
    if (previous) {
      this.#emit(WORKLOAD_SECRET);
      if (previous.rootCertPem !== secret.rootCertPem) {
        log.info('Root cert has changed, start rotating root cert');
        this.#emit(ROOT_SECRET);
      }
    }
    return secret;
  }

  #toSecret(certChainPem: string, privateKeyPem: string, createdAt: number): WorkloadSecret {
    const certs = splitPemCertificates(certChainPem);
    const root = certs.at(-1);
    if (!root) throw new AgentError('CERT_INVALID', 'certificate chain holds no PEM certificate');
    const leaf = describeLeaf(certChainPem);
    const leafCert = new X509Certificate(certs[0] ?? root);
    try {
      if (!leafCert.checkPrivateKey(createPrivateKey(privateKeyPem))) {
        throw new AgentError('CERT_INVALID', 'issued certificate does not match the private key');
      }
    } catch (err) {
      if (err instanceof AgentError) throw err;
      throw new AgentError('CERT_INVALID', `cannot check the private key: ${errorMessage(err)}`, { cause: err });
    }
    return { certChainPem, privateKeyPem, rootCertPem: root, ...leaf, createdAt };
  }

  /** Rotation at `expiry − r × (expiry − created)`, r = clamp(ratio ± U[0, jitter)), as secretcache.go does. */
  rotationDelay(secret: WorkloadSecret): number {
    const { gracePeriodRatio, gracePeriodRatioJitter } = this.#deps.config;
    const jitter = gracePeriodRatioJitter * this.#random() * (this.#random() < 0.5 ? -1 : 1);
    const ratio = Math.min(1, Math.max(0, gracePeriodRatio + jitter));
    const rotateAt = secret.notAfter - ratio * (secret.notAfter - secret.createdAt);
    return Math.max(0, rotateAt - this.#deps.clock.now());
  }

  #scheduleRotation(secret: WorkloadSecret): void {
    this.#rotation?.abort();
    const rotation = new AbortController();
    this.#rotation = rotation;
    const signal = AbortSignal.any([rotation.signal, this.#lifetime.signal]);
    const delay = this.rotationDelay(secret);
    this.#deps.log.debug('scheduled certificate rotation', { in: formatDuration(delay), serial: secret.serial });
    this.#spawn(
      (async () => {
        await this.#deps.clock.sleep(delay, signal);
        await this.#rotate(signal);
      })(),
    );
  }

  async #rotate(signal: AbortSignal): Promise<void> {
    const { log, clock } = this.#deps;
    let backoff = ROTATE_BACKOFF_START_MS;
    for (;;) {
      signal.throwIfAborted();
      const current = this.#current;
      log.info('rotating workload certificate', { serial: current?.serial, notAfter: current && new Date(current.notAfter).toISOString() });
      try {
        await this.#issueOnce();
        return;
      } catch (err) {
        if (signal.aborted) throw err;
        const expired = current !== undefined && current.notAfter <= clock.now();
        const line = `failed to rotate workload certificate, ${expired ? 'current certificate has EXPIRED' : 'keeping the current certificate'}: ${errorMessage(err)}`;
        if (expired) log.error(line, { retryIn: formatDuration(backoff) });
        else log.warn(line, { retryIn: formatDuration(backoff), serial: current?.serial });
        await clock.sleep(backoff, signal);
        backoff = Math.min(backoff * 2, ROTATE_BACKOFF_MAX_MS);
      }
    }
  }

  async #warmUp(): Promise<void> {
    const { sdsLog, clock } = this.#deps;
    const signal = this.#lifetime.signal;
    let backoff = WARM_BACKOFF_START_MS;
    while (!signal.aborted && !this.#current) {
      try {
        // Only fills the cache: SDS requests waiting on the same issuance get it from their own call,
        // so announcing it here would push an unchanged certificate a second time.
        await this.#issueOnce();
        return;
      } catch (err) {
        if (signal.aborted) return;
        sdsLog.warn(`failed to warm certificate: ${errorMessage(err)}`);
        await clock.sleep(backoff, signal);
        backoff = Math.min(backoff * 2, WARM_BACKOFF_MAX_MS);
      }
    }
  }

  async #writeOutputCerts(secret: WorkloadSecret): Promise<void> {
    const dir = this.#deps.config.outputCertsDir;
    if (dir === '') return;
    try {
      // Chain before key: a reader between the two renames sees a mismatched pair, which the CA client
      // detects and answers with the token; the root goes last, after the pair it certifies.
      await writeFileAtomicIfChanged(path.join(dir, 'cert-chain.pem'), secret.certChainPem, 0o600);
      await writeFileAtomicIfChanged(path.join(dir, 'key.pem'), secret.privateKeyPem, 0o600);
      await writeFileAtomicIfChanged(path.join(dir, 'root-cert.pem'), secret.rootCertPem, 0o600);
    } catch (err) {
      // The certificate is still served over SDS; only the on-disk copy is stale.
      this.#deps.log.error(`failed to write certificates to OUTPUT_CERTS ${dir}: ${errorMessage(err)}`);
    }
  }

  async #loadFileMounted(): Promise<WorkloadSecret> {
    const dir = this.#deps.config.fileMountedCertDir;
    try {
      const [chain, key, root] = await Promise.all(
        ['cert-chain.pem', 'key.pem', 'root-cert.pem'].map((f) => readFile(path.join(dir, f), 'utf8')),
      );
      const secret = this.#toSecret(chain ?? '', key ?? '', this.#deps.clock.now());
      return { ...secret, rootCertPem: root ?? secret.rootCertPem };
    } catch (err) {
      this.#deps.metrics?.fileSecretFailures.inc();
      if (err instanceof AgentError) throw err;
      throw new AgentError('CERT_INVALID', `read file-mounted certificates in ${dir}: ${errorMessage(err)}`, { cause: err });
    }
  }

  #watchFileMounted(): void {
    let timer: NodeJS.Timeout | undefined;
    this.#watcher = watch(this.#deps.config.fileMountedCertDir, () => {
      // Files are usually replaced together: settle for a moment before reloading.
      clearTimeout(timer);
      timer = setTimeout(() => this.#spawn(this.#reloadFileMounted()), 100).unref();
    });
    this.#watcher.on('error', (err) => this.#deps.log.warn(`stopped watching file-mounted certificates: ${err.message}`));
    this.#lifetime.signal.addEventListener('abort', () => clearTimeout(timer), { once: true });
  }

  async #reloadFileMounted(): Promise<void> {
    try {
      const next = await this.#loadFileMounted();
      const previous = this.#current;
      if (previous?.certChainPem === next.certChainPem && previous.rootCertPem === next.rootCertPem && previous.privateKeyPem === next.privateKeyPem) return;
      this.#current = next;
      this.#deps.log.info('file-mounted certificates changed', { serial: next.serial, notAfter: new Date(next.notAfter).toISOString() });
      this.#emit(WORKLOAD_SECRET);
      if (previous?.rootCertPem !== next.rootCertPem) this.#emit(ROOT_SECRET);
    } catch (err) {
      this.#deps.log.warn(`keeping the current file-mounted certificates: ${errorMessage(err)}`);
    }
  }

  #emit(name: SecretName): void {
    for (const listener of this.#listeners) listener(name);
  }

  #spawn(task: Promise<void>): void {
    const tracked = task.catch((err: unknown) => {
      if (!this.#lifetime.signal.aborted) this.#deps.log.error(`background certificate task failed: ${errorMessage(err)}`);
    });
    this.#background.add(tracked);
    void tracked.finally(() => this.#background.delete(tracked));
  }
}
