/**
 * Builds the agent's whole configuration once, from what pilot-agent would see when started by
 * istio-start.sh: sidecar.env and cluster.env (sourced with `set -a`), the process environment, the
 * script's derived values, the mesh config file and PROXY_CONFIG, and the flags. Every problem from
 * every source is collected and thrown together as one ConfigErrors; the result is deep-frozen.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_LOG_OPTIONS, type LogOptions } from '../log/index.js';
import { ISTIO_COMPAT_VERSION } from '../version.js';
import { ConfigErrors, type ConfigErrorSource } from './errors.js';
import {
  EnvReader,
  MergedEnv,
  PROCESS_ENV_ORIGIN,
  expectBool,
  expectJson,
  sourceOf,
  type SourcedValue,
  type ValueOrigin,
} from './env.js';
import { canonicalIp, parseBool, splitHostPort } from './go-values.js';
import { Issues } from './issues.js';
import { DEFAULT_MESH_CONFIG_FILE, errnoText, isErrno, loadProxyConfig } from './mesh-config.js';
import { parseShellEnv, type ShellEnvResult } from './shell-env.js';
import type { AgentConfig, CaConfig, DnsConfig, IdentityConfig, ProxyConfig, ProxyFlags, SecretsConfig, XdsConfig } from './types.js';
import { deepFreeze } from '../deep-freeze.js';

export interface LoadAgentConfigInput {
  /** Working directory every relative Istio path resolves against (`/` under systemd). */
  readonly cwd: string;
  /** The process environment. */
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly flags?: Partial<ProxyFlags>;
  readonly log?: LogOptions;
  readonly proxyType?: 'sidecar' | 'router';
  readonly networkInterfaces?: () => NodeJS.Dict<os.NetworkInterfaceInfo[]>;
  /** The host name (`hostname`); shortened like `hostname -s` for POD_NAME. */
  readonly hostname?: () => string;
}

export const DEFAULT_PROXY_FLAGS: ProxyFlags = {
  meshConfigFile: DEFAULT_MESH_CONFIG_FILE,
  serviceCluster: 'istio-proxy',
  proxyLogLevel: 'warning',
  proxyComponentLogLevel: '',
  concurrency: 0,
  domain: '',
  templateFile: '',
  outlierLogPath: '',
  stsPort: 0,
  tokenManagerPlugin: 'GoogleTokenExchange',
  profiling: true,
};

export const DEFAULT_SIDECAR_ENV_FILE = './var/lib/istio/envoy/sidecar.env';
export const DEFAULT_CLUSTER_ENV_FILE = './var/lib/istio/envoy/cluster.env';
export const TOKEN_PATH = './var/run/secrets/tokens/istio-token';
const DEFAULT_CERT_DIR = './etc/certs';
const K8S_ROOT_CERT = './var/run/secrets/istio/root-cert.pem';
const FILE_MOUNTED_CERT_DIR = './var/run/secrets/workload-spiffe-credentials';
const SDS_SOCKET_DIR = './var/run/secrets/workload-spiffe-uds';
const DERIVED: ValueOrigin = { file: 'istio-start.sh' };

/** ISTIO_META_* keys istiod decodes as booleans: a bad value fails bootstrap in pilot-agent. */
const TYPED_META_BOOLS = [
  'DNS_CAPTURE',
  'DNS_AUTO_ALLOCATE',
  'ENABLE_DNS_SERVER',
  'ENABLE_SELF_DISCOVERY',
  'ENABLE_HBONE',
  'DISABLE_HBONE_SEND',
  'EXIT_ON_ZERO_ACTIVE_CONNECTIONS',
  'INBOUND_LISTENER_EXACT_BALANCE',
  'OUTBOUND_LISTENER_EXACT_BALANCE',
  'METADATA_DISCOVERY',
  'ENVOY_SKIP_DEPRECATED_LOGS',
];

/**
 * Environment variables other parts of the agent read from `config.env`: checked here so a typo fails
 * startup with its file and line instead of being silently defaulted later.
 */
