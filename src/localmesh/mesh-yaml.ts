/**
 * Istio configuration YAML → ServiceEntry and WorkloadGroup resources, read the way an operator
 * applies it with `kubectl apply -f`: several documents per file (`---`), optionally a `v1 List`,
 * YAML 1.1 scalars as sigs.k8s.io/yaml reads them, unknown fields rejected (kubectl's strict field
 * validation), and each resource checked with the rules of istiod's validating webhook
 * (`pkg/config/validation`) for the fields kept here.
 *
 * Errors carry file, line and a key naming the document and the field, e.g.
 * `scenario.yaml:14: document 2 (ServiceEntry istio-demo/nginx): spec.hosts: must be a non-empty list`.
 * Every error of every document is collected before one `ConfigErrors` is thrown.
 */
import { LineCounter, isMap, isScalar, isSeq, parseAllDocuments } from 'yaml';
import { ConfigError, ConfigErrors } from '../config/index.js';
import {
  NETWORKING_API_VERSIONS,
  SERVICE_ENTRY_LOCATIONS,
  SERVICE_ENTRY_RESOLUTIONS,
  type HttpHeader,
  type MeshResource,
  type ObjectMeta,
  type WorkloadGroupProbe,
  type ServiceEntry,
  type ServiceEntryResolution,
  type ServicePort,
  type WorkloadEntrySpec,
  type WorkloadGroup,
} from './mesh-resources.js';
import { parseIp, parsePrefix } from './prefix-allocator.js';

export interface ParseMeshYamlOptions {
  /** Named in messages (the path as the caller knows it); default `<yaml>`. */
  readonly fileName?: string;
  /** Namespace of resources without `metadata.namespace`, as kubectl's current namespace; default `default`. */
  readonly defaultNamespace?: string;
}

/** Core kinds an operator's manifest often carries beside Istio's: accepted, and ignored (namespaces exist implicitly). */
const IGNORED_CORE_KINDS = new Set(['Namespace', 'ServiceAccount']);

/** Fields the API server sets; a manifest exported with `kubectl get -o yaml` carries them, apply ignores them. */
const SERVER_METADATA_FIELDS = [
  'uid',
  'resourceVersion',
  'generation',
  'creationTimestamp',
  'managedFields',
  'selfLink',
  'ownerReferences',
  'finalizers',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
];

const PROTOCOLS = new Set(['tcp', 'udp', 'grpc', 'grpc-web', 'http', 'http_proxy', 'http2', 'https', 'tls', 'mongo', 'redis', 'mysql']);
const HTTP_PROTOCOLS = new Set(['http', 'http2', 'http_proxy', 'grpc', 'grpc-web']);
const TLS_PROTOCOLS = new Set(['https', 'tls']);
/** Protocols a DYNAMIC_DNS entry may serve (dynamic forward proxy). */
const DYNAMIC_DNS_PROTOCOLS = new Set(['http', 'tls', 'grpc', 'http2']);

