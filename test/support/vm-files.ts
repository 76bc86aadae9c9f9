import { mkdirSync, writeFileSync } from 'node:fs';
import { freePort } from './ports.js';
import path from 'node:path';

export interface VmFilesOptions {
  /** Extra or replacement cluster.env lines, KEY → raw (already quoted) value. */
  clusterEnv?: Record<string, string>;
  /** The mesh config file contents (YAML). */
  mesh?: string;
  rootCertPem?: string;
  /** undefined = no token file. */
  token?: string;
  /** The VM's resolv.conf (default: nameserver 127.0.0.1, search vm.example.org). */
  resolvConf?: string;
}

/** cluster.env as `istioctl x workload entry configure --autoregister` writes it for the scenario's VM. */
export function scenarioClusterEnv(overrides: Record<string, string> = {}): string {
  const values: Record<string, string> = {
    CANONICAL_REVISION: "'latest'",
    CANONICAL_SERVICE: "'nginx'",
    ISTIO_INBOUND_PORTS: "'*'",
    ISTIO_LOCAL_EXCLUDE_PORTS: "'22,15090,15021,15020'",
    ISTIO_METAJSON_LABELS:
      '\'{"app":"nginx","class":"vm","service.istio.io/canonical-name":"nginx","service.istio.io/canonical-version":"latest"}\'',
    ISTIO_META_AUTO_REGISTER_GROUP: "'nginx'",
    ISTIO_META_CLUSTER_ID: "'Kubernetes'",
    ISTIO_META_DNS_CAPTURE: "'true'",
    ISTIO_META_MESH_ID: "''",
    ISTIO_META_NETWORK: "''",
    ISTIO_META_WORKLOAD_NAME: "'nginx'",
    ISTIO_NAMESPACE: "'istio-demo'",
    ISTIO_SERVICE: "'nginx.istio-demo'",
    ISTIO_SERVICE_CIDR: "'*'",
    POD_NAMESPACE: "'istio-demo'",
    SERVICE_ACCOUNT: "'vm'",
    TRUST_DOMAIN: "''",
    ...overrides,
  };
  return Object.keys(values)
    .sort()
    .map((k) => `${k}=${values[k]}`)
    .join('\n')
    .concat('\n');
}

export interface MeshOptions {
  /** The status server's port; tests default to 0 (none), so they never contend for 15020. */
  statusPort?: number;
  /** Envoy: the binary (a fake, in tests) and its admin port. */
  binaryPath?: string;
  proxyAdminPort?: number;
}

/** The mesh config istioctl writes for the scenario's VM, plus test-only settings (see MeshOptions). */
export function scenarioMesh(discoveryAddress: string, options: MeshOptions = {}): string {
  const extra = [
    `  statusPort: ${options.statusPort ?? 0}`,
    ...(options.binaryPath ? [`  binaryPath: ${options.binaryPath}`] : []),
    ...(options.proxyAdminPort ? [`  proxyAdminPort: ${options.proxyAdminPort}`] : []),
  ];
  return [
    'defaultConfig:',
    `  discoveryAddress: ${discoveryAddress}`,
    '  proxyMetadata:',
    "    CANONICAL_REVISION: latest",
    "    CANONICAL_SERVICE: nginx",
    "    ISTIO_META_AUTO_REGISTER_GROUP: nginx",
    "    ISTIO_META_CLUSTER_ID: Kubernetes",
    "    ISTIO_META_DNS_CAPTURE: 'true'",
    "    ISTIO_META_MESH_ID: ''",
    "    ISTIO_META_NETWORK: ''",
    "    ISTIO_META_WORKLOAD_NAME: nginx",
    "    POD_NAMESPACE: istio-demo",
    "    SERVICE_ACCOUNT: vm",
    "    TRUST_DOMAIN: ''",
    '  readinessProbe:',
    '    httpGet:',
    '      path: /',
    '      port: 80',
    '    periodSeconds: 5',
    ...extra,
    '',
  ].join('\n');
}

/** Lays out the operator's files under `cwd` at pilot-agent's cwd-relative default paths. */
export function writeVmFiles(cwd: string, options: VmFilesOptions): void {
  const put = (rel: string, content: string) => {
    const file = path.join(cwd, rel);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, content);
  };
  put('var/lib/istio/envoy/cluster.env', scenarioClusterEnv(options.clusterEnv));
  if (options.mesh !== undefined) put('etc/istio/config/mesh', options.mesh);
  if (options.rootCertPem !== undefined) put('etc/certs/root-cert.pem', options.rootCertPem);
  if (options.token !== undefined) put('var/run/secrets/tokens/istio-token', options.token);
  // The DNS proxy's upstreams and search domain: never the machine's own resolver in tests.
  put('etc/resolv.conf', options.resolvConf ?? 'nameserver 127.0.0.1\nsearch vm.example.org\n');
}

/** Mesh options that run the fake Envoy (test/fakes/fake-envoy.ts) on a free admin port. */
export async function fakeEnvoyMeshOptions(dir: string): Promise<MeshOptions> {
  const { writeFakeEnvoyBinary } = await import('../fakes/fake-envoy-binary.js');
  return { binaryPath: writeFakeEnvoyBinary(dir), proxyAdminPort: await freePort() };
}
