/** Self-signed ECDSA P-256 certificates for tests, valid from a minute ago for an hour. */
import { KeyObject, webcrypto } from 'node:crypto';
import { x509Library } from '../../src/ca/index.js';

export interface SelfSignedOptions {
  /** The subject (and issuer), e.g. 'CN=localhost'. */
  name: string;
  /** A CA certificate (basicConstraints CA:true, critical). */
  isCa?: boolean;
  /** subjectAltName entries. */
  sans?: { type: 'dns' | 'ip'; value: string }[];
}

/** The certificate and its private key (PKCS#8), both PEM. */
export async function selfSignedCertificate(options: SelfSignedOptions): Promise<{ cert: string; key: string }> {
  const x509 = x509Library();
  const algorithm = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify']);
  const extensions: InstanceType<typeof x509.Extension>[] = [];
  if (options.isCa) extensions.push(new x509.BasicConstraintsExtension(true, undefined, true));
  if (options.sans) extensions.push(new x509.SubjectAlternativeNameExtension(options.sans));
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: '01',
      name: options.name,
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + 3_600_000),
      signingAlgorithm: algorithm,
      keys,
      extensions,
    },
    webcrypto,
  );
  const key = KeyObject.from(keys.privateKey).export({ type: 'pkcs8', format: 'pem' }).toString();
  return { cert: cert.toString('pem'), key };
}
