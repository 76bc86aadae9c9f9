/** The type URLs of the xDS resources the agent and the local control plane speak (SPEC §5.3). */
export const LISTENER_TYPE_URL = 'type.googleapis.com/envoy.config.listener.v3.Listener';
export const ROUTE_CONFIGURATION_TYPE_URL = 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration';
export const CLUSTER_TYPE_URL = 'type.googleapis.com/envoy.config.cluster.v3.Cluster';
export const CLUSTER_LOAD_ASSIGNMENT_TYPE_URL = 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment';
export const HTTP_CONNECTION_MANAGER_TYPE_URL =
  'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
export const ROUTER_TYPE_URL = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
export const NAME_TABLE_TYPE_URL = 'type.googleapis.com/istio.networking.nds.v1.NameTable';
export const PROXY_CONFIG_TYPE_URL = 'type.googleapis.com/istio.mesh.v1alpha1.ProxyConfig';
/** Health reports: requests to istiod that subscribe to nothing. */
export const HEALTH_INFO_TYPE_URL = 'type.googleapis.com/istio.v1.HealthInformation';
export const WORKLOAD_TYPE_URL = 'type.googleapis.com/istio.workload.Workload';
export const SECRET_TYPE_URL = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret';
