import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  CLUSTER_ENV,
  ISTIOCTL_FIXTURES,
  MESH,
  ROOT_CERT,
  SIDECAR_ENV,
  TOKEN,
  VmTrees,
  fakeInterfaces,
} from '../../test/fixtures/config/vm-tree.js';
import { ConfigErrors } from './errors.js';
import { loadAgentConfig, type LoadAgentConfigInput } from './load-agent-config.js';
import { parseShellEnv } from './shell-env.js';
import type { AgentConfig } from './types.js';

type Fixture = 'ipv4' | 'ipv6' | 'nil-proxy-metadata';

/** The fixture's cluster.env with some values replaced in place (line numbers unchanged). */
function clusterEnvWith(fixture: Fixture, values: Record<string, string>): string {
  const lines = readFileSync(path.join(ISTIOCTL_FIXTURES, fixture, 'cluster.env'), 'utf8').split('\n');
  for (const [key, raw] of Object.entries(values)) {
    const i = lines.findIndex((l) => l.startsWith(`${key}=`));
    if (i < 0) throw new Error(`${key} not in ${fixture}/cluster.env`);
    lines[i] = `${key}=${raw}`;
  }
  return lines.join('\n');
}

function lineOf(fixture: Fixture, key: string): number {
  const lines = readFileSync(path.join(ISTIOCTL_FIXTURES, fixture, 'cluster.env'), 'utf8').split('\n');
  return lines.findIndex((l) => l.startsWith(`${key}=`)) + 1;
}

