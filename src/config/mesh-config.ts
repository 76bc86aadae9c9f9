/**
 * The effective ProxyConfig, built as pilot-agent's ConstructProxyConfig does: built-in defaults →
 * `defaultConfig` of the mesh config file (`--meshConfig`) → the PROXY_CONFIG environment variable;
 * then ISTIO_CPU_LIMIT / `--concurrency` / `--serviceCluster`, and validation.
 *
 * The whole mesh file is checked (YAML syntax anywhere, types of the MeshConfig fields it sets), but
 * only `defaultConfig` is used. Every problem is reported with the file and line.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import type { ConfigErrorSource } from './errors.js';
import { isPort, parseProtoDuration } from './go-values.js';
import type { Issues } from './issues.js';
import {
  defaultsLayer,
  emptyLayer,
  mergeLayers,
  parseProxyConfigLayer,
  protoJsonName,
  proxyConfigJson,
  toProxyConfig,
  validateProxyConfig,
  type ProxyConfigLayer,
} from './proxy-config.js';
import type { ProxyConfig } from './types.js';
import { describeNode, parseYamlTree, type YNode } from './yaml-tree.js';

export const DEFAULT_MESH_CONFIG_FILE = './etc/istio/config/mesh';

type MeshKind = 'string' | 'bool' | 'int32' | 'duration' | 'enum' | 'message' | 'list' | 'proxyConfig';

/** MeshConfig's top-level fields at istio/api b8f8791 (proto names), with the JSON type each takes. */
const MESH_CONFIG_FIELDS: Readonly<Record<string, MeshKind>> = {
  proxy_listen_port: 'int32',
  proxy_inbound_listen_port: 'int32',
  proxy_http_port: 'int32',
  connect_timeout: 'duration',
  hbone_idle_timeout: 'duration',
  protocol_detection_timeout: 'duration',
  tcp_keepalive: 'message',
  ingress_class: 'string',
  ingress_service: 'string',
  ingress_controller_mode: 'enum',
  ingress_selector: 'string',
  enable_tracing: 'bool',
  access_log_file: 'string',
  access_log_format: 'string',
  access_log_encoding: 'enum',
  enable_envoy_access_log_service: 'bool',
  disable_envoy_listener_log: 'bool',
  default_config: 'proxyConfig',
  outbound_traffic_policy: 'message',
  inbound_traffic_policy: 'message',
  config_sources: 'list',
  enable_auto_mtls: 'bool',
  trust_domain: 'string',
  trust_domain_aliases: 'list',
  ca_certificates: 'list',
  default_service_export_to: 'list',
  default_virtual_service_export_to: 'list',
  default_destination_rule_export_to: 'list',
  root_namespace: 'string',
  locality_lb_setting: 'message',
  zone_aware_lb_setting: 'message',
  dns_refresh_rate: 'duration',
  h2_upgrade_policy: 'enum',
  inbound_cluster_stat_name: 'string',
  outbound_cluster_stat_name: 'string',
  certificates: 'list',
  service_settings: 'list',
  service_scope_configs: 'list',
  enable_prometheus_merge: 'bool',
  verify_certificate_at_client: 'bool',
  ca: 'message',
  extension_providers: 'list',
  default_providers: 'message',
  discovery_selectors: 'list',
  path_normalization: 'message',
  default_http_retry_policy: 'message',
  mesh_mTLS: 'message',
  tls_defaults: 'message',
  default_traffic_policy: 'message',
  service_entry_visibility: 'message',
};

const MESH_FIELDS = new Map<string, { name: string; kind: MeshKind }>();
for (const [protoName, kind] of Object.entries(MESH_CONFIG_FIELDS)) {
  const entry = { name: protoJsonName(protoName), kind };
  MESH_FIELDS.set(protoName, entry);
  MESH_FIELDS.set(entry.name, entry);
}

