import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Issues } from './issues.js';
import { loadProxyConfig, type ProxyConfigResult } from './mesh-config.js';

describe('loadProxyConfig', () => {
  let dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    dirs = [];
  });

  /** Loads with the given mesh file (undefined = none) and PROXY_CONFIG. */
  function load(mesh: string | undefined, proxyConfigEnv?: string, extra: { concurrencyFlag?: number; cpuLimit?: number } = {}) {
    const cwd = mkdtempSync(path.join(os.tmpdir(), 'ivma-mesh-'));
    dirs.push(cwd);
    if (mesh !== undefined) {
      mkdirSync(path.join(cwd, 'etc/istio/config'), { recursive: true });
      writeFileSync(path.join(cwd, 'etc/istio/config/mesh'), mesh);
    }
    const issues = new Issues();
    const result: ProxyConfigResult = loadProxyConfig({
      cwd,
      meshConfigFile: './etc/istio/config/mesh',
      proxyConfigEnv,
      serviceClusterFlag: 'istio-proxy',
      concurrencyFlag: extra.concurrencyFlag ?? 0,
      cpuLimit: extra.cpuLimit ?? 0,
      issues,
    });
    return { ...result, errors: issues.errors.map((e) => e.message), warnings: issues.warnings };
  }

  it('uses pilot-agent defaults when the mesh file is missing or empty', () => {
    for (const mesh of [undefined, '', '# nothing here\n']) {
      const { proxyConfig, errors } = load(mesh);
      assert.deepEqual(errors, []);
      assert.equal(proxyConfig.configPath, './etc/istio/proxy');
      assert.equal(proxyConfig.binaryPath, '/usr/local/bin/envoy');
      assert.equal(proxyConfig.serviceCluster, 'istio-proxy');
      assert.equal(proxyConfig.drainDuration, '45s');
      assert.equal(proxyConfig.terminationDrainDuration, '5s');
      assert.equal(proxyConfig.discoveryAddress, 'istiod.istio-system.svc:15012');
      assert.equal(proxyConfig.proxyAdminPort, 15000);
      assert.equal(proxyConfig.statusPort, 15020);
      assert.equal(proxyConfig.controlPlaneAuthPolicy, 'MUTUAL_TLS');
      assert.equal(proxyConfig.concurrency, undefined);
      assert.deepEqual(proxyConfig.proxyMetadata, {});
      assert.deepEqual(proxyConfig.other, { statNameLength: 189 });
    }
  });

  it('layers defaults, then the mesh file, then PROXY_CONFIG', () => {
    const mesh = [
      'defaultConfig:',
      '  discoveryAddress: istiod.mesh.svc:15012',
      '  drainDuration: 30s',
      '  extraStatTags: [a, b]',
      '  proxyMetadata:',
      '    FROM_MESH: mesh',
      '    SHARED: mesh',
      '',
    ].join('\n');
    const env = ['discoveryAddress: istiod.env.svc:15012', 'extraStatTags: [c]', 'proxyMetadata:', '  SHARED: env', '  FROM_ENV: env', ''].join('\n');
    const { proxyConfig, errors, notices } = load(mesh, env);
    assert.deepEqual(errors, []);
    assert.equal(proxyConfig.discoveryAddress, 'istiod.env.svc:15012');
    assert.equal(proxyConfig.drainDuration, '30s');
    assert.deepEqual(proxyConfig.extraStatTags, ['c'], 'lists replace');
    assert.deepEqual(proxyConfig.proxyMetadata, { FROM_MESH: 'mesh', SHARED: 'env', FROM_ENV: 'env' }, 'proxyMetadata merges per key');
    assert.equal(proxyConfig.terminationDrainDuration, '5s', 'untouched fields keep the default');
    assert.equal(notices[0], `Apply mesh config from file ${mesh}`);
    assert.equal(notices[1], `Apply proxy config from env ${env}`);
    assert.match(notices[2] ?? '', /^Effective config: /);
    assert.match(notices[2] ?? '', /discoveryAddress: istiod\.env\.svc:15012/);
  });

  it('replaces a message field whole instead of merging it', () => {
    const mesh = 'defaultConfig:\n  tracing:\n    sampling: 5\n    zipkin:\n      address: zipkin.istio-system:9411\n';
    const { proxyConfig, errors } = load(mesh, 'tracing:\n  sampling: 10\n');
    assert.deepEqual(errors, []);
    assert.deepEqual(proxyConfig.tracing, { sampling: 10 });
  });

  it('accepts snake_case field names and keeps unmodelled fields in other', () => {
    const mesh = [
      'default_config:',
      '  discovery_address: istiod.x.svc:15012',
      '  proxy_admin_port: "15001"',
      '  hold_application_until_proxy_starts: true',
      '  interception_mode: TPROXY',
      '  proxy_stats_matcher:',
      '    inclusion_prefixes: [cluster.outbound]',
      '  readiness_probe:',
      '    http_get:',
      '      port: 8080',
      '      http_headers:',
      '      - name: Host',
      '        value: example.com',
      '    initial_delay_seconds: 3',
      '',
    ].join('\n');
    const { proxyConfig, errors } = load(mesh);
    assert.deepEqual(errors, []);
    assert.equal(proxyConfig.discoveryAddress, 'istiod.x.svc:15012');
    assert.equal(proxyConfig.proxyAdminPort, 15001);
    assert.deepEqual(proxyConfig.proxyStatsMatcher, { inclusionPrefixes: ['cluster.outbound'] });
    assert.deepEqual(proxyConfig.readinessProbe, {
      initialDelaySeconds: 3,
      httpGet: { port: 8080, httpHeaders: [{ name: 'Host', value: 'example.com' }] },
    });
    assert.equal(proxyConfig.other['holdApplicationUntilProxyStarts'], true);
    assert.equal(proxyConfig.other['interceptionMode'], 'TPROXY');
  });

  it('tolerates unknown fields with a warning', () => {
    const { errors, warnings } = load('meshWideThing: 1\ndefaultConfig:\n  notAField: x\n  statusPort: 15020\n');
    assert.deepEqual(errors, []);
    assert.deepEqual(warnings, [
      'mesh:1: meshWideThing: unknown MeshConfig field, ignored',
      'mesh:3: defaultConfig.notAField: unknown ProxyConfig field, ignored',
    ]);
  });

  it('treats a null proxyMetadata as absent', () => {
    const { proxyConfig, errors } = load('defaultConfig:\n  proxyMetadata:\n  discoveryAddress: istiod.a.svc:15012\n');
    assert.deepEqual(errors, []);
    assert.deepEqual(proxyConfig.proxyMetadata, {});
  });

  it('reports invalid YAML with the file and line', () => {
    const { errors } = load('defaultConfig:\n  discoveryAddress: [istiod\n  statusPort: 1\n');
    assert.equal(errors.length, 1);
    assert.match(errors[0] ?? '', /^mesh:\d+: invalid YAML: /);
  });

  it('reports invalid YAML in PROXY_CONFIG', () => {
    const { errors } = load(undefined, 'discoveryAddress: "open\n');
    assert.match(errors[0] ?? '', /^PROXY_CONFIG:\d+: invalid YAML: /);
  });

  it('reports a wrong type with the line and field path', () => {
    const mesh = ['defaultConfig:', '  discoveryAddress: istiod.a.svc:15012', '  proxyAdminPort: fifteen', '  drainDuration: 1m', '  proxyMetadata:', '    ISTIO_META_DNS_CAPTURE: true', ''].join('\n');
    const { errors } = load(mesh);
    assert.deepEqual(errors, [
      'mesh:3: defaultConfig.proxyAdminPort: expected an integer, got a string ("fifteen")',
      'mesh:4: defaultConfig.drainDuration: expected a duration in seconds such as "45s" or "0.5s", got a string ("1m")',
      'mesh:6: defaultConfig.proxyMetadata.ISTIO_META_DNS_CAPTURE: expected a string, got a boolean (true); quote it: "true"',
    ]);
  });

  it('checks the types of the other MeshConfig fields too', () => {
    const { errors } = load('enableTracing: "yes please"\ntrustDomain: [a]\nconnectTimeout: 10\n');
    assert.deepEqual(errors, [
      'mesh:1: enableTracing: expected true or false, got a string ("yes please")',
      'mesh:2: trustDomain: expected a string, got a list',
      'mesh:3: connectTimeout: expected a duration in seconds such as "10s", got a number (10)',
    ]);
  });

  it('rejects a port that is not a port', () => {
    const { errors } = load('defaultConfig:\n  proxyAdminPort: 99999\n  statusPort: -1\n');
    assert.deepEqual(errors, [
      'mesh:2: defaultConfig.proxyAdminPort: invalid proxy admin port: must be a port number (1-65535), got 99999',
      'mesh:3: defaultConfig.statusPort: invalid status port: must be a port number (1-65535, or 0 for none), got -1',
    ]);
  });

  it('validates the effective config as pilot-agent does', () => {
    const { errors } = load('defaultConfig:\n  discoveryAddress: istiod-no-port\n  drainDuration: 1.5s\n  controlPlaneAuthPolicy: INHERIT\n');
    assert.deepEqual(errors, [
      'mesh:3: defaultConfig.drainDuration: drain time only supports durations to seconds precision, got "1.5s"',
      'mesh:2: defaultConfig.discoveryAddress: invalid discovery address: unable to split "istiod-no-port": address istiod-no-port: missing port in address',
      'mesh:4: defaultConfig.controlPlaneAuthPolicy: invalid authentication policy: INHERIT is not allowed here (want MUTUAL_TLS or NONE)',
    ]);
  });

  describe('readinessProbe', () => {
    const probe = (body: string) => load(`defaultConfig:\n  readinessProbe:\n${body}`);

    it('accepts each handler', () => {
      assert.deepEqual(probe('    tcpSocket:\n      port: 80\n').proxyConfig.readinessProbe, { tcpSocket: { port: 80 } });
      assert.deepEqual(probe('    grpc:\n      port: 9000\n      service: health\n').proxyConfig.readinessProbe, { grpc: { port: 9000, service: 'health' } });
      assert.deepEqual(probe('    exec:\n      command: [cat, /tmp/ready]\n').proxyConfig.readinessProbe, { exec: { command: ['cat', '/tmp/ready'] } });
    });

    it('rejects negative numbers, naming the field', () => {
      assert.deepEqual(probe('    periodSeconds: -1\n    httpGet:\n      port: 80\n').errors, [
        'mesh:3: defaultConfig.readinessProbe.periodSeconds: must be >= 0, got -1',
      ]);
    });

    it('needs exactly one handler', () => {
      assert.deepEqual(probe('    periodSeconds: 5\n').errors, ['mesh:2: defaultConfig.readinessProbe: needs exactly one of httpGet, tcpSocket, exec or grpc, got none']);
      assert.deepEqual(probe('    httpGet:\n      port: 80\n    tcpSocket:\n      port: 80\n').errors, [
        'mesh:5: defaultConfig.readinessProbe: needs exactly one of httpGet, tcpSocket, exec or grpc, got httpGet and tcpSocket',
      ]);
    });

    it('rejects a handler port that is not a port, or missing', () => {
      assert.deepEqual(probe('    httpGet:\n      port: 70000\n').errors, ['mesh:4: defaultConfig.readinessProbe.httpGet.port: must be a port number (1-65535), got 70000']);
      assert.deepEqual(probe('    tcpSocket:\n      host: a\n').errors, ['mesh:4: defaultConfig.readinessProbe.tcpSocket.port: is required']);
      assert.deepEqual(probe('    httpGet:\n      port: http\n').errors, ['mesh:4: defaultConfig.readinessProbe.httpGet.port: expected an integer, got a string ("http")']);
    });

    it('rejects wrong types inside the probe', () => {
      assert.deepEqual(probe('    httpGet: /ready\n').errors, ['mesh:3: defaultConfig.readinessProbe.httpGet: expected a mapping, got a string ("/ready")']);
      assert.deepEqual(probe('    exec:\n      command: []\n').errors, ['mesh:4: defaultConfig.readinessProbe.exec.command: must list the command to run']);
    });
  });

  it('applies ISTIO_CPU_LIMIT only when concurrency is unset, and --concurrency over both', () => {
    assert.equal(load(undefined, undefined, { cpuLimit: 2 }).proxyConfig.concurrency, 2);
    assert.equal(load('defaultConfig:\n  concurrency: 4\n', undefined, { cpuLimit: 2 }).proxyConfig.concurrency, 4);
    const flagged = load('defaultConfig:\n  concurrency: 4\n', undefined, { concurrencyFlag: 8 });
    assert.equal(flagged.proxyConfig.concurrency, 8);
    assert.match(flagged.warnings.join('\n'), /legacy --concurrency=8 flag detected/);
  });

  it('fills an empty serviceCluster from --serviceCluster', () => {
    assert.equal(load(undefined, 'serviceCluster: ""\n').proxyConfig.serviceCluster, 'istio-proxy');
    assert.equal(load(undefined, 'serviceCluster: nginx.istio-demo\n').proxyConfig.serviceCluster, 'nginx.istio-demo');
  });

  it('prints the effective config as YAML with sorted keys', () => {
    const { notices } = load(undefined, 'proxyMetadata:\n  B: "2"\n  A: "1"\n');
    const yaml = (notices.at(-1) ?? '').replace(/^Effective config: /, '');
    assert.match(yaml, /^binaryPath: \/usr\/local\/bin\/envoy\nconcurrency|^binaryPath: \/usr\/local\/bin\/envoy\nconfigPath/);
    assert.match(yaml, /proxyMetadata:\n {2}A: "1"\n {2}B: "2"/);
  });
});
