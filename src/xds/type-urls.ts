/** xDS type URLs the agent treats specially (SPEC §5.3). */
export const LISTENER_TYPE_URL = 'type.googleapis.com/envoy.config.listener.v3.Listener';
export const NAME_TABLE_TYPE_URL = 'type.googleapis.com/istio.networking.nds.v1.NameTable';
export const PROXY_CONFIG_TYPE_URL = 'type.googleapis.com/istio.mesh.v1alpha1.ProxyConfig';
export const HEALTH_INFO_TYPE_URL = 'type.googleapis.com/istio.v1.HealthInformation';
export const WORKLOAD_TYPE_URL = 'type.googleapis.com/istio.workload.Workload';
const ENVOY_TYPE_PREFIX = 'type.googleapis.com/envoy.';

/** Only Envoy's own types (and Istio's Workload) are forwarded to Envoy, as pilot-agent does. */
export function isForwardableType(typeUrl: string): boolean {
  return typeUrl.startsWith(ENVOY_TYPE_PREFIX) || typeUrl === WORKLOAD_TYPE_URL;
}
