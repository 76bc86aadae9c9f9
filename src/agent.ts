import { IstioCaClient } from './ca/index.js';
import { DNS_NOT_READY_MESSAGE, DnsServer } from './dns/index.js';
import { EnvoyAgent, envoyArgs, generateBootstrap, removeBootstrap, writeBootstrap } from './envoy/index.js';
import { WorkloadHealthChecker } from './health/index.js';
import { systemClock, type Clock } from './clock.js';
import path from 'node:path';
import { parseProtoDuration, type AgentConfig } from './config/index.js';
import { closeAll, startAll, type Component } from './lifecycle.js';
import type { LogRoot } from './log/index.js';
import { AgentMetrics } from './metrics/index.js';
import { ProtoSchema } from './proto/index.js';
import { SdsServer } from './sds/index.js';
import { IstiodDialer } from './net/index.js';
import { SecretCache } from './secrets/index.js';
import { conditionCheck, filesExistCheck, StatusServer, type ReadinessCheck } from './status/index.js';
import { GrpcBootstrapFile, NAME_TABLE_TYPE_URL, XdsProxy, buildGrpcBootstrap, buildNode, grpcBootstrapPath, toProtoNode } from './xds/index.js';

export interface AgentDeps {
  log: LogRoot;
  /** Envoy exited on its own: pilot-agent then exits 0 and systemd restarts it. */
  onEnvoyExit?: () => void;
  /** POST /quitquitquit on the status port: exit without draining. */
  onQuit?: () => void;
  /** Running as uid 0 (decides the DNS proxy's `:53` rules). */
  isRoot?: boolean;
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
  readonly xds: XdsProxy;
  readonly dns?: DnsServer;
  readonly envoy?: EnvoyAgent;
  readonly status?: StatusServer;
  readonly #components: Component[];
  #isTerminating = false;
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
    // Throws ConfigErrors for metadata istiod could not decode (a typed boolean that is not one).
    const node = buildNode(config);
    const xdsLog = log.scope('xdsproxy');
    this.xds = new XdsProxy({
      socketPath: config.xds.socketPath,
      address: config.xds.address,
      clusterId: identity.clusterId,
      delta: config.xds.delta,
      dialer: new IstiodDialer({
        config: config.xds,
        provCertDir: secrets.provCertDir,
        clock,
        log: xdsLog,
        rootMissing: (_address, file) => `root CA file for XDS does not exist ${file}`,
        keepaliveTimeMs: config.grpcKeepalive.intervalMs,
        keepaliveTimeoutMs: config.grpcKeepalive.timeoutMs,
      }),
      schema,
      clock,
      log: xdsLog,
      metrics: this.metrics,
      keepalive: config.grpcKeepalive,
      // Without Envoy the agent keeps a stream of its own, so istiod still sees (and registers) the
      // workload and the agent-handled types (DNS table, health) still flow.
      ownNode: config.disableEnvoy ? toProtoNode(node) : undefined,
    });
    if (config.dns.enabled) {
      this.dns = new DnsServer({
        config: config.dns,
        proxyNamespace: identity.podNamespace,
        proxyDomain: identity.domain,
        schema,
        log: log.scope('dns'),
        metrics: this.metrics,
        isRoot: deps.isRoot,
      });
      // The NameTable is requested upstream after Envoy's first LDS request (or on the agent's own
      // stream without Envoy), handed to the DNS proxy, ACKed or NACKed, and never forwarded.
      this.xds.registerHandler(NAME_TABLE_TYPE_URL, this.dns.handler, { subscribe: true });
    }
    // Istio's order (pkg/istio-agent/agent.go): DNS, secret cache and SDS, the xDS proxy with the prober,
    // the gRPC bootstrap.
    const components: Component[] = [...(this.dns ? [this.dns] : []), this.secrets, sds, this.xds];
    const probe = config.proxyConfig.readinessProbe;
    if (probe) {
      // Results go upstream as HealthInformation, only on change; the xDS proxy holds the latest and
      // re-sends it on every new stream. Envoy readiness gating (SPEC §7.2) comes with the status server.
      components.push(
        new WorkloadHealthChecker({
          probe,
          instanceIps: identity.instanceIps,
          rewriteLocalhost: config.rewriteProbeLegacyLocalhost,
          clock,
          log: log.scope('healthcheck'),
          report: (report) => this.xds.reportHealth(report),
        }),
      );
    }
    const bootstrapFile = grpcBootstrapPath(config);
    if (bootstrapFile) {
      components.push(new GrpcBootstrapFile({ file: bootstrapFile, bootstrap: buildGrpcBootstrap(config, node), log: defaultLog }));
    }
    const pc = config.proxyConfig;
    if (!config.disableEnvoy) {
      // Throws ConfigErrors for what cannot become a bootstrap (an unsupported template, a bad tracer).
      const bootstrap = generateBootstrap(config, node);
      for (const warning of bootstrap.warnings) defaultLog.warn(warning);
      const envoy = new EnvoyAgent({
        binaryPath: pc.binaryPath,
        args: envoyArgs(config, bootstrap.path),
        prepare: async () => void (await writeBootstrap(config, node)),
        removeBootstrap: () => removeBootstrap(bootstrap),
        adminPort: pc.proxyAdminPort,
        terminationDrainMs: parseDurationMs(pc.terminationDrainDuration, 5000),
        exitOnZeroActiveConnections: config.envoy.exitOnZeroActiveConnections,
        minimumDrainMs: config.envoy.minimumDrainMs,
        clock,
        log: defaultLog,
        onExit: () => deps.onEnvoyExit?.(),
      });
      this.envoy = envoy;
      // Envoy last: it does not wait for certificates (pilot-agent starts it without waiting either).
      components.push(envoy);
    }
    if (pc.statusPort > 0) {
      this.status = new StatusServer({
        port: pc.statusPort,
        log: defaultLog,
        metrics: this.metrics,
        envoy: config.disableEnvoy
          ? undefined
          : { adminPort: pc.proxyAdminPort, prometheusPort: config.envoy.prometheusPort, host: identity.ipMode === 'ipv6' ? '::1' : '127.0.0.1' },
        readinessChecks: () => this.#readinessChecks(bootstrapFile),
        debugNameTable: this.dns ? () => this.dns?.debugNameTable() : undefined,
        onQuit: () => deps.onQuit?.(),
        onDrain: () => void this.envoy?.drain(),
        isTerminating: () => this.#isTerminating,
      });
      // Istio opens the status port before anything else.
      components.unshift(this.status);
    }
    this.#components = components;
  }

  /** Where Envoy (and tests) reach SDS. */
  get sdsSocketPath(): string {
    return this.config.secrets.sdsSocketPath;
  }

  async start(signal: AbortSignal): Promise<void> {
    await startAll(this.#components, signal);
  }

  /**
   * The graceful part of a SIGTERM (SPEC §8.3): readiness starts failing, then Envoy drains its inbound
   * listeners for the termination period. close() comes after.
   */
  async drain(): Promise<void> {
    this.#isTerminating = true;
    await this.envoy?.drain();
  }

  /** SPEC §9.2 checks 3–4 (Envoy's own are the status server's); without Envoy: certificate, xDS, DNS. */
  #readinessChecks(grpcBootstrapFile: string | undefined): ReadinessCheck[] {
    const checks: ReadinessCheck[] = [];
    const { config } = this;
    const out = config.secrets.outputCertsDir;
    if (grpcBootstrapFile && out !== '') {
      // The gRPC bootstrap's file_watcher certificates: on a VM, readiness waits for /etc/certs/*.pem.
      checks.push(filesExistCheck('grpc-bootstrap', () => ['cert-chain.pem', 'key.pem', 'root-cert.pem'].map((f) => path.join(out, f))));
    }
    if (config.disableEnvoy) {
      checks.push(conditionCheck('certificate', () => this.secrets.current !== undefined, 'workload certificate not yet issued'));
      checks.push(conditionCheck('xds', () => this.xds.isUpstreamConnected, 'not connected to the XDS server'));
    }
    const dns = this.dns;
    if (dns) checks.push(conditionCheck('dns', () => dns.hasTable, DNS_NOT_READY_MESSAGE));
    return checks;
  }

  close(): Promise<void> {
    return (this.#closed ??= closeAll(this.#components).then(() => undefined));
  }
}

function parseDurationMs(text: string, fallback: number): number {
  return parseProtoDuration(text) ?? fallback;
}
