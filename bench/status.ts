/**
 * Status server: process start → /healthz/ready 200 against the local control plane, with Envoy disabled
 * and with the fake Envoy (goal ≤ 0.5 s); and a /stats/prometheus scrape merging 10,000 Envoy series.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import path from 'node:path';
import { LocalControlPlane } from '../src/localmesh/index.js';
import { writeFakeEnvoyBinary } from '../test/fakes/fake-envoy-binary.js';
import { scenarioMesh, writeVmFiles } from '../test/support/vm-files.js';
import { root, ROUNDS, row, stats } from './common.js';
import { freePort } from '../test/support/ports.js';


export async function benchStatus(work: string): Promise<void> {
  console.log('\nStatus server: process start → /healthz/ready 200 (built bundle, local control plane), and a merged scrape');
  const cp = new LocalControlPlane();
  await cp.start();
  await cp.loadYamlFile(path.join(root, 'test/fixtures/localmesh/scenario.yaml'));
  const token = await cp.issueToken({ namespace: 'istio-demo', serviceAccount: 'vm' });

  async function startAgent(withEnvoy: boolean, series = 3) {
    const vm = mkdtempSync(path.join(work, 'status-'));
    const statusPort = await freePort();
    const envoy = withEnvoy ? { binaryPath: writeFakeEnvoyBinary(vm), proxyAdminPort: await freePort() } : {};
    writeVmFiles(vm, { mesh: scenarioMesh(cp.address, { statusPort, ...envoy }), rootCertPem: cp.rootCertPem, token });
    const started = performance.now();
    const agent = spawn(process.execPath, [path.join(root, 'dist/pilot-agent.js'), 'proxy'], {
      cwd: vm,
      env: {
        PATH: process.env['PATH'] ?? '',
        CA_ADDR: cp.address,
        INSTANCE_IP: '10.0.0.1',
        DISABLE_ENVOY: withEnvoy ? 'false' : 'true',
        // The fake Envoy never asks for listeners, so the NameTable (requested after Envoy's LDS) never comes.
        ISTIO_META_DNS_CAPTURE: withEnvoy ? 'false' : 'true',
        DNS_PROXY_ADDR: '127.0.0.1:0',
        ISTIO_RESOLV_CONF: path.join(vm, 'etc/resolv.conf'),
        ENVOY_PROMETHEUS_PORT: String(await freePort()),
        FAKE_ENVOY_SERIES: String(series),
      },
      stdio: 'ignore',
    });
    for (;;) {
      const ok = await fetch(`http://127.0.0.1:${statusPort}/healthz/ready`).then((r) => r.status === 200, () => false);
      if (ok) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    const readyMs = performance.now() - started;
    const stop = async () => {
      agent.kill('SIGTERM');
      await new Promise((r) => agent.once('exit', r));
    };
    return { readyMs, statusPort, stop };
  }

  const rounds = Math.max(3, Math.floor(ROUNDS / 2));
  for (const [label, withEnvoy] of [
    ['Envoy disabled (certificate + xDS + DNS table)', false],
    ['with the fake Envoy (its process start included)', true],
  ] as const) {
    const times: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const agent = await startAgent(withEnvoy);
      times.push(agent.readyMs);
      await agent.stop();
    }
    console.log(row(`  ${label}`, stats(times)));
  }
  console.log('  goal ≤ 500 ms; the fake Envoy is a Node script started through tsx, which costs ~300 ms of its own');

  const agent = await startAgent(true, 10_000);
  const scrapes: number[] = [];
  let bytes = 0;
  for (let i = 0; i < rounds * 2; i++) {
    const started = performance.now();
    const response = await fetch(`http://127.0.0.1:${agent.statusPort}/stats/prometheus`, { headers: { 'accept-encoding': 'identity' } });
    bytes = (await response.arrayBuffer()).byteLength;
    scrapes.push(performance.now() - started);
  }
  console.log(row(`  /stats/prometheus with 10,000 Envoy series (${(bytes / 1024).toFixed(0)} KiB)`, stats(scrapes)));
  await agent.stop();
  await cp.close();
}
