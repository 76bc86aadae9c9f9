export { bindUnixSocket, isSocketLive, shutdownServer } from './unix-socket.js';
export { describeGrpcError, goCodeName, isGrpcError } from './grpc-status.js';
export { IstiodDialer } from './istiod-dialer.js';
export type { IstiodDialerDeps } from './istiod-dialer.js';
