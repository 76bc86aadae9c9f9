import { WORKLOAD_TYPE_URL } from '../proto/type-urls.js';

/** xDS type URLs the agent treats specially (SPEC §5.3). */
export { HEALTH_INFO_TYPE_URL, LISTENER_TYPE_URL, NAME_TABLE_TYPE_URL, PROXY_CONFIG_TYPE_URL, WORKLOAD_TYPE_URL } from '../proto/type-urls.js';

const ENVOY_TYPE_PREFIX = 'type.googleapis.com/envoy.';

/** Only Envoy's own types (and Istio's Workload) are forwarded to Envoy, as pilot-agent does. */
export function isForwardableType(typeUrl: string): boolean {
  return typeUrl.startsWith(ENVOY_TYPE_PREFIX) || typeUrl === WORKLOAD_TYPE_URL;
}
