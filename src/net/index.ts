export { bindUnixSocket, isSocketLive, shutdownServer } from './unix-socket.js';
export { describeGrpcError, goCodeName, isGrpcError } from './grpc-status.js';
