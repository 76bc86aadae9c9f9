/**
 * TypeScript shapes of the protobuf messages the agent reads and writes, with proto field names
 * (keepCase). Decoding fills scalar defaults, so strings are '' and repeated fields [] when absent.
 */

export interface Any {
  type_url: string;
  value: Buffer;
}

/** google.protobuf.Value, as protobufjs represents it. */
export interface StructValue {
  null_value?: number | string;
  number_value?: number;
  string_value?: string;
  bool_value?: boolean;
  struct_value?: Struct;
  list_value?: { values: StructValue[] };
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

export type JsonLike = string | number | boolean | null | JsonLike[] | { [key: string]: JsonLike };

/** Plain JSON → google.protobuf.Struct (for node metadata and CA request metadata). */
export function toStruct(value: Record<string, JsonLike>): Struct {
  const fields: Record<string, StructValue> = {};
  for (const [k, v] of Object.entries(value)) fields[k] = toStructValue(v);
  return { fields };
}

function toStructValue(value: JsonLike): StructValue {
  if (value === null) return { null_value: 0 };
  if (typeof value === 'string') return { string_value: value };
  if (typeof value === 'number') return { number_value: value };
  if (typeof value === 'boolean') return { bool_value: value };
  if (Array.isArray(value)) return { list_value: { values: value.map(toStructValue) } };
  return { struct_value: toStruct(value) };
}

/** google.protobuf.Struct → plain JSON. */
export function fromStruct(struct: Struct | null | undefined): Record<string, JsonLike> {
  const out: Record<string, JsonLike> = {};
  for (const [k, v] of Object.entries(struct?.fields ?? {})) out[k] = fromStructValue(v);
  return out;
}

function fromStructValue(value: StructValue): JsonLike {
  if (value.string_value !== undefined && value.string_value !== null) return value.string_value;
  if (value.number_value !== undefined && value.number_value !== null) return value.number_value;
  if (value.bool_value !== undefined && value.bool_value !== null) return value.bool_value;
  if (value.struct_value) return fromStruct(value.struct_value);
  if (value.list_value) return (value.list_value.values ?? []).map(fromStructValue);
  return null;
}
