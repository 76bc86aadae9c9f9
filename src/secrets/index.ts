export { SecretCache, WORKLOAD_SECRET, ROOT_SECRET } from './secret-cache.js';
export type { SecretName, WorkloadSecret, SecretCacheDeps } from './secret-cache.js';
export { mergeTrustAnchors, splitPemCertificates, describeLeaf } from './pem.js';
