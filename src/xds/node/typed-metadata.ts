/**
 * Istio's typed node metadata (`BootstrapNodeMetadata` and the `NodeMetadata` it embeds, in
 * pkg/model/proxy.go). pilot-agent collects ISTIO_META_* and ISTIO_METAJSON_* into an untyped map,
 * then decodes that map into the typed struct with Go's encoding/json before filling in what it
 * computes. That round trip decides what istiod sees:
 *
 * - a value that does not fit its field fails startup (`DNS_CAPTURE: ""`, `ENVOY_STATUS_PORT: "15021"`);
 * - keys match field names case-insensitively (`network` fills NETWORK);
 * - booleans come back as the strings "true"/"false", INSTANCE_IPS as one comma-joined string and
 *   POD_PORTS as a re-serialised JSON string;
 * - every field is `omitempty`: "", 0, false, empty lists and maps are left out.
 */
import type { JsonLike } from '../../proto/index.js';
import { parseBool } from '../../config/index.js';
import { compareGoKeys, isJsonObject, sortObjectKeysDeep } from './go-json.js';

export type FieldKind =
  | 'string'
  | 'stringMap'
  /** Go StringList: a JSON string split on commas. */
  | 'commaList'
  /** Go PodPortList: a JSON string holding a JSON array of ports. */
  | 'podPorts'
  /** Go StringBool: a JSON string that strconv.ParseBool accepts. */
  | 'stringBool'
  /** *StringBool: as stringBool, but null clears it. */
  | 'optionalStringBool'
  | 'int'
  | 'stringArray'
  | 'proxyConfig';

/** Every typed key, by JSON name. Keys not listed here are "raw": only Envoy's bootstrap carries them. */
export const TYPED_FIELDS: ReadonlyMap<string, FieldKind> = new Map<string, FieldKind>([
  // NodeMetadata
  ['PROXY_CONFIG', 'proxyConfig'],
  ['ISTIO_VERSION', 'string'],
  ['ISTIO_REVISION', 'string'],
  ['LABELS', 'stringMap'],
  ['STATIC_LABELS', 'stringMap'],
  ['ANNOTATIONS', 'stringMap'],
  ['INSTANCE_IPS', 'commaList'],
  ['NAMESPACE', 'string'],
  ['NODE_NAME', 'string'],
  ['WORKLOAD_NAME', 'string'],
  ['INTERCEPTION_MODE', 'string'],
  ['SERVICE_ACCOUNT', 'string'],
  ['HTTP_PROXY_PORT', 'string'],
  ['MESH_ID', 'string'],
  ['CLUSTER_ID', 'string'],
  ['NETWORK', 'string'],
  ['REQUESTED_NETWORK_VIEW', 'commaList'],
  ['POD_PORTS', 'podPorts'],
  ['TLS_SERVER_CERT_CHAIN', 'string'],
  ['TLS_SERVER_KEY', 'string'],
  ['TLS_SERVER_ROOT_CERT', 'string'],
  ['TLS_CLIENT_CERT_CHAIN', 'string'],
  ['TLS_CLIENT_KEY', 'string'],
  ['TLS_CLIENT_ROOT_CERT', 'string'],
  ['BASE', 'string'],
  ['IDLE_TIMEOUT', 'string'],
  ['HTTP10', 'string'],
  ['GENERATOR', 'string'],
  ['ENABLE_SELF_DISCOVERY', 'stringBool'],
  ['DNS_CAPTURE', 'stringBool'],
  ['DNS_AUTO_ALLOCATE', 'stringBool'],
  ['DNS_PROXY_ADDR', 'string'],
  ['ENABLE_HBONE', 'stringBool'],
  ['DISABLE_HBONE_SEND', 'stringBool'],
  ['AUTO_REGISTER_GROUP', 'string'],
  ['WORKLOAD_ENTRY', 'string'],
  ['UNPRIVILEGED_POD', 'string'],
  ['PLATFORM_METADATA', 'stringMap'],
  ['STS_PORT', 'string'],
  ['ENVOY_STATUS_PORT', 'int'],
  ['ENVOY_PROMETHEUS_PORT', 'int'],
  ['ENVOY_SECURE_METRICS_PORT', 'int'],
  ['ENVOY_SECURE_MERGED_METRICS_PORT', 'int'],
  ['EXIT_ON_ZERO_ACTIVE_CONNECTIONS', 'stringBool'],
  ['INBOUND_LISTENER_EXACT_BALANCE', 'stringBool'],
  ['OUTBOUND_LISTENER_EXACT_BALANCE', 'stringBool'],
  ['CLOUDRUN_ADDR', 'string'],
  ['METADATA_DISCOVERY', 'optionalStringBool'],
  ['ENVOY_SKIP_DEPRECATED_LOGS', 'stringBool'],
  ['WORKLOAD_IDENTITY_SOCKET_FILE', 'string'],
  // BootstrapNodeMetadata
  ['NAME', 'string'],
  ['OWNER', 'string'],
  ['PILOT_SAN', 'stringArray'],
  ['OUTLIER_LOG_PATH', 'string'],
  ['APP_CONTAINERS', 'string'],
  ['ISTIO_PROXY_SHA', 'string'],
]);