const OTHER_BOOLS: readonly [string, boolean][] = [
  ['ENVOY_SKIP_DEPRECATED_LOGS', true],
  ['ISTIO_ENVOY_ENABLE_CORE_DUMP', false],
  ['ISTIO_DUAL_STACK', false],
  ['PROXY_CONFIG_XDS_AGENT', false],
  ['ISTIO_AGENT_ENABLE_WASM_REMOTE_LOAD_CONVERSION', true],
  ['METRICS_LOCALHOST_ACCESS_ONLY', false],
  ['PILOT_AGENT_MERGE_ENVOY_STATS', true],
  ['PEER_METADATA_DISCOVERY', false],
];
const OTHER_DURATIONS: readonly [string, number][] = [
  ['GRPC_KEEPALIVE_INTERVAL', 30_000],
  ['GRPC_KEEPALIVE_TIMEOUT', 10_000],
  ['FILE_DEBOUNCE_DURATION', 100],
  ['WASM_MODULE_EXPIRY', 24 * 3_600_000],
  ['WASM_PURGE_INTERVAL', 3_600_000],
  ['WASM_HTTP_REQUEST_TIMEOUT', 15_000],
];

export function loadAgentConfig(input: LoadAgentConfigInput): AgentConfig {
  const issues = new Issues();
  const cwd = path.resolve(input.cwd);
  const abs = (p: string): string => path.resolve(cwd, p);
  const flags: ProxyFlags = { ...DEFAULT_PROXY_FLAGS, ...input.flags };
  const proxyType = input.proxyType ?? 'sidecar';

  const env = mergeEnvironment(input, cwd, issues);
  applyStartScriptDefaults(env, input);
  const read = new EnvReader(env, issues);

  const { proxyConfig, metadataSources, notices } = loadProxyConfig({
    cwd,
    meshConfigFile: flags.meshConfigFile,
    proxyConfigEnv: env.get('PROXY_CONFIG'),
    serviceClusterFlag: flags.serviceCluster,
    concurrencyFlag: flags.concurrency,
    cpuLimit: read.int('ISTIO_CPU_LIMIT', 0, { min: 0 }),
    issues,
  });

  const meta = buildMetaEnv(proxyConfig, metadataSources, env);
  for (const key of TYPED_META_BOOLS) {
    const value = meta.get(key);
    if (value !== undefined) expectBool(value, false, issues);
  }
  const podPorts = meta.get('POD_PORTS');
  if (podPorts !== undefined) expectJson(podPorts, issues);
  const metaEnv: Record<string, string> = {};
  for (const [key, { value }] of meta) metaEnv[key] = value;

  const labels = read.jsonStringMap('ISTIO_METAJSON_LABELS');
  for (const [key, entry] of env.withPrefix('ISTIO_METAJSON_')) {
    if (key !== 'ISTIO_METAJSON_LABELS') expectJson({ value: entry.value, source: sourceOf(entry.origin, key) }, issues);
  }
  for (const [key, fallback] of OTHER_BOOLS) read.bool(key, fallback);
  for (const [key, fallback] of OTHER_DURATIONS) read.durationMs(key, fallback, { min: 0 });
  const envoy = {
    statusPort: read.port('ENVOY_STATUS_PORT', 15021),
    prometheusPort: read.port('ENVOY_PROMETHEUS_PORT', 15090),
    exitOnZeroActiveConnections: read.bool('EXIT_ON_ZERO_ACTIVE_CONNECTIONS', false),
    minimumDrainMs: read.durationMs('MINIMUM_DRAIN_DURATION', 5000, { min: 0 }),
  };
  read.port('ENVOY_SECURE_METRICS_PORT', 0, { allowZero: true });
  read.port('ENVOY_SECURE_MERGED_METRICS_PORT', 0, { allowZero: true });
  read.int('WASM_HTTP_REQUEST_MAX_RETRIES', 5, { min: 0 });

  const identity = buildIdentity(env, meta, flags, proxyType, input, issues);
  const secrets = buildSecrets(read, abs, issues);
  const ca = buildCa(read, secrets, metaEnv, identity, proxyConfig, abs, issues);
  const xds = buildXds(read, secrets, proxyConfig, identity, ca.tokenPath, abs, issues);
  const dns = buildDns(read, meta, proxyType, abs);

  checkCaRoot(ca, secrets, issues);
  checkToken(ca.tokenPath, secrets, issues);

  const istioVersion = metaEnv['ISTIO_VERSION'] || env.get('ISTIO_VERSION') || ISTIO_COMPAT_VERSION;
  if (!/^\d+\.\d+\.\d+([-+.].*)?$/.test(istioVersion)) {
    const source = metaEnv['ISTIO_VERSION'] ? meta.get('ISTIO_VERSION')?.source : env.source('ISTIO_VERSION');
    issues.error(source ?? { key: 'ISTIO_VERSION' }, `must look like 1.x.y (istiod gates features on it), got "${istioVersion}"`);
  }

  if (issues.errors.length > 0) throw new ConfigErrors(issues.errors);

  const config: AgentConfig = {
    cwd,
    proxyType,
    flags,
    log: { ...(input.log ?? DEFAULT_LOG_OPTIONS) },
    proxyConfig,
    identity,
    ca,
    xds,
    secrets,
    dns,
    disableEnvoy: read.bool('DISABLE_ENVOY', false),
    envoy,
    rewriteProbeLegacyLocalhost: read.bool('REWRITE_PROBE_LEGACY_LOCALHOST_DESTINATION', false),
    grpcKeepalive: {
      intervalMs: read.durationMs('GRPC_KEEPALIVE_INTERVAL', 30_000, { min: 0 }),
      timeoutMs: read.durationMs('GRPC_KEEPALIVE_TIMEOUT', 10_000, { min: 0 }),
    },
    istioVersion,
    metaEnv,
    labels,
    env: env.toRecord(),
    warnings: issues.warnings,
    notices,
  };
  return deepFreeze(config);
}

