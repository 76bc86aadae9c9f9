/**
 * The TLS transport socket of a bootstrap cluster for a tracer, metrics service or access-log service,
 * from a ProxyConfig ClientTLSSettings (pkg/bootstrap/option/convert.go transportSocketConverter).
 * Certificates are fetched over SDS from the agent (`sds-grpc`): the workload's own (`default`,
 * `ROOTCA`) for ISTIO_MUTUAL, or files named by `file-cert:` / `file-root:` resource names.
 */
import type { JsonValue } from '../../config/index.js';
import { protoField, sortKeysDeep, stringField, stringListField, type JsonObject } from './json.js';

const TLS_MODES = ['DISABLE', 'SIMPLE', 'MUTUAL', 'ISTIO_MUTUAL'] as const;
const SDS_CLUSTER = 'sds-grpc';
const SDS_DEFAULT = 'default';
const SDS_ROOT = 'ROOTCA';

/** TLS_CLIENT_* node metadata, which takes precedence over the files ClientTLSSettings names. */
export interface ClientCertOverrides {
  certChain: string;
  key: string;
  rootCert: string;
}

/**
 * The `transport_socket` JSON, or undefined when the settings ask for no TLS. `sniName` is the SNI
 * ISTIO_MUTUAL uses when none is set; without HTTP/2 (`isH2` false) no ALPN is offered. Keys are sorted,
 * as Istio writes this object through a protobuf Struct.
 */
export function upstreamTlsSocket(tls: JsonValue | undefined, sniName: string, overrides: ClientCertOverrides, isH2: boolean): JsonObject | undefined {
  const mode = tlsMode(protoField(tls, 'mode'));
  if (mode === 'DISABLE') return undefined;
  const sans = stringListField(tls, 'subjectAltNames') ?? [];
  const sni = stringField(tls, 'sni');
  const orDefault = (value: string, fallback: string): string => (value !== '' ? value : fallback);

  const common: JsonObject = {};
  let alpn: string[];
  let certName = '';
  let rootName: string;
  let tlsSni = sni;
  if (mode === 'ISTIO_MUTUAL') {
    certName = SDS_DEFAULT;
    rootName = SDS_ROOT;
    alpn = ['istio', 'h2'];
    if (tlsSni === '') tlsSni = sniName;
  } else {
    const ca = orDefault(overrides.rootCert, stringField(tls, 'caCertificates'));
    rootName = ca === '' ? '' : `file-root:${ca}`;
    if (mode === 'MUTUAL') {
      const cert = orDefault(overrides.certChain, stringField(tls, 'clientCertificate'));
      const key = orDefault(overrides.key, stringField(tls, 'privateKey'));
      if (cert !== '' && key !== '') certName = `file-cert:${cert}~${key}`;
    }
    alpn = ['h2'];
  }
  if (certName !== '') common['tls_certificate_sds_secret_configs'] = [sdsSecretConfig(certName)];
  const validation: JsonObject = { default_validation_context: sans.length > 0 ? { match_subject_alt_names: sans.map((exact) => ({ exact })) } : {} };
  if (rootName !== '') validation['validation_context_sds_secret_config'] = sdsSecretConfig(rootName);
  common['combined_validation_context'] = validation;
  if (isH2) common['alpn_protocols'] = alpn;

  const context: JsonObject = { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext', common_tls_context: common };
  if (tlsSni !== '') context['sni'] = tlsSni;
  return { name: 'envoy.transport_sockets.tls', typed_config: sortKeysDeep(context) };
}

/** pkg/model ConstructSdsSecretConfig: the workload's own secrets are not waited for (fetch timeout 0). */
function sdsSecretConfig(name: string): JsonObject {
  const source: JsonObject = {
    api_config_source: {
      api_type: 'GRPC',
      grpc_services: [{ envoy_grpc: { cluster_name: SDS_CLUSTER } }],
      set_node_on_first_message_only: true,
      transport_api_version: 'V3',
    },
    resource_api_version: 'V3',
  };
  if (name === SDS_DEFAULT || name === SDS_ROOT) source['initial_fetch_timeout'] = '0s';
  return { name, sds_config: source };
}

function tlsMode(value: JsonValue | undefined): (typeof TLS_MODES)[number] {
  if (typeof value === 'number') return TLS_MODES[value] ?? 'DISABLE';
  return TLS_MODES.find((m) => m === value) ?? 'DISABLE';
}
