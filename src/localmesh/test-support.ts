// Helpers for the localmesh tests: real grpc-js clients over TLS, CSRs, openssl. Not exported from index.ts.
import 'reflect-metadata';
import { execFile } from 'node:child_process';
import { KeyObject, webcrypto } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { Metadata, type ClientDuplexStream, type MethodDefinition, type ServiceError } from '@grpc/grpc-js';
import * as x509 from '@peculiar/x509';
import {
  type DeltaDiscoveryRequest,
  type DiscoveryRequest,
  type IstioCertificateRequest,
  type IstioCertificateResponse,
  type ProtoSchema,
} from '../proto/index.js';
import { LocalControlPlane } from './local-control-plane.js';

const run = promisify(execFile);

/** Cleanups registered as resources are created, run in reverse by `runAll()` (from afterEach). */
export class Cleanups {
  readonly #tasks: (() => unknown)[] = [];
  add(task: () => unknown): void {
    this.#tasks.push(task);
  }
  async runAll(): Promise<void> {
    for (let task = this.#tasks.pop(); task; task = this.#tasks.pop()) await task();
  }
}

export async function makeTempDir(cleanups: Cleanups): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'localmesh-test-'));
  cleanups.add(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

export interface ClientIdentity {
  readonly certChainPem: string;
  readonly keyPem: string;
}

/** A TLS client for the control plane, verifying it as istiod.istio-system.svc like the agent does. */
export function connect(cleanups: Cleanups, port: number, rootPem: string, identity?: ClientIdentity): grpc.Client {
  const credentials = identity
    ? grpc.credentials.createSsl(Buffer.from(rootPem), Buffer.from(identity.keyPem), Buffer.from(identity.certChainPem))
    : grpc.credentials.createSsl(Buffer.from(rootPem));
  const client = new grpc.Client(`127.0.0.1:${port}`, credentials, {
    'grpc.ssl_target_name_override': 'istiod.istio-system.svc',
    'grpc.default_authority': 'istiod.istio-system.svc',
  });
  cleanups.add(() => client.close());
  return client;
}

export function authMetadata(options: { token?: string; clusterId?: string } = {}): Metadata {
  const metadata = new Metadata();
  if (options.token !== undefined) metadata.set('authorization', `Bearer ${options.token}`);
  if (options.clusterId !== undefined) metadata.set('ClusterID', options.clusterId);
  return metadata;
}

/** A started control plane, a TLS client to it and a VM's call metadata (token, ClusterID); closed by `cleanups`. */
export async function startWithClient(cleanups: Cleanups, schema: ProtoSchema): Promise<{ cp: LocalControlPlane; client: grpc.Client; metadata: Metadata }> {
  const cp = new LocalControlPlane({ schema });
  cleanups.add(() => cp.close());
  await cp.start();
  const client = connect(cleanups, cp.port, cp.rootCertPem);
  const token = await cp.issueToken({ namespace: 'istio-demo', serviceAccount: 'vm' });
  return { cp, client, metadata: authMetadata({ token, clusterId: 'Kubernetes' }) };
}

export function createCertificate(
  client: grpc.Client,
  schema: ProtoSchema,
  request: IstioCertificateRequest,
  metadata: Metadata,
  options: { waitForReady?: boolean } = {},
): Promise<IstioCertificateResponse> {
  const method = schema.caService.CreateCertificate;
  const callMetadata = metadata.clone();
  // grpc-js takes wait-for-ready from the metadata options, not from the call options.
  if (options.waitForReady) callMetadata.setOptions({ waitForReady: true });
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      method.path,
      method.requestSerialize,
      method.responseDeserialize,
      request,
      callMetadata,
      { deadline: Date.now() + 10_000 },
      (err, response) => (err ? reject(err) : response ? resolve(response) : reject(new Error('empty response'))),
    );
  });
}

/** Rejects with the ServiceError a call failed with; fails if it succeeded. */
export async function expectStatus(promise: Promise<unknown>): Promise<ServiceError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof Error && 'code' in err) return err as ServiceError;
    throw err;
  }
  throw new Error('expected the call to fail');
}

export type CsrKind = 'RSA' | 'P-256' | 'P-384';