// ---- environment: files, process env, istio-start.sh ----

interface EnvFile {
  /** Name in messages: the path as given, or `sidecar.env` / `cluster.env` for the defaults. */
  readonly display: string;
  readonly result: ShellEnvResult | undefined;
}

function mergeEnvironment(input: LoadAgentConfigInput, cwd: string, issues: Issues): MergedEnv {
  const processEnv = new Map<string, string>();
  for (const [key, value] of Object.entries(input.env)) if (value !== undefined) processEnv.set(key, value);

  // istio-start.sh: `. ${ISTIO_SIDECAR_CONFIG:-...}` then `. ${ISTIO_CLUSTER_CONFIG:-...}`, so
  // sidecar.env can still choose which cluster.env is read, and sees only the process env.
  const sidecar = readEnvFile(processEnv.get('ISTIO_SIDECAR_CONFIG'), DEFAULT_SIDECAR_ENV_FILE, cwd, issues, (k) => processEnv.get(k));
  const sidecarVar = (k: string): string | undefined => sidecar.result?.vars.get(k)?.value;
  const cluster = readEnvFile(
    sidecarVar('ISTIO_CLUSTER_CONFIG') ?? processEnv.get('ISTIO_CLUSTER_CONFIG'),
    DEFAULT_CLUSTER_ENV_FILE,
    cwd,
    issues,
    (k) => sidecarVar(k) ?? processEnv.get(k),
  );

  const env = new MergedEnv();
  for (const file of [sidecar, cluster]) {
    if (file.result === undefined) continue;
    // A line bash could evaluate but we cannot (`ISTIO_SVC_IP=$(hostname -I)`) is harmless when
    // istio-start.sh has already exported the evaluated value: then it is only worth a warning.
    const [covered, fatal] = partition(file.result.errors, (e) => e.source.key !== undefined && processEnv.get(e.source.key) !== undefined);
    issues.absorb({ errors: fatal, warnings: file.result.warnings });
    for (const e of covered) issues.warnings.push(`${e.message} (using ${e.source.key ?? ''} from the environment)`);
    for (const [key, entry] of file.result.vars) env.set(key, entry.value, { file: file.display, line: entry.line });
  }
  // The process env wins, so running under istio-start.sh (which exported every file key already)
  // gives the same result. Where it holds the same value, the file's line is kept for messages.
  for (const [key, value] of processEnv) {
    if (env.get(key) !== value) env.set(key, value, PROCESS_ENV_ORIGIN);
  }
  return env;
}

function partition<T>(items: readonly T[], predicate: (item: T) => boolean): [T[], T[]] {
  const yes: T[] = [];
  const no: T[] = [];
  for (const item of items) (predicate(item) ? yes : no).push(item);
  return [yes, no];
}

