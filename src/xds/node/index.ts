/** The xDS node pilot-agent describes its proxy with, and the gRPC bootstrap built from it. */
export { buildNode, toProtoNode, type BuildNodeOptions, type XdsLocality, type XdsNode } from './node-metadata.js';
export {
  buildGrpcBootstrap,
  formatGrpcBootstrap,
  grpcBootstrapPath,
  writeGrpcBootstrap,
  DEFAULT_GRPC_BOOTSTRAP_FILE,
  GRPC_CERT_REFRESH_INTERVAL,
  GRPC_SERVER_LISTENER_NAME_TEMPLATE,
  type GrpcBootstrap,
} from './grpc-bootstrap.js';
export { GrpcBootstrapFile } from './grpc-bootstrap-file.js';
