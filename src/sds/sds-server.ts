import { randomUUID } from 'node:crypto';
import { access, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { errorMessage } from '../errors.js';
import type { Component } from '../lifecycle.js';
import type { Logger } from '../log/index.js';
import { bindUnixSocket, shutdownServer } from '../net/index.js';
import type { Any, DiscoveryRequest, DiscoveryResponse, ProtoSchema, Secret } from '../proto/index.js';
import { ROOT_SECRET, WORKLOAD_SECRET, type SecretName } from '../secrets/index.js';

/** What SDS needs from the secret cache. */
export interface SecretSource {
  getWorkloadSecret(): Promise<{ certChainPem: string; privateKeyPem: string }>;
  getRootCert(): Promise<string>;
  onSecretChange(listener: (name: SecretName) => void): () => void;
}

export interface SdsServerDeps {
  socketPath: string;
  /** Only for log lines: Istio prints the socket path relative to its working directory. */
  cwd: string;
  schema: ProtoSchema;
  secrets: SecretSource;
  /** [sds] */
  log: Logger;
  /** [ads]: connection and ACK lines, as Istio's SDS service logs them. */
  adsLog: Logger;
}

const FILE_CERT_PREFIX = 'file-cert:';
const FILE_ROOT_PREFIX = 'file-root:';
// OS trust bundles, in the order Istio probes them for `file-root:system`.
const SYSTEM_ROOT_BUNDLES = [
  '/etc/ssl/certs/ca-certificates.crt',
  '/etc/pki/tls/certs/ca-bundle.crt',
  '/etc/ssl/ca-bundle.pem',
  '/etc/pki/tls/cacert.pem',
  '/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem',
  '/etc/ssl/cert.pem',
];

type SdsStream = grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>;

interface Connection {
  readonly id: number;
  readonly stream: SdsStream;
  nodeId?: string;
  names: Set<string>;
  lastNonce: string;
  /** Requests are handled one at a time, in order, even while a secret is still being issued. */
  queue: Promise<void>;
}

/**
 * Envoy's SDS on a unix socket: `StreamSecrets` serving `default` (workload certificate and key) and
 * `ROOTCA` (trust bundle), with Istio's ACK/NACK/nonce rules, and a push on every stream that watches a
 * secret when it changes. DeltaSecrets and FetchSecrets answer UNIMPLEMENTED, as in pilot-agent.
 */
export class SdsServer implements Component {
  readonly name = 'sds';
  readonly #deps: SdsServerDeps;
  readonly #connections = new Set<Connection>();
  #server?: grpc.Server;
  #unsubscribe?: () => void;
  #connectionCounter = 0;
  #versionCounter = 0;
  #closed?: Promise<void>;

  constructor(deps: SdsServerDeps) {
    this.#deps = deps;
  }

  get connectionCount(): number {
    return this.#connections.size;
  }

  async start(_signal: AbortSignal): Promise<void> {
    const { log, socketPath, cwd, schema, secrets } = this.#deps;
    log.info('Starting SDS grpc server');
    const server = new grpc.Server({ 'grpc.max_receive_message_length': -1, 'grpc.max_send_message_length': -1 });
    server.addService(schema.sdsService, {
      StreamSecrets: (stream: SdsStream) => this.#handleStream(stream),
    });
    this.#server = server;
    await bindUnixSocket(server, socketPath);
    this.#unsubscribe = secrets.onSecretChange((name) => this.#push(name));
    log.info(`Starting SDS server for workload certificates, will listen on "${path.relative(cwd, socketPath) || socketPath}"`);
  }

  close(): Promise<void> {
    return (this.#closed ??= this.#shutdown());
  }

  async #shutdown(): Promise<void> {
    this.#unsubscribe?.();
    for (const connection of this.#connections) connection.stream.end();
    this.#connections.clear();
    if (this.#server) await shutdownServer(this.#server);
    await rm(this.#deps.socketPath, { force: true });
  }

  #handleStream(stream: SdsStream): void {
    const connection: Connection = { id: ++this.#connectionCounter, stream, names: new Set(), lastNonce: '', queue: Promise.resolve() };
    const peer = stream.getPeer();
    let ended = false;
    const finish = () => {
      if (ended) return;
      ended = true;
      this.#connections.delete(connection);
      if (connection.nodeId !== undefined) this.#deps.adsLog.info(`ADS: "${peer}" ${connection.id} terminated`);
    };
    stream.on('data', (request: DiscoveryRequest) => {
      connection.queue = connection.queue
        .then(() => this.#onRequest(connection, request))
        .catch((err: unknown) => this.#fail(connection, grpc.status.INTERNAL, errorMessage(err)));
    });
    stream.on('end', () => {
      finish();
      stream.end();
    });
    stream.on('error', finish);
    stream.on('close', finish);
    stream.on('cancelled', finish);
  }

  async #onRequest(connection: Connection, request: DiscoveryRequest): Promise<void> {
    const { adsLog } = this.#deps;
    if (connection.nodeId === undefined) {
      if (!request.node) {
        this.#fail(connection, grpc.status.INVALID_ARGUMENT, 'missing node information');
        return;
      }
      connection.nodeId = request.node.id;
      this.#connections.add(connection);
      adsLog.info(`ADS: new connection for node:${connection.id}`);
    }
    if (request.error_detail && request.error_detail.code !== 0) {
      adsLog.warn(`ADS:SDS: ACK ERROR ${connection.id} ${request.error_detail.code}:${request.error_detail.message}`);
      return;
    }
    const requested = new Set(request.resource_names);
    // No nonce, or a nonce from before a reconnect (nothing sent on this stream yet): a fresh request.
    if (request.response_nonce === '' || connection.lastNonce === '') {
      connection.names = requested;
      await this.#send(connection, [...requested]);
      return;
    }
    if (request.response_nonce !== connection.lastNonce) {
      adsLog.debug(`ADS:SDS: stale nonce ${request.response_nonce} on connection ${connection.id}, ignoring`);
      return;
    }
    const added = [...requested].filter((name) => !connection.names.has(name));
    connection.names = requested;
    if (added.length === 0) {
      adsLog.debug(`ADS:SDS: ACK ${connection.id}`, { version: request.version_info, nonce: request.response_nonce });
      return;
    }
    await this.#send(connection, added);
  }

  #push(name: SecretName): void {
    for (const connection of this.#connections) {
      if (!connection.names.has(name)) continue;
      connection.queue = connection.queue
        .then(() => this.#send(connection, [name]))
        .catch((err: unknown) => this.#fail(connection, grpc.status.INTERNAL, errorMessage(err)));
    }
  }

  async #send(connection: Connection, names: readonly string[]): Promise<void> {
    if (names.length === 0) return;
    const resources: Any[] = [];
    for (const name of names) resources.push(this.#deps.schema.packSecret(await this.#secret(name)));
    const nonce = randomUUID();
    const version = `${new Date().toISOString().replace(/\.\d{3}Z$/, 'Z')}/${++this.#versionCounter}`;
    connection.lastNonce = nonce;
    connection.stream.write({ version_info: version, resources, type_url: resources[0]?.type_url ?? '', nonce });
    for (const name of names) this.#deps.log.info(`SDS: PUSH resource=${name}`, { version, node: connection.nodeId });
  }

  async #secret(name: string): Promise<Secret> {
    const { secrets } = this.#deps;
    if (name === WORKLOAD_SECRET) {
      const secret = await secrets.getWorkloadSecret();
      return {
        name,
        tls_certificate: {
          certificate_chain: { inline_bytes: Buffer.from(secret.certChainPem) },
          private_key: { inline_bytes: Buffer.from(secret.privateKeyPem) },
        },
      };
    }
    if (name === ROOT_SECRET) {
      return { name, validation_context: { trusted_ca: { inline_bytes: Buffer.from(await secrets.getRootCert()) } } };
    }
    if (name.startsWith(FILE_CERT_PREFIX)) {
      const [certFile, keyFile] = name.slice(FILE_CERT_PREFIX.length).split('~');
      if (!certFile || !keyFile) throw new Error(`invalid resource name ${name}: want file-cert:<cert>~<key>`);
      const [chain, key] = await Promise.all([readFile(this.#resolve(certFile)), readFile(this.#resolve(keyFile))]);
      return { name, tls_certificate: { certificate_chain: { inline_bytes: chain }, private_key: { inline_bytes: key } } };
    }
    if (name.startsWith(FILE_ROOT_PREFIX)) {
      const file = name.slice(FILE_ROOT_PREFIX.length);
      const bundle = file === 'system' ? await firstExisting(SYSTEM_ROOT_BUNDLES) : this.#resolve(file);
      return { name, validation_context: { trusted_ca: { inline_bytes: await readFile(bundle) } } };
    }
    throw new Error(`unknown resource name ${name}`);
  }

  /** Relative file names in `file-cert:`/`file-root:` resolve against the agent's working directory. */
  #resolve(file: string): string {
    return path.resolve(this.#deps.cwd, file);
  }

  /** Ends a stream with an error status: Envoy retries and keeps the secret it has. */
  #fail(connection: Connection, code: grpc.status, details: string): void {
    this.#deps.log.warn(`SDS: closing stream ${connection.id}: ${details}`);
    this.#connections.delete(connection);
    connection.stream.emit('error', { code, details, metadata: new grpc.Metadata() });
  }
}

async function firstExisting(files: readonly string[]): Promise<string> {
  for (const file of files) {
    try {
      await access(file);
      return file;
    } catch {
      // try the next one
    }
  }
  throw new Error('no system root certificate bundle found');
}
