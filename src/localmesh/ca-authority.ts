// @peculiar/x509 decodes ASN.1 through decorators that need the Reflect metadata API.
import 'reflect-metadata';
import { KeyObject, X509Certificate, createPrivateKey, createPublicKey, randomBytes, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

/** Key algorithm of the control plane's root CA. istiod's self-signed root is RSA 2048. */
export type RootKeyAlgorithm = 'RSA' | 'EC';

/** Root CA material, exported so that a later control plane can reuse the same root. */
export interface CaState {
  readonly rootCertPem: string;
  /** PKCS#8 PEM. */
  readonly rootKeyPem: string;
}

export interface ServingCertificate {
  readonly certPem: string;
  /** PKCS#8 PEM. */
  readonly keyPem: string;
}

export interface IssuedLeaf {
  readonly certPem: string;
  /** Upper-case hex, as node:crypto's X509Certificate reports it. */
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/** A workload identity in istiod's SPIFFE form, `spiffe://<trust domain>/ns/<namespace>/sa/<service account>`. */
export interface SpiffeIdentity {
  readonly trustDomain: string;
  readonly namespace: string;
  readonly serviceAccount: string;
}

/** The CSR could not be used; the CA service answers INVALID_ARGUMENT. */
export class CsrError extends Error {
  override readonly name = 'CsrError';
}

export type ClientCertificateCheck = { readonly ok: true; readonly identity: SpiffeIdentity } | { readonly ok: false; readonly reason: string };

const SPIFFE_PATTERN = /^spiffe:\/\/([^/]*)\/ns\/([^/]+)\/sa\/([^/]+)$/;
const ROOT_VALIDITY_MS = 10 * 365 * 24 * 3600 * 1000;
const SERVING_VALIDITY_MS = 365 * 24 * 3600 * 1000;
/** Backdating for the long-lived root and serving certificates, so small clock skew does not matter. */
const LONG_LIVED_BACKDATE_MS = 3600 * 1000;

export function spiffeUri(identity: SpiffeIdentity): string {
  return `spiffe://${identity.trustDomain}/ns/${identity.namespace}/sa/${identity.serviceAccount}`;
}

export function parseSpiffeUri(uri: string): SpiffeIdentity | undefined {
  const match = SPIFFE_PATTERN.exec(uri);
  if (!match) return undefined;
  const [, trustDomain = '', namespace = '', serviceAccount = ''] = match;
  return { trustDomain, namespace, serviceAccount };
}

type CryptoKey = webcrypto.CryptoKey;
type SignAlgorithm = webcrypto.Algorithm | webcrypto.EcdsaParams;

/** Passed explicitly to every @peculiar/x509 call rather than installed as its global provider. */
function crypto(): webcrypto.Crypto {
  return webcrypto;
}

interface KeyAlgorithms {
  readonly generate: webcrypto.RsaHashedKeyGenParams | webcrypto.EcKeyGenParams;
  readonly import: webcrypto.RsaHashedImportParams | webcrypto.EcKeyImportParams;
  readonly sign: SignAlgorithm;
}

function algorithmsFor(kind: RootKeyAlgorithm, namedCurve = 'P-256'): KeyAlgorithms {
  if (kind === 'RSA') {
    const rsa = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
    return { generate: { ...rsa, modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]) }, import: rsa, sign: rsa };
  }
  const hash = namedCurve === 'P-384' ? 'SHA-384' : 'SHA-256';
  return { generate: { name: 'ECDSA', namedCurve }, import: { name: 'ECDSA', namedCurve }, sign: { name: 'ECDSA', hash } };
}

function randomSerial(): string {
  const bytes = randomBytes(16);
  // Positive (top bit clear) and without a leading zero byte, so the DER encoding keeps all 16 bytes.
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x01;
  return bytes.toString('hex');
}

function keyToPem(key: CryptoKey): string {
  return KeyObject.from(key).export({ type: 'pkcs8', format: 'pem' }).toString();
}

/**
 * The control plane's certificate authority: a self-signed root, the istiod serving certificate, and
 * workload leaves shaped like the ones istiod's CA issues (empty subject, critical SPIFFE URI SAN,
 * digitalSignature+keyEncipherment, serverAuth+clientAuth).
 */
export class CaAuthority {
  readonly #root: x509.X509Certificate;
  readonly #rootNode: X509Certificate;
  readonly #rootKey: CryptoKey;
  readonly #rootKeyPem: string;
  readonly #signAlgorithm: SignAlgorithm;
  readonly #rootKeyId: string;

