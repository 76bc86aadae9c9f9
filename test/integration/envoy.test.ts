import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LocalControlPlane } from '../../src/localmesh/index.js';
import { type FakeEnvoyEvent, readFakeEnvoyRecord } from '../fakes/fake-envoy-binary.js';
import { AgentProcess, MAIN, TSX_LOADER } from '../support/agent-process.js';
import { TempDirs } from '../support/tmp.js';
import { fakeEnvoyMeshOptions, scenarioMesh, writeVmFiles } from '../support/vm-files.js';
import { freePort } from '../support/ports.js';

const SCENARIO_YAML = fileURLToPath(new URL('../fixtures/localmesh/scenario.yaml', import.meta.url));


describe('Envoy lifecycle and the status server (whole agent with a fake Envoy)', function () {
  this.timeout(60_000);
  const dirs = new TempDirs();
  const cleanups: (() => unknown)[] = [];
  let cp: LocalControlPlane;

  beforeEach(async () => {
    cp = new LocalControlPlane();
    await cp.start();
    await cp.loadYamlFile(SCENARIO_YAML);
  });

  afterEach(async () => {
    for (const task of cleanups.splice(0).reverse()) await task();
    await cp.close();
    dirs.cleanup();
  });

  async function startAgent(fake: Record<string, string> = {}) {
    const cwd = dirs.make();
    const statusPort = await freePort();
    const prometheusPort = await freePort();
    const envoy = await fakeEnvoyMeshOptions(cwd);
    const record = path.join(cwd, 'envoy-record.jsonl');
    const state = path.join(cwd, 'envoy-state.json');
    writeFileSync(state, JSON.stringify({ cds: 0, lds: 0, state: 2, workers: 0 }));
    writeVmFiles(cwd, {
      mesh: scenarioMesh(cp.address, { ...envoy, statusPort }),
      rootCertPem: cp.rootCertPem,
      token: await cp.issueToken({ namespace: 'istio-demo', serviceAccount: 'vm' }),
    });
    const agent = AgentProcess.start({
      cwd,
      env: {
        CA_ADDR: cp.address,
        INSTANCE_IP: '10.0.0.1',
        DISABLE_ENVOY: 'false',
        ENVOY_PROMETHEUS_PORT: String(prometheusPort),
        PROXY_CONFIG: 'serviceCluster: nginx.istio-demo\nterminationDrainDuration: 1s\n',
        FAKE_ENVOY_RECORD: record,
        FAKE_ENVOY_STATE: state,
        ...fake,
      },
    });
    cleanups.push(() => agent.stop());
    const recorded = (): FakeEnvoyEvent[] => readFakeEnvoyRecord(record);
    const setState = (s: object) => writeFileSync(state, JSON.stringify(s));
    return { cwd, agent, statusPort, recorded, setState, adminPort: envoy.proxyAdminPort ?? 0 };
  }

  async function ready(statusPort: number): Promise<{ status: number; body: string }> {
    const response = await fetch(`http://127.0.0.1:${statusPort}/healthz/ready`);
    return { status: response.status, body: await response.text() };
  }

  async function eventually<T>(probe: () => Promise<T>, accept: (v: T) => boolean, timeoutMs = 15_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await probe().catch((err: unknown) => err as T);
      if (accept(value)) return value;
      if (Date.now() > deadline) throw new Error(`condition not met; last ${JSON.stringify(value)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  it('launches Envoy with Istio\'s command line on a bootstrap it wrote', async () => {
    const { agent, cwd, recorded } = await startAgent();
    await agent.waitForLog('Envoy command: [-c ');
    const start = await eventually(async () => recorded().find((r) => r.event === 'start'), (r) => r !== undefined);
    const args = start?.args ?? [];
    const bootstrap = path.join(cwd, 'etc/istio/proxy/envoy-rev.json');
    assert.deepEqual(args.slice(0, 12), [
      '-c', bootstrap, '--drain-time-s', '45', '--drain-strategy', 'immediate', '--local-address-ip-version', 'v4',
      '--file-flush-interval-msec', '1000', '--disable-hot-restart', '--allow-unknown-static-fields',
    ]);
    assert.ok(args.includes('-l') && args[args.indexOf('-l') + 1] === 'warning');
    const json = JSON.parse(readFileSync(bootstrap, 'utf8')) as { node: { id: string; cluster: string } };
    assert.equal(json.node.id, 'sidecar~10.0.0.1~vm.istio-demo~istio-demo.svc.cluster.local');
    assert.equal(json.node.cluster, 'nginx.istio-demo');
  });

  it('is not ready until Envoy has config and is live, then ready; `pilot-agent wait` agrees', async () => {
    // DNS capture off: with Envoy, the NameTable only comes after Envoy's first LDS request, and this
    // fake Envoy never connects to the XDS socket.
    const { agent, statusPort, setState } = await startAgent({ ISTIO_META_DNS_CAPTURE: 'false' });
    await agent.waitForLog(`Opening status port ${statusPort}`);
    // First the fake's admin API may not be up; then it answers with no config received.
    const notReady = await eventually(() => ready(statusPort), (r) => r.status === 503 && r.body.includes('config not received'));
    assert.match(notReady.body, /^config not received from XDS server \(is Istiod running\?\): cds updates: 0 successful, 0 rejected; lds updates: 0 successful, 0 rejected/);
    setState({ cds: 1, lds: 1, state: 0, workers: 1 });
    await eventually(() => ready(statusPort), (r) => r.status === 200);
    await agent.waitForLog('Readiness succeeded in');
    const wait = spawnSync(process.execPath, ['--import', TSX_LOADER, MAIN, 'wait', `--url=http://127.0.0.1:${statusPort}/healthz/ready`, '--timeoutSeconds=10'], { encoding: 'utf8' });
    assert.equal(wait.status, 0, wait.stderr);
    assert.match(wait.stdout, /Envoy is ready!/);
  });

  it('merges its own metrics with Envoy\'s on /stats/prometheus', async () => {
    const { statusPort, agent, recorded } = await startAgent({ FAKE_ENVOY_SERIES: '2' });
    await agent.waitForLog(`Opening status port ${statusPort}`);
    const text = await eventually(
      async () => (await fetch(`http://127.0.0.1:${statusPort}/stats/prometheus`)).text(),
      (t) => typeof t === 'string' && t.includes('istio_agent_') && t.includes('envoy_cluster_upstream_cx_total{'),
      10_000,
    ).catch((err: unknown) => {
      throw new Error(`${String(err)}; fake Envoy saw: ${JSON.stringify(recorded())}`);
    });
    assert.match(text, /^istio_agent_cert_expiry_seconds|istio_agent_scrapes_total/m);
    assert.match(text, /^# TYPE envoy_cluster_upstream_cx_total counter$/m);
    assert.match(text, /^envoy_cluster_upstream_cx_total\{cluster_name="outbound\|80\|\|svc-1\.example\.com"\} 1$/m);
  });

  it('drains Envoy on SIGTERM and exits 0 within the unit\'s 30 s', async () => {
    const { agent, recorded, adminPort } = await startAgent();
    await eventually(async () => (await fetch(`http://127.0.0.1:${adminPort}/ready`)).status, (s) => s === 200 || s === 503);
    const started = Date.now();
    assert.equal(await agent.stop(30_000), 0);
    assert.ok(Date.now() - started < 30_000);
    assert.ok(recorded().some((r) => r.event === 'admin' && r.method === 'POST' && r.url === '/drain_listeners?inboundonly&graceful'));
    for (const line of ['Agent draining Proxy for termination', 'Graceful termination period is 1s, starting...', 'Graceful termination period complete, terminating remaining proxies.', 'Envoy aborted normally', 'Agent has successfully terminated']) {
      assert.equal(agent.lines(line).length, 1, `missing: ${line}`);
    }
  });

  it('without Envoy, is ready once it has a certificate, an xDS connection and the DNS table', async () => {
    const cwd = dirs.make();
    const statusPort = await freePort();
    writeVmFiles(cwd, { mesh: scenarioMesh(cp.address, { statusPort }), rootCertPem: cp.rootCertPem, token: await cp.issueToken({ namespace: 'istio-demo', serviceAccount: 'vm' }) });
    const agent = AgentProcess.start({ cwd, env: { CA_ADDR: cp.address, INSTANCE_IP: '10.0.0.1', DISABLE_ENVOY: 'true' } });
    cleanups.push(() => agent.stop());
    await agent.waitForLog(`Opening status port ${statusPort}`);
    const readyAt = await eventually(() => ready(statusPort), (r) => r.status === 200);
    assert.equal(readyAt.body, '');
    await agent.waitForLog('generated new workload certificate');
    await agent.waitForLog('connected to delta upstream XDS server');
    await cp.close(); // istiod goes away: the xDS connection is gone, and readiness says so
    const gone = await eventually(() => ready(statusPort), (r) => r.status === 503);
    assert.equal(gone.body, 'not connected to the XDS server');
    await cp.start();
  });

  it('exits 0 when Envoy exits on its own, logging why', async () => {
    const { agent } = await startAgent({ FAKE_ENVOY_EXIT_AFTER_MS: '1500', FAKE_ENVOY_EXIT_CODE: '1' });
    const code = await agent.exited;
    assert.equal(code, 0);
    assert.equal(agent.lines('Envoy exited with error: exit status 1').length, 1);
  });
});