function readEnvFile(
  given: string | undefined,
  fallback: string,
  cwd: string,
  issues: Issues,
  lookup: (name: string) => string | undefined,
): EnvFile {
  const file = given === undefined || given === '' ? fallback : given;
  const display = file === fallback ? path.basename(fallback) : file;
  const absolute = path.resolve(cwd, file);
  let text: string;
  try {
    text = readFileSync(absolute, 'utf8');
  } catch (err) {
    // A missing file is skipped, as istio-start.sh's `[[ -r file ]]` does. One that exists but cannot
    // be read is an error: silently running without it would start the agent with the wrong identity.
    if (!isErrno(err, 'ENOENT')) issues.error({ file: display }, `cannot read ${absolute}: ${errnoText(err)}`);
    return { display, result: undefined };
  }
  return { display, result: parseShellEnv(text, { file: display, lookup }) };
}

/** The values istio-start.sh computes and exports before exec'ing pilot-agent (SPEC §1.4). */
function applyStartScriptDefaults(env: MergedEnv, input: LoadAgentConfigInput): void {
  const nonEmpty = (key: string): string | undefined => {
    const value = env.get(key);
    return value === undefined || value === '' ? undefined : value;
  };
  const originOf = (key: string): ValueOrigin => env.entry(key)?.origin ?? DERIVED;

  // NS=${ISTIO_NAMESPACE:-default} is passed as POD_NAMESPACE, overriding cluster.env's.
  const istioNamespace = nonEmpty('ISTIO_NAMESPACE');
  if (istioNamespace !== undefined) env.set('POD_NAMESPACE', istioNamespace, originOf('ISTIO_NAMESPACE'));
  else if (nonEmpty('POD_NAMESPACE') === undefined) env.set('POD_NAMESPACE', 'default', DERIVED);

  // INSTANCE_IP=$ISTIO_SVC_IP; without either, the interfaces decide (§2.5).
  const svcIp = nonEmpty('ISTIO_SVC_IP');
  if (nonEmpty('INSTANCE_IP') === undefined && svcIp !== undefined) env.set('INSTANCE_IP', svcIp, originOf('ISTIO_SVC_IP'));

  if (nonEmpty('POD_NAME') === undefined) {
    const host = (input.hostname ?? (() => os.hostname()))();
    env.set('POD_NAME', host.split('.')[0] ?? host, DERIVED);
  }

  const systemNamespace = nonEmpty('ISTIO_SYSTEM_NAMESPACE') ?? 'istio-system';
  const pilotPort = nonEmpty('ISTIO_PILOT_PORT');
  const customPilot = nonEmpty('PILOT_ADDRESS') ?? (pilotPort !== undefined ? `istiod.${systemNamespace}.svc:${pilotPort}` : undefined);
  if (nonEmpty('CA_ADDR') === undefined) {
    const origin = nonEmpty('PILOT_ADDRESS') !== undefined ? originOf('PILOT_ADDRESS') : pilotPort !== undefined ? originOf('ISTIO_PILOT_PORT') : DERIVED;
    env.set('CA_ADDR', customPilot ?? `istiod.${systemNamespace}.svc:15012`, origin);
  }
  // ${PROV_CERT-./etc/certs}: only an unset variable gets the default; an explicit '' stays ''.
  for (const key of ['PROV_CERT', 'OUTPUT_CERTS']) if (!env.has(key)) env.set(key, DEFAULT_CERT_DIR, DERIVED);

  let proxyConfig = env.get('PROXY_CONFIG') ?? '';
  if (customPilot !== undefined) {
    const line = `discoveryAddress: ${customPilot}`;
    // Under istio-start.sh the exported PROXY_CONFIG already carries the line: do not add it twice.
    if (!proxyConfig.split('\n').includes(line)) {
      proxyConfig = `${proxyConfig}\n${line}\n`;
      env.set('PROXY_CONFIG', proxyConfig, originOf('PROXY_CONFIG'));
    }
  }
  if (proxyConfig === '') {
    const service = nonEmpty('ISTIO_SERVICE') ?? 'rawvm';
    const policy = nonEmpty('ISTIO_CP_AUTH') ?? 'MUTUAL_TLS';
    env.set('PROXY_CONFIG', `\nserviceCluster: ${service}\ncontrolPlaneAuthPolicy: ${policy}\n`, DERIVED);
  }
}