  private constructor(root: x509.X509Certificate, rootKey: CryptoKey, rootKeyPem: string, signAlgorithm: SignAlgorithm) {
    this.#root = root;
    this.#rootNode = new X509Certificate(root.toString('pem'));
    this.#rootKey = rootKey;
    this.#rootKeyPem = rootKeyPem;
    this.#signAlgorithm = signAlgorithm;
    const ski = root.getExtension(x509.SubjectKeyIdentifierExtension);
    if (!ski) throw new Error('root certificate has no subject key identifier');
    this.#rootKeyId = ski.keyId;
  }

  /** Creates a new self-signed root, subject `O=<trust domain>` like istiod's self-signed CA. */
  static async create(options: { trustDomain: string; keyAlgorithm: RootKeyAlgorithm; now: Date }): Promise<CaAuthority> {
    const algorithms = algorithmsFor(options.keyAlgorithm);
    const keys = await crypto().subtle.generateKey(algorithms.generate, true, ['sign', 'verify']);
    const notBefore = new Date(options.now.getTime() - LONG_LIVED_BACKDATE_MS);
    const root = await x509.X509CertificateGenerator.createSelfSigned(
      {
        serialNumber: randomSerial(),
        name: [{ O: [options.trustDomain || 'cluster.local'] }],
        notBefore,
        notAfter: new Date(notBefore.getTime() + ROOT_VALIDITY_MS),
        keys,
        signingAlgorithm: algorithms.sign,
        extensions: [
          new x509.BasicConstraintsExtension(true, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
          await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto()),
        ],
      },
      crypto(),
    );
    return new CaAuthority(root, keys.privateKey, keyToPem(keys.privateKey), algorithms.sign);
  }

  /** Reuses root material from `exportState()`, e.g. across control plane instances. */
  static async fromState(state: CaState): Promise<CaAuthority> {
    const root = new x509.X509Certificate(state.rootCertPem);
    const keyObject = createPrivateKey(state.rootKeyPem);
    const kind: RootKeyAlgorithm = keyObject.asymmetricKeyType === 'rsa' ? 'RSA' : 'EC';
    if (keyObject.asymmetricKeyType !== 'rsa' && keyObject.asymmetricKeyType !== 'ec') {
      throw new Error(`root key: unsupported key type ${String(keyObject.asymmetricKeyType)}`);
    }
    const curve = keyObject.asymmetricKeyDetails?.namedCurve === 'secp384r1' ? 'P-384' : 'P-256';
    const algorithms = algorithmsFor(kind, curve);
    const der = keyObject.export({ type: 'pkcs8', format: 'der' });
    const rootKey = await crypto().subtle.importKey('pkcs8', der, algorithms.import, false, ['sign']);
    const certKey = new X509Certificate(state.rootCertPem).publicKey.export({ type: 'spki', format: 'der' });
    const derivedKey = createPublicKey(keyObject).export({ type: 'spki', format: 'der' });
    if (!derivedKey.equals(certKey)) throw new Error('root key does not match the root certificate');
    return new CaAuthority(root, rootKey, state.rootKeyPem, algorithms.sign);
  }

  get rootCertPem(): string {
    return this.#root.toString('pem') + '\n';
  }

