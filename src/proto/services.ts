import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
import type protobuf from 'protobufjs';
import type {
  DeltaDiscoveryRequest,
  DeltaDiscoveryResponse,
  DiscoveryRequest,
  DiscoveryResponse,
  IstioCertificateRequest,
  IstioCertificateResponse,
  NameTable,
  Secret,
} from './messages.js';
import { loadSchema } from './schema.js';
import { SECRET_TYPE_URL } from './type-urls.js';

export interface Codec<T> {
  encode(message: T): Buffer;
  /** Plain objects with every field present (defaults filled in). */
  decode(bytes: Uint8Array): T;
  /**
   * protobufjs message objects, without the plain-object copy `decode` makes: about half the
   * allocation for big messages. Absent fields read their default; treat the result as read-only.
   */
  decodeMessage(bytes: Uint8Array): T;
}

const DECODE_OPTIONS: protobuf.IConversionOptions = { longs: Number, enums: String, defaults: true, arrays: true, objects: true };

/** Typed encode/decode for one message type of a loaded schema. */
export function codec<T>(root: protobuf.Root, typeName: string): Codec<T> {
  const type = root.lookupType(typeName);
  return {
    encode: (message) => {
      // Enums may be given by name, which verify() only accepts once fromObject() has converted them.
      const converted = type.fromObject(message as Record<string, unknown>);
      const err = type.verify(converted);
      if (err) throw new TypeError(`${typeName}: ${err}`);
      const bytes = type.encode(converted).finish();
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    },
    decode: (bytes) => type.toObject(type.decode(bytes), DECODE_OPTIONS) as T,
    decodeMessage: (bytes) => type.decode(bytes) as unknown as T,
  };
}

function method<Req, Res>(
  path: string,
  request: Codec<Req>,
  response: Codec<Res>,
  requestStream: boolean,
  responseStream: boolean,
): MethodDefinition<Req, Res> {
  return {
    path,
    requestStream,
    responseStream,
    requestSerialize: (m: Req) => request.encode(m),
    requestDeserialize: (b: Buffer) => request.decode(b),
    responseSerialize: (m: Res) => response.encode(m),
    responseDeserialize: (b: Buffer) => response.decode(b),
  };
}

export interface CaService extends ServiceDefinition {
  CreateCertificate: MethodDefinition<IstioCertificateRequest, IstioCertificateResponse>;
}

export interface SdsService extends ServiceDefinition {
  StreamSecrets: MethodDefinition<DiscoveryRequest, DiscoveryResponse>;
  DeltaSecrets: MethodDefinition<DeltaDiscoveryRequest, DeltaDiscoveryResponse>;
  FetchSecrets: MethodDefinition<DiscoveryRequest, DiscoveryResponse>;
}

export interface AdsService extends ServiceDefinition {
  StreamAggregatedResources: MethodDefinition<DiscoveryRequest, DiscoveryResponse>;
  DeltaAggregatedResources: MethodDefinition<DeltaDiscoveryRequest, DeltaDiscoveryResponse>;
}

/** Codecs and gRPC service definitions over one loaded schema. Build once, share read-only. */
export class ProtoSchema {
  readonly root: protobuf.Root;
  readonly discoveryRequest: Codec<DiscoveryRequest>;
  readonly discoveryResponse: Codec<DiscoveryResponse>;
  readonly deltaDiscoveryRequest: Codec<DeltaDiscoveryRequest>;
  readonly deltaDiscoveryResponse: Codec<DeltaDiscoveryResponse>;
  readonly secret: Codec<Secret>;
  readonly certificateRequest: Codec<IstioCertificateRequest>;
  readonly certificateResponse: Codec<IstioCertificateResponse>;
  readonly nameTable: Codec<NameTable>;
  readonly caService: CaService;
  readonly sdsService: SdsService;
  readonly adsService: AdsService;

  constructor(root: protobuf.Root = loadSchema()) {
    this.root = root;
    this.discoveryRequest = codec(root, 'envoy.service.discovery.v3.DiscoveryRequest');
    this.discoveryResponse = codec(root, 'envoy.service.discovery.v3.DiscoveryResponse');
    this.deltaDiscoveryRequest = codec(root, 'envoy.service.discovery.v3.DeltaDiscoveryRequest');
    this.deltaDiscoveryResponse = codec(root, 'envoy.service.discovery.v3.DeltaDiscoveryResponse');
    this.secret = codec(root, 'envoy.extensions.transport_sockets.tls.v3.Secret');
    this.certificateRequest = codec(root, 'istio.v1.auth.IstioCertificateRequest');
    this.certificateResponse = codec(root, 'istio.v1.auth.IstioCertificateResponse');
    this.nameTable = codec(root, 'istio.networking.nds.v1.NameTable');

    const req = this.discoveryRequest;
    const res = this.discoveryResponse;
    const dreq = this.deltaDiscoveryRequest;
    const dres = this.deltaDiscoveryResponse;
    this.caService = {
      CreateCertificate: method(
        '/istio.v1.auth.IstioCertificateService/CreateCertificate',
        this.certificateRequest,
        this.certificateResponse,
        false,
        false,
      ),
    };
    const sds = '/envoy.service.secret.v3.SecretDiscoveryService';
    this.sdsService = {
      StreamSecrets: method(`${sds}/StreamSecrets`, req, res, true, true),
      DeltaSecrets: method(`${sds}/DeltaSecrets`, dreq, dres, true, true),
      FetchSecrets: method(`${sds}/FetchSecrets`, req, res, false, false),
    };
    const ads = '/envoy.service.discovery.v3.AggregatedDiscoveryService';
    this.adsService = {
      StreamAggregatedResources: method(`${ads}/StreamAggregatedResources`, req, res, true, true),
      DeltaAggregatedResources: method(`${ads}/DeltaAggregatedResources`, dreq, dres, true, true),
    };
  }

  /** Wraps a Secret in the Any that a DiscoveryResponse carries. */
  packSecret(secret: Secret): { type_url: string; value: Buffer } {
    return { type_url: SECRET_TYPE_URL, value: this.secret.encode(secret) };
  }
}
