import type { MethodDefinition } from '@grpc/grpc-js';
import type { Any, Node, ProtoSchema, Status } from '../proto/index.js';
import { RESPONSE_TYPE_URL_FIELD, checkMessageBounds, readStringField } from './wire.js';

/** What the proxy needs to know about a request Envoy sent. */
export interface RequestSummary {
  typeUrl: string;
  hasNode: boolean;
  nodeId: string;
}

/** What the proxy needs to know about a response for a type the agent handles itself. */
export interface ResponseSummary {
  typeUrl: string;
  nonce: string;
  version: string;
  resources: Any[];
}

export interface OutgoingRequest {
  typeUrl: string;
  node?: Node;
  nonce?: string;
  version?: string;
  errorDetail?: Status;
}

/**
 * The differences between State-of-the-World and Delta ADS, so the proxy is written once. Messages
 * the proxy merely forwards are never decoded: it passes Buffers through identity serializers.
 */
export interface StreamProtocol {
  readonly kind: 'sotw' | 'delta';
  /** `connected to [delta ]upstream XDS server: ...` */
  readonly label: string;
  readonly method: MethodDefinition<Buffer, Buffer>;
  summarizeRequest(bytes: Buffer): RequestSummary;
  responseTypeUrl(bytes: Buffer): string;
  decodeResponse(bytes: Buffer): ResponseSummary;
  encodeRequest(request: OutgoingRequest): Buffer;
}

const identity = (b: Buffer): Buffer => b;

export const SOTW_ADS_PATH = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';
export const DELTA_ADS_PATH = '/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources';

/** An ADS method whose messages stay bytes both ways (for pass-through, and for clients that compare bytes). */
export function rawMethod(path: string): MethodDefinition<Buffer, Buffer> {
  return {
    path,
    requestStream: true,
    responseStream: true,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  };
}

export function sotwProtocol(schema: ProtoSchema): StreamProtocol {
  return {
    kind: 'sotw',
    label: 'upstream XDS server',
    method: rawMethod(SOTW_ADS_PATH),
    summarizeRequest(bytes) {
      checkMessageBounds(bytes);
      const request = schema.discoveryRequest.decode(bytes);
      return { typeUrl: request.type_url, hasNode: Boolean(request.node), nodeId: request.node?.id ?? '' };
    },
    responseTypeUrl: (bytes) => readStringField(bytes, RESPONSE_TYPE_URL_FIELD),
    decodeResponse(bytes) {
      const response = schema.discoveryResponse.decode(bytes);
      return { typeUrl: response.type_url, nonce: response.nonce, version: response.version_info, resources: response.resources };
    },
    encodeRequest(request) {
      return schema.discoveryRequest.encode({
        version_info: request.version ?? '',
        node: request.node ?? null,
        resource_names: [],
        type_url: request.typeUrl,
        response_nonce: request.nonce ?? '',
        error_detail: request.errorDetail ?? null,
      });
    },
  };
}

export function deltaProtocol(schema: ProtoSchema): StreamProtocol {
  return {
    kind: 'delta',
    label: 'delta upstream XDS server',
    method: rawMethod(DELTA_ADS_PATH),
    summarizeRequest(bytes) {
      checkMessageBounds(bytes);
      const request = schema.deltaDiscoveryRequest.decode(bytes);
      return { typeUrl: request.type_url, hasNode: Boolean(request.node), nodeId: request.node?.id ?? '' };
    },
    responseTypeUrl: (bytes) => readStringField(bytes, RESPONSE_TYPE_URL_FIELD),
    decodeResponse(bytes) {
      const response = schema.deltaDiscoveryResponse.decode(bytes);
      const resources = response.resources.flatMap((r) => (r.resource ? [r.resource] : []));
      return { typeUrl: response.type_url, nonce: response.nonce, version: response.system_version_info, resources };
    },
    encodeRequest(request) {
      return schema.deltaDiscoveryRequest.encode({
        node: request.node ?? null,
        type_url: request.typeUrl,
        resource_names_subscribe: [],
        resource_names_unsubscribe: [],
        initial_resource_versions: {},
        response_nonce: request.nonce ?? '',
        error_detail: request.errorDetail ?? null,
      });
    },
  };
}