/** ISTIO_META_* from proxyMetadata, then from the environment (which wins); prefix stripped. */
function buildMetaEnv(
  proxyConfig: ProxyConfig,
  metadataSources: ReadonlyMap<string, ConfigErrorSource>,
  env: MergedEnv,
): Map<string, SourcedValue> {
  const meta = new Map<string, SourcedValue>();
  const prefix = 'ISTIO_META_';
  for (const [key, value] of Object.entries(proxyConfig.proxyMetadata)) {
    if (key.startsWith(prefix) && key.length > prefix.length) {
      meta.set(key.slice(prefix.length), { value, source: metadataSources.get(key) ?? { key } });
    }
  }
  for (const [key, entry] of env.withPrefix(prefix)) {
    if (key.length > prefix.length) meta.set(key.slice(prefix.length), { value: entry.value, source: sourceOf(entry.origin, key) });
  }
  return meta;
}

// ---- identity ----

function buildIdentity(
  env: MergedEnv,
  meta: Map<string, SourcedValue>,
  flags: ProxyFlags,
  proxyType: 'sidecar' | 'router',
  input: LoadAgentConfigInput,
  issues: Issues,
): IdentityConfig {
  const podName = env.get('POD_NAME') ?? '';
  const podNamespace = env.get('POD_NAMESPACE') ?? 'default';
  const serviceAccount = env.get('SERVICE_ACCOUNT') ?? '';
  if (serviceAccount === '') issues.warn({ key: 'SERVICE_ACCOUNT' }, 'not set: the certificate request names service account ""');
  const trustDomain = env.get('TRUST_DOMAIN') ?? 'cluster.local';

  const instanceIps: string[] = [];
  const instanceIp = env.get('INSTANCE_IP');
  if (instanceIp !== undefined && instanceIp !== '') {
    const ip = canonicalIp(instanceIp);
    if (ip === undefined) issues.warn(env.source('INSTANCE_IP'), `"${instanceIp}" is not an IP address, ignored`);
    else instanceIps.push(ip);
  }
  const interfaceIps = usableInterfaceIps(input.networkInterfaces ?? (() => os.networkInterfaces()));
  // Like pilot-agent: with no usable interface address, both loopback addresses stand in.
  for (const ip of interfaceIps.length > 0 ? interfaceIps : ['127.0.0.1', '::1']) {
    if (!instanceIps.includes(ip)) instanceIps.push(ip);
  }
  const families = new Set(instanceIps.map((ip) => (ip.includes(':') ? 6 : 4)));
  const ipMode = families.size === 2 ? 'dual' : families.has(6) ? 'ipv6' : 'ipv4';

  const proxyId = `${podName}.${podNamespace}`;
  const domain = flags.domain !== '' ? flags.domain : `${podNamespace}.svc.cluster.local`;
  return {
    podName,
    podNamespace,
    serviceAccount,
    trustDomain,
    instanceIps,
    ipMode,
    proxyId,
    domain,
    nodeId: `${proxyType}~${instanceIps[0] ?? ''}~${proxyId}~${domain}`,
    clusterId: meta.get('CLUSTER_ID')?.value ?? '',
    network: meta.get('NETWORK')?.value ?? '',
    meshId: meta.get('MESH_ID')?.value ?? '',
    spiffeId: `spiffe://${trustDomain}/ns/${podNamespace}/sa/${serviceAccount}`,
  };
}

/** Addresses of up, non-loopback interfaces, minus link-local and unspecified ones (network.GetPrivateIPs). */
function usableInterfaceIps(list: () => NodeJS.Dict<os.NetworkInterfaceInfo[]>): string[] {
  const out: string[] = [];
  for (const infos of Object.values(list())) {
    for (const info of infos ?? []) {
      if (info.internal) continue;
      const ip = canonicalIp(info.address.split('%')[0] ?? info.address);
      if (ip === undefined || !isUsableAddress(ip)) continue;
      if (!out.includes(ip)) out.push(ip);
    }
  }
  return out;
}

function isUsableAddress(ip: string): boolean {
  const v4 = ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
  if (!v4.includes(':')) {
    return !(v4.startsWith('127.') || v4.startsWith('169.254.') || v4 === '0.0.0.0' || /^2(2[4-9]|3\d)\./.test(v4));
  }
  return !(v4 === '::1' || v4 === '::' || /^fe[89ab]/.test(v4) || /^ff[0-9a-f]{0,2}:/.test(v4));
}

// ---- secrets, CA, xDS, DNS ----

