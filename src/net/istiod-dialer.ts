import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import type { Clock } from '../clock.js';
import type { UpstreamConfig } from '../config/index.js';
import { AgentError, errorMessage } from '../errors.js';
import type { Logger } from '../log/index.js';

/** HTTP/2 receive window for connections to istiod (and what local xDS clients should use too). */
export const FLOW_CONTROL_WINDOW = 16 * 1024 * 1024;

export interface IstiodDialerDeps {
  config: UpstreamConfig;
  /** PROV_CERT: cert-chain.pem + key.pem here authenticate the agent over mTLS when valid ('' = never). */
  provCertDir: string;
  clock: Clock;
  log: Logger;
  /** The message when the root certificate file is missing (Istio words it differently for CA and xDS). */
  rootMissing: (address: string, file: string) => string;
  keepaliveTimeMs?: number;
  keepaliveTimeoutMs?: number;
}

/**
 * Opens gRPC clients to istiod (CA or xDS) the way pilot-agent does: TLS verified against the configured
 * root and istiod's name, the agent's own certificate as client certificate when it has a valid one, and
 * per call the bearer token re-read from its file plus ClusterID and extra headers. Credentials are read
 * when a client is created, so a rotated certificate or token is used by the next connection.
 */
export class IstiodDialer {
  readonly #deps: IstiodDialerDeps;

  constructor(deps: IstiodDialerDeps) {
    this.#deps = deps;
  }

  get address(): string {
    return this.#deps.config.address;
  }

  async newClient(): Promise<grpc.Client> {
    const { config } = this.#deps;
    const options: grpc.ChannelOptions = {
      'grpc.keepalive_time_ms': this.#deps.keepaliveTimeMs ?? 30_000,
      'grpc.keepalive_timeout_ms': this.#deps.keepaliveTimeoutMs ?? 10_000,
      'grpc.max_receive_message_length': -1,
      'grpc.max_send_message_length': -1,
      // A full push is many MB; the 64 KB HTTP/2 default window would stall it on WINDOW_UPDATE round
      // trips. Go's gRPC grows its window by BDP estimation up to 16 MB; grpc-js needs it set up front.
      'grpc-node.flow_control_window': FLOW_CONTROL_WINDOW,
    };
    if (config.plaintext) return new grpc.Client(config.address, grpc.credentials.createInsecure(), options);
    const root = await this.#root();
    const identity = await this.#clientCertificate();
    options['grpc.ssl_target_name_override'] = config.serverName;
    options['grpc.default_authority'] = config.serverName;
    const credentials = grpc.credentials.createSsl(root ?? null, identity?.privateKey ?? null, identity?.certChain ?? null);
    return new grpc.Client(config.address, credentials, options);
  }

  /** The same credentials as newClient(), for a raw HTTP/2 connection (the xDS pass-through). */
  async connectionOptions(): Promise<{ host: string; port: number; authority: string; tls?: ConnectionOptions }> {
    const { config } = this.#deps;
    const { host, port } = splitAddress(config.address);
    if (config.plaintext) return { host, port, authority: config.address };
    const root = await this.#root();
    const identity = await this.#clientCertificate();
    return {
      host,
      port,
      authority: config.serverName,
      tls: {
        host,
        port,
        servername: config.serverName,
        ...(root ? { ca: root } : {}),
        ...(identity ? { cert: identity.certChain, key: identity.privateKey } : {}),
        ALPNProtocols: ['h2'],
        minVersion: 'TLSv1.2',
      },
    };
  }

  /** The call metadata of metadata(), as HTTP/2 headers (lower-case names). */
  async headers(): Promise<Record<string, string>> {
    const metadata = await this.metadata();
    const out: Record<string, string> = {};
    for (const [key, values] of Object.entries(metadata.toHttp2Headers())) {
      out[key.toLowerCase()] = Array.isArray(values) ? values.join(', ') : String(values);
    }
    return out;
  }

  /** The root certificate to verify istiod against (undefined: the OS trust store). */
  async #root(): Promise<Buffer | undefined> {
    const { config, rootMissing } = this.#deps;
    if (config.rootCertPath === '') return undefined;
    try {
      return await readFile(config.rootCertPath);
    } catch (err) {
      throw new AgentError('CA_ROOT_MISSING', rootMissing(config.address, config.rootCertPath), { cause: err });
    }
  }

  /** Headers for one call: configured extra headers, ClusterID, and `authorization: Bearer <token>` if there is one. */
  async metadata(): Promise<grpc.Metadata> {
    const { config, log } = this.#deps;
    const metadata = new grpc.Metadata();
    for (const [key, value] of Object.entries(config.headers)) metadata.set(key, value);
    try {
      const token = (await readFile(config.tokenPath, 'utf8')).trim();
      if (token !== '') metadata.set('authorization', `Bearer ${token}`);
    } catch (err) {
      log.warn(`failed to fetch token from file: ${errorMessage(err)}`);
    }
    return metadata;
  }

  /** The provisioned certificate, if readable, parseable and unexpired (SPEC §3.2). */
  async #clientCertificate(): Promise<{ privateKey: Buffer; certChain: Buffer } | undefined> {
    const { provCertDir, log, clock } = this.#deps;
    if (provCertDir === '') return undefined;
    let certChain: Buffer;
    let privateKey: Buffer;
    try {
      [certChain, privateKey] = await Promise.all([
        readFile(path.join(provCertDir, 'cert-chain.pem')),
        readFile(path.join(provCertDir, 'key.pem')),
      ]);
    } catch {
      return undefined; // first start on a VM: nothing provisioned yet, the token is used
    }
    try {
      const leaf = new X509Certificate(certChain);
      if (Date.parse(leaf.validTo) <= clock.now()) {
        log.warn('cert expired, using token instead');
        return undefined;
      }
      // A key from one issuance beside the chain of another (a write cut short) would fail every
      // handshake; treat it like an unparseable chain so the token still gets the agent a new pair.
      if (!leaf.checkPrivateKey(createPrivateKey(privateKey))) throw new Error('the private key does not match the certificate');
      return { certChain, privateKey };
    } catch (err) {
      log.warn(`cannot parse the cert chain, using token instead: ${errorMessage(err)}`);
      return undefined;
    }
  }
}

/** `host:port`, `[v6]:port` → host and port (as Go's net.SplitHostPort). */
function splitAddress(address: string): { host: string; port: number } {
  const match = /^\[(.+)\]:(\d+)$/.exec(address) ?? /^([^:]+):(\d+)$/.exec(address);
  if (!match) throw new AgentError('UPSTREAM_ADDRESS_INVALID', `invalid istiod address ${address}: want host:port`);
  return { host: match[1] ?? '', port: Number(match[2]) };
}
