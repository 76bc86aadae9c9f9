/**
 * ProxyConfig (istio.mesh.v1alpha1.ProxyConfig) as pilot-agent builds it: typed parsing of one YAML
 * layer (mesh file `defaultConfig`, or PROXY_CONFIG), field-wise merging of the layers, and the checks
 * pilot-agent runs on the result (`failed to get proxy config: ...`).
 *
 * Field names follow proto-JSON: camelCase, with the proto (snake_case) name also accepted. Fields
 * the agent does not model are kept verbatim in `other`; names that are not ProxyConfig fields at all
 * are ignored with a warning, as pilot-agent's lenient retry does.
 */
import type { ConfigErrorSource } from './errors.js';
import { isPort, parseProtoDuration, proxyAddressProblem } from './go-values.js';
import type { Issues } from './issues.js';
import type { JsonValue, ProxyConfig, ReadinessProbe } from './types.js';
import { describeNode, toJson, type YEntry, type YNode } from './yaml-tree.js';

type FieldKind =
  | { readonly type: 'string' | 'bool' | 'duration' | 'stringMap' | 'stringList' | 'message' | 'readinessProbe' }
  | { readonly type: 'int32' | 'uint32' }
  | { readonly type: 'enum'; readonly values: Readonly<Record<string, number>> };

interface FieldSpec {
  /** proto-JSON name. */
  readonly name: string;
  readonly kind: FieldKind;
  /** Has its own member in the ProxyConfig interface (otherwise it goes to `other`). */
  readonly modelled: boolean;
}

const STRING = { type: 'string' } as const;
const BOOL = { type: 'bool' } as const;
const INT32 = { type: 'int32' } as const;
const UINT32 = { type: 'uint32' } as const;
const DURATION = { type: 'duration' } as const;
const MESSAGE = { type: 'message' } as const;
const STRING_MAP = { type: 'stringMap' } as const;
const STRING_LIST = { type: 'stringList' } as const;

export const AUTH_POLICY_VALUES = { NONE: 0, MUTUAL_TLS: 1, INHERIT: 1000 } as const;

/** ProxyConfig's fields at istio/api b8f8791, by proto name; `true` = modelled in types.ts. */
const PROXY_CONFIG_FIELDS: readonly [string, FieldKind, boolean][] = [
  ['config_path', STRING, true],
  ['binary_path', STRING, true],
  ['service_cluster', STRING, true],
  ['tracing_service_name', { type: 'enum', values: { APP_LABEL_AND_NAMESPACE: 0, CANONICAL_NAME_ONLY: 1, CANONICAL_NAME_AND_NAMESPACE: 2 } }, false],
  ['drain_duration', DURATION, true],
  ['discovery_address', STRING, true],
  ['discovery_refresh_delay', DURATION, false],
  ['zipkin_address', STRING, false],
  ['statsd_udp_address', STRING, false],
  ['envoy_metrics_service_address', STRING, false],
  ['proxy_admin_port', INT32, true],
  ['availability_zone', STRING, false],
  ['control_plane_auth_policy', { type: 'enum', values: AUTH_POLICY_VALUES }, true],
  ['custom_config_file', STRING, true],
  ['stat_name_length', INT32, false],
  ['concurrency', INT32, true],
  ['proxy_bootstrap_template_path', STRING, true],
  ['interception_mode', { type: 'enum', values: { REDIRECT: 0, TPROXY: 1, NONE: 2 } }, false],
  ['tracing', MESSAGE, true],
  ['sds', MESSAGE, false],
  ['envoy_access_log_service', MESSAGE, false],
  ['envoy_metrics_service', MESSAGE, false],
  ['proxy_metadata', STRING_MAP, true],
  ['runtime_values', STRING_MAP, true],
  ['status_port', INT32, true],
  ['extra_stat_tags', STRING_LIST, true],
  ['gateway_topology', MESSAGE, false],
  ['termination_drain_duration', DURATION, true],
  ['mesh_id', STRING, false],
  ['readiness_probe', { type: 'readinessProbe' }, true],
  ['proxy_stats_matcher', MESSAGE, true],
  ['hold_application_until_proxy_starts', BOOL, false],
  ['ca_certificates_pem', STRING_LIST, true],
  ['image', MESSAGE, false],
  ['private_key_provider', MESSAGE, true],
  ['proxy_headers', MESSAGE, false],
  ['file_flush_interval', DURATION, true],
  ['file_flush_min_size_kb', UINT32, true],
  ['stats_compression', BOOL, true],
  ['connection_settings', MESSAGE, false],
];