function buildSecrets(read: EnvReader, abs: (p: string) => string, issues: Issues): SecretsConfig {
  const provCert = read.string('PROV_CERT', DEFAULT_CERT_DIR);
  const outputCerts = read.string('OUTPUT_CERTS', DEFAULT_CERT_DIR);
  const fileMountedEnv = read.bool('FILE_MOUNTED_CERTS', false);
  if (fileMountedEnv && provCert !== '') {
    issues.error(read.env.source('FILE_MOUNTED_CERTS'), `invalid options: PROV_CERT (${provCert}) and FILE_MOUNTED_CERTS are mutually exclusive; set PROV_CERT='' to use file-mounted certificates`);
  }
  const hasCertFiles = (dir: string) => ['cert-chain.pem', 'key.pem', 'root-cert.pem'].every((f) => isFile(path.join(dir, f)));
  const spiffeCredentialsDir = abs(FILE_MOUNTED_CERT_DIR);
  const mountedFilesPresent = hasCertFiles(spiffeCredentialsDir);
  // FILE_MOUNTED_CERTS without the workload-spiffe-credentials files serves the classic ./etc/certs
  // files, which is where pilot-agent's file-mounted mode looks for them.
  const fileMountedCertDir = fileMountedEnv && !mountedFilesPresent ? abs(DEFAULT_CERT_DIR) : spiffeCredentialsDir;
  if (fileMountedEnv && !hasCertFiles(fileMountedCertDir)) {
    issues.error(
      read.env.source('FILE_MOUNTED_CERTS'),
      `file-mounted certificates need cert-chain.pem, key.pem and root-cert.pem in ${spiffeCredentialsDir} or ${fileMountedCertDir}`,
    );
  }

  const algorithm = read.string('ECC_SIGNATURE_ALGORITHM', '');
  let eccCurve: 'P256' | 'P384' | undefined;
  if (algorithm === 'ECDSA') {
    const curve = read.string('ECC_CURVE', 'P256');
    if (curve === 'P256' || curve === 'P384') eccCurve = curve;
    else issues.error(read.env.source('ECC_CURVE'), `expected "P256" or "P384", got "${curve}"`);
  } else if (algorithm !== '') {
    issues.error(read.env.source('ECC_SIGNATURE_ALGORITHM'), `expected "ECDSA" (or empty for RSA keys), got "${algorithm}"`);
  }

  const socketFile = read.string('WORKLOAD_IDENTITY_SOCKET_FILE', 'socket');
  if (socketFile === '' || socketFile !== path.basename(socketFile) || socketFile === '.' || socketFile === '..') {
    issues.error(read.env.source('WORKLOAD_IDENTITY_SOCKET_FILE'), `workload identity socket file override must be a filename, not a path: "${socketFile}"`);
  }

  const secrets: SecretsConfig = {
    ttlSeconds: Math.trunc(read.durationMs('SECRET_TTL', 24 * 3_600_000, { min: 1000 }) / 1000),
    gracePeriodRatio: read.float('SECRET_GRACE_PERIOD_RATIO', 0.5, { min: 0, max: 1 }),
    gracePeriodRatioJitter: read.float('SECRET_GRACE_PERIOD_RATIO_JITTER', 0.01, { min: 0, max: 1 }),
    rsaKeySize: read.int('WORKLOAD_RSA_KEY_SIZE', 2048, { min: 2048 }),
    pkcs8: read.bool('PKCS8_KEY', false),
    provCertDir: provCert === '' ? '' : abs(provCert),
    outputCertsDir: outputCerts === '' ? '' : abs(outputCerts),
    fileMountedCerts: fileMountedEnv || mountedFilesPresent,
    fileMountedCertDir,
    sdsSocketPath: abs(path.join(SDS_SOCKET_DIR, path.basename(socketFile || 'socket'))),
  };
  if (eccCurve !== undefined) secrets.eccCurve = eccCurve;
  return secrets;
}

/** Server name for an istiod address: its host, except that `localhost` means istiod's usual name. */
function serverNameFor(address: string): string {
  const parts = splitHostPort(address);
  const host = typeof parts === 'string' ? (address.split(':')[0] ?? address) : parts.host;
  return host.includes('localhost') ? 'istiod.istio-system.svc' : host;
}

