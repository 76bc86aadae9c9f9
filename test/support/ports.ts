import { createServer, type Server } from 'node:net';

/** Starts `server` listening on `host:port` (0: any free port); resolves with the bound port, rejects on a listen error. */
export async function listenOn(server: Server, port: number, host = '127.0.0.1'): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  return typeof address === 'object' && address ? address.port : 0;
}

/** A loopback TCP port that was free a moment ago (bound, then released), for servers the tests start. */
export async function freePort(): Promise<number> {
  const server = createServer();
  const port = await listenOn(server, 0);
  await new Promise((resolve) => server.close(resolve));
  return port;
}
