export { StatusServer, isLoopbackAddress, LOCALHOST_ONLY_MESSAGE } from './status-server.js';
export type { StatusServerDeps } from './status-server.js';
export { TERMINATING_MESSAGE, conditionCheck, filesExistCheck } from './readiness.js';
export type { ReadinessCheck } from './readiness.js';
export {
  CONFIG_STATS_FILTER,
  SERVER_STATS_FILTER,
  configReadinessError,
  configUpdateStats,
  parseEnvoyStats,
  serverReadinessError,
} from './envoy-stats.js';
export type { ConfigUpdateStats } from './envoy-stats.js';
export { PROMETHEUS_TEXT_CONTENT_TYPE, acceptsGzip, filterAccept, joinExpositions, scrapeTimeoutMs } from './scrape.js';
export type { ScrapeFailureType } from './status-metrics.js';
