/**
 * A reference hop for the xDS benchmark: the least a Node process can do between istiod and Envoy.
 * It terminates TLS exactly as the agent's upstream does (root certificate, istiod's name, ALPN h2)
 * and copies bytes both ways between that connection and a unix socket, without reading HTTP/2 or
 * gRPC at all. The client has to send istiod's headers itself. Not something to deploy: it cannot
 * intercept NDS, add the token, or survive a reconnect; it shows what terminating TLS alone costs.
 *
 *   node --import tsx bench/tls-relay-process.ts <socket> <host> <port> <server name> <root cert>
 *
 * Prints `ready` once the socket is listening.
 */
import { readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';

const [socketPath = '', host = '', port = '0', servername = '', rootPath = ''] = process.argv.slice(2);
const ca = readFileSync(rootPath);
const BACKLOG_BYTES = 8 * 1024 * 1024;
rmSync(socketPath, { force: true });
const server = net.createServer((downstream) => {
  const upstream = tls.connect({ host, port: Number(port), servername, ca, ALPNProtocols: ['h2'], minVersion: 'TLSv1.2' });
  downstream.pipe(upstream);
  // Istio-bound bytes are few; Envoy-bound ones are written a whole event-loop pass at a time, as the
  // agent does: written record by record, the client's reads would cost it about twice as much.
  upstream.on('data', (chunk: Buffer) => {
    if (!downstream.writableCorked) {
      downstream.cork();
      setImmediate(() => downstream.uncork());
    }
    downstream.write(chunk);
    // Held back past the agent's own limit (8 MB), not the stream's 16 KB high-water mark.
    if (downstream.writableLength > BACKLOG_BYTES && !upstream.isPaused()) {
      upstream.pause();
      downstream.once('drain', () => upstream.resume());
    }
  });
  upstream.on('error', () => downstream.destroy());
  downstream.on('error', () => upstream.destroy());
});
server.listen(socketPath, () => process.stdout.write('ready\n'));