export interface ProxyConfigInputs {
  readonly cwd: string;
  /** `--meshConfig` as given (relative paths resolve against cwd). */
  readonly meshConfigFile: string;
  /** PROXY_CONFIG from the merged environment ('' or undefined = not set). */
  readonly proxyConfigEnv: string | undefined;
  /** `--serviceCluster`, used when the ProxyConfig's is empty. */
  readonly serviceClusterFlag: string;
  /** `--concurrency` (0 = not set). */
  readonly concurrencyFlag: number;
  /** ISTIO_CPU_LIMIT (0 = not set). */
  readonly cpuLimit: number;
  readonly issues: Issues;
}

export interface ProxyConfigResult {
  readonly proxyConfig: ProxyConfig;
  /** Where each field's effective value was set (proto-JSON name → source). */
  readonly fieldSources: ReadonlyMap<string, ConfigErrorSource>;
  /** Where each proxyMetadata key was set. */
  readonly metadataSources: ReadonlyMap<string, ConfigErrorSource>;
  /** `Apply mesh config from file ...`, `Apply proxy config from env ...`, `Effective config: ...`. */
  readonly notices: string[];
}

/** The name a file goes by in messages: `mesh` for the default path, else the path as given. */
export function meshFileDisplayName(meshConfigFile: string): string {
  return path.posix.normalize(meshConfigFile) === path.posix.normalize(DEFAULT_MESH_CONFIG_FILE) ? 'mesh' : meshConfigFile;
}

export function loadProxyConfig(inputs: ProxyConfigInputs): ProxyConfigResult {
  const { issues } = inputs;
  const notices: string[] = [];
  const layers: ProxyConfigLayer[] = [defaultsLayer()];

  const meshText = readMeshFile(inputs);
  if (meshText !== undefined && meshText !== '') {
    notices.push(`Apply mesh config from file ${meshText}`);
    layers.push(parseMeshConfig(meshText, meshFileDisplayName(inputs.meshConfigFile), issues));
  }

  const envText = inputs.proxyConfigEnv;
  if (envText !== undefined && envText !== '') {
    notices.push(`Apply proxy config from env ${envText}`);
    layers.push(parseProxyConfigText(envText, 'PROXY_CONFIG', issues));
  }

  const flagLayer = emptyLayer();
  const merged = mergeLayers(layers);
  if (!merged.fields.has('concurrency') && inputs.cpuLimit !== 0) {
    notices.push(`cpu limit detected as ${inputs.cpuLimit}, setting concurrency`);
    flagLayer.fields.set('concurrency', { value: inputs.cpuLimit, source: { file: 'environment', key: 'ISTIO_CPU_LIMIT' } });
  }
  if (inputs.concurrencyFlag !== 0) {
    issues.warn({}, `legacy --concurrency=${inputs.concurrencyFlag} flag detected; prefer to use ProxyConfig`);
    flagLayer.fields.set('concurrency', { value: inputs.concurrencyFlag, source: { key: '--concurrency' } });
  }
  const cluster = merged.fields.get('serviceCluster')?.value;
  if (!merged.fields.has('tracingServiceName') && (cluster === undefined || cluster === '')) {
    flagLayer.fields.set('serviceCluster', { value: inputs.serviceClusterFlag, source: { key: '--serviceCluster' } });
  }
  const effective = mergeLayers([merged, flagLayer]);
  validateProxyConfig(effective, issues);

  const proxyConfig = toProxyConfig(effective);
  notices.push(`Effective config: ${YAML.stringify(proxyConfigJson(proxyConfig), { sortMapEntries: true }).trimEnd()}`);
  const fieldSources = new Map([...effective.fields].map(([name, field]) => [name, field.source] as const));
  const metadataSources = new Map([...effective.metadata].map(([key, field]) => [key, field.source] as const));
  return { proxyConfig, fieldSources, metadataSources, notices };
}

