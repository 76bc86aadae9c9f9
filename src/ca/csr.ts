import { KeyObject, webcrypto } from 'node:crypto';
import { x509Library } from './x509.js';

export type KeyAlgorithm = { kind: 'RSA'; bits: number } | { kind: 'EC'; curve: 'P256' | 'P384' };

export interface CsrOptions {
  /** `spiffe://<trust domain>/ns/<ns>/sa/<sa>`; an empty trust domain (`spiffe:///ns/...`) is legal. */
  spiffeId: string;
  algorithm: KeyAlgorithm;
  /** PKCS8_KEY: emit `PRIVATE KEY` instead of `RSA PRIVATE KEY` / `EC PRIVATE KEY`. */
  pkcs8: boolean;
}

export interface KeyAndCsr {
  csrPem: string;
  privateKeyPem: string;
}

const CURVES = { P256: { name: 'P-256', hash: 'SHA-256' }, P384: { name: 'P-384', hash: 'SHA-384' } } as const;

/**
 * A fresh key and CSR per issuance, as Istio's generate_csr.go builds them: the subject holds one empty
 * Organization and no CN, and the only identity is a critical URI SAN with the SPIFFE ID.
 * Keys come from Node's native WebCrypto (OpenSSL), never a pure-JS generator.
 */
export async function generateKeyAndCsr(options: CsrOptions): Promise<KeyAndCsr> {
  const x509 = x509Library();
  const { algorithm } = options;
  let params: webcrypto.RsaHashedKeyGenParams | webcrypto.EcKeyGenParams;
  let signingAlgorithm: webcrypto.RsaHashedImportParams | webcrypto.EcdsaParams;
  if (algorithm.kind === 'RSA') {
    if (!Number.isInteger(algorithm.bits) || algorithm.bits < 2048) throw new RangeError(`RSA key size must be at least 2048, got ${algorithm.bits}`);
    params = { name: 'RSASSA-PKCS1-v1_5', modulusLength: algorithm.bits, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' };
    signingAlgorithm = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
  } else {
    const curve = CURVES[algorithm.curve];
    params = { name: 'ECDSA', namedCurve: curve.name };
    signingAlgorithm = { name: 'ECDSA', hash: curve.hash };
  }
  const keys = await webcrypto.subtle.generateKey(params, true, ['sign', 'verify']);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: [{ O: [''] }],
    keys,
    signingAlgorithm,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: options.spiffeId }], true)],
  });
  const keyObject = KeyObject.from(keys.privateKey);
  const type = options.pkcs8 ? 'pkcs8' : algorithm.kind === 'RSA' ? 'pkcs1' : 'sec1';
  const privateKeyPem = keyObject.export({ format: 'pem', type }) as string;
  return { csrPem: csr.toString('pem'), privateKeyPem };
}