function headersWithPrefix(env: MergedEnv, prefix: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, entry] of env.withPrefix(prefix)) if (key.length > prefix.length) out[key.slice(prefix.length)] = entry.value;
  return out;
}

function buildCa(
  read: EnvReader,
  secrets: SecretsConfig,
  metaEnv: Record<string, string>,
  identity: IdentityConfig,
  proxyConfig: ProxyConfig,
  abs: (p: string) => string,
  issues: Issues,
): CaConfig {
  const configured = read.string('CA_ADDR', '');
  const address = configured !== '' ? configured : proxyConfig.discoveryAddress;
  const parts = splitHostPort(address);
  if (typeof parts === 'string' || !/^\d+$/.test(parts.port) || Number(parts.port) < 1 || Number(parts.port) > 65535) {
    issues.error(read.env.source('CA_ADDR'), `expected host:port with a port number (1-65535), got "${address}"`);
  }
  const provider = read.string('CA_PROVIDER', 'Citadel');
  if (provider !== 'Citadel') issues.error(read.env.source('CA_PROVIDER'), `only "Citadel" is supported, got "${provider}"`);

  const certProvider = read.string('PILOT_CERT_PROVIDER', 'istiod');
  const caRoot = read.string('CA_ROOT_CA', '');
  let rootCertPath = '';
  if (caRoot === 'SYSTEM') rootCertPath = '';
  else if (caRoot !== '') rootCertPath = abs(caRoot);
  else if (certProvider === 'custom') rootCertPath = abs(path.join(DEFAULT_CERT_DIR, 'root-cert.pem'));
  else if (secrets.provCertDir !== '') rootCertPath = path.join(secrets.provCertDir, 'root-cert.pem');
  else if (certProvider === 'none') {
    issues.error(read.env.source('PILOT_CERT_PROVIDER'), 'root CA file for CA required but configured provider as none');
  } else rootCertPath = abs(K8S_ROOT_CERT);

  // ISTIOD_SAN names the CA only when CA_ADDR was not set (never under istio-start.sh).
  const istiodSan = read.string('ISTIOD_SAN', '');
  const serverName = configured === '' && istiodSan !== '' ? istiodSan : serverNameFor(address);
  return {
    provider: 'Citadel',
    address,
    plaintext: address.endsWith(':15010'),
    rootCertPath,
    serverName,
    tokenPath: abs(TOKEN_PATH),
    headers: { ClusterID: identity.clusterId, ...headersWithPrefix(read.env, 'CA_HEADER_') },
    certSigner: metaEnv['CERT_SIGNER'] ?? '',
  };
}

function buildXds(
  read: EnvReader,
  secrets: SecretsConfig,
  proxyConfig: ProxyConfig,
  identity: IdentityConfig,
  tokenPath: string,
  abs: (p: string) => string,
  issues: Issues,
): XdsConfig {
  const plaintext = proxyConfig.controlPlaneAuthPolicy === 'NONE';
  const xdsRoot = read.string('XDS_ROOT_CA', '');
  const certProvider = read.string('PILOT_CERT_PROVIDER', 'istiod');
  const vmRoot = abs(path.join(DEFAULT_CERT_DIR, 'root-cert.pem'));
  let rootCertPath = '';
  let mustExist = true;
  if (xdsRoot === 'SYSTEM') {
    mustExist = false;
  } else if (xdsRoot !== '') {
    rootCertPath = abs(xdsRoot);
  } else if (isFile(vmRoot)) {
    rootCertPath = vmRoot;
  } else if (secrets.provCertDir !== '') {
    // pilot-agent does not check this one: on a VM the CA may write it after the first certificate.
    rootCertPath = path.join(secrets.provCertDir, 'root-cert.pem');
    mustExist = false;
  } else if (secrets.fileMountedCerts) {
    const clientRoot = proxyConfig.proxyMetadata['ISTIO_META_TLS_CLIENT_ROOT_CERT'] ?? '';
    rootCertPath = clientRoot !== '' ? abs(clientRoot) : path.join(secrets.fileMountedCertDir, 'root-cert.pem');
  } else if (certProvider === 'none') {
    if (!plaintext) issues.error(read.env.source('PILOT_CERT_PROVIDER'), 'root CA file for XDS required but configured provider as none');
    mustExist = false;
  } else {
    rootCertPath = abs(K8S_ROOT_CERT);
  }
  if (!plaintext && mustExist && !isFile(rootCertPath)) {
    issues.error(xdsRoot !== '' ? read.env.source('XDS_ROOT_CA') : {}, `root CA file for XDS does not exist ${rootCertPath}`);
  }
  const istiodSan = read.string('ISTIOD_SAN', '');
  return {
    address: proxyConfig.discoveryAddress,
    plaintext,
    rootCertPath,
    serverName: istiodSan !== '' ? istiodSan : serverNameFor(proxyConfig.discoveryAddress),
    tokenPath,
    headers: { ClusterID: identity.clusterId, ...headersWithPrefix(read.env, 'XDS_HEADER_') },
    delta: read.bool('ISTIO_DELTA_XDS', true),
    socketPath: path.join(abs(proxyConfig.configPath), 'XDS'),
  };
}