/** `proxy_admin_port` → `proxyAdminPort` (protoc's json_name rule). */
export function protoJsonName(protoName: string): string {
  return protoName.replace(/_([a-zA-Z0-9])/g, (_m, c: string) => c.toUpperCase());
}

/** Looks a field up by proto-JSON or proto name. */
function fieldIndex(specs: readonly [string, FieldKind, boolean][]): Map<string, FieldSpec> {
  const index = new Map<string, FieldSpec>();
  for (const [protoName, kind, modelled] of specs) {
    const spec: FieldSpec = { name: protoJsonName(protoName), kind, modelled };
    index.set(spec.name, spec);
    index.set(protoName, spec);
  }
  return index;
}

const PROXY_FIELDS = fieldIndex(PROXY_CONFIG_FIELDS);

export type FieldValue = JsonValue | ReadinessProbe;

export interface LayerField {
  readonly value: FieldValue;
  /** Where it was set; `key` is the path as the operator wrote it (`defaultConfig.drainDuration`). */
  readonly source: ConfigErrorSource;
}

/** One layer of ProxyConfig: the fields it sets (by proto-JSON name) and its proxyMetadata keys. */
export interface ProxyConfigLayer {
  readonly fields: Map<string, LayerField>;
  readonly metadata: Map<string, { readonly value: string; readonly source: ConfigErrorSource }>;
}

export function emptyLayer(): ProxyConfigLayer {
  return { fields: new Map(), metadata: new Map() };
}

/** Where a layer came from: the file name for messages and the path prefix of its fields. */
export interface LayerContext {
  readonly file: string;
  /** `defaultConfig` for the mesh file (as the operator wrote it), '' for PROXY_CONFIG. */
  readonly prefix: string;
  readonly issues: Issues;
}

function at(ctx: LayerContext, line: number, path: string): ConfigErrorSource {
  return { file: ctx.file, line, key: path };
}

function join(prefix: string, key: string): string {
  return prefix === '' ? key : `${prefix}.${key}`;
}

/** Parses one ProxyConfig mapping; type errors go to `ctx.issues` and the field is left out. */
export function parseProxyConfigLayer(node: YNode, ctx: LayerContext): ProxyConfigLayer {
  const layer = emptyLayer();
  if (node.kind === 'scalar' && node.value === null) return layer;
  if (node.kind !== 'map') {
    ctx.issues.error(at(ctx, node.line, ctx.prefix || 'ProxyConfig'), `expected a mapping of ProxyConfig fields, got ${describeNode(node)}`);
    return layer;
  }
  for (const entry of node.entries) {
    const path = join(ctx.prefix, entry.key);
    const spec = PROXY_FIELDS.get(entry.key);
    if (spec === undefined) {
      ctx.issues.warn(at(ctx, entry.line, path), 'unknown ProxyConfig field, ignored');
      continue;
    }
    // proto-JSON treats null as "not set".
    if (entry.value.kind === 'scalar' && entry.value.value === null) continue;
    const source = at(ctx, entry.line, path);
    if (spec.kind.type === 'stringMap' && spec.name === 'proxyMetadata') {
      for (const [key, value] of parseStringMap(entry, path, ctx)) {
        layer.metadata.set(key, { value: value.value, source: at(ctx, value.line, `${path}.${key}`) });
      }
      continue;
    }
    const value = parseField(spec, entry, path, ctx);
    if (value !== undefined) layer.fields.set(spec.name, { value, source });
  }
  return layer;
}

