export { SdsServer } from './sds-server.js';
export type { SdsServerDeps, SecretSource } from './sds-server.js';
