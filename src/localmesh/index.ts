export {
  LocalControlPlane,
  DEFAULT_SERVER_NAMES,
  DEFAULT_MAX_CERT_TTL_SECONDS,
  DEFAULT_CERT_TTL_SECONDS,
} from './local-control-plane.js';
export type { LocalControlPlaneOptions, LocalControlPlaneState, IssuedCertificate, CaCallRecord } from './local-control-plane.js';
export type { AdsNodeRecord, AdsRequestRecord, AdsResponseRecord, AdsStreamKind, XdsResource } from './ads-server.js';
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
  LISTENER_TYPE_URL,
  ROUTE_CONFIGURATION_TYPE_URL,
  CLUSTER_TYPE_URL,
  CLUSTER_LOAD_ASSIGNMENT_TYPE_URL,
  HTTP_CONNECTION_MANAGER_TYPE_URL,
  ROUTER_TYPE_URL,
} from './resource-schema.js';
export type {
  Listener,
  HttpConnectionManager,
  RouteConfiguration,
  Cluster,
  ClusterLoadAssignment,
} from './resource-schema.js';
