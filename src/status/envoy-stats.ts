/**
 * Envoy's plain-text admin `/stats` output and the two readiness verdicts pilot-agent derives from it
 * (SPEC §9.2 checks 1 and 2). Pure functions, so the exact error strings are testable without HTTP.
 */

/** `/stats?usedonly&filter=` regex for check 1: CDS and LDS update counters. */
export const CONFIG_STATS_FILTER = String.raw`^(cluster_manager\.cds|listener_manager\.lds)\.(update_success|update_rejected)$`;
/** `/stats?usedonly&filter=` regex for check 2: server state and worker start. */
export const SERVER_STATS_FILTER = String.raw`^(server\.state|listener_manager\.workers_started)`;

/** Envoy's `server.state` gauge values (envoy.admin.v3.ServerInfo.State). */
const SERVER_STATES: Readonly<Record<number, string>> = { 0: 'LIVE', 1: 'DRAINING', 2: 'PRE_INITIALIZING', 3: 'INITIALIZING' };

/**
 * Parses `name: value` lines. Counters and gauges only: histogram lines (`P0(...)`) and anything not a
 * plain number are skipped, since readiness reads no histograms.
 */
export function parseEnvoyStats(text: string): Map<string, number> {
  const stats = new Map<string, number>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const sep = line.indexOf(': ');
    if (sep <= 0) continue;
    const value = line.slice(sep + 2).trim();
    if (!/^-?\d+(\.\d+)?$/.test(value)) continue;
    stats.set(line.slice(0, sep), Number(value));
  }
  return stats;
}

export interface ConfigUpdateStats {
  cdsSuccess: number;
  cdsRejected: number;
  ldsSuccess: number;
  ldsRejected: number;
}

/** `usedonly` leaves out counters that never moved, so a missing counter reads as 0. */
export function configUpdateStats(stats: ReadonlyMap<string, number>): ConfigUpdateStats {
  return {
    cdsSuccess: stats.get('cluster_manager.cds.update_success') ?? 0,
    cdsRejected: stats.get('cluster_manager.cds.update_rejected') ?? 0,
    ldsSuccess: stats.get('listener_manager.lds.update_success') ?? 0,
    ldsRejected: stats.get('listener_manager.lds.update_rejected') ?? 0,
  };
}

function describeConfigStats(s: ConfigUpdateStats): string {
  return `cds updates: ${s.cdsSuccess} successful, ${s.cdsRejected} rejected; lds updates: ${s.ldsSuccess} successful, ${s.ldsRejected} rejected`;
}

/**
 * Check 1: Envoy has accepted at least one CDS and one LDS update. Returns the error text pilot-agent
 * reports, or undefined when ready. Nothing accepted at all reads as "not received" even if something
 * was rejected; one accepted with rejections as "rejected"; one accepted otherwise as "not fully".
 */
export function configReadinessError(s: ConfigUpdateStats): string | undefined {
  const cds = s.cdsSuccess > 0;
  const lds = s.ldsSuccess > 0;
  if (cds && lds) return undefined;
  if (!cds && !lds) return `config not received from XDS server (is Istiod running?): ${describeConfigStats(s)}`;
  if (s.cdsRejected > 0 || s.ldsRejected > 0) return `config received from XDS server, but was rejected: ${describeConfigStats(s)}`;
  return `config not fully received from XDS server: ${describeConfigStats(s)}`;
}

/** Check 2: `server.state` is LIVE (0) and the workers have started. Undefined when ready. */
export function serverReadinessError(stats: ReadonlyMap<string, number>): string | undefined {
  const state = stats.get('server.state');
  if (state === undefined) return 'server.state is not yet reported by Envoy';
  if (state !== 0) return `server is not live, current state is: ${SERVER_STATES[state] ?? String(state)}`;
  if (stats.get('listener_manager.workers_started') !== 1) return 'workers have not yet started';
  return undefined;
}