function buildDns(
  read: EnvReader,
  meta: Map<string, SourcedValue>,
  proxyType: 'sidecar' | 'router',
  abs: (p: string) => string,
): DnsConfig {
  // The agent reads these from the environment or, failing that, from proxyMetadata (never exported).
  const flag = (key: string): boolean => {
    const value = meta.get(key);
    // A bad value was reported with the other typed metadata; here it just reads as false.
    return value === undefined ? false : (parseBool(value.value) ?? false);
  };
  const capture = flag('DNS_CAPTURE');
  const server = flag('ENABLE_DNS_SERVER');
  const resolvConf = read.string('ISTIO_RESOLV_CONF', '');
  return {
    enabled: (proxyType === 'sidecar' && capture) || server,
    // Port 0 (any free port) is allowed, as Go's listener allows it; the agent logs the port it got.
    address: read.hostPort('DNS_PROXY_ADDR', 'localhost:15053', { allowZero: true }),
    forwardParallel: read.bool('DNS_FORWARD_PARALLEL', false),
    forwardTimeoutMs: read.durationMs('DNS_FORWARD_TIMEOUT', 5000, { min: 1 }),
    resolvConfPath: abs(resolvConf !== '' ? resolvConf : '/etc/resolv.conf'),
  };
}

// ---- files the agent cannot start without ----

function checkCaRoot(ca: CaConfig, secrets: SecretsConfig, issues: Issues): void {
  if (secrets.fileMountedCerts || ca.plaintext || ca.rootCertPath === '') return;
  let text: string;
  try {
    text = readFileSync(ca.rootCertPath, 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) {
      issues.error({}, `invalid config - ${ca.address} missing a root certificate ${ca.rootCertPath}`);
    } else {
      issues.error({ file: ca.rootCertPath }, `cannot read the CA root certificate: ${errnoText(err)}`);
    }
    return;
  }
  if (!containsCertificate(text)) {
    issues.error({ file: ca.rootCertPath }, `CA root certificate file for ${ca.address} does not contain a PEM certificate`);
  }
}

function containsCertificate(text: string): boolean {
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  return blocks.some((block) => {
    try {
      new X509Certificate(block);
      return true;
    } catch {
      return false;
    }
  });
}

function checkToken(tokenPath: string, secrets: SecretsConfig, issues: Issues): void {
  if (secrets.fileMountedCerts) return;
  let token: string | undefined;
  try {
    token = readFileSync(tokenPath, 'utf8');
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) {
      issues.error({ file: tokenPath }, `cannot read the istiod token: ${errnoText(err)}`);
      return;
    }
  }
  // A certificate issued earlier (PROV_CERT) authenticates renewals over mTLS: then an empty or
  // vanished token is the normal state of a VM after the token expired, not a mistake.
  const provisioned =
    secrets.provCertDir !== '' &&
    isFile(path.join(secrets.provCertDir, 'cert-chain.pem')) &&
    isFile(path.join(secrets.provCertDir, 'key.pem'));
  if (token !== undefined) {
    if (token.trim() === '' && !provisioned) issues.error({ file: tokenPath }, 'token file is empty');
    return;
  }
  if (!provisioned) {
    const where = secrets.provCertDir === '' ? 'PROV_CERT is empty' : `no cert-chain.pem and key.pem in ${secrets.provCertDir}`;
    issues.error(
      { file: tokenPath },
      `neither a token nor a provisioned certificate is available to authenticate to istiod: the token file does not exist and ${where}`,
    );
  }
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

