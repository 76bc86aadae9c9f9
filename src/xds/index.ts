export { XdsProxy } from './xds-proxy.js';
export type { XdsProxyDeps } from './xds-proxy.js';
export type { AgentTypeHandler, HealthReport } from './upstream-session.js';
export * from './type-urls.js';
export * from './node/index.js';
