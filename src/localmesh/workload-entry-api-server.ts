import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { stringify } from 'yaml';
import { AgentError, errorMessage } from '../errors.js';
import type { Logger } from '../log/index.js';
import { WORKLOAD_ENTRY_API_VERSION, type WorkloadEntry } from './workload-entry-registry.js';

/** Where the read-only API listens: loopback only, since it answers anyone without authentication. */
const API_HOST = '127.0.0.1';
const RESOURCE = 'workloadentries';
const GROUP = 'networking.istio.io';
const PREFIX = `/apis/${WORKLOAD_ENTRY_API_VERSION}`;

export interface WorkloadEntrySource {
  readonly workloadEntries: readonly WorkloadEntry[];
  /** The resource version of the whole collection, as a List reports it. */
  readonly workloadEntriesVersion: string;
}

/** A Kubernetes `Status` object, as the API server answers a failed request. */
interface StatusObject {
  readonly kind: 'Status';
  readonly apiVersion: 'v1';
  readonly metadata: Record<string, never>;
  readonly status: 'Failure';
  readonly message: string;
  readonly reason: string;
  readonly details?: { readonly name: string; readonly group: string; readonly kind: string };
  readonly code: number;
}

function failure(code: number, reason: string, message: string, details?: StatusObject['details']): StatusObject {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? { details } : {}), code };
}

function wantsYaml(request: IncomingMessage, url: URL): boolean {
  const format = url.searchParams.get('format');
  if (format !== null) return format === 'yaml';
  return /\b(application|text)\/(x-)?yaml\b/.test(request.headers.accept ?? '');
}

/**
 * A read-only slice of the Kubernetes API for the WorkloadEntries the local control plane registers,
 * so that a demo can show them as `kubectl get workloadentries -o yaml` would:
 *
 * - `GET /apis/networking.istio.io/v1/workloadentries` (all namespaces) and
 *   `GET /apis/networking.istio.io/v1/namespaces/<ns>/workloadentries`: a `WorkloadEntryList`;
 * - `GET /apis/networking.istio.io/v1/namespaces/<ns>/workloadentries/<name>`: the entry, or a 404
 *   `Status` as the API server words it.
 *
 * JSON, or YAML with `?format=yaml` or `Accept: application/yaml`.
 */
export class WorkloadEntryApiServer {
  readonly #source: WorkloadEntrySource;
  readonly #log: Logger;
  #server?: Server;
  #port?: number;

  constructor(deps: { source: WorkloadEntrySource; log: Logger }) {
    this.#source = deps.source;
    this.#log = deps.log;
  }

  /** `http://127.0.0.1:<port>`. */
  get address(): string {
    if (this.#port === undefined || !this.#server) throw new Error('the WorkloadEntry API is not listening');
    return `http://${API_HOST}:${this.#port}`;
  }

  /** Listens on `port` (0 = ephemeral); after the first start the bound port is kept. */
  async listen(port: number): Promise<void> {
    if (this.#server) return;
    const server = createServer((request, response) => this.#handle(request, response));
    const target = this.#port ?? port;
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(target, API_HOST, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      server.close();
      throw new AgentError('SOCKET_LISTEN_FAILED', `local control plane: WorkloadEntry API failed to listen on ${API_HOST}:${target}: ${errorMessage(err)}`, {
        cause: err,
      });
    }
    this.#server = server;
    this.#port = (server.address() as AddressInfo).port;
    this.#log.info('workload entry API listening', { address: this.address });
  }

  async close(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await closed;
  }

  #handle(request: IncomingMessage, response: ServerResponse): void {
    const url = new URL(request.url ?? '/', `http://${API_HOST}`);
    const isYaml = wantsYaml(request, url);
    const send = (code: number, body: unknown): void => {
      const text = isYaml ? stringify(body) : `${JSON.stringify(body, null, 2)}\n`;
      response.writeHead(code, { 'Content-Type': isYaml ? 'application/yaml' : 'application/json' });
      response.end(request.method === 'HEAD' ? undefined : text);
    };
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      send(405, failure(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource (${request.method ?? ''})`));
      return;
    }
    const route = this.#route(url.pathname);
    this.#log.debug('workload entry API request', { path: url.pathname, yaml: isYaml });
    if (!route) {
      send(404, failure(404, 'NotFound', 'the server could not find the requested resource'));
      return;
    }
    const entries = this.#source.workloadEntries.filter((entry) => route.namespace === undefined || entry.metadata.namespace === route.namespace);
    if (route.name === undefined) {
      send(200, {
        apiVersion: WORKLOAD_ENTRY_API_VERSION,
        kind: 'WorkloadEntryList',
        metadata: { resourceVersion: this.#source.workloadEntriesVersion },
        items: entries,
      });
      return;
    }
    const entry = entries.find((candidate) => candidate.metadata.name === route.name);
    if (entry) send(200, entry);
    else send(404, failure(404, 'NotFound', `${RESOURCE}.${GROUP} "${route.name}" not found`, { name: route.name, group: GROUP, kind: RESOURCE }));
  }

  #route(pathname: string): { namespace?: string; name?: string } | undefined {
    if (!pathname.startsWith(`${PREFIX}/`)) return undefined;
    let parts: string[];
    try {
      parts = pathname.slice(PREFIX.length + 1).replace(/\/$/, '').split('/').map(decodeURIComponent);
    } catch {
      return undefined;
    }
    if (parts.length === 1 && parts[0] === RESOURCE) return {};
    if (parts[0] !== 'namespaces' || parts[2] !== RESOURCE || !parts[1]) return undefined;
    if (parts.length === 3) return { namespace: parts[1] };
    if (parts.length === 4 && parts[3]) return { namespace: parts[1], name: parts[3] };
    return undefined;
  }
}