function parseField(spec: FieldSpec, entry: YEntry, path: string, ctx: LayerContext): FieldValue | undefined {
  const node = entry.value;
  const kind = spec.kind;
  switch (kind.type) {
    case 'string':
      return expectString(node, path, ctx);
    case 'bool':
      if (node.kind === 'scalar' && typeof node.value === 'boolean') return node.value;
      return typeError(node, path, ctx, 'true or false');
    case 'int32':
      return expectInteger(node, path, ctx, -2_147_483_648, 2_147_483_647);
    case 'uint32':
      return expectInteger(node, path, ctx, 0, 4_294_967_295);
    case 'duration': {
      const text = node.kind === 'scalar' && typeof node.value === 'string' ? node.value : undefined;
      if (text !== undefined && parseProtoDuration(text) !== undefined) return text;
      return typeError(node, path, ctx, 'a duration in seconds such as "45s" or "0.5s"');
    }
    case 'enum':
      return expectEnum(node, path, ctx, kind.values);
    case 'stringMap': {
      const out: Record<string, string> = {};
      for (const [key, value] of parseStringMap(entry, path, ctx)) out[key] = value.value;
      return node.kind === 'map' ? out : undefined;
    }
    case 'stringList':
      return expectStringList(node, path, ctx);
    case 'message':
      if (node.kind !== 'map') return typeError(node, path, ctx, 'a mapping');
      return camelizeKeys(toJson(node), false);
    case 'readinessProbe':
      return parseReadinessProbe(node, path, ctx, entry.line);
  }
}

function typeError(node: YNode, path: string, ctx: LayerContext, expected: string): undefined {
  let hint = '';
  if (expected === 'a string' && node.kind === 'scalar' && node.value !== null) hint = `; quote it: "${String(node.value)}"`;
  ctx.issues.error(at(ctx, node.line, path), `expected ${expected}, got ${describeNode(node)}${hint}`);
  return undefined;
}

function expectString(node: YNode, path: string, ctx: LayerContext): string | undefined {
  if (node.kind === 'scalar' && typeof node.value === 'string') return node.value;
  return typeError(node, path, ctx, 'a string');
}

/** proto-JSON integers: a number, or a string holding one. */
function expectInteger(node: YNode, path: string, ctx: LayerContext, min: number, max: number): number | undefined {
  let value: number | undefined;
  if (node.kind === 'scalar' && typeof node.value === 'number') value = node.value;
  if (node.kind === 'scalar' && typeof node.value === 'string' && /^-?\d+$/.test(node.value)) value = Number(node.value);
  if (value === undefined || !Number.isInteger(value)) return typeError(node, path, ctx, 'an integer');
  if (value < min || value > max) {
    ctx.issues.error(at(ctx, node.line, path), `must be between ${min} and ${max}, got ${value}`);
    return undefined;
  }
  return value;
}

function expectEnum(node: YNode, path: string, ctx: LayerContext, values: Readonly<Record<string, number>>): string | undefined {
  const names = Object.keys(values);
  if (node.kind === 'scalar' && typeof node.value === 'string' && names.includes(node.value)) return node.value;
  if (node.kind === 'scalar' && typeof node.value === 'number') {
    const name = names.find((n) => values[n] === node.value);
    if (name !== undefined) return name;
  }
  ctx.issues.error(at(ctx, node.line, path), `expected one of ${names.join(', ')}, got ${describeNode(node)}`);
  return undefined;
}

function expectStringList(node: YNode, path: string, ctx: LayerContext): string[] | undefined {
  if (node.kind !== 'seq') return typeError(node, path, ctx, 'a list of strings');
  const out: string[] = [];
  let ok = true;
  node.items.forEach((item, i) => {
    const text = expectString(item, `${path}[${i}]`, ctx);
    if (text === undefined) ok = false;
    else out.push(text);
  });
  return ok ? out : undefined;
}

/** map<string, string>: every value must be a YAML string (istioctl quotes "true" for this reason). */
function parseStringMap(entry: YEntry, path: string, ctx: LayerContext): Map<string, { value: string; line: number }> {
  const out = new Map<string, { value: string; line: number }>();
  const node = entry.value;
  if (node.kind !== 'map') {
    typeError(node, path, ctx, 'a mapping of strings');
    return out;
  }
  for (const item of node.entries) {
    const value = item.value.kind === 'scalar' && item.value.value === null ? '' : expectString(item.value, `${path}.${item.key}`, ctx);
    if (value !== undefined) out.set(item.key, { value, line: item.line });
  }
  return out;
}

