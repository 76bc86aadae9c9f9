import { connect } from 'node:net';
import { chmod, mkdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { AgentError, errorMessage } from '../errors.js';

/** True if something accepts connections on the unix socket at `file` (probe bounded by `timeoutMs`). */
export function isSocketLive(file: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(file);
    const done = (live: boolean) => {
      socket.destroy();
      resolve(live);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Binds a gRPC server on a unix socket the way pilot-agent does: refuse to steal a live socket, remove a
 * stale one, create the parent directory, listen, then open the socket to every local user (0666).
 */
export async function bindUnixSocket(server: grpc.Server, file: string, options: { parentMode?: number; retries?: number } = {}): Promise<void> {
  const retries = options.retries ?? 5;
  await prepareSocketPath(file, options.parentMode);
  let delay = 1000;
  for (let attempt = 1; ; attempt++) {
    try {
      await new Promise<void>((resolve, reject) =>
        server.bindAsync(`unix://${file}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())),
      );
      break;
    } catch (err) {
      // grpc-js remembers a failed bind for the same address: forget it, or every retry repeats the error.
      server.unbind(`unix://${file}`);
      if (attempt >= retries) {
        throw new AgentError('SOCKET_LISTEN_FAILED', `listen on unix socket ${file}: ${errorMessage(err)}`, { cause: err });
      }
      await new Promise((r) => setTimeout(r, delay));
      delay *= 2;
    }
  }
  await chmod(file, 0o666);
}

/** Readies `file` for listening: refuse to steal a live socket, remove a stale one, create the parent. */
export async function prepareSocketPath(file: string, parentMode = 0o755): Promise<void> {
  try {
    await stat(file);
    if (await isSocketLive(file)) {
      throw new AgentError('SOCKET_IN_USE', `another server is already listening on ${file}`);
    }
    await rm(file, { force: true });
  } catch (err) {
    if (err instanceof AgentError) throw err;
    // no stale file: nothing to remove
  }
  await mkdir(path.dirname(file), { recursive: true, mode: parentMode });
}

/** Stops a gRPC server, giving in-flight calls `graceMs` before forcing them closed. */
export async function shutdownServer(server: grpc.Server, graceMs = 1000): Promise<void> {
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    timer.unref();
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
