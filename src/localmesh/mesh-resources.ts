/**
 * The Istio configuration the local control plane keeps: ServiceEntry and WorkloadGroup, shaped as
 * `networking.istio.io` serves them (field names as in the CRDs' JSON), with every optional field
 * filled with its proto default so that readers need no `??` chains.
 */

export const SERVICE_ENTRY_LOCATIONS = ['MESH_EXTERNAL', 'MESH_INTERNAL'] as const;
export type ServiceEntryLocation = (typeof SERVICE_ENTRY_LOCATIONS)[number];

export const SERVICE_ENTRY_RESOLUTIONS = ['NONE', 'STATIC', 'DNS', 'DNS_ROUND_ROBIN', 'DYNAMIC_DNS'] as const;
export type ServiceEntryResolution = (typeof SERVICE_ENTRY_RESOLUTIONS)[number];

/** API versions under which the networking kinds below are served. */
export const NETWORKING_API_VERSIONS = ['networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3'] as const;

/** Label with which a ServiceEntry opts out of address auto-allocation (value `false`, any case). */
export const ENABLE_AUTOALLOCATE_IP_LABEL = 'networking.istio.io/enable-autoallocate-ip';

export interface ObjectMeta {
  readonly name: string;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
}

export interface ServicePort {
  readonly number: number;
  /** As written ('' = sniffed); compare with `protocolOf`. */
  readonly protocol: string;
  readonly name: string;
  /** 0 when unset. */
  readonly targetPort: number;
}

/** istio.networking.v1.WorkloadEntry: a ServiceEntry endpoint, or a WorkloadGroup template. */
export interface WorkloadEntrySpec {
  readonly address: string;
  readonly ports: Readonly<Record<string, number>>;
  readonly labels: Readonly<Record<string, string>>;
  readonly network: string;
  readonly locality: string;
  readonly weight: number;
  readonly serviceAccount: string;
}

export interface ServiceEntrySpec {
  readonly hosts: readonly string[];
  readonly addresses: readonly string[];
  readonly ports: readonly ServicePort[];
  readonly location: ServiceEntryLocation;
  readonly resolution: ServiceEntryResolution;
  readonly endpoints: readonly WorkloadEntrySpec[];
  /** Absent when the entry selects no workloads. */
  readonly workloadSelector?: { readonly labels: Readonly<Record<string, string>> };
  /** [] = the mesh default (`*`). */
  readonly exportTo: readonly string[];
  readonly subjectAltNames: readonly string[];
}

/** One auto-allocated address of one host, as istiod records it in `status.addresses`. */
export interface ServiceEntryAddress {
  readonly host: string;
  readonly value: string;
}

export interface ServiceEntry {
  readonly apiVersion: string;
  readonly kind: 'ServiceEntry';
  readonly metadata: ObjectMeta;
  readonly spec: ServiceEntrySpec;
  /** Written by the store's allocator only; a `status` in applied YAML is ignored, as kubectl apply does. */
  readonly status: { readonly addresses: readonly ServiceEntryAddress[] };
}

export interface HttpHeader {
  readonly name: string;
  readonly value: string;
}

/** istio.networking.v1.ReadinessProbe: how the agent probes the workload (istioctl copies it into ProxyConfig). */
export interface WorkloadGroupProbe {
  readonly initialDelaySeconds: number;
  readonly timeoutSeconds: number;
  readonly periodSeconds: number;
  readonly successThreshold: number;
  readonly failureThreshold: number;
  /** Exactly one of the four methods is set. */
  readonly httpGet?: {
    readonly path: string;
    readonly port: number;
    readonly host: string;
    /** '', `HTTP` or `HTTPS`. */
    readonly scheme: string;
    readonly httpHeaders: readonly HttpHeader[];
  };
  readonly tcpSocket?: { readonly host: string; readonly port: number };
  readonly exec?: { readonly command: readonly string[] };
  readonly grpc?: { readonly port: number; readonly service: string };
}

export interface WorkloadGroupSpec {
  /** Labels and annotations that every WorkloadEntry created from the group gets. */
  readonly metadata: { readonly labels: Readonly<Record<string, string>>; readonly annotations: Readonly<Record<string, string>> };
  readonly template: WorkloadEntrySpec;
  readonly probe?: WorkloadGroupProbe;
}

export interface WorkloadGroup {
  readonly apiVersion: string;
  readonly kind: 'WorkloadGroup';
  readonly metadata: ObjectMeta;
  readonly spec: WorkloadGroupSpec;
}

export type MeshResource = ServiceEntry | WorkloadGroup;
export type MeshResourceKind = MeshResource['kind'];

/** `<kind> <namespace>/<name>`, as messages name a resource. */
export function resourceLabel(resource: { kind: string; metadata: { namespace: string; name: string } }): string {
  return `${resource.kind} ${resource.metadata.namespace}/${resource.metadata.name}`;
}

/**
 * Whether istiod's allocator gives the entry's hosts addresses (Istio's `ShouldV2AutoAllocateIP`):
 * not for resolution NONE (the original destination could not be honoured), not when the entry
 * carries its own `addresses`, and not when it opts out with the label.
 */
export function shouldAutoAllocate(entry: ServiceEntry): boolean {
  if (entry.spec.resolution === 'NONE') return false;
  if (entry.metadata.labels[ENABLE_AUTOALLOCATE_IP_LABEL]?.toLowerCase() === 'false') return false;
  return entry.spec.addresses.length === 0;
}

/** Wildcard hosts get an address only with resolution DYNAMIC_DNS (Istio's allocator `keepHost`). */
export function isAllocatableHost(entry: ServiceEntry, host: string): boolean {
  return !host.startsWith('*') || entry.spec.resolution === 'DYNAMIC_DNS';
}

/** `<namespace>/<name>`: how a namespaced resource is keyed. */
export function resourceKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}
