export { WorkloadHealthChecker, defaultHost } from './workload-health-checker.js';
export type { WorkloadHealthCheckerDeps } from './workload-health-checker.js';
export { probeDefaults, probeHandler, validateReadinessProbe, PROBE_HANDLERS } from './probe-config.js';
export type { DefaultedProbe, ProbeHandler } from './probe-config.js';
export { PROBE_SOURCE_IPV4, PROBE_SOURCE_IPV6, PROBE_USER_AGENT } from './http-prober.js';
export type { ProbeResult } from './prober.js';