/** Map fields inside opaque messages whose keys are user data and must not be renamed. */
const MAP_FIELDS = new Set(['customTags']);

/** Rewrites proto names to proto-JSON names throughout an opaque message (`inclusion_prefixes` → `inclusionPrefixes`). */
export function camelizeKeys(value: JsonValue, keysAreData: boolean): JsonValue {
  if (Array.isArray(value)) return value.map((v) => camelizeKeys(v, false));
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, JsonValue> = {};
  for (const [key, child] of Object.entries(value)) {
    const name = keysAreData ? key : protoJsonName(key);
    out[name] = camelizeKeys(child, !keysAreData && MAP_FIELDS.has(name));
  }
  return out;
}

// ---- readinessProbe (istio.networking.v1alpha3.ReadinessProbe) ----

const PROBE_NUMBERS = ['initial_delay_seconds', 'timeout_seconds', 'period_seconds', 'success_threshold', 'failure_threshold'] as const;
const PROBE_NUMBER_FIELDS = ['initialDelaySeconds', 'timeoutSeconds', 'periodSeconds', 'successThreshold', 'failureThreshold'] as const;
const PROBE_HANDLERS = ['http_get', 'tcp_socket', 'exec', 'grpc'] as const;

type Fields = Map<string, YEntry>;

/** Indexes a mapping's entries by proto-JSON name, warning about unknown ones. */
function knownEntries(node: YNode & { kind: 'map' }, allowed: readonly string[], path: string, ctx: LayerContext): Fields {
  const byName = new Map<string, string>();
  for (const protoName of allowed) {
    byName.set(protoName, protoJsonName(protoName));
    byName.set(protoJsonName(protoName), protoJsonName(protoName));
  }
  const out: Fields = new Map();
  for (const entry of node.entries) {
    const name = byName.get(entry.key);
    if (name === undefined) {
      ctx.issues.warn(at(ctx, entry.line, `${path}.${entry.key}`), 'unknown field, ignored');
      continue;
    }
    if (entry.value.kind === 'scalar' && entry.value.value === null) continue;
    out.set(name, entry);
  }
  return out;
}

function asMap(node: YNode, path: string, ctx: LayerContext): (YNode & { kind: 'map' }) | undefined {
  if (node.kind === 'map') return node;
  typeError(node, path, ctx, 'a mapping');
  return undefined;
}

