/**
 * Proxyless gRPC for tests: a plaintext echo backend, and a real @grpc/grpc-js-xds client run in its own
 * process (xds-client.ts: grpc-js-xds registers process-wide resolvers and reads its bootstrap once).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as grpc from '@grpc/grpc-js';

const CLIENT_SCRIPT = fileURLToPath(new URL('./xds-client.ts', import.meta.url));
// mocha may load this file through tsx's CommonJS hook, where import.meta.resolve does not exist.
const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
export const ECHO_METHOD = '/localmesh.test.Echo/Echo';

export interface CleanupRegistry {
  add(task: () => unknown): void;
}

export interface ClientResult {
  readonly ok: boolean;
  readonly reply?: string;
  readonly code?: number;
  readonly details?: string;
}

/** A plaintext gRPC server with one unary method answering `<name>: <request>` (raw bytes). */
export async function startEchoBackend(cleanups: CleanupRegistry, name: string): Promise<{ port: number; calls: string[] }> {
  const calls: string[] = [];
  const server = new grpc.Server();
  const identity = (bytes: Buffer): Buffer => bytes;
  const echo = {
    path: ECHO_METHOD,
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  };
  server.addService(
    { Echo: echo },
    {
      Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
        calls.push(call.request.toString('utf8'));
        callback(null, Buffer.from(`${name}: ${call.request.toString('utf8')}`));
      },
    },
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound))),
  );
  cleanups.add(() => server.forceShutdown());
  return { port, calls };
}

/** Runs xds-client.ts in its own Node process; it stays up (and connected) until its stdin closes. */
export function startXdsClient(
  cleanups: CleanupRegistry,
  bootstrapFile: string,
  target: string,
  message: string,
): { child: ChildProcessWithoutNullStreams; result: (timeoutMs: number) => Promise<ClientResult>; stderr: () => string } {
  const child = spawn(process.execPath, ['--import', TSX_LOADER, CLIENT_SCRIPT, target, ECHO_METHOD, message], {
    env: { ...process.env, GRPC_XDS_BOOTSTRAP: bootstrapFile },
    stdio: 'pipe',
  });
  const exited = once(child, 'exit');
  cleanups.add(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.stdin.end();
    const timeout = AbortSignal.timeout(3000);
    await Promise.race([exited, sleep(3000, undefined, { signal: timeout }).catch(() => undefined)]);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const lines = createInterface({ input: child.stdout });
  const firstLine = once(lines, 'line') as Promise<[string]>;
  const result = async (timeoutMs: number): Promise<ClientResult> => {
    const timer = new AbortController();
    cleanups.add(() => timer.abort());
    const line = await Promise.race([
      firstLine.then(([text]) => text),
      exited.then(([code]) => Promise.reject(new Error(`xds client exited with ${String(code)} before answering; stderr:\n${stderr}`))),
      sleep(timeoutMs, undefined, { signal: timer.signal }).then(() =>
        Promise.reject(new Error(`xds client gave no answer within ${timeoutMs} ms; stderr:\n${stderr}`)),
      ),
    ]);
    timer.abort();
    return JSON.parse(line) as ClientResult;
  };
  return { child, result, stderr: () => stderr };
}
