export { XdsProxy } from './xds-proxy.js';
export type { XdsProxyDeps } from './xds-proxy.js';
export type { AgentTypeHandler, HealthReport } from './upstream-session.js';
export * from './type-urls.js';
export * from './node/index.js';
export { rawMethod, SOTW_ADS_PATH, DELTA_ADS_PATH } from './protocol.js';