/** A CSR shaped like the agent's: empty O, critical URI SAN; returns it with its PKCS#8 key. */
export async function generateCsr(kind: CsrKind, uri = 'spiffe://cluster.local/ns/vm/sa/vm-sa'): Promise<{ csrPem: string; keyPem: string }> {
  const algorithm =
    kind === 'RSA'
      ? { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]) }
      : { name: 'ECDSA', namedCurve: kind, hash: kind === 'P-384' ? 'SHA-384' : 'SHA-256' };
  const keys = await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify']);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create(
    {
      name: [{ O: [''] }],
      keys,
      signingAlgorithm: algorithm,
      extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: uri }], true)],
    },
    webcrypto,
  );
  const keyPem = KeyObject.from(keys.privateKey).export({ type: 'pkcs8', format: 'pem' }).toString();
  return { csrPem: csr.toString('pem'), keyPem };
}

export async function openssl(args: string[]): Promise<string> {
  const { stdout, stderr } = await run('openssl', args);
  return stdout + stderr;
}

/** Runs `openssl verify -CAfile root.pem leaf.pem` in `dir`; rejects (with openssl's output) on failure. */
export async function opensslVerify(dir: string, rootPem: string, leafPem: string): Promise<string> {
  const rootFile = path.join(dir, 'root.pem');
  const leafFile = path.join(dir, 'leaf.pem');
  await writeFile(rootFile, rootPem);
  await writeFile(leafFile, leafPem);
  return openssl(['verify', '-CAfile', rootFile, leafFile]);
}

/** Reads a client stream message by message, with timeouts; remembers how the stream ended. */
export class StreamReader<T> {
  readonly #queue: T[] = [];
  readonly #waiting: ((value: T) => void)[] = [];
  readonly ended: Promise<ServiceError | undefined>;

  constructor(stream: NodeJS.EventEmitter) {
    this.ended = new Promise((resolve) => {
      stream.on('error', (err: ServiceError) => resolve(err));
      stream.on('end', () => resolve(undefined));
    });
    stream.on('data', (message: T) => {
      const waiter = this.#waiting.shift();
      if (waiter) waiter(message);
      else this.#queue.push(message);
    });
  }

  get pending(): number {
    return this.#queue.length;
  }

  next(timeoutMs = 5000): Promise<T> {
    const queued = this.#queue.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const deliver = (value: T): void => {
        clearTimeout(timer);
        resolve(value);
      };
      const timer = setTimeout(() => {
        this.#waiting.splice(this.#waiting.indexOf(deliver), 1);
        reject(new Error(`no stream message within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiting.push(deliver);
    });
  }
}

/** One bidirectional ADS stream with a reader on its responses; cancelled by `cleanups`. */
function openAds<Request, Response>(
  cleanups: Cleanups,
  client: grpc.Client,
  method: MethodDefinition<Request, Response>,
  metadata: Metadata,
): { stream: ClientDuplexStream<Request, Response>; reader: StreamReader<Response> } {
  const stream = client.makeBidiStreamRequest(method.path, method.requestSerialize, method.responseDeserialize, metadata);
  const reader = new StreamReader<Response>(stream);
  cleanups.add(() => stream.cancel());
  return { stream, reader };
}

export function openSotw(cleanups: Cleanups, client: grpc.Client, schema: ProtoSchema, metadata: Metadata) {
  return openAds(cleanups, client, schema.adsService.StreamAggregatedResources, metadata);
}

export function openDelta(cleanups: Cleanups, client: grpc.Client, schema: ProtoSchema, metadata: Metadata) {
  return openAds(cleanups, client, schema.adsService.DeltaAggregatedResources, metadata);
}

/** A SotW request for `typeUrl` with every field at its default, overridden by `fields`. */
export function sotwRequestFor(typeUrl: string, fields: Partial<DiscoveryRequest>): DiscoveryRequest {
  return { version_info: '', resource_names: [], type_url: typeUrl, response_nonce: '', error_detail: null, ...fields };
}

/** A Delta request for `typeUrl` with every field at its default, overridden by `fields`. */
export function deltaRequestFor(typeUrl: string, fields: Partial<DeltaDiscoveryRequest>): DeltaDiscoveryRequest {
  return {
    type_url: typeUrl,
    resource_names_subscribe: [],
    resource_names_unsubscribe: [],
    initial_resource_versions: {},
    response_nonce: '',
    error_detail: null,
    ...fields,
  };
}
