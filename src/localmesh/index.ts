export {
  LocalControlPlane,
  DEFAULT_SERVER_NAMES,
  DEFAULT_MAX_CERT_TTL_SECONDS,
  DEFAULT_CERT_TTL_SECONDS,
} from './local-control-plane.js';
export type { LocalControlPlaneOptions, LocalControlPlaneState, IssuedCertificate, CaCallRecord, NameTableAck } from './local-control-plane.js';
export type {
  AdsNodeRecord,
  AdsRequestRecord,
  AdsResponseRecord,
  AdsStreamHooks,
  AdsStreamKind,
  AdsStreamRejection,
  ResourceGenerator,
  XdsResource,
} from './ads-server.js';
export {
  WorkloadEntryRegistry,
  autoRegisteredEntryName,
  isWorkloadEntryHealthy,
  formatRfc3339Nano,
  WORKLOAD_ENTRY_API_VERSION,
  DEFAULT_WORKLOAD_ENTRY_GRACE_PERIOD_MS,
  AUTO_REGISTRATION_GROUP_ANNOTATION,
  WORKLOAD_CONTROLLER_ANNOTATION,
  CONNECTED_AT_ANNOTATION,
  DISCONNECTED_AT_ANNOTATION,
  HEALTH_CHECKS_ENABLED_ANNOTATION,
  HEALTHY_CONDITION,
} from './workload-entry-registry.js';
export type {
  EntryNameSource,
  IstioCondition,
  OwnerReference,
  WorkloadEntry,
  WorkloadEntryEvent,
  WorkloadEntryEventKind,
  WorkloadEntryObjectSpec,
  WorkloadEntryRegistryOptions,
} from './workload-entry-registry.js';
export { WorkloadEntryApiServer } from './workload-entry-api-server.js';
export type { WorkloadEntrySource } from './workload-entry-api-server.js';
export {
  MeshConfigStore,
  DEFAULT_IPV4_AUTOALLOCATE_PREFIX,
  DEFAULT_IPV6_AUTOALLOCATE_PREFIX,
} from './mesh-config-store.js';
export type { KubernetesService, MeshConfigChange, MeshConfigStoreOptions } from './mesh-config-store.js';
export { parseMeshYaml } from './mesh-yaml.js';
export type { ParseMeshYamlOptions } from './mesh-yaml.js';
export { ENABLE_AUTOALLOCATE_IP_LABEL, NETWORKING_API_VERSIONS, isAllocatableHost, shouldAutoAllocate } from './mesh-resources.js';
export type {
  HttpHeader,
  MeshResource,
  MeshResourceKind,
  ObjectMeta,
  WorkloadGroupProbe,
  ServiceEntry,
  ServiceEntryAddress,
  ServiceEntryLocation,
  ServiceEntryResolution,
  ServiceEntrySpec,
  ServicePort,
  WorkloadEntrySpec,
  WorkloadGroup,
  WorkloadGroupSpec,
} from './mesh-resources.js';
export { buildNameTable, nameTableProxyFromNode } from './name-table.js';
export type { NameTableProxy, NameTableSource } from './name-table.js';
export { PrefixAllocator } from './prefix-allocator.js';
export type { IpFamily } from './prefix-allocator.js';
export type { AuthMethod } from './authenticator.js';
export { CaAuthority, CsrError, spiffeUri, parseSpiffeUri } from './ca-authority.js';
export type { CaState, ClientCertificateCheck, IssuedLeaf, RootKeyAlgorithm, ServingCertificate, SpiffeIdentity } from './ca-authority.js';
export { ISTIO_CA_AUDIENCE, TOKEN_ISSUER } from './jwt.js';
export type { TokenRequest } from './jwt.js';
export { buildGrpcServiceResources, buildClusters, outboundClusterName, grpcListenerName } from './grpc-service-resources.js';
export type { GrpcService, GrpcServiceEndpoint, GrpcServiceResources } from './grpc-service-resources.js';
export {
  ResourceSchema,
  loadResourceSchema,
} from './resource-schema.js';
export {
  LISTENER_TYPE_URL,
  ROUTE_CONFIGURATION_TYPE_URL,
  CLUSTER_TYPE_URL,
  CLUSTER_LOAD_ASSIGNMENT_TYPE_URL,
  HTTP_CONNECTION_MANAGER_TYPE_URL,
  ROUTER_TYPE_URL,
  NAME_TABLE_TYPE_URL,
  HEALTH_INFO_TYPE_URL,
} from '../proto/type-urls.js';
export type {
  Listener,
  HttpConnectionManager,
  RouteConfiguration,
  Cluster,
  ClusterLoadAssignment,
} from './resource-schema.js';