export interface PodPort {
  name: string;
  containerPort: number;
  protocol: string;
}

export type TypedValue =
  | { kind: 'string'; value: string }
  | { kind: 'stringMap'; value: Record<string, string> | null }
  | { kind: 'commaList'; value: string[] }
  | { kind: 'podPorts'; value: PodPort[] | null }
  | { kind: 'stringBool'; value: boolean }
  | { kind: 'optionalStringBool'; value: boolean | null }
  | { kind: 'int'; value: number }
  | { kind: 'stringArray'; value: string[] | null }
  | { kind: 'proxyConfig'; value: { [key: string]: JsonLike } | null };

/**
 * The field a raw key decodes into: its exact JSON name, else a case-insensitive match (Go folds
 * ASCII letters, plus U+017F to S and U+212A to K).
 */
export function typedFieldFor(key: string): string | undefined {
  if (TYPED_FIELDS.has(key)) return key;
  const folded = foldKey(key);
  return TYPED_FIELDS.has(folded) ? folded : undefined;
}

function foldKey(key: string): string {
  return key.replace(/[a-z]/g, (c) => c.toUpperCase()).replace(/\u017f/g, 'S').replace(/\u212a/g, 'K');
}

export type DecodeResult = { ok: true; value: TypedValue | undefined } | { ok: false; problem: string };

const unchanged: DecodeResult = { ok: true, value: undefined };

/**
 * Decodes one raw value into a field of the given kind, as encoding/json would. `current` is the value
 * already there (a map is merged into, as Go reuses a non-nil map). `value: undefined` = unchanged.
 */
export function decodeTypedField(kind: FieldKind, raw: JsonLike, current: TypedValue | undefined): DecodeResult {
  const ok = (value: TypedValue): DecodeResult => ({ ok: true, value });
  const fail = (expected: string): DecodeResult => ({ ok: false, problem: `expected ${expected}, got ${describe(raw)}` });
  switch (kind) {
    case 'string':
      if (raw === null) return unchanged;
      return typeof raw === 'string' ? ok({ kind, value: raw }) : fail('a string');
    case 'stringMap': {
      if (raw === null) return ok({ kind, value: null });
      if (!isJsonObject(raw)) return fail('an object of strings');
      const target = current?.kind === 'stringMap' && current.value !== null ? current.value : {};
      for (const [key, value] of Object.entries(raw)) {
        if (value !== null && typeof value !== 'string') {
          return { ok: false, problem: `expected an object of strings, but "${key}" is ${describe(value)}` };
        }
        Object.defineProperty(target, key, { value: value ?? '', enumerable: true, writable: true, configurable: true });
      }
      return ok({ kind, value: target });
    }
    case 'commaList':
      // StringList's decoder reads null as an empty string.
      if (raw === null || raw === '') return ok({ kind, value: [] });
      return typeof raw === 'string' ? ok({ kind, value: raw.split(',') }) : fail('a comma-separated string');
    case 'podPorts':
      return typeof raw === 'string' ? decodePodPorts(raw) : fail('a string holding a JSON array of ports');
    case 'stringBool':
    case 'optionalStringBool': {
      if (raw === null && kind === 'optionalStringBool') return ok({ kind, value: null });
      const parsed = typeof raw === 'string' ? parseBool(raw) : undefined;
      if (parsed === undefined) return fail('"true" or "false"');
      return ok(kind === 'stringBool' ? { kind, value: parsed } : { kind, value: parsed });
    }
    case 'int':
      if (raw === null) return unchanged;
      // Go parses the number's text as an integer: 80.5 and 1e+21 do not fit an int.
      return typeof raw === 'number' && Number.isInteger(raw) && Math.abs(raw) < 1e21 ? ok({ kind, value: raw }) : fail('an integer');
    case 'stringArray': {
      if (raw === null) return ok({ kind, value: null });
      if (!Array.isArray(raw)) return fail('an array of strings');
      const out: string[] = [];
      for (const item of raw) {
        if (item !== null && typeof item !== 'string') return fail('an array of strings');
        out.push(item ?? '');
      }
      return ok({ kind, value: out });
    }
    case 'proxyConfig':
      if (raw === null) return ok({ kind, value: null });
      return isJsonObject(raw) ? ok({ kind, value: raw }) : fail('a ProxyConfig object');
  }
}

