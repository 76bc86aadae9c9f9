/**
 * TypeScript shapes of the protobuf messages the agent reads and writes, with proto field names
 * (keepCase). Decoding fills scalar defaults, so strings are '' and repeated fields [] when absent.
 */

export interface Any {
  type_url: string;
  value: Buffer;
}

/**
 * google.protobuf.Value, as protobufjs represents it: its bundled well-known types always win over any
 * .proto file and name Struct's fields in camelCase, even when everything else keeps proto case.
 */
export interface StructValue {
  nullValue?: number | string;
  numberValue?: number;
  stringValue?: string;
  boolValue?: boolean;
  structValue?: Struct;
  listValue?: { values: StructValue[] };
}

export interface Struct {
  fields: Record<string, StructValue>;
}

export interface Status {
  code: number;
  message: string;
}

export interface Locality {
  region: string;
  zone: string;
  sub_zone: string;
}

export interface Node {
  id: string;
  cluster: string;
  metadata?: Struct | null;
  locality?: Locality | null;
  user_agent_name?: string;
}

export interface DiscoveryRequest {
  version_info: string;
  node?: Node | null;
  resource_names: string[];
  type_url: string;
  response_nonce: string;
  error_detail?: Status | null;
}

export interface DiscoveryResponse {
  version_info: string;
  resources: Any[];
  type_url: string;
  nonce: string;
}

export interface DeltaDiscoveryRequest {
  node?: Node | null;
  type_url: string;
  resource_names_subscribe: string[];
  resource_names_unsubscribe: string[];
  initial_resource_versions: Record<string, string>;
  response_nonce: string;
  error_detail?: Status | null;
}

export interface Resource {
  name: string;
  version: string;
  resource?: Any | null;
  aliases?: string[];
}

export interface DeltaDiscoveryResponse {
  system_version_info: string;
  resources: Resource[];
  type_url: string;
  removed_resources: string[];
  nonce: string;
}

export interface DataSource {
  inline_bytes?: Buffer;
  inline_string?: string;
  filename?: string;
}

/** envoy.extensions.transport_sockets.tls.v3.Secret (the subset SDS serves). */
export interface Secret {
  name: string;
  tls_certificate?: { certificate_chain?: DataSource; private_key?: DataSource } | null;
  validation_context?: { trusted_ca?: DataSource } | null;
}

export interface IstioCertificateRequest {
  csr: string;
  validity_duration: number;
  metadata?: Struct | null;
}

export interface IstioCertificateResponse {
  cert_chain: string[];
}

/** istio.networking.nds.v1.NameTable.NameInfo */
export interface NameInfo {
  ips: string[];
  registry: string;
  shortname: string;
  namespace: string;
  alt_hosts: string[];
}

/** istio.networking.nds.v1.NameTable: host → NameInfo. */
export interface NameTable {
  table: Record<string, NameInfo>;
}

export type JsonLike = string | number | boolean | null | JsonLike[] | { [key: string]: JsonLike };

/** Plain JSON → google.protobuf.Struct (for node metadata and CA request metadata). */
export function toStruct(value: Record<string, JsonLike>): Struct {
  const fields: Record<string, StructValue> = {};
  for (const [k, v] of Object.entries(value)) fields[k] = toStructValue(v);
  return { fields };
}

function toStructValue(value: JsonLike): StructValue {
  if (value === null) return { nullValue: 0 };
  if (typeof value === 'string') return { stringValue: value };
  if (typeof value === 'number') return { numberValue: value };
  if (typeof value === 'boolean') return { boolValue: value };
  if (Array.isArray(value)) return { listValue: { values: value.map(toStructValue) } };
  return { structValue: toStruct(value) };
}

/** google.protobuf.Struct → plain JSON. */
export function fromStruct(struct: Struct | null | undefined): Record<string, JsonLike> {
  const out: Record<string, JsonLike> = {};
  for (const [k, v] of Object.entries(struct?.fields ?? {})) out[k] = fromStructValue(v);
  return out;
}

function fromStructValue(value: StructValue): JsonLike {
  if (value.stringValue !== undefined && value.stringValue !== null) return value.stringValue;
  if (value.numberValue !== undefined && value.numberValue !== null) return value.numberValue;
  if (value.boolValue !== undefined && value.boolValue !== null) return value.boolValue;
  if (value.structValue) return fromStruct(value.structValue);
  if (value.listValue) return (value.listValue.values ?? []).map(fromStructValue);
  return null;
}
