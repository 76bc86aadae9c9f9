import * as grpc from '@grpc/grpc-js';
import type { Clock } from '../clock.js';
import type { CaConfig } from '../config/index.js';
import { AgentError } from '../errors.js';
import { formatDuration, type Logger } from '../log/index.js';
import type { AgentMetrics } from '../metrics/index.js';
import { IstiodDialer, describeGrpcError, isGrpcError } from '../net/index.js';
import { type IstioCertificateRequest, type IstioCertificateResponse, type ProtoSchema, toStruct } from '../proto/index.js';

/** Signs a CSR; returns the chain with the leaf first and the root last. */
export interface CertificateSigner {
  sign(csrPem: string, ttlSeconds: number, signal?: AbortSignal): Promise<string[]>;
}

// Istio's CA client retries these codes (grpc_retry with exponential backoff and jitter from 100 ms).
const RETRYABLE = new Set([
  grpc.status.CANCELLED,
  grpc.status.DEADLINE_EXCEEDED,
  grpc.status.RESOURCE_EXHAUSTED,
  grpc.status.ABORTED,
  grpc.status.INTERNAL,
  grpc.status.UNAVAILABLE,
]);
const MAX_ATTEMPTS = 5;
const BACKOFF_BASE_MS = 100;
const BACKOFF_JITTER = 0.1;
const CALL_TIMEOUT_MS = 30_000;
const CSR = 'csr';

export interface IstioCaClientDeps {
  config: CaConfig;
  /** PROV_CERT: cert-chain.pem + key.pem here authenticate the agent over mTLS when valid. */
  provCertDir: string;
  schema: ProtoSchema;
  clock: Clock;
  /** [citadelclient] */
  log: Logger;
  /** [ca] — the scope Istio's retry interceptor logs in. */
  retryLog: Logger;
  metrics?: AgentMetrics;
  random?: () => number;
  keepalive?: { intervalMs: number; timeoutMs: number };
}

/**
 * Client for istiod's `IstioCertificateService/CreateCertificate` (Citadel provider). Every call re-reads
 * the bearer token and the provisioned client certificate, so that a VM whose token has expired or
 * vanished renews over mTLS with the certificate it was issued before.
 */
export class IstioCaClient implements CertificateSigner {
  readonly #deps: IstioCaClientDeps;
  readonly #random: () => number;
  readonly #dialer: IstiodDialer;

  constructor(deps: IstioCaClientDeps) {
    this.#deps = deps;
    this.#random = deps.random ?? Math.random;
    this.#dialer = new IstiodDialer({
      config: deps.config,
      provCertDir: deps.provCertDir,
      clock: deps.clock,
      log: deps.log,
      rootMissing: (address, file) => `invalid config - ${address} missing a root certificate ${file}`,
      keepaliveTimeMs: deps.keepalive?.intervalMs,
      keepaliveTimeoutMs: deps.keepalive?.timeoutMs,
    });
    if (deps.config.plaintext) {
      deps.log.warn('Debug mode or IP-secure network', { addr: deps.config.address });
    }
  }

  async sign(csrPem: string, ttlSeconds: number, signal?: AbortSignal): Promise<string[]> {
    const { metrics, clock, retryLog, log } = this.#deps;
    const client = await this.#dialer.newClient();
    const started = clock.now();
    let lastError: unknown;
    try {
      for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
        signal?.throwIfAborted();
        metrics?.outgoingRequests.inc({ request_type: CSR });
        try {
          const response = await this.#call(client, csrPem, ttlSeconds);
          metrics?.outgoingLatency.inc({ request_type: CSR }, clock.now() - started);
          return parseChain(response);
        } catch (err) {
          lastError = err;
          metrics?.failedOutgoingRequests.inc({ request_type: CSR });
          if (!isGrpcError(err) || !RETRYABLE.has(err.code) || attempt === MAX_ATTEMPTS) break;
          const base = BACKOFF_BASE_MS * 2 ** (attempt - 1);
          const delay = base * (1 + BACKOFF_JITTER * (2 * this.#random() - 1));
          // Worded, levelled and numbered (retries from 1) as Istio's retry interceptor logs it.
          retryLog.warn(`ca request failed, starting attempt ${attempt} in ${formatDuration(delay)}`);
          metrics?.outgoingRetries.inc({ request_type: CSR });
          await clock.sleep(delay, signal);
        }
      }
    } finally {
      client.close();
    }
    const message = describeGrpcError(lastError);
    log.error(`failed to sign CSR: ${message}`);
    // Istio rebuilds its connection after a failure; we build a fresh client per signing round anyway.
    log.info('recreated connection');
    const code = isGrpcError(lastError) && lastError.code === (grpc.status.UNAUTHENTICATED as number) ? 'CA_UNAUTHENTICATED' : 'CA_SIGN_FAILED';
    throw new AgentError(code, `create certificate at ${this.#deps.config.address}: ${message}`, { cause: lastError });
  }

  #call(client: grpc.Client, csrPem: string, ttlSeconds: number): Promise<IstioCertificateResponse> {
    return new Promise((resolve, reject) => {
      void this.#dialer.metadata().then((metadata) => {
        const request: IstioCertificateRequest = {
          csr: csrPem,
          validity_duration: ttlSeconds,
          metadata: toStruct({ CertSigner: this.#deps.config.certSigner }),
        };
        const method = this.#deps.schema.caService.CreateCertificate;
        client.makeUnaryRequest(
          method.path,
          method.requestSerialize,
          method.responseDeserialize,
          request,
          metadata,
          { deadline: Date.now() + CALL_TIMEOUT_MS },
          (err, response) => (err || !response ? reject(err ?? new Error('empty response')) : resolve(response)),
        );
      }, reject);
    });
  }
}

function parseChain(response: IstioCertificateResponse): string[] {
  const chain = response.cert_chain;
  if (chain.length <= 1) throw new AgentError('CA_SIGN_FAILED', 'invalid empty CertChain');
  return chain.map((pem) => (pem.endsWith('\n') ? pem : `${pem}\n`));
}
