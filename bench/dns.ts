/**
 * DNS: dnsperf against the agent's DNS proxy and against dnsmasq serving the same 10,000 names on
 * loopback, back to back (the server pinned to core 0, dnsperf to core 1); and the agent's RSS once it
 * holds a 100,000-name table. The agent is the built bundle, fed its NameTable by the local control plane;
 * it runs twice, with its native batched UDP (recvmmsg/sendmmsg) and on its node:dgram fallback.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { LocalControlPlane } from '../src/localmesh/index.js';
import { ProtoSchema, type NameTable } from '../src/proto/index.js';
import { NAME_TABLE_TYPE_URL } from '../src/xds/index.js';
import { scenarioMesh, writeVmFiles } from '../test/support/vm-files.js';
import { memoryMb, pin, root, stats, type Stats } from './common.js';
import { freePort } from '../test/support/ports.js';

const NAMES = 10_000;
const BIG_TABLE = 100_000;
const SECONDS = Number(process.env['BENCH_DNS_SECONDS'] ?? 10);

function hostName(i: number): string {
  return `svc-${i}.bench.example.com`;
}

function ipOf(i: number): string {
  return `240.240.${Math.floor(i / 250) % 250}.${(i % 250) + 1}`;
}

function nameTable(count: number): NameTable {
  const table: NameTable['table'] = {};
  for (let i = 0; i < count; i++) table[hostName(i)] = { ips: [ipOf(i)], registry: 'External', shortname: '', namespace: '', alt_hosts: [] };
  return { table };
}


/** Waits until `dig` gets an answer for `name` from 127.0.0.1:port. */
async function waitForAnswer(port: number, name: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const dig = spawnSync('dig', ['@127.0.0.1', '-p', String(port), name, 'A', '+short', '+time=1', '+tries=1'], { encoding: 'utf8' });
    if (dig.stdout.trim() !== '' && !dig.stdout.includes('timed out')) return;
    if (Date.now() > deadline) throw new Error(`no DNS answer for ${name} on port ${port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface PerfResult {
  qps: number;
  lost: number;
  /** Per-query latency at a fixed, moderate rate (LATENCY_QPS): comparable between servers. */
  latency: Stats;
}

/** Latency is measured at this rate: below both servers' limits, so queueing doesn't decide it. */
const LATENCY_QPS = 20_000;

function runDnsperf(args: string[], onLine: (line: string) => void): Promise<void> {
  const [cmd, cmdArgs] = pin(1, ['dnsperf', ...args]);
  const child = spawn(cmd, cmdArgs, { stdio: ['ignore', 'pipe', 'ignore'] });
  const lines = createInterface({ input: child.stdout });
  lines.on('line', onLine);
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/**
 * Two dnsperf runs (pinned to core 1): flat out for throughput, then at LATENCY_QPS with -v for
 * per-query latencies (printing every query slows dnsperf itself, so -v never runs flat out).
 */
async function dnsperf(port: number, queryFile: string): Promise<PerfResult> {
  const base = ['-s', '127.0.0.1', '-p', String(port), '-d', queryFile];
  let qps = NaN;
  let lost = 0;
  // A short warm-up run first, discarded, for both servers alike: dnsperf's very first burst of 100
  // queries is sometimes never counted against a server that answers it within a millisecond (seen
  // with the agent, whose replies were sent: its log and a plain UDP client show them), which then
  // stalls the whole run for dnsperf's 5 s timeout.
  await runDnsperf([...base, '-l', '1'], () => undefined);
  await runDnsperf([...base, '-l', String(SECONDS), ...(process.env['BENCH_DNS_DEBUG'] ? ['-S', '1'] : [])], (line) => {
    if (process.env['BENCH_DNS_DEBUG']) console.log('  dnsperf:', line.trim());
    if (line.includes('Queries per second:')) qps = Number(line.split(':')[1]);
    else if (line.includes('Queries lost:')) lost = Number(/Queries lost:\s+(\d+)/.exec(line)?.[1] ?? 0);
  });
  const latencies: number[] = [];
  await runDnsperf([...base, '-l', String(Math.max(2, SECONDS / 2)), '-Q', String(LATENCY_QPS), '-v'], (line) => {
    if (!line.startsWith('> ')) return;
    const seconds = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(seconds)) latencies.push(seconds * 1000);
  });
  return { qps, lost, latency: stats(latencies) };
}

function stop(child: ChildProcess): Promise<unknown> {
  child.kill('SIGTERM');
  return new Promise((r) => child.once('exit', r));
}

function perfRow(label: string, r: PerfResult): string {
  return `${label.padEnd(34)} ${r.qps.toFixed(0).padStart(8)} qps (lost ${r.lost})   at ${LATENCY_QPS / 1000}k qps: latency mean ${r.latency.mean.toFixed(3)} ms, p99 ${r.latency.p99.toFixed(3)} ms`;
}

export async function benchDns(work: string): Promise<void> {
  console.log(`\nDNS: dnsperf for ${SECONDS} s against the same ${NAMES.toLocaleString('en')} names (server on core 0, dnsperf on core 1)`);
  const dir = mkdtempSync(path.join(work, 'dns-'));
  const queries = path.join(dir, 'queries.txt');
  writeFileSync(queries, Array.from({ length: NAMES }, (_, i) => `${hostName(i)} A`).join('\n') + '\n');

  // dnsmasq answering from a hosts file: the reference.
  const hosts = path.join(dir, 'hosts');
  writeFileSync(hosts, Array.from({ length: NAMES }, (_, i) => `${ipOf(i)} ${hostName(i)}`).join('\n') + '\n');
  const dnsmasqPort = await freePort();
  const [dmCmd, dmArgs] = pin(0, [
    'dnsmasq', '--no-daemon', `--port=${dnsmasqPort}`, '--listen-address=127.0.0.1', '--bind-interfaces',
    '--no-resolv', '--no-hosts', `--addn-hosts=${hosts}`, '--cache-size=10000', '--log-facility=/dev/null',
  ]);
  const dnsmasq = spawn(dmCmd, dmArgs, { stdio: 'ignore' });
  await waitForAnswer(dnsmasqPort, hostName(0));
  const reference = await dnsperf(dnsmasqPort, queries);
  await stop(dnsmasq);

  // The agent: DNS capture on, no Envoy (its own xDS stream brings the NameTable), a resolv.conf of its own.
  const schema = new ProtoSchema();
  const cp = new LocalControlPlane({ schema });
  await cp.start();
  // The VM's node names WorkloadGroup nginx: the control plane, like istiod, needs it to exist.
  await cp.loadYamlFile(path.join(root, 'test/fixtures/localmesh/scenario.yaml'));
  cp.setResources(NAME_TABLE_TYPE_URL, [{ name: '', value: schema.nameTable.encode(nameTable(NAMES)) }]);
  const token = await cp.issueToken({ namespace: 'istio-demo', serviceAccount: 'vm' });
  /** Starts the agent from `bundle` on core 0 and waits until it answers the whole table. */
  async function startAgent(bundle: string): Promise<{ agent: ChildProcess; port: number }> {
    const vm = mkdtempSync(path.join(dir, 'vm-'));
    writeVmFiles(vm, { mesh: scenarioMesh(cp.address), rootCertPem: cp.rootCertPem, token });
    writeFileSync(path.join(vm, 'resolv.conf'), 'nameserver 127.0.0.1\n');
    const port = await freePort();
    const [agCmd, agArgs] = pin(0, [process.execPath, bundle, 'proxy']);
    const agent = spawn(agCmd, agArgs, {
      cwd: vm,
      env: {
        PATH: process.env['PATH'] ?? '',
        CA_ADDR: cp.address,
        INSTANCE_IP: '10.0.0.1',
        DISABLE_ENVOY: 'true',
        DNS_PROXY_ADDR: `127.0.0.1:${port}`,
        ISTIO_RESOLV_CONF: path.join(vm, 'resolv.conf'),
      },
      stdio: 'ignore',
    });
    await waitForAnswer(port, hostName(NAMES - 1));
    return { agent, port };
  }

  // The bundle copied without udp_batch.node: the same agent on its node:dgram fallback.
  const dgramOnly = path.join(dir, 'dgram-only');
  mkdirSync(dgramOnly);
  for (const file of ['pilot-agent.js', 'protos.json']) copyFileSync(path.join(root, 'dist', file), path.join(dgramOnly, file));
  const fallback = await startAgent(path.join(dgramOnly, 'pilot-agent.js'));
  const oursDgram = await dnsperf(fallback.port, queries);
  await stop(fallback.agent);

  const { agent, port: agentPort } = await startAgent(path.join(root, 'dist/pilot-agent.js'));
  const ours = await dnsperf(agentPort, queries);
  const rssServing = memoryMb(agent.pid, 'VmRSS');

  const batched = existsSync(path.join(root, 'dist/udp_batch.node'));
  console.log(perfRow('dnsmasq 2.90 (reference)', reference));
  console.log(perfRow(`istio-vm-agent DNS proxy${batched ? '' : ' (NOT BUILT: node:dgram)'}`, ours));
  console.log(perfRow('  the same on node:dgram', oursDgram));
  console.log(`ratio agent/dnsmasq qps: ${(ours.qps / reference.qps).toFixed(2)}   (goal ≥ 0.9); on node:dgram ${(oursDgram.qps / reference.qps).toFixed(2)}`);
  console.log(`ratio agent/dnsmasq p99 latency at ${LATENCY_QPS / 1000}k qps: ${(ours.latency.p99 / reference.latency.p99).toFixed(2)}`);

  // The same agent, given a 100,000-name table.
  cp.setResources(NAME_TABLE_TYPE_URL, [{ name: '', value: schema.nameTable.encode(nameTable(BIG_TABLE)) }]);
  await waitForAnswer(agentPort, hostName(BIG_TABLE - 1));
  await new Promise((r) => setTimeout(r, 2000)); // let the old table's memory go
  console.log(`agent RSS: ${rssServing.toFixed(1)} MB serving ${NAMES.toLocaleString('en')} names; ${memoryMb(agent.pid, 'VmRSS').toFixed(1)} MB with ${BIG_TABLE.toLocaleString('en')} names (peak ${memoryMb(agent.pid, 'VmHWM').toFixed(1)} MB)`);
  await stop(agent);
  await cp.close();
}