  exportState(): CaState {
    return { rootCertPem: this.rootCertPem, rootKeyPem: this.#rootKeyPem };
  }

  /** A serving certificate for istiod's names, with an ECDSA P-256 key. */
  async issueServingCertificate(options: { dnsNames: readonly string[]; ips: readonly string[]; now: Date }): Promise<ServingCertificate> {
    const algorithms = algorithmsFor('EC');
    const keys = await crypto().subtle.generateKey(algorithms.generate, true, ['sign', 'verify']);
    const notBefore = new Date(options.now.getTime() - LONG_LIVED_BACKDATE_MS);
    const names: x509.JsonGeneralNames = [
      ...options.dnsNames.map((value) => ({ type: 'dns' as const, value })),
      ...options.ips.map((value) => ({ type: 'ip' as const, value })),
    ];
    const cert = await this.#sign({
      publicKey: keys.publicKey,
      notBefore,
      notAfter: new Date(notBefore.getTime() + SERVING_VALIDITY_MS),
      names,
    });
    return { certPem: cert.toString('pem') + '\n', keyPem: keyToPem(keys.privateKey) };
  }

  /**
   * Signs a workload leaf for `identity`. Like istiod, the CSR only contributes its public key: its
   * subject and SANs are ignored, the authenticated identity is what gets certified.
   */
  async signCsr(options: { csrPem: string; identity: SpiffeIdentity; ttlSeconds: number; now: Date }): Promise<IssuedLeaf> {
    let csr: x509.Pkcs10CertificateRequest;
    try {
      csr = new x509.Pkcs10CertificateRequest(options.csrPem);
    } catch (err) {
      throw new CsrError(`failed to parse CSR: ${err instanceof Error ? err.message : String(err)}`);
    }
    const algorithm = csr.publicKey.algorithm as webcrypto.Algorithm & { namedCurve?: string };
    const supported =
      algorithm.name === 'RSASSA-PKCS1-v1_5' || (algorithm.name === 'ECDSA' && (algorithm.namedCurve === 'P-256' || algorithm.namedCurve === 'P-384'));
    if (!supported) {
      throw new CsrError(`unsupported CSR key algorithm ${algorithm.name}${algorithm.namedCurve ? ` ${algorithm.namedCurve}` : ''} (want RSA or ECDSA P-256/P-384)`);
    }
    let isSignatureValid: boolean;
    try {
      isSignatureValid = await csr.verify(crypto());
    } catch (err) {
      throw new CsrError(`failed to verify CSR signature: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (!isSignatureValid) throw new CsrError('CSR signature is invalid');

    // X.509 times have one-second resolution; rounding down keeps notBefore at or before "now".
    const notBefore = new Date(Math.floor(options.now.getTime() / 1000) * 1000);
    const notAfter = new Date(notBefore.getTime() + options.ttlSeconds * 1000);
    const cert = await this.#sign({
      publicKey: csr.publicKey,
      notBefore,
      notAfter,
      names: [{ type: 'url', value: spiffeUri(options.identity) }],
    });
    const pem = cert.toString('pem') + '\n';
    return { certPem: pem, serial: new X509Certificate(pem).serialNumber, notBefore, notAfter };
  }

  /**
   * Checks a client certificate presented over mTLS: issued by this root, currently valid, carrying a
   * SPIFFE URI SAN. The TLS layer already verified the chain; this repeats the check because the
   * identity it yields is about to be certified again.
   */
  verifyClientCertificate(der: Buffer, now: Date): ClientCertificateCheck {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(der);
    } catch (err) {
      return { ok: false, reason: `unparseable client certificate: ${err instanceof Error ? err.message : String(err)}` };
    }
    if (!cert.checkIssued(this.#rootNode) || !cert.verify(this.#rootNode.publicKey)) {
      return { ok: false, reason: 'client certificate was not issued by this control plane' };
    }
    const notBefore = Date.parse(cert.validFrom);
    const notAfter = Date.parse(cert.validTo);
    if (now.getTime() < notBefore) return { ok: false, reason: `client certificate is not valid before ${new Date(notBefore).toISOString()}` };
    if (now.getTime() > notAfter) return { ok: false, reason: `client certificate expired at ${new Date(notAfter).toISOString()}` };
    for (const entry of (cert.subjectAltName ?? '').split(/,\s*/)) {
      if (!entry.startsWith('URI:')) continue;
      const identity = parseSpiffeUri(entry.slice('URI:'.length));
      if (identity) return { ok: true, identity };
    }
    return { ok: false, reason: 'client certificate has no spiffe://<td>/ns/<ns>/sa/<sa> URI SAN' };
  }

  async #sign(options: { publicKey: x509.PublicKey | CryptoKey; notBefore: Date; notAfter: Date; names: x509.JsonGeneralNames }): Promise<x509.X509Certificate> {
    return x509.X509CertificateGenerator.create(
      {
        serialNumber: randomSerial(),
        // Empty subject, as istiod issues: the identity lives only in the (therefore critical) SAN.
        subject: [],
        issuer: this.#root.subjectName,
        notBefore: options.notBefore,
        notAfter: options.notAfter,
        publicKey: options.publicKey,
        signingKey: this.#rootKey,
        signingAlgorithm: this.#signAlgorithm,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
          new x509.SubjectAlternativeNameExtension(options.names, true),
          new x509.AuthorityKeyIdentifierExtension(this.#rootKeyId),
          await x509.SubjectKeyIdentifierExtension.create(options.publicKey, false, crypto()),
        ],
      },
      crypto(),
    );
  }
}