const DNS1123_LABEL = /^[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?$/;
const WILDCARD_FIRST_LABEL = /^(?:\*|(?:\*|\*-)?[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?)$/;
const LOWER_DNS1123_LABEL = /^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?$/;
const LOWER_DNS1123_SUBDOMAIN = /^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_NAME = /^(?:[A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const HEADER_NAME = /^[-_A-Za-z0-9]+$/;

/**
 * Parses and validates every document of `text`. Throws `ConfigErrors` listing every problem found
 * (nothing is returned then); returns the resources in document order.
 */
export function parseMeshYaml(text: string, options: ParseMeshYamlOptions = {}): MeshResource[] {
  const file = options.fileName ?? '<yaml>';
  const defaultNamespace = options.defaultNamespace ?? 'default';
  const errors: ConfigError[] = [];
  const lineCounter = new LineCounter();
  const documents = parseAllDocuments(text, {
    lineCounter,
    version: '1.1',
    merge: true,
    prettyErrors: false,
    // Timestamps stay strings, as in the Go YAML → JSON conversion.
    customTags: (tags) => tags.filter((tag) => typeof tag === 'string' || tag.tag !== 'tag:yaml.org,2002:timestamp'),
  });
  const list = Array.isArray(documents) ? documents : [];
  const lineAt = (offset: number | undefined): number | undefined => (offset === undefined ? undefined : lineCounter.linePos(offset).line);
  for (const doc of list) {
    for (const e of doc.errors) errors.push(new ConfigError({ file, line: lineAt(e.pos[0]) }, `invalid YAML: ${firstLine(e.message)}`));
  }
  if (errors.length > 0) throw new ConfigErrors(errors);

  const resources: MeshResource[] = [];
  list.forEach((doc, index) => {
    const isEmpty = doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null);
    if (isEmpty) return;
    const lines = new Map<string, number>();
    collectLines(doc.contents, '', lines, lineAt);
    const value: unknown = doc.toJS({ maxAliasCount: 1000 });
    const documentLabel = `document ${index + 1}`;
    const lineOf = (path: string): number | undefined => lookupLine(lines, path);
    const reader = new FieldReader(errors, file, lineOf, documentLabel);
    const top = reader.mapping(value, '', undefined);
    if (!top) {
      reader.fail('', `expected a Kubernetes resource (a mapping with apiVersion and kind), got ${describe(value)}`);
      return;
    }
    if (top['kind'] === 'List' && top['apiVersion'] === 'v1') {
      const items = reader.list(top['items'], 'items');
      items.forEach((item, itemIndex) => {
        const base = `items[${itemIndex}]`;
        const itemReader = new FieldReader(errors, file, (path) => lineOf(joinPath(base, path)), `${documentLabel} item ${itemIndex + 1}`);
        const resource = readResource(itemReader, item, defaultNamespace);
        if (resource) resources.push(resource);
      });
      return;
    }
    const resource = readResource(reader, value, defaultNamespace);
    if (resource) resources.push(resource);
  });
  if (errors.length > 0) throw new ConfigErrors(errors);
  return resources;
}

function firstLine(message: string): string {
  return message.split('\n')[0] ?? message;
}

// ---- paths and lines ----

function joinPath(parent: string, key: string | number): string {
  if (typeof key === 'number') return `${parent}[${key}]`;
  if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(key)) return parent === '' ? key : `${parent}.${key}`;
  return `${parent}[${JSON.stringify(key)}]`;
}

function collectLines(node: unknown, path: string, lines: Map<string, number>, lineAt: (offset: number | undefined) => number | undefined): void {
  if (isMap(node) || isSeq(node) || isScalar(node)) {
    const line = lineAt(node.range?.[0]);
    if (line !== undefined && !lines.has(path)) lines.set(path, line);
  }
  if (isMap(node)) {
    for (const pair of node.items) {
      const key: unknown = isScalar(pair.key) ? pair.key.value : pair.key;
      if (typeof key !== 'string' && typeof key !== 'number' && typeof key !== 'boolean') continue;
      const childPath = joinPath(path, String(key));
      // A key's own line is where an operator looks for a bad value, even one written on the next lines.
      const keyLine = isScalar(pair.key) ? lineAt(pair.key.range?.[0]) : undefined;
      if (keyLine !== undefined && !lines.has(childPath)) lines.set(childPath, keyLine);
      collectLines(pair.value, childPath, lines, lineAt);
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, index) => collectLines(item, joinPath(path, index), lines, lineAt));
  }
}

/** The line of `path`, or of its nearest ancestor that has one (aliases and merged keys have none of their own). */
function lookupLine(lines: ReadonlyMap<string, number>, path: string): number | undefined {
  for (let current = path; ; ) {
    const line = lines.get(current);
    if (line !== undefined) return line;
    if (current === '') return undefined;
    const cut = Math.max(current.lastIndexOf('.'), current.lastIndexOf('['));
    current = cut < 0 ? '' : current.slice(0, cut);
  }
}

function describe(value: unknown): string {
  if (value === null || value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return `a string (${JSON.stringify(value)})`;
  if (typeof value === 'number' || typeof value === 'boolean') return `a ${typeof value} (${String(value)})`;
  return typeof value;
}

// ---- typed field access, reporting every problem ----

class FieldReader {
  constructor(
    private readonly errors: ConfigError[],
    private readonly file: string,
    private readonly lineOf: (path: string) => number | undefined,
    public label: string,
  ) {}

  fail(path: string, problem: string): void {
    const key = path === '' ? this.label : `${this.label}: ${path}`;
    this.errors.push(new ConfigError({ file: this.file, line: this.lineOf(path), key }, problem));
  }

  /** A mapping (undefined when absent); with `known`, any other field is reported as unknown. */
  mapping(value: unknown, path: string, known: readonly string[] | undefined, ignored: readonly string[] = []): Record<string, unknown> | undefined {
    if (value === null || value === undefined) return undefined;
    if (typeof value !== 'object' || Array.isArray(value)) {
      this.fail(path, `expected a mapping, got ${describe(value)}`);
      return undefined;
    }
    const record = value as Record<string, unknown>;
    if (known) {
      for (const key of Object.keys(record)) {
        if (!known.includes(key) && !ignored.includes(key)) {
          this.fail(joinPath(path, key), `unknown field (known fields: ${known.join(', ')})`);
        }
      }
    }
    return record;
  }

  list(value: unknown, path: string): unknown[] {
    if (value === null || value === undefined) return [];
    if (!Array.isArray(value)) {
      this.fail(path, `expected a list, got ${describe(value)}`);
      return [];
    }
    return value;
  }

  string(value: unknown, path: string): string | undefined {
    if (value === null || value === undefined) return undefined;
    if (typeof value === 'string') return value;
    const hint = typeof value === 'number' || typeof value === 'boolean' ? '; quote it' : '';
    this.fail(path, `expected a string, got ${describe(value)}${hint}`);
    return undefined;
  }

  integer(value: unknown, path: string, min: number, max: number): number | undefined {
    if (value === null || value === undefined) return undefined;
    if (typeof value !== 'number' || !Number.isInteger(value)) {
      this.fail(path, `expected an integer, got ${describe(value)}`);
      return undefined;
    }
    if (value < min || value > max) {
      this.fail(path, value < 0 && min === 0 ? `must be non-negative, got ${value}` : `must be between ${min} and ${max}, got ${value}`);
      return undefined;
    }
    return value;
  }

  stringList(value: unknown, path: string): string[] {
    const out: string[] = [];
    this.list(value, path).forEach((item, index) => {
      const text = this.string(item, joinPath(path, index));
      if (text !== undefined) out.push(text);
      else if (item === null || item === undefined) this.fail(joinPath(path, index), 'expected a string, got nothing');
    });
    return out;
  }

  stringMap(value: unknown, path: string): Record<string, string> {
    const out: Record<string, string> = {};
    const record = this.mapping(value, path, undefined);
    for (const [key, item] of Object.entries(record ?? {})) {
      const text = this.string(item, joinPath(path, key));
      if (text !== undefined) out[key] = text;
      else if (item === null) out[key] = '';
    }
    return out;
  }

  portMap(value: unknown, path: string): Record<string, number> {
    const out: Record<string, number> = {};
    const record = this.mapping(value, path, undefined);
    for (const [key, item] of Object.entries(record ?? {})) {
      const port = this.integer(item, joinPath(path, key), 1, 65535);
      if (port !== undefined) out[key] = port;
      if (!DNS1123_LABEL.test(key) || key.length > 63) this.fail(joinPath(path, key), 'port name must be a DNS-1123 label (letters, digits and "-")');
    }
    return out;
  }

  enumValue<T extends string>(value: unknown, path: string, allowed: readonly T[], fallback: T): T {
    const text = this.string(value, path);
    if (text === undefined) return fallback;
    const match = allowed.find((candidate) => candidate === text);
    if (match === undefined) {
      this.fail(path, `expected one of ${allowed.join(', ')}, got ${JSON.stringify(text)}`);
      return fallback;
    }
    return match;
  }
}

// ---- resources ----

function readResource(reader: FieldReader, value: unknown, defaultNamespace: string): MeshResource | undefined {
  const top = reader.mapping(value, '', undefined);
  if (!top) {
    reader.fail('', `expected a Kubernetes resource (a mapping with apiVersion and kind), got ${describe(value)}`);
    return undefined;
  }
  const apiVersion = reader.string(top['apiVersion'], 'apiVersion');
  const kind = reader.string(top['kind'], 'kind');
  if (!kind) {
    reader.fail('kind', 'required');
    return undefined;
  }
  if (apiVersion === 'v1' && IGNORED_CORE_KINDS.has(kind)) return undefined;
  if (kind !== 'ServiceEntry' && kind !== 'WorkloadGroup') {
    reader.fail(
      'kind',
      `${JSON.stringify(kind)} is not served by the local control plane (it serves ServiceEntry and WorkloadGroup, and ignores v1 Namespace and ServiceAccount)`,
    );
    return undefined;
  }
  const rawMetadata = top['metadata'];
  const metadataValue =
    typeof rawMetadata === 'object' && rawMetadata !== null && !Array.isArray(rawMetadata) ? (rawMetadata as Record<string, unknown>) : undefined;
  const name = typeof metadataValue?.['name'] === 'string' ? metadataValue['name'] : undefined;
  const namespaceValue = metadataValue?.['namespace'];
  const namespace = typeof namespaceValue === 'string' && namespaceValue !== '' ? namespaceValue : defaultNamespace;
  reader.label = `${reader.label} (${kind} ${namespace}/${name ?? '<unnamed>'})`;
  reader.mapping(top, '', ['apiVersion', 'kind', 'metadata', 'spec'], ['status']);
  if (!apiVersion) reader.fail('apiVersion', `required (${NETWORKING_API_VERSIONS[0]})`);
  else if (!(NETWORKING_API_VERSIONS as readonly string[]).includes(apiVersion)) {
    reader.fail('apiVersion', `expected one of ${NETWORKING_API_VERSIONS.join(', ')}, got ${JSON.stringify(apiVersion)}`);
  }
  const metadata = readObjectMeta(reader, top['metadata'], defaultNamespace);
  if (top['spec'] === undefined || top['spec'] === null) {
    reader.fail('spec', 'required');
    return undefined;
  }
  if (!metadata) return undefined;
  const version = apiVersion ?? NETWORKING_API_VERSIONS[0];
  return kind === 'ServiceEntry' ? readServiceEntry(reader, top['spec'], version, metadata) : readWorkloadGroup(reader, top['spec'], version, metadata);
}

function readObjectMeta(reader: FieldReader, value: unknown, defaultNamespace: string): ObjectMeta | undefined {
  const meta = reader.mapping(value, 'metadata', ['name', 'namespace', 'labels', 'annotations'], [...SERVER_METADATA_FIELDS, 'generateName']);
  if (!meta) {
    reader.fail('metadata', 'required (with a name)');
    return undefined;
  }
  const name = reader.string(meta['name'], 'metadata.name');
  if (meta['generateName'] !== undefined) reader.fail('metadata.generateName', 'not supported by apply; give metadata.name');
  if (name === undefined || name === '') {
    reader.fail('metadata.name', 'required');
  } else if (name.length > 253 || !LOWER_DNS1123_SUBDOMAIN.test(name)) {
    reader.fail('metadata.name', `must be a lower-case DNS-1123 subdomain, got ${JSON.stringify(name)}`);
  }
  const namespace = reader.string(meta['namespace'], 'metadata.namespace') || defaultNamespace;
  if (namespace.length > 63 || !LOWER_DNS1123_LABEL.test(namespace)) {
    reader.fail('metadata.namespace', `must be a lower-case DNS-1123 label, got ${JSON.stringify(namespace)}`);
  }
  const labels = reader.stringMap(meta['labels'], 'metadata.labels');
  validateLabels(reader, labels, 'metadata.labels');
  const annotations = reader.stringMap(meta['annotations'], 'metadata.annotations');
  if (name === undefined || name === '') return undefined;
  return { name, namespace, labels, annotations };
}

/** Kubernetes label syntax: `[prefix/]name`, name and value up to 63 characters. */
function validateLabels(reader: FieldReader, labels: Record<string, string>, path: string): void {
  for (const [key, value] of Object.entries(labels)) {
    const at = joinPath(path, key);
    const slash = key.indexOf('/');
    const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
    const name = slash >= 0 ? key.slice(slash + 1) : key;
    if (prefix !== undefined && (prefix.length > 253 || !LOWER_DNS1123_SUBDOMAIN.test(prefix))) {
      reader.fail(at, `invalid label key: prefix ${JSON.stringify(prefix)} must be a lower-case DNS-1123 subdomain`);
    }
    if (name.length > 63 || !LABEL_NAME.test(name)) {
      reader.fail(at, 'invalid label key: name must be at most 63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit');
    }
    if (value !== '' && (value.length > 63 || !LABEL_NAME.test(value))) {
      reader.fail(at, `invalid label value ${JSON.stringify(value)}: at most 63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit`);
    }
  }
}

function protocolOf(port: ServicePort): string {
  return port.protocol.toLowerCase();
}

/** Istio's `ValidateWildcardDomain`: the first label may be a wildcard, the others are DNS-1123 labels. */
function hostProblem(host: string): string | undefined {
  if (host === '') return 'empty host name';
  if (host.length > 255) return 'host name too long (max 255)';
  const dot = host.indexOf('.');
  const first = dot < 0 ? host : host.slice(0, dot);
  if (!WILDCARD_FIRST_LABEL.test(first)) return `label ${JSON.stringify(first)} is invalid`;
  return dot < 0 ? undefined : labelsProblem(host.slice(dot + 1));
}

/** Istio's `ValidateDNS1123Labels`: a trailing dot is allowed, an all-numeric top-level domain is not. */
function labelsProblem(domain: string): string | undefined {
  const parts = domain.split('.');
  const top = parts[parts.length - 1] ?? '';
  if (/^[0-9]+$/.test(top)) return `top level domain ${JSON.stringify(top)} cannot be all-numeric`;
  for (let i = 0; i < parts.length; i++) {
    const label = parts[i] ?? '';
    if (i === parts.length - 1 && label === '') return undefined;
    if (label.length > 63 || !DNS1123_LABEL.test(label)) return `label ${JSON.stringify(label)} is invalid`;
  }
  return undefined;
}

function isFqdn(host: string): boolean {
  return host !== '' && host.length <= 255 && labelsProblem(host) === undefined;
}

function readServicePorts(reader: FieldReader, value: unknown): ServicePort[] {
  const ports: ServicePort[] = [];
  const names = new Set<string>();
  const numbers = new Set<number>();
  reader.list(value, 'spec.ports').forEach((item, index) => {
    const path = `spec.ports[${index}]`;
    const port = reader.mapping(item, path, ['number', 'protocol', 'name', 'targetPort']);
    if (!port) {
      reader.fail(path, 'expected a port (number, name, protocol)');
      return;
    }
    const number = reader.integer(port['number'], `${path}.number`, 1, 65535);
    if (port['number'] === undefined || port['number'] === null) reader.fail(`${path}.number`, 'required');
    const name = reader.string(port['name'], `${path}.name`) ?? '';
    if (name === '') reader.fail(`${path}.name`, 'required');
    else if (name.length > 63 || !DNS1123_LABEL.test(name)) reader.fail(`${path}.name`, `invalid port name ${JSON.stringify(name)}: must be a DNS-1123 label`);
    const protocol = reader.string(port['protocol'], `${path}.protocol`) ?? '';
    if (protocol !== '' && !PROTOCOLS.has(protocol.toLowerCase())) reader.fail(`${path}.protocol`, `unsupported protocol ${JSON.stringify(protocol)}`);
    const targetPort = port['targetPort'] === 0 ? 0 : reader.integer(port['targetPort'], `${path}.targetPort`, 1, 65535) ?? 0;
    if (name !== '' && names.has(name)) reader.fail(`${path}.name`, `port name ${JSON.stringify(name)} already defined`);
    if (number !== undefined && numbers.has(number)) reader.fail(`${path}.number`, `port ${number} already defined`);
    names.add(name);
    if (number !== undefined) numbers.add(number);
    if (number !== undefined) ports.push({ number, protocol, name, targetPort });
  });
  return ports;
}

function readWorkloadEntry(reader: FieldReader, value: unknown, path: string): WorkloadEntrySpec {
  const entry = reader.mapping(value, path, ['address', 'ports', 'labels', 'network', 'locality', 'weight', 'serviceAccount']) ?? {};
  const labels = reader.stringMap(entry['labels'], `${path}.labels`);
  validateLabels(reader, labels, `${path}.labels`);
  return {
    address: reader.string(entry['address'], `${path}.address`) ?? '',
    ports: reader.portMap(entry['ports'], `${path}.ports`),
    labels,
    network: reader.string(entry['network'], `${path}.network`) ?? '',
    locality: reader.string(entry['locality'], `${path}.locality`) ?? '',
    weight: reader.integer(entry['weight'], `${path}.weight`, 0, 0xffffffff) ?? 0,
    serviceAccount: reader.string(entry['serviceAccount'], `${path}.serviceAccount`) ?? '',
  };
}

function readServiceEntry(reader: FieldReader, value: unknown, apiVersion: string, metadata: ObjectMeta): ServiceEntry | undefined {
  const spec = reader.mapping(value, 'spec', [
    'hosts',
    'addresses',
    'ports',
    'location',
    'resolution',
    'endpoints',
    'workloadSelector',
    'exportTo',
    'subjectAltNames',
  ]);
  if (!spec) return undefined;
  const hosts = reader.stringList(spec['hosts'], 'spec.hosts');
  const addresses = reader.stringList(spec['addresses'], 'spec.addresses');
  const ports = readServicePorts(reader, spec['ports']);
  const location = reader.enumValue(spec['location'], 'spec.location', SERVICE_ENTRY_LOCATIONS, 'MESH_EXTERNAL');
  const resolution: ServiceEntryResolution = reader.enumValue(spec['resolution'], 'spec.resolution', SERVICE_ENTRY_RESOLUTIONS, 'NONE');
  const endpoints = reader.list(spec['endpoints'], 'spec.endpoints').map((item, index) => readWorkloadEntry(reader, item, `spec.endpoints[${index}]`));
  const selectorValue = reader.mapping(spec['workloadSelector'], 'spec.workloadSelector', ['labels']);
  const workloadSelector = selectorValue ? { labels: reader.stringMap(selectorValue['labels'], 'spec.workloadSelector.labels') } : undefined;
  if (workloadSelector) validateLabels(reader, workloadSelector.labels, 'spec.workloadSelector.labels');
  const exportTo = reader.stringList(spec['exportTo'], 'spec.exportTo');
  const subjectAltNames = reader.stringList(spec['subjectAltNames'], 'spec.subjectAltNames');

  // A value that is not a list at all has been reported already.
  const isHostsList = spec['hosts'] === undefined || spec['hosts'] === null || Array.isArray(spec['hosts']);
  if (hosts.length === 0 && isHostsList) reader.fail('spec.hosts', 'must be a non-empty list');
  hosts.forEach((host, index) => {
    if (host === '*') reader.fail(`spec.hosts[${index}]`, 'the full wildcard "*" is not allowed');
    else {
      const problem = hostProblem(host);
      if (problem) reader.fail(`spec.hosts[${index}]`, `invalid host ${JSON.stringify(host)}: ${problem}`);
    }
  });
  let hasCidr = false;
  addresses.forEach((address, index) => {
    if (address.includes('/')) {
      hasCidr = true;
      if (!parsePrefix(address)) reader.fail(`spec.addresses[${index}]`, `${JSON.stringify(address)} is not a valid CIDR block`);
    } else if (!parseIp(address)) {
      reader.fail(`spec.addresses[${index}]`, `${JSON.stringify(address)} is not a valid IP address`);
    }
  });
  if (hasCidr && resolution !== 'NONE' && resolution !== 'STATIC') {
    reader.fail('spec.addresses', 'CIDR addresses are allowed only for NONE/STATIC resolution types');
  }
  if (workloadSelector && endpoints.length > 0) reader.fail('spec.workloadSelector', 'only one of workloadSelector or endpoints is allowed');
  const portNames = new Set(ports.map((port) => port.name));
  switch (resolution) {
    case 'NONE':
      if (endpoints.length > 0) reader.fail('spec.endpoints', 'no endpoints should be provided for resolution type NONE');
      break;
    case 'STATIC':
      endpoints.forEach((endpoint, index) => validateStaticEndpoint(reader, endpoint, `spec.endpoints[${index}]`, portNames));
      break;
    case 'DNS':
    case 'DNS_ROUND_ROBIN': {
      if (endpoints.length === 0) {
        const bad = hosts.findIndex((host) => !isFqdn(host));
        if (bad >= 0) reader.fail(`spec.hosts[${bad}]`, `hosts must be FQDN if no endpoints are provided for resolution mode ${resolution}`);
      }
      if (resolution === 'DNS_ROUND_ROBIN' && endpoints.length > 1) {
        reader.fail('spec.endpoints', 'there must only be 0 or 1 endpoint for resolution mode DNS_ROUND_ROBIN');
      }
      endpoints.forEach((endpoint, index) => {
        if (!parseIp(endpoint.address) && !isFqdn(endpoint.address)) {
          reader.fail(`spec.endpoints[${index}].address`, `${JSON.stringify(endpoint.address)} is not a valid FQDN or an IP address`);
        }
        checkEndpointPorts(reader, endpoint, `spec.endpoints[${index}]`, portNames);
      });
      break;
    }
    case 'DYNAMIC_DNS':
      hosts.forEach((host, index) => {
        if (!host.startsWith('*')) reader.fail(`spec.hosts[${index}]`, 'host must be wildcarded for resolution mode DYNAMIC_DNS');
      });
      if (addresses.length > 0) reader.fail('spec.addresses', 'addresses cannot be set for resolution type DYNAMIC_DNS');
      if (endpoints.length > 0) reader.fail('spec.endpoints', 'endpoints cannot be set for resolution type DYNAMIC_DNS');
      ports.forEach((port, index) => {
        if (!DYNAMIC_DNS_PROTOCOLS.has(protocolOf(port))) {
          reader.fail(`spec.ports[${index}].protocol`, 'only HTTP, TLS, GRPC and HTTP2 are supported for resolution type DYNAMIC_DNS');
        }
      });
      break;
  }
  // Plain TCP gives a proxy no way to tell several hosts apart, unless the hosts are ignored (NONE).
  if (resolution !== 'NONE' && hosts.length > 1) {
    const index = ports.findIndex((port) => !HTTP_PROTOCOLS.has(protocolOf(port)) && !TLS_PROTOCOLS.has(protocolOf(port)));
    if (index >= 0) reader.fail(`spec.ports[${index}]`, 'multiple hosts provided with non-HTTP, non-TLS ports');
  }
  validateExportTo(reader, exportTo, metadata.namespace);
  return {
    apiVersion,
    kind: 'ServiceEntry',
    metadata,
    spec: { hosts, addresses, ports, location, resolution, endpoints, ...(workloadSelector ? { workloadSelector } : {}), exportTo, subjectAltNames },
    status: { addresses: [] },
  };
}

function validateStaticEndpoint(reader: FieldReader, endpoint: WorkloadEntrySpec, path: string, portNames: ReadonlySet<string>): void {
  if (endpoint.address === '') {
    if (endpoint.network === '') reader.fail(`${path}.address`, 'required');
  } else if (endpoint.address.startsWith('unix://')) {
    if (Object.keys(endpoint.ports).length > 0) reader.fail(`${path}.ports`, `unix endpoint ${endpoint.address} must not include ports`);
  } else if (!parseIp(endpoint.address)) {
    reader.fail(`${path}.address`, `endpoint address ${JSON.stringify(endpoint.address)} is not a valid IP address`);
  }
  checkEndpointPorts(reader, endpoint, path, portNames);
}

function checkEndpointPorts(reader: FieldReader, endpoint: WorkloadEntrySpec, path: string, portNames: ReadonlySet<string>): void {
  for (const name of Object.keys(endpoint.ports)) {
    if (!portNames.has(name)) reader.fail(joinPath(`${path}.ports`, name), `endpoint port ${JSON.stringify(name)} is not defined by the service entry`);
  }
}

function validateExportTo(reader: FieldReader, exportTo: readonly string[], namespace: string): void {
  const seen = new Set<string>();
  exportTo.forEach((entry, index) => {
    const path = `spec.exportTo[${index}]`;
    const key = entry === '.' ? namespace : entry;
    if (seen.has(key)) {
      reader.fail(path, key !== entry ? `duplicate entries in exportTo: . and current namespace ${namespace}` : `duplicate entry ${JSON.stringify(entry)}`);
      return;
    }
    seen.add(key);
    if (entry === '*' || entry === '.' || entry === '~') return;
    if (entry.length > 63 || !LOWER_DNS1123_LABEL.test(entry)) {
      reader.fail(path, `expected ".", "*", "~" or a namespace name, got ${JSON.stringify(entry)}`);
    }
  });
}

function readWorkloadGroup(reader: FieldReader, value: unknown, apiVersion: string, metadata: ObjectMeta): WorkloadGroup | undefined {
  const spec = reader.mapping(value, 'spec', ['metadata', 'template', 'probe']);
  if (!spec) return undefined;
  const groupMeta = reader.mapping(spec['metadata'], 'spec.metadata', ['labels', 'annotations']) ?? {};
  const labels = reader.stringMap(groupMeta['labels'], 'spec.metadata.labels');
  validateLabels(reader, labels, 'spec.metadata.labels');
  const annotations = reader.stringMap(groupMeta['annotations'], 'spec.metadata.annotations');
  if (spec['template'] === undefined || spec['template'] === null) reader.fail('spec.template', 'required');
  // The template is not validated as a WorkloadEntry: its address and such are filled in per workload.
  const template = readWorkloadEntry(reader, spec['template'], 'spec.template');
  const probe = readProbe(reader, spec['probe']);
  return {
    apiVersion,
    kind: 'WorkloadGroup',
    metadata,
    spec: { metadata: { labels, annotations }, template, ...(probe ? { probe } : {}) },
  };
}

function readProbe(reader: FieldReader, value: unknown): WorkloadGroupProbe | undefined {
  const probe = reader.mapping(value, 'spec.probe', [
    'initialDelaySeconds',
    'timeoutSeconds',
    'periodSeconds',
    'successThreshold',
    'failureThreshold',
    'httpGet',
    'tcpSocket',
    'exec',
    'grpc',
  ]);
  if (!probe) return undefined;
  const count = (field: string): number => reader.integer(probe[field], `spec.probe.${field}`, 0, 2 ** 31 - 1) ?? 0;
  const base = {
    initialDelaySeconds: count('initialDelaySeconds'),
    timeoutSeconds: count('timeoutSeconds'),
    periodSeconds: count('periodSeconds'),
    successThreshold: count('successThreshold'),
    failureThreshold: count('failureThreshold'),
  };
  const methods = ['httpGet', 'tcpSocket', 'exec', 'grpc'].filter((method) => probe[method] !== undefined && probe[method] !== null);
  if (methods.length !== 1) {
    reader.fail('spec.probe', methods.length === 0 ? 'needs one of httpGet, tcpSocket or exec' : `only one of ${methods.join(', ')} may be set`);
    return undefined;
  }
  const port = (field: Record<string, unknown>, path: string): number => {
    if (field['port'] === undefined || field['port'] === null) reader.fail(`${path}.port`, 'required');
    return reader.integer(field['port'], `${path}.port`, 1, 65535) ?? 0;
  };
  const method = methods[0];
  if (method === 'httpGet') {
    const http = reader.mapping(probe['httpGet'], 'spec.probe.httpGet', ['path', 'port', 'host', 'scheme', 'httpHeaders']) ?? {};
    const scheme = reader.string(http['scheme'], 'spec.probe.httpGet.scheme') ?? '';
    // istiod's validation compares with Kubernetes' URIScheme constants, which are upper case.
    if (scheme !== '' && scheme !== 'HTTP' && scheme !== 'HTTPS') {
      reader.fail('spec.probe.httpGet.scheme', `must be "HTTP" or "HTTPS", got ${JSON.stringify(scheme)}`);
    }
    const httpHeaders: HttpHeader[] = [];
    reader.list(http['httpHeaders'], 'spec.probe.httpGet.httpHeaders').forEach((item, index) => {
      const path = `spec.probe.httpGet.httpHeaders[${index}]`;
      const header = reader.mapping(item, path, ['name', 'value']) ?? {};
      const name = reader.string(header['name'], `${path}.name`) ?? '';
      if (!HEADER_NAME.test(name)) {
        reader.fail(`${path}.name`, name === '' ? 'header name cannot be empty' : `${JSON.stringify(name)} is not a valid header name`);
      }
      httpHeaders.push({ name, value: reader.string(header['value'], `${path}.value`) ?? '' });
    });
    return {
      ...base,
      httpGet: {
        path: reader.string(http['path'], 'spec.probe.httpGet.path') ?? '',
        port: port(http, 'spec.probe.httpGet'),
        host: reader.string(http['host'], 'spec.probe.httpGet.host') ?? '',
        scheme,
        httpHeaders,
      },
    };
  }
  if (method === 'tcpSocket') {
    const tcp = reader.mapping(probe['tcpSocket'], 'spec.probe.tcpSocket', ['host', 'port']) ?? {};
    return { ...base, tcpSocket: { host: reader.string(tcp['host'], 'spec.probe.tcpSocket.host') ?? '', port: port(tcp, 'spec.probe.tcpSocket') } };
  }
  if (method === 'exec') {
    const exec = reader.mapping(probe['exec'], 'spec.probe.exec', ['command']) ?? {};
    const command = reader.stringList(exec['command'], 'spec.probe.exec.command');
    if (command.length === 0) reader.fail('spec.probe.exec.command', 'required');
    return { ...base, exec: { command } };
  }
  // The API has a grpc method, but istiod's WorkloadGroup validation knows only the three above and rejects it.
  reader.fail('spec.probe.grpc', "rejected by istiod's WorkloadGroup validation, which accepts only httpGet, tcpSocket and exec probes");
  return undefined;
}
