import type { AgentConfig } from '../config/index.js';
import { parseProtoDuration } from '../config/index.js';

/**
 * Envoy's command line exactly as pilot-agent builds it (SPEC §8.2): no hot restart, no
 * --restart-epoch, no --service-cluster/--service-node.
 */
export function envoyArgs(config: AgentConfig, bootstrapPath: string): string[] {
  const pc = config.proxyConfig;
  const drainSeconds = Math.round((parseProtoDuration(pc.drainDuration) ?? 45_000) / 1000);
  const flushMs = parseProtoDuration(pc.fileFlushInterval ?? '1s') ?? 1000;
  const args = [
    '-c',
    bootstrapPath,
    '--drain-time-s',
    String(drainSeconds),
    '--drain-strategy',
    'immediate',
    '--local-address-ip-version',
    config.identity.ipMode === 'ipv6' ? 'v6' : 'v4',
    '--file-flush-interval-msec',
    String(flushMs),
    '--disable-hot-restart',
    '--allow-unknown-static-fields',
  ];
  if (pc.fileFlushMinSizeKb) args.push('--file-flush-min-size-kb', String(pc.fileFlushMinSizeKb));
  args.push(...logLevelArgs(config.flags.proxyLogLevel, config.flags.proxyComponentLogLevel));
  if (envBool(config, 'ENVOY_SKIP_DEPRECATED_LOGS', true)) args.push('--skip-deprecated-logs');
  if (envBool(config, 'ISTIO_ENVOY_ENABLE_CORE_DUMP', false)) args.push('--enable-core-dump');
  const concurrency = config.flags.concurrency > 0 ? config.flags.concurrency : pc.concurrency;
  if (concurrency !== undefined && concurrency > 0) args.push('--concurrency', String(concurrency));
  return args;
}

/**
 * `--proxyLogLevel warning,misc:error` → `-l warning --component-log-level misc:error`; a separate
 * `--proxyComponentLogLevel` is appended to the component list. Istio's `warning` is Envoy's `warning`.
 */
export function logLevelArgs(proxyLogLevel: string, proxyComponentLogLevel: string): string[] {
  const parts = proxyLogLevel.split(',').map((p) => p.trim()).filter((p) => p !== '');
  const level = parts.find((p) => !p.includes(':'));
  const components = [...parts.filter((p) => p.includes(':')), ...proxyComponentLogLevel.split(',').filter((p) => p.trim() !== '')];
  const args: string[] = [];
  if (level) args.push('-l', level);
  if (components.length > 0) args.push('--component-log-level', components.join(','));
  return args;
}

function envBool(config: AgentConfig, key: string, fallback: boolean): boolean {
  const value = config.env[key];
  if (value === undefined || value === '') return fallback;
  return ['1', 't', 'T', 'TRUE', 'true', 'True'].includes(value);
}