function decodePodPorts(text: string): DecodeResult {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return { ok: false, problem: `invalid JSON: ${err instanceof Error ? err.message : String(err)}` };
  }
  if (parsed === null) return { ok: true, value: { kind: 'podPorts', value: null } };
  if (!Array.isArray(parsed)) return { ok: false, problem: 'expected a JSON array of ports' };
  const ports: PodPort[] = [];
  for (const [i, item] of (parsed as unknown[]).entries()) {
    const port: PodPort = { name: '', containerPort: 0, protocol: '' };
    if (item !== null) {
      if (!isJsonObject(item)) return { ok: false, problem: `port ${i}: expected an object` };
      for (const [key, value] of Object.entries(item)) {
        const field = foldKey(key);
        if (value === null) continue;
        if (field === 'NAME' || field === 'PROTOCOL') {
          if (typeof value !== 'string') return { ok: false, problem: `port ${i}: ${key}: expected a string, got ${describe(value)}` };
          if (field === 'NAME') port.name = value;
          else port.protocol = value;
        } else if (field === 'CONTAINERPORT') {
          if (typeof value !== 'number' || !Number.isInteger(value)) {
            return { ok: false, problem: `port ${i}: ${key}: expected an integer, got ${describe(value)}` };
          }
          port.containerPort = value;
        }
      }
    }
    ports.push(port);
  }
  return { ok: true, value: { kind: 'podPorts', value: ports } };
}

/** The JSON value a typed field is written as, or undefined where `omitempty` leaves it out. */
export function encodeTypedField(typed: TypedValue): JsonLike | undefined {
  switch (typed.kind) {
    case 'string':
      return typed.value === '' ? undefined : typed.value;
    case 'stringMap': {
      if (typed.value === null || Object.keys(typed.value).length === 0) return undefined;
      return sortObjectKeysDeep(typed.value);
    }
    case 'commaList':
      return typed.value.length === 0 ? undefined : typed.value.join(',');
    case 'podPorts':
      if (typed.value === null || typed.value.length === 0) return undefined;
      // Re-serialised with Go's field order; `name` is omitempty, the other two are always written.
      return JSON.stringify(
        typed.value.map((p) => (p.name === '' ? { containerPort: p.containerPort, protocol: p.protocol } : { ...p })),
      );
    case 'stringBool':
      return typed.value ? 'true' : undefined;
    case 'optionalStringBool':
      return typed.value === null ? undefined : String(typed.value);
    case 'int':
      return typed.value === 0 ? undefined : typed.value;
    case 'stringArray':
      return typed.value === null || typed.value.length === 0 ? undefined : [...typed.value];
    case 'proxyConfig':
      return typed.value === null ? undefined : sortObjectKeysDeep(typed.value);
  }
}

/** Typed fields in Go's key order, with empty ones left out. */
export function encodeTypedFields(fields: ReadonlyMap<string, TypedValue>): Record<string, JsonLike> {
  const entries: [string, JsonLike][] = [];
  for (const key of [...fields.keys()].sort(compareGoKeys)) {
    const typed = fields.get(key);
    const encoded = typed === undefined ? undefined : encodeTypedField(typed);
    if (encoded !== undefined) entries.push([key, encoded]);
  }
  return Object.fromEntries(entries);
}

function describe(value: JsonLike | undefined): string {
  if (value === undefined || value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return `${typeof value === 'number' ? 'a number' : typeof value === 'boolean' ? 'a boolean' : 'a string'} (${JSON.stringify(value)})`;
}