export function parseReadinessProbe(node: YNode, path: string, ctx: LayerContext, keyLine = node.line): ReadinessProbe | undefined {
  const map = asMap(node, path, ctx);
  if (map === undefined) return undefined;
  const errorsBefore = ctx.issues.errors.length;
  const fields = knownEntries(map, [...PROBE_NUMBERS, ...PROBE_HANDLERS], path, ctx);
  const probe: ReadinessProbe = {};
  const name = (entry: YEntry): string => `${path}.${entry.key}`;

  for (const field of PROBE_NUMBER_FIELDS) {
    const entry = fields.get(field);
    if (entry === undefined) continue;
    const value = expectInteger(entry.value, name(entry), ctx, -2_147_483_648, 2_147_483_647);
    if (value === undefined) continue;
    if (value < 0) {
      ctx.issues.error(at(ctx, entry.value.line, name(entry)), `must be >= 0, got ${value}`);
      continue;
    }
    probe[field] = value;
  }

  const handlers = PROBE_HANDLERS.map((h) => fields.get(protoJsonName(h))).filter((e): e is YEntry => e !== undefined);
  if (handlers.length === 0) {
    ctx.issues.error(at(ctx, keyLine, path), 'needs exactly one of httpGet, tcpSocket, exec or grpc, got none');
  } else if (handlers.length > 1) {
    const [, second] = handlers;
    ctx.issues.error(
      at(ctx, second?.line ?? map.line, path),
      `needs exactly one of httpGet, tcpSocket, exec or grpc, got ${handlers.map((h) => protoJsonName(h.key)).join(' and ')}`,
    );
  }

  const httpGet = fields.get('httpGet');
  if (httpGet) {
    const m = asMap(httpGet.value, name(httpGet), ctx);
    if (m) {
      const f = knownEntries(m, ['path', 'port', 'host', 'scheme', 'http_headers'], name(httpGet), ctx);
      const port = probePort(f, m, name(httpGet), ctx);
      const out: NonNullable<ReadinessProbe['httpGet']> = { port: port ?? 0 };
      for (const key of ['path', 'host', 'scheme'] as const) {
        const e = f.get(key);
        const text = e ? expectString(e.value, `${name(httpGet)}.${e.key}`, ctx) : undefined;
        if (text !== undefined) out[key] = text;
      }
      const headers = f.get('httpHeaders');
      if (headers) {
        const parsed = parseHeaders(headers, `${name(httpGet)}.${headers.key}`, ctx);
        if (parsed) out.httpHeaders = parsed;
      }
      probe.httpGet = out;
    }
  }
  const tcpSocket = fields.get('tcpSocket');
  if (tcpSocket) {
    const m = asMap(tcpSocket.value, name(tcpSocket), ctx);
    if (m) {
      const f = knownEntries(m, ['host', 'port'], name(tcpSocket), ctx);
      const out: NonNullable<ReadinessProbe['tcpSocket']> = { port: probePort(f, m, name(tcpSocket), ctx) ?? 0 };
      const host = f.get('host');
      const text = host ? expectString(host.value, `${name(tcpSocket)}.${host.key}`, ctx) : undefined;
      if (text !== undefined) out.host = text;
      probe.tcpSocket = out;
    }
  }
  const exec = fields.get('exec');
  if (exec) {
    const m = asMap(exec.value, name(exec), ctx);
    if (m) {
      const f = knownEntries(m, ['command'], name(exec), ctx);
      const command = f.get('command');
      const list = command ? expectStringList(command.value, `${name(exec)}.${command.key}`, ctx) : undefined;
      if (command === undefined || (list !== undefined && list.length === 0)) {
        ctx.issues.error(at(ctx, command?.line ?? m.line, `${name(exec)}.command`), 'must list the command to run');
      }
      probe.exec = { command: list ?? [] };
    }
  }
  const grpc = fields.get('grpc');
  if (grpc) {
    const m = asMap(grpc.value, name(grpc), ctx);
    if (m) {
      const f = knownEntries(m, ['port', 'service'], name(grpc), ctx);
      const out: NonNullable<ReadinessProbe['grpc']> = { port: probePort(f, m, name(grpc), ctx) ?? 0 };
      const service = f.get('service');
      const text = service ? expectString(service.value, `${name(grpc)}.${service.key}`, ctx) : undefined;
      if (text !== undefined) out.service = text;
      probe.grpc = out;
    }
  }
  return ctx.issues.errors.length === errorsBefore ? probe : undefined;
}

function probePort(fields: Fields, parent: YNode, path: string, ctx: LayerContext): number | undefined {
  const entry = fields.get('port');
  if (entry === undefined) {
    ctx.issues.error(at(ctx, parent.line, `${path}.port`), 'is required');
    return undefined;
  }
  const value = expectInteger(entry.value, `${path}.${entry.key}`, ctx, 0, 4_294_967_295);
  if (value === undefined) return undefined;
  if (!isPort(value)) {
    ctx.issues.error(at(ctx, entry.value.line, `${path}.${entry.key}`), `must be a port number (1-65535), got ${value}`);
    return undefined;
  }
  return value;
}

function parseHeaders(entry: YEntry, path: string, ctx: LayerContext): { name: string; value: string }[] | undefined {
  if (entry.value.kind !== 'seq') return typeError(entry.value, path, ctx, 'a list of {name, value}');
  const out: { name: string; value: string }[] = [];
  entry.value.items.forEach((item, i) => {
    const m = asMap(item, `${path}[${i}]`, ctx);
    if (!m) return;
    const f = knownEntries(m, ['name', 'value'], `${path}[${i}]`, ctx);
    const nameEntry = f.get('name');
    const valueEntry = f.get('value');
    const headerName = nameEntry ? expectString(nameEntry.value, `${path}[${i}].name`, ctx) : '';
    const headerValue = valueEntry ? expectString(valueEntry.value, `${path}[${i}].value`, ctx) : '';
    if (headerName !== undefined && headerValue !== undefined) out.push({ name: headerName, value: headerValue });
  });
  return out;
}

// ---- merging and the effective ProxyConfig ----

