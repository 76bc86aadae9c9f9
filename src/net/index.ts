export { bindUnixSocket, isSocketLive, shutdownServer } from './unix-socket.js';
