/**
 * The protobuf schema a generated bootstrap is written against: Envoy's Bootstrap message plus every
 * extension whose type URL the generator puts in a `typed_config` (or a TypedStruct's `type_url`).
 * Paths are relative to the proto roots `loadProtoRoot` searches (@grpc/grpc-js-xds's deps).
 */
export const BOOTSTRAP_TYPE = 'envoy.config.bootstrap.v3.Bootstrap';

export const BOOTSTRAP_PROTO_FILES = [
  'envoy/config/bootstrap/v3/bootstrap.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/filters/http/compressor/v3/compressor.proto',
  'envoy/extensions/compression/brotli/compressor/v3/brotli.proto',
  'envoy/extensions/compression/gzip/compressor/v3/gzip.proto',
  'envoy/extensions/compression/zstd/compressor/v3/zstd.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  'envoy/extensions/access_loggers/file/v3/file.proto',
  'envoy/extensions/resource_monitors/downstream_connections/v3/downstream_connections.proto',
  'envoy/extensions/bootstrap/internal_listener/v3/internal_listener.proto',
  'envoy/extensions/filters/listener/proxy_protocol/v3/proxy_protocol.proto',
  'envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/extensions/load_balancing_policies/least_request/v3/least_request.proto',
  'envoy/config/trace/v3/zipkin.proto',
  'envoy/config/trace/v3/datadog.proto',
  'envoy/config/metrics/v3/metrics_service.proto',
  'udpa/type/v1/typed_struct.proto',
] as const;

/**
 * Extensions compiled into istio-proxy but absent from Envoy's API protos: a TypedStruct naming one of
 * these is accepted without checking its contents.
 */
export const ISTIO_PROXY_ONLY_TYPE_URLS = ['type.googleapis.com/istio.workload.BootstrapExtension'] as const;
