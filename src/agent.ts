import { IstioCaClient } from './ca/index.js';
import { systemClock, type Clock } from './clock.js';
import type { AgentConfig } from './config/index.js';
import { closeAll, startAll, type Component } from './lifecycle.js';
import type { LogRoot } from './log/index.js';
import { AgentMetrics } from './metrics/index.js';
import { ProtoSchema } from './proto/index.js';
import { SdsServer } from './sds/index.js';
import { SecretCache } from './secrets/index.js';

export interface AgentDeps {
  log: LogRoot;
  clock?: Clock;
  schema?: ProtoSchema;
  metrics?: AgentMetrics;
}

/**
 * The composition root: builds every component from its slice of the configuration, wires them through
 * narrow callbacks, starts them in Istio's order and closes them in reverse.
 */
export class Agent implements Component {
  readonly name = 'agent';
  readonly config: AgentConfig;
  readonly metrics: AgentMetrics;
  readonly secrets: SecretCache;
  readonly #components: Component[];
  #closed?: Promise<void>;

  constructor(config: AgentConfig, deps: AgentDeps) {
    this.config = config;
    const clock = deps.clock ?? systemClock;
    const schema = deps.schema ?? new ProtoSchema();
    const log = deps.log;
    this.metrics = deps.metrics ?? new AgentMetrics({ processMetrics: true });

    const defaultLog = log.scope('default');
    const { identity, secrets, ca } = config;
    defaultLog.info('Proxy role', { ips: identity.instanceIps, type: config.proxyType, id: identity.nodeId, domain: identity.domain });

    let signer: IstioCaClient | undefined;
    if (!secrets.fileMountedCerts) {
      defaultLog.info('JWT policy is third-party-jwt');
      defaultLog.info(`using credential fetcher of JWT type in ${identity.trustDomain} trust domain`);
      defaultLog.info(`CA Endpoint ${ca.address}, provider ${ca.provider}`);
      if (!ca.plaintext) defaultLog.info(`Using CA ${ca.address} cert with certs: ${ca.rootCertPath}`);
      signer = new IstioCaClient({
        config: ca,
        provCertDir: secrets.provCertDir,
        schema,
        clock,
        log: log.scope('citadelclient'),
        retryLog: log.scope('ca'),
        metrics: this.metrics,
        keepalive: config.grpcKeepalive,
      });
    }
    this.secrets = new SecretCache({
      config: secrets,
      spiffeId: identity.spiffeId,
      extraTrustAnchors: config.proxyConfig.caCertificatesPem ?? [],
      signer,
      clock,
      log: log.scope('cache'),
      sdsLog: log.scope('sds'),
      metrics: this.metrics,
    });
    defaultLog.info('Starting default Istio SDS Server');
    const sds = new SdsServer({
      socketPath: secrets.sdsSocketPath,
      cwd: config.cwd,
      schema,
      secrets: this.secrets,
      log: log.scope('sds'),
      adsLog: log.scope('ads'),
    });
    // Istio's order (pkg/istio-agent/agent.go): secret cache and SDS before the xDS proxy and Envoy.
    this.#components = [this.secrets, sds];
  }

  /** Where Envoy (and tests) reach SDS. */
  get sdsSocketPath(): string {
    return this.config.secrets.sdsSocketPath;
  }

  async start(signal: AbortSignal): Promise<void> {
    await startAll(this.#components, signal);
  }

  close(): Promise<void> {
    return (this.#closed ??= closeAll(this.#components).then(() => undefined));
  }
}
