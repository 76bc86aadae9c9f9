import { X509Certificate } from 'node:crypto';

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The certificates in a PEM bundle, each normalised to end with a newline. */
export function splitPemCertificates(pem: string): string[] {
  return (pem.match(PEM_CERT) ?? []).map((c) => `${c.trim()}\n`);
}

/** Root bundle plus extra trust anchors (ProxyConfig caCertificatesPem): de-duplicated and sorted, as Istio merges them. */
export function mergeTrustAnchors(root: string, extras: readonly string[]): string {
  const all = new Set([...splitPemCertificates(root), ...extras.flatMap(splitPemCertificates)]);
  return [...all].sort().join('');
}

export interface LeafInfo {
  serial: string;
  san: string;
  notBefore: number;
  notAfter: number;
}

/** Reads what operators need to see about a certificate: serial, SAN and validity (never the key). */
export function describeLeaf(chainPem: string): LeafInfo {
  const first = splitPemCertificates(chainPem)[0];
  if (first === undefined) throw new Error('no PEM certificate found');
  const leaf = new X509Certificate(first);
  return {
    serial: leaf.serialNumber,
    san: leaf.subjectAltName ?? '',
    notBefore: Date.parse(leaf.validFrom),
    notAfter: Date.parse(leaf.validTo),
  };
}
