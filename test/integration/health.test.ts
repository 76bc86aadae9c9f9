import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { TestGrpcHealthServer, TestTcpServer } from '../../src/health/health-test-support.js';
import { isWorkloadEntryHealthy, LocalControlPlane, type WorkloadEntry } from '../../src/localmesh/index.js';
import { AgentProcess } from '../support/agent-process.js';
import { TempDirs } from '../support/tmp.js';
import { scenarioMesh, writeVmFiles } from '../support/vm-files.js';

const SCENARIO_YAML = fileURLToPath(new URL('../fixtures/localmesh/scenario.yaml', import.meta.url));
const ENTRY = 'nginx-10.0.0.1';

/** The VM's "nginx": a plain HTTP server on loopback that can be stopped and started on the same port. */
class Nginx {
  #server?: Server;
  port = 0;

  async start(): Promise<void> {
    const server = createServer((_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    const address = server.address();
    if (typeof address === 'object' && address) this.port = address.port;
    this.#server = server;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (server) await new Promise((resolve) => server.close(resolve).closeAllConnections());
  }
}

function condition(entry: WorkloadEntry | undefined): { status?: string; message?: string } {
  return entry?.status?.conditions.find((c) => c.type === 'Healthy') ?? {};
}

describe('auto-registration and health reporting (whole agent against the local control plane)', function () {
  this.timeout(60_000);
  const dirs = new TempDirs();
  const cleanups: (() => unknown)[] = [];
  let cp: LocalControlPlane;
  let nginx: Nginx;

  beforeEach(async () => {
    cp = new LocalControlPlane({ workloadEntryGracePeriodMs: 500 });
    await cp.start();
    await cp.loadYamlFile(SCENARIO_YAML);
    nginx = new Nginx();
    await nginx.start();
  });

  let agent: AgentProcess | undefined;
  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && agent) console.log(agent.dump());
    for (const task of cleanups.splice(0).reverse()) await task();
    await nginx.stop();
    await cp.close();
    dirs.cleanup();
  });

  async function startAgent(handler?: string, instanceIp = '10.0.0.1'): Promise<AgentProcess> {
    const cwd = dirs.make();
    writeVmFiles(cwd, { mesh: scenarioMesh(cp.address), rootCertPem: cp.rootCertPem, token: await cp.issueToken({ namespace: 'istio-demo', serviceAccount: 'vm' }) });
    // The scenario's probe (httpGet on port 80) pointed at the test's nginx, probing every second.
    const probe = `readinessProbe:\n  ${handler ?? `httpGet: {host: 127.0.0.1, port: ${nginx.port}, path: /}`}\n  periodSeconds: 1\n  timeoutSeconds: 1\n`;
    const started = AgentProcess.start({
      cwd,
      env: { CA_ADDR: cp.address, INSTANCE_IP: instanceIp, DISABLE_ENVOY: 'true', PROXY_CONFIG: `serviceCluster: nginx.istio-demo\n${probe}` },
    });
    cleanups.push(() => started.stop());
    agent = started;
    return started;
  }

  it('registers WorkloadEntry nginx-<ip> with the scenario labels, and follows nginx going down and coming back', async () => {
    const agent = await startAgent();
    const entry = await cp.waitForWorkloadEntry((e) => e.metadata.name === ENTRY && isWorkloadEntryHealthy(e), 20_000);
    assert.equal(entry.metadata.namespace, 'istio-demo');
    assert.equal(entry.spec.address, '10.0.0.1');
    assert.equal(entry.spec.serviceAccount, 'vm');
    assert.equal(entry.metadata.labels['class'], 'vm');
    assert.equal(entry.metadata.labels['app'], 'nginx');
    assert.deepEqual(entry.metadata.ownerReferences.map((o) => `${o.kind}/${o.name}/${String(o.controller)}`), ['WorkloadGroup/nginx/true']);
    assert.equal(entry.metadata.annotations['proxy.istio.io/health-checks-enabled'], 'true');
    await agent.waitForLog('success threshold hit, marking as healthy');

    await nginx.stop();
    const down = await cp.waitForWorkloadEntry((e) => e.metadata.name === ENTRY && condition(e).status === 'False', 10_000);
    assert.match(condition(down).message ?? '', /connection refused/);
    assert.match(await agent.waitForLog('failure threshold hit, marking as unhealthy'), /\tinfo\thealthcheck\tfailure threshold hit, marking as unhealthy: .*connection refused/);

    await nginx.start();
    await cp.waitForWorkloadEntry((e) => e.metadata.name === ENTRY && condition(e).status === 'True', 10_000);
    // Only changes are reported: one healthy, one unhealthy, one healthy again, however many rounds ran.
    assert.equal(agent.lines('marking as').length, 3);
  });

