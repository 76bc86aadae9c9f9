/**
 * The agent's configuration, built once by loadAgentConfig() and deep-frozen. Only config/ reads the
 * environment and the operator's files; every other folder receives the slice it needs from here.
 * All paths are absolute (relative defaults are resolved against `cwd`, as pilot-agent does).
 */
import type { LogOptions } from '../log/index.js';

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** istio.networking.v1alpha3.ReadinessProbe (ProxyConfig field 31), proto-JSON field names. */
export interface ReadinessProbe {
  initialDelaySeconds?: number;
  timeoutSeconds?: number;
  periodSeconds?: number;
  successThreshold?: number;
  failureThreshold?: number;
  httpGet?: { path?: string; port: number; host?: string; scheme?: string; httpHeaders?: { name: string; value: string }[] };
  tcpSocket?: { host?: string; port: number };
  exec?: { command: string[] };
  grpc?: { port: number; service?: string };
}

/**
 * The effective ProxyConfig (istio.mesh.v1alpha1.ProxyConfig) in proto-JSON shape (camelCase), after
 * defaults → mesh file `defaultConfig` → PROXY_CONFIG. Durations stay in proto-JSON string form ("45s").
 */
export interface ProxyConfig {
  configPath: string;
  binaryPath: string;
  serviceCluster: string;
  drainDuration: string;
  terminationDrainDuration: string;
  discoveryAddress: string;
  proxyAdminPort: number;
  statusPort: number;
  controlPlaneAuthPolicy: 'MUTUAL_TLS' | 'NONE';
  customConfigFile?: string;
  proxyBootstrapTemplatePath?: string;
  concurrency?: number;
  proxyMetadata: Record<string, string>;
  readinessProbe?: ReadinessProbe;
  tracing?: JsonValue;
  extraStatTags?: string[];
  proxyStatsMatcher?: JsonValue;
  runtimeValues?: Record<string, string>;
  statsCompression?: boolean;
  caCertificatesPem?: string[];
  privateKeyProvider?: JsonValue;
  fileFlushInterval?: string;
  fileFlushMinSizeKb?: number;
  /** Any other ProxyConfig field the mesh file or PROXY_CONFIG set, kept verbatim (proto-JSON). */
  other: Record<string, JsonValue>;
}

/** `pilot-agent proxy` flags (SPEC §2.3). */
export interface ProxyFlags {
  meshConfigFile: string;
  serviceCluster: string;
  proxyLogLevel: string;
  proxyComponentLogLevel: string;
  concurrency: number;
  domain: string;
  templateFile: string;
  outlierLogPath: string;
  stsPort: number;
  tokenManagerPlugin: string;
  profiling: boolean;
}

/** Who this workload is (SPEC §2.5). */
export interface IdentityConfig {
  podName: string;
  podNamespace: string;
  serviceAccount: string;
  /** TRUST_DOMAIN; may legitimately be '' (istioctl writes `TRUST_DOMAIN=''`). */
  trustDomain: string;
  /** INSTANCE_IP first, then the addresses of up, non-loopback interfaces; never empty. */
  instanceIps: string[];
  ipMode: 'ipv4' | 'ipv6' | 'dual';
  /** `<POD_NAME>.<POD_NAMESPACE>` */
  proxyId: string;
  /** `<POD_NAMESPACE>.svc.cluster.local` unless --domain */
  domain: string;
  /** `sidecar~<first ip>~<proxyId>~<domain>` */
  nodeId: string;
  clusterId: string;
  network: string;
  meshId: string;
  /** SPIFFE ID requested in the CSR: `spiffe://<trustDomain>/ns/<ns>/sa/<sa>` */
  spiffeId: string;
}

/** TLS/auth settings for one istiod endpoint (CA or xDS). */
export interface UpstreamConfig {
  /** host:port as configured (resolved through the system resolver, i.e. /etc/hosts). */
  address: string;
  /** Plaintext (CA_ADDR ending :15010, or controlPlaneAuthPolicy NONE for xDS). */
  plaintext: boolean;
  /** Root certificate file the server is verified against ('' = OS trust store, `SYSTEM`). */
  rootCertPath: string;
  /** Name the server certificate must carry (and SNI). */
  serverName: string;
  /** Bearer JWT file, re-read on every call. */
  tokenPath: string;
  /** Extra gRPC metadata: CA_HEADER_* / XDS_HEADER_*, plus ClusterID. */
  headers: Record<string, string>;
}

