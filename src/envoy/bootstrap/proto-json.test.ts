import assert from 'node:assert/strict';
import type protobuf from 'protobufjs';
import { loadProtoRoot } from '../../proto/index.js';
import { BOOTSTRAP_PROTO_FILES, BOOTSTRAP_TYPE } from './bootstrap-protos.js';
import { fromProtoJson } from './proto-json.js';

const HTTP_OPTIONS = 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

describe('fromProtoJson', () => {
  let bootstrap: protobuf.Type;
  before(() => {
    bootstrap = loadProtoRoot(BOOTSTRAP_PROTO_FILES).lookupType(BOOTSTRAP_TYPE);
  });

  const problems = (json: unknown, opaqueTypeUrls: string[] = []): string[] => fromProtoJson(bootstrap, json, { opaqueTypeUrls }).problems;
  const cluster = (fields: Record<string, unknown>): unknown => ({ static_resources: { clusters: [{ name: 'c', ...fields }] } });

  it('accepts proto names and lowerCamel JSON names', () => {
    assert.deepEqual(problems({ node: { id: 'a', user_agent_name: 'x' }, statsFlushInterval: '5s' }), []);
  });

  it('reports a field the message does not have, which protobufjs would drop silently', () => {
    assert.deepEqual(problems({ node: { idd: 'a' } }), ['node.idd: unknown field of envoy.config.core.v3.Node']);
    assert.equal(Object.keys(bootstrap.toObject(bootstrap.fromObject({ node: { idd: 'a' } }))).length, 1);
  });

  it('reports values of the wrong JSON type', () => {
    assert.deepEqual(problems({ node: { id: 3 }, admin: { address: { socket_address: { port_value: 'http' } } } }), [
      'node.id: expected a string, got number 3',
      'admin.address.socket_address.port_value: expected an integer (uint32), got string "http"',
    ]);
    assert.deepEqual(problems(cluster({ connect_timeout: '1m', type: 'STRICTLY_DNS', respect_dns_ttl: 'true' })), [
      'static_resources.clusters[0].connect_timeout: expected a duration like "1.5s", got string "1m"',
      'static_resources.clusters[0].type: "STRICTLY_DNS" is not a value of enum envoy.config.cluster.v3.Cluster.DiscoveryType',
      'static_resources.clusters[0].respect_dns_ttl: expected a boolean, got string "true"',
    ]);
  });

  it('reports an out-of-range integer and a wrapper given as an object', () => {
    assert.deepEqual(problems(cluster({ per_connection_buffer_limit_bytes: 4294967296, max_requests_per_connection: { value: 1 } })), [
      'static_resources.clusters[0].per_connection_buffer_limit_bytes: 4294967296 is out of range for uint32',
      'static_resources.clusters[0].max_requests_per_connection: expected an integer (uint32), got an object',
    ]);
  });

  it('reports two members of one oneof, and a field given under both its names', () => {
    assert.deepEqual(problems({ admin: { address: { socket_address: { address: 'a', port_value: 1 }, pipe: { path: '/p' } } } }), [
      'admin.address.pipe: oneof address already has "socket_address"',
    ]);
    assert.deepEqual(problems({ node: { user_agent_name: 'a', userAgentName: 'b' } }), ['node.userAgentName: field set twice (also as "user_agent_name")']);
  });

  it('checks the inside of an Any against the type its @type names', () => {
    const options = (inner: Record<string, unknown>): unknown =>
      cluster({ typed_extension_protocol_options: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': HTTP_OPTIONS, ...inner } } });
    assert.deepEqual(problems(options({ explicit_http_config: { http2_protocol_options: {} } })), []);
    assert.deepEqual(problems(options({ explicit_http_config: { http3: {} } })), [
      'static_resources.clusters[0].typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"](envoy.extensions.upstreams.http.v3.HttpProtocolOptions).explicit_http_config.http3: unknown field of envoy.extensions.upstreams.http.v3.HttpProtocolOptions.ExplicitHttpConfig',
    ]);
  });

  it('reports an Any whose @type is missing or names no loaded message', () => {
    const socket = (typedConfig: unknown): unknown => cluster({ transport_socket: { name: 'tls', typed_config: typedConfig } });
    assert.deepEqual(problems(socket({ sni: 'a' })), ['static_resources.clusters[0].transport_socket.typed_config: Any without a string "@type"']);
    assert.deepEqual(problems(socket({ '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.quic.v3.QuicUpstreamTransport' })), [
      'static_resources.clusters[0].transport_socket.typed_config(envoy.extensions.transport_sockets.quic.v3.QuicUpstreamTransport): @type names no loaded message: type.googleapis.com/envoy.extensions.transport_sockets.quic.v3.QuicUpstreamTransport',
    ]);
  });

  it('checks a TypedStruct value against its type_url, unless the type is known to be opaque', () => {
    const extension = (typeUrl: string, value: unknown): unknown => ({
      bootstrap_extensions: [{ name: 'x', typed_config: { '@type': 'type.googleapis.com/udpa.type.v1.TypedStruct', type_url: typeUrl, value } }],
    });
    const listener = 'type.googleapis.com/envoy.extensions.bootstrap.internal_listener.v3.InternalListener';
    assert.deepEqual(problems(extension(listener, { buffer_size_kb: 64 })), []);
    assert.deepEqual(problems(extension(listener, { buffer_size: 64 })), [
      'bootstrap_extensions[0].typed_config(udpa.type.v1.TypedStruct).value(envoy.extensions.bootstrap.internal_listener.v3.InternalListener).buffer_size: unknown field of envoy.extensions.bootstrap.internal_listener.v3.InternalListener',
    ]);
    const istio = 'type.googleapis.com/istio.workload.BootstrapExtension';
    assert.deepEqual(problems(extension(istio, {})), [
      'bootstrap_extensions[0].typed_config(udpa.type.v1.TypedStruct).type_url: names no loaded message: type.googleapis.com/istio.workload.BootstrapExtension',
    ]);
    assert.deepEqual(problems(extension(istio, {}), [istio]), []);
  });

  it('reports null outside google.protobuf.Value, and accepts any JSON in a Struct', () => {
    assert.deepEqual(problems({ node: { id: null } }), ['node.id: null (leave the field out instead)']);
    assert.deepEqual(problems({ node: { metadata: { a: null, b: [1, 'x', { c: true }] } } }), []);
  });

  it('produces an object protobufjs encodes and decodes faithfully, Anys included', () => {
    const json = {
      node: { id: 'n', metadata: { LABELS: { app: 'a' }, PORT: 15021 } },
      stats_flush_interval: '1.5s',
      ...(cluster({
        connect_timeout: '0.250s',
        max_requests_per_connection: 1,
        typed_extension_protocol_options: { x: { '@type': HTTP_OPTIONS, explicit_http_config: { http2_protocol_options: {} } } },
      }) as object),
    };
    const { object, problems: found } = fromProtoJson(bootstrap, json);
    assert.deepEqual(found, []);
    const decoded = bootstrap.toObject(bootstrap.decode(bootstrap.encode(bootstrap.fromObject(object)).finish()), { longs: Number, enums: String });
    assert.deepEqual(decoded['stats_flush_interval'], { seconds: 1, nanos: 500_000_000 });
    const decodedCluster = (decoded['static_resources'] as { clusters: Record<string, unknown>[] }).clusters[0];
    assert.deepEqual(decodedCluster?.['connect_timeout'], { seconds: 0, nanos: 250_000_000 });
    assert.deepEqual(decodedCluster?.['max_requests_per_connection'], { value: 1 });
    const any = (decodedCluster?.['typed_extension_protocol_options'] as Record<string, { type_url: string; value: Uint8Array }>)['x'];
    assert.equal(any?.type_url, HTTP_OPTIONS);
    const optionsType = bootstrap.root.lookupType('envoy.extensions.upstreams.http.v3.HttpProtocolOptions');
    assert.deepEqual(optionsType.toObject(optionsType.decode(any?.value ?? new Uint8Array())), { explicit_http_config: { http2_protocol_options: {} } });
  });
});
