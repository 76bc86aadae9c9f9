import { isIP } from 'node:net';
import {
  CLUSTER_LOAD_ASSIGNMENT_TYPE_URL,
  CLUSTER_TYPE_URL,
  HTTP_CONNECTION_MANAGER_TYPE_URL,
  LISTENER_TYPE_URL,
  ROUTE_CONFIGURATION_TYPE_URL,
  ROUTER_TYPE_URL,
  toStruct,
} from '../proto/index.js';
import type { XdsResource } from './ads-server.js';
import {
  ResourceSchema,
  type Cluster,
  type ConfigSource,
} from './resource-schema.js';

export interface GrpcServiceEndpoint {
  /** An IP address: gRPC clients reject endpoints named by host name. */
  readonly address: string;
  readonly port: number;
}

/** A mesh service as proxyless gRPC clients see it: `xds:///<host>:<port>`. */
export interface GrpcService {
  /** Fully qualified, e.g. `echo.istio-demo.svc.cluster.local`. */
  readonly host: string;
  readonly port: number;
  readonly endpoints: readonly GrpcServiceEndpoint[];
}

/** The four resource sets for some services, keyed by type URL, in the order istiod pushes them. */
export type GrpcServiceResources = ReadonlyMap<string, XdsResource[]>;

/** istiod's outbound cluster name, `outbound|<port>||<host>` (empty subset). */
export function outboundClusterName(host: string, port: number): string {
  return `outbound|${port}||${host}`;
}

/** Listener and route name a proxyless client asks for when dialling `xds:///<host>:<port>`. */
export function grpcListenerName(host: string, port: number): string {
  return `${host}:${port}`;
}

// Points a resource at the ADS stream it came on. V3 is stated explicitly, as istiod does; gRPC
// clients accept `ads` or `self` and nothing else.
const ADS_CONFIG_SOURCE: ConfigSource = { ads: {}, resource_api_version: 'V3' };

function checkPort(port: number, what: string): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`${what}: port ${port} is not in 1..65535`);
}

function validate(services: readonly GrpcService[]): void {
  const seen = new Set<string>();
  for (const service of services) {
    const name = grpcListenerName(service.host, service.port);
    if (!/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(service.host)) throw new TypeError(`gRPC service ${name}: host is not a DNS name`);
    checkPort(service.port, `gRPC service ${name}`);
    if (seen.has(name)) throw new TypeError(`gRPC service ${name} is listed twice`);
    seen.add(name);
    const addresses = new Set<string>();
    for (const endpoint of service.endpoints) {
      const where = `gRPC service ${name}: endpoint ${endpoint.address}:${endpoint.port}`;
      if (isIP(endpoint.address) === 0) throw new TypeError(`${where}: address is not an IP address`);
      checkPort(endpoint.port, where);
      // A gRPC client NACKs the whole ClusterLoadAssignment over a duplicate address.
      const key = `${endpoint.address}|${endpoint.port}`;
      if (addresses.has(key)) throw new TypeError(`${where} is listed twice`);
      addresses.add(key);
    }
  }
}

/**
 * Builds what istiod generates for proxyless gRPC clients (its `grpc` generator), per service:
 *
 * - a Listener `<host>:<port>` whose `api_listener` holds an HttpConnectionManager that fetches
 *   route `<host>:<port>` over ADS, with the router as its only (and so last) HTTP filter;
 * - a RouteConfiguration `<host>:<port>`: one virtual host for `<host>` and `<host>:<port>`,
 *   prefix `/` → cluster `outbound|<port>||<host>`;
 * - a Cluster of that name: EDS over ADS, ROUND_ROBIN;
 * - its ClusterLoadAssignment: every endpoint in one locality, weight 1.
 *
 * Throws on input a gRPC client would NACK (host names as endpoints, duplicates, bad ports).
 */
