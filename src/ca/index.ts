export { generateKeyAndCsr } from './csr.js';
export type { CsrOptions, KeyAlgorithm, KeyAndCsr } from './csr.js';
export { IstioCaClient } from './istio-ca-client.js';
export type { CertificateSigner, IstioCaClientDeps } from './istio-ca-client.js';
export { x509Library } from './x509.js';
