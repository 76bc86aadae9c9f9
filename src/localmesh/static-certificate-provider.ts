import type { experimental } from '@grpc/grpc-js';

type CertificateProvider = experimental.CertificateProvider;
type CaListener = experimental.CaCertificateUpdateListener;
type IdentityListener = experimental.IdentityCertificateUpdateListener;

/**
 * Fixed certificates for grpc-js's certificate-provider server credentials. Those credentials, with
 * `requireClientCertificate` false, ask for a client certificate and verify it against the CA when
 * one is sent, but still accept clients that send none; which is how istiod's port 15012 serves both
 * token-only first starts and mTLS renewals. (`ServerCredentials.createSsl(..., true)` would refuse
 * token-only clients.)
 */
export class StaticCertificateProvider implements CertificateProvider {
  readonly #caListeners = new Set<CaListener>();
  readonly #identityListeners = new Set<IdentityListener>();

  constructor(
    private readonly caCertificate: Buffer,
    private readonly identity: { certificate: Buffer; privateKey: Buffer },
  ) {}

  // grpc-js registers the provider listener before its own watcher, and only the latter applies the
  // TLS context; a synchronous callback would be lost, so updates are delivered on a microtask.
  addCaCertificateListener(listener: CaListener): void {
    this.#caListeners.add(listener);
    queueMicrotask(() => {
      if (this.#caListeners.has(listener)) listener({ caCertificate: this.caCertificate });
    });
  }

  removeCaCertificateListener(listener: CaListener): void {
    this.#caListeners.delete(listener);
  }

  addIdentityCertificateListener(listener: IdentityListener): void {
    this.#identityListeners.add(listener);
    queueMicrotask(() => {
      if (this.#identityListeners.has(listener)) listener(this.identity);
    });
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.#identityListeners.delete(listener);
  }
}