/** pilot-agent's DefaultProxyConfig (pkg/config/mesh/mesh.go). */
export const DEFAULT_PROXY_CONFIG_FIELDS: Readonly<Record<string, FieldValue>> = {
  configPath: './etc/istio/proxy',
  binaryPath: '/usr/local/bin/envoy',
  serviceCluster: 'istio-proxy',
  drainDuration: '45s',
  terminationDrainDuration: '5s',
  discoveryAddress: 'istiod.istio-system.svc:15012',
  proxyAdminPort: 15000,
  statusPort: 15020,
  controlPlaneAuthPolicy: 'MUTUAL_TLS',
  statNameLength: 189,
};

export function defaultsLayer(): ProxyConfigLayer {
  const layer = emptyLayer();
  for (const [name, value] of Object.entries(DEFAULT_PROXY_CONFIG_FIELDS)) {
    layer.fields.set(name, { value, source: { file: 'defaults', key: name } });
  }
  return layer;
}

/**
 * Field-wise merge: a field present in a later layer replaces the earlier one whole (lists and
 * messages included); proxyMetadata merges per key. Setting tracingServiceName clears serviceCluster
 * (they share a oneof) and vice versa.
 */
export function mergeLayers(layers: readonly ProxyConfigLayer[]): ProxyConfigLayer {
  const merged = emptyLayer();
  for (const layer of layers) {
    for (const [name, field] of layer.fields) {
      if (name === 'tracingServiceName') merged.fields.delete('serviceCluster');
      if (name === 'serviceCluster') merged.fields.delete('tracingServiceName');
      merged.fields.set(name, field);
    }
    for (const [key, value] of layer.metadata) merged.metadata.set(key, value);
  }
  return merged;
}

/** The checks of pilot-agent's ValidateMeshConfigProxyConfig, reported against each field's source. */
export function validateProxyConfig(merged: ProxyConfigLayer, issues: Issues): void {
  const field = (name: string): LayerField | undefined => merged.fields.get(name);
  const fail = (name: string, problem: string): void => issues.error(field(name)?.source ?? { key: name }, problem);
  const str = (name: string): string => {
    const v = field(name)?.value;
    return typeof v === 'string' ? v : '';
  };

  if (str('configPath') === '') fail('configPath', 'config path must be set');
  if (str('binaryPath') === '') fail('binaryPath', 'binary path must be set');
  if (!merged.fields.has('tracingServiceName') && str('serviceCluster') === '') fail('serviceCluster', 'service cluster must be specified');

  const drain = parseProtoDuration(str('drainDuration'));
  if (drain !== undefined && drain < 0) fail('drainDuration', `invalid drain duration: must be >= 0, got "${str('drainDuration')}"`);
  else if (drain !== undefined && drain % 1000 !== 0) fail('drainDuration', `drain time only supports durations to seconds precision, got "${str('drainDuration')}"`);
  for (const name of ['terminationDrainDuration', 'fileFlushInterval']) {
    const ms = parseProtoDuration(str(name));
    if (ms !== undefined && ms < 0) fail(name, `must be >= 0, got "${str(name)}"`);
  }

  const discovery = str('discoveryAddress');
  if (discovery === '') fail('discoveryAddress', 'discovery address must be set to the proxy discovery service');
  else {
    const problem = proxyAddressProblem(discovery);
    if (problem !== undefined) fail('discoveryAddress', `invalid discovery address: ${problem}`);
  }

  const adminPort = field('proxyAdminPort')?.value;
  if (typeof adminPort === 'number' && !isPort(adminPort)) fail('proxyAdminPort', `invalid proxy admin port: must be a port number (1-65535), got ${adminPort}`);
  // statusPort 0 turns the status server off (SPEC §2.4), so it is allowed here.
  const statusPort = field('statusPort')?.value;
  if (typeof statusPort === 'number' && !(statusPort === 0 || isPort(statusPort))) {
    fail('statusPort', `invalid status port: must be a port number (1-65535, or 0 for none), got ${statusPort}`);
  }
  if (str('controlPlaneAuthPolicy') === 'INHERIT') fail('controlPlaneAuthPolicy', 'invalid authentication policy: INHERIT is not allowed here (want MUTUAL_TLS or NONE)');
  const concurrency = field('concurrency')?.value;
  if (typeof concurrency === 'number' && concurrency < 0) fail('concurrency', `must be >= 0, got ${concurrency}`);

  const statsd = str('statsdUdpAddress');
  if (statsd !== '') {
    const problem = proxyAddressProblem(statsd);
    if (problem !== undefined) fail('statsdUdpAddress', `invalid statsd udp address "${statsd}": ${problem}`);
  }
  const tracing = field('tracing')?.value;
  if (tracing !== undefined && tracing !== null && typeof tracing === 'object' && !Array.isArray(tracing)) {
    for (const tracer of ['zipkin', 'datadog', 'lightstep'] as const) {
      const config = (tracing as Record<string, JsonValue>)[tracer];
      if (config === undefined || config === null || typeof config !== 'object' || Array.isArray(config)) continue;
      const address = typeof config['address'] === 'string' ? config['address'] : '';
      const problem = proxyAddressProblem(address.replace('$(HOST_IP)', '127.0.0.1'));
      if (problem !== undefined) fail('tracing', `invalid ${tracer} config: ${problem}`);
    }
  }
}