describe('loadAgentConfig', () => {
  const trees = VmTrees.forSuite();

  function load(cwd: string, env: Record<string, string> = {}, extra: Partial<LoadAgentConfigInput> = {}): AgentConfig {
    return loadAgentConfig({
      cwd,
      env,
      networkInterfaces: fakeInterfaces('192.168.56.11'),
      hostname: () => 'vm-1.example.com',
      ...extra,
    });
  }

  function loadErrors(cwd: string, env: Record<string, string> = {}, extra: Partial<LoadAgentConfigInput> = {}): string[] {
    try {
      load(cwd, env, extra);
    } catch (err) {
      assert.ok(err instanceof ConfigErrors, `expected ConfigErrors, got ${String(err)}`);
      return err.errors.map((e) => e.message);
    }
    assert.fail('expected loadAgentConfig to throw ConfigErrors');
  }

  describe('istioctl output', () => {
    it('loads the ipv4 files unchanged', () => {
      const cwd = trees.make('ipv4');
      const config = load(cwd);
      assert.equal(config.cwd, cwd);
      assert.equal(config.proxyType, 'sidecar');
      assert.deepEqual(config.identity, {
        podName: 'vm-1',
        podNamespace: 'istio-demo',
        serviceAccount: 'vm',
        trustDomain: '',
        instanceIps: ['192.168.56.11'],
        ipMode: 'ipv4',
        proxyId: 'vm-1.istio-demo',
        domain: 'istio-demo.svc.cluster.local',
        nodeId: 'sidecar~192.168.56.11~vm-1.istio-demo~istio-demo.svc.cluster.local',
        clusterId: 'Kubernetes',
        network: '',
        meshId: '',
        spiffeId: 'spiffe:///ns/istio-demo/sa/vm',
      });
      assert.deepEqual(config.ca, {
        provider: 'Citadel',
        address: 'istiod.istio-system.svc:15012',
        plaintext: false,
        rootCertPath: path.join(cwd, ROOT_CERT),
        serverName: 'istiod.istio-system.svc',
        tokenPath: path.join(cwd, TOKEN),
        headers: { ClusterID: 'Kubernetes' },
        certSigner: '',
      });
      assert.deepEqual(config.xds, {
        address: 'istiod.istio-system.svc:15012',
        plaintext: false,
        rootCertPath: path.join(cwd, ROOT_CERT),
        serverName: 'istiod.istio-system.svc',
        tokenPath: path.join(cwd, TOKEN),
        headers: { ClusterID: 'Kubernetes' },
        delta: true,
        socketPath: path.join(cwd, 'etc/istio/proxy/XDS'),
      });
      assert.deepEqual(config.secrets, {
        ttlSeconds: 86400,
        gracePeriodRatio: 0.5,
        gracePeriodRatioJitter: 0.01,
        rsaKeySize: 2048,
        pkcs8: false,
        provCertDir: path.join(cwd, 'etc/certs'),
        outputCertsDir: path.join(cwd, 'etc/certs'),
        fileMountedCerts: false,
        fileMountedCertDir: path.join(cwd, 'var/run/secrets/workload-spiffe-credentials'),
        sdsSocketPath: path.join(cwd, 'var/run/secrets/workload-spiffe-uds/socket'),
      });
      assert.deepEqual(config.dns, {
        enabled: true,
        address: 'localhost:15053',
        forwardParallel: false,
        forwardTimeoutMs: 5000,
        resolvConfPath: '/etc/resolv.conf',
      });
      assert.deepEqual(config.labels, {
        app: 'nginx',
        'service.istio.io/canonical-name': 'nginx',
        'service.istio.io/canonical-revision': 'v1',
        version: 'v1',
      });
      assert.equal(config.metaEnv['CLUSTER_ID'], 'Kubernetes');
      assert.equal(config.metaEnv['DNS_CAPTURE'], 'true');
      assert.equal(config.metaEnv['AUTO_REGISTER_GROUP'], 'nginx');
      assert.equal(config.metaEnv['POD_PORTS'], '[{"name":"http","containerPort":80,"protocol":"TCP"}]');
      assert.equal(config.disableEnvoy, false);
      assert.equal(config.proxyConfig.serviceCluster, 'nginx.istio-demo');
      assert.equal(config.proxyConfig.discoveryAddress, 'istiod.istio-system.svc:15012');
      assert.deepEqual(config.proxyConfig.readinessProbe, { httpGet: { path: '/', port: 80 }, initialDelaySeconds: 1, periodSeconds: 5 });
      assert.equal(config.proxyConfig.proxyMetadata['ISTIO_META_DNS_CAPTURE'], 'true');
      assert.equal(config.env['TRUST_DOMAIN'], '');
      assert.equal(config.env['INSTANCE_IP'], '192.168.56.11');
      assert.equal(config.env['CA_ADDR'], 'istiod.istio-system.svc:15012');
      assert.equal(config.env['PROXY_CONFIG'], '\nserviceCluster: nginx.istio-demo\ncontrolPlaneAuthPolicy: MUTUAL_TLS\n');
      assert.equal(config.notices[0], `Apply mesh config from file ${readFileSync(path.join(cwd, MESH), 'utf8')}`);
      assert.equal(config.notices[1], `Apply proxy config from env ${config.env['PROXY_CONFIG']}`);
      assert.match(config.notices.at(-1) ?? '', /^Effective config: binaryPath: /);
      assert.deepEqual(config.warnings, []);
    });

    it('loads the ipv6 files unchanged, with the revision CA address', () => {
      const cwd = trees.make('ipv6');
      const config = load(cwd, {}, { networkInterfaces: fakeInterfaces('fd00:56::11', 'fe80::1') });
      assert.deepEqual(config.identity.instanceIps, ['fd00:56::11']);
      assert.equal(config.identity.ipMode, 'ipv6');
      assert.equal(config.identity.nodeId, 'sidecar~fd00:56::11~vm-1.istio-demo~istio-demo.svc.cluster.local');
      assert.equal(config.ca.address, 'istiod-canary.istio-system.svc:15012');
      assert.equal(config.ca.serverName, 'istiod-canary.istio-system.svc');
      assert.equal(config.xds.address, 'istiod-canary.istio-system.svc:15012');
      assert.deepEqual(config.proxyConfig.readinessProbe, { tcpSocket: { port: 80 }, periodSeconds: 10 });
    });

    it('loads the nil-proxy-metadata files unchanged', () => {
      const cwd = trees.make('nil-proxy-metadata');
      const config = load(cwd);
      assert.deepEqual(config.proxyConfig.proxyMetadata, {});
      assert.equal(config.metaEnv['DNS_CAPTURE'], 'true');
      assert.equal(config.metaEnv['AUTO_REGISTER_GROUP'], undefined);
      assert.equal(config.dns.enabled, true);
      assert.deepEqual(config.proxyConfig.readinessProbe, { exec: { command: ['/usr/bin/curl', '-sf', 'http://localhost/'] }, periodSeconds: 5 });
      assert.equal(config.identity.instanceIps[0], '192.168.56.12');
    });

    it('gives the same result under istio-start.sh, which has exported everything already', () => {
      const cwd = trees.make('ipv4');
      const direct = load(cwd);
      const fileVars = parseShellEnv(readFileSync(path.join(cwd, CLUSTER_ENV), 'utf8'), { file: 'cluster.env' }).vars;
      const exported: Record<string, string> = Object.fromEntries([...fileVars].map(([k, v]) => [k, v.value]));
      Object.assign(exported, {
        INSTANCE_IP: '192.168.56.11',
        POD_NAME: 'vm-1',
        POD_NAMESPACE: 'istio-demo',
        CA_ADDR: 'istiod.istio-system.svc:15012',
        PROV_CERT: './etc/certs',
        OUTPUT_CERTS: './etc/certs',
        PROXY_CONFIG: '\nserviceCluster: nginx.istio-demo\ncontrolPlaneAuthPolicy: MUTUAL_TLS\n',
      });
      const underScript = load(cwd, exported);
      assert.deepEqual(underScript.identity, direct.identity);
      assert.deepEqual(underScript.ca, direct.ca);
      assert.deepEqual(underScript.xds, direct.xds);
      assert.deepEqual(underScript.secrets, direct.secrets);
      assert.deepEqual(underScript.proxyConfig, direct.proxyConfig);
      assert.deepEqual(underScript.metaEnv, direct.metaEnv);
    });

    it('names the cluster.env line even when the process env carries the same bad value', () => {
      const cwd = trees.make('ipv4', { [CLUSTER_ENV]: clusterEnvWith('ipv4', { ISTIO_META_DNS_CAPTURE: "'yes'" }) });
      const line = lineOf('ipv4', 'ISTIO_META_DNS_CAPTURE');
      const expected = `cluster.env:${line}: ISTIO_META_DNS_CAPTURE: expected "true" or "false", got "yes"`;
      assert.deepEqual(loadErrors(cwd), [expected]);
      assert.deepEqual(loadErrors(cwd, { ISTIO_META_DNS_CAPTURE: 'yes' }), [expected]);
    });
  });

  describe('precedence', () => {
    it('lets the process env win over cluster.env, and cluster.env over sidecar.env', () => {
      const cwd = trees.make('ipv4', { [SIDECAR_ENV]: "SERVICE_ACCOUNT='from-sidecar'\nSECRET_TTL=12h\nDNS_FORWARD_PARALLEL=true\n" });
      const config = load(cwd, { DNS_FORWARD_PARALLEL: 'false' });
      assert.equal(config.identity.serviceAccount, 'vm');
      assert.equal(config.secrets.ttlSeconds, 43200);
      assert.equal(config.dns.forwardParallel, false);
      assert.equal(load(cwd, { SERVICE_ACCOUNT: 'from-env' }).identity.serviceAccount, 'from-env');
    });

    it('lets sidecar.env choose the cluster.env to read, and expand its values', () => {
      const cwd = trees.make('ipv4', {
        [SIDECAR_ENV]: '# istio-sidecar package defaults\nexport ISTIO_CLUSTER_CONFIG=./opt/vm/cluster.env\nSA=vm-from-sidecar\n',
        'opt/vm/cluster.env': 'SERVICE_ACCOUNT="${SA}"\nISTIO_NAMESPACE=\'istio-demo\'\n',
      });
      const config = load(cwd);
      assert.equal(config.identity.serviceAccount, 'vm-from-sidecar');
      assert.equal(config.env['SA'], 'vm-from-sidecar');
    });

    it('lets ISTIO_NAMESPACE override POD_NAMESPACE, which defaults to "default"', () => {
      const cwd = trees.make('ipv4', { [CLUSTER_ENV]: clusterEnvWith('ipv4', { ISTIO_NAMESPACE: "'other-ns'" }) });
      assert.equal(load(cwd).identity.podNamespace, 'other-ns');
      assert.equal(load(cwd, { POD_NAMESPACE: 'env-ns' }).identity.podNamespace, 'other-ns');
      const bare = trees.make(undefined, { [CLUSTER_ENV]: "SERVICE_ACCOUNT='vm'\n" });
      assert.equal(load(bare).identity.podNamespace, 'default');
      assert.equal(load(bare, { POD_NAMESPACE: 'env-ns' }).identity.podNamespace, 'env-ns');
    });

    it('keeps TRUST_DOMAIN=\'\' empty and defaults an unset one to cluster.local', () => {
      const cwd = trees.make('ipv4');
      assert.equal(load(cwd).identity.trustDomain, '');
      assert.equal(load(cwd).identity.spiffeId, 'spiffe:///ns/istio-demo/sa/vm');
      const unset = trees.make(undefined, { [CLUSTER_ENV]: "SERVICE_ACCOUNT='vm'\nISTIO_NAMESPACE='istio-demo'\n" });
      assert.equal(load(unset).identity.spiffeId, 'spiffe://cluster.local/ns/istio-demo/sa/vm');
    });

    it('uses POD_NAME when set, else the short host name', () => {
      const cwd = trees.make('ipv4');
      assert.equal(load(cwd).identity.podName, 'vm-1');
      assert.equal(load(cwd, { POD_NAME: 'custom' }).identity.proxyId, 'custom.istio-demo');
    });

    it('lets INSTANCE_IP win over ISTIO_SVC_IP, and lists interface addresses after it', () => {
      const cwd = trees.make('ipv4');
      const config = load(cwd, { INSTANCE_IP: '10.0.0.5' }, { networkInterfaces: fakeInterfaces('10.0.0.5', '169.254.1.1', 'fd00::5') });
      assert.deepEqual(config.identity.instanceIps, ['10.0.0.5', 'fd00::5']);
      assert.equal(config.identity.ipMode, 'dual');
    });

    it('falls back to both loopback addresses when no interface is usable', () => {
      const cwd = trees.make(undefined, { [CLUSTER_ENV]: "SERVICE_ACCOUNT='vm'\n" });
      const config = load(cwd, {}, { networkInterfaces: fakeInterfaces() });
      assert.deepEqual(config.identity.instanceIps, ['127.0.0.1', '::1']);
      assert.equal(config.identity.ipMode, 'dual');
    });

    it('warns about an INSTANCE_IP that is not an IP and ignores it', () => {
      const cwd = trees.make('ipv4');
      const config = load(cwd, { INSTANCE_IP: 'vm-1' });
      assert.deepEqual(config.identity.instanceIps, ['192.168.56.11']);
      assert.match(config.warnings.join('\n'), /environment: INSTANCE_IP: "vm-1" is not an IP address, ignored/);
    });

    it('lets env ISTIO_META_* win over proxyMetadata in metaEnv', () => {
      const cwd = trees.make('ipv4');
      const config = load(cwd, { ISTIO_META_WORKLOAD_NAME: 'from-env' });
      assert.equal(config.metaEnv['WORKLOAD_NAME'], 'from-env');
      assert.equal(config.proxyConfig.proxyMetadata['ISTIO_META_WORKLOAD_NAME'], 'nginx');
    });

    it('enables DNS from proxyMetadata alone, without exporting it as env', () => {
      const cwd = trees.make('ipv4', { [CLUSTER_ENV]: "SERVICE_ACCOUNT='vm'\nISTIO_NAMESPACE='istio-demo'\n" });
      const config = load(cwd);
      assert.equal(config.dns.enabled, true);
      assert.equal(config.env['ISTIO_META_DNS_CAPTURE'], undefined);
      assert.equal(load(cwd, {}, { proxyType: 'router' }).dns.enabled, false, 'DNS_CAPTURE is for sidecars');
      assert.equal(load(cwd, { ISTIO_META_ENABLE_DNS_SERVER: 'true' }, { proxyType: 'router' }).dns.enabled, true);
    });

    it('derives CA_ADDR and PROXY_CONFIG from PILOT_ADDRESS like istio-start.sh', () => {
      const cwd = trees.make('ipv4');
      const config = load(cwd, { PILOT_ADDRESS: 'istiod.custom.svc:15012' });
      assert.equal(config.ca.address, 'istiod.custom.svc:15012');
      assert.equal(config.env['PROXY_CONFIG'], '\ndiscoveryAddress: istiod.custom.svc:15012\n');
      assert.equal(config.proxyConfig.discoveryAddress, 'istiod.custom.svc:15012');
      assert.equal(config.proxyConfig.serviceCluster, 'istio-proxy', 'no serviceCluster default once PROXY_CONFIG is set');
      const again = load(cwd, { PILOT_ADDRESS: 'istiod.custom.svc:15012', PROXY_CONFIG: config.env['PROXY_CONFIG'] ?? '' });
      assert.equal(again.env['PROXY_CONFIG'], config.env['PROXY_CONFIG'], 'not appended twice');
      const port = load(cwd, { ISTIO_PILOT_PORT: '15010', ISTIO_SYSTEM_NAMESPACE: 'mesh' });
      assert.equal(port.ca.address, 'istiod.mesh.svc:15010');
      assert.equal(port.ca.plaintext, true);
    });

    it('uses ISTIOD_SAN for xDS, and for the CA only without CA_ADDR', () => {
      const cwd = trees.make('ipv4');
      const config = load(cwd, { ISTIOD_SAN: 'istiod.example' });
      assert.equal(config.xds.serverName, 'istiod.example');
      assert.equal(config.ca.serverName, 'istiod.istio-system.svc');
    });

    it('collects CA_HEADER_* and XDS_HEADER_* headers', () => {
      const cwd = trees.make('ipv4');
      const config = load(cwd, { CA_HEADER_x_tenant: 'a', XDS_HEADER_x_route: 'b' });
      assert.deepEqual(config.ca.headers, { ClusterID: 'Kubernetes', x_tenant: 'a' });
      assert.deepEqual(config.xds.headers, { ClusterID: 'Kubernetes', x_route: 'b' });
    });

    it('resolves relative paths against the given cwd', () => {
      const cwd = trees.make(undefined, {
        'opt/vm/cluster.env': "SERVICE_ACCOUNT='vm'\nPROV_CERT=./secure/certs\nOUTPUT_CERTS=out\n",
        'opt/vm/mesh.yaml': 'defaultConfig:\n  discoveryAddress: istiod.other.svc:15012\n',
        'secure/certs/root-cert.pem': trees.rootPem,
      });
      const config = load(cwd, { ISTIO_CLUSTER_CONFIG: 'opt/vm/cluster.env', ISTIO_RESOLV_CONF: 'etc/resolv.conf' }, { flags: { meshConfigFile: 'opt/vm/mesh.yaml' } });
      assert.equal(config.secrets.provCertDir, path.join(cwd, 'secure/certs'));
      assert.equal(config.secrets.outputCertsDir, path.join(cwd, 'out'));
      assert.equal(config.ca.rootCertPath, path.join(cwd, 'secure/certs/root-cert.pem'));
      assert.equal(config.dns.resolvConfPath, path.join(cwd, 'etc/resolv.conf'));
      assert.equal(config.proxyConfig.discoveryAddress, 'istiod.other.svc:15012');
    });

    it('keeps an explicitly empty PROV_CERT and OUTPUT_CERTS empty', () => {
      const cwd = trees.make('ipv4');
      const config = load(cwd, { PROV_CERT: '', OUTPUT_CERTS: '', CA_ROOT_CA: './etc/certs/root-cert.pem' });
      assert.equal(config.secrets.provCertDir, '');
      assert.equal(config.secrets.outputCertsDir, '');
      assert.equal(config.ca.rootCertPath, path.join(cwd, ROOT_CERT));
      // Without PROV_CERT the CA root falls back to the Kubernetes path, which a VM does not have.
      assert.deepEqual(loadErrors(cwd, { PROV_CERT: '' }), [
        `invalid config - istiod.istio-system.svc:15012 missing a root certificate ${path.join(cwd, 'var/run/secrets/istio/root-cert.pem')}`,
      ]);
    });

    it('reads the key settings', () => {
      const cwd = trees.make('ipv4');
      assert.equal(load(cwd, { ECC_SIGNATURE_ALGORITHM: 'ECDSA' }).secrets.eccCurve, 'P256');
      assert.equal(load(cwd, { ECC_SIGNATURE_ALGORITHM: 'ECDSA', ECC_CURVE: 'P384' }).secrets.eccCurve, 'P384');
      assert.equal(load(cwd).secrets.eccCurve, undefined);
      assert.equal(load(cwd, { WORKLOAD_RSA_KEY_SIZE: '4096', PKCS8_KEY: 'true' }).secrets.rsaKeySize, 4096);
    });

    it('returns a deep-frozen object', () => {
      const config = load(trees.make('ipv4'));
      assert.ok(Object.isFrozen(config));
      assert.ok(Object.isFrozen(config.identity.instanceIps));
      assert.ok(Object.isFrozen(config.proxyConfig.proxyMetadata));
      assert.throws(() => {
        (config.identity as { podName: string }).podName = 'x';
      }, TypeError);
    });
  });

  describe('bad input', () => {
    it('reports a cluster.env that exists but cannot be read', () => {
      const cwd = trees.make('ipv4', { [CLUSTER_ENV]: null });
      mkdirSync(path.join(cwd, CLUSTER_ENV));
      assert.deepEqual(loadErrors(cwd), [`cluster.env: cannot read ${path.join(cwd, CLUSTER_ENV)}: is a directory`]);
    });

    it('names the file as the operator gave it', () => {
      const cwd = trees.make(undefined, { 'vm.env': "A=1\nB='open\n" });
      assert.deepEqual(loadErrors(cwd, { ISTIO_CLUSTER_CONFIG: './vm.env' }), ['./vm.env:2: B: unterminated single quote: bash stops reading the file here']);
    });

    it('reports a malformed cluster.env line', () => {
      const text = `${readFileSync(path.join(ISTIOCTL_FIXTURES, 'ipv4/cluster.env'), 'utf8')}ISTIO_SVC_IP 10.0.0.1\n`;
      const cwd = trees.make('ipv4', { [CLUSTER_ENV]: text });
      assert.deepEqual(loadErrors(cwd), [`cluster.env:${text.split('\n').length - 1}: ISTIO_SVC_IP: not a KEY=value assignment`]);
    });

    it('reports invalid YAML in the mesh file', () => {
      const cwd = trees.make('ipv4', { [MESH]: 'defaultConfig:\n  discoveryAddress: "istiod\n' });
      const errors = loadErrors(cwd);
      assert.equal(errors.length, 1);
      assert.match(errors[0] ?? '', /^mesh:\d: invalid YAML: /);
    });

    it('reports a wrong type in the mesh config with its line', () => {
      const mesh = readFileSync(path.join(ISTIOCTL_FIXTURES, 'ipv4/mesh.yaml'), 'utf8').replace('    periodSeconds: 5', '    periodSeconds: often');
      const cwd = trees.make('ipv4', { [MESH]: mesh });
      const line = mesh.split('\n').indexOf('    periodSeconds: often') + 1;
      assert.deepEqual(loadErrors(cwd), [`mesh:${line}: defaultConfig.readinessProbe.periodSeconds: expected an integer, got a string ("often")`]);
    });

    it('reports invalid JSON in ISTIO_METAJSON_LABELS', () => {
      const cwd = trees.make('ipv4', { [CLUSTER_ENV]: clusterEnvWith('ipv4', { ISTIO_METAJSON_LABELS: `'{"app":"nginx",}'` }) });
      const errors = loadErrors(cwd);
      assert.equal(errors.length, 1);
      assert.match(errors[0] ?? '', new RegExp(`^cluster\\.env:${lineOf('ipv4', 'ISTIO_METAJSON_LABELS')}: ISTIO_METAJSON_LABELS: invalid JSON: `));
      const notStrings = trees.make('ipv4', { [CLUSTER_ENV]: clusterEnvWith('ipv4', { ISTIO_METAJSON_LABELS: `'{"replicas":2}'` }) });
      assert.match(loadErrors(notStrings)[0] ?? '', /ISTIO_METAJSON_LABELS: expected a JSON object of strings, but "replicas" is a number \(2\)/);
    });

    it('reports a boolean that is not a boolean, wherever it came from', () => {
      const cwd = trees.make('ipv4', {
        [MESH]: readFileSync(path.join(ISTIOCTL_FIXTURES, 'ipv4/mesh.yaml'), 'utf8').replace('ISTIO_META_DNS_CAPTURE: "true"', 'ISTIO_META_DNS_AUTO_ALLOCATE: "on"'),
      });
      const meshLine = readFileSync(path.join(cwd, MESH), 'utf8').split('\n').findIndex((l) => l.includes('DNS_AUTO_ALLOCATE')) + 1;
      assert.deepEqual(loadErrors(cwd, { DNS_FORWARD_PARALLEL: 'yes' }), [
        `mesh:${meshLine}: defaultConfig.proxyMetadata.ISTIO_META_DNS_AUTO_ALLOCATE: expected "true" or "false", got "on"`,
        'environment: DNS_FORWARD_PARALLEL: expected "true" or "false", got "yes"',
      ]);
    });

    it('reports a missing root certificate, naming the path', () => {
      const cwd = trees.make('ipv4', { [ROOT_CERT]: null });
      const root = path.join(cwd, ROOT_CERT);
      assert.deepEqual(loadErrors(cwd), [`invalid config - istiod.istio-system.svc:15012 missing a root certificate ${root}`]);
    });

    it('reports a root certificate file without a PEM certificate', () => {
      const cwd = trees.make('ipv4', { [ROOT_CERT]: '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n' });
      assert.deepEqual(loadErrors(cwd), [
        `${path.join(cwd, ROOT_CERT)}: CA root certificate file for istiod.istio-system.svc:15012 does not contain a PEM certificate`,
      ]);
    });

    it('reports an empty token file', () => {
      const cwd = trees.make('ipv4', { [TOKEN]: '\n' });
      assert.deepEqual(loadErrors(cwd), [`${path.join(cwd, TOKEN)}: token file is empty`]);
    });

    it('needs a token or a provisioned certificate', () => {
      const cwd = trees.make('ipv4', { [TOKEN]: null });
      assert.deepEqual(loadErrors(cwd), [
        `${path.join(cwd, TOKEN)}: neither a token nor a provisioned certificate is available to authenticate to istiod: the token file does not exist and no cert-chain.pem and key.pem in ${path.join(cwd, 'etc/certs')}`,
      ]);
      writeFileSync(path.join(cwd, 'etc/certs/cert-chain.pem'), trees.rootPem);
      writeFileSync(path.join(cwd, 'etc/certs/key.pem'), 'key');
      assert.equal(load(cwd).identity.podName, 'vm-1', 'a provisioned certificate is enough after a reboot');
    });

    it('reports ports that are not ports', () => {
      const cwd = trees.make('ipv4', {
        [MESH]: readFileSync(path.join(ISTIOCTL_FIXTURES, 'ipv4/mesh.yaml'), 'utf8').replace('  discoveryAddress:', '  proxyAdminPort: 99999\n  discoveryAddress:'),
      });
      assert.deepEqual(loadErrors(cwd, { ENVOY_STATUS_PORT: '0', DNS_PROXY_ADDR: 'localhost:70000' }), [
        'mesh:2: defaultConfig.proxyAdminPort: invalid proxy admin port: must be a port number (1-65535), got 99999',
        'environment: ENVOY_STATUS_PORT: expected a port number (1-65535), got "0"',
        'environment: DNS_PROXY_ADDR: port "70000" in "localhost:70000" is not a port number (0-65535)',
      ]);
      // Port 0 asks for any free port: allowed for the DNS proxy, as Go's listener allows it.
      assert.equal(load(trees.make('ipv4'), { DNS_PROXY_ADDR: '127.0.0.1:0' }).dns.address, '127.0.0.1:0');
    });

    it('reports a bad readinessProbe', () => {
      const mesh = readFileSync(path.join(ISTIOCTL_FIXTURES, 'ipv4/mesh.yaml'), 'utf8').replace('    periodSeconds: 5', '    periodSeconds: -1');
      const cwd = trees.make('ipv4', { [MESH]: mesh });
      const line = mesh.split('\n').indexOf('    periodSeconds: -1') + 1;
      assert.deepEqual(loadErrors(cwd), [`mesh:${line}: defaultConfig.readinessProbe.periodSeconds: must be >= 0, got -1`]);
    });

    it('reports bad key and socket settings', () => {
      const cwd = trees.make('ipv4');
      assert.deepEqual(
        loadErrors(cwd, {
          ECC_SIGNATURE_ALGORITHM: 'ECDSA',
          ECC_CURVE: 'P521',
          WORKLOAD_RSA_KEY_SIZE: '1024',
          WORKLOAD_IDENTITY_SOCKET_FILE: 'dir/socket',
          SECRET_TTL: '1 day',
        }),
        [
          'environment: ECC_CURVE: expected "P256" or "P384", got "P521"',
          'environment: WORKLOAD_IDENTITY_SOCKET_FILE: workload identity socket file override must be a filename, not a path: "dir/socket"',
          'environment: SECRET_TTL: expected a duration such as "5s", "300ms" or "1h30m", got "1 day"',
          'environment: WORKLOAD_RSA_KEY_SIZE: must be >= 2048, got "1024"',
        ],
      );
      assert.deepEqual(loadErrors(cwd, { ECC_SIGNATURE_ALGORITHM: 'ED25519' }), [
        'environment: ECC_SIGNATURE_ALGORITHM: expected "ECDSA" (or empty for RSA keys), got "ED25519"',
      ]);
    });

    it('rejects FILE_MOUNTED_CERTS together with PROV_CERT, and skips token and root checks without it', () => {
      const cwd = trees.make('ipv4', { [TOKEN]: null, [ROOT_CERT]: null });
      const errors = loadErrors(cwd, { FILE_MOUNTED_CERTS: 'true' });
      assert.match(errors[0] ?? '', /^environment: FILE_MOUNTED_CERTS: invalid options: PROV_CERT .* and FILE_MOUNTED_CERTS are mutually exclusive/);
      assert.match(
        loadErrors(cwd, { FILE_MOUNTED_CERTS: 'true', PROV_CERT: '', XDS_ROOT_CA: 'SYSTEM' })[0] ?? '',
        /FILE_MOUNTED_CERTS: file-mounted certificates need cert-chain\.pem, key\.pem and root-cert\.pem in .*workload-spiffe-credentials or .*etc\/certs$/,
      );
    });

    it('serves file-mounted certificates from ./etc/certs when the workload-spiffe-credentials files are absent', () => {
      const cwd = trees.make('ipv4', { [TOKEN]: null, 'etc/certs/cert-chain.pem': 'chain', 'etc/certs/key.pem': 'key' });
      const mounted = load(cwd, { FILE_MOUNTED_CERTS: 'true', PROV_CERT: '' });
      assert.equal(mounted.secrets.fileMountedCerts, true);
      assert.equal(mounted.secrets.fileMountedCertDir, path.join(cwd, 'etc/certs'));
      assert.equal(mounted.xds.rootCertPath, path.join(cwd, 'etc/certs/root-cert.pem'));
    });

    it('prefers the workload-spiffe-credentials files, and uses them without FILE_MOUNTED_CERTS', () => {
      const creds = 'var/run/secrets/workload-spiffe-credentials';
      const cwd = trees.make('ipv4', { [TOKEN]: null, [`${creds}/cert-chain.pem`]: 'c', [`${creds}/key.pem`]: 'k', [`${creds}/root-cert.pem`]: 'r' });
      const mounted = load(cwd, { PROV_CERT: '' });
      assert.equal(mounted.secrets.fileMountedCerts, true);
      assert.equal(mounted.secrets.fileMountedCertDir, path.join(cwd, creds));
    });

    it('only warns about a line it cannot evaluate when istio-start.sh already exported the value', () => {
      const cwd = trees.make('ipv4', { [CLUSTER_ENV]: clusterEnvWith('ipv4', { ISTIO_SVC_IP: '$(hostname -I | cut -d" " -f1)' }) });
      assert.match(loadErrors(cwd)[0] ?? '', /ISTIO_SVC_IP: command substitution/);
      const config = load(cwd, { ISTIO_SVC_IP: '10.1.2.3' });
      assert.equal(config.identity.instanceIps[0], '10.1.2.3');
      assert.ok(config.warnings.some((w) => /ISTIO_SVC_IP: command substitution.*\(using ISTIO_SVC_IP from the environment\)/.test(w)));
    });

    it('reports every error at once', () => {
      const cwd = trees.make('ipv4', {
        [CLUSTER_ENV]: clusterEnvWith('ipv4', { ISTIO_META_DNS_CAPTURE: "'maybe'", ISTIO_METAJSON_LABELS: "'not json'", SERVICE_ACCOUNT: '$(whoami)' }),
        [MESH]: 'defaultConfig:\n  proxyAdminPort: 99999\n  readinessProbe:\n    periodSeconds: 3\n',
        [TOKEN]: '',
      });
      const errors = loadErrors(cwd, { DNS_FORWARD_TIMEOUT: 'soon' });
      assert.equal(errors.length, 7, errors.join('\n'));
      for (const fragment of [
        /^cluster\.env:\d+: SERVICE_ACCOUNT: command substitution/,
        /^mesh:2: defaultConfig\.proxyAdminPort: /,
        /^mesh:3: defaultConfig\.readinessProbe: needs exactly one/,
        /^cluster\.env:\d+: ISTIO_META_DNS_CAPTURE: expected "true" or "false", got "maybe"/,
        /^cluster\.env:\d+: ISTIO_METAJSON_LABELS: invalid JSON/,
        /^environment: DNS_FORWARD_TIMEOUT: expected a duration/,
        /istio-token: token file is empty$/,
      ]) {
        assert.ok(errors.some((e) => fragment.test(e)), `no error matches ${String(fragment)} in:\n${errors.join('\n')}`);
      }
    });
  });
});
