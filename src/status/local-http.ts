import http from 'node:http';
import { errorMessage } from '../errors.js';

export interface LocalResponse {
  status: number;
  contentType: string | undefined;
  body: Buffer;
}

/**
 * GETs from a local endpoint (Envoy's admin and Prometheus ports, the app's metrics) over the status
 * server's own keep-alive agent, so close() can drop those sockets. Any failure, including a status
 * other than 200, a body over `maxBytes` or the timeout, rejects with a one-line message.
 */
export function localGet(
  url: URL,
  options: { agent: http.Agent; headers?: http.OutgoingHttpHeaders; timeoutMs: number; signal: AbortSignal; maxBytes?: number },
): Promise<LocalResponse> {
  return new Promise((resolve, reject) => {
    if (url.protocol !== 'http:') {
      reject(new Error(`unsupported scheme ${url.protocol} in ${url.href}`));
      return;
    }
    const signal = AbortSignal.any([options.signal, AbortSignal.timeout(options.timeoutMs)]);
    const fail = (err: unknown): void => {
      const reason = signal.aborted && !options.signal.aborted ? `timeout after ${options.timeoutMs}ms` : errorMessage(err);
      reject(new Error(`Get "${url.href}": ${reason}`));
    };
    const req = http.get(url, { agent: options.agent, headers: options.headers, signal }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (options.maxBytes !== undefined && size > options.maxBytes) {
          req.destroy(new Error(`response larger than ${options.maxBytes} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      res.on('error', fail);
      res.on('end', () => {
        if (res.statusCode !== 200) {
          reject(new Error(`Get "${url.href}": status code ${res.statusCode ?? 0}`));
          return;
        }
        resolve({ status: res.statusCode, contentType: res.headers['content-type'], body: Buffer.concat(chunks, size) });
      });
    });
    req.on('error', fail);
  });
}