export interface CaConfig extends UpstreamConfig {
  provider: 'Citadel';
  /** ISTIO_META_CERT_SIGNER, sent as request metadata CertSigner. */
  certSigner: string;
}

export interface XdsConfig extends UpstreamConfig {
  /** ISTIO_DELTA_XDS (default true): Envoy's bootstrap uses DELTA_GRPC. */
  delta: boolean;
  /** `etc/istio/proxy/XDS` */
  socketPath: string;
}

export interface SecretsConfig {
  /** SECRET_TTL, seconds (default 86400). */
  ttlSeconds: number;
  /** SECRET_GRACE_PERIOD_RATIO (0.5) and its jitter (0.01). */
  gracePeriodRatio: number;
  gracePeriodRatioJitter: number;
  /** WORKLOAD_RSA_KEY_SIZE (2048). */
  rsaKeySize: number;
  /** ECC_SIGNATURE_ALGORITHM=ECDSA → ECC_CURVE; undefined = RSA. */
  eccCurve?: 'P256' | 'P384';
  /** PKCS8_KEY */
  pkcs8: boolean;
  /** PROV_CERT: directory holding a cert-chain.pem/key.pem to authenticate to the CA with ('' = none). */
  provCertDir: string;
  /** OUTPUT_CERTS: directory the issued key, chain and root are written to ('' = none). */
  outputCertsDir: string;
  /** FILE_MOUNTED_CERTS, or all three files present in fileMountedCertDir. */
  fileMountedCerts: boolean;
  /** `./var/run/secrets/workload-spiffe-credentials` */
  fileMountedCertDir: string;
  /** `var/run/secrets/workload-spiffe-uds/<WORKLOAD_IDENTITY_SOCKET_FILE>` */
  sdsSocketPath: string;
}

export interface DnsConfig {
  /** ISTIO_META_DNS_CAPTURE or ISTIO_META_ENABLE_DNS_SERVER */
  enabled: boolean;
  /** DNS_PROXY_ADDR (localhost:15053) */
  address: string;
  forwardParallel: boolean;
  forwardTimeoutMs: number;
  /** /etc/resolv.conf, overridable with ISTIO_RESOLV_CONF */
  resolvConfPath: string;
}

export interface AgentConfig {
  /** The working directory every relative Istio default resolves against (`/` under systemd). */
  cwd: string;
  proxyType: 'sidecar' | 'router';
  flags: ProxyFlags;
  log: LogOptions;
  proxyConfig: ProxyConfig;
  identity: IdentityConfig;
  ca: CaConfig;
  xds: XdsConfig;
  secrets: SecretsConfig;
  dns: DnsConfig;
  /** DISABLE_ENVOY */
  disableEnvoy: boolean;
  /** Envoy's ports and drain behaviour (ENVOY_STATUS_PORT, ENVOY_PROMETHEUS_PORT, EXIT_ON_ZERO_ACTIVE_CONNECTIONS, MINIMUM_DRAIN_DURATION). */
  envoy: { statusPort: number; prometheusPort: number; exitOnZeroActiveConnections: boolean; minimumDrainMs: number };
  /** REWRITE_PROBE_LEGACY_LOCALHOST_DESTINATION: readiness probes without a host go to localhost. */
  rewriteProbeLegacyLocalhost: boolean;
  /** GRPC_KEEPALIVE_INTERVAL / GRPC_KEEPALIVE_TIMEOUT for every connection to istiod. */
  grpcKeepalive: { intervalMs: number; timeoutMs: number };
  /** ISTIO_VERSION reported in node metadata. */
  istioVersion: string;
  /** Node metadata inputs: ISTIO_META_* (proxyMetadata, then env), prefix stripped. */
  metaEnv: Record<string, string>;
  /** ISTIO_METAJSON_LABELS, parsed. */
  labels: Record<string, string>;
  /** The environment the agent runs with: process env over cluster.env over sidecar.env, plus istio-start.sh's derived values. */
  env: Record<string, string>;
  /** Non-fatal problems found while loading (logged at warn by main). */
  warnings: string[];
  /** Informational lines Istio prints while loading (`Apply mesh config from file ...`). */
  notices: string[];
}