export function buildGrpcServiceResources(services: readonly GrpcService[], schema: ResourceSchema): GrpcServiceResources {
  validate(services);
  const clusters: XdsResource[] = [];
  const assignments: XdsResource[] = [];
  const listeners: XdsResource[] = [];
  const routes: XdsResource[] = [];
  const router = { type_url: ROUTER_TYPE_URL, value: schema.router.encode({}) };
  for (const { host, port, endpoints } of services) {
    const name = grpcListenerName(host, port);
    const clusterName = outboundClusterName(host, port);
    const manager = schema.httpConnectionManager.encode({
      stat_prefix: clusterName,
      rds: { config_source: ADS_CONFIG_SOURCE, route_config_name: name },
      http_filters: [{ name: 'envoy.filters.http.router', typed_config: router }],
    });
    listeners.push({
      name,
      value: schema.listener.encode({
        name,
        api_listener: { api_listener: { type_url: HTTP_CONNECTION_MANAGER_TYPE_URL, value: manager } },
      }),
    });
    routes.push({
      name,
      value: schema.routeConfiguration.encode({
        name,
        virtual_hosts: [
          {
            name,
            domains: [host, name],
            routes: [{ name: 'default', match: { prefix: '/' }, route: { cluster: clusterName } }],
          },
        ],
      }),
    });
    clusters.push({
      name: clusterName,
      value: schema.cluster.encode({
        name: clusterName,
        type: 'EDS',
        lb_policy: 'ROUND_ROBIN',
        eds_cluster_config: { service_name: clusterName, eds_config: ADS_CONFIG_SOURCE },
      }),
    });
    assignments.push({
      name: clusterName,
      value: schema.clusterLoadAssignment.encode({
        cluster_name: clusterName,
        endpoints:
          endpoints.length === 0
            ? []
            : [
                {
                  locality: { region: '', zone: '', sub_zone: '' },
                  load_balancing_weight: { value: endpoints.length },
                  lb_endpoints: endpoints.map((endpoint) => ({
                    endpoint: { address: { socket_address: { address: endpoint.address, port_value: endpoint.port } } },
                    health_status: 'HEALTHY',
                    load_balancing_weight: { value: 1 },
                  })),
                },
              ],
      }),
    });
  }
  return new Map([
    [CLUSTER_TYPE_URL, clusters],
    [CLUSTER_LOAD_ASSIGNMENT_TYPE_URL, assignments],
    [LISTENER_TYPE_URL, listeners],
    [ROUTE_CONFIGURATION_TYPE_URL, routes],
  ]);
}

function benchHost(index: number): string {
  return `svc-${index}.bench.svc.cluster.local`;
}

function paddedCluster(index: number, padding: number): Cluster {
  const host = benchHost(index);
  const name = outboundClusterName(host, 8080);
  return {
    name,
    type: 'EDS',
    lb_policy: 'ROUND_ROBIN',
    eds_cluster_config: { service_name: name, eds_config: ADS_CONFIG_SOURCE },
    metadata: {
      filter_metadata: {
        istio: toStruct({
          services: [{ host, name: `svc-${index}`, namespace: 'bench' }],
          default_original_port: 8080,
          padding: 'x'.repeat(padding),
        }),
      },
    },
  };
}

/**
 * `count` real, distinct Cluster resources (`outbound|8080||svc-<i>.bench.svc.cluster.local`), each
 * encoding to about `bytesEach` bytes (at least its unpadded size, ~250 bytes) through padding in
 * its Istio metadata. For tests and benchmarks of large pushes: 20 000 × 1000 bytes ≈ 20 MB.
 * Without `schema` it loads one (~150 ms).
 */
export function buildClusters(count: number, bytesEach: number, schema: ResourceSchema = new ResourceSchema()): XdsResource[] {
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`buildClusters: count ${count} is not a non-negative integer`);
  // The padding needed depends only on the length of the name; work it out once per length.
  const paddingByNameLength = new Map<number, number>();
  const resources: XdsResource[] = [];
  for (let index = 0; index < count; index++) {
    const nameLength = String(index).length;
    let padding = paddingByNameLength.get(nameLength);
    let value: Buffer | undefined;
    if (padding === undefined) {
      padding = 0;
      value = encodeCluster(schema, index, padding);
      // Each padding byte adds one byte, except where a length prefix grows: a few rounds settle it.
      for (let round = 0; round < 4 && value.length !== bytesEach; round++) {
        const next = Math.max(0, padding + bytesEach - value.length);
        if (next === padding) break;
        padding = next;
        value = encodeCluster(schema, index, padding);
      }
      paddingByNameLength.set(nameLength, padding);
    }
    value ??= encodeCluster(schema, index, padding);
    resources.push({ name: outboundClusterName(benchHost(index), 8080), value });
  }
  return resources;
}

function encodeCluster(schema: ResourceSchema, index: number, padding: number): Buffer {
  return schema.cluster.encode(paddedCluster(index, padding));
}