  // Each other probe kind, through the whole agent: healthy → unhealthy → healthy as the control plane sees it.
  interface ProbeKind {
    name: string;
    /** grpc has no host field: it probes the VM's own (first) address, here loopback. */
    instanceIp?: string;
    setUp: () => Promise<{ handler: string; breakIt: () => Promise<void> | void; fixIt: () => Promise<void> | void }>;
  }
  const kinds: ProbeKind[] = [
    {
      name: 'tcpSocket',
      setUp: async () => {
        const server = await new TestTcpServer().listen();
        cleanups.push(() => server.stop());
        return { handler: `tcpSocket: {host: 127.0.0.1, port: ${server.port}}`, breakIt: () => server.stop(), fixIt: async () => void (await server.listen()) };
      },
    },
    {
      name: 'exec',
      setUp: async () => {
        const marker = path.join(dirs.make(), 'healthy');
        writeFileSync(marker, '');
        return { handler: `exec: {command: [test, -f, ${marker}]}`, breakIt: () => rmSync(marker), fixIt: () => writeFileSync(marker, '') };
      },
    },
    {
      name: 'grpc',
      instanceIp: '127.0.0.1',
      setUp: async () => {
        const server = await new TestGrpcHealthServer().listen();
        cleanups.push(() => server.stop());
        return {
          handler: `grpc: {port: ${server.port}}`,
          breakIt: () => void server.statuses.set('', 'NOT_SERVING'),
          fixIt: () => void server.statuses.set('', 'SERVING'),
        };
      },
    },
  ];
  for (const kind of kinds) {
    it(`reports the transitions of a ${kind.name} probe to the control plane`, async () => {
      const { handler, breakIt, fixIt } = await kind.setUp();
      const ip = kind.instanceIp ?? '10.0.0.1';
      const name = `nginx-${ip}`;
      await startAgent(handler, ip);
      await cp.waitForWorkloadEntry((e) => e.metadata.name === name && condition(e).status === 'True', 20_000);
      await breakIt();
      await cp.waitForWorkloadEntry((e) => e.metadata.name === name && condition(e).status === 'False', 10_000);
      await fixIt();
      await cp.waitForWorkloadEntry((e) => e.metadata.name === name && condition(e).status === 'True', 10_000);
    });
  }

  it('re-sends the unhealthy state after istiod restarts, and the new registry recreates the entry unhealthy', async () => {
    const agent = await startAgent();
    await cp.waitForWorkloadEntry((e) => e.metadata.name === ENTRY && isWorkloadEntryHealthy(e), 20_000);
    await nginx.stop();
    await cp.waitForWorkloadEntry((e) => e.metadata.name === ENTRY && condition(e).status === 'False', 10_000);

    // A brand-new control plane (same root, same port, no entries): what istiod sees after a restart
    // with the entry gone.
    const port = cp.port;
    const state = cp.exportState();
    await cp.close();
    cp = new LocalControlPlane({ port, state, workloadEntryGracePeriodMs: 500 });
    await cp.start();
    await cp.loadYamlFile(SCENARIO_YAML);
    const recreated = await cp.waitForWorkloadEntry((e) => e.metadata.name === ENTRY && condition(e).status === 'False', 30_000);
    assert.match(condition(recreated).message ?? '', /connection refused/);
    await agent.waitForLog('connected to delta upstream XDS server', { count: 2 });
  });

  it('removes the entry after the grace period once the VM goes away', async () => {
    const agent = await startAgent();
    await cp.waitForWorkloadEntry((e) => e.metadata.name === ENTRY, 20_000);
    await agent.stop();
    await cp.waitForWorkloadEntryEvent((e) => e.kind === 'deleted', 10_000);
    assert.equal(cp.workloadEntry('istio-demo', ENTRY), undefined);
  });
});
