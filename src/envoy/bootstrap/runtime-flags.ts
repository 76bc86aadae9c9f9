/**
 * The bootstrap's static runtime layer and overload limit (pkg/bootstrap/config.go
 * extractRuntimeFlags, getNodeMetadataOptions).
 */
import { parseBool, parseGoInt, type JsonValue, type ProxyConfig } from '../../config/index.js';
import { compareGoKeys, protoField, type JsonObject } from './json.js';

/** Istio's fixed flags at the reference commit. */
const DEFAULT_RUNTIME_FLAGS: Readonly<JsonObject> = {
  're2.max_program_size.error_level': '32768',
  'envoy.deprecated_features:envoy.config.listener.v3.Listener.hidden_envoy_deprecated_use_original_dst': true,
  'envoy.reloadable_features.http_reject_path_with_fragment': false,
  'envoy.reloadable_features.fixed_heap_use_allocated': true,
  // Istio turns this off for envoyproxy/envoy#45212.
  'envoy.reloadable_features.coalesce_lb_rebuilds_on_batch_update': false,
};

const FIPS_140_2 = 'fips-140-2';
const GLOBAL_DOWNSTREAM_MAX_CONNECTIONS_META = 'ISTIO_META_GLOBAL_DOWNSTREAM_MAX_CONNECTIONS';
const GLOBAL_DOWNSTREAM_MAX_CONNECTIONS_RUNTIME = 'overload.global_downstream_max_connections';
const MAX_INT32 = 2147483647;

/**
 * Fixed flags, then COMPLIANCE_POLICY and HTTP_STRIP_FRAGMENT_FROM_PATH_UNSAFE_IF_DISABLED, then
 * ProxyConfig `runtimeValues`: "" removes a flag, "true"/"false" become booleans (Envoy stopped
 * accepting them as strings), anything else stays a string. Keys sorted, as Go writes a map.
 */
export function runtimeFlags(proxyConfig: ProxyConfig, env: Readonly<Record<string, string>>): JsonObject {
  const flags = new Map<string, JsonValue>(Object.entries(DEFAULT_RUNTIME_FLAGS));
  if (env['COMPLIANCE_POLICY'] === FIPS_140_2) flags.set('envoy.reloadable_features.google_grpc_disable_tls_13', true);
  const stripFragment = env['HTTP_STRIP_FRAGMENT_FROM_PATH_UNSAFE_IF_DISABLED'];
  // Istio's condition is inverted relative to the flag's name, kept for compatibility.
  if (stripFragment !== undefined && parseBool(stripFragment) === false) {
    flags.set('envoy.reloadable_features.http_strip_fragment_from_path_unsafe_if_disabled', 'false');
  }
  for (const [key, value] of Object.entries(proxyConfig.runtimeValues ?? {})) {
    if (value === '') flags.delete(key);
    else flags.set(key, value === 'true' ? true : value === 'false' ? false : value);
  }
  const out: JsonObject = {};
  for (const key of [...flags.keys()].sort(compareGoKeys)) {
    Object.defineProperty(out, key, { value: flags.get(key), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/**
 * Envoy's global downstream connection limit, highest first: ProxyConfig
 * `connectionSettings.globalDownstreamConnectionLimit` (> 0), proxyMetadata
 * ISTIO_META_GLOBAL_DOWNSTREAM_MAX_CONNECTIONS, the deprecated runtime value
 * `overload.global_downstream_max_connections`, else 2147483647 (unlimited).
 */
export function globalDownstreamMaxConnections(proxyConfig: ProxyConfig): number {
  const fromSettings = wrapperInt(protoField(proxyConfig.other['connectionSettings'], 'globalDownstreamConnectionLimit'));
  if (fromSettings !== undefined && fromSettings > 0) return fromSettings;
  const fromMeta = parseGoInt(proxyConfig.proxyMetadata[GLOBAL_DOWNSTREAM_MAX_CONNECTIONS_META] ?? '');
  if (fromMeta !== undefined) return fromMeta;
  const fromRuntime = parseGoInt(proxyConfig.runtimeValues?.[GLOBAL_DOWNSTREAM_MAX_CONNECTIONS_RUNTIME] ?? '');
  return fromRuntime ?? MAX_INT32;
}

/** A UInt32Value in proto-JSON (a number or a decimal string). */
function wrapperInt(value: JsonValue | undefined): number | undefined {
  if (typeof value === 'number' && Number.isInteger(value)) return value;
  if (typeof value === 'string') return parseGoInt(value);
  return undefined;
}