/** The mesh file's text; a missing file is the same as an empty one (defaults apply). */
function readMeshFile(inputs: ProxyConfigInputs): string | undefined {
  const absolute = path.resolve(inputs.cwd, inputs.meshConfigFile);
  try {
    return readFileSync(absolute, 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    inputs.issues.error({ file: meshFileDisplayName(inputs.meshConfigFile) }, `cannot read mesh config file ${absolute}: ${errnoText(err)}`);
    return undefined;
  }
}

/** Validates a MeshConfig YAML document and returns its `defaultConfig` as a layer. */
export function parseMeshConfig(text: string, file: string, issues: Issues): ProxyConfigLayer {
  const root = parseYaml(text, file, issues);
  if (root === undefined) return emptyLayer();
  if (root.kind === 'scalar' && root.value === null) return emptyLayer();
  if (root.kind !== 'map') {
    issues.error({ file, line: root.line }, `expected a MeshConfig mapping, got ${describeNode(root)}`);
    return emptyLayer();
  }
  let layer = emptyLayer();
  for (const entry of root.entries) {
    const field = MESH_FIELDS.get(entry.key);
    if (field === undefined) {
      issues.warn({ file, line: entry.line, key: entry.key }, 'unknown MeshConfig field, ignored');
      continue;
    }
    if (field.kind === 'proxyConfig') {
      layer = parseProxyConfigLayer(entry.value, { file, prefix: entry.key, issues });
      continue;
    }
    checkMeshField(field.name, field.kind, entry.value, { file, line: entry.value.line, key: entry.key }, issues);
  }
  return layer;
}

function checkMeshField(name: string, kind: MeshKind, node: YNode, source: ConfigErrorSource, issues: Issues): void {
  if (node.kind === 'scalar' && node.value === null) return;
  const scalar = node.kind === 'scalar' ? node.value : undefined;
  let expected: string | undefined;
  switch (kind) {
    case 'string':
      if (typeof scalar !== 'string') expected = 'a string';
      break;
    case 'bool':
      if (typeof scalar !== 'boolean') expected = 'true or false';
      break;
    case 'int32':
      if (!(typeof scalar === 'number' && Number.isInteger(scalar)) && !(typeof scalar === 'string' && /^-?\d+$/.test(scalar))) {
        expected = 'an integer';
      } else if (name === 'proxyListenPort' && !isPort(Number(scalar))) {
        issues.error(source, `invalid proxy listen port: must be a port number (1-65535), got ${String(scalar)}`);
      }
      break;
    case 'duration':
      if (typeof scalar !== 'string' || parseProtoDuration(scalar) === undefined) expected = 'a duration in seconds such as "10s"';
      break;
    case 'enum':
      if (typeof scalar !== 'string' && typeof scalar !== 'number') expected = 'an enum name';
      break;
    case 'message':
      if (node.kind !== 'map') expected = 'a mapping';
      break;
    case 'list':
      if (node.kind !== 'seq') expected = 'a list';
      break;
    case 'proxyConfig':
      break;
  }
  if (expected !== undefined) issues.error(source, `expected ${expected}, got ${describeNode(node)}`);
}

/** A ProxyConfig YAML document (PROXY_CONFIG); lines are counted within the value. */
export function parseProxyConfigText(text: string, file: string, issues: Issues): ProxyConfigLayer {
  const root = parseYaml(text, file, issues);
  if (root === undefined) return emptyLayer();
  return parseProxyConfigLayer(root, { file, prefix: '', issues });
}

function parseYaml(text: string, file: string, issues: Issues): YNode | undefined {
  const result = parseYamlTree(text);
  for (const w of result.warnings) issues.warn(lineSource(file, w.line), w.message);
  for (const e of result.errors) issues.error(lineSource(file, e.line), `invalid YAML: ${e.message}`);
  return result.errors.length > 0 ? undefined : result.root;
}

function lineSource(file: string, line: number | undefined): ConfigErrorSource {
  return line === undefined ? { file } : { file, line };
}

export function isErrno(err: unknown, code: string): boolean {
  return err instanceof Error && (err as NodeJS.ErrnoException).code === code;
}

export function errnoText(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EACCES') return 'permission denied';
  if (code === 'EISDIR') return 'is a directory';
  return err.message;
}
