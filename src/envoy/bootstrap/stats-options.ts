/**
 * Which Envoy stats the bootstrap keeps and how it tags them (pkg/bootstrap/config.go getStatsOptions).
 * Sources, highest first: the `sidecar.istio.io/stats*` annotations (on a VM they can only arrive as
 * node metadata ANNOTATIONS, e.g. `ISTIO_METAJSON_ANNOTATIONS='{"ANNOTATIONS":{...}}'`, since there is
 * no downward-API file), then ProxyConfig `proxyStatsMatcher` and
 * `extraStatTags`; Istio's required patterns are always appended.
 */
import { parseGoDuration, type JsonValue, type ProxyConfig } from '../../config/index.js';
import { stringListField } from './json.js';

/** Needed by pilot-agent's readiness check and the agent's own metrics. */
const REQUIRED_PREFIXES = ['cluster_manager', 'listener_manager', 'server', 'cluster.xds-grpc', 'wasm'];
const RBAC_SUFFIXES = ['rbac.allowed', 'rbac.denied', 'shadow_allowed', 'shadow_denied'];
/** Draining with EXIT_ON_ZERO_ACTIVE_CONNECTIONS polls this stat. */
const DRAIN_SUFFIX = 'downstream_cx_active';
/** For metrics named by a VirtualService route's stat_prefix. */
const REQUIRED_REGEXPS = ['vhost\\..*\\.route\\..*'];
const DEFAULT_FLUSH_INTERVAL_MS = 5000;

const ANNOTATION = {
  extraStatTags: 'sidecar.istio.io/extraStatTags',
  prefixes: 'sidecar.istio.io/statsInclusionPrefixes',
  suffixes: 'sidecar.istio.io/statsInclusionSuffixes',
  regexps: 'sidecar.istio.io/statsInclusionRegexps',
  histogramBuckets: 'sidecar.istio.io/statsHistogramBuckets',
  flushInterval: 'sidecar.istio.io/statsFlushInterval',
  evictionInterval: 'sidecar.istio.io/statsEvictionInterval',
} as const;

export interface HistogramBucket {
  match: { prefix: string };
  buckets: number[];
}

export interface StatsOptions {
  extraStatTags: string[];
  inclusionPrefixes: string[];
  inclusionSuffixes: string[];
  inclusionRegexps: string[];
  histogramBuckets: HistogramBucket[];
  /** proto-JSON durations, only when an annotation sets them. */
  flushInterval?: string;
  evictionInterval?: string;
}

export interface StatsInputs {
  proxyConfig: ProxyConfig;
  /** Node metadata ANNOTATIONS. */
  annotations: Readonly<Record<string, string>>;
  /** INSTANCE_IPS, substituted for `{pod_ip}` in inclusion patterns. */
  instanceIps: readonly string[];
  exitOnZeroActiveConnections: boolean;
}

export function statsOptions(inputs: StatsInputs, warn: (message: string) => void): StatsOptions {
  const { proxyConfig, annotations, instanceIps } = inputs;
  const matcher: JsonValue | undefined = proxyConfig.proxyStatsMatcher;

  // An annotation replaces the ProxyConfig list rather than merging with it, as in Istio.
  const inclusion = (annotation: string | undefined, fromProxyConfig: string[] | undefined, required: readonly string[]): string[] => {
    const chosen = annotation !== undefined && annotation !== '' ? annotation.split(',') : (fromProxyConfig ?? []);
    return substitutePodIp([...chosen, ...required], instanceIps);
  };

  const tags = [...(proxyConfig.extraStatTags ?? []), ...(annotations[ANNOTATION.extraStatTags] ?? '').split(',')].filter((t) => t !== '');
  const options: StatsOptions = {
    extraStatTags: [...new Set(tags)],
    inclusionPrefixes: inclusion(annotations[ANNOTATION.prefixes], stringListField(matcher, 'inclusionPrefixes'), REQUIRED_PREFIXES),
    inclusionSuffixes: inclusion(
      annotations[ANNOTATION.suffixes],
      stringListField(matcher, 'inclusionSuffixes'),
      inputs.exitOnZeroActiveConnections ? [...RBAC_SUFFIXES, DRAIN_SUFFIX] : RBAC_SUFFIXES,
    ),
    inclusionRegexps: inclusion(annotations[ANNOTATION.regexps], stringListField(matcher, 'inclusionRegexps'), REQUIRED_REGEXPS),
    histogramBuckets: histogramBuckets(annotations[ANNOTATION.histogramBuckets], warn),
  };

  let flushMs = DEFAULT_FLUSH_INTERVAL_MS;
  const flush = annotations[ANNOTATION.flushInterval];
  if (flush !== undefined) {
    const ms = parseGoDuration(flush);
    if (ms === undefined) {
      warn(`Failed to parse stats flush interval ${flush}`);
    } else {
      flushMs = ms;
      // Istio prints Go's Duration.String() here ("1m0s"), which Envoy cannot parse beyond a
      // minute: the proto-JSON form is written instead.
      options.flushInterval = protoDuration(ms);
    }
  }
  const eviction = annotations[ANNOTATION.evictionInterval];
  if (eviction !== undefined) {
    const ms = parseGoDuration(eviction);
    if (ms === undefined) warn(`Failed to parse stats eviction interval ${eviction}`);
    else if (flushMs === 0 || ms % flushMs !== 0) warn('StatsEvictionInterval must be a multiple of the StatsFlushInterval');
    else options.evictionInterval = `${Math.trunc(ms / 1000)}s`;
  }
  return options;
}

/** `http.{pod_ip}_` becomes one pattern per instance IP. */
function substitutePodIp(patterns: readonly string[], ips: readonly string[]): string[] {
  return patterns.flatMap((p) => (p.includes('{pod_ip}') ? ips.map((ip) => p.replaceAll('{pod_ip}', ip)) : [p]));
}

function histogramBuckets(annotation: string | undefined, warn: (message: string) => void): HistogramBucket[] {
  if (annotation === undefined) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(annotation);
  } catch (err) {
    warn(`Failed to unmarshal histogram buckets ${annotation}: ${err instanceof Error ? err.message : String(err)}`);
    return [];
  }
  const isBuckets = (v: unknown): v is number[] => Array.isArray(v) && v.every((n) => typeof n === 'number');
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || !Object.values(parsed).every(isBuckets)) {
    warn(`Failed to unmarshal histogram buckets ${annotation}: expected an object of number arrays`);
    return [];
  }
  return Object.entries(parsed as Record<string, number[]>)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([prefix, buckets]) => ({ match: { prefix }, buckets }));
}

function protoDuration(ms: number): string {
  const nanos = Math.round(ms * 1e6);
  const seconds = Math.trunc(nanos / 1e9);
  const rest = Math.abs(nanos % 1e9);
  return rest === 0 ? `${seconds}s` : `${seconds}.${String(rest).padStart(9, '0').replace(/0+$/, '')}s`;
}