/** The effective ProxyConfig object (types.ts shape) from merged layers. */
export function toProxyConfig(merged: ProxyConfigLayer): ProxyConfig {
  const value = (name: string): FieldValue | undefined => merged.fields.get(name)?.value;
  const str = (name: string, fallback: string): string => {
    const v = value(name);
    return typeof v === 'string' ? v : fallback;
  };
  const num = (name: string, fallback: number): number => {
    const v = value(name);
    return typeof v === 'number' ? v : fallback;
  };
  const policy = str('controlPlaneAuthPolicy', 'MUTUAL_TLS');
  const proxyMetadata: Record<string, string> = {};
  for (const [key, { value: v }] of merged.metadata) proxyMetadata[key] = v;

  const config: ProxyConfig = {
    configPath: str('configPath', ''),
    binaryPath: str('binaryPath', ''),
    serviceCluster: str('serviceCluster', ''),
    drainDuration: str('drainDuration', '45s'),
    terminationDrainDuration: str('terminationDrainDuration', '5s'),
    discoveryAddress: str('discoveryAddress', ''),
    proxyAdminPort: num('proxyAdminPort', 15000),
    statusPort: num('statusPort', 15020),
    controlPlaneAuthPolicy: policy === 'NONE' ? 'NONE' : 'MUTUAL_TLS',
    proxyMetadata,
    other: {},
  };
  for (const [name, field] of merged.fields) {
    const spec = PROXY_FIELDS.get(name);
    if (spec === undefined) continue;
    if (!spec.modelled) {
      config.other[name] = field.value as JsonValue;
      continue;
    }
    switch (name) {
      case 'customConfigFile':
      case 'proxyBootstrapTemplatePath':
      case 'fileFlushInterval':
        config[name] = field.value as string;
        break;
      case 'concurrency':
      case 'fileFlushMinSizeKb':
        config[name] = field.value as number;
        break;
      case 'statsCompression':
        config.statsCompression = field.value as boolean;
        break;
      case 'extraStatTags':
      case 'caCertificatesPem':
        config[name] = field.value as string[];
        break;
      case 'runtimeValues':
        config.runtimeValues = field.value as Record<string, string>;
        break;
      case 'readinessProbe':
        config.readinessProbe = field.value as ReadinessProbe;
        break;
      case 'tracing':
      case 'proxyStatsMatcher':
      case 'privateKeyProvider':
        config[name] = field.value as JsonValue;
        break;
      default:
        break; // the required members set above
    }
  }
  return config;
}

/** The ProxyConfig as one proto-JSON object (`other` flattened), for `Effective config:` and metadata. */
export function proxyConfigJson(config: ProxyConfig): Record<string, JsonValue> {
  const { other, ...typed } = config;
  const out: Record<string, JsonValue> = {};
  for (const [key, value] of Object.entries(typed)) {
    if (value !== undefined) out[key] = value as JsonValue;
  }
  if (Object.keys(config.proxyMetadata).length === 0) delete out['proxyMetadata'];
  return { ...out, ...other };
}
