import type protobuf from 'protobufjs';
import { codec, loadProtoRoot, type Any, type Codec, type Locality, type Struct } from '../proto/index.js';

/**
 * The protobuf schema the local control plane builds Envoy resources with: listeners, routes,
 * clusters and endpoints. Kept apart from the agent's schema (src/proto), which never looks inside
 * these resources, and loaded only when a test or the demo asks for services (~150 ms).
 */
export const RESOURCE_PROTO_FILES = [
  'envoy/config/listener/v3/listener.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
] as const;

// TypeScript shapes of the fields the control plane sets and its tests read (proto field names).
// Decoding fills defaults: strings '', numbers 0, repeated [], unset messages null, enums by name.

export interface UInt32Value {
  value: number;
}

/** An empty `ads: {}` selects the ADS stream the resource itself arrived on. */
export interface ConfigSource {
  ads?: Record<string, never> | null;
  self?: Record<string, never> | null;
  /** 'AUTO' (default), 'V2' or 'V3'. */
  resource_api_version?: string;
}

export interface SocketAddress {
  address: string;
  port_value: number;
}

export interface Address {
  socket_address?: SocketAddress | null;
}

export interface Listener {
  name: string;
  address?: Address | null;
  api_listener?: { api_listener?: Any | null } | null;
}

export interface HttpFilter {
  name: string;
  typed_config?: Any | null;
  is_optional?: boolean;
}

export interface HttpConnectionManager {
  stat_prefix?: string;
  rds?: { config_source?: ConfigSource | null; route_config_name: string } | null;
  http_filters: HttpFilter[];
}

export interface Route {
  name?: string;
  match?: { prefix?: string } | null;
  route?: { cluster?: string } | null;
}

export interface VirtualHost {
  name: string;
  domains: string[];
  routes: Route[];
}

export interface RouteConfiguration {
  name: string;
  virtual_hosts: VirtualHost[];
}

export interface Cluster {
  name: string;
  /** 'STATIC', 'STRICT_DNS', 'LOGICAL_DNS', 'EDS' or 'ORIGINAL_DST'. */
  type: string;
  /** 'ROUND_ROBIN', 'LEAST_REQUEST', ... */
  lb_policy: string;
  eds_cluster_config?: { service_name: string; eds_config?: ConfigSource | null } | null;
  metadata?: { filter_metadata: Record<string, Struct> } | null;
}

export interface LbEndpoint {
  endpoint?: { address?: Address | null } | null;
  /** 'UNKNOWN' (default) or 'HEALTHY' are used; others are skipped by gRPC clients. */
  health_status?: string;
  load_balancing_weight?: UInt32Value | null;
}

export interface LocalityLbEndpoints {
  locality?: Locality | null;
  lb_endpoints: LbEndpoint[];
  /** gRPC clients skip a locality without a weight. */
  load_balancing_weight?: UInt32Value | null;
  priority?: number;
}

export interface ClusterLoadAssignment {
  cluster_name: string;
  endpoints: LocalityLbEndpoints[];
}

/** The control plane sets none of Router's fields; these are two of them. */
export interface Router {
  suppress_envoy_headers?: boolean;
  start_child_span?: boolean;
}


export function loadResourceSchema(): protobuf.Root {
  return loadProtoRoot(RESOURCE_PROTO_FILES);
}

/** Codecs for the Envoy resources the control plane builds. Build once, share read-only. */
export class ResourceSchema {
  readonly root: protobuf.Root;
  readonly listener: Codec<Listener>;
  readonly httpConnectionManager: Codec<HttpConnectionManager>;
  readonly router: Codec<Router>;
  readonly routeConfiguration: Codec<RouteConfiguration>;
  readonly cluster: Codec<Cluster>;
  readonly clusterLoadAssignment: Codec<ClusterLoadAssignment>;

  constructor(root: protobuf.Root = loadResourceSchema()) {
    this.root = root;
    this.listener = codec(root, 'envoy.config.listener.v3.Listener');
    this.httpConnectionManager = codec(root, 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager');
    this.router = codec(root, 'envoy.extensions.filters.http.router.v3.Router');
    this.routeConfiguration = codec(root, 'envoy.config.route.v3.RouteConfiguration');
    this.cluster = codec(root, 'envoy.config.cluster.v3.Cluster');
    this.clusterLoadAssignment = codec(root, 'envoy.config.endpoint.v3.ClusterLoadAssignment');
  }
}
