export { bindUnixSocket, isSocketLive, prepareSocketPath, shutdownServer } from './unix-socket.js';
export { describeGrpcError, goCodeName, isGrpcError } from './grpc-status.js';
export { FLOW_CONTROL_WINDOW, IstiodDialer } from './istiod-dialer.js';
export type { IstiodDialerDeps } from './istiod-dialer.js';
export { formatIp, ipBytes } from './ip.js';
